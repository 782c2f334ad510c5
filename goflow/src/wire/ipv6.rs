//! IPv6 header view over pnet's `Ipv6Packet`, plus the extension-header walk to the
//! upper-layer protocol (pnet has views for single extension headers but no walk).
//!
//! The walk follows the oracle's rules exactly: it steps over hop-by-hop (0), routing
//! (43), fragment (44, always 8 bytes), destination options (60), AH (51, length in
//! 4-byte units + 2), mobility (135), HIP (139) and shim6 (140) (length in 8-byte units
//! plus 1) for as long as a whole 8-byte header start is captured. When the next extension
//! header is cut off, the walk stops and the protocol is that extension's number.

use std::net::Ipv6Addr;

use pnet_packet::ipv6::Ipv6Packet;

use super::{Error, IpProtocol};

mod field {
    /// Offsets inside an extension header.
    pub const NEXT: usize = 0;
    pub const LEN: usize = 1;
    /// Offsets inside a fragment header.
    pub const FRAG_OFFSET: usize = 2;
    pub const FRAG_IDENT: usize = 4;
}

/// A checked IPv6 header (40 bytes captured, version 6).
pub struct Ipv6<'a> {
    data: &'a [u8],
    pkt: Ipv6Packet<'a>,
}

/// The fragment header met on the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// Where the extension-header walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// The upper-layer protocol, or the number of the extension header the capture cut.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The first fragment header on the way, if any.
    pub fragment: Option<Fragment>,
    /// False when the walk stopped at a truncated extension header.
    pub complete: bool,
}

impl<'a> Ipv6<'a> {
    /// Length of the fixed header.
    pub const HEADER_LEN: usize = 40;

    /// Checks length and version.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, Error> {
        let pkt = Ipv6Packet::new(data).ok_or(Error::Truncated)?;
        if pkt.get_version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv6 { data, pkt })
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        self.pkt.get_source()
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        self.pkt.get_destination()
    }

    /// The next-header field of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        self.pkt.get_next_header().0.into()
    }

    /// Payload length field (0 for jumbograms).
    pub fn payload_len(&self) -> usize {
        usize::from(self.pkt.get_payload_length())
    }

    /// Walks the extension headers (see the module documentation).
    pub fn walk(&self) -> Walk {
        let mut next = self.next_header();
        let mut at = Self::HEADER_LEN;
        let mut fragment = None;
        while next.is_ipv6_extension() {
            let Some(h) = self.data.get(at..at + 8) else {
                break;
            };
            let hdr_len = usize::from(h[field::LEN]);
            let step = match next {
                IpProtocol::Fragment => {
                    if fragment.is_none() {
                        let off_flags = u16::from_be_bytes([h[field::FRAG_OFFSET], h[3]]);
                        fragment = Some(Fragment {
                            offset: u32::from(off_flags >> 3) * 8,
                            more: off_flags & 1 != 0,
                            ident: u32::from_be_bytes([h[field::FRAG_IDENT], h[5], h[6], h[7]]),
                        });
                    }
                    8
                }
                IpProtocol::Ah => (hdr_len + 2) * 4,
                _ => (hdr_len + 1) * 8,
            };
            next = h[field::NEXT].into();
            at += step;
        }
        Walk {
            protocol: next,
            offset: at,
            fragment,
            complete: !next.is_ipv6_extension(),
        }
    }

    /// The upper-layer bytes after `walk`: from its offset up to the end of the payload
    /// length (or the capture, if shorter; a payload length of 0 means "to the end").
    pub fn upper_payload(&self, walk: &Walk) -> Result<&'a [u8], Error> {
        if !walk.complete {
            return Err(Error::Truncated);
        }
        let declared = self.payload_len();
        let end = if declared == 0 {
            self.data.len()
        } else {
            (Self::HEADER_LEN + declared).min(self.data.len())
        };
        if walk.offset > end {
            return Err(if walk.offset > self.data.len() {
                Error::Truncated
            } else {
                Error::BadHeader
            });
        }
        self.data.get(walk.offset..end).ok_or(Error::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.push(next);
        v.push(64);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(1);
        v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        v.extend_from_slice(&[0; 11]);
        v.push(2);
        v.extend_from_slice(payload);
        v
    }

    const UDP: [u8; 8] = [0x04, 0x00, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00];

    #[test]
    fn good() {
        let v = header(17, &UDP);
        let ip = Ipv6::new_checked(&v).unwrap();
        assert_eq!(ip.src(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip.dst(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        let w = ip.walk();
        assert_eq!(
            (w.protocol, w.offset, w.complete),
            (IpProtocol::Udp, 40, true)
        );
        assert_eq!(ip.upper_payload(&w).unwrap(), &UDP);
    }

    #[test]
    fn walks_every_extension_kind() {
        let mut p = vec![];
        p.extend_from_slice(&[43, 0, 0, 0, 0, 0, 0, 0]); // hop-by-hop -> routing
        p.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // routing (16) -> frag
        p.extend_from_slice(&[51, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]); // frag (M) -> AH
        p.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // AH (12) -> dstopts
        p.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]); // dstopts -> mobility
        p.extend_from_slice(&[139, 0, 0, 0, 0, 0, 0, 0]); // mobility -> HIP
        p.extend_from_slice(&[140, 0, 0, 0, 0, 0, 0, 0]); // HIP -> shim6
        p.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]); // shim6 -> TCP
        let ext_len = p.len();
        p.extend_from_slice(&[0; 20]);
        let v = header(0, &p);
        let ip = Ipv6::new_checked(&v).unwrap();
        let w = ip.walk();
        assert_eq!(w.protocol, IpProtocol::Tcp);
        assert_eq!(w.offset, 40 + ext_len);
        assert_eq!(
            w.fragment,
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0xdeadbeef
            })
        );
        assert_eq!(ip.upper_payload(&w).unwrap().len(), 20);
    }

    #[test]
    fn truncated() {
        let v = header(17, &UDP);
        assert_eq!(Ipv6::new_checked(&v[..39]).err(), Some(Error::Truncated));
        // A hop-by-hop header cut after 7 bytes: the protocol is the extension's number.
        let v = header(0, &[17, 0, 0, 0, 0, 0, 0]);
        let ip = Ipv6::new_checked(&v).unwrap();
        let w = ip.walk();
        assert_eq!((w.protocol, w.complete), (IpProtocol::HopByHop, false));
        assert_eq!(ip.upper_payload(&w), Err(Error::Truncated));
        // An extension header whose length points past the capture.
        let v = header(60, &[17, 9, 0, 0, 0, 0, 0, 0]);
        let ip = Ipv6::new_checked(&v).unwrap();
        let w = ip.walk();
        assert_eq!((w.protocol, w.offset), (IpProtocol::Udp, 120));
        assert_eq!(ip.upper_payload(&w), Err(Error::Truncated));
    }

    #[test]
    fn overlong_capture_is_cut_at_payload_length() {
        let mut v = header(17, &UDP);
        v.extend_from_slice(&[0xee; 6]);
        let ip = Ipv6::new_checked(&v).unwrap();
        assert_eq!(ip.upper_payload(&ip.walk()).unwrap(), &UDP);
    }

    #[test]
    fn bad_version() {
        let mut v = header(17, &UDP);
        v[0] = 0x40;
        assert_eq!(Ipv6::new_checked(&v).err(), Some(Error::BadVersion));
    }

    #[test]
    fn later_fragment() {
        let v = header(44, &[17, 0, 0x05, 0x28, 0, 0, 0, 7, 1, 2, 3, 4]);
        let ip = Ipv6::new_checked(&v).unwrap();
        let w = ip.walk();
        assert_eq!(w.protocol, IpProtocol::Udp);
        assert_eq!(
            w.fragment,
            Some(Fragment {
                offset: 0x528 & !7,
                more: false,
                ident: 7
            })
        );
    }
}
