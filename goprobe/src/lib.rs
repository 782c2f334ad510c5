//! goprobe's library: configuration, capture threads (live and from files), interval
//! rotation and the writer thread that hands flow tables to godb.
//!
//! The `goprobe` binary is a thin shell over these modules:
//! - [`cli`]: the command line, validated into a [`cli::Command`];
//! - [`config`]: the TOML file and its merge with the flags;
//! - [`capture`]: one thread per live interface, 5-minute rotation, reopen with backoff;
//! - [`replay`]: capture files, validated by libpcap's offline reader;
//! - [`pcapfile`]: the fast reader replay uses for classic pcap files;
//! - [`writer`]: the single thread that turns intervals into godb blocks;
//! - [`daemon`]: signals, SIGHUP reload, pidfile, privilege drop, orderly shutdown;
//! - [`logging`]: stderr or syslog.
//!
//! ```
//! use goprobe::config::{Config, DEFAULT_SNAPLEN};
//! let config = Config::parse(
//!     "db_path = \"/var/lib/goprobe\"\n[interfaces.eth0]\npromisc = true\n",
//!     std::path::Path::new("example.toml"),
//! )?;
//! assert_eq!(config.interfaces["eth0"].snaplen, DEFAULT_SNAPLEN);
//! # Ok::<(), goprobe::config::ConfigError>(())
//! ```

pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod pcapfile;
pub mod replay;
pub mod writer;
