//! The oracle test: every capture under `shared/pcaps`, read with libpcap's offline
//! reader (the `pcap` crate, as `goprobe replay` reads it) and fed through a
//! [`FlowTable`] rotated at the 300-second boundaries of the packets' own timestamps,
//! must give exactly the packets and bytes per unordered IP pair and protocol that the
//! independent oracle (`shared/oracle/flowtruth.py`) computes, and
//! `received = IP packets + non-IP packets`.
//!
//! Two readers are involved, libpcap's and the oracle's own, and they legitimately
//! disagree on some broken files. Every file libpcap opens is still checked exactly:
//! 1. *File check*: where both readers see the same records, the flow table's result
//!    must equal the oracle's on the original file.
//! 2. *Decoder check*: for a file in one of the reader-difference classes of [`Class`]
//!    (each established from the file's own bytes, not from a mismatch), the records
//!    libpcap delivered are written to a plain pcap file and the flow table must equal
//!    the oracle on that file. The report says whether it also equals the oracle on the
//!    original file.
//!
//! Files libpcap refuses must fail with an error message (recorded and printed; those
//! the oracle reads must match a documented reason, [`KNOWN_REFUSALS`]).
//!
//! A second test ([`mutated_packets_match_the_oracle`]) compares the two on generated,
//! mutated packets of every link type, for the corner cases the captures may lack.
//!
//! The oracle runs in one long-lived Python process per worker thread ([`DRIVER`]);
//! the files are spread over the threads, so the whole test takes seconds.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use goflow::{FlowTable, LinkType};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared");

/// Packets and bytes per (lower address, higher address, protocol).
type Pairs = BTreeMap<(IpAddr, IpAddr, u8), (u64, u64)>;

/// What one side (oracle or flow table) counted in a file.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Totals {
    packets: u64,
    non_ip: u64,
    ip_packets: u64,
    pairs: Pairs,
}

/// One record as libpcap delivered it.
struct Record {
    ts: (i64, i64),
    caplen: u32,
    len: u32,
    data: Vec<u8>,
}

/// How libpcap's reading of a file differs from the oracle's reader. Each class is
/// established from the bytes of the file, independently of the flow results.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// Both readers agree on the records: results must match the oracle exactly.
    Same,
    /// libpcap refuses the file (message kept) and the oracle finds no packet in it or
    /// refuses it too.
    BothRefuse(String),
    /// libpcap refuses the whole file, the oracle reads packets from it. The message is
    /// checked against [`KNOWN_REFUSALS`].
    LibpcapRefuses(String),
    /// libpcap stops with an error after some records; the oracle reads further. The
    /// records libpcap delivered are still checked exactly (decoder check).
    LibpcapStops(String),
    /// A pcap file whose header snaplen is smaller than some record's caplen: libpcap
    /// cuts such records to the snaplen (sf-pcap.c), the oracle keeps them whole, so the
    /// decoded headers can differ. Established by walking the record headers here.
    SnaplenCut,
    /// A pcap file whose link-type field has bit 26 or 27 set. libpcap keeps only the
    /// low 26 bits (`LT_LINKTYPE`, the upper bits carry FCS information), the oracle
    /// masks only the top four (`& 0x0FFFFFFF`), so it sees another, unsupported link
    /// type and counts every packet as non-IP.
    LinktypeFlagBits,
}

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(SHARED);
    (p.join("pcaps").is_dir() && p.join("oracle/flowtruth.py").is_file()).then_some(p)
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            captures(&p, out);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("pcap" | "pcapng" | "cap")
        ) {
            out.push(p);
        }
    }
}

/// Drives the oracle: one long-lived `python3` per worker thread that imports
/// `flowtruth.py` unchanged and runs its `main([file])` for each file name it reads on
/// stdin, answering one JSON line per file (`{"ok": <flowtruth output>}` or
/// `{"err": "<exception>"}`, where the command-line oracle would die with a traceback).
/// Starting Python once per thread instead of once per file keeps the test fast.
const DRIVER: &str = r#"
import contextlib, io, json, sys
sys.path.insert(0, sys.argv[1])
import flowtruth
for line in sys.stdin:
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            flowtruth.main([line.rstrip("\n")])
        answer = {"ok": json.loads(buf.getvalue())}
    except Exception as e:
        answer = {"err": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
"#;

struct Oracle {
    dir: PathBuf,
    child: Option<(
        std::process::Child,
        std::io::BufReader<std::process::ChildStdout>,
    )>,
}

impl Oracle {
    fn new(dir: &Path) -> Oracle {
        Oracle {
            dir: dir.to_path_buf(),
            child: None,
        }
    }

    fn ask(&mut self, file: &Path) -> Result<String, String> {
        use std::io::BufRead;
        if self.child.is_none() {
            let mut child = Command::new("python3")
                .arg("-c")
                .arg(DRIVER)
                .arg(&self.dir)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| format!("cannot start python3: {e}"))?;
            let out = child.stdout.take().ok_or("no stdout")?;
            self.child = Some((child, std::io::BufReader::new(out)));
        }
        let (child, out) = self.child.as_mut().ok_or("no oracle")?;
        let mut line = String::new();
        let sent = child
            .stdin
            .as_mut()
            .ok_or_else(|| "no stdin".to_string())
            .and_then(|i| {
                writeln!(i, "{}", file.display())
                    .and_then(|()| i.flush())
                    .map_err(|e| e.to_string())
            });
        match sent.and_then(|()| out.read_line(&mut line).map_err(|e| e.to_string())) {
            Ok(n) if n > 0 => Ok(line),
            other => {
                // The interpreter died: start a fresh one for the next file.
                if let Some((mut c, _)) = self.child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                Err(format!("oracle process failed: {other:?}"))
            }
        }
    }

    /// The oracle's counts for `file`; `Err` carries its complaint when it refuses it.
    fn run(&mut self, file: &Path) -> Result<Totals, String> {
        let line = self.ask(file)?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        if let Some(e) = v["err"].as_str() {
            return Err(e.to_string());
        }
        let v = &v["ok"];
        let n = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format!("oracle output lacks {k}"))
        };
        let mut t = Totals {
            packets: n("packets")?,
            non_ip: n("non_ip_packets")?,
            ip_packets: n("ip_packets")?,
            ..Totals::default()
        };
        for p in v["pairs"].as_array().ok_or("oracle output lacks pairs")? {
            let ip = |k: &str| -> Result<IpAddr, String> {
                p[k].as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad address in oracle output: {}", p[k]))
            };
            let (a, b) = (ip("a")?, ip("b")?);
            let proto = p["proto"]
                .as_u64()
                .and_then(|x| u8::try_from(x).ok())
                .ok_or("bad proto")?;
            let cell = t.pairs.entry((a.min(b), a.max(b), proto)).or_default();
            cell.0 += p["packets"].as_u64().ok_or("bad packets")?;
            cell.1 += p["bytes"].as_u64().ok_or("bad bytes")?;
        }
        Ok(t)
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        if let Some((mut c, _)) = self.child.take() {
            drop(c.stdin.take());
            let _ = c.wait();
        }
    }
}

/// Reads a file with libpcap: the DLT, the records, and the error that ended reading
/// early, if any. `Err` when libpcap refuses to open it.
fn read_libpcap(file: &Path) -> Result<(i32, Vec<Record>, Option<String>), String> {
    let mut cap = pcap::Capture::from_file(file).map_err(|e| e.to_string())?;
    let dlt = cap.get_datalink().0;
    let mut records = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => records.push(Record {
                ts: (p.header.ts.tv_sec, p.header.ts.tv_usec),
                caplen: p.header.caplen,
                len: p.header.len,
                data: p.data.to_vec(),
            }),
            Err(pcap::Error::NoMorePackets) => return Ok((dlt, records, None)),
            Err(e) => return Ok((dlt, records, Some(e.to_string()))),
        }
    }
}

/// Feeds the records to a flow table as `goprobe replay` does (blocks cut at the
/// 300-second boundaries of packet time) and sums the blocks per unordered pair.
fn flow_table(dlt: i32, records: &[Record]) -> Totals {
    let link = LinkType::from_dlt(dlt);
    let mut table = FlowTable::new();
    let mut blocks = Vec::new();
    let mut end: Option<i64> = None;
    for r in records {
        let ts = r.ts.0;
        let boundary = (ts.div_euclid(godb::INTERVAL_SECS) + 1) * godb::INTERVAL_SECS;
        match end {
            None => end = Some(boundary),
            Some(e) if ts >= e => {
                blocks.push(table.rotate().into_block(e, godb::CaptureStats::default()));
                end = Some(boundary);
            }
            Some(_) => {}
        }
        table.add_packet(link, &r.data, r.len, ts);
    }
    blocks.push(
        table
            .rotate()
            .into_block(end.unwrap_or(0), godb::CaptureStats::default()),
    );
    let mut t = Totals::default();
    for b in &blocks {
        t.packets += b.stats.packets_received;
        t.non_ip += b.stats.packets_non_ip;
        for row in &b.rows {
            let (a, z) = (row.key.sip, row.key.dip);
            let cell = t
                .pairs
                .entry((a.min(z), a.max(z), row.key.proto))
                .or_default();
            cell.0 += row.counters.packets();
            cell.1 += row.counters.bytes();
            t.ip_packets += row.counters.packets();
        }
    }
    t
}

/// Writes the records as a classic little-endian microsecond pcap file.
fn write_pcap(path: &Path, dlt: i32, records: &[Record]) -> std::io::Result<()> {
    // Unsupported DLTs become LINKTYPE_USER0 (147), which the oracle does not decode
    // either; supported DLT numbers are LINKTYPE numbers the oracle knows.
    let linktype: u32 = match LinkType::from_dlt(dlt) {
        LinkType::Unsupported(_) => 147,
        _ => u32::try_from(dlt).unwrap_or(147),
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(&0xa1b2c3d4u32.to_le_bytes())?;
    f.write_all(&2u16.to_le_bytes())?;
    f.write_all(&4u16.to_le_bytes())?;
    f.write_all(&[0; 8])?;
    f.write_all(&0x0004_0000u32.to_le_bytes())?;
    f.write_all(&linktype.to_le_bytes())?;
    for r in records {
        f.write_all(&(r.ts.0 as u32).to_le_bytes())?;
        f.write_all(&(r.ts.1 as u32).to_le_bytes())?;
        f.write_all(&r.caplen.to_le_bytes())?;
        f.write_all(&r.len.to_le_bytes())?;
        f.write_all(&r.data)?;
    }
    f.flush()
}

/// What the oracle's reader sees in a classic pcap file's headers.
#[derive(Debug, Default)]
struct PcapWalk {
    /// The link-type field of the file header, unmasked.
    linktype_field: u32,
    /// Records the oracle reads.
    records: u64,
    /// Some record's caplen exceeds the header's snaplen.
    beyond_snaplen: bool,
    /// The oracle stopped at a record whose data runs past the end of the file.
    cut_record: bool,
}

/// Walks a classic pcap file's record headers exactly as the oracle does; `None` for
/// other formats.
fn walk_pcap(file: &Path) -> Option<PcapWalk> {
    let raw = std::fs::read(file).ok()?;
    let le = match raw.get(..4)? {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = raw.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let snaplen = u32_at(16)?;
    let mut w = PcapWalk {
        linktype_field: u32_at(20)?,
        ..PcapWalk::default()
    };
    let mut off = 24usize;
    while off + 16 <= raw.len() {
        let caplen = u32_at(off + 8)?;
        off += 16;
        if off + caplen as usize > raw.len() {
            w.cut_record = true;
            break;
        }
        w.records += 1;
        w.beyond_snaplen |= caplen > snaplen;
        off += caplen as usize;
    }
    Some(w)
}

/// libpcap messages for files it refuses outright while the oracle reads packets.
/// Each is a documented difference between the two readers, see the test's report.
///
/// - `archaic pcap savefile format`, `unsupported pcap savefile version`: the pcap
///   header's version is not 2.x (libpcap-1.10 sf-pcap.c checks it); the oracle reads
///   records without looking at the version.
/// - `unsupported pcapng savefile version`: the section header's major.minor is not
///   1.0 (or 1.2); the oracle does not check it.
/// - `block total length in header and trailer don't match`: libpcap checks the copy
///   of a block's length at its end, the oracle never reads the trailer.
const KNOWN_REFUSALS: &[&str] = &[
    "archaic pcap savefile format",
    "unsupported pcap savefile version",
    "unsupported pcapng savefile version",
    "block total length in header and trailer don't match",
];

/// libpcap messages that end reading early while the oracle reads further.
///
/// - `truncated dump file`: the file ends inside a record (header or data). libpcap
///   delivers the records before it and reports the error; the oracle's reader stops at
///   the same record without a word (`off + 16 <= len`, `off + caplen > len`: break),
///   so these files also get the file check when both counted the same records. When
///   libpcap delivered more, the test requires the oracle's walk to have dropped a
///   record whose caplen runs past the end of the file (ndpi/fuzz-2021-10-13.pcap: a
///   caplen of 524,501 in a 239-byte file; libpcap hands over what it could read of
///   it, then fails on the next header).
const KNOWN_STOPS: &[&str] = &["truncated dump file"];

struct Outcome {
    file: PathBuf,
    class: Class,
    /// Decoder check failure (flow table vs oracle on the records libpcap delivered).
    decoder_mismatch: Option<String>,
    /// File check failure while the class says the readers agree.
    file_mismatch: Option<String>,
    /// For files of a reader-difference class: whether the flow table still equals the
    /// oracle on the original file (reported, not required).
    file_equal: Option<bool>,
    packets: u64,
}

fn diff(ours: &Totals, truth: &Totals) -> Option<String> {
    if ours == truth {
        return None;
    }
    let mut msg = format!(
        "packets {} vs {}, non-IP {} vs {}, IP {} vs {}",
        ours.packets, truth.packets, ours.non_ip, truth.non_ip, ours.ip_packets, truth.ip_packets
    );
    let mut shown = 0;
    for (k, v) in &truth.pairs {
        if ours.pairs.get(k) != Some(v) && shown < 4 {
            msg += &format!("; oracle {k:?}={v:?} ours {:?}", ours.pairs.get(k));
            shown += 1;
        }
    }
    for (k, v) in &ours.pairs {
        if !truth.pairs.contains_key(k) && shown < 6 {
            msg += &format!("; ours only {k:?}={v:?}");
            shown += 1;
        }
    }
    Some(msg)
}

fn check_file(oracle: &mut Oracle, tmp: &Path, file: &Path) -> Outcome {
    let truth = oracle.run(file);
    let mut out = Outcome {
        file: file.to_path_buf(),
        class: Class::Same,
        decoder_mismatch: None,
        file_mismatch: None,
        file_equal: None,
        packets: 0,
    };
    let (dlt, records, stop) = match read_libpcap(file) {
        Ok(r) => r,
        Err(msg) => {
            out.class = match &truth {
                Err(_) => Class::BothRefuse(msg),
                Ok(t) if t.packets == 0 => Class::BothRefuse(msg),
                Ok(_) => Class::LibpcapRefuses(msg),
            };
            return out;
        }
    };
    let ours = flow_table(dlt, &records);
    out.packets = ours.packets;
    // Every packet handed over is either in a flow or counted as non-IP.
    if ours.packets != records.len() as u64 || ours.packets != ours.ip_packets + ours.non_ip {
        out.decoder_mismatch = Some(format!(
            "received {} of {} records, IP {} + non-IP {}",
            ours.packets,
            records.len(),
            ours.ip_packets,
            ours.non_ip
        ));
        return out;
    }
    let walk = walk_pcap(file);
    out.class = match (stop, &walk) {
        (Some(msg), _) => Class::LibpcapStops(msg),
        (None, Some(w)) if w.linktype_field & 0x0C00_0000 != 0 => Class::LinktypeFlagBits,
        (None, Some(w)) if w.beyond_snaplen => Class::SnaplenCut,
        _ => Class::Same,
    };
    // A file cut inside its last record: libpcap reports the error, the oracle's reader
    // silently stops at the same record, so both saw the same records.
    let same_records = match (&out.class, &truth) {
        (Class::Same, _) => true,
        (Class::LibpcapStops(m), Ok(t)) => {
            m.contains("truncated dump file") && t.packets == ours.packets
        }
        _ => false,
    };
    // libpcap stopping early with more records than the oracle is explained only when
    // the oracle's reader dropped a record running past the end of the file.
    if let (Class::LibpcapStops(m), false) = (&out.class, same_records) {
        let explained = matches!(&walk, Some(w) if w.cut_record && w.records < ours.packets);
        if !explained {
            out.file_mismatch = Some(format!(
                "libpcap stopped ({m}) and the readers disagree unexplained"
            ));
        }
    }
    if same_records {
        // File check: the flow table against the oracle on the original file.
        out.file_mismatch = match &truth {
            Ok(t) => diff(&ours, t),
            Err(e) => Some(format!("oracle refuses a file libpcap reads: {e}")),
        };
    } else {
        // Decoder check: the oracle on exactly the records libpcap delivered.
        let copy = tmp.join(format!("{}.pcap", file.to_string_lossy().replace('/', "_")));
        out.decoder_mismatch = match write_pcap(&copy, dlt, &records)
            .map_err(|e| e.to_string())
            .and_then(|()| oracle.run(&copy))
        {
            Ok(t) => diff(&ours, &t),
            Err(e) => Some(format!("oracle on libpcap's records: {e}")),
        };
        let _ = std::fs::remove_file(&copy);
        out.file_equal = Some(matches!(&truth, Ok(t) if *t == ours));
    }
    out
}

#[test]
fn flow_table_matches_the_oracle_on_every_shared_capture() {
    let Some(shared) = shared() else {
        eprintln!("note: {SHARED} not found, oracle test skipped");
        return;
    };
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("note: python3 not found, oracle test skipped");
        return;
    }
    let oracle_dir = shared.join("oracle");
    let mut files = Vec::new();
    captures(&shared.join("pcaps"), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no captures under {}", shared.display());
    let tmp = std::env::temp_dir().join(format!("goflow-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temporary folder");

    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut oracle = Oracle::new(&oracle_dir);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let o = check_file(&mut oracle, &tmp, file);
                    results.lock().unwrap_or_else(|e| e.into_inner()).push(o);
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| a.file.cmp(&b.file));

    let mut failures = Vec::new();
    let mut by_class: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut packets = 0;
    for o in &results {
        packets += o.packets;
        let name = o
            .file
            .strip_prefix(&shared)
            .unwrap_or(&o.file)
            .display()
            .to_string();
        if let Some(m) = &o.decoder_mismatch {
            failures.push(format!(
                "{name}: decoder differs from the oracle on libpcap's records: {m}"
            ));
        }
        if let Some(m) = &o.file_mismatch {
            failures.push(format!("{name}: differs from the oracle: {m}"));
        }
        let (label, detail) = match &o.class {
            Class::Same => continue,
            Class::BothRefuse(m) => ("both readers refuse or find no packet", m.clone()),
            Class::LibpcapRefuses(m) => {
                if !KNOWN_REFUSALS.iter().any(|k| m.contains(k)) {
                    failures.push(format!(
                        "{name}: libpcap refuses ({m}), the oracle reads packets"
                    ));
                }
                ("libpcap refuses, oracle reads", m.clone())
            }
            Class::LibpcapStops(m) => {
                if !KNOWN_STOPS.iter().any(|k| m.contains(k)) {
                    failures.push(format!("{name}: libpcap stops early ({m})"));
                }
                ("libpcap stops early", m.clone())
            }
            Class::SnaplenCut => ("records beyond the file's snaplen", String::new()),
            Class::LinktypeFlagBits => ("link-type field with bits 26-27 set", String::new()),
        };
        let equal = match o.file_equal {
            Some(true) => " (still equal to the oracle on the file)",
            Some(false) => " (differs from the oracle on the file; equal on libpcap's records)",
            None => "",
        };
        by_class
            .entry(label.to_string())
            .or_default()
            .push(format!("{name} {detail}{equal}"));
    }
    println!("oracle test: {} files, {} packets", results.len(), packets);
    for (label, files) in &by_class {
        println!("{label}: {} files", files.len());
        for f in files {
            println!("  {f}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A deterministic xorshift generator for the differential test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// IP packets to mutate: IPv4 TCP with options, UDP, first and later fragments, GRE;
/// IPv6 TCP behind hop-by-hop, routing, fragment, AH and destination options; IPv6 UDP.
fn ip_seeds() -> Vec<Vec<u8>> {
    let v4 = |ihl: u8, frag: [u8; 2], proto: u8, body: &[u8]| {
        let hl = usize::from(ihl) * 4;
        let total = (hl + body.len()) as u16;
        let mut v = vec![0x40 | ihl, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&[
            0x12, 0x34, frag[0], frag[1], 64, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
        ]);
        v.resize(hl, 1);
        v.extend_from_slice(body);
        v
    };
    let tcp = [
        0xc3, 0x50, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0, b'G',
        b'E', b'T', b' ',
    ];
    let udp = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x0c, 0, 0, 1, 2, 3, 4];
    let v6 = |next: u8, body: &[u8]| {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(&[
            next, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ]);
        v.extend_from_slice(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        v.extend_from_slice(body);
        v
    };
    let mut chain = vec![43, 0, 0, 0, 0, 0, 0, 0]; // hop-by-hop -> routing
    chain.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]); // routing -> fragment
    chain.extend_from_slice(&[51, 0, 0, 1, 0, 0, 0, 5]); // fragment (first, M) -> AH
    chain.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // AH -> dest opts
    chain.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]); // dest opts -> TCP
    chain.extend_from_slice(&tcp);
    vec![
        v4(6, [0x40, 0], 6, &tcp),
        v4(5, [0, 0], 17, &udp),
        v4(5, [0x20, 0], 17, &udp),
        v4(5, [0, 3], 17, &udp),
        v4(5, [0, 0], 47, &[0, 0, 0x08, 0, 0x45, 0]),
        v6(0, &chain),
        v6(17, &udp),
        v6(44, &[17, 0, 0, 0x18, 0, 0, 0, 5, 1, 2, 3, 4]),
    ]
}

/// Wraps an IP packet in the link layer of `dlt` (the oracle's LINKTYPE numbers).
fn frame(dlt: i32, ip: &[u8], rng: &mut Rng) -> Vec<u8> {
    let et: u16 = if ip.first().map_or(0, |b| b >> 4) == 6 {
        0x86dd
    } else {
        0x0800
    };
    let mut f = Vec::new();
    match dlt {
        1 => {
            f.extend_from_slice(&[0; 12]);
            match rng.below(5) {
                0 => f.extend_from_slice(&et.to_be_bytes()),
                1 => f.extend_from_slice(&[0x81, 0x00, 0, 5, 0x88, 0xa8, 0, 6, 0x91, 0x00, 0, 7]),
                2 => f.extend_from_slice(&[0x88, 0x64, 0x11, 0, 0, 1, 0, 40]),
                3 => f.extend_from_slice(&[0, 0]),
                _ => f.extend_from_slice(&[0x81, 0x00, 0, 5]),
            }
            let last = f.len();
            match f.get(last - 2..) {
                Some([0x00, 40]) => f.extend_from_slice(if et == 0x0800 {
                    &[0x00, 0x21]
                } else {
                    &[0x00, 0x57]
                }),
                Some([0, 5] | [0, 7]) => f.extend_from_slice(&et.to_be_bytes()),
                _ => {}
            }
        }
        0 | 108 => f.extend_from_slice(&[2, 0, 0, 0]),
        113 => {
            f.extend_from_slice(&[0; 14]);
            f.extend_from_slice(&et.to_be_bytes());
        }
        276 => {
            f.extend_from_slice(&et.to_be_bytes());
            f.extend_from_slice(&[0; 18]);
        }
        147 => f.extend_from_slice(&[0xaa; 6]),
        _ => {}
    }
    f.extend_from_slice(ip);
    f
}

/// Differential test beyond the shared captures: mutated and truncated packets of
/// every link type the oracle knows (plus one it does not), decoded by the flow table
/// and by the oracle run on a pcap file of the same records, must be counted the same.
/// The mutations aim at the fields the accounting depends on (EtherTypes, VLAN and
/// PPPoE headers, version nibbles, IHL, protocol and next-header numbers, extension
/// lengths, fragment fields).
#[test]
fn mutated_packets_match_the_oracle() {
    let Some(shared) = shared() else {
        eprintln!("note: {SHARED} not found, differential test skipped");
        return;
    };
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("note: python3 not found, differential test skipped");
        return;
    }
    const INTERESTING: [u8; 24] = [
        0x00, 0x01, 0x06, 0x08, 0x11, 0x21, 0x2b, 0x2c, 0x33, 0x3c, 0x45, 0x46, 0x4f, 0x57, 0x60,
        0x64, 0x81, 0x84, 0x86, 0x87, 0x88, 0x8b, 0xdd, 0xff,
    ];
    let tmp = std::env::temp_dir().join(format!("goflow-mutated-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temporary folder");
    let mut oracle = Oracle::new(&shared.join("oracle"));
    let seeds = ip_seeds();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut failures = Vec::new();
    for dlt in [1, 0, 108, 101, 228, 229, 12, 14, 113, 276, 147] {
        let mut records = Vec::new();
        for i in 0..3000i64 {
            let seed = &seeds[rng.below(seeds.len())];
            let mut data = frame(dlt, seed, &mut rng);
            for _ in 0..rng.below(4) {
                let at = rng.below(data.len().min(96));
                if let Some(b) = data.get_mut(at) {
                    *b = if rng.below(2) == 0 {
                        INTERESTING[rng.below(INTERESTING.len())]
                    } else {
                        rng.next() as u8
                    };
                }
            }
            if rng.below(3) == 0 {
                let keep = rng.below(data.len() + 1);
                data.truncate(keep);
            }
            let ts = 1_700_000_000 + i * 7;
            let len = data.len() as u32 + rng.below(64) as u32;
            records.push(Record {
                ts: (ts, 0),
                caplen: data.len() as u32,
                len,
                data,
            });
        }
        let path = tmp.join(format!("dlt{dlt}.pcap"));
        let truth = write_pcap(&path, dlt, &records)
            .map_err(|e| e.to_string())
            .and_then(|()| oracle.run(&path));
        let ours = flow_table(dlt, &records);
        match truth {
            Ok(t) => {
                if let Some(d) = diff(&ours, &t) {
                    failures.push(format!("link type {dlt}: {d}"));
                }
                assert!(
                    dlt == 147 || t.ip_packets > 0,
                    "link type {dlt}: no IP packet generated"
                );
            }
            Err(e) => failures.push(format!("link type {dlt}: oracle failed: {e}")),
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
