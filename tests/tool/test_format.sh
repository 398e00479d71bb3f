#!/usr/bin/env bash
# Typed datasets through the tool (docs/design.md section 6): load --format, what stat and ls show,
# malformed headers refused with the reason and nothing published, load - from a pipe,
# plain numpy reading an npy dataset, source_cached_bytes. numpy (Debian's python3) makes
# the npy files: the independent source.
# usage: test_format.sh BULKMAP    (run by ctest)
set -u
BM=${1:?path to bulkmap}
. "$(dirname "$0")/lib.sh"
NAME="bmfmt-$$"
cleanup() { for n in npy st bad raw pipe empty; do "$BM" rm "$NAME-$n" >/dev/null 2>&1; done; }
at_exit cleanup
PY=/usr/bin/python3
have_numpy=0
$PY -c 'import numpy' 2>/dev/null && have_numpy=1

# A safetensors file written here: 8-byte little-endian length, the JSON, the data.
st_file() { # path json data_bytes
  perl -e 'my ($j, $n) = @ARGV; print pack("Q<", length $j), $j, "\x07" x $n' "$2" "$3" >"$1"
}

# ---- npy, made by numpy
if [ $have_numpy = 1 ]; then
  $PY -c "import numpy as np; np.save('$T/a.npy', np.arange(12, dtype='<f4').reshape(3, 4))"
  out=$(bm load "$T/a.npy" --name "$NAME-npy" --json --no-progress) && ok || fail "load of an npy: exit $?"
  [ "$(json "$out" format)" = npy ] && ok || fail "load --json format: $out"
  grep -q '"layout":{"dtype":"F32","shape":\[3,4\],"order":"C","data_offset":128,' <<<"$out" && ok || fail "load --json layout: $out"
  grep -q '"source_cached_bytes":[0-9]' <<<"$out" && ok || fail "load --json lacks source_cached_bytes: $out"
  expect 0 stat "$NAME-npy"
  grep -qx 'format: npy' "$T/out" && grep -qx 'dtype: F32' "$T/out" && grep -qx 'shape: (3, 4)' "$T/out" && ok ||
    fail "stat shows no format/dtype/shape: $(cat "$T/out")"
  expect 0 ls --json
  grep -q "\"name\":\"$NAME-npy\"[^}]*\"format\":\"npy\",\"layout\":{\"dtype\":\"F32\",\"shape\":\[3,4\]" "$T/out" && ok || fail "ls --json: $(cat "$T/out")"
  expect 0 ls
  grep "^$NAME-npy " "$T/out" | grep -q " npy:F32:3x4 " && ok || fail "ls: $(cat "$T/out")"
  # Plain numpy reads the section, mapped, as the file it is.
  $PY -c "import numpy as np; a = np.load('/dev/shm/$NAME-npy', mmap_mode='r'); assert a.shape == (3, 4) and a[2, 3] == 11" &&
    ok || fail "numpy.load of /dev/shm/$NAME-npy"
  # load - from a pipe: the same dataset.
  out=$(cat "$T/a.npy" | bm load - --name "$NAME-pipe" --json --no-progress) && ok || fail "load - : exit $?"
  [ "$(json "$out" format)" = npy ] && [ "$(json "$out" bytes)" = "$(stat -c %s "$T/a.npy")" ] && ok || fail "load -: $out"
  bm cat "$NAME-pipe" | cmp -s - "$T/a.npy" && ok || fail "cat of a load - differs from its input"
  [ "$(bm stat "$NAME-pipe" --json | sed -n 's/.*"source":"\([^"]*\)".*/\1/p')" = "-" ] && ok || fail "load -: source is not '-'"
else
  skip "npy cases: /usr/bin/python3 with numpy is not installed"
fi
expect 0 load - --name "$NAME-empty" --no-progress
expect 0 rm "$NAME-empty"

# ---- safetensors, written here
st_file "$T/m.safetensors" '{"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' 28
expect 0 load "$T/m.safetensors" --name "$NAME-st" --no-progress
expect 0 stat "$NAME-st" --json
out=$(cat "$T/out")
[ "$(json "$out" format)" = safetensors ] && ok || fail "stat --json format: $out"
hdr=$(( $(stat -c %s "$T/m.safetensors") - 28 ))
grep -q "\"tensors\":\[{\"name\":\"b\",\"dtype\":\"F32\",\"shape\":\[4\],\"offset\":$hdr,\"length\":16},{\"name\":\"w\",\"dtype\":\"BF16\",\"shape\":\[2,3\],\"offset\":$((hdr + 16)),\"length\":12}\]" <<<"$out" &&
  ok || fail "stat --json tensors: $out"
expect 0 stat "$NAME-st"
grep -q '^  w: BF16 (2, 3) at ' "$T/out" && grep -qx 'format: safetensors' "$T/out" && ok || fail "stat: $(cat "$T/out")"

# ---- malformed headers: exit 1, the reason, nothing published
bad() { # what pattern file [options]
  local what=$1 pat=$2 f=$3; shift 3
  expect_msg 1 "$pat" load "$f" --name "$NAME-bad" --no-progress "$@" || return
  grep -q 'nothing published' "$T/err" && ok || fail "$what: no 'nothing published': $(cat "$T/err")"
  expect_msg 1 "no such section" stat "$NAME-bad"
}
perl -e 'my $d = "{'"'"'descr'"'"': '"'"'|O'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (2,), }"; $d .= " " x (117 - length $d); print "\x93NUMPY\x01\x00", pack("v", 118), $d, "\n", "\0" x 16' >"$T/obj.npy"
bad "object dtype" "object dtype" "$T/obj.npy"
st_file "$T/ov.safetensors" '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}' 24
bad "overlap" "overlap" "$T/ov.safetensors"
st_file "$T/oor.safetensors" '{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}' 8
bad "out of range" "past the data" "$T/oor.safetensors"
st_file "$T/js.safetensors" '{"a":{"dtype":"F32",' 8
bad "bad JSON" "not valid JSON" "$T/js.safetensors"
st_file "$T/dt.safetensors" '{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}' 1
bad "unknown dtype" "unknown dtype" "$T/dt.safetensors"
bad "asked for npy" "magic" "$T/m.safetensors" --format npy
# ... and --format raw loads the bytes as they are.
expect 0 load "$T/obj.npy" --name "$NAME-raw" --format raw --no-progress
grep -qx 'format: raw' "$T/out" && ok || fail "--format raw: $(cat "$T/out")"
expect_msg 2 "expected auto, raw, npy or safetensors" load "$T/obj.npy" --name "$NAME-bad" --format pickle

finish "format tool tests"
