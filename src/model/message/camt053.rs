//! camt.053: statement of the entries on one account over a period.

use crate::model::{Amount, Balance, EntryDirection, MessageId, ModelError, Uetr};

/// One booked entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementEntry {
    /// Entry reference, unique within the account.
    pub entry_reference: String,
    /// UETR of the payment the entry belongs to.
    pub uetr: Option<Uetr>,
    /// Message that caused the entry.
    pub message_id: Option<MessageId>,
    /// Amount booked.
    pub amount: Amount,
    /// Credit or debit.
    pub direction: EntryDirection,
    /// Booking time, Unix milliseconds.
    pub booking_time_unix_ms: i64,
}

impl StatementEntry {
    /// The amount with its sign: credits positive, debits negative.
    pub fn signed_minor_units(&self) -> i64 {
        match self.direction {
            EntryDirection::Crdt => self.amount.minor_units(),
            EntryDirection::Dbit => -self.amount.minor_units(),
        }
    }
}

/// The entries on one account over `[from, to)`, between two balances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Statement id.
    pub statement_id: String,
    /// The account.
    pub account: String,
    /// Start of the period, Unix milliseconds, inclusive.
    pub from_time_unix_ms: i64,
    /// End of the period, Unix milliseconds, exclusive.
    pub to_time_unix_ms: i64,
    /// Balance before the first entry (credit-positive).
    pub opening_balance: Balance,
    /// Balance after the last entry (credit-positive).
    pub closing_balance: Balance,
    /// The entries, in booking order.
    pub entries: Vec<StatementEntry>,
}

impl Statement {
    /// The statement of `account` in `currency` over `[from, to)` from every entry the
    /// account ever had (`all_entries`, in booking order, credit-positive from zero):
    /// those before the period make the opening balance.
    pub fn over_period(
        account: &str,
        currency: crate::model::Currency,
        from_time_unix_ms: i64,
        to_time_unix_ms: i64,
        all_entries: impl IntoIterator<Item = StatementEntry>,
    ) -> Self {
        let mut opening = 0i64;
        let mut entries = Vec::new();
        for entry in all_entries {
            if entry.booking_time_unix_ms >= to_time_unix_ms {
                continue;
            }
            if entry.booking_time_unix_ms < from_time_unix_ms {
                opening = opening.saturating_add(entry.signed_minor_units());
            } else {
                entries.push(entry);
            }
        }
        Self::between(account, currency, from_time_unix_ms, to_time_unix_ms, opening, entries)
    }

    /// The statement of `account` in `currency` over `[from, to)` from its balance now
    /// (credit-positive) and the entries booked since `from` (`entries_since`, in booking
    /// order): the opening balance is the balance now less those entries. The same
    /// statement as [`Statement::over_period`] gives, without the entries before the period.
    pub fn from_balance_now(
        account: &str,
        currency: crate::model::Currency,
        from_time_unix_ms: i64,
        to_time_unix_ms: i64,
        balance_now_minor_units: i64,
        entries_since: impl IntoIterator<Item = StatementEntry>,
    ) -> Self {
        let mut opening = balance_now_minor_units;
        let mut entries = Vec::new();
        for entry in entries_since.into_iter().filter(|e| e.booking_time_unix_ms >= from_time_unix_ms) {
            opening = opening.saturating_sub(entry.signed_minor_units());
            if entry.booking_time_unix_ms < to_time_unix_ms {
                entries.push(entry);
            }
        }
        Self::between(account, currency, from_time_unix_ms, to_time_unix_ms, opening, entries)
    }

    fn between(
        account: &str,
        currency: crate::model::Currency,
        from_time_unix_ms: i64,
        to_time_unix_ms: i64,
        opening: i64,
        entries: Vec<StatementEntry>,
    ) -> Self {
        let closing = entries.iter().fold(opening, |sum, e| sum.saturating_add(e.signed_minor_units()));
        Self {
            // Max35Text: two 64-bit numbers in hex fit.
            statement_id: format!("{from_time_unix_ms:x}-{to_time_unix_ms:x}"),
            account: account.to_owned(),
            from_time_unix_ms,
            to_time_unix_ms,
            opening_balance: Balance { minor_units: opening, currency },
            closing_balance: Balance { minor_units: closing, currency },
            entries,
        }
    }

    /// Checks the rules across fields: the period is not empty, every amount is in the
    /// statement's currency, and opening balance plus entries gives the closing balance.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.from_time_unix_ms >= self.to_time_unix_ms {
            return Err(ModelError::new("camt053.to_time_unix_ms", "must be after from_time_unix_ms"));
        }
        let currency = self.opening_balance.currency;
        if self.closing_balance.currency != currency {
            return Err(ModelError::new(
                "camt053.closing_balance.currency",
                "must equal the opening balance's",
            ));
        }
        let mut balance = i128::from(self.opening_balance.minor_units);
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.amount.currency() != currency {
                return Err(ModelError::new(
                    format!("camt053.entries[{index}].amount.currency"),
                    format!("must be the statement's currency {currency}"),
                ));
            }
            let amount = i128::from(entry.amount.minor_units());
            balance += match entry.direction {
                EntryDirection::Crdt => amount,
                EntryDirection::Dbit => -amount,
            };
        }
        if balance != i128::from(self.closing_balance.minor_units) {
            return Err(ModelError::new(
                "camt053.closing_balance",
                "must equal the opening balance plus the entries",
            ));
        }
        Ok(())
    }
}
