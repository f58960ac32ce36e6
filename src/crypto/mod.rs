//! Signing: Ed25519 keys, signed envelopes over the exact payload bytes, the key
//! directory that says which key speaks for which participant.
//!
//! What is signed is a domain-separation prefix, the signer's BIC, the key id and the
//! payload bytes, so that no bit of an envelope can change without breaking its
//! signature, and a signature made for Corridor envelopes means nothing elsewhere.
//! A message is encoded once, signed, and from then on carried as those bytes: nobody
//! re-encodes a message to verify it.

pub mod backend;
mod directory;
mod envelope;
mod keys;
mod receipt;

pub use directory::{KeyDirectory, KeyValidity, SignatureCheck};
pub use envelope::{RECEIPT_DOMAIN, SIGNATURE_DOMAIN, SignedEnvelope, receipt_input, signing_input};
pub use keys::{KeyId, SigningIdentity, hex_decode, hex_encode, load_signing_key, save_signing_key};
pub use receipt::{
    RECEIPT_PATH_LENGTH_MAX, RECEIPT_ROOT_DOMAIN, ReceiptHash, ReceiptProof, ReceiptTree, receipt_leaf,
    receipt_root_input, root_from_path,
};

use thiserror::Error;

use crate::model::Bic;

/// What can go wrong with keys and signatures.
#[derive(Debug, Error)]
pub enum CryptoError {
    /// The signature does not verify against the signer's registered key.
    #[error("signature of {signer} (key {key_id}) does not verify")]
    BadSignature {
        /// Who claims to have signed.
        signer: Bic,
        /// With which key.
        key_id: KeyId,
    },
    /// No key with this id is registered for this participant.
    #[error("no signing key {key_id} is registered for {signer}")]
    UnknownKey {
        /// Who claims to have signed.
        signer: Bic,
        /// With which key.
        key_id: KeyId,
    },
    /// The key is registered but may not sign this message: it was not yet valid or
    /// already retired when the message was created, or it has been revoked.
    #[error("key {key_id} of {signer} {reason}")]
    KeyNotValid {
        /// Who claims to have signed.
        signer: Bic,
        /// With which key.
        key_id: KeyId,
        /// Why the key may not sign it.
        reason: String,
    },
    /// A key is malformed, weak, or conflicts with one already registered.
    #[error("refused key: {0}")]
    BadKey(String),
    /// An envelope is malformed (field and rule).
    #[error("malformed envelope: {0}")]
    Malformed(#[from] crate::model::ModelError),
    /// A key file could not be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}
