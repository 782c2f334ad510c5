//! The database handle: creating and opening a database folder, the folder layout
//! (`<db>/<iface>/<YYYY>/<MM>/<DD>/`), interface name validation, and listing
//! interfaces and days from the metadata files alone.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate};

use crate::error::{Error, Result};
use crate::meta::{DayMeta, META_FILE};
use crate::model::{CaptureStats, Counters};

/// Permission bits of every folder godb creates.
pub(crate) const DIR_MODE: u32 = 0o750;
/// Longest interface name accepted, in bytes.
pub const MAX_IFACE_LEN: usize = 64;

/// An open godb database: a folder holding one sub-folder per interface.
///
/// The handle is cheap to clone and holds no open file; every operation reads the
/// current state from disk.
#[derive(Debug, Clone)]
pub struct Database {
    root: PathBuf,
}

/// What is stored for one interface and one UTC day, read from its metadata alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySummary {
    /// The UTC day (the day in which the intervals of its blocks start).
    pub date: NaiveDate,
    /// Timestamp of the first block.
    pub first: i64,
    /// Timestamp of the last block.
    pub last: i64,
    /// Number of committed blocks.
    pub blocks: u32,
    /// Number of rows of all blocks.
    pub rows: u64,
    /// Sum of the counters of all rows.
    pub counters: Counters,
    /// Sum of the capture statistics of all blocks.
    pub stats: CaptureStats,
}

/// Checks that `name` can be used as an interface folder: 1 to 64 bytes, no `/`, no
/// NUL, not `.` or `..`.
pub fn validate_iface(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > MAX_IFACE_LEN {
        "longer than 64 bytes"
    } else if name.contains('/') {
        "contains '/'"
    } else if name.contains('\0') {
        "contains NUL"
    } else if name == "." || name == ".." {
        "is '.' or '..'"
    } else {
        return Ok(());
    };
    Err(Error::InvalidInterface {
        name: name.to_string(),
        reason,
    })
}

/// The UTC day folder of a block ending at `timestamp`: the day of `timestamp - 1`.
/// Only years 0 to 9999 fit the four-digit year folders; other timestamps are
/// [`Error::TimestampOutOfRange`].
pub fn day_of(timestamp: i64) -> Result<NaiveDate> {
    timestamp
        .checked_sub(1)
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .map(|d| d.date_naive())
        .filter(|d| (0..=9999).contains(&d.year()))
        .ok_or(Error::TimestampOutOfRange(timestamp))
}

/// Creates `path` and missing parents with mode 0750.
fn mkdir_all(path: &Path) -> std::io::Result<()> {
    crate::fsio::mkdir_all(path)
}

/// Reads and validates a day's metadata; `Ok(None)` if the file does not exist.
pub(crate) fn read_meta(day_dir: &Path) -> Result<Option<DayMeta>> {
    let path = day_dir.join(META_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    DayMeta::decode(&bytes)
        .map(Some)
        .map_err(|reason| Error::DamagedMeta { path, reason })
}

/// The sub-folders of `dir` with UTF-8 names, sorted by name; none if `dir` is gone
/// or is a symbolic link. Used for every level below the database folder: godb does
/// not follow links inside the database, so neither readers nor retention reach
/// outside it through one (entries that are links are left out too).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Ok(Vec::new()),
        _ => list_subdirs(dir),
    }
}

/// The sub-folders of `dir` (followed if it is a link), as [`subdirs`].
fn list_subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io("list", dir, e))?;
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if let (Ok(name), true) = (ent.file_name().into_string(), is_dir) {
            out.push((name, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// `name` as a number if it is exactly `digits` ASCII digits.
pub(crate) fn parse_fixed(name: &str, digits: usize) -> Option<u32> {
    (name.len() == digits && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

/// Sorted sub-folders of `dir` whose names are numbers of `digits` digits.
fn numbered_subdirs(dir: &Path, digits: usize) -> Result<Vec<(u32, PathBuf)>> {
    Ok(subdirs(dir)?
        .into_iter()
        .filter_map(|(name, path)| Some((parse_fixed(&name, digits)?, path)))
        .collect())
}

impl Database {
    /// Creates the database folder (mode 0750, with missing parents) if it does not
    /// exist, and opens it.
    pub fn create(path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        mkdir_all(path).map_err(|e| Error::io("create", path, e))?;
        Database::open(path)
    }

    /// Opens an existing database folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Database> {
        let path = path.as_ref();
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(Database {
                root: path.to_path_buf(),
            }),
            Ok(_) => Err(Error::NotADirectory(path.to_path_buf())),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NotFound(path.to_path_buf())),
            Err(e) => Err(Error::io("open", path, e)),
        }
    }

    /// The database folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The folder of interface `iface` (validated).
    pub(crate) fn iface_dir(&self, iface: &str) -> Result<PathBuf> {
        validate_iface(iface)?;
        Ok(self.root.join(iface))
    }

    /// The folder of one interface and day.
    pub(crate) fn day_dir(&self, iface: &str, date: NaiveDate) -> Result<PathBuf> {
        Ok(self.iface_dir(iface)?.join(date_rel_path(date)))
    }

    /// The interfaces that have a folder in the database, sorted by name.
    pub fn interfaces(&self) -> Result<Vec<String>> {
        // The database folder itself may be a link (the operator's choice).
        Ok(list_subdirs(&self.root)?
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| validate_iface(name).is_ok())
            .collect())
    }

    /// The day folders of `iface` (sorted by date), whether or not they hold metadata.
    pub(crate) fn day_dirs(&self, iface: &str) -> Result<Vec<(NaiveDate, PathBuf)>> {
        let mut out = Vec::new();
        for (y, ydir) in numbered_subdirs(&self.iface_dir(iface)?, 4)? {
            for (m, mdir) in numbered_subdirs(&ydir, 2)? {
                for (d, ddir) in numbered_subdirs(&mdir, 2)? {
                    if let Some(date) = NaiveDate::from_ymd_opt(y as i32, m, d) {
                        out.push((date, ddir));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The days stored for `iface` with their totals, sorted by date, from the
    /// metadata files alone. Days without committed blocks and days whose metadata is
    /// damaged are left out (see [`Database::damaged_days`]).
    pub fn days(&self, iface: &str) -> Result<Vec<DaySummary>> {
        let mut out = Vec::new();
        for (date, dir) in self.day_dirs(iface)? {
            let meta = match read_meta(&dir) {
                Ok(Some(m)) if !m.blocks.is_empty() => m,
                Ok(_) | Err(Error::DamagedMeta { .. }) => continue,
                Err(e) => return Err(e),
            };
            let t = meta.totals();
            out.push(DaySummary {
                date,
                first: t.first,
                last: t.last,
                blocks: meta.blocks.len() as u32,
                rows: t.rows,
                counters: t.counters,
                stats: t.stats,
            });
        }
        Ok(out)
    }

    /// The days of `iface` whose metadata file is damaged, with the reason.
    pub fn damaged_days(&self, iface: &str) -> Result<Vec<(NaiveDate, String)>> {
        let mut out = Vec::new();
        for (date, dir) in self.day_dirs(iface)? {
            if let Err(Error::DamagedMeta { reason, .. }) = read_meta(&dir) {
                out.push((date, reason));
            }
        }
        Ok(out)
    }
}

/// `YYYY/MM/DD` of a date.
pub(crate) fn date_rel_path(date: NaiveDate) -> PathBuf {
    PathBuf::from(format!("{:04}", date.year()))
        .join(format!("{:02}", date.month()))
        .join(format!("{:02}", date.day()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iface_names() {
        for ok in [
            "eth0",
            "en0.100",
            ".hidden",
            "a".repeat(64).as_str(),
            "wlan-ü",
        ] {
            assert!(validate_iface(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "/", "a\0b", "a".repeat(65).as_str()] {
            assert!(
                matches!(validate_iface(bad), Err(Error::InvalidInterface { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_entry_point_refuses_names_that_leave_the_database_folder() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::create(dir.path().join("db")).unwrap();
        // A day folder one level up, where `..` would lead.
        std::fs::create_dir_all(dir.path().join("2025/11/22")).unwrap();
        for bad in ["..", "../db", "a/../..", "/etc", ""] {
            let invalid = |r: Result<()>| matches!(r, Err(Error::InvalidInterface { .. }));
            assert!(invalid(db.writer(bad).map(|_| ())), "writer {bad:?}");
            assert!(invalid(db.days(bad).map(|_| ())), "days {bad:?}");
            assert!(invalid(db.damaged_days(bad).map(|_| ())), "damaged {bad:?}");
            let req = crate::ScanRequest {
                ifaces: vec![bad.to_string()],
                first: 0,
                last: i64::MAX,
            };
            assert!(invalid(db.plan(&req).map(|_| ())), "plan {bad:?}");
            let date = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
            assert!(
                invalid(db.delete_days_before(date, Some(bad)).map(|_| ())),
                "delete {bad:?}"
            );
        }
        assert!(dir.path().join("2025/11/22").is_dir());
        assert_eq!(std::fs::read_dir(db.path()).unwrap().count(), 0);
    }

    #[test]
    fn links_inside_the_database_are_not_followed_by_readers_or_retention() {
        let dir = tempfile::tempdir().unwrap();
        // A folder outside that looks like an interface's days.
        let outside = dir.path().join("outside");
        let old_day = outside.join("2020/01/01");
        std::fs::create_dir_all(&old_day).unwrap();
        std::fs::write(old_day.join(crate::meta::META_FILE), b"x").unwrap();
        // The database folder may be a link; an interface folder may not.
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("db")).unwrap();
        let db = Database::open(dir.path().join("db")).unwrap();
        std::os::unix::fs::symlink(&outside, db.path().join("eth9")).unwrap();
        std::fs::create_dir_all(db.path().join("eth0/2020/01")).unwrap();
        std::os::unix::fs::symlink(&outside, db.path().join("eth0/2020/01/02")).unwrap();

        assert_eq!(db.interfaces().unwrap(), ["eth0"]);
        assert!(db.day_dirs("eth9").unwrap().is_empty());
        assert!(db.day_dirs("eth0").unwrap().is_empty());
        assert!(db.damaged_days("eth9").unwrap().is_empty());
        let date = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        assert!(db
            .delete_days_before(date, Some("eth9"))
            .unwrap()
            .is_empty());
        db.delete_days_before(date, None).unwrap();
        assert!(old_day.join(crate::meta::META_FILE).is_file());
    }

    #[test]
    fn block_at_midnight_belongs_to_previous_day() {
        let midnight = 1_763_769_600; // 2025-11-22T00:00:00Z
        assert_eq!(day_of(midnight).ok(), NaiveDate::from_ymd_opt(2025, 11, 21));
        assert_eq!(
            day_of(midnight + 1).ok(),
            NaiveDate::from_ymd_opt(2025, 11, 22)
        );
        assert_eq!(
            day_of(midnight + 300).ok(),
            NaiveDate::from_ymd_opt(2025, 11, 22)
        );
        assert!(day_of(i64::MIN).is_err());
        // Year folders have four digits: 0000-01-01 .. 9999-12-31 only.
        assert!(day_of(-62_167_219_200 + 1).is_ok());
        assert!(day_of(-62_167_219_200).is_err());
        assert!(day_of(253_402_300_800).is_ok());
        assert!(day_of(253_402_300_801).is_err());
        assert!(day_of(i64::MAX).is_err());
    }
}
