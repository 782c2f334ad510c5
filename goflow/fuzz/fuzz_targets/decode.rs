//! Fuzz target: arbitrary bytes through the decoder and the flow table, on every link
//! type. The first input byte picks the link type, the rest is a sequence of packets,
//! each prefixed by a one-byte length. Checks that nothing panics and that every packet
//! is counted exactly once (IP or non-IP), across rotations.
#![no_main]

use goflow::{FlowTable, LinkType};
use libfuzzer_sys::fuzz_target;

const DLTS: [i32; 11] = [1, 0, 108, 101, 228, 229, 12, 14, 113, 276, 147];

fuzz_target!(|data: &[u8]| {
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
            let flows = table.rotate();
            let _ = flows.connections().count();
            let block = flows.into_block(ts, godb::CaptureStats::default());
            counted += block.stats.packets_received;
            let ip: u64 = block.rows.iter().map(|r| r.counters.packets()).sum();
            assert_eq!(
                ip + block.stats.packets_non_ip,
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
});
