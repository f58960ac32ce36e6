//! pacs.004: payment return, settled funds sent back to the original debtor agent.

use crate::model::{Amount, MessageId, ReasonCode, Uetr};

/// A return of (part of) a settled payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReturn {
    /// Return id, unique for the returning agent.
    pub return_id: String,
    /// Message id of the pacs.008 being returned.
    pub original_message_id: MessageId,
    /// UETR of the original payment.
    pub uetr: Uetr,
    /// Amount returned.
    pub returned_amount: Amount,
    /// Why it is returned.
    pub reason: ReasonCode,
    /// Free text for a person.
    pub additional_information: String,
}
