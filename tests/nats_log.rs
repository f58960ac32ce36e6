//! The hub's replicated log on NATS JetStream (`store::nats`), on a real 3-node cluster of
//! `nats-server` processes on loopback (skipped with a notice when `nats-server` is missing,
//! failed under CI): what it appends is read back whole and in order, from any reader; a
//! second writer fences the first; a retried append is stored once; another identity's
//! stream and damage in the chain are refused.

mod common;

use common::nats::NatsCluster;
use corridor::store::StoreError;
use corridor::store::log::{Batch, RecordLog};
use corridor::store::nats::{Lease, NatsLog};

const HUB: &str = "hub BANKCNSHXXX";

/// A batch of the records `first..first + count`, each saying its own sequence.
fn batch(first: u64, count: u64) -> Batch {
    let mut batch = Batch::default();
    for seq in first..first + count {
        batch.push(|out| out.extend_from_slice(record(seq).as_bytes()));
    }
    batch
}

fn record(seq: u64) -> String {
    format!("record {seq} {}", "x".repeat((seq % 7) as usize * 50))
}

/// Every record from `from` on, as (sequence, text, ends its batch); and the last sequence.
fn read_all(log: &NatsLog, from: u64) -> (Vec<(u64, String, bool)>, u64) {
    let mut seen = Vec::new();
    let last = log
        .read_from(from, &mut |entry| {
            seen.push((entry.seq, String::from_utf8(entry.bytes.to_vec()).unwrap(), entry.ends_batch));
            Ok(())
        })
        .unwrap();
    (seen, last)
}

/// What `read_all` must find after batches of `sizes` records were appended from 1.
fn expected(sizes: &[u64], from: u64) -> Vec<(u64, String, bool)> {
    let mut all = Vec::new();
    let mut seq = 1;
    for &size in sizes {
        for offset in 0..size {
            all.push((seq, record(seq), offset == size - 1));
            seq += 1;
        }
    }
    all.retain(|(seq, _, _)| *seq >= from);
    all
}

/// Appends batches of `sizes` records to `log` from its end.
fn append_batches(log: &mut NatsLog, sizes: &[u64]) {
    for &size in sizes {
        let after = log.last();
        assert_eq!(log.append(after, &batch(after + 1, size)).unwrap(), after + size);
    }
}

/// RecordLog's contract on NATS: appends return the new last sequence; `read_from` gives
/// every record from any sequence (mid-batch too) with `ends_batch` where each append ended,
/// again and again as a standby follows the stream; another NatsLog opened on the stream
/// later (a restarted or standby hub) finds the same `last` and records, and its reads
/// follow the first's new appends. Empty batches write nothing; an append after the wrong
/// sequence is fenced before anything is sent.
#[test]
fn appends_are_read_back_whole_and_in_order_by_any_reader() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "basics", HUB, 3).unwrap();
    assert_eq!(log.last(), 0);
    assert_eq!(read_all(&log, 1), (vec![], 0));
    assert_eq!(log.append(0, &Batch::default()).unwrap(), 0, "an empty batch writes nothing");
    let sizes = [1, 3, 2, 5, 1];
    append_batches(&mut log, &sizes);
    assert_eq!(log.last(), 12);
    for from in [0, 1, 2, 4, 5, 6, 12, 13, 20] {
        let (seen, last) = read_all(&log, from);
        assert_eq!(seen, expected(&sizes, from), "read from {from}");
        assert_eq!(last, 12);
    }
    match log.append(5, &batch(6, 1)) {
        Err(StoreError::Fenced { expected: 5, last: 12 }) => {}
        other => panic!("an append after the wrong sequence must be fenced: {other:?}"),
    }

    let follower = NatsLog::open(&cluster.servers(), "basics", HUB, 3).unwrap();
    assert_eq!(follower.last(), 12);
    assert_eq!(read_all(&follower, 1).0, expected(&sizes, 1));
    assert_eq!(read_all(&follower, 11).0, expected(&sizes, 11), "from inside the last batch");
    // It follows the writer's new appends, polling from its last record + 1.
    let mut followed = read_all(&follower, 1).0;
    for more in [[2u64], [4]] {
        append_batches(&mut log, &more);
        let (seen, last) = read_all(&follower, followed.last().unwrap().0 + 1);
        followed.extend(seen);
        assert_eq!(last, log.last());
    }
    assert_eq!(followed, expected(&[1, 3, 2, 5, 1, 2, 4], 1));
    assert_eq!(follower.last(), 18, "reads move a reader's end forward");
}

/// The log is synchronous and its callers include async code: called from inside a tokio
/// runtime (here a test's current-thread runtime) it must neither panic (a `block_on`
/// inside a runtime does) nor deadlock, and dropping it there must not panic either.
#[tokio::test]
async fn works_when_called_from_inside_a_tokio_runtime() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "in_runtime", HUB, 3).unwrap();
    append_batches(&mut log, &[2, 3]);
    assert_eq!(read_all(&log, 1).0, expected(&[2, 3], 1));
    drop(log);
    let reopened = NatsLog::open(&cluster.servers(), "in_runtime", HUB, 3).unwrap();
    assert_eq!(reopened.last(), 5);
}

/// Fencing (DESIGN: one writer per log): a second writer on the same stream that appends
/// first makes the first writer's next append fail with `Fenced`, writing nothing; the
/// fenced writer stays fenced even when it names the stream's true end (a hub that lost
/// the log must stop, not catch up and carry on).
#[test]
fn a_second_writer_fences_the_first_for_good() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut first = NatsLog::open(&cluster.servers(), "fencing", HUB, 3).unwrap();
    append_batches(&mut first, &[2]);
    let mut second = NatsLog::open(&cluster.servers(), "fencing", HUB, 3).unwrap();
    assert_eq!(second.last(), 2);
    append_batches(&mut second, &[3]);

    match first.append(2, &batch(3, 1)) {
        Err(StoreError::Fenced { expected: 2, last: 5 }) => {}
        other => panic!("the stale writer's append must be fenced: {other:?}"),
    }
    match first.append(5, &batch(6, 1)) {
        Err(StoreError::Fenced { .. }) => {}
        other => panic!("a fenced writer stays fenced: {other:?}"),
    }
    let reader = NatsLog::open(&cluster.servers(), "fencing", HUB, 3).unwrap();
    assert_eq!(read_all(&reader, 1).0, expected(&[2, 3], 1), "the fenced appends wrote nothing");
    append_batches(&mut second, &[1]);
    assert_eq!(reader.last(), 5);
    assert_eq!(read_all(&reader, 1).0, expected(&[2, 3, 1], 1));
}

/// A publish whose acknowledgment is lost is retried with the same message id and expected
/// sequence; when the first attempt had landed, the retry is reported as the success it was
/// (the same new last sequence) and the batch is stored once, so the outcome of an append
/// is never unknown and never doubled.
#[test]
fn a_retried_append_that_had_landed_is_stored_once() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "retry", HUB, 3).unwrap();
    append_batches(&mut log, &[2]);
    log.publish_and_lose_ack(2, &batch(3, 4));
    let reader = NatsLog::open(&cluster.servers(), "retry", HUB, 3).unwrap();
    assert_eq!(reader.last(), 6, "the first attempt landed");
    assert_eq!(log.append(2, &batch(3, 4)).unwrap(), 6, "its retry is the same append's success");
    append_batches(&mut log, &[1]);
    assert_eq!(read_all(&reader, 1).0, expected(&[2, 4, 1], 1), "stored once, and the log goes on");
}

/// A stream holds one identity's records: opening it as another is refused with an error
/// naming both, and bad arguments are refused before anything is created.
#[test]
fn another_identitys_stream_and_bad_arguments_are_refused() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "owned", HUB, 3).unwrap();
    append_batches(&mut log, &[1]);
    let refused = |result: Result<NatsLog, StoreError>| match result {
        Err(StoreError::Unusable { reason, .. }) => reason,
        Err(other) => panic!("expected Unusable, got {other}"),
        Ok(_) => panic!("expected a refusal"),
    };
    let reason = refused(NatsLog::open(&cluster.servers(), "owned", "hub BANKRUMMXXX", 3));
    assert!(reason.contains(HUB) && reason.contains("hub BANKRUMMXXX"), "{reason}");
    assert!(refused(NatsLog::open(&cluster.servers(), "a.b", HUB, 3)).contains("not a usable name"));
    assert!(refused(NatsLog::open(&cluster.servers(), "owned", "", 3)).contains("identity"));
    assert!(refused(NatsLog::open(&cluster.servers(), "owned", HUB, 0)).contains("replicas"));
    assert!(refused(NatsLog::open("", "owned", HUB, 3)).contains("no NATS server"));
    assert!(refused(NatsLog::open("127.0.0.1:1", "owned", HUB, 3)).contains("cannot connect"));
    assert_eq!(log.last(), 1);

    // A batch larger than the servers take is refused before it is sent; the log goes on.
    let mut huge = Batch::default();
    huge.push(|out| out.resize(log.batch_bytes_max() + 1, b'x'));
    match log.append(1, &huge) {
        Err(StoreError::Engine(reason)) => assert!(reason.contains("max_payload"), "{reason}"),
        other => panic!("an oversized batch must be refused: {other:?}"),
    }
    let mut largest = Batch::default();
    largest.push(|out| out.resize(log.batch_bytes_max() - 4, b'y'));
    assert_eq!(log.append(1, &largest).unwrap(), 2, "the largest batch the servers take");
    append_batches(&mut log, &[1]);
    assert_eq!(read_all(&log, 3).0, expected(&[1, 1, 1], 3));
}

/// Damage in the chain is found on read: a message on the log's subject that is not a
/// batch (published by hand, as anything with publish rights could), and a batch deleted
/// from the middle of a stream that allows deletes, each refuse the read with an error
/// naming the stream message, rather than skipping it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_missing_batch_is_refused_on_read() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let servers = cluster.servers();
    let client = async_nats::connect(cluster.server(0)).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);

    let mut log = NatsLog::open(&servers, "damaged", HUB, 3).unwrap();
    append_batches(&mut log, &[2, 1]);
    let ack = jetstream.publish("corridor.damaged.log", "not a batch".into()).await.unwrap();
    assert_eq!(ack.await.unwrap().sequence, 4);
    let refusal = |log: &NatsLog| match log.read_from(1, &mut |_| Ok(())) {
        Err(StoreError::Unusable { reason, .. }) => reason,
        other => panic!("a damaged stream must be refused: {other:?}"),
    };
    let reason = refusal(&log);
    assert!(reason.contains("stream message 4") && reason.contains("not a Corridor batch"), "{reason}");
    match NatsLog::open(&servers, "damaged", HUB, 3) {
        Err(StoreError::Unusable { reason, .. }) => {
            assert!(reason.contains("not a Corridor batch"), "{reason}")
        }
        other => panic!("a stream ending in damage cannot be opened: {:?}", other.map(|log| log.last())),
    }

    // A stream made by hand that allows deletes: a batch removed from its middle.
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: "holed".into(),
            subjects: vec!["corridor.holed.log".into()],
            num_replicas: 3,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut log = NatsLog::open(&servers, "holed", HUB, 3).unwrap();
    append_batches(&mut log, &[2, 3, 1]);
    let stream = jetstream.get_stream("holed").await.unwrap();
    assert!(stream.delete_message(3).await.unwrap(), "stream message 3 holds records 3..5");
    let reason = refusal(&NatsLog::open(&servers, "holed", HUB, 3).unwrap());
    assert!(reason.contains("stream message 3 is missing"), "{reason}");
}

/// The lease (one active hub at a time): taken by one, refused to another while its holder
/// renews it, taken by the other once the holder stops renewing and the servers let the
/// entry expire (no clocks compared); the old holder's renewal then fails, so it learns it
/// lost the lease. A released lease is free at once. A bucket is refused under another ttl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_has_one_holder_and_passes_on_when_not_renewed() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let servers = cluster.servers();
    let ttl = std::time::Duration::from_secs(2);
    let mut a = Lease::connect(&servers, "hubs", ttl, 3).await.unwrap();
    let mut b = Lease::connect(&servers, "hubs", ttl, 3).await.unwrap();
    assert_eq!(a.holder().await.unwrap(), None);
    assert!(!a.renew().await.unwrap(), "nothing to renew before it is taken");
    assert!(a.acquire("https://hub-a").await.unwrap());
    assert_eq!(b.holder().await.unwrap().as_deref(), Some("https://hub-a"));
    // Renewed every quarter ttl for two ttls: never free for another.
    for _ in 0..8 {
        assert!(!b.acquire("https://hub-b").await.unwrap(), "refused while renewed");
        tokio::time::sleep(ttl / 4).await;
        assert!(a.renew().await.unwrap());
    }
    // A stops renewing: B takes it once the entry expired.
    let mut attempts = 0;
    while !b.acquire("https://hub-b").await.unwrap() {
        attempts += 1;
        assert!(attempts < 300, "the lease never lapsed");
        tokio::time::sleep(ttl / 20).await;
    }
    assert!(attempts > 0, "the lease was free before its ttl passed");
    assert_eq!(a.holder().await.unwrap().as_deref(), Some("https://hub-b"));
    assert!(!a.renew().await.unwrap(), "the old holder learns it lost the lease");
    assert!(!a.renew().await.unwrap());
    assert!(b.renew().await.unwrap());
    // Released, it is free at once; a release by a non-holder changes nothing.
    a.release().await.unwrap();
    assert_eq!(a.holder().await.unwrap().as_deref(), Some("https://hub-b"));
    b.release().await.unwrap();
    assert_eq!(a.holder().await.unwrap(), None);
    assert!(a.acquire("https://hub-a").await.unwrap());
    assert!(!b.renew().await.unwrap());

    match Lease::connect(&servers, "hubs", ttl * 2, 3).await {
        Err(StoreError::Unusable { reason, .. }) => assert!(reason.contains("ttl"), "{reason}"),
        other => panic!("a bucket under another ttl must be refused: {:?}", other.map(|_| ())),
    }
    assert!(matches!(Lease::connect(&servers, "bad.name", ttl, 3).await, Err(StoreError::Unusable { .. })));
}

/// Appends `count` batches of 1 to 4 records from the log's end, returning their sizes.
fn append_some(log: &mut NatsLog, count: u64) -> Vec<u64> {
    let sizes: Vec<u64> = (0..count).map(|i| 1 + (log.last() + i) % 4).collect();
    append_batches(log, &sizes);
    sizes
}

/// Waits until node `i` holds the same copy of `stream` as the leader (same message count
/// and last sequence, from each node's own monitoring), which is what catching up means.
fn wait_caught_up(cluster: &NatsCluster, i: usize, stream: &str) {
    cluster.wait_until(&format!("node {i} caught up on {stream}"), |cluster| {
        let Some(leader) = cluster.stream_leader(stream) else { return false };
        let theirs = cluster.stream_state(leader, stream);
        theirs.is_some() && cluster.stream_state(i, stream) == theirs
    });
}

/// Losing NATS nodes loses no acknowledged batch (issue 22, "NATS nodes lost"): kill -9 of
/// the stream's leader node, while the writer goes on appending through the election, then
/// of a follower; each restarted node catches up (its own stored copy equals the leader's),
/// and every batch acknowledged before, between and after is read back whole and in order.
#[test]
fn acknowledged_batches_survive_losing_the_leader_then_a_follower() {
    let Some(mut cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "nodes", HUB, 3).unwrap();
    let mut sizes = append_some(&mut log, 20);

    let leader = cluster.stream_leader("nodes").expect("the stream has a leader");
    cluster.kill(leader);
    sizes.extend(append_some(&mut log, 20)); // the first waits through the election
    let new_leader = cluster.stream_leader("nodes").expect("a new leader took over");
    assert_ne!(new_leader, leader);
    cluster.restart(leader);
    wait_caught_up(&cluster, leader, "nodes");
    sizes.extend(append_some(&mut log, 10));

    let follower = (0..3).find(|&i| Some(i) != cluster.stream_leader("nodes")).unwrap();
    cluster.kill(follower);
    sizes.extend(append_some(&mut log, 20));
    cluster.restart(follower);
    wait_caught_up(&cluster, follower, "nodes");
    sizes.extend(append_some(&mut log, 10));

    let reader = NatsLog::open(&cluster.servers(), "nodes", HUB, 3).unwrap();
    assert_eq!(reader.last(), log.last());
    assert_eq!(read_all(&reader, 1).0, expected(&sizes, 1), "every acknowledged batch, once, in order");
    let (messages, _) = cluster.stream_state(follower, "nodes").unwrap();
    assert_eq!(messages, 1 + sizes.len() as u64, "the genesis and one message per batch");
}

/// With two of three nodes down the stream has no quorum: an append does not return (so
/// its caller acknowledges nothing) for as long as that lasts, rather than failing or
/// succeeding; once the nodes are back it succeeds, stored once, and the log goes on.
/// The append runs on a thread; that it has not returned is checked after the surviving
/// node was seen to count neither other replica as current (no wall-clock assertion).
#[test]
fn an_append_waits_for_quorum_then_succeeds() {
    let Some(mut cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "quorum", HUB, 3).unwrap();
    let mut sizes = append_some(&mut log, 5);
    let survivor = cluster.stream_leader("quorum").expect("the stream has a leader");
    let others: Vec<usize> = (0..3).filter(|&i| i != survivor).collect();
    for &i in &others {
        cluster.kill(i);
    }

    let returned = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&returned);
    let after = log.last();
    let appending = std::thread::spawn(move || {
        let result = log.append(after, &batch(after + 1, 3));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        (log, result)
    });
    cluster.wait_until("the survivor sees its stream without a quorum", |cluster| {
        cluster.stream_lost_quorum(survivor, "quorum")
    });
    assert!(!returned.load(std::sync::atomic::Ordering::SeqCst), "an append returned without a quorum");
    cluster.restart_together(&others);
    let (mut log, result) = appending.join().unwrap();
    assert_eq!(result.unwrap(), after + 3);
    sizes.push(3);
    sizes.extend(append_some(&mut log, 3));
    let reader = NatsLog::open(&cluster.servers(), "quorum", HUB, 3).unwrap();
    assert_eq!(read_all(&reader, 1).0, expected(&sizes, 1), "the waiting append stored once");
}

/// A measurement, not a check (run it with `--ignored --nocapture`; the machine's load
/// makes its figures indicative): appends a second of one-record batches and of 64-record
/// batches of 650-byte records, one append at a time as the journal writer does, then reads
/// everything back from 1 and polls from the end as a standby does.
#[test]
#[ignore]
fn measure_append_and_read_rates() {
    let Some(cluster) = NatsCluster::start(3) else { return };
    let mut log = NatsLog::open(&cluster.servers(), "rates", HUB, 3).unwrap();
    let record = vec![b'r'; 650];
    for records in [1u64, 64] {
        let mut batch = Batch::default();
        for _ in 0..records {
            batch.push(|out| out.extend_from_slice(&record));
        }
        let (started, mut appends) = (std::time::Instant::now(), 0u64);
        while started.elapsed() < std::time::Duration::from_secs(3) {
            log.append(log.last(), &batch).unwrap();
            appends += 1;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "batches of {records}: {:.0} appends/s, {:.0} records/s",
            appends as f64 / seconds,
            (appends * records) as f64 / seconds
        );
    }
    let reader = NatsLog::open(&cluster.servers(), "rates", HUB, 3).unwrap();
    let started = std::time::Instant::now();
    let mut count = 0u64;
    let last = reader
        .read_from(1, &mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(count, last);
    println!("read from 1: {count} records in {seconds:.2} s, {:.0} records/s", count as f64 / seconds);
    let started = std::time::Instant::now();
    for _ in 0..200 {
        reader.read_from(last + 1, &mut |_| Ok(())).unwrap();
    }
    println!("a poll from the end with nothing new: {:.2} ms", started.elapsed().as_secs_f64() * 5.0);
}
