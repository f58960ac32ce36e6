//! The bank's side of its session with the hub: connect with mTLS, say Hello, resend
//! what the hub has not ACKed, process deliveries in order, reconnect with backoff, to
//! the next of its hubs or to the active one a standby names (see [`super::hubs`]).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::Bank;
use super::hubs::{HubFailure, HubUrls, NextHub, Reconnect};
use crate::net;
use crate::pb;
use crate::pb::hub_service_client::HubServiceClient;
use crate::pb::session_request::Frame as RequestFrame;
use crate::pb::session_response::Frame as ResponseFrame;
use crate::store::Ticket;
use crate::tls::{NetworkDir, Role};

/// Frames buffered towards the hub.
pub const SESSION_QUEUE_DEPTH: usize = 1024;
/// Submissions put on the session per round.
const SUBMIT_BATCH_MAX: usize = 64;
/// Most submissions on the session without an answer yet. Well below the queue depths
/// of both sides, so that neither side can block the other with answers it must send.
pub const SUBMIT_WINDOW: usize = 256;

/// Why a session ended, other than at this node's shutdown.
enum Ended {
    /// The hub ended it with ABORTED: a newer session of this bank's certificate replaced
    /// it (the hub keeps one session per participant).
    Superseded(String),
    /// This bank refused the session at Welcome: the hub's journal and this bank's store
    /// disagree on the input sequence (see `Bank::on_welcome`). Trying again will not mend
    /// it; an operator must.
    Refused(String),
    /// The hub could not be reached: no connection, or no TLS session.
    Unreachable(String),
    /// The hub answered UNAVAILABLE, as a standby does, naming the active hub's URL
    /// when it knows it.
    Standby {
        /// The hub's words.
        detail: String,
        /// The URL it named (`net::ACTIVE_HUB_METADATA`).
        active: Option<String>,
    },
    /// Anything else: the connection, the hub, or what this bank found wrong.
    Lost(String),
}

impl Ended {
    /// The sentence saying why.
    fn detail(&self) -> &str {
        match self {
            Ended::Superseded(detail)
            | Ended::Refused(detail)
            | Ended::Unreachable(detail)
            | Ended::Standby { detail, .. }
            | Ended::Lost(detail) => detail,
        }
    }

    /// What the choice of the next hub makes of it.
    fn failure(&self) -> HubFailure {
        match self {
            Ended::Superseded(_) | Ended::Refused(_) => HubFailure::Refusal,
            Ended::Unreachable(_) => HubFailure::Unreachable,
            Ended::Standby { active, .. } => HubFailure::Standby { active: active.clone() },
            Ended::Lost(_) => HubFailure::Lost,
        }
    }
}

impl From<String> for Ended {
    fn from(problem: String) -> Self {
        Ended::Lost(problem)
    }
}

impl From<&str> for Ended {
    fn from(problem: &str) -> Self {
        Ended::Lost(problem.to_owned())
    }
}

/// Keeps `bank` in session with one of the hubs at `hubs` until `shutdown` is cancelled:
/// the first, then whichever [`Reconnect`] says after each failure. Whichever hub
/// answers, the session starts from this bank's durable state with the same Hello.
pub async fn run_session(bank: Bank, network: NetworkDir, hubs: HubUrls, shutdown: CancellationToken) {
    let mut reconnect = Reconnect::new(hubs);
    while !shutdown.is_cancelled() {
        let hub_url = reconnect.current().to_owned();
        // The bank's other calls to the hub (quotes) go where its session goes.
        *bank.inner.hub_link.lock().expect("hub link lock") = Some((network.clone(), hub_url.clone()));
        let ended = match session_once(&bank, &network, &hub_url, &shutdown, &mut reconnect).await {
            Ok(()) => Ended::Lost("the session ended".into()),
            Err(ended) => ended,
        };
        if shutdown.is_cancelled() {
            return;
        }
        let attempt = reconnect.after(&ended.failure());
        let retry_in_ms = attempt.wait.as_millis() as u64;
        // One line each time: the move with its reason, or why the session ended.
        let ignored_a_named_hub = matches!(attempt.hub, NextHub::NamedNotGiven { .. });
        if reconnect.current() == hub_url && !ignored_a_named_hub {
            log_end(&bank, &hub_url, &ended, retry_in_ms);
        } else {
            log_move(&bank, &hub_url, reconnect.current(), &attempt.hub, ended.detail(), retry_in_ms);
        }
        tokio::select! {
            _ = tokio::time::sleep(attempt.wait) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// Logs a move from the hub at `from` to the one at `to`, with the `reason` to leave and
/// why that one.
fn log_move(bank: &Bank, from: &str, to: &str, hub: &NextHub, reason: &str, retry_in_ms: u64) {
    match hub {
        NextHub::Same(_) => {}
        NextHub::Next(_) => {
            tracing::warn!(bank = %bank.bic(), %from, %to, %reason, retry_in_ms, "moving to the next hub")
        }
        NextHub::Named(_) => tracing::warn!(
            bank = %bank.bic(), %from, %to, %reason, retry_in_ms,
            "moving to the hub the standby named as active"
        ),
        NextHub::NamedNotGiven { named, .. } => tracing::warn!(
            bank = %bank.bic(), %from, %to, %named, %reason, retry_in_ms,
            "the standby named as active a hub this bank was not given (see --hub): not following it; \
             trying the next hub this bank was given"
        ),
    }
}

/// Logs why the session with the hub at `hub_url` ended.
fn log_end(bank: &Bank, hub_url: &str, ended: &Ended, retry_in_ms: u64) {
    match ended {
        Ended::Superseded(detail) => {
            // Someone else holds this bank's certificate and key (a second node for this
            // bank, or a stolen key): taking the session back at once would have the two
            // replace each other many times a second.
            tracing::error!(
                bank = %bank.bic(), hub = %hub_url, %detail, retry_in_ms,
                "the hub replaced this session with a newer one of this bank's certificate: is a second node \
                 running for this bank, or does someone else hold its key? taking the session back later"
            );
        }
        Ended::Refused(problem) => tracing::error!(
            bank = %bank.bic(), hub = %hub_url, %problem, retry_in_ms,
            "this bank refused its session with the hub: nothing is sent or received until it is mended"
        ),
        Ended::Unreachable(problem) => {
            tracing::warn!(bank = %bank.bic(), hub = %hub_url, %problem, retry_in_ms, "cannot reach the hub")
        }
        Ended::Standby { detail, .. } => {
            tracing::info!(bank = %bank.bic(), hub = %hub_url, %detail, retry_in_ms, "the hub is not the active one")
        }
        Ended::Lost(problem) => {
            tracing::warn!(bank = %bank.bic(), hub = %hub_url, %problem, retry_in_ms, "session with the hub lost")
        }
    }
}

fn frame(frame: RequestFrame) -> pb::SessionRequest {
    pb::SessionRequest { frame: Some(frame) }
}

async fn session_once(
    bank: &Bank,
    network: &NetworkDir,
    hub_url: &str,
    shutdown: &CancellationToken,
    reconnect: &mut Reconnect,
) -> Result<(), Ended> {
    let channel = net::connect(network, Role::Bank(bank.bic()), hub_url).await.map_err(Ended::Unreachable)?;
    let mut client = HubServiceClient::new(channel)
        .max_decoding_message_size(net::FRAME_SIZE_MAX_BYTES)
        .max_encoding_message_size(net::FRAME_SIZE_MAX_BYTES);
    let (sender, receiver) = mpsc::channel(SESSION_QUEUE_DEPTH);
    let hello = pb::Hello {
        last_osn_processed: bank.last_osn_durable(),
        contract_version: net::CONTRACT_VERSION,
        network_directory: None,
    };
    sender.send(frame(RequestFrame::Hello(hello))).await.map_err(|_| "session closed")?;
    let mut inbound =
        client.session(ReceiverStream::new(receiver)).await.map_err(|status| ended_by(&status))?.into_inner();
    let welcome = match inbound.message().await.map_err(|status| ended_by(&status))? {
        Some(pb::SessionResponse { frame: Some(ResponseFrame::Welcome(welcome)) }) => welcome,
        _ => return Err("the hub did not answer Hello with Welcome".into()),
    };
    if welcome.contract_version != net::CONTRACT_VERSION {
        // Not a refusal of the hub's journal: an upgraded hub is taken as soon as it runs.
        return Err(format!(
            "the hub speaks session contract version {} (0: the first), but this bank speaks version {}: \
             it would read the hub's receipts wrong; upgrade the older of the two",
            welcome.contract_version,
            net::CONTRACT_VERSION
        )
        .into());
    }
    if welcome.bic != bank.bic().as_str() {
        return Err(format!("the hub knows this certificate as {}, not {}", welcome.bic, bank.bic()).into());
    }
    bank.on_welcome(&welcome).map_err(Ended::Refused)?;
    reconnect.welcomed();
    let (confirmations, pending) = mpsc::channel(SESSION_QUEUE_DEPTH);
    let confirmer = tokio::spawn(confirm_when_durable(bank.clone(), pending, sender.clone()));
    let _stop_confirmer = net::AbortOnDrop(confirmer);
    let mut durability = bank.durability();
    let (frames, mut arrived) = mpsc::channel(net::INGEST_BATCH_MAX);
    let _stop_reader = net::AbortOnDrop(tokio::spawn(net::forward_stream(inbound, frames)));
    let mut batch = Vec::with_capacity(net::INGEST_BATCH_MAX);
    let mut roots = super::inbound::VerifiedRoot::default();
    loop {
        for submit in bank.take_unsent(SUBMIT_BATCH_MAX, SUBMIT_WINDOW) {
            sender.send(frame(RequestFrame::Submit(submit))).await.map_err(|_| "session closed")?;
        }
        let resume_at = bank.state().resume_at;
        let received = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = bank.inner.outbox_wake.notified() => continue,
            _ = durability.changed() => continue,
            _ = async { tokio::time::sleep_until(resume_at.expect("guarded")).await }, if resume_at.is_some() => continue,
            received = arrived.recv_many(&mut batch, net::INGEST_BATCH_MAX) => received,
        };
        if received == 0 {
            return Err("the hub ended the session".into());
        }
        let responses = batch.drain(..).map(response_frame).collect::<Result<Vec<ResponseFrame>, Ended>>()?;
        // The signatures of everything that arrived together are verified in one batch.
        let verified = bank.verify_responses(&responses, &mut roots);
        for (response, verified) in responses.into_iter().zip(verified) {
            match response {
                ResponseFrame::Ack(ack) => bank.on_ack(&ack, verified.map(drop))?,
                ResponseFrame::Nak(nak) => bank.on_nak(&nak)?,
                ResponseFrame::Deliver(deliver) => {
                    let envelope =
                        verified.and_then(|e| e.ok_or_else(|| "a delivery without an envelope".to_owned()));
                    let confirmation = bank.on_deliver(&deliver, envelope)?;
                    confirmations.send(confirmation).await.map_err(|_| "session closed")?;
                }
                ResponseFrame::Welcome(_) => return Err("the hub sent a second Welcome".into()),
                ResponseFrame::TrackQuery(_) | ResponseFrame::TrackAnswer(_) => {
                    return Err("the hub sent a link session's frame on a bank's session".into());
                }
            }
        }
    }
}

/// A frame from the hub, or why the session ended.
fn response_frame(arrived: net::Arrived<pb::SessionResponse>) -> Result<ResponseFrame, Ended> {
    match arrived {
        Ok(pb::SessionResponse { frame: Some(response) }) => Ok(response),
        Ok(_) => Err("the hub sent an empty frame".into()),
        Err(None) => Err("the hub ended the session".into()),
        Err(Some(status)) => Err(ended_by(&status)),
    }
}

/// Why the hub's status ended the session.
fn ended_by(status: &tonic::Status) -> Ended {
    let detail = format!("{} ({:?})", status.message(), status.code());
    match status.code() {
        tonic::Code::Aborted => Ended::Superseded(detail),
        tonic::Code::Unavailable => Ended::Standby { detail, active: net::active_hub_named(status) },
        _ => Ended::Lost(detail),
    }
}

/// Confirms deliveries to the hub once their processing is durable, in order. The
/// deliveries ready together wait for the durability of them all and are confirmed by one cumulative `Delivered` (the hub takes it as "every delivery
/// up to this number"): one frame and one hub record per run, not per delivery.
async fn confirm_when_durable(
    bank: Bank,
    mut pending: mpsc::Receiver<(pb::Delivered, Ticket)>,
    sender: mpsc::Sender<pb::SessionRequest>,
) {
    let mut ready = Vec::with_capacity(net::INGEST_BATCH_MAX);
    while pending.recv_many(&mut ready, net::INGEST_BATCH_MAX).await > 0 {
        let ticket = ready.iter().map(|(_, ticket)| *ticket).max().expect("at least one");
        let osn = ready.drain(..).map(|(delivered, _)| delivered.osn).max().expect("at least one");
        if bank.durable(ticket).await.is_err() {
            return;
        }
        bank.delivered_durably(osn);
        if sender.send(frame(RequestFrame::Delivered(pb::Delivered { osn }))).await.is_err() {
            return;
        }
    }
}
