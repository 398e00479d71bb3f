#!/bin/bash
# Errors that say what and why (issue 26): with --json every command that fails writes
# exactly one JSON object on stdout, {"error": {"code", "message", "context"}} with
# stderr's wording (a command that fails after its object began holds "error" in it);
# `load -` on a terminal ends at one ^D on an empty line, as cat does; rm and load
# --replace of another user's dataset say whose it is. docs/json.md documents the codes.
# Usage: test_errors.sh BULKMAP
BM=$1
. "$(dirname "$0")/lib.sh"
N="bmte-$$"
at_exit "for s in /dev/shm/$N-*; do [ -e \"\$s\" ] && \"$BM\" rm --force \"\${s##*/}\" 2>/dev/null; done"
PY=python3; [ -x /usr/bin/python3 ] && PY=/usr/bin/python3 # (not a shim: it starts in 20 ms)

# check_json WANT_EXIT CODE ARGS...: bulkmap ARGS --json fails with WANT_EXIT; stdout is
# one line holding one JSON object whose error.code is CODE and whose error.message and
# error.context are stderr's first line ("bulkmap: CONTEXT: MESSAGE"). The parsed error
# is left in $T/error (code, context, message, a line each).
check_json() {
  local want=$1 code=$2; shift 2
  expect "$want" "$@" || return 1
  json_error "$code" "bulkmap $*"
}
# json_error CODE WHAT [KEY]: the check of check_json on $T/out and $T/err as they are; KEY
# "in" for an object that holds "error" beside its own keys.
json_error() {
  local why
  rm -f "$T/error"
  why=$("$PY" - "$T/out" "$T/err" "$1" "${3:-}" "$T/error" 2>&1 <<'PY'
import json, sys
out, err, code, where, keep = sys.argv[1:6]
text = open(out, encoding="utf-8").read()
first = open(err, encoding="utf-8").read().split("\n")[0]
if text.count("\n") != 1 or not text.endswith("\n"):
    sys.exit("stdout is not one line: %r" % text[:300])
try:
    obj = json.loads(text)
except ValueError as e:
    sys.exit("stdout is not one JSON object (%s): %r" % (e, text[:300]))
if not isinstance(obj, dict) or "error" not in obj:
    sys.exit("no error object: %r" % text[:300])
if where != "in" and list(obj) != ["error"]:
    sys.exit("keys besides error: %r" % list(obj))
e = obj["error"]
if sorted(e) != ["code", "context", "message"] or not all(isinstance(v, str) for v in e.values()):
    sys.exit("error object %r" % e)
if e["code"] != code:
    sys.exit("error.code %s, expected %s: %r" % (e["code"], code, e))
said = "bulkmap: %s: %s" % (e["context"], e["message"])
if said != first and "bulkmap: " + e["message"] != first:
    sys.exit("stderr says %r, JSON %r" % (first, said))
open(keep, "w").write("%s\n%s\n%s\n" % (e["code"], e["context"], e["message"]))
PY
)
  [ $? = 0 ] && ok || fail "$2: $why"
}

printf 'one\ntwo\n' >"$T/small"

# scan: a missing file, a usage error before and after --json was read, -j, a bad value.
check_json 1 ENOENT scan "$T/none" --json
[ "$(sed -n 2p "$T/error")" = "$T/none" ] && ok || fail "scan ENOENT context: $(cat "$T/error")"
check_json 2 EUSAGE scan --bogus --json
check_json 2 EUSAGE scan "$T/small" --json --window 0
check_json 2 EUSAGE scan "$T/small" -j --offset 99
check_json 2 EUSAGE scan --json
check_json 1 ENOENT scan -j "$T/none"
# The same failure without --json writes nothing on stdout.
expect 1 scan "$T/none"
[ -s "$T/out" ] && fail "scan without --json wrote: $(cat "$T/out")" || ok
# A name with a control character: message and context as stderr shows them (escaped).
check_json 1 ENOENT scan "$T/a"$'\n'"b" --json
grep -q 'a\\nb' "$T/error" && ok || fail "escaped context: $(cat "$T/error")"
# Several FILEs, one missing: the one object of files[] and total holds the error.
expect 1 scan "$T/small" "$T/none" "$T/small" --json
json_error ENOENT "scan of several files, one missing" in
"$PY" -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(not (len(o["files"]) == 2 and o["total"]["bytes"] == 16))' "$T/out" &&
  ok || fail "scan several: $(cat "$T/out")"
# A signal: a FIFO nobody opens (the open blocks, nothing to clean up), SIGINT; standard
# input that never ends (the scan defers the signal and cleans up), SIGTERM.
mkfifo "$T/fifo"
"$BM" scan "$T/fifo" --json >"$T/out" 2>"$T/err" & pid=$!
sleep 0.5; kill -INT $pid; wait $pid; rc=$?
[ $rc = 130 ] && ok || fail "scan FIFO SIGINT: exit $rc"
json_error EINTERRUPTED "scan FIFO SIGINT"
mkfifo "$T/in"
"$BM" scan - --json <"$T/in" >"$T/out" 2>"$T/err" & pid=$!
exec 7>"$T/in" # held open, never written: the scan waits for more
sleep 0.5; kill -TERM $pid; wait $pid; rc=$?
exec 7>&-
[ $rc = 143 ] && ok || fail "scan - SIGTERM: exit $rc"
json_error EINTERRUPTED "scan - SIGTERM"

# load: a missing file, usage errors, a name that exists, standard input.
check_json 1 ENOENT load "$T/none" --name "$N-a" --json --no-progress
check_json 2 EUSAGE load "$T/small" --json
check_json 2 EUSAGE load "$T/small" --name 'bad/name' --json
check_json 2 EUSAGE load "$T/small" --name "$N-a" --large-pages maybe --json
expect 0 load "$T/small" --name "$N-a" --no-progress
check_json 1 EEXIST load "$T/small" --name "$N-a" --json --no-progress
grep -q "exists already" "$T/error" && ok || fail "load EEXIST message: $(cat "$T/error")"
check_json 1 EEXIST load - --name "$N-a" --json --no-progress

# stat: missing, a deadline, a usage error; a dataset not ready is shown, with the error.
check_json 1 ENOENT stat "$N-none" --json
check_json 1 ETIMEDOUT stat "$N-none" --wait 0.2 --json
check_json 2 EUSAGE stat --json
check_json 2 EUSAGE stat "$N-a" --json --wait soon
expect 0 stat "$N-a" --json
grep -q '"error"' "$T/out" && fail "a ready stat holds an error: $(cat "$T/out")" || ok
truncate -s 1G "$T/big"
"$BM" load "$T/big" --name "$N-dead" --no-progress --large-pages off >/dev/null 2>&1 & lpid=$!
for i in $(seq 1 100); do [ -e "/dev/shm/bulkmap#$N-dead" ] && break; sleep 0.01; done
sleep 0.05; kill -9 $lpid 2>/dev/null; wait $lpid 2>/dev/null
if "$BM" stat "$N-dead" --json 2>/dev/null | grep -q '"state":"abandoned"'; then
  expect 1 stat "$N-dead" --json
  json_error EABANDONED "stat of an abandoned dataset" in
  grep -q '"state":"abandoned"' "$T/out" && ok || fail "stat abandoned: $(cat "$T/out")"
else
  skip "stat not ready: the load was not caught midway"
fi
"$BM" rm --force "$N-dead" 2>/dev/null

# ls, rm, info, bench, setup: usage errors, and what can fail for real.
check_json 2 EUSAGE ls --json extra
check_json 2 EUSAGE ls --json --bogus
check_json 2 EUSAGE rm "$N-a" --json
check_json 2 EUSAGE rm --abandoned --json "$N-a"
check_json 2 EUSAGE info --json extra
check_json 2 EUSAGE info -j --bogus
check_json 2 EUSAGE bench --json --size 1
check_json 2 EUSAGE bench --json --pages 4k,nope
check_json 1 ENOENT bench --json --file "$T/none" --size 1M
check_json 1 ENOSPC bench --json --size 1M --runs 1 --pages 4k --csv /dev/full
check_json 2 EUSAGE setup --json
check_json 2 EUSAGE setup --json --large-pages 1.5G
# cat has no --json: a usage error, and nothing on stdout.
expect 2 cat "$N-a" --json
[ -s "$T/out" ] && fail "cat --json wrote: $(cat "$T/out")" || ok
# A failed write of stdout itself stays exit 1 (the error object cannot be written).
"$BM" scan "$T/none" --json >/dev/full 2>"$T/err"; rc=$?
[ $rc = 1 ] && ok || fail "scan --json to /dev/full: exit $rc"

# Another user's dataset: rm and load --replace say whose it is, and leave it.
if have_nobody; then
  chmod 755 "$T"; chmod 644 "$T/small"
  nobody "$BM" rm "$N-a" >"$T/out" 2>"$T/err"; rc=$?
  [ $rc = 1 ] && grep -q "^bulkmap: $N-a: another user's dataset, owned by root (uid 0): only its owner or root may remove it$" "$T/err" &&
    ok || fail "nobody's rm: exit $rc $(cat "$T/err")"
  [ -e "/dev/shm/$N-a" ] && ok || fail "nobody's rm removed root's dataset"
  nobody "$BM" load "$T/small" --name "$N-a" --replace --json --no-progress >"$T/out" 2>"$T/err"; rc=$?
  [ $rc = 1 ] && ok || fail "nobody's replace: exit $rc"
  json_error EPERM "nobody's replace"
  grep -q "owned by root (uid 0): only its owner or root may replace it" "$T/error" && ok ||
    fail "nobody's replace message: $(cat "$T/error")"
  nobody "$BM" setup --large-pages 2M --json >"$T/out" 2>"$T/err"; rc=$?
  if grep -q "no huge pages" "$T/err"; then json_error ENOTSUP "nobody's setup"
  else json_error EPRIVILEGE "nobody's setup"; fi
else
  skip "another user: not root or no setpriv"
fi

# load - on a terminal: one ^D on an empty line ends the input, as cat's does.
"$PY" - "$BM" "$N-tty" <<'PY' >"$T/tty" 2>&1 && ok || fail "load - on a terminal: $(cat "$T/tty")"
import os, pty, select, sys, time
tool, name = sys.argv[1], sys.argv[2]
pid, fd = pty.fork()
if pid == 0:
    os.execv(tool, [tool, "load", "-", "--name", name, "--no-progress", "--json"])
def drain(seconds):
    end = time.time() + seconds
    while time.time() < end:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                os.read(fd, 4096)
            except OSError:
                return
os.write(fd, b"hello\n")
drain(0.3)
os.write(fd, b"\x04")  # one ^D, on an empty line
end = time.time() + 10
while time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
        print("exit", code)
        sys.exit(0 if code == 0 else 1)
    drain(0.05)
os.kill(pid, 9)
os.waitpid(pid, 0)
sys.exit("still reading after one ^D (10 s)")
PY
[ "$("$BM" cat "$N-tty" 2>/dev/null)" = hello ] && ok || fail "load - on a terminal: the dataset holds $("$BM" cat "$N-tty" 2>&1 | head -c 100)"
"$BM" rm "$N-tty" "$N-a" 2>/dev/null

# load - under a memory cgroup smaller than what it is given: standard input becomes a file
# on disk first, so the room check refuses it (exit 1, the cgroup's figures, about "-"), as
# it refuses FILE; it is never OOM-killed (137) holding standard input in memory.
memcg=""
if [ "$(id -u)" = 0 ]; then
  v1=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
  rel=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3; exit}' /proc/self/cgroup)
  if [ -n "$v1" ] && [ -n "$rel" ]; then
    base=$v1${rel%/} lim=memory.limit_in_bytes
  else
    base=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)$(sed -n 's/^0:://p' /proc/self/cgroup) lim=memory.max
  fi
  if mkdir "$base/bmtest-stdin-$$" 2>/dev/null; then
    if echo $((64 << 20)) >"$base/bmtest-stdin-$$/$lim" 2>/dev/null; then memcg=$base/bmtest-stdin-$$
    else rmdir "$base/bmtest-stdin-$$"; fi
  fi
fi
if [ -z "$memcg" ]; then
  skip "load - under a memory cgroup: none can be made here (not root, or no memory controller)"
else
  at_exit "rmdir '$memcg' 2>/dev/null"
  head -c $((200 << 20)) /dev/urandom >"$T/in200"
  cat "$T/in200" | (echo "$BASHPID" >"$memcg/cgroup.procs" && exec "$BM" load - --name "$N-cg" --large-pages off --no-progress) 2>"$T/err"
  rc=${PIPESTATUS[1]}
  [ "$rc" = 1 ] && ok || fail "load - of 200 MiB under a 64 MiB memory cgroup: exit $rc (expected 1): $(cat "$T/err")"
  grep -q "^bulkmap: $N-cg: not loaded: needs 200.0 MiB, memory cgroup" "$T/err" && ok || fail "load - under a memory cgroup: $(cat "$T/err")"
  [ ! -e "/dev/shm/$N-cg" ] && ok || fail "load - under a memory cgroup left /dev/shm/$N-cg"
  rm -f "$T/in200"
fi

finish test_errors
