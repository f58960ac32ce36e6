//! The domain model at the wire edge (DESIGN.md, "Bad input gets a clear error and
//! changes nothing"): every message type survives model -> protobuf -> model unchanged,
//! and every invalid value is refused with an error that names its field.

mod common;

use common::*;
use corridor::model::wire::{decode_message, encode_message};
use corridor::model::*;
use corridor::pb;
use prost::Message as _;

#[test]
fn every_message_type_round_trips_through_protobuf() {
    let messages = every_message_type();
    let types: Vec<MessageType> = messages.iter().map(Message::message_type).collect();
    assert_eq!(types, MessageType::ALL, "the fixture covers every message type");
    for message in messages {
        let bytes = encode_message(&message);
        assert_eq!(decode_message(&bytes).unwrap(), message, "{}", message.message_type());
        let wire = pb::Message::from(&message);
        assert_eq!(Message::try_from(wire).unwrap(), message);
    }
}

/// Encodes `message`, lets `corrupt` change the wire form, and returns the error.
fn refused(corrupt: impl FnOnce(&mut pb::Message)) -> ModelError {
    let message = &every_message_type()[0];
    let mut wire = pb::Message::from(message);
    corrupt(&mut wire);
    decode_message(&wire.encode_to_vec()).expect_err("the corrupted message must be refused")
}

fn pacs008(wire: &mut pb::Message) -> &mut pb::CreditTransfer {
    match wire.body.as_mut().unwrap() {
        pb::message::Body::Pacs008(transfer) => transfer,
        _ => unreachable!("the first fixture is a pacs.008"),
    }
}

#[test]
fn a_bad_bic_is_refused_naming_the_field() {
    let err = refused(|w| w.header.as_mut().unwrap().sender_bic = "BANK-RU".into());
    assert_eq!(err.field, "header.sender_bic", "{err}");
    let err = refused(|w| pacs008(w).creditor_agent_bic = "bankirth".into());
    assert_eq!(err.field, "pacs008.creditor_agent_bic", "{err}");
}

#[test]
fn a_uuid_that_is_not_v4_is_refused_naming_the_field() {
    let v1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    let err = refused(|w| pacs008(w).uetr = v1.into());
    assert_eq!(err.field, "pacs008.uetr", "{err}");
    let err = refused(|w| w.header.as_mut().unwrap().uetr = "not-a-uuid".into());
    assert_eq!(err.field, "header.uetr", "{err}");
}

#[test]
fn an_unknown_currency_is_refused_naming_the_field() {
    let err = refused(|w| pacs008(w).interbank_settlement_amount.as_mut().unwrap().currency = "XYZ".into());
    assert_eq!(err.field, "pacs008.interbank_settlement_amount.currency", "{err}");
}

#[test]
fn zero_and_negative_amounts_are_refused_naming_the_field() {
    for minor_units in [0, -1, i64::MIN] {
        let err =
            refused(|w| pacs008(w).interbank_settlement_amount.as_mut().unwrap().minor_units = minor_units);
        assert_eq!(err.field, "pacs008.interbank_settlement_amount.minor_units", "{err}");
    }
}

#[test]
fn too_many_decimals_and_overflow_are_refused_naming_the_field() {
    let eur = currency("EUR");
    assert_eq!(Amount::parse("12.345", eur).unwrap_err().field, "amount");
    assert_eq!(Amount::parse("92233720368547758.08", eur).unwrap_err().field, "amount");
    let max = Amount::parse("92233720368547758.07", eur).unwrap();
    assert!(max.checked_add(Amount::parse("0.01", eur).unwrap()).is_err());
}

#[test]
fn inconsistent_messages_are_refused() {
    let err = refused(|w| w.header.as_mut().unwrap().message_type = pb::MessageType::Pacs002 as i32);
    assert_eq!(err.field, "header.message_type", "{err}");
    let err = refused(|w| w.header.as_mut().unwrap().uetr = Uetr::generate().to_string());
    assert_eq!(err.field, "header.uetr", "{err}");
    let err = refused(|w| pacs008(w).debtor_agent_bic = "BANKCNBJXXX".into());
    assert_eq!(err.field, "pacs008.debtor_agent_bic", "{err}");
    let err = refused(|w| w.header = None);
    assert_eq!(err.field, "header", "{err}");
    let err = refused(|w| w.body = None);
    assert_eq!(err.field, "body", "{err}");
    let err = refused(|w| pacs008(w).charge_bearer = 99);
    assert_eq!(err.field, "pacs008.charge_bearer", "{err}");
    let err = refused(|w| pacs008(w).settlement_date = "28/11/2026".into());
    assert_eq!(err.field, "pacs008.settlement_date", "{err}");
    let err = refused(|w| pacs008(w).debtor.as_mut().unwrap().name = String::new());
    assert_eq!(err.field, "pacs008.debtor.name", "{err}");
    let err = refused(|w| pacs008(w).creditor.as_mut().unwrap().account = "x".repeat(35));
    assert_eq!(err.field, "pacs008.creditor.account", "{err}");
}

#[test]
fn a_rejection_without_a_reason_is_refused() {
    let message = &every_message_type()[1];
    let mut wire = pb::Message::from(message);
    if let Some(pb::message::Body::Pacs002(report)) = wire.body.as_mut() {
        report.reason_code.clear();
    }
    let err = Message::try_from(wire).unwrap_err();
    assert_eq!(err.field, "pacs002.reason_code", "{err}");
}

#[test]
fn a_statement_that_does_not_add_up_is_refused() {
    let message = &every_message_type()[5];
    let mut wire = pb::Message::from(message);
    if let Some(pb::message::Body::Camt053(statement)) = wire.body.as_mut() {
        statement.closing_balance.as_mut().unwrap().minor_units += 1;
    }
    let err = Message::try_from(wire).unwrap_err();
    assert_eq!(err.field, "camt053.closing_balance", "{err}");
}

#[test]
fn garbage_bytes_are_refused_not_panicked_on() {
    for garbage in [&b""[..], b"\xff\xff\xff", b"hello world", &[0x0a, 0x80]] {
        assert!(decode_message(garbage).is_err());
    }
}

/// A cross-currency pacs.008 (and the pacs.004 that returns it) keep their conversion
/// through the wire: instructed amount, rate and quote.
#[test]
fn a_converted_payment_and_its_return_round_trip() {
    let mut messages = every_message_type();
    let conversion = Conversion {
        instructed: amount("100.00", "RUB"),
        rate: Rate::parse("510.969375").unwrap(),
        quote_id: Some("Q1".into()),
    };
    let header = messages[0].header().clone();
    let Body::Pacs008(transfer) = messages[0].body().clone() else { unreachable!("the first is a pacs.008") };
    let transfer = CreditTransfer {
        amount: amount("51096.94", "IRR"),
        conversion: Some(conversion.clone()),
        ..transfer
    };
    transfer.check_conversion().unwrap();
    let converted = Message::new(header, Body::Pacs008(transfer)).unwrap();
    assert_eq!(decode_message(&encode_message(&converted)).unwrap(), converted);
    let header = messages[2].header().clone();
    let Body::Pacs004(ret) = messages.remove(2).body().clone() else {
        unreachable!("the third is a pacs.004")
    };
    let ret = PaymentReturn {
        returned_amount: amount("51096.94", "IRR"),
        conversion: Some(Conversion { quote_id: None, ..conversion }),
        ..ret
    };
    let returned = Message::new(header, Body::Pacs004(ret)).unwrap();
    assert_eq!(decode_message(&encode_message(&returned)).unwrap(), returned);
}

/// A conversion on the wire is whole or absent, in another currency, with a rate that
/// is decimal text; each rule names its field.
#[test]
fn a_broken_conversion_is_refused_naming_the_field() {
    let rub = || Some(pb::Money { minor_units: 10_000, currency: "RUB".into() });
    type Corruption = fn(&mut pb::CreditTransfer);
    let cases: Vec<(Corruption, &str)> = vec![
        (|t| t.exchange_rate = "510.9".into(), "pacs008.instructed_amount"),
        (
            |t| t.instructed_amount = Some(pb::Money { minor_units: 10_000, currency: "RUB".into() }),
            "pacs008.exchange_rate",
        ),
        (|t| t.quote_id = "Q1".into(), "pacs008.quote_id"),
        (
            |t| {
                t.instructed_amount = t.interbank_settlement_amount.clone();
                t.exchange_rate = "1".into();
            },
            "pacs008.instructed_amount",
        ),
        (
            |t| {
                t.instructed_amount = Some(pb::Money { minor_units: 0, currency: "CNY".into() });
                t.exchange_rate = "1".into();
            },
            "pacs008.instructed_amount.minor_units",
        ),
    ];
    for (corrupt, field) in cases {
        let err = refused(|w| corrupt(pacs008(w)));
        assert_eq!(err.field, field, "{err}");
    }
    for rate in ["-1", "0", "1e3", "abc", " 1", "1.", "12345678901234567890"] {
        let err = refused(|w| {
            let t = pacs008(w);
            t.instructed_amount = rub().map(|m| pb::Money { currency: "CNY".into(), ..m });
            t.exchange_rate = rate.into();
        });
        assert_eq!(err.field, "pacs008.exchange_rate", "{rate:?}: {err}");
    }
}

/// A statement period (the hub's and the banks' statements read it alike): both bounds
/// left out means all time; otherwise `0 <= from < to`, and anything else is refused
/// with an error naming the field and what it got.
#[test]
fn a_statement_period_is_all_time_or_from_before_to() {
    use corridor::model::wire::statement_period;
    assert_eq!(statement_period(0, 0).unwrap(), (0, i64::MAX));
    assert_eq!(statement_period(0, 5).unwrap(), (0, 5));
    assert_eq!(statement_period(5, 6).unwrap(), (5, 6));
    for (from, to) in [(5, 5), (6, 5), (-1, 5), (5, 0), (i64::MIN, i64::MAX)] {
        let error = statement_period(from, to).unwrap_err();
        assert_eq!(error.field, "from_time_unix_ms");
        assert!(error.rule.contains(&format!("got {from} and {to}")), "{error}");
    }
}
