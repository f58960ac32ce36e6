//! ISO 20022 XML at the edge: Corridor's messages to and from the XML that banks exchange.
//! Pure: text in, text out, no files, sockets or clocks.
//!
//! MT103 to and from the model's pacs.008, by the CBPR+ mapping, is [`mt103`].
//!
//! # What is written
//!
//! A message is written as one XML text holding its Business Application Header
//! (head.001.001.02) and its Document side by side under a wrapper element without a
//! namespace, as the CBPR+ usage examples do:
//!
//! ```text
//! <Envelope>
//!   <AppHdr xmlns="urn:iso:std:iso:20022:tech:xsd:head.001.001.02">...</AppHdr>
//!   <Document xmlns="urn:iso:std:iso:20022:tech:xsd:pacs.008.001.08">...</Document>
//! </Envelope>
//! ```
//!
//! No schema declares `Envelope`: validate each part against its own schema
//! (`xmllint --xpath '/*/*[local-name()="Document"]' FILE | xmllint --schema pacs.008.001.08.xsd -`).
//! Times are written in UTC with milliseconds and the offset spelt out
//! (`2026-12-05T07:03:01.123+00:00`), amounts with exactly their currency's decimals,
//! banks by `BICFI`. What the model holds and no ISO element does (the sender's sequence
//! number, the quote a rate came from) travels in the Document's `SplmtryData` under
//! Corridor's namespace ([`CORRIDOR_NAMESPACE`]), which the schemas leave open.
//!
//! # What is read
//!
//! A wrapper (`Envelope`, in any namespace or none) with an `AppHdr` and a `Document`, or
//! a bare `Document` (then the instructing and instructed agents name sender and
//! receiver). The message and its version come from the Document's namespace; Corridor
//! reads the versions of the CBPR+ set ([`DEFINITIONS`]) and refuses others by name.
//! Values are checked as the schema and the model require; an error names the element
//! by its path, as `/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt/@Ccy`.
//!
//! **Nothing is dropped silently.** An element Corridor does not model is not carried
//! through: [`read`] returns the message together with the path of every element (and
//! attribute) it did not read, and [`read_strict`], which is what a node must use for a
//! message it acts on, refuses such a message with that list ([`XmlError::NotCarried`]).
//! A CBPR+ payment that is one hop of a longer chain reads as the payment from its
//! debtor agent to its creditor agent, the hop's sender and receiver reported as not
//! carried (see `pacs008`); an AppHdr party named as an organisation (`OrgId`) is
//! reported and the group header's agent names the bank. Only what the model cannot hold
//! (an agent without a BIC, a party without an account) is refused.
//! Carrying unknown elements verbatim would let a receiver see data that no Corridor
//! check ever looked at, under a signature that vouches for it; refusing keeps what is
//! signed, checked and booked equal to what arrived.
//!
//! # Safety
//!
//! The reader ([`tree`]) refuses a DTD (so no entity is defined or expanded: a "billion
//! laughs" document is refused before any expansion), input over [`XML_BYTES_MAX`],
//! nesting deeper than [`XML_DEPTH_MAX`] and more than [`XML_ELEMENTS_MAX`] elements.

mod camt029;
mod camt053;
mod camt056;
mod common;
mod error;
mod head;
pub mod mt103;
mod pacs002;
mod pacs004;
mod pacs008;
mod tree;
mod writer;

pub use common::CORRIDOR_NAMESPACE;
pub use error::XmlError;
pub use head::HEAD_NAMESPACE;
pub use tree::{XML_DEPTH_MAX, XML_ELEMENTS_MAX};

use crate::model::wire::{decode_message, encode_message};
use crate::model::{Bic, Body, Header, Message, MessageId, MessageType};
use tree::Element;
use writer::XmlWriter;

/// Largest XML input read, in bytes: a payment message is a few kilobytes, and a
/// statement of a few thousand entries fits; anything larger is refused unread.
pub const XML_BYTES_MAX: usize = 8 * 1024 * 1024;

/// Prefix of every ISO 20022 message namespace; the message definition follows.
const ISO_NAMESPACE_PREFIX: &str = "urn:iso:std:iso:20022:tech:xsd:";

/// The message definitions Corridor reads and writes, by message type.
pub const DEFINITIONS: &[(MessageType, &str)] = &[
    (MessageType::Pacs008, pacs008::DEFINITION),
    (MessageType::Pacs002, pacs002::DEFINITION),
    (MessageType::Pacs004, pacs004::DEFINITION),
    (MessageType::Camt056, camt056::DEFINITION),
    (MessageType::Camt029, camt029::DEFINITION),
    (MessageType::Camt053, camt053::DEFINITION),
];

/// A message read from XML, with what it held that Corridor does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The message.
    pub message: Message,
    /// Path of every element or attribute of the input that the message does not carry,
    /// in document order; empty when nothing was lost.
    pub not_carried: Vec<String>,
}

/// The namespace of a message definition (`pacs.008.001.08`).
pub fn namespace_of(definition: &str) -> String {
    format!("{ISO_NAMESPACE_PREFIX}{definition}")
}

/// The message definition Corridor writes for `message_type`, if it writes it yet.
pub fn definition_of(message_type: MessageType) -> Option<&'static str> {
    DEFINITIONS.iter().find(|(t, _)| *t == message_type).map(|(_, d)| *d)
}

/// Writes `message` as AppHdr + Document under an `Envelope` (see the module doc).
pub fn write(message: &Message) -> Result<String, XmlError> {
    let header = message.header();
    let definition = definition_of(message.message_type()).ok_or_else(|| XmlError::Unwritable {
        path: "/Envelope/Document".into(),
        rule: format!("Corridor does not write {} as XML", message.message_type()),
    })?;
    let mut w = XmlWriter::new();
    w.open("Envelope");
    head::write(&mut w, header, definition)?;
    match message.body() {
        Body::Pacs008(transfer) => pacs008::write(&mut w, header, transfer)?,
        Body::Pacs002(report) => pacs002::write(&mut w, header, report)?,
        Body::Pacs004(payment_return) => pacs004::write(&mut w, header, payment_return)?,
        Body::Camt056(request) => camt056::write(&mut w, header, request)?,
        Body::Camt029(resolution) => camt029::write(&mut w, header, resolution)?,
        Body::Camt053(statement) => camt053::write(&mut w, header, statement)?,
    }
    w.close();
    Ok(w.finish())
}

/// Reads a message, reporting what it does not carry (see the module doc).
pub fn read(input: &[u8]) -> Result<Imported, XmlError> {
    let root = tree::parse(input)?;
    let (app_hdr_element, document) = split(&root)?;
    let (message_type, definition) = detect_definition(document)?;
    let app_hdr = app_hdr_element.map(|a| head::read(a, definition)).transpose()?;
    let (group, body) = match message_type {
        MessageType::Pacs008 => pacs008::read(document).map(|(g, b)| (g, Body::Pacs008(b)))?,
        MessageType::Pacs002 => pacs002::read(document).map(|(g, b)| (g, Body::Pacs002(b)))?,
        MessageType::Pacs004 => pacs004::read(document).map(|(g, b)| (g, Body::Pacs004(b)))?,
        MessageType::Camt056 => camt056::read(document).map(|(g, b)| (g, Body::Camt056(b)))?,
        MessageType::Camt029 => camt029::read(document).map(|(g, b)| (g, Body::Camt029(b)))?,
        MessageType::Camt053 => camt053::read(document).map(|(g, b)| (g, Body::Camt053(b)))?,
    };
    let mut header = group.header(app_hdr.as_ref(), body.uetr())?;
    if let Body::Pacs008(transfer) = &body {
        pacs008::route(document, app_hdr_element, &mut header, transfer)?;
    }
    let message = build(document, header, body)?;
    Ok(Imported { message, not_carried: root.unread() })
}

/// Reads a message that must carry everything it holds: refused with the list of what
/// would be lost otherwise ([`XmlError::NotCarried`]).
pub fn read_strict(input: &[u8]) -> Result<Message, XmlError> {
    let imported = read(input)?;
    if !imported.not_carried.is_empty() {
        return Err(XmlError::NotCarried { paths: imported.not_carried });
    }
    Ok(imported.message)
}

/// The message type and definition an input holds, from its Document's namespace.
pub fn detect(input: &[u8]) -> Result<(MessageType, &'static str), XmlError> {
    let root = tree::parse(input)?;
    let (_, document) = split(&root)?;
    detect_definition(document)
}

/// The AppHdr (if any) and the Document of the input's root.
fn split(root: &Element) -> Result<(Option<&Element>, &Element), XmlError> {
    root.mark();
    match root.name() {
        "Document" => Ok((None, root)),
        "Envelope" => {
            let part = |name: &str| root.children().iter().find(|c| c.name() == name).map(Element::mark);
            let document = part("Document")
                .ok_or_else(|| XmlError::invalid(format!("{}/Document", root.path()), "is required"))?;
            Ok((part("AppHdr"), document))
        }
        "AppHdr" => {
            Err(root.invalid("an AppHdr alone carries no message: put it beside its Document in an Envelope"))
        }
        other => Err(root.invalid(format!("the root element is a Document or an Envelope (got {other:?})"))),
    }
}

fn detect_definition(document: &Element) -> Result<(MessageType, &'static str), XmlError> {
    let namespace = document.namespace();
    if let Some((message_type, definition)) = DEFINITIONS.iter().find(|(_, d)| namespace_of(d) == namespace) {
        return Ok((*message_type, definition));
    }
    let known = DEFINITIONS.iter().map(|(_, d)| *d).collect::<Vec<_>>().join(", ");
    let Some(definition) = namespace.strip_prefix(ISO_NAMESPACE_PREFIX) else {
        return Err(document.invalid(format!(
            "namespace {namespace:?} is not an ISO 20022 message namespace; Corridor reads {known}"
        )));
    };
    Err(document.invalid(format!("Corridor does not read {definition}; it reads {known}")))
}

/// What a Document's group header says about the message header.
pub(crate) struct GroupHeader<'a> {
    message_id: &'a Element,
    creation_time_unix_ms: i64,
    creation_time: &'a Element,
    instructing: Option<(Bic, &'a Element)>,
    instructed: Option<(Bic, &'a Element)>,
    sequence_number: u64,
}

impl<'a> GroupHeader<'a> {
    /// The group header's facts: `instructing` and `instructed` are agent elements
    /// (`FinInstnId/BICFI` below them), read when present.
    pub(crate) fn read(
        message_id: &'a Element,
        creation_time: &'a Element,
        instructing: Option<&'a Element>,
        instructed: Option<&'a Element>,
        sequence_number: u64,
    ) -> Result<Self, XmlError> {
        let agent = |element: Option<&'a Element>| {
            element.map(|e| Ok::<_, XmlError>((common::read_agent(e)?, e))).transpose()
        };
        Ok(Self {
            message_id,
            creation_time_unix_ms: common::read_time(creation_time)?,
            creation_time,
            instructing: agent(instructing)?,
            instructed: agent(instructed)?,
            sequence_number,
        })
    }

    /// The message header from the AppHdr, which the group header must agree with; from
    /// the group header alone (its agents name sender and receiver) when there is none.
    fn header(
        &self,
        app_hdr: Option<&head::AppHdr>,
        uetr: Option<crate::model::Uetr>,
    ) -> Result<Header, XmlError> {
        let message_id = MessageId::parse(self.message_id.token()).map_err(common::at(self.message_id))?;
        let agent = |agent: Option<(Bic, &Element)>, name: &str| {
            agent.map(|(bic, _)| bic).ok_or_else(|| {
                self.message_id.invalid(format!(
                    "without an AppHdr naming a bank, the {name} agent names the {}",
                    if name == "instructing" { "sender" } else { "receiver" }
                ))
            })
        };
        let header = match app_hdr {
            None => Header {
                message_id,
                uetr,
                sender: agent(self.instructing, "instructing")?,
                receiver: agent(self.instructed, "instructed")?,
                creation_time_unix_ms: self.creation_time_unix_ms,
                sequence_number: self.sequence_number,
                possible_duplicate: false,
            },
            Some(app) => {
                self.agrees_with(app, &message_id)?;
                Header {
                    message_id,
                    uetr,
                    sender: app.sender.map_or_else(|| agent(self.instructing, "instructing"), Ok)?,
                    receiver: app.receiver.map_or_else(|| agent(self.instructed, "instructed"), Ok)?,
                    creation_time_unix_ms: app.creation_time_unix_ms,
                    sequence_number: self.sequence_number,
                    possible_duplicate: app.possible_duplicate,
                }
            }
        };
        if header.sender == header.receiver {
            return Err(self.message_id.invalid(format!("sender and receiver are both {}", header.sender)));
        }
        Ok(header)
    }

    /// Corridor keeps one message id, one creation time, one sender and one receiver:
    /// the group header must say what the AppHdr says.
    fn agrees_with(&self, app: &head::AppHdr, message_id: &MessageId) -> Result<(), XmlError> {
        if *message_id != app.message_id {
            return Err(self
                .message_id
                .invalid(format!("must equal the AppHdr's BizMsgIdr {}", app.message_id)));
        }
        if self.creation_time_unix_ms != app.creation_time_unix_ms {
            return Err(self.creation_time.invalid("must be the same instant as the AppHdr's CreDt"));
        }
        for (agent, bic, role) in
            [(self.instructing, app.sender, "sender"), (self.instructed, app.receiver, "receiver")]
        {
            if let Some((named, element)) = agent
                && let Some(bic) = bic
                && named != bic
            {
                return Err(element.invalid(format!("must be the AppHdr's {role} {bic} (got {named})")));
            }
        }
        Ok(())
    }
}

/// The message, checked as the model and the wire check it: what Corridor reads from
/// XML can always be signed and sent.
fn build(document: &Element, header: Header, body: Body) -> Result<Message, XmlError> {
    let message = Message::new(header, body).map_err(|e| document.invalid(e.to_string()))?;
    decode_message(&encode_message(&message)).map_err(|e| document.invalid(e.to_string()))
}
