//! camt.053.001.08, bank to customer statement: one `Stmt` per message.
//!
//! | model | element under `BkToCstmrStmt` |
//! |---|---|
//! | header message id, creation time | `GrpHdr/MsgId`, `GrpHdr/CreDtTm` (sender and receiver: the AppHdr only) |
//! | statement id | `Stmt[1]/Id` |
//! | period `[from, to)` | `Stmt[1]/FrToDt/FrDtTm`, `Stmt[1]/FrToDt/ToDtTm` (the end is exclusive) |
//! | account, currency | `Stmt[1]/Acct/Id/(IBAN or Othr/Id)`, `Stmt[1]/Acct/Ccy` |
//! | opening balance | `Stmt[1]/Bal` with `Tp/CdOrPrtry/Cd` = `OPBD`, `Amt`, `CdtDbtInd`, `Dt/DtTm` = from |
//! | closing balance | `Stmt[1]/Bal` with `Tp/CdOrPrtry/Cd` = `CLBD`, `Amt`, `CdtDbtInd`, `Dt/DtTm` = to |
//! | entry reference, amount, direction | `Ntry/NtryRef`, `Ntry/Amt`, `Ntry/CdtDbtInd` (`Sts/Cd` = `BOOK`, `BkTxCd` empty) |
//! | booking time | `Ntry/BookgDt/DtTm` |
//! | message id, UETR of an entry | `Ntry/NtryDtls/TxDtls/Refs/MsgId`, `Refs/UETR` |
//! | sequence number | `SplmtryData/Envlp/Crdr` (Corridor's namespace) |

use super::common::{
    Supplementary, at, format_time, parse_time, read_account, read_amount, read_currency, read_id,
    read_supplementary_without_quote, read_time, write_account_id, write_amount, write_supplementary,
};
use super::tree::Element;
use super::writer::XmlWriter;
use super::{GroupHeader, XmlError};
use crate::model::{
    Amount, Balance, Currency, EntryDirection, Header, MessageId, Statement, StatementEntry, Uetr,
};

/// The message definition this module reads and writes.
pub const DEFINITION: &str = "camt.053.001.08";
/// The status of every entry Corridor writes: booked.
const BOOKED: &str = "BOOK";

const MESSAGE_ORDER: &[&str] = &["GrpHdr", "Stmt", "SplmtryData"];
const GROUP_ORDER: &[&str] = &["MsgId", "CreDtTm", "MsgRcpt", "MsgPgntn", "OrgnlBizQry", "AddtlInf"];
const STATEMENT_ORDER: &[&str] = &[
    "Id",
    "StmtPgntn",
    "ElctrncSeqNb",
    "RptgSeq",
    "LglSeqNb",
    "CreDtTm",
    "FrToDt",
    "CpyDplctInd",
    "RptgSrc",
    "Acct",
    "RltdAcct",
    "Intrst",
    "Bal",
    "TxsSummry",
    "Ntry",
    "AddtlStmtInf",
];
const ACCOUNT_ORDER: &[&str] = &["Id", "Tp", "Ccy", "Nm", "Prxy", "Ownr", "Svcr"];
const BALANCE_ORDER: &[&str] = &["Tp", "CdtLine", "Amt", "CdtDbtInd", "Dt", "Avlbty"];
const ENTRY_ORDER: &[&str] = &[
    "NtryRef",
    "Amt",
    "CdtDbtInd",
    "RvslInd",
    "Sts",
    "BookgDt",
    "ValDt",
    "AcctSvcrRef",
    "Avlbty",
    "BkTxCd",
    "ComssnWvrInd",
    "AddtlInfInd",
    "AmtDtls",
    "Chrgs",
    "TechInptChanl",
    "Intrst",
    "CardTx",
    "NtryDtls",
    "AddtlNtryInf",
];
const REFERENCES_ORDER: &[&str] =
    &["MsgId", "AcctSvcrRef", "PmtInfId", "InstrId", "EndToEndId", "UETR", "TxId"];

/// Writes the `Document` of a statement.
pub(crate) fn write(w: &mut XmlWriter, header: &Header, statement: &Statement) -> Result<(), XmlError> {
    let base = "/Envelope/Document/BkToCstmrStmt";
    w.open_with("Document", &[("xmlns", &super::namespace_of(DEFINITION))]);
    w.open("BkToCstmrStmt");
    w.open("GrpHdr");
    w.leaf("MsgId", header.message_id.as_str());
    w.leaf("CreDtTm", &format_time(header.creation_time_unix_ms, &format!("{base}/GrpHdr/CreDtTm"))?);
    w.close();
    w.open("Stmt");
    w.leaf("Id", &statement.statement_id);
    w.open("FrToDt");
    w.leaf("FrDtTm", &format_time(statement.from_time_unix_ms, &format!("{base}/Stmt/FrToDt/FrDtTm"))?);
    w.leaf("ToDtTm", &format_time(statement.to_time_unix_ms, &format!("{base}/Stmt/FrToDt/ToDtTm"))?);
    w.close();
    write_account_with_currency(w, &statement.account, statement.opening_balance.currency);
    write_balance(w, "OPBD", statement.opening_balance, statement.from_time_unix_ms, base)?;
    write_balance(w, "CLBD", statement.closing_balance, statement.to_time_unix_ms, base)?;
    for entry in &statement.entries {
        write_entry(w, entry, base)?;
    }
    w.close();
    write_supplementary(w, &Supplementary { sequence_number: header.sequence_number, quote_id: None });
    w.close();
    w.close();
    Ok(())
}

fn write_account_with_currency(w: &mut XmlWriter, account: &str, currency: Currency) {
    w.open("Acct");
    write_account_id(w, account);
    w.leaf("Ccy", currency.code());
    w.close();
}

fn write_balance(
    w: &mut XmlWriter,
    code: &str,
    balance: Balance,
    time_unix_ms: i64,
    base: &str,
) -> Result<(), XmlError> {
    w.open("Bal");
    w.open("Tp");
    w.open("CdOrPrtry");
    w.leaf("Cd", code);
    w.close();
    w.close();
    write_amount(w, "Amt", balance.minor_units.saturating_abs(), balance.currency);
    w.leaf("CdtDbtInd", if balance.minor_units < 0 { "DBIT" } else { "CRDT" });
    w.open("Dt");
    w.leaf("DtTm", &format_time(time_unix_ms, &format!("{base}/Stmt/Bal/Dt/DtTm"))?);
    w.close();
    w.close();
    Ok(())
}

fn write_entry(w: &mut XmlWriter, entry: &StatementEntry, base: &str) -> Result<(), XmlError> {
    w.open("Ntry");
    w.leaf("NtryRef", &entry.entry_reference);
    write_amount(w, "Amt", entry.amount.minor_units(), entry.amount.currency());
    w.leaf("CdtDbtInd", entry.direction.code());
    w.open("Sts");
    w.leaf("Cd", BOOKED);
    w.close();
    w.open("BookgDt");
    w.leaf("DtTm", &format_time(entry.booking_time_unix_ms, &format!("{base}/Stmt/Ntry/BookgDt/DtTm"))?);
    w.close();
    w.empty("BkTxCd");
    if entry.message_id.is_some() || entry.uetr.is_some() {
        w.open("NtryDtls");
        w.open("TxDtls");
        w.open("Refs");
        if let Some(message_id) = &entry.message_id {
            w.leaf("MsgId", message_id.as_str());
        }
        if let Some(uetr) = &entry.uetr {
            w.leaf("UETR", &uetr.to_string());
        }
        w.close();
        w.close();
        w.close();
    }
    w.close();
    Ok(())
}

/// Reads the `Document` of a statement.
pub(crate) fn read(document: &Element) -> Result<(GroupHeader<'_>, Statement), XmlError> {
    let message = document.required("BkToCstmrStmt")?.ordered(MESSAGE_ORDER)?;
    let group = message.required("GrpHdr")?.ordered(GROUP_ORDER)?;
    let supplementary = read_supplementary_without_quote(message, "a statement")?;
    let statement_element = message.required("Stmt")?.ordered(STATEMENT_ORDER)?;
    let statement = read_statement(statement_element)?;
    statement.validate().map_err(|e| statement_element.invalid(e.to_string()))?;
    let group_header = GroupHeader::read(
        group.required("MsgId")?,
        group.required("CreDtTm")?,
        None,
        None,
        supplementary.sequence_number,
    )?;
    Ok((group_header, statement))
}

fn read_statement(statement: &Element) -> Result<Statement, XmlError> {
    let period = statement.required("FrToDt")?;
    let from_time_unix_ms = read_time(period.required("FrDtTm")?)?;
    let to_time_unix_ms = read_time(period.required("ToDtTm")?)?;
    let account_element = statement.required("Acct")?.ordered(ACCOUNT_ORDER)?;
    let account = read_account(account_element)?;
    let currency =
        account_element.child("Ccy").map(|c| Currency::parse(c.token()).map_err(at(c))).transpose()?;
    let opening_balance = read_balance(statement, "OPBD", from_time_unix_ms)?;
    let closing_balance = read_balance(statement, "CLBD", to_time_unix_ms)?;
    if let Some(currency) = currency
        && currency != opening_balance.currency
    {
        return Err(XmlError::invalid(
            format!("{}/Ccy", account_element.path()),
            format!("must be the balances' currency {}", opening_balance.currency),
        ));
    }
    let entries = statement
        .children()
        .iter()
        .filter(|c| c.name() == "Ntry" && c.namespace() == statement.namespace())
        .map(read_entry)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Statement {
        statement_id: read_id(statement.required("Id")?)?,
        account,
        from_time_unix_ms,
        to_time_unix_ms,
        opening_balance,
        closing_balance,
        entries,
    })
}

/// The balance of type `code` (`OPBD`, `CLBD`); its date-time is read when it is `time`.
fn read_balance(statement: &Element, code: &str, time_unix_ms: i64) -> Result<Balance, XmlError> {
    let is_code = |balance: &&Element| {
        let code_element = balance.peek("Tp").and_then(|t| t.peek("CdOrPrtry")).and_then(|c| c.peek("Cd"));
        code_element.is_some_and(|c| c.peek_text() == code)
    };
    let candidates =
        statement.children().iter().filter(|c| c.name() == "Bal" && c.namespace() == statement.namespace());
    let balance = candidates.clone().find(is_code).ok_or_else(|| {
        XmlError::invalid(
            format!("{}/Bal", statement.path()),
            format!("a balance of type {code} is required"),
        )
    })?;
    balance.mark().ordered(BALANCE_ORDER)?;
    balance.required_at(&["Tp", "CdOrPrtry", "Cd"])?;
    let amount_element = balance.required("Amt")?;
    let currency = read_currency(amount_element)?;
    let magnitude = Amount::parse_zero_or_positive(amount_element.token(), currency)
        .map_err(at(amount_element))?
        .map_or(0, |a| a.minor_units());
    let sign = balance.required("CdtDbtInd")?;
    let minor_units = match EntryDirection::parse(sign.token()).map_err(at(sign))? {
        EntryDirection::Crdt => magnitude,
        EntryDirection::Dbit => -magnitude,
    };
    // A date-time other than the period's bound stays unread, and so is reported.
    let date = balance.required("Dt")?;
    if let Some(time) = date.peek("DtTm")
        && parse_time(time.peek_text()) == Some(time_unix_ms)
    {
        time.mark();
    }
    Ok(Balance { minor_units, currency })
}

fn read_entry(entry: &Element) -> Result<StatementEntry, XmlError> {
    entry.mark().ordered(ENTRY_ORDER)?;
    let direction = entry.required("CdtDbtInd")?;
    let status = entry.required("Sts")?;
    if let Some(code) = status.peek("Cd")
        && code.peek_text() == BOOKED
    {
        code.mark();
    }
    entry.required("BkTxCd")?;
    let references = entry.child("NtryDtls").and_then(|d| d.child("TxDtls")).and_then(|t| t.child("Refs"));
    let references = references.map(|r| r.ordered(REFERENCES_ORDER)).transpose()?;
    let message_id = references
        .and_then(|r| r.child("MsgId"))
        .map(|m| MessageId::parse(m.token()).map_err(at(m)))
        .transpose()?;
    let uetr = references
        .and_then(|r| r.child("UETR"))
        .map(|u| Uetr::parse(u.token()).map_err(at(u)))
        .transpose()?;
    Ok(StatementEntry {
        entry_reference: read_id(entry.required("NtryRef")?)?,
        uetr,
        message_id,
        amount: read_amount(entry.required("Amt")?)?,
        direction: EntryDirection::parse(direction.token()).map_err(at(direction))?,
        booking_time_unix_ms: read_time(entry.required_at(&["BookgDt", "DtTm"])?)?,
    })
}
