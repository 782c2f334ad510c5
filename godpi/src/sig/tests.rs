//! Signature tests: real packets of nDPI's test captures (positive, one flow per
//! protocol in `fixtures.rs`), every fixture replayed at every other protocol's ports
//! (negative), pseudo-random payloads, and hand-made near misses.

use super::fixtures::{Flow, ALL};
use super::*;
use crate::L7State;

fn run(proto: u8, cport: u16, sport: u16, p: &[u8]) -> Verdict {
    classify(&Ctx {
        proto,
        client_port: cport,
        server_port: sport,
        payload: p,
        own_first: None,
        other: None,
    })
}

/// Replays `packets` at the given ports and returns the flow's label.
fn label(proto: u8, cport: u16, sport: u16, packets: &[(bool, &[u8])]) -> u16 {
    let mut st = L7State::default();
    for (from_client, p) in packets {
        st.observe(*from_client, proto, cport, sport, p);
    }
    st.label(proto, cport, sport)
}

fn label_of(f: &Flow) -> u16 {
    label(f.proto, f.cport, f.sport, f.packets)
}

#[test]
fn every_real_fixture_is_detected() {
    assert!(ALL.len() >= 55, "fixtures for most protocols");
    let mut wrong = Vec::new();
    for f in ALL {
        let got = label_of(f);
        if got != f.id {
            wrong.push(format!("{}: got {:?}", f.name, l7::name(got)));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn fixtures_are_not_taken_for_another_protocol_at_its_ports() {
    let mut wrong = Vec::new();
    for f in ALL {
        for g in ALL {
            // The DNS family shares one wire format, told apart by port.
            let dns_family = [l7::DNS, l7::MDNS, l7::LLMNR, l7::NETBIOS];
            if g.id == f.id || (dns_family.contains(&g.id) && dns_family.contains(&f.id)) {
                continue;
            }
            let got = label(g.proto, f.cport, f.sport, g.packets);
            if got == f.id {
                wrong.push(format!("{} traffic at {} ports", g.name, f.name));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn detection_survives_reversed_orientation() {
    // Flows seen from the middle may be oriented backwards: the label must not
    // depend on which side the flow table calls the client, except for the few
    // signatures that need the client's first packet.
    let mut wrong = Vec::new();
    for f in ALL {
        let reversed: Vec<(bool, &[u8])> = f.packets.iter().map(|&(c, p)| (!c, p)).collect();
        let got = label(f.proto, f.sport, f.cport, &reversed);
        if got != f.id {
            wrong.push(f.name);
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// A small deterministic generator for pseudo-random payloads.
fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (*seed >> 33) as u8
        })
        .collect()
}

#[test]
fn random_payloads_are_rarely_detected() {
    let mut seed = 7;
    let (mut detected, mut total) = (0, 0);
    for f in ALL {
        for len in [1, 4, 13, 20, 48, 100, 300, 1200] {
            let a = noise(&mut seed, len);
            let b = noise(&mut seed, len);
            let got = label(f.proto, f.cport, f.sport, &[(true, &a), (false, &b)]);
            total += 1;
            if got != l7::UNKNOWN && !l7::is_port_guess(got) {
                eprintln!(
                    "random {len} bytes at {} ports: {:?}",
                    f.name,
                    l7::name(got)
                );
                detected += 1;
            }
        }
    }
    // Single-packet shapes like RTP or a DNS header occur by chance now and then,
    // but must stay rare.
    assert!(
        detected * 100 <= total,
        "{detected} of {total} random flows detected"
    );
}

#[test]
fn truncated_and_empty_payloads_never_panic() {
    for f in ALL {
        for (_, p) in f.packets {
            for cut in 0..p.len().min(64) {
                let _ = run(f.proto, f.cport, f.sport, &p[..cut]);
                let _ = run(f.proto, f.sport, f.cport, &p[cut..]);
            }
        }
    }
}

#[test]
fn http_family_request_lines() {
    assert_eq!(
        run(TCP, 1, 80, b"GET / HTTP/1.1\r\nHost: x\r\n"),
        Strong(l7::HTTP)
    );
    assert_eq!(run(TCP, 1, 80, b"HTTP/1.1 301 Moved\r\n"), Strong(l7::HTTP));
    assert_eq!(run(TCP, 1, 80, b"GETX / HTTP/1.1\r\n"), Verdict::None);
    assert_eq!(
        run(TCP, 1, 554, b"OPTIONS rtsp://h/x RTSP/1.0\r\n"),
        Strong(l7::RTSP)
    );
    assert_eq!(
        run(UDP, 1, 5060, b"OPTIONS sip:a@b SIP/2.0\r\n"),
        Strong(l7::SIP)
    );
    assert_eq!(
        run(UDP, 1, 1900, b"M-SEARCH * HTTP/1.1\r\n"),
        Strong(l7::SSDP)
    );
    // HTTP over UDP that is not SSDP-shaped is nothing.
    assert_eq!(run(UDP, 1, 80, b"GET / HTTP/1.1\r\n"), Verdict::None);
}

#[test]
fn tls_record_checks() {
    let hello = [
        0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
    ];
    assert_eq!(run(TCP, 1, 9999, &hello), Strong(l7::TLS));
    let mut bad_version = hello;
    bad_version[1] = 0x02;
    assert_eq!(run(TCP, 1, 9999, &bad_version), Verdict::None);
    let mut zero_len = hello;
    zero_len[3] = 0;
    zero_len[4] = 0;
    assert_eq!(run(TCP, 1, 9999, &zero_len), Verdict::None);
    // Application data alone is only weak; two records confirm it.
    let data = [0x17, 0x03, 0x03, 0x00, 0x20, 0xaa];
    assert_eq!(run(TCP, 1, 9999, &data), Weak(l7::TLS));
    assert_eq!(
        label(TCP, 1, 9999, &[(true, &data), (false, &data)]),
        l7::TLS
    );
}

#[test]
fn dns_needs_a_parsable_question() {
    let q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03com\x00\x00\x01\x00\x01";
    assert_eq!(run(UDP, 40000, 53, q), Strong(l7::DNS));
    assert_eq!(run(UDP, 5353, 5353, q), Strong(l7::MDNS));
    assert_eq!(run(UDP, 40000, 5355, q), Strong(l7::LLMNR));
    assert_eq!(run(UDP, 40000, 40001, q), Strong(l7::DNS));
    // Truncated name, bad label length, too many questions: nothing away from the
    // DNS ports, at most a weak hint (a sane header) on port 53.
    assert_eq!(run(UDP, 40000, 40001, &q[..20]), Verdict::None);
    assert_eq!(run(UDP, 40000, 53, &q[..20]), Weak(l7::DNS));
    let mut bad = q.to_vec();
    bad[12] = 70;
    assert_eq!(run(UDP, 40000, 40001, &bad), Verdict::None);
    let mut many = q.to_vec();
    many[5] = 9;
    assert_eq!(run(UDP, 40000, 53, &many), Verdict::None);
    // An undecided flow reports its weak hint; two agreeing packets decide it.
    assert_eq!(label(UDP, 40000, 53, &[(true, &q[..20])]), l7::DNS);
    assert_eq!(
        label(UDP, 40000, 53, &[(true, &bad), (false, &bad)]),
        l7::DNS
    );
    // Over TCP with the 2-byte length prefix.
    let mut tcp = vec![0, q.len() as u8];
    tcp.extend_from_slice(q);
    assert_eq!(run(TCP, 40000, 53, &tcp), Strong(l7::DNS));
}

#[test]
fn rtp_needs_a_second_packet_with_the_same_ssrc() {
    let a = [
        0x80, 0x08, 0, 1, 0, 0, 0, 160, 0xde, 0xad, 0xbe, 0xef, 0x55, 0x55,
    ];
    let b = [
        0x80, 0x08, 0, 2, 0, 0, 1, 64, 0xde, 0xad, 0xbe, 0xef, 0x55, 0x55,
    ];
    let mut other = b;
    other[8] = 0x11;
    assert_eq!(label(UDP, 30000, 30002, &[(true, &a)]), l7::UNKNOWN);
    assert_eq!(label(UDP, 30000, 30002, &[(true, &a), (true, &b)]), l7::RTP);
    assert_eq!(
        label(UDP, 30000, 30002, &[(true, &a), (true, &other)]),
        l7::UNKNOWN
    );
}

#[test]
fn stun_switches_to_dtls() {
    let stun = [
        0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    let dtls = [
        0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0,
    ];
    assert_eq!(
        label(UDP, 5000, 6000, &[(true, &stun), (false, &stun)]),
        l7::STUN
    );
    assert_eq!(
        label(
            UDP,
            5000,
            6000,
            &[(true, &stun), (false, &stun), (true, &dtls)]
        ),
        l7::DTLS
    );
}

#[test]
fn openvpn_client_reset_alone_is_not_enough() {
    let reset = [0x38, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0];
    let server = [
        0x40, 9, 9, 9, 9, 9, 9, 9, 9, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
    ];
    assert_eq!(label(UDP, 40000, 40001, &[(true, &reset)]), l7::UNKNOWN);
    assert_eq!(
        label(UDP, 40000, 40001, &[(true, &reset), (false, &server)]),
        l7::OPENVPN
    );
    // An ONC RPC reply echoing the call's first bytes does not confirm it.
    assert_eq!(
        label(UDP, 40000, 40001, &[(true, &reset), (false, &reset)]),
        l7::UNKNOWN
    );
}

#[test]
fn mutated_real_packets_never_panic() {
    // Real packets with random bytes overwritten and random cuts reach the deep
    // branches of every signature (length fields, name walks, option chains).
    let mut seed = 11;
    for f in ALL {
        for (_, p) in f.packets {
            for _ in 0..150 {
                let mut m = p.to_vec();
                let r = noise(&mut seed, 8);
                for k in 0..(r[0] % 4) as usize {
                    if !m.is_empty() {
                        let at = usize::from(r[1 + k]) * m.len() / 256;
                        m[at] = r[5 + k % 3];
                    }
                }
                let cut = m.len() * usize::from(r[7]) / 255;
                let m = &m[..cut.max(m.len().min(1))];
                let mut st = L7State::default();
                st.observe(true, f.proto, f.cport, f.sport, m);
                st.observe(false, f.proto, f.cport, f.sport, p);
                st.observe(true, f.proto, f.cport, f.sport, m);
                let _ = st.label(f.proto, f.cport, f.sport);
            }
        }
    }
}
