//! A bank's state in memory, and the record of every change to it for the journal.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::store::{BankChange, Cursor, OutboxEntry, RecoveredBank};
use super::{Direction, Payment};
use crate::ledger::{AccountId, Ledger};
use crate::model::{Bic, MessageId, Uetr};
use crate::model::{PaymentStatus, ReasonCode};
use crate::store::{GroupCommit, Ticket};

/// Finished payments a watcher may fall behind by before it misses some.
pub const PAYMENT_EVENTS_BUFFERED: usize = 65_536;

/// A payment that became final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentEvent {
    /// Which.
    pub uetr: Uetr,
    /// Which way.
    pub direction: Direction,
    /// ACSC, ACCC or RJCT.
    pub status: PaymentStatus,
    /// Why, when rejected.
    pub reason: Option<ReasonCode>,
}

/// A message waiting for the hub's ACK.
pub(super) struct Outgoing {
    pub(super) entry: OutboxEntry,
    /// Put on a session at least once: a resend is flagged as a possible duplicate.
    pub(super) sent_before: bool,
    /// Sent only once durable.
    pub(super) ticket: Ticket,
}

/// Everything a bank knows. Mutations go through methods that record the change, and
/// [`BankState::commit`] journals every change since the last commit.
pub(super) struct BankState {
    pub(super) ledger: Ledger,
    payments: HashMap<Uetr, Payment>,
    /// Payment UETRs in the order the bank learnt of them.
    payment_order: Vec<Uetr>,
    /// Messages received and processed, by (sender, message id): the duplicate check.
    processed: HashSet<(Bic, MessageId)>,
    pub(super) outbox: BTreeMap<u64, Outgoing>,
    /// Input sequence numbers from here on have not been put on the current session.
    pub(super) unsent_from: u64,
    /// The input sequence number the hub shed (over this bank's rate), until the hub
    /// answers it for real: later sheds of the same burst are ignored.
    pub(super) shed_at: Option<u64>,
    /// Nothing is sent before this (the hub asked to wait after shedding).
    pub(super) resume_at: Option<tokio::time::Instant>,
    pub(super) cursor: Cursor,
    changes: Vec<BankChange>,
    /// When each outgoing payment not yet final was ordered (for its latency metric).
    started: HashMap<Uetr, std::time::Instant>,
    /// Payments that became final since the last commit; told once it is durable.
    finished: Vec<PaymentEvent>,
    /// Where finished payments are told (with the ticket that makes them durable).
    events: tokio::sync::broadcast::Sender<(PaymentEvent, Ticket)>,
    /// Outbox entries queued since the last commit: they get its ticket.
    outbox_uncommitted: Vec<u64>,
    /// When each posting of the ledger was booked (Unix ms), in the same order.
    posting_times: Vec<i64>,
    accounts_journalled: usize,
    postings_journalled: usize,
    cursor_journalled: Cursor,
}

impl BankState {
    /// The state a store holds: accounts opened, postings replayed in order (each must
    /// apply, or the store is corrupt), payments, duplicates and outbox restored.
    pub(super) fn recover(recovered: RecoveredBank) -> Result<Self, String> {
        let ledger = recovered.ledger()?;
        let mut state = Self {
            accounts_journalled: ledger.opening_order().len(),
            postings_journalled: ledger.postings().len(),
            posting_times: recovered.posting_times.clone(),
            ledger,
            payments: HashMap::new(),
            payment_order: Vec::new(),
            processed: recovered.processed.into_iter().collect(),
            outbox: BTreeMap::new(),
            unsent_from: 0,
            shed_at: None,
            resume_at: None,
            cursor: recovered.cursor,
            changes: Vec::new(),
            finished: Vec::new(),
            started: HashMap::new(),
            events: tokio::sync::broadcast::channel(PAYMENT_EVENTS_BUFFERED).0,
            outbox_uncommitted: Vec::new(),
            cursor_journalled: recovered.cursor,
        };
        for payment in recovered.payments {
            state.payment_order.push(payment.uetr);
            state.payments.insert(payment.uetr, payment);
        }
        for entry in recovered.outbox {
            // It may have reached the hub before the restart: a resend is a possible duplicate.
            let outgoing = Outgoing { entry, sent_before: true, ticket: Ticket::DURABLE };
            state.outbox.insert(outgoing.entry.isn, outgoing);
        }
        Ok(state)
    }

    pub(super) fn payment(&self, uetr: &Uetr) -> Option<&Payment> {
        self.payments.get(uetr)
    }

    /// Every payment, oldest first.
    pub(super) fn payments(&self) -> impl Iterator<Item = &Payment> {
        self.payment_order.iter().map(|uetr| &self.payments[uetr])
    }

    /// When each posting was booked, in the ledger's order.
    pub(super) fn posting_times(&self) -> &[i64] {
        &self.posting_times
    }

    /// Finished payments from now on, each with the ticket after which it is durable.
    pub(super) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<(PaymentEvent, Ticket)> {
        self.events.subscribe()
    }

    /// Records a new or changed payment.
    pub(super) fn put_payment(&mut self, payment: Payment) {
        if payment.direction == Direction::Outgoing && payment.status == PaymentStatus::Pdng {
            self.started.insert(payment.uetr, std::time::Instant::now());
        }
        if payment.status.is_final() {
            let direction = if payment.direction == Direction::Outgoing { "outgoing" } else { "incoming" };
            metrics::counter!(crate::metrics::BANK_PAYMENTS, "direction" => direction, "status" => payment.status.code())
                .increment(1);
            if let Some(started) = self.started.remove(&payment.uetr) {
                metrics::histogram!(crate::metrics::BANK_PAYMENT_LATENCY)
                    .record(started.elapsed().as_secs_f64());
            }
            self.finished.push(PaymentEvent {
                uetr: payment.uetr,
                direction: payment.direction,
                status: payment.status,
                reason: payment.reason,
            });
        }
        if !self.payments.contains_key(&payment.uetr) {
            self.payment_order.push(payment.uetr);
        }
        self.changes.push(BankChange::Payment(payment.clone()));
        self.payments.insert(payment.uetr, payment);
    }

    /// Records a processed message; false if it was processed before.
    pub(super) fn mark_processed(&mut self, sender: Bic, message_id: &MessageId) -> bool {
        let fresh = self.processed.insert((sender, message_id.clone()));
        if fresh {
            self.changes.push(BankChange::Processed(sender, message_id.clone()));
        }
        fresh
    }

    /// Records a changed account (opened accounts and postings are found by commit).
    pub(super) fn account_changed(&mut self, id: &AccountId) {
        if let Some(account) = self.ledger.account(id) {
            self.changes.push(BankChange::Account(account.clone()));
        }
    }

    /// Queues a message for the hub; it is sent once `commit`'s ticket is durable.
    pub(super) fn outbox_put(&mut self, entry: OutboxEntry) {
        self.changes.push(BankChange::OutboxPut(entry.clone()));
        self.outbox_uncommitted.push(entry.isn);
        // The real ticket comes with the commit; until then it is never durable.
        let outgoing = Outgoing { entry, sent_before: false, ticket: Ticket(u64::MAX) };
        self.outbox.insert(outgoing.entry.isn, outgoing);
    }

    /// The hub answered `isn` for real (an ACK or a refusal): if it was the one it shed,
    /// the shedding is over.
    pub(super) fn answered(&mut self, isn: u64) {
        if self.shed_at == Some(isn) {
            self.shed_at = None;
            self.resume_at = None;
        }
    }

    /// Takes a message the hub answered out of the outbox.
    pub(super) fn outbox_remove(&mut self, isn: u64) -> Option<Outgoing> {
        let removed = self.outbox.remove(&isn);
        if removed.is_some() {
            self.changes.push(BankChange::OutboxRemove(isn));
        }
        removed
    }

    /// Journals every change since the last commit; the returned ticket is durable once
    /// they all are (and everything before them).
    pub(super) fn commit(&mut self, journal: &GroupCommit<BankChange>) -> Ticket {
        // Accounts first: the changes after them may refer to them.
        let mut changes: Vec<BankChange> = self.ledger.opening_order()[self.accounts_journalled..]
            .iter()
            .map(|id| BankChange::Account(self.ledger.account(id).expect("opened accounts exist").clone()))
            .collect();
        changes.append(&mut self.changes);
        self.accounts_journalled = self.ledger.opening_order().len();
        let booked_unix_ms = super::unix_ms_now();
        for posting in &self.ledger.postings()[self.postings_journalled..] {
            changes.push(BankChange::Posting(posting.clone(), booked_unix_ms));
            self.posting_times.push(booked_unix_ms);
        }
        self.postings_journalled = self.ledger.postings().len();
        if self.cursor != self.cursor_journalled {
            changes.push(BankChange::Cursor(self.cursor));
            self.cursor_journalled = self.cursor;
        }
        if changes.is_empty() {
            return journal.appended();
        }
        let ticket = journal.append(changes);
        metrics::gauge!(crate::metrics::BANK_OUTBOX).set(self.outbox.len() as f64);
        for event in self.finished.drain(..) {
            // Nobody listening is fine: the events are for watchers, not the record.
            let _ = self.events.send((event, ticket));
        }
        for isn in self.outbox_uncommitted.drain(..) {
            if let Some(outgoing) = self.outbox.get_mut(&isn) {
                outgoing.ticket = ticket;
            }
        }
        ticket
    }
}
