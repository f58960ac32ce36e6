//! The hub rebuilt from its journal at start, by replaying it through the steps the live
//! hub took; and a stopped hub's journal read or audited without changing it.

use std::collections::HashMap;

use super::duplicates::RecentMessages;
use super::state::{Hop, HubState, Participant};
use super::{
    FxDesk, HubConfig, HubJournal, HubPayment, HubRecord, Positions, Tracker, duration_ms, events, journal,
};
use crate::crypto::{CryptoError, KeyDirectory};
use crate::directory::Directory;
use crate::model::{MessageKey, wire};
use crate::pb;
use crate::store::Ticket;
use crate::store::codec::LogRecord;
use crate::store::log::RecordLog;

/// The state of a hub whose journal holds nothing yet: every participant of the
/// directory at its first sequence numbers, and positions settled by `config`'s model
/// from now (a journal's [`HubRecord::Created`] record pins both when replayed).
pub(super) fn initial_state(directory: &Directory, config: &HubConfig) -> HubState {
    let mut state = HubState {
        participants: HashMap::new(),
        recent: RecentMessages::new(
            duration_ms(config.retention.min(config.message_age_max + config.clock_skew_max)),
            duration_ms(config.clock_skew_max),
        ),
        messages_accepted: 0,
        accepted_by_type: events::AcceptedCounts::default(),
        outbox_total: 0,
        positions: Positions::new(config.settlement_model, config.clock.unix_ms()),
        fx: FxDesk::default(),
        tracker: Tracker::default(),
        archive: None,
        next_session_id: 0,
        links: HashMap::new(),
    };
    let banks = directory.participants().map(|(bic, _)| bic);
    for bic in banks.chain(directory.links()) {
        state.participants.insert(bic, Participant { next_isn: 1, next_osn: 1, ..Participant::default() });
    }
    state
}

/// Replays one journal record on `state` through the same steps the live hub took when
/// it wrote it: a message admitted and settled again (it must pass again, or the journal
/// is corrupt), an operator action, an input sequence number consumed, an ACK or a
/// delivery confirmed. Records replay in the log's order, which is the live state's
/// order (the hub appends while it holds its state's lock), so a hub recovering at start
/// and a standby following the active hub's log build the same state by the same code.
/// Every time it uses comes from the record, none from the clock.
///
/// Everything replayed may have been delivered before: it goes back in its receiver's
/// outbox flagged as a possible duplicate (PDM) until a delivery record confirms it. The
/// tracker is rebuilt whole, archived payments included (the journal has every message,
/// so replay needs no archive); the active hub's archiver then moves the finished ones
/// out again.
pub(super) fn replay(state: &mut HubState, record: HubRecord) -> Result<(), String> {
    match record {
        HubRecord::Accepted(record) => replay_accepted(state, &record)?,
        HubRecord::IsnConsumed { participant, isn } => {
            if let Some(participant) = state.participants.get_mut(&participant) {
                participant.next_isn = participant.next_isn.max(isn + 1);
            }
        }
        HubRecord::Delivered { participant, osn, unix_ms } => {
            if state.participants.contains_key(&participant) {
                state.delivered(participant, osn, unix_ms);
            }
        }
        HubRecord::Acked { participant, isn, unix_ms } => {
            if state.participants.contains_key(&participant) {
                state.acknowledged(participant, isn, unix_ms);
            }
        }
        HubRecord::Operator(record) => {
            state.operate(&record.action, record.unix_ms).map_err(|e| format!("corrupt hub journal: {e}"))?;
        }
        HubRecord::Created { model, unix_ms } => {
            if state.messages_accepted > 0 {
                return Err("corrupt hub journal: its creation record follows messages".into());
            }
            state.positions = Positions::new(model, unix_ms);
        }
        HubRecord::Archived(_) | HubRecord::Active { .. } => {}
    }
    Ok(())
}

fn replay_accepted(state: &mut HubState, record: &journal::AcceptedRecord) -> Result<(), String> {
    let (peer, outbox) = (record.peer(), record.outbox());
    if !state.participants.contains_key(&peer) || !state.participants.contains_key(&outbox) {
        return Err(format!(
            "the journal holds a message between {peer} and {outbox}, which the directory and links do not list"
        ));
    }
    let message = wire::decode_message(&record.envelope.payload)
        .map_err(|e| format!("corrupt hub journal: message {} does not decode: {e}", record.message_id))?;
    let hop = Hop { sender: record.sender, via: record.via, next_hop: record.next_hop };
    state.settle(hop, &message, record.osn, record.accepted_unix_ms).map_err(|refusal| {
        format!("corrupt hub journal: message {} does not replay: {}", record.message_id, refusal.detail)
    })?;
    let sender = state.participants.get_mut(&peer).expect("checked above");
    sender.next_isn = sender.next_isn.max(record.isn + 1);
    let receiver = state.participants.get_mut(&outbox).expect("checked above");
    receiver.osn_sent_high_water = receiver.osn_sent_high_water.max(record.osn);
    state.recent.forget_expired(record.accepted_unix_ms, Ticket::DURABLE);
    let key = MessageKey::new(record.sender, &record.message_id);
    state.admit(record, key, Some(pb::SignedEnvelope::from(&record.envelope)), Ticket::DURABLE);
    Ok(())
}

/// Replays on `state` every record of `log` up to position `until`, where its derived
/// state stands (see [`replay`]): a replicated log may have grown since.
pub(super) fn replay_log(state: &mut HubState, log: &dyn RecordLog, until: u64) -> Result<(), String> {
    let mut failure = None;
    log.read_from(1, &mut |entry| {
        if entry.seq > until {
            return Ok(());
        }
        let record = HubRecord::decode(entry.bytes).map_err(|e| format!("corrupt hub journal: {e}"))?;
        replay(state, record).inspect_err(|error| failure = Some(error.clone()))
    })
    .map_err(|error| failure.take().unwrap_or_else(|| error.to_string()))
    .map(|_| ())
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
    let store = HubJournal::open(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let mut state = initial_state(directory, &HubConfig::default());
    replay_log(&mut state, &store.log, store.applied)?;
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
    let messages = HubJournal::read(data_dir, directory.hub()).map_err(|e| e.to_string())?;
    let keys = directory.keys();
    let checks = messages
        .iter()
        .map(|record| {
            let envelope = &record.envelope;
            let message = wire::decode_message(&envelope.payload).map_err(CryptoError::Malformed)?;
            let created = message.header().creation_time_unix_ms;
            keys.envelope_check_at(envelope, created, created)
        })
        .collect();
    let mut report = AuditReport::default();
    for (record, verified) in messages.iter().zip(KeyDirectory::verify_all(checks)) {
        match verified {
            Ok(()) => report.verified += 1,
            Err(error) => report.failed.push((record.message_id.to_string(), error.to_string())),
        }
    }
    Ok(report)
}
