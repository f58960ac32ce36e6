//! A bank's durable store: accounts, postings, payments, the messages it processed, its
//! outbox and its sequence counters; and recovery from it.
//!
//! The bank changes its state in memory and journals the matching [`BankChange`]s in the
//! same critical section; whatever leaves the bank (an answer to its operator, a
//! message, a delivery confirmation) waits until they are durable.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use rusqlite::{Connection, params};

use super::{Direction, Payment, PaymentConversion, Recall, ReturnState};
use crate::crypto::KeyId;
use crate::ledger::{Account, AccountId, AccountKind, Floor, Leg, Posting, PostingId, Side};
use crate::model::{Amount, Bic, Currency, MessageId, MessageType, PaymentStatus, ReasonCode, Uetr};
use crate::pb;
use crate::store::{Backend, DataLock, StoreError, open_sqlite};

/// File name of a bank's store inside its data directory.
pub const BANK_STORE_FILE: &str = "bank.sqlite";

// Append-only where it matters: postings, payment versions and processed messages go in
// by an increasing integer key, so a group commit dirties a few pages at the end of each
// table instead of one page per message in a random-key index (which cost several times
// the write volume per fsync). Uniqueness (posting ids, one payment per UETR, one
// processing per message) is kept in memory and checked again on recovery.
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
    CREATE TABLE processed (
        seq INTEGER PRIMARY KEY,
        sender TEXT NOT NULL,
        message_id TEXT NOT NULL
    );
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
    /// A posting applied, and when (Unix ms).
    Posting(Posting, i64),
    /// A payment created or changed.
    Payment(Payment),
    /// A message received and processed.
    Processed(Bic, MessageId),
    /// A message queued for the hub.
    OutboxPut(OutboxEntry),
    /// The hub answered the message with this input sequence number.
    OutboxRemove(u64),
    /// The counters moved.
    Cursor(Cursor),
}

/// What a bank's store held at start.
#[derive(Debug, Default)]
pub struct RecoveredBank {
    /// Accounts in opening order, at zero balance.
    pub accounts: Vec<Account>,
    /// Postings in the order they were applied.
    pub postings: Vec<Posting>,
    /// When each posting was booked (Unix ms), in the same order.
    pub posting_times: Vec<i64>,
    /// Payments in the order the bank learnt of them.
    pub payments: Vec<Payment>,
    /// Messages processed.
    pub processed: Vec<(Bic, MessageId)>,
    /// Messages not yet answered by the hub.
    pub outbox: Vec<OutboxEntry>,
    /// Counters.
    pub cursor: Cursor,
}

impl RecoveredBank {
    /// The ledger the store describes: accounts opened, postings replayed in order. Each
    /// posting must apply, or the store is corrupt.
    pub fn ledger(&self) -> Result<crate::ledger::Ledger, String> {
        let mut ledger = crate::ledger::Ledger::new();
        for account in &self.accounts {
            ledger
                .open_account(account.clone())
                .map_err(|e| format!("corrupt store: account {}: {e}", account.id))?;
        }
        for posting in &self.postings {
            match ledger.post(posting.clone()) {
                Ok(crate::ledger::PostOutcome::Applied) => {}
                other => {
                    return Err(format!("corrupt store: posting {} does not replay: {other:?}", posting.id));
                }
            }
        }
        Ok(ledger)
    }
}

/// A bank's store in SQLite.
pub struct SqliteBankStore {
    connection: Connection,
    _lock: DataLock,
}

/// Path of a bank's store in `data_dir`.
pub fn store_path(data_dir: &Path) -> PathBuf {
    data_dir.join(BANK_STORE_FILE)
}

impl SqliteBankStore {
    /// Opens (or creates) the store of bank `bic` in `data_dir` and reads it back.
    pub fn open(data_dir: &Path, bic: Bic) -> Result<(Self, RecoveredBank), StoreError> {
        let (connection, lock) = open_sqlite(&store_path(data_dir), "bank", bic.as_str(), SCHEMA)?;
        let recovered = recover(&connection, bic)?;
        Ok((Self { connection, _lock: lock }, recovered))
    }

    /// Reads the store of a stopped bank (for checks and tools).
    pub fn read(data_dir: &Path, bic: Bic) -> Result<RecoveredBank, StoreError> {
        Self::open(data_dir, bic).map(|(_, recovered)| recovered)
    }
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

fn recover(connection: &Connection, bic: Bic) -> Result<RecoveredBank, StoreError> {
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
        recovered.accounts.push(account);
    }
    let mut statement =
        connection.prepare("SELECT id, description, legs, booked_unix_ms FROM postings ORDER BY seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let id = PostingId::parse(&row.get::<_, String>(0)?).map_err(|e| corrupt("posting id", e))?;
        let legs = legs_from_json(&row.get::<_, String>(2)?)?;
        recovered.postings.push(Posting { id, legs, description: row.get(1)? });
        recovered.posting_times.push(row.get(3)?);
    }
    recovered.payments = recover_payments(connection)?;
    let mut statement = connection.prepare("SELECT sender, message_id FROM processed ORDER BY seq")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let sender = Bic::parse(&row.get::<_, String>(0)?).map_err(|e| corrupt("sender", e))?;
        let message_id = MessageId::parse(&row.get::<_, String>(1)?).map_err(|e| corrupt("message id", e))?;
        recovered.processed.push((sender, message_id));
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

fn recover_payments(connection: &Connection) -> Result<Vec<Payment>, StoreError> {
    let mut statement = connection.prepare(
        "SELECT uetr, message_id, direction, counterparty, debtor_account, creditor_account, minor_units, currency,
                status, reason, detail, story
         FROM payments ORDER BY seq",
    )?;
    let mut rows = statement.query([])?;
    // Every change of a payment is a row: the last one is its state, the first its place.
    let mut payments: Vec<Payment> = Vec::new();
    let mut places: std::collections::HashMap<Uetr, usize> = std::collections::HashMap::new();
    while let Some(row) = rows.next()? {
        let text = |index: usize| -> Result<String, StoreError> { Ok(row.get::<_, String>(index)?) };
        let reason: Option<String> = row.get(9)?;
        let payment = Payment {
            uetr: Uetr::parse(&text(0)?).map_err(|e| corrupt("uetr", e))?,
            message_id: MessageId::parse(&text(1)?).map_err(|e| corrupt("message id", e))?,
            direction: match text(2)?.as_str() {
                "OUT" => Direction::Outgoing,
                "IN" => Direction::Incoming,
                other => return Err(corrupt("direction", other)),
            },
            counterparty: Bic::parse(&text(3)?).map_err(|e| corrupt("counterparty", e))?,
            debtor_account: text(4)?,
            creditor_account: text(5)?,
            amount: Amount::from_minor_units(row.get(6)?, currency(&text(7)?)?)
                .map_err(|e| corrupt("amount", e))?,
            status: PaymentStatus::parse(&text(8)?).map_err(|e| corrupt("status", e))?,
            reason: reason.map(|r| ReasonCode::parse(&r)).transpose().map_err(|e| corrupt("reason", e))?,
            detail: text(10)?,
            conversion: None,
            return_state: ReturnState::None,
            recall: None,
        };
        let story: Option<String> = row.get(11)?;
        let payment = match story {
            None => payment,
            Some(text) => story_from_json(&text, payment).map_err(|e| corrupt("payment story", e))?,
        };
        match places.get(&payment.uetr) {
            Some(place) => payments[*place] = payment,
            None => {
                places.insert(payment.uetr, payments.len());
                payments.push(payment);
            }
        }
    }
    Ok(payments)
}

impl Backend for SqliteBankStore {
    type Record = BankChange;

    fn write_batch(&mut self, changes: &[BankChange]) -> Result<(), StoreError> {
        let transaction = self.connection.transaction()?;
        for change in changes {
            write_change(&transaction, change)?;
        }
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
        BankChange::Posting(p, booked_unix_ms) => {
            transaction
                .prepare_cached(
                    "INSERT INTO postings (id, description, legs, booked_unix_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![p.id.as_str(), p.description, legs_to_json(&p.legs), booked_unix_ms])?;
        }
        BankChange::Payment(p) => {
            transaction
                .prepare_cached(
                    "INSERT INTO payments (uetr, message_id, direction, counterparty, debtor_account, creditor_account,
                                           minor_units, currency, status, reason, detail, story)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?
                .execute(params![
                    p.uetr.to_string(),
                    p.message_id.as_str(),
                    if p.direction == Direction::Outgoing { "OUT" } else { "IN" },
                    p.counterparty.as_str(),
                    p.debtor_account,
                    p.creditor_account,
                    p.amount.minor_units(),
                    p.amount.currency().code(),
                    p.status.code(),
                    p.reason.map(|r| r.code()),
                    p.detail,
                    story_to_json(p),
                ])?;
        }
        BankChange::Processed(sender, message_id) => {
            transaction
                .prepare_cached("INSERT INTO processed (sender, message_id) VALUES (?1, ?2)")?
                .execute(params![sender.as_str(), message_id.as_str()])?;
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
