//! camt.053-style statements of a bank's accounts, from its ledger.
//!
//! An entry is a credit (CRDT) when it raises the account's balance on its normal side:
//! money in for the settlement account (an asset), a deposit for a customer's account.
//! So a bank's settlement statement reads like the hub's statement of its position.

use std::collections::HashMap;

use crate::ledger::{AccountId, Ledger};
use crate::model::{EntryDirection, MessageId, Statement, StatementEntry, Uetr};

/// The statement of `account` over `[from, to)`. `posting_times` holds when each of
/// the ledger's postings was booked; `message_ids` names the pacs.008 of each payment.
pub fn account_statement(
    ledger: &Ledger,
    posting_times: &[i64],
    message_ids: &HashMap<Uetr, MessageId>,
    account: &AccountId,
    from_time_unix_ms: i64,
    to_time_unix_ms: i64,
) -> Option<Statement> {
    let holder = ledger.account(account)?;
    assert_eq!(posting_times.len(), ledger.postings().len(), "a booking time per posting");
    let normal_side = holder.kind.normal_side();
    let mut entries = Vec::new();
    for (index, (posting, booked_unix_ms)) in ledger.postings().iter().zip(posting_times).enumerate() {
        // Posting ids of payments start with the payment's UETR (see `ledger_book`).
        let uetr = posting.id.as_str().split(':').next().and_then(|text| Uetr::parse(text).ok());
        for (leg_index, leg) in posting.legs.iter().enumerate().filter(|(_, leg)| &leg.account == account) {
            entries.push(StatementEntry {
                entry_reference: format!("P{index}-{leg_index}"),
                uetr,
                message_id: uetr.and_then(|u| message_ids.get(&u).cloned()),
                amount: leg.amount,
                direction: if leg.side == normal_side { EntryDirection::Crdt } else { EntryDirection::Dbit },
                booking_time_unix_ms: *booked_unix_ms,
            });
        }
    }
    Some(Statement::over_period(
        account.as_str(),
        holder.currency,
        from_time_unix_ms,
        to_time_unix_ms,
        entries,
    ))
}
