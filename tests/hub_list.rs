//! A bank given several hub URLs (issue 22: an active hub and standbys on one replicated
//! log; `corridor bank --hub URL,URL`) finds the active hub over real gRPC with mTLS on
//! loopback ports: a standby's UNAVAILABLE naming the active hub in the metadata
//! `corridor-active-hub` sends it straight there, a hub it cannot reach sends it to the
//! next, and it never connects to a hub it was not given. Then a payment completes as
//! with one hub (DESIGN.md, "One payment, end to end"). The standbys here are small
//! servers with the hub's own certificate, answering as the wire convention says.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::bic;
use common::fault_proxy::{Direction, FaultProxy};
use common::net::*;
use corridor::net;
use corridor::pb;
use corridor::pb::hub_service_server::{HubService, HubServiceServer};
use corridor::sim::LocalNetwork;
use corridor::tls::{NetworkDir, Role};
use tokio::net::TcpListener;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// A standby hub: refuses every call with UNAVAILABLE, naming `active` as the active hub
/// when set, and counts the calls it had.
#[derive(Clone)]
struct StandbyHub {
    active: Option<String>,
    calls: Arc<AtomicUsize>,
}

impl StandbyHub {
    /// The refusal, spelt out here as the wire convention says (not by the library's
    /// helper), so that a change to either side shows.
    fn refuse(&self) -> Status {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let Some(active) = &self.active else {
            return Status::unavailable("this hub is a standby; no hub is active yet");
        };
        let mut status = Status::unavailable(format!("this hub is a standby; the active hub is {active}"));
        status.metadata_mut().insert("corridor-active-hub", active.parse().unwrap());
        status
    }
}

#[tonic::async_trait]
impl HubService for StandbyHub {
    type SessionStream = ReceiverStream<Result<pb::SessionResponse, Status>>;

    async fn session(
        &self,
        _request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        Err(self.refuse())
    }

    async fn list_agreements(
        &self,
        _request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        Err(self.refuse())
    }

    async fn get_quote(&self, _request: Request<pb::QuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        Err(self.refuse())
    }
}

/// A running standby: its URL and how many calls it had.
struct Standby {
    url: String,
    calls: Arc<AtomicUsize>,
    stop: CancellationToken,
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts a standby on a loopback port (bound before anyone connects), with the hub's
/// certificate from `network`, naming `active`.
async fn standby(network: &NetworkDir, active: Option<&str>) -> Standby {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let service = StandbyHub { active: active.map(str::to_owned), calls: Arc::clone(&calls) };
    let limits = net::ConnectionLimits::default();
    let tls = net::ServerTls::new(network, Role::Hub, limits).unwrap();
    let router = net::server_builder(&limits).add_service(HubServiceServer::new(service));
    let stop = CancellationToken::new();
    let shutdown = stop.clone().cancelled_owned();
    tokio::spawn(net::serve_node(
        "standby",
        router,
        listener,
        tls,
        shutdown,
        std::future::pending(),
        async {},
    ));
    Standby { url, calls, stop }
}

/// A URL on which nothing listens: a port bound, then let go.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("https://{}", listener.local_addr().unwrap())
}

/// Starts RU on `hubs` in `network` (where IR runs at index 0), pays IR from it and
/// checks that the payment settles at both.
async fn ru_on_hubs_pays_ir(network: &mut LocalNetwork, hubs: &str) {
    let ru = network.start_bank_via(bic(RU), hubs).await.unwrap();
    open_accounts(network, ru).await;
    let payment = network.banks[ru].bank.submit_payment(&order(IR, "C002", "12.34")).await.unwrap();
    let uetr = payment.uetr.to_string();
    assert_eq!(status_of(&final_status(network, ru, &uetr).await), pb::PaymentStatus::Acsc);
    assert_eq!(status_of(&final_status(network, 0, &uetr).await), pb::PaymentStatus::Acsc);
    assert_eq!(balance(network, 0, "C002"), 1_234);
}

/// A standby first in the list names the active hub (third): the bank goes straight there,
/// never asking the second, and pays through it: the failover path banks rely on.
#[tokio::test]
async fn a_standby_naming_the_active_hub_sends_the_bank_straight_there() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let first = standby(&network.network, Some(&network.hub_url)).await;
    // Between the first standby and the active hub in the list: a bank that only walked
    // the list would ask it; one that follows the named hub never does.
    let skipped = standby(&network.network, None).await;
    let hubs = format!("{},{},{}", first.url, skipped.url, network.hub_url);
    ru_on_hubs_pays_ir(&mut network, &hubs).await;
    assert!(first.calls.load(Ordering::SeqCst) >= 1, "the bank starts with the first hub of its list");
    assert_eq!(skipped.calls.load(Ordering::SeqCst), 0, "the named active hub was taken at once");
    network.stop().await.unwrap();
}

/// A standby names an address the bank was not given: the bank never calls it (whoever
/// answers a call may say anything) and reaches the real hub by its own list.
#[tokio::test]
async fn a_standby_naming_a_hub_the_bank_was_not_given_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    // Named as active, but not in the bank's list: the bank must never call it.
    let stranger = standby(&network.network, None).await;
    let first = standby(&network.network, Some(&stranger.url)).await;
    let hubs = format!("{},{}", first.url, network.hub_url);
    ru_on_hubs_pays_ir(&mut network, &hubs).await;
    assert!(first.calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(stranger.calls.load(Ordering::SeqCst), 0, "a bank connects only to the hubs it was given");
    network.stop().await.unwrap();
}

/// The first hub is dead (kill -9 leaves nothing listening): the bank moves on to the
/// next and pays through it.
#[tokio::test]
async fn a_hub_that_cannot_be_reached_gives_way_to_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let hubs = format!("{},{}", dead_url().await, network.hub_url);
    ru_on_hubs_pays_ir(&mut network, &hubs).await;
    network.stop().await.unwrap();
}

/// A bank that moves to another of its hub URLs in the middle of a payment picks up where
/// its durable state says, by the same Hello as on one URL (issue 22, item 2: redelivery
/// flagged PDM, resends flagged PDE): here its pacs.002 was held on the first link when
/// that link died, and went out again on the second. Every payment is then final once at
/// both banks and the money moved once (DESIGN.md: "No payment is applied twice").
#[tokio::test]
async fn a_bank_moving_to_its_next_hub_url_mid_payment_applies_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[RU]).await;
    // Two ways to the one hub, as an active hub and a standby that took over would be.
    let first = FaultProxy::start(&network.hub_url);
    let second = FaultProxy::start(&network.hub_url);
    let ir = network.start_bank_via(bic(IR), &format!("{},{}", first.url(), second.url())).await.unwrap();
    open_accounts(&network, ir).await;
    let ru = network.index_of(bic(RU));
    let before = network.banks[ru].bank.submit_payment(&order(IR, "C002", "1.00")).await.unwrap();
    assert_eq!(
        status_of(&final_status(&network, ru, &before.uetr.to_string()).await),
        pb::PaymentStatus::Acsc
    );

    first.hold(Direction::ToUpstream);
    let payment = network.banks[ru].bank.submit_payment(&order(IR, "C002", "120.00")).await.unwrap();
    let uetr = payment.uetr.to_string();
    // IR books the payment and queues its pacs.002, which stops at the first link.
    wait_until_answer_queued(&network, ir, &uetr).await;
    let payee = &network.banks[ir].bank;
    assert_eq!(payee.outbox_len(), 1, "the pacs.002 waits in the outbox");
    assert_eq!(second.traffic().connections_accepted, 0, "the bank was on its first URL until now");
    first.cut(); // The first URL is gone for good: the bank must move to the second.

    assert_eq!(status_of(&final_status(&network, ru, &uetr).await), pb::PaymentStatus::Acsc);
    assert_eq!(status_of(&final_status(&network, ir, &uetr).await), pb::PaymentStatus::Acsc);
    assert_eq!(network.banks[ir].bank.outbox_len(), 0, "the held pacs.002 was sent again and ACKed");
    assert_eq!(balance(&network, ir, "C002"), 12_100, "credited once for each payment");
    assert_eq!(balance(&network, ru, "C001"), 100_000 - 12_100, "debited once for each payment");
    assert!(second.traffic().connections_accepted >= 1, "the bank reached the hub by its second URL");
    network.stop().await.unwrap();
}
