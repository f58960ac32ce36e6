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
use std::time::Instant;

use tokio::sync::watch;

use super::{Hub, HubDerived, HubRecord, HubStore, recovery};
use crate::store::codec::LogRecord;
use crate::store::log::{Batch, RecordLog};
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

    pub(super) async fn wait_active(&self) {
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
    pub(super) fn new(store: HubStore, replayed: u64) -> Self {
        Self { log: store.log, derived: store.derived, replayed, reopen: None }
    }

    /// How to get a fresh handle on the log when a takeover append is refused.
    pub fn reopen_with(mut self, reopen: Reopen) -> Self {
        self.reopen = Some(reopen);
        self
    }

    /// The log position the standby holds everything up to.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }
}

impl Hub {
    /// Whether and until when this hub may serve and write.
    pub fn authority(&self) -> &Authority {
        &self.inner.authority
    }

    /// A standby reads what the active hub appended since it last looked: applies it to
    /// its derived state, then replays it on its state (`recovery::replay`, as at start).
    /// Returns the log position it now holds. Blocking: run it off the async threads.
    pub fn follow(&self, follower: &mut Follower) -> Result<u64, String> {
        let (mut batches, mut batch, mut through) = (Vec::new(), Vec::new(), follower.replayed);
        follower
            .log
            .read_from(follower.replayed + 1, &mut |entry| {
                batch.push(HubRecord::decode(entry.bytes)?);
                if entry.ends_batch {
                    through = entry.seq;
                    batches.push(std::mem::take(&mut batch));
                }
                Ok(())
            })
            .map_err(|e| format!("following the hub's log: {e}"))?;
        if batches.is_empty() {
            return Ok(through);
        }
        follower.derived.apply(&batches, through).map_err(|e| e.to_string())?;
        let mut state = self.inner.state.lock().expect("hub state lock");
        for record in batches.into_iter().flatten() {
            if let HubRecord::Active { hub, .. } = &record {
                self.inner.authority.set_active_hub(Some(hub.clone()));
            }
            recovery::replay(&mut state, record)?;
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
            self.follow(&mut follower)?;
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
