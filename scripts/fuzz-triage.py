#!/usr/bin/env python3
"""Replays the crash, oom and timeout inputs a fuzz run saved (run by scripts/fuzz.sh).

`scripts/fuzz.sh ci` runs libFuzzer in fork mode with -ignore_crashes, -ignore_ooms and
-ignore_timeouts, so that one finding does not hide the next within the short run and
so that an out-of-memory report charged to a small input (the RSS a preceding large
input of the same fork job left behind) can be told apart. This script replays every
saved input once, on its own, under libFuzzer's 2 GiB limits and a 60 s time limit:

  passes  the input runs cleanly on its own (an OOM or timeout charged to it in the
          fork job, not caused by it)
  NEW     it fails on its own: a real finding (panic, allocation, signal, timeout)

It prints one line per input (with the row count it claims, for the godb targets) and
a summary, and exits 1 if any input is NEW.
"""

import os
import struct
import subprocess
import sys

HDR, ENTRY = 112, 296


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
        cmd = [binary, "-runs=1", "-rss_limit_mb=2048", "-malloc_limit_mb=2048", path]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                               timeout=60, env=env)
            out, rc = p.stderr + p.stdout, p.returncode
        except subprocess.TimeoutExpired:
            out, rc = "timeout", None
        cls = "passes" if rc == 0 else "NEW"
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
