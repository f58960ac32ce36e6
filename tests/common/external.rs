//! Programs from outside the project that some tests need (Debian's `chromium`, `xmllint`,
//! `nats-server`, `qemu-x86_64`) and the ISO 20022 schemas, and the one rule for when one is
//! missing:
//!
//! - on a developer's machine, the test says on stderr that it skipped, why, and the command
//!   that installs the program, and passes, so that `cargo test` passes on a fresh machine;
//! - where `CI` is set (CI runs `.ci/run` with `CI=true`) or `CORRIDOR_REQUIRE_EXTERNAL=1`, a
//!   missing program fails the test, saying the same; `.ci/run` installs every such program, so
//!   CI never skips one.
//!
//! A program is found through its own environment variable (for example `$CHROMIUM`), else by
//! name on the `PATH`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::PathBuf;

/// A program from outside the project, and how to get it.
pub struct External {
    /// The name looked for on the `PATH`.
    pub program: &'static str,
    /// The environment variable that may name the program's path instead.
    pub variable: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    /// What the tests use it for.
    pub purpose: &'static str,
}

/// `xmllint`, which checks XML against the official ISO 20022 schemas.
pub const XMLLINT: External = External {
    program: "xmllint",
    variable: "XMLLINT",
    package: "libxml2-utils",
    purpose: "validates XML against the official ISO 20022 schemas",
};

/// `nats-server`, on which the hub's replicated log runs (NATS JetStream).
pub const NATS_SERVER: External = External {
    program: "nats-server",
    variable: "NATS_SERVER",
    package: "nats-server",
    purpose: "runs the NATS JetStream cluster that the hub's replicated log is tested on",
};

/// `qemu-x86_64` (user-mode emulation), whose emulated CPUs lack AVX-512.
pub const QEMU_X86_64: External = External {
    program: "qemu-x86_64",
    variable: "QEMU_X86_64",
    package: "qemu-user",
    purpose: "runs the tests on emulated CPUs without AVX-512, where the IFMA backend must not run",
};

/// Debian's headless Chromium, for the dashboard's browser tests.
pub const CHROMIUM: External = External {
    program: "chromium",
    variable: "CHROMIUM",
    package: "chromium",
    purpose: "drives the dashboard in a real browser",
};

impl External {
    /// The program's path; `None` (after saying on stderr why `test` skipped) when it is
    /// missing and nothing requires it. Panics, saying what to install, when it is missing
    /// and CI or `CORRIDOR_REQUIRE_EXTERNAL=1` requires it.
    pub fn require(&self, test: &str) -> Option<PathBuf> {
        let found = self.find(std::env::var_os(self.variable), std::env::var_os("PATH"));
        match found {
            Some(path) => Some(path),
            None if required(std::env::var("CI").ok(), std::env::var("CORRIDOR_REQUIRE_EXTERNAL").ok()) => {
                panic!("{}", self.missing(test, true))
            }
            None => {
                notice(&self.missing(test, false));
                None
            }
        }
    }

    /// Where the program is: `variable` when it names a file, else `program` on `path`.
    pub fn find(&self, variable: Option<OsString>, path: Option<OsString>) -> Option<PathBuf> {
        if let Some(named) = variable.filter(|v| !v.is_empty()) {
            let named = PathBuf::from(named);
            return named.is_file().then_some(named);
        }
        path.iter().flat_map(std::env::split_paths).map(|dir| dir.join(self.program)).find(|p| p.is_file())
    }

    /// The line a missing program gets: skipped or failed, why, and how to install it.
    pub fn missing(&self, test: &str, required: bool) -> String {
        let verdict = if required {
            "FAILED: CI (or CORRIDOR_REQUIRE_EXTERNAL=1) requires every external program, and"
        } else {
            "SKIPPED:"
        };
        format!(
            "{test} {verdict} `{}` is not installed (neither ${} nor on the PATH); it {}. \
             Install it with: apt-get update && apt-get install -y --no-install-recommends {} \
             (or point ${} at the program)",
            self.program, self.variable, self.purpose, self.package, self.variable
        )
    }
}

/// Whether a missing program fails the test: `CI` set to anything but empty, `0` or `false`,
/// or `CORRIDOR_REQUIRE_EXTERNAL=1`.
pub fn required(ci: Option<String>, require_external: Option<String>) -> bool {
    let ci = ci.is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "0" | "false"));
    ci || require_external.is_some_and(|v| v.trim() == "1")
}

/// The official ISO 20022 schemas and sample messages (`xsd/`, `samples/`), which the project
/// reads from outside and never copies: `$CORRIDOR_ISO20022_DIR`, else `../shared/iso20022`
/// beside the checkout. Missing, the same rule as for a program applies: `None` after a
/// notice on stderr, or a failure under CI.
pub fn iso20022_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CORRIDOR_ISO20022_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/iso20022"));
    if dir.join("xsd").is_dir() {
        return Some(dir);
    }
    let required = required(std::env::var("CI").ok(), std::env::var("CORRIDOR_REQUIRE_EXTERNAL").ok());
    let line = format!(
        "{test} {}: the ISO 20022 schemas and samples are not at {} (set CORRIDOR_ISO20022_DIR to the \
         folder that holds xsd/ and samples/)",
        if required { "FAILED" } else { "SKIPPED" },
        dir.display()
    );
    assert!(!required, "{line}");
    notice(&line);
    None
}

/// Writes a skip notice straight to the process's stderr. `eprintln!` in a test is captured
/// by the test harness and shown only if the test fails, so a skipped test that passes would
/// say nothing; a direct write is seen in a plain `cargo test`.
fn notice(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}
