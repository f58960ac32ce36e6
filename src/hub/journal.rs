//! The hub's durable journal: every accepted message, every input sequence number
//! consumed, every delivery confirmed; and recovery from it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{Connection, params};

use crate::crypto::{KeyId, SignedEnvelope};
use crate::model::{Bic, MessageId, MessageType, Uetr};
use crate::store::{Backend, DataLock, StoreError, open_sqlite};

/// File name of the hub's store inside its data directory.
pub const HUB_STORE_FILE: &str = "hub.sqlite";

// Append-only by design: rows go in by an increasing integer key, and the one index
// (per receiver, by output sequence) grows at one end per receiver, so a batch dirties few
// pages. Random-key indexes (message id, UETR) cost ~5x in write amplification per fsync;
// the duplicate check by (sender, message id) lives in memory and is re-checked on recovery.
const SCHEMA: &str = "
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        isn INTEGER NOT NULL,
        receiver TEXT NOT NULL,
        osn INTEGER NOT NULL,
        uetr TEXT,
        message_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        signature BLOB NOT NULL,
        key_id TEXT NOT NULL,
        receipt BLOB NOT NULL,
        accepted_unix_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_output_sequence ON messages (receiver, osn);
    CREATE TABLE sequences (
        participant TEXT PRIMARY KEY,
        isn_consumed INTEGER NOT NULL DEFAULT 0,
        osn_delivered INTEGER NOT NULL DEFAULT 0
    );
";

/// A message the hub accepted: stored before its ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRecord {
    /// Sender (the authenticated peer and signer).
    pub sender: Bic,
    /// Its message id.
    pub message_id: MessageId,
    /// The input sequence number it came with.
    pub isn: u64,
    /// Receiver.
    pub receiver: Bic,
    /// Output sequence number towards the receiver.
    pub osn: u64,
    /// UETR, for payment messages.
    pub uetr: Option<Uetr>,
    /// Type.
    pub message_type: MessageType,
    /// The envelope exactly as signed.
    pub envelope: SignedEnvelope,
    /// The hub's receipt signature.
    pub receipt: Bytes,
    /// When the hub accepted it.
    pub accepted_unix_ms: i64,
}

/// One journal record.
#[derive(Clone, Debug)]
pub enum HubRecord {
    /// A message accepted (consumes its input sequence number too).
    Accepted(Box<AcceptedRecord>),
    /// An input sequence number consumed by a refusal or a duplicate.
    IsnConsumed {
        /// Whose.
        participant: Bic,
        /// Which.
        isn: u64,
    },
    /// The participant durably processed every delivery up to `osn`.
    Delivered {
        /// Who.
        participant: Bic,
        /// Up to which output sequence number.
        osn: u64,
    },
}

/// What the journal held at start.
#[derive(Debug, Default)]
pub struct RecoveredHub {
    /// Every accepted message, in acceptance order.
    pub messages: Vec<AcceptedRecord>,
    /// Per participant: highest input sequence number consumed, highest output sequence
    /// number it confirmed.
    pub sequences: HashMap<Bic, (u64, u64)>,
}

/// The hub's journal in SQLite.
pub struct SqliteHubJournal {
    connection: Connection,
    _lock: DataLock,
}

/// Path of the hub's store in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(HUB_STORE_FILE)
}

impl SqliteHubJournal {
    /// Opens (or creates) the journal of hub `hub` in `data_dir` and reads it back.
    pub fn open(data_dir: &Path, hub: Bic) -> Result<(Self, RecoveredHub), StoreError> {
        let (connection, lock) = open_sqlite(&store_path(data_dir), "hub", hub.as_str(), SCHEMA)?;
        let recovered = recover(&connection)?;
        Ok((Self { connection, _lock: lock }, recovered))
    }

    /// Reads the journal of a stopped hub without changing it (for checks and tools).
    pub fn read(data_dir: &Path, hub: Bic) -> Result<RecoveredHub, StoreError> {
        Self::open(data_dir, hub).map(|(_, recovered)| recovered)
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt hub journal ({what}): {detail}"))
}

fn recover(connection: &Connection) -> Result<RecoveredHub, StoreError> {
    let mut recovered = RecoveredHub::default();
    let mut seen = std::collections::HashSet::new();
    let mut statement = connection.prepare(
        "SELECT sender, message_id, isn, receiver, osn, uetr, message_type, payload, signature, key_id, receipt,
                accepted_unix_ms
         FROM messages ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let text = |index: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(index)?) };
        let bic = |index: usize| -> Result<Bic, StoreError> {
            Bic::parse(&text(index)?).map_err(|e| corrupt("bic", e))
        };
        let uetr: Option<String> = row.get(5)?;
        let signature: Vec<u8> = row.get(8)?;
        let signature: [u8; 64] = signature.try_into().map_err(|_| corrupt("signature", "not 64 bytes"))?;
        let sender = bic(0)?;
        let record = AcceptedRecord {
            sender,
            message_id: MessageId::parse(&text(1)?).map_err(|e| corrupt("message_id", e))?,
            isn: row.get::<_, i64>(2)? as u64,
            receiver: bic(3)?,
            osn: row.get::<_, i64>(4)? as u64,
            uetr: uetr.map(|u| Uetr::parse(&u)).transpose().map_err(|e| corrupt("uetr", e))?,
            message_type: MessageType::parse(&text(6)?).map_err(|e| corrupt("message_type", e))?,
            envelope: SignedEnvelope {
                payload: Bytes::from(row.get::<_, Vec<u8>>(7)?),
                signature: ed25519_dalek::Signature::from_bytes(&signature),
                signer: sender,
                key_id: KeyId::parse(&text(9)?).map_err(|e| corrupt("key_id", e))?,
            },
            receipt: Bytes::from(row.get::<_, Vec<u8>>(10)?),
            accepted_unix_ms: row.get(11)?,
        };
        if !seen.insert((record.sender, record.message_id.clone())) {
            return Err(corrupt(
                "messages",
                format!("{} from {} is stored twice", record.message_id, record.sender),
            ));
        }
        recovered.messages.push(record);
    }
    let mut statement =
        connection.prepare("SELECT participant, isn_consumed, osn_delivered FROM sequences")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let participant = Bic::parse(&row.get::<_, String>(0)?).map_err(|e| corrupt("participant", e))?;
        recovered.sequences.insert(participant, (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64));
    }
    Ok(recovered)
}

impl Backend for SqliteHubJournal {
    type Record = HubRecord;

    fn write_batch(&mut self, records: &[HubRecord]) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO messages (sender, message_id, isn, receiver, osn, uetr, message_type, payload, signature,
                                       key_id, receipt, accepted_unix_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            let mut consumed = transaction.prepare_cached(
                "INSERT INTO sequences (participant, isn_consumed) VALUES (?1, ?2)
                 ON CONFLICT (participant) DO UPDATE SET isn_consumed = max(isn_consumed, excluded.isn_consumed)",
            )?;
            let mut delivered = transaction.prepare_cached(
                "INSERT INTO sequences (participant, osn_delivered) VALUES (?1, ?2)
                 ON CONFLICT (participant) DO UPDATE SET osn_delivered = max(osn_delivered, excluded.osn_delivered)",
            )?;
            // Sequence counters only grow: one update per participant per batch.
            let mut isn_consumed: HashMap<Bic, u64> = HashMap::new();
            let mut osn_delivered: HashMap<Bic, u64> = HashMap::new();
            let raise = |counters: &mut HashMap<Bic, u64>, participant: Bic, value: u64| {
                let counter = counters.entry(participant).or_default();
                *counter = (*counter).max(value);
            };
            for record in records {
                match record {
                    HubRecord::Accepted(m) => {
                        insert.execute(params![
                            m.sender.as_str(),
                            m.message_id.as_str(),
                            m.isn as i64,
                            m.receiver.as_str(),
                            m.osn as i64,
                            m.uetr.map(|u| u.to_string()),
                            m.message_type.code(),
                            m.envelope.payload.as_ref(),
                            m.envelope.signature.to_bytes().as_slice(),
                            m.envelope.key_id.as_str(),
                            m.receipt.as_ref(),
                            m.accepted_unix_ms,
                        ])?;
                        raise(&mut isn_consumed, m.sender, m.isn);
                    }
                    HubRecord::IsnConsumed { participant, isn } => {
                        raise(&mut isn_consumed, *participant, *isn)
                    }
                    HubRecord::Delivered { participant, osn } => {
                        raise(&mut osn_delivered, *participant, *osn)
                    }
                }
            }
            for (participant, isn) in isn_consumed {
                consumed.execute(params![participant.as_str(), isn as i64])?;
            }
            for (participant, osn) in osn_delivered {
                delivered.execute(params![participant.as_str(), osn as i64])?;
            }
        }
        transaction.commit()?;
        Ok(())
    }
}
