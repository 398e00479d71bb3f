# Included by the `windows` preset at the first project() call (CMAKE_PROJECT_TOP_LEVEL_INCLUDES):
# makes sure the mingw builds of libuv, Check and jansson exist in BULKMAP_WINDEPS (build/windeps),
# building them from Debian's source packages with cmake/windeps.sh when missing.
if(NOT CMAKE_CROSSCOMPILING OR NOT CMAKE_SYSTEM_NAME STREQUAL "Windows")
  return()
endif()
if(NOT BULKMAP_WINDEPS)
  get_filename_component(BULKMAP_WINDEPS "${CMAKE_CURRENT_LIST_DIR}/../build/windeps" ABSOLUTE)
endif()
if(NOT EXISTS "${BULKMAP_WINDEPS}/.complete-v2" OR NOT EXISTS "${BULKMAP_WINDEPS}/.complete-jansson"
   OR NOT EXISTS "${BULKMAP_WINDEPS}/include/xxhash.h")
  message(STATUS "bulkmap: building libuv, Check and jansson for Windows into ${BULKMAP_WINDEPS} (once)")
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/windeps.sh" "${BULKMAP_WINDEPS}"
    RESULT_VARIABLE _bm_windeps_rc)
  if(NOT _bm_windeps_rc EQUAL 0)
    message(FATAL_ERROR "bulkmap: cmake/windeps.sh failed (${_bm_windeps_rc}); logs in ${BULKMAP_WINDEPS}.work")
  endif()
endif()
list(APPEND CMAKE_FIND_ROOT_PATH "${BULKMAP_WINDEPS}")
list(REMOVE_DUPLICATES CMAKE_FIND_ROOT_PATH)
