//! The load generator: payments among banks as fast as the network takes them (closed
//! loop) or at a fixed rate (open loop), each measured from its submission to its final
//! status (the pacs.002 processed, durably) at the sender; beside the result, the
//! machine's crypto and transport ceilings measured in the same run.
//!
//! It drives banks through their operator API, on one `SubmitPayments` stream and one
//! `WatchPayments` stream per bank: the same way for a network of its own (a hub and
//! banks in this process, mTLS, signatures, durable storage in a temporary directory)
//! and for a running one. Before any load it checks what the run needs ([`preflight`]);
//! a bank that restarts under it is reached again and the run goes on ([`link`]).
//!
//! Latency is measured from when a payment was *due* (open loop: its slot in the
//! schedule; closed loop: when a slot in the window freed up), not from when it was
//! sent, so that a stalled network cannot hide its stall by delaying the next sends
//! (coordinated omission).

mod book;
pub mod cpu;
mod link;
mod preflight;
mod report;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tonic::transport::Channel;

use self::book::Book;
use self::link::{Link, Orders, Signals};
use super::breakdown::JournalRecorder;
use super::{LocalNetwork, Rng, ceilings};
use crate::model::{Amount, Bic, Currency};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::tls::NetworkDir;

pub use self::link::OUTAGE_MAX;
pub use self::preflight::{ACCOUNT_PREFIX, LoadgenAccount};
pub use self::report::LoadgenReport;

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
/// The amount of every payment: one unit of the run's currency (written without
/// decimals, so that it is valid in a currency that has none).
const PAYMENT_AMOUNT: &str = "1";
/// What a network of its own funds each bank with at the hub, in the currency's units.
const OWN_FUNDING: &str = "1000000000000";
/// Slowest a payment may take before the run gives up waiting for it at the end (from
/// the end of sending, or from a bank's return after an outage).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Highest latency the histogram keeps exactly (longer ones are clamped to it).
const LATENCY_MAX: Duration = Duration::from_secs(120);
/// Lines about the banks (an outage, a return) waiting to be told.
const NOTICES_MAX: usize = 64;

/// A running network to drive instead of starting one.
#[derive(Clone, Debug)]
pub struct Target {
    /// Its network directory (for the operator certificate).
    pub dir: PathBuf,
    /// Its hub's URL (to check each bank's position before the run).
    pub hub: String,
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
    /// ISO 4217 code of every payment (and of the accounts they go between).
    pub currency: String,
    /// The deposit of each account the run opens, decimal text in the currency's units.
    pub deposit: String,
    /// Share of measured payments (0 to 1) that may end rejected or refused before the
    /// run counts as failed.
    pub rejected_share_max: f64,
    /// Longest a bank may stay unreachable under the run before the run ends, with its
    /// report marked aborted.
    pub outage_max: Duration,
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
            currency: "CNY".into(),
            deposit: "1000000000".into(),
            rejected_share_max: 0.0,
            outage_max: OUTAGE_MAX,
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
        if let Some(target) = &self.target {
            if target.banks.len() < 2 {
                return Err("a running network needs at least two --bank".into());
            }
            if let Some((bic, _)) = target.banks.iter().enumerate().find_map(|(i, (bic, _))| {
                target.banks[..i].iter().find(|(other, _)| other == bic).map(|_| (bic, i))
            }) {
                return Err(format!("--bank {bic} is given twice"));
            }
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
        if self.outage_max.is_zero() {
            return Err("--outage-max-secs must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.rejected_share_max) {
            return Err(format!(
                "--max-rejected-share is a share from 0 to 1 (got {})",
                self.rejected_share_max
            ));
        }
        self.amounts().map(|_| ())
    }

    /// The currency, one payment and the deposit, checked.
    fn amounts(&self) -> Result<(Currency, Amount, Amount), String> {
        let currency = Currency::parse(&self.currency).map_err(|e| format!("--currency: {e}"))?;
        let payment = Amount::parse(PAYMENT_AMOUNT, currency).expect("one unit of any currency");
        let deposit = Amount::parse(&self.deposit, currency)
            .map_err(|e| format!("--deposit: {e} (each account the run opens needs money to pay with)"))?;
        if deposit.minor_units() < payment.minor_units() {
            return Err(format!("--deposit must cover at least one payment of {payment} (got {deposit})"));
        }
        Ok((currency, payment, deposit))
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

/// Runs the load and reports. `progress` hears what the run is doing; a live counter
/// is drawn on stderr when it is a terminal. An error means the load never started
/// (bad configuration, something the run needs missing); once it has started, a failure
/// (a bank away longer than `outage_max`, payments not final in time) ends the run with
/// its report, marked [`LoadgenReport::aborted`].
pub async fn run(config: &LoadgenConfig, progress: &(dyn Fn(&str) + Sync)) -> Result<LoadgenReport, String> {
    config.validate()?;
    let (currency, payment, deposit) = config.amounts()?;
    let temporary = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let mut own = None;
    let mut setup = match &config.target {
        Some(target) => Setup {
            network: NetworkDir::new(&target.dir),
            dir: target.dir.clone(),
            hub_url: target.hub.clone(),
            banks: target.banks.clone(),
            currency,
            payment,
            deposit,
            recorder: None,
            cpu: cpu::Measured::find(&node_urls(target)),
        },
        None => {
            progress(&format!(
                "starting a hub and {} banks (mTLS, signatures, durable storage) in {}",
                config.banks,
                temporary.path().display()
            ));
            let recorder = JournalRecorder::installed();
            let local = start_own(temporary.path(), config.banks, currency).await?;
            let setup = Setup {
                network: local.network.clone(),
                dir: temporary.path().to_owned(),
                hub_url: local.hub_url.clone(),
                banks: local.banks.iter().map(|b| (b.bic, b.url.clone())).collect(),
                currency,
                payment,
                deposit,
                recorder,
                cpu: cpu::Measured::ThisProcess,
            };
            own = Some(local);
            setup
        }
    };
    let measured = measure(config, &mut setup, progress).await;
    let stopped = match own {
        Some(local) => local.stop().await,
        None => Ok(()),
    };
    let mut report = measured?;
    if let Err(e) = stopped {
        report.aborted.get_or_insert(format!("its own network did not stop cleanly: {e}"));
    }
    report.network = if config.target.is_some() { "running" } else { "own" }.into();
    report.banks = setup.banks.len();
    report.cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    report.currency = currency.to_string();
    report.payment_amount = crate::model::format_minor_units(payment.minor_units(), currency);
    report.rate_target_per_s = config.rate_per_s;
    report.mode = if config.rate_per_s.is_some() { "open-loop" } else { "closed-loop" }.into();
    report.ratio_to_crypto_ceiling = report.crypto_ceiling_payments_per_s.map(|c| report.payments_per_s / c);
    report.ratio_to_essential_ceiling =
        report.essential_crypto_ceiling_payments_per_s.map(|c| report.payments_per_s / c);
    report.peak_rss_bytes = process_memory("VmHWM:");
    Ok(report)
}

/// A running network's nodes by name (`hub`, `bank BIC`) and URL.
fn node_urls(target: &Target) -> Vec<(String, String)> {
    let banks = target.banks.iter().map(|(bic, url)| (format!("bank {bic}"), url.clone()));
    std::iter::once(("hub".to_owned(), target.hub.clone())).chain(banks).collect()
}

/// The network a run drives and what it pays with.
struct Setup {
    network: NetworkDir,
    /// The network directory, as fixes name it.
    dir: PathBuf,
    hub_url: String,
    banks: Vec<(Bic, String)>,
    currency: Currency,
    /// One payment.
    payment: Amount,
    /// The deposit of each account the run opens.
    deposit: Amount,
    /// A network of its own: its journals' waits.
    recorder: Option<&'static JournalRecorder>,
    /// Whose CPU is Corridor's.
    cpu: cpu::Measured,
}

/// Checks, opens the accounts, measures the ceilings and then the load.
async fn measure(
    config: &LoadgenConfig,
    setup: &mut Setup,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<LoadgenReport, String> {
    let net = preflight::Network {
        network: &setup.network,
        dir: &setup.dir,
        hub_url: &setup.hub_url,
        banks: &setup.banks,
        currency: setup.currency,
        payment_minor_units: setup.payment.minor_units(),
    };
    let mut clients = preflight::check(&net).await?;
    let mut report = LoadgenReport {
        accounts: preflight::accounts(&net, &mut clients, setup.deposit.minor_units(), progress).await?,
        ..Default::default()
    };
    if !config.ceiling_duration.is_zero() {
        measure_ceilings(config.ceiling_duration, &setup.network, progress, &mut report).await?;
    }
    let orders = Orders {
        bics: setup.banks.iter().map(|(bic, _)| *bic).collect(),
        accounts: report.accounts.iter().map(|a| a.account.clone()).collect(),
        currency: setup.currency.to_string(),
        amount: PAYMENT_AMOUNT.into(),
    };
    drive(config, setup, clients, orders, progress, &mut report).await?;
    Ok(report)
}

/// Measures the ceilings, `duration` each, into `report`: the crypto ceiling with a
/// receipt per message and the essential one (taking turns batch by batch), then the transport ceiling.
async fn measure_ceilings(
    duration: Duration,
    network: &NetworkDir,
    progress: &(dyn Fn(&str) + Sync),
    report: &mut LoadgenReport,
) -> Result<(), String> {
    let seconds = duration.as_secs_f64();
    progress(&format!(
        "measuring the crypto ceilings (per-message receipts, essential), {seconds} s each, batch by batch in turn"
    ));
    let works = [ceilings::PaymentCrypto::PER_MESSAGE_RECEIPTS, ceilings::PaymentCrypto::ESSENTIAL];
    let crypto = tokio::task::spawn_blocking(move || ceilings::crypto_ceilings(&works, duration))
        .await
        .map_err(|e| e.to_string())?;
    report.crypto_ceiling_payments_per_s = Some(crypto[0]);
    report.essential_crypto_ceiling_payments_per_s = Some(crypto[1]);
    progress(&format!("measuring the transport ceiling for {seconds} s"));
    let transport = ceilings::transport_ceiling(network, envelope_bytes(), 1024, duration).await?;
    report.transport_ceiling_messages_per_s = Some(transport);
    report.transport_ceiling_payments_per_s = Some(ceilings::transport_payments_per_s(transport));
    Ok(())
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

/// A hub and `banks` banks in this process, every bank funded at the hub in `currency`.
async fn start_own(dir: &std::path::Path, banks: usize, currency: Currency) -> Result<LocalNetwork, String> {
    let bics: Vec<Bic> = LOADGEN_BANKS[..banks].iter().map(|b| Bic::parse(b).expect("valid")).collect();
    let mut network = LocalNetwork::create(dir, &bics).await?;
    network.fund_all(currency.code(), OWN_FUNDING).await?;
    for bic in bics {
        network.start_bank(bic).await?;
    }
    Ok(network)
}

/// Seconds of CPU this process has used (user and system); 0 where `/proc` is not.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    cpu::parse_process_ticks(&stat).map_or(0.0, |ticks| ticks as f64 / cpu::TICKS_PER_S)
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

/// What the banks' links share.
struct Shared {
    book: Arc<Mutex<Book>>,
    window: Option<Arc<Semaphore>>,
    notices: mpsc::Sender<String>,
    outage_max: Duration,
}

/// Opens each bank's streams and starts its link; returns how to wake each link.
async fn start_links(
    setup: &Setup,
    clients: Vec<BankServiceClient<Channel>>,
    orders: Orders,
    shared: &Shared,
    tasks: &mut JoinSet<Result<(), String>>,
) -> Result<Vec<Arc<Signals>>, String> {
    let orders = Arc::new(orders);
    let mut signals = Vec::new();
    for (index, client) in clients.into_iter().enumerate() {
        let link = Link {
            index,
            url: setup.banks[index].1.clone(),
            network: setup.network.clone(),
            orders: orders.clone(),
            book: shared.book.clone(),
            signals: Arc::new(Signals::default()),
            window: shared.window.clone(),
            notices: shared.notices.clone(),
            outage_max: shared.outage_max,
        };
        let streams = link.open(client).await?;
        signals.push(link.signals.clone());
        tasks.spawn(link.run(streams));
    }
    Ok(signals)
}

/// Sends the load and measures it. An error means the load could not start; a failure
/// after it started ends the run early, told in `report.aborted`.
async fn drive(
    config: &LoadgenConfig,
    setup: &Setup,
    clients: Vec<BankServiceClient<Channel>>,
    orders: Orders,
    progress: &(dyn Fn(&str) + Sync),
    report: &mut LoadgenReport,
) -> Result<(), String> {
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let measure_until = config.payments.is_none().then_some(measure_from + config.duration);
    let book = Arc::new(Mutex::new(Book::new(setup.banks.len(), measure_from, measure_until)));
    let closed_loop = config.rate_per_s.is_none();
    let window = Arc::new(Semaphore::new(config.in_flight_max));
    let (notices, mut notices_out) = mpsc::channel(NOTICES_MAX);
    let shared = Shared {
        book: book.clone(),
        window: closed_loop.then(|| window.clone()),
        notices,
        outage_max: config.outage_max,
    };
    let mut tasks = JoinSet::new();
    let signals = start_links(setup, clients, orders, &shared, &mut tasks).await?;
    drop(shared);
    let counter = progress_bar(book.clone(), measure_from);
    progress(&sending(config));
    let rss_by_minute = Arc::new(Mutex::new(Vec::new()));
    let sampler = tokio::spawn(sample_memory(measure_from, rss_by_minute.clone()));
    let recorder = setup.recorder;
    let measured_cpu = setup.cpu.clone();
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        if let Some(recorder) = recorder {
            recorder.reset();
        }
        (Instant::now(), cpu_seconds(), measured_cpu.sample())
    });
    let work = async {
        // A link that fails while orders are still being made ends the run there.
        tokio::select! {
            () = generate(config, setup.banks.len(), &signals, &book, &window, start) => {}
            Some(ended) = tasks.join_next() => return Err(link_problem(ended)),
        }
        drain(&book, &mut tasks).await
    };
    let tell = async {
        while let Some(notice) = notices_out.recv().await {
            counter.suspend(|| progress(&notice));
        }
        std::future::pending::<()>().await;
    };
    let outcome = tokio::select! { done = work => done, () = tell => unreachable!("never ends") };
    let ended_at = Instant::now();
    // A run aborted in its warm-up measured nothing: its CPU is counted from the abort.
    cpu_at_start.abort_handle().abort();
    let (cpu_start_at, cpu_start, ticks_at_start) =
        cpu_at_start.await.unwrap_or_else(|_| (ended_at, cpu_seconds(), setup.cpu.sample()));
    let measured_for = cpu_start_at.elapsed().as_secs_f64().max(1e-3);
    report.cpu_cores_used = (cpu_seconds() - cpu_start) / measured_for;
    let ticks = ticks_at_start.and_then(|start| Ok((start, setup.cpu.sample()?)));
    sampler.abort();
    (report.rss_bytes_by_minute, report.peak_rss_bytes_by_minute) =
        rss_by_minute.lock().expect("samples lock").iter().copied().unzip();
    counter.finish_and_clear();
    tasks.abort_all();
    account(&book.lock().expect("book lock"), measure_until, ended_at, report);
    account_cpu(&setup.cpu, ticks, measured_for, report);
    report.aborted = outcome.err().map(|problem| match report.payments_unfinished {
        0 => problem,
        n => format!("{problem}; {n} measured payments not final when the run ended"),
    });
    report.time_breakdown = recorder.map(|r| r.breakdown(measured_for, report.latency_ms.mean));
    Ok(())
}

/// The line that says the load starts, and what it is.
fn sending(config: &LoadgenConfig) -> String {
    format!(
        "sending {} for {}{} after a {} s warm-up",
        config
            .rate_per_s
            .map_or("as fast as the network takes them".to_owned(), |r| format!("{r} payments/s")),
        config.payments.map_or(format!("{} s", config.duration.as_secs_f64()), |n| format!("{n} payments")),
        match config.rate_per_s {
            None => format!(", {} in flight", config.in_flight_max),
            Some(_) => String::new(),
        },
        config.warmup.as_secs_f64(),
    )
}

/// What a bank's link that ended says: its error, or that it ended.
fn link_problem(ended: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match ended {
        Ok(Err(problem)) => problem,
        Ok(Ok(())) => "a bank's link ended".into(),
        Err(e) => e.to_string(),
    }
}

/// The book's figures into the report, for a run that ended at `ended_at`.
fn account(book: &Book, measure_until: Option<Instant>, ended_at: Instant, report: &mut LoadgenReport) {
    // A --duration run's window is its duration (or less, when the run was aborted in
    // it): the payments due in it are counted whenever they end, but the drain after it
    // is not part of the window. A --payments run sends nothing after its last payment,
    // so its window ends when that payment does.
    let end = measure_until.map_or(book.last_final, |until| until.min(ended_at));
    report.duration_s = end.saturating_duration_since(book.measure_from).as_secs_f64();
    report.drain_s = book.last_final.saturating_duration_since(end).as_secs_f64();
    report.payments_completed = book.completed;
    report.payments_rejected = book.rejected;
    report.orders_refused = book.refused;
    let measured = book.completed + book.rejected + book.refused;
    report.payments_unfinished = book.measured_due.saturating_sub(measured);
    report.rejected_share =
        if measured == 0 { 0.0 } else { (book.rejected + book.refused) as f64 / measured as f64 };
    report.rejections_by_reason = book.rejections_by_reason.clone();
    report.payments_per_s =
        if report.duration_s > 0.0 { book.completed as f64 / report.duration_s } else { 0.0 };
    report.latency_ms = LatencyMs::of(&book.latency);
    report.bank_outages = book.outages;
    report.bank_outage_s = book.outage.as_secs_f64();
    report.orders_resent = book.orders_resent;
}

/// Corridor's CPU and the other processes' over the `seconds` between two samples of
/// `measured`'s counters, into the report, with a warning when others used too much;
/// figures not measured (no `/proc`, a node's process not found or gone) are `None`,
/// and the report says why.
fn account_cpu(
    measured: &cpu::Measured,
    ticks: Result<(cpu::CpuTicks, cpu::CpuTicks), String>,
    seconds: f64,
    report: &mut LoadgenReport,
) {
    report.cpu_measured = measured.describe();
    let (start, end) = match ticks {
        Ok(ticks) => ticks,
        Err(why) => {
            report.cpu_measured = format!("not measured: {why}");
            return;
        }
    };
    let used = cpu::CpuUse::between(start, end, seconds);
    report.cores_used = Some(used.corridor_cores);
    report.cpu_us_per_payment = used.us_per_payment(seconds, report.payments_completed);
    report.other_cpu_cores = Some(used.other_cores);
    report.warnings.extend(cpu::other_cpu_warning(used.other_cores));
}

/// Gives payments to the banks until the measurement's end (or its count) is reached:
/// each one an order in its bank's queue in the book, its link woken (`signals`, by
/// bank). A bank that takes no orders (it is away) holds up only its own, up to
/// [`Book::waiting_max`] of them; past that the generator waits for it.
async fn generate(
    config: &LoadgenConfig,
    banks: usize,
    signals: &[Arc<Signals>],
    book: &Mutex<Book>,
    window: &Semaphore,
    start: Instant,
) {
    let mut rng = Rng::new(config.seed);
    let banks = banks as u64;
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
        let from = rng.below(banks) as usize;
        let to = ((from as u64 + 1 + rng.below(banks - 1)) % banks) as usize;
        loop {
            {
                let mut book = book.lock().expect("book lock");
                let ended = match (book.measure_until, config.payments) {
                    (Some(until), _) => due >= until,
                    (None, Some(count)) => book.measured_due >= count,
                    (None, None) => true,
                };
                if ended {
                    return;
                }
                if book.waiting(from) < book.waiting_max {
                    book.due[from].push_back((due, to));
                    if book.measured(due) {
                        book.measured_due += 1;
                    }
                    break;
                }
            }
            signals[from].room.notified().await;
        }
        signals[from].ready.notify_one();
    }
}

/// Waits until every measured payment is final (or refused): at most [`DRAIN_TIMEOUT`]
/// after the end of sending or after a bank's last return, and as long as a bank is
/// away (its link gives up after the run's `outage_max`); a link that fails ends the
/// wait with its error.
async fn drain(book: &Mutex<Book>, tasks: &mut JoinSet<Result<(), String>>) -> Result<(), String> {
    let sent_at = Instant::now();
    loop {
        {
            let book = book.lock().expect("book lock");
            if book.drained() {
                return Ok(());
            }
            let deadline = book.last_reconnect.map_or(sent_at, |at| at.max(sent_at)) + DRAIN_TIMEOUT;
            if book.banks_down == 0 && Instant::now() >= deadline {
                // The report adds how many.
                return Err(format!(
                    "measured payments still not final {} s after the last send or a bank's return",
                    DRAIN_TIMEOUT.as_secs()
                ));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            Some(ended) = tasks.join_next() => return Err(link_problem(ended)),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::book::ORDERS_WAITING_MAX;
    use super::*;

    fn running(banks: &[&str]) -> LoadgenConfig {
        let banks = banks.iter().map(|b| (Bic::parse(b).expect("valid"), "https://127.0.0.1:1".to_owned()));
        LoadgenConfig {
            target: Some(Target {
                dir: "net".into(),
                hub: "https://127.0.0.1:2".into(),
                banks: banks.collect(),
            }),
            ..Default::default()
        }
    }

    /// Banks `banks` whose links take every order as it comes (as a link to a bank that
    /// is up does); the others take none (as while their bank is away).
    fn links_up(book: &Arc<Mutex<Book>>, signals: &[Arc<Signals>], banks: &[usize]) {
        for &index in banks {
            let (book, signals) = (book.clone(), signals[index].clone());
            tokio::spawn(async move {
                loop {
                    signals.ready.notified().await;
                    book.lock().unwrap().take_waiting(index, usize::MAX);
                    signals.room.notify_one();
                }
            });
        }
    }

    /// One bank away must not stall the orders of every bank (the review of issue 19
    /// item 6: the generator awaited a full channel to that bank, and every other bank's
    /// payments took the outage into their latency). Bank 2's link takes no orders while
    /// banks 0 and 1 take theirs: the generator still gives every payment of the run, far
    /// more than a bank's stream window, bank 2's waiting in its own queue; only past
    /// `waiting_max` orders waiting at one bank does the generator wait for it. Time is
    /// tokio's, paused: the open loop's schedule passes without waiting, and a generator
    /// held up is caught by a timeout in that time, not by the wall clock.
    #[tokio::test(start_paused = true)]
    async fn a_bank_that_takes_no_orders_holds_up_only_its_own() {
        let payments = 8 * crate::bank::SUBMIT_STREAM_WINDOW as u64;
        let config = LoadgenConfig { rate_per_s: Some(1000), payments: Some(payments), ..Default::default() };
        let window = Semaphore::new(1);
        let hour = Duration::from_secs(3600);
        for waiting_max in [ORDERS_WAITING_MAX, 100] {
            let start = Instant::now();
            let mut book = Book::new(3, start, None);
            book.waiting_max = waiting_max;
            let book = Arc::new(Mutex::new(book));
            let signals: Vec<Arc<Signals>> = (0..3).map(|_| Arc::new(Signals::default())).collect();
            links_up(&book, &signals, &[0, 1]);
            let generated =
                tokio::time::timeout(hour, generate(&config, 3, &signals, &book, &window, start)).await;
            let book = book.lock().unwrap();
            if waiting_max == ORDERS_WAITING_MAX {
                assert!(generated.is_ok(), "the generator was held up by bank 2");
                assert_eq!(book.measured_due, payments);
                assert!(book.waiting(2) > crate::bank::SUBMIT_STREAM_WINDOW, "{}", book.waiting(2));
            } else {
                assert!(generated.is_err(), "the generator went past bank 2's limit");
                assert_eq!(book.waiting(2), 100);
                let others = book.due[0].len() + book.due[1].len();
                assert!(book.due[0].len() * book.due[1].len() > 0, "banks 0 and 1 got theirs meanwhile");
                assert_eq!(book.measured_due as usize, 100 + others);
            }
            assert_eq!(book.written[2], 0);
        }
    }

    /// What a run pays with is checked before anything starts: a bank named twice, a
    /// currency that is not ISO 4217, a deposit that cannot cover one payment, a share
    /// outside 0..=1 are each refused with the flag they come from.
    #[test]
    fn a_run_that_cannot_pay_is_refused_before_it_starts() {
        assert_eq!(running(&["BANKRUMMXXX", "BANKIRTHXXX"]).validate(), Ok(()));
        let twice = running(&["BANKRUMMXXX", "BANKIRTHXXX", "BANKRUMMXXX"]).validate().unwrap_err();
        assert!(twice.contains("--bank BANKRUMMXXX is given twice"), "{twice}");
        let bad = |change: fn(&mut LoadgenConfig)| {
            let mut config = LoadgenConfig::default();
            change(&mut config);
            config.validate().unwrap_err()
        };
        assert!(bad(|c| c.currency = "XYZ".into()).starts_with("--currency"));
        assert!(bad(|c| c.deposit = "0".into()).starts_with("--deposit"));
        assert!(bad(|c| c.deposit = "0.99".into()).contains("at least one payment of 1.00 CNY"));
        assert!(bad(|c| c.rejected_share_max = 1.01).starts_with("--max-rejected-share"));
        assert!(bad(|c| c.rejected_share_max = f64::NAN).starts_with("--max-rejected-share"));
        let mut yen = LoadgenConfig { currency: "JPY".into(), deposit: "1".into(), ..Default::default() };
        assert_eq!(yen.validate(), Ok(()), "one unit of a currency without decimals");
        yen.deposit = "0.5".into();
        assert!(yen.validate().is_err());
    }
}
