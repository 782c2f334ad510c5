//! The per-interface flow table: one entry per connection (addresses, ports, protocol)
//! with counters both ways, its orientation and its layer-7 state; rotated every
//! interval into an [`IntervalFlows`] that the writer thread turns into a godb block.
//!
//! The table belongs to one capture thread: no locks, no logging, and no allocation per
//! packet beyond the hash table's own growth. Entries are keyed by the connection's two
//! endpoints in canonical order (lower address/port first), so both directions of a
//! connection find the same entry with a single lookup of a fixed-size key.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use godb::{Block, CaptureStats, Counters, FlowKey, FlowRow};
use godpi::L7State;
use rustc_hash::FxHashMap;

use crate::decode::{DecodeStats, Decoder, Packet};
use crate::orient;
use crate::wire::LinkType;

/// A connection's identity, endpoints in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnKey {
    lo: [u8; 16],
    hi: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    v6: bool,
}

impl Hash for ConnKey {
    /// Five machine words, no length prefixes: the derived impl hashed the arrays as
    /// slices (length + bytes), which made hashing a fifth of the per-packet cost.
    fn hash<H: Hasher>(&self, h: &mut H) {
        let lo = u128::from_ne_bytes(self.lo);
        let hi = u128::from_ne_bytes(self.hi);
        h.write_u64(lo as u64);
        h.write_u64((lo >> 64) as u64);
        h.write_u64(hi as u64);
        h.write_u64((hi >> 64) as u64);
        h.write_u64(
            u64::from(self.lo_port)
                | u64::from(self.hi_port) << 16
                | u64::from(self.proto) << 32
                | u64::from(self.v6) << 40,
        );
    }
}

/// What the table keeps per connection.
#[derive(Debug, Clone, Copy)]
struct Conn {
    /// `sent` = client to server.
    counters: Counters,
    client_is_lo: bool,
    l7: L7State,
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

fn ip(bytes: [u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bytes))
    } else {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    }
}

fn view(key: &ConnKey, conn: &Conn) -> Connection {
    let lo = ip(key.lo, key.v6);
    let hi = ip(key.hi, key.v6);
    let (client, client_port, server, server_port) = if conn.client_is_lo {
        (lo, key.lo_port, hi, key.hi_port)
    } else {
        (hi, key.hi_port, lo, key.lo_port)
    };
    Connection {
        client,
        client_port,
        server,
        server_port,
        proto: key.proto,
        counters: conn.counters,
        l7: conn.l7.label(key.proto, client_port, server_port),
    }
}

/// The flows of one interface, accumulated since the last [`FlowTable::rotate`].
pub struct FlowTable {
    conns: FxHashMap<ConnKey, Conn>,
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
            conns: FxHashMap::default(),
            decoder: Decoder::new(),
        }
    }

    /// Decodes one packet and accounts it: `data` are the captured bytes, `wire_len`
    /// the original length (counted as the packet's bytes, link header included),
    /// `ts_secs` the packet's time (used to expire fragment state).
    pub fn add_packet(&mut self, link: LinkType, data: &[u8], wire_len: u32, ts_secs: i64) {
        if let Some(p) = self.decoder.decode(link, data, ts_secs) {
            self.account(&p, u64::from(wire_len));
        }
    }

    fn account(&mut self, p: &Packet<'_>, bytes: u64) {
        let from_lo = (p.src, p.sport) <= (p.dst, p.dport);
        let key = if from_lo {
            ConnKey {
                lo: p.src,
                hi: p.dst,
                lo_port: p.sport,
                hi_port: p.dport,
                proto: p.proto,
                v6: p.v6,
            }
        } else {
            ConnKey {
                lo: p.dst,
                hi: p.src,
                lo_port: p.dport,
                hi_port: p.sport,
                proto: p.proto,
                v6: p.v6,
            }
        };
        let conn = self.conns.entry(key).or_insert_with(|| {
            let sender_is_client = orient::sender_is_client(p.hint, p.sport, p.dport);
            Conn {
                counters: Counters::default(),
                client_is_lo: sender_is_client == from_lo,
                l7: L7State::default(),
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
        if !p.payload.is_empty() && !conn.l7.is_decided() {
            let (cport, sport) = if from_client {
                (p.sport, p.dport)
            } else {
                (p.dport, p.sport)
            };
            conn.l7
                .observe(from_client, p.proto, cport, sport, p.payload);
        }
    }

    /// The decoder's counters since the last rotation.
    pub fn stats(&self) -> &DecodeStats {
        self.decoder.stats()
    }

    /// Number of connections held (active in this interval or the previous one).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The connections held, with this interval's counters (zero for those carried over
    /// from the previous interval and not seen since).
    pub fn connections(&self) -> impl Iterator<Item = Connection> + '_ {
        self.conns.iter().map(|(k, c)| view(k, c))
    }

    /// Ends the interval: hands over the connections that carried packets in it and the
    /// decoder counters. The table keeps those connections with zeroed counters (their
    /// orientation and layer-7 state stay) and forgets the ones that were idle for the
    /// whole interval. The fragment tracker is kept.
    pub fn rotate(&mut self) -> IntervalFlows {
        let mut conns = Vec::with_capacity(self.conns.len());
        self.conns.retain(|key, conn| {
            if conn.counters.packets() == 0 {
                return false;
            }
            conns.push((*key, *conn));
            conn.counters = Counters::default();
            true
        });
        // Give memory back after a burst (rotation is off the per-packet path).
        if self.conns.capacity() > 4 * self.conns.len() + 1024 {
            self.conns.shrink_to(2 * self.conns.len());
        }
        IntervalFlows {
            conns,
            stats: self.decoder.take_stats(),
        }
    }
}

/// The connections and decoder counters of one finished interval.
pub struct IntervalFlows {
    conns: Vec<(ConnKey, Conn)>,
    stats: DecodeStats,
}

impl IntervalFlows {
    /// The connections that carried packets in the interval.
    pub fn connections(&self) -> impl Iterator<Item = Connection> + '_ {
        self.conns.iter().map(|(k, c)| view(k, c))
    }

    /// Number of connections.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection carried a packet.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// The decoder's counters for the interval.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Aggregates the connections to godb's key (sip = client, dip = server, proto,
    /// dport = server port, l7) and builds the block ending at `timestamp`.
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
        let mut rows: FxHashMap<FlowKey, Counters> = FxHashMap::default();
        rows.reserve(self.conns.len());
        for (key, conn) in &self.conns {
            let c = view(key, conn);
            let fk = FlowKey {
                sip: c.client,
                dip: c.server,
                proto: c.proto,
                dport: c.server_port,
                l7: c.l7,
            };
            rows.entry(fk).or_default().add(&c.counters);
        }
        Block {
            timestamp,
            stats,
            rows: rows
                .into_iter()
                .map(|(key, counters)| FlowRow { key, counters })
                .collect(),
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
        let c: Vec<_> = second.connections().collect();
        assert_eq!(c.len(), 1);
        assert_eq!(
            (
                c[0].client,
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
        let burst = t.conns.capacity();
        t.rotate();
        t.rotate();
        assert!(t.is_empty());
        assert!(
            t.conns.capacity() < burst,
            "{} >= {burst}",
            t.conns.capacity()
        );
    }

    #[test]
    fn connection_entry_stays_small() {
        // Key + value of the hash table, the bulk of the per-flow memory budget (200 B).
        let entry = std::mem::size_of::<(ConnKey, Conn)>();
        assert!(entry <= 128, "{entry} bytes per connection entry");
    }
}
