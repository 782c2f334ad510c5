//! Query aggregation throughput (rows/s) of `godb::query::run` for talk_src, talk_conv
//! and agg_talk_port over a synthetic database of 10.24 million stored rows (two
//! interfaces, 64 blocks of 80,000 rows each), written once through godb's
//! `BlockWriter` into a temporary folder. The traffic mix has heavy hitters and a long
//! tail (10,000 clients × 500 servers × 8 services, Zipf-like draws), so the result
//! tables are realistically sized. Set `QUERY_BENCH_ROWS` to change the rows per
//! block (e.g. 800000 for 100 million rows).
//!
//! `QUERY_BENCH_DB=/tmp/q100m` instead runs `talk_conv`, `talk_src` and `apps_port`
//! (`-n 10`) over a large database kept in that folder, built on the first run when the
//! folder does not exist (about 100 million rows, see [`build_large`]): one interface,
//! four days of 5-minute blocks, about 87,000 rows each; a million clients and 100,000
//! servers drawn with a 1/x (Zipf, s = 1) law over conversations, so a few million
//! distinct conversations; 10 % IPv6. Build it alone with
//! `QUERY_BENCH_DB=/tmp/q100m cargo bench -p goprobe-benches --bench query -- --list`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use godb::query::{run, Statement};
use godb::{Block, CaptureStats, Counters, Database, FlowKey, FlowRow};

const BLOCKS: i64 = 64;
const T0: i64 = 1_700_000_100;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A skewed draw in `0..n`: small values much more likely.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.next() % n;
        let b = self.next() % n;
        a * b / n
    }
}

fn rows_per_block() -> usize {
    std::env::var("QUERY_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(80_000)
}

fn block(rng: &mut Rng, ts: i64, rows: usize) -> Block {
    const PORTS: [(u16, u8); 8] = [
        (443, 6),
        (80, 6),
        (53, 17),
        (22, 6),
        (123, 17),
        (8080, 6),
        (3478, 17),
        (0, 1),
    ];
    let rows = (0..rows)
        .map(|_| {
            let c = rng.skewed(10_000);
            let s = rng.skewed(500);
            let (dport, proto) = PORTS[rng.skewed(8) as usize];
            let (sip, dip) = if rng.next() % 10 < 1 {
                (
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, c as u16)),
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, s as u16)),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + c as u32)),
                    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + s as u32)),
                )
            };
            let n = 1 + rng.next() % 5000;
            FlowRow {
                key: FlowKey {
                    sip,
                    dip,
                    proto,
                    dport,
                    l7: 0,
                },
                counters: Counters {
                    bytes_rcvd: n * 700,
                    bytes_sent: n * 90,
                    pkts_rcvd: n,
                    pkts_sent: n / 2 + 1,
                },
            }
        })
        .collect();
    Block {
        timestamp: ts,
        stats: CaptureStats::default(),
        rows,
    }
}

fn build(dir: &std::path::Path, rows: usize) -> Database {
    let db = Database::create(dir.join("db")).expect("create database");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for iface in ["eth0", "eth1"] {
        let mut w = db.writer(iface).expect("open writer");
        for b in 0..BLOCKS / 2 {
            w.append(&block(&mut rng, T0 + 300 * b, rows))
                .expect("append block");
        }
    }
    db
}

/// Blocks of the large database: four days of 5-minute intervals.
const LARGE_BLOCKS: i64 = 4 * 288;
/// Rows per block of the large database: 100 million rows in all.
const LARGE_ROWS: usize = 100_000_000 / LARGE_BLOCKS as usize + 1;

/// A conversation index with probability about 1/x over `1..=n` (Zipf, s = 1).
fn zipf(rng: &mut Rng, n: u64) -> u64 {
    let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
    ((n as f64).powf(u) as u64).clamp(1, n) - 1
}

/// One block of the large database: conversations drawn with a 1/x law from 8 million
/// (client, server, service) triples, each mixed from its index so that popular
/// conversations spread over the address space.
fn large_block(rng: &mut Rng, ts: i64) -> Block {
    const PORTS: [(u16, u8, u16); 8] = [
        (443, 6, 2),
        (80, 6, 1),
        (53, 17, 5),
        (22, 6, 4),
        (123, 17, 0),
        (8080, 6, 1),
        (3478, 17, 0),
        (0, 1, 0),
    ];
    let rows = (0..LARGE_ROWS)
        .map(|_| {
            let conv = zipf(rng, 8_000_000);
            let mut h = conv.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^= h >> 31;
            let client = (h % 1_000_000) as u32;
            let server = ((h >> 20) % 100_000) as u32;
            let (dport, proto, l7) = PORTS[(h >> 40) as usize % 8];
            let (sip, dip) = if h >> 60 == 0 {
                (
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        (client >> 16) as u16,
                        client as u16,
                    )),
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        1,
                        0,
                        0,
                        0,
                        (server >> 16) as u16,
                        server as u16,
                    )),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + client * 13)),
                    IpAddr::V4(Ipv4Addr::from(0x5000_0000 + server * 101)),
                )
            };
            let n = 1 + rng.next() % 2000;
            FlowRow {
                key: FlowKey {
                    sip,
                    dip,
                    proto,
                    dport,
                    l7,
                },
                counters: Counters {
                    bytes_rcvd: n * 900,
                    bytes_sent: n * 80,
                    pkts_rcvd: n,
                    pkts_sent: n / 2 + 1,
                },
            }
        })
        .collect();
    Block {
        timestamp: ts,
        stats: CaptureStats::default(),
        rows,
    }
}

/// Writes the large database into `path` (which must not exist yet).
fn build_large(path: &std::path::Path) -> Database {
    let db = Database::create(path).expect("create database");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = db.writer("eth0").expect("open writer");
    for b in 0..LARGE_BLOCKS {
        w.append(&large_block(&mut rng, T0 + 300 * (b + 1)))
            .expect("append block");
    }
    db
}

/// The queries of issue 4's targets over the large database in `path`.
fn bench_large(c: &mut Criterion, path: &std::path::Path) {
    let db = if path.exists() {
        Database::open(path).expect("open database")
    } else {
        eprintln!("building {} (about 100 million rows)", path.display());
        build_large(path)
    };
    let mut g = c.benchmark_group("query_large");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    for q in ["talk_conv", "talk_src", "apps_port"] {
        let mut s = Statement::new(q, T0, T0 + 86_400 * 5).expect("statement");
        s.limit = 10;
        let check = run(&db, &s).expect("query");
        g.throughput(Throughput::Elements(check.rows_scanned));
        g.bench_function(q, |b| b.iter(|| run(&db, &s).expect("query")));
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    if let Some(path) = std::env::var_os("QUERY_BENCH_DB") {
        bench_large(c, std::path::Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rows = rows_per_block();
    let db = build(dir.path(), rows);
    let total = rows as u64 * BLOCKS as u64;
    let mut g = c.benchmark_group("query");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(total));
    for q in ["talk_src", "talk_conv", "agg_talk_port"] {
        // The first block, stamped T0, holds the interval [T0 - 300, T0).
        let mut s = Statement::new(q, T0 - 300, T0 + 86_400).expect("statement");
        s.limit = 10;
        // Both interfaces, aggregated together (no iface column).
        s.ifaces = vec![];
        let check = run(&db, &s).expect("query");
        assert_eq!(check.rows_scanned, total);
        g.bench_function(q, |b| b.iter(|| run(&db, &s).expect("query")));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
