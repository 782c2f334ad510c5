//! Helpers shared by goprobe's integration tests: the built binary, the shared test
//! data, a tiny pcap writer and frame builder for synthetic captures, and reading a
//! database back through godb's reader.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use godb::{ColumnSet, Database, FlowRow, ScanRequest};

/// The goprobe binary under test.
pub fn goprobe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_goprobe"))
}

/// Runs goprobe with `args` and returns its output.
pub fn run(args: &[&str]) -> Output {
    match goprobe().args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run goprobe {args:?}: {e}"),
    }
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `../shared` of the workspace, if present.
pub fn shared() -> Option<PathBuf> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared"));
    if p.is_dir() {
        Some(p.to_path_buf())
    } else {
        eprintln!("note: {} is absent, skipping", p.display());
        None
    }
}

/// One block as read back from the database.
#[derive(Debug, Clone)]
pub struct ReadBlock {
    pub timestamp: i64,
    pub stats: godb::CaptureStats,
    pub rows: Vec<FlowRow>,
}

/// Every block of `iface`, in commit order, through godb's reader.
pub fn read_blocks(db: &Path, iface: &str) -> Vec<ReadBlock> {
    let db = Database::open(db).expect("open the database");
    let req = ScanRequest {
        ifaces: vec![iface.to_string()],
        first: i64::MIN,
        last: i64::MAX,
    };
    let mut out = Vec::new();
    for day in db.plan(&req).expect("plan") {
        assert!(day.damaged.is_none(), "damaged day {:?}", day.damaged);
        let reader = day.open(&db, ColumnSet::ALL).expect("open day");
        for i in 0..reader.len() {
            let b = reader.read(i).expect("read block");
            let rows = b.to_rows().expect("all columns");
            out.push(ReadBlock {
                timestamp: b.timestamp,
                stats: b.stats,
                rows,
            });
        }
    }
    out
}

/// Packets and bytes per unordered address pair and protocol.
pub type PairMap = BTreeMap<(IpAddr, IpAddr, u8), (u64, u64)>;

/// Sums rows into a [`PairMap`].
pub fn pairs_of(blocks: &[ReadBlock]) -> PairMap {
    let mut m = PairMap::new();
    for b in blocks {
        for r in &b.rows {
            let (a, z) = if r.key.sip <= r.key.dip {
                (r.key.sip, r.key.dip)
            } else {
                (r.key.dip, r.key.sip)
            };
            let e = m.entry((a, z, r.key.proto)).or_default();
            e.0 += r.counters.packets();
            e.1 += r.counters.bytes();
        }
    }
    m
}

/// Appends a classic little-endian pcap header (microseconds, snaplen 65535).
pub fn pcap_header(out: &mut Vec<u8>, linktype: u32) {
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&linktype.to_le_bytes());
}

/// Appends one pcap record with the whole frame captured.
pub fn pcap_record(out: &mut Vec<u8>, ts: u32, frame: &[u8]) {
    let len = frame.len() as u32;
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(frame);
}

/// An Ethernet II frame carrying IPv4 and a TCP (6) or UDP (17) header, `total` bytes
/// long on the wire (at least 14 + 20 + transport header), padded with zero payload.
#[allow(clippy::too_many_arguments)]
pub fn eth_ipv4(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    sport: u16,
    dport: u16,
    tcp_flags: u8,
    total: usize,
) -> Vec<u8> {
    let l4 = if proto == 6 { 20 } else { 8 };
    assert!(total >= 14 + 20 + l4, "frame too short");
    let mut f = Vec::with_capacity(total);
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (total - 14) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
    ip[8] = 64;
    ip[9] = proto;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let mut sum = 0u32;
    for c in ip.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        f.extend_from_slice(&[
            0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcp_flags, 0xff, 0xff, 0, 0, 0, 0,
        ]);
    } else {
        let udp_len = (total - 14 - 20) as u16;
        f.extend_from_slice(&udp_len.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.resize(total, 0);
    f
}
