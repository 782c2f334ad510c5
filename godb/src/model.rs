//! The data model shared by every writer and reader of a godb database: a flow row
//! (key plus counters), the capture statistics of an interval, and a block (all rows of
//! one interface for one 5-minute interval).
//!
//! These types are the vocabulary of godb's public API; capture code builds [`Block`]s,
//! the store persists them, the query engine reads them back column by column.

use std::net::IpAddr;

/// Length of one storage interval in seconds. Blocks are cut at multiples of this.
pub const INTERVAL_SECS: i64 = 300;

/// The key of a stored flow: who talked to whom, over which protocol and service port,
/// and which application-layer protocol was recognised (see [`crate::l7`]).
///
/// `sip` is the side that started the conversation (client), `dip` the other (server).
/// `sip` and `dip` are always of the same IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    /// Source (client) address.
    pub sip: IpAddr,
    /// Destination (server) address.
    pub dip: IpAddr,
    /// IP protocol number of the upper layer (6 = TCP, 17 = UDP, ...).
    pub proto: u8,
    /// Destination (server) port; 0 for protocols without ports.
    pub dport: u16,
    /// Application-layer protocol id from [`crate::l7`]; 0 = unknown.
    pub l7: u16,
}

/// Traffic counters of one flow in one interval.
///
/// "sent" counts packets from `sip` to `dip`, "rcvd" the other direction, as seen from
/// the flow's source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counters {
    /// Bytes from `dip` to `sip`.
    pub bytes_rcvd: u64,
    /// Bytes from `sip` to `dip`.
    pub bytes_sent: u64,
    /// Packets from `dip` to `sip`.
    pub pkts_rcvd: u64,
    /// Packets from `sip` to `dip`.
    pub pkts_sent: u64,
}

impl Counters {
    /// Adds `other` into `self`, saturating at `u64::MAX`.
    pub fn add(&mut self, other: &Counters) {
        self.bytes_rcvd = self.bytes_rcvd.saturating_add(other.bytes_rcvd);
        self.bytes_sent = self.bytes_sent.saturating_add(other.bytes_sent);
        self.pkts_rcvd = self.pkts_rcvd.saturating_add(other.pkts_rcvd);
        self.pkts_sent = self.pkts_sent.saturating_add(other.pkts_sent);
    }

    /// Bytes in both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes_rcvd.saturating_add(self.bytes_sent)
    }

    /// Packets in both directions.
    pub fn packets(&self) -> u64 {
        self.pkts_rcvd.saturating_add(self.pkts_sent)
    }
}

/// One stored flow: its key and its counters for one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowRow {
    /// What the flow is.
    pub key: FlowKey,
    /// How much it carried.
    pub counters: Counters,
}

/// Capture statistics of one interface for one interval, as reported by libpcap and
/// by the decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CaptureStats {
    /// Packets seen by the capture (every packet handed to the decoder).
    pub packets_received: u64,
    /// Packets dropped by the kernel because the capture buffer was full.
    pub packets_dropped: u64,
    /// Packets dropped by the network interface or its driver.
    pub packets_if_dropped: u64,
    /// Packets received that carried no decodable IP header (ARP, LLDP, truncated, ...).
    pub packets_non_ip: u64,
}

impl CaptureStats {
    /// Adds `other` into `self`, saturating at `u64::MAX`.
    pub fn add(&mut self, other: &CaptureStats) {
        self.packets_received = self.packets_received.saturating_add(other.packets_received);
        self.packets_dropped = self.packets_dropped.saturating_add(other.packets_dropped);
        self.packets_if_dropped = self
            .packets_if_dropped
            .saturating_add(other.packets_if_dropped);
        self.packets_non_ip = self.packets_non_ip.saturating_add(other.packets_non_ip);
    }
}

/// All flows of one interface for one 5-minute interval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Block {
    /// End of the interval, UTC seconds since the epoch (a multiple of
    /// [`INTERVAL_SECS`] for live capture and replay alike).
    pub timestamp: i64,
    /// Capture statistics of the interval.
    pub stats: CaptureStats,
    /// The flows, in any order (the writer sorts them).
    pub rows: Vec<FlowRow>,
}
