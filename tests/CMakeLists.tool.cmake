# The tool's integration test (POSIX shell; peers: xxhsum, wc, perl).
if(TARGET bulkmap_tool AND NOT WIN32)
  add_test(NAME tool COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/tool/test_tool.sh $<TARGET_FILE:bulkmap_tool>)
  set_tests_properties(tool PROPERTIES TIMEOUT 600)
endif()
