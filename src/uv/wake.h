/* bulkmap_uv's one platform difference: waking a pool thread blocked reading a stream when
 * the pipeline is cancelled. POSIX (wake_posix.c): a pipe polled beside the stream; Windows
 * (wake_win.c): none (an anonymous pipe cannot be waited on with another handle), so a read
 * there ends when data or the end comes. CMake picks one file. */
#ifndef BULKMAP_UV_WAKE_H
#define BULKMAP_UV_WAKE_H

#include "bulkmap_uv.h"

/* Makes the wake-up pair in wake[2] (both -1 where there is none). 0 or BM_EOS. */
int bm__uv_wake_open(int wake[2]);
/* Closes what bm__uv_wake_open made and sets both to -1; -1 entries are skipped. */
void bm__uv_wake_close(int wake[2]);
/* Wakes every bm__uv_wake_wait on wake, now and later (async-signal-safe). */
void bm__uv_wake_signal(const int wake[2]);
/* Blocks until fd has data (or its end) or wake is signalled: 0 to read, BM_EBUSY when
 * woken, BM_EOS with *os on a failure of the wait. Returns 0 at once where waiting is not
 * possible (the read then blocks). */
int bm__uv_wake_wait(const int wake[2], uv_file fd, int *os);

#endif
