//! Live capture end to end: two network namespaces joined by a veth pair; goprobe
//! captures on one end, the test injects crafted Ethernet frames (UDP and TCP of known
//! sizes, plus ARP frames the BPF filter must drop) from the other end through libpcap,
//! stops goprobe with SIGTERM, and finds exactly those packets and bytes in the
//! database. The capturing namespace has no addresses and no forwarding, so its kernel
//! answers nothing and the counts are exact. Needs root and `ip`; skips otherwise.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::*;

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const OTHER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

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

/// Two namespaces with a veth pair between them; deleted on drop (which also deletes
/// the veth pair).
struct Netns {
    capture_ns: String,
    inject_ns: String,
    capture_if: String,
    inject_if: String,
}

impl Netns {
    fn create(tag: &str) -> Result<Netns, String> {
        let id = format!(
            "{}{}",
            std::process::id() % 100_000,
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_micros() % 1000)
                .unwrap_or(0)
        );
        let n = Netns {
            capture_ns: format!("gp-{tag}-cap-{id}"),
            inject_ns: format!("gp-{tag}-inj-{id}"),
            capture_if: format!("gc{tag}{id}"),
            inject_if: format!("gi{tag}{id}"),
        };
        ip(&["netns", "add", &n.capture_ns])?;
        // From here on Drop cleans up whatever exists.
        ip(&["netns", "add", &n.inject_ns])?;
        ip(&[
            "link",
            "add",
            &n.capture_if,
            "type",
            "veth",
            "peer",
            "name",
            &n.inject_if,
        ])?;
        ip(&["link", "set", &n.capture_if, "netns", &n.capture_ns])?;
        ip(&["link", "set", &n.inject_if, "netns", &n.inject_ns])?;
        for (ns, dev) in [(&n.capture_ns, &n.capture_if), (&n.inject_ns, &n.inject_if)] {
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
        Ok(n)
    }

    fn capture_mac(&self) -> [u8; 6] {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.capture_ns, "cat"])
            .arg(format!("/sys/class/net/{}/address", self.capture_if))
            .output()
            .expect("read the MAC address");
        let text = String::from_utf8_lossy(&o.stdout);
        let mut mac = [0u8; 6];
        for (i, part) in text.trim().split(':').enumerate().take(6) {
            mac[i] = u8::from_str_radix(part, 16).expect("hex MAC");
        }
        mac
    }

    /// Sends `frames` out of the injecting end, from a thread that joins its namespace.
    fn inject(&self, frames: Vec<Vec<u8>>) {
        let ns_path = format!("/run/netns/{}", self.inject_ns);
        let dev = self.inject_if.clone();
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
struct ChildGuard(Option<Child>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn can_run() -> bool {
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
    let srv = net.capture_mac();
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
    for _ in 0..3 {
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&OTHER_MAC);
        arp.extend_from_slice(&0x0806u16.to_be_bytes());
        arp.resize(42, 0);
        frames.push(arp);
    }
    let started = now();
    net.inject(frames);
    // Immediate mode delivers at once; give the capture loop a moment.
    std::thread::sleep(Duration::from_millis(700));
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
