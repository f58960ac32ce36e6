//! The two ceilings a load test is judged against, measured on this machine in the same
//! run: what the cores can do if a payment were nothing but its signatures (crypto), and
//! what tonic over mTLS on loopback moves if a message were nothing but bytes (transport).

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::crypto::{KeyDirectory, KeyId, SignedEnvelope, SigningIdentity};
use crate::model::{Bic, Body, Message, PaymentStatus, PaymentStatusReport};
use crate::net;
use crate::pb;
use crate::pb::loopback_service_client::LoopbackServiceClient;
use crate::pb::loopback_service_server::{LoopbackService, LoopbackServiceServer};
use crate::tls::{NetworkDir, Role};

/// Payments verified together, as the hub and banks batch them.
pub const CRYPTO_BATCH: usize = 64;

/// Signatures made per payment: the pacs.008 and the pacs.002, and the hub's receipt
/// for each.
pub const SIGNS_PER_PAYMENT: usize = 4;
/// Signatures verified per payment: each message at the hub and at its receiver, and
/// each receipt at the bank that sent the message.
pub const VERIFIES_PER_PAYMENT: usize = 6;

/// Payments per second the machine's cores sustain doing only a payment's signing and
/// verification work (4 signatures, 6 verifications in batches of [`CRYPTO_BATCH`]),
/// one thread per core, for `duration`.
pub fn crypto_ceiling(duration: Duration) -> f64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    let workers: Vec<_> = (0..threads).map(|_| std::thread::spawn(move || crypto_worker(duration))).collect();
    let payments: u64 = workers.into_iter().map(|w| w.join().expect("crypto worker")).sum();
    payments as f64 / start.elapsed().as_secs_f64()
}

fn identity(bic: &str) -> SigningIdentity {
    SigningIdentity::generate(Bic::parse(bic).expect("valid"), KeyId::parse("k1").expect("valid"))
}

/// Runs batches of payments' crypto until `duration` has passed; returns payments done.
fn crypto_worker(duration: Duration) -> u64 {
    let (sender, receiver, hub) = (identity("LOADRUMMXXX"), identity("LOADIRTHXXX"), identity("CRDRZZ00XXX"));
    let mut keys = KeyDirectory::new();
    for party in [&sender, &receiver, &hub] {
        keys.register(party.bic(), party.key_id().clone(), &party.verifying_key_bytes()).expect("fresh keys");
    }
    let pacs008 = super::sample_credit_transfer(sender.bic(), receiver.bic());
    let header = pacs008.header();
    let uetr = header.uetr.expect("a pacs.008 has a UETR");
    let report = PaymentStatusReport {
        original_message_id: header.message_id.clone(),
        uetr,
        status: PaymentStatus::Acsc,
        reason: None,
        additional_information: "credited".into(),
    };
    let reply = crate::model::Header {
        message_id: crate::model::MessageId::generate(),
        sender: receiver.bic(),
        receiver: sender.bic(),
        ..header.clone()
    };
    let pacs002 = Message::new(reply, Body::Pacs002(report)).expect("valid");
    let deadline = Instant::now() + duration;
    let mut payments = 0;
    while Instant::now() < deadline {
        let transfers: Vec<SignedEnvelope> = (0..CRYPTO_BATCH).map(|_| sender.sign(&pacs008)).collect();
        let reports: Vec<SignedEnvelope> = (0..CRYPTO_BATCH).map(|_| receiver.sign(&pacs002)).collect();
        for envelopes in [&transfers, &reports] {
            let refs: Vec<&SignedEnvelope> = envelopes.iter().collect();
            // At the hub, then at the receiver.
            for _ in 0..2 {
                assert!(keys.verify_batch(&refs).iter().all(Result::is_ok), "sample signatures verify");
            }
            let receipts: Vec<_> = envelopes.iter().map(|e| hub.sign_receipt(e)).collect();
            let checks: Vec<_> = envelopes
                .iter()
                .zip(&receipts)
                .map(|(e, r)| keys.receipt_check(hub.bic(), hub.key_id(), e, r))
                .collect();
            let checks: Vec<_> =
                checks.into_iter().collect::<Result<_, _>>().expect("the hub's key is known");
            assert!(KeyDirectory::verify_checks(&checks).iter().all(|ok| *ok), "sample receipts verify");
        }
        payments += CRYPTO_BATCH as u64;
    }
    payments
}

/// Messages per second a plain tonic bidirectional stream moves over mTLS on loopback:
/// frames of `payload_bytes` echoed one for one, `window` in flight, for `duration`.
pub async fn transport_ceiling(
    network: &NetworkDir,
    payload_bytes: usize,
    window: usize,
    duration: Duration,
) -> Result<f64, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let url = format!("https://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let stop = CancellationToken::new();
    let limits = net::ConnectionLimits::default();
    let tls = net::ServerTls::new(network, Role::Hub, limits).map_err(|e| e.to_string())?;
    let router = net::server_builder(&limits).add_service(LoopbackServiceServer::new(Echo));
    let server = {
        let stop = stop.clone();
        tokio::spawn(async move { net::serve(router, listener, tls, stop.cancelled_owned()).await })
    };
    let measured = drive_echo(network, &url, payload_bytes, window, duration).await;
    stop.cancel();
    let _ = server.await;
    measured
}

async fn drive_echo(
    network: &NetworkDir,
    url: &str,
    payload_bytes: usize,
    window: usize,
    duration: Duration,
) -> Result<f64, String> {
    let channel = net::connect(network, Role::Operator, url).await?;
    let (frames, outgoing) = mpsc::channel(window);
    let mut echoes = LoopbackServiceClient::new(channel)
        .echo(ReceiverStream::new(outgoing))
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    let payload = Bytes::from(vec![0x5a; payload_bytes]);
    let frame = |sequence| pb::LoopbackFrame { sequence, payload: payload.clone() };
    for sequence in 0..window as u64 {
        frames.send(frame(sequence)).await.map_err(|_| "echo stream closed")?;
    }
    let start = Instant::now();
    let mut received = 0u64;
    let mut next = window as u64;
    while start.elapsed() < duration {
        match echoes.message().await {
            Ok(Some(_)) => received += 1,
            _ => return Err("the echo stream ended".into()),
        }
        frames.send(frame(next)).await.map_err(|_| "echo stream closed")?;
        next += 1;
    }
    Ok(received as f64 / start.elapsed().as_secs_f64())
}

/// Echoes every frame back.
struct Echo;

#[tonic::async_trait]
impl LoopbackService for Echo {
    type EchoStream = ReceiverStream<Result<pb::LoopbackFrame, Status>>;

    async fn echo(
        &self,
        request: Request<Streaming<pb::LoopbackFrame>>,
    ) -> Result<Response<Self::EchoStream>, Status> {
        let mut inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(1024);
        tokio::spawn(async move {
            while let Ok(Some(frame)) = inbound.message().await {
                if sender.send(Ok(frame)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}
