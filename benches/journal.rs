//! Journal appends to the hub's log: one batch and fdatasync per message, against
//! batches of 64 and 256, and group commit with the derived state applied behind.
//!
//! Before the log (SQLite in WAL mode with `synchronous=FULL` as the journal), the
//! reference 2-core machine (shared/STACK.md) did ~4,300 records/s with one fsync per
//! record and ~230,000/s batched by 64. Run with `cargo bench --bench journal`.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use corridor::crypto::{KeyId, SigningIdentity};
use corridor::hub::{AcceptedRecord, HubJournal, HubRecord};
use corridor::model::*;
use corridor::store::{Backend, GroupCommit, LogWriter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn bic(text: &str) -> Bic {
    Bic::parse(text).unwrap()
}

/// A realistic accepted pacs.008 (about 300 bytes of payload), with a fresh id and
/// output sequence number each time.
struct Records {
    template: AcceptedRecord,
    next_osn: AtomicU64,
}

impl Records {
    fn new() -> Self {
        let identity = SigningIdentity::generate(bic("BANKRUMMXXX"), KeyId::parse("k1").unwrap());
        let message = corridor::sim::sample_credit_transfer(bic("BANKRUMMXXX"), bic("BANKIRTHXXX"));
        let header = message.header().clone();
        let envelope = identity.sign(&message);
        let template = AcceptedRecord {
            sender: header.sender,
            via: None,
            next_hop: None,
            message_id: header.message_id,
            isn: 1,
            receiver: header.receiver,
            osn: 0,
            uetr: header.uetr,
            message_type: MessageType::Pacs008,
            receipt: Bytes::from(identity.sign_receipt(&envelope).to_bytes().to_vec()),
            envelope,
            accepted_unix_ms: 1_796_000_000_000,
            created_unix_ms: header.creation_time_unix_ms,
        };
        Self { template, next_osn: AtomicU64::new(1) }
    }

    fn next(&self) -> HubRecord {
        let osn = self.next_osn.fetch_add(1, Ordering::Relaxed);
        let record =
            AcceptedRecord { message_id: MessageId::generate(), osn, isn: osn, ..self.template.clone() };
        HubRecord::Accepted(Box::new(record))
    }
}

fn journal_dir() -> tempfile::TempDir {
    // On the project's own disk, as a real data directory would be, not on a tmpfs.
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn appends(c: &mut Criterion) {
    let records = Records::new();
    let mut group = c.benchmark_group("hub journal append (durable)");
    group.sample_size(10);
    for batch in [1usize, 64, 256] {
        let dir = journal_dir();
        let store = HubJournal::open(dir.path(), bic("CRDRZZ00XXX")).unwrap();
        let mut journal = LogWriter::<HubRecord>::new(store.log, "bench");
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_with_input(BenchmarkId::new("messages per fsync", batch), &batch, |b, &batch| {
            b.iter_batched(
                || (0..batch).map(|_| records.next()).collect::<Vec<HubRecord>>(),
                |batch| journal.write_batch(&batch).unwrap(),
                criterion::BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let records = Records::new();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut group = c.benchmark_group("group commit, 64 sessions appending and awaiting");
    group.sample_size(10);
    const APPENDS: u64 = 4_096;
    group.throughput(Throughput::Elements(APPENDS));
    let dir = journal_dir();
    let store = HubJournal::open(dir.path(), bic("CRDRZZ00XXX")).unwrap();
    let writer = LogWriter::<HubRecord>::new(store.log, "bench");
    let journal = std::sync::Arc::new(GroupCommit::start_with(writer, store.derived, "bench"));
    group.bench_function("4096 appends", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut sessions = tokio::task::JoinSet::new();
                for _ in 0..64 {
                    let (journal, batch): (_, Vec<_>) =
                        (journal.clone(), (0..APPENDS / 64).map(|_| records.next()).collect());
                    sessions.spawn(async move {
                        // Each session pipelines its appends and awaits the last one.
                        let mut last = Default::default();
                        for record in batch {
                            last = journal.append(vec![record]);
                        }
                        journal.wait(last).await.unwrap();
                    });
                }
                sessions.join_all().await;
            })
        })
    });
    group.finish();
}

criterion_group!(benches, appends, group_commit);
criterion_main!(benches);
