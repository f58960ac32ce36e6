//! The domain model: identifiers, money, ISO 20022 code sets and messages.
//!
//! Every newtype validates once, at construction; the rest of Corridor can trust a
//! `Bic`, an `Amount` or a `Message` without checking it again. Protobuf types are
//! converted to and from these in one place, [`wire`].

mod amount;
mod bic;
mod codes;
mod currency;
mod error;
mod fx;
mod ids;
pub mod message;
pub mod wire;

pub use amount::{AMOUNT_MINOR_UNITS_MAX, Amount, Balance, format_minor_units};
pub use bic::Bic;
pub use codes::{ChargeBearer, EntryDirection, InvestigationStatus, MessageType, PaymentStatus, ReasonCode};
pub use currency::Currency;
pub use error::ModelError;
pub use fx::{
    BASE_ONE_RATE_DECIMALS, BASE_ONE_RATE_DIGITS, Conversion, CurrencyPair, RATE_DIGITS_MAX, RATE_SCALE_MAX,
    Rate, SPREAD_BPS_MAX,
};
pub use ids::{MESSAGE_ID_LENGTH_MAX, MessageId, Uetr};
pub(crate) use ids::{MessageKey, MessageKeyHasher};
pub use message::{
    Body, CancellationRequest, CreditTransfer, Header, Message, Party, PaymentReturn, PaymentStatusReport,
    ResolutionOfInvestigation, Statement, StatementEntry, parse_account_id,
};

/// Gives each type a serde form that is its text form: written with `Display`, read back
/// with `FromStr` (so validated again), for records the hub stores (its payment archive).
macro_rules! serde_as_text {
    ($($name:ty),+ $(,)?) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )+};
}

serde_as_text!(
    Amount,
    Bic,
    Currency,
    CurrencyPair,
    InvestigationStatus,
    MessageId,
    PaymentStatus,
    Rate,
    ReasonCode,
    Uetr
);
