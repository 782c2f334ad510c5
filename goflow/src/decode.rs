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
/// ICMPv4 reply types, in the same order.
const ICMP4_REPLIES: [u8; 5] = [0, 9, 14, 16, 18];
/// ICMPv6 requests: echo, MLD reports (v1, done, v2), router and neighbour
/// solicitation, node information query.
const ICMP6_REQUESTS: [u8; 7] = [128, 131, 132, 143, 133, 135, 139];
/// ICMPv6 replies: echo reply, MLD query, router and neighbour advertisement, node
/// information response.
const ICMP6_REPLIES: [u8; 5] = [129, 130, 134, 136, 140];

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
        if let Some(frag) = walk.fragment {
            if frag.offset != 0 || frag.more {
                let key = FragKey {
                    src: p.src,
                    dst: p.dst,
                    ident: frag.ident,
                    proto: p.proto,
                    v6: true,
                };
                if frag.offset != 0 {
                    return Some(self.fragment(p, key, frag.offset, &[], ts));
                }
                return match ip.upper_payload(&walk) {
                    Ok(payload) => Some(self.fragment(p, key, 0, payload, ts)),
                    Err(e) => {
                        self.stats.fragments += 1;
                        self.count_error(e);
                        Some(p)
                    }
                };
            }
        }
        match ip.upper_payload(&walk) {
            Ok(payload) => Some(self.transport(p, payload)),
            Err(e) => {
                self.count_error(e);
                Some(p)
            }
        }
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
