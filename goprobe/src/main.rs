//! The `goprobe` binary: a thin shell over the goprobe library. Usage errors exit 2,
//! other failures 1 (after printing the error with its context).
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use goprobe::cli::{Cli, Command};
use goprobe::config::{LogConfig, LogLevel};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e:#}");
            if !log::log_enabled!(log::Level::Error) || !logs_to_stderr() {
                eprintln!("goprobe: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

/// True when the logger is not installed or writes to stderr (so the error was seen).
fn logs_to_stderr() -> bool {
    goprobe::logging::destination_is_stderr()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.into_command()?;
    match command {
        Command::Live {
            config_path,
            flags,
            config,
        } => goprobe::daemon::run(config_path, flags, config)?,
        Command::Check { config } => {
            goprobe::daemon::check_filters(&config)?;
            goprobe::daemon::check_database_path(config.require_db_path()?)?;
            let names: Vec<&str> = config
                .enabled_interfaces()
                .map(|(n, _)| n.as_str())
                .collect();
            println!(
                "configuration OK: database {}, interfaces: {}",
                config.require_db_path()?.display(),
                if names.is_empty() {
                    "none (name them on the command line)".to_string()
                } else {
                    names.join(", ")
                }
            );
        }
        Command::Replay { db, iface, files } => {
            goprobe::daemon::check_database_path(&db)?;
            goprobe::logging::init(&LogConfig {
                level: LogLevel::Warn,
                ..LogConfig::default()
            });
            let s = goprobe::replay::replay(&db, &iface, &files)
                .with_context(|| format!("replay into {}", db.display()))?;
            for e in &s.errors {
                eprintln!("goprobe: {e}");
            }
            println!(
                "replayed {} file(s) into {} as interface {iface}: {} packets ({} non-IP), \
                 {} flows in {} blocks",
                s.files,
                db.display(),
                s.packets,
                s.written.stats.packets_non_ip,
                s.written.rows,
                s.written.blocks
            );
            if !s.errors.is_empty() {
                bail!(
                    "{} of {} file(s) could not be read completely (what was read is stored)",
                    s.errors.len(),
                    s.files
                );
            }
            if s.written.failed > 0 {
                bail!("{} interval(s) could not be stored", s.written.failed);
            }
        }
        Command::Clean {
            db,
            older_than,
            iface,
        } => {
            if older_than == 0 {
                println!(
                    "retention is 0 days: keeping everything in {}",
                    db.display()
                );
                return Ok(());
            }
            goprobe::daemon::check_database_path(&db)?;
            let database = godb::Database::open(&db)
                .with_context(|| format!("open database {}", db.display()))?;
            let today = chrono::Utc::now().date_naive();
            let cutoff = today
                .checked_sub_days(chrono::Days::new(u64::from(older_than)))
                .context("retention period reaches before the calendar's start")?;
            let deleted = database
                .delete_days_before(cutoff, iface.as_deref())
                .with_context(|| format!("delete days before {cutoff} in {}", db.display()))?;
            for (i, day) in &deleted {
                println!("deleted {i} {day}");
            }
            println!(
                "deleted {} day(s) before {cutoff} from {}{}",
                deleted.len(),
                db.display(),
                iface
                    .map(|i| format!(" (interface {i})"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}
