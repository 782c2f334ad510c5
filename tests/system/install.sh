#!/usr/bin/env bash
# `make install` and `make uninstall` with PREFIX and the system folders inside a
# temporary folder: every file in place with its mode and the prefix substituted, the
# shipped example config valid, an existing config kept by a second install, the systemd
# unit accepted by `systemd-analyze verify` (when systemd is installed), and uninstall
# removing exactly what install added but the config and the database. Needs no root.
. "$(dirname "$0")/lib.sh"

need_cmd make
need_binaries

P=$TMP/goprobe
DIRS=(INITDIR="$TMP/etc/init.d" SYSTEMDDIR="$TMP/lib/systemd/system" CRONDIR="$TMP/etc/cron.d")
make_install PREFIX="$P" "${DIRS[@]}"

# path mode: what install must have put in place.
while read -r path mode; do
    [ -e "$path" ] || fail "make install did not install $path"
    [ "$(stat -c %a "$path")" = "$mode" ] || fail "$path has mode $(stat -c %a "$path"), want $mode"
done <<EOF2
$P/bin/goprobe 755
$P/bin/goquery 755
$P/etc/goprobe.toml 644
$P/db 750
$P/share/doc/goprobe/README.md 644
$TMP/etc/init.d/goprobe 755
$TMP/lib/systemd/system/goprobe.service 644
$TMP/etc/cron.d/goprobe 644
EOF2
grep -l '@PREFIX@' -r "$P/etc" "$TMP/etc" "$TMP/lib" && fail "@PREFIX@ left in an installed file"
"$P/bin/goprobe" --version >/dev/null || fail "the installed goprobe does not run"
"$P/bin/goprobe" check -c "$P/etc/goprobe.toml" >/dev/null || fail "the installed example config is invalid"
grep -q "^db_path = \"$P/db\"" "$P/etc/goprobe.toml" || fail "the installed config does not use $P/db"

echo '# mine' >>"$P/etc/goprobe.toml"
make_install PREFIX="$P" "${DIRS[@]}"
tail -n 1 "$P/etc/goprobe.toml" | grep -q '^# mine$' || fail "a second make install overwrote the config"

if command -v systemd-analyze >/dev/null; then
    out=$(systemd-analyze verify "$TMP/lib/systemd/system/goprobe.service" 2>&1) ||
        fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify complains: $out"
else
    note "no systemd-analyze: the unit is not verified"
fi

touch "$P/db/keep-me"
make -s -C "$ROOT" uninstall PREFIX="$P" "${DIRS[@]}" >"$TMP/uninstall.log" 2>&1 ||
    { cat "$TMP/uninstall.log"; fail "make uninstall"; }
left=$(cd "$TMP" && find goprobe etc lib -type f | sort | tr '\n' ' ')
[ "$left" = "goprobe/db/keep-me goprobe/etc/goprobe.toml " ] ||
    fail "after uninstall, files left: $left (want the config and the database only)"
pass
