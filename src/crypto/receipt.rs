//! The hub's receipts (session contract version 2): one signature per batch of ACKs.
//!
//! The hub answers the submissions of a batch with one Ed25519 signature over the root of
//! a Merkle tree whose leaves are the batch's ACKed messages, and gives each ACK its leaf's
//! audit path. One message's receipt is proven on its own, from the envelope and its
//! [`ReceiptProof`] alone: the leaf is the digest of the message's [`receipt_input`] (the
//! sender's signature, which covers every byte the sender signed), hashed up the path to
//! the root, whose signature names the tree's size, so that an index and a path fit one
//! tree shape only.
//!
//! Hashes are SHA-256, with a prefix that tells a leaf from an inner node, so that no inner
//! node can pass for a leaf.

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message as _;
use sha2::{Digest, Sha256};

use super::envelope::{SignedEnvelope, receipt_input};
use super::{CryptoError, KeyId};
use crate::model::ModelError;
use crate::pb;

/// A node of a receipt tree: a SHA-256 digest.
pub type ReceiptHash = [u8; 32];

/// Prefix of a leaf's hash input.
const LEAF_PREFIX: &[u8] = b"corridor.v2.receipt.leaf\0";
/// Prefix of an inner node's hash input.
const NODE_PREFIX: &[u8] = b"corridor.v2.receipt.node\0";
/// Prefix of what the hub signs: the leaf count and the root.
pub const RECEIPT_ROOT_DOMAIN: &[u8] = b"corridor.v2.receipt.root\0";
/// Most levels a path can have: a tree of at most 2^32 leaves.
pub const RECEIPT_PATH_LENGTH_MAX: usize = 32;

fn hash(prefix: &[u8], parts: &[&[u8]]) -> ReceiptHash {
    let mut hasher = Sha256::new();
    hasher.update(prefix);
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The leaf of an accepted message: the digest of its receipt input.
pub fn receipt_leaf(envelope: &SignedEnvelope) -> ReceiptHash {
    hash(LEAF_PREFIX, &[&receipt_input(envelope)])
}

fn node(left: &ReceiptHash, right: &ReceiptHash) -> ReceiptHash {
    hash(NODE_PREFIX, &[left, right])
}

/// The bytes the hub signs for a tree: the domain, the leaf count and the root.
pub fn receipt_root_input(leaf_count: u32, root: &ReceiptHash) -> Vec<u8> {
    let mut input = Vec::with_capacity(RECEIPT_ROOT_DOMAIN.len() + 4 + root.len());
    input.extend_from_slice(RECEIPT_ROOT_DOMAIN);
    input.extend_from_slice(&leaf_count.to_be_bytes());
    input.extend_from_slice(root);
    input
}

/// A Merkle tree over a batch's leaves, level by level: pairs are hashed together, and
/// the last node of an odd level is carried up unchanged.
#[derive(Clone, Debug)]
pub struct ReceiptTree {
    /// `levels[0]` are the leaves, the last level is the root alone.
    levels: Vec<Vec<ReceiptHash>>,
}

impl ReceiptTree {
    /// The tree over `leaves`, in order. Panics on no leaves or more than `u32::MAX`: a
    /// batch with nothing to ACK signs nothing.
    pub fn new(leaves: Vec<ReceiptHash>) -> Self {
        assert!(!leaves.is_empty(), "a receipt tree has at least one leaf");
        assert!(u32::try_from(leaves.len()).is_ok(), "a receipt tree has at most u32::MAX leaves");
        let mut levels = vec![leaves];
        while let Some(level) = levels.last().filter(|level| level.len() > 1) {
            let up = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The root the hub signs.
    pub fn root(&self) -> ReceiptHash {
        self.levels.last().expect("at least the leaves")[0]
    }

    /// How many leaves.
    pub fn leaf_count(&self) -> u32 {
        u32::try_from(self.levels[0].len()).expect("checked at construction")
    }

    /// The sibling hashes from leaf `index` up to the root.
    pub fn path(&self, index: u32) -> Vec<ReceiptHash> {
        let mut index = index as usize;
        assert!(index < self.levels[0].len(), "leaf {index} of a tree of {}", self.levels[0].len());
        let mut path = Vec::with_capacity(self.levels.len());
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                path.push(*sibling);
            }
            index /= 2;
        }
        path
    }

    /// Signs the root with the hub's `key` (id `key_id`) and returns every leaf's proof,
    /// in leaf order.
    pub fn sign(&self, key_id: &KeyId, key: &SigningKey) -> Vec<ReceiptProof> {
        let root_signature = key.sign(&receipt_root_input(self.leaf_count(), &self.root()));
        (0..self.leaf_count())
            .map(|leaf_index| ReceiptProof {
                key_id: key_id.clone(),
                root_signature,
                leaf_index,
                leaf_count: self.leaf_count(),
                path: self.path(leaf_index),
            })
            .collect()
    }
}

/// The root that `leaf`, at `index` of a tree of `leaf_count` leaves, hashes up to with
/// `path`; `None` if the path does not fit that place (too short, too long, or an index
/// outside the tree).
pub fn root_from_path(
    leaf: ReceiptHash,
    index: u32,
    leaf_count: u32,
    path: &[ReceiptHash],
) -> Option<ReceiptHash> {
    if index >= leaf_count {
        return None;
    }
    let (mut index, mut width) = (index, leaf_count);
    let mut siblings = path.iter();
    let mut hashed = leaf;
    while width > 1 {
        if index % 2 == 1 {
            hashed = node(siblings.next()?, &hashed);
        } else if index + 1 < width {
            hashed = node(&hashed, siblings.next()?);
        }
        // else: the last node of an odd level, carried up unchanged.
        index /= 2;
        width = width.div_ceil(2);
    }
    siblings.next().is_none().then_some(hashed)
}

/// One message's receipt: the hub's signature over its batch's root, and where the
/// message's leaf sits in that tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptProof {
    /// The hub key that signed the root.
    pub key_id: KeyId,
    /// The hub's signature over [`receipt_root_input`].
    pub root_signature: Signature,
    /// The leaf's place in the tree.
    pub leaf_index: u32,
    /// The tree's leaves.
    pub leaf_count: u32,
    /// Sibling hashes from the leaf up.
    pub path: Vec<ReceiptHash>,
}

impl ReceiptProof {
    /// The root this proof gives for `envelope`, or `None` if its path does not fit.
    pub fn root_for(&self, envelope: &SignedEnvelope) -> Option<ReceiptHash> {
        root_from_path(receipt_leaf(envelope), self.leaf_index, self.leaf_count, &self.path)
    }

    /// The audit of one message: true only if this proof shows that the hub whose key is
    /// `hub_key` accepted exactly `envelope`.
    pub fn verifies(&self, envelope: &SignedEnvelope, hub_key: &VerifyingKey) -> bool {
        self.root_for(envelope).is_some_and(|root| {
            hub_key.verify_strict(&receipt_root_input(self.leaf_count, &root), &self.root_signature).is_ok()
        })
    }

    /// The proof as the journal keeps it: the encoded `corridor.v1.Receipt`.
    pub fn encode(&self) -> Bytes {
        pb::Receipt::from(self).encode_to_vec().into()
    }

    /// A proof the journal kept (see [`ReceiptProof::encode`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let receipt = pb::Receipt::decode(bytes)
            .map_err(|e| ModelError::new("receipt", format!("is not an encoded receipt: {e}")))?;
        Ok(Self::try_from(receipt)?)
    }
}

impl From<&ReceiptProof> for pb::Receipt {
    fn from(proof: &ReceiptProof) -> Self {
        pb::Receipt {
            key_id: proof.key_id.to_string(),
            root_signature: proof.root_signature.to_bytes().to_vec().into(),
            leaf_index: proof.leaf_index,
            leaf_count: proof.leaf_count,
            path: proof.path.iter().map(|hash| Bytes::copy_from_slice(hash)).collect(),
        }
    }
}

impl TryFrom<pb::Receipt> for ReceiptProof {
    type Error = ModelError;

    /// Checks the shape only (sizes and bounds); whether it proves anything is
    /// [`ReceiptProof::verifies`]'s question.
    fn try_from(receipt: pb::Receipt) -> Result<Self, ModelError> {
        let root_signature = Signature::from_slice(&receipt.root_signature).map_err(|_| {
            ModelError::new(
                "receipt.root_signature",
                format!("is 64 bytes (got {})", receipt.root_signature.len()),
            )
        })?;
        if receipt.leaf_index >= receipt.leaf_count {
            return Err(ModelError::new(
                "receipt.leaf_index",
                format!("is below leaf_count {} (got {})", receipt.leaf_count, receipt.leaf_index),
            ));
        }
        if receipt.path.len() > RECEIPT_PATH_LENGTH_MAX {
            return Err(ModelError::new(
                "receipt.path",
                format!("has at most {RECEIPT_PATH_LENGTH_MAX} hashes (got {})", receipt.path.len()),
            ));
        }
        let path = receipt
            .path
            .iter()
            .map(|hash| {
                <ReceiptHash>::try_from(&hash[..]).map_err(|_| {
                    ModelError::new(
                        "receipt.path",
                        format!("holds 32-byte hashes (got {} bytes)", hash.len()),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            key_id: KeyId::parse(&receipt.key_id).map_err(|e| e.at("receipt.key_id"))?,
            root_signature,
            leaf_index: receipt.leaf_index,
            leaf_count: receipt.leaf_count,
            path,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningIdentity;
    use crate::model::Bic;

    fn envelopes(count: usize) -> (SigningIdentity, Vec<SignedEnvelope>) {
        let bank = SigningIdentity::generate(Bic::parse("BANKRUMMXXX").unwrap(), KeyId::parse("k1").unwrap());
        let signed = (0..count).map(|i| bank.sign_payload(Bytes::from(format!("message {i}")))).collect();
        (bank, signed)
    }

    fn hub() -> SigningIdentity {
        SigningIdentity::generate(Bic::parse("CRDRZZ00XXX").unwrap(), KeyId::parse("hub-k1").unwrap())
    }

    fn proofs(hub: &SigningIdentity, envelopes: &[SignedEnvelope]) -> Vec<ReceiptProof> {
        let tree = ReceiptTree::new(envelopes.iter().map(receipt_leaf).collect());
        tree.sign(hub.key_id(), hub.signing_key())
    }

    /// An ACK's receipt proves its message on its own (SECURITY.md, receipts): for every
    /// leaf of trees of 1 to 17 leaves (odd levels carried up, powers of two and one past
    /// them), the proof verifies for its envelope, survives the journal's encoding, and
    /// fits no other message of the batch.
    #[test]
    fn every_leaf_of_trees_of_1_to_17_leaves_proves_its_message_alone() {
        let hub = hub();
        let key = VerifyingKey::from_bytes(&hub.verifying_key_bytes()).unwrap();
        for count in 1..=17 {
            let (_, envelopes) = envelopes(count);
            let proofs = proofs(&hub, &envelopes);
            let paths_max = (count as f64).log2().ceil() as usize;
            for (index, (proof, envelope)) in proofs.iter().zip(&envelopes).enumerate() {
                assert!(proof.verifies(envelope, &key), "leaf {index} of {count}");
                assert!(proof.path.len() <= paths_max, "leaf {index} of {count}: {}", proof.path.len());
                let kept = ReceiptProof::decode(&proof.encode()).unwrap();
                assert_eq!(&kept, proof);
                assert!(kept.verifies(envelope, &key), "leaf {index} of {count}, from the journal's bytes");
                let other = &envelopes[(index + 1) % count];
                assert_eq!(
                    proof.verifies(other, &key),
                    count == 1 && other == envelope,
                    "leaf {index} of {count}"
                );
            }
        }
    }

    /// A receipt cannot be bent to prove anything else (SECURITY.md, receipts): another
    /// envelope, a changed path hash, a dropped or extra hash, another index or leaf count,
    /// a changed signature or another hub key each fail.
    #[test]
    fn a_changed_leaf_path_index_count_or_signature_fails() {
        let hub = hub();
        let key = VerifyingKey::from_bytes(&hub.verifying_key_bytes()).unwrap();
        let (bank, envelopes) = envelopes(11);
        let proofs = proofs(&hub, &envelopes);
        let (proof, envelope) = (&proofs[6], &envelopes[6]);
        assert!(proof.verifies(envelope, &key));
        let changed = |change: &dyn Fn(&mut ReceiptProof)| {
            let mut bent = proof.clone();
            change(&mut bent);
            bent.verifies(envelope, &key)
        };
        assert!(!changed(&|p| p.path[1][0] ^= 1), "a changed path hash");
        assert!(!changed(&|p| p.path.truncate(p.path.len() - 1)), "a dropped path hash");
        assert!(!changed(&|p| p.path.push([0; 32])), "an extra path hash");
        assert!(!changed(&|p| p.path.swap(0, 1)), "path hashes in another order");
        for index in [5, 7, 10] {
            assert!(!changed(&|p| p.leaf_index = index), "index {index}");
        }
        assert!(!changed(&|p| p.leaf_index = 11), "an index outside the tree");
        for count in [7, 10, 12] {
            assert!(!changed(&|p| p.leaf_count = count), "leaf count {count}");
        }
        assert!(!changed(&|p| p.root_signature = Signature::from_bytes(&[7; 64])), "another signature");
        let mut signature = proof.root_signature.to_bytes();
        signature[3] ^= 1;
        assert!(!changed(&|p| p.root_signature = Signature::from_bytes(&signature)), "a changed signature");
        // A changed leaf: the same message id signed again is another envelope.
        let resigned = bank.sign_payload(Bytes::from("message 6 "));
        assert!(!proof.verifies(&resigned, &key), "another envelope");
        let other_hub = VerifyingKey::from_bytes(&self::hub().verifying_key_bytes()).unwrap();
        assert!(!proof.verifies(envelope, &other_hub), "another hub key");
    }

    /// A receipt from the wire or the journal is checked for shape before use, with an
    /// error that names the field: garbage bytes, a short signature, an index outside the
    /// tree, a short hash, an over-long path.
    #[test]
    fn a_malformed_receipt_is_refused_with_the_field_it_breaks() {
        let hub = hub();
        let (_, envelopes) = envelopes(3);
        let good = pb::Receipt::from(&proofs(&hub, &envelopes)[0]);
        let refused = |receipt: pb::Receipt| ReceiptProof::try_from(receipt).unwrap_err().to_string();
        assert!(ReceiptProof::decode(b"\xff\xff\xff").unwrap_err().to_string().contains("receipt"));
        let short = pb::Receipt { root_signature: Bytes::from_static(b"abc"), ..good.clone() };
        assert!(refused(short).contains("receipt.root_signature"));
        assert!(refused(pb::Receipt { leaf_index: 3, ..good.clone() }).contains("receipt.leaf_index"));
        let hash = pb::Receipt { path: vec![Bytes::from_static(b"short")], ..good.clone() };
        assert!(refused(hash).contains("receipt.path"));
        let long = pb::Receipt { path: vec![Bytes::from(vec![0; 32]); 33], ..good.clone() };
        assert!(refused(long).contains("at most 32"));
        assert!(refused(pb::Receipt { key_id: "no spaces".into(), ..good }).contains("receipt.key_id"));
    }
}
