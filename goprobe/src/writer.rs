//! The writer thread: the one place where flow tables become godb blocks.
//!
//! Capture threads (live or replay) hand each finished interval over an unbounded
//! crossbeam channel and go on at once; this thread aggregates the interval into a
//! [`godb::Block`] (`IntervalFlows::into_block`), appends it to the interface's
//! `BlockWriter` (durable on return) and logs one line per interval and interface.
//!
//! A writeout that fails for a reason that may pass (disk full, an I/O error, the
//! interface locked by another writer) does not lose the interval: the block is held in
//! memory, in order behind the interface's earlier held blocks, and written when a
//! retry succeeds (every [`WriterOptions::retry`], and whenever the interface's next
//! interval arrives). The error is logged once per interval and interface, the retries
//! in between only at debug level. The held blocks of all interfaces are bounded by
//! [`WriterOptions::backlog_bytes`]: beyond it the oldest held block is dropped, logged
//! with its interface, time and flow count, and counted. Errors that cannot pass (an
//! interval older than the stored ones, a time stamp out of range) drop the interval at
//! once, logged and counted. At the end the held blocks get one last try; what still
//! fails is logged as lost. The thread ends when every sender is gone, returning its
//! totals.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use godb::{Block, CaptureStats, Database};

/// Default bound of the blocks held in memory while writeouts fail (256 MiB).
pub const DEFAULT_BACKLOG_BYTES: usize = 256 << 20;

/// Default time between retries of held blocks.
pub const DEFAULT_RETRY: Duration = Duration::from_secs(10);

/// One finished interval of one interface, on its way to the writer.
pub struct Interval {
    /// Interface the flows were captured on (godb's folder name).
    pub iface: String,
    /// End of the interval, UTC seconds (a multiple of [`godb::INTERVAL_SECS`]).
    pub timestamp: i64,
    /// The flows and decoder counters of the interval.
    pub flows: goflow::IntervalFlows,
    /// Drop counts of the interval. `packets_received` and `packets_non_ip` are left
    /// 0 so that `into_block` fills them from the decoder (packets handed to it).
    pub stats: CaptureStats,
    /// libpcap's own "received" count of the interval, for the log (live only).
    pub pcap_received: Option<u64>,
}

/// What the writer did, summed over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterTotals {
    /// Blocks appended.
    pub blocks: u64,
    /// Flow rows appended.
    pub rows: u64,
    /// Capture statistics of the appended blocks, summed.
    pub stats: CaptureStats,
    /// Intervals with neither flows nor counts, not stored.
    pub empty: u64,
    /// Intervals that could not be stored (each logged as an error): refused by the
    /// database, dropped from a full backlog, or still held at the end.
    pub failed: u64,
    /// Of `failed`: the intervals dropped because the backlog was full.
    pub dropped: u64,
    /// Of `blocks`: the blocks written after being held (late but complete).
    pub late: u64,
    /// Blocks held in memory right now, waiting for a writeout to succeed.
    pub held: u64,
    /// Their estimated size in bytes.
    pub held_bytes: u64,
}

/// How the writer deals with failing writeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Memory for blocks that could not be written yet, in bytes (estimated from their
    /// rows); 0 holds nothing (a failed writeout drops its interval).
    pub backlog_bytes: usize,
    /// Time between retries while blocks are held.
    pub retry: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            backlog_bytes: DEFAULT_BACKLOG_BYTES,
            retry: DEFAULT_RETRY,
        }
    }
}

/// A running writer thread.
pub struct Writer {
    tx: Option<Sender<Interval>>,
    thread: Option<JoinHandle<WriterTotals>>,
    progress: Arc<Mutex<WriterTotals>>,
}

impl Writer {
    /// Starts the writer thread on an open database with the default options.
    pub fn spawn(db: Arc<Database>) -> std::io::Result<Writer> {
        Writer::spawn_with(db, WriterOptions::default())
    }

    /// Starts the writer thread on an open database.
    pub fn spawn_with(db: Arc<Database>, options: WriterOptions) -> std::io::Result<Writer> {
        let (tx, rx) = unbounded();
        let progress = Arc::new(Mutex::new(WriterTotals::default()));
        let shared = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("goprobe-writer".into())
            .spawn(move || {
                let mut state = State {
                    db: &db,
                    options,
                    ifaces: BTreeMap::new(),
                    totals: WriterTotals::default(),
                    progress: shared,
                };
                state.run(&rx);
                state.totals
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            progress,
        })
    }

    /// A sender for a capture thread.
    pub fn sender(&self) -> Sender<Interval> {
        match &self.tx {
            Some(tx) => tx.clone(),
            // `finish` consumes the writer, so `tx` is always present here; a closed
            // channel is the honest fallback (sends fail and are logged).
            None => unbounded().0,
        }
    }

    /// The totals so far (updated after every interval and retry).
    pub fn progress(&self) -> WriterTotals {
        match self.progress.lock() {
            Ok(t) => *t,
            Err(p) => *p.into_inner(),
        }
    }

    /// Drops the writer's own sender and waits until every queued interval is stored
    /// (the capture threads must have dropped theirs).
    pub fn finish(mut self) -> WriterTotals {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(totals)) => totals,
            _ => {
                log::error!("the writer thread panicked: intervals still queued are lost");
                WriterTotals {
                    failed: 1,
                    ..WriterTotals::default()
                }
            }
        }
    }
}

/// A block waiting for its writeout.
struct Held {
    block: Block,
    pcap_received: Option<u64>,
    bytes: usize,
    /// Failed attempts to write this block so far.
    attempts: u32,
    /// A failed writeout held it back (of this block or one before it).
    waited: bool,
    /// The error of its last failed attempt.
    last_error: Option<String>,
}

/// One interface's writer and held blocks.
#[derive(Default)]
struct Iface {
    writer: Option<godb::BlockWriter>,
    held: VecDeque<Held>,
}

struct State<'a> {
    db: &'a Database,
    options: WriterOptions,
    ifaces: BTreeMap<String, Iface>,
    totals: WriterTotals,
    progress: Arc<Mutex<WriterTotals>>,
}

/// Whether a failed append can succeed later (disk full, I/O errors, a lock held by
/// another writer) or never will.
fn is_permanent(e: &godb::Error) -> bool {
    matches!(
        e,
        godb::Error::TimestampOrder { .. }
            | godb::Error::TimestampOutOfRange(_)
            | godb::Error::BlockTooLarge(_)
            | godb::Error::InvalidInterface { .. }
    )
}

/// Estimated memory of a held block.
fn block_bytes(block: &Block) -> usize {
    std::mem::size_of::<Held>() + block.rows.len() * std::mem::size_of::<godb::FlowRow>()
}

impl State<'_> {
    fn run(&mut self, rx: &Receiver<Interval>) {
        loop {
            let next = if self.totals.held > 0 {
                rx.recv_timeout(self.options.retry)
            } else {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            };
            match next {
                Ok(interval) => self.accept(interval),
                Err(RecvTimeoutError::Timeout) => self.retry_all(false),
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.publish();
        }
        if self.totals.held > 0 {
            // The last try; its failures are reported with the loss below.
            self.retry_all(false);
            for (name, iface) in &mut self.ifaces {
                for h in iface.held.drain(..) {
                    self.totals.failed += 1;
                    log::error!(
                        "{name}: interval ending {}: lost at exit, {} flows never written \
                         ({} failed attempts{})",
                        format_time(h.block.timestamp),
                        h.block.rows.len(),
                        h.attempts,
                        h.last_error
                            .as_deref()
                            .map(|e| format!(", last: {e}"))
                            .unwrap_or_default()
                    );
                }
            }
            self.totals.held = 0;
            self.totals.held_bytes = 0;
        }
        self.publish();
    }

    fn publish(&self) {
        match self.progress.lock() {
            Ok(mut t) => *t = self.totals,
            Err(p) => *p.into_inner() = self.totals,
        }
    }

    /// Takes a new interval: queues it behind the interface's held blocks and writes
    /// what it can, logging a failure (once for this interval).
    fn accept(&mut self, interval: Interval) {
        let Interval {
            iface,
            timestamp,
            flows,
            stats,
            pcap_received,
        } = interval;
        let block = flows.into_block(timestamp, stats);
        if block.rows.is_empty() && block.stats == CaptureStats::default() {
            self.totals.empty += 1;
            log::info!(
                "{iface}: interval ending {}: no packets",
                format_time(timestamp)
            );
            return;
        }
        let bytes = block_bytes(&block);
        let entry = self.ifaces.entry(iface.clone()).or_default();
        entry.held.push_back(Held {
            block,
            pcap_received,
            bytes,
            attempts: 0,
            waited: false,
            last_error: None,
        });
        self.totals.held += 1;
        self.totals.held_bytes += bytes as u64;
        self.flush(&iface, true);
        self.enforce_bound();
    }

    fn retry_all(&mut self, loud: bool) {
        let names: Vec<String> = self
            .ifaces
            .iter()
            .filter(|(_, i)| !i.held.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            self.flush(&name, loud);
        }
    }

    /// Writes the interface's held blocks in order until one fails. A failure that
    /// cannot pass drops that block and goes on; one that may pass stops the flush (the
    /// later blocks must not overtake it) and is logged if `loud`.
    fn flush(&mut self, name: &str, loud: bool) {
        let Some(iface) = self.ifaces.get_mut(name) else {
            return;
        };
        let mut late_written = 0u64;
        let mut stopped = false;
        while let Some(h) = iface.held.front_mut() {
            let start = Instant::now();
            let writer = match &mut iface.writer {
                Some(w) => w,
                None => match self.db.writer(name) {
                    Ok(w) => iface.writer.insert(w),
                    Err(e) => {
                        h.attempts += 1;
                        let what = format!("cannot open the database writer: {e}");
                        h.last_error = Some(what.clone());
                        if is_permanent(&e) {
                            log::error!(
                                "{name}: interval ending {}: {what}; {} flows lost",
                                format_time(h.block.timestamp),
                                h.block.rows.len()
                            );
                            let bytes = h.bytes as u64;
                            iface.held.pop_front();
                            self.totals.failed += 1;
                            self.totals.held -= 1;
                            self.totals.held_bytes -= bytes;
                            continue;
                        }
                        report_held(name, &what, &iface.held, loud);
                        stopped = true;
                        break;
                    }
                },
            };
            let before = writer.committed();
            let result = writer.append(&h.block);
            let stored = writer.committed() > before;
            if let Err(e) = &result {
                if stored {
                    // Only the final folder fsync failed: the block is visible and
                    // must not be written again.
                    log::warn!(
                        "{name}: interval ending {}: stored, but making it durable \
                         failed: {e}",
                        format_time(h.block.timestamp)
                    );
                } else if is_permanent(e) {
                    log::error!(
                        "{name}: interval ending {}: appending {} flows to the database \
                         failed: {e}; the interval is lost",
                        format_time(h.block.timestamp),
                        h.block.rows.len()
                    );
                } else {
                    h.attempts += 1;
                    let what = format!("writeout failed: {e}");
                    h.last_error = Some(what.clone());
                    report_held(name, &what, &iface.held, loud);
                    stopped = true;
                    break;
                }
            }
            let Some(h) = iface.held.pop_front() else {
                break;
            };
            self.totals.held -= 1;
            self.totals.held_bytes -= h.bytes as u64;
            if !stored {
                self.totals.failed += 1;
                continue;
            }
            let block = &h.block;
            let s = &block.stats;
            let libpcap = match h.pcap_received {
                Some(n) => format!(" (libpcap: {n} received)"),
                None => String::new(),
            };
            let late = if h.waited {
                late_written += 1;
                format!(
                    " (late: held back by failed writeouts, {} of its own)",
                    h.attempts
                )
            } else {
                String::new()
            };
            log::info!(
                "{name}: interval ending {}: {} packets{libpcap} ({} non-IP), \
                 {} dropped, {} if-dropped, {} flows, written in {:.1} ms{late}",
                format_time(block.timestamp),
                s.packets_received,
                s.packets_non_ip,
                s.packets_dropped,
                s.packets_if_dropped,
                block.rows.len(),
                start.elapsed().as_secs_f64() * 1e3
            );
            self.totals.blocks += 1;
            self.totals.rows += block.rows.len() as u64;
            self.totals.stats.add(&block.stats);
            self.totals.late += u64::from(h.waited);
        }
        if stopped {
            for h in &mut iface.held {
                h.waited = true;
            }
        }
        if late_written > 0 && iface.held.is_empty() {
            log::info!("{name}: writeouts work again: all {late_written} held intervals written");
        }
    }

    /// Drops the oldest held blocks (of any interface) while the backlog is over its
    /// bound, saying what is dropped.
    fn enforce_bound(&mut self) {
        while self.totals.held_bytes > self.options.backlog_bytes as u64 {
            let oldest = self
                .ifaces
                .iter()
                .filter_map(|(n, i)| i.held.front().map(|h| (h.block.timestamp, n.clone())))
                .min();
            let Some((_, name)) = oldest else {
                break;
            };
            let Some(h) = self.ifaces.get_mut(&name).and_then(|i| i.held.pop_front()) else {
                break;
            };
            self.totals.held -= 1;
            self.totals.held_bytes -= h.bytes as u64;
            self.totals.failed += 1;
            self.totals.dropped += 1;
            log::error!(
                "{name}: interval ending {}: DROPPED, {} flows ({} packets) lost: the \
                 backlog of unwritten intervals is full ({} MiB, backlog_mib); {} dropped \
                 so far, {} intervals still held",
                format_time(h.block.timestamp),
                h.block.rows.len(),
                h.block.stats.packets_received,
                self.options.backlog_bytes >> 20,
                self.totals.dropped,
                self.totals.held
            );
        }
    }
}

/// Logs a failed writeout of an interface with `held` blocks waiting: as an error when
/// `loud` (once per interval), at debug level for the retries in between.
fn report_held(name: &str, what: &str, held: &VecDeque<Held>, loud: bool) {
    let (first, last) = match (held.front(), held.back()) {
        (Some(f), Some(l)) => (f.block.timestamp, l.block.timestamp),
        _ => return,
    };
    let bytes: usize = held.iter().map(|h| h.bytes).sum();
    let level = if loud {
        log::Level::Error
    } else {
        log::Level::Debug
    };
    log::log!(
        level,
        "{name}: {what}; capture goes on, {} interval(s) ending {} .. {} held in memory \
         ({:.1} MiB), retried every interval and in between",
        held.len(),
        format_time(first),
        format_time(last),
        bytes as f64 / f64::from(1 << 20)
    );
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a UTC time stamp (the number itself if out of range).
pub fn format_time(secs: i64) -> String {
    match chrono::DateTime::from_timestamp(secs, 0) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => secs.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal Ethernet + IPv4 + UDP frame from 192.0.2.1:40000 to 192.0.2.2:53.
    fn frame() -> Vec<u8> {
        let mut f = vec![2, 2, 2, 2, 2, 2, 4, 4, 4, 4, 4, 4, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        f.extend_from_slice(&[0x9c, 0x40, 0, 53, 0, 8, 0, 0]);
        f
    }

    fn interval(table: &mut goflow::FlowTable, timestamp: i64) -> Interval {
        Interval {
            iface: "t0".into(),
            timestamp,
            flows: table.rotate(),
            stats: CaptureStats {
                packets_dropped: 2,
                ..CaptureStats::default()
            },
            pcap_received: Some(5),
        }
    }

    #[test]
    fn stores_blocks_skips_empty_intervals_and_counts_failures() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        let writer = Writer::spawn(Arc::clone(&db)).unwrap();
        let tx = writer.sender();
        let link = goflow::LinkType::from_dlt(1);
        let mut table = goflow::FlowTable::new();
        for _ in 0..3 {
            table.add_packet(link, &frame(), 60, 590);
        }
        tx.send(interval(&mut table, 600)).unwrap();
        // Nothing captured, but drops were counted: still stored.
        tx.send(interval(&mut table, 900)).unwrap();
        // An earlier interval than the last stored one: godb refuses it.
        table.add_packet(link, &frame(), 60, 100);
        tx.send(interval(&mut table, 300)).unwrap();
        // Truly empty: skipped.
        let mut empty = interval(&mut table, 1200);
        empty.stats = CaptureStats::default();
        tx.send(empty).unwrap();
        drop(tx);
        let totals = writer.finish();
        assert_eq!(
            (totals.blocks, totals.rows, totals.failed, totals.empty),
            (2, 1, 1, 1)
        );
        assert_eq!(totals.stats.packets_received, 3);
        assert_eq!(totals.stats.packets_dropped, 4);

        let req = godb::ScanRequest {
            ifaces: vec!["t0".into()],
            first: 0,
            last: i64::MAX,
        };
        let mut seen = Vec::new();
        for day in db.plan(&req).unwrap() {
            let reader = day.open(&db, godb::ColumnSet::ALL).unwrap();
            for i in 0..reader.len() {
                let b = reader.read(i).unwrap();
                seen.push((b.timestamp, b.rows, b.stats.packets_received));
            }
        }
        assert_eq!(seen, [(600, 1, 3), (900, 0, 0)]);
    }

    /// Log records of this test binary, for the tests that check what is logged.
    static RECORDS: std::sync::Mutex<Vec<(log::Level, String)>> = std::sync::Mutex::new(Vec::new());

    struct Recorder;

    impl log::Log for Recorder {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            // Formatted before the lock is taken: nothing runs under it but the push.
            let line = record.args().to_string();
            if let Ok(mut r) = RECORDS.lock() {
                r.push((record.level(), line));
            }
        }
        fn flush(&self) {}
    }

    /// The recorded lines mentioning `needle`, with their levels.
    fn records(needle: &str) -> Vec<(log::Level, String)> {
        RECORDS
            .lock()
            .map(|r| {
                r.iter()
                    .filter(|(_, m)| m.contains(needle))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn a_failing_writeout_is_logged_once_per_interval_and_retried_quietly_until_it_works() {
        static RECORDER: Recorder = Recorder;
        if log::set_logger(&RECORDER).is_err() {
            eprintln!("note: another logger is installed in this test binary: skipping");
            return;
        }
        // Every wait below is bounded (a deadline, then a failure naming what did not
        // happen), and so is the writer's end: a lost wake-up fails the test instead of
        // hanging the test binary.
        const LIMIT: Duration = Duration::from_secs(30);
        log::set_max_level(log::LevelFilter::Trace);
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("db")).unwrap());
        // The interface folder is a link: godb refuses to write through it (an I/O
        // error, one that may pass), like a full disk would fail.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let link = db.path().join("held0");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let writer = Writer::spawn_with(
            Arc::clone(&db),
            WriterOptions {
                backlog_bytes: 1 << 20,
                retry: Duration::from_millis(20),
            },
        )
        .unwrap();
        let tx = writer.sender();
        let link_type = goflow::LinkType::from_dlt(1);
        let mut table = goflow::FlowTable::new();
        let mut send = |ts: i64| {
            table.add_packet(link_type, &frame(), 60, ts - 1);
            let mut i = interval(&mut table, ts);
            i.iface = "held0".into();
            tx.send(i).unwrap();
        };
        let wait = |what: &str, done: &dyn Fn(&WriterTotals) -> bool| {
            let deadline = Instant::now() + LIMIT;
            while !done(&writer.progress()) {
                assert!(
                    Instant::now() < deadline,
                    "{what}: not seen within {LIMIT:?}; writer: {:?}; log level now {}; \
                     {} log lines of held0",
                    writer.progress(),
                    log::max_level(),
                    records("held0").len()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        send(600);
        wait("a retry", &|_| records("held0: cannot open").len() >= 4);
        send(900);
        wait("two held", &|p| p.held == 2);
        wait("more retries", &|_| {
            records("held0: cannot open").len() >= 8
        });
        let lines = records("held0: cannot open");
        let errors = lines
            .iter()
            .filter(|(l, _)| *l == log::Level::Error)
            .count();
        // One error per interval; the retries in between at debug level.
        assert_eq!(errors, 2, "{lines:?}");
        assert!(lines.iter().all(|(l, m)| *l == log::Level::Error
            || (*l == log::Level::Debug && m.contains("held in memory"))));

        std::fs::remove_file(&link).unwrap();
        wait("written", &|p| p.held == 0);
        drop(tx);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done_tx.send(writer.finish());
        });
        let totals = done_rx
            .recv_timeout(LIMIT)
            .expect("the writer thread did not end after its last sender was dropped");
        assert_eq!((totals.blocks, totals.late, totals.failed), (2, 2, 0));
        assert_eq!(
            records("writeouts work again: all 2 held intervals").len(),
            1
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
