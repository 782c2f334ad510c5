//! Unit tests of the condition parser and evaluator: precedence, negation, every
//! operator and its word forms, every attribute and alias, CIDR edge cases, and errors
//! with their byte positions.

use super::*;
use crate::{Counters, FlowKey, FlowRow};
use std::net::{Ipv4Addr, Ipv6Addr};

fn no_dns(_: &str) -> Option<Vec<IpAddr>> {
    None
}

fn fake_dns(host: &str) -> Option<Vec<IpAddr>> {
    match host {
        "gw.example" => Some(vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            "2001:db8::1".parse().ok()?,
        ]),
        _ => None,
    }
}

fn parse(text: &str) -> Condition {
    match Condition::parse_with(text, &fake_dns) {
        Ok(c) => c,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

fn err(text: &str) -> ConditionError {
    match Condition::parse_with(text, &no_dns) {
        Ok(c) => panic!("{text:?} should fail, parsed as {c}"),
        Err(e) => e,
    }
}

fn row(sip: &str, dip: &str, proto: u8, dport: u16, l7: u16, pr: u64, ps: u64) -> FlowRow {
    FlowRow {
        key: FlowKey {
            sip: sip.parse().unwrap(),
            dip: dip.parse().unwrap(),
            proto,
            dport,
            l7,
        },
        counters: Counters {
            bytes_rcvd: pr * 100,
            bytes_sent: ps * 100,
            pkts_rcvd: pr,
            pkts_sent: ps,
        },
    }
}

fn web() -> FlowRow {
    row("10.1.2.3", "192.0.2.80", 6, 443, 0, 5, 7)
}

fn dns6() -> FlowRow {
    row("2001:db8::5", "2001:db8:1::53", 17, 53, 0, 1, 1)
}

#[test]
fn and_binds_tighter_than_or() {
    let c = parse("dport = 80 | dport = 443 & proto = udp");
    assert_eq!(c.to_string(), "dport = 80 | dport = 443 & proto = udp");
    assert!(matches!(c.root(), Node::Or(v) if v.len() == 2));
    // tcp/443 is matched by neither side of the OR.
    assert!(!c.matches(&web()));
    let c = parse("(dport = 80 | dport = 443) & proto = tcp");
    assert_eq!(c.to_string(), "(dport = 80 | dport = 443) & proto = tcp");
    assert!(c.matches(&web()));
}

#[test]
fn chains_flatten() {
    let c = parse("dport=1 & dport=2 & dport=3 | dport=4 | dport=5");
    match c.root() {
        Node::Or(v) => {
            assert_eq!(v.len(), 3);
            assert!(matches!(&v[0], Node::And(a) if a.len() == 3));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn negation_forms() {
    for text in [
        "!dport = 443",
        "! dport = 443",
        "not dport = 443",
        "NOT dport = 443",
        "!(dport = 443)",
        "not(dport = 443)",
        "not[dport = 443]",
        "not{dport = 443}",
    ] {
        assert!(!parse(text).matches(&web()), "{text}");
        assert!(parse(text).matches(&dns6()), "{text}");
    }
    // Double negation cancels.
    let c = parse("!!dport = 443");
    assert_eq!(c.to_string(), "dport = 443");
    // Negation binds tighter than and.
    let c = parse("!dport = 53 & proto = tcp");
    assert!(c.matches(&web()));
    assert_eq!(c.to_string(), "!dport = 53 & proto = tcp");
    let c = parse("!(dport = 53 | proto = tcp)");
    assert_eq!(c.to_string(), "!(dport = 53 | proto = tcp)");
    assert!(!c.matches(&web()));
    assert!(!c.matches(&dns6()));
}

#[test]
fn connective_word_forms() {
    for text in [
        "dport = 443 and proto = 6",
        "dport = 443 AND proto = 6",
        "dport = 443 && proto = 6",
        "dport = 443 & proto = 6",
    ] {
        assert_eq!(
            parse(text).to_string(),
            "dport = 443 & proto = tcp",
            "{text}"
        );
    }
    for text in [
        "dport = 443 or proto = 6",
        "dport = 443 || proto = 6",
        "dport=443|proto=6",
    ] {
        assert_eq!(
            parse(text).to_string(),
            "dport = 443 | proto = tcp",
            "{text}"
        );
    }
}

#[test]
fn brackets_of_every_kind() {
    for text in [
        "(dport = 443 | dport = 80) & proto = tcp",
        "[dport = 443 | dport = 80] & proto = tcp",
        "{dport = 443 | dport = 80} & proto = tcp",
        "((dport = 443) | {dport = 80}) & [proto = tcp]",
    ] {
        let c = parse(text);
        assert_eq!(c.to_string(), "(dport = 443 | dport = 80) & proto = tcp");
    }
}

#[test]
fn every_operator_and_its_words() {
    let cases: &[(&[&str], u16, bool)] = &[
        (&["=", "==", "===", "eq", "-eq", "equals", "EQ"], 443, true),
        (&["!=", "ne", "-ne", "neq", "-neq"], 443, false),
        (&["<", "lt", "-lt", "l", "less"], 444, true),
        (&["<=", "le", "-le", "leq"], 443, true),
        (&[">", "gt", "-gt", "g", "greater"], 443, false),
        (&[">=", "ge", "-ge", "geq"], 443, true),
    ];
    for (ops, value, expect) in cases {
        for op in *ops {
            let text = format!("dport {op} {value}");
            assert_eq!(parse(&text).matches(&web()), *expect, "{text}");
        }
    }
    // Without spaces.
    assert!(parse("dport>=443").matches(&web()));
    assert!(!parse("dport<443").matches(&web()));
    assert!(parse("dport!=80").matches(&web()));
}

#[test]
fn attribute_aliases() {
    let w = web();
    for text in [
        "sip = 10.1.2.3",
        "src = 10.1.2.3",
        "dip = 192.0.2.80",
        "dst = 192.0.2.80",
        "host = 10.1.2.3",
        "host = 192.0.2.80",
        "dport = 443",
        "port = 443",
        "proto = tcp",
        "protocol = TCP",
        "ipproto = 6",
        "snet = 10.0.0.0/8",
        "dnet = 192.0.2.0/24",
        "net = 10.1.0.0/16",
        "net = 192.0.2.0/25",
        "dir = bi",
        "direction = bidirectional",
        "l7 = unknown",
        "l7 = 0",
    ] {
        assert!(parse(text).matches(&w), "{text}");
    }
    for text in [
        "sip = 192.0.2.80",
        "host = 10.9.9.9",
        "host != 10.1.2.3",
        "net = 172.16.0.0/12",
        "net != 10.0.0.0/8",
        "dir = in",
        "dir = uni",
        "l7 != unknown",
    ] {
        assert!(!parse(text).matches(&w), "{text}");
    }
}

#[test]
fn direction_filters() {
    let only_in = row("10.0.0.1", "10.0.0.2", 17, 53, 0, 3, 0);
    let only_out = row("10.0.0.1", "10.0.0.2", 17, 53, 0, 0, 3);
    let both = row("10.0.0.1", "10.0.0.2", 17, 53, 0, 3, 3);
    let check = |text: &str, expect: [bool; 3]| {
        let c = parse(text);
        let got = [c.matches(&only_in), c.matches(&only_out), c.matches(&both)];
        assert_eq!(got, expect, "{text}");
    };
    check("dir = in", [true, false, false]);
    check("dir = inbound", [true, false, false]);
    check("dir = out", [false, true, false]);
    check("dir = outbound", [false, true, false]);
    check("dir = uni", [true, true, false]);
    check("dir = unidirectional", [true, true, false]);
    check("dir = bi", [false, false, true]);
    check("dir != bi", [true, true, false]);
    check("dport = 53 & dir = out", [false, true, false]);
}

#[test]
fn cidr_edges() {
    let w = web();
    // /0 matches every IPv4 address but no IPv6 address.
    assert!(parse("snet = 0.0.0.0/0").matches(&w));
    assert!(!parse("snet = 0.0.0.0/0").matches(&dns6()));
    assert!(parse("snet = ::/0").matches(&dns6()));
    assert!(!parse("snet = ::/0").matches(&w));
    // /32 and a bare address are the host.
    assert!(parse("snet = 10.1.2.3/32").matches(&w));
    assert!(parse("snet = 10.1.2.3").matches(&w));
    assert!(!parse("snet = 10.1.2.4/32").matches(&w));
    // Host bits in the network are cleared.
    assert!(parse("snet = 10.1.2.200/24").matches(&w));
    assert_eq!(
        parse("snet = 10.1.2.200/24").to_string(),
        "snet = 10.1.2.0/24"
    );
    // Boundaries of an odd prefix.
    assert!(parse("snet = 10.1.2.0/31").matches(&row("10.1.2.1", "10.0.0.1", 6, 1, 0, 1, 1)));
    assert!(!parse("snet = 10.1.2.0/31").matches(&row("10.1.2.2", "10.0.0.1", 6, 1, 0, 1, 1)));
    // IPv6 prefixes.
    assert!(parse("snet = 2001:db8::/32").matches(&dns6()));
    assert!(parse("dnet = 2001:db8:1::/48").matches(&dns6()));
    assert!(!parse("dnet = 2001:db8:2::/48").matches(&dns6()));
    assert!(parse("snet = 2001:db8::5/128").matches(&dns6()));
    assert!(parse("net = 2001:db8:1::/64").matches(&dns6()));
    // A CIDR given to sip is a network test.
    assert!(parse("sip = 10.0.0.0/8").matches(&w));
    // Bad prefixes.
    assert!(matches!(
        err("snet = 10.0.0.0/33").kind,
        K::InvalidValue { .. }
    ));
    assert!(matches!(err("snet = ::/129").kind, K::InvalidValue { .. }));
    assert!(matches!(
        err("snet = 10.0.0.0/").kind,
        K::InvalidValue { .. }
    ));
    assert!(matches!(
        err("snet = 10.0.0.0/x").kind,
        K::InvalidValue { .. }
    ));
    assert!(matches!(
        err("snet = 10.0.0/8").kind,
        K::InvalidValue { .. }
    ));
}

#[test]
fn ipv6_and_mixed_versions() {
    assert!(parse("sip = 2001:db8::5").matches(&dns6()));
    assert!(parse("dip = 2001:db8:1::53").matches(&dns6()));
    assert!(!parse("sip = 2001:db8::5").matches(&web()));
    // An IPv4 address never equals an IPv6 row, even a mapped one.
    let mapped = row("::ffff:10.1.2.3", "::ffff:192.0.2.80", 6, 443, 0, 1, 1);
    assert!(!parse("sip = 10.1.2.3").matches(&mapped));
}

#[test]
fn hostnames_resolve_to_all_addresses() {
    let c = parse("host = gw.example");
    assert_eq!(c.to_string(), "sip = gw.example | dip = gw.example");
    assert!(c.matches(&row("10.0.0.1", "10.0.0.9", 6, 1, 0, 1, 1)));
    assert!(c.matches(&row("2001:db8::7", "2001:db8::1", 6, 1, 0, 1, 1)));
    assert!(!c.matches(&web()));
    let e = err("dip = no.such.host");
    assert_eq!(e.position, 6);
    assert_eq!(
        e.to_string(),
        "cannot resolve hostname 'no.such.host' at position 6"
    );
    assert!(matches!(
        err("sip = 10.0.0.1:80").kind,
        K::InvalidValue { .. }
    ));
}

#[test]
fn protocol_and_l7_values() {
    assert!(parse("proto = UDP").matches(&dns6()));
    assert!(parse("proto = 17").matches(&dns6()));
    assert!(parse("proto < 17").matches(&web()));
    assert!(matches!(err("proto = tpc").kind, K::InvalidValue { .. }));
    assert!(matches!(err("proto = 300").kind, K::InvalidValue { .. }));
    assert!(matches!(err("dport = 65536").kind, K::InvalidValue { .. }));
    assert!(matches!(err("dport = -1").kind, K::InvalidValue { .. }));
    assert!(matches!(
        err("l7 = no-such-protocol").kind,
        K::InvalidValue { .. }
    ));
}

#[test]
fn operators_not_allowed_on_addresses() {
    for text in [
        "sip < 10.0.0.1",
        "snet >= 10.0.0.0/8",
        "l7 > 1",
        "dir <= in",
        "host gt 1.1.1.1",
    ] {
        let e = err(text);
        assert!(
            matches!(e.kind, K::OperatorNotAllowed { .. }),
            "{text}: {e}"
        );
    }
    let e = err("sip < 10.0.0.1");
    assert_eq!(e.position, 4);
    assert_eq!(
        e.to_string(),
        "operator '<' cannot be used with 'sip' at position 4"
    );
}

#[test]
fn error_positions() {
    let e = err("dport = 80 & dprt = 1");
    assert_eq!(e.position, 13);
    assert_eq!(e.to_string(), "unknown attribute 'dprt' at position 13");
    let e = err("proto = 6 & dprt = 80");
    assert_eq!(e.to_string(), "unknown attribute 'dprt' at position 12");

    let e = err("");
    assert_eq!(e.kind, K::Empty);
    assert_eq!(err("   ").kind, K::Empty);

    let e = err("dport 80");
    assert_eq!(
        (e.position, e.kind.clone()),
        (6, K::ExpectedOperator("80".into()))
    );
    let e = err("dport");
    assert_eq!(
        (e.position, e.kind),
        (5, K::ExpectedOperator("end of input".into()))
    );
    let e = err("dport =");
    assert_eq!((e.position, e.kind), (7, K::ExpectedValue));
    let e = err("dport = & proto = 6");
    assert_eq!((e.position, e.kind), (8, K::ExpectedValue));
    let e = err("(dport = 80");
    assert_eq!((e.position, e.kind), (0, K::Unclosed));
    let e = err("dport = 80)");
    assert_eq!((e.position, e.kind), (10, K::UnexpectedClose(')')));
    let e = err("(dport = 80]");
    assert_eq!((e.position, e.kind), (11, K::UnexpectedClose(']')));
    let e = err("dport = 80 &");
    assert_eq!(e.position, 12);
    assert!(matches!(e.kind, K::ExpectedCondition(_)));
    let e = err("dport = 80 | | proto = 6");
    assert_eq!(e.position, 13);
    let e = err("dport = 80 proto = 6");
    assert_eq!((e.position, e.kind), (11, K::Trailing("proto".into())));
    let e = err("= 80");
    assert_eq!(e.position, 0);
    let e = err("dport = abc");
    assert_eq!(e.position, 8);
    assert_eq!(
        e.to_string(),
        "invalid value 'abc' for 'dport': expected a port number from 0 to 65535 at position 8"
    );
}

#[test]
fn columns_needed() {
    let c = parse("sip = 1.2.3.4 | dport = 80 & dir = in");
    let n = c.columns();
    assert!(n.sip && n.dport && n.packets);
    assert!(!n.dip && !n.proto && !n.l7);
    let n = parse("host = 1.2.3.4").columns();
    assert!(n.sip && n.dip);
}

#[test]
fn vectorised_eval_matches_row_eval() {
    let rows = [
        web(),
        row("10.1.2.4", "192.0.2.81", 17, 53, 0, 1, 0),
        row("172.16.0.1", "192.0.2.80", 6, 80, 0, 0, 2),
        dns6(),
        row("2001:db8::9", "2001:db8:1::80", 6, 443, 0, 4, 4),
    ];
    let texts = [
        "dport = 443 | snet = 172.16.0.0/12",
        "!(proto = udp) & (dir = bi | dip = 192.0.2.80)",
        "net = 2001:db8::/32 & dport >= 100",
        "host = 10.1.2.4 or port lt 60",
    ];
    let v4: Vec<&FlowRow> = rows.iter().filter(|r| r.key.sip.is_ipv4()).collect();
    let v6: Vec<&FlowRow> = rows.iter().filter(|r| r.key.sip.is_ipv6()).collect();
    let ordered: Vec<&FlowRow> = v4.iter().chain(v6.iter()).copied().collect();
    let oct4 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => [0; 4],
    };
    let oct6 = |ip: IpAddr| match ip {
        IpAddr::V6(a) => a.octets(),
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED.octets(),
    };
    let sip4: Vec<[u8; 4]> = v4.iter().map(|r| oct4(r.key.sip)).collect();
    let dip4: Vec<[u8; 4]> = v4.iter().map(|r| oct4(r.key.dip)).collect();
    let sip6: Vec<[u8; 16]> = v6.iter().map(|r| oct6(r.key.sip)).collect();
    let dip6: Vec<[u8; 16]> = v6.iter().map(|r| oct6(r.key.dip)).collect();
    let dport: Vec<u16> = ordered.iter().map(|r| r.key.dport).collect();
    let proto: Vec<u8> = ordered.iter().map(|r| r.key.proto).collect();
    let l7: Vec<u16> = ordered.iter().map(|r| r.key.l7).collect();
    let pr: Vec<u64> = ordered.iter().map(|r| r.counters.pkts_rcvd).collect();
    let ps: Vec<u64> = ordered.iter().map(|r| r.counters.pkts_sent).collect();
    let cols = Cols {
        rows: ordered.len(),
        rows_v4: v4.len(),
        sip4: &sip4,
        sip6: &sip6,
        dip4: &dip4,
        dip6: &dip6,
        dport: &dport,
        proto: &proto,
        l7: &l7,
        pkts_rcvd: &pr,
        pkts_sent: &ps,
    };
    for text in texts {
        let c = parse(text);
        let mut out = Vec::new();
        c.eval(&cols, &mut out, &mut Vec::new());
        let want: Vec<bool> = ordered.iter().map(|r| c.matches(r)).collect();
        assert_eq!(out, want, "{text}");
        assert!(
            want.contains(&true) && want.contains(&false),
            "{text} should split the rows"
        );
    }
}

/// Port-guess names (`dns?`) are values of their own: `l7 = dns` is the payload
/// detection only, `l7 = dns?` the port guess only, as the output labels them.
#[test]
fn l7_port_guess_names_with_question_mark() {
    use crate::l7;
    let dns = l7::id("dns").unwrap();
    let detected = row("10.0.0.1", "10.0.0.53", 17, 53, dns, 1, 1);
    let guessed = row("10.0.0.1", "10.0.0.53", 17, 53, l7::port_guess(dns), 1, 1);
    let c = parse("l7 = dns?");
    assert!(c.matches(&guessed) && !c.matches(&detected));
    assert_eq!(c.to_string(), "l7 = dns?");
    let c = parse("l7 = dns");
    assert!(c.matches(&detected) && !c.matches(&guessed));
    let c = parse("l7 != dns?");
    assert!(!c.matches(&guessed) && c.matches(&detected));
    // `?` needs no spaces around it and ends at the next delimiter.
    for text in [
        "l7=dns?&proto=udp",
        "(l7 = DNS?)",
        "[l7 eq dns?] and dport = 53",
        "l7 = dns? | l7 = tls",
        "not l7 != dns?",
    ] {
        assert!(parse(text).matches(&guessed), "{text}");
        assert!(!parse(text).matches(&detected), "{text}");
    }
    let c = parse("l7 = dns | l7 = dns?");
    assert!(c.matches(&guessed) && c.matches(&detected));
    // The guess id as a number works too.
    let n = l7::port_guess(dns).to_string();
    assert!(parse(&format!("l7 = {n}")).matches(&guessed));
    // Errors point at the value.
    for (text, pos) in [("l7 = nosuch?", 5), ("l7 = ?", 5), ("l7 = dns??", 5)] {
        let e = err(text);
        assert!(matches!(e.kind, K::InvalidValue { .. }), "{text}: {e}");
        assert_eq!(e.position, pos, "{text}");
    }
}
