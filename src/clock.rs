//! The time of day, as the nodes read it: milliseconds since the Unix epoch.
//!
//! A node (hub or bank) reads the time through the [`Clock`] its config gives it: the
//! system's by default, or a [`ManualClock`] that a test moves by hand, so that what
//! depends on time (the replay window, retention, settlement windows, quotes) can be
//! tested without waiting. Reading either is cheap: no allocation and no lock, only a
//! branch and (for a manual clock) one atomic load.
//!
//! Elapsed time (rate limits, timeouts, latencies) is not the time of day: it stays on
//! `std::time::Instant` and `tokio::time`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Where a node reads the time of day. Cheap to clone: the system clock is nothing, a
/// manual clock one reference count.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's clock.
    #[default]
    System,
    /// A clock that stands still until its [`ManualClock`] moves it.
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch, now by this clock.
    pub fn unix_ms(&self) -> i64 {
        match self {
            Self::System => unix_ms_now(),
            Self::Manual(manual) => manual.unix_ms(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Self {
        Self::Manual(manual)
    }
}

/// A clock moved by hand, for tests: every clone (and every [`Clock`] made from one)
/// reads the same time. It never goes back: [`ManualClock::set`] refuses to.
#[derive(Clone, Debug)]
pub struct ManualClock {
    unix_ms: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock standing at `unix_ms`.
    pub fn starting_at(unix_ms: i64) -> Self {
        Self { unix_ms: Arc::new(AtomicI64::new(unix_ms)) }
    }

    /// A clock standing at the system's time now (so that what it stamps also looks
    /// current to anything reading the system clock).
    pub fn starting_now() -> Self {
        Self::starting_at(unix_ms_now())
    }

    /// Milliseconds since the Unix epoch by this clock.
    pub fn unix_ms(&self) -> i64 {
        self.unix_ms.load(Ordering::Acquire)
    }

    /// Moves the clock forward by `by`. Panics, leaving the clock where it stood, if
    /// that would pass the last millisecond an i64 holds.
    pub fn advance(&self, by: Duration) {
        let by_ms = i64::try_from(by.as_millis()).expect("an advance fits in i64 milliseconds");
        // Checked before the store, in one atomic step: every node reads this clock, so
        // a refused move must not have moved it.
        let moved =
            self.unix_ms.fetch_update(Ordering::AcqRel, Ordering::Acquire, |ms| ms.checked_add(by_ms));
        if let Err(stood) = moved {
            panic!("the manual clock cannot advance {by_ms} ms from {stood} ms: past the end of i64");
        }
    }

    /// Moves the clock forward to `unix_ms`. Panics if that is earlier than it stands:
    /// the nodes assume the time of day does not go back under them.
    pub fn set(&self, unix_ms: i64) {
        let before = self.unix_ms.fetch_max(unix_ms, Ordering::AcqRel);
        assert!(before <= unix_ms, "the manual clock cannot go back from {before} to {unix_ms} ms");
    }
}

/// Milliseconds since the Unix epoch, now by the system's clock. For what runs outside
/// a node (the CLI, the PKI, tools); a node reads its [`Clock`].
pub fn unix_ms_now() -> i64 {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(now.as_millis()).expect("milliseconds fit in i64 until the year 292 million")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A manual clock moves only when told, and every clone of it (the hub's, the
    /// banks') reads the same time: that is what lets a test age a message without
    /// waiting. It refuses to go back.
    #[test]
    fn a_manual_clock_moves_only_forward_and_only_when_told() {
        let manual = ManualClock::starting_at(1_000);
        let clock = Clock::from(manual.clone());
        let other = clock.clone();
        assert_eq!(clock.unix_ms(), 1_000);
        manual.advance(Duration::from_secs(2));
        assert_eq!((clock.unix_ms(), other.unix_ms()), (3_000, 3_000));
        manual.set(5_000);
        assert_eq!(other.unix_ms(), 5_000);
        let back = std::panic::catch_unwind(|| manual.set(4_999));
        assert!(back.is_err(), "a manual clock does not go back");
        assert_eq!(clock.unix_ms(), 5_000, "and a refused move changes nothing");
    }

    /// A move the clock refuses (past the end of i64 milliseconds) panics and leaves
    /// the clock where it stood: every node shares it, so a half-done move would hand
    /// them all a time wrapped round to 292 million years before 1970.
    #[test]
    fn an_advance_that_would_overflow_panics_and_moves_nothing() {
        let manual = ManualClock::starting_at(i64::MAX - 1_000);
        let overflow = std::panic::catch_unwind(|| manual.advance(Duration::from_secs(2)));
        assert!(overflow.is_err(), "an advance past i64::MAX ms is refused");
        assert_eq!(manual.unix_ms(), i64::MAX - 1_000, "and the clock did not move");
        manual.advance(Duration::from_millis(1_000));
        assert_eq!(manual.unix_ms(), i64::MAX, "up to the last millisecond is fine");
    }

    /// The system clock is the default and reads the system's time.
    #[test]
    fn the_default_clock_is_the_systems() {
        let before = unix_ms_now();
        let read = Clock::default().unix_ms();
        assert!(before <= read && read <= unix_ms_now());
    }
}
