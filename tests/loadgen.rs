//! The load generator and the metrics, as a user runs them. These are smoke runs: they
//! check that a run completes, accounts for every payment and reports every figure;
//! they never assert a time (figures depend on the machine; see docs/PERFORMANCE.md).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output};

use corridor::bank::PaymentOrder;
use corridor::model::{Bic, Currency, PaymentStatus, format_minor_units};
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
    check_ceilings_and_cpu(report);
    assert!(number(report, &["peak_rss_bytes"]) > 0.0);
    // One sample of each a minute: none in a run this short, but both always listed.
    let samples = |key: &str| report[key].as_array().map(Vec::len);
    assert_eq!(samples("rss_bytes_by_minute"), Some(0), "{report:#}");
    assert_eq!(samples("peak_rss_bytes_by_minute"), Some(0), "{report:#}");
}

/// Issue 21 item 5: the essential crypto ceiling is measured beside the one with a
/// receipt per message and is higher (it does 2 signatures and 4 verifications a
/// payment, the other 4 and 6), with
/// the throughput's ratio to it; the transport ceiling's payments are its messages (a
/// frame and its echo) over 4 (8 frames a payment); Corridor's CPU (cores, µs per
/// payment) is there and positive, the other processes' CPU is a figure of 0 or more,
/// and a warning is given exactly when it was above a tenth of a core.
fn check_ceilings_and_cpu(report: &Value) {
    let per_s = number(report, &["payments_per_s"]);
    let (per_message, essential) = (
        number(report, &["crypto_ceiling_payments_per_s"]),
        number(report, &["essential_crypto_ceiling_payments_per_s"]),
    );
    assert!(essential > per_message, "{report:#}");
    let ratio = number(report, &["ratio_to_essential_ceiling"]);
    assert!((ratio - per_s / essential).abs() < 1e-9, "{report:#}");
    let messages = number(report, &["transport_ceiling_messages_per_s"]);
    assert!(
        (number(report, &["transport_ceiling_payments_per_s"]) - messages / 4.0).abs() < 1e-6,
        "{report:#}"
    );
    assert!(
        number(report, &["cores_used"]) > 0.0 && number(report, &["cpu_us_per_payment"]) > 0.0,
        "{report:#}"
    );
    let other = number(report, &["other_cpu_cores"]);
    assert!(other >= 0.0, "{report:#}");
    let warnings = report["warnings"].as_array().unwrap_or_else(|| panic!("no warnings list: {report:#}"));
    assert_eq!(warnings.len(), usize::from(other > 0.1), "{report:#}");
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
    for words in [
        "payments/s",
        "p99",
        "crypto ceiling",
        "essential crypto",
        "transport",
        "µs per payment",
        "other processes",
        "where the time goes",
        "bank journals",
    ] {
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
    args.extend(["--hub".to_owned(), network.hub_url.clone()]);
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
    // Issue 21 item 5: the nodes' CPU is their process's, found by the ports they listen
    // on (here this test's process, which runs them all).
    let measured = format!("hub, bank BANKRUMMXXX, bank BANKIRTHXXX (pid {})", std::process::id());
    assert_eq!(report["cpu_measured"].as_str(), Some(&*format!("the nodes' processes: {measured}")));
    assert!(number(&report, &["cores_used"]) > 0.0 && number(&report, &["cpu_us_per_payment"]) > 0.0);
    assert!(number(&report, &["other_cpu_cores"]) >= 0.0, "{report:#}");
    // Ceilings not measured (--ceiling-secs 0) are null, not a figure of 0.
    for figure in
        ["crypto_ceiling_payments_per_s", "transport_ceiling_messages_per_s", "ratio_to_crypto_ceiling"]
    {
        assert!(report[figure].is_null(), "{figure}: {report:#}");
    }
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
        &["loadgen", "--outage-max-secs", "0"],
        &["loadgen", "--outage-max-secs", "-1"],
        &["loadgen", "--dir", empty],
        &[
            "loadgen",
            "--dir",
            empty,
            "--hub",
            "https://127.0.0.1:3",
            "--bank",
            "BANKRUMMXXX=https://127.0.0.1:1",
            "--bank",
            "BANKIRTHXXX=https://127.0.0.1:2",
        ],
        &["loadgen", "--bank", "NOTAPAIR"],
        &["loadgen", "--currency", "XX"],
        &["loadgen", "--currency", "cny"],
        &["loadgen", "--deposit", "0"],
        &["loadgen", "--deposit", "0.50"],
        &["loadgen", "--deposit", "lots"],
        &["loadgen", "--max-rejected-share", "1.5"],
        &["loadgen", "--max-rejected-share", "-0.1"],
        &["loadgen", "--max-rejected-share", "NaN"],
        &["loadgen", "--max-rejected-share", "some"],
    ] {
        let output = corridor(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
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
    let reserved = common::ports::reserve(2);
    let (hub_port, bank_port) = (reserved.ports()[0], reserved.ports()[1]);
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

/// `corridor ARGS` run to completion from `spawn_blocking` (a network may be running on
/// the test's runtime).
async fn corridor_off_runtime(args: Vec<String>) -> common::cli::Outcome {
    tokio::task::spawn_blocking(move || {
        common::cli::corridor(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

/// The arguments of `corridor loadgen` against the hub `hub` and the banks `banks`.
fn loadgen_args(dir: &std::path::Path, hub: &str, banks: &[(Bic, String)], args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> =
        ["loadgen", "--dir", dir.to_str().unwrap(), "--hub", hub].map(String::from).to_vec();
    for (bic, url) in banks {
        all.extend(["--bank".to_owned(), format!("{bic}={url}")]);
    }
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// `corridor loadgen ARGS` against a running network: `--dir`, `--hub` and a `--bank`
/// per bank.
async fn loadgen_against(
    network: &LocalNetwork,
    dir: &std::path::Path,
    args: &[&str],
) -> common::cli::Outcome {
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    corridor_off_runtime(loadgen_args(dir, &network.hub_url, &banks, args)).await
}

/// Funds `bic` at the hub with `amount` of `currency`, as an operator would.
async fn fund(network: &LocalNetwork, bic: Bic, currency: &str, amount: &str) {
    let request = corridor::pb::FundRequest {
        participant_bic: bic.to_string(),
        currency: currency.into(),
        amount: amount.into(),
    };
    network.admin().await.unwrap().fund(request).await.unwrap();
}

/// The `LOADGEN-n` accounts at bank `index`.
async fn loadgen_accounts(network: &LocalNetwork, index: usize) -> Vec<String> {
    let mut client = network.operator(index).await.unwrap();
    let listed = client.list_accounts(corridor::pb::ListAccountsRequest {}).await.unwrap().into_inner();
    listed.accounts.into_iter().map(|a| a.id).filter(|id| id.starts_with("LOADGEN-")).collect()
}

/// The text between the first pair of backticks: the command a refusal says fixes it.
fn fix_in(line: &str) -> Vec<String> {
    let command = line.split('`').nth(1).unwrap_or_else(|| panic!("no command in {line:?}"));
    command.split_whitespace().map(String::from).collect()
}

/// Issue 19 item 6: before any load, the load generator checks what it needs (the hub
/// answers, each bank has a position there in the run's currency, each bank answers)
/// and stops at the first thing missing with one line that says what and the command
/// that fixes it, having changed nothing; the fix it names works. Then it says which
/// accounts it opens and with what deposit (--deposit), and a later run says it pays
/// from the accounts an earlier run opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_run_needs_is_checked_first_and_each_gap_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let bics: Vec<Bic> = ["BANKRUMMXXX", "BANKIRTHXXX"].iter().map(|b| Bic::parse(b).unwrap()).collect();
    let mut network = LocalNetwork::create(dir.path(), &bics).await.unwrap();
    fund(&network, bics[0], "CNY", "1000000").await;
    for bic in &bics {
        network.start_bank(*bic).await.unwrap();
    }
    let d = dir.path().to_str().unwrap();
    let run = ["--payments", "20", "--warmup", "0", "--ceiling-secs", "0", "--json"];

    let silent = common::ports::reserve(1);
    let silent_hub = format!("https://127.0.0.1:{}", silent.ports()[0]);
    let banks: Vec<(Bic, String)> = network.banks.iter().map(|b| (b.bic, b.url.clone())).collect();
    let outcome = corridor_off_runtime(loadgen_args(dir.path(), &silent_hub, &banks, &run)).await;
    let line = common::cli::refused_in_one_line(outcome);
    let listen = silent_hub.trim_start_matches("https://");
    assert!(line.contains(&format!("the hub does not answer at {silent_hub}")), "{line}");
    assert!(line.contains(&format!("`corridor hub --dir {d} --listen {listen}`")), "{line}");

    let line = common::cli::refused_in_one_line(loadgen_against(&network, dir.path(), &run).await);
    assert!(line.contains("BANKIRTHXXX has 0.00 CNY available to pay with at the hub"), "{line}");
    let fix = fix_in(&line);
    assert_eq!(fix[..2], ["corridor", "admin"], "{line}");
    for expected in ["--participant BANKIRTHXXX", "--currency CNY", &format!("--hub {}", network.hub_url)] {
        assert!(line.contains(expected), "{expected} missing from {line}");
    }
    // The currency is the run's: BANKRUMMXXX is funded in CNY only.
    let line = common::cli::refused_in_one_line(
        loadgen_against(&network, dir.path(), &[&run[..], &["--currency", "RUB"]].concat()).await,
    );
    assert!(line.contains("BANKRUMMXXX has 0.00 RUB available"), "{line}");
    assert!(line.contains("--currency RUB"), "{line}");

    // The fix, as the line gives it.
    common::cli::succeeded(corridor_off_runtime(fix[1..].to_vec()).await);

    // A bank that does not answer.
    let index = network.index_of(bics[1]);
    let url = network.banks[index].url.clone();
    network.stop_bank(bics[1]).await.unwrap();
    let gone = [banks[0].clone(), (bics[1], url.clone())];
    let line = common::cli::refused_in_one_line(
        corridor_off_runtime(loadgen_args(dir.path(), &network.hub_url, &gone, &run)).await,
    );
    assert!(line.contains(&format!("bank BANKIRTHXXX does not answer at {url}")), "{line}");
    let listen = url.trim_start_matches("https://");
    let start =
        format!("`corridor bank --dir {d} --bic BANKIRTHXXX --hub {} --listen {listen}`", network.hub_url);
    assert!(line.contains(&start), "{start} missing from {line}");
    network.start_bank(bics[1]).await.unwrap();
    // Nothing was opened by the refused runs.
    for index in 0..2 {
        assert!(loadgen_accounts(&network, index).await.is_empty());
    }

    // With everything there: the accounts are announced before the load, with the deposit.
    let outcome = loadgen_against(&network, dir.path(), &[&run[..], &["--deposit", "500"]].concat()).await;
    let stderr = outcome.stderr.clone();
    let report: Value = serde_json::from_str(&common::cli::succeeded(outcome)).unwrap();
    assert_eq!(number(&report, &["payments_completed"]), 20.0, "{report:#}");
    for bic in &bics {
        let said = format!("{bic}: opens LOADGEN-1 with a deposit of 500.00 CNY");
        assert!(stderr.contains(&said), "{said} missing from {stderr}");
        let listed =
            report["accounts"].as_array().unwrap().iter().find(|a| a["bank"] == bic.as_str()).unwrap();
        assert_eq!((listed["account"].as_str(), listed["opened"].as_bool()), (Some("LOADGEN-1"), Some(true)));
        assert_eq!(listed["balance"].as_str(), Some("500.00"));
    }
    let outcome = loadgen_against(&network, dir.path(), &run).await;
    assert!(
        outcome.stderr.contains("BANKRUMMXXX: pays from LOADGEN-1, opened by an earlier run"),
        "{}",
        outcome.stderr
    );
    common::cli::succeeded(outcome);
    for index in 0..2 {
        assert_eq!(loadgen_accounts(&network, index).await, ["LOADGEN-1"]);
    }
    network.stop().await.unwrap();
}

/// Issue 19 item 6: a run fails (exit 1, after its report) when more than
/// --max-rejected-share of its payments were rejected, and the report lists them by
/// reason code. BANKRUMMXXX's position covers one payment: with seed 2026 the first
/// payments of the closed loop go out from it at least twice more often than they come
/// in, so whatever the timing some are rejected for want of position (AM04).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_rejections_than_allowed_fail_the_run_and_are_listed_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bics: Vec<Bic> = ["BANKRUMMXXX", "BANKIRTHXXX"].iter().map(|b| Bic::parse(b).unwrap()).collect();
    let mut network = LocalNetwork::create(dir.path(), &bics).await.unwrap();
    fund(&network, bics[1], "CNY", "1000000").await;
    for bic in &bics {
        network.start_bank(*bic).await.unwrap();
    }
    let run = ["--payments", "60", "--warmup", "0", "--ceiling-secs", "0", "--json", "--seed", "2026"];
    for (allowed, succeeds) in [("1", true), ("0", false)] {
        // BANKRUMMXXX's position back to exactly one payment.
        let mut admin = network.admin().await.unwrap();
        let positions =
            admin.list_positions(corridor::pb::ListPositionsRequest {}).await.unwrap().into_inner();
        let available = positions
            .positions
            .iter()
            .find(|p| p.participant_bic == "BANKRUMMXXX")
            .map_or(0, |p| p.available);
        let cny = |minor_units: i64| format_minor_units(minor_units, Currency::parse("CNY").unwrap());
        if available > 100 {
            let request = corridor::pb::FundRequest {
                participant_bic: "BANKRUMMXXX".into(),
                currency: "CNY".into(),
                amount: cny(available - 100),
            };
            admin.defund(request).await.unwrap();
        } else if available < 100 {
            fund(&network, bics[0], "CNY", &cny(100 - available)).await;
        }
        let outcome =
            loadgen_against(&network, dir.path(), &[&run[..], &["--max-rejected-share", allowed]].concat())
                .await;
        assert_eq!(outcome.status.success(), succeeds, "--max-rejected-share {allowed}: {}", outcome.stderr);
        let report: Value =
            serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| panic!("{e}: {}", outcome.stderr));
        let rejected = number(&report, &["payments_rejected"]);
        assert!(rejected > 0.0 && number(&report, &["payments_completed"]) > 0.0, "{report:#}");
        assert_eq!(number(&report, &["rejections_by_reason", "AM04"]), rejected, "{report:#}");
        assert_eq!(number(&report, &["rejected_share"]), rejected / 60.0, "{report:#}");
        if !succeeds {
            assert_eq!(outcome.status.code(), Some(1));
            let last = outcome.stderr.lines().last().unwrap_or_default();
            assert!(
                last.starts_with(&format!("error: {rejected} of 60 measured payments were rejected")),
                "{last}"
            );
            assert!(last.contains("--max-rejected-share 0") && last.contains("AM04"), "{last}");
        }
    }
    network.stop().await.unwrap();
}

/// Issue 19 item 6: a run in which no payment completed fails (exit 1) even when every
/// rejection is allowed, and its text report lists the rejections by reason. Here the
/// directory lets no bank send a payment (no pacs.008 relationship), so every payment is
/// refused or rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_in_which_no_payment_completed_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bics: Vec<Bic> = ["BANKRUMMXXX", "BANKIRTHXXX"].iter().map(|b| Bic::parse(b).unwrap()).collect();
    let pki = corridor::tls::init(dir.path(), &bics).unwrap();
    let mut file = corridor::directory::DirectoryFile::read(dir.path()).unwrap();
    file.relationships.iter_mut().for_each(|r| r.message_types.retain(|t| t != "pacs.008"));
    file.save(dir.path()).unwrap();
    let mut network = LocalNetwork::start_hub(pki, Default::default()).await.unwrap();
    network.fund_all("CNY", "1000000").await.unwrap();
    for bic in &bics {
        network.start_bank(*bic).await.unwrap();
    }
    let run = ["--payments", "10", "--warmup", "0", "--ceiling-secs", "0", "--max-rejected-share", "1"];
    let outcome = loadgen_against(&network, dir.path(), &run).await;
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert!(outcome.stdout.contains("payments: 0 completed"), "{}", outcome.stdout);
    assert!(outcome.stdout.contains("rejections by reason: "), "{}", outcome.stdout);
    let last = outcome.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: no payment completed"), "{last}");
    network.stop().await.unwrap();
}

/// Issue 19 item 6: throughput is the payments completed over the measurement window,
/// not the window plus the drain after it (a closed loop always has payments in flight
/// when its window ends, so the drain is never empty); and ceilings not measured are
/// null in --json and "not measured" in text, never 0.
#[test]
fn throughput_divides_by_the_window_and_unmeasured_ceilings_are_not_zero() {
    let args = ["loadgen", "--duration", "1", "--warmup", "0.2", "--in-flight", "64", "--ceiling-secs", "0"];
    let report = report(&corridor(&[&args[..], &["--json"]].concat()));
    assert_eq!(number(&report, &["duration_s"]), 1.0, "{report:#}");
    assert!(number(&report, &["drain_s"]) > 0.0, "{report:#}");
    let completed = number(&report, &["payments_completed"]);
    assert!(completed > 0.0, "{report:#}");
    assert_eq!(number(&report, &["payments_per_s"]), completed, "{report:#}");
    for figure in
        ["crypto_ceiling_payments_per_s", "transport_ceiling_messages_per_s", "ratio_to_crypto_ceiling"]
    {
        assert!(report[figure].is_null(), "{figure}: {report:#}");
    }
    let text = corridor(&["loadgen", "--payments", "20", "--warmup", "0", "--ceiling-secs", "0"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("ceilings: not measured"), "{text}");
    assert!(!text.contains("crypto ceiling") && !text.contains("crypto 0"), "{text}");
}

/// A hub and the banks BANKRUMMXXX and BANKIRTHXXX as processes (each funded with
/// 1,000,000 CNY at the hub), in a network directory under `temp`.
struct Processes {
    dir: std::path::PathBuf,
    hub: common::cli::Server,
    banks: Vec<common::cli::Server>,
}

impl Processes {
    const BICS: [&str; 2] = ["BANKRUMMXXX", "BANKIRTHXXX"];

    fn start(temp: &tempfile::TempDir) -> Self {
        use common::cli::{ANY_LOOPBACK_PORT, pki_init, start_server, succeeded, text};
        let dir = pki_init(temp, &Self::BICS);
        let d = text(&dir);
        let hub = start_server(&["hub", "--dir", d, "--listen", ANY_LOOPBACK_PORT], "hub");
        for bic in Self::BICS {
            let fund = ["fund", "--participant", bic, "--currency", "CNY", "--amount", "1000000"];
            succeeded(common::cli::corridor(
                &[&["admin", "--dir", d, "--hub", &hub.url][..], &fund].concat(),
            ));
        }
        let mut processes = Self { dir, hub, banks: Vec::new() };
        for index in 0..Self::BICS.len() {
            processes.banks.push(processes.bank(index, ANY_LOOPBACK_PORT));
        }
        processes
    }

    /// Starts bank `index` listening on `listen`.
    fn bank(&self, index: usize, listen: &str) -> common::cli::Server {
        let (d, bic) = (common::cli::text(&self.dir), Self::BICS[index]);
        let args = ["bank", "--dir", d, "--bic", bic, "--hub", &self.hub.url, "--listen", listen];
        common::cli::start_server(&args, &format!("bank {bic}"))
    }

    /// Kills bank `index` (SIGKILL) at its first payment (a pacs.008 in its log file, read
    /// without starting processes), after checking that `loadgen` still runs: the kill
    /// lands inside the run. Returns the address it listened on.
    fn kill_at_first_payment(&mut self, index: usize, loadgen: &mut Loadgen) -> String {
        let bank = &mut self.banks[index];
        let mut polls = 0;
        while !bank.stderr.text().contains("pacs.008") {
            polls += 1;
            assert!(polls < common::cli::COMMAND_POLLS_MAX, "no payment at bank #{index}");
            std::thread::sleep(common::cli::COMMAND_POLL_INTERVAL);
        }
        let running = loadgen.process.0.try_wait().unwrap();
        assert!(running.is_none(), "loadgen ended ({running:?}) before the kill: {:?}", loadgen.said);
        bank.process.0.kill().unwrap();
        bank.process.0.wait().unwrap();
        bank.url.trim_start_matches("https://").to_owned()
    }
}

/// `corridor loadgen` running against [`Processes`]: its stdout captured, its stderr
/// read line by line as it comes.
struct Loadgen {
    process: common::cli::ChildGuard,
    stdout: common::cli::Capture,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    said: Vec<String>,
}

impl Loadgen {
    /// Starts it with `args` after `--dir`, `--hub` and the banks, and waits until it
    /// says it is sending.
    fn start(processes: &Processes, args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut all =
            vec!["loadgen", "--dir", common::cli::text(&processes.dir), "--hub", &processes.hub.url];
        let banks: Vec<String> = Processes::BICS
            .iter()
            .zip(&processes.banks)
            .map(|(bic, bank)| format!("{bic}={}", bank.url))
            .collect();
        for bank in &banks {
            all.extend(["--bank", bank]);
        }
        all.extend(args);
        let stdout = common::cli::Capture::new();
        let child = common::cli::corridor_command(&all)
            .stdout(stdout.stdio())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut process = common::cli::ChildGuard(child);
        let (lines_in, lines) = std::sync::mpsc::channel();
        let stderr = std::io::BufReader::new(process.0.stderr.take().unwrap());
        let reader = std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = lines_in.send(line);
            }
        });
        let mut loadgen = Self { process, stdout, lines, reader, said: Vec::new() };
        while !loadgen.said.last().is_some_and(|line| line.starts_with("sending")) {
            let line = loadgen.lines.recv_timeout(std::time::Duration::from_secs(60));
            let line = line.unwrap_or_else(|_| panic!("loadgen never started sending: {:?}", loadgen.said));
            loadgen.said.push(line);
        }
        loadgen
    }

    /// Waits, bounded, for it to end: its exit status, its stdout and all it said.
    fn finish(mut self) -> (Option<std::process::ExitStatus>, String, String) {
        use common::cli::{COMMAND_POLL_INTERVAL, COMMAND_POLLS_MAX};
        let status = self.process.wait_bounded(COMMAND_POLLS_MAX, COMMAND_POLL_INTERVAL);
        if status.is_some() {
            self.reader.join().unwrap();
        }
        self.said.extend(self.lines.try_iter());
        (status, self.stdout.text(), self.said.join("\n"))
    }
}

/// Issue 19 item 6: a bank that restarts under a run (killed with SIGKILL, started
/// again on the same port) does not end the run without a report: the load generator
/// reaches it again, asks after the payments whose end it may have missed, sends again
/// the orders the broken stream never answered, and goes on; every measured payment
/// completes, and the report counts the outage.
///
/// The kill must land inside the run whatever the machine's load, without assuming how
/// long anything takes: the run is a count of payments (`--payments`, not a duration),
/// which cannot all end while one of the two banks is down, and the bank is killed at its
/// first payment, after checking that the load generator is still running.
#[test]
fn a_bank_restarting_under_a_run_is_an_outage_in_the_report_not_its_end() {
    let temp = tempfile::tempdir().unwrap();
    let mut processes = Processes::start(&temp);
    let run = ["--rate", "100", "--payments", "200", "--warmup", "0", "--ceiling-secs", "0", "--json"];
    let mut loadgen = Loadgen::start(&processes, &run);
    let listen = processes.kill_at_first_payment(1, &mut loadgen);
    processes.banks[1] = processes.bank(1, &listen);
    let (status, stdout, said) = loadgen.finish();
    assert!(status.is_some_and(|s| s.success()), "{status:?}\n{said}");
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {said}"));
    assert!(report["aborted"].is_null(), "{report:#}");
    assert!(number(&report, &["bank_outages"]) >= 1.0, "{report:#}");
    assert!(number(&report, &["bank_outage_s"]) > 0.0, "{report:#}");
    assert!(number(&report, &["orders_resent"]) >= 0.0, "{report:#}");
    assert_eq!(number(&report, &["payments_completed"]), 200.0, "{report:#}\n{said}");
    assert_eq!((number(&report, &["payments_rejected"]), number(&report, &["orders_refused"])), (0.0, 0.0));
    assert!(said.contains("BANKIRTHXXX: back after"), "{said}");
    // The process whose CPU was counted ended under the run: not measured, and why.
    let cpu = report["cpu_measured"].as_str().unwrap_or_default();
    assert!(cpu.starts_with("not measured: bank BANKIRTHXXX (pid "), "{report:#}");
    assert!(report["cpu_us_per_payment"].is_null() && report["other_cpu_cores"].is_null(), "{report:#}");
}

/// Issue 19 item 6: a failure after the load has started does not throw the run's
/// measurements away. A bank killed under a run and not started again (away longer than
/// `--outage-max-secs`) ends the run with its report, marked `aborted` with the reason
/// in --json and on the report's first line in text; the run exits 1, not 2 (which
/// stays for runs that could not start). The run asks for far more payments than it can
/// make before the bank is given up, so only the abort can end it.
#[test]
fn a_bank_that_does_not_come_back_aborts_the_run_with_its_report() {
    let temp = tempfile::tempdir().unwrap();
    let mut processes = Processes::start(&temp);
    let run = ["--rate", "100", "--payments", "100000", "--warmup", "0", "--ceiling-secs", "0"];
    for json in [true, false] {
        let args = [&run[..], &["--outage-max-secs", "0.5"], if json { &["--json"] } else { &[] }].concat();
        let mut loadgen = Loadgen::start(&processes, &args);
        let listen = processes.kill_at_first_payment(1, &mut loadgen);
        let (status, stdout, said) = loadgen.finish();
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{status:?}\n{said}\n{stdout}");
        let last = said.lines().last().unwrap_or_default();
        assert!(last.starts_with("error: the run was aborted: bank BANKIRTHXXX at https://"), "{said}");
        assert!(last.contains("has not come back in 0.5 s"), "{last}");
        if json {
            let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {said}"));
            let aborted = report["aborted"].as_str().unwrap_or_else(|| panic!("not aborted: {report:#}"));
            assert!(aborted.starts_with("bank BANKIRTHXXX at https://"), "{aborted}");
            assert!(report["payments_unfinished"].as_f64().is_some_and(|n| n > 0.0), "{report:#}");
            assert!(aborted.contains("measured payments not final when the run ended"), "{aborted}");
            assert!(number(&report, &["payments_completed"]) < 100000.0, "{report:#}");
        } else {
            assert!(stdout.starts_with("ABORTED: bank BANKIRTHXXX at https://"), "{stdout}");
            assert!(stdout.contains("not final"), "{stdout}");
        }
        // The bank back for the second run.
        processes.banks[1] = processes.bank(1, &listen);
    }
}
