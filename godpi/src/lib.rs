//! godpi: recognises the application-layer protocol of a flow from the first payload
//! bytes and sizes seen in each direction, with ports only as a marked last resort.
//! Labels are ids of godb's stable table ([`godb::l7`]).
//!
//! In the spirit of libprotoident, a flow keeps very little: the first
//! [`HEAD_LEN`] payload bytes and the size of the first payload packet of each
//! direction, and a count of payload packets. Every payload packet is matched against
//! the signatures (which may read the whole packet, and the other direction's stored
//! head) until the flow is decided: a strong signature decides at once; a weak one is
//! kept as a hint and decides once both directions have been seen, when it matches
//! again, or after [`MAX_PACKETS`]; a *candidate* (shapes random data often has, such
//! as RTP) only counts once a second packet confirms it. STUN stays open for
//! [`STUN_WINDOW`] packets because WebRTC flows move on to DTLS. Nothing is allocated,
//! nothing is logged. The signatures, their accuracy against nDPI and their cost are
//! documented in `docs/L7.md`.
//!
//! When no signature matched, [`L7State::label`] falls back to the well-known port
//! table and returns a *port guess* ([`godb::l7::port_guess`], named like `dns?`), so
//! reports never pass a guess off as a detection.
//!
//! ```
//! use godpi::L7State;
//! let mut st = L7State::default();
//! st.observe(true, 6, 50123, 8080, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n");
//! assert!(st.is_decided());
//! assert_eq!(st.label(6, 50123, 8080), godb::l7::HTTP);
//!
//! // Nothing matched: only a port guess, flagged as such.
//! let st = L7State::default();
//! let id = st.label(17, 40000, 53);
//! assert!(godb::l7::is_port_guess(id));
//! assert_eq!(godb::l7::name(id), Some("dns?"));
//! ```

mod ports;
mod sig;

use godb::l7;

/// How many leading payload bytes of each direction a flow keeps.
pub const HEAD_LEN: usize = 16;

/// After this many payload packets (both directions together) an undecided flow is
/// decided with what it has (a weak hint or unknown).
pub const MAX_PACKETS: u8 = 6;

/// STUN flows stay open this long (payload packets): WebRTC and VoIP flows start with
/// STUN and switch to DTLS, which then names the flow.
pub const STUN_WINDOW: u8 = 16;

const SEEN_CLIENT: u8 = 1;
const SEEN_SERVER: u8 = 2;
const DECIDED: u8 = 4;
/// The hint is a [`sig::Verdict::Candidate`]: it counts only once confirmed.
const CANDIDATE: u8 = 8;

/// The layer-7 classification state of one connection: fixed size, `Copy`, 42 bytes.
///
/// Call [`observe`](Self::observe) for every packet with payload until
/// [`is_decided`](Self::is_decided); ask [`label`](Self::label) at any time (it also
/// answers for undecided flows: the weak hint if any, else a port guess).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct L7State {
    c_head: [u8; HEAD_LEN],
    s_head: [u8; HEAD_LEN],
    c_len: u16,
    s_len: u16,
    label: u16,
    hint: u16,
    packets: u8,
    flags: u8,
}

impl L7State {
    /// Feeds one packet of the connection: `from_client` tells its direction, `proto`
    /// is the IP protocol number (6 TCP, 17 UDP), the ports are the connection's
    /// client and server ports (the same for both directions), `payload` the transport
    /// payload. Empty payloads and calls after the decision are ignored.
    pub fn observe(
        &mut self,
        from_client: bool,
        proto: u8,
        client_port: u16,
        server_port: u16,
        payload: &[u8],
    ) {
        if self.is_decided() || payload.is_empty() {
            return;
        }
        self.packets = self.packets.saturating_add(1);
        let seen_bit = if from_client {
            SEEN_CLIENT
        } else {
            SEEN_SERVER
        };
        let first_in_dir = self.flags & seen_bit == 0;
        let verdict = {
            let (own, own_len, other, other_len) = if from_client {
                (&self.c_head, self.c_len, &self.s_head, self.s_len)
            } else {
                (&self.s_head, self.s_len, &self.c_head, self.c_len)
            };
            let other_seen = self.flags & (SEEN_CLIENT | SEEN_SERVER) & !seen_bit != 0;
            let ctx = sig::Ctx {
                proto,
                client_port,
                server_port,
                payload,
                own_first: if first_in_dir {
                    None
                } else {
                    Some(head(own, own_len))
                },
                other: if other_seen {
                    Some(head(other, other_len))
                } else {
                    None
                },
            };
            sig::classify(&ctx)
        };
        if first_in_dir {
            self.flags |= seen_bit;
            let n = payload.len().min(HEAD_LEN);
            let len = u16::try_from(payload.len()).unwrap_or(u16::MAX);
            if from_client {
                self.c_head[..n].copy_from_slice(&payload[..n]);
                self.c_len = len;
            } else {
                self.s_head[..n].copy_from_slice(&payload[..n]);
                self.s_len = len;
            }
        }
        match verdict {
            sig::Verdict::Strong(id) => return self.decide(id),
            sig::Verdict::Weak(id) | sig::Verdict::Candidate(id) => {
                if self.hint == id && id != l7::STUN {
                    // The same signature twice (both directions, or two packets of
                    // one direction) is as good as a strong one.
                    return self.decide(id);
                }
                if self.hint == l7::UNKNOWN || self.flags & CANDIDATE != 0 {
                    self.hint = id;
                    if matches!(verdict, sig::Verdict::Candidate(_)) {
                        self.flags |= CANDIDATE;
                    } else {
                        self.flags &= !CANDIDATE;
                    }
                }
            }
            sig::Verdict::None => {}
        }
        let both = self.flags & (SEEN_CLIENT | SEEN_SERVER) == SEEN_CLIENT | SEEN_SERVER;
        let stun = self.hint == l7::STUN;
        let window = if stun { STUN_WINDOW } else { MAX_PACKETS };
        if both && !stun && self.hint != l7::UNKNOWN && self.flags & CANDIDATE == 0 {
            self.decide(self.hint);
        } else if self.packets >= window {
            self.decide(self.weak_hint());
        }
    }

    /// The hint if it may be reported (a weak match, not an unconfirmed candidate).
    fn weak_hint(&self) -> u16 {
        if self.flags & CANDIDATE != 0 {
            l7::UNKNOWN
        } else {
            self.hint
        }
    }

    fn decide(&mut self, id: u16) {
        self.label = id;
        self.flags |= DECIDED;
    }

    /// Whether the flow's label is final (further packets need not be observed).
    pub fn is_decided(&self) -> bool {
        self.flags & DECIDED != 0
    }

    /// The flow's godb l7 id: the detected protocol, else (no signature matched) a
    /// port guess (`godb::l7::is_port_guess` is true for it), else
    /// [`godb::l7::UNKNOWN`]. Undecided flows answer with their weak hint if any.
    pub fn label(&self, proto: u8, client_port: u16, server_port: u16) -> u16 {
        let id = if self.is_decided() {
            self.label
        } else {
            self.weak_hint()
        };
        if id != l7::UNKNOWN {
            return id;
        }
        ports::guess(proto, client_port, server_port)
            .map(l7::port_guess)
            .unwrap_or(l7::UNKNOWN)
    }

    /// The number of payload packets observed so far (saturating).
    pub fn packets(&self) -> u8 {
        self.packets
    }
}

fn head(buf: &[u8; HEAD_LEN], len: u16) -> &[u8] {
    &buf[..usize::from(len).min(HEAD_LEN)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_small_and_copy() {
        assert!(std::mem::size_of::<L7State>() <= 48);
        let a = L7State::default();
        let b = a;
        assert_eq!(a, b);
    }

    #[test]
    fn strong_signature_decides_at_once() {
        let mut st = L7State::default();
        st.observe(false, 6, 40000, 2222, b"SSH-2.0-OpenSSH_9.6\r\n");
        assert!(st.is_decided());
        assert_eq!(st.label(6, 40000, 2222), l7::SSH);
        // Later packets change nothing.
        st.observe(true, 6, 40000, 2222, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(st.label(6, 40000, 2222), l7::SSH);
    }

    #[test]
    fn nothing_matched_gives_a_flagged_port_guess() {
        let mut st = L7State::default();
        for i in 0..MAX_PACKETS {
            st.observe(i % 2 == 0, 6, 50000, 443, &[0x42, 0x99, 0x13, i]);
        }
        assert!(st.is_decided());
        let id = st.label(6, 50000, 443);
        assert!(l7::is_port_guess(id));
        assert_eq!(l7::base(id), l7::TLS);
        assert_eq!(l7::name(id), Some("tls?"));
        // No well-known port: unknown.
        assert_eq!(st.label(6, 50000, 40001), l7::UNKNOWN);
    }

    #[test]
    fn ftp_decided_by_client_command_after_plain_banner() {
        let mut st = L7State::default();
        st.observe(false, 6, 40000, 3021, b"220 Welcome\r\n");
        assert!(!st.is_decided());
        st.observe(true, 6, 40000, 3021, b"USER anonymous\r\n");
        assert!(st.is_decided());
        assert_eq!(st.label(6, 40000, 3021), l7::FTP);
    }

    #[test]
    fn empty_payload_is_ignored() {
        let mut st = L7State::default();
        st.observe(true, 6, 1, 2, b"");
        assert_eq!(st, L7State::default());
    }
}
