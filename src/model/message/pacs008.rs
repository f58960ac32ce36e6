//! pacs.008: FI-to-FI customer credit transfer, the payment instruction.

use time::Date;

use crate::model::{Amount, Bic, ChargeBearer, Conversion, ModelError, Uetr};

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
    /// Interbank settlement amount: what the creditor agent receives, in its currency.
    pub amount: Amount,
    /// For a cross-currency payment: the instructed amount in the debtor's currency and
    /// the rate that converts it into `amount`.
    pub conversion: Option<Conversion>,
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

impl CreditTransfer {
    /// What the debtor instructed, in the debtor agent's currency: what the debtor agent
    /// books and settles (the interbank settlement amount when nothing is converted).
    pub fn instructed_amount(&self) -> Amount {
        self.conversion.as_ref().map_or(self.amount, |c| c.instructed)
    }

    /// Checks a conversion's arithmetic: the settlement amount is the instructed amount
    /// at the rate, by the rounding rule of [`crate::model::Rate::convert`].
    pub fn check_conversion(&self) -> Result<(), ModelError> {
        let Some(conversion) = &self.conversion else { return Ok(()) };
        let expected = conversion.rate.convert(conversion.instructed, self.amount.currency())?;
        if expected != self.amount {
            return Err(ModelError::new(
                "pacs008.interbank_settlement_amount",
                format!(
                    "{} at {} is {expected} (nearest minor unit, ties away from zero), not {}",
                    conversion.instructed, conversion.rate, self.amount
                ),
            ));
        }
        Ok(())
    }
}
