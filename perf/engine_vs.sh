#!/usr/bin/env bash
# The scan engine against the previous build and the tools people use, interleaved round
# by round (the machine's noise falls on both alike), each pair's order alternating. Every
# file is read once right before each run (DAMON evicts idle page cache here). Prints one
# CSV row a run and, for each case, both medians and their ratio.
#   perf/engine_vs.sh NEW_BULKMAP OLD_BULKMAP WORDCOUNT_EXAMPLE [SIZE_MIB] [ROUNDS] [OUT_CSV]
# WORDCOUNT_EXAMPLE: README's C example (tests/readme/wordcount.c) built against the library.
set -euo pipefail
NEW=${1:?new bulkmap}
OLD=${2:?old bulkmap}
WC=${3:?the C word count example}
MIB=${4:-1024}
ROUNDS=$(( (${5:-7} + 1) / 2 * 2 ))
CSV=${6:-/dev/null}
dir=$(mktemp -d "${TMPDIR:-/var/tmp}/bm-engvs.XXXXXX")
trap 'rm -rf "$dir"' EXIT
head -c $((MIB << 20)) /dev/urandom >"$dir/rand"
head -c $((MIB * 3 / 4 << 20)) /dev/urandom | base64 >"$dir/b64"   # ~MIB of text, 76-byte lines
python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    b = b'a' * (1 << 24)
    for _ in range(int(sys.argv[2]) // 16): f.write(b)" "$dir/aaaa" "$MIB"

# case name, file, then the two commands (A: ours, B: the peer), | separated
cases=(
  "hash|rand|$NEW scan $dir/rand --hash --no-progress|$OLD scan $dir/rand --hash --no-progress"
  "lines|b64|$NEW scan $dir/b64 --lines --no-progress|$OLD scan $dir/b64 --lines --no-progress"
  "example_vs_tool|b64|$WC $dir/b64 abc|$NEW scan $dir/b64 --lines --count abc --no-progress"
  "periodic_vs_rg|aaaa|$NEW scan $dir/aaaa --count aa --no-progress|rg --count-matches aa $dir/aaaa"
  "periodic_2t_vs_1t|aaaa|$NEW scan $dir/aaaa --count aa --threads 2 --no-progress|$NEW scan $dir/aaaa --count aa --threads 1 --no-progress"
  "periodic_vs_old|aaaa|$NEW scan $dir/aaaa --count aa --no-progress|$OLD scan $dir/aaaa --count aa --no-progress"
  "dense_vs_rg|b64|$NEW scan $dir/b64 --count a --no-progress|rg --count-matches a $dir/b64"
  "dense_vs_old|b64|$NEW scan $dir/b64 --count a --no-progress|$OLD scan $dir/b64 --count a --no-progress"
)
timed() { # file command...: seconds of the command, the file read just before
  cat "$1" >/dev/null; shift
  local t0 t1
  t0=$EPOCHREALTIME; "$@" >/dev/null; t1=$EPOCHREALTIME
  awk "BEGIN { printf \"%.6f\", $t1 - $t0 }"
}
echo "case,side,round,seconds" | tee "$CSV"
for c in "${cases[@]}"; do
  IFS='|' read -r name file a b <<<"$c"
  timed "$dir/$file" $a >/dev/null; timed "$dir/$file" $b >/dev/null # warm-up
  for r in $(seq 1 "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then
      echo "$name,a,$r,$(timed "$dir/$file" $a)"; echo "$name,b,$r,$(timed "$dir/$file" $b)"
    else
      echo "$name,b,$r,$(timed "$dir/$file" $b)"; echo "$name,a,$r,$(timed "$dir/$file" $a)"
    fi
  done
done | tee -a "$CSV" >"$dir/rows"
python3 - "$dir/rows" <<'PY'
import sys, statistics
rows = [l.strip().split(",") for l in open(sys.argv[1]) if l.strip()]
for name in dict.fromkeys(r[0] for r in rows):
    a = statistics.median(float(r[3]) for r in rows if r[0] == name and r[1] == "a")
    b = statistics.median(float(r[3]) for r in rows if r[0] == name and r[1] == "b")
    print(f"{name}: A {a:.3f} s, B {b:.3f} s, B/A {b/a:.2f}")
PY
