#!/usr/bin/env bash
# The two commands of README.md:
#   tools/dev.sh demo   install what is needed, build, and run bulkmap on a demo dataset
#   tools/dev.sh test   install what is needed, build and run every test lane
#   tools/dev.sh soak   the dataset, lifecycle and hostile suites ROUNDS times (20) under
#                       stress-ng, in a private mount namespace (tests/soak/soak.sh; root)
# Packages come from Debian (apt-get); nothing is installed when all are present.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS_BUILD="cmake make gcc pkg-config libuv1-dev check libjansson-dev libxxhash-dev xxhash python3-dev python3-numpy"
# The Python suite (tests/python): pytest, and Dask for bulkmap.dask; the packaging tests:
# venv + pip + setuptools/wheel (pip install .), python3-build (python3 -m build), dpkg-dev
# (cpack -G DEB's dpkg-shlibdeps).
# python3-torch (Debian 1.13, CPU only; with libtorch1.13 about 180 MB installed): the
# DataLoader tests of tests/python/test_arrays.py.
PKGS_PY_TEST="python3-pytest python3-dask python3-distributed python3-venv python3-pip python3-setuptools python3-wheel python3-build python3-torch"
# stress-ng: the load beside `tools/dev.sh soak` (installed there; the ctest entry soak
# runs one round beside the rest of its lane instead).
# ninja-build: cmake/windeps.sh's configure steps (many small try-compiles) in 0.6 the time.
PKGS_TEST="$PKGS_BUILD $PKGS_PY_TEST valgrind clang libclang-rt-14-dev gcc-mingw-w64-x86-64 wine64 dpkg-dev gcc-multilib ninja-build"

need() {
  local missing=()
  for p in "$@"; do
    grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "dev.sh: installing ${missing[*]}" >&2
  local SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Whether this kernel runs i386 programs (IA32 emulation): the linux32 lane builds and runs
# them; without it every one of them is "Exec format error".
can_run_32bit() {
  local d rc
  d=$(mktemp -d)
  printf 'int main(void) { return 0; }\n' >"$d/t.c"
  gcc -m32 "$d/t.c" -o "$d/t" 2>/dev/null && "$d/t" 2>/dev/null
  rc=$?
  rm -rf "$d"
  return $rc
}

case "${1:-}" in
demo)
  need $PKGS_BUILD
  cmake --preset default >/dev/null
  cmake --build --preset default
  exec bash tools/demo.sh build/default
  ;;
test)
  need $PKGS_TEST
  # What the tests may change only for a while (huge page pools, hugetlbfs mounts, the
  # protected_* settings, THP) and must give back: compared after every lane has run.
  machine_state() {
    local f
    for f in /proc/sys/vm/nr_hugepages /sys/kernel/mm/hugepages/*/nr_hugepages \
      /proc/sys/fs/protected_regular /proc/sys/fs/protected_fifos /proc/sys/fs/protected_symlinks \
      /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/shmem_enabled; do
      [ -r "$f" ] && printf '%s=%s\n' "$f" "$(cat "$f" 2>/dev/null)"
    done
    awk '$3 == "hugetlbfs" {print "mount " $2}' /proc/mounts
  }
  state_before=$(machine_state)
  lanes=${BULKMAP_LANES:-"default asan windows linux32"}
  # BULKMAP_PARALLEL=1: the Windows lane beside the others (its output kept in
  # build/windows-lane.log and printed when it ends). Measured on 2 CPUs it saves nothing
  # (707 s against 713 s: the CPUs are busy either way), so lanes run one after another.
  background=""
  case " $lanes " in *" windows "*) [ -n "${BULKMAP_PARALLEL:-}" ] && background=windows ;; esac
  if [ -n "$background" ]; then
    mkdir -p build
    echo "=== lane: windows (beside the others; build/windows-lane.log) ===" >&2
    ( t0=$SECONDS; rc=0; cmake --workflow --preset windows || rc=$?
      echo "=== lane: windows: $((SECONDS - t0)) s, exit $rc ==="; exit $rc ) >build/windows-lane.log 2>&1 &
    bg_pid=$!
    # A native lane that fails ends the run: the Windows lane with it.
    trap 'if kill -0 "$bg_pid" 2>/dev/null; then pkill -TERM -P "$bg_pid"; kill "$bg_pid"; fi 2>/dev/null' EXIT
  fi
  for lane in $lanes; do
    [ "$lane" = "$background" ] && continue
    if [ "$lane" = linux32 ] && ! can_run_32bit; then
      echo "=== lane: linux32: SKIP: this kernel runs no 32-bit programs (no IA32 emulation) ===" >&2
      continue
    fi
    echo "=== lane: $lane ===" >&2
    t0=$SECONDS
    cmake --workflow --preset "$lane"
    echo "=== lane: $lane: $((SECONDS - t0)) s ===" >&2
  done
  # Hardening lanes on the native build: valgrind memcheck of the tool, bounded fuzzing.
  if [ -x build/default/tools/bulkmap ]; then
    echo "=== lane: valgrind ===" >&2
    bash tests/valgrind.sh build/default/tools/bulkmap
  fi
  echo "=== lane: fuzz ===" >&2
  t0=$SECONDS
  bash tests/fuzz/run.sh "${FUZZ_SECONDS:-12}"
  echo "=== lane: fuzz: $((SECONDS - t0)) s ===" >&2
  # Fault injection: every OS call of the POSIX backend made to fail in turn (tests only).
  echo "=== lane: fault ===" >&2
  cmake -S . -B build/fault -DBULKMAP_FAULT_INJECTION=ON -DBULKMAP_BUILD_TOOLS=OFF \
    -DBULKMAP_BUILD_PERF=OFF >/dev/null
  cmake --build build/fault -j"$(nproc)"
  if ! ctest --test-dir build/fault -R check_fault -V >build/fault/fault.log 2>&1; then
    cat build/fault/fault.log >&2
    exit 1
  fi
  grep -E '^[0-9]+: (fault|note|SKIP)' build/fault/fault.log >&2 || true
  if [ -n "$background" ]; then
    bg_rc=0
    wait "$bg_pid" || bg_rc=$?
    cat build/windows-lane.log >&2
    [ "$bg_rc" = 0 ] || { echo "dev.sh: the windows lane failed (exit $bg_rc)" >&2; exit 1; }
  fi
  if [ "$(machine_state)" != "$state_before" ]; then
    echo "dev.sh: the tests left the machine changed (before, then after):" >&2
    diff <(echo "$state_before") <(machine_state) >&2 || true
    exit 1
  fi
  echo "dev.sh: all lanes passed ($lanes valgrind fuzz fault) in $SECONDS s; the machine as it was" >&2
  ;;
soak)
  # ROUNDS rounds (20) of the suites that must never flake, on the native build, under load.
  if [ "$(id -u)" -ne 0 ]; then
    echo "dev.sh soak: skipped: needs root (a private mount namespace with its own /dev/shm)" >&2
    exit 0
  fi
  need $PKGS_BUILD $PKGS_PY_TEST stress-ng
  cmake --preset default >/dev/null
  cmake --build --preset default
  exec bash tests/soak/soak.sh build/default "${ROUNDS:-20}"
  ;;
*)
  echo "usage: tools/dev.sh demo|test|soak" >&2
  exit 2
  ;;
esac
