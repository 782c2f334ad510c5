//! Helpers shared by godb's integration test binaries (`store`, `kill`): the test
//! epoch, a small deterministic generator, random blocks, the stored row order and
//! reading a whole database back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use godb::{Block, CaptureStats, ColumnSet, Counters, Database, FlowKey, FlowRow, ScanRequest};

/// 2025-11-22T00:00:00Z.
pub const MIDNIGHT: i64 = 1_763_769_600;

/// A small deterministic pseudo-random generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// A block with `rows` pseudo-random rows (IPv4 and IPv6 mixed, wide counters),
/// determined by `seed`.
pub fn random_block(seed: u64, timestamp: i64, rows: usize) -> Block {
    let mut r = Rng(seed);
    let rows = (0..rows)
        .map(|_| {
            let v6 = r.below(4) == 0;
            let (sip, dip) = if v6 {
                let a = Ipv6Addr::from(((0x2001_0db8u128) << 96) | u128::from(r.below(50)));
                let b = Ipv6Addr::from(r.next_u64() as u128 | ((r.next_u64() as u128) << 64));
                (IpAddr::V6(a), IpAddr::V6(b))
            } else {
                let a = Ipv4Addr::from(0x0a00_0000 | r.below(64) as u32);
                let b = Ipv4Addr::from(r.next_u64() as u32);
                (IpAddr::V4(a), IpAddr::V4(b))
            };
            let big = |r: &mut Rng| match r.below(4) {
                0 => 0,
                1 => r.below(256),
                2 => r.below(1 << 20),
                _ => r.next_u64(),
            };
            FlowRow {
                key: FlowKey {
                    sip,
                    dip,
                    proto: [6u8, 17, 1, 58][r.below(4) as usize],
                    dport: r.below(65536) as u16,
                    l7: r.below(3) as u16,
                },
                counters: Counters {
                    bytes_rcvd: big(&mut r),
                    bytes_sent: big(&mut r),
                    pkts_rcvd: big(&mut r),
                    pkts_sent: big(&mut r),
                },
            }
        })
        .collect();
    Block {
        timestamp,
        stats: CaptureStats {
            packets_received: r.next_u64(),
            packets_dropped: r.below(10),
            packets_if_dropped: r.below(10),
            packets_non_ip: r.below(100),
        },
        rows,
    }
}

/// The rows in the order godb stores them (IPv4 first, by key, then counters).
pub fn stored_order(rows: &[FlowRow]) -> Vec<FlowRow> {
    let mut v = rows.to_vec();
    v.sort_by_key(|r| {
        let c = r.counters;
        (r.key, c.bytes_rcvd, c.bytes_sent, c.pkts_rcvd, c.pkts_sent)
    });
    v
}

/// Every block of the database, per interface, in time order, read with all
/// columns; panics (fails the test) on any unreadable block.
pub fn read_all(db: &Database) -> Vec<(String, Block)> {
    let req = ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let mut out = Vec::new();
    for plan in db.plan(&req).expect("plan") {
        assert!(plan.damaged.is_none(), "{:?}", plan.damaged);
        let reader = plan.open(db, ColumnSet::ALL).expect("open");
        for i in 0..reader.len() {
            let data = reader.read(i).unwrap_or_else(|e| panic!("{e}"));
            let rows = data.to_rows().expect("all columns");
            out.push((
                data.iface.clone(),
                Block {
                    timestamp: data.timestamp,
                    stats: data.stats,
                    rows,
                },
            ));
        }
    }
    out
}
