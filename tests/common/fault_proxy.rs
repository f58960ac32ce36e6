//! A TCP fault proxy, so that a test can make partitions without root: it sits in front of
//! any TCP address (a hub's `https://host:port`, a NATS node's client or cluster port) and
//! relays every connection made to it, byte for byte (TLS runs end to end through it, so
//! both sides still check each other's certificates). At any moment the test may:
//! - [`FaultProxy::hold`] one direction: what is sent that way stops at the proxy and never
//!   arrives; the other direction still flows;
//! - [`FaultProxy::cut`]: a full partition: every open connection is reset and every new
//!   one is reset as soon as it is accepted, until healed;
//! - [`FaultProxy::reset`]: every open connection is closed with an RST; new ones pass;
//! - [`FaultProxy::delay`]: every chunk, both ways, is passed on no sooner than that long
//!   after the proxy read it;
//! - [`FaultProxy::heal`]: everything passes again. A connection that was holding bytes is
//!   dropped with them, as a broken link would drop them: held bytes never arrive late.
//!
//! [`FaultProxy::traffic`] counts connections and bytes each way, so a test can see that
//! traffic really passed or really stopped, and [`FaultProxy::wait_for_traffic`] waits
//! (bounded) until it has. No task outlives the proxy: dropping it ends them all.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Bytes read from one side before they are passed on.
const CHUNK_BYTES: usize = 16 * 1024;
/// Chunks read but not yet passed on (waiting out a delay or a hold), per direction of a
/// connection: past this the proxy stops reading and TCP's own flow control pushes back.
const CHUNKS_IN_FLIGHT_MAX: usize = 64;
/// The longest [`FaultProxy::wait_for_traffic`] waits before it fails the test.
const TRAFFIC_WAIT_MAX: Duration = Duration::from_secs(30);

/// One direction through the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// What the client (the side that connects to the proxy) sends to the upstream.
    ToUpstream,
    /// What the upstream sends back to the client.
    ToClient,
}

/// Bytes that went one way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    /// Read by the proxy from the sending side.
    pub bytes_read: u64,
    /// Passed on to the receiving side (the rest is waiting, held, or was dropped).
    pub bytes_passed: u64,
}

/// What went through the proxy since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Connections accepted and relayed to the upstream.
    pub connections_accepted: u64,
    /// Connections reset as soon as they were accepted (cut, or the upstream unreachable).
    pub connections_refused: u64,
    /// From the clients to the upstream.
    pub to_upstream: Flow,
    /// From the upstream to the clients.
    pub to_client: Flow,
}

impl Traffic {
    fn flow_mut(&mut self, direction: Direction) -> &mut Flow {
        match direction {
            Direction::ToUpstream => &mut self.to_upstream,
            Direction::ToClient => &mut self.to_client,
        }
    }
}

/// The faults in force; every connection watches them.
#[derive(Clone, Copy, Debug, Default)]
struct Faults {
    held_to_upstream: bool,
    held_to_client: bool,
    /// New connections are reset as soon as they are accepted.
    cut: bool,
    /// Bumped by every cut and reset: a connection opened before the bump is reset. A count
    /// rather than a flag, so that a reset is seen even if a heal follows it at once.
    severings: u64,
    delay: Duration,
}

impl Faults {
    fn holds(&self, direction: Direction) -> bool {
        match direction {
            Direction::ToUpstream => self.held_to_upstream,
            Direction::ToClient => self.held_to_client,
        }
    }
}

/// A relay on a loopback port to one upstream address, with faults the test switches.
pub struct FaultProxy {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    traffic: Arc<watch::Sender<Traffic>>,
    accepting: JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free loopback port to `upstream`, which is `host:port`, or a URL
    /// `scheme://host:port` such as a hub's; relaying in full until told otherwise.
    /// Panics, naming it, if `upstream` is not such an address. Must run in a Tokio runtime.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = resolve(upstream);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let listener = TcpListener::from_std(listener).expect("a Tokio listener");
        let addr = listener.local_addr().expect("the proxy's address");
        let (faults, watching) = watch::channel(Faults::default());
        let traffic = Arc::new(watch::Sender::new(Traffic::default()));
        let accepting = tokio::spawn(accept(listener, upstream, watching, Arc::clone(&traffic)));
        FaultProxy { addr, faults, traffic, accepting }
    }

    /// The address to connect to instead of the upstream's: `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The URL to give a bank instead of the hub's: `https://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// From now on what is sent in `direction` stops here, on open connections and new
    /// ones, until [`FaultProxy::heal`].
    pub fn hold(&self, direction: Direction) {
        self.faults.send_modify(|faults| match direction {
            Direction::ToUpstream => faults.held_to_upstream = true,
            Direction::ToClient => faults.held_to_client = true,
        });
    }

    /// A full partition: resets every open connection and every new one, until
    /// [`FaultProxy::heal`].
    pub fn cut(&self) {
        self.faults.send_modify(|faults| {
            faults.cut = true;
            faults.severings += 1;
        });
    }

    /// Closes every open connection with an RST; new connections still pass.
    pub fn reset(&self) {
        self.faults.send_modify(|faults| faults.severings += 1);
    }

    /// Every chunk read from now on, both ways, is passed on no sooner than `delay` after
    /// it was read (`Duration::ZERO` ends the delay).
    pub fn delay(&self, delay: Duration) {
        self.faults.send_modify(|faults| faults.delay = delay);
    }

    /// Ends every fault: everything passes again. Connections holding bytes are dropped
    /// with them (as a broken link would drop them); the others carry on.
    pub fn heal(&self) {
        self.faults
            .send_modify(|faults| *faults = Faults { severings: faults.severings, ..Faults::default() });
    }

    /// What went through so far.
    pub fn traffic(&self) -> Traffic {
        *self.traffic.borrow()
    }

    /// Waits until the traffic satisfies `condition` and returns it; fails the test if it
    /// does not within [`TRAFFIC_WAIT_MAX`].
    pub async fn wait_for_traffic(&self, condition: impl FnMut(&Traffic) -> bool) -> Traffic {
        let mut watching = self.traffic.subscribe();
        let waited = tokio::time::timeout(TRAFFIC_WAIT_MAX, watching.wait_for(condition)).await;
        match waited {
            Ok(Ok(traffic)) => *traffic,
            _ => panic!("the traffic through the proxy never got there: {:?}", self.traffic()),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // The accepting task owns every connection's task: aborting it ends them all.
        self.accepting.abort();
    }
}

/// The socket address of `upstream` (`host:port` or `scheme://host:port`).
fn resolve(upstream: &str) -> SocketAddr {
    let host_port = upstream.split_once("://").map_or(upstream, |(_, rest)| rest).trim_end_matches('/');
    let resolved = host_port.to_socket_addrs().ok().and_then(|mut addrs| addrs.next());
    resolved.unwrap_or_else(|| {
        panic!("the fault proxy's upstream {upstream:?} is not host:port or scheme://host:port")
    })
}

/// Accepts connections until the proxy is dropped; each is relayed by a task of its own,
/// owned here so that none outlives this one.
async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    faults: watch::Receiver<Faults>,
    traffic: Arc<watch::Sender<Traffic>>,
) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
        };
        let Ok((client, _)) = accepted else { return };
        let now = *faults.borrow();
        if now.cut {
            refuse(client, &traffic);
            continue;
        }
        traffic.send_modify(|traffic| traffic.connections_accepted += 1);
        let relaying = relay(client, upstream, now.severings, faults.clone(), Arc::clone(&traffic));
        connections.spawn(relaying);
    }
}

/// Resets `client` at once.
fn refuse(client: TcpStream, traffic: &watch::Sender<Traffic>) {
    traffic.send_modify(|traffic| traffic.connections_refused += 1);
    abort(client);
}

/// Closes `stream` with an RST rather than a FIN: what a crashed peer or a middlebox does.
fn abort(stream: TcpStream) {
    // Zero linger makes close() send an RST without blocking.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Relays one connection until both sides have closed it, either fails, or a cut or
/// reset after `severings_at_open` resets it.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    severings_at_open: u64,
    faults: watch::Receiver<Faults>,
    traffic: Arc<watch::Sender<Traffic>>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        refuse(client, &traffic);
        return;
    };
    let severed = {
        let (from_client, to_client) = client.split();
        let (from_server, to_server) = server.split();
        let both_ways = async {
            tokio::try_join!(
                pipe(from_client, to_server, Direction::ToUpstream, faults.clone(), &traffic),
                pipe(from_server, to_client, Direction::ToClient, faults.clone(), &traffic),
            )
        };
        let mut faults = faults.clone();
        tokio::select! {
            _ = both_ways => false,
            _ = faults.wait_for(|faults| faults.severings != severings_at_open) => true,
        }
    };
    if severed {
        abort(client);
        abort(server);
    }
}

/// Bytes read from one side, waiting to be passed on.
struct Chunk {
    bytes: Vec<u8>,
    /// Not passed on before this.
    due: Instant,
    /// Read while its direction was held: never passed on, even if a heal comes first.
    held: bool,
}

/// Passes what `from` sends on to `to`, each chunk no sooner than the delay after it was
/// read, and none read or due while `direction` is held; passes on `from`'s end of stream
/// too. Fails (ending the connection) when it has held a chunk and the hold is lifted.
async fn pipe(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    direction: Direction,
    mut faults: watch::Receiver<Faults>,
    traffic: &watch::Sender<Traffic>,
) -> std::io::Result<()> {
    let (chunks, mut waiting) = mpsc::channel::<Chunk>(CHUNKS_IN_FLIGHT_MAX);
    let at_read = faults.clone();
    let reading = async move {
        loop {
            let mut chunk = vec![0; CHUNK_BYTES];
            let read = from.read(&mut chunk).await?;
            if read == 0 {
                // Dropping `chunks` tells the writer the stream ended.
                return Ok::<(), std::io::Error>(());
            }
            chunk.truncate(read);
            // Stamped before it is counted: a test that saw the count and then healed
            // finds the chunk held.
            let faults = *at_read.borrow();
            let chunk =
                Chunk { bytes: chunk, due: Instant::now() + faults.delay, held: faults.holds(direction) };
            traffic.send_modify(|traffic| traffic.flow_mut(direction).bytes_read += read as u64);
            if chunks.send(chunk).await.is_err() {
                return Ok(());
            }
        }
    };
    let writing = async {
        while let Some(chunk) = waiting.recv().await {
            tokio::time::sleep_until(chunk.due).await;
            if chunk.held || faults.borrow().holds(direction) {
                let _ = faults.wait_for(|faults| !faults.holds(direction)).await;
                return Err(std::io::Error::other("healed: the connection is dropped with what it held"));
            }
            to.write_all(&chunk.bytes).await?;
            traffic
                .send_modify(|traffic| traffic.flow_mut(direction).bytes_passed += chunk.bytes.len() as u64);
        }
        to.shutdown().await
    };
    tokio::try_join!(reading, writing).map(drop)
}
