//! Cross-border corridors (issue 8, docs/CROSS_BORDER.md) on real networks: real gRPC
//! with mTLS between real nodes, each with its durable store. A bank in Russia books
//! roubles, one in Iran rials and one in China yuan; the hub converts under the rate
//! agreements its operator sets, gives firm quotes, settles returns and relays recalls.
//! Every converted figure is checked in minor units against the test's own integer
//! arithmetic, never against the code under test.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::bic;
use common::net::{CN, IR, RU, RawSession, converted_transfer, expect_ack, expect_nak, signer};
use corridor::hub::{HubConfig, SettlementModel};
use corridor::ledger::Floor;
use corridor::model::{Amount, Body, Conversion, Currency, Message, Rate, Uetr};
use corridor::net;
use corridor::net::tracker_client;
use corridor::pb;
use corridor::pb::bank_service_client::BankServiceClient;
use corridor::pb::hub_service_client::HubServiceClient;
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use corridor::tls::{self, Role};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Every participant's prefunded liquidity at the hub, in its own currency.
const LIQUIDITY: &str = "1000000000.00";
const LIQUIDITY_MINOR: i64 = 100_000_000_000;
/// Each bank's customer C001 opens with this in the bank's currency; C002 opens empty.
const OPENING: &str = "100000.00";
const OPENING_MINOR: i64 = 10_000_000;
/// The RUB/IRR agreement of these tests: 512.25 less 25 basis points is 510.969375.
const RUB_IRR_RATE: &str = "512.25";
const RUB_IRR_MANTISSA: (i64, u32) = (51_225, 2);
const RUB_IRR_SPREAD: u32 = 25;
const RUB_IRR_APPLIED: &str = "510.969375";
/// Bounds every wait at 30 s; each step takes milliseconds.
const POLLS_MAX: usize = 1_200;
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// How long the live reconciliation waits for payments in transit.
const RECONCILE_WAIT: Duration = Duration::from_secs(20);

fn currency_of(bank: &str) -> &'static str {
    match bank {
        RU => "RUB",
        IR => "IRR",
        CN => "CNY",
        other => panic!("{other} is not a bank of these tests"),
    }
}

fn money(minor_units: i64, currency: &str) -> pb::Money {
    pb::Money { minor_units, currency: currency.into() }
}

fn unix_ms() -> i64 {
    corridor::clock::unix_ms_now()
}

/// `minor` units converted at `mantissa / 10^scale` less `spread_bps`, by the test's own
/// integer arithmetic: to the nearest minor unit, ties up (every amount is positive, so
/// that is away from zero). Every currency here has two decimals: no exponent shift.
fn converted(minor: i64, (mantissa, scale): (i64, u32), spread_bps: i64) -> i64 {
    let numerator = i128::from(minor) * i128::from(mantissa) * i128::from(10_000 - spread_bps);
    let denominator = 10i128.pow(scale) * 10_000;
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    i64::try_from(if 2 * remainder >= denominator { quotient + 1 } else { quotient }).unwrap()
}

/// Whether the conversion had to round (so that undoing it by converting back would not
/// give the instructed amount for free).
fn inexact(minor: i64, (mantissa, scale): (i64, u32), spread_bps: i64) -> bool {
    let numerator = i128::from(minor) * i128::from(mantissa) * i128::from(10_000 - spread_bps);
    numerator % (10i128.pow(scale) * 10_000) != 0
}

// ---------------------------------------------------------------------------------------
// The network and what the tests read of it

/// A network of RU (roubles), IR (rials) and CN (yuan), each funded at the hub in its own
/// currency, with bank nodes for `nodes`, each with C001 (funded) and C002 (empty) in its
/// currency. A participant without a node is left for a test to speak for by hand.
async fn corridor_network(dir: &Path, nodes: &[&str], config: HubConfig) -> LocalNetwork {
    let pki = tls::init(dir, &[bic(RU), bic(IR), bic(CN)]).unwrap();
    let mut network = LocalNetwork::start_hub(pki, config).await.unwrap();
    let mut admin = network.admin().await.unwrap();
    for bank in [RU, IR, CN] {
        let request = pb::FundRequest {
            participant_bic: bank.into(),
            currency: currency_of(bank).into(),
            amount: LIQUIDITY.into(),
        };
        admin.fund(request).await.unwrap();
    }
    for node in nodes {
        let index = network.start_bank(bic(node)).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", currency_of(node), "Payer", OPENING).await.unwrap();
        bank.open_account("C002", currency_of(node), "Beneficiary", "").await.unwrap();
    }
    network
}

fn agreement(pair: &str, rate: &str, spread_bps: u32) -> pb::RateAgreement {
    pb::RateAgreement { currency_pair: pair.into(), rate: rate.into(), spread_bps, ..Default::default() }
}

async fn set_agreement(
    network: &LocalNetwork,
    agreement: pb::RateAgreement,
) -> Result<pb::RateAgreement, Status> {
    let request = pb::SetAgreementRequest { agreement: Some(agreement) };
    let answer = network.admin().await.unwrap().set_agreement(request).await?;
    Ok(answer.into_inner().agreement.unwrap())
}

async fn agreements(network: &LocalNetwork) -> Vec<pb::RateAgreement> {
    let request = pb::ListAgreementsRequest {};
    network.admin().await.unwrap().list_agreements(request).await.unwrap().into_inner().agreements
}

async fn operator(network: &LocalNetwork, bank: &str) -> BankServiceClient<Channel> {
    network.operator(network.index_of(bic(bank))).await.unwrap()
}

fn order(
    to: &str,
    amount: &str,
    currency: &str,
    settlement_currency: &str,
    quote_id: &str,
) -> pb::SubmitPaymentRequest {
    pb::SubmitPaymentRequest {
        debtor_account: "C001".into(),
        creditor_agent_bic: to.into(),
        creditor_account: "C002".into(),
        creditor_name: "Beneficiary".into(),
        amount: amount.into(),
        currency: currency.into(),
        remittance_information: "cross-border test".into(),
        end_to_end_id: String::new(),
        settlement_currency: settlement_currency.into(),
        quote_id: quote_id.into(),
    }
}

/// Submits a payment through `from`'s operator API.
async fn submit(
    network: &LocalNetwork,
    from: &str,
    order: pb::SubmitPaymentRequest,
) -> Result<pb::Payment, Status> {
    let answer = operator(network, from).await.submit_payment(order).await?;
    Ok(answer.into_inner().payment.unwrap())
}

/// Waits (bounded) until `bank`'s operator API shows payment `uetr` as `done` says.
async fn wait_payment(
    network: &LocalNetwork,
    bank: &str,
    uetr: &str,
    what: &str,
    done: impl Fn(&pb::Payment) -> bool,
) -> pb::Payment {
    let mut client = operator(network, bank).await;
    let mut last = None;
    for _ in 0..POLLS_MAX {
        if let Ok(answer) = client.get_payment(pb::GetPaymentRequest { uetr: uetr.into() }).await {
            let payment = answer.into_inner().payment.unwrap();
            if done(&payment) {
                return payment;
            }
            last = Some(payment);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("payment {uetr} at {bank}: still not {what}: {last:?}");
}

async fn final_at(network: &LocalNetwork, bank: &str, uetr: &str) -> pb::Payment {
    wait_payment(network, bank, uetr, "final", |p| p.r#final).await
}

fn status_of(payment: &pb::Payment) -> pb::PaymentStatus {
    pb::PaymentStatus::try_from(payment.status).unwrap()
}

/// Submits a payment and waits until it is final at its sender, settled.
async fn pay_settled(network: &LocalNetwork, from: &str, order: pb::SubmitPaymentRequest) -> pb::Payment {
    let submitted = submit(network, from, order).await.unwrap();
    let payment = final_at(network, from, &submitted.uetr).await;
    assert_eq!(status_of(&payment), pb::PaymentStatus::Acsc, "{payment:?}");
    payment
}

/// A bank's accounts by id, balance in minor units, through its operator API; its ledger
/// balances.
async fn accounts(network: &LocalNetwork, bank: &str) -> BTreeMap<String, i64> {
    let answer = operator(network, bank).await.list_accounts(pb::ListAccountsRequest {}).await.unwrap();
    let answer = answer.into_inner();
    assert!(answer.ledger_balanced, "{bank}'s ledger balances");
    answer.accounts.into_iter().map(|a| (a.id, a.balance.unwrap().minor_units)).collect()
}

async fn balance(network: &LocalNetwork, bank: &str, account: &str) -> i64 {
    accounts(network, bank).await[account]
}

/// No account of any running bank is below its floor (customers and in-flight: zero).
fn floors_hold(network: &LocalNetwork) {
    for node in &network.banks {
        let (accounts, balanced) = node.bank.accounts();
        assert!(balanced, "{}'s ledger balances", node.bic);
        for account in accounts {
            if let Floor::Minimum(floor) = account.floor {
                assert!(
                    account.balance >= floor,
                    "{}: {} below its floor: {account:?}",
                    node.bic,
                    account.id
                );
            }
        }
    }
}

async fn positions(network: &LocalNetwork) -> pb::ListPositionsResponse {
    network.admin().await.unwrap().list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner()
}

fn position<'a>(positions: &'a pb::ListPositionsResponse, bank: &str, currency: &str) -> &'a pb::Position {
    positions
        .positions
        .iter()
        .find(|p| p.participant_bic == bank && p.currency == currency)
        .unwrap_or_else(|| panic!("no {currency} position of {bank}: {positions:?}"))
}

/// The FX account of `pair` in `currency` (zero when it never moved).
fn fx(positions: &pb::ListPositionsResponse, pair: &str, currency: &str) -> i64 {
    let line = positions.fx_positions.iter().find(|f| f.currency_pair == pair && f.currency == currency);
    line.map_or(0, |f| f.settled_net)
}

/// In every currency, the participants' settled positions and the FX accounts add up to
/// zero, and the participants' liquidity and the FX accounts add up to what was funded.
fn assert_conserved(positions: &pb::ListPositionsResponse, funded: &BTreeMap<&str, i64>) {
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    let mut liquidity: BTreeMap<String, i64> = BTreeMap::new();
    for p in &positions.positions {
        *net.entry(p.currency.clone()).or_default() += p.settled_net;
        *liquidity.entry(p.currency.clone()).or_default() += p.liquidity;
        assert_eq!(p.reserved, 0, "nothing is left reserved: {p:?}");
    }
    for f in &positions.fx_positions {
        *net.entry(f.currency.clone()).or_default() += f.settled_net;
        *liquidity.entry(f.currency.clone()).or_default() += f.settled_net;
    }
    for (currency, total) in &net {
        assert_eq!(*total, 0, "value in {currency} is conserved: {positions:?}");
    }
    for (currency, total) in &liquidity {
        let funded = funded.get(currency.as_str()).copied().unwrap_or(0);
        assert_eq!(*total, funded, "the liquidity in {currency} is what was funded: {positions:?}");
    }
}

/// Each participant funded in its own currency.
fn funded() -> BTreeMap<&'static str, i64> {
    [RU, IR, CN].into_iter().map(|b| (currency_of(b), LIQUIDITY_MINOR)).collect()
}

async fn hub_payments(network: &LocalNetwork) -> Vec<pb::HubPayment> {
    let request = pb::ExportPaymentsRequest {};
    let mut stream = network.admin().await.unwrap().export_payments(request).await.unwrap().into_inner();
    let mut payments = Vec::new();
    while let Some(payment) = stream.message().await.unwrap() {
        payments.push(payment);
    }
    payments
}

async fn track(network: &LocalNetwork, uetr: &str) -> pb::TrackResponse {
    let mut tracker = tracker_client(&network.network, &network.hub_url).await.unwrap();
    tracker.track(pb::TrackRequest { uetr: uetr.into(), this_hub_only: false }).await.unwrap().into_inner()
}

/// Waits (bounded) until the tracker shows every one of `steps` for `uetr`.
async fn wait_for_steps(network: &LocalNetwork, uetr: &str, steps: &[&str]) -> pb::TrackResponse {
    let mut tracked = pb::TrackResponse::default();
    for _ in 0..POLLS_MAX {
        tracked = track(network, uetr).await;
        if steps.iter().all(|step| tracked.steps.iter().any(|s| s.step == *step)) {
            return tracked;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let shown: Vec<&str> = tracked.steps.iter().map(|s| s.step.as_str()).collect();
    panic!("payment {uetr}: the tracker shows {shown:?}, not all of {steps:?}");
}

fn step<'a>(tracked: &'a pb::TrackResponse, name: &str) -> &'a pb::TrackStep {
    tracked.steps.iter().find(|s| s.step == name).unwrap_or_else(|| panic!("no step {name}: {tracked:?}"))
}

/// Waits (bounded) until nothing moves: every bank's messages are ACKed, every delivery
/// confirmed, every payment answered and its answer (and return) delivered.
async fn settle_down(network: &LocalNetwork) {
    for _ in 0..POLLS_MAX {
        let hub = network.hub();
        let quiet_nodes =
            network.banks.iter().all(|b| b.bank.outbox_len() == 0 && hub.queued_for(b.bic) == 0);
        let quiet_payments = hub_payments(network).await.iter().all(|p| {
            p.delivered_to_receiver
                && p.status != pb::PaymentStatus::Unspecified as i32
                && p.status_delivered_to_sender
                && (!p.returned || p.return_delivered_to_sender)
        });
        if quiet_nodes && quiet_payments {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("the network did not settle down");
}

async fn assert_reconciles_clean(network: &LocalNetwork) {
    let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let report =
        sources::reconcile_live(&network.network, &network.hub_url, &banks, RECONCILE_WAIT).await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.payments_in_transit, 0, "{}", report.render());
    assert_eq!(report.participants_checked, network.banks.len());
}

/// Everything a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    positions: pb::ListPositionsResponse,
    agreements: Vec<pb::RateAgreement>,
    hub_payments: Vec<pb::HubPayment>,
    /// Per running bank: its accounts and its payments.
    banks: Vec<(String, Vec<pb::Account>, Vec<pb::Payment>)>,
}

async fn snapshot(network: &LocalNetwork) -> Snapshot {
    let mut banks = Vec::new();
    for node in &network.banks {
        let mut client = network.operator(network.index_of(node.bic)).await.unwrap();
        let accounts = client.list_accounts(pb::ListAccountsRequest {}).await.unwrap().into_inner();
        assert!(accounts.ledger_balanced);
        let payments = client.list_payments(pb::ListPaymentsRequest {}).await.unwrap().into_inner().payments;
        banks.push((node.bic.to_string(), accounts.accounts, payments));
    }
    Snapshot {
        positions: positions(network).await,
        agreements: agreements(network).await,
        hub_payments: hub_payments(network).await,
        banks,
    }
}

/// A refusal with `code` whose message names what is wrong (`hint`).
fn assert_refused<T: std::fmt::Debug>(what: &str, answer: Result<T, Status>, code: Code, hint: &str) {
    match answer {
        Ok(value) => panic!("{what}: accepted ({value:?}), should be refused with {code:?}"),
        Err(status) => {
            assert_eq!(status.code(), code, "{what}: {status:?}");
            assert!(
                status.message().contains(hint),
                "{what}: the message {:?} should say {hint:?}",
                status.message()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Messages spoken by hand

/// A quote from the hub's own service, asked with `bank`'s certificate.
async fn hub_quote(
    network: &LocalNetwork,
    bank: &str,
    instructed: (i64, &str),
    to: &str,
) -> Result<pb::Quote, Status> {
    let channel = net::connect(&network.network, Role::Bank(bic(bank)), &network.hub_url).await.unwrap();
    let request = pb::QuoteRequest {
        instructed_amount: Some(money(instructed.0, instructed.1)),
        settlement_currency: to.into(),
    };
    Ok(HubServiceClient::new(channel).get_quote(request).await?.into_inner())
}

/// Waits (bounded) until the hub has settled payment `uetr`.
async fn wait_settled_at_hub(network: &LocalNetwork, uetr: &Uetr) {
    for _ in 0..POLLS_MAX {
        if network.hub().payment(uetr).is_some_and(|p| p.settled()) {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("payment {uetr} did not settle at the hub");
}

// ---------------------------------------------------------------------------------------
// Rates and agreements

/// RUB -> IRR at the agreed rate less the spread: the sender's customer pays exactly the
/// instructed roubles, the receiver's customer gets exactly the converted rials (by the
/// test's own arithmetic), the hub's positions move in each currency with the agreement's
/// FX accounts on the other side, the tracker shows the conversion, each bank books only
/// its own currency, and the reconciler finds nothing wrong.
#[tokio::test]
async fn a_rub_to_irr_payment_settles_at_the_agreed_rate_exact_to_the_minor_unit() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR], HubConfig::default()).await;
    for code in ["RUB", "IRR"] {
        assert_eq!(Currency::parse(code).unwrap().exponent(), 2, "the arithmetic below assumes it");
    }
    let set = set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    assert_eq!(
        (set.rate.as_str(), set.spread_bps, set.applied_rate.as_str()),
        (RUB_IRR_RATE, 25, RUB_IRR_APPLIED)
    );
    assert!(set.valid_from_unix_ms > 0, "0 means now");
    assert_eq!(set.valid_until_unix_ms, 0, "without end");
    assert_eq!(agreements(&network).await, vec![set.clone()]);
    // Participants read the same agreements from the hub's own service.
    let channel = net::connect(&network.network, Role::Bank(bic(RU)), &network.hub_url).await.unwrap();
    let listed = HubServiceClient::new(channel).list_agreements(pb::ListAgreementsRequest {}).await.unwrap();
    assert_eq!(listed.into_inner().agreements, vec![set]);

    // 100.03 RUB = 10,003 kopecks; x 510.969375 = 5,111,226.658125 minor units of rial.
    let instructed = 10_003;
    let expected = converted(instructed, RUB_IRR_MANTISSA, 25);
    assert_eq!(expected, 5_111_227);
    assert!(inexact(instructed, RUB_IRR_MANTISSA, 25));

    let payment = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    assert_eq!(
        payment.amount,
        Some(money(instructed, "RUB")),
        "the sender books what its customer instructed"
    );
    assert_eq!(payment.counter_amount, Some(money(expected, "IRR")));
    assert_eq!(payment.exchange_rate, RUB_IRR_APPLIED);
    let incoming = final_at(&network, IR, &payment.uetr).await;
    assert_eq!(status_of(&incoming), pb::PaymentStatus::Acsc);
    assert_eq!(incoming.amount, Some(money(expected, "IRR")), "the receiver books rials");
    assert_eq!(incoming.counter_amount, Some(money(instructed, "RUB")));
    assert_eq!(incoming.exchange_rate, RUB_IRR_APPLIED);

    // The customers, to the minor unit; each bank books its own currency only.
    let ru = accounts(&network, RU).await;
    assert_eq!(ru["C001"], OPENING_MINOR - instructed);
    assert_eq!((ru["SYS-SETTLEMENT-RUB"], ru["SYS-INFLIGHT-RUB"]), (-instructed, 0));
    assert!(ru.keys().all(|id| !id.contains("IRR")), "RU holds no rials: {ru:?}");
    let ir = accounts(&network, IR).await;
    assert_eq!((ir["C001"], ir["C002"]), (OPENING_MINOR, expected));
    assert_eq!((ir["SYS-SETTLEMENT-IRR"], ir["SYS-INFLIGHT-IRR"]), (expected, 0));
    assert!(ir.keys().all(|id| !id.contains("RUB")), "IR holds no roubles: {ir:?}");
    floors_hold(&network);

    // The hub: each participant moved in its currency, the agreement's FX accounts
    // took the roubles and paid out the rials.
    settle_down(&network).await;
    let after = positions(&network).await;
    let ru_position = position(&after, RU, "RUB");
    assert_eq!(
        (ru_position.settled_net, ru_position.liquidity, ru_position.reserved),
        (-instructed, LIQUIDITY_MINOR - instructed, 0)
    );
    let ir_position = position(&after, IR, "IRR");
    assert_eq!((ir_position.settled_net, ir_position.liquidity), (expected, LIQUIDITY_MINOR + expected));
    assert_eq!((fx(&after, "RUB/IRR", "RUB"), fx(&after, "RUB/IRR", "IRR")), (instructed, -expected));
    assert!(after.positions.iter().all(|p| (p.participant_bic.as_str(), p.currency.as_str()) != (RU, "IRR")));
    assert_conserved(&after, &funded());

    // The tracker.
    let steps = ["submitted", "acknowledged", "delivered", "status_reported", "settled", "status_delivered"];
    let tracked = wait_for_steps(&network, &payment.uetr, &steps).await;
    let hub = tracked.payment.clone().unwrap();
    assert_eq!(hub.instructed_amount, Some(money(instructed, "RUB")));
    assert_eq!(hub.amount, Some(money(expected, "IRR")));
    assert_eq!((hub.exchange_rate.as_str(), hub.settled), (RUB_IRR_APPLIED, true));
    let submitted = &step(&tracked, "submitted").detail;
    assert!(
        submitted.contains("100.03 RUB converted at 510.969375 (RUB/IRR) into 51112.27 IRR"),
        "{submitted}"
    );

    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// The hub checks a pacs.008's conversion against the agreement in force (or the quote it
/// cites) and refuses a mismatch with the reason and the expected figure: a rate without
/// the spread, a settlement amount off by one minor unit either way, a pair without an
/// agreement, one not yet or no longer in force, an unknown, foreign, mismatched or used
/// quote. Each is signed correctly and sent on the bank's own session; each moves
/// nothing. The same message with the right figures is accepted and settles.
#[tokio::test]
async fn a_conversion_that_does_not_match_the_agreement_is_refused_at_the_hub_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // RU is spoken for by hand; IR runs a node.
    let network = corridor_network(dir.path(), &[IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let hour = 3_600_000;
    let future =
        pb::RateAgreement { valid_from_unix_ms: unix_ms() + hour, ..agreement("RUB/CNY", "0.0812", 0) };
    set_agreement(&network, future).await.unwrap();
    let past = pb::RateAgreement {
        valid_from_unix_ms: unix_ms() - 2 * hour,
        valid_until_unix_ms: unix_ms() - hour,
        ..agreement("RUB/INR", "1.05", 0)
    };
    set_agreement(&network, past).await.unwrap();
    let foreign = hub_quote(&network, IR, (10_003, "RUB"), "IRR").await.unwrap();
    let own = hub_quote(&network, RU, (10_003, "RUB"), "IRR").await.unwrap();
    let expected = converted(10_003, RUB_IRR_MANTISSA, 25);
    assert_eq!(own.settlement_amount, Some(money(expected, "IRR")));
    let before = snapshot(&network).await;

    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);
    let without_spread = converted(10_003, RUB_IRR_MANTISSA, 0);
    let refusals: Vec<(&str, Message, &str, &str)> = vec![
        (
            "the agreed rate without the spread",
            converted_transfer(RU, IR, (10_003, "RUB"), (without_spread, "IRR"), RUB_IRR_RATE, None),
            "AM12",
            "510.969375",
        ),
        (
            "one rial too many",
            converted_transfer(RU, IR, (10_003, "RUB"), (expected + 1, "IRR"), RUB_IRR_APPLIED, None),
            "AM12",
            "51112.27 IRR",
        ),
        (
            "one rial too few",
            converted_transfer(RU, IR, (10_003, "RUB"), (expected - 1, "IRR"), RUB_IRR_APPLIED, None),
            "AM12",
            "51112.27 IRR",
        ),
        (
            "a pair without an agreement",
            converted_transfer(RU, CN, (10_003, "RUB"), (812, "USD"), "0.0812", None),
            "AM11",
            "RUB/USD",
        ),
        (
            "an agreement not yet in force",
            converted_transfer(RU, CN, (10_003, "RUB"), (812, "CNY"), "0.0812", None),
            "AM11",
            "not in force",
        ),
        (
            "an agreement no longer in force",
            converted_transfer(RU, CN, (10_000, "RUB"), (10_500, "INR"), "1.05", None),
            "AM11",
            "not in force",
        ),
        (
            "an unknown quote",
            converted_transfer(
                RU,
                IR,
                (10_003, "RUB"),
                (expected, "IRR"),
                RUB_IRR_APPLIED,
                Some("QNOSUCHQUOTE"),
            ),
            "AM12",
            "QNOSUCHQUOTE",
        ),
        (
            "another participant's quote",
            converted_transfer(
                RU,
                IR,
                (10_003, "RUB"),
                (expected, "IRR"),
                RUB_IRR_APPLIED,
                Some(&foreign.quote_id),
            ),
            "AM12",
            &foreign.quote_id,
        ),
        (
            "a quote for another amount",
            converted_transfer(
                RU,
                IR,
                (20_000, "RUB"),
                (converted(20_000, RUB_IRR_MANTISSA, 25), "IRR"),
                RUB_IRR_APPLIED,
                Some(&own.quote_id),
            ),
            "AM12",
            "100.03 RUB",
        ),
    ];
    for (what, message, reason, hint) in refusals {
        let nak = expect_nak(session.submit_signed(&ru, &message).await, Code::FailedPrecondition, reason);
        assert!(nak.detail.contains(hint), "{what}: the NAK {:?} should say {hint:?}", nak.detail);
    }
    // The hub answers in order, after each decision: nothing was stored, reserved,
    // converted or sent on.
    assert_eq!(snapshot(&network).await, before);
    assert_eq!(network.hub().queued_for(bic(IR)), 0);
    assert!(network.banks[0].bank.payments().unwrap().is_empty());

    // The same pacs.008 with the agreement's figures is accepted and settles.
    let good = converted_transfer(RU, IR, (10_003, "RUB"), (expected, "IRR"), RUB_IRR_APPLIED, None);
    expect_ack(session.submit_signed(&ru, &good).await);
    wait_settled_at_hub(&network, &good.header().uetr.unwrap()).await;
    assert_eq!(balance(&network, IR, "C002").await, expected);

    // A quote is honoured once: its first use settles, a second is refused.
    let quoted =
        converted_transfer(RU, IR, (10_003, "RUB"), (expected, "IRR"), RUB_IRR_APPLIED, Some(&own.quote_id));
    expect_ack(session.submit_signed(&ru, &quoted).await);
    wait_settled_at_hub(&network, &quoted.header().uetr.unwrap()).await;
    assert_eq!(balance(&network, IR, "C002").await, 2 * expected);
    let before_reuse = positions(&network).await;
    let again =
        converted_transfer(RU, IR, (10_003, "RUB"), (expected, "IRR"), RUB_IRR_APPLIED, Some(&own.quote_id));
    let nak = expect_nak(session.submit_signed(&ru, &again).await, Code::FailedPrecondition, "AM12");
    assert!(nak.detail.contains(&own.quote_id), "{nak:?}");
    assert_eq!(positions(&network).await, before_reuse);
    assert!(network.hub().payment(&again.header().uetr.unwrap()).is_none());
    let ru_rub = position(&before_reuse, RU, "RUB");
    assert_eq!((ru_rub.settled_net, ru_rub.reserved), (-2 * 10_003, 0));
    network.stop().await.unwrap();
}

/// Through the bank's operator API: a payment into another currency with no agreement for
/// the pair, or one not yet or no longer in force, is refused with AM11 and the pair, and
/// changes nothing anywhere.
#[tokio::test]
async fn a_pair_without_an_agreement_in_force_is_refused_by_the_bank_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR, CN], HubConfig::default()).await;
    let hour = 3_600_000;
    let future =
        pb::RateAgreement { valid_from_unix_ms: unix_ms() + hour, ..agreement("RUB/IRR", RUB_IRR_RATE, 25) };
    set_agreement(&network, future).await.unwrap();
    let past = pb::RateAgreement {
        valid_from_unix_ms: unix_ms() - 2 * hour,
        valid_until_unix_ms: unix_ms() - hour,
        ..agreement("RUB/CNY", "0.0812", 10)
    };
    set_agreement(&network, past).await.unwrap();
    let before = snapshot(&network).await;
    let cases = [
        ("no agreement at all", CN, order(RU, "10.00", "CNY", "RUB", ""), "CNY/RUB"),
        ("an agreement not yet in force", RU, order(IR, "10.00", "RUB", "IRR", ""), "RUB/IRR"),
        ("an agreement no longer in force", RU, order(CN, "10.00", "RUB", "CNY", ""), "RUB/CNY"),
    ];
    for (what, from, order, pair) in cases {
        let refusal = submit(&network, from, order).await.expect_err(what);
        assert_eq!(refusal.code(), Code::FailedPrecondition, "{what}: {refusal:?}");
        assert!(
            refusal.message().contains(pair) && refusal.message().contains("AM11"),
            "{what}: {refusal:?}"
        );
    }
    assert_eq!(snapshot(&network).await, before);
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Quotes

/// A quote asked through the bank's operator API is honoured at its rate even after the
/// operator changed the agreement; a payment without a quote then takes the new rate; a
/// quote cited twice, or for another amount, is refused and changes nothing.
#[tokio::test]
async fn a_quote_is_honoured_at_its_rate_after_the_agreement_changes_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let instructed = 10_003;
    let expected = converted(instructed, RUB_IRR_MANTISSA, 25);
    let request = pb::QuoteRequest {
        instructed_amount: Some(money(instructed, "RUB")),
        settlement_currency: "IRR".into(),
    };
    let quote = operator(&network, RU).await.get_quote(request).await.unwrap().into_inner();
    assert!(!quote.quote_id.is_empty());
    assert_eq!(quote.participant_bic, RU);
    assert_eq!(quote.instructed_amount, Some(money(instructed, "RUB")));
    assert_eq!(quote.settlement_amount, Some(money(expected, "IRR")));
    assert_eq!(quote.exchange_rate, RUB_IRR_APPLIED);
    assert!(quote.expires_unix_ms > 0);

    // The operator changes the agreement: 600 without spread.
    let changed = set_agreement(&network, agreement("RUB/IRR", "600", 0)).await.unwrap();
    assert_eq!(changed.applied_rate, "600");
    let quoted = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", &quote.quote_id)).await;
    assert_eq!(quoted.exchange_rate, RUB_IRR_APPLIED, "the quote's rate, not the agreement's");
    assert_eq!(quoted.counter_amount, Some(money(expected, "IRR")));
    assert_eq!(balance(&network, IR, "C002").await, expected);
    let tracked = track(&network, &quoted.uetr).await.payment.unwrap();
    assert_eq!(
        (tracked.exchange_rate.as_str(), tracked.amount),
        (RUB_IRR_APPLIED, Some(money(expected, "IRR")))
    );

    // Without a quote: the agreement now in force.
    let at_new_rate = converted(instructed, (600, 0), 0);
    assert_eq!(at_new_rate, 6_001_800);
    let unquoted = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    assert_eq!(
        (unquoted.exchange_rate.as_str(), unquoted.counter_amount),
        ("600", Some(money(at_new_rate, "IRR")))
    );
    assert_eq!(balance(&network, IR, "C002").await, expected + at_new_rate);
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR - 2 * instructed);

    // Used once; a second quote cited for another amount is refused too.
    settle_down(&network).await;
    let before = snapshot(&network).await;
    let reused = submit(&network, RU, order(IR, "100.03", "RUB", "IRR", &quote.quote_id)).await;
    assert_refused("a quote used twice", reused, Code::NotFound, &quote.quote_id);
    let request =
        pb::QuoteRequest { instructed_amount: Some(money(5_000, "RUB")), settlement_currency: "IRR".into() };
    let other = operator(&network, RU).await.get_quote(request).await.unwrap().into_inner();
    let mismatched = submit(&network, RU, order(IR, "50.01", "RUB", "IRR", &other.quote_id)).await;
    assert_refused("a quote for another amount", mismatched, Code::FailedPrecondition, "50.00 RUB");
    assert_eq!(snapshot(&network).await, before);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// A payment citing an expired quote is refused by the hub with TM01 (also once the hub
/// has given other quotes since) and moves nothing: the sender reverses its booking, the
/// positions, the FX accounts and the receiver are as they were.
#[tokio::test]
async fn a_payment_citing_an_expired_quote_is_refused_tm01_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Quotes live two seconds; the hub remembers an expired one for as long again.
    let config = HubConfig { quote_ttl: Duration::from_secs(2), ..HubConfig::default() };
    let network = corridor_network(dir.path(), &[RU, IR], config).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let mut quotes = Vec::new();
    for minor in [10_003, 20_000] {
        let request = pb::QuoteRequest {
            instructed_amount: Some(money(minor, "RUB")),
            settlement_currency: "IRR".into(),
        };
        quotes.push(operator(&network, RU).await.get_quote(request).await.unwrap().into_inner());
    }
    let before = snapshot(&network).await;
    // Bounded: the quotes live two seconds.
    let expiry = quotes.iter().map(|q| q.expires_unix_ms).max().unwrap();
    for _ in 0..POLLS_MAX {
        if unix_ms() > expiry {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    assert!(unix_ms() > expiry, "the quotes expired");

    let first = submit(&network, RU, order(IR, "100.03", "RUB", "IRR", &quotes[0].quote_id)).await.unwrap();
    let refused = final_at(&network, RU, &first.uetr).await;
    assert_eq!(
        (status_of(&refused), refused.reason_code.as_str()),
        (pb::PaymentStatus::Rjct, "TM01"),
        "{refused:?}"
    );
    assert!(refused.detail.contains("expired"), "{refused:?}");

    // The hub gives another quote (and forgets the quotes that expired by then); the
    // second expired quote is still refused as expired.
    let request =
        pb::QuoteRequest { instructed_amount: Some(money(30_000, "RUB")), settlement_currency: "IRR".into() };
    operator(&network, RU).await.get_quote(request).await.unwrap();
    let second = submit(&network, RU, order(IR, "200.00", "RUB", "IRR", &quotes[1].quote_id)).await.unwrap();
    let refused = final_at(&network, RU, &second.uetr).await;
    assert_eq!(
        (status_of(&refused), refused.reason_code.as_str()),
        (pb::PaymentStatus::Rjct, "TM01"),
        "{refused:?}"
    );

    // Nothing moved: the sender's customer has all of its money, the rest is as before.
    settle_down(&network).await;
    let after = snapshot(&network).await;
    assert_eq!(after.positions, before.positions);
    assert!(after.positions.fx_positions.iter().all(|f| f.settled_net == 0));
    assert_eq!(after.hub_payments, before.hub_payments);
    assert!(after.hub_payments.is_empty());
    assert_eq!(after.banks[1], before.banks[1], "the receiver saw nothing");
    assert_eq!(after.banks[0].1, before.banks[0].1, "the sender's ledger is as it was");
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR);
    let rejected: Vec<_> = after.banks[0].2.iter().map(|p| (p.uetr.clone(), status_of(p))).collect();
    let expected_rejected =
        vec![(first.uetr.clone(), pb::PaymentStatus::Rjct), (second.uetr.clone(), pb::PaymentStatus::Rjct)];
    assert_eq!(rejected, expected_rejected);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Returns and recalls

/// The beneficiary's bank returns a settled converted payment (pacs.004, AC04): its
/// customer is debited the settlement amount, the sender's customer gets back exactly
/// what it paid (whatever the rounding of the conversion), both ledgers and the hub's
/// positions are back where they were, the FX accounts are back to zero, the tracker shows
/// the return, and the reconciler finds nothing wrong.
#[tokio::test]
async fn a_return_restores_the_senders_customer_exactly_and_reconciles_clean() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR, CN], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    // RUB/CNY: 0.0815 less 37 bp = 0.08119845. 12.34 RUB = 1,234 kopecks -> 100.1988873
    // fen -> 1.00 CNY; converting 1.00 CNY back at the rate would give 12.32 RUB, not 12.34.
    let set = set_agreement(&network, agreement("RUB/CNY", "0.0815", 37)).await.unwrap();
    assert_eq!(set.applied_rate, "0.08119845");
    let before = positions(&network).await;

    let to_ir = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    let to_cn = pay_settled(&network, RU, order(CN, "12.34", "RUB", "CNY", "")).await;
    let irr = converted(10_003, RUB_IRR_MANTISSA, 25);
    let cny = converted(1_234, (815, 4), 37);
    assert_eq!(cny, 100);
    // 1.00 CNY converted back at the rate: 10,000,000,000 / 8,119,845 = 1,231.55 kopecks.
    let converted_back = (i128::from(cny) * 100_000_000 * 2 + 8_119_845) / (2 * 8_119_845);
    assert_eq!(converted_back, 1_232, "converting back would not restore the 1,234 kopecks");
    assert_eq!(to_cn.counter_amount, Some(money(cny, "CNY")));
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR - 10_003 - 1_234);

    for (bank, payment, amount) in [(IR, &to_ir, irr), (CN, &to_cn, cny)] {
        let mut client = operator(&network, bank).await;
        let request = pb::ReturnPaymentRequest {
            uetr: payment.uetr.clone(),
            reason_code: "AC04".into(),
            additional_information: "account closed".into(),
        };
        let returning = client.return_payment(request).await.unwrap().into_inner().payment.unwrap();
        assert_ne!(returning.return_state, pb::ReturnState::None as i32);
        assert_eq!(returning.return_reason_code, "AC04");
        assert_eq!(balance(&network, bank, "C002").await, 0, "the beneficiary is debited at once: {amount}");
        let returned = pb::ReturnState::Returned as i32;
        wait_payment(&network, bank, &payment.uetr, "returned", |p| p.return_state == returned).await;
        let back =
            wait_payment(&network, RU, &payment.uetr, "returned", |p| p.return_state == returned).await;
        assert_eq!(back.return_reason_code, "AC04");
    }

    // Exactly what the customer paid, both times.
    let ru = accounts(&network, RU).await;
    assert_eq!(ru["C001"], OPENING_MINOR);
    assert_eq!((ru["SYS-SETTLEMENT-RUB"], ru["SYS-INFLIGHT-RUB"]), (0, 0));
    let ir = accounts(&network, IR).await;
    assert_eq!((ir["C002"], ir["SYS-SETTLEMENT-IRR"], ir["SYS-INFLIGHT-IRR"]), (0, 0, 0));
    let cn = accounts(&network, CN).await;
    assert_eq!((cn["C002"], cn["SYS-SETTLEMENT-CNY"], cn["SYS-INFLIGHT-CNY"]), (0, 0, 0));
    floors_hold(&network);

    settle_down(&network).await;
    let after = positions(&network).await;
    for (bank, currency) in [(RU, "RUB"), (IR, "IRR"), (CN, "CNY")] {
        let (now, then) = (position(&after, bank, currency), position(&before, bank, currency));
        assert_eq!(now.liquidity, then.liquidity, "{bank} {currency}");
        assert_eq!((now.settled_net, now.reserved), (0, 0), "{bank} {currency}");
    }
    for (pair, currency) in [("RUB/IRR", "RUB"), ("RUB/IRR", "IRR"), ("RUB/CNY", "RUB"), ("RUB/CNY", "CNY")] {
        assert_eq!(fx(&after, pair, currency), 0, "{pair} {currency}");
    }
    assert!(
        after.fx_positions.iter().any(|f| f.currency_pair == "RUB/CNY"),
        "the FX account moved and came back"
    );
    assert_conserved(&after, &funded());

    let tracked = wait_for_steps(&network, &to_ir.uetr, &["settled", "returned", "return_delivered"]).await;
    let hub = tracked.payment.clone().unwrap();
    assert_eq!(
        (hub.returned, hub.return_reason_code.as_str(), hub.return_delivered_to_sender),
        (true, "AC04", true)
    );
    let returned = &step(&tracked, "returned").detail;
    assert!(returned.contains("51112.27 IRR back as 100.03 RUB (at the original 510.969375)"), "{returned}");
    let tracked = wait_for_steps(&network, &to_cn.uetr, &["returned", "return_delivered"]).await;
    assert!(step(&tracked, "returned").detail.contains("1.00 CNY back as 12.34 RUB"), "{tracked:?}");

    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// Recalls (camt.056 -> camt.029). Accepted: the funds come back exactly (a pacs.004
/// FOCR), the case is CNCL at both banks and the tracker shows the whole case. Refused
/// with a reason: RJCR with that reason at the sender, and nothing moved.
#[tokio::test]
async fn a_recall_accepted_restores_the_sender_exactly_and_one_refused_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let first = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    let second = pay_settled(&network, RU, order(IR, "250.00", "RUB", "IRR", "")).await;
    let (irr_first, irr_second) =
        (converted(10_003, RUB_IRR_MANTISSA, 25), converted(25_000, RUB_IRR_MANTISSA, 25));
    assert_eq!(balance(&network, IR, "C002").await, irr_first + irr_second);
    let pdcr = pb::InvestigationStatus::Pdcr as i32;

    // Accepted.
    let request = pb::RecallPaymentRequest {
        uetr: first.uetr.clone(),
        reason_code: "DUPL".into(),
        additional_information: "sent twice".into(),
    };
    let asked =
        operator(&network, RU).await.recall_payment(request).await.unwrap().into_inner().payment.unwrap();
    assert_eq!((asked.recall_status, asked.recall_reason_code.as_str()), (pdcr, "DUPL"));
    assert!(!asked.recall_case_id.is_empty());
    let open = wait_payment(&network, IR, &first.uetr, "recalled", |p| p.recall_status == pdcr).await;
    assert_eq!(open.recall_case_id, asked.recall_case_id);
    let accept = pb::AnswerRecallRequest { uetr: first.uetr.clone(), accept: true, ..Default::default() };
    operator(&network, IR).await.answer_recall(accept).await.unwrap();
    let (cncl, returned) = (pb::InvestigationStatus::Cncl as i32, pb::ReturnState::Returned as i32);
    let done = |p: &pb::Payment| p.recall_status == cncl && p.return_state == returned;
    let at_ru = wait_payment(&network, RU, &first.uetr, "cancelled and returned", done).await;
    let at_ir = wait_payment(&network, IR, &first.uetr, "cancelled and returned", done).await;
    assert_eq!((at_ru.return_reason_code.as_str(), at_ir.return_reason_code.as_str()), ("FOCR", "FOCR"));
    assert_eq!(at_ru.recall_case_id, asked.recall_case_id);
    assert_eq!(
        balance(&network, RU, "C001").await,
        OPENING_MINOR - 25_000,
        "the first payment came back whole"
    );
    assert_eq!(balance(&network, IR, "C002").await, irr_second);
    let steps = [
        "recall_requested",
        "recall_delivered",
        "recall_answered",
        "recall_answer_delivered",
        "returned",
        "return_delivered",
    ];
    let tracked = wait_for_steps(&network, &first.uetr, &steps).await;
    let hub = tracked.payment.clone().unwrap();
    assert_eq!((hub.recall_status, hub.returned, hub.return_reason_code.as_str()), (cncl, true, "FOCR"));
    assert_eq!(hub.recall_case_id, asked.recall_case_id);
    assert!(step(&tracked, "recall_answered").detail.contains("CNCL"), "{tracked:?}");

    // Refused, with a reason.
    settle_down(&network).await;
    let before = snapshot(&network).await;
    let request = pb::RecallPaymentRequest {
        uetr: second.uetr.clone(),
        reason_code: "CUST".into(),
        additional_information: "the customer asks".into(),
    };
    operator(&network, RU).await.recall_payment(request).await.unwrap();
    wait_payment(&network, IR, &second.uetr, "recalled", |p| p.recall_status == pdcr).await;
    let refuse = pb::AnswerRecallRequest {
        uetr: second.uetr.clone(),
        accept: false,
        reason_code: "NOAS".into(),
        additional_information: "the beneficiary does not agree".into(),
    };
    operator(&network, IR).await.answer_recall(refuse).await.unwrap();
    let rjcr = pb::InvestigationStatus::Rjcr as i32;
    let refused = wait_payment(&network, RU, &second.uetr, "refused", |p| p.recall_status == rjcr).await;
    assert_eq!(
        (refused.recall_reason_code.as_str(), refused.return_state),
        ("NOAS", pb::ReturnState::None as i32)
    );
    let at_ir = wait_payment(&network, IR, &second.uetr, "refused", |p| p.recall_status == rjcr).await;
    assert_eq!(at_ir.recall_reason_code, "NOAS");
    let tracked = wait_for_steps(&network, &second.uetr, &["recall_requested", "recall_answered"]).await;
    let hub = tracked.payment.clone().unwrap();
    assert_eq!((hub.recall_status, hub.recall_reason_code.as_str(), hub.returned), (rjcr, "NOAS", false));
    assert!(step(&tracked, "recall_answered").detail.contains("NOAS"), "{tracked:?}");
    settle_down(&network).await;
    let after = snapshot(&network).await;
    assert_eq!(after.positions, before.positions, "a refused recall moves nothing");
    for ((bic, accounts_after, _), (_, accounts_before, _)) in after.banks.iter().zip(&before.banks) {
        assert_eq!(accounts_after, accounts_before, "{bic}: a refused recall moves nothing");
    }
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR - 25_000);
    assert_eq!(balance(&network, IR, "C002").await, irr_second);
    let now = &after.positions;
    assert_eq!(
        (position(now, RU, "RUB").settled_net, position(now, IR, "IRR").settled_net),
        (-25_000, irr_second)
    );
    assert_eq!((fx(now, "RUB/IRR", "RUB"), fx(now, "RUB/IRR", "IRR")), (25_000, -irr_second));
    assert_conserved(now, &funded());
    floors_hold(&network);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// A return the returner's position at the hub cannot cover is refused there (AM04): the
/// beneficiary's bank credits its customer back and nothing moved anywhere. A recall
/// accepted while that is so is left open (the pacs.004 and the CNCL are both refused),
/// and may then be refused with a reason. Once funded again, the return goes through and
/// restores the sender exactly.
#[tokio::test]
async fn a_return_the_hub_cannot_settle_is_reversed_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let first = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    let second = pay_settled(&network, RU, order(IR, "10.00", "RUB", "IRR", "")).await;
    let (irr_first, irr_second) =
        (converted(10_003, RUB_IRR_MANTISSA, 25), converted(1_000, RUB_IRR_MANTISSA, 25));
    // IR's rials at the hub, all of them, taken back by the operator.
    let all = LIQUIDITY_MINOR + irr_first + irr_second;
    let defund = pb::FundRequest {
        participant_bic: IR.into(),
        currency: "IRR".into(),
        amount: format!("{}.{:02}", all / 100, all % 100),
    };
    let drained = network.admin().await.unwrap().defund(defund).await.unwrap().into_inner().position.unwrap();
    assert_eq!(drained.available, 0);
    settle_down(&network).await;
    let before = snapshot(&network).await;

    let request = pb::ReturnPaymentRequest {
        uetr: first.uetr.clone(),
        reason_code: "AC04".into(),
        additional_information: "account closed".into(),
    };
    operator(&network, IR).await.return_payment(request).await.unwrap();
    let none = pb::ReturnState::None as i32;
    let reversed = wait_payment(&network, IR, &first.uetr, "reversed", |p| {
        p.return_state == none && p.detail.contains("refused by the hub")
    })
    .await;
    assert!(reversed.detail.contains("AM04"), "{reversed:?}");
    settle_down(&network).await;
    let after = snapshot(&network).await;
    assert_eq!(after.positions, before.positions);
    assert_eq!(after.hub_payments, before.hub_payments);
    assert_eq!(after.banks[0], before.banks[0], "the sender saw nothing");
    assert_eq!(after.banks[1].1, before.banks[1].1, "the beneficiary was credited back");
    assert_eq!(balance(&network, IR, "C002").await, irr_first + irr_second);

    // A recall accepted now: the return and the CNCL are refused, the case stays open.
    let request = pb::RecallPaymentRequest {
        uetr: second.uetr.clone(),
        reason_code: "FRAD".into(),
        ..Default::default()
    };
    let case =
        operator(&network, RU).await.recall_payment(request).await.unwrap().into_inner().payment.unwrap();
    let pdcr = pb::InvestigationStatus::Pdcr as i32;
    wait_payment(&network, IR, &second.uetr, "recalled", |p| p.recall_status == pdcr).await;
    let accept = pb::AnswerRecallRequest { uetr: second.uetr.clone(), accept: true, ..Default::default() };
    operator(&network, IR).await.answer_recall(accept).await.unwrap();
    settle_down(&network).await;
    let at_ir = wait_payment(&network, IR, &second.uetr, "open again", |p| {
        p.recall_status == pdcr && p.return_state == none
    })
    .await;
    assert_eq!(at_ir.recall_case_id, case.recall_case_id);
    assert_eq!(balance(&network, IR, "C002").await, irr_first + irr_second, "credited back");
    let at_ru = wait_payment(&network, RU, &second.uetr, "recalled", |p| p.recall_status == pdcr).await;
    assert_eq!((at_ru.recall_status, at_ru.return_state), (pdcr, none));
    let hub = track(&network, &second.uetr).await.payment.unwrap();
    assert_eq!((hub.recall_status, hub.returned), (pdcr, false));
    assert_eq!(positions(&network).await, before.positions, "nothing moved");
    // The case is then refused, with a reason.
    let refuse = pb::AnswerRecallRequest {
        uetr: second.uetr.clone(),
        accept: false,
        reason_code: "AM04".into(),
        additional_information: "cannot settle it back".into(),
    };
    operator(&network, IR).await.answer_recall(refuse).await.unwrap();
    let rjcr = pb::InvestigationStatus::Rjcr as i32;
    let refused = wait_payment(&network, RU, &second.uetr, "refused", |p| p.recall_status == rjcr).await;
    assert_eq!(refused.recall_reason_code, "AM04");

    // Funded again, the return goes through and restores the sender exactly.
    let fund =
        pb::FundRequest { participant_bic: IR.into(), currency: "IRR".into(), amount: LIQUIDITY.into() };
    network.admin().await.unwrap().fund(fund).await.unwrap();
    let request = pb::ReturnPaymentRequest {
        uetr: first.uetr.clone(),
        reason_code: "AC04".into(),
        ..Default::default()
    };
    operator(&network, IR).await.return_payment(request).await.unwrap();
    let returned = pb::ReturnState::Returned as i32;
    wait_payment(&network, RU, &first.uetr, "returned", |p| p.return_state == returned).await;
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR - 1_000);
    assert_eq!(balance(&network, IR, "C002").await, irr_second);
    settle_down(&network).await;
    let now = positions(&network).await;
    assert_eq!((fx(&now, "RUB/IRR", "RUB"), fx(&now, "RUB/IRR", "IRR")), (1_000, -irr_second));
    floors_hold(&network);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Garbage

/// Every new input path refuses garbage with a clear gRPC error and changes nothing:
/// agreements, quotes, returns, recalls and their answers, and payment orders into another
/// currency.
#[tokio::test]
async fn garbage_on_every_new_input_path_is_refused_clearly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = corridor_network(dir.path(), &[RU, IR, CN], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let settled = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    let to_return = pay_settled(&network, RU, order(IR, "20.00", "RUB", "IRR", "")).await;
    let request = pb::ReturnPaymentRequest {
        uetr: to_return.uetr.clone(),
        reason_code: "AC04".into(),
        additional_information: String::new(),
    };
    operator(&network, IR).await.return_payment(request).await.unwrap();
    let returned = pb::ReturnState::Returned as i32;
    wait_payment(&network, RU, &to_return.uetr, "returned", |p| p.return_state == returned).await;
    let unsettled = submit(
        &network,
        RU,
        pb::SubmitPaymentRequest { creditor_account: "C404".into(), ..order(IR, "5.00", "RUB", "IRR", "") },
    )
    .await
    .unwrap();
    let rejected = final_at(&network, RU, &unsettled.uetr).await;
    assert_eq!((status_of(&rejected), rejected.reason_code.as_str()), (pb::PaymentStatus::Rjct, "AC01"));
    let quote = {
        let request = pb::QuoteRequest {
            instructed_amount: Some(money(1_000, "RUB")),
            settlement_currency: "IRR".into(),
        };
        operator(&network, RU).await.get_quote(request).await.unwrap().into_inner()
    };
    settle_down(&network).await;
    let before = snapshot(&network).await;
    let (mut ru, mut ir) = (operator(&network, RU).await, operator(&network, IR).await);
    let mut admin = network.admin().await.unwrap();

    // SetAgreement.
    let now = unix_ms();
    let bad_agreements = [
        ("a pair of one currency", agreement("RUB", "512.25", 0), "currency_pair"),
        ("a pair of the same currency", agreement("RUB/RUB", "512.25", 0), "currency_pair"),
        ("an unknown currency", agreement("XYZ/IRR", "512.25", 0), "currency_pair"),
        ("a negative rate", agreement("RUB/IRR", "-1", 0), "rate"),
        ("a rate that is no number", agreement("RUB/IRR", "abc", 0), "rate"),
        ("a zero rate", agreement("RUB/IRR", "0", 0), "rate"),
        ("a spread of the whole rate", agreement("RUB/IRR", "512.25", 10_000), "spread"),
        (
            "a period that ends when it starts",
            pb::RateAgreement {
                valid_from_unix_ms: now + 1_000,
                valid_until_unix_ms: now + 1_000,
                ..agreement("RUB/IRR", "512.25", 0)
            },
            "agreement.valid_until",
        ),
        (
            "a period that ends before it starts",
            pb::RateAgreement {
                valid_from_unix_ms: now + 2_000,
                valid_until_unix_ms: now + 1_000,
                ..agreement("RUB/IRR", "512.25", 0)
            },
            "agreement.valid_until",
        ),
        (
            "a period that ended before now, its start left to now",
            pb::RateAgreement { valid_until_unix_ms: now - 1_000, ..agreement("RUB/IRR", "512.25", 0) },
            "valid_from",
        ),
    ];
    for (what, agreement, hint) in bad_agreements {
        let answer = admin.set_agreement(pb::SetAgreementRequest { agreement: Some(agreement) }).await;
        assert_refused(what, answer, Code::InvalidArgument, hint);
    }
    let answer = admin.set_agreement(pb::SetAgreementRequest { agreement: None }).await;
    assert_refused("no agreement", answer, Code::InvalidArgument, "agreement");
    let channel = net::connect(&network.network, Role::Bank(bic(RU)), &network.hub_url).await.unwrap();
    let mut as_bank = corridor::pb::hub_admin_service_client::HubAdminServiceClient::new(channel);
    let answer = as_bank
        .set_agreement(pb::SetAgreementRequest { agreement: Some(agreement("RUB/IRR", "9999", 0)) })
        .await;
    assert_refused("a bank's certificate", answer, Code::PermissionDenied, "operator");

    // GetQuote, through the bank's operator API.
    let quote_request = |amount: Option<pb::Money>, to: &str| pb::QuoteRequest {
        instructed_amount: amount,
        settlement_currency: to.into(),
    };
    let bad_quotes = [
        ("no amount", quote_request(None, "IRR"), Code::InvalidArgument, "instructed_amount"),
        ("a zero amount", quote_request(Some(money(0, "RUB")), "IRR"), Code::InvalidArgument, "positive"),
        (
            "a negative amount",
            quote_request(Some(money(-5, "RUB")), "IRR"),
            Code::InvalidArgument,
            "positive",
        ),
        (
            "an unknown currency",
            quote_request(Some(money(100, "XYZ")), "IRR"),
            Code::InvalidArgument,
            "currency",
        ),
        (
            "an unknown settlement currency",
            quote_request(Some(money(100, "RUB")), "XYZ"),
            Code::InvalidArgument,
            "settlement_currency",
        ),
        (
            "no settlement currency",
            quote_request(Some(money(100, "RUB")), ""),
            Code::InvalidArgument,
            "settlement_currency",
        ),
        (
            "the same currency",
            quote_request(Some(money(100, "RUB")), "RUB"),
            Code::FailedPrecondition,
            "RUB/RUB",
        ),
        (
            "a pair without agreement",
            quote_request(Some(money(100, "RUB")), "CNY"),
            Code::FailedPrecondition,
            "RUB/CNY",
        ),
    ];
    for (what, request, code, hint) in bad_quotes {
        assert_refused(what, ru.get_quote(request).await, code, hint);
    }

    // ReturnPayment, RecallPayment and AnswerRecall.
    let unknown = Uetr::generate().to_string();
    let back = |uetr: &str, reason: &str| pb::ReturnPaymentRequest {
        uetr: uetr.into(),
        reason_code: reason.into(),
        additional_information: String::new(),
    };
    let bad_returns = [
        ("a malformed UETR", IR, back("not-a-uetr", "AC04"), Code::InvalidArgument, "uetr"),
        ("an unknown UETR", IR, back(&unknown, "AC04"), Code::NotFound, &unknown),
        ("the sender's side", RU, back(&settled.uetr, "AC04"), Code::FailedPrecondition, "incoming"),
        (
            "a payment that did not settle",
            IR,
            back(&unsettled.uetr, "AC04"),
            Code::FailedPrecondition,
            "settled",
        ),
        ("an unknown reason code", IR, back(&settled.uetr, "ZZ99"), Code::InvalidArgument, "reason_code"),
        ("no reason code", IR, back(&settled.uetr, ""), Code::InvalidArgument, "reason_code"),
        ("returning twice", IR, back(&to_return.uetr, "AC04"), Code::FailedPrecondition, "returned"),
    ];
    for (what, bank, request, code, hint) in bad_returns {
        let client = if bank == RU { &mut ru } else { &mut ir };
        assert_refused(what, client.return_payment(request).await, code, hint);
    }
    let recall = |uetr: &str, reason: &str| pb::RecallPaymentRequest {
        uetr: uetr.into(),
        reason_code: reason.into(),
        additional_information: String::new(),
    };
    let bad_recalls = [
        ("a malformed UETR", RU, recall("12345", "DUPL"), Code::InvalidArgument, "uetr"),
        ("an unknown UETR", RU, recall(&unknown, "DUPL"), Code::NotFound, &unknown),
        ("the receiver's side", IR, recall(&settled.uetr, "DUPL"), Code::FailedPrecondition, "outgoing"),
        (
            "a payment that did not settle",
            RU,
            recall(&unsettled.uetr, "DUPL"),
            Code::FailedPrecondition,
            "settled",
        ),
        ("a returned payment", RU, recall(&to_return.uetr, "DUPL"), Code::FailedPrecondition, "returned"),
        ("an unknown reason code", RU, recall(&settled.uetr, "NOPE"), Code::InvalidArgument, "reason_code"),
    ];
    for (what, bank, request, code, hint) in bad_recalls {
        let client = if bank == RU { &mut ru } else { &mut ir };
        assert_refused(what, client.recall_payment(request).await, code, hint);
    }
    let answer = |uetr: &str, accept: bool, reason: &str| pb::AnswerRecallRequest {
        uetr: uetr.into(),
        accept,
        reason_code: reason.into(),
        additional_information: String::new(),
    };
    let bad_answers = [
        ("a malformed UETR", IR, answer("x", true, ""), Code::InvalidArgument, "uetr"),
        ("an unknown UETR", IR, answer(&unknown, true, ""), Code::NotFound, &unknown),
        ("no recall case", IR, answer(&settled.uetr, true, ""), Code::FailedPrecondition, "recall"),
        ("the sender's side", RU, answer(&settled.uetr, false, "NOAS"), Code::FailedPrecondition, "recall"),
        ("refusing without a reason", IR, answer(&settled.uetr, false, ""), Code::InvalidArgument, "reason"),
        (
            "an unknown reason code",
            IR,
            answer(&settled.uetr, false, "ZZ99"),
            Code::InvalidArgument,
            "reason_code",
        ),
    ];
    for (what, bank, request, code, hint) in bad_answers {
        let client = if bank == RU { &mut ru } else { &mut ir };
        assert_refused(what, client.answer_recall(request).await, code, hint);
    }

    // SubmitPayment into another currency.
    let bad_orders = [
        (
            "an unknown settlement currency",
            order(IR, "1.00", "RUB", "XYZ", ""),
            Code::InvalidArgument,
            "settlement_currency",
        ),
        (
            "a settlement currency in lower case",
            order(IR, "1.00", "RUB", "irr", ""),
            Code::InvalidArgument,
            "settlement_currency",
        ),
        (
            "a quote for one currency",
            order(IR, "10.00", "RUB", "RUB", &quote.quote_id),
            Code::FailedPrecondition,
            "quote_id",
        ),
        (
            "a quote without settlement currency",
            order(IR, "10.00", "RUB", "", &quote.quote_id),
            Code::FailedPrecondition,
            "quote_id",
        ),
        (
            "an unknown quote",
            order(IR, "10.00", "RUB", "IRR", "QNOSUCHQUOTE"),
            Code::NotFound,
            "QNOSUCHQUOTE",
        ),
        (
            "a quote for another pair",
            order(CN, "10.00", "RUB", "CNY", &quote.quote_id),
            Code::FailedPrecondition,
            "quote_id",
        ),
        ("a zero amount", order(IR, "0.00", "RUB", "IRR", ""), Code::InvalidArgument, "amount"),
    ];
    for (what, request, code, hint) in bad_orders {
        assert_refused(what, ru.submit_payment(request).await, code, hint);
    }
    assert_eq!(snapshot(&network).await, before);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Deferred net settlement and restarts

/// Under deferred net settlement, cross-currency payments join the open window in each
/// currency; closing it reports what each participant moved per currency and what the
/// conversions moved on each agreement's FX accounts, and in each currency the lines and
/// the FX lines add up to zero.
#[tokio::test]
async fn a_closed_window_reports_conversions_on_fx_lines_and_totals_per_currency() {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig { settlement_model: SettlementModel::DeferredNet, ..HubConfig::default() };
    let network = corridor_network(dir.path(), &[RU, IR, CN], config).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    set_agreement(&network, agreement("CNY/RUB", "12.3", 40)).await.unwrap();
    pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    pay_settled(&network, CN, order(RU, "7.77", "CNY", "RUB", "")).await;
    pay_settled(&network, RU, order(IR, "1.00", "RUB", "IRR", "")).await;
    let irr = converted(10_003, RUB_IRR_MANTISSA, 25) + converted(100, RUB_IRR_MANTISSA, 25);
    // 7.77 CNY at 12.3 less 40 bp = 12.2508: 9,518.8716 kopecks -> 95.19 RUB.
    let rub_in = converted(777, (123, 1), 40);
    assert_eq!(rub_in, 9_519);
    let rub_out = 10_003 + 100;
    assert_eq!(balance(&network, RU, "C001").await, OPENING_MINOR - rub_out);
    assert_eq!(balance(&network, RU, "C002").await, rub_in);
    assert_eq!(balance(&network, IR, "C002").await, irr);
    settle_down(&network).await;
    let open = positions(&network).await;
    assert_eq!(position(&open, RU, "RUB").window_net, rub_in - rub_out);
    assert_eq!(
        position(&open, RU, "RUB").liquidity,
        LIQUIDITY_MINOR,
        "nothing moves before the window closes"
    );

    let report =
        network.admin().await.unwrap().close_window(pb::CloseWindowRequest {}).await.unwrap().into_inner();
    let fx_lines: BTreeMap<(String, String), i64> = report
        .fx_lines
        .iter()
        .map(|f| ((f.currency_pair.clone(), f.currency.clone()), f.settled_net))
        .collect();
    let expected_fx: BTreeMap<(String, String), i64> = [
        (("CNY/RUB", "CNY"), 777),
        (("CNY/RUB", "RUB"), -rub_in),
        (("RUB/IRR", "IRR"), -irr),
        (("RUB/IRR", "RUB"), rub_out),
    ]
    .into_iter()
    .map(|((pair, currency), net)| ((pair.to_owned(), currency.to_owned()), net))
    .collect();
    assert_eq!(fx_lines, expected_fx);
    let lines: BTreeMap<(String, String), (i64, i64, i64)> = report
        .lines
        .iter()
        .map(|l| ((l.participant_bic.clone(), l.currency.clone()), (l.sent, l.received, l.net)))
        .collect();
    let expected_lines: BTreeMap<(String, String), (i64, i64, i64)> = [
        ((RU, "RUB"), (rub_out, rub_in, rub_in - rub_out)),
        ((IR, "IRR"), (0, irr, irr)),
        ((CN, "CNY"), (777, 0, -777)),
    ]
    .into_iter()
    .map(|((bank, currency), line)| ((bank.to_owned(), currency.to_owned()), line))
    .collect();
    assert_eq!(lines, expected_lines);
    // Per currency, the participants' lines and the FX lines net to zero.
    for currency in ["RUB", "IRR", "CNY"] {
        let participants: i64 = report.lines.iter().filter(|l| l.currency == currency).map(|l| l.net).sum();
        let conversions: i64 =
            report.fx_lines.iter().filter(|f| f.currency == currency).map(|f| f.settled_net).sum();
        assert_eq!(participants + conversions, 0, "{currency}: {report:?}");
    }
    let totals: BTreeMap<&str, &pb::SettlementTotal> =
        report.totals.iter().map(|t| (t.currency.as_str(), t)).collect();
    let rub = totals["RUB"];
    assert_eq!((rub.payments, rub.gross), (2, rub_out), "{report:?}");
    assert_eq!(rub.net, rub_out - rub_in, "RU's net debit in roubles");
    let cny = totals["CNY"];
    assert_eq!((cny.payments, cny.gross, cny.net), (1, 777, 777), "{report:?}");

    // The window's nets moved into liquidity, per currency; the FX accounts stay.
    let closed = positions(&network).await;
    assert_eq!(position(&closed, RU, "RUB").liquidity, LIQUIDITY_MINOR + rub_in - rub_out);
    assert_eq!(position(&closed, IR, "IRR").liquidity, LIQUIDITY_MINOR + irr);
    assert_eq!(position(&closed, CN, "CNY").liquidity, LIQUIDITY_MINOR - 777);
    assert!(closed.positions.iter().all(|p| p.window_net == 0));
    assert_eq!(fx(&closed, "RUB/IRR", "IRR"), -irr);
    assert_conserved(&closed, &funded());
    let mut admin = network.admin().await.unwrap();
    let reports = admin.list_settlement_reports(pb::ListSettlementReportsRequest {}).await.unwrap();
    assert_eq!(reports.into_inner().reports, vec![report]);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// A hub restart keeps the agreements and the quotes it gave: a quote given before the
/// restart is honoured after it, at its rate, although the agreement changed.
#[tokio::test]
async fn a_hub_restart_keeps_agreements_and_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = corridor_network(dir.path(), &[RU, IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    set_agreement(&network, agreement("IRR/RUB", "0.00195", 15)).await.unwrap();
    let request =
        pb::QuoteRequest { instructed_amount: Some(money(10_003, "RUB")), settlement_currency: "IRR".into() };
    let quote = operator(&network, RU).await.get_quote(request).await.unwrap().into_inner();
    set_agreement(&network, agreement("RUB/IRR", "530", 0)).await.unwrap();
    let listed = agreements(&network).await;
    assert_eq!(listed.len(), 2);

    network.restart_hub().await.unwrap();
    assert_eq!(agreements(&network).await, listed, "the agreements come back from the journal");
    let expected = converted(10_003, RUB_IRR_MANTISSA, 25);
    let quoted = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", &quote.quote_id)).await;
    assert_eq!(
        (quoted.exchange_rate.as_str(), quoted.counter_amount),
        (RUB_IRR_APPLIED, Some(money(expected, "IRR")))
    );
    let unquoted = pay_settled(&network, RU, order(IR, "100.03", "RUB", "IRR", "")).await;
    assert_eq!(
        (unquoted.exchange_rate.as_str(), unquoted.counter_amount),
        ("530", Some(money(5_301_590, "IRR")))
    );
    assert_eq!(converted(10_003, (530, 0), 0), 5_301_590);
    // The other direction, after the restart too: 0.00195 less 15 bp = 0.0019470750.
    let back = pay_settled(&network, IR, order(RU, "5000.00", "IRR", "RUB", "")).await;
    assert_eq!(back.counter_amount, Some(money(converted(500_000, (195, 5), 15), "RUB")));
    assert_eq!(balance(&network, IR, "C002").await, expected + 5_301_590);
    assert_eq!(balance(&network, RU, "C002").await, converted(500_000, (195, 5), 15));
    settle_down(&network).await;
    assert_conserved(&positions(&network).await, &funded());

    // Restarted again: the quoted payment still shows its rate.
    network.restart_hub().await.unwrap();
    let tracked = track(&network, &quoted.uetr).await.payment.unwrap();
    assert_eq!(tracked.exchange_rate, RUB_IRR_APPLIED);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Follow-ups spoken by hand

/// The hub checks every pacs.004, camt.056 and camt.029 against the payment's story, not
/// only the bank nodes (SECURITY.md): a third bank cannot return or recall a payment
/// between two others, the sender cannot return its own payment, a return must give back
/// the whole amount at the original conversion, a recall must name the settled amount, and
/// a CNCL needs the return first. Each is refused INVALID_ARGUMENT and moves nothing; a
/// well-formed recall from the sender is then accepted.
#[tokio::test]
async fn forged_returns_and_recalls_are_refused_by_the_hub_and_move_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // RU and CN are spoken for by hand; IR runs a node and answers the payment itself.
    let network = corridor_network(dir.path(), &[IR], HubConfig::default()).await;
    set_agreement(&network, agreement("RUB/IRR", RUB_IRR_RATE, RUB_IRR_SPREAD)).await.unwrap();
    let expected = converted(10_003, RUB_IRR_MANTISSA, RUB_IRR_SPREAD as i64);
    let mut ru_session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let mut cn_session = RawSession::open(&network.network, CN, &network.hub_url).await.unwrap();
    let (ru, cn) = (signer(&network.network, RU), signer(&network.network, CN));
    let payment = converted_transfer(RU, IR, (10_003, "RUB"), (expected, "IRR"), RUB_IRR_APPLIED, None);
    expect_ack(ru_session.submit_signed(&ru, &payment).await);
    let uetr = payment.header().uetr.unwrap();
    wait_settled_at_hub(&network, &uetr).await;
    let original = payment.header().message_id.clone();
    let before = snapshot(&network).await;

    let irr = |minor| Amount::from_minor_units(minor, Currency::parse("IRR").unwrap()).unwrap();
    let rub = |minor| Amount::from_minor_units(minor, Currency::parse("RUB").unwrap()).unwrap();
    let undone =
        |instructed| Conversion { instructed, rate: Rate::parse(RUB_IRR_APPLIED).unwrap(), quote_id: None };
    let pacs004 = |from: &str, to: &str, returned: Amount, conversion: Option<Conversion>| {
        let body = Body::Pacs004(corridor::model::PaymentReturn {
            return_id: "R-FORGED".into(),
            original_message_id: original.clone(),
            uetr,
            returned_amount: returned,
            conversion,
            reason: corridor::model::ReasonCode::Ac04,
            additional_information: String::new(),
        });
        Message::new(common::header(from, to, Some(uetr)), body).unwrap()
    };
    let camt056 = |from: &str, to: &str, amount: Amount| {
        let body = Body::Camt056(corridor::model::CancellationRequest {
            case_id: "CASE-FORGED".into(),
            original_message_id: original.clone(),
            uetr,
            original_amount: amount,
            reason: corridor::model::ReasonCode::Dupl,
            additional_information: String::new(),
        });
        Message::new(common::header(from, to, Some(uetr)), body).unwrap()
    };
    let cncl = |from: &str, to: &str| {
        let body = Body::Camt029(corridor::model::ResolutionOfInvestigation {
            case_id: "CASE-FORGED".into(),
            original_message_id: original.clone(),
            uetr,
            status: corridor::model::InvestigationStatus::Cncl,
            reason: None,
            additional_information: String::new(),
        });
        Message::new(common::header(from, to, Some(uetr)), body).unwrap()
    };
    let whole = Some(undone(rub(10_003)));
    let from_ru: Vec<(&str, Message, &str)> = vec![
        ("the sender returning its own payment", pacs004(RU, IR, irr(expected), whole.clone()), "only"),
        ("a recall of another amount", camt056(RU, IR, irr(expected - 1)), "not"),
        ("a recall in the instructed currency", camt056(RU, IR, rub(10_003)), "not"),
        ("a CNCL from the sender", cncl(RU, IR), "only"),
    ];
    for (what, message, hint) in from_ru {
        let nak = expect_nak(ru_session.submit_signed(&ru, &message).await, Code::InvalidArgument, "");
        assert!(nak.detail.contains(hint), "{what}: {:?} should say {hint:?}", nak.detail);
    }
    let from_cn: Vec<(&str, Message, &str)> = vec![
        ("a third bank returning the payment", pacs004(CN, RU, irr(expected), whole.clone()), "only"),
        ("a third bank recalling the payment", camt056(CN, IR, irr(expected)), "only"),
        ("a third bank answering a recall", cncl(CN, RU), "only"),
    ];
    for (what, message, hint) in from_cn {
        let nak = expect_nak(cn_session.submit_signed(&cn, &message).await, Code::InvalidArgument, "");
        assert!(nak.detail.contains(hint), "{what}: {:?} should say {hint:?}", nak.detail);
    }
    assert_eq!(snapshot(&network).await, before, "nothing moved, nothing was recorded");
    let tracked = network.hub().payment(&uetr).unwrap();
    assert!(tracked.returned.is_none() && tracked.recall.is_none(), "{tracked:?}");

    // The sender's recall of the settled amount is accepted and reaches IR as an open case.
    expect_ack(ru_session.submit_signed(&ru, &camt056(RU, IR, irr(expected))).await);
    let case =
        wait_payment(&network, IR, &uetr.to_string(), "recalled", |p| p.recall_case_id == "CASE-FORGED")
            .await;
    assert_eq!(case.recall_status, pb::InvestigationStatus::Pdcr as i32);
    network.stop().await.unwrap();
}
