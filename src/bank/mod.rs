//! A bank node: its ledger, its payments, and its side of the session with the hub.
//!
//! [`Bank`] holds the logic without the network: an operator's payment becomes a
//! booked, signed pacs.008 in the outbox; the hub's ACK, NAK and deliveries move
//! payments along and book every step. [`session`] keeps the bank connected to the
//! hub; [`service`] serves the operator API.

mod ledger_book;
mod service;
mod session;

pub use service::{BankServer, run};
pub use session::run_session;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::Notify;

use crate::crypto::{KeyId, SignedEnvelope, SigningIdentity};
use crate::directory::Directory;
use crate::ledger::{Account, AccountId, AccountKind, Ledger, LedgerError};
use crate::model::*;
use crate::pb;

pub use ledger_book::{SYSTEM_ACCOUNT_PREFIX, system_account};

/// Why the bank refused an operator's request. A refused request changes nothing.
#[derive(Debug, Error)]
pub enum BankError {
    /// A field broke a rule.
    #[error("{0}")]
    Invalid(#[from] ModelError),
    /// No such account or payment.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the bank's state.
    #[error("{0}")]
    Refused(String),
    /// The ledger refused a posting.
    #[error("{0}")]
    Ledger(#[from] LedgerError),
}

/// Direction of a payment seen from this bank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// We pay.
    Outgoing,
    /// We are paid.
    Incoming,
}

/// A payment as this bank sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// Its UETR.
    pub uetr: Uetr,
    /// Message id of its pacs.008.
    pub message_id: MessageId,
    /// Which way it goes.
    pub direction: Direction,
    /// The other bank.
    pub counterparty: Bic,
    /// Debtor's account (at the debtor agent).
    pub debtor_account: String,
    /// Creditor's account (at the creditor agent).
    pub creditor_account: String,
    /// Interbank settlement amount.
    pub amount: Amount,
    /// Where it stands.
    pub status: PaymentStatus,
    /// Why, when rejected.
    pub reason: Option<ReasonCode>,
    /// A sentence about the last change.
    pub detail: String,
}

/// An operator's request to pay.
#[derive(Clone, Debug)]
pub struct PaymentOrder {
    /// Paying customer's account here.
    pub debtor_account: String,
    /// Beneficiary's bank.
    pub creditor_agent: String,
    /// Beneficiary's account there.
    pub creditor_account: String,
    /// Beneficiary's name.
    pub creditor_name: String,
    /// Decimal text.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Free text.
    pub remittance_information: String,
}

/// A message waiting for the hub's ACK.
struct Outgoing {
    envelope: pb::SignedEnvelope,
    message_id: MessageId,
    uetr: Option<Uetr>,
    message_type: MessageType,
    /// Put on a session at least once: a resend is flagged as a possible duplicate.
    sent_before: bool,
    /// Put on the current session already.
    sent_this_session: bool,
}

/// A bank node's state.
#[derive(Clone)]
pub struct Bank {
    inner: Arc<BankInner>,
}

struct BankInner {
    identity: SigningIdentity,
    directory: Directory,
    hub_key_id: KeyId,
    /// Short critical sections only, never held across an `.await`.
    state: Mutex<BankState>,
    /// Woken when the outbox has something new to send.
    outbox_wake: Notify,
}

struct BankState {
    ledger: Ledger,
    payments: HashMap<Uetr, Payment>,
    /// Payment UETRs in the order the bank learnt of them.
    payment_order: Vec<Uetr>,
    /// Messages received and processed, by (sender, message id): the duplicate check.
    processed: HashSet<(Bic, MessageId)>,
    next_isn: u64,
    outbox: BTreeMap<u64, Outgoing>,
    last_osn_processed: u64,
    next_sequence_number: u64,
}

impl Bank {
    /// A bank signing as `identity`, trusting the keys and relationships of `directory`.
    pub fn new(identity: SigningIdentity, directory: Directory) -> Result<Self, String> {
        let bic = identity.bic();
        if !directory.is_participant(bic) {
            return Err(format!("{bic} is not a participant of this network's directory"));
        }
        let registered = directory.keys().key(bic, identity.key_id());
        if registered.map(|k| k.to_bytes()) != Some(identity.verifying_key_bytes()) {
            return Err(format!("the signing key of {bic} does not match the directory"));
        }
        let state = BankState {
            ledger: Ledger::new(),
            payments: HashMap::new(),
            payment_order: Vec::new(),
            processed: HashSet::new(),
            next_isn: 1,
            outbox: BTreeMap::new(),
            last_osn_processed: 0,
            next_sequence_number: 1,
        };
        let hub_key_id = KeyId::parse(crate::tls::INITIAL_KEY_ID).expect("valid key id");
        let inner = BankInner {
            identity,
            directory,
            hub_key_id,
            state: Mutex::new(state),
            outbox_wake: Notify::new(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// This bank's BIC.
    pub fn bic(&self) -> Bic {
        self.inner.identity.bic()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BankState> {
        self.inner.state.lock().expect("bank state lock")
    }

    /// Opens a customer account, with an optional opening cash deposit (decimal text).
    pub fn open_account(
        &self,
        id: &str,
        currency: &str,
        name: &str,
        deposit: &str,
    ) -> Result<Account, BankError> {
        let id = AccountId::parse(id).map_err(|e| e.at("account_id"))?;
        if id.as_str().starts_with(SYSTEM_ACCOUNT_PREFIX) {
            return Err(BankError::Refused(format!(
                "account ids starting with {SYSTEM_ACCOUNT_PREFIX} are the bank's own"
            )));
        }
        let currency = Currency::parse(currency)?;
        let name = message::check_text(name, "name", message::TEXT_LENGTH_MAX, true)?;
        let deposit = match deposit {
            "" | "0" => None,
            text => Some(Amount::parse(text, currency).map_err(|e| e.at("opening_deposit"))?),
        };
        let mut state = self.state();
        if state.ledger.account(&id).is_some() {
            return Err(BankError::Refused(format!("account {id} already exists")));
        }
        ledger_book::ensure_system_accounts(&mut state.ledger, currency);
        let account = Account::new(id.clone(), AccountKind::Customer, currency, &name);
        match deposit {
            Some(deposit) => ledger_book::open_funded(&mut state.ledger, account, deposit)?,
            None => state.ledger.open_account(account)?,
        }
        Ok(state.ledger.account(&id).expect("just opened").clone())
    }

    /// Blocks or unblocks a customer account: incoming payments to it are refused (AC06).
    pub fn set_account_blocked(&self, id: &str, blocked: bool) -> Result<Account, BankError> {
        let id = AccountId::parse(id).map_err(|e| e.at("account_id"))?;
        let mut state = self.state();
        match state.ledger.account(&id) {
            Some(account) if account.kind == AccountKind::Customer => {}
            _ => return Err(BankError::NotFound(format!("no customer account {id}"))),
        }
        Ok(state.ledger.set_blocked(&id, blocked)?.clone())
    }

    /// Every account, and whether debits equal credits in every currency.
    pub fn accounts(&self) -> (Vec<Account>, bool) {
        let state = self.state();
        (state.ledger.accounts().cloned().collect(), state.ledger.is_balanced())
    }

    /// One payment by UETR.
    pub fn payment(&self, uetr: &str) -> Result<Payment, BankError> {
        let uetr = Uetr::parse(uetr)?;
        self.state()
            .payments
            .get(&uetr)
            .cloned()
            .ok_or_else(|| BankError::NotFound(format!("no payment {uetr}")))
    }

    /// Every payment, oldest first.
    pub fn payments(&self) -> Vec<Payment> {
        let state = self.state();
        state.payment_order.iter().map(|uetr| state.payments[uetr].clone()).collect()
    }

    /// Messages waiting for the hub's ACK.
    pub fn outbox_len(&self) -> usize {
        self.state().outbox.len()
    }

    /// Starts an outgoing payment: validates the order, books debit customer / credit
    /// in-flight, signs the pacs.008 and queues it for the hub. Nothing changes if any
    /// check fails.
    pub fn submit_payment(&self, order: &PaymentOrder) -> Result<Payment, BankError> {
        let bic = self.bic();
        let creditor_agent = Bic::parse(&order.creditor_agent).map_err(|e| e.at("creditor_agent_bic"))?;
        if creditor_agent == bic || !self.inner.directory.is_participant(creditor_agent) {
            return Err(BankError::Refused(format!(
                "creditor_agent_bic: {creditor_agent} is not another participant of this network"
            )));
        }
        let currency = Currency::parse(&order.currency)?;
        let amount = Amount::parse(&order.amount, currency)?;
        let debtor_id = AccountId::parse(&order.debtor_account).map_err(|e| e.at("debtor_account"))?;
        let creditor =
            Party::new(&order.creditor_name, &order.creditor_account).map_err(|e| e.under("creditor"))?;
        let remittance = message::check_text(
            &order.remittance_information,
            "remittance_information",
            message::TEXT_LENGTH_MAX,
            false,
        )?;
        let uetr = Uetr::generate();
        let mut state = self.state();
        let debtor = match state.ledger.account(&debtor_id) {
            Some(account) if account.kind == AccountKind::Customer => account.clone(),
            _ => return Err(BankError::NotFound(format!("debtor_account: no customer account {debtor_id}"))),
        };
        if debtor.blocked {
            return Err(BankError::Refused(format!("debtor_account: {debtor_id} is blocked (AC06)")));
        }
        if debtor.currency != currency {
            return Err(BankError::Refused(format!(
                "debtor_account: {debtor_id} holds {}, not {currency}",
                debtor.currency
            )));
        }
        ledger_book::book_outgoing(&mut state.ledger, uetr, &debtor_id, amount).map_err(|e| match e {
            LedgerError::FloorBreached { .. } => {
                BankError::Refused(format!("insufficient funds on {debtor_id} (AM04)"))
            }
            other => BankError::Ledger(other),
        })?;
        let transfer = CreditTransfer {
            instruction_id: uetr.as_uuid().simple().to_string(),
            end_to_end_id: uetr.as_uuid().simple().to_string(),
            uetr,
            amount,
            settlement_date: time::OffsetDateTime::now_utc().date(),
            charge_bearer: ChargeBearer::Shar,
            debtor: Party::new(&debtor.name, debtor_id.as_str())?,
            debtor_agent: bic,
            creditor,
            creditor_agent,
            remittance_information: remittance,
        };
        let message_id = self.queue(&mut state, creditor_agent, Some(uetr), Body::Pacs008(transfer));
        let payment = Payment {
            uetr,
            message_id,
            direction: Direction::Outgoing,
            counterparty: creditor_agent,
            debtor_account: debtor_id.to_string(),
            creditor_account: order.creditor_account.clone(),
            amount,
            status: PaymentStatus::Pdng,
            reason: None,
            detail: "booked and queued for the hub".into(),
        };
        state.payments.insert(uetr, payment.clone());
        state.payment_order.push(uetr);
        drop(state);
        tracing::info!(%uetr, bank = %bic, receiver = %creditor_agent, %amount, "payment submitted");
        self.inner.outbox_wake.notify_one();
        Ok(payment)
    }

    /// Builds, signs and queues a message; returns its id.
    fn queue(&self, state: &mut BankState, receiver: Bic, uetr: Option<Uetr>, body: Body) -> MessageId {
        let message_type = body.message_type();
        let header = Header {
            message_id: MessageId::generate(),
            uetr,
            sender: self.bic(),
            receiver,
            creation_time_unix_ms: unix_ms_now(),
            sequence_number: state.next_sequence_number,
            possible_duplicate: false,
        };
        state.next_sequence_number += 1;
        let message_id = header.message_id.clone();
        let message = Message::new(header, body).expect("the bank builds consistent messages");
        let envelope = self.inner.identity.sign(&message);
        let isn = state.next_isn;
        state.next_isn += 1;
        state.outbox.insert(
            isn,
            Outgoing {
                envelope: pb::SignedEnvelope::from(&envelope),
                message_id: message_id.clone(),
                uetr,
                message_type,
                sent_before: false,
                sent_this_session: false,
            },
        );
        message_id
    }

    /// A new session began: everything not yet ACKed goes out again.
    pub(crate) fn on_welcome(&self, next_isn_expected: u64) {
        let mut state = self.state();
        for outgoing in state.outbox.values_mut() {
            outgoing.sent_this_session = false;
        }
        tracing::info!(bank = %self.bic(), next_isn_expected, unacknowledged = state.outbox.len(), "session welcomed");
    }

    /// Up to `limit` submissions not yet put on this session, marked as sent.
    pub(crate) fn take_unsent(&self, limit: usize) -> Vec<pb::Submit> {
        let mut state = self.state();
        let mut submits = Vec::new();
        for (isn, outgoing) in state.outbox.iter_mut().filter(|(_, o)| !o.sent_this_session).take(limit) {
            submits.push(pb::Submit {
                isn: *isn,
                envelope: Some(outgoing.envelope.clone()),
                possible_duplicate: outgoing.sent_before,
            });
            outgoing.sent_before = true;
            outgoing.sent_this_session = true;
        }
        submits
    }

    /// The last output sequence number this bank processed.
    pub(crate) fn last_osn_processed(&self) -> u64 {
        self.state().last_osn_processed
    }

    /// The hub accepted a message.
    pub(crate) fn on_ack(&self, ack: &pb::Ack) {
        let mut state = self.state();
        let Some(outgoing) = state.outbox.get(&ack.isn) else { return };
        if outgoing.message_id.as_str() != ack.message_id {
            tracing::error!(
                isn = ack.isn,
                "hub ACKed ISN {} for message {}, we sent {}",
                ack.isn,
                ack.message_id,
                outgoing.message_id
            );
            return;
        }
        let outgoing = state.outbox.remove(&ack.isn).expect("present");
        self.check_receipt(&outgoing, ack);
        if let (MessageType::Pacs008, Some(uetr)) = (outgoing.message_type, outgoing.uetr)
            && let Some(payment) = state.payments.get_mut(&uetr)
            && payment.status == PaymentStatus::Pdng
        {
            payment.status = PaymentStatus::Actc;
            payment.detail = "accepted by the hub".into();
            tracing::info!(%uetr, bank = %self.bic(), "ACTC: hub accepted the pacs.008");
        }
    }

    fn check_receipt(&self, outgoing: &Outgoing, ack: &pb::Ack) {
        let verified = SignedEnvelope::try_from(outgoing.envelope.clone()).ok().and_then(|envelope| {
            let receipt = ed25519_dalek::Signature::from_slice(&ack.receipt).ok()?;
            let hub = self.inner.directory.hub();
            self.inner.directory.keys().verify_receipt(hub, &self.inner.hub_key_id, &envelope, &receipt).ok()
        });
        if verified.is_none() {
            tracing::error!(bank = %self.bic(), message_id = %outgoing.message_id, "the hub's receipt does not verify");
        }
    }

    /// The hub refused a message. A refused pacs.008 is a rejected payment: reverse it.
    pub(crate) fn on_nak(&self, nak: &pb::Nak) {
        let mut state = self.state();
        let Some(outgoing) = state.outbox.remove(&nak.isn) else { return };
        let uetr = outgoing.uetr.map(|u| u.to_string()).unwrap_or_default();
        tracing::warn!(%uetr, bank = %self.bic(), message_id = %outgoing.message_id, reason = %nak.reason_code, detail = %nak.detail, "hub refused our {}", outgoing.message_type);
        if let (MessageType::Pacs008, Some(uetr)) = (outgoing.message_type, outgoing.uetr) {
            let reason = ReasonCode::parse(&nak.reason_code).unwrap_or(ReasonCode::Narr);
            let detail = format!("refused by the hub: {}", nak.detail);
            self.finish_outgoing(&mut state, uetr, PaymentStatus::Rjct, Some(reason), detail);
        }
    }

    /// Processes one delivery from the hub and returns the confirmation to send.
    pub(crate) fn on_deliver(&self, deliver: &pb::Deliver) -> pb::Delivered {
        let mut state = self.state();
        if deliver.osn <= state.last_osn_processed {
            return pb::Delivered { osn: deliver.osn };
        }
        if let Err(problem) = self.process_delivery(&mut state, deliver) {
            tracing::error!(bank = %self.bic(), osn = deliver.osn, %problem, "refused a delivered message");
        }
        state.last_osn_processed = deliver.osn;
        drop(state);
        self.inner.outbox_wake.notify_one();
        pb::Delivered { osn: deliver.osn }
    }

    fn process_delivery(&self, state: &mut BankState, deliver: &pb::Deliver) -> Result<(), String> {
        let envelope = deliver.envelope.clone().ok_or("a delivery without an envelope")?;
        let envelope = SignedEnvelope::try_from(envelope).map_err(|e| e.to_string())?;
        // End to end: the bank checks the sender's signature itself, trusting the hub for nothing.
        self.inner.directory.keys().verify(&envelope).map_err(|e| e.to_string())?;
        let message = wire::decode_message(&envelope.payload).map_err(|e| e.to_string())?;
        let header = message.header();
        if header.sender != envelope.signer || header.receiver != self.bic() {
            return Err(format!(
                "message {} from {} to {} is not for us",
                header.message_id, header.sender, header.receiver
            ));
        }
        if !state.processed.insert((header.sender, header.message_id.clone())) {
            tracing::info!(bank = %self.bic(), message_id = %header.message_id, "duplicate delivery ignored");
            return Ok(());
        }
        match message.body() {
            Body::Pacs008(transfer) => self.receive_transfer(state, header, transfer),
            Body::Pacs002(report) => self.receive_status(state, header, report),
            other => {
                tracing::warn!(bank = %self.bic(), "{} is not handled by bank nodes yet", other.message_type())
            }
        }
        Ok(())
    }

    fn receive_transfer(&self, state: &mut BankState, header: &Header, transfer: &CreditTransfer) {
        let uetr = transfer.uetr;
        let outcome = ledger_book::book_incoming(&mut state.ledger, transfer);
        let (status, reason, detail) = match outcome {
            Ok(()) => (PaymentStatus::Acsc, None, format!("credited to {}", transfer.creditor.account)),
            Err((reason, detail)) => (PaymentStatus::Rjct, Some(reason), detail),
        };
        tracing::info!(%uetr, bank = %self.bic(), sender = %header.sender, status = %status, reason = reason.map(|r| r.code()), "incoming pacs.008 processed");
        let payment = Payment {
            uetr,
            message_id: header.message_id.clone(),
            direction: Direction::Incoming,
            counterparty: header.sender,
            debtor_account: transfer.debtor.account.clone(),
            creditor_account: transfer.creditor.account.clone(),
            amount: transfer.amount,
            status,
            reason,
            detail: detail.clone(),
        };
        if state.payments.insert(uetr, payment).is_none() {
            state.payment_order.push(uetr);
        }
        let report = PaymentStatusReport {
            original_message_id: header.message_id.clone(),
            uetr,
            status,
            reason,
            additional_information: detail,
        };
        self.queue(state, header.sender, Some(uetr), Body::Pacs002(report));
    }

    fn receive_status(&self, state: &mut BankState, header: &Header, report: &PaymentStatusReport) {
        let uetr = report.uetr;
        let Some(payment) = state.payments.get(&uetr) else {
            tracing::warn!(%uetr, bank = %self.bic(), "status report for an unknown payment");
            return;
        };
        if payment.direction != Direction::Outgoing
            || payment.counterparty != header.sender
            || payment.message_id != report.original_message_id
        {
            tracing::warn!(%uetr, bank = %self.bic(), sender = %header.sender, "status report does not match our payment; ignored");
            return;
        }
        let detail =
            format!("{} reports {}: {}", header.sender, report.status, report.additional_information);
        self.finish_outgoing(state, uetr, report.status, report.reason, detail);
    }

    /// Moves an outgoing payment to `status`, booking settlement or the reversal once.
    fn finish_outgoing(
        &self,
        state: &mut BankState,
        uetr: Uetr,
        status: PaymentStatus,
        reason: Option<ReasonCode>,
        detail: String,
    ) {
        let payment = state.payments.get(&uetr).expect("caller checked the payment exists").clone();
        if payment.status.is_final() {
            tracing::info!(%uetr, bank = %self.bic(), "payment already final; status {} ignored", status);
            return;
        }
        let debtor = AccountId::parse(&payment.debtor_account).expect("booked from a valid account id");
        let booked = match status {
            PaymentStatus::Acsc | PaymentStatus::Accc => {
                ledger_book::book_settled(&mut state.ledger, uetr, payment.amount)
            }
            PaymentStatus::Rjct => {
                ledger_book::book_reversal(&mut state.ledger, uetr, &debtor, payment.amount)
            }
            _ => Ok(()),
        };
        if let Err(error) = booked {
            // Only an overflowing balance can refuse these postings. The payment stays
            // open, in-flight keeps the money, and the operator sees why.
            tracing::error!(%uetr, bank = %self.bic(), %error, "cannot book the payment's {status}");
            let payment = state.payments.get_mut(&uetr).expect("present");
            payment.detail = format!("{status} received but not booked: {error}; held in in-flight");
            return;
        }
        tracing::info!(%uetr, bank = %self.bic(), status = %status, reason = reason.map(|r| r.code()), "outgoing payment {}", if status.is_final() { "final" } else { "updated" });
        let payment = state.payments.get_mut(&uetr).expect("present");
        payment.status = status;
        payment.reason = reason;
        payment.detail = detail;
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms_now() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(now.as_millis()).expect("milliseconds fit in i64 until the year 292 million")
}
