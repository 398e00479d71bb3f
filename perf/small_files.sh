#!/usr/bin/env bash
# Many small files (issue 11): `bulkmap scan` of 10,000 files of 4 KiB against `wc -l` and
# `xxhsum -H3` on the same files, in the same hyperfine run (start-up and per-file cost,
# not bandwidth). Prints hyperfine's markdown table.
# usage: perf/small_files.sh BULKMAP [FILES] [SIZE]
set -euo pipefail
BM=${1:?path to bulkmap}
N=${2:-10000}
SIZE=${3:-4096}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmsmall.XXXXXX")
trap 'rm -rf "$T"' EXIT
python3 - "$T" "$N" "$SIZE" <<'PY'
import os, sys, random
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(11)
for i in range(n):
    # text-like: about one newline in 40 bytes
    b = bytes(r.choice(b"abcdefghijklmnopqrstuvwxyz0123456789 ,;\n") for _ in range(size))
    open(os.path.join(d, "f%05d" % i), "wb").write(b)
PY
cd "$T"
# The same answers first: the sum of the line counts, and one hash.
a=$("$BM" scan f* --lines --json --no-progress | sed -n 's/.*"total":{[^}]*"lines":\([0-9]*\).*/\1/p')
b=$(cat f* | wc -l)
[ "$a" = "$b" ] || { echo "line totals differ: $a $b" >&2; exit 1; }
[ "$("$BM" scan f00042 --hash --json --no-progress | sed -n 's/.*"xxh3":"\([0-9a-f]*\)".*/\1/p')" = \
  "$(xxhsum -H3 f00042 | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p')" ] ||
  { echo "hashes differ" >&2; exit 1; }
hyperfine -N --warmup 3 --runs 20 --export-markdown "$T/table.md" \
  -n "bulkmap scan (hash + lines)" "$BM scan $(echo f*) --no-progress" \
  -n "bulkmap scan --lines" "$BM scan $(echo f*) --lines --no-progress" \
  -n "wc -l" "wc -l $(echo f*)" \
  -n "bulkmap scan --hash" "$BM scan $(echo f*) --hash --no-progress" \
  -n "xxhsum -H3" "xxhsum -H3 $(echo f*)" >&2
cat "$T/table.md"
