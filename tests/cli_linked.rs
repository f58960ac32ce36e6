//! Linked networks from the command line (issue 23): `corridor demo --linked` runs to the
//! end with exit 0, and `--json` gives one JSON object that accounts for every payment;
//! flags that make no sense with it are refused, naming the flag, before anything runs
//! (DESIGN.md: "Bad input gets a clear error and changes nothing"); and README.md's "Two
//! linked networks by hand" runs as written, as separate processes.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::io::BufReader;
use std::process::Stdio;
use std::time::Duration;

use common::cli::{
    Capture, ChildGuard, corridor, corridor_command, corridor_in, json_document, refused, succeeded, text,
};

/// `demo --linked --json`: four payments across the link, two of them held while it was
/// down, each ACSC and delivered once, and three clean reconciliations.
#[test]
fn the_linked_demo_ends_well_and_its_json_accounts_for_every_payment() {
    let summary = json_document(corridor(&["demo", "--linked", "--json", "--no-dashboard"]));
    let payments = summary["payments"].as_array().unwrap();
    let paid: Vec<(&str, &str)> =
        payments.iter().map(|p| (p["paid"].as_str().unwrap(), p["received"].as_str().unwrap())).collect();
    assert_eq!(
        paid,
        [
            ("1000.00 RUB", "450000.00 IRR"),
            ("100000.00 IRR", "220.00 RUB"),
            ("500.00 RUB", "225000.00 IRR"),
            ("20.50 RUB", "9225.00 IRR")
        ]
    );
    for payment in payments {
        assert_eq!(payment["status"], "ACSC", "{payment}");
        assert_eq!(payment["records_at_receiver"], 1, "{payment}");
        assert_eq!(payment["credits_to_beneficiary"], 1, "{payment}");
    }
    assert_eq!(summary["held_while_link_down"], 2);
    let reconciliations = summary["reconciliations"].as_array().unwrap();
    assert_eq!(reconciliations.len(), 3, "{summary}");
    for reconciliation in reconciliations {
        assert_eq!(reconciliation["report"]["breaks"].as_array().unwrap().len(), 0, "{reconciliation}");
    }
}

/// Each flag of the single-network demo that `--linked` has no use for is refused with
/// its name, and a `--data` that exists already is refused and left as it was.
#[test]
fn flags_the_linked_demo_cannot_use_are_refused_naming_them() {
    let temp = tempfile::tempdir().unwrap();
    let scenario = temp.path().join("scenario.toml");
    std::fs::write(&scenario, "not a scenario").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--banks", "3"], "--banks"),
        (&["--payments", "5"], "--payments"),
        (&["--seed", "7"], "--seed"),
        (&["--currency", "RUB"], "--currency"),
        (&["--narrate"], "--narrate"),
        (&["--scenario", text(&scenario)], "--scenario"),
        (&["--dashboard-addr", "not-an-address"], "--dashboard-addr"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["demo", "--linked"];
        args.extend_from_slice(flags);
        let stderr = refused(corridor(&args));
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let existing = temp.path().join("kept");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("mine.txt"), "keep me").unwrap();
    let stderr = refused(corridor(&["demo", "--linked", "--no-dashboard", "--data", text(&existing)]));
    assert!(stderr.contains("already exists"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&existing).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["mine.txt"], "a refused demo wrote nothing");
}

/// One command of the README's block, as a person would type it.
struct Line {
    /// Its words, quotes removed, `$UETR` still unexpanded.
    words: Vec<String>,
    /// Ends with `&`: a node left running.
    background: bool,
    /// `UETR=$(...)`: its output is kept as `$UETR`.
    assigns_uetr: bool,
}

/// The commands of the `sh` block under `heading` in README.md: continuation lines joined,
/// comments dropped, each `$C` command split into words as the shell would.
fn readme_commands(heading: &str) -> Vec<Line> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split_once(heading).unwrap_or_else(|| panic!("README has no {heading:?}")).1;
    let block = section.split_once("```sh\n").unwrap().1.split_once("```").unwrap().0;
    let joined = block.replace("\\\n", " ");
    let mut lines = Vec::new();
    for line in joined.lines() {
        // No `#` appears inside quotes in the block: the first ` #` starts a comment.
        let command = line.split_once(" #").map_or(line, |(command, _)| command).trim();
        if command.is_empty() {
            continue;
        }
        let (command, assigns_uetr) = match command.strip_prefix("UETR=$(") {
            Some(inner) => (inner.strip_suffix(')').expect("UETR=$(...) closes"), true),
            None => (command, false),
        };
        let (command, background) =
            command.strip_suffix('&').map_or((command, false), |c| (c.trim_end(), true));
        let mut words = shell_words(command);
        assert_eq!(words.remove(0), "$C", "{line}");
        lines.push(Line { words, background, assigns_uetr });
    }
    lines
}

/// `command` split on spaces, double quotes grouping words.
fn shell_words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    for c in command.chars() {
        match c {
            '"' => (quoted, started) = (!quoted, true),
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quotes: {command}");
    if started {
        words.push(word);
    }
    words
}

/// A node started in `dir`, once it said where it listens (it has bound its port then).
fn start_in(dir: &std::path::Path, args: &[String]) -> (ChildGuard, Capture) {
    let stderr = Capture::new();
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let child =
        corridor_command(&words).current_dir(dir).stdout(Stdio::piped()).stderr(stderr.stdio()).spawn();
    let mut process = ChildGuard(child.expect("spawn corridor"));
    let mut stdout = BufReader::new(process.0.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read the first line");
    assert!(
        line.contains(" listening on https://"),
        "`corridor {}` said {line:?}: {}",
        words.join(" "),
        stderr.text()
    );
    // Read on, so that its later lines never meet a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (process, stderr)
}

/// Polls `done` (bounded at 30 s).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1_500 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} never happened");
}

/// README.md, "Two linked networks by hand", run as written: two networks from their own
/// `pki init`, linked with `link init`, `link export` and `link add` on both sides, the
/// accepting hub with `--link-listen`, a bank on each side, funding, a payment with
/// `--settlement-currency`, `status`, `balances`, `track` across the link, the swap line in
/// `positions` and `reconcile` across the link; the README's ports mapped to reserved ones,
/// its relative paths in a temporary directory. Each command must succeed and say what the
/// README's comments say it does. The banks start once the link is up and both hubs keep
/// each other's directory, as the README says to.
#[test]
fn the_readmes_two_linked_networks_by_hand_run_as_written() {
    let commands = readme_commands("### Two linked networks by hand");
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let reserved = common::ports::reserve(6);
    let mapped: Vec<(String, String)> = ["7300", "7301", "7302", "7400", "7401", "7402"]
        .iter()
        .zip(reserved.ports())
        .map(|(readme, ours)| (format!("127.0.0.1:{readme}"), format!("127.0.0.1:{ours}")))
        .collect();
    let (mut nodes, mut uetr, mut said) = (Vec::new(), String::new(), BTreeMap::new());
    for line in &commands {
        let words: Vec<String> = line
            .words
            .iter()
            .map(|word| {
                let word = word.replace("$UETR", &uetr);
                mapped.iter().fold(word, |word, (readme, ours)| word.replace(readme, ours))
            })
            .collect();
        if line.background {
            if words[0] == "bank" {
                wait_until("the link, both ways", || {
                    dir.join("ru/link/published/BMJIIRTHXXX.json").is_file()
                        && dir.join("ir/link/published/CBRFRUMMXXX.json").is_file()
                });
            }
            nodes.push(start_in(dir, &words));
            continue;
        }
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut outcome = corridor_in(dir, &args);
        if words[0] == "status" {
            wait_until("ACSC", || {
                outcome = corridor_in(dir, &args);
                outcome.stdout.contains("ACSC")
            });
        }
        let stdout = succeeded(outcome);
        if line.assigns_uetr {
            uetr = stdout.trim().to_owned();
        }
        said.entry(words[0].clone()).or_insert_with(String::new).push_str(&stdout);
    }
    assert_eq!(commands.len(), 23, "every command of the block ran");
    assert!(!uetr.is_empty() && nodes.len() == 4, "the block pays once and starts four nodes");
    assert!(said["status"].contains("ACSC  1000.00 RUB (450000.00 IRR at 450)"), "{}", said["status"]);
    assert!(said["balances"].lines().any(|l| l.starts_with("C002") && l.ends_with("450000.00 IRR")));
    for step in [
        "crossed_link",
        "Bank of Russia",
        "Bank Markazi",
        "delivered",
        "[across the link, at CBRFRUMMXXX's hub]",
    ] {
        assert!(said["track"].contains(step), "{step}: {}", said["track"]);
    }
    let swap_line = said["admin"].lines().find(|l| l.starts_with("BMJIIRTHXXX")).unwrap_or_default();
    assert!(swap_line.contains("settled net 1000.00 RUB"), "{}", said["admin"]);
    assert!(said["reconcile"].contains(" 0 breaks"), "{}", said["reconcile"]);
    // The nodes stop with the test (each guard kills and reaps its process).
    drop(nodes);
}
