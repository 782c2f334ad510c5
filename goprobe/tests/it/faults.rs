//! Faults: a full disk under the writer, on a real small file system (a tmpfs the
//! test mounts, so `ENOSPC` comes from the kernel, partial writes included). Intervals
//! go through goprobe's writer thread as live capture hands them over; while the disk
//! is full they are held in memory (up to the configured bound, beyond which the oldest
//! are dropped and counted), the committed blocks stay readable, and once space
//! returns the held blocks are written in order. Needs root (mount); skips otherwise.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use goprobe::writer::{Interval, Writer, WriterOptions, WriterTotals};

use crate::common::*;

/// A tmpfs of a given size mounted on a temporary folder; unmounted on drop.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax, e.g. "2m"), or says why it cannot.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("note: not root, cannot mount a small file system: skipping");
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        match o {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                eprintln!(
                    "note: cannot mount a tmpfs ({}): skipping",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("note: cannot run mount ({e}): skipping");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system with one file until `ENOSPC`; returns the file.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0x5a; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        // Smaller pieces for what is left of a partly used page.
        for _ in 0..4096 {
            if f.write(&[0x5a]).is_err() {
                break;
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// An interval of `flows` UDP flows with pseudo-random addresses and ports (so that the
/// columns do not compress away and every block needs fresh pages on disk).
fn interval(timestamp: i64, flows: u32, seed: u32) -> Interval {
    let link = goflow::LinkType::from_dlt(1);
    let mut table = goflow::FlowTable::new();
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    for _ in 0..flows {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let src = Ipv4Addr::from(0x0a00_0000 | (x & 0x00ff_ffff));
        let dst = Ipv4Addr::from(0xc000_0200 | (x >> 24));
        let f = eth_ipv4(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            src,
            dst,
            17,
            (x >> 8) as u16 | 1024,
            (x >> 16) as u16 % 1000 + 1,
            0,
            60 + (x % 900) as usize,
        );
        table.add_packet(link, &f, f.len() as u32, timestamp - 1);
    }
    Interval {
        iface: "eth0".into(),
        timestamp,
        flows: table.rotate(),
        stats: godb::CaptureStats::default(),
        pcap_received: None,
    }
}

/// Waits (at most 20 s) until `done` holds for the writer's progress.
fn wait_until(writer: &Writer, what: &str, done: impl Fn(&WriterTotals) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = writer.progress();
        if done(&p) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {p:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Time stamps and row counts of the stored blocks, every block read in full.
fn stored(db: &Path) -> Vec<(i64, usize)> {
    read_blocks(db, "eth0")
        .iter()
        .map(|b| (b.timestamp, b.rows.len()))
        .collect()
}

/// Packets in the database by the goquery binary of the same build (`None` if it was
/// not built, e.g. `cargo test -p goprobe` alone): it must exit 0 and report no
/// problem with the database.
fn goquery_packets(db: &Path) -> Option<u64> {
    // target/<profile>/deps/it-<hash>  ->  target/<profile>/goquery
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.parent()?.join("goquery");
    if !bin.is_file() {
        eprintln!("note: goquery binary not built (cargo build -p goquery); its check skipped");
        return None;
    }
    let out = Command::new(&bin)
        .env("TZ", "UTC")
        .env_remove("GOPROBE_DB")
        .env("GOPROBE_CONFIG", "")
        .arg("-d")
        .arg(db)
        .args(["sip,dip,proto", "-n", "0", "-e", "json", "-f", "0"])
        .args(["-l", "4000000000"])
        .output()
        .expect("run goquery");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "goquery: {err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("goquery JSON");
    let mut packets = 0;
    for row in v["rows"].as_array().expect("rows") {
        let c = &row["counters"];
        packets += c["pr"].as_u64().unwrap_or(0) + c["ps"].as_u64().unwrap_or(0);
    }
    Some(packets)
}

const T0: i64 = 1_763_769_600;
const FLOWS: u32 = 3000;

#[test]
fn disk_full_holds_intervals_in_memory_and_writes_them_in_order_when_space_returns() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let db_path = fs.path().join("db");
    let db = Arc::new(godb::Database::create(&db_path).unwrap());
    let writer = Writer::spawn_with(
        Arc::clone(&db),
        WriterOptions {
            backlog_bytes: 64 << 20,
            retry: Duration::from_millis(100),
        },
    )
    .unwrap();
    let tx = writer.sender();
    tx.send(interval(T0 + 300, FLOWS, 1)).unwrap();
    wait_until(&writer, "the first block", |p| p.blocks == 1);

    let filler = fs.fill();
    for k in 2..=6 {
        tx.send(interval(T0 + 300 * k, FLOWS, k as u32)).unwrap();
    }
    wait_until(&writer, "five held intervals", |p| p.held == 5);
    // Retries run (every 100 ms) and keep failing; the committed block reads in full.
    std::thread::sleep(Duration::from_millis(400));
    let p = writer.progress();
    assert_eq!((p.blocks, p.held, p.failed), (1, 5, 0), "{p:?}");
    assert_eq!(stored(&db_path), [(T0 + 300, FLOWS as usize)]);
    if let Some(packets) = goquery_packets(&db_path) {
        assert_eq!(packets, u64::from(FLOWS));
    }

    // A new interval arrives while the disk is still full: held behind the others.
    tx.send(interval(T0 + 300 * 7, FLOWS, 7)).unwrap();
    wait_until(&writer, "six held intervals", |p| p.held == 6);

    std::fs::remove_file(&filler).unwrap();
    wait_until(&writer, "the held blocks written", |p| p.held == 0);
    drop(tx);
    let totals = writer.finish();
    assert_eq!(
        (totals.blocks, totals.late, totals.failed, totals.dropped),
        (7, 6, 0, 0),
        "{totals:?}"
    );
    let want: Vec<(i64, usize)> = (1..=7).map(|k| (T0 + 300 * k, FLOWS as usize)).collect();
    assert_eq!(stored(&db_path), want);
    if let Some(packets) = goquery_packets(&db_path) {
        assert_eq!(packets, 7 * u64::from(FLOWS));
    }

    // The database stays appendable by a new writer (a restarted goprobe).
    let mut w = db.writer("eth0").unwrap();
    let block = interval(T0 + 300 * 8, 10, 8)
        .flows
        .into_block(T0 + 300 * 8, godb::CaptureStats::default());
    w.append(&block).unwrap();
    assert_eq!(stored(&db_path).len(), 8);
}

#[test]
fn a_full_backlog_drops_the_oldest_held_intervals_and_counts_them() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let db_path = fs.path().join("db");
    let db = Arc::new(godb::Database::create(&db_path).unwrap());
    // Room for two held blocks of FLOWS rows, not three.
    let per_block = FLOWS as usize * std::mem::size_of::<godb::FlowRow>();
    let writer = Writer::spawn_with(
        Arc::clone(&db),
        WriterOptions {
            backlog_bytes: per_block * 5 / 2,
            retry: Duration::from_millis(100),
        },
    )
    .unwrap();
    let tx = writer.sender();
    tx.send(interval(T0 + 300, FLOWS, 1)).unwrap();
    wait_until(&writer, "the first block", |p| p.blocks == 1);
    let filler = fs.fill();
    for k in 2..=6 {
        tx.send(interval(T0 + 300 * k, FLOWS, k as u32)).unwrap();
    }
    wait_until(&writer, "three dropped intervals", |p| p.dropped == 3);
    let p = writer.progress();
    assert_eq!((p.held, p.failed), (2, 3), "{p:?}");

    std::fs::remove_file(&filler).unwrap();
    wait_until(&writer, "the held blocks written", |p| p.held == 0);
    drop(tx);
    let totals = writer.finish();
    assert_eq!(
        (totals.blocks, totals.late, totals.failed, totals.dropped),
        (3, 2, 3, 3),
        "{totals:?}"
    );
    // The oldest held ones (2, 3, 4) were dropped; 5 and 6 were written.
    let got: Vec<i64> = stored(&db_path).iter().map(|b| b.0).collect();
    assert_eq!(got, [T0 + 300, T0 + 1500, T0 + 1800]);
}

#[test]
fn intervals_still_held_at_exit_are_reported_lost_and_nothing_committed_is_damaged() {
    let Some(fs) = Tmpfs::mount("2m") else {
        return;
    };
    let db_path = fs.path().join("db");
    let db = Arc::new(godb::Database::create(&db_path).unwrap());
    let writer = Writer::spawn_with(
        Arc::clone(&db),
        WriterOptions {
            backlog_bytes: 64 << 20,
            retry: Duration::from_secs(60),
        },
    )
    .unwrap();
    let tx = writer.sender();
    tx.send(interval(T0 + 300, FLOWS, 1)).unwrap();
    wait_until(&writer, "the first block", |p| p.blocks == 1);
    let filler = fs.fill();
    tx.send(interval(T0 + 600, FLOWS, 2)).unwrap();
    tx.send(interval(T0 + 900, FLOWS, 3)).unwrap();
    drop(tx);
    let totals = writer.finish();
    assert_eq!((totals.blocks, totals.failed), (1, 2), "{totals:?}");
    assert_eq!(stored(&db_path), [(T0 + 300, FLOWS as usize)]);
    // Failed appends left bytes past the committed ends; the next append (with space
    // back) cuts them off and stores its block behind the committed one.
    std::fs::remove_file(&filler).unwrap();
    let mut w = db.writer("eth0").unwrap();
    let block = interval(T0 + 1200, 50, 4)
        .flows
        .into_block(T0 + 1200, godb::CaptureStats::default());
    w.append(&block).unwrap();
    assert_eq!(
        stored(&db_path),
        [(T0 + 300, FLOWS as usize), (T0 + 1200, 50)]
    );
}

/// Seconds to the next interval boundary.
fn to_boundary() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    300 - now % 300
}

/// Sleeps past the next interval boundary if it is less than `secs` away, so that a
/// test's steps fall into one interval.
fn avoid_boundary(secs: u64) {
    let left = to_boundary();
    if left < secs {
        eprintln!("note: waiting {left} s for the next interval");
        std::thread::sleep(Duration::from_secs(left + 1));
    }
}

#[test]
fn restarts_after_sigterm_and_kill_9_append_to_the_same_days() {
    use crate::live::*;
    if !can_run() {
        return;
    }
    let net = match Netns::create("r") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let iface = net.capture_if.clone();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    let pidfile = dir.path().join("goprobe.pid");
    write_config(&conf, &db, "", std::slice::from_ref(&iface));
    let args = [
        "-c".as_ref(),
        conf.as_os_str(),
        "--pidfile".as_ref(),
        pidfile.as_os_str(),
    ];
    avoid_boundary(30);
    let mac = net.capture_mac(0);

    // Run 1, stopped with SIGTERM: everything is written.
    let probe = Probe::start(&net, &args);
    net.inject(0, udp_frames(mac, 3, 100));
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert_eq!(stored(&db, &iface), (3, 300, 0), "log:\n{log}");

    // Run 2, killed with SIGKILL: its partial interval was never written, and that is
    // all it loses; the committed data is intact.
    let probe = Probe::start(&net, &args);
    net.inject(0, udp_frames(mac, 5, 200));
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = probe.end(libc::SIGKILL);
    assert_eq!(code, None, "killed by a signal; log:\n{log}");
    assert_eq!(stored(&db, &iface), (3, 300, 0), "log:\n{log}");
    assert!(pidfile.exists(), "a killed goprobe leaves its pidfile");

    // Run 3 starts over the stale pidfile and the released lock, appends to the same
    // day, and the database reads old and new data together.
    let probe = Probe::start(&net, &args);
    net.inject(0, udp_frames(mac, 4, 150));
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert_eq!(stored(&db, &iface), (7, 900, 0), "log:\n{log}");
    let database = godb::Database::open(&db).unwrap();
    let days = database.days(&iface).unwrap();
    assert_eq!(days.len(), 1, "{days:?}");
    assert_eq!(days[0].blocks, 2, "{days:?}");
    assert_eq!(days[0].counters.packets(), 7, "{days:?}");
    if let Some(packets) = goquery_packets(&db) {
        assert_eq!(packets, 7);
    }
    assert!(!pidfile.exists(), "pidfile left behind; log:\n{log}");
}

#[test]
fn live_goprobe_on_a_full_disk_logs_the_failure_once_and_reports_the_loss() {
    use crate::live::*;
    if !can_run() {
        return;
    }
    let Some(fs) = Tmpfs::mount("1m") else {
        return;
    };
    let net = match Netns::create("f") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let iface = net.capture_if.clone();
    let dir = tempfile::tempdir().unwrap();
    let db = fs.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let conf = dir.path().join("goprobe.toml");
    write_config(&conf, &db, "backlog_mib = 1", std::slice::from_ref(&iface));
    avoid_boundary(30);
    let filler = fs.fill();
    let probe = Probe::start(&net, &["-c".as_ref(), conf.as_os_str()]);
    net.inject(0, udp_frames(net.capture_mac(0), 3, 100));
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = probe.stop();
    // The partial interval could not be written, even at the last try: exit 1, the
    // failure logged once (not once per retry) and the loss named.
    assert_eq!(code, Some(1), "log:\n{log}");
    let failures = log
        .lines()
        .filter(|l| l.contains("writeout failed") && l.contains("held in memory"))
        .count();
    assert_eq!(failures, 1, "log:\n{log}");
    assert!(log.contains("No space left on device"), "log:\n{log}");
    assert!(
        log.contains("lost at exit, 1 flows never written"),
        "log:\n{log}"
    );
    assert!(
        log.contains("1 intervals could not be stored"),
        "log:\n{log}"
    );
    std::fs::remove_file(filler).unwrap();
    assert_eq!(stored(&db, &iface), (0, 0, 0));
}

#[test]
fn help_documents_the_backlog_bound() {
    let o = run(&["--help"]);
    assert!(stdout(&o).contains("--backlog-mib"), "{}", stdout(&o));
    let o = run(&["--backlog-mib", "x", "-d", "/nonexistent", "eth0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

/// Mode bits and owner of every folder and file below `root` (the `.lock` files
/// included), as (path, is_dir, mode, uid).
fn tree(root: &Path) -> Vec<(PathBuf, bool, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.is_dir(), m.mode() & 0o7777, m.uid()));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    out
}

#[test]
fn the_database_is_created_0750_0640_for_the_run_as_user_and_the_pidfile_is_cleaned_up() {
    use crate::live::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !can_run() {
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("note: no user 'nobody', skipping");
        return;
    };
    let net = match Netns::create("m") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let iface = net.capture_if.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(
        &conf,
        &db,
        "user = \"nobody\"",
        std::slice::from_ref(&iface),
    );
    // SAFETY: umask only reads and sets this process's file mode mask.
    let umask = unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    } as u32;

    // Run 1: the pidfile in a root-owned folder the user may not write: goprobe cannot
    // remove it after the privilege drop and empties it.
    let root_owned = dir.path().join("run");
    std::fs::create_dir(&root_owned).unwrap();
    std::fs::set_permissions(&root_owned, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pidfile = root_owned.join("goprobe.pid");
    let args = [
        "-c".as_ref(),
        conf.as_os_str(),
        "--pidfile".as_ref(),
        pidfile.as_os_str(),
    ];
    let probe = Probe::start(&net, &args);
    assert_eq!(
        std::fs::metadata(&pidfile).unwrap().uid(),
        nobody.uid.as_raw()
    );
    net.inject(0, udp_frames(net.capture_mac(0), 3, 100));
    std::thread::sleep(Duration::from_millis(500));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert_eq!(stored(&db, &iface), (3, 300, 0), "log:\n{log}");
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        "",
        "log:\n{log}"
    );
    assert!(log.contains("emptied it instead"), "log:\n{log}");

    let entries = tree(&db);
    assert!(entries.len() >= 14, "{entries:?}");
    for (p, is_dir, mode, uid) in &entries {
        let want = if *is_dir { 0o750 } else { 0o640 } & !umask;
        assert_eq!(*mode, want, "{} mode {mode:o}", p.display());
        assert_eq!(*uid, nobody.uid.as_raw(), "{} owner", p.display());
    }

    // Run 2: the pidfile in a folder of the user's own (like /run/goprobe): removed;
    // the emptied pidfile of run 1 did not block this start.
    let own = dir.path().join("own");
    std::fs::create_dir(&own).unwrap();
    std::os::unix::fs::chown(&own, Some(nobody.uid.as_raw()), None).unwrap();
    let pidfile2 = own.join("goprobe.pid");
    let probe = Probe::start(
        &net,
        &[
            "-c".as_ref(),
            conf.as_os_str(),
            "--pidfile".as_ref(),
            pidfile2.as_os_str(),
        ],
    );
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(!pidfile2.exists(), "log:\n{log}");
}

#[test]
fn world_writable_database_paths_are_refused_by_every_command() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o777)).unwrap();
    let db_s = db.to_str().unwrap();
    let pcap = dir.path().join("x.pcap");
    let mut bytes = Vec::new();
    pcap_header(&mut bytes, 1);
    std::fs::write(&pcap, bytes).unwrap();
    for args in [
        vec!["-d", db_s, "lo"],
        vec!["replay", "-d", db_s, "--iface", "x", pcap.to_str().unwrap()],
        vec!["clean", "-d", db_s, "--older-than", "3"],
        vec!["check", "-d", db_s, "lo"],
    ] {
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("refusing database") && err.contains("world-writable"),
            "{args:?}: {err}"
        );
    }
    // Nothing was written into it.
    assert_eq!(std::fs::read_dir(&db).unwrap().count(), 0);
}

#[test]
fn interface_names_that_could_leave_the_database_folder_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db_s = db.to_str().unwrap();
    let pcap = dir.path().join("x.pcap");
    let mut bytes = Vec::new();
    pcap_header(&mut bytes, 1);
    std::fs::write(&pcap, bytes).unwrap();
    let long = "a".repeat(65);
    for name in ["..", "../etc", "a/b", ".hidden", "a\nb", long.as_str()] {
        let o = run(&[
            "replay",
            "-d",
            db_s,
            "--iface",
            name,
            pcap.to_str().unwrap(),
        ]);
        assert_ne!(o.status.code(), Some(0), "replay --iface {name:?}");
        assert!(
            stderr(&o).contains("invalid interface name"),
            "{}",
            stderr(&o)
        );
        let o = run(&["-d", db_s, name]);
        assert_ne!(o.status.code(), Some(0), "live {name:?}");
        assert!(
            stderr(&o).contains("invalid interface name"),
            "{}",
            stderr(&o)
        );
        let o = run(&["clean", "-d", db_s, "--older-than", "1", "--iface", name]);
        assert_ne!(o.status.code(), Some(0), "clean --iface {name:?}");
    }
    let conf = dir.path().join("goprobe.toml");
    std::fs::write(&conf, "[interfaces.\"../../etc\"]\n").unwrap();
    let o = run(&["check", "-c", conf.to_str().unwrap(), "-d", db_s]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("invalid interface name"),
        "{}",
        stderr(&o)
    );
    // Nothing was created anywhere: not even the database folder.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// A pcap of `intervals` 5-minute intervals from `first` on, two UDP packets in each.
fn many_intervals_pcap(path: &Path, first: u32, intervals: u32) {
    let mut out = Vec::new();
    pcap_header(&mut out, 1);
    for k in 0..intervals {
        let f = eth_ipv4(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(10, 0, (k >> 8) as u8, k as u8),
            Ipv4Addr::new(192, 0, 2, 1),
            17,
            40000,
            53,
            0,
            100,
        );
        pcap_record(&mut out, first + 300 * k + 10, &f);
        pcap_record(&mut out, first + 300 * k + 20, &f);
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn replay_killed_in_the_middle_of_writing_leaves_every_committed_block_readable() {
    let Some(fs) = Tmpfs::mount("256m") else {
        return;
    };
    let db = fs.path().join("db");
    // An interval boundary (a multiple of 300).
    let first = 1_700_000_100u32;
    let n = 3000;
    let pcap = fs.path().join("a.pcap");
    many_intervals_pcap(&pcap, first, n);
    let mut child = goprobe()
        .args(["replay", "-d"])
        .arg(&db)
        .args(["--iface", "eth0"])
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it has committed some blocks (it is then in the middle of writing).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let blocks: u32 = godb::Database::open(&db)
            .and_then(|d| d.days("eth0"))
            .map(|days| days.iter().map(|d| d.blocks).sum())
            .unwrap_or(0);
        if blocks >= 50 {
            break;
        }
        assert!(Instant::now() < deadline, "replay wrote nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    if status.success() {
        eprintln!("note: replay finished before it could be killed; nothing more to test");
        return;
    }
    // Every committed block reads in full; they are a prefix of the file's intervals.
    let got = read_blocks(&db, "eth0");
    assert!(
        got.len() >= 50 && got.len() < n as usize,
        "{} blocks",
        got.len()
    );
    eprintln!("killed after {} of {n} blocks", got.len());
    for (k, b) in got.iter().enumerate() {
        assert_eq!(b.timestamp, i64::from(first) + 300 * (k as i64 + 1));
        assert_eq!(b.rows.len(), 1);
        assert_eq!(b.rows[0].counters.packets(), 2);
    }
    // A later capture appends behind them.
    let later = fs.path().join("b.pcap");
    let next = first + 300 * n;
    many_intervals_pcap(&later, next, 5);
    let o = run(&[
        "replay",
        "-d",
        db.to_str().unwrap(),
        "--iface",
        "eth0",
        later.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let all = read_blocks(&db, "eth0");
    assert_eq!(all.len(), got.len() + 5);
    assert_eq!(
        all.last().map(|b| b.timestamp),
        Some(i64::from(next) + 1500)
    );
}

#[test]
fn a_database_the_run_as_user_cannot_reach_is_a_start_up_error() {
    use crate::live::*;
    use std::os::unix::fs::PermissionsExt;
    if !can_run() {
        return;
    }
    if nix::unistd::User::from_name("nobody")
        .ok()
        .flatten()
        .is_none()
    {
        eprintln!("note: no user 'nobody', skipping");
        return;
    }
    let net = match Netns::create("u") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    // The temporary folder stays 0700 and root's: nobody cannot reach the database.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(
        &conf,
        &db,
        "user = \"nobody\"",
        std::slice::from_ref(&net.capture_if),
    );
    let o = Command::new("ip")
        .args(["netns", "exec", &net.capture_ns])
        .arg(env!("CARGO_BIN_EXE_goprobe"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot write the database folder"), "{err}");
}
