//! A fast reader for classic pcap files, for `goprobe replay`: plain `read` calls into
//! one buffer of a few hundred KiB, records parsed in place and handed out as borrowed
//! slices (no copy per packet, no allocation after opening).
//!
//! Why not libpcap or a memory map: libpcap's offline reader goes through stdio
//! (`fread` of every record into its own buffer), which cost about as much CPU as
//! decoding and aggregating the packets; a memory map of the whole file pays a page
//! fault per few pages and a cache miss per packet header, and was three times slower
//! than this reader on the benchmark file (figures in `docs/BENCHMARKS.md`). A buffer
//! that stays in the CPU's cache makes reading cost about what `cat` pays.
//!
//! The reader takes only the common case, where libpcap's answer is obvious: classic
//! pcap version 2.4 in either byte order and time resolution, and records whose
//! captured length is within the file's snapshot length and libpcap's maximum
//! (262144 bytes). Everything else is for libpcap:
//! - [`PcapReader::new`] returns `None` for pcapng, older format versions (whose length
//!   fields libpcap may swap) and other magic numbers: the caller uses libpcap for the
//!   whole file;
//! - [`PcapReader::next_record`] returns [`Next::Unusual`] at the first record it does not
//!   take (a captured length beyond the limits, a record cut short by the end of the
//!   file, a read error): the caller reopens the file with libpcap, skips the
//!   [`PcapReader::records`] already read and goes on there, so truncations are cut to
//!   the snapshot length and errors are reported exactly as libpcap does.
//!
//! The link type is not read here: the caller opens each file with libpcap first (which
//! also validates the header) and takes libpcap's DLT.

use std::io::{self, Read};

/// libpcap's largest accepted captured length for ordinary link types
/// (`MAXIMUM_SNAPLEN`).
pub const MAX_CAPLEN: u32 = 262_144;

/// Bytes asked of the kernel per read: small enough to stay in the CPU's cache.
const CHUNK: usize = 256 << 10;

/// Size of a classic pcap file header.
const FILE_HEADER: usize = 24;

/// Size of a record header.
const RECORD_HEADER: usize = 16;

/// One packet record, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seconds of the time stamp (libpcap reads them as a signed 32-bit number).
    pub ts_secs: i64,
    /// The packet's original length.
    pub wire_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// What [`PcapReader::next_record`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// The next record.
    Record(Record<'a>),
    /// The file ended cleanly after the last record.
    End,
    /// A record this reader leaves to libpcap (see the module documentation).
    Unusual,
}

/// A classic pcap reader over any byte source (a `File` in goprobe).
pub struct PcapReader<R> {
    src: R,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    eof: bool,
    /// Set once `Unusual` was returned: it is returned again.
    failed: bool,
    big_endian: bool,
    /// Largest captured length taken.
    limit: u32,
    records: u64,
}

impl<R: Read> PcapReader<R> {
    /// Reads the file header; `Ok(None)` if the file is not classic pcap 2.4 (or is
    /// shorter than a header).
    pub fn new(mut src: R) -> io::Result<Option<Self>> {
        let mut head = [0u8; FILE_HEADER];
        let mut got = 0;
        while got < FILE_HEADER {
            match src.read(&mut head[got..]) {
                Ok(0) => return Ok(None),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let big_endian = match head[..4] {
            [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => false,
            [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => true,
            _ => return Ok(None),
        };
        let u16_at = |i: usize| {
            let b = [head[i], head[i + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        if (u16_at(4), u16_at(6)) != (2, 4) {
            return Ok(None);
        }
        let snaplen = read_u32(&head[16..20], big_endian);
        let limit = if snaplen == 0 {
            MAX_CAPLEN
        } else {
            snaplen.min(MAX_CAPLEN)
        };
        Ok(Some(PcapReader {
            src,
            buf: vec![0; buffer_size()],
            pos: 0,
            end: 0,
            eof: false,
            failed: false,
            big_endian,
            limit,
            records: 0,
        }))
    }

    /// Records returned so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The next record, the end of the file, or [`Next::Unusual`], reading more of
    /// the file as needed. After `End` or `Unusual` the reader stays there.
    #[inline]
    pub fn next_record(&mut self) -> Next<'_> {
        loop {
            match self.peek() {
                Peek::Record(caplen) => return self.take(caplen),
                Peek::NeedMore => {
                    if !self.fill() {
                        return Next::Unusual;
                    }
                }
                Peek::End => return Next::End,
                Peek::Unusual => return Next::Unusual,
            }
        }
    }

    /// Like [`Self::next_record`] but without reading: `None` when the buffer holds no
    /// further whole record and the file has more (call [`Self::fill`], after
    /// [`Self::swap_buffer`] if the records handed out must stay valid).
    #[inline]
    pub fn next_in_buffer(&mut self) -> Option<Next<'_>> {
        match self.peek() {
            Peek::Record(caplen) => Some(self.take(caplen)),
            Peek::NeedMore => None,
            Peek::End => Some(Next::End),
            Peek::Unusual => Some(Next::Unusual),
        }
    }

    /// Where the buffer starts, to turn the records' slices into offsets (the buffer
    /// does not move until [`Self::fill`] or [`Self::swap_buffer`]).
    pub fn buffer_addr(&self) -> usize {
        self.buf.as_ptr() as usize
    }

    /// Continues in `fresh` (resized as needed; its contents do not matter) and returns
    /// the current buffer, whose records handed out so far stay where they were. The
    /// unread bytes (at most one partial record) are copied over.
    pub fn swap_buffer(&mut self, mut fresh: Vec<u8>) -> Vec<u8> {
        let size = buffer_size();
        if fresh.len() != size {
            fresh.resize(size, 0);
        }
        let tail = self.end - self.pos;
        fresh[..tail].copy_from_slice(&self.buf[self.pos..self.end]);
        self.pos = 0;
        self.end = tail;
        std::mem::replace(&mut self.buf, fresh)
    }

    fn peek(&mut self) -> Peek {
        if self.failed {
            return Peek::Unusual;
        }
        let avail = self.end - self.pos;
        if avail >= RECORD_HEADER {
            let caplen = read_u32(&self.buf[self.pos + 8..self.pos + 12], self.big_endian);
            if caplen > self.limit {
                self.failed = true;
                return Peek::Unusual;
            }
            if avail >= RECORD_HEADER + caplen as usize {
                return Peek::Record(caplen as usize);
            }
        }
        if !self.eof {
            Peek::NeedMore
        } else if avail == 0 {
            Peek::End
        } else {
            self.failed = true;
            Peek::Unusual
        }
    }

    /// Hands out the whole record (of `caplen` bytes) at the read position.
    fn take(&mut self, caplen: usize) -> Next<'_> {
        let h = &self.buf[self.pos..self.pos + RECORD_HEADER];
        let secs = read_u32(&h[0..4], self.big_endian) as i32;
        let wire_len = read_u32(&h[12..16], self.big_endian);
        let start = self.pos + RECORD_HEADER;
        self.pos = start + caplen;
        self.records += 1;
        Next::Record(Record {
            ts_secs: i64::from(secs),
            wire_len,
            data: &self.buf[start..start + caplen],
        })
    }

    /// Moves the unread bytes to the front of the buffer and reads more of the file;
    /// false (and [`Next::Unusual`] from then on) on a read error.
    pub fn fill(&mut self) -> bool {
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        let want = CHUNK.min(self.buf.len() - self.end);
        loop {
            match self.src.read(&mut self.buf[self.end..self.end + want]) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.end += n;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.eof = true;
                    self.failed = true;
                    return false;
                }
            }
        }
    }
}

/// What the buffer holds at the read position.
enum Peek {
    /// A whole record with this captured length.
    Record(usize),
    NeedMore,
    End,
    Unusual,
}

/// The reader's buffer size: a chunk plus the largest record, so any record fits whole.
pub fn buffer_size() -> usize {
    CHUNK + RECORD_HEADER + MAX_CAPLEN as usize
}

fn read_u32(b: &[u8], big_endian: bool) -> u32 {
    let a = [b[0], b[1], b[2], b[3]];
    if big_endian {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pcap file: magic in the given byte order, version, snaplen, records of
    /// (seconds, captured bytes, original length).
    fn file(
        big: bool,
        nanos: bool,
        version: (u16, u16),
        snaplen: u32,
        recs: &[(i32, Vec<u8>, u32)],
    ) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        out.extend_from_slice(&u16b(version.0));
        out.extend_from_slice(&u16b(version.1));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&u32b(snaplen));
        out.extend_from_slice(&u32b(1));
        for (secs, data, len) in recs {
            out.extend_from_slice(&u32b(*secs as u32));
            out.extend_from_slice(&u32b(999));
            out.extend_from_slice(&u32b(data.len() as u32));
            out.extend_from_slice(&u32b(*len));
            out.extend_from_slice(data);
        }
        out
    }

    /// A source that hands out at most `step` bytes per read.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn records(bytes: &[u8], step: usize) -> (Vec<(i64, u32, Vec<u8>)>, Next<'static>) {
        let mut r = PcapReader::new(Trickle { bytes, step })
            .unwrap()
            .expect("classic pcap");
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Next::Record(rec) => out.push((rec.ts_secs, rec.wire_len, rec.data.to_vec())),
                Next::End => return (out, Next::End),
                Next::Unusual => {
                    assert_eq!(r.records(), out.len() as u64);
                    return (out, Next::Unusual);
                }
            }
        }
    }

    fn sample() -> Vec<(i32, Vec<u8>, u32)> {
        vec![
            (1_700_000_000, vec![1; 60], 60),
            (-5, vec![], 1500),
            (7, (0..=255).collect(), 9000),
            (8, vec![3; 3000], 70_000),
        ]
    }

    #[test]
    fn both_byte_orders_and_resolutions_in_any_read_sizes() {
        let want: Vec<(i64, u32, Vec<u8>)> = sample()
            .into_iter()
            .map(|(s, d, l)| (i64::from(s), l, d))
            .collect();
        for big in [false, true] {
            for nanos in [false, true] {
                let bytes = file(big, nanos, (2, 4), 3000, &sample());
                for step in [1, 7, 4096, usize::MAX] {
                    let (got, end) = records(&bytes, step);
                    assert_eq!(end, Next::End, "big {big} nanos {nanos} step {step}");
                    assert_eq!(got, want, "big {big} nanos {nanos} step {step}");
                }
            }
        }
    }

    #[test]
    fn records_beyond_the_snapshot_length_are_left_to_libpcap() {
        let mut recs = sample();
        recs.insert(1, (9, vec![0; 100], 100));
        let (got, end) = records(&file(false, false, (2, 4), 64, &recs), usize::MAX);
        assert_eq!((got.len(), end), (1, Next::Unusual));
        // Snapshot length 0 means libpcap's maximum.
        let big = vec![(1, vec![0; MAX_CAPLEN as usize + 1], 1)];
        let (got, end) = records(&file(false, false, (2, 4), 0, &big), usize::MAX);
        assert_eq!((got.len(), end), (0, Next::Unusual));
        let (got, end) = records(&file(true, false, (2, 4), 0, &sample()), 3);
        assert_eq!((got.len(), end), (4, Next::End));
        // Records larger than a read chunk, up to the maximum.
        let mut recs = sample();
        recs.push((10, vec![4; MAX_CAPLEN as usize], MAX_CAPLEN));
        recs.push((11, vec![5; 200_000], 200_000));
        recs.push((12, vec![6; 10], 10));
        for step in [4096, usize::MAX] {
            let (got, end) = records(&file(false, false, (2, 4), 0, &recs), step);
            assert_eq!((got.len(), end), (7, Next::End));
            assert_eq!(got[5].2, recs[5].1);
        }
    }

    #[test]
    fn a_cut_record_is_left_to_libpcap() {
        let bytes = file(false, false, (2, 4), 65535, &sample());
        // Cut inside the last record's data, then inside its header.
        for cut in [10, 3000 + 5] {
            let (got, end) = records(&bytes[..bytes.len() - cut], 5000);
            assert_eq!((got.len(), end), (3, Next::Unusual), "cut {cut}");
        }
        // Nothing after the file header: a clean end.
        let (got, end) = records(&bytes[..FILE_HEADER], 1);
        assert_eq!((got.len(), end), (0, Next::End));
    }

    #[test]
    fn other_formats_are_not_taken() {
        for version in [(2, 3), (2, 2), (1, 4), (543, 0)] {
            let bytes = file(false, false, version, 65535, &sample());
            assert!(
                PcapReader::new(&bytes[..]).unwrap().is_none(),
                "{version:?}"
            );
        }
        let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a];
        ng.resize(64, 0);
        assert!(PcapReader::new(&ng[..]).unwrap().is_none());
        assert!(PcapReader::new(&b"short"[..]).unwrap().is_none());
        // Kuznetzov's modified format has longer record headers.
        let mut kuz = file(false, false, (2, 4), 65535, &sample());
        kuz[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
        assert!(PcapReader::new(&kuz[..]).unwrap().is_none());
    }

    #[test]
    fn a_read_error_is_left_to_libpcap() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let head = file(false, false, (2, 4), 65535, &[]);
                if self.0 < head.len() {
                    let n = (head.len() - self.0).min(buf.len());
                    buf[..n].copy_from_slice(&head[self.0..self.0 + n]);
                    self.0 += n;
                    return Ok(n);
                }
                Err(io::Error::other("disk on fire"))
            }
        }
        let mut r = PcapReader::new(Failing(0)).unwrap().unwrap();
        assert_eq!(r.next_record(), Next::Unusual);
        assert_eq!(r.next_record(), Next::Unusual);
    }

    #[test]
    fn records_stay_valid_in_a_swapped_out_buffer() {
        let recs: Vec<(i32, Vec<u8>, u32)> = (0..200u32)
            .map(|i| {
                (
                    i as i32,
                    vec![i as u8; 100 + (i as usize * 37) % 3000],
                    5000,
                )
            })
            .collect();
        let bytes = file(true, false, (2, 4), 0, &recs);
        let mut r = PcapReader::new(Trickle {
            bytes: &bytes,
            step: 50_000,
        })
        .unwrap()
        .unwrap();
        let mut seen = Vec::new();
        let mut spare = Vec::new();
        loop {
            let base = r.buffer_addr();
            let mut spans = Vec::new();
            let ended = loop {
                match r.next_in_buffer() {
                    Some(Next::Record(rec)) => {
                        spans.push((rec.data.as_ptr() as usize - base, rec.data.len()));
                    }
                    Some(Next::End) => break true,
                    Some(Next::Unusual) => panic!("unusual"),
                    None => break false,
                }
            };
            let old = r.swap_buffer(std::mem::take(&mut spare));
            seen.extend(spans.iter().map(|&(o, n)| old[o..o + n].to_vec()));
            spare = old;
            if ended {
                break;
            }
            assert!(r.fill());
        }
        let want: Vec<Vec<u8>> = recs.into_iter().map(|(_, d, _)| d).collect();
        assert_eq!(seen, want);
    }
}
