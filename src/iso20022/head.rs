//! The Business Application Header, head.001.001.02: who sends the message to whom,
//! its id, its definition and when it was created.

use super::XmlError;
use super::common::{format_time, read_time};
use super::tree::Element;
use super::writer::XmlWriter;
use crate::model::{Bic, Header, MessageId};

/// Namespace of head.001.001.02.
pub const HEAD_NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:head.001.001.02";

/// The sequence of `AppHdr` (BusinessApplicationHeaderV02).
const APP_HDR_ORDER: &[&str] = &[
    "CharSet",
    "Fr",
    "To",
    "BizMsgIdr",
    "MsgDefIdr",
    "BizSvc",
    "MktPrctc",
    "CreDt",
    "BizPrcgDt",
    "CpyDplct",
    "PssblDplct",
    "Prty",
    "Sgntr",
    "Rltd",
];

/// What the AppHdr says about a message.
#[derive(Debug)]
pub(crate) struct AppHdr {
    /// `Fr` when it names a bank (`FIId`); `None` when it names an organisation
    /// (`OrgId`), left unread: the group header's instructing agent names the sender.
    pub sender: Option<Bic>,
    /// `To`, as `sender` is `Fr`.
    pub receiver: Option<Bic>,
    pub message_id: MessageId,
    pub creation_time_unix_ms: i64,
    pub possible_duplicate: bool,
}

/// Writes the AppHdr of `header` for a message of `definition` (`pacs.008.001.08`).
pub(crate) fn write(w: &mut XmlWriter, header: &Header, definition: &str) -> Result<(), XmlError> {
    w.open_with("AppHdr", &[("xmlns", HEAD_NAMESPACE)]);
    for (name, bic) in [("Fr", header.sender), ("To", header.receiver)] {
        w.open(name);
        w.open("FIId");
        w.open("FinInstnId");
        w.leaf("BICFI", bic.as_str());
        w.close();
        w.close();
        w.close();
    }
    w.leaf("BizMsgIdr", header.message_id.as_str());
    w.leaf("MsgDefIdr", definition);
    w.leaf("CreDt", &format_time(header.creation_time_unix_ms, "/Envelope/AppHdr/CreDt")?);
    if header.possible_duplicate {
        w.leaf("PssblDplct", "true");
    }
    w.close();
    Ok(())
}

/// Reads an AppHdr, which must name `definition` as its message definition.
pub(crate) fn read(app_hdr: &Element, definition: &str) -> Result<AppHdr, XmlError> {
    app_hdr.mark();
    if app_hdr.namespace() != HEAD_NAMESPACE {
        return Err(app_hdr.invalid(format!(
            "an AppHdr in namespace {:?} is not one Corridor reads: it reads {HEAD_NAMESPACE}",
            app_hdr.namespace()
        )));
    }
    app_hdr.ordered(APP_HDR_ORDER)?;
    let party = |name: &str| -> Result<Option<Bic>, XmlError> {
        let party = app_hdr
            .peek(name)
            .ok_or_else(|| XmlError::invalid(format!("{}/{name}", app_hdr.path()), "is required"))?;
        if party.peek("FIId").is_none() && party.peek("OrgId").is_some() {
            return Ok(None);
        }
        let bicfi = party.mark().required_at(&["FIId", "FinInstnId", "BICFI"])?;
        Bic::parse(bicfi.token()).map(Some).map_err(super::common::at(bicfi))
    };
    let (sender, receiver) = (party("Fr")?, party("To")?);
    let id = app_hdr.required("BizMsgIdr")?;
    let message_id = MessageId::parse(id.token()).map_err(super::common::at(id))?;
    let declared = app_hdr.required("MsgDefIdr")?;
    if declared.token() != definition {
        return Err(declared.invalid(format!(
            "must name the Document's message, {definition} (got {:?})",
            declared.token()
        )));
    }
    let creation_time_unix_ms = read_time(app_hdr.required("CreDt")?)?;
    let possible_duplicate = match app_hdr.child("PssblDplct") {
        None => false,
        Some(flag) => match flag.token() {
            "true" | "1" => true,
            "false" | "0" => false,
            other => return Err(flag.invalid(format!("is true or false (got {other:?})"))),
        },
    };
    Ok(AppHdr { sender, receiver, message_id, creation_time_unix_ms, possible_duplicate })
}
