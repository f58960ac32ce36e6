//! Which curve arithmetic signing and verification run on.
//!
//! curve25519-dalek chooses at run time, by CPUID, the fastest of the backends it was
//! compiled with that the CPU has: AVX-512 IFMA, then AVX2, then its portable code. Its
//! IFMA backend is compiled in only when a build asks for it; Corridor's builds ask on
//! x86-64 (`--cfg curve25519_dalek_backend="avx512"` in `.cargo/config.toml`), so one binary
//! runs IFMA where the CPU has it and AVX2 or the portable code where it does not
//! (docs/PERFORMANCE.md, "Curve arithmetic: the IFMA backend").
//!
//! curve25519-dalek does not say which backend it chose. This module makes the same choice
//! from the same facts (the build's `curve25519_dalek_backend` cfg and target features, the
//! CPU's features), as curve25519-dalek 5.0's `build.rs` and `get_selected_backend` do, so
//! that `corridor --version` and the load generator can say what runs.

use std::fmt;

/// A curve arithmetic backend of curve25519-dalek.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurveBackend {
    /// AVX-512 IFMA (52-bit multiply-accumulate, eight lanes): the fastest.
    Avx512Ifma,
    /// AVX2, four field elements at a time.
    Avx2,
    /// The portable 64-bit (or 32-bit) code.
    Serial,
    /// fiat-crypto's formally verified portable code, when a build asks for it.
    Fiat,
}

impl CurveBackend {
    /// The backend's short name, as `--version` and the load generator print it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512Ifma => "avx512ifma",
            Self::Avx2 => "avx2",
            Self::Serial => "serial",
            Self::Fiat => "fiat",
        }
    }
}

impl fmt::Display for CurveBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The backends a build compiled in, among which curve25519-dalek chooses at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledBackends {
    /// The AVX-512 IFMA backend.
    pub avx512ifma: bool,
    /// The AVX2 backend.
    pub avx2: bool,
    /// fiat-crypto instead of the serial code (then nothing else is compiled in).
    pub fiat: bool,
}

impl CompiledBackends {
    /// What curve25519-dalek's `build.rs` compiles in for a build: `requested` is the
    /// build's `curve25519_dalek_backend` cfg, if any; `simd_capable` whether the target is
    /// 64-bit x86-64 (the only one with vector backends); `ifma_target_features` whether the
    /// whole build assumes `avx512ifma` and `avx512vl` (as `-C target-cpu=native` may).
    pub fn for_build(requested: Option<&str>, simd_capable: bool, ifma_target_features: bool) -> Self {
        let none = Self { avx512ifma: false, avx2: false, fiat: false };
        match requested {
            Some("fiat") => Self { fiat: true, ..none },
            Some("serial") => none,
            // curve25519-dalek refuses to build these where they are not possible.
            Some("simd") => Self { avx2: simd_capable, ..none },
            Some("avx512") => Self { avx512ifma: simd_capable, avx2: simd_capable, ..none },
            _ => Self { avx512ifma: simd_capable && ifma_target_features, avx2: simd_capable, ..none },
        }
    }

    /// The backends this build compiled in.
    pub fn of_this_build() -> Self {
        let requested = if cfg!(curve25519_dalek_backend = "fiat") {
            Some("fiat")
        } else if cfg!(curve25519_dalek_backend = "serial") {
            Some("serial")
        } else if cfg!(curve25519_dalek_backend = "avx512") {
            Some("avx512")
        } else if cfg!(curve25519_dalek_backend = "simd") {
            Some("simd")
        } else {
            None
        };
        let simd_capable = cfg!(all(target_arch = "x86_64", target_pointer_width = "64"));
        let ifma_target_features = cfg!(all(target_feature = "avx512ifma", target_feature = "avx512vl"));
        Self::for_build(requested, simd_capable, ifma_target_features)
    }

    /// Every backend compiled in, fastest first.
    pub fn list(self) -> Vec<CurveBackend> {
        if self.fiat {
            return vec![CurveBackend::Fiat];
        }
        let vector = [(self.avx512ifma, CurveBackend::Avx512Ifma), (self.avx2, CurveBackend::Avx2)];
        let mut list: Vec<CurveBackend> = vector.into_iter().filter(|(on, _)| *on).map(|(_, b)| b).collect();
        list.push(CurveBackend::Serial);
        list
    }
}

/// The CPU features the choice depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuFeatures {
    /// AVX-512 Integer Fused Multiply-Add.
    pub avx512ifma: bool,
    /// AVX-512 on 128- and 256-bit vectors.
    pub avx512vl: bool,
    /// AVX2.
    pub avx2: bool,
}

impl CpuFeatures {
    /// What this CPU (and operating system, which must save the vector registers) offers.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            Self {
                avx512ifma: std::arch::is_x86_feature_detected!("avx512ifma"),
                avx512vl: std::arch::is_x86_feature_detected!("avx512vl"),
                avx2: std::arch::is_x86_feature_detected!("avx2"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::default()
    }
}

/// The backend curve25519-dalek runs, given what was compiled in and what the CPU has:
/// IFMA needs both `avx512ifma` and `avx512vl`, AVX2 needs `avx2`, and the portable code
/// runs everywhere.
pub fn select(compiled: CompiledBackends, cpu: CpuFeatures) -> CurveBackend {
    if compiled.fiat {
        CurveBackend::Fiat
    } else if compiled.avx512ifma && cpu.avx512ifma && cpu.avx512vl {
        CurveBackend::Avx512Ifma
    } else if compiled.avx2 && cpu.avx2 {
        CurveBackend::Avx2
    } else {
        CurveBackend::Serial
    }
}

/// The backend that signing and verification run on in this process.
pub fn curve_backend() -> CurveBackend {
    select(CompiledBackends::of_this_build(), CpuFeatures::detect())
}

/// One line for people: the backend in use and those compiled in, for example
/// `avx512ifma (compiled in: avx512ifma, avx2, serial)`.
pub fn curve_backend_summary() -> String {
    let compiled: Vec<&str> =
        CompiledBackends::of_this_build().list().into_iter().map(CurveBackend::name).collect();
    format!("{} (compiled in: {})", curve_backend(), compiled.join(", "))
}

#[cfg(test)]
mod tests {
    //! The choice mirrors curve25519-dalek's, so that what Corridor reports is what runs.

    use super::*;

    const ALL: CpuFeatures = CpuFeatures { avx512ifma: true, avx512vl: true, avx2: true };

    /// The build Corridor makes on x86-64 runs IFMA only on a CPU with both AVX-512
    /// features, else AVX2, else the portable code: never an instruction the CPU lacks.
    #[test]
    fn ifma_build_falls_back_by_what_the_cpu_has() {
        let ifma_build = CompiledBackends::for_build(Some("avx512"), true, false);
        assert_eq!(select(ifma_build, ALL), CurveBackend::Avx512Ifma);
        let no_vl = CpuFeatures { avx512vl: false, ..ALL };
        assert_eq!(select(ifma_build, no_vl), CurveBackend::Avx2);
        let no_ifma = CpuFeatures { avx512ifma: false, ..ALL };
        assert_eq!(select(ifma_build, no_ifma), CurveBackend::Avx2);
        assert_eq!(select(ifma_build, CpuFeatures::default()), CurveBackend::Serial);
        assert_eq!(ifma_build.list(), [CurveBackend::Avx512Ifma, CurveBackend::Avx2, CurveBackend::Serial]);
    }

    /// A build that does not ask for IFMA never runs it, even on a CPU that has it: that
    /// was Corridor's release build before (the "no IFMA code in the binary").
    #[test]
    fn plain_build_runs_avx2_even_where_ifma_is() {
        let plain = CompiledBackends::for_build(None, true, false);
        assert_eq!(select(plain, ALL), CurveBackend::Avx2);
        assert_eq!(plain.list(), [CurveBackend::Avx2, CurveBackend::Serial]);
        // -C target-cpu=native on an IFMA CPU compiles it in without the cfg.
        assert_eq!(select(CompiledBackends::for_build(None, true, true), ALL), CurveBackend::Avx512Ifma);
    }

    /// Builds that ask for less, and targets without vector backends, run what they asked.
    #[test]
    fn requested_and_non_x86_builds() {
        assert_eq!(
            select(CompiledBackends::for_build(Some("serial"), true, true), ALL),
            CurveBackend::Serial
        );
        assert_eq!(select(CompiledBackends::for_build(Some("simd"), true, false), ALL), CurveBackend::Avx2);
        assert_eq!(select(CompiledBackends::for_build(Some("fiat"), true, false), ALL), CurveBackend::Fiat);
        assert_eq!(CompiledBackends::for_build(Some("fiat"), true, false).list(), [CurveBackend::Fiat]);
        // An aarch64 build: no vector backend, whatever a (mis)read CPU would claim.
        assert_eq!(select(CompiledBackends::for_build(None, false, false), ALL), CurveBackend::Serial);
    }

    /// Corridor's x86-64 builds compile the IFMA backend in (`.cargo/config.toml`). This
    /// fails when that setting is lost, or when `RUSTFLAGS` in the environment replaces it
    /// (Cargo then ignores the file's flags): build without `RUSTFLAGS` to get IFMA.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_pointer_width = "64"))]
    fn this_x86_64_build_has_the_ifma_backend() {
        let compiled = CompiledBackends::of_this_build();
        assert!(compiled.avx512ifma && compiled.avx2, "{compiled:?}: see .cargo/config.toml");
        let expected = if CpuFeatures::detect().avx512ifma && CpuFeatures::detect().avx512vl {
            "avx512ifma (compiled in: avx512ifma, avx2, serial)"
        } else {
            "(compiled in: avx512ifma, avx2, serial)"
        };
        assert!(curve_backend_summary().contains(expected), "{}", curve_backend_summary());
    }
}
