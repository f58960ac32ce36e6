//! The hub's log and lease on NATS JetStream: [`NatsLog`] is a [`RecordLog`] whose batches
//! are the messages of a replicated stream, and [`Lease`] names the one hub that may append.
//!
//! # The stream
//!
//! One stream per log: file storage, `replicas` copies kept by the servers' Raft groups, one
//! subject (`corridor.<stream>.log`), deletes and purges denied. Its first message is the
//! genesis, which names whose log it is; every later message is one batch, the records of
//! one [`RecordLog::append`] (one group commit):
//!
//! ```text
//! genesis (stream sequence 1): "CRDRNGN1" | identity (UTF-8, "hub BIC")
//! batch: "CRDRNBT1" | first record sequence u64 | records u32 | digest of the batch before
//!        (32 bytes) | digest (32 bytes) | body, as `Batch` encodes it
//! digest = SHA-256("CRDRNBT1" | first | records | digest of the batch before | body)
//! ```
//!
//! Numbers are little-endian; the genesis's digest is the SHA-256 of its payload, so the
//! chain starts from the identity. SHA-256 rather than the CRC32C chain of
//! [`super::log::FileLog`]: this log lives on other machines, where anything allowed to
//! publish on its subject can add to it. A cryptographic chain makes the digest of the last
//! batch a hub holds pin every batch before it, so a batch lost, altered, reordered or
//! slipped in is found on replay, where a 32-bit CRC can be matched on purpose and, over
//! billions of batches, by chance. It costs a few milliseconds a megabyte, small beside a
//! replicated round trip.
//!
//! # Appending: fenced, idempotent, never unknown
//!
//! An append publishes its batch with `Nats-Expected-Last-Sequence` set to the stream
//! sequence of the last batch this writer knows, and `Nats-Msg-Id` set to this writer's
//! random id and the batch's first record sequence:
//!
//! - when another writer appended meanwhile, the server refuses it (`WrongLastSequence`): the
//!   append fails with [`StoreError::Fenced`], nothing written, and so does every later one;
//! - when no answer comes (the acknowledgment timed out, the connection dropped, the stream
//!   has no leader during an election or no quorum), the same message is published again,
//!   and again, until an answer comes: the append blocks meanwhile, so its caller acknowledges
//!   nothing. If an attempt had landed, the server's duplicate detection answers the retry
//!   with the original's sequence (within [`DUPLICATE_WINDOW`]); past the window the expected
//!   sequence refuses the retry and the writer finds its own message id in the next message.
//!   An append is never stored twice and its outcome is never unknown.
//!
//! The genesis is in the stream itself, so whose log it is travels with its records (a
//! stream's description can be edited by anyone who can manage streams); openers racing to
//! create the stream publish it with one message id, so one genesis is stored.
//!
//! A message is at most the servers' `max_payload` (1 MiB by default, 64 MiB at most):
//! [`RecordLog::batch_bytes_max`] says how large a batch can be, the journal's writer splits
//! a larger group commit into several appends, and a batch over it is refused before it is
//! sent. A larger `max_payload` (say 8 MiB) makes fewer, larger appends.
//!
//! # Durability
//!
//! An append returns once a majority of the stream's replicas stored its batch. nats-server
//! 2.9 (Debian's) acknowledges once the batch is written to the replicas' files, before any
//! fsync, which it does in the background: acknowledged batches survive the loss (kill -9)
//! of any minority of the servers, and of all of them as processes, but not a power loss of a
//! majority at once. nats-server 2.10 and later have `jetstream { sync_interval: always }`,
//! which syncs every write before it is acknowledged: that is what a real deployment needs
//! for the durability the embedded log ([`super::log::FileLog`]) gives.
//!
//! # Reading
//!
//! [`RecordLog::read_from`] checks every batch it reads (its digest, the digest of the batch
//! before it and that record sequences follow on without a gap) and refuses damage with
//! [`StoreError::Unusable`]. It keeps an index from record sequence to stream sequence of the
//! batches it read or wrote, so a reader that follows the stream (a standby polling from its
//! last record + 1) starts at the right message at once; it fetches the messages it reads with
//! many requests in flight ([`READ_AHEAD`]), answered by the stream's leader, so what it reads
//! is what was acknowledged.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, PublishError, PublishErrorKind,
};
use async_nats::jetstream::kv;
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::stream::{self, RawMessageErrorKind};
use async_nats::jetstream::{self, ErrorCode};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::StoreError;
use super::log::{Batch, Entry, RecordLog};

/// The genesis message's first bytes.
const GENESIS_MAGIC: &[u8; 8] = b"CRDRNGN1";
/// A batch message's first bytes.
const BATCH_MAGIC: &[u8; 8] = b"CRDRNBT1";
/// A batch message's header: magic, first sequence, count, digest before, own digest.
const BATCH_HEADER: usize = 8 + 8 + 4 + 32 + 32;
/// The genesis's message id: openers racing to create the stream publish one genesis.
const GENESIS_MESSAGE_ID: &str = "corridor-genesis";
/// Longest identity a stream's genesis holds.
const IDENTITY_BYTES_MAX: usize = 1024;

/// How long a publish waits for its acknowledgment before it is sent again, and any other
/// request for its answer.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest pause between two attempts of a publish that got no answer.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(1);
/// The log stream's duplicate window: a publish retried within it is answered as a
/// duplicate of the one that landed. Past it the expected last sequence still refuses a
/// second copy, and the writer finds its own message (see the module's documentation).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(300);
/// Messages requested ahead of the one being checked when reading the stream.
pub const READ_AHEAD: usize = 64;
/// Most batches the index keeps: past it every other entry is dropped, so a lookup reads
/// forward from the nearest entry kept (memory stays bounded on a long-running standby).
const INDEX_ENTRIES_MAX: usize = 1 << 16;
/// How long opening, or one request of a read, keeps retrying through errors that pass (no
/// stream leader, no answer) before it fails.
const TRANSIENT_DEADLINE: Duration = Duration::from_secs(30);
/// How often the client pings its server: a dead connection is noticed within two of these.
const PING_INTERVAL: Duration = Duration::from_secs(5);

type Digest = [u8; 32];

/// A [`RecordLog`] on a NATS JetStream stream (see the module's documentation).
pub struct NatsLog {
    /// The client's own runtime: the log's methods are synchronous and called from plain
    /// threads and from inside other runtimes alike, so they hand their work to this one
    /// and wait on a channel (a `block_on` inside another runtime panics).
    runtime: ClientRuntime,
    context: jetstream::Context,
    stream: stream::Stream,
    name: String,
    subject: String,
    /// This writer's random id, the first half of its messages' ids.
    writer_id: String,
    genesis: Digest,
    /// The last batch this log knows: what appends follow. A mutex only because reads
    /// (`&self`) move it forward when they read past it; held for no I/O.
    tail: Mutex<Tail>,
    /// Set once an append was fenced, with the stream's last record sequence then: no
    /// append is tried again.
    fenced: Option<u64>,
    /// Record sequence to stream sequence of batches read or written. Held for no I/O.
    index: Mutex<BTreeMap<u64, Indexed>>,
}

/// The last batch a log knows.
#[derive(Clone, Copy, Debug)]
struct Tail {
    /// Its last record sequence (0 before the first batch).
    last: u64,
    /// Its stream sequence (1, the genesis, before the first batch).
    stream_sequence: u64,
    digest: Digest,
}

/// A batch in the index (keyed by its first record sequence).
#[derive(Clone, Copy, Debug)]
struct Indexed {
    stream_sequence: u64,
    count: u32,
    digest: Digest,
}

/// A decoded batch message, its digest checked.
struct Decoded<'a> {
    first: u64,
    count: u32,
    previous: Digest,
    digest: Digest,
    body: &'a [u8],
}

/// Where a read starts: the stream message, and what is known of the batch before it.
struct Cursor {
    stream_sequence: u64,
    /// The first record sequence of the message at `stream_sequence`, when known.
    next_record: Option<u64>,
    /// The digest of the batch before it, when known.
    previous: Option<Digest>,
}

/// What a publish came to, once the server answered.
enum Published {
    Stored { stream_sequence: u64 },
    Fenced,
    Refused(String),
}

impl NatsLog {
    /// Connects to `servers` ("host:port,host:port,..."; a "nats://" prefix allowed) and opens
    /// the stream `stream` (created if missing, with `replicas` replicas, file storage,
    /// subject `corridor.<stream>.log`), whose records belong to `identity` ("hub BIC"): a
    /// stream holding another identity's records is refused (StoreError::Unusable).
    pub fn open(servers: &str, stream: &str, identity: &str, replicas: usize) -> Result<NatsLog, StoreError> {
        let unusable =
            |reason: String| StoreError::Unusable { path: format!("NATS stream {stream}"), reason };
        check_name(stream).map_err(unusable)?;
        if identity.is_empty() || identity.len() > IDENTITY_BYTES_MAX {
            return Err(unusable(format!("an identity must have 1 to {IDENTITY_BYTES_MAX} bytes")));
        }
        if !(1..=5).contains(&replicas) {
            return Err(unusable(format!("replicas must be 1 to 5 (JetStream's limit), not {replicas}")));
        }
        let addresses = server_addresses(servers).map_err(unusable)?;
        let runtime = ClientRuntime::start()?;
        let subject = format!("corridor.{stream}.log");
        let config = stream::Config {
            name: stream.to_owned(),
            description: Some(format!("Corridor log of {identity}")),
            subjects: vec![subject.clone()],
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: DUPLICATE_WINDOW,
            deny_delete: true,
            deny_purge: true,
            ..Default::default()
        };
        let identity = identity.to_owned();
        let opened = runtime.run(async move {
            let context = connect(addresses).await?;
            let stream = open_stream(&context, config).await?;
            let genesis = check_genesis(&context, &stream, &identity).await?;
            let last_batch = read_last_batch(&stream).await?;
            Ok::<_, String>((context, stream, genesis, last_batch))
        });
        let (context, handle, genesis, last_batch) = opened.map_err(unusable)?;
        let mut index = BTreeMap::new();
        let tail = match last_batch {
            Some((first, batch)) => {
                index.insert(first, batch);
                let last = first + u64::from(batch.count) - 1;
                Tail { last, stream_sequence: batch.stream_sequence, digest: batch.digest }
            }
            None => Tail { last: 0, stream_sequence: 1, digest: genesis },
        };
        Ok(NatsLog {
            runtime,
            context,
            stream: handle,
            name: stream.to_owned(),
            subject,
            writer_id: random_id(),
            genesis,
            tail: Mutex::new(tail),
            fenced: None,
            index: Mutex::new(index),
        })
    }

    /// This writer's id: the first part of the `Nats-Msg-Id` of every batch it publishes
    /// (the second is the batch's first record sequence).
    pub fn writer_id(&self) -> &str {
        &self.writer_id
    }

    /// The stream's name.
    pub fn stream_name(&self) -> &str {
        &self.name
    }

    /// Publishes the message [`RecordLog::append`] would publish for `batch` after `after`,
    /// waits for the answer and forgets it, as an append whose acknowledgment was lost does: the next
    /// `append` of the same batch is its retry. For the tests of that retry.
    #[doc(hidden)]
    pub fn publish_and_lose_ack(&mut self, after: u64, batch: &Batch) {
        let tail = *self.tail.get_mut().expect("tail lock");
        assert_eq!(after, tail.last, "the lost publish follows the log's end");
        let (payload, _) = encode_batch(tail.last + 1, batch.body(), &tail.digest);
        let message = PublishMessage::build()
            .payload(payload)
            .message_id(format!("{}-{}", self.writer_id, tail.last + 1))
            .expected_last_sequence(tail.stream_sequence);
        let (context, subject) = (self.context.clone(), self.subject.clone());
        self.run(async move {
            if let Ok(ack) = context.send_publish(subject, message).await {
                let _ = ack.await;
            }
        });
    }

    fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> T {
        self.runtime.run(future)
    }

    fn unusable(&self, reason: String) -> StoreError {
        StoreError::Unusable { path: format!("NATS stream {}", self.name), reason }
    }

    /// Where a read from record `from` starts, from the index.
    fn locate(&self, from: u64) -> Cursor {
        let index = self.index.lock().expect("index lock");
        let genesis = Cursor { stream_sequence: 2, next_record: Some(1), previous: Some(self.genesis) };
        let Some((&first, entry)) = index.range(..=from).next_back() else {
            return genesis;
        };
        let end = first + u64::from(entry.count);
        if from >= end {
            // After this batch: start at the next message, chained to it.
            return Cursor {
                stream_sequence: entry.stream_sequence + 1,
                next_record: Some(end),
                previous: Some(entry.digest),
            };
        }
        match index.range(..first).next_back() {
            Some((&before, previous))
                if before + u64::from(previous.count) == first
                    && previous.stream_sequence + 1 == entry.stream_sequence =>
            {
                Cursor {
                    stream_sequence: entry.stream_sequence,
                    next_record: Some(first),
                    previous: Some(previous.digest),
                }
            }
            _ if entry.stream_sequence == 2 => genesis,
            // The batch before is not indexed: read it too, to learn its digest.
            _ => Cursor { stream_sequence: entry.stream_sequence - 1, next_record: None, previous: None },
        }
    }

    /// Records a batch read or written in the index, thinning it when full, and moves the
    /// tail forward when the batch is past it.
    fn remember(&self, stream_sequence: u64, first: u64, count: u32, digest: Digest) {
        let mut index = self.index.lock().expect("index lock");
        index.insert(first, Indexed { stream_sequence, count, digest });
        if index.len() > INDEX_ENTRIES_MAX {
            let last = index.keys().next_back().copied();
            let mut position = 0usize;
            index.retain(|key, _| {
                position += 1;
                position.is_multiple_of(2) || Some(*key) == last
            });
        }
        drop(index);
        let mut tail = self.tail.lock().expect("tail lock");
        if stream_sequence > tail.stream_sequence {
            *tail = Tail { last: first + u64::from(count) - 1, stream_sequence, digest };
        }
    }

    /// Checks one message read at `stream_sequence` against `cursor`, visits its records
    /// from `from` on, and moves `cursor` past it.
    fn check_and_visit(
        &self,
        message: &StreamMessage,
        cursor: &mut Cursor,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        let at = cursor.stream_sequence;
        let batch = decode_batch(&message.payload)
            .map_err(|reason| self.unusable(format!("stream message {at}: {reason}")))?;
        if let Some(expected) = cursor.next_record.filter(|&expected| expected != batch.first) {
            return Err(self.unusable(format!(
                "stream message {at} holds records from {} where record {expected} was due: a batch is \
                 missing or out of order",
                batch.first
            )));
        }
        if cursor.previous.is_some_and(|previous| previous != batch.previous) {
            return Err(self.unusable(format!(
                "stream message {at} (records from {}) was not written after the batch before it: the \
                 chain of digests is broken (a batch lost, altered or slipped in)",
                batch.first
            )));
        }
        let last_index = batch.count as usize - 1;
        for (offset, record) in Batch::records(batch.body).enumerate() {
            let seq = batch.first + offset as u64;
            let bytes = record.map_err(|reason| self.unusable(format!("stream message {at}: {reason}")))?;
            if seq >= from {
                visit(Entry { seq, bytes, ends_batch: offset == last_index })
                    .map_err(|reason| self.unusable(reason))?;
            }
        }
        self.remember(at, batch.first, batch.count, batch.digest);
        *cursor = Cursor {
            stream_sequence: at + 1,
            next_record: Some(batch.first + u64::from(batch.count)),
            previous: Some(batch.digest),
        };
        Ok(())
    }

    /// Reads what the stream's last message says, to name it in a fenced append's error.
    fn stream_last_record(&self) -> Option<u64> {
        let stream = self.stream.clone();
        self.run(async move {
            let info = stream.get_info().await.ok()?;
            let last = info.state.last_sequence;
            if last < 2 {
                return Some(0);
            }
            let message = stream.get_raw_message(last).await.ok()?;
            let batch = decode_batch(&message.payload).ok()?;
            Some(batch.first + u64::from(batch.count) - 1)
        })
    }
}

/// The NATS client's own runtime (one worker thread).
struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl ClientRuntime {
    fn start() -> Result<ClientRuntime, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("corridor-nats")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Engine(format!("cannot start the NATS client's runtime: {e}")))?;
        Ok(ClientRuntime(Some(runtime)))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("the runtime lives until dropped").handle()
    }

    /// Hands `future` to the runtime and waits for its output on a channel, so that it can
    /// be called from any thread, inside another runtime too.
    fn run<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static) -> T {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver.recv().expect("a NATS call ran to its end (it panicked otherwise)")
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        // Dropping a runtime waits for its tasks, which panics inside another runtime.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl RecordLog for NatsLog {
    /// The servers' `max_payload` less this log's header: the writer splits larger batches
    /// (a larger one is refused here, nothing sent).
    fn batch_bytes_max(&self) -> usize {
        let max_payload = self.context.client().server_info().max_payload;
        max_payload.saturating_sub(BATCH_HEADER + 1024) // headroom for the NATS headers
    }

    fn last(&self) -> u64 {
        self.tail.lock().expect("tail lock").last
    }

    fn append(&mut self, after: u64, batch: &Batch) -> Result<u64, StoreError> {
        if let Some(last) = self.fenced {
            return Err(StoreError::Fenced { expected: after, last });
        }
        let tail = *self.tail.get_mut().expect("tail lock");
        if after != tail.last {
            return Err(StoreError::Fenced { expected: after, last: tail.last });
        }
        if batch.is_empty() {
            return Ok(tail.last);
        }
        if batch.body().len() > self.batch_bytes_max() {
            return Err(StoreError::Engine(format!(
                "NATS stream {}: a batch of {} bytes is over the {} an append takes (nothing was written): {}",
                self.name,
                batch.body().len(),
                self.batch_bytes_max(),
                MAX_PAYLOAD_ADVICE
            )));
        }
        let first = tail.last + 1;
        let (payload, digest) = encode_batch(first, batch.body(), &tail.digest);
        let count = Batch::records(batch.body()).count() as u32;
        let message_id = format!("{}-{first}", self.writer_id);
        let published = self.run(publish_until_answered(
            self.context.clone(),
            self.stream.clone(),
            self.subject.clone(),
            message_id,
            tail.stream_sequence,
            payload,
        ));
        match published {
            Published::Stored { stream_sequence } => {
                assert_eq!(
                    stream_sequence,
                    tail.stream_sequence + 1,
                    "a stored batch follows the expected one"
                );
                self.remember(stream_sequence, first, count, digest);
                Ok(first + u64::from(count) - 1)
            }
            Published::Fenced => {
                let last = self.stream_last_record().unwrap_or(tail.last);
                tracing::error!(stream = %self.name, after, last, "another writer appended to the log: this one is fenced and appends nothing more");
                self.fenced = Some(last);
                Err(StoreError::Fenced { expected: after, last })
            }
            Published::Refused(reason) => Err(StoreError::Engine(format!(
                "NATS stream {} refused an append (nothing was written): {reason}",
                self.name
            ))),
        }
    }

    fn read_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<u64, StoreError> {
        let from = from.max(1);
        let mut cursor = self.locate(from);
        let stream = self.stream.clone();
        let end =
            self.run(async move {
                retry_transient(|| stream.get_info()).await.map(|info| info.state.last_sequence)
            })
            .map_err(|e| {
                StoreError::Engine(format!("NATS stream {}: cannot read its state: {e}", self.name))
            })?;
        if end >= cursor.stream_sequence {
            let messages = Prefetch::start(self, cursor.stream_sequence, end);
            for at in cursor.stream_sequence..=end {
                let message = match messages.next() {
                    Ok(Some(message)) => message,
                    Ok(None) => {
                        return Err(self.unusable(format!(
                            "stream message {at} is missing (deleted or lost): the batches after it cannot be trusted"
                        )));
                    }
                    Err(reason) => {
                        return Err(StoreError::Engine(format!(
                            "NATS stream {}: cannot read message {at}: {reason}",
                            self.name
                        )));
                    }
                };
                self.check_and_visit(&message, &mut cursor, from, visit)?;
            }
        }
        Ok(cursor.next_record.map_or(0, |next| next - 1))
    }
}

/// Messages of a range fetched with [`READ_AHEAD`] requests in flight, handed over in order
/// through a channel; what is fetched ahead is bounded by a semaphore the reader releases.
struct Prefetch {
    receiver: std::sync::mpsc::Receiver<Result<Option<StreamMessage>, String>>,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Prefetch {
    fn start(log: &NatsLog, first: u64, last: u64) -> Prefetch {
        let (sender, receiver) = std::sync::mpsc::channel();
        let permits = Arc::new(tokio::sync::Semaphore::new(READ_AHEAD));
        let (stream, fetch_permits) = (log.stream.clone(), Arc::clone(&permits));
        log.runtime.handle().spawn(async move {
            let mut in_flight = std::collections::VecDeque::new();
            let mut next = first;
            loop {
                while next <= last && in_flight.len() < READ_AHEAD {
                    let Ok(permit) = Arc::clone(&fetch_permits).acquire_owned().await else {
                        return; // the reader is gone
                    };
                    permit.forget(); // given back by the reader when it takes the message
                    let stream = stream.clone();
                    in_flight.push_back(tokio::spawn(async move { get_message(&stream, next).await }));
                    next += 1;
                }
                let Some(fetching) = in_flight.pop_front() else { return };
                let message = fetching.await.unwrap_or_else(|e| Err(format!("the fetch failed: {e}")));
                let failed = message.is_err();
                if sender.send(message).is_err() || failed {
                    in_flight.iter().for_each(|fetching| fetching.abort());
                    return;
                }
            }
        });
        Prefetch { receiver, permits }
    }

    fn next(&self) -> Result<Option<StreamMessage>, String> {
        let message = self.receiver.recv().map_err(|_| "the fetch stopped".to_owned())?;
        self.permits.add_permits(1);
        message
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Stops a fetcher waiting for room (a reader that stopped early).
        self.permits.close();
    }
}

/// A stream or bucket name NATS takes and a subject can hold.
fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid { Ok(()) } else { Err(format!("{name:?} is not a usable name: 1 to 64 of A-Z a-z 0-9 - _")) }
}

/// The servers of "host:port,host:port,..." (each with or without "nats://").
fn server_addresses(servers: &str) -> Result<Vec<async_nats::ServerAddr>, String> {
    let addresses: Vec<_> = servers
        .split(',')
        .map(str::trim)
        .filter(|server| !server.is_empty())
        .map(|server| {
            let url = if server.contains("://") { server.to_owned() } else { format!("nats://{server}") };
            url.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("{server:?} is not a NATS server address: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if addresses.is_empty() {
        return Err(format!("no NATS server in {servers:?} (expected host:port,host:port,...)"));
    }
    Ok(addresses)
}

/// A random id of 128 bits, in hex.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn connect(addresses: Vec<async_nats::ServerAddr>) -> Result<jetstream::Context, String> {
    let shown: Vec<String> = addresses.iter().map(|a| format!("{}:{}", a.host(), a.port())).collect();
    let client = async_nats::ConnectOptions::new()
        .name("corridor")
        .ping_interval(PING_INTERVAL)
        .connect(addresses)
        .await
        .map_err(|e| format!("cannot connect to NATS at {}: {e}", shown.join(",")))?;
    Ok(jetstream::ContextBuilder::new().timeout(ACK_TIMEOUT).build(client))
}

/// Whether a JetStream API error is one that passes (no leader or quorum yet).
fn passing(code: Option<ErrorCode>) -> bool {
    code.is_none_or(|code| code == ErrorCode::CLUSTER_NOT_AVAILABLE)
}

/// The JetStream error code an error carries, if the server answered with one.
fn jetstream_code(error: &(dyn std::error::Error + 'static)) -> Option<ErrorCode> {
    let mut source = Some(error);
    while let Some(error) = source {
        if let Some(answer) = error.downcast_ref::<jetstream::Error>() {
            return Some(answer.error_code());
        }
        source = error.source();
    }
    None
}

/// Runs `request` until it succeeds, fails with a JetStream error that does not pass, or
/// [`TRANSIENT_DEADLINE`] passes.
async fn retry_transient<T, E, F>(mut request: impl FnMut() -> F) -> Result<T, String>
where
    E: std::error::Error + 'static,
    F: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + TRANSIENT_DEADLINE;
    let mut attempt = 0;
    loop {
        match request().await {
            Ok(value) => return Ok(value),
            Err(error) if passing(jetstream_code(&error)) && Instant::now() < deadline => {
                attempt += 1;
                tracing::debug!(%error, attempt, "a NATS request got no answer; retrying");
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            Err(error) => return Err(error.to_string()),
        }
    }
}

fn retry_pause(attempt: u32) -> Duration {
    (Duration::from_millis(50) * attempt.min(20)).min(RETRY_PAUSE_MAX)
}

/// Gets the stream, creating it when missing; refuses one on other subjects.
async fn open_stream(context: &jetstream::Context, config: stream::Config) -> Result<stream::Stream, String> {
    let deadline = Instant::now() + TRANSIENT_DEADLINE;
    let mut attempt = 0;
    let stream = loop {
        let error = match context.get_stream(&config.name).await {
            Ok(stream) => break stream,
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(answer)
                    if answer.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    match context.create_stream(config.clone()).await {
                        Ok(stream) => break stream,
                        Err(error) => match error.kind() {
                            // Created by another meanwhile: got on the next turn.
                            CreateStreamErrorKind::JetStream(answer)
                                if answer.error_code() == ErrorCode::STREAM_NAME_EXIST =>
                            {
                                continue;
                            }
                            CreateStreamErrorKind::JetStream(answer) => {
                                (Some(answer.error_code()), error.to_string())
                            }
                            _ => (None, error.to_string()),
                        },
                    }
                }
                GetStreamErrorKind::JetStream(answer) => (Some(answer.error_code()), error.to_string()),
                _ => (None, error.to_string()),
            },
        };
        if !passing(error.0) || Instant::now() >= deadline {
            return Err(format!("cannot open or create the stream: {}", error.1));
        }
        attempt += 1;
        tokio::time::sleep(retry_pause(attempt)).await;
    };
    let found = &stream.cached_info().config;
    if found.num_replicas != config.num_replicas {
        tracing::warn!(stream = %config.name, found = found.num_replicas, asked = config.num_replicas, "the stream exists with another number of replicas; it is used as it is");
    }
    let subjects = &found.subjects;
    if subjects != &config.subjects {
        return Err(format!(
            "the stream takes the subjects {subjects:?}, not {:?}: it is not a Corridor log",
            config.subjects
        ));
    }
    Ok(stream)
}

/// Writes the genesis if the stream is empty, then checks it names `identity`; returns its digest.
async fn check_genesis(
    context: &jetstream::Context,
    stream: &stream::Stream,
    identity: &str,
) -> Result<Digest, String> {
    let mut payload = GENESIS_MAGIC.to_vec();
    payload.extend_from_slice(identity.as_bytes());
    if stream.cached_info().state.last_sequence == 0 {
        let message =
            PublishMessage::build().payload(Bytes::from(payload.clone())).message_id(GENESIS_MESSAGE_ID);
        let subject = stream.cached_info().config.subjects[0].clone();
        retry_transient(|| async { context.send_publish(subject.clone(), message.clone()).await?.await })
            .await
            .map_err(|e| format!("cannot write the stream's genesis: {e}"))?;
    }
    let first = match retry_transient(|| stream.get_raw_message(1)).await {
        Ok(message) => message,
        Err(error) => return Err(format!("cannot read the stream's first message (its genesis): {error}")),
    };
    let Some(found) = first.payload.strip_prefix(GENESIS_MAGIC.as_slice()) else {
        return Err("its first message is not a Corridor log's genesis: it is not a Corridor log".to_owned());
    };
    if found != identity.as_bytes() {
        return Err(format!(
            "it holds the log of {}, not of {identity}: give this hub its own stream",
            String::from_utf8_lossy(found)
        ));
    }
    Ok(Sha256::digest(&first.payload).into())
}

/// The stream's last batch (its first record sequence and where it is), if it has one.
async fn read_last_batch(stream: &stream::Stream) -> Result<Option<(u64, Indexed)>, String> {
    let info =
        retry_transient(|| stream.get_info()).await.map_err(|e| format!("cannot read its state: {e}"))?;
    let last = info.state.last_sequence;
    if last < 2 {
        return Ok(None);
    }
    let message = match get_message(stream, last).await? {
        Some(message) => message,
        None => return Err(format!("its last message ({last}) is missing")),
    };
    let batch =
        decode_batch(&message.payload).map_err(|reason| format!("stream message {last}: {reason}"))?;
    Ok(Some((batch.first, Indexed { stream_sequence: last, count: batch.count, digest: batch.digest })))
}

/// The message at `stream_sequence`, `None` when there is none.
async fn get_message(stream: &stream::Stream, stream_sequence: u64) -> Result<Option<StreamMessage>, String> {
    let deadline = Instant::now() + TRANSIENT_DEADLINE;
    let mut attempt = 0;
    loop {
        match stream.get_raw_message(stream_sequence).await {
            Ok(message) => return Ok(Some(message)),
            Err(error) if error.kind() == RawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(error) => {
                let code = match error.kind() {
                    RawMessageErrorKind::JetStream(answer) => Some(answer.error_code()),
                    _ => None,
                };
                if !passing(code) || Instant::now() >= deadline {
                    return Err(error.to_string());
                }
            }
        }
        attempt += 1;
        tokio::time::sleep(retry_pause(attempt)).await;
    }
}

fn batch_digest(first: u64, count: u32, previous: &Digest, body: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(BATCH_MAGIC);
    hasher.update(first.to_le_bytes());
    hasher.update(count.to_le_bytes());
    hasher.update(previous);
    hasher.update(body);
    hasher.finalize().into()
}

/// The message of a batch of records `body` from `first`, after the batch of digest
/// `previous`; and its digest.
fn encode_batch(first: u64, body: &[u8], previous: &Digest) -> (Bytes, Digest) {
    let count = u32::try_from(Batch::records(body).count()).expect("a batch of fewer than 2^32 records");
    let digest = batch_digest(first, count, previous, body);
    let mut message = Vec::with_capacity(BATCH_HEADER + body.len());
    message.extend_from_slice(BATCH_MAGIC);
    message.extend_from_slice(&first.to_le_bytes());
    message.extend_from_slice(&count.to_le_bytes());
    message.extend_from_slice(previous);
    message.extend_from_slice(&digest);
    message.extend_from_slice(body);
    (Bytes::from(message), digest)
}

/// Decodes a batch message, checking its digest and record count.
fn decode_batch(message: &[u8]) -> Result<Decoded<'_>, String> {
    if message.len() < BATCH_HEADER || &message[..8] != BATCH_MAGIC {
        return Err("not a Corridor batch (written by something else?)".to_owned());
    }
    let first = u64::from_le_bytes(message[8..16].try_into().expect("8 bytes"));
    let count = u32::from_le_bytes(message[16..20].try_into().expect("4 bytes"));
    let previous: Digest = message[20..52].try_into().expect("32 bytes");
    let digest: Digest = message[52..84].try_into().expect("32 bytes");
    let body = &message[BATCH_HEADER..];
    if first == 0 || count == 0 {
        return Err("a batch with no records or a record numbered 0".to_owned());
    }
    if batch_digest(first, count, &previous, body) != digest {
        return Err(format!("the batch of records from {first} is damaged: its digest does not match"));
    }
    let records = Batch::records(body).try_fold(0u32, |n, record| record.map(|_| n + 1))?;
    if records != count {
        return Err(format!("the batch of records from {first} holds {records} records, not {count}"));
    }
    Ok(Decoded { first, count, previous, digest, body })
}

/// Publishes `payload` until the server answers (see the module's documentation).
async fn publish_until_answered(
    context: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    message_id: String,
    expected: u64,
    payload: Bytes,
) -> Published {
    let mut attempt = 0u32;
    loop {
        let message = PublishMessage::build()
            .payload(payload.clone())
            .message_id(&message_id)
            .expected_last_sequence(expected);
        let answer = match context.send_publish(subject.clone(), message).await {
            Ok(acknowledgment) => acknowledgment.await,
            Err(error) => Err(error),
        };
        let error = match answer {
            Ok(ack) => return Published::Stored { stream_sequence: ack.sequence },
            Err(error) => error,
        };
        match error.kind() {
            PublishErrorKind::WrongLastSequence => {
                return own_message_at(&stream, expected + 1, &message_id).await;
            }
            PublishErrorKind::MaxPayloadExceeded => return Published::Refused(publish_refusal(&error)),
            PublishErrorKind::Other if !passing(jetstream_code(&error)) => {
                return Published::Refused(error.to_string());
            }
            _ => {}
        }
        attempt += 1;
        if attempt == 1 || attempt.is_multiple_of(10) {
            tracing::warn!(%subject, %error, attempt, "an append got no answer from NATS: sending it again (the caller waits)");
        }
        tokio::time::sleep(retry_pause(attempt)).await;
    }
}

/// What to do about a batch over the servers' `max_payload`.
const MAX_PAYLOAD_ADVICE: &str = "run the NATS servers with a max_payload larger than the largest batch (e.g. max_payload: 8MB), or write smaller batches";

fn publish_refusal(error: &PublishError) -> String {
    format!("{error}: {MAX_PAYLOAD_ADVICE}")
}

/// After a `WrongLastSequence`: whether the message after `expected - 1` is this writer's
/// (an earlier attempt that landed after the duplicate window) or another's (fenced).
async fn own_message_at(stream: &stream::Stream, stream_sequence: u64, message_id: &str) -> Published {
    let mut attempt = 0;
    loop {
        match get_message(stream, stream_sequence).await {
            Ok(Some(message)) => {
                let id = message.headers.get(async_nats::header::NATS_MESSAGE_ID);
                return if id.is_some_and(|id| id.as_str() == message_id) {
                    Published::Stored { stream_sequence }
                } else {
                    Published::Fenced
                };
            }
            Ok(None) => return Published::Fenced,
            Err(error) => {
                attempt += 1;
                tracing::warn!(%error, attempt, "cannot read whether a refused append had landed: retrying");
                tokio::time::sleep(retry_pause(attempt)).await;
            }
        }
    }
}

/// One holder at a time, on a JetStream KV bucket whose entries expire `ttl` after their
/// last write.
///
/// The bucket's stream (`KV_<name>`) is made by hand with the KV conventions, because
/// async-nats 0.52's `create_key_value` fails against nats-server 2.9. The entry's expiry
/// is the stream's `max_age`: the servers decide when a lease lapsed, no clocks are
/// compared. [`Lease::acquire`] is a create (it succeeds only when there is no entry,
/// expired or released), [`Lease::renew`] a compare-and-set on the revision this holder
/// last wrote, so after the entry lapsed and another took it, the old holder's renewal
/// fails.
///
/// What the holder must do with its own clock: the servers may let the entry expire `ttl`
/// after they stored its last renewal, which is after the holder sent it. So the holder
/// counts on its monotonic clock (`Instant`) from when it SENT its last successful renewal
/// (or acquisition), and treats the lease as its own only until that time + `ttl` − a
/// margin (for clock rate differences and the time to stop: a fraction of `ttl`). Past it
/// it must act as if it had lost the lease, stopping everything that needs it, even
/// when no renewal has failed yet (a paused process learns nothing until it runs).
pub struct Lease {
    store: kv::Store,
    name: String,
    /// The value and revision this holder last wrote, while it holds the lease.
    held: Option<(String, u64)>,
}

/// The bucket's one key.
const LEASE_KEY: &str = "holder";

impl Lease {
    /// Connects and opens the bucket `name` (creating it if missing) whose entries expire
    /// `ttl` after their last write.
    pub async fn connect(
        servers: &str,
        name: &str,
        ttl: Duration,
        replicas: usize,
    ) -> Result<Lease, StoreError> {
        let unusable =
            |reason: String| StoreError::Unusable { path: format!("NATS lease bucket {name}"), reason };
        check_name(name).map_err(unusable)?;
        if ttl < Duration::from_millis(100) {
            return Err(unusable(format!("a lease's ttl must be at least 100 ms, not {ttl:?}")));
        }
        if !(1..=5).contains(&replicas) {
            return Err(unusable(format!("replicas must be 1 to 5 (JetStream's limit), not {replicas}")));
        }
        let context = connect(server_addresses(servers).map_err(unusable)?).await.map_err(unusable)?;
        // The stream `create_key_value` would make (nats.go's KV conventions).
        let config = stream::Config {
            name: format!("KV_{name}"),
            description: Some("Corridor lease".to_owned()),
            subjects: vec![format!("$KV.{name}.>")],
            max_messages_per_subject: 1,
            max_bytes: -1,
            max_messages: -1,
            max_message_size: -1,
            max_age: ttl,
            // The duplicate window may not be longer than max_age.
            duplicate_window: ttl.min(Duration::from_secs(120)),
            discard: stream::DiscardPolicy::New,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            allow_rollup: true,
            deny_delete: true,
            // Reads go to the stream's leader: a direct get may be answered by a replica
            // that has not seen the last write yet, so who holds the lease would be stale.
            allow_direct: false,
            ..Default::default()
        };
        let stream = open_stream(&context, config).await.map_err(unusable)?;
        let found = stream.cached_info().config.max_age;
        if found != ttl {
            return Err(unusable(format!("the bucket exists with a ttl of {found:?}, not {ttl:?}")));
        }
        let store = context
            .get_key_value(name)
            .await
            .map_err(|e| unusable(format!("cannot open the bucket: {e}")))?;
        Ok(Lease { store, name: name.to_owned(), held: None })
    }

    /// Who holds it now (the value the holder wrote: the active hub writes its URL), if anyone.
    /// Read from the bucket stream's leader (it allows no direct gets), so it is the last
    /// write stored; it names where to go and grants nothing.
    pub async fn holder(&self) -> Result<Option<String>, StoreError> {
        let value = self.store.get(LEASE_KEY).await.map_err(|e| self.engine("cannot read it", e))?;
        Ok(value.map(|value| String::from_utf8_lossy(&value).into_owned()))
    }

    /// Takes it for `me` if nobody holds it. Ok(true) when taken.
    pub async fn acquire(&mut self, me: &str) -> Result<bool, StoreError> {
        match self.store.create(LEASE_KEY, Bytes::copy_from_slice(me.as_bytes())).await {
            Ok(revision) => {
                self.held = Some((me.to_owned(), revision));
                Ok(true)
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(error) => Err(self.engine("cannot take it", error)),
        }
    }

    /// Renews it (compare-and-set on the revision this holder last wrote). Ok(false) when it
    /// was lost (expired and/or taken by another).
    pub async fn renew(&mut self) -> Result<bool, StoreError> {
        let Some((me, revision)) = self.held.clone() else {
            return Ok(false);
        };
        match self.store.update(LEASE_KEY, Bytes::from(me.clone()), revision).await {
            Ok(revision) => {
                self.held = Some((me, revision));
                Ok(true)
            }
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                // An earlier renewal whose answer was lost may have landed: the entry is
                // still this holder's if it holds its value at a later revision.
                let entry =
                    self.store.entry(LEASE_KEY).await.map_err(|e| self.engine("cannot read it", e))?;
                match entry {
                    Some(entry)
                        if entry.operation == kv::Operation::Put
                            && entry.value == me.as_bytes()
                            && entry.revision > revision =>
                    {
                        self.held = Some((me, entry.revision));
                        Ok(true)
                    }
                    _ => {
                        self.held = None;
                        Ok(false)
                    }
                }
            }
            Err(error) => Err(self.engine("cannot renew it", error)),
        }
    }

    /// Gives it up at once (clean shutdown), only if still ours.
    pub async fn release(&mut self) -> Result<(), StoreError> {
        let Some((_, revision)) = self.held.take() else {
            return Ok(());
        };
        match self.store.delete_expect_revision(LEASE_KEY, Some(revision)).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(()),
            Err(error) => Err(self.engine("cannot release it", error)),
        }
    }

    fn engine(&self, what: &str, error: impl std::fmt::Display) -> StoreError {
        StoreError::Engine(format!("NATS lease {}: {what}: {error}", self.name))
    }
}
