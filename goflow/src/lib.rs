//! goflow: from captured packet bytes to flow rows.
//!
//! Decodes link layers (Ethernet with VLAN tags, Linux cooked, BSD loopback, raw IP,
//! PPPoE), IPv4 and IPv6 with extension headers and fragments, and transport ports;
//! aggregates the packets into a per-interface [`FlowTable`] keyed as godb stores it.
//! No libpcap here: callers hand in bytes, so the decoder is testable and fuzzable alone.
//!
//! ```
//! use goflow::{FlowTable, LinkType};
//!
//! // One UDP packet 10.0.0.1:40000 -> 10.0.0.2:53 on raw IP.
//! let pkt = [
//!     0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
//!     0x9c, 0x40, 0, 53, 0, 8, 0, 0,
//! ];
//! let mut table = FlowTable::new();
//! table.add_packet(LinkType::from_dlt(101), &pkt, 28, 1_700_000_000);
//! let block = table.rotate().into_block(1_700_000_100, godb::CaptureStats::default());
//! assert_eq!(block.rows.len(), 1);
//! assert_eq!(block.rows[0].key.dport, 53);
//! assert_eq!(block.rows[0].counters.bytes_sent, 28);
//! assert_eq!(block.stats.packets_received, 1);
//! ```

#![deny(missing_docs)]

pub mod decode;
pub mod frag;
pub mod orient;
mod table;
pub mod wire;

pub use decode::DecodeStats;
pub use table::{Connection, FlowTable, IntervalFlows, TableMemory};
pub use wire::LinkType;

/// Proof of "no allocation per packet": a counting allocator for this crate's unit-test
/// binary, and a test that decodes and accounts packets of known connections (and
/// non-IP, malformed and fragmented ones) without a single allocation.
#[cfg(test)]
mod no_alloc {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    thread_local! {
        static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    }

    fn count() {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }

    // SAFETY: every call is forwarded unchanged to the system allocator; the counter is
    // a const-initialised thread-local that never allocates.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            count();
            System.alloc(layout)
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            count();
            System.alloc_zeroed(layout)
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            count();
            System.realloc(ptr, layout, new_size)
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static ALLOCATOR: Counting = Counting;

    fn allocations() -> u64 {
        ALLOCATIONS.with(|c| c.get())
    }

    fn udp(src: u8, sport: u16, frag: [u8; 2], payload: &[u8]) -> Vec<u8> {
        let total = (28 + payload.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[
            0, 9, frag[0], frag[1], 64, 17, 0, 0, 10, 0, 0, src, 10, 0, 1, 1,
        ]);
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&[0, 53]);
        v.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn accounting_known_connections_does_not_allocate() {
        let link = crate::LinkType::RawIp;
        let packets: Vec<Vec<u8>> = (0..200u16)
            .map(|i| {
                udp(
                    (i % 50) as u8,
                    40000 + i,
                    [0, 0],
                    b"\x12\x34\x01\x00\x00\x01",
                )
            })
            .chain([
                udp(7, 5000, [0x20, 0], b"first"),
                udp(7, 5000, [0, 4], b"later"),
            ])
            .chain([
                vec![0x45, 0, 0],
                vec![0x60; 40],
                vec![0x46; 24],
                vec![0x10; 64],
            ])
            .collect();
        let mut table = crate::FlowTable::new();
        for p in &packets {
            table.add_packet(link, p, p.len() as u32, 1_000);
        }
        let before = allocations();
        for round in 0..20 {
            for p in &packets {
                table.add_packet(link, p, p.len() as u32, 1_000 + round);
            }
        }
        assert_eq!(allocations() - before, 0, "allocations on the packet path");
        assert_eq!(table.stats().received, 21 * packets.len() as u64);
    }
}
