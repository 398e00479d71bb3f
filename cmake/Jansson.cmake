# Finds libjansson (Debian's libjansson-dev), which parses safetensors headers in the core
# library (src/format.c: duplicate keys rejected, 64-bit integers exact, UTF-8 checked). On
# Linux through pkg-config; a cross build (windows, linux32) finds the static build
# cmake/windeps.sh made from Debian's source package in its prefix.
if(NOT TARGET bulkmap_dep_jansson)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND AND NOT CMAKE_CROSSCOMPILING AND NOT BULKMAP_LINUX32DEPS)
    pkg_check_modules(JANSSON QUIET jansson)
  endif()
  add_library(bulkmap_dep_jansson INTERFACE)
  if(JANSSON_FOUND)
    find_library(JANSSON_LIBRARY NAMES jansson HINTS ${JANSSON_LIBRARY_DIRS} REQUIRED)
    find_path(JANSSON_INCLUDE_DIR jansson.h HINTS ${JANSSON_INCLUDE_DIRS} ${JANSSON_INCLUDEDIR} REQUIRED)
  else()
    find_path(JANSSON_INCLUDE_DIR jansson.h)
    # Static first: a cross-built program then needs no DLL beside it.
    find_library(JANSSON_LIBRARY NAMES libjansson.a jansson NAMES_PER_DIR)
    if(NOT JANSSON_INCLUDE_DIR OR NOT JANSSON_LIBRARY)
      message(FATAL_ERROR "libjansson not found: install libjansson-dev (cross builds: cmake/windeps.sh builds it)")
    endif()
  endif()
  target_include_directories(bulkmap_dep_jansson INTERFACE ${JANSSON_INCLUDE_DIR})
  target_link_libraries(bulkmap_dep_jansson INTERFACE ${JANSSON_LIBRARY})
  message(STATUS "bulkmap: jansson ${JANSSON_LIBRARY}")
endif()
