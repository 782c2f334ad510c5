//! The fuzz harness for goflow's decoder and flow table, shared by the libFuzzer target
//! `decode` and by goflow's regression test (`goflow/tests/fuzz_regressions.rs`
//! includes this file with `#[path]`), so a crash input replays through exactly the
//! same code on stable.
//!
//! Input layout: the first byte picks the link type ([`DLTS`], modulo its length), the
//! rest is a sequence of packets, each prefixed by a one-byte length. Checks that
//! nothing panics, that every packet is counted exactly once (IP or non-IP) across
//! rotations, and that building a block (sorting and merging rows in place) keeps the
//! packet and byte totals and leaves the rows strictly ordered by key.

use goflow::{FlowTable, LinkType};

/// The data-link types the selector byte picks from: every decoded link type and one
/// that is not decoded (147, DLT_USER0). `scripts/fuzz-seeds.py` uses the same table.
pub const DLTS: [i32; 11] = [1, 0, 108, 101, 228, 229, 12, 14, 113, 276, 147];

/// Runs one input through a fresh flow table.
pub fn decode(data: &[u8]) {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let link = LinkType::from_dlt(DLTS[usize::from(sel) % DLTS.len()]);
    let mut table = FlowTable::new();
    let mut sent = 0u64;
    let mut counted = 0u64;
    let mut ts = 0i64;
    while let Some((&len, tail)) = rest.split_first() {
        let n = usize::from(len).min(tail.len());
        let (pkt, next) = tail.split_at(n);
        table.add_packet(link, pkt, u32::from(len) + 14, ts);
        sent += 1;
        ts += i64::from(len);
        if len % 16 == 0 {
            assert_eq!(table.connections().count(), table.len());
            let flows = table.rotate();
            let before: (u64, u64) = flows.rows().iter().fold((0, 0), |(p, b), r| {
                (p + r.counters.packets(), b + r.counters.bytes())
            });
            let block = flows.into_block(ts, godb::CaptureStats::default());
            counted += block.stats.packets_received;
            let after: (u64, u64) = block.rows.iter().fold((0, 0), |(p, b), r| {
                (p + r.counters.packets(), b + r.counters.bytes())
            });
            assert_eq!(before, after, "merging rows changed the totals");
            assert!(
                block.rows.windows(2).all(|w| w[0].key < w[1].key),
                "block rows not sorted and merged by key"
            );
            assert_eq!(
                after.0 + block.stats.packets_non_ip,
                block.stats.packets_received
            );
        }
        rest = next;
    }
    counted += table
        .rotate()
        .into_block(ts, godb::CaptureStats::default())
        .stats
        .packets_received;
    assert_eq!(sent, counted);
}
