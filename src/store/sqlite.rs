//! Opening a node's derived state in SQLite: WAL, `synchronous=NORMAL` (the log is the
//! durable copy: a derived store that lost its last transactions to a power loss is
//! brought up again from the log), and a check that the file belongs to this participant
//! and this schema before anything is read or written; and its checkpointer, which copies
//! the write-ahead log into the database off the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;

/// Schema version this build reads and writes. Any other in a file is refused: there are
/// no migrations yet, so an older store is kept as it is rather than half-read. Version 6
/// is the first whose SQLite file is derived state behind a log.
pub const SCHEMA_VERSION: i64 = 7;

/// The first schema of a derived state behind a log. A derived state of an older schema
/// from this one on is rebuilt from its log; a store older than it was the store itself
/// (no log), and is refused.
const FIRST_DERIVED_SCHEMA: i64 = 6;

/// Pages the write-ahead log grows to before the writer itself checkpoints (16384 pages
/// of 4 KiB: the log stays under 64 MiB). The checkpointer thread has copied all but the
/// last [`CHECKPOINT_PERIOD`] of them by then, so the writer copies little and syncs once;
/// its checkpoint is the one that lets the log start over from its beginning.
const WAL_CHECKPOINT_PAGES: i64 = 16_384;

/// How often the checkpointer copies what the log gained into the database. Each
/// checkpoint writes its pages and syncs the database, and the disk makes every node's
/// log `fdatasync` wait behind that write: checkpoints a second apart wrote in bursts
/// that stalled commits for 30-70 ms once a second (at half the maximum rate, p99 3.1-4.0
/// times the mean latency, against 2.3-2.7 with 200 ms, for about 5% more CPU a payment:
/// docs/PERFORMANCE.md).
const CHECKPOINT_PERIOD: Duration = Duration::from_millis(200);

/// Why a derived store cannot be used.
#[derive(Debug)]
pub(super) enum Refusal {
    /// It is someone else's, or of another schema: refused, never touched.
    Foreign(String),
    /// It is damaged, not a database, or of an older schema of derived state:
    /// rebuildable from the log.
    Damaged(String),
}

/// Opens (or, when `path` does not exist yet, creates with `schema`) the derived store of
/// `participant` in role `role`, and starts its checkpointer.
pub(super) fn open_sqlite(
    path: &Path,
    role: &str,
    participant: &str,
    schema: &str,
) -> Result<(Connection, Checkpointer), Refusal> {
    if !path.exists() {
        create(path, role, participant, schema).map_err(Refusal::Damaged)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|e| Refusal::Damaged(e.to_string()))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| Refusal::Damaged(format!("not a Corridor store (or a corrupt one): {e}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Refusal::Damaged(format!("cannot use write-ahead logging (journal mode {mode})")));
    }
    connection.pragma_update(None, "synchronous", "NORMAL").map_err(|e| Refusal::Damaged(e.to_string()))?;
    // Append-only tables rewrite their last page at every commit; a checkpoint copies each
    // page once however often the log rewrote it, so checkpoints far apart copy less.
    connection
        .pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
        .map_err(|e| Refusal::Damaged(e.to_string()))?;
    check_meta(&connection, role, participant)?;
    let checkpointer = Checkpointer::start(path.to_path_buf(), role);
    Ok((connection, checkpointer))
}

/// The log position the derived store holds everything up to (0 when new).
pub fn applied_through(connection: &Connection) -> Result<u64, StoreError> {
    let value: Option<String> = connection
        .query_row("SELECT value FROM meta WHERE key = 'applied_through'", [], |row| row.get(0))
        .optional()?;
    value.map_or(Ok(0), |v| v.parse().map_err(|e| StoreError::Engine(format!("applied_through {v:?}: {e}"))))
}

/// Records, in the transaction that applies them, that the derived store holds every
/// record up to log position `through`.
pub fn set_applied_through(transaction: &rusqlite::Transaction<'_>, through: u64) -> Result<(), StoreError> {
    transaction
        .prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('applied_through', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute([through.to_string()])?;
    Ok(())
}

/// A thread with a connection of its own that copies the write-ahead log into the database
/// every [`CHECKPOINT_PERIOD`] (a passive checkpoint: it never waits for the writer, nor
/// the writer for it). Without it, the writer copied 64 MiB of log and synced the database
/// inside a commit every few seconds under load, and every message waiting for that
/// commit waited for the copy too.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: PathBuf, role: &str) -> Self {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("{role}-checkpoint"))
            .spawn(move || checkpoint_loop(&path, &stopped))
            .expect("the checkpointer thread starts");
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.stop.0.lock().expect("checkpointer lock") = true;
        self.stop.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn checkpoint_loop(path: &Path, stop: &(Mutex<bool>, Condvar)) {
    super::background_priority();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = match Connection::open_with_flags(path, flags) {
        Ok(connection) => connection,
        Err(error) => {
            // The writer's own checkpoints still keep the log bounded.
            tracing::warn!(path = %path.display(), %error, "no background checkpoints for this store");
            return;
        }
    };
    let mut stopped = stop.0.lock().expect("checkpointer lock");
    loop {
        stopped = stop.1.wait_timeout(stopped, CHECKPOINT_PERIOD).expect("checkpointer lock").0;
        if *stopped {
            return;
        }
        let started = Instant::now();
        // (busy, pages in the log, pages copied): busy only while the writer checkpoints.
        let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        });
        match result {
            Ok((_, log, copied)) => tracing::trace!(
                target: "corridor::store::checkpoint", path = %path.display(), log, copied,
                ms = started.elapsed().as_secs_f64() * 1e3, "checkpoint"
            ),
            Err(error) => tracing::debug!(path = %path.display(), %error, "background checkpoint"),
        }
    }
}

/// Creates a store whole or not at all: built in a side file (schema and identity in
/// one transaction), made durable, then renamed into place. A crash at any moment
/// leaves either no store or a complete one, never a half-made file that cannot open.
fn create(path: &Path, role: &str, participant: &str, schema: &str) -> Result<(), String> {
    let building = path.with_extension("sqlite-new");
    let _ = std::fs::remove_file(&building);
    let connection = Connection::open(&building).map_err(|e| format!("cannot create the store: {e}"))?;
    connection
        .execute_batch(&format!(
            "PRAGMA synchronous=FULL;
             BEGIN;
             CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             {schema}
             INSERT INTO meta (key, value) VALUES ('schema_version', '{SCHEMA_VERSION}'), ('role', '{role}'),
                                                  ('participant', '{participant}');
             COMMIT;"
        ))
        .map_err(|e| format!("cannot create the store: {e}"))?;
    drop(connection);
    super::put_in_place(&building, path)
}

fn check_meta(connection: &Connection, role: &str, participant: &str) -> Result<(), Refusal> {
    let read = |key: &str| -> Result<Option<String>, Refusal> {
        connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| Refusal::Damaged(format!("not a Corridor store (or a corrupt one): {e}")))
    };
    let version: i64 = read("schema_version")?
        .ok_or_else(|| Refusal::Damaged("not a Corridor store: no schema version".into()))?
        .parse()
        .map_err(|_| Refusal::Damaged("not a Corridor store: unreadable schema version".into()))?;
    if version > SCHEMA_VERSION {
        return Err(Refusal::Foreign(format!(
            "written by a newer Corridor (schema {version}; this build reads {SCHEMA_VERSION}): upgrade Corridor"
        )));
    }
    if (FIRST_DERIVED_SCHEMA..SCHEMA_VERSION).contains(&version) {
        return Err(Refusal::Damaged(format!(
            "of an older schema ({version}; this build reads {SCHEMA_VERSION}): to be rebuilt from its log"
        )));
    }
    if version < SCHEMA_VERSION {
        return Err(Refusal::Foreign(format!(
            "written by an older Corridor (schema {version}; this build reads {SCHEMA_VERSION}, with no migration): \
             start from a new data directory"
        )));
    }
    let (found_role, found_participant) =
        (read("role")?.unwrap_or_default(), read("participant")?.unwrap_or_default());
    if found_role != role || found_participant != participant {
        return Err(Refusal::Foreign(format!(
            "belongs to {found_role} {found_participant}, not to {role} {participant}: pass this participant's own --data"
        )));
    }
    let integrity: String = connection
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|e| Refusal::Damaged(format!("corrupt store: {e}")))?;
    if integrity != "ok" {
        return Err(Refusal::Damaged(format!("corrupt store: {integrity}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the writer commits reaches the database file in the background, long before
    /// the log is large enough for the writer to checkpoint it itself.
    #[test]
    fn the_checkpointer_copies_the_log_into_the_database_while_the_writer_goes_on() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("store.sqlite");
        let (connection, checkpointer) =
            open_sqlite(&path, "hub", "TESTHUBXXXX", "CREATE TABLE t (x BLOB NOT NULL);").expect("opens");
        let database_bytes = || std::fs::metadata(&path).expect("the database file").len();
        let before = database_bytes();
        for _ in 0..50 {
            connection.execute("INSERT INTO t (x) VALUES (zeroblob(8192))", []).expect("a commit");
        }
        assert_eq!(database_bytes(), before, "commits go to the log, not the database file");
        // A generous guard, not a performance bound: the copy comes within a period or two.
        let deadline = Instant::now() + Duration::from_secs(60);
        while database_bytes() < before + 50 * 8192 {
            assert!(Instant::now() < deadline, "the log was never copied into the database");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(connection);
        drop(checkpointer);
    }
}
