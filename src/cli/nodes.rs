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
    /// Accept linked networks' hubs on this address (their link certificates only; see
    /// `corridor link`). Links whose configuration names the peer's URL are dialled anyway.
    #[arg(long)]
    link_listen: Option<SocketAddr>,
    #[command(flatten)]
    limits: HubLimitArgs,
    #[command(flatten)]
    replication: ReplicationArgs,
}

/// Running the hub on a log replicated on NATS JetStream, beside standby hubs.
#[derive(Args)]
pub struct ReplicationArgs {
    /// Keep the hub's log on these NATS JetStream servers instead of in its data
    /// directory: nats://HOST:PORT[,HOST:PORT...]. Hubs started with the same servers and
    /// --stream share the log: the one holding the lease serves, the others stand by.
    #[arg(long, value_name = "nats://HOST:PORT,...")]
    log: Option<String>,
    /// The log's stream name (letters, digits, - and _) [default: corridor-hub].
    #[arg(long, requires = "log")]
    stream: Option<String>,
    /// Copies of the log the NATS servers keep (1 to 5; 3 survives losing a server).
    #[arg(long, default_value_t = 3, requires = "log")]
    replicas: usize,
    /// How long the lease outlives its last renewal, in milliseconds: how soon a standby
    /// takes over from a hub that stopped (renewed every quarter of it).
    #[arg(long, default_value_t = 3000, requires = "log")]
    lease_ttl_ms: u64,
    /// The URL banks reach this hub at, which standbys name to banks
    /// [default: https://LISTEN, with the port it got].
    #[arg(long, requires = "log")]
    advertise: Option<String>,
}

impl ReplicationArgs {
    /// The replication asked for, if any; `listening` is where the hub listens.
    fn replication(&self, listening: SocketAddr) -> Result<Option<hub::replicated::Replication>> {
        let Some(log) = &self.log else { return Ok(None) };
        let servers = log.strip_prefix("nats://").ok_or_else(|| {
            anyhow!("--log: give the NATS servers as nats://HOST:PORT[,HOST:PORT...], not {log:?}")
        })?;
        let lease_ttl = std::time::Duration::from_millis(self.lease_ttl_ms);
        if !(200..=60_000).contains(&self.lease_ttl_ms) {
            return Err(anyhow!("--lease-ttl-ms: between 200 and 60000, not {}", self.lease_ttl_ms));
        }
        let advertise = match &self.advertise {
            Some(url) => {
                corridor::net::endpoint(url).map_err(|e| anyhow!("--advertise: {e}"))?;
                url.clone()
            }
            None => format!("https://{listening}"),
        };
        Ok(Some(hub::replicated::Replication {
            servers: servers.to_owned(),
            stream: self.stream.clone().unwrap_or_else(|| "corridor-hub".to_owned()),
            replicas: self.replicas,
            lease_ttl,
            advertise,
        }))
    }
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
        link_listen,
        limits,
        replication,
    } = args;
    serve_metrics(metrics_addr)?;
    let network = NetworkDir::new(dir);
    let directory = network.directory()?;
    let links = hub::link::HubLinks::load(&network).map_err(|e| anyhow!(e))?;
    if link_listen.is_some() && links.as_ref().is_none_or(|l| l.links.is_empty()) {
        return Err(anyhow!(
            "--link-listen: this network has no link (`corridor link init`, then `corridor link add`)"
        ));
    }
    if links.is_some() && replication.log.is_some() {
        return Err(anyhow!(
            "--log: a hub with links runs on its embedded log (links on a replicated hub: not yet)"
        ));
    }
    let link_listener = match link_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("--link-listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let identity = network.signing_identity(Role::Hub)?;
    let config = limits.apply(HubConfig {
        payload_size_max_bytes,
        settlement_model: settlement,
        ..HubConfig::default()
    })?;
    let data = data.unwrap_or_else(|| network.hub_data_dir());
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let replication = replication.replication(listener.local_addr()?)?;
    let shutdown = shutdown_signal()?;
    let stop = tokio_util::sync::CancellationToken::new();
    let (hub, replicated_task) = match &replication {
        None => (Hub::open(config, directory, identity, &data).map_err(|e| anyhow!(e))?, None),
        Some(replication) => {
            let (hub, replicated) =
                open_replicated(config, directory, identity, &data, replication.clone(), stop.clone())
                    .await?;
            (hub, Some(replicated))
        }
    };
    // The first line on stdout says where to connect (useful with port 0).
    say!("hub listening on https://{}", listener.local_addr()?);
    if let Some(links) = links {
        hub.set_links(links).await.map_err(|e| anyhow!(e))?;
    }
    let _dialled: Vec<_> = hub::link::dial_links(&hub, stop.clone())
        .map_err(|e| anyhow!(e))?
        .into_iter()
        .map(corridor::net::AbortOnDrop)
        .collect();
    let _link_listener = match link_listener {
        Some(listener) => {
            say!("hub accepting links on https://{}", listener.local_addr()?);
            let (hub, network, stop) = (hub.clone(), network.clone(), stop.clone());
            Some(corridor::net::AbortOnDrop(tokio::spawn(async move {
                if let Err(error) =
                    hub::run_link_listener(hub, &network, listener, stop.cancelled_owned()).await
                {
                    tracing::error!(%error, "the link listener stopped");
                }
            })))
        }
        None => None,
    };
    if let Some(replication) = &replication {
        say!(
            "hub on the replicated log {} at nats://{}: standing by until it holds the lease (it serves banks as {})",
            replication.stream,
            replication.servers,
            replication.advertise
        );
    }
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
    // A handle kept past `hub::run`: the journal closes with the last one, and closing it
    // waits for the append in flight.
    let served = hub::run(hub.clone(), &network, listener, shutdown).await.map_err(|e| anyhow!(e));
    if let (Some(_), Err(error)) = (&replication, &served) {
        // A hub that lost its lease stops at once: all it acknowledged is in the replicated
        // log already, and its journal's writer may be waiting for servers that lost their
        // quorum (or that it is cut off from), which closing it would wait for too.
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
    // A hub that gives up its lease cleanly lets a standby take over at once.
    stop.cancel();
    if let Some(task) = replicated_task {
        let _ = task.await;
    }
    served
}

/// Opens a standby hub on the replicated log, and starts what follows the log and takes
/// over when the lease is free (`hub::replicated::run_replicated`).
async fn open_replicated(
    config: HubConfig,
    directory: Directory,
    identity: corridor::crypto::SigningIdentity,
    data: &std::path::Path,
    replication: hub::replicated::Replication,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(Hub, tokio::task::JoinHandle<()>)> {
    use corridor::store::nats::{Lease, NatsLog};
    let identity_name = format!("hub {}", directory.hub());
    let open_log = {
        let (servers, stream, replicas) =
            (replication.servers.clone(), replication.stream.clone(), replication.replicas);
        move || -> Result<Box<dyn corridor::store::log::RecordLog>, corridor::store::StoreError> {
            Ok(Box::new(NatsLog::open(&servers, &stream, &identity_name, replicas)?))
        }
    };
    let data = data.to_path_buf();
    let (hub, follower) = tokio::task::spawn_blocking(move || -> Result<_> {
        let log = open_log().map_err(|e| anyhow!("--log: {e}"))?;
        let (hub, follower) =
            Hub::open_standby(config, directory, identity, &data, log).map_err(|e| anyhow!(e))?;
        Ok((hub, follower.reopen_with(Box::new(open_log))))
    })
    .await??;
    let lease = Lease::connect(
        &replication.servers,
        &replication.lease_name(),
        replication.lease_ttl,
        replication.replicas,
    )
    .await
    .map_err(|e| anyhow!("--log: {e}"))?;
    let replicated =
        tokio::spawn(hub::replicated::run_replicated(hub.clone(), follower, lease, replication, stop));
    Ok((hub, replicated))
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
    let directory = network.directory()?;
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
