//! Settlement at the hub (DESIGN.md: the hub "keeps settlement positions" and checks
//! "the sender's position against its liquidity and net debit cap" before it ACKs):
//! prefunded liquidity and caps, gross and deferred net settlement with windows,
//! suspensions, the operator-only admin service, the tracker and statements. Real gRPC
//! with mTLS, except where a test drives `Hub::submit` directly to send what no honest
//! bank would.

mod common;

use std::time::Duration;

use common::bic;
use corridor::bank::PaymentOrder;
use corridor::crypto::SigningIdentity;
use corridor::directory::Directory;
use corridor::hub::{Hub, HubConfig, OperatorAction, SettlementModel};
use corridor::model::*;
use corridor::net;
use corridor::pb;
use corridor::pb::hub_admin_service_client::HubAdminServiceClient;
use corridor::pb::tracker_service_client::TrackerServiceClient;
use corridor::sim::LocalNetwork;
use corridor::tls::{self, NetworkDir, Role};
use tonic::Code;

const RU: &str = "BANKRUMMXXX";
const IR: &str = "BANKIRTHXXX";
const CN: &str = "BANKCNSHXXX";

/// A running network of `bics` settling by `model`; every bank has C001 (100000.00 CNY)
/// and an empty C002, and no position at the hub yet.
async fn network(dir: &std::path::Path, bics: &[&str], model: SettlementModel) -> LocalNetwork {
    let bics: Vec<Bic> = bics.iter().map(|b| bic(b)).collect();
    let pki = tls::init(dir, &bics).unwrap();
    let config = HubConfig { settlement_model: model, ..HubConfig::default() };
    let mut network = LocalNetwork::start_hub(pki, config).await.unwrap();
    for b in bics {
        let index = network.start_bank(b).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Payer", "100000.00").await.unwrap();
        bank.open_account("C002", "CNY", "Payee", "").await.unwrap();
    }
    network
}

fn order(to: &str, amount: &str) -> PaymentOrder {
    PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: to.into(),
        creditor_account: "C002".into(),
        creditor_name: "Payee".into(),
        amount: amount.into(),
        currency: "CNY".into(),
        remittance_information: String::new(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

async fn admin(network: &LocalNetwork) -> HubAdminServiceClient<tonic::transport::Channel> {
    network.admin().await.unwrap()
}

async fn fund(network: &LocalNetwork, bank: &str, amount: &str) -> pb::Position {
    let request =
        pb::FundRequest { participant_bic: bank.into(), currency: "CNY".into(), amount: amount.into() };
    admin(network).await.fund(request).await.unwrap().into_inner().position.unwrap()
}

async fn position(network: &LocalNetwork, bank: &str) -> pb::Position {
    let positions = admin(network).await.list_positions(pb::ListPositionsRequest {}).await.unwrap();
    let found = positions
        .into_inner()
        .positions
        .into_iter()
        .find(|p| p.participant_bic == bank && p.currency == "CNY");
    found.unwrap_or_else(|| pb::Position {
        participant_bic: bank.into(),
        currency: "CNY".into(),
        ..Default::default()
    })
}

fn balance(network: &LocalNetwork, bank: &str, account: &str) -> i64 {
    let (accounts, balanced) = network.banks[network.index_of(bic(bank))].bank.accounts();
    assert!(balanced, "{bank}'s ledger balances");
    accounts.iter().find(|a| a.id.as_str() == account).map_or(0, |a| a.balance)
}

/// Pays from `from` and waits (bounded polling) until the payment is final at the sender.
async fn pay(network: &LocalNetwork, from: &str, to: &str, amount: &str) -> corridor::bank::Payment {
    let bank = &network.banks[network.index_of(bic(from))].bank;
    let uetr = bank.submit_payment(&order(to, amount)).await.unwrap().uetr.to_string();
    for _ in 0..2_400 {
        let payment = bank.payment(&uetr).unwrap();
        if payment.status.is_final() {
            return payment;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("payment {uetr} from {from} never became final");
}

/// A payment over what the sender's position covers is refused with AM04 and moves
/// nothing; once the operator funds the sender, the same order goes through.
#[tokio::test]
async fn a_payment_over_the_cap_is_refused_with_am04_and_goes_through_after_funding() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::Gross).await;
    fund(&network, RU, "60.00").await;
    let cap =
        pb::SetNetDebitCapRequest { participant_bic: RU.into(), currency: "CNY".into(), cap: "40.00".into() };
    let capped = admin(&network).await.set_net_debit_cap(cap).await.unwrap().into_inner().position.unwrap();
    assert_eq!((capped.liquidity, capped.net_debit_cap, capped.available), (6_000, 4_000, 10_000));

    let refused = pay(&network, RU, IR, "100.01").await;
    assert_eq!((refused.status, refused.reason), (PaymentStatus::Rjct, Some(ReasonCode::Am04)));
    assert!(refused.detail.contains("cannot cover"), "{}", refused.detail);
    assert_eq!(balance(&network, RU, "C001"), 10_000_000, "the payer is whole again");
    assert_eq!(balance(&network, IR, "C002"), 0, "nothing reached the payee");
    let after = position(&network, RU).await;
    assert_eq!((after.liquidity, after.reserved, after.settled_net, after.available), (6_000, 0, 0, 10_000));
    assert!(network.hub().payments().is_empty(), "the hub relayed nothing");

    fund(&network, RU, "0.01").await;
    let settled = pay(&network, RU, IR, "100.01").await;
    assert_eq!(settled.status, PaymentStatus::Acsc);
    assert_eq!(balance(&network, IR, "C002"), 10_001);
    let after = position(&network, RU).await;
    // Gross: final at once against liquidity; the cap is used to the last fen.
    assert_eq!(
        (after.liquidity, after.reserved, after.settled_net, after.available),
        (-4_000, 0, -10_001, 0)
    );
    assert_eq!(position(&network, IR).await.liquidity, 10_001);
    assert_eq!(balance(&network, RU, "SYS-SETTLEMENT-CNY"), after.settled_net, "hub and bank agree");
    network.stop().await.unwrap();
}

/// Deferred net: A->B 100, B->C 100, C->A 100 settle in one window with no net
/// movement; its report shows gross 300 and net 0 (what netting saved).
#[tokio::test]
async fn a_circle_of_payments_settles_in_a_window_with_zero_net_movement() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR, CN], SettlementModel::DeferredNet).await;
    for bank in [RU, IR, CN] {
        fund(&network, bank, "100.00").await;
    }
    for (from, to) in [(RU, IR), (IR, CN), (CN, RU)] {
        assert_eq!(pay(&network, from, to, "100.00").await.status, PaymentStatus::Acsc);
    }
    let open = position(&network, RU).await;
    assert_eq!((open.liquidity, open.window_net, open.settled_net), (10_000, 0, 0));

    let report = admin(&network).await.close_window(pb::CloseWindowRequest {}).await.unwrap().into_inner();
    assert_eq!(report.window_id, 1);
    assert_eq!(report.totals.len(), 1);
    let total = &report.totals[0];
    assert_eq!(
        (total.currency.as_str(), total.payments, total.gross, total.net, total.saved),
        ("CNY", 3, 30_000, 0, 30_000)
    );
    assert_eq!(report.lines.len(), 3);
    for line in &report.lines {
        assert_eq!((line.sent, line.received, line.net), (10_000, 10_000, 0), "{line:?}");
    }
    for bank in [RU, IR, CN] {
        let after = position(&network, bank).await;
        assert_eq!((after.liquidity, after.window_net, after.reserved), (10_000, 0, 0), "{bank}");
    }
    let reports = admin(&network).await.list_settlement_reports(pb::ListSettlementReportsRequest {}).await;
    assert_eq!(reports.unwrap().into_inner().reports, vec![report]);
    network.stop().await.unwrap();
}

/// A window nets unequal flows: what one participant owes net leaves its liquidity at
/// the close, not before; a gross hub has no windows to close.
#[tokio::test]
async fn closing_a_window_moves_each_net_into_liquidity_and_a_gross_hub_has_no_windows() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::DeferredNet).await;
    fund(&network, RU, "500.00").await;
    pay(&network, RU, IR, "300.00").await;
    pay(&network, RU, IR, "100.00").await;
    let open = position(&network, RU).await;
    assert_eq!((open.liquidity, open.window_net, open.available), (50_000, -40_000, 10_000));
    let report = admin(&network).await.close_window(pb::CloseWindowRequest {}).await.unwrap().into_inner();
    let total = &report.totals[0];
    assert_eq!((total.gross, total.net, total.saved), (40_000, 40_000, 0));
    assert_eq!(
        (position(&network, RU).await.liquidity, position(&network, IR).await.liquidity),
        (10_000, 40_000)
    );
    network.stop().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let network = self::network(dir.path(), &[RU, IR], SettlementModel::Gross).await;
    let refused = admin(&network).await.close_window(pb::CloseWindowRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("gross"), "{}", refused.message());
    network.stop().await.unwrap();
}

/// A suspended participant's payments are refused with a clear reason, and so are
/// payments to it; after it is resumed they flow again.
#[tokio::test]
async fn a_suspended_participants_payments_are_refused_until_it_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::Gross).await;
    fund(&network, RU, "1000.00").await;
    fund(&network, IR, "1000.00").await;
    let suspend = pb::SuspendRequest { participant_bic: RU.into() };
    let suspended = admin(&network).await.suspend(suspend.clone()).await.unwrap().into_inner();
    assert!(suspended.suspended);
    assert!(position(&network, RU).await.suspended);

    let from_suspended = pay(&network, RU, IR, "10.00").await;
    assert_eq!((from_suspended.status, from_suspended.reason), (PaymentStatus::Rjct, Some(ReasonCode::Ag01)));
    assert!(from_suspended.detail.contains("suspended"), "{}", from_suspended.detail);
    let to_suspended = pay(&network, IR, RU, "10.00").await;
    assert_eq!((to_suspended.status, to_suspended.reason), (PaymentStatus::Rjct, Some(ReasonCode::Ag01)));
    assert_eq!((balance(&network, RU, "C001"), balance(&network, IR, "C002")), (10_000_000, 0));
    assert_eq!(position(&network, RU).await.reserved, 0);

    let resumed = admin(&network).await.resume(suspend).await.unwrap().into_inner();
    assert!(!resumed.suspended);
    assert_eq!(pay(&network, RU, IR, "10.00").await.status, PaymentStatus::Acsc);
    assert_eq!(pay(&network, IR, RU, "10.00").await.status, PaymentStatus::Acsc);
    network.stop().await.unwrap();
}

fn admin_as(
    network: &NetworkDir,
    role: Role,
    url: &str,
) -> impl Future<Output = HubAdminServiceClient<tonic::transport::Channel>> {
    let (network, url) = (network.clone(), url.to_owned());
    async move { HubAdminServiceClient::new(net::connect(&network, role, &url).await.unwrap()) }
}

/// Only the operator's certificate may call the admin service: a bank's, or the hub's
/// own, is refused with PERMISSION_DENIED and changes nothing.
#[tokio::test]
async fn only_the_operators_certificate_can_call_the_admin_service() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::DeferredNet).await;
    for role in [Role::Bank(bic(RU)), Role::Bank(bic(IR)), Role::Hub] {
        let mut client = admin_as(&network.network, role, &network.hub_url).await;
        let fund =
            pb::FundRequest { participant_bic: RU.into(), currency: "CNY".into(), amount: "1.00".into() };
        let suspend = pb::SuspendRequest { participant_bic: IR.into() };
        let codes = [
            client.fund(fund.clone()).await.unwrap_err().code(),
            client.defund(fund).await.unwrap_err().code(),
            client.suspend(suspend).await.unwrap_err().code(),
            client.close_window(pb::CloseWindowRequest {}).await.unwrap_err().code(),
            client.list_positions(pb::ListPositionsRequest {}).await.unwrap_err().code(),
            client.list_settlement_reports(pb::ListSettlementReportsRequest {}).await.unwrap_err().code(),
            client.get_statement(pb::HubStatementRequest::default()).await.unwrap_err().code(),
            client.export_payments(pb::ExportPaymentsRequest {}).await.unwrap_err().code(),
        ];
        assert!(codes.iter().all(|c| *c == Code::PermissionDenied), "{role:?}: {codes:?}");
    }
    let positions =
        admin(&network).await.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
    assert!(positions.positions.is_empty(), "nothing changed: {positions:?}");
    assert_eq!(positions.open_window_id, 1, "no window was closed");
    network.stop().await.unwrap();
}

/// Garbage from the operator gets a clear error and changes nothing.
#[tokio::test]
async fn bad_admin_requests_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::Gross).await;
    fund(&network, RU, "10.00").await;
    let mut client = admin(&network).await;
    let request = |bic: &str, currency: &str, amount: &str| pb::FundRequest {
        participant_bic: bic.into(),
        currency: currency.into(),
        amount: amount.into(),
    };
    for (bad, code) in [
        (request("", "CNY", "1.00"), Code::InvalidArgument),
        (request("NOTABIC", "CNY", "1.00"), Code::InvalidArgument),
        (request("ZZZZZZZZXXX", "CNY", "1.00"), Code::NotFound),
        (request(tls::HUB_BIC, "CNY", "1.00"), Code::NotFound),
        (request(RU, "", "1.00"), Code::InvalidArgument),
        (request(RU, "XYZ", "1.00"), Code::InvalidArgument),
        (request(RU, "CNY", "-1.00"), Code::InvalidArgument),
        (request(RU, "CNY", "0"), Code::InvalidArgument),
        (request(RU, "CNY", "1.001"), Code::InvalidArgument),
        (request(RU, "CNY", "1e3"), Code::InvalidArgument),
        (request(RU, "CNY", "99999999999999999999999"), Code::InvalidArgument),
    ] {
        let status = client.fund(bad.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{bad:?}: {}", status.message());
        assert!(!status.message().is_empty());
    }
    // Taking back more than is available, a negative cap, an overflowing fund.
    let status = client.defund(request(RU, "CNY", "10.01")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    // The net debit cap is credit for payments, never money to take out.
    let cap = pb::SetNetDebitCapRequest {
        participant_bic: RU.into(),
        currency: "CNY".into(),
        cap: "1000.00".into(),
    };
    client.set_net_debit_cap(cap).await.unwrap();
    let status = client.defund(request(RU, "CNY", "10.01")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    let no_cap =
        pb::SetNetDebitCapRequest { participant_bic: RU.into(), currency: "CNY".into(), cap: "0".into() };
    client.set_net_debit_cap(no_cap).await.unwrap();
    let cap =
        pb::SetNetDebitCapRequest { participant_bic: RU.into(), currency: "CNY".into(), cap: "-5".into() };
    assert_eq!(client.set_net_debit_cap(cap).await.unwrap_err().code(), Code::InvalidArgument);
    let status = client.fund(request(RU, "CNY", "92233720368547758.07")).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    for period in [(5, 5), (-1, 10), (10, 5)] {
        let statement = pb::HubStatementRequest {
            participant_bic: RU.into(),
            currency: "CNY".into(),
            from_time_unix_ms: period.0,
            to_time_unix_ms: period.1,
        };
        assert_eq!(client.get_statement(statement).await.unwrap_err().code(), Code::InvalidArgument);
    }
    let after = position(&network, RU).await;
    assert_eq!((after.liquidity, after.net_debit_cap), (1_000, 0), "nothing changed");
    let mut tracker = TrackerServiceClient::new(
        net::connect(&network.network, Role::Operator, &network.hub_url).await.unwrap(),
    );
    for uetr in ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"] {
        let status =
            tracker.track(pb::TrackRequest { uetr: uetr.into(), this_hub_only: false }).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{uetr:?}");
    }
    let unknown = Uetr::generate().to_string();
    assert_eq!(
        tracker.track(pb::TrackRequest { uetr: unknown, this_hub_only: false }).await.unwrap_err().code(),
        Code::NotFound
    );
    network.stop().await.unwrap();
}

/// `track UETR` shows the payment's path as the hub saw it, each step with its time;
/// a bank may track its own payments only. Positions, windows and the tracker come
/// back whole after the hub restarts from its journal.
#[tokio::test]
async fn the_tracker_shows_each_step_and_everything_survives_a_hub_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network(dir.path(), &[RU, IR, CN], SettlementModel::DeferredNet).await;
    fund(&network, RU, "1000.00").await;
    let settled = pay(&network, RU, IR, "25.00").await;
    let uetr = settled.uetr.to_string();
    let (pki, hub_url) = (network.network.clone(), network.hub_url.clone());
    let operator = || net::connect(&pki, Role::Operator, &hub_url);
    let mut tracker = TrackerServiceClient::new(operator().await.unwrap());
    // The sender's confirmation of the pacs.002 comes after the payment is final there.
    let mut tracked = pb::TrackResponse::default();
    for _ in 0..400 {
        tracked = tracker
            .track(pb::TrackRequest { uetr: uetr.clone(), this_hub_only: false })
            .await
            .unwrap()
            .into_inner();
        if tracked.steps.iter().any(|s| s.step == "status_delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let steps: Vec<&str> = tracked.steps.iter().map(|s| s.step.as_str()).collect();
    for expected in
        ["submitted", "acknowledged", "delivered", "status_reported", "settled", "status_delivered"]
    {
        assert!(steps.contains(&expected), "{expected} missing from {steps:?}");
    }
    assert!(tracked.steps.windows(2).all(|w| w[0].time_unix_ms <= w[1].time_unix_ms), "{tracked:?}");
    assert!(tracked.steps.iter().all(|s| s.time_unix_ms > 1_700_000_000_000));
    let payment = tracked.payment.clone().unwrap();
    assert_eq!((payment.sender_bic.as_str(), payment.receiver_bic.as_str(), payment.settled), (RU, IR, true));

    // The banks of the payment may track it; a third bank learns nothing.
    for (bank, visible) in [(RU, true), (IR, true), (CN, false)] {
        let channel = net::connect(&network.network, Role::Bank(bic(bank)), &network.hub_url).await.unwrap();
        let answer = TrackerServiceClient::new(channel)
            .track(pb::TrackRequest { uetr: uetr.clone(), this_hub_only: false })
            .await;
        assert_eq!(answer.is_ok(), visible, "{bank}: {answer:?}");
    }

    admin(&network).await.close_window(pb::CloseWindowRequest {}).await.unwrap();
    let before =
        admin(&network).await.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
    let reports = pb::ListSettlementReportsRequest {};
    let reports_before = admin(&network).await.list_settlement_reports(reports).await.unwrap().into_inner();
    let tracked_before = tracker
        .track(pb::TrackRequest { uetr: uetr.clone(), this_hub_only: false })
        .await
        .unwrap()
        .into_inner();
    network.restart_hub().await.unwrap();
    let after = admin(&network).await.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
    assert_eq!(before, after);
    let reports_after = admin(&network).await.list_settlement_reports(reports).await.unwrap().into_inner();
    assert_eq!(reports_before, reports_after, "windows, with their opening times, come back whole");
    let mut tracker = TrackerServiceClient::new(operator().await.unwrap());
    let tracked_after =
        tracker.track(pb::TrackRequest { uetr, this_hub_only: false }).await.unwrap().into_inner();
    assert_eq!(tracked_before, tracked_after);
    assert!(tracked_after.steps.iter().any(|s| s.step == "settled" && s.detail.contains("window 1 closed")));
    network.stop().await.unwrap();
}

/// The hub's statement of a participant and the bank's statement of its settlement
/// account list the same payments and end at the same balance.
#[tokio::test]
async fn hub_and_bank_statements_of_the_settlement_account_agree() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR], SettlementModel::Gross).await;
    fund(&network, RU, "1000.00").await;
    fund(&network, IR, "1000.00").await;
    let start = unix_ms() - 1;
    pay(&network, RU, IR, "30.00").await;
    pay(&network, IR, RU, "12.50").await;
    pay(&network, RU, IR, "7.25").await;
    let request =
        pb::HubStatementRequest { participant_bic: RU.into(), currency: "CNY".into(), ..Default::default() };
    let hub = admin(&network).await.get_statement(request).await.unwrap().into_inner();
    let hub = corridor::model::wire::statement_from_pb(hub).unwrap();
    let bank = network.banks[network.index_of(bic(RU))].bank.statement("", "CNY", 0, i64::MAX).unwrap();
    assert_eq!(hub.closing_balance, bank.closing_balance);
    assert_eq!(hub.closing_balance.minor_units, -3_000 + 1_250 - 725);
    let entries =
        |s: &Statement| s.entries.iter().map(|e| (e.uetr, e.direction, e.amount)).collect::<Vec<_>>();
    assert_eq!(entries(&hub), entries(&bank));
    // A period: nothing before `start`, so the opening balance is zero.
    let bank =
        network.banks[network.index_of(bic(RU))].bank.statement("", "CNY", start, unix_ms() + 1).unwrap();
    assert_eq!((bank.opening_balance.minor_units, bank.entries.len()), (0, 3));
    bank.validate().unwrap();
    network.stop().await.unwrap();
}

fn unix_ms() -> i64 {
    corridor::clock::unix_ms_now()
}

fn submit(isn: u64, identity: &SigningIdentity, message: &Message) -> pb::Submit {
    pb::Submit {
        isn,
        envelope: Some(pb::SignedEnvelope::from(&identity.sign(message))),
        possible_duplicate: false,
    }
}

fn status_report(from: &str, to: &str, transfer: &Message, status: PaymentStatus) -> Message {
    let report = PaymentStatusReport {
        original_message_id: transfer.header().message_id.clone(),
        uetr: transfer.header().uetr.unwrap(),
        status,
        reason: (status == PaymentStatus::Rjct).then_some(ReasonCode::Ac01),
        additional_information: String::new(),
    };
    Message::new(common::header(from, to, Some(report.uetr)), Body::Pacs002(report)).unwrap()
}

fn answer(frame: pb::session_response::Frame) -> Result<(), (Code, String, String)> {
    match frame {
        pb::session_response::Frame::Ack(_) => Ok(()),
        pb::session_response::Frame::Nak(nak) => Err((Code::from(nak.code), nak.reason_code, nak.detail)),
        other => panic!("not an answer: {other:?}"),
    }
}

/// The hub settles on a status report only from the payment's receiver, to its
/// sender, about the message it received, once; and a UETR names one payment. Each
/// refusal leaves the positions as they were.
#[tokio::test]
async fn status_reports_settle_only_from_the_receiver_once_and_uetrs_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::init(dir.path(), &[bic(RU), bic(IR), bic(CN)]).unwrap();
    let directory = Directory::load(pki.root()).unwrap();
    let hub_identity = pki.signing_identity(Role::Hub).unwrap();
    let hub = Hub::open(HubConfig::default(), directory, hub_identity, &pki.hub_data_dir()).unwrap();
    let signer = |bank: &str| pki.signing_identity(Role::Bank(bic(bank))).unwrap();
    let (ru, ir, cn) = (signer(RU), signer(IR), signer(CN));
    hub.operate(OperatorAction::Fund(bic(RU), common::amount("5000.00", "RUB"))).await.unwrap();

    let uetr = Uetr::generate();
    let transfer =
        Message::new(common::header(RU, IR, Some(uetr)), Body::Pacs008(common::credit_transfer(uetr)))
            .unwrap();
    assert_eq!(answer(hub.submit(bic(RU), submit(1, &ru, &transfer)).0), Ok(()));
    let reserved = hub.positions().position(bic(RU), common::currency("RUB"));
    assert_eq!(reserved.reserved, 123_456);

    let refusals = [
        (bic(CN), submit(1, &cn, &status_report(CN, RU, &transfer, PaymentStatus::Acsc))),
        (bic(IR), submit(1, &ir, &status_report(IR, CN, &transfer, PaymentStatus::Acsc))),
    ];
    for (peer, bad) in refusals {
        let (code, _, detail) = answer(hub.submit(peer, bad).0).unwrap_err();
        assert_eq!(code, Code::InvalidArgument, "{detail}");
        assert!(detail.contains("only BANKIRTHXXX may report"), "{detail}");
    }
    let mut wrong_original = status_report(IR, RU, &transfer, PaymentStatus::Acsc);
    if let Body::Pacs002(report) = wrong_original.body().clone() {
        let report = PaymentStatusReport { original_message_id: MessageId::generate(), ..report };
        wrong_original = Message::new(wrong_original.header().clone(), Body::Pacs002(report)).unwrap();
    }
    let (code, _, detail) = answer(hub.submit(bic(IR), submit(2, &ir, &wrong_original)).0).unwrap_err();
    assert_eq!(code, Code::InvalidArgument, "{detail}");
    assert_eq!(hub.positions().position(bic(RU), common::currency("RUB")), reserved, "nothing moved");

    let acsc = status_report(IR, RU, &transfer, PaymentStatus::Acsc);
    assert_eq!(answer(hub.submit(bic(IR), submit(3, &ir, &acsc)).0), Ok(()));
    let settled = hub.positions().position(bic(RU), common::currency("RUB"));
    assert_eq!((settled.reserved, settled.settled_net), (0, -123_456));
    let rjct = status_report(IR, RU, &transfer, PaymentStatus::Rjct);
    let (code, _, detail) = answer(hub.submit(bic(IR), submit(4, &ir, &rjct)).0).unwrap_err();
    assert_eq!(code, Code::InvalidArgument);
    assert!(detail.contains("already reported"), "{detail}");

    let mut reused = common::credit_transfer(uetr);
    reused.amount = common::amount("1.00", "RUB");
    let reused = Message::new(common::header(RU, IR, Some(uetr)), Body::Pacs008(reused)).unwrap();
    let (code, reason, _) = answer(hub.submit(bic(RU), submit(2, &ru, &reused)).0).unwrap_err();
    assert_eq!((code, reason.as_str()), (Code::AlreadyExists, "DUPL"));
    assert_eq!(hub.positions().position(bic(RU), common::currency("RUB")), settled, "nothing moved");
}

/// A status report answers a payment the hub relayed, so relationships (RMA) that
/// would not let the receiver send a pacs.002 to the sender do not strand the payment:
/// the hub checks instead that the report comes from that payment's receiver.
#[tokio::test]
async fn a_status_report_settles_even_where_rma_lists_no_pacs002_back() {
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let path = dir.path().join(corridor::directory::DIRECTORY_FILE);
    let mut file: corridor::directory::DirectoryFile =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for relationship in &mut file.relationships {
        if relationship.sender == IR && relationship.receiver == RU {
            relationship.message_types.retain(|t| t != "pacs.002");
        }
    }
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let mut network = LocalNetwork::start_hub(pki, HubConfig::default()).await.unwrap();
    for b in [RU, IR] {
        let index = network.start_bank(bic(b)).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Payer", "100000.00").await.unwrap();
        bank.open_account("C002", "CNY", "Payee", "").await.unwrap();
    }
    fund(&network, RU, "100.00").await;
    assert_eq!(pay(&network, RU, IR, "10.00").await.status, PaymentStatus::Acsc);
    let after = position(&network, RU).await;
    assert_eq!((after.reserved, after.settled_net), (0, -1_000));
    network.stop().await.unwrap();
}

/// The settlement model is fixed when the journal is created: a hub started on the
/// same journal with the other model is refused with a clear error.
#[tokio::test]
async fn a_journal_keeps_the_settlement_model_it_was_created_with() {
    let dir = tempfile::tempdir().unwrap();
    let pki = tls::init(dir.path(), &[bic(RU), bic(IR)]).unwrap();
    let open = |model| {
        let directory = Directory::load(pki.root()).unwrap();
        let config = HubConfig { settlement_model: model, ..HubConfig::default() };
        Hub::open(config, directory, pki.signing_identity(Role::Hub).unwrap(), &pki.hub_data_dir())
    };
    let hub = open(SettlementModel::DeferredNet).unwrap();
    hub.operate(OperatorAction::Fund(bic(RU), common::amount("1.00", "CNY"))).await.unwrap();
    drop(hub);
    let refusal = open(SettlementModel::Gross).err().expect("refused");
    assert!(refusal.contains("deferred-net"), "{refusal}");
    let hub = open(SettlementModel::DeferredNet).unwrap();
    assert_eq!(hub.positions().position(bic(RU), common::currency("CNY")).liquidity, 100);
}
