#!/usr/bin/env bash
# `bulkmap load` of one build against another's on the same file, interleaved round by round
# (so that the machine's noise falls on both alike), for each page kind; prints one CSV row a
# run and the medians with their ratio. Used to show a change keeps load's speed.
#   perf/load_vs.sh NEW_BULKMAP OLD_BULKMAP [SIZE_MIB] [ROUNDS] [OUT_CSV]
set -euo pipefail
NEW=${1:?new bulkmap}
OLD=${2:?old bulkmap}
MIB=${3:-2048}
ROUNDS=${4:-8}
# Each round runs both builds, alternating which goes first; the first of a pair is
# measurably slower here (the memory the previous section gave back is not yet reusable),
# so an even number of rounds gives both builds the first place equally often.
ROUNDS=$(( (ROUNDS + 1) / 2 * 2 ))
CSV=${5:-/dev/null}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/bm-loadvs.XXXXXX")
name="bm-loadvs-$$"
cleanup() {
  "$NEW" rm --force "$name" >/dev/null 2>&1 || "$OLD" rm "$name" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
head -c $((MIB << 20)) /dev/urandom >"$dir/f"
echo "build,pages,round,seconds,bytes_per_second" | tee "$CSV"
run() { # build binary pages round (round 0: warm-up, not recorded)
  local out
  cat "$dir/f" >/dev/null # warm: DAMON evicts idle page cache here
  out=$("$2" load "$dir/f" --name "$name" --large-pages "$3" --json --no-progress)
  "$2" rm "$name"
  local s bps
  s=$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$out")
  bps=$(sed -n 's/.*"bytes_per_second":\([0-9.]*\).*/\1/p' <<<"$out")
  echo "$1,$3,$4,$s,$bps"
  [ "$4" = 0 ] || echo "$1,$3,$4,$s,$bps" >>"$CSV"
}
for pages in ${PAGES:-off auto}; do
  run new "$NEW" $pages 0 >/dev/null # warm-up, unrecorded
  run old "$OLD" $pages 0 >/dev/null
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run new "$NEW" $pages $r; run old "$OLD" $pages $r
    else run old "$OLD" $pages $r; run new "$NEW" $pages $r; fi
  done
done >"$dir/rows"
cat "$dir/rows"
python3 - "$dir/rows" <<'EOF'
import sys, statistics
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
rows = [r for r in rows if r[2] != "0"]  # the warm-up round is not recorded
for pages in sorted({r[1] for r in rows}, reverse=True):
    med = {}
    for b in ("new", "old"):
        v = [float(r[4]) for r in rows if r[0] == b and r[1] == pages]
        med[b] = statistics.median(v)
    print(f"pages={pages}: new {med['new']/1e9:.2f} GB/s, old {med['old']/1e9:.2f} GB/s, "
          f"new/old {med['new']/med['old']:.3f}")
EOF
