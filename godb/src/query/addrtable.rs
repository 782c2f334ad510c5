//! The aggregation tables of packed keys: IPv4 address pairs (the talk_* queries), IPv6
//! address pairs, and port/protocol/layer-7 triples (apps_*). An open-addressing table
//! of fixed-size keys and their counters, with linear probing, whose callers hash the
//! keys themselves and prefetch slots ahead of the updates.
//!
//! Why its own table: on long scans these tables hold millions of conversations, far
//! more than the caches, and each row costs a cache miss into the table. Callers hash
//! the rows first and prefetch each row's slot ([`AddrTable::prefetch`]) some rows
//! before they update it, so that the misses of consecutive rows overlap instead of
//! being served one after the other. The all-zero key marks an empty slot and is kept
//! aside.

use crate::Counters;

/// Smallest number of slots once the table holds a key.
const MIN_SLOTS: usize = 1024;
/// Tables of at most this many slots stay in the L2 cache: no prefetch needed.
pub(crate) const CACHED_SLOTS: usize = 16 * 1024;

/// A fixed-size key of an [`AddrTable`]; the all-zero value is reserved.
pub(crate) trait PackedKey: Copy + Eq + std::hash::Hash + Default + std::fmt::Debug {
    /// Whether this is the all-zero key.
    fn is_zero(&self) -> bool;
    /// The key's mixed hash: every bit of the key moves the low bits (the slot index)
    /// and the high bits (the owning worker).
    fn packed_hash(&self) -> u64;
}

/// murmur3's finaliser.
#[inline]
pub(crate) fn mix(k: u64) -> u64 {
    let mut x = k;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

impl PackedKey for u64 {
    #[inline]
    fn is_zero(&self) -> bool {
        *self == 0
    }

    #[inline]
    fn packed_hash(&self) -> u64 {
        mix(*self)
    }
}

/// An IPv6 address pair: source then destination, as four native-endian words.
impl PackedKey for [u64; 4] {
    #[inline]
    fn is_zero(&self) -> bool {
        self.iter().all(|w| *w == 0)
    }

    #[inline]
    fn packed_hash(&self) -> u64 {
        const M: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut x = 0u64;
        for w in self {
            x = (x ^ w).wrapping_mul(M);
            x ^= x >> 29;
        }
        mix(x)
    }
}

/// Bits of a packed direction ([`Slot`]) that hold its bytes; the rest hold its packets.
const BYTE_BITS: u32 = 40;
const BYTE_MASK: u64 = (1 << BYTE_BITS) - 1;
/// Packets a packed direction holds below this.
const PKT_LIMIT: u64 = 1 << (64 - BYTE_BITS);

/// A key and its counters, each direction packed into one word: bytes in the low 40
/// bits (up to 1 TiB), packets in the high 24 (up to 16 million): 24 bytes per slot
/// with a one-word key (32 with 32-bit packet counts, 40 with full counters). The
/// table is smaller, so fewer of its updates miss the cache and less fresh memory is
/// zeroed (100M-row talk_conv: 6% less wall time than with 32-byte slots). A
/// sum that would not fit moves to the table's `carry` map (see
/// [`AddrTable::add_hashed`]).
#[derive(Debug, Clone, Copy, Default)]
struct Slot<K> {
    key: K,
    rcvd: u64,
    sent: u64,
}

impl<K> Slot<K> {
    /// The slot's counters, unpacked.
    #[inline]
    fn counters(&self) -> Counters {
        Counters {
            bytes_rcvd: self.rcvd & BYTE_MASK,
            bytes_sent: self.sent & BYTE_MASK,
            pkts_rcvd: self.rcvd >> BYTE_BITS,
            pkts_sent: self.sent >> BYTE_BITS,
        }
    }
}

/// Packed key → summed counters.
#[derive(Debug)]
pub(crate) struct AddrTable<K: PackedKey = u64> {
    slots: Vec<Slot<K>>,
    len: usize,
    zero: Option<Counters>,
    /// Counters of keys whose packed slot counts would have overflowed: a key's
    /// counters are its slot's plus this (rarely used: a terabyte or sixteen million
    /// packets per key, once per that much).
    carry: std::collections::HashMap<K, Counters>,
}

impl<K: PackedKey> Default for AddrTable<K> {
    fn default() -> Self {
        AddrTable {
            slots: Vec::new(),
            len: 0,
            zero: None,
            carry: std::collections::HashMap::new(),
        }
    }
}

#[inline]
fn prefetch_ptr<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and changes no memory, whatever
    // the address (SSE is part of the x86-64 baseline).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl<K: PackedKey> AddrTable<K> {
    /// Distinct keys.
    pub fn len(&self) -> usize {
        self.len + usize::from(self.zero.is_some())
    }

    /// Bytes the table holds.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<K>>()
            + self.carry.capacity() * (std::mem::size_of::<(K, Counters)>() + 1)
    }

    /// Whether the table is larger than the cache, so that updates should be
    /// prefetched.
    #[inline]
    pub fn wants_prefetch(&self) -> bool {
        self.slots.len() > CACHED_SLOTS
    }

    /// Hints the slot of the key hashed `h` into the cache (before [`AddrTable::add_hashed`]).
    #[inline]
    pub fn prefetch(&self, h: u64) {
        if !self.slots.is_empty() {
            let i = h as usize & (self.slots.len() - 1);
            let slot = self.slots.as_ptr().wrapping_add(i);
            prefetch_ptr(slot);
            // A slot whose size does not divide the cache line may end in the next one.
            if 64 % std::mem::size_of::<Slot<K>>() != 0 {
                prefetch_ptr(slot.wrapping_add(1).cast::<u8>().wrapping_sub(1));
            }
        }
    }

    /// Adds `c` to `key`.
    #[inline]
    pub fn add(&mut self, key: K, c: &Counters) {
        self.add_hashed(key, key.packed_hash(), c);
    }

    /// Adds `c` to `key`, whose hash is `h` (`key.packed_hash()`).
    #[inline(always)]
    pub fn add_hashed(&mut self, key: K, h: u64, c: &Counters) {
        if key.is_zero() {
            self.zero.get_or_insert_with(Counters::default).add(c);
            return;
        }
        if (self.len + 1) * 5 > self.slots.len() * 4 {
            self.rebuild((self.slots.len() * 2).max(MIN_SLOTS));
        }
        let mask = self.slots.len() - 1;
        let mut i = h as usize & mask;
        loop {
            let Some(s) = self.slots.get_mut(i) else {
                return;
            };
            if s.key.is_zero() {
                self.len += 1;
                s.key = key;
            } else if s.key != key {
                i = (i + 1) & mask;
                continue;
            }
            if (c.bytes_rcvd | c.bytes_sent | c.pkts_rcvd | c.pkts_sent) >> BYTE_BITS == 0 {
                // Each sum fits 41 bits: no overflow of the u64 additions.
                let br = (s.rcvd & BYTE_MASK) + c.bytes_rcvd;
                let bs = (s.sent & BYTE_MASK) + c.bytes_sent;
                let pr = (s.rcvd >> BYTE_BITS) + c.pkts_rcvd;
                let ps = (s.sent >> BYTE_BITS) + c.pkts_sent;
                if (br | bs) <= BYTE_MASK && (pr | ps) < PKT_LIMIT {
                    s.rcvd = br | pr << BYTE_BITS;
                    s.sent = bs | ps << BYTE_BITS;
                    return;
                }
            }
            Self::carry(&mut self.carry, key, s, c);
            return;
        }
    }

    /// Moves a slot's counters and `c` to the carry map (their sum would not fit the
    /// slot): the slot's counts start again at 0.
    #[cold]
    #[inline(never)]
    fn carry(
        carry: &mut std::collections::HashMap<K, Counters>,
        key: K,
        s: &mut Slot<K>,
        c: &Counters,
    ) {
        let e = carry.entry(key).or_default();
        e.add(&s.counters());
        e.add(c);
        s.rcvd = 0;
        s.sent = 0;
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

    /// Grows the table to `slots` slots (a power of two, larger than now), in place:
    /// the slot vector is extended (for large tables a `mremap` of the same pages,
    /// neither copied nor zeroed again) and the keys are moved to their new places in
    /// it, instead of into a second, fresh table. Only the new part is fresh memory.
    fn rebuild(&mut self, slots: usize) {
        let old = self.slots.len();
        if old == 0 {
            self.slots = vec![Slot::default(); slots];
            return;
        }
        self.slots.resize(slots, Slot::default());
        let mask = slots - 1;
        // Which slots hold a key already at its new place. A key still to move is
        // picked up and placed at the first free or not yet moved slot from its new
        // home on (moved slots are skipped); a key not yet moved found there is picked
        // up in turn. So between a moved key's home and its slot there are only moved
        // keys, which never leave: every probe finds its key as in a fresh table.
        let mut moved = vec![0u64; slots.div_ceil(64)];
        let is_moved = |m: &[u64], i: usize| m[i / 64] >> (i % 64) & 1 == 1;
        for p in 0..old {
            if self.slots[p].key.is_zero() || is_moved(&moved, p) {
                continue;
            }
            let mut cur = std::mem::take(&mut self.slots[p]);
            'place: loop {
                let mut i = cur.key.packed_hash() as usize & mask;
                loop {
                    let here = is_moved(&moved, i);
                    let s = &mut self.slots[i];
                    if s.key.is_zero() || !here {
                        std::mem::swap(s, &mut cur);
                        moved[i / 64] |= 1 << (i % 64);
                        if cur.key.is_zero() {
                            break 'place;
                        }
                        continue 'place;
                    }
                    i = (i + 1) & mask;
                }
            }
        }
    }

    /// Adds every key of `other`.
    pub fn merge(&mut self, other: AddrTable<K>) {
        for (k, c) in other.into_entries() {
            self.add(k, &c);
        }
    }

    /// The keys and their counters, consuming the table.
    pub fn into_entries(self) -> impl Iterator<Item = (K, Counters)> {
        let carry = self.carry;
        self.zero.map(|c| (K::default(), c)).into_iter().chain(
            self.slots
                .into_iter()
                .filter(|s| !s.key.is_zero())
                .map(move |s| {
                    let mut c = s.counters();
                    // (The carry map is almost always empty: no hashing then.)
                    if !carry.is_empty() {
                        if let Some(more) = carry.get(&s.key) {
                            c.add(more);
                        }
                    }
                    (s.key, c)
                }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sums_like_a_hash_map<K: PackedKey + std::hash::Hash>(make: impl Fn(u64) -> K) {
        let mut t = AddrTable::<K>::default();
        let mut want: HashMap<K, Counters> = HashMap::new();
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
            let key = make(key);
            let c = Counters {
                bytes_rcvd: i,
                bytes_sent: 1,
                pkts_rcvd: x % 3,
                pkts_sent: 2,
            };
            if i % 3 == 0 {
                t.prefetch(key.packed_hash());
                t.add_hashed(key, key.packed_hash(), &c);
            } else {
                t.add(key, &c);
            }
            want.entry(key).or_default().add(&c);
            if i == 1000 {
                t.reserve(50_000);
            }
        }
        assert_eq!(t.len(), want.len());
        let mut other = AddrTable::<K>::default();
        other.add(make(7), &Counters::default());
        other.add(make(1 << 50), &Counters::default());
        t.merge(other);
        want.entry(make(7)).or_default();
        want.entry(make(1 << 50)).or_default();
        let got: HashMap<K, Counters> = t.into_entries().collect();
        assert_eq!(got, want);
    }

    #[test]
    fn counts_beyond_the_packed_widths_are_carried() {
        let mut t = AddrTable::<u64>::default();
        let mut want: HashMap<u64, Counters> = HashMap::new();
        for i in 0..6000u64 {
            let key = 1 + i % 7;
            // Values at and around the packed limits (2^40 bytes, 2^24 packets), up
            // to saturation, and small ones that sum past the limits.
            let p = match i % 9 {
                0 => 3_000_000_000,
                1 => u64::from(u32::MAX),
                2 => u64::MAX / 3,
                3 => BYTE_MASK,
                4 => PKT_LIMIT - 1,
                5 => PKT_LIMIT,
                6 => 1 << BYTE_BITS,
                _ => i * 1000,
            };
            let c = Counters {
                bytes_rcvd: p,
                bytes_sent: if i % 3 == 0 { BYTE_MASK - i } else { i },
                pkts_rcvd: if i % 4 == 0 { p >> 20 } else { p },
                pkts_sent: if i % 2 == 0 { 1 } else { p / 2 },
            };
            t.add(key, &c);
            want.entry(key).or_default().add(&c);
        }
        let got: HashMap<u64, Counters> = t.into_entries().collect();
        assert_eq!(got, want);
        // Small counts stay in the slots.
        let mut t = AddrTable::<u64>::default();
        t.add(
            5,
            &Counters {
                pkts_rcvd: 7,
                pkts_sent: 9,
                ..Counters::default()
            },
        );
        assert!(t.carry.is_empty());
        assert_eq!(t.into_entries().next().unwrap().1.pkts_sent, 9);
        assert_eq!(std::mem::size_of::<Slot<u64>>(), 24);
    }

    #[test]
    fn sums_at_the_packed_limits_are_exact() {
        // The largest sums a slot holds, then one more of each: carried, not wrapped.
        for (first, then) in [
            ((BYTE_MASK, 0), (1, 0)),
            ((0, PKT_LIMIT - 1), (0, 1)),
            ((BYTE_MASK - 5, PKT_LIMIT - 3), (5, 2)),
        ] {
            let mut t = AddrTable::<u64>::default();
            let c = |(bytes, pkts): (u64, u64)| Counters {
                bytes_rcvd: bytes,
                bytes_sent: bytes,
                pkts_rcvd: pkts,
                pkts_sent: pkts,
            };
            t.add(3, &c(first));
            assert!(t.carry.is_empty(), "{first:?} fits the slot");
            t.add(3, &c(then));
            t.add(3, &c(then));
            let want = (first.0 + 2 * then.0, first.1 + 2 * then.1);
            assert_eq!(t.into_entries().next().unwrap().1, c(want), "{first:?}");
        }
    }

    #[test]
    fn packed_keys_sum_like_a_hash_map() {
        sums_like_a_hash_map(|k| k);
    }

    #[test]
    fn v6_pairs_sum_like_a_hash_map() {
        // Keys differing in any one of the four words.
        sums_like_a_hash_map(|k| [k >> 48, k & 0xff, (k >> 8) & 0xffff, k >> 24]);
    }
}
