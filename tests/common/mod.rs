//! Fixtures shared by the integration tests: one sample of every message type.
#![allow(dead_code)]

pub mod cli;
pub mod external;
pub mod fault_proxy;
pub mod http;
pub mod nats;
pub mod net;
pub mod nodes;
pub mod ports;
pub mod replicated;
pub mod xsd;

use corridor::model::*;
use time::macros::date;

pub fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

pub fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

pub fn amount(text: &str, code: &str) -> Amount {
    Amount::parse(text, currency(code)).unwrap()
}

pub const RU: &str = "BANKRUMMXXX";
pub const IR: &str = "BANKIRTHXXX";

pub fn header(sender: &str, receiver: &str, uetr: Option<Uetr>) -> Header {
    Header {
        message_id: MessageId::generate(),
        uetr,
        sender: bic(sender),
        receiver: bic(receiver),
        creation_time_unix_ms: corridor::clock::unix_ms_now(),
        sequence_number: 7,
        possible_duplicate: false,
    }
}

pub fn credit_transfer(uetr: Uetr) -> CreditTransfer {
    CreditTransfer {
        instruction_id: "INSTR-1".into(),
        end_to_end_id: "E2E-1".into(),
        uetr,
        amount: amount("1234.56", "RUB"),
        conversion: None,
        settlement_date: date!(2026 - 11 - 28),
        charge_bearer: ChargeBearer::Shar,
        debtor: Party::new("Ivan Petrov", "RU-0001").unwrap(),
        debtor_agent: bic(RU),
        creditor: Party::new("Sara Ahmadi", "IR-0001").unwrap(),
        creditor_agent: bic(IR),
        remittance_information: "Invoice 42".into(),
    }
}

/// One valid message of every type, each a different body.
pub fn every_message_type() -> Vec<Message> {
    let uetr = Uetr::generate();
    let original = MessageId::generate();
    let body_pacs008 = Body::Pacs008(credit_transfer(uetr));
    let body_pacs002 = Body::Pacs002(PaymentStatusReport {
        original_message_id: original.clone(),
        uetr,
        status: PaymentStatus::Rjct,
        reason: Some(ReasonCode::Ac01),
        additional_information: "no such account".into(),
    });
    let body_pacs004 = Body::Pacs004(PaymentReturn {
        return_id: "RET-1".into(),
        original_message_id: original.clone(),
        uetr,
        returned_amount: amount("10.00", "RUB"),
        conversion: None,
        reason: ReasonCode::Ac04,
        additional_information: String::new(),
    });
    let body_camt056 = Body::Camt056(CancellationRequest {
        case_id: "CASE-1".into(),
        original_message_id: original.clone(),
        uetr,
        original_amount: amount("1234.56", "RUB"),
        reason: ReasonCode::Dupl,
        additional_information: "sent twice".into(),
    });
    let body_camt029 = Body::Camt029(ResolutionOfInvestigation {
        case_id: "CASE-1".into(),
        original_message_id: original.clone(),
        uetr,
        status: InvestigationStatus::Rjcr,
        reason: Some(ReasonCode::Noas),
        additional_information: String::new(),
    });
    let body_camt053 = Body::Camt053(Statement {
        statement_id: "STMT-1".into(),
        account: "SETTLEMENT".into(),
        from_time_unix_ms: 1_000,
        to_time_unix_ms: 2_000,
        opening_balance: Balance { minor_units: -500, currency: currency("RUB") },
        closing_balance: Balance { minor_units: 500, currency: currency("RUB") },
        entries: vec![
            StatementEntry {
                entry_reference: "E1".into(),
                uetr: Some(uetr),
                message_id: Some(original.clone()),
                amount: amount("15.00", "RUB"),
                direction: EntryDirection::Crdt,
                booking_time_unix_ms: 1_500,
            },
            StatementEntry {
                entry_reference: "E2".into(),
                uetr: None,
                message_id: None,
                amount: amount("5.00", "RUB"),
                direction: EntryDirection::Dbit,
                booking_time_unix_ms: 1_600,
            },
        ],
    });
    let mut messages = Vec::new();
    for body in [body_pacs008, body_pacs002, body_pacs004, body_camt056, body_camt029] {
        messages.push(Message::new(header(RU, IR, Some(uetr)), body).unwrap());
    }
    messages.push(Message::new(header(RU, IR, None), body_camt053).unwrap());
    messages
}
