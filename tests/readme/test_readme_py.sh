#!/usr/bin/env bash
# README.md's Python example (the block under `<!-- example: python -->`) is run as it is, in
# an empty folder, against the build tree's package: it must exit 0, print the size and the
# XXH3 of the file it wrote as `stat` and `xxhsum -H3` give them, and leave no dataset behind.
# The dataset name is made unique (two runs at once must not meet).
# Also README's own rules: at most 300 lines, no "DESIGN section N" (users do not have
# that document), and every relative link of README and of the docs it leads to points at a
# file of the tree (docs/formats.md, owned elsewhere, may be missing while it is written).
# usage: test_readme_py.sh README PYTHONPATH_DIR [PYTHON]
set -euo pipefail
README=${1:?} PYDIR=$(cd "${2:?}" && pwd) PY=${3:-python3}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmreadmepy.XXXXXX")
NAME="bmreadme-py-$$"
trap 'rm -rf "$T"; rm -f "/dev/shm/$NAME"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

sed -n '/^<!-- example: python -->$/,/^```$/p' "$README" | sed '1,2d;$d' >"$T/example.py"
[ -s "$T/example.py" ] || fail "README has no <!-- example: python --> block"
grep -q '"demo"' "$T/example.py" || fail "README's Python example no longer names its dataset \"demo\""
sed -i "s/\"demo\"/\"$NAME\"/g" "$T/example.py"

(cd "$T" && PYTHONPATH="$PYDIR" PYTHONDONTWRITEBYTECODE=1 "$PY" example.py) >"$T/out" 2>"$T/err" ||
  fail "README's Python example: $(cat "$T/err")"
want="$(stat -c %s "$T/data.npy") $(xxhsum -H3 "$T/data.npy" | grep -oE '[0-9a-f]{16}' | tail -1)"
got=$(head -1 "$T/out" | cut -d' ' -f1,2)
[ "$got" = "$want" ] || fail "README's Python example printed '$got', want '$want'"
[ ! -e "/dev/shm/$NAME" ] || fail "README's Python example left $NAME in /dev/shm"

lines=$(wc -l <"$README")
[ "$lines" -le 300 ] || fail "README.md has $lines lines (at most 300: the rest belongs in docs/)"
! grep -n 'DESIGN section' "$README" >&2 || fail "README cites 'DESIGN section N': say docs/design.md"
root=$(dirname "$README")
for f in "$README" "$root"/docs/{cli,c-api,python,platforms,performance,json,design}.md; do
  for link in $(grep -oE '\]\([^)#:]+(#[^)]*)?\)' "$f" | sed -E 's/^\]\(//; s/\)$//; s/#.*//' | sort -u); do
    [ -n "$link" ] || continue
    [ "$link" = docs/formats.md ] || [ "$link" = formats.md ] && continue
    [ -e "$(dirname "$f")/$link" ] || fail "$f links $link, which does not exist"
  done
done
echo "readme python example: ok ($lines lines of README)"
