//! The typed errors of godb: [`Error`] for operations on a database (open, write, list,
//! plan, delete) and [`BlockError`] for a single block that cannot be read, so that a
//! reader can skip it, count it and go on.

use std::path::PathBuf;

use chrono::NaiveDate;

/// The result type of godb's database operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a database operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What godb was doing ("open", "write", "rename", ...).
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// `Database::open` was given a path that does not exist.
    #[error("database {0} does not exist")]
    NotFound(PathBuf),
    /// The database path exists but is not a folder.
    #[error("database path {0} is not a folder")]
    NotADirectory(PathBuf),
    /// An interface name that godb refuses (it could escape the database folder).
    #[error("invalid interface name {name:?}: {reason}")]
    InvalidInterface {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Another writer holds the interface's lock.
    #[error("interface {iface} is already being written by another writer (lock {lock})")]
    WriterLocked {
        /// The interface.
        iface: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A block older than the last block already written for the interface.
    #[error(
        "block timestamp {got} of interface {iface} is before the last written block ({last})"
    )]
    TimestampOrder {
        /// The interface.
        iface: String,
        /// Timestamp of the last committed block.
        last: i64,
        /// Timestamp of the rejected block.
        got: i64,
    },
    /// A timestamp outside the range of calendar dates godb can store.
    #[error("timestamp {0} is out of range")]
    TimestampOutOfRange(i64),
    /// A block too large for the format (more than `u32::MAX` rows or column bytes).
    #[error("block too large: {0}")]
    BlockTooLarge(String),
    /// A metadata file that cannot be trusted.
    #[error("damaged metadata {path}: {reason}")]
    DamagedMeta {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// One block that could not be read; the other blocks of the day are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{iface} {date}: block {block} (timestamp {timestamp}) in {}: {kind}", file.display())]
pub struct BlockError {
    /// Interface of the block.
    pub iface: String,
    /// Day folder of the block.
    pub date: NaiveDate,
    /// Index of the block in its [`crate::DayPlan`].
    pub block: usize,
    /// Timestamp of the block (0 if the index was out of range).
    pub timestamp: i64,
    /// The file that is at fault.
    pub file: PathBuf,
    /// What is wrong.
    pub kind: BlockErrorKind,
}

/// What is wrong with an unreadable block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockErrorKind {
    /// The block index is not in the plan.
    #[error("no such block in the plan ({0} blocks)")]
    NoSuchBlock(usize),
    /// The column file is missing or could not be opened or mapped.
    #[error("column file unavailable: {0}")]
    FileUnavailable(String),
    /// The column file ends before the block does.
    #[error("file truncated: block needs bytes {start}..{end}, file has {len}")]
    Truncated {
        /// First byte of the block.
        start: u64,
        /// One past its last byte.
        end: u64,
        /// Length of the file.
        len: u64,
    },
    /// The stored bytes do not match their checksum.
    #[error("checksum mismatch: expected {expected:#010x}, got {actual:#010x}")]
    Checksum {
        /// The CRC-32C recorded in the metadata.
        expected: u32,
        /// The CRC-32C of the bytes on disk.
        actual: u32,
    },
    /// The encoding tag is unknown, not allowed for the column, or disagrees with the
    /// metadata.
    #[error("bad encoding tag {0:#04x}")]
    BadEncoding(u8),
    /// Lengths that do not agree with each other or with the row counts.
    #[error("inconsistent lengths: {0}")]
    BadLength(String),
    /// The lz4 payload could not be decompressed.
    #[error("lz4 decompression failed: {0}")]
    Decompress(String),
}
