//! The golden database of format version 1, committed under `tests/golden/v1`, must
//! stay readable by every later version of godb. Regenerate it (only when the format
//! version changes, into a new folder) with
//! `GODB_WRITE_GOLDEN=<folder> cargo test -p godb --test store golden -- --ignored`.

use std::path::Path;

use godb::{Block, CaptureStats, Counters, Database, FlowKey, FlowRow, FORMAT_VERSION};

use crate::{random_block, read_all, stored_order, MIDNIGHT};

const GOLDEN_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/v1");

/// The content of the golden database: two interfaces, two days, empty and one-row
/// blocks, IPv6, extreme counters, equal timestamps.
fn golden_blocks() -> Vec<(&'static str, Block)> {
    let extreme = FlowRow {
        key: FlowKey {
            sip: "2001:db8::1"
                .parse()
                .unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
            dip: "ff02::fb"
                .parse()
                .unwrap_or(std::net::Ipv6Addr::LOCALHOST.into()),
            proto: 255,
            dport: 65535,
            l7: 65535,
        },
        counters: Counters {
            bytes_rcvd: u64::MAX,
            bytes_sent: u64::MAX - 1,
            pkts_rcvd: 1 << 32,
            pkts_sent: 0,
        },
    };
    let mut out = Vec::new();
    for (k, iface) in ["eth0", "wlan0"].into_iter().enumerate() {
        let base = MIDNIGHT - 600 + k as i64 * 300;
        out.push((iface, random_block(100 + k as u64, base, 40)));
        out.push((
            iface,
            Block {
                timestamp: base + 300,
                stats: CaptureStats::default(),
                rows: vec![],
            },
        ));
        out.push((
            iface,
            Block {
                timestamp: base + 600,
                stats: CaptureStats {
                    packets_received: u64::MAX,
                    ..Default::default()
                },
                rows: vec![extreme],
            },
        ));
        out.push((iface, random_block(200 + k as u64, base + 600, 25)));
        out.push((iface, random_block(300 + k as u64, base + 3600, 60)));
    }
    out
}

fn write_golden(path: &Path) {
    let db = Database::create(path).unwrap();
    for iface in ["eth0", "wlan0"] {
        let mut w = db.writer(iface).unwrap();
        for (_, b) in golden_blocks().iter().filter(|(i, _)| *i == iface) {
            w.append(b).unwrap();
        }
    }
}

#[test]
#[ignore = "writes the golden database; run by hand when adding a format version"]
fn write_golden_database() {
    if let Ok(path) = std::env::var("GODB_WRITE_GOLDEN") {
        write_golden(Path::new(&path));
    }
}

#[test]
fn golden_v1_database_reads_back() {
    assert_eq!(
        FORMAT_VERSION, 1,
        "add a golden database for the new version"
    );
    let db = Database::open(GOLDEN_V1).unwrap();
    let got = read_all(&db);
    let mut want: Vec<(String, Block)> = golden_blocks()
        .into_iter()
        .map(|(i, b)| {
            (
                i.to_string(),
                Block {
                    rows: stored_order(&b.rows),
                    ..b
                },
            )
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.timestamp.cmp(&b.1.timestamp)));
    // Equal timestamps keep their commit order (sort_by is stable).
    assert_eq!(got, want);
    assert_eq!(db.interfaces().unwrap(), vec!["eth0", "wlan0"]);
    assert_eq!(db.days("eth0").unwrap().len(), 2);
}

#[test]
fn writing_the_golden_content_again_gives_the_same_metadata_layout() {
    // The encoder may improve, but today's writer must produce what the golden
    // database holds: a regression test against accidental format changes.
    let dir = tempfile::tempdir().unwrap();
    write_golden(dir.path());
    for rel in [
        "eth0/2025/11/21/day.meta",
        "wlan0/2025/11/22/day.meta",
        "eth0/2025/11/22/sip.col",
    ] {
        let a = std::fs::read(Path::new(GOLDEN_V1).join(rel)).unwrap();
        let b = std::fs::read(dir.path().join(rel)).unwrap();
        assert_eq!(a, b, "{rel} differs from the golden database");
    }
}
