//! The live daemon's lifecycle: start-up, signals, SIGHUP reload, privilege drop,
//! pidfile, and an orderly shutdown that writes every partial interval.
//!
//! Signals: SIGTERM, SIGINT and SIGHUP are blocked in every thread (the mask is set
//! before any thread starts and inherited), and one dedicated thread takes them with
//! `sigwait` and turns them into events for the supervisor (the main thread). So no
//! code runs in a signal handler and no extra crate is needed. The first SIGTERM or
//! SIGINT starts the shutdown; a second one exits at once.
//!
//! Start-up order: validate the configuration, open (create) the database, open every
//! capture handle, write the pidfile, drop to the configured user, then start the
//! writer and the capture threads. Once privileges are dropped, an interface can no
//! longer be (re)opened unless the user holds CAP_NET_RAW: the log says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam::channel::{unbounded, Receiver};
use godb::Database;
use nix::sys::signal::{SigSet, Signal};

use crate::capture::{self, CaptureError, CaptureThread};
use crate::cli::load_config;
use crate::config::{Config, ConfigError, Flags, InterfaceConfig};
use crate::logging;
use crate::writer::{Writer, WriterOptions};

/// Why the daemon could not start or did not end cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A capture handle could not be set up (bad filter, or no interface at all).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The database cannot be opened.
    #[error("database: {0}")]
    Database(#[from] godb::Error),
    /// No interface could be opened.
    #[error("no interface could be opened: {0}")]
    NoInterface(CaptureError),
    /// Signal setup failed.
    #[error("cannot set up signal handling: {0}")]
    Signals(nix::Error),
    /// Dropping privileges failed.
    #[error("cannot run as user {user}: {reason}")]
    Privileges {
        /// The configured user.
        user: String,
        /// What failed.
        reason: String,
    },
    /// The pidfile cannot be written.
    #[error("cannot write pidfile {path}: {reason}")]
    Pidfile {
        /// The file.
        path: PathBuf,
        /// Why (in the message only, see [`ConfigError::Read`]).
        reason: std::io::Error,
    },
    /// The database path is unsafe (world-writable, or below a folder anybody may
    /// rename things in).
    #[error("refusing database {path}: {reason}")]
    UnsafeDatabase {
        /// The path checked (the database folder or one of its parents).
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Another goprobe holds the pidfile.
    #[error("pidfile {path} names a running process ({pid}): is goprobe already running?")]
    AlreadyRunning {
        /// The file.
        path: PathBuf,
        /// The process.
        pid: i32,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    /// Some intervals could not be stored (each was logged).
    #[error("{0} intervals could not be stored (see the log)")]
    Lost(u64),
}

/// What the signal thread tells the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    Reload,
    Shutdown(Signal),
}

/// Checks what `goprobe check` and every (re)load check beyond the file itself: each
/// enabled interface's BPF filter compiles.
pub fn check_filters(config: &Config) -> Result<(), CaptureError> {
    for (name, iface) in config.enabled_interfaces() {
        capture::check_filter(name, &iface.bpf_filter)?;
    }
    Ok(())
}

/// Runs the live daemon until SIGTERM or SIGINT.
pub fn run(config_path: Option<PathBuf>, flags: Flags, config: Config) -> Result<(), DaemonError> {
    logging::init(&config.log);
    check_filters(&config)?;
    let db_path = config.require_db_path()?.to_path_buf();

    // Block the signals before any thread exists, so every thread inherits the mask.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().map_err(DaemonError::Signals)?;

    check_database_path(&db_path)?;
    let db = Arc::new(Database::create(&db_path)?);

    // Open every handle now, while privileged.
    let mut handles = BTreeMap::new();
    let mut failed = Vec::new();
    for (name, iface) in config.enabled_interfaces() {
        match capture::open(name, iface) {
            Ok(h) => {
                log::debug!("{name}: opened (link type {:?})", h.get_datalink());
                handles.insert(name.clone(), h);
            }
            Err(e @ CaptureError::Filter { .. }) => return Err(e.into()),
            Err(e) => failed.push(e),
        }
    }
    if handles.is_empty() {
        if let Some(e) = failed.into_iter().next() {
            return Err(DaemonError::NoInterface(e));
        }
    } else {
        for e in failed {
            log::error!("{e}; goprobe keeps retrying it while the others capture");
        }
    }

    let run_as = match &config.user {
        Some(user) => Some(RunAs::resolve(user, config.group.as_deref())?),
        None => None,
    };
    let pidfile = config.pidfile.clone();
    if let Some(p) = &pidfile {
        write_pidfile(p, run_as.as_ref())?;
    }
    let dropped_to = match &run_as {
        Some(r) => Some(r.switch(&db_path)?),
        None => None,
    };

    let writer = Writer::spawn_with(
        Arc::clone(&db),
        WriterOptions {
            backlog_bytes: (config.backlog_mib as usize) << 20,
            ..WriterOptions::default()
        },
    )?;
    let (ev_tx, ev_rx) = unbounded();
    std::thread::Builder::new()
        .name("goprobe-signals".into())
        .spawn(move || signal_loop(signals, ev_tx))?;

    let mut threads = BTreeMap::new();
    for (name, iface) in config.enabled_interfaces() {
        let handle = handles.remove(name);
        let t = CaptureThread::spawn(name, iface, handle, writer.sender())?;
        threads.insert(name.clone(), t);
    }
    log_startup(&config, &db_path, dropped_to.as_deref());

    let mut daemon = Daemon {
        config_path,
        flags,
        config,
        threads,
        writer,
    };
    daemon.serve(&ev_rx);
    let totals = daemon.shutdown();
    if let Some(p) = &pidfile {
        remove_pidfile(p);
    }
    log::info!(
        "goprobe stopped: {} blocks with {} flows written in this run",
        totals.blocks,
        totals.rows
    );
    if totals.failed > 0 {
        return Err(DaemonError::Lost(totals.failed));
    }
    Ok(())
}

struct Daemon {
    config_path: Option<PathBuf>,
    flags: Flags,
    config: Config,
    threads: BTreeMap<String, CaptureThread>,
    writer: Writer,
}

impl Daemon {
    fn serve(&mut self, events: &Receiver<Event>) {
        for event in events.iter() {
            match event {
                Event::Reload => self.reload(),
                Event::Shutdown(sig) => {
                    log::info!(
                        "{sig}: writing the partial interval of {} interfaces, then exiting \
                         (a second signal exits at once)",
                        self.threads.len()
                    );
                    return;
                }
            }
        }
        log::error!("the signal thread ended: shutting down");
    }

    fn shutdown(self) -> crate::writer::WriterTotals {
        let Daemon {
            threads, writer, ..
        } = self;
        for t in threads.values() {
            t.request_stop();
        }
        for (_, mut t) in threads {
            t.join();
        }
        writer.finish()
    }

    fn reload(&mut self) {
        let Some(path) = self.config_path.clone() else {
            log::info!("SIGHUP: no config file was given (-c), nothing to re-read");
            return;
        };
        let new = match load_config(Some(&path), &self.flags) {
            Ok(c) => c,
            Err(e) => {
                log::error!("SIGHUP: keeping the running configuration: {e}");
                return;
            }
        };
        if let Err(e) = check_filters(&new) {
            log::error!("SIGHUP: keeping the running configuration: {e}");
            return;
        }
        logging::configure(&new.log);
        if new.db_path != self.config.db_path {
            log::warn!("SIGHUP: a new db_path takes effect only after a restart");
        }
        if new.backlog_mib != self.config.backlog_mib {
            log::warn!("SIGHUP: a new backlog_mib takes effect only after a restart");
        }
        if new.user != self.config.user || new.group != self.config.group {
            log::warn!("SIGHUP: a new user or group takes effect only after a restart");
        }
        let wanted: BTreeMap<&String, &InterfaceConfig> = new.enabled_interfaces().collect();
        let removed: Vec<String> = self
            .threads
            .keys()
            .filter(|n| !wanted.contains_key(n))
            .cloned()
            .collect();
        for name in removed {
            if let Some(t) = self.threads.remove(&name) {
                t.stop();
                log::info!("SIGHUP: stopped capturing on {name}; its partial interval is written");
            }
        }
        for (name, iface) in wanted {
            match self.threads.get_mut(name) {
                Some(t) if t.config() != iface => {
                    log::info!("SIGHUP: {name}: new settings, reopening (its flows are kept)");
                    t.reconfigure(iface);
                }
                Some(_) => {}
                None => match CaptureThread::spawn(name, iface, None, self.writer.sender()) {
                    Ok(t) => {
                        log::info!("SIGHUP: capturing on {name} ({})", describe(iface));
                        self.threads.insert(name.clone(), t);
                    }
                    Err(e) => log::error!("SIGHUP: cannot start a thread for {name}: {e}"),
                },
            }
        }
        self.config = new;
        log::info!(
            "SIGHUP: configuration re-read; capturing on {}",
            self.threads
                .keys()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn signal_loop(signals: SigSet, tx: crossbeam::channel::Sender<Event>) {
    let mut stopping = false;
    loop {
        let sig = match signals.wait() {
            Ok(s) => s,
            Err(e) => {
                log::error!("sigwait failed: {e}");
                return;
            }
        };
        let event = match sig {
            Signal::SIGHUP => Event::Reload,
            other => {
                if stopping {
                    log::warn!("{other} again: exiting at once; unwritten intervals are lost");
                    std::process::exit(128 + other as i32);
                }
                stopping = true;
                Event::Shutdown(other)
            }
        };
        if tx.send(event).is_err() {
            return;
        }
    }
}

fn describe(iface: &InterfaceConfig) -> String {
    let filter = if iface.bpf_filter.trim().is_empty() {
        "no filter".to_string()
    } else {
        format!("filter {:?}", iface.bpf_filter)
    };
    format!(
        "snaplen {}, buffer {} KiB, promisc {}, {filter}",
        iface.snaplen,
        iface.buffer_size / 1024,
        if iface.promisc { "on" } else { "off" }
    )
}

fn log_startup(config: &Config, db_path: &Path, user: Option<&str>) {
    let ifaces: Vec<String> = config
        .enabled_interfaces()
        .map(|(n, i)| format!("{n} ({})", describe(i)))
        .collect();
    log::info!(
        "goprobe {} started (pid {}): database {}, {} interface(s): {}; retention {}; {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        db_path.display(),
        ifaces.len(),
        ifaces.join("; "),
        match config.retention_days {
            0 => "keep all (goprobe clean)".to_string(),
            d => format!("{d} days (goprobe clean)"),
        },
        match user {
            Some(u) => format!("running as {u}"),
            None => "running with the privileges it was started with".to_string(),
        }
    );
}

/// Refuses a database path that others could tamper with: the database folder must
/// not be world-writable, and no folder above it may be world-writable without the
/// sticky bit (like `/tmp`, where others cannot rename or delete what is ours). The
/// path need not exist yet: its existing part is checked (links resolved).
pub fn check_database_path(path: &Path) -> Result<(), DaemonError> {
    use std::os::unix::fs::PermissionsExt;
    let unsafe_path = |p: &Path, reason: String| DaemonError::UnsafeDatabase {
        path: p.to_path_buf(),
        reason,
    };
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| unsafe_path(path, format!("cannot resolve the path: {e}")))?
            .join(path)
    };
    // The deepest part that exists, with links resolved.
    let existing = abs
        .ancestors()
        .find_map(|p| std::fs::canonicalize(p).ok().map(|c| (p == abs, c)));
    let Some((is_db, real)) = existing else {
        return Ok(());
    };
    for (i, dir) in real.ancestors().enumerate() {
        let meta =
            std::fs::metadata(dir).map_err(|e| unsafe_path(dir, format!("cannot inspect: {e}")))?;
        let mode = meta.permissions().mode();
        if mode & 0o002 == 0 {
            continue;
        }
        if i == 0 && is_db {
            return Err(unsafe_path(
                dir,
                format!(
                    "the database folder is world-writable (mode {:04o}): anybody could \
                     add, replace or remove stored data; chmod o-w it (goprobe creates \
                     0750 folders and 0640 files)",
                    mode & 0o7777
                ),
            ));
        }
        if mode & 0o1000 == 0 {
            return Err(unsafe_path(
                dir,
                format!(
                    "a parent folder of the database is world-writable without the sticky \
                     bit (mode {:04o}): anybody could move the database away or put \
                     another in its place",
                    mode & 0o7777
                ),
            ));
        }
    }
    Ok(())
}

/// Writes the pidfile without following a link or writing into an existing file: a
/// new file next to it, renamed over it (so a link planted at `path` is replaced,
/// never written through). With `run_as`, the file is given to that user so the
/// process can still empty it at exit after dropping privileges.
fn write_pidfile(path: &Path, run_as: Option<&RunAs>) -> Result<(), DaemonError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |reason| DaemonError::Pidfile {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            let alive = pid > 0
                && pid != std::process::id() as i32
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok();
            if alive {
                return Err(DaemonError::AlreadyRunning {
                    path: path.to_path_buf(),
                    pid,
                });
            }
        }
    }
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::other("not a file name")))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(fail)?;
    let written = f
        .write_all(format!("{}\n", std::process::id()).as_bytes())
        .and_then(|()| match run_as {
            Some(r) => std::os::unix::fs::fchown(&f, Some(r.uid.as_raw()), Some(r.gid.as_raw())),
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Removes the pidfile at exit. After a privilege drop the folder may not let the
/// user remove it (e.g. `/run`): then the file (which is the user's) is emptied, so it
/// names no process, and the init script removes it.
fn remove_pidfile(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            let emptied = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path);
            match emptied {
                Ok(_) => log::info!(
                    "cannot remove pidfile {} ({e}): emptied it instead (the init script \
                     removes it; a folder the user may write, like /run/goprobe, avoids this)",
                    path.display()
                ),
                Err(e2) => log::warn!(
                    "cannot remove pidfile {} ({e}) nor empty it ({e2})",
                    path.display()
                ),
            }
        }
    }
}

/// The user (and group) to run as after opening the capture handles.
struct RunAs {
    user: String,
    group_name: String,
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

impl RunAs {
    /// Looks up `user` and `group` (default: the user's primary group).
    fn resolve(user: &str, group: Option<&str>) -> Result<RunAs, DaemonError> {
        use nix::unistd::{Group, User};
        let fail = |reason: String| DaemonError::Privileges {
            user: user.to_string(),
            reason,
        };
        let u = User::from_name(user)
            .map_err(|e| fail(format!("looking up the user: {e}")))?
            .ok_or_else(|| fail("no such user".into()))?;
        let gid = match group {
            Some(g) => {
                Group::from_name(g)
                    .map_err(|e| fail(format!("looking up group {g}: {e}")))?
                    .ok_or_else(|| fail(format!("no such group {g}")))?
                    .gid
            }
            None => u.gid,
        };
        let group_name = match group {
            Some(g) => g.to_string(),
            None => Group::from_gid(gid)
                .ok()
                .flatten()
                .map_or_else(|| gid.to_string(), |g| g.name),
        };
        Ok(RunAs {
            user: user.to_string(),
            group_name,
            uid: u.uid,
            gid,
        })
    }

    /// Switches to the user, giving the database tree to them first so the writer can
    /// go on, and checks that they can write the database. Returns "user U, group G".
    fn switch(&self, db_path: &Path) -> Result<String, DaemonError> {
        use nix::unistd::Uid;
        let fail = |reason: String| DaemonError::Privileges {
            user: self.user.clone(),
            reason,
        };
        let name = format!("user {}, group {}", self.user, self.group_name);
        if Uid::effective() == self.uid {
            return Ok(name);
        }
        if !Uid::effective().is_root() {
            return Err(fail("only root can switch users".into()));
        }
        chown_tree(db_path, self.uid, self.gid).map_err(|e| {
            fail(format!(
                "giving the database {} to the user: {e}",
                db_path.display()
            ))
        })?;
        nix::unistd::setgroups(&[self.gid]).map_err(|e| fail(format!("setgroups: {e}")))?;
        nix::unistd::setgid(self.gid).map_err(|e| fail(format!("setgid: {e}")))?;
        nix::unistd::setuid(self.uid).map_err(|e| fail(format!("setuid: {e}")))?;
        if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(fail(
                "root privileges could be regained after setuid".into(),
            ));
        }
        use nix::unistd::AccessFlags;
        nix::unistd::access(db_path, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
            fail(format!(
                "the user cannot write the database folder {} ({e}): are its parent \
                 folders open to it?",
                db_path.display()
            ))
        })?;
        log::info!(
            "now running as {name}: from here on this user can no longer open interfaces \
             (one that goes down cannot be reopened, one added by SIGHUP cannot be opened) \
             unless it holds CAP_NET_RAW; restart goprobe for that"
        );
        Ok(name)
    }
}

/// Gives the database tree to the run-as user: every folder and file not already
/// theirs, without following links; a file with several hard links is left alone (it
/// may be somebody else's file linked into the database) and reported.
fn chown_tree(path: &Path, uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    if meta.is_file() && meta.nlink() > 1 {
        log::warn!(
            "{}: has {} hard links: not giving it to the run-as user",
            path.display(),
            meta.nlink()
        );
        return Ok(());
    }
    if meta.uid() != uid.as_raw() || meta.gid() != gid.as_raw() {
        std::os::unix::fs::lchown(path, Some(uid.as_raw()), Some(gid.as_raw()))?;
    }
    if meta.is_dir() {
        for entry in std::fs::read_dir(path)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn world_writable_database_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("parent");
        let db = parent.join("db");
        std::fs::create_dir_all(&db).unwrap();
        chmod(&parent, 0o755);
        chmod(&db, 0o750);
        check_database_path(&db).unwrap();
        // Not there yet: its existing parents are checked.
        check_database_path(&db.join("new/deeper")).unwrap();

        chmod(&db, 0o777);
        let e = check_database_path(&db).unwrap_err().to_string();
        assert!(e.contains("world-writable") && e.contains("0777"), "{e}");
        // A world-writable folder below the database path's existing part is the
        // database's parent then.
        let e = check_database_path(&db.join("new"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("parent folder"), "{e}");
        chmod(&db, 0o750);

        chmod(&parent, 0o777);
        let e = check_database_path(&db).unwrap_err().to_string();
        assert!(e.contains("parent folder") && e.contains("sticky"), "{e}");
        // With the sticky bit (like /tmp) a world-writable parent is fine.
        chmod(&parent, 0o1777);
        check_database_path(&db).unwrap();

        // Links are resolved: a link to a world-writable folder is refused.
        chmod(&db, 0o777);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        assert!(check_database_path(&link).is_err());
    }

    #[test]
    fn the_pidfile_replaces_a_planted_link_instead_of_writing_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        let pidfile = dir.path().join("goprobe.pid");
        std::os::unix::fs::symlink(&victim, &pidfile).unwrap();
        write_pidfile(&pidfile, None).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
        assert!(!std::fs::symlink_metadata(&pidfile)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            std::fs::read_to_string(&pidfile).unwrap(),
            format!("{}\n", std::process::id())
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        remove_pidfile(&pidfile);
        assert!(!pidfile.exists());
        // A stale pidfile (no such process) is taken over; a live one is refused.
        std::fs::write(&pidfile, "999999999\n").unwrap();
        write_pidfile(&pidfile, None).unwrap();
        std::fs::write(&pidfile, "1\n").unwrap();
        assert!(matches!(
            write_pidfile(&pidfile, None),
            Err(DaemonError::AlreadyRunning { pid: 1, .. })
        ));
    }
}
