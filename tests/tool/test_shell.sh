#!/usr/bin/env bash
# The tool as a citizen of the shell (issue 11): several FILEs, - and pipes, resource limits,
# signals, write errors of the result, escaped names, help, the man page, the progress line.
# Peers: xxhsum -H3, wc -l, perl. usage: test_shell.sh BULKMAP [MANPAGE]   (run by ctest)
set -u
BM=${1:?path to bulkmap}
MAN=${2:-}
EXPECT_TIMEOUT=60 # a hang is a failure here, not a stuck run
. "$(dirname "$0")/lib.sh"

perl -e 'for (1..50000) { print "aaab" x ($_ % 7), "ab\nxyzzy", "a" x ($_ % 11), "\n" }' >"$T/text"
head -c 3000000 /dev/urandom >"$T/rand"
seq 1 1000 >"$T/small"
: >"$T/empty"

# 1. Several FILEs: one block a file, totals; JSON {"files":[...],"total":{...}}.
out=$("$BM" scan "$T/text" "$T/rand" "$T/empty" "$T/small" --json --no-progress) || fail "scan of 4 files: exit $?"
n=0
for f in text rand empty small; do
  obj=$(sed 's/],"total".*//; s/},{/}\n{/g' <<<"$out" | grep -F "\"file\":\"$T/$f\"")
  [ "$(json "$obj" xxh3)" = "$(xxh "$T/$f")" ] && ok || fail "files[] xxh3 of $f: $obj"
  [ "$(json "$obj" lines)" = "$(wc -l <"$T/$f")" ] && ok || fail "files[] lines of $f: $obj"
  n=$((n + $(wc -l <"$T/$f")))
done
total=$(sed -n 's/.*"total":\(.*\)}$/\1/p' <<<"$out")
[ "$(json "$total" lines)" = "$n" ] && ok || fail "total lines $total != $n"
[ "$(json "$total" bytes)" = "$(cat "$T/text" "$T/rand" "$T/empty" "$T/small" | wc -c)" ] && ok || fail "total bytes $total"
grep -q '^{"files":\[{' <<<"$out" && ok || fail "JSON of several files: $out"
human=$("$BM" scan "$T/text" "$T/small" --lines --no-progress)
[ "$(grep -c '^file: ' <<<"$human")" = 2 ] && ok || fail "human: one block a file: $human"
grep -q "^  lines: $(( $(wc -l <"$T/text") + 1000 ))\$" <<<"$human" && ok || fail "human total: $human"
# One FILE: the output is as before (no files[], no total).
out=$("$BM" scan "$T/small" --json --no-progress)
grep -q '^{"file":' <<<"$out" && ! grep -q total <<<"$out" && ok || fail "one FILE: $out"
# A missing FILE among others: the others are scanned, exit 1.
expect 1 scan "$T/small" "$T/missing" "$T/text" --json --no-progress
grep -q "\"file\":\"$T/text\"" "$T/out" && ok || fail "the other files after a missing one: $(cat "$T/out")"
grep -q 'no such file or directory' "$T/err" && ok || fail "missing file message: $(cat "$T/err")"

# Many small files (scanned on the pool, 64 a job) mixed with a large one, an empty one, a
# FIFO and a missing one: the same totals as the peers, the order kept.
mkdir "$T/many"
for i in $(seq 1 300); do head -c $((i * 37)) "$T/text" >"$T/many/f$(printf %03d "$i")"; done
mkfifo "$T/many/zfifo"
( cat "$T/small" >"$T/many/zfifo" ) &
out=$(timeout 60 "$BM" scan "$T/many"/f* "$T/rand" "$T/empty" "$T/many/zfifo" "$T/nope" --json --no-progress 2>"$T/err")
rc=$?
wait
[ $rc -eq 1 ] && grep -q nope "$T/err" && ok || fail "many files with a missing one: exit $rc: $(cat "$T/err")"
want=$(cat "$T/many"/f* "$T/rand" "$T/small" | wc -l)
[ "$(json "$(sed -n 's/.*"total":\(.*\)}$/\1/p' <<<"$out")" lines)" = "$want" ] && ok || fail "many files: total lines, want $want: $(tail -c 200 <<<"$out")"
order=$(grep -o '"file":"[^"]*"' <<<"$out" | sed 's/.*\///; s/"$//' | tr '\n' ' ')
[ "$order" = "$(cd "$T/many" && echo f*) rand empty zfifo " ] && ok || fail "many files: order $order"
obj=$(sed 's/},{/}\n{/g' <<<"$out" | grep -F '/f123"')
[ "$(json "$obj" xxh3)" = "$(xxh "$T/many/f123")" ] && ok || fail "many files: xxh3 of f123: $obj"

# 2. - and pipes: the same results as the file, across buffer edges. Windows of a few bytes
# meet an edge every few bytes: 100 KB of the text give them thousands of edges (the whole
# text would be hundreds of thousands of windows, and minutes).
head -c 100000 "$T/text" >"$T/text-100k"
for w in 7 100 4096 65537 1M; do
  f=$T/text
  [ "$w" -lt 4096 ] 2>/dev/null && f=$T/text-100k
  out=$(cat "$f" | "$BM" scan - --window "$w" --json --no-progress) || fail "scan - --window $w: exit $?"
  [ "$(json "$out" xxh3)" = "$(xxh "$f")" ] && ok || fail "scan - --window $w xxh3: $out"
  [ "$(json "$out" lines)" = "$(wc -l <"$f")" ] && ok || fail "scan - --window $w lines: $out"
done
for lit in a aa aaa aab aba ab xyzzy "b
x" aaaaaaaaaa never-there; do
  want=$(perlcount "$lit" "$T/text") want_100k=$(perlcount "$lit" "$T/text-100k")
  for w in 16 4096 100000; do
    if [ "$w" = 16 ]; then f=$T/text-100k wanted=$want_100k; else f=$T/text wanted=$want; fi
    out=$(cat "$f" | "$BM" scan - --count "$lit" --window "$w" --json --no-progress)
    [ "$(json "$out" count)" = "$wanted" ] && ok || fail "scan - --count '$lit' --window $w: $out"
  done
done
out=$(cat "$T/rand" | "$BM" scan - --json --no-progress --threads 1)
[ "$(json "$out" xxh3)" = "$(xxh "$T/rand")" ] && ok || fail "scan - of random bytes: $out"
out=$("$BM" scan - --json --no-progress <"$T/rand")
[ "$(json "$out" xxh3)" = "$(xxh "$T/rand")" ] && ok || fail "scan - <file: $out"
out=$("$BM" scan - --json --no-progress </dev/null)
[ "$(json "$out" bytes)" = 0 ] && [ "$(json "$out" xxh3)" = "$(xxh "$T/empty")" ] && ok || fail "scan - of nothing: $out"
# --offset/--length on a pipe, against the file.
for spec in "0 1" "4095 2" "12345 100000" "2999999 1" "3000000 0"; do
  set -- $spec
  a=$(cat "$T/rand" | "$BM" scan - --offset "$1" --length "$2" --window 4096 --json --no-progress)
  b=$("$BM" scan "$T/rand" --offset "$1" --length "$2" --window 4096 --json --no-progress)
  [ "$(json "$a" xxh3)" = "$(json "$b" xxh3)" ] && [ "$(json "$a" lines)" = "$(json "$b" lines)" ] && ok ||
    fail "pipe --offset $1 --length $2: $a / $b"
done
out=$(cat "$T/rand" | "$BM" scan - --offset 1000 --json --no-progress)
[ "$(json "$out" xxh3)" = "$(tail -c +1001 "$T/rand" | xxh)" ] && ok || fail "pipe --offset 1000 to the end: $out"
cat "$T/small" | timeout 60 "$BM" scan - --length 100000 --no-progress >/dev/null 2>"$T/err"
[ $? -eq 2 ] && ok || fail "pipe --length past its end: not a usage error: $(cat "$T/err")"
# A named FIFO and a process substitution (a pipe as /dev/fd/N).
mkfifo "$T/fifo"
( cat "$T/text" >"$T/fifo" ) &
out=$(timeout 60 "$BM" scan "$T/fifo" --json --no-progress)
wait
[ "$(json "$out" xxh3)" = "$(xxh "$T/text")" ] && ok || fail "scan of a FIFO: $out"
out=$("$BM" scan <(cat "$T/rand") "$T/small" --json --no-progress)
[ "$(json "$(sed 's/},{/}\n{/g' <<<"$out" | head -1)" xxh3)" = "$(xxh "$T/rand")" ] && ok || fail "scan <(...): $out"
# - and files together; - twice is a usage error.
out=$(cat "$T/small" | "$BM" scan "$T/text" - --lines --json --no-progress)
[ "$(json "$(sed -n 's/.*"total":\(.*\)}$/\1/p' <<<"$out")" lines)" = $(( $(wc -l <"$T/text") + 1000 )) ] && ok || fail "file and -: $out"
expect 2 scan - -

# 3. Resource limits: a clean exit 1 with the reason, never a signal.
for n in 9 8 6 5 4; do
  (ulimit -n "$n"; exec "$BM" scan "$T/text" --no-progress) >/dev/null 2>"$T/err"
  rc=$?
  # (127: the dynamic loader itself found no descriptor for a library, before main)
  if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q 'too many open files' "$T/err"; } ||
     { [ $rc -eq 127 ] && grep -q 'error while loading shared libraries' "$T/err"; }; then ok
  else fail "ulimit -n $n: exit $rc: $(cat "$T/err")"; fi
done
(ulimit -n 12; exec "$BM" scan "$T/text" --no-progress) >/dev/null 2>&1 && ok || fail "ulimit -n 12: scan failed"
if [ -n "${BULKMAP_TEST_SANITIZED:-}" ]; then
  echo "SKIP ulimit -v: AddressSanitizer reserves terabytes of shadow address space" >&2
else
for v in 15000 30000 60000 120000; do
  (ulimit -v "$v"; exec timeout 60 "$BM" scan "$T/rand" --no-progress) >/dev/null 2>"$T/err"
  rc=$?
  if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q '^bulkmap: ' "$T/err"; }; then ok
  else fail "ulimit -v $v: exit $rc: $(cat "$T/err")"; fi
done
out=$(ulimit -v 120000; "$BM" scan "$T/rand" --json --no-progress) && [ "$(json "$out" xxh3)" = "$(xxh "$T/rand")" ] && ok ||
  fail "scan under ulimit -v 120000 (windows shrink to fit): $out"
fi
# (stderr through a pipe: the limit binds every file written, the error file too)
err=$( (ulimit -f 0; exec "$BM" scan "$T/text" --json >"$T/f0.json" </dev/null) 2>&1 )
rc=$?
[ $rc -eq 1 ] && grep -q 'File too large' <<<"$err" && ok || fail "ulimit -f 0: exit $rc: $err"
# ulimit -u binds only those without CAP_SYS_RESOURCE: as root, run as nobody.
if have_nobody; then
  cp "$BM" "$T/bm" && chmod 755 "$T" "$T/bm" && chmod 644 "$T/text"
  for u in 1 2 3; do
    nobody bash -c \
      "ulimit -u $u; exec '$T/bm' scan '$T/text' --threads 4 --no-progress" >/dev/null 2>"$T/err"
    rc=$?
    if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && grep -q 'resource temporarily unavailable' "$T/err"; }; then ok
    else fail "ulimit -u $u: exit $rc: $(cat "$T/err")"; fi
  done
elif [ "$(id -u)" != 0 ]; then
  (ulimit -u 1; exec "$BM" scan "$T/text" --threads 4 --no-progress) >/dev/null 2>"$T/err"
  rc=$?
  [ $rc -le 1 ] && ok || fail "ulimit -u 1: exit $rc: $(cat "$T/err")"
else
  echo "SKIP ulimit -u: root without setpriv" >&2
fi

# 4. Signals: cleaned up after, 128+N.
# Standard input a FIFO whose writer stays open: the scan waits for more until the signal,
# which goes to it alone (a pipe from `sleep`, signalled by job and by pgrep, raced: the
# writer's end could close first, and pgrep could find another test's scan).
rm -f "$T/sigfifo"
mkfifo "$T/sigfifo"
for s in HUP:129 INT:130 QUIT:131 USR1:138 USR2:140 ALRM:142 TERM:143; do
  sig=${s%:*} want=${s#*:}
  "$BM" scan - --no-progress <"$T/sigfifo" >/dev/null 2>"$T/err" &
  pid=$!
  exec 9>"$T/sigfifo"
  sleep 0.3
  kill -"$sig" "$pid"
  wait $pid
  rc=$?
  exec 9>&-
  [ $rc -eq "$want" ] && grep -q "interrupted by SIG$sig" "$T/err" && ok || fail "SIG$sig during scan -: exit $rc, want $want: $(cat "$T/err")"
done
# A signal while a mapped file is scanned.
truncate -s 8G "$T/sparse"
"$BM" scan "$T/sparse" --window 1M --threads 1 --no-progress >/dev/null 2>"$T/err" &
pid=$!
sleep 0.3
kill -HUP $pid
wait $pid
rc=$?
if [ $rc -eq 129 ] || [ $rc -eq 0 ]; then ok; else fail "SIGHUP during a mapped scan: exit $rc: $(cat "$T/err")"; fi
rm -f "$T/sparse"

# 5. The result that cannot be written is a failure.
for c in "scan $T/small --json" "scan $T/small $T/text" "info --json" "info" "--help" "--version" "scan --help"; do
  $BM $c --no-progress >/dev/full 2>"$T/err" || true
  # (--no-progress is unknown to some: run again without it if it was refused)
  if grep -q 'unknown option' "$T/err"; then $BM $c >/dev/full 2>"$T/err"; fi
  rc=$?
  "$BM" $c >/dev/full 2>"$T/err" </dev/null
  rc=$?
  [ $rc -eq 1 ] && grep -q 'cannot write the result' "$T/err" && ok || fail "bulkmap $c >/dev/full: exit $rc: $(cat "$T/err")"
done
"$BM" scan "$T/small" >&- 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && ok || fail "scan with stdout closed: exit $rc: $(cat "$T/err")"

# 6. Human output escapes control characters in names; JSON is unchanged.
odd="$T/x
state: ready"
cp "$T/small" "$odd"
human=$("$BM" scan "$odd" --no-progress)
! grep -q '^state: ready' <<<"$human" && grep -qF 'x\nstate: ready' <<<"$human" && ok || fail "newline in a name forged a line: $human"
out=$("$BM" scan "$odd" --json --no-progress)
grep -qF 'x\u000astate: ready' <<<"$out" && ok || fail "JSON of a name with a newline: $out"
"$BM" scan "$T/nope
bad" --no-progress 2>"$T/err" >/dev/null
[ "$(wc -l <"$T/err")" = 1 ] && ok || fail "error message for a name with a newline spans lines: $(cat "$T/err")"

# The issue's case: a source so named forged a "state: ready" line in human `stat`.
NAME="bmshell-$$"
if "$BM" load "$odd" --name "$NAME" --large-pages off --no-progress >/dev/null 2>"$T/err"; then
  human=$("$BM" stat "$NAME")
  [ "$(grep -c '^state: ' <<<"$human")" = 1 ] && ok || fail "stat: a source name forged a line: $human"
  "$BM" rm "$NAME" >/dev/null 2>&1
else
  fail "load of a file named with a newline: $(cat "$T/err")"
fi
# load --hold whose reader went away is not killed by SIGPIPE: its result could not be
# written, so it is a failure (exit 1, as docs/design.md says of a closed stdout) and it
# removes the section it made instead of holding memory nobody learnt of. The pipe's read
# end is closed before the tool starts (with `| true` the reader may still be there when
# the result is written: then it is written, and the load holds until killed).
rc=$(python3 -c 'import os, subprocess, sys
r, w = os.pipe()
os.close(r)
with open(sys.argv[1], "w") as err:
    print(subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=w, stderr=err).returncode)' \
  "$T/err" "$BM" load "$T/small" --name "$NAME-h" --large-pages off --hold --no-progress)
[ "$rc" = 1 ] && ok || fail "load --hold | true: exit $rc (expected 1): $(cat "$T/err")"
grep -q "cannot write the result" "$T/err" && ok || fail "load --hold | true: no reason given: $(cat "$T/err")"
[ ! -e "/dev/shm/$NAME-h" ] && ok || { fail "load --hold | true left its section"; "$BM" rm "$NAME-h" >/dev/null 2>&1; }
# A held section is removed on a signal, with exit 0.
"$BM" load "$T/small" --name "$NAME-h" --large-pages off --hold --no-progress >/dev/null 2>"$T/err" </dev/null &
pid=$!
for i in $(seq 50); do "$BM" stat "$NAME-h" >/dev/null 2>&1 && break; sleep 0.1; done
kill -HUP $pid 2>/dev/null
wait $pid
rc=$?
[ $rc = 0 ] && ok || fail "load --hold, then SIGHUP: exit $rc: $(cat "$T/err")"
[ ! -e "/dev/shm/$NAME-h" ] && ok || { fail "load --hold left its section after SIGHUP"; "$BM" rm "$NAME-h" >/dev/null 2>&1; }

# 7. Help: GNU style, -h, -V, per-command options, the man page from the same text.
expect 0 --help
for w in Commands: "Exit status:" Examples: 128+N info scan load cat stat rm bench setup; do
  grep -qF -- "$w" "$T/out" && ok || fail "--help lacks '$w'"
done
cp "$T/out" "$T/help"
expect 0 -h
cmp -s "$T/out" "$T/help" && ok || fail "-h differs from --help"
expect 0 -V
grep -q '^bulkmap [0-9]' "$T/out" && ok || fail "-V: $(cat "$T/out")"
expect 2 --bogus
expect 2
for c in info scan load cat stat rm bench setup; do
  expect 0 "$c" --help
  grep -q "^Usage: bulkmap $c" "$T/out" && ok || fail "$c --help: no Usage line"
  # Every option in the synopsis is explained below it.
  for opt in $(sed -n '/^Usage:/,/^[^ U]/p' "$T/out" | grep -o -- '--[a-z-]*' | sort -u); do
    grep -q "^  $opt" "$T/out" && ok || fail "$c --help: $opt in the synopsis but not explained"
  done
done
expect 0 scan --help
grep -q 'LITERAL' "$T/out" && ! grep -qw 'LIT' "$T/out" && ok || fail "scan --help: LIT and LITERAL"
if [ -n "$MAN" ]; then
  if [ -s "$MAN" ]; then ok; else fail "man page $MAN missing"; fi
  "$BM" --man | cmp -s - "$MAN" && ok || fail "$MAN is not what --man prints"
  if command -v groff >/dev/null; then
    page=$(groff -man -Tutf8 -ww "$MAN" 2>"$T/err" | col -b 2>/dev/null || groff -man -Tascii "$MAN")
    [ ! -s "$T/err" ] && ok || fail "groff warns on $MAN: $(head -5 "$T/err")"
    for c in info scan load cat stat rm bench setup; do
      for opt in $("$BM" "$c" --help | grep -o -- '^  --[a-z-]*'); do
        grep -q -- "$opt" <<<"$page" && ok || fail "man page lacks $c $opt"
      done
    done
    grep -q 'EXIT STATUS' <<<"$page" && ok || fail "man page: no EXIT STATUS"
  fi
fi

# 8. The progress line fits the terminal, shows no estimate before a rate, rounds it up.
for w in 200 100 80 60 40 30 20 10; do
  line=$("$BM" --progress-line "$w" 10 4000000000 9000000000)
  [ "${#line}" -lt "$w" ] && ok || fail "progress at $w columns: ${#line}: '$line'"
done
line=$("$BM" --progress-line 80 10 4000000000 9000000000)
grep -q '^\[#' <<<"$line" && grep -q 'left' <<<"$line" && ok || fail "progress at 80 columns: '$line'"
line=$("$BM" --progress-line 80 0.1 0 9000000000)
! grep -q 'left' <<<"$line" && ok || fail "an estimate before any rate: '$line'"
line=$("$BM" --progress-line 80 10 100 108)   # 10 B/s, 8 bytes left: 0.8 s
grep -q '00:01 left' <<<"$line" && ok || fail "0.8 s left must show as 00:01: '$line'"
line=$("$BM" --progress-line 80 2 1000 0)
! grep -q '%' <<<"$line" && ok || fail "a stream (size unknown) shows no percent: '$line'"

finish shell
