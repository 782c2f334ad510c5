//! The day metadata file `day.meta` (see `docs/FORMAT.md`): its byte layout as
//! constants, its in-memory form ([`DayMeta`], [`BlockMeta`], [`ColumnMeta`]), and the
//! encoder and the validating decoder. The layout constants are checked against the
//! tables of `docs/FORMAT.md` by a unit test so the document cannot drift.

use crate::column::{Column, NUM_COLUMNS};
use crate::model::{CaptureStats, Counters};

/// Format version written by this code and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Magic bytes at the start of every `day.meta`.
pub const META_MAGIC: [u8; 8] = *b"GODBMETA";
/// Name of the metadata file in a day folder.
pub const META_FILE: &str = "day.meta";
/// Name of the temporary metadata file while a new one is written.
pub const META_TMP_FILE: &str = "day.meta.tmp";

/// A field of a fixed binary layout: byte offset, size and name as in `docs/FORMAT.md`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub off: usize,
    pub len: usize,
    pub name: &'static str,
}

const fn f(off: usize, len: usize, name: &'static str) -> Field {
    Field { off, len, name }
}

/// Header of `day.meta`.
pub(crate) mod hdr {
    use super::{f, Field};
    pub const MAGIC: Field = f(0, 8, "magic");
    pub const VERSION: Field = f(8, 2, "version");
    pub const COLUMN_COUNT: Field = f(10, 2, "column_count");
    pub const ENTRY_SIZE: Field = f(12, 2, "entry_size");
    pub const HEADER_SIZE: Field = f(14, 2, "header_size");
    pub const BLOCK_COUNT: Field = f(16, 4, "block_count");
    pub const RESERVED: Field = f(20, 4, "reserved");
    pub const FIRST: Field = f(24, 8, "first");
    pub const LAST: Field = f(32, 8, "last");
    pub const ROWS: Field = f(40, 8, "rows");
    pub const BYTES_RCVD: Field = f(48, 8, "bytes_rcvd");
    pub const BYTES_SENT: Field = f(56, 8, "bytes_sent");
    pub const PKTS_RCVD: Field = f(64, 8, "pkts_rcvd");
    pub const PKTS_SENT: Field = f(72, 8, "pkts_sent");
    pub const RECEIVED: Field = f(80, 8, "packets_received");
    pub const DROPPED: Field = f(88, 8, "packets_dropped");
    pub const IF_DROPPED: Field = f(96, 8, "packets_if_dropped");
    pub const NON_IP: Field = f(104, 8, "packets_non_ip");
    pub const SIZE: usize = 112;
    #[cfg(test)]
    pub const LAYOUT: &[Field] = &[
        MAGIC,
        VERSION,
        COLUMN_COUNT,
        ENTRY_SIZE,
        HEADER_SIZE,
        BLOCK_COUNT,
        RESERVED,
        FIRST,
        LAST,
        ROWS,
        BYTES_RCVD,
        BYTES_SENT,
        PKTS_RCVD,
        PKTS_SENT,
        RECEIVED,
        DROPPED,
        IF_DROPPED,
        NON_IP,
    ];
}

/// One block entry of `day.meta`.
pub(crate) mod entry {
    use super::{col, f, Field, NUM_COLUMNS};
    pub const TIMESTAMP: Field = f(0, 8, "timestamp");
    pub const ROWS_V4: Field = f(8, 4, "rows_v4");
    pub const ROWS_V6: Field = f(12, 4, "rows_v6");
    pub const RECEIVED: Field = f(16, 8, "packets_received");
    pub const DROPPED: Field = f(24, 8, "packets_dropped");
    pub const IF_DROPPED: Field = f(32, 8, "packets_if_dropped");
    pub const NON_IP: Field = f(40, 8, "packets_non_ip");
    pub const BYTES_RCVD: Field = f(48, 8, "bytes_rcvd");
    pub const BYTES_SENT: Field = f(56, 8, "bytes_sent");
    pub const PKTS_RCVD: Field = f(64, 8, "pkts_rcvd");
    pub const PKTS_SENT: Field = f(72, 8, "pkts_sent");
    pub const COLUMNS: Field = f(80, NUM_COLUMNS * col::SIZE, "columns");
    pub const SIZE: usize = 296;
    #[cfg(test)]
    pub const LAYOUT: &[Field] = &[
        TIMESTAMP, ROWS_V4, ROWS_V6, RECEIVED, DROPPED, IF_DROPPED, NON_IP, BYTES_RCVD, BYTES_SENT,
        PKTS_RCVD, PKTS_SENT, COLUMNS,
    ];
}

/// One column entry inside a block entry.
pub(crate) mod col {
    use super::{f, Field};
    pub const OFFSET: Field = f(0, 8, "offset");
    pub const STORED_LEN: Field = f(8, 4, "stored_len");
    pub const RAW_LEN: Field = f(12, 4, "raw_len");
    pub const CRC: Field = f(16, 4, "crc32c");
    pub const ENCODING: Field = f(20, 1, "encoding");
    pub const RESERVED: Field = f(21, 3, "reserved");
    pub const SIZE: usize = 24;
    #[cfg(test)]
    pub const LAYOUT: &[Field] = &[OFFSET, STORED_LEN, RAW_LEN, CRC, ENCODING, RESERVED];
}

/// Trailer of `day.meta`.
pub(crate) mod trailer {
    use super::{f, Field};
    pub const CRC: Field = f(0, 4, "crc32c");
    pub const SIZE: usize = 4;
    #[cfg(test)]
    pub const LAYOUT: &[Field] = &[CRC];
}

/// Where one column block of a block lives in its column file and how it is encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnMeta {
    /// Byte offset of the column block in the column file.
    pub offset: u64,
    /// Length on disk, encoding tag included.
    pub stored_len: u32,
    /// Length of the decoded element bytes.
    pub raw_len: u32,
    /// CRC-32C of the stored bytes.
    pub crc32c: u32,
    /// The encoding tag (also the first stored byte).
    pub encoding: u8,
}

impl ColumnMeta {
    /// One past the last byte of the column block.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.stored_len))
    }
}

/// Metadata of one committed block, as recorded in its day's `day.meta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    /// Position of the block in its day (0 = first committed block of the day).
    pub index_in_day: usize,
    /// End of the interval, UTC seconds.
    pub timestamp: i64,
    /// Number of IPv4 rows (stored first).
    pub rows_v4: u32,
    /// Number of IPv6 rows.
    pub rows_v6: u32,
    /// Capture statistics of the interval.
    pub stats: CaptureStats,
    /// Sum of the counters of the block's rows (saturating).
    pub counters: Counters,
    /// Where each column block is, indexed by [`Column::index`].
    pub columns: [ColumnMeta; NUM_COLUMNS],
}

impl BlockMeta {
    /// Total number of rows.
    pub fn rows(&self) -> u64 {
        u64::from(self.rows_v4) + u64::from(self.rows_v6)
    }

    /// The location of one column's block.
    pub fn column(&self, c: Column) -> &ColumnMeta {
        &self.columns[c.index()]
    }
}

/// The decoded content of a `day.meta`: the committed blocks in commit order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayMeta {
    /// Committed blocks, timestamps non-decreasing.
    pub blocks: Vec<BlockMeta>,
}

/// Day totals derived from the block entries (also stored in the header).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub first: i64,
    pub last: i64,
    pub rows: u64,
    pub counters: Counters,
    pub stats: CaptureStats,
}

fn get<const N: usize>(buf: &[u8], base: usize, fld: Field) -> [u8; N] {
    let mut out = [0u8; N];
    // Callers only pass buffers whose length was checked against the layout.
    if let Some(src) = buf.get(base + fld.off..base + fld.off + N) {
        out.copy_from_slice(src);
    }
    out
}

fn get_u16(buf: &[u8], base: usize, fld: Field) -> u16 {
    u16::from_le_bytes(get(buf, base, fld))
}
fn get_u32(buf: &[u8], base: usize, fld: Field) -> u32 {
    u32::from_le_bytes(get(buf, base, fld))
}
fn get_u64(buf: &[u8], base: usize, fld: Field) -> u64 {
    u64::from_le_bytes(get(buf, base, fld))
}
fn get_i64(buf: &[u8], base: usize, fld: Field) -> i64 {
    i64::from_le_bytes(get(buf, base, fld))
}

fn put(buf: &mut [u8], base: usize, fld: Field, bytes: &[u8]) {
    debug_assert_eq!(fld.len, bytes.len(), "field {}", fld.name);
    buf[base + fld.off..base + fld.off + bytes.len()].copy_from_slice(bytes);
}

impl DayMeta {
    /// The totals over all blocks.
    pub(crate) fn totals(&self) -> Totals {
        let mut t = Totals::default();
        if let (Some(a), Some(b)) = (self.blocks.first(), self.blocks.last()) {
            t.first = a.timestamp;
            t.last = b.timestamp;
        }
        for b in &self.blocks {
            t.rows = t.rows.saturating_add(b.rows());
            t.counters.add(&b.counters);
            t.stats.add(&b.stats);
        }
        t
    }

    /// The committed end of each column file.
    pub(crate) fn column_ends(&self) -> [u64; NUM_COLUMNS] {
        let mut ends = [0u64; NUM_COLUMNS];
        if let Some(last) = self.blocks.last() {
            for (e, c) in ends.iter_mut().zip(last.columns.iter()) {
                *e = c.end();
            }
        }
        ends
    }

    /// Serialises the metadata (header, entries, trailer).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let n = self.blocks.len();
        let mut buf = vec![0u8; hdr::SIZE + n * entry::SIZE + trailer::SIZE];
        let t = self.totals();
        put(&mut buf, 0, hdr::MAGIC, &META_MAGIC);
        put(&mut buf, 0, hdr::VERSION, &FORMAT_VERSION.to_le_bytes());
        put(
            &mut buf,
            0,
            hdr::COLUMN_COUNT,
            &(NUM_COLUMNS as u16).to_le_bytes(),
        );
        put(
            &mut buf,
            0,
            hdr::ENTRY_SIZE,
            &(entry::SIZE as u16).to_le_bytes(),
        );
        put(
            &mut buf,
            0,
            hdr::HEADER_SIZE,
            &(hdr::SIZE as u16).to_le_bytes(),
        );
        put(&mut buf, 0, hdr::BLOCK_COUNT, &(n as u32).to_le_bytes());
        put(&mut buf, 0, hdr::RESERVED, &0u32.to_le_bytes());
        put(&mut buf, 0, hdr::FIRST, &t.first.to_le_bytes());
        put(&mut buf, 0, hdr::LAST, &t.last.to_le_bytes());
        put(&mut buf, 0, hdr::ROWS, &t.rows.to_le_bytes());
        put_counters(
            &mut buf,
            0,
            &t.counters,
            [
                hdr::BYTES_RCVD,
                hdr::BYTES_SENT,
                hdr::PKTS_RCVD,
                hdr::PKTS_SENT,
            ],
        );
        put_stats(
            &mut buf,
            0,
            &t.stats,
            [hdr::RECEIVED, hdr::DROPPED, hdr::IF_DROPPED, hdr::NON_IP],
        );
        for (i, b) in self.blocks.iter().enumerate() {
            let base = hdr::SIZE + i * entry::SIZE;
            put(&mut buf, base, entry::TIMESTAMP, &b.timestamp.to_le_bytes());
            put(&mut buf, base, entry::ROWS_V4, &b.rows_v4.to_le_bytes());
            put(&mut buf, base, entry::ROWS_V6, &b.rows_v6.to_le_bytes());
            put_stats(
                &mut buf,
                base,
                &b.stats,
                [
                    entry::RECEIVED,
                    entry::DROPPED,
                    entry::IF_DROPPED,
                    entry::NON_IP,
                ],
            );
            put_counters(
                &mut buf,
                base,
                &b.counters,
                [
                    entry::BYTES_RCVD,
                    entry::BYTES_SENT,
                    entry::PKTS_RCVD,
                    entry::PKTS_SENT,
                ],
            );
            for (ci, c) in b.columns.iter().enumerate() {
                let cb = base + entry::COLUMNS.off + ci * col::SIZE;
                put(&mut buf, cb, col::OFFSET, &c.offset.to_le_bytes());
                put(&mut buf, cb, col::STORED_LEN, &c.stored_len.to_le_bytes());
                put(&mut buf, cb, col::RAW_LEN, &c.raw_len.to_le_bytes());
                put(&mut buf, cb, col::CRC, &c.crc32c.to_le_bytes());
                put(&mut buf, cb, col::ENCODING, &[c.encoding]);
                put(&mut buf, cb, col::RESERVED, &[0u8; 3]);
            }
        }
        let body = buf.len() - trailer::SIZE;
        let crc = crc32c::crc32c(&buf[..body]);
        put(&mut buf, body, trailer::CRC, &crc.to_le_bytes());
        buf
    }

    /// Parses and validates a `day.meta`; the error says what is wrong.
    pub(crate) fn decode(buf: &[u8]) -> Result<DayMeta, String> {
        if buf.len() < hdr::SIZE + trailer::SIZE {
            return Err(format!("file too short ({} bytes)", buf.len()));
        }
        let magic: [u8; 8] = get(buf, 0, hdr::MAGIC);
        if magic != META_MAGIC {
            return Err("bad magic".into());
        }
        let version = get_u16(buf, 0, hdr::VERSION);
        if version != FORMAT_VERSION {
            return Err(format!("unsupported format version {version}"));
        }
        if usize::from(get_u16(buf, 0, hdr::COLUMN_COUNT)) != NUM_COLUMNS
            || usize::from(get_u16(buf, 0, hdr::ENTRY_SIZE)) != entry::SIZE
            || usize::from(get_u16(buf, 0, hdr::HEADER_SIZE)) != hdr::SIZE
        {
            return Err("unexpected column count, entry or header size".into());
        }
        let n = get_u32(buf, 0, hdr::BLOCK_COUNT) as usize;
        let want = n
            .checked_mul(entry::SIZE)
            .and_then(|x| x.checked_add(hdr::SIZE + trailer::SIZE));
        if want != Some(buf.len()) {
            return Err(format!("length {} does not fit {n} blocks", buf.len()));
        }
        let body = buf.len() - trailer::SIZE;
        let stored = get_u32(buf, body, trailer::CRC);
        let actual = crc32c::crc32c(&buf[..body]);
        if stored != actual {
            return Err(format!(
                "checksum mismatch: expected {stored:#010x}, got {actual:#010x}"
            ));
        }
        let mut blocks = Vec::with_capacity(n);
        let mut ends = [0u64; NUM_COLUMNS];
        for i in 0..n {
            let base = hdr::SIZE + i * entry::SIZE;
            let mut columns = [ColumnMeta::default(); NUM_COLUMNS];
            for (ci, c) in columns.iter_mut().enumerate() {
                let cb = base + entry::COLUMNS.off + ci * col::SIZE;
                *c = ColumnMeta {
                    offset: get_u64(buf, cb, col::OFFSET),
                    stored_len: get_u32(buf, cb, col::STORED_LEN),
                    raw_len: get_u32(buf, cb, col::RAW_LEN),
                    crc32c: get_u32(buf, cb, col::CRC),
                    encoding: get::<1>(buf, cb, col::ENCODING)[0],
                };
                if c.offset != ends[ci] || c.stored_len == 0 {
                    return Err(format!("block {i} column {ci}: not contiguous"));
                }
                ends[ci] = c.end();
            }
            let b = BlockMeta {
                index_in_day: i,
                timestamp: get_i64(buf, base, entry::TIMESTAMP),
                rows_v4: get_u32(buf, base, entry::ROWS_V4),
                rows_v6: get_u32(buf, base, entry::ROWS_V6),
                stats: CaptureStats {
                    packets_received: get_u64(buf, base, entry::RECEIVED),
                    packets_dropped: get_u64(buf, base, entry::DROPPED),
                    packets_if_dropped: get_u64(buf, base, entry::IF_DROPPED),
                    packets_non_ip: get_u64(buf, base, entry::NON_IP),
                },
                counters: Counters {
                    bytes_rcvd: get_u64(buf, base, entry::BYTES_RCVD),
                    bytes_sent: get_u64(buf, base, entry::BYTES_SENT),
                    pkts_rcvd: get_u64(buf, base, entry::PKTS_RCVD),
                    pkts_sent: get_u64(buf, base, entry::PKTS_SENT),
                },
                columns,
            };
            if let Some(prev) = blocks.last() {
                let prev: &BlockMeta = prev;
                if b.timestamp < prev.timestamp {
                    return Err(format!("block {i}: timestamp goes backwards"));
                }
            }
            blocks.push(b);
        }
        let meta = DayMeta { blocks };
        let t = meta.totals();
        let stored_totals = Totals {
            first: get_i64(buf, 0, hdr::FIRST),
            last: get_i64(buf, 0, hdr::LAST),
            rows: get_u64(buf, 0, hdr::ROWS),
            counters: Counters {
                bytes_rcvd: get_u64(buf, 0, hdr::BYTES_RCVD),
                bytes_sent: get_u64(buf, 0, hdr::BYTES_SENT),
                pkts_rcvd: get_u64(buf, 0, hdr::PKTS_RCVD),
                pkts_sent: get_u64(buf, 0, hdr::PKTS_SENT),
            },
            stats: CaptureStats {
                packets_received: get_u64(buf, 0, hdr::RECEIVED),
                packets_dropped: get_u64(buf, 0, hdr::DROPPED),
                packets_if_dropped: get_u64(buf, 0, hdr::IF_DROPPED),
                packets_non_ip: get_u64(buf, 0, hdr::NON_IP),
            },
        };
        if t != stored_totals {
            return Err("header totals disagree with the block entries".into());
        }
        Ok(meta)
    }
}

fn put_counters(buf: &mut [u8], base: usize, c: &Counters, f: [Field; 4]) {
    put(buf, base, f[0], &c.bytes_rcvd.to_le_bytes());
    put(buf, base, f[1], &c.bytes_sent.to_le_bytes());
    put(buf, base, f[2], &c.pkts_rcvd.to_le_bytes());
    put(buf, base, f[3], &c.pkts_sent.to_le_bytes());
}

fn put_stats(buf: &mut [u8], base: usize, s: &CaptureStats, f: [Field; 4]) {
    put(buf, base, f[0], &s.packets_received.to_le_bytes());
    put(buf, base, f[1], &s.packets_dropped.to_le_bytes());
    put(buf, base, f[2], &s.packets_if_dropped.to_le_bytes());
    put(buf, base, f[3], &s.packets_non_ip.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the table that follows `<!-- layout:NAME -->` in docs/FORMAT.md into
    /// (offset, size, field) rows.
    fn doc_table(name: &str) -> Vec<(usize, usize, String)> {
        let doc = include_str!("../../docs/FORMAT.md");
        let marker = format!("<!-- layout:{name} -->");
        let start = doc
            .find(&marker)
            .unwrap_or_else(|| panic!("no table {name}"));
        let mut rows = Vec::new();
        for line in doc[start + marker.len()..].lines().skip(1) {
            let line = line.trim();
            if !line.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            if let (Ok(off), Ok(len)) = (cells[0].parse(), cells[1].parse()) {
                rows.push((off, len, cells[2].to_string()));
            }
        }
        rows
    }

    fn code_table(layout: &[Field]) -> Vec<(usize, usize, String)> {
        layout
            .iter()
            .map(|f| (f.off, f.len, f.name.to_string()))
            .collect()
    }

    fn assert_contiguous(layout: &[Field], size: usize) {
        let mut at = 0;
        for f in layout {
            assert_eq!(f.off, at, "field {} not contiguous", f.name);
            at += f.len;
        }
        assert_eq!(at, size);
    }

    #[test]
    fn layout_tables_match_format_md() {
        assert_eq!(doc_table("meta_header"), code_table(hdr::LAYOUT));
        assert_eq!(doc_table("block_entry"), code_table(entry::LAYOUT));
        assert_eq!(doc_table("column_entry"), code_table(col::LAYOUT));
        assert_eq!(doc_table("meta_trailer"), code_table(trailer::LAYOUT));
        assert_contiguous(hdr::LAYOUT, hdr::SIZE);
        assert_contiguous(entry::LAYOUT, entry::SIZE);
        assert_contiguous(col::LAYOUT, col::SIZE);
        assert_contiguous(trailer::LAYOUT, trailer::SIZE);
        let tag = doc_table("encoding_tag");
        assert_eq!(tag, code_table(crate::column::tag::LAYOUT));
        let doc = include_str!("../../docs/FORMAT.md");
        assert!(doc.contains(&format!(
            "exactly `{} + {} × block_count + {}` bytes",
            hdr::SIZE,
            entry::SIZE,
            trailer::SIZE
        )));
        assert!(doc.contains(&format!("# godb on-disk format, version {FORMAT_VERSION}")));
        assert!(doc.contains(&format!(
            "ASCII `{}`",
            std::str::from_utf8(&META_MAGIC).unwrap_or("")
        )));
        for c in Column::ALL {
            assert!(doc.contains(&format!("| `{}` |", c.file_name())), "{c:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(
            mut bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1200),
            fix_header in proptest::prelude::any::<bool>(),
        ) {
            if fix_header && bytes.len() >= hdr::SIZE + trailer::SIZE {
                // Get past the cheap checks so the entry decoding is exercised too.
                let n = (bytes.len() - hdr::SIZE - trailer::SIZE) / entry::SIZE;
                bytes.truncate(hdr::SIZE + n * entry::SIZE + trailer::SIZE);
                put(&mut bytes, 0, hdr::MAGIC, &META_MAGIC);
                put(&mut bytes, 0, hdr::VERSION, &FORMAT_VERSION.to_le_bytes());
                put(&mut bytes, 0, hdr::COLUMN_COUNT, &(NUM_COLUMNS as u16).to_le_bytes());
                put(&mut bytes, 0, hdr::ENTRY_SIZE, &(entry::SIZE as u16).to_le_bytes());
                put(&mut bytes, 0, hdr::HEADER_SIZE, &(hdr::SIZE as u16).to_le_bytes());
                put(&mut bytes, 0, hdr::BLOCK_COUNT, &(n as u32).to_le_bytes());
                let body = bytes.len() - trailer::SIZE;
                let crc = crc32c::crc32c(&bytes[..body]);
                put(&mut bytes, body, trailer::CRC, &crc.to_le_bytes());
            }
            let _ = DayMeta::decode(&bytes);
        }
    }

    #[test]
    fn meta_round_trip_and_rejects_flips() {
        let mut m = DayMeta::default();
        let mut end = [0u64; NUM_COLUMNS];
        for i in 0..3 {
            let mut columns = [ColumnMeta::default(); NUM_COLUMNS];
            for (ci, c) in columns.iter_mut().enumerate() {
                *c = ColumnMeta {
                    offset: end[ci],
                    stored_len: 10 + i as u32 + ci as u32,
                    raw_len: 7,
                    crc32c: 0xdead_beef ^ i as u32,
                    encoding: 0x13,
                };
                end[ci] = c.end();
            }
            m.blocks.push(BlockMeta {
                index_in_day: i,
                timestamp: 1000 + 300 * i as i64,
                rows_v4: 3,
                rows_v6: i as u32,
                stats: CaptureStats {
                    packets_received: 5,
                    ..Default::default()
                },
                counters: Counters {
                    bytes_rcvd: u64::MAX,
                    pkts_sent: 2,
                    ..Default::default()
                },
                columns,
            });
        }
        let bytes = m.encode();
        assert_eq!(DayMeta::decode(&bytes), Ok(m.clone()));
        for pos in 0..bytes.len() {
            let mut b = bytes.clone();
            b[pos] ^= 0x40;
            assert!(DayMeta::decode(&b).is_err(), "flip at {pos} accepted");
        }
        for len in 0..bytes.len() {
            assert!(DayMeta::decode(&bytes[..len]).is_err());
        }
    }
}
