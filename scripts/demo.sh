#!/usr/bin/env bash
# The README's quick start: capture a few seconds of live loopback traffic (while making
# some local HTTP, DNS (to a responder of its own) and ping traffic) into ./db with goprobe,
# then print a goquery report of the top talkers and top applications.
# Needs root (or CAP_NET_RAW) for the live capture; without it, replays the shared test
# captures when ../shared/pcaps is present.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release}
DB=${DB:-./db}
SECS=${SECS:-6}
goprobe=$BIN/goprobe
goquery=$BIN/goquery
[ -x "$goprobe" ] && [ -x "$goquery" ] || { echo "demo: build first (make compile)"; exit 1; }

live_ok() { [ "$(id -u)" = 0 ] || getcap "$goprobe" 2>/dev/null | grep -q cap_net_raw; }

if live_ok; then
  echo "demo: capturing ${SECS}s on the loopback interface into $DB"
  "$goprobe" -d "$DB" lo &
  probe=$!
  web= dns=
  trap 'kill -TERM $probe $web $dns 2>/dev/null || true' EXIT
  sleep 1
  port=$((20000 + RANDOM % 20000))
  python3 -m http.server "$port" --bind 127.0.0.1 --directory . >/dev/null 2>&1 &
  web=$!
  # A DNS responder on 127.0.2.53:53 answering every query with "no such name".
  python3 - <<'PY' >/dev/null 2>&1 &
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.2.53", 53))
while True:
    q, peer = s.recvfrom(512)
    if len(q) >= 12:
        s.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\x00\x00" * 3 + q[12:], peer)
PY
  dns=$!
  sleep 0.5
  end=$((SECONDS + SECS - 2))
  while [ $SECONDS -lt $end ]; do
    python3 - "$port" <<'PY' || true
import socket, sys, urllib.request
port = int(sys.argv[1])
for path in ("/", "/README.md", "/Cargo.toml"):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1).read()
    except Exception:
        pass
# A DNS query for example.org to the demo's own responder (no network needed).
q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03org\x00\x00\x01\x00\x01"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(q, ("127.0.2.53", 53))
try:
    s.recv(512)
except OSError:
    pass
s.close()
PY
    ping -c 1 -W 1 127.0.0.1 >/dev/null 2>&1 || true
    sleep 0.3
  done
  kill "$web" "$dns" 2>/dev/null || true
  kill -TERM "$probe"
  wait "$probe" || true
  trap - EXIT
  IFACE=lo
  WINDOW=()
elif [ -d ../shared/pcaps/chrissanders ]; then
  echo "demo: not root, so no live capture; replaying ../shared/pcaps/chrissanders into $DB"
  "$goprobe" replay -d "$DB" --iface demo ../shared/pcaps/chrissanders/*.pcap* || true
  IFACE=demo
  WINDOW=(-f 2000-01-01) # those captures are years old; goquery's default is the last 30 days
else
  echo "demo: live capture needs root: run 'sudo make demo'"; exit 1
fi

for query in talk_conv apps_dpi; do
  echo
  case $query in talk_conv) echo "== top talkers" ;; *) echo "== top applications" ;; esac
  echo "\$ goquery -d $DB -i $IFACE ${WINDOW[*]:+${WINDOW[*]} }-n 10 $query"
  "$goquery" -d "$DB" -i "$IFACE" "${WINDOW[@]}" -n 10 "$query"
done
