//! Store-and-forward that loses nothing (DESIGN.md, "No acknowledged message is lost"
//! and "No payment is applied twice"): hub and banks keep their state in SQLite, carry
//! on after a restart, and refuse storage that is not theirs. Real gRPC with mTLS.
//! (The same guarantees under `kill -9` are in `tests/crash.rs`.)

mod common;

use std::time::Duration;

use common::bic;
#[cfg(unix)]
use common::cli;
use corridor::bank::{Bank, PaymentOrder};
use corridor::directory::Directory;
use corridor::hub::{Hub, HubConfig};
use corridor::model::{Bic, PaymentStatus};
use corridor::sim::LocalNetwork;
use corridor::tls::Role;

const RU: &str = "BANKRUMMXXX";
const IR: &str = "BANKIRTHXXX";

fn order(amount: &str) -> PaymentOrder {
    PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: IR.into(),
        creditor_account: "C002".into(),
        creditor_name: "Sara".into(),
        amount: amount.into(),
        currency: "CNY".into(),
        remittance_information: String::new(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

fn balance(network: &LocalNetwork, bank: Bic, account: &str) -> i64 {
    let (accounts, balanced) = network.banks[network.index_of(bank)].bank.accounts();
    assert!(balanced, "{bank}'s ledger balances");
    accounts.iter().find(|a| a.id.as_str() == account).map_or(0, |a| a.balance)
}

/// Polls (bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..2_400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A network of RU and IR where both banks have opened their accounts; IR is then
/// stopped, so that everything sent to it waits at the hub.
async fn network_with_ir_offline(dir: &std::path::Path, deposit: &str) -> LocalNetwork {
    let mut network = LocalNetwork::create(dir, &[bic(RU), bic(IR)]).await.unwrap();
    network.fund_all("CNY", "1000000000").await.unwrap();
    for b in [RU, IR] {
        let index = network.start_bank(bic(b)).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Payer", deposit).await.unwrap();
        bank.open_account("C002", "CNY", "Payee", "").await.unwrap();
    }
    network.stop_bank(bic(IR)).await.unwrap();
    network
}

/// A bank confirms the deliveries whose processing became durable together with one
/// cumulative Delivered ("every delivery up to this number"), not one per delivery
/// (docs/PERFORMANCE.md, part load: frames and hub work per message): a receiver back
/// from an outage with 100 payments waiting gets each exactly once and the hub forgets
/// them all, told by far fewer confirmations than deliveries (one per delivery before),
/// in order, the last covering the 100th.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_processed_together_are_confirmed_together() {
    use corridor::hub::HubEvent;
    const PAYMENTS: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_ir_offline(dir.path(), "1000000").await;
    let ru = network.banks[0].bank.clone();
    for _ in 0..PAYMENTS {
        ru.submit_payment(&order("1.00")).await.unwrap();
    }
    let hub = network.hub().clone();
    eventually("the hub holds them all for IR", || hub.queued_for(bic(IR)) == PAYMENTS as usize).await;
    let confirmations = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut events = hub.subscribe_events();
    let listener = {
        let confirmations = confirmations.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(HubEvent::Delivered { participant, osn, .. }) if participant == bic(IR) => {
                        confirmations.lock().unwrap().push(osn)
                    }
                    Ok(_) => {}
                    Err(error) => panic!("the hub's events: {error}"),
                }
            }
        })
    };
    network.start_bank(bic(IR)).await.unwrap();
    let confirmed = || confirmations.lock().unwrap().last() == Some(&PAYMENTS);
    eventually("IR confirmed the last delivery", confirmed).await;
    listener.abort();
    assert_eq!(hub.queued_for(bic(IR)), 0);
    eventually("every payment is final at RU", || ru.payments().unwrap().iter().all(|p| p.status.is_final()))
        .await;
    assert_eq!(balance(&network, bic(IR), "C002"), PAYMENTS as i64 * 100, "each credited once");
    let confirmations = confirmations.lock().unwrap().clone();
    assert!(confirmations.is_sorted(), "{confirmations:?}");
    let count = confirmations.len() as u64;
    assert!(count < PAYMENTS / 2, "{count} confirmations for {PAYMENTS} deliveries: {confirmations:?}");
    drop((ru, hub));
    network.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_offline_for_1000_payments_gets_each_exactly_once_when_it_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_ir_offline(dir.path(), "1000000").await;
    let ru = network.banks[0].bank.clone();
    let mut submissions = tokio::task::JoinSet::new();
    for _ in 0..1_000 {
        let ru = ru.clone();
        submissions.spawn(async move { ru.submit_payment(&order("1.00")).await.unwrap().uetr });
    }
    let uetrs: std::collections::HashSet<_> = submissions.join_all().await.into_iter().collect();
    assert_eq!(uetrs.len(), 1_000);
    {
        let hub = network.hub().clone();
        eventually("the hub holds all 1000 for IR", || hub.queued_for(bic(IR)) == 1_000).await;
    }

    network.start_bank(bic(IR)).await.unwrap();
    eventually("every payment is final at RU", || ru.payments().unwrap().iter().all(|p| p.status.is_final()))
        .await;
    assert!(ru.payments().unwrap().iter().all(|p| p.status == PaymentStatus::Acsc));
    let ir = network.banks[network.index_of(bic(IR))].bank.clone();
    let received = ir.payments().unwrap();
    assert_eq!(received.len(), 1_000, "each payment arrived once");
    assert!(received.iter().all(|p| uetrs.contains(&p.uetr)));
    assert_eq!(balance(&network, bic(IR), "C002"), 100_000, "1000 x 1.00, credited once each");
    assert_eq!(balance(&network, bic(RU), "C001"), 100_000_000 - 100_000);
    assert_eq!(
        balance(&network, bic(RU), "SYS-SETTLEMENT-CNY") + balance(&network, bic(IR), "SYS-SETTLEMENT-CNY"),
        0
    );
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_hub_restarted_between_ack_and_delivery_delivers_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_ir_offline(dir.path(), "100").await;
    let ru = network.banks[0].bank.clone();
    let payment = ru.submit_payment(&order("12.34")).await.unwrap();
    let uetr = payment.uetr.to_string();
    eventually("the hub ACKs", || ru.payment(&uetr).unwrap().status == PaymentStatus::Actc).await;
    assert_eq!(network.hub().queued_for(bic(IR)), 1);

    network.restart_hub().await.unwrap();
    assert_eq!(network.hub().queued_for(bic(IR)), 1, "the restarted hub still holds the message");
    network.start_bank(bic(IR)).await.unwrap();
    eventually("the payment settles", || ru.payment(&uetr).unwrap().status == PaymentStatus::Acsc).await;
    assert_eq!(balance(&network, bic(IR), "C002"), 1_234);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_bank_restarted_from_its_data_carries_on_exactly_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_ir_offline(dir.path(), "100").await;
    network.start_bank(bic(IR)).await.unwrap();
    let ru = network.banks[0].bank.clone();
    let first = ru.submit_payment(&order("10.00")).await.unwrap().uetr.to_string();
    eventually("the first payment settles", || ru.payment(&first).unwrap().status == PaymentStatus::Acsc)
        .await;
    network.banks[network.index_of(bic(IR))].bank.set_account_blocked("C001", true).await.unwrap();
    let before = (ru.accounts(), ru.payments().unwrap());
    drop(ru);

    network.stop_bank(bic(RU)).await.unwrap();
    network.start_bank(bic(RU)).await.unwrap();
    let ru = network.banks[network.index_of(bic(RU))].bank.clone();
    assert_eq!((ru.accounts(), ru.payments().unwrap()), before, "ledger and payments exactly as before");

    network.stop_bank(bic(IR)).await.unwrap();
    network.start_bank(bic(IR)).await.unwrap();
    let ir = network.banks[network.index_of(bic(IR))].bank.clone();
    let (accounts, _) = ir.accounts();
    assert!(accounts.iter().any(|a| a.id.as_str() == "C001" && a.blocked), "flags survive a restart too");

    let second = ru.submit_payment(&order("5.00")).await.unwrap().uetr.to_string();
    eventually("a new payment settles", || ru.payment(&second).unwrap().status == PaymentStatus::Acsc).await;
    assert_eq!(balance(&network, bic(RU), "C001"), 10_000 - 1_500);
    assert_eq!(balance(&network, bic(IR), "C002"), 1_500);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn storage_that_is_not_this_nodes_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_ir_offline(dir.path(), "100").await;
    let pki = network.network.clone();
    network.stop().await.unwrap();
    let directory = || Directory::load(pki.root()).unwrap();
    let bank = |as_bic: &str, data: &std::path::Path| {
        Bank::open(pki.signing_identity(Role::Bank(bic(as_bic))).unwrap(), directory(), data).err()
    };

    // Another participant's data directory.
    let refusal = bank(RU, &pki.bank_data_dir(bic(IR))).expect("IR's store is not RU's");
    assert!(refusal.contains("belongs to bank BANKIRTHXXX"), "{refusal}");
    // The hub's log is not a bank's store either, even under a bank's file name (in a
    // directory of its own: beside `hub.log` it is refused before it is read, by
    // `a_data_directory_of_another_role_or_bank_is_refused_naming_whose_it_is_and_left_unchanged`).
    let hub_store = pki.hub_data_dir();
    let renamed = dir.path().join("renamed");
    std::fs::create_dir(&renamed).unwrap();
    std::fs::copy(hub_store.join("hub.log"), renamed.join("bank.log")).unwrap();
    let refusal = bank(RU, &renamed).expect("a hub's log is not a bank's store");
    assert!(refusal.contains("belongs to hub"), "{refusal}");

    // A newer schema of the derived state: refused, not rebuilt (it may hold what this
    // build cannot read).
    let ru_store = pki.bank_data_dir(bic(RU)).join("bank.sqlite");
    let connection = rusqlite::Connection::open(&ru_store).unwrap();
    connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", []).unwrap();
    drop(connection);
    let refusal = bank(RU, &pki.bank_data_dir(bic(RU))).expect("a newer schema is refused");
    assert!(refusal.contains("newer Corridor"), "{refusal}");

    // A corrupt log is an error, never a fresh empty start, and is left as it is.
    let ir_log = pki.bank_data_dir(bic(IR)).join("bank.log");
    std::fs::write(&ir_log, b"this is not a log, whatever its name says").unwrap();
    let refusal = bank(IR, &pki.bank_data_dir(bic(IR))).expect("a corrupt store is refused");
    assert!(refusal.contains("bank.log: not a Corridor log"), "{refusal}");
    assert_eq!(std::fs::read(&ir_log).unwrap(), b"this is not a log, whatever its name says");

    // A log cut back behind what its derived state holds lost acknowledged records: the
    // hub refuses it, naming the file, rather than carry on without them.
    let hub_file = hub_store.join("hub.log");
    let mut bytes = std::fs::read(&hub_file).unwrap();
    bytes.truncate(100);
    std::fs::write(&hub_file, &bytes).unwrap();
    let identity = pki.signing_identity(Role::Hub).unwrap();
    let refusal =
        Hub::open(HubConfig::default(), directory(), identity, &hub_store).err().expect("truncated");
    assert!(refusal.contains("hub.log") && refusal.contains("the log lost records"), "{refusal}");
}

#[test]
fn a_data_directory_in_use_by_a_running_node_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = corridor::tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let open = || {
        let identity = pki.signing_identity(Role::Bank(bic(RU))).unwrap();
        Bank::open(identity, Directory::load(pki.root()).unwrap(), &pki.bank_data_dir(bic(RU)))
    };
    let running = open().unwrap();
    let refusal = open().err().expect("a second node on the same data is refused");
    assert!(refusal.contains("in use by another running node"), "{refusal}");
    drop(running);
    open().expect("free again once the first node is gone");
}

#[test]
fn a_store_left_half_made_by_a_crash_is_built_again_whole() {
    let dir = tempfile::tempdir().unwrap();
    let pki = corridor::tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let data = pki.bank_data_dir(bic(RU));
    std::fs::create_dir_all(&data).unwrap();
    // A crash while creating the store left only the side files behind.
    std::fs::write(data.join("bank.log-new"), b"half").unwrap();
    std::fs::write(data.join("bank.sqlite-new"), b"half").unwrap();
    let identity = pki.signing_identity(Role::Bank(bic(RU))).unwrap();
    let bank = Bank::open(identity, Directory::load(pki.root()).unwrap(), &data).unwrap();
    assert_eq!(bank.payments().unwrap(), vec![]);
    assert!(!data.join("bank.log-new").exists() && !data.join("bank.sqlite-new").exists());
}

/// A node given the data directory of a node of another role, or of another bank, stops
/// with one line naming the file that shows whose directory it is, and changes nothing
/// on disk: not while that node runs (each node's lock covers its own role's file only,
/// so a bank once started beside a running hub's journal), and not after it stopped
/// (when a bank once created `bank.sqlite` beside `hub.sqlite` and started over empty).
/// README: "A data directory of another participant or role ... stops the node with a
/// message that says so; it never starts over empty." Real processes, as a user meets it.
#[cfg(unix)] // SIGINT
#[test]
fn a_data_directory_of_another_role_or_bank_is_refused_naming_whose_it_is_and_left_unchanged() {
    use common::cli::{
        ANY_LOOPBACK_PORT, corridor, files_under, pki_init, refused_in_one_line, start_server, text,
    };
    use std::path::Path;
    let temp = tempfile::tempdir().unwrap();
    let net = pki_init(&temp, &[RU, IR]);
    let (hub_data, ru_data) = (net.join("data/hub"), net.join("data/banks").join(RU));
    fn strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }
    let hub_args = |data: &Path| {
        ["hub", "--dir", text(&net), "--listen", ANY_LOOPBACK_PORT, "--data", text(data)].map(str::to_owned)
    };
    let mut hub = start_server(&strs(&hub_args(&hub_data)), "hub");
    let hub_url = hub.url.clone();
    let bank_args = |bic: &'static str, data: &Path| {
        let (dir, data) = (text(&net), text(data));
        ["bank", "--dir", dir, "--bic", bic, "--hub", &hub_url, "--listen", ANY_LOOPBACK_PORT, "--data", data]
            .map(str::to_owned)
    };
    let mut ru = start_server(&strs(&bank_args(RU, &ru_data)), &format!("bank {RU}"));
    let names = |dir: &Path| -> Vec<_> {
        let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        names
    };
    let refuse_all_three = |running: &str| {
        let line = refused_in_one_line(corridor(&strs(&bank_args(IR, &hub_data))));
        assert!(line.contains("hub.log") && line.contains("a hub's data directory, not a bank's"), "{line}");
        let line = refused_in_one_line(corridor(&strs(&hub_args(&ru_data))));
        assert!(line.contains("bank.log") && line.contains("a bank's data directory, not a hub's"), "{line}");
        let line = refused_in_one_line(corridor(&strs(&bank_args(IR, &ru_data))));
        assert!(line.contains(&format!("bank.log: belongs to bank BANKRUMMXXX{running}")), "{line}");
    };

    // While the other node runs its files change under it, but no file is added.
    let (hub_files, ru_files) = (names(&hub_data), names(&ru_data));
    refuse_all_three(", which is running");
    assert_eq!((names(&hub_data), names(&ru_data)), (hub_files, ru_files), "no file added");

    // Stopped: not a byte changes.
    assert!(ru.interrupt().success() && hub.interrupt().success());
    let before = files_under(&net);
    refuse_all_three(", not to bank BANKIRTHXXX");
    assert!(files_under(&net) == before, "a refused node changed files under {}", net.display());
}

/// A bank whose store was rolled back to an older copy (restored from a backup) lost
/// messages it had sent and the hub accepted: the hub's journal is ahead of it with new
/// messages, not only with duplicates. Its own node must refuse the session, saying its
/// store is behind the hub's journal and naming both numbers, and send nothing, even a
/// payment ordered meanwhile (SECURITY.md, item 4; README: "it never starts over"): if it
/// followed the hub's number as it does after a replayed duplicate (tests/security.rs),
/// the payments it lost would be out of its books for good. With the newest copy back it
/// carries on. Real processes, as an operator restoring a backup meets it.
#[cfg(unix)] // SIGINT
#[test]
fn a_bank_whose_store_was_rolled_back_refuses_its_session_and_sends_nothing() {
    use common::cli::{ANY_LOOPBACK_PORT, Server, pki_init, start_server, text};
    let temp = tempfile::tempdir().unwrap();
    let net = pki_init(&temp, &[RU, IR]);
    let (hub_data, ru_data) = (net.join("data/hub"), net.join("data/banks").join(RU));
    let mut hub = start_server(&["hub", "--dir", text(&net), "--listen", ANY_LOOPBACK_PORT], "hub");
    let nodes = Nodes { net: &net, hub_url: hub.url.clone() };
    nodes.fund(RU);
    let (mut ru, mut ir) = (nodes.start_bank(RU), nodes.start_bank(IR));
    nodes.open_account(&ru, "C001", "100");
    nodes.open_account(&ir, "C002", "0");
    let mut settled = vec![nodes.settle(&ru, "1.00")]; // input sequence 1

    // A backup of RU's store, stopped: its next input sequence number is 2.
    assert!(ru.interrupt().success());
    let backup = temp.path().join("backup");
    copy_dir(&ru_data, &backup);
    ru = nodes.start_bank(RU);
    settled.extend([nodes.settle(&ru, "2.00"), nodes.settle(&ru, "3.00")]); // 2 and 3
    assert!(ru.interrupt().success());
    let newest = temp.path().join("newest");
    std::fs::rename(&ru_data, &newest).unwrap();
    copy_dir(&backup, &ru_data);

    ru = nodes.start_bank(RU);
    let refusals = |ru: &Server| ru.stderr.text().matches("behind the hub's journal").count();
    poll("the rolled-back bank refuses its session", || refusals(&ru) > 0);
    let log = ru.stderr.text();
    assert!(
        log.contains("refused its session with the hub")
            && log.contains("the hub accepted a new message from this bank on input sequence 3, but")
            && log.contains("this bank's store says its next is 2")
            && log.contains("(restored from an older copy?)"),
        "{log}"
    );
    // It takes orders, but sends none: the next session is refused before anything goes out.
    let unsent = nodes.pay(&ru, "4.00");
    let before = refusals(&ru);
    poll("the bank refuses its next session too", || refusals(&ru) > before);
    assert!(!nodes.status(&ru, &unsent).contains(" ACSC"), "a payment of the rolled-back bank went out");
    assert!(ru.interrupt().success() && ir.interrupt().success() && hub.interrupt().success());
    let (_, payments) = corridor::hub::read_journal(&Directory::load(&net).unwrap(), &hub_data).unwrap();
    let mut at_hub: Vec<_> = payments.iter().map(|p| p.uetr.to_string()).collect();
    at_hub.sort();
    settled.sort();
    assert_eq!(at_hub, settled, "the hub has the three payments and nothing from the rolled-back store");

    // With the newest copy back (and the hub again), RU carries on.
    std::fs::remove_dir_all(&ru_data).unwrap();
    std::fs::rename(&newest, &ru_data).unwrap();
    let listen = &nodes.hub_url["https://".len()..];
    let mut hub = start_server(&["hub", "--dir", text(&net), "--listen", listen], "hub");
    let (mut ru, mut ir) = (nodes.start_bank(RU), nodes.start_bank(IR));
    nodes.settle(&ru, "5.00");
    assert_eq!(refusals(&ru), 0, "{}", ru.stderr.text());
    assert!(ru.interrupt().success() && ir.interrupt().success() && hub.interrupt().success());
}

/// The `corridor` commands an operator runs against a network of processes: its
/// directory and the hub's URL.
#[cfg(unix)]
struct Nodes<'a> {
    net: &'a std::path::Path,
    hub_url: String,
}

#[cfg(unix)]
impl Nodes<'_> {
    /// The hub operator prefunds `bic`'s position, far beyond any payment here.
    fn fund(&self, bic: &str) {
        let fund = ["fund", "--participant", bic, "--currency", "CNY", "--amount", "1000000"];
        let admin = ["admin", "--dir", cli::text(self.net), "--hub", &self.hub_url];
        cli::succeeded(cli::corridor(&[&admin[..], &fund].concat()));
    }

    fn start_bank(&self, bic: &str) -> cli::Server {
        let (dir, listen) = (cli::text(self.net), cli::ANY_LOOPBACK_PORT);
        let args = ["bank", "--dir", dir, "--bic", bic, "--hub", &self.hub_url, "--listen", listen];
        cli::start_server(&args, &format!("bank {bic}"))
    }

    /// Runs an operator command against `bank` and returns what it printed.
    fn operate(&self, bank: &cli::Server, command: &str, args: &[&str]) -> String {
        let head = [command, "--dir", cli::text(self.net), "--bank", &bank.url];
        cli::succeeded(cli::corridor(&[&head[..], args].concat()))
    }

    fn open_account(&self, bank: &cli::Server, account: &str, deposit: &str) {
        let args = ["--account", account, "--currency", "CNY", "--name", account, "--deposit", deposit];
        self.operate(bank, "open-account", &args);
    }

    /// Pays `amount` CNY from RU's C001 to IR's C002; returns the UETR.
    fn pay(&self, ru: &cli::Server, amount: &str) -> String {
        let order =
            ["--from", "C001", "--to-bank", IR, "--to", "C002", "--amount", amount, "--currency", "CNY"];
        self.operate(ru, "pay", &order).trim().to_owned()
    }

    fn status(&self, bank: &cli::Server, uetr: &str) -> String {
        self.operate(bank, "status", &[uetr])
    }

    /// Pays and waits (bounded) until the payment is settled at the payer.
    fn settle(&self, ru: &cli::Server, amount: &str) -> String {
        let uetr = self.pay(ru, amount);
        poll(&format!("payment {uetr} settles"), || self.status(ru, &uetr).contains(" ACSC"));
        uetr
    }
}

/// Polls (bounded, about 30 s) until `done` holds.
#[cfg(unix)]
fn poll(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting until {what}");
}

/// Copies the directory `from` (files and subdirectories) to a new directory `to`.
#[cfg(unix)]
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Every table of the SQLite file at `path`, row by row, as text: what a node's derived
/// state holds.
fn dump_tables(path: &std::path::Path) -> Vec<String> {
    let connection = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = connection
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut dump = Vec::new();
    for table in tables {
        let mut statement = connection.prepare(&format!("SELECT * FROM {table} ORDER BY 1")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<String> =
                (0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect();
            dump.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    dump
}

/// Issue 21: a node's log is its one durable copy; what it queries is derived state,
/// applied behind the log and rebuildable from it. So a derived state that is lost,
/// damaged (a file deleted, garbage written over it, a power loss) or of an older schema
/// (written by an earlier build) is rebuilt from the log
/// when the node opens its store, equal to what it was, table by table and row by row,
/// and the node carries on: a new payment settles on the rebuilt stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_derived_state_lost_or_damaged_is_rebuilt_from_the_log_equal_to_what_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_ir_offline(dir.path(), "100").await;
    network.start_bank(bic(IR)).await.unwrap();
    let ru = network.banks[0].bank.clone();
    let mut uetrs = Vec::new();
    for amount in ["1.00", "2.00", "3.00"] {
        uetrs.push(ru.submit_payment(&order(amount)).await.unwrap().uetr.to_string());
    }
    eventually("the payments settle", || {
        uetrs.iter().all(|uetr| ru.payment(uetr).unwrap().status == PaymentStatus::Acsc)
    })
    .await;
    drop(ru);
    let pki = network.network.clone();
    network.stop().await.unwrap();

    let derived = [
        pki.hub_data_dir().join("hub.sqlite"),
        pki.bank_data_dir(bic(RU)).join("bank.sqlite"),
        pki.bank_data_dir(bic(IR)).join("bank.sqlite"),
    ];
    let before: Vec<Vec<String>> = derived.iter().map(|path| dump_tables(path)).collect();
    assert!(before.iter().all(|dump| dump.iter().any(|row| row.starts_with("messages: "))), "{before:?}");
    // Of the schema before this build's (a derived state behind a log, schema 6), lost,
    // and garbage written over it (the bank's -wal and -shm removed, as a power loss may
    // leave them).
    let hub = rusqlite::Connection::open(&derived[0]).unwrap();
    hub.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'", []).unwrap();
    drop(hub);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", derived[2].display()));
    }
    std::fs::write(&derived[1], b"garbage over the derived state").unwrap();
    let _ = std::fs::remove_file(format!("{}-wal", derived[1].display()));

    let directory = Directory::load(pki.root()).unwrap();
    corridor::hub::HubJournal::read(&pki.hub_data_dir(), directory.hub()).unwrap();
    for bank in [RU, IR] {
        corridor::bank::BankStore::read(&pki.bank_data_dir(bic(bank)), bic(bank)).unwrap();
    }
    let after: Vec<Vec<String>> = derived.iter().map(|path| dump_tables(path)).collect();
    for (path, (before, after)) in derived.iter().zip(before.iter().zip(&after)) {
        assert_eq!(before, after, "{} rebuilt from the log", path.display());
    }

    // The nodes run on the rebuilt stores: a new payment settles.
    let mut network = LocalNetwork::start_hub(pki, HubConfig::default()).await.unwrap();
    for bank in [RU, IR] {
        network.start_bank(bic(bank)).await.unwrap();
    }
    let ru = network.banks[network.index_of(bic(RU))].bank.clone();
    let next = ru.submit_payment(&order("4.00")).await.unwrap().uetr.to_string();
    eventually("a new payment settles", || ru.payment(&next).unwrap().status == PaymentStatus::Acsc).await;
    assert_eq!(balance(&network, bic(IR), "C002"), 1_000);
    network.stop().await.unwrap();
}

/// Issue 21: a store of an older Corridor (its SQLite file was the store, with no log
/// beside it) is refused with a clear message and left exactly as it is: it is never
/// taken for derived state and started over from an empty log. A derived state whose log
/// was removed is refused the same way.
#[test]
fn a_store_of_an_older_corridor_or_without_its_log_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = corridor::tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let data = pki.bank_data_dir(bic(RU));
    let open = || {
        let identity = pki.signing_identity(Role::Bank(bic(RU))).unwrap();
        Bank::open(identity, Directory::load(pki.root()).unwrap(), &data)
    };
    drop(open().unwrap());
    std::fs::remove_file(data.join("bank.log")).unwrap();
    let before = cli::files_under(&data);
    let refusal = open().err().expect("a derived state without its log is refused");
    assert!(
        refusal.contains("bank.sqlite") && refusal.contains("log") && refusal.contains("missing"),
        "{refusal}"
    );
    assert!(cli::files_under(&data) == before, "nothing changed");

    let connection = rusqlite::Connection::open(data.join("bank.sqlite")).unwrap();
    connection.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'", []).unwrap();
    drop(connection);
    let before = cli::files_under(&data);
    let refusal = open().err().expect("an older Corridor's store is refused");
    assert!(refusal.contains("older Corridor (schema 5"), "{refusal}");
    assert!(cli::files_under(&data) == before, "nothing changed");
}
