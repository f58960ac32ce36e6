//! pacs.008.001.08, FI to FI customer credit transfer: one `CdtTrfTxInf` per message.
//!
//! | model | element under `FIToFICstmrCdtTrf` |
//! |---|---|
//! | header message id, creation time | `GrpHdr/MsgId`, `GrpHdr/CreDtTm` (equal to the AppHdr's) |
//! | (one transaction, settled through the hub) | `GrpHdr/NbOfTxs` = 1, `GrpHdr/SttlmInf/SttlmMtd` = `CLRG` |
//! | instruction id, end-to-end id, UETR | `CdtTrfTxInf/PmtId/InstrId`, `EndToEndId`, `UETR` |
//! | amount (interbank settlement) | `CdtTrfTxInf/IntrBkSttlmAmt` with `@Ccy` |
//! | settlement date | `CdtTrfTxInf/IntrBkSttlmDt` |
//! | conversion: instructed amount, rate | `CdtTrfTxInf/InstdAmt`, `CdtTrfTxInf/XchgRate` |
//! | charge bearer | `CdtTrfTxInf/ChrgBr` (`DEBT`, `CRED`, `SHAR`, `SLEV`) |
//! | header sender, receiver | `CdtTrfTxInf/InstgAgt`, `InstdAgt` (BICFI) |
//! | debtor, its account, its agent | `Dbtr/Nm`, `DbtrAcct/Id/(IBAN or Othr/Id)`, `DbtrAgt` |
//! | creditor, its account, its agent | `Cdtr/Nm`, `CdtrAcct/Id/...`, `CdtrAgt` |
//! | remittance information | `CdtTrfTxInf/RmtInf/Ustrd` |
//! | sequence number, quote id | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |
//!
//! An `InstdAmt` in the settlement currency converts nothing: when it differs from the
//! settlement amount (charges taken on the way, itemised in `ChrgsInf`), it is reported as
//! not carried, as is an `XchgRate` beside it. The message is the payment from `DbtrAgt`
//! to `CdtrAgt`; intermediary agents and a hop between other banks are not carried
//! ([`route`]).

use super::common::{
    Supplementary, at, format_date, format_rate, format_time, read_agent, read_amount, read_date, read_id,
    read_party, read_supplementary, require_one_transaction, write_account, write_agent, write_amount,
    write_party_name, write_supplementary,
};
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::message::{TEXT_LENGTH_MAX, check_text};
use crate::model::{Amount, ChargeBearer, Conversion, CreditTransfer, Header, Rate, Uetr};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "pacs.008.001.08";
/// The sequence of `FIToFICstmrCdtTrf` (FIToFICustomerCreditTransferV08).
const MESSAGE_ORDER: &[&str] = &["GrpHdr", "CdtTrfTxInf", "SplmtryData"];
/// The sequence of `GrpHdr` (GroupHeader93).
const GROUP_ORDER: &[&str] = &[
    "MsgId",
    "CreDtTm",
    "BtchBookg",
    "NbOfTxs",
    "CtrlSum",
    "TtlIntrBkSttlmAmt",
    "IntrBkSttlmDt",
    "SttlmInf",
    "PmtTpInf",
    "InstgAgt",
    "InstdAgt",
];
/// The sequence of `PmtId` (PaymentIdentification7).
const PAYMENT_ID_ORDER: &[&str] = &["InstrId", "EndToEndId", "TxId", "UETR", "ClrSysRef"];
/// The sequence of `CdtTrfTxInf` (CreditTransferTransaction39).
const TRANSACTION_ORDER: &[&str] = &[
    "PmtId",
    "PmtTpInf",
    "IntrBkSttlmAmt",
    "IntrBkSttlmDt",
    "SttlmPrty",
    "SttlmTmIndctn",
    "SttlmTmReq",
    "AccptncDtTm",
    "PoolgAdjstmntDt",
    "InstdAmt",
    "XchgRate",
    "ChrgBr",
    "ChrgsInf",
    "PrvsInstgAgt1",
    "PrvsInstgAgt1Acct",
    "PrvsInstgAgt2",
    "PrvsInstgAgt2Acct",
    "PrvsInstgAgt3",
    "PrvsInstgAgt3Acct",
    "InstgAgt",
    "InstdAgt",
    "IntrmyAgt1",
    "IntrmyAgt1Acct",
    "IntrmyAgt2",
    "IntrmyAgt2Acct",
    "IntrmyAgt3",
    "IntrmyAgt3Acct",
    "UltmtDbtr",
    "InitgPty",
    "Dbtr",
    "DbtrAcct",
    "DbtrAgt",
    "DbtrAgtAcct",
    "CdtrAgt",
    "CdtrAgtAcct",
    "Cdtr",
    "CdtrAcct",
    "UltmtCdtr",
    "InstrForCdtrAgt",
    "InstrForNxtAgt",
    "Purp",
    "RgltryRptg",
    "Tax",
    "RltdRmtInf",
    "RmtInf",
    "SplmtryData",
];
/// The settlement method Corridor writes: the hub is the clearing system.
const SETTLEMENT_METHOD: &str = "CLRG";

/// Writes the `Document` of a credit transfer.
pub(crate) fn write(w: &mut XmlWriter, header: &Header, transfer: &CreditTransfer) -> Result<(), XmlError> {
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("FIToFICstmrCdtTrf");
    w.open("GrpHdr");
    w.leaf("MsgId", header.message_id.as_str());
    w.leaf(
        "CreDtTm",
        &format_time(header.creation_time_unix_ms, "/Envelope/Document/FIToFICstmrCdtTrf/GrpHdr/CreDtTm")?,
    );
    w.leaf("NbOfTxs", "1");
    w.open("SttlmInf");
    w.leaf("SttlmMtd", SETTLEMENT_METHOD);
    w.close();
    w.close();
    w.open("CdtTrfTxInf");
    w.open("PmtId");
    w.leaf("InstrId", &transfer.instruction_id);
    w.leaf("EndToEndId", &transfer.end_to_end_id);
    w.leaf("UETR", &transfer.uetr.to_string());
    w.close();
    write_amount(w, "IntrBkSttlmAmt", transfer.amount.minor_units(), transfer.amount.currency());
    w.leaf("IntrBkSttlmDt", &format_date(transfer.settlement_date));
    if let Some(conversion) = &transfer.conversion {
        write_amount(w, "InstdAmt", conversion.instructed.minor_units(), conversion.instructed.currency());
        w.leaf(
            "XchgRate",
            &format_rate(conversion.rate, "/Envelope/Document/FIToFICstmrCdtTrf/CdtTrfTxInf/XchgRate")?,
        );
    }
    w.leaf("ChrgBr", transfer.charge_bearer.code());
    write_agent(w, "InstgAgt", header.sender);
    write_agent(w, "InstdAgt", header.receiver);
    write_party_name(w, "Dbtr", &transfer.debtor);
    write_account(w, "DbtrAcct", &transfer.debtor.account);
    write_agent(w, "DbtrAgt", transfer.debtor_agent);
    write_agent(w, "CdtrAgt", transfer.creditor_agent);
    write_party_name(w, "Cdtr", &transfer.creditor);
    write_account(w, "CdtrAcct", &transfer.creditor.account);
    if !transfer.remittance_information.is_empty() {
        w.open("RmtInf");
        w.leaf("Ustrd", &transfer.remittance_information);
        w.close();
    }
    w.close();
    let quote_id = transfer.conversion.as_ref().and_then(|c| c.quote_id.clone());
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id });
    w.close();
    w.close();
    Ok(())
}

/// Reads the `Document` of a credit transfer: the group header's facts for the message
/// header, and the transfer.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, CreditTransfer), XmlError> {
    let message = document.required("FIToFICstmrCdtTrf")?.ordered(MESSAGE_ORDER)?;
    let group = message.required("GrpHdr")?.ordered(GROUP_ORDER)?;
    require_one_transaction(group)?;
    // Another settlement method stays unread, and so is reported as not carried.
    let settlement = group.required("SttlmInf")?;
    let method = settlement
        .peek("SttlmMtd")
        .ok_or_else(|| XmlError::invalid(format!("{}/SttlmMtd", settlement.path()), "is required"))?;
    if method.peek_text() == SETTLEMENT_METHOD {
        method.mark();
    }
    let transaction = message.required("CdtTrfTxInf")?.ordered(TRANSACTION_ORDER)?;
    let supplementary = read_supplementary(message)?;
    let transfer = read_transaction(transaction, supplementary.quote_id.clone())?;
    let group_header = GroupHeader::read(
        group.required("MsgId")?,
        group.required("CreDtTm")?,
        transaction.child("InstgAgt").or_else(|| group.child("InstgAgt")),
        transaction.child("InstdAgt").or_else(|| group.child("InstdAgt")),
        supplementary.sequence_number,
    )?;
    Ok((group_header, transfer))
}

fn read_transaction(tx: &Element, quote_id: Option<String>) -> Result<CreditTransfer, XmlError> {
    let payment_id = tx.required("PmtId")?.ordered(PAYMENT_ID_ORDER)?;
    let uetr_element = payment_id.required("UETR")?;
    let uetr = Uetr::parse(uetr_element.token()).map_err(at(uetr_element))?;
    let amount = read_amount(tx.required("IntrBkSttlmAmt")?)?;
    let conversion = read_conversion(tx, "InstdAmt", &amount, quote_id)?;
    let bearer = tx.required("ChrgBr")?;
    let charge_bearer = ChargeBearer::parse(bearer.token()).map_err(at(bearer))?;
    let path = |name: &str| format!("{}/{name}", tx.path());
    let remittance_information = match tx.child("RmtInf").and_then(|r| r.child("Ustrd")) {
        Some(text) => check_text(text.text(), "remittance", TEXT_LENGTH_MAX, false).map_err(at(text))?,
        None => String::new(),
    };
    let transfer = CreditTransfer {
        instruction_id: read_id(payment_id.required("InstrId")?)?,
        end_to_end_id: read_id(payment_id.required("EndToEndId")?)?,
        uetr,
        amount,
        conversion,
        settlement_date: read_date(tx.required("IntrBkSttlmDt")?)?,
        charge_bearer,
        debtor: read_party(tx.required("Dbtr")?, tx.child("DbtrAcct"), &path("DbtrAcct"))?,
        debtor_agent: read_agent(tx.required("DbtrAgt")?)?,
        creditor: read_party(tx.required("Cdtr")?, tx.child("CdtrAcct"), &path("CdtrAcct"))?,
        creditor_agent: read_agent(tx.required("CdtrAgt")?)?,
        remittance_information,
    };
    transfer.check_conversion().map_err(|e| XmlError::invalid(path("IntrBkSttlmAmt"), e.rule))?;
    Ok(transfer)
}

/// The conversion of a transaction: an instructed amount (`instructed_name`) in another
/// currency with `XchgRate`, or one in the settlement currency (nothing converted: a
/// rate beside it, or an amount differing by charges, is left unread and so reported),
/// or neither.
pub(crate) fn read_conversion(
    tx: &Element,
    instructed_name: &str,
    amount: &Amount,
    quote_id: Option<String>,
) -> Result<Option<Conversion>, XmlError> {
    let (instructed, rate) = (tx.child(instructed_name), tx.peek("XchgRate"));
    match (instructed, rate) {
        (None, None) => Ok(None),
        (None, Some(rate)) => Err(rate.invalid(format!(
            "an exchange rate needs the instructed amount ({instructed_name}) it converts"
        ))),
        (Some(instructed_element), rate) => {
            let instructed = read_amount(instructed_element)?;
            if instructed.currency() == amount.currency() {
                // Nothing is converted. A rate in one currency, or an instructed amount
                // that differs by charges taken on the way, is not carried: reported.
                if let Some(rate) = rate {
                    rate.forget();
                }
                if instructed != *amount {
                    instructed_element.forget();
                }
                return Ok(None);
            }
            let rate = rate.ok_or_else(|| {
                XmlError::invalid(
                    format!("{}/XchgRate", tx.path()),
                    "is required with an instructed amount in another currency",
                )
            })?;
            let rate_value = Rate::parse(rate.mark().token()).map_err(at(rate))?;
            Ok(Some(Conversion { instructed, rate: rate_value, quote_id }))
        }
    }
}

/// Corridor pays from the debtor agent straight to the creditor agent: its model makes
/// them the message's sender and receiver. A message that is one hop of a longer chain
/// (its instructing or instructed agent another bank, often with `IntrmyAgt1..3` between)
/// is read as the payment between the two agents, and the hop's sender or receiver is
/// not carried: the AppHdr's `Fr` or `To` and the `InstgAgt` or `InstdAgt` that name it
/// are reported, so [`super::read_strict`] refuses such a message.
pub(crate) fn route(
    document: &Element,
    app_hdr: Option<&Element>,
    header: &mut Header,
    transfer: &CreditTransfer,
) -> Result<(), XmlError> {
    let message = document.peek("FIToFICstmrCdtTrf");
    let hop = |app_name: &str, agent_name: &str| {
        let transaction = message.and_then(|m| m.peek("CdtTrfTxInf"));
        let group = message.and_then(|m| m.peek("GrpHdr"));
        let named = [
            app_hdr.and_then(|a| a.peek(app_name)),
            transaction.and_then(|t| t.peek(agent_name)),
            group.and_then(|g| g.peek(agent_name)),
        ];
        for element in named.into_iter().flatten() {
            element.forget();
        }
    };
    if transfer.debtor_agent != header.sender {
        hop("Fr", "InstgAgt");
        header.sender = transfer.debtor_agent;
    }
    if transfer.creditor_agent != header.receiver {
        hop("To", "InstdAgt");
        header.receiver = transfer.creditor_agent;
    }
    if header.sender == header.receiver {
        return Err(XmlError::invalid(
            format!("{}/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/CdtrAgt/FinInstnId/BICFI", document.path()),
            format!("is the debtor agent {}: Corridor pays between two banks", header.sender),
        ));
    }
    Ok(())
}
