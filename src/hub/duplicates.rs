//! The duplicate check in two tiers: the hub remembers each accepted message in memory
//! for one retention (`--retention-secs`, or the replay window if that is shorter), and
//! asks its journal about messages created before that. Memory holds one retention's
//! traffic, however long the hub runs; the journal holds every accepted message, so
//! nothing is ever forgotten.
//!
//! How the hub knows which tier to ask. It forgets an entry accepted at `a` at
//! `a + keep`, once its journal row is durable. A copy of that message carries the same
//! bytes, so the same creation time `c`, and `c <= a + skew_max` (the replay window let
//! the original in). So after forgetting it the set keeps a horizon, `a + skew_max + 1`:
//! a message created before the horizon that memory does not hold may be a copy of one
//! forgotten, and the journal is asked, by creation time (an index that grows at one end),
//! sender and message id. A message created at or after the horizon and not in memory is
//! new. Entries are forgotten in the order they were remembered, each at its expiry (never
//! earlier than the one before it, so that a wall clock stepping back only keeps entries
//! longer).
//!
//! The journal answers by creation time, so it finds the same message again (a duplicate)
//! and the same id with other bytes created the same millisecond (a conflict). A message
//! id reused with other content at another time, after its original left memory, is
//! accepted as a new message: message ids are unique per sender within the retention,
//! which is as far as the hub can check them without a random-key index of every id.

use std::collections::{BTreeMap, VecDeque};

use crate::model::MessageKey;
use crate::store::Ticket;

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
    /// Neither in memory nor in the journal: a new message.
    New,
    /// The same message again: ACK it again once `Ticket` is durable.
    Duplicate(Ticket),
    /// Same id, other bytes.
    Conflict,
}

/// Messages accepted within the last retention, by sender and message id.
///
/// Footprint per message, measured by `footprint_per_entry` below (64-bit): a 48-byte
/// entry in a B-tree node (16 bytes of key; the signature's fingerprint, ticket and
/// expiry), about 70 bytes with the nodes' spare room, and 32 bytes in the expiry queue
/// (up to twice that in its spare capacity just after it grows), and no heap allocation
/// of its own. At 2,300 messages a second and the default retention of 60 s, about
/// 140,000 messages, 14-19 MB; it grows for one retention after the hub starts, then
/// stays flat.
///
/// A B-tree, not a hash map, as for every map the message path keeps for a retention (the
/// hub's tracker, a bank's payments and processed messages, its ledger's posting ids): a
/// hash map grows by moving every entry at once, under the state's lock, and at a few
/// hundred thousand entries that stalled every payment in flight for 100-160 ms (measured
/// under load, 2026-12-05; docs/PERFORMANCE.md). A B-tree grows a node at a time.
#[derive(Debug)]
pub(crate) struct RecentMessages {
    entries: BTreeMap<MessageKey, Remembered>,
    /// Every entry once, with when it may be forgotten (Unix ms), in non-decreasing order.
    expiries: VecDeque<(i64, MessageKey)>,
    /// Messages created before this (Unix ms) may have been forgotten.
    horizon_unix_ms: i64,
    /// How long after its acceptance an entry is kept, in ms.
    keep_ms: i64,
    /// The replay window's allowance for clocks ahead, in ms.
    skew_max_ms: i64,
}

impl RecentMessages {
    /// An empty set that keeps each message `keep_ms` after its acceptance, for a replay
    /// window that lets in messages created up to `skew_max_ms` ahead.
    pub(crate) fn new(keep_ms: i64, skew_max_ms: i64) -> Self {
        assert!(keep_ms > 0 && skew_max_ms >= 0, "validated by HubConfig");
        Self {
            entries: BTreeMap::new(),
            expiries: VecDeque::new(),
            horizon_unix_ms: i64::MIN,
            keep_ms,
            skew_max_ms,
        }
    }

    /// Messages remembered now.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Forgets every entry kept its time at `now_unix_ms` whose journal row is durable
    /// (its ticket at most `durable`): the journal answers for it from then on. Amortised
    /// O(1) per message: each entry is forgotten once, from the queue's front.
    pub(crate) fn forget_expired(&mut self, now_unix_ms: i64, durable: Ticket) {
        while let Some(&(expiry, key)) = self.expiries.front()
            && expiry < now_unix_ms
        {
            // A key remembered again (see `remember`) leaves at its later expiry.
            let current = self.entries.get(&key).filter(|e| e.expiry_unix_ms == expiry);
            if current.is_some_and(|e| e.ticket > durable) {
                break;
            }
            self.expiries.pop_front();
            if current.is_some() {
                self.entries.remove(&key);
            }
            // Accepted at `expiry - keep` at the latest, so created before this.
            let accepted = expiry - self.keep_ms;
            self.horizon_unix_ms = self.horizon_unix_ms.max(accepted + self.skew_max_ms + 1);
        }
    }

    /// Whether `key` (created at `created_unix_ms`, signed `signature`) was seen: memory
    /// says, or for a message created before the horizon that memory does not hold,
    /// `journal`, which gives the signatures of the messages stored under that sender,
    /// message id and creation time.
    pub(crate) fn check<E>(
        &self,
        key: &MessageKey,
        signature: &[u8; 64],
        created_unix_ms: i64,
        journal: impl FnOnce() -> Result<Vec<[u8; 64]>, E>,
    ) -> Result<Seen, E> {
        Ok(match self.entries.get(key) {
            // The signature was verified over these exact bytes, and Ed25519 signatures
            // are deterministic: the same signature means the same bytes.
            Some(seen) if seen.signature == fingerprint(signature) => Seen::Duplicate(seen.ticket),
            Some(_) => Seen::Conflict,
            None if created_unix_ms < self.horizon_unix_ms => {
                // Durable, or memory would not have let it go.
                let stored = journal()?;
                if stored.contains(signature) {
                    Seen::Duplicate(Ticket::DURABLE)
                } else if stored.is_empty() {
                    Seen::New
                } else {
                    Seen::Conflict
                }
            }
            None => Seen::New,
        })
    }

    /// Whether `key` is remembered at all.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &MessageKey) -> bool {
        self.entries.contains_key(key)
    }

    /// Remembers a message accepted at `accepted_unix_ms` (after [`Self::check`] said new).
    ///
    /// Live, a key is new here. In recovery it may not be: the journal holds one id twice
    /// when a sender reused it after the first left memory, and the hub may now run with
    /// a longer retention than when it accepted them. The later copy then replaces
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
    use crate::model::{Bic, MessageId};

    fn key(id: &str) -> MessageKey {
        MessageKey::new(Bic::parse("BANKRUMMXXX").unwrap(), &MessageId::parse(id).unwrap())
    }

    /// Checks against memory alone: the journal must not be asked.
    fn check(recent: &RecentMessages, key: &MessageKey, signature: &[u8; 64], created_unix_ms: i64) -> Seen {
        let journal = || -> Result<Vec<[u8; 64]>, ()> { panic!("memory answers for this message") };
        recent.check(key, signature, created_unix_ms, journal).unwrap()
    }

    /// Checks a message memory may have forgotten, with `stored` as the journal's answer.
    fn check_stored(
        recent: &RecentMessages,
        key: &MessageKey,
        signature: &[u8; 64],
        created_unix_ms: i64,
        stored: &[[u8; 64]],
    ) -> Seen {
        recent.check(key, signature, created_unix_ms, || Ok::<_, ()>(stored.to_vec())).unwrap()
    }

    /// The figures in [`RecentMessages`]' doc: no heap per entry, and the sizes it adds up.
    #[test]
    fn footprint_per_entry() {
        assert_eq!(std::mem::size_of::<MessageKey>(), 16);
        assert_eq!(std::mem::size_of::<(MessageKey, Remembered)>(), 48);
        assert_eq!(std::mem::size_of::<(i64, MessageKey)>(), 32);
    }

    /// An entry lives its keep after its acceptance, and leaves only once durable; then
    /// the journal answers for messages created before the horizon it leaves, and memory
    /// alone for those after.
    #[test]
    fn forgets_after_its_keep_once_durable_and_asks_the_journal_about_what_it_forgot() {
        let mut recent = RecentMessages::new(1_000, 100);
        let signature = [7; 64];
        recent.remember(key("A"), signature, Ticket(1), 10_000);
        recent.remember(key("B"), signature, Ticket(2), 10_500);
        assert_eq!(check(&recent, &key("A"), &signature, 10_000), Seen::Duplicate(Ticket(1)));
        assert_eq!(check(&recent, &key("A"), &[8; 64], 10_000), Seen::Conflict);
        recent.forget_expired(11_000, Ticket(2));
        assert_eq!(recent.len(), 2, "kept through accepted + keep");
        recent.forget_expired(11_001, Ticket(0));
        assert_eq!(recent.len(), 2, "not forgotten before its journal row is durable");
        recent.forget_expired(11_001, Ticket(1));
        assert_eq!(recent.len(), 1);
        // A was created at most at 10_100 (skew): a copy of it goes to the journal.
        assert_eq!(
            check_stored(&recent, &key("A"), &signature, 10_100, &[signature]),
            Seen::Duplicate(Ticket(0))
        );
        assert_eq!(check_stored(&recent, &key("A"), &[8; 64], 10_100, &[signature]), Seen::Conflict);
        assert_eq!(check_stored(&recent, &key("A"), &signature, 10_100, &[]), Seen::New);
        let failed = recent.check(&key("A"), &signature, 10_100, || Err("disk on fire"));
        assert_eq!(failed, Err("disk on fire"), "a journal that cannot answer refuses, never guesses");
        // Created after the horizon: memory alone answers.
        assert_eq!(check(&recent, &key("C"), &signature, 10_101), Seen::New);
        assert_eq!(check(&recent, &key("B"), &signature, 10_500), Seen::Duplicate(Ticket(2)));
        recent.forget_expired(i64::MAX, Ticket(2));
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
        assert_eq!(check(&recent, &MessageKey::new(irt, &id), &signature, 10_000), Seen::New);
        let mut same_r = signature;
        same_r[33] ^= 1; // the same R (a reused nonce), another s
        assert_eq!(check(&recent, &MessageKey::new(rum, &id), &same_r, 10_000), Seen::Conflict);
        let mut other_r = signature;
        other_r[0] ^= 1;
        assert_eq!(check(&recent, &MessageKey::new(rum, &id), &other_r, 10_000), Seen::Conflict);
        assert_eq!(
            check(&recent, &MessageKey::new(rum, &id), &signature, 10_000),
            Seen::Duplicate(Ticket(1))
        );
    }

    /// A clock stepping back never makes an entry leave before one remembered earlier.
    #[test]
    fn a_key_remembered_again_leaves_at_its_later_expiry() {
        let mut recent = RecentMessages::new(1_000, 0);
        recent.remember(key("A"), [1; 64], Ticket(1), 10_000);
        recent.remember(key("A"), [2; 64], Ticket(2), 10_500);
        recent.forget_expired(11_001, Ticket(2));
        assert_eq!(check(&recent, &key("A"), &[2; 64], 10_500), Seen::Duplicate(Ticket(2)));
        recent.forget_expired(11_501, Ticket(2));
        assert_eq!(recent.len(), 0);
    }

    #[test]
    fn expiries_never_decrease() {
        let mut recent = RecentMessages::new(1_000, 0);
        recent.remember(key("A"), [1; 64], Ticket(1), 50_000);
        recent.remember(key("B"), [1; 64], Ticket(2), 40_000);
        recent.forget_expired(45_000, Ticket(2));
        assert!(recent.contains(&key("B")));
        recent.forget_expired(51_001, Ticket(2));
        assert_eq!(recent.len(), 0);
    }
}
