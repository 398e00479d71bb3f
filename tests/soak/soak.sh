#!/usr/bin/env bash
# The soak (issue 26): the dataset, lifecycle and hostile suites and the tool's and Python's
# lifecycle tests, ROUNDS times in a row, on a loaded machine (stress-ng: CPU workers on
# every core and a memory worker beside them), in a private mount namespace with its own
# tmpfs on /dev/shm (so the datasets of these rounds and of anything else on the machine
# never meet, and every mount a test makes goes with the namespace). Stops at the first
# failure and prints the failed tests' output; a round that leaves anything in /dev/shm, or
# a machine setting (large-page pools, fs.protected_*, THP) changed, fails too (what it leaves
# in its TMPDIR is said). Needs root (unshare -m, tmpfs); skips (77) without it, or without stress-ng.
#   soak.sh BUILD [ROUNDS]
# Environment: ROUNDS (20), SOAK_TESTS (a ctest -R regex), SOAK_JOBS (ctest -j, 2),
# SOAK_CPU (stress-ng --cpu, 2), SOAK_VM_BYTES (1G), SOAK_STRESS (1; 0: no stress-ng, the
# load is what runs beside the soak: CI's round runs beside the rest of its lane),
# SOAK_SHM_SIZE (the machine's /dev/shm size), SOAK_LOGS (where a failed round's logs are
# kept: BUILD/soak-logs).
set -uo pipefail
skip() { echo "SKIP: $*"; exit 77; }
build=$(cd "${1:?usage: soak.sh BUILD [ROUNDS]}" && pwd) || exit 2
rounds=${2:-${ROUNDS:-20}}
tests=${SOAK_TESTS:-'^(check_dataset\.|check_lifecycle\.|check_hostile\.|tool_lifecycle$|python\.lifecycle$)'}
jobs=${SOAK_JOBS:-2}
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

[ "$(id -u)" = 0 ] || skip "not root (a private mount namespace with its own /dev/shm needs it)"
command -v unshare >/dev/null || skip "no unshare (util-linux)"
stress=${SOAK_STRESS:-1}
[ "$stress" = 0 ] || command -v stress-ng >/dev/null ||
  skip "no stress-ng (tools/dev.sh installs it: apt-get install stress-ng)"
[ -f "$build/CTestTestfile.cmake" ] || { echo "soak: $build is not a configured build" >&2; exit 2; }

# The settings a test may change and must put back (large-page pools, the protected_*
# sysctls check_hostile sets to Debian's values, THP): read before, compared after each round.
settings() {
  local f
  for f in /proc/sys/vm/nr_hugepages /proc/sys/vm/nr_overcommit_hugepages /proc/sys/vm/overcommit_memory \
    /sys/kernel/mm/hugepages/*/nr_hugepages /sys/kernel/mm/hugepages/*/nr_overcommit_hugepages \
    /proc/sys/fs/protected_regular /proc/sys/fs/protected_fifos /proc/sys/fs/protected_symlinks \
    /proc/sys/fs/protected_hardlinks /sys/kernel/mm/transparent_hugepage/enabled \
    /sys/kernel/mm/transparent_hugepage/shmem_enabled; do
    [ -r "$f" ] && printf '%s=%s\n' "$f" "$(cat "$f" 2>/dev/null)"
  done
}

# The tests' lock on the large-page settings (tests/hugetest.h): a test that changes them
# holds it exclusively for as long as the change lasts. The settings are read holding it
# shared, so a reservation of a test running elsewhere on the machine is never taken for one
# left behind, and put back holding it exclusively.
lockfile=/tmp/bulkmap-hugepages.lock
locked() {  # -s|-x FUNCTION: FUNCTION's output, run under the lock
  local how=$1; shift
  [ -e "$lockfile" ] || (umask 0 && : >>"$lockfile")
  (
    flock "$how" -w 120 8 || echo "soak: note: the large-page lock not had in 120 s" >&2
    "$@"
  ) 8<"$lockfile"
}

if [ "${BULKMAP_SOAK_NS:-}" != 1 ]; then
  # Outside: into a private mount namespace (nothing mounted there propagates back).
  echo "soak: $rounds rounds of ctest -R '$tests' (-j$jobs) in $build"
  BULKMAP_SOAK_NS=1 exec unshare --mount --propagation private -- bash "$self" "$build" "$rounds"
fi

# Inside the namespace. Everything temporary is under $W; stress-ng is ended on any exit.
W=$(mktemp -d "${TMPDIR:-/tmp}/bmsoak.XXXXXX")
chmod 755 "$W"  # the tests' TMPDIR is under it, and they read their files as another user too
logs=${SOAK_LOGS:-$build/soak-logs}
stress_pid="" ctest_pid=""
locked -s settings >"$W/settings.before"
cleanup() {
  local rc=$? interrupted=0
  if [ -n "$ctest_pid" ]; then
    interrupted=1
    kill -TERM -- "-$ctest_pid" 2>/dev/null
    sleep 1
    kill -KILL -- "-$ctest_pid" 2>/dev/null
    wait "$ctest_pid" 2>/dev/null
  fi
  if [ -n "$stress_pid" ]; then
    kill -TERM -- "-$stress_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$stress_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$stress_pid" 2>/dev/null
    wait "$stress_pid" 2>/dev/null
  fi
  # A setting that differs now: put back only when this soak killed a round's tests (one of
  # them may have had no time to put it back); otherwise it is said, and left: the machine's
  # other users (another test run) may be using the value they set, and the round that saw
  # it has failed already if it stayed.
  settings >"$W/settings.end"
  if ! cmp -s "$W/settings.before" "$W/settings.end"; then
    locked -x put_back "$interrupted"
  fi
  umount /dev/shm 2>/dev/null
  rm -rf "$W"
  exit $rc
}
put_back() {  # interrupted
  local f v
  while IFS='=' read -r f v; do
    [ "$(cat "$f" 2>/dev/null)" = "$v" ] && continue
    if [ "$1" = 1 ]; then
      echo "soak: putting back $f = $v (a killed test may have left $(cat "$f" 2>/dev/null))" >&2
      echo "$v" >"$f" 2>/dev/null
    else
      echo "soak: note: $f is $(cat "$f" 2>/dev/null) (was $v at the start): left as it is" >&2
    fi
  done <"$W/settings.before"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Our own /dev/shm: the size of the machine's, unless told.
shm_kb=$(df -k --output=size /dev/shm 2>/dev/null | tail -1 | tr -d ' ')
mount -t tmpfs -o "size=${SOAK_SHM_SIZE:-${shm_kb:-4194304}k},mode=1777,nosuid,nodev" soak-shm /dev/shm ||
  { echo "soak: cannot mount a tmpfs on /dev/shm in the namespace" >&2; exit 1; }

# ctest of the build's tests from a directory of our own: its Testing/ (logs, cost data)
# never meets the build's own ctest, which may be running this very soak.
mkdir -p "$W/ctest"
printf 'subdirs("%s")\n' "$build" >"$W/ctest/CTestTestfile.cmake"
n=$(ctest --test-dir "$W/ctest" -N -R "$tests" | sed -n 's/^Total Tests: //p')
[ "${n:-0}" -gt 0 ] || { echo "soak: no test matches '$tests' in $build" >&2; exit 1; }

# The load: CPU workers and a memory worker in a process group of their own (set -m: bash
# makes each background job the leader of a new group, so $! is the group; setsid would
# fork, and $! be a process already gone, when this shell runs as a group leader), killed
# whole at exit, killed with this shell should it die (--pdeathsig; stress-ng's workers
# die with it), and a timeout as the last resort.
cpu=${SOAK_CPU:-2} vm_bytes=${SOAK_VM_BYTES:-1G}
stress_timeout=$((rounds * 900 + 60))
if command -v setpriv >/dev/null; then pdeath=(setpriv --pdeathsig KILL --); else pdeath=(); fi
if [ "$stress" != 0 ]; then
  set -m
  "${pdeath[@]}" stress-ng --cpu "$cpu" --vm 1 --vm-bytes "$vm_bytes" --timeout "${stress_timeout}s" \
    >"$W/stress.log" 2>&1 </dev/null &
  stress_pid=$!
  set +m
  sleep 1
  kill -0 "$stress_pid" 2>/dev/null || { echo "soak: stress-ng did not start: $(cat "$W/stress.log")" >&2; stress_pid=""; exit 1; }
  echo "soak: load: stress-ng --cpu $cpu --vm 1 --vm-bytes $vm_bytes (pid $stress_pid); /dev/shm: private tmpfs; $n tests a round"
else
  echo "soak: load: what runs beside it (SOAK_STRESS=0: no stress-ng; load average $(cut -d' ' -f1-3 /proc/loadavg)); /dev/shm: private tmpfs; $n tests a round"
fi
settings | sed 's/^/soak: setting /'

fail_round() {  # round, reason: keep the logs, say where, stop
  mkdir -p "$logs"
  cp "$W/round.out" "$logs/round$1.out" 2>/dev/null
  cp "$W/ctest/Testing/Temporary/LastTest.log" "$logs/round$1.LastTest.log" 2>/dev/null
  echo "soak: FAILED in round $1 of $rounds: $2" >&2
  echo "soak: logs kept in $logs/round$1.out and $logs/round$1.LastTest.log" >&2
  exit 1
}

start=$(date +%s)
for r in $(seq "$rounds"); do
  t0=$(date +%s)
  mkdir -p "$W/tmp" && chmod 1777 "$W/tmp"  # as /tmp
  # In a process group of its own (set -m, as stress-ng), waited for in the background: a
  # signal to this shell ends the round at once (the trap kills the group), not once ctest
  # is done.
  set -m
  TMPDIR=$W/tmp ctest --test-dir "$W/ctest" -R "$tests" -j"$jobs" --output-on-failure --stop-on-failure \
    >"$W/round.out" 2>&1 </dev/null &
  ctest_pid=$!
  set +m
  wait "$ctest_pid"
  rc=$?
  ctest_pid=""
  if [ -n "$stress_pid" ] && ! kill -0 "$stress_pid" 2>/dev/null; then
    wait "$stress_pid"; st=$?; stress_pid=""
    fail_round "$r" "stress-ng ended early (exit status $st): $(tail -20 "$W/stress.log")"
  fi
  if [ $rc != 0 ]; then
    # ctest's lines of the round, with the failed tests' output (--output-on-failure).
    cat "$W/round.out" >&2
    failed=$(sed -n 's/^[[:space:]]*[0-9]* - \([^ ]*\) (.*/\1/p' "$W/round.out" | tr '\n' ' ')
    fail_round "$r" "ctest exit $rc: ${failed:-see the output above}"
  fi
  # Nothing left behind: datasets, claims and keep links in /dev/shm, files in TMPDIR.
  left=$(ls -A /dev/shm)
  [ -z "$left" ] || fail_round "$r" "left in /dev/shm: $(ls -lA /dev/shm | tail -n +2 | head -20)"
  # TMPDIR is a temporary place: what is left there is said, not a failure (Dask's
  # LocalCluster leaves dask-worker-space/, pytest its last basetemps pytest-of-USER/).
  lefttmp=$(cd "$W/tmp" && find . -mindepth 1 -maxdepth 1 | head -20 | tr '\n' ' ')
  [ -z "$lefttmp" ] || echo "soak: note: round $r left in TMPDIR: $lefttmp"
  rm -rf "$W/tmp"
  # The settings as at the start. Another process of the machine (a test run beside this
  # one) may hold a large-page reservation for a while: a difference must last 30 s to fail.
  for i in $(seq 30); do
    locked -s settings >"$W/settings.now"
    cmp -s "$W/settings.before" "$W/settings.now" && break
    sleep 1
  done
  if [ "$i" -gt 1 ] && cmp -s "$W/settings.before" "$W/settings.now"; then
    echo "soak: note: a setting differed after round $r for $((i - 1)) s (another process's, put back meanwhile)"
  fi
  cmp -s "$W/settings.before" "$W/settings.now" ||
    fail_round "$r" "a setting changed and stayed so 30 s: $(diff "$W/settings.before" "$W/settings.now" | grep '^[<>]' | tr '\n' ' ')"
  echo "soak: round $r/$rounds passed ($(($(date +%s) - t0)) s; load average $(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "soak: $rounds rounds passed under load in $(($(date +%s) - start)) s"
