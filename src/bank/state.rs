//! A bank's state in memory, and the record of every change to it for the journal.
//!
//! Memory stays bounded under steady load: what is finished leaves it a retention
//! ([`super::BankConfig::retention`]) after its last change, and the store answers for
//! it from then on (`store::StoreReader`). A periodic sweep ([`BankState::sweep`]) does
//! it in two steps: it marks what may leave and journals the retired payments' index
//! rows; once that append is durable (and with it every change before it), the next
//! sweep drops what it marked. So a payment, a posting or a processed message leaves
//! memory only once the store durably holds its latest version.
//!
//! - Payments: final (settled or rejected, told to watchers), no return or recall case
//!   open, nothing in the outbox about them, unchanged for a retention. Whatever needs
//!   one again (a return, a recall, a message about it, an operator's read) reads it back
//!   ([`BankState::load_payment`]); one brought back into memory leaves again later.
//! - Postings: balances stay (the hot path checks them); postings booked more than a
//!   retention ago leave, and statements read them from the store.
//! - Processed messages (the duplicate check): see [`BankState::already_processed`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use super::store::{
    BankChange, Cursor, KeptMessage, OutboxEntry, RecoveredBank, RetiredPayment, StoreReader,
};
use super::{Direction, Payment, ReturnState};
use crate::clock::Clock;
use crate::ledger::{AccountId, Ledger};
use crate::model::{Bic, InvestigationStatus, MessageId, MessageKey, Uetr};
use crate::model::{PaymentStatus, ReasonCode};
use crate::store::{GroupCommit, StoreError, Ticket};

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

/// A payment in memory, with the store keys of its first version (its place among the
/// bank's payments) and of its latest.
struct HeldPayment {
    payment: Payment,
    first_seq: i64,
    latest_seq: i64,
}

/// What one sweep marked to leave memory, once `ticket` is durable.
struct Retiring {
    ticket: Ticket,
    /// Payments, each as it was when marked (it stays if it changed since).
    payments: Vec<RetiredPayment>,
    /// How many of the oldest processed messages (all created before `processed_horizon_unix_ms`).
    processed: usize,
    processed_horizon_unix_ms: i64,
    /// How many of the oldest postings held.
    postings: usize,
}

/// How much a bank holds in memory (see [`super::Bank::held`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// Payments.
    pub payments: usize,
    /// Ledger postings.
    pub postings: usize,
    /// Processed messages kept for the duplicate check.
    pub processed: usize,
}

/// Everything a bank knows. Mutations go through methods that record the change, and
/// [`BankState::commit`] journals every change since the last commit.
pub(super) struct BankState {
    pub(super) ledger: Ledger,
    /// The payments held in memory (see the module's documentation for which).
    payments: BTreeMap<Uetr, HeldPayment>,
    /// Held payments' UETRs by the key of their first version: the order the bank learnt of them.
    payment_order: BTreeMap<i64, Uetr>,
    /// Key of the latest payment version recorded (keys increase by one).
    payment_seq_last: i64,
    /// Held payments by when they last changed (or came back), oldest first, with the key
    /// of their version then: candidates for retirement. An entry whose payment changed
    /// since is stale and skipped.
    aging: VecDeque<(Instant, Uetr, i64)>,
    /// Messages received and processed, by the key of their sender and message id (the
    /// hub's duplicate check's key: 16 bytes, no allocation): the duplicate check, holding
    /// every message created at or after `processed_horizon_unix_ms`.
    processed: BTreeSet<MessageKey>,
    /// The same messages in the order they were processed, with their creation times.
    processed_order: VecDeque<(i64, MessageKey)>,
    /// Messages created before this (Unix ms) may have left `processed`: the store knows.
    processed_horizon_unix_ms: i64,
    /// How long finished things stay in memory.
    retention: Duration,
    /// The time of day (booking times, the retention's cutoff).
    clock: Clock,
    /// What the last sweep marked to leave memory, until its append is durable.
    retiring: Option<Retiring>,
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
    /// When each posting the ledger holds was booked (Unix ms), in the same order.
    posting_times: Vec<i64>,
    /// When the latest posting was booked: bookings never go back in time (the store
    /// finds postings by time with a binary search).
    booked_last_unix_ms: i64,
    accounts_journalled: usize,
    /// Postings journalled, forgotten ones included.
    postings_journalled: usize,
    cursor_journalled: Cursor,
}

/// A payment that may leave memory as far as its own state goes: final, and no return
/// or recall case open.
fn retirable(payment: &Payment) -> bool {
    payment.status.is_final()
        && !matches!(payment.return_state, ReturnState::Returning { .. })
        && payment.recall.as_ref().is_none_or(|r| r.status != InvestigationStatus::Pdcr)
}

impl BankState {
    /// The state a store holds: accounts opened, postings replayed in order (each must
    /// apply, or the store is corrupt), the payments, processed messages and postings a
    /// running bank holds (`BankStore::open`), and the outbox.
    pub(super) fn recover(
        mut recovered: RecoveredBank,
        retention: Duration,
        clock: Clock,
    ) -> Result<Self, String> {
        let ledger = std::mem::take(&mut recovered.ledger);
        assert_eq!(recovered.posting_times.len(), ledger.postings().len(), "a booking time per posting held");
        let now = Instant::now();
        let mut state = Self {
            accounts_journalled: ledger.opening_order().len(),
            postings_journalled: ledger.posting_count(),
            booked_last_unix_ms: recovered
                .posting_times
                .last()
                .copied()
                .unwrap_or(recovered.processed_horizon_unix_ms),
            posting_times: recovered.posting_times,
            ledger,
            payments: BTreeMap::new(),
            payment_order: BTreeMap::new(),
            payment_seq_last: recovered.payment_seq_max,
            aging: VecDeque::new(),
            processed: BTreeSet::new(),
            processed_order: VecDeque::new(),
            processed_horizon_unix_ms: recovered.processed_horizon_unix_ms,
            retention,
            clock,
            retiring: None,
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
        for (payment, (first_seq, latest_seq)) in
            recovered.payments.into_iter().zip(recovered.payment_versions)
        {
            state.hold(payment, first_seq, latest_seq, now);
        }
        for (sender, message_id, created_unix_ms) in recovered.processed {
            let key = MessageKey::new(sender, &message_id);
            state.processed.insert(key);
            state.processed_order.push_back((created_unix_ms, key));
        }
        for entry in recovered.outbox {
            // It may have reached the hub before the restart: a resend is a possible duplicate.
            let outgoing = Outgoing { entry, sent_before: true, ticket: Ticket::DURABLE };
            state.outbox.insert(outgoing.entry.isn, outgoing);
        }
        Ok(state)
    }

    /// Puts a payment in memory (its versions' keys known) and starts its retention.
    fn hold(&mut self, payment: Payment, first_seq: i64, latest_seq: i64, now: Instant) {
        let uetr = payment.uetr;
        self.payment_order.insert(first_seq, uetr);
        self.aging.push_back((now, uetr, latest_seq));
        self.payments.insert(uetr, HeldPayment { payment, first_seq, latest_seq });
    }

    /// The payment, if it is in memory.
    pub(super) fn payment(&self, uetr: &Uetr) -> Option<&Payment> {
        self.payments.get(uetr).map(|held| &held.payment)
    }

    /// The payment held in memory, with the key of its first version.
    pub(super) fn payment_and_key(&self, uetr: &Uetr) -> Option<(&Payment, i64)> {
        self.payments.get(uetr).map(|held| (&held.payment, held.first_seq))
    }

    /// The payment, brought back into memory from the store if it had left it.
    pub(super) fn load_payment(
        &mut self,
        reader: &StoreReader,
        uetr: Uetr,
    ) -> Result<Option<&Payment>, StoreError> {
        if !self.payments.contains_key(&uetr)
            && let Some(stored) = reader.retired_payment(uetr)?
        {
            self.hold(stored.payment, stored.first_seq, stored.latest_seq, Instant::now());
        }
        Ok(self.payment(&uetr))
    }

    /// Every payment in memory, oldest first, with the key of its first version.
    pub(super) fn payments(&self) -> impl Iterator<Item = (i64, &Payment)> {
        self.payment_order.iter().map(|(first_seq, uetr)| (*first_seq, &self.payments[uetr].payment))
    }

    /// When each posting the ledger holds was booked, in the ledger's order.
    pub(super) fn posting_times(&self) -> &[i64] {
        &self.posting_times
    }

    /// How much is held in memory.
    pub(super) fn held(&self) -> Held {
        Held {
            payments: self.payments.len(),
            postings: self.ledger.postings().len(),
            processed: self.processed.len(),
        }
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
        self.payment_seq_last += 1;
        let seq = self.payment_seq_last;
        self.changes.push(BankChange::Payment(payment.clone(), seq));
        self.aging.push_back((Instant::now(), payment.uetr, seq));
        match self.payments.get_mut(&payment.uetr) {
            Some(held) => {
                held.payment = payment;
                held.latest_seq = seq;
            }
            None => {
                self.payment_order.insert(seq, payment.uetr);
                self.payments.insert(payment.uetr, HeldPayment { payment, first_seq: seq, latest_seq: seq });
            }
        }
    }

    /// Whether message `message_id` of `sender`, created at `created_unix_ms`, was
    /// processed before. Changes nothing.
    ///
    /// Beyond the session's cursor (which skips output sequence numbers already
    /// processed), this is what stops the same message applied twice under another
    /// sequence number: a hub that delivers a message again as new (the bank does not
    /// trust the hub for content; an honest hub refuses a second submission of a message).
    /// Memory holds every message created at or after the horizon (a retention ago, never
    /// moving back); only a message created before it, which a replay or a delivery held
    /// long at the hub for an offline bank must be, is looked up in the store, by its
    /// creation time (`processed_by_creation`). So the answer is exact, memory holds about
    /// a retention's worth of messages, and the store is read only for old messages.
    pub(super) fn already_processed(
        &self,
        reader: &StoreReader,
        sender: Bic,
        message_id: &MessageId,
        created_unix_ms: i64,
    ) -> Result<bool, StoreError> {
        if self.processed.contains(&MessageKey::new(sender, message_id)) {
            return Ok(true);
        }
        if created_unix_ms >= self.processed_horizon_unix_ms {
            return Ok(false);
        }
        reader.processed(sender, message_id, created_unix_ms)
    }

    /// Records a processed message, which [`BankState::already_processed`] found fresh.
    pub(super) fn record_processed(&mut self, sender: Bic, message_id: &MessageId, created_unix_ms: i64) {
        let key = MessageKey::new(sender, message_id);
        let fresh = self.processed.insert(key);
        assert!(fresh, "message {message_id} of {sender} is processed once");
        self.processed_order.push_back((created_unix_ms, key));
        self.changes.push(BankChange::Processed(sender, message_id.clone(), created_unix_ms));
    }

    /// Records a changed account (opened accounts and postings are found by commit).
    pub(super) fn account_changed(&mut self, id: &AccountId) {
        if let Some(account) = self.ledger.account(id) {
            self.changes.push(BankChange::Account(account.clone()));
        }
    }

    /// Keeps a message of payment `uetr`, sent or received, for its export (filed under
    /// its payment when committed).
    pub(super) fn keep_message(&mut self, uetr: Uetr, sent: bool, envelope: crate::pb::SignedEnvelope) {
        self.changes.push(BankChange::Message(KeptMessage { uetr, payment: None, sent, envelope }));
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
        // A kept message is filed under its payment, which by now holds the change that
        // came with the message (see `KeptMessage::payment`).
        for change in &mut self.changes {
            if let BankChange::Message(kept) = change
                && kept.payment.is_none()
            {
                kept.payment = self.payments.get(&kept.uetr).map(|held| held.first_seq);
            }
        }
        changes.append(&mut self.changes);
        self.accounts_journalled = self.ledger.opening_order().len();
        let booked_unix_ms = self.clock.unix_ms().max(self.booked_last_unix_ms);
        self.booked_last_unix_ms = booked_unix_ms;
        let first_unjournalled = self.postings_journalled - self.ledger.postings_forgotten();
        for (offset, posting) in self.ledger.postings()[first_unjournalled..].iter().enumerate() {
            let number = self.postings_journalled + offset;
            changes.push(BankChange::Posting { posting: posting.clone(), number, booked_unix_ms });
            self.posting_times.push(booked_unix_ms);
        }
        self.postings_journalled = self.ledger.posting_count();
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

    /// Moves finished things out of memory (see the module's documentation): drops what
    /// the last sweep marked once the derived state holds its append (the store answers
    /// for it from there), then marks what has been finished for a retention and journals
    /// the retired payments' index rows.
    pub(super) fn sweep(&mut self, journal: &GroupCommit<BankChange>) {
        if self.retiring.as_ref().is_some_and(|retiring| retiring.ticket > journal.applied()) {
            return;
        }
        // Payments a message waiting in the outbox is about stay in memory.
        let in_outbox: HashSet<Uetr> = self.outbox.values().filter_map(|o| o.entry.uetr).collect();
        if let Some(retiring) = self.retiring.take() {
            self.drop_retired(retiring, &in_outbox);
        }
        self.mark_retiring(journal, &in_outbox);
    }

    fn drop_retired(&mut self, retiring: Retiring, in_outbox: &HashSet<Uetr>) {
        for retired in &retiring.payments {
            // One that changed since it was marked stays (its latest version may not be
            // durable), and so does one a message in the outbox is about.
            if self.payments.get(&retired.uetr).is_some_and(|held| held.latest_seq == retired.latest_seq)
                && !in_outbox.contains(&retired.uetr)
            {
                let held = self.payments.remove(&retired.uetr).expect("checked");
                self.payment_order.remove(&held.first_seq);
            }
        }
        for (_, key) in self.processed_order.drain(..retiring.processed) {
            self.processed.remove(&key);
        }
        self.processed_horizon_unix_ms =
            self.processed_horizon_unix_ms.max(retiring.processed_horizon_unix_ms);
        self.ledger.forget_postings(retiring.postings);
        self.posting_times.drain(..retiring.postings);
        let held = self.held();
        metrics::gauge!(crate::metrics::BANK_HELD_PAYMENTS).set(held.payments as f64);
        metrics::gauge!(crate::metrics::BANK_HELD_POSTINGS).set(held.postings as f64);
        metrics::gauge!(crate::metrics::BANK_HELD_PROCESSED).set(held.processed as f64);
    }

    fn mark_retiring(&mut self, journal: &GroupCommit<BankChange>, in_outbox: &HashSet<Uetr>) {
        let now = Instant::now();
        let Some(cutoff) = now.checked_sub(self.retention) else { return };
        let retention_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff_unix_ms = self.clock.unix_ms().saturating_sub(retention_ms);
        let mut payments = Vec::new();
        let mut look_again = Vec::new();
        while let Some(&(changed, uetr, seq)) = self.aging.front() {
            if changed > cutoff {
                break;
            }
            self.aging.pop_front();
            let Some(held) = self.payments.get(&uetr).filter(|held| held.latest_seq == seq) else { continue };
            if retirable(&held.payment) && !in_outbox.contains(&uetr) {
                payments.push(RetiredPayment { uetr, first_seq: held.first_seq, latest_seq: seq });
            } else {
                // Not finished yet: a change will queue it again, but a message waiting in
                // the outbox does not, so it is looked at again a retention from now.
                look_again.push((now, uetr, seq));
            }
        }
        self.aging.extend(look_again);
        let horizon = cutoff_unix_ms.max(self.processed_horizon_unix_ms);
        let processed = self.processed_order.iter().take_while(|(created, ..)| *created < horizon).count();
        let postings = self.posting_times.iter().take_while(|booked| **booked < cutoff_unix_ms).count();
        if payments.is_empty() && processed == 0 && postings == 0 {
            return;
        }
        if !payments.is_empty() {
            self.changes.push(BankChange::Retired(payments.clone()));
        }
        // Durable once every change before it is: the marked things' latest versions too.
        let ticket = self.commit(journal);
        self.retiring =
            Some(Retiring { ticket, payments, processed, processed_horizon_unix_ms: horizon, postings });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::store::BankStore;

    fn open(dir: &std::path::Path, retention: Duration) -> (BankState, GroupCommit<BankChange>, StoreReader) {
        let bic = Bic::parse("BANKRUMMXXX").unwrap();
        let hold_since_unix_ms = crate::clock::unix_ms_now() - retention.as_millis() as i64;
        let (writer, derived, recovered) = BankStore::open(dir, bic, hold_since_unix_ms).unwrap();
        let reader = StoreReader::open(dir).unwrap();
        (
            BankState::recover(recovered, retention, Clock::System).unwrap(),
            GroupCommit::start_with(writer, derived, "bank"),
            reader,
        )
    }

    fn wait_durable(journal: &GroupCommit<BankChange>, ticket: Ticket) {
        while journal.durable() < ticket {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn wait_applied(journal: &GroupCommit<BankChange>, ticket: Ticket) {
        while journal.applied() < ticket {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The duplicate check stays exact once a processed message left memory (DESIGN.md,
    /// "No payment is applied twice"): a message created before the horizon is found in
    /// the store, after the sweep and after a restart, which rebuilds the same bounded set.
    #[test]
    fn a_processed_message_that_left_memory_is_still_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Duration::from_millis(20);
        let sender = Bic::parse("BANKIRTHXXX").unwrap();
        let (old, other) = (MessageId::generate(), MessageId::generate());
        // Delivered late (held at the hub while the bank was offline): created a minute ago.
        let created_unix_ms = crate::clock::unix_ms_now() - 60_000;
        {
            let (mut state, journal, reader) = open(dir.path(), retention);
            assert!(!state.already_processed(&reader, sender, &old, created_unix_ms).unwrap());
            state.record_processed(sender, &old, created_unix_ms);
            let ticket = state.commit(&journal);
            wait_durable(&journal, ticket);
            state.sweep(&journal);
            assert_eq!(state.held().processed, 1, "marked, not dropped before the store holds its append");
            // Held until the derived state (which the reader asks) holds the append.
            wait_applied(&journal, journal.appended());
            state.sweep(&journal);
            assert_eq!(state.held().processed, 0, "dropped once the store's derived state holds it");
            assert!(state.already_processed(&reader, sender, &old, created_unix_ms).unwrap(), "in the store");
            assert!(!state.already_processed(&reader, sender, &other, created_unix_ms).unwrap());
        }
        let (state, _journal, reader) = open(dir.path(), retention);
        assert_eq!(state.held().processed, 0, "a restart holds nothing older than the retention");
        assert!(state.already_processed(&reader, sender, &old, created_unix_ms).unwrap());
        assert!(!state.already_processed(&reader, sender, &other, created_unix_ms).unwrap());
    }
}
