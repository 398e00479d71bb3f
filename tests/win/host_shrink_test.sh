#!/usr/bin/env bash
# Under Wine only: a real fault on a view whose file shrank. Windows refuses to shrink a
# mapped file (ERROR_USER_MAPPED_FILE, and Wine refuses it to Windows programs too), but
# the host can cut the file under the Wine process; the pages past the new end then fault
# (Wine reports SIGBUS as an access violation) and must become BM_ETRUNCATED. The child
# is check_bulkmap.exe --child win_shrunk_child (tests/check_win.c).
#   host_shrink_test.sh RUNNER CHECK_EXE WORKDIR
set -euo pipefail
run=$1 exe=$2 work=$3
mkdir -p "$work"
file="$work/shrink.bin" ready="$work/ready" go="$work/go"
rm -f "$ready" "$go"
head -c $((16 * 65536)) /dev/urandom >"$file"
"$run" "$exe" --child win_shrunk_child "$file" "$ready" "$go" &
pid=$!
trap 'kill -KILL $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  [ -e "$ready" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.25
done
[ -e "$ready" ] || { echo "host_shrink_test: child never mapped the file" >&2; exit 1; }
truncate -s 70000 "$file"
touch "$go"
rc=0
wait $pid || rc=$?
trap - EXIT
[ $rc -eq 0 ] || { echo "host_shrink_test: child exited $rc" >&2; exit 1; }
echo "host_shrink_test: ok"
