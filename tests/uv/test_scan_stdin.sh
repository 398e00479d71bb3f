#!/usr/bin/env bash
# examples/uv_scan_stdin.c, a C program that scans standard input through bulkmap_uv: its
# hash against xxhsum -H3 and its lines against wc -l, for the same bytes piped in (empty,
# one byte, across many 8 MiB buffers), and for a file and a FIFO given as standard input.
# usage: test_scan_stdin.sh UV_SCAN_STDIN
set -euo pipefail
EX=${1:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmuvstdin.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
hash() { sed -n 's/^XXH3 (stdin) = \([0-9a-f]\{16\}\)$/\1/p'; }

: >"$T/empty"
printf x >"$T/one"
head -c 20000000 /dev/urandom >"$T/rand"
perl -e 'print "line $_\n" for 1..400000' >"$T/text"
for f in empty one rand text; do
  want=$(xxhsum -H3 <"$T/$f" | hash)
  [ -n "$want" ] || fail "xxhsum -H3 printed no hash for $f"
  out=$(cat "$T/$f" | "$EX")
  got=$(hash <<<"$out")
  [ "$got" = "$want" ] || fail "$f piped in: $got, xxhsum -H3 says $want"
  lines=$(sed -n 's/^\([0-9]*\) lines, \([0-9]*\) bytes$/\1 \2/p' <<<"$out")
  [ "$lines" = "$(wc -l <"$T/$f") $(stat -c %s "$T/$f")" ] || fail "$f: lines, bytes '$lines'"
  # The same bytes as a file on standard input, and through a FIFO.
  [ "$("$EX" <"$T/$f" | hash)" = "$want" ] || fail "$f as a file on standard input"
done
mkfifo "$T/fifo"
( cat "$T/text" >"$T/fifo" ) &
[ "$("$EX" <"$T/fifo" | hash)" = "$(xxhsum -H3 <"$T/text" | hash)" ] || fail "a FIFO on standard input"
wait
echo "uv_scan_stdin: hashes equal xxhsum -H3's"
