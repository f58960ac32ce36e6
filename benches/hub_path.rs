//! The hub's per-message path in process, without the network: sequence check, envelope
//! and schema checks, batch signature verification, RMA, duplicate check, position
//! reservation, journal append (queued to the group-commit writer, not waited for),
//! receipt signature and routing to the receiver's outbox.
//!
//! Expected on this 2-core machine: about one receipt signature (~28 us here, ~13.5 us on
//! the STACK.md reference) plus one batched verification (~20 us here) plus a few
//! microseconds of bookkeeping: ~50 us per message, or ~20,000 messages/s on one core.
//! Run with `cargo bench --bench hub_path`.

use corridor::crypto::SigningIdentity;
use corridor::directory::Directory;
use corridor::hub::{Hub, HubConfig, OperatorAction};
use corridor::model::*;
use corridor::pb;
use corridor::tls::{self, Role};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const BATCH: usize = 64;

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

fn hub_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (ru, ir) = (bic("BANKRUMMXXX"), bic("BANKIRTHXXX"));
    let pki = tls::init(dir.path(), &[ru, ir]).unwrap();
    let directory = Directory::load(pki.root()).unwrap();
    let hub = Hub::open(
        HubConfig::default(),
        directory,
        pki.signing_identity(Role::Hub).unwrap(),
        &pki.hub_data_dir(),
    )
    .unwrap();
    let liquidity = Amount::parse("90000000000000000", Currency::parse("CNY").unwrap()).unwrap();
    runtime.block_on(hub.operate(OperatorAction::Fund(ru, liquidity))).unwrap();
    let sender: SigningIdentity = pki.signing_identity(Role::Bank(ru)).unwrap();
    let mut next_isn = 1u64;
    let mut group = c.benchmark_group("hub");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("submit_batch of 64 pacs.008 (per batch)", |b| {
        b.iter_batched(
            || {
                (0..BATCH)
                    .map(|_| {
                        let envelope = sender.sign(&corridor::sim::sample_credit_transfer(ru, ir));
                        let submit = pb::Submit {
                            isn: next_isn,
                            envelope: Some((&envelope).into()),
                            possible_duplicate: false,
                        };
                        next_isn += 1;
                        submit
                    })
                    .collect::<Vec<_>>()
            },
            |submits| {
                let answers = hub.submit_batch(ru, submits);
                assert!(
                    answers.iter().all(|(frame, _)| matches!(frame, pb::session_response::Frame::Ack(_)))
                );
                answers
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, hub_path);
criterion_main!(benches);
