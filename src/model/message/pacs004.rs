//! pacs.004: payment return, settled funds sent back to the original debtor agent.

use crate::model::{Amount, Conversion, MessageId, ReasonCode, Uetr};

/// A return of (part of) a settled payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReturn {
    /// Return id, unique for the returning agent.
    pub return_id: String,
    /// Message id of the pacs.008 being returned.
    pub original_message_id: MessageId,
    /// UETR of the original payment.
    pub uetr: Uetr,
    /// Amount returned: the original interbank settlement amount, whole.
    pub returned_amount: Amount,
    /// A converted original's instructed amount and rate, undone: the original debtor
    /// agent receives the instructed amount back. Never cites a quote.
    pub conversion: Option<Conversion>,
    /// Why it is returned.
    pub reason: ReasonCode,
    /// Free text for a person.
    pub additional_information: String,
}

impl PaymentReturn {
    /// What the original debtor agent receives back, in its own currency.
    pub fn returned_instructed_amount(&self) -> Amount {
        self.conversion.as_ref().map_or(self.returned_amount, |c| c.instructed)
    }
}
