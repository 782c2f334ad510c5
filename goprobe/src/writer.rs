//! The writer thread: the one place where flow tables become godb blocks.
//!
//! Capture threads (live or replay) hand each finished interval over an unbounded
//! crossbeam channel and go on at once; this thread aggregates the interval into a
//! [`godb::Block`] (`IntervalFlows::into_block`), appends it to the interface's
//! `BlockWriter` (durable on return) and logs one line per interval and interface.
//! An append that fails is logged with its context and counted; the thread goes on
//! with the next interval. It ends when every sender is gone, returning its totals.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{unbounded, Receiver, Sender};
use godb::{CaptureStats, Database};

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
    /// Intervals that could not be stored (logged as errors).
    pub failed: u64,
}

/// A running writer thread.
pub struct Writer {
    tx: Option<Sender<Interval>>,
    thread: Option<JoinHandle<WriterTotals>>,
}

impl Writer {
    /// Starts the writer thread on an open database.
    pub fn spawn(db: Arc<Database>) -> std::io::Result<Writer> {
        let (tx, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("goprobe-writer".into())
            .spawn(move || write_loop(&db, rx))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
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

fn write_loop(db: &Database, rx: Receiver<Interval>) -> WriterTotals {
    let mut writers: HashMap<String, godb::BlockWriter> = HashMap::new();
    let mut totals = WriterTotals::default();
    for interval in rx {
        let start = Instant::now();
        let Interval {
            iface,
            timestamp,
            flows,
            stats,
            pcap_received,
        } = interval;
        let block = flows.into_block(timestamp, stats);
        let when = format_time(timestamp);
        if block.rows.is_empty() && block.stats == CaptureStats::default() {
            totals.empty += 1;
            log::info!("{iface}: interval ending {when}: no packets");
            continue;
        }
        let writer = match writers.entry(iface.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => match db.writer(&iface) {
                Ok(w) => v.insert(w),
                Err(e) => {
                    totals.failed += 1;
                    log::error!(
                        "{iface}: interval ending {when}: cannot open the database writer: {e}; \
                         {} flows lost",
                        block.rows.len()
                    );
                    continue;
                }
            },
        };
        match writer.append(&block) {
            Ok(_) => {
                let s = &block.stats;
                let libpcap = match pcap_received {
                    Some(n) => format!(" (libpcap: {n} received)"),
                    None => String::new(),
                };
                log::info!(
                    "{iface}: interval ending {when}: {} packets{libpcap} ({} non-IP), \
                     {} dropped, {} if-dropped, {} flows, written in {:.1} ms",
                    s.packets_received,
                    s.packets_non_ip,
                    s.packets_dropped,
                    s.packets_if_dropped,
                    block.rows.len(),
                    start.elapsed().as_secs_f64() * 1e3
                );
                totals.blocks += 1;
                totals.rows += block.rows.len() as u64;
                totals.stats.add(&block.stats);
            }
            Err(e) => {
                totals.failed += 1;
                log::error!(
                    "{iface}: interval ending {when}: appending {} flows to the database failed: {e}",
                    block.rows.len()
                );
            }
        }
    }
    totals
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
}
