//! A hub and banks in one process, each on its own loopback port.

use std::path::Path;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::bank::{self, Bank};
use crate::directory::Directory;
use crate::hub::{self, Hub, HubConfig};
use crate::model::Bic;
use crate::net;
use crate::pb::bank_service_client::BankServiceClient;
use crate::tls::{self, NetworkDir, Role};

/// A running bank node.
pub struct LocalBank {
    /// Its BIC.
    pub bic: Bic,
    /// Its state (for tests that look inside).
    pub bank: Bank,
    /// URL of its operator API.
    pub url: String,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), String>>,
}

impl LocalBank {
    /// Stops the node gracefully and waits for it.
    pub async fn stop(self) -> Result<(), String> {
        self.shutdown.cancel();
        self.task.await.map_err(|e| e.to_string())?
    }
}

/// A network running in this process.
pub struct LocalNetwork {
    /// The network directory (PKI and directory file).
    pub network: NetworkDir,
    /// The hub's state (for tests that look inside).
    pub hub: Hub,
    /// URL of the hub.
    pub hub_url: String,
    /// The running banks.
    pub banks: Vec<LocalBank>,
    shutdown: CancellationToken,
    hub_task: JoinHandle<Result<(), String>>,
}

/// Binds a loopback listener on a free port: bound before anyone connects, so no
/// caller ever waits for a server to be ready.
async fn bind_loopback() -> Result<(TcpListener, String), String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, format!("https://{addr}")))
}

impl LocalNetwork {
    /// Creates a PKI for `participants` in `dir` and starts the hub (no banks yet).
    pub async fn create(dir: &Path, participants: &[Bic]) -> Result<Self, String> {
        let network = tls::init(dir, participants).map_err(|e| e.to_string())?;
        Self::start_hub(network, HubConfig::default()).await
    }

    /// Starts a hub for an existing network directory.
    pub async fn start_hub(network: NetworkDir, config: HubConfig) -> Result<Self, String> {
        let directory = Directory::load(network.root()).map_err(|e| e.to_string())?;
        let identity = network.signing_identity(Role::Hub).map_err(|e| e.to_string())?;
        let hub = Hub::open(config, directory, identity, &network.hub_data_dir())?;
        let (listener, hub_url) = bind_loopback().await?;
        let shutdown = CancellationToken::new();
        let hub_task = {
            let (hub, network, shutdown) = (hub.clone(), network.clone(), shutdown.clone());
            tokio::spawn(async move { hub::run(hub, &network, listener, shutdown.cancelled_owned()).await })
        };
        Ok(Self { network, hub, hub_url, banks: Vec::new(), shutdown, hub_task })
    }

    /// Starts a bank node for `bic` and returns its index in `banks`.
    pub async fn start_bank(&mut self, bic: Bic) -> Result<usize, String> {
        let directory = Directory::load(self.network.root()).map_err(|e| e.to_string())?;
        let identity = self.network.signing_identity(Role::Bank(bic)).map_err(|e| e.to_string())?;
        let bank = Bank::open(identity, directory, &self.network.bank_data_dir(bic))?;
        let (listener, url) = bind_loopback().await?;
        let shutdown = CancellationToken::new();
        let task = {
            let (bank, network, hub_url, shutdown) =
                (bank.clone(), self.network.clone(), self.hub_url.clone(), shutdown.clone());
            tokio::spawn(async move {
                bank::run(bank, &network, &hub_url, listener, shutdown.cancelled_owned()).await
            })
        };
        self.banks.push(LocalBank { bic, bank, url, shutdown, task });
        Ok(self.banks.len() - 1)
    }

    /// An operator's client for bank `index`.
    pub async fn operator(&self, index: usize) -> Result<BankServiceClient<Channel>, String> {
        operator_client(&self.network, &self.banks[index].url).await
    }

    /// Stops every bank, then the hub, gracefully.
    pub async fn stop(self) -> Result<(), String> {
        for bank in self.banks {
            bank.stop().await?;
        }
        self.shutdown.cancel();
        self.hub_task.await.map_err(|e| e.to_string())?
    }
}

/// An operator's client for the bank node at `url`, with the operator's certificate.
pub async fn operator_client(network: &NetworkDir, url: &str) -> Result<BankServiceClient<Channel>, String> {
    Ok(BankServiceClient::new(net::connect(network, Role::Operator, url).await?))
}
