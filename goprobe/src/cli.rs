//! goprobe's command line: one table of flags (clap derive) and its translation into a
//! validated [`Command`] before any work starts.
//!
//! `goprobe [-c CONFIG] [-d DB] [IFACE...]` captures live; `goprobe replay` stores the
//! flows of capture files; `goprobe clean` applies the retention period.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, Flags, LogLevel};

/// Flow capture daemon: captures packets on network interfaces, aggregates them into
/// flows (client, server, protocol, server port) and stores the flows of every 5-minute
/// interval in a godb database, where goquery reads them.
///
/// Without a subcommand goprobe captures live on the interfaces named on the command
/// line and the enabled ones of the config file, until SIGTERM or SIGINT (which write
/// the partial interval first). SIGHUP re-reads the config file and starts or stops
/// interfaces accordingly.
#[derive(Debug, Parser)]
#[command(name = "goprobe", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(flatten)]
    pub live: LiveArgs,
    #[command(subcommand)]
    pub command: Option<Sub>,
}

/// Options of live capture.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// TOML configuration file (see etc/goprobe.toml for every key). Without it,
    /// everything comes from the flags and the defaults.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Database folder (created if missing); overrides db_path of the config file.
    #[arg(short = 'd', long = "db", value_name = "DB")]
    pub db: Option<PathBuf>,
    /// Write the process id to this file (removed at exit); overrides the config's
    /// pidfile.
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// Log to syslog (facility daemon) instead of standard error.
    #[arg(long)]
    pub syslog: bool,
    /// Log level: error, warn, info, debug or trace; overrides the config's log.level.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub log_level: Option<LogLevel>,
    /// Memory in MiB for intervals whose writeout failed (disk full, I/O errors):
    /// capture goes on, they are held in order and written when writeouts work again;
    /// beyond this bound the oldest held interval is dropped (logged and counted).
    /// 0 holds nothing. Overrides the config's backlog_mib (default 256).
    #[arg(long, value_name = "MIB")]
    pub backlog_mib: Option<u32>,
    /// Interfaces to capture on, in addition to the enabled ones of the config file
    /// (those named here are captured even if the file disables them; their settings
    /// come from the file's [interfaces.NAME] table or the defaults).
    #[arg(value_name = "IFACE")]
    pub interfaces: Vec<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Store the flows of pcap or pcapng files under an interface name, cutting blocks
    /// at the 5-minute boundaries of the packets' own time stamps (backfill).
    Replay(ReplayArgs),
    /// Delete stored days older than a number of days (the retention period).
    Clean(CleanArgs),
    /// Check the configuration (file, flags, BPF filters) and exit: 0 if valid.
    Check(CheckArgs),
}

/// Options of `goprobe check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Configuration file to check.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Database folder; overrides db_path of the config file.
    #[arg(short = 'd', long = "db", value_name = "DB")]
    pub db: Option<PathBuf>,
    /// Interfaces that would be given on the command line.
    #[arg(value_name = "IFACE")]
    pub interfaces: Vec<String>,
}

/// Options of `goprobe replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Database folder (created if missing).
    #[arg(short = 'd', long = "db", value_name = "DB", required = true)]
    pub db: PathBuf,
    /// Interface name to store the flows under.
    #[arg(long, value_name = "NAME", required = true)]
    pub iface: String,
    /// Capture files (pcap or pcapng), processed in the order of their first packet.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

/// Options of `goprobe clean`.
#[derive(Debug, Args)]
pub struct CleanArgs {
    /// Configuration file, for db_path and retention_days.
    #[arg(short = 'c', long = "config", value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Database folder; overrides db_path of the config file.
    #[arg(short = 'd', long = "db", value_name = "DB")]
    pub db: Option<PathBuf>,
    /// Delete the days that ended more than DAYS days ago (UTC); default: the config's
    /// retention_days (0 there means keep everything).
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<u32>,
    /// Only this interface (default: all).
    #[arg(long, value_name = "NAME")]
    pub iface: Option<String>,
}

fn parse_level(s: &str) -> Result<LogLevel, String> {
    match s.to_ascii_lowercase().as_str() {
        "error" => Ok(LogLevel::Error),
        "warn" => Ok(LogLevel::Warn),
        "info" => Ok(LogLevel::Info),
        "debug" => Ok(LogLevel::Debug),
        "trace" => Ok(LogLevel::Trace),
        _ => Err(format!(
            "unknown level {s:?}: use error, warn, info, debug or trace"
        )),
    }
}

/// A validated command.
#[derive(Debug)]
pub enum Command {
    /// Live capture with the merged configuration; `config_path` is re-read on SIGHUP.
    Live {
        /// The file given with -c, if any.
        config_path: Option<PathBuf>,
        /// The flags, re-applied over the file on every reload.
        flags: Flags,
        /// File and flags merged.
        config: Config,
    },
    /// Replay of capture files.
    Replay {
        /// Database folder.
        db: PathBuf,
        /// Interface name.
        iface: String,
        /// Files.
        files: Vec<PathBuf>,
    },
    /// Configuration check: the merged configuration, already valid but for filters.
    Check {
        /// File and flags merged.
        config: Config,
    },
    /// Retention.
    Clean {
        /// Database folder.
        db: PathBuf,
        /// Days to keep; 0 = keep all.
        older_than: u32,
        /// Interface, or all.
        iface: Option<String>,
    },
}

/// Loads the config file (if given) and merges the flags over it.
pub fn load_config(path: Option<&PathBuf>, flags: &Flags) -> Result<Config, ConfigError> {
    let mut config = match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    config.merge_flags(flags)?;
    Ok(config)
}

impl Cli {
    /// Validates the parsed arguments into a [`Command`].
    pub fn into_command(self) -> Result<Command, ConfigError> {
        match self.command {
            None => {
                let a = self.live;
                let flags = Flags {
                    db_path: a.db,
                    pidfile: a.pidfile,
                    syslog: a.syslog,
                    log_level: a.log_level,
                    backlog_mib: a.backlog_mib,
                    interfaces: a.interfaces,
                };
                let config = load_config(a.config.as_ref(), &flags)?;
                config.require_db_path()?;
                if config.enabled_interfaces().next().is_none() {
                    return Err(ConfigError::Invalid(
                        "no interface to capture on: name one on the command line or \
                         enable one in the config file (or use `goprobe replay`)"
                            .into(),
                    ));
                }
                Ok(Command::Live {
                    config_path: a.config,
                    flags,
                    config,
                })
            }
            Some(Sub::Replay(r)) => {
                crate::config::validate_iface_name(&r.iface)?;
                Ok(Command::Replay {
                    db: r.db,
                    iface: r.iface,
                    files: r.files,
                })
            }
            Some(Sub::Check(c)) => {
                let flags = Flags {
                    db_path: c.db,
                    interfaces: c.interfaces,
                    ..Flags::default()
                };
                let config = load_config(c.config.as_ref(), &flags)?;
                config.require_db_path()?;
                Ok(Command::Check { config })
            }
            Some(Sub::Clean(c)) => {
                let flags = Flags {
                    db_path: c.db,
                    ..Flags::default()
                };
                let config = load_config(c.config.as_ref(), &flags)?;
                let db = config.require_db_path()?.to_path_buf();
                if let Some(i) = &c.iface {
                    crate::config::validate_iface_name(i)?;
                }
                Ok(Command::Clean {
                    db,
                    older_than: c.older_than.unwrap_or(config.retention_days),
                    iface: c.iface,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_table_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Command, String> {
        let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
        cli.into_command().map_err(|e| e.to_string())
    }

    #[test]
    fn live_needs_db_and_interface() {
        assert!(parse(&["goprobe", "eth0"]).unwrap_err().contains("-d DB"));
        assert!(parse(&["goprobe", "-d", "/x"])
            .unwrap_err()
            .contains("no interface"));
        match parse(&["goprobe", "-d", "/x", "--syslog", "eth0", "eth1"]).unwrap() {
            Command::Live { config, .. } => {
                assert_eq!(config.interfaces.len(), 2);
                assert_eq!(
                    config.log.destination,
                    crate::config::LogDestination::Syslog
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replay_needs_db_iface_and_files() {
        assert!(parse(&["goprobe", "replay", "--iface", "x", "f.pcap"]).is_err());
        assert!(parse(&["goprobe", "replay", "-d", "/db", "f.pcap"]).is_err());
        assert!(parse(&["goprobe", "replay", "-d", "/db", "--iface", "x"]).is_err());
        assert!(parse(&["goprobe", "replay", "-d", "/db", "--iface", "a/b", "f"]).is_err());
        match parse(&["goprobe", "replay", "-d", "/db", "--iface", "x", "a", "b"]).unwrap() {
            Command::Replay { files, iface, .. } => {
                assert_eq!(files.len(), 2);
                assert_eq!(iface, "x");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clean_takes_days_from_flag_or_config() {
        match parse(&["goprobe", "clean", "-d", "/db", "--older-than", "30"]).unwrap() {
            Command::Clean { older_than, .. } => assert_eq!(older_than, 30),
            other => panic!("{other:?}"),
        }
        match parse(&["goprobe", "clean", "-d", "/db"]).unwrap() {
            Command::Clean { older_than, .. } => assert_eq!(older_than, 0),
            other => panic!("{other:?}"),
        }
        assert!(parse(&["goprobe", "clean", "--older-than", "3"]).is_err());
        assert!(parse(&["goprobe", "clean", "-d", "/db", "--older-than", "x"]).is_err());
    }

    #[test]
    fn bad_log_level_is_an_error() {
        let e = parse(&["goprobe", "-d", "/x", "--log-level", "loud", "eth0"]).unwrap_err();
        assert!(e.contains("loud"), "{e}");
    }
}
