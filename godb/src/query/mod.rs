//! The query engine: goquery's statements (query type, conditions, time range, sort
//! order) run over the blocks of a database, aggregated by the queried attributes.
//!
//! A [`Statement`] is built and validated first ([`Statement::new`],
//! [`Statement::with_condition`], [`Statement::with_ifaces`]); [`run`] then reads only
//! the columns the statement needs, decodes and aggregates blocks on worker threads and
//! returns a [`QueryResult`]: ordered rows, totals, hit counts, the corrupt blocks it
//! had to skip and the [`Problem`]s of the database folder it found on the way
//! (foreign files, unreadable days, missing column files), each reported, none fatal.
//!
//! ```no_run
//! use godb::query::{run, Statement};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = godb::Database::open("/usr/local/goprobe/db")?;
//! let stmt = Statement::new("talk_conv", 0, i64::MAX)?.with_condition("dport = 443")?;
//! let result = run(&db, &stmt)?;
//! for row in &result.rows {
//!     println!("{:?} -> {:?}: {} bytes", row.sip, row.dip, row.counters.bytes());
//! }
//! # Ok(())
//! # }
//! ```

mod addrtable;
mod aggregate;
mod attr;
mod audit;
mod condition;
mod engine;
mod error;
mod result;
mod statement;

pub use attr::{proto_name, proto_number, Attribute, AttributeSet};
pub use audit::{audit, day_summaries, Problem, ProblemKind};
pub use condition::{
    resolve_host, Cidr, Cmp, Condition, DirFilter, Leaf, NeededColumns, Node, Side, RESOLVE_TIMEOUT,
};
pub use engine::{needed_columns, resolve_ifaces, run, MAX_THREADS, ROWS_PER_WORKER};
pub use error::{ConditionError, ConditionErrorKind, QueryError, StatementError};
pub use result::{QueryResult, ResultRow, SkippedBlock};
pub use statement::{Direction, SortBy, Statement, DEFAULT_MEMORY_LIMIT};
