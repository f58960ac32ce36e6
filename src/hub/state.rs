//! What the hub holds per participant (sequence numbers, outbox, session, rate) and what
//! step 6 of the checks does to it: each message type settled against the payment's story
//! and the positions, accepted messages admitted, deliveries and ACKs recorded, operator
//! actions applied. The same steps run live and when the journal is replayed.

use std::collections::{BTreeMap, HashMap};

use tonic::Code;

use super::checks::{RateLimiter, Refusal};
use super::duplicates::RecentMessages;
use super::positions::PositionError;
use super::session::ActiveSession;
use super::tracker::StatusEffect;
use super::{
    AcceptedRecord, FxDesk, HubRecord, OperatorAction, OperatorOutcome, PaymentArchive, Positions,
    SettlementModel, Tracker, events,
};
use crate::model::{Bic, Body, Message, MessageId, MessageKey, MessageType, ReasonCode, Uetr};
use crate::pb;
use crate::store::Ticket;

pub(super) struct HubState {
    pub(super) participants: HashMap<Bic, Participant>,
    /// Accepted messages by (sender, message id) of the last retention: the duplicate
    /// check's memory (the journal answers for older ones).
    pub(super) recent: RecentMessages,
    /// How many messages the journal holds: operator actions are placed by it.
    pub(super) messages_accepted: u64,
    /// The same, by message type.
    pub(super) accepted_by_type: events::AcceptedCounts,
    /// Deliveries in every outbox.
    pub(super) outbox_total: usize,
    pub(super) positions: Positions,
    /// Rate agreements and quotes.
    pub(super) fx: FxDesk,
    /// Payments in memory. Invariant: a payment leaves it only once its archive row is
    /// durable (see [`Hub::archive_finished`]), so memory and archive together always
    /// hold every payment the hub accepted.
    pub(super) tracker: Tracker,
    /// The archive, for messages about archived payments (none while recovering: the
    /// journal's replay rebuilds every payment in memory).
    pub(super) archive: Option<PaymentArchive>,
    pub(super) next_session_id: u64,
}

/// A message waiting in a receiver's outbox.
pub(super) struct Queued {
    /// The payment it is about, for the tracker.
    pub(super) uetr: Option<Uetr>,
    pub(super) envelope: pb::SignedEnvelope,
    /// Delivered only once durable.
    pub(super) ticket: Ticket,
}

#[derive(Default)]
pub(super) struct Participant {
    /// Next input sequence number expected from the bank.
    pub(super) next_isn: u64,
    /// Highest input sequence number on which a new message from the bank was accepted
    /// (0 for none), told at Welcome: the numbers above it were consumed only by
    /// duplicates and refusals. A maximum, not the last: a resend accepted as new (its
    /// first submission's answer was lost in a crash) comes with a lower number. Rebuilt
    /// from the journal, whose accepted messages carry their numbers.
    pub(super) last_isn_accepted: u64,
    /// Output sequence number the next delivery to the bank gets.
    pub(super) next_osn: u64,
    /// Deliveries not yet confirmed by the bank, by output sequence number.
    pub(super) outbox: BTreeMap<u64, Queued>,
    /// Its payment messages not yet ACKed, by input sequence number (for the tracker).
    pub(super) awaiting_ack: BTreeMap<u64, Uetr>,
    /// Highest output sequence number ever put on a session: a delivery at or below it
    /// may have arrived before, so it goes out flagged as a possible duplicate (PDM).
    pub(super) osn_sent_high_water: u64,
    pub(super) session: Option<ActiveSession>,
    /// Its submissions so far against its rate.
    pub(super) rate: RateLimiter,
    /// Set when a submission was shed: the input sequence number the bank must resend
    /// from. Until it does, everything after it on the session is shed too (it would be
    /// a sequence gap), and nothing is consumed.
    pub(super) shed_from: Option<u64>,
    /// Submissions shed so far.
    pub(super) shed_total: u64,
}

impl HubState {
    pub(super) fn count_sessions(&self) {
        let open = self.participants.values().filter(|p| p.session.is_some()).count();
        metrics::gauge!(crate::metrics::HUB_SESSIONS).set(open as f64);
    }

    /// Step 6 of the checks, then its effects, all or nothing: no payment or return
    /// from or to a suspended participant; then each message type against the payment's
    /// story so far (see the `settle_*` functions). A camt.056 and its camt.029 must fit
    /// the payment's recall case; they move no money.
    pub(super) fn settle(
        &mut self,
        sender: Bic,
        message: &Message,
        osn: u64,
        unix_ms: i64,
    ) -> Result<(), Refusal> {
        let (header, message_id) = (message.header(), message.header().message_id.clone());
        if matches!(message.body(), Body::Pacs008(_) | Body::Pacs004(_)) {
            for party in [sender, header.receiver] {
                if self.positions.is_suspended(party) {
                    return Err(Refusal::new(
                        Code::PermissionDenied,
                        Some(ReasonCode::Ag01),
                        format!(
                            "{party} is suspended by the hub operator: no payments from or to it until resumed"
                        ),
                    ));
                }
            }
        }
        self.restore_archived(message)?;
        let mismatch = |detail| Refusal::new(Code::InvalidArgument, None, detail);
        match message.body() {
            Body::Pacs008(transfer) => self.settle_transfer(sender, message_id, transfer, osn, unix_ms)?,
            Body::Pacs002(report) => {
                self.settle_status(sender, header.receiver, message_id, report, osn, unix_ms)?
            }
            Body::Pacs004(ret) => {
                self.settle_return(sender, header.receiver, message_id, ret, osn, unix_ms)?
            }
            Body::Camt056(request) => {
                self.tracker.check_recall(sender, header.receiver, request).map_err(mismatch)?;
                self.tracker.record_recall(message_id, request, osn, unix_ms);
            }
            Body::Camt029(resolution) => {
                self.tracker.check_resolution(sender, header.receiver, resolution).map_err(mismatch)?;
                self.tracker.record_resolution(message_id, resolution, osn, unix_ms);
            }
            Body::Camt053(_) => {}
        }
        Ok(())
    }

    /// Brings the payment `message` is about back from the archive into memory, if it was
    /// archived: a pacs.008 reusing its UETR is then refused as for one in memory, and a
    /// status, return or recall is checked against its whole story. The payment leaves
    /// again once finished and past its retention.
    pub(super) fn restore_archived(&mut self, message: &Message) -> Result<(), Refusal> {
        let (Some(archive), Some(uetr)) = (&self.archive, message.body().uetr()) else { return Ok(()) };
        if self.tracker.get(&uetr).is_some() {
            return Ok(());
        }
        let archived = archive.get(&uetr).map_err(|e| {
            Refusal::new(Code::Unavailable, None, format!("the hub's payment archive cannot be read: {e}"))
        })?;
        if let Some((seq, payment)) = archived {
            self.tracker.restore(seq, payment);
        }
        Ok(())
    }

    /// A pacs.008 needs a new UETR and a conversion that matches its agreement or quote
    /// (AM11, AM12, TM01), and reserves its instructed amount against the sender's
    /// position (AM04 if it cannot).
    pub(super) fn settle_transfer(
        &mut self,
        sender: Bic,
        message_id: MessageId,
        transfer: &crate::model::CreditTransfer,
        osn: u64,
        unix_ms: i64,
    ) -> Result<(), Refusal> {
        self.tracker
            .check_transfer(transfer)
            .map_err(|detail| Refusal::new(Code::AlreadyExists, Some(ReasonCode::Dupl), detail))?;
        if let Some(conversion) = &transfer.conversion {
            self.fx
                .check(sender, conversion, transfer.amount, unix_ms)
                .map_err(|(reason, detail)| Refusal::new(Code::FailedPrecondition, Some(reason), detail))?;
        }
        self.positions.reserve(sender, transfer.instructed_amount()).map_err(position_short)?;
        if let Some(conversion) = &transfer.conversion {
            self.fx.use_quote(conversion);
        }
        self.tracker.record_transfer(message_id, sender, transfer, osn, unix_ms);
        Ok(())
    }

    /// A pacs.002 must come from the payment's receiver; it settles the payment (ACSC:
    /// the sender pays the instructed amount, the receiver gets the settlement amount,
    /// the agreement's FX accounts take the difference of currencies) or releases it (RJCT).
    pub(super) fn settle_status(
        &mut self,
        sender: Bic,
        receiver: Bic,
        message_id: MessageId,
        report: &crate::model::PaymentStatusReport,
        osn: u64,
        unix_ms: i64,
    ) -> Result<(), Refusal> {
        let (payment, effect) = self
            .tracker
            .check_status(sender, receiver, report)
            .map_err(|detail| Refusal::new(Code::InvalidArgument, None, detail))?;
        let (debtor, creditor) = (payment.sender, payment.receiver);
        let (debit, credit, pair) =
            (payment.instructed, payment.amount, payment.pair_and_rate().map(|c| c.0));
        let window = match effect {
            StatusEffect::Settle => {
                self.positions.settle(debtor, creditor, debit, credit, pair).map_err(position_overflow)?;
                self.open_window()
            }
            StatusEffect::Release => {
                self.positions.release(debtor, debit);
                None
            }
            StatusEffect::Record => None,
        };
        self.tracker.record_status(message_id, report, osn, unix_ms, window);
        Ok(())
    }

    /// A pacs.004 returns a settled payment whole and settles at once against the
    /// returner's position (AM04 if it cannot cover it): the conversion undone, the
    /// returner pays back what it received, the original sender gets back what it paid,
    /// and the FX accounts reverse.
    pub(super) fn settle_return(
        &mut self,
        sender: Bic,
        receiver: Bic,
        message_id: MessageId,
        ret: &crate::model::PaymentReturn,
        osn: u64,
        unix_ms: i64,
    ) -> Result<(), Refusal> {
        let payment = self
            .tracker
            .check_return(sender, receiver, ret)
            .map_err(|detail| Refusal::new(Code::InvalidArgument, None, detail))?;
        let (paid_back, restored, pair) =
            (payment.amount, payment.instructed, payment.pair_and_rate().map(|c| c.0));
        self.positions.reserve(sender, paid_back).map_err(position_short)?;
        if let Err(error) = self.positions.settle(sender, receiver, paid_back, restored, pair) {
            self.positions.release(sender, paid_back);
            return Err(position_overflow(error));
        }
        let window = self.open_window();
        self.tracker.record_return(message_id, ret, osn, unix_ms, window);
        Ok(())
    }

    /// The settlement window a settlement now falls in (deferred net only).
    pub(super) fn open_window(&self) -> Option<u64> {
        (self.positions.model() == SettlementModel::DeferredNet).then(|| self.positions.open_window_id())
    }

    /// Takes an accepted message in: sequence counters, the receiver's outbox (unless it
    /// was delivered already), the duplicate check, and the ACK the tracker waits for.
    pub(super) fn admit(
        &mut self,
        record: &AcceptedRecord,
        key: MessageKey,
        queued: Option<pb::SignedEnvelope>,
        ticket: Ticket,
    ) {
        self.messages_accepted += 1;
        self.accepted_by_type.count(record.message_type);
        let sender = self.participants.get_mut(&record.sender).expect("checked: sender is a participant");
        sender.last_isn_accepted = sender.last_isn_accepted.max(record.isn);
        if record.message_type == MessageType::Pacs008
            && let Some(uetr) = record.uetr
        {
            sender.awaiting_ack.insert(record.isn, uetr);
        }
        let receiver =
            self.participants.get_mut(&record.receiver).expect("checked: receiver is a participant");
        receiver.next_osn = receiver.next_osn.max(record.osn + 1);
        if let Some(envelope) = queued {
            receiver.outbox.insert(record.osn, Queued { uetr: record.uetr, envelope, ticket });
            self.outbox_total += 1;
        }
        self.recent.remember(key, record.envelope.signature.to_bytes(), ticket, record.accepted_unix_ms);
    }

    /// `bank` confirmed every delivery up to `osn`: they leave its outbox, and the tracker
    /// learns when. Returns the journal record.
    pub(super) fn delivered(&mut self, bank: Bic, osn: u64, unix_ms: i64) -> HubRecord {
        let participant = self.participants.get_mut(&bank).expect("confirmations come from participants");
        let confirmed = take_through(&mut participant.outbox, osn);
        self.outbox_total -= confirmed.len();
        metrics::gauge!(crate::metrics::HUB_OUTBOX).set(self.outbox_total as f64);
        for (confirmed_osn, queued) in confirmed {
            if let Some(uetr) = queued.uetr {
                self.tracker.delivered(&uetr, bank, confirmed_osn, unix_ms);
            }
        }
        HubRecord::Delivered { participant: bank, osn, unix_ms }
    }

    /// The hub sent `bank` its answers up to `isn`: the tracker learns when.
    pub(super) fn acknowledged(&mut self, bank: Bic, isn: u64, unix_ms: i64) {
        let participant = self.participants.get_mut(&bank).expect("ACKs go to participants");
        for uetr in take_through(&mut participant.awaiting_ack, isn).into_values() {
            self.tracker.acknowledged(&uetr, unix_ms);
        }
    }

    /// Applies an operator's action to the positions; refused (changing nothing) when
    /// the positions cannot take it.
    pub(super) fn operate(
        &mut self,
        action: &OperatorAction,
        unix_ms: i64,
    ) -> Result<OperatorOutcome, String> {
        let participant = match action {
            OperatorAction::Fund(p, _)
            | OperatorAction::Defund(p, _)
            | OperatorAction::SetNetDebitCap(p, _, _)
            | OperatorAction::Suspend(p)
            | OperatorAction::Resume(p) => Some(*p),
            OperatorAction::Quote(q) => Some(q.participant),
            OperatorAction::CloseWindow | OperatorAction::SetAgreement(_) => None,
        };
        if let Some(p) = participant.filter(|p| !self.participants.contains_key(p)) {
            return Err(format!("{p} is not a participant of this network"));
        }
        let positions = &mut self.positions;
        Ok(match action {
            OperatorAction::Fund(p, amount) => {
                OperatorOutcome::Position(*p, amount.currency(), positions.fund(*p, *amount)?)
            }
            OperatorAction::Defund(p, amount) => {
                OperatorOutcome::Position(*p, amount.currency(), positions.defund(*p, *amount)?)
            }
            OperatorAction::SetNetDebitCap(p, currency, cap) => {
                OperatorOutcome::Position(*p, *currency, positions.set_net_debit_cap(*p, *currency, *cap)?)
            }
            OperatorAction::Suspend(p) => {
                positions.set_suspended(*p, true);
                OperatorOutcome::Suspended(*p, true)
            }
            OperatorAction::Resume(p) => {
                positions.set_suspended(*p, false);
                OperatorOutcome::Suspended(*p, false)
            }
            OperatorAction::CloseWindow => OperatorOutcome::Report(positions.close_window(unix_ms)?.clone()),
            OperatorAction::SetAgreement(agreement) => {
                self.fx.set_agreement(agreement.clone());
                OperatorOutcome::Agreement(agreement.clone())
            }
            OperatorAction::Quote(quote) => {
                self.fx.keep_quote(quote.clone(), unix_ms);
                OperatorOutcome::Quote(quote.clone())
            }
        })
    }
}

/// Takes every entry up to and including sequence number `through` out of `map`.
pub(super) fn take_through<T>(map: &mut BTreeMap<u64, T>, through: u64) -> BTreeMap<u64, T> {
    let rest = map.split_off(&through.saturating_add(1));
    std::mem::replace(map, rest)
}

/// A position that cannot cover a payment or return: AM04.
fn position_short(PositionError(detail): PositionError) -> Refusal {
    Refusal::new(Code::FailedPrecondition, Some(ReasonCode::Am04), detail)
}

/// A position figure that would overflow: AM02.
fn position_overflow(PositionError(detail): PositionError) -> Refusal {
    Refusal::new(Code::FailedPrecondition, Some(ReasonCode::Am02), detail)
}

impl From<PositionError> for String {
    fn from(error: PositionError) -> Self {
        error.0
    }
}
