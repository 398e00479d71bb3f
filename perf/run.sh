#!/usr/bin/env bash
# perf/run.sh: bulkmap side by side with the tools people use, on this machine, in one run.
# Sets up what it needs (packages, build, huge pages, hugetlbfs, data files on disk, page
# cache state), runs every benchmark interleaved with its peers for several rounds, writes
# perf/results/*.csv, perf/results/*.png (gnuplot) and perf/RESULTS.md (medians, ratios
# against the peer measured in the same run), and restores what it changed, even on Ctrl-C.
#
# usage: perf/run.sh [--quick] [--rounds N] [--only scan,sweep,load,bench,cold]
#                    [--dir PARENT] [--bulkmap PATH]
# --only runs the listed phases and keeps the other phases' results (and run.txt, the
# machine facts of the last full run); each phase run replaces its own files.
# Needs root (drop_caches, huge page pool, mounts). Speed claims live here, never in tests.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RES=$REPO/perf/results
QUICK=0 ROUNDS="" PHASES="scan sweep load bench cold" PARENT=${BMPERF_DIR:-/var/tmp} BM_GIVEN=""
ONLY=0 # --only: the other phases' results (and run.txt) are kept as they are

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --quick) QUICK=1 ;;
    --rounds) ROUNDS=${2:?--rounds N}; shift ;;
    --only) PHASES=${2:?--only LIST}; PHASES=${PHASES//,/ }; ONLY=1; shift ;;
    --dir) PARENT=${2:?--dir PARENT}; shift ;;
    --bulkmap) BM_GIVEN=${2:?--bulkmap PATH}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [ "$(id -u)" -ne 0 ]; then
  echo "run.sh: needs root (drop_caches, the huge page pool, hugetlbfs mounts)" >&2
  exit 2
fi

# ------------------------------------------------------------------------------------------
# Sizes. --quick keeps the 4 GiB scan file (the goals are stated for it) and cuts rounds,
# the sweep, the bench sizes, and the cold file (which is then NOT larger than half the
# memory: RESULTS.md says so).
GiB=$((1 << 30)) MiB=$((1 << 20))
MEM_BYTES=$(($(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 1024))
SCAN_SIZE=$((4 * GiB))
LIT="needle~bulkmap~" # '~' is not a base64 character: the literal is rare by construction
if ((QUICK)); then
  R=${ROUNDS:-3} COLD_R=2
  WINDOWS="2M 16M 64M 256M 1G"
  SWEEP_SIZE=2G
  COLD_SIZE=$SCAN_SIZE # the scan file itself: smaller than half the memory
else
  R=${ROUNDS:-5} COLD_R=3
  WINDOWS="2M 4M 8M 16M 32M 64M 128M 256M 512M 1G"
  SWEEP_SIZE=8G # past the 2 MiB pages' TLB reach (3072 L2 entries on Zen 4: 6 GiB)
  COLD_SIZE=$((14 * GiB)) # more than half the memory: the page cache cannot keep it
fi
if ((COLD_R > R)); then COLD_R=$R; fi
SWEEP_BYTES=$(numfmt --from=iec "$SWEEP_SIZE")

T_START=$(date +%s)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
PR=/sys/module/page_reporting/parameters
REPORTED_START=$(cat "$PR/reported_kib" 2>/dev/null || echo 0)
log() { printf '[%4ds] %s\n' $(($(date +%s) - T_START)) "$*" >&2; }

# ------------------------------------------------------------------------------------------
# What we change, and how it is put back (trap on EXIT; INT/TERM exit through it).
WORK="" MOUNTED="" LOCKED=0 SHMEM_SAVED="" TAG="bmperf-$$"
HP2=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
HP2_SAVED=""
SHMEM_KNOB=/sys/kernel/mm/transparent_hugepage/shmem_enabled
LOCK=/tmp/bulkmap-hugepages.lock # shared with the Check suites (tests/hugetest.h)

huge_release() {
  if [ -n "$MOUNTED" ]; then
    umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null || true
    rmdir "$MOUNTED" 2>/dev/null || true
    MOUNTED=""
  fi
  if [ -n "$HP2_SAVED" ]; then
    echo "$HP2_SAVED" >"$HP2" 2>/dev/null || true
    log "huge pages: nr_hugepages (2 MiB) back to $HP2_SAVED (now $(cat "$HP2"))"
    HP2_SAVED=""
  fi
  if [ -n "$SHMEM_SAVED" ]; then
    echo "$SHMEM_SAVED" >"$SHMEM_KNOB" 2>/dev/null || true
    log "shmem_enabled back to $SHMEM_SAVED"
    SHMEM_SAVED=""
  fi
  if ((LOCKED)); then
    flock -u 9 || true
    LOCKED=0
  fi
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  # Sections and copies this run made (names carry the run's tag).
  rm -f /dev/shm/"$TAG"-* 2>/dev/null
  [ -n "$WORK" ] && [ -x "$WORK/bin/bulkmap" ] && "$WORK/bin/bulkmap" rm "$TAG-lg" >/dev/null 2>&1
  [ -n "$MOUNTED" ] && rm -f "$MOUNTED/$TAG"-* 2>/dev/null
  huge_release
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    rm -rf "$WORK"
    log "removed $WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'log "interrupted: cleaning up"; exit 130' INT TERM

# Takes the huge page lock and reserves `pages` 2 MiB pages, mounting hugetlbfs (2 MiB) in
# the work folder when no hugetlbfs is mounted. Sets HUGE_GOT to the pages really reserved.
# (Not for $(...): the lock, the saved values and the mount must stay in this shell.)
HUGE_GOT=0
huge_reserve() {
  local pages=$1
  HUGE_GOT=0
  if ((!LOCKED)); then
    exec 9>>"$LOCK"
    if ! flock -x -w 600 9; then
      log "huge pages: could not take $LOCK in 10 minutes (tests running?)"
      return 0
    fi
    LOCKED=1
  fi
  [ -z "$HP2_SAVED" ] && HP2_SAVED=$(cat "$HP2")
  echo "$pages" >"$HP2" 2>/dev/null || true
  HUGE_GOT=$(cat "$HP2")
  # Short of 2 MiB blocks (a page cache full of others' files fragments memory): compact,
  # then drop clean caches (the warm phases restate their cache state anyway), and ask again.
  if ((HUGE_GOT < pages)); then
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
    echo "$pages" >"$HP2" 2>/dev/null || true
    HUGE_GOT=$(cat "$HP2")
  fi
  if ((HUGE_GOT < pages)); then
    sync
    echo 3 >/proc/sys/vm/drop_caches
    echo 1 >/proc/sys/vm/compact_memory 2>/dev/null || true
    echo "$pages" >"$HP2" 2>/dev/null || true
    HUGE_GOT=$(cat "$HP2")
  fi
  if ! awk '$3 == "hugetlbfs"' /proc/mounts | grep -q .; then
    MOUNTED=$WORK/hugetlbfs
    mkdir -p "$MOUNTED"
    mount -t hugetlbfs -o pagesize=2M,mode=1777 none "$MOUNTED"
  fi
  log "huge pages: asked $pages, reserved $HUGE_GOT (2 MiB); hugetlbfs: $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts | tr '\n' ' ')"
}

# ------------------------------------------------------------------------------------------
# Packages and build.
need=()
command -v fio >/dev/null || need+=(fio)
command -v rg >/dev/null || need+=(ripgrep)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
command -v xxhsum >/dev/null || need+=(xxhash)
command -v fincore >/dev/null || need+=(util-linux)
command -v cmake >/dev/null || need+=(cmake)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get install -y "${need[@]}" >/dev/null
fi

WORK=$(mktemp -d "$PARENT/bulkmap-perf.XXXXXX")
FSTYPE=$(stat -f -c %T "$WORK")
case $FSTYPE in tmpfs | ramfs)
  echo "run.sh: $PARENT is $FSTYPE; the data files must be on disk (--dir PARENT)" >&2
  exit 2 ;;
esac
mkdir -p "$WORK/bin" "$WORK/out" "$RES"

if [ -n "$BM_GIVEN" ]; then
  cp "$BM_GIVEN" "$WORK/bin/bulkmap"
  PROBE=""
else
  log "building (cmake --preset default; cmake --build --preset default)"
  (cd "$REPO" && cmake --preset default >/dev/null &&
    cmake --build --preset default --target bulkmap_tool bm_probe_populate bm_probe_load bm_probe_tlb >"$WORK/build.log" 2>&1) ||
    { tail -20 "$WORK/build.log" >&2; exit 1; }
  # A private copy: others may rebuild build/default while this runs.
  cp "$REPO/build/default/tools/bulkmap" "$WORK/bin/bulkmap"
  cp "$REPO/build/default/perf/bm_probe_populate" "$WORK/bin/"
  PROBE=$WORK/bin/bm_probe_populate
  cp "$REPO/build/default/perf/bm_probe_load" "$WORK/bin/"
  cp "$REPO/build/default/perf/bm_probe_tlb" "$WORK/bin/"
fi
BM=$WORK/bin/bulkmap
BM_VERSION=$("$BM" --version)
GIT_REV=$(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown)

# ------------------------------------------------------------------------------------------
# Data: text lines (base64 of random bytes, 77 bytes a line) with the rare literal on a line
# of its own between 64 MiB blocks, cut to the exact size.
make_data() {
  local file=$1 size=$2 i=0
  [ -f "$WORK/chunk" ] || head -c $((48 * MiB)) /dev/urandom | base64 -w 76 >"$WORK/chunk"
  : >"$file"
  while (($(stat -c %s "$file") < size)); do
    i=$((i + 1))
    cat "$WORK/chunk" >>"$file"
    printf '%s%d\n' "$LIT" "$i" >>"$file"
  done
  truncate -s "$size" "$file"
}

# The stated page cache state for warm runs: caches dropped, then the file read once by
# cat (so the page cache holds it in the large folios readahead makes, as it would after
# any first read from disk). Records the cost of mapping it (MADV_POPULATE_READ).
cache_state() {
  local file=$1 tag=$2
  local i
  sync
  echo 3 >/proc/sys/vm/drop_caches
  cat "$file" >/dev/null
  # Others' memory use may have pushed part of it out already: read again what is missing
  # (from disk, so in the same large folios).
  for i in 1 2 3; do
    (($(resident_check "$file") >= $(stat -c %s "$file"))) && break
    cat "$file" >/dev/null
  done
  {
    echo "phase: $tag"
    echo "resident: $(fincore -n -b -o RES "$file" | tr -d ' ')"
    [ -n "$PROBE" ] && "$PROBE" "$file"
  } >"$WORK/out/cache-$tag.txt" 2>&1 || true
  log "page cache for $tag: $(tr '\n' ' ' <"$WORK/out/cache-$tag.txt")"
}

resident_check() { # prints the bytes of $1 that are in the page cache
  fincore -n -b -o RES "$1" | tr -d ' '
}

# ------------------------------------------------------------------------------------------
# The interleaved runner. A benchmark is a set of commands; each round runs every command
# once, in an order rotated every round (so no command always follows the same one); round
# 0 is a warm-up that is not recorded. Wall time of the whole command, for every tool alike.
declare -a C_NAME C_CMD C_AFTER C_BEFORE
set_clear() { C_NAME=() C_CMD=() C_AFTER=() C_BEFORE=(); }
# set_add NAME COMMAND [AFTER] [BEFORE]: COMMAND is shell text; AFTER (untimed) cleans up
# after each run, BEFORE (untimed) prepares each run.
set_add() {
  C_NAME+=("$1") C_CMD+=("$2") C_AFTER+=("${3:-}") C_BEFORE+=("${4:-}")
  printf '%s\t%s\t%s\n' "$BENCH" "$1" "$2" >>"$WORK/commands.tsv"
}

run_set() { # run_set BENCH BYTES ROUNDS
  local bench=$1 bytes=$2 rounds=$3 n=${#C_NAME[@]} r k i t0 t1 rc secs
  local csv=$RES/$bench.csv
  [ -f "$csv" ] || echo "bench,name,round,seconds,bytes,bytes_per_second" >"$csv"
  for ((r = 0; r <= rounds; r++)); do
    for ((k = 0; k < n; k++)); do
      i=$(((k + r) % n))
      [ -n "${C_BEFORE[i]}" ] && eval "${C_BEFORE[i]}"
      rc=0
      t0=$EPOCHREALTIME
      eval "${C_CMD[i]}" >"$WORK/out/$bench.${C_NAME[i]}.$r" 2>"$WORK/out/err" || rc=$?
      t1=$EPOCHREALTIME
      [ -n "${C_AFTER[i]}" ] && eval "${C_AFTER[i]}"
      if ((rc != 0)); then
        log "$bench: ${C_NAME[i]} failed (exit $rc): $(head -c 400 "$WORK/out/err")"
        echo "$bench,${C_NAME[i]},exit $rc: $(head -c 200 "$WORK/out/err" | tr ',\n' '; ')" >>"$RES/failures.csv"
        continue
      fi
      ((r == 0)) && continue
      secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')
      echo "$bench,${C_NAME[i]},$r,$secs,$bytes,$(awk -v s="$secs" -v b="$bytes" 'BEGIN {printf "%.0f", b / s}')" >>"$csv"
    done
    ((r == 0)) && log "$bench: warm-up round done" || log "$bench: round $r/$rounds done"
  done
}

# ------------------------------------------------------------------------------------------
has_phase() { [[ " $PHASES " == *" $1 "* ]]; }
: >"$WORK/commands.tsv"
if ((ONLY)); then
  # Keep what the other phases measured; each phase run here replaces its own files.
  for p in $PHASES; do
    rm -f "$RES/$p".csv "$RES/$p".png "$RES/$p"_*.txt "$RES/$p"_*.dat
    [ -f "$RES/failures.csv" ] && sed -i "/^$p,/d" "$RES/failures.csv"
  done
  [ -f "$RES/failures.csv" ] || echo "bench,name,error" >"$RES/failures.csv"
else
  rm -f "$RES"/*.csv "$RES"/*.png "$RES"/*.txt "$RES"/*.json "$RES"/*.dat "$RES"/*.tsv
  echo "bench,name,error" >"$RES/failures.csv"
fi

F=$WORK/scan.dat
if has_phase scan || has_phase sweep || has_phase load || { has_phase cold && ((QUICK)); }; then
  log "creating the $((SCAN_SIZE / GiB)) GiB scan file in $WORK ($FSTYPE)"
  make_data "$F" "$SCAN_SIZE"
fi
q() { printf '%q' "$1"; }
QF=$(q "$F") QBM=$(q "$BM") QLIT=$(q "$LIT")
FIO_COMMON="--name=seq --filename=$QF --rw=read --bs=1M --size=$SCAN_SIZE --invalidate=0 --output-format=json"

# (1) Warm sequential scan of the 4 GiB file.
if has_phase scan; then
  cache_state "$F" scan
  BENCH=scan
  set_clear
  set_add bulkmap_lines "$QBM scan $QF --lines --no-progress --json"
  set_add wc_l "wc -l $QF"
  set_add bulkmap_hash "$QBM scan $QF --hash --no-progress --json"
  set_add xxhsum_H3 "xxhsum -H3 $QF"
  set_add bulkmap_count "$QBM scan $QF --count $QLIT --no-progress --json"
  set_add rg_c "rg -c $QLIT $QF"
  set_add cat "cat $QF >/dev/null"
  set_add fio_mmap "fio $FIO_COMMON --ioengine=mmap"
  set_add fio_psync "fio $FIO_COMMON --ioengine=psync"
  run_set scan "$SCAN_SIZE" "$R"
  # Same answers as the peers (round 0 outputs).
  {
    echo "lines: bulkmap $(grep -o '"lines":[0-9]*' "$WORK/out/scan.bulkmap_lines.0" | cut -d: -f2) wc $(awk '{print $1}' "$WORK/out/scan.wc_l.0")"
    echo "xxh3: bulkmap $(grep -o '"xxh3":"[0-9a-f]*"' "$WORK/out/scan.bulkmap_hash.0" | cut -d'"' -f4) xxhsum $(awk '{print $NF}' "$WORK/out/scan.xxhsum_H3.0")"
    echo "literal: bulkmap $(grep -o '"count":[0-9]*' "$WORK/out/scan.bulkmap_count.0" | cut -d: -f2) rg $(cat "$WORK/out/scan.rg_c.0")"
    echo "resident_after: $(resident_check "$F")"
  } >"$RES/scan_checks.txt"
  cp "$WORK/out/cache-scan.txt" "$RES/cache_scan.txt"
  for k in mmap psync; do
    for ((r = 1; r <= R; r++)); do
      f=$WORK/out/scan.fio_$k.$r
      [ -f "$f" ] && python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(sys.argv[2], j["jobs"][0]["read"]["bw_bytes"])' "$f" "fio_$k" >>"$RES/fio_self.txt" || true
    done
  done
fi

# (2) Window size sweep, and 1 against 2 threads.
if has_phase sweep; then
  cache_state "$F" sweep
  BENCH=sweep
  set_clear
  for w in $WINDOWS; do
    set_add "hash_w$w" "$QBM scan $QF --hash --window $w --no-progress --json"
    set_add "lines_w$w" "$QBM scan $QF --lines --window $w --no-progress --json"
  done
  set_add hash_t1 "$QBM scan $QF --hash --threads 1 --no-progress --json"
  set_add hash_t2 "$QBM scan $QF --hash --threads 2 --no-progress --json"
  set_add lines_t1 "$QBM scan $QF --lines --threads 1 --no-progress --json"
  set_add lines_t2 "$QBM scan $QF --lines --threads 2 --no-progress --json"
  run_set sweep "$SCAN_SIZE" "$R"
  echo "resident_after: $(resident_check "$F")" >"$RES/sweep_checks.txt"
fi

# (4) Loading the 4 GiB file into a section, against cp and dd into /dev/shm.
if has_phase load; then
  BENCH=load
  # The section: payload + trailer, rounded up to 2 MiB pages, and a little slack.
  huge_reserve $((SCAN_SIZE / (2 * MiB) + 8))
  got=$HUGE_GOT
  cache_state "$F" load
  set_clear
  set_add bulkmap_load_4k "$QBM load $QF --name $TAG-4k --large-pages off --no-progress --json" "$QBM rm $TAG-4k"
  if ((got >= SCAN_SIZE / (2 * MiB) + 1)); then
    set_add bulkmap_load_large "$QBM load $QF --name $TAG-lg --large-pages on --no-progress --json" "$QBM rm $TAG-lg"
  else
    echo "load,bulkmap_load_large,not run: only $got huge pages could be reserved" >>"$RES/failures.csv"
  fi
  set_add cp_shm "cp $QF /dev/shm/$TAG-cp" "rm -f /dev/shm/$TAG-cp"
  set_add dd_shm "dd if=$QF of=/dev/shm/$TAG-dd bs=64M status=none" "rm -f /dev/shm/$TAG-dd"
  if [ -x "$WORK/bin/bm_probe_load" ]; then
    # Reference, not a peer: what two threads reach through the write path (perf/probe_load.c).
    set_add probe_pwrite_2t "$(q "$WORK/bin/bm_probe_load") $QF /dev/shm/$TAG-pw write 2" "rm -f /dev/shm/$TAG-pw"
  fi
  run_set load "$SCAN_SIZE" "$R"
  for k in 4k large; do
    if [ -f "$WORK/out/load.bulkmap_load_$k.0" ]; then echo "$k: $(cat "$WORK/out/load.bulkmap_load_$k.0")"; fi
  done >"$RES/load_checks.txt"
  echo "xxhsum: $(awk '{print $NF}' "$WORK/out/scan.xxhsum_H3.0" 2>/dev/null || true)" >>"$RES/load_checks.txt"
  echo "resident_after: $(resident_check "$F")" >>"$RES/load_checks.txt"
  huge_release
fi

# (3) Page kinds: bulkmap bench. It runs its own rounds (kinds interleaved, one unrecorded
# warm-up round, medians with min and max), so each figure here is one invocation: three
# back to back at the default size (do they agree?), shared sections, the working-set
# sweep, and --file on a freshly written and on a re-read file of SCAN_SIZE.
if has_phase bench; then
  if "$BM" bench --help 2>/dev/null | grep -q -- --sweep; then
    BENCH=bench
    rm -f "$RES"/bench_*.json "$RES"/bench_*.csv "$RES"/bench_runs.csv "$RES"/bench_sample.json
    BC=$RES/bench_checks.txt
    big=$((SWEEP_BYTES > SCAN_SIZE ? SWEEP_BYTES : SCAN_SIZE))
    huge_reserve $((big / (2 * MiB) + 8))
    {
      echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  git: $GIT_REV  $BM_VERSION"
      echo "huge pages reserved for bench: $HUGE_GOT of $((big / (2 * MiB) + 8))"
      echo "enabled (anonymous THP): $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
      echo "defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag)"
      [ -x "$WORK/bin/bm_probe_tlb" ] && "$WORK/bin/bm_probe_tlb"
    } >"$BC"
    bench_one() { # bench_one TAG ARGS...: one invocation, its JSON and CSV kept
      local tag=$1 rc=0 t0 t1
      shift
      printf 'bench\tbench_%s\t%s\n' "$tag" "$QBM bench $* --json --csv \$RES/bench_$tag.csv" >>"$WORK/commands.tsv"
      local l0
      l0=$(cut -d' ' -f1-3 /proc/loadavg)
      t0=$(date +%s.%N)
      "$BM" bench "$@" --json --csv "$RES/bench_$tag.csv" >"$RES/bench_$tag.json" 2>"$WORK/out/err" || rc=$?
      t1=$(date +%s.%N)
      if ((rc)); then
        log "bench $tag failed (exit $rc): $(head -c 300 "$WORK/out/err")"
        echo "bench,bench_$tag,exit $rc: $(head -c 200 "$WORK/out/err" | tr ',\n' '; ')" >>"$RES/failures.csv"
        rm -f "$RES/bench_$tag.json"
      fi
      echo "bench_$tag: bulkmap bench $* ; $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", b - a}') s; load average before: $l0, after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$BC"
      log "bench $tag done (load average $(cut -d' ' -f1 /proc/loadavg))"
    }
    for i in 1 2 3; do bench_one "default_$i"; done
    # Transparent huge pages for shared memory follow shmem_enabled: "advise" lets
    # MADV_HUGEPAGE ask for them. Put back afterwards.
    cur=$(sed 's/.*\[\(.*\)\].*/\1/' "$SHMEM_KNOB")
    if [ "$cur" = never ]; then
      SHMEM_SAVED=$cur
      echo advise >"$SHMEM_KNOB"
    fi
    echo "shmem_enabled for bench_shared: $(cat "$SHMEM_KNOB")" >>"$BC"
    bench_one shared --shared --runs 3
    if [ -n "$SHMEM_SAVED" ]; then
      echo "$SHMEM_SAVED" >"$SHMEM_KNOB"
      SHMEM_SAVED=""
    fi
    bench_one sweep --size "$SWEEP_SIZE" --runs 3 --sweep
    # The same file twice: right after it was written (page cache in the folios the writes
    # made), then after the stated state (caches dropped, read once from disk).
    BF=$WORK/bench.dat
    log "writing the $((SCAN_SIZE / GiB)) GiB bench file"
    make_data "$BF" "$SCAN_SIZE"
    sync
    echo "file_fresh: written by make_data, then sync; resident $(resident_check "$BF")" >>"$BC"
    [ -n "$PROBE" ] && "$PROBE" "$BF" >>"$BC" 2>&1
    bench_one file_fresh --file "$BF" --pages 4k,large --runs 3
    cache_state "$BF" bench
    cat "$WORK/out/cache-bench.txt" >>"$BC"
    bench_one file_reread --file "$BF" --pages 4k,large --runs 3
    rm -f "$BF"
    huge_release
  else
    echo "bench,bulkmap_bench,not run: this bulkmap has no bench --sweep" >>"$RES/failures.csv"
    log "bench: skipped (no bench --sweep in $BM_VERSION)"
  fi
fi

# (5) Cold scan: page cache dropped before every run, a file larger than half the memory.
if has_phase cold; then
  BENCH=cold
  if ((COLD_SIZE == SCAN_SIZE)); then
    CF=$F
  else
    CF=$WORK/cold.dat
    log "creating the $((COLD_SIZE / GiB)) GiB cold file"
    make_data "$CF" "$COLD_SIZE"
  fi
  QCF=$(q "$CF")
  drop="sync; echo 3 >/proc/sys/vm/drop_caches"
  set_clear
  set_add bulkmap_lines "$QBM scan $QCF --lines --no-progress --json" "" "$drop"
  set_add bulkmap_hash "$QBM scan $QCF --hash --no-progress --json" "" "$drop"
  set_add fio_psync "fio --name=seq --filename=$QCF --rw=read --bs=1M --size=$COLD_SIZE --invalidate=0 --output-format=json --ioengine=psync" "" "$drop"
  set_add cat "cat $QCF >/dev/null" "" "$drop"
  run_set cold "$COLD_SIZE" "$COLD_R"
  if [ "$CF" != "$F" ]; then rm -f "$CF"; fi
fi

# ------------------------------------------------------------------------------------------
T_END=$(date +%s)
if ((ONLY)) && [ -f "$RES/run.txt" ]; then
  # The machine facts and the header stay those of the last full run; the phases run now
  # say when and how in their own *_checks.txt.
  if [ -f "$RES/commands.tsv" ]; then
    for p in $PHASES; do sed -i "/^$p\t/d" "$RES/commands.tsv"; done
    sed "s|$WORK|\$WORK|g" "$WORK/commands.tsv" >>"$RES/commands.tsv"
  fi
else
{
  echo "mode=$( ((QUICK)) && echo quick || echo full)"
  echo "rounds=$R"
  echo "cold_rounds=$COLD_R"
  echo "scan_size=$SCAN_SIZE"
  echo "cold_size=$COLD_SIZE"
  echo "mem_bytes=$MEM_BYTES"
  echo "windows=$WINDOWS"
  echo "bench_sweep_size=$SWEEP_SIZE"
  echo "literal=$LIT"
  echo "seconds=$((T_END - T_START))"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "git=$GIT_REV"
  echo "bulkmap=$BM_VERSION"
  echo "kernel=$(uname -r)"
  echo "os=$(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "cores=$(nproc)"
  echo "thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled)"
  echo "shmem_thp=$(cat "$SHMEM_KNOB")"
  echo "huge_sizes=$(ls /sys/kernel/mm/hugepages | sed 's/hugepages-//' | tr '\n' ' ')"
  echo "fs=$FSTYPE on $(df --output=source "$WORK" | tail -1)"
  if [ -d /sys/bus/virtio/drivers/virtio_balloon ] && [ -r /sys/module/page_reporting/parameters/page_reporting_order ]; then
    echo "page_reporting=virtio_balloon free page reporting (order $(cat "$PR/page_reporting_order"), min_free_ms $(cat "$PR/min_free_ms" 2>/dev/null || echo ?)); $(( ($(cat "$PR/reported_kib" 2>/dev/null || echo 0) - REPORTED_START) / 1048576 )) GiB given back to the host during this run"
  else
    echo "page_reporting=none seen"
  fi
  echo "loadavg_start=$LOAD_START"
  echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "tools=$(wc --version | head -1); $(xxhsum --version 2>&1 | head -1); $(rg --version | head -1); $(fio --version); $(cp --version | head -1)"
} >"$RES/run.txt"
sed "s|$WORK|\$WORK|g" "$WORK/commands.tsv" >"$RES/commands.tsv"
fi
python3 "$REPO/perf/report.py" "$RES" "$REPO/perf/RESULTS.md"
(cd "$RES" && gnuplot "$REPO/perf/plots.gp") 2>"$WORK/gnuplot.log" || { log "gnuplot failed:"; cat "$WORK/gnuplot.log" >&2; }
log "done in $((T_END - T_START)) s: perf/RESULTS.md, perf/results/"
