//! Property (issue 8, "What must be shown"): across random sequences of payments among
//! three banks in three currencies (RUB, IRR, CNY; same-currency and converted under
//! agreements in five directions, each with a spread), random returns of settled payments
//! and random recalls, accepted or refused, on a real network (gRPC with mTLS, durable
//! stores): value in each currency is conserved at the hub, no account ever breaks its
//! floor, every customer holds exactly what the test's own model predicts (opening deposit
//! plus the moves, in minor units, by the test's own integer arithmetic), every position
//! and FX account is what the model says, and the reconciler reports zero breaks.
//!
//! Each bank holds a customer account in each of the three currencies, so a payment goes
//! from any of them to any account of another bank: the sender books the instructed
//! currency, the receiver the settlement currency. One direction (IRR/CNY) has no
//! agreement, so those payments are refused; tiny amounts that convert to less than one
//! minor unit are refused; payments to an account that does not exist are rejected by the
//! receiver; overdrafts are refused. The hub settles gross or deferred net (chosen per
//! case), its operator closes windows now and then, and the hub and the bank nodes restart
//! from their journals between operations. Operations run one after another so that the
//! model knows each outcome exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use corridor::hub::{HubConfig, SettlementModel};
use corridor::ledger::Floor;
use corridor::model::Bic;
use corridor::pb;
use corridor::pb::bank_service_client::BankServiceClient;
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use corridor::tls;
use proptest::prelude::*;
use tonic::Code;
use tonic::transport::Channel;

const BANKS: [&str; 3] = ["BANKRUMMXXX", "BANKIRTHXXX", "BANKCNSHXXX"];
const CURRENCIES: [&str; 3] = ["RUB", "IRR", "CNY"];
/// Each customer account's opening deposit, per currency, in minor units: 10,000.00 RUB,
/// 5,000,000.00 IRR, 1,000.00 CNY (roughly the same value).
const OPENING: [i64; 3] = [1_000_000, 500_000_000, 100_000];
/// A payment is a share of what the paying customer holds, in thousandths: up to all of
/// it and a tenth more, so that some overdraw and are refused, and a beneficiary may have
/// spent what it received before a return or a recall asks for it.
const SHARE_MAX_PERMILLE: i64 = 1_100;
/// Each bank's liquidity at the hub in each currency, far above any payment here.
const LIQUIDITY: &str = "10000000000.00";
const LIQUIDITY_MINOR: i64 = 1_000_000_000_000;
/// An agreement: from, to (indexes into `CURRENCIES`), the rate, the same rate as a
/// mantissa and a scale (for the test's own arithmetic), and the spread in basis points.
type Agreement = (usize, usize, &'static str, (i64, u32), u32);
/// The agreements; IRR/CNY has none.
const AGREEMENTS: [Agreement; 5] = [
    (0, 1, "512.25", (51_225, 2), 25),
    (1, 0, "0.00195", (195, 5), 15),
    (2, 0, "12.3", (123, 1), 40),
    (0, 2, "0.0815", (815, 4), 37),
    (2, 1, "6300.5", (63_005, 1), 10),
];
/// Bounds every wait at 30 s; a step takes milliseconds.
const POLLS_MAX: usize = 1_200;
const POLL_INTERVAL: Duration = Duration::from_millis(25);
const RECONCILE_WAIT: Duration = Duration::from_secs(20);

/// How much a payment is.
#[derive(Clone, Copy, Debug)]
enum Size {
    /// A few minor units, which may convert to less than one minor unit.
    Tiny(i64),
    /// Thousandths of what the paying customer holds (at least one minor unit).
    Share(i64),
}

/// One step of a random run.
#[derive(Clone, Debug)]
enum Op {
    /// Bank `from` pays `size` from its customer account in `from_currency` to the account
    /// in `to_currency` of bank `(from + offset) % 3` (or to an account it does not have).
    Pay {
        from: usize,
        from_currency: usize,
        offset: usize,
        to_currency: usize,
        size: Size,
        to_existing: bool,
    },
    /// The receiver of a settled payment (chosen by `pick`) returns it (AC04).
    Return { pick: usize },
    /// The sender of a settled payment (chosen by `pick`) recalls it (DUPL); the receiver
    /// accepts or refuses.
    Recall { pick: usize, accept: bool },
    /// The hub operator closes the settlement window (refused under gross settlement).
    CloseWindow,
    /// The hub stops and starts again from its journal.
    RestartHub,
    /// A bank node stops and starts again from its store.
    RestartBank { bank: usize },
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![1 => (1..=20i64).prop_map(Size::Tiny), 6 => (1..=SHARE_MAX_PERMILLE).prop_map(Size::Share)];
    let pay = (0..3usize, 0..3usize, 1..3usize, 0..3usize, size, prop::bool::weighted(0.9)).prop_map(
        |(from, from_currency, offset, to_currency, size, to_existing)| Op::Pay {
            from,
            from_currency,
            offset,
            to_currency,
            size,
            to_existing,
        },
    );
    prop_oneof![
        8 => pay,
        2 => any::<usize>().prop_map(|pick| Op::Return { pick }),
        2 => (any::<usize>(), any::<bool>()).prop_map(|(pick, accept)| Op::Recall { pick, accept }),
        1 => Just(Op::CloseWindow),
        1 => Just(Op::RestartHub),
        1 => (0..3usize).prop_map(|bank| Op::RestartBank { bank }),
    ]
}

/// `minor` converted under the agreement from `from` to `to`, by the test's own integer
/// arithmetic: `minor × mantissa / 10^scale × (10,000 − spread) / 10,000`, to the nearest
/// minor unit, ties up (amounts are positive). Every currency here has two decimals. None
/// without an agreement.
fn convert(minor: i64, from: usize, to: usize) -> Option<i64> {
    let (_, _, _, (mantissa, scale), spread) = AGREEMENTS.iter().find(|a| (a.0, a.1) == (from, to))?;
    let numerator = i128::from(minor) * i128::from(*mantissa) * i128::from(10_000 - spread);
    let denominator = 10i128.pow(*scale) * 10_000;
    let (quotient, remainder) = (numerator / denominator, numerator % denominator);
    Some(i64::try_from(if 2 * remainder >= denominator { quotient + 1 } else { quotient }).unwrap())
}

fn decimal(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn account(currency: usize) -> String {
    format!("A-{}", CURRENCIES[currency])
}

/// A payment that settled, as the model keeps it.
#[derive(Clone, Debug)]
struct Settled {
    uetr: String,
    from: usize,
    to: usize,
    from_currency: usize,
    to_currency: usize,
    instructed: i64,
    settlement: i64,
    returned: bool,
}

/// What the test expects of the network, computed on its own.
#[derive(Debug, Default)]
struct Model {
    /// Customer balance by (bank, currency).
    balances: BTreeMap<(usize, usize), i64>,
    /// The hub's settled net by (bank, currency).
    settled: BTreeMap<(usize, usize), i64>,
    /// The FX accounts by (agreement from, agreement to, currency).
    fx: BTreeMap<(usize, usize, usize), i64>,
    payments: Vec<Settled>,
}

impl Model {
    fn new() -> Self {
        let mut model = Self::default();
        for bank in 0..3 {
            for (currency, opening) in OPENING.into_iter().enumerate() {
                model.balances.insert((bank, currency), opening);
                model.settled.insert((bank, currency), 0);
            }
        }
        model
    }

    /// A payment settles (`sign` 1) or is returned (`sign` -1) at the hub.
    fn move_positions(&mut self, p: &Settled, sign: i64) {
        *self.settled.get_mut(&(p.from, p.from_currency)).unwrap() -= sign * p.instructed;
        *self.settled.get_mut(&(p.to, p.to_currency)).unwrap() += sign * p.settlement;
        if p.from_currency != p.to_currency {
            let pair = (p.from_currency, p.to_currency);
            *self.fx.entry((pair.0, pair.1, p.from_currency)).or_default() += sign * p.instructed;
            *self.fx.entry((pair.0, pair.1, p.to_currency)).or_default() -= sign * p.settlement;
        }
    }
}

/// The running network and a client of each bank's operator API.
struct Run {
    network: LocalNetwork,
    clients: Vec<BankServiceClient<Channel>>,
    model: Model,
}

async fn start(dir: &std::path::Path, model: SettlementModel) -> Run {
    let bics: Vec<Bic> = BANKS.iter().map(|b| Bic::parse(b).unwrap()).collect();
    let pki = tls::init(dir, &bics).unwrap();
    let config = HubConfig { settlement_model: model, ..HubConfig::default() };
    let mut network = LocalNetwork::start_hub(pki, config).await.unwrap();
    let mut admin = network.admin().await.unwrap();
    for bank in BANKS {
        for currency in CURRENCIES {
            let request = pb::FundRequest {
                participant_bic: bank.into(),
                currency: currency.into(),
                amount: LIQUIDITY.into(),
            };
            admin.fund(request).await.unwrap();
        }
    }
    for (from, to, rate, _, spread_bps) in AGREEMENTS {
        let agreement = pb::RateAgreement {
            currency_pair: format!("{}/{}", CURRENCIES[from], CURRENCIES[to]),
            rate: rate.into(),
            spread_bps,
            ..Default::default()
        };
        admin.set_agreement(pb::SetAgreementRequest { agreement: Some(agreement) }).await.unwrap();
    }
    let mut clients = Vec::new();
    for bic in bics {
        let index = network.start_bank(bic).await.unwrap();
        let bank = &network.banks[index].bank;
        for (currency, opening) in CURRENCIES.iter().zip(OPENING) {
            let name = format!("Customer in {currency}");
            bank.open_account(&format!("A-{currency}"), currency, &name, &decimal(opening)).await.unwrap();
        }
        clients.push(network.operator(index).await.unwrap());
    }
    Run { network, clients, model: Model::new() }
}

impl Run {
    /// Waits (bounded) until bank `bank` shows payment `uetr` as `done` says.
    async fn wait(
        &mut self,
        bank: usize,
        uetr: &str,
        what: &str,
        done: impl Fn(&pb::Payment) -> bool,
    ) -> pb::Payment {
        let mut last = None;
        for _ in 0..POLLS_MAX {
            let answer = self.clients[bank].get_payment(pb::GetPaymentRequest { uetr: uetr.into() }).await;
            if let Ok(answer) = answer {
                let payment = answer.into_inner().payment.unwrap();
                if done(&payment) {
                    return payment;
                }
                last = Some(payment);
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!("payment {uetr} at {}: still not {what}: {last:?}", BANKS[bank]);
    }

    fn balance(&self, bank: usize, currency: usize) -> i64 {
        self.model.balances[&(bank, currency)]
    }

    fn add(&mut self, bank: usize, currency: usize, delta: i64) {
        *self.model.balances.get_mut(&(bank, currency)).unwrap() += delta;
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Pay { from, from_currency, offset, to_currency, size, to_existing } => {
                let minor = match size {
                    Size::Tiny(minor) => minor,
                    Size::Share(permille) => (self.balance(from, from_currency) * permille / 1_000).max(1),
                };
                self.pay(from, from_currency, (from + offset) % 3, to_currency, minor, to_existing).await;
            }
            Op::Return { pick } => self.return_payment(pick).await,
            Op::Recall { pick, accept } => self.recall(pick, accept).await,
            Op::CloseWindow => self.close_window().await,
            Op::RestartHub => self.network.restart_hub().await.unwrap(),
            Op::RestartBank { bank } => {
                let bic = Bic::parse(BANKS[bank]).unwrap();
                self.network.stop_bank(bic).await.unwrap();
                let index = self.network.start_bank(bic).await.unwrap();
                self.clients[bank] = self.network.operator(index).await.unwrap();
            }
        }
    }

    async fn pay(
        &mut self,
        from: usize,
        from_currency: usize,
        to: usize,
        to_currency: usize,
        minor: i64,
        exists: bool,
    ) {
        let converted = if from_currency == to_currency {
            Some(minor)
        } else {
            convert(minor, from_currency, to_currency)
        };
        let expected = match converted {
            None => Err((Code::FailedPrecondition, "AM11")),
            Some(0) => Err((Code::InvalidArgument, "less than one minor unit")),
            Some(_) if self.balance(from, from_currency) < minor => Err((Code::FailedPrecondition, "AM04")),
            Some(settlement) => Ok(settlement),
        };
        let request = pb::SubmitPaymentRequest {
            debtor_account: account(from_currency),
            creditor_agent_bic: BANKS[to].into(),
            creditor_account: if exists { account(to_currency) } else { "NOPE".into() },
            creditor_name: "Beneficiary".into(),
            amount: decimal(minor),
            currency: CURRENCIES[from_currency].into(),
            settlement_currency: if from_currency == to_currency {
                String::new()
            } else {
                CURRENCIES[to_currency].into()
            },
            ..Default::default()
        };
        let answer = self.clients[from].submit_payment(request).await;
        let (settlement, submitted) = match (expected, answer) {
            (Err((code, hint)), Err(status)) => {
                assert_eq!(status.code(), code, "{status:?}");
                assert!(status.message().contains(hint), "{status:?} should say {hint}");
                return;
            }
            (Ok(settlement), Ok(answer)) => (settlement, answer.into_inner().payment.unwrap()),
            (expected, answer) => panic!("expected {expected:?}, got {answer:?}"),
        };
        // Booked at once at the sender.
        self.add(from, from_currency, -minor);
        let done = self.wait(from, &submitted.uetr, "final", |p| p.r#final).await;
        let status = pb::PaymentStatus::try_from(done.status).unwrap();
        if !exists {
            assert_eq!((status, done.reason_code.as_str()), (pb::PaymentStatus::Rjct, "AC01"), "{done:?}");
            self.add(from, from_currency, minor);
            return;
        }
        assert_eq!(status, pb::PaymentStatus::Acsc, "{done:?}");
        if from_currency != to_currency {
            let counter = done.counter_amount.clone().unwrap();
            assert_eq!(
                (counter.minor_units, counter.currency.as_str()),
                (settlement, CURRENCIES[to_currency])
            );
        }
        self.add(to, to_currency, settlement);
        let payment = Settled {
            uetr: submitted.uetr,
            from,
            to,
            from_currency,
            to_currency,
            instructed: minor,
            settlement,
            returned: false,
        };
        self.model.move_positions(&payment, 1);
        self.model.payments.push(payment);
    }

    /// The receiver returns a settled payment: refused if it was returned already or its
    /// customer no longer holds the amount.
    async fn return_payment(&mut self, pick: usize) {
        if self.model.payments.is_empty() {
            return;
        }
        let index = pick % self.model.payments.len();
        let p = self.model.payments[index].clone();
        let request = pb::ReturnPaymentRequest {
            uetr: p.uetr.clone(),
            reason_code: "AC04".into(),
            additional_information: "account closed".into(),
        };
        let answer = self.clients[p.to].return_payment(request).await;
        if p.returned || self.balance(p.to, p.to_currency) < p.settlement {
            let status = answer.expect_err("a return the model says is refused");
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            return;
        }
        answer.unwrap();
        self.add(p.to, p.to_currency, -p.settlement);
        let returned = pb::ReturnState::Returned as i32;
        self.wait(p.from, &p.uetr, "returned", |q| q.return_state == returned).await;
        self.returned(index);
    }

    /// A payment went back: the sender's customer gets exactly what it paid.
    fn returned(&mut self, index: usize) {
        let p = self.model.payments[index].clone();
        self.add(p.from, p.from_currency, p.instructed);
        self.model.move_positions(&p, -1);
        self.model.payments[index].returned = true;
    }

    /// The sender recalls a settled payment; the receiver accepts (if its customer still
    /// holds the amount; otherwise it must refuse, AM04) or refuses (NOAS).
    async fn recall(&mut self, pick: usize, accept: bool) {
        if self.model.payments.is_empty() {
            return;
        }
        let index = pick % self.model.payments.len();
        let p = self.model.payments[index].clone();
        let request = pb::RecallPaymentRequest {
            uetr: p.uetr.clone(),
            reason_code: "DUPL".into(),
            additional_information: "sent twice".into(),
        };
        let answer = self.clients[p.from].recall_payment(request).await;
        if p.returned {
            let status = answer.expect_err("a recall of a returned payment");
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            return;
        }
        let case = answer.unwrap().into_inner().payment.unwrap().recall_case_id;
        let pdcr = pb::InvestigationStatus::Pdcr as i32;
        self.wait(p.to, &p.uetr, "recalled", |q| q.recall_status == pdcr && q.recall_case_id == case).await;
        let answer = |accept: bool, reason: &str| pb::AnswerRecallRequest {
            uetr: p.uetr.clone(),
            accept,
            reason_code: reason.into(),
            additional_information: String::new(),
        };
        let covered = self.balance(p.to, p.to_currency) >= p.settlement;
        if accept && covered {
            self.clients[p.to].answer_recall(answer(true, "")).await.unwrap();
            self.add(p.to, p.to_currency, -p.settlement);
            let (cncl, returned) = (pb::InvestigationStatus::Cncl as i32, pb::ReturnState::Returned as i32);
            let done = |q: &pb::Payment| {
                q.recall_case_id == case && q.recall_status == cncl && q.return_state == returned
            };
            self.wait(p.from, &p.uetr, "cancelled and returned", done).await;
            self.returned(index);
            return;
        }
        let reason = if accept {
            let refused = self.clients[p.to].answer_recall(answer(true, "")).await;
            let status = refused.expect_err("accepting a recall the customer cannot cover");
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            "AM04"
        } else {
            "NOAS"
        };
        self.clients[p.to].answer_recall(answer(false, reason)).await.unwrap();
        let rjcr = pb::InvestigationStatus::Rjcr as i32;
        let done = |q: &pb::Payment| q.recall_case_id == case && q.recall_status == rjcr;
        let refused = self.wait(p.from, &p.uetr, "refused", done).await;
        assert_eq!(refused.recall_reason_code, reason);
    }

    /// Closes the window: each currency's participant lines and FX lines net to zero, and
    /// the window's nets move into liquidity. Refused under gross settlement, changing
    /// nothing.
    async fn close_window(&mut self) {
        let mut admin = self.network.admin().await.unwrap();
        let before = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
        let answer = admin.close_window(pb::CloseWindowRequest {}).await;
        if before.model == pb::SettlementModel::Gross as i32 {
            let status = answer.expect_err("no windows under gross settlement");
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            let after = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
            assert_eq!(after, before);
            return;
        }
        let report = answer.unwrap().into_inner();
        for currency in CURRENCIES {
            let lines: i64 = report.lines.iter().filter(|l| l.currency == currency).map(|l| l.net).sum();
            let fx: i64 =
                report.fx_lines.iter().filter(|f| f.currency == currency).map(|f| f.settled_net).sum();
            assert_eq!(lines + fx, 0, "{currency}: {report:?}");
        }
        let after = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
        for p in &after.positions {
            assert_eq!(p.window_net, 0, "{p:?}");
            let then = before
                .positions
                .iter()
                .find(|q| (&q.participant_bic, &q.currency) == (&p.participant_bic, &p.currency));
            let then = then.unwrap();
            assert_eq!(p.liquidity, then.liquidity + then.window_net, "{p:?}");
        }
    }

    /// No account of any bank is below its floor, and every ledger balances.
    fn floors_hold(&self) {
        for node in &self.network.banks {
            let (accounts, balanced) = node.bank.accounts();
            assert!(balanced, "{}'s ledger balances", node.bic);
            for account in accounts {
                if let Floor::Minimum(floor) = account.floor {
                    assert!(account.balance >= floor, "{}: {account:?} is below its floor", node.bic);
                }
            }
        }
    }

    /// Waits (bounded) until nothing moves: every message ACKed and every delivery
    /// confirmed.
    async fn settle_down(&self) {
        for _ in 0..POLLS_MAX {
            let hub = self.network.hub();
            let quiet =
                self.network.banks.iter().all(|b| b.bank.outbox_len() == 0 && hub.queued_for(b.bic) == 0);
            if quiet {
                return;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        panic!("the network did not settle down");
    }

    /// Everything the model says, against the network.
    async fn check(&mut self) {
        self.settle_down().await;
        self.floors_hold();
        // Every customer, to the minor unit; the settlement accounts mirror the hub.
        for node in &self.network.banks {
            let bank = BANKS.iter().position(|b| *b == node.bic.as_str()).unwrap();
            let (accounts, _) = node.bank.accounts();
            let balance = |id: &str| accounts.iter().find(|a| a.id.as_str() == id).map_or(0, |a| a.balance);
            for (currency, code) in CURRENCIES.into_iter().enumerate() {
                let customer = balance(&account(currency));
                assert_eq!(customer, self.balance(bank, currency), "{} {}", BANKS[bank], account(currency));
                let settlement = balance(&format!("SYS-SETTLEMENT-{code}"));
                assert_eq!(
                    settlement,
                    self.model.settled[&(bank, currency)],
                    "{} settlement in {code}",
                    BANKS[bank]
                );
                assert_eq!(balance(&format!("SYS-INFLIGHT-{code}")), 0, "{} in-flight {code}", BANKS[bank]);
            }
        }
        // The hub: each position, each FX account, and value conserved in each currency.
        let mut admin = self.network.admin().await.unwrap();
        let positions = admin.list_positions(pb::ListPositionsRequest {}).await.unwrap().into_inner();
        let mut net = [0i64; 3];
        let mut liquidity = [0i64; 3];
        for p in &positions.positions {
            let bank = BANKS.iter().position(|b| *b == p.participant_bic).unwrap();
            let currency = CURRENCIES.iter().position(|c| *c == p.currency).unwrap();
            assert_eq!(p.settled_net, self.model.settled[&(bank, currency)], "{p:?}");
            // Closed windows moved their nets into liquidity; the open one holds the rest.
            assert_eq!(
                (p.liquidity + p.window_net, p.reserved),
                (LIQUIDITY_MINOR + p.settled_net, 0),
                "{p:?}"
            );
            net[currency] += p.settled_net;
            liquidity[currency] += p.liquidity + p.window_net;
        }
        assert_eq!(positions.positions.len(), 9, "each bank in each currency");
        let mut fx = BTreeMap::new();
        for f in &positions.fx_positions {
            let (from, to) = f.currency_pair.split_once('/').unwrap();
            let index = |code: &str| CURRENCIES.iter().position(|c| *c == code).unwrap();
            let currency = index(&f.currency);
            fx.insert((index(from), index(to), currency), f.settled_net);
            net[currency] += f.settled_net;
            liquidity[currency] += f.settled_net;
        }
        let expected_fx: BTreeMap<_, _> =
            self.model.fx.iter().filter(|(_, v)| **v != 0).map(|(k, v)| (*k, *v)).collect();
        fx.retain(|_, v| *v != 0);
        assert_eq!(fx, expected_fx, "the FX accounts");
        assert_eq!(net, [0; 3], "value is conserved in each currency: {positions:?}");
        assert_eq!(liquidity, [3 * LIQUIDITY_MINOR; 3], "the funded liquidity is all there: {positions:?}");
        // And the reconciler finds nothing wrong.
        let banks: Vec<_> = self.network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
        let network = &self.network;
        let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, RECONCILE_WAIT)
            .await
            .unwrap();
        assert!(report.is_clean(), "{}", report.render());
        assert_eq!(report.payments_in_transit, 0, "{}", report.render());
    }
}

async fn run(model: SettlementModel, ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut run = start(dir.path(), model).await;
    for op in &ops {
        run.apply(op).await;
        run.floors_hold();
    }
    run.check().await;
    run.network.stop().await.unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 10,
        failure_persistence: None,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    /// Value in each currency is conserved, no account breaks its floor, every balance is
    /// what the model predicts and the reconciler finds zero breaks, across random
    /// cross-currency payments, returns and recalls.
    #[test]
    fn value_is_conserved_per_currency_across_payments_returns_and_recalls(
        deferred_net in any::<bool>(),
        ops in prop::collection::vec(op(), 20..=40)
    ) {
        let model = if deferred_net { SettlementModel::DeferredNet } else { SettlementModel::Gross };
        // One thread, as `#[tokio::test]`: a hub restart binds its address again at once,
        // and the stopped server lets go of its listener only once its aborted accept task
        // has been dropped, which a second worker thread may not have done yet.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(run(model, ops));
    }
}
