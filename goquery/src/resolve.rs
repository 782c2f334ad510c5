//! Reverse DNS of the addresses in the top rows (`-r/--resolve`): one lookup thread per
//! address through the system resolver (`getnameinfo`), all bounded by one short
//! deadline; addresses without an answer in time keep their numeric form.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use godb::query::ResultRow;

/// The distinct addresses of the first `rows` rows, in order of appearance.
pub fn addresses(result_rows: &[ResultRow], rows: usize) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for r in result_rows.iter().take(rows) {
        for ip in [r.sip, r.dip].into_iter().flatten() {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
    }
    out
}

/// Looks up the names of `ips`, waiting at most `timeout` in total.
pub fn reverse(ips: &[IpAddr], timeout: Duration) -> HashMap<IpAddr, String> {
    let (tx, rx) = mpsc::channel();
    for ip in ips {
        let tx = tx.clone();
        let ip = *ip;
        // Detached on purpose: a lookup that outlives the deadline is abandoned.
        std::thread::spawn(move || {
            if let Some(name) = lookup(ip) {
                let _ = tx.send((ip, name));
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let mut names = HashMap::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok((ip, name)) => {
                names.insert(ip, name);
            }
            Err(_) => break,
        }
    }
    names
}

/// The name of `ip` from the system resolver, if it has one.
pub fn lookup(ip: IpAddr) -> Option<String> {
    let sa = std::net::SocketAddr::new(ip, 0);
    // Build the C socket address for getnameinfo.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(v4) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(v4.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin);
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(v6) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: v6.ip().octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in6.
            unsafe {
                std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6);
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: the address pointer and length describe `storage`; the host buffer and
    // its length are valid; no service buffer is requested.
    let rc = unsafe {
        libc::getnameinfo(
            (&storage as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    let name = name.to_string_lossy().trim_end_matches('.').to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_limited() {
        let row = |s: &str, d: &str| ResultRow {
            time: None,
            iface: None,
            sip: s.parse().ok(),
            dip: d.parse().ok(),
            dport: None,
            proto: None,
            l7: None,
            counters: godb::Counters::default(),
        };
        let rows = [
            row("10.0.0.1", "10.0.0.2"),
            row("10.0.0.1", "10.0.0.3"),
            row("10.0.0.9", "10.0.0.9"),
        ];
        assert_eq!(addresses(&rows, 2).len(), 3);
        assert_eq!(addresses(&rows, 3).len(), 4);
    }

    #[test]
    fn deadline_is_kept() {
        // Documentation addresses rarely have PTR records; the call must return
        // within the deadline either way.
        let start = Instant::now();
        let _ = reverse(&["192.0.2.1".parse().unwrap()], Duration::from_millis(300));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
