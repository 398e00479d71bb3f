#!/usr/bin/env bash
# The tool's integration test for the Windows build, run under Wine: scan against xxhsum,
# wc -l and perl on the host, the usage and failure exit codes, and load held by one Wine
# process while another cats it. (The POSIX-only cases of test_tool.sh: RLIMIT_AS, FIFOs,
# /dev/shm and SIGBUS, have Windows counterparts in the Check suites.)
#   test_tool_wine.sh EMULATOR bulkmap.exe
set -u
EMU=${1:?emulator} BM=${2:?bulkmap.exe}
. "$(dirname "$0")/lib.sh"
NAME="Local\\bmwine-$$"
holder=""
at_exit 'kill $holder 2>/dev/null'

for n in 0 1 65535 65536 65537 300000; do
  head -c "$n" /dev/urandom >"$T/s$n"
  for w in 65536 200000; do
    out=$(bm scan "$(win "$T/s$n")" --json --no-progress --window "$w" 2>"$T/err") || { fail "scan s$n: $(cat "$T/err")"; continue; }
    [ "$(json "$out" xxh3)" = "$(xxh "$T/s$n")" ] && ok || fail "xxh3 s$n w$w: $out"
    [ "$(json "$out" lines)" = "$(wc -l <"$T/s$n")" ] && ok || fail "lines s$n w$w: $out"
  done
done
perl -e 'for (1..50000) { print "aaab" x ($_ % 7), "ab\nxyzzy", "a" x ($_ % 11), "\n" }' >"$T/text"
for lit in aa aab xyzzy; do
  out=$(bm scan "$(win "$T/text")" --count "$lit" --json --no-progress --window 64K)
  want=$(perlcount "$lit" "$T/text")
  [ "$(json "$out" count)" = "$want" ] && ok || fail "count $lit: $out != $want"
done
out=$(bm scan "$(win "$T/text")" --offset 70000 --length 123457 --json --no-progress --window 64K)
tail -c +70001 "$T/text" | head -c 123457 >"$T/cut"
[ "$(json "$out" xxh3)" = "$(xxh "$T/cut")" ] && ok || fail "--offset/--length: $out"

# Several FILEs and standard input (issue 11).
out=$(bm scan "$(win "$T/text")" "$(win "$T/s300000")" --json --no-progress | tr -d '\r')
[ "$(json "$(sed -n 's/.*"total":\(.*\)}$/\1/p' <<<"$out")" lines)" = $(( $(wc -l <"$T/text") + $(wc -l <"$T/s300000") )) ] && ok || fail "two files: $out"
out=$(bm scan - --json --no-progress --window 4096 <"$T/text")
[ "$(json "$out" xxh3)" = "$(xxh "$T/text")" ] && [ "$(json "$out" lines)" = "$(wc -l <"$T/text")" ] && ok || fail "scan - <file: $out"
out=$(cat "$T/text" | bm scan - --count aab --json --no-progress --window 4096)
[ "$(json "$out" count)" = "$(perlcount aab "$T/text")" ] && ok || fail "pipe --count: $out"
expect 0 -h
expect 0 -V

expect 1 scan "$(win "$T/missing")"
expect 1 scan "$(win "$T")"
expect 1 scan NUL
expect 2 scan "$(win "$T/text")" --offset 99999999
expect 2 scan "$(win "$T/text")" --window 0
expect 2 scan "$(win "$T/text")" --window 12Q
expect 2 scan "$(win "$T/text")" --threads 0
expect 2 scan "$(win "$T/text")" --bogus
expect 2 load "$(win "$T/text")" --name "bad/name"
expect 1 cat "Local\\nosuch-$$"
expect 0 info --json
expect 0 --version

# load holds the section (it dies with its last handle); a second process cats it.
"$EMU" "$BM" load "$(win "$T/text")" --name "$NAME" --no-progress --json >"$T/load" 2>"$T/loaderr" &
holder=$!
for i in $(seq 100); do grep -q xxh3 "$T/load" 2>/dev/null && break; sleep 0.2; done
if grep -q '"state":"ready"' "$T/load"; then
  ok
  bm cat "$NAME" >"$T/back" 2>"$T/err" && cmp -s "$T/back" "$T/text" && ok || fail "cat under Wine: $(cat "$T/err")"
  expect 1 load "$(win "$T/text")" --name "$NAME" --no-progress   # exists
  st=$(bm stat "$NAME" --json)
  [ "$(json "$st" state)" = ready ] && ok || fail "stat: $st"
else
  fail "load did not publish: $(cat "$T/loaderr")"
fi
kill -INT $holder 2>/dev/null
wait $holder; rc=$?
[ $rc -eq 0 ] && ok || fail "held load ended with $rc after Ctrl-C"
expect 1 cat "$NAME"   # gone with its last handle
finish "tool tests under Wine"
