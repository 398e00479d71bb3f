/* The dTLB counter where the OS offers none (Windows, POSIX systems other than Linux):
 * every call says so, with the platform's reason (bench_os_no_counters). */
#include <stdio.h>
#include "bench_os.h"

int bench_tlb_open(bench_tlb_t *t, char *reason, size_t n) {
  t->fd = -1;
  snprintf(reason, n, "%s", bench_os_no_counters());
  return -1;
}

void bench_tlb_start(bench_tlb_t *t) { (void)t; }

int bench_tlb_stop(bench_tlb_t *t, double *misses) {
  (void)t;
  *misses = 0;
  return -1;
}

void bench_tlb_close(bench_tlb_t *t) { t->fd = -1; }
