//! The hub on gRPC: `HubService.Session` over mTLS, one long-lived stream per bank.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use super::{Hub, OpenSession};
use crate::model::Bic;
use crate::net;
use crate::pb;
use crate::pb::hub_admin_service_server::HubAdminServiceServer;
use crate::pb::hub_service_server::{HubService, HubServiceServer};
use crate::pb::session_request::Frame as RequestFrame;
use crate::pb::session_response::Frame as ResponseFrame;
use crate::pb::tracker_service_server::TrackerServiceServer;
use crate::store::Ticket;
use crate::tls::{NetworkDir, Role};

/// How long a new session may take to say Hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The status that ends a session replaced by a newer one of the same participant (one
/// session per certificate: the newer is the one that delivers and is answered).
pub(crate) const SUPERSEDED: &str = "superseded by a new session of this participant";

/// Answers sent in one run after one durability wait.
const ANSWER_RUN_MAX: usize = 256;

type SessionSender = mpsc::Sender<Result<pb::SessionResponse, Status>>;

/// What a standby answers a bank: UNAVAILABLE, naming the active hub in the message and
/// in the [`net::ACTIVE_HUB_METADATA`] metadata, for the bank to move to.
fn standby_refusal(hub: &Hub) -> Status {
    let authority = hub.authority();
    let mut status = Status::unavailable(authority.standby_detail());
    if let Some(url) = authority.active_hub()
        && let Ok(value) = url.parse()
    {
        status.metadata_mut().insert(net::ACTIVE_HUB_METADATA, value);
    }
    status
}

/// A session's frames to the bank, each let out only while the hub may send
/// ([`super::replicated::Authority::may_send`]): a hub whose lease may have ended (paused
/// past it, or cut off from the log's servers) ends the session instead of sending.
pub struct SessionStream {
    frames: ReceiverStream<Result<pb::SessionResponse, Status>>,
    hub: Hub,
    ended: bool,
}

impl tokio_stream::Stream for SessionStream {
    type Item = Result<pb::SessionResponse, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.ended {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut self.frames).poll_next(cx) {
            Poll::Ready(Some(_)) if !self.hub.authority().may_send() => {
                self.ended = true;
                Poll::Ready(Some(Err(Status::unavailable(
                    "this hub's lease may have ended: it sends nothing more; reconnect to the active hub",
                ))))
            }
            other => other,
        }
    }
}

/// The gRPC face of a [`Hub`].
#[derive(Clone)]
pub struct HubServer {
    hub: Hub,
    /// Cancelled at shutdown: every session stream ends so the server can drain.
    shutdown: CancellationToken,
    /// Serves the link listener: its sessions are linked hubs', known by their link
    /// certificates, and nothing else is served there.
    links: bool,
}

impl HubServer {
    /// Serves `hub`; `shutdown` ends every session when cancelled.
    pub fn new(hub: Hub, shutdown: CancellationToken) -> Self {
        Self { hub, shutdown, links: false }
    }

    /// Who opens a session: a participant bank by its certificate, or on the link
    /// listener, a linked network by its link certificate.
    fn session_peer<T>(&self, request: &Request<T>) -> Result<Bic, Status> {
        if self.links {
            let leaf = request.peer_certs().and_then(|certificates| certificates.first().cloned());
            let link = leaf.as_deref().and_then(crate::tls::link::link_bic_of_certificate);
            return match link {
                Some(link) if self.hub.directory().is_link(link) => Ok(link),
                Some(link) => {
                    Err(Status::permission_denied(format!("{link} is not a network this hub is linked to")))
                }
                None => Err(Status::permission_denied(
                    "only a linked hub's link certificate opens a link session",
                )),
            };
        }
        match net::peer_role(request)? {
            Role::Bank(bic) if self.hub.directory().is_participant(bic) => Ok(bic),
            Role::Bank(bic) => Err(Status::permission_denied(format!("{bic} is not a participant"))),
            other => {
                Err(Status::permission_denied(format!("{other:?} certificates cannot open a bank session")))
            }
        }
    }
}

/// Serves the link sessions of `hub`'s links on `listener` until `shutdown` completes.
pub async fn run_link_listener(
    hub: Hub,
    network: &NetworkDir,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let links = hub.links().map(|links| links.links.clone()).unwrap_or_default();
    if links.is_empty() {
        return Err("a link listener needs a link configured (`corridor link add`)".into());
    }
    let tls =
        net::ServerTls::for_links(network, links, hub.config().connections).map_err(|e| e.to_string())?;
    let sessions_end = CancellationToken::new();
    let server = HubServer { hub: hub.clone(), shutdown: sessions_end.clone(), links: true };
    let service = HubServiceServer::new(server)
        .max_decoding_message_size(net::FRAME_SIZE_MAX_BYTES)
        .max_encoding_message_size(net::FRAME_SIZE_MAX_BYTES);
    let router = net::server_builder(&hub.config().connections).add_service(service);
    let on_stop = async move { sessions_end.cancel() };
    net::serve_node("hub link", router, listener, tls, shutdown, hub.storage_failure(), on_stop).await
}

/// Runs the hub on `listener` with mTLS from `network` until `shutdown` completes:
/// then health turns NOT_SERVING, sessions end, and the server drains and returns.
pub async fn run(
    hub: Hub,
    network: &NetworkDir,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let sessions_end = CancellationToken::new();
    let service = HubServiceServer::new(HubServer::new(hub.clone(), sessions_end.clone()))
        .max_decoding_message_size(net::FRAME_SIZE_MAX_BYTES)
        .max_encoding_message_size(net::FRAME_SIZE_MAX_BYTES);
    let admin = super::admin::HubAdmin::new(hub.clone());
    let tls = net::ServerTls::new(network, Role::Hub, hub.config().connections).map_err(|e| e.to_string())?;
    // All of the hub's keys, not only the one it opened with: one may activate later.
    hub.reload_credentials(network)?;
    let watch = {
        let hub = hub.clone();
        net::watch_network(Arc::clone(&tls), move |network| hub.reload_credentials(network))
    };
    let mut builder = net::server_builder(&hub.config().connections);
    let router = builder
        .add_service(service)
        .add_service(HubAdminServiceServer::new(admin.clone()))
        .add_service(TrackerServiceServer::new(admin));
    let (router, health) = net::with_health_and_reflection(router);
    // The bank service is SERVING on the active hub only: a standby says NOT_SERVING until
    // it takes over.
    health.set_not_serving::<HubServiceServer<HubServer>>().await;
    let _serving = {
        let (hub, health) = (hub.clone(), health.clone());
        net::AbortOnDrop(tokio::spawn(async move {
            hub.authority().wait_active().await;
            health.set_serving::<HubServiceServer<HubServer>>().await;
        }))
    };
    let on_stop = async move {
        health.set_not_serving::<HubServiceServer<HubServer>>().await;
        sessions_end.cancel();
    };
    let archiving = CancellationToken::new();
    let archiver = tokio::spawn(hub.clone().archive_periodically(archiving.clone()));
    let served =
        net::serve_node("hub", router, listener, tls, shutdown, hub.storage_failure(), on_stop).await;
    // The watcher and the archiver hold the hub: gone before this returns, so the journal
    // can close.
    watch.stop().await;
    archiving.cancel();
    let _ = archiver.await;
    served
}

#[tonic::async_trait]
impl HubService for HubServer {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<pb::SessionRequest>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        if !self.hub.authority().is_active() {
            return Err(standby_refusal(&self.hub));
        }
        let bank = self.session_peer(&request)?;
        let mut inbound = request.into_inner();
        let hello = match tokio::time::timeout(HELLO_TIMEOUT, inbound.message()).await {
            Ok(Ok(Some(pb::SessionRequest { frame: Some(RequestFrame::Hello(hello)) }))) => hello,
            Ok(Err(status)) => return Err(status),
            Err(_) => return Err(Status::deadline_exceeded("no Hello within the session timeout")),
            Ok(_) => return Err(Status::failed_precondition("the first frame of a session must be Hello")),
        };
        check_contract_version(hello.contract_version)?;
        if self.links {
            self.hub
                .accept_published(bank, hello.network_directory.as_ref())
                .map_err(Status::permission_denied)?;
        }
        let mut open =
            self.hub.open_session(bank, hello.last_osn_processed).map_err(Status::failed_precondition)?;
        if self.links {
            let published = self.hub.published_directory(bank).map_err(Status::internal)?;
            open.welcome.network_directory = Some(published);
        }
        tracing::info!(%bank, session = open.id, last_osn_processed = hello.last_osn_processed, "session opened");
        let (sender, receiver) = mpsc::channel(self.hub.config().session_queue_depth);
        let welcome = pb::SessionResponse { frame: Some(ResponseFrame::Welcome(open.welcome.clone())) };
        sender.send(Ok(welcome)).await.map_err(|_| Status::cancelled("session closed"))?;
        let cancel = open.cancel.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(deliver(self.hub.clone(), bank, open.next_osn_to_send, cancel.clone(), sender.clone()));
        let link = self
            .links
            .then(|| self.hub.link_channel_open(bank, super::link::LinkChannel::Accepted(sender.clone())));
        tokio::spawn(receive(self.hub.clone(), bank, open, inbound, sender, shutdown, link));
        Ok(Response::new(SessionStream {
            frames: ReceiverStream::new(receiver),
            hub: self.hub.clone(),
            ended: false,
        }))
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        self.participant_or_operator(&request)?;
        let agreements = self.hub.agreements().iter().map(super::admin::agreement_to_pb).collect();
        Ok(Response::new(pb::ListAgreementsResponse { agreements }))
    }

    async fn get_quote(&self, request: Request<pb::QuoteRequest>) -> Result<Response<pb::Quote>, Status> {
        let bank = match net::peer_role(&request)? {
            Role::Bank(bic) if self.hub.directory().is_participant(bic) => bic,
            other => {
                return Err(Status::permission_denied(format!(
                    "only a participant may ask for a quote, not {other:?}"
                )));
            }
        };
        let r = request.into_inner();
        let instructed = crate::model::wire::amount(r.instructed_amount, "instructed_amount")
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let to = crate::model::Currency::parse(&r.settlement_currency)
            .map_err(|e| Status::invalid_argument(e.at("settlement_currency").to_string()))?;
        let quote = self
            .hub
            .quote(bank, instructed, to)
            .await
            .map_err(|(reason, detail)| Status::failed_precondition(format!("{reason}: {detail}")))?;
        Ok(Response::new(quote_to_pb(&quote)))
    }
}

/// Refuses a bank of another session contract before anything changes: it would read
/// this hub's ACKs wrong (a bank of version 1 looks for one receipt signature per ACK).
fn check_contract_version(version: u32) -> Result<(), Status> {
    if version == net::CONTRACT_VERSION {
        return Ok(());
    }
    Err(Status::failed_precondition(format!(
        "this hub speaks session contract version {} (one receipt per batch of ACKs), but the bank's Hello \
         says version {version} (0 or 1: the first version, one receipt per ACK): upgrade the bank node",
        net::CONTRACT_VERSION,
    )))
}

/// A quote on the wire.
pub fn quote_to_pb(quote: &super::Quote) -> pb::Quote {
    pb::Quote {
        quote_id: quote.id.clone(),
        participant_bic: quote.participant.to_string(),
        instructed_amount: Some(crate::model::wire::money_of_amount(&quote.instructed)),
        settlement_amount: Some(crate::model::wire::money_of_amount(&quote.settlement)),
        exchange_rate: quote.rate.to_string(),
        expires_unix_ms: quote.expires_unix_ms,
    }
}

impl HubServer {
    /// Participants and the operator may read the agreements; nobody else.
    fn participant_or_operator<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match net::peer_role(request)? {
            Role::Operator => Ok(()),
            Role::Bank(bic) if self.hub.directory().is_participant(bic) => Ok(()),
            other => {
                Err(Status::permission_denied(format!("{other:?} certificates cannot read the agreements")))
            }
        }
    }
}

/// Reads a bank's frames until it hangs up, the session is replaced, or the hub shuts down.
/// The frames that arrived together are taken together (up to [`net::INGEST_BATCH_MAX`]), so
/// that their signatures are verified in one batch; never waiting for a batch to fill.
/// Their answers wait for durability in a pipeline (see [`answer_when_durable`]), so one
/// session can have many messages in one group commit.
async fn receive(
    hub: Hub,
    bank: Bic,
    open: OpenSession,
    inbound: Streaming<pb::SessionRequest>,
    sender: SessionSender,
    shutdown: CancellationToken,
    link: Option<u64>,
) {
    let (answers, pending) = mpsc::channel(hub.config().session_queue_depth);
    let answering = tokio::spawn(answer_when_durable(hub.clone(), bank, pending, sender.clone()));
    let (frames, mut arrived) = mpsc::channel(net::INGEST_BATCH_MAX);
    let reader = tokio::spawn(net::forward_stream(inbound, frames));
    let mut batch = Vec::with_capacity(net::INGEST_BATCH_MAX);
    // Why the bank's side ended, once it has (its stream closed or sent a bad frame):
    // everything it submitted before that is still answered, then the session ends.
    let mut ended: Option<Option<Status>> = None;
    while ended.is_none() {
        let received = tokio::select! {
            _ = open.cancel.cancelled() => {
                // Replaced (the only other canceller is this function, below): the old
                // client learns why, after the answers to what it sent.
                tracing::info!(%bank, session = open.id, "session superseded by a newer one of this participant");
                ended = Some(Some(Status::aborted(SUPERSEDED)));
                break;
            }
            _ = shutdown.cancelled() => break,
            received = arrived.recv_many(&mut batch, net::INGEST_BATCH_MAX) => received,
        };
        if received == 0 {
            ended = Some(None);
            break;
        }
        let mut submits = Vec::with_capacity(batch.len());
        for arrived in batch.drain(..) {
            let end = match arrived.map(|request| request.frame) {
                Ok(Some(RequestFrame::Submit(submit))) => {
                    submits.push(submit);
                    continue;
                }
                Ok(Some(RequestFrame::Delivered(delivered))) => {
                    hub.confirm_delivered(bank, delivered.osn);
                    continue;
                }
                Ok(Some(RequestFrame::Hello(_))) => {
                    Some(Status::failed_precondition("Hello is only the first frame of a session"))
                }
                Ok(Some(RequestFrame::TrackQuery(query))) if link.is_some() => {
                    let answer = hub.answer_track_query(bank, &query);
                    let frame = pb::SessionResponse { frame: Some(ResponseFrame::TrackAnswer(answer)) };
                    if sender.send(Ok(frame)).await.is_err() {
                        Some(Status::cancelled("session closed"))
                    } else {
                        continue;
                    }
                }
                Ok(Some(RequestFrame::TrackAnswer(answer))) if link.is_some() => {
                    hub.track_answered(answer);
                    continue;
                }
                Ok(Some(RequestFrame::TrackQuery(_) | RequestFrame::TrackAnswer(_))) => {
                    Some(Status::permission_denied("only a linked hub asks about payments on its session"))
                }
                Ok(None) => Some(Status::invalid_argument("empty session frame")),
                Err(None) => None,
                Err(Some(status)) => {
                    tracing::info!(%bank, %status, "session stream ended with an error");
                    // The decoder's own status, as before Hello: the bank learns what was wrong.
                    Some(status)
                }
            };
            ended = Some(end);
            break;
        }
        for answer in hub.submit_batch(bank, submits) {
            if answers.send(answer).await.is_err() {
                ended = Some(None);
                break;
            }
        }
    }
    if let Some(end) = ended {
        // The answers go out first, then the status that ends the session, if any.
        drop(answers);
        let _ = answering.await;
        if let Some(status) = end {
            let _ = sender.send(Err(status)).await;
        }
    }
    reader.abort();
    open.cancel.cancel();
    if let Some(token) = link {
        hub.link_channel_closed(bank, token);
    }
    hub.close_session(bank, open.id);
    tracing::info!(%bank, session = open.id, "session closed");
}

/// Sends each ACK or NAK once its journal ticket is durable, in submission order. The
/// answers ready together wait for the durability of the last one (tickets grow in
/// order), and the tracker learns once per run when the ACKs left.
async fn answer_when_durable(
    hub: Hub,
    bank: Bic,
    mut pending: mpsc::Receiver<(ResponseFrame, Ticket)>,
    sender: SessionSender,
) {
    let mut ready = Vec::with_capacity(ANSWER_RUN_MAX);
    while pending.recv_many(&mut ready, ANSWER_RUN_MAX).await > 0 {
        let ticket = ready.iter().map(|(_, ticket)| *ticket).max().expect("at least one");
        if let Err(error) = hub.durable(ticket).await {
            let _ = sender
                .send(Err(Status::unavailable(format!("the hub cannot store messages: {error}"))))
                .await;
            return;
        }
        let mut acked_isn = None;
        for (answer, _) in ready.drain(..) {
            if let ResponseFrame::Ack(ack) = &answer {
                acked_isn = acked_isn.max(Some(ack.isn));
            }
            if sender.send(Ok(pb::SessionResponse { frame: Some(answer) })).await.is_err() {
                return;
            }
        }
        if let Some(isn) = acked_isn {
            hub.acknowledged(bank, isn);
        }
    }
}

/// Puts a bank's queued deliveries on its session, in output sequence order, waking
/// whenever something new is queued for it.
async fn deliver(hub: Hub, bank: Bic, mut next_osn: u64, cancel: CancellationToken, sender: SessionSender) {
    let mut durability = hub.durability();
    loop {
        let deliveries = tokio::select! {
            deliveries = hub.next_deliveries(bank, next_osn, &mut durability) => deliveries,
            _ = cancel.cancelled() => return,
            _ = sender.closed() => return,
        };
        for delivery in deliveries {
            let osn = delivery.osn;
            let frame = pb::SessionResponse { frame: Some(ResponseFrame::Deliver(delivery)) };
            let sent = tokio::select! {
                sent = sender.send(Ok(frame)) => sent.is_ok(),
                _ = cancel.cancelled() => false,
            };
            if !sent {
                return;
            }
            next_osn = osn + 1;
        }
    }
}
