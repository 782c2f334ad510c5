//! Writes a small godb database (two interfaces, an hour of 5-minute blocks of
//! synthetic flows), lists it from the metadata, reads it back column by column and
//! checks every row. Usage: `cargo run -p godb --example write_and_read [DB_FOLDER]`
//! (default: a fresh folder under the system's temporary directory).

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use godb::{
    Block, CaptureStats, Column, ColumnSet, Counters, Database, FlowKey, FlowRow, ScanRequest,
    INTERVAL_SECS,
};

/// Synthetic flows of one interval: clients of 10.0.0.0/24 talking to a few servers.
fn block(timestamp: i64, seed: u32) -> Block {
    let rows = (0..200u32)
        .map(|i| {
            let x = i.wrapping_mul(2_654_435_761).wrapping_add(seed);
            FlowRow {
                key: FlowKey {
                    sip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, (x % 50) as u8)),
                    dip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, (x % 7) as u8)),
                    proto: if x % 5 == 0 { 17 } else { 6 },
                    dport: [443, 80, 53, 22][(x % 4) as usize],
                    l7: 0,
                },
                counters: Counters {
                    bytes_rcvd: u64::from(x % 100_000),
                    bytes_sent: u64::from(x % 3_000),
                    pkts_rcvd: u64::from(x % 90 + 1),
                    pkts_sent: u64::from(x % 40 + 1),
                },
            }
        })
        .collect();
    Block {
        timestamp,
        stats: CaptureStats {
            packets_received: 10_000,
            ..Default::default()
        },
        rows,
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = match std::env::args_os().nth(1) {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("godb-example-{}", std::process::id())),
    };
    let db = Database::create(&path)?;
    let start = 1_763_769_900; // 2025-11-22T00:05:00Z, the end of the first interval of the day
    let mut written = Vec::new();
    for iface in ["eth0", "eth1"] {
        let mut w = db.writer(iface)?;
        let first = w.last_timestamp().map_or(start, |t| t + INTERVAL_SECS);
        for i in 0..12 {
            let b = block(first + i * INTERVAL_SECS, i as u32);
            w.append(&b)?;
            written.push((iface, b));
        }
    }
    println!("database {}", db.path().display());
    for iface in db.interfaces()? {
        for d in db.days(&iface)? {
            println!(
                "  {iface} {}: {} blocks, {} rows, {} bytes, {} packets",
                d.date,
                d.blocks,
                d.rows,
                d.counters.bytes(),
                d.counters.packets()
            );
        }
    }
    // Read back: first only two columns (what a "top ports by bytes" query needs) ...
    let req = ScanRequest {
        ifaces: vec![],
        first: i64::MIN,
        last: i64::MAX,
    };
    let cols = ColumnSet::EMPTY.with(Column::Dport).with(Column::BytesSent);
    let mut sent_443 = 0u64;
    let mut checked = 0usize;
    for plan in db.plan(&req)? {
        let reader = plan.open(&db, cols)?;
        for i in 0..reader.len() {
            let data = reader.read(i)?;
            if let (Some(ports), Some(bytes)) = (&data.dport, &data.bytes_sent) {
                sent_443 += ports
                    .iter()
                    .zip(bytes)
                    .filter(|(p, _)| **p == 443)
                    .map(|(_, b)| b)
                    .sum::<u64>();
            }
        }
        // ... then every column, checked against what was written.
        let reader = plan.open(&db, ColumnSet::ALL)?;
        for i in 0..reader.len() {
            let data = reader.read(i)?;
            let mut got = data.to_rows().ok_or("missing column")?;
            let (_, b) = written
                .iter()
                .find(|(f, b)| *f == plan.iface && b.timestamp == data.timestamp)
                .ok_or("unexpected block")?;
            let mut want = b.rows.clone();
            let key = |r: &FlowRow| (r.key, r.counters.bytes_rcvd, r.counters.bytes_sent);
            got.sort_by_key(key);
            want.sort_by_key(key);
            if got != want {
                return Err(format!("block {} of {} differs", data.timestamp, plan.iface).into());
            }
            checked += 1;
        }
    }
    println!("bytes sent to port 443: {sent_443}");
    println!("{checked} blocks read back and verified");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
