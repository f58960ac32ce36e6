//! Scenarios (`corridor demo --scenario FILE`): every file shipped in `scenarios/` loads,
//! runs with its faults on schedule and ends with every payment final, every ledger
//! balanced, its own expectations met and zero reconciliation breaks (issue 9: "every
//! shipped scenario runs in CI and ends with zero reconciliation breaks"); between them
//! they exercise every kind of event; a bad file is refused with one line naming the
//! problem before anything starts (an agreement whose applied rate ISO 20022 XML cannot
//! hold among them); every message their hubs relay validates as ISO 20022 XML against
//! the official schemas (issue 20); and the real binary runs a scenario and exits 0.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::http::get;
use corridor::model::MessageType::{Camt029, Camt053, Camt056, Pacs002, Pacs004, Pacs008};
use corridor::sim::scenario::{CASE_KINDS, RunOptions, Scenario, run_scenario, start_scenario};

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("readable").path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_scenario_runs_and_reconciles_clean() {
    let files = shipped();
    assert!(files.len() >= 3, "three scenarios ship at least: {files:?}");
    let mut kinds = BTreeSet::new();
    let mut cases = BTreeSet::new();
    let mut xml_types = BTreeSet::new();
    for path in &files {
        let scenario = Scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
        let mut steps = Vec::new();
        let options = RunOptions::default();
        let (summary, running) =
            start_scenario(&scenario, &options, &mut |step: &str| steps.push(step.to_owned()))
                .await
                .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), steps.join("\n")));
        let network = running.network();
        let banks: Vec<_> = network.banks.iter().map(|b| b.bic).collect();
        let messages = common::xsd::relayed(network.hub(), &banks).await;
        assert!(!messages.is_empty(), "{}: the hub relayed nothing", path.display());
        // Issue 20: every message the scenario's hub relayed, and each bank's settlement
        // statement, validates as ISO 20022 XML.
        xml_types.extend(common::xsd::validate_all(&format!("{} as ISO 20022", path.display()), &messages));
        let held: Vec<_> = scenario
            .bank_currencies()
            .into_iter()
            .map(|(bic, currency)| (&network.banks[network.index_of(bic)].bank, currency.code().to_owned()))
            .collect();
        let statements = common::xsd::statements(&held);
        xml_types
            .extend(common::xsd::validate_written(&format!("{} statements", path.display()), &statements));
        running.stop().await.unwrap();
        let text = format!("{}\n{}", steps.join("\n"), summary.render());
        assert!(summary.ok(), "{}:\n{text}", path.display());
        assert!(summary.reconciliation.breaks.is_empty(), "{text}");
        assert!(summary.reconciliation.payments_checked >= summary.payments_sent, "{text}");
        assert!(summary.payments_sent > 0 && summary.payments_settled > 0, "{text}");
        assert_eq!(summary.orders, scenario.payment_count(), "every order was put\n{text}");
        // Each event of the file happened (a timed one, like bank_offline, twice: on and off).
        for kind in scenario.event_kinds() {
            assert!(summary.events.iter().any(|e| e.kind == kind), "{kind} not applied\n{text}");
        }
        let json = serde_json::to_value(&summary).expect("the summary serialises");
        assert_eq!(json["reconciliation"]["breaks"].as_array().map(Vec::len), Some(0));
        kinds.extend(summary.events.iter().map(|e| e.kind.clone()));
        cases.extend(summary.cases.iter().filter(|c| c.done).map(|c| c.kind.clone()));
    }
    assert_eq!(
        cases,
        CASE_KINDS.iter().map(|k| k.to_string()).collect(),
        "the shipped scenarios carry a return and a recall accepted and refused through"
    );
    let every = [
        "bank_offline",
        "close_window",
        "fund",
        "hub_restart",
        "net_debit_cap",
        "recall",
        "return",
        "suspend",
    ];
    assert_eq!(
        kinds,
        every.iter().map(|k| k.to_string()).collect(),
        "the shipped scenarios exercise every kind"
    );
    if !xml_types.is_empty() {
        let relayed = [Pacs008, Pacs002, Pacs004, Camt056, Camt029, Camt053];
        assert_eq!(xml_types, relayed.into_iter().collect(), "every kind relayed was checked as XML");
    }
}

/// The smallest valid file, to break one field at a time.
const GOOD: &str = r#"
name = "two banks"
[[bank]]
bic = "CRDARUMMXXX"
currency = "RUB"
liquidity = "1000.00"
customers = [{ account = "C001", balance = "100.00" }]
[[bank]]
bic = "CRDBIRTHXXX"
currency = "RUB"
liquidity = "1000.00"
customers = [{ account = "C001", balance = "100.00" }]
[workload]
payments = 2
rate_per_s = 10
amount_min_pct = 1
amount_max_pct = 2
"#;

/// [`GOOD`] with its second bank in rials and a RUB/IRR agreement at `rate` less `bps`.
fn with_agreement(rate: &str, bps: u32) -> String {
    let rials = GOOD.replacen("currency = \"RUB\"\nliquidity = \"1000.00\"\ncustomers = [{ account = \"C001\", balance = \"100.00\" }]\n[workload]", "currency = \"IRR\"\nliquidity = \"1000\"\ncustomers = [{ account = \"C001\", balance = \"100\" }]\n[workload]", 1);
    format!(
        "{rials}[[agreement]]\npair = \"RUB/IRR\"\nrate = \"{rate}\"\nspread_bps = {bps}\n[[agreement]]\npair = \"IRR/RUB\"\nrate = \"0.002\"\nspread_bps = 0\n"
    )
}

#[test]
fn bad_scenario_files_are_refused_naming_the_problem() {
    Scenario::parse(GOOD).expect("the base file is valid");
    Scenario::parse(&with_agreement("466.6667", 25)).expect("465.49999833 applied fits XchgRate");
    let cases: [(String, &str); 18] = [
        ("this is [not toml".into(), "line 1"),
        (GOOD.replace("name = \"two banks\"", "name = \"x\"\ncolour = \"red\""), "unknown field `colour`"),
        (GOOD.replace("name = \"two banks\"", ""), "missing field `name`"),
        (GOOD.replace("liquidity = \"1000.00\"\ncustomers", "customers"), "missing field `liquidity`"),
        (GOOD.replacen("\"RUB\"", "\"RUBX\"", 1), "bank CRDARUMMXXX.currency"),
        (GOOD.replacen("CRDARUMMXXX", "NOT A BIC", 1), "bank[0].bic"),
        (GOOD.replacen("CRDBIRTHXXX", "CRDARUMMXXX", 1), "appears twice"),
        (GOOD.replacen("\"100.00\"", "\"-5.00\"", 1), "customers[0].balance"),
        (GOOD.replacen("\"1000.00\"", "\"12.345\"", 1), "bank CRDARUMMXXX.liquidity"),
        (
            GOOD.replace("settlement", "x")
                .replace("name = \"two banks\"", "name = \"t\"\nsettlement = \"weekly\""),
            "settlement:",
        ),
        (GOOD.replace("amount_max_pct = 2", "amount_max_pct = 200"), "amount_max_pct"),
        (
            format!(
                "{GOOD}[[event]]\nkind = \"bank_offline\"\nbank = \"CRDZZZZZXXX\"\nat_s = 1\nfor_s = 1\n"
            ),
            "event[0].bank",
        ),
        (format!("{GOOD}[[event]]\nkind = \"earthquake\"\nat_s = 1\n"), "unknown variant `earthquake`"),
        (format!("{GOOD}[[event]]\nkind = \"hub_restart\"\nat_s = 1000\n"), "event[0].at_s"),
        (format!("{GOOD}[[event]]\nkind = \"close_window\"\nat_s = 1\n"), "deferred-net"),
        (GOOD.replacen("currency = \"RUB\"", "currency = \"IRR\"", 1), "need an [[agreement]] with pair"),
        // Issue 20: 466.666667 less 25 bp is 465.5000003325 (13 digits), more than ISO
        // 20022's XchgRate holds, so no payment under it could be written as XML.
        (with_agreement("466.666667", 25), "agreement[0].rate: 466.666667 less 25 bp applies 465.5000003325"),
        (with_agreement("0.00214285714", 0), "agreement[0].rate: 0.00214285714 less 0 bp"),
    ];
    for (text, expected) in cases {
        let error = Scenario::parse(&text).err().unwrap_or_else(|| panic!("accepted:\n{text}"));
        assert!(error.contains(expected), "{error:?} should say {expected:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
    // A missing file names itself.
    let error = Scenario::load(Path::new("scenarios/no-such-file.toml")).unwrap_err();
    assert!(error.starts_with("scenarios/no-such-file.toml: cannot read"), "{error}");
}

/// [`GOOD`] with one listed payment (`payment[0]`, at 0.2 s, to an open customer), and
/// `event` after it.
fn with_case(event: &str) -> String {
    format!(
        "{GOOD}[[payment]]\nat_s = 0.2\nfrom = \"CRDARUMMXXX\"\nfrom_account = \"C001\"\nto = \"CRDBIRTHXXX\"\n\
         to_account = \"C001\"\namount = \"5.00\"\n{event}"
    )
}

/// Returns and recalls are checked like every other field, before anything starts: each
/// names a listed payment that can settle, comes after it, has a known ISO reason, a
/// recall an answer ("accept", or "refuse" with its reason), at most one case per
/// payment, with both banks online; `expect.cases` names only kinds that exist.
#[test]
fn bad_returns_and_recalls_are_refused_naming_the_field() {
    let ret = "[[event]]\nkind = \"return\"\npayment = 0\nat_s = 1\nreason = \"AC04\"\n";
    let recall =
        "[[event]]\nkind = \"recall\"\npayment = 0\nat_s = 1\nreason = \"DUPL\"\nanswer = \"accept\"\n";
    let refuse = recall.replace("\"accept\"", "\"refuse\"\nanswer_reason = \"NOAS\"");
    for good in [ret.to_owned(), recall.to_owned(), refuse.clone()] {
        Scenario::parse(&with_case(&good)).unwrap_or_else(|e| panic!("{e}\n{good}"));
    }
    let offline = "[[event]]\nkind = \"bank_offline\"\nbank = \"CRDBIRTHXXX\"\nat_s = 0.9\nfor_s = 0.5\n";
    let cases: [(String, &str); 12] = [
        (ret.replace("payment = 0", "payment = 5"), "event[0].payment: there is no payment[5]"),
        (ret.replace("\"AC04\"", "\"XX99\""), "event[0].reason"),
        (ret.replace("reason = \"AC04\"\n", ""), "missing field `reason`"),
        (ret.replace("at_s = 1", "at_s = 0.1"), "event[0].at_s: must come after payment[0]"),
        (recall.replace("\"accept\"", "\"maybe\""), "event[0].answer"),
        (recall.replace("\"accept\"", "\"refuse\""), "event[0].answer_reason: a refusal needs"),
        (format!("{recall}answer_reason = \"NOAS\"\n"), "only a refusal has a reason"),
        (refuse.replace("\"NOAS\"", "\"nope\""), "event[0].answer_reason"),
        (format!("{ret}{recall}"), "event[1].payment: payment[0] already has a return or a recall"),
        (format!("{ret}{offline}"), "event[0].at_s: CRDBIRTHXXX is offline then"),
        (format!("{ret}[expect]\ncases = [\"returned\"]\n"), "expect.cases[0]"),
        (format!("{ret}payment_id = 3\n"), "unknown field `payment_id`"),
    ];
    for (event, expected) in cases {
        let text = with_case(&event);
        let error = Scenario::parse(&text).err().unwrap_or_else(|| panic!("accepted:\n{text}"));
        assert!(error.contains(expected), "{error:?} should say {expected:?}");
        assert!(!error.contains('\n'), "one line: {error:?}");
    }
    // A payment to an account its bank does not hold is rejected: nothing to return.
    let text = with_case(ret).replace("to_account = \"C001\"", "to_account = \"C999\"");
    assert!(Scenario::parse(&text).unwrap_err().contains("nothing to return or recall"));
}

#[test]
fn the_cli_runs_a_shipped_scenario_and_refuses_a_bad_one() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .current_dir(dir)
        .args(["demo", "--scenario", "scenarios/crash.toml", "--json"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(summary["reconciliation"]["breaks"].as_array().map(Vec::len), Some(0), "{stdout}");
    assert!(summary["payments_settled"].as_u64() > Some(0), "{stdout}");

    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), GOOD.replace("rate_per_s = 10", "rate_per_s = 10\nburst = 3")).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["demo", "--scenario"])
        .arg(bad.path())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown field `burst`"), "{stderr}");
    assert!(output.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&output.stdout));
}

/// A lesson may be about refusals: a pair without an agreement (AM11, allowed only when
/// `[expect]` names it) and an order from a bank that is offline (its operators cannot
/// reach it) are counted as refused orders, and the run still reconciles clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lesson_about_refusals_counts_them_and_reconciles_clean() {
    let text = GOOD.replacen("currency = \"RUB\"", "currency = \"IRR\"", 1)
        + r#"
[[payment]]
at_s = 0.4
from = "CRDARUMMXXX"
from_account = "C001"
to = "CRDBIRTHXXX"
to_account = "C001"
amount = "5.00"
note = "from a bank that is offline"
[[event]]
kind = "bank_offline"
bank = "CRDARUMMXXX"
at_s = 0.3
for_s = 0.3
[expect]
reason_codes = ["AM11", "offline"]
"#;
    assert!(Scenario::parse(&text.replace("\"AM11\", ", "")).unwrap_err().contains("AM11"));
    let scenario = Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut steps = Vec::new();
    let summary = run_scenario(&scenario, &mut |step: &str| steps.push(step.to_owned())).await.unwrap();
    let text = format!("{}\n{}", steps.join("\n"), summary.render());
    assert!(summary.ok(), "{text}");
    assert_eq!(summary.orders, 3, "{text}");
    assert_eq!(summary.payments_sent, 0, "every order crosses the pair without agreement: {text}");
    assert_eq!(summary.reason_codes.get("AM11"), Some(&2), "{text}");
    assert_eq!(summary.reason_codes.get("offline"), Some(&1), "{text}");
}

/// A scenario serves the hub's dashboard where it is asked to (`--dashboard-addr`, which
/// it used to ignore), from before the run starts to its end, across a hub restart at
/// the same address, with the reconciliation posted to it; once stopped, it is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_serves_its_dashboard_where_asked_even_across_a_hub_restart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/crash.toml");
    let scenario = Scenario::load(&path).unwrap();
    assert!(scenario.event_kinds().contains("hub_restart"), "the file restarts the hub");
    let options = RunOptions { dashboard: Some("127.0.0.1:0".parse().unwrap()) };
    let mut steps = Vec::new();
    let (summary, running) =
        start_scenario(&scenario, &options, &mut |step: &str| steps.push(step.to_owned())).await.unwrap();
    assert!(summary.ok(), "{}", summary.render());
    let url = running.dashboard_url().expect("served").to_owned();
    let told = steps.iter().position(|s| *s == format!("Dashboard: {url}"));
    let started = steps.iter().position(|s| s.starts_with("Running:"));
    assert!(told.is_some() && told < started, "told before the run starts: {steps:#?}");
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    let answer = get(addr, "/api/state").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let state = answer.json();
    let bics: Vec<&str> =
        state["participants"].as_array().unwrap().iter().map(|p| p["bic"].as_str().unwrap()).collect();
    assert_eq!(bics.len(), summary.banks.len(), "{state:#}");
    assert_eq!(state["reconciliation"]["clean"], true, "the run's reconciliation is posted: {state:#}");
    running.stop().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the dashboard is down once stopped");
}

/// A hub restart whose dashboard cannot come back (its address was taken while the hub
/// was down) is a step of the run, not its end: the hub restarted fine, so the scenario
/// goes on to its summary and says where the dashboard could not come back and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_goes_on_when_its_dashboard_cannot_come_back_after_a_hub_restart() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/crash.toml");
    let scenario = Scenario::load(&path).unwrap();
    let options = RunOptions { dashboard: Some("127.0.0.1:0".parse().unwrap()) };
    let (mut steps, mut addr, mut taken) = (Vec::new(), None::<String>, None::<std::net::TcpListener>);
    let mut progress = |step: &str| {
        if let Some(url) = step.strip_prefix("Dashboard: ") {
            addr = Some(url.trim_start_matches("http://").trim_end_matches('/').to_owned());
        }
        // The dashboard let go of its address before the hub stopped: something else takes it.
        if step.contains("The hub stops") && taken.is_none() {
            let addr = addr.as_deref().expect("the dashboard's address is told first");
            taken = Some(std::net::TcpListener::bind(addr).expect("free once the dashboard stopped"));
        }
        steps.push(step.to_owned());
    };
    let (summary, running) = start_scenario(&scenario, &options, &mut progress).await.unwrap();
    assert!(summary.ok(), "{}", summary.render());
    let addr = addr.unwrap();
    let said = steps.iter().position(|s| s.contains("The dashboard could not come back on"));
    let said = said.unwrap_or_else(|| panic!("a step says the dashboard did not come back: {steps:#?}"));
    assert!(steps[said].contains(&addr), "{}", steps[said]);
    assert!(
        steps[said + 1..].iter().any(|s| s.contains("The hub is back")),
        "and the run goes on: {steps:#?}"
    );
    assert!(running.dashboard_url().is_none(), "no dashboard is served after the restart");
    running.stop().await.unwrap();
    drop(taken);
}

/// The command line passes `--dashboard-addr` to a scenario: an address it cannot listen
/// on stops the run with a line that names the flag (before, the flag was ignored and the
/// run went on); `--no-dashboard` serves none.
#[test]
fn the_cli_gives_a_scenario_the_dashboard_address() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_corridor"))
            .current_dir(dir)
            .args(["demo", "--scenario", "scenarios/cases.toml"])
            .args(extra)
            .output()
            .expect("the binary runs")
    };
    // TEST-NET-1 (RFC 5737): never an address of this machine.
    let output = run(&["--dashboard-addr", "192.0.2.1:9"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains("--dashboard-addr: cannot listen on 192.0.2.1:9"), "{stderr}");

    let output = run(&["--dashboard-addr", "127.0.0.1:0"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.lines().any(|l| l.starts_with("Dashboard: http://127.0.0.1:")), "{stdout}");

    let output = run(&["--no-dashboard"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(!stdout.contains("Dashboard:"), "{stdout}");
}
