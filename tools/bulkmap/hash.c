/* The tool's XXH3-64 is the library's (bm_xxh3_*): one implementation for scan, load, cat
 * and the dataset format. */
#include "cli.h"

cli_hash_t *hash_new(void) { return (cli_hash_t *)bm_xxh3_new(); }
void hash_update(cli_hash_t *h, const void *p, size_t n) { bm_xxh3_update((bm_xxh3_t *)h, p, n); }
uint64_t hash_digest(const cli_hash_t *h) { return bm_xxh3_digest((const bm_xxh3_t *)h); }
void hash_free(cli_hash_t *h) { bm_xxh3_free((bm_xxh3_t *)h); }
