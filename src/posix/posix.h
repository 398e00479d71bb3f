/* Helpers shared by the files of the POSIX backend. */
#ifndef BULKMAP_POSIX_INTERNAL_H
#define BULKMAP_POSIX_INTERNAL_H

#include <stdint.h>

/* Records errno e and returns the BM_E* code it maps to. */
int bm__posix_error(int e);
/* fstat()s fd: BM_EISDIR, BM_ENOTREG unless a regular file; *size gets its size. */
int bm__posix_check_regular(int fd, uint64_t *size);

#endif
