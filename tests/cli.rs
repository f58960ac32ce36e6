//! The `corridor` command line as a user runs it: real processes, real mTLS, a network
//! directory made by `corridor pki init`. These tests check what the library tests cannot:
//! exit codes, what lands on stdout and stderr, file modes, signals, and that the separate
//! processes (hub, banks, operator commands) work together.
//!
//! Every child process is owned by a guard that kills and reaps it when the test ends, pass
//! or fail, and every wait is bounded: a stuck process fails its test instead of hanging it.
#![cfg(unix)] // file modes and SIGINT

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use common::cli::{
    ANY_LOOPBACK_PORT, Outcome, Server, corridor, files_under, json_document, pki_init, refused,
    refused_in_one_line, shows_no_panic, start_server, succeeded, text,
};
use serde_json::{Value, json};
use tempfile::TempDir;

const PAYER: &str = "BANKRUMMXXX";
const PAYEE: &str = "BANKIRTHXXX";

/// A payment is final within milliseconds; this bounds the wait at about 10 s plus the
/// time to run `status` that many times.
const STATUS_POLLS_MAX: usize = 200;
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// Networks (processes and one-shot commands: `common::cli`)

/// A hub and one bank node per BIC, started as separate processes the way a user would.
/// Fields drop in order: banks, then hub, then the directory.
struct Network {
    banks: Vec<(&'static str, Server)>,
    hub: Server,
    dir: PathBuf,
    _temp: TempDir,
}

impl Network {
    fn start(bics: &[&'static str]) -> Self {
        let temp = tempfile::tempdir().expect("create a temporary directory");
        let dir = pki_init(&temp, bics);
        let hub = start_server(&["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT], "hub");
        // The hub operator prefunds every bank's position, far beyond any payment here.
        for &bic in bics {
            let fund = ["--participant", bic, "--currency", "CNY", "--amount", "1000000000"];
            succeeded(corridor(
                &[&["admin", "--dir", text(&dir), "--hub", &hub.url, "fund"][..], &fund].concat(),
            ));
        }
        let banks = bics
            .iter()
            .map(|&bic| {
                let args = [
                    "bank",
                    "--dir",
                    text(&dir),
                    "--bic",
                    bic,
                    "--hub",
                    &hub.url,
                    "--listen",
                    ANY_LOOPBACK_PORT,
                ];
                (bic, start_server(&args, &format!("bank {bic}")))
            })
            .collect();
        Self { banks, hub, dir, _temp: temp }
    }

    fn bank(&mut self, bic: &str) -> &mut Server {
        self.banks.iter_mut().find(|(b, _)| *b == bic).map(|(_, server)| server).expect("a bank we started")
    }

    /// Runs a hub operator's command (`admin ...`, `track`) against the hub.
    fn hub_command(&self, command: &[&str]) -> Outcome {
        let (head, rest) = command.split_first().expect("a command");
        corridor(&[&[*head, "--dir", text(&self.dir), "--hub", &self.hub.url][..], rest].concat())
    }

    /// Runs an operator command (`open-account`, `pay`, `status`, ...) against a bank.
    fn operate(&mut self, bic: &str, command: &str, args: &[&str]) -> Outcome {
        let dir = self.dir.clone();
        let url = self.bank(bic).url.clone();
        let mut full = vec![command, "--dir", text(&dir), "--bank", &url];
        full.extend_from_slice(args);
        corridor(&full)
    }

    fn open_account(&mut self, bic: &str, account: &str, deposit: &str) {
        let args = ["--account", account, "--currency", "CNY", "--name", account, "--deposit", deposit];
        succeeded(self.operate(bic, "open-account", &args));
    }

    /// Pays `amount` CNY from `from` at the payer to `to` at the payee; returns the UETR.
    fn pay(&mut self, from: &str, to: &str, amount: &str) -> String {
        let args = ["--from", from, "--to-bank", PAYEE, "--to", to, "--amount", amount, "--currency", "CNY"];
        let uetr = succeeded(self.operate(PAYER, "pay", &args)).trim().to_owned();
        assert_eq!(uetr.len(), 36, "a UETR is a canonical UUID: {uetr:?}");
        assert!(uetr.chars().all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_lowercase()), "{uetr:?}");
        uetr
    }

    /// The words of `status UETR` at a bank: UETR, status, then the reason code if any.
    fn status(&mut self, bic: &str, uetr: &str) -> Vec<String> {
        let line = succeeded(self.operate(bic, "status", &[uetr]));
        line.split_whitespace().map(str::to_owned).collect()
    }

    /// Polls `status` until the payment is final (ACSC or RJCT) at the bank.
    fn wait_final(&mut self, bic: &str, uetr: &str) -> Vec<String> {
        for _ in 0..STATUS_POLLS_MAX {
            let words = self.status(bic, uetr);
            assert_eq!(words[0], uetr);
            if words[1] == "ACSC" || words[1] == "RJCT" {
                return words;
            }
            sleep(STATUS_POLL_INTERVAL);
        }
        panic!("payment {uetr} is not final at {bic}");
    }

    /// Account id to balance text ("749.50 CNY"), after checking the bank's ledger balances.
    fn balances(&mut self, bic: &str) -> BTreeMap<String, String> {
        let stdout = succeeded(self.operate(bic, "balances", &[]));
        let (accounts, verdict) = stdout.trim_end().rsplit_once('\n').expect("accounts, then the verdict");
        assert_eq!(verdict, "ledger balances: yes", "{bic}'s ledger must balance");
        accounts
            .lines()
            .map(|line| {
                let (id, balance) = line.split_once(' ').expect("id, then balance");
                (id.to_owned(), balance.trim().to_owned())
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// pki init

/// `pki init` writes the layout documented in `src/tls/mod.rs`, keeps every private key
/// readable by its owner only, and refuses to run again on the same directory: a second run
/// must never replace the keys a running network depends on (DESIGN.md: "Bad input gets a
/// clear error and changes nothing").
#[test]
fn pki_init_writes_the_layout_with_private_keys_owner_only_and_never_overwrites() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);

    let mut private_keys = vec![dir.join("ca.key")];
    for role in ["hub", "operator", &format!("banks/{PAYER}"), &format!("banks/{PAYEE}")] {
        assert!(dir.join(role).join("tls.pem").is_file(), "{role}/tls.pem");
        private_keys.push(dir.join(role).join("tls.key"));
        if role != "operator" {
            private_keys.push(dir.join(role).join("signing-k1.key"));
        }
    }
    for public in ["ca.pem", "directory.json"] {
        assert!(dir.join(public).is_file(), "{public}");
    }
    for key in &private_keys {
        let mode =
            fs::metadata(key).unwrap_or_else(|e| panic!("{}: {e}", key.display())).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{} must be owner-only", key.display());
    }

    let before = files_under(&dir);
    let stderr =
        refused(corridor(&["pki", "init", "--dir", text(&dir), "--participants", &[PAYER, PAYEE].join(",")]));
    assert_eq!(stderr.lines().count(), 1, "one line of error: {stderr:?}");
    assert!(stderr.contains("refusing to overwrite"), "{stderr:?}");
    assert!(before == files_under(&dir), "a refused `pki init` changed files in the network directory");
}

// ---------------------------------------------------------------------------------------
// Bad input

/// Bad arguments to `pki init` are refused before anything is written (DESIGN.md: "Bad
/// input gets a clear error and changes nothing"): not a BIC, fewer than two banks, the
/// same bank twice, the hub's own id.
#[test]
fn pki_init_refuses_bad_participants_and_writes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("net");
    for participants in [
        "NOTABIC",
        PAYER,
        &format!("{PAYER},{PAYER}"),
        &format!("{PAYER},CRDRZZ00XXX"),
        &format!("{PAYER},,{PAYEE}"),
    ] {
        refused(corridor(&["pki", "init", "--dir", text(&dir), "--participants", participants]));
        assert!(!dir.exists(), "a refused `pki init --participants {participants}` created the directory");
    }
}

/// Garbage arguments to every other command give a non-zero exit and an error on stderr,
/// never a panic (DESIGN.md: "Bad input gets a clear error"). Each case has one thing wrong
/// with it; the rest (network directory, BIC, URL) is valid.
#[test]
fn garbage_arguments_are_refused_with_an_error_and_no_panic() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let missing = temp.path().join("missing");
    let garbled = temp.path().join("garbled");
    for (path, bytes) in files_under(&dir) {
        let copy = garbled.join(path.strip_prefix(&dir).unwrap());
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        fs::write(copy, bytes).unwrap();
    }
    fs::write(garbled.join("directory.json"), "this is not a directory\n").unwrap();
    // Bound and released: nothing listens there now.
    let closed_port = std::net::TcpListener::bind(ANY_LOOPBACK_PORT).unwrap().local_addr().unwrap();
    let nothing = format!("https://{closed_port}");
    let (dir, missing, garbled, any) = (text(&dir), text(&missing), text(&garbled), ANY_LOOPBACK_PORT);
    let cases: Vec<Vec<&str>> = vec![
        vec!["demo", "--banks", "1"],
        vec!["demo", "--banks", "99"],
        vec!["demo", "--payments", "0"],
        vec!["demo", "--currency", "XYZ"],
        vec!["hub", "--dir", missing, "--listen", any],
        vec!["hub", "--dir", dir, "--listen", "notanaddress"],
        vec!["hub", "--dir", garbled, "--listen", any],
        vec!["hub", "--dir", dir, "--listen", any, "--settlement", "sometimes"],
        vec!["admin", "--dir", dir, "--hub", &nothing, "positions"],
        vec![
            "admin",
            "--dir",
            dir,
            "--hub",
            "not-a-url",
            "fund",
            "--participant",
            PAYER,
            "--currency",
            "CNY",
            "--amount",
            "1",
        ],
        vec!["admin", "--dir", dir, "--hub", &nothing, "launch-missiles"],
        vec!["track", "--dir", missing, "--hub", &nothing, "00000000-0000-4000-8000-000000000000"],
        vec!["statement", "--dir", dir, "--bank", &nothing, "--currency", "CNY"],
        vec!["bank", "--dir", dir, "--bic", "lowercase", "--hub", &nothing, "--listen", any],
        vec!["bank", "--dir", dir, "--bic", "BANKDEFFXXX", "--hub", &nothing, "--listen", any],
        vec!["bank", "--dir", garbled, "--bic", PAYER, "--hub", &nothing, "--listen", any],
        vec!["bank", "--dir", dir, "--bic", PAYER, "--hub", "not-a-url", "--listen", any],
        vec!["bank", "--dir", dir, "--bic", PAYER, "--hub", "http://127.0.0.1:1", "--listen", any],
        vec!["balances", "--dir", missing, "--bank", &nothing],
        pay_args(dir, &nothing),
        pay_args(dir, "not-a-url"),
    ];
    for args in &cases {
        refused(corridor(args));
    }
}

/// A bank's list of hubs (`--hub URL[,URL...]`, issue 22: an active hub and its standbys)
/// is checked whole before the node opens anything: an empty element, a URL Corridor
/// cannot use, or a hub given twice is refused in one line naming it, and no bank store
/// is created (DESIGN.md: "Bad input gets a clear error and changes nothing").
#[test]
fn a_bad_hub_list_is_refused_naming_the_element_and_creates_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let before = files_under(&dir);
    let cases = [
        ("", "empty"),
        ("https://127.0.0.1:7001,,https://127.0.0.1:7002", "URL 2 of 3"),
        ("https://127.0.0.1:7001,", "URL 2 of 2"),
        ("https://127.0.0.1:7001,http://127.0.0.1:7002", "\"http://127.0.0.1:7002\""),
        ("https://127.0.0.1:7001,not a url", "\"not a url\""),
        (
            "https://127.0.0.1:7001,https://127.0.0.1:7002,https://127.0.0.1:7001",
            "given twice (URLs 1 and 3)",
        ),
    ];
    for (hubs, named) in cases {
        let args =
            ["bank", "--dir", text(&dir), "--bic", PAYER, "--hub", hubs, "--listen", ANY_LOOPBACK_PORT];
        let error = refused_in_one_line(corridor(&args));
        assert!(error.contains("--hub") && error.contains(named), "--hub {hubs:?}: {error}");
        assert_eq!(files_under(&dir), before, "a refused --hub {hubs:?} created or changed a file");
    }
}

/// The flags of a hub on a replicated log (`--log`, `--stream`, `--replicas`,
/// `--lease-ttl-ms`, `--advertise`) refuse garbage at start, naming the flag, before the
/// hub opens or creates anything: no data directory, no file, and no NATS server needed.
#[test]
fn bad_replication_flags_are_refused_naming_the_flag_and_create_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let before = files_under(&dir);
    let nats = "nats://127.0.0.1:4222";
    let cases: [(&[&str], &str); 7] = [
        (&["--log", "http://127.0.0.1:4222"], "--log"),
        (&["--log", "127.0.0.1:4222"], "nats://"),
        (&["--log", "nats://,,"], "--log"),
        (&["--log", nats, "--stream", "no spaces here"], "not a usable name"),
        (&["--log", nats, "--replicas", "9"], "replicas"),
        (&["--log", nats, "--lease-ttl-ms", "10"], "--lease-ttl-ms"),
        (&["--log", nats, "--advertise", "not a url"], "--advertise"),
    ];
    for (flags, named) in cases {
        let args = [&["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT][..], flags].concat();
        let error = refused_in_one_line(corridor(&args));
        assert!(error.contains(named), "{flags:?}: {error}");
        assert_eq!(files_under(&dir), before, "a refused {flags:?} created or changed a file");
    }
    // A replication flag without --log: clap's usage error.
    let error =
        refused(corridor(&["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT, "--stream", "s"]));
    assert!(error.contains("--log"), "{error}");
    assert_eq!(files_under(&dir), before);
}

/// The linked networks' flags refuse garbage naming the flag, changing nothing: a link
/// listener on a network with no link, or on an address that is not one; a reconciliation
/// or a track across a link missing its other half, or naming a network with no link.
#[test]
fn bad_link_flags_are_refused_naming_the_flag_and_create_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let before = files_under(&dir);
    let hub = ["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT];
    let error = refused_in_one_line(corridor(&[&hub[..], &["--link-listen", ANY_LOOPBACK_PORT]].concat()));
    assert!(error.contains("--link-listen") && error.contains("corridor link init"), "{error}");
    let error = refused(corridor(&[&hub[..], &["--link-listen", "not an address"]].concat()));
    assert!(error.contains("--link-listen"), "{error}");
    let reconcile = ["reconcile", "--dir", text(&dir), "--hub", "https://127.0.0.1:9", "--bank", "X=Y"];
    let error = refused(corridor(&[&reconcile[..], &["--linked-dir", text(&dir)]].concat()));
    assert!(error.contains("--linked-hub"), "{error}");
    let error = refused(corridor(&[
        "reconcile",
        "--dir",
        text(&dir),
        "--linked-dir",
        text(&dir),
        "--linked-hub",
        "u",
    ]));
    assert!(error.contains("--hub"), "{error}");
    let track = [
        "track",
        "--dir",
        text(&dir),
        "--hub",
        "https://127.0.0.1:9",
        "c2a6b2f4-1a3e-4c1d-9a7e-0d6f1e2b3c4d",
    ];
    let error = refused(corridor(&[&track[..], &["--linked-hub", "https://127.0.0.1:9"]].concat()));
    assert!(error.contains("--linked-dir"), "{error}");
    assert_eq!(files_under(&dir), before, "a refused link flag created or changed a file");
}

/// `pay` of 1.00 CNY from A1 to B1 at the payee, through the bank node at `bank`.
fn pay_args<'a>(dir: &'a str, bank: &'a str) -> Vec<&'a str> {
    let order = ["--from", "A1", "--to-bank", PAYEE, "--to", "B1", "--amount", "1.00", "--currency", "CNY"];
    [&["pay", "--dir", dir, "--bank", bank][..], &order].concat()
}

/// Asserts a refusal by the bank node itself, with gRPC status INVALID_ARGUMENT.
fn invalid_argument(outcome: Outcome) {
    let stderr = refused(outcome);
    assert!(stderr.contains("(InvalidArgument)"), "{stderr}");
}

/// A running bank refuses malformed operator requests with INVALID_ARGUMENT and changes
/// nothing: no balance moves and no payment appears (DESIGN.md: "Bad input gets a clear
/// error (gRPC status plus an ISO reason code where one fits) and changes nothing").
#[test]
fn malformed_operator_requests_get_invalid_argument_and_change_nothing() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    network.open_account(PAYER, "A1", "1000.00");
    network.open_account(PAYEE, "B1", "0");
    let before = (network.balances(PAYER), network.balances(PAYEE));

    for amount in ["12.345", "-5", "abc"] {
        // `--amount=-5`: with a space clap would take -5 for a flag and never ask the bank.
        let amount = format!("--amount={amount}");
        let args = ["--from", "A1", "--to-bank", PAYEE, "--to", "B1", "--currency", "EUR", &amount];
        invalid_argument(network.operate(PAYER, "pay", &args));
    }
    invalid_argument(network.operate(PAYER, "status", &["not-a-uetr"]));
    let too_long = "A".repeat(40);
    let open = ["--account", &too_long, "--currency", "CNY", "--name", "Long", "--deposit", "5.00"];
    invalid_argument(network.operate(PAYER, "open-account", &open));

    assert_eq!((network.balances(PAYER), network.balances(PAYEE)), before);
    assert_eq!(succeeded(network.operate(PAYER, "payments", &[])), "", "no payment may appear");
}

/// `open-account --deposit` takes zero however it is written (`0`, `0.0`, `0.00`: the help
/// says the default is 0, and `0.00` was refused as "an amount must be positive"), and
/// `admin cap` takes zero for "no cap" the same way; a negative deposit, one with more
/// decimals than the currency has, or garbage is still refused with INVALID_ARGUMENT and
/// opens nothing (issue 19, item 7; DESIGN.md: "Bad input gets a clear error and changes
/// nothing").
#[test]
fn a_zero_deposit_is_accepted_in_any_spelling_and_garbage_is_refused() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    for (account, zero) in [("Z1", "0"), ("Z2", "0.0"), ("Z3", "0.00"), ("Z4", "000")] {
        network.open_account(PAYER, account, zero);
    }
    let balances = network.balances(PAYER);
    for account in ["Z1", "Z2", "Z3", "Z4"] {
        assert_eq!(balances[account], "0.00 CNY", "{balances:?}");
    }
    for garbage in ["-1", "-0.00", "0.000", "zero", "1,00", " 0"] {
        let deposit = format!("--deposit={garbage}");
        let open = ["--account", "G1", "--currency", "CNY", "--name", "G", &deposit];
        invalid_argument(network.operate(PAYER, "open-account", &open));
    }
    assert_eq!(network.balances(PAYER), balances, "a refused account is not opened");

    let cap = ["admin", "cap", "--participant", PAYER, "--currency", "CNY", "--amount", "0.00"];
    let line = succeeded(network.hub_command(&cap));
    assert!(line.contains("net debit cap 0.00 CNY"), "{line}");
    let refused_cap = ["admin", "cap", "--participant", PAYER, "--currency", "CNY", "--amount=-0.01"];
    refused(network.hub_command(&refused_cap));
}

// ---------------------------------------------------------------------------------------
// The separate-process flow

/// The README's separate-process flow end to end: `pki init`, a hub, two bank nodes, accounts
/// opened with `open-account`, a payment by `pay` that both banks see settled (ACSC) with the
/// money moved; then a payment to an account that does not exist, which the payee rejects
/// with AC01 and which leaves the payer's customer whole (DESIGN.md: "Money is conserved").
#[test]
fn a_payment_between_two_bank_processes_settles_and_a_bad_account_is_rejected() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    network.open_account(PAYER, "A1", "1000.00");
    network.open_account(PAYEE, "B1", "0");

    let uetr = network.pay("A1", "B1", "250.50");
    assert_eq!(network.wait_final(PAYER, &uetr)[1], "ACSC");
    assert_eq!(network.status(PAYEE, &uetr)[1], "ACSC", "the payee sees the payment settled too");
    assert_eq!(network.balances(PAYER)["A1"], "749.50 CNY");
    assert_eq!(network.balances(PAYEE)["B1"], "250.50 CNY");

    let rejected = network.pay("A1", "NO-SUCH-ACCOUNT", "100.00");
    let words = network.wait_final(PAYER, &rejected);
    assert_eq!(words[1..3], ["RJCT", "AC01"], "status words: {words:?}");
    assert_eq!(network.balances(PAYER)["A1"], "749.50 CNY", "a rejected payment returns the money");
    assert_eq!(network.balances(PAYEE)["B1"], "250.50 CNY");
}

/// The hub operator's commands as a user runs them: positions, suspend and resume (a
/// suspended payer's payment is rejected AG01), the tracker's steps, the hub's and the
/// bank's statements, and the reconciler live; garbage gets an error, never a panic.
#[test]
fn the_hub_operator_drives_positions_suspensions_tracking_statements_and_reconciliation() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    network.open_account(PAYER, "A1", "1000.00");
    network.open_account(PAYEE, "B1", "0");
    let positions = succeeded(network.hub_command(&["admin", "positions"]));
    assert!(positions.contains(&format!("{PAYER}  available 1000000000.00 CNY")), "{positions}");

    let suspended = succeeded(network.hub_command(&["admin", "suspend", "--participant", PAYER]));
    assert_eq!(suspended.trim(), format!("{PAYER} is suspended"));
    let while_suspended = network.pay("A1", "B1", "10.00");
    assert_eq!(network.wait_final(PAYER, &while_suspended)[1..3], ["RJCT", "AG01"]);
    succeeded(network.hub_command(&["admin", "resume", "--participant", PAYER]));
    let uetr = network.pay("A1", "B1", "10.00");
    assert_eq!(network.wait_final(PAYER, &uetr)[1], "ACSC");

    let track = succeeded(network.hub_command(&["track", &uetr]));
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "settled"] {
        assert!(track.contains(step), "{step} missing: {track}");
    }
    let hub_statement = ["admin", "statement", "--participant", PAYER, "--currency", "CNY"];
    let statement = succeeded(network.hub_command(&hub_statement));
    assert!(statement.contains(&uetr) && statement.contains("closing balance -10.00 CNY"), "{statement}");
    let statement = succeeded(network.operate(PAYER, "statement", &["--currency", "CNY"]));
    assert!(statement.contains(&uetr) && statement.contains("closing balance -10.00 CNY"), "{statement}");

    let banks: Vec<String> =
        network.banks.iter().map(|(bic, server)| format!("{bic}={}", server.url)).collect();
    let mut reconcile = vec!["reconcile", "--json"];
    for bank in &banks {
        reconcile.extend(["--bank", bank]);
    }
    let report: serde_json::Value =
        serde_json::from_str(&succeeded(network.hub_command(&reconcile))).unwrap();
    assert_eq!(
        (report["breaks"].as_array().map(Vec::len), report["payments_checked"].as_u64()),
        (Some(0), Some(2))
    );

    for garbage in [
        &["admin", "fund", "--participant", "NOTABIC", "--currency", "CNY", "--amount", "1"][..],
        &["admin", "fund", "--participant", PAYER, "--currency", "CNY", "--amount", "-1"],
        &["admin", "cap", "--participant", PAYER, "--currency", "XYZ", "--amount", "1"],
        &["admin", "suspend", "--participant", "ZZZZZZZZXXX"],
        &["admin", "close-window"],
        &["track", "not-a-uetr"],
    ] {
        let stderr = refused(network.hub_command(garbage));
        assert!(stderr.starts_with("error: "), "{garbage:?}: {stderr}");
    }
    let positions_after = succeeded(network.hub_command(&["admin", "positions"]));
    assert!(!positions_after.contains("SUSPENDED"), "{positions_after}");
}

/// Every read command a script parses takes `--json` and prints exactly one JSON document
/// whose fields (README.md, "Scripting with --json") carry the real values: money both as
/// integer minor units and as decimal text, as the dashboard's `/api/state` does; statuses
/// and reason codes as ISO codes; absent values as null. Checked on a settled payment and a
/// rejected one, at both banks and at the hub (issue 19, item 5).
#[test]
fn every_read_command_prints_one_json_document_with_the_real_values() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    network.open_account(PAYER, "A1", "1000.00");
    network.open_account(PAYEE, "B1", "0");
    let settled = network.pay("A1", "B1", "250.50");
    assert_eq!(network.wait_final(PAYER, &settled)[1], "ACSC");
    let rejected = network.pay("A1", "NO-SUCH-ACCOUNT", "100.00");
    assert_eq!(network.wait_final(PAYER, &rejected)[1..3], ["RJCT", "AC01"]);

    let status = json_document(network.operate(PAYER, "status", &["--json", &settled]));
    let expected = json!({
        "uetr": settled, "direction": "outgoing", "counterparty": PAYEE, "debtor_account": "A1",
        "creditor_account": "B1", "amount": 25050, "amount_text": "250.50", "currency": "CNY",
        "status": "ACSC", "reason_code": null, "final": true, "counter_amount": null,
        "counter_amount_text": null, "counter_currency": null, "exchange_rate": null,
        "return_state": "none", "return_reason_code": null, "recall_case_id": null,
        "recall_status": null, "recall_reason_code": null,
    });
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&status[field], value, "status --json field {field}: {status}");
    }
    assert!(status["message_id"].as_str().is_some_and(|id| !id.is_empty()), "{status}");
    let incoming = json_document(network.operate(PAYEE, "status", &[&settled, "--json"]));
    assert_eq!(
        (&incoming["direction"], &incoming["counterparty"], &incoming["amount"], &incoming["status"]),
        (&json!("incoming"), &json!(PAYER), &json!(25050), &json!("ACSC"))
    );

    let payments = json_document(network.operate(PAYER, "payments", &["--json"]));
    let listed: Vec<(&str, &str, &Value)> = payments["payments"]
        .as_array()
        .expect("a payments array")
        .iter()
        .map(|p| (p["uetr"].as_str().unwrap(), p["status"].as_str().unwrap(), &p["reason_code"]))
        .collect();
    assert_eq!(listed.len(), 2, "{payments}");
    assert!(listed.contains(&(settled.as_str(), "ACSC", &Value::Null)), "{payments}");
    assert!(listed.contains(&(rejected.as_str(), "RJCT", &json!("AC01"))), "{payments}");

    let balances = json_document(network.operate(PAYER, "balances", &["--json"]));
    assert_eq!(balances["ledger_balanced"], json!(true), "{balances}");
    let a1 = balances["accounts"].as_array().unwrap().iter().find(|a| a["id"] == "A1").expect("A1");
    assert_eq!(
        a1,
        &json!({ "id": "A1", "kind": "customer", "name": "A1", "balance": 74950,
                 "balance_text": "749.50", "currency": "CNY", "blocked": false })
    );

    let statement = json_document(network.operate(PAYER, "statement", &["--currency", "CNY", "--json"]));
    assert_eq!(
        (&statement["currency"], &statement["closing_balance"], &statement["closing_balance_text"]),
        (&json!("CNY"), &json!(-25050), &json!("-250.50")),
        "{statement}"
    );
    let entries = statement["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "only the settled payment moved the settlement account: {statement}");
    assert_eq!((&entries[0]["uetr"], &entries[0]["amount_text"]), (&json!(settled), &json!("250.50")));

    let track = json_document(network.hub_command(&["track", &settled, "--json"]));
    let payment = &track["payment"];
    assert_eq!(
        (&payment["uetr"], &payment["sender"], &payment["receiver"], &payment["amount"]),
        (&json!(settled), &json!(PAYER), &json!(PAYEE), &json!(25050)),
        "{track}"
    );
    assert_eq!(
        (&payment["amount_text"], &payment["status"], &payment["settled"]),
        (&json!("250.50"), &json!("ACSC"), &json!(true))
    );
    let steps: Vec<&str> =
        track["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "settled"] {
        assert!(steps.contains(&step), "{step} missing: {track}");
    }

    let positions = json_document(network.hub_command(&["admin", "positions", "--json"]));
    assert_eq!(positions["settlement_model"], json!("gross"), "{positions}");
    let position = |bic: &str| {
        positions["positions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["participant"] == bic)
            .cloned()
            .expect(bic)
    };
    let payer = position(PAYER);
    assert_eq!(
        (&payer["currency"], &payer["settled_net"], &payer["settled_net_text"]),
        (&json!("CNY"), &json!(-25050), &json!("-250.50"))
    );
    assert_eq!(
        (&payer["available"], &payer["available_text"]),
        (&json!(99_999_974_950_i64), &json!("999999749.50"))
    );
    assert_eq!(position(PAYEE)["settled_net_text"], json!("250.50"));
}

/// Logs written to a file or a pipe are plain text: no ANSI escape (byte 0x1b) from a node
/// (the hub and the banks, logging at info from start to a Ctrl-C stop) nor from a one-shot command
/// (`demo` with RUST_LOG=info), and none with NO_COLOR set either. Before, every log line
/// in a file carried colour codes (issue 19, item 8). Colour at a terminal is the unit
/// test `logs_are_coloured_only_at_a_terminal_without_no_color` in src/main.rs.
#[test]
fn logs_to_a_file_or_pipe_carry_no_colour_codes() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    // As in the Ctrl-C test: a live session and some state before the stop.
    network.open_account(PAYER, "A1", "10.00");
    let servers = network.banks.iter_mut().map(|(_, server)| server).chain([&mut network.hub]);
    for server in servers {
        assert!(server.interrupt().success());
        let stderr = server.stderr.text();
        assert!(stderr.contains("INFO"), "nodes log at info, so this checks real lines: {stderr}");
        assert!(!stderr.contains('\x1b'), "a node's log in a file has colour codes: {stderr:?}");
    }

    for no_color in [None, Some("1")] {
        let args = ["demo", "--banks", "2", "--payments", "2", "--json", "--no-dashboard"];
        let mut command = common::cli::corridor_command(&args);
        command.env("RUST_LOG", "info").env_remove("NO_COLOR");
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().expect("run corridor demo");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.stderr.len() > 100, "RUST_LOG=info gives log lines to check");
        assert!(!output.stderr.contains(&0x1b), "NO_COLOR={no_color:?}: piped logs have colour codes");
    }
}

// ---------------------------------------------------------------------------------------
// Shutdown

/// Ctrl-C (SIGINT) stops a bank node and the hub cleanly: each drains and exits with
/// status 0 and no panic, so an operator can tell a clean stop from a crash (STYLE.md,
/// "Graceful shutdown").
#[test]
fn hub_and_bank_exit_cleanly_on_sigint() {
    let mut network = Network::start(&[PAYER, PAYEE]);
    // A live session and some state make the drain do real work.
    network.open_account(PAYER, "A1", "10.00");
    let servers = network.banks.iter_mut().map(|(_, server)| server).chain([&mut network.hub]);
    for server in servers {
        let status = server.interrupt();
        let stderr = server.stderr.text();
        assert!(status.success(), "exit {status} after SIGINT\nstderr: {stderr}");
        assert!(shows_no_panic(&stderr), "{stderr}");
    }
}

/// A signal sent the moment a node has said where it listens stops it gracefully: its
/// handlers are in place before it says so. Before, a hub or bank interrupted then was
/// killed by the signal (no exit status, no drain) while it was still starting.
#[test]
fn a_node_interrupted_as_soon_as_it_listens_exits_cleanly() {
    let dir = TempDir::new().unwrap();
    let network = pki_init(&dir, &[PAYER, PAYEE]);
    let net = text(&network);
    for round in 0..3 {
        let mut hub = start_server(&["hub", "--dir", net, "--listen", "127.0.0.1:0"], "hub");
        let status = hub.interrupt();
        assert_eq!(status.code(), Some(0), "round {round}: hub {status}\nstderr: {}", hub.stderr.text());
        let mut bank = start_server(
            &["bank", "--dir", net, "--bic", PAYER, "--hub", &hub.url, "--listen", "127.0.0.1:0"],
            &format!("bank {PAYER}"),
        );
        let status = bank.interrupt();
        assert_eq!(status.code(), Some(0), "round {round}: bank {status}\nstderr: {}", bank.stderr.text());
    }
}

// ---------------------------------------------------------------------------------------
// Demo

/// Runs `demo --json` on four banks and returns its settled and rejected counts, after
/// checking that the summary is whole: every payment final, every ledger balanced.
fn demo_json(seed: &str) -> (u64, u64) {
    let args = ["demo", "--json", "--banks", "4", "--payments", "12", "--seed", seed];
    let stdout = succeeded(corridor(&args));
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON object");
    let count = |field: &str| summary[field].as_u64().unwrap_or_else(|| panic!("{field} in {summary}"));
    let (sent, settled, rejected) =
        (count("payments_sent"), count("payments_settled"), count("payments_rejected"));
    assert_eq!(settled + rejected, sent, "every sent payment is settled or rejected");
    assert_eq!(summary["ledgers_balanced"], true);
    assert_eq!(summary["all_final"], true);
    let banks = summary["banks"].as_array().expect("banks is an array");
    assert_eq!(banks.len(), 4);
    for bank in banks {
        assert!(bank["bic"].is_string(), "{bank}");
        assert!(bank["balances"].as_array().is_some_and(|b| !b.is_empty()), "{bank}");
    }
    (settled, rejected)
}

/// `demo --json` gives machines one JSON object that accounts for every payment, and the
/// same seed reproduces the same outcome (STYLE.md: "the same seed replays the same run").
#[test]
fn demo_json_accounts_for_every_payment_and_a_seed_replays_it() {
    assert_eq!(demo_json("7"), demo_json("7"));
}

/// The largest amount (i64::MAX minor units) is a valid deposit, but a second one, or any
/// payment to an account that holds it, overflows a balance. That is a refusal (a RJCT
/// AM02 for the payment), never a crash (DESIGN.md: "Bad input gets a clear error ... and
/// changes nothing"); it once panicked the bank node while booking.
#[test]
fn a_balance_overflow_is_refused_and_never_crashes_the_bank() {
    const LARGEST_CNY: &str = "92233720368547758.07";
    let mut network = Network::start(&[PAYER, PAYEE]);
    network.open_account(PAYER, "A1", "1000.00");
    network.open_account(PAYEE, "B1", LARGEST_CNY);

    let second = ["--account", "B2", "--currency", "CNY", "--name", "B2", "--deposit", LARGEST_CNY];
    let stderr = refused(network.operate(PAYEE, "open-account", &second));
    let codes = ["(InvalidArgument)", "(FailedPrecondition)", "(OutOfRange)"];
    assert!(codes.iter().any(|code| stderr.contains(code)), "the bank itself must refuse: {stderr}");
    network.balances(PAYEE);

    // B1 cannot hold one fen more, so the payee must reject the payment.
    let uetr = network.pay("A1", "B1", "1.00");
    assert_eq!(network.wait_final(PAYER, &uetr)[1], "RJCT");
    assert_eq!(network.balances(PAYER)["A1"], "1000.00 CNY", "a rejected payment returns the money");
    assert_eq!(network.balances(PAYEE)["B1"], format!("{LARGEST_CNY} CNY"));
    let stderr = network.bank(PAYEE).stderr.text();
    assert!(shows_no_panic(&stderr), "{stderr}");
}

/// `demo --data DIR` keeps the whole network it ran in DIR, so that a user can inspect it
/// afterwards: `reconcile` on it offline agrees with the demo (no break); a second demo
/// refuses to overwrite it.
#[test]
fn demo_data_keeps_the_network_and_it_reconciles_offline() {
    let temp = tempfile::tempdir().unwrap();
    let kept = temp.path().join("net");
    let demo = ["demo", "--banks", "3", "--payments", "30", "--data", text(&kept)];
    succeeded(corridor(&demo));
    assert!(kept.join("directory.json").exists() && kept.join("data").join("hub").exists());
    let report = succeeded(corridor(&["reconcile", "--dir", text(&kept)]));
    assert!(report.contains("30 payments checked across 3 participants, 0 in transit, 0 breaks"), "{report}");
    let stderr = refused(corridor(&demo));
    assert!(stderr.contains("already exists"), "{stderr}");
}

/// A reader that goes away early (`corridor demo --json | head -1`) ends the program
/// quietly: a closed pipe is not a bug, so no panic and no backtrace.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["demo", "--json", "--payments", "5"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Close the reading end before the demo (which takes a while) writes anything.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{stderr}");
}
