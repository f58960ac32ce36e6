//! Identifiers: the UETR of a payment and the id of a message.

use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::str::FromStr;
use std::sync::OnceLock;

use uuid::Uuid;

use super::{Bic, ModelError};

/// Unique end-to-end transaction reference: a UUID v4 generated once by the
/// originating bank and reused on every retry; the idempotency key of a payment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uetr(Uuid);

impl Uetr {
    /// A fresh random UETR.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses the lowercase canonical form (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`).
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let err = |rule: &str| ModelError::new("uetr", format!("{rule} (got {text:?})"));
        if text.len() != 36 {
            return Err(err("a UETR is a UUID in its 36-character canonical form"));
        }
        let uuid = Uuid::parse_str(text).map_err(|_| err("a UETR is a UUID in canonical form"))?;
        if uuid.get_version_num() != 4 || uuid.get_variant() != uuid::Variant::RFC4122 {
            return Err(err("a UETR is a version 4 (random) UUID"));
        }
        if uuid.hyphenated().to_string() != text {
            return Err(err("a UETR is written in lowercase with hyphens"));
        }
        Ok(Self(uuid))
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl FromStr for Uetr {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for Uetr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for Uetr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uetr({})", self.0.hyphenated())
    }
}

/// Maximum length of a message id (ISO 20022 Max35Text).
pub const MESSAGE_ID_LENGTH_MAX: usize = 35;

/// Unique id of one message; the idempotency key of a message.
///
/// 1 to 35 characters from `A-Z a-z 0-9 - . / :`, the subset of the SWIFT character
/// set that needs no escaping anywhere.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(String);

impl MessageId {
    /// A fresh random message id (32 hexadecimal digits).
    pub fn generate() -> Self {
        Self(Uuid::new_v4().simple().to_string())
    }

    /// Parses and validates a message id.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        parse_max35(text, "message_id").map(Self)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks an ISO Max35Text identifier restricted to `A-Z a-z 0-9 - . / :`.
pub(crate) fn parse_max35(text: &str, field: &str) -> Result<String, ModelError> {
    if text.is_empty() || text.len() > MESSAGE_ID_LENGTH_MAX {
        return Err(ModelError::new(
            field,
            format!("must have 1 to {MESSAGE_ID_LENGTH_MAX} characters (got {})", text.len()),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-./:".contains(c);
    if let Some(bad) = text.chars().find(|c| !allowed(*c)) {
        return Err(ModelError::new(
            field,
            format!("may hold only A-Z, a-z, 0-9 and - . / : (found {bad:?})"),
        ));
    }
    Ok(text.to_owned())
}

impl FromStr for MessageId {
    type Err = ModelError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.0)
    }
}

/// A sender and message id, as 128 bits of two SipHash-1-3 digests under keys drawn at
/// random when the process starts. Keyed, so no sender can choose message ids that
/// collide with another's (and have them refused as conflicts); 128 bits, so that
/// two of a duplicate check's million or so messages meet by chance with odds near
/// 2^-88. The hub's duplicate check and each bank's use it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub(crate) struct MessageKey(u128);

impl MessageKey {
    /// The key of `message_id` from `sender`.
    pub(crate) fn new(sender: Bic, message_id: &MessageId) -> Self {
        static KEYS: OnceLock<[RandomState; 2]> = OnceLock::new();
        let keys = KEYS.get_or_init(|| [RandomState::new(), RandomState::new()]);
        let digest = |state: &RandomState| {
            let mut hasher = state.build_hasher();
            hasher.write(sender.as_str().as_bytes());
            hasher.write_u8(0xff); // not a byte of a BIC: the two fields cannot run together
            hasher.write(message_id.as_str().as_bytes());
            hasher.finish()
        };
        Self(u128::from(digest(&keys[0])) << 64 | u128::from(digest(&keys[1])))
    }
}

/// The hasher of maps and sets of [`MessageKey`]s: the keys are keyed digests already, so
/// their low 64 bits serve.
#[derive(Default)]
pub(crate) struct DigestHasher(u64);

/// Builds [`DigestHasher`]s, for a `HashMap` or `HashSet` of [`MessageKey`]s.
pub(crate) type MessageKeyHasher = BuildHasherDefault<DigestHasher>;

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uetr_round_trips_and_refuses_other_forms() {
        let uetr = Uetr::generate();
        assert_eq!(Uetr::parse(&uetr.to_string()).unwrap(), uetr);
        let upper = uetr.to_string().to_uppercase();
        assert!(Uetr::parse(&upper).is_err());
        // A version 1 UUID is not a UETR.
        assert!(Uetr::parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8").is_err());
        assert!(Uetr::parse(&uetr.as_uuid().simple().to_string()).is_err());
    }

    #[test]
    fn message_ids_are_bounded() {
        assert!(MessageId::parse("MSG-2026/11:28.1").is_ok());
        assert!(MessageId::parse("").is_err());
        assert!(MessageId::parse(&"A".repeat(36)).is_err());
        assert!(MessageId::parse("with space").is_err());
        assert_eq!(MessageId::generate().as_str().len(), 32);
    }
}
