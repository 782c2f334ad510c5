//! Retention: deleting whole days before a date, per interface or for all, safely
//! while a writer appends to today's folder (see "Retention" in `docs/FORMAT.md`).

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use chrono::NaiveDate;

use crate::db::{parse_fixed, subdirs, Database};
use crate::error::{Error, Result};
use crate::meta::META_FILE;

/// Removes an empty folder; a folder that is not empty (a writer just created a day
/// in it) or already gone is left alone.
fn remove_if_empty(dir: &Path) -> Result<()> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::DirectoryNotEmpty | ErrorKind::AlreadyExists
            ) || e.raw_os_error() == Some(libc::ENOTEMPTY) =>
        {
            Ok(())
        }
        Err(e) => Err(Error::io("remove folder", dir, e)),
    }
}

/// Removes a whole day folder: its metadata first, so that new readers stop seeing
/// the day at once, then everything else.
fn remove_day(dir: &Path) -> Result<()> {
    let meta = dir.join(META_FILE);
    match fs::remove_file(&meta) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", meta, e)),
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove folder", dir, e)),
    }
}

/// Parses the date of a day folder name `DD` or a set-aside `DD.damaged-<secs>`.
fn day_number(name: &str) -> Option<u32> {
    let digits = name.get(..2)?;
    let rest = &name[2..];
    if !digits.bytes().all(|b| b.is_ascii_digit())
        || !(rest.is_empty() || rest.starts_with(".damaged-"))
    {
        return None;
    }
    digits.parse().ok()
}

impl Database {
    /// Deletes the days older than `days` days before `today` (the cron job's "keep N
    /// days"): every day folder dated before `today - days`, so that `today` and the
    /// `days` days before it are kept. See [`Database::delete_days_before`].
    pub fn delete_days_older_than(
        &self,
        days: u32,
        today: NaiveDate,
        iface: Option<&str>,
    ) -> Result<Vec<(String, NaiveDate)>> {
        let cutoff = today
            .checked_sub_days(chrono::Days::new(u64::from(days)))
            .unwrap_or(NaiveDate::MIN);
        self.delete_days_before(cutoff, iface)
    }

    /// Deletes every day folder dated strictly before `date`, of interface `iface` or
    /// of every interface, and then month and year folders left empty. Returns the
    /// deleted (interface, day) pairs, sorted. Safe while writers append to later days.
    /// Day folders a writer set aside as damaged are deleted with their day.
    pub fn delete_days_before(
        &self,
        date: NaiveDate,
        iface: Option<&str>,
    ) -> Result<Vec<(String, NaiveDate)>> {
        let ifaces = match iface {
            Some(i) => {
                crate::db::validate_iface(i)?;
                vec![i.to_string()]
            }
            None => self.interfaces()?,
        };
        let mut deleted = Vec::new();
        for iface in ifaces {
            let idir = self.iface_dir(&iface)?;
            for (yname, ydir) in subdirs(&idir)? {
                let Some(y) = parse_fixed(&yname, 4) else {
                    continue;
                };
                for (mname, mdir) in subdirs(&ydir)? {
                    let Some(m) = parse_fixed(&mname, 2) else {
                        continue;
                    };
                    for (dname, ddir) in subdirs(&mdir)? {
                        let Some(d) = day_number(&dname) else {
                            continue;
                        };
                        let Some(day) = NaiveDate::from_ymd_opt(y as i32, m, d) else {
                            continue;
                        };
                        if day < date {
                            remove_day(&ddir)?;
                            if dname.len() == 2 {
                                deleted.push((iface.clone(), day));
                            }
                        }
                    }
                    remove_if_empty(&mdir)?;
                }
                remove_if_empty(&ydir)?;
            }
        }
        deleted.sort();
        deleted.dedup();
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_folder_names() {
        assert_eq!(day_number("07"), Some(7));
        assert_eq!(day_number("31.damaged-1763769600"), Some(31));
        assert_eq!(day_number("7"), None);
        assert_eq!(day_number("07x"), None);
        assert_eq!(day_number("ab"), None);
        assert_eq!(parse_fixed("2026", 4), Some(2026));
        assert_eq!(parse_fixed("226", 4), None);
    }
}
