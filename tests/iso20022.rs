//! ISO 20022 XML at the edge (issue 20): what Corridor writes validates against the
//! official schemas, AppHdr and Document both; what it reads is checked like the schema
//! and the model check it, with every error naming the element's path; nothing is
//! dropped silently; and hostile input (not XML, a foreign namespace, a billion laughs,
//! an oversized file) is refused with a clear error.
//!
//! The schemas and the samples come from outside the project (`../shared/iso20022` or
//! `$CORRIDOR_ISO20022_DIR`) and `xmllint` from Debian's `libxml2-utils`: the tests that
//! need them follow tests/common/external.rs (skipped with a notice where absent, a
//! failure under CI). Fixtures are built here, from the model; no sample is copied.

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::external::{XMLLINT, iso20022_dir};
use common::{IR, RU, amount, bic, credit_transfer, header};
use corridor::iso20022::{self, XML_BYTES_MAX, XmlError};
use corridor::model::*;

// ---------------------------------------------------------------------------------
// Fixtures: model messages, each a different shape of pacs.008.

/// Payments that exercise every element the export writes: a plain one, a converted one
/// (instructed amount and rate, with a quote id), one in a currency without decimals with
/// IBAN accounts, a possible duplicate, and one without remittance information.
fn pacs008_fixtures() -> Vec<(&'static str, Message)> {
    let plain = {
        let uetr = Uetr::generate();
        Message::new(header(RU, IR, Some(uetr)), Body::Pacs008(credit_transfer(uetr))).unwrap()
    };
    let converted = {
        let uetr = Uetr::generate();
        let mut transfer = credit_transfer(uetr);
        transfer.conversion = Some(Conversion {
            instructed: amount("1000.00", "RUB"),
            rate: Rate::parse("512.25").unwrap(),
            quote_id: Some("Q-2026-0001".into()),
        });
        transfer.amount = amount("512250", "IRR");
        transfer.charge_bearer = ChargeBearer::Debt;
        Message::new(header(RU, IR, Some(uetr)), Body::Pacs008(transfer)).unwrap()
    };
    let yen = {
        let uetr = Uetr::generate();
        let mut transfer = credit_transfer(uetr);
        transfer.amount = amount("150000", "JPY");
        transfer.debtor = Party::new("Ivan & Co <Moscow>", "DE89370400440532013000").unwrap();
        transfer.creditor = Party::new("Sara Ahmadi", "GB29NWBK60161331926819").unwrap();
        transfer.charge_bearer = ChargeBearer::Cred;
        let mut header = header(RU, IR, Some(uetr));
        header.sequence_number = 0;
        Message::new(header, Body::Pacs008(transfer)).unwrap()
    };
    let duplicate = {
        let uetr = Uetr::generate();
        let mut transfer = credit_transfer(uetr);
        transfer.remittance_information = String::new();
        transfer.charge_bearer = ChargeBearer::Slev;
        let mut header = header(RU, IR, Some(uetr));
        header.possible_duplicate = true;
        header.creation_time_unix_ms = 1_764_921_600_007;
        Message::new(header, Body::Pacs008(transfer)).unwrap()
    };
    vec![("plain", plain), ("converted", converted), ("yen-iban", yen), ("duplicate", duplicate)]
}

fn write(message: &Message) -> String {
    iso20022::write(message).unwrap_or_else(|e| panic!("{} does not write: {e}", message.message_type()))
}

// ---------------------------------------------------------------------------------
// xmllint and the schemas.

/// `xmllint` and the ISO 20022 folder, or `None` (after the notice) where absent.
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    let xmllint = XMLLINT.require(test)?;
    let dir = iso20022_dir(test)?;
    Some((xmllint, dir))
}

/// One part (`AppHdr` or `Document`) of a wrapped message, as xmllint extracts it.
fn extract_part(xmllint: &Path, file: &Path, part: &str) -> String {
    let output = Command::new(xmllint)
        .args(["--xpath", &format!("/*/*[local-name()=\"{part}\"]")])
        .arg(file)
        .output()
        .expect("xmllint runs");
    assert!(output.status.success(), "xmllint found no {part} in {}", file.display());
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Validates `xml` against `schema` in `dir/xsd`: `Ok`, or xmllint's complaint.
fn validate_text(xmllint: &Path, dir: &Path, schema: &str, xml: &str) -> Result<(), String> {
    let mut child = Command::new(xmllint)
        .args(["--noout", "--nonet", "--schema"])
        .arg(dir.join("xsd").join(schema))
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xmllint runs");
    child.stdin.take().expect("stdin").write_all(xml.as_bytes()).expect("xmllint reads");
    let output = child.wait_with_output().expect("xmllint ends");
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

/// Validates both parts of a wrapped message text against their schemas.
fn validate_wrapped(xmllint: &Path, dir: &Path, definition: &str, xml: &str) -> Result<(), String> {
    let file = tempfile::NamedTempFile::new().expect("a temp file");
    std::fs::write(file.path(), xml).expect("written");
    let app_hdr = extract_part(xmllint, file.path(), "AppHdr");
    validate_text(xmllint, dir, "head.001.001.02.xsd", &app_hdr).map_err(|e| format!("AppHdr: {e}"))?;
    let document = extract_part(xmllint, file.path(), "Document");
    validate_text(xmllint, dir, &format!("{definition}.xsd"), &document).map_err(|e| format!("Document: {e}"))
}

// ---------------------------------------------------------------------------------
// Export.

/// Every shape of pacs.008 Corridor sends validates against the official schemas, AppHdr
/// and Document both (issue 20, "What must be shown"): namespaces, UTC date-times,
/// decimals, BICFI, UETR, charge bearer, conversion, supplementary data.
#[test]
fn pacs008_export_validates_against_the_official_schemas() {
    let Some((xmllint, dir)) = tools("pacs008_export_validates_against_the_official_schemas") else { return };
    for (name, message) in pacs008_fixtures() {
        let xml = write(&message);
        validate_wrapped(&xmllint, &dir, "pacs.008.001.08", &xml)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
    }
}

/// The export writes what the issue asks, where a reader finds it: times in UTC with the
/// offset written, amounts with exactly the currency's decimals, the conversion, the
/// charge bearer code, the UETR and BICs.
#[test]
fn pacs008_export_writes_each_modelled_value_in_its_element() {
    let fixtures = pacs008_fixtures();
    let (_, converted) = &fixtures[1];
    let xml = write(converted);
    let Body::Pacs008(transfer) = converted.body() else { unreachable!() };
    for expected in [
        "<MsgDefIdr>pacs.008.001.08</MsgDefIdr>".to_owned(),
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">".to_owned(),
        "<AppHdr xmlns=\"urn:iso:std:iso:20022:tech:xsd:head.001.001.02\">".to_owned(),
        "<IntrBkSttlmAmt Ccy=\"IRR\">512250.00</IntrBkSttlmAmt>".to_owned(),
        "<InstdAmt Ccy=\"RUB\">1000.00</InstdAmt>".to_owned(),
        "<XchgRate>512.25</XchgRate>".to_owned(),
        "<ChrgBr>DEBT</ChrgBr>".to_owned(),
        format!("<UETR>{}</UETR>", transfer.uetr),
        "<BICFI>BANKRUMMXXX</BICFI>".to_owned(),
        "<QtId>Q-2026-0001</QtId>".to_owned(),
        "<SeqNb>7</SeqNb>".to_owned(),
    ] {
        assert!(xml.contains(&expected), "{expected} missing from\n{xml}");
    }
    let (_, duplicate) = &fixtures[3];
    let xml = write(duplicate);
    assert!(xml.contains("<CreDt>2025-12-05T08:00:00.007+00:00</CreDt>"), "{xml}");
    assert!(xml.contains("<PssblDplct>true</PssblDplct>"), "{xml}");
    let (_, yen) = &fixtures[2];
    let xml = write(yen);
    assert!(xml.contains("<IntrBkSttlmAmt Ccy=\"JPY\">150000</IntrBkSttlmAmt>"), "{xml}");
    assert!(xml.contains("<IBAN>DE89370400440532013000</IBAN>"), "{xml}");
    assert!(xml.contains("<Nm>Ivan &amp; Co &lt;Moscow&gt;</Nm>"), "{xml}");
    assert!(!xml.contains("SplmtryData"), "nothing to carry, no supplementary data:\n{xml}");
}

/// What Corridor writes it reads back as the same message, with nothing left over: the
/// round trip loses no modelled field.
#[test]
fn pacs008_round_trips_through_xml() {
    for (name, message) in pacs008_fixtures() {
        let xml = write(&message);
        let imported = iso20022::read(xml.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert_eq!(imported.message, message, "{name}");
        assert!(imported.not_carried.is_empty(), "{name}: {:?}", imported.not_carried);
        assert_eq!(iso20022::read_strict(xml.as_bytes()).unwrap(), message, "{name}");
    }
}

/// A rate the schema's BaseOneRate cannot hold (more than 11 digits) is refused at
/// export with the element named, never rounded silently.
#[test]
fn an_unwritable_rate_is_refused_not_rounded() {
    let (_, message) = pacs008_fixtures().remove(1);
    let Body::Pacs008(mut transfer) = message.body().clone() else { unreachable!() };
    let conversion = transfer.conversion.as_mut().unwrap();
    conversion.rate = Rate::parse("512.123456789012").unwrap();
    let message = Message::new(message.header().clone(), Body::Pacs008(transfer)).unwrap();
    let error = iso20022::write(&message).unwrap_err();
    assert!(matches!(&error, XmlError::Unwritable { path, .. } if path.ends_with("/XchgRate")), "{error}");
}

// ---------------------------------------------------------------------------------
// Broken exports: refused by xmllint and by Corridor's reader, each naming the place.

/// One way to break a valid export, and the path Corridor's reader must name.
struct Breakage {
    name: &'static str,
    edit: Box<dyn Fn(&str) -> String>,
    path: &'static str,
}

/// `xml` with the first `from` after `anchor` replaced by `to` (which must be there).
fn replace_after(xml: &str, anchor: &str, from: &str, to: &str) -> String {
    let start = xml.find(anchor).unwrap_or_else(|| panic!("{anchor:?} is not in\n{xml}"));
    let at = start
        + xml[start..].find(from).unwrap_or_else(|| panic!("{from:?} is not after {anchor:?} in\n{xml}"));
    format!("{}{to}{}", &xml[..at], &xml[at + from.len()..])
}

/// `xml` without the line holding `needle`.
fn without_line(xml: &str, needle: &str) -> String {
    assert!(xml.contains(needle), "{needle:?} is not in\n{xml}");
    xml.lines().filter(|line| !line.contains(needle)).collect::<Vec<_>>().join("\n")
}

fn breakages(message: &Message) -> Vec<Breakage> {
    let Body::Pacs008(transfer) = message.body() else { unreachable!() };
    let uetr = transfer.uetr.to_string();
    let mut not_v4 = uetr.clone();
    not_v4.replace_range(14..15, "1");
    let tx = "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]";
    vec![
        Breakage {
            name: "bad BIC",
            edit: Box::new(|xml| replace_after(xml, "<CdtrAgt>", "BANKIRTHXXX", "BANKI1THXXX")),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/CdtrAgt/FinInstnId/BICFI",
        },
        Breakage {
            name: "elements out of order",
            edit: Box::new(|xml| {
                let date = xml.lines().find(|l| l.contains("<IntrBkSttlmDt>")).unwrap().trim().to_owned();
                let xml = without_line(xml, "<IntrBkSttlmDt>");
                replace_after(&xml, "</PmtId>", "<IntrBkSttlmAmt", &format!("{date}<IntrBkSttlmAmt"))
            }),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt",
        },
        Breakage {
            name: "too many decimals",
            edit: Box::new(|xml| replace_after(xml, "<IntrBkSttlmAmt", ">1234.56<", ">1234.560001<")),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt",
        },
        Breakage {
            name: "a UETR that is not a version 4 UUID",
            edit: Box::new(move |xml| replace_after(xml, "<UETR>", &uetr, &not_v4)),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/PmtId/UETR",
        },
        Breakage {
            name: "a missing mandatory element (ChrgBr)",
            edit: Box::new(|xml| without_line(xml, "<ChrgBr>")),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/ChrgBr",
        },
        Breakage {
            name: "a missing mandatory element (EndToEndId)",
            edit: Box::new(|xml| without_line(xml, "<EndToEndId>")),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/PmtId/EndToEndId",
        },
        Breakage {
            name: "an unknown currency",
            edit: Box::new(|xml| replace_after(xml, "<IntrBkSttlmAmt", "Ccy=\"RUB\"", "Ccy=\"RUX\"")),
            path: "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt/@Ccy",
        },
    ]
    .into_iter()
    .inspect(|b| assert!(b.path.starts_with(tx), "{}", b.name))
    .collect()
}

/// Corridor's reader refuses each broken export and names the broken element's path
/// (the currency error names the attribute, `.../IntrBkSttlmAmt/@Ccy`).
#[test]
fn broken_exports_are_refused_by_the_reader_with_the_element_path() {
    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message);
    for breakage in breakages(&message) {
        let broken = (breakage.edit)(&xml);
        let error = iso20022::read(broken.as_bytes()).expect_err(breakage.name);
        assert_eq!(error.path(), Some(breakage.path), "{}: {error}", breakage.name);
    }
}

/// xmllint refuses the same broken exports against the official schema (except the
/// unknown currency, which the schema's pattern admits): the breakages are real.
#[test]
fn broken_exports_are_refused_by_xmllint() {
    let Some((xmllint, dir)) = tools("broken_exports_are_refused_by_xmllint") else { return };
    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message);
    validate_wrapped(&xmllint, &dir, "pacs.008.001.08", &xml).expect("the unbroken export is valid");
    for breakage in breakages(&message).iter().filter(|b| b.name != "an unknown currency") {
        let broken = (breakage.edit)(&xml);
        assert!(validate_wrapped(&xmllint, &dir, "pacs.008.001.08", &broken).is_err(), "{}", breakage.name);
    }
}

// ---------------------------------------------------------------------------------
// Nothing dropped silently.

/// An element Corridor does not model is reported by its path, and `read_strict`
/// refuses the message with that list; the modelled fields still read.
#[test]
fn an_element_corridor_does_not_model_is_reported_by_path() {
    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message).replace(
        "</InstdAgt>",
        "</InstdAgt>\n<IntrmyAgt1><FinInstnId><BICFI>ANBTUS44XXX</BICFI></FinInstnId></IntrmyAgt1>",
    );
    let xml = xml.replace("<Nm>Ivan Petrov</Nm>", "<Nm>Ivan Petrov</Nm><CtryOfRes>RU</CtryOfRes>");
    let imported = iso20022::read(xml.as_bytes()).unwrap();
    assert_eq!(imported.message, message);
    let tx = "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]";
    assert_eq!(imported.not_carried, vec![format!("{tx}/IntrmyAgt1"), format!("{tx}/Dbtr/CtryOfRes")]);
    match iso20022::read_strict(xml.as_bytes()) {
        Err(XmlError::NotCarried { paths }) => assert_eq!(paths, imported.not_carried),
        other => panic!("expected NotCarried, got {other:?}"),
    }
    let another_method = write(&message).replace("<SttlmMtd>CLRG</SttlmMtd>", "<SttlmMtd>INDA</SttlmMtd>");
    let imported = iso20022::read(another_method.as_bytes()).unwrap();
    assert_eq!(imported.not_carried, vec!["/Envelope/Document/FIToFICstmrCdtTrf/GrpHdr/SttlmInf/SttlmMtd"]);
}

/// What CBPR+ messages hold and Corridor does not model is reported by path, not refused
/// whole (before, each of these was refused as invalid): a hop of a longer chain (the
/// AppHdr's `To` and `InstdAgt` another bank than the creditor agent), an AppHdr party
/// given as an organisation (`OrgId`), an instructed amount differing by charges taken
/// on the way with a rate in a single currency. The payment read is the one between the
/// debtor and creditor agents, equal to the original; `read_strict` refuses each.
#[test]
fn what_cbpr_holds_beyond_the_model_is_reported_not_refused() {
    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message);
    let tx = "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]";
    let via = replace_after(
        &replace_after(&xml, "<To>", "BANKIRTHXXX", "ANBTUS44XXX"),
        "<InstdAgt>",
        "BANKIRTHXXX",
        "ANBTUS44XXX",
    );
    let (fr_start, fr_end) = (xml.find("<Fr>").unwrap(), xml.find("</Fr>").unwrap() + "</Fr>".len());
    let org_id = format!("{}<Fr><OrgId/></Fr>{}", &xml[..fr_start], &xml[fr_end..]);
    let charged =
        xml.replacen("<ChrgBr>", "<InstdAmt Ccy=\"RUB\">1240.00</InstdAmt><XchgRate>1</XchgRate><ChrgBr>", 1);
    let cases = [
        (via, vec!["/Envelope/AppHdr/To".to_owned(), format!("{tx}/InstdAgt")]),
        (org_id.clone(), vec!["/Envelope/AppHdr/Fr".to_owned()]),
        (charged, vec![format!("{tx}/InstdAmt"), format!("{tx}/XchgRate")]),
    ];
    for (xml, expected) in cases {
        let imported = iso20022::read(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!((&imported.message, &imported.not_carried), (&message, &expected));
        match iso20022::read_strict(xml.as_bytes()) {
            Err(XmlError::NotCarried { paths }) => assert_eq!(paths, expected),
            other => panic!("expected NotCarried, got {other:?}"),
        }
    }
    // A party named by neither the AppHdr nor the group header stays refused, by path.
    let (agent_start, agent_end) =
        (org_id.find("<InstgAgt>").unwrap(), org_id.find("</InstgAgt>").unwrap() + "</InstgAgt>".len());
    let nameless = format!("{}{}", &org_id[..agent_start], &org_id[agent_end..]);
    let error = iso20022::read(nameless.as_bytes()).unwrap_err();
    assert_eq!(error.path(), Some("/Envelope/Document/FIToFICstmrCdtTrf/GrpHdr/MsgId"), "{error}");
}

/// A bare Document (no AppHdr) reads with its instructing and instructed agents as sender
/// and receiver; a group header that contradicts the AppHdr is refused by path.
#[test]
fn a_bare_document_reads_and_a_contradicting_group_header_is_refused() {
    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message);
    let start = xml.find("<Document").unwrap();
    let end = xml.find("</Document>").unwrap() + "</Document>".len();
    let bare = &xml[start..end];
    let imported = iso20022::read(bare.as_bytes()).unwrap();
    assert_eq!(imported.message.body(), message.body());
    assert_eq!(imported.message.header().sender, bic(RU));
    assert_eq!(imported.message.header().receiver, bic(IR));
    let other_id = xml.replacen(
        &format!("<MsgId>{}</MsgId>", message.header().message_id),
        "<MsgId>SOMETHING-ELSE</MsgId>",
        1,
    );
    let error = iso20022::read(other_id.as_bytes()).unwrap_err();
    assert_eq!(error.path(), Some("/Envelope/Document/FIToFICstmrCdtTrf/GrpHdr/MsgId"), "{error}");
}

// ---------------------------------------------------------------------------------
// Garbage.

/// Garbage is refused with a clear error, before anything is read: not XML, a foreign
/// or unsupported namespace, a DTD with a billion-laughs entity, input over the size
/// limit, an AppHdr alone, text outside the root.
#[test]
fn garbage_is_refused_with_a_clear_error() {
    let not_xml = iso20022::read(b"this is not XML at all").unwrap_err();
    assert!(matches!(not_xml, XmlError::NotXml { .. } | XmlError::Invalid { .. }), "{not_xml}");
    let unclosed = iso20022::read(
        b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\"><FIToFICstmrCdtTrf>",
    )
    .unwrap_err();
    assert!(matches!(unclosed, XmlError::NotXml { .. }), "{unclosed}");
    let binary = iso20022::read(&[0xff, 0xfe, 0x00, 0x3c]).unwrap_err();
    assert!(matches!(binary, XmlError::NotXml { .. }), "{binary}");

    let foreign = iso20022::read(b"<Document xmlns=\"urn:example:not-iso\"><X/></Document>").unwrap_err();
    assert_eq!(foreign.path(), Some("/Document"), "{foreign}");
    assert!(foreign.to_string().contains("not an ISO 20022 message namespace"), "{foreign}");
    let newer =
        iso20022::read(b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.12\"/>").unwrap_err();
    assert!(newer.to_string().contains("does not read pacs.008.001.12"), "{newer}");

    let laughs = b"<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n \
        <!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n \
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n]>\n\
        <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\"><FIToFICstmrCdtTrf>&lol3;</FIToFICstmrCdtTrf></Document>";
    assert_eq!(iso20022::read(laughs).unwrap_err(), XmlError::DocumentType);
    let entity = b"<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08\">&lol;</Document>";
    assert!(matches!(iso20022::read(entity).unwrap_err(), XmlError::NotXml { .. }));

    let mut oversized = b"<Document>".to_vec();
    oversized.resize(XML_BYTES_MAX + 1, b' ');
    assert_eq!(iso20022::read(&oversized).unwrap_err(), XmlError::TooLarge { bytes: XML_BYTES_MAX + 1 });

    let deep = "<a>".repeat(iso20022::XML_DEPTH_MAX + 1);
    assert!(matches!(iso20022::read(deep.as_bytes()).unwrap_err(), XmlError::NotXml { .. }));

    let (_, message) = pacs008_fixtures().remove(0);
    let xml = write(&message);
    let start = xml.find("<AppHdr").unwrap();
    let end = xml.find("</AppHdr>").unwrap() + "</AppHdr>".len();
    let alone = iso20022::read(&xml.as_bytes()[start..end]).unwrap_err();
    assert_eq!(alone.path(), Some("/AppHdr"), "{alone}");
    let trailing = format!("{xml}<Document/>");
    assert!(matches!(iso20022::read(trailing.as_bytes()).unwrap_err(), XmlError::NotXml { .. }));
}

// ---------------------------------------------------------------------------------
// Samples written by others.

/// Every XML file under `samples/`, with its folder (`fedwire/pacs.008`, `cbpr`, ...).
fn sample_files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("readable").map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "xml") {
                files.push(path);
            }
        }
    }
    let samples = dir.join("samples");
    let mut files = Vec::new();
    walk(&samples, &mut files);
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&samples).unwrap();
            let components: Vec<_> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            let folder = match components[0].as_str() {
                "cbpr" => "cbpr".to_owned(),
                _ => components[..components.len() - 1].join("/"),
            };
            (folder, file)
        })
        .collect()
}

/// The text of the element at `xpath` (local names, `/`-separated, from the Document
/// down), through xmllint: an independent reading of a file.
fn xpath_text(xmllint: &Path, file: &Path, steps: &str, attribute: Option<&str>) -> String {
    let mut xpath = String::from("//*[local-name()=\"Document\"]");
    for step in steps.split('/') {
        xpath.push_str(&format!("/*[local-name()=\"{step}\"]"));
    }
    if let Some(attribute) = attribute {
        xpath.push_str(&format!("/@{attribute}"));
    }
    let output =
        Command::new(xmllint).args(["--xpath", &format!("string(({xpath})[1])")]).arg(file).output().unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Numbers compare by value (`136500` and `136500.00` are the same amount).
fn canonical_number(text: &str) -> String {
    if !text.contains('.') {
        return text.to_owned();
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A BIC8 names the same bank as its BIC11 with branch `XXX` (Corridor writes BIC11).
fn canonical_bic(text: &str) -> String {
    if text.len() == 8 { format!("{text}XXX") } else { text.to_owned() }
}

/// The pacs.008 fields Corridor models, as (path under Document, attribute, is a number).
const PACS008_FIELDS: &[(&str, Option<&str>, bool)] = &[
    ("FIToFICstmrCdtTrf/GrpHdr/MsgId", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/PmtId/InstrId", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/PmtId/EndToEndId", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/PmtId/UETR", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt", None, true),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmAmt", Some("Ccy"), false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/IntrBkSttlmDt", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/XchgRate", None, true),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/ChrgBr", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/Dbtr/Nm", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/DbtrAgt/FinInstnId/BICFI", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/Cdtr/Nm", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/CdtrAgt/FinInstnId/BICFI", None, false),
    ("FIToFICstmrCdtTrf/CdtTrfTxInf/RmtInf/Ustrd", None, false),
];

/// Every pacs.008 sample under `samples/` either imports (cleanly, or with the paths of
/// what Corridor does not carry, which `read_strict` refuses) or is refused with an error
/// naming an element path. What imported re-exports, validates against the schemas, and
/// equals the original on every modelled field, read independently by xmllint. The counts
/// per folder and outcome are printed for the note.
#[test]
fn every_pacs008_sample_imports_or_is_refused_by_path() {
    let Some((xmllint, dir)) = tools("every_pacs008_sample_imports_or_is_refused_by_path") else { return };
    let mut counts: BTreeMap<(String, &str), usize> = BTreeMap::new();
    let mut seen = 0;
    for (folder, file) in sample_files(&dir) {
        let bytes = std::fs::read(&file).unwrap();
        match iso20022::detect(&bytes) {
            Ok((MessageType::Pacs008, _)) => {}
            _ => continue,
        }
        seen += 1;
        let outcome = match iso20022::read(&bytes) {
            Ok(imported) => {
                check_reexport(&xmllint, &dir, &file, &imported.message, &imported.not_carried)
                    .unwrap_or_else(|e| panic!("{e}"));
                if imported.not_carried.is_empty() {
                    "imported cleanly"
                } else {
                    assert!(imported.not_carried.iter().all(|p| p.starts_with('/')), "{}", file.display());
                    match iso20022::read_strict(&bytes) {
                        Err(XmlError::NotCarried { paths }) => assert_eq!(paths, imported.not_carried),
                        other => panic!("{}: strict read should refuse, got {other:?}", file.display()),
                    }
                    "read, not carried reported (strict refuses)"
                }
            }
            Err(error) => {
                eprintln!("pacs.008 sample refused: {}: {error}", file.display());
                let path = error.path().unwrap_or_else(|| panic!("{}: no path in {error}", file.display()));
                assert!(path.starts_with('/'), "{}: {error}", file.display());
                "refused: invalid for Corridor"
            }
        };
        *counts.entry((folder, outcome)).or_default() += 1;
    }
    for ((folder, outcome), count) in &counts {
        eprintln!("pacs.008 samples: {folder}: {outcome}: {count}");
    }
    assert_eq!(seen, 46, "the README counts 46 pacs.008.001.08 documents");
    // The CBPR+ samples read, but for those the model cannot hold (an account or an agent's
    // BIC missing); the Fedwire ones name agents by clearing-system id, not BIC.
    let read = |prefix: &str| -> usize {
        counts
            .iter()
            .filter(|((folder, outcome), _)| folder.starts_with(prefix) && !outcome.contains("invalid"))
            .map(|(_, count)| count)
            .sum()
    };
    assert!(read("cbpr") >= 9, "at least 9 CBPR+ samples import: {counts:?}");
}

/// Re-exports an imported sample, validates it, and compares every modelled field with
/// the original as xmllint reads both: `Err` says what differs. A field the import
/// reported as not carried (it, or an element holding it, is in `not_carried`) is the
/// one exception: an `XchgRate` in a single currency is not a rate Corridor holds.
fn check_reexport(
    xmllint: &Path,
    dir: &Path,
    original: &Path,
    imported: &Message,
    not_carried: &[String],
) -> Result<(), String> {
    let xml = write(imported);
    validate_wrapped(xmllint, dir, "pacs.008.001.08", &xml)
        .map_err(|e| format!("{}: {e}", original.display()))?;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &xml).unwrap();
    for (steps, attribute, number) in PACS008_FIELDS {
        let field = format!("/Document/{steps}/");
        let in_document = |path: &String| path.find("/Document/").map(|at| format!("{}/", &path[at..]));
        if not_carried.iter().filter_map(in_document).any(|path| field.starts_with(&path.replace("[1]", "")))
        {
            continue;
        }
        let (mut before, mut after) = (
            xpath_text(xmllint, original, steps, *attribute),
            xpath_text(xmllint, file.path(), steps, *attribute),
        );
        if *number {
            (before, after) = (canonical_number(&before), canonical_number(&after));
        }
        if steps.ends_with("BICFI") {
            (before, after) = (canonical_bic(&before), canonical_bic(&after));
        }
        if before != after {
            return Err(format!("{}: {steps}: {before:?} became {after:?}", original.display()));
        }
    }
    Ok(())
}

/// The comparison the sample test relies on can fail: a message read from a file compares
/// equal to that file, and a message with one modelled field changed does not (so a
/// sample that imports but loses a field would be caught).
#[test]
fn the_sample_comparison_catches_a_changed_field() {
    let Some((xmllint, dir)) = tools("the_sample_comparison_catches_a_changed_field") else { return };
    for (name, message) in pacs008_fixtures() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), write(&message)).unwrap();
        let imported = iso20022::read(&std::fs::read(file.path()).unwrap()).unwrap().message;
        check_reexport(&xmllint, &dir, file.path(), &imported, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Body::Pacs008(mut transfer) = imported.body().clone() else { unreachable!() };
        transfer.end_to_end_id.push('X');
        let changed = Message::new(imported.header().clone(), Body::Pacs008(transfer)).unwrap();
        let error = check_reexport(&xmllint, &dir, file.path(), &changed, &[]).expect_err(name);
        assert!(error.contains("EndToEndId"), "{error}");
    }
}

// ---------------------------------------------------------------------------------
// The other messages: pacs.002, pacs.004, camt.056, camt.029, camt.053.

/// One message of every other type (from the shared fixtures), plus the shapes that
/// exercise the rest of each mapping: a status without reason, free text longer than
/// one `AddtlInf` (105 characters), a return that undoes a conversion, an accepted
/// cancellation, and an empty statement with zero balances.
fn other_fixtures() -> Vec<(String, Message)> {
    let mut fixtures: Vec<(String, Message)> = common::every_message_type()
        .into_iter()
        .filter(|m| m.message_type() != MessageType::Pacs008)
        .map(|m| (format!("{} (shared fixture)", m.message_type()), m))
        .collect();
    let uetr = Uetr::generate();
    let original = MessageId::generate();
    let accepted = Body::Pacs002(PaymentStatusReport {
        original_message_id: original.clone(),
        uetr,
        status: PaymentStatus::Acsc,
        reason: None,
        additional_information: String::new(),
    });
    let long_text = Body::Pacs002(PaymentStatusReport {
        original_message_id: original.clone(),
        uetr,
        status: PaymentStatus::Rjct,
        reason: Some(ReasonCode::Ac04),
        additional_information: "x".repeat(100) + " closed in 2025 & <moved>",
    });
    let converted_return = Body::Pacs004(PaymentReturn {
        return_id: "RET-2".into(),
        original_message_id: original.clone(),
        uetr,
        returned_amount: amount("512250", "IRR"),
        conversion: Some(Conversion {
            instructed: amount("1000.00", "RUB"),
            rate: Rate::parse("512.25").unwrap(),
            quote_id: None,
        }),
        reason: ReasonCode::Ac04,
        additional_information: "closed".into(),
    });
    let cancelled = Body::Camt029(ResolutionOfInvestigation {
        case_id: "CASE-2".into(),
        original_message_id: original.clone(),
        uetr,
        status: InvestigationStatus::Cncl,
        reason: None,
        additional_information: "returned in full".into(),
    });
    for (name, body) in [
        ("pacs.002 ACSC", accepted),
        ("pacs.002 long text", long_text),
        ("pacs.004 converted", converted_return),
        ("camt.029 CNCL", cancelled),
    ] {
        fixtures.push((name.into(), Message::new(header(IR, RU, Some(uetr)), body).unwrap()));
    }
    let empty = Body::Camt053(Statement {
        statement_id: "18c-18d".into(),
        account: "SYS-SETTLEMENT-RUB".into(),
        from_time_unix_ms: 1_764_921_600_000,
        to_time_unix_ms: 1_765_008_000_000,
        opening_balance: Balance { minor_units: 0, currency: common::currency("RUB") },
        closing_balance: Balance { minor_units: 0, currency: common::currency("RUB") },
        entries: Vec::new(),
    });
    fixtures.push(("camt.053 empty".into(), Message::new(header(RU, IR, None), empty).unwrap()));
    fixtures
}

fn definition(message: &Message) -> &'static str {
    iso20022::definition_of(message.message_type()).expect("every message type has a definition")
}

/// Every other kind of message Corridor exports validates against its official schema,
/// AppHdr and Document both (issue 20, "What must be shown").
#[test]
fn every_message_type_export_validates_against_the_official_schemas() {
    let Some((xmllint, dir)) = tools("every_message_type_export_validates_against_the_official_schemas")
    else {
        return;
    };
    for (name, message) in other_fixtures() {
        let xml = write(&message);
        validate_wrapped(&xmllint, &dir, definition(&message), &xml)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
    }
}

/// Every other kind of message reads back as itself with nothing left over.
#[test]
fn every_message_type_round_trips_through_xml() {
    for (name, message) in other_fixtures() {
        let xml = write(&message);
        let imported = iso20022::read(xml.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}\n{xml}"));
        assert_eq!(imported.message, message, "{name}\n{xml}");
        assert!(imported.not_carried.is_empty(), "{name}: {:?}", imported.not_carried);
    }
}

/// The values of the other messages sit in their elements: status and reason codes,
/// the conversion of a return, free text split over `AddtlInf` of at most 105
/// characters, a debit opening balance, entries with their references.
#[test]
fn every_message_type_writes_its_values_in_their_elements() {
    let fixtures = other_fixtures();
    let find = |name: &str| write(&fixtures.iter().find(|(n, _)| n == name).unwrap().1);
    let status = find("pacs.002 (shared fixture)");
    for expected in [
        "<TxSts>RJCT</TxSts>",
        "<Cd>AC01</Cd>",
        "<AddtlInf>no such account</AddtlInf>",
        "<OrgnlMsgNmId>pacs.008.001.08</OrgnlMsgNmId>",
    ] {
        assert!(status.contains(expected), "{expected}:\n{status}");
    }
    let long_text = find("pacs.002 long text");
    assert_eq!(long_text.matches("<AddtlInf>").count(), 2, "{long_text}");
    let converted = find("pacs.004 converted");
    for expected in [
        "<RtrdIntrBkSttlmAmt Ccy=\"IRR\">512250.00</RtrdIntrBkSttlmAmt>",
        "<RtrdInstdAmt Ccy=\"RUB\">1000.00</RtrdInstdAmt>",
        "<XchgRate>512.25</XchgRate>",
        "<Cd>AC04</Cd>",
    ] {
        assert!(converted.contains(expected), "{expected}:\n{converted}");
    }
    let cancelled = find("camt.029 CNCL");
    assert!(
        cancelled.contains("<Conf>CNCL</Conf>") && cancelled.contains("<TxCxlSts>ACCR</TxCxlSts>"),
        "{cancelled}"
    );
    let statement = find("camt.053 (shared fixture)");
    for expected in [
        "<Cd>OPBD</Cd>",
        "<Amt Ccy=\"RUB\">5.00</Amt>\n          <CdtDbtInd>DBIT</CdtDbtInd>",
        "<Cd>CLBD</Cd>",
        "<NtryRef>E1</NtryRef>",
        "<FrDtTm>1970-01-01T00:00:01.000+00:00</FrDtTm>",
        "<Ccy>RUB</Ccy>",
    ] {
        assert!(statement.contains(expected), "{expected}:\n{statement}");
    }
}

/// CBPR+ names a status report's agents in `TxInfAndSts` rather than in the group
/// header: read there too, they are carried (and must agree with the AppHdr).
#[test]
fn a_status_reports_agents_read_from_the_transaction_too() {
    let fixtures = other_fixtures();
    let message = &fixtures.iter().find(|(n, _)| n == "pacs.002 (shared fixture)").unwrap().1;
    let xml = write(message);
    let agents_start = xml.find("      <InstgAgt>").unwrap();
    let agents_end = xml.find("</InstdAgt>\n").unwrap() + "</InstdAgt>\n".len();
    let agents = xml[agents_start..agents_end].to_owned();
    let moved = format!("{}{}", &xml[..agents_start], &xml[agents_end..]).replacen(
        "</TxInfAndSts>",
        &format!("{agents}</TxInfAndSts>"),
        1,
    );
    assert_ne!(moved, xml);
    let imported = iso20022::read(moved.as_bytes()).unwrap();
    assert_eq!(&imported.message, message);
    assert!(imported.not_carried.is_empty(), "{:?}", imported.not_carried);
    let contradicting = moved.replacen(
        "<BICFI>BANKIRTHXXX</BICFI>\n          </FinInstnId>\n        </InstdAgt>",
        "<BICFI>BANKCNBJXXX</BICFI>\n          </FinInstnId>\n        </InstdAgt>",
        1,
    );
    assert_ne!(contradicting, moved, "the moved receiver agent is where the test expects it");
    let error = iso20022::read(contradicting.as_bytes()).unwrap_err();
    assert_eq!(error.path(), Some("/Envelope/Document/FIToFIPmtStsRpt/TxInfAndSts[1]/InstdAgt"), "{error}");
}

/// For each other message, a missing mandatory element is refused by xmllint and by the
/// reader, which names the element's path.
#[test]
fn every_message_type_missing_a_mandatory_element_is_refused_by_both() {
    let tools = tools("every_message_type_missing_a_mandatory_element_is_refused_by_both");
    let cases: [(&str, &str, &str); 5] = [
        (
            "pacs.002 (shared fixture)",
            "<OrgnlMsgId>",
            "/Envelope/Document/FIToFIPmtStsRpt/TxInfAndSts[1]/OrgnlGrpInf/OrgnlMsgId",
        ),
        (
            "pacs.004 (shared fixture)",
            "<RtrdIntrBkSttlmAmt",
            "/Envelope/Document/PmtRtr/TxInf[1]/RtrdIntrBkSttlmAmt",
        ),
        ("camt.056 (shared fixture)", "<CreDtTm>", "/Envelope/Document/FIToFIPmtCxlReq/Assgnmt/CreDtTm"),
        ("camt.029 (shared fixture)", "<Conf>", "/Envelope/Document/RsltnOfInvstgtn/Sts/Conf"),
        (
            "camt.053 (shared fixture)",
            "<CdtDbtInd>",
            "/Envelope/Document/BkToCstmrStmt/Stmt[1]/Bal[1]/CdtDbtInd",
        ),
    ];
    let fixtures = other_fixtures();
    for (name, needle, path) in cases {
        let message = &fixtures.iter().find(|(n, _)| n == name).unwrap().1;
        let xml = write(message);
        let at = xml.find(needle).unwrap_or_else(|| panic!("{name}: no {needle}"));
        let line_start = xml[..at].rfind('\n').unwrap() + 1;
        let line_end = at + xml[at..].find('\n').unwrap() + 1;
        let broken = format!("{}{}", &xml[..line_start], &xml[line_end..]);
        let error = iso20022::read(broken.as_bytes()).expect_err(name);
        assert_eq!(error.path(), Some(path), "{name}: {error}");
        if let Some((xmllint, dir)) = &tools {
            assert!(validate_wrapped(xmllint, dir, definition(message), &broken).is_err(), "{name}");
        }
    }
}

/// Every sample of a message Corridor reads (pacs.002, pacs.004, camt.056, camt.029,
/// camt.053; pacs.008 has its own test) imports (cleanly or with what it does not carry)
/// or is refused with an element path; what imported re-exports, validates and reads back
/// equal. The counts per folder, message and outcome are printed for the note.
#[test]
fn every_other_sample_imports_or_is_refused_by_path() {
    let Some((xmllint, dir)) = tools("every_other_sample_imports_or_is_refused_by_path") else { return };
    let mut counts: BTreeMap<(String, String, &str), usize> = BTreeMap::new();
    for (folder, file) in sample_files(&dir) {
        let bytes = std::fs::read(&file).unwrap();
        let label = match iso20022::detect(&bytes) {
            Ok((MessageType::Pacs008, _)) => continue,
            Ok((_, definition)) => definition.to_owned(),
            Err(error) => {
                let path = error.path().unwrap_or_else(|| panic!("{}: {error}", file.display()));
                assert_eq!(path, "/Document", "{}: {error}", file.display());
                *counts.entry((folder, "other version".into(), "refused: version not read")).or_default() +=
                    1;
                continue;
            }
        };
        let outcome = match iso20022::read(&bytes) {
            Ok(imported) => {
                let xml = write(&imported.message);
                validate_wrapped(&xmllint, &dir, &label, &xml)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert_eq!(
                    iso20022::read(xml.as_bytes()).unwrap().message,
                    imported.message,
                    "{}",
                    file.display()
                );
                if imported.not_carried.is_empty() {
                    "imported cleanly"
                } else {
                    "read, not carried reported (strict refuses)"
                }
            }
            Err(error) => {
                eprintln!("pacs.008 sample refused: {}: {error}", file.display());
                let path = error.path().unwrap_or_else(|| panic!("{}: no path in {error}", file.display()));
                assert!(path.starts_with('/'), "{}: {error}", file.display());
                "refused: invalid for Corridor"
            }
        };
        *counts.entry((folder, label, outcome)).or_default() += 1;
    }
    for ((folder, label, outcome), count) in &counts {
        eprintln!("samples: {folder}: {label}: {outcome}: {count}");
    }
    let total: usize = counts.values().sum();
    assert_eq!(total, 96 - 46, "every sample but the 46 pacs.008 is counted");
}

// ---------------------------------------------------------------------------------
// Property: any valid pacs.008 survives XML and back.

mod property {
    use super::*;
    use proptest::prelude::*;
    use time::{Date, Duration};

    const CURRENCIES: [&str; 6] = ["RUB", "JPY", "KWD", "EUR", "IRR", "CNY"];

    fn text(required: bool) -> impl Strategy<Value = String> {
        let minimum = usize::from(required);
        proptest::string::string_regex(&format!("[ -~äöü€中文]{{{minimum},140}}"))
            .unwrap()
            .prop_filter("a required text has more than spaces", move |t| !required || !t.trim().is_empty())
    }

    fn id() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[A-Za-z0-9./:-]{1,35}").unwrap()
    }

    fn account() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::string::string_regex("[A-Za-z0-9./-]{1,34}").unwrap(),
            proptest::string::string_regex("[A-Z]{2}[0-9]{2}[A-Z0-9]{1,30}").unwrap(),
        ]
    }

    fn currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(CURRENCIES.to_vec()).prop_map(common::currency)
    }

    /// A rate that BaseOneRate holds: at most 11 digits, 10 of them decimals.
    fn rate() -> impl Strategy<Value = Rate> {
        (1u64..99_999_999_999, 0u32..=10).prop_filter_map(
            "a rate of at most 11 digits",
            |(mantissa, scale)| {
                let digits = mantissa.to_string();
                let text = if scale == 0 {
                    digits
                } else {
                    let padded = format!("{digits:0>width$}", width = scale as usize + 1);
                    let (whole, fraction) = padded.split_at(padded.len() - scale as usize);
                    format!("{whole}.{fraction}")
                };
                let whole_digits = text.split('.').next().unwrap().trim_start_matches('0').len();
                (whole_digits + scale as usize <= 11).then(|| Rate::parse(&text).ok()).flatten()
            },
        )
    }

    prop_compose! {
        fn transfer_and_header()(
            ids in (id(), id(), id()),
            settlement_currency in currency(),
            minor_units in 1i64..1_000_000_000_000_000,
            conversion in proptest::option::of((currency(), 1i64..1_000_000_000_000, rate(), proptest::option::of(id()))),
            days in 0i64..36_500,
            bearer in proptest::sample::select(ChargeBearer::ALL.to_vec()),
            names in (text(true), text(true)),
            accounts in (account(), account()),
            remittance in text(false),
            created in 946_684_800_000i64..4_102_444_800_000,
            sequence_number in any::<u64>(),
            possible_duplicate in any::<bool>(),
        ) -> Option<Message> {
            let uetr = Uetr::generate();
            let mut amount = Amount::from_minor_units(minor_units, settlement_currency).ok()?;
            let conversion = match conversion {
                Some((instructed_currency, instructed_units, rate, quote_id)) if instructed_currency != settlement_currency => {
                    let instructed = Amount::from_minor_units(instructed_units, instructed_currency).ok()?;
                    amount = rate.convert(instructed, settlement_currency).ok()?;
                    Some(Conversion { instructed, rate, quote_id })
                }
                _ => None,
            };
            let transfer = CreditTransfer {
                instruction_id: ids.0,
                end_to_end_id: ids.1,
                uetr,
                amount,
                conversion,
                settlement_date: Date::from_calendar_date(2000, time::Month::January, 1).unwrap() + Duration::days(days),
                charge_bearer: bearer,
                debtor: Party::new(&names.0, &accounts.0).ok()?,
                debtor_agent: bic(RU),
                creditor: Party::new(&names.1, &accounts.1).ok()?,
                creditor_agent: bic(IR),
                remittance_information: remittance,
            };
            let header = Header {
                message_id: MessageId::parse(&ids.2).ok()?,
                uetr: Some(uetr),
                sender: bic(RU),
                receiver: bic(IR),
                creation_time_unix_ms: created,
                sequence_number,
                possible_duplicate,
            };
            let message = Message::new(header, Body::Pacs008(transfer)).ok()?;
            // Only what the wire accepts is a message Corridor sends.
            corridor::model::wire::decode_message(&corridor::model::wire::encode_message(&message)).ok()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any pacs.008 Corridor can send (any currency and decimals, conversion or none,
        /// names with XML's special characters and non-ASCII, IBAN or other accounts, any
        /// time, sequence number and flag) reads back from its XML as itself, whole.
        #[test]
        fn any_pacs008_round_trips_through_xml(message in transfer_and_header().prop_filter_map("valid", |m| m)) {
            let xml = iso20022::write(&message).unwrap();
            let imported = iso20022::read(xml.as_bytes()).unwrap();
            prop_assert_eq!(&imported.message, &message);
            prop_assert!(imported.not_carried.is_empty(), "{:?}", imported.not_carried);
        }
    }
}

/// A statement with more entries than the reader scans sibling by sibling (it counts them
/// in a map past 32) reads back whole, and an error in one entry names that entry.
#[test]
fn a_long_statement_round_trips_and_names_the_broken_entry() {
    let entries: Vec<StatementEntry> = (0..40)
        .map(|i| StatementEntry {
            entry_reference: format!("E{i}"),
            uetr: None,
            message_id: None,
            amount: common::amount("1.00", "RUB"),
            direction: EntryDirection::Crdt,
            booking_time_unix_ms: 1_500 + i,
        })
        .collect();
    let statement = Statement {
        statement_id: "LONG-1".into(),
        account: "SETTLEMENT".into(),
        from_time_unix_ms: 1_000,
        to_time_unix_ms: 2_000,
        opening_balance: Balance { minor_units: 0, currency: common::currency("RUB") },
        closing_balance: Balance { minor_units: 4_000, currency: common::currency("RUB") },
        entries,
    };
    let message = Message::new(header(RU, IR, None), Body::Camt053(statement)).unwrap();
    let xml = write(&message);
    let imported = iso20022::read(xml.as_bytes()).unwrap();
    assert_eq!(imported.message, message);
    assert!(imported.not_carried.is_empty(), "{:?}", imported.not_carried);
    let broken = xml.replace("<NtryRef>E36</NtryRef>", "<NtryRef>E 36</NtryRef>");
    let error = iso20022::read(broken.as_bytes()).unwrap_err();
    assert_eq!(error.path(), Some("/Envelope/Document/BkToCstmrStmt/Stmt[1]/Ntry[37]/NtryRef"), "{error}");
}
