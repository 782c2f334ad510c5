//! Criterion benchmark of goflow's hot path in ns/packet: decoding alone
//! (`Decoder::decode`) and decode + flow aggregation (`FlowTable::add_packet` for every
//! packet, then `rotate` and `into_block`), on real packets: those of nDPI's test
//! captures in the shared folder (a few hundred real applications, Ethernet, cooked and
//! raw IP). Without the shared captures the benchmark prints a note and measures
//! nothing. Before measuring it prints the flow table's memory per connection after
//! aggregating all the packets (`FlowTable::memory`), the figure behind the 200-byte
//! budget of `docs/BENCHMARKS.md`.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goflow::decode::Decoder;
use goflow::{FlowTable, LinkType};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
/// Upper bound on the packets loaded, to keep memory and setup time modest.
const MAX_PACKETS: usize = 400_000;

/// Captured packets stored back to back: (link, start, end, wire length, seconds).
struct Packets {
    bytes: Vec<u8>,
    index: Vec<(LinkType, usize, usize, u32, i64)>,
}

impl Packets {
    fn iter(&self) -> impl Iterator<Item = (LinkType, &[u8], u32, i64)> + '_ {
        self.index
            .iter()
            .map(|&(link, a, b, len, ts)| (link, self.bytes.get(a..b).unwrap_or(&[]), len, ts))
    }
}

fn load(dir: &Path) -> Packets {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| {
        matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng")
        )
    });
    files.sort();
    let mut out = Packets {
        bytes: Vec::new(),
        index: Vec::new(),
    };
    for f in files {
        let Ok(mut cap) = pcap::Capture::from_file(&f) else {
            continue;
        };
        let link = LinkType::from_dlt(cap.get_datalink().0);
        while let Ok(p) = cap.next_packet() {
            if out.index.len() >= MAX_PACKETS {
                return out;
            }
            let start = out.bytes.len();
            out.bytes.extend_from_slice(p.data);
            out.index.push((
                link,
                start,
                out.bytes.len(),
                p.header.len,
                p.header.ts.tv_sec,
            ));
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(SHARED).join("pcaps/ndpi");
    if !dir.is_dir() {
        eprintln!(
            "note: {} not found, decode benchmark skipped",
            dir.display()
        );
        return;
    }
    let packets = load(&dir);
    if packets.index.is_empty() {
        eprintln!(
            "note: no readable packets in {}, decode benchmark skipped",
            dir.display()
        );
        return;
    }
    let mut t = FlowTable::new();
    for (link, data, len, ts) in packets.iter() {
        t.add_packet(link, data, len, ts);
    }
    let m = t.memory();
    eprintln!(
        "flow table after {} packets: {} connections, {} bytes allocated \
         ({:.1} per connection; table {}, layer-7 states {} for {} connections, fixed {})",
        packets.index.len(),
        m.connections,
        m.total(),
        m.total() as f64 / m.connections.max(1) as f64,
        m.table_bytes,
        m.l7_bytes,
        m.l7_states,
        m.fixed_bytes
    );
    let mut g = c.benchmark_group("goflow");
    g.throughput(Throughput::Elements(packets.index.len() as u64));
    g.sample_size(20);
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = Decoder::new();
            let mut ip = 0u64;
            for (link, data, _, ts) in packets.iter() {
                if let Some(p) = d.decode(link, data, ts) {
                    ip += u64::from(p.dport);
                }
            }
            std::hint::black_box(ip)
        })
    });
    g.bench_function("decode_and_aggregate", |b| {
        b.iter(|| {
            let mut t = FlowTable::new();
            for (link, data, len, ts) in packets.iter() {
                t.add_packet(link, data, len, ts);
            }
            let block = t.rotate().into_block(0, godb::CaptureStats::default());
            std::hint::black_box(block.rows.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
