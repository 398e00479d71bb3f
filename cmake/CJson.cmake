# Finds cJSON (Debian's libcjson-dev), which parses safetensors headers in the core
# library. On Linux through pkg-config; a cross build (windows, linux32) finds the static
# build cmake/windeps.sh made from Debian's source package in its prefix.
if(NOT TARGET bulkmap_dep_cjson)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND AND NOT CMAKE_CROSSCOMPILING AND NOT BULKMAP_LINUX32DEPS)
    pkg_check_modules(CJSON QUIET libcjson)
  endif()
  add_library(bulkmap_dep_cjson INTERFACE)
  if(CJSON_FOUND)
    find_library(CJSON_LIBRARY NAMES cjson HINTS ${CJSON_LIBRARY_DIRS} REQUIRED)
    find_path(CJSON_INCLUDE_DIR cjson/cJSON.h HINTS ${CJSON_INCLUDE_DIRS}/.. ${CJSON_INCLUDEDIR} REQUIRED)
  else()
    find_path(CJSON_INCLUDE_DIR cjson/cJSON.h)
    # Static first: a cross-built program then needs no DLL beside it.
    find_library(CJSON_LIBRARY NAMES libcjson.a cjson NAMES_PER_DIR)
    if(NOT CJSON_INCLUDE_DIR OR NOT CJSON_LIBRARY)
      message(FATAL_ERROR "cJSON not found: install libcjson-dev (cross builds: cmake/windeps.sh builds it)")
    endif()
  endif()
  target_include_directories(bulkmap_dep_cjson INTERFACE ${CJSON_INCLUDE_DIR})
  target_link_libraries(bulkmap_dep_cjson INTERFACE ${CJSON_LIBRARY})
  message(STATUS "bulkmap: cJSON ${CJSON_LIBRARY}")
endif()
