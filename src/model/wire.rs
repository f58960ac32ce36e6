//! The one place where protobuf types become domain types and back.
//!
//! Every rule is checked on the way in; a failure names the field by its wire path.
//! The way out cannot fail: a domain value is valid by construction.

use prost::Message as _;
use time::Date;
use time::macros::format_description;

use super::ids::parse_max35;
use super::message::{TEXT_LENGTH_MAX, check_text, parse_account_id};
use super::*;
use crate::pb;

/// Decodes and validates the exact payload bytes of an envelope.
pub fn decode_message(payload: &[u8]) -> Result<Message, ModelError> {
    let message = pb::Message::decode(payload)
        .map_err(|error| ModelError::new("payload", format!("is not a corridor.v1.Message: {error}")))?;
    Message::try_from(message)
}

/// Encodes a message to the bytes that will be signed and carried unchanged.
pub fn encode_message(message: &Message) -> Vec<u8> {
    pb::Message::from(message).encode_to_vec()
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ModelError> {
    value.ok_or_else(|| ModelError::new(field, "is required"))
}

fn bic(text: &str, field: &str) -> Result<Bic, ModelError> {
    Bic::parse(text).map_err(|e| e.at(field))
}

fn uetr(text: &str, field: &str) -> Result<Uetr, ModelError> {
    Uetr::parse(text).map_err(|e| e.at(field))
}

fn message_id(text: &str, field: &str) -> Result<MessageId, ModelError> {
    MessageId::parse(text).map_err(|e| e.at(field))
}

fn max35(text: &str, field: &str) -> Result<String, ModelError> {
    parse_max35(text, field)
}

fn reason(text: &str, field: &str) -> Result<ReasonCode, ModelError> {
    ReasonCode::parse(text).map_err(|e| e.at(field))
}

fn optional_reason(text: &str, field: &str) -> Result<Option<ReasonCode>, ModelError> {
    if text.is_empty() { Ok(None) } else { reason(text, field).map(Some) }
}

fn info(text: &str, field: &str) -> Result<String, ModelError> {
    check_text(text, field, TEXT_LENGTH_MAX, false)
}

fn currency(text: &str, field: &str) -> Result<Currency, ModelError> {
    Currency::parse(text).map_err(|e| e.at(field))
}

/// A positive amount from wire money; errors name `field`.
pub fn amount(money: Option<pb::Money>, field: &str) -> Result<Amount, ModelError> {
    let money = required(money, field)?;
    let currency = currency(&money.currency, &format!("{field}.currency"))?;
    Amount::from_minor_units(money.minor_units, currency).map_err(|e| e.at(&format!("{field}.minor_units")))
}

/// A signed balance from wire money.
fn balance(money: Option<pb::Money>, field: &str) -> Result<Balance, ModelError> {
    let money = required(money, field)?;
    let currency = currency(&money.currency, &format!("{field}.currency"))?;
    Ok(Balance { minor_units: money.minor_units, currency })
}

/// Wire money of an amount.
pub fn money_of_amount(amount: &Amount) -> pb::Money {
    pb::Money { minor_units: amount.minor_units(), currency: amount.currency().code().to_owned() }
}

fn money_of_balance(balance: &Balance) -> pb::Money {
    pb::Money { minor_units: balance.minor_units, currency: balance.currency.code().to_owned() }
}

fn party(party: Option<pb::Party>, field: &str) -> Result<Party, ModelError> {
    let party = required(party, field)?;
    let name = check_text(&party.name, &format!("{field}.name"), TEXT_LENGTH_MAX, true)?;
    let account = parse_account_id(&party.account).map_err(|e| e.at(&format!("{field}.account")))?;
    Ok(Party { name, account })
}

fn party_of(party: &Party) -> pb::Party {
    pb::Party { name: party.name.clone(), account: party.account.clone() }
}

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]");

/// A Unix millisecond time as RFC 3339 UTC text (the number itself if out of range).
pub fn format_unix_ms(unix_ms: i64) -> String {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| unix_ms.to_string())
}

/// RFC 3339 text (such as `2026-11-28T22:43:00Z`) as Unix milliseconds.
pub fn parse_unix_ms(text: &str, field: &str) -> Result<i64, ModelError> {
    let format = time::format_description::well_known::Rfc3339;
    let parsed = time::OffsetDateTime::parse(text, &format).map_err(|e| {
        ModelError::new(field, format!("is an RFC 3339 time such as 2026-11-28T22:43:00Z ({e})"))
    })?;
    i64::try_from(parsed.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| ModelError::new(field, "is out of range"))
}

/// The period `[from, to)` of a statement request, in Unix milliseconds: 0 and 0 (the
/// fields left out) mean all time. The hub's and the banks' statements read it alike.
pub fn statement_period(from_unix_ms: i64, to_unix_ms: i64) -> Result<(i64, i64), ModelError> {
    match (from_unix_ms, to_unix_ms) {
        (0, 0) => Ok((0, i64::MAX)),
        (from, to) if from >= 0 && from < to => Ok((from, to)),
        (from, to) => Err(ModelError::new(
            "from_time_unix_ms",
            format!(
                "a statement period needs 0 <= from_time_unix_ms < to_time_unix_ms, or both 0 for all time \
                 (got {from} and {to})"
            ),
        )),
    }
}

/// Formats a settlement date as ISO 8601 (`2026-11-28`).
pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).expect("a Date always formats as YYYY-MM-DD")
}

fn date(text: &str, field: &str) -> Result<Date, ModelError> {
    Date::parse(text, DATE_FORMAT)
        .map_err(|_| ModelError::new(field, format!("is an ISO 8601 date, YYYY-MM-DD (got {text:?})")))
}

/// The wire enum value for a message type.
pub fn message_type_to_pb(message_type: MessageType) -> pb::MessageType {
    match message_type {
        MessageType::Pacs008 => pb::MessageType::Pacs008,
        MessageType::Pacs002 => pb::MessageType::Pacs002,
        MessageType::Pacs004 => pb::MessageType::Pacs004,
        MessageType::Camt056 => pb::MessageType::Camt056,
        MessageType::Camt029 => pb::MessageType::Camt029,
        MessageType::Camt053 => pb::MessageType::Camt053,
    }
}

/// The domain payment status for a wire value.
pub fn payment_status_from_pb(value: i32, field: &str) -> Result<PaymentStatus, ModelError> {
    match pb::PaymentStatus::try_from(value) {
        Ok(pb::PaymentStatus::Actc) => Ok(PaymentStatus::Actc),
        Ok(pb::PaymentStatus::Acsp) => Ok(PaymentStatus::Acsp),
        Ok(pb::PaymentStatus::Acsc) => Ok(PaymentStatus::Acsc),
        Ok(pb::PaymentStatus::Accc) => Ok(PaymentStatus::Accc),
        Ok(pb::PaymentStatus::Pdng) => Ok(PaymentStatus::Pdng),
        Ok(pb::PaymentStatus::Rjct) => Ok(PaymentStatus::Rjct),
        Ok(pb::PaymentStatus::Unspecified) | Err(_) => Err(ModelError::new(
            field,
            format!("is required: one of ACTC, ACSP, ACSC, ACCC, PDNG, RJCT (got {value})"),
        )),
    }
}

/// The wire value for a domain payment status.
pub fn payment_status_to_pb(status: PaymentStatus) -> pb::PaymentStatus {
    match status {
        PaymentStatus::Actc => pb::PaymentStatus::Actc,
        PaymentStatus::Acsp => pb::PaymentStatus::Acsp,
        PaymentStatus::Acsc => pb::PaymentStatus::Acsc,
        PaymentStatus::Accc => pb::PaymentStatus::Accc,
        PaymentStatus::Pdng => pb::PaymentStatus::Pdng,
        PaymentStatus::Rjct => pb::PaymentStatus::Rjct,
    }
}

fn charge_bearer(value: i32) -> Result<ChargeBearer, ModelError> {
    match pb::ChargeBearer::try_from(value) {
        Ok(pb::ChargeBearer::Debt) => Ok(ChargeBearer::Debt),
        Ok(pb::ChargeBearer::Cred) => Ok(ChargeBearer::Cred),
        Ok(pb::ChargeBearer::Shar) => Ok(ChargeBearer::Shar),
        Ok(pb::ChargeBearer::Slev) => Ok(ChargeBearer::Slev),
        Ok(pb::ChargeBearer::Unspecified) | Err(_) => Err(ModelError::new(
            "pacs008.charge_bearer",
            format!("is required: one of DEBT, CRED, SHAR, SLEV (got {value})"),
        )),
    }
}

fn charge_bearer_to_pb(value: ChargeBearer) -> pb::ChargeBearer {
    match value {
        ChargeBearer::Debt => pb::ChargeBearer::Debt,
        ChargeBearer::Cred => pb::ChargeBearer::Cred,
        ChargeBearer::Shar => pb::ChargeBearer::Shar,
        ChargeBearer::Slev => pb::ChargeBearer::Slev,
    }
}

fn investigation_status(value: i32) -> Result<InvestigationStatus, ModelError> {
    match pb::InvestigationStatus::try_from(value) {
        Ok(pb::InvestigationStatus::Cncl) => Ok(InvestigationStatus::Cncl),
        Ok(pb::InvestigationStatus::Rjcr) => Ok(InvestigationStatus::Rjcr),
        Ok(pb::InvestigationStatus::Pdcr) => Ok(InvestigationStatus::Pdcr),
        Ok(pb::InvestigationStatus::Unspecified) | Err(_) => Err(ModelError::new(
            "camt029.status",
            format!("is required: one of CNCL, RJCR, PDCR (got {value})"),
        )),
    }
}

/// An investigation status on the wire.
pub fn investigation_status_to_pb(value: InvestigationStatus) -> pb::InvestigationStatus {
    match value {
        InvestigationStatus::Cncl => pb::InvestigationStatus::Cncl,
        InvestigationStatus::Rjcr => pb::InvestigationStatus::Rjcr,
        InvestigationStatus::Pdcr => pb::InvestigationStatus::Pdcr,
    }
}

fn entry_direction(value: i32, field: &str) -> Result<EntryDirection, ModelError> {
    match pb::EntryDirection::try_from(value) {
        Ok(pb::EntryDirection::Crdt) => Ok(EntryDirection::Crdt),
        Ok(pb::EntryDirection::Dbit) => Ok(EntryDirection::Dbit),
        Ok(pb::EntryDirection::Unspecified) | Err(_) => {
            Err(ModelError::new(field, format!("is required: CRDT or DBIT (got {value})")))
        }
    }
}

fn entry_direction_to_pb(value: EntryDirection) -> pb::EntryDirection {
    match value {
        EntryDirection::Crdt => pb::EntryDirection::Crdt,
        EntryDirection::Dbit => pb::EntryDirection::Dbit,
    }
}

impl TryFrom<pb::Message> for Message {
    type Error = ModelError;

    fn try_from(message: pb::Message) -> Result<Self, ModelError> {
        let header = required(message.header, "header")?;
        let body = match required(message.body, "body")? {
            pb::message::Body::Pacs008(b) => Body::Pacs008(credit_transfer(b)?),
            pb::message::Body::Pacs002(b) => Body::Pacs002(status_report(b)?),
            pb::message::Body::Pacs004(b) => Body::Pacs004(payment_return(b)?),
            pb::message::Body::Camt056(b) => Body::Camt056(cancellation_request(b)?),
            pb::message::Body::Camt029(b) => Body::Camt029(resolution(b)?),
            pb::message::Body::Camt053(b) => Body::Camt053(statement_from_pb(b)?),
        };
        let declared = header.message_type;
        if declared != message_type_to_pb(body.message_type()) as i32 {
            return Err(ModelError::new(
                "header.message_type",
                format!("must agree with the body, a {} (got {declared})", body.message_type()),
            ));
        }
        let header = Header {
            message_id: message_id(&header.message_id, "header.message_id")?,
            uetr: if header.uetr.is_empty() { None } else { Some(uetr(&header.uetr, "header.uetr")?) },
            sender: bic(&header.sender_bic, "header.sender_bic")?,
            receiver: bic(&header.receiver_bic, "header.receiver_bic")?,
            creation_time_unix_ms: header.creation_time_unix_ms,
            sequence_number: header.sequence_number,
            possible_duplicate: header.possible_duplicate,
        };
        if header.creation_time_unix_ms <= 0 {
            return Err(ModelError::new("header.creation_time_unix_ms", "must be a positive Unix time"));
        }
        Message::new(header, body)
    }
}

/// A conversion on the wire: an instructed amount and a rate, both or neither, in
/// another currency than the settlement amount's; a quote id only with them.
fn conversion(
    instructed: Option<pb::Money>,
    rate: &str,
    quote_id: &str,
    settlement: &Amount,
    message: &str,
) -> Result<Option<Conversion>, ModelError> {
    let (instructed_field, rate_field) =
        (format!("{message}.instructed_amount"), format!("{message}.exchange_rate"));
    match (instructed, rate.is_empty()) {
        (None, true) => {
            if !quote_id.is_empty() {
                return Err(ModelError::new(format!("{message}.quote_id"), "is set only with a conversion"));
            }
            Ok(None)
        }
        (None, false) => Err(ModelError::new(&instructed_field, "is required with an exchange rate")),
        (Some(_), true) => Err(ModelError::new(&rate_field, "is required with an instructed amount")),
        (Some(money), false) => {
            let instructed = amount(Some(money), &instructed_field)?;
            if instructed.currency() == settlement.currency() {
                return Err(ModelError::new(
                    &instructed_field,
                    format!("is in {}, the settlement currency: nothing to convert", settlement.currency()),
                ));
            }
            let rate = Rate::parse(rate).map_err(|e| e.at(&rate_field))?;
            let quote_id = if quote_id.is_empty() {
                None
            } else {
                Some(max35(quote_id, &format!("{message}.quote_id"))?)
            };
            Ok(Some(Conversion { instructed, rate, quote_id }))
        }
    }
}

fn credit_transfer(b: pb::CreditTransfer) -> Result<CreditTransfer, ModelError> {
    let settlement_amount = amount(b.interbank_settlement_amount, "pacs008.interbank_settlement_amount")?;
    let conversion =
        conversion(b.instructed_amount, &b.exchange_rate, &b.quote_id, &settlement_amount, "pacs008")?;
    Ok(CreditTransfer {
        instruction_id: max35(&b.instruction_id, "pacs008.instruction_id")?,
        end_to_end_id: max35(&b.end_to_end_id, "pacs008.end_to_end_id")?,
        uetr: uetr(&b.uetr, "pacs008.uetr")?,
        amount: settlement_amount,
        conversion,
        settlement_date: date(&b.settlement_date, "pacs008.settlement_date")?,
        charge_bearer: charge_bearer(b.charge_bearer)?,
        debtor: party(b.debtor, "pacs008.debtor")?,
        debtor_agent: bic(&b.debtor_agent_bic, "pacs008.debtor_agent_bic")?,
        creditor: party(b.creditor, "pacs008.creditor")?,
        creditor_agent: bic(&b.creditor_agent_bic, "pacs008.creditor_agent_bic")?,
        remittance_information: info(&b.remittance_information, "pacs008.remittance_information")?,
    })
}

fn status_report(b: pb::PaymentStatusReport) -> Result<PaymentStatusReport, ModelError> {
    let report = PaymentStatusReport {
        original_message_id: message_id(&b.original_message_id, "pacs002.original_message_id")?,
        uetr: uetr(&b.uetr, "pacs002.uetr")?,
        status: payment_status_from_pb(b.status, "pacs002.status")?,
        reason: optional_reason(&b.reason_code, "pacs002.reason_code")?,
        additional_information: info(&b.additional_information, "pacs002.additional_information")?,
    };
    report.validate()?;
    Ok(report)
}

fn payment_return(b: pb::PaymentReturn) -> Result<PaymentReturn, ModelError> {
    let returned_amount = amount(b.returned_amount, "pacs004.returned_amount")?;
    let conversion =
        conversion(b.returned_instructed_amount, &b.exchange_rate, "", &returned_amount, "pacs004")?;
    Ok(PaymentReturn {
        return_id: max35(&b.return_id, "pacs004.return_id")?,
        original_message_id: message_id(&b.original_message_id, "pacs004.original_message_id")?,
        uetr: uetr(&b.uetr, "pacs004.uetr")?,
        returned_amount,
        conversion,
        reason: reason(&b.reason_code, "pacs004.reason_code")?,
        additional_information: info(&b.additional_information, "pacs004.additional_information")?,
    })
}

fn cancellation_request(b: pb::CancellationRequest) -> Result<CancellationRequest, ModelError> {
    Ok(CancellationRequest {
        case_id: max35(&b.case_id, "camt056.case_id")?,
        original_message_id: message_id(&b.original_message_id, "camt056.original_message_id")?,
        uetr: uetr(&b.uetr, "camt056.uetr")?,
        original_amount: amount(b.original_amount, "camt056.original_amount")?,
        reason: reason(&b.reason_code, "camt056.reason_code")?,
        additional_information: info(&b.additional_information, "camt056.additional_information")?,
    })
}

fn resolution(b: pb::ResolutionOfInvestigation) -> Result<ResolutionOfInvestigation, ModelError> {
    let resolution = ResolutionOfInvestigation {
        case_id: max35(&b.case_id, "camt029.case_id")?,
        original_message_id: message_id(&b.original_message_id, "camt029.original_message_id")?,
        uetr: uetr(&b.uetr, "camt029.uetr")?,
        status: investigation_status(b.status)?,
        reason: optional_reason(&b.reason_code, "camt029.reason_code")?,
        additional_information: info(&b.additional_information, "camt029.additional_information")?,
    };
    resolution.validate()?;
    Ok(resolution)
}

/// A statement from the wire, checked: every field, and that its balances add up.
pub fn statement_from_pb(b: pb::Statement) -> Result<Statement, ModelError> {
    let mut entries = Vec::with_capacity(b.entries.len());
    for (index, entry) in b.entries.into_iter().enumerate() {
        let field = format!("camt053.entries[{index}]");
        entries.push(StatementEntry {
            entry_reference: max35(&entry.entry_reference, &format!("{field}.entry_reference"))?,
            uetr: if entry.uetr.is_empty() {
                None
            } else {
                Some(uetr(&entry.uetr, &format!("{field}.uetr"))?)
            },
            message_id: if entry.message_id.is_empty() {
                None
            } else {
                Some(message_id(&entry.message_id, &format!("{field}.message_id"))?)
            },
            amount: amount(entry.amount, &format!("{field}.amount"))?,
            direction: entry_direction(entry.direction, &format!("{field}.direction"))?,
            booking_time_unix_ms: entry.booking_time_unix_ms,
        });
    }
    let statement = Statement {
        statement_id: max35(&b.statement_id, "camt053.statement_id")?,
        account: parse_account_id(&b.account).map_err(|e| e.at("camt053.account"))?,
        from_time_unix_ms: b.from_time_unix_ms,
        to_time_unix_ms: b.to_time_unix_ms,
        opening_balance: balance(b.opening_balance, "camt053.opening_balance")?,
        closing_balance: balance(b.closing_balance, "camt053.closing_balance")?,
        entries,
    };
    statement.validate()?;
    Ok(statement)
}

/// A statement on the wire.
pub fn statement_to_pb(b: &Statement) -> pb::Statement {
    pb::Statement {
        statement_id: b.statement_id.clone(),
        account: b.account.clone(),
        from_time_unix_ms: b.from_time_unix_ms,
        to_time_unix_ms: b.to_time_unix_ms,
        opening_balance: Some(money_of_balance(&b.opening_balance)),
        closing_balance: Some(money_of_balance(&b.closing_balance)),
        entries: b
            .entries
            .iter()
            .map(|e| pb::StatementEntry {
                entry_reference: e.entry_reference.clone(),
                uetr: e.uetr.map(|u| u.to_string()).unwrap_or_default(),
                message_id: e.message_id.as_ref().map(|m| m.to_string()).unwrap_or_default(),
                amount: Some(money_of_amount(&e.amount)),
                direction: entry_direction_to_pb(e.direction) as i32,
                booking_time_unix_ms: e.booking_time_unix_ms,
            })
            .collect(),
    }
}

impl From<&Message> for pb::Message {
    fn from(message: &Message) -> Self {
        let header = message.header();
        let body = match message.body() {
            Body::Pacs008(b) => pb::message::Body::Pacs008(pb::CreditTransfer {
                instruction_id: b.instruction_id.clone(),
                end_to_end_id: b.end_to_end_id.clone(),
                uetr: b.uetr.to_string(),
                interbank_settlement_amount: Some(money_of_amount(&b.amount)),
                settlement_date: format_date(b.settlement_date),
                charge_bearer: charge_bearer_to_pb(b.charge_bearer) as i32,
                debtor: Some(party_of(&b.debtor)),
                debtor_agent_bic: b.debtor_agent.to_string(),
                creditor: Some(party_of(&b.creditor)),
                creditor_agent_bic: b.creditor_agent.to_string(),
                remittance_information: b.remittance_information.clone(),
                instructed_amount: b.conversion.as_ref().map(|c| money_of_amount(&c.instructed)),
                exchange_rate: b.conversion.as_ref().map(|c| c.rate.to_string()).unwrap_or_default(),
                quote_id: b.conversion.as_ref().and_then(|c| c.quote_id.clone()).unwrap_or_default(),
            }),
            Body::Pacs002(b) => pb::message::Body::Pacs002(pb::PaymentStatusReport {
                original_message_id: b.original_message_id.to_string(),
                uetr: b.uetr.to_string(),
                status: payment_status_to_pb(b.status) as i32,
                reason_code: b.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
                additional_information: b.additional_information.clone(),
            }),
            Body::Pacs004(b) => pb::message::Body::Pacs004(pb::PaymentReturn {
                return_id: b.return_id.clone(),
                original_message_id: b.original_message_id.to_string(),
                uetr: b.uetr.to_string(),
                returned_amount: Some(money_of_amount(&b.returned_amount)),
                reason_code: b.reason.code().to_owned(),
                additional_information: b.additional_information.clone(),
                returned_instructed_amount: b.conversion.as_ref().map(|c| money_of_amount(&c.instructed)),
                exchange_rate: b.conversion.as_ref().map(|c| c.rate.to_string()).unwrap_or_default(),
            }),
            Body::Camt056(b) => pb::message::Body::Camt056(pb::CancellationRequest {
                case_id: b.case_id.clone(),
                original_message_id: b.original_message_id.to_string(),
                uetr: b.uetr.to_string(),
                original_amount: Some(money_of_amount(&b.original_amount)),
                reason_code: b.reason.code().to_owned(),
                additional_information: b.additional_information.clone(),
            }),
            Body::Camt029(b) => pb::message::Body::Camt029(pb::ResolutionOfInvestigation {
                case_id: b.case_id.clone(),
                original_message_id: b.original_message_id.to_string(),
                uetr: b.uetr.to_string(),
                status: investigation_status_to_pb(b.status) as i32,
                reason_code: b.reason.map(|r| r.code().to_owned()).unwrap_or_default(),
                additional_information: b.additional_information.clone(),
            }),
            Body::Camt053(b) => pb::message::Body::Camt053(statement_to_pb(b)),
        };
        pb::Message {
            header: Some(pb::MessageHeader {
                message_id: header.message_id.to_string(),
                uetr: header.uetr.map(|u| u.to_string()).unwrap_or_default(),
                sender_bic: header.sender.to_string(),
                receiver_bic: header.receiver.to_string(),
                message_type: message_type_to_pb(message.message_type()) as i32,
                creation_time_unix_ms: header.creation_time_unix_ms,
                sequence_number: header.sequence_number,
                possible_duplicate: header.possible_duplicate,
            }),
            body: Some(body),
        }
    }
}
