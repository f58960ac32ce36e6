//! The `corridor` command line: the clap types of every command and what each does, one
//! file per group of commands, so that `main.rs` only parses and dispatches.
//!
//! - `pki`: the demo PKI (`pki init`, `pki rotate`, `pki revoke`);
//! - `nodes`: running the hub and a bank node;
//! - `operator`: a bank's operator commands (`pay`, `status`, `payments`, `balances`, ...);
//! - `edge`: payments as ISO 20022 XML or MT103 (`pay --xml`, `pay --mt103`, `export`);
//! - `admin`: the hub operator's commands (`admin ...`) and `track`;
//! - `reconcile`: `reconcile` and `audit`;
//! - `loadgen`, `demo`: the load generator and the demo (and scenarios);
//! - `iso20022`: ISO 20022 XML and MT103 files checked and translated offline;
//! - `link`: joining two networks (`link init`, `link export`, `link add`, `link list`);
//! - `output`: writing to stdout and the text shapes several commands share.

/// Writes a line to stdout. A closed pipe (`corridor payments | head`) ends the program
/// quietly, as for any Unix tool; it is not a bug.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::write_line(&format!($($arg)*))
    };
}

pub mod admin;
pub mod demo;
pub mod edge;
pub mod iso20022;
pub mod json;
pub mod link;
pub mod loadgen;
pub mod nodes;
pub mod operator;
pub mod output;
pub mod pki;
pub mod reconcile;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use corridor::directory::Directory;
use corridor::model::Bic;

/// Corridor: a payment messaging network you can run on one machine.
#[derive(Parser)]
#[command(name = "corridor", version, long_version = LONG_VERSION.as_str(), about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `corridor --version`: the version, and the curve arithmetic that signatures run on here
/// (`-V` prints the version alone).
static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}\ncurve25519 backend: {}",
        env!("CARGO_PKG_VERSION"),
        corridor::crypto::backend::curve_backend_summary()
    )
});

/// Every command; each variant's arguments live in the file of its group.
#[derive(Subcommand)]
pub enum Command {
    /// The demo PKI: network CA, TLS identities, signing keys, directory.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Run the relay hub.
    Hub(nodes::HubNodeArgs),
    /// Verify every message in a stopped hub's journal against the signing key that
    /// was valid when it was created (exit 1 if any fails).
    Audit(reconcile::AuditArgs),
    /// Run a bank node.
    Bank(nodes::BankNodeArgs),
    /// Open a customer account at a bank node.
    OpenAccount(operator::OpenAccountArgs),
    /// Block (or with --unblock, unblock) a customer account: payments to it are refused (AC06).
    BlockAccount(operator::BlockAccountArgs),
    /// Pay from a customer account to an account at another bank; prints the UETR.
    Pay(operator::PayArgs),
    /// Ask the hub, through this bank, for a firm quote: both amounts, the rate, the expiry.
    ///
    /// `pay --settlement-currency CUR --quote ID` then pays at the quote's rate, once,
    /// until it expires (`hub --quote-ttl-secs`), even if the agreement changes meanwhile.
    Quote(operator::QuoteArgs),
    /// Return a settled incoming payment to its sender (a pacs.004), with a reason.
    ///
    /// For example because the beneficiary's account is closed (AC04): the beneficiary's
    /// account is debited now, and the sender's customer gets back exactly what it paid (a
    /// converted payment is converted back at its original rate).
    Return(operator::ReturnArgs),
    /// Ask for a settled outgoing payment back (a camt.056), with a reason.
    ///
    /// The recall is an open case (PDCR) until the beneficiary's bank answers it with
    /// `answer-recall`; `status` and `track` show how it stands.
    Recall(operator::RecallArgs),
    /// Answer the open recall of an incoming payment (a camt.029): --accept or --refuse.
    ///
    /// --accept sends the funds back (a pacs.004 with reason FOCR, then CNCL); --refuse
    /// --reason CODE keeps them (RJCR) and tells the sender why.
    AnswerRecall(operator::AnswerRecallArgs),
    /// A payment's status as the bank sees it.
    Status(operator::StatusArgs),
    /// A payment's messages as the bank sent and received them, as ISO 20022 XML
    /// (AppHdr + Document) or, for the pacs.008, as an MT103. Which message each is goes
    /// to stderr.
    Export(edge::ExportArgs),
    /// Accounts and balances at a bank node.
    Balances(operator::BalancesArgs),
    /// Every payment a bank node knows.
    Payments(operator::PaymentsArgs),
    /// A camt.053-style statement of a bank's account (by default its settlement account).
    Statement(operator::StatementArgs),
    /// The hub operator's control of the hub: positions, suspensions, settlement windows,
    /// rate agreements.
    Admin(admin::AdminArgs),
    /// A payment's path through the hub, step by step with times (like a gpi tracker).
    Track(admin::TrackArgs),
    /// Prove that the hub and every bank agree: compares the hub's journal with each
    /// bank's records, live (--hub and --bank) or offline from stopped nodes' data.
    /// Exits 0 when clean, 1 when it found breaks, 2 when it could not run.
    Reconcile(reconcile::ReconcileArgs),
    /// Load-test: payments among banks, closed loop or at --rate, measured from submission
    /// to the pacs.002 at the sender, beside the machine's crypto and transport ceilings.
    /// Starts a hub and banks of its own, or drives running banks (--dir and --bank).
    Loadgen(loadgen::LoadgenArgs),
    /// Run a whole network in this process, send payments, and tell what happened.
    Demo(demo::DemoArgs),
    /// ISO 20022 XML and MT103 files, offline: `validate FILE`, `translate FILE --to xml|mt103`.
    #[command(subcommand)]
    Iso20022(iso20022::Iso20022Command),
    /// Links to other networks: this network's link identity, its bundle for a peer, the
    /// links it has configured (`init`, `export`, `add`, `list`).
    #[command(subcommand)]
    Link(link::LinkCommand),
}

impl Command {
    /// The nodes log their normal work (`info`); one-shot commands only what went wrong.
    pub fn runs_a_node(&self) -> bool {
        matches!(self, Command::Hub(_) | Command::Bank(_))
    }
}

/// `--json`, for the read commands a script parses.
#[derive(Args)]
pub struct JsonArgs {
    /// Print one JSON document instead of text (its fields: README.md, "Scripting with
    /// --json").
    #[arg(long)]
    pub json: bool,
}

/// A period `[from, to)` in Unix milliseconds; both 0 for everything.
#[derive(Args)]
pub struct PeriodArgs {
    /// Start, Unix milliseconds (inclusive).
    #[arg(long, default_value_t = 0)]
    pub from_ms: i64,
    /// End, Unix milliseconds (exclusive).
    #[arg(long, default_value_t = 0)]
    pub to_ms: i64,
}

/// `text` as a BIC, or an error that names the flag it came from.
pub fn parse_bic(text: &str, flag: &str) -> Result<Bic> {
    Bic::parse(text).map_err(|e| anyhow!("{flag}: {}", e.rule))
}

/// `BIC=URL` arguments, each BIC a participant of `directory`.
pub fn bank_urls(directory: &Directory, banks: &[String]) -> Result<Vec<(Bic, String)>> {
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

/// A future that completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are registered
/// here, before the future is first polled: a node calls this before it says where it
/// listens, so that a signal sent the moment it has said so stops it gracefully instead of
/// killing it (the signal's default action) while it starts.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
    })
}
