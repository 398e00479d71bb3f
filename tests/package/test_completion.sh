#!/usr/bin/env bash
# The bash completion (tools/completion/bulkmap.bash) against the tool: commands, a
# command's options (from its --help), option values, and dataset names (from ls --json).
#   test_completion.sh BULKMAP [COMPLETION_FILE]
set -uo pipefail
BM=${1:?bulkmap}
here=$(cd "$(dirname "$0")" && pwd)
file=${2:-$here/../../tools/completion/bulkmap.bash}
NAME="bmcomp-$$"
checks=0 fails=0
ok() { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
T=$(mktemp -d "${TMPDIR:-/tmp}/bmcomp.XXXXXX")
trap '"$BM" rm --force "$NAME" >/dev/null 2>&1; rm -rf "$T"' EXIT
complete_words() { # WORD... (the last one being completed)
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _bulkmap; printf "%s\n" "${COMPREPLY[@]}"' _ "$file" "$@"
}
[ "$(complete_words "$BM" sc)" = scan ] && ok || fail "sc: $(complete_words "$BM" sc)"
complete_words "$BM" "" | grep -x help >/dev/null && complete_words "$BM" "" | grep -x bench >/dev/null && ok || fail "commands: $(complete_words "$BM" "")"
[ "$(complete_words "$BM" scan --win)" = --window ] && ok || fail "scan --win"
complete_words "$BM" load x --large-pages "" | grep -x auto >/dev/null && ok || fail "--large-pages values"
[ "$(complete_words "$BM" help st)" = stat ] && ok || fail "help st"
# Every option of each command's --help is offered.
# (The offers are taken whole first: with pipefail, a grep -q that stops reading at its
# match would fail the pipeline whenever the completion was still writing.)
for c in scan load stat rm ls; do
  offered=$(complete_words "$BM" "$c" --)
  for opt in $("$BM" "$c" --help | grep -o -- '^  --[a-z-]*'); do
    grep -qx -- "$opt" <<<"$offered" && ok || fail "$c: $opt not offered"
  done
done
printf 'x\n' >"$T/f"
if "$BM" load "$T/f" --name "$NAME" --no-progress >/dev/null 2>"$T/err"; then
  got=$(complete_words "$BM" stat "${NAME%-*}-")
  grep -qx "$NAME" <<<"$got" && ok || fail "dataset name: '$got'"
  echo "complete 'bulkmap stat ${NAME%-*}-' -> $got"
  got=$(complete_words "$BM" rm --force "$NAME")
  [ "$got" = "$NAME" ] && ok || fail "rm --force NAME: '$got'"
else
  echo "SKIP: dataset names (load failed: $(cat "$T/err"))"
fi
echo "test_completion: $checks checks, $fails failed"
[ $fails = 0 ]
