#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for a bounded
# time from the seed corpus kept in tests/fuzz/corpus/NAME. Fails on any crash or finding.
#   tests/fuzz/run.sh [SECONDS_EACH] [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
secs=${1:-${FUZZ_SECONDS:-20}}
failed=()
out=${2:-$top/build/fuzz}
mkdir -p "$out"
flags=(-g -O1 -std=c11 -w -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$top/include" -I"$top/src")
# the JSON library the safetensors header parser uses, where the library uses one
extra_libs=$(pkg-config --libs jansson 2>/dev/null || true)
# The library compiled once (instrumented for coverage, not linked with libFuzzer's main),
# two files at a time, into one archive every harness links.
objs="$out/obj"
rm -rf "$objs"; mkdir -p "$objs"
printf '%s\n' "$top"/src/*.c "$top"/src/posix/*.c |
  xargs -P "$(nproc)" -I{} sh -c 'o="$1/$(echo "$0" | sed "s|^$2/||; s|/|_|g").o"; shift 2; exec "$@" -c "$0" -o "$o"' \
    {} "$objs" "$top" clang -g -O1 -std=c11 -w -fsanitize=fuzzer-no-link,address,undefined \
    -fno-sanitize-recover=all -I"$top/include" -I"$top/src"
rm -f "$out/libbulkmap_fuzz.a"
ar rcs "$out/libbulkmap_fuzz.a" "$objs"/*.o
names="plan parse trailer literal fold format"
build_one() {
  if [ "$1" = literal ]; then
    clang "${flags[@]}" "$here/fuzz_$1.c" "$top/src/kernels.c" -o "$out/fuzz_$1"
  else
    clang "${flags[@]}" "$here/fuzz_$1.c" "$out/libbulkmap_fuzz.a" -o "$out/fuzz_$1" -lpthread -lrt $extra_libs
  fi
}
# The harnesses compiled and linked as many at once as there are CPUs.
pids=()
for name in $names; do
  build_one "$name" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$(nproc)" ]; then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for pid in "${pids[@]}"; do wait "$pid"; done
# Each harness for its own SECONDS, as many at once as there are CPUs.
run_one() {
  local name=$1 corpus="$out/corpus-$1" log="$out/fuzz_$1.log"
  rm -rf "$corpus"; mkdir -p "$corpus"
  cp "$here/corpus/$name/"* "$corpus/" 2>/dev/null || true
  "$out/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/crash-$name-" \
    "$corpus" >"$log" 2>&1
}
pids=() ran=()
status=0
for name in $names; do
  run_one "$name" &
  pids+=($!) ran+=("$name")
  if [ ${#pids[@]} -ge "$(nproc)" ]; then
    wait "${pids[0]}" || { status=1; failed+=("${ran[0]}"); }
    pids=("${pids[@]:1}") ran=("${ran[@]:1}")
  fi
done
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { status=1; failed+=("${ran[$i]}"); }; done
total=0
for name in $names; do
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$name.log")
  total=$((total + ${runs:-0}))
  echo "fuzz: fuzz_$name: ${runs:-?} executions in ${secs}s"
done
if [ $status -ne 0 ]; then
  for name in "${failed[@]}"; do tail -40 "$out/fuzz_$name.log" >&2; echo "fuzz: fuzz_$name FAILED (artifacts in $out)" >&2; done
  exit 1
fi
echo "fuzz: all harnesses ok, $total executions"
