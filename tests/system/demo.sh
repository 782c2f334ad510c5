#!/usr/bin/env bash
# The README's quick start on a clean clone: `git clone` of this repository (its committed
# state; a copy of the tree when it is no git checkout) into a folder of its own, then
# `make demo` there, and the report must hold real rows: top talkers with addresses and
# top applications with protocols (as root: the local HTTP and DNS traffic the demo makes
# on the loopback interface). Cargo builds into the shared target folder, so only the
# workspace's own crates are compiled again.
# Needs root for the live capture; without root it runs the demo's replay of
# ../shared/pcaps when that folder exists, and skips otherwise.
. "$(dirname "$0")/lib.sh"

need_cmd git make cargo python3
LIVE=yes
if [ "$(id -u)" != 0 ]; then
    [ -d "$ROOT/../shared/pcaps/chrissanders" ] ||
        skip "needs root for the demo's live capture (or ../shared/pcaps for its replay)"
    LIVE=
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(dirname "$GOPROBE_BUILD")}
# Always the same folder, so that cargo overwrites the previous run's artifacts of the
# workspace crates instead of adding a new set for every new path.
CLONE=$CARGO_TARGET_DIR/system-demo-clone
rm -rf "$CLONE"
on_exit rm -rf "$CLONE"
if git clone -q "$ROOT" "$CLONE" 2>"$TMP/clone.err"; then
    note "clone of $(git -C "$CLONE" log --oneline -1 | cut -c1-60)"
else
    # Not a git checkout (an exported tree), or git refuses it (owned by another user):
    # a copy of the tree without build output and database stands for the clone.
    note "git clone failed ($(head -n 1 "$TMP/clone.err")): copying the tree instead"
    rm -rf "$CLONE" && mkdir -p "$CLONE" &&
        tar -C "$ROOT" --exclude=./target --exclude='./target-*' --exclude=./db -cf - . |
        tar -C "$CLONE" -xf - || fail "copying $ROOT"
fi
# The demo's replay (without root) reads ../shared/pcaps beside the clone.
if [ -z "$LIVE" ] && [ ! -e "$CARGO_TARGET_DIR/shared" ]; then
    ln -s "$(cd "$ROOT/../shared" && pwd)" "$CARGO_TARGET_DIR/shared" || fail "cannot link ../shared"
    on_exit rm -f "$CARGO_TARGET_DIR/shared"
fi
SHOW_ON_FAIL=$TMP/demo.out
env -u BUILD -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$CLONE" demo >"$TMP/demo.out" 2>&1 || fail "make demo failed (exit $?)"

# The two sections of the report, each with its data rows (between the column header
# and the Totals line).
python3 - "$TMP/demo.out" "$LIVE" <<'PY' || fail "the demo report is not what it should be"
import re, sys
text = open(sys.argv[1]).read()
live = sys.argv[2] == "yes"
if "no data" in text:
    sys.exit("the report says 'no data'")
def rows(title):
    part = text.split(f"== {title}", 1)
    if len(part) < 2:
        sys.exit(f"no '{title}' section")
    out, started = [], False
    for line in part[1].splitlines():
        if "Totals:" in line:
            return out
        if started and line.strip():
            out.append(line.split())
        if re.search(r"\bbytes\b", line) is None and re.search(r"\b(sip|proto)\b", line):
            started = True
    sys.exit(f"'{title}': no table")
ip = re.compile(r"^[0-9a-f.:]+$")
talkers = [r for r in rows("top talkers") if len(r) >= 4 and ip.match(r[0]) and ip.match(r[1])]
apps = [r for r in rows("top applications") if len(r) >= 4 and r[0] in ("TCP", "UDP", "ICMP", "ICMPv6")]
if not talkers or not apps:
    sys.exit(f"empty report: talkers {talkers}, applications {apps}")
if live:
    if not any(r[0] == "127.0.0.1" and r[1] == "127.0.0.1" for r in talkers):
        sys.exit(f"no loopback conversation among the talkers: {talkers}")
    for proto, l7 in (("TCP", "http"), ("UDP", "dns")):
        if not any(r[:2] == [proto, l7] for r in apps):
            sys.exit(f"no {proto} {l7} row among the applications: {apps}")
print(f"  demo: {len(talkers)} talker rows, {len(apps)} application rows "
      f"({'live loopback capture' if live else 'replay of ../shared/pcaps'})")
PY
[ -d "$CLONE/db" ] || fail "make demo left no ./db"
pass
