//! The `corridor` binary run as a user runs it, for the tests of the command line
//! (cli.rs, key_lifecycle.rs): a child process owned by a guard that kills and reaps it
//! however the test ends, its output captured in files, every wait bounded so that a
//! stuck process fails its test instead of hanging it, and the assertions on how a
//! command ended.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::sleep;
use std::time::Duration;

use tempfile::{NamedTempFile, TempDir};

/// A one-shot command (even `demo`) finishes in well under a second; this bounds a stuck one
/// at 60 s.
pub const COMMAND_POLLS_MAX: usize = 3000;
pub const COMMAND_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A child process that is killed and reaped when dropped, however the test ends.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Waits for the process to exit, polling `polls` times; `None` if it is still running.
    pub fn wait_bounded(&mut self, polls: usize, interval: Duration) -> Option<ExitStatus> {
        for _ in 0..polls {
            if let Some(status) = self.0.try_wait().expect("try_wait on a child") {
                return Some(status);
            }
            sleep(interval);
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Both fail harmlessly when the process has already exited and been reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file one output stream of a child goes to. The child writes through its own open
/// file and we read by path, so reading never moves the child's write offset.
pub struct Capture(NamedTempFile);

impl Capture {
    pub fn new() -> Self {
        Self(NamedTempFile::new().expect("create a capture file"))
    }

    pub fn stdio(&self) -> Stdio {
        Stdio::from(self.0.reopen().expect("reopen a capture file"))
    }

    pub fn text(&self) -> String {
        fs::read_to_string(self.0.path()).expect("read a capture file")
    }
}

/// The `corridor` binary with a predictable log level: RUST_LOG from the environment
/// would change what lands on stderr.
pub fn corridor_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corridor"));
    command.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    command
}

/// How a one-shot command ended.
pub struct Outcome {
    pub args: Vec<String>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `corridor ARGS` to completion, bounded by [`COMMAND_POLLS_MAX`]. It blocks: a test
/// with a network running on its own runtime calls it from `spawn_blocking`.
pub fn corridor(args: &[&str]) -> Outcome {
    run_bounded(corridor_command(args), args)
}

/// [`corridor`] run in the working directory `dir`.
pub fn corridor_in(dir: &std::path::Path, args: &[&str]) -> Outcome {
    let mut command = corridor_command(args);
    command.current_dir(dir);
    run_bounded(command, args)
}

fn run_bounded(mut command: std::process::Command, args: &[&str]) -> Outcome {
    let (stdout, stderr) = (Capture::new(), Capture::new());
    let child = command.stdout(stdout.stdio()).stderr(stderr.stdio()).spawn();
    let mut child = ChildGuard(child.expect("spawn corridor"));
    let status = child
        .wait_bounded(COMMAND_POLLS_MAX, COMMAND_POLL_INTERVAL)
        .unwrap_or_else(|| panic!("`corridor {}` did not finish", args.join(" ")));
    Outcome {
        args: args.iter().map(|a| a.to_string()).collect(),
        status,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// Asserts that the command succeeded and returns its stdout.
pub fn succeeded(outcome: Outcome) -> String {
    assert!(
        outcome.status.success(),
        "`corridor {}` failed with {}\nstderr: {}",
        outcome.args.join(" "),
        outcome.status,
        outcome.stderr
    );
    outcome.stdout
}

/// Asserts success and that stdout is exactly one JSON document (what `--json` promises:
/// nothing before or after it), and returns it.
pub fn json_document(outcome: Outcome) -> serde_json::Value {
    let command = format!("`corridor {}`", outcome.args.join(" "));
    let stdout = succeeded(outcome);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{command}: not one JSON document: {e}\n{stdout}"))
}

/// Asserts a refusal as DESIGN.md wants it ("Bad input gets a clear error"): a non-zero
/// exit, an error on stderr, nothing on stdout, and no panic. Returns stderr, which may run
/// to several lines (clap's usage text does).
pub fn refused(outcome: Outcome) -> String {
    let Outcome { args, status, stdout, stderr } = outcome;
    let command = format!("`corridor {}`", args.join(" "));
    assert!(!status.success(), "{command} succeeded; stdout: {stdout}");
    assert!(stderr.contains("error"), "{command} gave no error on stderr: {stderr:?}");
    assert!(shows_no_panic(&stderr), "{command} panicked: {stderr}");
    assert!(stdout.trim().is_empty(), "{command} printed on a refusal: {stdout}");
    stderr
}

/// Stricter than [`refused`], for the refusals our own code words: a non-zero exit (not a
/// signal), nothing on stdout, no panic, and exactly one line on stderr, starting
/// `error: `. Returns that line.
pub fn refused_in_one_line(outcome: Outcome) -> String {
    let Outcome { args, status, stdout, stderr } = outcome;
    let command = format!("`corridor {}`", args.join(" "));
    assert!(!status.success(), "{command} succeeded; stdout: {stdout}");
    assert!(status.code().is_some(), "{command} was killed by a signal: {status}");
    assert!(stdout.trim().is_empty(), "{command} printed on a refusal: {stdout}");
    assert!(!stderr.contains("panicked"), "{command} panicked: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{command} should explain itself in one line: {stderr}");
    assert!(lines[0].starts_with("error: "), "{command}: {stderr}");
    lines[0].to_owned()
}

/// True when stderr shows no panic (the hint to set RUST_BACKTRACE comes with every panic).
pub fn shows_no_panic(stderr: &str) -> bool {
    !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE")
}

/// A path as a command-line argument.
pub fn text(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Every file under `dir` with its bytes: compared before and after a command, it shows
/// whether the command changed any file.
pub fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("read a directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            let bytes = fs::read(&path).expect("read a file");
            files.insert(path, bytes);
        }
    }
    files
}

/// Port 0: the system picks a free port and the node prints which.
pub const ANY_LOOPBACK_PORT: &str = "127.0.0.1:0";
/// A node drains and exits promptly after SIGINT; this bounds the wait at 30 s.
pub const SHUTDOWN_POLLS_MAX: usize = 300;
pub const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A long-running node (hub or bank), killed when dropped.
pub struct Server {
    pub process: ChildGuard,
    /// Kept open so that a later write to stdout cannot fail on a closed pipe.
    _stdout: BufReader<ChildStdout>,
    pub stderr: Capture,
    /// Where it listens, from the first line it prints.
    pub url: String,
}

/// Starts `corridor ARGS` and reads its first stdout line, which must be
/// `<announcement> listening on <url>`: the node has bound its port before it says so,
/// so no sleep is needed before connecting.
pub fn start_server(args: &[&str], announcement: &str) -> Server {
    let stderr = Capture::new();
    let child = corridor_command(args).stdout(Stdio::piped()).stderr(stderr.stdio()).spawn();
    let mut process = ChildGuard(child.expect("spawn corridor"));
    let mut stdout = BufReader::new(process.0.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the first line");
    let prefix = format!("{announcement} listening on ");
    let url = line.trim_end().strip_prefix(&prefix).unwrap_or_else(|| {
        panic!("`corridor {}` said {line:?}, not {prefix:?}...\nstderr: {}", args.join(" "), stderr.text())
    });
    assert!(url.starts_with("https://127.0.0.1:"), "unexpected URL {url}");
    Server { url: url.to_owned(), process, _stdout: stdout, stderr }
}

impl Server {
    /// Sends SIGINT (Ctrl-C) and waits, bounded, for the node to exit.
    pub fn interrupt(&mut self) -> ExitStatus {
        let pid = self.process.0.id().to_string();
        let kill = Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
        assert!(kill.success(), "kill -INT {pid} failed");
        self.process.wait_bounded(SHUTDOWN_POLLS_MAX, SHUTDOWN_POLL_INTERVAL).unwrap_or_else(|| {
            panic!("process {pid} still runs after SIGINT\nstderr: {}", self.stderr.text())
        })
    }
}

/// `corridor pki init` in DIR/net with the given banks; returns the network directory.
pub fn pki_init(dir: &TempDir, bics: &[&str]) -> PathBuf {
    let network = dir.path().join("net");
    succeeded(corridor(&["pki", "init", "--dir", text(&network), "--participants", &bics.join(",")]));
    network
}
