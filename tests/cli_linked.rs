//! Linked networks from the command line (issue 23): `corridor demo --linked` runs to the
//! end with exit 0, and `--json` gives one JSON object that accounts for every payment;
//! flags that make no sense with it are refused, naming the flag, before anything runs
//! (DESIGN.md: "Bad input gets a clear error and changes nothing").

mod common;

use common::cli::{corridor, json_document, refused, text};

/// `demo --linked --json`: four payments across the link, two of them held while it was
/// down, each ACSC and delivered once, and three clean reconciliations.
#[test]
fn the_linked_demo_ends_well_and_its_json_accounts_for_every_payment() {
    let summary = json_document(corridor(&["demo", "--linked", "--json", "--no-dashboard"]));
    let payments = summary["payments"].as_array().unwrap();
    let paid: Vec<(&str, &str)> =
        payments.iter().map(|p| (p["paid"].as_str().unwrap(), p["received"].as_str().unwrap())).collect();
    assert_eq!(
        paid,
        [
            ("1000.00 RUB", "450000.00 IRR"),
            ("100000.00 IRR", "220.00 RUB"),
            ("500.00 RUB", "225000.00 IRR"),
            ("20.50 RUB", "9225.00 IRR")
        ]
    );
    for payment in payments {
        assert_eq!(payment["status"], "ACSC", "{payment}");
        assert_eq!(payment["records_at_receiver"], 1, "{payment}");
        assert_eq!(payment["credits_to_beneficiary"], 1, "{payment}");
    }
    assert_eq!(summary["held_while_link_down"], 2);
    let reconciliations = summary["reconciliations"].as_array().unwrap();
    assert_eq!(reconciliations.len(), 3, "{summary}");
    for reconciliation in reconciliations {
        assert_eq!(reconciliation["report"]["breaks"].as_array().unwrap().len(), 0, "{reconciliation}");
    }
}

/// Each flag of the single-network demo that `--linked` has no use for is refused with
/// its name, and a `--data` that exists already is refused and left as it was.
#[test]
fn flags_the_linked_demo_cannot_use_are_refused_naming_them() {
    let temp = tempfile::tempdir().unwrap();
    let scenario = temp.path().join("scenario.toml");
    std::fs::write(&scenario, "not a scenario").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--banks", "3"], "--banks"),
        (&["--payments", "5"], "--payments"),
        (&["--seed", "7"], "--seed"),
        (&["--currency", "RUB"], "--currency"),
        (&["--narrate"], "--narrate"),
        (&["--scenario", text(&scenario)], "--scenario"),
        (&["--dashboard-addr", "not-an-address"], "--dashboard-addr"),
    ];
    for (flags, named) in cases {
        let mut args = vec!["demo", "--linked"];
        args.extend_from_slice(flags);
        let stderr = refused(corridor(&args));
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    let existing = temp.path().join("kept");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("mine.txt"), "keep me").unwrap();
    let stderr = refused(corridor(&["demo", "--linked", "--no-dashboard", "--data", text(&existing)]));
    assert!(stderr.contains("already exists"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(&existing).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["mine.txt"], "a refused demo wrote nothing");
}
