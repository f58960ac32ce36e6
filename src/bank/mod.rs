//! A bank node: its ledger, its payments, and its side of the session with the hub.
//!
//! [`Bank`] holds the logic without the network: an operator's payment becomes a
//! booked, signed pacs.008 in the outbox (`operator`); the hub's ACK, NAK and
//! deliveries move payments along and book every step (`inbound`). Every change is
//! journalled ([`store`]) and nothing leaves the bank before it is durable.
//! `session` keeps the bank connected to the hub, one of several it may be given
//! ([`hubs`]); `service` serves the operator API.

mod cases;
pub mod hubs;
mod inbound;
mod iso_edge;
mod ledger_book;
mod operator;
mod service;
mod session;
mod state;
pub mod statement;
pub mod store;

pub use hubs::HubUrls;
pub use iso_edge::ExportedMessage;
pub use ledger_book::{SYSTEM_ACCOUNT_PREFIX, system_account};
pub use operator::{PaymentOrder, QuoteOffer};
pub use service::{BankServer, SUBMIT_STREAM_WINDOW, run};
pub use session::run_session;
pub use store::{BankChange, BankStore, RecoveredBank};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use thiserror::Error;
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::crypto::SigningIdentity;
use crate::directory::{Credentials, Directory};
use crate::ledger::{Account, LedgerError};
use crate::model::*;
use crate::store::{GroupCommit, StoreError, Ticket};
use state::BankState;
pub use state::{Held, PaymentEvent};
use store::StoreReader;

/// Default time a finished payment, a posting or a processed message stays in a bank's
/// memory after its last change; the store answers for it afterwards.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest retention a bank accepts: memory grows with it (by the payments of that long).
pub const RETENTION_MAX: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A bank node's settings, each explicit.
#[derive(Clone, Debug)]
pub struct BankConfig {
    /// How long a finished payment, a posting or a processed message stays in memory
    /// after its last change. Memory holds about this long's worth of payments.
    pub retention: std::time::Duration,
    /// Where the bank reads the time of day (creation times, booking times, retention):
    /// the system's, unless a test moves it.
    pub clock: Clock,
}

impl Default for BankConfig {
    fn default() -> Self {
        Self { retention: RETENTION, clock: Clock::System }
    }
}

impl BankConfig {
    /// Checks that every setting is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.retention < std::time::Duration::from_millis(1) || self.retention > RETENTION_MAX {
            return Err(format!(
                "the retention must be between 1 ms and {} hours (got {} ms)",
                RETENTION_MAX.as_secs() / 3600,
                self.retention.as_millis()
            ));
        }
        Ok(())
    }

    /// How often the bank looks for what may leave memory: a quarter of the retention,
    /// between 10 ms and 100 ms. Often, so that each sweep's index rows (inserted by
    /// UETR, a page each, in the commit of that moment's messages) are few.
    pub fn sweep_interval(&self) -> std::time::Duration {
        (self.retention / 4)
            .clamp(std::time::Duration::from_millis(10), std::time::Duration::from_millis(100))
    }
}

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
    /// The bank cannot store anything: it is stopping.
    #[error("{0}")]
    Storage(#[from] StoreError),
    /// The hub cannot be reached or did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// An XML document could not be read, or holds what Corridor would not carry (the
    /// sentence names the element by its path).
    #[error("{0}")]
    Xml(String),
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
    /// A converted payment's other side and rate (boxed, as the recall: most payments
    /// have neither, and the bank keeps every payment).
    pub conversion: Option<Box<PaymentConversion>>,
    /// Where a return of it stands.
    pub return_state: ReturnState,
    /// The latest recall case.
    pub recall: Option<Box<Recall>>,
}

impl Payment {
    /// What the creditor agent receives: the interbank settlement amount.
    pub fn settlement_amount(&self) -> Amount {
        match (&self.conversion, self.direction) {
            (Some(c), Direction::Outgoing) => c.counter_amount,
            _ => self.amount,
        }
    }

    /// What the debtor instructed: the debtor agent's amount.
    pub fn instructed_amount(&self) -> Amount {
        match (&self.conversion, self.direction) {
            (Some(c), Direction::Incoming) => c.counter_amount,
            _ => self.amount,
        }
    }

    /// The conversion as a pacs.008 or pacs.004 carries it (instructed amount and rate).
    pub(crate) fn wire_conversion(&self) -> Option<Conversion> {
        self.conversion.as_ref().map(|c| Conversion {
            instructed: self.instructed_amount(),
            rate: c.rate,
            quote_id: None,
        })
    }

    /// True once the receiver accepted it (ACSC or ACCC).
    pub fn settled(&self) -> bool {
        matches!(self.status, PaymentStatus::Acsc | PaymentStatus::Accc)
    }
}

/// A converted payment seen from one bank: the other bank's amount and the rate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentConversion {
    /// Outgoing: what the creditor agent receives; incoming: what the debtor instructed.
    pub counter_amount: Amount,
    /// Units of the settlement currency per unit of the instructed currency.
    pub rate: Rate,
}

/// Where the return (pacs.004) of a settled payment stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnState {
    /// Not returned.
    None,
    /// The beneficiary's bank sent the pacs.004 `return_id` and waits for the hub's ACK.
    Returning {
        /// Why.
        reason: ReasonCode,
        /// The pacs.004's return id.
        return_id: String,
    },
    /// Returned: the funds went back to the original debtor.
    Returned {
        /// Why.
        reason: ReasonCode,
        /// The pacs.004's return id.
        return_id: String,
    },
}

impl ReturnState {
    /// The reason, once a return was sent.
    pub fn reason(&self) -> Option<ReasonCode> {
        match self {
            Self::None => None,
            Self::Returning { reason, .. } | Self::Returned { reason, .. } => Some(*reason),
        }
    }
}

/// A recall (camt.056) case of a payment, as one bank sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recall {
    /// Case id.
    pub case_id: String,
    /// Message id of the camt.056.
    pub message_id: MessageId,
    /// PDCR while open, then CNCL or RJCR.
    pub status: InvestigationStatus,
    /// Why it was asked, or (RJCR) why it was refused.
    pub reason: ReasonCode,
}

/// A bank node's state.
#[derive(Clone)]
pub struct Bank {
    inner: Arc<BankInner>,
}

struct BankInner {
    bic: Bic,
    /// The directory and this bank's signing key, replaced when `directory.json` changes.
    credentials: Credentials,
    /// Short critical sections only, never held across an `.await`. Changes are
    /// journalled while it is held, so the journal's order is the state's.
    state: Mutex<BankState>,
    journal: GroupCommit<BankChange>,
    /// Reads what memory no longer holds, for the message path. Taken after `state` when
    /// both are needed, never before it.
    reader: Mutex<StoreReader>,
    /// The same for an operator's reads (a payment, the list, a statement), never taken
    /// with `state`: a list of every payment after a long run reads for seconds, and the
    /// message path, which reads the store while it holds `state`, must not wait for it.
    operator_reader: Mutex<StoreReader>,
    config: BankConfig,
    /// Woken when the outbox has something new to send.
    outbox_wake: Notify,
    /// Highest output sequence number whose processing is durable: what Hello reports.
    last_osn_durable: AtomicU64,
    /// The hub the session is with (or trying), once the node runs: for its agreements
    /// and quotes.
    hub_link: Mutex<Option<(crate::tls::NetworkDir, String)>>,
    /// Quotes the hub gave this bank, by id, until a payment uses them.
    quotes: Mutex<std::collections::HashMap<String, QuoteOffer>>,
}

impl Bank {
    /// A bank signing as `identity`, trusting the keys and relationships of `directory`,
    /// keeping its store in `data_dir` and carrying on from what the store holds, with
    /// the default [`BankConfig`].
    pub fn open(identity: SigningIdentity, directory: Directory, data_dir: &Path) -> Result<Self, String> {
        Self::open_with(identity, directory, data_dir, BankConfig::default())
    }

    /// [`Bank::open`] with `config` (refused, changing nothing, if it does not validate).
    pub fn open_with(
        identity: SigningIdentity,
        directory: Directory,
        data_dir: &Path,
        config: BankConfig,
    ) -> Result<Self, String> {
        config.validate()?;
        let bic = identity.bic();
        if !directory.is_participant(bic) {
            return Err(format!("{bic} is not a participant of this network's directory"));
        }
        let credentials = Credentials::new(directory, identity)?;
        let retention_ms = i64::try_from(config.retention.as_millis()).expect("validated: at most a day");
        let hold_since_unix_ms = config.clock.unix_ms() - retention_ms;
        let (writer, derived, recovered) =
            BankStore::open(data_dir, bic, hold_since_unix_ms).map_err(|e| e.to_string())?;
        let reader = StoreReader::open(data_dir).map_err(|e| e.to_string())?;
        let operator_reader = StoreReader::open(data_dir).map_err(|e| e.to_string())?;
        let state = BankState::recover(recovered, config.retention, config.clock.clone())?;
        tracing::info!(bank = %bic, payments_held = state.payments().count(), unacknowledged = state.outbox.len(), "bank store recovered");
        let last_osn = state.cursor.last_osn_processed;
        let inner = BankInner {
            bic,
            credentials,
            state: Mutex::new(state),
            journal: GroupCommit::start_with(writer, derived, "bank"),
            reader: Mutex::new(reader),
            operator_reader: Mutex::new(operator_reader),
            config,
            outbox_wake: Notify::new(),
            last_osn_durable: AtomicU64::new(last_osn),
            hub_link: Mutex::new(None),
            quotes: Mutex::new(std::collections::HashMap::new()),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Takes the directory and this bank's signing key as `network` holds them now
    /// (after a rotation or revocation), without a restart.
    pub fn reload_credentials(&self, network: &crate::tls::NetworkDir) -> Result<(), String> {
        let role = crate::tls::Role::Bank(self.bic());
        let (directory, identities) = network.credentials(role).map_err(|e| e.to_string())?;
        self.inner.credentials.replace(directory, identities)
    }

    /// This bank's BIC.
    pub fn bic(&self) -> Bic {
        self.inner.bic
    }

    /// Tells the session there is something new to send.
    pub(crate) fn wake_outbox(&self) {
        self.inner.outbox_wake.notify_one();
    }

    /// Payments that become final from now on, each told once durable.
    pub fn watch(&self) -> PaymentWatch {
        PaymentWatch {
            events: self.state().subscribe(),
            durability: self.inner.journal.subscribe(),
            waiting: std::collections::VecDeque::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BankState> {
        self.inner.state.lock().expect("bank state lock")
    }

    /// The store's reader for the message path; taken after the state lock, if both.
    fn reader(&self) -> std::sync::MutexGuard<'_, StoreReader> {
        self.inner.reader.lock().expect("bank store reader lock")
    }

    /// The store's reader for an operator's reads; never taken with the state lock.
    fn operator_reader(&self) -> std::sync::MutexGuard<'_, StoreReader> {
        self.inner.operator_reader.lock().expect("bank operator reader lock")
    }

    /// This bank's settings.
    pub fn config(&self) -> &BankConfig {
        &self.inner.config
    }

    /// Milliseconds since the Unix epoch, now by this bank's clock.
    fn now_unix_ms(&self) -> i64 {
        self.inner.config.clock.unix_ms()
    }

    /// Today's date (UTC) by this bank's clock: a payment's settlement date.
    fn today(&self) -> time::Date {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.now_unix_ms()) * 1_000_000)
            .expect("the clock reads a time within the calendar")
            .date()
    }

    /// How much this bank holds in memory now.
    pub fn held(&self) -> Held {
        self.state().held()
    }

    /// Moves what has been finished for a retention out of memory (in two steps: see
    /// `state`). The node calls it every [`BankConfig::sweep_interval`].
    pub fn sweep(&self) {
        self.state().sweep(&self.inner.journal);
    }

    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.journal.wait(ticket).await
    }

    /// Waits until the store's derived state (what the readers see) holds `ticket`.
    pub(crate) async fn applied(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.journal.wait_applied(ticket).await
    }

    /// Completes with the reason if the store can no longer be written.
    pub async fn storage_failure(&self) -> String {
        self.inner.journal.failure().await
    }

    /// Every account, and whether debits equal credits in every currency.
    pub fn accounts(&self) -> (Vec<Account>, bool) {
        let state = self.state();
        (state.ledger.accounts().cloned().collect(), state.ledger.is_balanced())
    }

    /// One payment by UETR, from memory or, once it left memory, from the store.
    pub fn payment(&self, uetr: &str) -> Result<Payment, BankError> {
        self.payment_and_key(uetr).map(|(payment, _)| payment)
    }

    /// [`Bank::payment`], with the key of its first version (its place among the bank's
    /// payments).
    fn payment_and_key(&self, uetr: &str) -> Result<(Payment, i64), BankError> {
        let uetr = Uetr::parse(uetr)?;
        if let Some((payment, key)) = self.state().payment_and_key(&uetr) {
            return Ok((payment.clone(), key));
        }
        // Not in memory: retired (the store holds its latest version durably) or unknown.
        let stored = self.operator_reader().retired_payment(uetr)?;
        stored
            .map(|s| (s.payment, s.first_seq))
            .ok_or_else(|| BankError::NotFound(format!("no payment {uetr}")))
    }

    /// Every payment, oldest first: those in memory and those only in the store.
    pub fn payments(&self) -> Result<Vec<Payment>, BankError> {
        let held: Vec<(i64, Payment)> = self.state().payments().map(|(seq, p)| (seq, p.clone())).collect();
        let in_memory: std::collections::HashSet<Uetr> = held.iter().map(|(_, p)| p.uetr).collect();
        // Read after memory: whatever left memory since is in the store already.
        let retired = self.operator_reader().retired_payments()?;
        let mut retired = retired.into_iter().filter(|s| !in_memory.contains(&s.payment.uetr)).peekable();
        let mut held = held.into_iter().peekable();
        let mut payments = Vec::with_capacity(in_memory.len());
        loop {
            let from_store = match (retired.peek(), held.peek()) {
                (Some(stored), Some((first_seq, _))) => stored.first_seq < *first_seq,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => return Ok(payments),
            };
            if from_store {
                payments.push(retired.next().expect("peeked").payment);
            } else {
                payments.push(held.next().expect("peeked").1);
            }
        }
    }

    /// A camt.053-style statement of `account_id` (empty: the settlement account in
    /// `currency`) over `[from, to)`: the postings from `from` on, from memory and (those
    /// that left it) from the store, and the balance now.
    pub fn statement(
        &self,
        account_id: &str,
        currency: &str,
        from_time_unix_ms: i64,
        to_time_unix_ms: i64,
    ) -> Result<Statement, BankError> {
        let account = if account_id.is_empty() {
            let currency = Currency::parse(currency)?;
            system_account(crate::ledger::AccountKind::Settlement, currency)
        } else {
            crate::ledger::AccountId::parse(account_id).map_err(|e| e.at("account_id"))?
        };
        let not_found = || BankError::NotFound(format!("no account {account} at this bank"));
        let (holder, postings_forgotten, held_postings, mut message_ids) = {
            let state = self.state();
            let holder = state.ledger.account(&account).cloned().ok_or_else(not_found)?;
            let forgotten = state.ledger.postings_forgotten();
            assert_eq!(
                state.posting_times().len(),
                state.ledger.postings().len(),
                "a booking time per posting"
            );
            let held: Vec<statement::NumberedPosting> = state
                .ledger
                .postings()
                .iter()
                .zip(state.posting_times())
                .enumerate()
                .filter(|(_, (posting, booked))| {
                    **booked >= from_time_unix_ms && statement::touches(posting, &account)
                })
                .map(|(index, (posting, booked))| (forgotten + index, posting.clone(), *booked))
                .collect();
            let message_ids: std::collections::HashMap<Uetr, Option<MessageId>> =
                state.payments().map(|(_, p)| (p.uetr, Some(p.message_id.clone()))).collect();
            (holder, forgotten, held, message_ids)
        };
        // Postings that left memory are durable: read them after letting go of the state.
        let reader = self.operator_reader();
        let mut postings = Vec::new();
        reader.postings_since(from_time_unix_ms, postings_forgotten, |number, posting, booked| {
            if statement::touches(&posting, &account) {
                postings.push((number, posting, booked));
            }
        })?;
        postings.extend(held_postings);
        let mut message_id = |uetr: Uetr| -> Result<Option<MessageId>, StoreError> {
            if let Some(known) = message_ids.get(&uetr) {
                return Ok(known.clone());
            }
            let found = reader.retired_payment(uetr)?.map(|s| s.payment.message_id);
            message_ids.insert(uetr, found.clone());
            Ok(found)
        };
        let entries = statement::entries(&holder, &postings, &mut message_id)?;
        Ok(Statement::from_balance_now(
            account.as_str(),
            holder.currency,
            from_time_unix_ms,
            to_time_unix_ms,
            holder.balance,
            entries,
        ))
    }

    /// Messages waiting for the hub's ACK.
    pub fn outbox_len(&self) -> usize {
        self.state().outbox.len()
    }

    /// The highest output sequence number whose processing is durable.
    pub(crate) fn last_osn_durable(&self) -> u64 {
        self.inner.last_osn_durable.load(Ordering::Acquire)
    }
}

/// Payments of one bank as they become final and durable (see [`Bank::watch`]).
pub struct PaymentWatch {
    events: tokio::sync::broadcast::Receiver<(PaymentEvent, Ticket)>,
    durability: tokio::sync::watch::Receiver<u64>,
    /// Told but not yet durable, in ticket order.
    waiting: std::collections::VecDeque<(PaymentEvent, Ticket)>,
}

impl PaymentWatch {
    /// The next payment that became final, once durable. Fails if this watcher fell
    /// more than [`state::PAYMENT_EVENTS_BUFFERED`] events behind, or the bank stopped.
    pub async fn next(&mut self) -> Result<PaymentEvent, String> {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let durable = Ticket(*self.durability.borrow_and_update());
            if self.waiting.front().is_some_and(|(_, ticket)| *ticket <= durable) {
                return Ok(self.waiting.pop_front().expect("checked").0);
            }
            tokio::select! {
                event = self.events.recv() => match event {
                    Ok(event) => self.waiting.push_back(event),
                    Err(RecvError::Lagged(missed)) => return Err(format!("the watcher fell {missed} payments behind")),
                    Err(RecvError::Closed) => return Err("the bank stopped".into()),
                },
                changed = self.durability.changed() => {
                    if changed.is_err() {
                        return Err("the bank stopped".into());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::tls::Role;

    /// Bank BANKRUMMXXX of a new network in `dir` (with BANKIRTHXXX, returned, to pay),
    /// and its customer C001 holding 100.00 CNY.
    pub(crate) async fn bank_with_a_customer(dir: &std::path::Path) -> (Bank, Bic) {
        let (ru, ir) = (Bic::parse("BANKRUMMXXX").unwrap(), Bic::parse("BANKIRTHXXX").unwrap());
        let pki = crate::tls::init(dir, &[ru, ir]).unwrap();
        let identity = pki.signing_identity(Role::Bank(ru)).unwrap();
        let directory = crate::directory::Directory::load(pki.root()).unwrap();
        let bank = Bank::open(identity, directory, &pki.bank_data_dir(ru)).unwrap();
        bank.open_account("C001", "CNY", "Customer", "100.00").await.unwrap();
        (bank, ir)
    }

    /// An operator's reads (a payment, the list of payments, a statement) use a store
    /// connection of their own. The message path reads the store while it holds the
    /// bank's state, so if a long list held its reader, every delivery, ACK and order
    /// would wait behind it. Here the message path's reader is held throughout, as a
    /// delivery holds it, and the operator's reads still answer.
    #[tokio::test]
    async fn operator_reads_do_not_wait_for_the_message_paths_reader() {
        let dir = tempfile::tempdir().unwrap();
        let (bank, _payee) = bank_with_a_customer(dir.path()).await;

        let held = bank.reader();
        let (answered, answers) = std::sync::mpsc::channel();
        let operator = bank.clone();
        std::thread::spawn(move || {
            let unknown = Uetr::generate().to_string();
            let refused = operator.payment(&unknown).is_err();
            let payments = operator.payments().map(|p| p.len()).map_err(|e| e.to_string());
            let statement = operator.statement("C001", "CNY", 0, i64::MAX);
            let entries = statement.map(|s| s.entries.len()).map_err(|e| e.to_string());
            // The test may have given up waiting: then nobody hears this.
            let _ = answered.send((refused, payments, entries));
        });
        // A bound for a stuck thread, not a measure of speed: the reads take milliseconds.
        let (unknown_refused, payments, entries) =
            answers.recv_timeout(Duration::from_secs(60)).expect("the operator's reads answered");
        drop(held);
        assert!(unknown_refused);
        assert_eq!(payments.unwrap(), 0);
        assert_eq!(entries.unwrap(), 1, "the opening deposit");
    }
}
