//! The hub's memory is bounded under steady load (issue 6) without losing a guarantee
//! of DESIGN.md: finished payments leave memory for the archive in the hub's store after
//! a retention, and the duplicate check leaves messages older than the retention to the
//! journal. Real nodes, real gRPC with mTLS, a tiny retention and a tiny window: every
//! reader still finds an archived payment (`track`, the dashboard, the reconciler), a
//! return and a recall of one work end to end, a pacs.008 reusing its UETR is refused
//! ("No payment is applied twice"), the archive survives a restart, and duplicates are
//! answered as before whether memory or the journal knows them, while one outside the
//! replay window is refused (TM01).

mod common;

use std::time::Duration;

use common::bic;
use common::net::{
    CN, IR, RU, RawSession, expect_ack, expect_nak, final_status, network_with_config, order, signer,
};
use corridor::hub::{Hub, HubConfig};
use corridor::model::{Amount, Body, Currency, Message, MessageId, Uetr};
use corridor::net::tracker_client;
use corridor::pb;
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use tonic::Code;

/// Bounds every wait at 30 s; each step takes milliseconds.
const POLLS_MAX: usize = 1_200;
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Payments each test sends: far more than stay in memory at once.
const PAYMENTS: usize = 30;

/// A hub that archives a finished payment, and forgets a message, 50 ms after its last
/// step, for a replay window of 2 s.
fn small_memory() -> HubConfig {
    HubConfig {
        retention: Duration::from_millis(50),
        message_age_max: Duration::from_secs(2),
        clock_skew_max: Duration::from_millis(100),
        ..HubConfig::default()
    }
}

/// Waits (bounded) until `done` holds of the hub.
async fn wait_until(network: &LocalNetwork, what: &str, done: impl Fn(&Hub) -> bool) {
    for _ in 0..POLLS_MAX {
        if done(network.hub()) {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("the hub never got to: {what} ({:?})", network.hub().memory_counts());
}

async fn track(network: &LocalNetwork, uetr: &Uetr) -> pb::TrackResponse {
    let mut tracker = tracker_client(&network.network, &network.hub_url).await.unwrap();
    tracker
        .track(pb::TrackRequest { uetr: uetr.to_string(), this_hub_only: false })
        .await
        .unwrap()
        .into_inner()
}

fn steps(tracked: &pb::TrackResponse) -> Vec<&str> {
    tracked.steps.iter().map(|s| s.step.as_str()).collect()
}

/// Waits (bounded) until `uetr` is archived again: out of memory, with `done` true of it.
async fn wait_archived(network: &LocalNetwork, uetr: &Uetr, done: impl Fn(&pb::TrackResponse) -> bool) {
    for _ in 0..POLLS_MAX {
        let in_memory = network.hub().memory_counts().payments > 0;
        if !in_memory && done(&track(network, uetr).await) {
            return;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("payment {uetr} did not finish and leave memory: {:?}", track(network, uetr).await);
}

async fn assert_reconciles_clean(network: &LocalNetwork) {
    let banks: Vec<_> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let wait = Duration::from_secs(20);
    let report = sources::reconcile_live(&network.network, &network.hub_url, &banks, wait).await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
    assert_eq!(report.payments_in_transit, 0, "{}", report.render());
}

/// Sends `count` settled payments from RU to IR and returns their UETRs.
async fn pay(network: &LocalNetwork, count: usize) -> Vec<Uetr> {
    let ru = &network.banks[network.index_of(bic(RU))].bank;
    let mut uetrs = Vec::new();
    for _ in 0..count {
        uetrs.push(ru.submit_payment(&order(IR, "C002", "1.00")).await.unwrap().uetr);
    }
    for uetr in &uetrs {
        let payment = final_status(network, 0, &uetr.to_string()).await;
        assert_eq!(payment.status, pb::PaymentStatus::Acsc as i32, "{payment:?}");
    }
    uetrs
}

/// (a) memory bounded, (b) track of an archived payment, (g) the reconciler, (c) a return
/// and a recall of archived settled payments, (d) a reused archived UETR refused, (f) the
/// archive after a restart.
#[tokio::test]
async fn finished_payments_leave_memory_and_every_reader_still_finds_them() {
    let dir = tempfile::tempdir().unwrap();
    // CN runs no node: the test speaks for it by hand.
    let mut network = network_with_config(dir.path(), &[RU, IR, CN], &[RU, IR], small_memory()).await;
    let uetrs = pay(&network, PAYMENTS).await;

    // (a) Everything finished leaves memory; so do the duplicate check's messages.
    wait_until(&network, "no payment in memory", |hub| hub.memory_counts().payments == 0).await;
    assert_eq!(network.hub().archived_count().unwrap(), PAYMENTS as u64);
    wait_until(&network, "no message remembered", |hub| hub.memory_counts().recent_messages == 0).await;
    assert_eq!(network.hub().payments().len(), PAYMENTS, "every payment, from the archive");

    // (b) Its whole history, from the archive.
    let tracked = track(&network, &uetrs[0]).await;
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "status_delivered", "settled"] {
        assert!(steps(&tracked).contains(&step), "no {step} in {:?}", steps(&tracked));
    }
    assert!(tracked.payment.unwrap().settled);
    // The dashboard's search finds it there too, with its whole path.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let dashboard = tokio::spawn(corridor::hub::dashboard::serve_dashboard(
        network.hub().clone(),
        listener,
        stop.clone().cancelled_owned(),
    ));
    let answer = common::http::get(addr, &format!("/api/payments/{}", uetrs[0])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let path = answer.json();
    let drawn: Vec<&str> =
        path["steps"].as_array().unwrap().iter().filter_map(|s| s["step"].as_str()).collect();
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "status_delivered"] {
        assert!(drawn.contains(&step), "no {step} in {drawn:?}");
    }
    stop.cancel();
    dashboard.await.unwrap().unwrap();

    // (g) The reconciler matches the banks against archived payments.
    assert_reconciles_clean(&network).await;

    // (d) A pacs.008 reusing an archived UETR is refused and moves nothing.
    let positions = || format!("{:?}", network.hub().positions().positions().collect::<Vec<_>>());
    let before = positions();
    let mut session = RawSession::open(&network.network, CN, &network.hub_url).await.unwrap();
    let mut reuse = common::net::transfer(CN, IR, "C002");
    let Body::Pacs008(mut transfer) = reuse.body().clone() else { unreachable!() };
    transfer.uetr = uetrs[1];
    let mut header = reuse.header().clone();
    header.uetr = Some(uetrs[1]);
    reuse = Message::new(header, Body::Pacs008(transfer)).unwrap();
    let answer = session.submit_signed(&signer(&network.network, CN), &reuse).await;
    let nak = expect_nak(answer, Code::AlreadyExists, "DUPL");
    assert!(nak.detail.contains(&uetrs[1].to_string()), "{nak:?}");
    assert_eq!(positions(), before, "a refused reuse moves nothing");
    assert_eq!(network.hub().queued_for(bic(IR)), 0);
    // Brought back into memory to be checked, then let go again.
    wait_until(&network, "no payment in memory", |hub| hub.memory_counts().payments == 0).await;
    drop(session);

    // (c) A return of an archived settled payment, end to end.
    let mut ir = network.operator(network.index_of(bic(IR))).await.unwrap();
    let request = pb::ReturnPaymentRequest {
        uetr: uetrs[2].to_string(),
        reason_code: "AC04".into(),
        additional_information: "account closed".into(),
    };
    ir.return_payment(request).await.unwrap();
    wait_archived(&network, &uetrs[2], |t| steps(t).contains(&"return_delivered")).await;
    assert!(track(&network, &uetrs[2]).await.payment.unwrap().returned);

    // (c) A recall of an archived settled payment, accepted: the funds come back.
    let mut ru = network.operator(network.index_of(bic(RU))).await.unwrap();
    let request = pb::RecallPaymentRequest {
        uetr: uetrs[3].to_string(),
        reason_code: "DUPL".into(),
        additional_information: "sent twice".into(),
    };
    ru.recall_payment(request).await.unwrap();
    let pdcr = pb::InvestigationStatus::Pdcr as i32;
    for _ in 0..POLLS_MAX {
        let answer = ir.get_payment(pb::GetPaymentRequest { uetr: uetrs[3].to_string() }).await.unwrap();
        if answer.into_inner().payment.unwrap().recall_status == pdcr {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    let accept = pb::AnswerRecallRequest { uetr: uetrs[3].to_string(), accept: true, ..Default::default() };
    ir.answer_recall(accept).await.unwrap();
    let done = ["recall_answered", "recall_answer_delivered", "returned", "return_delivered"];
    wait_archived(&network, &uetrs[3], |t| done.iter().all(|s| steps(t).contains(s))).await;
    let recalled = track(&network, &uetrs[3]).await.payment.unwrap();
    assert_eq!(recalled.recall_status, pb::InvestigationStatus::Cncl as i32);
    assert_reconciles_clean(&network).await;

    // (f) The archive survives a restart: the journal's replay rebuilds every payment,
    // which then leaves memory again; readers see the same.
    network.restart_hub().await.unwrap();
    wait_until(&network, "no payment in memory after the restart", |hub| hub.memory_counts().payments == 0)
        .await;
    assert_eq!(network.hub().archived_count().unwrap(), PAYMENTS as u64);
    assert!(track(&network, &uetrs[2]).await.payment.unwrap().returned);
    assert_reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

/// (e) A duplicate inside the replay window is ACKed again (same message id), one with
/// other content is refused (DUPL), whether memory still holds the original or only the
/// journal does; the same message outside the window is refused by the window (TM01).
#[tokio::test]
async fn a_duplicate_is_answered_inside_the_window_from_memory_or_the_journal_and_refused_tm01_outside() {
    let dir = tempfile::tempdir().unwrap();
    let network = network_with_config(dir.path(), &[RU, IR], &[IR], small_memory()).await;
    let identity = signer(&network.network, RU);
    let mut session = RawSession::open(&network.network, RU, &network.hub_url).await.unwrap();
    let message = common::net::transfer(RU, IR, "C002");
    let envelope = pb::SignedEnvelope::from(&identity.sign(&message));
    let first = expect_ack(session.submit(envelope.clone()).await);
    let again = expect_ack(session.submit(envelope.clone()).await);
    assert_eq!(again.message_id, first.message_id);
    assert!(network.hub().memory_counts().recent_messages >= 1);

    // Same id, other content.
    let Body::Pacs008(mut other) = message.body().clone() else { unreachable!() };
    other.amount = Amount::parse("6.00", Currency::parse("CNY").unwrap()).unwrap();
    let conflicting = Message::new(message.header().clone(), Body::Pacs008(other)).unwrap();
    expect_nak(session.submit_signed(&identity, &conflicting).await, Code::AlreadyExists, "DUPL");
    assert_eq!(network.hub().payments().len(), 1, "the duplicates moved nothing");

    // Memory lets go after the retention (50 ms); the journal answers, inside the window.
    wait_until(&network, "no message remembered", |hub| hub.memory_counts().recent_messages == 0).await;
    let from_journal = expect_ack(session.submit(envelope.clone()).await);
    assert_eq!(from_journal.message_id, first.message_id);
    assert_eq!(from_journal.receipt, first.receipt, "the same receipt for the same bytes");
    expect_nak(session.submit_signed(&identity, &conflicting).await, Code::AlreadyExists, "DUPL");
    assert_eq!(network.hub().payments().len(), 1, "the duplicates moved nothing");
    assert_eq!(network.hub().memory_counts().recent_messages, 0, "a duplicate is not remembered again");

    // Past the window (2 s back, 0.1 s ahead): refused by the window.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let nak = expect_nak(session.submit(envelope).await, Code::FailedPrecondition, "TM01");
    assert!(nak.detail.contains(&message.header().message_id.to_string()), "{nak:?}");
    let fresh = common::net::transfer(RU, IR, "C002");
    assert_ne!(fresh.header().message_id, MessageId::parse(&first.message_id).unwrap());
    expect_ack(session.submit_signed(&identity, &fresh).await);
    drop(session);
    network.stop().await.unwrap();
}

/// (h) A retention of zero, or of more than a day, is refused with a clear error that
/// names it; Hub::open refuses it before touching any store.
#[test]
fn a_garbage_retention_is_refused_with_a_clear_error() {
    for retention in [Duration::ZERO, Duration::from_secs(10 * 24 * 3600)] {
        let config = HubConfig { retention, ..HubConfig::default() };
        let error = config.validate().unwrap_err();
        assert!(error.contains("the retention must be between 1 ms and 24 hours"), "{error}");
    }
    assert!(small_memory().validate().is_ok());
}
