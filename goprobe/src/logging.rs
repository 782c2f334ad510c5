//! goprobe's logger: a small `log::Log` that writes to standard error (UTC time stamp,
//! level, message, one line each) or to the local syslog daemon through libc's
//! `openlog`/`syslog`, so the daemon needs no extra crate for it.
//!
//! Destination and level can be changed at run time (SIGHUP reload).

use std::ffi::CString;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::config::{LogConfig, LogDestination};

/// Identity under which syslog records the messages. `openlog` keeps the pointer, so it
/// must live for the whole process.
static SYSLOG_IDENT: &[u8] = b"goprobe\0";

struct Logger {
    /// 0 = stderr, 1 = syslog.
    destination: AtomicU8,
    syslog_open: AtomicBool,
}

static LOGGER: Logger = Logger {
    destination: AtomicU8::new(0),
    syslog_open: AtomicBool::new(false),
};

/// Installs the logger (once per process; later calls only reconfigure it).
pub fn init(config: &LogConfig) {
    // Err only means a logger is already installed: reconfiguring it is all we need.
    let _ = log::set_logger(&LOGGER);
    configure(config);
}

/// Changes destination and level of the installed logger.
pub fn configure(config: &LogConfig) {
    let dest = match config.destination {
        LogDestination::Stderr => 0,
        LogDestination::Syslog => {
            if !LOGGER.syslog_open.swap(true, Ordering::SeqCst) {
                // SAFETY: the ident is a static NUL-terminated string that outlives
                // every later syslog call; the flags are plain integers.
                unsafe {
                    libc::openlog(
                        SYSLOG_IDENT.as_ptr().cast(),
                        libc::LOG_PID | libc::LOG_NDELAY,
                        libc::LOG_DAEMON,
                    )
                };
            }
            1
        }
    };
    LOGGER.destination.store(dest, Ordering::SeqCst);
    log::set_max_level(config.level.filter());
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if self.destination.load(Ordering::Relaxed) == 1 {
            let priority = match record.level() {
                log::Level::Error => libc::LOG_ERR,
                log::Level::Warn => libc::LOG_WARNING,
                log::Level::Info => libc::LOG_INFO,
                log::Level::Debug | log::Level::Trace => libc::LOG_DEBUG,
            };
            let text = record.args().to_string().replace('\0', " ");
            if let Ok(msg) = CString::new(text) {
                // SAFETY: a constant "%s" format with one NUL-terminated argument.
                unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
            }
        } else {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
            let line = format!("{now} goprobe {:<5} {}\n", record.level(), record.args());
            // A closed stderr must not take the daemon down: the error is ignored.
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// True unless the logger sends to syslog (so errors printed to stderr are seen).
pub fn destination_is_stderr() -> bool {
    LOGGER.destination.load(Ordering::SeqCst) == 0
}
