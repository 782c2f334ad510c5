//! Replay: the flows of capture files (pcap or pcapng) stored under one interface
//! name, as if they had been captured live.
//!
//! Each file is opened with libpcap's offline reader first (which validates it and
//! names its link type). Classic pcap files are then read by the fast reader of
//! [`crate::pcapfile`]; pcapng files, older pcap versions and whatever that reader
//! leaves aside (a record cut short or longer than the snapshot length, from that
//! record on) go through libpcap, so every file reads exactly as libpcap reads it.
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

use crossbeam::channel::Sender;
use godb::{CaptureStats, Database};
use pcap::{Capture, Offline};

use crate::capture::interval_end;
use crate::pcapfile::{Next, PcapReader};
use crate::writer::{Interval, Writer, WriterTotals};

/// A problem with one input file; the replay goes on with the others.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// libpcap does not accept the file (missing, unreadable, not a capture file).
    #[error("{}: cannot read as pcap or pcapng: {source}", path.display())]
    Refused {
        /// The file.
        path: PathBuf,
        /// libpcap's reason.
        source: pcap::Error,
    },
    /// Reading stopped inside the file (truncated record, corrupt block).
    #[error("{}: read error after {packets} packets (they are kept): {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Packets read before the error.
        packets: u64,
        /// libpcap's reason.
        source: pcap::Error,
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

    let mut state = ReplayState {
        iface: iface.to_string(),
        table: goflow::FlowTable::new(),
        end: None,
        received: 0,
        tx: writer.sender(),
    };
    for (_, path) in ordered {
        match replay_file(&mut state, path) {
            Ok(n) => summary.packets += n,
            Err((n, e)) => {
                summary.packets += n;
                summary.errors.push(e);
            }
        }
    }
    state.hand_over();
    drop(state);
    summary.written = writer.finish();
    Ok(summary)
}

struct ReplayState {
    iface: String,
    table: goflow::FlowTable,
    /// End of the current interval; None before the first packet.
    end: Option<i64>,
    /// Packets of the current interval.
    received: u64,
    tx: Sender<Interval>,
}

impl ReplayState {
    /// Accounts one packet, handing the interval over first when the packet starts a
    /// later one.
    #[inline]
    fn packet(&mut self, link: goflow::LinkType, data: &[u8], wire_len: u32, ts: i64) {
        let end = interval_end(ts);
        match self.end {
            None => self.end = Some(end),
            Some(cur) if end > cur => {
                self.hand_over();
                self.end = Some(end);
            }
            Some(_) => {}
        }
        self.table.add_packet(link, data, wire_len, ts);
        self.received += 1;
    }

    fn hand_over(&mut self) {
        let Some(end) = self.end else {
            return;
        };
        let stats = CaptureStats {
            packets_received: std::mem::take(&mut self.received),
            ..CaptureStats::default()
        };
        let interval = Interval {
            iface: self.iface.clone(),
            timestamp: end,
            flows: self.table.rotate(),
            stats,
            pcap_received: None,
        };
        if self.tx.send(interval).is_err() {
            log::error!("the writer thread is gone: the interval ending {end} is lost");
        }
    }
}

fn open_file(path: &Path) -> Result<Capture<Offline>, FileError> {
    Capture::from_file(path).map_err(|source| FileError::Refused {
        path: path.to_path_buf(),
        source,
    })
}

/// The time stamp of the file's first packet (None if it has none or the first read
/// fails: the full pass reports that).
fn first_timestamp(path: &Path) -> Result<Option<i64>, FileError> {
    let mut cap = open_file(path)?;
    Ok(cap.next_packet().ok().map(|p| p.header.ts.tv_sec))
}

/// Feeds one file into the flow table; returns the packets read, with the error if the
/// file could not be read to its end.
fn replay_file(state: &mut ReplayState, path: &Path) -> Result<u64, (u64, FileError)> {
    let cap = open_file(path).map_err(|e| (0, e))?;
    let link = goflow::LinkType::from_dlt(cap.get_datalink().0);
    let fast = std::fs::File::open(path)
        .ok()
        .and_then(|f| PcapReader::new(f).ok().flatten());
    let Some(mut reader) = fast else {
        return read_with_libpcap(state, path, cap, link, 0);
    };
    drop(cap);
    loop {
        match reader.next_record() {
            Next::Record(r) => state.packet(link, r.data, r.wire_len, r.ts_secs),
            Next::End => return Ok(reader.records()),
            Next::Unusual => break,
        }
    }
    // libpcap takes over at the record the fast reader left: it cuts it to the snapshot
    // length or reports the error in its own words.
    let done = reader.records();
    drop(reader);
    let read_error = |source| {
        let e = FileError::Read {
            path: path.to_path_buf(),
            packets: done,
            source,
        };
        (done, e)
    };
    let mut cap = Capture::from_file(path).map_err(read_error)?;
    for _ in 0..done {
        if let Err(e) = cap.next_packet() {
            return Err(read_error(e));
        }
    }
    read_with_libpcap(state, path, cap, link, done)
}

/// Feeds the rest of a file through libpcap; `packets` were read before.
fn read_with_libpcap(
    state: &mut ReplayState,
    path: &Path,
    mut cap: Capture<Offline>,
    link: goflow::LinkType,
    mut packets: u64,
) -> Result<u64, (u64, FileError)> {
    loop {
        match cap.next_packet() {
            Ok(p) => {
                state.packet(link, p.data, p.header.len, p.header.ts.tv_sec);
                packets += 1;
            }
            Err(pcap::Error::NoMorePackets) => return Ok(packets),
            Err(source) => {
                let e = FileError::Read {
                    path: path.to_path_buf(),
                    packets,
                    source,
                };
                return Err((packets, e));
            }
        }
    }
}
