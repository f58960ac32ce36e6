//! A node's append-only log: the one durable copy of everything it decided.
//!
//! A log is a header naming whose it is, then batches. A batch is what one group commit
//! made durable: written with one `pwrite` and made durable with one `fdatasync`.
//!
//! ```text
//! header: "CRDRLOG1" | identity length u32 | identity (UTF-8, "role participant") | crc32c u32
//! batch:  "BTCH" | body length u32 | first sequence u64 | records u32
//!         | crc32c of the batch before u32 | crc32c u32 | body
//! body:   per record: length u32 | bytes
//! ```
//!
//! Every number is little-endian. A batch's checksum covers its first sequence, count,
//! the checksum of the batch before it (so a batch lost from the middle breaks the chain)
//! and its body. Records are numbered from 1 without gaps.
//!
//! On open the log is read to its end. A batch cut short or with a wrong checksum at the
//! end is what a crash during an append leaves: nothing in it was acknowledged (an ACK
//! waits for the `fdatasync`), so the log is cut at the last whole batch. A damaged batch
//! followed by a whole one is not a torn tail but lost acknowledged records: the log is
//! refused, never cut.
//!
//! [`RecordLog`] is the interface the rest of a node uses ("append a batch fenced by the
//! sequence it follows"; "read from a sequence"), so that a replicated log can stand in
//! for the file.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The file's first bytes: a Corridor log, format version 1.
const FILE_MAGIC: &[u8; 8] = b"CRDRLOG1";
/// Every batch's first bytes.
const BATCH_MAGIC: &[u8; 4] = b"BTCH";
/// A batch's header: magic, body length, first sequence, count, previous and own checksum.
const BATCH_HEADER: usize = 4 + 4 + 8 + 4 + 4 + 4;
/// The largest batch body a log accepts (a sanity bound on a length read from disk).
const BATCH_BODY_MAX: usize = 1 << 30;

/// A batch of encoded records, built record after record and appended whole.
#[derive(Debug, Default)]
pub struct Batch {
    body: Vec<u8>,
    count: u32,
}

impl Batch {
    /// Adds one record, written by `encode` into the batch's buffer.
    pub fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        let at = self.body.len();
        self.body.extend_from_slice(&[0; 4]);
        encode(&mut self.body);
        let length = u32::try_from(self.body.len() - at - 4).expect("a record under 4 GiB");
        self.body[at..at + 4].copy_from_slice(&length.to_le_bytes());
        self.count += 1;
    }

    /// Whether it has no record.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the body (the records with their lengths).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The encoded body (the records with their lengths), as [`Batch::records`] reads it:
    /// what a log that frames batches its own way (`store::nats`) stores.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Moves the records from byte `at` of the body on (a record's start, as
    /// [`Batch::body_len`] gave it before a push) to a new batch.
    pub fn split_off(&mut self, at: usize) -> Batch {
        let body = self.body.split_off(at);
        let count = Self::records(&body).count() as u32;
        self.count -= count;
        Batch { body, count }
    }

    /// Empties it, keeping its buffer.
    pub fn clear(&mut self) {
        self.body.clear();
        self.count = 0;
    }

    /// The records of an encoded body, in order.
    pub fn records(body: &[u8]) -> impl Iterator<Item = Result<&[u8], String>> {
        let mut rest = body;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let Some((length, tail)) = rest.split_first_chunk::<4>() else {
                rest = &[];
                return Some(Err("a record length cut short".to_owned()));
            };
            let length = u32::from_le_bytes(*length) as usize;
            if tail.len() < length {
                rest = &[];
                return Some(Err("a record cut short".to_owned()));
            }
            let (record, tail) = tail.split_at(length);
            rest = tail;
            Some(Ok(record))
        })
    }
}

/// One record read from a log.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// Its sequence number.
    pub seq: u64,
    /// The record as appended.
    pub bytes: &'a [u8],
    /// Whether it is the last record of its batch (of the append that wrote it).
    pub ends_batch: bool,
}

/// What a node's journal is written to: a log of records numbered from 1.
pub trait RecordLog: Send + 'static {
    /// Sequence number of the last record (0 when the log is empty).
    fn last(&self) -> u64;

    /// Appends `batch` as the records after `after`, durably: when this returns `Ok` the
    /// records survive a crash or power loss. Refuses with [`StoreError::Fenced`], writing
    /// nothing, unless `after` is the log's last sequence (a writer that is not the only
    /// one, or that lost track, must stop). Returns the new last sequence.
    fn append(&mut self, after: u64, batch: &Batch) -> Result<u64, StoreError>;

    /// Calls `visit` with every record from sequence `from` on, in order, each saying
    /// whether it ends its batch. Returns the last sequence read.
    fn read_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<u64, StoreError>;

    /// The largest batch body one append takes (a replicated log's messages have a
    /// maximum size): a writer splits larger batches into several appends.
    fn batch_bytes_max(&self) -> usize {
        usize::MAX
    }
}

impl RecordLog for Box<dyn RecordLog> {
    fn last(&self) -> u64 {
        (**self).last()
    }

    fn append(&mut self, after: u64, batch: &Batch) -> Result<u64, StoreError> {
        (**self).append(after, batch)
    }

    fn read_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<u64, StoreError> {
        (**self).read_from(from, visit)
    }

    fn batch_bytes_max(&self) -> usize {
        (**self).batch_bytes_max()
    }
}

/// A log in one file of the data directory.
#[derive(Debug)]
pub struct FileLog {
    file: File,
    path: PathBuf,
    /// Where the next batch goes.
    end: u64,
    /// Where the first batch starts.
    start: u64,
    last: u64,
    /// The checksum of the last batch (0 before the first).
    last_crc: u32,
    /// Set by a failed write or sync: what is on disk is unknown, so nothing more goes in.
    broken: bool,
    /// The frame being written, kept to reuse its buffer.
    frame: Vec<u8>,
}

/// What opening a log found at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Bytes cut from a torn tail (0 when the log ended on a whole batch).
    pub cut_bytes: u64,
}

impl FileLog {
    /// Opens the log at `path` of `identity` ("role participant"), creating it when it
    /// does not exist. Cuts a torn tail (see the module's documentation); refuses a log of
    /// another identity or one damaged before its end.
    pub fn open(path: &Path, identity: &str) -> Result<(Self, Opened), StoreError> {
        let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
        let exists = path.exists();
        if !exists {
            create(path, identity).map_err(unusable)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| unusable(format!("cannot open the log: {e}")))?;
        let start = read_header(&file, identity).map_err(unusable)?;
        let mut log = Self {
            file,
            path: path.to_path_buf(),
            end: start,
            start,
            last: 0,
            last_crc: 0,
            broken: false,
            frame: Vec::new(),
        };
        let scan = scan(&log.file, start, &mut |_| Ok(())).map_err(unusable)?;
        (log.end, log.last, log.last_crc) = (scan.end, scan.last, scan.last_crc);
        let length = log.file.metadata().map_err(|e| unusable(e.to_string()))?.len();
        let cut_bytes = length - scan.end;
        if cut_bytes > 0 {
            tracing::warn!(path = %path.display(), cut_bytes, last = scan.last, "the log's torn tail (an append a crash interrupted) is cut");
            log.file.set_len(scan.end).map_err(|e| unusable(format!("cannot cut the torn tail: {e}")))?;
            log.file.sync_all().map_err(|e| unusable(format!("cannot sync the log: {e}")))?;
        }
        Ok((log, Opened { cut_bytes }))
    }

    /// Reads the log at `path` without changing it, from a process that may be another
    /// than its writer: a batch being written is not read.
    pub fn read(
        path: &Path,
        identity: &str,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<u64, StoreError> {
        let unusable = |reason: String| StoreError::Unusable { path: path.display().to_string(), reason };
        let file = File::open(path).map_err(|e| unusable(format!("cannot open the log: {e}")))?;
        let start = read_header(&file, identity).map_err(unusable)?;
        let mut skip_before = |entry: Entry<'_>| if entry.seq >= from { visit(entry) } else { Ok(()) };
        Ok(scan(&file, start, &mut skip_before).map_err(unusable)?.last)
    }

    fn fail(&mut self, what: &str, error: std::io::Error) -> StoreError {
        self.broken = true;
        StoreError::Engine(format!("{}: {what}: {error}", self.path.display()))
    }
}

impl RecordLog for FileLog {
    fn last(&self) -> u64 {
        self.last
    }

    fn append(&mut self, after: u64, batch: &Batch) -> Result<u64, StoreError> {
        if self.broken {
            return Err(StoreError::Engine(format!(
                "{}: an earlier append failed, so nothing more is written",
                self.path.display()
            )));
        }
        if after != self.last {
            return Err(StoreError::Fenced { expected: after, last: self.last });
        }
        if batch.is_empty() {
            return Ok(self.last);
        }
        let first = self.last + 1;
        let crc = batch_crc(first, batch.count, self.last_crc, &batch.body);
        self.frame.clear();
        self.frame.extend_from_slice(BATCH_MAGIC);
        self.frame.extend_from_slice(&(batch.body.len() as u32).to_le_bytes());
        self.frame.extend_from_slice(&first.to_le_bytes());
        self.frame.extend_from_slice(&batch.count.to_le_bytes());
        self.frame.extend_from_slice(&self.last_crc.to_le_bytes());
        self.frame.extend_from_slice(&crc.to_le_bytes());
        self.frame.extend_from_slice(&batch.body);
        if let Err(error) = self.file.write_all_at(&self.frame, self.end) {
            return Err(self.fail("cannot append", error));
        }
        if let Err(error) = self.file.sync_data() {
            return Err(self.fail("cannot sync", error));
        }
        self.end += self.frame.len() as u64;
        self.last += u64::from(batch.count);
        self.last_crc = crc;
        Ok(self.last)
    }

    fn read_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
    ) -> Result<u64, StoreError> {
        let unusable =
            |reason: String| StoreError::Unusable { path: self.path.display().to_string(), reason };
        let mut skip_before = |entry: Entry<'_>| if entry.seq >= from { visit(entry) } else { Ok(()) };
        let scan = scan(&self.file, self.start, &mut skip_before).map_err(unusable)?;
        Ok(scan.last.min(self.last))
    }
}

fn batch_crc(first: u64, count: u32, previous: u32, body: &[u8]) -> u32 {
    let mut crc = crc32c::crc32c(&first.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &count.to_le_bytes());
    crc = crc32c::crc32c_append(crc, &previous.to_le_bytes());
    crc32c::crc32c_append(crc, body)
}

/// Creates the log whole or not at all: written in a side file, synced, renamed into
/// place, and the directory synced.
fn create(path: &Path, identity: &str) -> Result<(), String> {
    let building = path.with_extension("log-new");
    let mut header = Vec::with_capacity(16 + identity.len());
    header.extend_from_slice(FILE_MAGIC);
    header.extend_from_slice(&(identity.len() as u32).to_le_bytes());
    header.extend_from_slice(identity.as_bytes());
    header.extend_from_slice(&crc32c::crc32c(identity.as_bytes()).to_le_bytes());
    std::fs::write(&building, &header).map_err(|e| format!("cannot create the log: {e}"))?;
    super::put_in_place(&building, path)
}

/// Checks the header names `identity`; returns where the first batch starts.
fn read_header(file: &File, identity: &str) -> Result<u64, String> {
    let (found, start) = read_identity(file)?;
    if found != identity {
        return Err(format!("belongs to {found}, not to {identity}: pass this participant's own --data"));
    }
    Ok(start)
}

/// The identity the header names, and where the first batch starts.
fn read_identity(file: &File) -> Result<(String, u64), String> {
    let mut fixed = [0u8; 12];
    file.read_exact_at(&mut fixed, 0)
        .map_err(|_| "not a Corridor log: too short for its header".to_owned())?;
    if &fixed[..8] != FILE_MAGIC {
        return Err("not a Corridor log (or one of another format version)".to_owned());
    }
    let length = u32::from_le_bytes(fixed[8..12].try_into().expect("4 bytes")) as usize;
    if length > 4096 {
        return Err("not a Corridor log: its header is damaged".to_owned());
    }
    let mut rest = vec![0u8; length + 4];
    file.read_exact_at(&mut rest, 12)
        .map_err(|_| "not a Corridor log: its header is cut short".to_owned())?;
    let (found, crc) = rest.split_at(length);
    if crc32c::crc32c(found) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("not a Corridor log: its header is damaged".to_owned());
    }
    Ok((String::from_utf8_lossy(found).into_owned(), (12 + length + 4) as u64))
}

/// Whose log the file at `path` is ("role participant"), from its header alone.
pub fn owner(path: &Path) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("cannot open the log: {e}"))?;
    Ok(read_identity(&file)?.0)
}

/// Where a scan ended: the end of the last whole batch, its last sequence and checksum.
struct Scanned {
    end: u64,
    last: u64,
    last_crc: u32,
}

/// Reads whole batches from `start`, calling `visit` with each record of each (a batch
/// is checked whole before any of its records is visited). Stops at the first batch that
/// is not whole; refuses when a whole batch follows it (see the module's documentation).
fn scan(
    file: &File,
    start: u64,
    visit: &mut dyn FnMut(Entry<'_>) -> Result<(), String>,
) -> Result<Scanned, String> {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(start)).map_err(|e| e.to_string())?;
    let mut at = Scanned { end: start, last: 0, last_crc: 0 };
    // What the file holds now: a batch longer than what is left is torn (a length read
    // from a torn header can be anything, so it is never allocated before this check).
    let file_length = file.metadata().map_err(|e| format!("cannot read the log: {e}"))?.len();
    let mut body = Vec::new();
    loop {
        let mut header = [0u8; BATCH_HEADER];
        match read_full(&mut reader, &mut header) {
            Ok(0) => return Ok(at),
            Ok(n) if n < BATCH_HEADER => return torn(file, at),
            Ok(_) => {}
            Err(error) => return Err(format!("cannot read the log: {error}")),
        }
        let field = |range: std::ops::Range<usize>| &header[range];
        let u32_at =
            |offset: usize| u32::from_le_bytes(field(offset..offset + 4).try_into().expect("4 bytes"));
        let length = u32_at(4) as usize;
        let first = u64::from_le_bytes(field(8..16).try_into().expect("8 bytes"));
        let (count, previous, crc) = (u32_at(16), u32_at(20), u32_at(24));
        let fits = at.end + (BATCH_HEADER + length) as u64 <= file_length;
        if &header[..4] != BATCH_MAGIC || length > BATCH_BODY_MAX || !fits {
            return torn(file, at);
        }
        body.resize(length, 0);
        match read_full(&mut reader, &mut body) {
            Ok(n) if n == length => {}
            Ok(_) => return torn(file, at),
            Err(error) => return Err(format!("cannot read the log: {error}")),
        }
        if batch_crc(first, count, previous, &body) != crc {
            return torn(file, at);
        }
        if first != at.last + 1 || previous != at.last_crc {
            return Err(format!(
                "damaged at byte {}: a batch of records {first}.. follows record {} (a batch is missing or \
                 out of place); the log is not cut, as acknowledged records would be lost",
                at.end, at.last
            ));
        }
        let mut seq = first;
        let end = first + u64::from(count);
        for record in Batch::records(&body) {
            let bytes = record.map_err(|e| format!("damaged at byte {}: {e}", at.end))?;
            visit(Entry { seq, bytes, ends_batch: seq + 1 == end })
                .map_err(|e| format!("record {seq}: {e}"))?;
            seq += 1;
        }
        if seq != end {
            return Err(format!("damaged at byte {}: a batch's count does not match its records", at.end));
        }
        at = Scanned { end: at.end + (BATCH_HEADER + length) as u64, last: seq - 1, last_crc: crc };
    }
}

/// A batch at `at.end` is not whole. Fine if nothing whole follows (a torn tail); an
/// error if a whole batch does (damage in the middle).
fn torn(file: &File, at: Scanned) -> Result<Scanned, String> {
    let length = file.metadata().map_err(|e| e.to_string())?.len();
    let mut rest = vec![0u8; (length - at.end.min(length)) as usize];
    file.read_exact_at(&mut rest, at.end).map_err(|e| format!("cannot read the log: {e}"))?;
    // Any whole batch after the damaged one, at any offset past the damaged one's start.
    for offset in 1..rest.len().saturating_sub(BATCH_HEADER) {
        if rest[offset..].starts_with(BATCH_MAGIC) && whole_batch_at(&rest[offset..]) {
            return Err(format!(
                "damaged at byte {}, with a whole batch after it at byte {}: not a torn tail but lost \
                 records; the log is not cut",
                at.end,
                at.end + offset as u64
            ));
        }
    }
    Ok(at)
}

fn whole_batch_at(bytes: &[u8]) -> bool {
    let Some(header) = bytes.get(..BATCH_HEADER) else { return false };
    let u32_at = |offset: usize| u32::from_le_bytes(header[offset..offset + 4].try_into().expect("4 bytes"));
    let length = u32_at(4) as usize;
    let first = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let Some(body) = bytes.get(BATCH_HEADER..BATCH_HEADER + length) else { return false };
    batch_crc(first, u32_at(16), u32_at(20), body) == u32_at(24)
}

/// Reads until `buffer` is full or the file ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: &str = "hub CRDRZZ00XXX";

    fn batch(records: &[&[u8]]) -> Batch {
        let mut batch = Batch::default();
        for record in records {
            batch.push(|out| out.extend_from_slice(record));
        }
        batch
    }

    fn all(log: &FileLog) -> Vec<(u64, Vec<u8>)> {
        let mut read = Vec::new();
        log.read_from(1, &mut |entry| {
            read.push((entry.seq, entry.bytes.to_vec()));
            Ok(())
        })
        .expect("reads");
        read
    }

    /// Records come back numbered from 1 in append order, from a reopened log too, and
    /// reading from a sequence skips what comes before it.
    #[test]
    fn records_come_back_in_order_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let (mut log, opened) = FileLog::open(&path, WHO).unwrap();
        assert_eq!(opened.cut_bytes, 0);
        assert_eq!(log.append(0, &batch(&[b"a", b"bb"])).unwrap(), 2);
        assert_eq!(log.append(2, &batch(&[b""])).unwrap(), 3);
        assert_eq!(log.append(3, &batch(&[])).unwrap(), 3, "an empty batch writes nothing");
        drop(log);
        let (log, _) = FileLog::open(&path, WHO).unwrap();
        assert_eq!(log.last(), 3);
        assert_eq!(all(&log), vec![(1, b"a".to_vec()), (2, b"bb".to_vec()), (3, vec![])]);
        let mut from_two = Vec::new();
        FileLog::read(&path, WHO, 2, &mut |entry| {
            from_two.push((entry.seq, entry.ends_batch));
            Ok(())
        })
        .unwrap();
        assert_eq!(from_two, vec![(2, true), (3, true)], "2 ends the first batch, 3 is one alone");
    }

    /// An append fenced by a sequence that is not the log's last is refused and writes
    /// nothing: a second writer, or one that lost track, cannot interleave.
    #[test]
    fn a_fenced_append_that_does_not_follow_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let (mut log, _) = FileLog::open(&path, WHO).unwrap();
        log.append(0, &batch(&[b"one"])).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        for stale in [0, 2, 7] {
            match log.append(stale, &batch(&[b"two"])) {
                Err(StoreError::Fenced { expected, last }) => assert_eq!((expected, last), (stale, 1)),
                other => panic!("a stale append was not fenced: {other:?}"),
            }
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size, "nothing written");
        assert_eq!(log.append(1, &batch(&[b"two"])).unwrap(), 2);
    }

    /// Every way an append can be torn (cut at any byte of its frame, or its last bytes
    /// garbled) is cut back to the last whole batch on open, and the log takes appends
    /// again after it.
    #[test]
    fn a_torn_or_corrupt_tail_is_cut_at_the_last_whole_batch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let (mut log, _) = FileLog::open(&path, WHO).unwrap();
        log.append(0, &batch(&[b"kept-1", b"kept-2"])).unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        log.append(2, &batch(&[b"torn-3", b"torn-4"])).unwrap();
        drop(log);
        let full = std::fs::read(&path).unwrap();
        let frame = full.len() as u64 - whole;
        for cut in 1..frame {
            std::fs::write(&path, &full[..(whole + cut) as usize]).unwrap();
            let (log, opened) = FileLog::open(&path, WHO).unwrap();
            assert_eq!((log.last(), opened.cut_bytes), (2, cut), "cut at byte {cut} of the frame");
            assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        }
        // Byte 7 is the top byte of the body's length: a torn length that claims more than the file
        // holds is torn, never allocated.
        for garbled in [whole as usize + 2, whole as usize + 7, whole as usize + 13, full.len() - 1] {
            let mut bytes = full.clone();
            bytes[garbled] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            let (mut log, opened) = FileLog::open(&path, WHO).unwrap();
            assert_eq!((log.last(), opened.cut_bytes), (2, frame), "garbled byte {garbled}");
            assert_eq!(log.append(2, &batch(&[b"again"])).unwrap(), 3);
            assert_eq!(all(&log).last().unwrap(), &(3, b"again".to_vec()));
        }
    }

    /// Damage before the last batch is not a torn tail: acknowledged records follow it,
    /// so the log is refused, naming where, and left as it is.
    #[test]
    fn damage_before_a_whole_batch_is_refused_not_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        let (mut log, _) = FileLog::open(&path, WHO).unwrap();
        log.append(0, &batch(&[b"first"])).unwrap();
        let first_end = std::fs::metadata(&path).unwrap().len();
        log.append(1, &batch(&[b"second"])).unwrap();
        log.append(2, &batch(&[b"third"])).unwrap();
        drop(log);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[first_end as usize + BATCH_HEADER + 5] ^= 1; // inside the second batch's body
        std::fs::write(&path, &bytes).unwrap();
        let error = FileLog::open(&path, WHO).unwrap_err().to_string();
        assert!(error.contains("not a torn tail") && error.contains(&format!("byte {first_end}")), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was");
    }

    /// A log of another participant or role, a file that is not a log, and garbage are
    /// refused with the reason, and changed in nothing.
    #[test]
    fn another_nodes_log_or_garbage_is_refused_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.log");
        FileLog::open(&path, WHO).unwrap();
        let error = FileLog::open(&path, "bank BANKRUMMXXX").unwrap_err().to_string();
        assert!(error.contains("belongs to hub CRDRZZ00XXX, not to bank BANKRUMMXXX"), "{error}");
        for garbage in [&b""[..], b"CRDRLOG1", b"SQLite format 3\0 and more bytes here", &[0xff; 64]] {
            std::fs::write(&path, garbage).unwrap();
            let error = FileLog::open(&path, WHO).unwrap_err().to_string();
            assert!(error.contains("not a Corridor log"), "{error}");
            assert_eq!(std::fs::read(&path).unwrap(), garbage);
        }
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// Appended and acknowledged (durable on return).
        Append(Vec<Vec<u8>>),
        /// A crash during an append: the frame reached the file only up to `cut` of its
        /// length (never whole, so never acknowledged), maybe followed by junk, and the
        /// node starts again.
        Crash { records: Vec<Vec<u8>>, cut: f64, junk: Vec<u8> },
        /// A clean restart.
        Restart,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let records = || prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6);
        prop_oneof![
            4 => records().prop_map(Step::Append),
            2 => (records(), 0.0..1.0f64, prop::collection::vec(any::<u8>(), 0..24))
                .prop_map(|(records, cut, junk)| Step::Crash { records, cut, junk }),
            1 => Just(Step::Restart),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Random appends, crashes in the middle of an append (a frame cut anywhere, junk
        /// after it) and restarts: every acknowledged record is there after each restart,
        /// in order, numbered without gaps, and nothing that was not acknowledged is.
        #[test]
        fn random_appends_and_crashes_never_lose_an_acknowledged_record(
            steps in proptest::collection::vec(step(), 1..40)
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("bank.log");
            let who = "bank BANKRUMMXXX";
            let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
            let (mut log, _) = FileLog::open(&path, who).unwrap();
            for step in steps {
                match step {
                    Step::Append(records) => {
                        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                        let last = log.append(log.last(), &batch(&refs)).unwrap();
                        for record in records {
                            acknowledged.push((acknowledged.len() as u64 + 1, record));
                        }
                        proptest::prop_assert_eq!(last, acknowledged.len() as u64);
                    }
                    Step::Crash { records, cut, junk } => {
                        let before = std::fs::metadata(&path).unwrap().len();
                        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
                        log.append(log.last(), &batch(&refs)).unwrap();
                        drop(log);
                        let after = std::fs::metadata(&path).unwrap().len();
                        let kept = before + ((after - before) as f64 * cut) as u64;
                        let file = OpenOptions::new().write(true).open(&path).unwrap();
                        file.set_len(kept.min(after - 1)).unwrap();
                        file.write_all_at(&junk, kept.min(after - 1)).unwrap();
                        drop(file);
                        log = FileLog::open(&path, who).unwrap().0;
                    }
                    Step::Restart => {
                        drop(log);
                        log = FileLog::open(&path, who).unwrap().0;
                    }
                }
                proptest::prop_assert_eq!(log.last(), acknowledged.len() as u64);
                proptest::prop_assert_eq!(&all(&log), &acknowledged);
            }
        }
    }
}
