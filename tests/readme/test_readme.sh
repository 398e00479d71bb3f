#!/usr/bin/env bash
# The library example in README.md is compiled and run: its counts against wc -l and
# grep -o, over windows small enough that words straddle their edges.
# usage: test_readme.sh README CC INCLUDE_DIR LIBBULKMAP_A [CFLAGS]   (the build's own flags:
# the linux32 build's example is i386 code too)
set -euo pipefail
README=${1:?} CC=${2:?} INC=${3:?} LIB=${4:?}
read -r -a CFLAGS <<<"${5:-}"
T=$(mktemp -d "${TMPDIR:-/tmp}/bmreadme.XXXXXX")
trap 'rm -rf "$T"' EXIT
sed -n '/^<!-- example: count_words.c -->$/,/^```$/p' "$README" | sed '1,2d;$d' >"$T/count_words.c"
[ -s "$T/count_words.c" ] || { echo "FAIL: no example in $README" >&2; exit 1; }
"$CC" "${CFLAGS[@]}" -std=c11 -Wall -Wextra -Werror -I"$INC" "$T/count_words.c" "$LIB" -lpthread -lrt -o "$T/count_words"
perl -e 'for (1..300000) { print "ERROR" x ($_ % 3), " line $_ ", "x" x ($_ % 17), "\n" }' >"$T/text"
want="$(wc -l <"$T/text") $(grep -o ERROR "$T/text" | wc -l)"
for w in 4096 65536 ""; do
  got=$("$T/count_words" "$T/text" ERROR $w)
  [ "$got" = "$want" ] || { echo "FAIL: count_words (window ${w:-default}): '$got', want '$want'" >&2; exit 1; }
done
: >"$T/empty"
[ "$("$T/count_words" "$T/empty" ERROR)" = "0 0" ] || { echo "FAIL: empty file" >&2; exit 1; }
set +e
"$T/count_words" "$T/missing" ERROR 2>"$T/err"
rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'no such file' "$T/err" || { echo "FAIL: missing file: $rc $(cat "$T/err")" >&2; exit 1; }
echo "readme example: ok ($want)"
