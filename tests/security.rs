//! Hostile participants (SECURITY.md's table of attacks): a captured message replayed
//! late, on another session or to another receiver; a malleated signature; a participant
//! flooding the hub; connections that never finish their handshake or pile up; a second
//! session with a participant's certificate. Each test
//! asserts the refusal and that nothing moved that should not have.
//!
//! Keys and certificates (rotation, retirement, revocation, weak keys) are in
//! key_lifecycle.rs; garbage on the wire in hostile_wire.rs.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::bic;
use common::net::*;
use corridor::hub::HubConfig;
use corridor::model::*;
use corridor::net::{self, ConnectionLimits};
use corridor::pb;
use corridor::pb::session_response::Frame as ResponseFrame;
use corridor::sim::LocalNetwork;
use corridor::tls::{self, Role};
use tokio::io::AsyncReadExt as _;
use tonic::Code;

/// `message` with its creation time moved by `offset_ms`.
fn created_at_offset(message: &Message, offset_ms: i64) -> Message {
    let mut moved = pb::Message::from(message);
    let header = moved.header.as_mut().unwrap();
    header.creation_time_unix_ms += offset_ms;
    Message::try_from(moved).unwrap()
}

#[tokio::test]
async fn a_message_created_outside_the_replay_window_is_refused_tm01_and_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);
    let window_ms = i64::try_from(HubConfig::default().message_age_max.as_millis()).unwrap();
    let skew_ms = i64::try_from(HubConfig::default().clock_skew_max.as_millis()).unwrap();

    // Captured a while ago, validly signed, never seen by the hub: too old now.
    let stale = created_at_offset(&transfer(RU, IR, "C002"), -window_ms - 60_000);
    let nak = expect_nak(session.submit_signed(&ru, &stale).await, Code::FailedPrecondition, "TM01");
    assert!(nak.detail.contains("outside the hub's window"), "{nak:?}");
    // Dated in the future beyond the clock skew allowed.
    let ahead = created_at_offset(&transfer(RU, IR, "C002"), skew_ms + 60_000);
    expect_nak(session.submit_signed(&ru, &ahead).await, Code::FailedPrecondition, "TM01");

    tokio::time::sleep(Duration::from_millis(100)).await;
    nothing_reached(&network, 0);
    assert!(network.hub().payments().is_empty(), "the journal holds no payment");
    // A fresh message on the same session still goes through.
    expect_ack(session.submit_signed(&ru, &transfer(RU, IR, "C002")).await);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_captured_message_replayed_on_another_session_has_no_second_effect() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[IR]).await;
    let ru = signer(&network.network, RU);
    let message = transfer(RU, IR, "C002");
    let captured = pb::SignedEnvelope::from(&ru.sign(&message));
    let first = {
        let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
        expect_ack(session.submit(captured.clone()).await)
    };
    let uetr = message.header().uetr.unwrap().to_string();
    assert_eq!(status_of(&final_status(&network, 0, &uetr).await), pb::PaymentStatus::Acsc);

    // The same bank's next session: the original ACK again, no second payment.
    let mut again = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let second = expect_ack(again.submit(captured.clone()).await);
    assert_eq!(first.receipt, second.receipt, "the original receipt, not a new acceptance");
    // Another participant's session: it is not the signer.
    let mut other = RawSession::open(&network.network, CN, &network.hub_url).await.unwrap();
    expect_nak(other.submit(captured).await, Code::PermissionDenied, "");

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(balance(&network, 0, "C002"), 500, "applied once");
    assert_eq!(network.banks[0].bank.payments().unwrap().len(), 1);
    assert_eq!(network.hub().payments().len(), 1, "one payment in the journal");
    network.stop().await.unwrap();
}

/// A captured message replayed on its sender's own session, with fresh input sequence
/// numbers, is answered with its original ACK and applied once, but each replay uses up
/// the number it came with (SECURITY.md, item 4): the hub then expects a higher number
/// than the bank node ever sent. The bank node, restarted, must carry on from the hub's
/// number (nothing of its own lies in between) rather than refuse every session while
/// its payments wait; a gap above the hub's number is still refused.
#[tokio::test]
async fn a_duplicate_replayed_on_a_banks_own_session_does_not_lock_the_bank_out_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network(dir.path(), &[RU, IR]).await;
    let ru = network.index_of(bic(RU));
    let first = network.banks[ru].bank.submit_payment(&order(IR, "C002", "1.00")).await.unwrap().uetr;
    assert_eq!(status_of(&final_status(&network, ru, &first.to_string()).await), pb::PaymentStatus::Acsc);
    let captured =
        corridor::hub::journal::read_message(&network.network.hub_data_dir(), first, MessageType::Pacs008)
            .unwrap()
            .expect("the hub journalled the pacs.008");
    let captured = pb::SignedEnvelope::from(&captured.envelope);

    // Replayed twice on RU's own session, each with the next number the hub expects.
    network.stop_bank(bic(RU)).await.unwrap();
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let hub_next = session.next_isn;
    let (once, twice) =
        (expect_ack(session.submit(captured.clone()).await), expect_ack(session.submit(captured).await));
    assert_eq!((once.isn, twice.isn), (hub_next, hub_next + 1));
    assert_eq!(once.receipt, twice.receipt, "the original receipt both times: no new acceptance");
    // A gap is still refused, never skipped.
    let gap = session
        .submit_as(
            hub_next + 5,
            pb::SignedEnvelope::from(&signer(&network.network, RU).sign(&transfer(RU, IR, "C002"))),
        )
        .await;
    expect_nak(gap, Code::FailedPrecondition, "");
    drop(session);

    // The bank node, restarted, is welcomed and its next payment settles.
    let ru = network.start_bank(bic(RU)).await.unwrap();
    let second = network.banks[ru].bank.submit_payment(&order(IR, "C002", "2.00")).await.unwrap().uetr;
    assert_eq!(status_of(&final_status(&network, ru, &second.to_string()).await), pb::PaymentStatus::Acsc);
    let ir = network.index_of(bic(IR));
    assert_eq!(balance(&network, ir, "C002"), 300, "each payment applied once, the replays not at all");
    assert_eq!(network.hub().payments().len(), 2);
    network.stop().await.unwrap();
}

/// The hub's Welcome tells a bank the highest input sequence number on which it accepted
/// a new message from it (SECURITY.md, item 4): a bank whose own next number is not past
/// it lacks messages it sent (its store was restored from an older copy) and refuses the
/// session, while numbers consumed only by duplicates and refusals are not counted, so a
/// replayed duplicate does not lock the bank out. The number is a maximum (a resend under
/// an old number that the hub accepts as new does not lower it), and a restarted hub
/// rebuilds it from its journal: without it, a rolled-back bank would be followed.
#[tokio::test]
async fn welcome_tells_the_last_number_a_new_message_was_accepted_on_and_a_restarted_hub_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let ru = signer(&network.network, RU);
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    assert_eq!((session.next_isn, session.last_isn_accepted), (1, 0), "nothing yet");
    let first = pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")));
    assert_eq!(expect_ack(session.submit(first.clone()).await).isn, 1);
    assert_eq!(expect_ack(session.submit_signed(&ru, &transfer(RU, IR, "C002")).await).isn, 2);
    // A duplicate and a refusal consume 3 and 4 but accept nothing.
    let duplicate = expect_ack(session.submit(first).await);
    assert_eq!(duplicate.isn, 3);
    let window_ms = i64::try_from(HubConfig::default().message_age_max.as_millis()).unwrap();
    let stale = created_at_offset(&transfer(RU, IR, "C002"), -window_ms - 60_000);
    expect_nak(session.submit_signed(&ru, &stale).await, Code::FailedPrecondition, "TM01");
    // A new message under an old number (a resend, as after a lost ACK) is accepted on 1.
    let late = pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")));
    assert_eq!(expect_ack(session.submit_as(1, late).await).isn, 1);
    drop(session);

    let welcome = |session: RawSession| (session.next_isn, session.last_isn_accepted);
    let again = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    assert_eq!(welcome(again), (5, 2), "next 5; the last new message was accepted on 2");
    network.restart_hub().await.unwrap();
    let recovered = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    assert_eq!(welcome(recovered), (5, 2), "the same from the journal after a restart");
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_message_redirected_to_another_receiver_is_refused_and_reaches_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[IR, CN]).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);
    let signed = ru.sign(&transfer(RU, IR, "C002"));
    // The receiver is inside what is signed: pointing the captured message at CN breaks
    // the signature, whichever way the bytes are re-encoded.
    let mut redirected = pb::Message::from(&corridor::model::wire::decode_message(&signed.payload).unwrap());
    redirected.header.as_mut().unwrap().receiver_bic = CN.into();
    let Some(pb::message::Body::Pacs008(body)) = redirected.body.as_mut() else { panic!("a pacs.008") };
    body.creditor_agent_bic = CN.into();
    let mut envelope = pb::SignedEnvelope::from(&signed);
    envelope.payload = Bytes::from(prost::Message::encode_to_vec(&redirected));
    expect_nak(session.submit(envelope).await, Code::Unauthenticated, "");

    tokio::time::sleep(Duration::from_millis(100)).await;
    nothing_reached(&network, 0);
    nothing_reached(&network, 1);
    assert!(network.hub().payments().is_empty());
    network.stop().await.unwrap();
}

/// The group order of Ed25519, little-endian: adding it to a signature's scalar `s`
/// gives the classic malleated signature, which the same equation would accept if `s`
/// were not checked to be canonical.
const GROUP_ORDER_LE: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

fn malleate(envelope: &pb::SignedEnvelope) -> pb::SignedEnvelope {
    let mut signature = envelope.signature.to_vec();
    let mut carry = 0u16;
    for (byte, order) in signature[32..].iter_mut().zip(GROUP_ORDER_LE) {
        let sum = u16::from(*byte) + u16::from(order) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + L fits in 32 bytes");
    pb::SignedEnvelope { signature: Bytes::from(signature), ..envelope.clone() }
}

#[tokio::test]
async fn a_malleated_signature_is_refused_even_for_a_message_already_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);

    // A message the hub never saw, with s + L: refused.
    let fresh = pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")));
    expect_nak(session.submit(malleate(&fresh)).await, Code::Unauthenticated, "");
    // A message it accepted, replayed with s + L: refused, not taken for a duplicate.
    let message = transfer(RU, IR, "C002");
    let accepted = pb::SignedEnvelope::from(&ru.sign(&message));
    expect_ack(session.submit(accepted.clone()).await);
    expect_nak(session.submit(malleate(&accepted)).await, Code::Unauthenticated, "");
    // Several in one batch (the hub verifies what arrives together in one batch): each
    // malleated one is found and refused, the honest one among them accepted.
    let honest = pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")));
    let batch = [malleate(&fresh), honest, malleate(&accepted)];
    let answers = session.submit_pipelined(batch.to_vec()).await;
    expect_nak(answers[0].clone(), Code::Unauthenticated, "");
    expect_ack(answers[1].clone());
    expect_nak(answers[2].clone(), Code::Unauthenticated, "");

    let uetr = message.header().uetr.unwrap().to_string();
    assert_eq!(status_of(&final_status(&network, 0, &uetr).await), pb::PaymentStatus::Acsc);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(network.hub().payments().len(), 2, "the two honest payments, once each");
    assert_eq!(balance(&network, 0, "C002"), 1_000, "two payments of 5.00, nothing else");
    network.stop().await.unwrap();
}

#[tokio::test]
async fn over_its_rate_a_session_is_shed_with_a_time_to_retry_and_nothing_is_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig { participant_rate_max: 1, participant_burst_max: 3, ..HubConfig::default() };
    let network = network_with_config(dir.path(), &[RU, IR], &[IR], config).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);
    let first_isn = session.next_isn;
    let envelopes: Vec<pb::SignedEnvelope> =
        (0..8).map(|_| pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")))).collect();

    // Eight at once against a burst of three: three accepted, the rest shed.
    let answers = session.submit_pipelined(envelopes.clone()).await;
    for answer in &answers[..3] {
        expect_ack(answer.clone());
    }
    for (offset, answer) in answers[3..].iter().enumerate() {
        let nak = expect_nak(answer.clone(), Code::ResourceExhausted, "");
        assert_eq!(nak.isn, first_isn + 3 + offset as u64);
        assert!(nak.retry_after_ms > 0, "a shed message says when to retry: {nak:?}");
    }
    assert_eq!(network.hub().shed_count(bic(RU)), 5);
    // Nothing shed was consumed: a new session is told to go on from the first shed ISN.
    drop(session);
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    assert_eq!(session.next_isn, first_isn + 3, "the shed ISNs were not consumed");
    // Resent (paced to the rate, as the hub asked), every one is accepted.
    for envelope in &envelopes[3..] {
        loop {
            match session.submit_as(session.next_isn, envelope.clone()).await {
                ResponseFrame::Ack(_) => break,
                ResponseFrame::Nak(nak) if nak.retry_after_ms > 0 => {
                    tokio::time::sleep(Duration::from_millis(nak.retry_after_ms)).await;
                }
                other => panic!("expected an ACK or a shed NAK, got {other:?}"),
            }
        }
        session.next_isn += 1;
    }
    for envelope in &envelopes {
        let message = corridor::model::wire::decode_message(&envelope.payload).unwrap();
        let uetr = message.header().uetr.unwrap().to_string();
        assert_eq!(status_of(&final_status(&network, 0, &uetr).await), pb::PaymentStatus::Acsc);
    }
    assert_eq!(balance(&network, 0, "C002"), 8 * 500, "each of the eight once, none lost");
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_participant_flooding_the_hub_is_shed_while_others_flow_and_none_of_its_payments_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let config = HubConfig { participant_rate_max: 40, participant_burst_max: 10, ..HubConfig::default() };
    let network = network_with_config(dir.path(), &[RU, IR, CN], &[RU, IR, CN], config).await;
    const FLOOD: usize = 120;
    // RU floods IR with far more than its rate, all at once.
    let flood = {
        let bank = network.banks[0].bank.clone();
        tokio::spawn(async move {
            let mut orders = tokio::task::JoinSet::new();
            for _ in 0..FLOOD {
                let bank = bank.clone();
                orders.spawn(async move { bank.submit_payment(&order(IR, "C002", "1.00")).await.unwrap() });
            }
            orders.join_all().await.into_iter().map(|p| p.uetr.to_string()).collect::<Vec<_>>()
        })
    };
    // Meanwhile CN pays IR at a normal pace: every one of its payments settles.
    for _ in 0..5 {
        let payment = network.banks[2].bank.submit_payment(&order(IR, "C002", "2.00")).await.unwrap();
        let status = final_status(&network, 2, &payment.uetr.to_string()).await;
        assert_eq!(status_of(&status), pb::PaymentStatus::Acsc);
    }
    // RU's excess was shed and resent: every one of its payments settles, once.
    let uetrs = flood.await.unwrap();
    for uetr in &uetrs {
        assert_eq!(status_of(&final_status(&network, 0, uetr).await), pb::PaymentStatus::Acsc);
    }
    assert!(network.hub().shed_count(bic(RU)) > 0, "the flood was shed");
    assert_eq!(network.hub().shed_count(bic(CN)), 0, "the others were not");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(balance(&network, 1, "C002"), (FLOOD as i64) * 100 + 5 * 200);
    assert_eq!(balance(&network, 0, "C001"), 100_000 - (FLOOD as i64) * 100);
    assert_eq!(network.hub().payments().len(), FLOOD + 5);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn connections_past_the_per_peer_limit_or_silent_in_the_handshake_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let connections = ConnectionLimits {
        connections_per_peer_max: 2,
        handshake_timeout: Duration::from_millis(500),
        ..ConnectionLimits::default()
    };
    let config = HubConfig { connections, ..HubConfig::default() };
    let network = network_with_config(dir.path(), &[RU, IR], &[], config).await;
    let health = |channel| async move {
        tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
    };
    // Two connections with IR's certificate work; a third is closed after the handshake.
    let mut held = Vec::new();
    for _ in 0..2 {
        let channel = net::connect(&network.network, Role::Bank(bic(IR)), &network.hub_url).await.unwrap();
        health(channel.clone()).await.unwrap();
        held.push(channel);
    }
    let third = net::connect(&network.network, Role::Bank(bic(IR)), &network.hub_url).await;
    let refused = match third {
        Err(_) => true,
        Ok(channel) => health(channel).await.is_err(),
    };
    assert!(refused, "a third connection with the same certificate is refused");
    // Another participant is not affected.
    let other = net::connect(&network.network, Role::Bank(bic(RU)), &network.hub_url).await.unwrap();
    health(other).await.unwrap();
    // Closing one frees its place.
    held.pop();
    let mut reconnected = false;
    for _ in 0..100 {
        if let Ok(channel) = net::connect(&network.network, Role::Bank(bic(IR)), &network.hub_url).await
            && health(channel).await.is_ok()
        {
            reconnected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reconnected, "a closed connection gives its place back");

    // A client that connects and never starts its TLS handshake is closed.
    let address = network.hub_url.trim_start_matches("https://").to_owned();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the hub closes a silent connection: {read:?}");
    network.stop().await.unwrap();
}

/// A TLS client with `bank`'s certificate that speaks no HTTP/2 at all after the
/// handshake.
async fn tls_only(
    network: &LocalNetwork,
    bank: &str,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let root = network.network.root();
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(root.join("ca.pem")).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    let own = network.network.role_dir(Role::Bank(bic(bank)));
    let chain = CertificateDer::pem_file_iter(own.join("tls.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(own.join("tls.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(network.hub_url.trim_start_matches("https://")).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    connector.connect(ServerName::try_from(tls::SERVER_NAME).unwrap(), tcp).await.unwrap()
}

#[tokio::test]
async fn a_peer_silent_past_the_idle_timeout_is_closed_and_a_live_idle_session_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let connections =
        ConnectionLimits { idle_timeout: Duration::from_secs(1), ..ConnectionLimits::default() };
    let config = HubConfig { connections, ..HubConfig::default() };
    let network = network_with_config(dir.path(), &[RU, IR], &[IR], config).await;

    // Through the TLS handshake, then nothing: closed after the idle timeout.
    // (The server speaks first, its HTTP/2 settings; the client never answers.)
    let mut silent = tls_only(&network, RU).await;
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), silent.read_to_end(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the hub closes a silent peer: {read:?}");

    // A live session idle for several idle timeouts is kept: the hub pings it, it answers.
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let ru = signer(&network.network, RU);
    expect_ack(session.submit_signed(&ru, &transfer(RU, IR, "C002")).await);
    network.stop().await.unwrap();
}

/// What the hub's status says when a newer session of the same participant replaces one.
const SUPERSEDED: &str = "superseded by a new session of this participant";

/// How a session replaced by a newer one ends, after any deliveries already on their way:
/// with a status (a clean end of stream fails the test).
async fn ending_status(session: &mut RawSession) -> tonic::Status {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(60), session.inbound.message()).await;
        match next.expect("the replaced session ends within a minute") {
            Err(status) => return status,
            Ok(Some(pb::SessionResponse { frame: Some(ResponseFrame::Deliver(_)) })) => continue,
            Ok(other) => panic!("expected the session to end with a status, got {other:?}"),
        }
    }
}

/// One session per participant: a second session with the same certificate replaces the
/// first, and the first ends with a status that says why (ABORTED, superseded), not
/// with a clean end of stream that a client cannot tell from the hub going away. What
/// the first session sent was answered; the second carries on from its numbers.
#[tokio::test]
async fn a_second_session_with_the_same_certificate_ends_the_first_with_aborted_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let ru = signer(&network.network, RU);
    let mut first = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let acked = expect_ack(first.submit_signed(&ru, &transfer(RU, IR, "C002")).await);

    let mut second = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let status = ending_status(&mut first).await;
    assert_eq!((status.code(), status.message()), (Code::Aborted, SUPERSEDED), "{status:?}");
    assert_eq!(second.next_isn, acked.isn + 1, "the new session carries on from the old one's numbers");
    expect_ack(second.submit_signed(&ru, &transfer(RU, IR, "C002")).await);
    // The replaced session is gone for good: the newer one is still the participant's.
    assert!(network.hub().connections().contains(&(bic(RU), true)));
    network.stop().await.unwrap();
}

/// A bank node whose session another client replaces (a second node for the bank, or
/// someone holding its key) says so in its log, as an error that names the likely causes,
/// and takes the session back later, which ends the other client's session the same
/// way. The node is a real process: its log is what an operator reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_node_whose_session_is_replaced_logs_why_and_takes_it_back() {
    use common::cli::{ANY_LOOPBACK_PORT, Capture, pki_init, start_server, text};
    let temp = tempfile::tempdir().unwrap();
    let net = pki_init(&temp, &[RU, IR]);
    let hub = start_server(&["hub", "--dir", text(&net), "--listen", ANY_LOOPBACK_PORT], "hub");
    let args = ["bank", "--dir", text(&net), "--bic", RU, "--hub", &hub.url, "--listen", ANY_LOOPBACK_PORT];
    let node = start_server(&args, &format!("bank {RU}"));
    let logged = |capture: &Capture, what: &str| capture.text().matches(what).count();
    let until_logged = |what: &'static str, times: usize| {
        let stderr = &node.stderr;
        async move {
            for _ in 0..2_400 {
                if logged(stderr, what) >= times {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            panic!("the bank node never logged {what:?} {times} time(s):\n{}", stderr.text());
        }
    };
    until_logged("session welcomed", 1).await;

    let mut other = RawSession::open(&tls::NetworkDir::new(&net), RU, &hub.url).await.unwrap();
    until_logged("replaced this session with a newer one of this bank's certificate", 1).await;
    let log = node.stderr.text();
    let line = log.lines().find(|l| l.contains("replaced this session")).unwrap();
    assert!(line.contains("ERROR") && line.contains(SUPERSEDED) && line.contains("Aborted"), "{line}");
    assert!(line.contains("second node") && line.contains("retry_in_ms"), "{line}");

    // It takes the session back: the other client is told why in its turn.
    let status = ending_status(&mut other).await;
    assert_eq!((status.code(), status.message()), (Code::Aborted, SUPERSEDED), "{status:?}");
    until_logged("session welcomed", 2).await;
}

/// The session contract is versioned (SECURITY.md, receipts): a bank of the first
/// version (no version in its Hello) or of a version the hub does not speak would read
/// the hub's batch receipts wrong, so the hub refuses it before Welcome with
/// FAILED_PRECONDITION and a sentence that names both versions, and nothing changes: the
/// participant's next session is welcomed at the same input sequence number.
#[tokio::test]
async fn a_bank_of_another_session_contract_version_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let before = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap().next_isn;
    for version in [0, 1, net::CONTRACT_VERSION + 1] {
        let channel = net::connect(&network.network, Role::Bank(bic(RU)), &network.hub_url).await.unwrap();
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let hello = pb::Hello { last_osn_processed: 0, contract_version: version, network_directory: None };
        sender
            .send(pb::SessionRequest { frame: Some(pb::session_request::Frame::Hello(hello)) })
            .await
            .unwrap();
        let refused = pb::hub_service_client::HubServiceClient::new(channel)
            .session(tokio_stream::wrappers::ReceiverStream::new(receiver))
            .await
            .expect_err("no Welcome for another contract version");
        assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
        let hub_speaks = format!("this hub speaks session contract version {}", net::CONTRACT_VERSION);
        let bank_said = format!("the bank's Hello says version {version}");
        let message = refused.message();
        assert!(message.contains(&hub_speaks) && message.contains(&bank_said), "{message}");
    }
    let after = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap().next_isn;
    assert_eq!(after, before, "a refused Hello changed nothing");
    network.stop().await.unwrap();
}

/// An audit of one message needs the hub's journal and the hub's public key only
/// (SECURITY.md, receipts): the hub signs once per batch of ACKs, each ACK carries its
/// message's path to the signed root, and the journal keeps that receipt with the
/// message. Here a burst of messages is ACKed (ACKs of one batch share a root signature
/// and each has its own leaf), the network stops, and each journalled message's receipt,
/// read back offline, equals its ACK's and proves that message and no other.
#[tokio::test]
async fn one_messages_receipt_is_proven_from_the_hubs_journal_alone() {
    use corridor::crypto::ReceiptProof;
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let ru = signer(&network.network, RU);
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let envelopes: Vec<pb::SignedEnvelope> =
        (0..12).map(|_| pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")))).collect();
    let acks: Vec<pb::Ack> = session.submit_pipelined(envelopes).await.into_iter().map(expect_ack).collect();
    let mut batches = std::collections::HashMap::new();
    for ack in &acks {
        let receipt = ack.receipt.clone().expect("an ACK carries its receipt");
        batches.entry(receipt.root_signature.clone()).or_insert_with(Vec::new).push(receipt);
    }
    for receipts in batches.values() {
        let mut leaves: Vec<u32> = receipts.iter().map(|r| r.leaf_index).collect();
        leaves.sort_unstable();
        assert_eq!(leaves, (0..receipts.len() as u32).collect::<Vec<_>>(), "one leaf per ACK of a batch");
        assert!(receipts.iter().all(|r| r.leaf_count as usize == receipts.len()), "{receipts:?}");
    }
    let hub_key = network.network.signing_identity(Role::Hub).unwrap().verifying_key_bytes();
    let hub_key = ed25519_dalek::VerifyingKey::from_bytes(&hub_key).unwrap();
    let data = network.network.hub_data_dir();
    drop(session);
    network.stop().await.unwrap();

    let journal = corridor::hub::HubJournal::read(&data, bic(tls::HUB_BIC)).unwrap();
    // What RU sent (IR's answers may be there too, each with a receipt of its own batch).
    let sent: Vec<_> = journal.iter().filter(|m| m.sender == bic(RU)).collect();
    assert_eq!(sent.len(), acks.len());
    for (record, ack) in sent.iter().zip(&acks) {
        assert_eq!(record.message_id.as_str(), ack.message_id);
        let proof = ReceiptProof::decode(&record.receipt).expect("the journal keeps the encoded receipt");
        assert_eq!(Some(pb::Receipt::from(&proof)), ack.receipt, "the journal keeps the ACK's receipt");
        assert!(proof.verifies(&record.envelope, &hub_key), "{} proven alone", record.message_id);
    }
    for record in &journal {
        let proof = ReceiptProof::decode(&record.receipt).unwrap();
        assert!(proof.verifies(&record.envelope, &hub_key), "every journalled message is proven alone");
    }
    let (first, second) = (sent[0], sent[1]);
    let proof = ReceiptProof::decode(&first.receipt).unwrap();
    assert!(!proof.verifies(&second.envelope, &hub_key), "a receipt proves its own message only");
}
