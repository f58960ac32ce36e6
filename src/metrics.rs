//! Prometheus metrics of hub and bank nodes (`--metrics-addr`). One prefix, base units
//! (seconds, messages, records), `_total` for counters; labels are message types,
//! results, directions, statuses and node roles, never a UETR or an account.
//!
//! The names live here, so that what a node reports is listed in one place.

use std::net::SocketAddr;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// Messages the hub answered, by `type` (pacs.008, ...) and `result` (accepted,
/// duplicate, refused).
pub const HUB_MESSAGES: &str = "corridor_hub_messages_total";
/// Signatures the hub verified together in one batch.
pub const HUB_VERIFY_BATCH: &str = "corridor_hub_verify_batch_messages";
/// Open bank sessions at the hub.
pub const HUB_SESSIONS: &str = "corridor_hub_sessions";
/// Messages one hub accepted that the linked hub refused, or the other way round: the two
/// networks' views of each other differed (a directory or an agreement changed between).
pub const HUB_LINK_REFUSED: &str = "corridor_hub_link_refused_total";
/// Deliveries waiting at the hub for their banks' confirmation (all banks).
pub const HUB_OUTBOX: &str = "corridor_hub_outbox_messages";
/// Payments the hub's tracker holds in memory (finished ones leave for the archive).
pub const HUB_PAYMENTS_IN_MEMORY: &str = "corridor_hub_payments_in_memory";
/// Messages the hub's duplicate check holds in memory (those of the last retention).
pub const HUB_RECENT_MESSAGES: &str = "corridor_hub_recent_messages";
/// Records written per group commit, by `node` (hub, bank).
pub const JOURNAL_BATCH: &str = "corridor_journal_batch_records";
/// Time to write and fsync one group commit, by `node`.
pub const JOURNAL_COMMIT: &str = "corridor_journal_commit_seconds";
/// Bytes of records appended to the log, by `node` (with its commits: bytes per commit).
pub const JOURNAL_BYTES: &str = "corridor_journal_bytes_total";
/// Time to apply one batch of durable records to the derived state, by `node`.
pub const JOURNAL_APPLY: &str = "corridor_journal_apply_seconds";
/// Time from each append to the group commit that made it durable, by `node`: what a
/// message waits for durability (the batch gathering, the writer's rest, the commit).
pub const JOURNAL_WAIT: &str = "corridor_journal_wait_seconds";
/// Payments that became final at a bank, by `direction` and `status`.
pub const BANK_PAYMENTS: &str = "corridor_bank_payments_total";
/// Outgoing payments from the bank's durable order to their final status.
pub const BANK_PAYMENT_LATENCY: &str = "corridor_bank_payment_latency_seconds";
/// Messages in a bank's outbox, not yet ACKed by the hub.
pub const BANK_OUTBOX: &str = "corridor_bank_outbox_messages";
/// Payments a bank holds in memory (the rest are only in its store).
pub const BANK_HELD_PAYMENTS: &str = "corridor_bank_held_payments";
/// Ledger postings a bank holds in memory.
pub const BANK_HELD_POSTINGS: &str = "corridor_bank_held_postings";
/// Processed messages a bank holds in memory for its duplicate check.
pub const BANK_HELD_PROCESSED: &str = "corridor_bank_held_processed_messages";
/// Submissions the hub shed (over this bank's rate) and the bank will resend.
pub const BANK_SHED: &str = "corridor_bank_shed_total";

/// Serves the metrics of this process on `addr` (`GET /metrics`), from the tokio runtime
/// the caller runs on.
pub fn serve(addr: SocketAddr) -> Result<(), String> {
    const SECONDS: [f64; 14] =
        [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];
    const COUNTS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0, 1024.0, 4096.0];
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_records".into()), &COUNTS))
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_messages".into()), &COUNTS))
        .and_then(PrometheusBuilder::install)
        .map_err(|e| format!("--metrics-addr {addr}: {e}"))
}
