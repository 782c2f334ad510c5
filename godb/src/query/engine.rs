//! Running a statement: plan the days from metadata, open only the columns the query
//! and its condition need, then decode and aggregate the blocks on worker threads
//! (crossbeam scoped threads pulling block after block from a shared counter), each
//! into its own table; merge the tables, order and cut.
//!
//! A block that fails to decode is reported in the result and left out; the other
//! blocks are unaffected. The tables' memory is tracked across workers: when it would
//! pass the statement's limit, the run stops with [`QueryError::MemoryLimit`].

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::aggregate::{finish, CounterCols, Table};
use super::condition::Cols;
use super::error::QueryError;
use super::result::{QueryResult, SkippedBlock};
use super::statement::Statement;
use crate::{BlockData, Column, ColumnSet, Database, DayReader, IpColumn, ScanRequest};

/// The columns `stmt` reads: its attributes, its condition's, and the four counters.
pub fn needed_columns(stmt: &Statement) -> ColumnSet {
    let a = stmt.attributes;
    let n = stmt
        .condition
        .as_ref()
        .map(|c| c.columns())
        .unwrap_or_default();
    let mut set = ColumnSet::EMPTY
        .with(Column::BytesRcvd)
        .with(Column::BytesSent)
        .with(Column::PktsRcvd)
        .with(Column::PktsSent);
    for (wanted, col) in [
        (a.sip || n.sip, Column::Sip),
        (a.dip || n.dip, Column::Dip),
        (a.dport || n.dport, Column::Dport),
        (a.proto || n.proto, Column::Proto),
        (a.l7 || n.l7, Column::L7),
    ] {
        if wanted {
            set = set.with(col);
        }
    }
    set
}

/// Resolves the statement's interfaces against the database: all of them when the
/// statement names none, else the named ones, each of which must exist.
pub fn resolve_ifaces(db: &Database, stmt: &Statement) -> Result<Vec<String>, QueryError> {
    let known = db
        .interfaces()
        .map_err(|e| QueryError::Database(e.to_string()))?;
    if stmt.ifaces.is_empty() {
        if known.is_empty() {
            return Err(QueryError::EmptyDatabase);
        }
        return Ok(known);
    }
    for i in &stmt.ifaces {
        if !known.contains(i) {
            return Err(QueryError::UnknownInterface {
                iface: i.clone(),
                known: if known.is_empty() {
                    "no interfaces".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(stmt.ifaces.clone())
}

/// Runs `stmt` over `db`.
pub fn run(db: &Database, stmt: &Statement) -> Result<QueryResult, QueryError> {
    let start = Instant::now();
    stmt.validate()
        .map_err(|e| QueryError::Database(e.to_string()))?;
    let ifaces = resolve_ifaces(db, stmt)?;
    let plans = db
        .plan(&ScanRequest {
            ifaces: ifaces.clone(),
            first: stmt.first,
            last: stmt.last,
        })
        .map_err(|e| QueryError::Database(e.to_string()))?;
    let columns = needed_columns(stmt);
    let mut readers: Vec<(usize, DayReader)> = Vec::with_capacity(plans.len());
    let mut skipped = Vec::new();
    for plan in &plans {
        let iface_idx = ifaces.iter().position(|i| *i == plan.iface).unwrap_or(0);
        if let Some(why) = &plan.damaged {
            skipped.push(SkippedBlock {
                iface: plan.iface.clone(),
                timestamp: 0,
                reason: format!("day {} unreadable: {why}", plan.date),
            });
            continue;
        }
        match plan.open(db, columns) {
            Ok(r) => readers.push((iface_idx, r)),
            Err(e) => skipped.push(SkippedBlock {
                iface: plan.iface.clone(),
                timestamp: 0,
                reason: format!("day {} unreadable: {e}", plan.date),
            }),
        }
    }
    // Work items: (reader, block) pairs, largest days first is not needed: blocks are
    // similar in size and handed out one at a time.
    let work: Vec<(usize, usize)> = readers
        .iter()
        .enumerate()
        .flat_map(|(r, (_, reader))| (0..reader.len()).map(move |b| (r, b)))
        .collect();

    let threads = if stmt.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        stmt.threads
    }
    .clamp(1, work.len().max(1));

    let next = AtomicUsize::new(0);
    let used = AtomicUsize::new(0);
    let abort = AtomicBool::new(false);
    let skipped_m = Mutex::new(skipped);
    let span = Mutex::new((i64::MAX, i64::MIN, 0usize));

    let worker = || -> Result<Table, QueryError> {
        let mut table = Table::default();
        let mut reported = 0usize;
        let (mut lo, mut hi, mut blocks) = (i64::MAX, i64::MIN, 0usize);
        loop {
            if abort.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(r, b)) = work.get(i) else { break };
            let Some((iface_idx, reader)) = readers.get(r) else {
                break;
            };
            match reader.read(b) {
                Ok(block) => {
                    if block.timestamp < stmt.first || block.timestamp > stmt.last {
                        continue;
                    }
                    match add(&mut table, stmt, &block, *iface_idx as u16) {
                        Ok(()) => {
                            lo = lo.min(block.timestamp);
                            hi = hi.max(block.timestamp);
                            blocks += 1;
                        }
                        Err(reason) => lock(&skipped_m).push(SkippedBlock {
                            iface: block.iface.clone(),
                            timestamp: block.timestamp,
                            reason,
                        }),
                    }
                }
                Err(e) => lock(&skipped_m).push(SkippedBlock {
                    iface: e.iface.clone(),
                    timestamp: e.timestamp,
                    reason: e.to_string(),
                }),
            }
            let now = table.bytes();
            if now > reported {
                let total = used.fetch_add(now - reported, Ordering::Relaxed) + now - reported;
                reported = now;
                if total > stmt.memory_limit {
                    abort.store(true, Ordering::Relaxed);
                    return Err(QueryError::MemoryLimit {
                        limit_mib: stmt.memory_limit >> 20,
                        entries: table.map.len(),
                    });
                }
            }
        }
        let mut s = lock(&span);
        s.0 = s.0.min(lo);
        s.1 = s.1.max(hi);
        s.2 += blocks;
        Ok(table)
    };

    let results: Vec<Result<Table, QueryError>> = crossbeam::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(|_| worker())).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(QueryError::Worker)))
            .collect()
    })
    .unwrap_or_else(|_| vec![Err(QueryError::Worker)]);

    let mut table = Table::default();
    for r in results {
        table.merge(r?);
        if table.bytes() > stmt.memory_limit {
            return Err(QueryError::MemoryLimit {
                limit_mib: stmt.memory_limit >> 20,
                entries: table.map.len(),
            });
        }
    }
    let totals = table.totals;
    let rows_scanned = table.rows_scanned;
    let (rows, hits_total) = finish(stmt, table, &ifaces);
    let (lo, hi, blocks_read) = *lock(&span);
    let mut skipped = skipped_m.into_inner().unwrap_or_else(|p| p.into_inner());
    skipped.sort_by(|a, b| (&a.iface, a.timestamp).cmp(&(&b.iface, b.timestamp)));
    Ok(QueryResult {
        rows,
        totals,
        hits_total,
        interfaces: ifaces,
        time_first: if blocks_read > 0 { lo } else { stmt.first },
        time_last: if blocks_read > 0 { hi } else { stmt.last },
        blocks_read,
        rows_scanned,
        skipped,
        duration: start.elapsed(),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Checks the lengths of a decoded block's columns and aggregates it.
fn add(table: &mut Table, stmt: &Statement, b: &BlockData, iface: u16) -> Result<(), String> {
    let rows = b.rows;
    let v4 = b.rows_v4;
    let empty_ip = IpColumn::default();
    let sip = b.sip.as_ref().unwrap_or(&empty_ip);
    let dip = b.dip.as_ref().unwrap_or(&empty_ip);
    let check_ip = |name: &str, c: &Option<IpColumn>| -> Result<(), String> {
        match c {
            Some(c) if c.v4.len() != v4 || c.v4.len() + c.v6.len() != rows => Err(format!(
                "column {name} has {} IPv4 and {} IPv6 rows, expected {v4} of {rows}",
                c.v4.len(),
                c.v6.len()
            )),
            _ => Ok(()),
        }
    };
    check_ip("sip", &b.sip)?;
    check_ip("dip", &b.dip)?;
    fn check<T>(name: &str, c: &Option<Vec<T>>, rows: usize) -> Result<(), String> {
        match c {
            Some(v) if v.len() != rows => Err(format!(
                "column {name} has {} rows, expected {rows}",
                v.len()
            )),
            _ => Ok(()),
        }
    }
    check("proto", &b.proto, rows)?;
    check("dport", &b.dport, rows)?;
    check("l7", &b.l7, rows)?;
    let counters = CounterCols {
        bytes_rcvd: counter(&b.bytes_rcvd, "bytes_rcvd", rows)?,
        bytes_sent: counter(&b.bytes_sent, "bytes_sent", rows)?,
        pkts_rcvd: counter(&b.pkts_rcvd, "pkts_rcvd", rows)?,
        pkts_sent: counter(&b.pkts_sent, "pkts_sent", rows)?,
    };
    let cols = Cols {
        rows,
        rows_v4: v4,
        sip4: &sip.v4,
        sip6: &sip.v6,
        dip4: &dip.v4,
        dip6: &dip.v6,
        dport: b.dport.as_deref().unwrap_or(&[]),
        proto: b.proto.as_deref().unwrap_or(&[]),
        l7: b.l7.as_deref().unwrap_or(&[]),
        pkts_rcvd: counters.pkts_rcvd,
        pkts_sent: counters.pkts_sent,
    };
    table.add_block(stmt, &cols, &counters, b.timestamp, iface);
    Ok(())
}

fn counter<'a>(c: &'a Option<Vec<u64>>, name: &str, rows: usize) -> Result<&'a [u64], String> {
    match c {
        Some(v) if v.len() == rows => Ok(v),
        Some(v) => Err(format!(
            "column {name} has {} rows, expected {rows}",
            v.len()
        )),
        None => Err(format!("column {name} was not decoded")),
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
