//! PPPoE session header (RFC 2516, EtherType 0x8864) followed by the 2-byte PPP
//! protocol field: a view pnet does not provide.
//!
//! ```text
//!  0      1      2      3      4      5      6      7
//! +------+------+------+------+------+------+------+------+
//! |ver|ty| code |  session id |    length   | PPP protocol|
//! +------+------+------+------+------+------+------+------+
//! ```
//! Version and type are not checked (the oracle does not check them either).

use super::{be16, Error};

mod field {
    pub const VER_TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const SESSION: usize = 2;
    pub const LENGTH: usize = 4;
    pub const PROTOCOL: usize = 6;
}

/// A checked view of a PPPoE session header plus PPP protocol.
#[derive(Debug, Clone, Copy)]
pub struct PppoeSession<'a> {
    data: &'a [u8],
}

impl<'a> PppoeSession<'a> {
    /// Bytes from the start of the PPPoE header to the PPP payload.
    pub const HEADER_LEN: usize = 8;

    /// Checks that the 8 header bytes are captured.
    pub fn new_checked(data: &'a [u8]) -> Result<Self, Error> {
        if data.len() < Self::HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(PppoeSession { data })
    }

    fn u16_at(&self, at: usize) -> u16 {
        be16(self.data, at).unwrap_or(0)
    }

    /// PPPoE version (1 in every deployed network).
    pub fn version(&self) -> u8 {
        self.data[field::VER_TYPE] >> 4
    }

    /// PPPoE type (1).
    pub fn kind(&self) -> u8 {
        self.data[field::VER_TYPE] & 0x0f
    }

    /// Code (0 for session data).
    pub fn code(&self) -> u8 {
        self.data[field::CODE]
    }

    /// Session id.
    pub fn session_id(&self) -> u16 {
        self.u16_at(field::SESSION)
    }

    /// Length of the PPPoE payload (PPP protocol field included).
    pub fn length(&self) -> u16 {
        self.u16_at(field::LENGTH)
    }

    /// PPP protocol: 0x0021 IPv4, 0x0057 IPv6, 0xC021 LCP, ...
    pub fn ppp_protocol(&self) -> u16 {
        self.u16_at(field::PROTOCOL)
    }

    /// The PPP payload: everything captured after the header.
    pub fn payload(&self) -> &'a [u8] {
        self.data.get(Self::HEADER_LEN..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: [u8; 10] = [0x11, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x21, 0x45, 0x00];

    #[test]
    fn good() {
        let p = PppoeSession::new_checked(&GOOD).unwrap();
        assert_eq!((p.version(), p.kind(), p.code()), (1, 1, 0));
        assert_eq!(p.session_id(), 0x1234);
        assert_eq!(p.length(), 2);
        assert_eq!(p.ppp_protocol(), 0x0021);
        assert_eq!(p.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn truncated() {
        assert_eq!(
            PppoeSession::new_checked(&GOOD[..7]).err(),
            Some(Error::Truncated)
        );
    }

    #[test]
    fn overlong_payload_is_borrowed_whole() {
        let mut long = GOOD.to_vec();
        long.extend_from_slice(&[0u8; 100]);
        let p = PppoeSession::new_checked(&long).unwrap();
        assert_eq!(p.payload().len(), 102);
    }

    #[test]
    fn bad_version_is_not_checked() {
        let mut v = GOOD;
        v[0] = 0x21;
        let p = PppoeSession::new_checked(&v).unwrap();
        assert_eq!(p.version(), 2);
        assert_eq!(p.ppp_protocol(), 0x0021);
    }
}
