//! Two hubs on one log replicated on a real 3-node NATS JetStream cluster, and three
//! banks given both hubs' URLs, all the real `corridor` binary as separate processes: the
//! network of the failover tests.

use std::process::Command;
use std::time::Duration;

use super::fault_proxy::FaultProxy;
use super::nats::NatsCluster;
use super::nodes::{BANKS, Node, corridor, fund, open_accounts, settle};
use corridor::hub::AcceptedRecord;
use corridor::pb;
use corridor::store::nats::NatsLog;
use corridor::tls::{HUB_BIC, NetworkDir, Role};

pub const STREAM: &str = "corridor-failover";
/// A participant with no bank node: the test speaks its session by hand.
pub const BY_HAND: &str = "BANKINBBXXX";
/// Short, so that takeovers come quickly: renewed every 375 ms.
pub const LEASE_TTL_MS: &str = "1500";

/// A network of two hubs on one replicated log and three banks given both hubs' URLs.
pub struct Replicated {
    pub dir: tempfile::TempDir,
    pub network: NetworkDir,
    pub net_text: String,
    pub cluster: NatsCluster,
    pub hubs: Vec<Node>,
    pub banks: Vec<Node>,
    /// With [`Proxies::hubs_to_nats`]: `nats_proxies[hub][node]`, what hub `hub` reaches
    /// NATS node `node` through (empty otherwise).
    pub nats_proxies: Vec<Vec<FaultProxy>>,
    /// With [`Proxies::banks_to_hubs`]: `hub_proxies[bank][hub]`, what bank `bank` reaches
    /// hub `hub` through (empty otherwise).
    pub hub_proxies: Vec<Vec<FaultProxy>>,
}

/// Where [`Replicated::start_with`] puts fault proxies, so that a test can make partitions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Proxies {
    /// Each hub reaches each NATS node through a proxy of its own: its `--log` names the
    /// proxies, never the nodes.
    pub hubs_to_nats: bool,
    /// Each bank reaches each hub through a proxy of its own: its `--hub` names the proxies.
    /// (A standby names the active hub's own URL, which such a bank does not know: it tries
    /// its next URL instead.)
    pub banks_to_hubs: bool,
}

impl Replicated {
    /// The cluster, then hub 0 (which takes the lease), then hub 1 (standby), funds, banks
    /// and their customers' accounts. `None` when `nats-server` is missing (the test then
    /// passes, having said so).
    pub async fn start() -> Option<Self> {
        Self::start_with(Proxies::default()).await
    }

    /// Like [`Replicated::start`], with fault proxies where `proxies` says.
    pub async fn start_with(proxies: Proxies) -> Option<Self> {
        let cluster = NatsCluster::start(3)?;
        let dir = tempfile::tempdir().unwrap();
        let net = dir.path().join("net");
        let net_text = net.to_str().unwrap().to_owned();
        let participants = format!("{},{BY_HAND}", BANKS.join(","));
        corridor(&["pki", "init", "--dir", &net_text, "--participants", &participants]);
        let network = NetworkDir::new(&net);
        let servers: Vec<String> = cluster.servers().split(',').map(str::to_owned).collect();
        let nats_proxies: Vec<Vec<FaultProxy>> = if proxies.hubs_to_nats {
            (0..2).map(|_| servers.iter().map(|server| FaultProxy::start(server)).collect()).collect()
        } else {
            Vec::new()
        };
        let mut hubs: Vec<Node> = ["hub-a", "hub-b"]
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let log = match nats_proxies.get(index) {
                    Some(through) => {
                        let addresses: Vec<String> = through.iter().map(FaultProxy::addr).collect();
                        format!("nats://{}", addresses.join(","))
                    }
                    None => format!("nats://{}", cluster.servers()),
                };
                let data = dir.path().join(name);
                let args = [
                    "hub",
                    "--dir",
                    &net_text,
                    "--data",
                    data.to_str().unwrap(),
                    "--log",
                    &log,
                    "--stream",
                    STREAM,
                    "--lease-ttl-ms",
                    LEASE_TTL_MS,
                ]
                .map(String::from);
                Node::new(name, args.to_vec(), dir.path())
            })
            .collect();
        // Blocking until each listens: off the async threads, which run the fault proxies.
        tokio::task::block_in_place(|| hubs[0].start());
        wait_until_serving(&network, &hubs[0]).await;
        tokio::task::block_in_place(|| hubs[1].start());
        fund(&network, &hubs[0].url(), BANKS.into_iter().chain([BY_HAND])).await;
        let hub_proxies: Vec<Vec<FaultProxy>> = if proxies.banks_to_hubs {
            BANKS.iter().map(|_| hubs.iter().map(|hub| FaultProxy::start(&hub.url())).collect()).collect()
        } else {
            Vec::new()
        };
        let banks: Vec<Node> = BANKS
            .iter()
            .enumerate()
            .map(|(index, bic)| {
                let urls: Vec<String> = match hub_proxies.get(index) {
                    Some(through) => through.iter().map(FaultProxy::url).collect(),
                    None => hubs.iter().map(Node::url).collect(),
                };
                let hub_urls = urls.join(",");
                let args = ["bank", "--dir", &net_text, "--bic", bic, "--hub", &hub_urls].map(String::from);
                let mut node = Node::new(bic, args.to_vec(), dir.path());
                node.start();
                node
            })
            .collect();
        open_accounts(&network, &banks).await;
        Some(Self { dir, network, net_text, cluster, hubs, banks, nats_proxies, hub_proxies })
    }

    /// Which hub serves banks now (its health says SERVING), if one does.
    pub async fn active(&self) -> Option<usize> {
        for (index, hub) in self.hubs.iter().enumerate() {
            if hub.is_running() && serving(&self.network, &hub.url()).await {
                return Some(index);
            }
        }
        None
    }

    /// Starts again every hub whose process ended (by itself, or reaped by the test after
    /// it did), after printing how and the end of what it said: a hub that lost its lease
    /// (or could not renew it in time) stops by design, and in the real world a supervisor
    /// starts it again; it rejoins as a standby. Needs the NATS servers' quorum (a hub
    /// opens the log before it listens). Returns which hubs it started.
    pub fn restart_exited_hubs(&mut self) -> Vec<usize> {
        let mut restarted = Vec::new();
        for (index, hub) in self.hubs.iter_mut().enumerate() {
            if let Some(status) = hub.exited() {
                let said = hub.stderr();
                let last: Vec<&str> = said.lines().rev().take(3).collect();
                eprintln!("{} exited by itself ({status}); it said last: {last:?}", hub.name);
            }
            if hub.is_running() {
                continue;
            }
            eprintln!("starting {} again", hub.name);
            // Blocks until it listens: off the async threads, which run the fault proxies.
            tokio::task::block_in_place(|| hub.start());
            restarted.push(index);
        }
        restarted
    }

    /// Waits until a hub serves banks, starting again the hubs that exit meanwhile; which.
    pub async fn wait_for_active(&mut self, seed: u64) -> usize {
        for _ in 0..1_200 {
            self.restart_exited_hubs();
            if let Some(active) = self.active().await {
                return active;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let said: Vec<String> =
            self.hubs.iter().map(|hub| format!("{}:\n{}", hub.name, hub.stderr())).collect();
        panic!("seed {seed}: no hub became active; the hubs said:\n{}", said.join("\n"));
    }

    /// Stops every bank, then every hub still running (one that exited by itself, as a
    /// hub that lost its lease does, stays stopped): what the offline checks read.
    pub fn stop_all(&mut self) {
        for bank in &mut self.banks {
            bank.stop();
        }
        for hub in &mut self.hubs {
            if let Some(status) = hub.exited() {
                eprintln!("{} had exited by itself ({status})", hub.name);
            }
            hub.stop();
        }
    }

    /// Waits until every payment any bank knows is final.
    pub async fn settle(&self, seed: u64) {
        settle(&self.network, &self.banks, seed).await;
    }

    /// The reconciler, live against the active hub and every bank, as a user runs it:
    /// asserts it finds no break.
    pub async fn reconcile(&self, seed: u64) {
        self.reconcile_scoped(seed, false).await;
    }

    /// [`Replicated::reconcile`] with `--participants` naming the three banks when
    /// `banks_only`: for a test that also spoke as [`BY_HAND`], whose side the reconciler
    /// cannot read (it then lists that participant as not checked, not as a break).
    pub async fn reconcile_scoped(&self, seed: u64, banks_only: bool) {
        let active = self.active().await.expect("a hub is active");
        let mut args = vec![
            "reconcile".to_owned(),
            "--dir".into(),
            self.net_text.clone(),
            "--hub".into(),
            self.hubs[active].url(),
        ];
        for (bic, bank) in BANKS.iter().zip(&self.banks) {
            args.extend(["--bank".to_owned(), format!("{bic}={}", bank.url())]);
        }
        if banks_only {
            args.extend(["--participants".to_owned(), BANKS.join(",")]);
        }
        args.push("--json".into());
        let output = Command::new(env!("CARGO_BIN_EXE_corridor")).args(&args).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}: {}", String::from_utf8_lossy(&output.stderr)));
        assert_eq!(report["breaks"], serde_json::json!([]), "seed {seed}: {report:#}");
        assert_eq!(output.status.code(), Some(0), "seed {seed}: {report:#}");
    }

    /// Waits until the standby, following the log, holds the active hub's view: the same
    /// positions and the same track of `uetr`, times included (replay takes every time
    /// from the log, none from the standby's clock). Asserts it comes to that.
    pub async fn standby_agrees(&self, uetr: &str, seed: u64) {
        let active = self.active().await.expect("a hub is active");
        let standby = 1 - active;
        let view = |url: String| {
            let network = self.network.clone();
            let uetr = uetr.to_owned();
            async move {
                let mut admin = corridor::net::admin_client(&network, &url).await.ok()?;
                let positions = admin.list_positions(pb::ListPositionsRequest {}).await.ok()?.into_inner();
                let mut tracker = corridor::net::tracker_client(&network, &url).await.ok()?;
                let track =
                    tracker.track(pb::TrackRequest { uetr, this_hub_only: false }).await.ok()?.into_inner();
                Some((positions, track))
            }
        };
        let expected = view(self.hubs[active].url()).await.expect("the active hub answers");
        let mut seen = None;
        for _ in 0..200 {
            seen = view(self.hubs[standby].url()).await;
            if seen.as_ref() == Some(&expected) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "seed {seed}: the standby's view never matched the active hub's:\n{seen:#?}\nagainst\n{expected:#?}"
        );
    }

    /// Every message the hubs accepted, read from the replicated log.
    pub fn hub_messages(&self) -> Vec<AcceptedRecord> {
        let log = NatsLog::open(&self.cluster.servers(), STREAM, &format!("hub {HUB_BIC}"), 3).unwrap();
        corridor::hub::journal::accepted(&log).unwrap()
    }
}

/// Whether the hub at `url` says its bank service is SERVING (the active hub does; a
/// standby says NOT_SERVING).
pub async fn serving(network: &NetworkDir, url: &str) -> bool {
    let Ok(channel) = corridor::net::connect(network, Role::Operator, url).await else { return false };
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: corridor::pb::hub_service_server::SERVICE_NAME.into(),
    };
    match tokio::time::timeout(Duration::from_secs(2), health.check(request)).await {
        Ok(Ok(response)) => {
            response.into_inner().status
                == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        }
        _ => false,
    }
}

pub async fn wait_until_serving(network: &NetworkDir, hub: &Node) {
    for _ in 0..600 {
        if serving(network, &hub.url()).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{} never became the active hub", hub.name);
}
