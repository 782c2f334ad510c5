#!/usr/bin/env bash
# Load test of live capture: on a veth pair between two network namespaces that this
# script creates (and deletes at exit), tcpreplay sends a real capture at increasing
# packet rates from one end while a release goprobe captures on the other. For each
# rate the script records what tcpreplay sent, what goprobe's decoder counted, libpcap's
# received/dropped counters (from goprobe's per-interval log line) and goprobe's CPU
# time (from /proc/PID/stat), and prints one table row: the rate at which drops begin
# and the CPU use per million packets.
#
# Bounded: every step sends at most LIMIT packets and runs at most STEP_SECS seconds
# (tcpreplay --limit/--duration, and `timeout`); the packets only ever leave through
# the test's own veth pair, whose capturing end has no address and no route.
#
# Usage: scripts/load-test.sh [RATE_PPS...]        (default: 10000 20000 ... topspeed)
# Environment: GOPROBE (release binary; default target/release/goprobe), PCAP (default
# /tmp/bench/base.pcap, else the largest capture of ../shared/pcaps/ndpi), LIMIT
# (packets per step and sender, default 1000000; the file is looped), STEP_SECS
# (seconds per step, default 15), PARALLEL (tcpreplay processes sharing the rate, default
# 1: one tcpreplay tops out near 150k packets/s here), BUFFER_KIB (goprobe's libpcap
# buffer, default 8192), SNAPLEN (default 256). Needs root, ip, tcpreplay.
set -euo pipefail

cd "$(dirname "$0")/.."
GOPROBE=${GOPROBE:-${CARGO_TARGET_DIR:-target}/release/goprobe}
LIMIT=${LIMIT:-1000000}
STEP_SECS=${STEP_SECS:-15}
BUFFER_KIB=${BUFFER_KIB:-8192}
PARALLEL=${PARALLEL:-1}
SNAPLEN=${SNAPLEN:-256}
if [[ -z ${PCAP:-} ]]; then
    if [[ -f /tmp/bench/base.pcap ]]; then
        PCAP=/tmp/bench/base.pcap
    else
        PCAP=$(ls -S ../shared/pcaps/ndpi/*.pcap* 2>/dev/null | head -n 1 || true)
    fi
fi
RATES=("$@")
[[ ${#RATES[@]} -gt 0 ]] || RATES=(10000 20000 50000 100000 150000 200000 300000 topspeed)

die() { echo "load-test: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, capture)"
command -v ip >/dev/null || die "needs ip (iproute2)"
command -v tcpreplay >/dev/null || die "needs tcpreplay"
[[ -x $GOPROBE ]] || die "no goprobe binary at $GOPROBE (cargo build --release -p goprobe)"
[[ -n ${PCAP:-} && -f $PCAP ]] || die "no capture file (set PCAP)"

TAG=$$
CAP_NS=gp-load-cap-$TAG
INJ_NS=gp-load-inj-$TAG
CAP_IF=glc$TAG
INJ_IF=gli$TAG
WORK=$(mktemp -d /tmp/goprobe-load.XXXXXX)
PROBE_PID=

cleanup() {
    if [[ -n $PROBE_PID ]] && kill -0 "$PROBE_PID" 2>/dev/null; then
        kill -TERM "$PROBE_PID" 2>/dev/null || true
        wait "$PROBE_PID" 2>/dev/null || true
    fi
    ip netns del "$CAP_NS" 2>/dev/null || true
    ip netns del "$INJ_NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$CAP_NS"
ip netns add "$INJ_NS"
ip link add "$CAP_IF" type veth peer name "$INJ_IF"
ip link set "$CAP_IF" netns "$CAP_NS"
ip link set "$INJ_IF" netns "$INJ_NS"
for pair in "$CAP_NS $CAP_IF" "$INJ_NS $INJ_IF"; do
    set -- $pair
    ip netns exec "$1" sh -c "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6" 2>/dev/null || true
    ip -n "$1" link set "$2" mtu 65535 up 2>/dev/null || ip -n "$1" link set "$2" mtu 9000 up
done

CLK_TCK=$(getconf CLK_TCK)
echo "# goprobe load test: $(date -u +%FT%TZ), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# capture: $PCAP; $LIMIT packets per step at most, $STEP_SECS s at most; goprobe $GOPROBE"
echo "# buffer ${BUFFER_KIB} KiB, snaplen $SNAPLEN, promisc on, no filter, $PARALLEL sender(s)"
printf '%-9s %9s %10s %9s %9s %9s %9s %7s %8s %10s %6s\n' \
    rate sent rated_pps decoded pcap_recv pcap_drop lost lost% cpu_s cpu_s/Mpkt load1

for rate in "${RATES[@]}"; do
    db=$WORK/db-$rate
    log=$WORK/goprobe-$rate.log
    conf=$WORK/goprobe-$rate.toml
    cat >"$conf" <<EOF
db_path = "$db"
[interfaces.$CAP_IF]
promisc = true
snaplen = $SNAPLEN
buffer_size = $((BUFFER_KIB << 10))
EOF
    # `ip netns exec` execs goprobe: $! is goprobe's pid.
    ip netns exec "$CAP_NS" "$GOPROBE" -c "$conf" 2>"$log" &
    PROBE_PID=$!
    for _ in $(seq 100); do
        grep -q started "$log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q started "$log" || die "goprobe did not start: $(cat "$log")"
    if [[ $rate == topspeed ]]; then
        speed=(--topspeed)
    else
        speed=(--pps="$((rate / PARALLEL))")
    fi
    rm -f "$WORK"/tcpreplay-*.out
    senders=()
    for k in $(seq "$PARALLEL"); do
        timeout $((STEP_SECS + 10)) ip netns exec "$INJ_NS" tcpreplay -q -i "$INJ_IF" \
            "${speed[@]}" --loop=1000 --limit="$LIMIT" --duration="$STEP_SECS" \
            --preload-pcap "$PCAP" >"$WORK/tcpreplay-$k.out" 2>&1 &
        senders+=($!)
    done
    for p in "${senders[@]}"; do
        wait "$p" || die "tcpreplay failed: $(cat "$WORK"/tcpreplay-*.out)"
    done
    # Packets sent and the rate achieved, summed over the senders.
    read -r sent rated < <(cat "$WORK"/tcpreplay-*.out | awk '
        /Actual: [0-9]+ packets/ { for (i = 1; i <= NF; i++) if ($i == "Actual:") n += $(i + 1) }
        /Rated: / { for (i = 1; i <= NF; i++) if ($i == "pps") r += $(i - 1) }
        END { printf "%d %.0f\n", n, r }')
    sleep 1
    # CPU time (user + system) of goprobe so far, in seconds.
    read -r utime stime < <(awk '{print $14, $15}' "/proc/$PROBE_PID/stat")
    cpu=$(awk -v u="$utime" -v s="$stime" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (u + s) / t }')
    load1=$(cut -d' ' -f1 /proc/loadavg)
    kill -TERM "$PROBE_PID"
    wait "$PROBE_PID" || die "goprobe exited with an error: $(cat "$log")"
    PROBE_PID=
    # Sum over the interval lines (a step may cross a 5-minute boundary).
    read -r decoded recv drop < <(awk '/interval ending/ && /packets/ {
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) == "packets" || $(i + 1) == "packets(libpcap:") d += $i
                if ($i == "(libpcap:") r += $(i + 1)
                if ($(i + 1) == "dropped,") k += $i
            }
        } END { print d + 0, r + 0, k + 0 }' "$log")
    lost=$((sent - decoded))
    awk -v rate="$rate" -v sent="$sent" -v rated="$rated" -v dec="$decoded" -v recv="$recv" \
        -v drop="$drop" -v lost="$lost" -v cpu="$cpu" -v load1="$load1" 'BEGIN {
        printf "%-9s %9d %10s %9d %9d %9d %9d %6.2f%% %8s %10.2f %6s\n", rate, sent, rated,
            dec, recv, drop, lost, sent ? 100 * lost / sent : 0, cpu,
            dec ? cpu / dec * 1e6 : 0, load1 }'
    rm -rf "$db"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
