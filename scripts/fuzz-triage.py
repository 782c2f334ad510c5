#!/usr/bin/env python3
"""Sorts the crash, oom and timeout inputs of a fuzz target (run by scripts/fuzz.sh triage).

Long runs of the godb targets use libFuzzer's fork mode with -ignore_crashes,
-ignore_ooms and -ignore_timeouts, because one open finding (the block decoder
materialises the claimed row count of an all-zero column, docs/FUZZING.md) is hit again
and again. This script replays every saved input once, outside libFuzzer's memory
limits but with a 3 GiB address-space limit and a 60 s time limit, and puts it in one
of these classes:

  known-width0  the row count the input claims is over 2^24 and the replay fails
                allocating in godb's column decoder (decode_into) or needs more than
                the time limit, or passes (the allocation fit the limit)
  NEW           anything else that fails: a panic, another allocation site, a signal

It prints one line per input and a summary, and exits 1 if any input is NEW.
"""

import os
import resource
import struct
import subprocess
import sys

HDR, ENTRY = 112, 296
BIG = 1 << 24


def claimed_rows(target, data):
    """The largest row count of a block that the input describes."""
    if target == "block":
        if len(data) < 15:
            return 0
        v4, v6 = struct.unpack("<II", data[1:9])
        flags = data[13]
        if flags & 2:
            v4 &= 0xFF
        if flags & 4:
            v6 &= 0xFF
        return v4 + v6
    if target == "meta":
        body = data[1:]
        n = max(0, (len(body) - HDR - 4) // ENTRY)
        best = 0
        for i in range(n):
            e = HDR + i * ENTRY
            v4, v6 = struct.unpack("<II", body[e + 8 : e + 16])
            best = max(best, v4 + v6)
        return best
    return 0


def limit():
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: fuzz-triage.py CRATE_DIR TARGET ARTIFACT_DIR")
    crate, target, arts = sys.argv[1], sys.argv[2], sys.argv[3]
    binary = os.path.join(crate, "target", "x86_64-unknown-linux-gnu", "release", target)
    names = sorted(os.listdir(arts)) if os.path.isdir(arts) else []
    counts = {}
    for name in names:
        path = os.path.join(arts, name)
        with open(path, "rb") as f:
            data = f.read()
        rows = claimed_rows(target, data)
        env = dict(os.environ, RUST_BACKTRACE="1")
        cmd = [binary, "-runs=1", "-rss_limit_mb=0", "-malloc_limit_mb=0", path]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=60, preexec_fn=limit, env=env)
            out, rc = p.stderr + p.stdout, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timeout", None
        in_decoder = "memory allocation of" in out and "decode_into" in out
        if rows > BIG and (in_decoder or rc is None or rc == 0):
            cls = "known-width0"
        elif rc == 0:
            cls = "passes"
        else:
            cls = "NEW"
        lines = out.splitlines()
        keys = ("panicked", "memory allocation", "ERROR")
        first = next((x for x in lines if any(k in x for k in keys)), lines[-1] if lines else "")
        counts[cls] = counts.get(cls, 0) + 1
        print(f"{cls:13} rows={rows:<11} {name}  {first.strip()[:120]}")
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "no inputs"
    print(f"{target}: {len(names)} inputs; {summary}")
    sys.exit(1 if counts.get("NEW") else 0)


if __name__ == "__main__":
    main()
