//! Link layers: which bytes of a captured frame start the network header, and what the
//! link layer says that header is.
//!
//! The rules are those of the flow-accounting oracle (`shared/oracle/flowtruth.py`),
//! which the oracle test holds this crate to exactly:
//! - Ethernet (DLT 1): the EtherType at bytes 12..14, then any number of 802.1Q
//!   (0x8100), 802.1ad (0x88A8) and 0x9100 tags, each 4 bytes, as long as a whole tag is
//!   captured; then a PPPoE session header (0x8864, 6 bytes + 2-byte PPP protocol) if
//!   all 8 bytes are captured: PPP 0x0021 is IPv4, 0x0057 IPv6, anything else leaves
//!   the type open (the version nibble decides). An EtherType of 0 also leaves it open.
//! - BSD NULL (0) and LOOP (108): a 4-byte address family, not checked (its byte order
//!   depends on the capturing host); the version nibble decides.
//! - Raw IP (12, 14, 101, 228, 229): the IP header at offset 0; the version nibble
//!   decides for all of them (the oracle accepts either version on 228 and 229 too).
//! - Linux cooked v1 (113): 16-byte header, protocol at 14..16. v2 (276): 20-byte header,
//!   protocol at 0..2.
//! - Every other link type: no packet is IP.

use pnet_packet::ethernet::EthernetPacket;
use pnet_packet::sll::SLLPacket;
use pnet_packet::sll2::SLL2Packet;
use pnet_packet::vlan::VlanPacket;

use super::pppoe::PppoeSession;

/// The link-layer header type of a capture, from libpcap's DLT number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II / 802.3, with VLAN tags and PPPoE sessions (DLT 1).
    Ethernet,
    /// BSD loopback with a 4-byte address family: DLT_NULL (0) and DLT_LOOP (108).
    Loopback,
    /// Raw IP without a link header (DLT 12, 14, 101, 228, 229).
    RawIp,
    /// Linux cooked capture v1, the `any` device of older libpcaps (DLT 113).
    LinuxSll,
    /// Linux cooked capture v2 (DLT 276).
    LinuxSll2,
    /// A link type this crate does not decode: every packet counts as non-IP.
    Unsupported(i32),
}

impl LinkType {
    /// Maps a libpcap data-link type (as `pcap::Linktype.0` or `pcap_datalink()` gives
    /// it) to the decoder for it.
    pub fn from_dlt(dlt: i32) -> LinkType {
        match dlt {
            1 => LinkType::Ethernet,
            0 | 108 => LinkType::Loopback,
            12 | 14 | 101 | 228 | 229 => LinkType::RawIp,
            113 => LinkType::LinuxSll,
            276 => LinkType::LinuxSll2,
            other => LinkType::Unsupported(other),
        }
    }
}

/// EtherType values this crate names; everything else is `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x86DD.
    Ipv6,
    /// 0x0806.
    Arp,
    /// 0x8100, 802.1Q VLAN tag.
    Vlan,
    /// 0x88A8, 802.1ad service tag.
    QinQ,
    /// 0x9100, pre-standard double tag.
    Vlan9100,
    /// 0x8863, PPPoE discovery.
    PppoeDiscovery,
    /// 0x8864, PPPoE session.
    PppoeSession,
    /// Any other value.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x86DD => EtherType::Ipv6,
            0x0806 => EtherType::Arp,
            0x8100 => EtherType::Vlan,
            0x88A8 => EtherType::QinQ,
            0x9100 => EtherType::Vlan9100,
            0x8863 => EtherType::PppoeDiscovery,
            0x8864 => EtherType::PppoeSession,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(e: EtherType) -> u16 {
        match e {
            EtherType::Ipv4 => 0x0800,
            EtherType::Ipv6 => 0x86DD,
            EtherType::Arp => 0x0806,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88A8,
            EtherType::Vlan9100 => 0x9100,
            EtherType::PppoeDiscovery => 0x8863,
            EtherType::PppoeSession => 0x8864,
            EtherType::Unknown(v) => v,
        }
    }
}

impl EtherType {
    fn is_vlan_tag(self) -> bool {
        matches!(
            self,
            EtherType::Vlan | EtherType::QinQ | EtherType::Vlan9100
        )
    }
}

/// What the link layer says about the network header that follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkHint {
    /// The link layer does not say; the IP version nibble decides (4 or 6).
    Any,
    /// Only IPv4 is acceptable.
    Ipv4,
    /// Only IPv6 is acceptable.
    Ipv6,
}

/// Why a frame carries no network header this crate decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The network header starts at this offset and is of this kind.
    Network(NetworkHint, usize),
    /// The link layer names another protocol (ARP, LLDP, PPPoE discovery, ...).
    NotIp(EtherType),
    /// The frame ends inside the link-layer header (or inside a VLAN tag / PPPoE header).
    Truncated,
    /// The link type is not decoded.
    Unsupported,
}

fn classify(et: EtherType, off: usize) -> LinkOutcome {
    match et {
        EtherType::Ipv4 => LinkOutcome::Network(NetworkHint::Ipv4, off),
        EtherType::Ipv6 => LinkOutcome::Network(NetworkHint::Ipv6, off),
        EtherType::Unknown(0) => LinkOutcome::Network(NetworkHint::Any, off),
        other => LinkOutcome::NotIp(other),
    }
}

/// Length of the Linux cooked v1 header.
const SLL_LEN: usize = 16;
/// Length of the Linux cooked v2 header.
const SLL2_LEN: usize = 20;

/// Finds the network header of `frame` captured on `link`.
pub fn network_start(link: LinkType, frame: &[u8]) -> LinkOutcome {
    match link {
        LinkType::Ethernet => ethernet(frame),
        LinkType::RawIp => LinkOutcome::Network(NetworkHint::Any, 0),
        LinkType::Loopback => match Loopback::new_checked(frame) {
            Ok(_) => LinkOutcome::Network(NetworkHint::Any, Loopback::HEADER_LEN),
            Err(_) => LinkOutcome::Truncated,
        },
        // pnet's minimum sizes for these views leave out the variable-looking address
        // field, so the whole header length is checked here before the view is built.
        LinkType::LinuxSll => match frame.get(..SLL_LEN).and_then(SLLPacket::new) {
            Some(sll) => classify(sll.get_protocol().0.into(), SLL_LEN),
            None => LinkOutcome::Truncated,
        },
        LinkType::LinuxSll2 => match frame.get(..SLL2_LEN).and_then(SLL2Packet::new) {
            Some(sll) => classify(sll.get_protocol_type().0.into(), SLL2_LEN),
            None => LinkOutcome::Truncated,
        },
        LinkType::Unsupported(_) => LinkOutcome::Unsupported,
    }
}

fn ethernet(frame: &[u8]) -> LinkOutcome {
    let Some(eth) = EthernetPacket::new(frame) else {
        return LinkOutcome::Truncated;
    };
    let mut et: EtherType = eth.get_ethertype().0.into();
    let mut off = 14;
    while et.is_vlan_tag() {
        match frame.get(off..).and_then(VlanPacket::new) {
            Some(tag) => {
                et = tag.get_ethertype().0.into();
                off += 4;
            }
            None => return LinkOutcome::Truncated,
        }
    }
    if et == EtherType::PppoeSession {
        return match frame.get(off..).map(PppoeSession::new_checked) {
            Some(Ok(pppoe)) => {
                let off = off + PppoeSession::HEADER_LEN;
                match pppoe.ppp_protocol() {
                    0x0021 => LinkOutcome::Network(NetworkHint::Ipv4, off),
                    0x0057 => LinkOutcome::Network(NetworkHint::Ipv6, off),
                    // The oracle leaves the type open here; in practice PPP control
                    // protocols start with a code byte below 0x10, so this is non-IP.
                    _ => LinkOutcome::Network(NetworkHint::Any, off),
                }
            }
            _ => LinkOutcome::Truncated,
        };
    }
    classify(et, off)
}

/// BSD loopback header (DLT_NULL, DLT_LOOP): a 4-byte address family in the capturing
/// host's byte order (NULL) or network order (LOOP).
#[derive(Debug, Clone, Copy)]
pub struct Loopback<'a> {
    data: &'a [u8],
}

impl<'a> Loopback<'a> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 4;

    /// Checks that the 4-byte family is captured.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, super::Error> {
        if data.len() < Self::HEADER_LEN {
            return Err(super::Error::Truncated);
        }
        Ok(Loopback { data })
    }

    /// The family as raw bytes (byte order depends on the link type and host).
    pub fn family_bytes(&self) -> [u8; 4] {
        let mut out = [0u8; 4];
        out.copy_from_slice(&self.data[..Self::HEADER_LEN]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn from_dlt_maps_every_supported_type() {
        assert_eq!(LinkType::from_dlt(1), LinkType::Ethernet);
        for d in [0, 108] {
            assert_eq!(LinkType::from_dlt(d), LinkType::Loopback);
        }
        for d in [12, 14, 101, 228, 229] {
            assert_eq!(LinkType::from_dlt(d), LinkType::RawIp);
        }
        assert_eq!(LinkType::from_dlt(113), LinkType::LinuxSll);
        assert_eq!(LinkType::from_dlt(276), LinkType::LinuxSll2);
        assert_eq!(LinkType::from_dlt(105), LinkType::Unsupported(105));
    }

    #[test]
    fn ethernet_plain_ipv4_and_ipv6() {
        let f = eth(0x0800, &[0x45]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Ipv4, 14)
        );
        let f = eth(0x86DD, &[0x60]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Ipv6, 14)
        );
    }

    #[test]
    fn ethernet_stacked_vlan_tags() {
        let f = eth(
            0x88A8,
            &[0, 1, 0x81, 0x00, 0, 2, 0x91, 0x00, 0, 3, 0x08, 0x00, 0x45],
        );
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Ipv4, 26)
        );
    }

    #[test]
    fn ethernet_truncated_inside_tag_or_header() {
        assert_eq!(
            network_start(LinkType::Ethernet, &[0u8; 13]),
            LinkOutcome::Truncated
        );
        let f = eth(0x8100, &[0, 1, 0x08]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Truncated
        );
    }

    #[test]
    fn ethernet_other_ethertypes_are_not_ip() {
        let f = eth(0x0806, &[0; 28]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::NotIp(EtherType::Arp)
        );
        // Ethertype 0 leaves the decision to the version nibble, as the oracle does.
        let f = eth(0, &[0x45]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Any, 14)
        );
    }

    #[test]
    fn ethernet_pppoe_session() {
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 40, 0x00, 0x21, 0x45]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Ipv4, 22)
        );
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 40, 0x00, 0x57, 0x60]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Ipv6, 22)
        );
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 40, 0xc0, 0x21, 0x01]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Network(NetworkHint::Any, 22)
        );
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 40, 0x00]);
        assert_eq!(
            network_start(LinkType::Ethernet, &f),
            LinkOutcome::Truncated
        );
    }

    #[test]
    fn cooked_and_loopback_offsets() {
        let mut v1 = vec![0u8; 16];
        v1[14..16].copy_from_slice(&0x86DDu16.to_be_bytes());
        assert_eq!(
            network_start(LinkType::LinuxSll, &v1),
            LinkOutcome::Network(NetworkHint::Ipv6, 16)
        );
        assert_eq!(
            network_start(LinkType::LinuxSll, &v1[..15]),
            LinkOutcome::Truncated
        );
        let mut v2 = vec![0u8; 20];
        v2[0..2].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(
            network_start(LinkType::LinuxSll2, &v2),
            LinkOutcome::Network(NetworkHint::Ipv4, 20)
        );
        assert_eq!(
            network_start(LinkType::LinuxSll2, &v2[..19]),
            LinkOutcome::Truncated
        );
        assert_eq!(
            network_start(LinkType::Loopback, &[2, 0, 0, 0]),
            LinkOutcome::Network(NetworkHint::Any, 4)
        );
        assert_eq!(
            network_start(LinkType::Loopback, &[2, 0, 0]),
            LinkOutcome::Truncated
        );
        assert_eq!(
            Loopback::new_checked(&[0, 0, 0, 2, 0x45]).map(|l| l.family_bytes()),
            Ok([0, 0, 0, 2])
        );
    }

    #[test]
    fn unsupported_link_is_never_ip() {
        assert_eq!(
            network_start(LinkType::Unsupported(147), &[0x45; 64]),
            LinkOutcome::Unsupported
        );
    }
}
