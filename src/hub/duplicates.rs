//! The duplicate check, bounded by the replay window: the hub remembers each accepted
//! message only as long as a copy of it could still pass the replay window, so the set
//! stays the size of the traffic of one window, however long the hub runs.
//!
//! Why forgetting is safe. The hub accepts a message created at `c` only while
//! `now - message_age_max <= c <= now + clock_skew_max`. A true duplicate carries the
//! same bytes, so the same `c`: it can pass the window only while `now <= c + age_max`.
//! The original was accepted at `a` with `c <= a + skew_max`, so once
//! `now > a + age_max + skew_max` every copy of it is refused by the window (TM01) before
//! the duplicate check is reached, and its entry can go. Entries are forgotten in the
//! order they were remembered, each at `a + age_max + skew_max` (never earlier than the
//! one before it, so that a wall clock stepping back only keeps entries longer).
//!
//! One race remains: the window is checked when a batch of submissions arrives, the
//! duplicate set later, under the hub's lock, and another session may have forgotten
//! entries in between. So the set also keeps a horizon: after forgetting an entry
//! accepted at `a`, it cannot tell duplicates of messages created up to `a + skew_max`,
//! and refuses (TM01) any message created before the horizon that it does not remember.
//! The horizon is forgotten-at minus `age_max`, never past `now - age_max`, so it refuses
//! nothing the replay window itself would let through at that moment.
//!
//! A message id reused with other content after its original left the window is
//! accepted as a new message: message ids are unique per sender within the replay
//! window, which is as far as the hub can check them without keeping every id forever.

use std::collections::{HashMap, VecDeque};

use crate::model::{Bic, MESSAGE_ID_LENGTH_MAX, MessageId};
use crate::store::Ticket;

/// A sender and message id, inline: no heap allocation per entry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct MessageKey {
    sender: Bic,
    id_length: u8,
    id: [u8; MESSAGE_ID_LENGTH_MAX],
}

impl MessageKey {
    /// The key of `message_id` from `sender`.
    pub(crate) fn new(sender: Bic, message_id: &MessageId) -> Self {
        let text = message_id.as_str().as_bytes();
        assert!(text.len() <= MESSAGE_ID_LENGTH_MAX, "message ids are validated at parse");
        let mut id = [0; MESSAGE_ID_LENGTH_MAX];
        id[..text.len()].copy_from_slice(text);
        Self { sender, id_length: text.len() as u8, id }
    }
}

/// What the hub keeps of an accepted message to answer its duplicates: its signature
/// stands for its bytes (verified, deterministic), so the payload itself is not kept.
#[derive(Clone, Copy, Debug)]
struct Remembered {
    signature: [u8; 64],
    /// Durable once the journal reaches this: a duplicate's ACK waits for it too.
    ticket: Ticket,
    /// When it may be forgotten (Unix ms): its place in the expiry queue.
    expiry_unix_ms: i64,
}

/// What the duplicate check says about a submission.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not seen within the window: a new message.
    New,
    /// The same message again: ACK it again once `Ticket` is durable.
    Duplicate(Ticket),
    /// Same id, other bytes.
    Conflict,
    /// Created before the horizon: it may be a duplicate of a message already
    /// forgotten, so it cannot be checked (outside the replay window).
    TooOld,
}

/// Messages accepted within the replay window, by sender and message id.
///
/// Footprint per message, measured by `footprint_per_entry` below (64-bit): a 128-byte
/// slot in the map (48 bytes of key; signature, ticket and expiry) plus its control byte,
/// and 56 bytes in the expiry queue: about 185 bytes, a little more with the map's and the
/// queue's spare capacity, and no heap allocation of its own. The set holds the messages
/// of one window (`age_max + skew_max`): at 2,000 messages a second (1,000 payments and
/// their status reports) and the default 10 min 30 s, about 1.3 million, some 250 MB, flat.
#[derive(Debug)]
pub(crate) struct RecentMessages {
    entries: HashMap<MessageKey, Remembered>,
    /// Every entry once, with when it may be forgotten (Unix ms), in non-decreasing order.
    expiries: VecDeque<(i64, MessageKey)>,
    /// Messages created before this (Unix ms) may have been forgotten.
    horizon_unix_ms: i64,
    /// The replay window's age limit, in ms.
    age_max_ms: i64,
    /// How long after its acceptance an entry is kept: `age_max + skew_max`, in ms.
    keep_ms: i64,
}

impl RecentMessages {
    /// An empty set for a replay window of `age_max_ms` back and `skew_max_ms` ahead.
    pub(crate) fn new(age_max_ms: i64, skew_max_ms: i64) -> Self {
        assert!(age_max_ms > 0 && skew_max_ms >= 0, "validated by HubConfig");
        Self {
            entries: HashMap::new(),
            expiries: VecDeque::new(),
            horizon_unix_ms: i64::MIN,
            age_max_ms,
            keep_ms: age_max_ms.saturating_add(skew_max_ms),
        }
    }

    /// Messages remembered now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets every entry that no copy could pass the replay window with at `now_unix_ms`.
    /// Amortised O(1) per message: each entry is forgotten once, from the queue's front.
    pub(crate) fn forget_expired(&mut self, now_unix_ms: i64) {
        while let Some(&(expiry, key)) = self.expiries.front()
            && expiry < now_unix_ms
        {
            self.expiries.pop_front();
            // A key remembered again (see `remember`) leaves at its later expiry.
            if self.entries.get(&key).is_some_and(|e| e.expiry_unix_ms == expiry) {
                self.entries.remove(&key);
            }
            self.horizon_unix_ms = self.horizon_unix_ms.max(expiry - self.age_max_ms + 1);
        }
    }

    /// Whether `key` (created at `created_unix_ms`, signed `signature`) was seen.
    pub(crate) fn check(&self, key: &MessageKey, signature: &[u8; 64], created_unix_ms: i64) -> Seen {
        match self.entries.get(key) {
            // The signature was verified over these exact bytes, and Ed25519 signatures
            // are deterministic: the same signature means the same bytes.
            Some(seen) if &seen.signature == signature => Seen::Duplicate(seen.ticket),
            Some(_) => Seen::Conflict,
            None if created_unix_ms < self.horizon_unix_ms => Seen::TooOld,
            None => Seen::New,
        }
    }

    /// Whether `key` is remembered at all.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &MessageKey) -> bool {
        self.entries.contains_key(key)
    }

    /// Remembers a message accepted at `accepted_unix_ms` (after [`Self::check`] said new).
    ///
    /// Live, a key is new here. In recovery it may not be: the journal holds one id twice
    /// when a sender reused it after the first left a replay window, and the hub may now
    /// run with a longer window than when it accepted them. The later copy then replaces
    /// the earlier, as it would have live.
    pub(crate) fn remember(
        &mut self,
        key: MessageKey,
        signature: [u8; 64],
        ticket: Ticket,
        accepted_unix_ms: i64,
    ) {
        let expiry = accepted_unix_ms.saturating_add(self.keep_ms);
        let expiry = self.expiries.back().map_or(expiry, |&(last, _)| last.max(expiry));
        self.entries.insert(key, Remembered { signature, ticket, expiry_unix_ms: expiry });
        self.expiries.push_back((expiry, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> MessageKey {
        MessageKey::new(Bic::parse("BANKRUMMXXX").unwrap(), &MessageId::parse(id).unwrap())
    }

    /// The figures in [`RecentMessages`]' doc: no heap per entry, and the sizes it adds up.
    #[test]
    fn footprint_per_entry() {
        assert_eq!(std::mem::size_of::<MessageKey>(), 47);
        assert_eq!(std::mem::size_of::<(MessageKey, Remembered)>(), 128);
        assert_eq!(std::mem::size_of::<(i64, MessageKey)>(), 56);
    }

    /// An entry lives `age_max + skew_max` after its acceptance, then leaves with the
    /// horizon moved so that a late copy is refused rather than taken for new.
    #[test]
    fn forgets_after_the_window_and_refuses_what_it_forgot() {
        let mut recent = RecentMessages::new(1_000, 100);
        let signature = [7; 64];
        recent.remember(key("A"), signature, Ticket(1), 10_000);
        recent.remember(key("B"), signature, Ticket(2), 10_500);
        assert_eq!(recent.check(&key("A"), &signature, 10_000), Seen::Duplicate(Ticket(1)));
        assert_eq!(recent.check(&key("A"), &[8; 64], 10_000), Seen::Conflict);
        recent.forget_expired(11_100);
        assert_eq!(recent.len(), 2, "kept through accepted + age + skew");
        recent.forget_expired(11_101);
        assert_eq!(recent.len(), 1);
        // A created at most at 10_100 (skew): every copy is now before the horizon.
        assert_eq!(recent.check(&key("A"), &signature, 10_100), Seen::TooOld);
        assert_eq!(recent.check(&key("C"), &signature, 10_101), Seen::New);
        recent.forget_expired(i64::MAX);
        assert_eq!(recent.len(), 0);
    }

    /// A clock stepping back never makes an entry leave before one remembered earlier.
    #[test]
    fn a_key_remembered_again_leaves_at_its_later_expiry() {
        let mut recent = RecentMessages::new(1_000, 0);
        recent.remember(key("A"), [1; 64], Ticket(1), 10_000);
        recent.remember(key("A"), [2; 64], Ticket(2), 10_500);
        recent.forget_expired(11_001);
        assert_eq!(recent.check(&key("A"), &[2; 64], 10_500), Seen::Duplicate(Ticket(2)));
        recent.forget_expired(11_501);
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn expiries_never_decrease() {
        let mut recent = RecentMessages::new(1_000, 0);
        recent.remember(key("A"), [1; 64], Ticket(1), 50_000);
        recent.remember(key("B"), [1; 64], Ticket(2), 40_000);
        recent.forget_expired(45_000);
        assert!(recent.contains(&key("B")));
        recent.forget_expired(51_001);
        assert_eq!(recent.len(), 0);
    }
}
