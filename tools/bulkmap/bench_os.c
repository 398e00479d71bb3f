/* Not part of the tool: the bench's OS layer is the bench module's now (tools/bench,
 * bulkmap_bench). tests/check_bench_pages.c still includes this file by path; it gets the
 * declarations here and the definitions from bulkmap_bench, which its runner links
 * (tests/CMakeLists.tool.cmake). Remove once that test includes "bench_os.h" itself. */
#include "../bench/bench_os.h"
