//! goprobe's configuration: the TOML file, its defaults, and how command-line flags
//! are merged over it.
//!
//! The file is optional; every key has a default except the database path, which comes
//! from the file (`db_path`) or the command line (`-d`). Unknown keys are errors that
//! name the key, so a typo never silently falls back to a default. The commented
//! example is `etc/goprobe.toml` in the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default number of bytes captured per packet: the Ethernet, VLAN, IP, IPv6 extension
/// and transport headers plus the first payload bytes the layer-7 classifier looks at.
pub const DEFAULT_SNAPLEN: u32 = 256;

/// Default size of libpcap's kernel ring buffer per interface, in bytes (8 MiB).
pub const DEFAULT_BUFFER_SIZE: u32 = 8 << 20;

/// Smallest accepted snaplen: an Ethernet header with two VLAN tags and an IPv6
/// header with a transport header behind it.
pub const MIN_SNAPLEN: u32 = 96;

/// Default memory for intervals whose writeout failed (disk full), in MiB.
pub const DEFAULT_BACKLOG_MIB: u32 = 256;

/// Largest accepted `backlog_mib` (1 TiB).
pub const MAX_BACKLOG_MIB: u32 = 1 << 20;

/// Errors of loading or validating a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (in the message, not also the error's `source()`, so that a printed
        /// chain does not say it twice).
        reason: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's description, naming the key and the line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogDestination {
    /// Standard error, one line per message with a UTC time stamp.
    #[default]
    Stderr,
    /// The local syslog daemon (facility daemon).
    Syslog,
}

/// How much is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also the start-up summary and one line per interval per interface.
    #[default]
    Info,
    /// Also details of opening interfaces and of the writer.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// The `[log]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `stderr` (default) or `syslog`.
    pub destination: LogDestination,
    /// `error`, `warn`, `info` (default), `debug` or `trace`.
    pub level: LogLevel,
}

/// One `[interfaces.NAME]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterfaceConfig {
    /// Capture on this interface (default true); `false` keeps the settings but skips it.
    pub enabled: bool,
    /// Put the interface into promiscuous mode (default false).
    pub promisc: bool,
    /// Bytes captured per packet (default [`DEFAULT_SNAPLEN`]).
    pub snaplen: u32,
    /// libpcap's kernel buffer in bytes (default [`DEFAULT_BUFFER_SIZE`]).
    pub buffer_size: u32,
    /// A BPF filter expression (tcpdump syntax) compiled into the kernel; empty = all.
    pub bpf_filter: String,
}

impl Default for InterfaceConfig {
    fn default() -> Self {
        InterfaceConfig {
            enabled: true,
            promisc: false,
            snaplen: DEFAULT_SNAPLEN,
            buffer_size: DEFAULT_BUFFER_SIZE,
            bpf_filter: String::new(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The godb database folder.
    pub db_path: Option<PathBuf>,
    /// `goprobe clean` deletes days older than this many days; 0 keeps everything.
    pub retention_days: u32,
    /// Memory (MiB) for intervals whose writeout failed (disk full, I/O errors), held
    /// and written when writeouts work again; beyond it the oldest are dropped (logged
    /// and counted). 0 holds nothing.
    pub backlog_mib: u32,
    /// Logging.
    pub log: LogConfig,
    /// Drop to this user after opening the capture handles.
    pub user: Option<String>,
    /// Drop to this group (default: the user's primary group).
    pub group: Option<String>,
    /// Write the daemon's process id to this file.
    pub pidfile: Option<PathBuf>,
    /// The interfaces, by name.
    pub interfaces: BTreeMap<String, InterfaceConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: None,
            retention_days: 0,
            backlog_mib: DEFAULT_BACKLOG_MIB,
            log: LogConfig::default(),
            user: None,
            group: None,
            pidfile: None,
            interfaces: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Parses a configuration from TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|reason| ConfigError::Read {
            path: path.to_path_buf(),
            reason,
        })?;
        Config::parse(&text, path)
    }

    /// Checks the values that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, iface) in &self.interfaces {
            validate_iface_name(name)?;
            if iface.snaplen < MIN_SNAPLEN || iface.snaplen > 262_144 {
                return Err(ConfigError::Invalid(format!(
                    "interface {name}: snaplen {} is outside {MIN_SNAPLEN}..=262144",
                    iface.snaplen
                )));
            }
            if iface.buffer_size < 65_536 || iface.buffer_size > i32::MAX as u32 {
                return Err(ConfigError::Invalid(format!(
                    "interface {name}: buffer_size {} is outside 65536..=2147483647 bytes",
                    iface.buffer_size
                )));
            }
        }
        if self.backlog_mib > MAX_BACKLOG_MIB {
            return Err(ConfigError::Invalid(format!(
                "backlog_mib {} is over {MAX_BACKLOG_MIB} (1 TiB)",
                self.backlog_mib
            )));
        }
        if self.group.is_some() && self.user.is_none() {
            return Err(ConfigError::Invalid(
                "group is set but user is not: set both or neither".into(),
            ));
        }
        Ok(())
    }

    /// Applies command-line values over the file: a given database path or pidfile
    /// replaces the file's, `syslog` forces syslog logging, and each interface named on
    /// the command line is captured (with its settings from the file if it has a table
    /// there, enabled even if the file disables it; with defaults otherwise).
    pub fn merge_flags(&mut self, flags: &Flags) -> Result<(), ConfigError> {
        if let Some(db) = &flags.db_path {
            self.db_path = Some(db.clone());
        }
        if let Some(p) = &flags.pidfile {
            self.pidfile = Some(p.clone());
        }
        if flags.syslog {
            self.log.destination = LogDestination::Syslog;
        }
        if let Some(level) = flags.log_level {
            self.log.level = level;
        }
        if let Some(mib) = flags.backlog_mib {
            self.backlog_mib = mib;
        }
        for name in &flags.interfaces {
            validate_iface_name(name)?;
            self.interfaces.entry(name.clone()).or_default().enabled = true;
        }
        self.validate()
    }

    /// The database path, or an error telling how to give one.
    pub fn require_db_path(&self) -> Result<&Path, ConfigError> {
        self.db_path.as_deref().ok_or_else(|| {
            ConfigError::Invalid(
                "no database path: give -d DB or set db_path in the config file".into(),
            )
        })
    }

    /// The enabled interfaces with their settings, in name order.
    pub fn enabled_interfaces(&self) -> impl Iterator<Item = (&String, &InterfaceConfig)> {
        self.interfaces.iter().filter(|(_, i)| i.enabled)
    }
}

/// The command-line values that override the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `-d DB`.
    pub db_path: Option<PathBuf>,
    /// `--pidfile PATH`.
    pub pidfile: Option<PathBuf>,
    /// `--syslog`.
    pub syslog: bool,
    /// `--log-level LEVEL`.
    pub log_level: Option<LogLevel>,
    /// `--backlog-mib MIB`.
    pub backlog_mib: Option<u32>,
    /// Interfaces named on the command line.
    pub interfaces: Vec<String>,
}

/// Checks an interface name as godb will store it (one folder per interface) and as
/// Linux allows it: 1 to 64 bytes, no `/`, NUL, whitespace or control characters, not
/// `.` or `..`, and no leading `.` (godb keeps its own files under dot names, and a
/// hidden interface folder is easily overlooked). So a name can never lead outside
/// the database folder.
pub fn validate_iface_name(name: &str) -> Result<(), ConfigError> {
    let bad = name.is_empty()
        || name.len() > godb::MAX_IFACE_LEN
        || name.starts_with('.')
        || name.contains(['/', '\0'])
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
        || godb::validate_iface(name).is_err();
    if bad {
        return Err(ConfigError::Invalid(format!(
            "invalid interface name {name:?}: it must be 1 to 64 bytes without '/', \
             whitespace or control characters, and must not start with '.'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.log.destination, LogDestination::Stderr);
        assert_eq!(c.log.level, LogLevel::Info);
        assert_eq!(c.retention_days, 0);
        assert_eq!(c.backlog_mib, DEFAULT_BACKLOG_MIB);
    }

    #[test]
    fn unsafe_interface_names_are_refused() {
        let long = "a".repeat(65);
        for bad in [
            "", ".", "..", "../etc", "a/b", "/", "a\0b", ".lock", ".hidden", "a b", "a\nb", "a\tb",
            &long,
        ] {
            assert!(validate_iface_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["eth0", "en0.100", "a..b", "wlan-ü", &long[..64]] {
            assert!(validate_iface_name(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn interface_defaults_fill_missing_keys() {
        let c = parse("[interfaces.eth0]\npromisc = true\n").unwrap();
        let i = &c.interfaces["eth0"];
        assert!(i.enabled && i.promisc);
        assert_eq!(i.snaplen, DEFAULT_SNAPLEN);
        assert_eq!(i.buffer_size, DEFAULT_BUFFER_SIZE);
        assert_eq!(i.bpf_filter, "");
    }

    #[test]
    fn quoted_interface_names_with_dots() {
        let c = parse("[interfaces.\"eth0.100\"]\n[interfaces.any]\n").unwrap();
        let names: Vec<_> = c.enabled_interfaces().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["any", "eth0.100"]);
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = parse("db_pth = \"/x\"\n").unwrap_err().to_string();
        assert!(e.contains("db_pth"), "{e}");
        let e = parse("[interfaces.eth0]\nsnaplength = 100\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("snaplength"), "{e}");
        let e = parse("[log]\nfile = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("file"), "{e}");
    }

    #[test]
    fn bad_values_are_rejected() {
        assert!(parse("[log]\nlevel = \"loud\"\n").is_err());
        assert!(parse("[interfaces.eth0]\nsnaplen = 10\n").is_err());
        assert!(parse("[interfaces.eth0]\nbuffer_size = 100\n").is_err());
        assert!(parse("[interfaces.\"a/b\"]\n").is_err());
        assert!(parse("backlog_mib = 2000000\n").is_err());
        assert!(parse("backlog_mib = -1\n").is_err());
        assert!(parse("group = \"g\"\n").is_err());
        assert!(parse("retention_days = -1\n").is_err());
    }

    #[test]
    fn flags_override_file() {
        let mut c = parse(
            "db_path = \"/file/db\"\npidfile = \"/file.pid\"\n\
             [interfaces.eth0]\nenabled = false\nsnaplen = 300\n\
             [interfaces.eth1]\n",
        )
        .unwrap();
        let flags = Flags {
            db_path: Some("/flag/db".into()),
            pidfile: Some("/flag.pid".into()),
            syslog: true,
            log_level: Some(LogLevel::Debug),
            backlog_mib: Some(3),
            interfaces: vec!["eth0".into(), "eth2".into()],
        };
        c.merge_flags(&flags).unwrap();
        assert_eq!(c.require_db_path().unwrap(), Path::new("/flag/db"));
        assert_eq!(c.pidfile.as_deref(), Some(Path::new("/flag.pid")));
        assert_eq!(c.log.destination, LogDestination::Syslog);
        assert_eq!(c.log.level, LogLevel::Debug);
        assert_eq!(c.backlog_mib, 3);
        let names: Vec<_> = c.enabled_interfaces().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["eth0", "eth1", "eth2"]);
        assert_eq!(c.interfaces["eth0"].snaplen, 300);
        assert_eq!(c.interfaces["eth2"], InterfaceConfig::default());
    }

    #[test]
    fn missing_db_path_is_explained() {
        let e = Config::default().require_db_path().unwrap_err().to_string();
        assert!(e.contains("-d DB"), "{e}");
    }
}
