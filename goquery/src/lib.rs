//! goquery's library: command-line arguments turned into a godb query statement, and
//! the renderers of its results (table, JSON, CSV).
//!
//! [`run`] does the whole job of the binary: it validates the arguments into a
//! [`godb::query::Statement`] before touching any data, opens the database, runs the
//! query, resolves names if asked, and renders. Failures carry an exit code
//! ([`Failure`]); the codes are listed in `goquery --help` and in [`exit`].
//!
//! ```no_run
//! use clap::Parser;
//!
//! let args = goquery::Args::parse_from(["goquery", "-d", "/var/db", "talk_conv", "-n", "10"]);
//! let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
//! match goquery::run(&args, &mut out, &mut err) {
//!     Ok(outcome) => eprintln!("{outcome:?}"),
//!     Err(e) => eprintln!("goquery: {e:#} (exit {})", goquery::exit_code(&e)),
//! }
//! ```

pub mod args;
pub mod hugealloc;
pub mod list;
pub mod render;
pub mod resolve;
pub mod timefmt;

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use godb::query::{
    run as run_query, ConditionError, Direction, QueryError, SortBy, Statement, StatementError,
};
use godb::Database;

pub use args::Args;

/// Exit codes of goquery.
pub mod exit {
    /// Success (also when the reader of the output went away).
    pub const OK: u8 = 0;
    /// Success, but data was left out: corrupted blocks skipped, unreadable days or
    /// missing column files (all listed on stderr).
    pub const PARTIAL: u8 = 1;
    /// Bad command line: flags, query type, attribute, condition, time, format.
    pub const USAGE: u8 = 2;
    /// Database missing, empty or unreadable, an unknown interface, or a framed block
    /// whose frames do not decompress although their checksum matches.
    pub const DATABASE: u8 = 3;
    /// No data in the time range.
    pub const NO_DATA: u8 = 4;
    /// The result outgrew the memory limit.
    pub const MEMORY: u8 = 5;
    /// Writing the output failed, or an internal error.
    pub const OTHER: u8 = 6;
}

/// The default database folder.
pub const DEFAULT_DB: &str = "/usr/local/goprobe/db";
/// The default goprobe config file, read for its `db_path` if present.
pub const DEFAULT_CONFIG: &str = "/usr/local/goprobe/etc/goprobe.toml";

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// The message (may span several lines).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        code,
        message: message.into(),
    })
}

/// A condition error with the input and a caret line under the offending token.
pub fn condition_message(text: &str, e: &ConditionError) -> String {
    let pos = e.position.min(text.len());
    let width = text.get(..pos).map_or(pos, |s| s.chars().count());
    format!("condition: {e}\n  {text}\n  {}^", " ".repeat(width))
}

/// What a successful run produced, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything read.
    Complete,
    /// Some data was left out: corrupted blocks skipped, or days or column files
    /// that could not be read (the number of such blocks and problems).
    SkippedBlocks(usize),
}

/// The database folder: `-d`, then `$GOPROBE_DB`, then the config's `db_path`, then
/// [`DEFAULT_DB`].
pub fn db_path(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(d) = &args.db {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("GOPROBE_DB").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let (config, explicit) = match (&args.config, std::env::var_os("GOPROBE_CONFIG")) {
        (Some(c), _) => (PathBuf::from(c), true),
        (None, Some(c)) if !c.is_empty() => (PathBuf::from(c), true),
        _ => (PathBuf::from(DEFAULT_CONFIG), false),
    };
    match std::fs::read_to_string(&config) {
        Ok(text) => {
            #[derive(serde::Deserialize)]
            struct Partial {
                db_path: Option<PathBuf>,
            }
            let p: Partial = toml::from_str(&text).map_err(|e| {
                fail(
                    exit::USAGE,
                    format!("config file {}: {e}", config.display()),
                )
            })?;
            Ok(p.db_path.unwrap_or_else(|| PathBuf::from(DEFAULT_DB)))
        }
        Err(e) if explicit => Err(fail(
            exit::USAGE,
            format!("cannot read config file {}: {e}", config.display()),
        )),
        Err(_) => Ok(PathBuf::from(DEFAULT_DB)),
    }
}

fn open_db(path: &Path) -> anyhow::Result<Database> {
    if !path.is_dir() {
        return Err(fail(
            exit::DATABASE,
            format!(
                "database {} does not exist (give -d DB or set GOPROBE_DB)",
                path.display()
            ),
        ));
    }
    Database::open(path).map_err(|e| {
        fail(
            exit::DATABASE,
            format!("cannot open database {}: {e}", path.display()),
        )
    })
}

/// Builds the validated statement from the arguments, `now` being the current time.
pub fn statement(args: &Args, query: &str, now: i64) -> anyhow::Result<Statement> {
    let usage = |m: String| fail(exit::USAGE, m);
    let mut s = Statement::new(query, 0, 0).map_err(|e| usage(e.to_string()))?;
    let time_query = s.attributes.time || query.eq_ignore_ascii_case("raw");
    let last = match &args.last {
        Some(t) => timefmt::parse_time(t, now).map_err(|e| usage(format!("--last: {e}")))?,
        None => now,
    };
    let first = match &args.first {
        Some(t) => timefmt::parse_time(t, now).map_err(|e| usage(format!("--first: {e}")))?,
        None if time_query => last.saturating_sub(86_400),
        None => last.saturating_sub(30 * 86_400),
    };
    if first > last {
        return Err(usage(format!(
            "invalid time range: --first ({}) is after --last ({})",
            timefmt::format_local(first),
            timefmt::format_local(last)
        )));
    }
    s.first = first;
    s.last = last;
    if let Some(c) = &args.condition {
        s = s.with_condition(c).map_err(|e| match e {
            StatementError::Condition(ce) => usage(condition_message(c, &ce)),
            other => usage(other.to_string()),
        })?;
    }
    let ifaces: Vec<String> = match args.ifaces.as_deref().map(str::trim) {
        None => Vec::new(),
        Some(any) if any.eq_ignore_ascii_case("any") => {
            s.attributes.iface = true;
            Vec::new()
        }
        Some(list) => list.split(',').map(|i| i.trim().to_string()).collect(),
    };
    s = s.with_ifaces(ifaces).map_err(|e| usage(e.to_string()))?;
    if let Some(sort) = &args.sort_by {
        s.sort = SortBy::parse(sort).ok_or_else(|| {
            usage(format!(
                "unknown sort order '{sort}' (use bytes, packets or time)"
            ))
        })?;
    }
    s.ascending = args.ascending;
    s.limit = args.limit;
    s.direction = match (args.dir_in, args.dir_out, args.sum) {
        (_, _, true) => Direction::Sum,
        (true, false, _) => Direction::In,
        (false, true, _) => Direction::Out,
        _ => Direction::Both,
    };
    s.memory_limit = args.max_mem.saturating_mul(1 << 20);
    s.threads = args.threads;
    if !matches!(args.format.as_str(), "txt" | "json" | "csv") {
        return Err(usage(format!(
            "unknown output format '{}' (use txt, json or csv)",
            args.format
        )));
    }
    if args.resolve && !(args.resolve_timeout > 0.0 && args.resolve_timeout <= 60.0) {
        return Err(usage(
            "--resolve-timeout must be between 0 and 60 seconds".into(),
        ));
    }
    s.validate().map_err(|e| usage(e.to_string()))?;
    Ok(s)
}

/// Runs goquery with `args`, writing results to `out` and warnings to `err`.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<Outcome> {
    let query = args.query.as_deref().unwrap_or("");
    if args.list || query.eq_ignore_ascii_case("list") {
        if !matches!(args.format.as_str(), "txt" | "json" | "csv") {
            return Err(fail(
                exit::USAGE,
                format!("unknown output format '{}'", args.format),
            ));
        }
        let db = open_db(&db_path(args)?)?;
        let (l, problems) =
            list::summaries(&db).map_err(|e| fail(exit::DATABASE, e.to_string()))?;
        warn_problems(err, &problems)?;
        if l.is_empty() {
            return Err(fail(
                exit::DATABASE,
                "the database is empty: no interface has any data",
            ));
        }
        list::write(out, &l, &args.format).context("writing the output")?;
        let lost = problems.iter().filter(|p| p.loses_data()).count();
        return Ok(if lost == 0 {
            Outcome::Complete
        } else {
            Outcome::SkippedBlocks(lost)
        });
    }
    if query.is_empty() {
        return Err(fail(
            exit::USAGE,
            "no query type given (e.g. talk_conv, apps_port, raw, sip,dport; see --help)",
        ));
    }
    let now = chrono::Utc::now().timestamp();
    let stmt = statement(args, query, now)?;
    let mut stmt = stmt;
    let db = open_db(&db_path(args)?)?;
    if args.ifaces.is_none() {
        // All interfaces by default; name them in the result when there are several.
        let n = db.interfaces().map(|i| i.len()).unwrap_or(0);
        stmt.attributes.iface |= n > 1;
    }
    let result = run_query(&db, &stmt).map_err(|e| {
        let code = match e {
            QueryError::MemoryLimit { .. } => exit::MEMORY,
            QueryError::Statement(_) => exit::USAGE,
            QueryError::Worker => exit::OTHER,
            _ => exit::DATABASE,
        };
        fail(code, e.to_string())
    })?;
    for b in &result.skipped {
        let when = if b.timestamp > 0 {
            timefmt::format_local(b.timestamp)
        } else {
            "-".to_string()
        };
        writeln!(
            err,
            "goquery: warning: skipped corrupted block: {} {when}: {}",
            b.iface, b.reason
        )
        .context("writing to stderr")?;
    }
    warn_problems(err, &result.problems)?;
    if result.blocks_read == 0 && !result.is_partial() {
        return Err(fail(
            exit::NO_DATA,
            format!(
                "no data between {} and {} on {}",
                timefmt::format_local(stmt.first),
                timefmt::format_local(stmt.last),
                result.interfaces.join(", ")
            ),
        ));
    }
    let names: HashMap<_, _> = if args.resolve {
        let ips = resolve::addresses(&result.rows, args.resolve_rows);
        resolve::reverse(&ips, Duration::from_secs_f64(args.resolve_timeout))
    } else {
        HashMap::new()
    };
    let report = render::Report {
        stmt: &stmt,
        result: &result,
        query,
        names: &names,
    };
    match args.format.as_str() {
        "json" => render::json::write(out, &report),
        "csv" => render::csv::write(out, &report),
        _ => render::text::write(out, &report),
    }
    .context("writing the output")?;
    out.flush().context("writing the output")?;
    Ok(if result.is_partial() {
        let lost = result.problems.iter().filter(|p| p.loses_data()).count();
        Outcome::SkippedBlocks(result.skipped.len() + lost)
    } else {
        Outcome::Complete
    })
}

/// One stderr line per problem of the database folder.
fn warn_problems(err: &mut dyn Write, problems: &[godb::query::Problem]) -> anyhow::Result<()> {
    for p in problems {
        writeln!(err, "goquery: warning: {p}").context("writing to stderr")?;
    }
    Ok(())
}

/// The exit code for an error returned by [`run`]: its [`Failure`] code, 0 for a
/// closed output pipe, else [`exit::OTHER`].
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return f.code;
    }
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        exit::OK
    } else {
        exit::OTHER
    }
}
