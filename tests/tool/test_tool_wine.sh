#!/usr/bin/env bash
# The tool's integration test for the Windows build, run under Wine: scan against xxhsum,
# wc -l and perl on the host, the usage and failure exit codes, and load held by one Wine
# process while another cats it. (The POSIX-only cases of test_tool.sh: RLIMIT_AS, FIFOs,
# /dev/shm and SIGBUS, have Windows counterparts in the Check suites.)
#   test_tool_wine.sh EMULATOR bulkmap.exe
set -u
EMU=${1:?emulator} EXE=${2:?bulkmap.exe}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmwine.XXXXXX")
NAME="Local\\bmwine-$$"
fails=0 checks=0
trap 'kill $holder 2>/dev/null; rm -rf "$T"' EXIT
holder=""
BM() { "$EMU" "$EXE" "$@"; }
ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
json() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"; }
xxh()  { xxhsum -H3 "$1" 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p'; }
expect() {
  local want=$1; shift
  BM "$@" >"$T/out" 2>"$T/err" </dev/null
  local rc=$?
  if [ $rc -ne "$want" ]; then fail "bulkmap.exe $* exited $rc, expected $want: $(head -c 300 "$T/err")"
  elif [ "$want" -ne 0 ] && ! grep -q '^bulkmap: ' "$T/err"; then fail "bulkmap.exe $*: no message"
  else ok; fi
}

# Files by Windows path (Z: is the host's root under Wine).
win() { printf 'Z:%s' "$(tr / '\\' <<<"$1")"; }

for n in 0 1 65535 65536 65537 300000; do
  head -c "$n" /dev/urandom >"$T/s$n"
  for w in 65536 200000; do
    out=$(BM scan "$(win "$T/s$n")" --json --no-progress --window "$w" 2>"$T/err") || { fail "scan s$n: $(cat "$T/err")"; continue; }
    [ "$(json "$out" xxh3)" = "$(xxh "$T/s$n")" ] && ok || fail "xxh3 s$n w$w: $out"
    [ "$(json "$out" lines)" = "$(wc -l <"$T/s$n")" ] && ok || fail "lines s$n w$w: $out"
  done
done
perl -e 'for (1..50000) { print "aaab" x ($_ % 7), "ab\nxyzzy", "a" x ($_ % 11), "\n" }' >"$T/text"
for lit in aa aab xyzzy; do
  out=$(BM scan "$(win "$T/text")" --count "$lit" --json --no-progress --window 64K)
  want=$(LIT="$lit" perl -0777 -ne '$c = () = /\Q$ENV{LIT}\E/g; print $c' "$T/text")
  [ "$(json "$out" count)" = "$want" ] && ok || fail "count $lit: $out != $want"
done
out=$(BM scan "$(win "$T/text")" --offset 70000 --length 123457 --json --no-progress --window 64K)
tail -c +70001 "$T/text" | head -c 123457 >"$T/cut"
[ "$(json "$out" xxh3)" = "$(xxh "$T/cut")" ] && ok || fail "--offset/--length: $out"

# Several FILEs and standard input (issue 11).
out=$(BM scan "$(win "$T/text")" "$(win "$T/s300000")" --json --no-progress | tr -d '\r')
[ "$(json "$(sed -n 's/.*"total":\(.*\)}$/\1/p' <<<"$out")" lines)" = $(( $(wc -l <"$T/text") + $(wc -l <"$T/s300000") )) ] && ok || fail "two files: $out"
out=$(BM scan - --json --no-progress --window 4096 <"$T/text")
[ "$(json "$out" xxh3)" = "$(xxh "$T/text")" ] && [ "$(json "$out" lines)" = "$(wc -l <"$T/text")" ] && ok || fail "scan - <file: $out"
out=$(cat "$T/text" | BM scan - --count aab --json --no-progress --window 4096)
[ "$(json "$out" count)" = "$(LIT=aab perl -0777 -ne '$c = () = /\Q$ENV{LIT}\E/g; print $c' "$T/text")" ] && ok || fail "pipe --count: $out"
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
"$EMU" "$EXE" load "$(win "$T/text")" --name "$NAME" --no-progress --json >"$T/load" 2>"$T/loaderr" &
holder=$!
for i in $(seq 100); do grep -q xxh3 "$T/load" 2>/dev/null && break; sleep 0.2; done
if grep -q '"state":"ready"' "$T/load"; then
  ok
  BM cat "$NAME" >"$T/back" 2>"$T/err" && cmp -s "$T/back" "$T/text" && ok || fail "cat under Wine: $(cat "$T/err")"
  expect 1 load "$(win "$T/text")" --name "$NAME" --no-progress   # exists
  st=$(BM stat "$NAME" --json)
  [ "$(json "$st" state)" = ready ] && ok || fail "stat: $st"
else
  fail "load did not publish: $(cat "$T/loaderr")"
fi
kill -INT $holder 2>/dev/null
wait $holder; rc=$?
[ $rc -eq 0 ] && ok || fail "held load ended with $rc after Ctrl-C"
expect 1 cat "$NAME"   # gone with its last handle
echo "tool tests under Wine: $checks checks, $fails failed"
[ $fails -eq 0 ]
