//! The aggregation core: the rows of one block, filtered by the condition's mask, summed
//! into a hash table keyed by the queried attributes; then the tables of the workers
//! merged, ordered and cut.
//!
//! The key is a fixed-size `Copy` struct (unqueried attributes stay zero) with its own
//! one-word hash, so adding a row never allocates; the table grows amortised. Rows
//! without IPv6 addresses use a compact 24-byte key in a table of their own. The
//! common shapes have packed keys in open-addressing tables ([`AddrTable`]) filled
//! straight from the columns, each row's slot prefetched a few rows before it is added:
//! IPv4 and IPv6 address pairs of the address-only groupings (talk_*) and
//! port/protocol/layer-7 triples (apps_*).

use std::net::IpAddr;

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

use super::addrtable::{mix, AddrTable, PackedKey};
use super::attr::AttributeSet;
use super::condition::Cols;
use super::result::ResultRow;
use super::statement::{Direction, SortBy, Statement};
use crate::Counters;

/// The grouping key of a result row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Key {
    sip: [u8; 16],
    dip: [u8; 16],
    time: i64,
    iface: u16,
    dport: u16,
    l7: u16,
    proto: u8,
    /// 4 for IPv4 addresses (in the first four bytes), 6 for IPv6, 0 when no address is
    /// part of the key.
    ipver: u8,
}

impl Hash for Key {
    /// One mixed 64-bit word for the whole key (the table's hasher passes it through):
    /// a multiply-xorshift per 64-bit word and murmur3's finaliser, so both the low
    /// bits (bucket) and the high bits (control byte) are well spread.
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        const M: u64 = 0x9e37_79b9_7f4a_7c15;
        let s = u128::from_ne_bytes(self.sip);
        let d = u128::from_ne_bytes(self.dip);
        let packed = u64::from(self.dport)
            | u64::from(self.proto) << 16
            | u64::from(self.l7) << 24
            | u64::from(self.iface) << 40
            | u64::from(self.ipver) << 56;
        let mut x = packed ^ (self.time as u64).rotate_left(32);
        for w in [s as u64, (s >> 64) as u64, d as u64, (d >> 64) as u64] {
            x = (x ^ w).wrapping_mul(M);
            x ^= x >> 29;
        }
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        h.write_u64(x);
    }
}

/// Passes the key's own mixed hash through.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Key`; a plain FNV-1a keeps the hasher correct for any input.
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// The key of a row without IPv6 addresses (IPv4 addresses, or none queried): 24
/// bytes instead of [`Key`]'s 48, so the tables of address queries, mostly IPv4, take
/// about a third less memory (and fresh memory is most of a query's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Key4 {
    time: i64,
    sip: [u8; 4],
    dip: [u8; 4],
    iface: u16,
    dport: u16,
    l7: u16,
    proto: u8,
    /// 4 for IPv4 addresses, 0 when no address is part of the key.
    ipver: u8,
}

impl Key4 {
    /// The compact form of `k`, if it has no IPv6 address.
    #[inline]
    fn from_key(k: &Key) -> Option<Key4> {
        (k.ipver != 6).then(|| Key4 {
            time: k.time,
            sip: [k.sip[0], k.sip[1], k.sip[2], k.sip[3]],
            dip: [k.dip[0], k.dip[1], k.dip[2], k.dip[3]],
            iface: k.iface,
            dport: k.dport,
            l7: k.l7,
            proto: k.proto,
            ipver: k.ipver,
        })
    }

    /// The full key.
    #[inline]
    fn to_key(self) -> Key {
        let mut k = Key {
            time: self.time,
            iface: self.iface,
            dport: self.dport,
            l7: self.l7,
            proto: self.proto,
            ipver: self.ipver,
            ..Key::default()
        };
        k.sip[..4].copy_from_slice(&self.sip);
        k.dip[..4].copy_from_slice(&self.dip);
        k
    }
}

impl Hash for Key4 {
    /// One mixed word, like [`Key`]'s.
    #[inline]
    fn hash<H: Hasher>(&self, h: &mut H) {
        const M: u64 = 0x9e37_79b9_7f4a_7c15;
        let packed = u64::from(self.dport)
            | u64::from(self.proto) << 16
            | u64::from(self.l7) << 24
            | u64::from(self.iface) << 40
            | u64::from(self.ipver) << 56;
        let addrs =
            u64::from(u32::from_ne_bytes(self.sip)) | u64::from(u32::from_ne_bytes(self.dip)) << 32;
        let mut x = packed ^ (self.time as u64).rotate_left(32);
        x = (x ^ addrs).wrapping_mul(M);
        x ^= x >> 29;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^= x >> 33;
        h.write_u64(x);
    }
}

/// The key of an IPv4 row that has nothing but its addresses (the talk_* queries):
/// source address in the low, destination in the high 32 bits; 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AddrKey(u64);

impl AddrKey {
    /// The address-only form of `k`, if it is an IPv4 key with no other attribute.
    #[inline]
    fn from_key(k: &Key) -> Option<AddrKey> {
        (k.ipver == 4 && k.time == 0 && k.iface == 0 && k.dport == 0 && k.proto == 0 && k.l7 == 0)
            .then(|| {
                let s = u32::from_ne_bytes([k.sip[0], k.sip[1], k.sip[2], k.sip[3]]);
                let d = u32::from_ne_bytes([k.dip[0], k.dip[1], k.dip[2], k.dip[3]]);
                AddrKey(u64::from(s) | u64::from(d) << 32)
            })
    }

    /// The full key.
    #[inline]
    fn to_key(self) -> Key {
        let mut k = Key {
            ipver: 4,
            ..Key::default()
        };
        k.sip[..4].copy_from_slice(&(self.0 as u32).to_ne_bytes());
        k.dip[..4].copy_from_slice(&((self.0 >> 32) as u32).to_ne_bytes());
        k
    }
}

/// The key of a row grouped by port, protocol and layer 7 only (apps_port,
/// apps_dpi, ...): the three packed into one word, for the [`AddrTable`] of small keys.
#[inline]
fn small_key(k: &Key) -> Option<u64> {
    (k.ipver == 0 && k.time == 0 && k.iface == 0)
        .then(|| u64::from(k.dport) | u64::from(k.proto) << 16 | u64::from(k.l7) << 24)
}

/// The full key of a packed small key.
#[inline]
fn from_small_key(v: u64) -> Key {
    Key {
        dport: v as u16,
        proto: (v >> 16) as u8,
        l7: (v >> 24) as u16,
        ..Key::default()
    }
}

type KeyMap = HashMap<Key, Counters, BuildHasherDefault<KeyHasher>>;
type Key4Map = HashMap<Key4, Counters, BuildHasherDefault<KeyHasher>>;

/// Bytes one table entry takes, counting the control byte of the hash table.
pub(crate) const ENTRY_BYTES: usize = std::mem::size_of::<(Key, Counters)>() + 1;
/// Bytes one compact (IPv4) entry takes.
const ENTRY4_BYTES: usize = std::mem::size_of::<(Key4, Counters)>() + 1;

fn hash_of<K: Hash>(k: &K) -> u64 {
    BuildHasherDefault::<KeyHasher>::default().hash_one(k)
}

/// The counter columns of a block.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CounterCols<'a> {
    pub bytes_rcvd: &'a [u64],
    pub bytes_sent: &'a [u64],
    pub pkts_rcvd: &'a [u64],
    pub pkts_sent: &'a [u64],
}

/// The worker owning a key whose packed hash is `h`, of `workers` (the hash's high
/// half, which the tables do not use for their slot index, scaled to the count).
#[inline]
pub(crate) fn owner(h: u64, workers: usize) -> usize {
    (((h >> 32) * workers as u64) >> 32) as usize
}

/// How many rows ahead of the one being added a stream of hashed rows prefetches its
/// slot: a steady stream of misses in flight (prefetching a group of 32 at once and
/// adding it while the next is fetched stalls on the bursts: 30 % slower per row on
/// a table of 4M slots).
const PREFETCH_AHEAD: usize = 16;

/// The last [`PREFETCH_AHEAD`] hashed rows of a stream, their slots prefetched,
/// waiting to be added: a ring, the oldest added when a new one comes in.
#[derive(Debug, Clone, Copy)]
struct Pending<K> {
    rows: [PartRow<K>; PREFETCH_AHEAD],
    /// Rows pushed so far; the ring holds the last `min(n, PREFETCH_AHEAD)`.
    n: usize,
}

impl<K: PackedKey> Default for Pending<K> {
    fn default() -> Self {
        Pending {
            rows: [PartRow::default(); PREFETCH_AHEAD],
            n: 0,
        }
    }
}

/// A row of a [`Partition`]: an address-only key, its hash and its counters (those
/// of a run of adjacent rows with that key, summed).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PartRow<K> {
    key: K,
    hash: u64,
    sum: Counters,
}

/// The rows of one chunk of an address-only grouping (talk_*) in shared mode, sorted
/// out by the worker that owns their key: built once, by the worker that widened the
/// chunk ([`Table::partition_block`]), so that every row is keyed, run-summed, hashed
/// and its owner found once instead of by every worker; each worker then adds only
/// its own rows ([`Table::add_partition`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Partition {
    /// IPv4 address pairs, one list per worker.
    v4: Vec<Vec<PartRow<u64>>>,
    /// IPv6 address pairs, one list per worker.
    v6: Vec<Vec<PartRow<[u64; 4]>>>,
    /// Rows of the chunk (taken or filtered out).
    rows: usize,
}

impl Partition {
    /// Empties the lists (keeping their memory) for `workers` workers.
    fn reset(&mut self, workers: usize) {
        self.v4.resize_with(workers, Vec::new);
        self.v6.resize_with(workers, Vec::new);
        self.v4.iter_mut().for_each(Vec::clear);
        self.v6.iter_mut().for_each(Vec::clear);
        self.rows = 0;
    }
}

/// The packed keys of an address-only grouping (talk_*) over a block's columns: the
/// IPv4 rows `0..n4` (see [`AddrKey`]) and the IPv6 rows `v4..v4 + n6` (see
/// [`v6_pair`]); fewer than the block's rows only when a column is short.
struct AddrKeys<'a> {
    sip: bool,
    dip: bool,
    s4: &'a [[u8; 4]],
    d4: &'a [[u8; 4]],
    s6: &'a [[u8; 16]],
    d6: &'a [[u8; 16]],
    v4: usize,
    n4: usize,
    n6: usize,
}

impl<'a> AddrKeys<'a> {
    /// The keys of `rows` rows of `cols` for the addresses in `a`.
    fn new(a: AttributeSet, cols: &Cols<'a>, rows: usize) -> AddrKeys<'a> {
        let (sip, dip) = (a.sip, a.dip);
        let v4 = cols.rows_v4.min(rows);
        let n4 = v4.min(if sip { cols.sip4.len() } else { v4 }).min(if dip {
            cols.dip4.len()
        } else {
            v4
        });
        let n6 = (rows - v4)
            .min(if sip { cols.sip6.len() } else { rows })
            .min(if dip { cols.dip6.len() } else { rows });
        AddrKeys {
            sip,
            dip,
            s4: cols.sip4,
            d4: cols.dip4,
            s6: cols.sip6,
            d6: cols.dip6,
            v4,
            n4,
            n6,
        }
    }

    /// The key of IPv4 row `i` (below `n4`).
    #[inline(always)]
    fn v4_key(&self, i: usize) -> u64 {
        let four = |s: &[[u8; 4]], on: bool| {
            if on {
                u64::from(u32::from_ne_bytes(s[i]))
            } else {
                0
            }
        };
        four(self.s4, self.sip) | four(self.d4, self.dip) << 32
    }

    /// The key of IPv6 row `i` (from `v4` on, below `v4 + n6`).
    #[inline(always)]
    fn v6_key(&self, i: usize) -> [u64; 4] {
        const NONE: [u8; 16] = [0; 16];
        let s = if self.sip {
            &self.s6[i - self.v4]
        } else {
            &NONE
        };
        let d = if self.dip {
            &self.d6[i - self.v4]
        } else {
            &NONE
        };
        v6_pair(s, d)
    }
}

/// The IPv6 form of an address-only key (see [`AddrTable`]'s `[u64; 4]` keys).
#[inline]
fn v6_pair(sip: &[u8; 16], dip: &[u8; 16]) -> [u64; 4] {
    let w = |a: &[u8; 16], i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&a[8 * i..8 * i + 8]);
        u64::from_ne_bytes(b)
    };
    [w(sip, 0), w(sip, 1), w(dip, 0), w(dip, 1)]
}

/// The address-only IPv6 form of `k`, if it is an IPv6 key with no other attribute.
#[inline]
fn v6_key(k: &Key) -> Option<[u64; 4]> {
    (k.ipver == 6 && k.time == 0 && k.iface == 0 && k.dport == 0 && k.proto == 0 && k.l7 == 0)
        .then(|| v6_pair(&k.sip, &k.dip))
}

/// The full key of an address-only IPv6 key.
#[inline]
fn from_v6_key(w: [u64; 4]) -> Key {
    let mut k = Key {
        ipver: 6,
        ..Key::default()
    };
    k.sip[..8].copy_from_slice(&w[0].to_ne_bytes());
    k.sip[8..].copy_from_slice(&w[1].to_ne_bytes());
    k.dip[..8].copy_from_slice(&w[2].to_ne_bytes());
    k.dip[8..].copy_from_slice(&w[3].to_ne_bytes());
    k
}

/// One worker's table and scratch space.
#[derive(Debug, Default)]
pub(crate) struct Table {
    /// Rows with IPv6 addresses and other attributes.
    map: KeyMap,
    /// Rows without IPv6 addresses, with the compact key...
    map4: Key4Map,
    /// ... or only their IPv4 addresses (see [`AddrKey`]) ...
    map_a: AddrTable,
    /// ... or no address, time or interface at all (see [`small_key`]).
    map_s: AddrTable,
    /// IPv6 rows keyed by their addresses alone.
    map_a6: AddrTable<[u64; 4]>,
    pub totals: Counters,
    /// Rows this table accounts for (in shared mode, worker 0 counts every block).
    pub rows_scanned: u64,
    /// Rows this table has looked at (its own keys or not).
    rows_seen: u64,
    /// Set when every worker sees every row and keeps the keys it owns: (this
    /// worker, number of workers). See [`owner`].
    pub part: Option<(usize, usize)>,
    mask: Vec<bool>,
    pool: Vec<Vec<bool>>,
}

impl Table {
    /// Bytes the table holds now.
    pub fn bytes(&self) -> usize {
        self.map
            .capacity()
            .saturating_mul(ENTRY_BYTES)
            .saturating_add(self.map4.capacity().saturating_mul(ENTRY4_BYTES))
            .saturating_add(self.map_a.bytes())
            .saturating_add(self.map_s.bytes())
            .saturating_add(self.map_a6.bytes())
    }

    /// Number of distinct keys.
    pub fn len(&self) -> usize {
        self.map.len() + self.map4.len() + self.map_a.len() + self.map_s.len() + self.map_a6.len()
    }

    /// Whether this worker keeps the key hashed `h`.
    #[inline]
    fn mine(&self, h: u64) -> bool {
        self.part.map_or(true, |(me, n)| owner(h, n) == me)
    }

    /// Adds `c` to key `k` if this worker owns it; whether it did.
    #[inline]
    fn put(&mut self, k: Key, c: &Counters) -> bool {
        if let Some(v) = small_key(&k) {
            let h = mix(v);
            if !self.mine(h) {
                return false;
            }
            self.map_s.add_hashed(v, h, c);
        } else if let Some(ka) = AddrKey::from_key(&k) {
            let h = mix(ka.0);
            if !self.mine(h) {
                return false;
            }
            self.map_a.add_hashed(ka.0, h, c);
        } else if let Some(k6) = v6_key(&k) {
            let h = k6.packed_hash();
            if !self.mine(h) {
                return false;
            }
            self.map_a6.add_hashed(k6, h, c);
        } else if let Some(k4) = Key4::from_key(&k) {
            if !self.mine(hash_of(&k4)) {
                return false;
            }
            self.map4.entry(k4).or_default().add(c);
        } else {
            if !self.mine(hash_of(&k)) {
                return false;
            }
            self.map.entry(k).or_default().add(c);
        }
        true
    }

    /// The entries, full keys, consuming the table.
    fn into_entries(self) -> impl Iterator<Item = (Key, Counters)> {
        self.map_s
            .into_entries()
            .map(|(k, c)| (from_small_key(k), c))
            .chain(
                self.map_a
                    .into_entries()
                    .map(|(k, c)| (AddrKey(k).to_key(), c)),
            )
            .chain(self.map_a6.into_entries().map(|(k, c)| (from_v6_key(k), c)))
            .chain(self.map4.into_iter().map(|(k, c)| (k.to_key(), c)))
            .chain(self.map)
    }

    /// Rows are coming (`rows`, `rows_v4` of them IPv4: the rest of a block): when
    /// most rows so far were new keys, the table grows once for this worker's share
    /// of them instead of doubling repeatedly while they are added.
    pub fn expect(&mut self, stmt: &Statement, rows: usize, rows_v4: usize) {
        let seen = usize::try_from(self.rows_seen).unwrap_or(usize::MAX);
        if seen > 0 && self.len().saturating_mul(2) > seen {
            // Never more than the memory limit allows (about 64 bytes a key with the
            // tables' spare room): a block claiming many rows must end in a
            // `MemoryLimit` error, not in one huge allocation.
            let share = (rows / self.part.map_or(1, |(_, n)| n.max(1))).min(stmt.memory_limit / 64);
            if with_addr_only(stmt) {
                self.map_a.reserve(share.min(rows_v4));
            } else {
                self.map4.reserve(share.min(rows_v4));
            }
        }
    }

    /// Adds the rows of one block (those of the keys this worker owns). `cols` and
    /// `counters` must have `cols.rows` rows (the caller checks the lengths); shorter
    /// columns just end the block early.
    pub fn add_block(
        &mut self,
        stmt: &Statement,
        cols: &Cols<'_>,
        counters: &CounterCols<'_>,
        time: i64,
        iface: u16,
    ) {
        let a = stmt.attributes;
        let mut template = Key::default();
        if a.time {
            template.time = time;
        }
        if a.iface {
            template.iface = iface;
        }
        let (filtered, rows) = self.filter(stmt, cols, counters);
        self.rows_seen += cols.rows as u64;
        if self.part.map_or(true, |(me, _)| me == 0) {
            self.rows_scanned += cols.rows as u64;
        }
        if filtered && self.mask.len() < rows {
            // Cannot happen (the mask has a value per row); the general path copes.
            self.add_rows(a, template, cols, counters, 0..rows, filtered);
            return;
        }
        // Fast paths for the common shapes: address-only groupings (talk_*) and
        // groupings by port, protocol and layer 7 only (apps_*) build their packed
        // keys straight from the columns; everything else (and rows a fast path
        // cannot take, e.g. from a shorter column) goes through the general key.
        let mut done = 0;
        if with_addr_only(stmt) {
            let k = AddrKeys::new(a, cols, rows);
            let mut map = std::mem::take(&mut self.map_a);
            self.add_grouped(&mut map, counters, 0..k.n4, filtered, |i| k.v4_key(i));
            self.map_a = map;
            if k.n4 == k.v4 {
                let mut map = std::mem::take(&mut self.map_a6);
                let range = k.v4..k.v4 + k.n6;
                self.add_grouped(&mut map, counters, range, filtered, |i| k.v6_key(i));
                self.map_a6 = map;
                done = k.v4 + k.n6;
            } else {
                done = k.n4;
            }
        } else if !(a.sip || a.dip || a.time || a.iface) {
            let (dp, pr, l7) = (cols.dport, cols.proto, cols.l7);
            let n = rows
                .min(if a.dport { dp.len() } else { rows })
                .min(if a.proto { pr.len() } else { rows })
                .min(if a.l7 { l7.len() } else { rows });
            let mut map = std::mem::take(&mut self.map_s);
            self.add_grouped(&mut map, counters, 0..n, filtered, |i| {
                let mut key = 0u64;
                if a.dport {
                    key |= u64::from(dp[i]);
                }
                if a.proto {
                    key |= u64::from(pr[i]) << 16;
                }
                if a.l7 {
                    key |= u64::from(l7[i]) << 24;
                }
                key
            });
            self.map_s = map;
            done = n;
        }
        self.add_rows(a, template, cols, counters, done..rows, filtered);
    }

    /// Evaluates the statement's condition over a block's rows into this table's mask
    /// (whether there is one) and how many rows every counter column covers.
    fn filter(
        &mut self,
        stmt: &Statement,
        cols: &Cols<'_>,
        counters: &CounterCols<'_>,
    ) -> (bool, usize) {
        let filtered = match &stmt.condition {
            Some(c) => {
                c.eval(cols, &mut self.mask, &mut self.pool);
                true
            }
            None => false,
        };
        let rows = cols
            .rows
            .min(counters.bytes_rcvd.len())
            .min(counters.bytes_sent.len())
            .min(counters.pkts_rcvd.len())
            .min(counters.pkts_sent.len());
        (filtered, rows)
    }

    /// Sorts the rows of a chunk of an address-only grouping ([`with_addr_only`])
    /// into `out`, by owner among `workers` (see [`Partition`]); this table's mask
    /// serves the condition. False if some rows could not be keyed (a column shorter
    /// than the others): those are not in `out`.
    pub fn partition_block(
        &mut self,
        stmt: &Statement,
        cols: &Cols<'_>,
        counters: &CounterCols<'_>,
        workers: usize,
        out: &mut Partition,
    ) -> bool {
        out.reset(workers.max(1));
        let a = stmt.attributes;
        let (filtered, rows) = self.filter(stmt, cols, counters);
        out.rows = cols.rows;
        if !with_addr_only(stmt) || (filtered && self.mask.len() < rows) {
            return false;
        }
        let k = AddrKeys::new(a, cols, rows);
        let mask = filtered.then_some(&self.mask[..]);
        partition_grouped(mask, counters, 0..k.n4, &mut out.v4, |i| k.v4_key(i));
        if k.n4 < k.v4 {
            return false;
        }
        let range = k.v4..k.v4 + k.n6;
        partition_grouped(mask, counters, range, &mut out.v6, |i| k.v6_key(i));
        k.v4 + k.n6 == cols.rows
    }

    /// Adds this worker's rows of a chunk sorted out by [`Table::partition_block`].
    pub fn add_partition(&mut self, p: &Partition) {
        let me = self.part.map_or(0, |(me, _)| me);
        self.rows_seen += p.rows as u64;
        if me == 0 {
            self.rows_scanned += p.rows as u64;
        }
        let mut map = std::mem::take(&mut self.map_a);
        if let Some(rows) = p.v4.get(me) {
            self.add_part_rows(&mut map, rows);
        }
        self.map_a = map;
        let mut map = std::mem::take(&mut self.map_a6);
        if let Some(rows) = p.v6.get(me) {
            self.add_part_rows(&mut map, rows);
        }
        self.map_a6 = map;
    }

    /// Adds this worker's own rows of a chunk it has just sorted out (while they are
    /// still in its cache) and empties its lists; [`Table::add_partition`] then only
    /// accounts for the chunk's rows.
    pub fn take_own_rows(&mut self, p: &mut Partition) {
        let me = self.part.map_or(0, |(me, _)| me);
        let mut map = std::mem::take(&mut self.map_a);
        if let Some(rows) = p.v4.get_mut(me) {
            self.add_part_rows(&mut map, rows);
            rows.clear();
        }
        self.map_a = map;
        let mut map = std::mem::take(&mut self.map_a6);
        if let Some(rows) = p.v6.get_mut(me) {
            self.add_part_rows(&mut map, rows);
            rows.clear();
        }
        self.map_a6 = map;
    }

    /// Adds hashed rows to `map`, the slot of the row [`PREFETCH_AHEAD`] rows on
    /// prefetched before each row is added.
    fn add_part_rows<K: PackedKey>(&mut self, map: &mut AddrTable<K>, rows: &[PartRow<K>]) {
        if map.wants_prefetch() {
            for (i, r) in rows.iter().enumerate() {
                if let Some(ahead) = rows.get(i + PREFETCH_AHEAD) {
                    map.prefetch(ahead.hash);
                }
                self.totals.add(&r.sum);
                map.add_hashed(r.key, r.hash, &r.sum);
            }
        } else {
            for r in rows {
                self.totals.add(&r.sum);
                map.add_hashed(r.key, r.hash, &r.sum);
            }
        }
    }

    /// Rows `range` (which the counters and, when `filtered`, the mask cover) into
    /// `map`, keyed by `key_of(row)`. A table in the cache that keeps every key
    /// takes the rows one by one. Otherwise adjacent rows of the same key are summed
    /// first (blocks are stored sorted by flow key, so the rows of one conversation
    /// or source are often neighbours; any order gives the same sums), then each
    /// summed row is hashed, dropped if this worker does not own its key, else its
    /// slot is prefetched and it is added [`PREFETCH_AHEAD`] rows later.
    #[inline]
    fn add_grouped<K: PackedKey>(
        &mut self,
        map: &mut AddrTable<K>,
        counters: &CounterCols<'_>,
        range: std::ops::Range<usize>,
        filtered: bool,
        key_of: impl Fn(usize) -> K,
    ) {
        let (br, bs) = (counters.bytes_rcvd, counters.bytes_sent);
        let (pr, ps) = (counters.pkts_rcvd, counters.pkts_sent);
        let counters_at = |i: usize| Counters {
            bytes_rcvd: br[i],
            bytes_sent: bs[i],
            pkts_rcvd: pr[i],
            pkts_sent: ps[i],
        };
        if self.part.is_none() && !map.wants_prefetch() {
            // A table in the cache that keeps every key: nothing to prefetch or
            // drop, so each row goes straight in (summing runs of equal keys first
            // saves nothing when an update hits the cache), and without a condition
            // the totals are the columns' sums, taken apart from the updates
            // (bench-DB apps_port: 151 alternating runs, wall median 5.62 -> 5.43 ms).
            if !filtered {
                let (lo, hi) = (range.start, range.end);
                let sum = |c: &[u64]| {
                    let s: u128 = c[lo..hi].iter().map(|&x| u128::from(x)).sum();
                    u64::try_from(s).unwrap_or(u64::MAX)
                };
                self.totals.add(&Counters {
                    bytes_rcvd: sum(br),
                    bytes_sent: sum(bs),
                    pkts_rcvd: sum(pr),
                    pkts_sent: sum(ps),
                });
                for i in range {
                    map.add(key_of(i), &counters_at(i));
                }
                return;
            }
            for i in range {
                if !self.mask[i] {
                    continue;
                }
                let c = counters_at(i);
                self.totals.add(&c);
                map.add(key_of(i), &c);
            }
            return;
        }
        // Each run of equal keys, summed, then hashed and (if this worker owns it)
        // prefetched; added PREFETCH_AHEAD runs later, when its slot has arrived.
        let mut pending = Pending::<K>::default();
        let mut run: Option<(K, Counters)> = None;
        for i in range {
            if filtered && !self.mask[i] {
                continue;
            }
            let (key, c) = (key_of(i), counters_at(i));
            match &mut run {
                Some((k, sum)) if *k == key => sum.add(&c),
                _ => {
                    if let Some((k, sum)) = run.replace((key, c)) {
                        self.push_pending(map, &mut pending, k, sum);
                    }
                }
            }
        }
        if let Some((k, sum)) = run {
            self.push_pending(map, &mut pending, k, sum);
        }
        for i in pending.n.saturating_sub(PREFETCH_AHEAD)..pending.n {
            let r = &pending.rows[i % PREFETCH_AHEAD];
            self.totals.add(&r.sum);
            map.add_hashed(r.key, r.hash, &r.sum);
        }
    }

    /// Hashes a summed row and, if this worker owns its key, prefetches its slot and
    /// puts it into `pending`, adding the row it replaces there (pushed
    /// [`PREFETCH_AHEAD`] rows before).
    #[inline]
    fn push_pending<K: PackedKey>(
        &mut self,
        map: &mut AddrTable<K>,
        pending: &mut Pending<K>,
        key: K,
        sum: Counters,
    ) {
        let hash = key.packed_hash();
        if !self.mine(hash) {
            return;
        }
        if map.wants_prefetch() {
            map.prefetch(hash);
        }
        let slot = &mut pending.rows[pending.n % PREFETCH_AHEAD];
        if pending.n >= PREFETCH_AHEAD {
            self.totals.add(&slot.sum);
            map.add_hashed(slot.key, slot.hash, &slot.sum);
        }
        *slot = PartRow { key, hash, sum };
        pending.n += 1;
    }

    /// The general path: rows `range` keyed by [`Key`].
    fn add_rows(
        &mut self,
        a: AttributeSet,
        template: Key,
        cols: &Cols<'_>,
        counters: &CounterCols<'_>,
        range: std::ops::Range<usize>,
        filtered: bool,
    ) {
        let with_ip = a.sip || a.dip;
        let v4 = cols.rows_v4.min(range.end);
        for i in range {
            if filtered && !self.mask.get(i).copied().unwrap_or(false) {
                continue;
            }
            let mut k = template;
            if with_ip {
                if i < v4 {
                    k.ipver = 4;
                    if a.sip {
                        if let Some(ip) = cols.sip4.get(i) {
                            k.sip[..4].copy_from_slice(ip);
                        }
                    }
                    if a.dip {
                        if let Some(ip) = cols.dip4.get(i) {
                            k.dip[..4].copy_from_slice(ip);
                        }
                    }
                } else {
                    k.ipver = 6;
                    if a.sip {
                        if let Some(ip) = cols.sip6.get(i - v4) {
                            k.sip = *ip;
                        }
                    }
                    if a.dip {
                        if let Some(ip) = cols.dip6.get(i - v4) {
                            k.dip = *ip;
                        }
                    }
                }
            }
            if a.dport {
                k.dport = cols.dport.get(i).copied().unwrap_or(0);
            }
            if a.proto {
                k.proto = cols.proto.get(i).copied().unwrap_or(0);
            }
            if a.l7 {
                k.l7 = cols.l7.get(i).copied().unwrap_or(0);
            }
            let c = Counters {
                bytes_rcvd: counters.bytes_rcvd[i],
                bytes_sent: counters.bytes_sent[i],
                pkts_rcvd: counters.pkts_rcvd[i],
                pkts_sent: counters.pkts_sent[i],
            };
            if self.put(k, &c) {
                self.totals.add(&c);
            }
        }
    }

    /// Moves the contents of `other` into `self`.
    pub fn merge(&mut self, mut other: Table) {
        if other.map.len() > self.map.len() {
            std::mem::swap(&mut self.map, &mut other.map);
        }
        if other.map4.len() > self.map4.len() {
            std::mem::swap(&mut self.map4, &mut other.map4);
        }
        if other.map_a.len() > self.map_a.len() {
            std::mem::swap(&mut self.map_a, &mut other.map_a);
        }
        self.map_a.merge(std::mem::take(&mut other.map_a));
        if other.map_a6.len() > self.map_a6.len() {
            std::mem::swap(&mut self.map_a6, &mut other.map_a6);
        }
        self.map_a6.merge(std::mem::take(&mut other.map_a6));
        if other.map_s.len() > self.map_s.len() {
            std::mem::swap(&mut self.map_s, &mut other.map_s);
        }
        self.map_s.merge(std::mem::take(&mut other.map_s));
        for (k, c) in other.map {
            self.map.entry(k).or_default().add(&c);
        }
        for (k, c) in other.map4 {
            self.map4.entry(k).or_default().add(&c);
        }
        self.totals.add(&other.totals);
        self.rows_scanned += other.rows_scanned;
    }
}

/// Rows `range` of a chunk, keyed by `key_of(row)` (those the `mask`, if any, keeps),
/// adjacent rows of one key summed, hashed and appended to the list of the worker
/// owning the key (`out`, one list per worker).
#[inline]
fn partition_grouped<K: PackedKey>(
    mask: Option<&[bool]>,
    counters: &CounterCols<'_>,
    range: std::ops::Range<usize>,
    out: &mut [Vec<PartRow<K>>],
    key_of: impl Fn(usize) -> K,
) {
    let workers = out.len();
    let (br, bs) = (counters.bytes_rcvd, counters.bytes_sent);
    let (pr, ps) = (counters.pkts_rcvd, counters.pkts_sent);
    let mut flush = |key: K, sum: Counters| {
        let hash = key.packed_hash();
        if let Some(list) = out.get_mut(owner(hash, workers)) {
            list.push(PartRow { key, hash, sum });
        }
    };
    let mut run: Option<(K, Counters)> = None;
    for i in range {
        if let Some(m) = mask {
            if !m[i] {
                continue;
            }
        }
        let key = key_of(i);
        let c = Counters {
            bytes_rcvd: br[i],
            bytes_sent: bs[i],
            pkts_rcvd: pr[i],
            pkts_sent: ps[i],
        };
        match &mut run {
            Some((k, sum)) if *k == key => sum.add(&c),
            _ => {
                if let Some((k, sum)) = run.replace((key, c)) {
                    flush(k, sum);
                }
            }
        }
    }
    if let Some((k, sum)) = run {
        flush(k, sum);
    }
}

/// Whether the statement groups by addresses only (its IPv4 rows use [`AddrKey`]).
fn with_addr_only(stmt: &Statement) -> bool {
    let a = stmt.attributes;
    (a.sip || a.dip) && !(a.time || a.iface || a.dport || a.proto || a.l7)
}

fn metric(sort: SortBy, dir: Direction, c: &Counters) -> u64 {
    let (bytes, packets) = dir.pick(c);
    match sort {
        SortBy::Packets => packets,
        SortBy::Bytes | SortBy::Time => bytes,
    }
}

/// The entries that can make a statement's cut, gathered from tables (or from other
/// cuts): all of them without a limit, else only candidates. Whenever twice the
/// limit has gathered, the best `limit` are selected (linear time overall, memory
/// for 2 × limit entries instead of a copy of every table).
pub(crate) struct Cut<'a> {
    stmt: &'a Statement,
    rows: Vec<(Key, Counters)>,
    /// Once `limit` candidates are kept (and the order is by a metric): the metric
    /// of the worst of them. An entry strictly worse cannot make the cut (equal ones
    /// can, by their key), so it is not even kept.
    worst: Option<u64>,
    /// Entries seen (the hits of the tables added).
    pub hits: usize,
}

impl<'a> Cut<'a> {
    /// An empty cut for `stmt`, with room for `hint` entries when it has no limit.
    pub fn new(stmt: &'a Statement, hint: usize) -> Cut<'a> {
        let cap = match stmt.limit {
            0 => hint,
            n => n.saturating_mul(2).min(1 << 20),
        };
        Cut {
            stmt,
            rows: Vec::with_capacity(cap),
            worst: None,
            hits: 0,
        }
    }

    /// The order of the statement: by its metric (time first for time order),
    /// largest first unless ascending; ties by key, so it is stable across runs.
    fn cmp(&self) -> impl Fn(&(Key, Counters), &(Key, Counters)) -> std::cmp::Ordering {
        let (sort, dir, asc) = (self.stmt.sort, self.stmt.direction, self.stmt.ascending);
        move |a, b| {
            let by_metric = || {
                let o = metric(sort, dir, &a.1).cmp(&metric(sort, dir, &b.1));
                if asc {
                    o
                } else {
                    o.reverse()
                }
            };
            let o = if sort == SortBy::Time {
                // Time order is always oldest first (as goQuery).
                a.0.time.cmp(&b.0.time).then_with(by_metric)
            } else {
                by_metric()
            };
            o.then_with(|| key_order(&a.0, &b.0))
        }
    }

    /// Adds one entry (counted as a hit by the caller).
    fn push(&mut self, e: (Key, Counters)) {
        let (sort, dir, asc, limit) = (
            self.stmt.sort,
            self.stmt.direction,
            self.stmt.ascending,
            self.stmt.limit,
        );
        if let Some(w) = self.worst {
            let m = metric(sort, dir, &e.1);
            if (asc && m > w) || (!asc && m < w) {
                return;
            }
        }
        self.rows.push(e);
        if limit > 0 && self.rows.len() >= limit.saturating_mul(2) {
            self.select();
            if sort != SortBy::Time {
                let kept = self.rows.iter().map(|r| metric(sort, dir, &r.1));
                self.worst = if asc { kept.max() } else { kept.min() };
            }
        }
    }

    /// Keeps the best `limit` entries (in no particular order).
    fn select(&mut self) {
        let limit = self.stmt.limit;
        if limit > 0 && self.rows.len() > limit {
            let cmp = self.cmp();
            let mut rows = std::mem::take(&mut self.rows);
            rows.select_nth_unstable_by(limit, cmp);
            rows.truncate(limit);
            self.rows = rows;
        }
    }

    /// Adds the entries of `table`, consuming it.
    pub fn add_table(&mut self, table: Table) {
        self.hits += table.len();
        for e in table.into_entries() {
            self.push(e);
        }
    }

    /// Adds the candidates of another cut (its hits included).
    pub fn add_cut(&mut self, other: Cut<'_>) {
        self.hits += other.hits;
        for e in other.rows {
            self.push(e);
        }
    }

    /// The entries that make the cut, in the statement's order.
    fn into_sorted(mut self) -> Vec<(Key, Counters)> {
        self.select();
        let cmp = self.cmp();
        let mut rows = self.rows;
        rows.sort_unstable_by(cmp);
        rows
    }
}

/// The result rows of a cut, in the statement's order (ties broken by the key, so
/// the order is stable across runs), and its hits.
pub(crate) fn finish_cut(
    stmt: &Statement,
    cut: Cut<'_>,
    ifaces: &[String],
) -> (Vec<ResultRow>, usize) {
    let hits = cut.hits;
    let rows = cut.into_sorted();
    let a = stmt.attributes;
    let out = rows
        .into_iter()
        .map(|(k, c)| ResultRow {
            time: a.time.then_some(k.time),
            iface: if a.iface {
                ifaces.get(usize::from(k.iface)).cloned()
            } else {
                None
            },
            sip: a.sip.then(|| ip_of(&k.sip, k.ipver)),
            dip: a.dip.then(|| ip_of(&k.dip, k.ipver)),
            dport: a.dport.then_some(k.dport),
            proto: a.proto.then_some(k.proto),
            l7: a.l7.then_some(k.l7),
            counters: c,
        })
        .collect();
    (out, hits)
}

fn key_order(a: &Key, b: &Key) -> std::cmp::Ordering {
    (
        a.time, a.iface, a.ipver, a.sip, a.dip, a.dport, a.proto, a.l7,
    )
        .cmp(&(
            b.time, b.iface, b.ipver, b.sip, b.dip, b.dport, b.proto, b.l7,
        ))
}

fn ip_of(bytes: &[u8; 16], ipver: u8) -> IpAddr {
    if ipver == 4 {
        IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
    } else {
        IpAddr::from(*bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keys_round_trip_and_do_not_overlap() {
        let mut v4 = Key {
            ipver: 4,
            ..Key::default()
        };
        v4.sip[..4].copy_from_slice(&[10, 1, 2, 3]);
        v4.dip[..4].copy_from_slice(&[192, 0, 2, 9]);
        let mut v4_port = v4;
        v4_port.dport = 443;
        v4_port.time = 1_700_000_100;
        let no_addr = Key {
            proto: 17,
            l7: 5,
            ..Key::default()
        };
        let mut v6 = Key {
            ipver: 6,
            ..Key::default()
        };
        v6.sip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(AddrKey::from_key(&v4).map(AddrKey::to_key), Some(v4));
        assert!(AddrKey::from_key(&v4_port).is_none());
        assert_eq!(Key4::from_key(&v4_port).map(Key4::to_key), Some(v4_port));
        assert!(AddrKey::from_key(&no_addr).is_none());
        assert_eq!(small_key(&no_addr).map(from_small_key), Some(no_addr));
        assert!(small_key(&v4).is_none() && small_key(&v4_port).is_none());
        assert_eq!(Key4::from_key(&no_addr).map(Key4::to_key), Some(no_addr));
        assert!(AddrKey::from_key(&v6).is_none() && Key4::from_key(&v6).is_none());
        // A table puts each key in one map and gives back the same keys.
        let mut t = Table::default();
        let c = Counters {
            bytes_rcvd: 1,
            ..Counters::default()
        };
        for k in [v4, v4_port, no_addr, v6, v4] {
            assert!(t.put(k, &c));
        }
        assert_eq!(t.len(), 4);
        let mut got: Vec<(Key, Counters)> = t.into_entries().collect();
        got.sort_by(|a, b| key_order(&a.0, &b.0));
        let mut want = vec![
            (v4, Counters { bytes_rcvd: 2, ..c }),
            (v4_port, c),
            (no_addr, c),
            (v6, c),
        ];
        want.sort_by(|a, b| key_order(&a.0, &b.0));
        assert_eq!(got, want);
    }

    #[test]
    fn partitioned_chunks_give_each_worker_its_own_keys() {
        // A chunk sorted out by owner once, then added by each of three workers,
        // gives the same tables as every worker reading every row (runs of equal
        // keys, the all-zero key, IPv6 rows, a condition).
        let n = 3000usize;
        let v4 = 2000usize;
        let sip4: Vec<[u8; 4]> = (0..v4).map(|i| [10, 0, (i / 7 % 50) as u8, 0]).collect();
        let dip4: Vec<[u8; 4]> = (0..v4)
            .map(|i| {
                if i % 11 == 0 {
                    [0; 4]
                } else {
                    [192, 0, 2, (i % 3) as u8]
                }
            })
            .collect();
        let sip6: Vec<[u8; 16]> = (v4..n)
            .map(|i| {
                [
                    0x20,
                    1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    (i % 40) as u8,
                ]
            })
            .collect();
        let dip6: Vec<[u8; 16]> = (v4..n).map(|_| [0xfe; 16]).collect();
        let dport: Vec<u16> = (0..n).map(|i| (i % 100) as u16).collect();
        let count = |k: u64| -> Vec<u64> { (0..n as u64).map(|i| i * k % 1000 + 1).collect() };
        let (br, bs, pr, ps) = (count(3), count(5), count(7), count(1));
        let counters = CounterCols {
            bytes_rcvd: &br,
            bytes_sent: &bs,
            pkts_rcvd: &pr,
            pkts_sent: &ps,
        };
        let cols = Cols {
            rows: n,
            rows_v4: v4,
            sip4: &sip4,
            sip6: &sip6,
            dip4: &dip4,
            dip6: &dip6,
            dport: &dport,
            proto: &[],
            l7: &[],
            pkts_rcvd: &pr,
            pkts_sent: &ps,
        };
        for q in ["talk_conv", "talk_src", "talk_dst"] {
            for cond in [None, Some("dport < 60")] {
                let mut stmt = Statement::new(q, 0, 1).unwrap();
                if let Some(c) = cond {
                    stmt = stmt.with_condition(c).unwrap();
                }
                let workers = 3;
                let mut part = Partition::default();
                let mut sorter = Table::default();
                assert!(sorter.partition_block(&stmt, &cols, &counters, workers, &mut part));
                let mut all = Counters::default();
                for me in 0..workers {
                    let mut by_rows = Table {
                        part: Some((me, workers)),
                        ..Table::default()
                    };
                    by_rows.add_block(&stmt, &cols, &counters, 0, 0);
                    let mut by_part = Table {
                        part: Some((me, workers)),
                        ..Table::default()
                    };
                    by_part.add_partition(&part);
                    assert_eq!(by_part.totals, by_rows.totals, "{q} {cond:?} {me}");
                    // The worker that sorted the chunk out adds its own rows at once:
                    // the same table.
                    let mut early = Table {
                        part: Some((me, workers)),
                        ..Table::default()
                    };
                    let mut own = part.clone();
                    early.take_own_rows(&mut own);
                    early.add_partition(&own);
                    assert_eq!(early.totals, by_rows.totals, "{q} {cond:?} {me}");
                    assert_eq!(early.rows_scanned, by_rows.rows_scanned);
                    assert_eq!(early.len(), by_rows.len());
                    assert_eq!(by_part.rows_scanned, by_rows.rows_scanned);
                    let sorted = |t: Table| {
                        let mut e: Vec<(Key, Counters)> = t.into_entries().collect();
                        e.sort_by(|a, b| key_order(&a.0, &b.0));
                        e
                    };
                    all.add(&by_part.totals);
                    assert_eq!(sorted(by_part), sorted(by_rows), "{q} {cond:?} {me}");
                }
                let mut one = Table::default();
                one.add_block(&stmt, &cols, &counters, 0, 0);
                assert_eq!(all, one.totals, "{q} {cond:?}");
            }
        }
    }

    #[test]
    fn key_hash_spreads_low_and_high_bits() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        let n = 100_000u32;
        let mut low = std::collections::HashSet::new();
        let mut high = [0u32; 128];
        for i in 0..n {
            let mut k = Key {
                ipver: 4,
                dport: 443,
                proto: 6,
                ..Key::default()
            };
            k.sip[..4].copy_from_slice(&(0x0a00_0000 + i).to_be_bytes());
            k.dip[..4].copy_from_slice(&[192, 0, 2, (i % 7) as u8]);
            let h = build.hash_one(k);
            low.insert(h & 0xffff);
            high[(h >> 57) as usize] += 1;
        }
        // 100k random values in 65536 buckets leave about 51.4k buckets used.
        assert!(low.len() > 49_000, "{} low buckets used", low.len());
        let (min, max) = (high.iter().min().unwrap(), high.iter().max().unwrap());
        assert!(
            *min > 600 && *max < 960,
            "control bytes spread {min}..{max}"
        );
    }
}
