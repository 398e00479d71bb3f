#!/usr/bin/env bash
# The tool on files of several GiB, against the same peers as test_tool.sh (xxhsum -H3,
# wc -l, perl): a sparse 3 GiB file, 10 GiB under a 1 GiB address-space limit, windows
# across 4 GiB, and a 1.5 GiB load and cat under ulimit -v. Slow (a minute of reading holes and copying),
# so run once, in the native lane (ctest label `slow`), not again under the sanitizers.
# usage: test_tool_large.sh BULKMAP    (run by ctest)
set -u
BM=${1:?path to bulkmap}
. "$(dirname "$0")/lib.sh"
NAME="bmtest-large-$$"
cleanup() { "$BM" rm --force "$NAME-wide" >/dev/null 2>&1; }
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

# Text with the literal in it (as test_tool.sh makes it).
perl -e 'for (1..200000) { print "aaab" x ($_ % 7), "ab\nxyzzy", "a" x ($_ % 11), "\n" }' >"$T/text"

# 5. A sparse file of several GiB with data near the end.
truncate -s 3G "$T/sparse"
head -c 3000000 "$T/text" | dd of="$T/sparse" bs=1M seek=3060 conv=notrunc status=none
check_scan "$T/sparse"
# Only the 3 MB of text can hold the literal (the rest is zeros, and the literal has none):
# perl counts those bytes, not 3 GiB.
head -c 3000000 "$T/text" >"$T/sparse-text"
out=$("$BM" scan "$T/sparse" --count xyzzy --json --no-progress --window 64M)
want=$(perlcount xyzzy "$T/sparse-text")
[ "$(json "$out" count)" = "$want" ] && ok || fail "count 'xyzzy' in the sparse file: $(json "$out" count) != $want"

# 6. 10 GiB sparse under a 1 GiB address-space limit: a literal straddling 4 GiB (also a
# window edge), a newline as the last byte before 8 GiB, another literal straddling 9 GiB
# and a last line. In the linux32 build this is the real case (more than twice its address
# space), not a limit put on the process. (It was 64 GiB: 50 s of CPU reading holes in
# every CI run, for nothing 10 GiB does not show.)
if [ -n "${BULKMAP_TEST_SANITIZED:-}" ]; then
  echo "SKIP 10 GiB under ulimit -v: AddressSanitizer reserves terabytes of shadow address space" >&2
else
truncate -s 10G "$T/huge"
put() { printf "$2" | dd of="$T/huge" bs=1 seek="$1" conv=notrunc status=none; }
put $(((4 << 30) - 2)) 'xyzzy\n'
put $(((8 << 30) - 1)) '\n'
put $(((9 << 30) - 2)) 'xyzzy\n'
put $(((10 << 30) - 4)) 'end\n'
# What `xxhsum -H3` printed for exactly this file (8 s of reading holes):
# BULKMAP_TEST_XXHSUM_LARGE=1 computes it again.
want_h=16adae95ec1d2691
if [ -n "${BULKMAP_TEST_XXHSUM_LARGE:-}" ]; then
  want_h=$(xxh "$T/huge")
fi
out=$(ulimit -v 1048576; "$BM" scan "$T/huge" --hash --lines --count xyzzy --json --no-progress)
rc=$?
if [ $rc -ne 0 ]; then fail "10 GiB scan under ulimit -v 1048576: exit $rc"; else
  [ "$(json "$out" xxh3)" = "$want_h" ] && ok || fail "10 GiB xxh3 $(json "$out" xxh3) != $want_h"
  [ "$(json "$out" lines)" = 4 ] && ok || fail "10 GiB lines: $(json "$out" lines) != 4"
  [ "$(json "$out" count)" = 2 ] && ok || fail "10 GiB count: $(json "$out" count) != 2"
  [ "$(json "$out" bytes)" = $((10 << 30)) ] && ok || fail "10 GiB bytes: $(json "$out" bytes)"
  peak=$(json "$out" peak_mapped_bytes)
  [ "$peak" -le $((512 << 20)) ] && ok || fail "10 GiB peak_mapped_bytes $peak"
  echo "10 GiB sparse scan under ulimit -v 1048576: xxh3=$(json "$out" xxh3) lines=$(json "$out" lines) count=$(json "$out" count) peak_mapped_bytes=$peak seconds=$(json "$out" seconds)"
fi
rm -f "$T/huge"
fi


# 16. Past 32 bits (the point of the linux32 build, where size_t is 32 bits and the process
# has at most 4 GiB of address space; the same checks hold in every build).
bits=64
[ "$(od -An -tx1 -j4 -N1 "$BM" 2>/dev/null | tr -d ' ')" = 01 ] && bits=32 # ELF class
echo "note: $BM is ${bits}-bit code" >&2
if [ -n "${BULKMAP_TEST_SANITIZED:-}" ]; then
  echo "SKIP past 32 bits (1.5 GiB load under ulimit -v): slow under the sanitizers, and AddressSanitizer's shadow defeats ulimit -v" >&2
else
# Windows of 256M for 16 threads: 18 in flight would be 4.5 GiB, more than a 32-bit
# process has; the pipeline keeps them within 1 GiB there. A range across 4 GiB, checked
# against the same bytes cut out with dd.
truncate -s 5G "$T/wide"
printf 'xyzzy\n' | dd of="$T/wide" bs=1 seek=$(((4 << 30) - 2)) conv=notrunc status=none
off=$(((4 << 30) - (1 << 20))) len=$((1 << 30))
out=$("$BM" scan "$T/wide" --offset $off --length $len --window 256M --threads 16 --count xyzzy --hash --lines --json --no-progress)
rc=$?
want_h=$(dd if="$T/wide" bs=1M iflag=skip_bytes,count_bytes skip=$off count=$len status=none | xxh -)
if [ $rc -ne 0 ]; then fail "scan --window 256M --threads 16 across 4 GiB: exit $rc"; else
  [ "$(json "$out" xxh3)" = "$want_h" ] && ok || fail "256M windows: xxh3 $(json "$out" xxh3) != $want_h"
  [ "$(json "$out" lines)" = 1 ] && ok || fail "256M windows: lines $(json "$out" lines) != 1"
  [ "$(json "$out" count)" = 1 ] && ok || fail "256M windows: count $(json "$out" count) != 1"
  peak=$(json "$out" peak_mapped_bytes)
  if [ $bits = 32 ]; then [ "$peak" -le $((1 << 30)) ] && ok || fail "256M windows, 32-bit: peak_mapped_bytes $peak > 1 GiB"; fi
fi
rm -f "$T/wide"

# A 1.5 GiB file (64 KiB blocks, each headed by its number) loaded into a section and cat
# back, both under a 1 GiB address-space limit: the section is never mapped whole.
need=$((3 << 29)) avail=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -n 1 | tr -d ' ')
if [ -z "$avail" ] || [ "$avail" -lt $((need + (256 << 20))) ]; then
  echo "SKIP 1.5 GiB load/cat: /dev/shm has ${avail:-?} bytes free, needs $need and some room" >&2
else
  perl -e 'srand(14); my $b = pack("N*", map { int(rand(4294967296)) } 1..16384);
           for my $i (0..24575) { my $h = sprintf("block %08d\n", $i); print $h, substr($b, length($h)); }' >"$T/f15g"
  want_h=$(xxh "$T/f15g")
  out=$(ulimit -v 1048576; "$BM" load "$T/f15g" --name "$NAME-wide" --large-pages off --json --no-progress </dev/null)
  rc=$?
  if [ $rc -ne 0 ]; then fail "1.5 GiB load under ulimit -v 1048576: exit $rc"; else
    [ "$(json "$out" xxh3)" = "$want_h" ] && ok || fail "1.5 GiB load: xxh3 $(json "$out" xxh3) != $want_h"
    [ "$(json "$out" bytes)" = "$need" ] && ok || fail "1.5 GiB load: bytes $(json "$out" bytes)"
    (ulimit -v 1048576; "$BM" cat "$NAME-wide" </dev/null) | cmp - "$T/f15g" && ok || fail "1.5 GiB cat under ulimit -v 1048576 differs from the file"
    st=$("$BM" stat "$NAME-wide" --json </dev/null)
    [ "$(json "$st" bytes)" = "$need" ] && [ "$(json "$st" state)" = ready ] && ok || fail "1.5 GiB stat: $st"
    echo "note: ${bits}-bit load of 1.5 GiB under ulimit -v 1048576: seconds=$(json "$out" seconds) xxh3=$(json "$out" xxh3); cat matches byte for byte" >&2
    expect 0 rm "$NAME-wide"
  fi
  rm -f "$T/f15g"
fi
fi


finish "tool tests, several GiB"
