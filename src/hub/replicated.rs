//! Active and standby hubs on one replicated log.
//!
//! A hub on its own log ([`Hub::open`]) is active from the start and forever. Hubs on a
//! replicated log ([`Hub::open_standby`]) share one log, which only the hub holding the
//! lease writes:
//!
//! - a **standby** follows the log ([`Hub::follow`]): every record the active hub
//!   appends is applied to its derived state and replayed on its state by the same code
//!   as recovery at start (`recovery::replay`), so it serves reads (`track`, positions,
//!   the dashboard) as they stand, and refuses bank sessions with UNAVAILABLE, naming the
//!   active hub;
//! - **takeover** ([`Hub::take_over`]): once the standby holds the lease it reads to the
//!   log's end, then appends an [`HubRecord::Active`] record fenced by the position it
//!   read to. That append is refused if anyone appended meanwhile (the standby then reads
//!   again and retries), and once it is in, any append of the hub before it is refused:
//!   a stale writer can never add to the log again. Only then does it serve;
//! - the **active** hub sends nothing (no ACK, no delivery) once its lease may have
//!   ended by its own monotonic clock ([`Authority::may_send`]), and stops: a hub paused
//!   past its lease wakes up silent, and its next append is refused.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Hub, HubDerived, HubRecord, HubStore, recovery};
use crate::store::codec::LogRecord;
use crate::store::log::{Batch, RecordLog};
use crate::store::nats::Lease;
use crate::store::{Derived, StoreError};

/// How a standby gets a new handle on the replicated log when its takeover append was
/// refused (a log refuses every append after a refusal).
pub type Reopen = Box<dyn Fn() -> Result<Box<dyn RecordLog>, StoreError> + Send>;

/// How many times a takeover reads to the end and tries its fenced append again, when
/// the hub before it was still appending.
const TAKEOVER_TRIES: usize = 8;

/// Whether a hub may serve banks and write, and until when.
pub struct Authority {
    /// Whether the hub stands on a lease (a replicated log) rather than owning its log.
    leased: bool,
    active: watch::Sender<bool>,
    /// Nanoseconds after `base` until which an active hub on a lease may send: the time
    /// its last renewal was sent plus what it may count on of the lease's time to live.
    valid_until: AtomicU64,
    base: Instant,
    /// The URL of the hub that holds the lease, as last seen: what a standby's refusal names.
    active_hub: Mutex<Option<String>>,
    /// Why the hub must stop, once it must.
    lost: watch::Sender<Option<String>>,
}

impl Authority {
    /// A hub on its own log: active once activated, on no lease.
    pub(super) fn sole() -> Self {
        Self::new(false)
    }

    /// A standby on a replicated log: active only at takeover, and while its lease holds.
    pub(super) fn standby() -> Self {
        Self::new(true)
    }

    fn new(leased: bool) -> Self {
        Self {
            leased,
            active: watch::channel(false).0,
            valid_until: AtomicU64::new(0),
            base: Instant::now(),
            active_hub: Mutex::new(None),
            lost: watch::channel(None).0,
        }
    }

    pub(super) fn activated(&self) {
        self.active.send_replace(true);
    }

    /// Whether the hub is active (it may still have lost its lease since).
    pub fn is_active(&self) -> bool {
        *self.active.borrow()
    }

    /// Completes once the hub is active.
    pub async fn wait_active(&self) {
        let mut active = self.active.subscribe();
        let _ = active.wait_for(|active| *active).await;
    }

    /// Whether the hub may send anything to a bank now: it is active, has not lost its
    /// lease, and its lease is valid by its own monotonic clock.
    pub fn may_send(&self) -> bool {
        self.is_active()
            && self.lost.borrow().is_none()
            && (!self.leased || self.nanos(Instant::now()) < self.valid_until.load(Ordering::Acquire))
    }

    /// Refuses what only an active hub does (an operator's action) on a standby.
    pub(super) fn refuse_unless_active(&self) -> Result<(), String> {
        if self.is_active() {
            return Ok(());
        }
        Err(self.standby_detail())
    }

    /// What a standby answers: it is one, and which hub is active.
    pub(super) fn standby_detail(&self) -> String {
        match self.active_hub() {
            Some(url) => format!("this hub is a standby; the active hub is {url}"),
            None => "this hub is a standby; no hub is active yet".to_owned(),
        }
    }

    /// The active hub's URL, as last seen.
    pub fn active_hub(&self) -> Option<String> {
        self.active_hub.lock().expect("active hub lock").clone()
    }

    pub(super) fn set_active_hub(&self, url: Option<String>) {
        *self.active_hub.lock().expect("active hub lock") = url;
    }

    /// The lease holds until `until` (by this process's monotonic clock).
    pub(super) fn extend(&self, until: Instant) {
        self.valid_until.fetch_max(self.nanos(until), Ordering::AcqRel);
    }

    /// The hub must stop, for `reason`: it sends nothing more.
    pub(super) fn lose(&self, reason: String) {
        self.lost.send_if_modified(|lost| {
            let first = lost.is_none();
            if first {
                *lost = Some(reason);
            }
            first
        });
    }

    /// Completes with the reason once the hub must stop.
    pub(super) async fn lost(&self) -> String {
        let mut lost = self.lost.subscribe();
        loop {
            let reason = lost.borrow_and_update().clone();
            if let Some(reason) = reason {
                return reason;
            }
            if lost.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    /// Until when an active hub on a lease may send.
    fn valid_until(&self) -> Instant {
        self.base + Duration::from_nanos(self.valid_until.load(Ordering::Acquire))
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos().min(u64::MAX as u128) as u64
    }
}

/// A standby's hold on the replicated log: what it has applied and replayed so far.
pub struct Follower {
    log: Box<dyn RecordLog>,
    derived: HubDerived,
    /// The log position the hub's state and derived state hold everything up to.
    replayed: u64,
    reopen: Option<Reopen>,
}

impl Follower {
    /// The follower of `store`, whose log the hub's state was replayed from up to where
    /// its derived state stands.
    pub(super) fn new(store: HubStore) -> Self {
        Self { replayed: store.applied, log: store.log, derived: store.derived, reopen: None }
    }

    /// How to get a fresh handle on the log when a takeover append is refused.
    pub fn reopen_with(mut self, reopen: Reopen) -> Self {
        self.reopen = Some(reopen);
        self
    }
}

impl Hub {
    /// Whether and until when this hub may serve and write.
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// A standby reads what the active hub appended since it last looked: applies it to
    /// its derived state, then replays it on its state (`recovery::replay`, as at start).
    /// Returns the log position it now holds. Fails with [`StoreError::Engine`] when the
    /// log cannot be read now (its servers unreachable: worth trying again), and otherwise
    /// when what it read does not apply or replay (the log is not this standby's to serve
    /// from). Blocking: run it off the async threads.
    pub fn follow(&self, follower: &mut Follower) -> Result<u64, StoreError> {
        let (mut batches, mut batch, mut through) = (Vec::new(), Vec::new(), follower.replayed);
        follower.log.read_from(follower.replayed + 1, &mut |entry| {
            batch.push(HubRecord::decode(entry.bytes)?);
            if entry.ends_batch {
                through = entry.seq;
                batches.push(std::mem::take(&mut batch));
            }
            Ok(())
        })?;
        if batches.is_empty() {
            return Ok(through);
        }
        follower.derived.apply(&batches, through)?;
        let mut state = self.inner.state.lock().expect("hub state lock");
        for record in batches.into_iter().flatten() {
            if let HubRecord::Active { hub, .. } = &record {
                self.inner.authority.set_active_hub(Some(hub.clone()));
            }
            recovery::replay(&mut state, record)
                .map_err(|reason| StoreError::Unusable { path: "the hub's replicated log".into(), reason })?;
        }
        follower.replayed = through;
        Ok(through)
    }

    /// Makes this standby the active hub, reached at `me`, once it holds the lease: reads
    /// to the log's end, appends its [`HubRecord::Active`] record fenced by what it read
    /// (reading again and retrying while the hub before it was still appending), and only
    /// then starts its journal. Blocking: run it off the async threads.
    pub fn take_over(&self, mut follower: Follower, me: &str) -> Result<(), String> {
        let mut tries = 0;
        loop {
            self.follow(&mut follower).map_err(|e| e.to_string())?;
            let unix_ms = self.now_unix_ms();
            let mut records = Vec::new();
            if follower.replayed == 0 {
                let state = self.inner.state.lock().expect("hub state lock");
                let (model, created) = (state.positions.model(), state.positions.window_opened_unix_ms());
                records.push(HubRecord::Created { model, unix_ms: created });
            }
            records.push(HubRecord::Active { hub: me.to_owned(), unix_ms });
            let mut batch = Batch::default();
            for record in &records {
                batch.push(|out| record.encode(out));
            }
            match follower.log.append(follower.replayed, &batch) {
                Ok(through) => {
                    follower
                        .derived
                        .apply(std::slice::from_ref(&records), through)
                        .map_err(|e| e.to_string())?;
                    follower.replayed = through;
                    break;
                }
                Err(StoreError::Fenced { .. }) if tries + 1 < TAKEOVER_TRIES => {
                    tries += 1;
                    tracing::warn!(tries, "another hub appended while this one took over: reading again");
                    let reopen = follower.reopen.as_ref().ok_or("the log refused the takeover")?;
                    follower.log = reopen().map_err(|e| e.to_string())?;
                }
                Err(error) => return Err(format!("taking over the hub's log: {error}")),
            }
        }
        self.inner.authority.set_active_hub(Some(me.to_owned()));
        self.activate(follower.log, follower.derived)?;
        tracing::info!(hub = me, through = follower.replayed, "this hub took over: it is the active hub");
        Ok(())
    }
}

/// How a hub on a replicated log takes part: where the log and lease are, and how banks
/// reach this hub.
#[derive(Clone, Debug)]
pub struct Replication {
    /// The NATS servers ("host:port,host:port").
    pub servers: String,
    /// The log's stream; the lease's bucket is named after it.
    pub stream: String,
    /// Copies of the log and lease the servers keep (3 survives losing one server).
    pub replicas: usize,
    /// How long the lease outlives its last renewal; renewed every quarter of it.
    pub lease_ttl: Duration,
    /// The URL banks reach this hub at: what the lease and a standby's refusal name.
    pub advertise: String,
}

/// How often a standby reads what the active hub appended, and looks at the lease.
pub const FOLLOW_PERIOD: Duration = Duration::from_millis(100);

/// The share of the lease's time to live a holder does not count on (renewals sent late,
/// clocks that run at slightly different rates, the time to stop).
const LEASE_MARGIN_DIVISOR: u32 = 4;

impl Replication {
    /// The lease bucket's name.
    pub fn lease_name(&self) -> String {
        format!("{}-lease", self.stream)
    }

    /// Until when a lease renewed by a request sent at `sent` is this hub's to count on.
    fn valid_until(&self, sent: Instant) -> Instant {
        sent + self.lease_ttl - self.lease_ttl / LEASE_MARGIN_DIVISOR
    }
}

/// The value a holder writes in the lease: its URL, then this process's own id, so that a
/// hub restarted at the same URL is not taken for the one before it.
fn lease_value(advertise: &str) -> String {
    format!("{advertise} {}", uuid::Uuid::new_v4().simple())
}

/// The URL in a lease's value.
fn lease_url(value: &str) -> &str {
    value.split_whitespace().next().unwrap_or_default()
}

/// Runs a hub of a replicated log (opened with [`Hub::open_standby`]): a standby following
/// the log until it takes the lease, then the active hub until it loses it, when
/// [`Hub::storage_failure`] completes and the hub must stop (a stopped hub rejoins by being
/// started again, as a standby). Returns when the hub must stop, or at `stop`.
pub async fn run_replicated(
    hub: Hub,
    follower: Follower,
    mut lease: Lease,
    replication: Replication,
    stop: CancellationToken,
) {
    let me = lease_value(&replication.advertise);
    let follower = tokio::select! {
        taken = stand_by(&hub, follower, &mut lease, &me) => taken,
        () = stop.cancelled() => return,
    };
    let (follower, sent) = match follower {
        Ok(taken) => taken,
        Err(reason) => return hub.inner.authority.lose(reason),
    };
    hub.inner.authority.extend(replication.valid_until(sent));
    let mut taking_over = Some({
        let hub = hub.clone();
        let url = replication.advertise.clone();
        tokio::task::spawn_blocking(move || hub.take_over(follower, &url))
    });
    loop {
        tokio::select! {
            () = hold_lease(&hub, &mut lease, &replication) => return,
            () = stop.cancelled() => {
                if let Err(error) = lease.release().await {
                    tracing::warn!(%error, "could not give the lease up: it lapses by itself");
                }
                return;
            }
            taken = async { taking_over.as_mut().expect("checked").await }, if taking_over.is_some() => {
                taking_over = None;
                if let Err(reason) = taken.map_err(|e| e.to_string()).and_then(|taken| taken) {
                    hub.inner.authority.lose(format!("the takeover failed: {reason}"));
                }
            }
        }
    }
}

/// A standby's life: follows the log every [`FOLLOW_PERIOD`], and notes which hub holds
/// the lease, until nobody does and this one takes it. Returns the follower and when the
/// lease was taken (its request sent).
async fn stand_by(
    hub: &Hub,
    mut follower: Follower,
    lease: &mut Lease,
    me: &str,
) -> Result<(Follower, Instant), String> {
    let mut ticks = tokio::time::interval(FOLLOW_PERIOD);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let following = {
            let hub = hub.clone();
            tokio::task::spawn_blocking(move || {
                let followed = hub.follow(&mut follower);
                (follower, followed)
            })
        };
        let followed;
        (follower, followed) = following.await.map_err(|e| e.to_string())?;
        match followed {
            Ok(_) => {}
            // Its servers out of reach (no quorum, cut off): a standby waits it out.
            Err(StoreError::Engine(error)) => {
                tracing::warn!(%error, "cannot follow the hub's log now; trying again")
            }
            // A log that does not replay is not this standby's to serve from.
            Err(error) => return Err(format!("following the hub's log: {error}")),
        }
        match lease.holder().await {
            Ok(Some(holder)) => hub.inner.authority.set_active_hub(Some(lease_url(&holder).to_owned())),
            Ok(None) => {
                let sent = Instant::now();
                match lease.acquire(me).await {
                    Ok(true) => {
                        tracing::info!(hub = lease_url(me), "this hub took the lease: taking over");
                        return Ok((follower, sent));
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not take the lease"),
                }
            }
            Err(error) => tracing::warn!(%error, "cannot read the lease"),
        }
    }
}

/// The lease holder's duty: renews every quarter of the time to live, extending how long
/// the hub may send; loses its authority (and so stops the hub) when the lease was taken,
/// or when it could not renew before the lease may have lapsed. Returns then.
async fn hold_lease(hub: &Hub, lease: &mut Lease, replication: &Replication) {
    let authority = &hub.inner.authority;
    let mut ticks = tokio::time::interval(replication.lease_ttl / 4);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if authority.lost.borrow().is_some() {
            return;
        }
        let sent = Instant::now();
        let valid_until = authority.valid_until();
        if sent >= valid_until {
            return authority.lose("the lease may have lapsed: it could not be renewed in time".into());
        }
        // One attempt waits at most until the next: an answer lost (a connection reset)
        // costs a tick, not the lease.
        let attempt = (valid_until - sent).min(replication.lease_ttl / 4);
        match tokio::time::timeout(attempt, lease.renew()).await {
            Ok(Ok(true)) => authority.extend(replication.valid_until(sent)),
            Ok(Ok(false)) => return authority.lose("the lease was lost: another hub holds it".into()),
            Ok(Err(error)) => tracing::warn!(%error, "could not renew the lease; trying again"),
            Err(_) => tracing::warn!("a renewal of the lease went unanswered; trying again"),
        }
    }
}
