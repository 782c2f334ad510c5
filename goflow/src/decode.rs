//! From captured bytes to the facts the flow table needs: addresses, protocol, ports,
//! an orientation hint and the transport payload, with a counter per outcome.
//!
//! A packet is IP (and counted in its flow) as soon as its outer IP addresses are
//! captured: 20 bytes with version 4, or 40 bytes with version 6, at the offset the
//! link layer gives ([`crate::wire::link`]). Nothing else of the IP header is required
//! to be valid: a bad IHL, a cut or garbage transport header only cost the ports (the
//! packet is counted with port 0) and bump a counter. This is the accounting of the
//! oracle (`shared/oracle/flowtruth.py`). Only the outer header of a tunnel is decoded.

use crate::frag::{FragKey, FragTracker};
use crate::wire::ipv4::Ipv4;
use crate::wire::ipv6::Ipv6;
use crate::wire::link::{network_start, LinkOutcome};
use crate::wire::transport::{self, tcp_flags};
use crate::wire::{Error, IpProtocol, LinkType, NetworkHint};

/// Decoder counters. `received = ipv4 + ipv6 + non_ip`; the four non-IP reasons add
/// up to `non_ip`; the other counters describe IP packets, which are still counted in
/// their flow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Every packet handed to the decoder.
    pub received: u64,
    /// IPv4 packets (counted in a flow).
    pub ipv4: u64,
    /// IPv6 packets (counted in a flow).
    pub ipv6: u64,
    /// Packets not counted in any flow.
    pub non_ip: u64,
    /// Non-IP: the link type is not decoded.
    pub unsupported_link: u64,
    /// Non-IP: the link layer names another protocol (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Non-IP: cut before the end of the IP addresses (or inside the link header).
    pub truncated: u64,
    /// Non-IP: the version nibble is not 4/6, or not the one the link layer announced.
    pub bad_version: u64,
    /// IP, port 0: IPv4 IHL below 5 or total length below the header length, or IPv6
    /// extension headers running past the payload length.
    pub bad_header: u64,
    /// IP, port 0: the transport header (or IPv4 options, IPv6 extension headers) is
    /// cut by the capture.
    pub truncated_transport: u64,
    /// IP, port 0: a malformed transport header (TCP data offset below 5).
    pub bad_transport: u64,
    /// IP fragments (first, middle and last).
    pub fragments: u64,
    /// Later fragments whose first fragment was not seen (counted with port 0).
    pub fragments_unmatched: u64,
}

impl DecodeStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &DecodeStats) {
        let DecodeStats {
            received,
            ipv4,
            ipv6,
            non_ip,
            unsupported_link,
            not_ip,
            truncated,
            bad_version,
            bad_header,
            truncated_transport,
            bad_transport,
            fragments,
            fragments_unmatched,
        } = other;
        self.received += received;
        self.ipv4 += ipv4;
        self.ipv6 += ipv6;
        self.non_ip += non_ip;
        self.unsupported_link += unsupported_link;
        self.not_ip += not_ip;
        self.truncated += truncated;
        self.bad_version += bad_version;
        self.bad_header += bad_header;
        self.truncated_transport += truncated_transport;
        self.bad_transport += bad_transport;
        self.fragments += fragments;
        self.fragments_unmatched += fragments_unmatched;
    }
}

/// What a single packet says about who is the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    /// Nothing (orientation falls back to ports, then to the first packet).
    None,
    /// The sender started the conversation (TCP SYN, ICMP request).
    SenderIsClient,
    /// The sender answers (TCP SYN+ACK, ICMP reply).
    SenderIsServer,
}

/// One decoded IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// IPv6 rather than IPv4.
    pub v6: bool,
    /// Source address (IPv4 in the first four bytes, the rest zero).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Upper-layer protocol (after the IPv6 extension walk).
    pub proto: u8,
    /// Source port, 0 when unknown or the protocol has none.
    pub sport: u16,
    /// Destination port, 0 when unknown or the protocol has none.
    pub dport: u16,
    /// Orientation hint.
    pub hint: Hint,
    /// Transport payload (empty when none or unknown).
    pub payload: &'a [u8],
}

/// The decoder of one capture: its counters and its fragment tracker.
#[derive(Default)]
pub struct Decoder {
    stats: DecodeStats,
    frags: FragTracker,
}

/// ICMPv4 request types (echo, router solicitation, timestamp, information, mask).
const ICMP4_REQUESTS: [u8; 5] = [8, 10, 13, 15, 17];
/// ICMPv4 replies: the answers to those, in the same order, then the error messages
/// (destination unreachable, source quench, redirect, time exceeded, parameter
/// problem), which answer a packet the other side sent.
const ICMP4_REPLIES: [u8; 10] = [0, 9, 14, 16, 18, 3, 4, 5, 11, 12];
/// ICMPv6 requests: echo, MLD reports (v1, done, v2), router and neighbour
/// solicitation, node information query.
const ICMP6_REQUESTS: [u8; 7] = [128, 131, 132, 143, 133, 135, 139];
/// ICMPv6 replies: echo reply, MLD query, router and neighbour advertisement, node
/// information response, and the error messages (destination unreachable, packet too
/// big, time exceeded, parameter problem).
const ICMP6_REPLIES: [u8; 9] = [129, 130, 134, 136, 140, 1, 2, 3, 4];

impl Decoder {
    /// A decoder with zero counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters since the last [`Self::take_stats`].
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Returns the counters and zeroes them (the fragment tracker is kept).
    pub fn take_stats(&mut self) -> DecodeStats {
        std::mem::take(&mut self.stats)
    }

    /// Decodes one packet captured on `link` at `ts_secs` (packet time, for fragment
    /// expiry). `None` means non-IP (the reason is counted).
    pub fn decode<'a>(
        &mut self,
        link: LinkType,
        data: &'a [u8],
        ts_secs: i64,
    ) -> Option<Packet<'a>> {
        self.stats.received += 1;
        let (hint, off) = match network_start(link, data) {
            LinkOutcome::Network(hint, off) => (hint, off),
            LinkOutcome::NotIp(_) => return self.non_ip(|s| &mut s.not_ip),
            LinkOutcome::Truncated => return self.non_ip(|s| &mut s.truncated),
            LinkOutcome::Unsupported => return self.non_ip(|s| &mut s.unsupported_link),
        };
        let Some(ip) = data.get(off..).filter(|ip| !ip.is_empty()) else {
            return self.non_ip(|s| &mut s.truncated);
        };
        match (ip[0] >> 4, hint) {
            (4, NetworkHint::Any | NetworkHint::Ipv4) => self.ipv4(ip, ts_secs),
            (6, NetworkHint::Any | NetworkHint::Ipv6) => self.ipv6(ip, ts_secs),
            _ => self.non_ip(|s| &mut s.bad_version),
        }
    }

    fn non_ip<'a>(
        &mut self,
        reason: impl FnOnce(&mut DecodeStats) -> &mut u64,
    ) -> Option<Packet<'a>> {
        self.stats.non_ip += 1;
        *reason(&mut self.stats) += 1;
        None
    }

    fn count_error(&mut self, e: Error) {
        match e {
            Error::Truncated => self.stats.truncated_transport += 1,
            _ => self.stats.bad_header += 1,
        }
    }

    fn ipv4<'a>(&mut self, data: &'a [u8], ts: i64) -> Option<Packet<'a>> {
        let ip = match Ipv4::new_checked(data) {
            Ok(ip) => ip,
            Err(Error::Truncated) => return self.non_ip(|s| &mut s.truncated),
            Err(_) => return self.non_ip(|s| &mut s.bad_version),
        };
        self.stats.ipv4 += 1;
        let mut p = Packet {
            v6: false,
            src: [0; 16],
            dst: [0; 16],
            proto: ip.protocol().into(),
            sport: 0,
            dport: 0,
            hint: Hint::None,
            payload: &[],
        };
        p.src[..4].copy_from_slice(&ip.src().octets());
        p.dst[..4].copy_from_slice(&ip.dst().octets());
        let payload = match ip.payload() {
            Ok(payload) => payload,
            Err(e) => {
                self.stats.fragments += u64::from(ip.is_fragment());
                self.count_error(e);
                return Some(p);
            }
        };
        if ip.is_fragment() {
            let key = FragKey {
                src: p.src,
                dst: p.dst,
                ident: u32::from(ip.ident()),
                proto: p.proto,
                v6: false,
            };
            return Some(self.fragment(p, key, ip.fragment_offset(), payload, ts));
        }
        Some(self.transport(p, payload))
    }

    fn ipv6<'a>(&mut self, data: &'a [u8], ts: i64) -> Option<Packet<'a>> {
        let ip = match Ipv6::new_checked(data) {
            Ok(ip) => ip,
            Err(Error::Truncated) => return self.non_ip(|s| &mut s.truncated),
            Err(_) => return self.non_ip(|s| &mut s.bad_version),
        };
        self.stats.ipv6 += 1;
        let walk = ip.walk();
        let p = Packet {
            v6: true,
            src: ip.src().octets(),
            dst: ip.dst().octets(),
            proto: walk.protocol.into(),
            sport: 0,
            dport: 0,
            hint: Hint::None,
            payload: &[],
        };
        // An atomic fragment (offset 0, no more fragments) is a whole datagram.
        let fragment = walk.fragment.filter(|f| f.offset != 0 || f.more);
        let key = |ident| FragKey {
            src: p.src,
            dst: p.dst,
            ident,
            proto: p.proto,
            v6: true,
        };
        if let Some(f) = fragment.filter(|f| f.offset != 0) {
            return Some(self.fragment(p, key(f.ident), f.offset, &[], ts));
        }
        let payload = match ip.upper_payload(&walk) {
            Ok(payload) => payload,
            Err(e) => {
                self.stats.fragments += u64::from(fragment.is_some());
                self.count_error(e);
                return Some(p);
            }
        };
        Some(match fragment {
            Some(f) => self.fragment(p, key(f.ident), 0, payload, ts),
            None => self.transport(p, payload),
        })
    }

    /// A fragment: the first one gives (and records) the ports, later ones look them up.
    fn fragment<'a>(
        &mut self,
        p: Packet<'a>,
        key: FragKey,
        offset: u32,
        payload: &'a [u8],
        ts: i64,
    ) -> Packet<'a> {
        self.stats.fragments += 1;
        if offset == 0 {
            let p = self.transport(p, payload);
            if p.sport != 0 || p.dport != 0 {
                self.frags.insert(key, p.sport, p.dport, ts);
            }
            return p;
        }
        match self.frags.lookup(&key, ts) {
            Some((sport, dport)) => Packet { sport, dport, ..p },
            None => {
                self.stats.fragments_unmatched += 1;
                p
            }
        }
    }

    /// Ports, orientation hint and payload from the transport header.
    fn transport<'a>(&mut self, mut p: Packet<'a>, data: &'a [u8]) -> Packet<'a> {
        let proto = IpProtocol::from(p.proto);
        if proto.has_ports() {
            match transport::ports(proto, data) {
                Ok(ports) => {
                    p.sport = ports.src;
                    p.dport = ports.dst;
                    p.payload = ports.payload;
                    if let Some(flags) = ports.tcp_flags {
                        if flags & tcp_flags::SYN != 0 {
                            p.hint = if flags & tcp_flags::ACK != 0 {
                                Hint::SenderIsServer
                            } else {
                                Hint::SenderIsClient
                            };
                        }
                    }
                }
                Err(Error::Truncated) => self.stats.truncated_transport += 1,
                Err(_) => self.stats.bad_transport += 1,
            }
        } else if matches!(proto, IpProtocol::Icmp | IpProtocol::Icmpv6) {
            let v6 = proto == IpProtocol::Icmpv6;
            match transport::icmp_type(v6, data) {
                Ok((kind, _code)) => {
                    let (requests, replies): (&[u8], &[u8]) = if v6 {
                        (&ICMP6_REQUESTS, &ICMP6_REPLIES)
                    } else {
                        (&ICMP4_REQUESTS, &ICMP4_REPLIES)
                    };
                    if requests.contains(&kind) {
                        p.hint = Hint::SenderIsClient;
                    } else if replies.contains(&kind) {
                        p.hint = Hint::SenderIsServer;
                    }
                }
                Err(_) => self.stats.truncated_transport += 1,
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4 UDP 192.0.2.1:1024 -> 192.0.2.2:53 with 4 payload bytes.
    const IPV4_UDP: [u8; 32] = [
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2, 0x04, 0x00, 0x00,
        0x35, 0, 12, 0, 0, b'a', b'b', b'c', b'd',
    ];

    fn ipv6_tcp_with_hop_by_hop() -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0, 0, 28, 0, 64];
        v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]); // hop-by-hop -> TCP
        v.extend_from_slice(&[
            0xc3, 0x50, 0x01, 0xbb, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
        ]);
        v
    }

    fn ether(types: &[u16], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        for (i, t) in types.iter().enumerate() {
            v.extend_from_slice(&t.to_be_bytes());
            if i + 1 < types.len() {
                v.extend_from_slice(&[0, 7]); // VLAN TCI
            }
        }
        v.extend_from_slice(payload);
        v
    }

    /// (proto, sport, dport, hint, payload length) of a decoded packet.
    type Summary = (u8, u16, u16, Hint, usize);

    fn decode(link: LinkType, data: &[u8]) -> (Option<Summary>, DecodeStats) {
        let mut d = Decoder::new();
        let p = d
            .decode(link, data, 0)
            .map(|p| (p.proto, p.sport, p.dport, p.hint, p.payload.len()));
        (p, *d.stats())
    }

    #[test]
    fn ethernet_vlan_ipv4_udp() {
        let f = ether(&[0x8100, 0x88a8, 0x0800], &IPV4_UDP);
        let (p, s) = decode(LinkType::Ethernet, &f);
        assert_eq!(p, Some((17, 1024, 53, Hint::None, 4)));
        assert_eq!((s.received, s.ipv4, s.non_ip), (1, 1, 0));
    }

    #[test]
    fn cooked_v2_ipv6_extension_walk_and_syn() {
        let mut f = vec![0x86, 0xdd];
        f.extend_from_slice(&[0; 18]);
        f.extend_from_slice(&ipv6_tcp_with_hop_by_hop());
        let (p, s) = decode(LinkType::LinuxSll2, &f);
        assert_eq!(p, Some((6, 50000, 443, Hint::SenderIsClient, 0)));
        assert_eq!(s.ipv6, 1);
    }

    #[test]
    fn pppoe_and_loopback() {
        let mut pppoe = vec![0x11, 0, 0, 1, 0, 34, 0x00, 0x21];
        pppoe.extend_from_slice(&IPV4_UDP);
        let (p, _) = decode(LinkType::Ethernet, &ether(&[0x8864], &pppoe));
        assert_eq!(p.map(|p| p.2), Some(53));
        let mut null = vec![2, 0, 0, 0];
        null.extend_from_slice(&IPV4_UDP);
        assert_eq!(decode(LinkType::Loopback, &null).0.map(|p| p.2), Some(53));
    }

    #[test]
    fn version_must_match_the_link_layer() {
        // EtherType IPv4 carrying a version-6 header: non-IP, bad version.
        let (p, s) = decode(
            LinkType::Ethernet,
            &ether(&[0x0800], &ipv6_tcp_with_hop_by_hop()),
        );
        assert_eq!(p, None);
        assert_eq!((s.non_ip, s.bad_version), (1, 1));
        // Raw IP accepts either.
        assert!(decode(LinkType::RawIp, &ipv6_tcp_with_hop_by_hop())
            .0
            .is_some());
        let (p, s) = decode(LinkType::RawIp, &[0x50; 40]);
        assert_eq!((p, s.bad_version), (None, 1));
    }

    #[test]
    fn truncated_before_the_addresses_is_not_ip() {
        let (p, s) = decode(LinkType::RawIp, &IPV4_UDP[..19]);
        assert_eq!((p, s.non_ip, s.truncated), (None, 1, 1));
        let (p, s) = decode(LinkType::Ethernet, &ether(&[0x0800], &[]));
        assert_eq!((p, s.truncated), (None, 1));
        let (p, s) = decode(LinkType::RawIp, &ipv6_tcp_with_hop_by_hop()[..39]);
        assert_eq!((p, s.truncated), (None, 1));
    }

    #[test]
    fn cut_transport_counts_with_port_zero() {
        let (p, s) = decode(LinkType::RawIp, &IPV4_UDP[..24]);
        assert_eq!(p, Some((17, 0, 0, Hint::None, 0)));
        assert_eq!((s.ipv4, s.truncated_transport), (1, 1));
        // IPv6 cut inside the hop-by-hop header: protocol is the extension's number.
        let (p, s) = decode(LinkType::RawIp, &ipv6_tcp_with_hop_by_hop()[..46]);
        assert_eq!(p, Some((0, 0, 0, Hint::None, 0)));
        assert_eq!(s.truncated_transport, 1);
    }

    #[test]
    fn non_ip_reasons_add_up() {
        let mut d = Decoder::new();
        d.decode(LinkType::Ethernet, &ether(&[0x0806], &[0; 28]), 0);
        d.decode(LinkType::Unsupported(147), &IPV4_UDP, 0);
        d.decode(LinkType::Ethernet, &[0; 10], 0);
        d.decode(LinkType::RawIp, &[0x70; 30], 0);
        d.decode(LinkType::RawIp, &IPV4_UDP, 0);
        let s = d.take_stats();
        assert_eq!((s.received, s.ipv4, s.non_ip), (5, 1, 4));
        assert_eq!(
            (s.not_ip, s.unsupported_link, s.truncated, s.bad_version),
            (1, 1, 1, 1)
        );
        assert_eq!(d.stats().received, 0);
        let mut sum = DecodeStats::default();
        sum.add(&s);
        sum.add(&s);
        assert_eq!(sum.non_ip, 8);
    }

    #[test]
    fn icmp_hints() {
        let mut echo = IPV4_UDP;
        echo[9] = 1;
        echo[20] = 8;
        assert_eq!(
            decode(LinkType::RawIp, &echo).0.map(|p| p.3),
            Some(Hint::SenderIsClient)
        );
        echo[20] = 0;
        assert_eq!(
            decode(LinkType::RawIp, &echo).0.map(|p| p.3),
            Some(Hint::SenderIsServer)
        );
        echo[20] = 11; // time exceeded: an answer, from the server side
        assert_eq!(
            decode(LinkType::RawIp, &echo).0.map(|p| p.3),
            Some(Hint::SenderIsServer)
        );
        echo[20] = 6; // alternate host address (deprecated): no hint
        assert_eq!(
            decode(LinkType::RawIp, &echo).0.map(|p| p.3),
            Some(Hint::None)
        );
    }

    /// Arbitrary and mutated bytes on every link type: never a panic, and the counters
    /// always add up.
    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let links = [
            LinkType::Ethernet,
            LinkType::Loopback,
            LinkType::RawIp,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Unsupported(9),
        ];
        let seeds = [
            ether(&[0x8100, 0x0800], &IPV4_UDP),
            ipv6_tcp_with_hop_by_hop(),
            IPV4_UDP.to_vec(),
        ];
        let mut d = Decoder::new();
        let mut buf = Vec::with_capacity(256);
        for i in 0..60_000u64 {
            buf.clear();
            let base = &seeds[(i % 3) as usize];
            buf.extend_from_slice(base);
            for _ in 0..(rnd() % 6) {
                let at = (rnd() as usize) % buf.len();
                buf[at] = rnd() as u8;
            }
            buf.truncate((rnd() as usize) % (base.len() + 8));
            let link = links[(rnd() as usize) % links.len()];
            d.decode(link, &buf, (rnd() % 1000) as i64);
        }
        let s = d.stats();
        assert_eq!(s.received, 60_000);
        assert_eq!(s.ipv4 + s.ipv6 + s.non_ip, s.received);
        assert_eq!(
            s.unsupported_link + s.not_ip + s.truncated + s.bad_version,
            s.non_ip
        );
    }
}
