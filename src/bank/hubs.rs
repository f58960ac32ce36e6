//! The hubs a bank node may reach, and which one it tries next. A bank is given the URLs
//! of the active hub and its standbys; it starts with the first and moves on when a hub
//! cannot be reached, loses the session, or answers that it is a standby: straight to the
//! hub the standby names when that one is in the list, else to the next. The first pass
//! over the list is immediate; after that each failure waits a backoff that doubles with
//! every full pass of failures. Pure: no sockets and no clock, so the rule is tested alone.

use std::fmt;
use std::time::Duration;

use crate::net;

/// First wait before reconnecting once a whole pass over the hubs failed; doubles with
/// each further pass up to [`RECONNECT_BACKOFF_MAX`].
pub const RECONNECT_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between reconnection attempts.
pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Most hub URLs a bank takes: an active hub and its standbys are a handful.
pub const HUB_URLS_MAX: usize = 16;

/// The hub URLs a bank was given, in order: each a valid `https://HOST:PORT`, none twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubUrls {
    urls: Vec<String>,
}

impl HubUrls {
    /// Reads `URL[,URL...]`; refuses, naming it, an empty element, a URL Corridor cannot
    /// use, or a URL given twice.
    pub fn parse(list: &str) -> Result<Self, String> {
        Self::new(list.split(',').map(|url| url.trim().to_owned()).collect())
    }

    /// The list `urls`, checked as [`HubUrls::parse`] does.
    pub fn new(urls: Vec<String>) -> Result<Self, String> {
        if urls.len() > HUB_URLS_MAX {
            return Err(format!("{} hub URLs given; at most {HUB_URLS_MAX} are taken", urls.len()));
        }
        let count = urls.len();
        let mut keys = Vec::with_capacity(count);
        for (index, url) in urls.iter().enumerate() {
            let place = if count == 1 { String::new() } else { format!(" (URL {} of {count})", index + 1) };
            if url.is_empty() {
                return Err(format!("a hub URL is empty{place}: give URL[,URL...] with no empty element"));
            }
            let key = url_key(url).map_err(|e| format!("{e}{place}"))?;
            if let Some(first) = keys.iter().position(|k| *k == key) {
                return Err(format!(
                    "the hub URL {url:?} is given twice (URLs {} and {}): give each hub once",
                    first + 1,
                    index + 1
                ));
            }
            keys.push(key);
        }
        assert!(!urls.is_empty(), "split always yields one element");
        Ok(Self { urls })
    }

    /// How many hubs.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Never: a list holds at least one hub.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The URL at `index`.
    pub fn url(&self, index: usize) -> &str {
        &self.urls[index]
    }

    /// Where `url` is in the list, as the same server (case of the host, default port and
    /// a trailing slash aside); `None` if it is not there or not a usable URL.
    pub fn position(&self, url: &str) -> Option<usize> {
        let key = url_key(url).ok()?;
        self.urls.iter().position(|u| url_key(u).ok().as_ref() == Some(&key))
    }
}

impl fmt::Display for HubUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.urls.join(","))
    }
}

/// What makes two hub URLs the same server: scheme, lower-case host, port and path.
fn url_key(url: &str) -> Result<String, String> {
    let endpoint = net::endpoint(url)?;
    let uri = endpoint.uri();
    let host = uri.host().expect("checked by endpoint").to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(443);
    Ok(format!("https://{host}:{port}{}", uri.path().trim_end_matches('/')))
}

/// Why a session attempt with a hub ended, as far as choosing the next hub goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubFailure {
    /// The hub could not be reached: refused, timed out, or the TLS handshake failed.
    Unreachable,
    /// The session was lost or broke once connected.
    Lost,
    /// The hub answered UNAVAILABLE, as a standby does, naming the active hub's URL when
    /// it knows it.
    Standby {
        /// The URL the hub named (see [`net::ACTIVE_HUB_METADATA`]).
        active: Option<String>,
    },
    /// The hub answered, but trying elsewhere or soon will not help: a newer session of
    /// this bank's certificate replaced this one, or this bank refused the hub's Welcome.
    Refusal,
}

/// Which hub comes next, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextHub {
    /// The next in the list (after the last, the first).
    Next(usize),
    /// The one a standby named, which is in the list.
    Named(usize),
    /// The next in the list: the standby named a URL this bank was not given, which it
    /// never connects to.
    NamedNotGiven {
        /// Where the bank goes instead.
        to: usize,
        /// The URL the standby named.
        named: String,
    },
    /// The same hub again.
    Same(usize),
}

impl NextHub {
    /// The index of the hub to try.
    pub fn index(&self) -> usize {
        match self {
            Self::Next(to) | Self::Named(to) | Self::NamedNotGiven { to, .. } | Self::Same(to) => *to,
        }
    }
}

/// The hub a bank tries after `failure` with the hub at `current` of `urls`.
pub fn next_hub(urls: &HubUrls, current: usize, failure: &HubFailure) -> NextHub {
    assert!(current < urls.len(), "the current hub is one of the list");
    let next = (current + 1) % urls.len();
    match failure {
        HubFailure::Refusal => NextHub::Same(current),
        HubFailure::Unreachable | HubFailure::Lost | HubFailure::Standby { active: None } => {
            NextHub::Next(next)
        }
        HubFailure::Standby { active: Some(named) } => match urls.position(named) {
            // A hub naming itself says nothing new: on to the next.
            Some(to) if to != current => NextHub::Named(to),
            Some(_) => NextHub::Next(next),
            None => NextHub::NamedNotGiven { to: next, named: named.clone() },
        },
    }
}

/// Where a bank stands in reaching a hub: the hub it tries and the failures since its
/// last welcome, which set the wait before the next attempt.
#[derive(Clone, Debug)]
pub struct Reconnect {
    urls: HubUrls,
    current: usize,
    failures_in_a_row: usize,
    backoff: Duration,
}

/// The next attempt: which hub, why, and how long to wait first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The hub, and why that one.
    pub hub: NextHub,
    /// The wait before connecting.
    pub wait: Duration,
}

impl Reconnect {
    /// Starts with the first of `urls`.
    pub fn new(urls: HubUrls) -> Self {
        Self { urls, current: 0, failures_in_a_row: 0, backoff: RECONNECT_BACKOFF_MIN }
    }

    /// The URL of the hub to try now.
    pub fn current(&self) -> &str {
        self.urls.url(self.current)
    }

    /// The hub welcomed the session: the next failure starts a fresh, immediate pass.
    pub fn welcomed(&mut self) {
        self.failures_in_a_row = 0;
        self.backoff = RECONNECT_BACKOFF_MIN;
    }

    /// Moves on after `failure`: immediate while the first pass over the hubs lasts, then
    /// the backoff, doubled after each full pass of failures. A refusal waits the
    /// longest; a standby's answer is no refusal.
    pub fn after(&mut self, failure: &HubFailure) -> Attempt {
        let hub = next_hub(&self.urls, self.current, failure);
        self.current = hub.index();
        self.failures_in_a_row += 1;
        if *failure == HubFailure::Refusal {
            self.backoff = RECONNECT_BACKOFF_MAX;
            self.failures_in_a_row = self.failures_in_a_row.max(self.urls.len());
            return Attempt { hub, wait: RECONNECT_BACKOFF_MAX };
        }
        if self.failures_in_a_row < self.urls.len() {
            return Attempt { hub, wait: Duration::ZERO };
        }
        let wait = self.backoff;
        if self.failures_in_a_row.is_multiple_of(self.urls.len()) {
            self.backoff = (self.backoff * 2).min(RECONNECT_BACKOFF_MAX);
        }
        Attempt { hub, wait }
    }
}

#[cfg(test)]
mod tests {
    //! The rule by which a bank given several hubs (issue 22: an active hub and standbys on
    //! one replicated log) finds the active one: never a URL it was not given, no delay
    //! while some hub of the list is untried, and with one hub the backoff it always had.
    use super::*;

    const A: &str = "https://10.0.0.1:7000";
    const B: &str = "https://10.0.0.2:7000";
    const C: &str = "https://10.0.0.3:7000";

    fn ms(milliseconds: u64) -> Duration {
        Duration::from_millis(milliseconds)
    }

    fn urls(list: &[&str]) -> HubUrls {
        HubUrls::new(list.iter().map(|u| u.to_string()).collect()).unwrap()
    }

    fn standby(named: Option<&str>) -> HubFailure {
        HubFailure::Standby { active: named.map(str::to_owned) }
    }

    /// Failures that say nothing about where the active hub is walk the list in order, round.
    #[test]
    fn a_failed_hub_gives_way_to_the_next_and_the_last_to_the_first() {
        let three = urls(&[A, B, C]);
        for failure in [HubFailure::Unreachable, HubFailure::Lost, standby(None)] {
            assert_eq!(next_hub(&three, 0, &failure), NextHub::Next(1), "{failure:?}");
            assert_eq!(next_hub(&three, 1, &failure), NextHub::Next(2), "{failure:?}");
            assert_eq!(next_hub(&three, 2, &failure), NextHub::Next(0), "{failure:?}");
        }
        assert_eq!(next_hub(&urls(&[A]), 0, &HubFailure::Lost), NextHub::Next(0));
    }

    /// A standby naming a hub of the list is followed, however the URL is spelt.
    #[test]
    fn a_standby_naming_a_given_hub_sends_the_bank_straight_there() {
        let three = urls(&[A, B, C]);
        assert_eq!(next_hub(&three, 0, &standby(Some(C))), NextHub::Named(2));
        // The same server spelt otherwise is still the one given.
        assert_eq!(next_hub(&three, 1, &standby(Some("https://10.0.0.1:7000/"))), NextHub::Named(0));
        // A hub naming itself says nothing new.
        assert_eq!(next_hub(&three, 1, &standby(Some(B))), NextHub::Next(2));
    }

    /// The bank never connects to an address it was not given, valid URL or not.
    #[test]
    fn a_standby_naming_a_hub_not_given_is_not_followed() {
        let two = urls(&[A, B]);
        let named = "https://10.9.9.9:7000".to_owned();
        let failure = HubFailure::Standby { active: Some(named.clone()) };
        assert_eq!(next_hub(&two, 0, &failure), NextHub::NamedNotGiven { to: 1, named: named.clone() });
        let garbage = HubFailure::Standby { active: Some("not a url".into()) };
        assert_eq!(next_hub(&two, 1, &garbage), NextHub::NamedNotGiven { to: 0, named: "not a url".into() });
    }

    /// Superseded or refused at Welcome: another hub would not mend it; wait the longest, as before.
    #[test]
    fn a_refusal_keeps_the_hub_and_waits_the_longest() {
        let mut reconnect = Reconnect::new(urls(&[A, B]));
        let attempt = reconnect.after(&HubFailure::Refusal);
        assert_eq!(attempt, Attempt { hub: NextHub::Same(0), wait: RECONNECT_BACKOFF_MAX });
        assert_eq!(reconnect.after(&HubFailure::Lost).wait, RECONNECT_BACKOFF_MAX, "no fast pass after it");
    }

    /// No delay while some hub is untried; then the backoff, doubled per full pass.
    #[test]
    fn the_first_pass_is_immediate_then_each_full_pass_doubles_the_backoff() {
        let mut reconnect = Reconnect::new(urls(&[A, B, C]));
        let waits: Vec<Duration> = (0..9).map(|_| reconnect.after(&HubFailure::Unreachable).wait).collect();
        let zero = Duration::ZERO;
        assert_eq!(waits, [zero, zero, ms(100), ms(200), ms(200), ms(200), ms(400), ms(400), ms(400)]);
        assert_eq!(reconnect.current(), A, "nine moves around three hubs");
    }

    /// Standbys pointing at each other (a stale view during takeover) back off, never spin.
    #[test]
    fn standbys_answering_are_no_refusal_and_a_welcome_starts_afresh() {
        let mut reconnect = Reconnect::new(urls(&[A, B]));
        // A names B, B (stale) names A: the two send the bank back and forth, but backing off.
        assert_eq!(
            reconnect.after(&standby(Some(B))),
            Attempt { hub: NextHub::Named(1), wait: Duration::ZERO }
        );
        assert_eq!(reconnect.after(&standby(Some(A))), Attempt { hub: NextHub::Named(0), wait: ms(100) });
        assert_eq!(reconnect.after(&standby(Some(B))).wait, ms(200));
        reconnect.welcomed();
        assert_eq!(reconnect.current(), B);
        assert_eq!(
            reconnect.after(&HubFailure::Lost),
            Attempt { hub: NextHub::Next(0), wait: Duration::ZERO }
        );
    }

    /// One URL: the same waits as before hub lists.
    #[test]
    fn one_hub_backs_off_as_it_always_did() {
        // Before hub lists: wait 100 ms, then double each failure up to 5 s; a welcome resets.
        let mut reconnect = Reconnect::new(urls(&[A]));
        let waits: Vec<u128> = (0..8).map(|_| reconnect.after(&HubFailure::Lost).wait.as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        reconnect.welcomed();
        assert_eq!(reconnect.after(&standby(None)), Attempt { hub: NextHub::Next(0), wait: ms(100) });
    }

    /// Bad input is refused at start with a clear error naming the element.
    #[test]
    fn a_bad_list_is_refused_naming_the_element() {
        let empty = HubUrls::parse("").unwrap_err();
        assert!(empty.contains("empty"), "{empty}");
        let hole = HubUrls::parse("https://x:1,,https://y:1").unwrap_err();
        assert!(hole.contains("empty") && hole.contains("URL 2 of 3"), "{hole}");
        let malformed = HubUrls::parse("https://x:1,http://y:1").unwrap_err();
        assert!(malformed.contains("\"http://y:1\"") && malformed.contains("URL 2 of 2"), "{malformed}");
        let twice = HubUrls::parse("https://x:1,https://y:1,https://X:1/").unwrap_err();
        assert!(twice.contains("twice") && twice.contains("URLs 1 and 3"), "{twice}");
        let many = vec![A.to_owned(); HUB_URLS_MAX + 1].join(",");
        assert!(HubUrls::parse(&many).unwrap_err().contains("at most"));
    }

    /// The order given is the order tried; spaces around commas are allowed.
    #[test]
    fn a_good_list_keeps_its_order() {
        let list = HubUrls::parse(&format!("{A}, {B} ,{C}")).unwrap();
        assert_eq!((list.len(), list.url(0), list.url(2)), (3, A, C));
        assert_eq!(list.to_string(), format!("{A},{B},{C}"));
        assert_eq!(HubUrls::parse(A).unwrap().len(), 1);
    }
}
