//! The file system operations the writer's commit protocol is made of (create folder,
//! create file, truncate, write at an offset, fsync file, rename, fsync folder), in one
//! place. In test builds every operation is also recorded in a per-thread journal, from
//! which `crashsim` rebuilds what a disk could hold after a power loss at any point.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;

use crate::db::DIR_MODE;

/// Permission bits of every file godb creates.
pub(crate) const FILE_MODE: u32 = 0o640;

/// In test builds, fails if the failure injection says so.
macro_rules! inject {
    () => {
        #[cfg(test)]
        journal::maybe_fail()?;
    };
}

macro_rules! record {
    ($op:expr) => {
        #[cfg(test)]
        journal::record(|| $op);
    };
}

/// Records that an append was acknowledged (test builds; no-op otherwise).
pub(crate) fn acked() {
    record!(journal::Op::Acked);
}

/// Creates `path` and missing parents with mode 0750.
pub(crate) fn mkdir_all(path: &Path) -> io::Result<()> {
    inject!();
    #[cfg(test)]
    let missing: Vec<std::path::PathBuf> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .map(Path::to_path_buf)
        .collect();
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)?;
    #[cfg(test)]
    for p in missing.into_iter().rev() {
        journal::record(|| journal::Op::Mkdir(p));
    }
    Ok(())
}

/// Makes the entries of folder `path` durable.
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    inject!();
    File::open(path)?.sync_all()?;
    record!(journal::Op::SyncDir(path.to_path_buf()));
    Ok(())
}

/// Opens `path` for writing, creating it (empty) if missing; `truncate` empties it.
/// A symbolic link at `path` is an error (`O_NOFOLLOW`): godb writes only its own files.
pub(crate) fn open_write(path: &Path, truncate: bool) -> io::Result<File> {
    inject!();
    #[cfg(test)]
    let existed = path.exists();
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(truncate)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    #[cfg(test)]
    {
        if !existed {
            journal::record(|| journal::Op::Create(path.to_path_buf()));
        }
        if truncate {
            journal::record(|| journal::Op::SetLen(path.to_path_buf(), 0));
        }
    }
    Ok(f)
}

/// Sets the length of `file` (at `path`).
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> io::Result<()> {
    inject!();
    file.set_len(len)?;
    record!(journal::Op::SetLen(path.to_path_buf(), len));
    Ok(())
}

/// Writes all of `bytes` at `offset` of `file` (at `path`).
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn write_at(file: &File, path: &Path, bytes: &[u8], offset: u64) -> io::Result<()> {
    inject!();
    file.write_all_at(bytes, offset)?;
    record!(journal::Op::Write(
        path.to_path_buf(),
        offset,
        bytes.to_vec()
    ));
    Ok(())
}

/// Makes the data (and length) of `file` (at `path`) durable.
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn sync_file(file: &File, path: &Path) -> io::Result<()> {
    inject!();
    file.sync_data()?;
    record!(journal::Op::SyncFile(path.to_path_buf()));
    Ok(())
}

/// Renames `from` to `to` (atomically replacing `to`).
#[cfg_attr(not(test), allow(unused_variables))]
pub(crate) fn rename(from: &Path, to: &Path) -> io::Result<()> {
    inject!();
    fs::rename(from, to)?;
    record!(journal::Op::Rename(from.to_path_buf(), to.to_path_buf()));
    Ok(())
}

#[cfg(test)]
pub(crate) mod journal {
    //! The per-thread record of file system operations (test builds only).
    use std::cell::RefCell;
    use std::path::PathBuf;

    /// One recorded operation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Op {
        /// A folder was created.
        Mkdir(PathBuf),
        /// A file was created (empty).
        Create(PathBuf),
        /// A file's length was set.
        SetLen(PathBuf, u64),
        /// Bytes were written at an offset.
        Write(PathBuf, u64, Vec<u8>),
        /// A file's data was made durable.
        SyncFile(PathBuf),
        /// A file or folder was renamed.
        Rename(PathBuf, PathBuf),
        /// A folder's entries were made durable.
        SyncDir(PathBuf),
        /// `BlockWriter::append` returned `Ok` (the block was acknowledged).
        Acked,
    }

    thread_local! {
        static JOURNAL: RefCell<Option<Vec<Op>>> = const { RefCell::new(None) };
        static FAIL_AFTER: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
    }

    /// Makes the operation after the next `n` fail with an injected error (`None`:
    /// no failure).
    pub fn fail_after(n: Option<usize>) {
        FAIL_AFTER.with(|f| f.set(n));
    }

    /// Counts one operation; `Err` if it is the one chosen to fail.
    pub(crate) fn maybe_fail() -> std::io::Result<()> {
        FAIL_AFTER.with(|f| match f.get() {
            Some(0) => {
                f.set(None);
                Err(std::io::Error::other("injected failure"))
            }
            Some(n) => {
                f.set(Some(n - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }

    /// Starts recording on this thread.
    pub fn start() {
        JOURNAL.with(|j| *j.borrow_mut() = Some(Vec::new()));
    }

    /// Stops recording and returns the operations.
    pub fn take() -> Vec<Op> {
        JOURNAL.with(|j| j.borrow_mut().take()).unwrap_or_default()
    }

    pub(crate) fn record(op: impl FnOnce() -> Op) {
        JOURNAL.with(|j| {
            if let Some(v) = j.borrow_mut().as_mut() {
                v.push(op());
            }
        });
    }
}
