//! The ceilings a load test is judged against, measured on this machine in the same
//! run: what the cores can do if a payment were nothing but its signatures (crypto: the
//! work of the first session contract, with a hub receipt per message, kept for
//! continuity; and the essential work no design of a signed payment avoids), and what tonic over mTLS on loopback moves if a message were nothing but
//! bytes (transport).

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

/// Signed messages of a payment: the pacs.008 and the pacs.002.
pub const MESSAGES_PER_PAYMENT: usize = 2;

/// Frames a payment puts through the hub's sessions: for each of its messages, the
/// submit and its ACK on the sender's session, the deliver and its delivered on the
/// receiver's.
pub const FRAMES_PER_PAYMENT: usize = 4 * MESSAGES_PER_PAYMENT;
/// Frames in one message the transport ceiling counts: a frame sent and its echo.
pub const FRAMES_PER_ECHO: usize = 2;

/// The signature work of one payment a crypto ceiling counts: each of its
/// [`MESSAGES_PER_PAYMENT`] messages signed by its sender and verified by each of
/// `verifications_per_message` parties, and `receipts_per_message` hub receipts for
/// each, signed by the hub and verified by the message's sender; every verification in
/// batches of [`CRYPTO_BATCH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaymentCrypto {
    /// Parties that verify each message: the hub and its receiver.
    pub verifications_per_message: usize,
    /// Hub receipts per message.
    pub receipts_per_message: usize,
}

impl PaymentCrypto {
    /// The first session contract's work, the crypto ceiling of every run before issue
    /// 21 (kept for continuity): each message verified at the hub and at its receiver,
    /// and a hub receipt for each message, verified by the bank that sent it. (Since
    /// contract version 2 the hub signs one receipt per batch of ACKs.)
    pub const PER_MESSAGE_RECEIPTS: Self = Self { verifications_per_message: 2, receipts_per_message: 1 };
    /// What a payment cannot do without: the sender signs the pacs.008, the hub and the
    /// receiver verify it; the receiver signs the pacs.002, the hub and the sender verify
    /// it.
    pub const ESSENTIAL: Self = Self { verifications_per_message: 2, receipts_per_message: 0 };

    /// Signatures made per payment.
    pub const fn signatures(self) -> usize {
        MESSAGES_PER_PAYMENT * (1 + self.receipts_per_message)
    }

    /// Signatures verified per payment.
    pub const fn verifications(self) -> usize {
        MESSAGES_PER_PAYMENT * (self.verifications_per_message + self.receipts_per_message)
    }
}

/// Payments per second the machine's cores sustain doing only each of `works`, one
/// thread per core, each thread doing a batch of each work in turn until each has had
/// `duration` (so the whole takes `duration` times their number). Taking turns batch by
/// batch, rather than one ceiling after the other, lets whatever else the machine does
/// meanwhile slow every one of them alike, so that their ratio holds on a busy machine.
pub fn crypto_ceilings(works: &[PaymentCrypto], duration: Duration) -> Vec<f64> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let works = works.to_vec();
            std::thread::spawn(move || crypto_worker(&works, duration))
        })
        .collect();
    let mut per_s = vec![0.0; works.len()];
    for worker in workers {
        for (ceiling, done) in per_s.iter_mut().zip(worker.join().expect("crypto worker")) {
            *ceiling += done.payments as f64 / done.elapsed.as_secs_f64();
        }
    }
    per_s
}

/// The payments per second the transport ceiling stands for, from the messages per
/// second it measured: each message is a frame and its echo ([`FRAMES_PER_ECHO`]), and a
/// payment is [`FRAMES_PER_PAYMENT`] frames.
pub fn transport_payments_per_s(messages_per_s: f64) -> f64 {
    messages_per_s * FRAMES_PER_ECHO as f64 / FRAMES_PER_PAYMENT as f64
}

/// Runs a batch of each of `works` in turn until each has had `duration` (one batch of
/// each at least, so that a ceiling is never a figure of 0); returns what each did.
fn crypto_worker(works: &[PaymentCrypto], duration: Duration) -> Vec<CryptoDone> {
    let parties = Parties::new();
    let mut done = vec![CryptoDone::default(); works.len()];
    loop {
        for (work, done) in works.iter().zip(&mut done) {
            let start = Instant::now();
            parties.batch(*work, done);
            done.elapsed += start.elapsed();
        }
        if done.iter().all(|d| d.elapsed >= duration) {
            return done;
        }
    }
}

/// What a crypto worker did for one work, and the time it took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CryptoDone {
    payments: u64,
    signatures: u64,
    verifications: u64,
    elapsed: Duration,
}

/// A payment's parties and its two messages, as a crypto worker signs and verifies them.
struct Parties {
    sender: SigningIdentity,
    receiver: SigningIdentity,
    hub: SigningIdentity,
    keys: KeyDirectory,
    pacs008: Message,
    pacs002: Message,
}

impl Parties {
    fn new() -> Self {
        let identity = |bic: &str| {
            SigningIdentity::generate(Bic::parse(bic).expect("valid"), KeyId::parse("k1").expect("valid"))
        };
        let (sender, receiver, hub) =
            (identity("LOADRUMMXXX"), identity("LOADIRTHXXX"), identity("CRDRZZ00XXX"));
        let mut keys = KeyDirectory::new();
        for party in [&sender, &receiver, &hub] {
            keys.register(party.bic(), party.key_id().clone(), &party.verifying_key_bytes())
                .expect("fresh keys");
        }
        let pacs008 = super::sample_credit_transfer(sender.bic(), receiver.bic());
        let header = pacs008.header();
        let report = PaymentStatusReport {
            original_message_id: header.message_id.clone(),
            uetr: header.uetr.expect("a pacs.008 has a UETR"),
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
        Self { sender, receiver, hub, keys, pacs008, pacs002 }
    }

    /// The crypto `work` of [`CRYPTO_BATCH`] payments, counted into `done`.
    fn batch(&self, work: PaymentCrypto, done: &mut CryptoDone) {
        let transfers: Vec<SignedEnvelope> =
            (0..CRYPTO_BATCH).map(|_| self.sender.sign(&self.pacs008)).collect();
        let reports: Vec<SignedEnvelope> =
            (0..CRYPTO_BATCH).map(|_| self.receiver.sign(&self.pacs002)).collect();
        done.signatures += 2 * CRYPTO_BATCH as u64;
        for envelopes in [&transfers, &reports] {
            let refs: Vec<&SignedEnvelope> = envelopes.iter().collect();
            for _ in 0..work.verifications_per_message {
                assert!(self.keys.verify_batch(&refs).iter().all(Result::is_ok), "sample signatures verify");
                done.verifications += refs.len() as u64;
            }
            for _ in 0..work.receipts_per_message {
                self.receipts(envelopes);
                done.signatures += envelopes.len() as u64;
                done.verifications += envelopes.len() as u64;
            }
        }
        done.payments += CRYPTO_BATCH as u64;
    }

    /// The hub signs a receipt for each of `envelopes`, and their sender verifies them in
    /// a batch.
    fn receipts(&self, envelopes: &[SignedEnvelope]) {
        let hub = &self.hub;
        let receipts: Vec<_> = envelopes.iter().map(|e| hub.sign_receipt(e)).collect();
        let checks: Vec<_> = envelopes
            .iter()
            .zip(&receipts)
            .map(|(e, r)| self.keys.receipt_check(hub.bic(), hub.key_id(), e, r))
            .collect();
        let checks: Vec<_> = checks.into_iter().collect::<Result<_, _>>().expect("the hub's key is known");
        assert!(KeyDirectory::verify_checks(&checks).iter().all(|ok| *ok), "sample receipts verify");
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts issue 21 names: with a receipt per message a payment costs 4
    /// signatures and 6 verifications (its two messages, and a hub receipt for each); the essential work is 2 signatures
    /// and 4 verifications (each message signed once, verified at the hub and at its
    /// receiver). The one worker, given both, does exactly that work per payment for each
    /// (one batch of each, as a run past its deadline does), every signature valid.
    #[test]
    fn the_ceilings_count_the_work_the_issue_names() {
        assert_eq!(
            (
                PaymentCrypto::PER_MESSAGE_RECEIPTS.signatures(),
                PaymentCrypto::PER_MESSAGE_RECEIPTS.verifications()
            ),
            (4, 6)
        );
        assert_eq!((PaymentCrypto::ESSENTIAL.signatures(), PaymentCrypto::ESSENTIAL.verifications()), (2, 4));
        let works = [PaymentCrypto::PER_MESSAGE_RECEIPTS, PaymentCrypto::ESSENTIAL];
        let done = crypto_worker(&works, Duration::ZERO);
        for (work, done) in works.iter().zip(done) {
            let payments = CRYPTO_BATCH as u64;
            let expected = CryptoDone {
                payments,
                signatures: payments * work.signatures() as u64,
                verifications: payments * work.verifications() as u64,
                elapsed: done.elapsed,
            };
            assert_eq!(done, expected, "{work:?}");
            assert!(!done.elapsed.is_zero());
        }
    }

    /// The transport ceiling counts a frame and its echo as one message, and a payment
    /// is 8 frames through the hub's sessions, so a message per second is a quarter of a
    /// payment per second (PERFORMANCE.md divided by 8, understating it by half).
    #[test]
    fn a_transport_message_is_two_frames_of_a_payments_eight() {
        assert_eq!(FRAMES_PER_PAYMENT, 8);
        assert_eq!(transport_payments_per_s(400_000.0), 100_000.0);
        assert_eq!(transport_payments_per_s(0.0), 0.0);
    }
}
