//! A node's store in its data directory: its log (`<role>.log`, the durable copy), its
//! derived state (`<role>.sqlite`), and the lock that makes the directory one running
//! node's.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::codec::LogRecord;
use super::log::{FileLog, RecordLog};
use super::sqlite::{Checkpointer, Refusal, applied_through, open_sqlite};
use super::{APPLY_RECORDS_MAX, Derived, StoreError};

/// How long opening waits for a previous process on the same data to let go of it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The roles of the nodes that keep a store, each in [`store_file`] of its role in its data
/// directory. A data directory is one node's: it holds the store of one role only.
const NODE_ROLES: [&str; 2] = ["hub", "bank"];

/// The file name of a node's store (its log) in its data directory, by the node's role:
/// the one naming rule, which the check against another role's directory relies on too.
pub fn store_file(role: &str) -> String {
    format!("{role}.log")
}

/// The file name of a node's derived state in its data directory, by the node's role.
pub fn derived_file(role: &str) -> String {
    format!("{role}.sqlite")
}

/// A node's store, opened: the log, positioned at its end, and the derived state, which
/// [`catch_up`] brings to the log's end.
pub struct NodeStore {
    /// The log: the file in the data directory, or a replicated log elsewhere.
    pub log: Box<dyn RecordLog>,
    /// The derived state.
    pub derived: Connection,
    /// The log position the derived state holds everything up to.
    pub applied: u64,
    /// Held while the store is open.
    pub lock: DataLock,
}

/// What an open store holds besides its files, as long as it is open: the exclusive lock
/// on its data directory (two nodes writing one store would break every sequence number)
/// and the derived state's checkpointer.
#[derive(Debug)]
pub struct DataLock {
    _checkpointer: Checkpointer,
    _file: File,
}

impl NodeStore {
    /// Opens (creating when new) the store of `participant` in role `role` ("hub" or
    /// "bank") in `data_dir`, with `schema` for its derived state. Refuses a directory
    /// that holds another role's store, a store of another participant, of another
    /// format (a SQLite store of an older Corridor), a log damaged before its end, a log
    /// that lost records its derived state holds, and a store that another running node
    /// holds. Cuts a torn tail; rebuilds damaged derived state from the log.
    pub fn open(data_dir: &Path, role: &str, participant: &str, schema: &str) -> Result<Self, StoreError> {
        let log_path = data_dir.join(store_file(role));
        let derived_path = data_dir.join(derived_file(role));
        let unusable =
            |path: &Path, reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
        // Before anything is created (even the lock file): a node given another role's
        // directory leaves it exactly as it found it, running or stopped.
        refuse_another_roles_directory(data_dir, role)?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| unusable(data_dir, format!("cannot create the data directory: {e}")))?;
        let identity = format!("{role} {participant}");
        let file = lock(&data_dir.join(format!("{role}.lock")))
            .map_err(|reason| unusable(&log_path, running_owner(&log_path, &identity).unwrap_or(reason)))?;
        if !log_path.exists() && derived_path.exists() {
            // An older Corridor's store (its SQLite file was the store), or a log removed.
            let reason = match open_sqlite(&derived_path, role, participant, schema) {
                Err(Refusal::Foreign(reason)) => reason,
                Err(Refusal::Damaged(reason)) => {
                    format!("{reason}, but its log {} is missing", log_path.display())
                }
                Ok(_) => format!(
                    "its log {} is missing: the derived state cannot stand in for it",
                    log_path.display()
                ),
            };
            return Err(unusable(&derived_path, reason));
        }
        let (log, _) = FileLog::open(&log_path, &identity)?;
        Self::with_log(
            data_dir,
            role,
            participant,
            schema,
            (Box::new(log), &log_path.display().to_string()),
            file,
        )
    }

    /// Opens the store of `participant` in role `role` whose log is `log`, kept outside
    /// `data_dir` (a replicated log): `data_dir` holds its derived state and lock only.
    /// Refuses what [`NodeStore::open`] refuses but the log file's checks, and a derived
    /// state ahead of `log` (another log's, or the log lost records).
    pub fn open_on(
        data_dir: &Path,
        role: &str,
        participant: &str,
        schema: &str,
        log: Box<dyn RecordLog>,
    ) -> Result<Self, StoreError> {
        let unusable =
            |path: &Path, reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
        refuse_another_roles_directory(data_dir, role)?;
        let log_path = data_dir.join(store_file(role));
        if log_path.exists() {
            return Err(unusable(
                &log_path,
                "this data directory keeps its log in this file: a node of a replicated log needs a data \
                 directory of its own"
                    .into(),
            ));
        }
        std::fs::create_dir_all(data_dir)
            .map_err(|e| unusable(data_dir, format!("cannot create the data directory: {e}")))?;
        let file = lock(&data_dir.join(format!("{role}.lock")))
            .map_err(|reason| unusable(&data_dir.join(derived_file(role)), reason))?;
        let name = format!("the replicated log of {}", data_dir.display());
        Self::with_log(data_dir, role, participant, schema, (log, &name), file)
    }

    /// The store on `log` (named `log_name` in errors), its derived state in `data_dir`.
    fn with_log(
        data_dir: &Path,
        role: &str,
        participant: &str,
        schema: &str,
        (log, log_name): (Box<dyn RecordLog>, &str),
        file: File,
    ) -> Result<Self, StoreError> {
        let derived_path = data_dir.join(derived_file(role));
        let (derived, checkpointer) = open_derived(&derived_path, role, participant, schema)?;
        let applied = applied_through(&derived)?;
        if applied > log.last() {
            return Err(StoreError::Unusable {
                path: log_name.to_owned(),
                reason: format!(
                    "ends at record {} but its derived state holds records up to {applied}: the log lost \
                     records, or is another log, so it is not used",
                    log.last()
                ),
            });
        }
        Ok(Self { log, derived, applied, lock: DataLock { _checkpointer: checkpointer, _file: file } })
    }
}

/// Opens the derived state, or, when it is damaged, puts it aside and starts it over
/// empty: [`catch_up`] rebuilds it from the log.
fn open_derived(
    path: &Path,
    role: &str,
    participant: &str,
    schema: &str,
) -> Result<(Connection, Checkpointer), StoreError> {
    let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
    match open_sqlite(path, role, participant, schema) {
        Ok(opened) => Ok(opened),
        Err(Refusal::Foreign(reason)) => Err(unusable(reason)),
        Err(Refusal::Damaged(reason)) => {
            tracing::warn!(path = %path.display(), %reason, "the derived state cannot be used as it is: rebuilt from the log");
            for suffix in ["", "-wal", "-shm"] {
                let file = PathBuf::from(format!("{}{suffix}", path.display()));
                match std::fs::remove_file(&file) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(unusable(format!("cannot remove the damaged derived state: {e}"))),
                }
            }
            open_sqlite(path, role, participant, schema)
                .map_err(|(Refusal::Foreign(reason) | Refusal::Damaged(reason))| unusable(reason))
        }
    }
}

/// Applies to `derived` every record of `log` after `applied`, batch by batch as they
/// were appended (so the derived state is the same however it was brought up), in
/// applies of about [`APPLY_RECORDS_MAX`] records. Returns the last position applied (a
/// log that grows meanwhile, as a replicated log another node writes, is read as far as
/// this read went).
pub fn catch_up<D>(log: &dyn RecordLog, derived: &mut D, applied: u64) -> Result<u64, StoreError>
where
    D: Derived,
    D::Record: LogRecord,
{
    let (mut batches, mut batch, mut pending) = (Vec::new(), Vec::new(), 0);
    let mut failure = None;
    let mut through = applied;
    log.read_from(applied + 1, &mut |entry| {
        batch.push(D::Record::decode(entry.bytes)?);
        pending += 1;
        if entry.ends_batch {
            through = entry.seq;
            batches.push(std::mem::take(&mut batch));
            if pending >= APPLY_RECORDS_MAX {
                pending = 0;
                if let Err(error) = derived.apply(&std::mem::take(&mut batches), entry.seq) {
                    let message = error.to_string();
                    failure = Some(error);
                    return Err(message);
                }
            }
        }
        Ok(())
    })
    .map_err(|error| failure.take().unwrap_or(error))?;
    if !batches.is_empty() {
        derived.apply(&batches, through)?;
    }
    Ok(through)
}

/// Refuses when `dir` holds the store of a node of another role (its log, or an older
/// Corridor's SQLite store): each lock covers its own role's files only, so without this
/// a bank given a hub's directory (even a running hub's) would start over empty beside
/// the hub's log.
fn refuse_another_roles_directory(dir: &Path, role: &str) -> Result<(), StoreError> {
    for other in NODE_ROLES.into_iter().filter(|&other| other != role) {
        for theirs in [dir.join(store_file(other)), dir.join(derived_file(other))] {
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
    }
    Ok(())
}

fn lock(lock_path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path)
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

/// Whose store `log_path` is, when another running node holds its lock and it is not
/// `identity`'s: read from the log's header, which reading does not change.
fn running_owner(log_path: &Path, identity: &str) -> Option<String> {
    let owner = super::log::owner(log_path).ok()?;
    (owner != identity).then(|| {
        format!("belongs to {owner}, which is running, not to {identity}: pass this participant's own --data")
    })
}
