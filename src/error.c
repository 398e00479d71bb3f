/* Error table (generated from BM_ERRNO_MAP), and the calling thread's last failure: its raw
 * OS error and the words a user reads for it (after SQLite's sqlite3_errmsg and
 * sqlite3_system_errno). A call that knows more than its code (the file or the name it is
 * about, the figures, the remedy) records its words as it returns (bm__error_words); every
 * other failure is worded from its code and OS error when asked. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

typedef struct {
  int os;               /* the raw OS error of the last failure (bm_last_os_error) */
  int code;             /* the code the words are for; 0: none recorded */
  char subject[1024];   /* the file or the name they are about */
  char words[2048];     /* what failed, why, the figures, the remedy */
  char generic[256];    /* bm_errmsg's words for a code with none recorded */
} bm__error_t;

static _Thread_local bm__error_t bm__err;

/* A new OS failure: the words recorded for an earlier one no longer apply. */
void bm__set_os_error(int oserr) {
  bm__err.os = oserr;
  bm__err.code = 0;
}
int bm_last_os_error(void) { return bm__err.os; }

void bm__error_keep_os(int os) { bm__err.os = os; }

void bm__error_clear(void) {
  bm__err.code = 0;
  bm__err.os = 0;
}

int bm__error_words(int code, const char *subject, const char *fmt, ...) {
  va_list ap;
  bm__err.code = code;
  snprintf(bm__err.subject, sizeof(bm__err.subject), "%s", subject != NULL ? subject : "");
  va_start(ap, fmt);
  vsnprintf(bm__err.words, sizeof(bm__err.words), fmt, ap);
  va_end(ap);
  return code;
}

const char *bm__error_default(int code, int os, char *buf, size_t n) {
  if (os != 0)
    snprintf(buf, n, "%s (%s; OS error %d (0x%x))", bm_strerror(code), bm_err_name(code), os,
             (unsigned)os);
  else
    snprintf(buf, n, "%s (%s)", bm_strerror(code), bm_err_name(code));
  return buf;
}

const char *bm_errmsg(int err) {
  if (err == 0) return bm_strerror(0);
  if (bm__err.code == err) return bm__err.words;
  return bm__error_default(err, bm__err.os, bm__err.generic, sizeof(bm__err.generic));
}

const char *bm_errsubject(int err) {
  return err != 0 && bm__err.code == err ? bm__err.subject : "";
}

const char *bm_version(void) { return BM_VERSION_STRING; }
int bm_version_number(void) { return BM_VERSION_NUMBER; }

const char *bm_strerror(int err) {
  switch (err) {
  case BM_OK:
    return "success";
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
  case BM_OK:
    return "OK";
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
