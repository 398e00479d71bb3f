#!/usr/bin/env bash
# Runs a Windows program under wine64, headless and quiet (the crosscompiling emulator of
# the windows preset). The Wine prefix lives in the build folder (WINEPREFIX, default
# BUILD/wineprefix where BUILD is found from the program's path), never in $HOME; it is
# created once, under a lock, since ctest starts tests in parallel.
#   cmake/wine-run.sh PROGRAM.exe [ARGS...]
set -euo pipefail
wine=${WINE:-/usr/lib/wine/wine64}
[ -x "$wine" ] || wine=$(command -v wine64 || command -v wine)
if [ -z "${WINEPREFIX:-}" ]; then
  # The build folder is the nearest ancestor of the program holding CMakeCache.txt.
  d=$(cd "$(dirname "$1")" && pwd)
  while [ "$d" != / ] && [ ! -f "$d/CMakeCache.txt" ]; do d=$(dirname "$d"); done
  [ "$d" != / ] || d=$(pwd)
  export WINEPREFIX="$d/wineprefix"
fi
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono/Gecko installers, no display: nothing may pop up or wait for a user.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-"mscoree=;mshtml="}
unset DISPLAY WAYLAND_DISPLAY
export WINEARCH=win64
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
exec "$wine" "$@"
