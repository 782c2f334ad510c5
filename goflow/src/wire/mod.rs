//! Zero-copy typed views over packet bytes, one module per header, in the style of
//! smoltcp's `wire` module.
//!
//! # Contract
//! Every view borrows the caller's bytes and is checked once, at construction
//! (`new_checked` or pnet's `new`, which refuse a slice shorter than the fixed header).
//! After that, every accessor is infallible and cannot panic: it only reads bytes the
//! check proved present, and every variable-length part (options, extension headers,
//! payloads) is bounds-checked again with `get` before it is sliced. Payloads are
//! borrowed sub-slices; nothing is copied or allocated per packet.
//!
//! pnet_packet's views are used where they fit (Ethernet, 802.1Q, Linux cooked v1/v2,
//! IPv4, IPv6, TCP, UDP, ICMP, ICMPv6) — only their fixed-field getters, never their
//! `payload()`/option iterators, whose lengths come from unchecked header fields. The
//! small views pnet lacks (PPPoE session, BSD loopback, the IPv6 extension-header walk,
//! SCTP and UDP-Lite ports) are written here.

pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod link;
pub mod pppoe;
pub mod transport;

pub use ip::IpProtocol;
pub use link::{EtherType, LinkType, NetworkHint};

/// Why a view could not be built over some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The slice ends before the fixed part of the header.
    #[error("truncated header")]
    Truncated,
    /// A length or offset field contradicts the header's own rules (IHL < 5, TCP data
    /// offset < 5, ...).
    #[error("malformed header")]
    BadHeader,
    /// The version field does not match the protocol the view is for.
    #[error("wrong IP version")]
    BadVersion,
}

/// Reads a big-endian `u16` at `at`, `None` when the slice is too short.
#[inline]
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}
