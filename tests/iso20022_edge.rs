//! ISO 20022 and MT103 at a bank node's edge (issue 20, item 3): a bank's own systems
//! order a payment as a pacs.008 document (`SubmitPaymentXml`, `corridor pay --xml`,
//! `corridor pay --mt103`) and read a payment's messages back as XML or MT103
//! (`ExportPaymentXml`, `corridor export`). Real nodes in this process (LocalNetwork), the
//! `corridor` binary against them; the documents are written here by Corridor's own model
//! and writer, never copied from outside. Exports are validated with `xmllint` against the
//! official schemas where both are present (tests/common/external.rs).

mod common;

use std::path::{Path, PathBuf};

use common::cli::{corridor, refused, succeeded};
use common::net::{IR, RU, balance, final_status, network, status_of};
use common::{bic, header};
use corridor::iso20022::{self, mt103};
use corridor::model::*;
use corridor::pb;
use corridor::reconcile::sources;
use corridor::sim::LocalNetwork;
use time::macros::date;
use tonic::Code;

/// A payment from RU's customer C001 to IR's customer C002, as a bank's own system would
/// order it: 100.00 CNY, with its own ids, date and charge bearer.
fn transfer(uetr: Uetr) -> CreditTransfer {
    CreditTransfer {
        instruction_id: "EDGE-INSTR-1".into(),
        end_to_end_id: "EDGE-E2E-1".into(),
        uetr,
        amount: Amount::parse("100.00", Currency::parse("CNY").unwrap()).unwrap(),
        conversion: None,
        settlement_date: date!(2026 - 12 - 07),
        charge_bearer: ChargeBearer::Debt,
        debtor: Party::new("Customer one", "C001").unwrap(),
        debtor_agent: bic(RU),
        creditor: Party::new("Customer two", "C002").unwrap(),
        creditor_agent: bic(IR),
        remittance_information: "Invoice 2026-117".into(),
    }
}

/// `transfer` as AppHdr + Document, as Corridor writes it.
fn document(transfer: &CreditTransfer) -> String {
    let header =
        header(transfer.debtor_agent.as_str(), transfer.creditor_agent.as_str(), Some(transfer.uetr));
    iso20022::write(&Message::new(header, Body::Pacs008(transfer.clone())).unwrap()).unwrap()
}

async fn submit(network: &LocalNetwork, index: usize, document: &[u8]) -> Result<pb::Payment, tonic::Status> {
    let mut client = network.operator(index).await.unwrap();
    let request = pb::SubmitPaymentXmlRequest { document: document.to_vec().into() };
    Ok(client.submit_payment_xml(request).await?.into_inner().payment.unwrap())
}

async fn export(network: &LocalNetwork, index: usize, uetr: &str) -> Vec<pb::ExportedMessage> {
    let mut client = network.operator(index).await.unwrap();
    let request = pb::ExportPaymentXmlRequest { uetr: uetr.into() };
    client.export_payment_xml(request).await.unwrap().into_inner().messages
}

/// The one exported message of `kind` sent (or received) by the bank.
fn one<'a>(messages: &'a [pb::ExportedMessage], kind: &str, sent: bool) -> &'a pb::ExportedMessage {
    let found: Vec<_> = messages.iter().filter(|m| m.message_type == kind && m.sent == sent).collect();
    assert_eq!(found.len(), 1, "one {kind} (sent: {sent}) among {messages:#?}");
    found[0]
}

/// What a bank holds that an order may change: its accounts and its payments.
async fn bank_state(network: &LocalNetwork, index: usize) -> (String, String) {
    let mut client = network.operator(index).await.unwrap();
    let accounts = client.list_accounts(pb::ListAccountsRequest {}).await.unwrap().into_inner();
    let payments = client.list_payments(pb::ListPaymentsRequest {}).await.unwrap().into_inner();
    (format!("{accounts:?}"), format!("{payments:?}"))
}

fn banks_of(network: &LocalNetwork) -> Vec<(Bic, String)> {
    network.banks.iter().map(|b| (b.bic, b.url.clone())).collect()
}

async fn reconciles_clean(network: &LocalNetwork) {
    let wait = std::time::Duration::from_secs(30);
    let report =
        sources::reconcile_live(&network.network, &network.hub_url, &banks_of(network), wait).await.unwrap();
    assert!(report.is_clean(), "{}", report.render());
}

/// Validates a written message's AppHdr and Document against the official schemas, when
/// xmllint and the schemas are there (else the rule of tests/common/external.rs).
fn validates(test: &str, message_type: MessageType, xml: &str) {
    common::xsd::validate_written(test, &[(message_type, xml.to_owned())]);
}

// A pacs.008 document submitted at one bank node is booked at the other and exported there
// equal, on every field Corridor models, to what was submitted; its pacs.002 comes back as
// XML; the reconciler finds no break; the same document submitted again pays once (issue
// 20, "End to end"; DESIGN.md: "No payment is applied twice", the UETR is the idempotency
// key). Before SubmitPaymentXml and the kept messages, none of this had a way in or out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pacs008_document_is_paid_once_and_exported_equal_at_the_other_bank() {
    let test = "a_pacs008_document_is_paid_once_and_exported_equal_at_the_other_bank";
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let submitted = transfer(Uetr::generate());
    let xml = document(&submitted);

    let payment = submit(&network, 0, xml.as_bytes()).await.unwrap();
    assert_eq!(payment.uetr, submitted.uetr.to_string(), "the payment keeps the document's UETR");
    let again = submit(&network, 0, xml.as_bytes()).await.unwrap();
    assert_eq!(again.uetr, payment.uetr, "a resubmission answers the same payment");
    let settled = final_status(&network, 0, &payment.uetr).await;
    assert_eq!(status_of(&settled), pb::PaymentStatus::Acsc, "{settled:?}");
    final_status(&network, 1, &payment.uetr).await;
    assert_eq!(balance(&network, 0, "C001"), 90_000, "debited once: 1000.00 - 100.00");
    assert_eq!(balance(&network, 1, "C002"), 10_000, "credited once");

    let received = export(&network, 1, &payment.uetr).await;
    let pacs008 = one(&received, "pacs.008", false);
    validates(test, MessageType::Pacs008, &pacs008.xml);
    let booked = iso20022::read_strict(pacs008.xml.as_bytes()).unwrap();
    assert_eq!(booked.body(), &Body::Pacs008(submitted.clone()), "exported equal to what was submitted");

    let sent = export(&network, 0, &payment.uetr).await;
    assert_eq!(one(&sent, "pacs.008", true).xml, pacs008.xml, "both banks hold the one signed pacs.008");
    let status = one(&sent, "pacs.002", false);
    match iso20022::definition_of(MessageType::Pacs002) {
        Some(_) => {
            validates(test, MessageType::Pacs002, &status.xml);
            let report = iso20022::read_strict(status.xml.as_bytes()).unwrap();
            let Body::Pacs002(report) = report.body() else { panic!("{report:?}") };
            assert_eq!((report.uetr, report.status), (submitted.uetr, PaymentStatus::Acsc));
        }
        None => assert!(status.xml.is_empty() && status.not_writable.contains("pacs.002"), "{status:?}"),
    }
    assert_eq!(one(&received, "pacs.002", true).message_id, status.message_id);
    statement_agrees(test, &network).await;
    reconciles_clean(&network).await;

    // The messages are the store's, not memory's: a restarted node exports the same, and
    // a resubmission to it still pays nothing.
    let mut network = network;
    network.stop_bank(bic(RU)).await.unwrap();
    let index = network.start_bank(bic(RU)).await.unwrap();
    assert_eq!(export(&network, index, &payment.uetr).await, sent, "kept across a restart");
    let once_more = submit(&network, index, xml.as_bytes()).await.unwrap();
    assert_eq!(once_more.uetr, payment.uetr);
    assert_eq!(balance(&network, index, "C001"), 90_000, "still debited once");
    network.stop().await.unwrap();
}

/// The camt.053 XML of RU's settlement account validates and says what `GetStatement`
/// says (issue 20: "The camt.053 XML of a bank's settlement account validates and agrees
/// with `corridor statement`").
async fn statement_agrees(test: &str, network: &LocalNetwork) {
    let mut client = network.operator(0).await.unwrap();
    let to = corridor::clock::unix_ms_now() + 60_000;
    let request = pb::GetStatementRequest {
        currency: "CNY".into(),
        from_time_unix_ms: 0,
        to_time_unix_ms: to,
        ..Default::default()
    };
    let xml = client.get_statement_xml(request.clone()).await.unwrap().into_inner().xml;
    validates(test, MessageType::Camt053, &xml);
    let read = iso20022::read_strict(xml.as_bytes()).unwrap();
    let statement = client.get_statement(request).await.unwrap().into_inner();
    assert_eq!(read.body(), &Body::Camt053(wire::statement_from_pb(statement).unwrap()));
    assert_eq!((read.header().sender, read.header().receiver), (bic(RU), bic(corridor::tls::HUB_BIC)));
    let Body::Camt053(read) = read.body() else { unreachable!() };
    assert_eq!(read.closing_balance.minor_units, balance(network, 0, "SYS-SETTLEMENT-CNY"), "{read:?}");
    assert!(!read.entries.is_empty(), "the payment's entry is there: {read:?}");
}

// Garbage is refused with a clear error naming the element or the reason, and changes
// nothing (issue 20, "Garbage refused"; DESIGN.md: "Bad input gets a clear error and
// changes nothing"): not XML, the wrong namespace, a billion-laughs entity, a 100 MB
// document (refused by the node's 1 MiB frame limit before it is read whole), another
// message type, a debtor account the bank does not hold, a blocked one, another bank's
// debtor agent, and a UETR the bank already used for another payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_documents_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let used = transfer(Uetr::generate());
    submit(&network, 0, document(&used).as_bytes()).await.unwrap();
    final_status(&network, 0, &used.uetr.to_string()).await;
    let before = bank_state(&network, 0).await;

    let good = document(&transfer(Uetr::generate()));
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]><Document>&lol2;</Document>";
    let wrong_namespace = good.replace("pacs.008.001.08", "pacs.008.001.02");
    let unheld = document(&CreditTransfer {
        debtor: Party::new("Nobody", "C999").unwrap(),
        ..transfer(Uetr::generate())
    });
    let foreign = document(&CreditTransfer {
        debtor_agent: bic(IR),
        creditor_agent: bic(RU),
        ..transfer(Uetr::generate())
    });
    let reused = document(&CreditTransfer { creditor: Party::new("Other", "C001").unwrap(), ..used.clone() });
    let extra = good.replace("<RmtInf>", "<Purp><Cd>SALA</Cd></Purp><RmtInf>");
    let cases: Vec<(&str, Vec<u8>, Code, &str)> = vec![
        ("not XML", b"PAY 100 CNY TO C002".to_vec(), Code::InvalidArgument, "not well-formed XML"),
        ("not UTF-8", vec![0xff, 0xfe, b'<'], Code::InvalidArgument, "XML"),
        ("wrong namespace", wrong_namespace.into_bytes(), Code::InvalidArgument, "pacs.008.001.02"),
        ("billion laughs", laughs.as_bytes().to_vec(), Code::InvalidArgument, "DOCTYPE"),
        ("not carried", extra.into_bytes(), Code::InvalidArgument, "Purp"),
        (
            "account not held",
            unheld.into_bytes(),
            Code::FailedPrecondition,
            "CdtTrfTxInf[1]/DbtrAcct/Id: no customer account C999",
        ),
        ("another debtor agent", foreign.into_bytes(), Code::FailedPrecondition, "DbtrAgt/FinInstnId/BICFI"),
        ("a used UETR", reused.into_bytes(), Code::FailedPrecondition, "PmtId/UETR"),
    ];
    for (case, bytes, code, says) in cases {
        let status = submit(&network, 0, &bytes).await.expect_err(case);
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert!(status.message().contains(says), "{case}: {:?} should say {says:?}", status.message());
    }
    // 100 MB: the node reads the frame's length and refuses it before reading it whole.
    let mut huge = good.clone().into_bytes();
    huge.resize(100 * 1024 * 1024, b' ');
    let status = submit(&network, 0, &huge).await.expect_err("100 MB");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");

    network.banks[0].bank.set_account_blocked("C001", true).await.unwrap();
    let blocked = submit(&network, 0, good.as_bytes()).await.expect_err("blocked");
    assert_eq!(blocked.code(), Code::FailedPrecondition, "{blocked:?}");
    assert!(blocked.message().contains("blocked (AC06)"), "{blocked:?}");
    network.banks[0].bank.set_account_blocked("C001", false).await.unwrap();

    assert_eq!(bank_state(&network, 0).await, before, "nothing changed");
    assert_eq!(network.banks[0].bank.outbox_len(), 0, "nothing was sent");
    network.stop().await.unwrap();
}

/// Runs `corridor ARGS` from async code (it blocks while the command runs).
async fn run(args: Vec<String>) -> common::cli::Outcome {
    tokio::task::spawn_blocking(move || corridor(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

fn bank_flags(network: &LocalNetwork, index: usize) -> Vec<String> {
    let dir = network.network.root().display().to_string();
    vec!["--dir".into(), dir, "--bank".into(), network.banks[index].url.clone()]
}

fn written(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

// `corridor pay --xml FILE` and `--mt103 FILE` pay at a node, and `corridor export UETR
// --format xml|mt103` prints what the other node holds, equal on the modelled fields
// (issue 20, item 3: the commands a bank engineer feeds real files to).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_pays_a_document_or_an_mt103_and_exports_it() {
    let dir = tempfile::tempdir().unwrap();
    let network = network(dir.path(), &[RU, IR]).await;
    let by_xml = transfer(Uetr::generate());
    let file = written(dir.path(), "order.xml", &document(&by_xml));
    let mut pay = vec!["pay".to_owned(), "--xml".into(), file.display().to_string()];
    pay.extend(bank_flags(&network, 0));
    let uetr = succeeded(run(pay).await).trim().to_owned();
    assert_eq!(uetr, by_xml.uetr.to_string());
    final_status(&network, 1, &uetr).await;
    let export_args = |format: &str| {
        let mut args = vec!["export".to_owned(), uetr.clone(), "--format".into(), format.into()];
        args.extend(bank_flags(&network, 1));
        args.extend(["--type".to_owned(), "pacs.008".to_owned()]);
        args
    };
    let xml = succeeded(run(export_args("xml")).await);
    let exported = iso20022::read_strict(xml.trim().as_bytes()).unwrap();
    assert_eq!(exported.body(), &Body::Pacs008(by_xml.clone()));
    let mt = succeeded(run(export_args("mt103")).await);
    let imported = mt103::import(mt.trim_end_matches('\n'), 0).unwrap();
    assert_eq!(imported.transfer.uetr, by_xml.uetr);
    assert_eq!(
        (imported.transfer.amount, imported.transfer.debtor, imported.transfer.creditor),
        (by_xml.amount, by_xml.debtor.clone(), by_xml.creditor.clone())
    );

    // An MT103 written by Corridor's own MT writer from a payment of its own.
    let by_mt = CreditTransfer { instruction_id: "EDGE-MT-1".into(), ..transfer(Uetr::generate()) };
    let text = mt103::export(&header(RU, IR, Some(by_mt.uetr)), &by_mt).unwrap().text;
    let file = written(dir.path(), "order.mt103", &text);
    let mut pay = vec!["pay".to_owned(), "--mt103".into(), file.display().to_string()];
    pay.extend(bank_flags(&network, 0));
    let uetr = succeeded(run(pay).await).trim().to_owned();
    assert_eq!(uetr, by_mt.uetr.to_string());
    let settled = final_status(&network, 1, &uetr).await;
    assert_eq!(settled.amount.unwrap().minor_units, 10_000);

    // `statement --xml` over all time: the period ends now, both payments in it.
    let mut statement = vec!["statement".to_owned(), "--currency".into(), "CNY".into(), "--xml".into()];
    statement.extend(bank_flags(&network, 1));
    let xml = succeeded(run(statement).await);
    let read = iso20022::read_strict(xml.trim().as_bytes()).unwrap();
    let Body::Camt053(read) = read.body() else { panic!("{read:?}") };
    assert_eq!(read.entries.len(), 2, "{read:?}");
    assert_eq!(read.closing_balance.minor_units, balance(&network, 1, "SYS-SETTLEMENT-CNY"));
    reconciles_clean(&network).await;
    network.stop().await.unwrap();
}

// A 100 MB file given to `corridor pay --xml` is refused before it is read whole or sent
// (the node would refuse its frame anyway), with the limit in the message; so is a file
// that is not there. Issue 20, "Garbage refused": a 100 MB file.
#[test]
fn the_command_line_refuses_a_100_mb_document_unread() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.xml");
    std::fs::File::create(&huge).unwrap().set_len(100 * 1024 * 1024).unwrap();
    let dir_flag = dir.path().display().to_string();
    let huge_flag = huge.display().to_string();
    let args = ["pay", "--dir", &dir_flag, "--bank", "https://127.0.0.1:1", "--xml", &huge_flag];
    let error = refused(corridor(&args));
    assert!(error.contains("104857600 bytes") && error.contains("at most"), "{error}");
    let missing = dir.path().join("missing.xml").display().to_string();
    let args = ["pay", "--dir", &dir_flag, "--bank", "https://127.0.0.1:1", "--mt103", &missing];
    assert!(refused(corridor(&args)).contains("cannot open"));
    let args =
        ["pay", "--dir", &dir_flag, "--bank", "https://127.0.0.1:1", "--xml", &huge_flag, "--amount", "1"];
    assert!(refused(corridor(&args)).contains("cannot be used with"));
}

/// RU (roubles) and IR (rials) with bank nodes, each funded at the hub in its currency,
/// C001 at RU holding 1000.00 RUB, and a RUB/IRR agreement at 512.25 without a spread.
async fn rouble_rial_network(dir: &Path) -> LocalNetwork {
    let pki = corridor::tls::init(dir, &[bic(RU), bic(IR)]).unwrap();
    let mut network = LocalNetwork::start_hub(pki, corridor::hub::HubConfig::default()).await.unwrap();
    let mut admin = network.admin().await.unwrap();
    for (bank, currency) in [(RU, "RUB"), (IR, "IRR")] {
        let request = pb::FundRequest {
            participant_bic: bank.into(),
            currency: currency.into(),
            amount: "1000000.00".into(),
        };
        admin.fund(request).await.unwrap();
    }
    let agreement =
        pb::RateAgreement { currency_pair: "RUB/IRR".into(), rate: "512.25".into(), ..Default::default() };
    admin.set_agreement(pb::SetAgreementRequest { agreement: Some(agreement) }).await.unwrap();
    for (bank, currency) in [(RU, "RUB"), (IR, "IRR")] {
        let index = network.start_bank(bic(bank)).await.unwrap();
        let node = &network.banks[index].bank;
        node.open_account("C001", currency, "Customer one", "1000.00").await.unwrap();
        node.open_account("C002", currency, "Customer two", "").await.unwrap();
    }
    network
}

/// 100.00 RUB from RU's C001 converted at `rate` into rials for IR's C002.
fn converted_transfer(rate: &str) -> CreditTransfer {
    let instructed = Amount::parse("100.00", Currency::parse("RUB").unwrap()).unwrap();
    let rate = Rate::parse(rate).unwrap();
    let conversion = Conversion { instructed, rate, quote_id: None };
    let amount = rate.convert(instructed, Currency::parse("IRR").unwrap()).unwrap();
    CreditTransfer { amount, conversion: Some(conversion), ..transfer(Uetr::generate()) }
}

// A converted document pays only at the rate the bank would apply itself (here the hub's
// agreement in force): one at another rate is refused naming XchgRate and changes
// nothing; one at the agreement's rate is paid as submitted, conversion and all, and
// exported so at the receiver. A bank signs no rate it was only told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converted_document_pays_only_at_the_banks_own_rate() {
    let dir = tempfile::tempdir().unwrap();
    let network = rouble_rial_network(dir.path()).await;
    let before = bank_state(&network, 0).await;
    let refused = submit(&network, 0, document(&converted_transfer("600")).as_bytes()).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("CdtTrfTxInf[1]/XchgRate") && refused.message().contains("512.25"));
    assert_eq!(bank_state(&network, 0).await, before, "nothing changed");

    let submitted = converted_transfer("512.25");
    let payment = submit(&network, 0, document(&submitted).as_bytes()).await.unwrap();
    let settled = final_status(&network, 0, &payment.uetr).await;
    assert_eq!(status_of(&settled), pb::PaymentStatus::Acsc, "{settled:?}");
    final_status(&network, 1, &payment.uetr).await;
    let received = export(&network, 1, &payment.uetr).await;
    let booked = iso20022::read_strict(one(&received, "pacs.008", false).xml.as_bytes()).unwrap();
    assert_eq!(booked.body(), &Body::Pacs008(submitted.clone()));
    assert_eq!(balance(&network, 1, "C002"), submitted.amount.minor_units());
    reconciles_clean(&network).await;
    network.stop().await.unwrap();
}
