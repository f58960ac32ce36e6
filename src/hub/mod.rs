//! The relay hub: authenticates, validates, stores and forwards messages between banks.
//!
//! [`Hub`] is the message path without the network: [`Hub::submit`] runs every check in
//! the order DESIGN.md gives and answers with an ACK or a NAK; accepted messages wait in
//! the receiver's outbox, numbered by output sequence, until the receiver confirms it
//! processed them. `service` puts it on gRPC with mTLS; [`journal`] makes it durable.
//!
//! Every decision is journalled before it is told: an ACK leaves only once its message
//! is durable, and a message is delivered only once it is durable, so a crash at any
//! moment loses nothing that anyone was told about.
//!
//! # Layout
//!
//! - this file: [`HubConfig`], [`Hub`] itself (opening it, its operator actions, reads and
//!   the archiver);
//! - `session`: a bank's session as the hub keeps it (opened, fed deliveries, confirmed,
//!   closed); `service` carries it on gRPC;
//! - `checks`: the ordered checks on a submission, and the ACK or NAK;
//! - `state`: each participant's sequence numbers, outbox and session, and what an
//!   accepted message or an operator's action does to the state (settlement, step 6);
//! - `recovery`: the state rebuilt from the journal; a stopped journal read or audited;
//! - [`journal`] (durability), `duplicates`, [`positions`], [`fx`], [`tracker`], [`events`],
//!   `admin` (the admin and tracker services) and [`dashboard`].

mod admin;
mod checks;
pub mod dashboard;
mod duplicates;
pub mod events;
pub mod fx;
pub mod journal;
pub mod link;
pub mod positions;
mod recovery;
pub mod replicated;
mod service;
mod session;
mod state;
pub mod tracker;

pub use events::{HUB_EVENTS_CAPACITY, HubEvent, MessageCounts};
pub use fx::{Agreement, FxDesk, Quote};
pub use journal::{
    AcceptedRecord, HubDerived, HubJournal, HubRecord, HubStore, OperatorAction, OperatorRecord,
    PaymentArchive,
};
pub use positions::{Position, Positions, SettlementModel, SettlementReport};
pub use recovery::{AuditReport, audit_journal, read_journal};
pub use service::{HubServer, run, run_link_listener};
pub use tracker::{HubPayment, Tracker};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::crypto::SigningIdentity;
use crate::directory::{Credentials, Directory};
use crate::model::{Amount, Bic, Currency, ReasonCode, Uetr};
use crate::store::log::RecordLog;
use crate::store::{GroupCommit, LogWriter, StoreError, Ticket};
use replicated::{Authority, Follower};
pub(crate) use session::OpenSession;
use state::HubState;

/// Limits of a hub, each explicit.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Largest payload (the signed message bytes) the hub accepts.
    pub payload_size_max_bytes: usize,
    /// Frames buffered towards one bank's session before the hub stops reading from it.
    pub session_queue_depth: usize,
    /// Deliveries the hub puts on a session per round.
    pub delivery_batch_max: usize,
    /// How payments settle. Fixed when the journal is created.
    pub settlement_model: SettlementModel,
    /// Replay window: a message created longer ago than this is refused (TM01).
    pub message_age_max: Duration,
    /// A message created further than this in the future is refused (TM01): the
    /// participants' clocks may be this far apart.
    pub clock_skew_max: Duration,
    /// Messages per second one participant may submit, on average; past it (and its
    /// burst) the excess is shed with RESOURCE_EXHAUSTED and a time to retry.
    pub participant_rate_max: u32,
    /// Messages one participant may submit at once above its rate.
    pub participant_burst_max: u32,
    /// The server's connection limits and timeouts.
    pub connections: crate::net::ConnectionLimits,
    /// How long a quote is honoured.
    pub quote_ttl: Duration,
    /// How long a finished payment stays in memory after its last step before it moves
    /// to the archive in the hub's store (where `track`, the reconciler and later returns
    /// or recalls still find it), and an accepted message in the duplicate check before
    /// the journal answers for it (see `hub::duplicates`).
    pub retention: Duration,
    /// Where the hub reads the time of day (the replay window, windows, quotes, the
    /// journal's times): the system's, unless a test moves it.
    pub clock: crate::clock::Clock,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            payload_size_max_bytes: 64 * 1024,
            session_queue_depth: 1024,
            delivery_batch_max: 64,
            settlement_model: SettlementModel::Gross,
            message_age_max: MESSAGE_AGE_MAX,
            clock_skew_max: CLOCK_SKEW_MAX,
            participant_rate_max: PARTICIPANT_RATE_MAX,
            participant_burst_max: PARTICIPANT_RATE_MAX,
            connections: crate::net::ConnectionLimits::default(),
            quote_ttl: QUOTE_TTL,
            retention: RETENTION,
            clock: crate::clock::Clock::System,
        }
    }
}

impl HubConfig {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.payload_size_max_bytes < 1024
            || self.payload_size_max_bytes > crate::net::FRAME_SIZE_MAX_BYTES / 2
        {
            return Err(format!(
                "payload_size_max_bytes must be between 1024 and {}",
                crate::net::FRAME_SIZE_MAX_BYTES / 2
            ));
        }
        if self.session_queue_depth == 0 || self.delivery_batch_max == 0 {
            return Err("session_queue_depth and delivery_batch_max must be positive".into());
        }
        if self.message_age_max.is_zero() || self.message_age_max > Duration::from_secs(7 * 24 * 3600) {
            return Err("the replay window (message_age_max) must be between 1 ms and 7 days".into());
        }
        if self.clock_skew_max > self.message_age_max {
            return Err("clock_skew_max must not exceed the replay window".into());
        }
        if self.quote_ttl < Duration::from_secs(1) || self.quote_ttl > Duration::from_secs(24 * 3600) {
            return Err("quote_ttl must be between 1 s and 24 hours".into());
        }
        if self.retention.is_zero() || self.retention > RETENTION_MAX {
            return Err(format!(
                "the retention must be between 1 ms and {} hours (got {} ms)",
                RETENTION_MAX.as_secs() / 3600,
                self.retention.as_millis()
            ));
        }
        if self.participant_rate_max == 0 || self.participant_burst_max == 0 {
            return Err("participant_rate_max and participant_burst_max must be positive".into());
        }
        self.connections.validate()
    }
}

/// Longest NAK detail, in characters: a refusal may quote what the bank sent.
pub const NAK_DETAIL_MAX: usize = 512;

/// Default time a quote is honoured.
pub const QUOTE_TTL: Duration = Duration::from_secs(60);
/// Default time a finished payment, or an accepted message, stays in memory.
pub const RETENTION: Duration = Duration::from_secs(60);
/// Longest retention: a day of payments in memory is already far more than it is for.
pub const RETENTION_MAX: Duration = Duration::from_secs(24 * 3600);
/// Most payments archived in one journal record: about 700 bytes each as JSON, so a record
/// stays well under a NATS server's default largest message (1 MiB) when the log is
/// replicated (a group commit is split between records, never inside one).
const ARCHIVE_BATCH_MAX: usize = 512;
/// Default replay window.
pub const MESSAGE_AGE_MAX: Duration = Duration::from_secs(10 * 60);
/// Default tolerance for clocks ahead of the hub's.
pub const CLOCK_SKEW_MAX: Duration = Duration::from_secs(30);
/// Default per-participant rate (messages per second), far above what one bank node
/// sends on this machine (about 1,500/s under full load), so that it stops a flood, not
/// a busy bank.
pub const PARTICIPANT_RATE_MAX: u32 = 10_000;

/// The hub: directory, receipt key, and the state of every participant.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    config: HubConfig,
    /// The directory and the hub's receipt key, replaced when `directory.json` changes.
    credentials: Credentials,
    /// Short critical sections only, never held across an `.await`. Records are
    /// appended to the journal while it is held, so the journal's order is the state's.
    state: Mutex<HubState>,
    /// Set once the hub is active (at once for a hub on its own log, at takeover for a
    /// standby): only an active hub writes.
    journal: OnceLock<GroupCommit<HubRecord>>,
    /// Whether this hub may serve banks and write, and until when (see `replicated`).
    authority: Authority,
    /// Where its derived state and archive are.
    data_dir: std::path::PathBuf,
    /// What happens, for listeners (the dashboard); bounded by [`HUB_EVENTS_CAPACITY`].
    events: tokio::sync::broadcast::Sender<HubEvent>,
    /// Refusals by message type, counted outside the state's lock.
    refused: events::RefusedCounts,
    /// The last reconciliation someone ran against this hub and posted here (the hub
    /// does not reconcile itself). Its own lock: never taken on the message path.
    /// As the reconciler renders it ([`crate::reconcile::Report::to_json`]): the hub
    /// only shows it, so it does not depend on the reconciler above it.
    last_reconciliation: Mutex<Option<serde_json::Value>>,
    /// The payment archive for readers (`track`, the reconciler): its own connection and
    /// lock, so that reading it never holds the state's.
    archive: Mutex<PaymentArchive>,
    /// The links to other networks' hubs, once set (see `link`).
    links: OnceLock<Arc<link::HubLinks>>,
    /// The links' open sessions and the questions asked across them (see `link`).
    link_queries: link::LinkQueries,
}

impl Hub {
    /// A hub for the network in `directory`, signing receipts with `identity`, keeping
    /// its journal in `data_dir` and carrying on from what the journal holds.
    pub fn open(
        config: HubConfig,
        directory: Directory,
        identity: SigningIdentity,
        data_dir: &std::path::Path,
    ) -> Result<Self, String> {
        let store = HubJournal::open(data_dir, directory.hub()).map_err(|e| e.to_string())?;
        let (hub, store) = Self::recovered(config, directory, identity, data_dir, store, Authority::sole())?;
        hub.activate(store.log, store.derived)?;
        Ok(hub)
    }

    /// A standby hub for the network in `directory`, on the replicated `log` that the
    /// active hub writes, keeping its derived state of it in `data_dir`: it holds the
    /// state the log holds so far, serves reads and refuses bank sessions, and the
    /// [`Follower`] keeps it current until it takes over (see `replicated`).
    pub fn open_standby(
        config: HubConfig,
        directory: Directory,
        identity: SigningIdentity,
        data_dir: &std::path::Path,
        log: Box<dyn RecordLog>,
    ) -> Result<(Self, Follower), String> {
        let store = HubJournal::open_on(data_dir, directory.hub(), log).map_err(|e| e.to_string())?;
        let (hub, store) =
            Self::recovered(config, directory, identity, data_dir, store, Authority::standby())?;
        Ok((hub, Follower::new(store)))
    }

    /// The hub rebuilt from `store`'s log, not active yet.
    fn recovered(
        config: HubConfig,
        directory: Directory,
        identity: SigningIdentity,
        data_dir: &std::path::Path,
        store: HubStore,
        authority: Authority,
    ) -> Result<(Self, HubStore), String> {
        config.validate()?;
        if identity.bic() != directory.hub() {
            return Err(format!(
                "the signing key is {}'s, the directory's hub is {}",
                identity.bic(),
                directory.hub()
            ));
        }
        let mut state = recovery::initial_state(&directory, &config);
        recovery::replay_log(&mut state, &store.log, store.applied)?;
        Self::check_model(&state, &config)?;
        tracing::info!(records = store.applied, messages = state.messages_accepted, "hub journal replayed");
        let archive = Mutex::new(PaymentArchive::open(data_dir).map_err(|e| e.to_string())?);
        let credentials = Credentials::new(directory, identity)?;
        let (events, _) = tokio::sync::broadcast::channel(HUB_EVENTS_CAPACITY);
        let inner = HubInner {
            config,
            credentials,
            state: Mutex::new(state),
            journal: OnceLock::new(),
            authority,
            data_dir: data_dir.to_path_buf(),
            events,
            refused: events::RefusedCounts::default(),
            last_reconciliation: Mutex::new(None),
            archive,
            links: OnceLock::new(),
            link_queries: link::LinkQueries::default(),
        };
        Ok((Self { inner: Arc::new(inner) }, store))
    }

    /// Refuses a journal created with another settlement model than `config`'s.
    fn check_model(state: &HubState, config: &HubConfig) -> Result<(), String> {
        let model = state.positions.model();
        if model != config.settlement_model {
            return Err(format!(
                "this hub's journal settles {model}, not {}: the model is fixed when the journal is created",
                config.settlement_model
            ));
        }
        Ok(())
    }

    /// Makes the hub the one that writes `log` (everything in it replayed): starts its
    /// journal, and records its creation when the log is new.
    fn activate(&self, log: Box<dyn RecordLog>, derived: HubDerived) -> Result<(), String> {
        let new_journal = log.last() == 0;
        let journal = GroupCommit::start_with(LogWriter::new(log, "hub"), derived, "hub");
        {
            let mut state = self.inner.state.lock().expect("hub state lock");
            state.archive = Some(PaymentArchive::open(&self.inner.data_dir).map_err(|e| e.to_string())?);
            // What is older than the retention is the journal's to answer for.
            state.recent.forget_expired(self.now_unix_ms(), Ticket::DURABLE);
            if new_journal {
                let (model, unix_ms) = (state.positions.model(), state.positions.window_opened_unix_ms());
                journal.append(vec![HubRecord::Created { model, unix_ms }]);
            }
        }
        if self.inner.journal.set(journal).is_err() {
            return Err("the hub is active already".into());
        }
        self.inner.authority.activated();
        Ok(())
    }

    /// The journal of an active hub.
    fn journal(&self) -> &GroupCommit<HubRecord> {
        self.inner.journal.get().expect("only an active hub writes: its journal is started")
    }

    /// Waits until `ticket` is durable; fails once the hub lost its lease (a replicated
    /// log): its answers will never be sent, and the append they wait for may never be
    /// acknowledged (the servers lost their quorum, or this hub is cut off from them), so
    /// waiting on would hold its sessions open and keep the hub from stopping.
    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        tokio::select! {
            durable = self.journal().wait(ticket) => durable,
            _ = self.inner.authority.lost() => Err(StoreError::WriterStopped),
        }
    }

    /// Notified whenever more of the journal is durable.
    pub(crate) fn durability(&self) -> tokio::sync::watch::Receiver<u64> {
        self.journal().subscribe()
    }

    /// Completes with the reason if the journal can no longer be written.
    /// Also completes when a hub of a replicated log lost its lease (it must stop).
    pub async fn storage_failure(&self) -> String {
        let journal = async {
            self.inner.authority.wait_active().await;
            self.journal().failure().await
        };
        tokio::select! {
            reason = journal => reason,
            reason = self.inner.authority.lost() => reason,
        }
    }

    /// The network directory in force.
    pub fn directory(&self) -> Arc<Directory> {
        self.inner.credentials.directory()
    }

    /// Waits until this is the last handle on the hub (every session, service and task
    /// that held one has let go), then closes it: its journal is written out and closed
    /// when this returns. Refused after `wait` if something still holds it.
    pub async fn close(self, wait: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + wait;
        while Arc::strong_count(&self.inner) > 1 {
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the hub is still in use by {} handles",
                    Arc::strong_count(&self.inner) - 1
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The last handle: dropping it joins the journal's writer.
        tokio::task::spawn_blocking(move || drop(self)).await.map_err(|e| e.to_string())
    }

    /// Submissions from `bank` shed so far because it was over its rate (since start).
    pub fn shed_count(&self, bank: Bic) -> u64 {
        let state = self.inner.state.lock().expect("hub state lock");
        state.participants.get(&bank).map_or(0, |p| p.shed_total)
    }

    /// Takes the directory and the hub's signing key as `network` holds them now (after
    /// a rotation or revocation), without a restart.
    pub fn reload_credentials(&self, network: &crate::tls::NetworkDir) -> Result<(), String> {
        let (directory, identities) =
            network.credentials(crate::tls::Role::Hub).map_err(|e| e.to_string())?;
        self.inner.credentials.replace(directory, identities)
    }

    /// The limits.
    pub fn config(&self) -> &HubConfig {
        &self.inner.config
    }

    /// Milliseconds since the Unix epoch, now by the hub's clock.
    pub fn now_unix_ms(&self) -> i64 {
        self.inner.config.clock.unix_ms()
    }

    /// Tells listeners what happened. Cheap: the event is moved into a bounded ring
    /// (nothing is kept when nobody listens), and never waits for a listener.
    fn tell(&self, event: HubEvent) {
        let _ = self.inner.events.send(event);
    }

    /// Listens to what happens at the hub from now on. A listener more than
    /// [`HUB_EVENTS_CAPACITY`] events behind loses the oldest (and is told how many).
    pub fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// Messages accepted and refused so far, by type.
    pub fn message_counts(&self) -> MessageCounts {
        let state = self.inner.state.lock().expect("hub state lock");
        self.inner.refused.with_accepted(&state.accepted_by_type)
    }

    /// Keeps `report` (as the reconciler renders it in JSON) as the last reconciliation
    /// of this hub (run by someone else: the hub does not reconcile itself), for the
    /// dashboard.
    pub fn set_last_reconciliation(&self, report: serde_json::Value) {
        *self.inner.last_reconciliation.lock().expect("reconciliation lock") = Some(report);
    }

    /// The last reconciliation posted with [`Hub::set_last_reconciliation`], if any.
    pub fn last_reconciliation(&self) -> Option<serde_json::Value> {
        self.inner.last_reconciliation.lock().expect("reconciliation lock").clone()
    }

    /// Applies an operator's action and journals it; the answer is given once durable.
    /// Refused, changing nothing, when the positions cannot take it.
    pub async fn operate(&self, action: OperatorAction) -> Result<OperatorOutcome, String> {
        self.inner.authority.refuse_unless_active()?;
        let unix_ms = self.now_unix_ms();
        let (outcome, ticket) = {
            let mut state = self.inner.state.lock().expect("hub state lock");
            let outcome = state.operate(&action, unix_ms)?;
            tracing::info!(?action, "operator action");
            let record = OperatorRecord { after_messages: state.messages_accepted, unix_ms, action };
            (outcome, self.journal().append(vec![HubRecord::Operator(record)]))
        };
        self.durable(ticket).await.map_err(|e| e.to_string())?;
        Ok(outcome)
    }

    /// Every rate agreement, by pair.
    pub fn agreements(&self) -> Vec<fx::Agreement> {
        self.inner.state.lock().expect("hub state lock").fx.agreements().cloned().collect()
    }

    /// A firm quote for `participant` converting `instructed` into `to` at the agreement
    /// in force now, honoured until it expires; journalled (and durable) before it is
    /// given, so that a restart honours it too.
    pub async fn quote(
        &self,
        participant: Bic,
        instructed: Amount,
        to: Currency,
    ) -> Result<fx::Quote, fx::FxRefusal> {
        let unix_ms = self.now_unix_ms();
        let id = format!("Q{}", uuid::Uuid::new_v4().simple());
        let ttl_ms = duration_ms(self.inner.config.quote_ttl);
        let quote = {
            let state = self.inner.state.lock().expect("hub state lock");
            state.fx.quote(id, participant, instructed, to, unix_ms, ttl_ms)?
        };
        match self.operate(OperatorAction::Quote(quote)).await {
            Ok(OperatorOutcome::Quote(quote)) => Ok(quote),
            Ok(_) => unreachable!("a quote action gives a quote"),
            Err(problem) => Err((ReasonCode::Narr, problem)),
        }
    }

    /// A copy of every position, the suspensions and the settlement reports.
    pub fn positions(&self) -> Positions {
        self.inner.state.lock().expect("hub state lock").positions.clone()
    }

    /// One payment as the hub saw it, from memory or the archive.
    pub fn payment(&self, uetr: &Uetr) -> Option<HubPayment> {
        if let Some(payment) = self.inner.state.lock().expect("hub state lock").tracker.get(uetr) {
            return Some(payment.clone());
        }
        // Not in memory, so archived before the state was looked at (durably: see the
        // tracker's invariant), or unknown.
        let archive = self.inner.archive.lock().expect("archive lock");
        match archive.get(uetr) {
            Ok(found) => found.map(|(_, payment)| payment),
            Err(error) => {
                tracing::error!(%uetr, %error, "the payment archive cannot be read");
                None
            }
        }
    }

    /// The message the hub relayed to `receiver` as output sequence number `osn`, exactly
    /// as its sender signed it, from the journal's derived state, once it holds everything
    /// journalled so far (`None` for a message not accepted yet).
    pub async fn message_to(
        &self,
        receiver: Bic,
        osn: u64,
    ) -> Result<Option<journal::AcceptedRecord>, String> {
        if let Some(journal) = self.inner.journal.get() {
            journal.wait_applied(journal.appended()).await.map_err(|e| e.to_string())?;
        }
        let archive = self.inner.archive.lock().expect("archive lock");
        archive.message_to(receiver, osn).map_err(|e| e.to_string())
    }

    /// Every payment the hub saw, oldest first: those in memory and the archived ones.
    /// Panics if the archive cannot be read (the store is broken under a running hub).
    pub fn payments(&self) -> Vec<HubPayment> {
        let mut payments: BTreeMap<u64, HubPayment> = {
            let state = self.inner.state.lock().expect("hub state lock");
            state.tracker.sequenced().map(|(seq, payment)| (seq, payment.clone())).collect()
        };
        // Read after memory: a payment gone from memory since was archived before it went.
        let archived = self.inner.archive.lock().expect("archive lock").all();
        for (seq, payment) in archived.expect("the payment archive reads") {
            // A payment in both (archived, not yet let go, or brought back) is newer in memory.
            payments.entry(seq).or_insert(payment);
        }
        payments.into_values().collect()
    }

    /// What the hub holds in memory now, by kind.
    pub fn memory_counts(&self) -> MemoryCounts {
        let state = self.inner.state.lock().expect("hub state lock");
        MemoryCounts { payments: state.tracker.len(), recent_messages: state.recent.len() }
    }

    /// Payments in the archive (read from the store).
    pub fn archived_count(&self) -> Result<u64, String> {
        self.inner.archive.lock().expect("archive lock").count().map_err(|e| e.to_string())
    }

    /// Lets the duplicate check forget the messages it kept for a retention (the journal
    /// answers for them), then moves finished payments older than the retention from
    /// memory to the archive: copies them into one journal record, waits until the
    /// archive (derived state) holds it, then lets go of each that no message changed meanwhile. Off the message
    /// path: the state's lock is held only to copy and to let go. Returns how many left
    /// memory.
    pub async fn archive_finished(&self) -> Result<usize, String> {
        if !self.inner.authority.is_active() {
            // A standby writes nothing: its payments stay in memory until it takes over.
            return Ok(0);
        }
        let retention_ms = duration_ms(self.inner.config.retention);
        {
            // Every 100 ms at most: the duplicate check's memory holds a little more than a
            // retention, which is only conservative (memory answers for more messages).
            let mut state = self.inner.state.lock().expect("hub state lock");
            // The older tier asks the derived state: forgotten only once it holds them.
            state.recent.forget_expired(self.now_unix_ms(), self.journal().applied());
            metrics::gauge!(crate::metrics::HUB_RECENT_MESSAGES).set(state.recent.len() as f64);
        }
        let mut forgotten = 0;
        loop {
            let before_unix_ms = self.now_unix_ms().saturating_sub(retention_ms);
            let (batch, ticket) = {
                let state = self.inner.state.lock().expect("hub state lock");
                let batch = Arc::new(state.tracker.archivable(before_unix_ms, ARCHIVE_BATCH_MAX));
                if batch.is_empty() {
                    break;
                }
                let ticket = self.journal().append(vec![HubRecord::Archived(Arc::clone(&batch))]);
                (batch, ticket)
            };
            let started = std::time::Instant::now();
            // Let go once the archive (derived state) holds them, so a reader finds each
            // in memory or in the archive.
            self.journal().wait_applied(ticket).await.map_err(|e| e.to_string())?;
            let mut state = self.inner.state.lock().expect("hub state lock");
            forgotten += state.tracker.forget_archived(&batch);
            metrics::gauge!(crate::metrics::HUB_PAYMENTS_IN_MEMORY).set(state.tracker.len() as f64);
            let durable_ms = started.elapsed().as_secs_f64() * 1e3;
            tracing::debug!(target: "corridor::hub::archive", payments = batch.len(), durable_ms, in_memory = state.tracker.len(), "archived");
            if batch.len() < ARCHIVE_BATCH_MAX {
                break;
            }
        }
        Ok(forgotten)
    }

    /// Runs [`Hub::archive_finished`] every quarter of the retention (between 10 ms and
    /// 100 ms) until `stop` is cancelled or the journal fails. Often, so that each batch is
    /// small: its UETR index takes random keys (a page each) in the same commit as the
    /// messages of that moment, and a second's worth at once held those messages up by
    /// tens of milliseconds (p99 600 ms over 5 minutes at 1,150 payments/s).
    pub async fn archive_periodically(self, stop: CancellationToken) {
        let period =
            (self.inner.config.retention / 4).clamp(Duration::from_millis(10), Duration::from_millis(100));
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.archive_finished().await {
                tracing::error!(%error, "archiving finished payments stopped");
                return;
            }
        }
    }
}

/// What the hub holds in memory, for the bounds its tests check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryCounts {
    /// Payments in the tracker's memory (the rest are archived).
    pub payments: usize,
    /// Messages the duplicate check holds in memory (those of the last retention).
    pub recent_messages: usize,
}

/// What an operator's action left.
#[derive(Clone, Debug)]
pub enum OperatorOutcome {
    /// The participant's position in a currency after it.
    Position(Bic, Currency, Position),
    /// Whether the participant is now suspended.
    Suspended(Bic, bool),
    /// The closed window's report.
    Report(SettlementReport),
    /// The agreement set.
    Agreement(fx::Agreement),
    /// The quote given.
    Quote(fx::Quote),
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
