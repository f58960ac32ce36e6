//! pacs.004.001.09, payment return: one `TxInf` per message.
//!
//! | model | element under `PmtRtr` |
//! |---|---|
//! | header message id, creation time | `GrpHdr/MsgId`, `GrpHdr/CreDtTm` |
//! | (one transaction, settled through the hub) | `GrpHdr/NbOfTxs` = 1, `GrpHdr/SttlmInf/SttlmMtd` = `CLRG` |
//! | return id | `TxInf/RtrId` |
//! | original message id | `TxInf/OrgnlGrpInf/OrgnlMsgId` (`OrgnlMsgNmId` = pacs.008.001.08) |
//! | UETR | `TxInf/OrgnlUETR` |
//! | returned amount | `TxInf/RtrdIntrBkSttlmAmt` |
//! | conversion undone: instructed amount, rate | `TxInf/RtrdInstdAmt`, `TxInf/XchgRate` |
//! | header sender, receiver | `TxInf/InstgAgt`, `TxInf/InstdAgt` |
//! | reason, additional information | `TxInf/RtrRsnInf/Rsn/Cd`, `RtrRsnInf/AddtlInf` |
//! | sequence number | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |

use super::common::{
    Supplementary, format_rate, format_time, read_amount, read_original_group, read_original_uetr,
    read_reason, read_supplementary_without_quote, require_one_transaction, write_agent, write_amount,
    write_original_group, write_reason, write_supplementary,
};
use super::pacs008::read_conversion;
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::{Header, PaymentReturn};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "pacs.004.001.09";
/// The definition of the messages a return gives back.
const ORIGINAL_DEFINITION: &str = "pacs.008.001.08";
/// The settlement method Corridor writes: the hub is the clearing system.
const SETTLEMENT_METHOD: &str = "CLRG";

const MESSAGE_ORDER: &[&str] = &["GrpHdr", "OrgnlGrpInf", "TxInf", "SplmtryData"];
const GROUP_ORDER: &[&str] = &[
    "MsgId",
    "CreDtTm",
    "Authstn",
    "BtchBookg",
    "NbOfTxs",
    "CtrlSum",
    "GrpRtr",
    "TtlRtrdIntrBkSttlmAmt",
    "IntrBkSttlmDt",
    "SttlmInf",
    "InstgAgt",
    "InstdAgt",
];
const TRANSACTION_ORDER: &[&str] = &[
    "RtrId",
    "OrgnlGrpInf",
    "OrgnlInstrId",
    "OrgnlEndToEndId",
    "OrgnlTxId",
    "OrgnlUETR",
    "OrgnlClrSysRef",
    "OrgnlIntrBkSttlmAmt",
    "OrgnlIntrBkSttlmDt",
    "RtrdIntrBkSttlmAmt",
    "IntrBkSttlmDt",
    "SttlmPrty",
    "SttlmTmIndctn",
    "RtrdInstdAmt",
    "XchgRate",
    "CompstnAmt",
    "ChrgBr",
    "ChrgsInf",
    "ClrSysRef",
    "InstgAgt",
    "InstdAgt",
    "RtrChain",
    "RtrRsnInf",
    "OrgnlTxRef",
    "SplmtryData",
];

/// Writes the `Document` of a return.
pub(crate) fn write(
    w: &mut XmlWriter,
    header: &Header,
    payment_return: &PaymentReturn,
) -> Result<(), XmlError> {
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("PmtRtr");
    w.open("GrpHdr");
    w.leaf("MsgId", header.message_id.as_str());
    w.leaf(
        "CreDtTm",
        &format_time(header.creation_time_unix_ms, "/Envelope/Document/PmtRtr/GrpHdr/CreDtTm")?,
    );
    w.leaf("NbOfTxs", "1");
    w.open("SttlmInf");
    w.leaf("SttlmMtd", SETTLEMENT_METHOD);
    w.close();
    w.close();
    w.open("TxInf");
    w.leaf("RtrId", &payment_return.return_id);
    write_original_group(w, &payment_return.original_message_id, ORIGINAL_DEFINITION);
    w.leaf("OrgnlUETR", &payment_return.uetr.to_string());
    let returned = payment_return.returned_amount;
    write_amount(w, "RtrdIntrBkSttlmAmt", returned.minor_units(), returned.currency());
    if let Some(conversion) = &payment_return.conversion {
        write_amount(
            w,
            "RtrdInstdAmt",
            conversion.instructed.minor_units(),
            conversion.instructed.currency(),
        );
        w.leaf("XchgRate", &format_rate(conversion.rate, "/Envelope/Document/PmtRtr/TxInf/XchgRate")?);
    }
    write_agent(w, "InstgAgt", header.sender);
    write_agent(w, "InstdAgt", header.receiver);
    write_reason(w, "RtrRsnInf", Some(payment_return.reason), &payment_return.additional_information);
    w.close();
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id: None });
    w.close();
    w.close();
    Ok(())
}

/// Reads the `Document` of a return.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, PaymentReturn), XmlError> {
    let message = document.required("PmtRtr")?.ordered(MESSAGE_ORDER)?;
    let group = message.required("GrpHdr")?.ordered(GROUP_ORDER)?;
    require_one_transaction(group)?;
    let settlement = group.required("SttlmInf")?;
    if let Some(method) = settlement.peek("SttlmMtd")
        && method.peek_text() == SETTLEMENT_METHOD
    {
        method.mark();
    }
    let transaction = message.required("TxInf")?.ordered(TRANSACTION_ORDER)?;
    let supplementary = read_supplementary_without_quote(message, "a return")?;
    let returned_amount = read_amount(transaction.required("RtrdIntrBkSttlmAmt")?)?;
    let (reason, additional_information) = read_reason(transaction.child("RtrRsnInf"))?;
    let reason_path = format!("{}/RtrRsnInf/Rsn/Cd", transaction.path());
    let payment_return = PaymentReturn {
        return_id: super::common::read_id(transaction.required("RtrId")?)?,
        original_message_id: read_original_group(transaction, ORIGINAL_DEFINITION)?,
        uetr: read_original_uetr(transaction)?,
        returned_amount,
        conversion: read_conversion(transaction, "RtrdInstdAmt", &returned_amount, None)?,
        reason: reason.ok_or_else(|| XmlError::invalid(reason_path, "is required: a return says why"))?,
        additional_information,
    };
    let group_header = GroupHeader::read(
        group.required("MsgId")?,
        group.required("CreDtTm")?,
        transaction.child("InstgAgt").or_else(|| group.child("InstgAgt")),
        transaction.child("InstdAgt").or_else(|| group.child("InstdAgt")),
        supplementary.sequence_number,
    )?;
    Ok((group_header, payment_return))
}
