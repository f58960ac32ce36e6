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
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::OnceLock;

use crate::model::{Bic, MessageId};
use crate::store::Ticket;

/// A sender and message id, as 128 bits of two SipHash-1-3 digests under keys drawn at
/// random when the process starts. Keyed, so no sender can choose message ids that
/// collide with another's (and have them refused as conflicts); 128 bits, so that
/// two of the set's million or so messages meet by chance with odds near 2^-88.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct MessageKey(u128);

impl MessageKey {
    /// The key of `message_id` from `sender`.
    pub(crate) fn new(sender: Bic, message_id: &MessageId) -> Self {
        static KEYS: OnceLock<[RandomState; 2]> = OnceLock::new();
        let keys = KEYS.get_or_init(|| [RandomState::new(), RandomState::new()]);
        let digest = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            hasher.write(sender.as_str().as_bytes());
            hasher.write_u8(0xff); // not a byte of a BIC: the two fields cannot run together
            hasher.write(message_id.as_str().as_bytes());
            hasher.finish()
        };
        Self(u128::from(digest(&keys[0])) << 64 | u128::from(digest(&keys[1])))
    }
}

/// The map's hasher: its keys are keyed digests already, so their low 64 bits serve.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64;
    }
}

/// What the hub keeps of a signature to tell a duplicate from a conflict: the first 8
/// bytes of each half (R and s). The signature was verified over the message's bytes and
/// Ed25519 signs deterministically, so a copy has the same signature; other bytes under
/// the same id have another s (even from a signer who reuses its nonce, so R), and
/// choosing bytes to match 64 bits of s takes about 2^64 tries.
fn fingerprint(signature: &[u8; 64]) -> [u8; 16] {
    let mut print = [0; 16];
    print[..8].copy_from_slice(&signature[..8]);
    print[8..].copy_from_slice(&signature[32..40]);
    print
}

/// What the hub keeps of an accepted message to answer its duplicates: its signature
/// stands for its bytes (verified, deterministic), so the payload itself is not kept.
#[derive(Clone, Copy, Debug)]
struct Remembered {
    signature: [u8; 16],
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
/// Footprint per message, measured by `footprint_per_entry` below (64-bit): a 48-byte
/// slot in the map (16 bytes of key; the signature's fingerprint, ticket and expiry) plus
/// its control byte, and 32 bytes in the expiry queue: about 81 bytes, up to twice that
/// in the map's and the queue's spare capacity just after they grow, and no heap
/// allocation of its own. The set holds the messages of one window
/// (`age_max + skew_max`): at 2,000 messages a second (1,000 payments and their status
/// reports) and the default 10 min 30 s, about 1.3 million, some 105-210 MB; it grows
/// for one window after the hub starts, then stays flat.
#[derive(Debug)]
pub(crate) struct RecentMessages {
    entries: HashMap<MessageKey, Remembered, BuildHasherDefault<DigestHasher>>,
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
            entries: HashMap::default(),
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
            Some(seen) if seen.signature == fingerprint(signature) => Seen::Duplicate(seen.ticket),
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
        self.entries
            .insert(key, Remembered { signature: fingerprint(&signature), ticket, expiry_unix_ms: expiry });
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
        assert_eq!(std::mem::size_of::<MessageKey>(), 16);
        assert_eq!(std::mem::size_of::<(MessageKey, Remembered)>(), 48);
        assert_eq!(std::mem::size_of::<(i64, MessageKey)>(), 32);
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

    /// Keys tell senders and ids apart (no two fields run together), and a signature
    /// that differs in either half is a conflict, not a duplicate.
    #[test]
    fn keys_and_fingerprints_tell_messages_apart() {
        let rum = Bic::parse("BANKRUMMXXX").unwrap();
        let irt = Bic::parse("BANKIRTHXXX").unwrap();
        let id = MessageId::parse("M1").unwrap();
        assert_eq!(MessageKey::new(rum, &id), MessageKey::new(rum, &MessageId::parse("M1").unwrap()));
        assert_ne!(MessageKey::new(rum, &id), MessageKey::new(irt, &id));
        assert_ne!(MessageKey::new(rum, &id), MessageKey::new(rum, &MessageId::parse("M2").unwrap()));
        let mut recent = RecentMessages::new(1_000, 0);
        let signature = [7; 64];
        recent.remember(MessageKey::new(rum, &id), signature, Ticket(1), 10_000);
        assert_eq!(recent.check(&MessageKey::new(irt, &id), &signature, 10_000), Seen::New);
        let mut same_r = signature;
        same_r[33] ^= 1; // the same R (a reused nonce), another s
        assert_eq!(recent.check(&MessageKey::new(rum, &id), &same_r, 10_000), Seen::Conflict);
        let mut other_r = signature;
        other_r[0] ^= 1;
        assert_eq!(recent.check(&MessageKey::new(rum, &id), &other_r, 10_000), Seen::Conflict);
        assert_eq!(recent.check(&MessageKey::new(rum, &id), &signature, 10_000), Seen::Duplicate(Ticket(1)));
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
