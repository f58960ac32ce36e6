//! Linked national networks (issue 23) on real nodes: two networks, each with its own PKI
//! (`pki init`), hub, banks and currency, joined by a link session between their hubs
//! over real gRPC with mutual TLS, each hub trusting the other's CA for its link
//! certificate alone. A Russian network settles in roubles and an Iranian one in rials;
//! between them, the central banks' swap line at the agreed rates, with a cap.
//!
//! Every converted figure is checked against the test's own integer arithmetic.

mod common;

use std::path::Path;
use std::time::Duration;

use common::bic;
use common::net::{
    RawSession, converted_transfer, expect_ack, expect_nak, final_status, order_converting, signer,
    wait_linked,
};
use corridor::hub::{HubConfig, SettlementModel};
use corridor::model::{Amount, Currency, Rate};
use corridor::pb;
use corridor::pb::session_request::Frame as RequestFrame;
use corridor::pb::session_response::Frame as ResponseFrame;
use corridor::reconcile::sources;
use corridor::sim::{LinkTerms, LocalNetwork, link_networks};
use corridor::tls;
use tonic::Code;

/// The Russian network's banks and link identity (the Bank of Russia).
const RU1: &str = "BANKRUMMXXX";
const RU2: &str = "VTBRRUMMXXX";
const RU_LINK: &str = "CBRFRUMMXXX";
/// The Iranian network's banks and link identity (Bank Markazi).
const IR1: &str = "BANKIRTHXXX";
const IR2: &str = "MELIIRTHXXX";
const IR_LINK: &str = "BMJIIRTHXXX";
/// The agreement: 450 rials a rouble, 0.0022 roubles a rial.
const RUB_IRR: &str = "450";
const IRR_RUB: &str = "0.0022";
/// Each bank's prefunded liquidity at its hub, in its currency.
const LIQUIDITY: &str = "1000000000.00";
/// Each bank's customer C001 opens with this; C002 opens empty.
const OPENING: &str = "100000.00";
const OPENING_MINOR: i64 = 10_000_000;
/// Bounds every wait at 30 s.
const POLLS_MAX: usize = 1_200;
const POLL_INTERVAL: Duration = Duration::from_millis(25);

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

/// The two networks, linked, with their bank nodes running.
struct Linked {
    ru: LocalNetwork,
    ir: LocalNetwork,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Caps of the swap line: 1,000,000 roubles on the Russian side, 450,000,000 rials on
/// the Iranian.
fn terms(caps: (&str, &str)) -> LinkTerms {
    LinkTerms {
        a: (bic(RU_LINK), "Bank of Russia".into(), currency("RUB")),
        b: (bic(IR_LINK), "Bank Markazi".into(), currency("IRR")),
        rates: (Rate::parse(RUB_IRR).unwrap(), Rate::parse(IRR_RUB).unwrap()),
        caps: (
            Amount::parse(caps.0, currency("RUB")).unwrap(),
            Amount::parse(caps.1, currency("IRR")).unwrap(),
        ),
    }
}

async fn network(dir: &Path, banks: [&str; 2], code: &str, model: SettlementModel) -> LocalNetwork {
    let pki = tls::init(dir, &[bic(banks[0]), bic(banks[1])]).unwrap();
    let config = HubConfig { settlement_model: model, ..HubConfig::default() };
    let network = LocalNetwork::start_hub(pki, config).await.unwrap();
    let mut admin = network.admin().await.unwrap();
    for bank in banks {
        let request =
            pb::FundRequest { participant_bic: bank.into(), currency: code.into(), amount: LIQUIDITY.into() };
        admin.fund(request).await.unwrap();
    }
    network
}

async fn start_bank(network: &mut LocalNetwork, bank: &str, code: &str) {
    let index = network.start_bank(bic(bank)).await.unwrap();
    let node = &network.banks[index].bank;
    node.open_account("C001", code, "Payer", OPENING).await.unwrap();
    node.open_account("C002", code, "Beneficiary", "").await.unwrap();
}

async fn linked(caps: (&str, &str)) -> Linked {
    linked_with_nodes(caps, &[RU1, RU2]).await
}

/// [`linked`], each hub settling `model`.
async fn linked_settling(caps: (&str, &str), model: SettlementModel) -> Linked {
    linked_as(caps, &[RU1, RU2], model).await
}

/// [`linked`] with bank nodes for the Russian banks of `ru_nodes` only: a test speaks
/// for the others by hand.
async fn linked_with_nodes(caps: (&str, &str), ru_nodes: &[&str]) -> Linked {
    linked_as(caps, ru_nodes, SettlementModel::Gross).await
}

async fn linked_as(caps: (&str, &str), ru_nodes: &[&str], model: SettlementModel) -> Linked {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut ru = network(dirs.0.path(), [RU1, RU2], "RUB", model).await;
    let mut ir = network(dirs.1.path(), [IR1, IR2], "IRR", model).await;
    link_networks(&mut ru, &mut ir, &terms(caps)).await.unwrap();
    wait_linked([(&ru, IR_LINK), (&ir, RU_LINK)]).await;
    for bank in ru_nodes {
        start_bank(&mut ru, bank, "RUB").await;
    }
    for bank in [IR1, IR2] {
        start_bank(&mut ir, bank, "IRR").await;
    }
    Linked { ru, ir, _dirs: dirs }
}

fn balance(network: &LocalNetwork, bank: &str, account: &str) -> i64 {
    let index = network.banks.iter().position(|b| b.bic == bic(bank)).unwrap();
    let (accounts, balanced) = network.banks[index].bank.accounts();
    assert!(balanced, "every ledger balances");
    accounts.iter().find(|a| a.id.as_str() == account).map(|a| a.balance).unwrap()
}

fn index(network: &LocalNetwork, bank: &str) -> usize {
    network.banks.iter().position(|b| b.bic == bic(bank)).unwrap()
}

fn settled_net(network: &LocalNetwork, participant: &str, code: &str) -> i64 {
    network.hub().positions().position(bic(participant), currency(code)).settled_net
}

/// Waits until `bank`'s account holds `minor` units.
async fn wait_balance(network: &LocalNetwork, bank: &str, account: &str, minor: i64) {
    for _ in 0..POLLS_MAX {
        if balance(network, bank, account) == minor {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert_eq!(balance(network, bank, account), minor, "{bank} {account}");
}

/// How long a reconciliation waits for payments in transit.
const RECONCILE_WAIT: Duration = Duration::from_secs(20);

/// Each network reconciles clean on its own (its banks against its hub; the other
/// network's banks and link are not its to read), and the two hubs agree on every
/// payment that crossed the link and on the swap line.
async fn assert_reconciled(ru: &LocalNetwork, ir: &LocalNetwork) {
    for network in [ru, ir] {
        let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
        let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, RECONCILE_WAIT)
            .await
            .unwrap();
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(report.payments_in_transit, 0, "{}", report.render());
        assert!(report.participants_not_checked.is_empty(), "{}", report.render());
    }
    let report =
        sources::reconcile_link_live((&ru.network, &ru.hub_url), (&ir.network, &ir.hub_url), RECONCILE_WAIT)
            .await
            .unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.payments_in_transit, 0, "{}", report.render());
    assert!(report.payments_checked > 0, "{}", report.render());
}

/// One payment each way settles across the link, exact to the minor unit in both
/// currencies: 100.00 RUB from a Russian bank arrive as 45,000.00 IRR (450 a rouble) at
/// an Iranian bank, and 10,000.00 IRR from an Iranian bank arrive as 22.00 RUB (0.0022
/// a rial). Each hub settles in its own currency only: the sending bank against the link
/// at its own hub, the link against the receiving bank at the other; the swap line is
/// the two links' positions, mirror images at the agreed rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_each_way_settles_across_the_link_exact_in_both_currencies() {
    let Linked { ru, ir, _dirs } = linked(("1000000.00", "450000000.00")).await;

    let payer = &ru.banks[index(&ru, RU1)].bank;
    let payment = payer.submit_payment(&order_converting(IR1, "100.00", "RUB", "IRR")).await.unwrap();
    let uetr = payment.uetr.to_string();
    let at_payer = final_status(&ru, index(&ru, RU1), &uetr).await;
    assert_eq!(at_payer.status, pb::PaymentStatus::Acsc as i32, "{at_payer:?}");
    wait_balance(&ir, IR1, "C002", 4_500_000).await;
    assert_eq!(balance(&ru, RU1, "C001"), OPENING_MINOR - 10_000);
    // The Russian hub: the bank paid 100.00 RUB, the link (Bank Markazi) was paid them.
    assert_eq!(settled_net(&ru, RU1, "RUB"), -10_000);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 10_000);
    // The Iranian hub: the link (Bank of Russia) paid 45,000.00 IRR to the bank.
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), -4_500_000);
    assert_eq!(settled_net(&ir, IR1, "IRR"), 4_500_000);

    let payer = &ir.banks[index(&ir, IR2)].bank;
    let payment = payer.submit_payment(&order_converting(RU2, "10000.00", "IRR", "RUB")).await.unwrap();
    let uetr = payment.uetr.to_string();
    let at_payer = final_status(&ir, index(&ir, IR2), &uetr).await;
    assert_eq!(at_payer.status, pb::PaymentStatus::Acsc as i32, "{at_payer:?}");
    wait_balance(&ru, RU2, "C002", 2_200).await;
    assert_eq!(balance(&ir, IR2, "C001"), OPENING_MINOR - 1_000_000);
    assert_eq!(settled_net(&ir, IR2, "IRR"), -1_000_000);
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), -4_500_000 + 1_000_000);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 10_000 - 2_200);
    assert_eq!(settled_net(&ru, RU2, "RUB"), 2_200);
    assert_reconciled(&ru, &ir).await;
    assert_tracked_across(&ru, &ir, &uetr).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// Everything a refused message must leave as it was: at each hub, the positions and the
/// payments; at each bank node, its payments and accounts.
#[derive(Debug, PartialEq)]
struct Snapshot {
    hubs: Vec<(pb::ListPositionsResponse, Vec<pb::HubPayment>)>,
    banks: Vec<(String, Vec<pb::Account>, Vec<pb::Payment>)>,
}

async fn snapshot(networks: &[&LocalNetwork]) -> Snapshot {
    use tokio_stream::StreamExt;
    let mut snapshot = Snapshot { hubs: Vec::new(), banks: Vec::new() };
    for network in networks.iter().copied() {
        let mut admin = network.admin().await.unwrap();
        let positions = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
        let mut stream = admin.export_payments(pb::ExportPaymentsRequest {}).await.unwrap().into_inner();
        let mut payments = Vec::new();
        while let Some(payment) = stream.next().await {
            payments.push(payment.unwrap());
        }
        snapshot.hubs.push((positions, payments));
        for node in &network.banks {
            let mut client = network.operator(network.index_of(node.bic)).await.unwrap();
            let accounts = client.list_accounts(pb::ListAccountsRequest {}).await.unwrap().into_inner();
            let payments =
                client.list_payments(pb::ListPaymentsRequest {}).await.unwrap().into_inner().payments;
            snapshot.banks.push((node.bic.to_string(), accounts.accounts, payments));
        }
    }
    snapshot
}

/// Waits until `network`'s hub has nothing waiting for `link`.
async fn wait_link_drained(network: &LocalNetwork, link: &str) {
    for _ in 0..POLLS_MAX {
        if network.hub().queued_for(bic(link)) == 0 {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{link}'s outbox did not drain");
}

/// While the link is down (the Iranian hub stopped), payments to Iranian banks are
/// accepted by the Russian hub and held for the link; when the hub comes back, each is
/// delivered once, settles once, and both networks and the link reconcile clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_sent_while_the_link_is_down_are_held_and_delivered_exactly_once_when_it_returns() {
    let Linked { ru, mut ir, _dirs } = linked(("1000000.00", "450000000.00")).await;
    ir.stop_hub().await.unwrap();
    let payer = &ru.banks[index(&ru, RU1)].bank;
    let mut uetrs = Vec::new();
    for amount in ["10.00", "20.00", "30.00"] {
        uetrs.push(
            payer
                .submit_payment(&order_converting(IR1, amount, "RUB", "IRR"))
                .await
                .unwrap()
                .uetr
                .to_string(),
        );
    }
    // Held at the Russian hub, waiting for the link: accepted (reserved), none settled.
    for _ in 0..POLLS_MAX {
        if ru.hub().queued_for(bic(IR_LINK)) == 3 {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert_eq!(ru.hub().queued_for(bic(IR_LINK)), 3);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 0);
    assert!(!ru.hub().link_up(bic(IR_LINK)));

    ir.start_hub_again().await.unwrap();
    for uetr in &uetrs {
        let payment = final_status(&ru, index(&ru, RU1), uetr).await;
        assert_eq!(payment.status, pb::PaymentStatus::Acsc as i32, "{payment:?}");
    }
    // 60.00 RUB at 450: 27,000.00 IRR, once.
    wait_balance(&ir, IR1, "C002", 2_700_000).await;
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 6_000);
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), -2_700_000);
    let payee = &ir.banks[index(&ir, IR1)].bank;
    assert_eq!(payee.payments().unwrap().len(), 3, "each delivered once");
    wait_link_drained(&ru, IR_LINK).await;
    assert_reconciled(&ru, &ir).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// Refused at the link, changing nothing at either network: a payment past the swap
/// line's cap (AM04), one at another rate than the agreement's (AM12), one to a bank the
/// other network did not publish (RC01). Then a payment within the terms settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_outside_the_agreement_or_to_unknown_banks_are_refused_at_the_link_changing_nothing() {
    // The swap line takes 1,000.00 RUB on the Russian side.
    let Linked { ru, ir, _dirs } = linked_with_nodes(("1000.00", "450000.00"), &[RU2]).await;
    let mut session = RawSession::open(&ru.network, RU1, &ru.hub_url).await.unwrap();
    let ru1 = signer(&ru.network, RU1);
    let before = snapshot(&[&ru, &ir]).await;

    let over_cap = converted_transfer(RU1, IR1, (100_001, "RUB"), (45_000_450, "IRR"), RUB_IRR, None);
    let nak = expect_nak(session.submit_signed(&ru1, &over_cap).await, Code::FailedPrecondition, "AM04");
    assert!(nak.detail.contains("swap line"), "{nak:?}");
    let wrong_rate = converted_transfer(RU1, IR1, (10_000, "RUB"), (4_510_000, "IRR"), "451", None);
    expect_nak(session.submit_signed(&ru1, &wrong_rate).await, Code::FailedPrecondition, "AM12");
    let unknown = converted_transfer(RU1, "NOPEIRTHXXX", (10_000, "RUB"), (4_500_000, "IRR"), RUB_IRR, None);
    expect_nak(session.submit_signed(&ru1, &unknown).await, Code::NotFound, "RC01");
    assert_eq!(snapshot(&[&ru, &ir]).await, before, "a refusal changes nothing");

    // Within the cap and at the agreed rate: it settles.
    let within = converted_transfer(RU1, IR1, (100_000, "RUB"), (45_000_000, "IRR"), RUB_IRR, None);
    expect_ack(session.submit_signed(&ru1, &within).await);
    wait_balance(&ir, IR1, "C002", 45_000_000).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// A link session spoken by hand, as the Russian hub would: its link certificate, its
/// hub's key signing its directory.
async fn raw_link(ru: &LocalNetwork, ir: &LocalNetwork) -> RawSession {
    use corridor::directory::DirectoryFile;
    let links = ru.network.links().unwrap();
    let tls = ru.network.link_client_tls(&links[0]).unwrap();
    let url = ir.link_url.clone().unwrap();
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let file = DirectoryFile::read(ru.network.root()).unwrap();
    let directory = ru.network.directory().unwrap();
    let now = corridor::clock::unix_ms_now();
    let published = directory.publish(&file, bic(RU_LINK), bic(IR_LINK), now);
    let hub = ru.network.signing_identity(tls::Role::Hub).unwrap();
    let hello = pb::Hello {
        last_osn_processed: 0,
        contract_version: corridor::net::CONTRACT_VERSION,
        network_directory: Some(published.sign(&hub)),
    };
    RawSession::open_saying(channel, hello).await.unwrap()
}

/// Garbage and forgeries on the link session, as the hostile tests give a bank session:
/// a message signed with a key the Russian network did not publish, one signed as a bank
/// of the Iranian network itself, one to a bank of a third network, a Submit without an
/// envelope, bytes that are no message, a sequence gap. Each is refused and changes
/// nothing; then the real link comes back and a payment settles across it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgeries_and_garbage_on_the_link_are_refused_and_the_link_recovers() {
    use corridor::crypto::{KeyId, SigningIdentity};
    let Linked { mut ru, ir, _dirs } = linked(("1000000.00", "450000000.00")).await;
    ru.stop_hub().await.unwrap();
    let before = snapshot(&[&ir]).await;
    let mut link = raw_link(&ru, &ir).await;

    let payment = converted_transfer(RU1, IR1, (10_000, "RUB"), (4_500_000, "IRR"), RUB_IRR, None);
    let unpublished = SigningIdentity::generate(bic(RU1), KeyId::parse("k9").unwrap());
    expect_nak(link.submit_signed(&unpublished, &payment).await, Code::Unauthenticated, "");
    let as_local = converted_transfer(IR2, IR1, (10_000, "RUB"), (4_500_000, "IRR"), RUB_IRR, None);
    let ir2 = signer(&ir.network, IR2);
    expect_nak(link.submit_signed(&ir2, &as_local).await, Code::PermissionDenied, "");
    let transit = converted_transfer(RU1, "BANKCNSHXXX", (10_000, "RUB"), (4_500_000, "IRR"), RUB_IRR, None);
    let ru1 = signer(&ru.network, RU1);
    expect_nak(link.submit_signed(&ru1, &transit).await, Code::NotFound, "RC01");
    let isn = link.next_isn;
    let empty = pb::Submit { isn, envelope: None, possible_duplicate: false };
    link.sender.send(pb::SessionRequest { frame: Some(RequestFrame::Submit(empty)) }).await.unwrap();
    let answer = link.inbound.message().await.unwrap().unwrap().frame.unwrap();
    expect_nak(answer, Code::InvalidArgument, "FF01");
    let garbage = pb::SignedEnvelope {
        payload: bytes::Bytes::from_static(b"\xff\x00 not a message"),
        signature: vec![0; 64].into(),
        signer_bic: RU1.into(),
        key_id: "k1".into(),
    };
    // A Submit without an envelope consumed no number: the garbage takes it.
    expect_nak(link.submit_as(isn, garbage).await, Code::InvalidArgument, "FF01");
    let gap = pb::SignedEnvelope::from(&ru1.sign(&payment));
    expect_nak(link.submit_as(isn + 100, gap).await, Code::FailedPrecondition, "");
    // A question about a payment that did not cross this link is answered with nothing.
    let query = pb::LinkTrackQuery { id: 7, uetr: uuid_of_a_local_payment() };
    link.sender.send(pb::SessionRequest { frame: Some(RequestFrame::TrackQuery(query)) }).await.unwrap();
    match link.inbound.message().await.unwrap().unwrap().frame.unwrap() {
        ResponseFrame::TrackAnswer(answer) => {
            assert_eq!(answer.id, 7);
            assert!(answer.steps.is_empty() && answer.error.contains("no payment"), "{answer:?}");
        }
        other => panic!("expected an answer, got {other:?}"),
    }
    drop(link);
    assert_eq!(snapshot(&[&ir]).await, before, "nothing a forgery or garbage sent changed anything");

    ru.start_hub_again().await.unwrap();
    wait_linked([(&ru, IR_LINK), (&ir, RU_LINK)]).await;
    let payer = &ru.banks[index(&ru, RU1)].bank;
    let uetr =
        payer.submit_payment(&order_converting(IR1, "100.00", "RUB", "IRR")).await.unwrap().uetr.to_string();
    let done = final_status(&ru, index(&ru, RU1), &uetr).await;
    assert_eq!(done.status, pb::PaymentStatus::Acsc as i32, "{done:?}");
    wait_balance(&ir, IR1, "C002", 4_500_000).await;
    assert_reconciled(&ru, &ir).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// Waits until `bank`'s payment `uetr` satisfies `done`.
async fn wait_payment(
    network: &LocalNetwork,
    bank: &str,
    uetr: &str,
    done: impl Fn(&corridor::bank::Payment) -> bool,
) {
    let node = &network.banks[index(network, bank)].bank;
    for _ in 0..POLLS_MAX {
        if node.payment(uetr).is_ok_and(|p| done(&p)) {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{bank}'s payment {uetr} did not get there: {:?}", node.payment(uetr));
}

/// Returns and recalls cross the link the way the payment came: a return (pacs.004) by
/// the Iranian receiver gives the Russian sender back exactly what it paid, and a recall
/// (camt.056) from a Russian sender, accepted by the Iranian receiver (pacs.004 FOCR and
/// camt.029), does the same; the swap line ends where it began, and everything
/// reconciles across the link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_and_recalls_cross_the_link_and_restore_both_sides_exactly() {
    use corridor::bank::ReturnState;
    let Linked { ru, ir, _dirs } = linked(("1000000.00", "450000000.00")).await;
    let returned = |p: &corridor::bank::Payment| matches!(p.return_state, ReturnState::Returned { .. });

    let payer = &ru.banks[index(&ru, RU1)].bank;
    let first =
        payer.submit_payment(&order_converting(IR1, "100.00", "RUB", "IRR")).await.unwrap().uetr.to_string();
    let second =
        payer.submit_payment(&order_converting(IR1, "30.00", "RUB", "IRR")).await.unwrap().uetr.to_string();
    for uetr in [&first, &second] {
        final_status(&ru, index(&ru, RU1), uetr).await;
    }
    wait_balance(&ir, IR1, "C002", 5_850_000).await;

    let payee = &ir.banks[index(&ir, IR1)].bank;
    payee.return_payment(&first, "AC04", "account closed").await.unwrap();
    wait_payment(&ru, RU1, &first, returned).await;
    payer.recall_payment(&second, "DUPL", "sent twice").await.unwrap();
    wait_payment(&ir, IR1, &second, |p| p.recall.is_some()).await;
    payee.answer_recall(&second, true, "", "").await.unwrap();
    wait_payment(&ru, RU1, &second, returned).await;

    wait_balance(&ru, RU1, "C001", OPENING_MINOR).await;
    assert_eq!(balance(&ir, IR1, "C002"), 0);
    assert_eq!(settled_net(&ru, IR_LINK, "RUB"), 0, "the swap line is back where it began");
    assert_eq!(settled_net(&ir, RU_LINK, "IRR"), 0);
    assert_eq!(settled_net(&ru, RU1, "RUB"), 0);
    assert_eq!(settled_net(&ir, IR1, "IRR"), 0);
    assert_reconciled(&ru, &ir).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// `track` at either hub shows the whole path: its own steps, with the link hop, and the
/// steps of the hub across the link, which it asks over the link session; with
/// `this_hub_only`, its own. `corridor track` given both networks' directories shows the
/// same whole path, read from both hubs.
async fn assert_tracked_across(ru: &LocalNetwork, ir: &LocalNetwork, uetr: &str) {
    let track = |network: &LocalNetwork, this_hub_only: bool| {
        let (dir, url, uetr) = (network.network.clone(), network.hub_url.clone(), uetr.to_owned());
        async move {
            let mut client = corridor::net::tracker_client(&dir, &url).await.unwrap();
            client.track(pb::TrackRequest { uetr, this_hub_only }).await.unwrap().into_inner().steps
        }
    };
    let steps = |network| track(network, true);
    // The payment went from the Iranian network to the Russian one.
    let at_ir = steps(ir).await;
    let crossed = at_ir.iter().find(|s| s.step == "crossed_link").expect("the link hop at the sending hub");
    assert_eq!(crossed.by_bic, RU_LINK, "{at_ir:?}");
    let at_ru = steps(ru).await;
    let arrived = at_ru.iter().find(|s| s.step == "submitted").unwrap();
    assert_eq!(arrived.by_bic, IR_LINK, "{at_ru:?}");
    assert!(arrived.detail.contains("arrived over the link"), "{at_ru:?}");
    assert!(at_ru.iter().any(|s| s.step == "delivered" && s.by_bic == RU2), "{at_ru:?}");
    for (network, own, other, link) in [(ru, &at_ru, &at_ir, IR_LINK), (ir, &at_ir, &at_ru, RU_LINK)] {
        let whole = track(network, false).await;
        assert_eq!(whole.len(), own.len() + other.len(), "{whole:?}");
        let across: Vec<_> = whole.iter().filter(|s| s.detail.starts_with("[across the link")).collect();
        assert_eq!(across.len(), other.len(), "{whole:?}");
        assert!(across.iter().all(|s| s.detail.contains(link)), "{whole:?}");
        assert!(whole.windows(2).all(|w| w[0].time_unix_ms <= w[1].time_unix_ms), "in time order: {whole:?}");
    }

    let args: Vec<String> = [
        "track",
        "--dir",
        ru.network.root().to_str().unwrap(),
        "--hub",
        &ru.hub_url,
        uetr,
        "--linked-dir",
        ir.network.root().to_str().unwrap(),
        "--linked-hub",
        &ir.hub_url,
        "--json",
    ]
    .map(String::from)
    .to_vec();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_corridor")).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let track: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let steps = track["steps"].as_array().unwrap();
    assert_eq!(steps.len(), at_ru.len() + at_ir.len(), "{track:#}");
    let times: Vec<i64> = steps.iter().map(|s| s["time_unix_ms"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {track:#}");
    let first = steps[0]["detail"].as_str().unwrap();
    assert!(
        first.starts_with("[BMJIIRTHXXX Bank Markazi]"),
        "the whole path starts at the sending network: {track:#}"
    );
    assert!(steps.iter().any(|s| s["step"] == "crossed_link"), "{track:#}");
    assert!(steps.iter().any(|s| s["step"] == "delivered" && s["by"] == RU2), "{track:#}");
}

/// With deferred net settlement, payments across the link settle in each hub's windows:
/// closing a window, each hub's report has a line for the link, the swap line's net for
/// the window in its own currency, which its central bank reads beside the other's: the
/// Russian hub's is the roubles its banks paid out less those they were paid in, the
/// Iranian hub's the same in rials, leg by leg at the agreed rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_net_settlement_across_the_link_reports_the_swap_line_in_each_window() {
    let Linked { ru, ir, _dirs } =
        linked_settling(("1000000.00", "450000000.00"), SettlementModel::DeferredNet).await;
    let payer = &ru.banks[index(&ru, RU1)].bank;
    let out =
        payer.submit_payment(&order_converting(IR1, "100.00", "RUB", "IRR")).await.unwrap().uetr.to_string();
    final_status(&ru, index(&ru, RU1), &out).await;
    let payer = &ir.banks[index(&ir, IR2)].bank;
    let back = payer
        .submit_payment(&order_converting(RU2, "10000.00", "IRR", "RUB"))
        .await
        .unwrap()
        .uetr
        .to_string();
    final_status(&ir, index(&ir, IR2), &back).await;
    wait_balance(&ru, RU2, "C002", 2_200).await;

    let line = |report: &pb::SettlementReport, participant: &str| {
        report.lines.iter().find(|l| l.participant_bic == participant).cloned().unwrap()
    };
    let request = pb::CloseWindowRequest {};
    let at_ru = ru.admin().await.unwrap().close_window(request).await.unwrap().into_inner();
    let swap = line(&at_ru, IR_LINK);
    assert_eq!((swap.currency.as_str(), swap.received, swap.sent, swap.net), ("RUB", 10_000, 2_200, 7_800));
    let at_ir = ir.admin().await.unwrap().close_window(request).await.unwrap().into_inner();
    let swap = line(&at_ir, RU_LINK);
    assert_eq!(
        (swap.currency.as_str(), swap.received, swap.sent, swap.net),
        ("IRR", 1_000_000, 4_500_000, -3_500_000)
    );
    // Each window's lines add up to zero in the hub's currency: the link's net is what its
    // banks' nets leave.
    for report in [&at_ru, &at_ir] {
        assert_eq!(report.lines.iter().map(|l| l.net).sum::<i64>(), 0, "{report:?}");
    }
    assert_reconciled(&ru, &ir).await;
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}

/// A UETR no hub has seen.
fn uuid_of_a_local_payment() -> String {
    corridor::model::Uetr::generate().to_string()
}

/// A bank asking its hub about payments with a link session's frame is refused: only a
/// linked hub asks, and only about payments across its link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_asking_about_payments_on_its_session_is_refused() {
    let Linked { ru, ir, _dirs } = linked_with_nodes(("1000000.00", "450000000.00"), &[RU2]).await;
    let mut session = RawSession::open(&ru.network, RU1, &ru.hub_url).await.unwrap();
    let query = pb::LinkTrackQuery { id: 1, uetr: uuid_of_a_local_payment() };
    session.sender.send(pb::SessionRequest { frame: Some(RequestFrame::TrackQuery(query)) }).await.unwrap();
    let status = loop {
        match session.inbound.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the session ended without saying why"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("linked hub"), "{status:?}");
    ru.stop().await.unwrap();
    ir.stop().await.unwrap();
}
