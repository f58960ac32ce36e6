//! The hub's web dashboard (issue 9) over real HTTP: the demo's network with its
//! dashboard, hit with plain HTTP/1.1 requests on a TCP stream. The page and its assets
//! are served from the binary and reference nothing outside it (it works offline); the
//! snapshot lists every participant and counters that rise as payments flow; the event
//! stream tells each message as the hub accepts it; a payment's path is there by UETR;
//! bad input gets a clear 4xx and changes nothing; and the demo's payments all settle
//! and reconcile clean with the dashboard watching (it never slows or breaks them).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::http::{get, request};
use corridor::hub::dashboard::serve_dashboard;
use corridor::model::Bic;
use corridor::sim::LocalNetwork;
use corridor::sim::demo::{DemoConfig, DemoSummary, render, run_demo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any one wait in these tests may take before it fails.
const WAIT: Duration = Duration::from_secs(60);

async fn state(addr: SocketAddr) -> Value {
    let answer = get(addr, "/api/state").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

fn accepted_total(state: &Value) -> u64 {
    state["messages"]["accepted_total"].as_u64().expect("accepted_total")
}

/// An open `/api/events` stream: its `data:` objects, one at a time.
struct EventStream {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl EventStream {
    async fn open(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.expect("connect to the dashboard");
        let text = format!("GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
        stream.write_all(text.as_bytes()).await.expect("send the request");
        Self { stream, buffer: Vec::new() }
    }

    /// The next event's JSON (chunk-size lines and keep-alive comments skipped).
    async fn next(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if let Some(data) = line.trim_end().strip_prefix("data: ") {
                    return serde_json::from_str(data)
                        .unwrap_or_else(|e| panic!("event not JSON ({e}): {data}"));
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("an event in time")
                .expect("read the event stream");
            assert!(read > 0, "the event stream ended");
            self.buffer.extend_from_slice(&chunk[..read]);
        }
    }
}

/// The demo's progress lines, as a checker running beside it hears them.
struct Progress {
    lines: mpsc::UnboundedReceiver<String>,
}

impl Progress {
    /// Waits for a progress line starting with `prefix`; returns the rest of it.
    async fn wait_for(&mut self, prefix: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.recv()).await.expect("progress in time");
            let line = line.unwrap_or_else(|| panic!("the demo ended before saying {prefix:?}: {seen:#?}"));
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
            seen.push(line);
        }
    }
}

/// Runs the demo (in this task: its progress callback is not `Send`) with its dashboard,
/// held up until `checks` (in a task beside it, hearing its progress) is done. Returns
/// the demo's summary and what `checks` returned.
async fn with_held_demo<T, F>(config: DemoConfig, checks: impl FnOnce(Progress) -> F) -> (DemoSummary, T)
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let hold = CancellationToken::new();
    let config =
        DemoConfig { dashboard: Some("127.0.0.1:0".parse().unwrap()), hold: Some(hold.clone()), ..config };
    let (sender, lines) = mpsc::unbounded_channel();
    let checking = checks(Progress { lines });
    let checker = tokio::spawn(async move {
        // Whatever happens, even a panic, the demo is then let go.
        let _release = hold.drop_guard();
        checking.await
    });
    let mut progress = move |line: &str| {
        let _ = sender.send(line.to_owned());
    };
    let summary = run_demo(&config, &mut progress).await;
    drop(progress);
    let checked = match checker.await {
        Ok(checked) => checked,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    (summary.expect("the demo"), checked)
}

/// The demo with its dashboard: every participant listed and connected, the counters rise
/// while payments flow, each accepted message comes down the event stream as it happens,
/// a payment's path is there by UETR, the reconciliation is posted, and the demo still
/// succeeds (the dashboard watching changes nothing for the payments).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_dashboard_shows_participants_counters_events_and_a_payments_path() {
    let config = DemoConfig {
        banks: 4,
        payments: 12,
        seed: 9,
        pace: Duration::from_millis(20),
        ..DemoConfig::default()
    };
    let (summary, addr) = with_held_demo(config, check_the_demo_dashboard).await;
    assert!(summary.ok(), "{}", render(&summary));
    // Stopped: the dashboard let go of its port (and of the hub, which closed).
    assert!(TcpStream::connect(addr).await.is_err(), "the dashboard is down after the demo");
}

async fn check_the_demo_dashboard(mut progress: Progress) -> SocketAddr {
    let url = progress.wait_for("Dashboard: ").await;
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|a| a.strip_suffix('/'))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("Dashboard: http://ADDR/, not {url:?}"));
    let mut events = EventStream::open(addr).await;
    let first = state(addr).await;
    let bics: Vec<&str> =
        first["participants"].as_array().unwrap().iter().map(|p| p["bic"].as_str().unwrap()).collect();
    for (bic, ..) in &corridor::sim::demo::DEMO_BANKS[..4] {
        assert!(bics.contains(bic), "{bic} listed: {first:#}");
    }
    let before = accepted_total(&first);
    progress.wait_for("Sending").await;

    // The event stream tells each message as the hub accepts it.
    let payment = loop {
        let event = events.next().await;
        if event["kind"] == "accepted" && event["type"] == "pacs.008" {
            break event;
        }
    };
    for field in ["sender", "receiver", "uetr", "isn", "osn", "unix_ms"] {
        assert!(!payment[field].is_null(), "{field} in {payment:#}");
    }
    Bic::parse(payment["receiver"].as_str().unwrap()).expect("a BIC");

    // The reconciliation is posted at the end, with the counters risen.
    progress.wait_for("Reconciling").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let last = loop {
        let now = state(addr).await;
        if !now["reconciliation"].is_null() {
            break now;
        }
        assert!(tokio::time::Instant::now() < deadline, "no reconciliation posted: {now:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(last["reconciliation"]["clean"], true, "{last:#}");
    let after = accepted_total(&last);
    // At least a pacs.008 and a pacs.002 per payment.
    assert!(after >= before + 24, "accepted {before} -> {after}: {last:#}");
    assert!(last["participants"].as_array().unwrap().iter().all(|p| p["connected"] == true), "{last:#}");
    let by_type = last["messages"]["by_type"].as_array().unwrap();
    let pacs008 = by_type.iter().find(|t| t["type"] == "pacs.008").unwrap();
    assert!(pacs008["accepted"].as_u64().unwrap() >= 12, "{last:#}");
    assert!(!last["positions"].as_array().unwrap().is_empty(), "{last:#}");
    assert!(!last["fx_positions"].as_array().unwrap().is_empty(), "home currencies convert: {last:#}");
    let per_second = last["throughput"]["per_second"].as_array().unwrap();
    assert_eq!(per_second.len(), 60, "{last:#}");
    assert!(per_second.iter().map(|s| s["messages"].as_u64().unwrap()).sum::<u64>() > 0, "{last:#}");
    assert!(!last["latency"]["samples"].as_array().unwrap().is_empty(), "{last:#}");

    // The payment's path, step by step, from its first message to its status's delivery.
    let uetr = payment["uetr"].as_str().unwrap();
    let path = get(addr, &format!("/api/payments/{uetr}")).await;
    assert_eq!(path.status, 200, "{}", path.body);
    let path = path.json();
    let steps: Vec<&str> =
        path["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    for step in ["submitted", "acknowledged", "delivered", "status_reported", "status_delivered"] {
        assert!(steps.contains(&step), "{step} in {steps:?}");
    }
    assert_eq!(steps[0], "submitted", "{steps:?}");
    assert_eq!(path["payment"]["uetr"], uetr);
    assert_eq!(path["payment"]["sender"], payment["sender"]);
    addr
}

/// A hub with its dashboard and no banks: the page and its assets, and bad requests.
async fn hub_with_dashboard(
    dir: &std::path::Path,
) -> (LocalNetwork, SocketAddr, CancellationToken, JoinHandle<Result<(), String>>) {
    let bics = [Bic::parse("CRDARUMMXXX").unwrap(), Bic::parse("CRDBIRTHXXX").unwrap()];
    let network = LocalNetwork::create(dir, &bics).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve_dashboard(network.hub().clone(), listener, stop.clone().cancelled_owned()));
    (network, addr, stop, task)
}

/// The page, its script and its style come from the binary and name no other site: the
/// dashboard works offline, and its page holds every element the browser test reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_locally_and_reference_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let (network, addr, stop, task) = hub_with_dashboard(dir.path()).await;
    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.head.to_ascii_lowercase().contains("content-type: text/html"), "{}", page.head);
    for id in [
        "participants",
        "messages-total",
        "search-uetr",
        "search-button",
        "sequence",
        "payment-messages",
        "message-xml",
        "reconciliation",
    ] {
        assert!(page.body.contains(&format!("id=\"{id}\"")), "#{id} on the page");
    }
    let mut assets = Vec::new();
    for (path, kind) in [("/assets/dashboard.js", "text/javascript"), ("/assets/dashboard.css", "text/css")] {
        assert!(page.body.contains(path), "the page uses {path}");
        let asset = get(addr, path).await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(asset.head.to_ascii_lowercase().contains(kind), "{path}: {}", asset.head);
        assets.push((path, asset.body));
    }
    assets.push(("/", page.body));
    for (path, body) in &assets {
        for scheme in ["http://", "https://", "//cdn", "ws://"] {
            assert!(!body.contains(scheme), "{path} names {scheme}: nothing may be loaded from elsewhere");
        }
        assert!(body.len() > 500, "{path} is not empty");
    }
    assert_eq!(get(addr, "/assets/other.js").await.status, 404);
    stop.cancel();
    task.await.unwrap().unwrap();
    network.stop().await.unwrap();
}

/// A participant's card shows what the network gave it, not only the directory's
/// default name ("Bank CRDARUMMXXX"): `/api/state` gives each participant its country
/// (from its BIC) and the currencies of its positions at the hub, once funded. And the
/// charts' axes read distinct labels at small rates: an idle hub's throughput axis is
/// 0, 0.5, 1 (rounding each line of the largest value read "1, 1, 0").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_show_their_country_and_currencies_and_small_axes_read_distinct_labels() {
    use corridor::pb;
    let dir = tempfile::tempdir().unwrap();
    let (network, addr, stop, task) = hub_with_dashboard(dir.path()).await;
    let idle = state(addr).await;
    assert_eq!(idle["throughput"]["axis"], serde_json::json!({ "top": 1, "labels": ["0", "0.5", "1"] }));
    assert_eq!(idle["latency"]["axis"]["labels"], serde_json::json!(["0", "0.5", "1"]), "{idle:#}");
    let unfunded = &idle["participants"][0];
    assert_eq!(
        (unfunded["country"].as_str(), unfunded["currencies"].as_array().map(Vec::len)),
        (Some("RU"), Some(0))
    );

    let mut admin = network.admin().await.unwrap();
    for (bic, currency) in [("CRDARUMMXXX", "RUB"), ("CRDBIRTHXXX", "IRR"), ("CRDBIRTHXXX", "CNY")] {
        let fund =
            pb::FundRequest { participant_bic: bic.into(), currency: currency.into(), amount: "1000".into() };
        admin.fund(fund).await.unwrap();
    }
    let funded = state(addr).await;
    let cards: Vec<(String, String, Vec<String>)> = funded["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let currencies =
                p["currencies"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned());
            (
                p["bic"].as_str().unwrap().to_owned(),
                p["country"].as_str().unwrap().to_owned(),
                currencies.collect(),
            )
        })
        .collect();
    assert_eq!(
        cards,
        [
            ("CRDARUMMXXX".to_owned(), "RU".to_owned(), vec!["RUB".to_owned()]),
            ("CRDBIRTHXXX".to_owned(), "IR".to_owned(), vec!["CNY".to_owned(), "IRR".to_owned()]),
        ],
        "{funded:#}"
    );
    // The page draws them: its script reads both fields.
    let script = get(addr, "/assets/dashboard.js").await.body;
    assert!(script.contains("p.country") && script.contains("p.currencies"), "the cards show them");
    assert!(script.contains("axis.labels"), "the charts label their lines as the hub says");
    stop.cancel();
    task.await.unwrap().unwrap();
    network.stop().await.unwrap();
}

/// Garbage paths, malformed and unknown UETRs, other methods and a huge request each get
/// a clear 4xx (a JSON error where the dashboard answers), and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_clear_4xx_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (network, addr, stop, task) = hub_with_dashboard(dir.path()).await;
    let before = state(addr).await;
    assert_eq!(before["participants"].as_array().unwrap().len(), 2, "{before:#}");
    assert!(before["participants"].as_array().unwrap().iter().all(|p| p["connected"] == false));
    assert!(before["reconciliation"].is_null(), "{before:#}");

    let unknown = "/api/payments/8a562c67-ca16-48ba-b074-65581be6f011";
    let too_long = format!("/api/payments/{}", "a".repeat(10_000));
    for path in [
        "/nothing-here",
        "/api/nothing",
        "/api/payments/not-a-uetr",
        "/api/payments/%00%ff%fe",
        "/api/payments/..%2F..%2Fetc%2Fpasswd",
        "/assets/../Cargo.toml",
        "/api/payments/",
        unknown,
        too_long.as_str(),
    ] {
        let answer = get(addr, path).await;
        assert!((400..500).contains(&answer.status), "{path}: {} {}", answer.status, answer.body);
        if path.starts_with("/api/payments/") && path.len() > "/api/payments/".len() {
            let error = answer.json();
            assert!(error["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {}", answer.body);
        }
    }
    let unknown_answer = get(addr, unknown).await;
    assert_eq!(unknown_answer.status, 404);
    assert!(unknown_answer.body.contains("no payment"), "{}", unknown_answer.body);
    for method in ["POST", "PUT", "DELETE"] {
        let answer = request(addr, method, "/api/state").await;
        assert_eq!(answer.status, 405, "{method}: the dashboard is read-only");
    }
    // A request head far past any sensible size is refused, not buffered without end.
    let huge = format!("/api/state?{}", "q".repeat(1 << 20));
    let answer = get(addr, &huge).await;
    assert!(answer.status == 0 || (400..500).contains(&answer.status), "huge: {}", answer.status);

    let after = state(addr).await;
    assert_eq!(before["messages"], after["messages"]);
    assert_eq!(before["positions"], after["positions"]);
    assert_eq!(before["participants"], after["participants"]);
    stop.cancel();
    task.await.unwrap().unwrap();
    network.stop().await.unwrap();
}

/// The hub's events and counters, which the dashboard shows: a session opening for each
/// bank, a payment's pacs.008 and pacs.002 accepted with their sequence numbers, the
/// ACK sent and the deliveries confirmed; a payment from a suspended bank refused (AG01)
/// with its type; and a session closing when its bank stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_tells_sessions_messages_acks_deliveries_and_refusals() {
    use corridor::hub::HubEvent;
    use corridor::model::{MessageType, ReasonCode};
    use corridor::pb;

    let dir = tempfile::tempdir().unwrap();
    let (ru, ir) = (Bic::parse("CRDARUMMXXX").unwrap(), Bic::parse("CRDBIRTHXXX").unwrap());
    let mut network = LocalNetwork::create(dir.path(), &[ru, ir]).await.unwrap();
    let mut events = network.hub().subscribe_events();
    network.fund_all("CNY", "1000000").await.unwrap();
    for bic in [ru, ir] {
        let index = network.start_bank(bic).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Customer one", "1000.00").await.unwrap();
    }
    let order = |amount: &str| pb::SubmitPaymentRequest {
        debtor_account: "C001".into(),
        creditor_agent_bic: ir.to_string(),
        creditor_account: "C001".into(),
        creditor_name: "Customer one".into(),
        amount: amount.into(),
        currency: "CNY".into(),
        settlement_currency: "CNY".into(),
        quote_id: String::new(),
        remittance_information: "dashboard test".into(),
        end_to_end_id: String::new(),
    };
    let mut operator = network.operator(0).await.unwrap();
    let paid = operator.submit_payment(order("12.34")).await.unwrap().into_inner().payment.unwrap();
    let uetr = corridor::model::Uetr::parse(&paid.uetr).unwrap();

    let (mut opened, mut acked, mut delivered_to_ir) = (Vec::new(), false, false);
    let mut accepted = Vec::new();
    while accepted.len() < 2 || !acked || !delivered_to_ir {
        match next(&mut events).await {
            HubEvent::SessionOpened { participant, .. } => opened.push(participant),
            HubEvent::Accepted { message_type, sender, receiver, uetr: Some(of), isn, osn, .. }
                if of == uetr =>
            {
                assert!(isn >= 1 && osn >= 1);
                accepted.push((message_type, sender, receiver));
            }
            HubEvent::Acked { participant, .. } if participant == ru => acked = true,
            HubEvent::Delivered { participant, .. } if participant == ir => delivered_to_ir = true,
            _ => {}
        }
    }
    opened.sort();
    assert_eq!(opened, [ru, ir], "a session opened for each bank");
    assert_eq!(accepted, [(MessageType::Pacs008, ru, ir), (MessageType::Pacs002, ir, ru)]);

    // A suspended sender's payment is refused at the hub, its type known.
    let mut admin = network.admin().await.unwrap();
    admin.suspend(pb::SuspendRequest { participant_bic: ru.to_string() }).await.unwrap();
    operator.submit_payment(order("1.00")).await.unwrap();
    loop {
        if let HubEvent::Refused { message_type, sender, reason, .. } = next(&mut events).await {
            assert_eq!(
                (message_type, sender, reason),
                (Some(MessageType::Pacs008), ru, Some(ReasonCode::Ag01))
            );
            break;
        }
    }
    let counts = network.hub().message_counts();
    let count = |list: &[(MessageType, u64)], t| list.iter().find(|(m, _)| *m == t).unwrap().1;
    assert_eq!(count(&counts.accepted, MessageType::Pacs008), 1, "{counts:?}");
    assert_eq!(count(&counts.accepted, MessageType::Pacs002), 1, "{counts:?}");
    assert_eq!(count(&counts.refused, MessageType::Pacs008), 1, "{counts:?}");
    assert_eq!((counts.accepted_total(), counts.refused_total()), (2, 1), "{counts:?}");
    assert!(network.hub().connections().iter().all(|(_, connected)| *connected));

    // A bank that stops closes its session.
    network.stop_bank(ir).await.unwrap();
    while !matches!(next(&mut events).await, HubEvent::SessionClosed { participant, .. } if participant == ir)
    {
    }
    network.stop().await.unwrap();
}

/// The next hub event, waited for (bounded).
async fn next(
    events: &mut tokio::sync::broadcast::Receiver<corridor::hub::HubEvent>,
) -> corridor::hub::HubEvent {
    tokio::time::timeout(WAIT, events.recv()).await.expect("an event in time").expect("no event lost")
}

/// Waits until the hub has the final status of payment `uetr` and the dashboard lists its
/// messages; returns the payment's `/api/payments/{uetr}` answer.
async fn settled_path(addr: SocketAddr, uetr: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let path = get(addr, &format!("/api/payments/{uetr}")).await;
        if path.status == 200 {
            let path = path.json();
            if path["payment"]["status"] == "ACSC"
                && path["messages"].as_array().is_some_and(|m| m.len() == 2)
            {
                return path;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{uetr} did not settle: {}", path.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The payment search shows each message's XML (issue 20, "Teaching"): the payment's
/// path lists the messages the hub relayed, and each one's XML is `iso20022::write` of
/// the envelope the hub journalled, exactly as its sender signed it (it reads back as that
/// message), valid against the official schemas (xmllint, where installed: see
/// tests/common/external.rs). A message the schema cannot express (a rate with more
/// than 10 decimals, which the model allows) says so instead of failing; unknown or
/// garbage message ids get a clear 404 and change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_of_a_payment_shows_as_valid_xml_or_says_why_not() {
    use corridor::iso20022;
    use corridor::model::{MessageType, Uetr, wire};
    use corridor::pb;

    let dir = tempfile::tempdir().unwrap();
    let (mut network, addr, stop, task) = hub_with_dashboard(dir.path()).await;
    let (ru, ir) = (Bic::parse("CRDARUMMXXX").unwrap(), Bic::parse("CRDBIRTHXXX").unwrap());
    network.fund_all("CNY", "1000000").await.unwrap();
    let mut admin = network.admin().await.unwrap();
    let fund =
        pb::FundRequest { participant_bic: ru.to_string(), currency: "RUB".into(), amount: "100000".into() };
    admin.fund(fund).await.unwrap();
    // 0.001953125 less 25 bp is 0.0019482421875: 13 decimals, where BaseOneRate has 10.
    let agreement = pb::RateAgreement {
        currency_pair: "RUB/IRR".into(),
        rate: "0.001953125".into(),
        spread_bps: 25,
        ..Default::default()
    };
    admin.set_agreement(pb::SetAgreementRequest { agreement: Some(agreement) }).await.unwrap();
    for (bic, currency) in [(ru, "RUB"), (ir, "IRR")] {
        let index = network.start_bank(bic).await.unwrap();
        let bank = &network.banks[index].bank;
        bank.open_account("C001", "CNY", "Customer one", "1000.00").await.unwrap();
        bank.open_account("F001", currency, "Customer two", "1000.00").await.unwrap();
    }
    let order = |account: &str, amount: &str, currency: &str, settlement: &str| pb::SubmitPaymentRequest {
        debtor_account: account.into(),
        creditor_agent_bic: ir.to_string(),
        creditor_account: account.into(),
        creditor_name: "Customer & <one>".into(),
        amount: amount.into(),
        currency: currency.into(),
        settlement_currency: settlement.into(),
        quote_id: String::new(),
        remittance_information: "dashboard XML test".into(),
        end_to_end_id: String::new(),
    };
    let mut operator = network.operator(0).await.unwrap();
    let mut pay =
        async |request| operator.submit_payment(request).await.unwrap().into_inner().payment.unwrap().uetr;
    let plain = pay(order("C001", "12.34", "CNY", "CNY")).await;
    let converted = pay(order("F001", "1000.00", "RUB", "IRR")).await;

    // The plain payment: its pacs.008 and pacs.002, each as XML.
    let path = settled_path(addr, &plain).await;
    let listed = path["messages"].as_array().unwrap();
    let types: Vec<&str> = listed.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["pacs.008", "pacs.002"], "{path:#}");
    assert_eq!(
        (listed[0]["sender"].as_str(), listed[0]["receiver"].as_str()),
        (Some(ru.as_str()), Some(ir.as_str()))
    );
    for (listed, message_type) in listed.iter().zip([MessageType::Pacs008, MessageType::Pacs002]) {
        let id = listed["message_id"].as_str().unwrap();
        let answer = get(addr, &format!("/api/payments/{plain}/messages/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let shown = answer.json();
        assert_eq!(
            (shown["type"].as_str(), shown["message_id"].as_str()),
            (Some(message_type.code()), Some(id))
        );
        assert!(shown["xml_unavailable"].is_null(), "{shown:#}");
        let xml = shown["xml"].as_str().expect("the XML");
        let uetr = Uetr::parse(&plain).unwrap();
        let record =
            corridor::hub::journal::read_message(&network.network.hub_data_dir(), uetr, message_type)
                .unwrap()
                .unwrap();
        let signed = wire::decode_message(&record.envelope.payload).unwrap();
        assert_eq!(iso20022::read_strict(xml.as_bytes()).unwrap(), signed, "the XML is the signed message");
        let definition = iso20022::definition_of(message_type).unwrap();
        assert_eq!(shown["definition"], definition);
        common::xsd::validate_written(
            "each_message_of_a_payment_shows_as_valid_xml_or_says_why_not",
            &[(message_type, xml.to_owned())],
        );
    }

    // The converted payment's pacs.008 holds a rate the schema cannot: it says so.
    let path = settled_path(addr, &converted).await;
    let id = path["messages"][0]["message_id"].as_str().unwrap();
    let answer = get(addr, &format!("/api/payments/{converted}/messages/{id}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let shown = answer.json();
    assert!(shown["xml"].is_null(), "{shown:#}");
    let why = shown["xml_unavailable"].as_str().unwrap();
    assert!(why.contains("cannot write this pacs.008") && why.contains("XchgRate"), "{why}");
    let report = path["messages"][1]["message_id"].as_str().unwrap();
    let answer = get(addr, &format!("/api/payments/{converted}/messages/{report}")).await;
    assert!(answer.json()["xml"].as_str().is_some_and(|x| x.contains("pacs.002.001.10")), "{}", answer.body);

    // Garbage and other payments' messages: a clear 404, nothing changed.
    let before = state(addr).await;
    let unknown_uetr = "8a562c67-ca16-48ba-b074-65581be6f011";
    let long_id = "M".repeat(10_000);
    for (path, says) in [
        (format!("/api/payments/{plain}/messages/NOSUCHID"), "has no message"),
        (format!("/api/payments/{plain}/messages/{report}"), "has no message"),
        (format!("/api/payments/{plain}/messages/%00%ff"), "not UTF-8"),
        (format!("/api/payments/{plain}/messages/{long_id}"), "too long"),
        (format!("/api/payments/{unknown_uetr}/messages/{id}"), "no payment"),
        (format!("/api/payments/not-a-uetr/messages/{id}"), "malformed UETR"),
        (format!("/api/payments/{plain}/messages/"), ""),
    ] {
        let answer = get(addr, &path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(answer.body.contains(says), "{path}: {}", answer.body);
    }
    let after = state(addr).await;
    assert_eq!(before["messages"], after["messages"]);
    assert_eq!(before["positions"], after["positions"]);
    stop.cancel();
    task.await.unwrap().unwrap();
    network.stop().await.unwrap();
}
