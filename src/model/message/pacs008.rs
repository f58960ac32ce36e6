//! pacs.008: FI-to-FI customer credit transfer, the payment instruction.

use time::Date;

use crate::model::{Amount, Bic, ChargeBearer, ModelError, Uetr};

use super::{ACCOUNT_LENGTH_MAX, TEXT_LENGTH_MAX, check_text};

/// A debtor or a creditor: a name and an account at their bank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// The party's name (1 to 140 characters).
    pub name: String,
    /// Account at the party's bank (1 to 34 characters).
    pub account: String,
}

impl Party {
    /// A party, validated.
    pub fn new(name: &str, account: &str) -> Result<Self, ModelError> {
        Ok(Self {
            name: check_text(name, "name", TEXT_LENGTH_MAX, true)?,
            account: parse_account_id(account)?,
        })
    }
}

/// Checks an account identifier: 1 to 34 characters from `A-Z a-z 0-9 - . /`.
pub fn parse_account_id(account: &str) -> Result<String, ModelError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-./".contains(c);
    if account.is_empty() || account.len() > ACCOUNT_LENGTH_MAX || !account.chars().all(allowed) {
        return Err(ModelError::new(
            "account",
            format!(
                "an account is 1 to {ACCOUNT_LENGTH_MAX} characters from A-Z, a-z, 0-9 and - . / (got {account:?})"
            ),
        ));
    }
    Ok(account.to_owned())
}

/// A credit transfer from a debtor at the debtor agent to a creditor at the creditor agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditTransfer {
    /// Instruction id, unique for the instructing agent.
    pub instruction_id: String,
    /// End-to-end id set by the debtor.
    pub end_to_end_id: String,
    /// UETR of the payment.
    pub uetr: Uetr,
    /// Interbank settlement amount.
    pub amount: Amount,
    /// Interbank settlement date.
    pub settlement_date: Date,
    /// Who bears the charges.
    pub charge_bearer: ChargeBearer,
    /// The payer.
    pub debtor: Party,
    /// The payer's bank.
    pub debtor_agent: Bic,
    /// The payee.
    pub creditor: Party,
    /// The payee's bank.
    pub creditor_agent: Bic,
    /// Unstructured remittance information (up to 140 characters).
    pub remittance_information: String,
}
