/* bulkmap: POSIX platform types, picked by bulkmap.h (as libuv's uv/unix.h). */
#ifndef BULKMAP_POSIX_H
#define BULKMAP_POSIX_H

typedef int bm_os_handle_t;
#define BM_OS_INVALID_HANDLE (-1)

#if defined(BULKMAP_SHARED) && defined(BULKMAP_BUILDING) && __GNUC__ >= 4
#define BM_EXTERN __attribute__((visibility("default")))
#else
#define BM_EXTERN /* nothing */
#endif

#endif
