#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a consumer with find_package and
# another with pkg-config, and runs both. TOOLCHAIN and CFLAGS are the build's own (the
# linux32 build's consumers are i386 code too).
#   test_install.sh BUILD [TOOLCHAIN [CFLAGS]]
set -euo pipefail
build=${1:?build dir}
toolchain=${2:-}
read -r -a cflags <<<"${3:-}"
src=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/bminst.XXXXXX")
trap 'rm -rf "$T"' EXIT
cmake --install "$build" --prefix "$T/prefix" >/dev/null
cmake -S "$src" -B "$T/b" -DCMAKE_PREFIX_PATH="$T/prefix" ${toolchain:+-DCMAKE_TOOLCHAIN_FILE="$toolchain"} >/dev/null
cmake --build "$T/b" >/dev/null
"$T/b/consumer"
# bulkmap::bulkmap_shared from a prefix that is not the system's.
"$T/b/consumer_shared"
ldd "$T/b/consumer_shared" >"$T/ldd" 2>&1
grep -q "$T/prefix/.*libbulkmap.so" "$T/ldd" || {
  echo "consumer_shared does not use the prefix's libbulkmap.so: $(grep -i bulkmap "$T/ldd"); RUNPATH: $(readelf -d "$T/b/consumer_shared" 2>/dev/null | grep -iE 'rpath|runpath')" >&2
  exit 1
}
# The installed tool runs from that prefix as it is (its rpath finds what it links).
if [ -x "$T/prefix/bin/bulkmap" ] && [ -z "$toolchain" ]; then
  "$T/prefix/bin/bulkmap" --version >/dev/null
  printf 'a\nERROR\n' >"$T/data"
  grep -q '"count":1' <<<"$("$T/prefix/bin/bulkmap" scan "$T/data" --count ERROR --json --no-progress)"
  grep -q "$T/prefix/share/doc/bulkmap" <<<"$("$T/prefix/bin/bulkmap" --help)"
fi
# The static library needs libjansson after it: the one the consumer's CMake found (with a
# toolchain of its own, linux32, the i386 build in that toolchain's prefix).
jansson=$(sed -n 's/^BULKMAP_JANSSON:FILEPATH=//p' "$T/b/CMakeCache.txt")
jansson=${jansson:--ljansson}
export PKG_CONFIG_PATH="$(dirname "$(find "$T/prefix" -name bulkmap.pc | head -1)")"
libdir=$(pkg-config --variable=libdir bulkmap)
cc "${cflags[@]}" -std=c11 "$src/consumer.c" $(pkg-config --cflags bulkmap) "$libdir/libbulkmap.a" $(pkg-config --libs-only-other --static bulkmap) "$jansson" -lpthread -lrt -o "$T/consumer-pc"
"$T/consumer-pc"
cc "${cflags[@]}" -std=c11 "$src/consumer.c" $(pkg-config --cflags --libs bulkmap) -Wl,-rpath,"$libdir" -o "$T/consumer-so"
"$T/consumer-so"
# bulkmap_uv: the CMake target bulkmap::uv and bulkmap_uv.pc.
if [ -f "$libdir/libbulkmap_uv.a" ]; then
  "$T/b/consumer_uv"
  # With a toolchain of its own (linux32), libuv is the one the consumer's CMake found in
  # that toolchain's prefix, and its libuv.pc beside it.
  uvlib=$(sed -n 's/^BULKMAP_LIBUV:FILEPATH=//p' "$T/b/CMakeCache.txt")
  if [ -n "$toolchain" ] && [ -n "$uvlib" ]; then
    export PKG_CONFIG_PATH="$PKG_CONFIG_PATH:$(dirname "$uvlib")/pkgconfig"
  fi
  cc "${cflags[@]}" -std=c11 -D_POSIX_C_SOURCE=200809L "$src/consumer_uv.c" $(pkg-config --cflags bulkmap_uv) \
    "$libdir/libbulkmap_uv.a" "$libdir/libbulkmap.a" $(pkg-config --libs-only-other --static bulkmap) "$jansson" \
    $(pkg-config --libs libuv) -Wl,-rpath,"$(pkg-config --variable=libdir libuv)" -lpthread -lrt \
    -o "$T/consumer-uv-pc"
  "$T/consumer-uv-pc"
  pkg-config --exists --print-errors bulkmap_uv
fi
