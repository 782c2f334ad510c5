//! The attributes a query groups by (`sip`, `dip`, `dport`, `proto`, `l7`, `time`,
//! `iface`), goQuery's named query types built from them, and the IP protocol names
//! shared by the condition parser and the renderers.

use super::error::StatementError;

/// One column a query can group its results by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// Block time (end of the 5-minute interval).
    Time,
    /// Capture interface.
    Iface,
    /// Source (client) address.
    Sip,
    /// Destination (server) address.
    Dip,
    /// Destination (server) port.
    Dport,
    /// IP protocol number.
    Proto,
    /// Layer-7 protocol id (see [`crate::l7`]).
    L7,
}

impl Attribute {
    /// The canonical name, as used in headers and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Time => "time",
            Attribute::Iface => "iface",
            Attribute::Sip => "sip",
            Attribute::Dip => "dip",
            Attribute::Dport => "dport",
            Attribute::Proto => "proto",
            Attribute::L7 => "l7",
        }
    }

    /// Parses one attribute name or alias (`src`, `dst`, `port`, `protocol`, ...).
    pub fn parse(name: &str) -> Option<Attribute> {
        let lower = name.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "time" => Attribute::Time,
            "iface" => Attribute::Iface,
            "sip" | "src" => Attribute::Sip,
            "dip" | "dst" => Attribute::Dip,
            "dport" | "port" => Attribute::Dport,
            "proto" | "protocol" | "ipproto" => Attribute::Proto,
            "l7" | "dpi" | "app" => Attribute::L7,
            _ => return None,
        })
    }
}

/// The attributes of a query, in display order: labels (time, iface) first, then the
/// flow attributes in goQuery's order (sip, dip, dport, proto, l7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttributeSet {
    /// Group by block time.
    pub time: bool,
    /// Group by interface.
    pub iface: bool,
    /// Group by source address.
    pub sip: bool,
    /// Group by destination address.
    pub dip: bool,
    /// Group by destination port.
    pub dport: bool,
    /// Group by IP protocol.
    pub proto: bool,
    /// Group by layer-7 protocol.
    pub l7: bool,
}

impl AttributeSet {
    /// Parses a query type: a named one (`talk_src`, `talk_dst`, `talk_conv`,
    /// `apps_port`, `apps_dpi`, `agg_talk_port`, `raw`) or a comma list of attribute
    /// names and aliases.
    pub fn parse(query: &str) -> Result<AttributeSet, StatementError> {
        let q = query.trim().to_ascii_lowercase();
        let list: &str = match q.as_str() {
            "talk_src" => "sip",
            "talk_dst" => "dip",
            "talk_conv" => "sip,dip",
            "apps_port" => "dport,proto",
            "apps_dpi" => "l7,proto",
            "agg_talk_port" => "sip,dip,dport,proto",
            "raw" => "time,iface,sip,dip,dport,proto,l7",
            "" => return Err(StatementError::EmptyQuery),
            other => other,
        };
        let mut set = AttributeSet::default();
        for part in list.split(',') {
            let attr = Attribute::parse(part)
                .ok_or_else(|| StatementError::UnknownAttribute(part.trim().to_string()))?;
            set.insert(attr);
        }
        Ok(set)
    }

    /// Adds `attr` to the set.
    pub fn insert(&mut self, attr: Attribute) {
        match attr {
            Attribute::Time => self.time = true,
            Attribute::Iface => self.iface = true,
            Attribute::Sip => self.sip = true,
            Attribute::Dip => self.dip = true,
            Attribute::Dport => self.dport = true,
            Attribute::Proto => self.proto = true,
            Attribute::L7 => self.l7 = true,
        }
    }

    /// Whether `attr` is in the set.
    pub fn contains(&self, attr: Attribute) -> bool {
        match attr {
            Attribute::Time => self.time,
            Attribute::Iface => self.iface,
            Attribute::Sip => self.sip,
            Attribute::Dip => self.dip,
            Attribute::Dport => self.dport,
            Attribute::Proto => self.proto,
            Attribute::L7 => self.l7,
        }
    }

    /// The attributes in display order.
    pub fn list(&self) -> Vec<Attribute> {
        [
            Attribute::Time,
            Attribute::Iface,
            Attribute::Sip,
            Attribute::Dip,
            Attribute::Dport,
            Attribute::Proto,
            Attribute::L7,
        ]
        .into_iter()
        .filter(|a| self.contains(*a))
        .collect()
    }
}

/// IP protocol numbers and their names, both ways.
const PROTOCOLS: &[(u8, &str)] = &[
    (1, "ICMP"),
    (2, "IGMP"),
    (4, "IPIP"),
    (6, "TCP"),
    (17, "UDP"),
    (41, "IPv6"),
    (47, "GRE"),
    (50, "ESP"),
    (51, "AH"),
    (58, "ICMPv6"),
    (89, "OSPF"),
    (103, "PIM"),
    (112, "VRRP"),
    (132, "SCTP"),
];

/// The usual name of IP protocol `number` (`TCP`, `UDP`, `ICMPv6`, ...), if it has one.
pub fn proto_name(number: u8) -> Option<&'static str> {
    PROTOCOLS
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// The number of IP protocol `name` (case-insensitive; `ipv6-icmp` and `icmp6` are
/// accepted for ICMPv6), or a decimal number from 0 to 255.
pub fn proto_number(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse::<u8>() {
        return Some(n);
    }
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "ipv6-icmp" | "icmp6" => return Some(58),
        "ipencap" | "ip-in-ip" => return Some(4),
        _ => {}
    }
    PROTOCOLS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(&lower))
        .map(|(num, _)| *num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_query_types() {
        let s = AttributeSet::parse("talk_conv").unwrap();
        assert_eq!(s.list(), vec![Attribute::Sip, Attribute::Dip]);
        let s = AttributeSet::parse("apps_dpi").unwrap();
        assert_eq!(s.list(), vec![Attribute::Proto, Attribute::L7]);
        let s = AttributeSet::parse("agg_talk_port").unwrap();
        assert_eq!(s.list().len(), 4);
        let s = AttributeSet::parse("raw").unwrap();
        assert_eq!(s.list().len(), 7);
        assert_eq!(
            AttributeSet::parse("talk_src").unwrap().list(),
            [Attribute::Sip]
        );
        assert_eq!(
            AttributeSet::parse("talk_dst").unwrap().list(),
            [Attribute::Dip]
        );
        let s = AttributeSet::parse("apps_port").unwrap();
        assert_eq!(s.list(), [Attribute::Dport, Attribute::Proto]);
    }

    #[test]
    fn comma_lists_with_aliases() {
        let s = AttributeSet::parse("src, dst,port,protocol,l7,time,iface").unwrap();
        assert_eq!(s.list().len(), 7);
        let s = AttributeSet::parse("DPORT,sip").unwrap();
        assert_eq!(s.list(), vec![Attribute::Sip, Attribute::Dport]);
    }

    #[test]
    fn unknown_attribute_is_named() {
        let e = AttributeSet::parse("sip,dprt").unwrap_err();
        assert_eq!(e.to_string(), "unknown attribute 'dprt' in query type");
        assert!(AttributeSet::parse("talk_foo").is_err());
        assert!(AttributeSet::parse("").is_err());
        assert!(AttributeSet::parse("sip,").is_err());
    }

    #[test]
    fn protocol_names_both_ways() {
        assert_eq!(proto_number("tcp"), Some(6));
        assert_eq!(proto_number("UDP"), Some(17));
        assert_eq!(proto_number("icmp"), Some(1));
        assert_eq!(proto_number("ipv6-icmp"), Some(58));
        assert_eq!(proto_number("47"), Some(47));
        assert_eq!(proto_number("256"), None);
        assert_eq!(proto_number("tpc"), None);
        assert_eq!(proto_name(6), Some("TCP"));
        assert_eq!(proto_name(200), None);
    }
}
