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

pub mod decode;
pub mod frag;
pub mod orient;
mod table;
pub mod wire;

pub use decode::DecodeStats;
pub use table::{Connection, FlowTable, IntervalFlows};
pub use wire::LinkType;
