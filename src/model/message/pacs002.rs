//! pacs.002: payment status report, the answer to a pacs.008.

use crate::model::{MessageId, ModelError, PaymentStatus, ReasonCode, Uetr};

/// The status of one payment as its receiver reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentStatusReport {
    /// Message id of the message whose status this reports.
    pub original_message_id: MessageId,
    /// UETR of the payment.
    pub uetr: Uetr,
    /// The status.
    pub status: PaymentStatus,
    /// Why, required with RJCT.
    pub reason: Option<ReasonCode>,
    /// Free text for a person.
    pub additional_information: String,
}

impl PaymentStatusReport {
    /// Checks the rule across fields: a rejection always says why.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.status == PaymentStatus::Rjct && self.reason.is_none() {
            return Err(ModelError::new("pacs002.reason_code", "is required when the status is RJCT"));
        }
        Ok(())
    }
}
