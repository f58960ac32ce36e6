//! `corridor hub` and `corridor bank`: running the relay hub and a bank node.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use corridor::bank::{self, Bank};
use corridor::directory::Directory;
use corridor::hub::{self, Hub, HubConfig, SettlementModel};
use corridor::tls::{NetworkDir, Role};
use tokio::net::TcpListener;

use super::{parse_bic, shutdown_signal};

/// The arguments of `corridor hub`.
#[derive(Args)]
pub struct HubNodeArgs {
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

/// The arguments of `corridor bank`.
#[derive(Args)]
pub struct BankNodeArgs {
    /// Network directory made by `corridor pki init`.
    #[arg(long)]
    dir: PathBuf,
    /// This bank's BIC.
    #[arg(long)]
    bic: String,
    /// The hub's URL, for example https://127.0.0.1:7000; or the URLs of an active hub
    /// and its standbys, separated by commas: the bank starts with the first and moves to
    /// the next, or to the active hub a standby names, when a hub fails it.
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
}

/// Runs the hub until Ctrl-C or SIGTERM.
pub async fn run_hub(args: HubNodeArgs) -> Result<()> {
    let HubNodeArgs {
        dir,
        listen,
        payload_size_max_bytes,
        data,
        settlement,
        metrics_addr,
        dashboard_addr,
        limits,
    } = args;
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
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let shutdown = shutdown_signal()?;
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
    hub::run(hub, &network, listener, shutdown).await.map_err(|e| anyhow!(e))
}

/// Runs a bank node until Ctrl-C or SIGTERM.
pub async fn run_bank(args: BankNodeArgs) -> Result<()> {
    let BankNodeArgs { dir, bic, hub, listen, data, metrics_addr, retention_secs } = args;
    // Checked before anything is opened or created.
    let hubs = bank::HubUrls::parse(&hub).map_err(|e| anyhow!("--hub {hub:?}: {e}"))?;
    let config = bank::BankConfig { retention: Duration::from_secs(retention_secs), ..Default::default() };
    config.validate().map_err(|e| anyhow!("--retention-secs {retention_secs}: {e}"))?;
    serve_metrics(metrics_addr)?;
    let bic = parse_bic(&bic, "--bic")?;
    let network = NetworkDir::new(dir);
    let directory = Directory::load(network.root())?;
    let identity = network.signing_identity(Role::Bank(bic))?;
    let data = data.unwrap_or_else(|| network.bank_data_dir(bic));
    let bank = Bank::open_with(identity, directory, &data, config).map_err(|e| anyhow!(e))?;
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let shutdown = shutdown_signal()?;
    say!("bank {bic} listening on https://{}", listener.local_addr()?);
    bank::run(bank, &network, &hubs, listener, shutdown).await.map_err(|e| anyhow!(e))
}

fn serve_metrics(addr: Option<SocketAddr>) -> Result<()> {
    if let Some(addr) = addr {
        corridor::metrics::serve(addr).map_err(|e| anyhow!(e))?;
        eprintln!("metrics on http://{addr}/metrics");
    }
    Ok(())
}
