# What the tool's shell tests share (as libuv's tests share test/runner.h): sourced by
# test_tool.sh, test_shell.sh, test_bench.sh and test_tool_wine.sh.
# Set before sourcing: BM, the bulkmap to test; EMU, an emulator to run it under (wine64),
# or nothing; EXPECT_TIMEOUT, seconds an `expect` may take (nothing: no limit).
# It gives: $T, a temporary directory removed at exit; at_exit CMD, run at exit before
# that (last added first); bm ARGS (bulkmap, under EMU when set); win PATH (the path as
# the program sees it: Z:\... under Wine); the checks ok, fail, skip, expect, expect_msg
# and finish; the peers' answers xxh and perlcount; json; and nobody for another user.
set -u
fails=0 checks=0
T=$(mktemp -d "${TMPDIR:-/tmp}/bmtest.XXXXXX")
LIB_AT_EXIT=()
at_exit() { LIB_AT_EXIT=("$1" "${LIB_AT_EXIT[@]}"); }
lib_exit() {
  local c
  for c in "${LIB_AT_EXIT[@]}"; do eval "$c"; done
  rm -rf "$T"
}
trap lib_exit EXIT

LIB_BM=(${EMU:+"$EMU"} "$BM") # the command line that runs bulkmap
if [ -n "${EMU:-}" ]; then
  bm() { "$EMU" "$BM" "$@"; }
  win() { printf 'Z:%s' "$(tr / '\\' <<<"$1")"; } # Z: is the host's root under Wine
else
  bm() { "$BM" "$@"; }
  win() { printf '%s' "$1"; }
fi

ok()   { checks=$((checks + 1)); }
fail() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $*" >&2; }
skip() { echo "SKIP: $*" >&2; }
# The value of a key in one-line JSON (first match; strings without their quotes).
json() { sed -n "s/.*\"$2\":\"\{0,1\}\([^,\"}]*\).*/\1/p" <<<"$1"; }
# XXH3-64 as xxhsum -H3 prints it, of a file or of standard input.
xxh()  { xxhsum -H3 "$@" 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p'; }
# Non-overlapping occurrences of a literal, left to right, as perl counts them.
perlcount() { LIT="$1" perl -0777 -ne '$c = () = /\Q$ENV{LIT}\E/g; print $c' "$2"; }

# expect CODE ARGS...: bulkmap ARGS (stdin /dev/null, output in $T/out and $T/err) must
# exit CODE, with a 'bulkmap: ' message when not 0, and never die of a signal.
expect() {
  local want=$1; shift
  ${EXPECT_TIMEOUT:+timeout "$EXPECT_TIMEOUT"} "${LIB_BM[@]}" "$@" >"$T/out" 2>"$T/err" </dev/null
  local rc=$?
  if [ $rc -ne "$want" ]; then fail "bulkmap $* exited $rc, expected $want: $(head -c 300 "$T/err")"
  elif [ "$want" -ne 0 ] && ! grep -q '^bulkmap: ' "$T/err"; then fail "bulkmap $* gave no 'bulkmap: ...' message"
  else ok; return 0; fi
  return 1
}
# expect_msg CODE PATTERN ARGS...: the same, and stderr holds PATTERN (grep).
expect_msg() {
  local want=$1 pat=$2; shift 2
  expect "$want" "$@" || return 1
  [ -z "$pat" ] && return 0
  grep -q -- "$pat" "$T/err" && ok || fail "bulkmap $*: message lacks '$pat': $(head -c 300 "$T/err")"
}

# Another user: as root with setpriv, nobody runs ARGS; have_nobody says whether it can.
have_nobody() { [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; }
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# The last line of a test: its counts, and its exit status.
finish() {
  echo "$1: $checks checks, $fails failed${2:+ ($2)}"
  [ $fails -eq 0 ]
}
