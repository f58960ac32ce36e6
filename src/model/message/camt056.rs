//! camt.056: FI-to-FI payment cancellation request (a recall).

use crate::model::{Amount, MessageId, ReasonCode, Uetr};

/// A request to cancel a payment, opening an investigation case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancellationRequest {
    /// Case id of the investigation.
    pub case_id: String,
    /// Message id of the pacs.008 to cancel.
    pub original_message_id: MessageId,
    /// UETR of the payment.
    pub uetr: Uetr,
    /// Amount asked back.
    pub original_amount: Amount,
    /// Why (for example DUPL, FRAD, CUST).
    pub reason: ReasonCode,
    /// Free text for a person.
    pub additional_information: String,
}
