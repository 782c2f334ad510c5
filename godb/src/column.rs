//! The nine columns of a flow row, the set of columns a reader asks for, and the
//! encoding of one column block (encoding tag, narrowest integer width, byte-plane
//! shuffle, lz4 block compression) as specified in `docs/FORMAT.md`.

use crate::error::BlockErrorKind;
use crate::meta::ColumnMeta;

/// Number of columns of a flow row.
pub const NUM_COLUMNS: usize = 9;

/// The largest input (and output) of one lz4 block, `LZ4_MAX_INPUT_SIZE` of liblz4.
const LZ4_MAX_INPUT: usize = 0x7E00_0000;

/// One column of the stored flow rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// Source (client) address.
    Sip,
    /// Destination (server) address.
    Dip,
    /// IP protocol number.
    Proto,
    /// Destination (server) port.
    Dport,
    /// Layer-7 protocol id.
    L7,
    /// Bytes from dip to sip.
    BytesRcvd,
    /// Bytes from sip to dip.
    BytesSent,
    /// Packets from dip to sip.
    PktsRcvd,
    /// Packets from sip to dip.
    PktsSent,
}

impl Column {
    /// All columns in column-index order.
    pub const ALL: [Column; NUM_COLUMNS] = [
        Column::Sip,
        Column::Dip,
        Column::Proto,
        Column::Dport,
        Column::L7,
        Column::BytesRcvd,
        Column::BytesSent,
        Column::PktsRcvd,
        Column::PktsSent,
    ];

    /// The column's index in the metadata (its position in [`Column::ALL`]).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The column's name ("sip", "bytes_rcvd", ...).
    pub fn name(self) -> &'static str {
        match self {
            Column::Sip => "sip",
            Column::Dip => "dip",
            Column::Proto => "proto",
            Column::Dport => "dport",
            Column::L7 => "l7",
            Column::BytesRcvd => "bytes_rcvd",
            Column::BytesSent => "bytes_sent",
            Column::PktsRcvd => "pkts_rcvd",
            Column::PktsSent => "pkts_sent",
        }
    }

    /// The name of the column's file in a day folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Column::Sip => "sip.col",
            Column::Dip => "dip.col",
            Column::Proto => "proto.col",
            Column::Dport => "dport.col",
            Column::L7 => "l7.col",
            Column::BytesRcvd => "bytes_rcvd.col",
            Column::BytesSent => "bytes_sent.col",
            Column::PktsRcvd => "pkts_rcvd.col",
            Column::PktsSent => "pkts_sent.col",
        }
    }

    /// The widest width code the column allows (`None` for IP columns, which use code 5).
    fn max_width_code(self) -> Option<u8> {
        match self {
            Column::Sip | Column::Dip => None,
            Column::Proto => Some(1),
            Column::Dport | Column::L7 => Some(2),
            _ => Some(4),
        }
    }
}

/// A set of columns, e.g. the columns a query needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ColumnSet(u16);

impl ColumnSet {
    /// No column.
    pub const EMPTY: ColumnSet = ColumnSet(0);
    /// Every column.
    pub const ALL: ColumnSet = ColumnSet((1 << NUM_COLUMNS) - 1);

    /// This set plus `c`.
    #[must_use]
    pub fn with(self, c: Column) -> ColumnSet {
        ColumnSet(self.0 | (1 << c.index()))
    }

    /// Whether `c` is in the set.
    pub fn contains(self, c: Column) -> bool {
        self.0 & (1 << c.index()) != 0
    }

    /// Whether the set holds no column.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The columns of the set in column-index order.
    pub fn iter(self) -> impl Iterator<Item = Column> {
        Column::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Column> for ColumnSet {
    fn from_iter<T: IntoIterator<Item = Column>>(iter: T) -> Self {
        iter.into_iter().fold(ColumnSet::EMPTY, ColumnSet::with)
    }
}

/// The encoding tag byte (bit offsets and sizes, as in `docs/FORMAT.md`).
pub(crate) mod tag {
    use crate::meta::Field;
    pub const WIDTH: Field = Field {
        off: 0,
        len: 3,
        name: "width",
    };
    pub const SHUFFLE: Field = Field {
        off: 3,
        len: 1,
        name: "shuffle",
    };
    pub const LZ4: Field = Field {
        off: 4,
        len: 1,
        name: "lz4",
    };
    pub const FRAMED: Field = Field {
        off: 5,
        len: 1,
        name: "framed",
    };
    pub const RESERVED: Field = Field {
        off: 6,
        len: 2,
        name: "reserved",
    };
    #[cfg(test)]
    pub const LAYOUT: &[Field] = &[WIDTH, SHUFFLE, LZ4, FRAMED, RESERVED];

    pub const WIDTH_MASK: u8 = (1 << WIDTH.len) - 1;
    pub const SHUFFLE_BIT: u8 = 1 << SHUFFLE.off;
    pub const LZ4_BIT: u8 = 1 << LZ4.off;
    pub const FRAMED_BIT: u8 = 1 << FRAMED.off;
    pub const RESERVED_MASK: u8 = 0b11 << RESERVED.off;
    /// Width code of IP columns.
    pub const IP: u8 = 5;
}

/// Rows per frame of the column blocks a writer frames (those of more rows): each
/// frame is an lz4 block of its own, so that a reader decodes a block a frame at a
/// time into a small buffer that stays in the cache (docs/FORMAT.md, "Frames").
pub(crate) const FRAME_ROWS: usize = 8192;

/// Byte width of integer width code `code` (0..=4).
fn width_of(code: u8) -> usize {
    match code {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        _ => 8,
    }
}

/// An encoded column block: the stored bytes (tag first) and its raw length.
#[derive(Debug, Clone)]
pub(crate) struct Encoded {
    pub bytes: Vec<u8>,
    pub raw_len: usize,
}

impl Encoded {
    pub fn tag(&self) -> u8 {
        self.bytes[0]
    }
}

/// Transposes `n` elements of width `w` into byte planes, appending to `out`.
fn shuffle_into(raw: &[u8], w: usize, out: &mut Vec<u8>) {
    let n = raw.len().checked_div(w).unwrap_or(0);
    let start = out.len();
    out.resize(start + raw.len(), 0);
    let dst = &mut out[start..];
    for (i, elem) in raw.chunks_exact(w.max(1)).enumerate() {
        for (j, b) in elem.iter().enumerate() {
            dst[j * n + i] = *b;
        }
    }
}

/// Picks the smallest of the raw bytes and the compressed `candidates` (tag flags and
/// payload each), made only when there are raw bytes.
fn choose<I: IntoIterator<Item = (u8, Vec<u8>)>>(
    width_code: u8,
    raw: Vec<u8>,
    candidates: impl FnOnce(&[u8]) -> I,
) -> Encoded {
    let raw_len = raw.len();
    let mut best: Vec<u8> = Vec::with_capacity(raw_len + 1);
    best.push(width_code);
    best.extend_from_slice(&raw);
    if raw_len == 0 {
        return Encoded {
            bytes: best,
            raw_len,
        };
    }
    for (flags, c) in candidates(&raw) {
        if c.len() + 1 < best.len() {
            let mut v = Vec::with_capacity(c.len() + 1);
            v.push(width_code | flags);
            v.extend_from_slice(&c);
            best = v;
        }
    }
    Encoded {
        bytes: best,
        raw_len,
    }
}

/// The payload of a framed column block of `rows` rows: the rows per frame, then
/// each frame's lz4 length and lz4 block; `frame_raw(lo, hi, buf)` appends the raw
/// (possibly shuffled) bytes of rows `lo..hi` to `buf`.
fn framed(
    rows: usize,
    frame_rows: usize,
    frame_raw: impl Fn(usize, usize, &mut Vec<u8>),
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(frame_rows as u32).to_le_bytes());
    let mut raw = Vec::new();
    let mut lo = 0;
    while lo < rows {
        let hi = (lo + frame_rows).min(rows);
        raw.clear();
        frame_raw(lo, hi, &mut raw);
        let c = lz4_flex::block::compress(&raw);
        out.extend_from_slice(&(c.len() as u32).to_le_bytes());
        out.extend_from_slice(&c);
        lo = hi;
    }
    out
}

/// Encodes an IP column: the IPv4 addresses, then the IPv6 addresses.
pub(crate) fn encode_ip(v4: &[[u8; 4]], v6: &[[u8; 16]]) -> Encoded {
    encode_ip_framed(v4, v6, FRAME_ROWS)
}

/// [`encode_ip`], framed by `frame_rows` rows when it has more.
pub(crate) fn encode_ip_framed(v4: &[[u8; 4]], v6: &[[u8; 16]], frame_rows: usize) -> Encoded {
    let mut raw = Vec::with_capacity(v4.len() * 4 + v6.len() * 16);
    raw.extend(v4.iter().flatten());
    raw.extend(v6.iter().flatten());
    let (n4, rows) = (v4.len(), v4.len() + v6.len());
    choose(tag::IP, raw, |raw| {
        let (b4, b6) = raw.split_at(n4 * 4);
        // Rows lo..hi: their IPv4 addresses, then their IPv6 addresses.
        let part = |lo: usize, hi: usize, shuffle: bool, out: &mut Vec<u8>| {
            let (a, b) = (lo.min(n4), hi.min(n4));
            let (c, d) = (lo.max(n4) - n4, hi.max(n4) - n4);
            if shuffle {
                shuffle_into(&b4[a * 4..b * 4], 4, out);
                shuffle_into(&b6[c * 16..d * 16], 16, out);
            } else {
                out.extend_from_slice(&b4[a * 4..b * 4]);
                out.extend_from_slice(&b6[c * 16..d * 16]);
            }
        };
        let mut out = Vec::with_capacity(2);
        if rows > frame_rows {
            let f = tag::LZ4_BIT | tag::FRAMED_BIT;
            out.push((
                f,
                framed(rows, frame_rows, |lo, hi, o| part(lo, hi, false, o)),
            ));
            let f = f | tag::SHUFFLE_BIT;
            out.push((
                f,
                framed(rows, frame_rows, |lo, hi, o| part(lo, hi, true, o)),
            ));
        } else {
            let mut shuffled = Vec::with_capacity(raw.len());
            part(0, rows, true, &mut shuffled);
            out.push((tag::LZ4_BIT, lz4_flex::block::compress(raw)));
            let f = tag::LZ4_BIT | tag::SHUFFLE_BIT;
            out.push((f, lz4_flex::block::compress(&shuffled)));
        }
        out
    })
}

/// Encodes an integer column in the narrowest width (at most `max_code`) that holds
/// its largest value.
pub(crate) fn encode_uint(values: &[u64], max_code: u8) -> Encoded {
    encode_uint_framed(values, max_code, FRAME_ROWS)
}

/// [`encode_uint`], framed by `frame_rows` rows when it has more.
pub(crate) fn encode_uint_framed(values: &[u64], max_code: u8, frame_rows: usize) -> Encoded {
    let max = values.iter().copied().max().unwrap_or(0);
    let code: u8 = match max {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 3,
        _ => 4,
    };
    let code = code.min(max_code);
    let w = width_of(code);
    let mut raw = Vec::with_capacity(values.len() * w);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes()[..w]);
    }
    let rows = values.len();
    choose(code, raw, |raw| {
        let part = |lo: usize, hi: usize, shuffle: bool, out: &mut Vec<u8>| {
            if shuffle {
                shuffle_into(&raw[lo * w..hi * w], w, out);
            } else {
                out.extend_from_slice(&raw[lo * w..hi * w]);
            }
        };
        let mut out = Vec::with_capacity(2);
        if rows > frame_rows {
            let f = tag::LZ4_BIT | tag::FRAMED_BIT;
            out.push((
                f,
                framed(rows, frame_rows, |lo, hi, o| part(lo, hi, false, o)),
            ));
            if w > 1 {
                let f = f | tag::SHUFFLE_BIT;
                out.push((
                    f,
                    framed(rows, frame_rows, |lo, hi, o| part(lo, hi, true, o)),
                ));
            }
        } else {
            out.push((tag::LZ4_BIT, lz4_flex::block::compress(raw)));
            if w > 1 {
                let mut shuffled = Vec::with_capacity(raw.len());
                part(0, rows, true, &mut shuffled);
                let f = tag::LZ4_BIT | tag::SHUFFLE_BIT;
                out.push((f, lz4_flex::block::compress(&shuffled)));
            }
        }
        out
    })
}

/// Encodes `values` for integer column `c`.
pub(crate) fn encode_uint_column(c: Column, values: &[u64]) -> Encoded {
    encode_uint(values, c.max_width_code().unwrap_or(4))
}

/// The decoded values of one column block (tests).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    Ip(IpColumn),
    Uint(Vec<u64>),
}

/// The addresses of an IP column: rows `0..v4.len()` are IPv4, the rest IPv6.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpColumn {
    /// IPv4 addresses (network byte order) of the IPv4 rows.
    pub v4: Vec<[u8; 4]>,
    /// IPv6 addresses (network byte order) of the IPv6 rows.
    pub v6: Vec<[u8; 16]>,
}

impl IpColumn {
    /// The address of row `i`, if there is one.
    pub fn get(&self, i: usize) -> Option<std::net::IpAddr> {
        if let Some(a) = self.v4.get(i) {
            Some(std::net::IpAddr::from(*a))
        } else {
            self.v6
                .get(i - self.v4.len())
                .map(|a| std::net::IpAddr::from(*a))
        }
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// Whether the column holds no address.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where [`widen`] writes: the column's values, in the reader's types. The vector is
/// cleared and refilled (its capacity is reused).
#[derive(Debug)]
pub(crate) enum Target<'a> {
    Ip(&'a mut IpColumn),
    U8(&'a mut Vec<u8>),
    U16(&'a mut Vec<u16>),
    U64(&'a mut Vec<u64>),
}

impl Target<'_> {
    /// Empties the target (a column that could not be widened comes out empty).
    fn clear(&mut self) {
        match self {
            Target::Ip(c) => {
                c.v4.clear();
                c.v6.clear();
            }
            Target::U8(v) => v.clear(),
            Target::U16(v) => v.clear(),
            Target::U64(v) => v.clear(),
        }
    }
}

/// Decodes one stored column block after its checksum was verified, whole (tests;
/// readers [`unpack`] and [`widen`] a range at a time).
#[cfg(test)]
pub(crate) fn decode(
    c: Column,
    stored: &[u8],
    meta: &ColumnMeta,
    rows_v4: u32,
    rows_v6: u32,
) -> Result<Decoded, BlockErrorKind> {
    let mut raw = Vec::new();
    let layout = unpack(c, stored, meta, rows_v4, rows_v6, &mut raw)?;
    // A framed block's bytes are its stored frames (after the tag).
    let raw = if layout.is_framed() {
        stored.get(1..).unwrap_or(&[]).to_vec()
    } else {
        raw
    };
    let (v4, v6) = (rows_v4 as usize, rows_v6 as usize);
    if c.max_width_code().is_none() {
        let mut col = IpColumn::default();
        widen(&raw, layout, v4, v6, (0, v4 + v6), Target::Ip(&mut col))?;
        Ok(Decoded::Ip(col))
    } else {
        let mut v = Vec::new();
        widen(&raw, layout, v4, v6, (0, v4 + v6), Target::U64(&mut v))?;
        Ok(Decoded::Uint(v))
    }
}

/// Rows `lo..hi` of an integer column of `n` rows stored `w` bytes wide (little
/// endian; byte planes of `n` bytes each when `shuffled`) from `bytes` into `out`,
/// truncated to `T` with `conv`. `lo..hi` lies within `0..n` and `bytes` holds the
/// `n * w` bytes (the caller checked).
fn fill_uint<T: Copy + Default>(
    bytes: &[u8],
    n: usize,
    w: usize,
    shuffled: bool,
    (lo, hi): (usize, usize),
    out: &mut Vec<T>,
    conv: impl Fn(u64) -> T,
) {
    // Appended to `out`: one allocation of the final size, not a doubling chain
    // (fresh memory is costly).
    out.reserve_exact(hi - lo);
    if !shuffled || w == 1 {
        let bytes = bytes.get(lo * w..hi * w).unwrap_or(&[]);
        match w {
            1 => out.extend(bytes.iter().map(|&b| conv(u64::from(b)))),
            2 => out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|c| conv(u64::from(u16::from_le_bytes([c[0], c[1]])))),
            ),
            4 => out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| conv(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
            ),
            _ => out.extend(bytes.chunks_exact(8).map(|c| {
                let mut le = [0u8; 8];
                le.copy_from_slice(c);
                conv(u64::from_le_bytes(le))
            })),
        }
        return;
    }
    // Byte planes: value i is the sum of plane j's byte i shifted by 8j, built in
    // one pass over the planes.
    match w {
        2 => from_planes::<2, T>(bytes, n, (lo, hi), out, conv),
        4 => from_planes::<4, T>(bytes, n, (lo, hi), out, conv),
        _ => from_planes::<8, T>(bytes, n, (lo, hi), out, conv),
    }
}

/// The `W` byte planes of `n` bytes each in `bytes`, each cut to `lo..hi` (empty
/// when `bytes` is too short; the caller checked it is not).
#[inline(always)]
fn planes<const W: usize>(bytes: &[u8], n: usize, (lo, hi): (usize, usize)) -> [&[u8]; W] {
    std::array::from_fn(|j| bytes.get(j * n + lo..j * n + hi).unwrap_or(&[]))
}

/// Rows `lo..hi` of `W` (2, 4 or 8) byte planes of `n` bytes each: value i is
/// plane j's byte i shifted by 8j, summed over the planes, converted with `conv`.
/// Written as zipped slices so that the compiler vectorises it.
#[inline(always)]
fn from_planes<const W: usize, T>(
    bytes: &[u8],
    n: usize,
    range: (usize, usize),
    out: &mut Vec<T>,
    conv: impl Fn(u64) -> T,
) {
    let p = planes::<W>(bytes, n, range);
    let len = p.iter().map(|s| s.len()).min().unwrap_or(0);
    let p: [&[u8]; W] = p.map(|s| &s[..len]);
    let b = |x: &u8, j: usize| u64::from(*x) << (8 * j);
    match W {
        2 => out.extend(
            p[0].iter()
                .zip(p[1])
                .map(|(x0, x1)| conv(b(x0, 0) | b(x1, 1))),
        ),
        4 => {
            let lo = p[0].iter().zip(p[1]);
            let hi = p[2].iter().zip(p[3]);
            out.extend(
                lo.zip(hi)
                    .map(|((x0, x1), (x2, x3))| conv(b(x0, 0) | b(x1, 1) | b(x2, 2) | b(x3, 3))),
            );
        }
        _ => {
            let q0 = p[0].iter().zip(p[1]).zip(p[2].iter().zip(p[3]));
            let q1 = p[4].iter().zip(p[5]).zip(p[6].iter().zip(p[7]));
            out.extend(
                q0.zip(q1)
                    .map(|(((x0, x1), (x2, x3)), ((x4, x5), (x6, x7)))| {
                        conv(
                            b(x0, 0)
                                | b(x1, 1)
                                | b(x2, 2)
                                | b(x3, 3)
                                | b(x4, 4)
                                | b(x5, 5)
                                | b(x6, 6)
                                | b(x7, 7),
                        )
                    }),
            );
        }
    }
}

/// Addresses `lo..hi` of `n` addresses of width `W` (4 or 16; byte planes of `n`
/// bytes each when `shuffled`) from `bytes` (their `n * W` bytes) into `out`.
fn fill_ip<const W: usize>(
    bytes: &[u8],
    n: usize,
    shuffled: bool,
    (lo, hi): (usize, usize),
    out: &mut Vec<[u8; W]>,
) {
    // Appended to `out`.
    out.reserve_exact(hi - lo);
    if !shuffled {
        let bytes = bytes.get(lo * W..hi * W).unwrap_or(&[]);
        out.extend(bytes.chunks_exact(W).map(|c| {
            let mut a = [0u8; W];
            a.copy_from_slice(c);
            a
        }));
        return;
    }
    // Byte planes: address i is byte i of each plane in turn.
    let p = planes::<W>(bytes, n, (lo, hi));
    let len = p.iter().map(|s| s.len()).min().unwrap_or(0);
    if W == 4 {
        // IPv4, the common case: all four planes at once (vectorised).
        let q = p[0].iter().zip(p[1]).zip(p[2].iter().zip(p[3]));
        out.extend(q.map(|((x0, x1), (x2, x3))| {
            let mut a = [0u8; W];
            a[..4].copy_from_slice(&[*x0, *x1, *x2, *x3]);
            a
        }));
        return;
    }
    let start = out.len();
    out.resize(start + len, [0u8; W]);
    for (j, plane) in p.iter().enumerate() {
        for (a, &x) in out[start..].iter_mut().zip(*plane) {
            a[j] = x;
        }
    }
}

/// [`widen`] of a framed block: the frames holding rows `lo..hi` decoded one at a
/// time (into the thread's frame buffer, which stays in the cache) and their rows of
/// the range appended to `out`.
fn widen_frames(
    payload: &[u8],
    code: u8,
    shuffled: bool,
    rows_v4: usize,
    rows_v6: usize,
    (lo, hi): (usize, usize),
    out: &mut Target<'_>,
) -> Result<(), BlockErrorKind> {
    if code == 0 || matches!(out, Target::Ip(_)) != (code == tag::IP) {
        return Err(BlockErrorKind::BadEncoding(code));
    }
    let w = width_of(code);
    FRAME.with(|buf| {
        let mut buf = buf.borrow_mut();
        for f in frames(payload, code, rows_v4, rows_v6) {
            let f = f?;
            if f.hi <= lo {
                continue;
            }
            if f.lo >= hi {
                break;
            }
            if buf.len() < f.raw_len {
                buf.resize(f.raw_len, 0);
            }
            let raw = &mut buf[..f.raw_len];
            // (unpack checked the lengths against liblz4's limit.)
            let n = lz4::block::decompress_to_buffer(f.lz4, Some(f.raw_len as i32), raw)
                .map_err(|e| BlockErrorKind::Decompress(format!("frame at row {}: {e}", f.lo)))?;
            if n != f.raw_len {
                return Err(BlockErrorKind::Decompress(format!(
                    "frame at row {}: decompressed {n} bytes, expected {}",
                    f.lo, f.raw_len
                )));
            }
            let rows = f.hi - f.lo;
            let (a, b) = (lo.max(f.lo) - f.lo, hi.min(f.hi) - f.lo);
            match out {
                Target::Ip(col) => {
                    let n4 = f.n4;
                    let (b4, b6) = raw.split_at(4 * n4);
                    fill_ip(b4, n4, shuffled, (a.min(n4), b.min(n4)), &mut col.v4);
                    let r6 = (a.max(n4) - n4, b.max(n4) - n4);
                    fill_ip(b6, rows - n4, shuffled, r6, &mut col.v6);
                }
                Target::U8(v) => fill_uint(raw, rows, w, shuffled, (a, b), v, |x| x as u8),
                Target::U16(v) => fill_uint(raw, rows, w, shuffled, (a, b), v, |x| x as u16),
                Target::U64(v) => fill_uint(raw, rows, w, shuffled, (a, b), v, |x| x),
            }
        }
        Ok(())
    })
}

/// How the raw bytes of a column block are laid out once [`unpack`] has checked and
/// decompressed them: the width code of their values (or [`tag::IP`]) and whether
/// they are byte planes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RawLayout {
    code: u8,
    shuffled: bool,
    /// Rows per frame of a framed block (whose bytes are then the stored frames, still
    /// compressed, decoded as they are widened); 0 if not framed.
    frame_rows: usize,
}

impl RawLayout {
    /// Whether the block is framed: [`unpack`] then decodes nothing, and [`widen`]
    /// takes the stored payload (after the tag byte) instead of the raw bytes.
    pub(crate) fn is_framed(&self) -> bool {
        self.frame_rows > 0
    }
}

/// Checks one stored column block (after its checksum was verified) against its
/// metadata and the block's row counts, and puts its raw bytes (decompressed, still
/// in their stored width and layout) into `out`, reusing its capacity. What
/// [`widen`] then turns into values, any range of rows at a time.
pub(crate) fn unpack(
    c: Column,
    stored: &[u8],
    meta: &ColumnMeta,
    rows_v4: u32,
    rows_v6: u32,
    out: &mut Vec<u8>,
) -> Result<RawLayout, BlockErrorKind> {
    let Some((&t, payload)) = stored.split_first() else {
        return Err(BlockErrorKind::BadLength("empty column block".into()));
    };
    if t != meta.encoding || t & tag::RESERVED_MASK != 0 {
        return Err(BlockErrorKind::BadEncoding(t));
    }
    let code = t & tag::WIDTH_MASK;
    let shuffle = t & tag::SHUFFLE_BIT != 0;
    let lz4 = t & tag::LZ4_BIT != 0;
    let framed = t & tag::FRAMED_BIT != 0;
    let (v4, v6) = (rows_v4 as u64, rows_v6 as u64);
    let rows = v4 + v6;
    let expected_raw = match c.max_width_code() {
        None if code == tag::IP => 4 * v4 + 16 * v6,
        Some(max) if code <= max => rows * width_of(code) as u64,
        _ => return Err(BlockErrorKind::BadEncoding(t)),
    };
    if (code == 0 && (shuffle || lz4 || framed || !payload.is_empty())) || (framed && !lz4) {
        return Err(BlockErrorKind::BadEncoding(t));
    }
    if expected_raw != u64::from(meta.raw_len) {
        return Err(BlockErrorKind::BadLength(format!(
            "raw length {} but {rows} rows need {expected_raw}",
            meta.raw_len
        )));
    }
    let raw_len = meta.raw_len as usize;
    if framed {
        let frame_rows = check_frames(payload, code, rows_v4 as usize, rows_v6 as usize)?;
        // Nothing decoded: the caller keeps the stored frames (see
        // `RawLayout::is_framed`), decompressed as rows are widened.
        out.clear();
        return Ok(RawLayout {
            code,
            shuffled: shuffle,
            frame_rows,
        });
    }
    if lz4 {
        // lz4 cannot expand data more than about 255-fold: refuse to allocate for a
        // length that the payload cannot possibly produce.
        if raw_len > payload.len().saturating_mul(256).saturating_add(64) {
            return Err(BlockErrorKind::BadLength(format!(
                "raw length {raw_len} impossible for an lz4 payload of {} bytes",
                payload.len()
            )));
        }
        // liblz4 (below) takes lengths as C ints, up to its LZ4_MAX_INPUT_SIZE.
        if payload.len() > LZ4_MAX_INPUT || raw_len > LZ4_MAX_INPUT {
            return Err(BlockErrorKind::BadLength(format!(
                "lz4 payload of {} bytes for {raw_len} raw bytes: too large for one lz4 block",
                payload.len()
            )));
        }
        // Only the growth of the buffer is zeroed: a reused buffer is overwritten.
        if out.len() < raw_len {
            out.resize(raw_len, 0);
        }
        out.truncate(raw_len);
        // liblz4's decoder (the reference implementation, checked against the ends
        // of its input and output) is about twice as fast as lz4_flex's on our
        // blocks (docs/BENCHMARKS.md); the block format is the same.
        let n = lz4::block::decompress_to_buffer(payload, Some(raw_len as i32), out)
            .map_err(|e| BlockErrorKind::Decompress(e.to_string()))?;
        if n != raw_len {
            return Err(BlockErrorKind::Decompress(format!(
                "decompressed {n} bytes, expected {raw_len}"
            )));
        }
    } else {
        if payload.len() != raw_len {
            return Err(BlockErrorKind::BadLength(format!(
                "raw payload of {} bytes, expected {raw_len}",
                payload.len()
            )));
        }
        out.clear();
        out.extend_from_slice(payload);
    }
    Ok(RawLayout {
        code,
        shuffled: shuffle,
        frame_rows: 0,
    })
}

/// The frames of a framed payload (docs/FORMAT.md, "Frames"): for each frame its
/// rows, the length of its raw bytes and its lz4 block, in row order.
fn frames<'a>(
    payload: &'a [u8],
    code: u8,
    rows_v4: usize,
    rows_v6: usize,
) -> impl Iterator<Item = Result<Frame<'a>, BlockErrorKind>> + 'a {
    let rows = rows_v4 + rows_v6;
    let bad = |why: String| BlockErrorKind::BadLength(format!("frames: {why}"));
    let u32_at = |at: usize| -> Option<usize> {
        let b = payload.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let frame_rows = u32_at(0).unwrap_or(0);
    let mut at = 4;
    let mut lo = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || lo >= rows {
            return None;
        }
        if frame_rows == 0 {
            failed = true;
            return Some(Err(bad("no rows per frame".into())));
        }
        let hi = lo.saturating_add(frame_rows).min(rows);
        let Some(len) = u32_at(at) else {
            failed = true;
            return Some(Err(bad(format!(
                "frame at row {lo}: payload ends at byte {at}"
            ))));
        };
        let start = at + 4;
        let Some(lz4) = payload.get(start..start.saturating_add(len)) else {
            failed = true;
            return Some(Err(bad(format!(
                "frame at row {lo}: {len} bytes past the payload"
            ))));
        };
        at = start + len;
        let n4 = hi.min(rows_v4) - lo.min(rows_v4);
        let n6 = (hi - lo) - n4;
        let raw_len = if code == tag::IP {
            4 * n4 + 16 * n6
        } else {
            (hi - lo) * width_of(code)
        };
        let f = Frame {
            lo,
            hi,
            n4,
            raw_len,
            lz4,
            end: at,
        };
        lo = hi;
        Some(Ok(f))
    })
}

/// One frame of a framed column block.
struct Frame<'a> {
    /// Its rows, `lo..hi` of the block.
    lo: usize,
    hi: usize,
    /// How many of them are IPv4 rows (address columns).
    n4: usize,
    /// Length of its raw bytes.
    raw_len: usize,
    /// Its lz4 block.
    lz4: &'a [u8],
    /// Where it ends in the payload.
    end: usize,
}

/// Checks the frame index of a framed payload: one frame per `frame_rows` rows,
/// each lz4 block within the payload and able to hold its rows, nothing after the
/// last. The rows per frame.
fn check_frames(
    payload: &[u8],
    code: u8,
    rows_v4: usize,
    rows_v6: usize,
) -> Result<usize, BlockErrorKind> {
    if rows_v4 + rows_v6 == 0 {
        return Err(BlockErrorKind::BadLength(
            "frames: a framed block without rows".into(),
        ));
    }
    let mut end = 4;
    for f in frames(payload, code, rows_v4, rows_v6) {
        let f = f?;
        if f.raw_len > f.lz4.len().saturating_mul(256).saturating_add(64)
            || f.raw_len > LZ4_MAX_INPUT
        {
            return Err(BlockErrorKind::BadLength(format!(
                "frames: raw length {} impossible for the lz4 block of {} bytes at row {}",
                f.raw_len,
                f.lz4.len(),
                f.lo
            )));
        }
        end = f.end;
    }
    if end != payload.len() {
        return Err(BlockErrorKind::BadLength(format!(
            "frames: {} bytes after the last frame",
            payload.len().saturating_sub(end)
        )));
    }
    let b = payload.get(..4).unwrap_or(&[0; 4]);
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

thread_local! {
    /// The raw bytes of the frame being widened (one buffer per thread, reused).
    static FRAME: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Rows `lo..hi` (clamped to the block) of a column block unpacked by [`unpack`] (its
/// raw bytes and layout, the block's row counts) into `out`. The IPv4 rows of an
/// address column come first: rows from `rows_v4` on are its IPv6 rows.
pub(crate) fn widen(
    raw: &[u8],
    layout: RawLayout,
    rows_v4: usize,
    rows_v6: usize,
    (lo, hi): (usize, usize),
    mut out: Target<'_>,
) -> Result<(), BlockErrorKind> {
    let rows = rows_v4 + rows_v6;
    let (lo, hi) = (lo.min(rows), hi.min(rows));
    let (lo, hi) = (lo.min(hi), hi);
    let RawLayout {
        code,
        shuffled,
        frame_rows,
    } = layout;
    let w = width_of(code);
    if frame_rows > 0 {
        out.clear();
        let result = widen_frames(raw, code, shuffled, rows_v4, rows_v6, (lo, hi), &mut out);
        if result.is_err() {
            out.clear();
        }
        return result;
    }
    let expected = if code == tag::IP {
        4 * rows_v4 + 16 * rows_v6
    } else {
        rows * w
    };
    // On an error the target comes out empty, never holding an earlier range.
    if raw.len() != expected {
        out.clear();
        return Err(BlockErrorKind::BadLength(format!(
            "{} raw bytes, expected {expected}",
            raw.len()
        )));
    }
    if matches!(out, Target::Ip(_)) != (code == tag::IP) {
        out.clear();
        return Err(BlockErrorKind::BadEncoding(code));
    }
    out.clear();
    match out {
        Target::Ip(col) => {
            let (b4, b6) = raw.split_at(4 * rows_v4);
            let r4 = (lo.min(rows_v4), hi.min(rows_v4));
            let r6 = (lo.max(rows_v4) - rows_v4, hi.max(rows_v4) - rows_v4);
            fill_ip(b4, rows_v4, shuffled, r4, &mut col.v4);
            fill_ip(b6, rows_v6, shuffled, r6, &mut col.v6);
        }
        Target::U8(v) if w == 0 => {
            v.clear();
            v.resize(hi - lo, 0);
        }
        Target::U16(v) if w == 0 => {
            v.clear();
            v.resize(hi - lo, 0);
        }
        Target::U64(v) if w == 0 => {
            v.clear();
            v.resize(hi - lo, 0);
        }
        Target::U8(v) => fill_uint(raw, rows, w, shuffled, (lo, hi), v, |x| x as u8),
        Target::U16(v) => fill_uint(raw, rows, w, shuffled, (lo, hi), v, |x| x as u16),
        Target::U64(v) => fill_uint(raw, rows, w, shuffled, (lo, hi), v, |x| x),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta_for(e: &Encoded) -> ColumnMeta {
        ColumnMeta {
            offset: 0,
            stored_len: e.bytes.len() as u32,
            raw_len: e.raw_len as u32,
            crc32c: crc32c::crc32c(&e.bytes),
            encoding: e.tag(),
        }
    }

    proptest! {
        #[test]
        fn uint_round_trip(values in prop::collection::vec(prop_oneof![
            Just(0u64), 0u64..300, 0u64..70_000, any::<u64>(), Just(u64::MAX)], 0..300)) {
            let e = encode_uint_column(Column::BytesSent, &values);
            let d = decode(Column::BytesSent, &e.bytes, &meta_for(&e), values.len() as u32, 0);
            prop_assert_eq!(d, Ok(Decoded::Uint(values)));
        }

        #[test]
        fn ip_round_trip(v4 in prop::collection::vec(any::<[u8; 4]>(), 0..100),
                         v6 in prop::collection::vec(any::<[u8; 16]>(), 0..100),
                         repeat in 1usize..5) {
            let v4: Vec<_> = v4.iter().flat_map(|a| std::iter::repeat(*a).take(repeat)).collect();
            let e = encode_ip(&v4, &v6);
            let d = decode(Column::Sip, &e.bytes, &meta_for(&e), v4.len() as u32, v6.len() as u32);
            prop_assert_eq!(d, Ok(Decoded::Ip(IpColumn { v4, v6 })));
        }

        #[test]
        fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 1..64),
                               raw_len in 0u32..200, v4 in 0u32..20, v6 in 0u32..20) {
            let meta = ColumnMeta { offset: 0, stored_len: bytes.len() as u32, raw_len,
                                    crc32c: 0, encoding: bytes[0] };
            for c in Column::ALL {
                let _ = decode(c, &bytes, &meta, v4, v6);
            }
        }
    }

    /// Encodes with a given layout, whatever its size, so that every tag combination
    /// is decoded in the tests (the writer only picks the smallest).
    fn encode_forced(raw: &[u8], code: u8, split: usize, shuffle: bool, lz4: bool) -> Encoded {
        let mut body = Vec::new();
        if shuffle && code == tag::IP {
            shuffle_into(&raw[..split], 4, &mut body);
            shuffle_into(&raw[split..], 16, &mut body);
        } else if shuffle {
            shuffle_into(raw, width_of(code), &mut body);
        } else {
            body.extend_from_slice(raw);
        }
        if lz4 {
            body = lz4_flex::block::compress(&body);
        }
        let t =
            code | if shuffle { tag::SHUFFLE_BIT } else { 0 } | if lz4 { tag::LZ4_BIT } else { 0 };
        let mut bytes = vec![t];
        bytes.extend_from_slice(&body);
        Encoded {
            bytes,
            raw_len: raw.len(),
        }
    }

    proptest! {
        #[test]
        fn every_encoding_round_trips(values in prop::collection::vec(any::<u64>(), 0..80),
                                      shift in 0u32..64,
                                      v4 in prop::collection::vec(any::<[u8; 4]>(), 0..30),
                                      v6 in prop::collection::vec(any::<[u8; 16]>(), 0..30),
                                      shuffle: bool, lz4: bool) {
            let values: Vec<u64> = values.iter().map(|v| v >> shift).collect();
            let max = values.iter().copied().max().unwrap_or(0);
            for code in 1u8..=4 {
                let w = width_of(code);
                if w < 8 && max >> (8 * w) != 0 {
                    continue;
                }
                let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()[..w].to_vec()).collect();
                let e = encode_forced(&raw, code, 0, shuffle, lz4);
                let d = decode(Column::BytesRcvd, &e.bytes, &meta_for(&e), values.len() as u32, 0);
                prop_assert_eq!(d, Ok(Decoded::Uint(values.clone())));
            }
            let mut raw: Vec<u8> = v4.iter().flatten().copied().collect();
            raw.extend(v6.iter().flatten());
            let e = encode_forced(&raw, tag::IP, v4.len() * 4, shuffle, lz4);
            let d = decode(Column::Dip, &e.bytes, &meta_for(&e), v4.len() as u32, v6.len() as u32);
            prop_assert_eq!(d, Ok(Decoded::Ip(IpColumn { v4, v6 })));
        }
    }

    /// Rows `lo..hi` of a column block widened on their own, as [`RawBlock`] does.
    fn widen_range(e: &Encoded, c: Column, v4: usize, v6: usize, lo: usize, hi: usize) -> Decoded {
        let mut raw = Vec::new();
        let layout = unpack(c, &e.bytes, &meta_for(e), v4 as u32, v6 as u32, &mut raw).unwrap();
        if layout.is_framed() {
            raw = e.bytes[1..].to_vec();
        }
        if c.max_width_code().is_none() {
            let mut col = IpColumn::default();
            widen(&raw, layout, v4, v6, (lo, hi), Target::Ip(&mut col)).unwrap();
            Decoded::Ip(col)
        } else {
            let mut v = vec![7u64; 3];
            widen(&raw, layout, v4, v6, (lo, hi), Target::U64(&mut v)).unwrap();
            Decoded::Uint(v)
        }
    }

    proptest! {
        #[test]
        fn framed_blocks_round_trip(values in prop::collection::vec(prop_oneof![
                                        Just(0u64), 0u64..300, 0u64..70_000, any::<u64>()], 1..200),
                                    v4 in prop::collection::vec(any::<[u8; 4]>(), 0..60),
                                    v6 in prop::collection::vec(any::<[u8; 16]>(), 0..60),
                                    frame_rows in 1usize..40,
                                    a in 0usize..300, b in 0usize..300) {
            // Any rows per frame, whole and any range of rows: the same values as
            // the column they were made from.
            let e = encode_uint_framed(&values, 4, frame_rows);
            let n = values.len();
            if n > frame_rows && values.iter().any(|v| *v != 0) {
                prop_assert!(e.tag() & tag::FRAMED_BIT != 0 || e.tag() & tag::LZ4_BIT == 0);
            }
            let d = decode(Column::BytesSent, &e.bytes, &meta_for(&e), n as u32, 0);
            prop_assert_eq!(d, Ok(Decoded::Uint(values.clone())));
            let (lo, hi) = (a.min(b).min(n), a.max(b).min(n));
            prop_assert_eq!(widen_range(&e, Column::BytesSent, n, 0, lo, hi),
                            Decoded::Uint(values[lo..hi].to_vec()));
            let rows = v4.len() + v6.len();
            if rows > 0 {
                let e = encode_ip_framed(&v4, &v6, frame_rows);
                let d = decode(Column::Sip, &e.bytes, &meta_for(&e), v4.len() as u32, v6.len() as u32);
                prop_assert_eq!(d, Ok(Decoded::Ip(IpColumn { v4: v4.clone(), v6: v6.clone() })));
                let (lo, hi) = (a.min(b).min(rows), a.max(b).min(rows));
                let n4 = v4.len();
                let want = IpColumn {
                    v4: v4[lo.min(n4)..hi.min(n4)].to_vec(),
                    v6: v6[lo.max(n4) - n4..hi.max(n4) - n4].to_vec(),
                };
                prop_assert_eq!(widen_range(&e, Column::Sip, n4, v6.len(), lo, hi), Decoded::Ip(want));
            }
        }
    }

    #[test]
    fn large_blocks_are_framed() {
        // More rows than a frame: framed, shuffled (counters with high zero bytes),
        // one lz4 block per FRAME_ROWS rows.
        let values: Vec<u64> = (0..3 * FRAME_ROWS as u64 + 5)
            .map(|i| i * 37 % 5000)
            .collect();
        let e = encode_uint(&values, 4);
        let t = e.tag();
        assert_eq!(
            t & (tag::FRAMED_BIT | tag::LZ4_BIT | tag::SHUFFLE_BIT),
            tag::FRAMED_BIT | tag::LZ4_BIT | tag::SHUFFLE_BIT
        );
        assert_eq!(
            frames(&e.bytes[1..], t & tag::WIDTH_MASK, values.len(), 0).count(),
            4
        );
        let d = decode(
            Column::PktsSent,
            &e.bytes,
            &meta_for(&e),
            values.len() as u32,
            0,
        );
        assert_eq!(d, Ok(Decoded::Uint(values.clone())));
        // A block of one frame's rows is not framed.
        let e = encode_uint(&values[..FRAME_ROWS], 4);
        assert_eq!(e.tag() & tag::FRAMED_BIT, 0);
    }

    #[test]
    fn damaged_frames_are_errors() {
        let values: Vec<u64> = (0..100u64).map(|i| i * 1000).collect();
        let e = encode_uint_framed(&values, 4, 16);
        assert!(e.tag() & tag::FRAMED_BIT != 0);
        let n = values.len() as u32;
        let dec = |bytes: &[u8]| {
            let m = ColumnMeta {
                stored_len: bytes.len() as u32,
                crc32c: crc32c::crc32c(bytes),
                ..meta_for(&e)
            };
            decode(Column::BytesRcvd, bytes, &m, n, 0)
        };
        // Truncated, one byte too many, no rows per frame, a frame length past the end.
        let short = &e.bytes[..e.bytes.len() - 1];
        assert!(
            matches!(dec(short), Err(BlockErrorKind::BadLength(_))),
            "{:?}",
            dec(short)
        );
        let mut long = e.bytes.clone();
        long.push(0);
        assert!(matches!(dec(&long), Err(BlockErrorKind::BadLength(_))));
        let mut zero = e.bytes.clone();
        zero[1..5].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(dec(&zero), Err(BlockErrorKind::BadLength(_))));
        let mut past = e.bytes.clone();
        past[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(dec(&past), Err(BlockErrorKind::BadLength(_))));
        // A damaged lz4 block: an error when its rows are widened, and the column
        // comes out empty.
        let mut bad = e.bytes.clone();
        let first_len = u32::from_le_bytes([bad[5], bad[6], bad[7], bad[8]]) as usize;
        for b in &mut bad[9..9 + first_len] {
            *b = 0xff;
        }
        let mut raw = Vec::new();
        let m = ColumnMeta {
            crc32c: crc32c::crc32c(&bad),
            ..meta_for(&e)
        };
        let layout = unpack(Column::BytesRcvd, &bad, &m, n, 0, &mut raw).unwrap();
        assert!(layout.is_framed() && raw.is_empty());
        let raw = bad[1..].to_vec();
        let mut v = vec![1u64];
        let r = widen(&raw, layout, n as usize, 0, (0, 10), Target::U64(&mut v));
        assert!(matches!(r, Err(BlockErrorKind::Decompress(_))), "{r:?}");
        assert!(v.is_empty());
        // Rows past the damaged frame still widen.
        let mut v = Vec::new();
        widen(&raw, layout, n as usize, 0, (16, 40), Target::U64(&mut v)).unwrap();
        assert_eq!(v, values[16..40]);
        // The framed bit needs lz4 and a width.
        let mut no_lz4 = e.bytes.clone();
        no_lz4[0] &= !tag::LZ4_BIT;
        let m = ColumnMeta {
            encoding: no_lz4[0],
            ..meta_for(&e)
        };
        assert_eq!(
            decode(Column::BytesRcvd, &no_lz4, &m, n, 0),
            Err(BlockErrorKind::BadEncoding(no_lz4[0]))
        );
    }

    #[test]
    fn narrowest_width_and_zero_encoding() {
        assert_eq!(encode_uint(&[0, 0, 0], 4).bytes, vec![0]);
        assert_eq!(encode_uint(&[], 4).bytes, vec![0]);
        assert_eq!(encode_uint(&[255], 4).tag() & tag::WIDTH_MASK, 1);
        assert_eq!(encode_uint(&[256], 4).tag() & tag::WIDTH_MASK, 2);
        assert_eq!(encode_uint(&[u64::MAX], 4).tag() & tag::WIDTH_MASK, 4);
        assert_eq!(encode_uint(&[70_000], 2).tag() & tag::WIDTH_MASK, 2);
    }

    #[test]
    fn highly_compressible_blocks_decode() {
        // lz4's best ratio (a long run) must pass the allocation guard, in one
        // block and in frames.
        let values = vec![7u64; 1 << 21];
        let e = encode_uint_framed(&values, 4, usize::MAX);
        assert!(e.bytes.len() < values.len() / 200);
        let d = decode(
            Column::PktsSent,
            &e.bytes,
            &meta_for(&e),
            values.len() as u32,
            0,
        );
        assert_eq!(d, Ok(Decoded::Uint(values.clone())));
        let e = encode_uint_column(Column::PktsSent, &values);
        assert!(e.tag() & tag::FRAMED_BIT != 0);
        let d = decode(
            Column::PktsSent,
            &e.bytes,
            &meta_for(&e),
            values.len() as u32,
            0,
        );
        assert_eq!(d, Ok(Decoded::Uint(values)));
    }

    #[test]
    fn lz4_blocks_beyond_liblz4s_limit_are_errors() {
        // 2^28 rows of 8 bytes: 2 GiB of raw bytes, more than one lz4 block may
        // hold; refused before any buffer is allocated for them.
        let rows = 1u32 << 28;
        let mut stored = vec![0u8; (8usize << 28) / 256 + 1];
        stored[0] = 4 | tag::LZ4_BIT;
        let m = ColumnMeta {
            encoding: stored[0],
            raw_len: rows * 8,
            ..meta_for(&encode_uint(&[1], 4))
        };
        let mut out = Vec::new();
        let e = unpack(Column::PktsSent, &stored, &m, rows, 0, &mut out);
        assert!(
            matches!(&e, Err(BlockErrorKind::BadLength(why)) if why.contains("too large for one lz4 block")),
            "{e:?}"
        );
        assert!(out.capacity() == 0);
    }

    #[test]
    fn unknown_and_disallowed_tags_are_errors() {
        let e = encode_uint(&[1, 2, 3], 4);
        let mut m = meta_for(&e);
        for bad in [0x20u8, 0x06, 0x07, 0x05] {
            let mut b = e.bytes.clone();
            b[0] = bad;
            m.encoding = bad;
            assert_eq!(
                decode(Column::PktsSent, &b, &m, 3, 0),
                Err(BlockErrorKind::BadEncoding(bad))
            );
        }
        // Width 2 is not allowed for proto.
        let e = encode_uint(&[300], 4);
        assert!(decode(Column::Proto, &e.bytes, &meta_for(&e), 1, 0).is_err());
    }

    #[test]
    fn column_set_ops() {
        let s = ColumnSet::EMPTY.with(Column::Dip).with(Column::PktsSent);
        assert!(s.contains(Column::Dip) && !s.contains(Column::Sip));
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Column::Dip, Column::PktsSent]
        );
        assert_eq!(
            Column::ALL.into_iter().collect::<ColumnSet>(),
            ColumnSet::ALL
        );
        for (i, c) in Column::ALL.iter().enumerate() {
            assert_eq!(c.index(), i);
        }
    }
}
