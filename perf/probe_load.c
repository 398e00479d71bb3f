/* perf probe: what loading a warm file into /dev/shm can reach, two ways, with N threads
 * each taking 64 MiB chunks in turn:
 *   map    the section mapped, pread()s into it (what bulkmap load does: every 4 KiB page
 *          is faulted in, and the shmem fault zeroes it before the copy overwrites it);
 *   write  the source mapped, pwrite()s from it into the section's descriptor (the write
 *          path allocates pages it will fill whole without zeroing them, as cp does).
 * usage: bm_probe_load FILE DEST map|write THREADS   (DEST is created, and left for the
 * caller to remove) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64u << 20)

static int src_fd, dst_fd, write_mode;
static unsigned char *src_map, *dst_map;
static uint64_t size;
static atomic_uint_fast64_t next_chunk;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t off = atomic_fetch_add(&next_chunk, 1) * CHUNK, n, done = 0;
    if (off >= size) return NULL;
    n = size - off < CHUNK ? size - off : CHUNK;
    while (done < n) {
      ssize_t r = write_mode ? pwrite(dst_fd, src_map + off + done, n - done, (off_t)(off + done))
                             : pread(src_fd, dst_map + off + done, n - done, (off_t)(off + done));
      if (r <= 0) {
        perror(write_mode ? "pwrite" : "pread");
        exit(1);
      }
      done += (uint64_t)r;
    }
  }
}

int main(int argc, char **argv) {
  struct stat st;
  pthread_t th[16];
  int n, i;
  double t0, t1;
  if (argc != 5 || (strcmp(argv[3], "map") != 0 && strcmp(argv[3], "write") != 0) ||
      (n = atoi(argv[4])) < 1 || n > 16) {
    fprintf(stderr, "usage: bm_probe_load FILE DEST map|write THREADS\n");
    return 2;
  }
  write_mode = strcmp(argv[3], "write") == 0;
  t0 = now();
  if ((src_fd = open(argv[1], O_RDONLY)) < 0 || fstat(src_fd, &st) != 0) {
    perror(argv[1]);
    return 1;
  }
  size = (uint64_t)st.st_size;
  if ((dst_fd = open(argv[2], O_RDWR | O_CREAT | O_EXCL, 0600)) < 0 || ftruncate(dst_fd, (off_t)size) != 0) {
    perror(argv[2]);
    return 1;
  }
  if (write_mode) {
    src_map = mmap(NULL, size, PROT_READ, MAP_SHARED, src_fd, 0);
    if (src_map == MAP_FAILED) return perror("mmap"), 1;
  } else {
    dst_map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, dst_fd, 0);
    if (dst_map == MAP_FAILED) return perror("mmap"), 1;
  }
  for (i = 0; i < n; i++) pthread_create(&th[i], NULL, worker, NULL);
  for (i = 0; i < n; i++) pthread_join(th[i], NULL);
  t1 = now();
  printf("mode: %s\nthreads: %d\nbytes: %llu\nseconds: %.6f\nbytes_per_second: %.0f\n", argv[3], n,
         (unsigned long long)size, t1 - t0, (double)size / (t1 - t0));
  return 0;
}
