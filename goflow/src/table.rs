//! The per-interface flow table: one entry per connection (addresses, ports, protocol)
//! with counters both ways, its orientation and its layer-7 state; rotated every
//! interval into an [`IntervalFlows`] that the writer thread turns into a godb block.
//!
//! The table belongs to one capture thread: no locks, no logging, and no allocation per
//! packet beyond the hash table's own growth. Entries are keyed by the connection's two
//! endpoints in canonical order (lower address/port first), so both directions of a
//! connection find the same entry with a single lookup of a fixed-size key.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use godb::{Block, CaptureStats, Counters, FlowKey, FlowRow};
use rustc_hash::FxHashMap;

use crate::decode::{DecodeStats, Decoder, Packet};
use crate::l7::L7State;
use crate::orient;
use crate::wire::LinkType;

/// A connection's identity, endpoints in canonical order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnKey {
    lo: [u8; 16],
    hi: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    v6: bool,
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
