//! A validated query statement: what to group by, which rows to keep, over which
//! interfaces and time range, how to order and cut the result, which counters count.

use super::attr::AttributeSet;
use super::condition::Condition;
use super::error::StatementError;

/// Default limit on the memory the aggregated result may take: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 4 << 30;

/// What the result is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Bytes (of the chosen direction).
    #[default]
    Bytes,
    /// Packets (of the chosen direction).
    Packets,
    /// Block time, then bytes.
    Time,
}

impl SortBy {
    /// Parses `bytes`, `packets` or `time`.
    pub fn parse(text: &str) -> Option<SortBy> {
        Some(match text.to_ascii_lowercase().as_str() {
            "bytes" | "traffic" | "data" => SortBy::Bytes,
            "packets" | "pkts" => SortBy::Packets,
            "time" => SortBy::Time,
            _ => return None,
        })
    }

    /// A phrase for the footer, goQuery-style.
    pub fn describe(self, direction: Direction) -> String {
        let what = match self {
            SortBy::Bytes => "accumulated data volume",
            SortBy::Packets => "accumulated packets",
            SortBy::Time => return "time".to_string(),
        };
        let dir = match direction {
            Direction::Both | Direction::Sum => "(sent and received)",
            Direction::In => "(received only)",
            Direction::Out => "(sent only)",
        };
        format!("{what} {dir}")
    }
}

/// Which counters a query reports and sorts by (goQuery's `--in`, `--out`, `--sum`;
/// without any of them both directions are shown side by side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Received and sent shown separately, ordered by their sum.
    #[default]
    Both,
    /// Received (dip → sip) only.
    In,
    /// Sent (sip → dip) only.
    Out,
    /// Received plus sent, as one number.
    Sum,
}

impl Direction {
    /// The name used in JSON and the footer.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Both => "both",
            Direction::In => "in",
            Direction::Out => "out",
            Direction::Sum => "sum",
        }
    }

    /// The (bytes, packets) of `c` that count for this direction.
    #[inline]
    pub fn pick(self, c: &crate::Counters) -> (u64, u64) {
        match self {
            Direction::Both | Direction::Sum => (c.bytes(), c.packets()),
            Direction::In => (c.bytes_rcvd, c.pkts_rcvd),
            Direction::Out => (c.bytes_sent, c.pkts_sent),
        }
    }
}

/// A query ready to run with [`super::run`].
#[derive(Debug, Clone)]
pub struct Statement {
    /// The attributes grouped by (time and iface included).
    pub attributes: AttributeSet,
    /// Rows kept; `None` keeps all.
    pub condition: Option<Condition>,
    /// The condition as the user wrote it (for the footer and JSON).
    pub condition_text: String,
    /// Start of the time window, UTC seconds (see [`Statement::block_range`]).
    pub first: i64,
    /// End of the time window, UTC seconds (see [`Statement::block_range`]).
    pub last: i64,
    /// Interfaces to read; empty means all of the database.
    pub ifaces: Vec<String>,
    /// Order of the rows.
    pub sort: SortBy,
    /// Smallest first instead of largest first.
    pub ascending: bool,
    /// Rows returned; 0 returns all.
    pub limit: usize,
    /// Which counters count.
    pub direction: Direction,
    /// Maximum memory the aggregated result may take, bytes.
    pub memory_limit: usize,
    /// Worker threads; 0 uses the number of available cores, but at most one per
    /// 200,000 rows to scan ([`super::ROWS_PER_WORKER`]) and at most
    /// [`super::MAX_THREADS`].
    pub threads: usize,
}

impl Statement {
    /// A statement for `query` (a query type or attribute list) over `[first, last]`
    /// with defaults: all interfaces, no condition, by bytes descending, 1000 rows,
    /// both directions, [`DEFAULT_MEMORY_LIMIT`]. Time queries default to time order.
    pub fn new(query: &str, first: i64, last: i64) -> Result<Statement, StatementError> {
        let attributes = AttributeSet::parse(query)?;
        let s = Statement {
            attributes,
            condition: None,
            condition_text: String::new(),
            first,
            last,
            ifaces: Vec::new(),
            sort: if attributes.time {
                SortBy::Time
            } else {
                SortBy::Bytes
            },
            ascending: false,
            limit: 1000,
            direction: Direction::Both,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            threads: 0,
        };
        s.validate()?;
        Ok(s)
    }

    /// Parses and sets the condition (an empty text removes it).
    pub fn with_condition(mut self, text: &str) -> Result<Statement, StatementError> {
        if text.trim().is_empty() {
            self.condition = None;
            self.condition_text.clear();
        } else {
            self.condition = Some(Condition::parse(text)?);
            self.condition_text = text.trim().to_string();
        }
        Ok(self)
    }

    /// Sets the interfaces; more than one adds the iface attribute.
    pub fn with_ifaces(mut self, ifaces: Vec<String>) -> Result<Statement, StatementError> {
        for i in &ifaces {
            // The same rule as the database's folders (no '/', no NUL, ...).
            if crate::validate_iface(i).is_err() {
                return Err(StatementError::InvalidInterface(i.clone()));
            }
        }
        if ifaces.len() > 1 {
            self.attributes.iface = true;
        }
        self.ifaces = ifaces;
        Ok(self)
    }

    /// The block timestamps the window `[first, last]` selects, as an inclusive range.
    ///
    /// A block's timestamp is the end of its interval: it holds the traffic of
    /// `[ts - INTERVAL_SECS, ts)`. A block is read when its interval overlaps the
    /// window, as goQuery does it: `first < ts < last + INTERVAL_SECS`. So
    /// `-f 10:00 -l 11:00` reads the twelve intervals from 10:00 to 11:00 (blocks
    /// stamped 10:05 to 11:00), and a window ending at "now" includes the interval in
    /// progress, whose block is stamped up to five minutes after now.
    pub fn block_range(&self) -> (i64, i64) {
        (
            self.first.saturating_add(1),
            self.last.saturating_add(crate::INTERVAL_SECS - 1),
        )
    }

    /// Checks the parts that can be wrong after direct field edits.
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.first > self.last {
            return Err(StatementError::TimeRange {
                first: self.first,
                last: self.last,
            });
        }
        if self.memory_limit == 0 {
            return Err(StatementError::MemoryLimit);
        }
        if self.attributes.list().is_empty() {
            return Err(StatementError::EmptyQuery);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_time_queries() {
        let s = Statement::new("talk_src", 0, 10).unwrap();
        assert_eq!(
            (s.sort, s.limit, s.direction),
            (SortBy::Bytes, 1000, Direction::Both)
        );
        let s = Statement::new("raw", 0, 10).unwrap();
        assert_eq!(s.sort, SortBy::Time);
        let s = Statement::new("sip,time", 0, 10).unwrap();
        assert_eq!(s.sort, SortBy::Time);
    }

    #[test]
    fn invalid_parts_are_rejected() {
        assert!(matches!(
            Statement::new("talk_src", 10, 0),
            Err(StatementError::TimeRange { .. })
        ));
        assert!(matches!(
            Statement::new("talk_srv", 0, 10),
            Err(StatementError::UnknownAttribute(_))
        ));
        let s = Statement::new("sip", 0, 1).unwrap();
        assert!(s.clone().with_ifaces(vec!["../x".into()]).is_err());
        assert!(s.clone().with_ifaces(vec![String::new()]).is_err());
        assert!(s.clone().with_ifaces(vec!["a\0b".into()]).is_err());
        let e = s.clone().with_condition("dprt = 1").unwrap_err();
        assert_eq!(
            e.to_string(),
            "condition: unknown attribute 'dprt' at position 0"
        );
        let mut s = s;
        s.memory_limit = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn several_interfaces_add_the_iface_attribute() {
        let s = Statement::new("sip", 0, 1).unwrap();
        let one = s.clone().with_ifaces(vec!["eth0".into()]).unwrap();
        assert!(!one.attributes.iface);
        let two = s.with_ifaces(vec!["eth0".into(), "eth1".into()]).unwrap();
        assert!(two.attributes.iface);
    }

    #[test]
    fn direction_picks_counters() {
        let c = crate::Counters {
            bytes_rcvd: 1,
            bytes_sent: 2,
            pkts_rcvd: 3,
            pkts_sent: 4,
        };
        assert_eq!(Direction::In.pick(&c), (1, 3));
        assert_eq!(Direction::Out.pick(&c), (2, 4));
        assert_eq!(Direction::Sum.pick(&c), (3, 7));
        assert_eq!(Direction::Both.pick(&c), (3, 7));
        assert_eq!(SortBy::parse("PACKETS"), Some(SortBy::Packets));
        assert_eq!(SortBy::parse("flows"), None);
    }
}
