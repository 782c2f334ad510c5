//! Replay: the flows of capture files (pcap or pcapng) stored under one interface
//! name, as if they had been captured live.
//!
//! Each file is opened with libpcap's offline reader first (which validates it and
//! names its link type). Classic pcap files are then read by the fast reader of
//! [`crate::pcapfile`]; pcapng files, older pcap versions and whatever that reader
//! leaves aside (a record cut short or longer than the snapshot length, from that
//! record on) go through libpcap, so every file reads exactly as libpcap reads it.
//!
//! Two threads share the work (besides the writer): this one reads and decodes the
//! packets into batches (a read buffer and the decoded headers, payloads as ranges of
//! the buffer), the flow thread accounts them in the flow table and hands each finished
//! interval to the writer; the interval boundaries travel inside the batches, with
//! the decoder's counters of the interval. Batches are recycled, so the steady state
//! allocates nothing.
//!
//! Blocks are cut at the 5-minute boundaries of the packets' own time stamps; a block's
//! time stamp is the end of its interval. Several files are read in the order of their
//! first packet into one flow table, so a conversation that spans two files stays one
//! flow. A packet older than the current interval (time going backwards) is counted in
//! the current interval, since a stored block is never rewritten. A file libpcap
//! refuses, or that ends in a truncated record, is reported with its name; what was
//! read from it is kept, and the other files are still replayed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam::channel::{bounded, Receiver, Sender};
use godb::{CaptureStats, Database};
use goflow::decode::{DecodeStats, Decoder, Hint, Packet};
use goflow::LinkType;
use pcap::{Capture, Offline};

use crate::capture::interval_end;
use crate::pcapfile::{Next, PcapReader};
use crate::writer::{Interval, Writer, WriterTotals};

/// A problem with one input file; the replay goes on with the others.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// libpcap does not accept the file (missing, unreadable, not a capture file).
    #[error("{}: cannot read as pcap or pcapng: {reason}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// libpcap's reason (in the message only, not also `source()`).
        reason: pcap::Error,
    },
    /// Reading stopped inside the file (truncated record, corrupt block).
    #[error("{}: read error after {packets} packets (they are kept): {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Packets read before the error.
        packets: u64,
        /// libpcap's reason (in the message only, not also `source()`).
        reason: pcap::Error,
    },
}

/// Why a replay could not start at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The database cannot be created or opened.
    #[error(transparent)]
    Database(#[from] godb::Error),
    /// The writer thread cannot be started.
    #[error("cannot start the writer thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Outcome of a replay.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Files given.
    pub files: usize,
    /// Packets read from all files.
    pub packets: u64,
    /// What the writer stored (blocks, flow rows, statistics incl. non-IP packets).
    pub written: WriterTotals,
    /// The files that failed, in processing order.
    pub errors: Vec<FileError>,
}

impl ReplaySummary {
    /// True when every file was read completely and every block stored.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.written.failed == 0
    }
}

/// Replays `files` into the database at `db_path` (created if missing) under `iface`.
/// Only a database that cannot be opened is an `Err`; file problems are in the summary.
pub fn replay(
    db_path: &Path,
    iface: &str,
    files: &[PathBuf],
) -> Result<ReplaySummary, ReplayError> {
    let db = Arc::new(Database::create(db_path)?);
    let writer = Writer::spawn(db)?;
    let mut summary = ReplaySummary {
        files: files.len(),
        ..ReplaySummary::default()
    };
    let mut ordered = Vec::with_capacity(files.len());
    for path in files {
        match first_timestamp(path) {
            Ok(ts) => ordered.push((ts, path)),
            Err(e) => summary.errors.push(e),
        }
    }
    // Files without packets sort last; equal starts keep the command line's order.
    ordered.sort_by_key(|(ts, _)| ts.unwrap_or(i64::MAX));

    let (flows, mut feeder) = match FlowThread::spawn(iface, writer.sender()) {
        Ok(pair) => pair,
        Err(e) => {
            writer.finish();
            return Err(ReplayError::Thread(e));
        }
    };
    for (_, path) in ordered {
        match replay_file(&mut feeder, path) {
            Ok(n) => summary.packets += n,
            Err((n, e)) => {
                summary.packets += n;
                summary.errors.push(e);
            }
        }
    }
    feeder.finish();
    let flow_thread_ok = flows.join().is_ok();
    summary.written = writer.finish();
    if !flow_thread_ok {
        log::error!("the flow thread panicked: the intervals it held are lost");
        summary.written.failed += 1;
    }
    Ok(summary)
}

/// A decoded packet on its way to the flow thread: the decoder's [`Packet`] with the
/// payload as a range of its batch's buffer.
#[derive(Debug, Clone, Copy)]
struct Decoded {
    v6: bool,
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    sport: u16,
    dport: u16,
    hint: Hint,
    payload_at: u32,
    payload_len: u32,
    wire_len: u32,
}

/// An interval boundary inside a batch: before packet `at`, the interval ending at
/// `end` is over; `stats` are the decoder's counters for it.
#[derive(Debug)]
struct Rotation {
    at: usize,
    end: i64,
    stats: DecodeStats,
}

/// Packets on their way from the reading thread to the flow thread.
#[derive(Default)]
struct Batch {
    /// The bytes the packets' payloads point into: a buffer of the fast reader, or
    /// packets copied from libpcap's.
    buf: Vec<u8>,
    /// Whether `buf` holds copied packets (else its contents are stale).
    copied: bool,
    packets: Vec<Decoded>,
    rotations: Vec<Rotation>,
}

/// A batch of copied packets is sent once its buffer holds this much.
const COPY_BATCH_BYTES: usize = 256 << 10;

/// Batches in flight to the flow thread (bounded, so that reading waits for it).
const IN_FLIGHT: usize = 4;

/// The reading side: decodes packets into batches for the flow thread.
struct Feeder {
    decoder: Decoder,
    /// End of the current interval; None before the first packet.
    end: Option<i64>,
    current: Batch,
    tx: Option<Sender<Batch>>,
    spare: Receiver<Batch>,
}

impl Feeder {
    /// Starts the interval of a packet at `ts`, closing the current one if it is later.
    #[inline]
    fn interval(&mut self, ts: i64) {
        let end = interval_end(ts);
        match self.end {
            None => self.end = Some(end),
            Some(cur) if end > cur => {
                self.current.rotations.push(Rotation {
                    at: self.current.packets.len(),
                    end: cur,
                    stats: self.decoder.take_stats(),
                });
                self.end = Some(end);
            }
            Some(_) => {}
        }
    }

    /// Decodes one packet whose bytes lie in the buffer starting at address `base`
    /// (the one the current batch will carry).
    #[inline]
    fn decode(&mut self, link: LinkType, data: &[u8], base: usize, wire_len: u32, ts: i64) {
        self.interval(ts);
        if let Some(p) = self.decoder.decode(link, data, ts) {
            push_decoded(&mut self.current.packets, &p, base, wire_len);
        }
    }

    /// Copies a packet (from libpcap's buffer) into the current batch and decodes it.
    fn copy_and_decode(&mut self, link: LinkType, data: &[u8], wire_len: u32, ts: i64) {
        self.interval(ts);
        let batch = &mut self.current;
        if !batch.copied {
            batch.buf.clear();
            batch.copied = true;
        }
        let start = batch.buf.len();
        batch.buf.extend_from_slice(data);
        let base = batch.buf.as_ptr() as usize;
        let bytes = batch.buf.get(start..).unwrap_or(&[]);
        if let Some(p) = self.decoder.decode(link, bytes, ts) {
            push_decoded(&mut batch.packets, &p, base, wire_len);
        }
        if batch.buf.len() >= COPY_BATCH_BYTES {
            self.send_current(None);
        }
    }

    /// A recycled batch if the flow thread returned one, else a new one.
    fn next_batch(&mut self) -> Batch {
        self.spare.try_recv().unwrap_or_default()
    }

    /// Sends the current batch (with `buf` as its buffer if given) and starts the next.
    fn send_current(&mut self, buf: Option<Vec<u8>>) {
        let next = self.next_batch();
        let mut done = std::mem::replace(&mut self.current, next);
        if let Some(buf) = buf {
            done.buf = buf;
        }
        if let Some(tx) = &self.tx {
            if tx.send(done).is_err() {
                log::error!("the flow thread is gone: the rest of the replay is lost");
                self.tx = None;
            }
        }
    }

    /// Sends what was copied so far, so that the next batch can carry a fast reader's
    /// buffer.
    fn flush_copied(&mut self) {
        if self.current.copied {
            self.send_current(None);
        }
    }

    /// Closes the last interval and lets the flow thread finish.
    fn finish(mut self) {
        if let Some(end) = self.end {
            self.current.rotations.push(Rotation {
                at: self.current.packets.len(),
                end,
                stats: self.decoder.take_stats(),
            });
        }
        self.send_current(None);
    }
}

#[inline]
fn push_decoded(out: &mut Vec<Decoded>, p: &Packet<'_>, base: usize, wire_len: u32) {
    let at = (p.payload.as_ptr() as usize).wrapping_sub(base);
    let (payload_at, payload_len) = match (u32::try_from(at), u32::try_from(p.payload.len())) {
        (Ok(at), Ok(len)) if len > 0 => (at, len),
        _ => (0, 0),
    };
    out.push(Decoded {
        v6: p.v6,
        src: p.src,
        dst: p.dst,
        proto: p.proto,
        sport: p.sport,
        dport: p.dport,
        hint: p.hint,
        payload_at,
        payload_len,
        wire_len,
    });
}

/// The flow thread: owns the flow table, hands intervals to the writer.
struct FlowThread;

impl FlowThread {
    fn spawn(iface: &str, writer: Sender<Interval>) -> std::io::Result<(JoinHandle<()>, Feeder)> {
        let (tx, rx) = bounded::<Batch>(IN_FLIGHT);
        let (spare_tx, spare_rx) = bounded::<Batch>(IN_FLIGHT + 2);
        let iface = iface.to_string();
        let handle = std::thread::Builder::new()
            .name("goprobe-flows".into())
            .spawn(move || flow_loop(&iface, &rx, &spare_tx, &writer))?;
        let feeder = Feeder {
            decoder: Decoder::new(),
            end: None,
            current: Batch::default(),
            tx: Some(tx),
            spare: spare_rx,
        };
        Ok((handle, feeder))
    }
}

fn flow_loop(iface: &str, rx: &Receiver<Batch>, spare: &Sender<Batch>, writer: &Sender<Interval>) {
    let mut table = goflow::FlowTable::new();
    for mut batch in rx {
        let mut rotations = batch.rotations.drain(..).peekable();
        for (i, d) in batch.packets.iter().enumerate() {
            while let Some(r) = rotations.next_if(|r| r.at <= i) {
                hand_over(iface, &mut table, r, writer);
            }
            let at = d.payload_at as usize;
            let payload = batch
                .buf
                .get(at..at + d.payload_len as usize)
                .unwrap_or(&[]);
            let p = Packet {
                v6: d.v6,
                src: d.src,
                dst: d.dst,
                proto: d.proto,
                sport: d.sport,
                dport: d.dport,
                hint: d.hint,
                payload,
            };
            table.add_decoded(&p, d.wire_len);
        }
        for r in rotations {
            hand_over(iface, &mut table, r, writer);
        }
        batch.packets.clear();
        batch.copied = false;
        // The reading thread takes it back if it has room; else it is freed.
        let _ = spare.try_send(batch);
    }
}

fn hand_over(iface: &str, table: &mut goflow::FlowTable, r: Rotation, writer: &Sender<Interval>) {
    let stats = CaptureStats {
        packets_received: r.stats.received,
        ..CaptureStats::default()
    };
    let interval = Interval {
        iface: iface.to_string(),
        timestamp: r.end,
        flows: table.rotate_with(r.stats),
        stats,
        pcap_received: None,
    };
    if writer.send(interval).is_err() {
        log::error!(
            "the writer thread is gone: the interval ending {} is lost",
            r.end
        );
    }
}

fn open_file(path: &Path) -> Result<Capture<Offline>, FileError> {
    Capture::from_file(path).map_err(|reason| FileError::Refused {
        path: path.to_path_buf(),
        reason,
    })
}

/// The time stamp of the file's first packet (None if it has none or the first read
/// fails: the full pass reports that).
fn first_timestamp(path: &Path) -> Result<Option<i64>, FileError> {
    let mut cap = open_file(path)?;
    Ok(cap.next_packet().ok().map(|p| p.header.ts.tv_sec))
}

/// Feeds one file to the flow thread; returns the packets read, with the error if the
/// file could not be read to its end.
fn replay_file(feeder: &mut Feeder, path: &Path) -> Result<u64, (u64, FileError)> {
    let cap = open_file(path).map_err(|e| (0, e))?;
    let link = LinkType::from_dlt(cap.get_datalink().0);
    let fast = std::fs::File::open(path)
        .ok()
        .and_then(|f| PcapReader::new(f).ok().flatten());
    let Some(mut reader) = fast else {
        return read_with_libpcap(feeder, path, cap, link, 0);
    };
    drop(cap);
    feeder.flush_copied();
    let finished = loop {
        let base = reader.buffer_addr();
        let outcome = loop {
            match reader.next_in_buffer() {
                Some(Next::Record(r)) => feeder.decode(link, r.data, base, r.wire_len, r.ts_secs),
                Some(Next::End) => break Some(true),
                Some(Next::Unusual) => break Some(false),
                None => break None,
            }
        };
        // The buffer goes to the flow thread with the packets decoded from it; the
        // reader goes on in the current batch's own (recycled) buffer.
        let fresh = std::mem::take(&mut feeder.current.buf);
        let full = reader.swap_buffer(fresh);
        feeder.send_current(Some(full));
        match outcome {
            Some(end) => break end,
            None => {
                reader.fill();
            }
        }
    };
    let done = reader.records();
    if finished {
        return Ok(done);
    }
    // libpcap takes over at the record the fast reader left: it cuts it to the snapshot
    // length or reports the error in its own words.
    drop(reader);
    let read_error = |reason| {
        let e = FileError::Read {
            path: path.to_path_buf(),
            packets: done,
            reason,
        };
        (done, e)
    };
    let mut cap = Capture::from_file(path).map_err(read_error)?;
    for _ in 0..done {
        if let Err(e) = cap.next_packet() {
            return Err(read_error(e));
        }
    }
    read_with_libpcap(feeder, path, cap, link, done)
}

/// Feeds the rest of a file through libpcap; `packets` were read before.
fn read_with_libpcap(
    feeder: &mut Feeder,
    path: &Path,
    mut cap: Capture<Offline>,
    link: LinkType,
    mut packets: u64,
) -> Result<u64, (u64, FileError)> {
    loop {
        match cap.next_packet() {
            Ok(p) => {
                feeder.copy_and_decode(link, p.data, p.header.len, p.header.ts.tv_sec);
                packets += 1;
            }
            Err(pcap::Error::NoMorePackets) => return Ok(packets),
            Err(reason) => {
                let e = FileError::Read {
                    path: path.to_path_buf(),
                    packets,
                    reason,
                };
                return Err((packets, e));
            }
        }
    }
}
