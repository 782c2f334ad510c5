//! goflow: from captured packet bytes to flow rows.
//!
//! Decodes link layers (Ethernet with VLAN tags, Linux cooked, BSD loopback, raw IP,
//! PPPoE), IPv4 and IPv6 with extension headers and fragments, and transport ports;
//! aggregates the packets into a per-interface [`FlowTable`] keyed as godb stores it.
//! No libpcap here: callers hand in bytes, so the decoder is testable and fuzzable alone.
