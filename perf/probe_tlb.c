/* perf/probe_tlb.c: the data-TLB sizes the CPU reports (x86 CPUID), so that the bench sweep
 * can be read against each page size's reach (entries x page size). AMD leaves 0x80000005/6
 * (Intel leaves these zero; leaf 0x18 would be needed there, and this says so). */
#include <stdio.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

int main(void) {
  unsigned a, b, c, d, l1_4k, l1_2m, l2_4k, l2_2m;
  if (!__get_cpuid(0x80000006, &a, &b, &c, &d)) {
    puts("tlb: no CPUID leaf 0x80000006");
    return 0;
  }
  l2_2m = (a >> 16) & 0xfff;
  l2_4k = (b >> 16) & 0xfff;
  __get_cpuid(0x80000005, &a, &b, &c, &d);
  l1_2m = (a >> 16) & 0xff;
  l1_4k = (b >> 16) & 0xff;
  if (l2_4k == 0 && l1_4k == 0) {
    puts("tlb: not reported in CPUID 0x80000005/6 (not an AMD CPU?)");
    return 0;
  }
  printf("tlb: L1 dTLB %u entries 4K (reach %u KiB), %u entries 2M (reach %u MiB); "
         "L2 dTLB %u entries 4K (reach %u MiB), %u entries 2M (reach %u MiB)\n",
         l1_4k, l1_4k * 4, l1_2m, l1_2m * 2, l2_4k, l2_4k * 4 / 1024, l2_2m, l2_2m * 2);
  return 0;
}
#else
int main(void) {
  puts("tlb: not an x86 CPU: no CPUID");
  return 0;
}
#endif
