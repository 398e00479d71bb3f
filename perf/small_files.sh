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
  "$(xxhsum -H3 f00042 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p')" ] ||
  { echo "hashes differ" >&2; exit 1; }
# Interleaved rounds (the order rotated each round) after one unrecorded warm-up, medians:
# on a shared machine only ratios from one run mean anything.
names=("bulkmap scan" "wc -l" "xxhsum -H3" "bulkmap scan --lines" "bulkmap scan --hash")
cmds=("$BM scan f* --no-progress" "wc -l f*" "xxhsum -H3 f*" "$BM scan f* --lines --no-progress"
      "$BM scan f* --hash --no-progress")
ROUNDS=${ROUNDS:-21}
declare -A times
for ((r = -1; r < ROUNDS; r++)); do
  for ((k = 0; k < ${#cmds[@]}; k++)); do
    i=$(( (k + (r < 0 ? 0 : r)) % ${#cmds[@]} ))
    t0=$EPOCHREALTIME
    eval "${cmds[$i]}" >/dev/null 2>&1
    t1=$EPOCHREALTIME
    [ $r -ge 0 ] && times[$i]+="$(echo "$t1 - $t0" | bc -l) "
  done
done
echo "| command ($N files of $SIZE bytes) | median ms | min ms | max ms |"
echo "|---|---:|---:|---:|"
for ((i = 0; i < ${#cmds[@]}; i++)); do
  tr ' ' '\n' <<<"${times[$i]}" | grep . | sort -g |
    awk -v n="${names[$i]}" '{v[NR]=$1} END {printf "| `%s` | %.1f | %.1f | %.1f |\n", n, 1000*v[int((NR+1)/2)], 1000*v[1], 1000*v[NR]}'
done
