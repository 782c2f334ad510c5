//! godb: the embedded column store behind goprobe and goquery.
//!
//! A database is a folder. Each capture interface has a sub-folder, each UTC day a
//! folder below it (`<db>/<iface>/<YYYY>/<MM>/<DD>/`), and each day one file per
//! column of the flow row (sip, dip, proto, dport, l7 and the four counters) plus a
//! metadata file. Every 5-minute interval appends one lz4-compressed block to every
//! column; the metadata file, replaced atomically, says which blocks are committed.
//! The byte layout is written down in `docs/FORMAT.md`.
//!
//! The crate is a library in its own right: other programs open a database, list its
//! interfaces and days, append blocks, scan blocks of a time range column by column,
//! run goquery's queries ([`query`]) and delete old days.
//!
//! # Guarantees
//!
//! - [`BlockWriter::append`] returns only when the block is durable (column data and
//!   metadata fsync'd, metadata renamed into place, folder fsync'd) and visible to
//!   readers. A crash or `kill -9` at any moment loses at most the block in flight and
//!   never exposes a partial block.
//! - One writer per interface, enforced with `flock` across processes
//!   ([`Error::WriterLocked`]); any number of readers, also while a writer appends.
//! - Listing ([`Database::interfaces`], [`Database::days`]) and planning
//!   ([`Database::plan`]) read metadata only; a [`DayReader`] maps only the chosen
//!   column files.
//! - Every column block is checksummed (CRC-32C); a damaged block is a [`BlockError`]
//!   for that block alone, naming file and block, never a panic.
//! - Retention ([`Database::delete_days_before`]) is safe while writers append.
//!
//! A [`DayReader`] keeps its column files mapped until it is dropped: a scan over very
//! many days should open and drop readers as it goes rather than all at once (the
//! number of memory mappings of a process is limited, 65,530 by default on Linux).
//!
//! # Example
//!
//! ```
//! use godb::{Block, ColumnSet, Counters, Database, FlowKey, FlowRow, ScanRequest};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let db = Database::create(dir.path().join("db"))?;
//!
//! // Write one block (the rows of one 5-minute interval) for interface eth0.
//! let row = FlowRow {
//!     key: FlowKey {
//!         sip: "10.0.0.1".parse()?,
//!         dip: "10.0.0.2".parse()?,
//!         proto: 6,
//!         dport: 443,
//!         l7: 0,
//!     },
//!     counters: Counters { bytes_rcvd: 1500, bytes_sent: 300, pkts_rcvd: 2, pkts_sent: 3 },
//! };
//! let block = Block { timestamp: 1_763_769_900, stats: Default::default(), rows: vec![row] };
//! let mut writer = db.writer("eth0")?;
//! writer.append(&block)?;
//!
//! // List what is stored, from the metadata alone.
//! assert_eq!(db.interfaces()?, vec!["eth0".to_string()]);
//! assert_eq!(db.days("eth0")?[0].rows, 1);
//!
//! // Read the blocks of a time range back, all columns.
//! let req = ScanRequest { ifaces: vec![], first: 0, last: i64::MAX };
//! for day in db.plan(&req)? {
//!     let reader = day.open(&db, ColumnSet::ALL)?;
//!     for i in 0..reader.len() {
//!         match reader.read(i) {
//!             Ok(data) => assert_eq!(data.row(0), row),
//!             Err(bad) => eprintln!("skipping damaged block: {bad}"),
//!         }
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod column;
#[cfg(test)]
mod crashsim;
mod db;
mod error;
mod fsio;
mod meta;
mod reader;
mod retention;
mod writer;

pub mod l7;
pub mod model;
pub mod query;

pub use column::{Column, ColumnSet, IpColumn, NUM_COLUMNS};
pub use db::{day_of, validate_iface, Database, DaySummary, MAX_IFACE_LEN};
pub use error::{BlockError, BlockErrorKind, Error, Result};
pub use meta::{BlockMeta, ColumnMeta, FORMAT_VERSION, META_FILE};
pub use model::{Block, CaptureStats, Counters, FlowKey, FlowRow, INTERVAL_SECS};
pub use reader::{BlockData, DayPlan, DayReader, DecodeScratch, RawBlock, ScanRequest};
pub use writer::{BlockWriter, LOCK_FILE};
