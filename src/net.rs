//! Server and client plumbing shared by the hub and the bank nodes: limits, mTLS,
//! health and reflection, graceful shutdown, the peer's identity, and the operator's
//! clients of both (for the CLI, the reconciler and the simulations).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, Router, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Status};

use crate::pb;
use crate::pb::bank_service_client::BankServiceClient;
use crate::pb::hub_admin_service_client::HubAdminServiceClient;
use crate::pb::tracker_service_client::TrackerServiceClient;
use crate::tls::{CRL_FILE, NetworkDir, PkiError, Role, certificate_serial, role_of_certificate};

/// Most TCP connections a server holds at once; more are closed on accept.
pub const CONNECTIONS_MAX: usize = 512;
/// Most connections one certificate (one bank, the hub, the operators) holds at once on
/// a server; more are closed after the handshake.
pub const CONNECTIONS_PER_PEER_MAX: usize = 32;
/// A connection that sends nothing for this long is closed. Servers ping their peers
/// well within it (see [`server_builder`]), so a live peer never gets there.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often running nodes look for a changed directory or revocation list.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Most HTTP/2 streams a client may reset before the server accepted them, and most
/// the server resets for a client's errors, before the connection is closed (the
/// "rapid reset" flood).
pub const RESET_STREAMS_MAX: usize = 64;
/// Largest HTTP/2 header list a server takes.
pub const HEADER_LIST_SIZE_MAX_BYTES: u32 = 16 * 1024;
/// Most concurrent HTTP/2 streams per connection.
pub const CONCURRENT_STREAMS_MAX: u32 = 64;
/// Largest gRPC frame a server or client decodes. A submission must also fit the
/// smaller payload limit, refused with a clear NAK; a frame over this one ends the call.
pub const FRAME_SIZE_MAX_BYTES: usize = 1024 * 1024;
/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keepalive pings find dead peers on long-lived sessions.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// How long a client waits to connect.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Who called, from the verified client certificate.
pub fn peer_role<T>(request: &Request<T>) -> Result<Role, Status> {
    let certificates = request
        .peer_certs()
        .ok_or_else(|| Status::unauthenticated("a client certificate from the network CA is required"))?;
    let leaf =
        certificates.first().ok_or_else(|| Status::unauthenticated("no client certificate presented"))?;
    role_of_certificate(leaf).ok_or_else(|| {
        Status::permission_denied(
            "the client certificate names no Corridor participant (no urn:corridor SAN URI)",
        )
    })
}

/// A server builder with every HTTP/2 limit set. TLS is not the builder's: [`serve`]
/// terminates it with a [`ServerTls`]. The server pings its peers at least three times
/// per idle timeout, so that a live peer (which answers pings) is never taken for a
/// silent one.
pub fn server_builder(limits: &ConnectionLimits) -> Server {
    let keepalive = KEEPALIVE_INTERVAL.min(limits.idle_timeout / 3);
    Server::builder()
        .max_concurrent_streams(CONCURRENT_STREAMS_MAX)
        .http2_keepalive_interval(Some(keepalive))
        .http2_keepalive_timeout(Some(keepalive))
        .http2_max_pending_accept_reset_streams(Some(RESET_STREAMS_MAX))
        .http2_max_local_error_reset_streams(Some(RESET_STREAMS_MAX))
        .http2_max_header_list_size(HEADER_LIST_SIZE_MAX_BYTES)
        .tcp_nodelay(true)
}

/// How many connections a server holds and how long it waits for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections at once; more are closed on accept.
    pub connections_max: usize,
    /// Connections at once per certificate; more are closed after the handshake.
    pub connections_per_peer_max: usize,
    /// Longest TLS handshake.
    pub handshake_timeout: Duration,
    /// Longest silence from a peer before its connection is closed.
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            connections_max: CONNECTIONS_MAX,
            connections_per_peer_max: CONNECTIONS_PER_PEER_MAX,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

impl ConnectionLimits {
    /// Checks that every limit is usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections_max == 0 || self.connections_per_peer_max == 0 {
            return Err("connection limits must be positive".into());
        }
        if self.handshake_timeout.is_zero() || self.idle_timeout.is_zero() {
            return Err("the handshake and idle timeouts must be positive".into());
        }
        Ok(())
    }
}

/// A server's side of mutual TLS: its rustls configuration, with the network CA's
/// revocation list, and the connections it holds, by peer. [`ServerTls::reload`] takes a
/// new revocation list and closes the connections of certificates it revokes.
pub struct ServerTls {
    network: NetworkDir,
    role: Role,
    /// Set for a hub's link listener: it trusts these peers' CAs, each for its own link
    /// certificate alone, and its peers are known by their link identities.
    links: Option<Vec<crate::tls::link::LinkConfig>>,
    limits: ConnectionLimits,
    config: RwLock<Arc<rustls::ServerConfig>>,
    connections: Mutex<Connections>,
}

#[derive(Default)]
struct Connections {
    next_id: u64,
    by_peer: HashMap<Role, usize>,
    live: HashMap<u64, (Vec<u8>, Arc<Kill>)>,
}

impl ServerTls {
    /// The TLS side of a server for `role`.
    pub fn new(network: &NetworkDir, role: Role, limits: ConnectionLimits) -> Result<Arc<Self>, PkiError> {
        limits.validate().map_err(PkiError::Invalid)?;
        let config = network.server_config(role)?;
        Ok(Arc::new(Self {
            network: network.clone(),
            role,
            links: None,
            limits,
            config: RwLock::new(Arc::new(config)),
            connections: Mutex::new(Connections::default()),
        }))
    }

    /// The TLS side of a hub's link listener, for the peers of `links`.
    pub fn for_links(
        network: &NetworkDir,
        links: Vec<crate::tls::link::LinkConfig>,
        limits: ConnectionLimits,
    ) -> Result<Arc<Self>, PkiError> {
        limits.validate().map_err(PkiError::Invalid)?;
        let config = network.link_server_config(&links)?;
        Ok(Arc::new(Self {
            network: network.clone(),
            role: Role::Hub,
            links: Some(links),
            limits,
            config: RwLock::new(Arc::new(config)),
            connections: Mutex::new(Connections::default()),
        }))
    }

    fn server_config(&self) -> Result<rustls::ServerConfig, PkiError> {
        match &self.links {
            None => self.network.server_config(self.role),
            Some(links) => self.network.link_server_config(links),
        }
    }

    /// Reads the revocation list again: new handshakes are checked against it, and the
    /// connections of certificates it revokes are closed. A list that cannot be read
    /// leaves the old one in force.
    pub fn reload(&self) -> Result<(), PkiError> {
        let config = self.server_config()?;
        let revoked: HashSet<Vec<u8>> = self.network.revoked_serials()?.into_iter().collect();
        *self.config.write().expect("TLS config lock") = Arc::new(config);
        let connections = self.connections.lock().expect("connections lock");
        for (serial, kill) in connections.live.values() {
            if revoked.contains(serial) {
                kill.kill();
            }
        }
        Ok(())
    }

    /// Runs the handshake on a new connection, within the handshake timeout, then
    /// checks and counts its peer. `None` (logged) if it fails any of that.
    async fn accept(self: Arc<Self>, connection: LimitedConnection) -> Option<TlsStream<LimitedConnection>> {
        let config = Arc::clone(&self.config.read().expect("TLS config lock"));
        let peer = connection.stream.peer_addr().ok();
        let accepted = tokio_rustls::TlsAcceptor::from(config).accept(connection);
        let mut tls = match tokio::time::timeout(self.limits.handshake_timeout, accepted).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::info!(?peer, %error, "TLS handshake refused");
                return None;
            }
            Err(_) => {
                tracing::info!(?peer, "TLS handshake timed out");
                return None;
            }
        };
        let leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec())?;
        // A link listener's peers are counted by their link identity, as a bank is by its BIC.
        let role = match &self.links {
            None => role_of_certificate(&leaf)?,
            Some(_) => Role::Bank(crate::tls::link::link_bic_of_certificate(&leaf)?),
        };
        let serial = certificate_serial(&leaf)?;
        let mut connections = self.connections.lock().expect("connections lock");
        let count = connections.by_peer.entry(role).or_default();
        if *count >= self.limits.connections_per_peer_max {
            tracing::warn!(
                ?role,
                limit = self.limits.connections_per_peer_max,
                "per-peer connection limit reached; closing a new connection"
            );
            return None;
        }
        *count += 1;
        connections.next_id += 1;
        let id = connections.next_id;
        let kill = Arc::new(Kill::default());
        connections.live.insert(id, (serial, Arc::clone(&kill)));
        drop(connections);
        tls.get_mut().0.registration = Some(Registration { tls: Arc::clone(&self), id, role, kill });
        Some(tls)
    }

    fn forget(&self, id: u64, role: Role) {
        let mut connections = self.connections.lock().expect("connections lock");
        connections.live.remove(&id);
        if let Some(count) = connections.by_peer.get_mut(&role) {
            *count = count.saturating_sub(1);
        }
    }
}

/// When a file was last changed and how long it is, if it is there.
type Stamp = Option<(Option<std::time::SystemTime>, u64)>;

fn stamp(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().map(|m| (m.modified().ok(), m.len()))
}

/// The stamps of what makes a node's directory: `directory.json`, and the directories
/// linked networks published (see [`NetworkDir::directory`]).
fn directory_stamps(network: &NetworkDir) -> Vec<(std::path::PathBuf, Stamp)> {
    let mut paths = vec![network.root().join(crate::directory::DIRECTORY_FILE)];
    let published = network.root().join("link").join("published");
    if let Ok(entries) = std::fs::read_dir(published) {
        let mut files: Vec<_> = entries.flatten().map(|entry| entry.path()).collect();
        files.sort();
        paths.extend(files);
    }
    paths
        .into_iter()
        .map(|path| {
            let stamp = stamp(&path);
            (path, stamp)
        })
        .collect()
}

/// Watches the network directory's `directory.json` (and the directories linked networks
/// published) and revocation list: when the list changes, `tls` reloads it; when the
/// directory changes, `on_directory` is called (the node takes the new keys). Runs until
/// aborted; a file that cannot be read is logged and the old one stays in force.
pub fn watch_network(
    tls: Arc<ServerTls>,
    on_directory: impl Fn(&NetworkDir) -> Result<(), String> + Send + 'static,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let network = tls.network.clone();
        let crl_path = network.root().join(CRL_FILE);
        let (mut directory_seen, mut crl_seen) = (directory_stamps(&network), stamp(&crl_path));
        loop {
            tokio::time::sleep(RELOAD_INTERVAL).await;
            let (directory_now, crl_now) = (directory_stamps(&network), stamp(&crl_path));
            if crl_now != crl_seen {
                crl_seen = crl_now;
                match tls.reload() {
                    Ok(()) => tracing::info!(role = ?tls.role, "revocation list reloaded"),
                    Err(error) => {
                        tracing::error!(role = ?tls.role, %error, "revocation list not reloaded; the old one stays in force")
                    }
                }
            }
            if directory_now != directory_seen {
                directory_seen = directory_now;
                match on_directory(&network) {
                    Ok(()) => tracing::info!(role = ?tls.role, "directory reloaded"),
                    Err(error) => {
                        tracing::error!(role = ?tls.role, %error, "directory not reloaded; the old one stays in force")
                    }
                }
            }
        }
    }))
}

/// Ends a connection from outside (its certificate was revoked): its next read or write
/// fails. Lock-free: it is looked at on every read and write.
#[derive(Default)]
struct Kill {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl Kill {
    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        self.waker.register(cx.waker());
        if self.killed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the peer's certificate was revoked",
            ));
        }
        Ok(())
    }
}

/// A connection's place in its server's books, given back when it closes.
struct Registration {
    tls: Arc<ServerTls>,
    id: u64,
    role: Role,
    kill: Arc<Kill>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tls.forget(self.id, self.role);
    }
}

/// Adds the standard health service and server reflection (v1 and v1alpha) to a router.
/// Returns the health reporter so the caller can flip it to NOT_SERVING on shutdown.
pub fn with_health_and_reflection(router: Router) -> (Router, tonic_health::server::HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let v1 = reflection().build_v1().expect("the compiled descriptor sets are valid");
    let v1alpha = reflection().build_v1alpha().expect("the compiled descriptor sets are valid");
    (router.add_service(health).add_service(v1).add_service(v1alpha), reporter)
}

/// Serves `router` on `listener` with mutual TLS from `tls` until `shutdown` completes,
/// then drains and returns.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    tls: Arc<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let (connections, incoming) = mpsc::channel(CONCURRENT_STREAMS_MAX as usize);
    let accepting = AbortOnDrop(tokio::spawn(accept_loop(listener, tls, connections)));
    let incoming = tokio_stream::wrappers::ReceiverStream::new(incoming);
    let served = router.serve_with_incoming_shutdown(incoming, shutdown).await;
    // Waited for, not only aborted: the listening socket is closed when this returns, so
    // a node restarted at once can bind the same address again.
    accepting.stop().await;
    served
}

/// Aborts a task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Aborts the task and waits until it is gone, with everything it held.
    pub async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks that `url` is a server URL Corridor can use: `https://HOST:PORT`.
pub fn endpoint(url: &str) -> Result<Endpoint, String> {
    let endpoint =
        Endpoint::from_shared(url.to_owned()).map_err(|e| format!("{url:?} is not a valid URL: {e}"))?;
    let uri = endpoint.uri();
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(format!("{url:?} is not a server URL: use https://HOST:PORT (Corridor speaks only TLS)"));
    }
    Ok(endpoint)
}

/// Serves a node's `router` until `shutdown` completes or `storage_failure` yields a
/// reason. Either way `on_stop` runs first (health to NOT_SERVING, sessions ended), then
/// the server drains. A storage failure is returned as the error that stopped the node.
pub async fn serve_node(
    node: &str,
    router: Router,
    listener: TcpListener,
    tls: Arc<ServerTls>,
    shutdown: impl Future<Output = ()>,
    storage_failure: impl Future<Output = String>,
    on_stop: impl Future<Output = ()>,
) -> Result<(), String> {
    let failure = Arc::new(std::sync::Mutex::new(None));
    let drain = {
        let (failure, node) = (Arc::clone(&failure), node.to_owned());
        async move {
            tokio::select! {
                _ = shutdown => tracing::info!(%node, "shutting down: refusing new work, draining"),
                reason = storage_failure => {
                    tracing::error!(%node, %reason, "stopping: storage cannot be written");
                    *failure.lock().expect("failure lock") = Some(reason);
                }
            }
            on_stop.await;
        }
    };
    serve(router, listener, tls, drain).await.map_err(|e| format!("{node} server: {}", error_chain(&e)))?;
    match failure.lock().expect("failure lock").take() {
        Some(reason) => Err(format!("{node} stopped because its storage cannot be written: {reason}")),
        None => Ok(()),
    }
}

/// A client channel to `url` with mTLS as `role`.
pub async fn connect(network: &NetworkDir, role: Role, url: &str) -> Result<Channel, String> {
    let tls = network.client_tls(role).map_err(|e| e.to_string())?;
    let endpoint = endpoint(url)?
        .tls_config(tls)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
        .keep_alive_while_idle(true)
        .tcp_nodelay(true);
    endpoint.connect().await.map_err(|e| format!("cannot connect to {url}: {}", error_chain(&e)))
}

/// The hub operator's admin client for the hub at `url`, with the operator's certificate.
pub async fn admin_client(network: &NetworkDir, url: &str) -> Result<HubAdminServiceClient<Channel>, String> {
    Ok(HubAdminServiceClient::new(connect(network, Role::Operator, url).await?))
}

/// A tracker client for the hub at `url`, with the operator's certificate.
pub async fn tracker_client(
    network: &NetworkDir,
    url: &str,
) -> Result<TrackerServiceClient<Channel>, String> {
    Ok(TrackerServiceClient::new(connect(network, Role::Operator, url).await?))
}

/// An operator's client for the bank node at `url`, with the operator's certificate.
pub async fn operator_client(network: &NetworkDir, url: &str) -> Result<BankServiceClient<Channel>, String> {
    Ok(BankServiceClient::new(connect(network, Role::Operator, url).await?))
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Accepts connections, at most `connections_max` at once: one past the limit is closed
/// at once (and logged) rather than left waiting. Each handshake runs on its own task,
/// so a slow or silent client holds up nobody; the connections that pass it go to
/// `connections`, for the server.
async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    connections: mpsc::Sender<io::Result<TlsStream<LimitedConnection>>>,
) {
    let permits = Arc::new(Semaphore::new(tls.limits.connections_max));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // A failed accept (for example, out of file descriptors) is logged, not fatal.
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                limit = tls.limits.connections_max,
                "connection limit reached; closing a new connection"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = LimitedConnection::new(stream, permit, tls.limits.idle_timeout);
        let (tls, connections) = (Arc::clone(&tls), connections.clone());
        tokio::spawn(async move {
            if let Some(accepted) = tls.accept(connection).await {
                let _ = connections.send(Ok(accepted)).await;
            }
        });
    }
}

/// A TCP connection holding one of the server's connection permits until it closes,
/// closed when its peer is silent for the idle timeout or its certificate is revoked.
pub struct LimitedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle_timeout: Duration,
    /// When the peer last sent something: a read only notes the time.
    last_read: Instant,
    /// Fires at most once per idle timeout, and is then set again from `last_read`.
    idle: Pin<Box<Sleep>>,
    registration: Option<Registration>,
}

impl LimitedConnection {
    fn new(stream: TcpStream, permit: OwnedSemaphorePermit, idle_timeout: Duration) -> Self {
        Self {
            stream,
            _permit: permit,
            idle_timeout,
            last_read: Instant::now(),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            registration: None,
        }
    }

    /// Whether the peer has been silent past the idle timeout; if not, the timer is set
    /// for when it would be.
    fn silent_too_long(&mut self, cx: &mut Context<'_>) -> bool {
        while self.idle.as_mut().poll(cx).is_ready() {
            let deadline = self.last_read + self.idle_timeout;
            if deadline <= Instant::now() {
                return true;
            }
            self.idle.as_mut().reset(deadline);
        }
        false
    }

    fn check_kill(&self, cx: &Context<'_>) -> io::Result<()> {
        self.registration.as_ref().map_or(Ok(()), |r| r.kill.check(cx))
    }
}

impl Connected for LimitedConnection {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for LimitedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_kill(cx)?;
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.last_read = Instant::now();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending if self.silent_too_long(cx) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the peer was silent too long")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check_kill(cx)?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.check_kill(cx)?;
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The version of the session contract (`HubService.Session`) this build speaks, told in
/// Hello and Welcome: each side refuses a peer of another version rather than misreading
/// its frames. 2: one hub receipt per batch of ACKs (`corridor.v1.Receipt`); 1 (0 on the
/// wire, the field unset): one receipt signature per ACK.
pub const CONTRACT_VERSION: u32 = 2;

/// The metadata key in which a standby hub's UNAVAILABLE answer names the active hub's URL
/// (absent while no hub is active): a bank given several hub URLs moves to that one.
pub const ACTIVE_HUB_METADATA: &str = "corridor-active-hub";

/// Frames of a stream taken together, up to this many, so that their signatures are
/// verified in one batch; never waiting for a batch to fill.
pub const INGEST_BATCH_MAX: usize = 64;

/// A message of a stream, or its end: `None` when the peer closed it, the status when it
/// failed.
pub type Arrived<T> = Result<T, Option<Status>>;

/// Reads a gRPC stream into `out` until it ends (the last item says how), so that its
/// consumer can take everything that has arrived at once with `recv_many`.
pub async fn forward_stream<T>(mut inbound: tonic::Streaming<T>, out: tokio::sync::mpsc::Sender<Arrived<T>>) {
    loop {
        let arrived = match inbound.message().await {
            Ok(Some(message)) => Ok(message),
            Ok(None) => Err(None),
            Err(status) => Err(Some(status)),
        };
        let end = arrived.is_err();
        if out.send(arrived).await.is_err() || end {
            return;
        }
    }
}

/// The active hub's URL a standby named in `status` (see [`ACTIVE_HUB_METADATA`]), if it
/// named one: only on UNAVAILABLE, and only readable, non-empty ASCII.
pub fn active_hub_named(status: &Status) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let value = status.metadata().get(ACTIVE_HUB_METADATA)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    //! A standby's refusal is a wire convention between hub and bank (issue 22): these
    //! check that the bank reads the active hub from it, and takes nothing else for it.
    use super::*;

    fn standby(named: &str) -> Status {
        let mut status = Status::unavailable(format!("this hub is a standby; the active hub is {named}"));
        status.metadata_mut().insert(ACTIVE_HUB_METADATA, named.parse().unwrap());
        status
    }

    #[test]
    fn a_standby_refusal_names_the_active_hub_for_the_bank() {
        assert_eq!(
            active_hub_named(&standby("https://10.0.0.2:7000")).as_deref(),
            Some("https://10.0.0.2:7000")
        );
        let none_active = Status::unavailable("this hub is a standby; no hub is active yet");
        assert_eq!(active_hub_named(&none_active), None);
    }

    #[test]
    fn only_an_unavailable_status_with_a_readable_value_names_a_hub() {
        let mut other = Status::permission_denied("no");
        other.metadata_mut().insert(ACTIVE_HUB_METADATA, "https://a:1".parse().unwrap());
        assert_eq!(active_hub_named(&other), None, "another code is not a standby's answer");
        assert_eq!(active_hub_named(&standby("  ")), None, "an empty value names no hub");
        assert_eq!(active_hub_named(&Status::unavailable("transport error")), None);
    }
}
