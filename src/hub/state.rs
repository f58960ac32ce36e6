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
use super::tracker::{PaymentRoute, StatusEffect};
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
    /// The links' terms, by link identity.
    pub(super) links: HashMap<Bic, LinkTerms>,
}

/// Where an accepted message came from and goes to, across links.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hop {
    /// Its sender (and signer).
    pub(super) sender: Bic,
    /// The link it came through, when its sender is a linked network's bank.
    pub(super) via: Option<Bic>,
    /// The link it leaves through, when its receiver is a linked network's bank.
    pub(super) next_hop: Option<Bic>,
}

/// The terms of a link this hub settles with: the bilateral agreement's cap, in this
/// hub's currency, on what either side's central bank may owe the other.
#[derive(Clone, Debug, Default)]
pub(super) struct LinkTerms {
    /// The cap, in minor units of this hub's currency.
    pub(super) cap: i64,
    /// Reserved for payments out through the link, not yet settled or released.
    pub(super) out_reserved: i64,
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
        hop: Hop,
        message: &Message,
        osn: u64,
        unix_ms: i64,
    ) -> Result<(), Refusal> {
        let sender = hop.sender;
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
            Body::Pacs008(transfer) => self.settle_transfer(hop, message_id, transfer, osn, unix_ms)?,
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
    ///
    /// Across a link, each hub settles in its own currency: a payment coming in reserves
    /// its settlement amount against the link's position (the peer's central bank pays),
    /// and one going out reserves against the sender's position and the link's cap.
    pub(super) fn settle_transfer(
        &mut self,
        hop: Hop,
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
                .check(hop.sender, conversion, transfer.amount, unix_ms)
                .map_err(|(reason, detail)| Refusal::new(Code::FailedPrecondition, Some(reason), detail))?;
        }
        let route = PaymentRoute { sender_link: hop.via, receiver_link: hop.next_hop };
        let (debtor, debit, _, credit) =
            route.legs(transfer.instructed_amount(), transfer.amount, hop.sender, transfer.creditor_agent);
        if let Some(link) = hop.next_hop {
            self.check_link_cap(link, credit)?;
        }
        self.positions.reserve(debtor, debit).map_err(position_short)?;
        if let Some(link) = hop.next_hop {
            self.links.entry(link).or_default().out_reserved += credit.minor_units();
        }
        if let Some(conversion) = &transfer.conversion {
            self.fx.use_quote(conversion);
        }
        self.tracker.record_transfer(message_id, hop.sender, transfer, route, osn, unix_ms);
        Ok(())
    }

    /// A payment out through `link` may not take what this network owes the linked one
    /// past the agreement's cap (AM04): the link's position, what is reserved out through
    /// it, and `amount`.
    fn check_link_cap(&self, link: Bic, amount: crate::model::Amount) -> Result<(), Refusal> {
        let terms = self.links.get(&link).cloned().unwrap_or_default();
        let position = self.positions.position(link, amount.currency());
        let owed = i128::from(position.settled_net)
            + i128::from(terms.out_reserved)
            + i128::from(amount.minor_units());
        if owed > i128::from(terms.cap) {
            let currency = amount.currency();
            return Err(Refusal::new(
                Code::FailedPrecondition,
                Some(ReasonCode::Am04),
                format!(
                    "the swap line with {link} cannot take {amount}: settled {} + reserved {} would pass its cap of {}",
                    crate::model::format_minor_units(position.settled_net, currency),
                    crate::model::format_minor_units(terms.out_reserved, currency),
                    crate::model::format_minor_units(terms.cap, currency),
                ),
            ));
        }
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
        let route = payment.route();
        let (debtor, debit, creditor, credit) =
            route.legs(payment.instructed, payment.amount, payment.sender, payment.receiver);
        let pair = payment.pair_and_rate().map(|c| c.0).filter(|_| debit.currency() != credit.currency());
        let window = match effect {
            StatusEffect::Settle => {
                self.positions.settle(debtor, creditor, debit, credit, pair).map_err(position_overflow)?;
                self.link_settled(route.receiver_link, credit);
                self.open_window()
            }
            StatusEffect::Release => {
                self.positions.release(debtor, debit);
                self.link_settled(route.receiver_link, credit);
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
        // The return goes the other way: the payment's receiver pays back.
        let route = payment.route();
        let back = PaymentRoute { sender_link: route.receiver_link, receiver_link: route.sender_link };
        let (returner, paid_back, restored_to, restored) =
            back.legs(payment.amount, payment.instructed, sender, receiver);
        let pair =
            payment.pair_and_rate().map(|c| c.0).filter(|_| paid_back.currency() != restored.currency());
        if let Some(link) = back.receiver_link {
            self.check_link_cap(link, restored)?;
        }
        self.positions.reserve(returner, paid_back).map_err(position_short)?;
        if let Err(error) = self.positions.settle(returner, restored_to, paid_back, restored, pair) {
            self.positions.release(returner, paid_back);
            return Err(position_overflow(error));
        }
        let window = self.open_window();
        self.tracker.record_return(message_id, ret, osn, unix_ms, window);
        Ok(())
    }

    /// A payment out through `link` settled or was released: its reservation against the
    /// link's cap goes.
    fn link_settled(&mut self, link: Option<Bic>, amount: crate::model::Amount) {
        if let Some(terms) = link.and_then(|link| self.links.get_mut(&link)) {
            terms.out_reserved -= amount.minor_units();
        }
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
        let sender = self.participants.get_mut(&record.peer()).expect("checked: sender is a participant");
        sender.last_isn_accepted = sender.last_isn_accepted.max(record.isn);
        if record.message_type == MessageType::Pacs008
            && let Some(uetr) = record.uetr
        {
            sender.awaiting_ack.insert(record.isn, uetr);
        }
        let receiver = self.participants.get_mut(&record.outbox()).expect("checked: receiver is reached");
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
            OperatorAction::SetLinkCap(link, _) => Some(*link),
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
            OperatorAction::SetLinkCap(link, cap) => {
                // The cap bounds both ways: what comes in reserves against the link's
                // position with it as net debit cap, what goes out is checked against it.
                let position = positions.set_net_debit_cap(*link, cap.currency(), cap.minor_units())?;
                self.links.entry(*link).or_default().cap = cap.minor_units();
                OperatorOutcome::Position(*link, cap.currency(), position)
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
