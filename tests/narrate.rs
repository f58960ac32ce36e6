//! `corridor demo --narrate`: the narrated demo runs to the end, names each step in
//! order, tells what the network really did (the UETR the hub journalled, the receiver's
//! RJCT reason, a clean reconciliation), and pauses between steps only when asked to
//! (issue 9: "the narrated demo runs to the end with `--no-pause` and its output names
//! each step"). Its pacs.008 is shown as ISO 20022 XML too (issue 20, "Teaching"): the
//! Document written from the very message the hub journalled, which reads back as that
//! message and validates against the official schema (with `xmllint`, skipped with a
//! notice where it or the schemas are absent, a failure under CI: tests/common/external.rs).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::external::{XMLLINT, iso20022_dir};
use corridor::directory::Directory;
use corridor::iso20022;
use corridor::model::{Body, MessageType};
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
    check_the_pacs008_xml(&lines, &network, payments[0].uetr);
}

/// The pacs.008's Document as the narration shows it: the lines from its start tag to its
/// end tag, without the narration's indent.
fn told_document(lines: &[String]) -> String {
    let start =
        lines.iter().position(|l| l.trim_start().starts_with("<Document xmlns=")).expect("a Document");
    let end = start + lines[start..].iter().position(|l| l.trim() == "</Document>").expect("its end tag");
    let indent = lines[start].len() - lines[start].trim_start().len();
    lines[start..=end].iter().map(|l| &l[indent..]).collect::<Vec<_>>().join("\n")
}

/// Step 2 shows the pacs.008 as XML: the Document of `iso20022::write` of the message the
/// hub journalled (the bank's signed bytes, decoded), which reads back as that message,
/// with each explained field pointed to by its path, and which the official schema
/// accepts.
fn check_the_pacs008_xml(lines: &[String], network: &corridor::tls::NetworkDir, uetr: corridor::model::Uetr) {
    let text = lines.join("\n");
    let record = corridor::hub::journal::read_message(&network.hub_data_dir(), uetr, MessageType::Pacs008)
        .unwrap()
        .expect("the journalled pacs.008");
    let signed = corridor::model::wire::decode_message(&record.envelope.payload).unwrap();
    let written = iso20022::write(&signed).unwrap();
    let document = told_document(lines);
    let written_lines: Vec<String> = written.lines().map(str::to_owned).collect();
    assert_eq!(document, told_document(&written_lines), "the told Document is the written one");
    let read = iso20022::read_strict(document.as_bytes()).expect("the told Document reads");
    assert_eq!(read.body(), signed.body(), "the told XML carries the signed payment");
    assert_eq!(read.header().message_id, signed.header().message_id);
    let Body::Pacs008(transfer) = signed.body() else { panic!("not a pacs.008") };
    for (path, value) in [
        ("CdtTrfTxInf/PmtId/UETR", transfer.uetr.to_string()),
        ("CdtTrfTxInf/IntrBkSttlmAmt", format!("its currency in Ccy=\"{}\"", transfer.amount.currency())),
        ("GrpHdr/MsgId", signed.header().message_id.to_string()),
        ("CdtTrfTxInf/Cdtr/Nm", transfer.creditor.name.clone()),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(" {path} ")) && l.ends_with(&value)),
            "no line points to {path} with {value}:\n{text}"
        );
    }
    assert!(text.contains("from (Fr)") && text.contains("head.001.001.02"), "the AppHdr:\n{text}");
    let Some(xmllint) = XMLLINT.require("the_narrated_demo_tells_every_step_with_the_networks_own_values")
    else {
        return;
    };
    let Some(dir) = iso20022_dir("the_narrated_demo_tells_every_step_with_the_networks_own_values") else {
        return;
    };
    let mut child = Command::new(xmllint)
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join("xsd/pacs.008.001.08.xsd"))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint runs");
    child.stdin.take().unwrap().write_all(document.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "xmllint: {}\n{document}", String::from_utf8_lossy(&output.stderr));
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
