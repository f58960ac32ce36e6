//! MT103 to and from the model's pacs.008 (issue 20, item 2; `src/iso20022/mt103.rs`).
//!
//! - Against messages other people wrote: every MT103 of the CBPR+ test cases
//!   (`samples/cbpr/PAIRS.tsv`, read from outside the project under the rule of
//!   `common/external.rs`) maps to a credit transfer that agrees with the pacs.008 CBPR+
//!   translated it to, and back to MT103 agrees with the original; the three MT103 returns
//!   (translated to pacs.004) are refused, naming field 72.
//! - Garbage is refused naming the field: not an MT, another message type, a missing
//!   mandatory field, a bad 32A date or amount, and more; a payment that does not fit an
//!   MT103 is refused with every misfit listed, never truncated.
//! - A property: any payment the mapping can carry comes back from MT103 unchanged.

#[path = "common/external.rs"]
mod external;

use std::collections::HashMap;
use std::path::Path;

use corridor::iso20022::mt103::{FieldNote, Mt103Error, NOT_PROVIDED};
use corridor::iso20022::{self, mt103};
use corridor::model::{
    Amount, Bic, Body, ChargeBearer, Conversion, CreditTransfer, Currency, Header, Message, MessageId, Party,
    Rate, Uetr,
};
use proptest::prelude::*;
use time::{Date, OffsetDateTime};

const NOW_UNIX_MS: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------
// A minimal reader of the paired XML: element paths by local name, text and attributes.
// ---------------------------------------------------------------------------------------

/// Every element of an XML text: its path of local names (`Envelope/Document/...`), its
/// text and its attributes by local name. Enough for the CBPR+ samples, which use no
/// entities or CDATA in the elements read here.
fn xml_elements(xml: &str) -> Vec<(String, String, HashMap<String, String>)> {
    let mut elements: Vec<(String, String, HashMap<String, String>)> = Vec::new();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        if let Some((_, index)) = open.last() {
            elements[*index].1.push_str(&rest[..start]);
        }
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            rest = &rest[rest.find("-->").expect("comment closed") + 3..];
            continue;
        }
        let end = rest.find('>').expect("tag closed");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if tag.starts_with('/') {
            open.pop();
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let mut parts = tag.split_whitespace();
        let name = local(parts.next().expect("a name"));
        let attributes = parts
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (local(k).to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        let path = match open.last() {
            Some((parent, _)) => format!("{parent}/{name}"),
            None => name.to_owned(),
        };
        elements.push((path.clone(), String::new(), attributes));
        if !self_closing {
            open.push((path, elements.len() - 1));
        }
    }
    elements
}

fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// The paired pacs.008, read by path under the Document.
struct Pacs008Xml(Vec<(String, String, HashMap<String, String>)>);

impl Pacs008Xml {
    fn find(&self, path: &str) -> Option<&(String, String, HashMap<String, String>)> {
        let full = format!("Envelope/Document/FIToFICstmrCdtTrf/{path}");
        self.0.iter().find(|(p, ..)| *p == full)
    }

    fn text(&self, path: &str) -> Option<String> {
        // Leaf elements' text exactly: a name may end in a space (`GB Engineering `).
        self.find(path).map(|(_, text, _)| text.clone())
    }

    fn required(&self, path: &str) -> String {
        self.text(path).unwrap_or_else(|| panic!("the sample has {path}"))
    }

    fn amount(&self, path: &str) -> Option<Amount> {
        let (_, text, attributes) = self.find(path)?;
        let currency = Currency::parse(&attributes["Ccy"]).unwrap();
        Some(Amount::parse(text.trim(), currency).unwrap())
    }

    fn bic(&self, path: &str) -> Bic {
        Bic::parse(&self.required(&format!("{path}/FinInstnId/BICFI"))).unwrap()
    }

    /// The account (`Othr/Id` or `IBAN`); `NOTPROVIDED` when absent, as Corridor carries it.
    fn account(&self, path: &str) -> String {
        self.text(&format!("{path}/Id/Othr/Id"))
            .or_else(|| self.text(&format!("{path}/Id/IBAN")))
            .unwrap_or_else(|| NOT_PROVIDED.to_owned())
    }
}

const TX: &str = "CdtTrfTxInf";

/// Checks the imported MT103 against its pacs.008 pair on every field Corridor models.
fn check_against_pair(name: &str, imported: &mt103::Imported, xml: &Pacs008Xml) {
    let (header, t) = (&imported.header, &imported.transfer);
    let at = |what: &str| format!("{name}: {what}");
    assert_eq!(t.uetr.to_string(), xml.required(&format!("{TX}/PmtId/UETR")), "{}", at("UETR"));
    assert_eq!(t.instruction_id, xml.required(&format!("{TX}/PmtId/InstrId")), "{}", at("instruction id"));
    assert_eq!(t.end_to_end_id, xml.required(&format!("{TX}/PmtId/EndToEndId")), "{}", at("end-to-end id"));
    assert_eq!(header.message_id.as_str(), xml.required("GrpHdr/MsgId"), "{}", at("message id"));
    assert_eq!(Some(t.amount), xml.amount(&format!("{TX}/IntrBkSttlmAmt")), "{}", at("settlement amount"));
    let date = Date::parse(
        &xml.required(&format!("{TX}/IntrBkSttlmDt")),
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .unwrap();
    assert_eq!(t.settlement_date, date, "{}", at("settlement date"));
    let created = OffsetDateTime::parse(
        &xml.required("GrpHdr/CreDtTm"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        i128::from(header.creation_time_unix_ms) * 1_000_000,
        created.unix_timestamp_nanos(),
        "{}",
        at("creation time")
    );
    check_instructed_amount(name, imported, xml);
    assert_eq!(t.charge_bearer.code(), xml.required(&format!("{TX}/ChrgBr")), "{}", at("charge bearer"));
    assert_eq!(header.sender, xml.bic(&format!("{TX}/InstgAgt")), "{}", at("instructing agent"));
    assert_eq!(header.receiver, xml.bic(&format!("{TX}/InstdAgt")), "{}", at("instructed agent"));
    assert_eq!(t.debtor_agent, xml.bic(&format!("{TX}/DbtrAgt")), "{}", at("debtor agent"));
    assert_eq!(t.creditor_agent, xml.bic(&format!("{TX}/CdtrAgt")), "{}", at("creditor agent"));
    assert_eq!(t.debtor.name, xml.required(&format!("{TX}/Dbtr/Nm")), "{}", at("debtor name"));
    assert_eq!(t.debtor.account, xml.account(&format!("{TX}/DbtrAcct")), "{}", at("debtor account"));
    assert_eq!(t.creditor.name, xml.required(&format!("{TX}/Cdtr/Nm")), "{}", at("creditor name"));
    assert_eq!(t.creditor.account, xml.account(&format!("{TX}/CdtrAcct")), "{}", at("creditor account"));
    let remittance = xml.text(&format!("{TX}/RmtInf/Ustrd")).unwrap_or_default();
    assert_eq!(t.remittance_information, remittance, "{}", at("remittance information"));
}

/// The instructed amount and rate agree with the pair; where CBPR+ carries an instructed
/// amount Corridor cannot (the settlement currency less charges), the import says so.
fn check_instructed_amount(name: &str, imported: &mt103::Imported, xml: &Pacs008Xml) {
    let t = &imported.transfer;
    let rate = xml.text(&format!("{TX}/XchgRate"));
    assert_eq!(t.conversion.as_ref().map(|c| c.rate), rate.map(|r| Rate::parse(&r).unwrap()), "{name}: rate");
    let Some(instructed) = xml.amount(&format!("{TX}/InstdAmt")) else {
        assert!(t.conversion.is_none(), "{name}: no instructed amount in the pair");
        return;
    };
    if instructed == t.instructed_amount() {
        return;
    }
    assert_eq!(
        instructed.currency(),
        t.amount.currency(),
        "{name}: a differing instructed amount in the settlement currency"
    );
    assert!(
        imported.not_modelled.iter().any(|n| n.field == "33B" && n.note.contains(&instructed.to_string())),
        "{name}: the instructed amount {instructed} the model cannot hold must be reported: {:?}",
        imported.not_modelled
    );
}

/// The value of field `tag` in block 4 of an MT text, lines joined by `\n`.
fn mt_field(text: &str, tag: &str) -> Option<String> {
    let text = text.replace("\r\n", "\n");
    let block4 = &text[text.find("{4:\n")? + 4..text.find("\n-}")?];
    let mut value: Option<Vec<&str>> = None;
    for line in block4.split('\n') {
        let new_field = line.starts_with(':') && line[1..].find(':').is_some_and(|i| i <= 3);
        if new_field {
            if value.is_some() {
                break;
            }
            if line[1..].starts_with(&format!("{tag}:")) {
                value = Some(vec![&line[tag.len() + 2..]]);
            }
        } else if let Some(lines) = value.as_mut() {
            lines.push(line);
        }
    }
    value.map(|lines| lines.join("\n"))
}

/// The exported MT103 agrees with the original on the core fields: the UETR, 20, 32A,
/// 70 and 71A as written; the debtor's and creditor's account and name lines; the agents
/// (52A and 57A, or the sender and receiver they default to).
fn check_back_to_mt(name: &str, original: &str, imported: &mt103::Imported) {
    let exported =
        mt103::export(&imported.header, &imported.transfer).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = &exported.text;
    let uetr = format!("{{121:{}}}", imported.transfer.uetr);
    assert!(original.contains(&uetr) && text.contains(&uetr), "{name}: UETR in block 3");
    for tag in ["20", "32A", "70", "71A"] {
        assert_eq!(mt_field(text, tag), mt_field(original, tag), "{name}: field {tag}");
    }
    let party_lines = |text: &str, tags: [&str; 2]| {
        let value = tags.iter().find_map(|tag| mt_field(text, tag)).expect("a party");
        value
            .lines()
            .filter(|l| l.starts_with('/') || l.starts_with("1/"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(party_lines(text, ["50F", "50K"]), party_lines(original, ["50F", "50K"]), "{name}: debtor");
    assert_eq!(party_lines(text, ["59F", "59"]), party_lines(original, ["59F", "59"]), "{name}: creditor");
    let agent = |text: &str, tag: &str, default: Bic| {
        mt_field(text, tag).map_or(default, |bic| Bic::parse(bic.lines().last().unwrap()).unwrap())
    };
    let (sender, receiver) = (imported.header.sender, imported.header.receiver);
    assert_eq!(agent(text, "52A", sender), agent(original, "52A", sender), "{name}: 52A");
    assert_eq!(agent(text, "57A", receiver), agent(original, "57A", receiver), "{name}: 57A");
    let original_33b =
        mt_field(original, "33B").unwrap_or_else(|| mt_field(original, "32A").unwrap()[6..].to_owned());
    let charges_reported = imported.not_modelled.iter().any(|n| n.field == "33B");
    assert_eq!(mt_field(text, "33B").unwrap() == original_33b, !charges_reported, "{name}: 33B");
    // And read back, it is the same payment, with nothing left out.
    let again = mt103::import(text, NOW_UNIX_MS).unwrap();
    assert_eq!((&again.header, &again.transfer), (&imported.header, &imported.transfer), "{name}: read back");
    assert_eq!(again.not_modelled, Vec::<FieldNote>::new(), "{name}: read back");
}

/// The pacs.008 XML Corridor writes for an imported MT103. Corridor pays from the debtor
/// agent straight to the creditor agent (its XML reader refuses anything else), so the
/// message goes from the one to the other; the pair's instructing and instructed agents
/// (the MT's sender and receiver) are checked on the import instead.
fn pacs008_xml(imported: &mt103::Imported) -> String {
    let t = &imported.transfer;
    let header = Header { sender: t.debtor_agent, receiver: t.creditor_agent, ..imported.header.clone() };
    let message = Message::new(header, Body::Pacs008(t.clone())).unwrap();
    let xml = iso20022::write(&message).unwrap();
    let read = iso20022::read(xml.as_bytes()).unwrap();
    assert_eq!((&read.message, read.not_carried.len()), (&message, 0), "Corridor reads its own XML back");
    xml
}

/// The pacs.008 Corridor writes agrees with the pair's on the fields Corridor models.
fn check_written_against_pair(
    name: &str,
    imported: &mt103::Imported,
    written: &Pacs008Xml,
    pair: &Pacs008Xml,
) {
    for path in [
        "PmtId/UETR",
        "PmtId/InstrId",
        "PmtId/EndToEndId",
        "IntrBkSttlmDt",
        "XchgRate",
        "ChrgBr",
        "DbtrAgt/FinInstnId/BICFI",
        "CdtrAgt/FinInstnId/BICFI",
        "Dbtr/Nm",
        "Cdtr/Nm",
        "RmtInf/Ustrd",
    ] {
        let path = format!("{TX}/{path}");
        let (mine, theirs) = (written.text(&path), pair.text(&path));
        if path.ends_with("BICFI") {
            let bic = |text: Option<String>| Bic::parse(&text.unwrap()).unwrap();
            assert_eq!(bic(mine), bic(theirs), "{name}: {path}");
        } else {
            assert_eq!(mine, theirs, "{name}: {path}");
        }
    }
    for path in ["DbtrAcct", "CdtrAcct"] {
        assert_eq!(
            written.account(&format!("{TX}/{path}")),
            pair.account(&format!("{TX}/{path}")),
            "{name}: {path}"
        );
    }
    let settlement = |xml: &Pacs008Xml| xml.amount(&format!("{TX}/IntrBkSttlmAmt")).unwrap();
    assert_eq!(settlement(written), settlement(pair), "{name}: IntrBkSttlmAmt");
    // No InstdAmt means the settlement amount was instructed.
    let instructed =
        |xml: &Pacs008Xml| xml.amount(&format!("{TX}/InstdAmt")).unwrap_or_else(|| settlement(xml));
    let charges_reported = imported.not_modelled.iter().any(|n| n.field == "33B");
    assert_eq!(instructed(written) == instructed(pair), !charges_reported, "{name}: InstdAmt");
}

/// Every MT103 of the CBPR+ pairs: the six translated to pacs.008 map to a credit
/// transfer that agrees with their pair, the pacs.008 XML Corridor writes from it agrees
/// with the pair, and back to MT103 they agree with the original; the three returns are
/// refused, naming 72. The pair's XML is read with a minimal reader here: Corridor's
/// reader refuses all six (intermediaries, charges, a creditor without an account).
#[test]
fn every_cbpr_mt103_agrees_with_its_pacs008_pair_and_back() {
    let Some(dir) = external::iso20022_dir("every_cbpr_mt103_agrees_with_its_pacs008_pair_and_back") else {
        return;
    };
    let cbpr = dir.join("samples/cbpr");
    let pairs = std::fs::read_to_string(cbpr.join("PAIRS.tsv")).unwrap();
    let (mut agreed, mut returns) = (0, 0);
    for row in pairs.lines().skip(1) {
        let columns: Vec<&str> = row.split('\t').collect();
        let (fin, xml, kind) = (columns[0], columns[1], columns[2]);
        if !Path::new(fin).file_name().unwrap().to_string_lossy().starts_with("mt103") {
            continue;
        }
        let original = std::fs::read_to_string(cbpr.join(fin)).unwrap();
        let imported = mt103::import(&original, NOW_UNIX_MS);
        if kind.starts_with("pacs.004") {
            let error = imported.expect_err(fin);
            let is_72 = matches!(&error, Mt103Error::Invalid { field, rule } if field == "72" && rule.contains("RETN"));
            assert!(is_72, "{fin}: {error}");
            returns += 1;
            continue;
        }
        assert!(kind.starts_with("pacs.008"), "{fin}: {kind}");
        let imported = imported.unwrap_or_else(|e| panic!("{fin}: {e}"));
        let pair = Pacs008Xml(xml_elements(&std::fs::read_to_string(cbpr.join(xml)).unwrap()));
        check_against_pair(fin, &imported, &pair);
        let written = Pacs008Xml(xml_elements(&pacs008_xml(&imported)));
        check_written_against_pair(fin, &imported, &written, &pair);
        check_back_to_mt(fin, &original, &imported);
        agreed += 1;
    }
    assert_eq!((agreed, returns), (6, 3), "the nine MT103 of PAIRS.tsv: six pacs.008, three pacs.004");
}

/// What Corridor does not model is reported by field, not dropped: the intermediary
/// (56A), the previous instructing agent (72 /INS/), the reimbursement agents (53A, 54A),
/// the sender's charges (71F), the addresses of 50F and 59F.
#[test]
fn what_the_model_does_not_hold_is_reported_by_field() {
    let imported = mt103::import(&fixture(), NOW_UNIX_MS).unwrap();
    let fields: Vec<&str> = imported.not_modelled.iter().map(|n| n.field.as_str()).collect();
    for field in ["13C", "53A", "56A", "71F", "72", "50F", "59F", "block 3 field 119"] {
        assert!(fields.contains(&field), "{field} must be reported: {fields:?}");
    }
    let addresses = imported.not_modelled.iter().filter(|n| n.note.contains("address")).count();
    assert_eq!(addresses, 2, "one address line each in 50F and 59F: {:?}", imported.not_modelled);
    let plain = plain_fixture();
    assert_eq!(mt103::import(&plain, NOW_UNIX_MS).unwrap().not_modelled, vec![], "nothing left to report");
}

/// The fixture without the fields Corridor does not model.
fn plain_fixture() -> String {
    fixture()
        .replace(":13C:/SNDTIME/1249+0200\r\n", "")
        .replace("{119:STP}", "")
        .replace("2/1 High Street\r\n", "")
        .replace("2/Las Ramblas\r\n", "")
        .replace("3/GB/Epping\r\n", "")
        .replace("3/ES/Barcelona\r\n", "")
        .replace(":53A:BOFSGB2L\r\n", "")
        .replace(":56A:ANBTUS44XXX\r\n", "")
        .replace(":71F:EUR2,50\r\n", "")
        .replace(":72:/INS/ABNANL2AXXX\r\n", "")
}

/// What a node acts on is read strictly: refused with the list of what Corridor would
/// lose, or when it does not go from the debtor agent straight to the creditor agent;
/// else a message the wire accepts, which writes back as the same MT103 payment.
#[test]
fn a_strict_import_refuses_what_would_be_lost_and_other_routes() {
    match mt103::import_strict(&fixture(), NOW_UNIX_MS) {
        Err(Mt103Error::NotModelled(notes)) => {
            assert_eq!(notes, mt103::import(&fixture(), NOW_UNIX_MS).unwrap().not_modelled)
        }
        other => panic!("expected NotModelled, got {other:?}"),
    }
    let message = mt103::import_strict(&plain_fixture(), NOW_UNIX_MS).unwrap();
    let imported = mt103::import(&plain_fixture(), NOW_UNIX_MS).unwrap();
    assert_eq!(
        (message.header(), message.body()),
        (&imported.header, &Body::Pacs008(imported.transfer.clone()))
    );
    let exported = mt103::export_message(&message).unwrap();
    assert_eq!(exported, mt103::export(&imported.header, &imported.transfer).unwrap());
    let elsewhere = plain_fixture().replace(":57A:BSCHESMM", ":57A:BSCHGB2L");
    let error = mt103::import_strict(&elsewhere, NOW_UNIX_MS).unwrap_err();
    assert!(matches!(&error, Mt103Error::Invalid { field, .. } if field == "57A"), "{error}");
    let from_elsewhere = plain_fixture().replace(":52A:CLYDGB2S", ":52A:RBOSGB2L");
    let error = mt103::import_strict(&from_elsewhere, NOW_UNIX_MS).unwrap_err();
    assert!(matches!(&error, Mt103Error::Invalid { field, .. } if field == "52A"), "{error}");
    let report = corridor::model::PaymentStatusReport {
        original_message_id: message.header().message_id.clone(),
        uetr: imported.transfer.uetr,
        status: corridor::model::PaymentStatus::Acsc,
        reason: None,
        additional_information: String::new(),
    };
    let header = Header {
        sender: message.header().receiver,
        receiver: message.header().sender,
        ..message.header().clone()
    };
    let status = Message::new(header, Body::Pacs002(report)).unwrap();
    assert!(matches!(mt103::export_message(&status), Err(Mt103Error::Invalid { .. })));
}

/// An MT103 in input form (`{2:I103...}`, as a bank's own system writes it), saved with
/// LF line ends and written with the options 50K and 59: the sender is block 1's, the
/// receiver block 2's, the creation time the caller's; an urgent priority and the
/// address lines of 50K and 59 are reported.
#[test]
fn an_input_form_mt103_with_50k_and_59_reads() {
    let text = [
        "{1:F01CLYDGB2SAXXX0000000000}{2:I103BSCHESMMXXXXU3003}{3:{121:7a562c67-ca16-48ba-b074-65581be6f001}}{4:",
        ":20:REF-2210-002",
        ":23B:CRED",
        ":32A:991231JPY1000,",
        ":50K:/ACC-1",
        "A Debiter",
        "1 High Street",
        ":59:B Creditor Co",
        "Las Ramblas 1",
        ":71A:BEN",
        "-}",
    ]
    .join("\n");
    let imported = mt103::import(&text, NOW_UNIX_MS).unwrap();
    let (header, t) = (&imported.header, &imported.transfer);
    assert_eq!(
        (header.sender, header.receiver),
        (Bic::parse("CLYDGB2S").unwrap(), Bic::parse("BSCHESMM").unwrap())
    );
    assert_eq!(header.creation_time_unix_ms, NOW_UNIX_MS);
    assert_eq!((t.debtor.name.as_str(), t.debtor.account.as_str()), ("A Debiter", "ACC-1"));
    assert_eq!((t.creditor.name.as_str(), t.creditor.account.as_str()), ("B Creditor Co", NOT_PROVIDED));
    assert_eq!(t.amount, Amount::parse("1000", Currency::parse("JPY").unwrap()).unwrap());
    assert_eq!(t.settlement_date, time::macros::date!(2099 - 12 - 31));
    assert_eq!((t.end_to_end_id.as_str(), t.remittance_information.as_str()), (NOT_PROVIDED, ""));
    assert_eq!(t.charge_bearer, ChargeBearer::Cred);
    let fields: Vec<&str> = imported.not_modelled.iter().map(|n| n.field.as_str()).collect();
    assert_eq!(fields, ["block 2", "50K", "59"], "{:?}", imported.not_modelled);
}

// ---------------------------------------------------------------------------------------
// Garbage in.
// ---------------------------------------------------------------------------------------

/// The project's own MT103, in output form, with fields Corridor does not model.
fn fixture() -> String {
    [
        "{1:F01BSCHESMMXXXX0000000000}{2:O1031249221020CLYDGB2SXXXX00000000002210201249N}\
         {3:{119:STP}{121:7a562c67-ca16-48ba-b074-65581be6f001}}{4:",
        ":20:REF-2210-001",
        ":13C:/SNDTIME/1249+0200",
        ":23B:CRED",
        ":32A:221020EUR65784,32",
        ":33B:EUR65784,32",
        ":50F:/GB29NWBK60161331926819",
        "1/A Debiter",
        "2/1 High Street",
        "3/GB/Epping",
        ":52A:CLYDGB2S",
        ":53A:BOFSGB2L",
        ":56A:ANBTUS44XXX",
        ":57A:BSCHESMM",
        ":59F:/ES9121000418450200051332",
        "1/B Creditor Co",
        "2/Las Ramblas",
        "3/ES/Barcelona",
        ":70:/ROC/E2E-7//Invoice 42",
        ":71A:OUR",
        ":71F:EUR2,50",
        ":72:/INS/ABNANL2AXXX",
        "-}",
    ]
    .join("\r\n")
}

fn refused_at(text: &str, expected_field: &str) -> String {
    match mt103::import(text, NOW_UNIX_MS) {
        Err(Mt103Error::Invalid { field, rule }) => {
            assert_eq!(field, expected_field, "refused for {rule}");
            rule
        }
        other => panic!("expected a refusal at {expected_field}, got {other:?}"),
    }
}

/// Not an MT message at all: refused as such.
#[test]
fn not_an_mt_is_refused() {
    for garbage in [
        "",
        "hello",
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\"/>",
        "{1:",
        "{1:F01}{2:",
    ] {
        let error = mt103::import(garbage, NOW_UNIX_MS).expect_err(garbage);
        assert!(matches!(error, Mt103Error::Invalid { .. }), "{garbage:?}: {error}");
    }
    assert!(refused_at("hello", "message").contains("not a SWIFT MT message"));
    let huge = format!("{}{}", fixture(), " ".repeat(mt103::MESSAGE_BYTES_MAX));
    assert!(refused_at(&huge, "message").contains("bytes"));
    let no_text = fixture().split("{4:").next().unwrap().to_owned();
    refused_at(&no_text, "block 4");
}

/// Another message type (an MT202) is refused, naming it.
#[test]
fn a_wrong_message_type_is_refused() {
    let mt202 = fixture().replace("{2:O103", "{2:O202");
    assert!(refused_at(&mt202, "block 2").contains("202"));
}

/// Each mandatory field, missing, is refused by name; so is the UETR of block 3.
#[test]
fn missing_mandatory_fields_are_refused_by_name() {
    for (line, field) in [
        (":20:REF-2210-001\r\n", "20"),
        (":23B:CRED\r\n", "23B"),
        (":32A:221020EUR65784,32\r\n", "32A"),
        (":71A:OUR\r\n", "71A"),
        (":50F:/GB29NWBK60161331926819\r\n1/A Debiter\r\n2/1 High Street\r\n3/GB/Epping\r\n", "50a"),
        (":59F:/ES9121000418450200051332\r\n1/B Creditor Co\r\n2/Las Ramblas\r\n3/ES/Barcelona\r\n", "59a"),
        ("{121:7a562c67-ca16-48ba-b074-65581be6f001}", "block 3 field 121"),
    ] {
        let text = fixture().replace(line, "");
        assert_ne!(text, fixture(), "the fixture holds {line:?}");
        refused_at(&text, field);
    }
}

/// A bad 32A: an impossible date, an amount with a dot, too many decimals, zero, too
/// long, an unknown currency.
#[test]
fn a_bad_32a_date_or_amount_is_refused() {
    for bad in [
        "221320EUR65784,32",
        "220230EUR65784,32",
        "22102EUR65784,32",
        "221020EUR65784.32",
        "221020EUR65784,321",
        "221020EUR65784",
        "221020EUR0,",
        "221020EUR1234567890123456,",
        "221020XXX65784,32",
        "221020EUR,5",
        "221020EUR1,2,3",
    ] {
        let text = fixture().replace(":32A:221020EUR65784,32", &format!(":32A:{bad}"));
        refused_at(&text, "32A");
    }
    let yen = fixture().replace("221020EUR65784,32", "221020JPY65784,3").replace(":33B:EUR65784,32\r\n", "");
    assert!(refused_at(&yen, "32A").contains("decimal"));
}

/// Other invalid input: fields out of order or repeated, characters outside the X set,
/// a rate without a conversion, a UETR that is not v4, a return, a debtor by BIC only.
#[test]
fn other_invalid_input_is_refused_naming_the_field() {
    let swapped = fixture().replace(":23B:CRED\r\n", "").replace(":20:", ":23B:CRED\r\n:20:");
    refused_at(&swapped, "20");
    let twice = fixture().replace(":71A:OUR", ":71A:OUR\r\n:71A:SHA");
    assert!(refused_at(&twice, "71A").contains("more than once"));
    let umlaut = fixture().replace("1/B Creditor Co", "1/B Créditeur");
    assert!(refused_at(&umlaut, "59F").contains("X character set"));
    let rate_alone = fixture().replace(":50F:", ":36:1,1\r\n:50F:");
    refused_at(&rate_alone, "36");
    let foreign_without_rate = fixture().replace(":33B:EUR65784,32", ":33B:USD70000,");
    assert!(refused_at(&foreign_without_rate, "36").contains("mandatory"));
    let v1 = fixture().replace("7a562c67-ca16-48ba", "7a562c67-ca16-18ba");
    refused_at(&v1, "block 3 field 121");
    let retn = fixture().replace(":72:/INS/ABNANL2AXXX", ":72:/RETN/99\r\n/AC04/");
    refused_at(&retn, "72");
    let by_bic = fixture().replace(
        ":50F:/GB29NWBK60161331926819\r\n1/A Debiter\r\n2/1 High Street\r\n3/GB/Epping",
        ":50A:ANBTUS44XXX",
    );
    refused_at(&by_bic, "50A");
    let unknown = fixture().replace(":71A:OUR", ":71A:OUR\r\n:99Z:NOPE");
    assert!(refused_at(&unknown, "99Z").contains("not a field of MT103"));
    let charge = fixture().replace(":71A:OUR", ":71A:ALL");
    refused_at(&charge, "71A");
    let long_line = fixture().replace("1/A Debiter", &format!("1/{}", "A".repeat(40)));
    refused_at(&long_line, "50F");
    let colon_line = fixture().replace(":72:/INS/ABNANL2AXXX", ":72:/INS/ABNANL2AXXX\r\n:ACC/1");
    assert!(refused_at(&colon_line, "72").contains("begins with"));
}

// ---------------------------------------------------------------------------------------
// The model out: what does not fit is refused, listed.
// ---------------------------------------------------------------------------------------

fn sample_payment() -> (Header, CreditTransfer) {
    let imported = mt103::import(&fixture(), NOW_UNIX_MS).unwrap();
    (imported.header, imported.transfer)
}

/// Over-long or out-of-set values, going to MT103, are refused with every misfit named,
/// never truncated; a payment that fits is written.
#[test]
fn what_does_not_fit_an_mt103_is_refused_and_listed() {
    let (header, transfer) = sample_payment();
    assert!(mt103::export(&header, &transfer).is_ok());
    let mut misfit = transfer.clone();
    misfit.instruction_id = "INSTRUCTION-ID-0001".into();
    misfit.debtor = Party::new(&format!("{}Holdings Ltd", "Long Name Trading ".repeat(7)), "ACC-1").unwrap();
    misfit.creditor = Party::new("Müller & Söhne", "ACC-2").unwrap();
    misfit.charge_bearer = ChargeBearer::Slev;
    misfit.remittance_information = "Invoice 42 ".repeat(12);
    let Err(Mt103Error::DoesNotFit(misfits)) = mt103::export(&header, &misfit) else {
        panic!("an over-long payment must be refused");
    };
    let fields: Vec<&str> = misfits.iter().map(|m| m.field.as_str()).collect();
    assert_eq!(fields, ["20", "50F", "59F", "70", "71A"], "{misfits:?}");
    assert!(misfits[2].note.contains("X character set"), "{}", misfits[2]);
}

/// What the MT103 text does not carry of the header and the conversion is listed.
#[test]
fn what_the_mt103_does_not_carry_is_listed() {
    let (mut header, mut transfer) = sample_payment();
    assert_eq!(mt103::export(&header, &transfer).unwrap().not_carried, vec![]);
    header.message_id = MessageId::parse("0123456789abcdef0123456789abcdef").unwrap();
    header.creation_time_unix_ms += 1_500;
    header.sequence_number = 7;
    let instructed = Amount::parse("70000", Currency::parse("USD").unwrap()).unwrap();
    let rate = Rate::parse("0.939776").unwrap();
    transfer.conversion = Some(Conversion { instructed, rate, quote_id: Some("Q-1".into()) });
    transfer.check_conversion().unwrap();
    let notes = mt103::export(&header, &transfer).unwrap().not_carried;
    let fields: Vec<&str> = notes.iter().map(|n| n.field.as_str()).collect();
    assert_eq!(
        fields,
        ["header.message_id", "header.creation_time", "header.sequence_number", "conversion.quote_id"]
    );
    let mut other = header.clone();
    other.uetr = Some(Uetr::generate());
    assert!(
        matches!(mt103::export(&other, &transfer), Err(Mt103Error::Invalid { field, .. }) if field == "header.uetr")
    );
}

// ---------------------------------------------------------------------------------------
// Round trip: model -> MT103 -> model.
// ---------------------------------------------------------------------------------------

const X_TEXT: &str = "[A-Za-z0-9/?:().,'+ -]";

fn regex(pattern: &str) -> proptest::string::RegexGeneratorStrategy<String> {
    proptest::string::string_regex(pattern).unwrap()
}

fn bic() -> impl Strategy<Value = Bic> {
    ("[A-Z]{6}[A-Z0-9]{2}", prop::option::of("[A-Z0-9]{3}"))
        .prop_map(|(head, branch)| Bic::parse(&format!("{head}{}", branch.unwrap_or_default())).unwrap())
}

fn party(account: BoxedStrategy<String>) -> impl Strategy<Value = Party> {
    (regex(&format!("[A-Za-z0-9]{X_TEXT}{{0,131}}")), account)
        .prop_map(|(name, account)| Party::new(&name, &account).unwrap())
}

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(vec!["USD", "EUR", "JPY", "KWD", "RUB", "CNY"])
        .prop_map(|c| Currency::parse(c).unwrap())
}

/// A conversion and the settlement amount it gives, or none and an amount.
fn amounts() -> impl Strategy<Value = Option<(Amount, Option<Conversion>)>> {
    (currency(), currency(), 1i64..1_000_000_000_000, 1u64..100_000_000, 0u32..4, any::<bool>()).prop_map(
        |(from, to, minor, mantissa, scale, converted)| {
            let instructed = Amount::from_minor_units(minor, from).unwrap();
            if !converted || from == to {
                return Some((instructed, None));
            }
            let digits = format!("{mantissa:0>width$}", width = scale as usize + 1);
            let (whole, fraction) = digits.split_at(digits.len() - scale as usize);
            let rate = Rate::parse(format!("{whole}.{fraction}").trim_end_matches('.')).unwrap();
            // Within the 15 characters of an MT amount.
            let settled =
                rate.convert(instructed, to).ok().filter(|a| a.minor_units() < 1_000_000_000_000)?;
            Some((settled, Some(Conversion { instructed, rate, quote_id: None })))
        },
    )
}

fn payment() -> impl Strategy<Value = (Header, CreditTransfer)> {
    let ids = ("[A-Za-z0-9][A-Za-z0-9.-]{0,14}[A-Za-z0-9]?", prop::option::of("[A-Za-z0-9.-]{1,35}"));
    let account = "[A-Za-z0-9][A-Za-z0-9.-]{0,33}".boxed();
    let creditor_account = prop_oneof![account.clone(), Just(NOT_PROVIDED.to_owned())].boxed();
    let text = regex(&format!("([A-Za-z0-9]{X_TEXT}{{0,79}})?"));
    let when = (0i64..36_524, 0i64..1_440, any::<u128>(), any::<bool>());
    let parties = (party(account), bic(), party(creditor_account), bic(), text, 0usize..3);
    (ids, amounts(), when, parties).prop_filter_map(
        "a rate that converts",
        |(ids, amounts, when, parties)| {
            let (amount, conversion) = amounts?;
            let (days, minutes, random, possible_duplicate) = when;
            let epoch_2000_ms = 946_684_800_000;
            let uetr = Uetr::parse(&uuid_v4(random)).unwrap();
            let (debtor, debtor_agent, creditor, creditor_agent, remittance, bearer) = parties;
            let transfer = CreditTransfer {
                instruction_id: ids.0.clone(),
                end_to_end_id: ids.1.unwrap_or_else(|| NOT_PROVIDED.to_owned()),
                uetr,
                amount,
                conversion,
                settlement_date: Date::from_julian_day(2_451_545 + days as i32).unwrap(),
                charge_bearer: [ChargeBearer::Debt, ChargeBearer::Shar, ChargeBearer::Cred][bearer],
                debtor,
                debtor_agent,
                creditor,
                creditor_agent,
                remittance_information: remittance,
            };
            let header = Header {
                message_id: MessageId::parse(&ids.0).unwrap(),
                uetr: Some(uetr),
                sender: debtor_agent,
                receiver: creditor_agent,
                creation_time_unix_ms: epoch_2000_ms + (days * 1_440 + minutes) * 60_000,
                sequence_number: 0,
                possible_duplicate,
            };
            Some((header, transfer))
        },
    )
}

fn uuid_v4(random: u128) -> String {
    let bits = (random & !(0xfu128 << 76) | (0x4u128 << 76)) & !(0x3u128 << 62) | (0x2u128 << 62);
    let hex = format!("{bits:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

proptest! {
    /// Any payment within MT103's limits comes back from MT103 as it went, header
    /// included, with nothing reported; except that a payment with an end-to-end id and
    /// no remittance information comes back with `/ROC/<id>` as its remittance, as CBPR+
    /// reads a 70 that holds only the reference.
    #[test]
    fn model_to_mt103_and_back_keeps_the_modelled_fields((header, transfer) in payment()) {
        let exported = mt103::export(&header, &transfer).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&exported.not_carried, &Vec::<FieldNote>::new());
        let imported = mt103::import(&exported.text, NOW_UNIX_MS).map_err(|e| TestCaseError::fail(format!("{e}\n{}", exported.text)))?;
        let mut expected = transfer.clone();
        if expected.remittance_information.is_empty() && expected.end_to_end_id != NOT_PROVIDED {
            expected.remittance_information = format!("/ROC/{}", expected.end_to_end_id);
        }
        prop_assert_eq!(&imported.header, &header);
        prop_assert_eq!(&imported.transfer, &expected);
        prop_assert_eq!(&imported.not_modelled, &Vec::<FieldNote>::new());
    }
}

proptest! {
    /// Whatever the bytes, the reader answers with a model or an error, never a panic;
    /// and what it reads and writes back reads back the same (the `mt103` fuzz target's
    /// invariants, `corridor::fuzzing::mt103`): random text, and the fixture with a
    /// stretch replaced by random text.
    #[test]
    fn garbage_never_panics_and_what_reads_writes_back(
        noise in regex("[{}:0-9A-Za-z\r\n/,. -]{0,120}"),
        at in 0usize..600,
        cut in 0usize..40,
        plain in any::<bool>(),
    ) {
        corridor::fuzzing::mt103(noise.as_bytes());
        let fixture = if plain { plain_fixture() } else { fixture() };
        let boundary = |from: usize| fixture.char_indices().map(|(i, _)| i).find(|i| *i >= from).unwrap_or(fixture.len());
        let start = boundary(at.min(fixture.len()));
        let end = boundary(start + cut);
        let mutated = format!("{}{}{}", &fixture[..start], noise, &fixture[end..]);
        corridor::fuzzing::mt103(mutated.as_bytes());
    }
}
