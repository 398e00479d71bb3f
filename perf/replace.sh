#!/bin/bash
# How long a replace of a dataset takes against a first load, and the gap new readers see
# (none, by contract: docs/design.md section 7). Usage: perf/replace.sh BULKMAP [SIZE_MIB] [ROUNDS]
# A reader loop opens the name (bulkmap stat) as fast as it can during every replace and
# counts opens that did not find a ready dataset; the longest time between two successive
# successful opens is printed too (what a reader polling in a loop sees).
set -u
BM=${1:?usage: perf/replace.sh BULKMAP [SIZE_MIB] [ROUNDS]}
MIB=${2:-1024}
ROUNDS=${3:-5}
T=$(mktemp -d); trap 'rm -rf "$T"; "$BM" rm --force "$N" >/dev/null 2>&1' EXIT
N=perf-replace-$$
head -c $((MIB << 20)) /dev/urandom >"$T/a"
head -c $((MIB << 20)) /dev/urandom >"$T/b"
cat "$T/a" "$T/b" >/dev/null # both in the page cache: the copy, not the disk, is timed
secs() { "$BM" load "$1" --name "$N" ${2:-} --no-progress --large-pages off --json | sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p'; }
wall() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'; }
echo "size: ${MIB} MiB, ${ROUNDS} rounds, $(nproc) CPUs, $(uname -r)"
for r in $(seq 1 "$ROUNDS"); do
  "$BM" rm --force "$N" >/dev/null 2>&1
  first=$(wall "$BM" load "$T/a" --name "$N" --no-progress --large-pages off)
  # The reader loop during the replace.
  ( miss=0 opens=0 gap=0 last=$(date +%s%N)
    while [ ! -e "$T/stop" ]; do
      if "$BM" stat "$N" >/dev/null 2>&1; then
        now=$(date +%s%N); d=$(( (now - last) / 1000 )); [ $d -gt $gap ] && gap=$d; last=$now
      else miss=$((miss + 1)); fi
      opens=$((opens + 1))
    done
    echo "$opens $miss $gap" >"$T/reader" ) &
  rp=$!
  sleep 0.2
  f=$T/b; [ $((r % 2)) = 0 ] && f=$T/a
  repl=$(wall "$BM" load "$f" --name "$N" --replace --no-progress --large-pages off)
  sleep 0.2; touch "$T/stop"; wait $rp; rm -f "$T/stop"
  read opens miss gap <"$T/reader"
  echo "round $r: first load ${first} s, replace ${repl} s, reader: $opens opens, $miss not ready, longest gap between opens ${gap} us"
done
