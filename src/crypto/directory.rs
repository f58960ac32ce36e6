//! The key directory: which verifying key speaks for which participant.

use std::collections::HashMap;

use ed25519_dalek::VerifyingKey;

use super::envelope::{SignedEnvelope, receipt_input, signing_input};
use super::{CryptoError, KeyId, ReceiptHash, ReceiptProof, receipt_root_input};
use crate::model::Bic;

/// When a key may sign: from `from_unix_ms` until `until_unix_ms` (inclusive, by the
/// message's creation time), unless revoked, which stops it for good from
/// `revoked_unix_ms` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyValidity {
    /// First creation time the key may sign (Unix milliseconds).
    pub from_unix_ms: i64,
    /// Last creation time the key may sign (Unix milliseconds): its retirement.
    pub until_unix_ms: i64,
    /// When the key was revoked, if it was.
    pub revoked_unix_ms: Option<i64>,
}

impl KeyValidity {
    /// Valid for ever and never revoked.
    pub const ALWAYS: Self = Self { from_unix_ms: i64::MIN, until_unix_ms: i64::MAX, revoked_unix_ms: None };

    /// True when the key may sign something created now (`unix_ms`).
    pub fn usable_at(&self, unix_ms: i64) -> bool {
        self.revoked_unix_ms.is_none_or(|revoked| unix_ms < revoked)
            && (self.from_unix_ms..=self.until_unix_ms).contains(&unix_ms)
    }

    /// Why the key may not sign a message created at `created_unix_ms` and judged at
    /// `now_unix_ms` (for an archived message, its creation time), or `None` if it may.
    fn why_not(&self, created_unix_ms: i64, now_unix_ms: i64) -> Option<String> {
        let text = crate::model::wire::format_unix_ms;
        if let Some(revoked) = self.revoked_unix_ms
            && now_unix_ms >= revoked
        {
            return Some(format!("was revoked at {}", text(revoked)));
        }
        if created_unix_ms < self.from_unix_ms {
            return Some(format!(
                "is valid only from {}, but the message was created at {}",
                text(self.from_unix_ms),
                text(created_unix_ms)
            ));
        }
        if created_unix_ms > self.until_unix_ms {
            return Some(format!(
                "was retired at {}, but the message was created at {}",
                text(self.until_unix_ms),
                text(created_unix_ms)
            ));
        }
        None
    }
}

/// Verifying keys by participant and key id, decoded once at registration (decoding
/// costs more than a tenth of a verification, so it stays off the hot path), each with
/// its validity.
#[derive(Clone, Debug, Default)]
pub struct KeyDirectory {
    keys: HashMap<(Bic, KeyId), (VerifyingKey, KeyValidity)>,
}

impl KeyDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a participant's public key, valid for ever. See [`KeyDirectory::register_with`].
    pub fn register(&mut self, bic: Bic, key_id: KeyId, public_key: &[u8; 32]) -> Result<(), CryptoError> {
        self.register_with(bic, key_id, public_key, KeyValidity::ALWAYS)
    }

    /// Registers a participant's public key with its validity. Refuses bytes that are
    /// not a valid point, weak (small-order) keys, which batch verification would not
    /// catch, and a second, different key under an id already in use.
    pub fn register_with(
        &mut self,
        bic: Bic,
        key_id: KeyId,
        public_key: &[u8; 32],
        validity: KeyValidity,
    ) -> Result<(), CryptoError> {
        let key = VerifyingKey::from_bytes(public_key)
            .map_err(|_| CryptoError::BadKey(format!("{bic} key {key_id} is not a valid Ed25519 point")))?;
        if key.is_weak() {
            return Err(CryptoError::BadKey(format!("{bic} key {key_id} is a weak (small-order) key")));
        }
        match self.keys.get(&(bic, key_id.clone())) {
            Some((existing, _)) if existing != &key => {
                Err(CryptoError::BadKey(format!("{bic} already has a different key registered as {key_id}")))
            }
            _ => {
                self.keys.insert((bic, key_id), (key, validity));
                Ok(())
            }
        }
    }

    /// Checks that `signer`'s key `key_id` may sign a message created at
    /// `created_unix_ms`, judged at `now_unix_ms`: live, the hub passes the present time,
    /// so a revoked key signs nothing more; for an archived message, pass its creation
    /// time, so that it still verifies against the key that was valid when it was made.
    pub fn check_validity(
        &self,
        signer: Bic,
        key_id: &KeyId,
        created_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<(), CryptoError> {
        self.valid_entry(signer, key_id, created_unix_ms, now_unix_ms).map(drop)
    }

    /// [`KeyDirectory::envelope_check`] for a message created at `created_unix_ms`, with
    /// [`KeyDirectory::check_validity`] of its key in the same lookup.
    pub fn envelope_check_at(
        &self,
        envelope: &SignedEnvelope,
        created_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<SignatureCheck, CryptoError> {
        let key = self.valid_entry(envelope.signer, &envelope.key_id, created_unix_ms, now_unix_ms)?;
        Ok(SignatureCheck::of_envelope(*key, envelope))
    }

    /// The key, if registered and allowed to sign what was created then, judged now.
    fn valid_entry(
        &self,
        signer: Bic,
        key_id: &KeyId,
        created_unix_ms: i64,
        now_unix_ms: i64,
    ) -> Result<&VerifyingKey, CryptoError> {
        let (key, validity) = self
            .keys
            .get(&(signer, key_id.clone()))
            .ok_or_else(|| CryptoError::UnknownKey { signer, key_id: key_id.clone() })?;
        match validity.why_not(created_unix_ms, now_unix_ms) {
            None => Ok(key),
            Some(reason) => Err(CryptoError::KeyNotValid { signer, key_id: key_id.clone(), reason }),
        }
    }

    /// The validity of a registered key.
    pub fn validity(&self, bic: Bic, key_id: &KeyId) -> Option<KeyValidity> {
        self.keys.get(&(bic, key_id.clone())).map(|(_, validity)| *validity)
    }

    /// True when `bic` has at least one registered key.
    pub fn knows(&self, bic: Bic) -> bool {
        self.keys.keys().any(|(known, _)| *known == bic)
    }

    /// The registered key, if any.
    pub fn key(&self, bic: Bic, key_id: &KeyId) -> Option<&VerifyingKey> {
        self.keys.get(&(bic, key_id.clone())).map(|(key, _)| key)
    }

    /// Verifies an envelope strictly against its signer's registered key.
    pub fn verify(&self, envelope: &SignedEnvelope) -> Result<(), CryptoError> {
        let check = self.envelope_check(envelope)?;
        check.verify_strict().then_some(()).ok_or_else(|| check.refusal())
    }

    /// Verifies many envelopes at once (see [`KeyDirectory::verify_checks`]); the result
    /// has one entry per envelope, in order.
    pub fn verify_batch(&self, envelopes: &[&SignedEnvelope]) -> Vec<Result<(), CryptoError>> {
        let checks: Vec<Result<SignatureCheck, CryptoError>> =
            envelopes.iter().map(|e| self.envelope_check(e)).collect();
        Self::verify_all(checks)
    }

    /// Verifies checks that may have failed already (unknown key): those pass through as
    /// they are, the rest are verified in one batch.
    pub fn verify_all(checks: Vec<Result<SignatureCheck, CryptoError>>) -> Vec<Result<(), CryptoError>> {
        let ready: Vec<SignatureCheck> = checks.iter().filter_map(|c| c.as_ref().ok().cloned()).collect();
        let mut verified = Self::verify_checks(&ready).into_iter();
        checks
            .into_iter()
            .map(|check| {
                let check = check?;
                verified
                    .next()
                    .expect("one result per ready check")
                    .then_some(())
                    .ok_or_else(|| check.refusal())
            })
            .collect()
    }

    /// Verifies many signatures at once with batch verification, about twice as fast per
    /// signature as one by one. If the batch fails, each is verified strictly on its own
    /// to find the culprits. One answer per check, in order.
    pub fn verify_checks(checks: &[SignatureCheck]) -> Vec<bool> {
        if checks.len() > 1 {
            let messages: Vec<&[u8]> = checks.iter().map(|c| c.input.as_slice()).collect();
            let signatures: Vec<_> = checks.iter().map(|c| c.signature).collect();
            let keys: Vec<_> = checks.iter().map(|c| c.key).collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                return vec![true; checks.len()];
            }
        }
        checks.iter().map(SignatureCheck::verify_strict).collect()
    }

    /// What verifying an envelope takes: its signer's key, the signed input, the signature.
    pub fn envelope_check(&self, envelope: &SignedEnvelope) -> Result<SignatureCheck, CryptoError> {
        Ok(SignatureCheck::of_envelope(*self.lookup(envelope)?, envelope))
    }

    /// What verifying the first contract's per-message receipt the hub (`hub`, key
    /// `key_id`) signed for `envelope` takes (the load generator's ceiling counts it).
    pub fn receipt_check(
        &self,
        hub: Bic,
        key_id: &KeyId,
        envelope: &SignedEnvelope,
        receipt: &ed25519_dalek::Signature,
    ) -> Result<SignatureCheck, CryptoError> {
        let key = self
            .key(hub, key_id)
            .ok_or_else(|| CryptoError::UnknownKey { signer: hub, key_id: key_id.clone() })?;
        Ok(SignatureCheck {
            key: *key,
            input: receipt_input(envelope),
            signature: *receipt,
            signer: hub,
            key_id: key_id.clone(),
        })
    }

    /// What verifying the root signature of `proof` takes, for the `root` its path gave:
    /// the hashing is the caller's, so that many ACKs of one batch verify one signature.
    pub fn receipt_root_check(
        &self,
        hub: Bic,
        proof: &ReceiptProof,
        root: &ReceiptHash,
    ) -> Result<SignatureCheck, CryptoError> {
        let key = self
            .key(hub, &proof.key_id)
            .ok_or_else(|| CryptoError::UnknownKey { signer: hub, key_id: proof.key_id.clone() })?;
        Ok(SignatureCheck {
            key: *key,
            input: receipt_root_input(proof.leaf_count, root),
            signature: proof.root_signature,
            signer: hub,
            key_id: proof.key_id.clone(),
        })
    }

    /// The audit of one message: verifies that `proof` shows the hub (`hub`) accepted
    /// exactly `envelope`, from the two alone (its path and the root signature).
    pub fn verify_receipt(
        &self,
        hub: Bic,
        envelope: &SignedEnvelope,
        proof: &ReceiptProof,
    ) -> Result<(), CryptoError> {
        let key = self
            .key(hub, &proof.key_id)
            .ok_or_else(|| CryptoError::UnknownKey { signer: hub, key_id: proof.key_id.clone() })?;
        proof
            .verifies(envelope, key)
            .then_some(())
            .ok_or_else(|| CryptoError::BadSignature { signer: hub, key_id: proof.key_id.clone() })
    }

    fn lookup(&self, envelope: &SignedEnvelope) -> Result<&VerifyingKey, CryptoError> {
        self.key(envelope.signer, &envelope.key_id).ok_or_else(|| CryptoError::UnknownKey {
            signer: envelope.signer,
            key_id: envelope.key_id.clone(),
        })
    }
}

/// One signature to verify: the key, the exact signed input, the signature.
#[derive(Clone, Debug)]
pub struct SignatureCheck {
    key: VerifyingKey,
    input: Vec<u8>,
    signature: ed25519_dalek::Signature,
    signer: Bic,
    key_id: KeyId,
}

impl SignatureCheck {
    fn of_envelope(key: VerifyingKey, envelope: &SignedEnvelope) -> Self {
        Self {
            key,
            input: signing_input(envelope.signer, &envelope.key_id, &envelope.payload),
            signature: envelope.signature,
            signer: envelope.signer,
            key_id: envelope.key_id.clone(),
        }
    }

    fn verify_strict(&self) -> bool {
        self.key.verify_strict(&self.input, &self.signature).is_ok()
    }

    fn refusal(&self) -> CryptoError {
        CryptoError::BadSignature { signer: self.signer, key_id: self.key_id.clone() }
    }
}
