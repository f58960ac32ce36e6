//! Links to other networks' hubs. Each network keeps its own hub, PKI, banks and currency;
//! two hubs join by a link session, and at each hub the other network is one participant,
//! known by its link identity (its central bank), whose outbox holds what goes to the
//! other network and whose position is the swap line between the two central banks.
//!
//! The link session is the bank session's protocol, with the hub that dials in the bank's
//! place: what it sends are Submits numbered by its outbox's output sequence (answered by
//! ACKs, which confirm them), and what it receives are Deliveries, which it takes in as
//! submissions of the link participant and confirms once durable. So store-and-forward,
//! sequence numbers both ways, PDE/PDM on resend, duplicates answered with the original
//! ACK and hop receipts are the bank session's own. The accepting hub serves it on a
//! listener of its own, whose TLS trusts each peer's CA for that peer's link certificate
//! alone (`tls::link`).
//!
//! Hello and Welcome carry each hub's directory, signed by it: the banks it publishes,
//! their keys, and what they accept from the other network. A hub checks the signature
//! against the peer hub's keys its link configuration holds, keeps the directory in the
//! network directory for its own banks, and routes and verifies by it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{ClientTlsConfig, Endpoint};

use super::{Hub, OperatorAction};
use crate::directory::{DirectoryFile, PublishedDirectory};
use crate::model::Bic;
use crate::net;
use crate::pb;
use crate::pb::session_request::Frame as RequestFrame;
use crate::pb::session_response::Frame as ResponseFrame;
use crate::tls::NetworkDir;
use crate::tls::link::{LinkConfig, LinkIdentity};

/// How long the dialling hub waits before trying a link again.
pub const LINK_RETRY: Duration = Duration::from_millis(500);
/// How long a hub waits for the hub across a link to answer a question about a payment.
pub const LINK_QUERY_WAIT: Duration = Duration::from_secs(3);

/// Where a question to the hub across a link goes: the link session as this hub dialled
/// it, or as the other hub did.
#[derive(Clone)]
pub(crate) enum LinkChannel {
    Dialled(mpsc::Sender<pb::SessionRequest>),
    Accepted(mpsc::Sender<Result<pb::SessionResponse, tonic::Status>>),
}

type PendingAnswer = tokio::sync::oneshot::Sender<Result<Vec<pb::TrackStep>, String>>;

/// Each link session's channel while it is open (so, whether the link is up), and the
/// questions about payments' paths asked across it, waiting for their answers.
#[derive(Default)]
pub(crate) struct LinkQueries {
    next_id: std::sync::atomic::AtomicU64,
    channels: std::sync::Mutex<std::collections::HashMap<Bic, (u64, LinkChannel)>>,
    pending: std::sync::Mutex<std::collections::HashMap<u64, PendingAnswer>>,
}

/// The links a hub has, as configured in its network directory.
pub struct HubLinks {
    /// This network's link identity.
    pub identity: LinkIdentity,
    /// Each link's configuration.
    pub links: Vec<LinkConfig>,
    /// The network directory: its `directory.json` is what this hub publishes, and the
    /// peers' published directories are kept in it for this network's banks.
    pub network: NetworkDir,
}

impl HubLinks {
    /// The links configured in `network`, if it has a link identity; `None` otherwise.
    pub fn load(network: &NetworkDir) -> Result<Option<Self>, String> {
        let Some(identity) = network.link_identity().map_err(|e| e.to_string())? else { return Ok(None) };
        let links = network.links().map_err(|e| e.to_string())?;
        Ok(Some(Self { identity, links, network: network.clone() }))
    }

    fn link(&self, peer: Bic) -> Option<&LinkConfig> {
        self.links.iter().find(|link| link.peer.bic == peer)
    }
}

impl Hub {
    /// Takes the links of `links` on: their swap lines' caps and the agreements' rates
    /// are journalled (when they differ from what the journal holds), so that recovery
    /// replays the decisions made under them.
    pub async fn set_links(&self, links: HubLinks) -> Result<(), String> {
        for link in &links.links {
            let peer = link.peer.bic;
            if !self.directory().is_link(peer) {
                return Err(format!("the hub's directory does not know the link to {peer}: restart it"));
            }
            let (cap, terms) = {
                let state = self.inner.state.lock().expect("hub state lock");
                (state.links.get(&peer).map(|t| t.cap), state.fx.agreements().cloned().collect::<Vec<_>>())
            };
            if cap != Some(link.cap.minor_units()) {
                self.operate(OperatorAction::SetLinkCap(peer, link.cap)).await?;
            }
            for (pair, rate) in [link.rate_out, link.rate_in] {
                let agreed = terms.iter().any(|a| a.pair == pair && a.rate == rate && a.spread_bps == 0);
                if !agreed {
                    let agreement = super::fx::Agreement::new(pair, rate, 0, self.now_unix_ms(), None)
                        .map_err(|e| e.to_string())?;
                    self.operate(OperatorAction::SetAgreement(agreement)).await?;
                }
            }
        }
        self.inner.links.set(Arc::new(links)).map_err(|_| "the hub's links are set once".to_string())
    }

    /// The links, once set.
    pub(crate) fn links(&self) -> Option<&HubLinks> {
        self.inner.links.get().map(Arc::as_ref)
    }

    /// This network's directory for `peer`, signed by this hub.
    pub(crate) fn published_directory(&self, peer: Bic) -> Result<pb::SignedDirectory, String> {
        let links = self.links().ok_or("this hub has no links")?;
        let file = DirectoryFile::read(links.network.root()).map_err(|e| e.to_string())?;
        let now = self.now_unix_ms();
        let published = self.directory().publish(&file, links.identity.bic, peer, now);
        Ok(published.sign(&self.inner.credentials.identity(now)))
    }

    /// Takes in `peer`'s directory, signed by its hub: checked against the hub keys of the
    /// link's configuration, kept for this network's banks, and put in force here.
    pub(crate) fn accept_published(
        &self,
        peer: Bic,
        signed: Option<&pb::SignedDirectory>,
    ) -> Result<(), String> {
        let links = self.links().ok_or("this hub has no links")?;
        let link =
            links.link(peer).ok_or_else(|| format!("{peer} is not a network this one is linked to"))?;
        let signed = signed.ok_or_else(|| format!("{peer} sent no directory on the link"))?;
        PublishedDirectory::verify(signed, peer, &link.peer.hub_keys, self.now_unix_ms())?;
        let path = links.network.published_directory_path(peer);
        // A reconnection usually brings the same directory: kept as it is, nobody reloads.
        if PublishedDirectory::load_signed(&path).ok().flatten().as_ref() == Some(signed) {
            return Ok(());
        }
        PublishedDirectory::save_signed(signed, &path)?;
        self.reload_credentials(&links.network)
    }

    /// Whether the link to `peer` has a session now (as this hub dialled it, or as the
    /// peer did), for the dashboard and the operators: its channel is open.
    pub fn link_up(&self, peer: Bic) -> bool {
        self.inner.link_queries.channels.lock().expect("link channels lock").contains_key(&peer)
    }

    /// Whether the link to `peer` is up and this hub has the peer network's directory in
    /// force (its banks route through the link): payments to them can go.
    pub fn link_ready(&self, peer: Bic) -> bool {
        self.link_up(peer) && self.directory().remote_participants().any(|(_, _, link)| link == peer)
    }

    /// The swap line with `peer` now, read together: the link's position in `currency`
    /// (this hub's), and what is reserved on it for payments out through the link.
    pub fn swap_line(
        &self,
        peer: Bic,
        currency: crate::model::Currency,
    ) -> (super::positions::Position, i64) {
        let state = self.inner.state.lock().expect("hub state lock");
        let out_reserved = state.links.get(&peer).map_or(0, |terms| terms.out_reserved);
        (state.positions.position(peer, currency), out_reserved)
    }

    /// The link session with `peer` is open on `channel`; returns its token for
    /// [`Hub::link_channel_closed`].
    pub(crate) fn link_channel_open(&self, peer: Bic, channel: LinkChannel) -> u64 {
        let queries = &self.inner.link_queries;
        let token = queries.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        queries.channels.lock().expect("link channels lock").insert(peer, (token, channel));
        token
    }

    /// The link session `token` with `peer` ended (unless a newer one replaced it).
    pub(crate) fn link_channel_closed(&self, peer: Bic, token: u64) {
        let mut channels = self.inner.link_queries.channels.lock().expect("link channels lock");
        if channels.get(&peer).is_some_and(|(open, _)| *open == token) {
            channels.remove(&peer);
        }
    }

    /// Asks the hub across the link with `peer` for its steps of payment `uetr`.
    pub async fn track_across(&self, peer: Bic, uetr: &str) -> Result<Vec<pb::TrackStep>, String> {
        let queries = &self.inner.link_queries;
        let channel = queries.channels.lock().expect("link channels lock").get(&peer).map(|(_, c)| c.clone());
        let channel = channel.ok_or_else(|| format!("the link with {peer} is down"))?;
        let id = queries.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (answer, answered) = tokio::sync::oneshot::channel();
        queries.pending.lock().expect("link queries lock").insert(id, answer);
        let query = pb::LinkTrackQuery { id, uetr: uetr.to_owned() };
        let sent = match channel {
            LinkChannel::Dialled(frames) => {
                frames.send(request(RequestFrame::TrackQuery(query))).await.is_ok()
            }
            LinkChannel::Accepted(frames) => {
                let frame = pb::SessionResponse { frame: Some(ResponseFrame::TrackQuery(query)) };
                frames.send(Ok(frame)).await.is_ok()
            }
        };
        let answer = match sent {
            true => tokio::time::timeout(LINK_QUERY_WAIT, answered).await.ok(),
            false => None,
        };
        queries.pending.lock().expect("link queries lock").remove(&id);
        match answer {
            Some(Ok(steps)) => steps,
            Some(Err(_)) | None if !sent => Err(format!("the link with {peer} closed before it was asked")),
            Some(Err(_)) => Err(format!("the link with {peer} closed before it answered")),
            None => Err(format!(
                "the hub across the link with {peer} did not answer within {} s",
                LINK_QUERY_WAIT.as_secs()
            )),
        }
    }

    /// The answer to `peer`'s question: this hub's own steps of a payment that crossed
    /// the link with `peer` (and of no other payment).
    pub(crate) fn answer_track_query(&self, peer: Bic, query: &pb::LinkTrackQuery) -> pb::LinkTrackAnswer {
        let across = crate::model::Uetr::parse(&query.uetr)
            .ok()
            .and_then(|uetr| self.payment(&uetr))
            .filter(|p| [p.route().sender_link, p.route().receiver_link].contains(&Some(peer)));
        match across {
            Some(payment) => {
                let reports = self.positions();
                let steps = super::admin::track_steps(&payment, reports.reports());
                pb::LinkTrackAnswer { id: query.id, steps, error: String::new() }
            }
            None => pb::LinkTrackAnswer {
                id: query.id,
                steps: Vec::new(),
                error: format!("no payment {} across the link with {peer}", query.uetr),
            },
        }
    }

    /// The hub across a link answered question `answer.id`.
    pub(crate) fn track_answered(&self, answer: pb::LinkTrackAnswer) {
        let waiting = self.inner.link_queries.pending.lock().expect("link queries lock").remove(&answer.id);
        if let Some(waiting) = waiting {
            let _ = waiting.send(if answer.error.is_empty() { Ok(answer.steps) } else { Err(answer.error) });
        }
    }

    /// Checks the receipt of the peer's ACK for what this hub sent it as `ack.isn`: the
    /// peer hub signed, with a key its link configuration holds, that it took exactly that
    /// envelope. One that does not verify ends the session (and nothing is confirmed).
    fn check_link_receipt(&self, peer: Bic, ack: &pb::Ack) -> Result<(), String> {
        let envelope = {
            let state = self.inner.state.lock().expect("hub state lock");
            let participant = state.participants.get(&peer).expect("a link is a participant");
            match participant.outbox.get(&ack.isn) {
                Some(queued) => queued.envelope.clone(),
                // Confirmed already: an ACK again for a resend.
                None => return Ok(()),
            }
        };
        let envelope = crate::crypto::SignedEnvelope::try_from(envelope).map_err(|e| e.to_string())?;
        let receipt =
            ack.receipt.clone().ok_or_else(|| format!("{peer}'s ACK of {} has no receipt", ack.isn))?;
        let proof =
            crate::crypto::ReceiptProof::try_from(receipt).map_err(|e| format!("{peer}'s receipt: {e}"))?;
        self.directory()
            .keys()
            .verify_receipt(peer, &envelope, &proof)
            .map_err(|e| format!("{peer}'s receipt for input sequence {} does not verify: {e}", ack.isn))
    }

    /// The first output sequence number in `peer`'s outbox not yet confirmed.
    fn first_unconfirmed(&self, peer: Bic) -> u64 {
        let state = self.inner.state.lock().expect("hub state lock");
        let participant = state.participants.get(&peer).expect("a link is a participant");
        participant.outbox.keys().next().copied().unwrap_or(participant.next_osn)
    }

    /// What this hub has durably taken in from `peer`'s deliveries: the link session's
    /// Hello says so, and the peer redelivers what follows. The highest number on which a
    /// message was accepted, not the next number less one: a number is journalled as
    /// consumed before its message is, and a hub killed between the two would otherwise
    /// report a delivery it never kept, which the peer would then never send again
    /// (tests/link_crash.rs). Refusals above it are redelivered and refused again.
    fn link_processed(&self, peer: Bic) -> u64 {
        let state = self.inner.state.lock().expect("hub state lock");
        state.participants.get(&peer).map_or(0, |p| p.last_isn_accepted)
    }
}

/// Dials every link whose configuration names the peer's URL, and keeps each up until
/// `shutdown`: a link that fails is dialled again after [`LINK_RETRY`].
pub fn dial_links(
    hub: &Hub,
    shutdown: CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let Some(links) = hub.links() else { return Ok(Vec::new()) };
    let mut tasks = Vec::new();
    for link in links.links.iter().filter(|link| link.peer_url.is_some()) {
        let tls = links.network.link_client_tls(link).map_err(|e| e.to_string())?;
        let url = link.peer_url.clone().expect("filtered");
        let (hub, peer, shutdown) = (hub.clone(), link.peer.bic, shutdown.clone());
        tasks.push(tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                match run_link_once(&hub, peer, &url, tls.clone(), &shutdown).await {
                    Ok(()) => {}
                    Err(error) => tracing::warn!(%peer, %url, %error, "link session ended"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(LINK_RETRY) => {}
                }
            }
        }));
    }
    Ok(tasks)
}

/// One link session, dialled: until it fails or `shutdown`.
async fn run_link_once(
    hub: &Hub,
    peer: Bic,
    url: &str,
    tls: ClientTlsConfig,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let channel = Endpoint::from_shared(url.to_owned())
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(net::CONNECT_TIMEOUT)
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut client = pb::hub_service_client::HubServiceClient::new(channel)
        .max_decoding_message_size(net::FRAME_SIZE_MAX_BYTES)
        .max_encoding_message_size(net::FRAME_SIZE_MAX_BYTES);
    let (frames, outgoing) = mpsc::channel(hub.config().session_queue_depth);
    // What the Hello reports taken in must be durable first: the peer stops keeping it,
    // and a crash before it reached the disk would lose it.
    hub.durable(hub.journal().appended()).await.map_err(|e| e.to_string())?;
    let hello = pb::Hello {
        last_osn_processed: hub.link_processed(peer),
        contract_version: net::CONTRACT_VERSION,
        network_directory: Some(hub.published_directory(peer)?),
    };
    frames.send(request(RequestFrame::Hello(hello))).await.map_err(|_| "session closed")?;
    let mut inbound = client
        .session(ReceiverStream::new(outgoing))
        .await
        .map_err(|status| format!("the peer refused the session: {}", status.message()))?
        .into_inner();
    let welcome = match inbound.message().await.map_err(|s| s.message().to_owned())? {
        Some(pb::SessionResponse { frame: Some(ResponseFrame::Welcome(welcome)) }) => welcome,
        other => return Err(format!("the peer's first frame was not Welcome: {other:?}")),
    };
    if welcome.contract_version != net::CONTRACT_VERSION {
        return Err(format!("the peer speaks session contract version {}", welcome.contract_version));
    }
    hub.accept_published(peer, welcome.network_directory.as_ref())?;
    let token = hub.link_channel_open(peer, LinkChannel::Dialled(frames.clone()));
    tracing::info!(%peer, %url, next_isn = welcome.next_isn_expected, "link session open");
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    let sending =
        tokio::spawn(send_outbox(hub.clone(), peer, welcome.next_isn_expected, frames.clone(), stop.clone()));
    let result = receive_link(hub, peer, inbound, &frames, shutdown).await;
    hub.link_channel_closed(peer, token);
    stop.cancel();
    let _ = sending.await;
    result
}

fn request(frame: RequestFrame) -> pb::SessionRequest {
    pb::SessionRequest { frame: Some(frame) }
}

/// Sends the link's outbox as Submits, numbered by its output sequence, from its first
/// unconfirmed message: those below `next_isn_expected` the peer has seen (their answers
/// were lost with the last session) and go again flagged as possible duplicates.
async fn send_outbox(
    hub: Hub,
    peer: Bic,
    next_isn_expected: u64,
    frames: mpsc::Sender<pb::SessionRequest>,
    stop: CancellationToken,
) {
    let mut durability = hub.durability();
    let mut next = hub.first_unconfirmed(peer);
    loop {
        let deliveries = tokio::select! {
            deliveries = hub.next_deliveries(peer, next, &mut durability) => deliveries,
            _ = stop.cancelled() => return,
        };
        for delivery in deliveries {
            next = delivery.osn + 1;
            let submit = pb::Submit {
                isn: delivery.osn,
                envelope: delivery.envelope,
                possible_duplicate: delivery.possible_duplicate || delivery.osn < next_isn_expected,
            };
            let sent = tokio::select! {
                sent = frames.send(request(RequestFrame::Submit(submit))) => sent.is_ok(),
                _ = stop.cancelled() => false,
            };
            if !sent {
                return;
            }
        }
    }
}

/// Reads the peer's frames: an ACK confirms what this hub sent; the deliveries that
/// arrived together are taken in as the link participant's submissions in one batch
/// (their signatures verified together, one durable wait) and confirmed at once.
async fn receive_link(
    hub: &Hub,
    peer: Bic,
    inbound: tonic::Streaming<pb::SessionResponse>,
    frames: &mpsc::Sender<pb::SessionRequest>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let (arrivals, mut arrived) = mpsc::channel(net::INGEST_BATCH_MAX);
    let reader = net::AbortOnDrop(tokio::spawn(net::forward_stream(inbound, arrivals)));
    let mut batch = Vec::with_capacity(net::INGEST_BATCH_MAX);
    let result = loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            received = arrived.recv_many(&mut batch, net::INGEST_BATCH_MAX) => received,
        };
        if received == 0 {
            break Err("the peer ended the session".into());
        }
        let mut deliveries = Vec::new();
        let mut ended = None;
        for arrival in batch.drain(..) {
            let frame = match arrival {
                Ok(pb::SessionResponse { frame: Some(frame) }) => frame,
                Ok(pb::SessionResponse { frame: None }) => {
                    ended = Some("an empty frame".to_string());
                    break;
                }
                Err(None) => {
                    ended = Some("the peer ended the session".into());
                    break;
                }
                Err(Some(status)) => {
                    ended = Some(status.message().to_owned());
                    break;
                }
            };
            match frame {
                ResponseFrame::Ack(ack) => {
                    if let Err(error) = hub.check_link_receipt(peer, &ack) {
                        ended = Some(error);
                        break;
                    }
                    hub.confirm_delivered(peer, ack.isn);
                }
                ResponseFrame::Nak(nak) => {
                    // The peer refused what this hub accepted and ACKed to its bank: the
                    // two networks' views of each other differ (a directory or agreement
                    // changed between the checks). It is confirmed so that the link moves
                    // on, and counted and logged for the operators.
                    tracing::error!(%peer, isn = nak.isn, message_id = %nak.message_id, reason = %nak.reason_code, detail = %nak.detail, "the linked hub refused a message this hub had accepted");
                    metrics::counter!(crate::metrics::HUB_LINK_REFUSED).increment(1);
                    hub.confirm_delivered(peer, nak.isn);
                }
                ResponseFrame::Deliver(delivery) => deliveries.push(delivery),
                ResponseFrame::TrackQuery(query) => {
                    let answer = hub.answer_track_query(peer, &query);
                    if frames.send(request(RequestFrame::TrackAnswer(answer))).await.is_err() {
                        ended = Some("session closed".into());
                        break;
                    }
                }
                ResponseFrame::TrackAnswer(answer) => hub.track_answered(answer),
                ResponseFrame::Welcome(_) => {
                    ended = Some("a second Welcome".into());
                    break;
                }
            }
        }
        // What arrived before the end is still taken in and confirmed.
        if !deliveries.is_empty()
            && let Err(error) = take_in(hub, peer, deliveries, frames).await
        {
            break Err(error);
        }
        if let Some(error) = ended {
            break Err(error);
        }
    };
    drop(reader);
    result
}

/// Takes the peer's `deliveries` in as submissions of the link participant, in one batch;
/// once they are durable (or refused), confirms them all to the peer with one frame.
async fn take_in(
    hub: &Hub,
    peer: Bic,
    deliveries: Vec<pb::Deliver>,
    frames: &mpsc::Sender<pb::SessionRequest>,
) -> Result<(), String> {
    let last = deliveries.last().map(|d| d.osn).expect("at least one");
    let submits = deliveries
        .into_iter()
        .map(|d| pb::Submit { isn: d.osn, envelope: d.envelope, possible_duplicate: d.possible_duplicate })
        .collect();
    let answers = hub.submit_batch(peer, submits);
    let ticket = answers.iter().map(|(_, ticket)| *ticket).max().expect("one answer each");
    let mut acked = None;
    for (answer, _) in &answers {
        match answer {
            ResponseFrame::Ack(ack) => acked = acked.max(Some(ack.isn)),
            ResponseFrame::Nak(nak) if nak.detail.contains("input sequence gap") => {
                return Err(format!("the link's sequence broke: {}", nak.detail));
            }
            ResponseFrame::Nak(nak) => {
                tracing::error!(%peer, osn = nak.isn, message_id = %nak.message_id, detail = %nak.detail, "refused a message the linked hub had accepted");
                metrics::counter!(crate::metrics::HUB_LINK_REFUSED).increment(1);
            }
            _ => {}
        }
    }
    hub.durable(ticket).await.map_err(|e| e.to_string())?;
    if let Some(isn) = acked {
        // As ACKs leaving on a bank's session: the tracker learns it, and the link's
        // payments stop waiting for it.
        hub.acknowledged(peer, isn);
    }
    frames
        .send(request(RequestFrame::Delivered(pb::Delivered { osn: last })))
        .await
        .map_err(|_| "session closed".to_string())
}
