//! Postings: balanced sets of legs with an idempotency id.

use std::fmt;

use super::{AccountId, Side};
use crate::model::{Amount, ModelError};

/// Id of a posting; applying a posting whose id was applied before is a no-op.
/// 1 to 128 printable ASCII characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostingId(String);

impl PostingId {
    /// Parses and validates a posting id.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        if text.is_empty() || text.len() > 128 || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ModelError::new(
                "posting_id",
                format!("is 1 to 128 printable ASCII characters (got {text:?})"),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PostingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PostingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostingId({})", self.0)
    }
}

/// One leg: an amount debited or credited to one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leg {
    /// The account.
    pub account: AccountId,
    /// Debit or credit.
    pub side: Side,
    /// How much (always positive; the side gives the direction).
    pub amount: Amount,
}

impl Leg {
    /// A debit of `amount` to `account`.
    pub fn debit(account: &AccountId, amount: Amount) -> Self {
        Self { account: account.clone(), side: Side::Debit, amount }
    }

    /// A credit of `amount` to `account`.
    pub fn credit(account: &AccountId, amount: Amount) -> Self {
        Self { account: account.clone(), side: Side::Credit, amount }
    }
}

/// A set of legs applied together, whose debits equal their credits in every currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting {
    /// Idempotency id.
    pub id: PostingId,
    /// The legs, at least two.
    pub legs: Vec<Leg>,
    /// What it is, for people.
    pub description: String,
}

impl Posting {
    /// The common two-leg posting: debit one account, credit another, same amount.
    pub fn transfer(
        id: PostingId,
        debit: &AccountId,
        credit: &AccountId,
        amount: Amount,
        description: &str,
    ) -> Self {
        Self {
            id,
            legs: vec![Leg::debit(debit, amount), Leg::credit(credit, amount)],
            description: description.to_owned(),
        }
    }
}

/// What applying a posting did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// It changed the balances.
    Applied,
    /// A posting with the same id and legs had been applied before; nothing changed.
    AlreadyApplied,
}
