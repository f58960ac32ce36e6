//! Values every message shares, each written one way and read back with its path:
//! date-times in UTC, dates, amounts with their currency, agents by BICFI, accounts,
//! parties, and Corridor's own supplementary data.

use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use super::XmlError;
use super::tree::Element;
use super::writer::XmlWriter;
use crate::model::message::{TEXT_LENGTH_MAX, check_text};
use crate::model::{
    Amount, Bic, Currency, MessageId, ModelError, Party, Rate, ReasonCode, Uetr, parse_account_id,
};

/// Namespace of Corridor's supplementary data: what the model holds and no ISO element
/// does (the sender's sequence number, the id of the quote a rate came from), carried in
/// the message's `SplmtryData/Envlp`, which the schemas leave open to any namespace.
pub const CORRIDOR_NAMESPACE: &str = "urn:corridor:xsd:supplementary:1";

/// The place-and-name a Corridor supplementary data block is written with.
const CORRIDOR_PLACE: &str = "Corridor";

/// An error at `element`'s path from a model rule.
pub(crate) fn at(element: &Element) -> impl Fn(ModelError) -> XmlError + '_ {
    move |error| element.invalid(error.rule)
}

/// Unix milliseconds as an ISO date-time in UTC with milliseconds
/// (`2026-12-05T07:03:01.123+00:00`; CBPR+ wants the offset written out).
pub(crate) fn format_time(unix_ms: i64, path: &str) -> Result<String, XmlError> {
    let time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .filter(|t| (1..=9999).contains(&t.year()))
        .ok_or_else(|| XmlError::Unwritable {
            path: path.into(),
            rule: format!("{unix_ms} ms is out of range"),
        })?;
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond()
    ))
}

/// An ISO date-time with its offset, as Unix milliseconds.
pub(crate) fn read_time(element: &Element) -> Result<i64, XmlError> {
    let text = element.token();
    let time = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        element.invalid(format!(
            "a date-time with its offset, like 2026-12-05T07:03:01.123+00:00, is required (got {text:?})"
        ))
    })?;
    if time.nanosecond() % 1_000_000 != 0 {
        return Err(element.invalid(format!("Corridor keeps times to the millisecond (got {text:?})")));
    }
    let unix_ms = time.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(unix_ms).map_err(|_| element.invalid("out of range"))
}

/// An ISO date-time with its offset as Unix milliseconds, if it is one to the millisecond.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    let time = OffsetDateTime::parse(text, &Rfc3339).ok().filter(|t| t.nanosecond() % 1_000_000 == 0)?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

/// An ISO date (`2026-12-05`).
pub(crate) fn format_date(date: Date) -> String {
    crate::model::wire::format_date(date)
}

/// An ISO date.
pub(crate) fn read_date(element: &Element) -> Result<Date, XmlError> {
    let text = element.token();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text, &format)
        .map_err(|_| element.invalid(format!("a date like 2026-12-05 is required (got {text:?})")))
}

/// `<name Ccy="EUR">1234.56</name>`: the amount with its currency's decimals.
pub(crate) fn write_amount(w: &mut XmlWriter, name: &str, minor_units: i64, currency: Currency) {
    let text = crate::model::format_minor_units(minor_units, currency);
    w.leaf_with(name, &[("Ccy", currency.code())], &text);
}

/// A positive amount: the currency from `@Ccy`, the decimals at most the currency's.
pub(crate) fn read_amount(element: &Element) -> Result<Amount, XmlError> {
    let currency = read_currency(element)?;
    Amount::parse(element.token(), currency).map_err(at(element))
}

/// The currency of an amount element (`@Ccy`).
pub(crate) fn read_currency(element: &Element) -> Result<Currency, XmlError> {
    let code = element.attribute("Ccy")?;
    Currency::parse(code).map_err(|e| XmlError::invalid(format!("{}/@Ccy", element.path()), e.rule))
}

/// `<name><FinInstnId><BICFI>..</BICFI></FinInstnId></name>`.
pub(crate) fn write_agent(w: &mut XmlWriter, name: &'static str, bic: Bic) {
    w.open(name);
    w.open("FinInstnId");
    w.leaf("BICFI", bic.as_str());
    w.close();
    w.close();
}

/// The BICFI of an agent element (`FinInstnId/BICFI`); Corridor names banks by BIC only.
pub(crate) fn read_agent(agent: &Element) -> Result<Bic, XmlError> {
    let bicfi = agent.required_at(&["FinInstnId", "BICFI"])?;
    Bic::parse(bicfi.token()).map_err(at(bicfi))
}

/// `<name><Id><IBAN>..</IBAN></Id></name>` for an account that has the form of an IBAN,
/// else `<name><Id><Othr><Id>..</Id></Othr></Id></name>`.
pub(crate) fn write_account(w: &mut XmlWriter, name: &'static str, account: &str) {
    w.open(name);
    write_account_id(w, account);
    w.close();
}

/// `<Id><IBAN>..</IBAN></Id>` or `<Id><Othr><Id>..</Id></Othr></Id>`.
pub(crate) fn write_account_id(w: &mut XmlWriter, account: &str) {
    w.open("Id");
    if looks_like_iban(account) {
        w.leaf("IBAN", account);
    } else {
        w.open("Othr");
        w.leaf("Id", account);
        w.close();
    }
    w.close();
}

/// The form `IBAN2007Identifier` allows: two letters, two digits, 1 to 30 alphanumerics.
fn looks_like_iban(account: &str) -> bool {
    let bytes = account.as_bytes();
    (5..=34).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes[4..].iter().all(u8::is_ascii_alphanumeric)
}

/// The account id of an account element: `Id/IBAN` or `Id/Othr/Id`.
pub(crate) fn read_account(account: &Element) -> Result<String, XmlError> {
    let id = account.required("Id")?;
    let value = match id.child("IBAN") {
        Some(iban) => iban,
        None => id.required_at(&["Othr", "Id"])?,
    };
    parse_account_id(value.token()).map_err(at(value))
}

/// A party's name (`Nm`) and account, from the party element and its account element.
pub(crate) fn read_party(
    party: &Element,
    account: Option<&Element>,
    account_path: &str,
) -> Result<Party, XmlError> {
    let name = party.required("Nm")?;
    let name_text = check_text(name.text(), "name", TEXT_LENGTH_MAX, true).map_err(at(name))?;
    let account = account
        .ok_or_else(|| XmlError::invalid(account_path, "is required: Corridor pays between accounts"))?;
    Ok(Party { name: name_text, account: read_account(account)? })
}

/// A party: `<name><Nm>..</Nm></name>`.
pub(crate) fn write_party_name(w: &mut XmlWriter, name: &'static str, party: &Party) {
    w.open(name);
    w.leaf("Nm", &party.name);
    w.close();
}

/// A Max35Text identifier Corridor keeps (letters, digits and `- . / :`).
pub(crate) fn read_id(element: &Element) -> Result<String, XmlError> {
    MessageId::parse(element.token()).map(|id| id.as_str().to_owned()).map_err(at(element))
}

/// A rate as `BaseOneRate` allows it: at most 11 digits, 10 of them decimals.
pub(crate) fn format_rate(rate: Rate, path: &str) -> Result<String, XmlError> {
    let text = rate.to_string();
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = whole.trim_start_matches('0').len() + fraction.len();
    if fraction.len() > 10 || digits > 11 {
        return Err(XmlError::Unwritable {
            path: path.into(),
            rule: format!("the rate {text} has more digits than BaseOneRate allows (11, 10 after the point)"),
        });
    }
    Ok(text)
}

/// What Corridor carries in its own supplementary data block.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Supplementary {
    /// The sender's sequence number (0: none).
    pub sequence_number: u64,
    /// The id of the quote the rate came from.
    pub quote_id: Option<String>,
}

/// `<SplmtryData>` with Corridor's block, when there is anything to carry.
pub(crate) fn write_supplementary(w: &mut XmlWriter, data: &Supplementary) {
    if data.sequence_number == 0 && data.quote_id.is_none() {
        return;
    }
    w.open("SplmtryData");
    w.leaf("PlcAndNm", CORRIDOR_PLACE);
    w.open("Envlp");
    w.open_with("Crdr", &[("xmlns", CORRIDOR_NAMESPACE)]);
    if data.sequence_number != 0 {
        w.leaf("SeqNb", &data.sequence_number.to_string());
    }
    if let Some(quote_id) = &data.quote_id {
        w.leaf("QtId", quote_id);
    }
    w.close();
    w.close();
    w.close();
}

/// Corridor's block from the message element's `SplmtryData`, if one holds it; other
/// supplementary data stays unread (and so is reported as not carried).
pub(crate) fn read_supplementary(message: &Element) -> Result<Supplementary, XmlError> {
    let mut data = Supplementary::default();
    for block in message
        .children()
        .iter()
        .filter(|c| c.name() == "SplmtryData" && c.namespace() == message.namespace())
    {
        let Some(envelope) = block.peek("Envlp") else { continue };
        let Some(crdr) =
            envelope.children().iter().find(|c| c.name() == "Crdr" && c.namespace() == CORRIDOR_NAMESPACE)
        else {
            continue;
        };
        block.mark();
        envelope.mark();
        crdr.mark();
        if let Some(place) = block.child("PlcAndNm") {
            place.text();
        }
        let inner = |name: &str| {
            crdr.children().iter().find(|c| c.name() == name && c.namespace() == CORRIDOR_NAMESPACE)
        };
        if let Some(sequence) = inner("SeqNb") {
            data.sequence_number = sequence
                .token()
                .parse()
                .map_err(|_| sequence.invalid("a sequence number is a whole number"))?;
        }
        if let Some(quote) = inner("QtId") {
            data.quote_id = Some(read_id(quote)?);
        }
    }
    Ok(data)
}

/// Corridor's block of a message that cites no quote (every message but a pacs.008);
/// `what` names the message in the refusal ("a return").
pub(crate) fn read_supplementary_without_quote(
    message: &Element,
    what: &str,
) -> Result<Supplementary, XmlError> {
    let supplementary = read_supplementary(message)?;
    if supplementary.quote_id.is_some() {
        return Err(
            message.invalid(format!("{what} cites no quote (Corridor's supplementary data has a QtId)"))
        );
    }
    Ok(supplementary)
}

/// Checks a group header's `NbOfTxs`: Corridor carries one transaction per message.
pub(crate) fn require_one_transaction(group: &Element) -> Result<(), XmlError> {
    let count = group.required("NbOfTxs")?;
    if count.token() != "1" {
        return Err(
            count.invalid(format!("Corridor carries one transaction per message (got {:?})", count.token()))
        );
    }
    Ok(())
}

/// Most characters of one `AddtlInf` (Max105Text): longer text is split over several,
/// and read back joined.
const ADDITIONAL_INFO_LENGTH_MAX: usize = 105;

/// `<OrgnlGrpInf><OrgnlMsgId>..</OrgnlMsgId><OrgnlMsgNmId>..</OrgnlMsgNmId></OrgnlGrpInf>`.
pub(crate) fn write_original_group(w: &mut XmlWriter, original_message_id: &MessageId, definition: &str) {
    w.open("OrgnlGrpInf");
    w.leaf("OrgnlMsgId", original_message_id.as_str());
    w.leaf("OrgnlMsgNmId", definition);
    w.close();
}

/// The original message id of `OrgnlGrpInf`; its `OrgnlMsgNmId` is read when it names
/// `definition` (what Corridor writes there), else left unread, and so reported.
pub(crate) fn read_original_group(parent: &Element, definition: &str) -> Result<MessageId, XmlError> {
    let group = parent.required("OrgnlGrpInf")?;
    let id = group.required("OrgnlMsgId")?;
    let original = MessageId::parse(id.token()).map_err(at(id))?;
    let name = group
        .peek("OrgnlMsgNmId")
        .ok_or_else(|| XmlError::invalid(format!("{}/OrgnlMsgNmId", group.path()), "is required"))?;
    if name.peek_text() == definition {
        name.mark();
    }
    Ok(original)
}

/// A reason block (`StsRsnInf`, `RtrRsnInf`, `CxlRsnInf`, `CxlStsRsnInf`): `Rsn/Cd` and
/// the free text over as many `AddtlInf` as it takes; nothing when there is neither.
pub(crate) fn write_reason(
    w: &mut XmlWriter,
    name: &'static str,
    reason: Option<ReasonCode>,
    information: &str,
) {
    if reason.is_none() && information.is_empty() {
        return;
    }
    w.open(name);
    if let Some(reason) = reason {
        w.open("Rsn");
        w.leaf("Cd", reason.code());
        w.close();
    }
    let characters: Vec<char> = information.chars().collect();
    for chunk in characters.chunks(ADDITIONAL_INFO_LENGTH_MAX) {
        w.leaf("AddtlInf", &chunk.iter().collect::<String>());
    }
    w.close();
}

/// The reason code and the free text of a reason block (its `AddtlInf` joined).
pub(crate) fn read_reason(block: Option<&Element>) -> Result<(Option<ReasonCode>, String), XmlError> {
    let Some(block) = block else { return Ok((None, String::new())) };
    let reason = match block.child("Rsn") {
        Some(reason) => {
            let code = reason.required("Cd")?;
            Some(ReasonCode::parse(code.token()).map_err(at(code))?)
        }
        None => None,
    };
    let mut information = String::new();
    let mut last = None;
    for part in
        block.children().iter().filter(|c| c.name() == "AddtlInf" && c.namespace() == block.namespace())
    {
        information.push_str(part.mark().text());
        last = Some(part);
    }
    if let Some(last) = last {
        information =
            check_text(&information, "additional_information", TEXT_LENGTH_MAX, false).map_err(at(last))?;
    }
    Ok((reason, information))
}

/// A Party40Choice naming an agent: `<name><Agt><FinInstnId><BICFI>..`.
pub(crate) fn write_party_agent(w: &mut XmlWriter, name: &'static str, bic: Bic) {
    w.open(name);
    write_agent(w, "Agt", bic);
    w.close();
}

/// The BIC of a Party40Choice, which must name an agent.
pub(crate) fn read_party_agent(party: &Element) -> Result<Bic, XmlError> {
    read_agent(party.required("Agt")?)
}

/// The UETR of `OrgnlUETR` under `parent`.
pub(crate) fn read_original_uetr(parent: &Element) -> Result<Uetr, XmlError> {
    let element = parent.required("OrgnlUETR")?;
    Uetr::parse(element.token()).map_err(at(element))
}
