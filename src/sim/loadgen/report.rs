//! The result of a run: what `--json` prints, and the summary for people.

use std::collections::BTreeMap;

use serde::Serialize;

use super::LatencyMs;
use super::preflight::LoadgenAccount;
use crate::sim::breakdown::TimeBreakdown;

/// The result of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadgenReport {
    /// Why the run ended before every measured payment was final, once the load had
    /// started (a bank away longer than `--outage-max-secs`, payments not final in time);
    /// `None` for a run that ran to its end. The figures are those measured until then.
    pub aborted: Option<String>,
    /// `closed-loop` or `open-loop`.
    pub mode: String,
    /// `own` (started in this process) or `running`.
    pub network: String,
    /// Banks driven.
    pub banks: usize,
    /// Cores of this machine.
    pub cores: usize,
    /// ISO 4217 code of every payment.
    pub currency: String,
    /// The amount of every payment, decimal text.
    pub payment_amount: String,
    /// The account each bank paid from and into.
    pub accounts: Vec<LoadgenAccount>,
    /// Open loop: the rate asked for.
    pub rate_target_per_s: Option<u64>,
    /// The measurement window, seconds: `--duration`, or for `--payments` from the
    /// start of the measurement until the last measured payment was final.
    pub duration_s: f64,
    /// Seconds after the window until the last payment due in it was final (0 for
    /// `--payments`, whose window ends there).
    pub drain_s: f64,
    /// Payments measured that ended settled.
    pub payments_completed: u64,
    /// Payments measured that ended rejected (RJCT): none in a healthy run.
    pub payments_rejected: u64,
    /// Orders the banks refused before sending anything: none in a healthy run.
    pub orders_refused: u64,
    /// Measured payments whose end the run did not learn: 0 unless it was aborted.
    pub payments_unfinished: u64,
    /// Rejected payments and refused orders over every measured one (0 to 1).
    pub rejected_share: f64,
    /// Rejected payments and refused orders by ISO reason code (a refusal without one
    /// under its gRPC status, such as `InvalidArgument`).
    pub rejections_by_reason: BTreeMap<String, u64>,
    /// Completed payments per second of the measurement window (the drain not counted).
    pub payments_per_s: f64,
    /// Submission to final status at the sender.
    pub latency_ms: LatencyMs,
    /// Times a bank's streams broke (it restarted, or fell behind) and were opened again.
    pub bank_outages: u64,
    /// How long those outages lasted, in all, seconds.
    pub bank_outage_s: f64,
    /// Orders written on a stream that broke before answering them, sent again.
    pub orders_resent: u64,
    /// The crypto ceiling with a hub receipt per message, as every run before issue 21
    /// measured it (kept for continuity): payments/s the cores sustain doing only 4
    /// signatures and 6 verifications a payment (its two messages and a receipt for each);
    /// `None` when not measured (`--ceiling-secs 0`).
    pub crypto_ceiling_payments_per_s: Option<f64>,
    /// The essential crypto ceiling: payments/s the cores sustain doing only the
    /// signature work a payment cannot do without (2 signatures, 4 verifications: each
    /// message signed by its sender, verified at the hub and at its receiver); `None`
    /// when not measured.
    pub essential_crypto_ceiling_payments_per_s: Option<f64>,
    /// Messages/s a plain tonic stream moves over mTLS on loopback, a message being a
    /// frame and its echo (`None` when not measured).
    pub transport_ceiling_messages_per_s: Option<f64>,
    /// The payments/s the transport ceiling stands for: 2 frames a message, 8 frames a
    /// payment (`None` when not measured).
    pub transport_ceiling_payments_per_s: Option<f64>,
    /// `payments_per_s / crypto_ceiling_payments_per_s`: Corridor's efficiency against
    /// the crypto ceiling with per-message receipts (`None` when not measured).
    pub ratio_to_crypto_ceiling: Option<f64>,
    /// `payments_per_s / essential_crypto_ceiling_payments_per_s`: Corridor's efficiency
    /// against the work no design avoids (`None` when not measured).
    pub ratio_to_essential_ceiling: Option<f64>,
    /// CPU time this process used during the measurement, in cores (own network: hub,
    /// banks and load generator together).
    pub cpu_cores_used: f64,
    /// Whose CPU the next three figures count as Corridor's (a network of its own: this
    /// process, the load generator included), or why they were not measured.
    pub cpu_measured: String,
    /// CPU Corridor used during the measurement, in cores (`None` when not measured).
    pub cores_used: Option<f64>,
    /// Corridor's CPU during the measurement over the payments completed in it, in µs
    /// (`None` when not measured or none completed).
    pub cpu_us_per_payment: Option<f64>,
    /// CPU the machine's other processes used during the measurement, in cores (the
    /// load generator's own not counted; `None` when not measured).
    pub other_cpu_cores: Option<f64>,
    /// What makes the run's figures untrustworthy: other processes used more than a
    /// tenth of a core while it measured. Also said on stderr.
    pub warnings: Vec<String>,
    /// Peak resident memory of this process so far.
    pub peak_rss_bytes: u64,
    /// Resident memory at the end of each minute of the measurement.
    pub rss_bytes_by_minute: Vec<u64>,
    /// Peak resident memory so far (the high-water mark) at the end of each minute of
    /// the measurement.
    pub peak_rss_bytes_by_minute: Vec<u64>,
    /// Where the time goes: the durable waits of a network of its own (`None` when
    /// driving running nodes, whose metrics are their own).
    pub time_breakdown: Option<TimeBreakdown>,
}

impl LoadgenReport {
    /// What makes the run a failure, if anything: it was aborted, no payment completed,
    /// or more of them were rejected (or refused) than `rejected_share_max` allows.
    pub fn problem(&self, rejected_share_max: f64) -> Option<String> {
        if let Some(aborted) = &self.aborted {
            return Some(format!("the run was aborted: {aborted}"));
        }
        let failed = self.payments_rejected + self.orders_refused;
        if self.payments_completed == 0 {
            return Some(format!(
                "no payment completed ({} rejected, {} orders refused{})",
                self.payments_rejected,
                self.orders_refused,
                self.render_reasons(", by reason: ")
            ));
        }
        (self.rejected_share > rejected_share_max).then(|| {
            format!(
                "{failed} of {} measured payments were rejected or refused ({:.1}%), more than \
                 --max-rejected-share {rejected_share_max} allows{}",
                failed + self.payments_completed,
                100.0 * self.rejected_share,
                self.render_reasons("; by reason: ")
            )
        })
    }

    /// `prefix` and the rejections by reason, most frequent first; empty if none.
    fn render_reasons(&self, prefix: &str) -> String {
        if self.rejections_by_reason.is_empty() {
            return String::new();
        }
        let mut reasons: Vec<(&String, &u64)> = self.rejections_by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = reasons.iter().map(|(code, n)| format!("{code} {n}")).collect();
        format!("{prefix}{}", listed.join(", "))
    }

    /// A summary for people.
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let rate = self.rate_target_per_s.map(|r| format!(" at {r}/s")).unwrap_or_default();
        format!(
            "{}{} ({}{rate}), {} banks, {} cores, payments of {} {}, {:.1} s measured (+{:.1} s drain)\n\
             payments: {} completed, {} rejected, {} orders refused{}{}\n\
             throughput: {:.0} payments/s{}\n\
             latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             {}\n{}\n\
             {}\n\
             memory: peak RSS {:.1} MiB{}{}{}",
            self.aborted.as_ref().map(|a| format!("ABORTED: {a}\n")).unwrap_or_default(),
            self.mode,
            self.network,
            self.banks,
            self.cores,
            self.payment_amount,
            self.currency,
            self.duration_s,
            self.drain_s,
            self.payments_completed,
            self.payments_rejected,
            self.orders_refused,
            match self.payments_unfinished {
                0 => String::new(),
                n => format!(", {n} not final"),
            },
            self.render_reasons("\nrejections by reason: "),
            self.payments_per_s,
            self.render_ratios(),
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.render_outages(),
            self.render_ceilings(),
            self.render_cpu(),
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0),
            self.render_memory_by_minute(),
            self.time_breakdown.as_ref().map(|b| format!("\n{}", b.render(l.mean))).unwrap_or_default(),
            self.warnings.iter().map(|w| format!("\nwarning: {w}")).collect::<String>(),
        )
    }

    fn render_outages(&self) -> String {
        match self.bank_outages {
            0 => "bank outages: none".to_owned(),
            n => format!(
                "bank outages: {n}, {:.1} s in all; {} orders sent again",
                self.bank_outage_s, self.orders_resent
            ),
        }
    }

    fn render_ceilings(&self) -> String {
        let (Some(per_message), Some(essential), Some(messages), Some(payments)) = (
            self.crypto_ceiling_payments_per_s,
            self.essential_crypto_ceiling_payments_per_s,
            self.transport_ceiling_messages_per_s,
            self.transport_ceiling_payments_per_s,
        ) else {
            return "ceilings: not measured (--ceiling-secs 0)".to_owned();
        };
        [
            format!("ceilings: crypto with per-message receipts {per_message:.0} payments/s (4 signatures, 6 verifications)"),
            format!("          essential crypto {essential:.0} payments/s (2 signatures, 4 verifications)"),
            format!("          crypto on curve25519 backend {}", crate::crypto::backend::curve_backend_summary()),
            format!(
                "          transport {messages:.0} messages/s (a frame and its echo) = {payments:.0} payments/s (8 frames each)"
            ),
        ]
        .join("\n")
    }

    /// Corridor's CPU, per payment, and the other processes', or why not measured.
    fn render_cpu(&self) -> String {
        let this_process = match self.network.as_str() {
            "own" => String::new(),
            _ => format!("; the load generator {:.2} cores", self.cpu_cores_used),
        };
        let (Some(cores), Some(other)) = (self.cores_used, self.other_cpu_cores) else {
            return format!("cpu: {}{this_process}", self.cpu_measured);
        };
        let per_payment =
            self.cpu_us_per_payment.map(|us| format!(", {us:.0} µs per payment")).unwrap_or_default();
        format!(
            "cpu: Corridor {cores:.2} cores{per_payment} ({}){this_process}; other processes {other:.2} cores",
            self.cpu_measured
        )
    }

    /// The throughput's share of each crypto ceiling, when measured.
    fn render_ratios(&self) -> String {
        match (self.ratio_to_crypto_ceiling, self.ratio_to_essential_ceiling) {
            (Some(per_message), Some(essential)) => format!(
                "  ({:.0}% of the crypto ceiling with per-message receipts, {:.0}% of the essential one)",
                100.0 * per_message,
                100.0 * essential
            ),
            _ => String::new(),
        }
    }

    /// The memory samples of a run of a minute or more, one per minute, in MiB.
    fn render_memory_by_minute(&self) -> String {
        if self.rss_bytes_by_minute.is_empty() {
            return String::new();
        }
        let mib = |samples: &[u64]| {
            samples
                .iter()
                .map(|b| format!("{:.0}", *b as f64 / (1024.0 * 1024.0)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        format!(
            "\nmemory at each minute's end, MiB: RSS {}; peak so far {}",
            mib(&self.rss_bytes_by_minute),
            mib(&self.peak_rss_bytes_by_minute)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(completed: u64, rejected: u64, refused: u64) -> LoadgenReport {
        let failed = rejected + refused;
        let measured = completed + failed;
        LoadgenReport {
            payments_completed: completed,
            payments_rejected: rejected,
            orders_refused: refused,
            rejected_share: if measured == 0 { 0.0 } else { failed as f64 / measured as f64 },
            rejections_by_reason: [("AM04".to_owned(), rejected), ("AC06".to_owned(), refused)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            ..Default::default()
        }
    }

    /// The exit status's rule (issue 19 item 6): a run fails when nothing completed, or
    /// when more than the allowed share was rejected, and says so with the reasons.
    #[test]
    fn a_run_fails_with_no_completion_or_too_many_rejections() {
        assert_eq!(report(10, 0, 0).problem(0.0), None);
        let none = report(0, 3, 1).problem(1.0).expect("nothing completed");
        assert!(none.contains("no payment completed") && none.contains("AM04 3, AC06 1"), "{none}");
        let too_many = report(6, 3, 1).problem(0.0).expect("rejections");
        assert!(too_many.contains("4 of 10") && too_many.contains("40.0%"), "{too_many}");
        assert_eq!(report(6, 3, 1).problem(0.4), None);
        assert!(report(6, 3, 1).problem(0.39).is_some());
    }

    /// A run aborted after its load started (issue 19 item 6: a bank restarting under it
    /// must not end it without a report) is a failure that says why, on the report's
    /// first line in text and as `aborted` in JSON (null for a run that ran to its end),
    /// whatever its other figures.
    #[test]
    fn an_aborted_run_is_a_failure_its_report_names() {
        let json = serde_json::to_value(report(10, 0, 0)).unwrap();
        assert!(json["aborted"].is_null() && json["payments_unfinished"] == 0, "{json}");
        let aborted = LoadgenReport {
            aborted: Some("bank BANKIRTHXXX at https://127.0.0.1:1 has not come back in 1 s".into()),
            payments_unfinished: 3,
            ..report(10, 0, 0)
        };
        let problem = aborted.problem(1.0).expect("a failure");
        assert!(problem.starts_with("the run was aborted: bank BANKIRTHXXX"), "{problem}");
        let text = aborted.render();
        assert!(text.starts_with("ABORTED: bank BANKIRTHXXX"), "{text}");
        assert!(text.contains("10 completed, 0 rejected, 0 orders refused, 3 not final"), "{text}");
        let json = serde_json::to_value(&aborted).unwrap();
        assert_eq!(json["aborted"], "bank BANKIRTHXXX at https://127.0.0.1:1 has not come back in 1 s");
        assert_eq!(json["payments_unfinished"], 3);
    }

    /// Ceilings not measured are told as such, never as a figure of 0.
    #[test]
    fn ceilings_not_measured_are_not_zero() {
        let text = report(1, 0, 0).render();
        assert!(text.contains("ceilings: not measured"), "{text}");
        assert!(!text.contains("crypto ceiling"), "{text}");
        let json = serde_json::to_value(report(1, 0, 0)).unwrap();
        assert!(json["crypto_ceiling_payments_per_s"].is_null() && json["ratio_to_crypto_ceiling"].is_null());
    }

    /// Issue 21 item 5: the CPU line tells Corridor's CPU per payment and the other
    /// processes', or why they were not measured (never a figure of 0), and a warning
    /// about the other processes ends the text report as well as going on stderr.
    #[test]
    fn cpu_figures_and_warnings_are_told_or_said_not_measured() {
        let unmeasured =
            LoadgenReport { cpu_measured: "not measured: cannot read /proc/stat".into(), ..report(1, 0, 0) };
        let text = unmeasured.render();
        assert!(text.contains("cpu: not measured: cannot read /proc/stat"), "{text}");
        assert!(!text.contains("µs per payment") && !text.contains("warning"), "{text}");
        let measured = LoadgenReport {
            network: "own".into(),
            cpu_measured: "this process: hub, banks and load generator in one".into(),
            cores_used: Some(1.8),
            cpu_us_per_payment: Some(325.4),
            other_cpu_cores: Some(0.4),
            warnings: vec!["other processes used 0.40 cores".into()],
            ..report(1, 0, 0)
        };
        let text = measured.render();
        assert!(text.contains("cpu: Corridor 1.80 cores, 325 µs per payment (this process"), "{text}");
        assert!(text.contains("other processes 0.40 cores"), "{text}");
        assert!(text.ends_with("\nwarning: other processes used 0.40 cores"), "{text}");
        let json = serde_json::to_value(&measured).unwrap();
        assert_eq!(json["warnings"][0], "other processes used 0.40 cores");
        assert_eq!(json["cpu_us_per_payment"], 325.4);
    }

    /// Issue 21 item 4: measured ceilings name the curve arithmetic the crypto ran on, so
    /// that a ceiling from a build without IFMA is not compared with one from a build with.
    #[test]
    fn ceilings_name_the_curve_backend() {
        let measured = LoadgenReport {
            crypto_ceiling_payments_per_s: Some(9000.0),
            essential_crypto_ceiling_payments_per_s: Some(18000.0),
            transport_ceiling_messages_per_s: Some(400000.0),
            transport_ceiling_payments_per_s: Some(100000.0),
            ..report(1, 0, 0)
        };
        let text = measured.render();
        let backend = crate::crypto::backend::curve_backend().name();
        assert!(
            text.contains(&format!("\n          crypto on curve25519 backend {backend} (compiled in: ")),
            "{text}"
        );
    }
}
