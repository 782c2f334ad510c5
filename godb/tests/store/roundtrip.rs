//! Round trips of blocks through the writer and the reader, the writer's rules
//! (order, lock, interface names) and listing from metadata.

use std::net::IpAddr;

use godb::{
    Block, Column, ColumnSet, Counters, Database, Error, FlowKey, FlowRow, ScanRequest,
    INTERVAL_SECS,
};
use proptest::prelude::*;

use crate::{random_block, read_all, stored_order, MIDNIGHT};

fn all(ifaces: &[&str], first: i64, last: i64) -> ScanRequest {
    ScanRequest {
        ifaces: ifaces.iter().map(|s| s.to_string()).collect(),
        first,
        last,
    }
}

#[test]
fn write_then_read_back_several_days_and_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("db")).unwrap();
    let mut expected = Vec::new();
    for (k, iface) in ["eth0", "eth1"].iter().enumerate() {
        let mut w = db.writer(iface).unwrap();
        // From 23:50 to 00:10: crosses midnight; the 00:00 block belongs to the day before.
        for j in 0..5 {
            let ts = MIDNIGHT - 2 * INTERVAL_SECS + j * INTERVAL_SECS;
            let b = random_block(k as u64 * 100 + j as u64, ts, (j as usize) * 37);
            w.append(&b).unwrap();
            expected.push((
                iface.to_string(),
                Block {
                    rows: stored_order(&b.rows),
                    ..b
                },
            ));
        }
    }
    assert_eq!(read_all(&db), expected);
    assert_eq!(db.interfaces().unwrap(), vec!["eth0", "eth1"]);
    let days = db.days("eth0").unwrap();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0].date.to_string(), "2025-11-21");
    assert_eq!(
        (days[0].first, days[0].last, days[0].blocks),
        (MIDNIGHT - 600, MIDNIGHT, 3)
    );
    assert_eq!(
        (days[1].first, days[1].last, days[1].blocks),
        (MIDNIGHT + 300, MIDNIGHT + 600, 2)
    );
    let rows: u64 = expected[..5].iter().map(|(_, b)| b.rows.len() as u64).sum();
    assert_eq!(days.iter().map(|d| d.rows).sum::<u64>(), rows);
    let mut c = Counters::default();
    for (_, b) in &expected[..5] {
        for r in &b.rows {
            c.add(&r.counters);
        }
    }
    let mut dc = Counters::default();
    for d in &days {
        dc.add(&d.counters);
    }
    assert_eq!(dc, c);
    assert!(dir.path().join("db/eth0/2025/11/21/day.meta").is_file());
}

#[test]
fn plan_filters_by_time_and_interface() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    for iface in ["a", "b"] {
        let mut w = db.writer(iface).unwrap();
        for j in 0..6 {
            w.append(&random_block(j, MIDNIGHT - 900 + j as i64 * 300, 3))
                .unwrap();
        }
    }
    let plans = db.plan(&all(&["b"], MIDNIGHT, MIDNIGHT + 300)).unwrap();
    let got: Vec<(String, Vec<i64>)> = plans
        .iter()
        .map(|p| {
            (
                p.iface.clone(),
                p.blocks.iter().map(|b| b.timestamp).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("b".into(), vec![MIDNIGHT]),
            ("b".into(), vec![MIDNIGHT + 300])
        ]
    );
    assert_eq!(db.plan(&all(&[], MIDNIGHT, MIDNIGHT)).unwrap().len(), 2);
    assert!(db
        .plan(&all(&[], MIDNIGHT + 1, MIDNIGHT))
        .unwrap()
        .is_empty());
    assert!(db
        .plan(&all(&["nope"], i64::MIN, i64::MAX))
        .unwrap()
        .is_empty());
    assert!(matches!(
        db.plan(&all(&["../x"], 0, 1)),
        Err(Error::InvalidInterface { .. })
    ));
}

#[test]
fn reads_only_the_chosen_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    let b = random_block(7, MIDNIGHT, 50);
    db.writer("x").unwrap().append(&b).unwrap();
    // Remove a column file that is not asked for: reading must not notice.
    let plan = &db.plan(&all(&[], 0, i64::MAX)).unwrap()[0];
    std::fs::remove_file(plan.dir().join("sip.col")).unwrap();
    let cols = ColumnSet::EMPTY.with(Column::Dport).with(Column::BytesSent);
    let data = plan.open(&db, cols).unwrap().read(0).unwrap();
    let rows = stored_order(&b.rows);
    assert_eq!(data.dport, Some(rows.iter().map(|r| r.key.dport).collect()));
    assert_eq!(
        data.bytes_sent,
        Some(rows.iter().map(|r| r.counters.bytes_sent).collect())
    );
    assert!(data.sip.is_none() && data.dip.is_none() && data.pkts_sent.is_none());
    assert!(data.try_row(0).is_none());
    // Asking for the removed column reports that block and file.
    let err = plan.open(&db, ColumnSet::ALL).unwrap().read(0).unwrap_err();
    assert!(err.file.ends_with("sip.col"), "{err}");
    assert_eq!(err.block, 0);
}

#[test]
fn ipv4_rows_come_first_and_mixed_rows_become_ipv6() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    let row = |s: &str, d: &str| FlowRow {
        key: FlowKey {
            sip: s.parse().unwrap(),
            dip: d.parse().unwrap(),
            proto: 6,
            dport: 1,
            l7: 0,
        },
        counters: Counters {
            bytes_rcvd: 1,
            ..Default::default()
        },
    };
    let b = Block {
        timestamp: MIDNIGHT,
        stats: Default::default(),
        rows: vec![
            row("::1", "::2"),
            row("10.0.0.2", "1.1.1.1"),
            row("10.0.0.1", "::3"),
            row("1.0.0.1", "1.1.1.1"),
        ],
    };
    db.writer("x").unwrap().append(&b).unwrap();
    let plan = &db.plan(&all(&[], 0, i64::MAX)).unwrap()[0];
    let data = plan.open(&db, ColumnSet::ALL).unwrap().read(0).unwrap();
    assert_eq!(data.rows_v4, 2);
    let sips: Vec<IpAddr> = (0..data.rows).map(|i| data.row(i).key.sip).collect();
    let want: Vec<IpAddr> = ["1.0.0.1", "10.0.0.2", "::1", "::ffff:10.0.0.1"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(sips, want);
    assert_eq!(data.row(3).key.dip, "::3".parse::<IpAddr>().unwrap());
}

#[test]
fn writer_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path()).unwrap();
    let mut w = db.writer("eth0").unwrap();
    assert!(matches!(db.writer("eth0"), Err(Error::WriterLocked { .. })));
    w.append(&random_block(1, MIDNIGHT, 3)).unwrap();
    // Equal timestamps are allowed (a restarted daemon), earlier ones are not.
    w.append(&random_block(2, MIDNIGHT, 4)).unwrap();
    assert!(matches!(
        w.append(&random_block(3, MIDNIGHT - 300, 1)),
        Err(Error::TimestampOrder { last: MIDNIGHT, .. })
    ));
    drop(w);
    // A new writer learns the last timestamp from disk.
    let mut w = db.writer("eth0").unwrap();
    assert_eq!(w.last_timestamp(), Some(MIDNIGHT));
    assert!(w.append(&random_block(3, MIDNIGHT - 1, 1)).is_err());
    w.append(&random_block(4, MIDNIGHT + 300, 0)).unwrap();
    assert_eq!(read_all(&db).len(), 3);
    for bad in ["", ".", "..", "a/b", "a\0", &"x".repeat(65)] {
        assert!(
            matches!(db.writer(bad), Err(Error::InvalidInterface { .. })),
            "{bad:?}"
        );
        assert!(db.days(bad).is_err());
        assert!(db
            .delete_days_before(chrono::NaiveDate::MAX, Some(bad))
            .is_err());
    }
    assert!(matches!(
        w.append(&random_block(1, i64::MAX, 1)),
        Err(Error::TimestampOutOfRange(_))
    ));
}

#[test]
fn open_requires_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Database::open(dir.path().join("missing")),
        Err(Error::NotFound(_))
    ));
    let f = dir.path().join("file");
    std::fs::write(&f, b"x").unwrap();
    assert!(matches!(Database::open(&f), Err(Error::NotADirectory(_))));
    let db = Database::create(dir.path().join("a/b")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(db.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o750, 0, "mode {mode:o}");
    assert!(Database::open(db.path()).is_ok());
}

fn arb_ip(v6: bool) -> BoxedStrategy<IpAddr> {
    if v6 {
        prop_oneof![
            any::<u128>(),
            (0u128..8).prop_map(|x| (0xfe80u128 << 112) | x)
        ]
        .prop_map(|x| IpAddr::from(x.to_be_bytes()))
        .boxed()
    } else {
        prop_oneof![any::<u32>(), (0u32..8).prop_map(|x| 0x0a00_0000 | x)]
            .prop_map(|x| IpAddr::from(x.to_be_bytes()))
            .boxed()
    }
}

fn arb_counter() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        0u64..256,
        0u64..100_000,
        Just(u64::MAX),
        any::<u64>()
    ]
}

fn arb_row() -> impl Strategy<Value = FlowRow> {
    any::<bool>()
        .prop_flat_map(|v6| {
            (
                arb_ip(v6),
                arb_ip(v6),
                any::<u8>(),
                any::<u16>(),
                0u16..4,
                [arb_counter(), arb_counter(), arb_counter(), arb_counter()],
            )
        })
        .prop_map(|(sip, dip, proto, dport, l7, c)| FlowRow {
            key: FlowKey {
                sip,
                dip,
                proto,
                dport,
                l7,
            },
            counters: Counters {
                bytes_rcvd: c[0],
                bytes_sent: c[1],
                pkts_rcvd: c[2],
                pkts_sent: c[3],
            },
        })
}

fn arb_rows() -> impl Strategy<Value = Vec<FlowRow>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(arb_row(), 1..2),
        prop::collection::vec(arb_row(), 0..120),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Random blocks of several interfaces, spread over several days (several blocks
    /// per day, equal timestamps too) read back exactly, and the day totals match.
    #[test]
    fn random_blocks_round_trip(
        blocks in prop::collection::vec((0usize..3, 0i64..3, arb_rows(), any::<[u64; 4]>()), 1..12)
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path()).unwrap();
        let ifaces = ["eth0", "wlan0", "v6-only"];
        let mut writers: Vec<_> = ifaces.iter().map(|i| db.writer(i).unwrap()).collect();
        let mut ts = [MIDNIGHT - 600; 3];
        let mut expected: Vec<Vec<Block>> = vec![Vec::new(); 3];
        for (iface, step, rows, stats) in blocks {
            // Steps of 0, 1 or 2 days' worth of 4-hour jumps keep several blocks per day.
            ts[iface] += step * 4 * 3600;
            let b = Block {
                timestamp: ts[iface],
                stats: godb::CaptureStats { packets_received: stats[0], packets_dropped: stats[1], packets_if_dropped: stats[2], packets_non_ip: stats[3] },
                rows,
            };
            writers[iface].append(&b).unwrap();
            expected[iface].push(Block { rows: stored_order(&b.rows), ..b });
        }
        let mut want = Vec::new();
        for (i, blocks) in expected.iter().enumerate() {
            let mut days: Vec<(chrono::NaiveDate, Block)> = blocks.iter().map(|b| (godb::day_of(b.timestamp).unwrap(), b.clone())).collect();
            days.sort_by_key(|(d, _)| *d);
            for (_, b) in days {
                want.push((ifaces[i].to_string(), b));
            }
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.timestamp.cmp(&b.1.timestamp)));
        let got = read_all(&db);
        prop_assert_eq!(got, want);
        for (i, iface) in ifaces.iter().enumerate() {
            let days = db.days(iface).unwrap();
            let rows: u64 = expected[i].iter().map(|b| b.rows.len() as u64).sum();
            prop_assert_eq!(days.iter().map(|d| d.rows).sum::<u64>(), rows);
            prop_assert_eq!(days.iter().map(|d| u64::from(d.blocks)).sum::<u64>(), expected[i].len() as u64);
        }
    }
}
