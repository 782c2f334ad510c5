//! The aggregation core: the rows of one block, filtered by the condition's mask, summed
//! into a hash table keyed by the queried attributes; then the tables of the workers
//! merged, ordered and cut.
//!
//! The key is a fixed-size `Copy` struct (unqueried attributes stay zero), hashed with
//! FxHash, so adding a row never allocates; the table grows amortised.

use std::net::IpAddr;

use rustc_hash::FxHashMap;

use super::condition::Cols;
use super::result::ResultRow;
use super::statement::{Direction, SortBy, Statement};
use crate::Counters;

/// The grouping key of a result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Key {
    sip: [u8; 16],
    dip: [u8; 16],
    time: i64,
    iface: u16,
    dport: u16,
    l7: u16,
    proto: u8,
    /// 4 for IPv4 addresses (in the first four bytes), 6 for IPv6, 0 when no address is
    /// part of the key.
    ipver: u8,
}

/// Bytes one table entry takes, counting the control byte of the hash table.
pub(crate) const ENTRY_BYTES: usize = std::mem::size_of::<(Key, Counters)>() + 1;

/// The counter columns of a block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CounterCols<'a> {
    pub bytes_rcvd: &'a [u64],
    pub bytes_sent: &'a [u64],
    pub pkts_rcvd: &'a [u64],
    pub pkts_sent: &'a [u64],
}

/// One worker's table and scratch space.
#[derive(Debug, Default)]
pub(crate) struct Table {
    pub map: FxHashMap<Key, Counters>,
    pub totals: Counters,
    pub rows_scanned: u64,
    mask: Vec<bool>,
    pool: Vec<Vec<bool>>,
}

impl Table {
    /// Bytes the table holds now.
    pub fn bytes(&self) -> usize {
        self.map.capacity().saturating_mul(ENTRY_BYTES)
    }

    /// Adds the rows of one block. `cols` and `counters` must have `cols.rows` rows
    /// (the caller checks the lengths); shorter columns just end the block early.
    pub fn add_block(
        &mut self,
        stmt: &Statement,
        cols: &Cols<'_>,
        counters: &CounterCols<'_>,
        time: i64,
        iface: u16,
    ) {
        let a = stmt.attributes;
        let mut template = Key::default();
        if a.time {
            template.time = time;
        }
        if a.iface {
            template.iface = iface;
        }
        let filtered = match &stmt.condition {
            Some(c) => {
                c.eval(cols, &mut self.mask, &mut self.pool);
                true
            }
            None => false,
        };
        self.rows_scanned += cols.rows as u64;
        let with_ip = a.sip || a.dip;
        let rows = cols
            .rows
            .min(counters.bytes_rcvd.len())
            .min(counters.bytes_sent.len())
            .min(counters.pkts_rcvd.len())
            .min(counters.pkts_sent.len());
        let v4 = cols.rows_v4.min(rows);
        for i in 0..rows {
            if filtered && !self.mask.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut k = template;
            if with_ip {
                if i < v4 {
                    k.ipver = 4;
                    if a.sip {
                        if let Some(ip) = cols.sip4.get(i) {
                            k.sip[..4].copy_from_slice(ip);
                        }
                    }
                    if a.dip {
                        if let Some(ip) = cols.dip4.get(i) {
                            k.dip[..4].copy_from_slice(ip);
                        }
                    }
                } else {
                    k.ipver = 6;
                    if a.sip {
                        if let Some(ip) = cols.sip6.get(i - v4) {
                            k.sip = *ip;
                        }
                    }
                    if a.dip {
                        if let Some(ip) = cols.dip6.get(i - v4) {
                            k.dip = *ip;
                        }
                    }
                }
            }
            if a.dport {
                k.dport = cols.dport.get(i).copied().unwrap_or(0);
            }
            if a.proto {
                k.proto = cols.proto.get(i).copied().unwrap_or(0);
            }
            if a.l7 {
                k.l7 = cols.l7.get(i).copied().unwrap_or(0);
            }
            let c = Counters {
                bytes_rcvd: counters.bytes_rcvd[i],
                bytes_sent: counters.bytes_sent[i],
                pkts_rcvd: counters.pkts_rcvd[i],
                pkts_sent: counters.pkts_sent[i],
            };
            self.map.entry(k).or_default().add(&c);
            self.totals.add(&c);
        }
    }

    /// Moves the contents of `other` into `self`.
    pub fn merge(&mut self, mut other: Table) {
        if other.map.len() > self.map.len() {
            std::mem::swap(&mut self.map, &mut other.map);
        }
        for (k, c) in other.map {
            self.map.entry(k).or_default().add(&c);
        }
        self.totals.add(&other.totals);
        self.rows_scanned += other.rows_scanned;
    }
}

fn metric(sort: SortBy, dir: Direction, c: &Counters) -> u64 {
    let (bytes, packets) = dir.pick(c);
    match sort {
        SortBy::Packets => packets,
        SortBy::Bytes | SortBy::Time => bytes,
    }
}

/// Orders the table's rows as the statement says and keeps the first `limit`.
/// Ties are broken by the key, so the order is stable across runs.
pub(crate) fn finish(stmt: &Statement, table: Table, ifaces: &[String]) -> (Vec<ResultRow>, usize) {
    let hits = table.map.len();
    let mut rows: Vec<(Key, Counters)> = table.map.into_iter().collect();
    let (sort, dir, asc) = (stmt.sort, stmt.direction, stmt.ascending);
    // Time order is always oldest first (as goQuery); within one time, and for the
    // other orders, largest first unless `ascending`.
    let by_metric = |a: &(Key, Counters), b: &(Key, Counters)| {
        let o = metric(sort, dir, &a.1).cmp(&metric(sort, dir, &b.1));
        if asc {
            o
        } else {
            o.reverse()
        }
    };
    let cmp = |a: &(Key, Counters), b: &(Key, Counters)| {
        let o = if sort == SortBy::Time {
            a.0.time.cmp(&b.0.time).then_with(|| by_metric(a, b))
        } else {
            by_metric(a, b)
        };
        o.then_with(|| key_order(&a.0, &b.0))
    };
    if stmt.limit > 0 && stmt.limit < rows.len() {
        rows.select_nth_unstable_by(stmt.limit, cmp);
        rows.truncate(stmt.limit);
    }
    rows.sort_unstable_by(cmp);
    let a = stmt.attributes;
    let out = rows
        .into_iter()
        .map(|(k, c)| ResultRow {
            time: a.time.then_some(k.time),
            iface: if a.iface {
                ifaces.get(usize::from(k.iface)).cloned()
            } else {
                None
            },
            sip: a.sip.then(|| ip_of(&k.sip, k.ipver)),
            dip: a.dip.then(|| ip_of(&k.dip, k.ipver)),
            dport: a.dport.then_some(k.dport),
            proto: a.proto.then_some(k.proto),
            l7: a.l7.then_some(k.l7),
            counters: c,
        })
        .collect();
    (out, hits)
}

fn key_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    (
        a.time, a.iface, a.ipver, a.sip, a.dip, a.dport, a.proto, a.l7,
    )
        .cmp(&(
            b.time, b.iface, b.ipver, b.sip, b.dip, b.dport, b.proto, b.l7,
        ))
}

fn ip_of(bytes: &[u8; 16], ipver: u8) -> IpAddr {
    if ipver == 4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(*bytes)
    }
}
