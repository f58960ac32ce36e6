//! Signed envelopes: the exact payload bytes, their signature, signer and key id.

use bytes::Bytes;
use ed25519_dalek::Signature;

use super::KeyId;
use crate::model::{Bic, ModelError};
use crate::pb;

/// Prefix of every envelope's signing input: a signature over Corridor envelope bytes
/// cannot be passed off as a signature over anything else, and the other way round.
pub const SIGNATURE_DOMAIN: &[u8] = b"corridor.v1.envelope\0";
/// Prefix of the hub's receipts.
pub const RECEIPT_DOMAIN: &[u8] = b"corridor.v1.receipt\0";

/// A message as its sender signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEnvelope {
    /// Encoded `corridor.v1.Message`, byte for byte as signed.
    pub payload: Bytes,
    /// Ed25519 signature over [`signing_input`].
    pub signature: Signature,
    /// The participant whose key signed.
    pub signer: Bic,
    /// Which of its keys.
    pub key_id: KeyId,
}

/// The bytes an envelope's signature covers: domain prefix, signer, key id, payload.
/// Lengths are prefixed so that no two different envelopes share a signing input.
pub fn signing_input(signer: Bic, key_id: &KeyId, payload: &[u8]) -> Vec<u8> {
    let bic = signer.as_str().as_bytes();
    let key_id = key_id.as_str().as_bytes();
    let mut input = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 2 + bic.len() + key_id.len() + payload.len());
    input.extend_from_slice(SIGNATURE_DOMAIN);
    input.push(u8::try_from(bic.len()).expect("a BIC has 11 characters"));
    input.extend_from_slice(bic);
    input.push(u8::try_from(key_id.len()).expect("a key id has at most 64 characters"));
    input.extend_from_slice(key_id);
    input.extend_from_slice(payload);
    input
}

/// The bytes a hub receipt's signature covers: the receipt domain and the sender's
/// signature, which binds the receipt to exactly the bytes that were accepted.
pub fn receipt_input(envelope: &SignedEnvelope) -> Vec<u8> {
    let mut input = Vec::with_capacity(RECEIPT_DOMAIN.len() + 64);
    input.extend_from_slice(RECEIPT_DOMAIN);
    input.extend_from_slice(&envelope.signature.to_bytes());
    input
}

impl TryFrom<pb::SignedEnvelope> for SignedEnvelope {
    type Error = ModelError;

    fn try_from(envelope: pb::SignedEnvelope) -> Result<Self, ModelError> {
        let signature: [u8; 64] = envelope.signature[..].try_into().map_err(|_| {
            ModelError::new("envelope.signature", format!("is 64 bytes (got {})", envelope.signature.len()))
        })?;
        if envelope.payload.is_empty() {
            return Err(ModelError::new("envelope.payload", "is required"));
        }
        Ok(Self {
            payload: envelope.payload,
            signature: Signature::from_bytes(&signature),
            signer: Bic::parse(&envelope.signer_bic).map_err(|e| e.at("envelope.signer_bic"))?,
            key_id: KeyId::parse(&envelope.key_id).map_err(|e| e.at("envelope.key_id"))?,
        })
    }
}

impl From<&SignedEnvelope> for pb::SignedEnvelope {
    fn from(envelope: &SignedEnvelope) -> Self {
        pb::SignedEnvelope {
            payload: envelope.payload.clone(),
            signature: envelope.signature.to_bytes().to_vec().into(),
            signer_bic: envelope.signer.to_string(),
            key_id: envelope.key_id.to_string(),
        }
    }
}
