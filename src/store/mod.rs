//! Durable storage: a group-commit journal in front of a narrow backend interface, and
//! the embedded SQLite backend (WAL, `synchronous=FULL`) that hub and banks use.
//!
//! Callers change their state in memory and [`GroupCommit::append`] the matching
//! records while still holding their state lock, so the journal's order is the state's
//! order. One writer thread drains every pending append into one transaction with one
//! fsync, then advances the durable ticket; callers await their ticket before anything
//! leaves the process (an ACK, a delivery confirmation, an answer to an operator).
//!
//! A backend only has to write a batch atomically and durably ([`Backend`]); recovery
//! is the owner's business (`hub::journal`, `bank::store`). A PostgreSQL backend would
//! implement the same trait.

mod sqlite;

pub use sqlite::{DataLock, SCHEMA_VERSION, open_sqlite, store_file};

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
    /// Writes every record in one transaction and returns only once it is durable
    /// (fsynced): after a power loss it is there whole or not at all.
    fn write_batch(&mut self, records: &[Self::Record]) -> Result<(), StoreError>;
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

struct Shared<R> {
    queue: Mutex<Queue<R>>,
    work: Condvar,
    durable: watch::Sender<u64>,
    /// Set when the writer stopped on a failure.
    failed: watch::Sender<Option<String>>,
    /// Whose journal (the `node` label of its metrics).
    name: &'static str,
}

/// A journal with group commit: many appends, one transaction and one fsync per batch.
pub struct GroupCommit<R> {
    shared: Arc<Shared<R>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl<R: Send + 'static> GroupCommit<R> {
    /// Starts the writer thread over `backend`.
    pub fn start<B: Backend<Record = R>>(mut backend: B, name: &'static str) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                appended: 0,
                closing: false,
                writer_waiting: false,
            }),
            work: Condvar::new(),
            durable: watch::Sender::new(0),
            failed: watch::Sender::new(None),
            name,
        });
        let writer_shared = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(format!("{name}-journal"))
            .spawn(move || write_loop(&mut backend, &writer_shared))
            .expect("the journal writer thread starts");
        Self { shared, writer: Some(writer) }
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
        let mut durable = self.shared.durable.subscribe();
        let mut failed = self.shared.failed.subscribe();
        loop {
            if *durable.borrow_and_update() >= ticket.0 {
                return Ok(());
            }
            if failed.borrow_and_update().is_some() {
                return Err(StoreError::WriterStopped);
            }
            tokio::select! {
                changed = durable.changed() => if changed.is_err() { return Err(StoreError::WriterStopped) },
                changed = failed.changed() => if changed.is_err() { return Err(StoreError::WriterStopped) },
            }
        }
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
        self.shared.queue.lock().expect("journal queue lock").closing = true;
        self.shared.work.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn write_loop<B: Backend>(backend: &mut B, shared: &Shared<B::Record>) {
    let mut spacing = CommitSpacing::default();
    // When each append of the batch was made: kept across commits, so no allocation.
    let mut appended_at = Vec::new();
    loop {
        let (batch, ticket) = {
            let mut queue = shared.queue.lock().expect("journal queue lock");
            let busy = !queue.pending.is_empty();
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
            let rest = spacing.wait(Instant::now()).filter(|_| busy && !full());
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
        if let Err(error) = written {
            // In-memory state is now ahead of the disk: nothing more may be confirmed.
            tracing::error!(%error, "journal write failed; the node must stop");
            shared.failed.send_replace(Some(error.to_string()));
            return;
        }
        shared.durable.send_replace(ticket);
        let durable_at = Instant::now();
        let wait = metrics::histogram!(crate::metrics::JOURNAL_WAIT, "node" => shared.name);
        for at in appended_at.drain(..) {
            wait.record(durable_at.saturating_duration_since(at).as_secs_f64());
        }
    }
}

/// When a busy writer may start its next commit. An fsync costs the machine more than its
/// wait: on a virtual disk, 150-250 µs of CPU in the kernel, whatever the batch's size.
/// A writer that commits again the moment its last commit ends commits as often as the
/// disk allows however few records wait, and under load that CPU is taken from the
/// messages. So when records were already waiting as a commit ended, the next one starts
/// [`COMMIT_SPACING`] times the last one's duration after its start (at most
/// [`COMMIT_SPACING_MAX`] later): the writer rests as long as it wrote, and the batch
/// gathers meanwhile. A writer that had to wait for work writes at once, so a quiet node
/// adds no delay; a fast disk makes the rest short, a slow one long.
#[derive(Debug, Default)]
struct CommitSpacing {
    /// The last commit's start and its duration.
    last: Option<(Instant, Duration)>,
}

/// The next commit starts this many times the last commit's duration after its start.
const COMMIT_SPACING: u32 = 2;

/// The longest rest between commits, however slow the last one was.
const COMMIT_SPACING_MAX: Duration = Duration::from_millis(5);

impl CommitSpacing {
    /// How long to wait at `now` before the next commit, if at all.
    fn wait(&self, now: Instant) -> Option<Duration> {
        let (started, took) = self.last?;
        let rest = (took * (COMMIT_SPACING - 1)).min(COMMIT_SPACING_MAX);
        (started + took + rest).checked_duration_since(now).filter(|wait| !wait.is_zero())
    }

    fn committed(&mut self, started: Instant, took: Duration) {
        self.last = Some((started, took));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps what it is given, slowly, so that appends arrive while it writes.
    struct SlowBackend {
        written: Arc<Mutex<Vec<u64>>>,
        batches: Arc<Mutex<usize>>,
    }

    impl Backend for SlowBackend {
        type Record = u64;
        fn write_batch(&mut self, records: &[u64]) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_millis(2));
            self.written.lock().unwrap().extend_from_slice(records);
            *self.batches.lock().unwrap() += 1;
            Ok(())
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

    /// A writer rests as long as its last commit took, counted from that commit's start,
    /// and never longer than the cap; before any commit, or once the rest is over, it
    /// writes at once.
    #[test]
    fn commit_spacing_rests_as_long_as_the_last_commit_took() {
        let ms = Duration::from_millis;
        let mut spacing = CommitSpacing::default();
        let start = Instant::now();
        assert_eq!(spacing.wait(start), None, "the first commit starts at once");
        spacing.committed(start, ms(2));
        assert_eq!(spacing.wait(start + ms(2)), Some(ms(2)), "ended just now: rests 2 ms");
        assert_eq!(spacing.wait(start + ms(3)), Some(ms(1)));
        assert_eq!(spacing.wait(start + ms(4)), None, "rested enough");
        assert_eq!(spacing.wait(start + ms(60)), None);
        spacing.committed(start, ms(100));
        assert_eq!(
            spacing.wait(start + ms(100)),
            Some(COMMIT_SPACING_MAX),
            "a slow commit rests at most the cap"
        );
    }
}
