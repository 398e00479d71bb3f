#!/usr/bin/env bash
# The C examples of README.md and docs/c-api.md are compiled and run. Each lives in
# tests/readme/NAME.c and in README or docs/c-api.md under `<!-- example: NAME.c -->`, the
# two kept identical (checked here): wordcount.c (README: the scan call) against wc -l,
# grep -o and Python's bytes.count, over windows small enough that words straddle their
# edges; dataset.c (docs/c-api.md: load, open, view) against stat and xxhsum -H3. A
# count_words.c still in README (the window cursor by hand) is run as before.
# usage: test_readme.sh README CC INCLUDE_DIR LIBBULKMAP_A [CFLAGS [LIBS]]   (the build's own
# flags: the linux32 build's example is i386 code too; LIBS: what the static library needs
# beside it, the libjansson library the build found)
set -euo pipefail
README=${1:?} CC=${2:?} INC=${3:?} LIB=${4:?}
read -r -a CFLAGS <<<"${5:-}"
read -r -a LIBS <<<"${6:-}"
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/bmreadme.XXXXXX")
NAME="bmreadme-$$"
trap 'rm -rf "$T"; rm -f "/dev/shm/$NAME"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

CAPI="$(dirname "$README")/docs/c-api.md"
# The block for NAME.c in README, else in docs/c-api.md (empty when there is none).
extract() {
  local f
  for f in "$README" "$CAPI"; do
    [ -f "$f" ] || continue
    sed -n "/^<!-- example: $1 -->\$/,/^\`\`\`\$/p" "$f" | sed '1,2d;$d' | grep '' && return 0
  done
  return 0
}
build() { "$CC" "${CFLAGS[@]}" -std=c11 -Wall -Wextra -Werror -I"$INC" "$1" "$LIB" "${LIBS[@]}" -lpthread -lrt -o "$2"; }

for ex in wordcount.c dataset.c; do
  extract "$ex" >"$T/readme_$ex"
  [ -s "$T/readme_$ex" ] || fail "neither README nor docs/c-api.md has a <!-- example: $ex --> block: paste tests/readme/$ex there"
  diff -u "$HERE/$ex" "$T/readme_$ex" >&2 || fail "the $ex of README or docs/c-api.md differs from tests/readme/$ex (keep them identical)"
  build "$HERE/$ex" "$T/${ex%.c}"
done

perl -e 'for (1..300000) { print "ERROR" x ($_ % 3), " line $_ ", "a" x ($_ % 17), "\n" }' >"$T/text"
lines=$(wc -l <"$T/text")

# wordcount: a plain word (grep -o), a self-overlapping one and a long one (Python's count).
for word in ERROR aa aaaaaaaaaaaaaaa; do
  if [ "$word" = ERROR ]; then
    n=$(grep -o ERROR "$T/text" | wc -l)
  else
    n=$(python3 -c 'import sys; print(open(sys.argv[1], "rb").read().count(sys.argv[2].encode()))' "$T/text" "$word")
  fi
  for w in 4096 65536 ""; do
    got=$("$T/wordcount" "$T/text" "$word" $w)
    [ "$got" = "$lines $n" ] || fail "wordcount $word (window ${w:-default}): '$got', want '$lines $n'"
  done
done
: >"$T/empty"
[ "$("$T/wordcount" "$T/empty" ERROR)" = "0 0" ] || fail "wordcount: empty file"
set +e
"$T/wordcount" "$T/missing" ERROR 2>"$T/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'no such file' "$T/err" || fail "wordcount: missing file: $rc $(cat "$T/err")"
set +e
"$T/wordcount" "$T/text" "" 2>"$T/err"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q 'empty' "$T/err" || fail "wordcount: empty word: $rc $(cat "$T/err")"

# dataset: the size and XXH3 of what was loaded and opened are the file's.
want="$(stat -c %s "$T/text") $(xxhsum -H3 "$T/text" | grep -oE '[0-9a-f]{16}' | tail -1)"
got=$("$T/dataset" "$T/text" "$NAME" 2>"$T/err") || fail "dataset: $(cat "$T/err")"
[ "$got" = "$want" ] || fail "dataset: '$got', want '$want'"
grep -q '^large pages: ' "$T/err" || fail "dataset: no large-page outcome: $(cat "$T/err")"
[ ! -e "/dev/shm/$NAME" ] || fail "dataset: $NAME left in /dev/shm"
got=$("$T/dataset" "$T/empty" "$NAME" 2>"$T/err") || fail "dataset (empty file): $(cat "$T/err")"
[ "$got" = "0 2d06800538d394c2" ] || fail "dataset (empty file): '$got'"
set +e
"$T/dataset" "$T/missing" "$NAME" 2>"$T/err"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q 'no such file' "$T/err" || fail "dataset: missing file: $rc $(cat "$T/err")"
[ ! -e "/dev/shm/$NAME" ] || fail "dataset: $NAME left after a failed load"

# The window cursor by hand, while README still shows it.
extract count_words.c >"$T/count_words.c"
if [ -s "$T/count_words.c" ]; then
  build "$T/count_words.c" "$T/count_words"
  want="$lines $(grep -o ERROR "$T/text" | wc -l)"
  for w in 4096 65536 ""; do
    got=$("$T/count_words" "$T/text" ERROR $w)
    [ "$got" = "$want" ] || fail "count_words (window ${w:-default}): '$got', want '$want'"
  done
fi
echo "readme examples: ok (wordcount, dataset$([ -s "$T/count_words.c" ] && echo ', count_words'))"
