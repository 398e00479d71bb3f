#!/usr/bin/env bash
# Issue 18: a load whose result cannot be written (stdout full, closed, or a pipe closed
# early) is a failure (exit 1, DESIGN 3) and must not leave its section `ready`: nobody
# learnt it was made, and a retry would meet "exists already". The tool's part is cli.h's
# cli_out_failed(); the fix itself is cmd_load.c's (check the result before publishing, or
# fail the dataset when it could not be written). Its own ctest entry (tool_load_result)
# so that it can fail alone until cmd_load.c does this.
#   test_load_result.sh BULKMAP
BM=${1:?path to bulkmap}
. "$(dirname "$0")/lib.sh"
NAME="bmresult-$$"
at_exit '"$BM" rm --force "$NAME-full" "$NAME-closed" "$NAME-pipe" >/dev/null 2>&1'
head -c 1000000 /dev/urandom >"$T/f"

# gone NAME: `stat NAME` finds no such section (exit 1, "no such section").
gone() {
  expect 1 stat "$1" && grep -q "no such section" "$T/err" && ok ||
    fail "after the lost result, $1 is still there: $(cat "$T/out" "$T/err" | tr '\n' ' ')"
}

"$BM" load "$T/f" --name "$NAME-full" --large-pages off --no-progress >/dev/full 2>"$T/lerr" </dev/null
rc=$?
[ $rc -eq 1 ] && ok || fail "load >/dev/full: exit $rc, expected 1"
grep -q "^bulkmap: .*cannot write the result" "$T/lerr" && ok || fail "load >/dev/full: no reason: $(cat "$T/lerr")"
gone "$NAME-full"

"$BM" load "$T/f" --name "$NAME-closed" --large-pages off --no-progress >&- 2>"$T/lerr" </dev/null
rc=$?
[ $rc -eq 1 ] && ok || fail "load >&-: exit $rc, expected 1: $(cat "$T/lerr")"
gone "$NAME-closed"

"$BM" load "$T/f" --name "$NAME-pipe" --large-pages off --no-progress --json 2>"$T/lerr" </dev/null | true
rc=${PIPESTATUS[0]}
[ "$rc" = 1 ] && ok || fail "load | true: exit $rc, expected 1: $(cat "$T/lerr")"
gone "$NAME-pipe"

finish "load result"
