//! The aggregation table of address-only keys (the talk_* queries over IPv4 rows):
//! an open-addressing table of 8-byte keys and their counters, with linear probing,
//! that prefetches.
//!
//! Why its own table: on long scans these tables hold millions of conversations, far
//! more than the caches, and each row costs a cache miss into the table. A row's key
//! is queued for a few rows after its slot was prefetched, so the misses of several
//! rows overlap instead of being served one after the other. Keys are the address
//! pair packed into a `u64`; 0 (both addresses 0.0.0.0) marks an empty slot and is
//! kept aside.

use crate::Counters;

/// Rows between a slot's prefetch and its update.
const QUEUE: usize = 8;
/// Smallest number of slots once the table holds a key.
const MIN_SLOTS: usize = 1024;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    key: u64,
    c: Counters,
}

/// Address-pair key → summed counters. Keys added are pending in a short queue until
/// [`AddrTable::settle`] (called by every reading method that takes `&mut self`).
#[derive(Debug, Default)]
pub(crate) struct AddrTable {
    slots: Vec<Slot>,
    len: usize,
    zero: Option<Counters>,
    queue: [Slot; QUEUE],
    head: usize,
    queued: usize,
}

/// murmur3's finaliser: every bit of the key moves the low bits (the slot index).
#[inline]
fn mix(k: u64) -> u64 {
    let mut x = k;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

#[inline]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory, whatever
    // the address (SSE is part of the x86-64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl AddrTable {
    /// Distinct keys, once settled.
    pub fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some()) + self.queued
    }

    /// Bytes the table holds.
    pub fn bytes(&self) -> usize {
        (self.slots.capacity() + QUEUE) * std::mem::size_of::<Slot>()
    }

    /// Adds `c` to `key`.
    #[inline]
    pub fn add(&mut self, key: u64, c: &Counters) {
        if key == 0 {
            self.zero.get_or_insert_with(Counters::default).add(c);
            return;
        }
        if !self.slots.is_empty() {
            let i = mix(key) as usize & (self.slots.len() - 1);
            prefetch(self.slots.as_ptr().wrapping_add(i));
        }
        let new = Slot { key, c: *c };
        if self.queued == QUEUE {
            let old = std::mem::replace(&mut self.queue[self.head], new);
            self.head = (self.head + 1) % QUEUE;
            self.insert(old.key, &old.c);
        } else {
            self.queue[(self.head + self.queued) % QUEUE] = new;
            self.queued += 1;
        }
    }

    /// Inserts the queued keys.
    pub fn settle(&mut self) {
        while self.queued > 0 {
            let s = self.queue[self.head];
            self.head = (self.head + 1) % QUEUE;
            self.queued -= 1;
            self.insert(s.key, &s.c);
        }
    }

    /// Makes room for `additional` more keys without growing.
    pub fn reserve(&mut self, additional: usize) {
        let need = self.len.saturating_add(additional);
        let mut slots = self.slots.len().max(MIN_SLOTS);
        while need.saturating_mul(5) > slots.saturating_mul(4) {
            slots = slots.saturating_mul(2);
        }
        if slots > self.slots.len() {
            self.rebuild(slots);
        }
    }

    fn insert(&mut self, key: u64, c: &Counters) {
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.rebuild((self.slots.len() * 2).max(MIN_SLOTS));
        }
        let mask = self.slots.len() - 1;
        let mut i = mix(key) as usize & mask;
        loop {
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            if s.key == key {
                s.c.add(c);
                return;
            }
            if s.key == 0 {
                *s = Slot { key, c: *c };
                self.len += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    /// Moves the keys into `slots` slots (a power of two, at most 80 % full after).
    fn rebuild(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); slots]);
        let mask = slots - 1;
        for s in old.into_iter().filter(|s| s.key != 0) {
            let mut i = mix(s.key) as usize & mask;
            while self.slots.get(i).is_some_and(|t| t.key != 0) {
                i = (i + 1) & mask;
            }
            if let Some(t) = self.slots.get_mut(i) {
                *t = s;
            }
        }
    }

    /// Adds every key of `other`.
    pub fn merge(&mut self, other: AddrTable) {
        for (k, c) in other.into_entries() {
            self.add(k, &c);
        }
        self.settle();
    }

    /// The keys and their counters, consuming the table.
    pub fn into_entries(mut self) -> impl Iterator<Item = (u64, Counters)> {
        self.settle();
        self.zero.map(|c| (0, c)).into_iter().chain(
            self.slots
                .into_iter()
                .filter(|s| s.key != 0)
                .map(|s| (s.key, s.c)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sums_like_a_hash_map() {
        let mut t = AddrTable::default();
        let mut want: HashMap<u64, Counters> = HashMap::new();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for i in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Many repeats, key 0 included, keys colliding in their low bits.
            let key = match i % 7 {
                0 => 0,
                1 => (x % 50) << 40,
                _ => x % 30_000,
            };
            let c = Counters {
                bytes_rcvd: i,
                bytes_sent: 1,
                pkts_rcvd: x % 3,
                pkts_sent: 2,
            };
            t.add(key, &c);
            want.entry(key).or_default().add(&c);
            if i == 1000 {
                t.reserve(50_000);
            }
        }
        t.settle();
        assert_eq!(t.len(), want.len());
        let mut other = AddrTable::default();
        other.add(7, &Counters::default());
        other.add(1 << 50, &Counters::default());
        t.merge(other);
        want.entry(7).or_default();
        want.entry(1 << 50).or_default();
        let got: HashMap<u64, Counters> = t.into_entries().collect();
        assert_eq!(got, want);
    }
}
