#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` from the build, installed by dpkg into a throwaway root
# (dpkg --root: its own database, the machine's /usr and dpkg database never touched), the
# tool run from there, the Python module imported by Debian's python3 from that root's
# dist-packages (a directory Debian's python3 reads by default), the man page, docs,
# completion, pkg-config and the CMake package used from there; then removed (dpkg -r,
# --purge) and the root checked to hold nothing of it. The maintainer scripts run outside
# a chroot (the root has no shell) with `ldconfig` taken to be `ldconfig -r ROOT`, so they
# too act on the root only. Nothing else running on the machine matters to it.
# Skips (77) without root, dpkg or cpack.
#   test_deb.sh BUILD
set -uo pipefail
build=${1:?build dir}
here=$(cd "$(dirname "$0")" && pwd)
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "not root (dpkg's files are root's)"
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || skip "no dpkg"
command -v cpack >/dev/null || skip "no cpack"
[ -f "$build/CPackConfig.cmake" ] || skip "$build has no CPack configuration"
T=$(mktemp -d "${TMPDIR:-/tmp}/bmdeb.XXXXXX")
R=$T/root
checks=0 fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
trap 'rm -rf "$T"' EXIT

(cd "$build" && cpack -G DEB -B "$T/out" >"$T/cpack.log" 2>&1) || { cat "$T/cpack.log" >&2; echo "FAIL: cpack -G DEB"; exit 1; }
deb=$(ls "$T"/out/bulkmap_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "FAIL: no .deb in $T/out"; exit 1; }
echo "package: $deb"
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\.||' | grep -v '/$' >"$T/files"
# What the package must hold.
for f in /usr/bin/bulkmap /usr/include/bulkmap.h /usr/lib/pkgconfig/bulkmap.pc /usr/share/man/man1/bulkmap.1 \
  /usr/lib/cmake/bulkmap/bulkmapConfig.cmake /usr/share/doc/bulkmap/design.md /usr/share/doc/bulkmap/copyright \
  /usr/share/bash-completion/completions/bulkmap /usr/lib/python3/dist-packages/bulkmap/__init__.py; do
  grep -qx "$f" "$T/files" && ok || fail "the package lacks $f"
done
grep -q '/usr/lib/.*libbulkmap.so.0$' "$T/files" && grep -q '/libbulkmap.a$' "$T/files" && ok || fail "the package lacks a library"
grep -q python3 <<<"$(dpkg-deb -f "$deb" Depends)" && ok || fail "Depends lacks python3: $(dpkg-deb -f "$deb" Depends)"
# The machine's side, to show afterwards that it was not touched: what dpkg knows of
# bulkmap and which of the package's paths exist (normally none).
machine() {
  dpkg-query -W -f='${Status}\n' bulkmap 2>/dev/null || echo "not known"
  while read -r f; do [ -e "$f" ] && echo "exists: $f"; done <"$T/files"
}
machine >"$T/machine.before"

# The throwaway root: an empty dpkg database, /etc for ldconfig's cache.
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/etc" "$T/stub"
: >"$R/var/lib/dpkg/status"
# The maintainer scripts' ldconfig, acting on the root (dpkg gives the scripts DPKG_ROOT).
cat >"$T/stub/ldconfig" <<EOF
#!/bin/sh
echo "ldconfig \$* (DPKG_ROOT=\$DPKG_ROOT)" >>"$T/ldconfig.calls"
[ "\$DPKG_ROOT" = "$R" ] || { echo "ldconfig stub: DPKG_ROOT is '\$DPKG_ROOT', not $R" >&2; exit 1; }
exec /sbin/ldconfig -r "$R" "\$@"
EOF
chmod +x "$T/stub/ldconfig"
D=(env "PATH=$T/stub:$PATH" dpkg --root="$R" --force-script-chrootless --force-depends --log="$T/dpkg.history")

if "${D[@]}" -i "$deb" >"$T/dpkg.log" 2>&1; then ok; else fail "dpkg -i: $(cat "$T/dpkg.log")"; exit 1; fi
grep -q "^ii *bulkmap" <("${D[@]}" -l bulkmap 2>/dev/null) && ok || fail "the root's dpkg does not list bulkmap installed"
while read -r f; do [ -e "$R$f" ] || [ -L "$R$f" ] && ok || fail "$f not installed in the root"; done <"$T/files"
grep -q 'ldconfig' "$T/ldconfig.calls" 2>/dev/null && ok || fail "the postinst did not run ldconfig"
grep -q 'libbulkmap.so.0 .*=> /usr/lib/libbulkmap.so.0' <<<"$(/sbin/ldconfig -r "$R" -p 2>/dev/null)" && ok ||
  fail "libbulkmap.so.0 not in the root's ld.so.cache: $(/sbin/ldconfig -r "$R" -p 2>&1 | grep bulkmap)"
# The libraries the package's programs need: the root's own first, then the machine's.
# The system's library directory (/usr/lib, or /usr/lib/TRIPLET), not another copy the
# package may carry elsewhere.
libdir=$(dirname "$(grep -m1 -E '^/usr/lib(/[^/]+)?/libbulkmap\.so\.0$' "$T/files")")
export LD_LIBRARY_PATH="$R$libdir"
B=$R/usr/bin/bulkmap
for elf in "$B" "$R"/usr/lib/python3/dist-packages/bulkmap/_bulkmap*.so; do
  grep -qE 'RPATH|RUNPATH' <<<"$(readelf -d "$elf" 2>/dev/null)" && fail "$elf has an rpath: $(readelf -d "$elf" | grep -E 'RPATH|RUNPATH')" || ok
  if grep -q 'not found' <<<"$(ldd "$elf")"; then fail "$elf: $(ldd "$elf" | grep 'not found')"; else ok; fi
  if grep -q 'libbulkmap\.so' <<<"$(ldd "$elf")" && ! grep -q "libbulkmap\.so.* => $R/" <<<"$(ldd "$elf")"; then
    fail "$elf takes libbulkmap from outside the root: $(ldd "$elf" | grep libbulkmap)"
  else ok; fi
done

printf 'alpha\nbeta ERROR\ngamma WARN ERROR\n' >"$T/data.txt"
v=$("$B" --version) && ok || fail "bulkmap --version"
echo "installed: $v"
out=$("$B" scan "$T/data.txt" --count ERROR --count WARN --json --no-progress)
grep -q '"counts":{"ERROR":2,"WARN":1}' <<<"$out" && ok || fail "installed scan: $out"
if command -v xxhsum >/dev/null; then
  want=$(xxhsum -H3 "$T/data.txt" 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\).*$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p')
  got=$("$B" scan "$T/data.txt" --json --no-progress)
  grep -q "\"xxh3\":\"$want\"" <<<"$got" && ok || fail "installed scan hash: $got, xxhsum: $want"
fi
# The installed tool names where its docs are installed (/usr, not the root: it was built for /usr).
grep -q '/usr/share/doc/bulkmap' <<<"$("$B" --help)" && ok || fail "--help does not name /usr/share/doc/bulkmap"
[ -s "$R/usr/share/doc/bulkmap/README.md" ] && ok || fail "no README.md in /usr/share/doc/bulkmap"
if command -v man >/dev/null; then
  grep -q 'bulkmap' <<<"$(MANPAGER=cat man -l "$R/usr/share/man/man1/bulkmap.1" 2>/dev/null)" && ok || fail "the man page does not format"
  # man finds it by name in the root's man tree.
  [ "$(man -M "$R/usr/share/man" -w bulkmap 2>/dev/null)" = "$R/usr/share/man/man1/bulkmap.1" ] && ok ||
    fail "man -M ROOT/usr/share/man -w bulkmap: $(man -M "$R/usr/share/man" -w bulkmap 2>&1)"
else
  [ -s "$R/usr/share/man/man1/bulkmap.1" ] && ok || fail "no man page"
fi
# Debian's python3: its default path holds /usr/lib/python3/dist-packages (where the package
# puts the module), so with that one directory moved into the root, the module imports from
# there, from /, no bytecode left behind.
dp=/usr/lib/python3/dist-packages
/usr/bin/python3 -I -c "import sys; sys.exit(0 if '$dp' in sys.path else 1)" && ok ||
  fail "Debian's python3 does not read $dp by default"
py=$(cd / && env -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$R$dp" /usr/bin/python3 -c \
  "import bulkmap; print(bulkmap.__file__); print(bulkmap.scan('$T/data.txt', count='ERROR')['count'])" 2>&1)
[ "$(sed -n 2p <<<"$py")" = 2 ] && grep -q "^$R$dp/bulkmap/" <<<"$py" && ok || fail "python3 import: $py"
echo "python3: $(head -1 <<<"$py")"
grep -q . <<<"$(find "$R$dp" -name '__pycache__')" && fail "bytecode written into the root: $(find "$R$dp" -name '__pycache__')" || ok
# Completion, from the installed file, with the root's bulkmap first on PATH (the
# completion reads the commands and options from the tool's own --help).
complete_words() {
  PATH="$R/usr/bin:$PATH" bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bulkmap; echo "${COMPREPLY[*]}"' \
    _ "$R/usr/share/bash-completion/completions/bulkmap" "$@"
}
comp=$(complete_words bulkmap sc)
[ "$comp" = scan ] && ok || fail "installed completion of 'bulkmap sc': '$comp'"
comp=$(complete_words bulkmap scan --cou)
[ "$comp" = --count ] && ok || fail "installed completion of 'bulkmap scan --cou': '$comp'"
# The pkg-config file: prefix /usr as installed, and relocatable (${pcfiledir}), so from the
# root it names the root's headers and library.
pc=$R/usr/lib/pkgconfig/bulkmap.pc
PKG_CONFIG_PATH="$R/usr/lib/pkgconfig" pkg-config --validate bulkmap 2>"$T/pc.log" && ok || fail "pkg-config --validate: $(cat "$T/pc.log")"
pcflags=$(PKG_CONFIG_PATH="$R/usr/lib/pkgconfig" pkg-config --cflags --libs bulkmap)
pc_I=$(realpath -m "$(PKG_CONFIG_PATH="$R/usr/lib/pkgconfig" pkg-config --variable=includedir bulkmap)")
pc_L=$(realpath -m "$(PKG_CONFIG_PATH="$R/usr/lib/pkgconfig" pkg-config --variable=libdir bulkmap)")
[ "$pc_I" = "$R/usr/include" ] && [ "$pc_L" = "$R$libdir" ] && grep -q -- '-lbulkmap' <<<"$pcflags" && ok ||
  fail "pkg-config from the root: '$pcflags' ($(grep -E '^(prefix|libdir|includedir)=' "$pc" | tr '\n' ' '))"
# A C program against the installed package by pkg-config (the shared library, found in the root).
if cc -std=c11 "$here/../consumer/consumer.c" $pcflags -o "$T/consumer" 2>"$T/cc.log" && "$T/consumer" >/dev/null; then ok
else fail "consumer with pkg-config: $(cat "$T/cc.log")"; fi
grep -q "libbulkmap\.so\.0 => $R$libdir/" <<<"$(ldd "$T/consumer")" && ok || fail "consumer's libbulkmap: $(ldd "$T/consumer" | grep bulkmap)"
# And by CMake's find_package from the root (the static library and the shared one).
if cmake -S "$here/../consumer" -B "$T/cmk" -DCMAKE_PREFIX_PATH="$R/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  >"$T/cmake.log" 2>&1 && cmake --build "$T/cmk" >>"$T/cmake.log" 2>&1 && "$T/cmk/consumer" >/dev/null &&
  "$T/cmk/consumer_shared" >/dev/null; then ok
else fail "consumer with find_package: $(tail -20 "$T/cmake.log")"; fi
grep -q "bulkmap_DIR:PATH=$R/usr/lib/cmake/bulkmap" "$T/cmk/CMakeCache.txt" 2>/dev/null && ok ||
  fail "find_package found $(sed -n 's/^bulkmap_DIR:PATH=//p' "$T/cmk/CMakeCache.txt" 2>/dev/null), not the root's"

"${D[@]}" -r bulkmap >"$T/dpkg.log" 2>&1 && ok || fail "dpkg -r: $(cat "$T/dpkg.log")"
"${D[@]}" --purge bulkmap >>"$T/dpkg.log" 2>&1 && ok || fail "dpkg --purge: $(cat "$T/dpkg.log")"
grep -qi 'warning' "$T/dpkg.log" && fail "dpkg warned: $(cat "$T/dpkg.log")" || ok
[ "$(grep -c 'ldconfig' "$T/ldconfig.calls")" -ge 2 ] && ok || fail "the postrm did not run ldconfig: $(cat "$T/ldconfig.calls")"
while read -r f; do [ ! -e "$R$f" ] && [ ! -L "$R$f" ] && ok || fail "$f left after dpkg -r"; done <"$T/files"
"${D[@]}" -s bulkmap >/dev/null 2>&1 && fail "bulkmap still known to the root's dpkg" || ok
# Nothing left in the root but dpkg's own database and ldconfig's cache.
(cd "$R" && find . -mindepth 1 ! -type d) | grep -v -E '^\./(var/lib/dpkg/|etc/ld\.so\.cache$)' >"$T/left"
[ ! -s "$T/left" ] && ok || fail "left in the root after --purge: $(head -20 "$T/left")"
# The machine: as it was (what dpkg knows of bulkmap, and the package's paths).
machine >"$T/machine.after"
cmp -s "$T/machine.before" "$T/machine.after" && ok || fail "the machine changed: $(diff "$T/machine.before" "$T/machine.after")"
echo "removed: dpkg -r and --purge in the root, $(wc -l <"$T/files") files gone"
echo "test_deb: $checks checks, $fails failed"
[ $fails = 0 ]
