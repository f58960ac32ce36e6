//! pacs.002.001.10, FI to FI payment status report: one `TxInfAndSts` per message.
//!
//! | model | element under `FIToFIPmtStsRpt` |
//! |---|---|
//! | header message id, creation time, sender, receiver | `GrpHdr/MsgId`, `CreDtTm`, `InstgAgt`, `InstdAgt` (read from `TxInfAndSts` where the group header has none, as CBPR+ places them) |
//! | original message id | `TxInfAndSts/OrgnlGrpInf/OrgnlMsgId` (`OrgnlMsgNmId` = pacs.008.001.08) |
//! | UETR | `TxInfAndSts/OrgnlUETR` |
//! | status | `TxInfAndSts/TxSts` (`ACTC`, `ACSP`, `ACSC`, `ACCC`, `PDNG`, `RJCT`) |
//! | reason, additional information | `TxInfAndSts/StsRsnInf/Rsn/Cd`, `StsRsnInf/AddtlInf` (105 characters each) |
//! | sequence number | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |

use super::common::{
    Supplementary, at, format_time, read_original_group, read_original_uetr, read_reason,
    read_supplementary_without_quote, write_agent, write_original_group, write_reason, write_supplementary,
};
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::{Header, PaymentStatus, PaymentStatusReport};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "pacs.002.001.10";
/// The definition of the messages a status report answers.
const ORIGINAL_DEFINITION: &str = "pacs.008.001.08";

const MESSAGE_ORDER: &[&str] = &["GrpHdr", "OrgnlGrpInfAndSts", "TxInfAndSts", "SplmtryData"];
const GROUP_ORDER: &[&str] = &["MsgId", "CreDtTm", "InstgAgt", "InstdAgt", "OrgnlBizQry"];
const TRANSACTION_ORDER: &[&str] = &[
    "StsId",
    "OrgnlGrpInf",
    "OrgnlInstrId",
    "OrgnlEndToEndId",
    "OrgnlTxId",
    "OrgnlUETR",
    "TxSts",
    "StsRsnInf",
    "ChrgsInf",
    "AccptncDtTm",
    "FctvIntrBkSttlmDt",
    "AcctSvcrRef",
    "ClrSysRef",
    "InstgAgt",
    "InstdAgt",
    "OrgnlTxRef",
    "SplmtryData",
];

/// Writes the `Document` of a status report.
pub(crate) fn write(
    w: &mut XmlWriter,
    header: &Header,
    report: &PaymentStatusReport,
) -> Result<(), XmlError> {
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("FIToFIPmtStsRpt");
    w.open("GrpHdr");
    w.leaf("MsgId", header.message_id.as_str());
    w.leaf(
        "CreDtTm",
        &format_time(header.creation_time_unix_ms, "/Envelope/Document/FIToFIPmtStsRpt/GrpHdr/CreDtTm")?,
    );
    write_agent(w, "InstgAgt", header.sender);
    write_agent(w, "InstdAgt", header.receiver);
    w.close();
    w.open("TxInfAndSts");
    write_original_group(w, &report.original_message_id, ORIGINAL_DEFINITION);
    w.leaf("OrgnlUETR", &report.uetr.to_string());
    w.leaf("TxSts", report.status.code());
    write_reason(w, "StsRsnInf", report.reason, &report.additional_information);
    w.close();
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id: None });
    w.close();
    w.close();
    Ok(())
}

/// Reads the `Document` of a status report.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, PaymentStatusReport), XmlError> {
    let message = document.required("FIToFIPmtStsRpt")?.ordered(MESSAGE_ORDER)?;
    let group = message.required("GrpHdr")?.ordered(GROUP_ORDER)?;
    let transaction = message.required("TxInfAndSts")?.ordered(TRANSACTION_ORDER)?;
    let status = transaction.required("TxSts")?;
    let (reason, additional_information) = read_reason(transaction.child("StsRsnInf"))?;
    let report = PaymentStatusReport {
        original_message_id: read_original_group(transaction, ORIGINAL_DEFINITION)?,
        uetr: read_original_uetr(transaction)?,
        status: PaymentStatus::parse(status.token()).map_err(at(status))?,
        reason,
        additional_information,
    };
    report
        .validate()
        .map_err(|e| XmlError::invalid(format!("{}/StsRsnInf/Rsn/Cd", transaction.path()), e.rule))?;
    let supplementary = read_supplementary_without_quote(message, "a status report")?;
    let group_header = GroupHeader::read(
        group.required("MsgId")?,
        group.required("CreDtTm")?,
        group.child("InstgAgt").or_else(|| transaction.child("InstgAgt")),
        group.child("InstdAgt").or_else(|| transaction.child("InstdAgt")),
        supplementary.sequence_number,
    )?;
    Ok((group_header, report))
}
