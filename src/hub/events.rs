//! What happens at the hub, as it happens: sessions opening and closing, messages accepted
//! and refused, deliveries confirmed, ACKs sent. Told on a bounded broadcast channel to
//! whoever listens (the dashboard); a listener that falls behind loses the oldest events,
//! never slows the hub.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::{Bic, MessageType, ReasonCode, Uetr};

/// Events the hub keeps for a listener that is behind: past it the oldest are lost (and
/// the listener is told how many). A few seconds of a busy hub.
pub const HUB_EVENTS_CAPACITY: usize = 4096;

/// Message types the hub counts, one slot each.
const MESSAGE_TYPES: usize = MessageType::ALL.len();

/// One thing that happened at the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// A participant's session opened (it is connected).
    SessionOpened {
        /// Whose.
        participant: Bic,
        /// When, Unix milliseconds.
        unix_ms: i64,
    },
    /// A participant's session closed and no newer one replaced it (it is disconnected).
    SessionClosed {
        /// Whose.
        participant: Bic,
        /// When, Unix milliseconds.
        unix_ms: i64,
    },
    /// A message passed every check and was journalled and queued for its receiver.
    Accepted {
        /// Its ISO 20022 type.
        message_type: MessageType,
        /// Who sent it.
        sender: Bic,
        /// Who it is for.
        receiver: Bic,
        /// The payment it is about, if any.
        uetr: Option<Uetr>,
        /// Its input sequence number from the sender.
        isn: u64,
        /// Its output sequence number towards the receiver.
        osn: u64,
        /// When the hub accepted it, Unix milliseconds.
        unix_ms: i64,
    },
    /// A message was refused with a NAK.
    Refused {
        /// Its type, when the hub read that far.
        message_type: Option<MessageType>,
        /// Who sent it.
        sender: Bic,
        /// The ISO reason code, where one fits.
        reason: Option<ReasonCode>,
        /// When, Unix milliseconds.
        unix_ms: i64,
    },
    /// A participant confirmed it processed every delivery up to `osn`.
    Delivered {
        /// Who confirmed.
        participant: Bic,
        /// Output sequence number confirmed up to.
        osn: u64,
        /// When, Unix milliseconds.
        unix_ms: i64,
    },
    /// The hub sent a participant its ACKs up to `isn` (each once its message was durable).
    Acked {
        /// To whom.
        participant: Bic,
        /// Input sequence number acknowledged up to.
        isn: u64,
        /// When, Unix milliseconds.
        unix_ms: i64,
    },
}

impl HubEvent {
    /// The event's kind, as the dashboard names it.
    pub fn kind(&self) -> &'static str {
        match self {
            HubEvent::SessionOpened { .. } => "session_opened",
            HubEvent::SessionClosed { .. } => "session_closed",
            HubEvent::Accepted { .. } => "accepted",
            HubEvent::Refused { .. } => "refused",
            HubEvent::Delivered { .. } => "delivered",
            HubEvent::Acked { .. } => "acked",
        }
    }
}

/// Messages accepted and refused, by type, since the hub started (accepted ones include
/// those recovered from the journal).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Accepted, per type (every type listed, zeros included).
    pub accepted: Vec<(MessageType, u64)>,
    /// Refused, per type (every type listed, zeros included).
    pub refused: Vec<(MessageType, u64)>,
    /// Refused before the hub could read their type.
    pub refused_type_unknown: u64,
}

impl MessageCounts {
    /// Every accepted message.
    pub fn accepted_total(&self) -> u64 {
        self.accepted.iter().map(|(_, n)| n).sum()
    }

    /// Every refused message.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().map(|(_, n)| n).sum::<u64>() + self.refused_type_unknown
    }
}

/// Accepted messages per type: kept in the hub's state, counted under the lock the
/// message is admitted under anyway.
#[derive(Debug, Default)]
pub(crate) struct AcceptedCounts([u64; MESSAGE_TYPES]);

impl AcceptedCounts {
    pub(crate) fn count(&mut self, message_type: MessageType) {
        self.0[message_type as usize] += 1;
    }

    fn snapshot(&self) -> Vec<(MessageType, u64)> {
        MessageType::ALL.iter().map(|t| (*t, self.0[*t as usize])).collect()
    }
}

/// Refused messages per type (the last slot: type unknown): atomics, since a refusal
/// is answered outside the state's lock.
#[derive(Debug, Default)]
pub(crate) struct RefusedCounts([AtomicU64; MESSAGE_TYPES + 1]);

impl RefusedCounts {
    pub(crate) fn count(&self, message_type: Option<MessageType>) {
        let slot = message_type.map_or(MESSAGE_TYPES, |t| t as usize);
        self.0[slot].fetch_add(1, Ordering::Relaxed);
    }

    /// Both counts together.
    pub(crate) fn with_accepted(&self, accepted: &AcceptedCounts) -> MessageCounts {
        MessageCounts {
            accepted: accepted.snapshot(),
            refused: MessageType::ALL
                .iter()
                .map(|t| (*t, self.0[*t as usize].load(Ordering::Relaxed)))
                .collect(),
            refused_type_unknown: self.0[MESSAGE_TYPES].load(Ordering::Relaxed),
        }
    }
}
