//! The fuzz targets' seed corpus as an ordinary test (STYLE.md 19, "fuzz targets for
//! anything that parses bytes"): every file in `fuzz/corpus/NAME/`, and in
//! `fuzz/regressions/NAME/` where there is one, goes through `corridor::fuzzing::NAME`,
//! which must not panic. So CI exercises the targets on stable without libFuzzer, and a
//! crash the fuzzer found stays fixed once its input is kept under `fuzz/regressions/`.
//!
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus` writes the seeds anew.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::*;
use corridor::fuzzing::{self, HUB_BANKS, HUB_RAW_SESSION_REQUEST, HUB_RAW_SUBMIT};
use corridor::model::wire::encode_message;
use corridor::model::*;
use corridor::pb;
use prost::Message as _;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the folder does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|entry| entry.unwrap().path()).filter(|path| path.is_file()).collect();
    files.sort();
    files
}

/// Runs every seed and regression input of `target` through `run`; fails naming every
/// input that panics, and when the seed corpus is missing or empty.
fn run_corpus(target: &str, run: fn(&[u8])) {
    let seeds = inputs("corpus", target);
    assert!(!seeds.is_empty(), "the seed corpus fuzz/corpus/{target}/ is missing or empty");
    let mut failed = Vec::new();
    for path in seeds.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap();
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "fuzz target {target} panicked on: {failed:#?}");
}

#[test]
fn envelope_corpus() {
    run_corpus("envelope", fuzzing::envelope);
}

#[test]
fn message_corpus() {
    run_corpus("message", fuzzing::message);
}

#[test]
fn amount_corpus() {
    run_corpus("amount", fuzzing::amount);
}

#[test]
fn iso20022_xml_corpus() {
    run_corpus("iso20022_xml", fuzzing::iso20022_xml);
}

#[test]
fn mt103_corpus() {
    run_corpus("mt103", fuzzing::mt103);
}

#[test]
fn hub_ingest_corpus() {
    run_corpus("hub_ingest", fuzzing::hub_ingest);
    fuzzing::hub_ingest_reset();
}

// ---- The seeds -------------------------------------------------------------------------

const SEED_UETR: &str = "3f2b8c1e-4d5a-4b6c-8d7e-9f0a1b2c3d4e";
const SEED_OTHER_UETR: &str = "7a1c2e3f-5b6d-4e8f-9a0b-1c2d3e4f5a6b";

/// `message` with fixed ids (message id `SEED-index`, [`SEED_UETR`], original message
/// `SEED-0`), so that the seeds are the same bytes every time they are written.
fn fixed_ids(message: &Message, index: usize) -> Message {
    let uetr = Uetr::parse(SEED_UETR).unwrap();
    let original = MessageId::parse("SEED-0").unwrap();
    let mut body = message.body().clone();
    match &mut body {
        Body::Pacs008(b) => b.uetr = uetr,
        Body::Pacs002(b) => (b.uetr, b.original_message_id) = (uetr, original),
        Body::Pacs004(b) => (b.uetr, b.original_message_id) = (uetr, original),
        Body::Camt056(b) => (b.uetr, b.original_message_id) = (uetr, original),
        Body::Camt029(b) => (b.uetr, b.original_message_id) = (uetr, original),
        Body::Camt053(b) => {
            for entry in b.entries.iter_mut().filter(|e| e.uetr.is_some()) {
                (entry.uetr, entry.message_id) = (Some(uetr), Some(original.clone()));
            }
        }
    }
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        uetr: body.uetr(),
        ..message.header().clone()
    };
    Message::new(header, body).unwrap()
}

/// One message of every type from RU to IR, with fixed ids.
fn seed_messages() -> Vec<Message> {
    every_message_type().iter().enumerate().map(|(index, m)| fixed_ids(m, index)).collect()
}

/// A pacs.008 from `sender` to `receiver` of `amount`, with its own ids.
fn transfer(index: usize, sender: &str, receiver: &str, uetr: &str, amount: Amount) -> Message {
    let uetr = Uetr::parse(uetr).unwrap();
    let mut transfer = credit_transfer(uetr);
    (transfer.debtor_agent, transfer.creditor_agent, transfer.amount) = (bic(sender), bic(receiver), amount);
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(sender, receiver, Some(uetr))
    };
    Message::new(header, Body::Pacs008(transfer)).unwrap()
}

/// IR's ACSC of the converted payment `uetr` (message `SEED-21`).
fn status_of(index: usize, uetr: &str) -> Message {
    let uetr = Uetr::parse(uetr).unwrap();
    let report = PaymentStatusReport {
        original_message_id: MessageId::parse("SEED-21").unwrap(),
        uetr,
        status: PaymentStatus::Acsc,
        reason: None,
        additional_information: String::new(),
    };
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(IR, RU, Some(uetr))
    };
    Message::new(header, Body::Pacs002(report)).unwrap()
}

/// A pacs.002 from `sender` to `receiver` about `uetr`.
fn status(index: usize, sender: &str, receiver: &str, uetr: &str, outcome: PaymentStatus) -> Message {
    let uetr = Uetr::parse(uetr).unwrap();
    let reason = (outcome == PaymentStatus::Rjct).then_some(ReasonCode::Ac01);
    let report = PaymentStatusReport {
        original_message_id: MessageId::parse("SEED-0").unwrap(),
        uetr,
        status: outcome,
        reason,
        additional_information: String::new(),
    };
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(sender, receiver, Some(uetr))
    };
    Message::new(header, Body::Pacs002(report)).unwrap()
}

/// UETR of the seeds' cross-currency payment.
const CONVERTED_UETR: &str = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d";

/// A pacs.008 from RU to IR of `instructed` RUB converted at `rate` into `settlement` IRR.
fn converted(index: usize, uetr: &str, instructed: &str, rate: &str, settlement: &str) -> Message {
    let Body::Pacs008(mut transfer) = transfer(index, RU, IR, uetr, amount(settlement, "IRR")).body().clone()
    else {
        unreachable!("transfer builds a pacs.008")
    };
    transfer.conversion = Some(Conversion {
        instructed: amount(instructed, "RUB"),
        rate: Rate::parse(rate).unwrap(),
        quote_id: None,
    });
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(RU, IR, Some(transfer.uetr))
    };
    Message::new(header, Body::Pacs008(transfer)).unwrap()
}

/// IR's whole return (AC04) of the converted payment `uetr` (message `SEED-21`) to RU.
fn returned(index: usize, uetr: &str) -> Message {
    let uetr = Uetr::parse(uetr).unwrap();
    let ret = PaymentReturn {
        return_id: format!("RET-{index}"),
        original_message_id: MessageId::parse("SEED-21").unwrap(),
        uetr,
        returned_amount: amount("51096.94", "IRR"),
        conversion: Some(Conversion {
            instructed: amount("100.00", "RUB"),
            rate: Rate::parse("510.969375").unwrap(),
            quote_id: None,
        }),
        reason: ReasonCode::Ac04,
        additional_information: "account closed".into(),
    };
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(IR, RU, Some(uetr))
    };
    Message::new(header, Body::Pacs004(ret)).unwrap()
}

/// A recall (camt.056 from RU) or its refusal (camt.029 RJCR from IR) of payment `uetr`
/// (message `SEED-21`, 51,096.94 IRR).
fn recall_step(index: usize, uetr: &str, answer: bool) -> Message {
    let uetr = Uetr::parse(uetr).unwrap();
    let (body, sender, receiver) = if answer {
        let body = Body::Camt029(ResolutionOfInvestigation {
            case_id: "CASE-1".into(),
            original_message_id: MessageId::parse("SEED-23").unwrap(),
            uetr,
            status: InvestigationStatus::Rjcr,
            reason: Some(ReasonCode::Noas),
            additional_information: String::new(),
        });
        (body, IR, RU)
    } else {
        let body = Body::Camt056(CancellationRequest {
            case_id: "CASE-1".into(),
            original_message_id: MessageId::parse("SEED-21").unwrap(),
            uetr,
            original_amount: amount("51096.94", "IRR"),
            reason: ReasonCode::Dupl,
            additional_information: String::new(),
        });
        (body, RU, IR)
    };
    let header = Header {
        message_id: MessageId::parse(&format!("SEED-{index}")).unwrap(),
        ..header(sender, receiver, Some(uetr))
    };
    Message::new(header, body).unwrap()
}

/// Writes `fuzz/corpus/<target>/<name>` for every seed (inputs the fuzzer found, kept
/// beside them, stay).
fn write_seeds(target: &str, seeds: Vec<(String, Vec<u8>)>) {
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn named(message: &Message, suffix: &str) -> (String, Vec<u8>) {
    (format!("{}{suffix}.pb", message.message_type().code()), encode_message(message))
}

fn message_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<_> = seed_messages().iter().map(|m| named(m, "")).collect();
    let jpy = transfer(10, RU, IR, SEED_OTHER_UETR, amount("7", "JPY"));
    let kwd = transfer(11, RU, IR, SEED_OTHER_UETR, amount("0.001", "KWD"));
    let max = transfer(12, RU, IR, SEED_OTHER_UETR, amount("92233720368547758.07", "EUR"));
    seeds.extend([named(&jpy, "-jpy"), named(&kwd, "-kwd"), named(&max, "-max-amount")]);
    seeds.push(named(&status(13, IR, RU, SEED_UETR, PaymentStatus::Acsc), "-acsc"));
    seeds.push(named(&converted(21, CONVERTED_UETR, "100.00", "510.969375", "51096.94"), "-converted"));
    seeds.push(named(&returned(22, CONVERTED_UETR), "-converted-return"));
    let mut mismatched = pb::Message::from(&seed_messages()[0]);
    mismatched.header.as_mut().unwrap().message_type = pb::MessageType::Camt053 as i32;
    seeds.push(("header-type-mismatch.pb".into(), mismatched.encode_to_vec()));
    let mut headless = pb::Message::from(&seed_messages()[1]);
    headless.header = None;
    seeds.push(("no-header.pb".into(), headless.encode_to_vec()));
    seeds.push(("empty.pb".into(), Vec::new()));
    seeds
}

fn envelope_seeds() -> Vec<(String, Vec<u8>)> {
    let signers = fuzzing::envelope_signers();
    let encode =
        |envelope: &corridor::crypto::SignedEnvelope| pb::SignedEnvelope::from(envelope).encode_to_vec();
    let mut seeds: Vec<(String, Vec<u8>)> = seed_messages()
        .iter()
        .map(|m| (format!("signed-{}.pb", m.message_type().code()), encode(&signers[0].sign(m))))
        .collect();
    let acsc = status(13, IR, RU, SEED_UETR, PaymentStatus::Acsc);
    seeds.push(("signed-by-second-key.pb".into(), encode(&signers[1].sign(&acsc))));
    let payload = Bytes::from(encode_message(&seed_messages()[0]));
    let valid = pb::SignedEnvelope::from(&signers[0].sign_payload(payload));
    let variant = |name: &str, change: fn(&mut pb::SignedEnvelope)| {
        let mut envelope = valid.clone();
        change(&mut envelope);
        (format!("{name}.pb"), envelope.encode_to_vec())
    };
    seeds.extend([
        variant("flipped-signature-bit", |e| {
            let mut signature = e.signature.to_vec();
            signature[0] ^= 1;
            e.signature = signature.into();
        }),
        variant("flipped-payload-bit", |e| {
            let mut payload = e.payload.to_vec();
            payload[5] ^= 1;
            e.payload = payload.into();
        }),
        variant("other-signer", |e| e.signer_bic = IR.into()),
        variant("unknown-key-id", |e| e.key_id = "k2".into()),
        variant("short-signature", |e| e.signature = e.signature.slice(..63)),
        variant("empty-payload", |e| e.payload = Bytes::new()),
        variant("bad-signer-bic", |e| e.signer_bic = "bankrummxxx".into()),
    ]);
    seeds.push(("empty.pb".into(), Vec::new()));
    seeds
}

/// The seed messages as ISO 20022 XML (every type), and XML of the project's own that
/// reaches the reader's other paths: a bare Document, an element Corridor does not model,
/// a bad currency, a DTD with entities, an unsupported version, text that is not XML.
fn iso20022_xml_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = seed_messages()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                format!("{}-{i}.xml", m.message_type().code()),
                corridor::iso20022::write(m).unwrap().into_bytes(),
            )
        })
        .collect();
    let pacs008 = String::from_utf8(seeds[0].1.clone()).unwrap();
    let start = pacs008.find("<Document").unwrap();
    let end = pacs008.find("</Document>").unwrap() + "</Document>".len();
    seeds.push(("bare-document.xml".into(), pacs008.as_bytes()[start..end].to_vec()));
    let extra = pacs008.replace("</Dbtr>", "<CtryOfRes>RU</CtryOfRes></Dbtr>");
    seeds.push(("not-carried.xml".into(), extra.into_bytes()));
    seeds.push(("bad-currency.xml".into(), pacs008.replace("Ccy=\"RUB\"", "Ccy=\"RUX\"").into_bytes()));
    let laughs = "<!DOCTYPE d [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><Document>&b;</Document>";
    seeds.push(("billion-laughs.xml".into(), laughs.as_bytes().to_vec()));
    let newer =
        "<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pacs.008.001.12\"><FIToFICstmrCdtTrf/></Document>";
    seeds.push(("newer-version.xml".into(), newer.as_bytes().to_vec()));
    seeds.push(("not-xml.txt".into(), b"{1:F01BANKRUMMAXXX0000000000}".to_vec()));
    seeds
}

/// The seed pacs.008 messages as MT103, and MT103 texts of the project's own that reach
/// the reader's other paths: input form, LF line ends, 50K and 59, fields Corridor does
/// not model, a return, another message type, text that is not an MT.
fn mt103_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = seed_messages()
        .iter()
        .enumerate()
        .filter_map(|(i, m)| corridor::iso20022::mt103::export_message(m).ok().map(|e| (i, e.text)))
        .map(|(i, text)| (format!("pacs008-{i}.fin"), text.into_bytes()))
        .collect();
    let full = [
        "{1:F01BSCHESMMXXXX0000000000}{2:O1031249221020CLYDGB2SXXXX00000000002210201249N}\
         {3:{119:STP}{121:7a562c67-ca16-48ba-b074-65581be6f001}}{4:",
        ":20:REF-2210-001",
        ":13C:/SNDTIME/1249+0200",
        ":23B:CRED",
        ":32A:221020EUR65784,32",
        ":33B:USD70000,",
        ":36:0,939776",
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
        "-}{5:{PDE:}{CHK:0123456789AB}}",
    ]
    .join("\r\n");
    let input_form = [
        "{1:F01CLYDGB2SAXXX0000000000}{2:I103BSCHESMMXXXXU}{3:{121:7a562c67-ca16-48ba-b074-65581be6f001}}{4:",
        ":20:REF-2210-002",
        ":23B:CRED",
        ":32A:991231JPY1000,",
        ":50K:/ACC-1",
        "A Debiter",
        "1 High Street",
        ":59:/ACC-2",
        "B Creditor Co",
        ":70:Invoice 43",
        ":71A:BEN",
        "-}",
    ]
    .join("\n");
    let retn = full.replace(":72:/INS/ABNANL2AXXX", ":72:/RETN/99\r\n/AC04/");
    seeds.extend([
        ("full.fin".to_owned(), full.clone().into_bytes()),
        ("input-form-lf.fin".to_owned(), input_form.into_bytes()),
        ("return.fin".to_owned(), retn.into_bytes()),
        ("mt202.fin".to_owned(), full.replace("{2:O103", "{2:O202").into_bytes()),
        ("not-an-mt.txt".to_owned(), b"<Document/>".to_vec()),
    ]);
    seeds
}

fn amount_seeds() -> Vec<(String, Vec<u8>)> {
    let texts = [
        ("cny", "CNY 12.34"),
        ("eur", "EUR 1234.56"),
        ("eur-one-decimal", "EUR 1234.5"),
        ("jpy", "JPY 7"),
        ("kwd", "KWD 0.001"),
        ("clf-four-decimals", "CLF 1.2345"),
        ("max", "EUR 92233720368547758.07"),
        ("max-plus-one", "EUR 92233720368547758.08"),
        ("overflow", "JPY 99999999999999999999999"),
        ("leading-zeros", "RUB 000012.30"),
        ("zero", "RUB 0.00"),
        ("too-many-decimals", "EUR 12.345"),
        ("trailing-point", "EUR 1."),
        ("leading-point", "EUR .5"),
        ("negative", "EUR -1"),
        ("two-points", "EUR 1.2.3"),
        ("no-minor-unit", "XAU 1"),
        ("lowercase-code", "eur 1"),
        ("no-code", "12.34"),
        ("arabic-digits", "EUR \u{0661}\u{0662}"),
        ("empty", ""),
    ];
    texts.iter().map(|(name, text)| (format!("{name}.txt"), text.as_bytes().to_vec())).collect()
}

/// Numbered in the order that tells a story when the corpus test runs them: payments,
/// their outcomes, the refusals, then raw session frames.
fn hub_seeds() -> Vec<(String, Vec<u8>)> {
    let [first, second, third] = HUB_BANKS;
    assert_eq!((first, second), (RU, IR), "the seed messages are between the hub target's first two banks");
    let mut seeds: Vec<_> = seed_messages().iter().map(|m| named(m, "")).collect();
    let cny = transfer(15, RU, IR, SEED_OTHER_UETR, amount("100.00", "CNY"));
    let acsc = status(13, IR, RU, SEED_UETR, PaymentStatus::Acsc);
    let rjct = status(14, IR, RU, SEED_OTHER_UETR, PaymentStatus::Rjct);
    let too_much = transfer(16, RU, IR, "0b1c2d3e-4f5a-4b7c-8d9e-0f1a2b3c4d5e", amount("99999999.00", "RUB"));
    let unfunded = transfer(17, RU, IR, "1c2d3e4f-5a6b-4c8d-9e0f-1a2b3c4d5e6f", amount("5.00", "EUR"));
    let no_relationship =
        transfer(18, RU, third, "2d3e4f5a-6b7c-4d9e-8f1a-2b3c4d5e6f7a", amount("1.00", "RUB"));
    let to_suspended = transfer(19, IR, third, "3e4f5a6b-7c8d-4e0f-9a2b-3c4d5e6f7a8b", amount("1.00", "RUB"));
    let to_hub =
        transfer(20, RU, "CRDRZZ00XXX", "4f5a6b7c-8d9e-4f1a-8b3c-4d5e6f7a8b9c", amount("1.00", "RUB"));
    seeds.extend([
        named(&cny, "-cny"),
        named(&acsc, "-acsc-from-receiver"),
        named(&rjct, "-rjct-from-receiver"),
        named(&too_much, "-beyond-position"),
        named(&unfunded, "-unfunded-currency"),
        named(&no_relationship, "-no-relationship"),
        named(&to_suspended, "-to-suspended"),
        named(&to_hub, "-to-hub"),
        // A conversion's story: paid, settled, recalled, the recall refused, returned,
        // and the refusals of a wrong rate and of a second return.
        named(&converted(21, CONVERTED_UETR, "100.00", "510.969375", "51096.94"), "-converted"),
        named(&status_of(24, CONVERTED_UETR), "-converted-acsc"),
        named(&recall_step(23, CONVERTED_UETR, false), "-recall"),
        named(&recall_step(25, CONVERTED_UETR, true), "-recall-refused"),
        named(&returned(22, CONVERTED_UETR), "-return"),
        named(&returned(26, CONVERTED_UETR), "-second-return"),
        named(
            &converted(27, "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", "100.00", "512.25", "51225.00"),
            "-wrong-rate",
        ),
    ]);
    let raw = |selector: u8, bank: u8, frame: Vec<u8>| [vec![selector, bank], frame].concat();
    let request =
        |frame: pb::session_request::Frame| pb::SessionRequest { frame: Some(frame) }.encode_to_vec();
    let hello = |last_osn_processed| {
        let hello = pb::Hello {
            last_osn_processed,
            contract_version: corridor::net::CONTRACT_VERSION,
            network_directory: None,
        };
        request(pb::session_request::Frame::Hello(hello))
    };
    let delivered = |osn| request(pb::session_request::Frame::Delivered(pb::Delivered { osn }));
    let envelope = pb::SignedEnvelope::from(
        &fuzzing::envelope_signers()[0].sign_payload(Bytes::from(encode_message(&seed_messages()[0]))),
    );
    let submit = |isn, envelope: Option<pb::SignedEnvelope>| pb::Submit {
        isn,
        envelope,
        possible_duplicate: isn == 1,
    };
    seeds.extend([
        ("raw-hello.bin".into(), raw(HUB_RAW_SESSION_REQUEST, 1, hello(0))),
        ("raw-delivered.bin".into(), raw(HUB_RAW_SESSION_REQUEST, 1, delivered(3))),
        ("raw-hello-beyond-sent.bin".into(), raw(HUB_RAW_SESSION_REQUEST, 0, hello(1_000))),
        ("raw-empty-frame.bin".into(), raw(HUB_RAW_SESSION_REQUEST, 2, Vec::new())),
        (
            "raw-session-submit.bin".into(),
            raw(HUB_RAW_SESSION_REQUEST, 0, request(pb::session_request::Frame::Submit(submit(2, None)))),
        ),
        (
            "raw-submit-isn-0.bin".into(),
            raw(HUB_RAW_SUBMIT, 0, submit(0, Some(envelope.clone())).encode_to_vec()),
        ),
        (
            "raw-submit-resend.bin".into(),
            raw(HUB_RAW_SUBMIT, 0, submit(1, Some(envelope.clone())).encode_to_vec()),
        ),
        ("raw-submit-gap.bin".into(), raw(HUB_RAW_SUBMIT, 0, submit(1_000, Some(envelope)).encode_to_vec())),
        ("raw-submit-no-envelope.bin".into(), raw(HUB_RAW_SUBMIT, 1, submit(1, None).encode_to_vec())),
        ("empty.bin".into(), Vec::new()),
    ]);
    seeds
        .into_iter()
        .enumerate()
        .map(|(index, (name, bytes))| (format!("{index:02}-{name}"), bytes))
        .collect()
}

/// Writes the seed corpus of every target (run by hand; the files are committed).
#[test]
#[ignore = "writes fuzz/corpus/; run by hand to renew the seeds"]
fn write_seed_corpus() {
    write_seeds("message", message_seeds());
    write_seeds("envelope", envelope_seeds());
    write_seeds("amount", amount_seeds());
    write_seeds("mt103", mt103_seeds());
    write_seeds("iso20022_xml", iso20022_xml_seeds());
    write_seeds("hub_ingest", hub_seeds());
}
