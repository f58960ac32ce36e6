//! A hub and banks in one process, each on its own loopback port.

use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::bank::{self, Bank};
use crate::directory::Directory;
use crate::hub::{self, Hub, HubConfig};
use crate::model::Bic;
use crate::net::{admin_client, operator_client};
use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::pb::hub_admin_service_client::HubAdminServiceClient;
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
    /// The hub's state (`None` only while it restarts).
    hub: Option<Hub>,
    /// URL of the hub.
    pub hub_url: String,
    /// The running banks.
    pub banks: Vec<LocalBank>,
    config: HubConfig,
    /// URL of the hub's link listener, when it accepts links ([`LocalNetwork::accept_links`]).
    pub link_url: Option<String>,
    /// Settings of the bank nodes started from now on (the default, on the hub's clock,
    /// unless a test sets it).
    pub bank_config: bank::BankConfig,
    shutdown: CancellationToken,
    hub_task: JoinHandle<Result<(), String>>,
}

/// What banks accept across a link here: every message a payment's story has.
const LINKED_TYPES: [crate::model::MessageType; 5] = {
    use crate::model::MessageType::*;
    [Pacs008, Pacs002, Pacs004, Camt056, Camt029]
};

/// The terms two local networks link on ([`link_networks`]).
#[derive(Clone, Debug)]
pub struct LinkTerms {
    /// The first network's link identity, name and currency.
    pub a: (Bic, String, crate::model::Currency),
    /// The second network's.
    pub b: (Bic, String, crate::model::Currency),
    /// Units of b's currency per unit of a's, and the other way.
    pub rates: (crate::model::Rate, crate::model::Rate),
    /// The swap line's cap on each side, each in its own currency.
    pub caps: (crate::model::Amount, crate::model::Amount),
}

/// Links two local networks as their operators would by hand: each takes a link
/// identity, `b` accepts links, each adds the other (`a` dialling `b`), and both hubs
/// restart with the link.
pub async fn link_networks(
    a: &mut LocalNetwork,
    b: &mut LocalNetwork,
    terms: &LinkTerms,
) -> Result<(), String> {
    use crate::model::CurrencyPair;
    use crate::tls::link::LinkConfig;
    let err = |e: crate::tls::PkiError| e.to_string();
    for (network, (bic, name, currency)) in [(&*a, &terms.a), (&*b, &terms.b)] {
        if network.network.link_identity().map_err(err)?.is_none() {
            tls::link::init(network.network.root(), *bic, name, *currency).map_err(err)?;
        }
    }
    let b_url = b.accept_links().await?;
    let (a_bundle, b_bundle) = (a.network.link_bundle().map_err(err)?, b.network.link_bundle().map_err(err)?);
    let pair = |from, to| CurrencyPair::new(from, to).map_err(|e| e.to_string());
    let (a_currency, b_currency) = (terms.a.2, terms.b.2);
    let at_a = LinkConfig {
        peer: b_bundle,
        peer_url: Some(b_url),
        rate_out: (pair(a_currency, b_currency)?, terms.rates.0),
        rate_in: (pair(b_currency, a_currency)?, terms.rates.1),
        cap: terms.caps.0,
        accepts: LINKED_TYPES.to_vec(),
    };
    let at_b = LinkConfig {
        peer: a_bundle,
        peer_url: None,
        rate_out: (pair(b_currency, a_currency)?, terms.rates.1),
        rate_in: (pair(a_currency, b_currency)?, terms.rates.0),
        cap: terms.caps.1,
        accepts: LINKED_TYPES.to_vec(),
    };
    b.network.add_link(&at_b).map_err(err)?;
    a.network.add_link(&at_a).map_err(err)?;
    b.restart_hub().await?;
    a.restart_hub().await
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

    /// Starts a hub for an existing network directory. The banks started later read
    /// the hub's clock (`config.clock`): one process, one time of day.
    pub async fn start_hub(network: NetworkDir, config: HubConfig) -> Result<Self, String> {
        let (listener, hub_url) = bind_loopback().await?;
        let (hub, shutdown, hub_task) = spawn_hub(&network, config.clone(), listener, None).await?;
        let bank_config = bank::BankConfig { clock: config.clock.clone(), ..bank::BankConfig::default() };
        Ok(Self {
            network,
            hub: Some(hub),
            hub_url,
            banks: Vec::new(),
            config,
            link_url: None,
            bank_config,
            shutdown,
            hub_task,
        })
    }

    /// The hub's state (for tests that look inside).
    pub fn hub(&self) -> &Hub {
        self.hub.as_ref().expect("the hub is running")
    }

    /// Stops the hub gracefully and starts it again from its journal, on the same address.
    pub async fn restart_hub(&mut self) -> Result<(), String> {
        self.stop_hub().await?;
        self.start_hub_again().await
    }

    /// Stops the hub gracefully (its journal stays for [`LocalNetwork::start_hub_again`]).
    pub async fn stop_hub(&mut self) -> Result<(), String> {
        self.shutdown.cancel();
        (&mut self.hub_task).await.map_err(|e| e.to_string())??;
        // Let go of the old hub (and its journal) before a new one opens the journal.
        if let Some(hub) = self.hub.take() {
            hub.close(HUB_CLOSE_WAIT).await?;
        }
        Ok(())
    }

    /// Starts the stopped hub again from its journal, on the same addresses.
    pub async fn start_hub_again(&mut self) -> Result<(), String> {
        let rebind = |url: &str| {
            let addr = url.trim_start_matches("https://").to_owned();
            async move { TcpListener::bind(&addr).await.map_err(|e| format!("cannot bind {addr} again: {e}")) }
        };
        let listener = rebind(&self.hub_url).await?;
        let link_listener = match &self.link_url {
            Some(url) => Some(rebind(url).await?),
            None => None,
        };
        let (hub, shutdown, hub_task) =
            spawn_hub(&self.network, self.config.clone(), listener, link_listener).await?;
        (self.hub, self.shutdown, self.hub_task) = (Some(hub), shutdown, hub_task);
        Ok(())
    }

    /// Gives the hub a link listener of its own, where it accepts linked hubs from its
    /// next start on, and returns the listener's URL.
    pub async fn accept_links(&mut self) -> Result<String, String> {
        if let Some(url) = &self.link_url {
            return Ok(url.clone());
        }
        let (listener, url) = bind_loopback().await?;
        drop(listener);
        self.link_url = Some(url.clone());
        Ok(url)
    }

    /// Stops bank `bic` gracefully (its data stays for a later `start_bank`).
    pub async fn stop_bank(&mut self, bic: Bic) -> Result<(), String> {
        let index = self.index_of(bic);
        self.banks.remove(index).stop().await
    }

    /// Index in `banks` of the running bank `bic`.
    pub fn index_of(&self, bic: Bic) -> usize {
        self.banks.iter().position(|b| b.bic == bic).unwrap_or_else(|| panic!("{bic} is not running"))
    }

    /// Starts a bank node for `bic` and returns its index in `banks`.
    pub async fn start_bank(&mut self, bic: Bic) -> Result<usize, String> {
        let hub_url = self.hub_url.clone();
        self.start_bank_via(bic, &hub_url).await
    }

    /// Starts a bank node for `bic` that reaches the hub at `hub_url` (a relay in front of
    /// the hub, for tests that break the link; or several hubs, `URL,URL`) and returns its
    /// index in `banks`.
    pub async fn start_bank_via(&mut self, bic: Bic, hub_url: &str) -> Result<usize, String> {
        let hubs = bank::HubUrls::parse(hub_url)?;
        let directory = self.network.directory().map_err(|e| e.to_string())?;
        let config = self.bank_config.clone();
        let identity = self
            .network
            .signing_identity_at(Role::Bank(bic), config.clock.unix_ms())
            .map_err(|e| e.to_string())?;
        let data = self.network.bank_data_dir(bic);
        // Opening may wait for a previous instance to let go of the store: not on the reactor.
        let bank = tokio::task::spawn_blocking(move || Bank::open_with(identity, directory, &data, config))
            .await
            .map_err(|e| e.to_string())??;
        let (listener, url) = bind_loopback().await?;
        let shutdown = CancellationToken::new();
        let task = {
            let (bank, network, shutdown) = (bank.clone(), self.network.clone(), shutdown.clone());
            tokio::spawn(async move {
                bank::run(bank, &network, &hubs, listener, shutdown.cancelled_owned()).await
            })
        };
        self.banks.push(LocalBank { bic, bank, url, shutdown, task });
        Ok(self.banks.len() - 1)
    }

    /// The hub operator's admin client.
    pub async fn admin(&self) -> Result<HubAdminServiceClient<Channel>, String> {
        admin_client(&self.network, &self.hub_url).await
    }

    /// Funds every participant of the directory with `amount` of `currency` at the hub
    /// (through the admin service, as an operator would).
    pub async fn fund_all(&self, currency: &str, amount: &str) -> Result<(), String> {
        let directory = Directory::load(self.network.root()).map_err(|e| e.to_string())?;
        let mut admin = self.admin().await?;
        for (bic, _) in directory.participants() {
            let request = pb::FundRequest {
                participant_bic: bic.to_string(),
                currency: currency.into(),
                amount: amount.into(),
            };
            admin.fund(request).await.map_err(|e| format!("funding {bic}: {}", e.message()))?;
        }
        Ok(())
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
        self.hub_task.await.map_err(|e| e.to_string())??;
        // Returns once the journal is closed, so that it can be read or reopened at once.
        match self.hub {
            Some(hub) => hub.close(HUB_CLOSE_WAIT).await,
            None => Ok(()),
        }
    }
}

type HubTask = JoinHandle<Result<(), String>>;

/// How long a stopped hub's last sessions and tasks may take to let go of it.
const HUB_CLOSE_WAIT: Duration = Duration::from_secs(30);

async fn spawn_hub(
    network: &NetworkDir,
    config: HubConfig,
    listener: TcpListener,
    link_listener: Option<TcpListener>,
) -> Result<(Hub, CancellationToken, HubTask), String> {
    let directory = network.directory().map_err(|e| e.to_string())?;
    let identity =
        network.signing_identity_at(Role::Hub, config.clock.unix_ms()).map_err(|e| e.to_string())?;
    let data = network.hub_data_dir();
    // Opening may wait for a previous instance to let go of the journal: not on the reactor.
    let opened = tokio::task::spawn_blocking(move || Hub::open(config, directory, identity, &data));
    let hub = opened.await.map_err(|e| e.to_string())??;
    if let Some(links) = hub::link::HubLinks::load(network)? {
        hub.set_links(links).await?;
    }
    let shutdown = CancellationToken::new();
    let task = {
        let (hub, network, shutdown) = (hub.clone(), network.clone(), shutdown.clone());
        tokio::spawn(async move {
            let dialled = hub::link::dial_links(&hub, shutdown.clone())?;
            let accepting = link_listener.map(|listener| {
                let (hub, network, shutdown) = (hub.clone(), network.clone(), shutdown.clone());
                tokio::spawn(async move {
                    hub::run_link_listener(hub, &network, listener, shutdown.cancelled_owned()).await
                })
            });
            let served = hub::run(hub, &network, listener, shutdown.cancelled_owned()).await;
            for task in dialled {
                let _ = task.await;
            }
            if let Some(task) = accepting {
                task.await.map_err(|e| e.to_string())??;
            }
            served
        })
    };
    Ok((hub, shutdown, task))
}
