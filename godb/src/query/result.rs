//! What a query returns: the ordered, cut rows with their labels, attributes and
//! counters, the totals over every matching row, hit counts, the data span, and the
//! blocks that had to be skipped because they were corrupt, and the problems found in
//! the database folder.

use std::net::IpAddr;
use std::time::Duration;

use crate::Counters;

/// One result row. Fields of attributes the query did not group by are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultRow {
    /// Block time (end of the interval, UTC seconds), for time queries.
    pub time: Option<i64>,
    /// Interface, for iface queries.
    pub iface: Option<String>,
    /// Source address.
    pub sip: Option<IpAddr>,
    /// Destination address.
    pub dip: Option<IpAddr>,
    /// Destination port.
    pub dport: Option<u16>,
    /// IP protocol number.
    pub proto: Option<u8>,
    /// Layer-7 protocol id.
    pub l7: Option<u16>,
    /// The summed counters of every stored row in the group.
    pub counters: Counters,
}

/// A block that could not be read and was left out of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedBlock {
    /// Interface of the block.
    pub iface: String,
    /// Block time (0 if unknown).
    pub timestamp: i64,
    /// Why it was skipped.
    pub reason: String,
}

/// The outcome of [`super::run`].
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// The rows, ordered and cut to the statement's limit.
    pub rows: Vec<ResultRow>,
    /// Sum of the counters over all matching rows (not only the displayed ones).
    pub totals: Counters,
    /// Number of distinct result rows before the limit.
    pub hits_total: usize,
    /// Interfaces read.
    pub interfaces: Vec<String>,
    /// Time of the first block read (UTC s), or the statement's `first` if none.
    pub time_first: i64,
    /// Time of the last block read (UTC s), or the statement's `last` if none.
    pub time_last: i64,
    /// Number of blocks read successfully.
    pub blocks_read: usize,
    /// Number of stored rows scanned.
    pub rows_scanned: u64,
    /// Blocks left out because they were corrupt.
    pub skipped: Vec<SkippedBlock>,
    /// What is wrong in the database folder for this query's interfaces and days:
    /// foreign entries, unreadable days, missing column files (see [`super::audit`]).
    pub problems: Vec<super::Problem>,
    /// Wall-clock time of the run.
    pub duration: Duration,
}

impl QueryResult {
    /// Number of rows returned.
    pub fn hits_displayed(&self) -> usize {
        self.rows.len()
    }

    /// Whether something was left out: skipped blocks or problems that lose data.
    pub fn is_partial(&self) -> bool {
        !self.skipped.is_empty() || self.problems.iter().any(super::Problem::loses_data)
    }
}
