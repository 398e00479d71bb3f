#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` from the build, installed with dpkg -i, the tool run,
# the Python module imported by Debian's python3 with no extra paths, the man page, docs,
# completion and pkg-config used; then removed (dpkg -r, --purge) and the machine checked
# to be as it was. Skips (77) without root, dpkg or cpack, or when a bulkmap package or
# any file it would install is already there.
#   test_deb.sh BUILD
set -uo pipefail
build=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root (dpkg -i needs it)"
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || skip "no dpkg"
command -v cpack >/dev/null || skip "no cpack"
[ -f "$build/CPackConfig.cmake" ] || skip "$build has no CPack configuration"
T=$(mktemp -d "${TMPDIR:-/tmp}/bmdeb.XXXXXX")
checks=0 fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
installed=0
cleanup() {
  if [ $installed = 1 ]; then dpkg --purge bulkmap >/dev/null 2>&1 || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
# One package test at a time on the machine (dpkg has one database).
exec 9>/tmp/bulkmap-package-test.lock
flock 9

(cd "$build" && cpack -G DEB -B "$T/out" >"$T/cpack.log" 2>&1) || { cat "$T/cpack.log" >&2; echo "FAIL: cpack -G DEB"; exit 1; }
deb=$(ls "$T"/out/bulkmap_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "FAIL: no .deb in $T/out"; exit 1; }
echo "package: $deb"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||' | grep -v '/$' >"$T/files"
dpkg-query -W -f='${Status}' bulkmap 2>/dev/null | grep -q "ok installed" && skip "a bulkmap package is installed already"
while read -r f; do [ ! -e "$f" ] || skip "$f exists already (an install outside dpkg?)"; done <"$T/files"
# What the package must hold.
for f in /usr/bin/bulkmap /usr/include/bulkmap.h /usr/lib/pkgconfig/bulkmap.pc /usr/share/man/man1/bulkmap.1 \
  /usr/lib/cmake/bulkmap/bulkmapConfig.cmake /usr/share/doc/bulkmap/design.md /usr/share/doc/bulkmap/copyright \
  /usr/share/bash-completion/completions/bulkmap /usr/lib/python3/dist-packages/bulkmap/__init__.py; do
  grep -qx "$f" "$T/files" && ok || fail "the package lacks $f"
done
grep -q '/usr/lib/.*libbulkmap.so.0$' "$T/files" && grep -q '/libbulkmap.a$' "$T/files" && ok || fail "the package lacks a library"
dpkg-deb -f "$deb" Depends | grep -q python3 && ok || fail "Depends lacks python3: $(dpkg-deb -f "$deb" Depends)"
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /work -o -path /var/tmp \) -prune -o -print 2>/dev/null | sort >"$T/before"

if dpkg -i "$deb" >"$T/dpkg.log" 2>&1; then ok; installed=1; else fail "dpkg -i: $(cat "$T/dpkg.log")"; exit 1; fi
printf 'alpha\nbeta ERROR\ngamma WARN ERROR\n' >"$T/data.txt"
v=$(/usr/bin/bulkmap --version) && ok || fail "bulkmap --version"
echo "installed: $v"
out=$(/usr/bin/bulkmap scan "$T/data.txt" --count ERROR --count WARN --json --no-progress)
grep -q '"counts":{"ERROR":2,"WARN":1}' <<<"$out" && ok || fail "installed scan: $out"
if command -v xxhsum >/dev/null; then
  want=$(xxhsum -H3 "$T/data.txt" 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\).*$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p')
  got=$(/usr/bin/bulkmap scan "$T/data.txt" --json --no-progress)
  grep -q "\"xxh3\":\"$want\"" <<<"$got" && ok || fail "installed scan hash: $got, xxhsum: $want"
fi
/usr/bin/bulkmap --help | grep -q '/usr/share/doc/bulkmap' && ok || fail "--help does not name /usr/share/doc/bulkmap"
man -w bulkmap >/dev/null 2>&1 || [ -f /usr/share/man/man1/bulkmap.1 ] && ok || fail "no man page"
# Debian's python3, no PYTHONPATH, from /, no bytecode left behind.
py=$(cd / && env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -c \
  "import bulkmap; print(bulkmap.__file__); print(bulkmap.scan('$T/data.txt', count='ERROR')['count'])" 2>&1)
[ "$(sed -n 2p <<<"$py")" = 2 ] && grep -q '^/usr/lib/python3/dist-packages/bulkmap/' <<<"$py" && ok || fail "python3 import: $py"
echo "python3: $(head -1 <<<"$py")"
# Completion, from the installed file.
comp=$(bash -c 'source /usr/share/bash-completion/completions/bulkmap; COMP_WORDS=(bulkmap sc); COMP_CWORD=1; _bulkmap; echo "${COMPREPLY[*]}"')
[ "$comp" = scan ] && ok || fail "installed completion: '$comp'"
# A C program against the installed package, by pkg-config (the shared library) and CMake.
if cc -std=c11 "$here/../consumer/consumer.c" $(pkg-config --cflags --libs bulkmap) -o "$T/consumer" 2>"$T/cc.log" && "$T/consumer" >/dev/null; then ok
else fail "consumer with pkg-config: $(cat "$T/cc.log")"; fi

dpkg -r bulkmap >"$T/dpkg.log" 2>&1 && ok || fail "dpkg -r: $(cat "$T/dpkg.log")"
dpkg --purge bulkmap >>"$T/dpkg.log" 2>&1 && ok || fail "dpkg --purge: $(cat "$T/dpkg.log")"
installed=0
grep -qi 'warning' "$T/dpkg.log" && fail "dpkg warned: $(cat "$T/dpkg.log")" || ok
while read -r f; do [ ! -e "$f" ] && ok || fail "$f left after dpkg -r"; done <"$T/files"
dpkg-query -W -f='${Status}' bulkmap 2>/dev/null | grep -q "installed" && fail "bulkmap still known to dpkg" || ok
find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /work -o -path /var/tmp \) -prune -o -print 2>/dev/null | sort >"$T/after"
# dpkg's own database and logs change; nothing else may.
diff "$T/before" "$T/after" | grep '^[<>]' | grep -v -E ' /var/(lib/dpkg|log|cache)(/|$)' >"$T/diff"
[ ! -s "$T/diff" ] && ok || fail "the machine differs after removal: $(head -20 "$T/diff")"
echo "removed: dpkg -r and --purge, $(wc -l <"$T/files") files gone"
echo "test_deb: $checks checks, $fails failed"
[ $fails = 0 ]
