//! A hub and banks in one task, without the network: each bank's session is taken step
//! by step (Hello and Welcome, submissions and their answers, deliveries and their
//! confirmations) through the same calls `bank::session` and the hub's service make,
//! so that a test decides what happens between two steps (here: the clock moves).

use std::time::Duration;

use crate::bank::{Bank, BankConfig, PaymentOrder};
use crate::clock::{Clock, ManualClock};
use crate::directory::Directory;
use crate::hub::{Hub, HubConfig, OperatorAction};
use crate::model::{Amount, Bic, Currency, PaymentStatus, ReasonCode};
use crate::pb;
use crate::pb::session_response::Frame;
use crate::tls::{self, NetworkDir, Role};

/// A bound for a stuck journal, not a measure of speed: a commit takes milliseconds.
const DURABLE_WAIT_MAX: Duration = Duration::from_secs(60);

/// A hub and its banks sharing one manual clock.
struct Stepped {
    network: NetworkDir,
    clock: ManualClock,
    hub: Hub,
    _dir: tempfile::TempDir,
}

impl Stepped {
    fn new(banks: &[Bic], hub_config: HubConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let network = tls::init(dir.path(), banks).unwrap();
        // Now by the system's clock: the keys pki init made are valid from now on.
        let clock = ManualClock::starting_now();
        let config = HubConfig { clock: Clock::from(clock.clone()), ..hub_config };
        let directory = Directory::load(network.root()).unwrap();
        let identity = network.signing_identity(Role::Hub).unwrap();
        let hub = Hub::open(config, directory, identity, &network.hub_data_dir()).unwrap();
        Self { network, clock, hub, _dir: dir }
    }

    fn bank(&self, bic: Bic) -> Bank {
        let directory = Directory::load(self.network.root()).unwrap();
        let identity = self.network.signing_identity(Role::Bank(bic)).unwrap();
        let config = BankConfig { clock: Clock::from(self.clock.clone()), ..BankConfig::default() };
        Bank::open_with(identity, directory, &self.network.bank_data_dir(bic), config).unwrap()
    }

    /// One session of `bank` with the hub, until neither side has anything left: it
    /// sends all it has (what an answer makes it queue too), and processes and confirms
    /// every delivery. Returns the hub's answers to its submissions, in order.
    async fn session(&self, bank: &Bank) -> Vec<Frame> {
        let bic = bank.bic();
        let open = self.hub.open_session(bic, bank.last_osn_durable()).unwrap();
        bank.on_welcome(&open.welcome).unwrap();
        let mut answers = Vec::new();
        let mut next_osn = open.next_osn_to_send;
        loop {
            let sent = self.submit_all(bank, &mut answers).await;
            let delivered = self.deliver_all(bank, &mut next_osn).await;
            if !sent && !delivered {
                self.hub.close_session(bic, open.id);
                return answers;
            }
        }
    }

    /// Puts everything in `bank`'s outbox before the hub and hands the answers back;
    /// false if there was nothing to send.
    async fn submit_all(&self, bank: &Bank, answers: &mut Vec<Frame>) -> bool {
        let mut durability = bank.durability();
        let mut any = false;
        while bank.outbox_len() > 0 {
            let submits = bank.take_unsent(64, 256);
            if submits.is_empty() {
                // Queued but not durable yet: sent once it is.
                let changed = tokio::time::timeout(DURABLE_WAIT_MAX, durability.changed()).await;
                changed.expect("the bank's journal commits").unwrap();
                continue;
            }
            any = true;
            let frames: Vec<Frame> = self
                .answered(bank.bic(), submits)
                .await
                .into_iter()
                .map(|frame| frame.frame.expect("an answer"))
                .collect();
            let verified = bank.verify_responses(&frames);
            for (frame, verified) in frames.iter().zip(verified) {
                match frame {
                    Frame::Ack(ack) => bank.on_ack(ack, verified.map(drop)),
                    Frame::Nak(nak) => bank.on_nak(nak).unwrap(),
                    other => panic!("a submission answered with {other:?}"),
                }
            }
            answers.extend(frames);
        }
        any
    }

    /// The hub's answers to `submits`, once durable (as its service sends them).
    async fn answered(&self, bic: Bic, submits: Vec<pb::Submit>) -> Vec<pb::SessionResponse> {
        let answers = self.hub.submit_batch(bic, submits);
        let ticket = answers.iter().map(|(_, ticket)| *ticket).max().expect("one answer per submission");
        tokio::time::timeout(DURABLE_WAIT_MAX, self.hub.durable(ticket)).await.unwrap().unwrap();
        let acked =
            answers.iter().filter_map(|(f, _)| if let Frame::Ack(a) = f { Some(a.isn) } else { None });
        if let Some(isn) = acked.max() {
            self.hub.acknowledged(bic, isn);
        }
        answers.into_iter().map(|(frame, _)| pb::SessionResponse { frame: Some(frame) }).collect()
    }

    /// Hands `bank` every durable delivery from `next_osn` on and confirms each once the
    /// bank's processing is durable; false if there was none.
    async fn deliver_all(&self, bank: &Bank, next_osn: &mut u64) -> bool {
        let deliveries = self.hub.deliveries_from(bank.bic(), *next_osn, 64);
        let frames: Vec<Frame> = deliveries.into_iter().map(Frame::Deliver).collect();
        let verified = bank.verify_responses(&frames);
        for (frame, verified) in frames.iter().zip(verified) {
            let Frame::Deliver(deliver) = frame else { unreachable!("only deliveries") };
            let envelope = verified.and_then(|e| e.ok_or_else(|| "no envelope".to_owned()));
            let (delivered, ticket) = bank.on_deliver(deliver, envelope).unwrap();
            tokio::time::timeout(DURABLE_WAIT_MAX, bank.durable(ticket)).await.unwrap().unwrap();
            bank.delivered_durably(delivered.osn);
            self.hub.confirm_delivered(bank.bic(), delivered.osn);
            *next_osn = delivered.osn + 1;
        }
        !frames.is_empty()
    }
}

fn order(debtor_account: &str, creditor_agent: Bic, amount: &str) -> PaymentOrder {
    PaymentOrder {
        debtor_account: debtor_account.into(),
        creditor_agent: creditor_agent.to_string(),
        creditor_account: "B001".into(),
        creditor_name: "Beneficiary".into(),
        amount: amount.into(),
        currency: "RUB".into(),
        remittance_information: "Invoice 7".into(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

/// A status report that waited in the beneficiary bank's outbox past the hub's replay
/// window (SECURITY.md: freshness) is refused as too old (TM01), and the bank issues it
/// again, fresh (a new message id, created now), so that the payment still settles
/// (DESIGN.md: "No acknowledged message is lost"). Before the nodes read a clock a test
/// can move, this could be shown only by waiting out the window.
#[tokio::test]
async fn a_status_report_too_old_for_the_replay_window_is_issued_again_fresh_and_settles() {
    let (payer, payee) = (Bic::parse("PAYRRUMMXXX").unwrap(), Bic::parse("PAYERUMMXXX").unwrap());
    let window = Duration::from_secs(60);
    let net = Stepped::new(&[payer, payee], HubConfig { message_age_max: window, ..HubConfig::default() });
    let rub = Currency::parse("RUB").unwrap();
    net.hub.operate(OperatorAction::Fund(payer, Amount::parse("1000.00", rub).unwrap())).await.unwrap();
    let (a, b) = (net.bank(payer), net.bank(payee));
    a.open_account("A001", "RUB", "Payer", "500.00").await.unwrap();
    b.open_account("B001", "RUB", "Beneficiary", "0").await.unwrap();
    let payment = a.submit_payment(&order("A001", payee, "120.00")).await.unwrap();
    let answers = net.session(&a).await;
    assert!(matches!(answers[..], [Frame::Ack(_)]), "the pacs.008 is accepted: {answers:?}");

    // The beneficiary's bank takes the payment and queues its pacs.002, but its session
    // ends before it goes out (only the deliveries are taken here).
    let open = net.hub.open_session(payee, b.last_osn_durable()).unwrap();
    b.on_welcome(&open.welcome).unwrap();
    let mut next_osn = open.next_osn_to_send;
    assert!(net.deliver_all(&b, &mut next_osn).await);
    net.hub.close_session(payee, open.id);
    assert_eq!(b.outbox_len(), 1, "the pacs.002 waits in the outbox");
    assert_eq!(b.payment(&payment.uetr.to_string()).unwrap().status, PaymentStatus::Acsc);

    // It reconnects only after the replay window has gone by.
    net.clock.advance(window + Duration::from_secs(1));
    let answers = net.session(&b).await;
    let [Frame::Nak(refused), Frame::Ack(accepted)] = &answers[..] else {
        panic!("expected the stale report refused and a fresh one accepted, got {answers:?}");
    };
    assert_eq!(refused.reason_code, ReasonCode::Tm01.code(), "refused as too old: {}", refused.detail);
    assert_ne!(accepted.message_id, refused.message_id, "issued again under a new id");
    assert_eq!(b.outbox_len(), 0);

    // The payer learns it settled, and the hub agrees.
    let _ = net.session(&a).await;
    let settled = a.payment(&payment.uetr.to_string()).unwrap();
    assert_eq!(settled.status, PaymentStatus::Acsc, "{}", settled.detail);
    let at_hub = net.hub.payment(&payment.uetr).unwrap();
    assert!(at_hub.settled(), "the hub settled it: {:?}", at_hub.status);
    let report = at_hub.status.expect("a status step");
    assert_eq!(report.message_id.as_str(), accepted.message_id, "on the fresh report");
    assert_eq!(report.reported_unix_ms, net.clock.unix_ms(), "accepted after the window went by");
}
