//! Where a load test's latency goes: how long the messages of the load generator's own
//! network waited for durability, at the hub and at the banks.
//!
//! A payment waits for five group commits in series, each before anything about it
//! leaves a node: the sender's (the order, before the pacs.008 is sent), the hub's (the
//! pacs.008, before its ACK and delivery), the receiver's (its booking and the pacs.002),
//! the hub's again (the pacs.002) and the sender's again (the settlement, before the
//! final status is told). The journals report each append's wait (from the append to the
//! commit that made it durable: the batch gathering, the writer's rest, the commit
//! itself) through the `metrics` facade as [`crate::metrics::JOURNAL_WAIT`]; the load
//! generator installs a recorder of its own that keeps those histograms, and the commits'
//! durations and sizes, in fixed-size HdrHistograms, and reads them over the measurement.
//! Every other metric is dropped. The mean waits, two at the hub and three at banks, add
//! up to the durable part of the mean latency; what is left is signatures, the network
//! and the wait for a core. (The means are over every append, the confirmations nobody
//! waits for too; those ride in the same commits as a payment's own records.) The
//! recorder is the process's: runs of the load generator at the same time in one process
//! would share it.

use std::sync::{Arc, Mutex, OnceLock};

use hdrhistogram::Histogram as Hdr;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use serde::Serialize;

use super::loadgen::LatencyMs;
use crate::metrics::{JOURNAL_BATCH, JOURNAL_COMMIT, JOURNAL_WAIT};

/// Group commits a payment waits for in series: two at the hub, three at banks.
pub const HUB_WAITS_PER_PAYMENT: u32 = 2;
/// See [`HUB_WAITS_PER_PAYMENT`].
pub const BANK_WAITS_PER_PAYMENT: u32 = 3;
/// Largest batch kept exactly.
const RECORDS_MAX: u64 = crate::store::BATCH_RECORDS_MAX as u64;

/// One kind of node's journals over the measurement.
#[derive(Clone, Debug, Default, Serialize)]
pub struct JournalFigures {
    /// From an append to its commit being durable.
    pub wait_ms: LatencyMs,
    /// One commit: its transaction and its fsync.
    pub commit_ms: LatencyMs,
    /// Commits per second (all journals of this kind together).
    pub commits_per_s: f64,
    /// Records per commit, mean.
    pub records_per_commit: f64,
}

/// Where the time goes: the durable waits of the load generator's own network.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TimeBreakdown {
    /// The hub's journal.
    pub hub: JournalFigures,
    /// The banks' journals together.
    pub banks: JournalFigures,
    /// What a payment's five durable waits take on average, in ms: twice the hub's mean
    /// wait and three times the banks'.
    pub durable_ms_per_payment: f64,
    /// That, as a share of the mean latency.
    pub durable_share_of_latency: f64,
}

impl TimeBreakdown {
    /// A summary for people.
    pub fn render(&self, latency_mean_ms: f64) -> String {
        let line = |name: &str, figures: &JournalFigures| {
            let (w, c) = (&figures.wait_ms, &figures.commit_ms);
            format!(
                "\n  {name}: wait mean {:.2} (p50 {:.2}, p99 {:.2}); commit mean {:.2} (p99 {:.2}); \
                 {:.0} commits/s of {:.1} records",
                w.mean, w.p50, w.p99, c.mean, c.p99, figures.commits_per_s, figures.records_per_commit,
            )
        };
        format!(
            "where the time goes, ms: {HUB_WAITS_PER_PAYMENT} durable waits at the hub and \
             {BANK_WAITS_PER_PAYMENT} at banks take {:.2} of the mean latency {latency_mean_ms:.2} ({:.0}%){}{}",
            self.durable_ms_per_payment,
            100.0 * self.durable_share_of_latency,
            line("hub journal", &self.hub),
            line("bank journals", &self.banks),
        )
    }
}

/// The histograms of one kind of node's journals.
struct Journals {
    wait: Arc<Kept>,
    commit: Arc<Kept>,
    batch: Arc<Kept>,
}

/// A histogram kept for the load generator.
struct Kept {
    values: Mutex<Hdr<u64>>,
    /// What one recorded unit (a second, a record) is in the histogram's integers.
    scale: f64,
}

impl Kept {
    fn new(values: Hdr<u64>, scale: f64) -> Self {
        Self { values: Mutex::new(values), scale }
    }

    /// Times, kept in µs as the load generator keeps its latencies.
    fn micros() -> Self {
        Self::new(LatencyMs::histogram(), 1e6)
    }

    fn records() -> Self {
        Self::new(Hdr::new_with_bounds(1, RECORDS_MAX, 3).expect("valid bounds"), 1.0)
    }

    fn reset(&self) {
        self.values.lock().expect("histogram lock").reset();
    }

    /// Percentiles in ms (the histogram holding µs).
    fn time_ms(&self) -> LatencyMs {
        LatencyMs::of(&self.values.lock().expect("histogram lock"))
    }

    fn count_and_mean(&self) -> (u64, f64) {
        let values = self.values.lock().expect("histogram lock");
        (values.len(), if values.is_empty() { 0.0 } else { values.mean() })
    }
}

impl metrics::HistogramFn for Kept {
    fn record(&self, value: f64) {
        let mut values = self.values.lock().expect("histogram lock");
        // Beyond the histogram's range, the value is clamped to its highest.
        let scaled = ((value * self.scale).round() as u64).clamp(1, values.high());
        values.record(scaled).expect("clamped to the histogram's range");
    }
}

impl Journals {
    fn new() -> Self {
        Self {
            wait: Arc::new(Kept::micros()),
            commit: Arc::new(Kept::micros()),
            batch: Arc::new(Kept::records()),
        }
    }

    fn reset(&self) {
        for kept in [&self.wait, &self.commit, &self.batch] {
            kept.reset();
        }
    }

    fn figures(&self, seconds: f64) -> JournalFigures {
        let (commits, records_per_commit) = self.batch.count_and_mean();
        JournalFigures {
            wait_ms: self.wait.time_ms(),
            commit_ms: self.commit.time_ms(),
            commits_per_s: if seconds > 0.0 { commits as f64 / seconds } else { 0.0 },
            records_per_commit,
        }
    }
}

/// The load generator's recorder: keeps the journals' histograms, drops every other
/// metric.
#[derive(Clone)]
pub(super) struct JournalRecorder {
    hub: Arc<Journals>,
    bank: Arc<Journals>,
}

impl JournalRecorder {
    /// The recorder of this process, installed on first use; `None` if another recorder
    /// was installed first (then the nodes report elsewhere).
    pub(super) fn installed() -> Option<&'static JournalRecorder> {
        static INSTALLED: OnceLock<Option<JournalRecorder>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| {
                let recorder =
                    JournalRecorder { hub: Arc::new(Journals::new()), bank: Arc::new(Journals::new()) };
                metrics::set_global_recorder(recorder.clone()).ok().map(|()| recorder)
            })
            .as_ref()
    }

    /// Forgets everything recorded so far: the measurement starts.
    pub(super) fn reset(&self) {
        self.hub.reset();
        self.bank.reset();
    }

    /// What was recorded since the last reset, `seconds` ago, against the run's mean
    /// latency.
    pub(super) fn breakdown(&self, seconds: f64, latency_mean_ms: f64) -> TimeBreakdown {
        let hub = self.hub.figures(seconds);
        let banks = self.bank.figures(seconds);
        let durable = f64::from(HUB_WAITS_PER_PAYMENT) * hub.wait_ms.mean
            + f64::from(BANK_WAITS_PER_PAYMENT) * banks.wait_ms.mean;
        TimeBreakdown {
            hub,
            banks,
            durable_ms_per_payment: durable,
            durable_share_of_latency: if latency_mean_ms > 0.0 { durable / latency_mean_ms } else { 0.0 },
        }
    }

    /// The histogram `key` names, if it is one of the journals'.
    fn kept(&self, key: &Key) -> Option<Arc<Kept>> {
        let node = key.labels().find(|label| label.key() == "node")?;
        let journals = match node.value() {
            "hub" => &self.hub,
            "bank" => &self.bank,
            _ => return None,
        };
        match key.name() {
            JOURNAL_WAIT => Some(journals.wait.clone()),
            JOURNAL_COMMIT => Some(journals.commit.clone()),
            JOURNAL_BATCH => Some(journals.batch.clone()),
            _ => None,
        }
    }
}

impl Recorder for JournalRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.kept(key).map_or_else(Histogram::noop, Histogram::from_arc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &'static str, node: &'static str) -> Key {
        Key::from_parts(name, vec![metrics::Label::new("node", node)])
    }

    #[test]
    fn the_journals_histograms_are_kept_by_node_and_the_rest_dropped() {
        let recorder = JournalRecorder { hub: Arc::new(Journals::new()), bank: Arc::new(Journals::new()) };
        let metadata = Metadata::new("test", metrics::Level::INFO, None);
        let record =
            |name, node, value| recorder.register_histogram(&key(name, node), &metadata).record(value);
        for wait in [0.002, 0.004, 0.006] {
            record(JOURNAL_WAIT, "hub", wait);
        }
        record(JOURNAL_WAIT, "bank", 0.010);
        record(JOURNAL_COMMIT, "bank", 0.001);
        record(JOURNAL_BATCH, "bank", 8.0);
        record(JOURNAL_BATCH, "bank", 12.0);
        // Not a journal's: dropped.
        record(JOURNAL_WAIT, "elsewhere", 1.0);
        record(crate::metrics::BANK_PAYMENT_LATENCY, "bank", 1.0);

        let breakdown = recorder.breakdown(2.0, 50.0);
        assert!((breakdown.hub.wait_ms.mean - 4.0).abs() < 0.01, "{breakdown:?}");
        assert!((breakdown.banks.wait_ms.mean - 10.0).abs() < 0.01, "{breakdown:?}");
        assert!((breakdown.banks.commit_ms.p99 - 1.0).abs() < 0.01, "{breakdown:?}");
        assert_eq!(breakdown.banks.commits_per_s, 1.0);
        assert_eq!(breakdown.banks.records_per_commit, 10.0);
        assert_eq!(breakdown.hub.commits_per_s, 0.0);
        // Two hub waits and three bank waits: 2 × 4 + 3 × 10 = 38 of 50 ms.
        assert!((breakdown.durable_ms_per_payment - 38.0).abs() < 0.05, "{breakdown:?}");
        assert!((breakdown.durable_share_of_latency - 0.76).abs() < 0.001, "{breakdown:?}");

        recorder.reset();
        let empty = recorder.breakdown(2.0, 50.0);
        assert_eq!(empty.hub.wait_ms.mean, 0.0);
        assert_eq!(empty.banks.commits_per_s, 0.0);
    }
}
