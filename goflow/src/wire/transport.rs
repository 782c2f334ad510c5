//! Transport headers: ports and flags of TCP and UDP (pnet views), SCTP and UDP-Lite
//! (small views of our own: pnet has none), message types of ICMP and ICMPv6 (pnet).
//!
//! Every protocol with ports keeps them in its first four bytes; the views still insist
//! on the whole fixed header (TCP 20, UDP 8, SCTP 12, UDP-Lite 8) before they trust any
//! field, so a packet whose transport header is cut counts with port 0.

use pnet_packet::icmp::IcmpPacket;
use pnet_packet::icmpv6::Icmpv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;

use super::{be16, Error, IpProtocol};

/// TCP flag bits used for orientation.
pub mod tcp_flags {
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

/// The ports and payload of a TCP, UDP, SCTP or UDP-Lite header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports<'a> {
    /// Source port.
    pub src: u16,
    /// Destination port.
    pub dst: u16,
    /// TCP flags (TCP only).
    pub tcp_flags: Option<u8>,
    /// The transport payload (TCP/UDP data, SCTP chunks), as captured.
    pub payload: &'a [u8],
}

/// Decodes the ports of `proto` from `data`, the bytes after the IP header(s).
///
/// Errors: `Truncated` when the fixed header is not captured, `BadHeader` for a TCP data
/// offset below 5, `BadVersion` never. Protocols without ports are `BadHeader` too; ask
/// [`IpProtocol::has_ports`] first.
pub fn ports(proto: IpProtocol, data: &[u8]) -> Result<Ports<'_>, Error> {
    match proto {
        IpProtocol::Tcp => {
            let tcp = TcpPacket::new(data).ok_or(Error::Truncated)?;
            let offset = usize::from(tcp.get_data_offset()) * 4;
            if offset < 20 {
                return Err(Error::BadHeader);
            }
            Ok(Ports {
                src: tcp.get_source(),
                dst: tcp.get_destination(),
                tcp_flags: Some(tcp.get_flags()),
                payload: data.get(offset..).unwrap_or(&[]),
            })
        }
        IpProtocol::Udp => {
            let udp = UdpPacket::new(data).ok_or(Error::Truncated)?;
            let declared = usize::from(udp.get_length());
            let end = if declared >= 8 {
                declared.min(data.len())
            } else {
                data.len()
            };
            Ok(Ports {
                src: udp.get_source(),
                dst: udp.get_destination(),
                tcp_flags: None,
                payload: data.get(8..end).unwrap_or(&[]),
            })
        }
        IpProtocol::Sctp => {
            let sctp = Sctp::new_checked(data)?;
            Ok(Ports {
                src: sctp.src_port(),
                dst: sctp.dst_port(),
                tcp_flags: None,
                payload: sctp.chunks(),
            })
        }
        IpProtocol::UdpLite => {
            let lite = UdpLite::new_checked(data)?;
            Ok(Ports {
                src: lite.src_port(),
                dst: lite.dst_port(),
                tcp_flags: None,
                payload: lite.payload(),
            })
        }
        _ => Err(Error::BadHeader),
    }
}

/// The (type, code) of an ICMP (`v6 == false`) or ICMPv6 message.
pub fn icmp_type(v6: bool, data: &[u8]) -> Result<(u8, u8), Error> {
    if v6 {
        let p = Icmpv6Packet::new(data).ok_or(Error::Truncated)?;
        Ok((p.get_icmpv6_type().0, p.get_icmpv6_code().0))
    } else {
        let p = IcmpPacket::new(data).ok_or(Error::Truncated)?;
        Ok((p.get_icmp_type().0, p.get_icmp_code().0))
    }
}

/// SCTP common header (RFC 9260): ports, verification tag, checksum; chunks follow.
#[derive(Debug, Clone, Copy)]
pub struct Sctp<'a> {
    data: &'a [u8],
}

impl<'a> Sctp<'a> {
    /// Length of the common header.
    pub const HEADER_LEN: usize = 12;

    /// Checks that the common header is captured.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Sctp { data })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        self.data
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The chunks, as captured.
    pub fn chunks(&self) -> &'a [u8] {
        self.data.get(Self::HEADER_LEN..).unwrap_or(&[])
    }
}

/// UDP-Lite header (RFC 3828): ports, checksum coverage, checksum.
#[derive(Debug, Clone, Copy)]
pub struct UdpLite<'a> {
    data: &'a [u8],
}

impl<'a> UdpLite<'a> {
    /// Length of the header.
    pub const HEADER_LEN: usize = 8;

    /// Checks that the header is captured.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(UdpLite { data })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }

    /// Checksum coverage (0 = the whole datagram).
    pub fn checksum_coverage(&self) -> u16 {
        be16(self.data, 4).unwrap_or(0)
    }

    /// The payload, as captured.
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(Self::HEADER_LEN..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1234 -> 80, SYN, data offset 6 (one 4-byte option), 3 payload bytes.
    const TCP: [u8; 27] = [
        0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4,
        5, 0xb4, b'a', b'b', b'c',
    ];
    const UDP: [u8; 12] = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0a, 0, 0, 1, 2, 0xee, 0xee];
    const SCTP: [u8; 16] = [0x0b, 0x59, 0x0b, 0x59, 0, 0, 0, 9, 0, 0, 0, 0, 1, 0, 0, 4];

    #[test]
    fn tcp_good_truncated_bad() {
        let p = ports(IpProtocol::Tcp, &TCP).unwrap();
        assert_eq!(
            (p.src, p.dst, p.tcp_flags),
            (1234, 80, Some(tcp_flags::SYN))
        );
        assert_eq!(p.payload, b"abc");
        assert_eq!(ports(IpProtocol::Tcp, &TCP[..19]), Err(Error::Truncated));
        let mut bad = TCP;
        bad[12] = 0x40;
        assert_eq!(ports(IpProtocol::Tcp, &bad), Err(Error::BadHeader));
        // Options cut by the capture: ports kept, no payload.
        let p = ports(IpProtocol::Tcp, &TCP[..22]).unwrap();
        assert_eq!((p.src, p.payload.len()), (1234, 0));
    }

    #[test]
    fn udp_good_truncated_overlong() {
        let p = ports(IpProtocol::Udp, &UDP).unwrap();
        assert_eq!((p.src, p.dst, p.payload), (12345, 53, &[1u8, 2][..]));
        assert_eq!(ports(IpProtocol::Udp, &UDP[..7]), Err(Error::Truncated));
        let mut zero_len = UDP;
        zero_len[5] = 0;
        assert_eq!(ports(IpProtocol::Udp, &zero_len).unwrap().payload.len(), 4);
    }

    #[test]
    fn sctp_and_udplite() {
        let p = ports(IpProtocol::Sctp, &SCTP).unwrap();
        assert_eq!((p.src, p.dst, p.payload.len()), (2905, 2905, 4));
        assert_eq!(Sctp::new_checked(&SCTP).unwrap().verification_tag(), 9);
        assert_eq!(ports(IpProtocol::Sctp, &SCTP[..11]), Err(Error::Truncated));
        let p = ports(IpProtocol::UdpLite, &UDP).unwrap();
        assert_eq!((p.src, p.dst, p.payload.len()), (12345, 53, 4));
        assert_eq!(UdpLite::new_checked(&UDP).unwrap().checksum_coverage(), 10);
        assert_eq!(ports(IpProtocol::UdpLite, &UDP[..5]), Err(Error::Truncated));
        assert_eq!(ports(IpProtocol::Gre, &UDP), Err(Error::BadHeader));
    }

    #[test]
    fn icmp_types() {
        assert_eq!(icmp_type(false, &[8, 0, 0, 0]), Ok((8, 0)));
        assert_eq!(icmp_type(true, &[128, 0, 0, 0, 1]), Ok((128, 0)));
        assert_eq!(icmp_type(false, &[8, 0, 0]), Err(Error::Truncated));
    }
}
