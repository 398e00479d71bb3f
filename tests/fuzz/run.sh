#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (ASan + UBSan) and runs each for a bounded
# time from the seed corpus kept in tests/fuzz/corpus/NAME. Fails on any crash or finding.
#   tests/fuzz/run.sh [SECONDS_EACH] [BUILD_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
top="$(cd "$here/../.." && pwd)"
secs=${1:-${FUZZ_SECONDS:-20}}
out=${2:-$top/build/fuzz}
mkdir -p "$out"
flags=(-g -O1 -std=c11 -w -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$top/include" -I"$top/src")
lib=("$top"/src/*.c "$top"/src/posix/*.c)
# the JSON library the safetensors header parser uses, where the library uses one
extra_libs=$(pkg-config --libs jansson 2>/dev/null || true)
total=0
for name in plan parse trailer literal fold format; do
  if [ "$name" = literal ]; then
    clang "${flags[@]}" "$here/fuzz_$name.c" "$top/src/kernels.c" -o "$out/fuzz_$name"
  else
    clang "${flags[@]}" "$here/fuzz_$name.c" "${lib[@]}" -o "$out/fuzz_$name" -lpthread -lrt $extra_libs
  fi
  corpus="$out/corpus-$name"
  rm -rf "$corpus"; mkdir -p "$corpus"
  cp "$here/corpus/$name/"* "$corpus/" 2>/dev/null || true
  log="$out/fuzz_$name.log"
  if ! "$out/fuzz_$name" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$out/crash-$name-" \
      "$corpus" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: fuzz_$name FAILED (artifacts in $out)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  total=$((total + ${runs:-0}))
  echo "fuzz: fuzz_$name ok: ${runs:-?} executions in ${secs}s"
done
echo "fuzz: all harnesses ok, $total executions"
