//! Fragment tracking: remembers the ports of each first fragment so that the later
//! fragments of the same datagram (which carry no transport header) are counted in
//! the same connection.
//!
//! A fixed array of [`SLOTS`] entries, allocated once, direct-mapped by a hash of the
//! key (source, destination, identification, protocol): a newer datagram that hashes to
//! the same slot replaces the older one. Entries older than [`TIMEOUT_SECS`] (packet
//! time) are ignored. Bounded memory, no allocation per packet, no cleanup pass.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

/// Number of datagrams remembered at once.
pub const SLOTS: usize = 1024;

/// A first fragment is forgotten this many seconds (of packet time) after it was seen
/// (RFC 8200 and Linux wait 60 s for reassembly).
pub const TIMEOUT_SECS: i64 = 60;

/// Identifies one fragmented datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FragKey {
    /// Source address (IPv4 in the first four bytes).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// IPv4 identification or IPv6 fragment-header identification.
    pub ident: u32,
    /// Upper-layer protocol.
    pub proto: u8,
    /// IPv6 rather than IPv4.
    pub v6: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: FragKey,
    sport: u16,
    dport: u16,
    ts: i64,
    used: bool,
}

/// The bounded, expiring map from fragmented datagram to its ports.
pub struct FragTracker {
    slots: Box<[Slot]>,
}

impl Default for FragTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl FragTracker {
    /// An empty tracker (one allocation of [`SLOTS`] entries).
    pub fn new() -> Self {
        FragTracker {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }

    /// Bytes of the slots (allocated once, whatever the traffic).
    pub const fn size_bytes() -> usize {
        SLOTS * std::mem::size_of::<Slot>()
    }

    fn index(key: &FragKey) -> usize {
        let mut h = FxHasher::default();
        key.hash(&mut h);
        (h.finish() as usize) % SLOTS
    }

    /// Remembers the ports of the datagram whose first fragment was seen at `ts`.
    pub fn insert(&mut self, key: FragKey, sport: u16, dport: u16, ts: i64) {
        if let Some(slot) = self.slots.get_mut(Self::index(&key)) {
            *slot = Slot {
                key,
                sport,
                dport,
                ts,
                used: true,
            };
        }
    }

    /// The ports of the datagram, if its first fragment was seen within the timeout.
    pub fn lookup(&self, key: &FragKey, ts: i64) -> Option<(u16, u16)> {
        let slot = self.slots.get(Self::index(key))?;
        (slot.used
            && slot.key == *key
            && ts.saturating_sub(slot.ts).saturating_abs() <= TIMEOUT_SECS)
            .then_some((slot.sport, slot.dport))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ident: u32) -> FragKey {
        FragKey {
            src: [1; 16],
            dst: [2; 16],
            ident,
            proto: 17,
            v6: true,
        }
    }

    #[test]
    fn remembers_and_expires() {
        let mut t = FragTracker::new();
        t.insert(key(7), 5000, 53, 100);
        assert_eq!(t.lookup(&key(7), 100), Some((5000, 53)));
        assert_eq!(t.lookup(&key(7), 160), Some((5000, 53)));
        assert_eq!(t.lookup(&key(7), 161), None);
        assert_eq!(t.lookup(&key(8), 100), None);
        let mut other = key(7);
        other.proto = 6;
        assert_eq!(t.lookup(&other, 100), None);
    }

    #[test]
    fn stays_bounded() {
        let mut t = FragTracker::new();
        for i in 0..(SLOTS as u32 * 4) {
            t.insert(key(i), 1, 2, 0);
        }
        assert_eq!(t.slots.len(), SLOTS);
        // The newest datagram is always found.
        assert_eq!(t.lookup(&key(SLOTS as u32 * 4 - 1), 0), Some((1, 2)));
    }
}
