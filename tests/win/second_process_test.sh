#!/usr/bin/env bash
# The windows preset's second-process test: `bulkmap.exe load FILE --name NAME` holds a
# section (on Windows a section dies with its last handle, so load always holds); a
# second Wine process, the plain Win32 second_process.exe (OpenFileMappingW +
# MapViewOfFile, nothing of bulkmap), reads the section by name and compares it with the
# file. Then load is interrupted (Ctrl-C: Wine turns SIGINT into CTRL_C_EVENT), must exit
# 0, and the section must be gone.
#   second_process_test.sh RUNNER BULKMAP_EXE SECOND_PROCESS_EXE WORKDIR
set -euo pipefail
run=$1 tool=$2 second=$3 work=$4
name="BmSecondProcess-$$"
mkdir -p "$work"
file="$work/payload.bin"
# 1 MiB + 3 bytes: the payload does not end on a page.
head -c 1048579 /dev/urandom >"$file"

"$run" "$tool" load "$file" --name "$name" --no-progress >"$work/load.out" 2>&1 &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
ready=0
for _ in $(seq 1 240); do
  if grep -q '^state: ready' <<<"$("$run" "$tool" stat "$name" 2>/dev/null)"; then ready=1; break; fi
  if ! kill -0 $pid 2>/dev/null; then break; fi
  sleep 0.25
done
if [ $ready -ne 1 ]; then
  echo "second_process_test: section $name never became ready" >&2
  cat "$work/load.out" >&2
  exit 1
fi
"$run" "$second" "$name" --expect "$file"

kill -INT $pid
rc=0
wait $pid || rc=$?
trap - EXIT
if [ $rc -ne 0 ]; then
  echo "second_process_test: load exited $rc after Ctrl-C" >&2
  cat "$work/load.out" >&2
  exit 1
fi
# The last handle went with the holder: the name is free again.
gone=0
for _ in $(seq 1 20); do
  if "$run" "$second" "$name" --expect "$file" >/dev/null 2>&1; then sleep 0.25; else gone=1; break; fi
done
[ $gone -eq 1 ] || { echo "second_process_test: $name still open after load ended" >&2; exit 1; }
echo "second_process_test: ok"
