//! Reading: a [`ScanRequest`] becomes a plan of days and blocks from the metadata
//! alone ([`Database::plan`]); a [`DayPlan`] opens a [`DayReader`] that maps only the
//! chosen column files (memmap2) and decodes one block at a time into [`BlockData`].
//! A damaged block is a [`BlockError`] for that block only.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use memmap2::Mmap;

use crate::column::{unpack, widen, Column, ColumnSet, IpColumn, RawLayout, Target, NUM_COLUMNS};
use crate::db::{day_of, read_meta, Database};
use crate::error::{BlockError, BlockErrorKind, Error, Result};
use crate::meta::{BlockMeta, META_FILE};
use crate::model::{CaptureStats, Counters, FlowKey, FlowRow};

/// Which blocks to read: those of the listed interfaces (all if empty) whose
/// timestamps lie in `[first, last]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanRequest {
    /// Interfaces to read; empty means every interface of the database.
    pub ifaces: Vec<String>,
    /// Smallest block timestamp to include (UTC seconds).
    pub first: i64,
    /// Largest block timestamp to include (UTC seconds).
    pub last: i64,
}

/// The committed blocks of one interface and day that a scan wants, from the day's
/// metadata. Its metadata snapshot stays valid while writers append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayPlan {
    /// The interface.
    pub iface: String,
    /// The UTC day.
    pub date: NaiveDate,
    /// The wanted blocks, in commit order (timestamps non-decreasing).
    pub blocks: Vec<BlockMeta>,
    /// Set when the day's metadata is damaged: the day's blocks cannot be located,
    /// `blocks` is empty and this says why (the file and the reason).
    pub damaged: Option<String>,
    dir: PathBuf,
}

/// A day's column files, mapped, ready to decode blocks. `Send + Sync`: blocks may be
/// read from several threads at once.
#[derive(Debug)]
pub struct DayReader {
    iface: String,
    dir: PathBuf,
    date: NaiveDate,
    blocks: Vec<BlockMeta>,
    columns: ColumnSet,
    files: [ColumnFile; NUM_COLUMNS],
    /// Lengths of the day's `sip.col` and `dip.col` (`None` if unknown): what bounds
    /// the row count a block may claim (see [`DayReader::read_into`]).
    addr_file_len: [Option<u64>; 2],
}

/// One column file of a reader.
#[derive(Debug)]
enum ColumnFile {
    /// Not requested.
    Unused,
    /// Mapped (`None` for an empty file, which cannot be mapped); shared with the
    /// [`RawBlock`]s that keep framed columns in place.
    Mapped(PathBuf, Option<Arc<Mmap>>),
    /// Could not be opened or mapped.
    Unavailable(PathBuf, String),
}

/// The decoded columns of one block. Columns that were not requested are `None`.
/// Rows `0..rows_v4` are IPv4 rows, the rest IPv6, in every column.
///
/// [`DayReader::read_into`] refills an existing `BlockData` (its vectors keep their
/// capacity), so a scan can decode block after block without allocating.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockData {
    /// Interface of the block.
    pub iface: String,
    /// End of the interval, UTC seconds.
    pub timestamp: i64,
    /// Capture statistics of the interval.
    pub stats: CaptureStats,
    /// Number of rows.
    pub rows: usize,
    /// Number of IPv4 rows (they come first).
    pub rows_v4: usize,
    /// Source addresses.
    pub sip: Option<IpColumn>,
    /// Destination addresses.
    pub dip: Option<IpColumn>,
    /// IP protocol numbers.
    pub proto: Option<Vec<u8>>,
    /// Destination ports.
    pub dport: Option<Vec<u16>>,
    /// Layer-7 protocol ids.
    pub l7: Option<Vec<u16>>,
    /// Bytes from dip to sip.
    pub bytes_rcvd: Option<Vec<u64>>,
    /// Bytes from sip to dip.
    pub bytes_sent: Option<Vec<u64>>,
    /// Packets from dip to sip.
    pub pkts_rcvd: Option<Vec<u64>>,
    /// Packets from sip to dip.
    pub pkts_sent: Option<Vec<u64>>,
}

impl BlockData {
    /// Row `i` as a [`FlowRow`], or `None` if `i` is out of range or a column was
    /// not read.
    pub fn try_row(&self, i: usize) -> Option<FlowRow> {
        Some(FlowRow {
            key: FlowKey {
                sip: self.sip.as_ref()?.get(i)?,
                dip: self.dip.as_ref()?.get(i)?,
                proto: *self.proto.as_ref()?.get(i)?,
                dport: *self.dport.as_ref()?.get(i)?,
                l7: *self.l7.as_ref()?.get(i)?,
            },
            counters: Counters {
                bytes_rcvd: *self.bytes_rcvd.as_ref()?.get(i)?,
                bytes_sent: *self.bytes_sent.as_ref()?.get(i)?,
                pkts_rcvd: *self.pkts_rcvd.as_ref()?.get(i)?,
                pkts_sent: *self.pkts_sent.as_ref()?.get(i)?,
            },
        })
    }

    /// Row `i` as a [`FlowRow`].
    ///
    /// # Panics
    /// If `i >= self.rows` or not every column was read ([`ColumnSet::ALL`]); use
    /// [`BlockData::try_row`] otherwise.
    pub fn row(&self, i: usize) -> FlowRow {
        match self.try_row(i) {
            Some(r) => r,
            None => panic!("BlockData::row({i}): out of range or not all columns read"),
        }
    }

    /// All rows, if every column was read.
    pub fn to_rows(&self) -> Option<Vec<FlowRow>> {
        (0..self.rows).map(|i| self.try_row(i)).collect()
    }
}

/// One block's requested columns checked and decompressed, their values still in
/// the width and layout they are stored in (an integer column whose values fit one
/// byte takes one byte per row here, not eight). [`RawBlock::rows_into`] widens any
/// range of its rows into a [`BlockData`]: a scan can widen a block a few thousand
/// rows at a time into small buffers that stay in the cache, instead of holding the
/// whole block at full width. The frames of a framed column (docs/FORMAT.md) stay
/// compressed here and are decompressed as their rows are widened: widening ranges
/// that start and end on multiples of 8,192 rows decodes each frame once.
///
/// [`DayReader::read_raw_into`] refills an existing `RawBlock`, reusing its buffers.
#[derive(Debug, Clone, Default)]
pub struct RawBlock {
    iface: String,
    /// Day folder and index of the block in its plan (for errors).
    dir: PathBuf,
    date: NaiveDate,
    block: usize,
    timestamp: i64,
    stats: CaptureStats,
    rows_v4: usize,
    rows_v6: usize,
    /// Per column: its raw bytes and layout, `None` when not read.
    columns: [Option<RawLayout>; NUM_COLUMNS],
    bytes: [ColumnBytes; NUM_COLUMNS],
}

/// Where the bytes of one column of a [`RawBlock`] are: decoded into its buffer, or,
/// for a framed column, still the stored frames in the mapped column file (nothing
/// copied; the frames are decompressed as rows are widened).
#[derive(Debug, Clone, Default)]
pub(crate) struct ColumnBytes {
    buf: Vec<u8>,
    mapped: Option<(Arc<Mmap>, std::ops::Range<usize>)>,
}

impl ColumnBytes {
    fn get(&self) -> &[u8] {
        match &self.mapped {
            Some((m, r)) => m.get(r.clone()).unwrap_or(&[]),
            None => &self.buf,
        }
    }
}

impl RawBlock {
    /// Interface of the block.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// End of the block's interval, UTC seconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Capture statistics of the interval.
    pub fn stats(&self) -> CaptureStats {
        self.stats
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows_v4 + self.rows_v6
    }

    /// Number of IPv4 rows (they come first).
    pub fn rows_v4(&self) -> usize {
        self.rows_v4
    }

    /// The buffer of column `c`, taken out to be decoded into (the column is not
    /// read until [`RawBlock::put_column`] puts it back).
    pub(crate) fn take_column(&mut self, c: Column) -> ColumnBytes {
        self.columns[c.index()] = None;
        std::mem::take(&mut self.bytes[c.index()])
    }

    /// Puts back the buffer of column `c`, decoded with `layout` (`None`: not read).
    pub(crate) fn put_column(&mut self, c: Column, bytes: ColumnBytes, layout: Option<RawLayout>) {
        self.bytes[c.index()] = bytes;
        self.columns[c.index()] = layout;
    }

    /// Refills `out` with rows `range` (clamped to the block) of the columns read:
    /// `out.rows` is the length of the range, `out.rows_v4` the number of its IPv4
    /// rows (the first ones), and the columns not read are `None`. The vectors of
    /// `out` keep their capacity, so widening range after range into the same `out`
    /// allocates only once.
    ///
    /// Fails only for a framed column (docs/FORMAT.md) one of whose frames in the
    /// range does not decompress although its checksum matched (a faulty writer or a
    /// crafted file: frames are decompressed here, not by
    /// [`DayReader::read_raw_into`]); `out` must not be used then.
    pub fn rows_into(
        &self,
        range: std::ops::Range<usize>,
        out: &mut BlockData,
    ) -> std::result::Result<(), BlockError> {
        let rows = self.rows();
        let (lo, hi) = (range.start.min(rows), range.end.min(rows));
        let lo = lo.min(hi);
        if out.iface != self.iface {
            out.iface.clone_from(&self.iface);
        }
        out.timestamp = self.timestamp;
        out.stats = self.stats;
        out.rows = hi - lo;
        out.rows_v4 = hi.min(self.rows_v4) - lo.min(self.rows_v4);
        for c in Column::ALL {
            let layout = self.columns[c.index()];
            macro_rules! slot {
                ($field:ident, $variant:ident) => {{
                    if layout.is_none() {
                        out.$field = None;
                        continue;
                    }
                    Target::$variant(out.$field.get_or_insert_with(Default::default))
                }};
            }
            let target = match c {
                Column::Sip => slot!(sip, Ip),
                Column::Dip => slot!(dip, Ip),
                Column::Proto => slot!(proto, U8),
                Column::Dport => slot!(dport, U16),
                Column::L7 => slot!(l7, U16),
                Column::BytesRcvd => slot!(bytes_rcvd, U64),
                Column::BytesSent => slot!(bytes_sent, U64),
                Column::PktsRcvd => slot!(pkts_rcvd, U64),
                Column::PktsSent => slot!(pkts_sent, U64),
            };
            let Some(layout) = layout else { continue };
            // `read_raw_into` checked the layout against the rows; only a framed
            // column's frames can still fail.
            widen(
                self.bytes[c.index()].get(),
                layout,
                self.rows_v4,
                self.rows_v6,
                (lo, hi),
                target,
            )
            .map_err(|kind| BlockError {
                iface: self.iface.clone(),
                date: self.date,
                block: self.block,
                timestamp: self.timestamp,
                file: self.dir.join(c.file_name()),
                kind,
            })?;
        }
        Ok(())
    }
}

impl Database {
    /// Plans a scan from the metadata alone: for each wanted interface (sorted) and
    /// day (ascending), the committed blocks with timestamps in `[first, last]`. Days
    /// without such blocks are left out; a day whose metadata is damaged or cannot be
    /// read is included with [`DayPlan::damaged`] set. Interfaces without data yield
    /// nothing. Only a folder above the days that cannot be listed is an error.
    pub fn plan(&self, req: &ScanRequest) -> Result<Vec<DayPlan>> {
        let mut ifaces = if req.ifaces.is_empty() {
            self.interfaces()?
        } else {
            for i in &req.ifaces {
                crate::db::validate_iface(i)?;
            }
            let mut v = req.ifaces.clone();
            v.sort();
            v.dedup();
            v
        };
        ifaces.retain(|i| !i.is_empty());
        let mut out = Vec::new();
        if req.first > req.last {
            return Ok(out);
        }
        // A block with timestamp t lives in the folder of day(t - 1).
        let lo = day_of(req.first).ok();
        let hi = day_of(req.last).ok();
        for iface in ifaces {
            for (date, dir) in self.day_dirs(&iface)? {
                if lo.is_some_and(|lo| date < lo) || hi.is_some_and(|hi| date > hi) {
                    continue;
                }
                match read_meta(&dir) {
                    Ok(Some(meta)) => {
                        let blocks: Vec<BlockMeta> = meta
                            .blocks
                            .into_iter()
                            .filter(|b| b.timestamp >= req.first && b.timestamp <= req.last)
                            .collect();
                        if !blocks.is_empty() {
                            out.push(DayPlan {
                                iface: iface.clone(),
                                date,
                                blocks,
                                damaged: None,
                                dir,
                            });
                        }
                    }
                    Ok(None) => {}
                    Err(Error::DamagedMeta { path, reason }) => out.push(DayPlan {
                        iface: iface.clone(),
                        date,
                        blocks: Vec::new(),
                        damaged: Some(format!("{}: {reason}", path.display())),
                        dir,
                    }),
                    // Unreadable (permissions, a folder in its place, I/O error): the
                    // day is damaged for this reader, the other days stay readable.
                    Err(e) => out.push(DayPlan {
                        iface: iface.clone(),
                        date,
                        blocks: Vec::new(),
                        damaged: Some(e.to_string()),
                        dir,
                    }),
                }
            }
        }
        Ok(out)
    }
}

impl DayPlan {
    /// The day folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The metadata file the plan was made from.
    pub fn meta_path(&self) -> PathBuf {
        self.dir.join(META_FILE)
    }

    /// Maps the column files of `columns`. A column file that is missing or cannot
    /// be mapped is not an error here: every block read from it reports it.
    pub fn open(&self, db: &Database, columns: ColumnSet) -> Result<DayReader> {
        let _ = db; // The plan carries its folder; the handle is kept for API symmetry.
        let files = Column::ALL.map(|c| {
            if !columns.contains(c) {
                return ColumnFile::Unused;
            }
            let path = self.dir.join(c.file_name());
            match map_file(&path) {
                Ok(m) => ColumnFile::Mapped(path, m.map(Arc::new)),
                Err(e) => ColumnFile::Unavailable(path, e.to_string()),
            }
        });
        let addr_file_len = [Column::Sip, Column::Dip].map(|c| match &files[c.index()] {
            ColumnFile::Mapped(_, m) => Some(m.as_ref().map_or(0, |m| m.len() as u64)),
            ColumnFile::Unavailable(..) => None,
            ColumnFile::Unused => std::fs::metadata(self.dir.join(c.file_name()))
                .ok()
                .map(|m| m.len()),
        });
        Ok(DayReader {
            iface: self.iface.clone(),
            dir: self.dir.clone(),
            date: self.date,
            blocks: self.blocks.clone(),
            columns,
            files,
            addr_file_len,
        })
    }
}

fn map_file(path: &Path) -> std::io::Result<Option<Mmap>> {
    let f = File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    // SAFETY: godb never modifies committed bytes of a column file; writers only
    // append past the committed end and truncate garbage past it, and readers only
    // touch committed ranges (checked against the mapping's length). A process that
    // truncates the files behind godb's back can still make the OS raise SIGBUS; that
    // is outside what any mmap-based reader can guard against.
    let m = unsafe { Mmap::map(&f)? };
    Ok(Some(m))
}

/// Reusable decoding buffers for [`DayReader::read_into`] (the decompressed block
/// it widens), one per thread.
#[derive(Debug, Default)]
pub struct DecodeScratch(RawBlock);

impl DayReader {
    /// Number of blocks in the plan this reader was opened from.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the plan has no block.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The metadata of the plan's blocks.
    pub fn blocks(&self) -> &[BlockMeta] {
        &self.blocks
    }

    /// The columns this reader decodes.
    pub fn columns(&self) -> ColumnSet {
        self.columns
    }

    /// The requested column files that could not be opened or mapped, with their
    /// path and the reason: every block read needs them, so every read fails.
    pub fn unavailable(&self) -> Vec<(Column, &Path, &str)> {
        Column::ALL
            .iter()
            .zip(&self.files)
            .filter_map(|(c, f)| match f {
                ColumnFile::Unavailable(p, why) => Some((*c, p.as_path(), why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Decodes block `i` of the plan (the chosen columns only), verifying lengths,
    /// checksums and encodings; a damaged block is an error naming file and block.
    pub fn read(&self, i: usize) -> Result<BlockData, BlockError> {
        let mut data = BlockData::default();
        self.read_into(i, &mut data, &mut DecodeScratch::default())?;
        Ok(data)
    }

    /// Like [`DayReader::read`], but refills `data`, reusing its vectors and
    /// `scratch`: decoding block after block into the same `data` allocates (and
    /// faults in fresh memory) only while the blocks grow. After an error `data` holds
    /// a partly decoded block and must not be used.
    pub fn read_into(
        &self,
        i: usize,
        data: &mut BlockData,
        scratch: &mut DecodeScratch,
    ) -> Result<(), BlockError> {
        self.read_raw_into(i, &mut scratch.0)?;
        scratch.0.rows_into(0..usize::MAX, data)
    }

    /// Checks and decompresses block `i` of the plan (the chosen columns only) into
    /// `raw`, reusing its buffers, without widening its values (see [`RawBlock`]):
    /// the same checks as [`DayReader::read_into`], errors naming file and block.
    /// After an error `raw` must not be used.
    pub fn read_raw_into(&self, i: usize, raw: &mut RawBlock) -> Result<(), BlockError> {
        for c in self.begin_raw(i, raw)?.iter() {
            let mut buf = raw.take_column(c);
            let layout = self.read_raw_column(i, c, &mut buf);
            raw.put_column(c, buf, layout.as_ref().ok().copied());
            layout?;
        }
        Ok(())
    }

    /// The first step of [`DayReader::read_raw_into`]: checks block `i`'s row
    /// counts and sets `raw`'s metadata, with no column decoded yet; the columns to
    /// decode (each with [`DayReader::read_raw_column`], on any thread).
    pub(crate) fn begin_raw(&self, i: usize, raw: &mut RawBlock) -> Result<ColumnSet, BlockError> {
        let b = self.block(i)?;
        if raw.iface != self.iface {
            raw.iface.clone_from(&self.iface);
        }
        self.check_rows(i, b)?;
        if raw.dir != self.dir {
            raw.dir.clone_from(&self.dir);
        }
        raw.date = self.date;
        raw.block = i;
        raw.timestamp = b.timestamp;
        raw.stats = b.stats;
        raw.rows_v4 = b.rows_v4 as usize;
        raw.rows_v6 = b.rows_v6 as usize;
        raw.columns = [None; NUM_COLUMNS];
        Ok(self.columns)
    }

    /// Checks and decompresses column `c` of block `i` into `buf` (see
    /// [`RawBlock::put_column`]).
    pub(crate) fn read_raw_column(
        &self,
        i: usize,
        c: Column,
        bytes: &mut ColumnBytes,
    ) -> Result<RawLayout, BlockError> {
        let b = self.block(i)?;
        bytes.mapped = None;
        let stored = self.stored(i, b, c)?;
        let layout = unpack(c, stored, b.column(c), b.rows_v4, b.rows_v6, &mut bytes.buf)
            .map_err(|k| self.err(i, b, c, k))?;
        if layout.is_framed() {
            // The frames stay where they are: the payload after the tag byte.
            if let ColumnFile::Mapped(_, Some(m)) = &self.files[c.index()] {
                let start = b.column(c).offset as usize + 1;
                bytes.mapped = Some((Arc::clone(m), start..start + stored.len() - 1));
            }
        }
        Ok(layout)
    }

    /// Block `i` of the plan.
    fn block(&self, i: usize) -> Result<&BlockMeta, BlockError> {
        self.blocks.get(i).ok_or_else(|| BlockError {
            iface: self.iface.clone(),
            date: self.date,
            block: i,
            timestamp: 0,
            file: PathBuf::new(),
            kind: BlockErrorKind::NoSuchBlock(self.blocks.len()),
        })
    }

    /// Like [`DayReader::read_raw_into`], into a new [`RawBlock`].
    pub fn read_raw(&self, i: usize) -> Result<RawBlock, BlockError> {
        let mut raw = RawBlock::default();
        self.read_raw_into(i, &mut raw)?;
        Ok(raw)
    }

    fn err(&self, i: usize, b: &BlockMeta, c: Column, kind: BlockErrorKind) -> BlockError {
        let file = match &self.files[c.index()] {
            ColumnFile::Mapped(p, _) | ColumnFile::Unavailable(p, _) => p.clone(),
            ColumnFile::Unused => PathBuf::from(c.file_name()),
        };
        BlockError {
            iface: self.iface.clone(),
            date: self.date,
            block: i,
            timestamp: b.timestamp,
            file,
            kind,
        }
    }

    /// Checks that the block's row count is backed by bytes on disk before anything is
    /// decoded. A column of all zeros is stored without payload, so only the metadata
    /// says how many rows it has; a damaged `day.meta` claiming billions of rows would
    /// make every decoder allocate for them. Every block has its address columns, and
    /// their raw length is exactly 4 bytes per IPv4 and 16 per IPv6 row: both must say
    /// so, and each address block must lie inside its file and be able to expand to
    /// that length (lz4 expands at most about 255-fold). A claimed row count then costs
    /// at most about 64 times the size of `sip.col`. (An address file that is missing
    /// is not checked: reading it reports it, and reading other columns goes on; with
    /// both missing only the metadata's own lengths bound the rows.)
    fn check_rows(&self, i: usize, b: &BlockMeta) -> Result<(), BlockError> {
        let want = 4 * u64::from(b.rows_v4) + 16 * u64::from(b.rows_v6);
        for (c, file_len) in [Column::Sip, Column::Dip]
            .into_iter()
            .zip(self.addr_file_len)
        {
            let cm = b.column(c);
            if u64::from(cm.raw_len) != want {
                let why = format!(
                    "{} IPv4 and {} IPv6 rows need {want} address bytes, the {} column has {}",
                    b.rows_v4,
                    b.rows_v6,
                    c.name(),
                    cm.raw_len
                );
                return Err(self.err(i, b, c, BlockErrorKind::BadLength(why)));
            }
            let Some(len) = file_len else {
                continue;
            };
            if cm.end() > len {
                let kind = BlockErrorKind::Truncated {
                    start: cm.offset,
                    end: cm.end(),
                    len,
                };
                return Err(self.err(i, b, c, kind));
            }
            let most = u64::from(cm.stored_len)
                .saturating_mul(256)
                .saturating_add(64);
            if want > most {
                let why = format!(
                    "{want} address bytes cannot come from a stored block of {} bytes",
                    cm.stored_len
                );
                return Err(self.err(i, b, c, BlockErrorKind::BadLength(why)));
            }
        }
        Ok(())
    }

    /// The checksum-verified stored bytes of column `c` of block `i`.
    fn stored(&self, i: usize, b: &BlockMeta, c: Column) -> Result<&[u8], BlockError> {
        let cm = b.column(c);
        let map: &[u8] = match &self.files[c.index()] {
            ColumnFile::Mapped(_, Some(m)) => m,
            ColumnFile::Mapped(_, None) => &[],
            ColumnFile::Unavailable(_, why) => {
                return Err(self.err(i, b, c, BlockErrorKind::FileUnavailable(why.clone())))
            }
            ColumnFile::Unused => {
                return Err(self.err(
                    i,
                    b,
                    c,
                    BlockErrorKind::FileUnavailable("not opened".into()),
                ))
            }
        };
        let (start, end) = (cm.offset, cm.end());
        let stored = usize::try_from(start)
            .ok()
            .zip(usize::try_from(end).ok())
            .and_then(|(s, e)| map.get(s..e));
        let Some(stored) = stored else {
            let kind = BlockErrorKind::Truncated {
                start,
                end,
                len: map.len() as u64,
            };
            return Err(self.err(i, b, c, kind));
        };
        let actual = crc32c::crc32c(stored);
        if actual != cm.crc32c {
            let kind = BlockErrorKind::Checksum {
                expected: cm.crc32c,
                actual,
            };
            return Err(self.err(i, b, c, kind));
        }
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn plans_and_readers_are_send_and_sync() {
        assert_send_sync::<DayPlan>();
        assert_send_sync::<DayReader>();
        assert_send_sync::<BlockData>();
    }

    /// Regression (fuzz finding "width-0 huge rows"): a day.meta with a valid checksum
    /// that claims a billion rows for a block whose other columns are all zeros must be
    /// a block error, not an allocation of gigabytes.
    #[test]
    fn claimed_rows_must_be_backed_by_the_address_columns() {
        use crate::{Block, CaptureStats, Counters, FlowKey, FlowRow};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        let row = FlowRow {
            key: FlowKey {
                sip: "10.0.0.1".parse().unwrap(),
                dip: "10.0.0.2".parse().unwrap(),
                proto: 6,
                dport: 80,
                l7: 0,
            },
            counters: Counters::default(),
        };
        let mut w = db.writer("eth0").unwrap();
        w.append(&Block {
            timestamp: 1_700_000_100,
            stats: CaptureStats::default(),
            rows: vec![row],
        })
        .unwrap();
        let req = ScanRequest {
            ifaces: vec![],
            first: 0,
            last: i64::MAX,
        };
        let plan = db.plan(&req).unwrap().remove(0);
        let mut meta = read_meta(plan.dir()).unwrap().unwrap();
        let good = meta.clone();
        // A billion IPv6 rows; the address columns still say one IPv4 row.
        meta.blocks[0].rows_v6 = 1_000_000_000;
        std::fs::write(plan.meta_path(), meta.encode()).unwrap();
        let plan = db.plan(&req).unwrap().remove(0);
        let only_l7 = ColumnSet::EMPTY.with(Column::L7);
        for columns in [ColumnSet::ALL, only_l7] {
            let r = plan.open(&db, columns).unwrap();
            let e = r.read(0).unwrap_err();
            assert!(matches!(e.kind, BlockErrorKind::BadLength(_)), "{e}");
        }
        // Address columns that agree with the claim, but more bytes than `sip.col`
        // could ever expand to.
        let mut meta = good.clone();
        let b = &mut meta.blocks[0];
        b.rows_v4 = 0;
        b.rows_v6 = 200_000_000;
        for c in [Column::Sip, Column::Dip] {
            b.columns[c.index()].raw_len = 16 * 200_000_000;
        }
        std::fs::write(plan.meta_path(), meta.encode()).unwrap();
        let plan = db.plan(&req).unwrap().remove(0);
        let e = plan.open(&db, only_l7).unwrap().read(0).unwrap_err();
        assert!(matches!(e.kind, BlockErrorKind::BadLength(_)), "{e}");
        // The untouched metadata reads fine.
        std::fs::write(plan.meta_path(), good.encode()).unwrap();
        let plan = db.plan(&req).unwrap().remove(0);
        let d = plan.open(&db, ColumnSet::ALL).unwrap().read(0).unwrap();
        assert_eq!(d.to_rows(), Some(vec![row]));
    }

    /// Widening a decoded block range by range gives the rows of decoding it whole,
    /// for every column width and layout (IPv4 and IPv6 rows, counters of 0 to 8
    /// bytes, compressible and random columns) and for ranges across the IPv4/IPv6
    /// boundary, empty ones and ones past the end.
    #[test]
    fn raw_blocks_widen_to_the_rows_of_a_whole_decode() {
        use crate::{Block, CaptureStats, Counters, FlowKey, FlowRow};
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut w = db.writer("eth0").unwrap();
        // Block 0: counters of every width; block 1: all-zero counters, few keys.
        for (t, scale) in [
            (1_700_000_100, [1u64 << 8, 1 << 16, 1 << 32, u64::MAX]),
            (1_700_000_400, [0; 4]),
        ] {
            let rows: Vec<FlowRow> = (0..5000u64)
                .map(|i| {
                    let r = next();
                    let (sip, dip) = if i % 5 == 0 {
                        let a: std::net::Ipv6Addr =
                            [0x2001, 0xdb8, 0, 0, 0, 0, (r >> 16) as u16, r as u16].into();
                        (a.into(), std::net::Ipv6Addr::LOCALHOST.into())
                    } else {
                        let a: std::net::Ipv4Addr = ((r >> 32) as u32 % 50_000).into();
                        (a.into(), std::net::Ipv4Addr::from(r as u32).into())
                    };
                    let mut c = |k: usize| {
                        let v = next();
                        if scale[k] == 0 {
                            0
                        } else {
                            v % scale[k]
                        }
                    };
                    FlowRow {
                        key: FlowKey {
                            sip,
                            dip,
                            proto: (r % 3) as u8 * 11,
                            dport: r as u16,
                            l7: (r % 7) as u16,
                        },
                        counters: Counters {
                            bytes_rcvd: c(3),
                            bytes_sent: c(2),
                            pkts_rcvd: c(1),
                            pkts_sent: c(0),
                        },
                    }
                })
                .collect();
            w.append(&Block {
                timestamp: t,
                stats: CaptureStats::default(),
                rows,
            })
            .unwrap();
        }
        let req = ScanRequest {
            ifaces: vec![],
            first: 0,
            last: i64::MAX,
        };
        let plan = db.plan(&req).unwrap().remove(0);
        let only = ColumnSet::EMPTY
            .with(Column::Dip)
            .with(Column::PktsSent)
            .with(Column::Sip);
        for columns in [ColumnSet::ALL, only] {
            let reader = plan.open(&db, columns).unwrap();
            let mut raw = RawBlock::default();
            let mut part = BlockData::default();
            for b in 0..reader.len() {
                let whole = reader.read(b).unwrap();
                reader.read_raw_into(b, &mut raw).unwrap();
                assert_eq!((raw.rows(), raw.rows_v4()), (whole.rows, whole.rows_v4));
                assert_eq!(raw.timestamp(), whole.timestamp);
                let v4 = whole.rows_v4;
                for (lo, hi) in [
                    (0, 5000),
                    (0, 1),
                    (v4 - 3, v4 + 3),
                    (v4, 5000),
                    (17, 4097),
                    (4990, 9999),
                    (2000, 2000),
                    (6000, 7000),
                ] {
                    raw.rows_into(lo..hi, &mut part).unwrap();
                    let (lo, hi) = (lo.min(5000), hi.min(5000));
                    assert_eq!(part.rows, hi - lo);
                    assert_eq!(part.rows_v4, hi.min(v4) - lo.min(v4));
                    for i in lo..hi {
                        assert_eq!(
                            part.try_row(i - lo),
                            whole.try_row(i),
                            "block {b} row {i} of {lo}..{hi}"
                        );
                        let ip = |d: &BlockData, i: usize| d.sip.as_ref().and_then(|c| c.get(i));
                        assert_eq!(ip(&part, i - lo), ip(&whole, i));
                        let p = |d: &BlockData, i: usize| {
                            d.pkts_sent.as_ref().and_then(|c| c.get(i).copied())
                        };
                        assert_eq!(p(&part, i - lo), p(&whole, i));
                    }
                    assert_eq!(part.proto.is_some(), columns.contains(Column::Proto));
                }
            }
        }
    }
}
