//! Which side of a new connection is the client (see `docs/FLOWS.md` for the reasons).
//!
//! Decided once, from the first packet of the connection the table sees:
//! 1. that packet's hint: TCP SYN without ACK (sender is the client), SYN+ACK (sender
//!    is the server), ICMP/ICMPv6 request and reply types;
//! 2. else the ports, when both are non-zero: the port of the lower *rank* is the
//!    server's — rank 0 well-known (1–1023), rank 1 registered (1024–32767), rank 2
//!    ephemeral (32768–65535: the union of Linux's default 32768–60999 and the IANA
//!    range 49152–65535 used by Windows, macOS and the BSDs); between two different
//!    well-known ports the lower one is the server's (DHCP 68→67, rsh 1023→514);
//! 3. else the sender of the first packet is the client.

use crate::decode::Hint;

/// The rank of a port as a service port: 0 well-known, 1 registered, 2 ephemeral.
pub fn port_rank(port: u16) -> u8 {
    match port {
        0..=1023 => 0,
        1024..=32767 => 1,
        _ => 2,
    }
}

/// Whether the sender of a connection's first packet (with this hint and these ports)
/// is the client.
pub fn sender_is_client(hint: Hint, sport: u16, dport: u16) -> bool {
    match hint {
        Hint::SenderIsClient => return true,
        Hint::SenderIsServer => return false,
        Hint::None => {}
    }
    if sport == 0 || dport == 0 {
        return true;
    }
    let (rs, rd) = (port_rank(sport), port_rank(dport));
    if rs != rd {
        return rd < rs;
    }
    if rs == 0 && sport != dport {
        return dport < sport;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_win_over_ports() {
        assert!(sender_is_client(Hint::SenderIsClient, 80, 50000));
        assert!(!sender_is_client(Hint::SenderIsServer, 50000, 80));
    }

    #[test]
    fn ports_by_rank() {
        assert!(sender_is_client(Hint::None, 50000, 443));
        assert!(!sender_is_client(Hint::None, 443, 50000));
        assert!(sender_is_client(Hint::None, 40000, 8080));
        assert!(!sender_is_client(Hint::None, 3306, 33000));
        assert!(sender_is_client(Hint::None, 5353, 53));
        assert!(sender_is_client(Hint::None, 68, 67));
        assert!(!sender_is_client(Hint::None, 67, 68));
    }

    #[test]
    fn undecided_ports_fall_back_to_the_first_packet() {
        assert!(sender_is_client(Hint::None, 53, 53));
        assert!(sender_is_client(Hint::None, 8080, 3306));
        assert!(sender_is_client(Hint::None, 3306, 8080));
        assert!(sender_is_client(Hint::None, 50000, 60000));
        assert!(sender_is_client(Hint::None, 0, 80));
        assert!(sender_is_client(Hint::None, 0, 0));
    }
}
