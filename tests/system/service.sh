#!/usr/bin/env bash
# The installed service end to end: `make install` into a temporary DESTDIR, then the
# INSTALLED init script (with a defaults file of the test's own, so the real /etc is never
# read or written) runs goprobe in a network namespace on one end of a veth pair. A peer
# namespace sends a known number of UDP datagrams and TCP connections to addresses of the
# test's own; start, status, force-reload (SIGHUP), restart and stop are exercised in
# between, goprobe drops to an unprivileged user (so it cannot remove its pidfile: the
# script must), and afterwards the installed goquery must show exactly the traffic that a
# tcpdump beside it saw, nothing more. An invalid configuration must fail at start,
# clearly, without leaving a process or a pidfile behind. Needs root and ip netns.
. "$(dirname "$0")/lib.sh"

need_root
need_netns
need_cmd python3 tcpdump make
need_binaries

PREFIX=/opt/goprobe
DEST=$TMP/dest
INIT=$DEST/etc/init.d/goprobe
BIN=$DEST$PREFIX/bin
CONF=$DEST$PREFIX/etc/goprobe.toml
DB=$TMP/db
RUN=$TMP/run           # stands for /run: root's, not writable by the daemon's user
PIDFILE=$RUN/goprobe.pid
LOG=$TMP/goprobe.log
DEFAULTS=$DEST/etc/default/goprobe
NS_CAP=gpsys-cap-$$
NS_PEER=gpsys-peer-$$
VC=gpsc$$                # capturing end (in NS_CAP)
VP=gpsp$$                # sending end (in NS_PEER)
CAP_IP=10.201.0.1
PEER_IP=10.201.0.2
UDP_PORTS="5301 5302 5303" # one per phase: after start, after force-reload, after restart
TCP_PORT=5380
UDP_COUNT=25               # datagrams per phase
UDP_SIZE=100               # UDP payload bytes
TCP_CONNS=3                # connections per phase
SHOW_ON_FAIL="$LOG $TMP/tcpdump.err $TMP/servers.err"
mkdir -p "$RUN" "$DEST/etc/default"

# --- install ---------------------------------------------------------------------------
make_install DESTDIR="$DEST" PREFIX="$PREFIX"
for f in "$BIN/goprobe" "$BIN/goquery" "$INIT"; do
    [ -x "$f" ] || fail "make install did not install $f"
done
for f in "$CONF" "$DEST/lib/systemd/system/goprobe.service" "$DEST/etc/cron.d/goprobe"; do
    [ -f "$f" ] || fail "make install did not install $f"
done
grep -q '@PREFIX@' "$INIT" "$CONF" "$DEST/etc/cron.d/goprobe" \
    "$DEST/lib/systemd/system/goprobe.service" && fail "@PREFIX@ left in an installed file"
grep -q "^GOPROBE_BIN=\${GOPROBE_BIN:-$PREFIX/bin/goprobe}" "$INIT" ||
    fail "installed init script does not default to $PREFIX/bin/goprobe"
"$BIN/goprobe" check -c "$CONF" >/dev/null || fail "the installed example config is invalid"
# goprobe re-reads it on SIGHUP after dropping privileges: it must be readable by others.
[ "$(stat -c %a "$CONF")" = 644 ] || fail "installed config mode $(stat -c %a "$CONF"), want 644"

# The test's config replaces the example; a second install must keep it.
USER_LINE=
id nobody >/dev/null 2>&1 && USER_LINE='user = "nobody"'
cat >"$CONF" <<EOF
# written by tests/system/service.sh
db_path = "$DB"
$USER_LINE

[log]
level = "info"

[interfaces.$VC]
snaplen = 256
EOF
cp "$CONF" "$TMP/conf.orig"
make_install DESTDIR="$DEST" PREFIX="$PREFIX"
cmp -s "$CONF" "$TMP/conf.orig" || fail "a second make install overwrote the existing config"

cat >"$DEFAULTS" <<EOF
GOPROBE_BIN=$BIN/goprobe
GOPROBE_CONFIG=$CONF
GOPROBE_PIDFILE=$PIDFILE
GOPROBE_LOG=$LOG
EOF

# init ARGS...: the installed init script, in the capture namespace, with the test's
# defaults file ($DEFAULTS_FILE overrides it).
init() {
    ip netns exec "$NS_CAP" env GOPROBE_DEFAULTS="${DEFAULTS_FILE:-$DEFAULTS}" "$INIT" "$@"
}

# --- network ----------------------------------------------------------------------------
on_exit ip netns del "$NS_CAP"
on_exit ip netns del "$NS_PEER"
# Whatever happens, no goprobe of this test outlives it (the binary's path is this test's
# own temporary folder, so the processes found are this run's only).
stop_daemons() {
    local pids
    pids=$(pgrep -f "^$BIN/goprobe ") || return 0
    kill -TERM $pids
    sleep 1
    kill -KILL $pids
}
on_exit stop_daemons
ip netns add "$NS_CAP" || fail "ip netns add"
ip netns add "$NS_PEER" || fail "ip netns add"
ip link add "$VC" type veth peer name "$VP" || fail "ip link add veth"
ip link set "$VC" netns "$NS_CAP" && ip link set "$VP" netns "$NS_PEER" || fail "moving the veth ends"
for pair in "$NS_CAP:$VC:$CAP_IP" "$NS_PEER:$VP:$PEER_IP"; do
    IFS=: read -r ns dev addr <<<"$pair"
    # No IPv6 chatter (router solicitations, MLD): the database must hold only our traffic.
    ip netns exec "$ns" sh -c "for k in all default $dev; do echo 1 > /proc/sys/net/ipv6/conf/\$k/disable_ipv6; done" 2>/dev/null
    ip -n "$ns" addr add "$addr/24" dev "$dev" || fail "ip addr add $addr"
    ip -n "$ns" link set lo up && ip -n "$ns" link set "$dev" up || fail "ip link set up"
done

# Servers in the capture namespace: UDP sockets that only receive, a TCP server that
# reads a request to its end, answers and closes. They stop with the namespace's cleanup.
ip netns exec "$NS_CAP" python3 - "$CAP_IP" "$TCP_PORT" "$TMP/servers.ready" $UDP_PORTS \
    >/dev/null 2>"$TMP/servers.err" <<'PY' &
import socket, sys, threading
ip, tcp_port, ready, udp_ports = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
def udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, port))
    return s
def serve_udp(s):
    while True:
        s.recv(65535)
udps = [udp(int(p)) for p in udp_ports]
srv = socket.create_server((ip, tcp_port))
for s in udps:
    threading.Thread(target=serve_udp, args=(s,), daemon=True).start()
open(ready, "w").close()
while True:
    c, _ = srv.accept()
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.sendall(b"r" * (n // 2))
    c.close()
PY
on_exit kill $!
for _ in $(seq 50); do [ -e "$TMP/servers.ready" ] && break; sleep 0.1; done
[ -e "$TMP/servers.ready" ] || fail "the test servers did not start"

# Independent witness: tcpdump on the same interface, all IPv4 packets.
ip netns exec "$NS_CAP" tcpdump -i "$VC" -n -U -Z root -w "$TMP/witness.pcap" ip 2>"$TMP/tcpdump.err" &
TCPDUMP=$!
on_exit kill $TCPDUMP
for _ in $(seq 50); do grep -q "listening on" "$TMP/tcpdump.err" 2>/dev/null && break; sleep 0.1; done
grep -q "listening on" "$TMP/tcpdump.err" || fail "tcpdump did not start"

# traffic UDP_PORT: UDP_COUNT datagrams to UDP_PORT and TCP_CONNS connections from the peer.
traffic() {
    ip netns exec "$NS_PEER" python3 - "$CAP_IP" "$1" "$UDP_COUNT" "$UDP_SIZE" "$TCP_PORT" "$TCP_CONNS" <<'PY' ||
import socket, sys, time
ip, uport, count, size, tport, conns = sys.argv[1], *map(int, sys.argv[2:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(count):
    s.sendto(b"u" * size, (ip, uport))
    time.sleep(0.002)
for i in range(conns):
    c = socket.create_connection((ip, tport), timeout=5)
    c.sendall(b"q" * (1000 + 700 * i))
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()
time.sleep(0.3)  # the last ACKs are out before anything else happens
PY
        fail "sending traffic to port $1"
}

# --- invalid configuration: clear failure at start, nothing left behind -----------------
printf 'db_path = "%s"\nretention_dayz = 3\n[interfaces.%s]\n' "$DB" "$VC" >"$TMP/bad-key.toml"
printf 'db_path = "%s"\n[interfaces.%s]\nbpf_filter = "port and and"\n' "$DB" "$VC" >"$TMP/bad-bpf.toml"
for bad in bad-key bad-bpf; do
    sed "s|^GOPROBE_CONFIG=.*|GOPROBE_CONFIG=$TMP/$bad.toml|" "$DEFAULTS" >"$TMP/defaults.$bad"
    out=$(DEFAULTS_FILE=$TMP/defaults.$bad init start 2>&1)
    rc=$?
    [ $rc = 6 ] || fail "start with $bad.toml: exit $rc, want 6 (LSB: not configured): $out"
    grep -q "invalid configuration" <<<"$out" || fail "start with $bad.toml: no clear message: $out"
    [ -e "$PIDFILE" ] && fail "start with $bad.toml left a pidfile"
    pgrep -f "$BIN/goprobe -c" >/dev/null && fail "start with $bad.toml left a goprobe running"
    note "start refused $bad.toml: $(tail -n 1 <<<"$out")"
done
case "$(DEFAULTS_FILE=$TMP/defaults.bad-key init start 2>&1)" in
*retention_dayz*) ;;
*) fail "the invalid-config message does not name the offending key" ;;
esac

# --- start, status, force-reload, restart, stop -----------------------------------------
T0=$(date +%s)
out=$(init status); rc=$?
[ $rc = 3 ] || fail "status before start: exit $rc ($out), want 3"
out=$(init start) || fail "start: $out"
PID1=$(cat "$PIDFILE") || fail "no pidfile after start"
out=$(init status) || fail "status after start: $out"
grep -q "running (pid $PID1)" <<<"$out" || fail "status: $out"
out=$(init start) || fail "second start: $out"
grep -q "already running" <<<"$out" || fail "second start: $out"
[ -n "$USER_LINE" ] && { [ "$(ps -o user= -p "$PID1")" = nobody ] || fail "goprobe did not drop to nobody"; }
traffic 5301

cp "$CONF" "$TMP/conf.good"
sed -i 's/^level = "info"/level = "debug"/' "$CONF"
out=$(init force-reload) || fail "force-reload: $out"
for _ in $(seq 50); do grep -q "SIGHUP: configuration re-read" "$LOG" && break; sleep 0.1; done
grep -q "SIGHUP: configuration re-read" "$LOG" || fail "force-reload: goprobe did not re-read its config"
[ "$(cat "$PIDFILE")" = "$PID1" ] && kill -0 "$PID1" || fail "force-reload: goprobe did not survive"
# A broken config is refused by force-reload and the running goprobe keeps going.
echo 'nonsense = = 1' >>"$CONF"
out=$(init force-reload) && fail "force-reload of an invalid config succeeded: $out"
cp "$TMP/conf.good" "$CONF"
kill -0 "$PID1" || fail "goprobe died after the refused reload"
traffic 5302

out=$(init restart) || fail "restart: $out"
PID2=$(cat "$PIDFILE") || fail "no pidfile after restart"
[ "$PID2" != "$PID1" ] || fail "restart kept pid $PID1"
kill -0 "$PID1" 2>/dev/null && fail "restart left the old goprobe $PID1 running"
traffic 5303

out=$(init stop) || fail "stop: $out"
grep -q stopped <<<"$out" || fail "stop: $out"
kill -0 "$PID2" 2>/dev/null && fail "goprobe $PID2 still runs after stop"
[ -e "$PIDFILE" ] && fail "the pidfile remains after stop"
out=$(init status); rc=$?
[ $rc = 3 ] || fail "status after stop: exit $rc ($out), want 3"
grep -q "goprobe stopped: " "$LOG" || fail "no orderly shutdown in the log"

# goprobe ending by itself (a signal not sent by the script): as nobody it cannot remove
# the pidfile from root's folder and empties it; status must say "not running" (3), and
# start must work again.
out=$(init start) || fail "start after stop: $out"
PID3=$(cat "$PIDFILE")
kill -TERM "$PID3"
for _ in $(seq 100); do kill -0 "$PID3" 2>/dev/null || break; sleep 0.1; done
kill -0 "$PID3" 2>/dev/null && fail "goprobe $PID3 did not exit on SIGTERM"
[ -n "$USER_LINE" ] && { [ -e "$PIDFILE" ] && [ ! -s "$PIDFILE" ] || fail "goprobe as nobody did not leave an empty pidfile"; }
out=$(init status); rc=$?
[ $rc = 3 ] || fail "status after goprobe exited by itself: exit $rc ($out), want 3"
out=$(init start) || fail "start after goprobe exited by itself: $out"
out=$(init stop) || fail "stop: $out"
[ -e "$PIDFILE" ] && fail "the pidfile remains after stop"

# A stale pidfile naming a live process that is not goprobe: not running, not killed.
sleep 60 &
OTHER=$!
on_exit kill $OTHER
echo $OTHER >"$PIDFILE"
out=$(init status); rc=$?
[ $rc = 1 ] || fail "status with a stale pidfile: exit $rc ($out), want 1 (dead, pidfile exists)"
init stop >/dev/null
kill -0 $OTHER 2>/dev/null || fail "stop killed a process that is not goprobe"
[ -e "$PIDFILE" ] && fail "stop left a stale pidfile"

kill -INT $TCPDUMP
wait $TCPDUMP 2>/dev/null

# --- the database holds exactly the witnessed traffic -------------------------------------
"$BIN/goquery" -d "$DB" -i "$VC" -f "$T0" -n 0 -e json sip,dip,dport,proto >"$TMP/query.json" ||
    fail "goquery failed (exit $?): $(cat "$TMP/query.json")"
python3 - "$TMP/witness.pcap" "$TMP/query.json" "$CAP_IP" "$PEER_IP" "$TCP_PORT" \
    "$UDP_COUNT" "$UDP_SIZE" "$TCP_CONNS" $UDP_PORTS <<'PY' || fail "database and witness differ"
import json, struct, sys
pcap, qfile, cap_ip, peer_ip = sys.argv[1:5]
tcp_port, udp_count, udp_size, conns = map(int, sys.argv[5:9])
udp_ports = [int(p) for p in sys.argv[9:]]
server_ports = set(udp_ports) | {tcp_port}

# Flows of the witness capture, oriented by the servers' ports: key -> [bs, br, ps, pr]
# (bs/ps: client to server, br/pr: back), bytes as the frame length on the wire.
data = open(pcap, "rb").read()
magic = data[:4]
end = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
linktype = struct.unpack(end + "I", data[20:24])[0]
assert linktype == 1, f"witness link type {linktype}, want Ethernet"
flows, off = {}, 24
while off + 16 <= len(data):
    _, _, incl, orig = struct.unpack(end + "IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if struct.unpack("!H", pkt[12:14])[0] != 0x0800:
        continue
    ip = pkt[14:]
    ihl = (ip[0] & 15) * 4
    proto = ip[9]
    src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if dport in server_ports:
        key, to_server = (src, dst, dport, proto), True
    elif sport in server_ports:
        key, to_server = (dst, src, sport, proto), False
    else:
        sys.exit(f"witness: unexpected packet {src}:{sport} > {dst}:{dport} proto {proto}")
    f = flows.setdefault(key, [0, 0, 0, 0])
    if to_server:
        f[0] += orig; f[2] += 1
    else:
        f[1] += orig; f[3] += 1

# The witness saw what the test sent: the datagrams exactly, the connections' handshakes.
for p in udp_ports:
    f = flows.get((peer_ip, cap_ip, p, 17))
    want = [udp_count * (14 + 20 + 8 + udp_size), 0, udp_count, 0]
    assert f == want, f"witness UDP port {p}: {f}, want {want}"
t = flows.get((peer_ip, cap_ip, tcp_port, 6))
assert t and t[2] >= 3 * len(udp_ports) * conns, f"witness TCP: {t}"
assert len(flows) == len(udp_ports) + 1, f"witness flows: {flows}"

q = json.load(open(qfile))
got = {}
for row in q["rows"]:
    a, c = row["attributes"], row["counters"]
    got[(a["sip"], a["dip"], a["dport"], a["proto"])] = [c["bs"], c["br"], c["ps"], c["pr"]]
if got != flows:
    print("database:", json.dumps({str(k): v for k, v in sorted(got.items())}))
    print("witness: ", json.dumps({str(k): v for k, v in sorted(flows.items())}))
    sys.exit(1)
print(f"  service: database = witness: {len(got)} flows, "
      f"{sum(v[2] + v[3] for v in got.values())} packets, {sum(v[0] + v[1] for v in got.values())} bytes")
PY
# --- the systemd unit's privileges, emulated with setpriv --------------------------------
# No systemd here to run the unit, so run its command with the capabilities it grants:
# as uid 0 holding only those (the unit as shipped), and as nobody with them as ambient
# capabilities (the User= drop-in the unit recommends). Each must capture.
UNIT=$DEST/lib/systemd/system/goprobe.service
caps() { sed -n "s/^$1=//p" "$UNIT" | tr 'A-Z ' 'a-z\n' | sed -n 's/^cap_/+/p' | paste -sd, -; }
BOUND=$(caps CapabilityBoundingSet)
AMBIENT=$(caps AmbientCapabilities)
[ -n "$BOUND" ] && [ -n "$AMBIENT" ] || fail "no capabilities in the installed unit"
grep -q '^NoNewPrivileges=yes' "$UNIT" || fail "the unit does not set NoNewPrivileges"
if command -v setpriv >/dev/null; then
    port=5310
    for who in root nobody; do
        [ $who = nobody ] && { id nobody >/dev/null 2>&1 || continue; }
        db=$TMP/unit-db-$who
        mkdir -p "$db"
        ids=()
        if [ $who = nobody ]; then
            chown nobody "$db"
            ids=(--reuid=nobody --regid="$(id -g nobody)" --clear-groups)
        fi
        port=$((port + 1))
        ip netns exec "$NS_CAP" setpriv "${ids[@]}" --no-new-privs --bounding-set "-all,$BOUND" \
            --inh-caps "-all,$AMBIENT" --ambient-caps "-all,$AMBIENT" \
            "$BIN/goprobe" -d "$db" "$VC" >"$TMP/unit-$who.log" 2>&1 &
        upid=$!
        on_exit kill $upid
        SHOW_ON_FAIL=$TMP/unit-$who.log
        for _ in $(seq 50); do grep -q " started " "$TMP/unit-$who.log" && break; sleep 0.1; done
        grep -q " started " "$TMP/unit-$who.log" || fail "goprobe with the unit's capabilities as $who did not start"
        traffic $port
        kill -TERM $upid
        wait $upid || fail "goprobe with the unit's capabilities as $who: exit $?"
        got=$("$BIN/goquery" -d "$db" -i "$VC" -f "$T0" -c "dport = $port" -e csv apps_port | sed -n 2p)
        [ "${got%%,*}" = "$port" ] && [ "$(cut -d, -f4 <<<"$got")" = "$UDP_COUNT" ] ||
            fail "goprobe with the unit's capabilities as $who: $got, want $UDP_COUNT datagrams to $port"
        note "the unit's capabilities ($AMBIENT) as $who: captured"
    done
else
    note "no setpriv: the unit's capabilities are not tried"
fi
pass
