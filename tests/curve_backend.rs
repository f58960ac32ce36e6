//! The curve arithmetic backend (docs/PERFORMANCE.md, "Curve arithmetic: the IFMA backend"):
//! Corridor's x86-64 builds compile curve25519-dalek's AVX-512 IFMA backend in, and it must
//! run only where the CPU has the instructions. A build that assumed them (`-C
//! target-cpu=native`) dies with SIGILL on other CPUs, so this runs the test binary itself
//! on emulated CPUs without AVX-512 (`qemu-x86_64 -cpu Haswell`: AVX2 only; `-cpu qemu64`:
//! neither) and checks that signing, verification and batch verification still give the
//! right answers there, on the backend `crypto::backend` says.

mod common;

use common::*;
use corridor::crypto::backend::curve_backend;
use corridor::crypto::{KeyDirectory, KeyId, SignedEnvelope, SigningIdentity};

/// Set by the emulated runs: the backend the child must report.
const EXPECTED_BACKEND: &str = "CORRIDOR_EXPECT_CURVE_BACKEND";

/// Signs and verifies, singly and in a batch with one forged signature, on whatever backend
/// this CPU gets, and checks that backend against `$CORRIDOR_EXPECT_CURVE_BACKEND` when set.
#[test]
fn signatures_verify_on_this_cpus_backend() {
    if let Ok(expected) = std::env::var(EXPECTED_BACKEND) {
        assert_eq!(curve_backend().name(), expected, "the backend this CPU should get");
    }
    let alice = SigningIdentity::generate(bic(RU), KeyId::parse("ru-1").unwrap());
    // An impostor with Alice's name and key id but a key of its own.
    let impostor = SigningIdentity::generate(bic(RU), KeyId::parse("ru-1").unwrap());
    let mut directory = KeyDirectory::new();
    directory.register(alice.bic(), alice.key_id().clone(), &alice.verifying_key_bytes()).unwrap();
    let message = corridor::sim::sample_credit_transfer(bic(RU), bic(IR));
    let mut envelopes: Vec<SignedEnvelope> = (0..64).map(|_| alice.sign(&message)).collect();
    // Same bytes, same name, same key id: only the curve arithmetic tells this one apart.
    envelopes[17] = impostor.sign(&message);
    let refs: Vec<&SignedEnvelope> = envelopes.iter().collect();
    let results = directory.verify_batch(&refs);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), index != 17, "envelope {index}: {result:?}");
    }
    assert!(directory.verify(&envelopes[0]).is_ok());
    assert!(directory.verify(&envelopes[17]).is_err());
}

/// On CPUs without AVX-512 the same binary runs, picks AVX2 or the portable code, and gets
/// every signature right: the IFMA backend is only entered where CPUID reports it.
#[test]
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn the_same_binary_runs_on_cpus_without_avx512() {
    use corridor::crypto::backend::CurveBackend;
    use std::process::Command;
    let Some(qemu) = external::QEMU_X86_64.require("the_same_binary_runs_on_cpus_without_avx512") else {
        return;
    };
    let this_test_binary = std::env::current_exe().unwrap();
    for (cpu, expected) in [("Haswell", CurveBackend::Avx2), ("qemu64", CurveBackend::Serial)] {
        let output = Command::new(&qemu)
            .args(["-cpu", cpu])
            .arg(&this_test_binary)
            .args(["--exact", "signatures_verify_on_this_cpus_backend", "--test-threads=1"])
            .env(EXPECTED_BACKEND, expected.name())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "on an emulated {cpu} ({}): {}\n{stdout}\n{stderr}",
            expected.name(),
            output.status
        );
    }
}

/// `corridor --version` says which backend runs and which were compiled in, so a user can
/// see that a build got IFMA (a `RUSTFLAGS` in the environment silently drops it); `-V`
/// stays the bare version that scripts parse.
#[test]
fn version_names_the_backend_in_use() {
    let long = common::cli::succeeded(common::cli::corridor(&["--version"]));
    let expected = format!("curve25519 backend: {}", corridor::crypto::backend::curve_backend_summary());
    assert!(long.starts_with("corridor ") && long.contains(&expected), "{long}");
    let short = common::cli::succeeded(common::cli::corridor(&["-V"]));
    assert_eq!(short.trim(), format!("corridor {}", env!("CARGO_PKG_VERSION")));
}
