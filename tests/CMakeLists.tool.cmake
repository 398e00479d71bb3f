# The tool's integration test (POSIX shell; peers: xxhsum, wc, perl).
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_tool.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool PROPERTIES TIMEOUT 600)
  if(BULKMAP_SANITIZE)
    set_tests_properties(tool PROPERTIES ENVIRONMENT "BULKMAP_TEST_SANITIZED=1")
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
endif()
