//! camt.053-style statements of a bank's accounts, from its ledger.
//!
//! An entry is a credit (CRDT) when it raises the account's balance on its normal side:
//! money in for the settlement account (an asset), a deposit for a customer's account.
//! So a bank's settlement statement reads like the hub's statement of its position.
//!
//! A running bank holds only its recent postings ([`crate::ledger::Ledger::forget_postings`]):
//! its statements take the older ones from the store and the opening balance from the
//! balance now ([`Statement::from_balance_now`]). Tools reading a whole store use
//! [`account_statement`].

use std::collections::HashMap;

use crate::ledger::{Account, AccountId, Ledger, Posting};
use crate::model::{EntryDirection, MessageId, Statement, StatementEntry, Uetr};

/// A posting with its number in the ledger (0 for the first) and when it was booked.
pub type NumberedPosting = (usize, Posting, i64);

/// Whether `posting` has a leg on `account`.
pub fn touches(posting: &Posting, account: &AccountId) -> bool {
    posting.legs.iter().any(|leg| &leg.account == account)
}

/// The entries `postings` (in order) make on `holder`'s account; `message_id` names the
/// pacs.008 of a payment.
pub fn entries<E>(
    holder: &Account,
    postings: &[NumberedPosting],
    message_id: &mut impl FnMut(Uetr) -> Result<Option<MessageId>, E>,
) -> Result<Vec<StatementEntry>, E> {
    let normal_side = holder.kind.normal_side();
    let mut entries = Vec::new();
    for (number, posting, booked_unix_ms) in postings {
        // Posting ids of payments start with the payment's UETR (see `ledger_book`).
        let uetr = posting.id.as_str().split(':').next().and_then(|text| Uetr::parse(text).ok());
        for (leg_index, leg) in posting.legs.iter().enumerate().filter(|(_, leg)| leg.account == holder.id) {
            entries.push(StatementEntry {
                entry_reference: format!("P{number}-{leg_index}"),
                uetr,
                message_id: match uetr {
                    Some(uetr) => message_id(uetr)?,
                    None => None,
                },
                amount: leg.amount,
                direction: if leg.side == normal_side { EntryDirection::Crdt } else { EntryDirection::Dbit },
                booking_time_unix_ms: *booked_unix_ms,
            });
        }
    }
    Ok(entries)
}

/// The statement of `account` over `[from, to)` from a ledger holding every posting (a
/// whole store read by a tool). `posting_times` holds when each of the ledger's postings
/// was booked; `message_ids` names the pacs.008 of each payment.
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
    assert_eq!(ledger.postings_forgotten(), 0, "a statement from the ledger alone needs every posting");
    let postings: Vec<NumberedPosting> = ledger
        .postings()
        .iter()
        .zip(posting_times)
        .enumerate()
        .filter(|(_, (posting, _))| touches(posting, account))
        .map(|(number, (posting, booked))| (number, posting.clone(), *booked))
        .collect();
    let mut message_id = |uetr: Uetr| Ok::<_, std::convert::Infallible>(message_ids.get(&uetr).cloned());
    let Ok(entries) = entries(holder, &postings, &mut message_id);
    Some(Statement::over_period(
        account.as_str(),
        holder.currency,
        from_time_unix_ms,
        to_time_unix_ms,
        entries,
    ))
}
