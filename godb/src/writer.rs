//! The block writer: one per interface (an flock on `<iface>/.lock`), appending one
//! block per interval with the durable commit protocol of `docs/FORMAT.md`: column
//! blocks appended and fdatasync'd, then a new `day.meta` written to a temporary file,
//! fsync'd, renamed over the old one, and the day folder fsync'd.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::column::{encode_ip, encode_uint_column, Column, Encoded, NUM_COLUMNS};
use crate::db::{day_of, read_meta, Database};
use crate::error::{Error, Result};
use crate::fsio::{self, mkdir_all, FILE_MODE};
use crate::meta::{BlockMeta, ColumnMeta, DayMeta, META_FILE, META_TMP_FILE};
use crate::model::{Block, Counters, FlowKey, FlowRow};

/// Name of the lock file in an interface folder.
pub const LOCK_FILE: &str = ".lock";

/// Appends blocks to one interface of a database. Holds the interface's lock until
/// dropped, so there is at most one writer per interface (across processes too).
#[derive(Debug)]
pub struct BlockWriter {
    db: Database,
    iface: String,
    iface_dir: PathBuf,
    /// Keeps the flock; released when the writer is dropped.
    _lock: File,
    /// Timestamp of the last committed block of the interface, if any.
    last: Option<i64>,
    /// Blocks this writer has made visible (see [`BlockWriter::committed`]).
    committed: u64,
}

fn fsync_dir(path: &Path) -> Result<()> {
    fsio::sync_dir(path).map_err(|e| Error::io("fsync folder", path, e))
}

/// Converts an address to 16 bytes (IPv4 as IPv4-mapped IPv6).
fn v6_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Sorts rows into stored order: IPv4 rows then IPv6 rows, each by key, then by
/// counters. Rows with mixed IP versions become IPv6 (IPv4-mapped).
pub(crate) fn sorted_rows(rows: &[FlowRow]) -> Vec<FlowRow> {
    let mut out: Vec<FlowRow> = rows
        .iter()
        .map(|r| {
            let mut r = *r;
            if r.key.sip.is_ipv4() != r.key.dip.is_ipv4() {
                r.key.sip = IpAddr::from(v6_bytes(r.key.sip));
                r.key.dip = IpAddr::from(v6_bytes(r.key.dip));
            }
            r
        })
        .collect();
    out.sort_unstable_by_key(sort_key);
    out
}

fn sort_key(r: &FlowRow) -> (FlowKey, u64, u64, u64, u64) {
    let c = &r.counters;
    (r.key, c.bytes_rcvd, c.bytes_sent, c.pkts_rcvd, c.pkts_sent)
}

/// Encodes the nine columns of sorted rows; returns them with the IPv4 row count.
pub(crate) fn encode_block(rows: &[FlowRow]) -> (Vec<Encoded>, usize) {
    let n4 = rows.iter().take_while(|r| r.key.sip.is_ipv4()).count();
    let ip = |f: fn(&FlowKey) -> IpAddr| {
        let mut v4 = Vec::with_capacity(n4);
        let mut v6 = Vec::with_capacity(rows.len() - n4);
        for r in rows {
            match f(&r.key) {
                IpAddr::V4(a) => v4.push(a.octets()),
                IpAddr::V6(a) => v6.push(a.octets()),
            }
        }
        encode_ip(&v4, &v6)
    };
    let uint = |c: Column, f: fn(&FlowRow) -> u64| {
        let v: Vec<u64> = rows.iter().map(f).collect();
        encode_uint_column(c, &v)
    };
    let cols = vec![
        ip(|k| k.sip),
        ip(|k| k.dip),
        uint(Column::Proto, |r| u64::from(r.key.proto)),
        uint(Column::Dport, |r| u64::from(r.key.dport)),
        uint(Column::L7, |r| u64::from(r.key.l7)),
        uint(Column::BytesRcvd, |r| r.counters.bytes_rcvd),
        uint(Column::BytesSent, |r| r.counters.bytes_sent),
        uint(Column::PktsRcvd, |r| r.counters.pkts_rcvd),
        uint(Column::PktsSent, |r| r.counters.pkts_sent),
    ];
    (cols, n4)
}

impl Database {
    /// Opens the writer of interface `iface`, creating its folder if needed. Fails
    /// with [`Error::WriterLocked`] if another writer (in any process) holds it.
    pub fn writer(&self, iface: &str) -> Result<BlockWriter> {
        let iface_dir = self.iface_dir(iface)?;
        let existed = iface_dir.is_dir();
        mkdir_all(&iface_dir).map_err(|e| Error::io("create", &iface_dir, e))?;
        real_dir(&iface_dir)?;
        if !existed {
            fsync_dir(self.path())?;
        }
        let lock_path = iface_dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        // SAFETY: flock on a file descriptor we own; it has no memory-safety effects.
        let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == ErrorKind::WouldBlock {
                Error::WriterLocked {
                    iface: iface.to_string(),
                    lock: lock_path,
                }
            } else {
                Error::io("lock", lock_path, e)
            });
        }
        let mut last = None;
        for (_, dir) in self.day_dirs(iface)?.into_iter().rev() {
            match read_meta(&dir) {
                Ok(Some(m)) => {
                    if let Some(b) = m.blocks.last() {
                        last = Some(b.timestamp);
                        break;
                    }
                }
                Ok(None) | Err(Error::DamagedMeta { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(BlockWriter {
            db: self.clone(),
            iface: iface.to_string(),
            iface_dir,
            _lock: lock,
            last,
            committed: 0,
        })
    }
}

impl BlockWriter {
    /// The interface this writer appends to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Timestamp of the last committed block of the interface, if any.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.last
    }

    /// How many blocks this writer has made visible to readers. An append that fails
    /// only at its very last step (the folder fsync after the metadata rename) returns
    /// `Err` but has made its block visible and counts here: a caller that retries
    /// failed appends compares this count before and after, so it never stores a
    /// block twice.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Sorts the block's rows, encodes them and appends them to the day folder of the
    /// block's interval. When this returns `Ok`, the block is durable and visible to
    /// readers. Timestamps must not decrease (equal timestamps are allowed).
    ///
    /// On `Err` the database stays consistent and the next append can proceed; the
    /// block itself is then either absent or, if only the final folder fsync failed,
    /// present and complete.
    pub fn append(&mut self, block: &Block) -> Result<()> {
        if let Some(last) = self.last {
            if block.timestamp < last {
                return Err(Error::TimestampOrder {
                    iface: self.iface.clone(),
                    last,
                    got: block.timestamp,
                });
            }
        }
        let date = day_of(block.timestamp)?;
        let rows = sorted_rows(&block.rows);
        let (cols, n4) = encode_block(&rows);
        let n6 = rows.len() - n4;
        let too_large = |what: &str| Error::BlockTooLarge(what.to_string());
        let rows_v4 = u32::try_from(n4).map_err(|_| too_large("more than 2^32 IPv4 rows"))?;
        let rows_v6 = u32::try_from(n6).map_err(|_| too_large("more than 2^32 IPv6 rows"))?;
        let mut counters = Counters::default();
        for r in &rows {
            counters.add(&r.counters);
        }

        let day_dir = self.prepare_day(date)?;
        let mut meta = read_meta(&day_dir)?.unwrap_or_default();
        let ends = meta.column_ends();
        let mut columns = [ColumnMeta::default(); NUM_COLUMNS];
        for (i, c) in Column::ALL.iter().enumerate() {
            let enc = &cols[i];
            columns[i] = ColumnMeta {
                offset: ends[i],
                stored_len: u32::try_from(enc.bytes.len())
                    .map_err(|_| too_large("column block over 4 GiB"))?,
                raw_len: u32::try_from(enc.raw_len)
                    .map_err(|_| too_large("column block over 4 GiB"))?,
                crc32c: crc32c::crc32c(&enc.bytes),
                encoding: enc.tag(),
            };
            append_column(&day_dir.join(c.file_name()), ends[i], &enc.bytes)?;
        }
        meta.blocks.push(BlockMeta {
            index_in_day: meta.blocks.len(),
            timestamp: block.timestamp,
            rows_v4,
            rows_v6,
            stats: block.stats,
            counters,
            columns,
        });
        publish_meta(&day_dir, &meta)?;
        // Visible from here on, even if the folder fsync below fails.
        self.last = Some(block.timestamp);
        self.committed += 1;
        fsync_dir(&day_dir)?;
        fsio::acked();
        Ok(())
    }

    /// Creates the day folder if needed (with retries against a concurrent retention
    /// run removing an empty month or year) and makes its name durable. A day folder
    /// with damaged metadata is set aside.
    fn prepare_day(&self, date: NaiveDate) -> Result<PathBuf> {
        let day_dir = self.db.day_dir(&self.iface, date)?;
        // No folder from the interface down to the day may be a link: check the ones
        // that exist before creating the others (so nothing is created through a
        // link), and all of them once they exist.
        let check_tree = |day_dir: &Path| -> Result<()> {
            let mut chain: Vec<&Path> = day_dir
                .ancestors()
                .take_while(|p| p.starts_with(&self.iface_dir))
                .collect();
            chain.reverse();
            for dir in chain {
                match std::fs::symlink_metadata(dir) {
                    Err(e) if e.kind() == ErrorKind::NotFound => break,
                    _ => real_dir(dir)?,
                }
            }
            Ok(())
        };
        check_tree(&day_dir)?;
        if day_dir.is_dir() {
            if let Err(Error::DamagedMeta { .. }) = read_meta(&day_dir) {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let name = day_dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("day");
                let aside = day_dir.with_file_name(format!("{name}.damaged-{now}"));
                fsio::rename(&day_dir, &aside).map_err(|e| Error::io("rename", &day_dir, e))?;
            } else {
                return Ok(day_dir);
            }
        }
        let mut attempt = 0;
        loop {
            match mkdir_all(&day_dir) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound && attempt < 10 => attempt += 1,
                Err(e) => return Err(Error::io("create", &day_dir, e)),
            }
        }
        check_tree(&day_dir)?;
        // Make the new names durable: every folder from the day up to the interface.
        let mut dir = day_dir.as_path();
        while let Some(parent) = dir.parent() {
            fsync_dir(parent)?;
            if parent == self.iface_dir {
                break;
            }
            dir = parent;
        }
        Ok(day_dir)
    }
}

/// Writes `bytes` at the committed end `at` of a column file, dropping any garbage
/// past it first, and makes them durable.
fn append_column(path: &Path, at: u64, bytes: &[u8]) -> Result<()> {
    let file = fsio::open_write(path, false).map_err(|e| Error::io("open", path, e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat", path, e))?
        .len();
    if len != at {
        fsio::set_len(&file, path, at).map_err(|e| Error::io("truncate", path, e))?;
    }
    fsio::write_at(&file, path, bytes, at).map_err(|e| Error::io("write", path, e))?;
    fsio::sync_file(&file, path).map_err(|e| Error::io("fsync", path, e))
}

/// Writes `meta` to the temporary file, fsyncs it and renames it over `day.meta`
/// (the caller then fsyncs the folder).
pub(crate) fn publish_meta(day_dir: &Path, meta: &DayMeta) -> Result<()> {
    let tmp = day_dir.join(META_TMP_FILE);
    let f = fsio::open_write(&tmp, true).map_err(|e| Error::io("create", &tmp, e))?;
    fsio::write_at(&f, &tmp, &meta.encode(), 0).map_err(|e| Error::io("write", &tmp, e))?;
    fsio::sync_file(&f, &tmp).map_err(|e| Error::io("fsync", &tmp, e))?;
    drop(f);
    let dst = day_dir.join(META_FILE);
    fsio::rename(&tmp, &dst).map_err(|e| Error::io("rename", &dst, e))
}

/// Checks that `path` is a folder and not a symbolic link: godb never writes through a
/// link inside the database (the database folder itself may be one).
fn real_dir(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if meta.file_type().is_symlink() || !meta.is_dir() {
        return Err(Error::io(
            "write into",
            path,
            std::io::Error::new(
                ErrorKind::InvalidInput,
                "not a folder (godb does not follow symbolic links inside the database)",
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsio::journal;
    use crate::model::CaptureStats;
    use crate::{ColumnSet, ScanRequest};

    fn block(timestamp: i64, n: u8) -> Block {
        let rows = (0..n)
            .map(|i| FlowRow {
                key: FlowKey {
                    sip: IpAddr::from([10, 0, 0, i]),
                    dip: IpAddr::from([192, 0, 2, 1]),
                    proto: 17,
                    dport: 53,
                    l7: 0,
                },
                counters: Counters {
                    bytes_rcvd: 100,
                    bytes_sent: u64::from(i),
                    pkts_rcvd: 1,
                    pkts_sent: 1,
                },
            })
            .collect();
        Block {
            timestamp,
            stats: CaptureStats::default(),
            rows,
        }
    }

    fn stored(db: &Database) -> Vec<(i64, usize)> {
        let req = ScanRequest {
            ifaces: vec!["eth0".into()],
            first: i64::MIN,
            last: i64::MAX,
        };
        let mut out = Vec::new();
        for day in db.plan(&req).unwrap() {
            let r = day.open(db, ColumnSet::ALL).unwrap();
            for i in 0..r.len() {
                let b = r.read(i).unwrap();
                out.push((b.timestamp, b.to_rows().unwrap().len()));
            }
        }
        out
    }

    const T: i64 = 1_763_769_600 + 600;

    #[test]
    fn committed_counts_exactly_the_visible_blocks_whatever_operation_fails() {
        // Each operation of an append fails in turn (the last one is the folder fsync
        // after the rename): `committed` always equals the blocks a reader sees, so a
        // caller retrying failed appends never stores a block twice.
        for n in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let db = Database::create(dir.path()).unwrap();
            let mut w = db.writer("eth0").unwrap();
            w.append(&block(T, 2)).unwrap();
            journal::fail_after(Some(n));
            let result = w.append(&block(T + 300, 3));
            journal::fail_after(None);
            let seen = stored(&db);
            assert_eq!(seen.len() as u64, w.committed(), "op {n}: {seen:?}");
            if w.committed() == 1 {
                assert!(result.is_err(), "op {n}");
                // The retry stores it once.
                w.append(&block(T + 300, 3)).unwrap();
            }
            assert_eq!(stored(&db), [(T, 2), (T + 300, 3)], "op {n}");
            if result.is_ok() {
                assert!(n > 10, "only {n} operations per append");
                break;
            }
        }
    }

    #[test]
    fn symbolic_links_inside_the_database_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();

        // An interface folder that is a link.
        std::os::unix::fs::symlink(&outside, db.path().join("eth1")).unwrap();
        let e = db.writer("eth1").unwrap_err().to_string();
        assert!(e.contains("symbolic links"), "{e}");

        // A year folder that is a link.
        let mut w = db.writer("eth0").unwrap();
        let day = day_of(T).unwrap();
        let year = db.day_dir("eth0", day).unwrap();
        let year = year.parent().and_then(Path::parent).unwrap().to_path_buf();
        std::os::unix::fs::symlink(&outside, &year).unwrap();
        let e = w.append(&block(T, 1)).unwrap_err().to_string();
        assert!(e.contains("symbolic links"), "{e}");
        std::fs::remove_file(&year).unwrap();

        // A column file that is a link to a file outside.
        let day_dir = db.day_dir("eth0", day).unwrap();
        std::fs::create_dir_all(&day_dir).unwrap();
        let victim = outside.join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let col = day_dir.join(Column::ALL[0].file_name());
        std::os::unix::fs::symlink(&victim, &col).unwrap();
        assert!(w.append(&block(T, 1)).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);

        // Once the link is gone the same writer appends normally.
        std::fs::remove_file(&col).unwrap();
        w.append(&block(T, 1)).unwrap();
        assert_eq!(stored(&db), [(T, 1)]);
    }
}
