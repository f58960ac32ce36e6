//! A bank's session as the hub keeps it: opened on Hello (replacing an older session of
//! the same participant), fed from the receiver's outbox in output sequence order, its
//! confirmed deliveries and sent ACKs taken off for the tracker, and closed. `service`
//! carries it on gRPC.

use tokio_util::sync::CancellationToken;

use super::{Hub, HubEvent, HubRecord};
use crate::model::Bic;
use crate::pb;

pub(super) struct ActiveSession {
    pub(super) id: u64,
    pub(super) cancel: CancellationToken,
}

/// A session the hub has opened for a bank.
pub(crate) struct OpenSession {
    pub(crate) id: u64,
    pub(crate) cancel: CancellationToken,
    pub(crate) welcome: pb::Welcome,
    /// First output sequence number to (re)deliver.
    pub(crate) next_osn_to_send: u64,
}

impl Hub {
    /// Opens a session for `bank` (replacing any older one, which is cancelled). The bank
    /// has durably processed every delivery up to `last_osn_processed`.
    ///
    /// Refused when the bank reports more than the hub ever sent it: then this hub's
    /// journal is not the one the bank talked to, and trusting the bank would drop
    /// messages the hub has ACKed.
    pub(crate) fn open_session(&self, bank: Bic, last_osn_processed: u64) -> Result<OpenSession, String> {
        let mut state = self.inner.state.lock().expect("hub state lock");
        state.next_session_id += 1;
        let id = state.next_session_id;
        let participant = state.participants.get_mut(&bank).expect("sessions open only for participants");
        let issued = participant.next_osn - 1;
        if last_osn_processed > issued {
            return Err(format!(
                "you report processing output sequence {last_osn_processed}, but this hub has sent you only up to \
                 {issued}: its journal is not the one you talked to (restored or replaced?)"
            ));
        }
        if let Some(old) = participant.session.take() {
            old.cancel.cancel();
        }
        let session = ActiveSession { id, cancel: CancellationToken::new() };
        let open = OpenSession {
            id,
            cancel: session.cancel.clone(),
            welcome: pb::Welcome {
                bic: bank.to_string(),
                next_isn_expected: participant.next_isn,
                last_isn_accepted: participant.last_isn_accepted,
                contract_version: crate::net::CONTRACT_VERSION,
                network_directory: None,
            },
            next_osn_to_send: last_osn_processed + 1,
        };
        participant.session = Some(session);
        participant.shed_from = None;
        state.count_sessions();
        let unix_ms = self.now_unix_ms();
        if last_osn_processed > 0 {
            let record = state.delivered(bank, last_osn_processed, unix_ms);
            self.journal().append(vec![record]);
        }
        drop(state);
        self.tell(HubEvent::SessionOpened { participant: bank, unix_ms });
        if last_osn_processed > 0 {
            self.tell(HubEvent::Delivered { participant: bank, osn: last_osn_processed, unix_ms });
        }
        Ok(open)
    }

    /// Forgets a session that ended, unless a newer one already replaced it.
    pub(crate) fn close_session(&self, bank: Bic, session_id: u64) {
        let mut state = self.inner.state.lock().expect("hub state lock");
        if let Some(participant) = state.participants.get_mut(&bank)
            && participant.session.as_ref().is_some_and(|s| s.id == session_id)
        {
            participant.session = None;
            state.count_sessions();
            drop(state);
            self.tell(HubEvent::SessionClosed { participant: bank, unix_ms: self.now_unix_ms() });
        }
    }

    /// The next durable deliveries for `participant` from output sequence number `from` on
    /// (at most the configured batch), waiting until there is one: what a bank's session
    /// delivers and a link session submits. `durability` is this caller's
    /// [`Hub::durability`].
    pub(crate) async fn next_deliveries(
        &self,
        participant: Bic,
        from: u64,
        durability: &mut tokio::sync::watch::Receiver<u64>,
    ) -> Vec<pb::Deliver> {
        let batch_max = self.config().delivery_batch_max;
        loop {
            let deliveries = self.deliveries_from(participant, from, batch_max);
            if !deliveries.is_empty() {
                return deliveries;
            }
            if durability.changed().await.is_err() {
                // The journal stopped: nothing more becomes durable; the caller's stop ends it.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Up to `limit` durable deliveries for `bank` from output sequence number `from` on.
    pub(crate) fn deliveries_from(&self, bank: Bic, from: u64, limit: usize) -> Vec<pb::Deliver> {
        let durable = self.journal().durable();
        let mut state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get_mut(&bank).expect("participant");
        let deliveries: Vec<pb::Deliver> = participant
            .outbox
            .range(from..)
            .take(limit)
            // Tickets grow with output sequence numbers: stop at the first not yet durable.
            .take_while(|(_, queued)| queued.ticket <= durable)
            .map(|(osn, queued)| pb::Deliver {
                osn: *osn,
                envelope: Some(queued.envelope.clone()),
                possible_duplicate: *osn <= participant.osn_sent_high_water,
            })
            .collect();
        if let Some(last) = deliveries.last() {
            participant.osn_sent_high_water = participant.osn_sent_high_water.max(last.osn);
        }
        deliveries
    }

    /// The bank confirms it durably processed every delivery up to `osn`.
    pub(crate) fn confirm_delivered(&self, bank: Bic, osn: u64) {
        let mut state = self.inner.state.lock().expect("hub state lock");
        let Some(participant) = state.participants.get(&bank) else { return };
        if osn > participant.osn_sent_high_water {
            tracing::warn!(%bank, osn, sent = participant.osn_sent_high_water, "confirmation of a delivery never sent; ignored");
            return;
        }
        // Not waited for: if it is lost, the hub redelivers and the bank deduplicates.
        let unix_ms = self.now_unix_ms();
        let record = state.delivered(bank, osn, unix_ms);
        self.journal().append(vec![record]);
        drop(state);
        self.tell(HubEvent::Delivered { participant: bank, osn, unix_ms });
    }

    /// The hub sent `bank` its answers up to input sequence number `isn` (for the tracker;
    /// not waited for).
    pub(crate) fn acknowledged(&self, bank: Bic, isn: u64) {
        let unix_ms = self.now_unix_ms();
        let mut state = self.inner.state.lock().expect("hub state lock");
        state.acknowledged(bank, isn, unix_ms);
        self.journal().append(vec![HubRecord::Acked { participant: bank, isn, unix_ms }]);
        drop(state);
        self.tell(HubEvent::Acked { participant: bank, isn, unix_ms });
    }

    /// Every participant of the directory, with whether it has a session open now.
    pub fn connections(&self) -> Vec<(Bic, bool)> {
        let directory = self.directory();
        let state = self.inner.state.lock().expect("hub state lock");
        directory
            .participants()
            .map(|(bic, _)| (bic, state.participants.get(&bic).is_some_and(|p| p.session.is_some())))
            .collect()
    }

    /// Deliveries waiting for `bank` (sent or not, not yet confirmed).
    pub fn queued_for(&self, bank: Bic) -> usize {
        let state = self.inner.state.lock().expect("hub state lock");
        state.participants.get(&bank).map_or(0, |p| p.outbox.len())
    }
}
