//! Server and client plumbing shared by the hub and the bank nodes: limits, mTLS,
//! health and reflection, graceful shutdown, and the peer's identity.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_stream::{Stream, StreamExt as _};
use tonic::transport::server::{Connected, Router, TcpConnectInfo};
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Status};

use crate::pb;
use crate::tls::{NetworkDir, PkiError, Role, role_of_certificate};

/// Most TCP connections a server holds at once; more are closed on accept.
pub const CONNECTIONS_MAX: usize = 512;
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

/// A server builder with mTLS for `role` and every limit set.
pub fn server_builder(network: &NetworkDir, role: Role) -> Result<Server, PkiError> {
    let tls = network.server_tls(role)?.timeout(HANDSHAKE_TIMEOUT);
    let builder = Server::builder()
        .tls_config(tls)
        .map_err(|e| PkiError::Invalid(format!("TLS configuration: {e}")))?
        .max_concurrent_streams(CONCURRENT_STREAMS_MAX)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_INTERVAL))
        .http2_max_pending_accept_reset_streams(Some(64))
        .tcp_nodelay(true);
    Ok(builder)
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

/// Serves `router` on `listener` until `shutdown` completes, then drains and returns.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    router.serve_with_incoming_shutdown(limited_incoming(listener, CONNECTIONS_MAX), shutdown).await
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
    serve(router, listener, drain).await.map_err(|e| format!("{node} server: {}", error_chain(&e)))?;
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

/// Accepted connections, at most `connections_max` at once: one past the limit is
/// closed at once (and logged) rather than left waiting.
fn limited_incoming(
    listener: TcpListener,
    connections_max: usize,
) -> impl Stream<Item = io::Result<LimitedConnection>> {
    let permits = Arc::new(Semaphore::new(connections_max));
    tokio_stream::wrappers::TcpListenerStream::new(listener).filter_map(move |accepted| match accepted {
        Ok(stream) => match Arc::clone(&permits).try_acquire_owned() {
            Ok(permit) => {
                let _ = stream.set_nodelay(true);
                Some(Ok(LimitedConnection { stream, _permit: permit }))
            }
            Err(_) => {
                tracing::warn!(limit = connections_max, "connection limit reached; closing a new connection");
                None
            }
        },
        // A failed accept (for example, out of file descriptors) is logged, not fatal.
        Err(error) => {
            tracing::warn!(%error, "accept failed");
            None
        }
    })
}

/// A TCP connection holding one of the server's connection permits until it closes.
pub struct LimitedConnection {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
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
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
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
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

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
