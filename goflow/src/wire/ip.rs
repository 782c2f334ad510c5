//! IP protocol numbers (the IPv4 protocol field, the IPv6 next-header field) as an enum
//! with an `Unknown(u8)` arm, converting both ways.

macro_rules! protocols {
    ($($(#[$doc:meta])* $name:ident = $num:expr,)*) => {
        /// An IP protocol / IPv6 next-header number.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum IpProtocol {
            $($(#[$doc])* $name,)*
            /// Any number without a name here.
            Unknown(u8),
        }

        impl From<u8> for IpProtocol {
            fn from(v: u8) -> Self {
                match v {
                    $($num => IpProtocol::$name,)*
                    other => IpProtocol::Unknown(other),
                }
            }
        }

        impl From<IpProtocol> for u8 {
            fn from(p: IpProtocol) -> u8 {
                match p {
                    $(IpProtocol::$name => $num,)*
                    IpProtocol::Unknown(v) => v,
                }
            }
        }
    };
}

protocols! {
    /// IPv6 hop-by-hop options (0).
    HopByHop = 0,
    /// ICMP (1).
    Icmp = 1,
    /// IGMP (2).
    Igmp = 2,
    /// IPv4 in IP (4).
    IpIp = 4,
    /// TCP (6).
    Tcp = 6,
    /// UDP (17).
    Udp = 17,
    /// IPv6 in IP (41).
    Ipv6 = 41,
    /// IPv6 routing header (43).
    Routing = 43,
    /// IPv6 fragment header (44).
    Fragment = 44,
    /// GRE (47).
    Gre = 47,
    /// ESP (50).
    Esp = 50,
    /// Authentication header (51).
    Ah = 51,
    /// ICMPv6 (58).
    Icmpv6 = 58,
    /// IPv6 "no next header" (59).
    NoNextHeader = 59,
    /// IPv6 destination options (60).
    DestinationOptions = 60,
    /// OSPF (89).
    Ospf = 89,
    /// PIM (103).
    Pim = 103,
    /// VRRP (112).
    Vrrp = 112,
    /// SCTP (132).
    Sctp = 132,
    /// Mobility header (135).
    Mobility = 135,
    /// UDP-Lite (136).
    UdpLite = 136,
    /// Host Identity Protocol (139).
    Hip = 139,
    /// Shim6 (140).
    Shim6 = 140,
}

impl IpProtocol {
    /// Whether an IPv6 walk continues past a header of this number: hop-by-hop,
    /// routing, fragment, destination options, AH, mobility, HIP and shim6, the set the
    /// oracle walks.
    pub fn is_ipv6_extension(self) -> bool {
        matches!(
            self,
            IpProtocol::HopByHop
                | IpProtocol::Routing
                | IpProtocol::Fragment
                | IpProtocol::DestinationOptions
                | IpProtocol::Ah
                | IpProtocol::Mobility
                | IpProtocol::Hip
                | IpProtocol::Shim6
        )
    }

    /// Whether the protocol carries 16-bit source and destination ports in its first
    /// four bytes (TCP, UDP, SCTP, UDP-Lite).
    pub fn has_ports(self) -> bool {
        matches!(
            self,
            IpProtocol::Tcp | IpProtocol::Udp | IpProtocol::Sctp | IpProtocol::UdpLite
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_number() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(253), IpProtocol::Unknown(253));
    }

    #[test]
    fn extension_set_is_the_oracles() {
        let ext: Vec<u8> = (0..=255u8)
            .filter(|&v| IpProtocol::from(v).is_ipv6_extension())
            .collect();
        assert_eq!(ext, vec![0, 43, 44, 51, 60, 135, 139, 140]);
    }
}
