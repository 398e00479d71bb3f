/* bulkmap: the command-line tool. Dispatches to one cmd_<verb>.c a subcommand. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"

static const cli_cmd_t commands[] = {
  {"info", cmd_info, "bulkmap info  [--json]",
   "Shows the machine's facts: page size, allocation granularity, large page sizes and\n"
   "whether large pages can be had now (and why not).\n"
   "  --json        one JSON object on stdout"},
  {"scan", cmd_scan,
   "bulkmap scan  FILE [--hash] [--lines] [--count LITERAL] [--offset N] [--length N]\n"
   "              [--window SIZE] [--threads N] [--json] [--no-progress]",
   "Streams FILE (of any size) through mapped windows. With none of --hash --lines --count\n"
   "it computes the hash and the line count.\n"
   "  --hash          XXH3-64 of the bytes (as xxhsum -H3)\n"
   "  --lines         count newline bytes (as wc -l)\n"
   "  --count LIT     count non-overlapping occurrences of LIT, left to right\n"
   "  --offset N      first byte to scan (default 0)\n"
   "  --length N      bytes to scan (default: to the end)\n"
   "  --window SIZE   window size (default 64M; rounded up to the granularity)\n"
   "  --threads N     thread pool size, 1-256 (default: the CPU count)\n"
   "  --json          one JSON object on stdout\n"
   "  --no-progress   no progress bar on stderr\n"
   "SIZE and N: bytes, or a number with a K, M, G or T suffix (64M = 67108864)."},
  {"load", cmd_load,
   "bulkmap load  FILE --name NAME [--large-pages auto|on|off] [--mode OCTAL] [--group NAME]\n"
   "              [--hold] [--json] [--no-progress]",
   "Copies FILE into a new named shared section NAME, checksums it and marks it ready.\n"
   "  --name NAME            1-200 of [A-Za-z0-9._-] (Windows: Local\\ or Global\\ may lead)\n"
   "  --large-pages MODE     auto (default): use them when they can be had; on: fail\n"
   "                         without them; off: never\n"
   "  --mode OCTAL           the section's permission bits (default 0600); readers need\n"
   "                         only read permission\n"
   "  --group NAME           give the section to group NAME (yours, or any as root)\n"
   "  --hold                 keep the section until interrupted, then remove it\n"
   "                         (always on Windows, where a section dies with its last handle)\n"
   "  --json                 one JSON object on stdout\n"
   "  --no-progress          no progress bar on stderr"},
  {"cat", cmd_cat, "bulkmap cat   NAME [--raw] [--no-verify]",
   "Writes the payload of section NAME to stdout after verifying its checksum.\n"
   "  --raw          write every mapped byte of a section that is not a bulkmap dataset\n"
   "  --no-verify    skip the checksum"},
  {"stat", cmd_stat, "bulkmap stat  NAME [--json]",
   "Shows the trailer of section NAME: size, checksum, state, page size, writer.\n"
   "  --json   one JSON object on stdout"},
  {"ls", cmd_ls, "bulkmap ls    [--json] [--all]",
   "Lists the datasets in /dev/shm and on every hugetlbfs mount: name, place, bytes,\n"
   "state, page size, owner, mode, writer pid, created.\n"
   "  --all    also objects that are not datasets (foreign) or cannot be read\n"
   "  --json   one JSON object on stdout: {\"sections\":[...]}"},
  {"rm", cmd_rm, "bulkmap rm    NAME... [--force]",
   "Removes each section NAME (your own first where another user's has the same name).\n"
   "  --force  also a dataset whose writer is still loading it, and no error for a\n"
   "           name that does not exist"},
  {"bench", cmd_bench, "bulkmap bench [--size SIZE] [--pages 4k,thp,large] [--csv FILE] [--json]",
   "Compares page kinds on an anonymous region of SIZE (default 1G): populate time,\n"
   "sequential read rate, random 8-byte read latency, dependent-load (pointer chase)\n"
   "latency, and the page size the kernel really gave. A kind that cannot be had is shown\n"
   "with its reason.\n"
   "  --size SIZE    bytes of each region (default 1G, at least 1M)\n"
   "  --pages LIST   kinds, comma separated: 4k (normal pages), thp (transparent huge\n"
   "                 pages), large (hugetlb / SEC_LARGE_PAGES); default all three\n"
   "  --csv FILE     also write one CSV row a kind to FILE\n"
   "  --json         one JSON object on stdout"},
  {"setup", cmd_setup, "bulkmap setup --large-pages SIZE [--group NAME] [--json]",
   "Linux (root): makes sure the huge page pool holds at least SIZE bytes (it never shrinks\n"
   "a pool) and mounts hugetlbfs on /dev/hugepages if none is mounted, writable by root and\n"
   "by --group only (never world-writable). Prints the pool before and after.\n"
   "  --group NAME   the group that may create large-page sections (mode 1770)\n"
   "  --json         one JSON object on stdout\n"
   "Windows: says how to grant \"Lock pages in memory\"."},
};
#define NCOMMANDS (int)(sizeof(commands) / sizeof(commands[0]))

static void usage_all(FILE *f) {
  int i;
  fprintf(f, "usage:\n");
  for (i = 0; i < NCOMMANDS; i++) fprintf(f, "  %s\n", commands[i].usage);
  fprintf(f, "  bulkmap --help | --version | COMMAND --help\n");
}

int cli_help(const char *cmd) {
  int i;
  for (i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, cmd) == 0) {
      printf("usage: %s\n\n%s\n", commands[i].usage, commands[i].help);
      return 0;
    }
  return EXIT_USAGE;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
  va_list ap;
  int i;
  va_start(ap, fmt);
  cli_verror(cmd, fmt, ap);
  va_end(ap);
  for (i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, cmd) == 0) fprintf(stderr, "usage: %s\n", commands[i].usage);
  return EXIT_USAGE;
}

int main(int argc, char **argv) {
  int i;
  if (argc < 2) {
    usage_all(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage_all(stdout);
    return EXIT_DONE;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("bulkmap %s\n", bm_version());
    return EXIT_DONE;
  }
  for (i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, argv[1]) == 0) return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "bulkmap: %s: unknown command\n", argv[1]);
  usage_all(stderr);
  return EXIT_USAGE;
}
