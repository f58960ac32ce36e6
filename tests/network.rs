//! The network end to end (DESIGN.md, "One payment, end to end" and the guarantees):
//! a real hub and real bank nodes on loopback ports, real gRPC with mTLS from the demo
//! PKI, real signatures. Hostile submissions go straight to the hub on a raw session.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::bic;
use common::fault_proxy::{Direction, FaultProxy};
use common::net::*;
use corridor::clock::{Clock, ManualClock};
use corridor::crypto::SigningIdentity;
use corridor::directory::{DIRECTORY_FILE, DirectoryFile};
use corridor::hub::{HubConfig, HubEvent};
use corridor::model::*;
use corridor::net;
use corridor::pb;
use corridor::tls::{self, NetworkDir, Role};
use tonic::Code;

#[tokio::test]
async fn a_payment_settles_and_both_ledgers_move_by_its_amount() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let mut client = network.operator(0).await.unwrap();
    let request = pb::SubmitPaymentRequest {
        debtor_account: "C001".into(),
        creditor_agent_bic: IR.into(),
        creditor_account: "C002".into(),
        creditor_name: "Sara".into(),
        amount: "250.75".into(),
        currency: "CNY".into(),
        remittance_information: "invoice 7".into(),
        end_to_end_id: String::new(),
        ..Default::default()
    };
    let submitted = client.submit_payment(request).await.unwrap().into_inner().payment.unwrap();
    Uetr::parse(&submitted.uetr).unwrap();
    let at_sender = final_status(&network, 0, &submitted.uetr).await;
    let at_receiver = final_status(&network, 1, &submitted.uetr).await;
    assert_eq!(status_of(&at_sender), pb::PaymentStatus::Acsc);
    assert_eq!(status_of(&at_receiver), pb::PaymentStatus::Acsc);
    assert_eq!(balance(&network, 0, "C001"), 100_000 - 25_075);
    assert_eq!(balance(&network, 0, "SYS-SETTLEMENT-CNY"), -25_075);
    assert_eq!(balance(&network, 0, "SYS-INFLIGHT-CNY"), 0);
    assert_eq!(balance(&network, 1, "C002"), 25_075);
    assert_eq!(balance(&network, 1, "SYS-SETTLEMENT-CNY"), 25_075);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_payment_to_an_unknown_account_is_rejected_ac01_and_the_sender_is_whole() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let payment = network.banks[0].bank.submit_payment(&order(IR, "NOSUCH", "99.99")).await.unwrap();
    assert_eq!(balance(&network, 0, "C001"), 100_000 - 9_999, "booked into in-flight at once");
    let at_sender = final_status(&network, 0, &payment.uetr.to_string()).await;
    assert_eq!(status_of(&at_sender), pb::PaymentStatus::Rjct);
    assert_eq!(at_sender.reason_code, "AC01");
    assert_eq!(balance(&network, 0, "C001"), 100_000, "the customer is whole again");
    assert_eq!(balance(&network, 0, "SYS-INFLIGHT-CNY"), 0);
    assert_eq!(balance(&network, 0, "SYS-SETTLEMENT-CNY"), 0);
    assert_eq!(balance(&network, 1, "SYS-SETTLEMENT-CNY"), 0, "nothing was booked at the receiver");
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_payment_to_a_blocked_account_is_rejected_ac06() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    network.banks[1].bank.set_account_blocked("C002", true).await.unwrap();
    let payment = network.banks[0].bank.submit_payment(&order(IR, "C002", "10")).await.unwrap();
    let at_sender = final_status(&network, 0, &payment.uetr.to_string()).await;
    assert_eq!((status_of(&at_sender), at_sender.reason_code.as_str()), (pb::PaymentStatus::Rjct, "AC06"));
    assert_eq!(balance(&network, 0, "C001"), 100_000);
    assert_eq!(balance(&network, 1, "C002"), 0);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_receiver_that_connects_late_still_gets_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    // IR opens its accounts, then goes offline before anything is sent to it.
    let mut network = network(dir.path(), &[RU, IR]).await;
    network.stop_bank(bic(IR)).await.unwrap();
    let payment = network.banks[0].bank.submit_payment(&order(IR, "C002", "12.34")).await.unwrap();
    let uetr = payment.uetr.to_string();
    // The hub ACKs (ACTC at the sender) and holds the pacs.008 for the absent receiver.
    for _ in 0..400 {
        if network.banks[0].bank.payment(&uetr).unwrap().status == PaymentStatus::Actc {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(network.banks[0].bank.payment(&uetr).unwrap().status, PaymentStatus::Actc);
    assert_eq!(network.hub().queued_for(bic(IR)), 1, "the message waits at the hub");
    network.start_bank(bic(IR)).await.unwrap();
    let at_sender = final_status(&network, 0, &uetr).await;
    assert_eq!(status_of(&at_sender), pb::PaymentStatus::Acsc);
    assert_eq!(balance(&network, 1, "C002"), 1_234);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_bank_speaking_as_another_is_refused_and_nothing_reaches_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR, CN], &[IR, CN]).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    // RU's certificate, a message from CN validly signed with CN's own (stolen) key.
    let forged = signer(&network.network, CN).sign(&transfer(CN, IR, "C002"));
    expect_nak(session.submit(pb::SignedEnvelope::from(&forged)).await, Code::PermissionDenied, "");
    // RU's certificate and key, but the header claims CN sent it.
    let mut claims_cn = pb::Message::from(&transfer(CN, IR, "C002"));
    claims_cn.header.as_mut().unwrap().sender_bic = CN.into();
    let envelope =
        signer(&network.network, RU).sign_payload(Bytes::from(prost::Message::encode_to_vec(&claims_cn)));
    expect_nak(session.submit(pb::SignedEnvelope::from(&envelope)).await, Code::PermissionDenied, "");
    tokio::time::sleep(Duration::from_millis(100)).await;
    nothing_reached(&network, 0);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn tampered_misaddressed_unauthorised_and_oversized_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bics = [bic(RU), bic(IR), bic(CN)];
    let pki = tls::init(dir.path(), &bics).unwrap();
    // RMA: take away RU's right to send pacs.008 to CN.
    let path = dir.path().join(DIRECTORY_FILE);
    let mut file: DirectoryFile = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for relationship in &mut file.relationships {
        if relationship.sender == RU && relationship.receiver == CN {
            relationship.message_types.retain(|t| t != "pacs.008");
        }
    }
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let network = start_network(pki, &[IR, CN], HubConfig::default()).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);

    // A flipped byte inside the signed payload (in the remittance text, so that it
    // still decodes): the signature no longer verifies.
    let envelope = ru.sign(&transfer(RU, IR, "C002"));
    let mut payload = envelope.payload.to_vec();
    let at = payload.windows(10).position(|w| w == b"Invoice 42").unwrap();
    payload[at] ^= 0x20;
    let mut tampered = pb::SignedEnvelope::from(&envelope);
    tampered.payload = Bytes::from(payload);
    expect_nak(session.submit(tampered).await, Code::Unauthenticated, "");

    // To a BIC that is not a participant.
    let unknown = ru.sign(&transfer(RU, "ZZZZZZZZXXX", "C002"));
    expect_nak(session.submit(pb::SignedEnvelope::from(&unknown)).await, Code::NotFound, "RC01");

    // RMA does not allow RU -> CN pacs.008.
    let unauthorised = ru.sign(&transfer(RU, CN, "C002"));
    expect_nak(session.submit(pb::SignedEnvelope::from(&unauthorised)).await, Code::PermissionDenied, "AG01");

    // Over the payload size limit (validly signed).
    let oversized = ru.sign_payload(Bytes::from(vec![0u8; HubConfig::default().payload_size_max_bytes + 1]));
    expect_nak(session.submit(pb::SignedEnvelope::from(&oversized)).await, Code::ResourceExhausted, "");

    // Not a message at all (validly signed garbage).
    let garbage = ru.sign_payload(Bytes::from_static(b"\x0a\x03abc garbage"));
    expect_nak(session.submit(pb::SignedEnvelope::from(&garbage)).await, Code::InvalidArgument, "FF01");

    // A malformed envelope: a 3-byte signature.
    let mut short = pb::SignedEnvelope::from(&ru.sign(&transfer(RU, IR, "C002")));
    short.signature = Bytes::from_static(b"abc");
    expect_nak(session.submit(short).await, Code::InvalidArgument, "FF01");

    // A gap in the input sequence is refused, never skipped.
    let ahead = session.next_isn + 5;
    let gap = ru.sign(&transfer(RU, IR, "C002"));
    expect_nak(session.submit_as(ahead, pb::SignedEnvelope::from(&gap)).await, Code::FailedPrecondition, "");

    // And the session still works: a good message is ACKed after all that.
    expect_ack(session.submit_signed(&ru, &transfer(RU, IR, "C002")).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    nothing_reached(&network, 1);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn the_same_message_twice_is_acked_twice_and_applied_once_and_a_reused_id_is_dupl() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let ru = signer(&network.network, RU);
    let message = transfer(RU, IR, "C002");
    let envelope = pb::SignedEnvelope::from(&ru.sign(&message));
    let first = expect_ack(session.submit(envelope.clone()).await);
    let second = expect_ack(session.submit(envelope).await);
    assert_eq!(first.receipt, second.receipt, "the original receipt, again");
    assert_eq!(first.message_id, message.header().message_id.as_str());

    // Same id, other bytes.
    let mut other = pb::Message::from(&transfer(RU, IR, "C002"));
    other.header.as_mut().unwrap().message_id = message.header().message_id.to_string();
    let other = ru.sign(&Message::try_from(other).unwrap());
    expect_nak(session.submit(pb::SignedEnvelope::from(&other)).await, Code::AlreadyExists, "DUPL");

    let uetr = message.header().uetr.unwrap().to_string();
    let at_receiver = final_status(&network, 0, &uetr).await;
    assert_eq!(status_of(&at_receiver), pb::PaymentStatus::Acsc);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(balance(&network, 0, "C002"), 500, "applied once");
    assert_eq!(network.banks[0].bank.payments().unwrap().len(), 1);
    network.stop().await.unwrap();
}

#[tokio::test]
async fn clients_without_a_certificate_or_from_another_ca_fail_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let ca = network.network.ca_certificate().unwrap();

    // No client certificate at all.
    let tls =
        tonic::transport::ClientTlsConfig::new().domain_name(tls::SERVER_NAME).ca_certificate(ca.clone());
    let endpoint =
        tonic::transport::Endpoint::from_shared(network.hub_url.clone()).unwrap().tls_config(tls).unwrap();
    assert!(handshake_fails(endpoint).await, "no certificate");

    // A certificate for the same BIC from another network's CA.
    let other = tempfile::tempdir().unwrap();
    let other_pki = tls::init(other.path(), &[bic(RU), bic(IR)]).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .domain_name(tls::SERVER_NAME)
        .ca_certificate(ca)
        .identity(other_pki.tls_identity(Role::Bank(bic(RU))).unwrap());
    let endpoint =
        tonic::transport::Endpoint::from_shared(network.hub_url.clone()).unwrap().tls_config(tls).unwrap();
    assert!(handshake_fails(endpoint).await, "another CA");

    // And a client that trusts only another CA does not accept the hub either.
    let bank_url = network.banks[0].url.clone();
    assert!(
        net::connect(&other_pki, Role::Operator, &bank_url).await.is_err() || {
            let channel = net::connect(&other_pki, Role::Operator, &bank_url).await.unwrap();
            let mut client = pb::bank_service_client::BankServiceClient::new(channel);
            client.list_accounts(pb::ListAccountsRequest {}).await.is_err()
        }
    );
    network.stop().await.unwrap();
}

/// With TLS 1.3 the server judges the client's certificate after the client thinks the
/// handshake is done, so the refusal shows on connect or on the first call.
async fn handshake_fails(endpoint: tonic::transport::Endpoint) -> bool {
    let Ok(channel) = endpoint.connect().await else { return true };
    RawSession::open_on(channel).await.is_err()
}

#[tokio::test]
async fn the_operator_api_refuses_other_certificates_and_bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    // A bank's own certificate is not an operator's.
    let channel = net::connect(&network.network, Role::Bank(bic(IR)), &network.banks[0].url).await.unwrap();
    let mut as_bank = pb::bank_service_client::BankServiceClient::new(channel);
    let refused = as_bank.list_accounts(pb::ListAccountsRequest {}).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    let mut client = network.operator(0).await.unwrap();
    let good = pb::SubmitPaymentRequest {
        debtor_account: "C001".into(),
        creditor_agent_bic: IR.into(),
        creditor_account: "C002".into(),
        creditor_name: "Sara".into(),
        amount: "1.00".into(),
        currency: "CNY".into(),
        remittance_information: String::new(),
        end_to_end_id: String::new(),
        ..Default::default()
    };
    type Corruption = fn(&mut pb::SubmitPaymentRequest);
    let cases: Vec<(Corruption, Code)> = vec![
        (|r| r.amount = "12.345".into(), Code::InvalidArgument),
        (|r| r.amount = "-5".into(), Code::InvalidArgument),
        (|r| r.amount = "0".into(), Code::InvalidArgument),
        (|r| r.amount = "99999999999999999999".into(), Code::InvalidArgument),
        (|r| r.currency = "XYZ".into(), Code::InvalidArgument),
        (|r| r.currency = "EUR".into(), Code::FailedPrecondition),
        (|r| r.creditor_agent_bic = "nonsense".into(), Code::InvalidArgument),
        (|r| r.creditor_agent_bic = RU.into(), Code::FailedPrecondition),
        (|r| r.creditor_agent_bic = "ZZZZZZZZXXX".into(), Code::FailedPrecondition),
        (|r| r.debtor_account = "NOBODY".into(), Code::NotFound),
        (|r| r.debtor_account = "SYS-CASH-CNY".into(), Code::NotFound),
        (|r| r.creditor_account = "".into(), Code::InvalidArgument),
        (|r| r.creditor_name = "".into(), Code::InvalidArgument),
        (|r| r.amount = "1000.01".into(), Code::FailedPrecondition),
        (|r| r.remittance_information = "x".repeat(141), Code::InvalidArgument),
    ];
    for (corrupt, code) in cases {
        let mut request = good.clone();
        corrupt(&mut request);
        let status = client.submit_payment(request.clone()).await.unwrap_err();
        assert_eq!(status.code(), code, "{request:?}: {}", status.message());
    }
    let bad_uetr = client.get_payment(pb::GetPaymentRequest { uetr: "not-a-uetr".into() }).await.unwrap_err();
    assert_eq!(bad_uetr.code(), Code::InvalidArgument);
    let open = pb::OpenAccountRequest {
        account_id: "SYS-SETTLEMENT-CNY".into(),
        currency: "CNY".into(),
        name: "impostor".into(),
        opening_deposit: "5".into(),
    };
    assert_eq!(client.open_account(open).await.unwrap_err().code(), Code::FailedPrecondition);
    assert!(network.banks[0].bank.payments().unwrap().is_empty(), "no refused order left a payment");
    assert_eq!(balance(&network, 0, "C001"), 100_000, "and no money moved");
    assert_eq!(network.banks[0].bank.outbox_len(), 0, "and nothing was sent");
    network.stop().await.unwrap();
}

#[tokio::test]
async fn hub_and_banks_serve_health_and_reflection() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    for url in [network.hub_url.clone(), network.banks[0].url.clone()] {
        let channel = net::connect(&network.network, Role::Operator, &url).await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
        let response =
            health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
        assert_eq!(
            response.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
        let mut reflection =
            tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
        let request = tonic_reflection::pb::v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(
                tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                    String::new(),
                ),
            ),
        };
        let mut responses =
            reflection.server_reflection_info(tokio_stream::iter([request])).await.unwrap().into_inner();
        let listed = format!("{:?}", responses.message().await.unwrap().unwrap());
        assert!(
            listed.contains("corridor.v1.HubService") && listed.contains("corridor.v1.BankService"),
            "{listed}"
        );
    }
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_bank_reporting_more_deliveries_than_the_hub_sent_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[IR]).await;
    // This hub never sent RU anything: a Hello claiming OSN 7 means another journal.
    let channel = net::connect(&network.network, Role::Bank(bic(RU)), &network.hub_url).await.unwrap();
    let refused = RawSession::open_with(channel, 7).await.err().expect("the session is refused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("journal"), "{}", refused.message());
    network.stop().await.unwrap();
}

#[tokio::test]
async fn a_delivery_the_receiver_cannot_verify_is_rejected_and_never_applied() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_nodes(dir.path(), &[RU, IR], &[RU]).await;
    // IR's own copy of the network directory (its CA certificate, its identity and the
    // directory file) holds another key for RU (an outdated copy, say): the hub, with the
    // right key, accepts RU's pacs.008, but IR cannot verify it.
    let ir_copy = tempfile::tempdir().unwrap();
    let ir_network = NetworkDir::new(ir_copy.path());
    std::fs::copy(dir.path().join("ca.pem"), ir_copy.path().join("ca.pem")).unwrap();
    let ir_dir = ir_network.role_dir(Role::Bank(bic(IR)));
    std::fs::create_dir_all(&ir_dir).unwrap();
    for entry in std::fs::read_dir(network.network.role_dir(Role::Bank(bic(IR)))).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), ir_dir.join(entry.file_name())).unwrap();
    }
    let mut file = DirectoryFile::read(dir.path()).unwrap();
    let stranger = SigningIdentity::generate(bic(RU), corridor::crypto::KeyId::parse("k1").unwrap());
    let ru_entry = file.participants.iter_mut().find(|p| p.bic == RU).unwrap();
    ru_entry.keys[0].public_key = corridor::crypto::hex_encode(&stranger.verifying_key_bytes());
    file.save(ir_copy.path()).unwrap();
    let directory = corridor::directory::Directory::load(ir_copy.path()).unwrap();
    let identity = ir_network.signing_identity(Role::Bank(bic(IR))).unwrap();
    let ir =
        corridor::bank::Bank::open(identity, directory, &network.network.bank_data_dir(bic(IR))).unwrap();
    ir.open_account("C002", "CNY", "Payee", "").await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let node = {
        let (ir, pki, hub_url, stop) =
            (ir.clone(), ir_network.clone(), network.hub_url.clone(), stop.clone());
        tokio::spawn(async move {
            corridor::bank::run(
                ir,
                &pki,
                &corridor::bank::HubUrls::parse(&hub_url).unwrap(),
                listener,
                stop.cancelled_owned(),
            )
            .await
        })
    };

    let payment = network.banks[0].bank.submit_payment(&order(IR, "C002", "7.00")).await.unwrap();
    let uetr = payment.uetr.to_string();
    let at_sender = final_status(&network, 0, &uetr).await;
    assert_eq!((status_of(&at_sender), at_sender.reason_code.as_str()), (pb::PaymentStatus::Rjct, "NARR"));
    assert!(at_sender.detail.contains("does not verify"), "{}", at_sender.detail);
    assert_eq!(balance(&network, 0, "C001"), 100_000, "the sender's customer is whole again");
    assert_eq!(ir.payment(&uetr).unwrap().status, PaymentStatus::Rjct);
    let (accounts, balanced) = ir.accounts();
    assert!(balanced);
    assert!(accounts.iter().all(|a| a.balance == 0), "nothing was booked at the receiver");
    stop.cancel();
    node.await.unwrap().unwrap();
    network.stop().await.unwrap();
}

/// A status report that waited in the beneficiary bank's outbox past the hub's replay
/// window (SECURITY.md: freshness) is refused as too old (TM01), issued again fresh,
/// and the payment settles at both ends (DESIGN.md: "No acknowledged message is lost").
/// Shown through the real session code of both sides (the bank's `run_session`
/// resending on reconnect, the hub's gRPC server), on one manual clock shared by the
/// hub and the banks: a partition between the beneficiary's bank and the hub holds the
/// pacs.002 back while the clock moves past the window, then the link breaks and heals.
#[tokio::test]
async fn a_status_report_held_past_the_replay_window_is_refused_tm01_issued_again_and_settles() {
    let dir = tempfile::tempdir().unwrap();
    // From the system's time now: the keys `pki init` makes are valid from then.
    let clock = ManualClock::starting_now();
    let window = Duration::from_secs(60);
    let config =
        HubConfig { clock: Clock::from(clock.clone()), message_age_max: window, ..HubConfig::default() };
    let mut network = network_with_config(dir.path(), &[RU, IR], &[RU], config).await;
    let partition = FaultProxy::start(&network.hub_url);
    let ir = network.start_bank_via(bic(IR), &partition.url()).await.unwrap();
    open_accounts(&network, ir).await;
    let ru = network.index_of(bic(RU));
    let first = network.banks[ru].bank.submit_payment(&order(IR, "C002", "1.00")).await.unwrap();
    let first = final_status(&network, ru, &first.uetr.to_string()).await;
    assert_eq!(status_of(&first), pb::PaymentStatus::Acsc, "the link works: {}", first.detail);

    partition.hold(Direction::ToUpstream);
    let payment = network.banks[ru].bank.submit_payment(&order(IR, "C002", "120.00")).await.unwrap();
    let uetr = payment.uetr.to_string();
    // IR books the payment and queues its pacs.002, which stops at the partition.
    wait_until_answer_queued(&network, ir, &uetr).await;
    let payee = &network.banks[ir].bank;
    assert_eq!(payee.payment(&uetr).unwrap().status, PaymentStatus::Acsc, "booked at the beneficiary's bank");
    assert_eq!(payee.outbox_len(), 1, "its pacs.002 waits in the outbox");
    let waiting = network.banks[ru].bank.payment(&uetr).unwrap().status;
    assert_eq!(waiting, PaymentStatus::Actc, "the payer has the hub's ACK and no answer yet");

    let mut events = network.hub().subscribe_events();
    clock.advance(window + Duration::from_secs(1));
    partition.heal();
    let at_payer = final_status(&network, ru, &uetr).await;
    assert_eq!(status_of(&at_payer), pb::PaymentStatus::Acsc, "{}", at_payer.detail);

    // The hub refused the held report as too old, then took a fresh one from IR.
    let mut refused_as_too_old = false;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await.unwrap().unwrap();
        match event {
            // Refused before its type is read into the event: IR sends nothing else here.
            HubEvent::Refused { sender, reason, .. } if sender == bic(IR) => {
                assert_eq!(reason, Some(ReasonCode::Tm01));
                refused_as_too_old = true;
            }
            HubEvent::Accepted { message_type: MessageType::Pacs002, sender, uetr: Some(of), .. }
                if sender == bic(IR) && of == payment.uetr =>
            {
                break;
            }
            _ => {}
        }
    }
    assert!(refused_as_too_old, "the held pacs.002 was refused TM01 before the fresh one was taken");
    let at_hub = network.hub().payment(&payment.uetr).unwrap();
    assert!(at_hub.settled(), "the hub settled it: {:?}", at_hub.status);
    let report = at_hub.status.expect("a status step");
    assert_eq!(report.reported_unix_ms, clock.unix_ms(), "on the report issued after the window went by");
    assert_eq!(payee.payment(&uetr).unwrap().status, PaymentStatus::Acsc);
    assert_eq!(payee.outbox_len(), 0);
    assert_eq!(balance(&network, ru, "C001"), 100_000 - 100 - 12_000);
    assert_eq!(balance(&network, ir, "C002"), 100 + 12_000);
    network.stop().await.unwrap();
}
