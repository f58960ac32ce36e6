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

mod admin;
pub mod dashboard;
mod duplicates;
pub mod events;
pub mod fx;
pub mod journal;
pub mod positions;
mod service;
pub mod tracker;

pub use events::{HUB_EVENTS_CAPACITY, HubEvent, MessageCounts};
pub use fx::{Agreement, FxDesk, Quote};
pub use journal::{
    AcceptedRecord, HubRecord, OperatorAction, OperatorRecord, PaymentArchive, RecoveredHub, SqliteHubJournal,
};
pub use positions::{Position, Positions, SettlementModel, SettlementReport};
pub use service::{HubServer, run};
pub use tracker::{HubPayment, Tracker};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::crypto::{CryptoError, KeyDirectory, SignatureCheck, SignedEnvelope, SigningIdentity};
use crate::directory::{Credentials, Directory};
use crate::model::{
    Amount, Bic, Body, Currency, Message, MessageId, MessageKey, MessageType, ReasonCode, Uetr, wire,
};
use crate::pb;
use crate::store::{GroupCommit, StoreError, Ticket};
use duplicates::{RecentMessages, Seen};
use positions::PositionError;
use tracker::StatusEffect;

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
/// Most payments archived in one journal record.
const ARCHIVE_BATCH_MAX: usize = 4096;
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
    journal: GroupCommit<HubRecord>,
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
}

struct HubState {
    participants: HashMap<Bic, Participant>,
    /// Accepted messages by (sender, message id) of the last retention: the duplicate
    /// check's memory (the journal answers for older ones).
    recent: RecentMessages,
    /// How many messages the journal holds: operator actions are placed by it.
    messages_accepted: u64,
    /// The same, by message type.
    accepted_by_type: events::AcceptedCounts,
    /// Deliveries in every outbox.
    outbox_total: usize,
    positions: Positions,
    /// Rate agreements and quotes.
    fx: FxDesk,
    /// Payments in memory. Invariant: a payment leaves it only once its archive row is
    /// durable (see [`Hub::archive_finished`]), so memory and archive together always
    /// hold every payment the hub accepted.
    tracker: Tracker,
    /// The archive, for messages about archived payments (none while recovering: the
    /// journal's replay rebuilds every payment in memory).
    archive: Option<PaymentArchive>,
    next_session_id: u64,
}

/// A message waiting in a receiver's outbox.
struct Queued {
    /// The payment it is about, for the tracker.
    uetr: Option<Uetr>,
    envelope: pb::SignedEnvelope,
    /// Delivered only once durable.
    ticket: Ticket,
}

#[derive(Default)]
struct Participant {
    /// Next input sequence number expected from the bank.
    next_isn: u64,
    /// Output sequence number the next delivery to the bank gets.
    next_osn: u64,
    /// Deliveries not yet confirmed by the bank, by output sequence number.
    outbox: BTreeMap<u64, Queued>,
    /// Its payment messages not yet ACKed, by input sequence number (for the tracker).
    awaiting_ack: BTreeMap<u64, Uetr>,
    /// Highest output sequence number ever put on a session: a delivery at or below it
    /// may have arrived before, so it goes out flagged as a possible duplicate (PDM).
    osn_sent_high_water: u64,
    session: Option<ActiveSession>,
    /// Its submissions so far against its rate.
    rate: RateLimiter,
    /// Set when a submission was shed: the input sequence number the bank must resend
    /// from. Until it does, everything after it on the session is shed too (it would be
    /// a sequence gap), and nothing is consumed.
    shed_from: Option<u64>,
    /// Submissions shed so far.
    shed_total: u64,
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
struct RateLimiter {
    tokens: f64,
    last: std::time::Instant,
}

impl Default for RateLimiter {
    /// Full: the first take clamps the tokens to the burst.
    fn default() -> Self {
        Self { tokens: f64::MAX, last: std::time::Instant::now() }
    }
}

impl RateLimiter {
    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: u32, burst: u32) -> Result<(), Duration> {
        let now = std::time::Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(rate);
        self.tokens = (self.tokens + refill).min(f64::from(burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / f64::from(rate)))
        }
    }
}

struct ActiveSession {
    id: u64,
    cancel: CancellationToken,
}

/// A session the hub has opened for a bank.
pub(crate) struct OpenSession {
    pub(crate) id: u64,
    pub(crate) cancel: CancellationToken,
    pub(crate) welcome: pb::Welcome,
    /// First output sequence number to (re)deliver.
    pub(crate) next_osn_to_send: u64,
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
        config.validate()?;
        if identity.bic() != directory.hub() {
            return Err(format!(
                "the signing key is {}'s, the directory's hub is {}",
                identity.bic(),
                directory.hub()
            ));
        }
        let (backend, recovered) =
            SqliteHubJournal::open(data_dir, directory.hub()).map_err(|e| e.to_string())?;
        let new_journal = recovered.created.is_none();
        let (model, created_unix_ms) =
            recovered.created.unwrap_or((config.settlement_model, config.clock.unix_ms()));
        if model != config.settlement_model {
            return Err(format!(
                "this hub's journal settles {model}, not {}: the model is fixed when the journal is created",
                config.settlement_model
            ));
        }
        let mut state = recover(&directory, &config, Positions::new(model, created_unix_ms), recovered)?;
        state.archive = Some(PaymentArchive::open(data_dir).map_err(|e| e.to_string())?);
        let archive = Mutex::new(PaymentArchive::open(data_dir).map_err(|e| e.to_string())?);
        let credentials = Credentials::new(directory, identity)?;
        let journal = GroupCommit::start(backend, "hub");
        if new_journal {
            journal.append(vec![HubRecord::Created { model, unix_ms: created_unix_ms }]);
        }
        let (events, _) = tokio::sync::broadcast::channel(HUB_EVENTS_CAPACITY);
        let inner = HubInner {
            config,
            credentials,
            state: Mutex::new(state),
            journal,
            events,
            refused: events::RefusedCounts::default(),
            last_reconciliation: Mutex::new(None),
            archive,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// Waits until `ticket` is durable.
    pub(crate) async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.inner.journal.wait(ticket).await
    }

    /// Notified whenever more of the journal is durable.
    pub(crate) fn durability(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.journal.subscribe()
    }

    /// Completes with the reason if the journal can no longer be written.
    pub async fn storage_failure(&self) -> String {
        self.inner.journal.failure().await
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

    /// Opens a session for `bank` (replacing any older one, which is cancelled). The bank
    /// has durably processed every delivery up to `last_osn_processed`.
    ///
    /// Refused when the bank reports more than the hub ever sent it: then this hub's
    /// journal is not the one the bank talked to, and trusting the bank would drop
    /// messages the hub has ACKed.
    pub(crate) fn open_session(&self, bank: Bic, last_osn_processed: u64) -> Result<OpenSession, String> {
        let mut state = self.inner.state.lock().expect("hub state lock");
        state.next_session_id += 1;
        let id = state.next_session_id;
        let participant = state.participants.get_mut(&bank).expect("sessions open only for participants");
        let issued = participant.next_osn - 1;
        if last_osn_processed > issued {
            return Err(format!(
                "you report processing output sequence {last_osn_processed}, but this hub has sent you only up to \
                 {issued}: its journal is not the one you talked to (restored or replaced?)"
            ));
        }
        if let Some(old) = participant.session.take() {
            old.cancel.cancel();
        }
        let session = ActiveSession { id, cancel: CancellationToken::new() };
        let open = OpenSession {
            id,
            cancel: session.cancel.clone(),
            welcome: pb::Welcome { bic: bank.to_string(), next_isn_expected: participant.next_isn },
            next_osn_to_send: last_osn_processed + 1,
        };
        participant.session = Some(session);
        participant.shed_from = None;
        state.count_sessions();
        let unix_ms = self.now_unix_ms();
        if last_osn_processed > 0 {
            let record = state.delivered(bank, last_osn_processed, unix_ms);
            self.inner.journal.append(vec![record]);
        }
        drop(state);
        self.tell(HubEvent::SessionOpened { participant: bank, unix_ms });
        if last_osn_processed > 0 {
            self.tell(HubEvent::Delivered { participant: bank, osn: last_osn_processed, unix_ms });
        }
        Ok(open)
    }

    /// Forgets a session that ended, unless a newer one already replaced it.
    pub(crate) fn close_session(&self, bank: Bic, session_id: u64) {
        let mut state = self.inner.state.lock().expect("hub state lock");
        if let Some(participant) = state.participants.get_mut(&bank)
            && participant.session.as_ref().is_some_and(|s| s.id == session_id)
        {
            participant.session = None;
            state.count_sessions();
            drop(state);
            self.tell(HubEvent::SessionClosed { participant: bank, unix_ms: self.now_unix_ms() });
        }
    }

    /// Up to `limit` durable deliveries for `bank` from output sequence number `from` on.
    pub(crate) fn deliveries_from(&self, bank: Bic, from: u64, limit: usize) -> Vec<pb::Deliver> {
        let durable = self.inner.journal.durable();
        let mut state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get_mut(&bank).expect("participant");
        let deliveries: Vec<pb::Deliver> = participant
            .outbox
            .range(from..)
            .take(limit)
            // Tickets grow with output sequence numbers: stop at the first not yet durable.
            .take_while(|(_, queued)| queued.ticket <= durable)
            .map(|(osn, queued)| pb::Deliver {
                osn: *osn,
                envelope: Some(queued.envelope.clone()),
                possible_duplicate: *osn <= participant.osn_sent_high_water,
            })
            .collect();
        if let Some(last) = deliveries.last() {
            participant.osn_sent_high_water = participant.osn_sent_high_water.max(last.osn);
        }
        deliveries
    }

    /// The bank confirms it durably processed every delivery up to `osn`.
    pub(crate) fn confirm_delivered(&self, bank: Bic, osn: u64) {
        let mut state = self.inner.state.lock().expect("hub state lock");
        let Some(participant) = state.participants.get(&bank) else { return };
        if osn > participant.osn_sent_high_water {
            tracing::warn!(%bank, osn, sent = participant.osn_sent_high_water, "confirmation of a delivery never sent; ignored");
            return;
        }
        // Not waited for: if it is lost, the hub redelivers and the bank deduplicates.
        let unix_ms = self.now_unix_ms();
        let record = state.delivered(bank, osn, unix_ms);
        self.inner.journal.append(vec![record]);
        drop(state);
        self.tell(HubEvent::Delivered { participant: bank, osn, unix_ms });
    }

    /// The hub sent `bank` its answers up to input sequence number `isn` (for the tracker;
    /// not waited for).
    pub(crate) fn acknowledged(&self, bank: Bic, isn: u64) {
        let unix_ms = self.now_unix_ms();
        let mut state = self.inner.state.lock().expect("hub state lock");
        state.acknowledged(bank, isn, unix_ms);
        self.inner.journal.append(vec![HubRecord::Acked { participant: bank, isn, unix_ms }]);
        drop(state);
        self.tell(HubEvent::Acked { participant: bank, isn, unix_ms });
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

    /// Every participant of the directory, with whether it has a session open now.
    pub fn connections(&self) -> Vec<(Bic, bool)> {
        let directory = self.directory();
        let state = self.inner.state.lock().expect("hub state lock");
        directory
            .participants()
            .map(|(bic, _)| (bic, state.participants.get(&bic).is_some_and(|p| p.session.is_some())))
            .collect()
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
        let unix_ms = self.now_unix_ms();
        let (outcome, ticket) = {
            let mut state = self.inner.state.lock().expect("hub state lock");
            let outcome = state.operate(&action, unix_ms)?;
            tracing::info!(?action, "operator action");
            let record = OperatorRecord { after_messages: state.messages_accepted, unix_ms, action };
            (outcome, self.inner.journal.append(vec![HubRecord::Operator(record)]))
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
    /// memory to the archive: copies them into one journal record, waits until it is
    /// durable, then lets go of each that no message changed meanwhile. Off the message
    /// path: the state's lock is held only to copy and to let go. Returns how many left
    /// memory.
    pub async fn archive_finished(&self) -> Result<usize, String> {
        let retention_ms = duration_ms(self.inner.config.retention);
        {
            // Every 100 ms at most: the duplicate check's memory holds a little more than a
            // retention, which is only conservative (memory answers for more messages).
            let mut state = self.inner.state.lock().expect("hub state lock");
            state.recent.forget_expired(self.now_unix_ms(), self.inner.journal.durable());
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
                let ticket = self.inner.journal.append(vec![HubRecord::Archived(Arc::clone(&batch))]);
                (batch, ticket)
            };
            let started = std::time::Instant::now();
            self.durable(ticket).await.map_err(|e| e.to_string())?;
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

    /// Deliveries waiting for `bank` (sent or not, not yet confirmed).
    pub fn queued_for(&self, bank: Bic) -> usize {
        let state = self.inner.state.lock().expect("hub state lock");
        state.participants.get(&bank).map_or(0, |p| p.outbox.len())
    }

    /// Runs every check on a submission from the authenticated `peer`, in order, and
    /// answers with an ACK (the message is journalled and queued for its receiver) or a
    /// NAK (nothing changed but the input sequence number). The answer may be sent only
    /// once the returned ticket is durable.
    pub fn submit(&self, peer: Bic, submit: pb::Submit) -> (pb::session_response::Frame, Ticket) {
        self.submit_batch(peer, vec![submit]).pop().expect("one answer per submission")
    }

    /// [`Hub::submit`] for the submissions of one session that arrived together: each is
    /// checked in order as on its own, except that their signatures are verified in one
    /// batch (about twice as fast per signature; a failed batch is verified one by one).
    /// One answer per submission, in order.
    pub fn submit_batch(
        &self,
        peer: Bic,
        submits: Vec<pb::Submit>,
    ) -> Vec<(pb::session_response::Frame, Ticket)> {
        let directory = self.directory();
        let now = self.now_unix_ms();
        let (steps, checks): (Vec<Step>, Vec<Option<SignatureCheck>>) = submits
            .into_iter()
            .map(|submit| self.check_before_signature(peer, submit, &directory, now))
            .unzip();
        let checks: Vec<_> = checks.into_iter().flatten().map(Ok).collect();
        metrics::histogram!(crate::metrics::HUB_VERIFY_BATCH).record(checks.len() as f64);
        let mut verified = KeyDirectory::verify_all(checks).into_iter();
        steps
            .into_iter()
            .map(|step| match step {
                Step::Answered(frame, ticket) => (frame, ticket),
                Step::Checked { isn, sequenced, checked } => {
                    let payload = checked.envelope.payload.clone();
                    let message_type = checked.message.message_type();
                    let verified = verified.next().expect("one result per checked submission");
                    // 3. The signature, against the directory.
                    let outcome = verified
                        .map_err(|e| Refusal::new(Code::Unauthenticated, None, e.to_string()))
                        .and_then(|()| self.check_after_signature(peer, isn, *checked, &directory));
                    self.answer(peer, isn, sequenced, &payload, Some(message_type), outcome)
                }
            })
            .collect()
    }

    /// The participant's rate and the input sequence number, then checks 1 and 2 of
    /// DESIGN.md, with the message's freshness and its key's validity. A submission that
    /// passes comes with what verifying its signature takes.
    fn check_before_signature(
        &self,
        peer: Bic,
        submit: pb::Submit,
        directory: &Directory,
        now: i64,
    ) -> (Step, Option<SignatureCheck>) {
        let isn = submit.isn;
        let Some(envelope) = submit.envelope else {
            let detail = "a Submit carries an envelope";
            let frame = nak(isn, "", Code::InvalidArgument, Some(ReasonCode::Ff01), detail);
            return (Step::Answered(frame, Ticket::DURABLE), None);
        };
        let sequenced = match self.check_rate_and_sequence(peer, isn) {
            Ok(sequenced) => sequenced,
            // Shed: nothing is read, not even the message id.
            Err(Admission::Shed(retry_after)) => {
                return (Step::Answered(shed(isn, retry_after), Ticket::DURABLE), None);
            }
            Err(Admission::Refused(refusal)) => {
                self.refused(peer, None, refusal.reason);
                let frame = refusal.into_nak(isn, &peek_message_id(&envelope.payload));
                return (Step::Answered(frame, Ticket::DURABLE), None);
            }
        };
        // Kept (a reference count, not a copy) to name the message in a NAK when the
        // checks stop before the payload is decoded.
        let payload = envelope.payload.clone();
        match self.check_envelope(peer, envelope, directory, now) {
            Ok((checked, check)) => {
                (Step::Checked { isn, sequenced, checked: Box::new(checked) }, Some(check))
            }
            Err(refusal) => {
                let (frame, ticket) = self.answer(peer, isn, sequenced, &payload, None, Err(refusal));
                (Step::Answered(frame, ticket), None)
            }
        }
    }

    /// The ACK or NAK for a checked submission, with the ticket it waits for.
    fn answer(
        &self,
        peer: Bic,
        isn: u64,
        sequenced: Ticket,
        payload: &[u8],
        message_type: Option<MessageType>,
        outcome: Result<Accept, Refusal>,
    ) -> (pb::session_response::Frame, Ticket) {
        match outcome {
            Ok(Accept { message_id, receipt, receipt_key_id, ticket }) => {
                let ack = pb::Ack { isn, message_id: message_id.to_string(), receipt, receipt_key_id };
                (pb::session_response::Frame::Ack(ack), ticket.max(sequenced))
            }
            Err(refusal) => {
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => "any", "result" => "refused")
                    .increment(1);
                self.refused(peer, message_type, refusal.reason);
                let message_id = peek_message_id(payload);
                tracing::info!(sender = %peer, isn, %message_id, code = ?refusal.code, reason = refusal.reason.map(|r| r.code()), detail = %refusal.detail, "NAK");
                // The NAK goes out once the sequence number it consumed is durable.
                (refusal.into_nak(isn, &message_id), sequenced)
            }
        }
    }

    /// Counts a refusal and tells listeners.
    fn refused(&self, sender: Bic, message_type: Option<MessageType>, reason: Option<ReasonCode>) {
        self.inner.refused.count(message_type);
        self.tell(HubEvent::Refused { message_type, sender, reason, unix_ms: self.now_unix_ms() });
    }

    /// The participant's rate, then its input sequence number, under one lock.
    ///
    /// A submission past the rate is shed, not refused: its sequence number is not
    /// consumed, and neither is anything after it on the session until the bank resends
    /// from it (it would be a gap); the bank is told how long to wait.
    ///
    /// Input sequence numbers run 1, 2, ... per participant; a resend may repeat an old
    /// one (duplicates are caught by message id), but a gap is refused, never skipped:
    /// the bank resends from the number the hub expects.
    ///
    /// A new number is journalled as consumed at once, and the returned ticket covers it
    /// (or, for a resend, every number consumed so far): no answer about a number can
    /// leave before the number's consumption is durable, whichever session consumed it.
    fn check_rate_and_sequence(&self, peer: Bic, isn: u64) -> Result<Ticket, Admission> {
        let config = &self.inner.config;
        let mut state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get_mut(&peer).expect("sessions open only for participants");
        let shed_behind = participant.shed_from.is_some_and(|from| isn > from);
        let rate = if shed_behind {
            // Sent before the bank heard of the shedding: shed too, with no token taken.
            Err(Duration::from_secs_f64(1.0 / f64::from(config.participant_rate_max)))
        } else {
            participant.rate.take(config.participant_rate_max, config.participant_burst_max)
        };
        if let Err(retry_after) = rate {
            participant.shed_total += 1;
            participant.shed_from = Some(participant.shed_from.map_or(isn, |from| from.min(isn)));
            drop(state);
            metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => "any", "result" => "shed").increment(1);
            return Err(Admission::Shed(retry_after));
        }
        participant.shed_from = None;
        if isn == participant.next_isn {
            participant.next_isn += 1;
            Ok(self.inner.journal.append(vec![HubRecord::IsnConsumed { participant: peer, isn }]))
        } else if isn == 0 || isn > participant.next_isn {
            Err(Admission::Refused(Refusal::new(
                Code::FailedPrecondition,
                None,
                format!(
                    "input sequence gap: expected ISN {} or a resend below it, got {isn}",
                    participant.next_isn
                ),
            )))
        } else {
            Ok(self.inner.journal.appended())
        }
    }

    /// Checks 1 and 2 of DESIGN.md: the authenticated peer is the signer and the sender,
    /// the envelope and message are well formed and within size, the message is fresh
    /// (created within the replay window) and its key may sign it now.
    fn check_envelope(
        &self,
        peer: Bic,
        envelope_pb: pb::SignedEnvelope,
        directory: &Directory,
        now: i64,
    ) -> Result<(Checked, SignatureCheck), Refusal> {
        // 1. The authenticated peer is the signer.
        if Bic::parse(&envelope_pb.signer_bic).ok() != Some(peer) {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                format!(
                    "your certificate is {peer}'s but the envelope is signed as {:?}",
                    envelope_pb.signer_bic
                ),
            ));
        }
        // 2. Size and schema.
        let size = envelope_pb.payload.len();
        if size > self.inner.config.payload_size_max_bytes {
            return Err(Refusal::new(
                Code::ResourceExhausted,
                None,
                format!(
                    "payload of {size} bytes exceeds the limit of {} bytes",
                    self.inner.config.payload_size_max_bytes
                ),
            ));
        }
        // The outbox keeps the envelope as it came (a reference-counted payload), not a
        // conversion back from the parsed one.
        let queued_envelope = envelope_pb.clone();
        let envelope = SignedEnvelope::try_from(envelope_pb)
            .map_err(|e| Refusal::new(Code::InvalidArgument, Some(ReasonCode::Ff01), e.to_string()))?;
        let message = wire::decode_message(&envelope.payload)
            .map_err(|e| Refusal::new(Code::InvalidArgument, Some(ReasonCode::Ff01), e.to_string()))?;
        if message.header().sender != peer {
            return Err(Refusal::new(
                Code::PermissionDenied,
                None,
                format!(
                    "your certificate is {peer}'s but the message says it is from {}",
                    message.header().sender
                ),
            ));
        }
        // The replay window: with sequence numbers and message-id deduplication, a
        // captured message cannot be played again later.
        let config = &self.inner.config;
        let created = message.header().creation_time_unix_ms;
        let oldest = now.saturating_sub(duration_ms(config.message_age_max));
        let newest = now.saturating_add(duration_ms(config.clock_skew_max));
        if !(oldest..=newest).contains(&created) {
            return Err(Refusal::new(
                Code::FailedPrecondition,
                Some(ReasonCode::Tm01),
                format!(
                    "message {} was created at {}, outside the hub's window of {} s back and {} s ahead of {}",
                    message.header().message_id,
                    wire::format_unix_ms(created),
                    config.message_age_max.as_secs(),
                    config.clock_skew_max.as_secs(),
                    wire::format_unix_ms(now)
                ),
            ));
        }
        // The key may sign what was created then, and is not revoked now.
        let check = directory
            .keys()
            .envelope_check_at(&envelope, created, now)
            .map_err(|e| Refusal::new(Code::Unauthenticated, None, e.to_string()))?;
        Ok((Checked { queued_envelope, envelope, message }, check))
    }

    /// Checks 4-6 of DESIGN.md, after the signature; on success the message is journalled
    /// and queued, and its id, the hub's receipt and the journal ticket are returned.
    fn check_after_signature(
        &self,
        peer: Bic,
        isn: u64,
        checked: Checked,
        directory: &Directory,
    ) -> Result<Accept, Refusal> {
        let Checked { queued_envelope, envelope, message } = checked;
        let header = message.header();
        // 4. The receiver and the relationship (RMA).
        if !directory.is_participant(header.receiver) {
            return Err(Refusal::new(
                Code::NotFound,
                Some(ReasonCode::Rc01),
                format!("{} is not a participant of this network", header.receiver),
            ));
        }
        // A status report, a return and a recall's answer answer a payment the hub
        // relayed: the tracker checks (step 6) that each comes from that payment's
        // receiver to its sender, which is stricter than RMA, and refusing a status report
        // on RMA would leave the payment unsettled at the hub forever.
        let answers_a_payment = matches!(
            message.message_type(),
            MessageType::Pacs002 | MessageType::Pacs004 | MessageType::Camt029
        );
        if !answers_a_payment && !directory.allows(header.sender, header.receiver, message.message_type()) {
            return Err(Refusal::new(
                Code::PermissionDenied,
                Some(ReasonCode::Ag01),
                format!(
                    "no relationship lets {} send {} to {}",
                    header.sender,
                    message.message_type(),
                    header.receiver
                ),
            ));
        }
        // 5. Duplicates, then journal and queue: under one lock, so that two copies of
        //    one message racing on two sessions have one effect.
        let uetr = header.uetr;
        let receiver = header.receiver;
        let message_type = message.message_type();
        let message_id = header.message_id.clone();
        let key = MessageKey::new(peer, &message_id);
        // Signed before taking the lock: the lock guards bookkeeping only. A duplicate
        // gets a receipt signed now too: the same bytes unless the hub's key rotated.
        let identity = self.inner.credentials.identity();
        let receipt = Bytes::from(identity.sign_receipt(&envelope).to_bytes().to_vec());
        let receipt_key_id = identity.key_id().to_string();
        let signature = envelope.signature.to_bytes();
        let mut state = self.inner.state.lock().expect("hub state lock");
        let accepted_unix_ms = self.now_unix_ms();
        // Older than memory, the journal answers: one probe of its creation-time index.
        let journal = || {
            let archive = state.archive.as_ref().expect("the journal's reader opens after recovery");
            archive.signatures(peer, &message_id, header.creation_time_unix_ms)
        };
        let seen =
            state.recent.check(&key, &signature, header.creation_time_unix_ms, journal).map_err(|e| {
                Refusal::new(Code::Unavailable, None, format!("the hub's journal cannot be read: {e}"))
            })?;
        match seen {
            Seen::New => {}
            Seen::Conflict => {
                return Err(Refusal::new(
                    Code::AlreadyExists,
                    Some(ReasonCode::Dupl),
                    format!("message id {message_id} was already used for a different message"),
                ));
            }
            Seen::Duplicate(ticket) => {
                // The ACK waits for the original to be durable (and the caller adds this ISN's).
                drop(state);
                metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "duplicate")
                    .increment(1);
                tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %message_id, "duplicate of an accepted message: ACK again");
                return Ok(Accept { message_id, receipt, receipt_key_id, ticket });
            }
        }
        // 6. Suspensions, the payment's story so far and the sender's position.
        let osn = state.participants.get(&receiver).expect("checked: receiver is a participant").next_osn;
        state.settle(peer, &message, osn, accepted_unix_ms)?;
        let record = AcceptedRecord {
            sender: peer,
            message_id,
            isn,
            receiver,
            osn,
            uetr,
            message_type,
            envelope,
            receipt: receipt.clone(),
            accepted_unix_ms,
            created_unix_ms: header.creation_time_unix_ms,
        };
        let ticket = self.inner.journal.append(vec![HubRecord::Accepted(Box::new(record.clone()))]);
        state.admit(&record, key, Some(queued_envelope), ticket);
        metrics::gauge!(crate::metrics::HUB_OUTBOX).set(state.outbox_total as f64);
        drop(state);
        metrics::counter!(crate::metrics::HUB_MESSAGES, "type" => message_type.code(), "result" => "accepted").increment(1);
        self.tell(HubEvent::Accepted {
            message_type,
            sender: peer,
            receiver,
            uetr,
            isn,
            osn,
            unix_ms: accepted_unix_ms,
        });
        let message_id = record.message_id;
        tracing::info!(uetr = uetr.map(tracing::field::display), sender = %peer, %receiver, %message_type, %message_id, osn, "accepted and queued");
        Ok(Accept { message_id, receipt, receipt_key_id, ticket })
    }
}

impl HubState {
    fn count_sessions(&self) {
        let open = self.participants.values().filter(|p| p.session.is_some()).count();
        metrics::gauge!(crate::metrics::HUB_SESSIONS).set(open as f64);
    }

    /// Step 6 of the checks, then its effects, all or nothing: no payment or return
    /// from or to a suspended participant; then each message type against the payment's
    /// story so far (see the `settle_*` functions). A camt.056 and its camt.029 must fit
    /// the payment's recall case; they move no money.
    fn settle(&mut self, sender: Bic, message: &Message, osn: u64, unix_ms: i64) -> Result<(), Refusal> {
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
    fn restore_archived(&mut self, message: &Message) -> Result<(), Refusal> {
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
    fn settle_transfer(
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
    fn settle_status(
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
    fn settle_return(
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
    fn open_window(&self) -> Option<u64> {
        (self.positions.model() == SettlementModel::DeferredNet).then(|| self.positions.open_window_id())
    }

    /// Takes an accepted message in: sequence counters, the receiver's outbox (unless it
    /// was delivered already), the duplicate check, and the ACK the tracker waits for.
    fn admit(
        &mut self,
        record: &AcceptedRecord,
        key: MessageKey,
        queued: Option<pb::SignedEnvelope>,
        ticket: Ticket,
    ) {
        self.messages_accepted += 1;
        self.accepted_by_type.count(record.message_type);
        let sender = self.participants.get_mut(&record.sender).expect("checked: sender is a participant");
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
    fn delivered(&mut self, bank: Bic, osn: u64, unix_ms: i64) -> HubRecord {
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
    fn acknowledged(&mut self, bank: Bic, isn: u64, unix_ms: i64) {
        let participant = self.participants.get_mut(&bank).expect("ACKs go to participants");
        for uetr in take_through(&mut participant.awaiting_ack, isn).into_values() {
            self.tracker.acknowledged(&uetr, unix_ms);
        }
    }

    /// Applies an operator's action to the positions; refused (changing nothing) when
    /// the positions cannot take it.
    fn operate(&mut self, action: &OperatorAction, unix_ms: i64) -> Result<OperatorOutcome, String> {
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
fn take_through<T>(map: &mut BTreeMap<u64, T>, through: u64) -> BTreeMap<u64, T> {
    let rest = map.split_off(&through.saturating_add(1));
    std::mem::replace(map, rest)
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

/// Rebuilds the hub's state from its journal by replaying it through the same steps
/// the live hub took: every message admitted and settled again in order (each must pass
/// again, or the journal is corrupt), operator actions at their place between messages,
/// then the times of ACKs and deliveries for the tracker.
///
/// The duplicate set forgets as it goes, at each message's acceptance time; what is left
/// at the end is forgotten against the clock now, so messages older than the retention
/// never stay in memory (the journal answers for them).
///
/// The tracker is rebuilt whole from the journal, archived payments included (the journal
/// has every message, so replay needs no archive); the archiver then moves the finished
/// ones out again, rewriting their archive rows with the same content (INSERT OR REPLACE).
/// Simple and idempotent, at the cost of holding every payment in memory for a moment
/// after a restart, as before this archive existed.
fn recover(
    directory: &Directory,
    config: &HubConfig,
    positions: Positions,
    recovered: RecoveredHub,
) -> Result<HubState, String> {
    let mut state = HubState {
        participants: HashMap::new(),
        recent: RecentMessages::new(
            duration_ms(config.retention.min(config.message_age_max + config.clock_skew_max)),
            duration_ms(config.clock_skew_max),
        ),
        messages_accepted: 0,
        accepted_by_type: events::AcceptedCounts::default(),
        outbox_total: 0,
        positions,
        fx: FxDesk::default(),
        tracker: Tracker::default(),
        archive: None,
        next_session_id: 0,
    };
    for (bic, _) in directory.participants() {
        let (isn_consumed, osn_delivered) = recovered.sequences.get(&bic).copied().unwrap_or((0, 0));
        let participant =
            Participant { next_isn: isn_consumed + 1, next_osn: osn_delivered + 1, ..Participant::default() };
        state.participants.insert(bic, participant);
    }
    let count = recovered.messages.len();
    let mut actions = recovered.operator_actions.into_iter().peekable();
    // Payment messages by (receiver, output sequence number), until their delivery's time is known.
    let mut undelivered: HashMap<Bic, BTreeMap<u64, Uetr>> = HashMap::new();
    for record in recovered.messages {
        while let Some(action) = actions.next_if(|a| a.after_messages == state.messages_accepted) {
            state.operate(&action.action, action.unix_ms).map_err(|e| format!("corrupt hub journal: {e}"))?;
        }
        if !state.participants.contains_key(&record.sender)
            || !state.participants.contains_key(&record.receiver)
        {
            return Err(format!(
                "the journal holds a message between {} and {}, which the directory does not list",
                record.sender, record.receiver
            ));
        }
        let message = wire::decode_message(&record.envelope.payload).map_err(|e| {
            format!("corrupt hub journal: message {} does not decode: {e}", record.message_id)
        })?;
        state.settle(record.sender, &message, record.osn, record.accepted_unix_ms).map_err(|refusal| {
            format!("corrupt hub journal: message {} does not replay: {}", record.message_id, refusal.detail)
        })?;
        if let Some(uetr) = record.uetr {
            undelivered.entry(record.receiver).or_default().insert(record.osn, uetr);
        }
        // Anything recovered may have been delivered before the restart: flag it (PDM).
        let receiver = state.participants.get_mut(&record.receiver).expect("checked above");
        receiver.osn_sent_high_water = receiver.osn_sent_high_water.max(record.osn);
        let osn_delivered = recovered.sequences.get(&record.receiver).map_or(0, |s| s.1);
        let queued = (record.osn > osn_delivered).then(|| pb::SignedEnvelope::from(&record.envelope));
        state.recent.forget_expired(record.accepted_unix_ms, Ticket::DURABLE);
        let key = MessageKey::new(record.sender, &record.message_id);
        state.admit(&record, key, queued, Ticket::DURABLE);
    }
    for action in actions {
        state.operate(&action.action, action.unix_ms).map_err(|e| format!("corrupt hub journal: {e}"))?;
    }
    for (participant, isn, unix_ms) in recovered.acks {
        if state.participants.contains_key(&participant) {
            state.acknowledged(participant, isn, unix_ms);
        }
    }
    for (participant, osn, unix_ms) in recovered.deliveries {
        let Some(pending) = undelivered.get_mut(&participant) else { continue };
        for (delivered_osn, uetr) in take_through(pending, osn) {
            state.tracker.delivered(&uetr, participant, delivered_osn, unix_ms);
        }
    }
    state.recent.forget_expired(config.clock.unix_ms(), Ticket::DURABLE);
    tracing::info!(messages = count, recent = state.recent.len(), "hub journal recovered");
    Ok(state)
}

/// Reads the journal of a stopped hub in `data_dir` without changing it: its positions
/// and every payment, replayed as the hub would at start.
pub fn read_journal(
    directory: &Directory,
    data_dir: &std::path::Path,
) -> Result<(Positions, Vec<HubPayment>), String> {
    let path = journal::store_path(data_dir);
    if !path.exists() {
        return Err(format!("no hub journal at {}", path.display()));
    }
    let recovered = SqliteHubJournal::read(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let (model, created_unix_ms) = recovered.created.unwrap_or((SettlementModel::Gross, 0));
    let state = recover(directory, &HubConfig::default(), Positions::new(model, created_unix_ms), recovered)?;
    Ok((state.positions, state.tracker.payments().cloned().collect()))
}

/// What [`audit_journal`] found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Archived messages whose signature verified against the key valid when they were created.
    pub verified: usize,
    /// Those that did not: message id and why.
    pub failed: Vec<(String, String)>,
}

/// Verifies every message in a stopped hub's journal (`data_dir`) again, each against
/// the key that was valid when it was created: keys rotated or revoked since then do
/// not make the archive unverifiable, and a key used outside its validity is caught.
pub fn audit_journal(directory: &Directory, data_dir: &std::path::Path) -> Result<AuditReport, String> {
    let path = journal::store_path(data_dir);
    if !path.exists() {
        return Err(format!("no hub journal at {}", path.display()));
    }
    let recovered = SqliteHubJournal::read(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let keys = directory.keys();
    let checks = recovered
        .messages
        .iter()
        .map(|record| {
            let envelope = &record.envelope;
            let message = wire::decode_message(&envelope.payload).map_err(CryptoError::Malformed)?;
            let created = message.header().creation_time_unix_ms;
            keys.envelope_check_at(envelope, created, created)
        })
        .collect();
    let mut report = AuditReport::default();
    for (record, verified) in recovered.messages.iter().zip(KeyDirectory::verify_all(checks)) {
        match verified {
            Ok(()) => report.verified += 1,
            Err(error) => report.failed.push((record.message_id.to_string(), error.to_string())),
        }
    }
    Ok(report)
}

/// The message id of a payload if it can be read at all (for a NAK).
fn peek_message_id(payload: &[u8]) -> String {
    use prost::Message as _;
    pb::Message::decode(payload)
        .ok()
        .and_then(|m| m.header)
        .map(|h| h.message_id.chars().take(crate::model::MESSAGE_ID_LENGTH_MAX).collect())
        .unwrap_or_default()
}

/// An accepted (or duplicate) message's ACK: its id, the hub's receipt and the key that
/// signed it, and the journal ticket the ACK waits for.
struct Accept {
    message_id: MessageId,
    receipt: Bytes,
    receipt_key_id: String,
    ticket: Ticket,
}

fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Why a submission goes no further than its sequence number.
enum Admission {
    /// Over the participant's rate: resend after this long.
    Shed(Duration),
    /// A sequence gap.
    Refused(Refusal),
}

/// The answer to a shed submission: RESOURCE_EXHAUSTED with when to resend it. Its
/// message id is left empty: a shed payload is not even read.
fn shed(isn: u64, retry_after: Duration) -> pb::session_response::Frame {
    let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX).max(1);
    pb::session_response::Frame::Nak(pb::Nak {
        isn,
        message_id: String::new(),
        code: Code::ResourceExhausted as i32,
        reason_code: String::new(),
        detail: format!(
            "over your rate limit: shed, not refused; nothing was consumed: resend from ISN {isn} after {retry_after_ms} ms"
        ),
        retry_after_ms,
    })
}

/// A submission well formed and from its signer, its signature not yet verified.
struct Checked {
    queued_envelope: pb::SignedEnvelope,
    envelope: SignedEnvelope,
    message: Message,
}

/// Where a submission of a batch stands before the signatures are verified.
enum Step {
    /// Already answered (a NAK before the signature check).
    Answered(pb::session_response::Frame, Ticket),
    /// Checked up to the signature; its sequence number's consumption has `sequenced`.
    Checked { isn: u64, sequenced: Ticket, checked: Box<Checked> },
}

/// Why the hub refused a submission.
struct Refusal {
    code: Code,
    reason: Option<ReasonCode>,
    detail: String,
}

impl Refusal {
    /// A refusal whose detail is cut to [`NAK_DETAIL_MAX`] characters: it may quote
    /// what the bank sent, which can be as large as a frame.
    fn new(code: Code, reason: Option<ReasonCode>, detail: impl Into<String>) -> Self {
        let mut detail = detail.into();
        if let Some((cut, _)) = detail.char_indices().nth(NAK_DETAIL_MAX) {
            detail.truncate(cut);
            detail.push_str("...");
        }
        Self { code, reason, detail }
    }

    fn into_nak(self, isn: u64, message_id: &str) -> pb::session_response::Frame {
        nak(isn, message_id, self.code, self.reason, &self.detail)
    }
}

fn nak(
    isn: u64,
    message_id: &str,
    code: Code,
    reason: Option<ReasonCode>,
    detail: &str,
) -> pb::session_response::Frame {
    pb::session_response::Frame::Nak(pb::Nak {
        isn,
        message_id: message_id.to_owned(),
        code: code as i32,
        reason_code: reason.map(|r| r.code().to_owned()).unwrap_or_default(),
        detail: detail.to_owned(),
        retry_after_ms: 0,
    })
}
