/* The words of dataset failures (src/words.c): each records them for bm_errmsg and returns
 * err. Called by the public call that fails, as it returns. */
#ifndef BM_WORDS_H
#define BM_WORDS_H
#include "bulkmap.h"

/* The rule a name must follow, in a user's words. */
extern const char bm__name_rule[];

typedef struct {
  const char *file;               /* the source's path; NULL: standard input or memory */
  const char *name;
  const char *group;              /* as given; NULL: none */
  const bm_load_result_t *result;
  const bm_preflight_t *room;     /* the room checked before the section was made */
} bm__load_words_t;

int bm__words_name(const char *name);
int bm__words_dataset(int err, const char *name, const bm_dataset_info_t *info);
int bm__words_wait(int err, const char *name, double seconds, const bm_dataset_info_t *info);
int bm__words_remove(int err, const char *name);
int bm__words_load(int err, const bm__load_words_t *w);
#endif
