//! `goprobe replay`: block cutting at the packets' 5-minute boundaries, clear errors for
//! refused and truncated files, and, on real captures, the packets and bytes per
//! unordered address pair and protocol read back from the database compared with the
//! independent oracle (`shared/oracle/flowtruth.py`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn udp(total: usize) -> Vec<u8> {
    eth_ipv4([2; 6], [4; 6], A, B, 17, 40000, 53, 0, total)
}

fn write_pcap(path: &Path, records: &[(u32, Vec<u8>)]) {
    let mut out = Vec::new();
    pcap_header(&mut out, 1);
    for (ts, f) in records {
        pcap_record(&mut out, *ts, f);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn blocks_are_cut_at_five_minute_boundaries_of_packet_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    // Two files; the later one is given first: files go in order of their first packet.
    let first = dir.path().join("first.pcap");
    let second = dir.path().join("second.pcap");
    write_pcap(
        &first,
        &[
            (1000, udp(60)),
            (1100, udp(61)),
            (1199, udp(62)),
            (1200, udp(63)),
        ],
    );
    // An ARP frame (non-IP) and packets further on, skipping empty intervals.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[4; 6]);
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.resize(42, 0);
    write_pcap(
        &second,
        &[
            (1499, udp(64)),
            (1500, arp),
            (2400, udp(65)),
            (2401, udp(66)),
        ],
    );
    let o = run(&[
        "replay",
        "-d",
        db.to_str().unwrap(),
        "--iface",
        "syn",
        second.to_str().unwrap(),
        first.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("8 packets (1 non-IP), 3 flows in 4 blocks"),
        "{out}"
    );
    let blocks = read_blocks(&db, "syn");
    let got: Vec<(i64, u64, u64, u64)> = blocks
        .iter()
        .map(|b| {
            let p: u64 = b.rows.iter().map(|r| r.counters.packets()).sum();
            let by: u64 = b.rows.iter().map(|r| r.counters.bytes()).sum();
            assert_eq!(b.stats.packets_received, p + b.stats.packets_non_ip);
            (b.timestamp, p, by, b.stats.packets_non_ip)
        })
        .collect();
    assert_eq!(
        got,
        [
            (1200, 3, 60 + 61 + 62, 0),
            (1500, 2, 63 + 64, 0),
            (1800, 0, 0, 1),
            (2700, 2, 65 + 66, 0),
        ]
    );
    let r = &blocks[0].rows[0];
    assert_eq!(
        (r.key.sip, r.key.dip, r.key.proto, r.key.dport),
        (IpAddr::V4(A), IpAddr::V4(B), 17, 53)
    );
}

#[test]
fn refused_and_truncated_files_are_named_and_the_rest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let good = dir.path().join("good.pcap");
    write_pcap(&good, &[(600, udp(100)), (601, udp(100))]);
    let garbage = dir.path().join("garbage.pcap");
    std::fs::write(
        &garbage,
        b"this is not a capture file at all, not even close",
    )
    .unwrap();
    let missing = dir.path().join("missing.pcap");
    // Three records, the last one cut in the middle of its data.
    let truncated = dir.path().join("truncated.pcap");
    let mut bytes = Vec::new();
    pcap_header(&mut bytes, 1);
    for ts in [900, 901, 902] {
        pcap_record(&mut bytes, ts, &udp(80));
    }
    bytes.truncate(bytes.len() - 30);
    std::fs::write(&truncated, &bytes).unwrap();
    let empty = dir.path().join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();

    let o = run(&[
        "replay",
        "-d",
        db.to_str().unwrap(),
        "--iface",
        "mixed",
        garbage.to_str().unwrap(),
        truncated.to_str().unwrap(),
        missing.to_str().unwrap(),
        good.to_str().unwrap(),
        empty.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for f in [&garbage, &truncated, &missing, &empty] {
        assert!(
            err.contains(&format!("{}:", f.display())),
            "{} not named:\n{err}",
            f.display()
        );
    }
    assert!(
        !err.contains(&format!("{}:", good.display())),
        "good file named:\n{err}"
    );
    assert!(err.contains("after 2 packets"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        stdout(&o).contains("4 packets (0 non-IP)"),
        "{}",
        stdout(&o)
    );
    let blocks = read_blocks(&db, "mixed");
    let pairs = pairs_of(&blocks);
    assert_eq!(
        pairs.get(&(IpAddr::V4(A), IpAddr::V4(B), 17)),
        Some(&(4, 200 + 160))
    );
    let ts: Vec<i64> = blocks.iter().map(|b| b.timestamp).collect();
    assert_eq!(ts, [900, 1200]);
}

/// The oracle's view of some files.
struct Truth {
    packets: u64,
    non_ip: u64,
    pairs: PairMap,
}

fn oracle(shared: &Path, files: &[PathBuf]) -> Option<Truth> {
    let script = shared.join("oracle/flowtruth.py");
    let out = match Command::new("python3").arg(&script).args(files).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("note: python3 not runnable ({e}), skipping the oracle comparison");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("oracle JSON");
    let num = |v: &serde_json::Value, k: &str| v[k].as_u64().expect("oracle number");
    let mut pairs = PairMap::new();
    for p in v["pairs"].as_array().expect("pairs") {
        let a: IpAddr = p["a"].as_str().and_then(|s| s.parse().ok()).expect("ip a");
        let b: IpAddr = p["b"].as_str().and_then(|s| s.parse().ok()).expect("ip b");
        let key = if a <= b { (a, b) } else { (b, a) };
        let e = pairs
            .entry((key.0, key.1, num(p, "proto") as u8))
            .or_default();
        e.0 += num(p, "packets");
        e.1 += num(p, "bytes");
    }
    Some(Truth {
        packets: num(&v, "packets"),
        non_ip: num(&v, "non_ip_packets"),
        pairs,
    })
}

/// The capture files of a folder that libpcap opens and the oracle reads (classic pcap
/// in either byte order and time resolution, or pcapng), sorted by name.
///
/// Left out, because libpcap and the oracle read them differently by design:
/// - classic pcap files of format 2.2 or older with a record whose caplen and len
///   differ: libpcap (following the format's history) swaps the two fields there, the
///   oracle does not (e.g. ndpi's fuzz-2021-10-13.pcap, format 2.0, caplen 524501 and
///   len 197);
/// - classic pcap files whose link-type field has bit 26 or 27 set (FCS length, e.g.
///   tcpdump's bootp_asan.pcap, 0x04000001): libpcap keeps the low 26 bits
///   (Ethernet), the oracle masks with 0x0FFFFFFF and counts every packet as non-IP.
fn captures(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => return Vec::new(),
    };
    files.sort();
    files.retain(|f| {
        let Ok(bytes) = std::fs::read(f) else {
            return false;
        };
        match reader_disagreement(&bytes) {
            Ok(None) => pcap::Capture::from_file(f).is_ok(),
            Ok(Some(why)) => {
                eprintln!("note: {}: {why}: not compared", f.display());
                false
            }
            Err(()) => false,
        }
    });
    files
}

/// `Err` for what the oracle does not read at all; `Some(reason)` for a classic pcap
/// file that libpcap and the oracle read differently (see [`captures`]).
fn reader_disagreement(bytes: &[u8]) -> Result<Option<String>, ()> {
    if bytes.len() < 24 {
        return Err(());
    }
    let little = match bytes[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        [0x0a, 0x0d, 0x0d, 0x0a] => return Ok(None),
        _ => return Err(()),
    };
    let u16_at = |i: usize| {
        let b = [bytes[i], bytes[i + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let u32_at = |i: usize| {
        let b = [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = u32_at(20);
    if linktype & 0x0c00_0000 != 0 {
        return Ok(Some(format!("link-type field {linktype:#x} has FCS bits")));
    }
    let version = (u16_at(4), u16_at(6));
    if version < (2, 3) {
        let mut off = 24;
        while off + 16 <= bytes.len() {
            let (caplen, len) = (u32_at(off + 8), u32_at(off + 12));
            if caplen != len {
                return Ok(Some(format!(
                    "format {version:?} with caplen {caplen} != len {len}"
                )));
            }
            off += 16 + caplen as usize;
        }
    }
    Ok(None)
}

/// Replays `files` as one batch and compares the database with the oracle.
fn compare_batch(shared: &Path, label: &str, files: &[PathBuf]) {
    let Some(truth) = oracle(shared, files) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut args: Vec<String> = vec![
        "replay".into(),
        "-d".into(),
        db.display().to_string(),
        "--iface".into(),
        label.into(),
    ];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let o = goprobe().args(&args).output().expect("run goprobe");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{label}: {err}");
    // Truncated files are reported (exit 1) but what was read is kept, as the oracle
    // does: the comparison holds either way.
    assert!(matches!(o.status.code(), Some(0 | 1)), "{label}: {err}");

    let blocks = read_blocks(&db, label);
    let mut last = i64::MIN;
    for b in &blocks {
        assert_eq!(b.timestamp % 300, 0, "{label}: block time {}", b.timestamp);
        assert!(b.timestamp >= last, "{label}: blocks out of order");
        last = b.timestamp;
    }
    let received: u64 = blocks.iter().map(|b| b.stats.packets_received).sum();
    let non_ip: u64 = blocks.iter().map(|b| b.stats.packets_non_ip).sum();
    let ip: u64 = blocks
        .iter()
        .flat_map(|b| &b.rows)
        .map(|r| r.counters.packets())
        .sum();
    let got = pairs_of(&blocks);
    let mut diffs = Vec::new();
    for (k, v) in &truth.pairs {
        if got.get(k) != Some(v) {
            diffs.push(format!("{k:?}: oracle {v:?}, goprobe {:?}", got.get(k)));
        }
    }
    for (k, v) in &got {
        if !truth.pairs.contains_key(k) {
            diffs.push(format!("{k:?}: oracle none, goprobe {v:?}"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{label}: {} pairs differ, e.g.:\n{}",
        diffs.len(),
        diffs[..diffs.len().min(20)].join("\n")
    );
    assert_eq!(received, truth.packets, "{label}: total packets");
    assert_eq!(non_ip, truth.non_ip, "{label}: non-IP packets");
    assert_eq!(received, ip + non_ip, "{label}: total = IP + non-IP");
}

/// Runs the batches in two threads (the machine has two cores).
fn compare_all(folder: &str, batch: usize) {
    let Some(shared) = shared() else {
        return;
    };
    let files = captures(&shared.join("pcaps").join(folder));
    if files.is_empty() {
        eprintln!("note: no captures in {folder}, skipping");
        return;
    }
    let batches: Vec<&[PathBuf]> = files.chunks(batch).collect();
    std::thread::scope(|s| {
        let (even, odd): (Vec<_>, Vec<_>) =
            batches.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for half in [even, odd] {
            let shared = &shared;
            s.spawn(move || {
                for (i, b) in half {
                    compare_batch(shared, &format!("{folder}{i}"), b);
                }
            });
        }
    });
}

#[test]
fn chrissanders_captures_match_the_oracle_through_the_database() {
    compare_all("chrissanders", 40);
}

#[test]
fn ndpi_captures_match_the_oracle_through_the_database() {
    compare_all("ndpi", 70);
}

#[test]
fn tcpdump_captures_match_the_oracle_through_the_database() {
    compare_all("tcpdump", 120);
}

#[test]
fn libpcap_captures_match_the_oracle_through_the_database() {
    compare_all("libpcap", 60);
}

/// The files the comparisons leave out (refused by libpcap, not capture files, or read
/// differently by the oracle) still go through `goprobe replay`: no panic, and every
/// file libpcap refuses is named in a clear error.
#[test]
fn shared_files_left_out_of_the_comparison_fail_cleanly() {
    let Some(shared) = shared() else {
        return;
    };
    let mut rest = Vec::new();
    for folder in ["chrissanders", "ndpi", "tcpdump", "libpcap"] {
        let dir = shared.join("pcaps").join(folder);
        let compared = captures(&dir);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut all: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        all.retain(|f| f.is_file() && !compared.contains(f));
        rest.extend(all);
    }
    if rest.is_empty() {
        return;
    }
    rest.sort();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let o = goprobe()
        .args(["replay", "-d", db.to_str().unwrap(), "--iface", "rest"])
        .args(&rest)
        .output()
        .expect("run goprobe");
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    let refused: Vec<&PathBuf> = rest
        .iter()
        .filter(|f| pcap::Capture::from_file(f).is_err())
        .collect();
    // 1 when a file was refused or cut short, 0 otherwise.
    let code = o.status.code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}: {err}");
    assert!(refused.is_empty() || code == Some(1), "{err}");
    for f in refused {
        assert!(
            err.contains(&format!("{}: cannot read as pcap or pcapng", f.display())),
            "{} not named:\n{err}",
            f.display()
        );
    }
}

/// A record longer than the file's snapshot length is left by the fast reader to
/// libpcap, which cuts it to the snapshot length and reads on: every packet is
/// counted, with its original length.
#[test]
fn records_beyond_the_snapshot_length_are_read_as_libpcap_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let path = dir.path().join("snap.pcap");
    let mut bytes = Vec::new();
    pcap_header(&mut bytes, 1);
    // Snapshot length 64 instead of 65535.
    bytes[16..20].copy_from_slice(&64u32.to_le_bytes());
    pcap_record(&mut bytes, 600, &udp(60));
    pcap_record(&mut bytes, 601, &udp(100));
    pcap_record(&mut bytes, 602, &udp(62));
    std::fs::write(&path, &bytes).unwrap();
    let o = run(&[
        "replay",
        "-d",
        db.to_str().unwrap(),
        "--iface",
        "snap",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("3 packets (0 non-IP)"),
        "{}",
        stdout(&o)
    );
    let pairs = pairs_of(&read_blocks(&db, "snap"));
    assert_eq!(
        pairs.get(&(IpAddr::V4(A), IpAddr::V4(B), 17)),
        Some(&(3, 60 + 100 + 62))
    );
}

/// The fast reader gives, record for record, what libpcap gives (time stamp seconds,
/// original length, captured bytes) on every shared capture it takes, up to the end
/// or to the record it leaves to libpcap.
#[test]
fn fast_reader_reads_shared_captures_as_libpcap_does() {
    use goprobe::pcapfile::{Next, PcapReader};
    let Some(shared) = shared() else {
        return;
    };
    let (mut taken, mut total, mut handed_over) = (0, 0u64, 0);
    for folder in ["chrissanders", "ndpi", "tcpdump", "libpcap"] {
        let Ok(rd) = std::fs::read_dir(shared.join("pcaps").join(folder)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let Ok(mut cap) = pcap::Capture::from_file(&f) else {
                continue;
            };
            let file = std::fs::File::open(&f).unwrap();
            let Some(mut fast) = PcapReader::new(file).unwrap() else {
                continue;
            };
            taken += 1;
            let mut records = 0u64;
            loop {
                let theirs = cap.next_packet();
                match fast.next_record() {
                    Next::Record(r) => {
                        let p = theirs.unwrap_or_else(|e| {
                            panic!("{}: libpcap: {e}, fast reader: a record", f.display())
                        });
                        assert_eq!(
                            (r.ts_secs, r.wire_len, r.data),
                            (p.header.ts.tv_sec, p.header.len, p.data),
                            "{}: record {records}",
                            f.display(),
                        );
                        records += 1;
                    }
                    Next::End => {
                        total += records;
                        assert!(
                            matches!(theirs, Err(pcap::Error::NoMorePackets)),
                            "{}: fast reader ended, libpcap: {:?}",
                            f.display(),
                            theirs.map(|p| p.header.len)
                        );
                        break;
                    }
                    Next::Unusual => {
                        total += records;
                        handed_over += 1;
                        break;
                    }
                }
            }
        }
    }
    eprintln!(
        "fast reader: {taken} files, {total} records as libpcap's, \
         {handed_over} files handed over to libpcap part-way"
    );
    assert!(taken > 0, "no classic pcap file among the shared captures");
}
