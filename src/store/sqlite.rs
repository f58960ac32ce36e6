//! Opening an embedded SQLite store: WAL, `synchronous=FULL`, and a check that the file
//! belongs to this participant and this schema before anything is read or written; and
//! its checkpointer, which copies the write-ahead log into the database off the writer.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;

/// Schema version this build reads and writes. Any other in a file is refused: there are
/// no migrations yet, so an older store is kept as it is rather than half-read.
pub const SCHEMA_VERSION: i64 = 5;

/// Pages the write-ahead log grows to before the writer itself checkpoints (16384 pages
/// of 4 KiB: the log stays under 64 MiB). The checkpointer thread has copied all but the
/// last [`CHECKPOINT_PERIOD`] of them by then, so the writer copies little and syncs once;
/// its checkpoint is the one that lets the log start over from its beginning.
const WAL_CHECKPOINT_PAGES: i64 = 16_384;

/// How often the checkpointer copies what the log gained into the database.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);

/// How long opening waits for a previous process on the same data to let go of it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// What an open store holds besides its connection, as long as it is open: the exclusive
/// lock on its data directory (two nodes writing one store would break every sequence
/// number) and its checkpointer.
#[derive(Debug)]
pub struct DataLock {
    _checkpointer: Checkpointer,
    _file: File,
}

/// The roles of the nodes that keep a store, each in [`store_file`] of its role in its data
/// directory. A data directory is one node's: it holds the store of one role only.
const NODE_ROLES: [&str; 2] = ["hub", "bank"];

/// The file name of a node's store in its data directory, by the node's role: the one
/// naming rule, which the check against another role's directory relies on too.
pub fn store_file(role: &str) -> String {
    format!("{role}.sqlite")
}

/// Opens (or, when `path` does not exist yet, creates with `schema`) the store of
/// `participant` in role `role` ("hub" or "bank"). Refuses a directory that holds the
/// store of another role, and a file of another role or participant, of a newer schema,
/// or that is not a database at all; never starts an existing store over empty; refuses a
/// store that another running node holds.
pub fn open_sqlite(
    path: &Path,
    role: &str,
    participant: &str,
    schema: &str,
) -> Result<(Connection, DataLock), StoreError> {
    let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
    // Before anything is created (even the lock file): a node given another role's
    // directory leaves it exactly as it found it, running or stopped.
    refuse_another_roles_directory(path, role)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| unusable(format!("cannot create the data directory: {e}")))?;
    }
    let file =
        lock(path).map_err(|reason| unusable(running_owner(path, role, participant).unwrap_or(reason)))?;
    if !path.exists() {
        create(path, role, participant, schema).map_err(unusable)?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).map_err(|e| unusable(e.to_string()))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| unusable(format!("not a Corridor store (or a corrupt one): {e}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(unusable(format!("cannot use write-ahead logging (journal mode {mode})")));
    }
    connection.pragma_update(None, "synchronous", "FULL").map_err(|e| unusable(e.to_string()))?;
    // Append-only tables rewrite their last page at every commit; a checkpoint copies each
    // page once however often the log rewrote it, so checkpoints far apart copy less.
    connection
        .pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
        .map_err(|e| unusable(e.to_string()))?;
    check_meta(&connection, role, participant).map_err(unusable)?;
    let checkpointer = Checkpointer::start(path.to_path_buf(), role);
    Ok((connection, DataLock { _checkpointer: checkpointer, _file: file }))
}

/// Refuses when the directory `path` would go in holds the store of a node of another
/// role: each lock covers its own role's file only, and the meta check its own role's
/// file only, so without this a bank given a hub's directory (even a running hub's)
/// would start over empty beside the hub's journal.
fn refuse_another_roles_directory(path: &Path, role: &str) -> Result<(), StoreError> {
    let Some(dir) = path.parent() else { return Ok(()) };
    for other in NODE_ROLES.into_iter().filter(|&other| other != role) {
        let theirs = dir.join(store_file(other));
        if theirs.exists() {
            return Err(StoreError::Unusable {
                path: theirs.display().to_string(),
                reason: format!(
                    "a {other}'s store, so {} is a {other}'s data directory, not a {role}'s: \
                     pass this {role}'s own --data",
                    dir.display()
                ),
            });
        }
    }
    Ok(())
}

/// A thread with a connection of its own that copies the write-ahead log into the database
/// every [`CHECKPOINT_PERIOD`] (a passive checkpoint: it never waits for the writer, nor
/// the writer for it). Without it, the writer copied 64 MiB of log and synced the database
/// inside a commit every few seconds under load, and every message waiting for that
/// commit waited for the copy too.
#[derive(Debug)]
struct Checkpointer {
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
    let sync = |target: &Path| File::open(target).and_then(|f| f.sync_all());
    sync(&building).map_err(|e| format!("cannot sync the new store: {e}"))?;
    std::fs::rename(&building, path).map_err(|e| format!("cannot put the new store in place: {e}"))?;
    if let Some(parent) = path.parent() {
        sync(parent).map_err(|e| format!("cannot sync the data directory: {e}"))?;
    }
    Ok(())
}

fn lock(path: &Path) -> Result<File, String> {
    let lock_path = path.with_extension("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", lock_path.display()))?;
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(TryLockError::WouldBlock) => {
                return Err("in use by another running node: stop it first, or pass another --data".into());
            }
            Err(TryLockError::Error(e)) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
        }
    }
}

/// Whose store `path` is, when another running node holds its lock and it is not this
/// participant's: read from a read-only connection, and only while the running node's
/// shared-memory file is there, so that reading creates no file.
fn running_owner(path: &Path, role: &str, participant: &str) -> Option<String> {
    if !path.with_extension("sqlite-shm").exists() {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).ok()?;
    let read = |key: &str| -> Option<String> {
        connection.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0)).ok()
    };
    let (found_role, found_participant) = (read("role")?, read("participant")?);
    (found_role != role || found_participant != participant).then(|| {
        format!(
            "belongs to {found_role} {found_participant}, which is running, not to {role} {participant}: \
             pass this participant's own --data"
        )
    })
}

fn check_meta(connection: &Connection, role: &str, participant: &str) -> Result<(), String> {
    let read = |key: &str| -> Result<Option<String>, String> {
        connection
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0))
            .optional()
            .map_err(|e| format!("not a Corridor store (or a corrupt one): {e}"))
    };
    let version: i64 = read("schema_version")?
        .ok_or("not a Corridor store: no schema version")?
        .parse()
        .map_err(|_| "not a Corridor store: unreadable schema version")?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "written by a newer Corridor (schema {version}; this build reads {SCHEMA_VERSION}): upgrade Corridor"
        ));
    }
    if version < SCHEMA_VERSION {
        return Err(format!(
            "written by an older Corridor (schema {version}; this build reads {SCHEMA_VERSION}, with no migration): \
             start from a new data directory"
        ));
    }
    let (found_role, found_participant) =
        (read("role")?.unwrap_or_default(), read("participant")?.unwrap_or_default());
    if found_role != role || found_participant != participant {
        return Err(format!(
            "belongs to {found_role} {found_participant}, not to {role} {participant}: pass this participant's own --data"
        ));
    }
    let integrity: String = connection
        .query_row("PRAGMA quick_check", [], |row| row.get(0))
        .map_err(|e| format!("corrupt store: {e}"))?;
    if integrity != "ok" {
        return Err(format!("corrupt store: {integrity}"));
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
        let (connection, lock) =
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
        drop(lock);
    }
}
