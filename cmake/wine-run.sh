#!/usr/bin/env bash
# Runs a Windows program under wine64, headless and quiet (the crosscompiling emulator of
# the windows preset). The Wine prefix lives in the build folder (WINEPREFIX, default
# BUILD/wineprefix where BUILD is found from the program's path), never in $HOME; it is
# created once, under a lock, since ctest starts tests in parallel.
#   cmake/wine-run.sh PROGRAM.exe [ARGS...]
#   cmake/wine-run.sh --start BUILD   the prefix made, then one persistent wineserver
#   cmake/wine-run.sh --stop BUILD    that wineserver ended (wineserver -k)
# The windows preset's tests run between --start and --stop (ctest fixtures wine_start and
# wine_stop, tests/CMakeLists.tool.cmake): every test talks to the one server, so none can
# connect while another's server is exiting ("wine client error:0: recvmsg: Connection
# reset by peer", seen on a fresh prefix when each test started and ended its own).
set -euo pipefail
mode=run
case "${1:-}" in
  --start | --stop) mode=${1#--}; shift ;;
esac
wine=${WINE:-/usr/lib/wine/wine64}
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine)
if [ -z "${WINEPREFIX:-}" ]; then
  # The build folder is the nearest ancestor of the program holding CMakeCache.txt.
  if [ "$mode" = run ]; then d=$(cd "$(dirname "$1")" && pwd); else d=$(cd "${1:-.}" && pwd); fi
  while [ "$d" != / ] && [ ! -f "$d/CMakeCache.txt" ]; do d=$(dirname "$d"); done
  [ "$d" != / ] || d=$(pwd)
  export WINEPREFIX="$d/wineprefix"
fi
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono/Gecko installers, no display: nothing may pop up or wait for a user.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-"mscoree=;mshtml="}
unset DISPLAY WAYLAND_DISPLAY
export WINEARCH=win64
server=${WINESERVER:-$(dirname "$wine")/wineserver}
[ -x "$server" ] || server=$(command -v wineserver || echo wineserver)
if [ "$mode" = stop ]; then
  "$server" -k 2>/dev/null || true
  "$server" -w 2>/dev/null || true
  echo "wine-run: wineserver of $WINEPREFIX ended" >&2
  exit 0
fi
mkdir -p "$WINEPREFIX"
if [ ! -f "$WINEPREFIX/.bulkmap-ready" ]; then
  (
    flock 9
    if [ ! -f "$WINEPREFIX/.bulkmap-ready" ]; then
      echo "wine-run: creating Wine prefix $WINEPREFIX (once)" >&2
      "$wine" wineboot -i >/dev/null 2>&1 || true
      "${WINESERVER:-$(dirname "$wine")/wineserver}" -w 2>/dev/null || true
      touch "$WINEPREFIX/.bulkmap-ready"
    fi
  ) 9>"$WINEPREFIX.lock"
fi
if [ "$mode" = start ]; then
  # Persistent (-p): it stays until --stop, however long the gaps between tests are.
  # Its output away from ours: ctest waits for every holder of a test's output pipe, and
  # the server outlives this test.
  "$server" -p </dev/null >/dev/null 2>&1
  # Up once a client gets an answer from it.
  for _ in $(seq 1 100); do
    "$wine" cmd /c exit 0 >/dev/null 2>&1 && break
    sleep 0.1
  done
  echo "wine-run: one persistent wineserver for $WINEPREFIX" >&2
  exit 0
fi
exec "$wine" "$@"
