//! Every payment the hub relayed, by UETR, with the time of each step: what `corridor
//! track` shows (like a gpi tracker) and what the reconciler matches banks against.
//! Pure: times come from the caller, and the archive (`journal`) is the hub's business.
//!
//! Memory holds the payments still moving, and finished ones for a retention after their
//! last step; the hub archives older finished ones (see [`Tracker::archivable`]) and brings
//! one back ([`Tracker::restore`]) when a later message is about it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    Amount, Bic, CancellationRequest, CreditTransfer, CurrencyPair, InvestigationStatus, MessageId,
    PaymentReturn, PaymentStatus, PaymentStatusReport, Rate, ReasonCode, ResolutionOfInvestigation, Uetr,
};

/// A payment as the hub saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubPayment {
    /// Its UETR.
    pub uetr: Uetr,
    /// Message id of its pacs.008.
    pub message_id: MessageId,
    /// Debtor agent: the sender of the pacs.008.
    pub sender: Bic,
    /// Creditor agent.
    pub receiver: Bic,
    /// Interbank settlement amount: what the receiver gets, in its currency.
    pub amount: Amount,
    /// What the sender instructed and pays, in its currency (`amount` when not converted).
    pub instructed: Amount,
    /// A conversion's agreement pair and rate (boxed, like the rarer parts below: most
    /// payments have none, and the tracker keeps many payments).
    pub conversion: Option<Box<(CurrencyPair, Rate)>>,
    /// Output sequence number of the pacs.008 towards the receiver.
    pub osn: u64,
    /// The hub accepted (checked and journalled) the pacs.008.
    pub submitted_unix_ms: i64,
    /// The ACK left for the sender.
    pub acknowledged_unix_ms: Option<i64>,
    /// The receiver confirmed it processed the pacs.008.
    pub delivered_unix_ms: Option<i64>,
    /// The receiver's answer, once the hub relayed one.
    pub status: Option<StatusStep>,
    /// The return (pacs.004) of the settled payment, once the hub accepted and settled it.
    pub returned: Option<Box<ReturnStep>>,
    /// The latest recall (camt.056) case.
    pub recall: Option<Box<RecallCase>>,
    /// The links its sender or receiver is behind, when it crosses one (boxed: most
    /// payments stay in their network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Box<PaymentRoute>>,
}

/// The links a payment's banks are behind, at this hub: a bank of a linked network is
/// reached through its network's link, and settles as that link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRoute {
    /// The link the sender is behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_link: Option<Bic>,
    /// The link the receiver is behind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_link: Option<Bic>,
}

impl PaymentRoute {
    /// Who pays what and who gets what at this hub, when `sender` pays `instructed` and
    /// `receiver` gets `amount`: a bank behind a link settles as the link, and in this
    /// hub's currency, which is the other bank's (the central banks convert between them).
    pub fn legs(
        &self,
        instructed: Amount,
        amount: Amount,
        sender: Bic,
        receiver: Bic,
    ) -> (Bic, Amount, Bic, Amount) {
        let debtor = self.sender_link.unwrap_or(sender);
        let creditor = self.receiver_link.unwrap_or(receiver);
        let debit = if self.sender_link.is_some() { amount } else { instructed };
        let credit = if self.receiver_link.is_some() { instructed } else { amount };
        (debtor, debit, creditor, credit)
    }

    /// True when neither bank is behind a link.
    pub fn is_local(&self) -> bool {
        self.sender_link.is_none() && self.receiver_link.is_none()
    }
}

/// A settled payment's return, as the hub relayed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnStep {
    /// Message id of the pacs.004.
    pub message_id: MessageId,
    /// Why.
    pub reason: ReasonCode,
    /// The hub accepted the pacs.004 and settled it back.
    pub returned_unix_ms: i64,
    /// Output sequence number of the pacs.004 towards the original sender.
    pub osn: u64,
    /// The original sender confirmed it processed the pacs.004.
    pub delivered_unix_ms: Option<i64>,
    /// The settlement window it settled in (deferred net).
    pub window_id: Option<u64>,
}

/// A recall: the sender's camt.056 and the receiver's camt.029 answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallCase {
    /// Case id.
    pub case_id: String,
    /// Message id of the camt.056.
    pub message_id: MessageId,
    /// Why the sender asks.
    pub reason: ReasonCode,
    /// The hub accepted the camt.056.
    pub requested_unix_ms: i64,
    /// Output sequence number of the camt.056 towards the receiver.
    pub osn: u64,
    /// The receiver confirmed it processed the camt.056.
    pub delivered_unix_ms: Option<i64>,
    /// The receiver's final answer (CNCL or RJCR), once relayed.
    pub answer: Option<RecallAnswer>,
}

/// The receiver's camt.029 answer to a recall.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallAnswer {
    /// Message id of the camt.029.
    pub message_id: MessageId,
    /// CNCL (returned) or RJCR (refused).
    pub status: InvestigationStatus,
    /// Why, when refused.
    pub reason: Option<ReasonCode>,
    /// The hub accepted the camt.029.
    pub answered_unix_ms: i64,
    /// Output sequence number of the camt.029 towards the sender.
    pub osn: u64,
    /// The sender confirmed it processed the camt.029.
    pub delivered_unix_ms: Option<i64>,
}

impl RecallCase {
    /// How the case stands: PDCR until answered, then the answer.
    pub fn status(&self) -> InvestigationStatus {
        self.answer.as_ref().map_or(InvestigationStatus::Pdcr, |a| a.status)
    }
}

/// The receiver's pacs.002 for a payment, as the hub relayed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusStep {
    /// Message id of the pacs.002.
    pub message_id: MessageId,
    /// Status reported.
    pub status: PaymentStatus,
    /// Reason, when rejected.
    pub reason: Option<ReasonCode>,
    /// The hub accepted the pacs.002 (and settled or released the payment).
    pub reported_unix_ms: i64,
    /// Output sequence number of the pacs.002 towards the sender.
    pub osn: u64,
    /// The sender confirmed it processed the pacs.002.
    pub delivered_unix_ms: Option<i64>,
    /// The settlement window it settled in (deferred net), if it settled.
    pub window_id: Option<u64>,
}

impl HubPayment {
    /// The final status the receiver reported, if any.
    pub fn final_status(&self) -> Option<PaymentStatus> {
        self.status.as_ref().map(|s| s.status).filter(PaymentStatus::is_final)
    }

    /// True when the receiver accepted it and its amount moved from sender to receiver.
    pub fn settled(&self) -> bool {
        matches!(self.final_status(), Some(PaymentStatus::Acsc | PaymentStatus::Accc))
    }

    /// A conversion's agreement pair and rate.
    pub fn pair_and_rate(&self) -> Option<(CurrencyPair, Rate)> {
        self.conversion.as_deref().copied()
    }

    /// The links its banks are behind (none for a payment within this network).
    pub fn route(&self) -> PaymentRoute {
        self.route.as_deref().copied().unwrap_or_default()
    }

    /// When its last step happened, if it is finished: a final status relayed and
    /// delivered to the sender, the pacs.008 delivered to the receiver, and any return
    /// and recall case delivered and closed, so that nothing about it waits in an outbox
    /// (each bank confirms deliveries in output sequence order, so an earlier message
    /// about it, like a PDNG status, was confirmed too). A later message (a return, a
    /// recall) may still come, and reopens it.
    pub fn finished_unix_ms(&self) -> Option<i64> {
        let status = self.status.as_ref().filter(|s| s.status.is_final())?;
        let mut last = self.delivered_unix_ms?.max(status.delivered_unix_ms?);
        if let Some(returned) = &self.returned {
            last = last.max(returned.delivered_unix_ms?);
        }
        if let Some(case) = &self.recall {
            let answer = case.answer.as_ref()?;
            last = last.max(case.delivered_unix_ms?).max(answer.delivered_unix_ms?);
        }
        Some(last.max(self.acknowledged_unix_ms.unwrap_or(last)))
    }
}

/// What a status report does to its payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusEffect {
    /// ACSC or ACCC: the payment settles.
    Settle,
    /// RJCT: the reservation is released.
    Release,
    /// An intermediate status: only recorded.
    Record,
}

/// The payments the hub holds in memory, each with its sequence number: its place in
/// the order the hub accepted payments (0 for the first), which the archive keeps too.
#[derive(Debug, Default)]
pub struct Tracker {
    payments: BTreeMap<Uetr, (u64, HubPayment)>,
    /// The same payments by sequence number, oldest first.
    order: BTreeMap<u64, Uetr>,
    /// Payments recorded so far: the next one's sequence number.
    recorded: u64,
}

impl Tracker {
    /// One payment, if in memory.
    pub fn get(&self, uetr: &Uetr) -> Option<&HubPayment> {
        self.payments.get(uetr).map(|(_, payment)| payment)
    }

    fn get_mut(&mut self, uetr: &Uetr) -> Option<&mut HubPayment> {
        self.payments.get_mut(uetr).map(|(_, payment)| payment)
    }

    /// Payments in memory.
    pub fn len(&self) -> usize {
        self.payments.len()
    }

    /// True when no payment is in memory.
    pub fn is_empty(&self) -> bool {
        self.payments.is_empty()
    }

    /// Every payment in memory, oldest first.
    pub fn payments(&self) -> impl Iterator<Item = &HubPayment> {
        self.sequenced().map(|(_, payment)| payment)
    }

    /// Every payment in memory with its sequence number, oldest first.
    pub fn sequenced(&self) -> impl Iterator<Item = (u64, &HubPayment)> {
        self.order.iter().map(|(seq, uetr)| (*seq, &self.payments[uetr].1))
    }

    /// Up to `limit` finished payments whose last step was before `before_unix_ms`,
    /// oldest first, copied with their sequence numbers: what the hub may archive.
    /// Looks at payments accepted before then only, so its cost is the payments it
    /// returns plus the old ones still open (few: a payment waiting on a bank).
    pub fn archivable(&self, before_unix_ms: i64, limit: usize) -> Vec<(u64, HubPayment)> {
        self.sequenced()
            .take_while(|(_, payment)| payment.submitted_unix_ms < before_unix_ms)
            .filter(|(_, payment)| payment.finished_unix_ms().is_some_and(|last| last < before_unix_ms))
            .take(limit)
            .map(|(seq, payment)| (seq, payment.clone()))
            .collect()
    }

    /// Lets go of payments whose copies in `archived` are durable in the archive, each
    /// only if it is still as archived (a message since may have changed it: then it
    /// stays, to be archived again). Returns how many left memory.
    pub fn forget_archived(&mut self, archived: &[(u64, HubPayment)]) -> usize {
        let mut forgotten = 0;
        for (seq, copy) in archived {
            if self.payments.get(&copy.uetr).is_some_and(|(s, payment)| s == seq && payment == copy) {
                self.payments.remove(&copy.uetr);
                self.order.remove(seq);
                forgotten += 1;
            }
        }
        forgotten
    }

    /// Brings an archived payment back into memory, for a message about it.
    pub fn restore(&mut self, seq: u64, payment: HubPayment) {
        assert!(seq < self.recorded, "an archived payment was recorded before");
        self.order.insert(seq, payment.uetr);
        let replaced = self.payments.insert(payment.uetr, (seq, payment));
        assert!(replaced.is_none(), "only a payment not in memory is restored");
    }

    /// Checks that a new pacs.008 does not reuse a UETR (of a payment in memory: the
    /// hub restores an archived one first).
    pub fn check_transfer(&self, transfer: &CreditTransfer) -> Result<(), String> {
        match self.get(&transfer.uetr) {
            Some(existing) => Err(format!(
                "UETR {} already identifies payment {} from {}; a new payment needs a new UETR",
                transfer.uetr, existing.message_id, existing.sender
            )),
            None => Ok(()),
        }
    }

    /// Records an accepted pacs.008 (after [`Tracker::check_transfer`]).
    pub fn record_transfer(
        &mut self,
        message_id: MessageId,
        sender: Bic,
        transfer: &CreditTransfer,
        route: PaymentRoute,
        osn: u64,
        unix_ms: i64,
    ) {
        let payment = HubPayment {
            uetr: transfer.uetr,
            message_id,
            sender,
            receiver: transfer.creditor_agent,
            amount: transfer.amount,
            instructed: transfer.instructed_amount(),
            conversion: transfer.conversion.as_ref().map(|c| {
                let pair = CurrencyPair { from: c.instructed.currency(), to: transfer.amount.currency() };
                Box::new((pair, c.rate))
            }),
            osn,
            submitted_unix_ms: unix_ms,
            acknowledged_unix_ms: None,
            delivered_unix_ms: None,
            status: None,
            returned: None,
            recall: None,
            route: (!route.is_local()).then(|| Box::new(route)),
        };
        let seq = self.recorded;
        self.recorded += 1;
        let replaced = self.payments.insert(transfer.uetr, (seq, payment));
        assert!(replaced.is_none(), "a UETR is recorded once (checked before)");
        self.order.insert(seq, transfer.uetr);
    }

    /// Checks a pacs.002 against the payment it reports on: only the payment's receiver
    /// may report, only to its sender, about the pacs.008 it received, and only once
    /// with a final status. Returns the payment and what the report does to it.
    pub fn check_status(
        &self,
        sender: Bic,
        receiver: Bic,
        report: &PaymentStatusReport,
    ) -> Result<(&HubPayment, StatusEffect), String> {
        let payment = self
            .get(&report.uetr)
            .ok_or_else(|| format!("no payment {} passed through this hub", report.uetr))?;
        if payment.receiver != sender || payment.sender != receiver {
            return Err(format!(
                "payment {} went from {} to {}: only {} may report its status, to {}",
                report.uetr, payment.sender, payment.receiver, payment.receiver, payment.sender
            ));
        }
        if payment.message_id != report.original_message_id {
            return Err(format!(
                "payment {} is message {}, not {}",
                report.uetr, payment.message_id, report.original_message_id
            ));
        }
        if let Some(done) = payment.final_status() {
            return Err(format!("payment {} was already reported {done}", report.uetr));
        }
        let effect = match report.status {
            PaymentStatus::Acsc | PaymentStatus::Accc => StatusEffect::Settle,
            PaymentStatus::Rjct => StatusEffect::Release,
            _ => StatusEffect::Record,
        };
        Ok((payment, effect))
    }

    /// Records an accepted pacs.002 (after [`Tracker::check_status`]).
    pub fn record_status(
        &mut self,
        message_id: MessageId,
        report: &PaymentStatusReport,
        osn: u64,
        unix_ms: i64,
        window_id: Option<u64>,
    ) {
        let payment = self.get_mut(&report.uetr).expect("checked before");
        payment.status = Some(StatusStep {
            message_id,
            status: report.status,
            reason: report.reason,
            reported_unix_ms: unix_ms,
            osn,
            delivered_unix_ms: None,
            window_id,
        });
    }

    /// The payment a follow-up message (pacs.004, camt.056, camt.029) is about: it must
    /// have passed through this hub under `uetr` as pacs.008 `original`, have settled and
    /// not have been returned, and the message must travel between its two banks, from
    /// `from_receiver`'s side or the sender's.
    fn settled_payment(
        &self,
        uetr: &Uetr,
        original: &MessageId,
        sender: Bic,
        receiver: Bic,
        from_receiver: bool,
        what: &str,
    ) -> Result<&HubPayment, String> {
        let payment = self.get(uetr).ok_or_else(|| format!("no payment {uetr} passed through this hub"))?;
        let (from, to) = if from_receiver {
            (payment.receiver, payment.sender)
        } else {
            (payment.sender, payment.receiver)
        };
        if (sender, receiver) != (from, to) {
            return Err(format!(
                "payment {uetr} went from {} to {}: only {from} may send its {what}, to {to}",
                payment.sender, payment.receiver
            ));
        }
        if &payment.message_id != original {
            return Err(format!("payment {uetr} is message {}, not {original}", payment.message_id));
        }
        if !payment.settled() {
            return Err(format!("payment {uetr} has not settled: only a settled payment has a {what}"));
        }
        if let Some(returned) = &payment.returned {
            return Err(format!("payment {uetr} was already returned (pacs.004 {})", returned.message_id));
        }
        Ok(payment)
    }

    /// Checks a pacs.004 against its payment: from the payment's receiver to its sender,
    /// once, of the whole settled amount and, for a converted payment, of its instructed
    /// amount at its rate (the conversion undone). Returns the payment.
    pub fn check_return(
        &self,
        sender: Bic,
        receiver: Bic,
        ret: &PaymentReturn,
    ) -> Result<&HubPayment, String> {
        let payment =
            self.settled_payment(&ret.uetr, &ret.original_message_id, sender, receiver, true, "return")?;
        if ret.returned_amount != payment.amount {
            return Err(format!(
                "payment {} settled {}: a return gives back all of it, not {}",
                ret.uetr, payment.amount, ret.returned_amount
            ));
        }
        let original = payment.pair_and_rate().map(|(_, rate)| (payment.instructed, rate));
        let returned = ret.conversion.as_ref().map(|c| (c.instructed, c.rate));
        if original != returned {
            let show = |c: Option<(Amount, Rate)>| {
                c.map_or_else(|| "no conversion".to_owned(), |(a, r)| format!("{a} at {r}"))
            };
            return Err(format!(
                "payment {} was {}: its return undoes exactly that, not {}",
                ret.uetr,
                show(original),
                show(returned)
            ));
        }
        Ok(payment)
    }

    /// Records an accepted pacs.004 (after [`Tracker::check_return`]).
    pub fn record_return(
        &mut self,
        message_id: MessageId,
        ret: &PaymentReturn,
        osn: u64,
        unix_ms: i64,
        window_id: Option<u64>,
    ) {
        let payment = self.get_mut(&ret.uetr).expect("checked before");
        payment.returned = Some(Box::new(ReturnStep {
            message_id,
            reason: ret.reason,
            returned_unix_ms: unix_ms,
            osn,
            delivered_unix_ms: None,
            window_id,
        }));
    }

    /// Checks a camt.056 against its payment: from the payment's sender to its receiver,
    /// about the whole settled amount, with no case open.
    pub fn check_recall(
        &self,
        sender: Bic,
        receiver: Bic,
        request: &CancellationRequest,
    ) -> Result<(), String> {
        let payment = self.settled_payment(
            &request.uetr,
            &request.original_message_id,
            sender,
            receiver,
            false,
            "recall",
        )?;
        if request.original_amount != payment.amount {
            return Err(format!(
                "payment {} settled {}, not {}: a recall names the original amount",
                request.uetr, payment.amount, request.original_amount
            ));
        }
        if let Some(case) = payment.recall.as_ref().filter(|c| c.answer.is_none()) {
            return Err(format!("recall case {} of payment {} is still open", case.case_id, request.uetr));
        }
        Ok(())
    }

    /// Records an accepted camt.056 (after [`Tracker::check_recall`]).
    pub fn record_recall(
        &mut self,
        message_id: MessageId,
        request: &CancellationRequest,
        osn: u64,
        unix_ms: i64,
    ) {
        let payment = self.get_mut(&request.uetr).expect("checked before");
        payment.recall = Some(Box::new(RecallCase {
            case_id: request.case_id.clone(),
            message_id,
            reason: request.reason,
            requested_unix_ms: unix_ms,
            osn,
            delivered_unix_ms: None,
            answer: None,
        }));
    }

    /// Checks a camt.029 against its case: from the payment's receiver to its sender,
    /// answering the open case's camt.056; CNCL only once the funds went back (the
    /// pacs.004 comes first), and a final answer only once.
    pub fn check_resolution(
        &self,
        sender: Bic,
        receiver: Bic,
        resolution: &ResolutionOfInvestigation,
    ) -> Result<(), String> {
        let uetr = &resolution.uetr;
        let payment = self.get(uetr).ok_or_else(|| format!("no payment {uetr} passed through this hub"))?;
        if (sender, receiver) != (payment.receiver, payment.sender) {
            return Err(format!(
                "payment {uetr} went from {} to {}: only {} may answer its recall, to {}",
                payment.sender, payment.receiver, payment.receiver, payment.sender
            ));
        }
        let case = payment.recall.as_ref().ok_or_else(|| format!("payment {uetr} has no recall case"))?;
        if case.case_id != resolution.case_id || case.message_id != resolution.original_message_id {
            return Err(format!(
                "payment {uetr}'s recall is case {} (camt.056 {}), not case {} (camt.056 {})",
                case.case_id, case.message_id, resolution.case_id, resolution.original_message_id
            ));
        }
        if let Some(answer) = &case.answer {
            return Err(format!("recall case {} was already answered {}", case.case_id, answer.status));
        }
        if resolution.status == InvestigationStatus::Cncl && payment.returned.is_none() {
            return Err(format!(
                "CNCL says the funds went back, but payment {uetr} has not been returned: send the pacs.004 first"
            ));
        }
        Ok(())
    }

    /// Records an accepted camt.029 (after [`Tracker::check_resolution`]): a final answer
    /// closes the case; PDCR only says it is being looked at.
    pub fn record_resolution(
        &mut self,
        message_id: MessageId,
        resolution: &ResolutionOfInvestigation,
        osn: u64,
        unix_ms: i64,
    ) {
        if resolution.status == InvestigationStatus::Pdcr {
            return;
        }
        let payment = self.get_mut(&resolution.uetr).expect("checked before");
        let case = payment.recall.as_mut().expect("checked before");
        case.answer = Some(RecallAnswer {
            message_id,
            status: resolution.status,
            reason: resolution.reason,
            answered_unix_ms: unix_ms,
            osn,
            delivered_unix_ms: None,
        });
    }

    /// The sender's ACK for the pacs.008 left.
    pub fn acknowledged(&mut self, uetr: &Uetr, unix_ms: i64) {
        if let Some(payment) = self.get_mut(uetr) {
            payment.acknowledged_unix_ms.get_or_insert(unix_ms);
        }
    }

    /// `participant` confirmed it processed the message with output sequence `osn`
    /// about payment `uetr`: the pacs.008 or a camt.056 (receiver), the status report,
    /// the return or a camt.029 (sender).
    pub fn delivered(&mut self, uetr: &Uetr, participant: Bic, osn: u64, unix_ms: i64) {
        let Some(payment) = self.get_mut(uetr) else { return };
        // A bank behind a link is delivered to when the hub across the link took it.
        let route = payment.route();
        let (sender, receiver) =
            (route.sender_link.unwrap_or(payment.sender), route.receiver_link.unwrap_or(payment.receiver));
        let mut slots: Vec<(u64, &mut Option<i64>)> = Vec::new();
        if participant == receiver {
            slots.push((payment.osn, &mut payment.delivered_unix_ms));
            if let Some(case) = payment.recall.as_mut() {
                slots.push((case.osn, &mut case.delivered_unix_ms));
            }
        } else if participant == sender {
            if let Some(status) = payment.status.as_mut() {
                slots.push((status.osn, &mut status.delivered_unix_ms));
            }
            if let Some(returned) = payment.returned.as_mut() {
                slots.push((returned.osn, &mut returned.delivered_unix_ms));
            }
            if let Some(answer) = payment.recall.as_mut().and_then(|c| c.answer.as_mut()) {
                slots.push((answer.osn, &mut answer.delivered_unix_ms));
            }
        }
        if let Some((_, delivered)) = slots.into_iter().find(|(slot_osn, _)| *slot_osn == osn) {
            delivered.get_or_insert(unix_ms);
        }
    }
}

/// `participant`'s settlement statement in `currency` over `[from, to)` as the hub's
/// journal has it: each settled payment credited to its receiver and debited to its
/// sender when the hub settled it (the mirror of the bank's settlement account).
pub fn settlement_statement<'a>(
    payments: impl IntoIterator<Item = &'a HubPayment>,
    participant: Bic,
    currency: crate::model::Currency,
    from_time_unix_ms: i64,
    to_time_unix_ms: i64,
) -> crate::model::Statement {
    use crate::model::{EntryDirection, StatementEntry};
    // Each settled payment, and each return, moves the participant's position once.
    let mut moves: Vec<(i64, &HubPayment, Amount, EntryDirection)> = Vec::new();
    for p in payments.into_iter().filter(|p| p.settled()) {
        let settled_unix_ms = p.status.as_ref().map_or(0, |s| s.reported_unix_ms);
        let legs = [
            (p.sender, p.instructed, EntryDirection::Dbit, EntryDirection::Crdt),
            (p.receiver, p.amount, EntryDirection::Crdt, EntryDirection::Dbit),
        ];
        for (party, amount, paid, returned) in legs {
            if party != participant || amount.currency() != currency {
                continue;
            }
            moves.push((settled_unix_ms, p, amount, paid));
            if let Some(step) = &p.returned {
                moves.push((step.returned_unix_ms, p, amount, returned));
            }
        }
    }
    moves.sort_by_key(|(unix_ms, ..)| *unix_ms);
    let entries =
        moves.into_iter().enumerate().map(|(index, (unix_ms, p, amount, direction))| StatementEntry {
            entry_reference: format!("E{index}"),
            uetr: Some(p.uetr),
            message_id: Some(p.message_id.clone()),
            amount,
            direction,
            booking_time_unix_ms: unix_ms,
        });
    let account = format!("{participant}-{currency}");
    crate::model::Statement::over_period(&account, currency, from_time_unix_ms, to_time_unix_ms, entries)
}
