#!/usr/bin/env bash
# Integration test of `bulkmap bench` on the real OS (docs/design.md section 3): every JSON key of
# every row, min <= median <= max, a reason for each kind not had, the --file and --sweep
# rows, CSV columns equal to the JSON fields (and the same numbers), the page sizes against
# the test's own facts (getconf, stat), and usage errors with exit 2, failures with 1.
# As root it reserves a few 2 MiB pages (and sets shmem_enabled for one case) under the
# huge page lock of tests/hugetest.h and gives them back; else those cases skip and say so.
# Timings are never asserted: benchmarks are measured in perf/, not here.
# With an emulator (the Windows build under Wine) the same checks run on bulkmap.exe,
# where thp must be refused as unsupported and the huge page pool is not touched.
#   test_bench.sh BULKMAP [EMULATOR]
set -u
BM=${1:?path to bulkmap}
EMU=${2:-}
. "$(dirname "$0")/lib.sh"
LOCK=/tmp/bulkmap-hugepages.lock
POOL=/sys/kernel/mm/hugepages/hugepages-2048kB
SHMEM=/sys/kernel/mm/transparent_hugepage/shmem_enabled
nr_saved="" shmem_saved=""
restore() {
  [ -n "$nr_saved" ] && echo "$nr_saved" >"$POOL/nr_hugepages"
  [ -n "$shmem_saved" ] && echo "$shmem_saved" >"$SHMEM"
  nr_saved="" shmem_saved=""
}
at_exit restore

# Checks one JSON output (and its CSV) with perl's core JSON::PP. Arguments: the JSON file,
# the CSV file ("" for none), then facts as key=value: page=BASE_PAGE, large=1|0 (pool
# reserved), file_size=N, sweep=1|0, shared=1|0, shmem=MODE.
check_json() {
  perl -MJSON::PP -e '
    use strict; use warnings;
    my ($jf, $cf, @facts) = @ARGV;
    my %f = map { split /=/, $_, 2 } @facts;
    $f{$_} //= "" for qw(shmem os);
    my ($n, $bad) = (0, 0);
    sub ck { my ($c, $m) = @_; $n++; unless ($c) { $bad++; print STDERR "FAIL: $m\n"; } return $c; }
    local $/; open my $h, "<", $jf or die; my $txt = <$h>; close $h;
    my $d = eval { decode_json($txt) }; ck($d, "output is one JSON object: $@") or exit 1;
    exit 1 unless $d;
    my @figs = qw(huge_share populate_seconds seq_bytes_per_second random_ns dependent_ns
                  dtlb_misses_per_load load_seconds);
    my @keys = (qw(pages backing page_size size), @figs, qw(min max reason dtlb_reason));
    my %seen;
    ck(ref $d->{results} eq "ARRAY" && @{$d->{results}} > 0, "results[] present");
    for my $r (@{$d->{results}}) {
      my $id = "$r->{pages} $r->{backing}";
      $seen{$id} = $r;
      ck(exists $r->{$_}, "$id: key $_") for @keys;
      ck(scalar(keys %$r) == @keys, "$id: keys exactly " . join(" ", sort keys %$r));
      for my $m (qw(min max)) {
        ck(ref $r->{$m} eq "HASH", "$id: $m is an object") or next;
        ck(join(",", sort keys %{$r->{$m}}) eq join(",", sort @figs), "$id: $m holds the figures");
      }
      if (defined $r->{reason}) {
        ck(length $r->{reason} > 3, "$id: a reason that says something");
        ck(!defined $r->{$_}, "$id: not had, so $_ is null") for qw(page_size populate_seconds random_ns);
        next;
      }
      for my $k (@figs) {
        my ($v, $lo, $hi) = ($r->{$k}, $r->{min}{$k}, $r->{max}{$k});
        if (!defined $v) { ck(!defined $lo && !defined $hi, "$id: $k null in all three"); next; }
        ck($lo <= $v && $v <= $hi, "$id: $k min $lo <= median $v <= max $hi");
      }
      ck($r->{populate_seconds} > 0 && $r->{seq_bytes_per_second} > 0 && $r->{random_ns} > 0 &&
         $r->{dependent_ns} > 0, "$id: figures measured");
      ck($r->{huge_share} >= 0 && $r->{huge_share} <= 1, "$id: huge_share in [0, 1]");
      ck(defined $r->{dtlb_misses_per_load} || (defined $r->{dtlb_reason} && length $r->{dtlb_reason}),
         "$id: dTLB misses or the reason why not");
      ck(defined $r->{load_seconds} == ($r->{backing} eq "section"), "$id: load_seconds only for a section");
    }
    my $b = $f{shared} ? "shared" : "anonymous";
    my $k4 = $seen{"4k $b"};
    ck($k4 && !defined $k4->{reason}, "4k $b had");
    if ($k4) {
      ck($k4->{page_size} == $f{page}, "4k $b: page_size $k4->{page_size} == getconf PAGESIZE $f{page}");
      ck($k4->{huge_share} == 0, "4k $b: no huge entries");
      ck($k4->{size} % 2097152 == 0, "4k $b: size rounded to whole huge pages");
    }
    for my $id ("large $b", ($f{file_size} ? ("large section") : ())) {
      my $r = $seen{$id};
      ck($r, "$id row present") or next;
      if ($f{large} eq "any") {
        ck(!defined $r->{reason} ? $r->{page_size} > $f{page} : length $r->{reason} > 3,
           "$id: large pages had, or a reason");
      } elsif ($f{large}) {
        ck(!defined $r->{reason} && $r->{page_size} == 2097152 && $r->{huge_share} == 1,
           "$id: 2 MiB pages with the pool reserved (" . ($r->{reason} // "page_size $r->{page_size}") . ")");
      } else {
        ck(defined $r->{reason}, "$id: a reason without a reserved pool");
      }
    }
    if (my $t = $seen{"thp $b"}) {
      if ($f{os} eq "windows") {
        ck(defined $t->{reason} && $t->{reason} =~ /unsupported/i,
           "thp on Windows: unsupported (" . ($t->{reason} // "had") . ")");
      } elsif ($f{shared} && $f{shmem} eq "never") {
        ck(defined $t->{reason} && $t->{reason} =~ /shmem_enabled is never/,
           "thp shared with shmem_enabled never: the reason names it (" . ($t->{reason} // "had") . ")");
      } elsif (!defined $t->{reason}) {
        ck($t->{huge_share} > 0 && $t->{page_size} >= 2097152, "thp $b: huge entries seen when had");
      }
    }
    if ($f{file_size}) {
      my $r = $seen{"4k file"};
      ck($r && !defined $r->{reason}, "file row had") and
        ck($r->{size} == $f{file_size}, "file row size $r->{size} == stat $f{file_size}");
    } else {
      ck(!grep({ /file|section/ } keys %seen), "no file rows without --file");
    }
    if ($f{sweep}) {
      ck(ref $d->{sweep} eq "ARRAY", "sweep[] present") or exit 1;
      for my $r (@{$d->{results}}) {
        next if defined $r->{reason};
        my @p = grep { $_->{pages} eq $r->{pages} && $_->{backing} eq $r->{backing} } @{$d->{sweep}};
        my @want; for (my $w = 65536; $w <= $r->{size}; $w *= 2) { push @want, $w }
        ck(join(",", map { $_->{working_set} } @p) eq join(",", @want),
           "$r->{pages} $r->{backing}: sweep 64 KiB to SIZE by powers of two");
        for my $s (@p) {
          ck(join(",", sort keys %$s) eq "backing,dependent_ns,max,min,pages,random_ns,working_set", "sweep keys");
          ck(join(",", sort keys %{$s->{min}}) eq "dependent_ns,random_ns", "sweep min keys");
          ck($s->{min}{dependent_ns} <= $s->{dependent_ns} && $s->{dependent_ns} <= $s->{max}{dependent_ns}, "sweep dependent min <= median <= max");
          ck($s->{min}{random_ns} <= $s->{random_ns} && $s->{random_ns} <= $s->{max}{random_ns} &&
             $s->{random_ns} > 0, "sweep $s->{pages} $s->{working_set}: min <= median <= max");
        }
      }
    } else {
      ck(!exists $d->{sweep}, "no sweep[] without --sweep");
    }
    if ($cf ne "") {
      open my $c, "<", $cf or die; local $/ = "\n"; my @lines = <$c>; close $c; s/\r?\n\z// for @lines;
      my @cols = split /,/, shift @lines;
      my %json;
      for my $r (@{$d->{results}}, @{$d->{sweep} // []}) {
        for my $k (keys %$r) {
          if (ref $r->{$k} eq "HASH") { $json{"${k}_$_"} = 1 for keys %{$r->{$k}} } else { $json{$k} = 1 }
        }
      }
      $json{row} = 1;
      ck(join(",", sort @cols) eq join(",", sort keys %json),
         "CSV columns == JSON fields: [@cols] vs [" . join(" ", sort keys %json) . "]");
      my @rows = grep { /^result,/ } @lines;
      my @sw = grep { /^sweep,/ } @lines;
      ck(@rows == @{$d->{results}}, "one CSV row a result");
      ck(@sw == @{$d->{sweep} // []}, "one CSV row a sweep point");
      for my $i (0 .. $#rows) {
        my @v = ($rows[$i] =~ /("(?:[^"]|"")*"|[^,]*)(?:,|$)/g);
        my %row; @row{@cols} = @v;
        my $r = $d->{results}[$i];
        for my $k (qw(pages backing size random_ns dependent_ns populate_seconds)) {
          my $j = $r->{$k} // "";
          ck($row{$k} eq $j || ($j ne "" && $row{$k} ne "" && abs($row{$k} - $j) <= 1e-3 * abs($j)),
             "CSV $k of row $i: $row{$k} == JSON $j");
        }
      }
    }
    print STDERR "json checks: $n, failed: $bad\n";
    exit($bad ? 1 : 0);
  ' "$@"
}

PAGE=$(getconf PAGESIZE)
head -c $((6 << 20)) /dev/urandom >"$T/data"
printf 'x' >>"$T/data" # not a whole number of huge pages: the section rounds up
FSIZE=$(stat -c %s "$T/data")

# 1. Usage errors (2) and failures (1), each with a message naming what was wrong.
expect_msg 2 "--size" bench --size 12Q
expect_msg 2 "--size" bench --size 1K
expect_msg 2 "--size" bench --size 16T
expect_msg 2 "--runs" bench --runs 0
expect_msg 2 "--runs" bench --runs 1001
expect_msg 2 "--runs" bench --runs two
expect_msg 2 "--runs" bench --runs -3
expect_msg 2 "--pages" bench --pages 4k,2m
expect_msg 2 "--pages" bench --pages 4k,4k
expect_msg 2 "--pages" bench --pages 4k,
expect_msg 2 "--sweep" bench --sweep=yes
expect_msg 2 "--file" bench --file
expect_msg 2 "--bogus" bench --bogus
expect_msg 2 "" bench extra
expect_msg 2 "--json" bench --json --json
expect_msg 1 "No such file or directory" bench --size 4M --runs 1 --csv "$(win /nonexistent/x)"
expect_msg 1 "missing" bench --size 4M --runs 1 --file "$(win "$T/missing")"
expect_msg 1 "directory" bench --size 4M --runs 1 --file "$(win "$T")"
: >"$T/empty"
expect_msg 1 "empty" bench --size 4M --runs 1 --file "$(win "$T/empty")"
[ -z "$EMU" ] && expect_msg 1 "" bench --size 4M --runs 1 --file /dev/null
expect_msg 0 "" bench --help
grep -q -- '--sweep' "$T/out" && ok || fail "bench --help does not mention --sweep"

# 2. The pool: as root, 2 MiB pages for the largest run (a 6 MiB file: 4 pages, and
# 4 MiB regions: 2), under the lock every huge-page test takes.
LARGE=0 OS=linux
if [ -n "$EMU" ]; then
  LARGE=any OS=windows
  skip "under $EMU: the host's huge page pool is not what Windows large pages come from"
elif [ "$(id -u)" -ne 0 ]; then
  skip "not root: no huge pages reserved; the large rows must then give a reason"
elif [ ! -w "$POOL/nr_hugepages" ] || ! command -v flock >/dev/null; then
  skip "no 2 MiB hugetlb pool (or no flock): the large rows must give a reason"
else
  exec 9>"$LOCK"
  flock -x 9
  nr_saved=$(cat "$POOL/nr_hugepages")
  free=$(cat "$POOL/free_hugepages")
  echo $((nr_saved - free + 8)) >"$POOL/nr_hugepages"
  if [ "$(cat "$POOL/free_hugepages")" -ge 8 ]; then LARGE=1; else
    skip "could not reserve 8 huge pages of 2 MiB (memory too fragmented?)"
    restore
  fi
fi

# 3. Anonymous kinds with --file, --sweep and --csv: every key and every row checked.
if bm bench --size 4M --runs 3 --sweep --file "$(win "$T/data")" --json --csv "$(win "$T/b.csv")" >"$T/b.json" 2>"$T/err"; then
  ok
  check_json "$T/b.json" "$T/b.csv" page=$PAGE large=$LARGE file_size=$FSIZE sweep=1 shared=0 os=$OS && ok ||
    fail "bench --file --sweep JSON/CSV checks (see above)"
else
  fail "bench --size 4M --sweep --file: exit $?: $(head -c 300 "$T/err")"
fi

# 4. Shared sections; with the knob at never, thp's reason names shmem_enabled.
SHM=""
if [ -z "$EMU" ] && [ -n "$nr_saved" ] && [ -w "$SHMEM" ]; then
  shmem_saved=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$SHMEM")
  echo never >"$SHMEM" && SHM=never
fi
[ -z "$EMU" ] && [ -z "$SHM" ] && [ -r "$SHMEM" ] && SHM=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$SHMEM")
if bm bench --size 4M --runs 2 --shared --json >"$T/s.json" 2>"$T/err"; then
  ok
  check_json "$T/s.json" "" page=$PAGE large=$LARGE sweep=0 shared=1 shmem="$SHM" os=$OS && ok ||
    fail "bench --shared JSON checks (see above)"
else
  fail "bench --shared: exit $?: $(head -c 300 "$T/err")"
fi

# 5. Human output: key: value lines, the ratio worded one way.
if bm bench --size 4M --runs 1 --pages 4k,large >"$T/h.crlf" 2>"$T/err"; then
  ok
  tr -d '\r' <"$T/h.crlf" >"$T/h.txt" # Windows writes CRLF
  grep -q '^runs: 1' "$T/h.txt" && grep -q '^4k anonymous:$' "$T/h.txt" && ok ||
    fail "human output: $(head -c 300 "$T/h.txt")"
  if [ "$LARGE" = any ]; then
    grep -Eq '^  (vs_4k: 2 MiB pages: populate|reason: )' "$T/h.txt" && ok || fail "no ratio nor reason: $(cat "$T/h.txt")"
  elif [ "$LARGE" = 1 ]; then
    grep -Eq '^  vs_4k: 2 MiB pages: populate [0-9.]+x faster, sequential reads [0-9.]+x faster, random reads [0-9.]+x faster, dependent loads [0-9.]+x faster than 4 KiB pages$' "$T/h.txt" &&
      ok || fail "no vs_4k ratio line: $(cat "$T/h.txt")"
  else
    grep -q '^  reason: ' "$T/h.txt" && ok || fail "no reason for large: $(cat "$T/h.txt")"
  fi
else
  fail "bench human output: exit $?"
fi
restore

# 6. Interrupted: exit 130, nothing left behind (the regions were anonymous).
if [ -z "$EMU" ]; then
  "$BM" bench --size 64M --runs 1000 --pages 4k >/dev/null 2>"$T/err" &
  pid=$!
  sleep 1
  kill -INT $pid
  wait $pid
  rc=$?
  [ $rc -eq 130 ] && ok || fail "bench interrupted: exit $rc, expected 130"
fi

finish test_bench "huge pages reserved: $LARGE, shmem_enabled: ${SHM:-none}"
