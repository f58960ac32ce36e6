//! Signing keys: ids, generation, owner-only key files.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};

use super::CryptoError;
use super::envelope::{SignedEnvelope, receipt_input, signing_input};
use crate::model::{Bic, Message, ModelError, wire};

/// Maximum length of a key id.
pub const KEY_ID_LENGTH_MAX: usize = 64;

/// Id of a signing key in the network directory: 1 to 64 characters from
/// `A-Z a-z 0-9 - . _`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Parses and validates a key id.
    pub fn parse(text: &str) -> Result<Self, ModelError> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
        if text.is_empty() || text.len() > KEY_ID_LENGTH_MAX || !text.chars().all(allowed) {
            return Err(ModelError::new(
                "key_id",
                format!(
                    "a key id is 1 to {KEY_ID_LENGTH_MAX} characters from A-Z, a-z, 0-9 and - . _ (got {text:?})"
                ),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

/// A participant's signing key with its identity: who signs, with which key id.
pub struct SigningIdentity {
    bic: Bic,
    key_id: KeyId,
    key: SigningKey,
}

impl SigningIdentity {
    /// An identity from an existing key.
    pub fn new(bic: Bic, key_id: KeyId, key: SigningKey) -> Self {
        Self { bic, key_id, key }
    }

    /// A fresh random key for `bic`.
    pub fn generate(bic: Bic, key_id: KeyId) -> Self {
        Self::new(bic, key_id, generate_signing_key())
    }

    /// The participant this key speaks for.
    pub fn bic(&self) -> Bic {
        self.bic
    }

    /// The key id.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// The public half, for the directory.
    pub fn verifying_key_bytes(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The secret key (for saving it).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Encodes `message` once and signs those exact bytes.
    ///
    /// Panics if the message's sender is not this identity's participant: signing for
    /// someone else is a programming error, not an operating one.
    pub fn sign(&self, message: &Message) -> SignedEnvelope {
        assert_eq!(message.header().sender, self.bic, "a participant signs only its own messages");
        self.sign_payload(wire::encode_message(message).into())
    }

    /// Signs payload bytes as they are (used by tests and tools that craft payloads).
    pub fn sign_payload(&self, payload: bytes::Bytes) -> SignedEnvelope {
        let input = signing_input(self.bic, &self.key_id, &payload);
        let signature = self.key.sign(&input);
        SignedEnvelope { payload, signature, signer: self.bic, key_id: self.key_id.clone() }
    }

    /// Signs the first contract's receipt for one accepted message. The hub no longer
    /// answers with it (see [`SigningIdentity::sign_receipts`]); the load generator's
    /// ceiling still counts its cost, for continuity with earlier measurements.
    pub fn sign_receipt(&self, envelope: &SignedEnvelope) -> ed25519_dalek::Signature {
        self.key.sign(&receipt_input(envelope))
    }

    /// Signs the root of a batch's receipt tree once and returns every leaf's receipt,
    /// in leaf order (the hub's proof of acceptance, contract version 2).
    pub fn sign_receipts(&self, tree: &super::ReceiptTree) -> Vec<super::ReceiptProof> {
        tree.sign(&self.key_id, &self.key)
    }
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("bic", &self.bic)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn generate_signing_key() -> SigningKey {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the operating system's random source is available");
    SigningKey::from_bytes(&secret)
}

/// Saves a signing key as hex text in a new file readable by its owner only.
/// Refuses to overwrite an existing file: a key is never silently replaced.
pub fn save_signing_key(path: &Path, key: &SigningKey) -> Result<(), CryptoError> {
    let error = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| error(e.to_string()))?;
    let text = format!("{}\n", hex_encode(&key.to_bytes()));
    file.write_all(text.as_bytes()).map_err(|e| error(e.to_string()))?;
    file.sync_all().map_err(|e| error(e.to_string()))
}

/// Loads a signing key saved by [`save_signing_key`].
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CryptoError> {
    let error = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
    let text = fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let bytes = hex_decode(text.trim()).ok_or_else(|| error("not 64 hexadecimal digits".into()))?;
    let secret: [u8; 32] = bytes.try_into().map_err(|_| error("not a 32-byte Ed25519 secret key".into()))?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Lowercase hexadecimal text of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of hexadecimal text, or `None` if it is not hex of even length.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}
