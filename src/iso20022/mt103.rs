//! MT103 (single customer credit transfer) to and from Corridor's pacs.008, following the
//! SWIFT CBPR+ mapping. Pure: text in, model out, and back; no I/O.
//!
//! # The parser, and why it is this one
//!
//! The maintained `swift-mt-message` crate (3.1, Apache-2.0) parses every MT field, but it
//! holds amounts as `f64` (no floats near money: an amount here is an integer of minor
//! units, checked against the currency's decimals), and it pulls in a workflow engine
//! (`dataflow-rs`, `datalogic-rs`), a fake-data generator, `chrono`, `regex` and `rand` 0.8
//! unconditionally. Corridor needs some twenty fields of one message type, so this module
//! reads them itself: blocks 1 to 5, the field tags and their order, the SWIFT X character
//! set, and every field's format, in a few hundred lines that refuse what they do not
//! understand and name the field.
//!
//! # MT103 to the model ([`import`])
//!
//! | MT103 | model |
//! |---|---|
//! | block 2 (output form) MIR, or block 1 (input form) | header sender |
//! | block 1 (output form), or block 2 (input form) | header receiver |
//! | block 2 (output form) input time and MIR date | header creation time (to the minute, UTC) |
//! | block 3 field 121 (mandatory) | UETR |
//! | block 5 `PDE` | header possible duplicate |
//! | 20 | instruction id and header message id |
//! | 23B `CRED` | (implied) |
//! | 32A | settlement date, interbank settlement amount |
//! | 33B and 36, in another currency than 32A | conversion: instructed amount and rate |
//! | 50F / 50K | debtor: account (`/34x`) and name (the `1/` lines of 50F, the first line of 50K) |
//! | 52A (absent: the sender) | debtor agent |
//! | 57A (absent: the receiver) | creditor agent |
//! | 59F / 59 | creditor: account and name |
//! | 70 | remittance information; its `/ROC/` reference is the end-to-end id |
//! | 71A `OUR` / `SHA` / `BEN` | charge bearer `DEBT` / `SHAR` / `CRED` |
//!
//! Corridor does not model everything an MT103 can say. What it does not model is never
//! dropped silently: [`Imported::not_modelled`] lists it by field (13C, 23E, 26T, 33B in the
//! settlement currency but another amount (charges deducted), 51A, 53a, 54a, 55a, 56a,
//! 71F, 71G, 72, 77B, addresses and party identifiers in 50a and 59a, party identifiers in
//! 52A and 57A, block 3 fields other than 121, block 5 fields other than `PDE`, an urgent
//! priority). The caller decides whether that is acceptable: [`import_strict`], for a
//! message a node acts on, refuses it with that list, as `iso20022::read_strict` does for
//! XML. Input Corridor cannot carry at
//! all is refused, naming the field: a debtor or creditor given only by a BIC (50A, 59A),
//! an agent without a BIC (52D, 57B/C/D), a return (`/RETN/` in 72, which CBPR+ maps to a
//! pacs.004). A missing account (59F without `/34x`) becomes `NOTPROVIDED`, as in CBPR+.
//!
//! The session and sequence numbers of blocks 1 and 2 and the output date and time
//! belong to FIN's transport, not to the message: they are not read, and an imported
//! header's sequence number is 0 (a bank numbers what it sends itself).
//!
//! Invalid input is refused with the field named ([`Mt103Error::Invalid`]): not an MT
//! message, another message type, a missing mandatory field, fields out of order or
//! repeated, characters outside the X set, a bad date, currency or amount (comma decimal,
//! at most 15 characters, no more decimals than the currency has), a rate without a
//! conversion or a conversion without a rate. Lines end in CRLF as FIN sends them; LF
//! alone, as files are often saved, is read the same.
//!
//! # The model to MT103 ([`export`])
//!
//! The output form a receiver sees (`{2:O103...}`), as the CBPR+ samples are written. What
//! cannot fit is refused with every misfit listed ([`Mt103Error::DoesNotFit`]), never
//! truncated: 20 longer than 16 characters, text outside the X character set, a name longer
//! than the four 33-character lines of 50F or 59F, remittance information and `/ROC/`
//! reference beyond the four 35-character lines of 70, an amount beyond 15 characters, a
//! rate beyond 12, a year outside 2000-2099, the charge bearer `SLEV` (MT103 has no code
//! for it). Corridor's model holds no structured address, so none is lost. What the MT103
//! text does not carry of the header and the conversion (the message id when it differs
//! from the instruction id, seconds of the creation time, the sequence number, the quote
//! id) is listed in [`Exported::not_carried`].
//!
//! The end-to-end id travels in 70 as `/ROC/<id>`; the remittance information follows
//! after `//`. A 70 that holds only `/ROC/<id>` gives that text as the remittance
//! information too, as CBPR+ translates it; so a payment with an end-to-end id and no
//! remittance information comes back with `/ROC/<id>` as its remittance information.
//! `NOTPROVIDED` as the end-to-end id writes no `/ROC/`.

use std::fmt;

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::model::message::{TEXT_LENGTH_MAX, check_text};
use crate::model::wire::{decode_message, encode_message};
use crate::model::{
    Amount, Bic, Body, ChargeBearer, Conversion, CreditTransfer, Currency, Header, Message, MessageId,
    ModelError, Party, Rate, Uetr, parse_account_id,
};

/// Largest MT103 text read, in bytes: FIN limits block 4 to 10,000 characters and the
/// header blocks add a few hundred; anything larger is refused before it is parsed.
pub const MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Width of a line of text in block 4 (`35x`).
pub const LINE_LENGTH_MAX: usize = 35;
/// Longest field 20 (`16x`).
pub const REFERENCE_LENGTH_MAX: usize = 16;
/// Longest amount, digits and decimal comma (`15d`).
pub const AMOUNT_LENGTH_MAX: usize = 15;
/// Longest exchange rate, digits and decimal comma (`12d`).
pub const RATE_LENGTH_MAX: usize = 12;
/// The CBPR+ placeholder for an identifier or account that was not given.
pub const NOT_PROVIDED: &str = "NOTPROVIDED";

/// Something about one field: what Corridor does not model of it (import), or what the
/// MT103 cannot carry of it (export).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldNote {
    /// The field: an MT tag (`50F`, `block 3 field 119`) or a model field (`header.message_id`).
    pub field: String,
    /// What is not carried, and why.
    pub note: String,
}

impl FieldNote {
    fn new(field: impl Into<String>, note: impl Into<String>) -> Self {
        Self { field: field.into(), note: note.into() }
    }
}

impl fmt::Display for FieldNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.note)
    }
}

/// Why an MT103 could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mt103Error {
    /// The MT103 is invalid, or says something Corridor cannot carry at all.
    #[error("{field}: {rule}")]
    Invalid {
        /// The field (`32A`, `block 2`, `message`).
        field: String,
        /// The rule it broke.
        rule: String,
    },
    /// The payment does not fit in an MT103 without loss; every misfit is listed.
    #[error("does not fit in an MT103 without loss: {}", list(.0))]
    DoesNotFit(Vec<FieldNote>),
    /// The MT103 says what Corridor does not model ([`import_strict`]); all of it is listed.
    #[error("holds what Corridor does not model and would lose: {}", list(.0))]
    NotModelled(Vec<FieldNote>),
}

fn list(notes: &[FieldNote]) -> String {
    notes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

fn invalid(field: &str, rule: impl Into<String>) -> Mt103Error {
    Mt103Error::Invalid { field: field.to_owned(), rule: rule.into() }
}

/// A model error, reported against the MT field it came from.
fn model_error(field: &str) -> impl Fn(ModelError) -> Mt103Error + '_ {
    move |e| invalid(field, e.rule)
}

/// A model error of a party (`name` or `account`), reported against the MT field.
fn party_error(field: &str) -> impl Fn(ModelError) -> Mt103Error + '_ {
    move |e| invalid(field, format!("{} {}", e.field, e.rule))
}

/// An MT103 read into the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Imported {
    /// The message header. The debtor and creditor agents need not be the sender and
    /// receiver (an MT103 may travel through intermediaries).
    pub header: Header,
    /// The credit transfer.
    pub transfer: CreditTransfer,
    /// What the MT103 said that Corridor does not model, by field.
    pub not_modelled: Vec<FieldNote>,
}

/// A payment written as an MT103.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exported {
    /// The MT103: blocks 1 to 4 (and 5 for a possible duplicate), CRLF inside block 4.
    pub text: String,
    /// What of the header and the conversion the MT103 text does not carry.
    pub not_carried: Vec<FieldNote>,
}

// ---------------------------------------------------------------------------------------
// Reading: blocks, then fields, then the model.
// ---------------------------------------------------------------------------------------

/// One field of block 4: its tag (`50F`) and its lines, as sent (trailing spaces kept).
#[derive(Clone, Debug)]
struct RawField {
    tag: String,
    lines: Vec<String>,
}

impl RawField {
    fn value(&self) -> String {
        self.lines.concat()
    }
}

/// The blocks of an MT message.
#[derive(Debug, Default)]
struct Blocks {
    basic: String,
    application: String,
    user: Vec<(String, String)>,
    text: Vec<RawField>,
    trailer: Vec<(String, String)>,
}

/// Reads the blocks `{1:}{2:}{3:}{4:...-}{5:}`: 1, 2 and 4 mandatory, in that order.
fn split_blocks(text: &str) -> Result<Blocks, Mt103Error> {
    if text.len() > MESSAGE_BYTES_MAX {
        return Err(invalid(
            "message",
            format!("is {} bytes; an MT103 has at most {MESSAGE_BYTES_MAX}", text.len()),
        ));
    }
    if text.contains('\r') && text.replace("\r\n", "").contains('\r') {
        return Err(invalid("message", "has a carriage return that does not end a line"));
    }
    let text = text.replace("\r\n", "\n");
    let mut rest = text.trim_end();
    if !rest.starts_with("{1:") {
        return Err(invalid("message", "is not a SWIFT MT message: it must begin with block 1, `{1:`"));
    }
    let mut blocks = Blocks::default();
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let body = rest.strip_prefix('{').ok_or_else(|| {
            invalid("message", format!("expected `{{` to open a block, found {:?}", first_chars(rest)))
        })?;
        let (id, body) =
            body.split_once(':').ok_or_else(|| invalid("message", "a block has no `:` after its number"))?;
        let number = match id {
            "1" | "2" | "3" | "4" | "5" => id.as_bytes()[0] - b'0',
            _ => {
                return Err(invalid(
                    "message",
                    format!("unknown block {id:?}; an MT message has blocks 1 to 5"),
                ));
            }
        };
        if seen.last().is_some_and(|last| *last >= number) {
            return Err(invalid(&format!("block {number}"), "is out of order or repeated"));
        }
        seen.push(number);
        rest = match number {
            1 => take_simple(body, &mut blocks.basic, "block 1")?,
            2 => take_simple(body, &mut blocks.application, "block 2")?,
            3 => take_tagged(body, &mut blocks.user, "block 3")?,
            4 => take_text(body, &mut blocks.text)?,
            _ => take_tagged(body, &mut blocks.trailer, "block 5")?,
        };
    }
    for required in [1, 2, 4] {
        if !seen.contains(&required) {
            return Err(invalid(&format!("block {required}"), "is missing"));
        }
    }
    Ok(blocks)
}

fn first_chars(text: &str) -> String {
    text.chars().take(12).collect()
}

/// A block without sub-blocks: everything up to `}`.
fn take_simple<'a>(body: &'a str, into: &mut String, block: &str) -> Result<&'a str, Mt103Error> {
    let (content, rest) = body.split_once('}').ok_or_else(|| invalid(block, "is not closed by `}`"))?;
    if content.contains(['{', '\n']) {
        return Err(invalid(block, "is not closed by `}`"));
    }
    content.clone_into(into);
    Ok(rest)
}

/// A block of `{tag:value}` sub-blocks, then `}`.
fn take_tagged<'a>(
    mut body: &'a str,
    into: &mut Vec<(String, String)>,
    block: &str,
) -> Result<&'a str, Mt103Error> {
    loop {
        if let Some(rest) = body.strip_prefix('}') {
            return Ok(rest);
        }
        let inner = body.strip_prefix('{').ok_or_else(|| invalid(block, "expected `{tag:value}` or `}`"))?;
        let (field, rest) =
            inner.split_once('}').ok_or_else(|| invalid(block, "a field is not closed by `}`"))?;
        let (tag, value) =
            field.split_once(':').ok_or_else(|| invalid(block, format!("field {field:?} has no `:`")))?;
        if tag.is_empty() || field.contains(['{', '\n']) {
            return Err(invalid(block, format!("field {field:?} is malformed")));
        }
        into.push((tag.to_owned(), value.to_owned()));
        body = rest;
    }
}

/// Block 4: a line break, then `:tag:value` lines and their continuation lines, then `-}`.
fn take_text<'a>(body: &'a str, into: &mut Vec<RawField>) -> Result<&'a str, Mt103Error> {
    let body = body.strip_prefix('\n').ok_or_else(|| invalid("block 4", "must begin with a line break"))?;
    let end = body.find("\n-}").ok_or_else(|| invalid("block 4", "is not closed by a line `-}`"))?;
    for line in body[..end].split('\n') {
        match parse_tag(line) {
            Some((tag, value)) => into.push(RawField { tag: tag.to_owned(), lines: vec![value.to_owned()] }),
            // FIN reads a line that begins with `:` as a field and one with `-` as the end.
            None if line.starts_with([':', '-']) => {
                let field = into.last().map_or("block 4", |f| f.tag.as_str());
                return Err(invalid(
                    field,
                    format!("line {line:?} begins with `:` or `-`, which only a field tag or the end may"),
                ));
            }
            None => match into.last_mut() {
                Some(field) => field.lines.push(line.to_owned()),
                None => return Err(invalid("block 4", "must begin with a field such as `:20:`")),
            },
        }
    }
    Ok(&body[end + 3..])
}

/// `:23B:CRED` is tag `23B`, value `CRED`: two digits and an optional capital letter.
fn parse_tag(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(':')?;
    let (tag, value) = rest.split_once(':')?;
    let bytes = tag.as_bytes();
    let shaped = matches!(bytes.len(), 2 | 3)
        && bytes[..2].iter().all(u8::is_ascii_digit)
        && bytes.get(2).is_none_or(u8::is_ascii_uppercase);
    shaped.then_some((tag, value))
}

/// The fields of an MT103 in their order: name, the tags allowed, repeatable, mandatory,
/// most lines.
const MT103_FIELDS: &[(&str, &[&str], bool, bool, usize)] = &[
    ("20", &["20"], false, true, 1),
    ("13C", &["13C"], true, false, 1),
    ("23B", &["23B"], false, true, 1),
    ("23E", &["23E"], true, false, 1),
    ("26T", &["26T"], false, false, 1),
    ("32A", &["32A"], false, true, 1),
    ("33B", &["33B"], false, false, 1),
    ("36", &["36"], false, false, 1),
    ("50a", &["50A", "50F", "50K"], false, true, 5),
    ("51A", &["51A"], false, false, 2),
    ("52a", &["52A", "52D"], false, false, 5),
    ("53a", &["53A", "53B", "53D"], false, false, 5),
    ("54a", &["54A", "54B", "54D"], false, false, 5),
    ("55a", &["55A", "55B", "55D"], false, false, 5),
    ("56a", &["56A", "56C", "56D"], false, false, 5),
    ("57a", &["57A", "57B", "57C", "57D"], false, false, 5),
    ("59a", &["59", "59A", "59F"], false, true, 5),
    ("70", &["70"], false, false, 4),
    ("71A", &["71A"], false, true, 1),
    ("71F", &["71F"], true, false, 1),
    ("71G", &["71G"], false, false, 1),
    ("72", &["72"], false, false, 6),
    ("77B", &["77B"], false, false, 3),
];

/// The X character set of SWIFT FIN: what every line of block 4 may hold.
pub fn is_swift_x(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-?:().,'+ ".contains(c)
}

/// Checks block 4 against MT103: known tags, order, repetition, mandatory fields, line
/// count and width, the X character set.
fn check_fields(fields: &[RawField]) -> Result<(), Mt103Error> {
    let mut previous: Option<usize> = None;
    for field in fields {
        let index = MT103_FIELDS
            .iter()
            .position(|(_, tags, ..)| tags.contains(&field.tag.as_str()))
            .ok_or_else(|| invalid(&field.tag, "is not a field of MT103"))?;
        let (name, _, repeatable, _, lines_max) = MT103_FIELDS[index];
        match previous {
            Some(p) if p == index && !repeatable => {
                return Err(invalid(&field.tag, "appears more than once"));
            }
            Some(p) if p > index => {
                return Err(invalid(
                    &field.tag,
                    format!("is out of order: it comes before {}", MT103_FIELDS[p].0),
                ));
            }
            _ => {}
        }
        previous = Some(index);
        if field.lines.len() > lines_max {
            return Err(invalid(
                &field.tag,
                format!("has {} lines; {name} has at most {lines_max}", field.lines.len()),
            ));
        }
        for line in &field.lines {
            if line.chars().count() > LINE_LENGTH_MAX {
                return Err(invalid(
                    &field.tag,
                    format!("has a line longer than {LINE_LENGTH_MAX} characters"),
                ));
            }
            if let Some(bad) = line.chars().find(|c| !is_swift_x(*c)) {
                return Err(invalid(&field.tag, format!("holds {bad:?}, outside the SWIFT X character set")));
            }
        }
        if field.value().trim().is_empty() {
            return Err(invalid(&field.tag, "is empty"));
        }
    }
    for (name, tags, _, mandatory, _) in MT103_FIELDS {
        if *mandatory && !fields.iter().any(|f| tags.contains(&f.tag.as_str())) {
            return Err(invalid(name, "is mandatory in MT103 and missing"));
        }
    }
    Ok(())
}

/// The fields of a checked block 4, by name.
struct Fields<'a>(&'a [RawField]);

impl<'a> Fields<'a> {
    /// The one field with one of `tags`, if present.
    fn get(&self, tags: &[&str]) -> Option<&'a RawField> {
        self.0.iter().find(|f| tags.contains(&f.tag.as_str()))
    }

    /// The mandatory field with one of `tags` (present: checked in `check_fields`).
    fn required(&self, tags: &[&str]) -> &'a RawField {
        self.get(tags).expect("mandatory fields are checked in check_fields")
    }

    fn all(&self, tag: &str) -> impl Iterator<Item = &'a RawField> {
        self.0.iter().filter(move |f| f.tag == tag)
    }
}

/// Reads an MT103 into the model: its header, its credit transfer, and what it said that
/// Corridor does not model. `now_unix_ms` is the creation time for an MT103 in input form
/// (`{2:I103...}`), which carries none.
pub fn import(text: &str, now_unix_ms: i64) -> Result<Imported, Mt103Error> {
    let blocks = split_blocks(text)?;
    let mut notes = Vec::new();
    let route = parse_route(&blocks, now_unix_ms, &mut notes)?;
    let uetr = parse_user_block(&blocks.user, &mut notes)?;
    let possible_duplicate = parse_trailer(&blocks.trailer, &mut notes);
    check_fields(&blocks.text)?;
    let fields = Fields(&blocks.text);
    let transfer = parse_transfer(&fields, uetr, &route, &mut notes)?;
    let header = Header {
        message_id: MessageId::parse(&transfer.instruction_id).map_err(model_error("20"))?,
        uetr: Some(uetr),
        sender: route.sender,
        receiver: route.receiver,
        creation_time_unix_ms: route.creation_time_unix_ms,
        sequence_number: 0,
        possible_duplicate,
    };
    Ok(Imported { header, transfer, not_modelled: notes })
}

/// Reads an MT103 that a node is to act on: as [`import`], but refused with the list of
/// what Corridor does not model ([`Mt103Error::NotModelled`]) rather than losing it, and
/// refused when it does not travel from the debtor agent straight to the creditor agent
/// (as Corridor pays, and as its XML reader requires). The message is checked as the
/// wire checks it, so that what is read can be signed and sent.
pub fn import_strict(text: &str, now_unix_ms: i64) -> Result<Message, Mt103Error> {
    let imported = import(text, now_unix_ms)?;
    if !imported.not_modelled.is_empty() {
        return Err(Mt103Error::NotModelled(imported.not_modelled));
    }
    let (header, transfer) = (imported.header, imported.transfer);
    if transfer.debtor_agent != header.sender {
        return Err(invalid(
            "52A",
            format!(
                "the debtor agent {} must be the sender {}: Corridor pays from the debtor agent straight to the creditor agent",
                transfer.debtor_agent, header.sender
            ),
        ));
    }
    if transfer.creditor_agent != header.receiver {
        return Err(invalid(
            "57A",
            format!(
                "the creditor agent {} must be the receiver {}: Corridor pays from the debtor agent straight to the creditor agent",
                transfer.creditor_agent, header.receiver
            ),
        ));
    }
    let message =
        Message::new(header, Body::Pacs008(transfer)).map_err(|e| invalid("message", e.to_string()))?;
    decode_message(&encode_message(&message)).map_err(|e| invalid("message", e.to_string()))
}

/// Who sent the MT103 to whom, and when.
struct Route {
    sender: Bic,
    receiver: Bic,
    creation_time_unix_ms: i64,
}

/// Blocks 1 and 2, input or output form.
fn parse_route(blocks: &Blocks, now_unix_ms: i64, notes: &mut Vec<FieldNote>) -> Result<Route, Mt103Error> {
    let basic = &blocks.basic;
    if basic.len() != 25
        || !basic.is_ascii()
        || !basic.starts_with("F01")
        || !basic[15..].bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid(
            "block 1",
            "is F01, a 12-character logical terminal, 4 digits of session and 6 of sequence",
        ));
    }
    let block1_bic = terminal_bic(&basic[3..15], "block 1")?;
    let app = blocks.application.as_str();
    let kind = app.get(1..4).unwrap_or_default();
    if !app.is_ascii() || kind != "103" {
        return Err(invalid("block 2", format!("message type {kind:?}: only MT103 maps to a pacs.008")));
    }
    let (sender, receiver, time, priority) = match app.as_bytes()[0] {
        // Session, sequence, output date and time: transport, checked for shape only.
        b'O' if matches!(app.len(), 46 | 47) && app[26..46].bytes().all(|b| b.is_ascii_digit()) => {
            let created = parse_output_time(&app[8..14], &app[4..8])?;
            (terminal_bic(&app[14..26], "block 2")?, block1_bic, created, app.get(46..))
        }
        // Delivery monitoring and obsolescence period: transport, checked for shape only.
        b'I' if (16..=21).contains(&app.len())
            && app.get(17..).unwrap_or_default().bytes().all(|b| b.is_ascii_digit()) =>
        {
            (block1_bic, terminal_bic(&app[4..16], "block 2")?, now_unix_ms, app.get(16..17))
        }
        _ => {
            return Err(invalid(
                "block 2",
                "is neither the input form `I103` + terminal nor the output form `O103` + time + MIR",
            ));
        }
    };
    match priority.unwrap_or("N") {
        "N" | "" => {}
        "U" | "S" => notes
            .push(FieldNote::new("block 2", format!("priority {} is not modelled", priority.unwrap_or("")))),
        other => return Err(invalid("block 2", format!("priority {other:?} is none of N, U, S"))),
    }
    Ok(Route { sender, receiver, creation_time_unix_ms: time })
}

/// The BIC of a 12-character logical terminal address: BIC8, terminal code, branch.
fn terminal_bic(terminal: &str, block: &str) -> Result<Bic, Mt103Error> {
    if terminal.len() != 12 || !terminal.is_ascii() {
        return Err(invalid(block, format!("logical terminal {terminal:?} is not 12 characters")));
    }
    Bic::parse(&format!("{}{}", &terminal[..8], &terminal[9..])).map_err(model_error(block))
}

/// YYMMDD and HHMM of block 2's output form, as Unix milliseconds (UTC).
fn parse_output_time(date: &str, hhmm: &str) -> Result<i64, Mt103Error> {
    let date = parse_yymmdd(date, "block 2")?;
    let err = || invalid("block 2", format!("input time {hhmm:?} is not HHMM"));
    if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let (hour, minute) = (hhmm[..2].parse().map_err(|_| err())?, hhmm[2..].parse().map_err(|_| err())?);
    let time = Time::from_hms(hour, minute, 0).map_err(|_| err())?;
    let at = PrimitiveDateTime::new(date, time).assume_utc();
    Ok((at.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// YYMMDD: years 2000-2099.
fn parse_yymmdd(text: &str, field: &str) -> Result<Date, Mt103Error> {
    let err = || invalid(field, format!("date {text:?} is not a valid YYMMDD"));
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let part = |range: std::ops::Range<usize>| text[range].parse::<u8>().expect("two digits, checked above");
    let month = Month::try_from(part(2..4)).map_err(|_| err())?;
    Date::from_calendar_date(2000 + i32::from(part(0..2)), month, part(4..6)).map_err(|_| err())
}

/// Block 3: field 121, the UETR, is mandatory (CBPR+); the others are noted.
fn parse_user_block(user: &[(String, String)], notes: &mut Vec<FieldNote>) -> Result<Uetr, Mt103Error> {
    let mut uetr = None;
    for (tag, value) in user {
        if tag == "121" {
            if uetr.is_some() {
                return Err(invalid("block 3 field 121", "appears more than once"));
            }
            uetr = Some(Uetr::parse(value).map_err(model_error("block 3 field 121"))?);
        } else {
            notes.push(FieldNote::new(format!("block 3 field {tag}"), format!("{value:?} is not modelled")));
        }
    }
    uetr.ok_or_else(|| invalid("block 3 field 121", "the UETR is mandatory (CBPR+) and missing"))
}

/// Block 5: `PDE` is the possible duplicate flag; the others are noted.
fn parse_trailer(trailer: &[(String, String)], notes: &mut Vec<FieldNote>) -> bool {
    let mut possible_duplicate = false;
    for (tag, value) in trailer {
        if tag == "PDE" {
            possible_duplicate = true;
        } else {
            notes.push(FieldNote::new(format!("block 5 field {tag}"), format!("{value:?} is not modelled")));
        }
    }
    possible_duplicate
}

/// Block 4 into the credit transfer.
fn parse_transfer(
    fields: &Fields<'_>,
    uetr: Uetr,
    route: &Route,
    notes: &mut Vec<FieldNote>,
) -> Result<CreditTransfer, Mt103Error> {
    if fields.get(&["72"]).is_some_and(|f| f.lines[0].starts_with("/RETN/")) {
        return Err(invalid(
            "72",
            "/RETN/ marks a return of funds, which CBPR+ maps to a pacs.004, not a pacs.008",
        ));
    }
    let instruction_id = parse_reference(&fields.required(&["20"]).value())?;
    parse_operation_code(&fields.required(&["23B"]).value(), notes)?;
    let (settlement_date, amount) = parse_32a(&fields.required(&["32A"]).value())?;
    let conversion = parse_conversion(fields, amount, notes)?;
    let debtor = parse_debtor(fields.required(&["50A", "50F", "50K"]), notes)?;
    let debtor_agent = fields.get(&["52A", "52D"]).map_or(Ok(route.sender), |f| parse_agent(f, notes))?;
    let creditor_agent =
        fields.get(&["57A", "57B", "57C", "57D"]).map_or(Ok(route.receiver), |f| parse_agent(f, notes))?;
    let creditor = parse_creditor(fields.required(&["59", "59A", "59F"]), notes)?;
    let (end_to_end_id, remittance_information) = parse_remittance(fields.get(&["70"]), notes)?;
    let charge_bearer = parse_charge_bearer(&fields.required(&["71A"]).value())?;
    note_unmodelled(fields, notes)?;
    let transfer = CreditTransfer {
        instruction_id,
        end_to_end_id,
        uetr,
        amount,
        conversion,
        settlement_date,
        charge_bearer,
        debtor,
        debtor_agent,
        creditor,
        creditor_agent,
        remittance_information,
    };
    transfer.check_conversion().map_err(|e| invalid("36", e.rule))?;
    Ok(transfer)
}

/// Field 20: `16x`, neither starting nor ending with `/` nor holding `//`; as an
/// instruction id, also an ISO identifier.
fn parse_reference(text: &str) -> Result<String, Mt103Error> {
    if text.len() > REFERENCE_LENGTH_MAX
        || text.starts_with('/')
        || text.ends_with('/')
        || text.contains("//")
    {
        return Err(invalid(
            "20",
            format!(
                "a reference is 1 to {REFERENCE_LENGTH_MAX} characters, not starting or ending with `/` nor holding `//` (got {text:?})"
            ),
        ));
    }
    MessageId::parse(text).map_err(model_error("20"))?;
    Ok(text.to_owned())
}

fn parse_operation_code(code: &str, notes: &mut Vec<FieldNote>) -> Result<(), Mt103Error> {
    match code {
        "CRED" => Ok(()),
        "CRTS" | "SPAY" | "SPRI" | "SSTD" => {
            notes.push(FieldNote::new(
                "23B",
                format!("bank operation code {code} is not modelled (Corridor's is CRED)"),
            ));
            Ok(())
        }
        _ => Err(invalid("23B", format!("{code:?} is none of CRED, CRTS, SPAY, SPRI, SSTD"))),
    }
}

/// 32A: `6!n3!a15d`, value date, currency, amount.
fn parse_32a(text: &str) -> Result<(Date, Amount), Mt103Error> {
    let date = parse_yymmdd(text.get(..6).unwrap_or(text), "32A")?;
    let amount = parse_currency_amount(text.get(6..).unwrap_or_default(), "32A")?;
    Ok((date, amount))
}

/// `3!a15d`: a currency and a positive amount.
fn parse_currency_amount(text: &str, field: &str) -> Result<Amount, Mt103Error> {
    let (currency, amount) = split_currency(text, field)?;
    let decimal = mt_decimal(amount, AMOUNT_LENGTH_MAX, field)?;
    Amount::parse(&decimal, currency).map_err(model_error(field))
}

fn split_currency<'a>(text: &'a str, field: &str) -> Result<(Currency, &'a str), Mt103Error> {
    let code = text.get(..3).filter(|c| c.bytes().all(|b| b.is_ascii_uppercase()));
    let code = code.ok_or_else(|| invalid(field, format!("{text:?} does not begin with a currency code")))?;
    Ok((Currency::parse(code).map_err(model_error(field))?, &text[3..]))
}

/// An MT decimal (`136500,` or `15669,38`: digits, one comma, at most `length_max`
/// characters) as ISO decimal text (`136500`, `15669.38`).
fn mt_decimal(text: &str, length_max: usize, field: &str) -> Result<String, Mt103Error> {
    let err = || {
        invalid(
            field,
            format!(
                "{text:?} is not an MT decimal: digits with one decimal comma, at most {length_max} characters"
            ),
        )
    };
    let (whole, fraction) = text.split_once(',').ok_or_else(err)?;
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if text.len() > length_max || whole.is_empty() || !digits(whole) || !digits(fraction) {
        return Err(err());
    }
    let fraction = fraction.trim_end_matches('0');
    Ok(if fraction.is_empty() { whole.to_owned() } else { format!("{whole}.{fraction}") })
}

/// 33B and 36: a conversion when the instructed currency differs from the settlement's.
fn parse_conversion(
    fields: &Fields<'_>,
    settlement: Amount,
    notes: &mut Vec<FieldNote>,
) -> Result<Option<Conversion>, Mt103Error> {
    let rate = match fields.get(&["36"]) {
        Some(f) => {
            Some(Rate::parse(&mt_decimal(&f.value(), RATE_LENGTH_MAX, "36")?).map_err(model_error("36"))?)
        }
        None => None,
    };
    let Some(instructed) = fields.get(&["33B"]) else {
        return match rate {
            Some(_) => Err(invalid("36", "an exchange rate needs the instructed amount, 33B")),
            None => Ok(None),
        };
    };
    let instructed = parse_currency_amount(&instructed.value(), "33B")?;
    match (instructed.currency() == settlement.currency(), rate) {
        (true, Some(_)) => Err(invalid("36", "33B is in the currency of 32A: there is nothing to convert")),
        (false, None) => Err(invalid("36", "is mandatory when 33B is in another currency than 32A")),
        (false, Some(rate)) => Ok(Some(Conversion { instructed, rate, quote_id: None })),
        (true, None) => {
            if instructed != settlement {
                notes.push(FieldNote::new(
                    "33B",
                    format!(
                        "instructed amount {instructed} differs from the settlement amount {settlement} in the same \
                         currency (charges deducted): Corridor models an instructed amount only with a conversion"
                    ),
                ));
            }
            Ok(None)
        }
    }
}

/// 50F or 50K: the debtor. 50A (a BIC only) is refused: Corridor needs a name.
fn parse_debtor(field: &RawField, notes: &mut Vec<FieldNote>) -> Result<Party, Mt103Error> {
    match field.tag.as_str() {
        "50F" => parse_structured_party(field, b"12345678", notes),
        "50K" => parse_free_party(field, notes),
        _ => Err(invalid(
            &field.tag,
            "names the debtor by a BIC only; Corridor needs its name and account (50F or 50K)",
        )),
    }
}

/// 59F or 59: the creditor. 59A (a BIC only) is refused: Corridor needs a name.
fn parse_creditor(field: &RawField, notes: &mut Vec<FieldNote>) -> Result<Party, Mt103Error> {
    match field.tag.as_str() {
        "59F" => parse_structured_party(field, b"123", notes),
        "59" => parse_free_party(field, notes),
        _ => Err(invalid(
            &field.tag,
            "names the creditor by a BIC only; Corridor needs its name and account (59F or 59)",
        )),
    }
}

/// A party with an optional `/account` line and lines of name and address (50K, 59):
/// the first line is the name, the others the address.
fn parse_free_party(field: &RawField, notes: &mut Vec<FieldNote>) -> Result<Party, Mt103Error> {
    let (account, lines) = split_account(field)?;
    let (name, address) = lines.split_first().ok_or_else(|| invalid(&field.tag, "has no name"))?;
    for line in address {
        notes.push(FieldNote::new(&field.tag, format!("address line {line:?} is not modelled")));
    }
    Party::new(name, &account).map_err(party_error(&field.tag))
}

/// The leading `/34x` account line, if any (else [`NOT_PROVIDED`]), and the other lines.
fn split_account(field: &RawField) -> Result<(String, &[String]), Mt103Error> {
    match field.lines[0].strip_prefix('/') {
        Some(account) => {
            let account = parse_account_id(account).map_err(model_error(&field.tag))?;
            Ok((account, &field.lines[1..]))
        }
        None => Ok((NOT_PROVIDED.to_owned(), &field.lines[..])),
    }
}

/// 50F and 59F: an account (or, in 50F, a party identifier), then numbered lines `n/`,
/// of which `1/` is the name (continued on further `1/` lines).
fn parse_structured_party(
    field: &RawField,
    numbers: &[u8],
    notes: &mut Vec<FieldNote>,
) -> Result<Party, Mt103Error> {
    let tag = field.tag.as_str();
    let (account, lines) = if field.lines[0].starts_with('/') || tag == "59F" {
        split_account(field)?
    } else {
        let identifier = &field.lines[0];
        if !identifier.contains('/') {
            return Err(invalid(
                tag,
                format!("line 1 {identifier:?} is neither /account nor a party identifier CODE/CC/id"),
            ));
        }
        notes.push(FieldNote::new(tag, format!("party identifier {identifier:?} is not modelled")));
        (NOT_PROVIDED.to_owned(), &field.lines[1..])
    };
    let mut name = String::new();
    for line in lines {
        let number = line
            .as_bytes()
            .first()
            .copied()
            .filter(|n| numbers.contains(n) && line.as_bytes().get(1) == Some(&b'/'));
        let number = number.ok_or_else(|| {
            invalid(
                tag,
                format!("line {line:?} does not begin with one of {}/", String::from_utf8_lossy(numbers)),
            )
        })?;
        match number {
            b'1' => name.push_str(&line[2..]),
            _ => notes.push(FieldNote::new(
                tag,
                format!("line {line:?} ({}) is not modelled", line_meaning(number)),
            )),
        }
    }
    if name.is_empty() {
        return Err(invalid(tag, "has no name (a line 1/)"));
    }
    Party::new(&name, &account).map_err(party_error(tag))
}

fn line_meaning(number: u8) -> &'static str {
    match number {
        b'2' => "address",
        b'3' => "country and town",
        b'4' => "date of birth",
        b'5' => "place of birth",
        b'6' => "customer identification number",
        b'7' => "national identity number",
        _ => "additional information",
    }
}

/// 52A or 57A: an optional party identifier line, then the BIC. The other options name
/// no BIC and are refused.
fn parse_agent(field: &RawField, notes: &mut Vec<FieldNote>) -> Result<Bic, Mt103Error> {
    let tag = field.tag.as_str();
    if !tag.ends_with('A') {
        return Err(invalid(
            tag,
            "names the agent without a BIC; Corridor identifies agents by BIC (option A)",
        ));
    }
    let (bic, identifier) = match field.lines.as_slice() {
        [bic] => (bic, None),
        [identifier, bic] if identifier.starts_with('/') => (bic, Some(identifier)),
        _ => return Err(invalid(tag, "option A is an optional /party identifier line, then a BIC")),
    };
    if let Some(identifier) = identifier {
        notes.push(FieldNote::new(tag, format!("party identifier {identifier:?} is not modelled")));
    }
    Bic::parse(bic).map_err(model_error(tag))
}

/// 70: the remittance information, and the end-to-end id from its `/ROC/` reference
/// ([`NOT_PROVIDED`] without one).
fn parse_remittance(
    field: Option<&RawField>,
    notes: &mut Vec<FieldNote>,
) -> Result<(String, String), Mt103Error> {
    let Some(field) = field else { return Ok((NOT_PROVIDED.to_owned(), String::new())) };
    let text = field.value();
    let Some(after) = text.strip_prefix("/ROC/") else {
        let text = check_text(&text, "70", TEXT_LENGTH_MAX, false).map_err(model_error("70"))?;
        return Ok((NOT_PROVIDED.to_owned(), text));
    };
    let (reference, remittance) = match after.split_once("//") {
        Some((reference, rest)) => (reference, rest.to_owned()),
        None => (after, text.clone()),
    };
    if let Err(e) = MessageId::parse(reference) {
        notes.push(FieldNote::new(
            "70",
            format!("the /ROC/ reference {reference:?} is not taken as the end-to-end id ({})", e.rule),
        ));
        return Ok((NOT_PROVIDED.to_owned(), text));
    }
    Ok((reference.to_owned(), remittance))
}

fn parse_charge_bearer(code: &str) -> Result<ChargeBearer, Mt103Error> {
    match code {
        "OUR" => Ok(ChargeBearer::Debt),
        "SHA" => Ok(ChargeBearer::Shar),
        "BEN" => Ok(ChargeBearer::Cred),
        _ => Err(invalid("71A", format!("{code:?} is none of OUR, SHA, BEN"))),
    }
}

/// The fields Corridor does not model, checked where they have a format, and noted.
fn note_unmodelled(fields: &Fields<'_>, notes: &mut Vec<FieldNote>) -> Result<(), Mt103Error> {
    for tag in ["71F", "71G"] {
        for field in fields.all(tag) {
            let value = field.value();
            let (currency, amount) = split_currency(&value, tag)?;
            let decimal = mt_decimal(amount, AMOUNT_LENGTH_MAX, tag)?;
            Amount::parse_zero_or_positive(&decimal, currency).map_err(model_error(tag))?;
            let whose = if tag == "71F" { "sender's" } else { "receiver's" };
            notes.push(FieldNote::new(tag, format!("{whose} charges {currency} {decimal} are not modelled")));
        }
    }
    if let Some(field) = fields.get(&["72"]) {
        notes.push(FieldNote::new(
            "72",
            format!("sender to receiver information {:?} is not modelled", field.lines.join("\n")),
        ));
    }
    let others = [
        "13C", "23E", "26T", "51A", "53A", "53B", "53D", "54A", "54B", "54D", "55A", "55B", "55D", "56A",
        "56C", "56D", "77B",
    ];
    for field in fields.0.iter().filter(|f| others.contains(&f.tag.as_str())) {
        notes.push(FieldNote::new(&field.tag, format!("{:?} is not modelled", field.lines.join("\n"))));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Writing.
// ---------------------------------------------------------------------------------------

/// Writes a payment as an MT103 in output form. Refuses, listing every misfit, what the
/// MT103 cannot carry without loss; lists in [`Exported::not_carried`] what of the header
/// and the conversion it does not carry.
pub fn export(header: &Header, transfer: &CreditTransfer) -> Result<Exported, Mt103Error> {
    if header.uetr != Some(transfer.uetr) {
        return Err(invalid("header.uetr", "must be the UETR of the credit transfer"));
    }
    let mut misfits = Vec::new();
    let mut fields: Vec<(&str, Vec<String>)> = Vec::new();
    fields.push(("20", vec![write_reference(&transfer.instruction_id, &mut misfits)]));
    fields.push(("23B", vec!["CRED".to_owned()]));
    let date = write_date(transfer.settlement_date, &mut misfits);
    fields.push(("32A", vec![format!("{date}{}", write_money(transfer.amount, "32A", &mut misfits))]));
    fields.push(("33B", vec![write_money(transfer.instructed_amount(), "33B", &mut misfits)]));
    if let Some(conversion) = &transfer.conversion {
        fields.push(("36", vec![write_rate(conversion.rate, &mut misfits)]));
    }
    fields.push(("50F", write_party(&transfer.debtor, "50F", true, &mut misfits)));
    fields.push(("52A", vec![bic8_or_11(transfer.debtor_agent)]));
    fields.push(("57A", vec![bic8_or_11(transfer.creditor_agent)]));
    fields.push(("59F", write_party(&transfer.creditor, "59F", false, &mut misfits)));
    let remittance = write_remittance(transfer, &mut misfits);
    if !remittance.is_empty() {
        fields.push(("70", remittance));
    }
    fields.push(("71A", vec![write_charge_bearer(transfer.charge_bearer, &mut misfits)]));
    if !misfits.is_empty() {
        return Err(Mt103Error::DoesNotFit(misfits));
    }
    let mut text = write_header_blocks(header, &transfer.uetr);
    text.push_str("{4:\r\n");
    for (tag, lines) in fields {
        text.push_str(&format!(":{tag}:{}\r\n", lines.join("\r\n")));
    }
    text.push_str("-}");
    if header.possible_duplicate {
        text.push_str("{5:{PDE:}}");
    }
    Ok(Exported { text, not_carried: not_carried(header, transfer) })
}

/// Writes a pacs.008 message as an MT103 ([`export`]); other message types have no
/// MT103 form and are refused.
pub fn export_message(message: &Message) -> Result<Exported, Mt103Error> {
    match message.body() {
        Body::Pacs008(transfer) => export(message.header(), transfer),
        other => Err(invalid(
            "message",
            format!("a {} has no MT103 form; only a pacs.008 has", other.message_type()),
        )),
    }
}

/// Blocks 1 to 3 in output form: the receiver's terminal, the sender's MIR with the
/// creation time, the UETR.
fn write_header_blocks(header: &Header, uetr: &Uetr) -> String {
    let created =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(header.creation_time_unix_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let date =
        format!("{:02}{:02}{:02}", created.year().rem_euclid(100), u8::from(created.month()), created.day());
    let time = format!("{:02}{:02}", created.hour(), created.minute());
    let receiver = terminal(header.receiver);
    let sender = terminal(header.sender);
    format!(
        "{{1:F01{receiver}0000000000}}{{2:O103{time}{date}{sender}0000000000{date}{time}N}}{{3:{{121:{uetr}}}}}"
    )
}

/// The 12-character logical terminal of a BIC: BIC8, terminal code `X`, branch.
fn terminal(bic: Bic) -> String {
    let code = bic.as_str();
    format!("{}X{}", &code[..8], &code[8..])
}

/// A BIC as written in the samples: 8 characters for the primary office.
fn bic8_or_11(bic: Bic) -> String {
    let code = bic.as_str();
    code.strip_suffix("XXX").unwrap_or(code).to_owned()
}

fn not_carried(header: &Header, transfer: &CreditTransfer) -> Vec<FieldNote> {
    let mut notes = Vec::new();
    if header.message_id.as_str() != transfer.instruction_id {
        notes.push(FieldNote::new(
            "header.message_id",
            format!(
                "{} is not carried: an MT103 has one reference, 20, the instruction id",
                header.message_id
            ),
        ));
    }
    if header.creation_time_unix_ms.rem_euclid(60_000) != 0 {
        notes.push(FieldNote::new(
            "header.creation_time",
            "block 2 carries the minute; the seconds are not carried",
        ));
    }
    let year =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(header.creation_time_unix_ms) * 1_000_000)
            .map_or(0, |t| t.year());
    if !(2000..=2099).contains(&year) {
        notes.push(FieldNote::new(
            "header.creation_time",
            "is outside 2000-2099, which block 2's YYMMDD cannot carry",
        ));
    }
    if header.sequence_number != 0 {
        notes.push(FieldNote::new(
            "header.sequence_number",
            format!("{} is not carried: FIN numbers messages per session itself", header.sequence_number),
        ));
    }
    if let Some(quote_id) = transfer.conversion.as_ref().and_then(|c| c.quote_id.as_ref()) {
        notes.push(FieldNote::new(
            "conversion.quote_id",
            format!("{quote_id} is not carried: MT103 has no field for it"),
        ));
    }
    notes
}

fn write_reference(reference: &str, misfits: &mut Vec<FieldNote>) -> String {
    if reference.len() > REFERENCE_LENGTH_MAX
        || reference.starts_with('/')
        || reference.ends_with('/')
        || reference.contains("//")
    {
        misfits.push(FieldNote::new(
            "20",
            format!("the instruction id {reference:?} is not 1 to {REFERENCE_LENGTH_MAX} characters without a leading or trailing `/` or `//`"),
        ));
    }
    reference.to_owned()
}

fn write_date(date: Date, misfits: &mut Vec<FieldNote>) -> String {
    if !(2000..=2099).contains(&date.year()) {
        misfits
            .push(FieldNote::new("32A", format!("the settlement date {date} is outside 2000-2099 (YYMMDD)")));
    }
    format!("{:02}{:02}{:02}", date.year().rem_euclid(100), u8::from(date.month()), date.day())
}

/// `USD136500,` or `EUR15669,38`: trailing zeros of the decimals dropped, as CBPR+ writes.
fn write_money(amount: Amount, field: &str, misfits: &mut Vec<FieldNote>) -> String {
    let exponent = amount.currency().exponent();
    let minor = amount.minor_units().unsigned_abs();
    let scale = 10u64.pow(exponent);
    let fraction = format!("{:0width$}", minor % scale, width = exponent as usize);
    let number =
        format!("{},{}", minor / scale, if exponent == 0 { "" } else { fraction.trim_end_matches('0') });
    if number.len() > AMOUNT_LENGTH_MAX {
        misfits
            .push(FieldNote::new(field, format!("{amount} needs more than {AMOUNT_LENGTH_MAX} characters")));
    }
    format!("{}{number}", amount.currency())
}

fn write_rate(rate: Rate, misfits: &mut Vec<FieldNote>) -> String {
    let text = rate.to_string();
    let text = if text.contains('.') { text.replace('.', ",") } else { format!("{text},") };
    if text.len() > RATE_LENGTH_MAX {
        misfits.push(FieldNote::new(
            "36",
            format!("the rate {rate} needs more than {RATE_LENGTH_MAX} characters"),
        ));
    }
    text
}

/// 50F or 59F: `/account` (in 59F left out for [`NOT_PROVIDED`]), then the name in
/// `1/` lines of 33 characters.
fn write_party(
    party: &Party,
    field: &str,
    account_required: bool,
    misfits: &mut Vec<FieldNote>,
) -> Vec<String> {
    let mut lines = Vec::new();
    if account_required || party.account != NOT_PROVIDED {
        lines.push(format!("/{}", party.account));
    }
    check_x(&party.name, field, "the name", misfits);
    let name_lines = split_lines(&party.name, LINE_LENGTH_MAX - 2, false);
    if name_lines.len() > 4 {
        misfits.push(FieldNote::new(
            field,
            format!(
                "the name has {} characters; four lines of {} hold {}",
                party.name.chars().count(),
                LINE_LENGTH_MAX - 2,
                4 * (LINE_LENGTH_MAX - 2)
            ),
        ));
    }
    lines.extend(name_lines.into_iter().map(|line| format!("1/{line}")));
    lines
}

/// Field 70: `/ROC/<end-to-end id>`, then `//` and the remittance information.
fn write_remittance(transfer: &CreditTransfer, misfits: &mut Vec<FieldNote>) -> Vec<String> {
    let (id, remittance) = (&transfer.end_to_end_id, &transfer.remittance_information);
    let roc = format!("/ROC/{id}");
    let text = if id == NOT_PROVIDED {
        if remittance.starts_with("/ROC/") {
            misfits.push(FieldNote::new("70", "the remittance information begins with /ROC/, which MT103 reads as the end-to-end id, but the end-to-end id is NOTPROVIDED"));
        }
        remittance.clone()
    } else if remittance.is_empty() || *remittance == roc {
        roc
    } else {
        format!("{roc}//{remittance}")
    };
    if id != NOT_PROVIDED && (id.contains("//") || id.ends_with('/')) {
        misfits.push(FieldNote::new(
            "70",
            format!("the end-to-end id {id:?} holds `//` or ends in `/`, which the /ROC/ reference cannot"),
        ));
    }
    check_x(&text, "70", "the remittance information", misfits);
    let lines = split_lines(&text, LINE_LENGTH_MAX, true);
    if lines.iter().skip(1).any(|line| line.starts_with([':', '-'])) {
        misfits.push(FieldNote::new(
            "70",
            "a run of `:` or `-` would begin a line, which FIN reads as a new field",
        ));
    }
    if lines.len() > 4 {
        misfits.push(FieldNote::new(
            "70",
            format!("the /ROC/ reference and remittance information need {} characters; four lines of {LINE_LENGTH_MAX} hold {}", text.chars().count(), 4 * LINE_LENGTH_MAX),
        ));
    }
    lines
}

fn write_charge_bearer(bearer: ChargeBearer, misfits: &mut Vec<FieldNote>) -> String {
    match bearer {
        ChargeBearer::Debt => "OUR",
        ChargeBearer::Shar => "SHA",
        ChargeBearer::Cred => "BEN",
        ChargeBearer::Slev => {
            misfits.push(FieldNote::new("71A", "the charge bearer SLEV has no MT103 code (OUR, SHA, BEN)"));
            ""
        }
    }
    .to_owned()
}

fn check_x(text: &str, field: &str, what: &str, misfits: &mut Vec<FieldNote>) {
    let outside: String = text.chars().filter(|c| !is_swift_x(*c)).collect();
    if !outside.is_empty() {
        misfits.push(FieldNote::new(
            field,
            format!("{what} holds {outside:?}, outside the SWIFT X character set"),
        ));
    }
}

/// Splits text into lines of at most `width` characters, concatenated back unchanged.
/// A line of free text may not begin with `:` or `-` (FIN would read a new field or the
/// end of the text), so with `free_text` such a line starts one character earlier.
fn split_lines(text: &str, width: usize, free_text: bool) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + width).min(chars.len());
        while free_text && end < chars.len() && end > start + 1 && matches!(chars[end], ':' | '-') {
            end -= 1;
        }
        lines.push(chars[start..end].iter().collect());
        start = end;
    }
    lines
}
