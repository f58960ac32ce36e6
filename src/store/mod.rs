//! Durable storage: a group-commit journal writing one append-only log per node, and
//! the derived state (SQLite) applied behind it.
//!
//! Callers change their state in memory and [`GroupCommit::append`] the matching
//! records while still holding their state lock, so the journal's order is the state's
//! order. One writer thread drains every pending append into one batch of the node's
//! log ([`log`]) with one `fdatasync`, then advances the durable ticket; callers await
//! their ticket before anything leaves the process (an ACK, a delivery confirmation, an
//! answer to an operator).
//!
//! What a node queries (its payment archive, statements, the duplicate check's older
//! tier) is derived state ([`Derived`]): another thread applies the durable records to it
//! in large batches, far fewer and larger transactions than commits, with no fsync of
//! its own. It records how far it applied, and on open it is brought up to the log's end
//! from the log, or rebuilt from the log whole when it is missing or damaged ([`node`]).
//! A crash between the log and the derived state loses nothing.

pub mod codec;
pub mod log;
pub mod nats;
mod node;
mod sqlite;

pub use node::{DataLock, NodeStore, catch_up, derived_file, store_file};
pub use sqlite::{SCHEMA_VERSION, applied_through, set_applied_through};

/// Lowers the calling thread's scheduling priority (nice 10): the derived state's applier
/// and the checkpointers run in the CPU the message path leaves, so their large
/// transactions do not queue messages behind them. Their lag is bounded anyway (see
/// [`APPLY_BACKLOG_MAX`]).
fn background_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers; a failure leaves the priority as it was.
    unsafe {
        let thread = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10) != 0 {
            tracing::debug!("cannot lower a background thread's priority");
        }
    }
}

/// Puts the file `building`, written whole, in place at `path` durably: synced, renamed,
/// and the directory synced. A crash at any moment leaves either no file at `path` or the
/// whole one, never half of it.
fn put_in_place(building: &std::path::Path, path: &std::path::Path) -> Result<(), String> {
    let sync = |target: &std::path::Path| std::fs::File::open(target).and_then(|f| f.sync_all());
    sync(building).map_err(|e| format!("cannot sync {}: {e}", building.display()))?;
    std::fs::rename(building, path).map_err(|e| format!("cannot put {} in place: {e}", path.display()))?;
    if let Some(parent) = path.parent() {
        sync(parent).map_err(|e| format!("cannot sync the data directory: {e}"))?;
    }
    Ok(())
}

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::watch;

/// Most records the writer puts in one transaction.
pub const BATCH_RECORDS_MAX: usize = 4096;

/// What can go wrong with storage.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory or file cannot be used, with the reason.
    #[error("{path}: {reason}")]
    Unusable {
        /// The file or directory.
        path: String,
        /// Why.
        reason: String,
    },
    /// The storage engine failed.
    #[error("storage: {0}")]
    Engine(String),
    /// The journal's writer stopped after a failure: nothing more can be made durable.
    #[error("the journal writer stopped after a storage failure")]
    WriterStopped,
    /// An append fenced by the sequence it follows found the log elsewhere: another
    /// writer appended, or this one lost track. Nothing was written.
    #[error("the log refused an append after record {expected}: its last record is {last}")]
    Fenced {
        /// The sequence the append said it follows.
        expected: u64,
        /// The log's last sequence.
        last: u64,
    },
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Engine(error.to_string())
    }
}

/// Something that writes batches of records atomically and durably.
pub trait Backend: Send + 'static {
    /// The record type.
    type Record: Send + 'static;
    /// Writes every record as one batch and returns only once it is durable (fsynced):
    /// after a power loss it is there whole or not at all. Returns the position of its
    /// last record (the log's sequence number).
    fn write_batch(&mut self, records: &[Self::Record]) -> Result<u64, StoreError>;
}

/// State derived from the durable records, applied behind them (see the module's
/// documentation).
pub trait Derived: Send + 'static {
    /// The record type.
    type Record: Send + 'static;
    /// Applies `batches`, in order, whose last record is at log position `through`, and
    /// records `through` with them atomically.
    fn apply(&mut self, batches: &[Vec<Self::Record>], through: u64) -> Result<(), StoreError>;
}

/// The derived state's applier holds at least this long to gather records, so that one
/// transaction takes the commits of that time.
pub const APPLY_PERIOD: Duration = Duration::from_millis(50);

/// The applier applies at once when this many records wait.
pub const APPLY_RECORDS_MAX: usize = 16_384;

/// The writer waits when this many durable records wait for the applier: the derived
/// state lags the log by a bounded amount, and so does the memory its queue holds.
pub const APPLY_BACKLOG_MAX: usize = 4 * APPLY_RECORDS_MAX;

/// The writer of a node's log: encodes each batch of records and appends it fenced by the
/// last sequence it wrote, so that a log another writer moved refuses it.
pub struct LogWriter<R> {
    log: Box<dyn log::RecordLog>,
    batch: log::Batch,
    /// The log's last sequence as this writer knows it.
    last: u64,
    name: &'static str,
    _records: std::marker::PhantomData<fn(R)>,
}

impl<R> LogWriter<R> {
    /// Writes `log` from its current end.
    pub fn new(log: impl log::RecordLog, name: &'static str) -> Self {
        let last = log.last();
        Self {
            log: Box::new(log),
            batch: log::Batch::default(),
            last,
            name,
            _records: std::marker::PhantomData,
        }
    }
}

impl<R> LogWriter<R> {
    fn append(&mut self) -> Result<(), StoreError> {
        self.last = self.log.append(self.last, &self.batch)?;
        metrics::counter!(crate::metrics::JOURNAL_BYTES, "node" => self.name)
            .increment(self.batch.body_len() as u64);
        Ok(())
    }
}

impl<R: codec::LogRecord + Send + 'static> Backend for LogWriter<R> {
    type Record = R;

    /// One append, or several when the records outgrow what one append of the log takes
    /// ([`log::RecordLog::batch_bytes_max`]): each record stands alone, so a crash between
    /// two appends leaves a prefix, as a crash before the durable ticket moved would.
    fn write_batch(&mut self, records: &[R]) -> Result<u64, StoreError> {
        let bytes_max = self.log.batch_bytes_max();
        self.batch.clear();
        for record in records {
            let before = self.batch.body_len();
            self.batch.push(|out| record.encode(out));
            if self.batch.body_len() > bytes_max && before > 0 {
                // The record goes to the next append: this one ends before it.
                let next = self.batch.split_off(before);
                self.append()?;
                self.batch = next;
            }
        }
        self.append()?;
        Ok(self.last)
    }
}

/// Position of an append in the journal; durable once the journal's durable ticket
/// reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Ticket(pub u64);

impl Ticket {
    /// The ticket of things recovered from storage: durable already.
    pub const DURABLE: Ticket = Ticket(0);
}

struct Queue<R> {
    /// Appends not yet taken by the writer, with their tickets and when they were made.
    pending: VecDeque<(u64, Instant, Vec<R>)>,
    /// Ticket of the last append.
    appended: u64,
    /// Set when the journal is dropped: the writer drains and exits.
    closing: bool,
    /// The writer is waiting for work: only then does an append wake it. A busy writer
    /// takes what was appended meanwhile when its batch is done, so appends during a
    /// write cost no system call (a condition variable's notify always makes one).
    writer_waiting: bool,
}

/// Durable batches waiting for the derived state's applier.
struct ApplyQueue<R> {
    batches: Vec<Vec<R>>,
    records: usize,
    /// The log position and the ticket of the last batch queued.
    through: u64,
    ticket: u64,
    /// Set when the journal is dropped: the writer no longer waits for the backlog.
    closing: bool,
    /// Set once the writer has stopped: the applier applies what is left and stops.
    writer_done: bool,
}

struct Shared<R> {
    queue: Mutex<Queue<R>>,
    work: Condvar,
    durable: watch::Sender<u64>,
    /// The highest ticket the derived state holds (the durable one when there is none).
    applied: watch::Sender<u64>,
    /// Set when the journal has derived state.
    apply: Option<(Mutex<ApplyQueue<R>>, Condvar)>,
    /// Set when the writer stopped on a failure.
    failed: watch::Sender<Option<String>>,
    /// Whose journal (the `node` label of its metrics).
    name: &'static str,
}

/// A journal with group commit: many appends, one transaction and one fsync per batch.
pub struct GroupCommit<R> {
    shared: Arc<Shared<R>>,
    writer: Option<std::thread::JoinHandle<()>>,
    applier: Option<std::thread::JoinHandle<()>>,
}

impl<R: Send + 'static> GroupCommit<R> {
    /// Starts the writer thread over `backend`, with no derived state.
    pub fn start<B: Backend<Record = R>>(backend: B, name: &'static str) -> Self {
        Self::start_inner(backend, None::<NoDerived<R>>, name)
    }

    /// Starts the writer thread over `backend`, and the applier of `derived`, which holds
    /// everything the backend held when this started.
    pub fn start_with<B: Backend<Record = R>, D: Derived<Record = R>>(
        backend: B,
        derived: D,
        name: &'static str,
    ) -> Self {
        Self::start_inner(backend, Some(derived), name)
    }

    fn start_inner<B: Backend<Record = R>, D: Derived<Record = R>>(
        mut backend: B,
        derived: Option<D>,
        name: &'static str,
    ) -> Self {
        let apply = derived.is_some().then(|| {
            let queue = ApplyQueue {
                batches: Vec::new(),
                records: 0,
                through: 0,
                ticket: 0,
                closing: false,
                writer_done: false,
            };
            (Mutex::new(queue), Condvar::new())
        });
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                appended: 0,
                closing: false,
                writer_waiting: false,
            }),
            work: Condvar::new(),
            durable: watch::Sender::new(0),
            applied: watch::Sender::new(0),
            apply,
            failed: watch::Sender::new(None),
            name,
        });
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(format!("{name}-journal"))
            .spawn(move || write_loop(&mut backend, &writer_shared))
            .expect("the journal writer thread starts");
        let applier = derived.map(|mut derived| {
            let applier_shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("{name}-derived"))
                .spawn(move || apply_loop(&mut derived, &applier_shared))
                .expect("the derived state's applier thread starts")
        });
        Self { shared, writer: Some(writer), applier }
    }

    /// Queues records; they become durable together, in append order. Never blocks on
    /// I/O. The number of appends waiting is bounded by the callers: every session and
    /// request awaits its ticket before doing more, and those are bounded by the
    /// server's stream and connection limits.
    pub fn append(&self, records: Vec<R>) -> Ticket {
        let now = Instant::now();
        let mut queue = self.shared.queue.lock().expect("journal queue lock");
        queue.appended += 1;
        let ticket = queue.appended;
        queue.pending.push_back((ticket, now, records));
        let wake = std::mem::take(&mut queue.writer_waiting);
        drop(queue);
        if wake {
            self.shared.work.notify_one();
        }
        Ticket(ticket)
    }

    /// The ticket of the last append (durable once everything appended so far is).
    pub fn appended(&self) -> Ticket {
        Ticket(self.shared.queue.lock().expect("journal queue lock").appended)
    }

    /// The highest durable ticket.
    pub fn durable(&self) -> Ticket {
        Ticket(*self.shared.durable.borrow())
    }

    /// Waits until `ticket` is durable, or fails if the writer stopped.
    pub async fn wait(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.wait_on(&self.shared.durable, ticket).await
    }

    /// Waits until `watched` reaches `ticket`, or fails if the writer or the applier
    /// stopped.
    async fn wait_on(&self, watched: &watch::Sender<u64>, ticket: Ticket) -> Result<(), StoreError> {
        let mut reached = watched.subscribe();
        let mut failed = self.shared.failed.subscribe();
        loop {
            if *reached.borrow_and_update() >= ticket.0 {
                return Ok(());
            }
            if failed.borrow_and_update().is_some() {
                return Err(StoreError::WriterStopped);
            }
            tokio::select! {
                changed = reached.changed() => if changed.is_err() { return Err(StoreError::WriterStopped) },
                changed = failed.changed() => if changed.is_err() { return Err(StoreError::WriterStopped) },
            }
        }
    }

    /// The highest ticket the derived state holds: what was appended up to it can be
    /// read there.
    pub fn applied(&self) -> Ticket {
        Ticket(*self.shared.applied.borrow())
    }

    /// Waits until the derived state holds `ticket`, or fails if the writer or the
    /// applier stopped.
    pub async fn wait_applied(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.wait_on(&self.shared.applied, ticket).await
    }

    /// Notified whenever the durable ticket advances.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.durable.subscribe()
    }

    /// Completes with the reason when the writer stops on a failure.
    pub async fn failure(&self) -> String {
        let mut failed = self.shared.failed.subscribe();
        let reason = failed.wait_for(Option::is_some).await.map(|reason| reason.clone());
        match reason {
            Ok(Some(reason)) => reason,
            _ => std::future::pending().await,
        }
    }
}

impl<R> Drop for GroupCommit<R> {
    fn drop(&mut self) {
        let stop_applier = |writer_done: bool| {
            if let Some((queue, work)) = &self.shared.apply {
                let mut pending = queue.lock().expect("apply queue lock");
                pending.closing = true;
                pending.writer_done |= writer_done;
                work.notify_all();
            }
        };
        // A writer held back by the applier's backlog goes on to its end.
        stop_applier(false);
        self.shared.queue.lock().expect("journal queue lock").closing = true;
        self.shared.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        // The writer handed over its last batch: the applier applies it and stops.
        stop_applier(true);
        if let Some(applier) = self.applier.take() {
            let _ = applier.join();
        }
    }
}

/// The derived state of a journal that has none.
struct NoDerived<R>(std::marker::PhantomData<fn() -> R>);

impl<R: Send + 'static> Derived for NoDerived<R> {
    type Record = R;
    fn apply(&mut self, _: &[Vec<R>], _: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Applies durable batches to the derived state: waits for a batch, gathers for
/// [`APPLY_PERIOD`] (or until [`APPLY_RECORDS_MAX`] wait), applies everything in one go.
fn apply_loop<D: Derived>(derived: &mut D, shared: &Shared<D::Record>) {
    background_priority();
    let (queue, work) = shared.apply.as_ref().expect("a journal with derived state");
    loop {
        let (batches, through, ticket) = {
            let mut pending = queue.lock().expect("apply queue lock");
            while pending.batches.is_empty() && !pending.writer_done {
                pending = work.wait(pending).expect("apply queue lock");
            }
            if pending.batches.is_empty() {
                return;
            }
            let gather_until = Instant::now() + APPLY_PERIOD;
            while !pending.closing && pending.records < APPLY_RECORDS_MAX {
                let Some(left) = gather_until.checked_duration_since(Instant::now()) else { break };
                pending = work.wait_timeout(pending, left).expect("apply queue lock").0;
            }
            pending.records = 0;
            // A writer held back by the backlog may go on.
            work.notify_all();
            (std::mem::take(&mut pending.batches), pending.through, pending.ticket)
        };
        let started = Instant::now();
        if let Err(error) = derived.apply(&batches, through) {
            tracing::error!(%error, "applying the log to the derived state failed; the node must stop");
            shared.failed.send_replace(Some(error.to_string()));
            return;
        }
        metrics::histogram!(crate::metrics::JOURNAL_APPLY, "node" => shared.name)
            .record(started.elapsed().as_secs_f64());
        shared.applied.send_replace(ticket);
    }
}

fn write_loop<B: Backend>(backend: &mut B, shared: &Shared<B::Record>) {
    let mut spacing = CommitSpacing::default();
    // When each append of the batch was made: kept across commits, so no allocation.
    let mut appended_at = Vec::new();
    loop {
        let (batch, ticket) = {
            let mut queue = shared.queue.lock().expect("journal queue lock");
            while queue.pending.is_empty() && !queue.closing {
                queue.writer_waiting = true;
                queue = shared.work.wait(queue).expect("journal queue lock");
            }
            queue.writer_waiting = false;
            if queue.pending.is_empty() {
                return;
            }
            let full = || {
                queue.pending.iter().map(|(_, _, records)| records.len()).sum::<usize>() >= BATCH_RECORDS_MAX
            };
            let rest = spacing.wait(Instant::now()).filter(|_| !full());
            if let Some(gap) = rest {
                // Appends made meanwhile join this batch; they do not wake the writer.
                drop(queue);
                std::thread::sleep(gap);
                queue = shared.queue.lock().expect("journal queue lock");
            }
            let mut batch = Vec::new();
            let mut ticket = 0;
            while let Some((next_ticket, at, records)) = queue.pending.pop_front() {
                batch.extend(records);
                appended_at.push(at);
                ticket = next_ticket;
                if batch.len() >= BATCH_RECORDS_MAX {
                    break;
                }
            }
            (batch, ticket)
        };
        let started = Instant::now();
        let written = backend.write_batch(&batch);
        let took = started.elapsed();
        spacing.committed(started, took);
        metrics::histogram!(crate::metrics::JOURNAL_COMMIT, "node" => shared.name).record(took.as_secs_f64());
        metrics::histogram!(crate::metrics::JOURNAL_BATCH, "node" => shared.name).record(batch.len() as f64);
        let through = match written {
            Ok(through) => through,
            Err(error) => {
                // In-memory state is now ahead of the disk: nothing more may be confirmed.
                tracing::error!(%error, "journal write failed; the node must stop");
                shared.failed.send_replace(Some(error.to_string()));
                return;
            }
        };
        shared.durable.send_replace(ticket);
        match &shared.apply {
            Some((queue, work)) => {
                let mut pending = queue.lock().expect("apply queue lock");
                let wake = pending.batches.is_empty();
                pending.records += batch.len();
                pending.batches.push(batch);
                (pending.through, pending.ticket) = (through, ticket);
                if wake {
                    work.notify_all();
                }
                // An applier that falls behind holds the writer back (and so the appends),
                // rather than letting its queue, and the memory, grow without bound.
                while pending.records > APPLY_BACKLOG_MAX
                    && !pending.closing
                    && shared.failed.borrow().is_none()
                {
                    pending = work.wait_timeout(pending, APPLY_PERIOD).expect("apply queue lock").0;
                }
            }
            None => {
                shared.applied.send_replace(ticket);
            }
        }
        let durable_at = Instant::now();
        let wait = metrics::histogram!(crate::metrics::JOURNAL_WAIT, "node" => shared.name);
        for at in appended_at.drain(..) {
            wait.record(durable_at.saturating_duration_since(at).as_secs_f64());
        }
    }
}

/// When the writer may start its next commit. An fsync costs the machine more than its
/// wait: on a virtual disk, 150-250 µs of CPU in the kernel, whatever the batch's size.
/// A writer that commits again the moment its last commit ends, or the moment one record
/// arrives, commits as often as the disk allows however few records wait: at part load
/// that doubled the CPU a payment cost (about 4,000 fsyncs/s at half the maximum rate
/// against 2,200 at the maximum). So the next commit starts no sooner than
/// [`COMMIT_INTERVAL_MIN`] after the last one started, and no sooner than
/// [`COMMIT_SPACING`] times the last one's duration (at most [`COMMIT_SPACING_MAX`]):
/// records gather meanwhile. A node quiet for longer than that writes at once.
#[derive(Debug, Default)]
struct CommitSpacing {
    /// The last commit's start and its duration.
    last: Option<(Instant, Duration)>,
}

/// The next commit starts this many times the last commit's duration after its start.
const COMMIT_SPACING: u32 = 2;

/// The longest rest between commits, however slow the last one was.
const COMMIT_SPACING_MAX: Duration = Duration::from_millis(5);

/// The shortest time between the starts of two commits: a node commits at most 500 times
/// a second, so a message waits at most this long for its commit to start.
pub const COMMIT_INTERVAL_MIN: Duration = Duration::from_millis(2);

impl CommitSpacing {
    /// How long to wait at `now` before the next commit, if at all.
    fn wait(&self, now: Instant) -> Option<Duration> {
        let (started, took) = self.last?;
        let rest = (took * (COMMIT_SPACING - 1)).min(COMMIT_SPACING_MAX);
        let next = (started + took + rest).max(started + COMMIT_INTERVAL_MIN);
        next.checked_duration_since(now).filter(|wait| !wait.is_zero())
    }

    fn committed(&mut self, started: Instant, took: Duration) {
        self.last = Some((started, took));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log in memory whose appends take at most `bytes_max` bytes, as a replicated log's
    /// messages do: it keeps each append's records.
    struct SmallAppends {
        appends: Arc<Mutex<Vec<Vec<Vec<u8>>>>>,
        bytes_max: usize,
    }

    impl log::RecordLog for SmallAppends {
        fn last(&self) -> u64 {
            self.appends.lock().unwrap().iter().map(Vec::len).sum::<usize>() as u64
        }

        fn append(&mut self, after: u64, batch: &log::Batch) -> Result<u64, StoreError> {
            assert_eq!(after, self.last(), "appends follow on");
            assert!(batch.body_len() <= self.bytes_max, "an append over the log's maximum");
            let records = log::Batch::records(batch.body()).map(|r| r.unwrap().to_vec()).collect();
            self.appends.lock().unwrap().push(records);
            Ok(self.last())
        }

        fn read_from(
            &self,
            _: u64,
            _: &mut dyn FnMut(log::Entry<'_>) -> Result<(), String>,
        ) -> Result<u64, StoreError> {
            unreachable!("the writer does not read")
        }

        fn batch_bytes_max(&self) -> usize {
            self.bytes_max
        }
    }

    struct Blob(Vec<u8>);

    impl codec::LogRecord for Blob {
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0);
        }
        fn decode(record: &[u8]) -> Result<Self, String> {
            Ok(Blob(record.to_vec()))
        }
    }

    /// A log whose appends have a maximum size (a NATS server's max_payload) gets a large
    /// group commit as several appends, each under it, in order and with every record
    /// once: without the split its first large batch would be refused and the node stop.
    #[test]
    fn a_batch_larger_than_one_append_of_its_log_goes_in_several_in_order() {
        let appends = Arc::new(Mutex::new(Vec::new()));
        let mut writer =
            LogWriter::<Blob>::new(SmallAppends { appends: Arc::clone(&appends), bytes_max: 100 }, "test");
        let records: Vec<Blob> = (0..20u8).map(|i| Blob(vec![i; 30])).collect();
        assert_eq!(writer.write_batch(&records).unwrap(), 20);
        let appends = appends.lock().unwrap();
        assert!(appends.len() >= 7, "34 bytes a record, at most 2 in 100 bytes: {} appends", appends.len());
        let flat: Vec<Vec<u8>> = appends.iter().flatten().cloned().collect();
        assert_eq!(flat, records.iter().map(|b| b.0.clone()).collect::<Vec<_>>());
    }

    /// Keeps what it is given, slowly, so that appends arrive while it writes.
    struct SlowBackend {
        written: Arc<Mutex<Vec<u64>>>,
        batches: Arc<Mutex<usize>>,
    }

    impl Backend for SlowBackend {
        type Record = u64;
        fn write_batch(&mut self, records: &[u64]) -> Result<u64, StoreError> {
            std::thread::sleep(Duration::from_millis(2));
            let mut written = self.written.lock().unwrap();
            written.extend_from_slice(records);
            *self.batches.lock().unwrap() += 1;
            Ok(written.len() as u64)
        }
    }

    /// Appends from many tasks, some while the writer is busy and some while it waits:
    /// every ticket becomes durable (none waits for a wake that never comes), in append
    /// order, and appends made during a write are taken together in the next batch.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_append_becomes_durable_whether_the_writer_was_busy_or_waiting() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let batches = Arc::new(Mutex::new(0));
        let journal = Arc::new(GroupCommit::start(
            SlowBackend { written: Arc::clone(&written), batches: Arc::clone(&batches) },
            "test",
        ));
        let mut tasks = Vec::new();
        for task in 0..16u64 {
            let journal = Arc::clone(&journal);
            tasks.push(tokio::spawn(async move {
                for i in 0..50u64 {
                    let ticket = journal.append(vec![task * 1000 + i]);
                    // Every fifth append is awaited at once; the others pile up behind
                    // a busy writer, and an idle pause lets the writer go back to waiting.
                    if i % 5 == 0 {
                        journal.wait(ticket).await.expect("durable");
                    }
                    if i % 17 == 0 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                let last = journal.appended();
                journal.wait(last).await.expect("durable");
            }));
        }
        for task in tasks {
            // A generous guard, not a performance bound: a lost wake-up hangs forever.
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("no append waits forever for a writer nobody woke")
                .expect("the task ends");
        }
        assert_eq!(journal.durable(), journal.appended());
        let written = written.lock().unwrap().clone();
        assert_eq!(written.len(), 16 * 50, "every record written once");
        for task in 0..16u64 {
            let mine: Vec<u64> = written.iter().copied().filter(|r| r / 1000 == task).collect();
            assert_eq!(mine, (0..50).map(|i| task * 1000 + i).collect::<Vec<_>>(), "in append order");
        }
        assert!(*batches.lock().unwrap() < 16 * 50, "appends during a write share a batch");
    }

    /// Opens the gate when dropped, so that a failed test does not leave the applier
    /// waiting forever.
    struct Gate(Arc<(Mutex<bool>, Condvar)>);

    impl Gate {
        fn open(&self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }
    }

    impl Drop for Gate {
        fn drop(&mut self) {
            self.open();
        }
    }

    /// Applies nothing until its gate opens, then records what it applied.
    struct GatedDerived {
        open: Arc<(Mutex<bool>, Condvar)>,
        applied: Arc<Mutex<Vec<u64>>>,
    }

    impl Derived for GatedDerived {
        type Record = u64;
        fn apply(&mut self, batches: &[Vec<u64>], _through: u64) -> Result<(), StoreError> {
            let (gate, opened) = &*self.open;
            let mut open = gate.lock().unwrap();
            while !*open {
                open = opened.wait(open).unwrap();
            }
            self.applied.lock().unwrap().extend(batches.iter().flatten());
            Ok(())
        }
    }

    /// The derived state is applied behind the durable records, in order, and an applier
    /// that falls behind holds the writer back once its backlog is full, so the records
    /// waiting for it (and the memory they take) are bounded; once it moves, everything
    /// becomes durable and applied, each record once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_derived_state_that_falls_behind_holds_the_writer_back_then_catches_up() {
        let open = Arc::new((Mutex::new(false), Condvar::new()));
        let gate = Gate(Arc::clone(&open));
        let applied = Arc::new(Mutex::new(Vec::new()));
        let written = Arc::new(Mutex::new(Vec::new()));
        let journal = GroupCommit::start_with(
            SlowBackend { written: Arc::clone(&written), batches: Arc::new(Mutex::new(0)) },
            GatedDerived { open: Arc::clone(&open), applied: Arc::clone(&applied) },
            "test",
        );
        // Far more than the applier's first take (what the writer wrote while it gathered)
        // and the backlog together.
        let total = (APPLY_BACKLOG_MAX * 6) as u64;
        let mut last = Ticket::DURABLE;
        for chunk in (0..total).collect::<Vec<_>>().chunks(BATCH_RECORDS_MAX) {
            last = journal.append(chunk.to_vec());
        }
        // The writer writes past the backlog's bound, then waits for the applier.
        while written.lock().unwrap().len() <= APPLY_BACKLOG_MAX {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let held = written.lock().unwrap().len();
        assert!(held < total as usize, "the writer went on with {held} records waiting for the applier");
        assert_eq!(journal.applied(), Ticket::DURABLE, "nothing applied while the gate is shut");
        gate.open();
        // A generous guard, not a performance bound.
        tokio::time::timeout(Duration::from_secs(60), journal.wait_applied(last)).await.unwrap().unwrap();
        assert_eq!(
            *applied.lock().unwrap(),
            (0..total).collect::<Vec<_>>(),
            "each record applied once, in order"
        );
    }

    /// A writer rests as long as its last commit took, counted from that commit's start,
    /// and never longer than the cap; two commits start at least the minimum interval
    /// apart however fast the last was; before any commit, or once the rest is over, it
    /// writes at once.
    #[test]
    fn commit_spacing_rests_as_long_as_the_last_commit_took() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        let mut spacing = CommitSpacing::default();
        let start = Instant::now();
        assert_eq!(spacing.wait(start), None, "the first commit starts at once");
        spacing.committed(start, ms(2));
        assert_eq!(spacing.wait(start + ms(2)), Some(ms(2)), "ended just now: rests 2 ms");
        assert_eq!(spacing.wait(start + ms(3)), Some(ms(1)));
        assert_eq!(spacing.wait(start + ms(4)), None, "rested enough");
        assert_eq!(spacing.wait(start + ms(60)), None);
        spacing.committed(start, us(200));
        assert_eq!(
            spacing.wait(start + us(200)),
            Some(COMMIT_INTERVAL_MIN - us(200)),
            "a fast commit: the interval"
        );
        assert_eq!(spacing.wait(start + COMMIT_INTERVAL_MIN), None);
        spacing.committed(start, ms(100));
        assert_eq!(
            spacing.wait(start + ms(100)),
            Some(COMMIT_SPACING_MAX),
            "a slow commit rests at most the cap"
        );
    }
}
