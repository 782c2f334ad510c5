#!/usr/bin/env python3
"""Seed corpora for the cargo-fuzz targets (run by scripts/fuzz.sh seed).

decode: packets extracted from the real captures in ../shared/pcaps, in the input
layout goflow/fuzz/fuzz_targets/decode.rs expects: one link-type selector byte (the
index of the capture's DLT in that target's DLTS table), then packets, each prefixed
by a one-byte length (so at most 255 bytes of each packet are kept).

godb (meta, block): the project's own test database, godb/tests/golden/v1: each
day.meta (behind a repair-mode byte, as is and with a few mechanical variants:
truncated, one byte flipped) and every stored column block of its *.col files (behind
the block target's header), so that the fuzzer starts from real files.

condition: the condition strings of the project's own tests (godb/src/query) and docs
(README.md, docs/*.md).

The generated seeds are reproducible from the inputs and are not committed (they go
to each fuzz crate's gitignored seeds/ folder).
"""

import hashlib
import os
import re
import struct
import sys

# Must match DLTS in goflow/fuzz/fuzz_targets/decode.rs.
DLTS = [1, 0, 108, 101, 228, 229, 12, 14, 113, 276, 147]
# Per capture: at most this many seeds, each of at most PKTS_PER_SEED packets.
SEEDS_PER_CAPTURE = 4
PKTS_PER_SEED = 4


def read_pcap(data):
    """Yields (dlt, packet bytes) of a classic pcap file; stops at the first damage."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        return
    if len(data) < 24:
        return
    dlt = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off : off + 16])
        off += 16
        if incl > 262144 or off + incl > len(data):
            return
        yield dlt, data[off : off + incl]
        off += incl


def read_pcapng(data):
    """Yields (dlt, packet bytes) of a pcapng file (EPB, SPB, obsolete PB)."""
    off = 0
    end = "<"
    ifaces = []
    while off + 12 <= len(data):
        btype = struct.unpack(end + "I", data[off : off + 4])[0]
        if btype == 0x0A0D0D0A:
            bom = data[off + 8 : off + 12]
            end = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
            ifaces = []
        blen = struct.unpack(end + "I", data[off + 4 : off + 8])[0]
        if blen < 12 or off + blen > len(data):
            return
        body = data[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 2:
            ifaces.append(struct.unpack(end + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:
            iface, _, _, cap, _ = struct.unpack(end + "IIIII", body[:20])
            if iface < len(ifaces):
                yield ifaces[iface], body[20 : 20 + cap]
        elif btype == 3 and len(body) >= 4 and ifaces:
            yield ifaces[0], body[4:]
        elif btype == 2 and len(body) >= 20:
            iface, _, _, _, cap, _ = struct.unpack(end + "HHIIII", body[:20])
            if iface < len(ifaces):
                yield ifaces[iface], body[20 : 20 + cap]
        off += blen


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        yield from read_pcapng(data)
    else:
        yield from read_pcap(data)


def write_seed(out, blob, seen):
    h = hashlib.sha1(blob).hexdigest()
    if h in seen:
        return 0
    seen.add(h)
    with open(os.path.join(out, h), "wb") as f:
        f.write(blob)
    return 1


def seed_decode(pcaps, out):
    os.makedirs(out, exist_ok=True)
    seen = set()
    written = 0
    files = 0
    for root, _, names in os.walk(pcaps):
        for name in sorted(names):
            if not name.endswith((".pcap", ".pcapng", ".cap")):
                continue
            files += 1
            groups = {}
            try:
                for dlt, pkt in packets(os.path.join(root, name)):
                    if dlt not in DLTS:
                        continue
                    g = groups.setdefault(dlt, [[]])
                    if len(g[-1]) == PKTS_PER_SEED:
                        if len(g) == SEEDS_PER_CAPTURE:
                            continue
                        g.append([])
                    g[-1].append(pkt[:255])
            except (OSError, struct.error):
                continue
            for dlt, seeds in groups.items():
                for pkts in seeds:
                    blob = bytes([DLTS.index(dlt)])
                    for p in pkts:
                        blob += bytes([len(p)]) + p
                    written += write_seed(out, blob, seen)
    print(f"decode: {written} seeds from {files} captures -> {out}")


def variants(blob):
    """The file itself, truncated at a few places, and with single bytes flipped."""
    yield blob
    n = len(blob)
    for cut in sorted({0, 1, 4, 8, 16, n // 2, n - 1}):
        if 0 <= cut < n:
            yield blob[:cut]
    for pos in sorted({0, 4, 8, 12, 16, 24, 32, n // 2, n - 8, n - 1}):
        if 0 <= pos < n:
            b = bytearray(blob)
            b[pos] ^= 0xFF
            yield bytes(b)


# Column order of godb::Column::ALL (the metadata's column index).
COLUMNS = ["sip", "dip", "proto", "dport", "l7", "bytes_rcvd", "bytes_sent", "pkts_rcvd", "pkts_sent"]
HDR, ENTRY, ENTRY_COLUMNS, COL = 112, 296, 80, 24


def seed_godb(golden, out):
    """meta: mode byte + day.meta (godb/fuzz/src/lib.rs `meta`); block: selector,
    rows_v4, rows_v6, raw_len, flags, stored block (lib.rs `block`)."""
    seen = {"meta": set(), "block": set()}
    counts = {"meta": 0, "block": 0}
    for sub in counts:
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for root, _, names in os.walk(golden):
        if "day.meta" not in names:
            continue
        with open(os.path.join(root, "day.meta"), "rb") as f:
            meta = f.read()
        # Modes: as is, checksum repaired, all repairs, all repairs and a query.
        for mode in (0, 8, 15, 31):
            for v in variants(meta):
                counts["meta"] += write_seed(os.path.join(out, "meta"), bytes([mode]) + v, seen["meta"])
        n = (len(meta) - HDR - 4) // ENTRY
        for ci, name in enumerate(COLUMNS):
            path = os.path.join(root, name + ".col")
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                col = f.read()
            for i in range(n):
                e = HDR + i * ENTRY
                v4, v6 = struct.unpack("<II", meta[e + 8 : e + 16])
                cb = e + ENTRY_COLUMNS + ci * COL
                off, stored, raw = struct.unpack("<QII", meta[cb : cb + 16])
                blob = col[off : off + stored]
                seed = bytes([ci]) + struct.pack("<IIIB", v4, v6, raw, 0) + blob
                counts["block"] += write_seed(os.path.join(out, "block"), seed, seen["block"])
    for k, v in counts.items():
        print(f"{k}: {v} seeds -> {os.path.join(out, k)}")


def seed_condition(top, out):
    """Condition strings of the project's own tests and docs: string literals passed to
    a parse or with_condition call in godb's query tests, and -c arguments in docs."""
    os.makedirs(out, exist_ok=True)
    seen = set()
    written = 0
    lit = re.compile(r'(?:parse[a-z_]*|with_condition)\(\s*"((?:[^"\\]|\\.)*)"')
    arg = re.compile(r"-c\s+(?:\"([^\"]*)\"|'([^']*)')")
    qdir = os.path.join(top, "godb", "src", "query")
    for name in sorted(os.listdir(qdir)):
        with open(os.path.join(qdir, name), encoding="utf-8") as f:
            for m in lit.finditer(f.read()):
                text = m.group(1).encode().decode("unicode_escape").encode()
                written += write_seed(out, text, seen)
    docs = [os.path.join(top, "README.md")] + [
        os.path.join(top, "docs", n) for n in sorted(os.listdir(os.path.join(top, "docs")))
    ]
    for path in docs:
        if path.endswith(".md"):
            with open(path, encoding="utf-8") as f:
                for m in arg.finditer(f.read()):
                    written += write_seed(out, (m.group(1) or m.group(2) or "").encode(), seen)
    print(f"condition: {written} seeds -> {out}")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("decode", "godb", "condition"):
        sys.exit("usage: fuzz-seeds.py decode|godb|condition OUTDIR")
    here = os.path.dirname(os.path.abspath(__file__))
    top = os.path.dirname(here)
    if sys.argv[1] == "decode":
        pcaps = os.path.join(top, "..", "shared", "pcaps")
        if not os.path.isdir(pcaps):
            print(f"decode: {pcaps} absent, no seeds from captures")
            return
        seed_decode(pcaps, sys.argv[2])
    elif sys.argv[1] == "condition":
        seed_condition(top, sys.argv[2])
    else:
        seed_godb(os.path.join(top, "godb", "tests", "golden", "v1"), sys.argv[2])


if __name__ == "__main__":
    main()
