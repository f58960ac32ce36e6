//! Signed envelopes (DESIGN.md, "Nobody speaks for another"): a signature covers the
//! exact payload bytes plus signer and key id, so any single flipped bit anywhere in an
//! envelope fails verification, and one participant's signature never passes as another's.

mod common;

use bytes::Bytes;
use common::*;
use corridor::crypto::{
    KeyDirectory, KeyId, ReceiptTree, SignedEnvelope, SigningIdentity, load_signing_key, receipt_leaf,
    save_signing_key,
};
use corridor::model::{Body, Message};
use corridor::pb;
use proptest::prelude::*;

fn key_id(text: &str) -> KeyId {
    KeyId::parse(text).unwrap()
}

fn network() -> (SigningIdentity, SigningIdentity, KeyDirectory) {
    let ru = SigningIdentity::generate(bic(RU), key_id("ru-1"));
    let ir = SigningIdentity::generate(bic(IR), key_id("ir-1"));
    let mut directory = KeyDirectory::new();
    for identity in [&ru, &ir] {
        directory
            .register(identity.bic(), identity.key_id().clone(), &identity.verifying_key_bytes())
            .unwrap();
    }
    (ru, ir, directory)
}

/// The envelope as it travels, with bit `bit` of field `field` flipped, then checked
/// the way a receiver checks it: parse the envelope, then verify.
fn verifies_after_flip(
    directory: &KeyDirectory,
    envelope: &SignedEnvelope,
    field: usize,
    bit: usize,
) -> bool {
    let mut wire = pb::SignedEnvelope::from(envelope);
    let flip = |bytes: &mut Vec<u8>| {
        let index = bit % (bytes.len() * 8);
        bytes[index / 8] ^= 1 << (index % 8);
    };
    match field {
        0 => {
            let mut payload = wire.payload.to_vec();
            flip(&mut payload);
            wire.payload = Bytes::from(payload);
        }
        1 => {
            let mut signature = wire.signature.to_vec();
            flip(&mut signature);
            wire.signature = Bytes::from(signature);
        }
        2 => {
            let mut signer = wire.signer_bic.clone().into_bytes();
            flip(&mut signer);
            wire.signer_bic = String::from_utf8_lossy(&signer).into_owned();
        }
        _ => {
            let mut key = wire.key_id.clone().into_bytes();
            flip(&mut key);
            wire.key_id = String::from_utf8_lossy(&key).into_owned();
        }
    }
    match SignedEnvelope::try_from(wire) {
        Ok(parsed) => directory.verify(&parsed).is_ok(),
        Err(_) => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_flipped_bit_fails_verification(field in 0usize..4, bit in any::<usize>(), kind in 0usize..6) {
        let (ru, ir, mut directory) = network();
        // Register the same public key under a neighbouring BIC and key id too, so a
        // flipped signer or key id cannot fail merely for being unknown: it must fail
        // because the signature covers them.
        directory.register(bic("BANKRUMMXXY"), key_id("ru-1"), &ru.verifying_key_bytes()).unwrap();
        directory.register(ru.bic(), key_id("ru-0"), &ru.verifying_key_bytes()).unwrap();
        let message = &every_message_type()[kind];
        let envelope = ru.sign(message);
        prop_assert!(directory.verify(&envelope).is_ok());
        prop_assert!(!verifies_after_flip(&directory, &envelope, field, bit));
        let _ = ir;
    }
}

#[test]
fn one_participants_signature_never_verifies_as_anothers() {
    let (ru, ir, directory) = network();
    let message = &every_message_type()[0];
    let envelope = ru.sign(message);
    let mut as_ir = envelope.clone();
    as_ir.signer = ir.bic();
    as_ir.key_id = ir.key_id().clone();
    assert!(directory.verify(&as_ir).is_err());
    // Even if both participants had registered the same key id.
    let mut shared_id = KeyDirectory::new();
    shared_id.register(ru.bic(), key_id("k"), &ru.verifying_key_bytes()).unwrap();
    shared_id.register(ir.bic(), key_id("k"), &ir.verifying_key_bytes()).unwrap();
    let ru_k = SigningIdentity::new(ru.bic(), key_id("k"), ru.signing_key().clone());
    let mut stolen = ru_k.sign(message);
    assert!(shared_id.verify(&stolen).is_ok());
    stolen.signer = ir.bic();
    assert!(shared_id.verify(&stolen).is_err());
}

#[test]
fn weak_and_conflicting_keys_are_refused_at_registration() {
    let mut directory = KeyDirectory::new();
    // The identity point: a small-order ("weak") key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(directory.register(bic(RU), key_id("weak"), &identity).is_err());
    let (ru, ir, _) = network();
    directory.register(ru.bic(), key_id("k1"), &ru.verifying_key_bytes()).unwrap();
    directory.register(ru.bic(), key_id("k1"), &ru.verifying_key_bytes()).unwrap();
    assert!(directory.register(ru.bic(), key_id("k1"), &ir.verifying_key_bytes()).is_err());
}

#[test]
fn signing_carries_the_exact_encoded_bytes() {
    let (ru, _, directory) = network();
    let message = &every_message_type()[0];
    let envelope = ru.sign(message);
    assert_eq!(envelope.payload, corridor::model::wire::encode_message(message));
    assert_eq!(corridor::model::wire::decode_message(&envelope.payload).unwrap(), *message);
    assert!(directory.verify(&envelope).is_ok());
}

#[test]
#[should_panic(expected = "signs only its own messages")]
fn signing_someone_elses_message_is_a_bug() {
    let (_, ir, _) = network();
    ir.sign(&every_message_type()[0]);
}

#[test]
fn batch_verification_finds_the_one_bad_signature() {
    let (ru, ir, directory) = network();
    let messages = every_message_type();
    let mut envelopes: Vec<SignedEnvelope> = messages.iter().map(|m| ru.sign(m)).collect();
    let reply = Message::new(header(IR, RU, messages[1].header().uetr), messages[1].body().clone()).unwrap();
    envelopes.push(ir.sign(&reply));
    let all: Vec<&SignedEnvelope> = envelopes.iter().collect();
    assert!(directory.verify_batch(&all).iter().all(Result::is_ok));
    let mut bad = envelopes[3].clone();
    let mut payload = bad.payload.to_vec();
    payload[5] ^= 0x01;
    bad.payload = payload.into();
    envelopes[3] = bad;
    let all: Vec<&SignedEnvelope> = envelopes.iter().collect();
    let results = directory.verify_batch(&all);
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result.is_err(), index == 3, "envelope {index}");
    }
    assert!(matches!(messages[0].body(), Body::Pacs008(_)));
}

/// A hub receipt binds to the exact envelope it acknowledges: the receipt of one message
/// of a batch verifies for that envelope and for no other (here IR plays the hub).
#[test]
fn hub_receipts_bind_to_the_accepted_envelope() {
    let (ru, ir, directory) = network();
    let envelope = ru.sign(&every_message_type()[0]);
    let neighbour = ru.sign(&every_message_type()[2]);
    let tree = ReceiptTree::new(vec![receipt_leaf(&envelope), receipt_leaf(&neighbour)]);
    let receipts = ir.sign_receipts(&tree);
    assert!(directory.verify_receipt(ir.bic(), &envelope, &receipts[0]).is_ok());
    let other = ru.sign(&every_message_type()[1]);
    assert!(directory.verify_receipt(ir.bic(), &other, &receipts[0]).is_err());
    assert!(directory.verify_receipt(ir.bic(), &neighbour, &receipts[0]).is_err(), "its neighbour's leaf");
    assert!(directory.verify_receipt(ru.bic(), &envelope, &receipts[0]).is_err(), "another signer");
}

#[test]
fn key_files_are_owner_only_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signing.key");
    let (ru, ir, _) = network();
    save_signing_key(&path, ru.signing_key()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(load_signing_key(&path).unwrap().to_bytes(), ru.signing_key().to_bytes());
    assert!(save_signing_key(&path, ir.signing_key()).is_err(), "an existing key file is never replaced");
    assert_eq!(load_signing_key(&path).unwrap().to_bytes(), ru.signing_key().to_bytes());
    std::fs::write(dir.path().join("garbage.key"), "not hex").unwrap();
    let err = load_signing_key(&dir.path().join("garbage.key")).unwrap_err();
    assert!(err.to_string().contains("garbage.key"), "{err}");
}
