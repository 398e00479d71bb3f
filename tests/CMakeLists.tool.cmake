# tests/check_bench_pages.c checks the bench module's OS layer (tools/bench): the runner
# links bulkmap_bench, made here too when the tool is not built.
if(NOT TARGET bulkmap_bench)
  add_subdirectory(${PROJECT_SOURCE_DIR}/tools/bench ${PROJECT_BINARY_DIR}/tools/bench)
endif()
target_link_libraries(check_bulkmap PRIVATE bulkmap_bench)

# The tool's integration test (POSIX shell; peers: xxhsum, wc, perl).
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_tool.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool PROPERTIES TIMEOUT 600)
  if(BULKMAP_SANITIZE)
    set_tests_properties(tool PROPERTIES ENVIRONMENT "BULKMAP_TEST_SANITIZED=1")
  endif()
  # The cases of several GiB (minutes of reading holes): once, in the native lane.
  if(NOT BULKMAP_SANITIZE)
    add_test(NAME tool_large COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_tool_large.sh $<TARGET_FILE:bulkmap_tool>)
    set_tests_properties(tool_large PROPERTIES TIMEOUT 900 LABELS slow)
  endif()
  # bench on the real OS: keys, min <= median <= max, reasons, --file, --sweep, CSV.
  add_test(NAME tool_bench COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_bench.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool_bench PROPERTIES TIMEOUT 300)
endif()

# bulkmap_uv's own suite, in its own runner (the core's runner never links libuv).
if(TARGET bulkmap_uv)
  add_executable(check_uv uv/check_uv.c)
  target_link_libraries(check_uv PRIVATE bulkmap_uv bulkmap_dep_check)
  if(NOT WIN32)
    target_compile_definitions(check_uv PRIVATE _GNU_SOURCE) # uv.h under strict C11
  endif()
  if(MINGW)
    target_compile_options(check_uv PRIVATE -Wno-format)
  endif()
  add_test(NAME check_uv COMMAND check_uv)
  set_tests_properties(check_uv PROPERTIES TIMEOUT 300 ENVIRONMENT "CK_DEFAULT_TIMEOUT=120")
  # examples/uv_scan_stdin.c, a C program that scans standard input through bulkmap_uv,
  # against xxhsum -H3 of the same bytes piped in.
  add_executable(uv_scan_stdin ${PROJECT_SOURCE_DIR}/examples/uv_scan_stdin.c)
  target_link_libraries(uv_scan_stdin PRIVATE bulkmap_uv)
  if(NOT WIN32)
    target_compile_definitions(uv_scan_stdin PRIVATE _GNU_SOURCE) # uv.h under strict C11
    add_test(NAME uv_scan_stdin COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/uv/test_scan_stdin.sh
             $<TARGET_FILE:uv_scan_stdin>)
    set_tests_properties(uv_scan_stdin PROPERTIES TIMEOUT 120)
  endif()
endif()

# README's library example, compiled and run.
if(NOT WIN32 AND NOT BULKMAP_SANITIZE)
  add_test(NAME readme_example COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/readme/test_readme.sh
           ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_C_COMPILER} ${PROJECT_SOURCE_DIR}/include
           $<TARGET_FILE:bulkmap> "${CMAKE_C_FLAGS}" "${JANSSON_LIBRARY}")
endif()

# docs/cli.md is what tools/gen-cli-doc.sh writes from the tool's help table, and every
# option a command accepts is in its --help.
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME readme_cli_doc COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/readme/test_cli_doc.sh
           $<TARGET_FILE:bulkmap_tool> ${PROJECT_SOURCE_DIR})
endif()

# README's Python example, run against the build tree's package; README's length and links.
if(BULKMAP_BUILD_PYTHON AND NOT WIN32 AND NOT BULKMAP_SANITIZE)
  add_test(NAME readme_python COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/readme/test_readme_py.sh
           ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_BINARY_DIR}/python ${Python3_EXECUTABLE})
endif()

# The tool in the shell: several files, pipes, limits, signals, write errors, help, man page.
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool_shell COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_shell.sh
           $<TARGET_FILE:bulkmap_tool> ${PROJECT_BINARY_DIR}/tools/bulkmap.1)
  set_tests_properties(tool_shell PROPERTIES TIMEOUT 600)
  if(BULKMAP_SANITIZE)
    set_tests_properties(tool_shell PROPERTIES ENVIRONMENT "BULKMAP_TEST_SANITIZED=1")
  endif()
endif()

# Install rules, the CMake package and the pkg-config file, used from outside the tree.
if(NOT WIN32 AND NOT BULKMAP_SANITIZE)
  add_test(NAME install COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/consumer/test_install.sh ${CMAKE_BINARY_DIR}
           "${CMAKE_TOOLCHAIN_FILE}" "${CMAKE_C_FLAGS}")
endif()

# The Windows build's tool test, under the crosscompiling emulator (Wine).
if(TARGET bulkmap_tool AND WIN32 AND CMAKE_CROSSCOMPILING_EMULATOR)
  add_test(NAME tool COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_tool_wine.sh
           ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool PROPERTIES TIMEOUT 600)
  add_test(NAME tool_bench COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_bench.sh
           $<TARGET_FILE:bulkmap_tool> ${CMAKE_CROSSCOMPILING_EMULATOR})
  set_tests_properties(tool_bench PROPERTIES TIMEOUT 300)
endif()

# Typed datasets: --format, stat/ls of format and layout, malformed headers, load -.
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool_format COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_format.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool_format PROPERTIES TIMEOUT 300)
endif()

# The lifecycle commands: load --replace under readers, --wait, rm --abandoned, maps, RemoveIPC.
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool_lifecycle COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_lifecycle.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool_lifecycle PROPERTIES TIMEOUT 300)
endif()

# Under Wine, one persistent wineserver for the whole run (cmake/wine-run.sh --start/--stop):
# every test of this directory requires it, so none races Wine's start-up or shutdown.
if(WIN32 AND CMAKE_CROSSCOMPILING_EMULATOR)
  get_property(_bm_wine_tests DIRECTORY PROPERTY TESTS)
  add_test(NAME wine_start COMMAND bash ${PROJECT_SOURCE_DIR}/cmake/wine-run.sh --start ${PROJECT_BINARY_DIR})
  add_test(NAME wine_stop COMMAND bash ${PROJECT_SOURCE_DIR}/cmake/wine-run.sh --stop ${PROJECT_BINARY_DIR})
  set_tests_properties(wine_start PROPERTIES FIXTURES_SETUP wine TIMEOUT 300)
  set_tests_properties(wine_stop PROPERTIES FIXTURES_CLEANUP wine TIMEOUT 120)
  foreach(t ${_bm_wine_tests})
    set_tests_properties(${t} PROPERTIES FIXTURES_REQUIRED wine)
  endforeach()
endif()

# Packaging: the bash completion against the tool, and the Debian package (root, dpkg).
if(TARGET bulkmap_tool AND NOT WIN32 AND NOT BULKMAP_SANITIZE)
  add_test(NAME package_completion COMMAND bash ${PROJECT_SOURCE_DIR}/tests/package/test_completion.sh
           $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(package_completion PROPERTIES TIMEOUT 120)
  if(NOT CMAKE_CROSSCOMPILING AND BULKMAP_BUILD_PYTHON)
    # Installed by dpkg into a throwaway root: the machine's /usr and dpkg database untouched.
    add_test(NAME package_deb COMMAND bash ${PROJECT_SOURCE_DIR}/tests/package/test_deb.sh ${PROJECT_BINARY_DIR})
    set_tests_properties(package_deb PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77 LABELS package)
  endif()
endif()

# The soak (tests/soak/soak.sh; `tools/dev.sh soak`: 20 rounds under stress-ng): here one
# round of the dataset, lifecycle and hostile suites and the tool's and Python's lifecycle
# tests in a private mount namespace (root; skips without it), run beside the rest of the
# lane, which is its load (ctest -j3 on two CPUs), instead of stress-ng: alone under
# stress-ng it took 49 s of the lane and 95 s of CPU, two thirds of them stress-ng's.
if(TARGET bulkmap_tool AND BULKMAP_BUILD_PYTHON AND NOT WIN32 AND NOT CMAKE_CROSSCOMPILING AND NOT BULKMAP_SANITIZE)
  add_test(NAME soak COMMAND bash ${PROJECT_SOURCE_DIR}/tests/soak/soak.sh ${PROJECT_BINARY_DIR} 1)
  set_tests_properties(soak PROPERTIES LABELS soak TIMEOUT 1200 SKIP_RETURN_CODE 77
                       ENVIRONMENT "SOAK_STRESS=0")
endif()

# Errors that say what and why: --json failures as one {"error": ...} object for every
# command, load - at one ^D on a terminal (a pty), another user's dataset named in rm/replace.
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool_errors COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_errors.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool_errors PROPERTIES TIMEOUT 300)
endif()
