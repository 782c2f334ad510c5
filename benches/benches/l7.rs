//! Criterion benchmark of the cost of layer-7 classification (godpi) inside goflow's
//! replay path, in ns/packet, on the real packets of nDPI's test captures (hundreds of
//! applications, so every signature family is exercised).
//!
//! Two runs of `FlowTable::add_packet` over the same packets:
//! - `replay_with_l7`: the packets as captured; every connection's `L7State` observes
//!   its payload packets until it is decided;
//! - `replay_headers_only`: the same packets (same buffers, same addresses) cut right
//!   after the transport header, as with a short snap length (the wire length and so
//!   the counters are unchanged), so no payload reaches the classifier.
//!
//! The difference is what classification costs; the budget is at most 10% of
//! replay throughput. The setup prints the connection count and labelled share of both
//! runs, so a cut that broke decoding would show. Without the shared captures the
//! benchmark prints a note and measures nothing.

use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use goflow::decode::Decoder;
use goflow::{FlowTable, LinkType};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");
/// Upper bound on the packets loaded, to keep memory and setup time modest.
const MAX_PACKETS: usize = 300_000;

/// One captured packet: link type, bytes, where its transport payload starts (the
/// length of its headers), wire length, seconds.
struct Pkt {
    link: LinkType,
    data: Vec<u8>,
    headers: usize,
    wire_len: u32,
    ts: i64,
}

fn load(dir: &Path) -> Vec<Pkt> {
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
    let mut out = Vec::new();
    for f in files {
        let Ok(mut cap) = pcap::Capture::from_file(&f) else {
            continue;
        };
        let link = LinkType::from_dlt(cap.get_datalink().0);
        while let Ok(p) = cap.next_packet() {
            if out.len() >= MAX_PACKETS {
                return out;
            }
            out.push(Pkt {
                link,
                data: p.data.to_vec(),
                headers: p.data.len(),
                wire_len: p.header.len,
                ts: p.header.ts.tv_sec,
            });
        }
    }
    out
}

/// Finds where each packet's transport payload starts.
fn mark_headers(packets: &mut [Pkt]) {
    let mut d = Decoder::new();
    for p in packets {
        if let Some(dp) = d.decode(p.link, &p.data, p.ts) {
            if !dp.payload.is_empty() {
                p.headers = dp.payload.as_ptr() as usize - p.data.as_ptr() as usize;
            }
        }
    }
}

/// Replays the packets, whole or cut after their headers. Both variants read the same
/// buffers at the same addresses, so they differ only in what the classifier reads.
fn replay(packets: &[Pkt], headers_only: bool) -> FlowTable {
    let mut t = FlowTable::new();
    for p in packets {
        let data = if headers_only {
            p.data.get(..p.headers).unwrap_or(&p.data)
        } else {
            &p.data
        };
        t.add_packet(p.link, data, p.wire_len, p.ts);
    }
    t
}

fn describe(name: &str, packets: &[Pkt], headers_only: bool) {
    let t = replay(packets, headers_only);
    let (mut n, mut labelled) = (0usize, 0usize);
    for c in t.connections() {
        n += 1;
        if c.l7 != godb::l7::UNKNOWN && !godb::l7::is_port_guess(c.l7) {
            labelled += 1;
        }
    }
    eprintln!(
        "{name}: {} packets, {n} connections, {labelled} detected",
        packets.len()
    );
}

/// The classifier's share of replay time, from 100 back-to-back pairs of runs (with
/// and without payload, alternating which goes first): the median of the per-pair
/// shares and the share between the fastest runs. Both resist other load on the
/// machine better than criterion's means.
fn share_of_replay(packets: &[Pkt]) {
    let time = |headers_only: bool| {
        let t = std::time::Instant::now();
        std::hint::black_box(replay(packets, headers_only).len());
        t.elapsed().as_secs_f64()
    };
    let (mut with_min, mut without_min) = (f64::MAX, f64::MAX);
    let mut shares = Vec::with_capacity(100);
    for i in 0..100 {
        let (with, without) = if i % 2 == 0 {
            let a = time(false);
            (a, time(true))
        } else {
            let b = time(true);
            (time(false), b)
        };
        with_min = with_min.min(with);
        without_min = without_min.min(without);
        shares.push((with - without) / with);
    }
    shares.sort_by(f64::total_cmp);
    eprintln!(
        "l7 share of replay time: median of 100 pairs {:.1}%; fastest runs {:.2} ms with l7, \
         {:.2} ms headers only ({:.1}%)",
        100.0 * shares[shares.len() / 2],
        with_min * 1e3,
        without_min * 1e3,
        100.0 * (with_min - without_min) / with_min
    );
}

fn bench(c: &mut Criterion) {
    let dir = Path::new(SHARED).join("pcaps/ndpi");
    if !dir.is_dir() {
        eprintln!("note: {} not found, l7 benchmark skipped", dir.display());
        return;
    }
    let mut full = load(&dir);
    if full.is_empty() {
        eprintln!(
            "note: no readable packets in {}, l7 benchmark skipped",
            dir.display()
        );
        return;
    }
    mark_headers(&mut full);
    describe("replay_with_l7", &full, false);
    describe("replay_headers_only", &full, true);
    share_of_replay(&full);
    let mut g = c.benchmark_group("l7");
    g.throughput(Throughput::Elements(full.len() as u64));
    g.sample_size(10);
    g.bench_function("replay_with_l7", |b| {
        b.iter(|| std::hint::black_box(replay(&full, false).len()))
    });
    g.bench_function("replay_headers_only", |b| {
        b.iter(|| std::hint::black_box(replay(&full, true).len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
