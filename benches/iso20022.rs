//! ISO 20022 XML at the edge: a pacs.008 and a pacs.002, XML to model and model to XML.
//!
//! XML to model is `iso20022::read_strict`, what a node runs on a message it acts on:
//! parse (safely), map every element, check as the model and the wire check (the message
//! is encoded and decoded once), and refuse anything not carried. Model to XML is
//! `iso20022::write`: AppHdr and Document under an Envelope.
//!
//! Expected on the reference 2-core machine (shared/STACK.md), one core: a converted
//! pacs.008 (about 3 KB of XML) reads in 20 to 40 µs and writes in under 10 µs; a pacs.002
//! (about 1.5 KB) in about half of each. Issue 20's target: at least 20,000 pacs.008 read
//! and mapped per second on one core (50 µs each), and as many written. Run with
//! `cargo bench --bench iso20022`.
//!
//! Measured (2026-12-05 08:46 UTC, that machine otherwise idle, release build, one core):
//! pacs.008 XML to model 29.1 µs (34,400/s), model to XML 3.39 µs (295,000/s); pacs.002
//! XML to model 16.4 µs (60,800/s), model to XML 2.27 µs (440,000/s).

use corridor::iso20022;
use corridor::model::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

/// A converted pacs.008 with every element Corridor writes: instructed amount and rate,
/// a quote id and a sequence number in the supplementary data, remittance information.
fn pacs008() -> Message {
    let sample = corridor::sim::sample_credit_transfer(bic("BANKRUMMXXX"), bic("BANKIRTHXXX"));
    let Body::Pacs008(mut transfer) = sample.body().clone() else { unreachable!("a pacs.008") };
    let rub = Currency::parse("RUB").unwrap();
    let irr = Currency::parse("IRR").unwrap();
    transfer.conversion = Some(Conversion {
        instructed: Amount::parse("1000.00", rub).unwrap(),
        rate: Rate::parse("510.969375").unwrap(),
        quote_id: Some("Q-2026-0001".into()),
    });
    transfer.amount = Amount::parse("510969.38", irr).unwrap();
    Message::new(sample.header().clone(), Body::Pacs008(transfer)).unwrap()
}

/// The receiver's ACSC for that payment.
fn pacs002(payment: &Message) -> Message {
    let header = Header {
        message_id: MessageId::generate(),
        sender: payment.header().receiver,
        receiver: payment.header().sender,
        ..payment.header().clone()
    };
    let report = PaymentStatusReport {
        original_message_id: payment.header().message_id.clone(),
        uetr: payment.header().uetr.unwrap(),
        status: PaymentStatus::Acsc,
        reason: None,
        additional_information: "credited".into(),
    };
    Message::new(header, Body::Pacs002(report)).unwrap()
}

fn xml(c: &mut Criterion) {
    let payment = pacs008();
    let report = pacs002(&payment);
    let mut group = c.benchmark_group("iso20022");
    group.throughput(Throughput::Elements(1));
    for (name, message) in [("pacs008", &payment), ("pacs002", &report)] {
        let text = iso20022::write(message).unwrap();
        // What is measured is what a node does: the read gives back the very message.
        assert_eq!(&iso20022::read_strict(text.as_bytes()).unwrap(), message);
        group.bench_function(format!("{name}_xml_to_model"), |b| {
            b.iter(|| iso20022::read_strict(std::hint::black_box(text.as_bytes())).unwrap())
        });
        group.bench_function(format!("{name}_model_to_xml"), |b| {
            b.iter(|| iso20022::write(std::hint::black_box(message)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, xml);
criterion_main!(benches);
