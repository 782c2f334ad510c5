//! Checking a database folder for what godb did not write or cannot read, so that a
//! query (and `goquery list`) can report it and carry on with the rest: foreign files
//! and folders, day folders whose metadata is unreadable, days with committed blocks
//! but a missing column file, folders that cannot be listed.
//!
//! The checks look at folder listings and file types only (plus the day metadata the
//! query reads anyway); no column file is opened.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::db::{parse_fixed, read_meta};
use crate::meta::{META_FILE, META_TMP_FILE};
use crate::{Column, Database, DaySummary, LOCK_FILE};

/// Something found in the database folder that is not as godb writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The interface it belongs to, if any.
    pub iface: Option<String>,
    /// The file or folder.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Blocks of the query window left out because of it (0 when the query did not
    /// need what is missing, or when the number is unknown, as for a day whose
    /// metadata cannot be read).
    pub blocks_left_out: usize,
}

/// What is wrong with a [`Problem`]'s path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// A file or folder godb does not write (ignored).
    Foreign,
    /// A day with committed blocks has no such column file (or it is not a file);
    /// queries needing the column leave the day out.
    MissingColumn(Column),
    /// A column file exists but cannot be opened or mapped.
    UnreadableColumn(Column, String),
    /// The day's metadata cannot be read or is damaged: the whole day is left out.
    UnreadableDay(String),
    /// A folder cannot be listed: whatever is below it is left out.
    Unlistable(String),
}

impl Problem {
    /// Whether the problem can take data away from a result (everything but a
    /// foreign entry).
    pub fn loses_data(&self) -> bool {
        !matches!(self.kind, ProblemKind::Foreign)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ProblemKind::Foreign => write!(f, "{p}: not written by godb, ignored"),
            ProblemKind::MissingColumn(c) => {
                write!(f, "{p}: column file missing ({} column)", c.name())
            }
            ProblemKind::UnreadableColumn(c, why) => {
                write!(f, "{p}: {} column unreadable: {why}", c.name())
            }
            ProblemKind::UnreadableDay(why) => write!(f, "{p}: day unreadable: {why}"),
            ProblemKind::Unlistable(why) => write!(f, "{p}: folder unreadable: {why}"),
        }?;
        if self.blocks_left_out > 0 {
            write!(f, " ({} blocks left out)", self.blocks_left_out)?;
        }
        Ok(())
    }
}

fn problem(iface: Option<&str>, path: PathBuf, kind: ProblemKind) -> Problem {
    Problem {
        iface: iface.map(str::to_string),
        path,
        kind,
        blocks_left_out: 0,
    }
}

/// The entries of `dir` as (name, path, is a folder); a listing error is a problem.
fn entries(
    dir: &Path,
    iface: Option<&str>,
    out: &mut Vec<Problem>,
) -> Vec<(String, PathBuf, bool)> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                out.push(problem(
                    iface,
                    dir.to_path_buf(),
                    ProblemKind::Unlistable(e.to_string()),
                ));
            }
            return Vec::new();
        }
    };
    let mut v = Vec::new();
    for ent in rd {
        match ent {
            Ok(ent) => {
                let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
                let name = ent.file_name().to_string_lossy().into_owned();
                v.push((name, ent.path(), is_dir));
            }
            Err(e) => {
                out.push(problem(
                    iface,
                    dir.to_path_buf(),
                    ProblemKind::Unlistable(e.to_string()),
                ));
                break;
            }
        }
    }
    v.sort();
    v
}

/// A set-aside damaged day (`DD.damaged-<secs>`, see retention): godb's own.
fn is_set_aside_day(name: &str) -> bool {
    name.len() > 2
        && name.as_bytes()[..2].iter().all(u8::is_ascii_digit)
        && name[2..].starts_with(".damaged-")
}

/// Checks the database root (entries that are not interface folders) and, for each
/// interface of `ifaces`, its year, month and day folders; day folders are checked
/// inside (foreign files, missing column files, unreadable metadata) only for days in
/// `days` (inclusive; `None` checks every day).
pub fn audit(
    db: &Database,
    ifaces: &[String],
    days: Option<(NaiveDate, NaiveDate)>,
) -> Vec<Problem> {
    let mut out = Vec::new();
    for (name, path, is_dir) in entries(db.path(), None, &mut out) {
        if !is_dir || crate::validate_iface(&name).is_err() {
            out.push(problem(None, path, ProblemKind::Foreign));
        }
    }
    for iface in ifaces {
        let Ok(dir) = db.iface_dir(iface) else {
            continue;
        };
        let i = Some(iface.as_str());
        for (yname, ypath, ydir) in entries(&dir, i, &mut out) {
            let year = parse_fixed(&yname, 4).filter(|_| ydir);
            let Some(year) = year else {
                if yname != LOCK_FILE {
                    out.push(problem(i, ypath, ProblemKind::Foreign));
                }
                continue;
            };
            for (mname, mpath, mdir) in entries(&ypath, i, &mut out) {
                let Some(month) = parse_fixed(&mname, 2).filter(|m| mdir && (1..=12).contains(m))
                else {
                    out.push(problem(i, mpath, ProblemKind::Foreign));
                    continue;
                };
                for (dname, dpath, ddir) in entries(&mpath, i, &mut out) {
                    let date = parse_fixed(&dname, 2)
                        .filter(|_| ddir)
                        .and_then(|d| NaiveDate::from_ymd_opt(year as i32, month, d));
                    let Some(date) = date else {
                        if !(ddir && is_set_aside_day(&dname)) {
                            out.push(problem(i, dpath, ProblemKind::Foreign));
                        }
                        continue;
                    };
                    if days.is_some_and(|(lo, hi)| date < lo || date > hi) {
                        continue;
                    }
                    audit_day(&dpath, iface, &mut out);
                }
            }
        }
    }
    out
}

/// The checks inside one day folder.
fn audit_day(dir: &Path, iface: &str, out: &mut Vec<Problem>) {
    let i = Some(iface);
    let listed = entries(dir, i, out);
    for (name, path, is_dir) in &listed {
        let known = name == META_FILE
            || name == META_TMP_FILE
            || Column::ALL.iter().any(|c| c.file_name() == name);
        // A folder named like a column file is reported as a missing column below,
        // one named like the metadata as an unreadable day.
        if !known {
            out.push(problem(i, path.clone(), ProblemKind::Foreign));
        }
        let _ = is_dir;
    }
    match read_meta(dir) {
        Ok(Some(meta)) if !meta.blocks.is_empty() => {
            for c in Column::ALL {
                let file = listed
                    .iter()
                    .find(|(n, _, _)| n == c.file_name())
                    .is_some_and(|(_, _, is_dir)| !is_dir);
                if !file {
                    out.push(problem(
                        i,
                        dir.join(c.file_name()),
                        ProblemKind::MissingColumn(c),
                    ));
                }
            }
        }
        Ok(_) => {}
        Err(e) => out.push(problem(
            i,
            dir.join(META_FILE),
            ProblemKind::UnreadableDay(e.to_string()),
        )),
    }
}

/// The days of `iface` with their totals, like [`Database::days`], but a day (or
/// folder) that cannot be read is a [`Problem`] instead of an error or a silent gap:
/// `goquery list` goes on with the rest.
pub fn day_summaries(db: &Database, iface: &str) -> (Vec<DaySummary>, Vec<Problem>) {
    let mut problems = Vec::new();
    let dirs = match db.day_dirs(iface) {
        Ok(d) => d,
        Err(e) => {
            let path = db.path().join(iface);
            problems.push(problem(
                Some(iface),
                path,
                ProblemKind::Unlistable(e.to_string()),
            ));
            return (Vec::new(), problems);
        }
    };
    let mut out = Vec::new();
    for (date, dir) in dirs {
        let meta = match read_meta(&dir) {
            Ok(Some(m)) if !m.blocks.is_empty() => m,
            Ok(_) => continue,
            Err(e) => {
                problems.push(problem(
                    Some(iface),
                    dir.join(META_FILE),
                    ProblemKind::UnreadableDay(e.to_string()),
                ));
                continue;
            }
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
    (out, problems)
}
