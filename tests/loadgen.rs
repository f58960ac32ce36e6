//! The load generator and the metrics, as a user runs them. These are smoke runs: they
//! check that a run completes, accounts for every payment and reports every figure;
//! they never assert a time (figures depend on the machine; see docs/PERFORMANCE.md).

use std::io::{Read, Write};
use std::process::{Command, Output};

use corridor::bank::PaymentOrder;
use corridor::model::{Bic, PaymentStatus};
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use serde_json::Value;

fn corridor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corridor")).args(args).output().unwrap()
}

fn report(output: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "loadgen failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"))
}

fn number(report: &Value, path: &[&str]) -> f64 {
    let value = path.iter().fold(report, |v, key| &v[*key]);
    value.as_f64().unwrap_or_else(|| panic!("{path:?} is not a number in {report:#}"))
}

/// Every field the issue names is there and consistent: all measured payments
/// completed, percentiles in order, the ratio is throughput over the crypto ceiling.
fn check_report(report: &Value, payments: f64) {
    assert_eq!(number(report, &["payments_completed"]), payments, "{report:#}");
    assert_eq!((number(report, &["payments_rejected"]), number(report, &["orders_refused"])), (0.0, 0.0));
    let per_s = number(report, &["payments_per_s"]);
    assert!(per_s > 0.0, "{report:#}");
    let latency: Vec<f64> =
        ["p50", "p90", "p99", "p999", "max"].iter().map(|p| number(report, &["latency_ms", p])).collect();
    assert!(latency[0] > 0.0 && latency.windows(2).all(|w| w[0] <= w[1]), "{report:#}");
    let crypto = number(report, &["crypto_ceiling_payments_per_s"]);
    assert!(crypto > 0.0 && number(report, &["transport_ceiling_messages_per_s"]) > 0.0, "{report:#}");
    let ratio = number(report, &["ratio_to_crypto_ceiling"]);
    assert!((ratio - per_s / crypto).abs() < 1e-9, "{report:#}");
    assert!(number(report, &["peak_rss_bytes"]) > 0.0);
    // One sample of each a minute: none in a run this short, but both always listed.
    let samples = |key: &str| report[key].as_array().map(Vec::len);
    assert_eq!(samples("rss_bytes_by_minute"), Some(0), "{report:#}");
    assert_eq!(samples("peak_rss_bytes_by_minute"), Some(0), "{report:#}");
}

/// Where the time goes, on a network of its own: the journals of hub and banks all
/// committed and reported their waits, and the five durable waits a payment makes (two
/// at the hub, three at banks) are added up against the mean latency.
fn check_breakdown(report: &Value) {
    let breakdown = &report["time_breakdown"];
    for node in ["hub", "banks"] {
        let figure = |path: &[&str]| number(breakdown, &[&[node][..], path].concat());
        let (mean, p50, p99) =
            (figure(&["wait_ms", "mean"]), figure(&["wait_ms", "p50"]), figure(&["wait_ms", "p99"]));
        assert!(mean > 0.0 && p50 > 0.0 && p50 <= p99, "{node}: {breakdown:#}");
        assert!(figure(&["commit_ms", "mean"]) > 0.0, "{node}: {breakdown:#}");
        assert!(
            figure(&["commits_per_s"]) > 0.0 && figure(&["records_per_commit"]) >= 1.0,
            "{node}: {breakdown:#}"
        );
    }
    let durable = 2.0 * number(breakdown, &["hub", "wait_ms", "mean"])
        + 3.0 * number(breakdown, &["banks", "wait_ms", "mean"]);
    assert!((number(breakdown, &["durable_ms_per_payment"]) - durable).abs() < 1e-9, "{breakdown:#}");
    let share = durable / number(report, &["latency_ms", "mean"]);
    assert!((number(breakdown, &["durable_share_of_latency"]) - share).abs() < 1e-9, "{breakdown:#}");
}

/// Closed loop on a network of its own (hub and 3 banks, mTLS, durable storage): a
/// fixed number of payments, every one completed, every figure reported.
#[test]
fn a_closed_loop_run_on_its_own_network_reports_every_figure() {
    let output =
        corridor(&["loadgen", "--payments", "300", "--warmup", "0.5", "--ceiling-secs", "0.3", "--json"]);
    let report = report(&output);
    check_report(&report, 300.0);
    assert_eq!((report["mode"].as_str(), report["network"].as_str()), (Some("closed-loop"), Some("own")));
    assert_eq!(number(&report, &["banks"]), 3.0);
    check_breakdown(&report);
    let text = corridor(&["loadgen", "--payments", "50", "--warmup", "0", "--ceiling-secs", "0.2"]);
    let text = String::from_utf8_lossy(&text.stdout);
    for words in ["payments/s", "p99", "crypto ceiling", "transport", "where the time goes", "bank journals"]
    {
        assert!(text.contains(words), "{words} missing from:\n{text}");
    }
}

/// Open loop at a fixed rate: payments are sent on schedule and latency is measured
/// from each one's slot.
#[test]
fn an_open_loop_run_sends_at_the_rate_asked() {
    let args = [
        "loadgen",
        "--rate",
        "200",
        "--payments",
        "200",
        "--warmup",
        "0.2",
        "--ceiling-secs",
        "0.2",
        "--json",
    ];
    let report = report(&corridor(&args));
    check_report(&report, 200.0);
    assert_eq!(report["mode"].as_str(), Some("open-loop"));
    assert_eq!(number(&report, &["rate_target_per_s"]), 200.0);
}

fn order(to: Bic) -> PaymentOrder {
    PaymentOrder {
        debtor_account: "C001".into(),
        creditor_agent: to.to_string(),
        creditor_account: "C001".into(),
        creditor_name: "Payee".into(),
        amount: "1.00".into(),
        currency: "CNY".into(),
        remittance_information: String::new(),
        settlement_currency: String::new(),
        quote_id: String::new(),
    }
}

/// Driving a running network (here started in this process, funded by its operator):
/// the load generator's payments settle, and the reconciler finds hub and banks agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_network_is_driven_and_reconciles_clean_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let bics: Vec<Bic> = ["BANKRUMMXXX", "BANKIRTHXXX"].iter().map(|b| Bic::parse(b).unwrap()).collect();
    let mut network = LocalNetwork::create(dir.path(), &bics).await.unwrap();
    network.fund_all("CNY", "1000000").await.unwrap();
    for bic in &bics {
        let index = network.start_bank(*bic).await.unwrap();
        network.banks[index].bank.open_account("C001", "CNY", "Customer", "100.00").await.unwrap();
    }
    // Traffic of its own first: the load generator's accounts and payments come on top.
    let own = network.banks[0].bank.submit_payment(&order(bics[1])).await.unwrap();
    let banks: Vec<String> = network.banks.iter().map(|b| format!("{}={}", b.bic, b.url)).collect();
    let mut args: Vec<String> =
        ["loadgen", "--payments", "200", "--warmup", "0", "--ceiling-secs", "0", "--json"]
            .map(String::from)
            .to_vec();
    args.extend(["--dir".to_owned(), dir.path().to_str().unwrap().to_owned()]);
    for bank in &banks {
        args.extend(["--bank".to_owned(), bank.clone()]);
    }
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_corridor")).args(&args).output().unwrap()
    })
    .await
    .unwrap();
    let report = report(&output);
    assert_eq!(number(&report, &["payments_completed"]), 200.0, "{report:#}");
    assert_eq!(report["network"].as_str(), Some("running"));
    // The nodes' metrics are their own (`--metrics-addr`), not the load generator's.
    assert!(report["time_breakdown"].is_null(), "{report:#}");
    assert_eq!(network.banks[0].bank.payment(&own.uetr.to_string()).unwrap().status, PaymentStatus::Acsc);

    let nodes: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let wait = std::time::Duration::from_secs(10);
    let reconciled = sources::reconcile_live(&network.network, &network.hub_url, &nodes, wait).await.unwrap();
    assert!(reconciled.is_clean(), "{}", reconciled.render());
    assert!(reconciled.payments_checked >= 201, "{}", reconciled.render());
    network.stop().await.unwrap();
}

/// Bad flags get a clear error, never a panic.
#[test]
fn bad_loadgen_arguments_are_refused() {
    let empty = tempfile::tempdir().unwrap();
    let empty = empty.path().to_str().unwrap();
    for args in [
        &["loadgen", "--banks", "1"][..],
        &["loadgen", "--banks", "9"],
        &["loadgen", "--rate", "0"],
        &["loadgen", "--payments", "0"],
        &["loadgen", "--duration", "-1"],
        &["loadgen", "--duration", "soon"],
        &["loadgen", "--in-flight", "0"],
        &["loadgen", "--dir", empty],
        &[
            "loadgen",
            "--dir",
            empty,
            "--bank",
            "BANKRUMMXXX=https://127.0.0.1:1",
            "--bank",
            "BANKIRTHXXX=https://127.0.0.1:2",
        ],
        &["loadgen", "--bank", "NOTAPAIR"],
    ] {
        let output = corridor(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A free loopback port (bound, then released for the node to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn get_metrics(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    body
}

/// `--metrics-addr` serves Prometheus metrics: after a payment, the hub reports its
/// messages by type and result, its sessions and its journal's batches and fsync time;
/// the bank its payments and their latency. One prefix, base units, `_total` counters.
#[test]
fn hub_and_bank_serve_prometheus_metrics() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("net");
    let dir_text = dir.to_str().unwrap();
    assert!(
        corridor(&["pki", "init", "--dir", dir_text, "--participants", "BANKRUMMXXX,BANKIRTHXXX"])
            .status
            .success()
    );
    let (hub_port, bank_port) = (free_port(), free_port());
    let mut hub = spawn(&[
        "hub",
        "--dir",
        dir_text,
        "--listen",
        "127.0.0.1:0",
        "--metrics-addr",
        &format!("127.0.0.1:{hub_port}"),
    ]);
    let hub_url = announced(&mut hub);
    let mut banks = Vec::new();
    for (bic, metrics) in [("BANKRUMMXXX", Some(bank_port)), ("BANKIRTHXXX", None)] {
        let mut args: Vec<String> =
            ["bank", "--dir", dir_text, "--bic", bic, "--hub", &hub_url, "--listen", "127.0.0.1:0"]
                .map(String::from)
                .to_vec();
        if let Some(port) = metrics {
            args.extend(["--metrics-addr".into(), format!("127.0.0.1:{port}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut bank = spawn(&args);
        let url = announced(&mut bank);
        banks.push((bank, url));
    }
    let admin = |args: &[&str]| {
        let output = corridor(&[&["admin", "--dir", dir_text, "--hub", &hub_url][..], args].concat());
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    admin(&["fund", "--participant", "BANKRUMMXXX", "--currency", "CNY", "--amount", "100"]);
    let operate = |bank: &str, args: &[&str]| {
        corridor(&[&[args[0], "--dir", dir_text, "--bank", bank][..], &args[1..]].concat())
    };
    operate(
        &banks[0].1,
        &["open-account", "--account", "A1", "--currency", "CNY", "--name", "A", "--deposit", "10"],
    );
    operate(&banks[1].1, &["open-account", "--account", "B1", "--currency", "CNY", "--name", "B"]);
    let pay = operate(
        &banks[0].1,
        &[
            "pay",
            "--from",
            "A1",
            "--to-bank",
            "BANKIRTHXXX",
            "--to",
            "B1",
            "--amount",
            "1",
            "--currency",
            "CNY",
        ],
    );
    let uetr = String::from_utf8_lossy(&pay.stdout).trim().to_owned();
    for _ in 0..400 {
        let status = operate(&banks[0].1, &["status", &uetr]);
        if String::from_utf8_lossy(&status.stdout).contains("ACSC") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let hub_metrics = get_metrics(hub_port);
    for line in [
        "corridor_hub_messages_total{type=\"pacs.008\",result=\"accepted\"} 1",
        "corridor_hub_messages_total{type=\"pacs.002\",result=\"accepted\"} 1",
        "corridor_hub_sessions 2",
        "corridor_journal_commit_seconds_bucket{node=\"hub\"",
        "corridor_journal_batch_records_count{node=\"hub\"}",
        "corridor_journal_wait_seconds_bucket{node=\"hub\"",
    ] {
        assert!(hub_metrics.contains(line), "{line} missing from:\n{hub_metrics}");
    }
    let bank_metrics = get_metrics(bank_port);
    for line in [
        "corridor_bank_payments_total{direction=\"outgoing\",status=\"ACSC\"} 1",
        "corridor_bank_payment_latency_seconds_count 1",
        "corridor_bank_outbox_messages 0",
    ] {
        assert!(bank_metrics.contains(line), "{line} missing from:\n{bank_metrics}");
    }
    assert!(!hub_metrics.contains(&uetr) && !bank_metrics.contains("A1"), "no UETR or account in labels");
    drop(banks);
    drop(hub);
}

/// A node process, killed when dropped (also when a test fails).
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str]) -> Node {
    let child = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Node(child)
}

/// The URL a node announces on its first line of stdout.
fn announced(node: &mut Node) -> String {
    use std::io::BufRead;
    let stdout = node.0.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    line.trim().rsplit(' ').next().unwrap().to_owned()
}
