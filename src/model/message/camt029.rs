//! camt.029: resolution of investigation, the answer to a camt.056.

use crate::model::{InvestigationStatus, MessageId, ModelError, ReasonCode, Uetr};

/// The outcome of a cancellation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolutionOfInvestigation {
    /// Case id from the camt.056.
    pub case_id: String,
    /// Message id of the camt.056 answered.
    pub original_message_id: MessageId,
    /// UETR of the payment.
    pub uetr: Uetr,
    /// The outcome.
    pub status: InvestigationStatus,
    /// Why, required when the request is rejected.
    pub reason: Option<ReasonCode>,
    /// Free text for a person.
    pub additional_information: String,
}

impl ResolutionOfInvestigation {
    /// Checks the rule across fields: a rejected cancellation always says why.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.status == InvestigationStatus::Rjcr && self.reason.is_none() {
            return Err(ModelError::new("camt029.reason_code", "is required when the status is RJCR"));
        }
        Ok(())
    }
}
