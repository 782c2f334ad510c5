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
#![deny(missing_docs)]

pub mod l7;
pub mod model;
pub mod query;

pub use model::{Block, CaptureStats, Counters, FlowKey, FlowRow, INTERVAL_SECS};
