//! The fuzz harness for godb, shared by the libFuzzer targets in `fuzz_targets/` and
//! by godb's regression test (`godb/tests/fuzz_regressions.rs` includes this file with
//! `#[path]`), so that a crash input replays through exactly the same code on stable.
//!
//! The readers only accept files with valid CRC-32C checksums and consistent totals,
//! which random mutation almost never produces. The harness therefore repairs what a
//! mode byte asks for (checksum, header constants, totals, contiguous offsets) before
//! writing the file, so the fuzzer reaches the code behind those checks as well as the
//! checks themselves. Only godb's public API is used: files are written to a scratch
//! database folder (on /dev/shm when it exists) and read back through `Database`.
//!
//! The byte layout of `day.meta` is repeated here from `docs/FORMAT.md` (godb keeps its
//! own encoder private).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use godb::query::{run, Condition, Statement};
use godb::{
    Column, ColumnSet, Counters, Database, FlowKey, FlowRow, ScanRequest, META_FILE, NUM_COLUMNS,
};

/// `day.meta` header size.
pub const HDR: usize = 112;
/// Size of one block entry.
pub const ENTRY: usize = 296;
/// Offset of the column descriptors in an entry.
pub const ENTRY_COLUMNS: usize = 80;
/// Size of one column descriptor.
pub const COL: usize = 24;
/// Trailer (CRC-32C) size.
pub const TRAILER: usize = 4;
/// The day folder every scratch database uses (relative to the database root), the
/// same day as the golden database's eth0 day the `meta` target starts from.
pub const DAY: &str = "eth0/2025/11/21";
/// A block timestamp inside that day (2025-11-21 00:05 UTC).
pub const TS: i64 = 1_763_683_500;

/// A scratch database with one day folder.
pub struct Scratch {
    _dir: tempfile::TempDir,
    /// The database.
    pub db: Database,
    /// The day folder.
    pub day: PathBuf,
}

impl Scratch {
    /// Creates an empty scratch database; if `golden_day` is given, its column files
    /// are copied into the day folder. Setup failures are environment errors, not
    /// fuzz findings: they abort with a message.
    pub fn new(golden_day: Option<&Path>) -> Scratch {
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new().prefix("godb-fuzz").tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("godb-fuzz").tempdir()
        };
        let dir = dir.unwrap_or_else(|e| panic!("scratch folder: {e}"));
        let root = dir.path().join("db");
        let day = root.join(DAY);
        fs::create_dir_all(&day).unwrap_or_else(|e| panic!("{}: {e}", day.display()));
        if let Some(g) = golden_day {
            for c in Column::ALL {
                let from = g.join(c.file_name());
                fs::copy(&from, day.join(c.file_name()))
                    .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
            }
        }
        let db = Database::open(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display()));
        Scratch { _dir: dir, db, day }
    }

    fn set_len(&self, name: &str, len: u64) {
        let p = self.day.join(name);
        fs::File::create(&p)
            .and_then(|f| f.set_len(len))
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        let p = self.day.join(name);
        fs::write(&p, bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
}

/// The golden day the `meta` target's column files come from.
pub fn golden_day() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("godb/tests/golden/v1").join(DAY))
        .find(|p| p.join(META_FILE).is_file())
        .unwrap_or_else(|| panic!("godb/tests/golden/v1/{DAY} not found"))
}

fn rd_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(off..off + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

fn rd_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(off..off + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn wr(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// Number of complete block entries after the header (ignoring the trailer).
fn entries(b: &[u8]) -> usize {
    b.len().saturating_sub(HDR + TRAILER) / ENTRY
}

/// Sets magic, version, column count, entry and header size and a block count
/// matching the length.
pub fn fix_header(b: &mut [u8]) {
    if b.len() < HDR {
        return;
    }
    let n = entries(b) as u32;
    wr(b, 0, b"GODBMETA");
    wr(b, 8, &1u16.to_le_bytes());
    wr(b, 10, &(NUM_COLUMNS as u16).to_le_bytes());
    wr(b, 12, &(ENTRY as u16).to_le_bytes());
    wr(b, 14, &(HDR as u16).to_le_bytes());
    wr(b, 16, &n.to_le_bytes());
}

/// Makes every column's offsets contiguous (each block starts where the previous
/// ended, the first at 0), keeping the stored lengths.
pub fn fix_offsets(b: &mut [u8]) {
    let mut ends = [0u64; NUM_COLUMNS];
    for i in 0..entries(b) {
        for (ci, end) in ends.iter_mut().enumerate() {
            let cb = HDR + i * ENTRY + ENTRY_COLUMNS + ci * COL;
            wr(b, cb, &end.to_le_bytes());
            *end = end.saturating_add(u64::from(rd_u32(b, cb + 8)));
        }
    }
}

/// Writes the totals of the entries into the header (first, last, rows, counters and
/// capture statistics; sums saturate, as godb's do).
pub fn fix_totals(b: &mut [u8]) {
    let n = entries(b);
    if b.len() < HDR {
        return;
    }
    let (mut first, mut last) = (0u64, 0u64);
    if n > 0 {
        first = rd_u64(b, HDR);
        last = rd_u64(b, HDR + (n - 1) * ENTRY);
    }
    let mut rows = 0u64;
    // Header order: bytes_rcvd, bytes_sent, pkts_rcvd, pkts_sent, received, dropped,
    // if_dropped, non_ip. Entry order: received, dropped, if_dropped, non_ip (16..48),
    // then bytes_rcvd, bytes_sent, pkts_rcvd, pkts_sent (48..80).
    let mut sums = [0u64; 8];
    for i in 0..n {
        let e = HDR + i * ENTRY;
        let r = u64::from(rd_u32(b, e + 8)) + u64::from(rd_u32(b, e + 12));
        rows = rows.saturating_add(r);
        for (k, s) in sums.iter_mut().enumerate() {
            let off = if k < 4 { 48 + 8 * k } else { 16 + 8 * (k - 4) };
            *s = s.saturating_add(rd_u64(b, e + off));
        }
    }
    wr(b, 24, &first.to_le_bytes());
    wr(b, 32, &last.to_le_bytes());
    wr(b, 40, &rows.to_le_bytes());
    for (k, s) in sums.iter().enumerate() {
        wr(b, 48 + 8 * k, &s.to_le_bytes());
    }
}

/// Writes the CRC-32C of everything before the trailer into the trailer.
pub fn fix_crc(b: &mut [u8]) {
    if b.len() < TRAILER {
        return;
    }
    let body = b.len() - TRAILER;
    let crc = crc32c::crc32c(&b[..body]);
    wr(b, body, &crc.to_le_bytes());
}

/// A `day.meta` with one block whose columns are described by `descs` (stored length,
/// raw length, checksum, encoding; every column block at offset 0 of its file).
pub fn one_block_meta(
    rows_v4: u32,
    rows_v6: u32,
    descs: &[(u32, u32, u32, u8); NUM_COLUMNS],
) -> Vec<u8> {
    let mut b = vec![0u8; HDR + ENTRY + TRAILER];
    let e = HDR;
    wr(&mut b, e, &TS.to_le_bytes());
    wr(&mut b, e + 8, &rows_v4.to_le_bytes());
    wr(&mut b, e + 12, &rows_v6.to_le_bytes());
    for (ci, &(stored, raw, crc, enc)) in descs.iter().enumerate() {
        let cb = e + ENTRY_COLUMNS + ci * COL;
        wr(&mut b, cb + 8, &stored.to_le_bytes());
        wr(&mut b, cb + 12, &raw.to_le_bytes());
        wr(&mut b, cb + 16, &crc.to_le_bytes());
        b[cb + 20] = enc;
    }
    fix_header(&mut b);
    fix_totals(&mut b);
    fix_crc(&mut b);
    b
}

/// Checks what every successfully read block must satisfy.
fn check_block(d: &godb::BlockData, columns: ColumnSet) {
    assert!(
        d.rows_v4 <= d.rows,
        "rows_v4 {} > rows {}",
        d.rows_v4,
        d.rows
    );
    let lens = [
        d.sip.as_ref().map(|c| c.len()),
        d.dip.as_ref().map(|c| c.len()),
        d.proto.as_ref().map(Vec::len),
        d.dport.as_ref().map(Vec::len),
        d.l7.as_ref().map(Vec::len),
        d.bytes_rcvd.as_ref().map(Vec::len),
        d.bytes_sent.as_ref().map(Vec::len),
        d.pkts_rcvd.as_ref().map(Vec::len),
        d.pkts_sent.as_ref().map(Vec::len),
    ];
    for (c, len) in Column::ALL.iter().zip(lens) {
        assert_eq!(
            len.is_some(),
            columns.contains(*c),
            "column {} presence",
            c.name()
        );
        if let Some(len) = len {
            assert_eq!(len, d.rows, "column {} has {len} values", c.name());
        }
    }
    for ip in [&d.sip, &d.dip].into_iter().flatten() {
        for i in 0..d.rows {
            let a = ip.get(i);
            assert_eq!(
                a.map(|a| a.is_ipv4()),
                Some(i < d.rows_v4),
                "address {i} of {}",
                d.rows
            );
        }
        assert_eq!(ip.get(d.rows), None);
    }
    if columns == ColumnSet::ALL {
        let rows = d.to_rows();
        assert_eq!(rows.map(|r| r.len()), Some(d.rows));
    }
}

/// Reads everything the database holds through the public API: interfaces, day
/// summaries, the scan plan, every block of every day, and a query.
/// Asserts that every column of `part` holds rows `lo..lo + part.rows` of `whole`.
fn same_rows(part: &godb::BlockData, whole: &godb::BlockData, lo: usize) {
    let hi = lo + part.rows;
    fn cut<T>(c: &Option<Vec<T>>, lo: usize, hi: usize) -> Option<&[T]> {
        c.as_ref().map(|v| v.get(lo..hi).unwrap_or(&[]))
    }
    assert_eq!(part.proto.as_deref(), cut(&whole.proto, lo, hi), "proto");
    for (name, p, w) in [
        ("dport", &part.dport, &whole.dport),
        ("l7", &part.l7, &whole.l7),
    ] {
        assert_eq!(p.as_deref(), cut(w, lo, hi), "{name}");
    }
    for (name, p, w) in [
        ("bytes_rcvd", &part.bytes_rcvd, &whole.bytes_rcvd),
        ("bytes_sent", &part.bytes_sent, &whole.bytes_sent),
        ("pkts_rcvd", &part.pkts_rcvd, &whole.pkts_rcvd),
        ("pkts_sent", &part.pkts_sent, &whole.pkts_sent),
    ] {
        assert_eq!(p.as_deref(), cut(w, lo, hi), "{name}");
    }
    for (p, w) in [(&part.sip, &whole.sip), (&part.dip, &whole.dip)] {
        assert_eq!(p.is_some(), w.is_some(), "address column read");
        if let (Some(p), Some(w)) = (p, w) {
            for j in lo..hi {
                assert_eq!(p.get(j - lo), w.get(j), "address row {j}");
            }
        }
    }
}

fn read_all(db: &Database, columns: ColumnSet, query: bool) {
    if let Ok(ifaces) = db.interfaces() {
        for i in &ifaces {
            if let Ok(days) = db.days(i) {
                for d in days {
                    assert!(d.first <= d.last, "day summary first > last");
                }
            }
        }
    }
    let req = ScanRequest {
        ifaces: Vec::new(),
        first: i64::MIN,
        last: i64::MAX,
    };
    let Ok(plans) = db.plan(&req) else { return };
    for p in &plans {
        let _ = p.damaged.as_ref().map(|d| d.len());
        let Ok(r) = p.open(db, columns) else { continue };
        for i in 0..r.len() {
            let whole = r.read(i);
            // The two-step decoding (checked and decompressed, then widened a range
            // at a time) agrees with the one-step decoding, error or not; except
            // that the frames of a framed column are decompressed when widened, so
            // read_raw may pass a block whose widening then fails.
            let raw = r.read_raw(i);
            match whole {
                Ok(d) => {
                    check_block(&d, columns);
                    let raw = raw.expect("read passed, read_raw failed");
                    let mut part = godb::BlockData::default();
                    let cut = d.rows / 3;
                    for (lo, hi) in [(0, d.rows), (cut, d.rows), (0, cut)] {
                        raw.rows_into(lo..hi, &mut part).expect("rows_into failed");
                        assert_eq!(part.rows, hi - lo, "rows_into row count");
                        same_rows(&part, &d, lo);
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                    if let Ok(raw) = raw {
                        let mut part = godb::BlockData::default();
                        assert!(
                            raw.rows_into(0..usize::MAX, &mut part).is_err(),
                            "read failed, read_raw and rows_into passed"
                        );
                    }
                }
            }
        }
        assert!(r.read(r.len()).is_err(), "block past the end was read");
    }
    if query {
        for q in ["sip,dip,dport,proto,l7", "time,iface"] {
            if let Ok(mut s) = Statement::new(q, i64::MIN, i64::MAX) {
                s.threads = 1;
                if let Ok(res) = run(db, &s) {
                    let _ = res.rows.len();
                }
            }
        }
    }
}

/// `meta` target: `data` is a mode byte and a `day.meta`; the mode's bits 0-3 ask to
/// repair the header constants, the offsets, the totals and the checksum (in that
/// order). The file is read next to the golden day's column files.
pub fn meta(s: &Scratch, data: &[u8]) {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let mut b = body.to_vec();
    if mode & 1 != 0 {
        fix_header(&mut b);
    }
    if mode & 2 != 0 {
        fix_offsets(&mut b);
    }
    if mode & 4 != 0 {
        fix_totals(&mut b);
    }
    if mode & 8 != 0 {
        fix_crc(&mut b);
    }
    s.write(META_FILE, &b);
    read_all(&s.db, ColumnSet::ALL, mode & 16 != 0);
}

/// Width in bytes of an integer width code, as `docs/FORMAT.md` defines it.
fn width(code: u8) -> u64 {
    match code {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        _ => 8,
    }
}

/// `block` target: `data` is a column selector byte, rows_v4 and rows_v6 (u32 LE),
/// raw_len (u32 LE), a flags byte, then the stored column block (encoding tag first).
/// Flag bit 0 derives raw_len from the rows and the tag instead; bits 1 and 2 clamp
/// the row counts to 255. The block is written as the only block of its column file,
/// with a matching `day.meta`, and read back.
pub fn block(s: &Scratch, data: &[u8]) {
    if data.len() < 15 {
        return;
    }
    let sel = usize::from(data[0]) % NUM_COLUMNS;
    let col = Column::ALL[sel];
    let flags = data[13];
    let mut v4 = rd_u32(data, 1);
    let mut v6 = rd_u32(data, 5);
    if flags & 2 != 0 {
        v4 &= 0xFF;
    }
    if flags & 4 != 0 {
        v6 &= 0xFF;
    }
    let stored = &data[14..];
    let tag = stored[0];
    let mut raw = rd_u32(data, 9);
    if flags & 1 != 0 {
        let code = tag & 7;
        let want = if matches!(col, Column::Sip | Column::Dip) {
            4 * u64::from(v4) + 16 * u64::from(v6)
        } else {
            (u64::from(v4) + u64::from(v6)) * width(code)
        };
        raw = u32::try_from(want).unwrap_or(u32::MAX);
    }
    let stored_len = u32::try_from(stored.len()).unwrap_or(u32::MAX);
    let crc = crc32c::crc32c(stored);
    s.write(col.file_name(), stored);
    // Columns that are not read get a one-byte block. The address columns, which bound
    // the rows a block may claim, get the raw length the rows need and a (sparse) file
    // just long enough for lz4 to produce it, when that is at most 1 MiB.
    let mut descs = [(1u32, 0u32, 0u32, 0u8); NUM_COLUMNS];
    let want = 4 * u64::from(v4) + 16 * u64::from(v6);
    for c in [Column::Sip, Column::Dip] {
        if c != col {
            let need = want.saturating_sub(64).div_ceil(256).max(1);
            let len = if need <= 1 << 20 { need } else { 1 };
            s.set_len(c.file_name(), len);
            descs[c.index()] = (len as u32, u32::try_from(want).unwrap_or(u32::MAX), 0, 5);
        }
    }
    descs[sel] = (stored_len, raw, crc, tag);
    s.write(META_FILE, &one_block_meta(v4, v6, &descs));
    read_all(&s.db, ColumnSet::EMPTY.with(col), false);
}

/// The resolver the condition target uses instead of DNS: deterministic, offline.
/// Names of odd length do not resolve; the others resolve to one IPv4 and one IPv6
/// address derived from the name.
pub fn fake_resolve(host: &str) -> Option<Vec<IpAddr>> {
    if host.len() % 2 == 1 {
        return None;
    }
    let h = crc32c::crc32c(host.as_bytes());
    let v4 = Ipv4Addr::from(h);
    let v6 = Ipv6Addr::from(u128::from(h) << 64 | 1);
    Some(vec![IpAddr::V4(v4), IpAddr::V6(v6)])
}

fn sample_rows() -> Vec<FlowRow> {
    let row = |sip: IpAddr, dip: IpAddr, proto: u8, dport: u16, l7: u16, c: [u64; 4]| FlowRow {
        key: FlowKey {
            sip,
            dip,
            proto,
            dport,
            l7,
        },
        counters: Counters {
            bytes_rcvd: c[0],
            bytes_sent: c[1],
            pkts_rcvd: c[2],
            pkts_sent: c[3],
        },
    };
    let a4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b4 = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));
    let a6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let b6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    vec![
        row(a4, b4, 6, 443, 0, [1500, 300, 2, 3]),
        row(b4, a4, 17, 53, 1, [0, 80, 0, 1]),
        row(a6, b6, 58, 0, 0, [64, 0, 1, 0]),
        row(
            b6,
            a6,
            6,
            65535,
            7,
            [u64::MAX, u64::MAX, u64::MAX, u64::MAX],
        ),
    ]
}

/// `condition` target: `data` as UTF-8 is a condition, optionally followed by a line
/// with a query type and a line with comma-separated interfaces for a [`Statement`].
/// A parsed condition is evaluated on sample rows, printed, and the printed form must
/// parse back to the same condition; a parse error must point into the text.
pub fn condition(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let cond = lines.next().unwrap_or("");
    match Condition::parse_with(cond, &fake_resolve) {
        Ok(c) => {
            let _ = c.columns();
            let rows = sample_rows();
            let hits: Vec<bool> = rows.iter().map(|r| c.matches(r)).collect();
            let shown = c.to_string();
            match Condition::parse_with(&shown, &fake_resolve) {
                Ok(again) => {
                    assert_eq!(again, c, "{cond:?} printed as {shown:?} parses differently");
                    let hits2: Vec<bool> = rows.iter().map(|r| again.matches(r)).collect();
                    assert_eq!(hits, hits2);
                }
                Err(e) => panic!("{cond:?} printed as {shown:?} does not parse: {e}"),
            }
        }
        Err(e) => {
            assert!(
                e.position <= cond.len() && cond.is_char_boundary(e.position),
                "error position {} outside {cond:?}",
                e.position
            );
            let _ = e.to_string();
        }
    }
    let Some(query) = lines.next() else { return };
    let ifaces = lines.next().unwrap_or("");
    let first = i64::from(rd_u32(data, 0) as i32) * 300;
    let last = first.saturating_add(i64::from(rd_u32(data, 4)));
    if let Ok(st) = Statement::new(query, first, last) {
        assert!(st.validate().is_ok());
        let (lo, hi) = st.block_range();
        assert!(lo <= hi.saturating_add(1), "block range {lo}..{hi}");
        let list: Vec<String> = ifaces
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if let Ok(st) = st.with_ifaces(list) {
            assert!(st.validate().is_ok());
        }
    }
}
