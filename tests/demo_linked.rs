//! `corridor demo --linked` (issue 23, "Tracking and teaching"): two networks, each from
//! its own `pki init` (a Russian hub with two banks in RUB, an Iranian hub with two banks
//! in IRR), linked by their hubs. The demo sends a payment each way, exact in both
//! currencies at the agreed rates; takes the link down (the Iranian hub stops), and the
//! payments sent meanwhile are held at the Russian hub; brings it back, and they are
//! delivered exactly once; and ends with a clean reconciliation of each network and of
//! the link. Every figure checked here is the test's own integer arithmetic, and the
//! records are read again from the networks themselves, not only from the summary.

mod common;

use corridor::model::{Bic, Uetr};
use corridor::sim::linked::{LinkedConfig, start_linked};

/// `(paid, received, sent while the link was down)`: 1,000.00 RUB at 450 IRR a rouble,
/// 100,000.00 IRR at 0.0022 RUB a rial, and the two sent while the link was down.
const EXPECTED: [(&str, &str, bool); 4] = [
    ("1000.00 RUB", "450000.00 IRR", false),
    ("100000.00 IRR", "220.00 RUB", false),
    ("500.00 RUB", "225000.00 IRR", true),
    ("20.50 RUB", "9225.00 IRR", true),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_linked_demo_pays_both_ways_holds_while_the_link_is_down_and_reconciles_clean() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("linked");
    let any_port = "127.0.0.1:0".parse().unwrap();
    let config = LinkedConfig { data: Some(data.clone()), dashboard: Some(any_port) };
    let mut lines = Vec::new();
    let (summary, running) =
        start_linked(&config, &mut |line: &str| lines.push(line.to_owned())).await.unwrap();
    let text = lines.join("\n");
    assert!(summary.ok(), "{text}");

    let told: Vec<(&str, &str, bool)> = summary
        .payments
        .iter()
        .map(|p| (p.paid.as_str(), p.received.as_str(), p.sent_while_link_down))
        .collect();
    assert_eq!(told, EXPECTED, "{text}");
    // Exact at the agreed rates, to the minor unit: what arrives is what was paid times
    // 450 (roubles to rials) or times 0.0022 (rials to roubles), both with two decimals.
    for payment in &summary.payments {
        let (paid, paid_in) = minor_units(&payment.paid);
        let (received, received_in) = minor_units(&payment.received);
        match (paid_in, received_in) {
            ("RUB", "IRR") => assert_eq!(received, paid * 450, "{payment:?}"),
            ("IRR", "RUB") => assert_eq!(received * 10_000, paid * 22, "{payment:?}"),
            other => panic!("{other:?}"),
        }
    }
    for payment in &summary.payments {
        assert_eq!(payment.status, "ACSC", "{text}");
        assert_eq!((payment.records_at_receiver, payment.credits_to_beneficiary), (1, 1), "{text}");
    }
    assert_eq!(summary.held_while_link_down, 2, "both payments waited at the Russian hub\n{text}");
    for heading in [
        "1. A payment each way across the link",
        "2. The link goes down",
        "3. The link comes back",
        "4. The reconciliation of both networks",
    ] {
        assert!(lines.iter().any(|l| l == heading), "{heading:?} missing\n{text}");
    }
    assert!(
        text.contains(
            "The Russian hub holds 2 message(s) for the link (store and forward); the link is down."
        )
    );

    // Three reconciliations (each network, then the link), each clean and with every
    // payment final.
    let names: Vec<&str> = summary.reconciliations.iter().map(|r| r.network.as_str()).collect();
    assert_eq!(names, ["Russia", "Iran", "the link"]);
    for reconciliation in &summary.reconciliations {
        let report = &reconciliation.report;
        assert!(report.is_clean() && report.payments_in_transit == 0, "{}", report.render());
        assert_eq!(report.payments_checked, 4, "{}", report.render());
    }

    // The swap line, each side in its own currency: the Russian hub owes Bank Markazi
    // 1,000.00 + 500.00 + 20.50 - 220.00 RUB; the Iranian hub's Bank of Russia paid
    // 450,000.00 + 225,000.00 + 9,225.00 - 100,000.00 IRR.
    let lines_at: Vec<(&str, &str)> =
        summary.swap_lines.iter().map(|l| (l.link.as_str(), l.settled_net.as_str())).collect();
    assert_eq!(lines_at, [("BMJIIRTHXXX", "1300.50 RUB"), ("CBRFRUMMXXX", "-584225.00 IRR")]);

    // Read again from the hubs themselves: each has every payment once.
    let (russia, iran) = running.networks();
    for hub in [russia.hub(), iran.hub()] {
        let mut uetrs: Vec<Uetr> = hub.payments().iter().map(|p| p.uetr).collect();
        uetrs.sort();
        uetrs.dedup();
        assert_eq!(uetrs.len(), 4);
        assert_eq!(hub.payments().len(), 4, "one record a payment");
    }
    assert!(russia.hub().link_up(Bic::parse("BMJIIRTHXXX").unwrap()));
    assert_eq!(russia.hub().queued_for(Bic::parse("BMJIIRTHXXX").unwrap()), 0);
    // The dashboard shows both hubs, each with its link up, nothing waiting, and the
    // swap line as the summary has it.
    let url = running.dashboard_url().unwrap().to_owned();
    assert!(lines.contains(&format!("Dashboard: {url}")), "{text}");
    let addr = url.trim_start_matches("http://").trim_end_matches('/').parse().unwrap();
    for (path, link, settled) in [("/", "BMJIIRTHXXX", "1300.50"), ("/hubs/1/", "CBRFRUMMXXX", "-584225.00")]
    {
        let state = common::http::get(addr, &format!("{path}api/state")).await.json();
        let shown = &state["links"][0];
        assert_eq!((shown["link"].as_str(), shown["up"].as_bool()), (Some(link), Some(true)), "{state}");
        assert_eq!((shown["settled_net_text"].as_str(), shown["queued"].as_u64()), (Some(settled), Some(0)));
        assert_eq!(state["hubs"].as_array().unwrap().len(), 2, "{state}");
    }
    running.stop(&mut |_: &str| {}).await.unwrap();
    // Each network is kept in its own folder, with its own PKI.
    for folder in ["russia", "iran"] {
        assert!(data.join(folder).join("directory.json").is_file(), "{folder}");
    }
}

/// `"1234.56 RUB"` as `(123456, "RUB")`.
fn minor_units(money: &str) -> (i64, &str) {
    let (number, code) = money.split_once(' ').unwrap();
    let (whole, cents) = number.split_once('.').unwrap();
    assert_eq!(cents.len(), 2, "{money}");
    (format!("{whole}{cents}").parse().unwrap(), code)
}
