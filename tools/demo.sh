#!/usr/bin/env bash
# The demo of README.md: makes a demo dataset, scans it, loads it into a named shared
# section, reads it back from a second process and removes it.
#   tools/demo.sh BUILD_DIR [SIZE_MIB]
set -euo pipefail
BM="${1:-build/default}/tools/bulkmap"
MIB=${2:-512}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/bulkmap-demo.XXXXXX")
name="bulkmap-demo-$$"
trap '"$BM" rm "$name" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT

echo "== machine (bulkmap info)"
"$BM" info
echo
echo "== making a ${MIB} MiB demo dataset (text lines) in $dir"
(set +o pipefail; base64 -w 100 /dev/urandom | head -c $((MIB << 20)) >"$dir/demo.txt")
printf 'needle\n' >>"$dir/demo.txt"
echo
echo "== bulkmap scan (hash, lines, and a literal), in 16 MiB windows"
"$BM" scan "$dir/demo.txt" --hash --lines --count needle --window 16M --no-progress
echo
echo "== bulkmap load into the shared section '$name'"
"$BM" load "$dir/demo.txt" --name "$name" --no-progress
echo
echo "== a second process: bulkmap stat, then bulkmap cat compared with the file"
"$BM" stat "$name"
if "$BM" cat "$name" | cmp -s - "$dir/demo.txt"; then
  echo "cat: identical to the file loaded ($(stat -c %s "$dir/demo.txt") bytes, checksum verified)"
else
  echo "cat: DIFFERS from the file loaded" >&2
  exit 1
fi
"$BM" rm "$name"
echo "rm: section $name removed"
