#!/bin/bash
# examples/scan_stdin.c, the C program that scans standard input with bm_scan_fd, against
# xxhsum -H3 and wc of the same bytes: through a pipe (empty, one buffer exactly, buffers
# and a bit, fed slowly), a FIFO, a redirected file, and a closed stdin (a clear error).
# usage: test_scan_stdin.sh SCAN_STDIN [EMULATOR]   (run by ctest)
BM=$1 EMU=${2:-}
. "$(dirname "$0")/../tool/lib.sh"

# check NAME FILE: feeding FILE through a pipe gives xxhsum's hash and wc's counts.
check_out() {
  local name=$1 file=$2 out=$3
  local want_h want_b want_l
  want_h=$(xxh "$file") want_b=$(wc -c <"$file") want_l=$(wc -l <"$file")
  # (under Wine the output has CRLF line ends)
  out=$(tr -d '\r' <<<"$out")
  if [ "$(sed -n 's/^xxh3: //p' <<<"$out")" = "$want_h" ] &&
     [ "$(sed -n 's/^bytes: //p' <<<"$out")" = "$want_b" ] &&
     [ "$(sed -n 's/^lines: //p' <<<"$out")" = "$want_l" ]; then ok
  else fail "$name: got '$(tr '\n' ' ' <<<"$out")', want xxh3 $want_h bytes $want_b lines $want_l"; fi
}

: >"$T/empty"
printf 'hello\nworld\n' >"$T/small"
head -c $((8 << 20)) /dev/urandom >"$T/one"                 # the default buffer, exactly
{ cat "$T/one"; printf 'x\n'; } >"$T/one_plus"
head -c $((20 << 20 | 12345)) /dev/urandom | tr '\000-\077' '\n' >"$T/big"

for f in empty small one one_plus big; do
  check_out "pipe $f" "$T/$f" "$(cat "$T/$f" | bm)"
done
# a writer that sends in small pieces, now and then: the reader gets short reads
check_out "slow writer" "$T/small" "$( (printf 'hello\n'; sleep 0.3; printf 'world\n') | bm)"
check_out "piecewise" "$T/big" "$(dd if="$T/big" bs=4093 status=none | bm)"
# standard input redirected from a file: read as a stream too
check_out "file" "$T/big" "$(bm <"$T/big")"

if [ -z "$EMU" ]; then
  mkfifo "$T/fifo"
  (cat "$T/one_plus" >"$T/fifo") &
  check_out "fifo" "$T/one_plus" "$(bm <"$T/fifo")"
  wait
  # no standard input at all: EINVAL, and the OS's EBADF (9) named
  bm <&- >"$T/out" 2>"$T/err"
  rc=$?
  if [ $rc -eq 1 ] && grep -q 'EINVAL, OS error 9' "$T/err"; then ok
  else fail "closed stdin: exit $rc, $(cat "$T/err")"; fi
else
  skip "FIFO and closed stdin: POSIX only"
fi

finish scan_stdin
