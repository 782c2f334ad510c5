//! Live capture end to end: two network namespaces joined by a veth pair; goprobe
//! captures on one end, the test injects crafted Ethernet frames (UDP and TCP of known
//! sizes, plus ARP frames the BPF filter must drop) from the other end through libpcap,
//! stops goprobe with SIGTERM, and finds exactly those packets and bytes in the
//! database. The capturing namespace has no addresses and no forwarding, so its kernel
//! answers nothing and the counts are exact. Needs root and `ip`; skips otherwise.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;

pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub(crate) const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {args:?}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {args:?}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Two namespaces with veth pairs between them; deleted on drop (which also deletes
/// the veth pairs).
pub(crate) struct Netns {
    pub(crate) capture_ns: String,
    inject_ns: String,
    id: String,
    tag: String,
    /// Capturing end of the first pair.
    pub(crate) capture_if: String,
}

impl Netns {
    pub(crate) fn create(tag: &str) -> Result<Netns, String> {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_micros() % 1000)
                .unwrap_or(0)
        );
        let mut n = Netns {
            capture_ns: format!("gp-{tag}-cap-{id}"),
            inject_ns: format!("gp-{tag}-inj-{id}"),
            id,
            tag: tag.to_string(),
            capture_if: String::new(),
        };
        ip(&["netns", "add", &n.capture_ns])?;
        // From here on Drop cleans up whatever exists.
        ip(&["netns", "add", &n.inject_ns])?;
        n.capture_if = n.add_pair(0)?;
        Ok(n)
    }

    /// Capturing end of pair `k`.
    pub(crate) fn cap_if(&self, k: usize) -> String {
        format!("gc{}{k}{}", self.tag, self.id)
    }

    /// Injecting end of pair `k`.
    fn inj_if(&self, k: usize) -> String {
        format!("gi{}{k}{}", self.tag, self.id)
    }

    /// Creates veth pair `k` between the namespaces, up, without IPv6; returns the
    /// capturing end's name.
    fn add_pair(&self, k: usize) -> Result<String, String> {
        let (cap, inj) = (self.cap_if(k), self.inj_if(k));
        ip(&["link", "add", &cap, "type", "veth", "peer", "name", &inj])?;
        ip(&["link", "set", &cap, "netns", &self.capture_ns])?;
        ip(&["link", "set", &inj, "netns", &self.inject_ns])?;
        for (ns, dev) in [(&self.capture_ns, &cap), (&self.inject_ns, &inj)] {
            // No IPv6 autoconfiguration chatter (router solicitations, MLD); ignore
            // kernels without IPv6.
            let _ = Command::new("ip")
                .args(["netns", "exec", ns, "sh", "-c"])
                .arg(format!(
                    "for k in all default {dev}; do \
                     echo 1 > /proc/sys/net/ipv6/conf/$k/disable_ipv6; done"
                ))
                .stderr(Stdio::null())
                .status();
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(cap)
    }

    /// Deletes veth pair `k` (both ends).
    fn del_pair(&self, k: usize) -> Result<(), String> {
        ip(&["-n", &self.capture_ns, "link", "del", &self.cap_if(k)])
    }

    /// Sets the capturing end of pair `k` up or down.
    fn set_up(&self, k: usize, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&[
            "-n",
            &self.capture_ns,
            "link",
            "set",
            &self.cap_if(k),
            state,
        ])
    }

    pub(crate) fn capture_mac(&self, k: usize) -> [u8; 6] {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.capture_ns, "cat"])
            .arg(format!("/sys/class/net/{}/address", self.cap_if(k)))
            .output()
            .expect("read the MAC address");
        let text = String::from_utf8_lossy(&o.stdout);
        let mut mac = [0u8; 6];
        for (i, part) in text.trim().split(':').enumerate().take(6) {
            mac[i] = u8::from_str_radix(part, 16).expect("hex MAC");
        }
        mac
    }

    /// Sends `frames` out of the injecting end of pair `k`, from a thread that joins
    /// the injecting namespace.
    pub(crate) fn inject(&self, k: usize, frames: Vec<Vec<u8>>) {
        let ns_path = format!("/run/netns/{}", self.inject_ns);
        let dev = self.inj_if(k);
        let t = std::thread::spawn(move || {
            use std::os::unix::io::AsRawFd;
            let f = std::fs::File::open(&ns_path).expect("open the namespace");
            // SAFETY: setns on a valid descriptor; it only changes this thread's
            // network namespace, and the thread ends after sending.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let mut cap = pcap::Capture::from_device(dev.as_str())
                .and_then(|c| c.open())
                .expect("open the injecting end");
            for f in &frames {
                cap.sendpacket(f.as_slice()).expect("send a frame");
            }
        });
        t.join().expect("injecting thread");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.capture_ns]);
        let _ = ip(&["netns", "del", &self.inject_ns]);
    }
}

/// Kills goprobe if the test fails before stopping it.
pub(crate) struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: not root, skipping the live capture test");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("note: `ip` is missing, skipping the live capture test");
        return false;
    }
    true
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn wait_for_line(rx: &mpsc::Receiver<String>, needle: &str, log: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                log.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

/// A running goprobe inside the capturing namespace, its log collected line by line.
pub(crate) struct Probe {
    guard: ChildGuard,
    pid: i32,
    rx: mpsc::Receiver<String>,
    log: Vec<String>,
    /// Lines before this index were matched by earlier waits.
    cursor: usize,
}

impl Probe {
    pub(crate) fn start(net: &Netns, args: &[&std::ffi::OsStr]) -> Probe {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.capture_ns])
            .arg(env!("CARGO_BIN_EXE_goprobe"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start goprobe");
        // `ip netns exec` execs goprobe, so the child's pid is goprobe's.
        let pid = child.id() as i32;
        let stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Probe {
            guard: ChildGuard(Some(child)),
            pid,
            rx,
            log: Vec::new(),
            cursor: 0,
        };
        p.wait_for("started");
        p
    }

    /// Waits (at most 20 s) for a log line containing `needle`, after the lines an
    /// earlier wait matched.
    pub(crate) fn wait_for(&mut self, needle: &str) {
        self.wait_all(&[needle]);
    }

    /// Waits (at most 20 s) until each needle is in some log line after the lines an
    /// earlier wait matched, in any order (threads log concurrently).
    fn wait_all(&mut self, needles: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let hits: Vec<Option<usize>> = needles
                .iter()
                .map(|n| {
                    self.log[self.cursor..]
                        .iter()
                        .position(|l| l.contains(n))
                        .map(|i| self.cursor + i)
                })
                .collect();
            if hits.iter().all(Option::is_some) {
                self.cursor = hits.into_iter().flatten().max().unwrap_or(0) + 1;
                return;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            match self.rx.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => break,
            }
        }
        panic!(
            "no log lines with {needles:?}; log:\n{}",
            self.log.join("\n")
        );
    }

    /// Collects log lines for `wait`; true if one (so far) contains `needle`.
    fn saw(&mut self, needle: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(line) => self.log.push(line),
                Err(_) => break,
            }
        }
        self.log[self.cursor..].iter().any(|l| l.contains(needle))
    }

    pub(crate) fn signal(&self, sig: i32) {
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(self.pid, sig) }, 0);
    }

    /// SIGTERM, then waits (at most 20 s) for the exit; returns the exit code and log.
    pub(crate) fn stop(self) -> (Option<i32>, String) {
        self.end(libc::SIGTERM)
    }

    /// Sends `sig`, then waits (at most 20 s) for the exit; returns the exit code (None
    /// if killed by a signal) and the log.
    pub(crate) fn end(mut self, sig: i32) -> (Option<i32>, String) {
        self.signal(sig);
        let deadline = Instant::now() + Duration::from_secs(20);
        let child = self.guard.0.as_mut().expect("child");
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "goprobe did not stop after signal {sig}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.guard.0 = None;
        while let Ok(line) = self.rx.recv_timeout(Duration::from_millis(200)) {
            self.log.push(line);
        }
        (status.code(), self.log.join("\n"))
    }
}

/// `n` UDP frames of `len` bytes from the client to the server, to `mac`.
pub(crate) fn udp_frames(mac: [u8; 6], n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| eth_ipv4(mac, OTHER_MAC, CLIENT, SERVER, 17, 40001, 53, 0, len))
        .collect()
}

/// Packets and bytes stored for `iface`, with the number of non-IP packets.
pub(crate) fn stored(db: &Path, iface: &str) -> (u64, u64, u64) {
    let blocks = read_blocks(db, iface);
    let rows = blocks.iter().flat_map(|b| &b.rows);
    let pkts = rows.clone().map(|r| r.counters.packets()).sum();
    let bytes = rows.map(|r| r.counters.bytes()).sum();
    let non_ip = blocks.iter().map(|b| b.stats.packets_non_ip).sum();
    (pkts, bytes, non_ip)
}

pub(crate) fn write_config(path: &Path, db: &Path, extra: &str, ifaces: &[String]) {
    let with_filters: Vec<(String, &str)> = ifaces.iter().map(|i| (i.clone(), "ip")).collect();
    write_config_filters(path, db, extra, &with_filters);
}

/// A config with a BPF filter per interface.
fn write_config_filters(path: &Path, db: &Path, extra: &str, ifaces: &[(String, &str)]) {
    let mut text = format!("db_path = {:?}\n{extra}\n", db.display().to_string());
    for (i, filter) in ifaces {
        text.push_str(&format!("[interfaces.{i}]\nbpf_filter = {filter:?}\n"));
    }
    std::fs::write(path, text).unwrap();
}

/// `n` ARP frames (42 bytes each).
fn arp_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut arp = vec![0xff; 6];
            arp.extend_from_slice(&OTHER_MAC);
            arp.extend_from_slice(&0x0806u16.to_be_bytes());
            arp.resize(42, 0);
            arp
        })
        .collect()
}

#[test]
fn sighup_adds_and_removes_interfaces_without_losing_the_others_data() {
    if !can_run() {
        return;
    }
    let net = match Netns::create("h") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let (keep, remove, add) = (
        net.cap_if(0),
        net.add_pair(1).unwrap(),
        net.add_pair(2).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(&conf, &db, "", &[keep.clone(), remove.clone()]);
    let mut probe = Probe::start(&net, &["-c".as_ref(), conf.as_os_str()]);
    net.inject(0, udp_frames(net.capture_mac(0), 3, 100));
    net.inject(1, udp_frames(net.capture_mac(1), 2, 100));
    std::thread::sleep(Duration::from_millis(500));

    // The kept interface gets a new filter that also lets ARP through: it reopens its
    // handle and keeps its flows.
    write_config_filters(
        &conf,
        &db,
        "",
        &[(keep.clone(), "ip or arp"), (add.clone(), "ip")],
    );
    probe.signal(libc::SIGHUP);
    probe.wait_all(&[
        "configuration re-read",
        &format!("{add}: capture (re)opened"),
        &format!("{keep}: reopened with the new settings"),
    ]);
    net.inject(0, arp_frames(2));
    net.inject(0, udp_frames(net.capture_mac(0), 4, 100));
    net.inject(1, udp_frames(net.capture_mac(1), 6, 100));
    net.inject(2, udp_frames(net.capture_mac(2), 5, 100));
    std::thread::sleep(Duration::from_millis(700));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(
        log.contains(&format!("stopped capturing on {remove}")),
        "{log}"
    );
    // The kept interface has all 7 IP packets and, with its new filter, the ARP frames;
    // the removed one what came before SIGHUP; the added one what came after.
    assert_eq!(stored(&db, &keep), (7, 700, 2), "log:\n{log}");
    assert_eq!(stored(&db, &remove), (2, 200, 0), "log:\n{log}");
    assert_eq!(stored(&db, &add), (5, 500, 0), "log:\n{log}");
}

#[test]
fn an_interface_that_goes_down_or_disappears_is_reopened() {
    if !can_run() {
        return;
    }
    let net = match Netns::create("d") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let iface = net.cap_if(0);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(&conf, &db, "", std::slice::from_ref(&iface));
    let mut probe = Probe::start(&net, &["-c".as_ref(), conf.as_os_str()]);
    net.inject(0, udp_frames(net.capture_mac(0), 2, 100));
    std::thread::sleep(Duration::from_millis(300));

    // Down and up again. Linux keeps the packet socket of a downed interface (libpcap
    // may or may not report it): either the handle goes on after "up", or goprobe
    // reopens it.
    net.set_up(0, false).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    net.set_up(0, true).unwrap();
    if probe.saw("capture failed", Duration::from_millis(300)) {
        probe.wait_for(&format!("{iface}: capture (re)opened"));
    }
    net.inject(0, udp_frames(net.capture_mac(0), 3, 100));
    std::thread::sleep(Duration::from_millis(300));

    // Gone, then back (a new device under the same name).
    net.del_pair(0).unwrap();
    probe.wait_for("capture failed");
    net.add_pair(0).unwrap();
    probe.wait_for(&format!("{iface}: capture (re)opened"));
    net.inject(0, udp_frames(net.capture_mac(0), 4, 100));
    std::thread::sleep(Duration::from_millis(700));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert_eq!(stored(&db, &iface), (9, 900, 0), "log:\n{log}");
}

#[test]
fn privileges_are_dropped_after_the_handles_are_open() {
    if !can_run() {
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("note: no user 'nobody', skipping");
        return;
    };
    let net = match Netns::create("p") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let iface = net.cap_if(0);
    let dir = tempfile::tempdir().unwrap();
    // The unprivileged user must be able to reach the database below the temp dir.
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(
        &conf,
        &db,
        "user = \"nobody\"",
        std::slice::from_ref(&iface),
    );
    let probe = Probe::start(&net, &["-c".as_ref(), conf.as_os_str()]);
    net.inject(0, udp_frames(net.capture_mac(0), 3, 150));
    std::thread::sleep(Duration::from_millis(700));
    let (code, log) = probe.stop();
    assert_eq!(code, Some(0), "log:\n{log}");
    assert!(log.contains("can no longer open interfaces"), "{log}");
    assert!(log.contains("now running as user nobody"), "{log}");
    assert_eq!(stored(&db, &iface), (3, 450, 0), "log:\n{log}");
    // The blocks were written by the unprivileged user.
    let iface_dir = db.join(&iface);
    assert_eq!(
        std::fs::metadata(&iface_dir).unwrap().uid(),
        nobody.uid.as_raw()
    );
}

#[test]
fn live_capture_on_a_veth_pair_stores_exactly_the_injected_packets() {
    if !can_run() {
        return;
    }
    let net = match Netns::create("l") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let pidfile = dir.path().join("goprobe.pid");
    let conf = dir.path().join("goprobe.toml");
    std::fs::write(
        &conf,
        format!(
            "db_path = {:?}\n[interfaces.{}]\nbpf_filter = \"ip\"\nsnaplen = 128\n",
            db.display().to_string(),
            net.capture_if
        ),
    )
    .unwrap();

    let child = Command::new("ip")
        .args(["netns", "exec", &net.capture_ns])
        .arg(env!("CARGO_BIN_EXE_goprobe"))
        .arg("-c")
        .arg(&conf)
        .arg("--pidfile")
        .arg(&pidfile)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start goprobe");
    let mut guard = ChildGuard(Some(child));
    let Some(child) = guard.0.as_mut() else {
        unreachable!()
    };
    let pid = child.id() as i32;
    let stderr_pipe = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    assert!(
        wait_for_line(&rx, "started", &mut log),
        "goprobe did not start:\n{}",
        log.join("\n")
    );
    // `ip netns exec` execs goprobe, so the child's pid is goprobe's.
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );

    // The traffic: a UDP exchange and a TCP connection, client 10.77.0.2.
    let srv = net.capture_mac(0);
    let to_server = |proto, sport, dport, flags, len| {
        eth_ipv4(
            srv, OTHER_MAC, CLIENT, SERVER, proto, sport, dport, flags, len,
        )
    };
    let to_client = |proto, sport, dport, flags, len| {
        eth_ipv4(
            srv, OTHER_MAC, SERVER, CLIENT, proto, sport, dport, flags, len,
        )
    };
    let mut frames = Vec::new();
    for _ in 0..4 {
        frames.push(to_server(17, 40001, 53, 0, 120));
    }
    for _ in 0..3 {
        frames.push(to_client(17, 53, 40001, 0, 300));
    }
    frames.push(to_server(6, 40002, 80, 0x02, 60)); // SYN
    frames.push(to_client(6, 80, 40002, 0x12, 60)); // SYN-ACK
    for _ in 0..5 {
        frames.push(to_server(6, 40002, 80, 0x18, 200));
    }
    for _ in 0..2 {
        frames.push(to_client(6, 80, 40002, 0x18, 1000));
    }
    // ARP frames: the kernel filter ("ip") must keep them out.
    frames.extend(arp_frames(3));
    let started = now();
    net.inject(0, frames);
    // SIGTERM right away: what reached the kernel's ring before the signal is drained
    // and counted (sending through the veth delivers before `sendpacket` returns).
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopped = now();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "goprobe did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    let log = log.join("\n");
    assert_eq!(status.code(), Some(0), "exit status; log:\n{log}");
    assert!(log.contains("interval ending"), "{log}");
    assert!(!pidfile.exists(), "pidfile left behind");

    let blocks = read_blocks(&db, &net.capture_if);
    assert!(!blocks.is_empty(), "no block written; log:\n{log}");
    // The partial interval is stored with the end of the interval it belongs to.
    let last = blocks.last().map(|b| b.timestamp).unwrap_or(0);
    assert_eq!(last % 300, 0);
    assert_eq!(last, (stopped / 300 + 1) * 300, "log:\n{log}");
    assert!(blocks[0].timestamp > started - started % 300);

    let mut rows: Vec<_> = blocks.iter().flat_map(|b| b.rows.clone()).collect();
    rows.sort_by_key(|r| r.key.proto);
    let received: u64 = blocks.iter().map(|b| b.stats.packets_received).sum();
    let non_ip: u64 = blocks.iter().map(|b| b.stats.packets_non_ip).sum();
    assert_eq!((received, non_ip), (16, 0), "log:\n{log}");
    let got: Vec<_> = rows
        .iter()
        .map(|r| {
            let c = r.counters;
            (
                r.key.sip,
                r.key.dip,
                r.key.proto,
                r.key.dport,
                c.pkts_sent,
                c.bytes_sent,
                c.pkts_rcvd,
                c.bytes_rcvd,
            )
        })
        .collect();
    let (c, s) = (IpAddr::V4(CLIENT), IpAddr::V4(SERVER));
    assert_eq!(
        got,
        [
            (c, s, 6, 80, 6, 60 + 5 * 200, 3, 60 + 2 * 1000),
            (c, s, 17, 53, 4, 4 * 120, 3, 3 * 300),
        ],
        "log:\n{log}"
    );
    drop(guard);
    drop(net);
}

#[test]
fn a_second_signal_exits_at_once() {
    if !can_run() {
        return;
    }
    let net = match Netns::create("s") {
        Ok(n) => n,
        Err(e) => {
            eprintln!("note: cannot create network namespaces ({e}), skipping");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let conf = dir.path().join("goprobe.toml");
    write_config(&conf, &db, "", std::slice::from_ref(&net.capture_if));
    let probe = Probe::start(&net, &["-c".as_ref(), conf.as_os_str()]);
    // Stopped, goprobe collects SIGINT and SIGTERM as pending; on SIGCONT its signal
    // thread takes SIGINT (the shutdown starts) and at once SIGTERM: the second signal.
    probe.signal(libc::SIGSTOP);
    probe.signal(libc::SIGINT);
    probe.signal(libc::SIGTERM);
    probe.signal(libc::SIGCONT);
    let (code, log) = probe.stop();
    assert_eq!(code, Some(128 + libc::SIGTERM), "log:\n{log}");
    assert!(log.contains("again: exiting at once"), "{log}");
}
