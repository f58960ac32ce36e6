//! The messages: one header and one body, one file per message type.

mod camt029;
mod camt053;
mod camt056;
mod pacs002;
mod pacs004;
mod pacs008;

pub use camt029::ResolutionOfInvestigation;
pub use camt053::{Statement, StatementEntry};
pub use camt056::CancellationRequest;
pub use pacs002::PaymentStatusReport;
pub use pacs004::PaymentReturn;
pub use pacs008::{CreditTransfer, Party, parse_account_id};

use super::{Bic, MessageId, MessageType, ModelError, Uetr};

/// Maximum length of a name, a remittance text or free text (ISO Max140Text).
pub const TEXT_LENGTH_MAX: usize = 140;
/// Maximum length of an account identifier (ISO Max34Text, as an IBAN).
pub const ACCOUNT_LENGTH_MAX: usize = 34;

/// The header every message carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Unique id of this message.
    pub message_id: MessageId,
    /// UETR of the payment the message belongs to; `None` for a statement.
    pub uetr: Option<Uetr>,
    /// Who sent it.
    pub sender: Bic,
    /// Who it is for.
    pub receiver: Bic,
    /// Creation time, Unix milliseconds (UTC).
    pub creation_time_unix_ms: i64,
    /// The sender's own sequence number for this message.
    pub sequence_number: u64,
    /// Set when the originator re-creates a message it may have sent before.
    pub possible_duplicate: bool,
}

/// One message: a header and exactly one body, consistent with each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    header: Header,
    body: Body,
}

/// The body of a message, one variant per message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// pacs.008 credit transfer.
    Pacs008(CreditTransfer),
    /// pacs.002 payment status report.
    Pacs002(PaymentStatusReport),
    /// pacs.004 payment return.
    Pacs004(PaymentReturn),
    /// camt.056 cancellation request.
    Camt056(CancellationRequest),
    /// camt.029 resolution of investigation.
    Camt029(ResolutionOfInvestigation),
    /// camt.053 statement.
    Camt053(Statement),
}

impl Body {
    /// The message type of this body.
    pub fn message_type(&self) -> MessageType {
        match self {
            Body::Pacs008(_) => MessageType::Pacs008,
            Body::Pacs002(_) => MessageType::Pacs002,
            Body::Pacs004(_) => MessageType::Pacs004,
            Body::Camt056(_) => MessageType::Camt056,
            Body::Camt029(_) => MessageType::Camt029,
            Body::Camt053(_) => MessageType::Camt053,
        }
    }

    /// The UETR the body names, if it belongs to a payment.
    pub fn uetr(&self) -> Option<Uetr> {
        match self {
            Body::Pacs008(b) => Some(b.uetr),
            Body::Pacs002(b) => Some(b.uetr),
            Body::Pacs004(b) => Some(b.uetr),
            Body::Camt056(b) => Some(b.uetr),
            Body::Camt029(b) => Some(b.uetr),
            Body::Camt053(_) => None,
        }
    }
}

impl Message {
    /// A message, checked for consistency between header and body: the header's UETR
    /// is the body's, sender and receiver differ, and a pacs.008 travels from its
    /// debtor agent to its creditor agent.
    pub fn new(header: Header, body: Body) -> Result<Self, ModelError> {
        if header.sender == header.receiver {
            return Err(ModelError::new("header.receiver_bic", "a message cannot be sent to its own sender"));
        }
        if header.uetr != body.uetr() {
            return Err(ModelError::new(
                "header.uetr",
                format!(
                    "must equal the UETR of the {} body ({})",
                    body.message_type(),
                    body.uetr().map_or_else(|| "none".to_owned(), |u| u.to_string())
                ),
            ));
        }
        if let Body::Pacs008(transfer) = &body {
            if transfer.debtor_agent != header.sender {
                return Err(ModelError::new("pacs008.debtor_agent_bic", "must be the sender of the message"));
            }
            if transfer.creditor_agent != header.receiver {
                return Err(ModelError::new(
                    "pacs008.creditor_agent_bic",
                    "must be the receiver of the message",
                ));
            }
        }
        Ok(Self { header, body })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.body.message_type()
    }
}

/// Checks free text: at most `max` characters and no control characters.
pub(crate) fn check_text(text: &str, field: &str, max: usize, required: bool) -> Result<String, ModelError> {
    if required && text.trim().is_empty() {
        return Err(ModelError::new(field, "is required"));
    }
    let length = text.chars().count();
    if length > max {
        return Err(ModelError::new(field, format!("has at most {max} characters (got {length})")));
    }
    if text.chars().any(char::is_control) {
        return Err(ModelError::new(field, "may not hold control characters"));
    }
    Ok(text.to_owned())
}
