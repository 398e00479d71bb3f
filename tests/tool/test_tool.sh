#!/usr/bin/env bash
# Integration test of the bulkmap tool against independent peers: xxhsum -H3, wc -l and a
# perl literal count; bad inputs with their exit codes; load/cat across processes.
# usage: test_tool.sh BULKMAP [QUICK]    (run by ctest)
set -u
BM=${1:?path to bulkmap}
. "$(dirname "$0")/lib.sh"
NAME="bmtest-$$"
cleanup() {
  "$BM" rm "$NAME" "$NAME-b" "$NAME-int" "$NAME-kill" >/dev/null 2>&1
  for n in h r w x y z m p q c f wide quit cpu out; do "$BM" rm --force "$NAME-$n" >/dev/null 2>&1; done
}
at_exit cleanup

check_scan() { # file [scan options...]
  local f=$1; shift
  local out want_h want_l
  out=$("$BM" scan "$f" --json --no-progress "$@") || { fail "scan $f $*: exit $?"; return; }
  want_h=$(xxh "$f")
  want_l=$(wc -l <"$f")
  [ "$(json "$out" xxh3)" = "$want_h" ] && ok || fail "xxh3 of $f ($*): $(json "$out" xxh3) != $want_h"
  [ "$(json "$out" lines)" = "$want_l" ] && ok || fail "lines of $f ($*): $(json "$out" lines) != $want_l"
}

check_count() { # file literal [scan options...]
  local f=$1 lit=$2; shift 2
  local out want
  out=$("$BM" scan "$f" --count "$lit" --json --no-progress "$@") || { fail "count $f: exit $?"; return; }
  want=$(perlcount "$lit" "$f")
  [ "$(json "$out" count)" = "$want" ] && ok || fail "count '$lit' in $f ($*): $(json "$out" count) != $want"
}

# 1. Sizes on and around the page and allocation granularity.
for n in 0 1 4095 4096 4097 65535 65536 65537; do
  head -c "$n" /dev/urandom >"$T/s$n"
  check_scan "$T/s$n"
  check_scan "$T/s$n" --window 4096
done
out=$("$BM" scan "$T/s0" --json --no-progress)
[ "$(json "$out" bytes)" = 0 ] && ok || fail "empty file: bytes $(json "$out" bytes)"

# 2. A few MiB of random data with odd window sizes and thread counts.
head -c 5000000 /dev/urandom >"$T/rand"
for w in 4097 12345 1M 1000001 3M; do check_scan "$T/rand" --window "$w" --threads 2; done
check_scan "$T/rand" --threads 1
check_scan "$T/rand" --threads 7 --window 100000

# 3. Literals straddling window edges, self-overlapping ones included.
perl -e 'for (1..200000) { print "aaab" x ($_ % 7), "ab\nxyzzy", "a" x ($_ % 11), "\n" }' >"$T/text"
for lit in a aa aaa ab aab xyzzy "zy
a" "b
x" "aaaaaaaaaa" "never-there"; do
  check_count "$T/text" "$lit" --window 4096
done
check_count "$T/text" aaa --window 1M
check_count "$T/rand" "$(head -c 2 "$T/rand" | tr -d '\0\n' | head -c 1)" --window 8192

# 4. --offset/--length against the same bytes cut out with dd.
for spec in "0 1" "1 4095" "4095 2" "65535 70000" "12345 1000000" "4999999 1" "5000000 0"; do
  set -- $spec
  dd if="$T/rand" of="$T/cut" bs=1 skip=0 count=0 status=none
  tail -c +$(($1 + 1)) "$T/rand" | head -c "$2" >"$T/cut"
  out=$("$BM" scan "$T/rand" --offset "$1" --length "$2" --json --no-progress --window 8192)
  want=$(xxh "$T/cut")
  [ "$(json "$out" xxh3)" = "$want" ] && ok || fail "--offset $1 --length $2: $(json "$out" xxh3) != $want"
  [ "$(json "$out" lines)" = "$(wc -l <"$T/cut")" ] && ok || fail "--offset $1 --length $2 lines"
done

# 5, 6 and 16 (several GiB: a sparse 3 GiB, a 10 GiB under ulimit -v, past 32 bits) are
# tests/tool/test_tool_large.sh, run once, in the native lane.

# 7. Bad input: a clear message, the docs/design.md exit code, never a signal.
expect 1 scan "$T/missing"
expect 1 scan "$T"
expect 1 scan /dev/null
# A FIFO is read as a stream now (docs/design.md section 3: "- or a pipe is read"): tests/tool/test_shell.sh.
expect 2 scan "$T/rand" --offset 5000001
expect 2 scan "$T/rand" --offset 10 --length 18446744073709551615
expect 2 scan "$T/rand" --length 5000001
expect 2 scan "$T/rand" --window 0
expect 2 scan "$T/rand" --window 12Q
# SIZE as coreutils takes it: 64MB is 64000000, 64MiB and 64m are 64M; 64mib is not a size.
expect 2 scan "$T/rand" --window 64mib
grep -q 'KiB MiB GiB TiB' "$T/err" && ok || fail "a bad SIZE gives no hint: $(cat "$T/err")"
for w in 64MB:64000000 64MiB:67108864 64m:67108864 64M:67108864 100MB:100000000; do # (at most 256 MiB in a 32-bit process)
  out=$(bm scan "$T/rand" --window "${w%%:*}" --json --no-progress)
  [ "$(json "$out" window)" -ge "${w#*:}" ] && [ "$(json "$out" window)" -lt $(( ${w#*:} + 65536 )) ] && ok ||
    fail "--window ${w%%:*}: window $(json "$out" window), expected ${w#*:} (rounded up to the granularity)"
done
expect 2 scan "$T/rand" --offset 99999999999999999999
expect 2 scan "$T/rand" --threads 0
expect 2 scan "$T/rand" --threads 100000
expect 2 scan "$T/rand" --threads two
expect 2 scan "$T/rand" --count ""
expect 2 scan "$T/rand" --bogus
expect 2 scan "$T/rand" --hash --hash
expect 2 scan
expect 2 scan "$T/rand" --window
expect 2 frobnicate
expect 2 scan ""
expect 1 scan /proc/self/status                                # says it is empty: refused
expect 2 load "$T/rand" --name --no-progress                   # a flag is not a name
expect 2 bench --size 16T --pages 4k                           # would only summon the OOM killer
# A value that looks like a flag passes with '=': a literal "--x" is searched for.
printf 'a--xb--x\n' >"$T/dashes"
out=$("$BM" scan "$T/dashes" --count=--x --json --no-progress)
[ "$(json "$out" count)" = 2 ] && ok || fail "--count=--x: $out"
# A path longer than the library keeps for messages (512) still opens.
long="$T/$(printf 'd%.0s' $(seq 150))/$(printf 'e%.0s' $(seq 150))/$(printf 'f%.0s' $(seq 150))"
mkdir -p "$long" && cp "$T/s4097" "$long/file"
out=$("$BM" scan "$long/file" --json --no-progress)
[ "$(json "$out" xxh3)" = "$(xxh "$T/s4097")" ] && ok || fail "path of ${#long} bytes: $out"
# A file name that is not UTF-8 still gives valid (UTF-8) JSON.
odd="$T/$(printf 'x\377\376"q\\\001\303\251')"
cp "$T/s1" "$odd"
if "$BM" scan "$odd" --json --no-progress | iconv -f UTF-8 -t UTF-8 >/dev/null 2>&1; then ok
else fail "JSON for a name that is not UTF-8 is not UTF-8"; fi
expect 2 load "$T/rand"
expect 2 load "$T/rand" --name "bad/name"
expect 2 load "$T/rand" --name ""
expect 2 load "$T/rand" --name "$(printf 'x%.0s' $(seq 201))"
expect 2 load "$T/rand" --name "$NAME" --large-pages maybe
expect 1 load "$T/missing" --name "$NAME"
expect 1 cat "nosuch-$$"
expect 2 cat "bad name"
expect 1 stat "nosuch-$$"
expect 1 rm "nosuch-$$"
expect 0 --version
expect 0 --help
for c in info scan load cat stat ls rm setup; do expect 0 "$c" --help; done
expect 0 info
expect 0 info --json

# 8. load, then a second process cats and stats it.
expect 0 load "$T/text" --name "$NAME" --large-pages off --json --no-progress
loaded=$(cat "$T/out")
[ "$(json "$loaded" xxh3)" = "$(xxh "$T/text")" ] && ok || fail "load xxh3: $loaded"
"$BM" cat "$NAME" | cmp -s - "$T/text" && ok || fail "cat differs from the file loaded"
"$BM" cat "$NAME" --no-verify | cmp -s - "$T/text" && ok || fail "cat --no-verify differs"
expect 0 stat "$NAME" --json
st=$(cat "$T/out")
[ "$(json "$st" state)" = ready ] && ok || fail "stat state: $st"
[ "$(json "$st" bytes)" = "$(stat -c %s "$T/text")" ] && ok || fail "stat bytes: $st"
expect 1 load "$T/text" --name "$NAME" --no-progress          # exists already
"$BM" cat "$NAME" --raw | head -c "$(stat -c %s "$T/text")" | cmp -s - "$T/text" && ok || fail "cat --raw prefix"
expect 0 rm "$NAME"
expect 1 cat "$NAME"
# An empty file loads and cats as empty.
expect 0 load "$T/s0" --name "$NAME-b" --no-progress
[ "$("$BM" cat "$NAME-b" | wc -c)" = 0 ] && ok || fail "cat of an empty dataset"
expect 0 rm "$NAME-b"

# 9. A file that shrinks while scan runs: exit 1 saying so, no SIGBUS.
# Sparse, so that it is read at page-cache zero-fill speed: seconds for 16 GiB.
truncate -s 16G "$T/shrink"
( sleep 0.5; truncate -s 4096 "$T/shrink" ) &
"$BM" scan "$T/shrink" --window 1M --threads 1 --no-progress >"$T/out" 2>"$T/err"
rc=$?
wait
if [ $rc -eq 0 ]; then
  echo "note: the scan finished before the truncation (machine too fast); not a failure" >&2
  ok
elif [ $rc -eq 1 ] && grep -q shrank "$T/err"; then ok
else fail "scan of a shrinking file: exit $rc: $(cat "$T/err")"; fi

# 10. SIGINT during load: exit 130 and nothing left marked ready.
truncate -s 8G "$T/big"
"$BM" load "$T/big" --name "$NAME-int" --large-pages off --no-progress >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.3
kill -INT $pid
wait $pid
rc=$?
if [ $rc -eq 130 ]; then
  ok
  "$BM" stat "$NAME-int" >/dev/null 2>&1 && fail "interrupted load left a section behind" || ok
elif [ $rc -eq 0 ]; then
  echo "note: the load finished before SIGINT; not a failure" >&2; ok
else fail "load interrupted: exit $rc $(cat "$T/err")"; fi

# 11. A writer killed mid-load: readers refuse the section as abandoned.
"$BM" load "$T/big" --name "$NAME-kill" --large-pages off --no-progress >/dev/null 2>&1 &
pid=$!
sleep 0.3
kill -KILL $pid
wait $pid 2>/dev/null
"$BM" stat "$NAME-kill" --json >"$T/out" 2>"$T/err"
rc=$?
if grep -q '"state"' "$T/out"; then
  # stat prints a section that is not ready, and exits 1; it claims no hash for it.
  [ $rc -eq 1 ] && ok || fail "stat of an abandoned section exited $rc"
  [ "$(json "$(cat "$T/out")" state)" = abandoned ] && ok || fail "killed writer: $(cat "$T/out")"
  grep -q '"xxh3":null' "$T/out" && ok || fail "abandoned section claims a hash: $(cat "$T/out")"
  expect 1 cat "$NAME-kill"
  grep -q abandoned "$T/err" && ok || fail "cat of an abandoned section: $(cat "$T/err")"
else
  echo "note: the writer was killed before it created the section: $(cat "$T/err")" >&2; ok
fi
rm -f "$T/big" "$T/shrink"

# 12. Shared memory too small for the section: exit 1 at once with the figures, nothing left.
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  head -c 20000000 /dev/urandom >"$T/f20m"
  out=$(unshare -m sh -c 'mount -t tmpfs -o size=8M tmpfs /dev/shm &&
        "$1" load "$2" --name full --large-pages off --no-progress; echo "rc=$?"; ls /dev/shm' \
        sh "$BM" "$T/f20m" 2>&1)
  case "$out" in
  *"not loaded: needs "*"/dev/shm has "*rc=1) ok ;; # the room is checked before the section is made
  *) fail "load into a full /dev/shm: $out" ;;
  esac
else
  echo "SKIP full /dev/shm: needs root and unshare -m" >&2
fi

# 13. A section cut short and scribbled over (its /dev/shm file, by a background loop) while
# cat reads it: every cat exits 0 with exactly the loaded bytes, or 1 with a message; never
# dies of a signal.
head -c 3000000 /dev/urandom >"$T/h"
expect 0 load "$T/h" --name "$NAME-h" --large-pages off --no-progress
if [ -f "/dev/shm/$NAME-h" ]; then
  cp "/dev/shm/$NAME-h" "$T/h.img"
  hsize=$(stat -c %s "$T/h.img")
  (
    end=$((SECONDS + 3))
    while [ $SECONDS -lt $end ]; do
      case $((RANDOM % 4)) in
      0) truncate -s $((RANDOM * 97 % hsize)) "/dev/shm/$NAME-h" ;;
      1) head -c $((1 + RANDOM % 200)) /dev/urandom |
           dd of="/dev/shm/$NAME-h" bs=1 seek=$((hsize - 4096 + RANDOM % 4096)) conv=notrunc status=none ;;
      2) truncate -s $((hsize + 4096)) "/dev/shm/$NAME-h" ;;
      3) # cut and grown back: the payload's tail turns to zeros, the trailer stays
         truncate -s $((RANDOM * 97 % (hsize - 4096))) "/dev/shm/$NAME-h"
         truncate -s "$hsize" "/dev/shm/$NAME-h"
         dd if="$T/h.img" of="/dev/shm/$NAME-h" bs=4096 skip=$((hsize / 4096 - 1)) \
           seek=$((hsize / 4096 - 1)) conv=notrunc status=none ;;
      esac
      sleep 0.0$((RANDOM % 5))
      cat "$T/h.img" >"/dev/shm/$NAME-h" # back whole (truncated, then rewritten)
      sleep 0.0$((RANDOM % 5))
    done
  ) &
  hpid=$!
  runs=0 good=0 refused=0
  while kill -0 $hpid 2>/dev/null; do
    "$BM" cat "$NAME-h" >"$T/hout" 2>"$T/herr" </dev/null
    rc=$?
    runs=$((runs + 1))
    if [ $rc -eq 0 ]; then
      cmp -s "$T/hout" "$T/h" && good=$((good + 1)) || fail "hostile cat: exit 0 with other bytes"
    elif [ $rc -eq 1 ] && grep -q '^bulkmap: ' "$T/herr"; then
      refused=$((refused + 1))
    else
      fail "hostile cat: exit $rc: $(head -c 300 "$T/herr")"
    fi
  done
  wait $hpid
  cat "$T/h.img" >"/dev/shm/$NAME-h"
  [ $runs -gt 0 ] && ok || fail "hostile cat: never ran"
  "$BM" cat "$NAME-h" | cmp -s - "$T/h" && ok || fail "cat after the hostile loop"
  echo "note: hostile cat: $runs runs, $good verified, $refused refused" >&2
else
  echo "SKIP hostile cat: no /dev/shm/$NAME-h" >&2
fi

# 14. Concurrency: three readers cat one section while a writer loads another; loads racing
# for one name: exactly one wins, the other exits 1 saying the section exists.
expect 0 load "$T/h" --name "$NAME-r" --large-pages off --no-progress
head -c 7000000 /dev/urandom >"$T/w"
rpids=""
for i in 1 2 3; do
  (
    for k in 1 2 3 4 5 6; do "$BM" cat "$NAME-r" </dev/null | cmp -s - "$T/h" || exit 1; done
  ) &
  rpids="$rpids $!"
done
for k in 1 2 3; do
  expect 0 load "$T/w" --name "$NAME-w" --large-pages off --no-progress
  "$BM" cat "$NAME-w" </dev/null | cmp -s - "$T/w" && ok || fail "cat of the section loaded beside readers"
  expect 0 rm "$NAME-w"
done
for p in $rpids; do wait "$p" && ok || fail "a reader's cat gave other bytes while a writer loaded"; done
for round in 1 2 3 4 5; do
  "$BM" load "$T/w" --name "$NAME-x" --large-pages off --no-progress >/dev/null 2>"$T/e1" </dev/null &
  p1=$!
  "$BM" load "$T/w" --name "$NAME-x" --large-pages off --no-progress >/dev/null 2>"$T/e2" </dev/null &
  p2=$!
  wait $p1; r1=$?
  wait $p2; r2=$?
  if [ "$r1$r2" = 01 ] && grep -q exists "$T/e2"; then ok
  elif [ "$r1$r2" = 10 ] && grep -q exists "$T/e1"; then ok
  else fail "racing loads, round $round: exits $r1 and $r2: $(cat "$T/e1" "$T/e2")"; fi
  "$BM" cat "$NAME-x" </dev/null | cmp -s - "$T/w" && ok || fail "the racing load that won: other bytes"
  expect 0 rm "$NAME-x"
done
expect 0 rm "$NAME-r" "$NAME-h"

# 15. The dataset's promises through the tool (the library's dataset calls underneath).
# A holder whose name was removed and made again by another load leaves the new one alone.
head -c 5000000 /dev/urandom >"$T/a"
head -c 6000000 /dev/urandom >"$T/b"
"$BM" load "$T/a" --name "$NAME-y" --large-pages off --hold --no-progress >"$T/hold.out" 2>"$T/hold.err" </dev/null &
hpid=$!
for i in $(seq 100); do "$BM" stat "$NAME-y" >/dev/null 2>&1 && break; sleep 0.05; done
expect 0 rm "$NAME-y"
expect 0 load "$T/b" --name "$NAME-y" --large-pages off --no-progress
kill -INT $hpid
wait $hpid
rc=$?
[ $rc -eq 0 ] && ok || fail "--hold ended with $rc: $(cat "$T/hold.err")"
grep -q "left alone" "$T/hold.err" && ok || fail "the holder did not say it left the new section: $(cat "$T/hold.err")"
"$BM" cat "$NAME-y" </dev/null | cmp -s - "$T/b" && ok || fail "the new section was lost when the old holder ended"
# stat says what load said: the request (auto) and the reason, not "off".
expect 0 load "$T/a" --name "$NAME-z" --no-progress --json
ld=$(cat "$T/out")
expect 0 stat "$NAME-z" --json
st=$(cat "$T/out")
[ "$(json "$ld" requested)" = auto ] && [ "$(json "$st" requested)" = auto ] && ok || fail "requested: load $ld, stat $st"
[ "$(json "$ld" reason)" = "$(json "$st" reason)" ] && ok || fail "reason: load $ld, stat $st"
# Several names at once; --force: missing names are fine.
expect 0 rm "$NAME-y" "$NAME-z"
expect 1 rm "$NAME-y"
expect 0 rm --force "$NAME-y" "$NAME-z"
# Permissions: exactly what --mode says; bad modes and groups refused with the reason.
expect 0 load "$T/a" --name "$NAME-m" --large-pages off --mode 0640 --no-progress
[ "$(stat -c %a "/dev/shm/$NAME-m" 2>/dev/null)" = 640 ] && ok || fail "--mode 0640: $(stat -c %a "/dev/shm/$NAME-m")"
expect 2 load "$T/a" --name "$NAME-q" --mode 999
expect 2 load "$T/a" --name "$NAME-q" --mode rw
expect 1 load "$T/a" --name "$NAME-q" --group "no-such-group-$$" --no-progress
grep -q "no such group" "$T/err" && ok || fail "--group of no group: $(cat "$T/err")"
[ -e "/dev/shm/$NAME-q" ] && fail "a refused load left /dev/shm/$NAME-q" || ok
# ls shows it, with its mode; --all also shows what is not a dataset.
expect 0 ls --json
grep -q "\"name\":\"$NAME-m\",\"place\":\"/dev/shm\",\"bytes\":5000000,\"state\":\"ready\"" "$T/out" && ok || fail "ls --json: $(head -c 600 "$T/out")"
grep -q '"mode":"0640"' "$T/out" && ok || fail "ls mode: $(head -c 600 "$T/out")"
printf 'plain' >"/dev/shm/$NAME-f"
expect 0 ls
grep -q "$NAME-f" "$T/out" && fail "ls shows a foreign object without --all" || ok
expect 0 ls --all
grep -q "$NAME-f .*foreign" "$T/out" && ok || fail "ls --all: $(cat "$T/out")"
expect 1 cat "$NAME-f"
grep -q "not a bulkmap dataset" "$T/err" && ok || fail "cat of a foreign object: $(cat "$T/err")"
expect 0 rm "$NAME-f"
# Another user: a 0640 section is not theirs to read, a 0644 one is.
if have_nobody; then
  other() { nobody "$BM" "$@"; }
  other cat "$NAME-m" >/dev/null 2>"$T/err" </dev/null
  rc=$?
  [ $rc -eq 1 ] && grep -q "permission denied" "$T/err" && ok || fail "nobody cat of a 0640 section: $rc $(cat "$T/err")"
  expect 0 load "$T/a" --name "$NAME-p" --large-pages off --mode 0644 --no-progress
  other cat "$NAME-p" </dev/null 2>"$T/err" | cmp -s - "$T/a" && ok || fail "nobody cat of a 0644 section: $(cat "$T/err")"
  expect 0 rm "$NAME-p"
  # A group the user is not in: refused with the reason, nothing left under the name.
  pub=$(mktemp "${TMPDIR:-/tmp}/bmpub.XXXXXX")
  head -c 10000 /dev/urandom >"$pub"
  chmod 644 "$pub"
  other load "$pub" --name "$NAME-q" --large-pages off --group root --no-progress >/dev/null 2>"$T/err" </dev/null
  rc=$?
  rm -f "$pub"
  [ $rc -eq 1 ] && grep -q "you may not give a section to that group" "$T/err" && ok ||
    fail "nobody load --group root: $rc $(cat "$T/err")"
  [ -e "/dev/shm/$NAME-q" ] && fail "a refused --group left /dev/shm/$NAME-q" || ok
else
  echo "SKIP another user: needs root and setpriv" >&2
fi
expect 0 rm "$NAME-m"
# A real ambiguity (the same name in /dev/shm and on a hugetlbfs mount, both yours): refused,
# and the message names both paths. The mount is made in a private mount namespace: made
# where every process sees it, it is a trusted mount (root's, mode 0700) that the loads of
# any other test or program running as root meanwhile would take for `--large-pages auto`.
if [ "$(id -u)" = 0 ] && command -v flock >/dev/null && command -v unshare >/dev/null; then
  BM="$BM" NAME="$NAME" AMB="$T/amb" unshare --mount --propagation private bash -c '
    flock -x -w 120 9 || { echo "SKIP ambiguity: the huge page lock stayed taken"; exit 0; }
    m=$(mktemp -d /tmp/bmamb.XXXXXX)
    mount -t hugetlbfs -o pagesize=2M,mode=0700 none "$m" || { rmdir "$m"; echo "SKIP ambiguity: no hugetlbfs"; exit 0; }
    # However this ends (a timeout'"'"'s kill included), the mount goes with the namespace.
    trap '"'"'rm -f "$m/$NAME-g" "/dev/shm/$NAME-g"; umount "$m" 2>/dev/null; rmdir "$m" 2>/dev/null'"'"' EXIT
    : >"$m/$NAME-g"
    : >"/dev/shm/$NAME-g"
    "$BM" stat "$NAME-g" >/dev/null 2>"$AMB" </dev/null
    echo "rc=$?"
  ' 9>/tmp/bulkmap-hugepages.lock >"$T/ambout" 2>&1
  if grep -q SKIP "$T/ambout"; then cat "$T/ambout" >&2; ok
  elif grep -q "rc=1" "$T/ambout" && grep -q "/dev/shm/$NAME-g" "$T/amb" && grep -q "/tmp/bmamb.*/$NAME-g" "$T/amb"; then ok
  else fail "ambiguous name: $(cat "$T/ambout" "$T/amb")"; fi
fi
# A source rewritten while it loads is not published, and nothing is left.
head -c 400000000 /dev/zero >"$T/rw"
( sleep 0.05; printf 'X' | dd of="$T/rw" bs=1 seek=1000 conv=notrunc status=none ) &
"$BM" load "$T/rw" --name "$NAME-c" --large-pages off --no-progress >"$T/out" 2>"$T/err" </dev/null
rc=$?
wait
if [ $rc -eq 1 ] && grep -q "changed as we read it" "$T/err"; then
  ok
  [ -e "/dev/shm/$NAME-c" ] && fail "a changed source left its section" || ok
elif [ $rc -eq 0 ]; then
  echo "note: the load finished before the rewrite (machine too fast); not a failure" >&2; ok
  expect 0 rm "$NAME-c"
else fail "load of a rewritten source: exit $rc: $(cat "$T/err")"; fi
rm -f "$T/rw"
# setup never shrinks a pool, and never mounts world-writable. In a private mount namespace:
# the /dev/hugepages it mounts (root's, mode 0755: trusted) is then nobody else's to use or
# hold busy, and goes with the namespace even if the umount below fails.
setup_case() {
  flock -x -w 120 9 || { echo "SKIP setup: the huge page lock stayed taken for 2 minutes"; return 0; }
  local nr had_mount big out after m mode
  nr=$(cat /proc/sys/vm/nr_hugepages)
  had_mount=$(awk '$3 == "hugetlbfs"' /proc/mounts | wc -l)
  echo $((nr + 6)) >/proc/sys/vm/nr_hugepages
  big=$(cat /proc/sys/vm/nr_hugepages)
  out=$("$BM" setup --large-pages 4M --json 2>&1)
  after=$(cat /proc/sys/vm/nr_hugepages)
  [ "$after" = "$big" ] && echo "ok shrink" || echo "FAIL setup shrank the pool: $big -> $after: $out"
  if [ "$had_mount" = 0 ]; then
    m=$(awk '$3 == "hugetlbfs" {print $2; exit}' /proc/mounts)
    mode=$(stat -c %a "$m" 2>/dev/null)
    [ "$mode" = 755 ] && echo "ok mode" || echo "FAIL setup mounted $m with mode $mode"
    umount "$m"
  fi
  echo "$nr" >/proc/sys/vm/nr_hugepages
}
if [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/nr_hugepages ] && command -v flock >/dev/null &&
  command -v unshare >/dev/null; then
  BM="$BM" unshare -m --propagation private bash -c "$(declare -f setup_case); setup_case" \
    9>/tmp/bulkmap-hugepages.lock >"$T/setup" 2>&1
  if grep -q FAIL "$T/setup"; then fail "$(cat "$T/setup")"; else ok; fi
else
  echo "SKIP setup: needs root" >&2
fi

# 17. Hostile cases (issue 18): input echoed, limits that kill, signals, many names.
# SIGQUIT (Ctrl-\) during a load is a terminating signal like the others: cleaned up, a
# message, 131 (128+3), nothing left under the name.
truncate -s 8G "$T/big"
"$BM" load "$T/big" --name "$NAME-quit" --large-pages off --no-progress >"$T/out" 2>"$T/err" </dev/null &
pid=$!
sleep 0.3
kill -QUIT $pid
wait $pid
rc=$?
if [ $rc -eq 131 ]; then
  grep -q "interrupted by SIGQUIT" "$T/err" && ok || fail "SIGQUIT during load: no message: $(cat "$T/err")"
  expect 1 stat "$NAME-quit"
  grep -q "no such section" "$T/err" && ok || fail "SIGQUIT left a section: $(cat "$T/err")"
elif [ $rc -eq 0 ]; then
  echo "note: the load finished before SIGQUIT; not a failure" >&2; ok
else fail "load and SIGQUIT: exit $rc, expected 131: $(cat "$T/err")"; fi
# ulimit -t with soft = hard: the kernel's SIGKILL at the hard limit would leave the section
# abandoned; the tool lowers its soft limit, so SIGXCPU (152) comes first and it cleans up.
(ulimit -t 4; exec "$BM" load "$T/big" --name "$NAME-cpu" --large-pages off --no-progress) >"$T/out" 2>"$T/err" </dev/null
rc=$?
if [ $rc -eq 152 ]; then
  grep -q "interrupted by SIGXCPU" "$T/err" && ok || fail "ulimit -t 4: no message: $(cat "$T/err")"
  [ ! -e "/dev/shm/$NAME-cpu" ] && ok || fail "ulimit -t 4: the load left its section: $(ls -l "/dev/shm/$NAME-cpu")"
elif [ $rc -eq 0 ]; then
  echo "note: the load finished within 2 s of CPU time; not a failure" >&2; ok
  "$BM" rm "$NAME-cpu" >/dev/null 2>&1
else fail "load under ulimit -t 4: exit $rc (137: killed), expected 152: $(cat "$T/err")"; fi
rm -f "$T/big"
# A limit that leaves no time to clean up refuses the command at once, saying why.
(ulimit -t 1; exec "$BM" load "$T/a" --name "$NAME-cpu" --no-progress) >"$T/out" 2>"$T/err" </dev/null
rc=$?
[ $rc -eq 1 ] && grep -q "CPU time limit (ulimit -t 1)" "$T/err" && ok || fail "ulimit -t 1: exit $rc: $(cat "$T/err")"
[ ! -e "/dev/shm/$NAME-cpu" ] && ok || fail "ulimit -t 1 made a section"
(ulimit -t 100; exec "$BM" info) >/dev/null 2>&1 && ok || fail "ulimit -t 100: info failed"
# rm of more names than any fixed table (3,000 at once, as `bulkmap rm $(...)`), one of
# them missing: all the others removed, exit 1 for the missing one.
names=()
for i in $(seq 3000); do names+=("$NAME-n$i"); done
(cd /dev/shm && touch "${names[@]}")
expect 1 rm "${names[@]}" "$NAME-none"
grep -q "$NAME-none: no such section" "$T/err" && ok || fail "rm of 3001 names: $(head -c 300 "$T/err")"
left=$(find /dev/shm -maxdepth 1 -name "$NAME-n*" | wc -l)
[ "$left" = 0 ] && ok || { fail "rm of 3000 names left $left"; (cd /dev/shm && rm -f "${names[@]}"); }
# A rejected name is echoed escaped: no terminal escape, no forged line, one line of
# message (usage errors too).
bad=$(printf 'x\033[31m\nstate: ready')
for c in "stat" "cat" "rm" "load $T/a --name"; do
  "$BM" $c "$bad" >"$T/out" 2>"$T/err" </dev/null
  rc=$?
  [ $rc -eq 2 ] && ok || fail "$c of a bad name: exit $rc"
  if grep -q $'\033' "$T/err" || grep -q '^state: ready' "$T/err"; then fail "$c echoed a bad name raw: $(cat -v "$T/err")"
  else ok; fi
  grep -qF 'x\x1b[31m\nstate: ready' "$T/err" && ok || fail "$c: the name not shown escaped: $(cat -v "$T/err")"
done
"$BM" scan "$T/a" "--$bad" >/dev/null 2>"$T/err"
! grep -q $'\033' "$T/err" && [ "$(grep -c '^bulkmap: ' "$T/err")" = 1 ] && ok || fail "unknown option echoed raw: $(cat -v "$T/err")"
# --mode 0 (or any mode without the owner's read bit) is refused, saying why; 0400 is not.
expect 2 load "$T/a" --name "$NAME-q" --mode 0 --no-progress
grep -q "owner must be able to read" "$T/err" && ok || fail "--mode 0: $(cat "$T/err")"
expect 2 load "$T/a" --name "$NAME-q" --mode 0044 --no-progress
[ -e "/dev/shm/$NAME-q" ] && fail "a refused --mode left /dev/shm/$NAME-q" || ok
expect 0 load "$T/a" --name "$NAME-q" --mode 0400 --large-pages off --no-progress
[ "$(stat -c %a "/dev/shm/$NAME-q" 2>/dev/null)" = 400 ] && ok || fail "--mode 0400: $(stat -c %a "/dev/shm/$NAME-q")"
"$BM" cat "$NAME-q" </dev/null | cmp -s - "$T/a" && ok || fail "cat of a 0400 dataset"
if have_nobody; then
  nobody "$BM" cat "$NAME-q" >/dev/null 2>"$T/err" </dev/null
  [ $? -eq 1 ] && grep -q "permission denied" "$T/err" && ok || fail "nobody cat of a 0400 section: $(cat "$T/err")"
fi
expect 0 rm "$NAME-q"
# A trailer whose creation time is absurd (CRC made good again, so it is not corrupt):
# human output says "(invalid time)" beside the number, never an impossible date; JSON
# keeps the number.
expect 0 load "$T/a" --name "$NAME-q" --large-pages off --no-progress
poke_created() { # NAME VALUE: the created field (offset 48) of the last record of the
  # dataset's metadata /dev/shm/bulkmap#NAME (docs/datasets.md), its trailer block's
  # CRC-64/XZ and the record's XXH3-64 (from xxhsum -H3) made good again
  python3 - "/dev/shm/bulkmap#$1" "$2" <<'PY'
import struct, subprocess, sys
path, value = sys.argv[1], int(sys.argv[2])
REC = 4096 + 344 + 8
with open(path, "r+b") as f:
    f.seek(0, 2); size = f.tell(); f.seek(size - REC); r = bytearray(f.read(REC))
    r[48:56] = struct.pack("<q", value)
    crc = 0xFFFFFFFFFFFFFFFF
    for b in r[12:4088]:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xC96C5795D7870F42 if crc & 1 else 0)
    r[4088:4096] = struct.pack("<Q", crc ^ 0xFFFFFFFFFFFFFFFF)
    out = subprocess.run(["xxhsum", "-H3", "-"], input=bytes(r[:REC - 8]), capture_output=True, check=True).stdout.decode()
    h = out.split("=")[-1].strip() if "=" in out.split("\n")[0] else out.split()[0]
    r[REC - 8:] = struct.pack("<Q", int(h, 16))
    f.seek(size - REC); f.write(r)
PY
}
for v in 6918325427000000 -5 253402300800; do
  poke_created "$NAME-q" "$v"
  expect 0 stat "$NAME-q"
  grep -qx "created: $v (invalid time)" "$T/out" && ok || fail "stat, created $v: $(grep created "$T/out")"
  expect 0 stat "$NAME-q" --json
  grep -q "\"created\":$v," "$T/out" && ok || fail "stat --json, created $v: $(cat "$T/out")"
  expect 0 ls
  grep -q "$NAME-q .*$v (invalid time)\$" "$T/out" && ok || fail "ls, created $v: $(grep "$NAME-q" "$T/out")"
done
poke_created "$NAME-q" 253402300799
expect 0 stat "$NAME-q"
grep -qx "created: 9999-12-31T23:59:59Z" "$T/out" && ok || fail "stat, created at the end of 9999: $(grep created "$T/out")"
poke_created "$NAME-q" 951782400
expect 0 ls
grep -q "$NAME-q .*2000-02-29T00:00:00Z\$" "$T/out" && ok || fail "ls, a leap day: $(grep "$NAME-q" "$T/out")"
expect 0 rm "$NAME-q"

# Issue 18 (k): a load whose result cannot be written (stdout full, closed, or a pipe closed
# early) is a failure (exit 1, saying why) and leaves no section: nobody learnt it was made,
# and a retry would meet "exists already". (cmd_load.c acts on cli_out_failed().)
head -c 1000000 /dev/urandom >"$T/lost"
for how in full closed pipe; do
  case $how in
  full)   "$BM" load "$T/lost" --name "$NAME-out" --large-pages off --no-progress >/dev/full 2>"$T/lerr" </dev/null; rc=$? ;;
  closed) "$BM" load "$T/lost" --name "$NAME-out" --large-pages off --no-progress >&- 2>"$T/lerr" </dev/null; rc=$? ;;
  # A pipe whose reader is gone before the load starts (`| true` raced the load: a fast
  # load wrote its result into the pipe before `true` had exited).
  pipe)   python3 -c 'import os, subprocess, sys
r, w = os.pipe(); os.close(r)
sys.exit(subprocess.call(sys.argv[1:], stdout=w, stdin=subprocess.DEVNULL))' \
            "$BM" load "$T/lost" --name "$NAME-out" --large-pages off --no-progress --json 2>"$T/lerr"
          rc=$? ;;
  esac
  [ "$rc" = 1 ] && grep -q '^bulkmap: ' "$T/lerr" && ok || fail "load, result lost ($how): exit $rc, expected 1 with a reason: $(cat "$T/lerr")"
  [ $how != full ] || grep -q "cannot write the result" "$T/lerr" && ok || fail "load >/dev/full: the reason: $(cat "$T/lerr")"
  expect 1 stat "$NAME-out"
  grep -q "no such section" "$T/err" && ok || { fail "load, result lost ($how): the section is still there: $(cat "$T/out")"; "$BM" rm --force "$NAME-out" >/dev/null 2>&1; }
done

finish "tool tests"
