//! Criterion benchmark of godb's block writer and reader: appending 5-minute blocks
//! (sorting, encoding, fsync'd commit) and reading them back (every column, or two), in
//! rows/s and MB/s, plus the on-disk size in bytes per flow row.
//!
//! The rows are real flow records when the shared captures are present: the flow
//! tables nDPI reported for its test captures (`ndpi-results/*.out`), aggregated to
//! godb's key (sip, dip, proto, dport, l7) in blocks of about 2,000 rows. Without them
//! (e.g. on a fresh CI machine) a synthetic office-like mix is used instead.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use godb::{
    Block, Column, ColumnSet, Counters, Database, FlowKey, FlowRow, ScanRequest, INTERVAL_SECS,
};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
const ROWS_PER_BLOCK: usize = 2000;
const START: i64 = 1_763_769_900;

/// One flow line of an nDPI result file:
/// `N  TCP a:p <-> b:p [proto: M.A/NAME]...[P pkts/B bytes <-> P pkts/B bytes]...`.
fn parse_ndpi_line(line: &str) -> Option<(FlowKey, Counters)> {
    let t: Vec<&str> = line.split_whitespace().take(5).collect();
    t.first()?.parse::<u32>().ok()?;
    let proto: u8 = match *t.get(1)? {
        "TCP" => 6,
        "UDP" => 17,
        "ICMP" => 1,
        "ICMPV6" => 58,
        "IGMP" => 2,
        "SCTP" => 132,
        "ESP" => 50,
        x => x.parse().ok()?,
    };
    if !matches!(*t.get(3)?, "<->" | "->") {
        return None;
    }
    let endpoint = |s: &str| -> Option<(IpAddr, u16)> {
        if let Some(rest) = s.strip_prefix('[') {
            let (ip, port) = rest.split_once("]:")?;
            return Some((ip.parse().ok()?, port.parse().ok()?));
        }
        if let Ok(ip) = s.parse() {
            return Some((ip, 0));
        }
        let (ip, port) = s.rsplit_once(':')?;
        Some((ip.parse().ok()?, port.parse().ok()?))
    };
    let (sip, _) = endpoint(t.get(2)?)?;
    let (dip, dport) = endpoint(t.get(4)?)?;
    let at = line.find(" pkts/")?;
    let seg = &line[line[..at].rfind('[')? + 1..];
    let seg = &seg[..seg.find(']')?];
    let n: Vec<u64> = seg
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    if n.len() < 2 {
        return None;
    }
    let l7 = line
        .find("[proto: ")
        .and_then(|p| {
            line[p + 8..]
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0);
    let counters = Counters {
        pkts_sent: n[0],
        bytes_sent: n[1],
        pkts_rcvd: n.get(2).copied().unwrap_or(0),
        bytes_rcvd: n.get(3).copied().unwrap_or(0),
    };
    Some((
        FlowKey {
            sip,
            dip,
            proto,
            dport,
            l7,
        },
        counters,
    ))
}

/// Blocks built from the nDPI flow tables, or `None` without the shared folder.
fn ndpi_blocks() -> Option<Vec<Block>> {
    let dir = Path::new(SHARED).join("pcaps/ndpi-results");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut blocks = Vec::new();
    let mut agg: HashMap<FlowKey, Counters> = HashMap::new();
    let mut flush = |agg: &mut HashMap<FlowKey, Counters>| {
        let rows = agg
            .drain()
            .map(|(key, counters)| FlowRow { key, counters })
            .collect();
        let timestamp = START + blocks.len() as i64 * INTERVAL_SECS;
        blocks.push(Block {
            timestamp,
            stats: Default::default(),
            rows,
        });
    };
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Some((k, c)) = parse_ndpi_line(line) {
                agg.entry(k).or_default().add(&c);
            }
        }
        if agg.len() >= ROWS_PER_BLOCK {
            flush(&mut agg);
        }
    }
    if !agg.is_empty() {
        flush(&mut agg);
    }
    (!blocks.is_empty()).then_some(blocks)
}

/// A synthetic block: 200 clients of a /24 (and some IPv6 ones) talking to a few
/// hundred servers on common ports, heavy-tailed counters.
fn synthetic_block(seed: u64, timestamp: i64) -> Block {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rows = (0..ROWS_PER_BLOCK)
        .map(|_| {
            let r = next();
            let server = (r >> 8) % 400;
            let (sip, dip) = if r % 10 == 0 {
                (
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        0,
                        0,
                        0,
                        0,
                        0,
                        (r >> 20) as u16 % 200,
                    )),
                    IpAddr::V6(Ipv6Addr::new(
                        0x2a00,
                        0x1450,
                        0,
                        server as u16,
                        0,
                        0,
                        0,
                        0x200e,
                    )),
                )
            } else {
                (
                    IpAddr::V4(Ipv4Addr::new(192, 168, 1, (r >> 20) as u8 % 200)),
                    IpAddr::V4(Ipv4Addr::from(0x5db8_0000 + (server as u32) * 977)),
                )
            };
            let pkts = 1 + (next() % 1000).pow(2) / 1000;
            FlowRow {
                key: FlowKey {
                    sip,
                    dip,
                    proto: if r % 7 == 0 { 17 } else { 6 },
                    dport: [443, 443, 443, 80, 53, 22, 8080, 993][(r >> 40) as usize % 8],
                    l7: [0, 1, 2][(r >> 44) as usize % 3],
                },
                counters: Counters {
                    pkts_sent: pkts,
                    bytes_sent: pkts * (60 + next() % 200),
                    pkts_rcvd: pkts + next() % 3,
                    bytes_rcvd: pkts * (60 + next() % 1400),
                },
            }
        })
        .collect();
    Block {
        timestamp,
        stats: Default::default(),
        rows,
    }
}

fn on_disk_bytes(db: &Database) -> (u64, u64) {
    let req = ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let (mut columns, mut meta) = (0u64, 0u64);
    for plan in db.plan(&req).unwrap_or_default() {
        for b in &plan.blocks {
            columns += b
                .columns
                .iter()
                .map(|c| u64::from(c.stored_len))
                .sum::<u64>();
        }
        meta += std::fs::metadata(plan.meta_path()).map_or(0, |m| m.len());
    }
    (columns, meta)
}

fn bench_blocks(c: &mut Criterion) {
    let (source, blocks) = match ndpi_blocks() {
        Some(b) => ("ndpi", b),
        None => {
            eprintln!("note: {SHARED} not found, using synthetic rows");
            (
                "synthetic",
                (0..4)
                    .map(|i| synthetic_block(i, START + i as i64 * INTERVAL_SECS))
                    .collect(),
            )
        }
    };
    let rows: u64 = blocks.iter().map(|b| b.rows.len() as u64).sum();
    // Raw in-memory size of a row: two addresses (4 or 16 bytes), proto, dport, l7,
    // four u64 counters.
    let raw_bytes: u64 = blocks
        .iter()
        .flat_map(|b| &b.rows)
        .map(|r| if r.key.sip.is_ipv4() { 8 } else { 32 } + 1 + 2 + 2 + 32)
        .sum();

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create(dir.path()).expect("create");
    let mut w = db.writer("bench").expect("writer");
    for b in &blocks {
        w.append(b).expect("append");
    }
    drop(w);
    let (col_bytes, meta_bytes) = on_disk_bytes(&db);
    eprintln!(
        "godb_blocks ({source}): {} blocks, {rows} rows, {col_bytes} column bytes = {:.2} bytes/row \
         ({:.2} with metadata; raw {:.2})",
        blocks.len(),
        col_bytes as f64 / rows as f64,
        (col_bytes + meta_bytes) as f64 / rows as f64,
        raw_bytes as f64 / rows as f64,
    );

    let mut group = c.benchmark_group("godb_block");
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(4));
    for (unit, tp) in [
        ("rows", Throughput::Elements(rows)),
        ("bytes", Throughput::Bytes(raw_bytes)),
    ] {
        group.throughput(tp);
        // "write" includes the fsyncs of the disk under the temporary folder; on tmpfs
        // (fsync is free there) it measures sorting, encoding and the system calls.
        let shm = Path::new("/dev/shm");
        let targets: Vec<(&str, Option<&Path>)> = vec![
            ("write", None),
            ("write_tmpfs", shm.is_dir().then_some(shm)),
        ];
        for (name, under) in targets {
            group.bench_function(BenchmarkId::new(name, unit), |bench| {
                let wdir = match under {
                    Some(p) => tempfile::tempdir_in(p),
                    None => tempfile::tempdir(),
                }
                .expect("temp dir");
                let wdb = Database::create(wdir.path()).expect("create");
                let mut w = wdb.writer("bench").expect("writer");
                let mut ts = START;
                bench.iter(|| {
                    // One day's worth of blocks per folder, as in production.
                    for b in &blocks {
                        w.append(&Block {
                            timestamp: ts,
                            stats: b.stats,
                            rows: b.rows.clone(),
                        })
                        .expect("append");
                        ts += INTERVAL_SECS;
                    }
                });
            });
        }
        // Every column, and the two a "top destination ports by bytes" query needs.
        let two = ColumnSet::EMPTY.with(Column::Dport).with(Column::BytesSent);
        for (name, cols) in [
            ("read_all_columns", ColumnSet::ALL),
            ("read_two_columns", two),
        ] {
            group.bench_function(BenchmarkId::new(name, unit), |bench| {
                let req = ScanRequest {
                    ifaces: vec![],
                    first: i64::MIN,
                    last: i64::MAX,
                };
                bench.iter(|| {
                    let mut n = 0usize;
                    for plan in db.plan(&req).expect("plan") {
                        let reader = plan.open(&db, cols).expect("open");
                        for i in 0..reader.len() {
                            n += reader.read(i).map_or(0, |d| d.rows);
                        }
                    }
                    assert_eq!(n as u64, rows);
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_blocks);
criterion_main!(benches);
