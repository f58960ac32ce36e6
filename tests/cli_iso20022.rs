//! `corridor iso20022 validate` and `corridor iso20022 translate` (issue 20, item 3:
//! "work offline, without a network"): run as a user runs them, on files the test writes
//! from the model. A valid message exits 0; a refused one exits 1 with the element's
//! path, or the list of what Corridor does not carry, on stderr and nothing on stdout;
//! a file that cannot be read exits 2. Nothing is dropped silently: a translation that
//! would lose something is refused with the list unless `--lossy`.

mod common;

use common::cli::{corridor, json_document, refused, succeeded};
use common::{IR, RU, credit_transfer, header};
use corridor::iso20022::{self, XML_BYTES_MAX, mt103};
use corridor::model::*;
use tempfile::TempDir;

fn pacs008() -> Message {
    let uetr = Uetr::generate();
    Message::new(header(RU, IR, Some(uetr)), Body::Pacs008(credit_transfer(uetr))).unwrap()
}

fn file(dir: &TempDir, name: &str, content: impl AsRef<[u8]>) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path.to_str().unwrap().to_owned()
}

fn exit_code(args: &[&str]) -> (i32, String, String) {
    let outcome = corridor(args);
    (outcome.status.code().expect("an exit code"), outcome.stdout, outcome.stderr)
}

/// A message Corridor wrote validates: exit 0, the definition and the header on stdout,
/// and with --json one document saying so.
#[test]
fn validate_accepts_what_corridor_writes() {
    let dir = TempDir::new().unwrap();
    let message = pacs008();
    let path = file(&dir, "pacs008.xml", iso20022::write(&message).unwrap());
    let text = succeeded(corridor(&["iso20022", "validate", &path]));
    assert!(text.contains("pacs.008.001.08, valid"), "{text}");
    assert!(text.contains(message.header().message_id.as_str()), "{text}");
    let json = json_document(corridor(&["iso20022", "validate", &path, "--json"]));
    assert_eq!(json["valid"], true, "{json}");
    assert_eq!(json["definition"], "pacs.008.001.08");
    assert_eq!(json["not_carried"], serde_json::json!([]));
    assert_eq!(json["uetr"], message.header().uetr.unwrap().to_string());
}

/// An invalid message exits 1 and names the element's path; one holding an element
/// Corridor does not model exits 1 and lists it.
#[test]
fn validate_refuses_with_the_element_path_or_the_list_of_what_is_not_carried() {
    let dir = TempDir::new().unwrap();
    let xml = iso20022::write(&pacs008()).unwrap();
    let bad_currency = file(&dir, "bad.xml", xml.replace("Ccy=\"RUB\"", "Ccy=\"RUX\""));
    let outcome = corridor(&["iso20022", "validate", &bad_currency]);
    assert_eq!(outcome.status.code(), Some(1));
    let stderr = refused(outcome);
    assert!(
        stderr.contains("/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt/@Ccy"),
        "{stderr}"
    );

    let extra = xml.replace("<Nm>Ivan Petrov</Nm>", "<Nm>Ivan Petrov</Nm><CtryOfRes>RU</CtryOfRes>");
    let extra = file(&dir, "extra.xml", extra);
    let outcome = corridor(&["iso20022", "validate", &extra]);
    assert_eq!(outcome.status.code(), Some(1));
    let stderr = refused(outcome);
    assert!(
        stderr.contains("/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/Dbtr/CtryOfRes"),
        "{stderr}"
    );
    let (code, stdout, _) = exit_code(&["iso20022", "validate", &extra, "--json"]);
    assert_eq!(code, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["not_carried"][0], "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/Dbtr/CtryOfRes");
}

/// Garbage is refused with a clear error and no panic: not XML and a billion laughs
/// exit 1; a missing file and a file over the size limit (never read) exit 2.
#[test]
fn validate_refuses_garbage() {
    let dir = TempDir::new().unwrap();
    let not_xml = file(&dir, "not.xml", "hello, world");
    assert_eq!(corridor(&["iso20022", "validate", &not_xml]).status.code(), Some(1));
    refused(corridor(&["iso20022", "validate", &not_xml]));
    let laughs = file(
        &dir,
        "laughs.xml",
        "<!DOCTYPE d [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><Document>&b;</Document>",
    );
    let stderr = refused(corridor(&["iso20022", "validate", &laughs]));
    assert!(stderr.contains("document type declaration"), "{stderr}");
    let missing = dir.path().join("missing.xml");
    let outcome = corridor(&["iso20022", "validate", missing.to_str().unwrap()]);
    assert_eq!(outcome.status.code(), Some(2));
    refused(outcome);
    let huge = dir.path().join("huge.xml");
    std::fs::File::create(&huge).unwrap().set_len(XML_BYTES_MAX as u64 + 1).unwrap();
    let outcome = corridor(&["iso20022", "validate", huge.to_str().unwrap()]);
    assert_eq!(outcome.status.code(), Some(2));
    let stderr = refused(outcome);
    assert!(stderr.contains(&format!("at most {XML_BYTES_MAX} bytes")), "{stderr}");
}

/// XML translates to Corridor's XML (the same text as the library writes), and a pacs.008
/// to the MT103 the library writes; what an MT103 does not carry (here the sequence
/// number) refuses the translation with the list, unless --lossy.
#[test]
fn translate_xml_to_xml_and_to_mt103() {
    let dir = TempDir::new().unwrap();
    let message = pacs008();
    let xml = iso20022::write(&message).unwrap();
    let path = file(&dir, "pacs008.xml", &xml);
    let again = succeeded(corridor(&["iso20022", "translate", &path, "--to", "xml"]));
    assert_eq!(again.trim_end(), xml.trim_end());

    let Body::Pacs008(transfer) = message.body() else { unreachable!() };
    let expected = mt103::export(message.header(), transfer).unwrap();
    assert!(!expected.not_carried.is_empty(), "the fixture's sequence number is not carried by an MT103");
    let stderr = refused(corridor(&["iso20022", "translate", &path, "--to", "mt103"]));
    assert!(stderr.contains("header.sequence_number"), "{stderr}");
    let outcome = corridor(&["iso20022", "translate", &path, "--to", "mt103", "--lossy"]);
    assert!(outcome.stderr.contains("not carried: header.sequence_number"), "{}", outcome.stderr);
    let text = succeeded(outcome);
    assert_eq!(text.trim_end(), expected.text.trim_end());
}

/// An MT103 translates to XML that Corridor reads back as the same payment; a statement
/// does not translate to an MT103.
#[test]
fn translate_mt103_to_xml_and_refuse_what_has_no_mt103() {
    let dir = TempDir::new().unwrap();
    let mut message_header = header(RU, IR, None);
    let uetr = Uetr::generate();
    message_header.uetr = Some(uetr);
    message_header.sequence_number = 0;
    message_header.message_id = MessageId::parse("INSTR-1").unwrap();
    message_header.creation_time_unix_ms = 1_764_921_600_000;
    let transfer = credit_transfer(uetr);
    assert_eq!(transfer.instruction_id, "INSTR-1", "an MT103 carries one reference, the instruction id");
    let mt = mt103::export(&message_header, &transfer).unwrap();
    assert!(mt.not_carried.is_empty(), "{:?}", mt.not_carried);
    let path = file(&dir, "payment.fin", &mt.text);
    let xml = succeeded(corridor(&["iso20022", "translate", &path, "--to", "xml"]));
    let read = iso20022::read_strict(xml.as_bytes()).unwrap();
    assert_eq!(read.body(), &Body::Pacs008(transfer));
    assert_eq!(read.header().sender, message_header.sender);

    let statement = common::every_message_type().pop().unwrap();
    assert_eq!(statement.message_type(), MessageType::Camt053);
    let path = file(&dir, "statement.xml", iso20022::write(&statement).unwrap());
    let stderr = refused(corridor(&["iso20022", "translate", &path, "--to", "mt103"]));
    assert!(stderr.contains("an MT103 carries a pacs.008, not a camt.053"), "{stderr}");
}
