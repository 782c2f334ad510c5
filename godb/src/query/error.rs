//! The errors of the query engine: a malformed condition (with the byte position of
//! the offending token), an invalid statement, and a failed run.

use std::fmt;

/// Why a condition could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConditionErrorKind {
    /// The condition is empty or only whitespace.
    Empty,
    /// An attribute name that is not known.
    UnknownAttribute(String),
    /// A comparison operator was expected here.
    ExpectedOperator(String),
    /// The operator does not apply to this attribute (e.g. `<` on an address).
    OperatorNotAllowed {
        /// The operator as written.
        op: String,
        /// The attribute.
        attribute: String,
    },
    /// A value was expected but the input ended or an operator followed.
    ExpectedValue,
    /// The value cannot be read for this attribute.
    InvalidValue {
        /// The attribute.
        attribute: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A hostname could not be resolved to an address.
    Unresolvable(String),
    /// An opening bracket is never closed.
    Unclosed,
    /// A closing bracket does not match its opening one, or has none.
    UnexpectedClose(char),
    /// A token where a condition (`attribute op value`) was expected.
    ExpectedCondition(String),
    /// Input goes on after a complete condition.
    Trailing(String),
    /// A character that is not part of the grammar.
    UnexpectedChar(char),
}

/// A condition that could not be parsed, with the byte offset (0-based) of the token
/// that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Byte offset of the offending token in the condition text.
    pub position: usize,
    /// What is wrong.
    pub kind: ConditionErrorKind,
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConditionErrorKind as K;
        match &self.kind {
            K::Empty => write!(f, "empty condition")?,
            K::UnknownAttribute(a) => write!(f, "unknown attribute '{a}'")?,
            K::ExpectedOperator(t) => write!(
                f,
                "expected a comparison operator (= != < > <= >=) but found '{t}'"
            )?,
            K::OperatorNotAllowed { op, attribute } => {
                write!(f, "operator '{op}' cannot be used with '{attribute}'")?
            }
            K::ExpectedValue => write!(f, "expected a value")?,
            K::InvalidValue {
                attribute,
                value,
                expected,
            } => write!(
                f,
                "invalid value '{value}' for '{attribute}': expected {expected}"
            )?,
            K::Unresolvable(h) => write!(f, "cannot resolve hostname '{h}'")?,
            K::Unclosed => write!(f, "opening bracket is never closed")?,
            K::UnexpectedClose(c) => write!(f, "unexpected '{c}'")?,
            K::ExpectedCondition(t) => write!(f, "expected a condition but found '{t}'")?,
            K::Trailing(t) => write!(f, "unexpected '{t}' after the end of the condition")?,
            K::UnexpectedChar(c) => write!(f, "unexpected character '{c}'")?,
        }
        write!(f, " at position {}", self.position)
    }
}

impl std::error::Error for ConditionError {}

/// A statement that cannot run as given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The query type is empty.
    #[error("empty query type")]
    EmptyQuery,
    /// An attribute (or query type) name that is not known.
    #[error("unknown attribute '{0}' in query type")]
    UnknownAttribute(String),
    /// The condition is malformed.
    #[error("condition: {0}")]
    Condition(#[from] ConditionError),
    /// The time range is empty or reversed.
    #[error("invalid time range: first ({first}) is after last ({last})")]
    TimeRange {
        /// Lower bound, UTC seconds.
        first: i64,
        /// Upper bound, UTC seconds.
        last: i64,
    },
    /// An interface name that cannot exist in a database.
    #[error("invalid interface name '{0}'")]
    InvalidInterface(String),
    /// The memory limit is zero.
    #[error("the memory limit must be greater than 0")]
    MemoryLimit,
}

/// Why a query could not run to the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// An interface the statement names is not in the database.
    #[error("unknown interface '{iface}' (the database has: {known})")]
    UnknownInterface {
        /// The interface asked for.
        iface: String,
        /// The interfaces present, comma-separated.
        known: String,
    },
    /// The database holds no interface at all.
    #[error("the database is empty: no interface has any data")]
    EmptyDatabase,
    /// The database could not be read (metadata of a day, a column file).
    #[error("database: {0}")]
    Database(String),
    /// The result would need more memory than allowed.
    #[error(
        "the result outgrew the memory limit of {limit_mib} MiB after {entries} distinct rows; \
         narrow the time range, add a condition or query fewer attributes, or raise the limit"
    )]
    MemoryLimit {
        /// The limit, MiB.
        limit_mib: usize,
        /// Distinct result rows held when the limit was hit.
        entries: usize,
    },
    /// The statement is invalid (e.g. fields edited after it was built).
    #[error("invalid statement: {0}")]
    Statement(#[from] StatementError),
    /// A worker thread panicked (a bug).
    #[error("internal error: a query worker failed")]
    Worker,
}
