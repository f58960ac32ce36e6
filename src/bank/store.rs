//! A bank's durable store: accounts, postings, payments, the messages it processed, its
//! outbox and its sequence counters; and recovery from it.
//!
//! The changes go to the bank's log (`bank.log`, see [`crate::store::log`]); the tables
//! below are its derived state (`bank.sqlite`), applied behind the log in large batches
//! and rebuilt from it whenever it is missing or damaged.
//!
//! The bank changes its state in memory and journals the matching [`BankChange`]s in the
//! same critical section; whatever leaves the bank (an answer to its operator, a
//! message, a delivery confirmation) waits until they are durable.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};

use super::{Direction, Payment, PaymentConversion, Recall, ReturnState};
use crate::crypto::KeyId;
use crate::ledger::{Account, AccountId, AccountKind, Floor, Leg, Posting, PostingId, Side};
use crate::model::{Amount, Bic, Currency, MessageId, MessageType, PaymentStatus, ReasonCode, Uetr};
use crate::pb;
use crate::store::codec::{LogRecord, Reader, put};
use crate::store::{DataLock, Derived, LogWriter, NodeStore, StoreError, catch_up, set_applied_through};

// Append-only where it matters: postings, payment versions and processed messages go in
// by an increasing integer key, so a group commit dirties a few pages at the end of each
// table instead of one page per message in a random-key index (which cost several times
// the write volume per fsync). Uniqueness (posting ids, one payment per UETR, one
// processing per message) is kept in memory and checked again on recovery.
//
// What a running bank no longer holds in memory (see `state`) it reads back from here:
// - `retired_payments`, one row per payment that left memory (its UETR, the keys of its
//   first and latest versions), is the only random-key index. It is written at retirement,
//   a retention after the payment's last change, in one large batch per sweep, never on
//   a payment's own commit. Once an index is larger than what one apply inserts, each
//   random-key insert dirties a page of its own (4 KiB to the write-ahead log and 4 KiB
//   again at the checkpoint): that is the write volume a random key costs.
// - `messages_by_payment` indexes the kept messages by their payment's first version
//   key, which grows with the order the bank learnt of its payments, so its inserts land
//   near the end. (Indexed by UETR, the kept messages were two random-key inserts a
//   payment at each bank: about half of what the derived state wrote under steady load.)
//   A message the bank kept while it held no payment for it is indexed by its UETR, by a
//   partial index that nothing else writes.
// - `processed_by_creation` indexes processed messages by their creation time, which
//   grows with the processing order (nearly: a delayed message is older), so its inserts
//   land on the last page or two: about one extra page per group commit.
// - postings are found by time with a binary search over `seq`: the bank books them at
//   non-decreasing times (see `BankState::commit`), so no index is needed.
const SCHEMA: &str = "
    CREATE TABLE accounts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        currency TEXT NOT NULL,
        name TEXT NOT NULL,
        blocked INTEGER NOT NULL,
        floor INTEGER
    );
    CREATE TABLE postings (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        description TEXT NOT NULL,
        legs TEXT NOT NULL,
        booked_unix_ms INTEGER NOT NULL
    );
    CREATE TABLE payments (
        seq INTEGER PRIMARY KEY,
        uetr TEXT NOT NULL,
        message_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        counterparty TEXT NOT NULL,
        debtor_account TEXT NOT NULL,
        creditor_account TEXT NOT NULL,
        minor_units INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        detail TEXT NOT NULL,
        story TEXT
    );
    CREATE TABLE retired_payments (
        uetr TEXT PRIMARY KEY,
        first_seq INTEGER NOT NULL,
        latest_seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE processed (
        seq INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL,
        created_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX processed_by_creation ON processed (created_unix_ms);
    CREATE TABLE outbox (
        isn INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL,
        uetr TEXT,
        message_type TEXT NOT NULL,
        payload BLOB NOT NULL,
        signature BLOB NOT NULL,
        key_id TEXT NOT NULL
    );
    CREATE TABLE cursor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        next_isn INTEGER NOT NULL,
        last_osn_processed INTEGER NOT NULL,
        next_sequence_number INTEGER NOT NULL
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        payment INTEGER,
        uetr TEXT NOT NULL,
        sent INTEGER NOT NULL,
        payload BLOB NOT NULL,
        signature BLOB NOT NULL,
        signer TEXT NOT NULL,
        key_id TEXT NOT NULL
    );
    CREATE INDEX messages_by_payment ON messages (payment) WHERE payment IS NOT NULL;
    CREATE INDEX messages_of_no_payment_by_uetr ON messages (uetr) WHERE payment IS NULL;
";

/// A message in the outbox, waiting for the hub's ACK.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    /// Its input sequence number.
    pub isn: u64,
    /// Its message id.
    pub message_id: MessageId,
    /// UETR, for payment messages.
    pub uetr: Option<Uetr>,
    /// Type.
    pub message_type: MessageType,
    /// The signed envelope.
    pub envelope: pb::SignedEnvelope,
}

/// A signed message of a payment that the bank sent or received, kept for its export
/// (`corridor export`): the envelope byte for byte, as signed.
#[derive(Clone, Debug, PartialEq)]
pub struct KeptMessage {
    /// The payment it belongs to.
    pub uetr: Uetr,
    /// The key of that payment's first version (its place among the bank's payments),
    /// filled in when the message is journalled; `None` when the bank held no such
    /// payment then (or the record is older than this field).
    pub payment: Option<i64>,
    /// True when this bank sent it, false when it received it.
    pub sent: bool,
    /// The signed envelope.
    pub envelope: pb::SignedEnvelope,
}

/// The bank's sequence counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Input sequence number of the next message to the hub.
    pub next_isn: u64,
    /// Last output sequence number durably processed.
    pub last_osn_processed: u64,
    /// The bank's own next message sequence number.
    pub next_sequence_number: u64,
}

impl Default for Cursor {
    fn default() -> Self {
        Self { next_isn: 1, last_osn_processed: 0, next_sequence_number: 1 }
    }
}

/// One change to a bank's state.
#[derive(Clone, Debug)]
pub enum BankChange {
    /// An account opened or its flags changed (balances come from postings).
    Account(Account),
    /// A posting applied.
    Posting {
        /// The posting.
        posting: Posting,
        /// Its number in the ledger (0 for the first): its key in the store is one more.
        number: usize,
        /// When it was booked (Unix ms); never earlier than the posting before.
        booked_unix_ms: i64,
    },
    /// A payment created or changed: its new version, under an increasing key.
    Payment(Payment, i64),
    /// A message received and processed: sender, message id and the message's creation
    /// time (Unix ms).
    Processed(Bic, MessageId, i64),
    /// Payments that leave the bank's memory: the store answers for them from now on.
    Retired(Vec<RetiredPayment>),
    /// A message queued for the hub.
    OutboxPut(OutboxEntry),
    /// The hub answered the message with this input sequence number.
    OutboxRemove(u64),
    /// The counters moved.
    Cursor(Cursor),
    /// A message of a payment sent or received, kept for its export.
    Message(KeptMessage),
}

/// A payment that left a bank's memory, with the keys of its first version (its place
/// among the bank's payments) and of its latest (its state).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetiredPayment {
    /// Which.
    pub uetr: Uetr,
    /// Key of its first version.
    pub first_seq: i64,
    /// Key of its latest version.
    pub latest_seq: i64,
}

/// What a bank's store held at start: everything ([`BankStore::read`]), or what a
/// running bank holds in memory ([`BankStore::open`]).
#[derive(Debug, Default)]
pub struct RecoveredBank {
    /// Accounts in opening order, at zero balance.
    pub accounts: Vec<Account>,
    /// Postings held, in the order they were applied (the first is number
    /// `ledger.postings_forgotten()`).
    pub postings: Vec<Posting>,
    /// When each posting held was booked (Unix ms), in the same order.
    pub posting_times: Vec<i64>,
    /// Payments held, in the order the bank learnt of them.
    pub payments: Vec<Payment>,
    /// The keys of the first and latest versions of each payment in `payments`.
    pub payment_versions: Vec<(i64, i64)>,
    /// The highest key of a payment version (0 if none).
    pub payment_seq_max: i64,
    /// Messages processed, held, with their creation times (Unix ms).
    pub processed: Vec<(Bic, MessageId, i64)>,
    /// Every processed message created at or after this time (Unix ms) is in `processed`.
    pub processed_horizon_unix_ms: i64,
    /// Messages not yet answered by the hub.
    pub outbox: Vec<OutboxEntry>,
    /// Counters.
    pub cursor: Cursor,
    /// The ledger: accounts opened and every posting replayed in order, holding `postings`.
    pub(super) ledger: crate::ledger::Ledger,
}

impl RecoveredBank {
    /// The ledger the store describes: accounts opened, every posting replayed in order
    /// (each had to apply, or the store was refused as corrupt), the postings held.
    pub fn ledger(&self) -> &crate::ledger::Ledger {
        &self.ledger
    }
}

/// Opening a bank's store.
pub struct BankStore;

/// A bank's derived state: the tables above, applied behind the log.
pub struct BankDerived {
    connection: Connection,
    _lock: DataLock,
}

/// Path of the bank's store (its log) in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::store::store_file("bank"))
}

/// Path of the bank's derived state in `data_dir`.
fn derived_path(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::store::derived_file("bank"))
}

impl BankStore {
    /// Opens (or creates) the store of bank `bic` in `data_dir`, brings its derived state
    /// up to the log's end, and reads back what a running bank holds in memory: payments
    /// not retired, postings booked and messages created at or after
    /// `hold_since_unix_ms`, the outbox and the counters.
    pub fn open(
        data_dir: &Path,
        bic: Bic,
        hold_since_unix_ms: i64,
    ) -> Result<(LogWriter<BankChange>, BankDerived, RecoveredBank), StoreError> {
        let (writer, derived) = Self::open_caught_up(data_dir, bic)?;
        let recovered = recover(&derived.connection, bic, Some(hold_since_unix_ms))?;
        Ok((writer, derived, recovered))
    }

    /// Reads everything in the store of a stopped bank (for checks and tools); its
    /// derived state is brought up to the log's end on the way, the log is not changed.
    pub fn read(data_dir: &Path, bic: Bic) -> Result<RecoveredBank, StoreError> {
        let (_, derived) = Self::open_caught_up(data_dir, bic)?;
        recover(&derived.connection, bic, None)
    }

    fn open_caught_up(data_dir: &Path, bic: Bic) -> Result<(LogWriter<BankChange>, BankDerived), StoreError> {
        let store = NodeStore::open(data_dir, "bank", bic.as_str(), SCHEMA)?;
        let mut derived = BankDerived { connection: store.derived, _lock: store.lock };
        catch_up(&store.log, &mut derived, store.applied)?;
        Ok((LogWriter::new(store.log, "bank"), derived))
    }
}

/// A payment read back from the store, with the keys of its first and latest versions.
pub(super) struct StoredPayment {
    pub(super) payment: Payment,
    pub(super) first_seq: i64,
    pub(super) latest_seq: i64,
}

/// A read-only connection to a running bank's store, for what the bank no longer holds
/// in memory. It sees what the writer committed: everything durable.
pub(super) struct StoreReader {
    connection: Connection,
}

/// A payment version's columns, as `payment_of_row` reads them.
const PAYMENT_COLUMNS: &str = "p.uetr, p.message_id, p.direction, p.counterparty, p.debtor_account,
    p.creditor_account, p.minor_units, p.currency, p.status, p.reason, p.detail, p.story";

impl StoreReader {
    /// Opens the store in `data_dir` for reading (the bank's writer has it open already).
    pub(super) fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(derived_path(data_dir), flags)?;
        Ok(Self { connection })
    }

    /// The retired payment `uetr`, if it was retired.
    ///
    /// Two lookups by primary key rather than one join: the usual answer, for every
    /// incoming pacs.008, is "never retired", and that is one probe of the small index.
    /// (The join, profiled under load, was prepared again at every step and took about
    /// 8% of the process's CPU.)
    pub(super) fn retired_payment(&self, uetr: Uetr) -> Result<Option<StoredPayment>, StoreError> {
        let mut statement = self
            .connection
            .prepare_cached("SELECT first_seq, latest_seq FROM retired_payments WHERE uetr = ?1")?;
        let Some((first_seq, latest_seq)) = statement
            .query_row(params![uetr.to_string()], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))
            .optional()?
        else {
            return Ok(None);
        };
        let mut statement = self
            .connection
            .prepare_cached(&format!("SELECT ?1, ?2, {PAYMENT_COLUMNS} FROM payments p WHERE p.seq = ?2"))?;
        Ok(Some(statement.query_row(params![first_seq, latest_seq], |row| Ok(stored_payment(row)))??))
    }

    /// Every retired payment, in the order the bank learnt of them.
    pub(super) fn retired_payments(&self) -> Result<Vec<StoredPayment>, StoreError> {
        let sql = format!(
            "SELECT i.first_seq, i.latest_seq, {PAYMENT_COLUMNS}
             FROM retired_payments i JOIN payments p ON p.seq = i.latest_seq ORDER BY i.first_seq"
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        let mut rows = statement.query([])?;
        let mut payments = Vec::new();
        while let Some(row) = rows.next()? {
            payments.push(stored_payment(row)?);
        }
        Ok(payments)
    }

    /// The messages of payment `uetr` (whose first version's key is `payment`) this bank
    /// kept, in the order it sent or received them: those kept under the payment, and any
    /// kept under its UETR alone (see [`KeptMessage::payment`]).
    pub(super) fn messages(&self, uetr: Uetr, payment: i64) -> Result<Vec<KeptMessage>, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, payment, sent, payload, signature, signer, key_id FROM messages WHERE payment = ?1
             UNION ALL
             SELECT seq, payment, sent, payload, signature, signer, key_id FROM messages
                 WHERE payment IS NULL AND uetr = ?2
             ORDER BY 1",
        )?;
        let mut rows = statement.query(params![payment, uetr.to_string()])?;
        let mut messages = Vec::new();
        while let Some(row) = rows.next()? {
            let envelope = pb::SignedEnvelope {
                payload: row.get::<_, Vec<u8>>(3)?.into(),
                signature: row.get::<_, Vec<u8>>(4)?.into(),
                signer_bic: row.get(5)?,
                key_id: row.get(6)?,
            };
            let sent = row.get::<_, i64>(2)? != 0;
            messages.push(KeptMessage { uetr, payment: row.get(1)?, sent, envelope });
        }
        Ok(messages)
    }

    /// Whether message `message_id` of `sender`, created at `created_unix_ms`, was processed.
    pub(super) fn processed(
        &self,
        sender: Bic,
        message_id: &MessageId,
        created_unix_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut statement = self.connection.prepare_cached(
            "SELECT 1 FROM processed WHERE created_unix_ms = ?1 AND sender = ?2 AND message_id = ?3 LIMIT 1",
        )?;
        Ok(statement.exists(params![created_unix_ms, sender.as_str(), message_id.as_str()])?)
    }

    /// Calls `each` with every posting numbered below `number_end` and booked at or
    /// after `from_unix_ms`, in order, with its number and booking time. Booking times
    /// never decrease with the number, so a binary search finds the first.
    pub(super) fn postings_since(
        &self,
        from_unix_ms: i64,
        number_end: usize,
        mut each: impl FnMut(usize, Posting, i64),
    ) -> Result<(), StoreError> {
        let mut booked_at =
            self.connection.prepare_cached("SELECT booked_unix_ms FROM postings WHERE seq = ?1")?;
        // The first key in [1, number_end] booked at or after `from_unix_ms`, or number_end + 1.
        let (mut low, mut high) = (1i64, number_end as i64 + 1);
        while low < high {
            let middle = low + (high - low) / 2;
            let booked: i64 = booked_at.query_row(params![middle], |row| row.get(0))?;
            if booked < from_unix_ms {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let mut statement = self.connection.prepare_cached(
            "SELECT seq, id, description, legs, booked_unix_ms FROM postings WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
        )?;
        let mut rows = statement.query(params![low, number_end as i64])?;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let (posting, booked_unix_ms) = posting_of_row(row)?;
            each((seq - 1) as usize, posting, booked_unix_ms);
        }
        Ok(())
    }
}

fn stored_payment(row: &rusqlite::Row<'_>) -> Result<StoredPayment, StoreError> {
    Ok(StoredPayment { first_seq: row.get(0)?, latest_seq: row.get(1)?, payment: payment_of_row(row, 2)? })
}

/// A posting from the columns id, description, legs and booked_unix_ms from index 1.
fn posting_of_row(row: &rusqlite::Row<'_>) -> Result<(Posting, i64), StoreError> {
    let id = PostingId::parse(&row.get::<_, String>(1)?).map_err(|e| corrupt("posting id", e))?;
    let legs = legs_from_json(&row.get::<_, String>(3)?)?;
    Ok((Posting { id, legs, description: row.get(2)? }, row.get(4)?))
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(format!("corrupt bank store ({what}): {detail}"))
}

fn kind_name(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Customer => "customer",
        AccountKind::Settlement => "settlement",
        AccountKind::InFlight => "in_flight",
        AccountKind::Suspense => "suspense",
        AccountKind::Cash => "cash",
    }
}

fn kind_of(name: &str) -> Result<AccountKind, StoreError> {
    Ok(match name {
        "customer" => AccountKind::Customer,
        "settlement" => AccountKind::Settlement,
        "in_flight" => AccountKind::InFlight,
        "suspense" => AccountKind::Suspense,
        "cash" => AccountKind::Cash,
        other => return Err(corrupt("account kind", other)),
    })
}

fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|e| corrupt("currency", e))
}

fn legs_to_json(legs: &[Leg]) -> String {
    let legs: Vec<serde_json::Value> = legs
        .iter()
        .map(|leg| {
            serde_json::json!({
                "account": leg.account.as_str(),
                "side": if leg.side == Side::Debit { "D" } else { "C" },
                "minor_units": leg.amount.minor_units(),
                "currency": leg.amount.currency().code(),
            })
        })
        .collect();
    serde_json::Value::Array(legs).to_string()
}

fn legs_from_json(text: &str) -> Result<Vec<Leg>, StoreError> {
    let legs: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|e| corrupt("legs", e))?;
    legs.iter()
        .map(|leg| {
            let field = |name: &str| leg.get(name).ok_or_else(|| corrupt("legs", format!("no {name}")));
            let account = AccountId::parse(field("account")?.as_str().unwrap_or_default())
                .map_err(|e| corrupt("legs", e))?;
            let side = match field("side")?.as_str() {
                Some("D") => Side::Debit,
                Some("C") => Side::Credit,
                _ => return Err(corrupt("legs", "side is neither D nor C")),
            };
            let minor_units = field("minor_units")?.as_i64().ok_or_else(|| corrupt("legs", "minor_units"))?;
            let currency = currency(field("currency")?.as_str().unwrap_or_default())?;
            let amount = Amount::from_minor_units(minor_units, currency).map_err(|e| corrupt("legs", e))?;
            Ok(Leg { account, side, amount })
        })
        .collect()
}

/// Reads the store back: everything (`hold_since_unix_ms` none, for tools), or what a
/// running bank holds in memory (payments not retired; postings and processed messages
/// from that time on). Every posting is replayed either way.
fn recover(
    connection: &Connection,
    bic: Bic,
    hold_since_unix_ms: Option<i64>,
) -> Result<RecoveredBank, StoreError> {
    let mut recovered = RecoveredBank::default();
    let mut statement =
        connection.prepare("SELECT id, kind, currency, name, blocked, floor FROM accounts ORDER BY rowid")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id = AccountId::parse(&row.get::<_, String>(0)?).map_err(|e| corrupt("account id", e))?;
        let kind = kind_of(&row.get::<_, String>(1)?)?;
        let name: String = row.get(3)?;
        let floor = match row.get::<_, Option<i64>>(5)? {
            Some(minimum) => Floor::Minimum(minimum),
            None => Floor::Unbounded,
        };
        let mut account =
            Account::new(id, kind, currency(&row.get::<_, String>(2)?)?, &name).with_floor(floor);
        account.blocked = row.get::<_, i64>(4)? != 0;
        recovered.ledger.open_account(account.clone()).map_err(|e| corrupt("account", e))?;
        recovered.accounts.push(account);
    }
    recover_postings(connection, &mut recovered, hold_since_unix_ms)?;
    recover_payments(connection, &mut recovered, hold_since_unix_ms.is_some())?;
    let (where_held, horizon) = match hold_since_unix_ms {
        Some(since) => ("WHERE created_unix_ms >= ?1", since),
        None => ("WHERE ?1 = ?1", i64::MIN),
    };
    recovered.processed_horizon_unix_ms = horizon;
    let sql = format!("SELECT sender, message_id, created_unix_ms FROM processed {where_held} ORDER BY seq");
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query(params![horizon])?;
    while let Some(row) = rows.next()? {
        let sender = Bic::parse(&row.get::<_, String>(0)?).map_err(|e| corrupt("sender", e))?;
        let message_id = MessageId::parse(&row.get::<_, String>(1)?).map_err(|e| corrupt("message id", e))?;
        recovered.processed.push((sender, message_id, row.get(2)?));
    }
    let mut statement = connection.prepare(
        "SELECT isn, message_id, uetr, message_type, payload, signature, key_id FROM outbox ORDER BY isn",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let uetr: Option<String> = row.get(2)?;
        let key_id: String = row.get(6)?;
        KeyId::parse(&key_id).map_err(|e| corrupt("key id", e))?;
        recovered.outbox.push(OutboxEntry {
            isn: row.get::<_, i64>(0)? as u64,
            message_id: MessageId::parse(&row.get::<_, String>(1)?).map_err(|e| corrupt("message id", e))?,
            uetr: uetr.map(|u| Uetr::parse(&u)).transpose().map_err(|e| corrupt("uetr", e))?,
            message_type: MessageType::parse(&row.get::<_, String>(3)?)
                .map_err(|e| corrupt("message type", e))?,
            envelope: pb::SignedEnvelope {
                payload: Bytes::from(row.get::<_, Vec<u8>>(4)?),
                signature: Bytes::from(row.get::<_, Vec<u8>>(5)?),
                signer_bic: bic.to_string(),
                key_id,
            },
        });
    }
    let cursor = connection.query_row(
        "SELECT next_isn, last_osn_processed, next_sequence_number FROM cursor WHERE id = 1",
        [],
        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)),
    );
    recovered.cursor = match cursor {
        Ok((next_isn, last_osn_processed, next_sequence_number)) => Cursor {
            next_isn: next_isn as u64,
            last_osn_processed: last_osn_processed as u64,
            next_sequence_number: next_sequence_number as u64,
        },
        Err(rusqlite::Error::QueryReturnedNoRows) => Cursor::default(),
        Err(error) => return Err(error.into()),
    };
    Ok(recovered)
}

/// What a payment carries beyond a plain one (conversion, return, recall), as JSON;
/// `None` for a plain payment, so that the hot path writes nothing more.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Story {
    #[serde(skip_serializing_if = "Option::is_none")]
    counter_minor_units: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    return_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall_case_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall_message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recall_reason: Option<String>,
}

fn story_to_json(p: &Payment) -> Option<String> {
    if p.conversion.is_none() && p.return_state == ReturnState::None && p.recall.is_none() {
        return None;
    }
    let mut story = Story::default();
    if let Some(c) = &p.conversion {
        story.counter_minor_units = Some(c.counter_amount.minor_units());
        story.counter_currency = Some(c.counter_amount.currency().to_string());
        story.rate = Some(c.rate.to_string());
    }
    if let ReturnState::Returning { reason, return_id } | ReturnState::Returned { reason, return_id } =
        &p.return_state
    {
        let state =
            if matches!(p.return_state, ReturnState::Returning { .. }) { "returning" } else { "returned" };
        story.return_state = Some(state.into());
        story.return_reason = Some(reason.code().into());
        story.return_id = Some(return_id.clone());
    }
    if let Some(r) = &p.recall {
        story.recall_case_id = Some(r.case_id.clone());
        story.recall_message_id = Some(r.message_id.to_string());
        story.recall_status = Some(r.status.code().into());
        story.recall_reason = Some(r.reason.code().into());
    }
    Some(serde_json::to_string(&story).expect("a story serialises"))
}

fn story_from_json(text: &str, payment: Payment) -> Result<Payment, String> {
    let story: Story = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let conversion = match (story.counter_minor_units, story.counter_currency, story.rate) {
        (Some(minor), Some(code), Some(rate)) => Some(PaymentConversion {
            counter_amount: Currency::parse(&code)
                .and_then(|c| Amount::from_minor_units(minor, c))
                .map_err(|e| e.to_string())?,
            rate: crate::model::Rate::parse(&rate).map_err(|e| e.to_string())?,
        }),
        (None, None, None) => None,
        _ => return Err("a conversion needs its amount, currency and rate".into()),
    };
    let return_state = match (story.return_state.as_deref(), story.return_reason, story.return_id) {
        (None, None, None) => ReturnState::None,
        (Some(state), Some(reason), Some(return_id)) => {
            let reason = ReasonCode::parse(&reason).map_err(|e| e.to_string())?;
            match state {
                "returning" => ReturnState::Returning { reason, return_id },
                "returned" => ReturnState::Returned { reason, return_id },
                other => return Err(format!("unknown return state {other:?}")),
            }
        }
        _ => return Err("a return needs its state, reason and id".into()),
    };
    let recall =
        match (story.recall_case_id, story.recall_message_id, story.recall_status, story.recall_reason) {
            (None, None, None, None) => None,
            (Some(case_id), Some(message_id), Some(status), Some(reason)) => Some(Recall {
                case_id,
                message_id: MessageId::parse(&message_id).map_err(|e| e.to_string())?,
                status: crate::model::InvestigationStatus::parse(&status).map_err(|e| e.to_string())?,
                reason: ReasonCode::parse(&reason).map_err(|e| e.to_string())?,
            }),
            _ => return Err("a recall needs its case, message, status and reason".into()),
        };
    Ok(Payment {
        conversion: conversion.map(Box::new),
        return_state,
        recall: recall.map(Box::new),
        ..payment
    })
}

/// Replays every posting into the ledger, in order; holds those booked at or after
/// `hold_since_unix_ms` (all of them when none). Each must apply, or the store is corrupt.
fn recover_postings(
    connection: &Connection,
    recovered: &mut RecoveredBank,
    hold_since_unix_ms: Option<i64>,
) -> Result<(), StoreError> {
    let mut statement =
        connection.prepare("SELECT seq, id, description, legs, booked_unix_ms FROM postings ORDER BY seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let number = recovered.ledger.posting_count();
        if seq != number as i64 + 1 {
            return Err(corrupt("posting key", format!("posting number {number} is under key {seq}")));
        }
        let (posting, booked_unix_ms) = posting_of_row(row)?;
        // Booking times never decrease, so the postings held are the last ones.
        let held =
            !recovered.postings.is_empty() || hold_since_unix_ms.is_none_or(|since| booked_unix_ms >= since);
        let id = posting.id.clone();
        let applied = if held {
            recovered.postings.push(posting.clone());
            recovered.posting_times.push(booked_unix_ms);
            recovered.ledger.post(posting)
        } else {
            let applied = recovered.ledger.post(posting);
            recovered.ledger.forget_postings(1);
            applied
        };
        if !matches!(applied, Ok(crate::ledger::PostOutcome::Applied)) {
            return Err(corrupt("posting", format!("{id} does not replay: {applied:?}")));
        }
    }
    Ok(())
}

/// A payment from its columns uetr, message_id, direction, counterparty, debtor_account,
/// creditor_account, minor_units, currency, status, reason, detail and story, from `first`.
fn payment_of_row(row: &rusqlite::Row<'_>, first: usize) -> Result<Payment, StoreError> {
    let text = |index: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(first + index)?) };
    payment_of_columns(PaymentColumns {
        uetr: &text(0)?,
        message_id: &text(1)?,
        direction: &text(2)?,
        counterparty: &text(3)?,
        debtor_account: text(4)?,
        creditor_account: text(5)?,
        minor_units: row.get(first + 6)?,
        currency: &text(7)?,
        status: &text(8)?,
        reason: row.get::<_, Option<String>>(first + 9)?.as_deref(),
        detail: text(10)?,
        story: row.get::<_, Option<String>>(first + 11)?.as_deref(),
    })
}

/// A payment version as the store writes it, in the table and in the log.
struct PaymentColumns<'a> {
    uetr: &'a str,
    message_id: &'a str,
    direction: &'a str,
    counterparty: &'a str,
    debtor_account: String,
    creditor_account: String,
    minor_units: i64,
    currency: &'a str,
    status: &'a str,
    reason: Option<&'a str>,
    detail: String,
    story: Option<&'a str>,
}

fn payment_of_columns(c: PaymentColumns<'_>) -> Result<Payment, StoreError> {
    let payment = Payment {
        uetr: Uetr::parse(c.uetr).map_err(|e| corrupt("uetr", e))?,
        message_id: MessageId::parse(c.message_id).map_err(|e| corrupt("message id", e))?,
        direction: match c.direction {
            "OUT" => Direction::Outgoing,
            "IN" => Direction::Incoming,
            other => return Err(corrupt("direction", other)),
        },
        counterparty: Bic::parse(c.counterparty).map_err(|e| corrupt("counterparty", e))?,
        debtor_account: c.debtor_account,
        creditor_account: c.creditor_account,
        amount: Amount::from_minor_units(c.minor_units, currency(c.currency)?)
            .map_err(|e| corrupt("amount", e))?,
        status: PaymentStatus::parse(c.status).map_err(|e| corrupt("status", e))?,
        reason: c.reason.map(ReasonCode::parse).transpose().map_err(|e| corrupt("reason", e))?,
        detail: c.detail,
        conversion: None,
        return_state: ReturnState::None,
        recall: None,
    };
    match c.story {
        None => Ok(payment),
        Some(text) => story_from_json(text, payment).map_err(|e| corrupt("payment story", e)),
    }
}

fn direction_code(direction: Direction) -> &'static str {
    if direction == Direction::Outgoing { "OUT" } else { "IN" }
}

/// Reads the payments back: every one (tools), or those a running bank holds (`held`):
/// not retired, or changed since they were retired (a return or recall brought them
/// back). Every change of a payment is a row: the last one is its state, the first its
/// place (for one brought back, its place is the retired row's).
fn recover_payments(
    connection: &Connection,
    recovered: &mut RecoveredBank,
    held: bool,
) -> Result<(), StoreError> {
    let sql = if held {
        format!(
            "SELECT p.seq, i.first_seq, {PAYMENT_COLUMNS} FROM payments p LEFT JOIN retired_payments i ON i.uetr = p.uetr
             WHERE i.latest_seq IS NULL OR p.seq > i.latest_seq ORDER BY p.seq"
        )
    } else {
        format!("SELECT p.seq, NULL, {PAYMENT_COLUMNS} FROM payments p ORDER BY p.seq")
    };
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query([])?;
    let mut places: std::collections::HashMap<Uetr, usize> = std::collections::HashMap::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let payment = payment_of_row(row, 2)?;
        match places.get(&payment.uetr) {
            Some(place) => {
                recovered.payments[*place] = payment;
                recovered.payment_versions[*place].1 = seq;
            }
            None => {
                let first_seq = row.get::<_, Option<i64>>(1)?.unwrap_or(seq);
                places.insert(payment.uetr, recovered.payments.len());
                recovered.payments.push(payment);
                recovered.payment_versions.push((first_seq, seq));
            }
        }
    }
    // Brought back after retirement: their place is their first version's.
    let mut held: Vec<(Payment, (i64, i64))> = std::mem::take(&mut recovered.payments)
        .into_iter()
        .zip(std::mem::take(&mut recovered.payment_versions))
        .collect();
    held.sort_by_key(|(_, (first_seq, _))| *first_seq);
    (recovered.payments, recovered.payment_versions) = held.into_iter().unzip();
    recovered.payment_seq_max =
        connection.query_row("SELECT COALESCE(MAX(seq), 0) FROM payments", [], |row| row.get(0))?;
    Ok(())
}

impl Derived for BankDerived {
    type Record = BankChange;

    fn apply(&mut self, batches: &[Vec<BankChange>], through: u64) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        let changes = || batches.iter().flatten();
        // Every message moves the cursor: only the last is ever read, so the others are
        // not written. A message the hub ACKed within the same batch is put and removed
        // at once: neither is written.
        let last_cursor = changes().filter(|change| matches!(change, BankChange::Cursor(_))).count();
        let answered: std::collections::HashSet<u64> = changes()
            .filter_map(|change| if let BankChange::OutboxRemove(isn) = change { Some(*isn) } else { None })
            .collect();
        let put: std::collections::HashSet<u64> = changes()
            .filter_map(|change| match change {
                BankChange::OutboxPut(entry) if answered.contains(&entry.isn) => Some(entry.isn),
                _ => None,
            })
            .collect();
        let mut cursors = 0;
        for change in changes() {
            match change {
                BankChange::Cursor(_) => {
                    cursors += 1;
                    if cursors < last_cursor {
                        continue;
                    }
                }
                BankChange::OutboxPut(entry) if put.contains(&entry.isn) => continue,
                BankChange::OutboxRemove(isn) if put.contains(isn) => continue,
                _ => {}
            }
            write_change(&transaction, change)?;
        }
        set_applied_through(&transaction, through)?;
        transaction.commit()?;
        Ok(())
    }
}

fn write_change(transaction: &rusqlite::Transaction<'_>, change: &BankChange) -> Result<(), StoreError> {
    match change {
        BankChange::Account(a) => {
            let floor = match a.floor {
                Floor::Minimum(minimum) => Some(minimum),
                Floor::Unbounded => None,
            };
            transaction
                .prepare_cached(
                    "INSERT INTO accounts (id, kind, currency, name, blocked, floor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET blocked = excluded.blocked, name = excluded.name",
                )?
                .execute(params![a.id.as_str(), kind_name(a.kind), a.currency.code(), a.name, a.blocked as i64, floor])?;
        }
        BankChange::Posting { posting: p, number, booked_unix_ms } => {
            transaction
                .prepare_cached(
                    "INSERT INTO postings (seq, id, description, legs, booked_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    *number as i64 + 1,
                    p.id.as_str(),
                    p.description,
                    legs_to_json(&p.legs),
                    booked_unix_ms
                ])?;
        }
        BankChange::Payment(p, seq) => {
            transaction
                .prepare_cached(
                    "INSERT INTO payments (seq, uetr, message_id, direction, counterparty, debtor_account,
                                           creditor_account, minor_units, currency, status, reason, detail, story)
                     VALUES (?13, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    p.uetr.to_string(),
                    p.message_id.as_str(),
                    direction_code(p.direction),
                    p.counterparty.as_str(),
                    p.debtor_account,
                    p.creditor_account,
                    p.amount.minor_units(),
                    p.amount.currency().code(),
                    p.status.code(),
                    p.reason.map(|r| r.code()),
                    p.detail,
                    story_to_json(p),
                    seq,
                ])?;
        }
        BankChange::Processed(sender, message_id, created_unix_ms) => {
            transaction
                .prepare_cached(
                    "INSERT INTO processed (sender, message_id, created_unix_ms) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![sender.as_str(), message_id.as_str(), created_unix_ms])?;
        }
        BankChange::Retired(payments) => {
            let mut insert = transaction.prepare_cached(
                "INSERT INTO retired_payments (uetr, first_seq, latest_seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (uetr) DO UPDATE SET latest_seq = excluded.latest_seq",
            )?;
            for retired in payments {
                insert.execute(params![retired.uetr.to_string(), retired.first_seq, retired.latest_seq])?;
            }
        }
        BankChange::OutboxPut(e) => {
            transaction
                .prepare_cached(
                    "INSERT INTO outbox (isn, message_id, uetr, message_type, payload, signature, key_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    e.isn as i64,
                    e.message_id.as_str(),
                    e.uetr.map(|u| u.to_string()),
                    e.message_type.code(),
                    e.envelope.payload.as_ref(),
                    e.envelope.signature.as_ref(),
                    e.envelope.key_id,
                ])?;
        }
        BankChange::Message(m) => {
            transaction
                .prepare_cached(
                    "INSERT INTO messages (payment, uetr, sent, payload, signature, signer, key_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    m.payment,
                    m.uetr.to_string(),
                    m.sent as i64,
                    m.envelope.payload.as_ref(),
                    m.envelope.signature.as_ref(),
                    m.envelope.signer_bic,
                    m.envelope.key_id,
                ])?;
        }
        BankChange::OutboxRemove(isn) => {
            transaction.prepare_cached("DELETE FROM outbox WHERE isn = ?1")?.execute(params![*isn as i64])?;
        }
        BankChange::Cursor(c) => {
            transaction
                .prepare_cached(
                    "INSERT INTO cursor (id, next_isn, last_osn_processed, next_sequence_number) VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET next_isn = excluded.next_isn,
                         last_osn_processed = excluded.last_osn_processed,
                         next_sequence_number = excluded.next_sequence_number",
                )?
                .execute(params![c.next_isn as i64, c.last_osn_processed as i64, c.next_sequence_number as i64])?;
        }
    }
    Ok(())
}

/// A change's kind, its first byte in the log.
mod kind {
    pub const ACCOUNT: u8 = 1;
    pub const POSTING: u8 = 2;
    pub const PAYMENT: u8 = 3;
    pub const PROCESSED: u8 = 4;
    pub const RETIRED: u8 = 5;
    pub const OUTBOX_PUT: u8 = 6;
    pub const OUTBOX_REMOVE: u8 = 7;
    pub const CURSOR: u8 = 8;
    /// A kept message with no payment key (the only kind before it had one).
    pub const MESSAGE: u8 = 9;
    /// A kept message with its payment's key.
    pub const MESSAGE_OF_PAYMENT: u8 = 10;
}

impl LogRecord for BankChange {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            BankChange::Account(a) => {
                put::u8(out, kind::ACCOUNT);
                put::str(out, a.id.as_str());
                put::str(out, kind_name(a.kind));
                put::str(out, a.currency.code());
                put::str(out, &a.name);
                put::u8(out, a.blocked as u8);
                put::opt_i64(out, if let Floor::Minimum(minimum) = a.floor { Some(minimum) } else { None });
            }
            BankChange::Posting { posting, number, booked_unix_ms } => {
                put::u8(out, kind::POSTING);
                put::str(out, posting.id.as_str());
                put::str(out, &posting.description);
                put::str(out, &legs_to_json(&posting.legs));
                put::u64(out, *number as u64);
                put::i64(out, *booked_unix_ms);
            }
            BankChange::Payment(p, seq) => {
                put::u8(out, kind::PAYMENT);
                put::i64(out, *seq);
                put::str(out, &p.uetr.to_string());
                put::str(out, p.message_id.as_str());
                put::str(out, direction_code(p.direction));
                put::str(out, p.counterparty.as_str());
                put::str(out, &p.debtor_account);
                put::str(out, &p.creditor_account);
                put::i64(out, p.amount.minor_units());
                put::str(out, p.amount.currency().code());
                put::str(out, p.status.code());
                put::opt_str(out, p.reason.map(|r| r.code()));
                put::str(out, &p.detail);
                put::opt_str(out, story_to_json(p).as_deref());
            }
            BankChange::Processed(sender, message_id, created_unix_ms) => {
                put::u8(out, kind::PROCESSED);
                put::str(out, sender.as_str());
                put::str(out, message_id.as_str());
                put::i64(out, *created_unix_ms);
            }
            BankChange::Retired(payments) => {
                put::u8(out, kind::RETIRED);
                put::u64(out, payments.len() as u64);
                for retired in payments {
                    put::str(out, &retired.uetr.to_string());
                    put::i64(out, retired.first_seq);
                    put::i64(out, retired.latest_seq);
                }
            }
            BankChange::OutboxPut(e) => {
                put::u8(out, kind::OUTBOX_PUT);
                put::u64(out, e.isn);
                put::str(out, e.message_id.as_str());
                put::opt_str(out, e.uetr.map(|u| u.to_string()).as_deref());
                put::str(out, e.message_type.code());
                put_envelope(out, &e.envelope);
            }
            BankChange::OutboxRemove(isn) => {
                put::u8(out, kind::OUTBOX_REMOVE);
                put::u64(out, *isn);
            }
            BankChange::Cursor(c) => {
                put::u8(out, kind::CURSOR);
                put::u64(out, c.next_isn);
                put::u64(out, c.last_osn_processed);
                put::u64(out, c.next_sequence_number);
            }
            BankChange::Message(m) => {
                match m.payment {
                    Some(payment) => {
                        put::u8(out, kind::MESSAGE_OF_PAYMENT);
                        put::i64(out, payment);
                    }
                    None => put::u8(out, kind::MESSAGE),
                }
                put::str(out, &m.uetr.to_string());
                put::u8(out, m.sent as u8);
                put_envelope(out, &m.envelope);
            }
        }
    }

    fn decode(record: &[u8]) -> Result<Self, String> {
        let mut r = Reader::new(record);
        let text = |e: StoreError| e.to_string();
        let uetr = |s: &str| Uetr::parse(s).map_err(|e| format!("uetr: {e}"));
        let decoded = match r.u8()? {
            kind::ACCOUNT => {
                let id = AccountId::parse(r.str()?).map_err(|e| format!("account id: {e}"))?;
                let kind = kind_of(r.str()?).map_err(text)?;
                let currency = currency(r.str()?).map_err(text)?;
                let name = r.str()?.to_owned();
                let blocked = r.u8()? != 0;
                let floor = r.opt_i64()?.map_or(Floor::Unbounded, Floor::Minimum);
                let mut account = Account::new(id, kind, currency, &name).with_floor(floor);
                account.blocked = blocked;
                BankChange::Account(account)
            }
            kind::POSTING => {
                let id = PostingId::parse(r.str()?).map_err(|e| format!("posting id: {e}"))?;
                let description = r.str()?.to_owned();
                let legs = legs_from_json(r.str()?).map_err(text)?;
                let number = usize::try_from(r.u64()?).map_err(|e| e.to_string())?;
                BankChange::Posting {
                    posting: Posting { id, legs, description },
                    number,
                    booked_unix_ms: r.i64()?,
                }
            }
            kind::PAYMENT => {
                let seq = r.i64()?;
                let columns = PaymentColumns {
                    uetr: r.str()?,
                    message_id: r.str()?,
                    direction: r.str()?,
                    counterparty: r.str()?,
                    debtor_account: r.str()?.to_owned(),
                    creditor_account: r.str()?.to_owned(),
                    minor_units: r.i64()?,
                    currency: r.str()?,
                    status: r.str()?,
                    reason: r.opt_str()?,
                    detail: r.str()?.to_owned(),
                    story: r.opt_str()?,
                };
                BankChange::Payment(payment_of_columns(columns).map_err(text)?, seq)
            }
            kind::PROCESSED => {
                let sender = Bic::parse(r.str()?).map_err(|e| format!("sender: {e}"))?;
                let message_id = MessageId::parse(r.str()?).map_err(|e| format!("message id: {e}"))?;
                BankChange::Processed(sender, message_id, r.i64()?)
            }
            kind::RETIRED => {
                let count = r.u64()?;
                let mut payments = Vec::with_capacity(count.min(4096) as usize);
                for _ in 0..count {
                    payments.push(RetiredPayment {
                        uetr: uetr(r.str()?)?,
                        first_seq: r.i64()?,
                        latest_seq: r.i64()?,
                    });
                }
                BankChange::Retired(payments)
            }
            kind::OUTBOX_PUT => {
                let isn = r.u64()?;
                let message_id = MessageId::parse(r.str()?).map_err(|e| format!("message id: {e}"))?;
                let uetr = r.opt_str()?.map(uetr).transpose()?;
                let message_type = MessageType::parse(r.str()?).map_err(|e| format!("message type: {e}"))?;
                let envelope = read_envelope(&mut r)?;
                BankChange::OutboxPut(OutboxEntry { isn, message_id, uetr, message_type, envelope })
            }
            kind::OUTBOX_REMOVE => BankChange::OutboxRemove(r.u64()?),
            kind::CURSOR => BankChange::Cursor(Cursor {
                next_isn: r.u64()?,
                last_osn_processed: r.u64()?,
                next_sequence_number: r.u64()?,
            }),
            kind @ (kind::MESSAGE | kind::MESSAGE_OF_PAYMENT) => {
                let payment = if kind == kind::MESSAGE_OF_PAYMENT { Some(r.i64()?) } else { None };
                let uetr = uetr(r.str()?)?;
                let sent = r.u8()? != 0;
                BankChange::Message(KeptMessage { uetr, payment, sent, envelope: read_envelope(&mut r)? })
            }
            other => return Err(format!("a bank record of unknown kind {other}")),
        };
        r.end()?;
        Ok(decoded)
    }
}

fn put_envelope(out: &mut Vec<u8>, envelope: &pb::SignedEnvelope) {
    put::bytes(out, &envelope.payload);
    put::bytes(out, &envelope.signature);
    put::str(out, &envelope.signer_bic);
    put::str(out, &envelope.key_id);
}

fn read_envelope(r: &mut Reader<'_>) -> Result<pb::SignedEnvelope, String> {
    Ok(pb::SignedEnvelope {
        payload: Bytes::copy_from_slice(r.bytes()?),
        signature: Bytes::copy_from_slice(r.bytes()?),
        signer_bic: r.str()?.to_owned(),
        key_id: r.str()?.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(uetr: Uetr, payment: Option<i64>, payload: &'static [u8]) -> KeptMessage {
        let envelope = pb::SignedEnvelope {
            payload: Bytes::from_static(payload),
            signature: Bytes::from_static(b"signature"),
            signer_bic: "BANKRUMMXXX".into(),
            key_id: "k1".into(),
        };
        KeptMessage { uetr, payment, sent: payment.is_some(), envelope }
    }

    /// A kept message is found by its payment's key; one kept with no payment key (a
    /// record of the kind written before it had one, or a message of a payment the bank
    /// did not hold) by its UETR. Both kinds go through the log's codec unchanged, and
    /// an export gets both, in the order they were kept, and nothing of another payment.
    #[test]
    fn kept_messages_are_found_by_their_payment_or_else_by_their_uetr() {
        let dir = tempfile::tempdir().unwrap();
        let bic = Bic::parse("BANKRUMMXXX").unwrap();
        let (one, other) = (Uetr::generate(), Uetr::generate());
        let changes = vec![
            BankChange::Message(kept(one, None, b"first, of the old kind")),
            BankChange::Message(kept(other, Some(2), b"another payment's")),
            BankChange::Message(kept(one, Some(1), b"second, under its payment")),
            BankChange::Message(kept(other, None, b"another payment's, of the old kind")),
        ];
        let decoded: Vec<BankChange> = changes
            .iter()
            .map(|change| {
                let mut bytes = Vec::new();
                change.encode(&mut bytes);
                BankChange::decode(&bytes).unwrap()
            })
            .collect();
        for (decoded, change) in decoded.iter().zip(&changes) {
            let (BankChange::Message(decoded), BankChange::Message(change)) = (decoded, change) else {
                unreachable!()
            };
            assert_eq!(decoded, change);
        }
        let (_, mut derived) = BankStore::open_caught_up(dir.path(), bic).unwrap();
        derived.apply(&[decoded], 4).unwrap();
        let reader = StoreReader::open(dir.path()).unwrap();
        let payloads = |uetr, payment| -> Vec<Bytes> {
            reader.messages(uetr, payment).unwrap().into_iter().map(|m| m.envelope.payload).collect()
        };
        assert_eq!(payloads(one, 1), ["first, of the old kind".as_bytes(), b"second, under its payment"]);
        assert_eq!(
            payloads(other, 2),
            ["another payment's".as_bytes(), b"another payment's, of the old kind"]
        );
        assert!(payloads(Uetr::generate(), 3).is_empty());
    }
}
