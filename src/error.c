/* Error table (generated from BM_ERRNO_MAP) and the per-thread raw OS error. */
#include <stdio.h>
#include "internal.h"

static _Thread_local int bm__last_os_error;

void bm__set_os_error(int oserr) { bm__last_os_error = oserr; }
int bm_last_os_error(void) { return bm__last_os_error; }

const char *bm_version(void) { return BM_VERSION_STRING; }

const char *bm_strerror(int err) {
  switch (err) {
#define BM__ERR_MSG(name, val, msg) \
  case BM_##name:                   \
    return msg;
    BM_ERRNO_MAP(BM__ERR_MSG)
#undef BM__ERR_MSG
  }
  return "unknown error";
}

const char *bm_err_name(int err) {
  switch (err) {
#define BM__ERR_NAME(name, val, msg) \
  case BM_##name:                    \
    return #name;
    BM_ERRNO_MAP(BM__ERR_NAME)
#undef BM__ERR_NAME
  }
  return "UNKNOWN";
}

const char *bm_large_reason_str(int reason) {
  switch (reason) {
  case BM_REASON_NONE: return "none";
  case BM_REASON_NOT_REQUESTED: return "not requested";
  case BM_REASON_NO_PRIVILEGE: return "privilege not held";
  case BM_REASON_POOL_EMPTY: return "pool empty";
  case BM_REASON_NO_MOUNT: return "no hugetlbfs mount";
  case BM_REASON_SIZE_NOT_MULTIPLE: return "size not a multiple of the large page size";
  case BM_REASON_UNSUPPORTED: return "unsupported";
  case BM_REASON_TRANSPARENT_ONLY: return "transparent huge pages only";
  case BM_REASON_POOL_TOO_SMALL: return "pool too small";
  case BM_REASON_MOUNT_LIMIT: return "hugetlbfs mount size limit";
  case BM_REASON_MOUNT_INODES: return "hugetlbfs mount inode limit";
  }
  return "unknown reason";
}

const char *bm_large_describe(const bm_large_t *large, char *buf, size_t n) {
  if (buf == NULL || n == 0) return "";
  if (large == NULL) {
    snprintf(buf, n, "%s", bm_large_reason_str(BM_REASON_NONE));
    return buf;
  }
  if (large->reason == BM_REASON_MOUNT_LIMIT)
    snprintf(buf, n, "%s: %llu of %llu pages free on %s (size= %llu pages)",
             bm_large_reason_str(large->reason), (unsigned long long)large->pages_free,
             (unsigned long long)large->pages_needed, large->mount[0] ? large->mount : "?",
             (unsigned long long)large->mount_limit);
  else if (large->reason == BM_REASON_MOUNT_INODES && large->mount_limit > 0)
    snprintf(buf, n, "%s: no inode free of %llu on %s (nr_inodes=)",
             bm_large_reason_str(large->reason), (unsigned long long)large->mount_limit,
             large->mount[0] ? large->mount : "?");
  else if (large->reason == BM_REASON_MOUNT_INODES)
    snprintf(buf, n, "%s: no inode free on %s (nr_inodes=)", bm_large_reason_str(large->reason),
             large->mount[0] ? large->mount : "?");
  else if ((large->reason == BM_REASON_POOL_EMPTY || large->reason == BM_REASON_POOL_TOO_SMALL) &&
      large->pages_needed > 0)
    snprintf(buf, n, "%s: %llu of %llu pages free", bm_large_reason_str(large->reason),
             (unsigned long long)large->pages_free, (unsigned long long)large->pages_needed);
  else
    snprintf(buf, n, "%s", bm_large_reason_str(large->reason));
  return buf;
}
