#!/usr/bin/env bash
# `make install` and `make uninstall` with PREFIX and the system folders inside a
# temporary folder: every file in place with its mode and the prefix substituted, the
# shipped example config valid, an existing config kept by a second install, the systemd
# unit accepted by `systemd-analyze verify` (when systemd is installed), the keys of the
# example config and of the README's table the same as goprobe's own, and uninstall
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

# The keys goprobe knows (from its own "unknown field" errors), the keys the example
# config describes and the keys of the README's configuration table are the same sets.
for section in "" "[log]" "[interfaces.eth0]"; do
    printf '%s\nzz_unknown = 1\n' "$section" >"$TMP/unknown.toml"
    "$P/bin/goprobe" check -c "$TMP/unknown.toml" >"$TMP/unknown-$section.err" 2>&1 &&
        fail "goprobe check accepted an unknown key in '$section'"
done
python3 - "$TMP" "$P/etc/goprobe.toml" "$ROOT/README.md" <<'PY' || fail "configuration keys differ"
import re, sys
tmp, example, readme = sys.argv[1:]
def known(section):
    err = open(f"{tmp}/unknown-{section}.err").read()
    m = re.search(r"expected (?:one of )?(.*)", err)
    assert m, f"no list of keys in: {err}"
    return set(re.findall(r"`(\w+)`", m.group(1)))
top, log, iface = known(""), known("[log]"), known("[interfaces.eth0]")
top -= {"log", "interfaces"}
# The example: `key =` lines, commented out or not, by section.
ex = {"": set(), "log": set(), "iface": set()}
sec = ""
for line in open(example):
    line = line.lstrip("# ").rstrip()
    if line.startswith("[log]"):
        sec = "log"
    elif line.startswith("[interfaces."):
        sec = "iface"
    m = re.match(r"(\w+) = ", line)
    if m:
        ex[sec].add(m.group(1))
# The README table: first column `key`, `key`, `[log] key`, `[interfaces.NAME] key`.
rd = {"": set(), "log": set(), "iface": set()}
text = open(readme).read().split("## Configuration", 1)[1].split("\n## ", 1)[0]
for cell in re.findall(r"^\| (.+?) \|", text, re.M):
    sec = "log" if cell.startswith("`[log]") else "iface" if cell.startswith("`[interfaces.") else ""
    for k in re.findall(r"`(?:\[[^\]]+\] )?(\w+)`", cell):
        rd[sec].add(k)
bad = []
for name, want, e, r in (("top level", top, ex[""], rd[""]), ("[log]", log, ex["log"], rd["log"]),
                         ("[interfaces.NAME]", iface, ex["iface"], rd["iface"])):
    if e != want:
        bad.append(f"{name}: goprobe knows {sorted(want)}, the example config has {sorted(e)}")
    if r != want:
        bad.append(f"{name}: goprobe knows {sorted(want)}, the README table has {sorted(r)}")
if bad:
    sys.exit("\n".join(bad))
PY

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
