//! The stable table of application-layer (layer 7) protocol ids stored in the `l7`
//! column. Ids never change meaning once released; 0 means "unknown".
//!
//! Two kinds of labels share the 16-bit column:
//! - a *detection* (`1..=0x7fff`): the classifier (godpi) recognised the protocol from
//!   the payload bytes of the flow;
//! - a *port guess* (`0x8000 | id`, flag [`PORT_GUESS`]): no payload signature matched,
//!   and the label only says that a port of the flow is the protocol's well-known port.
//!   Its name is the protocol's name with a `?` suffix (`dns?`), so no report can pass
//!   a guess off as a detection. [`is_port_guess`] tells the two apart and [`base`]
//!   strips the flag.
//!
//! The list of ids and names is written down in `docs/L7.md`; the unit tests pin every
//! released id, so renumbering fails them.

/// The id stored for flows whose application protocol was not recognised.
pub const UNKNOWN: u16 = 0;

/// The flag bit that marks a port-based guess: `PORT_GUESS | id` means "probably `id`,
/// judged by port only". Detections never have this bit set.
pub const PORT_GUESS: u16 = 0x8000;

/// One entry of the layer-7 table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// The stable id of a detection (never 0, never with [`PORT_GUESS`] set).
    pub id: u16,
    /// The lower-case name of a detection, e.g. `dns`.
    pub name: &'static str,
    /// The name of the port guess `PORT_GUESS | id`, e.g. `dns?`.
    pub guess_name: &'static str,
}

macro_rules! protocols {
    ($( $(#[doc = $doc:expr])* $konst:ident = $id:literal, $name:literal; )*) => {
        $( $(#[doc = $doc])* pub const $konst: u16 = $id; )*

        /// Every protocol of the table, in id order.
        pub const PROTOCOLS: &[Protocol] = &[
            $( Protocol { id: $id, name: $name, guess_name: concat!($name, "?") }, )*
        ];
    };
}

protocols! {
    /// HTTP/1.x (requests and responses in clear text, any port).
    HTTP = 1, "http";
    /// TLS, any version, any port (handshake records).
    TLS = 2, "tls";
    /// QUIC (long-header initial packets, versions 1, 2 and drafts).
    QUIC = 3, "quic";
    /// SSH (version banner).
    SSH = 4, "ssh";
    /// Unicast DNS over UDP or TCP.
    DNS = 5, "dns";
    /// Multicast DNS (UDP 5353).
    MDNS = 6, "mdns";
    /// Link-Local Multicast Name Resolution (UDP 5355).
    LLMNR = 7, "llmnr";
    /// NetBIOS name, datagram and session services (137-139).
    NETBIOS = 8, "netbios";
    /// DHCP / BOOTP for IPv4.
    DHCP = 9, "dhcp";
    /// DHCPv6.
    DHCPV6 = 10, "dhcpv6";
    /// Network Time Protocol.
    NTP = 11, "ntp";
    /// SNMP v1, v2c and v3 (BER-encoded messages).
    SNMP = 12, "snmp";
    /// Syslog (`<PRI>` messages).
    SYSLOG = 13, "syslog";
    /// SMTP (mail submission and relay, clear text).
    SMTP = 14, "smtp";
    /// POP3 (clear text).
    POP3 = 15, "pop3";
    /// IMAP (clear text).
    IMAP = 16, "imap";
    /// FTP control connection.
    FTP = 17, "ftp";
    /// SMB 1, 2 and 3 (direct or over NetBIOS session).
    SMB = 18, "smb";
    /// Kerberos v5 (UDP or TCP).
    KERBEROS = 19, "kerberos";
    /// LDAP and CLDAP (BER-encoded messages).
    LDAP = 20, "ldap";
    /// Remote Desktop Protocol (TPKT + X.224 connection request).
    RDP = 21, "rdp";
    /// Session Initiation Protocol.
    SIP = 22, "sip";
    /// Real-time Transport Protocol (media).
    RTP = 23, "rtp";
    /// RTP Control Protocol.
    RTCP = 24, "rtcp";
    /// Real Time Streaming Protocol.
    RTSP = 25, "rtsp";
    /// STUN and TURN (RFC 5389 magic cookie or classic RFC 3489 header).
    STUN = 26, "stun";
    /// BitTorrent peer wire protocol, DHT and uTP.
    BITTORRENT = 27, "bittorrent";
    /// OpenVPN (UDP and TCP).
    OPENVPN = 28, "openvpn";
    /// WireGuard.
    WIREGUARD = 29, "wireguard";
    /// IKE / ISAKMP (UDP 500 and 4500).
    IKE = 30, "ike";
    /// MySQL / MariaDB client protocol.
    MYSQL = 31, "mysql";
    /// PostgreSQL frontend/backend protocol.
    POSTGRESQL = 32, "postgresql";
    /// Redis (RESP).
    REDIS = 33, "redis";
    /// MongoDB wire protocol.
    MONGODB = 34, "mongodb";
    /// Memcached (text and binary protocols).
    MEMCACHED = 35, "memcached";
    /// MQTT.
    MQTT = 36, "mqtt";
    /// AMQP (protocol header).
    AMQP = 37, "amqp";
    /// XMPP / Jabber (XML stream).
    XMPP = 38, "xmpp";
    /// Internet Relay Chat.
    IRC = 39, "irc";
    /// Telnet (option negotiation).
    TELNET = 40, "telnet";
    /// Simple Service Discovery Protocol (UPnP, HTTP over UDP).
    SSDP = 41, "ssdp";
    /// Modbus over TCP.
    MODBUS = 42, "modbus";
    /// Datagram TLS.
    DTLS = 43, "dtls";
    /// RADIUS authentication and accounting.
    RADIUS = 44, "radius";
    /// Trivial File Transfer Protocol.
    TFTP = 45, "tftp";
    /// Border Gateway Protocol.
    BGP = 46, "bgp";
    /// Service Location Protocol v2.
    SLP = 47, "slp";
    /// Microsoft SQL Server (TDS).
    TDS = 48, "tds";
    /// VNC (RFB protocol).
    VNC = 49, "vnc";
    /// SOCKS 4 and 5 proxies.
    SOCKS = 50, "socks";
    /// DCE/RPC (connection-oriented and connectionless).
    DCERPC = 51, "dcerpc";
    /// DNP3 over TCP or UDP.
    DNP3 = 52, "dnp3";
    /// BACnet/IP.
    BACNET = 53, "bacnet";
    /// Zabbix agent protocol.
    ZABBIX = 54, "zabbix";
    /// IEC 60870-5-104.
    IEC104 = 55, "iec104";
    /// Constrained Application Protocol.
    COAP = 56, "coap";
    /// NAT Port Mapping Protocol (and PCP).
    NATPMP = 57, "nat-pmp";
    /// DNSCrypt (certificate queries `2.dnscrypt-cert.*` and the encrypted exchange).
    DNSCRYPT = 58, "dnscrypt";
    /// Gnutella (and Gnutella2) peer-to-peer: handshakes and UDP messages.
    GNUTELLA = 59, "gnutella";
    /// NFS and its ONC RPC helpers (portmapper, mount, lock manager, status monitor).
    NFS = 60, "nfs";
}

/// Whether `id` is a port-based guess rather than a payload detection.
pub fn is_port_guess(id: u16) -> bool {
    id & PORT_GUESS != 0
}

/// The port-guess id for detection id `id` (`PORT_GUESS | id`); [`UNKNOWN`] stays
/// [`UNKNOWN`].
pub fn port_guess(id: u16) -> u16 {
    if id == UNKNOWN {
        UNKNOWN
    } else {
        id | PORT_GUESS
    }
}

/// The detection id behind `id`: a port guess loses its flag, other ids are returned
/// unchanged.
pub fn base(id: u16) -> u16 {
    id & !PORT_GUESS
}

fn entry(id: u16) -> Option<&'static Protocol> {
    let base = base(id);
    // Ids are dense and start at 1, so the table index is `id - 1`.
    let e = PROTOCOLS.get(usize::from(base).checked_sub(1)?)?;
    (e.id == base).then_some(e)
}

/// The name of layer-7 protocol `id`, or `None` for an id this version does not know.
/// Port guesses get the protocol's name with a `?` suffix (`dns?`).
pub fn name(id: u16) -> Option<&'static str> {
    if id == UNKNOWN {
        return Some("unknown");
    }
    let e = entry(id)?;
    Some(if is_port_guess(id) {
        e.guess_name
    } else {
        e.name
    })
}

/// The id of the layer-7 protocol called `name` (case-insensitive), if there is one.
/// A trailing `?` names the port guess (`dns?` gives `PORT_GUESS | DNS`).
pub fn id(name: &str) -> Option<u16> {
    if name.eq_ignore_ascii_case("unknown") {
        return Some(UNKNOWN);
    }
    let (bare, guess) = match name.strip_suffix('?') {
        Some(bare) => (bare, true),
        None => (name, false),
    };
    let e = PROTOCOLS
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case(bare))?;
    Some(if guess { port_guess(e.id) } else { e.id })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every released id with its name. Append new protocols here; never edit or
    /// remove a line: a renumbering or rename must fail this test.
    const RELEASED: &[(u16, &str)] = &[
        (0, "unknown"),
        (1, "http"),
        (2, "tls"),
        (3, "quic"),
        (4, "ssh"),
        (5, "dns"),
        (6, "mdns"),
        (7, "llmnr"),
        (8, "netbios"),
        (9, "dhcp"),
        (10, "dhcpv6"),
        (11, "ntp"),
        (12, "snmp"),
        (13, "syslog"),
        (14, "smtp"),
        (15, "pop3"),
        (16, "imap"),
        (17, "ftp"),
        (18, "smb"),
        (19, "kerberos"),
        (20, "ldap"),
        (21, "rdp"),
        (22, "sip"),
        (23, "rtp"),
        (24, "rtcp"),
        (25, "rtsp"),
        (26, "stun"),
        (27, "bittorrent"),
        (28, "openvpn"),
        (29, "wireguard"),
        (30, "ike"),
        (31, "mysql"),
        (32, "postgresql"),
        (33, "redis"),
        (34, "mongodb"),
        (35, "memcached"),
        (36, "mqtt"),
        (37, "amqp"),
        (38, "xmpp"),
        (39, "irc"),
        (40, "telnet"),
        (41, "ssdp"),
        (42, "modbus"),
        (43, "dtls"),
        (44, "radius"),
        (45, "tftp"),
        (46, "bgp"),
        (47, "slp"),
        (48, "tds"),
        (49, "vnc"),
        (50, "socks"),
        (51, "dcerpc"),
        (52, "dnp3"),
        (53, "bacnet"),
        (54, "zabbix"),
        (55, "iec104"),
        (56, "coap"),
        (57, "nat-pmp"),
        (58, "dnscrypt"),
        (59, "gnutella"),
        (60, "nfs"),
    ];

    #[test]
    fn released_ids_are_pinned() {
        for &(id, n) in RELEASED {
            assert_eq!(name(id), Some(n), "id {id}");
            assert_eq!(super::id(n), Some(id), "name {n}");
        }
        // Every table entry is released (the pin list is complete).
        assert_eq!(PROTOCOLS.len() + 1, RELEASED.len());
    }

    #[test]
    fn ids_and_names_are_unique_and_round_trip() {
        let mut seen_ids = std::collections::HashSet::new();
        let mut seen_names = std::collections::HashSet::new();
        for p in PROTOCOLS {
            assert!(seen_ids.insert(p.id), "duplicate id {}", p.id);
            assert!(seen_names.insert(p.name), "duplicate name {}", p.name);
            assert!(p.id != UNKNOWN && !is_port_guess(p.id));
            assert_eq!(name(p.id), Some(p.name));
            assert_eq!(id(p.name), Some(p.id));
            assert_eq!(id(&p.name.to_ascii_uppercase()), Some(p.id));
            let g = port_guess(p.id);
            assert!(is_port_guess(g));
            assert_eq!(base(g), p.id);
            assert_eq!(name(g), Some(p.guess_name));
            assert_eq!(p.guess_name, format!("{}?", p.name));
            assert_eq!(id(p.guess_name), Some(g));
        }
    }

    #[test]
    fn unknown_and_out_of_range() {
        assert_eq!(name(UNKNOWN), Some("unknown"));
        assert_eq!(id("UNKNOWN"), Some(UNKNOWN));
        assert_eq!(port_guess(UNKNOWN), UNKNOWN);
        assert!(!is_port_guess(UNKNOWN));
        assert_eq!(name(PROTOCOLS.len() as u16 + 1), None);
        assert_eq!(name(PORT_GUESS), None);
        assert_eq!(name(u16::MAX), None);
        assert_eq!(id("no-such-protocol"), None);
        assert_eq!(id("unknown?"), None);
        assert_eq!(id(""), None);
        assert_eq!(id("?"), None);
    }
}
