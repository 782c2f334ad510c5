//! The last resort: well-known ports. Used only when no payload signature matched; the
//! caller turns the answer into a port-guess id (`godb::l7::port_guess`).

use godb::l7;

const TCP: u8 = 6;
const UDP: u8 = 17;

/// The protocol whose well-known port this is, for transport `proto`.
fn well_known(proto: u8, port: u16) -> Option<u16> {
    let tcp = proto == TCP;
    let udp = proto == UDP;
    let id = match port {
        80 | 8080 | 8000 | 3128 if tcp => l7::HTTP,
        443 | 8443 | 993 | 995 | 465 | 636 | 853 if tcp => l7::TLS,
        443 if udp => l7::QUIC,
        22 if tcp => l7::SSH,
        53 => l7::DNS,
        5353 if udp => l7::MDNS,
        5355 if udp => l7::LLMNR,
        137..=139 => l7::NETBIOS,
        67 | 68 if udp => l7::DHCP,
        546 | 547 if udp => l7::DHCPV6,
        123 if udp => l7::NTP,
        161 | 162 if udp => l7::SNMP,
        514 if udp => l7::SYSLOG,
        25 | 587 if tcp => l7::SMTP,
        110 if tcp => l7::POP3,
        143 if tcp => l7::IMAP,
        21 if tcp => l7::FTP,
        445 if tcp => l7::SMB,
        88 => l7::KERBEROS,
        389 => l7::LDAP,
        3389 => l7::RDP,
        5060 | 5061 => l7::SIP,
        554 if tcp => l7::RTSP,
        3478 | 19302 => l7::STUN,
        6881..=6889 => l7::BITTORRENT,
        1194 => l7::OPENVPN,
        51820 if udp => l7::WIREGUARD,
        500 | 4500 if udp => l7::IKE,
        3306 if tcp => l7::MYSQL,
        5432 if tcp => l7::POSTGRESQL,
        6379 if tcp => l7::REDIS,
        27017 if tcp => l7::MONGODB,
        11211 => l7::MEMCACHED,
        1883 | 8883 if tcp => l7::MQTT,
        5672 if tcp => l7::AMQP,
        5222 | 5269 if tcp => l7::XMPP,
        6667 if tcp => l7::IRC,
        23 if tcp => l7::TELNET,
        1900 if udp => l7::SSDP,
        502 if tcp => l7::MODBUS,
        1812 | 1813 | 1645 | 1646 if udp => l7::RADIUS,
        69 if udp => l7::TFTP,
        179 if tcp => l7::BGP,
        427 => l7::SLP,
        1433 if tcp => l7::TDS,
        5900 if tcp => l7::VNC,
        1080 if tcp => l7::SOCKS,
        135 => l7::DCERPC,
        20000 => l7::DNP3,
        47808 if udp => l7::BACNET,
        10050 | 10051 if tcp => l7::ZABBIX,
        2404 if tcp => l7::IEC104,
        5683 if udp => l7::COAP,
        5351 if udp => l7::NATPMP,
        _ => return None,
    };
    Some(id)
}

/// The protocol a flow probably carries judging by its ports alone: the server port
/// first, then the client port (flows seen from the middle may be oriented backwards).
pub(crate) fn guess(proto: u8, client_port: u16, server_port: u16) -> Option<u16> {
    if proto != TCP && proto != UDP {
        return None;
    }
    well_known(proto, server_port).or_else(|| well_known(proto, client_port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_port_first_then_client_port() {
        assert_eq!(guess(TCP, 50000, 443), Some(l7::TLS));
        assert_eq!(guess(UDP, 50000, 443), Some(l7::QUIC));
        assert_eq!(guess(TCP, 53, 50000), Some(l7::DNS));
        assert_eq!(guess(TCP, 22, 80), Some(l7::HTTP));
    }

    #[test]
    fn transport_matters() {
        assert_eq!(guess(UDP, 50000, 22), None);
        assert_eq!(guess(1, 0, 53), None);
        assert_eq!(guess(TCP, 40000, 40001), None);
    }
}
