#!/usr/bin/env bash
# valgrind memcheck of the tool: a scan, and a load/cat/stat/rm round trip. Fails on any
# memory error or leak (definite, indirect or possible).
#   tests/valgrind.sh BULKMAP
set -euo pipefail
BM=${1:?path to bulkmap}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmvg.XXXXXX")
NAME="bmvg-$$"
trap '"$BM" rm "$NAME" >/dev/null 2>&1 || true; rm -rf "$T"' EXIT
VG=(valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible --track-fds=no)
(set +o pipefail; base64 -w 80 /dev/urandom | head -c 3000000 >"$T/f")
"${VG[@]}" "$BM" scan "$T/f" --hash --lines --count abc --window 1M --no-progress >"$T/scan"
grep -q "^xxh3: $(xxhsum -H3 "$T/f" 2>/dev/null | sed -n 's/^XXH3 (.*) = \([0-9a-f]*\)$/\1/p; s/^\([0-9a-f]\{16\}\)  .*/\1/p')" "$T/scan"
"${VG[@]}" "$BM" load "$T/f" --name "$NAME" --large-pages off --no-progress >/dev/null
"${VG[@]}" "$BM" cat "$NAME" >"$T/back"
cmp "$T/f" "$T/back"
"${VG[@]}" "$BM" stat "$NAME" --json >/dev/null
"${VG[@]}" "$BM" info --json >/dev/null
"${VG[@]}" "$BM" rm "$NAME"
# Error paths too: a missing file, a bad flag, a missing section.
set +e
"${VG[@]}" "$BM" scan "$T/missing" 2>/dev/null; [ $? -eq 1 ] || exit 1
"${VG[@]}" "$BM" scan "$T/f" --window 0 2>/dev/null; [ $? -eq 2 ] || exit 1
"${VG[@]}" "$BM" cat "$NAME" 2>/dev/null; [ $? -eq 1 ] || exit 1
echo "valgrind: scan, load, cat, stat, info, rm and 3 error paths clean"
