#!/usr/bin/env bash
# Fetches the Debian source packages of libuv, Check and libjansson with `apt-get source` through a
# private sources list (deb-src enabled only there; the system's apt lists are never
# touched) and builds them with a CMake toolchain file into PREFIX, which is reused when
# present: mingw-w64 for the `windows` preset (the default), cmake/i686-linux-gnu.cmake
# (gcc -m32) for `linux32`.
#   cmake/windeps.sh PREFIX [TOOLCHAIN]
# Needs dpkg-dev (for apt-get source), cmake and gcc-mingw-w64-x86-64 (or gcc-multilib).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${1:?usage: windeps.sh PREFIX}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
work="$prefix.work"
toolchain="$(realpath "${2:-$here/mingw-w64-x86_64.cmake}")"

# xxHash is used header-only: Debian's libxxhash-dev header serves every target. It is
# copied (not the host's /usr/include put on the mingw include path, whose glibc headers
# would shadow mingw's).
mkdir -p "$prefix/include"
for h in xxhash.h xxh3.h; do
  if [ -f "/usr/include/$h" ] && ! cmp -s "/usr/include/$h" "$prefix/include/$h"; then cp "/usr/include/$h" "$prefix/include/$h"; fi
done
# libuv and Check (.complete-v2), and libjansson (.complete-jansson, added later: a prefix
# made before it gets libjansson alone, its libuv and Check are kept).
if [ -f "$prefix/.complete-v2" ] && [ -f "$prefix/.complete-jansson" ]; then exit 0; fi
tools="apt-get dpkg-source cmake"
case "$toolchain" in *mingw*) tools="$tools x86_64-w64-mingw32-gcc" ;; esac
for t in $tools; do
  command -v "$t" >/dev/null || { echo "windeps: $t not found (apt-get install dpkg-dev cmake gcc-mingw-w64-x86-64)" >&2; exit 1; }
done

# The private apt state: a deb-src list mirroring the system's deb entries.
apt="$work/apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$work/src"
list="$apt/sources.list"
: >"$list"
uris=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] || continue
  case "$f" in
  *.sources)
    # deb822: turn each "Types: deb" stanza into one-line deb-src entries.
    awk -v RS= '
      {
        uri=""; suites=""; comps=""; key=""; isdeb=0
        n=split($0, L, "\n")
        for (i=1;i<=n;i++) {
          if (L[i] ~ /^Types:/) { m=split(L[i], T, /[ \t]+/); for (k=2;k<=m;k++) if (T[k]=="deb") isdeb=1 }
          else if (L[i] ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", L[i]); uri=L[i] }
          else if (L[i] ~ /^Suites:/) { sub(/^Suites:[ \t]*/, "", L[i]); suites=L[i] }
          else if (L[i] ~ /^Components:/) { sub(/^Components:[ \t]*/, "", L[i]); comps=L[i] }
          else if (L[i] ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", L[i]); key=L[i] }
        }
        if (isdeb && uri != "" && suites != "") {
          ns=split(suites, S, /[ \t]+/)
          for (j=1;j<=ns;j++) printf "deb-src%s %s %s %s\n", (key!="" ? " [signed-by=" key "]" : ""), uri, S[j], comps
        }
      }' "$f" >>"$list" ;;
  *)
    sed -n 's/^[[:space:]]*deb[[:space:]]\+/deb-src /p' "$f" >>"$list" ;;
  esac
done
# Only Debian's archive is reachable; keep the entries that point at it.
grep -E 'debian\.org|/debian(-security)?([ /]|$)' "$list" >"$list.tmp" || true
mv "$list.tmp" "$list"
if [ ! -s "$list" ]; then
  echo "windeps: no Debian entry found in the system's sources to mirror as deb-src" >&2
  exit 1
fi
aptopts=(-o "Dir::Etc::SourceList=$list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o "Dir::State::Status=/var/lib/dpkg/status"
  -o Acquire::Languages=none -o APT::Sandbox::User=root)
echo "windeps: apt-get update (private deb-src list $list)" >&2
apt-get -qq "${aptopts[@]}" update
cd "$work/src"
for pkg in libuv1 check jansson; do
  if ! ls -d "$work/src/$pkg"-*/ >/dev/null 2>&1; then
    echo "windeps: apt-get source $pkg" >&2
    apt-get -qq "${aptopts[@]}" source "$pkg" >/dev/null
  fi
done
uvsrc=$(ls -d "$work"/src/libuv1-*/ | head -n1)
cksrc=$(ls -d "$work"/src/check-*/ | head -n1)
jssrc=$(ls -d "$work"/src/jansson-*/ | head -n1)
jobs=$(nproc 2>/dev/null || echo 2)
# Ninja where it is (tools/dev.sh installs it): the three configure steps are long runs of
# small try-compiles, which Ninja drives in about 0.6 of the time Make takes (Check: 19 s
# against 32 s, jansson: 11 s against 20 s, measured here).
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)

# configure_build NAME SRC TARGET [-DVAR=VALUE ...]: a fresh build tree (a cached one would
# keep the flags of an older toolchain file) of SRC, configured for the toolchain and built
# (TARGET only, or all when empty); its logs in $work/NAME-*.log.
configure_build() {
  local name=$1 src=$2 target=$3
  shift 3
  rm -rf "$work/build-$name"
  echo "windeps: building $name from $src" >&2
  cmake "${gen[@]}" -S "$src" -B "$work/build-$name" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" "$@" >"$work/$name-configure.log" 2>&1
  cmake --build "$work/build-$name" -j "$jobs" ${target:+--target "$target"} >"$work/$name-build.log" 2>&1
}

build_jansson() {
  # Static and position-independent (libbulkmap.so links it in), no tests, docs or examples.
  configure_build jansson "$jssrc" "" -DJANSSON_BUILD_SHARED_LIBS=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DJANSSON_WITHOUT_TESTS=ON -DJANSSON_EXAMPLES=OFF \
    -DJANSSON_BUILD_DOCS=OFF -DJANSSON_INSTALL_LIB_DIR=lib
  cmake --install "$work/build-jansson" >"$work/jansson-install.log"
  touch "$prefix/.complete-jansson"
  echo "windeps: libjansson installed in $prefix" >&2
}

build_uv() {
  # Only what bulkmap links: the static library (uv_a), not the DLL too (the same sources
  # compiled again), installed by hand where `cmake --install` would put it.
  configure_build uv "$uvsrc" uv_a -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF -DBUILD_TESTING=OFF
  mkdir -p "$prefix/lib" "$prefix/include/uv"
  cp "$uvsrc/include/uv.h" "$prefix/include/"
  cp "$uvsrc"/include/uv/*.h "$prefix/include/uv/"
  cp "$work/build-uv/libuv_a.a" "$prefix/lib/"
}

build_check() {
  # The static library only (not checkShared: the same sources again) and its two headers.
  configure_build check "$cksrc" check -DCHECK_ENABLE_TESTS=OFF -DBUILD_TESTING=OFF \
    -DCHECK_ENABLE_SUBUNIT=OFF -DENABLE_MEMORY_LEAKING_TESTS=OFF -DHAVE_SUBUNIT=0
  mkdir -p "$prefix/lib"
  cp "$work/build-check/src/check.h" "$work/build-check/check_stdint.h" "$prefix/include/"
  cp "$work/build-check/src/libcheck.a" "$prefix/lib/"
}

# The three at once: their configure steps are long runs of one small compile after
# another (one CPU each), which two CPUs take side by side.
pids=()
[ -f "$prefix/.complete-jansson" ] || { build_jansson & pids+=($!); }
if [ ! -f "$prefix/.complete-v2" ]; then
  build_uv & pids+=($!)
  build_check & pids+=($!)
fi
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
if [ $failed != 0 ]; then
  echo "windeps: a build failed; its logs are in $work" >&2
  exit 1
fi
if [ ! -f "$prefix/.complete-v2" ]; then
  touch "$prefix/.complete-v2"
  echo "windeps: libuv and Check installed in $prefix" >&2
fi
