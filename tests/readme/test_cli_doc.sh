#!/usr/bin/env bash
# docs/cli.md is what tools/gen-cli-doc.sh writes from the built tool's help table (so the
# command reference cannot drift from `bulkmap --help`), and every command's --help explains
# every option its cmd_*.c accepts (the `{"--option", ...}` entries of its opts[] table).
# usage: test_cli_doc.sh BULKMAP SOURCE_DIR
set -euo pipefail
BM=${1:?} SRC=${2:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/bmclidoc.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail=0

cp "$SRC/docs/cli.md" "$T/cli.md"
bash "$SRC/tools/gen-cli-doc.sh" "$BM" "$T/cli.md"
if ! diff -u "$SRC/docs/cli.md" "$T/cli.md" >&2; then
  echo "FAIL: docs/cli.md differs from the tool's help: run tools/gen-cli-doc.sh $BM" >&2
  fail=1
fi

n=0
for f in "$SRC"/tools/bulkmap/cmd_*.c; do
  c=$(basename "$f" .c); c=${c#cmd_}
  "$BM" "$c" --help >"$T/help" 2>&1 || { echo "FAIL: bulkmap $c --help failed" >&2; fail=1; continue; }
  # The options table: from "cli_opt_t opts[]" to the first "};".
  for opt in $(sed -n '/cli_opt_t opts\[\]/,/};/p' "$f" | grep -o '{"--[a-z-]*"' | tr -d '{"'); do
    n=$((n + 1))
    grep -q -- "^  $opt\\b" "$T/help" || { echo "FAIL: bulkmap $c accepts $opt but $c --help does not explain it" >&2; fail=1; }
    grep -q -- "$opt\\b" <<<"$(sed -n '/^Usage:/,/^[^ U]/p' "$T/help")" ||
      { echo "FAIL: bulkmap $c accepts $opt but its synopsis lacks it" >&2; fail=1; }
  done
done
[ "$n" -gt 20 ] || { echo "FAIL: only $n options found in tools/bulkmap/cmd_*.c" >&2; fail=1; }
[ $fail -eq 0 ] && echo "cli doc: ok (docs/cli.md as generated; $n options, each in its command's --help)"
exit $fail
