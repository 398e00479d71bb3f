# Included by the `linux32` preset at the first project() call (CMAKE_PROJECT_TOP_LEVEL_INCLUDES):
# makes sure the i386 builds of libuv, Check and jansson exist in BULKMAP_LINUX32DEPS
# (build/linux32deps), building them from Debian's source packages with cmake/windeps.sh and
# the -m32 toolchain when missing (as the `windows` preset does with mingw-w64).
if(NOT BULKMAP_LINUX32DEPS)
  get_filename_component(BULKMAP_LINUX32DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/linux32deps" ABSOLUTE)
endif()
if(NOT EXISTS "${BULKMAP_LINUX32DEPS}/.complete-v2" OR NOT EXISTS "${BULKMAP_LINUX32DEPS}/.complete-jansson")
  message(STATUS "bulkmap: building libuv, Check and jansson for i386 into ${BULKMAP_LINUX32DEPS} (once)")
  execute_process(
    COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/windeps.sh" "${BULKMAP_LINUX32DEPS}"
            "${CMAKE_CURRENT_LIST_DIR}/i686-linux-gnu.cmake"
    RESULT_VARIABLE _bm_deps_rc)
  if(NOT _bm_deps_rc EQUAL 0)
    message(FATAL_ERROR "bulkmap: cmake/windeps.sh failed (${_bm_deps_rc}); logs in ${BULKMAP_LINUX32DEPS}.work")
  endif()
endif()
