//! The `corridor` command line: parse, set up tracing, call the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use corridor::bank::{self, Bank};
use corridor::directory::Directory;
use corridor::hub::{self, Hub, HubConfig};
use corridor::model::{Bic, Currency, format_minor_units};
use corridor::pb;
use corridor::sim::demo::{DemoConfig, render, run_demo};
use corridor::sim::operator_client;
use corridor::tls::{self, NetworkDir, Role};
use tokio::net::TcpListener;

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
        /// Currency of every account and payment.
        #[arg(long, default_value_t = DemoConfig::default().currency)]
        currency: String,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Keep the demo's network (PKI and every node's data) in this new directory
        /// instead of a temporary one that is removed at the end.
        #[arg(long)]
        data: Option<PathBuf>,
    },
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
        Command::Hub { dir, listen, payload_size_max_bytes, data } => {
            let network = NetworkDir::new(dir);
            let directory = Directory::load(network.root())?;
            let identity = network.signing_identity(Role::Hub)?;
            let config = HubConfig { payload_size_max_bytes, ..HubConfig::default() };
            let data = data.unwrap_or_else(|| network.hub_data_dir());
            let hub = Hub::open(config, directory, identity, &data).map_err(|e| anyhow!(e))?;
            let listener =
                TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            // The first line on stdout says where to connect (useful with port 0).
            say!("hub listening on https://{}", listener.local_addr()?);
            hub::run(hub, &network, listener, shutdown_signal()).await.map_err(|e| anyhow!(e))?;
        }
        Command::Bank { dir, bic, hub, listen, data } => {
            let bic = parse_bic(&bic, "--bic")?;
            let network = NetworkDir::new(dir);
            let directory = Directory::load(network.root())?;
            let identity = network.signing_identity(Role::Bank(bic))?;
            let data = data.unwrap_or_else(|| network.bank_data_dir(bic));
            let bank = Bank::open(identity, directory, &data).map_err(|e| anyhow!(e))?;
            corridor::net::endpoint(&hub).map_err(|e| anyhow!("--hub: {e}"))?;
            let listener =
                TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
            say!("bank {bic} listening on https://{}", listener.local_addr()?);
            bank::run(bank, &network, &hub, listener, shutdown_signal()).await.map_err(|e| anyhow!(e))?;
        }
        Command::Demo { banks, payments, seed, currency, json, data } => {
            let config = DemoConfig { banks, payments, seed, currency, data };
            let mut progress = |line: &str| {
                if !json {
                    say!("{line}");
                }
            };
            let summary = run_demo(&config, &mut progress).await.map_err(|e| anyhow!(e))?;
            if json {
                say!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                say!("{}", render(&summary).trim_end());
            }
            return Ok(if summary.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        operator => operate(operator).await?,
    }
    Ok(ExitCode::SUCCESS)
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
        Command::Pay { bank, from, to_bank, to, amount, currency, name, remittance } => {
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
    format!(
        "{}  {status}{reason}  {} {direction} {}  {}  {}",
        p.uetr,
        money(p.amount.as_ref()),
        p.counterparty_bic,
        p.creditor_account,
        p.detail
    )
}
