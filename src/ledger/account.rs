//! Ledger accounts.

use std::fmt;

use crate::model::{Balance, Currency, ModelError, parse_account_id};

/// Id of a ledger account: 1 to 34 characters from `A-Z a-z 0-9 - . /`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Parses and validates an account id.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        parse_account_id(text).map(Self)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

/// Debit or credit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Side {
    /// Increases assets, decreases liabilities.
    Debit,
    /// Increases liabilities, decreases assets.
    Credit,
}

/// What an account is for; decides its normal side.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AccountKind {
    /// A customer's deposit: the bank owes it (liability, credit-normal).
    Customer,
    /// The bank's settlement account at the hub (asset, debit-normal).
    Settlement,
    /// Outgoing payments taken from customers and not yet settled (liability).
    InFlight,
    /// Amounts held while something is investigated (liability).
    Suspense,
    /// The bank's vault cash, where opening deposits come from (asset).
    Cash,
}

impl AccountKind {
    /// The side on which a balance of this kind of account grows.
    pub fn normal_side(&self) -> Side {
        match self {
            AccountKind::Settlement | AccountKind::Cash => Side::Debit,
            AccountKind::Customer | AccountKind::InFlight | AccountKind::Suspense => Side::Credit,
        }
    }
}

/// How low an account's balance (on its normal side) may go.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Floor {
    /// Never below this many minor units (0 for an account that may not be overdrawn).
    Minimum(i64),
    /// No floor: the account may go negative (a settlement account's overdraft is the
    /// hub's concern, bounded there by the net debit cap).
    Unbounded,
}

/// One ledger account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Its id.
    pub id: AccountId,
    /// Its kind.
    pub kind: AccountKind,
    /// Its one currency.
    pub currency: Currency,
    /// Holder's name, for people.
    pub name: String,
    /// Whether incoming payments are refused (AC06).
    pub blocked: bool,
    /// How low the balance may go.
    pub floor: Floor,
    /// Balance on the normal side, in minor units.
    pub balance: i64,
}

impl Account {
    /// A new account at zero, with the usual floor for its kind: customers, in-flight
    /// and cash may not go below zero; settlement and suspense may.
    pub fn new(id: AccountId, kind: AccountKind, currency: Currency, name: &str) -> Self {
        let floor = match kind {
            AccountKind::Customer | AccountKind::InFlight | AccountKind::Cash => Floor::Minimum(0),
            AccountKind::Settlement | AccountKind::Suspense => Floor::Unbounded,
        };
        Self { id, kind, currency, name: name.to_owned(), blocked: false, floor, balance: 0 }
    }

    /// The same account with another floor.
    pub fn with_floor(mut self, floor: Floor) -> Self {
        self.floor = floor;
        self
    }

    /// The balance on the normal side.
    pub fn balance(&self) -> Balance {
        Balance { minor_units: self.balance, currency: self.currency }
    }

    /// The balance counted debit-positive, whatever the normal side.
    pub fn debit_balance(&self) -> i64 {
        match self.kind.normal_side() {
            Side::Debit => self.balance,
            Side::Credit => -self.balance,
        }
    }
}
