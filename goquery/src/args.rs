//! The command line: one table of flags (clap derive), goQuery's names and defaults.

use clap::Parser;

/// Default number of rows shown.
pub const DEFAULT_LIMIT: usize = 1000;

const AFTER_HELP: &str = "\
QUERY TYPES:
  talk_src        sip                      talk_dst    dip
  talk_conv       sip,dip                  apps_port   dport,proto
  apps_dpi        l7,proto                 raw         time,iface,sip,dip,dport,proto,l7
  agg_talk_port   sip,dip,dport,proto
  or any comma list of: sip|src, dip|dst, dport|port, proto|protocol, l7, time, iface
  'list' shows the interfaces of the database.

CONDITIONS (-c):
  attributes  sip|src dip|dst host snet dnet net dport|port proto|protocol l7 dir
  compare     = != < > <= >=   or  eq ne lt le gt ge (also -eq, equals, neq, less, ...)
  combine     & | !  or  and or not; group with (), [] or {}; & binds tighter than |
  examples    'dport = 443 & snet = 10.0.0.0/8'    'not (proto = udp or dir = uni)'

TIMES (-f, -l):
  epoch seconds, RFC 3339, 'YYYY-MM-DD HH:MM[:SS]' (local time), or relative: -1h -7d -2d4h

EXIT CODES:
  0  success (also when the output pipe closes early)
  1  success, but data was left out: corrupted blocks, unreadable days, missing column
     files (listed on stderr; foreign files are only warned about)
  2  usage error: unknown flag, query type, attribute, format; malformed condition or time
  3  database error: missing or empty database, unknown interface, unreadable metadata,
     a block whose frames do not decompress although their checksum matches
  4  no data in the time range
  5  the result outgrew the memory limit (--max-mem)
  6  output error or internal error";

/// goquery: query a goprobe flow database.
#[derive(Debug, Clone, Parser)]
#[command(name = "goquery", version, about, after_help = AFTER_HELP)]
pub struct Args {
    /// Query type (talk_src, talk_dst, talk_conv, apps_port, apps_dpi, agg_talk_port,
    /// raw), a comma list of attributes, or `list`.
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,

    /// Database folder [default: $GOPROBE_DB, the config's db_path, or
    /// /usr/local/goprobe/db].
    #[arg(short = 'd', long = "db", value_name = "DB")]
    pub db: Option<String>,

    /// goprobe config file to take the database path from [default: $GOPROBE_CONFIG
    /// or /usr/local/goprobe/etc/goprobe.toml, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<String>,

    /// Interfaces, comma-separated, or `any` for all (with an iface column) [default:
    /// all; the iface column only when the database has several].
    #[arg(short = 'i', long = "ifaces", value_name = "IFACE[,IFACE...]")]
    pub ifaces: Option<String>,

    /// Condition on the flows, e.g. 'dport = 443 & proto = tcp'.
    #[arg(
        short = 'c',
        long = "condition",
        value_name = "COND",
        allow_hyphen_values = true
    )]
    pub condition: Option<String>,

    /// Lower time bound [default: 30 days ago; 1 day ago for raw and time queries].
    #[arg(
        short = 'f',
        long = "first",
        value_name = "TIME",
        allow_hyphen_values = true
    )]
    pub first: Option<String>,

    /// Upper time bound [default: now].
    #[arg(
        short = 'l',
        long = "last",
        value_name = "TIME",
        allow_hyphen_values = true
    )]
    pub last: Option<String>,

    /// Sort by bytes, packets or time [default: bytes; time for time queries].
    #[arg(short = 's', long = "sort-by", value_name = "ORDER")]
    pub sort_by: Option<String>,

    /// Sort ascending (smallest first).
    #[arg(short = 'a', long = "ascending")]
    pub ascending: bool,

    /// Number of rows to show; 0 shows all.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = DEFAULT_LIMIT)]
    pub limit: usize,

    /// Show and sort by received (inbound) counters only.
    #[arg(long = "in", conflicts_with = "sum")]
    pub dir_in: bool,

    /// Show and sort by sent (outbound) counters only.
    #[arg(long = "out", conflicts_with = "sum")]
    pub dir_out: bool,

    /// Show received plus sent as one sum.
    #[arg(long = "sum")]
    pub sum: bool,

    /// Output format: txt, json or csv.
    #[arg(
        short = 'e',
        long = "format",
        value_name = "FORMAT",
        default_value = "txt"
    )]
    pub format: String,

    /// Reverse-resolve the addresses of the top rows (short timeout).
    #[arg(short = 'r', long = "resolve")]
    pub resolve: bool,

    /// Seconds to wait for reverse DNS in total.
    #[arg(long = "resolve-timeout", value_name = "SECS", default_value_t = 1.0)]
    pub resolve_timeout: f64,

    /// Number of top rows whose addresses are resolved.
    #[arg(long = "resolve-rows", value_name = "N", default_value_t = 25)]
    pub resolve_rows: usize,

    /// Memory limit for the aggregated result, MiB.
    #[arg(long = "max-mem", value_name = "MIB", default_value_t = 4096)]
    pub max_mem: usize,

    /// Worker threads; 0 uses one per core, at most one per 200,000 rows scanned.
    #[arg(long = "threads", value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// List the interfaces of the database (like `goquery list`).
    #[arg(long = "list")]
    pub list: bool,
}
