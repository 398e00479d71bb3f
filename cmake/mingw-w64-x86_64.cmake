# Toolchain for the x86_64-w64-mingw32 cross build (Debian's gcc-mingw-w64-x86-64). Test
# programs run under wine64 through cmake/wine-run.sh, which keeps the Wine prefix inside
# the build folder and starts it headless.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(BULKMAP_MINGW_TRIPLE x86_64-w64-mingw32)

# The win32 thread model: no libwinpthread DLL to ship; _Thread_local works through emutls.
find_program(CMAKE_C_COMPILER NAMES ${BULKMAP_MINGW_TRIPLE}-gcc-win32 ${BULKMAP_MINGW_TRIPLE}-gcc REQUIRED)
find_program(CMAKE_CXX_COMPILER NAMES ${BULKMAP_MINGW_TRIPLE}-g++-win32 ${BULKMAP_MINGW_TRIPLE}-g++)
find_program(CMAKE_RC_COMPILER NAMES ${BULKMAP_MINGW_TRIPLE}-windres)

# libuv and Check built by cmake/windeps.sh (build/windeps unless BULKMAP_WINDEPS says where).
if(NOT BULKMAP_WINDEPS)
  if(DEFINED ENV{BULKMAP_WINDEPS})
    set(BULKMAP_WINDEPS "$ENV{BULKMAP_WINDEPS}")
  else()
    get_filename_component(BULKMAP_WINDEPS "${CMAKE_CURRENT_LIST_DIR}/../build/windeps" ABSOLUTE)
  endif()
endif()
set(CMAKE_FIND_ROOT_PATH /usr/${BULKMAP_MINGW_TRIPLE} ${BULKMAP_WINDEPS})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# mingw's own printf family (C99: %jd, %zu, %llu), not msvcrt's: Check formats its
# messages with %jd, and so do the tests.
set(CMAKE_C_FLAGS_INIT "-D__USE_MINGW_ANSI_STDIO=1")

# Static runtime libraries, so the test programs need no DLL beside them under Wine.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc")

# ctest runs every test program through this (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_CROSSCOMPILING_EMULATOR "${CMAKE_CURRENT_LIST_DIR}/wine-run.sh")
