//! The one error of the model boundary: which field broke which rule.

use thiserror::Error;

/// A value that broke a rule of the domain model.
///
/// `field` is the path of the offending field as the wire names it
/// (`pacs008.interbank_settlement_amount.currency`), so a person can find it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {rule}")]
pub struct ModelError {
    /// Path of the field, outermost first, dot separated.
    pub field: String,
    /// The rule the value broke, as a sentence fragment a person can act on.
    pub rule: String,
}

impl ModelError {
    /// An error for `field` that broke `rule`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Self { field: field.into(), rule: rule.into() }
    }

    /// The same error, reported against `field` instead (used at the wire edge, where
    /// the parser of a value does not know which field it came from).
    pub fn at(mut self, field: &str) -> Self {
        self.field = field.to_owned();
        self
    }

    /// The same error, nested under `parent` (`header` + `sender_bic`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}
