//! IPv4 header view over pnet's `Ipv4Packet`, honouring the header length (options).
//!
//! Construction checks only what the flow accounting needs (20 bytes, version 4): a
//! packet with a bad IHL or total length still has trustworthy addresses and protocol,
//! and is counted (with port 0). [`Ipv4::payload`] then validates the lengths before
//! handing out the transport bytes.

use std::net::Ipv4Addr;

use pnet_packet::ipv4::Ipv4Packet;

use super::{Error, IpProtocol};

/// A checked IPv4 header (at least 20 bytes captured, version 4).
pub struct Ipv4<'a> {
    data: &'a [u8],
    pkt: Ipv4Packet<'a>,
}

impl<'a> Ipv4<'a> {
    /// Length of the fixed header.
    pub const MIN_LEN: usize = 20;

    /// Checks length and version; IHL and total length are checked by [`Self::payload`].
    pub fn new_checked(data: &'a [u8]) -> Result<Self, Error> {
        let pkt = Ipv4Packet::new(data).ok_or(Error::Truncated)?;
        if pkt.get_version() != 4 {
            return Err(Error::BadVersion);
        }
        Ok(Ipv4 { data, pkt })
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        self.pkt.get_source()
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        self.pkt.get_destination()
    }

    /// Upper-layer protocol.
    pub fn protocol(&self) -> IpProtocol {
        self.pkt.get_next_level_protocol().0.into()
    }

    /// Identification (fragment id).
    pub fn ident(&self) -> u16 {
        self.pkt.get_identification()
    }

    /// Fragment offset in bytes.
    pub fn fragment_offset(&self) -> u32 {
        u32::from(self.pkt.get_fragment_offset()) * 8
    }

    /// Whether the more-fragments flag is set.
    pub fn more_fragments(&self) -> bool {
        self.pkt.get_flags() & pnet_packet::ipv4::Ipv4Flags::MoreFragments != 0
    }

    /// Whether this packet is a fragment (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// Header length in bytes, from IHL (not validated).
    pub fn header_len(&self) -> usize {
        usize::from(self.pkt.get_header_length()) * 4
    }

    /// Total length field (0 on segmentation-offloaded packets captured on the sender).
    pub fn total_len(&self) -> usize {
        usize::from(self.pkt.get_total_length())
    }

    /// The IP payload (transport header and data): after the options, up to the total
    /// length or the end of the capture, whichever comes first. A total length of 0 is
    /// taken as "unknown" (TSO) and the capture's end is used.
    ///
    /// Errors: `BadHeader` for IHL < 5 or a total length shorter than the header,
    /// `Truncated` when the options are not all captured.
    pub fn payload(&self) -> Result<&'a [u8], Error> {
        let hl = self.header_len();
        if hl < Self::MIN_LEN {
            return Err(Error::BadHeader);
        }
        let total = self.total_len();
        if total != 0 && total < hl {
            return Err(Error::BadHeader);
        }
        if self.data.len() < hl {
            return Err(Error::Truncated);
        }
        let end = if total == 0 {
            self.data.len()
        } else {
            total.min(self.data.len())
        };
        self.data.get(hl..end).ok_or(Error::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10.0.0.1 -> 10.0.0.2, UDP, total length 28, no options, 8 payload bytes.
    const GOOD: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 1, 10, 0,
        0, 2, 0x04, 0x00, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
    ];

    #[test]
    fn good() {
        let ip = Ipv4::new_checked(&GOOD).unwrap();
        assert_eq!(ip.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(ip.protocol(), IpProtocol::Udp);
        assert_eq!(ip.ident(), 0x1234);
        assert!(!ip.is_fragment());
        assert_eq!(ip.payload().unwrap(), &GOOD[20..]);
    }

    #[test]
    fn options_are_skipped() {
        let mut v = GOOD.to_vec();
        v[0] = 0x46;
        v[3] = 32;
        v.splice(20..20, [1, 1, 1, 0]);
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.header_len(), 24);
        assert_eq!(ip.payload().unwrap(), &GOOD[20..]);
    }

    #[test]
    fn truncated() {
        assert_eq!(Ipv4::new_checked(&GOOD[..19]).err(), Some(Error::Truncated));
        let mut v = GOOD;
        v[0] = 0x4f; // 60-byte header, 28 captured
        v[3] = 60;
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.payload(), Err(Error::Truncated));
    }

    #[test]
    fn overlong_capture_is_cut_at_total_length() {
        let mut v = GOOD.to_vec();
        v.extend_from_slice(&[0xee; 18]); // Ethernet padding
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.payload().unwrap(), &GOOD[20..]);
        // TSO: total length 0 means "to the end of the capture".
        v[2] = 0;
        v[3] = 0;
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.payload().unwrap().len(), 26);
    }

    #[test]
    fn bad_header_lengths_keep_addresses() {
        let mut v = GOOD;
        v[0] = 0x43;
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.payload(), Err(Error::BadHeader));
        let mut v = GOOD;
        v[3] = 10;
        assert_eq!(
            Ipv4::new_checked(&v).unwrap().payload(),
            Err(Error::BadHeader)
        );
    }

    #[test]
    fn bad_version() {
        let mut v = GOOD;
        v[0] = 0x65;
        assert_eq!(Ipv4::new_checked(&v).err(), Some(Error::BadVersion));
    }

    #[test]
    fn fragments() {
        let mut v = GOOD;
        v[6] = 0x20; // MF, offset 0
        let ip = Ipv4::new_checked(&v).unwrap();
        assert!(ip.more_fragments() && ip.is_fragment());
        assert_eq!(ip.fragment_offset(), 0);
        v[6] = 0x00;
        v[7] = 0x03;
        let ip = Ipv4::new_checked(&v).unwrap();
        assert_eq!(ip.fragment_offset(), 24);
        assert!(ip.is_fragment() && !ip.more_fragments());
    }
}
