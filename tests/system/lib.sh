# Shared helpers of the system tests (sourced, not run): result reporting, a temporary
# folder removed at exit, cleanup hooks run in every case, and the checks that decide
# whether a test can run here (root, ip netns, python3) or must skip.
# Every test script prints "PASS name", "SKIP name: why" or "FAIL name: why" as its
# last line and exits 0 (pass or skip) or 1 (fail).

set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TEST=$(basename "$0" .sh)
GOPROBE_BUILD=${GOPROBE_BUILD:-$ROOT/target/debug}

# Cleanup commands, run in reverse order at exit whatever happened.
_cleanups=()
on_exit() { _cleanups+=("$*"); }
_run_cleanups() {
    local i
    for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
        eval "${_cleanups[$i]}" >/dev/null 2>&1 || true
    done
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

note() { printf '  %s: %s\n' "$TEST" "$*"; }
skip() { printf 'SKIP %s: %s\n' "$TEST" "$*"; exit 0; }
fail() {
    printf 'FAIL %s: %s\n' "$TEST" "$*"
    if [ -n "${SHOW_ON_FAIL:-}" ]; then
        for f in $SHOW_ON_FAIL; do
            [ -r "$f" ] && { printf -- '--- %s\n' "$f"; tail -n 40 "$f"; }
        done
    fi
    exit 1
}
pass() { printf 'PASS %s\n' "$TEST"; exit 0; }

# check DESCRIPTION COMMAND...: runs the command, fails the test when it fails.
check() {
    local what=$1
    shift
    "$@" || fail "$what"
}

need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
need_cmd() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "needs $c (not installed)"; done
}
# Network namespaces work here (not inside an unprivileged container, for instance).
need_netns() {
    need_cmd ip
    local probe="gpsys-probe-$$"
    ip netns add "$probe" 2>/dev/null || skip "ip netns is not available here"
    ip netns del "$probe" 2>/dev/null || true
}
need_binaries() {
    [ -x "$GOPROBE_BUILD/goprobe" ] && [ -x "$GOPROBE_BUILD/goquery" ] ||
        fail "no goprobe and goquery in $GOPROBE_BUILD (make test-system builds them)"
}

TMP=$(mktemp -d /tmp/goprobe-system-XXXXXX) || fail "mktemp"
# Readable by others: a test may run goprobe as an unprivileged user below it.
chmod 0755 "$TMP"
on_exit rm -rf "$TMP"

# Installs the built binaries, init script, unit and cron file with `make install`.
# Arguments are extra make variables (DESTDIR=..., PREFIX=..., INITDIR=...).
make_install() {
    make -s -C "$ROOT" install BUILD="$GOPROBE_BUILD" "$@" >"$TMP/install.log" 2>&1 ||
        { cat "$TMP/install.log"; fail "make install $*"; }
}
