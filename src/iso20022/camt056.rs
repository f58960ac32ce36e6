//! camt.056.001.08, FI to FI payment cancellation request (a recall): one `TxInf`.
//!
//! | model | element under `FIToFIPmtCxlReq` |
//! |---|---|
//! | header message id, sender, receiver, creation time | `Assgnmt/Id`, `Assgnmt/Assgnr/Agt`, `Assgnmt/Assgne/Agt`, `Assgnmt/CreDtTm` |
//! | case id | `Undrlyg[1]/TxInf/Case/Id` (its creator, `Case/Cretr/Agt`, is the sender), as CBPR+ places it |
//! | original message id | `Undrlyg[1]/TxInf/OrgnlGrpInf/OrgnlMsgId` (`OrgnlMsgNmId` = pacs.008.001.08) |
//! | UETR | `Undrlyg[1]/TxInf/OrgnlUETR` |
//! | amount asked back | `Undrlyg[1]/TxInf/OrgnlIntrBkSttlmAmt` |
//! | reason, additional information | `Undrlyg[1]/TxInf/CxlRsnInf/Rsn/Cd`, `CxlRsnInf/AddtlInf` |
//! | sequence number | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |

use super::common::{
    Supplementary, format_time, read_amount, read_id, read_original_group, read_original_uetr,
    read_party_agent, read_reason, read_supplementary_without_quote, write_amount, write_original_group,
    write_party_agent, write_reason, write_supplementary,
};
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::{Bic, CancellationRequest, Header};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "camt.056.001.08";
/// The definition of the messages a recall asks to cancel.
const ORIGINAL_DEFINITION: &str = "pacs.008.001.08";

const MESSAGE_ORDER: &[&str] = &["Assgnmt", "Case", "CtrlData", "Undrlyg", "SplmtryData"];
/// The sequence of `Assgnmt` (CaseAssignment5), shared with camt.029.
pub(crate) const ASSIGNMENT_ORDER: &[&str] = &["Id", "Assgnr", "Assgne", "CreDtTm"];
const TRANSACTION_ORDER: &[&str] = &[
    "CxlId",
    "Case",
    "OrgnlGrpInf",
    "OrgnlInstrId",
    "OrgnlEndToEndId",
    "OrgnlTxId",
    "OrgnlUETR",
    "OrgnlClrSysRef",
    "OrgnlIntrBkSttlmAmt",
    "OrgnlIntrBkSttlmDt",
    "Assgnr",
    "Assgne",
    "CxlRsnInf",
    "OrgnlTxRef",
    "SplmtryData",
];

/// `Assgnmt`: the message id, who assigns the case to whom, and when (camt.056, camt.029).
pub(crate) fn write_assignment(w: &mut XmlWriter, header: &Header, time_path: &str) -> Result<(), XmlError> {
    w.open("Assgnmt");
    w.leaf("Id", header.message_id.as_str());
    write_party_agent(w, "Assgnr", header.sender);
    write_party_agent(w, "Assgne", header.receiver);
    w.leaf("CreDtTm", &format_time(header.creation_time_unix_ms, time_path)?);
    w.close();
    Ok(())
}

/// `Case` (or `RslvdCase`): its id and its creator, an agent.
pub(crate) fn write_case(w: &mut XmlWriter, name: &'static str, case_id: &str, creator: Bic) {
    w.open(name);
    w.leaf("Id", case_id);
    write_party_agent(w, "Cretr", creator);
    w.close();
}

/// The case id of a `Case` element. Its creator, when named by BIC, must be `creator`;
/// a creator named otherwise (CBPR+ writes a name) stays unread, and so is reported.
pub(crate) fn read_case(case: &Element, creator: Bic, role: &str) -> Result<String, XmlError> {
    let id = read_id(case.required("Id")?)?;
    let cretr = case
        .peek("Cretr")
        .ok_or_else(|| XmlError::invalid(format!("{}/Cretr", case.path()), "is required"))?;
    let bicfi = cretr.peek("Agt").and_then(|a| a.peek("FinInstnId")).and_then(|f| f.peek("BICFI"));
    if bicfi.is_some() {
        let named = read_party_agent(cretr.mark())?;
        if named != creator {
            return Err(cretr.invalid(format!("the case was opened by the {role} {creator} (got {named})")));
        }
    }
    Ok(id)
}

/// The group header's facts from `Assgnmt` (camt.056, camt.029).
pub(crate) fn read_assignment(message: &Element, sequence_number: u64) -> Result<GroupHeader<'_>, XmlError> {
    let assignment = message.required("Assgnmt")?.ordered(ASSIGNMENT_ORDER)?;
    GroupHeader::read(
        assignment.required("Id")?,
        assignment.required("CreDtTm")?,
        Some(assignment.required("Assgnr")?.required("Agt")?),
        Some(assignment.required("Assgne")?.required("Agt")?),
        sequence_number,
    )
}

/// Writes the `Document` of a cancellation request.
pub(crate) fn write(
    w: &mut XmlWriter,
    header: &Header,
    request: &CancellationRequest,
) -> Result<(), XmlError> {
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("FIToFIPmtCxlReq");
    write_assignment(w, header, "/Envelope/Document/FIToFIPmtCxlReq/Assgnmt/CreDtTm")?;
    w.open("Undrlyg");
    w.open("TxInf");
    write_case(w, "Case", &request.case_id, header.sender);
    write_original_group(w, &request.original_message_id, ORIGINAL_DEFINITION);
    w.leaf("OrgnlUETR", &request.uetr.to_string());
    let amount = request.original_amount;
    write_amount(w, "OrgnlIntrBkSttlmAmt", amount.minor_units(), amount.currency());
    write_reason(w, "CxlRsnInf", Some(request.reason), &request.additional_information);
    w.close();
    w.close();
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id: None });
    w.close();
    w.close();
    Ok(())
}

/// Reads the `Document` of a cancellation request; the case's creator must be the sender
/// named by the assignment.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, CancellationRequest), XmlError> {
    let message = document.required("FIToFIPmtCxlReq")?.ordered(MESSAGE_ORDER)?;
    let supplementary = read_supplementary_without_quote(message, "a cancellation request")?;
    let group = read_assignment(message, supplementary.sequence_number)?;
    let sender = group.instructing.map(|(bic, _)| bic).expect("read_assignment requires the assigner");
    let transaction = message.required("Undrlyg")?.required("TxInf")?.ordered(TRANSACTION_ORDER)?;
    let case_id = read_case(transaction.required("Case")?, sender, "sender")?;
    let (reason, additional_information) = read_reason(transaction.child("CxlRsnInf"))?;
    let reason_path = format!("{}/CxlRsnInf/Rsn/Cd", transaction.path());
    let request = CancellationRequest {
        case_id,
        original_message_id: read_original_group(transaction, ORIGINAL_DEFINITION)?,
        uetr: read_original_uetr(transaction)?,
        original_amount: read_amount(transaction.required("OrgnlIntrBkSttlmAmt")?)?,
        reason: reason.ok_or_else(|| XmlError::invalid(reason_path, "is required: a recall says why"))?,
        additional_information,
    };
    Ok((group, request))
}
