//! The hub's durable journal: every accepted message, every input sequence number
//! consumed, every ACK sent and delivery confirmed, every operator action; and recovery
//! from it.
//!
//! The records go to the hub's log (`hub.log`, see [`crate::store::log`]); the tables
//! below are its derived state (`hub.sqlite`), applied behind the log and rebuilt from it
//! whenever it is missing or damaged.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::positions::SettlementModel;
use super::tracker::HubPayment;
use crate::crypto::{KeyId, SignedEnvelope};
use crate::model::{Amount, Bic, Currency, MessageId, MessageType, Uetr};
use crate::store::codec::{LogRecord, Reader, put};
use crate::store::log::{FileLog, RecordLog};
use crate::store::{DataLock, Derived, NodeStore, StoreError, catch_up, set_applied_through};

// Append-only by design: rows go in by an increasing integer key, and the indexes grow at
// one end (per receiver by output sequence; by creation time, which grows with the
// acceptance order but for a late message), so a batch dirties few pages. Random-key
// indexes (message id, UETR) cost ~5x in write amplification per fsync. The duplicate
// check by (sender, message id) keeps the messages of the last retention in memory and
// asks this table, by creation time, about older ones (see `hub::duplicates`).
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
        accepted_unix_ms INTEGER NOT NULL,
        created_unix_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_output_sequence ON messages (receiver, osn);
    CREATE INDEX messages_by_creation ON messages (created_unix_ms);
    CREATE TABLE archived_payments (
        seq INTEGER PRIMARY KEY,
        uetr BLOB NOT NULL,
        payment BLOB NOT NULL
    );
    CREATE UNIQUE INDEX archived_payments_by_uetr ON archived_payments (uetr);
";

// The payment archive (`archived_payments`): the tracker's finished payments leave memory
// for it in small batches, every 100 ms at most (`Hub::archive_periodically`). A row is a
// JSON copy of the payment's `HubPayment` (about 700 bytes) under its acceptance sequence
// number, so rows go in near the end of the table, as the journal's other tables do. The
// only random-key insert is the UETR index (`track`, the UETR-reuse check): a 16-byte key,
// about 150 to a page, where a row keyed by its UETR dirtied a page of five large rows,
// and split it every few inserts.

/// A message the hub accepted: stored before its ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedRecord {
    /// Sender: the message's signer, and the authenticated peer unless it came `via` a link.
    pub sender: Bic,
    /// The link it came through, when its sender is a linked network's bank.
    pub via: Option<Bic>,
    /// The link it leaves through, when its receiver is a linked network's bank.
    pub next_hop: Option<Bic>,
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
    /// The hub's receipt: its batch's signed root and this message's audit path, encoded
    /// (`crypto::ReceiptProof`), so that the message is proven from the journal alone.
    pub receipt: Bytes,
    /// When the hub accepted it.
    pub accepted_unix_ms: i64,
    /// When its sender created it (its header's creation time).
    pub created_unix_ms: i64,
}

impl AcceptedRecord {
    /// Whose session it came on: its input sequence number is that participant's.
    pub fn peer(&self) -> Bic {
        self.via.unwrap_or(self.sender)
    }

    /// Whose outbox it goes to: its output sequence number is that participant's.
    pub fn outbox(&self) -> Bic {
        self.next_hop.unwrap_or(self.receiver)
    }
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
        /// When the hub learnt it.
        unix_ms: i64,
    },
    /// The hub sent the participant its answers up to input sequence number `isn`.
    Acked {
        /// To whom.
        participant: Bic,
        /// Up to which input sequence number.
        isn: u64,
        /// When.
        unix_ms: i64,
    },
    /// The hub operator changed positions, suspensions or windows.
    Operator(OperatorRecord),
    /// Finished payments copied to the archive (replacing an older copy of one), each with
    /// its sequence number; they leave memory once this is durable.
    Archived(std::sync::Arc<Vec<(u64, HubPayment)>>),
    /// A hub of a replicated log took the lease and became the one that writes: its first
    /// append, which fences off the hub that wrote before it (see `hub::replicated`).
    Active {
        /// The URL banks reach it at.
        hub: String,
        /// When.
        unix_ms: i64,
    },
    /// How the hub settles and when it started (the first window opens then): recorded
    /// once, when the journal is new.
    Created {
        /// The settlement model.
        model: SettlementModel,
        /// When.
        unix_ms: i64,
    },
}

/// An operator's action, placed in the journal's order by the number of messages
/// accepted before it, so that recovery replays it at the same point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorRecord {
    /// Messages accepted before it.
    pub after_messages: u64,
    /// When.
    pub unix_ms: i64,
    /// What.
    pub action: OperatorAction,
}

/// What the hub operator can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorAction {
    /// Add prefunded liquidity.
    Fund(Bic, Amount),
    /// Take liquidity back.
    Defund(Bic, Amount),
    /// Set a net debit cap (minor units).
    SetNetDebitCap(Bic, Currency, i64),
    /// Suspend a participant.
    Suspend(Bic),
    /// Resume a participant.
    Resume(Bic),
    /// Close the settlement window.
    CloseWindow,
    /// Set the rate agreement of a currency pair.
    SetAgreement(super::fx::Agreement),
    /// The hub gave a participant a firm quote (journalled so that it is honoured
    /// after a restart).
    Quote(super::fx::Quote),
    /// Set the cap of the swap line with a linked network (its link identity), in this
    /// hub's currency: the most either network may owe the other.
    SetLinkCap(Bic, Amount),
}

impl OperatorAction {
    #[allow(clippy::type_complexity)]
    fn columns(&self) -> (&'static str, Option<Bic>, Option<Currency>, Option<i64>, Option<String>) {
        match self {
            Self::Fund(p, a) => ("fund", Some(*p), Some(a.currency()), Some(a.minor_units()), None),
            Self::Defund(p, a) => ("defund", Some(*p), Some(a.currency()), Some(a.minor_units()), None),
            Self::SetNetDebitCap(p, c, cap) => ("set_net_debit_cap", Some(*p), Some(*c), Some(*cap), None),
            Self::Suspend(p) => ("suspend", Some(*p), None, None, None),
            Self::Resume(p) => ("resume", Some(*p), None, None, None),
            Self::CloseWindow => ("close_window", None, None, None, None),
            Self::SetAgreement(a) => ("set_agreement", None, None, None, Some(a.to_record())),
            Self::Quote(q) => ("quote", Some(q.participant), None, None, Some(q.to_record())),
            Self::SetLinkCap(l, a) => {
                ("set_link_cap", Some(*l), Some(a.currency()), Some(a.minor_units()), None)
            }
        }
    }

    fn from_columns(
        action: &str,
        participant: Option<String>,
        currency: Option<String>,
        minor_units: Option<i64>,
        detail: Option<String>,
    ) -> Result<Self, StoreError> {
        let detail = || detail.clone().ok_or_else(|| corrupt("operator action", "no detail"));
        let participant = || -> Result<Bic, StoreError> {
            Bic::parse(participant.as_deref().unwrap_or_default()).map_err(|e| corrupt("operator action", e))
        };
        let currency = || -> Result<Currency, StoreError> {
            Currency::parse(currency.as_deref().unwrap_or_default())
                .map_err(|e| corrupt("operator action", e))
        };
        let minor = || minor_units.ok_or_else(|| corrupt("operator action", "no amount"));
        let amount = || -> Result<Amount, StoreError> {
            Amount::from_minor_units(minor()?, currency()?).map_err(|e| corrupt("operator action", e))
        };
        Ok(match action {
            "fund" => Self::Fund(participant()?, amount()?),
            "defund" => Self::Defund(participant()?, amount()?),
            "set_net_debit_cap" => Self::SetNetDebitCap(participant()?, currency()?, minor()?),
            "suspend" => Self::Suspend(participant()?),
            "resume" => Self::Resume(participant()?),
            "close_window" => Self::CloseWindow,
            "set_agreement" => Self::SetAgreement(
                super::fx::Agreement::from_record(&detail()?).map_err(|e| corrupt("agreement", e))?,
            ),
            "set_link_cap" => Self::SetLinkCap(participant()?, amount()?),
            "quote" => {
                Self::Quote(super::fx::Quote::from_record(&detail()?).map_err(|e| corrupt("quote", e))?)
            }
            other => return Err(corrupt("operator action", other)),
        })
    }
}

/// Opening the hub's journal.
pub struct HubJournal;

/// The hub's store, opened: its log, and its derived state brought up to the log's end.
pub struct HubStore {
    /// The log.
    pub log: Box<dyn RecordLog>,
    /// The derived state.
    pub derived: HubDerived,
    /// The log position the derived state holds everything up to.
    pub applied: u64,
}

/// The hub's derived state: the tables above, applied behind the log.
pub struct HubDerived {
    connection: Connection,
    _lock: DataLock,
}

/// Path of the hub's store (its log) in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::store::store_file("hub"))
}

impl HubJournal {
    /// Opens (or creates) the journal of hub `hub` in `data_dir` and brings its derived
    /// state up to the log's end.
    pub fn open(data_dir: &Path, hub: Bic) -> Result<HubStore, StoreError> {
        Self::caught_up(NodeStore::open(data_dir, "hub", hub.as_str(), SCHEMA)?)
    }

    /// Opens the journal of hub `hub` whose log is `log`, a replicated log: `data_dir`
    /// keeps this hub's derived state of it, brought up to the log's end.
    pub fn open_on(data_dir: &Path, hub: Bic, log: Box<dyn RecordLog>) -> Result<HubStore, StoreError> {
        Self::caught_up(NodeStore::open_on(data_dir, "hub", hub.as_str(), SCHEMA, log)?)
    }

    fn caught_up(store: NodeStore) -> Result<HubStore, StoreError> {
        let mut derived = HubDerived { connection: store.derived, _lock: store.lock };
        let applied = catch_up(&store.log, &mut derived, store.applied)?;
        Ok(HubStore { log: store.log, derived, applied })
    }

    /// Every message in the journal of a stopped hub, in acceptance order (for checks and
    /// tools); its derived state is brought up to the log's end on the way, the log is not
    /// changed.
    pub fn read(data_dir: &Path, hub: Bic) -> Result<Vec<AcceptedRecord>, StoreError> {
        accepted(&Self::open(data_dir, hub)?.log)
    }
}

impl HubDerived {
    /// Applies to the derived state every record of `log` after `applied`: a standby
    /// following the active hub's log. Returns the position now applied.
    pub fn follow(&mut self, log: &dyn RecordLog, applied: u64) -> Result<u64, StoreError> {
        catch_up(log, self, applied)
    }
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt hub journal ({what}): {detail}"))
}

/// The columns of a message row, in the order [`message_record`] reads them.
const MESSAGE_COLUMNS: &str = "sender, message_id, isn, receiver, osn, uetr, message_type, payload, signature, key_id, receipt, accepted_unix_ms, created_unix_ms";

/// A message row (selected with [`MESSAGE_COLUMNS`]) as the record it was written from,
/// but for its links: the message view and the duplicate check need none (the log has them).
fn message_record(row: &rusqlite::Row<'_>) -> Result<AcceptedRecord, StoreError> {
    let text = |index: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(index)?) };
    let bic = |index: usize| -> Result<Bic, StoreError> {
        Bic::parse(&text(index)?).map_err(|e| corrupt("bic", e))
    };
    let uetr: Option<String> = row.get(5)?;
    let signature: Vec<u8> = row.get(8)?;
    let signature: [u8; 64] = signature.try_into().map_err(|_| corrupt("signature", "not 64 bytes"))?;
    let sender = bic(0)?;
    Ok(AcceptedRecord {
        sender,
        via: None,
        next_hop: None,
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
        created_unix_ms: row.get(12)?,
    })
}

/// The first `message_type` message about payment `uetr` in the log of the hub in
/// `data_dir` (see [`read_accepted`]). `None` if there is none yet.
pub fn read_message(
    data_dir: &Path,
    uetr: Uetr,
    message_type: MessageType,
) -> Result<Option<AcceptedRecord>, StoreError> {
    let mut found = None;
    read_accepted(data_dir, &mut |record| {
        if found.is_none() && record.uetr == Some(uetr) && record.message_type == message_type {
            found = Some(record);
        }
    })?;
    Ok(found)
}

/// Calls `visit` with every message in the log of the hub in `data_dir`, in acceptance
/// order, read without changing it, so while the hub runs too: every batch the log holds
/// whole was fsynced before anything in it was acknowledged.
pub fn read_accepted(data_dir: &Path, visit: &mut dyn FnMut(AcceptedRecord)) -> Result<(), StoreError> {
    let path = store_path(data_dir);
    let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
    let identity = crate::store::log::owner(&path).map_err(unusable)?;
    if !identity.starts_with("hub ") {
        return Err(unusable(format!("{identity}'s log, not a hub's")));
    }
    FileLog::read(&path, &identity, 1, &mut |entry| visit_accepted(entry.bytes, visit))?;
    Ok(())
}

/// Every message `log` holds, in acceptance order (a replicated log's too).
pub fn accepted(log: &dyn RecordLog) -> Result<Vec<AcceptedRecord>, StoreError> {
    let mut messages = Vec::new();
    log.read_from(1, &mut |entry| visit_accepted(entry.bytes, &mut |record| messages.push(record)))?;
    Ok(messages)
}

/// Calls `visit` with the record in `bytes` if it is an accepted message.
fn visit_accepted(bytes: &[u8], visit: &mut dyn FnMut(AcceptedRecord)) -> Result<(), String> {
    if let HubRecord::Accepted(record) = HubRecord::decode(bytes)? {
        visit(*record);
    }
    Ok(())
}

/// A read-only view of the hub's payment archive and accepted messages, on a connection
/// of its own: with write-ahead logging it sees every committed (so fsynced) row while
/// the journal's writer goes on.
pub struct PaymentArchive {
    connection: Connection,
}

impl PaymentArchive {
    /// Opens the archive of the hub store in `data_dir` (which must exist).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let path = data_dir.join(crate::store::derived_file("hub"));
        Ok(Self { connection: Connection::open_with_flags(path, flags)? })
    }

    /// One archived payment with its sequence number.
    pub fn get(&self, uetr: &Uetr) -> Result<Option<(u64, HubPayment)>, StoreError> {
        let mut statement =
            self.connection.prepare_cached("SELECT seq, payment FROM archived_payments WHERE uetr = ?1")?;
        let row = statement
            .query_row([uetr.as_uuid().as_bytes()], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
            })
            .optional()?;
        row.map(|(seq, json)| archived_row(seq, &json)).transpose()
    }

    /// Every archived payment with its sequence number, oldest first.
    pub fn all(&self) -> Result<Vec<(u64, HubPayment)>, StoreError> {
        let mut statement =
            self.connection.prepare_cached("SELECT seq, payment FROM archived_payments ORDER BY seq")?;
        let mut rows = statement.query([])?;
        let mut payments = Vec::new();
        while let Some(row) = rows.next()? {
            payments.push(archived_row(row.get(0)?, &row.get::<_, Vec<u8>>(1)?)?);
        }
        Ok(payments)
    }

    /// The signatures of the messages `sender` sent as `message_id`, created at
    /// `created_unix_ms`: the duplicate check's answer for messages older than its memory.
    /// One probe of the creation-time index, then the few messages created that
    /// millisecond.
    pub fn signatures(
        &self,
        sender: Bic,
        message_id: &MessageId,
        created_unix_ms: i64,
    ) -> Result<Vec<[u8; 64]>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT signature FROM messages WHERE created_unix_ms = ?1 AND sender = ?2 AND message_id = ?3",
        )?;
        let rows = statement
            .query_map(params![created_unix_ms, sender.as_str(), message_id.as_str()], |row| {
                row.get::<_, [u8; 64]>(0)
            })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The message the hub sent `receiver` as output sequence number `osn` (one probe of
    /// the unique index by receiver and OSN); `None` if no such message is durable yet.
    pub fn message_to(&self, receiver: Bic, osn: u64) -> Result<Option<AcceptedRecord>, StoreError> {
        let query = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE receiver = ?1 AND osn = ?2");
        let mut statement = self.connection.prepare_cached(&query)?;
        let osn = i64::try_from(osn).map_err(|_| corrupt("osn", osn))?;
        let record =
            statement.query_row(params![receiver.as_str(), osn], |row| Ok(message_record(row))).optional()?;
        record.transpose()
    }

    /// How many payments the archive holds.
    pub fn count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.connection.query_row("SELECT count(*) FROM archived_payments", [], |r| r.get(0))?;
        Ok(count as u64)
    }
}

fn archived_row(seq: i64, json: &[u8]) -> Result<(u64, HubPayment), StoreError> {
    let payment = serde_json::from_slice(json).map_err(|e| corrupt("archived payment", e))?;
    Ok((seq as u64, payment))
}

impl Derived for HubDerived {
    type Record = HubRecord;

    /// Keeps what is queried: the accepted messages (the duplicate check's older tier,
    /// the message view) and the archived payments (`track`, the reconciler). The other
    /// records shape the hub's state, which recovery replays from the log itself.
    fn apply(&mut self, batches: &[Vec<HubRecord>], through: u64) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO messages (sender, message_id, isn, receiver, osn, uetr, message_type, payload, signature,
                                       key_id, receipt, accepted_unix_ms, created_unix_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut archive = transaction.prepare_cached(
                "INSERT OR REPLACE INTO archived_payments (seq, uetr, payment) VALUES (?1, ?2, ?3)",
            )?;
            for record in batches.iter().flatten() {
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
                            m.created_unix_ms,
                        ])?;
                    }
                    HubRecord::Archived(payments) => {
                        for (seq, payment) in payments.iter() {
                            let json =
                                serde_json::to_vec(payment).map_err(|e| corrupt("archived payment", e))?;
                            archive.execute(params![*seq as i64, payment.uetr.as_uuid().as_bytes(), json])?;
                        }
                    }
                    HubRecord::IsnConsumed { .. }
                    | HubRecord::Delivered { .. }
                    | HubRecord::Acked { .. }
                    | HubRecord::Operator(_)
                    | HubRecord::Active { .. }
                    | HubRecord::Created { .. } => {}
                }
            }
        }
        set_applied_through(&transaction, through)?;
        transaction.commit()?;
        Ok(())
    }
}

/// A record's kind, its first byte in the log.
mod kind {
    pub const ACCEPTED: u8 = 1;
    pub const ISN_CONSUMED: u8 = 2;
    pub const DELIVERED: u8 = 3;
    pub const ACKED: u8 = 4;
    pub const OPERATOR: u8 = 5;
    pub const ARCHIVED: u8 = 6;
    pub const CREATED: u8 = 7;
    pub const ACTIVE: u8 = 8;
    /// An accepted message that came or leaves through a link: `ACCEPTED`'s fields, then
    /// the two links.
    pub const RELAYED: u8 = 9;
}

impl LogRecord for HubRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            HubRecord::Accepted(m) => {
                let relayed = m.via.is_some() || m.next_hop.is_some();
                put::u8(out, if relayed { kind::RELAYED } else { kind::ACCEPTED });
                put::str(out, m.sender.as_str());
                put::str(out, m.message_id.as_str());
                put::u64(out, m.isn);
                put::str(out, m.receiver.as_str());
                put::u64(out, m.osn);
                put::opt_str(out, m.uetr.map(|u| u.to_string()).as_deref());
                put::str(out, m.message_type.code());
                put::bytes(out, &m.envelope.payload);
                put::bytes(out, &m.envelope.signature.to_bytes());
                put::str(out, m.envelope.key_id.as_str());
                put::bytes(out, &m.receipt);
                put::i64(out, m.accepted_unix_ms);
                put::i64(out, m.created_unix_ms);
                if relayed {
                    put::opt_str(out, m.via.as_ref().map(Bic::as_str));
                    put::opt_str(out, m.next_hop.as_ref().map(Bic::as_str));
                }
            }
            HubRecord::IsnConsumed { participant, isn } => {
                put::u8(out, kind::ISN_CONSUMED);
                put::str(out, participant.as_str());
                put::u64(out, *isn);
            }
            HubRecord::Delivered { participant, osn: through, unix_ms }
            | HubRecord::Acked { participant, isn: through, unix_ms } => {
                let delivered = matches!(self, HubRecord::Delivered { .. });
                put::u8(out, if delivered { kind::DELIVERED } else { kind::ACKED });
                put::str(out, participant.as_str());
                put::u64(out, *through);
                put::i64(out, *unix_ms);
            }
            HubRecord::Operator(record) => {
                put::u8(out, kind::OPERATOR);
                put::u64(out, record.after_messages);
                put::i64(out, record.unix_ms);
                let (action, participant, currency, minor_units, detail) = record.action.columns();
                put::str(out, action);
                put::opt_str(out, participant.as_ref().map(Bic::as_str));
                put::opt_str(out, currency.as_ref().map(Currency::code));
                put::opt_i64(out, minor_units);
                put::opt_str(out, detail.as_deref());
            }
            HubRecord::Archived(payments) => {
                put::u8(out, kind::ARCHIVED);
                put::u64(out, payments.len() as u64);
                for (seq, payment) in payments.iter() {
                    put::u64(out, *seq);
                    put::bytes(out, &serde_json::to_vec(payment).expect("a payment serialises"));
                }
            }
            HubRecord::Active { hub, unix_ms } => {
                put::u8(out, kind::ACTIVE);
                put::str(out, hub);
                put::i64(out, *unix_ms);
            }
            HubRecord::Created { model, unix_ms } => {
                put::u8(out, kind::CREATED);
                put::str(out, model.name());
                put::i64(out, *unix_ms);
            }
        }
    }

    fn decode(record: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(record);
        let bic = |text: &str| Bic::parse(text).map_err(|e| format!("bic: {e}"));
        let decoded = match r.u8()? {
            record_kind @ (kind::ACCEPTED | kind::RELAYED) => {
                let sender = bic(r.str()?)?;
                let message_id = MessageId::parse(r.str()?).map_err(|e| format!("message id: {e}"))?;
                let isn = r.u64()?;
                let receiver = bic(r.str()?)?;
                let osn = r.u64()?;
                let uetr = r.opt_str()?.map(Uetr::parse).transpose().map_err(|e| format!("uetr: {e}"))?;
                let message_type = MessageType::parse(r.str()?).map_err(|e| format!("message type: {e}"))?;
                let payload = Bytes::copy_from_slice(r.bytes()?);
                let signature: [u8; 64] = r.bytes()?.try_into().map_err(|_| "a signature not 64 bytes")?;
                let key_id = KeyId::parse(r.str()?).map_err(|e| format!("key id: {e}"))?;
                let receipt = Bytes::copy_from_slice(r.bytes()?);
                let (accepted_unix_ms, created_unix_ms) = (r.i64()?, r.i64()?);
                let (via, next_hop) = if record_kind == kind::RELAYED {
                    (r.opt_str()?.map(bic).transpose()?, r.opt_str()?.map(bic).transpose()?)
                } else {
                    (None, None)
                };
                let envelope = SignedEnvelope {
                    payload,
                    signature: ed25519_dalek::Signature::from_bytes(&signature),
                    signer: sender,
                    key_id,
                };
                HubRecord::Accepted(Box::new(AcceptedRecord {
                    sender,
                    via,
                    next_hop,
                    message_id,
                    isn,
                    receiver,
                    osn,
                    uetr,
                    message_type,
                    envelope,
                    receipt,
                    accepted_unix_ms,
                    created_unix_ms,
                }))
            }
            kind::ISN_CONSUMED => HubRecord::IsnConsumed { participant: bic(r.str()?)?, isn: r.u64()? },
            kind::DELIVERED => {
                HubRecord::Delivered { participant: bic(r.str()?)?, osn: r.u64()?, unix_ms: r.i64()? }
            }
            kind::ACKED => HubRecord::Acked { participant: bic(r.str()?)?, isn: r.u64()?, unix_ms: r.i64()? },
            kind::OPERATOR => {
                let (after_messages, unix_ms) = (r.u64()?, r.i64()?);
                let action = r.str()?.to_owned();
                let participant = r.opt_str()?.map(str::to_owned);
                let currency = r.opt_str()?.map(str::to_owned);
                let (minor_units, detail) = (r.opt_i64()?, r.opt_str()?.map(str::to_owned));
                let action =
                    OperatorAction::from_columns(&action, participant, currency, minor_units, detail)
                        .map_err(|e| e.to_string())?;
                HubRecord::Operator(OperatorRecord { after_messages, unix_ms, action })
            }
            kind::ARCHIVED => {
                let count = r.u64()?;
                let mut payments = Vec::with_capacity(count.min(4096) as usize);
                for _ in 0..count {
                    let seq = r.u64()?;
                    let payment =
                        serde_json::from_slice(r.bytes()?).map_err(|e| format!("archived payment: {e}"))?;
                    payments.push((seq, payment));
                }
                HubRecord::Archived(std::sync::Arc::new(payments))
            }
            kind::CREATED => {
                let model = SettlementModel::parse(r.str()?).map_err(|e| format!("settlement model: {e}"))?;
                HubRecord::Created { model, unix_ms: r.i64()? }
            }
            kind::ACTIVE => HubRecord::Active { hub: r.str()?.to_owned(), unix_ms: r.i64()? },
            other => return Err(format!("a hub record of unknown kind {other}")),
        };
        r.end()?;
        Ok(decoded)
    }
}
