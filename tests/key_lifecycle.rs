//! Keys and certificates over their lifetime (DESIGN.md, "Nobody speaks for another" and
//! "Bad input gets a clear error and changes nothing"): a signing key rotated with an
//! overlap, retired, revoked; a TLS certificate revoked; a weak key slipped into the
//! directory; and the `corridor pki` commands given nonsense.
//!
//! Each attack is made against a real network (hub and bank nodes on loopback ports,
//! mTLS from the demo PKI) or the real `corridor` binary, and each test checks two
//! things: the refusal itself, and that the refusal changed nothing (no payment reached
//! anyone, no ledger, position, delivery queue or file moved).
//!
//! Running nodes take a new `directory.json` or `crl.pem` on their own within about
//! [`net::RELOAD_INTERVAL`]; the tests poll for that with generous bounds and never
//! assert how long anything took. Hostile messages go straight to the hub on a raw
//! session, for a bank that runs no node (a second session would replace the node's).
//!
//! A rotated key signs from [`tls::ROTATION_ACTIVATION`] after the rotation, so that
//! every running node knows it before it is used; the tests wait for that moment.

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use common::bic;
use common::cli::{self, Outcome, files_under, refused_in_one_line, succeeded, text};
use common::net::{
    CN, IR, RU, RawSession, balance, expect_ack, expect_nak, network_with_config, network_with_nodes, order,
    transfer,
};
use corridor::bank::Payment;
use corridor::clock::{Clock, ManualClock};
use corridor::crypto::{KeyId, KeyValidity, SigningIdentity, load_signing_key};
use corridor::directory::{DIRECTORY_FILE, Directory, DirectoryFile};
use corridor::hub::{self, HubConfig, HubJournal};
use corridor::model::*;
use corridor::net;
use corridor::pb;
use corridor::pb::session_response::Frame as ResponseFrame;
use corridor::sim::LocalNetwork;
use corridor::tls::{self, HUB_BIC, NetworkDir, Role};
use ed25519_dalek::VerifyingKey;
use tonic::Code;

/// A well-formed BIC that no network here lists.
const STRANGER: &str = "BANKZZZZXXX";
/// What each customer account C001 opens with, in minor units (1000.00 CNY).
const OPENING_MINOR_UNITS: i64 = 100_000;
/// What a raw `common::net::transfer` (created now: the hub has a replay window) pays,
/// in minor units (5.00 CNY).
const TRANSFER_MINOR_UNITS: i64 = 500;

/// An overlap far longer than any test: the old key stays good throughout.
const OVERLAP_LONG: Duration = Duration::from_secs(300);
/// Polls for something that happens within about a reload interval (or milliseconds):
/// bounded at 20 s, twenty times what it should take on a loaded 2-core machine.
const POLLS_MAX: usize = 800;
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Payments sent one after another while waiting for a node to switch keys (each is
/// final within milliseconds; the switch comes within a reload interval): bounded at
/// about 20 s.
const SWITCH_PAYMENTS_MAX: usize = 100;
const SWITCH_PAYMENT_INTERVAL: Duration = Duration::from_millis(200);
/// How long to watch for something that must not happen: long enough for anything
/// already on its way to have arrived (a message crosses loopback in milliseconds).
const QUIET_PERIOD: Duration = Duration::from_millis(300);
/// How long a refused node is given to get through anyway: several reload intervals, in
/// which its session reconnects several times (its backoff starts at 100 ms).
const REFUSED_NODE_WATCH: Duration = Duration::from_secs(3);

/// Small-order Ed25519 points (their canonical encodings, from the well-known list:
/// orders 1, 2, 4, 4, 8, 8, 8, 8) and non-canonical encodings of small-order points
/// (y = p + 1, which is y = 1, and y = p, which is y = 0). A signature under any of them
/// "verifies" for many messages, so none may ever speak for a participant.
const WEAK_KEYS: [&str; 10] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
];
/// The Ed25519 identity point: the weakest key of all.
const IDENTITY_POINT: &str = WEAK_KEYS[0];
/// 64 characters, none of them a hexadecimal digit.
const NOT_HEX: &str = "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
/// y = 2: no x satisfies the curve equation, so these bytes are no point at all.
const NOT_A_POINT: &str = "0200000000000000000000000000000000000000000000000000000000000000";

// ---------------------------------------------------------------------------------------
// Payments (the networks come from `common::net::network_with_nodes`: every participant
// funded at the hub, every node with C001 holding 1000.00 CNY and an empty C002)

/// Waits (bounded) until the payment is final at bank `index`, asking the bank itself:
/// the operator API may be locked out (its certificate revoked) in some tests.
async fn wait_final(network: &LocalNetwork, index: usize, uetr: &str) -> Payment {
    for _ in 0..POLLS_MAX {
        if let Ok(payment) = network.banks[index].bank.payment(uetr)
            && payment.status.is_final()
        {
            return payment;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("payment {uetr} did not become final at {}", network.banks[index].bic);
}

/// Bank `index` pays `amount` CNY from its C001 to C002 at `to`; returns the payment once
/// final at the payer.
async fn pay(network: &LocalNetwork, index: usize, to: &str, amount: &str) -> Payment {
    let payment = network.banks[index].bank.submit_payment(&order(to, "C002", amount)).await.unwrap();
    wait_final(network, index, &payment.uetr.to_string()).await
}

/// Like [`pay`], and the payment must settle.
async fn pay_settled(network: &LocalNetwork, index: usize, to: &str, amount: &str) -> Payment {
    let payment = pay(network, index, to, amount).await;
    assert_eq!(
        payment.status,
        PaymentStatus::Acsc,
        "payment {} did not settle: {}",
        payment.uetr,
        payment.detail
    );
    payment
}

/// Polls `condition` until it holds; panics, naming `what`, if it never does.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..POLLS_MAX {
        if condition().await {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{what}: still not so after {POLLS_MAX} polls");
}

// ---------------------------------------------------------------------------------------
// The books: everything a refused message must leave as it was

/// The hub's side: every payment it tracks, every position, every delivery queue.
#[derive(Debug, PartialEq)]
struct HubBooks {
    payments: Vec<(Uetr, Bic, Bic, Amount, Option<PaymentStatus>)>,
    positions: Vec<(Bic, Currency, hub::Position)>,
    queued: Vec<(Bic, usize)>,
}

/// One bank node's side: its payments, its balances and what it has yet to send.
#[derive(Debug, PartialEq)]
struct BankBooks {
    payments: Vec<(Uetr, PaymentStatus)>,
    balances: Vec<(String, i64)>,
    outbox: usize,
}

#[derive(Debug, PartialEq)]
struct Books {
    hub: HubBooks,
    banks: BTreeMap<Bic, BankBooks>,
}

/// The books as they are now (times are left out: they say when, not what).
fn books(network: &LocalNetwork) -> Books {
    let hub = network.hub();
    let payments = hub
        .payments()
        .into_iter()
        .map(|p| (p.uetr, p.sender, p.receiver, p.amount, p.final_status()))
        .collect();
    let positions = hub.positions().positions().map(|(bic, currency, p)| (bic, currency, *p)).collect();
    let queued = hub.directory().participants().map(|(bic, _)| (bic, hub.queued_for(bic))).collect();
    let banks = network
        .banks
        .iter()
        .map(|node| {
            let (accounts, balanced) = node.bank.accounts();
            assert!(balanced, "{}'s ledger balances", node.bic);
            let books = BankBooks {
                payments: node.bank.payments().unwrap().into_iter().map(|p| (p.uetr, p.status)).collect(),
                balances: accounts.into_iter().map(|a| (a.id.as_str().to_owned(), a.balance)).collect(),
                outbox: node.bank.outbox_len(),
            };
            (node.bic, books)
        })
        .collect();
    Books { hub: HubBooks { payments, positions, queued }, banks }
}

/// The books once the network is at rest: every node has sent everything and been
/// delivered everything, and two looks in a row agree.
async fn settled_books(network: &LocalNetwork) -> Books {
    for _ in 0..POLLS_MAX {
        let at_rest = network
            .banks
            .iter()
            .all(|node| node.bank.outbox_len() == 0 && network.hub().queued_for(node.bic) == 0);
        let first = books(network);
        tokio::time::sleep(POLL_INTERVAL).await;
        if at_rest && books(network) == first {
            return first;
        }
    }
    panic!("the network did not come to rest");
}

/// Nothing moved: after a quiet period (for anything on its way), the books are `before`.
async fn nothing_changed(network: &LocalNetwork, before: &Books) {
    tokio::time::sleep(QUIET_PERIOD).await;
    assert_eq!(&books(network), before, "a refused message changed the books");
}

// ---------------------------------------------------------------------------------------
// Raw sessions (`common::net::RawSession`)

/// Submits `message`, signed with `identity`, on `session`: the hub ACKs it and the bank
/// node at `receiver` settles it.
async fn acked_and_settled(
    network: &LocalNetwork,
    session: &mut RawSession,
    identity: &SigningIdentity,
    message: &Message,
    receiver: usize,
) {
    expect_ack(session.submit_signed(identity, message).await);
    let at_receiver = wait_final(network, receiver, &uetr_of(message)).await;
    assert_eq!(at_receiver.status, PaymentStatus::Acsc, "{}", at_receiver.detail);
}

/// A NAK with `code`, no ISO reason code, and a detail that mentions `mentions`.
fn expect_refusal(answer: ResponseFrame, code: Code, mentions: &str) -> pb::Nak {
    let nak = expect_nak(answer, code, "");
    assert!(nak.detail.contains(mentions), "the NAK should mention {mentions:?}: {nak:?}");
    nak
}

fn uetr_of(message: &Message) -> String {
    message.header().uetr.expect("a pacs.008 has a UETR").to_string()
}

// ---------------------------------------------------------------------------------------
// Keys

fn key_id(text: &str) -> KeyId {
    KeyId::parse(text).unwrap()
}

/// `bank`'s signing key `key` as its file holds it, whatever the directory now says of
/// it: what a thief (or a node that missed the news) would sign with.
fn key_from_file(network: &NetworkDir, bank: &str, key: &str) -> SigningIdentity {
    let path = network.signing_key_path(Role::Bank(bic(bank)), &key_id(key));
    SigningIdentity::new(bic(bank), key_id(key), load_signing_key(&path).unwrap())
}

/// The validity of `bank`'s key `key` in the directory the running hub has in force.
fn validity_at_hub(network: &LocalNetwork, bank: &str, key: &str) -> Option<KeyValidity> {
    network.hub().directory().keys().validity(bic(bank), &key_id(key))
}

/// Waits (bounded) until the running hub has taken the revocation of `bank`'s key `key`.
async fn the_hub_takes_the_revocation(network: &LocalNetwork, bank: &str, key: &str) {
    eventually(&format!("the hub takes the revocation of {bank}'s {key}"), || async {
        validity_at_hub(network, bank, key).is_some_and(|v| v.revoked_unix_ms.is_some())
    })
    .await;
}

/// The key id of the newest message from `sender` in the running hub's log, read as an
/// auditor would, without disturbing the hub: the one place a running node shows which
/// key it signs with.
fn newest_key_signed_by(network: &NetworkDir, sender: &str) -> Option<String> {
    let mut newest = None;
    hub::journal::read_accepted(&network.hub_data_dir(), &mut |record| {
        if record.sender.as_str() == sender {
            newest = Some(record.envelope.key_id.to_string());
        }
    })
    .unwrap();
    newest
}

/// How many messages from `sender` the running hub's log holds.
fn messages_in_running_journal(network: &NetworkDir, sender: &str) -> usize {
    let mut count = 0;
    hub::journal::read_accepted(&network.hub_data_dir(), &mut |record| {
        count += usize::from(record.sender.as_str() == sender);
    })
    .unwrap();
    count
}

/// Makes the hub and the bank nodes at `receivers` read the directory now, as their
/// watchers will at their next tick, so that they know a rotated key before the node that
/// signs with it reads it (its own watcher, untouched, decides when). The other order
/// refuses payments: a bug, pinned by
/// `a_node_that_reads_its_new_key_before_the_hub_and_the_receiver_still_has_payments_settle`,
/// which would otherwise make the tests that pay through a rotation fail now and then.
fn verifiers_read_the_directory_first(network: &LocalNetwork, receivers: &[usize]) {
    network.hub().reload_credentials(&network.network).unwrap();
    for index in receivers {
        network.banks[*index].bank.reload_credentials(&network.network).unwrap();
    }
}

/// Bank `index` pays `to` 1.00 CNY again and again, every payment settling, until the
/// hub's journal shows it signing with `key`. Returns how many payments it made.
async fn pay_until_signing_with(network: &LocalNetwork, index: usize, to: &str, key: &str) -> i64 {
    let sender = network.banks[index].bic.to_string();
    for paid in 1..=SWITCH_PAYMENTS_MAX {
        pay_settled(network, index, to, "1.00").await;
        if newest_key_signed_by(&network.network, &sender).as_deref() == Some(key) {
            return i64::try_from(paid).unwrap();
        }
        tokio::time::sleep(SWITCH_PAYMENT_INTERVAL).await;
    }
    panic!("{sender} did not start signing with {key} after {SWITCH_PAYMENTS_MAX} payments");
}

/// The key ids of `sender`'s messages in a stopped hub's journal, oldest first.
fn keys_in_journal(network: &NetworkDir, sender: &str) -> Vec<String> {
    let messages = HubJournal::read(&network.hub_data_dir(), bic(HUB_BIC)).unwrap();
    messages
        .iter()
        .filter(|record| record.sender == bic(sender))
        .map(|record| record.envelope.key_id.to_string())
        .collect()
}

/// Audits a stopped hub's journal both ways, library and `corridor audit`: every message
/// verifies against the key valid when it was created. Returns how many there were.
async fn audit_passes(network: &NetworkDir) -> usize {
    let directory = Directory::load(network.root()).unwrap();
    let report = hub::audit_journal(&directory, &network.hub_data_dir()).unwrap();
    assert!(report.failed.is_empty(), "the archive must verify: {:?}", report.failed);
    assert!(report.verified > 0, "the archive holds messages");
    let stdout = succeeded(corridor(&["audit", "--dir", text(network.root())]).await);
    assert!(
        stdout.starts_with(&format!("{} archived messages verified", report.verified)),
        "`corridor audit` says: {stdout}"
    );
    report.verified
}

/// Writes `file` as `directory.json` the way an editor saves it (a new file renamed into
/// place), without the validation `DirectoryFile::save` does: what a careless or
/// hostile operator could leave on disk.
fn write_directory_unchecked(dir: &Path, file: &DirectoryFile) {
    let side = dir.join("directory.json.edited");
    std::fs::write(&side, serde_json::to_string_pretty(file).unwrap()).unwrap();
    std::fs::rename(&side, dir.join(DIRECTORY_FILE)).unwrap();
}

/// The directory file with `bic`'s key `key` replaced by `public_key_hex`.
fn with_public_key(file: &DirectoryFile, bic: &str, key: &str, public_key_hex: &str) -> DirectoryFile {
    let mut file = file.clone();
    let participant =
        std::iter::once(&mut file.hub).chain(&mut file.participants).find(|p| p.bic == bic).unwrap();
    participant.keys.iter_mut().find(|k| k.key_id == key).unwrap().public_key = public_key_hex.to_owned();
    file
}

/// True when the server at `url` serves a client with `role`'s certificate: the TLS
/// handshake passes and a health check is answered. (With TLS 1.3 a server refuses a
/// client certificate after the client thinks the handshake is done, so a refusal may
/// show on connect or on the first call.)
async fn serves(network: &NetworkDir, role: Role, url: &str) -> bool {
    let Ok(channel) = net::connect(network, role, url).await else { return false };
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok()
}

// ---------------------------------------------------------------------------------------
// The command line

/// Runs `corridor ARGS` (bounded, see [`cli::corridor`]) off the test's runtime thread, so
/// that the network in this process keeps running meanwhile.
async fn corridor(args: &[&str]) -> Outcome {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || cli::corridor(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. Rotation with an overlap, live

/// A rotation needs no restart and loses no payment: the running node picks its new key
/// up by itself while payments keep settling, and during the overlap a message signed
/// with the old key is still taken. The archive verifies afterwards, old key and new.
#[tokio::test]
async fn a_rotation_with_overlap_switches_a_running_node_and_payments_keep_settling() {
    let dir = tempfile::tempdir().unwrap();
    // RU and IR run nodes; CN is spoken for by hand.
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[RU, IR]).await;
    let (ru, ir) = (network.index_of(bic(RU)), network.index_of(bic(IR)));
    pay_settled(&network, ru, IR, "1.00").await;
    assert_eq!(newest_key_signed_by(&network.network, RU).as_deref(), Some("k1"));
    let mut cn = RawSession::open(&network.network, CN, &network.hub_url).await.unwrap();
    let cn_old = key_from_file(&network.network, CN, "k1");

    let mut activates = 0;
    for bank in [RU, CN] {
        let rotation = tls::rotate(dir.path(), bic(bank), OVERLAP_LONG).unwrap();
        if bank == RU {
            activates = rotation.activates_unix_ms;
        }
        assert_eq!((rotation.new_key, rotation.retired), (key_id("k2"), vec![key_id("k1")]));
    }
    let directory = Directory::load(dir.path()).unwrap();
    assert!(directory.keys().key(bic(RU), &key_id("k2")).is_some(), "the directory lists k2");
    assert_eq!(directory.current_key(bic(RU), activates - 1), Some(&key_id("k1")), "k1 until k2 activates");
    assert_eq!(directory.current_key(bic(RU), activates), Some(&key_id("k2")));
    verifiers_read_the_directory_first(&network, &[ir]);
    let paid = 1 + pay_until_signing_with(&network, ru, IR, "k2").await;

    // During the overlap, CN's old key and its new one are both taken, and IR (which
    // verifies each itself) books both.
    let cn_new = network.network.signing_identity(Role::Bank(bic(CN))).unwrap();
    assert_eq!(cn_new.key_id(), &key_id("k2"));
    for identity in [&cn_old, &cn_new] {
        acked_and_settled(&network, &mut cn, identity, &transfer(CN, IR, "C002"), ir).await;
    }
    assert_eq!(balance(&network, ru, "C001"), OPENING_MINOR_UNITS - paid * 100);
    assert_eq!(balance(&network, ir, "C002"), paid * 100 + 2 * TRANSFER_MINOR_UNITS);
    drop(cn);
    network.stop().await.unwrap();

    // RU's node signed with k1, then k2, never k1 again.
    let keys = keys_in_journal(&NetworkDir::new(dir.path()), RU);
    let switch = keys.iter().position(|k| k == "k2").unwrap();
    assert!(switch > 0 && keys[..switch].iter().all(|k| k == "k1"), "{keys:?}");
    assert!(keys[switch..].iter().all(|k| k == "k2"), "{keys:?}");
    assert_eq!(keys_in_journal(&NetworkDir::new(dir.path()), CN), ["k1", "k2"]);
    audit_passes(&NetworkDir::new(dir.path())).await;
}

/// A node that starts after a rotation but before the new key activates signs with the
/// old key until then and with the new one after, without another change to the
/// directory to wake it.
#[tokio::test]
async fn a_node_started_before_its_new_key_activates_switches_to_it_at_activation() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[RU, IR]).await;
    tls::rotate(dir.path(), bic(RU), OVERLAP_LONG).unwrap();
    network.stop_bank(bic(RU)).await.unwrap();
    let ru = network.start_bank(bic(RU)).await.unwrap();
    pay_settled(&network, ru, IR, "1.00").await;
    assert_eq!(newest_key_signed_by(&network.network, RU).as_deref(), Some("k1"), "k2 is not active yet");
    pay_until_signing_with(&network, ru, IR, "k2").await;
    network.stop().await.unwrap();
}

/// A rotation refuses no payment whatever order the nodes read the new directory in:
/// the new key signs only from its activation, when every node knows it. Here RU's node
/// reads the directory first, before the hub and the receiver (the race this once lost).
#[tokio::test]
async fn a_node_that_reads_its_new_key_before_the_hub_and_the_receiver_still_has_payments_settle() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[RU, IR]).await;
    let ru = network.index_of(bic(RU));
    pay_settled(&network, ru, IR, "1.00").await;
    tls::rotate(dir.path(), bic(RU), OVERLAP_LONG).unwrap();

    network.banks[ru].bank.reload_credentials(&network.network).unwrap();
    let hub_behind = pay(&network, ru, IR, "1.00").await;
    network.hub().reload_credentials(&network.network).unwrap();
    let receiver_behind = pay(&network, ru, IR, "1.00").await;
    for (payment, when) in [(hub_behind, "the hub"), (receiver_behind, "IR")] {
        assert_eq!(
            payment.status,
            PaymentStatus::Acsc,
            "a payment RU made before {when} read the new directory: {}",
            payment.detail
        );
    }
    network.stop().await.unwrap();
}

/// A node chooses its signing key by its own clock, the one that stamps the message
/// and by which the hub judges the key, not by the system's: on a manual clock shared
/// by the hub and the banks, a rotated key signs from exactly its activation by that
/// clock, and the hub takes it. With no overlap the old key retires at that moment, so
/// a node choosing by the system's clock (behind the manual one here) would go on
/// signing with a key the hub has retired; one ahead would sign with a key the hub does
/// not yet take.
#[tokio::test]
async fn on_a_manual_clock_a_rotated_key_signs_from_its_activation_by_that_clock() {
    let dir = tempfile::tempdir().unwrap();
    // From the system's time now: the keys `pki init` makes are valid from then.
    let clock = ManualClock::starting_now();
    let config = HubConfig { clock: Clock::from(clock.clone()), ..HubConfig::default() };
    let network = network_with_config(dir.path(), &[RU, IR], &[RU, IR], config).await;
    let (ru, ir) = (network.index_of(bic(RU)), network.index_of(bic(IR)));
    let rotation = tls::rotate(dir.path(), bic(RU), Duration::ZERO).unwrap();
    verifiers_read_the_directory_first(&network, &[ir]);
    network.banks[ru].bank.reload_credentials(&network.network).unwrap();

    let activates = rotation.activates_unix_ms;
    clock.set(activates - 1);
    pay_settled(&network, ru, IR, "1.00").await;
    assert_eq!(newest_key_signed_by(&network.network, RU).as_deref(), Some("k1"), "k2 is not active yet");
    clock.set(activates);
    pay_settled(&network, ru, IR, "1.00").await;
    assert_eq!(newest_key_signed_by(&network.network, RU).as_deref(), Some("k2"), "k2 from its activation");
    // An hour on by the manual clock (the system's has not got there): k1 is retired.
    clock.advance(Duration::from_secs(3600));
    pay_settled(&network, ru, IR, "1.00").await;
    assert_eq!(newest_key_signed_by(&network.network, RU).as_deref(), Some("k2"));
    assert_eq!(balance(&network, ir, "C002"), 300, "all three settled at the receiver");
    network.stop().await.unwrap();
    assert_eq!(keys_in_journal(&NetworkDir::new(dir.path()), RU), ["k1", "k2", "k2"]);
}

// ---------------------------------------------------------------------------------------
// 2. A retired key

/// Once its overlap is over, a retired key signs nothing new: the hub refuses it
/// (UNAUTHENTICATED, "retired") and nothing moves. A message it signed while it was
/// valid is still judged by when it was created, and the whole archive, old key
/// included, still verifies with `audit`.
#[tokio::test]
async fn a_retired_key_is_refused_and_what_it_signed_before_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    // IR runs a node; RU is spoken for by hand; CN runs nothing (what reaches it waits).
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[IR]).await;
    let ir = network.index_of(bic(IR));
    let mut ru = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let old = key_from_file(&network.network, RU, "k1");
    let paid_before = transfer(RU, IR, "C002");
    acked_and_settled(&network, &mut ru, &old, &paid_before, ir).await;
    // Created (and signed) before the retirement, sent after it.
    let created_before = transfer(RU, CN, "C002");

    let rotation = tls::rotate(dir.path(), bic(RU), Duration::ZERO).unwrap();
    let retired_at = rotation.overlap_until_unix_ms;
    eventually("the hub takes the rotation", || async {
        validity_at_hub(&network, RU, "k1").is_some_and(|v| v.until_unix_ms == retired_at)
    })
    .await;
    // With no overlap, k1 retires the moment k2 activates.
    let wait = retired_at + 1 - corridor::clock::unix_ms_now();
    tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
    let before = settled_books(&network).await;
    for receiver in [IR, CN] {
        let answer = ru.submit_signed(&old, &transfer(RU, receiver, "C002")).await;
        let nak = expect_refusal(answer, Code::Unauthenticated, "retired");
        assert!(nak.detail.contains("k1") && nak.detail.contains(RU), "{nak:?}");
    }
    nothing_changed(&network, &before).await;

    // Judged by its creation time, the message made before the retirement is taken; and
    // the new key works (to CN, which runs no node, so it waits at the hub).
    expect_ack(ru.submit_signed(&old, &created_before).await);
    let new = network.network.signing_identity(Role::Bank(bic(RU))).unwrap();
    assert_eq!(new.key_id(), &key_id("k2"));
    expect_ack(ru.submit_signed(&new, &transfer(RU, CN, "C002")).await);
    assert_eq!(network.hub().queued_for(bic(CN)), 2);
    drop(ru);
    network.stop().await.unwrap();

    let network = NetworkDir::new(dir.path());
    assert_eq!(keys_in_journal(&network, RU), ["k1", "k1", "k2"]);
    // RU's three messages and IR's pacs.002.
    assert_eq!(audit_passes(&network).await, 4);
}

// ---------------------------------------------------------------------------------------
// 3. A revoked key

/// `pki revoke --key` stops a key for good, at once, whenever the message was created:
/// the hub refuses it (UNAUTHENTICATED, "revoked") and nothing moves. A bank node whose
/// only key is revoked has every payment refused and reversed, none applied anywhere.
/// What the key signed before the revocation still verifies in the archive.
#[tokio::test]
async fn a_revoked_key_is_refused_and_a_bank_left_without_a_key_gets_nothing_applied() {
    let dir = tempfile::tempdir().unwrap();
    // IR and CN run nodes; RU is spoken for by hand.
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[IR, CN]).await;
    let (ir, cn) = (network.index_of(bic(IR)), network.index_of(bic(CN)));
    let mut ru = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let stolen = key_from_file(&network.network, RU, "k1");
    let paid_before = transfer(RU, IR, "C002");
    acked_and_settled(&network, &mut ru, &stolen, &paid_before, ir).await;
    let created_before = transfer(RU, IR, "C002");
    let before = settled_books(&network).await;

    let revoke_ru = ["pki", "revoke", "--dir", text(dir.path()), "--bic", RU, "--key", "k1"];
    let said = succeeded(corridor(&revoke_ru).await);
    assert!(said.starts_with(&format!("revoked signing key k1 of {RU} at ")), "{said}");
    the_hub_takes_the_revocation(&network, RU, "k1").await;
    // Revoked means revoked now: a message created before the revocation is refused too.
    for message in [transfer(RU, IR, "C002"), transfer(RU, CN, "C002"), created_before] {
        expect_refusal(ru.submit_signed(&stolen, &message).await, Code::Unauthenticated, "revoked");
    }
    nothing_changed(&network, &before).await;

    // CN's node has no other key: it keeps signing with the revoked one, and the hub
    // refuses every payment, which CN reverses. IR sees nothing.
    let revoke_cn = ["pki", "revoke", "--dir", text(dir.path()), "--bic", CN, "--key", "k1"];
    succeeded(corridor(&revoke_cn).await);
    the_hub_takes_the_revocation(&network, CN, "k1").await;
    let refused = pay(&network, cn, IR, "3.00").await;
    assert_eq!(refused.status, PaymentStatus::Rjct);
    assert!(refused.detail.contains("revoked"), "{}", refused.detail);
    let after = settled_books(&network).await;
    assert_eq!(after.hub, before.hub, "the hub took nothing from CN");
    assert_eq!(after.banks[&bic(IR)], before.banks[&bic(IR)], "nothing reached IR");
    assert_eq!(balance(&network, cn, "C001"), OPENING_MINOR_UNITS, "CN's customer is whole");
    assert_eq!(balance(&network, cn, "SYS-INFLIGHT-CNY"), 0);
    drop(ru);
    network.stop().await.unwrap();

    // RU's k1 payment and IR's pacs.002 for it, from before the revocation.
    assert_eq!(audit_passes(&NetworkDir::new(dir.path())).await, 2);
}

/// A message the hub accepted while its key was valid, and held for a bank that was
/// offline, is still delivered and applied after the key is revoked: the receiver judges
/// it, as the hub did, by when it was created.
#[tokio::test]
async fn a_message_held_for_an_offline_bank_is_delivered_after_its_key_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    // IR opens its accounts, then goes offline; RU is spoken for by hand.
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    network.stop_bank(bic(IR)).await.unwrap();
    let mut ru = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let held = transfer(RU, IR, "C002");
    expect_ack(ru.submit_signed(&key_from_file(&network.network, RU, "k1"), &held).await);
    assert_eq!(network.hub().queued_for(bic(IR)), 1, "the message waits at the hub");

    tls::revoke_key(dir.path(), bic(RU), &key_id("k1")).unwrap();
    the_hub_takes_the_revocation(&network, RU, "k1").await;
    let ir = network.start_bank(bic(IR)).await.unwrap();
    let at_receiver = wait_final(&network, ir, &uetr_of(&held)).await;
    assert_eq!(at_receiver.status, PaymentStatus::Acsc, "{}", at_receiver.detail);
    assert_eq!(balance(&network, ir, "C002"), TRANSFER_MINOR_UNITS);
    drop(ru);
    network.stop().await.unwrap();
    audit_passes(&NetworkDir::new(dir.path())).await;
}

/// The way to retire a compromised key without stopping: rotate first (the node takes
/// the new key by itself), then revoke the old one. The bank keeps paying throughout.
#[tokio::test]
async fn a_bank_that_rotated_first_keeps_paying_after_its_old_key_is_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[RU, IR]).await;
    let (ru, ir) = (network.index_of(bic(RU)), network.index_of(bic(IR)));
    pay_settled(&network, ru, IR, "1.00").await;

    let rotate = ["pki", "rotate", "--dir", text(dir.path()), "--bic", RU, "--overlap-secs", "300"];
    let said = succeeded(corridor(&rotate).await);
    assert!(said.starts_with(&format!("{RU} signs with key k2 from ")), "{said}");
    assert!(said.contains("; k1 retire(s) at "), "{said}");
    verifiers_read_the_directory_first(&network, &[ir]);
    let mut paid = 1 + pay_until_signing_with(&network, ru, IR, "k2").await;

    let revoke = ["pki", "revoke", "--dir", text(dir.path()), "--bic", RU, "--key", "k1"];
    succeeded(corridor(&revoke).await);
    the_hub_takes_the_revocation(&network, RU, "k1").await;
    pay_settled(&network, ru, IR, "1.00").await;
    paid += 1;
    assert_eq!(balance(&network, ru, "C001"), OPENING_MINOR_UNITS - paid * 100);
    assert_eq!(balance(&network, ir, "C002"), paid * 100);
    network.stop().await.unwrap();

    let keys = keys_in_journal(&NetworkDir::new(dir.path()), RU);
    assert_eq!(keys.last().map(String::as_str), Some("k2"), "{keys:?}");
    audit_passes(&NetworkDir::new(dir.path())).await;
}

// ---------------------------------------------------------------------------------------
// 4. A revoked certificate

/// `pki revoke --certificate` puts a bank's TLS certificate on the CA's revocation list:
/// the running hub refuses it at the handshake and closes the session it already has, so
/// nothing the bank sends afterwards reaches the hub. The other banks carry on.
#[tokio::test]
async fn a_revoked_certificate_is_refused_at_the_handshake_and_its_open_session_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[RU, IR, CN]).await;
    let (ru, ir) = (network.index_of(bic(RU)), network.index_of(bic(IR)));
    pay_settled(&network, ir, RU, "2.00").await;
    assert!(serves(&network.network, Role::Bank(bic(IR)), &network.hub_url).await);
    let before = settled_books(&network).await;
    let from_ir_before = messages_in_running_journal(&network.network, IR);

    let revoke = ["pki", "revoke", "--dir", text(dir.path()), "--bic", IR, "--certificate"];
    let said = succeeded(corridor(&revoke).await);
    assert!(said.starts_with(&format!("revoked the TLS certificate of {IR} (serial ")), "{said}");
    assert!(dir.path().join(tls::CRL_FILE).exists());
    eventually("the hub refuses IR's certificate", || async {
        !serves(&network.network, Role::Bank(bic(IR)), &network.hub_url).await
    })
    .await;
    assert!(RawSession::open(&network.network, IR, &network.hub_url).await.is_err(), "no new session");

    // IR's node had a session open: it was closed, and every reconnection is refused, so
    // its new payment stays in its outbox and reaches neither the hub nor RU.
    let stuck = network.banks[ir].bank.submit_payment(&order(RU, "C002", "4.00")).await.unwrap();
    tokio::time::sleep(REFUSED_NODE_WATCH).await;
    let now = books(&network);
    assert_eq!(now.hub, before.hub, "nothing IR sent after the revocation reached the hub");
    assert_eq!(now.banks[&bic(RU)], before.banks[&bic(RU)]);
    assert_eq!(now.banks[&bic(CN)], before.banks[&bic(CN)]);
    let stuck = network.banks[ir].bank.payment(&stuck.uetr.to_string()).unwrap();
    assert!(!stuck.status.is_final() && stuck.status != PaymentStatus::Actc, "{stuck:?}");
    assert_eq!(network.banks[ir].bank.outbox_len(), 1);

    // The others are not affected.
    pay_settled(&network, ru, CN, "6.00").await;
    network.stop().await.unwrap();
    let from_ir_after = keys_in_journal(&NetworkDir::new(dir.path()), IR);
    assert_eq!(from_ir_after.len(), from_ir_before, "the journal holds nothing more from IR");
}

/// Revoking the hub's certificate is refused, saying why: the hub's certificate is only
/// ever shown by a server, and its clients (bank nodes, operators) do not read the
/// revocation list, so such a revocation would change nothing. No file changes and the
/// hub keeps serving.
#[tokio::test]
async fn revoking_the_hubs_certificate_is_refused_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[RU, IR]).await;
    // The network's files, not the running nodes' data, which their derived state, applied
    // behind their logs, changes on its own schedule.
    let data = network.network.hub_data_dir().parent().unwrap().to_path_buf();
    let network_files = || {
        let mut files = files_under(dir.path());
        files.retain(|path, _| !path.starts_with(&data));
        files
    };
    let before = network_files();
    let revoke = ["pki", "revoke", "--dir", text(dir.path()), "--bic", HUB_BIC, "--certificate"];
    let said = refused_in_one_line(corridor(&revoke).await);
    assert!(said.contains("create a new network"), "{said}");
    assert!(before == network_files(), "a refused revocation changed files");
    assert!(serves(&network.network, Role::Bank(bic(RU)), &network.hub_url).await);
    network.stop().await.unwrap();
}

/// Revoking the operators' certificate locks them out of the hub's admin API and the
/// banks' operator APIs at the handshake, including a connection opened before; the
/// banks themselves keep paying.
#[tokio::test]
async fn a_revoked_operator_certificate_is_refused_by_the_hub_and_the_banks() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[RU, IR]).await;
    let ru = network.index_of(bic(RU));
    let mut admin = network.admin().await.unwrap();
    admin.list_positions(pb::ListPositionsRequest::default()).await.unwrap();
    let positions_before = books(&network).hub.positions;

    let revoke = ["pki", "revoke", "--dir", text(dir.path()), "--bic", "operator", "--certificate"];
    succeeded(corridor(&revoke).await);
    for url in [network.hub_url.clone(), network.banks[0].url.clone(), network.banks[1].url.clone()] {
        eventually("the operator's certificate is refused", || async {
            !serves(&network.network, Role::Operator, &url).await
        })
        .await;
    }
    let refused = admin.list_positions(pb::ListPositionsRequest::default()).await;
    assert!(refused.is_err(), "the connection opened before the revocation is closed: {refused:?}");
    let fund = pb::FundRequest { participant_bic: RU.into(), currency: "CNY".into(), amount: "1".into() };
    assert!(admin.fund(fund).await.is_err());
    assert!(
        network.operator(ru).await.is_err() || {
            let mut operator = network.operator(ru).await.unwrap();
            operator.list_accounts(pb::ListAccountsRequest {}).await.is_err()
        }
    );
    assert_eq!(books(&network).hub.positions, positions_before, "no operator action got through");

    pay_settled(&network, ru, IR, "1.00").await;
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 5. Weak keys

/// A small-order ("weak") public key would let anyone forge signatures that verify for
/// many messages, and bytes that are no curve point are no key: `Directory::load`
/// refuses either, naming the participant and key, and `DirectoryFile::save` refuses to
/// write one. The decoder itself accepts the weak points, so this check is the
/// directory's own.
#[test]
fn weak_and_invalid_keys_are_refused_when_a_directory_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let original = DirectoryFile::read(dir.path()).unwrap();
    let bytes = |hex: &str| -> [u8; 32] { corridor::crypto::hex_decode(hex).unwrap().try_into().unwrap() };
    let identity = VerifyingKey::from_bytes(&bytes(IDENTITY_POINT));
    assert!(identity.is_ok_and(|key| key.is_weak()), "the decoder takes the identity; is_weak flags it");
    assert!(VerifyingKey::from_bytes(&bytes(NOT_A_POINT)).is_err(), "y = 2 is not on the curve");

    let cases =
        WEAK_KEYS.iter().map(|hex| (RU, *hex, "weak (small-order)|not a valid Ed25519 point")).chain([
            (HUB_BIC, IDENTITY_POINT, "weak (small-order)"),
            (IR, NOT_A_POINT, "not a valid Ed25519 point"),
            (IR, "abcd", "not 64 hexadecimal digits"),
            (IR, NOT_HEX, "not 64 hexadecimal digits"),
        ]);
    for (owner, public_key, expected) in cases {
        let file = with_public_key(&original, owner, "k1", public_key);
        write_directory_unchecked(dir.path(), &file);
        let on_disk = std::fs::read(dir.path().join(DIRECTORY_FILE)).unwrap();
        let error = Directory::load(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("participant {owner}")) && error.contains("k1"),
            "{public_key}: {error}"
        );
        assert!(expected.split('|').any(|e| error.contains(e)), "{public_key}: {error}");
        assert!(file.save(dir.path()).is_err(), "save refuses {public_key}");
        assert_eq!(std::fs::read(dir.path().join(DIRECTORY_FILE)).unwrap(), on_disk, "save wrote nothing");
    }
}

/// Neither the hub nor a bank node starts on a directory with a weak key: each exits
/// non-zero with one line naming the key, before creating any data.
#[tokio::test]
async fn nodes_refuse_to_start_on_a_directory_with_a_weak_key() {
    let dir = tempfile::tempdir().unwrap();
    let network = tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let original = DirectoryFile::read(dir.path()).unwrap();
    let d = text(dir.path());
    let hub_command = ["hub", "--dir", d, "--listen", "127.0.0.1:0"];
    let bank_command =
        ["bank", "--dir", d, "--bic", IR, "--hub", "https://127.0.0.1:9", "--listen", "127.0.0.1:0"];
    for (public_key, expected) in
        [(IDENTITY_POINT, "weak (small-order)"), (NOT_A_POINT, "not a valid Ed25519 point")]
    {
        write_directory_unchecked(dir.path(), &with_public_key(&original, RU, "k1", public_key));
        for command in [&hub_command[..], &bank_command[..]] {
            let line = refused_in_one_line(corridor(command).await);
            assert!(line.contains(&format!("{RU} key k1")) && line.contains(expected), "{line}");
        }
    }
    assert!(!network.hub_data_dir().exists(), "the hub created no journal");
    assert!(!network.bank_data_dir(bic(IR)).exists(), "the bank created no store");
}

/// A weak key written into `directory.json` while the network runs is not taken: the
/// hub and the nodes refuse the new file (naming the key) and keep the directory they
/// have, so the forgery the weak key would allow is refused, the real key still works,
/// payments still settle, and a later good directory is still taken.
#[tokio::test]
async fn a_weak_key_written_into_a_running_networks_directory_is_not_taken() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[RU, IR]).await;
    let ru = network.index_of(bic(RU));
    pay_settled(&network, ru, IR, "1.00").await;
    let mut cn = RawSession::open(&network.network, CN, &network.hub_url).await.unwrap();
    let real = network.network.signing_identity(Role::Bank(bic(CN))).unwrap();
    let original = DirectoryFile::read(dir.path()).unwrap();

    write_directory_unchecked(dir.path(), &with_public_key(&original, CN, "k1", IDENTITY_POINT));
    let refusal = network.hub().reload_credentials(&network.network).unwrap_err();
    assert!(refusal.contains(&format!("{CN} key k1")) && refusal.contains("weak"), "{refusal}");
    for node in &network.banks {
        assert!(node.bank.reload_credentials(&network.network).is_err(), "{} takes it", node.bic);
    }
    // The watchers look at the file too, several times over; the hub keeps the real key.
    tokio::time::sleep(3 * net::RELOAD_INTERVAL).await;
    let in_force = network.hub().directory().keys().key(bic(CN), &key_id("k1")).map(|k| k.to_bytes());
    assert_eq!(in_force, Some(real.verifying_key_bytes()), "the hub kept CN's real key");

    // The forgery an identity key admits: R = the identity point, s = 0.
    let before = settled_books(&network).await;
    let mut forged = pb::SignedEnvelope::from(&real.sign(&transfer(CN, IR, "C002")));
    let mut signature = corridor::crypto::hex_decode(IDENTITY_POINT).unwrap();
    signature.resize(64, 0);
    forged.signature = signature.into();
    expect_refusal(cn.submit(forged).await, Code::Unauthenticated, "does not verify");
    nothing_changed(&network, &before).await;

    // CN's real key still works, and so do the nodes.
    let ir = network.index_of(bic(IR));
    let genuine = transfer(CN, IR, "C002");
    acked_and_settled(&network, &mut cn, &real, &genuine, ir).await;
    pay_settled(&network, ru, IR, "1.00").await;

    // The watcher is alive: a good directory after the bad one is taken.
    write_directory_unchecked(dir.path(), &original);
    tls::rotate(dir.path(), bic(IR), OVERLAP_LONG).unwrap();
    eventually("the hub takes the good directory", || async {
        validity_at_hub(&network, IR, "k2").is_some()
    })
    .await;
    drop(cn);
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 6. Bad input to the pki commands

/// `pki rotate` and `pki revoke` given an unknown or malformed BIC, an unknown or
/// malformed key id, or a directory that is not there, exit non-zero with one line
/// saying what is wrong, and change no file of the network directory.
#[tokio::test]
async fn pki_commands_refuse_bad_input_in_one_line_and_change_no_file() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("net");
    tls::init(&dir, &[bic(RU), bic(IR)]).unwrap();
    let (d, missing) = (text(&dir), temp.path().join("nowhere"));
    let m = text(&missing);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["rotate", "--dir", d, "--bic", STRANGER], "BANKZZZZXXX is not in the directory"),
        (vec!["rotate", "--dir", d, "--bic", "nonsense"], "--bic"),
        (vec!["rotate", "--dir", m, "--bic", RU], "directory.json"),
        (vec!["revoke", "--dir", d, "--bic", STRANGER, "--key", "k1"], "BANKZZZZXXX is not in the directory"),
        (vec!["revoke", "--dir", d, "--bic", RU, "--key", "k9"], "BANKRUMMXXX has no key k9"),
        (vec!["revoke", "--dir", d, "--bic", HUB_BIC, "--key", "k2"], "CRDRZZ00XXX has no key k2"),
        (vec!["revoke", "--dir", d, "--bic", RU, "--key", "../k1"], "--key: a key id is"),
        (vec!["revoke", "--dir", d, "--bic", RU, "--key", ""], "--key: a key id is"),
        (vec!["revoke", "--dir", d, "--bic", "nonsense", "--key", "k1"], "--bic"),
        (vec!["revoke", "--dir", d, "--bic", "operator", "--key", "k1"], "--bic"),
        (vec!["revoke", "--dir", d, "--bic", STRANGER, "--certificate"], STRANGER),
        (vec!["revoke", "--dir", d, "--bic", "nonsense", "--certificate"], "--bic"),
        (vec!["revoke", "--dir", m, "--bic", RU, "--key", "k1"], "directory.json"),
    ];
    for (args, expected) in cases {
        let before = files_under(&dir);
        let line = refused_in_one_line(corridor(&[&["pki"][..], &args].concat()).await);
        assert!(line.contains(expected), "`pki {}`: {line}", args.join(" "));
        assert_eq!(files_under(&dir), before, "`pki {}` changed a file", args.join(" "));
    }
    // Arguments the parser refuses (its usage text may take more than one line).
    for args in [
        vec!["revoke", "--dir", d, "--bic", RU, "--key", "k1", "--certificate"],
        vec!["revoke", "--dir", d, "--bic", RU],
        vec!["rotate", "--dir", d, "--bic", RU, "--overlap-secs", "-1"],
    ] {
        let before = files_under(&dir);
        let outcome = corridor(&[&["pki"][..], &args].concat()).await;
        assert!(!outcome.status.success() && outcome.stderr.contains("error"), "`pki {}`", args.join(" "));
        assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
        assert_eq!(files_under(&dir), before, "`pki {}` changed a file", args.join(" "));
    }
}

/// Revoking a key or a certificate that is already revoked is refused in one line and
/// changes no file: the first revocation's time stays the one on record.
#[tokio::test]
async fn revoking_twice_is_refused_in_one_line_and_changes_no_file() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("net");
    tls::init(&dir, &[bic(RU), bic(IR)]).unwrap();
    let d = text(&dir);
    let revocations: [(&[&str], &str); 3] = [
        (&["--bic", RU, "--key", "k1"], "BANKRUMMXXX key k1 was already revoked at "),
        (&["--bic", IR, "--certificate"], "already revoked"),
        (&["--bic", "operator", "--certificate"], "already revoked"),
    ];
    for (what, expected) in revocations {
        let command = [&["pki", "revoke", "--dir", d][..], what].concat();
        succeeded(corridor(&command).await);
        let before = files_under(&dir);
        let line = refused_in_one_line(corridor(&command).await);
        assert!(line.contains(expected), "`{}`: {line}", command.join(" "));
        assert_eq!(files_under(&dir), before, "`{}` changed a file", command.join(" "));
    }
    let directory = Directory::load(&dir).unwrap();
    assert!(directory.keys().validity(bic(RU), &key_id("k1")).unwrap().revoked_unix_ms.is_some());
    let network = NetworkDir::new(&dir);
    assert_eq!(network.revoked_serials().unwrap().len(), 2, "IR's and the operators' certificates");
}
