//! Engine tests: databases written through [`crate::BlockWriter`] from known flows,
//! queried with every query type and option, compared with a naive reference
//! aggregation of the same flows; corrupt blocks, memory limits, unknown interfaces.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::query::{Direction, QueryError, SortBy, Statement};
use crate::{Block, CaptureStats, Counters, Database, FlowKey, FlowRow};

const T0: i64 = 1_700_000_100; // a multiple of 300

fn flow(sip: &str, dip: &str, proto: u8, dport: u16, l7: u16, n: u64) -> FlowRow {
    FlowRow {
        key: FlowKey {
            sip: sip.parse().unwrap(),
            dip: dip.parse().unwrap(),
            proto,
            dport,
            l7,
        },
        counters: Counters {
            bytes_rcvd: n * 1000,
            bytes_sent: n * 10 + 1,
            pkts_rcvd: n,
            pkts_sent: if n % 3 == 0 { 0 } else { n + 2 },
        },
    }
}

/// Blocks of one interface: the same shape of traffic every interval, scaled.
fn blocks(seed: u64, count: i64) -> Vec<Block> {
    (0..count)
        .map(|b| {
            let k = seed + b as u64;
            Block {
                timestamp: T0 + 300 * b,
                stats: CaptureStats {
                    packets_received: 100,
                    packets_dropped: k,
                    ..Default::default()
                },
                rows: vec![
                    flow("10.0.0.1", "192.0.2.1", 6, 443, 0, 5 + k),
                    flow("10.0.0.1", "192.0.2.2", 6, 80, 0, 3 * k + 1),
                    flow("10.0.0.2", "192.0.2.1", 17, 53, 0, 7),
                    flow("10.0.0.3", "198.51.100.9", 6, 22, 0, k * k + 2),
                    flow("2001:db8::1", "2001:db8:1::1", 6, 443, 0, 11 + k),
                    flow("2001:db8::2", "2001:db8:1::53", 17, 53, 0, 4),
                    flow("10.0.0.4", "192.0.2.200", 1, 0, 0, 9 - (k % 5)),
                ],
            }
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    db: Database,
    all: Vec<(String, Block)>,
}

/// A database holding the given blocks of each interface, written through godb.
fn fixture_of(ifaces: impl IntoIterator<Item = (&'static str, Vec<Block>)>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut all = Vec::new();
    for (iface, blocks) in ifaces {
        let mut w = db.writer(iface).unwrap();
        for b in blocks {
            w.append(&b).unwrap();
            all.push((iface.to_string(), b));
        }
    }
    Fixture { _dir: dir, db, all }
}

/// The day plans of interface eth0 between `first` and `last`.
fn eth0_days(f: &Fixture, first: i64, last: i64) -> Vec<crate::DayPlan> {
    f.db.plan(&crate::ScanRequest {
        ifaces: vec!["eth0".into()],
        first,
        last,
    })
    .unwrap()
}

fn fixture() -> Fixture {
    fixture_of([("eth0", blocks(1, 6)), ("eth1", blocks(4, 3))])
}

type RefKey = (
    Option<i64>,
    Option<String>,
    Option<IpAddr>,
    Option<IpAddr>,
    Option<u16>,
    Option<u8>,
    Option<u16>,
);

/// The naive reference: every row tested with `Condition::matches`, summed in a map.
fn reference(f: &Fixture, s: &Statement) -> (BTreeMap<RefKey, Counters>, Counters) {
    let a = s.attributes;
    let mut map: BTreeMap<RefKey, Counters> = BTreeMap::new();
    let mut totals = Counters::default();
    for (iface, b) in &f.all {
        if !s.ifaces.is_empty() && !s.ifaces.contains(iface) {
            continue;
        }
        // The interval [ts - 300, ts) overlaps the window: first < ts < last + 300.
        if b.timestamp <= s.first || b.timestamp >= s.last + 300 {
            continue;
        }
        for r in &b.rows {
            if let Some(c) = &s.condition {
                if !c.matches(r) {
                    continue;
                }
            }
            let k = (
                a.time.then_some(b.timestamp),
                a.iface.then(|| iface.clone()),
                a.sip.then_some(r.key.sip),
                a.dip.then_some(r.key.dip),
                a.dport.then_some(r.key.dport),
                a.proto.then_some(r.key.proto),
                a.l7.then_some(r.key.l7),
            );
            map.entry(k).or_default().add(&r.counters);
            totals.add(&r.counters);
        }
    }
    (map, totals)
}

fn check(f: &Fixture, s: &Statement) -> QueryResult {
    let r = run(&f.db, s).unwrap();
    let (want, totals) = reference(f, s);
    assert_eq!(r.totals, totals);
    assert_eq!(r.hits_total, want.len());
    let expect_rows = if s.limit == 0 {
        want.len()
    } else {
        want.len().min(s.limit)
    };
    assert_eq!(r.rows.len(), expect_rows);
    for row in &r.rows {
        let k = (
            row.time,
            row.iface.clone(),
            row.sip,
            row.dip,
            row.dport,
            row.proto,
            row.l7,
        );
        assert_eq!(want.get(&k), Some(&row.counters), "row {row:?}");
    }
    // The displayed rows are the top ones under the statement's order.
    let metric = |c: &Counters| {
        let (b, p) = s.direction.pick(c);
        if s.sort == SortBy::Packets {
            p
        } else {
            b
        }
    };
    for w in r.rows.windows(2) {
        if s.sort == SortBy::Time {
            assert!(w[0].time <= w[1].time);
        } else if s.ascending {
            assert!(metric(&w[0].counters) <= metric(&w[1].counters));
        } else {
            assert!(metric(&w[0].counters) >= metric(&w[1].counters));
        }
    }
    if s.limit > 0 && want.len() > s.limit && s.sort != SortBy::Time {
        let mut all: Vec<u64> = want.values().map(metric).collect();
        all.sort_unstable();
        if !s.ascending {
            all.reverse();
        }
        let shown: Vec<u64> = r.rows.iter().map(|r| metric(&r.counters)).collect();
        assert_eq!(shown, all[..s.limit].to_vec());
    }
    r
}

fn stmt(q: &str) -> Statement {
    Statement::new(q, T0 - 600, T0 + 86_400).unwrap()
}

#[test]
fn every_query_type_matches_the_reference() {
    let f = fixture();
    for q in [
        "talk_src",
        "talk_dst",
        "talk_conv",
        "apps_port",
        "apps_dpi",
        "agg_talk_port",
        "raw",
        "sip,dport",
        "time",
        "iface,proto",
        "src,dst,port,protocol,l7",
    ] {
        let s = stmt(q);
        let r = check(&f, &s);
        assert!(r.hits_total > 0, "{q}");
        assert_eq!(r.blocks_read, 9, "{q}");
        assert!(r.skipped.is_empty());
    }
}

#[test]
fn conditions_filter_rows() {
    let f = fixture();
    for c in [
        "dport = 443",
        "proto = udp | snet = 10.0.0.0/31",
        "!(dnet = 192.0.2.0/24) & proto != icmp",
        "host = 2001:db8:1::53 or dport < 23",
        "dir = bi",
        "dir = in & dport >= 22",
        "l7 = unknown",
        "net = 2001:db8::/32",
    ] {
        for q in ["talk_conv", "apps_port", "raw"] {
            let s = stmt(q).with_condition(c).unwrap();
            check(&f, &s);
        }
    }
    let s = stmt("talk_src").with_condition("dport = 9999").unwrap();
    let r = check(&f, &s);
    assert_eq!(r.hits_total, 0);
    assert_eq!(r.blocks_read, 9);
}

#[test]
fn sort_limit_direction() {
    let f = fixture();
    for sort in [SortBy::Bytes, SortBy::Packets] {
        for dir in [
            Direction::Both,
            Direction::In,
            Direction::Out,
            Direction::Sum,
        ] {
            for ascending in [false, true] {
                for limit in [0, 1, 3] {
                    let mut s = stmt("agg_talk_port");
                    s.sort = sort;
                    s.direction = dir;
                    s.ascending = ascending;
                    s.limit = limit;
                    check(&f, &s);
                }
            }
        }
    }
    let mut s = stmt("sip,time");
    s.limit = 0;
    let r = check(&f, &s);
    assert_eq!(r.rows.first().and_then(|r| r.time), Some(T0));
}

#[test]
fn interfaces_and_time_range() {
    let f = fixture();
    let s = stmt("talk_src").with_ifaces(vec!["eth1".into()]).unwrap();
    let r = check(&f, &s);
    assert_eq!(r.interfaces, vec!["eth1".to_string()]);
    assert_eq!(r.blocks_read, 3);
    let s = stmt("talk_src")
        .with_ifaces(vec!["eth0".into(), "eth1".into()])
        .unwrap();
    let r = check(&f, &s);
    assert!(r.rows.iter().all(|r| r.iface.is_some()));
    // A window of two intervals, [T0, T0 + 600): the blocks stamped T0 + 300 and
    // T0 + 600 of eth0 (and eth1).
    let mut s = stmt("raw");
    s.first = T0;
    s.last = T0 + 600;
    let r = check(&f, &s);
    assert_eq!(r.blocks_read, 4);
    assert_eq!((r.time_first, r.time_last), (T0 + 300, T0 + 600));
    // A window inside one interval reads that interval's block only.
    s.first = T0 + 310;
    s.last = T0 + 320;
    let r = check(&f, &s);
    assert_eq!(r.blocks_read, 2);
    assert_eq!((r.time_first, r.time_last), (T0 + 600, T0 + 600));
    // No data in range.
    let mut s = stmt("talk_src");
    s.first = T0 + 86_400 * 10;
    s.last = T0 + 86_400 * 11;
    let r = run(&f.db, &s).unwrap();
    assert_eq!((r.blocks_read, r.hits_total), (0, 0));
}

#[test]
fn unknown_interface_and_empty_database() {
    let f = fixture();
    let s = stmt("talk_src").with_ifaces(vec!["wlan9".into()]).unwrap();
    match run(&f.db, &s) {
        Err(QueryError::UnknownInterface { iface, known }) => {
            assert_eq!(iface, "wlan9");
            assert_eq!(known, "eth0, eth1");
        }
        other => panic!("unexpected {other:?}"),
    }
    let dir = tempfile::tempdir().unwrap();
    let empty = Database::create(dir.path()).unwrap();
    assert!(matches!(
        run(&empty, &stmt("talk_src")),
        Err(QueryError::EmptyDatabase)
    ));
}

#[test]
fn memory_limit_stops_the_query() {
    let f = fixture();
    let mut s = stmt("raw");
    s.memory_limit = 1024;
    match run(&f.db, &s) {
        Err(e @ QueryError::MemoryLimit { .. }) => {
            assert!(e.to_string().contains("memory limit"), "{e}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn corrupt_blocks_are_skipped_and_reported() {
    let f = fixture();
    // Damage the sip column of eth0's day: flip bytes in the middle of the file.
    let day = eth0_days(&f, T0, T0);
    let path = day[0].dir().join("sip.col");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0xff;
    }
    std::fs::write(&path, bytes).unwrap();
    // One worker (blocks decoded into reused buffers) and several (9 blocks < 4 per
    // worker: chunks of blocks decoded once and shared): each bad block once.
    let mut counts = Vec::new();
    for threads in [1, 2, 5] {
        let mut s = stmt("talk_src");
        s.threads = threads;
        let r = run(&f.db, &s).unwrap();
        assert!(!r.skipped.is_empty());
        assert_eq!(r.blocks_read + r.skipped.len(), 9);
        assert!(r
            .skipped
            .iter()
            .all(|b| b.iface == "eth0" && !b.reason.is_empty()));
        counts.push((r.skipped.len(), r.totals));
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
    // A query that does not read the damaged column is unaffected.
    let r = run(&f.db, &stmt("apps_port")).unwrap();
    assert!(r.skipped.is_empty());
    assert_eq!(r.blocks_read, 9);
    // A damaged column of a grouping by port: blocks split between the workers
    // (their columns decoded by several workers at once), each bad block once.
    let path = day[0].dir().join("bytes_sent.col");
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    let mut counts = Vec::new();
    for threads in [1, 2, 5] {
        let mut s = stmt("apps_port");
        s.threads = threads;
        let r = run(&f.db, &s).unwrap();
        assert_eq!(r.skipped.len(), 1, "{threads}: {:?}", r.skipped);
        assert!(
            r.skipped[0].reason.contains("bytes_sent"),
            "{:?}",
            r.skipped
        );
        assert_eq!(r.blocks_read, 8);
        counts.push((r.rows, r.totals));
    }
    assert!(counts.windows(2).all(|w| w[0] == w[1]), "{counts:?}");
}

#[test]
fn threads_do_not_change_the_result() {
    let f = fixture();
    let mut one = stmt("agg_talk_port");
    one.threads = 1;
    let mut four = one.clone();
    four.threads = 4;
    let a = run(&f.db, &one).unwrap();
    let b = run(&f.db, &four).unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.totals, b.totals);
}

#[test]
fn only_needed_columns_are_read() {
    let s = stmt("apps_port").with_condition("sip = 10.0.0.1").unwrap();
    let c = needed_columns(&s);
    use crate::Column as C;
    assert!(c.contains(C::Dport) && c.contains(C::Proto) && c.contains(C::Sip));
    assert!(!c.contains(C::Dip) && !c.contains(C::L7));
    assert!(c.contains(C::BytesRcvd) && c.contains(C::PktsSent));
}

#[test]
fn large_blocks_are_shared_in_chunks() {
    // Blocks larger than a work chunk, IPv4 and IPv6 rows on both sides of chunk
    // boundaries: every chunk split must give the reference result.
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut w = db.writer("eth0").unwrap();
    let mut all = Vec::new();
    for b in 0..2i64 {
        let rows: Vec<FlowRow> = (0..70_000u32)
            .map(|i| {
                let v6 = i % 3 == 0;
                let (s, d) = if v6 {
                    (
                        format!("2001:db8::{:x}", i % 5000),
                        format!("2001:db8:1::{:x}", i % 7),
                    )
                } else {
                    (
                        format!("10.{}.{}.{}", i % 2, (i / 256) % 256, i % 256),
                        "192.0.2.1".into(),
                    )
                };
                flow(&s, &d, 6, (i % 50) as u16, 0, u64::from(i % 97) + 1)
            })
            .collect();
        let block = Block {
            timestamp: T0 + 300 * b,
            stats: CaptureStats::default(),
            rows,
        };
        w.append(&block).unwrap();
        all.push(("eth0".to_string(), block));
    }
    let f = Fixture { _dir: dir, db, all };
    for q in ["talk_src", "talk_conv", "dport,time"] {
        for threads in [1, 3] {
            let mut s = stmt(q)
                .with_condition("dport < 40 | snet = 10.1.0.0/16")
                .unwrap();
            s.threads = threads;
            s.limit = 25;
            let r = check(&f, &s);
            assert_eq!(r.blocks_read, 2, "{q}");
            assert_eq!(r.rows_scanned, 140_000, "{q}");
        }
    }
}

/// Regression: a window ending "now" must include the interval in progress, whose
/// block is stamped with its end, up to five minutes after now.
#[test]
fn window_ending_now_includes_the_interval_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let now = T0 + 86_400 * 3 + 100;
    let mut w = db.writer("eth0").unwrap();
    for (ts, n) in [(now - 400, 1), (now + 200, 2)] {
        w.append(&Block {
            timestamp: ts,
            stats: CaptureStats::default(),
            rows: vec![flow("10.0.0.1", "192.0.2.1", 6, 443, 0, n)],
        })
        .unwrap();
    }
    let s = Statement::new("talk_src", now - 30 * 86_400, now).unwrap();
    let r = run(&db, &s).unwrap();
    assert_eq!(r.blocks_read, 2);
    assert_eq!(r.totals.bytes_rcvd, 3000);
    assert_eq!(r.time_last, now + 200);
    // Boundaries: the block stamped exactly `first` ended before the window; the one
    // stamped `last + 300` starts after it.
    let s = Statement::new("talk_src", now - 400, now - 100).unwrap();
    assert_eq!(run(&db, &s).unwrap().blocks_read, 0);
    let s = Statement::new("talk_src", now - 401, now - 100).unwrap();
    assert_eq!(run(&db, &s).unwrap().blocks_read, 1);
    // An instant inside an interval selects it; an interval boundary is an empty
    // window (goQuery's rule).
    let s = Statement::new("talk_src", now - 50, now - 50).unwrap();
    assert_eq!(run(&db, &s).unwrap().blocks_read, 1);
    let s = Statement::new("talk_src", now - 100, now - 100).unwrap();
    assert_eq!(run(&db, &s).unwrap().blocks_read, 0);
}

#[test]
fn edited_statements_are_validated_again() {
    let f = fixture();
    let mut s = stmt("talk_src");
    s.first = s.last + 1;
    assert!(matches!(run(&f.db, &s), Err(QueryError::Statement(_))));
}

/// eth0 with two blocks on each of three days; returns the database and the three
/// day folders.
fn three_days() -> (tempfile::TempDir, Database, Vec<std::path::PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut w = db.writer("eth0").unwrap();
    for day in 0..3 {
        for b in 1..=2 {
            w.append(&Block {
                timestamp: T0 + 86_400 * day + 300 * b,
                stats: CaptureStats::default(),
                rows: vec![flow("10.0.0.1", "192.0.2.1", 6, 443, 0, 1 + day as u64)],
            })
            .unwrap();
        }
    }
    let days = (0..3)
        .map(|day| {
            let p = db
                .plan(&crate::ScanRequest {
                    ifaces: vec!["eth0".into()],
                    first: T0 + 86_400 * day,
                    last: T0 + 86_400 * day + 600,
                })
                .unwrap();
            p[0].dir().to_path_buf()
        })
        .collect();
    (dir, db, days)
}

/// Faults in the folder (issue 8): a missing column file, unreadable days (a folder
/// where the metadata belongs, garbage metadata), foreign files and folders. Each is
/// reported once, the rest of the data is read, nothing panics.
#[test]
fn database_folder_faults_are_reported_and_the_rest_is_read() {
    use crate::query::ProblemKind;
    let (_dir, db, days) = three_days();
    let window = |q: &str| Statement::new(q, T0 - 600, T0 + 86_400 * 4).unwrap();
    // Day 1 loses its dport column.
    std::fs::remove_file(days[1].join("dport.col")).unwrap();
    let r = run(&db, &window("apps_port")).unwrap();
    assert_eq!(r.blocks_read, 4);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!(p.kind, ProblemKind::MissingColumn(crate::Column::Dport));
    assert_eq!(p.blocks_left_out, 2);
    assert!(r.is_partial());
    assert_eq!(r.totals.bytes_rcvd, 2 * (1000 + 3000));
    // A query without dport reads everything and still mentions the missing file.
    let r = run(&db, &window("talk_src")).unwrap();
    assert_eq!(r.blocks_read, 6);
    assert_eq!(r.problems.len(), 1);
    assert_eq!(r.problems[0].blocks_left_out, 0);

    // Day 2: a folder where day.meta belongs.
    std::fs::remove_file(days[2].join("day.meta")).unwrap();
    std::fs::create_dir(days[2].join("day.meta")).unwrap();
    let r = run(&db, &window("talk_src")).unwrap();
    assert_eq!(r.blocks_read, 4);
    let unreadable: Vec<_> = r
        .problems
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::UnreadableDay(_)))
        .collect();
    assert_eq!(unreadable.len(), 1, "{:?}", r.problems);
    assert!(unreadable[0].path.starts_with(&days[2]));
    // Day 0: garbage metadata.
    std::fs::write(days[0].join("day.meta"), b"not a godb metadata file").unwrap();
    let r = run(&db, &window("talk_src")).unwrap();
    assert_eq!(r.blocks_read, 2);
    assert_eq!(r.totals.bytes_rcvd, 2 * 2000);
    let n = r
        .problems
        .iter()
        .filter(|p| matches!(p.kind, ProblemKind::UnreadableDay(_)))
        .count();
    assert_eq!(n, 2, "{:?}", r.problems);

    // Foreign entries: at the root, in the interface, month and day folders.
    std::fs::write(db.path().join("README"), b"x").unwrap();
    std::fs::create_dir(db.path().join("eth0").join("backup")).unwrap();
    std::fs::write(days[1].join("notes.txt"), b"x").unwrap();
    std::fs::write(days[1].parent().unwrap().join("stray"), b"x").unwrap();
    let r = run(&db, &window("talk_src")).unwrap();
    assert_eq!(r.blocks_read, 2);
    let foreign: Vec<_> = r
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::Foreign)
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(foreign.len(), 4, "{:?}", r.problems);
    for name in ["README", "backup", "notes.txt", "stray"] {
        assert!(foreign.iter().any(|f| f == name), "{name}: {foreign:?}");
    }
    assert!(r.problems.iter().all(|p| !p.to_string().is_empty()));
}

/// Foreign entries alone lose no data: the result is complete.
#[test]
fn foreign_entries_alone_are_not_partial() {
    let (_dir, db, days) = three_days();
    std::fs::write(days[0].join("x.tmp"), b"x").unwrap();
    let r = run(
        &db,
        &Statement::new("talk_src", T0 - 600, T0 + 86_400 * 4).unwrap(),
    )
    .unwrap();
    assert_eq!((r.blocks_read, r.problems.len()), (6, 1));
    assert!(!r.is_partial());
}

/// A database of many blocks (more than the shared mode keeps decoded at once) with
/// IPv4 and IPv6 rows, all-zero addresses, and many keys of equal volume (ties at
/// every cut).
fn many_blocks() -> Fixture {
    let blocks = || -> Vec<Block> {
        (0..12i64)
            .map(|b| {
                let rows: Vec<FlowRow> = (0..600u32)
                    .map(|i| {
                        let j = i + 37 * b as u32;
                        let (s, d) = match j % 11 {
                            0 => (format!("2001:db8::{:x}", j % 40), "2001:db8:1::1".into()),
                            1 => ("::".into(), "::".into()),
                            2 => ("0.0.0.0".into(), "0.0.0.0".into()),
                            3 => ("0.0.0.0".into(), format!("192.0.2.{}", j % 9)),
                            _ => (
                                format!("10.0.{}.{}", (j / 256) % 4, j % 256),
                                format!("192.0.2.{}", j % 5),
                            ),
                        };
                        // Equal volumes for most keys: ties decided by the key order.
                        let n = if j % 13 == 0 { u64::from(j % 7) + 2 } else { 1 };
                        flow(&s, &d, [6, 17][j as usize % 2], (j % 30) as u16, 0, n)
                    })
                    .collect();
                Block {
                    timestamp: T0 + 300 * b,
                    stats: CaptureStats::default(),
                    rows,
                }
            })
            .collect()
    };
    fixture_of([("eth0", blocks()), ("eth1", blocks())])
}

#[test]
fn shared_mode_matches_one_worker() {
    // Address groupings on several workers: every worker sees every block and keeps
    // the keys it owns. Same rows, order, totals and counts as one worker.
    let f = many_blocks();
    for q in [
        "talk_conv",
        "talk_src",
        "talk_dst",
        "agg_talk_port",
        "sip,time",
        "dip,iface",
        "sip,dport",
    ] {
        for cond in [None, Some("dport < 20 | snet = 2001:db8::/32")] {
            for (limit, asc) in [(10, false), (0, false), (7, true)] {
                let mut one = stmt(q);
                if let Some(c) = cond {
                    one = one.with_condition(c).unwrap();
                }
                one.limit = limit;
                one.ascending = asc;
                one.threads = 1;
                let a = check(&f, &one);
                for threads in [2, 3] {
                    let mut s = one.clone();
                    s.threads = threads;
                    let b = check(&f, &s);
                    assert_eq!(a.rows, b.rows, "{q} {cond:?} {limit} {threads}");
                    assert_eq!(a.totals, b.totals);
                    assert_eq!(a.hits_total, b.hits_total);
                    assert_eq!(a.rows_scanned, b.rows_scanned);
                    assert_eq!(a.blocks_read, b.blocks_read);
                    assert_eq!(a.rows_scanned, 24 * 600);
                }
            }
        }
    }
}

#[test]
fn shared_mode_stops_at_the_memory_limit() {
    let f = many_blocks();
    for threads in [2, 3] {
        let mut s = stmt("talk_conv");
        s.threads = threads;
        s.memory_limit = 4096;
        assert!(
            matches!(run(&f.db, &s), Err(QueryError::MemoryLimit { .. })),
            "{threads}"
        );
    }
}

/// Blocks larger than the work chunks and the widening steps of the engine (a
/// chunk boundary inside the IPv4 rows, one at the IPv4/IPv6 boundary region, a
/// last short chunk), three of them, so that every mode cuts them.
fn large_blocks() -> Fixture {
    let block = |b: i64| -> Block {
        let rows: Vec<FlowRow> = (0..40_000u32)
            .map(|i| {
                let j = i.wrapping_mul(2_654_435_761) ^ (b as u32 * 7919);
                let (s, d) = if i % 9 == 0 {
                    (
                        format!("2001:db8::{:x}", j % 3000),
                        format!("2001:db8:1::{:x}", j % 7),
                    )
                } else {
                    (
                        format!("10.{}.{}.{}", j % 3, (j >> 8) % 200, j % 251),
                        format!("192.0.2.{}", (j >> 16) % 40),
                    )
                };
                let n = u64::from(j % 97) + 1;
                flow(&s, &d, [6, 17, 1][j as usize % 3], (j % 3000) as u16, 0, n)
            })
            .collect();
        Block {
            timestamp: T0 + 300 * b,
            stats: CaptureStats::default(),
            rows,
        }
    };
    fixture_of([("eth0", (0..3).map(block).collect())])
}

#[test]
fn a_frame_that_does_not_decompress_stops_the_query() {
    // A framed block (40,000 rows) whose first bytes_sent frame is damaged, with a
    // checksum that matches the damage (a faulty writer, or a crafted file): frames
    // are decompressed as rows are widened, after other rows of the block may have
    // been counted, so the query stops with an error naming the file instead of
    // giving a partial block.
    let f = large_blocks();
    let plan = eth0_days(&f, i64::MIN, i64::MAX);
    let dir = plan[0].dir().to_path_buf();
    let mut meta = crate::db::read_meta(&dir).unwrap().unwrap();
    let path = dir.join(Column::BytesSent.file_name());
    let mut bytes = std::fs::read(&path).unwrap();
    let cm = meta.blocks[1].columns[Column::BytesSent.index()];
    let at = cm.offset as usize;
    assert!(
        bytes[at] & crate::column::tag::FRAMED_BIT != 0,
        "not framed"
    );
    // Tag, rows per frame, the first frame's length: then its lz4 bytes.
    for b in &mut bytes[at + 9..at + 25] {
        *b = 0xff;
    }
    std::fs::write(&path, &bytes).unwrap();
    let end = at + cm.stored_len as usize;
    meta.blocks[1].columns[Column::BytesSent.index()].crc32c = crc32c::crc32c(&bytes[at..end]);
    crate::writer::publish_meta(&dir, &meta).unwrap();
    for q in ["talk_conv", "apps_port"] {
        for threads in [1, 2, 3] {
            let mut s = stmt(q);
            s.threads = threads;
            match run(&f.db, &s) {
                Err(QueryError::Database(why)) => {
                    assert!(why.contains("bytes_sent.col"), "{q} {threads}: {why}")
                }
                other => panic!("{q} {threads}: {other:?}"),
            }
        }
    }
    // The block alone: read_raw checks it (frames stay compressed), widening fails.
    let plan = eth0_days(&f, i64::MIN, i64::MAX);
    let r = plan[0].open(&f.db, crate::ColumnSet::ALL).unwrap();
    let raw = r.read_raw(1).unwrap();
    let mut d = crate::BlockData::default();
    assert!(raw.rows_into(0..8192, &mut d).is_err());
    assert!(raw.rows_into(8192..16384, &mut d).is_ok());
    assert!(r.read(1).is_err());
    assert!(r.read(0).is_ok() && r.read(2).is_ok());
}

#[test]
fn chunked_scans_match_the_reference() {
    // Large blocks are widened a range at a time and, on several workers, cut into
    // chunks shared between them: every row counted once, whatever the mode.
    let f = large_blocks();
    for q in ["talk_conv", "talk_src", "apps_port", "sip,dport"] {
        for cond in [None, Some("dport < 1500 | snet = 2001:db8::/32")] {
            let mut first: Option<QueryResult> = None;
            for threads in [1, 2, 3] {
                let mut s = stmt(q);
                if let Some(c) = cond {
                    s = s.with_condition(c).unwrap();
                }
                s.limit = 25;
                s.threads = threads;
                let r = check(&f, &s);
                assert_eq!(r.rows_scanned, 120_000, "{q} {cond:?} {threads}");
                assert_eq!(r.blocks_read, 3, "{q} {cond:?} {threads}");
                if let Some(a) = &first {
                    assert_eq!(a.rows, r.rows, "{q} {cond:?} {threads}");
                }
                first = Some(r);
            }
        }
    }
}
