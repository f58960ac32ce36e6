//! The reconciler (DESIGN.md: "a reconciler proves that the hub and every bank agree"):
//! a network that ran clean reconciles clean, live over gRPC and offline from its stopped
//! nodes' data; each kind of break, planted by hand in one SQLite store of a stopped
//! network, is found and blamed on the right participant and payment; and
//! `corridor reconcile` tells a user the same with its exit status and JSON report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use corridor::bank::PaymentOrder;
use corridor::directory::Directory;
use corridor::hub::HubRecord;
use corridor::model::{Bic, PaymentStatus, ReasonCode, Uetr};
use corridor::reconcile::{BreakKind, Report, Scope, reconcile, reconcile_in_scope, sources};
use corridor::sim::LocalNetwork;
use corridor::store::codec::LogRecord;
use corridor::store::log::{self, RecordLog};
use corridor::tls::NetworkDir;
use rusqlite::Connection;
use tempfile::{NamedTempFile, TempDir};

const BANKS: [&str; 3] = ["BANKRUMMXXX", "BANKIRTHXXX", "BANKCNSHXXX"];
/// Payments sent by each bank to each other bank: 5 x 6 pairs = 30 that settle.
const ROUNDS: usize = 5;
/// The one payment the receiver rejects (no such account) comes on top.
const PAYMENTS_SENT: usize = ROUNDS * 6 + 1;
/// A customer account that no bank has: the receiver answers RJCT AC01.
const NO_SUCH_ACCOUNT: &str = "C404";
/// A payment is final within milliseconds; this bounds the wait at 60 s.
const FINAL_POLLS_MAX: usize = 2_400;
const FINAL_POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long the live reconciliation waits for payments in transit.
const LIVE_WAIT: Duration = Duration::from_secs(10);
/// An offline `corridor reconcile` takes well under a second; this bounds it at 60 s.
const COMMAND_POLLS_MAX: usize = 3_000;
const COMMAND_POLL_INTERVAL: Duration = Duration::from_millis(20);

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

fn order(creditor_agent: Bic, creditor_account: &str, amount: String) -> PaymentOrder {
    PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: creditor_agent.to_string(),
        creditor_account: creditor_account.into(),
        creditor_name: "Payee".into(),
        amount,
        currency: "CNY".into(),
        remittance_information: "reconciliation test".into(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// A network that ran and settled

/// A payment that settled (ACSC), with who paid and who was paid.
#[derive(Clone, Copy, Debug)]
struct SettledPayment {
    uetr: Uetr,
    sender: Bic,
    receiver: Bic,
}

/// A payment as its sender submitted it.
#[derive(Clone, Copy, Debug)]
struct Sent {
    sender: Bic,
    receiver: Bic,
    uetr: Uetr,
}

/// Starts a network of `BANKS` in `dir`, sends `PAYMENTS_SENT` payments among them (one
/// rejected by its receiver), and waits until every one is final at its sender. Returns
/// the running network and the first payment that settled.
async fn settled_network(dir: &Path) -> (LocalNetwork, SettledPayment) {
    let bics: Vec<Bic> = BANKS.iter().map(|b| bic(b)).collect();
    let mut network = LocalNetwork::create(dir, &bics).await.unwrap();
    network.fund_all("CNY", "1000000000").await.unwrap();
    for bic in &bics {
        let index = network.start_bank(*bic).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Payer", "100000.00").await.unwrap();
        bank.open_account("C002", "CNY", "Payee", "").await.unwrap();
    }
    let (sent, rejected) = send_payments(&network, &bics).await;
    wait_until_final(&network, &sent).await;
    for payment in &sent {
        let expected = if payment.uetr == rejected {
            (PaymentStatus::Rjct, Some(ReasonCode::Ac01))
        } else {
            (PaymentStatus::Acsc, None)
        };
        assert_eq!(final_status(&network, payment), Some(expected), "{payment:?}");
    }
    let Sent { sender, receiver, uetr } = sent[0];
    (network, SettledPayment { uetr, sender, receiver })
}

/// Each bank pays each other bank `ROUNDS` times, then the first bank pays an account the
/// second does not have. Returns every payment sent and the UETR of the one to be rejected.
async fn send_payments(network: &LocalNetwork, bics: &[Bic]) -> (Vec<Sent>, Uetr) {
    let mut sent = Vec::new();
    let mut send = async |sender: Bic, receiver: Bic, account: &str, amount: String| {
        let bank = &network.banks[network.index_of(sender)].bank;
        let uetr = bank.submit_payment(&order(receiver, account, amount)).await.unwrap().uetr;
        sent.push(Sent { sender, receiver, uetr });
        uetr
    };
    for round in 0..ROUNDS {
        for (from, sender) in bics.iter().enumerate() {
            for (to, receiver) in bics.iter().enumerate().filter(|(to, _)| *to != from) {
                let amount = format!("{}.{:02}", 10 * round + from + 1, 7 * to + round);
                send(*sender, *receiver, "C002", amount).await;
            }
        }
    }
    let rejected = send(bics[0], bics[1], NO_SUCH_ACCOUNT, "3.00".into()).await;
    assert_eq!(sent.len(), PAYMENTS_SENT);
    (sent, rejected)
}

/// The payment's final status and reason at its sender, or `None` while it is not final.
fn final_status(network: &LocalNetwork, sent: &Sent) -> Option<(PaymentStatus, Option<ReasonCode>)> {
    let bank = &network.banks[network.index_of(sent.sender)].bank;
    let payment = bank.payment(&sent.uetr.to_string()).unwrap();
    payment.status.is_final().then_some((payment.status, payment.reason))
}

/// Polls (bounded) until every payment in `sent` is final at its sender.
async fn wait_until_final(network: &LocalNetwork, sent: &[Sent]) {
    for _ in 0..FINAL_POLLS_MAX {
        if sent.iter().all(|payment| final_status(network, payment).is_some()) {
            return;
        }
        tokio::time::sleep(FINAL_POLL_INTERVAL).await;
    }
    panic!("payments still not final at their senders after {FINAL_POLLS_MAX} polls");
}

/// The files of a network that ran, settled and stopped.
struct StoppedNetwork {
    /// Holds the temporary directory (PKI at its root, data under `data/`).
    _dir: TempDir,
    network_dir: NetworkDir,
    directory: Directory,
    settled: SettledPayment,
}

impl StoppedNetwork {
    /// Every bank's data directory lives in here, one per BIC.
    fn banks_dir(&self) -> PathBuf {
        self.network_dir.root().join("data").join("banks")
    }

    /// The offline reconciliation of the stopped nodes' data, as it is now.
    fn reconcile(&self) -> Report {
        let hub_dir = self.network_dir.hub_data_dir();
        let (hub, banks) = sources::offline(&self.directory, &hub_dir, &self.banks_dir()).unwrap();
        reconcile(&hub, &banks)
    }

    fn bank_store(&self, bank: Bic) -> PathBuf {
        self.network_dir.bank_data_dir(bank).join("bank.sqlite")
    }

    /// The hub's journal rewritten without the records `unwanted` picks, as a hub restored
    /// from a copy of its store that lacked them would have it: the log chained anew (so
    /// it opens whole) and the derived state removed (rebuilt from it). Returns how many
    /// records were dropped.
    fn drop_from_hub_journal(&self, unwanted: impl Fn(&HubRecord) -> bool) -> usize {
        let dir = self.network_dir.hub_data_dir();
        let (path, rewritten) = (dir.join("hub.log"), dir.join("hub.log.rewritten"));
        let identity = log::owner(&path).unwrap();
        let mut batch = log::Batch::default();
        let mut dropped = 0;
        log::FileLog::read(&path, &identity, 1, &mut |entry| {
            if unwanted(&HubRecord::decode(entry.bytes)?) {
                dropped += 1;
            } else {
                batch.push(|out| out.extend_from_slice(entry.bytes));
            }
            Ok(())
        })
        .unwrap();
        let (mut log, _) = log::FileLog::open(&rewritten, &identity).unwrap();
        log.append(0, &batch).unwrap();
        drop(log);
        std::fs::rename(&rewritten, &path).unwrap();
        std::fs::remove_file(dir.join("hub.sqlite")).unwrap();
        dropped
    }
}

async fn settled_and_stopped() -> StoppedNetwork {
    let dir = tempfile::tempdir().unwrap();
    let (network, settled) = settled_network(dir.path()).await;
    let network_dir = network.network.clone();
    network.stop().await.unwrap();
    let directory = Directory::load(network_dir.root()).unwrap();
    StoppedNetwork { _dir: dir, network_dir, directory, settled }
}

/// Builds a stopped, settled network and checks that its data reconciles clean before
/// any fault is planted in it: whatever the reconciler finds later, the fault put there.
async fn clean_stopped_network() -> StoppedNetwork {
    let network = settled_and_stopped().await;
    let report = network.reconcile();
    assert!(report.is_clean(), "before any fault:\n{}", report.render());
    assert_eq!(report.payments_checked, PAYMENTS_SENT);
    network
}

/// Runs one SQL statement on the SQLite file `store` and returns how many rows it changed.
fn plant(store: &Path, sql: &str, params: impl rusqlite::Params) -> usize {
    Connection::open(store).unwrap().execute(sql, params).unwrap()
}

/// Asserts that `report` holds exactly the `expected` breaks, as (kind, participant, uetr).
fn assert_breaks(report: &Report, expected: &[(BreakKind, Bic, Option<Uetr>)]) {
    assert!(!report.is_clean(), "a planted fault went unnoticed");
    let found: BTreeSet<(BreakKind, String, Option<String>)> =
        report.breaks.iter().map(|b| (b.kind, b.participant.clone(), b.uetr.clone())).collect();
    let expected: BTreeSet<(BreakKind, String, Option<String>)> = expected
        .iter()
        .map(|(kind, bank, uetr)| (*kind, bank.to_string(), uetr.map(|u| u.to_string())))
        .collect();
    assert_eq!(found, expected, "the report:\n{}", report.render());
    assert_eq!(report.breaks.len(), expected.len(), "one break per fault:\n{}", report.render());
}

// ---------------------------------------------------------------------------------------
// A clean network

// A network where every payment ended (settled, or rejected by its receiver) reconciles
// clean, live and offline: "a reconciler proves that the hub and every bank agree", so
// when they do agree it must say so, and count every payment once.
#[tokio::test]
async fn a_network_that_settled_reconciles_clean_live_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (network, _) = settled_network(dir.path()).await;
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let live = sources::reconcile_live(&network.network, &network.hub_url, &banks, LIVE_WAIT).await.unwrap();
    assert!(live.is_clean(), "live:\n{}", live.render());
    assert_eq!(live.payments_in_transit, 0, "live:\n{}", live.render());
    assert_eq!(live.payments_checked, PAYMENTS_SENT);
    assert_eq!(live.participants_checked, BANKS.len());

    let network_dir = network.network.clone();
    network.stop().await.unwrap();
    let directory = Directory::load(network_dir.root()).unwrap();
    let banks_dir = network_dir.root().join("data").join("banks");
    let (hub, banks) = sources::offline(&directory, &network_dir.hub_data_dir(), &banks_dir).unwrap();
    let offline = reconcile(&hub, &banks);
    assert!(offline.is_clean(), "offline:\n{}", offline.render());
    assert_eq!(offline.payments_in_transit, 0);
    assert_eq!(offline.payments_checked, PAYMENTS_SENT);
    assert_eq!(offline.participants_checked, BANKS.len());
}

// A participant whose records are not read (its data is gone offline, or no --bank was
// given for it live) cannot be called clean: its side of the payments the hub exchanged
// with it was not checked, so the reconciler says so with a break naming it. The break is
// about the participant, not a payment (issue 19, item 9: it was a `missing_at_bank` with
// a null UETR), and the report lists it as not checked.
#[tokio::test]
async fn a_participant_whose_records_were_not_read_is_a_break_not_a_clean_report() {
    let dir = tempfile::tempdir().unwrap();
    let (network, payment) = settled_network(dir.path()).await;
    let banks: Vec<(Bic, String)> =
        network.banks.iter().filter(|b| b.bic != payment.receiver).map(|b| (b.bic, b.url.clone())).collect();
    let live = sources::reconcile_live(&network.network, &network.hub_url, &banks, LIVE_WAIT).await.unwrap();
    assert_breaks(&live, &[(BreakKind::ParticipantNotRead, payment.receiver, None)]);
    assert_eq!(live.participants_not_checked, [payment.receiver.to_string()]);
    let network_dir = network.network.clone();
    network.stop().await.unwrap();

    std::fs::remove_dir_all(network_dir.bank_data_dir(payment.receiver)).unwrap();
    let directory = Directory::load(network_dir.root()).unwrap();
    let banks_dir = network_dir.root().join("data").join("banks");
    let (hub, banks) = sources::offline(&directory, &network_dir.hub_data_dir(), &banks_dir).unwrap();
    let offline = reconcile(&hub, &banks);
    assert_breaks(&offline, &[(BreakKind::ParticipantNotRead, payment.receiver, None)]);
    let detail = &offline.breaks[0].detail;
    assert!(detail.contains("not read") && detail.contains("--participants"), "{detail}");
}

// The operator says whose records to check (`--participants`, here `Scope::Only`): a
// participant left out is listed as not checked, not a break, and the others are still
// compared in full, so a fault at one of them is still found (issue 19, item 9).
#[tokio::test]
async fn participants_left_out_of_the_scope_are_listed_as_not_checked_and_the_rest_compared() {
    let network = clean_stopped_network().await;
    let left_out = network.settled.receiver;
    std::fs::remove_dir_all(network.network_dir.bank_data_dir(left_out)).unwrap();
    let scope = Scope::Only(BANKS.iter().map(|b| bic(b)).filter(|b| *b != left_out).collect());
    let hub_dir = network.network_dir.hub_data_dir();
    let (hub, banks) =
        sources::offline_in_scope(&network.directory, &hub_dir, &network.banks_dir(), &scope).unwrap();
    let report = reconcile_in_scope(&hub, &banks, &scope);
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.participants_not_checked, [left_out.to_string()]);
    assert_eq!((report.participants_checked, report.payments_checked), (BANKS.len() - 1, PAYMENTS_SENT));
    assert!(report.render().contains(&format!("not checked (records not read): {left_out}")));

    let sender = network.settled.sender;
    let sql =
        "UPDATE payments SET status = 'RJCT' WHERE seq = (SELECT max(seq) FROM payments WHERE uetr = ?1)";
    assert_eq!(plant(&network.bank_store(sender), sql, [network.settled.uetr.to_string()]), 1);
    let (hub, banks) =
        sources::offline_in_scope(&network.directory, &hub_dir, &network.banks_dir(), &scope).unwrap();
    let report = reconcile_in_scope(&hub, &banks, &scope);
    assert_breaks(&report, &[(BreakKind::StatusMismatch, sender, Some(network.settled.uetr))]);

    // A participant in scope without a store is an error naming it, not an empty bank.
    let every = Scope::Only(BANKS.iter().map(|b| bic(b)).collect());
    let error =
        sources::offline_in_scope(&network.directory, &hub_dir, &network.banks_dir(), &every).unwrap_err();
    assert!(error.contains(&left_out.to_string()) && error.contains("no store"), "{error}");
}

// A participant that runs no node never took part: the payments sent to it are held at
// the hub (store-and-forward), in transit, and it has nothing to compare. Reconciling the
// banks that run is clean without naming it, and lists it as not checked; before, this
// was always a `missing_at_bank` break with a null UETR (issue 19, item 9).
#[tokio::test]
async fn a_participant_that_runs_no_node_is_not_a_break_and_its_held_payments_are_in_transit() {
    let dir = tempfile::tempdir().unwrap();
    let bics: Vec<Bic> = BANKS.iter().map(|b| bic(b)).collect();
    let (running, silent) = (&bics[..2], bics[2]);
    let mut network = LocalNetwork::create(dir.path(), &bics).await.unwrap();
    network.fund_all("CNY", "1000000000").await.unwrap();
    for bic in running {
        let index = network.start_bank(*bic).await.unwrap();
        network.banks[index].bank.open_account("C001", "CNY", "Payer", "100000.00").await.unwrap();
        network.banks[index].bank.open_account("C002", "CNY", "Payee", "").await.unwrap();
    }
    let payer = &network.banks[network.index_of(running[0])].bank;
    for _ in 0..3 {
        payer.submit_payment(&order(silent, "C002", "5.00".into())).await.unwrap();
    }
    let settled = payer.submit_payment(&order(running[1], "C002", "7.00".into())).await.unwrap();
    wait_until_final(&network, &[Sent { sender: running[0], receiver: running[1], uetr: settled.uetr }])
        .await;

    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    // The held payments stay in transit: no point waiting for them to settle.
    let report =
        sources::reconcile_live(&network.network, &network.hub_url, &banks, Duration::ZERO).await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.participants_not_checked, [silent.to_string()]);
    assert_eq!((report.payments_checked, report.payments_in_transit), (4, 3), "{}", report.render());
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// One planted fault per kind of break

// The receiver lost its record of a payment the hub relayed and it confirmed: the hub and
// the bank no longer agree, so the reconciler must name the receiver and the payment.
#[tokio::test]
async fn a_payment_missing_at_the_receiver_is_a_missing_at_bank_break() {
    let network = clean_stopped_network().await;
    let payment = network.settled;
    let deleted = plant(
        &network.bank_store(payment.receiver),
        "DELETE FROM payments WHERE uetr = ?1",
        [payment.uetr.to_string()],
    );
    assert_eq!(deleted, 1);
    assert_breaks(&network.reconcile(), &[(BreakKind::MissingAtBank, payment.receiver, Some(payment.uetr))]);
}

// The hub's journal lost a payment (its pacs.008 and its pacs.002) that both banks booked:
// the banks hold a payment the hub never relayed, and each of them is named.
#[tokio::test]
async fn a_payment_missing_from_the_hub_journal_is_a_missing_at_hub_break_at_both_banks() {
    let network = clean_stopped_network().await;
    let payment = network.settled;
    let dropped = network.drop_from_hub_journal(
        |record| matches!(record, HubRecord::Accepted(m) if m.uetr == Some(payment.uetr)),
    );
    assert_eq!(dropped, 2, "the pacs.008 and the pacs.002");
    assert_breaks(
        &network.reconcile(),
        &[
            (BreakKind::MissingAtHub, payment.sender, Some(payment.uetr)),
            (BreakKind::MissingAtHub, payment.receiver, Some(payment.uetr)),
        ],
    );
}

// A bank's record of a payment has another amount than the one the hub relayed: the
// two disagree on the money itself.
#[tokio::test]
async fn an_amount_changed_at_a_bank_is_an_amount_mismatch_break() {
    let network = clean_stopped_network().await;
    let payment = network.settled;
    let changed = plant(
        &network.bank_store(payment.receiver),
        "UPDATE payments SET minor_units = minor_units + 1 WHERE uetr = ?1",
        [payment.uetr.to_string()],
    );
    assert_eq!(changed, 1);
    assert_breaks(&network.reconcile(), &[(BreakKind::AmountMismatch, payment.receiver, Some(payment.uetr))]);
}

// The hub relayed ACSC for a payment the sender now has as rejected: hub and sender
// disagree on how the payment ended.
#[tokio::test]
async fn a_settled_payment_rejected_at_the_sender_is_a_status_mismatch_break() {
    let network = clean_stopped_network().await;
    let payment = network.settled;
    let changed = plant(
        &network.bank_store(payment.sender),
        // Each change of a payment is a row (append-only): change its latest, its state.
        "UPDATE payments SET status = 'RJCT' WHERE seq = (SELECT max(seq) FROM payments WHERE uetr = ?1)",
        [payment.uetr.to_string()],
    );
    assert_eq!(changed, 1);
    assert_breaks(&network.reconcile(), &[(BreakKind::StatusMismatch, payment.sender, Some(payment.uetr))]);
}

// The receiver booked one payment twice on its settlement account (a second posting,
// under another id, with the same legs): the guarantee "no payment is applied twice" is
// broken, and the reconciler must catch it even though the ledger still balances.
#[tokio::test]
async fn a_payment_booked_twice_on_the_settlement_account_is_an_applied_twice_break() {
    let network = clean_stopped_network().await;
    let payment = network.settled;
    let copied = plant(
        &network.bank_store(payment.receiver),
        "INSERT INTO postings (id, description, legs, booked_unix_ms)
         SELECT id || '-again', description, legs, booked_unix_ms + 1 FROM postings WHERE id = ?1",
        [format!("{}:in", payment.uetr)],
    );
    assert_eq!(copied, 1, "the receiver's posting of the incoming payment");
    assert_breaks(&network.reconcile(), &[(BreakKind::AppliedTwice, payment.receiver, Some(payment.uetr))]);
}

// A posting that is no payment's moves one bank's settlement account by 1.00 CNY: the
// bank's settlement balance no longer equals the hub's position for it.
#[tokio::test]
async fn a_settlement_account_moved_outside_any_payment_is_a_position_mismatch_break() {
    let network = clean_stopped_network().await;
    let bank = network.settled.sender;
    let legs = serde_json::json!([
        {"account": "SYS-SETTLEMENT-CNY", "side": "D", "minor_units": 100, "currency": "CNY"},
        {"account": "SYS-CASH-CNY", "side": "C", "minor_units": 100, "currency": "CNY"},
    ]);
    let inserted = plant(
        &network.bank_store(bank),
        "INSERT INTO postings (id, description, legs, booked_unix_ms)
         VALUES ('adjust:1', 'an adjustment the hub never saw', ?1, 1)",
        [legs.to_string()],
    );
    assert_eq!(inserted, 1);
    assert_breaks(&network.reconcile(), &[(BreakKind::PositionMismatch, bank, None)]);
}

// ---------------------------------------------------------------------------------------
// The command line

/// How `corridor ARGS` ended.
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `corridor ARGS` to completion (bounded), its output captured in files so that a
/// long report can never block it on a full pipe.
fn corridor(args: &[&str]) -> Outcome {
    let (stdout, stderr) = (NamedTempFile::new().unwrap(), NamedTempFile::new().unwrap());
    let mut child = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(stdout.reopen().unwrap())
        .stderr(stderr.reopen().unwrap())
        .spawn()
        .unwrap();
    let status = (0..COMMAND_POLLS_MAX).find_map(|_| {
        let status = child.try_wait().unwrap();
        if status.is_none() {
            std::thread::sleep(COMMAND_POLL_INTERVAL);
        }
        status
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("`corridor {}` did not finish", args.join(" "));
    };
    let read = |file: &NamedTempFile| std::fs::read_to_string(file.path()).unwrap();
    Outcome { status, stdout: read(&stdout), stderr: read(&stderr) }
}

/// Runs `corridor reconcile --dir DIR --json`; returns its exit code and its report.
fn reconcile_json(dir: &Path) -> (Option<i32>, serde_json::Value) {
    let outcome = corridor(&["reconcile", "--dir", dir.to_str().unwrap(), "--json"]);
    let report = serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}):\n{}\nstderr: {}", outcome.stdout, outcome.stderr)
    });
    (outcome.status.code(), report)
}

/// Asserts that `outcome` is "could not run" as DESIGN.md wants bad input answered:
/// exit status 2, an error on stderr, no panic, no report on stdout. Returns stderr.
fn could_not_run(outcome: Outcome) -> String {
    assert_eq!(outcome.status.code(), Some(2), "stdout: {}\nstderr: {}", outcome.stdout, outcome.stderr);
    assert!(outcome.stderr.contains("error"), "no error on stderr: {:?}", outcome.stderr);
    assert!(!outcome.stderr.contains("panicked"), "it panicked: {}", outcome.stderr);
    assert!(outcome.stdout.trim().is_empty(), "a report on a refusal: {}", outcome.stdout);
    outcome.stderr
}

// `corridor reconcile` as a user runs it on a stopped network: the JSON report and the
// exit status (0 clean, 1 breaks, 2 could not run) are how a user or a script learns
// whether "the hub and every bank agree".
#[test]
fn corridor_reconcile_reports_agreement_breaks_and_bad_input_by_exit_status() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let network = runtime.block_on(settled_and_stopped());
    let dir = network.network_dir.root();

    let (code, report) = reconcile_json(dir);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["breaks"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["payments_checked"], PAYMENTS_SENT, "{report:#}");

    let payment = network.settled;
    let sql =
        "UPDATE payments SET status = 'RJCT' WHERE seq = (SELECT max(seq) FROM payments WHERE uetr = ?1)";
    assert_eq!(plant(&network.bank_store(payment.sender), sql, [payment.uetr.to_string()]), 1);
    let (code, report) = reconcile_json(dir);
    assert_eq!(code, Some(1), "{report:#}");
    let breaks = report["breaks"].as_array().expect("breaks is a list");
    assert_eq!(breaks.len(), 1, "{report:#}");
    let planted = &breaks[0];
    assert_eq!(planted["kind"], "status_mismatch", "{report:#}");
    assert_eq!(planted["uetr"], payment.uetr.to_string(), "{report:#}");
    assert_eq!(planted["participant"], payment.sender.to_string(), "{report:#}");
    assert!(planted["detail"].as_str().is_some_and(|d| !d.is_empty()), "{report:#}");

    let not_a_network = tempfile::tempdir().unwrap();
    let dir_text = not_a_network.path().to_str().unwrap();
    let stderr = could_not_run(corridor(&["reconcile", "--dir", dir_text, "--json"]));
    assert!(stderr.contains("cannot reconcile"), "{stderr}");

    let dir_text = dir.to_str().unwrap();
    let args = ["reconcile", "--dir", dir_text, "--hub", "https://127.0.0.1:1", "--bank", "NOTAPAIR"];
    let stderr = could_not_run(corridor(&args));
    assert!(stderr.contains("NOTAPAIR") && stderr.contains("BIC=URL"), "{stderr}");
}

/// Runs `corridor reconcile --dir DIR --json ARGS`; returns its exit code and its report.
fn reconcile_json_with(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let outcome = corridor(&[&["reconcile", "--dir", dir.to_str().unwrap(), "--json"][..], args].concat());
    let report = serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| {
        panic!("not one JSON object ({e}):\n{}\nstderr: {}", outcome.stdout, outcome.stderr)
    });
    (outcome.status.code(), report)
}

// `corridor reconcile --participants BIC,BIC` as a user runs it: a participant whose data
// is gone is a `participant_not_read` break (exit 1) until the operator leaves it out,
// then the rest reconciles clean (exit 0) and the report lists it as not checked; a
// participant named but unreadable, or not of this network, or garbage, cannot run (exit
// 2), live as offline (issue 19, item 9).
#[test]
fn corridor_reconcile_participants_says_whose_records_to_check() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let network = runtime.block_on(settled_and_stopped());
    let dir = network.network_dir.root();
    let gone = network.settled.receiver;
    std::fs::remove_dir_all(network.network_dir.bank_data_dir(gone)).unwrap();

    let (code, report) = reconcile_json_with(dir, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    let expected = serde_json::json!([{
        "kind": "participant_not_read", "uetr": null, "participant": gone.to_string(),
        "detail": report["breaks"][0]["detail"],
    }]);
    assert_eq!(report["breaks"], expected, "{report:#}");
    assert_eq!(report["participants_not_checked"], serde_json::json!([gone.to_string()]));

    let others: Vec<&str> = BANKS.iter().copied().filter(|b| *b != gone.as_str()).collect();
    let (code, report) = reconcile_json_with(dir, &["--participants", &others.join(",")]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["breaks"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["payments_checked"], PAYMENTS_SENT, "{report:#}");
    assert_eq!(report["participants_checked"], BANKS.len() - 1, "{report:#}");
    assert_eq!(report["participants_not_checked"], serde_json::json!([gone.to_string()]));

    let dir_text = dir.to_str().unwrap();
    let offline =
        |participants: &str| corridor(&["reconcile", "--dir", dir_text, "--participants", participants]);
    let stderr = could_not_run(offline(gone.as_str()));
    assert!(stderr.contains(gone.as_str()) && stderr.contains("no store"), "{stderr}");
    let stderr = could_not_run(offline("NOTABIC"));
    assert!(stderr.contains("--participants"), "{stderr}");
    let stderr = could_not_run(offline("ZZZZZZZZXXX"));
    assert!(stderr.contains("not a participant"), "{stderr}");

    // Live, --participants and --bank must name the same banks: checked before connecting.
    let bank = format!("{}=https://127.0.0.1:1", others[0]);
    let live = |participants: &str| {
        corridor(&[
            "reconcile",
            "--dir",
            dir_text,
            "--hub",
            "https://127.0.0.1:1",
            "--bank",
            &bank,
            "--participants",
            participants,
        ])
    };
    let stderr = could_not_run(live(&others.join(",")));
    assert!(stderr.contains(&format!("no --bank {}=URL", others[1])), "{stderr}");
    let stderr = could_not_run(live(others[1]));
    assert!(stderr.contains(&format!("{} is not in --participants", others[0])), "{stderr}");
}
