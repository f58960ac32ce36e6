//! The cross-border commands of the `corridor` command line as a user runs them
//! (docs/CROSS_BORDER.md): rate agreements (`admin agreement`, `admin agreements`), quotes
//! (`quote`, `hub --quote-ttl-secs`), payments across currencies (`pay
//! --settlement-currency [--quote]`), returns (`return`) and recalls (`recall`,
//! `answer-recall`), and what `status`, `payments`, `admin positions` and `track` show of
//! them. Real processes, real mTLS, a network directory made by `corridor pki init`, as in
//! tests/cli.rs.
//!
//! Every child process is owned by a guard that kills and reaps it when the test ends, pass
//! or fail, and every wait is bounded: a stuck process fails its test instead of hanging it.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::thread::sleep;
use std::time::Duration;

use common::cli::{
    ANY_LOOPBACK_PORT, Outcome, Server, corridor, files_under, json_document, pki_init, refused,
    refused_in_one_line, shows_no_panic, start_server, succeeded, text,
};
use corridor::model::wire;
use serde_json::json;
use tempfile::TempDir;

/// Pays in roubles.
const PAYER: &str = "BANKRUMMXXX";
/// Is paid in rials.
const PAYEE: &str = "BANKIRTHXXX";
/// What the payer's customer A1 opens with.
const OPENING: &str = "1000.00 RUB";

/// 512.25 less 25 basis points: 512.25 × 0.9975, exact.
const APPLIED_RATE: &str = "510.969375";
/// 100.00 RUB at 510.969375 is 51,096.9375 IRR: to the nearest rial minor unit, 51,096.94.
const HUNDRED_RUB_IN_IRR: &str = "51096.94 IRR";

/// A payment, a return or a recall answer is final within milliseconds; this bounds the
/// wait at about 10 s plus the time to run `status` that many times.
const STATUS_POLLS_MAX: usize = 200;
const STATUS_POLL_INTERVAL: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------
// Processes and networks (one-shot commands: `common::cli`)

/// A hub and the two bank nodes, started as separate processes the way a user would. The
/// hub operator funds both banks in roubles and rials far beyond any payment here; the
/// payer has customer A1 with 1000.00 RUB, the payee an empty rial account B1. No rate
/// agreement yet. Fields drop in order: banks, then hub, then the directory.
struct Network {
    banks: Vec<(&'static str, Server)>,
    hub: Server,
    dir: PathBuf,
    _temp: TempDir,
}

impl Network {
    /// With the hub's own further arguments (`--quote-ttl-secs 1`).
    fn start(hub_args: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("create a temporary directory");
        let dir = pki_init(&temp, &[PAYER, PAYEE]);
        let hub = start_server(
            &[&["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT], hub_args].concat(),
            "hub",
        );
        let banks = [PAYER, PAYEE]
            .into_iter()
            .map(|bic| {
                let args = [
                    "bank",
                    "--dir",
                    text(&dir),
                    "--bic",
                    bic,
                    "--hub",
                    &hub.url,
                    "--listen",
                    ANY_LOOPBACK_PORT,
                ];
                (bic, start_server(&args, &format!("bank {bic}")))
            })
            .collect();
        let network = Self { banks, hub, dir, _temp: temp };
        for bic in [PAYER, PAYEE] {
            for currency in ["RUB", "IRR"] {
                let fund = ["fund", "--participant", bic, "--currency", currency, "--amount", "1000000000"];
                succeeded(network.admin(&fund));
            }
        }
        let a1 = ["--account", "A1", "--currency", "RUB", "--name", "Ivan", "--deposit", "1000.00"];
        succeeded(network.operate(PAYER, "open-account", &a1));
        let b1 = ["--account", "B1", "--currency", "IRR", "--name", "Sara"];
        succeeded(network.operate(PAYEE, "open-account", &b1));
        network
    }

    /// Runs `corridor admin --dir ... --hub ... ARGS`.
    fn admin(&self, args: &[&str]) -> Outcome {
        corridor(&[&["admin", "--dir", text(&self.dir), "--hub", &self.hub.url][..], args].concat())
    }

    /// Runs `corridor track --dir ... --hub ... UETR` until it shows every one of `steps`
    /// (a bank confirms what it processed to the hub a moment after it shows it); returns
    /// what it printed then.
    fn track(&self, uetr: &str, steps: &[&str]) -> String {
        for _ in 0..STATUS_POLLS_MAX {
            let track =
                succeeded(corridor(&["track", "--dir", text(&self.dir), "--hub", &self.hub.url, uetr]));
            let shown: Vec<&str> =
                track.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
            if steps.iter().all(|step| shown.contains(step)) {
                return track;
            }
            sleep(STATUS_POLL_INTERVAL);
        }
        panic!("`track {uetr}` never showed all of {steps:?}");
    }

    fn bank(&self, bic: &str) -> &Server {
        self.banks.iter().find(|(b, _)| *b == bic).map(|(_, server)| server).expect("a bank we started")
    }

    /// Runs an operator command (`pay`, `quote`, `return`, ...) against a bank node.
    fn operate(&self, bic: &str, command: &str, args: &[&str]) -> Outcome {
        corridor(&[&[command, "--dir", text(&self.dir), "--bank", &self.bank(bic).url][..], args].concat())
    }

    /// Sets the RUB/IRR agreement: 512.25 less 25 basis points, in force from now.
    fn agree(&self) {
        let line = succeeded(self.admin(&[
            "agreement",
            "--pair",
            "RUB/IRR",
            "--rate",
            "512.25",
            "--spread-bps",
            "25",
        ]));
        assert!(line.contains(&format!("applied rate {APPLIED_RATE}")), "{line}");
    }

    /// `pay` of `amount` RUB from A1 into B1 in rials, with further arguments (`--quote
    /// ID`); returns the UETR.
    fn pay_rials(&self, amount: &str, extra: &[&str]) -> String {
        let order =
            ["--from", "A1", "--to-bank", PAYEE, "--to", "B1", "--amount", amount, "--currency", "RUB"];
        let args = [&order[..], &["--settlement-currency", "IRR"], extra].concat();
        let uetr = succeeded(self.operate(PAYER, "pay", &args)).trim().to_owned();
        assert_eq!(uetr.len(), 36, "a UETR: {uetr:?}");
        uetr
    }

    /// The line `status UETR` prints at a bank.
    fn status(&self, bic: &str, uetr: &str) -> String {
        succeeded(self.operate(bic, "status", &[uetr])).trim_end().to_owned()
    }

    /// Polls `status` until its line satisfies `done`; returns that line.
    fn wait_status(&self, bic: &str, uetr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..STATUS_POLLS_MAX {
            let line = self.status(bic, uetr);
            if done(&line) {
                return line;
            }
            sleep(STATUS_POLL_INTERVAL);
        }
        panic!("payment {uetr} at {bic}: never {what}; last: {}", self.status(bic, uetr));
    }

    /// Polls until the payment is final (ACSC or RJCT) at the bank; returns the status line.
    fn wait_final(&self, bic: &str, uetr: &str) -> String {
        let words = |line: &str| line.split_whitespace().nth(1).map(str::to_owned).unwrap_or_default();
        self.wait_status(bic, uetr, "final", |line| ["ACSC", "RJCT"].contains(&words(line).as_str()))
    }

    /// Account id to balance text ("1000.00 RUB"), after checking the bank's ledger balances.
    fn balances(&self, bic: &str) -> BTreeMap<String, String> {
        let stdout = succeeded(self.operate(bic, "balances", &[]));
        let (accounts, verdict) = stdout.trim_end().rsplit_once('\n').expect("accounts, then the verdict");
        assert_eq!(verdict, "ledger balances: yes", "{bic}'s ledger must balance");
        accounts
            .lines()
            .map(|line| {
                let (id, balance) = line.split_once(' ').expect("id, then balance");
                (id.to_owned(), balance.trim().to_owned())
            })
            .collect()
    }

    /// Everything a refused command must leave as it was: agreements, positions (with the
    /// FX accounts), and both banks' balances and payments.
    fn books(&self) -> Vec<String> {
        let mut books = vec![succeeded(self.admin(&["agreements"])), succeeded(self.admin(&["positions"]))];
        for bic in [PAYER, PAYEE] {
            books.push(format!("{:?}", self.balances(bic)));
            books.push(succeeded(self.operate(bic, "payments", &[])));
        }
        books
    }

    /// The live reconciler's verdict: (breaks, payments checked).
    fn reconcile(&self) -> (usize, u64) {
        let mut args = vec!["reconcile".to_owned(), "--json".into(), "--dir".into(), text(&self.dir).into()];
        args.extend(["--hub".to_owned(), self.hub.url.clone()]);
        for (bic, server) in &self.banks {
            args.extend(["--bank".to_owned(), format!("{bic}={}", server.url)]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let report: serde_json::Value =
            serde_json::from_str(&succeeded(corridor(&args))).expect("one JSON object");
        let breaks = report["breaks"].as_array().map(Vec::len).expect("breaks");
        (breaks, report["payments_checked"].as_u64().expect("payments_checked"))
    }

    /// No node printed a panic.
    fn no_panic(&self) {
        for server in self.banks.iter().map(|(_, s)| s).chain([&self.hub]) {
            let stderr = server.stderr.text();
            assert!(shows_no_panic(&stderr), "{stderr}");
        }
    }
}

/// The `fx account` lines of `admin positions`, as (pair and currency, settled net).
fn fx_accounts(positions: &str) -> BTreeMap<String, String> {
    positions
        .lines()
        .filter_map(|line| line.strip_prefix("fx account "))
        .map(|rest| {
            let (pair, net) = rest.split_once("  settled net ").expect("pair, then its settled net");
            let currency = net.rsplit(' ').next().expect("a currency");
            (format!("{pair} {currency}"), net.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Agreements

/// `admin agreement` sets a pair's agreement and prints it with its applied rate (the rate
/// less the spread, exact); `admin agreements` lists every one as a table, each said to be
/// in force or not yet; setting a pair again replaces its agreement.
#[test]
fn agreements_are_set_with_their_applied_rate_and_listed_as_a_table() {
    let network = Network::start(&[]);
    assert_eq!(succeeded(network.admin(&["agreements"])).trim(), "no rate agreements");

    let set = ["agreement", "--pair", "RUB/IRR", "--rate", "512.25", "--spread-bps", "25"];
    let line = succeeded(network.admin(&set));
    assert!(
        line.starts_with("RUB/IRR  rate 512.25 less 25 bps = applied rate 510.969375, in force from "),
        "{line}"
    );
    assert!(line.trim_end().ends_with("without end"), "{line}");
    let future = [
        "agreement",
        "--pair",
        "IRR/RUB",
        "--rate",
        "0.00195",
        "--valid-from",
        "2099-01-01T00:00:00Z",
        "--valid-until",
        "2099-07-01T12:30:00+02:00",
    ];
    let line = succeeded(network.admin(&future));
    assert_eq!(
        line.trim_end(),
        "IRR/RUB  rate 0.00195 less 0 bps = applied rate 0.00195, in force from 2099-01-01T00:00:00Z until \
         2099-07-01T10:30:00Z"
    );

    let table = succeeded(network.admin(&["agreements"]));
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 3, "a header and two agreements: {table}");
    assert_eq!(
        rows[0],
        ["pair", "rate", "spread", "applied", "rate", "valid", "from", "valid", "until", "now"]
    );
    assert_eq!(rows[1][..5], ["IRR/RUB", "0.00195", "0", "bps", "0.00195"], "{table}");
    assert_eq!(rows[1][5..], ["2099-01-01T00:00:00Z", "2099-07-01T10:30:00Z", "not", "yet"], "{table}");
    assert_eq!(rows[2][..5], ["RUB/IRR", "512.25", "25", "bps", "510.969375"], "{table}");
    assert_eq!(rows[2][6..], ["-", "in", "force"], "{table}");

    // Replaced, not added.
    succeeded(network.admin(&["agreement", "--pair", "RUB/IRR", "--rate", "600"]));
    let table = succeeded(network.admin(&["agreements"]));
    assert_eq!(table.lines().count(), 3, "{table}");
    assert!(table.lines().any(|l| l.starts_with("RUB/IRR  600 ") && l.contains(" 0 bps ")), "{table}");
    network.no_panic();
}

// ---------------------------------------------------------------------------------------
// Quotes and payments across currencies

/// `quote` gives a firm quote (id, both amounts, rate, expiry); `pay --settlement-currency
/// IRR --quote ID` settles at the quote's rate even after the agreement changed, and only
/// once; `pay --settlement-currency IRR` without a quote settles at the agreement in force.
/// `status`, `payments`, `admin positions` and `track` show both amounts and the rate, and
/// every amount is exact in the smallest unit of its currency.
#[test]
fn payments_across_currencies_settle_at_the_agreed_or_quoted_rate() {
    let network = Network::start(&[]);
    network.agree();

    let quote_args = ["--amount", "100.00", "--currency", "RUB", "--to-currency", "IRR"];
    let quote = succeeded(network.operate(PAYER, "quote", &quote_args));
    let (id, rest) = quote.trim_end().split_once("  ").expect("the quote id first");
    assert!(id.starts_with('Q') && !id.contains(' '), "{quote}");
    let (offer, expiry) = rest.split_once(", firm until ").expect("the expiry last");
    assert_eq!(offer, format!("100.00 RUB -> {HUNDRED_RUB_IN_IRR} at {APPLIED_RATE}"));
    let expires = wire::parse_unix_ms(expiry, "expiry").expect("an RFC 3339 expiry");
    let now = corridor::clock::unix_ms_now();
    assert!(expires > now && expires <= now + 60_000, "the default quote lasts 60 s: {quote}");

    // The agreement changes after the quote: the quote still holds its rate.
    succeeded(network.admin(&["agreement", "--pair", "RUB/IRR", "--rate", "600"]));
    let quoted = network.pay_rials("100.00", &["--quote", id]);
    let line = network.wait_final(PAYER, &quoted);
    let to_payee = format!("ACSC  100.00 RUB ({HUNDRED_RUB_IN_IRR} at {APPLIED_RATE}) to {PAYEE}  B1");
    assert!(line.contains(&to_payee), "{line}");
    let line = network.wait_final(PAYEE, &quoted);
    let from_payer = format!("ACSC  {HUNDRED_RUB_IN_IRR} (100.00 RUB at {APPLIED_RATE}) from {PAYER}  B1");
    assert!(line.contains(&from_payer), "{line}");

    // Once only.
    let order = ["--from", "A1", "--to-bank", PAYEE, "--to", "B1", "--amount", "100.00", "--currency", "RUB"];
    let again = [&order[..], &["--settlement-currency", "IRR", "--quote", id]].concat();
    let error = refused_in_one_line(network.operate(PAYER, "pay", &again));
    assert!(error.contains(id) && error.contains("(NotFound)"), "{error}");

    // Without a quote: the agreement in force, 600 with no spread; 12.34 RUB is 7,404.00 IRR.
    let agreed = network.pay_rials("12.34", &[]);
    let line = network.wait_final(PAYER, &agreed);
    assert!(line.contains(&format!("ACSC  12.34 RUB (7404.00 IRR at 600) to {PAYEE}")), "{line}");

    let payee = succeeded(network.operate(PAYEE, "payments", &[]));
    assert_eq!(payee.lines().count(), 2, "{payee}");
    assert!(
        payee.contains(&from_payer) && payee.contains("ACSC  7404.00 IRR (12.34 RUB at 600) from"),
        "{payee}"
    );
    assert_eq!(network.balances(PAYER)["A1"], "887.66 RUB");
    assert_eq!(network.balances(PAYEE)["B1"], "58500.94 IRR", "51,096.94 + 7,404.00");

    // The hub: each bank's position in its own currency, the conversions on the FX accounts.
    let positions = succeeded(network.admin(&["positions"]));
    assert!(positions.contains(&format!("{PAYER}  available 999999887.66 RUB")), "{positions}");
    assert!(positions.contains("settled net -112.34 RUB)"), "{positions}");
    assert!(positions.contains("settled net 58500.94 IRR)"), "{positions}");
    let fx = fx_accounts(&positions);
    assert_eq!(fx.len(), 2, "{positions}");
    assert_eq!(fx["RUB/IRR RUB"], "112.34 RUB", "{positions}");
    assert_eq!(fx["RUB/IRR IRR"], "-58500.94 IRR", "{positions}");

    let steps = ["submitted", "acknowledged", "delivered", "status_reported", "settled", "status_delivered"];
    let track = network.track(&quoted, &steps);
    let head = track.lines().next().unwrap_or_default();
    assert_eq!(
        head,
        format!(
            "{quoted}  100.00 RUB converted at {APPLIED_RATE} into {HUNDRED_RUB_IN_IRR} from {PAYER} to {PAYEE}"
        )
    );
    assert_eq!(network.reconcile(), (0, 2));
    network.no_panic();
}

/// Under deferred net settlement, `admin close-window` (and `admin reports`) shows what the
/// window's conversions moved on the agreement's FX accounts beside each bank's net in its
/// own currency, and `admin positions` the FX accounts after the window.
#[test]
fn a_closed_window_reports_the_conversions_on_the_fx_accounts() {
    let network = Network::start(&["--settlement", "deferred-net"]);
    network.agree();
    let uetr = network.pay_rials("100.00", &[]);
    assert!(network.wait_final(PAYER, &uetr).contains("  ACSC  "));

    let report = succeeded(network.admin(&["close-window"]));
    let lines: Vec<&str> = report.lines().map(str::trim).collect();
    assert!(lines.contains(&"fx account RUB/IRR  net 100.00 RUB"), "{report}");
    assert!(lines.contains(&format!("fx account RUB/IRR  net -{HUNDRED_RUB_IN_IRR}").as_str()), "{report}");
    assert!(
        report.contains(&format!("{PAYER}  sent 100.00 RUB  received 0.00 RUB  net -100.00 RUB")),
        "{report}"
    );
    let received = format!("{PAYEE}  sent 0.00 IRR  received {HUNDRED_RUB_IN_IRR}  net {HUNDRED_RUB_IN_IRR}");
    assert!(report.contains(&received), "{report}");
    let reports = succeeded(network.admin(&["reports"]));
    assert!(reports.contains(report.trim_end()), "{reports}");

    let fx = fx_accounts(&succeeded(network.admin(&["positions"])));
    assert_eq!(fx["RUB/IRR RUB"], "100.00 RUB");
    assert_eq!(fx["RUB/IRR IRR"], format!("-{HUNDRED_RUB_IN_IRR}"));
    assert_eq!(network.reconcile(), (0, 1));
    network.no_panic();
}

/// The cross-border reads take `--json` too (README.md, "Scripting with --json"): `quote`
/// gives the id a script then pays with, both amounts in minor units and text; `status`
/// and `track` show both sides of the converted payment and the rate; `admin agreements`
/// each agreement and whether it is in force; `admin reports` a closed window's lines, FX
/// lines and totals; `admin positions` the FX accounts. One JSON document each, with the
/// real values (issue 19, item 5).
#[test]
fn cross_border_reads_print_one_json_document_with_the_real_values() {
    let network = Network::start(&["--settlement", "deferred-net"]);
    network.agree();

    let agreements = json_document(network.admin(&["agreements", "--json"]));
    assert_eq!(
        agreements,
        json!({ "agreements": [{
            "pair": "RUB/IRR", "rate": "512.25", "spread_bps": 25, "applied_rate": APPLIED_RATE,
            "valid_from_unix_ms": agreements["agreements"][0]["valid_from_unix_ms"],
            "valid_until_unix_ms": null, "state": "in_force",
        }]})
    );
    assert!(agreements["agreements"][0]["valid_from_unix_ms"].as_i64().is_some_and(|ms| ms > 0));

    let quote_args = ["--amount", "100.00", "--currency", "RUB", "--to-currency", "IRR", "--json"];
    let quote = json_document(network.operate(PAYER, "quote", &quote_args));
    let id = quote["quote_id"].as_str().expect("a quote id").to_owned();
    assert!(id.starts_with('Q'), "{quote}");
    let expected = json!({
        "quote_id": id, "participant": PAYER, "instructed_amount": 10000,
        "instructed_amount_text": "100.00", "instructed_currency": "RUB",
        "settlement_amount": 5_109_694, "settlement_amount_text": "51096.94",
        "settlement_currency": "IRR", "exchange_rate": APPLIED_RATE,
        "expires_unix_ms": quote["expires_unix_ms"],
    });
    assert_eq!(quote, expected);
    let now = corridor::clock::unix_ms_now();
    assert!(quote["expires_unix_ms"].as_i64().is_some_and(|ms| ms > now && ms <= now + 60_000), "{quote}");

    let uetr = network.pay_rials("100.00", &["--quote", &id]);
    assert!(network.wait_final(PAYER, &uetr).contains("  ACSC  "));
    let status = json_document(network.operate(PAYER, "status", &[&uetr, "--json"]));
    assert_eq!(
        [&status["amount"], &status["currency"], &status["counter_amount"], &status["counter_amount_text"]],
        [&json!(10000), &json!("RUB"), &json!(5_109_694), &json!("51096.94")],
        "{status}"
    );
    assert_eq!(
        (&status["counter_currency"], &status["exchange_rate"]),
        (&json!("IRR"), &json!(APPLIED_RATE))
    );
    let steps = ["submitted", "acknowledged", "delivered", "status_reported", "settled", "status_delivered"];
    network.track(&uetr, &steps);
    let track = json_document(corridor(&[
        "track",
        "--dir",
        text(&network.dir),
        "--hub",
        &network.hub.url,
        &uetr,
        "--json",
    ]));
    let payment = &track["payment"];
    assert_eq!(
        [
            &payment["instructed_amount"],
            &payment["instructed_currency"],
            &payment["amount"],
            &payment["currency"]
        ],
        [&json!(10000), &json!("RUB"), &json!(5_109_694), &json!("IRR")],
        "{track}"
    );
    assert_eq!(payment["exchange_rate"], json!(APPLIED_RATE));

    succeeded(network.admin(&["close-window"]));
    let reports = json_document(network.admin(&["reports", "--json"]));
    assert_eq!(reports["settlement_model"], json!("deferred-net"), "{reports}");
    let report = &reports["reports"].as_array().expect("reports")[0];
    let line = |bic: &str| {
        report["lines"].as_array().unwrap().iter().find(|l| l["participant"] == bic).cloned().expect(bic)
    };
    let payer = line(PAYER);
    assert_eq!(
        [&payer["currency"], &payer["sent"], &payer["sent_text"], &payer["net"], &payer["net_text"]],
        [&json!("RUB"), &json!(10000), &json!("100.00"), &json!(-10000), &json!("-100.00")],
        "{report}"
    );
    assert_eq!((&line(PAYEE)["received"], &line(PAYEE)["currency"]), (&json!(5_109_694), &json!("IRR")));
    let fx_lines = report["fx_lines"].as_array().expect("fx_lines");
    assert!(
        fx_lines.contains(&json!({ "pair": "RUB/IRR", "currency": "IRR", "settled_net": -5_109_694, "settled_net_text": "-51096.94" })),
        "{report}"
    );
    let rub = report["totals"].as_array().unwrap().iter().find(|t| t["currency"] == "RUB").expect("RUB");
    assert_eq!(
        (&rub["payments"], &rub["gross"], &rub["gross_text"]),
        (&json!(1), &json!(10000), &json!("100.00"))
    );

    let positions = json_document(network.admin(&["positions", "--json"]));
    assert!(
        positions["fx_positions"].as_array().expect("fx_positions").contains(
            &json!({ "pair": "RUB/IRR", "currency": "RUB", "settled_net": 10000, "settled_net_text": "100.00" })
        ),
        "{positions}"
    );
    network.no_panic();
}

/// `hub --quote-ttl-secs 1`: a quote is firm for one second; a payment citing it after
/// that is refused by the hub (RJCT TM01) and moves nothing.
#[test]
fn a_quote_expires_after_the_hubs_quote_ttl_and_an_expired_quote_moves_nothing() {
    let network = Network::start(&["--quote-ttl-secs", "1"]);
    network.agree();
    let quote_args = ["--amount", "100.00", "--currency", "RUB", "--to-currency", "IRR"];
    let quote = succeeded(network.operate(PAYER, "quote", &quote_args));
    let id = quote.split_whitespace().next().expect("the quote id").to_owned();
    let expiry = quote.trim_end().rsplit(' ').next().expect("the expiry");
    let expires = wire::parse_unix_ms(expiry, "expiry").expect("an RFC 3339 expiry");
    let now = corridor::clock::unix_ms_now();
    assert!(expires > now && expires <= now + 1_000, "a quote for one second: {quote}");
    let before = network.books();

    sleep(Duration::from_millis(1_500));
    let late = network.pay_rials("100.00", &["--quote", &id]);
    let line = network.wait_final(PAYER, &late);
    assert_eq!(
        line.split_whitespace().take(3).collect::<Vec<_>>(),
        [late.as_str(), "RJCT", "TM01"],
        "{line}"
    );
    assert_eq!(network.balances(PAYER)["A1"], OPENING, "a refused payment returns the money");
    assert_eq!(network.balances(PAYEE)["B1"], "0.00 IRR");
    // The hub's books as before (the payer's bank keeps its record of the refusal).
    assert_eq!(before[..2], network.books()[..2]);
    network.no_panic();
}

// ---------------------------------------------------------------------------------------
// Returns and recalls

/// `return --reason AC04` at the payee sends a settled payment back: `status` at each bank
/// shows it returning, then returned, and the payer's customer gets back exactly the
/// roubles it paid; the hub's positions and FX accounts are back to zero, the tracker shows
/// the return, and the reconciler finds no break. A second return is refused.
#[test]
fn a_return_restores_the_payers_customer_exactly() {
    let network = Network::start(&[]);
    network.agree();
    let uetr = network.pay_rials("100.00", &[]);
    network.wait_final(PAYER, &uetr);
    network.wait_final(PAYEE, &uetr);
    assert_eq!(network.balances(PAYEE)["B1"], HUNDRED_RUB_IN_IRR);

    let args = ["--uetr", &uetr, "--reason", "AC04", "--info", "account closed"];
    let line = succeeded(network.operate(PAYEE, "return", &args));
    assert!(
        line.starts_with(&format!("{uetr}  ACSC  {HUNDRED_RUB_IN_IRR} (100.00 RUB at {APPLIED_RATE}) from")),
        "{line}"
    );
    assert!(line.contains("  B1  returning AC04  ") || line.contains("  B1  returned AC04  "), "{line}");
    assert_eq!(network.balances(PAYEE)["B1"], "0.00 IRR", "the beneficiary is debited at once");

    let returned = |line: &str| line.contains("  returned AC04  ");
    network.wait_status(PAYEE, &uetr, "returned", returned);
    let line = network.wait_status(PAYER, &uetr, "returned", returned);
    assert!(
        line.contains(&format!("ACSC  100.00 RUB ({HUNDRED_RUB_IN_IRR} at {APPLIED_RATE}) to {PAYEE}")),
        "{line}"
    );
    assert_eq!(network.balances(PAYER)["A1"], OPENING, "the debtor gets back exactly what it paid");
    assert_eq!(network.balances(PAYEE)["B1"], "0.00 IRR");

    let positions = succeeded(network.admin(&["positions"]));
    assert!(
        positions.contains("settled net 0.00 RUB)") && positions.contains("settled net 0.00 IRR)"),
        "{positions}"
    );
    assert!(fx_accounts(&positions).values().all(|net| net.starts_with("0.00 ")), "{positions}");
    let track = network.track(&uetr, &["settled", "returned", "return_delivered"]);
    assert!(track.contains("(AC04) settled: 51096.94 IRR back as 100.00 RUB"), "{track}");
    assert_eq!(network.reconcile(), (0, 1));

    let error = refused_in_one_line(network.operate(PAYEE, "return", &args));
    assert!(error.contains("already") && error.contains("(FailedPrecondition)"), "{error}");
    network.no_panic();
}

/// `recall --reason DUPL` opens a case the payee sees (PDCR); `answer-recall --accept`
/// sends the funds back (FOCR, CNCL) and restores the payer's customer exactly;
/// `answer-recall --refuse --reason NOAS` keeps them (RJCR). Both banks and the tracker show
/// the whole case, and the reconciler finds no break.
#[test]
fn a_recall_accepted_returns_the_funds_and_a_recall_refused_keeps_them() {
    let network = Network::start(&[]);
    network.agree();
    let accepted = network.pay_rials("100.00", &[]);
    let refused_one = network.pay_rials("10.00", &[]);
    for uetr in [&accepted, &refused_one] {
        network.wait_final(PAYER, uetr);
        network.wait_final(PAYEE, uetr);
        let line = succeeded(network.operate(
            PAYER,
            "recall",
            &["--uetr", uetr, "--reason", "DUPL", "--info", "sent twice"],
        ));
        assert!(line.contains("  recall PDCR DUPL case C"), "{line}");
        network.wait_status(PAYEE, uetr, "recalled", |line| line.contains("  recall PDCR DUPL case C"));
    }
    assert_eq!(network.balances(PAYER)["A1"], "890.00 RUB");
    assert_eq!(network.balances(PAYEE)["B1"], "56206.63 IRR", "51,096.94 + 5,109.69 (5,109.69375)");

    let line = succeeded(network.operate(PAYEE, "answer-recall", &["--uetr", &accepted, "--accept"]));
    assert!(line.contains("  recall CNCL DUPL case C"), "{line}");
    let refuse =
        ["--uetr", &refused_one, "--refuse", "--reason", "NOAS", "--info", "the customer does not answer"];
    let line = succeeded(network.operate(PAYEE, "answer-recall", &refuse));
    assert!(line.contains("  recall RJCR NOAS case C"), "{line}");

    let line = network.wait_status(PAYER, &accepted, "returned", |l| {
        l.contains("  returned FOCR  recall CNCL DUPL case C")
    });
    assert!(line.contains("ACSC  100.00 RUB ("), "{line}");
    network.wait_status(PAYER, &refused_one, "refused", |l| l.contains("  recall RJCR NOAS case C"));
    assert_eq!(
        network.balances(PAYER)["A1"],
        "990.00 RUB",
        "the accepted recall gives back exactly 100.00 RUB"
    );
    assert_eq!(network.balances(PAYEE)["B1"], "5109.69 IRR", "the refused recall's funds stay");

    let case = ["recall_requested", "recall_delivered", "recall_answered", "recall_answer_delivered"];
    let track = network.track(&accepted, &[&case[..], &["returned", "return_delivered"]].concat());
    assert!(track.contains("CNCL") && track.contains("(FOCR)"), "{track}");
    let track = network.track(&refused_one, &case);
    assert!(track.contains(" recall_answered ") && track.contains("RJCR (NOAS)"), "{track}");
    assert!(!track.contains(" returned "), "{track}");
    network.wait_status(PAYEE, &accepted, "returned", |l| l.contains("  returned FOCR  "));
    assert_eq!(network.reconcile(), (0, 2));
    network.no_panic();
}

// ---------------------------------------------------------------------------------------
// Bad input

/// `admin agreement` of RUB/IRR at 1, with `extra`.
fn agreement_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [&["agreement", "--pair", "RUB/IRR", "--rate", "1"][..], extra].concat()
}

/// `pay` of 10.00 RUB from A1 to B1 at the payee, with `extra`.
fn pay_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let order = ["--from", "A1", "--to-bank", PAYEE, "--to", "B1", "--amount", "10.00", "--currency", "RUB"];
    [&order[..], extra].concat()
}

/// Garbage for every new flag is refused: a non-zero exit, the error on stderr in one line
/// when it is ours (clap's own usage errors take a few lines and are checked as such),
/// nothing on stdout, no panic, and nothing changed: no agreement, position, FX account,
/// balance or payment moved (DESIGN.md: "Bad input gets a clear error and changes nothing").
#[test]
fn garbage_for_every_new_flag_is_refused_and_changes_nothing() {
    let network = Network::start(&[]);
    network.agree();
    let settled = network.pay_rials("100.00", &[]);
    network.wait_final(PAYER, &settled);
    network.wait_final(PAYEE, &settled);
    let before = network.books();

    // Ours: one line, each naming what is wrong.
    let admin_cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["agreement", "--pair", "RUBIRR", "--rate", "1"], "--pair: is written FROM/TO"),
        (vec!["agreement", "--pair", "RUB/XYZ", "--rate", "1"], "--pair: not an ISO 4217"),
        (vec!["agreement", "--pair", "RUB/RUB", "--rate", "1"], "--pair: a pair needs two currencies"),
        (vec!["agreement", "--pair", "rub/irr", "--rate", "1"], "--pair:"),
        (vec!["agreement", "--pair", "RUB/IRR", "--rate", "abc"], "--rate: a rate is digits"),
        (vec!["agreement", "--pair", "RUB/IRR", "--rate", "0"], "--rate: a rate must be greater than zero"),
        (vec!["agreement", "--pair", "RUB/IRR", "--rate=-512.25"], "--rate:"),
        (vec!["agreement", "--pair", "RUB/IRR", "--rate", "5,12"], "--rate:"),
        (
            vec!["agreement", "--pair", "RUB/IRR", "--rate", "0.00000000000000001"],
            "--rate: a rate has at most 16",
        ),
        (agreement_args(&["--spread-bps", "10000"]), "--spread-bps: a spread is below 10000"),
        (agreement_args(&["--valid-from", "tomorrow"]), "--valid-from: is an RFC 3339 time"),
        (agreement_args(&["--valid-from", "2026-13-01T00:00:00Z"]), "--valid-from: is an RFC 3339 time"),
        (agreement_args(&["--valid-until", "2099-01-01"]), "--valid-until: is an RFC 3339 time"),
        (agreement_args(&["--valid-from", "1969-12-31T00:00:00Z"]), "--valid-from: must be after 1970"),
        (
            agreement_args(&[
                "--valid-from",
                "2099-01-02T00:00:00Z",
                "--valid-until",
                "2099-01-01T00:00:00Z",
            ]),
            "--valid-until: must be after --valid-from",
        ),
        (
            agreement_args(&["--valid-until", "2020-01-01T00:00:00Z"]),
            "--valid-until: must be after --valid-from",
        ),
    ];
    for (args, says) in &admin_cases {
        let error = refused_in_one_line(network.admin(args));
        assert!(error.contains(says), "{args:?}: {error}");
    }

    let garbage_uetr = "not-a-uetr";
    let unknown = "00000000-0000-4000-8000-000000000000";
    let quote = |amount: &'static str, currency: &'static str, to: &'static str| {
        vec!["--amount", amount, "--currency", currency, "--to-currency", to]
    };
    let bank_cases: Vec<(&str, &str, Vec<&str>, &str)> = vec![
        (PAYER, "quote", quote("100.00", "RUB", "XYZ"), "settlement_currency: not an ISO 4217"),
        (PAYER, "quote", quote("100.00", "XYZ", "IRR"), "--currency: not an ISO 4217"),
        (PAYER, "quote", quote("1.001", "RUB", "IRR"), "--amount: RUB has 2 decimal places"),
        (PAYER, "quote", quote("lots", "RUB", "IRR"), "--amount:"),
        (PAYER, "quote", quote("100.00", "RUB", "CNY"), "AM11"),
        (PAYER, "quote", quote("100.00", "RUB", "RUB"), "(FailedPrecondition)"),
        (PAYER, "pay", pay_args(&["--settlement-currency", "XYZ"]), "settlement_currency: not an ISO 4217"),
        (
            PAYER,
            "pay",
            pay_args(&["--settlement-currency", "CNY"]),
            "no RUB/CNY rate agreement in force (AM11)",
        ),
        (PAYER, "pay", pay_args(&["--settlement-currency", "IRR", "--quote", "Qnope"]), "no quote Qnope"),
        (PAYER, "return", vec!["--uetr", garbage_uetr, "--reason", "AC04"], "uetr:"),
        (PAYEE, "return", vec!["--uetr", &settled, "--reason", "XX99"], "reason_code: unknown code \"XX99\""),
        (PAYEE, "return", vec!["--uetr", &settled, "--reason", "ac04"], "reason_code: unknown code"),
        (PAYEE, "return", vec!["--uetr", unknown, "--reason", "AC04"], "(NotFound)"),
        (PAYER, "return", vec!["--uetr", &settled, "--reason", "AC04"], "not a settled incoming payment"),
        (PAYER, "recall", vec!["--uetr", garbage_uetr, "--reason", "DUPL"], "uetr:"),
        (PAYER, "recall", vec!["--uetr", &settled, "--reason", "OOPS"], "reason_code: unknown code \"OOPS\""),
        (PAYEE, "recall", vec!["--uetr", &settled, "--reason", "DUPL"], "not a settled outgoing payment"),
        (PAYEE, "answer-recall", vec!["--uetr", garbage_uetr, "--accept"], "uetr:"),
        (
            PAYEE,
            "answer-recall",
            vec!["--uetr", &settled, "--refuse", "--reason", "XX99"],
            "unknown code \"XX99\"",
        ),
        (PAYEE, "answer-recall", vec!["--uetr", &settled, "--accept"], "no open recall case"),
        (
            PAYEE,
            "answer-recall",
            vec!["--uetr", &settled, "--refuse", "--reason", "NOAS"],
            "no open recall case",
        ),
    ];
    for (bic, command, args, says) in &bank_cases {
        let error = refused_in_one_line(network.operate(bic, command, args));
        assert!(error.contains(says), "{command} {args:?}: {error}");
    }

    // Clap's: several lines (the usage follows), the first saying what is wrong.
    let clap_cases: Vec<(&str, &str, Vec<&str>, &str)> = vec![
        (PAYEE, "answer-recall", vec!["--uetr", &settled, "--refuse"], "--reason"),
        (
            PAYEE,
            "answer-recall",
            vec!["--uetr", &settled, "--accept", "--refuse", "--reason", "NOAS"],
            "cannot be used",
        ),
        (PAYEE, "answer-recall", vec!["--uetr", &settled], "<--accept|--refuse>"),
        (PAYEE, "answer-recall", vec!["--uetr", &settled, "--accept", "--reason", "NOAS"], "cannot be used"),
        (PAYER, "pay", pay_args(&["--quote", "Q1"]), "--settlement-currency"),
        (PAYEE, "return", vec!["--uetr", &settled], "--reason"),
        (PAYER, "recall", vec!["--reason", "DUPL"], "--uetr"),
        (PAYER, "quote", vec!["--amount", "1", "--currency", "RUB"], "--to-currency"),
    ];
    for (bic, command, args, says) in &clap_cases {
        let stderr = refused(network.operate(bic, command, args));
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: ") && stderr.contains(says), "{command} {args:?}: {stderr}");
    }
    for args in [
        agreement_args(&["--spread-bps", "-1"]),
        agreement_args(&["--spread-bps", "many"]),
        vec!["agreement", "--rate", "1"],
    ] {
        let stderr = refused(network.admin(&args));
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }

    assert!(before == network.books(), "a refused command changed the books");
    network.no_panic();
}

/// `hub --quote-ttl-secs` outside 1 s to 24 hours (HubConfig::validate's range) is refused
/// in one line naming the flag, before the hub writes anything; a value that is no number
/// is refused by the parser.
#[test]
fn a_bad_quote_ttl_is_refused_before_the_hub_starts() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let before = files_under(&dir);
    for ttl in ["0", "86401", "18446744073709551615"] {
        let args = ["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT, "--quote-ttl-secs", ttl];
        let error = refused_in_one_line(corridor(&args));
        assert_eq!(
            error,
            format!("error: --quote-ttl-secs {ttl}: quote_ttl must be between 1 s and 24 hours")
        );
    }
    for ttl in ["-1", "soon", "1.5"] {
        let args =
            ["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT, &format!("--quote-ttl-secs={ttl}")];
        let stderr = refused(corridor(&args));
        assert!(stderr.contains("--quote-ttl-secs"), "{stderr}");
    }
    assert!(before == files_under(&dir), "a refused hub changed the network directory");
}

/// `hub --retention-secs` outside 1 s to 24 hours is refused in one line naming
/// the flag and the range (HubConfig::validate's), before the hub writes anything.
#[test]
fn a_bad_retention_is_refused_before_the_hub_starts() {
    let temp = tempfile::tempdir().unwrap();
    let dir = pki_init(&temp, &[PAYER, PAYEE]);
    let before = files_under(&dir);
    for (secs, ms) in [("0", "0"), ("86401", "86401000")] {
        let args = ["hub", "--dir", text(&dir), "--listen", ANY_LOOPBACK_PORT, "--retention-secs", secs];
        let error = refused_in_one_line(corridor(&args));
        assert_eq!(
            error,
            format!(
                "error: --retention-secs {secs}: the retention must be between 1 ms and 24 hours \
                 (got {ms} ms)"
            )
        );
    }
    assert!(before == files_under(&dir), "a refused hub changed the network directory");
}
