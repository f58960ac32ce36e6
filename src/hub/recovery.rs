//! The hub rebuilt from its journal at start, by replaying it through the steps the live
//! hub took; and a stopped hub's journal read or audited without changing it.

use std::collections::{BTreeMap, HashMap};

use super::duplicates::RecentMessages;
use super::state::{HubState, Participant, take_through};
use super::{
    FxDesk, HubConfig, HubJournal, HubPayment, Positions, RecoveredHub, SettlementModel, Tracker,
    duration_ms, events, journal,
};
use crate::crypto::{CryptoError, KeyDirectory};
use crate::directory::Directory;
use crate::model::{Bic, MessageKey, Uetr, wire};
use crate::pb;
use crate::store::Ticket;

/// Rebuilds the hub's state from its journal by replaying it through the same steps
/// the live hub took: every message admitted and settled again in order (each must pass
/// again, or the journal is corrupt), operator actions at their place between messages,
/// then the times of ACKs and deliveries for the tracker.
///
/// The duplicate set forgets as it goes, at each message's acceptance time; what is left
/// at the end is forgotten against the clock now, so messages older than the retention
/// never stay in memory (the journal answers for them).
///
/// The tracker is rebuilt whole from the journal, archived payments included (the journal
/// has every message, so replay needs no archive); the archiver then moves the finished
/// ones out again, rewriting their archive rows with the same content (INSERT OR REPLACE).
/// Simple and idempotent, at the cost of holding every payment in memory for a moment
/// after a restart, as before this archive existed.
pub(super) fn recover(
    directory: &Directory,
    config: &HubConfig,
    positions: Positions,
    recovered: RecoveredHub,
) -> Result<HubState, String> {
    let mut state = HubState {
        participants: HashMap::new(),
        recent: RecentMessages::new(
            duration_ms(config.retention.min(config.message_age_max + config.clock_skew_max)),
            duration_ms(config.clock_skew_max),
        ),
        messages_accepted: 0,
        accepted_by_type: events::AcceptedCounts::default(),
        outbox_total: 0,
        positions,
        fx: FxDesk::default(),
        tracker: Tracker::default(),
        archive: None,
        next_session_id: 0,
    };
    for (bic, _) in directory.participants() {
        let (isn_consumed, osn_delivered) = recovered.sequences.get(&bic).copied().unwrap_or((0, 0));
        let participant =
            Participant { next_isn: isn_consumed + 1, next_osn: osn_delivered + 1, ..Participant::default() };
        state.participants.insert(bic, participant);
    }
    let count = recovered.messages.len();
    let mut actions = recovered.operator_actions.into_iter().peekable();
    // Payment messages by (receiver, output sequence number), until their delivery's time is known.
    let mut undelivered: HashMap<Bic, BTreeMap<u64, Uetr>> = HashMap::new();
    for record in recovered.messages {
        while let Some(action) = actions.next_if(|a| a.after_messages == state.messages_accepted) {
            state.operate(&action.action, action.unix_ms).map_err(|e| format!("corrupt hub journal: {e}"))?;
        }
        if !state.participants.contains_key(&record.sender)
            || !state.participants.contains_key(&record.receiver)
        {
            return Err(format!(
                "the journal holds a message between {} and {}, which the directory does not list",
                record.sender, record.receiver
            ));
        }
        let message = wire::decode_message(&record.envelope.payload).map_err(|e| {
            format!("corrupt hub journal: message {} does not decode: {e}", record.message_id)
        })?;
        state.settle(record.sender, &message, record.osn, record.accepted_unix_ms).map_err(|refusal| {
            format!("corrupt hub journal: message {} does not replay: {}", record.message_id, refusal.detail)
        })?;
        if let Some(uetr) = record.uetr {
            undelivered.entry(record.receiver).or_default().insert(record.osn, uetr);
        }
        // Anything recovered may have been delivered before the restart: flag it (PDM).
        let receiver = state.participants.get_mut(&record.receiver).expect("checked above");
        receiver.osn_sent_high_water = receiver.osn_sent_high_water.max(record.osn);
        let osn_delivered = recovered.sequences.get(&record.receiver).map_or(0, |s| s.1);
        let queued = (record.osn > osn_delivered).then(|| pb::SignedEnvelope::from(&record.envelope));
        state.recent.forget_expired(record.accepted_unix_ms, Ticket::DURABLE);
        let key = MessageKey::new(record.sender, &record.message_id);
        state.admit(&record, key, queued, Ticket::DURABLE);
    }
    for action in actions {
        state.operate(&action.action, action.unix_ms).map_err(|e| format!("corrupt hub journal: {e}"))?;
    }
    for (participant, isn, unix_ms) in recovered.acks {
        if state.participants.contains_key(&participant) {
            state.acknowledged(participant, isn, unix_ms);
        }
    }
    for (participant, osn, unix_ms) in recovered.deliveries {
        let Some(pending) = undelivered.get_mut(&participant) else { continue };
        for (delivered_osn, uetr) in take_through(pending, osn) {
            state.tracker.delivered(&uetr, participant, delivered_osn, unix_ms);
        }
    }
    state.recent.forget_expired(config.clock.unix_ms(), Ticket::DURABLE);
    tracing::info!(messages = count, recent = state.recent.len(), "hub journal recovered");
    Ok(state)
}

/// Reads the journal of a stopped hub in `data_dir` without changing it: its positions
/// and every payment, replayed as the hub would at start.
pub fn read_journal(
    directory: &Directory,
    data_dir: &std::path::Path,
) -> Result<(Positions, Vec<HubPayment>), String> {
    let path = journal::store_path(data_dir);
    if !path.exists() {
        return Err(format!("no hub journal at {}", path.display()));
    }
    let recovered = HubJournal::read(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let (model, created_unix_ms) = recovered.created.unwrap_or((SettlementModel::Gross, 0));
    let state = recover(directory, &HubConfig::default(), Positions::new(model, created_unix_ms), recovered)?;
    Ok((state.positions, state.tracker.payments().cloned().collect()))
}

/// What [`audit_journal`] found.
#[derive(Debug, Default)]
pub struct AuditReport {
    /// Archived messages whose signature verified against the key valid when they were created.
    pub verified: usize,
    /// Those that did not: message id and why.
    pub failed: Vec<(String, String)>,
}

/// Verifies every message in a stopped hub's journal (`data_dir`) again, each against
/// the key that was valid when it was created: keys rotated or revoked since then do
/// not make the archive unverifiable, and a key used outside its validity is caught.
pub fn audit_journal(directory: &Directory, data_dir: &std::path::Path) -> Result<AuditReport, String> {
    let path = journal::store_path(data_dir);
    if !path.exists() {
        return Err(format!("no hub journal at {}", path.display()));
    }
    let recovered = HubJournal::read(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let keys = directory.keys();
    let checks = recovered
        .messages
        .iter()
        .map(|record| {
            let envelope = &record.envelope;
            let message = wire::decode_message(&envelope.payload).map_err(CryptoError::Malformed)?;
            let created = message.header().creation_time_unix_ms;
            keys.envelope_check_at(envelope, created, created)
        })
        .collect();
    let mut report = AuditReport::default();
    for (record, verified) in recovered.messages.iter().zip(KeyDirectory::verify_all(checks)) {
        match verified {
            Ok(()) => report.verified += 1,
            Err(error) => report.failed.push((record.message_id.to_string(), error.to_string())),
        }
    }
    Ok(report)
}
