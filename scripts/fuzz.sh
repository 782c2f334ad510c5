#!/usr/bin/env bash
# scripts/fuzz.sh: seed, run and minimise the cargo-fuzz targets (docs/FUZZING.md).
#
#   scripts/fuzz.sh seed                   generate the seed corpora (../shared/pcaps, golden db, docs)
#   scripts/fuzz.sh run TARGET [SECONDS]   fuzz one target (default 60 s), growing its work corpus
#   scripts/fuzz.sh all [SECONDS]          every target in turn
#   scripts/fuzz.sh ci [SECONDS]           short run of every target (default 30 s) on a
#                                          throw-away corpus; fails on any input that
#                                          crashes on its own (see triage); prints SKIP
#                                          and succeeds if nightly or cargo-fuzz is missing
#                                          (FUZZ_INSTALL=1 installs cargo-fuzz; a failed
#                                          install fails) or SECONDS is 0
#   scripts/fuzz.sh tmin TARGET FILE       minimise a crash input
#   scripts/fuzz.sh cmin TARGET            minimise the work corpus of a target
#   scripts/fuzz.sh replay TARGET FILE...  run inputs once (e.g. a regressions/ folder)
#   scripts/fuzz.sh triage TARGET [DIR]    replay saved crash/oom/timeout inputs one by one:
#                                          NEW if one fails on its own (scripts/fuzz-triage.py)
#
# Targets: decode (goflow/fuzz), meta, block, condition (godb/fuzz). Corpora per target:
# work/T (grows, gitignored), seeds/T (generated, gitignored), corpus/T (a few committed
# seeds), regressions/T (committed crash reproducers, replayed by the crates' tests).
# Builds: no sanitizer (the fuzzed code is safe Rust, plus liblz4's decoder, which
# OSS-Fuzz fuzzes under sanitizers; our only unsafe, godb's mmap, is not reachable by
# input), release with debug assertions (integer overflow panics).
# Runs at nice 19 unless FUZZ_NICE says otherwise; extra libFuzzer flags in FUZZ_FLAGS.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# The fuzz crates build into their own <crate>/fuzz/target (where fuzz-triage.py finds
# the binaries), also when the caller points CARGO_TARGET_DIR elsewhere.
unset CARGO_TARGET_DIR
TARGETS=(decode meta block condition)
BUILD_FLAGS=(-s none -O -a)
NICE=${FUZZ_NICE:-19}

crate_of() {
    case "$1" in
        decode) echo "$ROOT/goflow/fuzz" ;;
        meta | block | condition) echo "$ROOT/godb/fuzz" ;;
        *) echo "unknown target '$1' (targets: ${TARGETS[*]})" >&2; exit 2 ;;
    esac
}

seed() {
    python3 "$ROOT/scripts/fuzz-seeds.py" decode "$ROOT/goflow/fuzz/seeds/decode"
    python3 "$ROOT/scripts/fuzz-seeds.py" godb "$ROOT/godb/fuzz/seeds"
    python3 "$ROOT/scripts/fuzz-seeds.py" condition "$ROOT/godb/fuzz/seeds/condition"
}

# Existing read-only corpus folders of a target.
inputs() {
    local dir=$1 t=$2 d
    for d in "$dir/seeds/$t" "$dir/corpus/$t" "$dir/regressions/$t"; do
        if [ -d "$d" ]; then echo "$d"; fi
    done
}

# Whether the tools are there: 0 yes, 1 no (the reason on stdout: a skip), 2 the
# install that FUZZ_INSTALL=1 asked for failed (a failure).
have_tools() {
    if ! cargo +nightly --version >/dev/null 2>&1; then
        echo "no nightly toolchain (rustup toolchain install nightly)"
        return 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        if [ "${FUZZ_INSTALL:-0}" = 1 ]; then
            echo "== installing cargo-fuzz (FUZZ_INSTALL=1)" >&2
            if cargo install cargo-fuzz --locked >&2 && cargo fuzz --version >/dev/null 2>&1; then
                return 0
            fi
            echo "cargo install cargo-fuzz --locked failed"
            return 2
        fi
        echo "no cargo-fuzz (cargo install cargo-fuzz --locked, or FUZZ_INSTALL=1)"
        return 1
    fi
}

# run TARGET SECONDS OUTDIR: fuzz into OUTDIR; libFuzzer's exit status is returned.
run_into() {
    local t=$1 secs=$2 out=$3 dir
    dir=$(crate_of "$t")
    mkdir -p "$out"
    # shellcheck disable=SC2046,SC2086
    (cd "$dir" && nice -n "$NICE" cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "$out" \
        $(inputs "$dir" "$t") -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -malloc_limit_mb=2048 -max_len=4096 -print_final_stats=1 ${FUZZ_FLAGS:-})
}

cmd=${1:-}
case "$cmd" in
    seed) seed ;;
    run)
        t=${2:?target}
        run_into "$t" "${3:-60}" "$(crate_of "$t")/work/$t"
        ;;
    all)
        for t in "${TARGETS[@]}"; do run_into "$t" "${2:-60}" "$(crate_of "$t")/work/$t"; done
        ;;
    ci)
        secs=${2:-30}
        if [ "$secs" = 0 ]; then
            echo "SKIP fuzz: 0 seconds asked for"
            exit 0
        fi
        rc=0
        why=$(have_tools) || rc=$?
        if [ $rc = 1 ]; then
            echo "SKIP fuzz: $why"
            exit 0
        elif [ $rc != 0 ]; then
            echo "FAIL fuzz: $why"
            exit 1
        fi
        seed >/dev/null
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        failed=()
        # Fork mode keeps going past crashes (one finding does not hide the next); every
        # saved input is then replayed on its own and any that fails fails the job.
        for t in "${TARGETS[@]}"; do
            echo "== fuzz $t: ${secs}s"
            mkdir -p "$tmp/art/$t"
            FUZZ_FLAGS="-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -artifact_prefix=$tmp/art/$t/ ${FUZZ_FLAGS:-}" \
                run_into "$t" "$secs" "$tmp/$t" >"$tmp/$t.log" 2>&1 || true
            if ! grep -q '^Done\|INFO: fuzzed for\|^#[0-9]*: cov:' "$tmp/$t.log"; then
                failed+=("$t (did not run)")
                tail -n 40 "$tmp/$t.log"
                continue
            fi
            grep -E '^#[0-9]+: cov:' "$tmp/$t.log" | tail -n 1 || true
            if ! python3 "$ROOT/scripts/fuzz-triage.py" "$(crate_of "$t")" "$t" "$tmp/art/$t"; then
                failed+=("$t")
                mkdir -p "$(crate_of "$t")/artifacts/$t"
                cp "$tmp/art/$t"/* "$(crate_of "$t")/artifacts/$t/" 2>/dev/null || true
            fi
        done
        if [ ${#failed[@]} -gt 0 ]; then
            echo "FAIL fuzz: ${failed[*]} (saved inputs, if any, copied to <crate>/fuzz/artifacts/)"
            exit 1
        fi
        echo "PASS fuzz: ${TARGETS[*]}, ${secs}s each"
        ;;
    triage)
        t=${2:?target}
        python3 "$ROOT/scripts/fuzz-triage.py" "$(crate_of "$t")" "$t" "${3:-$(crate_of "$t")/artifacts/$t}"
        ;;
    tmin)
        t=${2:?target} f=${3:?crash file}
        f=$(realpath "$f")
        (cd "$(crate_of "$t")" && cargo +nightly fuzz tmin "${BUILD_FLAGS[@]}" "$t" "$f")
        ;;
    cmin)
        t=${2:?target}
        (cd "$(crate_of "$t")" && cargo +nightly fuzz cmin "${BUILD_FLAGS[@]}" "$t" "work/$t")
        ;;
    replay)
        t=${2:?target}
        shift 2
        files=()
        for f in "$@"; do files+=("$(realpath "$f")"); done
        (cd "$(crate_of "$t")" && cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$t" "${files[@]}" -- -runs=1)
        ;;
    *)
        awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
