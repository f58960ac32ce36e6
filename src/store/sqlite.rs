//! Opening an embedded SQLite store: WAL, `synchronous=FULL`, and a check that the file
//! belongs to this participant and this schema before anything is read or written.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::StoreError;

/// Schema version this build reads and writes. Any other in a file is refused: there are
/// no migrations yet, so an older store is kept as it is rather than half-read.
pub const SCHEMA_VERSION: i64 = 4;

/// Pages the write-ahead log grows to before SQLite copies it into the database (16384
/// pages of 4 KiB: the log stays under 64 MiB).
const WAL_CHECKPOINT_PAGES: i64 = 16_384;

/// How long opening waits for a previous process on the same data to let go of it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// An exclusive lock on a data directory, held as long as its store is open: two nodes
/// writing one store would break every sequence number.
#[derive(Debug)]
pub struct DataLock {
    _file: File,
}

/// Opens (or, when `path` does not exist yet, creates with `schema`) the store of
/// `participant` in role `role` ("hub" or "bank"). Refuses a file of another role or
/// participant, of a newer schema, or that is not a database at all; never starts an
/// existing store over empty; refuses a store that another running node holds.
pub fn open_sqlite(
    path: &Path,
    role: &str,
    participant: &str,
    schema: &str,
) -> Result<(Connection, DataLock), StoreError> {
    let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| unusable(format!("cannot create the data directory: {e}")))?;
    }
    let lock = lock(path).map_err(unusable)?;
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
    Ok((connection, lock))
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

fn lock(path: &Path) -> Result<DataLock, String> {
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
            Ok(()) => return Ok(DataLock { _file: file }),
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
