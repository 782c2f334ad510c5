//! The per-interface flow table: one entry per connection (addresses, ports, protocol)
//! with counters both ways, its orientation and its layer-7 state; rotated every
//! interval into an [`IntervalFlows`] that the writer thread turns into a godb block.
//!
//! The table belongs to one capture thread: no locks, no logging, and no allocation per
//! packet beyond the table's own growth. Entries are keyed by the connection's two
//! endpoints in canonical order (lower address/port first), so both directions of a
//! connection find the same entry with a single lookup of a fixed-size key.
//!
//! Memory layout (the budget is 200 bytes per active flow, see `docs/BENCHMARKS.md`):
//! - IPv4 and IPv6 connections live in two tables, so an IPv4 entry carries 4-byte
//!   addresses: 56 bytes per IPv4 entry, 80 per IPv6 entry;
//! - the entries sit densely in a `Vec` and the hash index holds only their `u32`
//!   positions (5 bytes per bucket with hashbrown's control byte). A growing `Vec`
//!   doubles its capacity but only the pages written are resident, and the
//!   allocator grows a large one in place (`mremap`), so growth has no spike of two
//!   copies; the index, small, is the only part rehashed;
//! - the layer-7 state (42 bytes) lives in a side slab only while a connection is
//!   being classified (it has seen payload and is not decided yet); a decided
//!   connection keeps just its label, an untouched one nothing (its label is the port
//!   guess of the empty state);
//! - [`FlowTable::rotate`] compacts the entries in place, rebuilds the index for the
//!   survivors and hands over one [`FlowRow`] (72 bytes) per active connection, which
//!   [`IntervalFlows::into_block`] sorts and merges in place into the block's rows.

use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use godb::{Block, CaptureStats, Counters, FlowKey, FlowRow};
use godpi::L7State;
use hashbrown::HashTable;
use rustc_hash::FxHasher;

use crate::decode::{DecodeStats, Decoder, Packet};
use crate::orient;
use crate::wire::LinkType;

/// The address of one family: IPv4 (4 bytes) or IPv6 (16 bytes).
trait Addr: Copy + Eq + Ord + std::fmt::Debug {
    /// From the decoder's 16-byte form (IPv4 in the first four bytes).
    fn from_packet(bytes: &[u8; 16]) -> Self;
    fn to_ip(self) -> IpAddr;
    fn hash_into(self, h: &mut FxHasher);
}

impl Addr for [u8; 4] {
    fn from_packet(b: &[u8; 16]) -> Self {
        [b[0], b[1], b[2], b[3]]
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(self))
    }

    fn hash_into(self, h: &mut FxHasher) {
        h.write_u32(u32::from_ne_bytes(self));
    }
}

impl Addr for [u8; 16] {
    fn from_packet(b: &[u8; 16]) -> Self {
        *b
    }

    fn to_ip(self) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(self))
    }

    fn hash_into(self, h: &mut FxHasher) {
        let v = u128::from_ne_bytes(self);
        h.write_u64(v as u64);
        h.write_u64((v >> 64) as u64);
    }
}

/// A connection's identity, endpoints in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnKey<A> {
    lo: A,
    hi: A,
    lo_port: u16,
    hi_port: u16,
    proto: u8,
}

impl<A: Addr> ConnKey<A> {
    /// A few machine words, no length prefixes (the derived impl would hash arrays as
    /// slices: length + bytes).
    fn hash(&self) -> u64 {
        let mut h = FxHasher::default();
        self.lo.hash_into(&mut h);
        self.hi.hash_into(&mut h);
        h.write_u64(
            u64::from(self.lo_port) | u64::from(self.hi_port) << 16 | u64::from(self.proto) << 32,
        );
        h.finish()
    }
}

/// What the table keeps per connection.
#[derive(Debug, Clone, Copy)]
struct Entry<A> {
    /// `sent` = client to server.
    counters: Counters,
    key: ConnKey<A>,
    /// See [`L7Slot`].
    l7: u32,
    client_is_lo: bool,
}

impl<A: Addr> Entry<A> {
    /// (client, client port, server, server port).
    fn ends(&self) -> (A, u16, A, u16) {
        let k = &self.key;
        if self.client_is_lo {
            (k.lo, k.lo_port, k.hi, k.hi_port)
        } else {
            (k.hi, k.hi_port, k.lo, k.lo_port)
        }
    }

    fn view(&self, slab: &L7Slab) -> Connection {
        let (client, client_port, server, server_port) = self.ends();
        let proto = self.key.proto;
        Connection {
            client: client.to_ip(),
            client_port,
            server: server.to_ip(),
            server_port,
            proto,
            counters: self.counters,
            l7: slab.label(self.l7, proto, client_port, server_port),
        }
    }
}

/// The layer-7 side of an entry, in one `u32`: [`L7Slot::FRESH`] (no payload seen:
/// the default state), [`L7Slot::LABEL`] plus the label of a decided connection, or
/// else the position + 1 of its state in the [`L7Slab`].
struct L7Slot;

impl L7Slot {
    const FRESH: u32 = 0;
    const LABEL: u32 = 1 << 31;
}

/// The layer-7 states of the connections being classified, with a free list.
#[derive(Default)]
struct L7Slab {
    states: Vec<L7State>,
    /// Free positions; its capacity is kept at least `states.len()`, so freeing never
    /// allocates.
    free: Vec<u32>,
}

impl L7Slab {
    fn label(&self, slot: u32, proto: u8, client_port: u16, server_port: u16) -> u16 {
        if slot & L7Slot::LABEL != 0 {
            return slot as u16;
        }
        let state = match slot.checked_sub(1) {
            Some(i) => self.states.get(i as usize).copied().unwrap_or_default(),
            None => L7State::default(),
        };
        state.label(proto, client_port, server_port)
    }

    /// Feeds one payload packet to the connection's state; returns the new slot.
    fn observe(
        &mut self,
        slot: u32,
        from_client: bool,
        proto: u8,
        ports: (u16, u16),
        payload: &[u8],
    ) -> u32 {
        if slot & L7Slot::LABEL != 0 {
            return slot;
        }
        let i = match slot.checked_sub(1) {
            Some(i) => i as usize,
            None => match self.free.pop() {
                Some(i) => {
                    if let Some(s) = self.states.get_mut(i as usize) {
                        *s = L7State::default();
                    }
                    i as usize
                }
                None => {
                    self.states.push(L7State::default());
                    let len = self.states.len();
                    if self.free.capacity() < len {
                        self.free.reserve(len - self.free.len());
                    }
                    len - 1
                }
            },
        };
        let Some(state) = self.states.get_mut(i) else {
            return slot;
        };
        state.observe(from_client, proto, ports.0, ports.1, payload);
        if state.is_decided() {
            let label = state.label(proto, ports.0, ports.1);
            self.free.push(i as u32);
            L7Slot::LABEL | u32::from(label)
        } else {
            i as u32 + 1
        }
    }
}

/// The connections of one address family: entries stored densely, a hash index of
/// their positions.
struct Conns<A> {
    entries: Vec<Entry<A>>,
    index: HashTable<u32>,
}

impl<A: Addr> Conns<A> {
    fn new() -> Self {
        Conns {
            entries: Vec::new(),
            index: HashTable::new(),
        }
    }

    /// The entry of `key`, created with `new` if missing.
    #[inline]
    fn entry(&mut self, key: ConnKey<A>, new: impl FnOnce() -> Entry<A>) -> &mut Entry<A> {
        let hash = key.hash();
        let entries = &mut self.entries;
        let found = self
            .index
            .find(hash, |&i| {
                entries.get(i as usize).is_some_and(|e| e.key == key)
            })
            .copied();
        let i = match found {
            Some(i) => i as usize,
            None => {
                let i = entries.len();
                entries.push(new());
                let all = &*entries;
                self.index.insert_unique(hash, i as u32, |&j| {
                    all.get(j as usize).map_or(0, |e| e.key.hash())
                });
                i
            }
        };
        &mut entries[i]
    }

    /// Hands over the active entries as rows, zeroes their counters, drops the idle
    /// ones (with their layer-7 states) and moves the surviving states into `slab`.
    fn rotate(&mut self, old: &mut L7Slab, slab: &mut L7Slab, rows: &mut Vec<FlowRow>) {
        let mut kept = 0;
        for i in 0..self.entries.len() {
            let mut e = self.entries[i];
            if e.counters.packets() == 0 {
                continue;
            }
            let c = e.view(old);
            rows.push(FlowRow {
                key: FlowKey {
                    sip: c.client,
                    dip: c.server,
                    proto: c.proto,
                    dport: c.server_port,
                    l7: c.l7,
                },
                counters: c.counters,
            });
            e.counters = Counters::default();
            if e.l7 != L7Slot::FRESH && e.l7 & L7Slot::LABEL == 0 {
                let state = old
                    .states
                    .get(e.l7 as usize - 1)
                    .copied()
                    .unwrap_or_default();
                slab.states.push(state);
                e.l7 = slab.states.len() as u32;
            }
            self.entries[kept] = e;
            kept += 1;
        }
        self.entries.truncate(kept);
        // Give back what the idle entries held; the next interval grows in place.
        self.entries.shrink_to(kept + kept / 8);
        // The index is rebuilt for the survivors, with room for as many new connections
        // as a quarter of them before its first growth.
        self.index = HashTable::new();
        self.index = HashTable::with_capacity(kept + kept / 4);
        let all = &self.entries;
        for (i, e) in all.iter().enumerate() {
            self.index.insert_unique(e.key.hash(), i as u32, |&j| {
                all.get(j as usize).map_or(0, |e| e.key.hash())
            });
        }
    }

    fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry<A>>() + self.index.allocation_size()
    }
}

/// A read-only view of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    /// The client (godb's `sip`).
    pub client: IpAddr,
    /// The client's port (0 for protocols without ports or when unknown).
    pub client_port: u16,
    /// The server (godb's `dip`).
    pub server: IpAddr,
    /// The server's port (godb's `dport`).
    pub server_port: u16,
    /// IP protocol number.
    pub proto: u8,
    /// `*_sent` client to server, `*_rcvd` server to client, in the current interval.
    pub counters: Counters,
    /// The layer-7 id (godb::l7) the connection's state gives now.
    pub l7: u16,
}

/// The memory a [`FlowTable`] holds, from its allocations' sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableMemory {
    /// Connections held.
    pub connections: usize,
    /// Bytes allocated for the entries and the hash indexes (capacity, not only the
    /// part in use).
    pub table_bytes: usize,
    /// Layer-7 states held for connections being classified.
    pub l7_states: usize,
    /// Bytes allocated for those states and their free list.
    pub l7_bytes: usize,
    /// Bytes of the fixed parts (the fragment tracker).
    pub fixed_bytes: usize,
}

impl TableMemory {
    /// All bytes together.
    pub fn total(&self) -> usize {
        self.table_bytes + self.l7_bytes + self.fixed_bytes
    }
}

/// The flows of one interface, accumulated since the last [`FlowTable::rotate`].
pub struct FlowTable {
    v4: Conns<[u8; 4]>,
    v6: Conns<[u8; 16]>,
    l7: L7Slab,
    decoder: Decoder,
}

impl Default for FlowTable {
    fn default() -> Self {
        Self::new()
    }
}

impl FlowTable {
    /// An empty table.
    pub fn new() -> Self {
        FlowTable {
            v4: Conns::new(),
            v6: Conns::new(),
            l7: L7Slab::default(),
            decoder: Decoder::new(),
        }
    }

    /// Decodes one packet and accounts it: `data` are the captured bytes, `wire_len`
    /// the original length (counted as the packet's bytes, link header included),
    /// `ts_secs` the packet's time (used to expire fragment state).
    #[inline]
    pub fn add_packet(&mut self, link: LinkType, data: &[u8], wire_len: u32, ts_secs: i64) {
        if let Some(p) = self.decoder.decode(link, data, ts_secs) {
            self.add_decoded(&p, wire_len);
        }
    }

    /// Accounts a packet that the caller's own [`Decoder`] decoded (for a pipeline
    /// that decodes on one thread and aggregates on another); `wire_len` as in
    /// [`Self::add_packet`]. Such a table's decoder counters stay zero: hand the
    /// caller's to [`Self::rotate_with`].
    #[inline]
    pub fn add_decoded(&mut self, p: &Packet<'_>, wire_len: u32) {
        let bytes = u64::from(wire_len);
        if p.v6 {
            account(&mut self.v6, &mut self.l7, p, bytes);
        } else {
            account(&mut self.v4, &mut self.l7, p, bytes);
        }
    }

    /// The decoder's counters since the last rotation.
    pub fn stats(&self) -> &DecodeStats {
        self.decoder.stats()
    }

    /// Number of connections held (active in this interval or the previous one).
    pub fn len(&self) -> usize {
        self.v4.entries.len() + self.v6.entries.len()
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory the table holds now.
    pub fn memory(&self) -> TableMemory {
        TableMemory {
            connections: self.len(),
            table_bytes: self.v4.bytes() + self.v6.bytes(),
            l7_states: self.l7.states.len() - self.l7.free.len(),
            l7_bytes: self.l7.states.capacity() * std::mem::size_of::<L7State>()
                + self.l7.free.capacity() * std::mem::size_of::<u32>(),
            fixed_bytes: crate::frag::FragTracker::size_bytes(),
        }
    }

    /// The connections held, with this interval's counters (zero for those carried over
    /// from the previous interval and not seen since).
    pub fn connections(&self) -> impl Iterator<Item = Connection> + '_ {
        let slab = &self.l7;
        let v4 = self.v4.entries.iter().map(move |e| e.view(slab));
        let v6 = self.v6.entries.iter().map(move |e| e.view(slab));
        v4.chain(v6)
    }

    /// Ends the interval: hands over the connections that carried packets in it and the
    /// decoder counters. The table keeps those connections with zeroed counters (their
    /// orientation and layer-7 state stay) and forgets the ones that were idle for the
    /// whole interval. The fragment tracker is kept.
    pub fn rotate(&mut self) -> IntervalFlows {
        let stats = self.decoder.take_stats();
        self.rotate_with(stats)
    }

    /// [`Self::rotate`] for a table fed through [`Self::add_decoded`]: `stats` are the
    /// counters of the caller's decoder for the interval.
    pub fn rotate_with(&mut self, stats: DecodeStats) -> IntervalFlows {
        let active = self
            .v4
            .entries
            .iter()
            .filter(|e| e.counters.packets() != 0)
            .count()
            + self
                .v6
                .entries
                .iter()
                .filter(|e| e.counters.packets() != 0)
                .count();
        let mut rows = Vec::with_capacity(active);
        let mut old = std::mem::take(&mut self.l7);
        let mut slab = L7Slab::default();
        self.v4.rotate(&mut old, &mut slab, &mut rows);
        self.v6.rotate(&mut old, &mut slab, &mut rows);
        drop(old);
        slab.free.reserve(slab.states.len());
        self.l7 = slab;
        IntervalFlows { rows, stats }
    }
}

/// Accounts one decoded packet in the table of its family.
#[inline]
fn account<A: Addr>(conns: &mut Conns<A>, slab: &mut L7Slab, p: &Packet<'_>, bytes: u64) {
    let (src, dst) = (A::from_packet(&p.src), A::from_packet(&p.dst));
    let from_lo = (src, p.sport) <= (dst, p.dport);
    let key = if from_lo {
        ConnKey {
            lo: src,
            hi: dst,
            lo_port: p.sport,
            hi_port: p.dport,
            proto: p.proto,
        }
    } else {
        ConnKey {
            lo: dst,
            hi: src,
            lo_port: p.dport,
            hi_port: p.sport,
            proto: p.proto,
        }
    };
    let conn = conns.entry(key, || {
        let sender_is_client = orient::sender_is_client(p.hint, p.sport, p.dport);
        Entry {
            counters: Counters::default(),
            key,
            l7: L7Slot::FRESH,
            client_is_lo: sender_is_client == from_lo,
        }
    });
    let from_client = from_lo == conn.client_is_lo;
    let c = &mut conn.counters;
    if from_client {
        c.pkts_sent += 1;
        c.bytes_sent += bytes;
    } else {
        c.pkts_rcvd += 1;
        c.bytes_rcvd += bytes;
    }
    if !p.payload.is_empty() && conn.l7 & L7Slot::LABEL == 0 {
        let ports = if from_client {
            (p.sport, p.dport)
        } else {
            (p.dport, p.sport)
        };
        conn.l7 = slab.observe(conn.l7, from_client, p.proto, ports, p.payload);
    }
}

/// The connections and decoder counters of one finished interval.
pub struct IntervalFlows {
    /// One row per active connection (not yet merged to godb's key).
    rows: Vec<FlowRow>,
    stats: DecodeStats,
}

impl IntervalFlows {
    /// One row per connection that carried packets in the interval, in godb's terms
    /// (client, server, protocol, server port, layer-7 id, counters), not merged yet:
    /// two connections differing only in the client port give two rows.
    pub fn rows(&self) -> &[FlowRow] {
        &self.rows
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no connection carried a packet.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The decoder's counters for the interval.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Aggregates the connections to godb's key (sip = client, dip = server, proto,
    /// dport = server port, l7) and builds the block ending at `timestamp`, rows sorted
    /// by key. The rows are sorted and merged in place: no second copy of the interval.
    ///
    /// `stats` are the caller's capture statistics (libpcap's counts); two of its fields
    /// are filled from the decoder when the caller passes 0 there: `packets_received`
    /// becomes the number of packets decoded in the interval ([`DecodeStats::received`])
    /// and `packets_non_ip` the number of those not counted in any flow
    /// ([`DecodeStats::non_ip`]). A non-zero value is kept as given. `packets_dropped`
    /// and `packets_if_dropped` are always the caller's.
    pub fn into_block(self, timestamp: i64, mut stats: CaptureStats) -> Block {
        if stats.packets_received == 0 {
            stats.packets_received = self.stats.received;
        }
        if stats.packets_non_ip == 0 {
            stats.packets_non_ip = self.stats.non_ip;
        }
        let mut rows = self.rows;
        rows.sort_unstable_by_key(|r| r.key);
        let mut kept = 0usize;
        for i in 0..rows.len() {
            let row = rows[i];
            match kept.checked_sub(1).and_then(|k| rows.get_mut(k)) {
                Some(last) if last.key == row.key => last.counters.add(&row.counters),
                _ => {
                    rows[kept] = row;
                    kept += 1;
                }
            }
        }
        rows.truncate(kept);
        rows.shrink_to_fit();
        Block {
            timestamp,
            stats,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::transport::tcp_flags::{ACK, SYN};

    const RAW: LinkType = LinkType::RawIp;
    const A: [u8; 4] = [10, 0, 0, 1];
    const B: [u8; 4] = [10, 0, 0, 2];

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, ident: u16, body: &[u8]) -> Vec<u8> {
        let total = (20 + body.len()) as u16;
        let mut v = vec![0x45, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&ident.to_be_bytes());
        v.extend_from_slice(&frag.to_be_bytes());
        v.extend_from_slice(&[64, proto, 0, 0]);
        v.extend_from_slice(&src);
        v.extend_from_slice(&dst);
        v.extend_from_slice(body);
        v
    }

    fn tcp(sport: u16, dport: u16, flags: u8, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        v.extend_from_slice(data);
        v
    }

    fn udp(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&sport.to_be_bytes());
        v.extend_from_slice(&dport.to_be_bytes());
        v.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(data);
        v
    }

    fn add(t: &mut FlowTable, pkt: &[u8]) {
        t.add_packet(RAW, pkt, pkt.len() as u32, 1_000);
    }

    fn only(t: &FlowTable) -> Connection {
        let all: Vec<_> = t.connections().collect();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0]
    }

    fn v4(b: [u8; 4]) -> IpAddr {
        IpAddr::from(b)
    }

    #[test]
    fn syn_sender_is_client_even_from_a_low_port() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(A, B, 6, 0, 0, &tcp(80, 50000, SYN, b"")));
        add(
            &mut t,
            &ipv4(B, A, 6, 0, 0, &tcp(50000, 80, SYN | ACK, b"")),
        );
        let c = only(&t);
        assert_eq!(
            (c.client, c.client_port, c.server, c.server_port),
            (v4(A), 80, v4(B), 50000)
        );
        assert_eq!((c.counters.pkts_sent, c.counters.pkts_rcvd), (1, 1));
    }

    #[test]
    fn syn_ack_sender_is_server() {
        let mut t = FlowTable::new();
        add(
            &mut t,
            &ipv4(B, A, 6, 0, 0, &tcp(2000, 3000, SYN | ACK, b"")),
        );
        let c = only(&t);
        assert_eq!(
            (c.client, c.client_port, c.server_port),
            (v4(A), 3000, 2000)
        );
        assert_eq!(c.counters.pkts_rcvd, 1);
    }

    #[test]
    fn mid_stream_tcp_goes_by_port_rank() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(B, A, 6, 0, 0, &tcp(443, 51000, ACK, b"x")));
        let c = only(&t);
        assert_eq!(
            (c.client, c.client_port, c.server, c.server_port),
            (v4(A), 51000, v4(B), 443)
        );
        assert_eq!((c.counters.pkts_sent, c.counters.pkts_rcvd), (0, 1));
    }

    #[test]
    fn icmp_reply_sender_is_server() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(B, A, 1, 0, 0, &[0, 0, 0, 0, 0, 1, 0, 1]));
        add(&mut t, &ipv4(A, B, 1, 0, 0, &[8, 0, 0, 0, 0, 1, 0, 2]));
        let c = only(&t);
        assert_eq!(
            (c.client, c.server, c.server_port, c.proto),
            (v4(A), v4(B), 0, 1)
        );
        assert_eq!((c.counters.pkts_sent, c.counters.pkts_rcvd), (1, 1));
    }

    #[test]
    fn equal_ports_go_by_first_packet() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(B, A, 17, 0, 0, &udp(53, 53, b"q")));
        let c = only(&t);
        assert_eq!((c.client, c.server), (v4(B), v4(A)));
    }

    #[test]
    fn rotation_keeps_active_zeroed_and_forgets_idle() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(A, B, 17, 0, 0, &udp(53, 53, b"q")));
        add(&mut t, &ipv4(A, B, 17, 0, 0, &udp(40000, 123, b"q")));
        let first = t.rotate();
        assert_eq!(first.len(), 2);
        assert_eq!(first.stats().received, 2);
        assert_eq!(t.len(), 2);
        assert!(t.connections().all(|c| c.counters == Counters::default()));
        assert_eq!(t.stats().received, 0);
        // The 53<->53 flow goes on, in the other direction: orientation is kept.
        add(&mut t, &ipv4(B, A, 17, 0, 0, &udp(53, 53, b"r")));
        let second = t.rotate();
        let c = second.rows();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].key.sip,
                c[0].counters.pkts_rcvd,
                c[0].counters.pkts_sent
            ),
            (v4(A), 1, 0)
        );
        // The NTP flow was idle for a whole interval: forgotten.
        assert_eq!(t.len(), 1);
        let third = t.rotate();
        assert!(third.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn later_fragments_join_the_first_fragments_connection() {
        let mut t = FlowTable::new();
        add(
            &mut t,
            &ipv4(A, B, 17, 0x2000, 77, &udp(40000, 53, &[0; 24])),
        );
        add(&mut t, &ipv4(A, B, 17, 4, 77, &[0; 16]));
        let c = only(&t);
        assert_eq!(
            (c.client_port, c.server_port, c.counters.pkts_sent),
            (40000, 53, 2)
        );
        assert_eq!(t.stats().fragments, 2);
        assert_eq!(t.stats().fragments_unmatched, 0);
    }

    #[test]
    fn orphan_fragments_count_with_port_zero() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(A, B, 17, 4, 78, &[0; 16]));
        let c = only(&t);
        assert_eq!((c.server_port, c.proto, c.counters.pkts_sent), (0, 17, 1));
        assert_eq!(t.stats().fragments_unmatched, 1);
    }

    #[test]
    fn ipv6_fragments() {
        let mut t = FlowTable::new();
        let ip6 = |next: u8, body: &[u8]| {
            let mut v = vec![0x60, 0, 0, 0];
            v.extend_from_slice(&(body.len() as u16).to_be_bytes());
            v.extend_from_slice(&[next, 64]);
            v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
            v.extend_from_slice(body);
            v
        };
        let mut first = vec![17, 0, 0x00, 0x01, 0, 0, 0, 9];
        first.extend_from_slice(&udp(5000, 53, &[0; 8]));
        add(&mut t, &ip6(44, &first));
        add(
            &mut t,
            &ip6(44, &[17, 0, 0x00, 0x10, 0, 0, 0, 9, 1, 2, 3, 4]),
        );
        let c = only(&t);
        assert_eq!(
            (c.client_port, c.server_port, c.counters.pkts_sent),
            (5000, 53, 2)
        );
    }

    #[test]
    fn malformed_ip_still_counts_with_port_zero() {
        let mut t = FlowTable::new();
        let mut bad = ipv4(A, B, 6, 0, 0, &tcp(1234, 80, SYN, b""));
        bad[0] = 0x43; // IHL 3
        add(&mut t, &bad);
        let truncated = ipv4(A, B, 6, 0, 0, &[0x04, 0xd2, 0x00]);
        add(&mut t, &truncated);
        let c = only(&t);
        assert_eq!((c.server_port, c.proto, c.counters.packets()), (0, 6, 2));
        assert_eq!(t.stats().bad_header, 1);
        assert_eq!(t.stats().truncated_transport, 1);
        assert_eq!(t.stats().ipv4, 2);
        // Not IP at all: counted, not in a flow.
        add(&mut t, &[0x45, 0, 0]);
        assert_eq!((t.stats().non_ip, t.stats().truncated, t.len()), (1, 1, 1));
    }

    #[test]
    fn into_block_aggregates_client_ports_and_fills_stats() {
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(A, B, 6, 0, 0, &tcp(50001, 443, SYN, b"")));
        add(&mut t, &ipv4(A, B, 6, 0, 0, &tcp(50002, 443, SYN, b"")));
        add(
            &mut t,
            &ipv4(B, A, 6, 0, 0, &tcp(443, 50002, SYN | ACK, b"")),
        );
        t.add_packet(RAW, &[0x10], 60, 1_000);
        let flows = t.rotate();
        let block = flows.into_block(
            1_200,
            CaptureStats {
                packets_dropped: 3,
                ..CaptureStats::default()
            },
        );
        assert_eq!(block.timestamp, 1_200);
        assert_eq!(
            block.stats,
            CaptureStats {
                packets_received: 4,
                packets_dropped: 3,
                packets_if_dropped: 0,
                packets_non_ip: 1
            }
        );
        assert_eq!(block.rows.len(), 1);
        let row = block.rows[0];
        assert_eq!(
            (row.key.sip, row.key.dip, row.key.proto, row.key.dport),
            (v4(A), v4(B), 6, 443)
        );
        assert_eq!(
            (
                row.counters.pkts_sent,
                row.counters.pkts_rcvd,
                row.counters.bytes_sent
            ),
            (2, 1, 80)
        );
        // Caller-supplied counts are kept.
        let mut t = FlowTable::new();
        add(&mut t, &ipv4(A, B, 6, 0, 0, &tcp(50001, 443, SYN, b"")));
        let block = t.rotate().into_block(
            1_200,
            CaptureStats {
                packets_received: 9,
                packets_non_ip: 5,
                ..CaptureStats::default()
            },
        );
        assert_eq!(
            (block.stats.packets_received, block.stats.packets_non_ip),
            (9, 5)
        );
    }

    #[test]
    fn payload_reaches_the_l7_classifier() {
        let mut t = FlowTable::new();
        add(
            &mut t,
            &ipv4(
                A,
                B,
                6,
                0,
                0,
                &tcp(
                    50123,
                    8080,
                    ACK,
                    b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n",
                ),
            ),
        );
        assert_eq!(only(&t).l7, godb::l7::HTTP);
    }

    #[test]
    fn table_and_intervals_move_between_threads() {
        fn send<T: Send + 'static>() {}
        send::<FlowTable>();
        send::<IntervalFlows>();
    }

    #[test]
    fn rotation_shrinks_after_a_burst() {
        let mut t = FlowTable::new();
        for port in 1..=5000u16 {
            add(&mut t, &ipv4(A, B, 17, 0, 0, &udp(port, 53, b"")));
        }
        let burst = t.memory();
        assert_eq!(burst.connections, 5000);
        t.rotate();
        // Still held (active in the last interval), index rebuilt for them.
        assert_eq!(t.len(), 5000);
        assert!(t.v4.entries.capacity() <= 5000 + 5000 / 8);
        t.rotate();
        assert!(t.is_empty());
        let idle = t.memory();
        assert!(
            idle.table_bytes < burst.table_bytes / 10,
            "{idle:?} vs {burst:?}"
        );
    }

    #[test]
    fn connection_entries_stay_small() {
        // The bulk of the per-flow memory budget (200 B): the dense entry plus its
        // position in the index.
        assert_eq!(std::mem::size_of::<Entry<[u8; 4]>>(), 56);
        assert_eq!(std::mem::size_of::<Entry<[u8; 16]>>(), 80);
        assert_eq!(std::mem::size_of::<FlowRow>(), 72);
    }

    /// Bytes per connection as the table grows: entries and index allocations (their
    /// capacity, an upper bound of what is resident) stay under 150 bytes per IPv4
    /// connection at every size, after the doubling steps of both.
    #[test]
    fn bytes_per_connection_stay_under_budget_while_growing() {
        let mut t = FlowTable::new();
        let mut worst = 0f64;
        for i in 0..200_000u32 {
            let [_, b, c, d] = i.to_be_bytes();
            add(
                &mut t,
                &ipv4([10, b, c, d], B, 17, 0, 0, &udp(40000, 53, b"")),
            );
            if i >= 1000 && i % 97 == 0 {
                let m = t.memory();
                worst = worst.max(m.table_bytes as f64 / m.connections as f64);
            }
        }
        assert!(worst <= 150.0, "{worst:.1} bytes per connection");
        // After a rotation the survivors cost an entry (capacity at most 1/8 above the
        // count) and an index slot (5 bytes, at most 2 x 8/7 x 1.25 slots each).
        t.rotate();
        let m = t.memory();
        let per = m.table_bytes as f64 / m.connections as f64;
        assert!(
            per <= 56.0 * 1.125 + 5.0 * 2.0 * 1.25 * 8.0 / 7.0,
            "{per:.1} bytes per connection"
        );
    }

    #[test]
    fn layer7_states_are_held_only_while_classifying() {
        let mut t = FlowTable::new();
        // Decided at once: no state kept.
        add(
            &mut t,
            &ipv4(
                A,
                B,
                6,
                0,
                0,
                &tcp(50123, 8080, ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            ),
        );
        assert_eq!(t.memory().l7_states, 0);
        assert_eq!(only(&t).l7, godb::l7::HTTP);
        // Undecided payload: one state, carried over a rotation while active.
        add(
            &mut t,
            &ipv4(A, B, 17, 0, 0, &udp(40001, 40002, &[0x5a; 7])),
        );
        assert_eq!(t.memory().l7_states, 1);
        let before: Vec<_> = t.connections().map(|c| c.l7).collect();
        t.rotate();
        assert_eq!(t.memory().l7_states, 1);
        let after: Vec<_> = t.connections().map(|c| c.l7).collect();
        assert_eq!(before, after);
        // Idle for an interval: forgotten with its state.
        t.rotate();
        assert_eq!(t.memory().l7_states, 0);
        assert!(t.is_empty());
    }

    /// A table fed by a decoder of the caller's (as goprobe's replay does across two
    /// threads) gives the same intervals as one that decodes itself.
    #[test]
    fn decoding_elsewhere_gives_the_same_intervals() {
        let packets = [
            ipv4(A, B, 6, 0, 0, &tcp(50001, 443, SYN, b"")),
            ipv4(B, A, 6, 0, 0, &tcp(443, 50001, SYN | ACK, b"")),
            ipv4(A, B, 17, 0x2000, 9, &udp(40000, 53, &[0; 24])),
            ipv4(A, B, 17, 4, 9, &[0; 16]),
            vec![0x45, 0, 0],
            ipv4(
                A,
                B,
                6,
                0,
                0,
                &tcp(50002, 80, ACK, b"GET / HTTP/1.1\r\n\r\n"),
            ),
        ];
        let mut own = FlowTable::new();
        let mut fed = FlowTable::new();
        let mut decoder = Decoder::new();
        for p in &packets {
            own.add_packet(RAW, p, p.len() as u32, 1_000);
            if let Some(d) = decoder.decode(RAW, p, 1_000) {
                fed.add_decoded(&d, p.len() as u32);
            }
        }
        assert_eq!(fed.stats().received, 0);
        let a = own.rotate().into_block(1_200, CaptureStats::default());
        let b = fed
            .rotate_with(decoder.take_stats())
            .into_block(1_200, CaptureStats::default());
        assert_eq!(a.rows, b.rows);
        assert_eq!(a.stats, b.stats);
        assert_eq!(a.stats.packets_non_ip, 1);
    }
}
