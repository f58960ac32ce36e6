//! The load generator: payments among banks as fast as the network takes them (closed
//! loop) or at a fixed rate (open loop), each measured from its submission to its final
//! status (the pacs.002 processed, durably) at the sender; beside the result, the
//! machine's crypto and transport ceilings measured in the same run.
//!
//! It drives banks through their operator API, on one `SubmitPayments` stream and one
//! `WatchPayments` stream per bank: the same way for a network of its own (a hub and
//! banks in this process, mTLS, signatures, durable storage in a temporary directory)
//! and for a running one.
//!
//! Latency is measured from when a payment was *due* (open loop: its slot in the
//! schedule; closed loop: when a slot in the window freed up), not from when it was
//! sent, so that a stalled network cannot hide its stall by delaying the next sends
//! (coordinated omission).

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::breakdown::{JournalRecorder, TimeBreakdown};
use super::{LocalNetwork, Rng, ceilings, operator_client};
use crate::model::{Bic, Uetr};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::tls::NetworkDir;

/// Banks of a network of the load generator's own.
pub const LOADGEN_BANKS: [&str; 8] = [
    "LOADRUMMXXX",
    "LOADIRTHXXX",
    "LOADCNSHXXX",
    "LOADINBBXXX",
    "LOADBRSPXXX",
    "LOADZAJJXXX",
    "LOADAEADXXX",
    "LOADTRISXXX",
];
/// The account each bank pays from (funded) and into.
const ACCOUNT: &str = "LOADGEN-1";
/// Slowest a payment may take before the run gives up waiting for it at the end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histogram keeps exactly (longer ones are clamped to it).
const LATENCY_MAX: Duration = Duration::from_secs(120);

/// A running network to drive instead of starting one.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its network directory (for the operator certificate).
    pub dir: PathBuf,
    /// Its banks: BIC and operator API URL.
    pub banks: Vec<(Bic, String)>,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadgenConfig {
    /// Banks of the network of its own (2 to 8).
    pub banks: usize,
    /// Payments per second, open loop; `None` for as fast as the network takes them.
    pub rate_per_s: Option<u64>,
    /// How long to measure (after the warm-up).
    pub duration: Duration,
    /// Or: how many payments to measure (after the warm-up), whatever it takes.
    pub payments: Option<u64>,
    /// Payments sent but not measured first, so that caches and pools are warm.
    pub warmup: Duration,
    /// Closed loop: payments in flight at once across all banks.
    pub in_flight_max: usize,
    /// How long to measure each ceiling; zero skips them.
    pub ceiling_duration: Duration,
    /// Seed of the choice of senders and receivers.
    pub seed: u64,
    /// Drive this running network instead of starting one.
    pub target: Option<Target>,
}

impl Default for LoadgenConfig {
    fn default() -> Self {
        Self {
            banks: 3,
            rate_per_s: None,
            duration: Duration::from_secs(10),
            payments: None,
            warmup: Duration::from_secs(2),
            in_flight_max: 2048,
            ceiling_duration: Duration::from_secs(2),
            seed: 2026,
            target: None,
        }
    }
}

impl LoadgenConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), String> {
        if self.target.is_none() && !(2..=LOADGEN_BANKS.len()).contains(&self.banks) {
            return Err(format!(
                "--banks must be between 2 and {} (got {})",
                LOADGEN_BANKS.len(),
                self.banks
            ));
        }
        if self.target.as_ref().is_some_and(|t| t.banks.len() < 2) {
            return Err("a running network needs at least two --bank".into());
        }
        if self.rate_per_s == Some(0) || self.payments == Some(0) {
            return Err("--rate and --payments must be positive".into());
        }
        if self.duration.is_zero() && self.payments.is_none() {
            return Err("--duration must be positive".into());
        }
        if self.in_flight_max == 0 {
            return Err("--in-flight must be positive".into());
        }
        Ok(())
    }
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
    /// Mean.
    pub mean: f64,
}

impl LatencyMs {
    /// A histogram of latencies in µs, up to [`LATENCY_MAX`].
    pub(super) fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, LATENCY_MAX.as_micros() as u64, 3).expect("valid bounds")
    }

    /// The percentiles of `micros`, a histogram of latencies in µs (all zero if empty).
    pub(super) fn of(micros: &Histogram<u64>) -> Self {
        if micros.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            p50: ms(micros.value_at_quantile(0.50)),
            p90: ms(micros.value_at_quantile(0.90)),
            p99: ms(micros.value_at_quantile(0.99)),
            p999: ms(micros.value_at_quantile(0.999)),
            max: ms(micros.max()),
            mean: micros.mean() / 1000.0,
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadgenReport {
    /// `closed-loop` or `open-loop`.
    pub mode: String,
    /// `own` (started in this process) or `running`.
    pub network: String,
    /// Banks driven.
    pub banks: usize,
    /// Cores of this machine.
    pub cores: usize,
    /// Open loop: the rate asked for.
    pub rate_target_per_s: Option<u64>,
    /// Length of the measurement, seconds.
    pub duration_s: f64,
    /// Payments measured that ended settled (ACSC).
    pub payments_completed: u64,
    /// Payments measured that ended rejected (RJCT): none in a healthy run.
    pub payments_rejected: u64,
    /// Orders the banks refused before sending anything: none in a healthy run.
    pub orders_refused: u64,
    /// Completed payments per second over the measurement.
    pub payments_per_s: f64,
    /// Submission to final status at the sender.
    pub latency_ms: LatencyMs,
    /// Payments/s the cores sustain doing only the payments' signatures.
    pub crypto_ceiling_payments_per_s: f64,
    /// Messages/s a plain tonic stream moves over mTLS on loopback.
    pub transport_ceiling_messages_per_s: f64,
    /// `payments_per_s / crypto_ceiling_payments_per_s`: Corridor's efficiency.
    pub ratio_to_crypto_ceiling: f64,
    /// CPU time this process used during the measurement, in cores (own network: hub,
    /// banks and load generator together).
    pub cpu_cores_used: f64,
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
    /// A summary for people.
    pub fn render(&self) -> String {
        let l = &self.latency_ms;
        let rate = self.rate_target_per_s.map(|r| format!(" at {r}/s")).unwrap_or_default();
        format!(
            "{} ({}{rate}), {} banks, {} cores, {:.1} s measured\n\
             payments: {} completed, {} rejected, {} orders refused\n\
             throughput: {:.0} payments/s  ({:.0}% of the crypto ceiling)\n\
             latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}\n\
             ceilings: crypto {:.0} payments/s; transport {:.0} messages/s\n\
             cpu: {:.2} cores; peak RSS {:.1} MiB{}{}",
            self.mode,
            self.network,
            self.banks,
            self.cores,
            self.duration_s,
            self.payments_completed,
            self.payments_rejected,
            self.orders_refused,
            self.payments_per_s,
            100.0 * self.ratio_to_crypto_ceiling,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            self.crypto_ceiling_payments_per_s,
            self.transport_ceiling_messages_per_s,
            self.cpu_cores_used,
            self.peak_rss_bytes as f64 / (1024.0 * 1024.0),
            self.render_memory_by_minute(),
            self.time_breakdown.as_ref().map(|b| format!("\n{}", b.render(l.mean))).unwrap_or_default(),
        )
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

/// What the run has seen so far; shared by the senders, the watchers and the progress.
struct Book {
    /// Per bank: when each submitted payment was due, in submission order (answers come
    /// in that order).
    due: Vec<VecDeque<Instant>>,
    /// Payments answered, not yet final: when they were due.
    open: HashMap<Uetr, Instant>,
    /// Final before their submission's answer was read.
    early: HashMap<Uetr, (Instant, bool)>,
    /// Measure payments due from this instant on.
    measure_from: Instant,
    /// And due before this one (`None`: until `payments` are measured).
    measure_until: Option<Instant>,
    latency: Histogram<u64>,
    completed: u64,
    rejected: u64,
    refused: u64,
    measured_due: u64,
    last_final: Instant,
}

impl Book {
    fn measured(&self, due: Instant) -> bool {
        due >= self.measure_from && self.measure_until.is_none_or(|until| due < until)
    }

    fn finish(&mut self, due: Instant, at: Instant, settled: bool) {
        if !self.measured(due) {
            return;
        }
        let micros = at.saturating_duration_since(due).min(LATENCY_MAX).as_micros() as u64;
        self.latency.record(micros.max(1)).expect("clamped to the histogram's range");
        if settled {
            self.completed += 1;
        } else {
            self.rejected += 1;
        }
        self.last_final = self.last_final.max(at);
    }
}

/// Runs the load and reports. `progress` hears what the run is doing; a live counter
/// is drawn on stderr when it is a terminal.
pub async fn run(config: &LoadgenConfig, progress: &(dyn Fn(&str) + Sync)) -> Result<LoadgenReport, String> {
    config.validate()?;
    let temporary = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut own = None;
    let mut recorder = None;
    let (network, banks) = match &config.target {
        Some(target) => (NetworkDir::new(&target.dir), target.banks.clone()),
        None => {
            progress(&format!(
                "starting a hub and {} banks (mTLS, signatures, durable storage) in {}",
                config.banks,
                temporary.path().display()
            ));
            recorder = JournalRecorder::installed();
            let local = start_own(temporary.path(), config.banks).await?;
            let started =
                (local.network.clone(), local.banks.iter().map(|b| (b.bic, b.url.clone())).collect());
            own = Some(local);
            started
        }
    };
    let mut report = LoadgenReport::default();
    if !config.ceiling_duration.is_zero() {
        let duration = config.ceiling_duration;
        progress(&format!("measuring the crypto ceiling for {} s", duration.as_secs_f64()));
        report.crypto_ceiling_payments_per_s =
            tokio::task::spawn_blocking(move || ceilings::crypto_ceiling(duration))
                .await
                .map_err(|e| e.to_string())?;
        progress(&format!("measuring the transport ceiling for {} s", duration.as_secs_f64()));
        let bytes = envelope_bytes();
        report.transport_ceiling_messages_per_s =
            ceilings::transport_ceiling(&network, bytes, 1024, duration).await?;
    }
    let driven = drive(config, &network, &banks, recorder, progress, &mut report).await;
    if let Some(local) = own {
        local.stop().await?;
    }
    driven?;
    report.network = if config.target.is_some() { "running" } else { "own" }.into();
    report.banks = banks.len();
    report.cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    report.rate_target_per_s = config.rate_per_s;
    report.mode = if config.rate_per_s.is_some() { "open-loop" } else { "closed-loop" }.into();
    if report.crypto_ceiling_payments_per_s > 0.0 {
        report.ratio_to_crypto_ceiling = report.payments_per_s / report.crypto_ceiling_payments_per_s;
    }
    report.peak_rss_bytes = process_memory("VmHWM:");
    Ok(report)
}

/// Encoded size of a sample pacs.008 submission: what the transport ceiling sends.
fn envelope_bytes() -> usize {
    use prost::Message as _;
    let (a, b) = (Bic::parse(LOADGEN_BANKS[0]).expect("valid"), Bic::parse(LOADGEN_BANKS[1]).expect("valid"));
    let identity =
        crate::crypto::SigningIdentity::generate(a, crate::crypto::KeyId::parse("k1").expect("valid"));
    let envelope = identity.sign(&super::sample_credit_transfer(a, b));
    let submit =
        pb::Submit { isn: 1, envelope: Some(pb::SignedEnvelope::from(&envelope)), possible_duplicate: false };
    submit.encoded_len()
}

/// A hub and `banks` banks in this process, every bank funded at the hub.
async fn start_own(dir: &std::path::Path, banks: usize) -> Result<LocalNetwork, String> {
    let bics: Vec<Bic> = LOADGEN_BANKS[..banks].iter().map(|b| Bic::parse(b).expect("valid")).collect();
    let mut network = LocalNetwork::create(dir, &bics).await?;
    network.fund_all("CNY", "1000000000000").await?;
    for bic in bics {
        network.start_bank(bic).await?;
    }
    Ok(network)
}

/// Opens the paying account at a bank (one already there is fine: a running network may
/// have been load-tested before).
async fn prepare(client: &mut BankServiceClient<Channel>) -> Result<(), String> {
    let request = pb::OpenAccountRequest {
        account_id: ACCOUNT.into(),
        currency: "CNY".into(),
        name: "Load generator".into(),
        opening_deposit: "1000000000000".into(),
    };
    match client.open_account(request).await {
        Ok(_) => Ok(()),
        Err(status) if status.message().contains("already exists") => Ok(()),
        Err(status) => Err(format!("cannot open {ACCOUNT}: {}", status.message())),
    }
}

fn order(to: Bic) -> pb::SubmitPaymentRequest {
    pb::SubmitPaymentRequest {
        settlement_currency: String::new(),
        quote_id: String::new(),
        debtor_account: ACCOUNT.into(),
        creditor_agent_bic: to.to_string(),
        creditor_account: ACCOUNT.into(),
        creditor_name: "Load generator".into(),
        amount: "1.00".into(),
        currency: "CNY".into(),
        remittance_information: "corridor loadgen".into(),
        end_to_end_id: String::new(),
    }
}

/// Seconds of CPU this process has used (user and system).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; Linux
    // counts them in USER_HZ, 100 per second on every platform it supports.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/self/status` memory figure (`VmRSS:`, `VmHWM:`) in bytes; 0 if unknown.
fn process_memory(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Sends the load and measures it.
async fn drive(
    config: &LoadgenConfig,
    network: &NetworkDir,
    banks: &[(Bic, String)],
    recorder: Option<&'static JournalRecorder>,
    progress: &(dyn Fn(&str) + Sync),
    report: &mut LoadgenReport,
) -> Result<(), String> {
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let measure_until = config.payments.is_none().then_some(measure_from + config.duration);
    let book = Arc::new(Mutex::new(Book {
        due: banks.iter().map(|_| VecDeque::new()).collect(),
        open: HashMap::new(),
        early: HashMap::new(),
        measure_from,
        measure_until,
        latency: LatencyMs::histogram(),
        completed: 0,
        rejected: 0,
        refused: 0,
        measured_due: 0,
        last_final: measure_from,
    }));
    let window = Arc::new(Semaphore::new(config.in_flight_max));
    let closed_loop = config.rate_per_s.is_none();
    let mut orders = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (bic, url)) in banks.iter().enumerate() {
        let mut client = operator_client(network, url).await.map_err(|e| format!("bank {bic}: {e}"))?;
        prepare(&mut client).await.map_err(|e| format!("bank {bic}: {e}"))?;
        let events = client
            .watch_payments(pb::WatchPaymentsRequest {})
            .await
            .map_err(|s| format!("bank {bic}: {}", s.message()))?;
        let (sender, receiver) = mpsc::channel(crate::bank::SUBMIT_STREAM_WINDOW);
        let answers = client
            .submit_payments(ReceiverStream::new(receiver))
            .await
            .map_err(|s| format!("bank {bic}: {}", s.message()))?;
        orders.push(sender);
        tasks.spawn(watch(events.into_inner(), book.clone(), closed_loop.then(|| window.clone())));
        tasks.spawn(read_answers(
            index,
            answers.into_inner(),
            book.clone(),
            closed_loop.then(|| window.clone()),
        ));
    }
    let bics: Vec<Bic> = banks.iter().map(|(bic, _)| *bic).collect();
    let counter = progress_bar(book.clone(), measure_from);
    progress(&format!(
        "sending {} for {}{} after a {} s warm-up",
        config
            .rate_per_s
            .map_or("as fast as the network takes them".to_owned(), |r| format!("{r} payments/s")),
        config.payments.map_or(format!("{} s", config.duration.as_secs_f64()), |n| format!("{n} payments")),
        if closed_loop { format!(", {} in flight", config.in_flight_max) } else { String::new() },
        config.warmup.as_secs_f64(),
    ));
    let rss_by_minute = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_memory(measure_from, rss_by_minute.clone()));
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        if let Some(recorder) = recorder {
            recorder.reset();
        }
        (Instant::now(), cpu_seconds())
    });
    let sent = generate(config, &bics, &orders, &book, &window, start).await;
    let drained = drain(&book, &mut tasks).await;
    let (cpu_start_at, cpu_start) = cpu_at_start.await.map_err(|e| e.to_string())?;
    let measured_for = cpu_start_at.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu_start) / measured_for;
    sampler.abort();
    (report.rss_bytes_by_minute, report.peak_rss_bytes_by_minute) =
        rss_by_minute.lock().expect("samples lock").iter().copied().unzip();
    counter.finish_and_clear();
    drop(orders);
    tasks.abort_all();
    sent?;
    drained?;
    let book = book.lock().expect("book lock");
    let end = book.last_final.max(measure_until.unwrap_or(book.last_final));
    report.duration_s = end.saturating_duration_since(measure_from).as_secs_f64();
    report.payments_completed = book.completed;
    report.payments_rejected = book.rejected;
    report.orders_refused = book.refused;
    report.payments_per_s =
        if report.duration_s > 0.0 { book.completed as f64 / report.duration_s } else { 0.0 };
    report.cpu_cores_used = cpu;
    report.latency_ms = LatencyMs::of(&book.latency);
    report.time_breakdown = recorder.map(|r| r.breakdown(measured_for, report.latency_ms.mean));
    Ok(())
}

/// Sends payments until the measurement's end (or its count) is reached.
async fn generate(
    config: &LoadgenConfig,
    bics: &[Bic],
    orders: &[mpsc::Sender<pb::SubmitPaymentRequest>],
    book: &Mutex<Book>,
    window: &Semaphore,
    start: Instant,
) -> Result<(), String> {
    let mut rng = Rng::new(config.seed);
    let banks = bics.len() as u64;
    for n in 0u64.. {
        let due = match config.rate_per_s {
            Some(rate) => {
                let due = start + Duration::from_secs_f64(n as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => {
                window.acquire().await.expect("never closed").forget();
                Instant::now()
            }
        };
        let from = {
            let mut book = book.lock().expect("book lock");
            let ended = match (book.measure_until, config.payments) {
                (Some(until), _) => due >= until,
                (None, Some(count)) => book.measured_due >= count,
                (None, None) => true,
            };
            if ended {
                return Ok(());
            }
            let from = rng.below(banks) as usize;
            book.due[from].push_back(due);
            if book.measured(due) {
                book.measured_due += 1;
            }
            from
        };
        let to = (from as u64 + 1 + rng.below(banks - 1)) % banks;
        let sent = orders[from].send(order(bics[to as usize])).await;
        sent.map_err(|_| format!("bank {} closed its order stream", bics[from]))?;
    }
    Ok(())
}

/// Waits until every measured payment is final (or refused), at most [`DRAIN_TIMEOUT`];
/// a driving task that fails ends the wait with its error.
async fn drain(
    book: &Mutex<Book>,
    tasks: &mut tokio::task::JoinSet<Result<(), String>>,
) -> Result<(), String> {
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        {
            let book = book.lock().expect("book lock");
            if book.completed + book.rejected + book.refused >= book.measured_due {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} measured payments still not final after {} s",
                    book.measured_due - book.completed - book.rejected - book.refused,
                    DRAIN_TIMEOUT.as_secs()
                ));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            Some(ended) = tasks.join_next() => {
                let problem = ended.map_err(|e| e.to_string())?.err().unwrap_or_else(|| "a bank stream ended".into());
                return Err(problem);
            }
        }
    }
}

/// Reads one bank's answers to its orders: each payment taken is now open (or already
/// final), each refused order ends there.
async fn read_answers(
    index: usize,
    mut answers: tonic::Streaming<pb::SubmitPaymentResult>,
    book: Arc<Mutex<Book>>,
    window: Option<Arc<Semaphore>>,
) -> Result<(), String> {
    while let Some(answer) = answers.message().await.map_err(|s| s.message().to_owned())? {
        let mut book = book.lock().expect("book lock");
        let due = book.due[index].pop_front().ok_or("an answer to an order never sent")?;
        let Some(payment) = answer.payment else {
            if book.measured(due) {
                book.refused += 1;
            }
            tracing::warn!(detail = %answer.detail, "the bank refused a load generator order");
            drop(book);
            if let Some(window) = &window {
                window.add_permits(1);
            }
            continue;
        };
        let uetr = Uetr::parse(&payment.uetr).map_err(|e| e.to_string())?;
        match book.early.remove(&uetr) {
            Some((at, settled)) => book.finish(due, at, settled),
            None => {
                book.open.insert(uetr, due);
            }
        }
    }
    Ok(())
}

/// Reads one bank's finished payments: the outgoing ones end a measurement.
async fn watch(
    mut events: tonic::Streaming<pb::PaymentEvent>,
    book: Arc<Mutex<Book>>,
    window: Option<Arc<Semaphore>>,
) -> Result<(), String> {
    while let Some(event) =
        events.message().await.map_err(|s| format!("watching payments: {}", s.message()))?
    {
        if event.direction != pb::PaymentDirection::Outgoing as i32 {
            continue;
        }
        let at = Instant::now();
        let settled = event.status == pb::PaymentStatus::Acsc as i32;
        let uetr = Uetr::parse(&event.uetr).map_err(|e| e.to_string())?;
        let mut book = book.lock().expect("book lock");
        match book.open.remove(&uetr) {
            Some(due) => book.finish(due, at, settled),
            None => {
                book.early.insert(uetr, (at, settled));
            }
        }
        drop(book);
        if let Some(window) = &window {
            window.add_permits(1);
        }
    }
    Ok(())
}

/// A live counter on stderr (drawn only when stderr is a terminal).
fn progress_bar(book: Arc<Mutex<Book>>, measure_from: Instant) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(200));
    let shown = bar.clone();
    tokio::spawn(async move {
        while !shown.is_finished() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let book = book.lock().expect("book lock");
            let elapsed = measure_from.elapsed().as_secs_f64();
            let message = if Instant::now() < measure_from {
                "warming up".to_owned()
            } else {
                format!(
                    "{} payments settled, {:.0}/s, p99 {:.2} ms",
                    book.completed,
                    book.completed as f64 / elapsed.max(1e-3),
                    book.latency.value_at_quantile(0.99) as f64 / 1000.0
                )
            };
            shown.set_message(message);
        }
    });
    bar
}

/// Records resident memory and its peak so far at the end of each minute from `from` on,
/// until aborted.
async fn sample_memory(from: Instant, samples: Arc<Mutex<Vec<(u64, u64)>>>) {
    let mut next = from + Duration::from_secs(60);
    loop {
        tokio::time::sleep_until(next.into()).await;
        let sample = (process_memory("VmRSS:"), process_memory("VmHWM:"));
        samples.lock().expect("samples lock").push(sample);
        next += Duration::from_secs(60);
    }
}
