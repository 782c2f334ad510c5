//! Live capture: one thread per interface, each owning its libpcap handle and its
//! `goflow::FlowTable` (no locks on the packet path).
//!
//! The handle runs in immediate mode and non-blocking; when the ring is empty the
//! thread waits in `poll(2)` on libpcap's descriptor for at most [`READ_TIMEOUT_MS`], so
//! the loop notices the 5-minute boundaries and stop requests even when no packet
//! arrives. (libpcap's own read timeout does not help here: on Linux a blocking
//! `pcap_next_ex` keeps polling until a packet comes.) At each wall-clock
//! multiple of [`godb::INTERVAL_SECS`] the table is rotated and the interval, with
//! libpcap's counters turned into per-interval deltas, goes to the writer thread;
//! capture never waits for a writeout. A handle that fails (interface down or gone) is
//! closed and reopened with exponential backoff while the other interfaces carry on.
//! On stop the thread first reads what is left in the kernel's ring (bounded in time),
//! then hands over the partial interval with the end time of the interval it belongs to.

use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam::channel::Sender;
use godb::{CaptureStats, INTERVAL_SECS};
use pcap::{Active, Capture};

use crate::config::InterfaceConfig;
use crate::writer::Interval;

/// The longest the capture loop waits for packets without looking at the clock and its
/// stop flag, in milliseconds.
pub const READ_TIMEOUT_MS: i32 = 100;

/// The longest a stopping thread reads what is left in the kernel's ring.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// First and longest wait before reopening a failed interface.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Errors of opening a capture handle. The message includes libpcap's reason, so the
/// reason is not also the error's `source()`: printing the chain (`{:#}`) would repeat it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// libpcap could not open or activate the interface.
    #[error("cannot open interface {iface}: {reason}")]
    Open {
        /// Interface.
        iface: String,
        /// libpcap's reason.
        reason: pcap::Error,
    },
    /// The BPF filter does not compile.
    #[error("interface {iface}: invalid BPF filter {filter:?}: {reason}")]
    Filter {
        /// Interface.
        iface: String,
        /// The expression.
        filter: String,
        /// libpcap's reason.
        reason: pcap::Error,
    },
}

/// Checks that a filter expression compiles (for Ethernet, the usual link type), so a
/// bad filter is a configuration error even when its interface is not there yet.
pub fn check_filter(iface: &str, filter: &str) -> Result<(), CaptureError> {
    if filter.trim().is_empty() {
        return Ok(());
    }
    let err = |reason| CaptureError::Filter {
        iface: iface.to_string(),
        filter: filter.to_string(),
        reason,
    };
    let dead = Capture::dead(pcap::Linktype::ETHERNET).map_err(err)?;
    dead.compile(filter, true).map(|_| ()).map_err(err)
}

/// Opens and activates a live handle with the interface's settings and installs its
/// filter in the kernel.
pub fn open(iface: &str, cfg: &InterfaceConfig) -> Result<Capture<Active>, CaptureError> {
    let open_err = |reason| CaptureError::Open {
        iface: iface.to_string(),
        reason,
    };
    let mut cap = Capture::from_device(iface)
        .map_err(open_err)?
        .promisc(cfg.promisc)
        .snaplen(i32::try_from(cfg.snaplen).unwrap_or(i32::MAX))
        .buffer_size(i32::try_from(cfg.buffer_size).unwrap_or(i32::MAX))
        .immediate_mode(true)
        .timeout(READ_TIMEOUT_MS)
        .open()
        .and_then(Capture::setnonblock)
        .map_err(open_err)?;
    if !cfg.bpf_filter.trim().is_empty() {
        cap.filter(&cfg.bpf_filter, true)
            .map_err(|reason| CaptureError::Filter {
                iface: iface.to_string(),
                filter: cfg.bpf_filter.clone(),
                reason,
            })?;
    }
    Ok(cap)
}

/// What one non-blocking read gave.
enum Read {
    /// A packet, counted.
    Packet,
    /// A packet at or past the interval's end: not counted yet, copied so that the
    /// caller can rotate first (data, wire length, seconds).
    Boundary(Vec<u8>, u32, i64),
    /// The ring is empty.
    Empty,
}

/// Reads one packet from a non-blocking handle into `table`, unless it belongs to the
/// next interval (see [`Read::Boundary`]).
fn read_one(
    cap: &mut Capture<Active>,
    table: &mut goflow::FlowTable,
    link: goflow::LinkType,
    boundary: i64,
) -> Result<Read, pcap::Error> {
    match cap.next_packet() {
        Ok(packet) => {
            let ts = packet.header.ts.tv_sec;
            if ts >= boundary {
                Ok(Read::Boundary(packet.data.to_vec(), packet.header.len, ts))
            } else {
                table.add_packet(link, packet.data, packet.header.len, ts);
                Ok(Read::Packet)
            }
        }
        Err(pcap::Error::TimeoutExpired) => Ok(Read::Empty),
        Err(e) => Err(e),
    }
}

/// Waits until `fd` is readable (or in error), at most `timeout_ms`. Errors and
/// interruptions just end the wait: the caller reads and sees the real state.
fn wait_readable(fd: std::os::unix::io::RawFd, timeout_ms: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd on the stack, count 1, for the duration of the call.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
}

/// End of the interval that second `secs` belongs to.
pub fn interval_end(secs: i64) -> i64 {
    secs.div_euclid(INTERVAL_SECS) * INTERVAL_SECS + INTERVAL_SECS
}

/// When second `now` has reached the current interval's end `boundary`: the end of the
/// finished interval (its block's time stamp) and the next boundary, aligned to the
/// interval `now` is in (after a long stall, the intervals in between had no packets).
fn rotation(now: i64, boundary: i64) -> Option<(i64, i64)> {
    (now >= boundary).then(|| (boundary, interval_end(now)))
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What the supervisor shares with one capture thread.
#[derive(Default)]
struct Control {
    /// Set when `stop` or `reconfigure` asks for the thread's attention.
    attention: AtomicBool,
    stop: AtomicBool,
    new_config: Mutex<Option<InterfaceConfig>>,
}

/// A running capture thread, as the supervisor sees it.
pub struct CaptureThread {
    name: String,
    config: InterfaceConfig,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl CaptureThread {
    /// Starts capturing on `name`, with `handle` if it is already open (start-up opens
    /// all handles before dropping privileges), otherwise opening it in the thread.
    pub fn spawn(
        name: &str,
        config: &InterfaceConfig,
        handle: Option<Capture<Active>>,
        tx: Sender<Interval>,
    ) -> std::io::Result<CaptureThread> {
        let control = Arc::new(Control::default());
        let mut capturer = Capturer {
            name: name.to_string(),
            config: config.clone(),
            cap: None,
            link: goflow::LinkType::from_dlt(1),
            last: PcapCounts::default(),
            pending: PcapCounts::default(),
            table: goflow::FlowTable::new(),
            boundary: interval_end(now_secs()),
            tx,
            control: Arc::clone(&control),
        };
        if let Some(h) = handle {
            capturer.install(h);
        }
        let thread = std::thread::Builder::new()
            .name(format!("capture-{name}"))
            .spawn(move || capturer.run())?;
        Ok(CaptureThread {
            name: name.to_string(),
            config: config.clone(),
            control,
            thread: Some(thread),
        })
    }

    /// Interface name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings the thread was last given.
    pub fn config(&self) -> &InterfaceConfig {
        &self.config
    }

    /// Asks the thread to reopen its handle with new settings; its flow table, and so
    /// the current interval, is kept.
    pub fn reconfigure(&mut self, config: &InterfaceConfig) {
        self.config = config.clone();
        if let Ok(mut slot) = self.control.new_config.lock() {
            *slot = Some(config.clone());
        }
        self.control.attention.store(true, Ordering::SeqCst);
    }

    /// Asks the thread to hand over its partial interval and end.
    pub fn request_stop(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
        self.control.attention.store(true, Ordering::SeqCst);
    }

    /// Stops the thread and waits until its partial interval is queued for the writer.
    pub fn stop(mut self) {
        self.request_stop();
        self.join();
    }

    /// Waits for the thread (after [`Self::request_stop`]).
    pub fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("{}: the capture thread panicked", self.name);
            }
        }
    }
}

impl Drop for CaptureThread {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.request_stop();
            self.join();
        }
    }
}

/// libpcap's cumulative counters of one handle (32-bit, wrapping).
#[derive(Debug, Clone, Copy, Default)]
struct PcapCounts {
    received: u64,
    dropped: u64,
    if_dropped: u64,
}

struct Capturer {
    name: String,
    config: InterfaceConfig,
    cap: Option<Capture<Active>>,
    link: goflow::LinkType,
    /// Last cumulative counters read from the current handle.
    last: PcapCounts,
    /// Deltas gathered in the current interval (also from handles closed since).
    pending: PcapCounts,
    table: goflow::FlowTable,
    /// End of the current interval.
    boundary: i64,
    tx: Sender<Interval>,
    control: Arc<Control>,
}

impl Capturer {
    fn install(&mut self, cap: Capture<Active>) {
        self.link = goflow::LinkType::from_dlt(cap.get_datalink().0);
        self.last = PcapCounts::default();
        self.cap = Some(cap);
    }

    fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        let mut retry_at: Option<std::time::Instant> = None;
        loop {
            if self.control.attention.load(Ordering::Relaxed) && self.attend() {
                break;
            }
            let Some(cap) = self.cap.as_mut() else {
                self.rotate_if_due(now_secs());
                let due = match retry_at {
                    Some(t) => std::time::Instant::now() >= t,
                    None => true,
                };
                if !due {
                    std::thread::sleep(Duration::from_millis(u64::from(
                        READ_TIMEOUT_MS.unsigned_abs(),
                    )));
                    continue;
                }
                match open(&self.name, &self.config) {
                    Ok(cap) => {
                        log::info!("{}: capture (re)opened", self.name);
                        self.install(cap);
                        backoff = BACKOFF_MIN;
                        retry_at = None;
                    }
                    Err(e) => {
                        log::error!("{e}; retrying in {} s", backoff.as_secs());
                        retry_at = Some(std::time::Instant::now() + backoff);
                        backoff = (backoff * 2).min(BACKOFF_MAX);
                    }
                }
                continue;
            };
            match read_one(cap, &mut self.table, self.link, self.boundary) {
                Ok(Read::Packet) => {}
                Ok(Read::Boundary(data, wire_len, ts)) => {
                    // Rotation needs the handle for its counters, so the packet that
                    // crosses the boundary was copied (once per interval).
                    self.rotate_if_due(ts);
                    self.table.add_packet(self.link, &data, wire_len, ts);
                }
                Ok(Read::Empty) => {
                    // Non-blocking: the ring is empty. Wait for the descriptor.
                    wait_readable(cap.as_raw_fd(), READ_TIMEOUT_MS);
                    self.rotate_if_due(now_secs());
                }
                Err(e) => {
                    log::error!(
                        "{}: capture failed: {e}; closing the handle and reopening it in {} s",
                        self.name,
                        backoff.as_secs()
                    );
                    self.collect_counts();
                    self.cap = None;
                    retry_at = Some(std::time::Instant::now() + backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Reads what the kernel already captured (bounded by [`DRAIN_LIMIT`]), so a stop
    /// or a reopen loses nothing that reached the ring before it.
    fn drain(&mut self) {
        let deadline = std::time::Instant::now() + DRAIN_LIMIT;
        while std::time::Instant::now() < deadline {
            let Some(cap) = self.cap.as_mut() else {
                return;
            };
            match read_one(cap, &mut self.table, self.link, self.boundary) {
                Ok(Read::Packet) => {}
                Ok(Read::Boundary(data, wire_len, ts)) => {
                    self.rotate_if_due(ts);
                    self.table.add_packet(self.link, &data, wire_len, ts);
                }
                Ok(Read::Empty) | Err(_) => return,
            }
        }
        log::warn!(
            "{}: still draining after {} s at stop: the rest is not counted",
            self.name,
            DRAIN_LIMIT.as_secs()
        );
    }

    /// Handles a stop or reconfiguration request; returns true when the thread must end.
    fn attend(&mut self) -> bool {
        self.control.attention.store(false, Ordering::SeqCst);
        if self.control.stop.load(Ordering::SeqCst) {
            self.drain();
            let end = self.boundary;
            self.hand_over(end);
            return true;
        }
        let new = self
            .control
            .new_config
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        if let Some(config) = new {
            self.drain();
            self.collect_counts();
            self.cap = None;
            self.config = config;
            match open(&self.name, &self.config) {
                Ok(cap) => {
                    log::info!("{}: reopened with the new settings", self.name);
                    self.install(cap);
                }
                Err(e) => log::error!("{e}; retrying"),
            }
        }
        false
    }

    /// Reads the handle's cumulative counters and adds what is new to `pending`.
    fn collect_counts(&mut self) {
        let Some(cap) = self.cap.as_mut() else {
            return;
        };
        match cap.stats() {
            Ok(s) => {
                let now = PcapCounts {
                    received: u64::from(s.received),
                    dropped: u64::from(s.dropped),
                    if_dropped: u64::from(s.if_dropped),
                };
                let delta = |new: u64, old: u64| {
                    // The counters are 32 bits wide and wrap.
                    (new.wrapping_sub(old)) & u64::from(u32::MAX)
                };
                self.pending.received += delta(now.received, self.last.received);
                self.pending.dropped += delta(now.dropped, self.last.dropped);
                self.pending.if_dropped += delta(now.if_dropped, self.last.if_dropped);
                self.last = now;
            }
            Err(e) => log::warn!("{}: cannot read libpcap's counters: {e}", self.name),
        }
    }

    fn rotate_if_due(&mut self, now: i64) {
        if let Some((end, next)) = rotation(now, self.boundary) {
            self.hand_over(end);
            self.boundary = next;
        }
    }

    /// Rotates the table and sends the interval ending at `end` to the writer.
    fn hand_over(&mut self, end: i64) {
        self.collect_counts();
        let pending = std::mem::take(&mut self.pending);
        let stats = CaptureStats {
            packets_dropped: pending.dropped,
            packets_if_dropped: pending.if_dropped,
            ..CaptureStats::default()
        };
        let interval = Interval {
            iface: self.name.clone(),
            timestamp: end,
            flows: self.table.rotate(),
            stats,
            pcap_received: Some(pending.received),
        };
        if self.tx.send(interval).is_err() {
            log::error!(
                "{}: the writer thread is gone: the interval ending {} is lost",
                self.name,
                crate::writer::format_time(end)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_end_is_the_next_multiple() {
        assert_eq!(interval_end(0), 300);
        assert_eq!(interval_end(299), 300);
        assert_eq!(interval_end(300), 600);
        assert_eq!(interval_end(-1), 0);
    }

    #[test]
    fn rotation_happens_at_the_boundary_and_realigns() {
        assert_eq!(rotation(299, 300), None);
        assert_eq!(rotation(300, 300), Some((300, 600)));
        assert_eq!(rotation(599, 300), Some((300, 600)));
        // The process was stopped for a while: one block, then aligned again.
        assert_eq!(rotation(1000, 300), Some((300, 1200)));
    }

    #[test]
    fn filters_are_checked() {
        assert!(check_filter("x", "").is_ok());
        assert!(check_filter("x", "udp port 53 or tcp").is_ok());
        let e = check_filter("eth9", "udp prot 53").unwrap_err();
        let libpcap = Capture::dead(pcap::Linktype::ETHERNET)
            .unwrap()
            .compile("udp prot 53", true)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!libpcap.is_empty());
        // As the binary prints it (the whole chain): interface, filter, libpcap's
        // reason once.
        assert_eq!(
            format!("{:#}", anyhow::Error::new(e)),
            format!("interface eth9: invalid BPF filter \"udp prot 53\": {libpcap}")
        );
    }
}
