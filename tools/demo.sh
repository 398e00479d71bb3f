#!/usr/bin/env bash
# The demo of README.md: makes a demo dataset, scans it, loads it into a named shared
# section, reads it back from a second process and removes it.
#   tools/demo.sh BUILD_DIR [SIZE_MIB]
set -euo pipefail
BM="${1:-build/default}/tools/bulkmap"
MIB=${2:-512}
BM=$(cd "$(dirname "$BM")" && pwd)/$(basename "$BM")
# Each command is printed before it runs, as it could be typed.
run() {
  printf '$'
  printf ' %q' "$@" | sed "s|$BM|bulkmap|g"
  printf '\n'
  "$@"
}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/bulkmap-demo.XXXXXX")
name="bulkmap-demo-$$"
trap '"$BM" rm "$name" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

echo "== the tool: $BM (bulkmap below; $("$BM" --version))"
echo
echo "== machine (bulkmap info)"
run "$BM" info
echo
echo "== making a ${MIB} MiB demo dataset (text lines) in $dir"
(set +o pipefail; base64 -w 100 /dev/urandom | head -c $((MIB << 20)) >"$dir/demo.txt")
printf 'needle\n' >>"$dir/demo.txt"
echo
echo "== bulkmap scan (hash, lines, and two literals in one pass), in 16 MiB windows"
run "$BM" scan "$dir/demo.txt" --hash --lines --count needle --count ERROR --window 16MiB --no-progress
echo
echo "== bulkmap load into the shared section '$name'"
run "$BM" load "$dir/demo.txt" --name "$name" --no-progress
echo
echo "== a second process: bulkmap stat, then bulkmap cat compared with the file"
run "$BM" stat "$name"
echo '$ bulkmap cat '"$name"' | cmp - '"$dir/demo.txt"
if "$BM" cat "$name" | cmp -s - "$dir/demo.txt"; then
  echo "cat: identical to the file loaded ($(stat -c %s "$dir/demo.txt") bytes, checksum verified)"
else
  echo "cat: DIFFERS from the file loaded" >&2
  exit 1
fi
run "$BM" rm "$name"
echo "rm: section $name removed"
echo
echo "== where it is, and how to install it"
echo "the tool:        $BM   (try: $BM help scan)"
echo "install it:      cmake --install $(dirname "$(dirname "$BM")")   (into /usr/local: tool, library, man page,"
echo "                 Python module, docs, bash completion; --prefix DIR for elsewhere)"
echo "Debian package:  (cd $(dirname "$(dirname "$BM")") && cpack -G DEB) && dpkg -i bulkmap_*.deb"
echo "Python only:     pip install .   (or python3 -m venv --system-site-packages v && v/bin/pip install --no-build-isolation .)"
