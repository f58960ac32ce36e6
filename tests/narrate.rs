//! `corridor demo --narrate`: the narrated demo runs to the end, names each step in
//! order, tells what the network really did (the UETR the hub journalled, the receiver's
//! RJCT reason, a clean reconciliation), and pauses between steps only when asked to
//! (issue 9: "the narrated demo runs to the end with `--no-pause` and its output names
//! each step").

use std::process::Command;

use corridor::directory::Directory;
use corridor::sim::narrate::{NarrateConfig, STEP_HEADINGS, run_narrated};

/// Each heading appears once, on a line of its own, in order.
fn assert_steps_in_order(lines: &[String]) {
    let mut from = 0;
    for heading in STEP_HEADINGS {
        let found = lines[from..].iter().position(|l| l == heading);
        let found =
            found.unwrap_or_else(|| panic!("{heading:?} missing or out of order:\n{}", lines.join("\n")));
        from += found + 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_narrated_demo_tells_every_step_with_the_networks_own_values() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("network");
    let config = NarrateConfig { pause: false, data: Some(data.clone()) };
    let mut lines = Vec::new();
    let mut pauses = 0;
    let summary = run_narrated(&config, &mut |line: &str| lines.push(line.to_owned()), &mut || pauses += 1)
        .await
        .unwrap();
    let text = lines.join("\n");
    assert_eq!(pauses, 0, "no pause without --pause");
    assert_steps_in_order(&lines);
    assert!(text.contains("The end."), "{text}");

    // The values told are the network's: the hub's journal, read after the run, has the
    // three payments, and the story names them and their outcomes.
    let network = corridor::tls::NetworkDir::new(&data);
    let directory = Directory::load(network.root()).unwrap();
    let (_, payments) = corridor::hub::read_journal(&directory, &network.hub_data_dir()).unwrap();
    let journalled: Vec<String> = payments.iter().map(|p| p.uetr.to_string()).collect();
    assert_eq!(
        journalled,
        [summary.payment_uetr.as_str(), &summary.rejected_uetr, &summary.recovered_uetr],
        "{text}"
    );
    for payment in &payments {
        assert!(text.contains(&payment.uetr.to_string()), "{} not told:\n{text}", payment.uetr);
    }
    let first = &payments[0];
    assert!(text.contains(&first.message_id.to_string()), "the pacs.008's message id:\n{text}");
    assert!(text.contains(&first.amount.to_string()), "the settlement amount {}:\n{text}", first.amount);
    assert!(text.contains(&first.instructed.to_string()), "{text}");
    let rejected = payments[1].status.as_ref().expect("the rejection was reported");
    assert_eq!(rejected.reason.map(|r| r.to_string()).as_deref(), Some("AC01"));
    assert_eq!(summary.rejection_reason, "AC01");
    assert!(text.contains("Transaction status (TxSts)") && text.contains("RJCT"), "{text}");
    assert!(payments[2].settled(), "the payment sent during the outage settled once it was over");
    assert!(summary.reconciliation.is_clean(), "{text}");
    assert_eq!(summary.reconciliation.payments_checked, 3, "{text}");
    assert!(text.contains("0 breaks"), "{text}");
    assert!(text.contains("valid") && text.contains("refused"), "signature checks told:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pauses_it_waits_once_between_each_two_steps() {
    let config = NarrateConfig { pause: true, data: None };
    // Shared by both callbacks, which are borrowed at once.
    let pauses = std::cell::Cell::new(0);
    let mut lines = Vec::new();
    let mut pauses_before_step = Vec::new();
    let mut out = |line: &str| {
        if STEP_HEADINGS.contains(&line) {
            pauses_before_step.push(pauses.get());
        }
        lines.push(line.to_owned());
    };
    let mut pause = || pauses.set(pauses.get() + 1);
    run_narrated(&config, &mut out, &mut pause).await.unwrap();
    let pauses = pauses.get();
    assert_steps_in_order(&lines);
    assert_eq!(pauses, STEP_HEADINGS.len() - 1, "one pause between each two steps");
    let expected: Vec<usize> = (0..STEP_HEADINGS.len()).collect();
    assert_eq!(pauses_before_step, expected, "each pause comes just before the next step");
}

#[test]
fn corridor_demo_narrate_no_pause_runs_to_the_end_and_names_each_step() {
    let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["demo", "--narrate", "--no-pause"])
        .output()
        .expect("run corridor");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "exit {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    assert_steps_in_order(&lines);
    assert!(stdout.contains("0 breaks"), "{stdout}");
}
