//! Layer-7 accuracy against nDPI: replays every capture of nDPI's test suite
//! (`../shared/pcaps/ndpi`) through goflow's `FlowTable` (which classifies each
//! connection with `godpi::L7State`), matches each connection to
//! nDPI's expected flow line (`../shared/pcaps/ndpi-results/NAME.out`) by 5-tuple in
//! either orientation, and measures per-protocol precision and recall and the overall
//! agreement by flows and by bytes. The test asserts the targets of issue 5 (or the
//! measured floor where a target is not met yet, reported honestly in `docs/L7.md`).
//!
//! `GOPROBE_WRITE_L7_DOC=1 cargo test -p goflow --test l7_accuracy -- --nocapture`
//! rewrites the measured part of `docs/L7.md`.
//!
//! Ground truth: nDPI flows whose confidence is a payload inspection (`DPI`, `DPI
//! (cache)`, `DPI (partial)`, ...). nDPI's own port and IP-address matches are guesses
//! and are not used as truth.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use godb::l7;

/// nDPI master protocol names and the godb l7 id they correspond to. nDPI splits
/// some of our protocols by port or variant (IMAPS is TLS on 993, SMBv1/SMBv23, ...).
const NDPI_MAP: &[(&str, u16)] = &[
    ("HTTP", l7::HTTP),
    ("HTTP_Proxy", l7::HTTP),
    ("HTTP_Connect", l7::HTTP),
    ("TLS", l7::TLS),
    ("IMAPS", l7::TLS),
    ("POPS", l7::TLS),
    ("POP3S", l7::TLS),
    ("SMTPS", l7::TLS),
    ("FTPS", l7::TLS),
    ("LDAPS", l7::TLS),
    ("DoH_DoT", l7::TLS),
    ("QUIC", l7::QUIC),
    ("SSH", l7::SSH),
    ("DNS", l7::DNS),
    ("MDNS", l7::MDNS),
    ("LLMNR", l7::LLMNR),
    ("NetBIOS", l7::NETBIOS),
    ("DHCP", l7::DHCP),
    ("DHCPV6", l7::DHCPV6),
    ("NTP", l7::NTP),
    ("SNMP", l7::SNMP),
    ("Syslog", l7::SYSLOG),
    ("SMTP", l7::SMTP),
    ("POP3", l7::POP3),
    ("IMAP", l7::IMAP),
    ("FTP_CONTROL", l7::FTP),
    ("SMBv1", l7::SMB),
    ("SMBv23", l7::SMB),
    ("Kerberos", l7::KERBEROS),
    ("LDAP", l7::LDAP),
    ("RDP", l7::RDP),
    ("SIP", l7::SIP),
    ("RTP", l7::RTP),
    ("RTCP", l7::RTCP),
    ("RTSP", l7::RTSP),
    ("STUN", l7::STUN),
    ("BitTorrent", l7::BITTORRENT),
    ("OpenVPN", l7::OPENVPN),
    ("WireGuard", l7::WIREGUARD),
    ("IPSec", l7::IKE),
    ("MySQL", l7::MYSQL),
    ("PostgreSQL", l7::POSTGRESQL),
    ("Redis", l7::REDIS),
    ("MongoDB", l7::MONGODB),
    ("Memcached", l7::MEMCACHED),
    ("MQTT", l7::MQTT),
    ("AMQP", l7::AMQP),
    ("Jabber", l7::XMPP),
    ("IRC", l7::IRC),
    ("Telnet", l7::TELNET),
    ("SSDP", l7::SSDP),
    ("Modbus", l7::MODBUS),
    ("DTLS", l7::DTLS),
    ("Radius", l7::RADIUS),
    ("TFTP", l7::TFTP),
    ("BGP", l7::BGP),
    ("Service_Location_Protocol", l7::SLP),
    ("MsSQL-TDS", l7::TDS),
    ("VNC", l7::VNC),
    ("SOCKS", l7::SOCKS),
    ("DCERPC", l7::DCERPC),
    ("DNP3", l7::DNP3),
    ("BACnet", l7::BACNET),
    ("Zabbix", l7::ZABBIX),
    ("IEC60870", l7::IEC104),
    ("COAP", l7::COAP),
    ("NAT-PMP", l7::NATPMP),
    ("RESP", l7::REDIS),
    ("DNScrypt", l7::DNSCRYPT),
    // Avast's SecureDNS is a DNSCrypt resolver (certificate query `2.securedns.avast.com`).
    ("AVASTSecureDNS", l7::DNSCRYPT),
    ("Gnutella", l7::GNUTELLA),
    ("NFS", l7::NFS),
];

/// nDPI names for protocols that start in clear text and switch to TLS (STARTTLS):
/// nDPI reports the TLS variant, the clear-text start is as right an answer.
const NDPI_ALSO: &[(&str, u16)] = &[
    ("SMTPS", l7::SMTP),
    ("POPS", l7::POP3),
    ("POP3S", l7::POP3),
    ("IMAPS", l7::IMAP),
    ("FTPS", l7::FTP),
    ("LDAPS", l7::LDAP),
];

/// Whether our id `id` is a right answer for nDPI's flow: its master protocol, or its
/// application protocol when that is one of ours (nDPI files SMB under NetBIOS:
/// `NetBIOS.SMBv23`).
fn agrees_flow(n: &NdpiFlow, id: u16) -> bool {
    agrees(&n.master, id) || (!n.app.is_empty() && ndpi_id(&n.app) == Some(id))
}

/// Whether our id `id` is a right answer for nDPI master `master`.
fn agrees(master: &str, id: u16) -> bool {
    ndpi_id(master) == Some(id) || NDPI_ALSO.iter().any(|&(n, i)| n == master && i == id)
}

fn ndpi_id(master: &str) -> Option<u16> {
    NDPI_MAP
        .iter()
        .find(|(n, _)| *n == master)
        .map(|&(_, id)| id)
}

/// One flow line of nDPI's expected output.
#[derive(Debug, Clone)]
struct NdpiFlow {
    master: String,
    /// nDPI's application protocol (after the dot), if any.
    app: String,
    /// Whether nDPI's confidence is a payload inspection.
    dpi: bool,
    bytes: u64,
}

/// A connection key independent of orientation: (proto, lower endpoint, higher one).
type Key = (u8, (IpAddr, u16), (IpAddr, u16));

fn key(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16)) -> Key {
    if a <= b {
        (proto, a, b)
    } else {
        (proto, b, a)
    }
}

fn parse_endpoint(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some((ip.parse().ok()?, port.parse().ok()?))
}

fn parse_bytes(line: &str) -> u64 {
    // "[N pkts/B bytes <-> N pkts/B bytes]" or "... -> ..."
    let mut total = 0;
    for part in line.split(" bytes").take(2) {
        if let Some(n) = part
            .rsplit('/')
            .next()
            .and_then(|n| n.trim().parse::<u64>().ok())
        {
            total += n;
        }
    }
    total
}

/// Parses nDPI's flow lines (TCP and UDP only).
fn parse_ndpi(text: &str) -> HashMap<Key, NdpiFlow> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(_n), Some(proto), Some(a), Some(_arrow), Some(b)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let proto = match proto {
            "TCP" => 6,
            "UDP" => 17,
            _ => continue,
        };
        let (Some(a), Some(b)) = (parse_endpoint(a), parse_endpoint(b)) else {
            continue;
        };
        let Some(p) = line.find("[proto: ") else {
            continue;
        };
        let rest = &line[p + 8..];
        let Some(slash) = rest.find('/') else {
            continue;
        };
        let name = &rest[slash + 1..rest.find(']').unwrap_or(rest.len())];
        let (master, app) = match name.split_once('.') {
            Some((m, a)) => (m.to_string(), a.to_string()),
            None => (name.to_string(), String::new()),
        };
        let dpi = line
            .find("[Confidence: ")
            .is_some_and(|i| line[i + 13..].starts_with("DPI"));
        let bytes = line
            .find(" pkts/")
            .map(|i| parse_bytes(&line[i..]))
            .unwrap_or(0);
        out.entry(key(proto, a, b)).or_insert(NdpiFlow {
            master,
            app,
            dpi,
            bytes,
        });
    }
    out
}

/// Our result for one connection.
struct Ours {
    label: u16,
}

/// Counts for one protocol.
#[derive(Default, Clone, Copy)]
struct Counts {
    /// nDPI (DPI confidence) says X and we detect X.
    tp: u64,
    /// nDPI (DPI confidence) says X (flows).
    truth: u64,
    /// We detect X and nDPI (DPI confidence) has a label.
    ours: u64,
    /// We detect X and nDPI agrees (X may differ from nDPI's own class, e.g. smb for
    /// `NetBIOS.SMBv23`, so this is not always `tp`).
    ours_right: u64,
    truth_bytes: u64,
    tp_bytes: u64,
}

#[derive(Default)]
struct Totals {
    per: BTreeMap<u16, Counts>,
    /// Matched flows, all confidences.
    matched: u64,
    /// nDPI flow lines (TCP/UDP) and how many we found.
    ndpi_flows: u64,
    /// Flows with a truth label we classify.
    truth: u64,
    truth_bytes: u64,
    agree: u64,
    agree_bytes: u64,
    /// Truth flows where our port guess names the right protocol.
    guess_right: u64,
    /// Our detections where nDPI has a DPI-confidence label, and how many of those
    /// nDPI calls something else.
    detections_vs_dpi: u64,
    contradicted: u64,
    contradicted_bytes: u64,
    detections_vs_dpi_bytes: u64,
    /// Our detections where nDPI found nothing, in all and by our name.
    detected_ndpi_unknown: u64,
    unknown_by_ours: BTreeMap<String, u64>,
    /// Contradictions by (our name, nDPI name).
    confusions: BTreeMap<(String, String), u64>,
    /// Truth flows we missed, by (nDPI name, our name).
    misses: BTreeMap<(String, String), u64>,
    /// Up to three example flows per miss or contradiction ("file proto a b").
    examples: BTreeMap<(String, String), Vec<String>>,
    files: u64,
    unreadable: u64,
}

fn pcaps_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/pcaps")).to_path_buf()
}

fn example(t: &mut Totals, pair: (String, String), file: &str, k: &Key) {
    let v = t.examples.entry(pair).or_default();
    if v.len() < 3 {
        v.push(format!("{file} {} {:?} {:?}", k.0, k.1, k.2));
    }
}

fn evaluate(t: &mut Totals, file: &str, ndpi: &HashMap<Key, NdpiFlow>, ours: &HashMap<Key, Ours>) {
    t.ndpi_flows += ndpi.len() as u64;
    for (k, n) in ndpi {
        let Some(o) = ours.get(k) else {
            continue;
        };
        t.matched += 1;
        let truth_id = if n.dpi { ndpi_id(&n.master) } else { None };
        let detected = (o.label != l7::UNKNOWN && !l7::is_port_guess(o.label)).then_some(o.label);
        if let Some(tid) = truth_id {
            let c = t.per.entry(tid).or_default();
            c.truth += 1;
            c.truth_bytes += n.bytes;
            t.truth += 1;
            t.truth_bytes += n.bytes;
            if detected.is_some_and(|d| agrees_flow(n, d)) {
                c.tp += 1;
                c.tp_bytes += n.bytes;
                t.agree += 1;
                t.agree_bytes += n.bytes;
            } else {
                if l7::is_port_guess(o.label) && l7::base(o.label) == tid {
                    t.guess_right += 1;
                }
                let ours_name = l7::name(o.label).unwrap_or("?").to_string();
                example(t, (n.master.clone(), ours_name.clone()), file, k);
                *t.misses.entry((n.master.clone(), ours_name)).or_default() += 1;
            }
        }
        if let Some(d) = detected {
            if n.dpi && n.master != "Unknown" {
                let right = truth_id.is_some() && agrees_flow(n, d);
                let e = t.per.entry(d).or_default();
                e.ours += 1;
                e.ours_right += u64::from(right);
                t.detections_vs_dpi += 1;
                t.detections_vs_dpi_bytes += n.bytes;
                if !right {
                    t.contradicted += 1;
                    t.contradicted_bytes += n.bytes;
                    let ours_name = l7::name(d).unwrap_or("?").to_string();
                    example(t, (n.master.clone(), ours_name.clone()), file, k);
                    *t.confusions
                        .entry((ours_name, n.master.clone()))
                        .or_default() += 1;
                }
            } else if n.master == "Unknown" {
                t.detected_ndpi_unknown += 1;
                let ours_name = l7::name(d).unwrap_or("?").to_string();
                example(t, ("Unknown".to_string(), ours_name.clone()), file, k);
                *t.unknown_by_ours.entry(ours_name).or_default() += 1;
            }
        }
    }
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// A percentage for the per-protocol table, "-" when there is nothing to count.
fn share(a: u64, b: u64) -> String {
    if b == 0 {
        "-".to_string()
    } else {
        format!("{:.1}%", pct(a, b))
    }
}

fn report(t: &Totals) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Captures replayed: {} ({} unreadable). nDPI TCP/UDP flow lines: {}, matched to our \
         connections by 5-tuple: {}.\n\n",
        t.files, t.unreadable, t.ndpi_flows, t.matched
    ));
    s.push_str("| figure | value |\n| --- | --- |\n");
    s.push_str(&format!(
        "| flows whose nDPI master (DPI confidence) is one we classify | {} |\n",
        t.truth
    ));
    s.push_str(&format!(
        "| agreement by flows | {:.2}% ({} of {}) |\n",
        pct(t.agree, t.truth),
        t.agree,
        t.truth
    ));
    s.push_str(&format!(
        "| agreement by bytes | {:.2}% |\n",
        pct(t.agree_bytes, t.truth_bytes)
    ));
    s.push_str(&format!(
        "| of the rest: right port guess (`x?`, not counted as agreement) | {} |\n",
        t.guess_right
    ));
    s.push_str(&format!(
        "| our detections that nDPI (DPI confidence) calls something else | {:.2}% ({} of {}); by bytes {:.2}% |\n",
        pct(t.contradicted, t.detections_vs_dpi),
        t.contradicted,
        t.detections_vs_dpi,
        pct(t.contradicted_bytes, t.detections_vs_dpi_bytes)
    ));
    s.push_str(&format!(
        "| our detections where nDPI found nothing | {} |\n\n",
        t.detected_ndpi_unknown
    ));
    s.push_str("| protocol | nDPI flows | agree | recall | our detections | precision |\n");
    s.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (id, c) in &t.per {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            l7::name(*id).unwrap_or("?"),
            c.truth,
            c.tp,
            share(c.tp, c.truth),
            c.ours,
            share(c.ours_right, c.ours)
        ));
    }
    s.push_str("\nDisagreements (our detection / nDPI master: flows):\n\n");
    for ((o, n), k) in &t.confusions {
        s.push_str(&format!("- {o} / {n}: {k}\n"));
    }
    s.push_str("\nOur detections where nDPI found nothing (our label: flows):\n\n");
    for (o, k) in &t.unknown_by_ours {
        s.push_str(&format!("- {o}: {k}\n"));
    }
    s.push_str("\nMisses (nDPI master / our label: flows):\n\n");
    for ((n, o), k) in &t.misses {
        s.push_str(&format!("- {n} / {o}: {k}\n"));
    }
    s
}

/// Replays one capture through goflow's flow table into per-connection labels,
/// `None` if it cannot be read.
fn replay(path: &Path) -> Option<HashMap<Key, Ours>> {
    let mut cap = pcap::Capture::from_file(path).ok()?;
    let link = goflow::LinkType::from_dlt(cap.get_datalink().0);
    let mut table = goflow::FlowTable::new();
    while let Ok(pkt) = cap.next_packet() {
        table.add_packet(link, pkt.data, pkt.header.len, pkt.header.ts.tv_sec);
    }
    Some(
        table
            .connections()
            .map(|c| {
                let k = key(
                    c.proto,
                    (c.client, c.client_port),
                    (c.server, c.server_port),
                );
                (k, Ours { label: c.l7 })
            })
            .collect(),
    )
}

type Replayed = (HashMap<Key, NdpiFlow>, HashMap<Key, Ours>);

fn run_file(path: &Path, results: &Path) -> Option<Replayed> {
    let name = path.file_name()?.to_str()?;
    let text = std::fs::read(results.join(format!("{name}.out"))).ok()?;
    let ndpi = parse_ndpi(&String::from_utf8_lossy(&text));
    let ours = replay(path)?;
    Some((ndpi, ours))
}

#[test]
fn l7_accuracy_against_ndpi() {
    let base = pcaps_dir();
    let (dir, results) = (base.join("ndpi"), base.join("ndpi-results"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!(
            "note: {} not found, skipping the L7 accuracy test",
            dir.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
        })
        .collect();
    files.sort();
    let per_thread = files.len().div_ceil(2).max(1);
    let mut totals = Totals::default();
    std::thread::scope(|sc| {
        let handles: Vec<_> = files
            .chunks(per_thread)
            .map(|chunk| {
                let results = &results;
                sc.spawn(move || {
                    let mut t = Totals::default();
                    for f in chunk {
                        t.files += 1;
                        match run_file(f, results) {
                            Some((ndpi, ours)) => {
                                let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("?");
                                evaluate(&mut t, name, &ndpi, &ours)
                            }
                            None => t.unreadable += 1,
                        }
                    }
                    t
                })
            })
            .collect();
        for h in handles {
            let t = h.join().expect("worker thread");
            merge(&mut totals, t);
        }
    });
    let text = report(&totals);
    println!("{text}");
    // GOPROBE_L7_EXAMPLES=1 lists example flows of each miss and disagreement.
    if std::env::var_os("GOPROBE_L7_EXAMPLES").is_some() {
        for ((n, o), v) in &totals.examples {
            println!("{n} / {o}:");
            for e in v.iter().take(3) {
                println!("    {e}");
            }
        }
    }
    if std::env::var_os("GOPROBE_WRITE_L7_DOC").is_some() {
        write_doc(&text);
    }
    let by_flows = pct(totals.agree, totals.truth);
    let by_bytes = pct(totals.agree_bytes, totals.truth_bytes);
    let contradicted = pct(totals.contradicted, totals.detections_vs_dpi);
    assert!(
        totals.truth > 1000,
        "too few comparable flows: {}",
        totals.truth
    );
    // The targets.
    assert!(by_flows >= 95.0, "agreement by flows {by_flows:.2}% < 95%");
    assert!(by_bytes >= 95.0, "agreement by bytes {by_bytes:.2}% < 95%");
    assert!(contradicted < 2.0, "contradicted {contradicted:.2}% >= 2%");
    // Regression floors a little under what was measured when they were set (98.42%,
    // 99.18%, 0.42%): a change that loses accuracy fails here even while the targets
    // still hold.
    assert!(
        by_flows >= 98.0,
        "agreement by flows fell to {by_flows:.2}%"
    );
    assert!(
        by_bytes >= 98.8,
        "agreement by bytes fell to {by_bytes:.2}%"
    );
    assert!(
        contradicted < 0.8,
        "contradicted rose to {contradicted:.2}%"
    );
}

fn merge(a: &mut Totals, b: Totals) {
    for (id, c) in b.per {
        let e = a.per.entry(id).or_default();
        e.tp += c.tp;
        e.truth += c.truth;
        e.ours += c.ours;
        e.ours_right += c.ours_right;
        e.truth_bytes += c.truth_bytes;
        e.tp_bytes += c.tp_bytes;
    }
    a.matched += b.matched;
    a.ndpi_flows += b.ndpi_flows;
    a.truth += b.truth;
    a.truth_bytes += b.truth_bytes;
    a.agree += b.agree;
    a.agree_bytes += b.agree_bytes;
    a.guess_right += b.guess_right;
    a.detections_vs_dpi += b.detections_vs_dpi;
    a.detections_vs_dpi_bytes += b.detections_vs_dpi_bytes;
    a.contradicted += b.contradicted;
    a.contradicted_bytes += b.contradicted_bytes;
    a.detected_ndpi_unknown += b.detected_ndpi_unknown;
    for (k, v) in b.confusions {
        *a.confusions.entry(k).or_default() += v;
    }
    for (k, v) in b.misses {
        *a.misses.entry(k).or_default() += v;
    }
    for (k, v) in b.unknown_by_ours {
        *a.unknown_by_ours.entry(k).or_default() += v;
    }
    for (k, v) in b.examples {
        a.examples.entry(k).or_default().extend(v);
    }
    a.files += b.files;
    a.unreadable += b.unreadable;
}

const DOC_MARK: &str = "<!-- measured: generated by goflow/tests/l7_accuracy.rs -->";

fn write_doc(text: &str) {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/L7.md"));
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let head = match old.find(DOC_MARK) {
        Some(i) => &old[..i],
        None => old.as_str(),
    };
    let new = format!("{head}{DOC_MARK}\n\n{text}");
    if let Err(e) = std::fs::write(path, new) {
        panic!("cannot write {}: {e}", path.display());
    }
}
