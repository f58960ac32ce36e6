//! The fault proxy of the test support code (tests/common/fault_proxy.rs), which the
//! partition tests of the replicated hub (issue 22) rest on: each fault is shown to do what
//! it says, first on a plain echo server over TCP (any address, not only a hub's), then
//! between a real bank node and a real hub. A proxy whose faults did nothing would let
//! those tests pass without ever making the partition they claim, so each test here checks
//! that traffic really stopped (nothing reached the other side, the counters say so) and
//! really passes again after the fault is lifted.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::bic;
use common::fault_proxy::{Direction, FaultProxy, Flow};
use common::net::*;
use corridor::model::PaymentStatus;
use corridor::net::AbortOnDrop;
use corridor::pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The longest a test waits for a read the proxy is to end, before it fails.
const READ_WAIT_MAX: Duration = Duration::from_secs(30);

/// What the echo server saw: its connections, and every chunk it read, with when.
#[derive(Default)]
struct EchoLog {
    connections: u64,
    arrivals: Vec<(Instant, Vec<u8>)>,
}

/// A TCP server that sends back whatever it reads, logging it first.
struct Echo {
    addr: SocketAddr,
    log: Arc<Mutex<EchoLog>>,
    _serving: AbortOnDrop,
}

impl Echo {
    async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(EchoLog::default()));
        let serving = AbortOnDrop(tokio::spawn(serve_echo(listener, Arc::clone(&log))));
        Echo { addr, log, _serving: serving }
    }

    fn connections(&self) -> u64 {
        self.log.lock().unwrap().connections
    }

    /// Every byte the server read, in order.
    fn received(&self) -> Vec<u8> {
        self.log.lock().unwrap().arrivals.iter().flat_map(|(_, bytes)| bytes.clone()).collect()
    }

    /// When the server read the chunk that ended with `bytes`.
    fn arrival_of(&self, bytes: &[u8]) -> Instant {
        let log = self.log.lock().unwrap();
        log.arrivals.iter().find(|(_, chunk)| chunk.ends_with(bytes)).expect("the server read them").0
    }
}

async fn serve_echo(listener: TcpListener, log: Arc<Mutex<EchoLog>>) {
    // Owned here, so that aborting this task ends every connection's too.
    let mut connections = JoinSet::new();
    while let Ok((mut stream, _)) = listener.accept().await {
        log.lock().unwrap().connections += 1;
        let log = Arc::clone(&log);
        connections.spawn(async move {
            let mut chunk = vec![0; 64 * 1024];
            while let Ok(read @ 1..) = stream.read(&mut chunk).await {
                log.lock().unwrap().arrivals.push((Instant::now(), chunk[..read].to_vec()));
                if stream.write_all(&chunk[..read]).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// Sends `bytes` on `stream` and checks they come back.
async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    let mut answer = vec![0; bytes.len()];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, bytes);
}

/// Reads once from `stream`, which must end (not hang) without data; returns the error
/// it ended with, if not an orderly end of stream.
async fn read_ends(stream: &mut TcpStream) -> Option<std::io::Error> {
    let mut buffer = [0; 64];
    let read = tokio::time::timeout(READ_WAIT_MAX, stream.read(&mut buffer)).await.expect("the read ended");
    assert!(matches!(read, Ok(0) | Err(_)), "no data arrives: {read:?}");
    read.err()
}

/// An echo server, a proxy in front of it, and a connection through the proxy that has
/// made one round trip ("before"): where each fault's test starts.
async fn connected() -> (Echo, FaultProxy, TcpStream) {
    let echo = Echo::start().await;
    let proxy = FaultProxy::start(&echo.addr.to_string());
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut stream, b"before").await;
    (echo, proxy, stream)
}

/// Healthy, the proxy relays a large exchange both ways intact, from an address given
/// as `host:port` or as a URL, and counts the connection and the bytes each way.
#[tokio::test]
async fn healthy_it_relays_both_ways_intact_and_counts_the_traffic() {
    let echo = Echo::start().await;
    for upstream in [echo.addr.to_string(), format!("https://{}", echo.addr)] {
        let proxy = FaultProxy::start(&upstream);
        assert_eq!(proxy.url(), format!("https://{}", proxy.addr()));
        let stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let (mut reading, mut writing) = stream.into_split();
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move { writing.write_all(&sent).await.map(|_| writing) })
        };
        let mut answer = vec![0; sent.len()];
        reading.read_exact(&mut answer).await.unwrap();
        let _writing = writer.await.unwrap().unwrap();
        assert!(answer == sent, "a megabyte came back unchanged");
        let traffic = proxy.traffic();
        let whole = Flow { bytes_read: sent.len() as u64, bytes_passed: sent.len() as u64 };
        assert_eq!((traffic.connections_accepted, traffic.connections_refused), (1, 0));
        assert_eq!((traffic.to_upstream, traffic.to_client), (whole, whole));
    }
}

/// An upstream that is not an address is refused at once, naming it.
#[tokio::test]
#[should_panic(expected = "upstream \"not an address\" is not host:port")]
async fn an_upstream_that_is_not_an_address_is_refused_naming_it() {
    FaultProxy::start("not an address");
}

/// Cut is a full partition: the open connection is reset, a new one is reset as soon as
/// it is made and never reaches the server, and after heal connections pass again.
#[tokio::test]
async fn cut_drops_open_connections_and_refuses_new_ones_until_heal() {
    let (echo, proxy, mut open) = connected().await;

    proxy.cut();
    read_ends(&mut open).await;
    // The kernel may complete the handshake before the proxy resets it: either fails.
    if let Ok(mut during) = TcpStream::connect(proxy.addr()).await {
        let _ = during.write_all(b"during").await;
        read_ends(&mut during).await;
    }
    let traffic = proxy.wait_for_traffic(|traffic| traffic.connections_refused == 1).await;
    assert_eq!(traffic.connections_accepted, 1);
    assert_eq!(echo.connections(), 1, "the server never saw the connection made during the cut");
    assert_eq!(echo.received(), b"before");

    proxy.heal();
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut after, b"after").await;
    assert_eq!(echo.connections(), 2);
    assert_eq!(proxy.traffic().connections_accepted, 2);
}

/// Reset closes the open connection with an RST, which its client sees as a connection
/// reset (not an orderly end); a new connection passes without any heal.
#[tokio::test]
async fn reset_ends_open_connections_with_an_rst_and_lets_new_ones_pass() {
    let (_echo, proxy, mut open) = connected().await;

    proxy.reset();
    let ended = read_ends(&mut open).await;
    assert_eq!(ended.map(|error| error.kind()), Some(ErrorKind::ConnectionReset));

    let mut next = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut next, b"next").await;
    assert_eq!(proxy.traffic().connections_accepted, 2);
}

/// Delay holds every chunk at least that long each way, on a connection opened before
/// the delay was set: the server reads the request no sooner than the delay after it was
/// sent, and the client its answer no sooner than the delay after the server sent it.
/// Lower bounds only: the proxy guarantees them whatever the machine's load.
#[tokio::test]
async fn delay_holds_every_chunk_at_least_that_long_each_way() {
    let (echo, proxy, mut stream) = connected().await;

    let delay = Duration::from_millis(300);
    proxy.delay(delay);
    let sent_at = Instant::now();
    round_trip(&mut stream, b"delayed").await;
    let answered_at = Instant::now();
    let arrived_at = echo.arrival_of(b"delayed");
    assert!(arrived_at - sent_at >= delay, "to the server: {:?}", arrived_at - sent_at);
    assert!(answered_at - arrived_at >= delay, "back to the client: {:?}", answered_at - arrived_at);

    proxy.delay(Duration::ZERO);
    round_trip(&mut stream, b"undelayed").await;
    assert_eq!(echo.received(), b"beforedelayedundelayed");
}

/// Holding what the client sends: it stops at the proxy and never reaches the server, on
/// the open connection and on a new one; heal drops the connections with what they held
/// (it never arrives late) and the next connection passes.
#[tokio::test]
async fn hold_to_upstream_stops_what_the_client_sends_until_heal_drops_it() {
    let (echo, proxy, mut open) = connected().await;

    proxy.hold(Direction::ToUpstream);
    open.write_all(b"held").await.unwrap();
    let mut opened_during = TcpStream::connect(proxy.addr()).await.unwrap();
    opened_during.write_all(b"also held").await.unwrap();
    let read_in_full = ("before".len() + "held".len() + "also held".len()) as u64;
    let traffic = proxy.wait_for_traffic(|traffic| traffic.to_upstream.bytes_read == read_in_full).await;
    assert_eq!(traffic.to_upstream.bytes_passed, "before".len() as u64);
    assert_eq!(echo.received(), b"before", "nothing held reached the server");

    proxy.heal();
    read_ends(&mut open).await;
    read_ends(&mut opened_during).await;
    assert_eq!(echo.received(), b"before", "what was held never arrives");
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    round_trip(&mut after, b"after").await;
}

/// Holding the other way: the server gets what the client sends, but its answer stops
/// at the proxy; heal drops the connection without it.
#[tokio::test]
async fn hold_to_client_lets_the_server_read_but_stops_its_answer() {
    let (echo, proxy, mut open) = connected().await;

    proxy.hold(Direction::ToClient);
    open.write_all(b"ping").await.unwrap();
    let traffic = proxy.wait_for_traffic(|traffic| traffic.to_client.bytes_read == 10).await;
    assert_eq!(echo.received(), b"beforeping", "the server read it");
    assert_eq!(traffic.to_client.bytes_passed, 6, "its answer stopped at the proxy");

    proxy.heal();
    read_ends(&mut open).await;
}

/// A network where bank RU reaches the hub through a fault proxy (RU's index returned),
/// with a first payment through it settled: the way works before a fault is made.
async fn bank_behind_a_proxy() -> (tempfile::TempDir, corridor::sim::LocalNetwork, FaultProxy, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let proxy = FaultProxy::start(&network.hub_url);
    let ru = network.start_bank_via(bic(RU), &proxy.url()).await.unwrap();
    open_accounts(&network, ru).await;
    let first = network.banks[ru].bank.submit_payment(&order(IR, "C002", "1.00")).await.unwrap();
    let first = final_status(&network, ru, &first.uetr.to_string()).await;
    assert_eq!(status_of(&first), pb::PaymentStatus::Acsc, "the way works: {}", first.detail);
    (dir, network, proxy, ru)
}

/// A bank cut off from the hub (DESIGN.md: "No acknowledged message is lost"): its session
/// is reset, its reconnections are refused and its payment does not reach the hub; after
/// heal the bank reconnects by itself and the payment settles at both ends.
#[tokio::test]
async fn a_bank_cut_off_from_the_hub_reconnects_after_heal_and_its_payment_settles() {
    let (_dir, network, proxy, ru) = bank_behind_a_proxy().await;

    proxy.cut();
    let payment = network.banks[ru].bank.submit_payment(&order(IR, "C002", "2.00")).await.unwrap();
    let refused = proxy.traffic().connections_refused;
    // The bank has tried again since it queued the payment, and was refused.
    proxy.wait_for_traffic(|traffic| traffic.connections_refused > refused).await;
    assert!(network.hub().payment(&payment.uetr).is_none(), "the hub never got it");
    let at_payer = network.banks[ru].bank.payment(&payment.uetr.to_string()).unwrap();
    assert_ne!(at_payer.status, PaymentStatus::Actc, "no ACK reached the payer");

    let accepted = proxy.traffic().connections_accepted;
    proxy.heal();
    let at_payer = final_status(&network, ru, &payment.uetr.to_string()).await;
    assert_eq!(status_of(&at_payer), pb::PaymentStatus::Acsc, "{}", at_payer.detail);
    assert!(proxy.traffic().connections_accepted > accepted, "through a new connection");
    assert_eq!(balance(&network, ru, "C001"), 100_000 - 300);
    assert_eq!(balance(&network, network.index_of(bic(IR)), "C002"), 300);
    network.stop().await.unwrap();
}

/// A reset of the bank's connection to the hub: the bank sees its session lost, makes a
/// new one by itself (no heal is needed) and its next payment settles.
#[tokio::test]
async fn a_bank_whose_connection_to_the_hub_is_reset_reconnects_and_settles() {
    let (_dir, network, proxy, ru) = bank_behind_a_proxy().await;
    let accepted = proxy.traffic().connections_accepted;

    proxy.reset();
    proxy.wait_for_traffic(|traffic| traffic.connections_accepted > accepted).await;
    let second = network.banks[ru].bank.submit_payment(&order(IR, "C002", "2.00")).await.unwrap();
    let second = final_status(&network, ru, &second.uetr.to_string()).await;
    assert_eq!(status_of(&second), pb::PaymentStatus::Acsc, "{}", second.detail);
    assert_eq!(balance(&network, ru, "C001"), 100_000 - 300);
    network.stop().await.unwrap();
}
