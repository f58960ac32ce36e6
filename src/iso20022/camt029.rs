//! camt.029.001.09, resolution of investigation: the answer to a camt.056.
//!
//! | model | element under `RsltnOfInvstgtn` |
//! |---|---|
//! | header message id, sender, receiver, creation time | `Assgnmt/Id`, `Assgnr/Agt`, `Assgne/Agt`, `CreDtTm` |
//! | case id | `CxlDtls/TxInfAndSts/RslvdCase/Id` (its creator, `Cretr/Agt`, is the receiver, who asked) |
//! | status | `Sts/Conf` (`CNCL`, `RJCR`, `PDCR`) and `CxlDtls/TxInfAndSts/TxCxlSts` (`ACCR`, `RJCR`, `PDCR`; optional on reading, and then agreeing) |
//! | original message id (the camt.056's) | `CxlDtls/TxInfAndSts/OrgnlGrpInf/OrgnlMsgId` (`OrgnlMsgNmId` = camt.056.001.08) |
//! | UETR | `CxlDtls/TxInfAndSts/OrgnlUETR` |
//! | reason, additional information | `CxlDtls/TxInfAndSts/CxlStsRsnInf/Rsn/Cd`, `CxlStsRsnInf/AddtlInf` |
//! | sequence number | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |

use super::camt056::{read_assignment, read_case, write_assignment, write_case};
use super::common::{
    Supplementary, at, read_original_group, read_original_uetr, read_reason,
    read_supplementary_without_quote, write_original_group, write_reason, write_supplementary,
};
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::{Header, InvestigationStatus, ResolutionOfInvestigation};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "camt.029.001.09";
/// The definition of the messages a resolution answers.
const ORIGINAL_DEFINITION: &str = "camt.056.001.08";

const MESSAGE_ORDER: &[&str] = &[
    "Assgnmt",
    "RslvdCase",
    "Sts",
    "CxlDtls",
    "ModDtls",
    "ClmNonRctDtls",
    "StmtDtls",
    "CrrctnTx",
    "RsltnRltdInf",
    "SplmtryData",
];
const TRANSACTION_ORDER: &[&str] = &[
    "CxlStsId",
    "RslvdCase",
    "OrgnlGrpInf",
    "OrgnlInstrId",
    "OrgnlEndToEndId",
    "OrgnlTxId",
    "OrgnlClrSysRef",
    "OrgnlUETR",
    "TxCxlSts",
    "CxlStsRsnInf",
    "RsltnRltdInf",
    "OrgnlIntrBkSttlmAmt",
    "OrgnlIntrBkSttlmDt",
    "Assgnr",
    "Assgne",
    "OrgnlTxRef",
];

/// The transaction's cancellation status (CancellationIndividualStatus1Code) for a status.
fn transaction_status(status: InvestigationStatus) -> &'static str {
    match status {
        InvestigationStatus::Cncl => "ACCR",
        InvestigationStatus::Rjcr => "RJCR",
        InvestigationStatus::Pdcr => "PDCR",
    }
}

/// Writes the `Document` of a resolution.
pub(crate) fn write(
    w: &mut XmlWriter,
    header: &Header,
    resolution: &ResolutionOfInvestigation,
) -> Result<(), XmlError> {
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("RsltnOfInvstgtn");
    write_assignment(w, header, "/Envelope/Document/RsltnOfInvstgtn/Assgnmt/CreDtTm")?;
    w.open("Sts");
    w.leaf("Conf", resolution.status.code());
    w.close();
    w.open("CxlDtls");
    w.open("TxInfAndSts");
    write_case(w, "RslvdCase", &resolution.case_id, header.receiver);
    write_original_group(w, &resolution.original_message_id, ORIGINAL_DEFINITION);
    w.leaf("OrgnlUETR", &resolution.uetr.to_string());
    w.leaf("TxCxlSts", transaction_status(resolution.status));
    write_reason(w, "CxlStsRsnInf", resolution.reason, &resolution.additional_information);
    w.close();
    w.close();
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id: None });
    w.close();
    w.close();
    Ok(())
}

/// Reads the `Document` of a resolution; the resolved case's creator must be the
/// receiver (who sent the camt.056), and both statuses must say the same.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, ResolutionOfInvestigation), XmlError> {
    let message = document.required("RsltnOfInvstgtn")?.ordered(MESSAGE_ORDER)?;
    let supplementary = read_supplementary_without_quote(message, "a resolution")?;
    let group = read_assignment(message, supplementary.sequence_number)?;
    let receiver = group.instructed.map(|(bic, _)| bic).expect("read_assignment requires the assignee");
    let confirmation = message.required("Sts")?.required("Conf")?;
    let status = InvestigationStatus::parse(confirmation.token()).map_err(at(confirmation))?;
    let transaction = message.required("CxlDtls")?.required("TxInfAndSts")?.ordered(TRANSACTION_ORDER)?;
    let case_id = read_case(transaction.required("RslvdCase")?, receiver, "receiver")?;
    // CBPR+ may leave the transaction's status out: `Sts/Conf` says it. Where it is
    // given, both must say the same.
    if let Some(individual) = transaction.child("TxCxlSts")
        && individual.token() != transaction_status(status)
    {
        return Err(individual.invalid(format!(
            "must be {} with the status {status} (got {:?})",
            transaction_status(status),
            individual.token()
        )));
    }
    let (reason, additional_information) = read_reason(transaction.child("CxlStsRsnInf"))?;
    let resolution = ResolutionOfInvestigation {
        case_id,
        original_message_id: read_original_group(transaction, ORIGINAL_DEFINITION)?,
        uetr: read_original_uetr(transaction)?,
        status,
        reason,
        additional_information,
    };
    resolution
        .validate()
        .map_err(|e| XmlError::invalid(format!("{}/CxlStsRsnInf/Rsn/Cd", transaction.path()), e.rule))?;
    Ok((group, resolution))
}
