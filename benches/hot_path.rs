//! The per-message costs of the hot path, one piece at a time.
//!
//! Expected on the reference 2-core machine (shared/STACK.md): sign ~13.5 us; verify
//! ~30-36 us, verify_strict ~36-41 us; batch verification ~16 us per signature at 64;
//! encode + decode of a ~300-byte message well under 1 us (plus validation); a ledger
//! posting of two legs around 1 us. Run with `cargo bench --bench hot_path`.

use corridor::crypto::{KeyDirectory, KeyId, SignedEnvelope, SigningIdentity};
use corridor::ledger::{Account, AccountId, AccountKind, Ledger, Posting, PostingId};
use corridor::model::*;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

fn sample_message() -> Message {
    corridor::sim::sample_credit_transfer(bic("BANKRUMMXXX"), bic("BANKIRTHXXX"))
}

fn signing(c: &mut Criterion) {
    let identity = SigningIdentity::generate(bic("BANKRUMMXXX"), KeyId::parse("k1").unwrap());
    let mut directory = KeyDirectory::new();
    directory.register(identity.bic(), identity.key_id().clone(), &identity.verifying_key_bytes()).unwrap();
    let message = sample_message();
    c.bench_function("sign pacs.008 (encode once + sign)", |b| b.iter(|| identity.sign(black_box(&message))));
    let envelope = identity.sign(&message);
    c.bench_function("verify_strict one envelope", |b| {
        b.iter(|| directory.verify(black_box(&envelope)).unwrap())
    });
    // The plain (non-strict) check, for comparison: Corridor never uses it alone.
    let key = *directory.key(identity.bic(), identity.key_id()).unwrap();
    let input = corridor::crypto::signing_input(envelope.signer, &envelope.key_id, &envelope.payload);
    c.bench_function("verify one envelope (not strict)", |b| {
        b.iter(|| ed25519_dalek::Verifier::verify(&key, black_box(&input), &envelope.signature).unwrap())
    });
    let mut group = c.benchmark_group("verify_batch");
    for size in [16usize, 64] {
        let envelopes: Vec<SignedEnvelope> = (0..size).map(|_| identity.sign(&sample_message())).collect();
        let refs: Vec<&SignedEnvelope> = envelopes.iter().collect();
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &refs, |b, refs| {
            b.iter(|| directory.verify_batch(black_box(refs)))
        });
    }
    group.finish();
}

fn codec(c: &mut Criterion) {
    let message = sample_message();
    let bytes = wire::encode_message(&message);
    c.bench_function("encode pacs.008", |b| b.iter(|| wire::encode_message(black_box(&message))));
    c.bench_function("decode + validate pacs.008", |b| {
        b.iter(|| wire::decode_message(black_box(&bytes)).unwrap())
    });
}

fn ledger(c: &mut Criterion) {
    let cny = Currency::parse("CNY").unwrap();
    let cash = AccountId::parse("CASH").unwrap();
    let customer = AccountId::parse("C001").unwrap();
    let mut ledger = Ledger::new();
    ledger.open_account(Account::new(cash.clone(), AccountKind::Cash, cny, "cash")).unwrap();
    ledger.open_account(Account::new(customer.clone(), AccountKind::Customer, cny, "customer")).unwrap();
    let one = Amount::from_minor_units(1, cny).unwrap();
    let mut n = 0u64;
    c.bench_function("ledger posting, two legs", |b| {
        b.iter(|| {
            n += 1;
            let id = PostingId::parse(&format!("p{n}")).unwrap();
            ledger.post(Posting::transfer(id, &cash, &customer, one, "bench")).unwrap()
        })
    });
}

criterion_group!(benches, signing, codec, ledger);
criterion_main!(benches);
