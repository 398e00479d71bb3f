#!/bin/bash
# The lifecycle commands (docs/design.md section 7) on the real OS: load --replace under a reader
# loop, a replace by another user refused, stat/cat --wait (a producer that comes, a
# deadline), rm --abandoned beside a live writer, ls's maps, info's RemoveIPC warning.
# Usage: test_lifecycle.sh BULKMAP
BM=$1
# As root, in a private mount namespace with a /dev/shm of its own (as large as the machine's):
# its rm --abandoned reclaims every abandoned dataset it sees, and in the shared /dev/shm it
# would take those other tests running meanwhile leave abandoned on purpose (and they, this
# test's). Hugetlbfs mounts stay as they are.
if [ "$(id -u)" = 0 ] && [ -z "${BULKMAP_TEST_PRIVATE_SHM:-}" ] && unshare -m true 2>/dev/null; then
  shm_size=$(df -B1 --output=size /dev/shm 2>/dev/null | tail -n 1 | tr -d ' ')
  BULKMAP_TEST_PRIVATE_SHM=1 SHM_SIZE=${shm_size:-2147483648} exec unshare -m --propagation private \
    sh -c 'mount -t tmpfs -o size="$SHM_SIZE",mode=1777 tmpfs /dev/shm || exit 1; exec bash "$0" "$@"' "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
N="bmtl-$$"
at_exit "for s in /dev/shm/$N-*; do [ -e \"\$s\" ] && rm -f \"\$s\"; done"

head -c 3000000 /dev/urandom >"$T/a"
head -c 5000001 /dev/urandom >"$T/b"
ha=$(xxh "$T/a") hb=$(xxh "$T/b")

# Replace: exclusive without --replace; with it, the new bytes under the name.
expect 0 load "$T/a" --name "$N-x" --no-progress
expect_msg 1 "exists already" load "$T/b" --name "$N-x" --no-progress
expect 0 load "$T/b" --name "$N-x" --replace --no-progress --json
[ "$(json "$(cat "$T/out")" xxh3)" = "$hb" ] && ok || fail "replace: xxh3 $(cat "$T/out")"
[ "$(bm cat "$N-x" | xxh)" = "$hb" ] && ok || fail "cat after replace"
expect 0 load "$T/a" --name "$N-new" --replace --no-progress # a name that did not exist
# A replace keeps the old generation's mode unless given (readers of a 0644 dataset keep
# reading it); given, it is the new one's.
expect 0 load "$T/a" --name "$N-mode" --mode 0644 --no-progress
expect 0 load "$T/b" --name "$N-mode" --replace --no-progress
[ "$(stat -c %a "/dev/shm/$N-mode")" = 644 ] && ok || fail "replace without --mode: $(stat -c %a "/dev/shm/$N-mode")"
expect 0 load "$T/a" --name "$N-mode" --replace --mode 0600 --no-progress
[ "$(stat -c %a "/dev/shm/$N-mode")" = 600 ] && ok || fail "replace with --mode 0600: $(stat -c %a "/dev/shm/$N-mode")"
expect 0 rm "$N-mode"
# Each dataset is NAME, its metadata bulkmap#NAME and one keep link bulkmap#NAME#<128 random
# bits> (docs/datasets.md): a replace leaves no other generation behind.
[ "$(ls /dev/shm | grep -c "^bulkmap#$N-x#")" = 1 ] && [ "$(ls /dev/shm | grep -c "^bulkmap#$N-new#")" = 1 ] &&
  ok || fail "a generation was left: $(ls /dev/shm | grep "bulkmap#$N")"

# A reader loop while the name is replaced ten times: every cat is one whole generation.
# It reads for as long as the replaces go on (and 20 times at least), not a fixed 400 times
# (minutes under the sanitizers, most of them after the last replace).
( fails=0 i=0; while [ $i -lt 400 ] && { [ $i -lt 20 ] || [ ! -e "$T/replaced" ]; }; do
    i=$((i + 1))
    h=$(bm cat "$N-x" 2>>"$T/rerr" | xxh)
    [ "$h" = "$ha" ] || [ "$h" = "$hb" ] || { echo "read $i: '$h'" >>"$T/rerr"; fails=1; }
  done; echo "$i" >"$T/reads"; exit $fails ) & rpid=$!
for i in $(seq 1 10); do
  f=$T/a; [ $((i % 2)) = 0 ] && f=$T/b
  bm load "$f" --name "$N-x" --replace --no-progress >/dev/null || fail "replace $i"
done
: >"$T/replaced"
wait $rpid && ok || fail "reader loop: $(head -5 "$T/rerr")"
echo "note: $(cat "$T/reads") reads during 10 replaces" >&2

# Another user may not replace it (nothing changed).
if have_nobody; then
  bm load "$T/a" --name "$N-x" --replace --mode 0644 --no-progress >/dev/null
  cp "$T/b" "$T/b2"; chmod 644 "$T/b2"; chmod 755 "$T"
  nobody "$BM" load "$T/b2" --name "$N-x" --replace --no-progress >/dev/null 2>"$T/nerr"
  rc=$?
  [ $rc = 1 ] && grep -q "another user's dataset" "$T/nerr" && ok || fail "nobody's replace: exit $rc $(cat "$T/nerr")"
  [ "$(bm cat "$N-x" | xxh)" = "$ha" ] && ok || fail "the refused replace changed the dataset"
else
  skip "another user: not root or no setpriv"
fi

# Wait: a deadline, then a producer that comes 0.5 s later.
t0=$(date +%s.%N)
expect_msg 1 "timed out after 0.5 s" stat "$N-late" --wait 0.5
awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a >= 0.5 && b - a < 3) }' && ok || fail "deadline timing"
expect_msg 2 "expected seconds" cat "$N-late" --wait soon
( sleep 0.5; bm load "$T/b" --name "$N-late" --no-progress >/dev/null ) &
[ "$(bm cat "$N-late" --wait 20 | xxh)" = "$hb" ] && ok || fail "cat --wait"
wait
expect 0 stat "$N-late" --wait 1

# rm --abandoned: a load killed midway is reclaimed, a live one (--hold) is not.
truncate -s 3G "$T/big"
"${LIB_BM[@]}" load "$T/big" --name "$N-dead" --no-progress --large-pages off >/dev/null 2>&1 & lpid=$!
for i in $(seq 1 100); do [ -e "/dev/shm/bulkmap#$N-dead" ] && break; sleep 0.01; done
sleep 0.1; kill -9 $lpid 2>/dev/null; wait $lpid 2>/dev/null
"${LIB_BM[@]}" load "$T/a" --name "$N-live" --hold --no-progress >/dev/null 2>&1 & hpid=$!
for i in $(seq 1 100); do [ -e "/dev/shm/$N-live" ] && break; sleep 0.02; done
if [ "$(bm stat "$N-dead" --json 2>/dev/null | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')" = abandoned ]; then
  expect 0 rm --abandoned --json
  grep -q "\"name\":\"$N-dead\"" "$T/out" && ok || fail "rm --abandoned: $(cat "$T/out")"
  grep -q '"freed_bytes":[1-9]' "$T/out" && ok || fail "rm --abandoned: freed $(cat "$T/out")"
  [ -e "/dev/shm/$N-dead" ] && fail "the abandoned one is still there" || ok
else
  skip "rm --abandoned: the load was not caught midway"
  bm rm --force "$N-dead" 2>/dev/null
fi
[ -e "/dev/shm/$N-live" ] && ok || fail "rm --abandoned removed a live holder's dataset"
expect 0 rm --abandoned
grep -q '^freed: ' "$T/out" && ok || fail "rm --abandoned human: $(cat "$T/out")"
expect 2 rm --abandoned "$N-live"

# ls maps: the holder's section is mapped by nobody; a cat in a pipe maps it.
expect 0 ls --json
grep -q "\"name\":\"$N-live\"[^}]*\"maps\":0" "$T/out" && ok || fail "ls maps: $(cat "$T/out")"
kill $hpid; wait $hpid

# info: the RemoveIPC key always; the warning where it applies (a non-system user, logind
# on, RemoveIPC=yes): shown in a private mount namespace that has them.
expect 0 info --json
grep -q '"remove_ipc":{"applies":' "$T/out" && ok || fail "info remove_ipc: $(cat "$T/out")"
if have_nobody && command -v unshare >/dev/null && [ -e /lib/systemd/systemd-logind -o -e /usr/lib/systemd/systemd-logind ]; then
  cat >"$T/ns.sh" <<EOS
set -e
mount -t tmpfs bmtest /run/systemd 2>/dev/null || { mkdir -p /run/systemd; mount -t tmpfs bmtest /run/systemd; }
mkdir /run/systemd/system
mount -t tmpfs bmtest /etc/systemd
printf '[Login]\nRemoveIPC=yes\n' >/etc/systemd/logind.conf
setpriv --reuid=65534 --regid=65534 --clear-groups "$BM" info >"$T/i1"
printf '[Login]\nRemoveIPC=no\n' >/etc/systemd/logind.conf
setpriv --reuid=65534 --regid=65534 --clear-groups "$BM" info --json >"$T/i2"
EOS
  if unshare -m --propagation private bash "$T/ns.sh" 2>"$T/nserr"; then
    grep -q '^warning: systemd-logind removes your datasets' "$T/i1" && ok || fail "no RemoveIPC warning: $(cat "$T/i1")"
    grep -q '"warning":null' "$T/i2" && ok || fail "RemoveIPC=no still warns: $(cat "$T/i2")"
  else
    skip "RemoveIPC: cannot make a private mount namespace: $(head -2 "$T/nserr")"
  fi
else
  skip "RemoveIPC warning: not root, or no unshare/logind"
fi

bm rm "$N-x" "$N-new" "$N-late" 2>/dev/null
finish test_lifecycle
