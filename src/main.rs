//! The `corridor` command line: parse, set up tracing, call the library.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use corridor::bank::{self, Bank};
use corridor::directory::Directory;
use corridor::hub::{self, Hub, HubConfig, SettlementModel};
use corridor::model::{Bic, Currency, CurrencyPair, Rate, format_minor_units, wire};
use corridor::pb;
use corridor::sim::demo::{DemoConfig, render, start_demo};
use corridor::sim::loadgen::{self, LoadgenConfig};
use corridor::sim::{admin_client, operator_client, tracker_client};
use corridor::tls::{self, NetworkDir, Role};
use tokio::net::TcpListener;

/// mimalloc: the hot path allocates and frees small buffers (frames, envelopes, records)
/// on one thread and frees them on another. With the system allocator, malloc and free
/// were 13% of a closed-loop `loadgen`'s CPU samples; mimalloc gave 6% more payments/s
/// (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Writes a line to stdout. A closed pipe (`corridor payments | head`) ends the program
/// quietly, as for any Unix tool; it is not a bug.
macro_rules! say {
    ($($arg:tt)*) => {
        write_line(&format!($($arg)*))
    };
}

fn write_line(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {error}");
        std::process::exit(1);
    }
}

/// Corridor: a payment messaging network you can run on one machine.
#[derive(Parser)]
#[command(name = "corridor", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The demo PKI: network CA, TLS identities, signing keys, directory.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Run the relay hub.
    Hub {
        /// Network directory made by `corridor pki init`.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on, for example 127.0.0.1:7000.
        #[arg(long)]
        listen: SocketAddr,
        /// Largest signed payload the hub accepts, in bytes.
        #[arg(long, default_value_t = HubConfig::default().payload_size_max_bytes)]
        payload_size_max_bytes: usize,
        /// Where the hub keeps its journal [default: DIR/data/hub].
        #[arg(long)]
        data: Option<PathBuf>,
        /// How payments settle: gross (each final at once) or deferred-net (in windows
        /// closed by the operator). Fixed when the journal is created.
        #[arg(long, default_value = "gross", value_parser = SettlementModel::parse)]
        settlement: SettlementModel,
        /// Serve Prometheus metrics on this address (GET /metrics).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// Serve the web dashboard on this address (plain HTTP; keep it on loopback).
        #[arg(long)]
        dashboard_addr: Option<SocketAddr>,
        #[command(flatten)]
        limits: HubLimitArgs,
    },
    /// Verify every message in a stopped hub's journal against the signing key that
    /// was valid when it was created (exit 1 if any fails).
    Audit {
        /// Network directory.
        #[arg(long)]
        dir: PathBuf,
        /// The hub's data directory [default: DIR/data/hub].
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Run a bank node.
    Bank {
        /// Network directory made by `corridor pki init`.
        #[arg(long)]
        dir: PathBuf,
        /// This bank's BIC.
        #[arg(long)]
        bic: String,
        /// The hub's URL, for example https://127.0.0.1:7000.
        #[arg(long)]
        hub: String,
        /// Address for the operator API, for example 127.0.0.1:7001.
        #[arg(long)]
        listen: SocketAddr,
        /// Where the bank keeps its ledger and payments [default: DIR/data/banks/BIC].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Serve Prometheus metrics on this address (GET /metrics).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        /// How long a finished payment, a posting or a processed message stays in memory
        /// after its last change, in seconds (1 to 86400); the store answers for it after.
        #[arg(long, default_value_t = bank::RETENTION.as_secs())]
        retention_secs: u64,
    },
    /// Open a customer account at a bank node.
    OpenAccount {
        #[command(flatten)]
        bank: BankArgs,
        /// Account id (1 to 34 characters: A-Z a-z 0-9 - . /).
        #[arg(long)]
        account: String,
        /// ISO 4217 currency code.
        #[arg(long)]
        currency: String,
        /// Holder's name.
        #[arg(long)]
        name: String,
        /// Opening cash deposit, decimal text such as 1000.00.
        #[arg(long, default_value = "0")]
        deposit: String,
    },
    /// Block (or with --unblock, unblock) a customer account: payments to it are refused (AC06).
    BlockAccount {
        #[command(flatten)]
        bank: BankArgs,
        /// Account id.
        #[arg(long)]
        account: String,
        /// Unblock instead.
        #[arg(long)]
        unblock: bool,
    },
    /// Pay from a customer account to an account at another bank; prints the UETR.
    Pay {
        #[command(flatten)]
        bank: BankArgs,
        /// Paying customer's account at this bank.
        #[arg(long)]
        from: String,
        /// Beneficiary's bank (BIC).
        #[arg(long)]
        to_bank: String,
        /// Beneficiary's account there.
        #[arg(long)]
        to: String,
        /// Amount as decimal text, for example 1234.56.
        #[arg(long)]
        amount: String,
        /// ISO 4217 currency code.
        #[arg(long)]
        currency: String,
        /// Beneficiary's name (defaults to the account).
        #[arg(long)]
        name: Option<String>,
        /// Free text for the beneficiary.
        #[arg(long, default_value = "")]
        remittance: String,
        /// The beneficiary bank's currency (ISO 4217), when it is not --currency: the
        /// payment is converted at the rate of the hub's agreement in force for the pair
        /// (or at --quote's rate), and the beneficiary receives the converted amount.
        #[arg(long)]
        settlement_currency: Option<String>,
        /// A quote id from `corridor quote` for exactly this amount and pair: the payment
        /// is converted at the quote's rate, if it has not expired. Used once.
        #[arg(long, requires = "settlement_currency")]
        quote: Option<String>,
    },
    /// Ask the hub, through this bank, for a firm quote: both amounts, the rate, the expiry.
    ///
    /// `pay --settlement-currency CUR --quote ID` then pays at the quote's rate, once,
    /// until it expires (`hub --quote-ttl-secs`), even if the agreement changes meanwhile.
    Quote {
        #[command(flatten)]
        bank: BankArgs,
        /// Amount the paying customer would send, decimal text, for example 100.00.
        #[arg(long)]
        amount: String,
        /// Its currency (ISO 4217), for example RUB.
        #[arg(long)]
        currency: String,
        /// The beneficiary bank's currency (ISO 4217), for example IRR.
        #[arg(long)]
        to_currency: String,
    },
    /// Return a settled incoming payment to its sender (a pacs.004), with a reason.
    ///
    /// For example because the beneficiary's account is closed (AC04): the beneficiary's
    /// account is debited now, and the sender's customer gets back exactly what it paid (a
    /// converted payment is converted back at its original rate).
    Return {
        #[command(flatten)]
        bank: BankArgs,
        /// The payment's UETR.
        #[arg(long)]
        uetr: String,
        /// ISO return reason code: AC04 (closed account), AC01 (wrong account), AM05
        /// (duplicate), CUST (customer's request), ...
        #[arg(long)]
        reason: String,
        /// Free text for the sender.
        #[arg(long, default_value = "")]
        info: String,
    },
    /// Ask for a settled outgoing payment back (a camt.056), with a reason.
    ///
    /// The recall is an open case (PDCR) until the beneficiary's bank answers it with
    /// `answer-recall`; `status` and `track` show how it stands.
    Recall {
        #[command(flatten)]
        bank: BankArgs,
        /// The payment's UETR.
        #[arg(long)]
        uetr: String,
        /// ISO cancellation reason code: DUPL (duplicate), FRAD (fraud), CUST (customer's
        /// request), ...
        #[arg(long)]
        reason: String,
        /// Free text for the beneficiary's bank.
        #[arg(long, default_value = "")]
        info: String,
    },
    /// Answer the open recall of an incoming payment (a camt.029): --accept or --refuse.
    ///
    /// --accept sends the funds back (a pacs.004 with reason FOCR, then CNCL); --refuse
    /// --reason CODE keeps them (RJCR) and tells the sender why.
    #[command(group(clap::ArgGroup::new("answer").required(true).args(["accept", "refuse"])))]
    AnswerRecall {
        #[command(flatten)]
        bank: BankArgs,
        /// The payment's UETR.
        #[arg(long)]
        uetr: String,
        /// Accept: return the funds to the sender.
        #[arg(long)]
        accept: bool,
        /// Refuse: keep the funds (needs --reason).
        #[arg(long, requires = "reason")]
        refuse: bool,
        /// Why it is refused (ISO code): NOAS (no answer from the customer), CUST
        /// (customer refuses), AC04 (closed account), AM04 (insufficient funds), ...
        #[arg(long, conflicts_with = "accept")]
        reason: Option<String>,
        /// Free text for the sender's bank.
        #[arg(long, default_value = "")]
        info: String,
    },
    /// A payment's status as the bank sees it.
    Status {
        #[command(flatten)]
        bank: BankArgs,
        /// The payment's UETR.
        uetr: String,
    },
    /// Accounts and balances at a bank node.
    Balances {
        #[command(flatten)]
        bank: BankArgs,
    },
    /// Every payment a bank node knows.
    Payments {
        #[command(flatten)]
        bank: BankArgs,
    },
    /// A camt.053-style statement of a bank's account (by default its settlement account).
    Statement {
        #[command(flatten)]
        bank: BankArgs,
        /// Account id [default: the settlement account in --currency].
        #[arg(long, default_value = "")]
        account: String,
        /// ISO 4217 code of the settlement account.
        #[arg(long, default_value = "")]
        currency: String,
        #[command(flatten)]
        period: PeriodArgs,
    },
    /// The hub operator's control of the hub: positions, suspensions, settlement windows,
    /// rate agreements.
    Admin {
        #[command(flatten)]
        hub: HubArgs,
        #[command(subcommand)]
        action: AdminCommand,
    },
    /// A payment's path through the hub, step by step with times (like a gpi tracker).
    Track {
        #[command(flatten)]
        hub: HubArgs,
        /// The payment's UETR.
        uetr: String,
    },
    /// Prove that the hub and every bank agree: compares the hub's journal with each
    /// bank's records, live (--hub and --bank) or offline from stopped nodes' data.
    /// Exits 0 when clean, 1 when it found breaks, 2 when it could not run.
    Reconcile {
        /// Network directory (directory file and operator certificate).
        #[arg(long)]
        dir: PathBuf,
        /// The running hub's URL; without it, reads stopped nodes' data offline.
        #[arg(long, requires = "banks")]
        hub: Option<String>,
        /// A running bank as BIC=URL, once per bank (with --hub).
        #[arg(long = "bank", value_name = "BIC=URL", requires = "hub")]
        banks: Vec<String>,
        /// Offline: the data root holding hub/ and banks/<BIC>/ [default: DIR/data].
        #[arg(long, conflicts_with = "hub")]
        data: Option<PathBuf>,
        /// Live: how long to wait for payments in transit to settle, in seconds.
        #[arg(long, default_value_t = 10)]
        wait_secs: u64,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Load-test: payments among banks, closed loop or at --rate, measured from submission
    /// to the pacs.002 at the sender, beside the machine's crypto and transport ceilings.
    /// Starts a hub and banks of its own, or drives running banks (--dir and --bank).
    Loadgen {
        /// Banks of its own network (2 to 8).
        #[arg(long, default_value_t = LoadgenConfig::default().banks)]
        banks: usize,
        /// Payments per second (open loop); without it, as fast as the network takes them.
        #[arg(long)]
        rate: Option<u64>,
        /// Seconds to measure, after the warm-up.
        #[arg(long, default_value_t = LoadgenConfig::default().duration.as_secs_f64())]
        duration: f64,
        /// Measure this many payments instead of a duration.
        #[arg(long)]
        payments: Option<u64>,
        /// Seconds of load before measuring.
        #[arg(long, default_value_t = LoadgenConfig::default().warmup.as_secs_f64())]
        warmup: f64,
        /// Closed loop: payments in flight at once.
        #[arg(long, default_value_t = LoadgenConfig::default().in_flight_max)]
        in_flight: usize,
        /// Seconds to measure each ceiling (0 skips them).
        #[arg(long, default_value_t = LoadgenConfig::default().ceiling_duration.as_secs_f64())]
        ceiling_secs: f64,
        /// Seed of the choice of senders and receivers.
        #[arg(long, default_value_t = LoadgenConfig::default().seed)]
        seed: u64,
        /// A running network's directory (with --bank): drive it instead of starting one.
        #[arg(long, requires = "banks_running")]
        dir: Option<PathBuf>,
        /// A running bank as BIC=URL, once per bank (with --dir). Fund them at the hub first.
        #[arg(long = "bank", value_name = "BIC=URL", id = "banks_running", requires = "dir")]
        banks_running: Vec<String>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a whole network in this process, send payments, and tell what happened.
    Demo {
        /// Number of banks (2 to 8).
        #[arg(long, default_value_t = DemoConfig::default().banks)]
        banks: usize,
        /// Number of payments.
        #[arg(long, default_value_t = DemoConfig::default().payments)]
        payments: usize,
        /// Seed of the workload.
        #[arg(long, default_value_t = DemoConfig::default().seed)]
        seed: u64,
        /// `home`: each bank keeps accounts in its own country's currency, and payments
        /// convert under the hub's rate agreements; or one ISO 4217 code for every bank.
        #[arg(long, default_value_t = DemoConfig::default().currency)]
        currency: String,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Keep the demo's network (PKI and every node's data) in this new directory
        /// instead of a temporary one that is removed at the end.
        #[arg(long)]
        data: Option<PathBuf>,
        /// Tell one payment step by step (what each message carries, who signs and checks
        /// what), then a rejection, a crash and recovery, and a reconciliation.
        #[arg(long, conflicts_with_all = ["scenario", "json"])]
        narrate: bool,
        /// With --narrate: do not wait for Enter between steps.
        #[arg(long, requires = "narrate")]
        no_pause: bool,
        /// Run the network a scenario file describes (see scenarios/).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Where the hub serves its web dashboard (port 0: any free port; the URL is printed).
        #[arg(long, default_value = "127.0.0.1:0")]
        dashboard_addr: SocketAddr,
        /// Do not serve the dashboard.
        #[arg(long)]
        no_dashboard: bool,
    },
}

/// The hub's replay window, rate limits, connection limits and timeouts.
#[derive(Args)]
struct HubLimitArgs {
    /// Replay window: messages created longer ago than this are refused (TM01).
    #[arg(long, default_value_t = hub::MESSAGE_AGE_MAX.as_secs())]
    message_age_max_secs: u64,
    /// Messages created further ahead than this (clocks apart) are refused (TM01).
    #[arg(long, default_value_t = hub::CLOCK_SKEW_MAX.as_secs())]
    clock_skew_max_secs: u64,
    /// Messages per second each participant may submit; the excess is shed with
    /// RESOURCE_EXHAUSTED and a time to retry, and resent by the bank.
    #[arg(long, default_value_t = hub::PARTICIPANT_RATE_MAX)]
    participant_rate: u32,
    /// Messages a participant may submit at once above its rate [default: the rate].
    #[arg(long)]
    participant_burst: Option<u32>,
    /// How long a quote the hub gives (`corridor quote`) is honoured, in seconds (1 to
    /// 86400).
    #[arg(long, default_value_t = hub::QUOTE_TTL.as_secs())]
    quote_ttl_secs: u64,
    /// How long a finished payment stays in the hub's memory after its last step before
    /// it moves to the archive in the hub's store, and an accepted message in the duplicate
    /// check before the journal answers for it, in seconds (1 to 86400).
    #[arg(long, default_value_t = hub::RETENTION.as_secs())]
    retention_secs: u64,
    /// Connections each certificate may hold at once.
    #[arg(long, default_value_t = corridor::net::CONNECTIONS_PER_PEER_MAX)]
    connections_per_peer: usize,
    /// Longest TLS handshake, in seconds.
    #[arg(long, default_value_t = corridor::net::HANDSHAKE_TIMEOUT.as_secs())]
    handshake_timeout_secs: u64,
    /// A connection silent this long is closed, in seconds.
    #[arg(long, default_value_t = corridor::net::IDLE_TIMEOUT.as_secs())]
    idle_timeout_secs: u64,
}

impl HubLimitArgs {
    /// The limits applied to `config`; refused, naming the flag, when one is out of the
    /// range [`HubConfig::validate`] allows.
    fn apply(&self, config: HubConfig) -> Result<HubConfig> {
        let quote_ttl = Duration::from_secs(self.quote_ttl_secs);
        HubConfig { quote_ttl, ..HubConfig::default() }
            .validate()
            .map_err(|e| anyhow!("--quote-ttl-secs {}: {e}", self.quote_ttl_secs))?;
        let retention = Duration::from_secs(self.retention_secs);
        HubConfig { retention, ..HubConfig::default() }
            .validate()
            .map_err(|e| anyhow!("--retention-secs {}: {e}", self.retention_secs))?;
        let connections = corridor::net::ConnectionLimits {
            connections_per_peer_max: self.connections_per_peer,
            handshake_timeout: Duration::from_secs(self.handshake_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            ..config.connections
        };
        Ok(HubConfig {
            message_age_max: Duration::from_secs(self.message_age_max_secs),
            clock_skew_max: Duration::from_secs(self.clock_skew_max_secs),
            participant_rate_max: self.participant_rate,
            participant_burst_max: self.participant_burst.unwrap_or(self.participant_rate),
            connections,
            quote_ttl,
            retention,
            ..config
        })
    }
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create a network: CA, hub, operator, and a bank per BIC.
    Init {
        /// Directory to create the network in (must not hold one already).
        #[arg(long)]
        dir: PathBuf,
        /// Comma-separated BICs of the banks.
        #[arg(long, value_delimiter = ',', required = true)]
        participants: Vec<String>,
    },
    /// Give a bank (or the hub, by its id CRDRZZ00XXX) a new signing key. Its other keys
    /// still verify until the overlap ends; running nodes switch at once.
    Rotate {
        /// Network directory.
        #[arg(long)]
        dir: PathBuf,
        /// Whose key: a bank's BIC or the hub's id.
        #[arg(long)]
        bic: String,
        /// How long the old key still signs, in seconds.
        #[arg(long, default_value_t = 3600)]
        overlap_secs: u64,
    },
    /// Revoke a signing key (--key) or a TLS certificate (--certificate) for good.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["key", "certificate"])))]
    Revoke {
        /// Network directory.
        #[arg(long)]
        dir: PathBuf,
        /// Whose: a bank's BIC or the hub's id (CRDRZZ00XXX); with --certificate,
        /// "operator" for the operators' certificate.
        #[arg(long)]
        bic: String,
        /// The signing key id to revoke (k1, k2, ...).
        #[arg(long)]
        key: Option<String>,
        /// Revoke the TLS certificate instead: servers refuse it at the handshake.
        #[arg(long)]
        certificate: bool,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Add prefunded liquidity to a participant's position.
    Fund(AmountArgs),
    /// Take liquidity back (refused if the position could not cover its reservations).
    Defund(AmountArgs),
    /// Set a participant's net debit cap in a currency ("0" for none).
    Cap(AmountArgs),
    /// Refuse new payments from and to a participant.
    Suspend(ParticipantArgs),
    /// Lift a suspension.
    Resume(ParticipantArgs),
    /// Close the settlement window (deferred net) and print its report.
    CloseWindow,
    /// Every position.
    Positions,
    /// The report of every closed settlement window.
    Reports,
    /// A participant's settlement statement from the hub's journal.
    Statement {
        #[command(flatten)]
        participant: ParticipantArgs,
        /// ISO 4217 code.
        #[arg(long)]
        currency: String,
        #[command(flatten)]
        period: PeriodArgs,
    },
    /// Set a currency pair's rate agreement; prints it with its applied rate.
    ///
    /// It replaces the pair's previous agreement. While it is in force, payments
    /// instructed in the first currency settle in the second at the applied rate: the
    /// rate less the spread. The other direction (IRR/RUB) takes an agreement of its own.
    Agreement {
        /// FROM/TO, for example RUB/IRR: payments instructed in RUB settle in IRR.
        #[arg(long)]
        pair: String,
        /// Units of TO per unit of FROM, decimal text, for example 512.25.
        #[arg(long)]
        rate: String,
        /// The network's margin in basis points (hundredths of a percent), taken off the
        /// rate: 0 to 9999.
        #[arg(long, default_value_t = 0)]
        spread_bps: u32,
        /// In force from (inclusive), RFC 3339 such as 2026-11-28T09:00:00Z [default: now].
        #[arg(long)]
        valid_from: Option<String>,
        /// In force until (exclusive), RFC 3339 [default: without end].
        #[arg(long)]
        valid_until: Option<String>,
    },
    /// Every rate agreement, in force or not.
    Agreements,
}

#[derive(Args)]
struct ParticipantArgs {
    /// The participant's BIC.
    #[arg(long)]
    participant: String,
}

#[derive(Args)]
struct AmountArgs {
    /// The participant's BIC.
    #[arg(long)]
    participant: String,
    /// ISO 4217 code.
    #[arg(long)]
    currency: String,
    /// Decimal text, for example 1000000.00.
    #[arg(long)]
    amount: String,
}

/// A period `[from, to)` in Unix milliseconds; both 0 for everything.
#[derive(Args)]
struct PeriodArgs {
    /// Start, Unix milliseconds (inclusive).
    #[arg(long, default_value_t = 0)]
    from_ms: i64,
    /// End, Unix milliseconds (exclusive).
    #[arg(long, default_value_t = 0)]
    to_ms: i64,
}

/// Where the hub is and who we are.
#[derive(Args)]
struct HubArgs {
    /// Network directory (for the operator certificate).
    #[arg(long)]
    dir: PathBuf,
    /// The hub's URL, for example https://127.0.0.1:7000.
    #[arg(long)]
    hub: String,
}

/// Where a bank node's operator API is and who we are.
#[derive(Args)]
struct BankArgs {
    /// Network directory (for the operator certificate).
    #[arg(long)]
    dir: PathBuf,
    /// The bank node's operator API URL, for example https://127.0.0.1:7001.
    #[arg(long)]
    bank: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A panic is a broken invariant: the state in memory can no longer be trusted, so the
    // whole process stops rather than serve on with one task dead (crash-only).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        eprintln!("error: corridor stopped on a broken invariant (a bug); please report it");
        std::process::exit(70);
    }));
    let quiet = matches!(cli.command, Command::Hub { .. } | Command::Bank { .. });
    init_tracing(if quiet { "info" } else { "warn" });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

fn parse_bic(text: &str, flag: &str) -> Result<Bic> {
    Bic::parse(text).map_err(|e| anyhow!("{flag}: {}", e.rule))
}

async fn execute(command: Command) -> Result<ExitCode> {
    match command {
        Command::Pki(PkiCommand::Init { dir, participants }) => {
            let bics = participants
                .iter()
                .map(|p| parse_bic(p.trim(), "--participants"))
                .collect::<Result<Vec<_>>>()?;
            tls::init(&dir, &bics)?;
            say!("created a network for {} banks in {}", bics.len(), dir.display());
        }
        Command::Pki(PkiCommand::Rotate { dir, bic, overlap_secs }) => {
            let bic = parse_bic(&bic, "--bic")?;
            let rotation = tls::rotate(&dir, bic, Duration::from_secs(overlap_secs))?;
            let retired: Vec<String> = rotation.retired.iter().map(|k| k.to_string()).collect();
            say!(
                "{bic} signs with key {} from {}; {} retire(s) at {}",
                rotation.new_key,
                wire::format_unix_ms(rotation.activates_unix_ms),
                if retired.is_empty() { "no other key".to_owned() } else { retired.join(", ") },
                wire::format_unix_ms(rotation.overlap_until_unix_ms)
            );
        }
        Command::Pki(PkiCommand::Revoke { dir, bic, key, certificate }) => {
            if certificate {
                let role = if bic == "operator" {
                    Role::Operator
                } else {
                    tls::role_of_bic(parse_bic(&bic, "--bic")?)
                };
                let serial = tls::revoke_certificate(&dir, role)?;
                say!(
                    "revoked the TLS certificate of {bic} (serial {})",
                    corridor::crypto::hex_encode(&serial)
                );
            } else {
                let bic = parse_bic(&bic, "--bic")?;
                let key = corridor::crypto::KeyId::parse(key.as_deref().unwrap_or_default())
                    .map_err(|e| anyhow!("--key: {}", e.rule))?;
                let at = tls::revoke_key(&dir, bic, &key)?;
                say!("revoked signing key {key} of {bic} at {}", wire::format_unix_ms(at));
            }
        }
        Command::Audit { dir, data } => {
            let network = NetworkDir::new(dir);
            let directory = Directory::load(network.root())?;
            let data = data.unwrap_or_else(|| network.hub_data_dir());
            let report = hub::audit_journal(&directory, &data).map_err(|e| anyhow!(e))?;
            say!(
                "{} archived messages verified against the keys valid when they were created",
                report.verified
            );
            for (message_id, problem) in &report.failed {
                say!("FAILED {message_id}: {problem}");
            }
            if !report.failed.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Hub {
            dir,
            listen,
            payload_size_max_bytes,
            data,
            settlement,
            metrics_addr,
            dashboard_addr,
            limits,
        } => {
            serve_metrics(metrics_addr)?;
            let network = NetworkDir::new(dir);
            let directory = Directory::load(network.root())?;
            let identity = network.signing_identity(Role::Hub)?;
            let config = limits.apply(HubConfig {
                payload_size_max_bytes,
                settlement_model: settlement,
                ..HubConfig::default()
            })?;
            let data = data.unwrap_or_else(|| network.hub_data_dir());
            let hub = Hub::open(config, directory, identity, &data).map_err(|e| anyhow!(e))?;
            let listener =
                TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            // The first line on stdout says where to connect (useful with port 0).
            say!("hub listening on https://{}", listener.local_addr()?);
            let _dashboard = match dashboard_addr {
                Some(addr) => {
                    let listener = TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("--dashboard-addr: cannot listen on {addr}"))?;
                    say!("dashboard on http://{}", listener.local_addr()?);
                    let hub = hub.clone();
                    Some(corridor::net::AbortOnDrop(tokio::spawn(async move {
                        if let Err(error) =
                            hub::dashboard::serve_dashboard(hub, listener, std::future::pending()).await
                        {
                            tracing::error!(%error, "the dashboard stopped");
                        }
                    })))
                }
                None => None,
            };
            hub::run(hub, &network, listener, shutdown_signal()).await.map_err(|e| anyhow!(e))?;
        }
        Command::Bank { dir, bic, hub, listen, data, metrics_addr, retention_secs } => {
            let config = bank::BankConfig { retention: Duration::from_secs(retention_secs) };
            config.validate().map_err(|e| anyhow!("--retention-secs {retention_secs}: {e}"))?;
            serve_metrics(metrics_addr)?;
            let bic = parse_bic(&bic, "--bic")?;
            let network = NetworkDir::new(dir);
            let directory = Directory::load(network.root())?;
            let identity = network.signing_identity(Role::Bank(bic))?;
            let data = data.unwrap_or_else(|| network.bank_data_dir(bic));
            let bank = Bank::open_with(identity, directory, &data, config).map_err(|e| anyhow!(e))?;
            corridor::net::endpoint(&hub).map_err(|e| anyhow!("--hub: {e}"))?;
            let listener =
                TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            say!("bank {bic} listening on https://{}", listener.local_addr()?);
            bank::run(bank, &network, &hub, listener, shutdown_signal()).await.map_err(|e| anyhow!(e))?;
        }
        Command::Demo {
            banks,
            payments,
            seed,
            currency,
            json,
            data,
            narrate,
            no_pause,
            scenario,
            dashboard_addr,
            no_dashboard,
        } => {
            if narrate {
                let config = corridor::sim::narrate::NarrateConfig { pause: !no_pause, data };
                let mut out = |line: &str| say!("{line}");
                let mut pause = || {
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                };
                let summary = corridor::sim::narrate::run_narrated(&config, &mut out, &mut pause)
                    .await
                    .map_err(|e| anyhow!(e))?;
                // Like the demo: a reconciliation that finds a break is a failure.
                return Ok(if summary.reconciliation.is_clean() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            if let Some(path) = scenario {
                let scenario = corridor::sim::scenario::Scenario::load(&path).map_err(|e| anyhow!(e))?;
                let mut progress = |line: &str| {
                    if !json {
                        say!("{line}");
                    }
                };
                let summary = corridor::sim::scenario::run_scenario(&scenario, &mut progress)
                    .await
                    .map_err(|e| anyhow!(e))?;
                if json {
                    say!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    say!("{}", summary.render().trim_end());
                }
                return Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
            }
            let dashboard = (!no_dashboard).then_some(dashboard_addr);
            let config =
                DemoConfig { banks, payments, seed, currency, data, dashboard, ..DemoConfig::default() };
            let mut progress = |line: &str| {
                if !json {
                    say!("{line}");
                }
            };
            let (summary, running) = start_demo(&config, &mut progress).await.map_err(|e| anyhow!(e))?;
            if json {
                say!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                say!("{}", render(&summary).trim_end());
            }
            // At a terminal, the network stays up for the dashboard until the user is done;
            // otherwise (a script, a test) the demo ends by itself.
            if let Some(url) = running.dashboard_url().filter(|_| !json && std::io::stdin().is_terminal()) {
                say!("\nThe network and its dashboard ({url}) stay up: press Enter to stop");
                // A plain thread, not a blocking task: the runtime does not wait for it at exit.
                let (pressed, enter) = tokio::sync::oneshot::channel::<()>();
                std::thread::spawn(move || {
                    let mut line = String::new();
                    let _ = std::io::stdin().read_line(&mut line);
                    let _ = pressed.send(());
                });
                tokio::select! {
                    _ = enter => {}
                    () = shutdown_signal() => {}
                }
            }
            running.stop(&mut progress).await.map_err(|e| anyhow!(e))?;
            return Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        Command::Admin { hub, action } => administer(&hub, action).await?,
        Command::Loadgen {
            banks,
            rate,
            duration,
            payments,
            warmup,
            in_flight,
            ceiling_secs,
            seed,
            dir,
            banks_running,
            json,
        } => {
            let seconds = |value: f64, flag: &str| {
                Duration::try_from_secs_f64(value)
                    .map_err(|_| anyhow!("{flag} must be a number of seconds, 0 or more"))
            };
            let target = match dir {
                Some(dir) => {
                    let directory = Directory::load(&dir)?;
                    let banks = bank_urls(&directory, &banks_running)?;
                    Some(loadgen::Target { dir, banks })
                }
                None => None,
            };
            let config = LoadgenConfig {
                banks,
                rate_per_s: rate,
                duration: seconds(duration, "--duration")?,
                payments,
                warmup: seconds(warmup, "--warmup")?,
                in_flight_max: in_flight,
                ceiling_duration: seconds(ceiling_secs, "--ceiling-secs")?,
                seed,
                target,
            };
            let report =
                loadgen::run(&config, &|line: &str| eprintln!("{line}")).await.map_err(|e| anyhow!(e))?;
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                say!("{}", report.render());
            }
        }
        Command::Reconcile { dir, hub, banks, data, wait_secs, json } => {
            // Exit status 2 when it could not run, so that 1 always means breaks found.
            let report = match reconcile(dir, hub, banks, data, wait_secs).await {
                Ok(report) => report,
                Err(error) => {
                    eprintln!("error: cannot reconcile: {error:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            if json {
                say!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                say!("{}", report.render().trim_end());
            }
            return Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::from(1) });
        }
        Command::Track { hub, uetr } => {
            let mut client =
                tracker_client(&NetworkDir::new(&hub.dir), &hub.hub).await.map_err(|e| anyhow!(e))?;
            let tracked = client.track(pb::TrackRequest { uetr }).await.map_err(hub_status)?.into_inner();
            let p = tracked.payment.unwrap_or_default();
            let amount = if p.exchange_rate.is_empty() {
                money(p.amount.as_ref())
            } else {
                format!(
                    "{} converted at {} into {}",
                    money(p.instructed_amount.as_ref()),
                    p.exchange_rate,
                    money(p.amount.as_ref())
                )
            };
            say!("{}  {amount} from {} to {}", p.uetr, p.sender_bic, p.receiver_bic);
            for step in tracked.steps {
                say!(
                    "{}  {:<23} {:<12} {}",
                    wire::format_unix_ms(step.time_unix_ms),
                    step.step,
                    step.by_bic,
                    step.detail
                );
            }
        }
        operator => operate(operator).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn reconcile(
    dir: PathBuf,
    hub: Option<String>,
    banks: Vec<String>,
    data: Option<PathBuf>,
    wait_secs: u64,
) -> Result<corridor::reconcile::Report> {
    use corridor::reconcile::{reconcile, sources};
    let network = NetworkDir::new(dir);
    let directory = Directory::load(network.root())?;
    let Some(hub) = hub else {
        let data = data.unwrap_or_else(|| network.root().join("data"));
        let (hub, views) =
            sources::offline(&directory, &data.join("hub"), &data.join("banks")).map_err(|e| anyhow!(e))?;
        return Ok(reconcile(&hub, &views));
    };
    let nodes = bank_urls(&directory, &banks)?;
    let wait = std::time::Duration::from_secs(wait_secs);
    sources::reconcile_live(&network, &hub, &nodes, wait).await.map_err(|e| anyhow!(e))
}

fn serve_metrics(addr: Option<SocketAddr>) -> Result<()> {
    if let Some(addr) = addr {
        corridor::metrics::serve(addr).map_err(|e| anyhow!(e))?;
        eprintln!("metrics on http://{addr}/metrics");
    }
    Ok(())
}

/// `BIC=URL` arguments, each BIC a participant of `directory`.
fn bank_urls(directory: &Directory, banks: &[String]) -> Result<Vec<(Bic, String)>> {
    let mut nodes = Vec::new();
    for bank in banks {
        let (bic, url) = bank.split_once('=').ok_or_else(|| anyhow!("--bank {bank:?}: expected BIC=URL"))?;
        let bic = parse_bic(bic, "--bank")?;
        if !directory.is_participant(bic) {
            bail!("--bank: {bic} is not a participant of this network");
        }
        nodes.push((bic, url.to_owned()));
    }
    Ok(nodes)
}

fn hub_status(s: tonic::Status) -> anyhow::Error {
    match s.code() {
        tonic::Code::Unimplemented => anyhow!("that server is not a Corridor hub: is --hub the hub's URL?"),
        code => anyhow!("{} ({code:?})", s.message()),
    }
}

/// The hub operator's commands.
async fn administer(hub: &HubArgs, action: AdminCommand) -> Result<()> {
    let mut client = admin_client(&NetworkDir::new(&hub.dir), &hub.hub).await.map_err(|e| anyhow!(e))?;
    let position = |response: pb::PositionResponse| position_line(&response.position.unwrap_or_default());
    match action {
        AdminCommand::Fund(a) => {
            let request =
                pb::FundRequest { participant_bic: a.participant, currency: a.currency, amount: a.amount };
            say!("{}", position(client.fund(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Defund(a) => {
            let request =
                pb::FundRequest { participant_bic: a.participant, currency: a.currency, amount: a.amount };
            say!("{}", position(client.defund(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Cap(a) => {
            let request = pb::SetNetDebitCapRequest {
                participant_bic: a.participant,
                currency: a.currency,
                cap: a.amount,
            };
            say!("{}", position(client.set_net_debit_cap(request).await.map_err(hub_status)?.into_inner()));
        }
        AdminCommand::Suspend(p) => {
            let request = pb::SuspendRequest { participant_bic: p.participant };
            let r = client.suspend(request).await.map_err(hub_status)?.into_inner();
            say!("{} is suspended", r.participant_bic);
        }
        AdminCommand::Resume(p) => {
            let request = pb::SuspendRequest { participant_bic: p.participant };
            let r = client.resume(request).await.map_err(hub_status)?.into_inner();
            say!("{} is resumed", r.participant_bic);
        }
        AdminCommand::CloseWindow => {
            let report =
                client.close_window(pb::CloseWindowRequest {}).await.map_err(hub_status)?.into_inner();
            say!("{}", report_text(&report).trim_end());
        }
        AdminCommand::Positions => {
            let r =
                client.list_positions(pb::ListPositionsRequest {}).await.map_err(hub_status)?.into_inner();
            say!("settlement: {}, open window {}", model_name(r.model), r.open_window_id);
            for p in &r.positions {
                say!("{}", position_line(p));
            }
            for fx in &r.fx_positions {
                say!("fx account {}  settled net {}", fx.currency_pair, minor(fx.settled_net, &fx.currency));
            }
        }
        AdminCommand::Reports => {
            let request = pb::ListSettlementReportsRequest {};
            let r = client.list_settlement_reports(request).await.map_err(hub_status)?.into_inner();
            say!("settlement: {}, {} closed windows", model_name(r.model), r.reports.len());
            for report in &r.reports {
                say!("{}", report_text(report).trim_end());
            }
        }
        AdminCommand::Statement { participant, currency, period } => {
            let request = pb::HubStatementRequest {
                participant_bic: participant.participant,
                currency,
                from_time_unix_ms: period.from_ms,
                to_time_unix_ms: period.to_ms,
            };
            say!(
                "{}",
                statement_text(&client.get_statement(request).await.map_err(hub_status)?.into_inner())
                    .trim_end()
            );
        }
        AdminCommand::Agreement { pair, rate, spread_bps, valid_from, valid_until } => {
            // Checked here too, so that a mistake names the flag and never reaches the hub.
            let pair = CurrencyPair::parse(&pair).map_err(|e| anyhow!("--pair: {}", e.rule))?;
            let parsed = Rate::parse(&rate).map_err(|e| anyhow!("--rate: {}", e.rule))?;
            parsed.less_spread(spread_bps).map_err(|e| anyhow!("--spread-bps: {}", e.rule))?;
            let time = |text: Option<String>, flag: &str| -> Result<i64> {
                let Some(text) = text else { return Ok(0) };
                let unix_ms = wire::parse_unix_ms(&text, flag).map_err(|e| anyhow!("{e}"))?;
                if unix_ms <= 0 {
                    bail!("{flag}: must be after 1970-01-01T00:00:00Z (got {text:?})");
                }
                Ok(unix_ms)
            };
            let (from, until) = (time(valid_from, "--valid-from")?, time(valid_until, "--valid-until")?);
            if until != 0 && until <= if from == 0 { corridor::bank::unix_ms_now() } else { from } {
                bail!("--valid-until: must be after --valid-from (which is now when not given)");
            }
            let agreement = pb::RateAgreement {
                currency_pair: pair.to_string(),
                rate,
                spread_bps,
                valid_from_unix_ms: from,
                valid_until_unix_ms: until,
                applied_rate: String::new(),
            };
            let request = pb::SetAgreementRequest { agreement: Some(agreement) };
            let r = client.set_agreement(request).await.map_err(hub_status)?.into_inner();
            say!("{}", agreement_line(&r.agreement.unwrap_or_default()));
        }
        AdminCommand::Agreements => {
            let request = pb::ListAgreementsRequest {};
            let r = client.list_agreements(request).await.map_err(hub_status)?.into_inner();
            if r.agreements.is_empty() {
                say!("no rate agreements");
            }
            let now = corridor::bank::unix_ms_now();
            for line in agreements_table(&r.agreements, now) {
                say!("{line}");
            }
        }
    }
    Ok(())
}

/// `RUB/IRR  rate 512.25 less 25 bps = applied rate 510.969375, in force from ... until ...`.
fn agreement_line(a: &pb::RateAgreement) -> String {
    format!(
        "{}  rate {} less {} bps = applied rate {}, in force from {} {}",
        a.currency_pair,
        a.rate,
        a.spread_bps,
        a.applied_rate,
        wire::format_unix_ms(a.valid_from_unix_ms),
        match a.valid_until_unix_ms {
            0 => "without end".to_owned(),
            until => format!("until {}", wire::format_unix_ms(until)),
        }
    )
}

/// The agreements as a table with a header, each said to be in force or not at `now`.
fn agreements_table(agreements: &[pb::RateAgreement], now: i64) -> Vec<String> {
    if agreements.is_empty() {
        return Vec::new();
    }
    let rows: Vec<[String; 7]> = agreements
        .iter()
        .map(|a| {
            let until = a.valid_until_unix_ms;
            let state = if now < a.valid_from_unix_ms {
                "not yet"
            } else if until != 0 && now >= until {
                "expired"
            } else {
                "in force"
            };
            [
                a.currency_pair.clone(),
                a.rate.clone(),
                format!("{} bps", a.spread_bps),
                a.applied_rate.clone(),
                wire::format_unix_ms(a.valid_from_unix_ms),
                if until == 0 { "-".to_owned() } else { wire::format_unix_ms(until) },
                state.to_owned(),
            ]
        })
        .collect();
    let header =
        ["pair", "rate", "spread", "applied rate", "valid from", "valid until", "now"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    [header].iter().chain(&rows).map(|row| table_row(row, &widths)).collect()
}

/// Cells padded to `widths`, two spaces apart, without trailing spaces.
fn table_row(cells: &[String], widths: &[usize]) -> String {
    let padded: Vec<String> =
        cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
    padded.join("  ").trim_end().to_owned()
}

fn model_name(model: i32) -> &'static str {
    match pb::SettlementModel::try_from(model) {
        Ok(pb::SettlementModel::DeferredNet) => "deferred net",
        _ => "gross",
    }
}

fn minor(minor_units: i64, currency: &str) -> String {
    money(Some(&pb::Money { minor_units, currency: currency.to_owned() }))
}

fn position_line(p: &pb::Position) -> String {
    let c = &p.currency;
    let suspended = if p.suspended { "  SUSPENDED" } else { "" };
    if c.is_empty() {
        return format!("{}{suspended}", p.participant_bic);
    }
    format!(
        "{}  available {}  (liquidity {}, net debit cap {}, reserved {}, window net {}; settled net {}){suspended}",
        p.participant_bic,
        minor(p.available, c),
        minor(p.liquidity, c),
        minor(p.net_debit_cap, c),
        minor(p.reserved, c),
        minor(p.window_net, c),
        minor(p.settled_net, c),
    )
}

fn report_text(r: &pb::SettlementReport) -> String {
    let mut text = format!(
        "window {} ({} to {})\n",
        r.window_id,
        wire::format_unix_ms(r.opened_unix_ms),
        wire::format_unix_ms(r.closed_unix_ms)
    );
    for l in &r.lines {
        let (c, net) = (&l.currency, l.net);
        text += &format!(
            "  {}  sent {}  received {}  net {}\n",
            l.participant_bic,
            minor(l.sent, c),
            minor(l.received, c),
            minor(net, c)
        );
    }
    for fx in &r.fx_lines {
        text += &format!("  fx account {}  net {}\n", fx.currency_pair, minor(fx.settled_net, &fx.currency));
    }
    for t in &r.totals {
        let c = &t.currency;
        text += &format!(
            "  {c}: {} payments, gross {}, net {}, netting saved {}\n",
            t.payments,
            minor(t.gross, c),
            minor(t.net, c),
            minor(t.saved, c)
        );
    }
    text
}

fn statement_text(s: &pb::Statement) -> String {
    let mut text =
        format!("statement of {}\n  opening balance {}\n", s.account, money(s.opening_balance.as_ref()));
    for e in &s.entries {
        let direction = if e.direction == pb::EntryDirection::Crdt as i32 { "CRDT" } else { "DBIT" };
        text += &format!(
            "  {}  {direction}  {:>20}  {}\n",
            wire::format_unix_ms(e.booking_time_unix_ms),
            money(e.amount.as_ref()),
            e.uetr
        );
    }
    text + &format!("  closing balance {}\n", money(s.closing_balance.as_ref()))
}

/// The commands that drive a bank node's operator API.
async fn operate(command: Command) -> Result<()> {
    let status = |s: tonic::Status| match s.code() {
        tonic::Code::Unimplemented => {
            anyhow!("that server does not offer the bank operator API: is --bank the URL of a bank node?")
        }
        code if s.message().is_empty() => anyhow!("{} ({code:?})", code.description()),
        code => anyhow!("{} ({code:?})", s.message()),
    };
    match command {
        Command::OpenAccount { bank, account, currency, name, deposit } => {
            let mut client = connect(&bank).await?;
            let request =
                pb::OpenAccountRequest { account_id: account, currency, name, opening_deposit: deposit };
            let account =
                client.open_account(request).await.map_err(status)?.into_inner().account.unwrap_or_default();
            say!("opened {} with {}", account.id, money(account.balance.as_ref()));
        }
        Command::BlockAccount { bank, account, unblock } => {
            let mut client = connect(&bank).await?;
            let request = pb::SetAccountBlockedRequest { account_id: account, blocked: !unblock };
            let account = client
                .set_account_blocked(request)
                .await
                .map_err(status)?
                .into_inner()
                .account
                .unwrap_or_default();
            say!("{} is {}", account.id, if account.blocked { "blocked" } else { "unblocked" });
        }
        Command::Pay {
            bank,
            from,
            to_bank,
            to,
            amount,
            currency,
            name,
            remittance,
            settlement_currency,
            quote,
        } => {
            let mut client = connect(&bank).await?;
            let request = pb::SubmitPaymentRequest {
                debtor_account: from,
                creditor_agent_bic: to_bank,
                creditor_name: name.unwrap_or_else(|| to.clone()),
                creditor_account: to,
                amount,
                currency,
                remittance_information: remittance,
                end_to_end_id: String::new(),
                settlement_currency: settlement_currency.unwrap_or_default(),
                quote_id: quote.unwrap_or_default(),
            };
            let payment = client
                .submit_payment(request)
                .await
                .map_err(status)?
                .into_inner()
                .payment
                .unwrap_or_default();
            say!("{}", payment.uetr);
        }
        Command::Quote { bank, amount, currency, to_currency } => {
            // The amount is decimal text; the request carries minor units.
            let code = Currency::parse(&currency).map_err(|e| anyhow!("--currency: {}", e.rule))?;
            let instructed =
                corridor::model::Amount::parse(&amount, code).map_err(|e| anyhow!("--amount: {}", e.rule))?;
            let mut client = connect(&bank).await?;
            let request = pb::QuoteRequest {
                instructed_amount: Some(wire::money_of_amount(&instructed)),
                settlement_currency: to_currency,
            };
            let q = client.get_quote(request).await.map_err(status)?.into_inner();
            say!(
                "{}  {} -> {} at {}, firm until {}",
                q.quote_id,
                money(q.instructed_amount.as_ref()),
                money(q.settlement_amount.as_ref()),
                q.exchange_rate,
                wire::format_unix_ms(q.expires_unix_ms)
            );
        }
        Command::Return { bank, uetr, reason, info } => {
            let mut client = connect(&bank).await?;
            let request =
                pb::ReturnPaymentRequest { uetr, reason_code: reason, additional_information: info };
            let response = client.return_payment(request).await.map_err(status)?;
            say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
        }
        Command::Recall { bank, uetr, reason, info } => {
            let mut client = connect(&bank).await?;
            let request =
                pb::RecallPaymentRequest { uetr, reason_code: reason, additional_information: info };
            let response = client.recall_payment(request).await.map_err(status)?;
            say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
        }
        Command::AnswerRecall { bank, uetr, accept, refuse: _, reason, info } => {
            let mut client = connect(&bank).await?;
            let request = pb::AnswerRecallRequest {
                uetr,
                accept,
                reason_code: reason.unwrap_or_default(),
                additional_information: info,
            };
            let response = client.answer_recall(request).await.map_err(status)?;
            say!("{}", payment_line(&response.into_inner().payment.unwrap_or_default()));
        }
        Command::Status { bank, uetr } => {
            let mut client = connect(&bank).await?;
            let response = client.get_payment(pb::GetPaymentRequest { uetr }).await.map_err(status)?;
            let p = response.into_inner().payment.unwrap_or_default();
            say!("{}", payment_line(&p));
        }
        Command::Payments { bank } => {
            let mut client = connect(&bank).await?;
            let response = client.list_payments(pb::ListPaymentsRequest {}).await.map_err(status)?;
            for p in response.into_inner().payments {
                say!("{}", payment_line(&p));
            }
        }
        Command::Balances { bank } => {
            let mut client = connect(&bank).await?;
            let response =
                client.list_accounts(pb::ListAccountsRequest {}).await.map_err(status)?.into_inner();
            for a in &response.accounts {
                let blocked = if a.blocked { "  (blocked)" } else { "" };
                say!("{:<24} {:>20}{blocked}", a.id, money(a.balance.as_ref()));
            }
            say!("ledger balances: {}", if response.ledger_balanced { "yes" } else { "NO" });
        }
        Command::Statement { bank, account, currency, period } => {
            let mut client = connect(&bank).await?;
            let request = pb::GetStatementRequest {
                account_id: account,
                currency,
                from_time_unix_ms: period.from_ms,
                to_time_unix_ms: period.to_ms,
            };
            say!(
                "{}",
                statement_text(&client.get_statement(request).await.map_err(status)?.into_inner()).trim_end()
            );
        }
        _ => bail!("not an operator command"),
    }
    Ok(())
}

async fn connect(
    args: &BankArgs,
) -> Result<pb::bank_service_client::BankServiceClient<tonic::transport::Channel>> {
    operator_client(&NetworkDir::new(&args.dir), &args.bank).await.map_err(|e| anyhow!(e))
}

fn money(money: Option<&pb::Money>) -> String {
    let Some(money) = money else { return String::new() };
    match Currency::parse(&money.currency) {
        Ok(currency) => format!("{} {}", format_minor_units(money.minor_units, currency), currency),
        Err(_) => format!("{} minor units of {}", money.minor_units, money.currency),
    }
}

fn payment_line(p: &pb::Payment) -> String {
    let status = pb::PaymentStatus::try_from(p.status)
        .map(|s| s.as_str_name().trim_start_matches("PAYMENT_STATUS_").to_owned())
        .unwrap_or_default();
    let direction = if p.direction == pb::PaymentDirection::Incoming as i32 { "from" } else { "to" };
    let reason = if p.reason_code.is_empty() { String::new() } else { format!(" {}", p.reason_code) };
    // A converted payment: the other bank's side and the rate.
    let converted = match &p.counter_amount {
        Some(counter) if !p.exchange_rate.is_empty() => {
            format!(" ({} at {})", money(Some(counter)), p.exchange_rate)
        }
        _ => String::new(),
    };
    let returned = match pb::ReturnState::try_from(p.return_state) {
        Ok(pb::ReturnState::Returning) => format!("  returning {}", p.return_reason_code),
        Ok(pb::ReturnState::Returned) => format!("  returned {}", p.return_reason_code),
        _ => String::new(),
    };
    let recall = match pb::InvestigationStatus::try_from(p.recall_status) {
        Ok(status) if status != pb::InvestigationStatus::Unspecified => format!(
            "  recall {} {} case {}",
            status.as_str_name().trim_start_matches("INVESTIGATION_STATUS_"),
            p.recall_reason_code,
            p.recall_case_id
        ),
        _ => String::new(),
    };
    format!(
        "{}  {status}{reason}  {}{converted} {direction} {}  {}{returned}{recall}  {}",
        p.uetr,
        money(p.amount.as_ref()),
        p.counterparty_bic,
        p.creditor_account,
        p.detail
    )
}
