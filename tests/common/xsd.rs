//! Every message a running network's hub relayed, written as ISO 20022 XML and checked
//! against the official schemas, AppHdr and Document both (issue 20, "What must be
//! shown": every kind of message Corridor exports, from a demo run and from every
//! shipped scenario, validates). One `xmllint` per schema checks all its files at once,
//! so a run of many messages costs a handful of processes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use corridor::hub::Hub;
use corridor::iso20022;
use corridor::model::{Bic, Message, MessageType, wire};

use super::external::{XMLLINT, iso20022_dir};

/// Every message the hub relayed to each of `banks`, decoded from the journalled envelope
/// exactly as its sender signed it (output sequence numbers 1, 2, ... until none).
pub async fn relayed(hub: &Hub, banks: &[Bic]) -> Vec<Message> {
    let mut messages = Vec::new();
    for bic in banks {
        for osn in 1.. {
            let Some(record) = hub.message_to(*bic, osn).await.expect("the journal reads") else { break };
            messages
                .push(wire::decode_message(&record.envelope.payload).expect("a journalled message decodes"));
        }
    }
    messages
}

/// Writes each message with `iso20022::write` and validates its two parts with xmllint
/// (see [`validate_written`]). Panics naming a message that cannot be written.
pub fn validate_all(test: &str, messages: &[Message]) -> BTreeSet<MessageType> {
    let written: Vec<(MessageType, String)> = messages
        .iter()
        .map(|message| {
            let xml = iso20022::write(message).unwrap_or_else(|e| {
                let id = &message.header().message_id;
                panic!("{test}: {} {id} cannot be written as XML: {e}", message.message_type())
            });
            (message.message_type(), xml)
        })
        .collect();
    validate_written(test, &written)
}

/// The settlement-account statement (camt.053 XML, as `corridor statement --xml` gets it)
/// of each running bank in its currency.
pub fn statements(banks: &[(&corridor::bank::Bank, String)]) -> Vec<(MessageType, String)> {
    banks
        .iter()
        .map(|(bank, currency)| {
            let xml = bank.statement_xml("", currency, 0, i64::MAX).expect("the statement writes");
            (MessageType::Camt053, xml)
        })
        .collect()
}

/// Validates AppHdr and Document of each written message with xmllint against the
/// official schemas; panics with the schema's complaint. Returns the message types
/// covered (empty, after the notice, where xmllint or the schemas are absent outside CI).
pub fn validate_written(test: &str, written: &[(MessageType, String)]) -> BTreeSet<MessageType> {
    let mut files: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (message_type, xml) in written {
        let definition = iso20022::definition_of(*message_type).expect("written, so defined");
        files.entry("head.001.001.02".into()).or_default().push(part(xml, "AppHdr"));
        files.entry(definition.into()).or_default().push(part(xml, "Document"));
    }
    let Some(xmllint) = XMLLINT.require(test) else { return BTreeSet::new() };
    let Some(dir) = iso20022_dir(test) else { return BTreeSet::new() };
    let temporary = tempfile::tempdir().expect("a temporary directory");
    for (schema, parts) in &files {
        check_schema(&xmllint, &dir, temporary.path(), schema, parts);
    }
    written.iter().map(|(message_type, _)| *message_type).collect()
}

/// The `<Name ...>...</Name>` part of the written envelope (each part declares its own
/// namespace, so it stands alone).
fn part(xml: &str, name: &str) -> String {
    let start = xml.find(&format!("<{name} ")).unwrap_or_else(|| panic!("no {name} in\n{xml}"));
    let close = format!("</{name}>");
    let end = xml.find(&close).unwrap_or_else(|| panic!("no {close} in\n{xml}")) + close.len();
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", &xml[start..end])
}

/// Validates every part against `schema` in one xmllint run; panics with its complaint.
fn check_schema(xmllint: &Path, dir: &Path, temporary: &Path, schema: &str, parts: &[String]) {
    let paths: Vec<_> = parts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let path = temporary.join(format!("{schema}-{index}.xml"));
            std::fs::write(&path, text).expect("written");
            path
        })
        .collect();
    let output = Command::new(xmllint)
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join("xsd").join(format!("{schema}.xsd")))
        .args(&paths)
        .output()
        .expect("xmllint runs");
    let complaint = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{} {schema} parts, refused:\n{complaint}", parts.len());
    assert_eq!(complaint.matches(" validates").count(), parts.len(), "{complaint}");
}
