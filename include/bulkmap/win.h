/* bulkmap: Windows platform types, picked by bulkmap.h (as libuv's uv/win.h). HANDLE is
 * kept as void * so that this header does not pull in <windows.h>. */
#ifndef BULKMAP_WIN_H
#define BULKMAP_WIN_H

typedef void *bm_os_handle_t;
#define BM_OS_INVALID_HANDLE ((void *)(intptr_t)-1)

#if defined(BULKMAP_SHARED) && defined(BULKMAP_BUILDING)
#define BM_EXTERN __declspec(dllexport)
#elif defined(BULKMAP_SHARED)
#define BM_EXTERN __declspec(dllimport)
#else
#define BM_EXTERN /* nothing */
#endif

#endif
