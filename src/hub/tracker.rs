//! Every payment the hub relayed, by UETR, with the time of each step: what `corridor
//! track` shows (like a gpi tracker) and what the reconciler matches banks against.
//! Pure: times come from the caller.

use std::collections::HashMap;

use crate::model::{
    Amount, Bic, CreditTransfer, MessageId, PaymentStatus, PaymentStatusReport, ReasonCode, Uetr,
};

/// A payment as the hub saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubPayment {
    /// Its UETR.
    pub uetr: Uetr,
    /// Message id of its pacs.008.
    pub message_id: MessageId,
    /// Debtor agent: the sender of the pacs.008.
    pub sender: Bic,
    /// Creditor agent.
    pub receiver: Bic,
    /// Interbank settlement amount.
    pub amount: Amount,
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
}

/// The receiver's pacs.002 for a payment, as the hub relayed it.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Every payment the hub knows, in the order it accepted them.
#[derive(Debug, Default)]
pub struct Tracker {
    payments: HashMap<Uetr, HubPayment>,
    order: Vec<Uetr>,
}

impl Tracker {
    /// One payment.
    pub fn get(&self, uetr: &Uetr) -> Option<&HubPayment> {
        self.payments.get(uetr)
    }

    /// Every payment, oldest first.
    pub fn payments(&self) -> impl Iterator<Item = &HubPayment> {
        self.order.iter().map(|uetr| &self.payments[uetr])
    }

    /// Checks that a new pacs.008 does not reuse a UETR.
    pub fn check_transfer(&self, transfer: &CreditTransfer) -> Result<(), String> {
        match self.payments.get(&transfer.uetr) {
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
        osn: u64,
        unix_ms: i64,
    ) {
        let payment = HubPayment {
            uetr: transfer.uetr,
            message_id,
            sender,
            receiver: transfer.creditor_agent,
            amount: transfer.amount,
            osn,
            submitted_unix_ms: unix_ms,
            acknowledged_unix_ms: None,
            delivered_unix_ms: None,
            status: None,
        };
        let replaced = self.payments.insert(transfer.uetr, payment);
        assert!(replaced.is_none(), "a UETR is recorded once (checked before)");
        self.order.push(transfer.uetr);
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
            .payments
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
        let payment = self.payments.get_mut(&report.uetr).expect("checked before");
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

    /// The sender's ACK for the pacs.008 left.
    pub fn acknowledged(&mut self, uetr: &Uetr, unix_ms: i64) {
        if let Some(payment) = self.payments.get_mut(uetr) {
            payment.acknowledged_unix_ms.get_or_insert(unix_ms);
        }
    }

    /// `participant` confirmed it processed the message with output sequence `osn`
    /// about payment `uetr`: the pacs.008 (receiver) or its status report (sender).
    pub fn delivered(&mut self, uetr: &Uetr, participant: Bic, osn: u64, unix_ms: i64) {
        let Some(payment) = self.payments.get_mut(uetr) else { return };
        if participant == payment.receiver && osn == payment.osn {
            payment.delivered_unix_ms.get_or_insert(unix_ms);
        } else if participant == payment.sender
            && let Some(status) = payment.status.as_mut().filter(|s| s.osn == osn)
        {
            status.delivered_unix_ms.get_or_insert(unix_ms);
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
    let mut settled: Vec<&HubPayment> = payments
        .into_iter()
        .filter(|p| p.settled() && p.amount.currency() == currency)
        .filter(|p| p.sender == participant || p.receiver == participant)
        .collect();
    let settled_unix_ms = |p: &HubPayment| p.status.as_ref().map_or(0, |s| s.reported_unix_ms);
    settled.sort_by_key(|p| settled_unix_ms(p));
    let entries = settled.into_iter().enumerate().map(|(index, p)| StatementEntry {
        entry_reference: format!("E{index}"),
        uetr: Some(p.uetr),
        message_id: Some(p.message_id.clone()),
        amount: p.amount,
        direction: if p.receiver == participant { EntryDirection::Crdt } else { EntryDirection::Dbit },
        booking_time_unix_ms: settled_unix_ms(p),
    });
    let account = format!("{participant}-{currency}");
    crate::model::Statement::over_period(&account, currency, from_time_unix_ms, to_time_unix_ms, entries)
}
