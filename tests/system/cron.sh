#!/usr/bin/env bash
# The cron retention job as installed: `make install` with PREFIX and the system folders
# inside a temporary folder (so the paths written into the installed files are real), a
# database replayed by goprobe from a capture of known packets on days older and newer
# than the retention period, then the exact command line of the installed cron file, run
# the way cron runs it (its SHELL and PATH, nothing else): with retention_days = 90 exactly
# the old days go and the others keep every flow; with retention_days = 0 or without the
# key everything stays. Needs no root.
. "$(dirname "$0")/lib.sh"

need_cmd python3 make
need_binaries

P=$TMP/goprobe
make_install PREFIX="$P" INITDIR="$TMP/etc/init.d" SYSTEMDDIR="$TMP/lib/systemd/system" \
    CRONDIR="$TMP/etc/cron.d"
CRONFILE=$TMP/etc/cron.d/goprobe
CONF=$P/etc/goprobe.toml
DB=$TMP/db
[ -f "$CRONFILE" ] || fail "make install did not install the cron file"

# The cron file: its variables and its one job line (m h dom mon dow user command).
cron_env=()
cron_cmd=
while IFS= read -r line; do
    case "$line" in
    '' | '#'*) ;;
    [A-Z]*=*) cron_env+=("$line") ;;
    *)
        [ -z "$cron_cmd" ] || fail "more than one job line in the cron file"
        read -r m h dom mon dow user cmd <<<"$line"
        [ "$user" = root ] || fail "cron job runs as '$user', want root"
        for f in "$m" "$h" "$dom" "$mon" "$dow"; do
            [[ $f =~ ^[0-9*/,-]+$ ]] || fail "bad schedule field '$f' in: $line"
        done
        [ "$dom $mon $dow" = "* * *" ] || fail "the retention job should run daily: $line"
        cron_cmd=$cmd
        ;;
    esac
done <"$CRONFILE"
[ -n "$cron_cmd" ] || fail "no job line in the cron file"
case "$cron_cmd" in
"$P/bin/goprobe clean -c $CONF"*) ;;
*) fail "cron job does not run the installed goprobe clean with the installed config: $cron_cmd" ;;
esac
note "cron runs: $cron_cmd"
run_cron_job() { env -i "${cron_env[@]}" sh -c "$cron_cmd"; }

# Not across midnight UTC: "today" must be the same day for the capture and the job.
left=$((86400 - $(date -u +%s) % 86400))
[ $left -lt 90 ] && sleep $((left + 2))

# A capture with packets on each day below (days before today, UTC): 3 UDP datagrams
# from 10.9.K/256.K%256 to 10.8.0.1:53 at 06:00, so each day's flow is known.
OLD_DAYS="400 200 92 91"
NEW_DAYS="90 89 30 1"
python3 - "$TMP/days.pcap" $OLD_DAYS $NEW_DAYS <<'PY' || fail "writing the capture"
import datetime, struct, sys
out, days = sys.argv[1], sorted((int(d) for d in sys.argv[2:]), reverse=True)
today = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
def csum(b):
    s = sum(struct.unpack("!10H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
with open(out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for k in days:
        ts = int((today - datetime.timedelta(days=k, hours=-6)).timestamp())
        src = bytes([10, 9, k // 256, k % 256])
        for i in range(3):
            payload = b"d" * 50
            udp = struct.pack("!HHHH", 40000 + i, 53, 8 + len(payload), 0) + payload
            hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0, src, bytes([10, 8, 0, 1]))
            hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
            frame = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02" + b"\x08\x00" + hdr + udp
            f.write(struct.pack("<IIII", ts + i, 0, len(frame), len(frame)) + frame)
PY
"$GOPROBE_BUILD/goprobe" replay -d "$DB.orig" --iface cron "$TMP/days.pcap" >"$TMP/replay.log" 2>&1 ||
    { cat "$TMP/replay.log"; fail "goprobe replay"; }

# check_days WANTED_DAYS...: the database holds exactly these days, each with its 3
# datagrams of 92 bytes (14 + 20 + 8 + 50) from its own source.
check_days() {
    "$P/bin/goquery" -d "$DB" -i cron -f 2000-01-01 -n 0 -e json time,sip >"$TMP/q.json" 2>&1 ||
        { [ $# = 0 ] && grep -q "no data" "$TMP/q.json"; } ||
        fail "goquery: $(cat "$TMP/q.json")"
    python3 - "$TMP/q.json" "$@" <<'PY'
import datetime, json, sys
want = {}
today = datetime.datetime.now(datetime.timezone.utc).date()
for k in map(int, sys.argv[2:]):
    want[str(today - datetime.timedelta(days=k))] = (f"10.9.{k // 256}.{k % 256}", [276, 0, 3, 0])
try:
    rows = json.load(open(sys.argv[1])).get("rows", [])
except ValueError:
    rows = []  # goquery said "no data"
got = {}
for r in rows:
    day = r["labels"]["time"][:10]
    c = r["counters"]
    prev = got.get(day, (r["attributes"]["sip"], [0, 0, 0, 0]))[1]
    got[day] = (r["attributes"]["sip"], [a + b for a, b in zip(prev, [c["bs"], c["br"], c["ps"], c["pr"]])])
if got != want:
    sys.exit(f"days in the database: {sorted(got.items())}\n want: {sorted(want.items())}")
PY
}

# write_config RETENTION_LINE
write_config() {
    printf '# written by tests/system/cron.sh\ndb_path = "%s"\n%s\n' "$DB" "$1" >"$CONF"
}

rm -rf "$DB" && cp -a "$DB.orig" "$DB"
check "the replayed database holds every day" check_days $OLD_DAYS $NEW_DAYS

write_config "retention_days = 90"
run_cron_job || fail "the cron job failed with retention_days = 90"
check "retention 90: exactly the days older than 90 days are gone" check_days $NEW_DAYS
run_cron_job || fail "the cron job failed the second time"
check "retention 90, second run: nothing more goes" check_days $NEW_DAYS
ls "$DB/cron" | grep -q "^$(date -u -d "400 days ago" +%Y)$" &&
    [ "$(date -u -d "400 days ago" +%Y)" != "$(date -u -d "90 days ago" +%Y)" ] &&
    fail "the emptied year folder remains"

for keep in "retention_days = 0" "# no retention_days"; do
    rm -rf "$DB" && cp -a "$DB.orig" "$DB"
    write_config "$keep"
    run_cron_job || fail "the cron job failed with '$keep'"
    check "'$keep' keeps every day" check_days $OLD_DAYS $NEW_DAYS
done

# The command line itself, to see what the job logs: what it deleted.
rm -rf "$DB" && cp -a "$DB.orig" "$DB"
write_config "retention_days = 90"
out=$("$P/bin/goprobe" clean -c "$CONF" 2>&1) || fail "goprobe clean: $out"
[ "$(grep -c '^deleted cron ' <<<"$out")" = 4 ] || fail "goprobe clean did not report 4 deleted days: $out"
note "$(tail -n 1 <<<"$out")"
pass
