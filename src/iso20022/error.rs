//! The one error of the XML boundary: what was wrong, and where in the document.

use thiserror::Error;

use super::XML_BYTES_MAX;

/// Why an XML message could not be read or written.
///
/// Errors about the content name the element (or attribute) by its path from the root,
/// as `/Document/FIToFICstmrCdtTrf/CdtTrfTxInf[1]/IntrBkSttlmAmt/@Ccy`, so that a person
/// can find it in the file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmlError {
    /// The input is larger than [`XML_BYTES_MAX`]; nothing of it was parsed.
    #[error("the input has {bytes} bytes; an XML message has at most {XML_BYTES_MAX} bytes")]
    TooLarge {
        /// Size of the input.
        bytes: usize,
    },
    /// The input is not well-formed XML (or not UTF-8, or breaks a structural limit).
    #[error("not well-formed XML (at byte {position}): {detail}")]
    NotXml {
        /// Byte offset where the reader stopped.
        position: u64,
        /// What the reader found.
        detail: String,
    },
    /// The input declares a document type: refused, so that no entity is ever expanded
    /// (the "billion laughs" attack) and no external resource is named.
    #[error(
        "a document type declaration (<!DOCTYPE ...>) is refused: ISO 20022 messages have none, and Corridor expands no entities"
    )]
    DocumentType,
    /// An element or attribute breaks a rule of the schema or of Corridor's model.
    #[error("{path}: {rule}")]
    Invalid {
        /// Path of the element or attribute (`/Document/.../@Ccy`).
        path: String,
        /// The rule it broke.
        rule: String,
    },
    /// The message holds elements Corridor does not model; carrying it would drop them.
    #[error("Corridor does not carry {} element(s) of this message, which would be lost: {}", paths.len(), paths.join(", "))]
    NotCarried {
        /// Path of each element (or attribute) not carried, in document order.
        paths: Vec<String>,
    },
    /// A model value that the ISO 20022 schema cannot express (for example a rate with
    /// more digits than `BaseOneRate` allows).
    #[error("cannot write {path}: {rule}")]
    Unwritable {
        /// Path of the element that would hold the value.
        path: String,
        /// Why it cannot.
        rule: String,
    },
}

impl XmlError {
    /// An [`XmlError::Invalid`] at `path`.
    pub(crate) fn invalid(path: impl Into<String>, rule: impl Into<String>) -> Self {
        Self::Invalid { path: path.into(), rule: rule.into() }
    }

    /// The path this error names, if it names one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } | Self::Unwritable { path, .. } => Some(path),
            _ => None,
        }
    }
}
