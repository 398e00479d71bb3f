/* bulkmap: the command-line tool. Dispatches to one cmd_<verb>.c a subcommand; cli.c holds
 * what they share and never calls back here (it gets the table from cli_commands_set).
 * The command table holds every command's help; `--help`, `COMMAND --help` and the man page (printed by
 * the hidden `--man` at build time) are all made from it, so they never disagree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "plat.h"

/* Each command's block: name, function, synopsis (docs/design.md section 3), one-line summary for
 * `bulkmap --help`, and its help: what it does, then one "  --option  what" line an option
 * (continuation lines indented further). Each block stands alone. */
static const cli_cmd_t commands[] = {
  {"info", cmd_info, "bulkmap info  [--json]",
   "show page sizes, allocation granularity and whether large pages can be had",
   "Shows the machine's facts: page size, allocation granularity, large page sizes, the\n"
   "free large-page pool, hugetlbfs mounts, the transparent huge page mode, and whether a\n"
   "large-page section could be made now (and why not).\n"
   "  --json          one JSON object on stdout (keys: docs/json.md)"},

  {"scan", cmd_scan,
   "bulkmap scan  FILE... [--hash] [--lines] [--count LITERAL]... [--offset N] [--length N]\n"
   "              [--window SIZE] [--threads N] [--json] [--no-progress]",
   "hash, count lines and count a literal in files or standard input",
   "Streams each FILE (of any size) through mapped windows: the XXH3-64 hash (as\n"
   "xxhsum -H3), the newline count (as wc -l) and the counts of literals. With none of\n"
   "--hash --lines --count it computes the hash and the line count. FILE - (or a pipe, or\n"
   "a FIFO) is read instead of mapped, with the same results. With several FILEs it prints\n"
   "one block a file and the totals.\n"
   "  --hash          XXH3-64 of the bytes, as 16 hex digits (as xxhsum -H3)\n"
   "  --lines         count newline bytes (as wc -l)\n"
   "  --count LITERAL\n"
   "                  count non-overlapping occurrences of LITERAL, found left to right,\n"
   "                  those across window edges included; up to 16 --count in one pass,\n"
   "                  each counted (JSON: count for one, counts {LITERAL: N} for several)\n"
   "  --offset N      first byte to scan (default 0)\n"
   "  --length N      bytes to scan (default: to the end)\n"
   "  --window SIZE   window size (default 64M, at most 4G; rounded up to the granularity)\n"
   "  --threads N     thread pool size, 1-256 (default: the CPU count)\n"
   "  --json          one JSON object on stdout (keys: docs/json.md)\n"
   "  --no-progress   no progress bar on stderr (there is none when it is not a terminal)\n"
   "SIZE and N: bytes, or a number with K M G T or KiB MiB GiB TiB (powers of 1024:\n"
   "64M = 64MiB = 67108864) or KB MB GB TB (powers of 1000: 64MB = 64000000); k m g t\n"
   "read as K M G T. Anything else (64Q, 1.5G, -1) is a usage error."},

  {"load", cmd_load,
   "bulkmap load  FILE|- --name NAME [--format auto|raw|npy|safetensors]\n"
   "              [--large-pages auto|on|off] [--place DIR] [--mode OCTAL] [--group NAME]\n"
   "              [--hold] [--replace] [--json] [--no-progress]",
   "copy a file into a named shared section, checksum it and mark it ready",
   "Copies FILE into a new dataset NAME, checksums it and marks it ready. /dev/shm/NAME (or\n"
   "NAME on the hugetlbfs mount it is on) is then byte-for-byte FILE, so any program that\n"
   "reads FILE reads it; what bulkmap knows of it is beside it, in /dev/shm/bulkmap#NAME.\n"
   "The name is taken exclusively: an existing one is an error, never overwritten.\n"
   "Interrupted or failed, it removes what it made. FILE - reads standard input: a file as\n"
   "it is, else copied first into an unnamed file in $TMPDIR (else /var/tmp), so its size is\n"
   "known and the room checked before anything is made, as for FILE.\n"
   "  --name NAME     1-200 of [A-Za-z0-9._-] (Windows: Local\\ or Global\\ may lead)\n"
   "  --format FORMAT\n"
   "                  what the payload is: auto (default: npy or safetensors by the file's\n"
   "                  magic, else raw), raw (the bytes as they are), npy or safetensors (the\n"
   "                  header judged before anything is made: sizes within the file, known\n"
   "                  dtypes only, no pickles; a bad one is exit 1 and nothing published)\n"
   "  --large-pages MODE\n"
   "                  auto (default): use large pages when they can be had, and say which\n"
   "                  it got; on: fail without them, with the reason; off: never. Large\n"
   "                  pages come from a trusted hugetlbfs mount only: --place, the one\n"
   "                  BULKMAP_HUGETLBFS names, or one owned by root or you that nobody\n"
   "                  else may write to\n"
   "  --place DIR     where the bytes go: /dev/shm (normal pages), or a hugetlbfs mount\n"
   "                  (large pages: --large-pages on unless given)\n"
   "  --mode OCTAL    permissions of the section, exactly (default 0600: the owner only);\n"
   "                  the owner's read bit (0400) must be among them\n"
   "  --group NAME    group of the section (readers need only read permission)\n"
   "  --hold          keep the section until interrupted, then remove it and exit 0\n"
   "                  (always so on Windows, where a section dies with its last handle)\n"
   "  --replace       NAME may exist: the new copy is loaded with no name and, once ready,\n"
   "                  becomes NAME atomically (readers open the old or the new, never\n"
   "                  nothing); readers of the old keep it until they close. Only its owner\n"
   "                  (or root) may replace it; a failed load leaves it as it was. A\n"
   "                  replace keeps the place: asking for the other page kind is refused\n"
   "                  (rm, then load)\n"
   "  --json          one JSON object on stdout (keys: docs/json.md)\n"
   "  --no-progress   no progress bar on stderr"},

  {"cat", cmd_cat, "bulkmap cat   NAME [--raw] [--no-verify] [--wait SECONDS]",
   "write a dataset's payload to stdout, after verifying its checksum",
   "Writes the payload of section NAME to stdout after verifying its checksum, hashing what\n"
   "it writes again: a section changed behind its back ends in exit 1, never in wrong\n"
   "bytes with exit 0.\n"
   "  --raw           write every mapped byte of a section that is not a bulkmap dataset\n"
   "  --no-verify     skip the checksum\n"
   "  --wait SECONDS  wait up to SECONDS for NAME to exist and be ready (a failed or\n"
   "                  abandoned load ends the wait at once); exit 1 when the time is up"},

  {"stat", cmd_stat, "bulkmap stat  NAME [--json] [--wait SECONDS]",
   "show a dataset's trailer: size, checksum, state, page size, writer",
   "Shows the trailer of section NAME: payload size, checksum, state (ready, loading,\n"
   "abandoned, failed), the large-page request and outcome as load reported them, writer\n"
   "and creation time. Exits 0 only for a ready section (it prints the others too, with\n"
   "no checksum).\n"
   "  --json          one JSON object on stdout (keys: docs/json.md)\n"
   "  --wait SECONDS  wait up to SECONDS for NAME to exist and be ready (a failed or\n"
   "                  abandoned load ends the wait at once); exit 1 when the time is up"},

  {"ls", cmd_ls, "bulkmap ls    [--json] [--all]",
   "list sections in /dev/shm and on hugetlbfs mounts",
   "Lists the dataset sections in /dev/shm and on hugetlbfs mounts: name, place, bytes,\n"
   "state (ready, loading, abandoned, failed, corrupt), page size, owner, mode, writer pid,\n"
   "creation time, and how many processes map it (- where that cannot be seen).\n"
   "  --all           also objects that are not bulkmap datasets (state foreign) or that\n"
   "                  cannot be read (unreadable)\n"
   "  --json          one JSON object on stdout: {\"sections\":[...]} (keys: docs/json.md)"},

  {"rm", cmd_rm, "bulkmap rm    NAME... [--force] | --abandoned [--json]",
   "remove named sections",
   "Removes each section NAME, found as cat and stat find it: where another user's object\n"
   "has the same name elsewhere, your own. A name that does not exist is an error (exit 1)\n"
   "and the others are still removed. A dataset whose writer is still loading it is not\n"
   "removed (exit 1) unless --force.\n"
   "  --force         also remove a dataset still being loaded; a name that does not\n"
   "                  exist is not an error\n"
   "  --abandoned     (no NAME) remove every abandoned or failed dataset you may remove\n"
   "                  (yours; any as root), never one whose writer lives, and print each\n"
   "                  one removed and the bytes freed\n"
   "  --json          with --abandoned: {\"removed\":[{name place bytes state}],\n"
   "                  \"freed_bytes\":N}"},

  {"bench", cmd_bench,
   "bulkmap bench [--size SIZE] [--pages 4k,thp,large] [--shared] [--file FILE] [--runs N]\n"
   "              [--sweep] [--csv FILE] [--json]",
   "compare 4 KiB pages, transparent huge pages and large pages",
   "Compares page kinds on a region of SIZE (default 1G): populate time, sequential read\n"
   "rate, random 8-byte read latency, dependent-load latency, data-TLB misses per load\n"
   "(where the CPU's counters can be read, else null and why), the share of the region the\n"
   "kernel maps with huge entries and the page size it really gave. A kind that cannot be\n"
   "had is shown with its reason. Every kind is measured in each of N rounds, interleaved,\n"
   "after one unrecorded warm-up round; each figure is the median, with min and max.\n"
   "  --size SIZE    bytes of each region (default 1G, at least 1M; rounded up to whole\n"
   "                 huge pages)\n"
   "  --pages LIST   kinds, comma separated: 4k (normal pages), thp (transparent huge\n"
   "                 pages), large (hugetlb / MEM_LARGE_PAGES); default all three\n"
   "  --shared       a shared section instead of anonymous private memory (thp then\n"
   "                 follows shmem_enabled)\n"
   "  --file FILE    also FILE mapped from the page cache (map+populate time, share mapped\n"
   "                 by huge entries) and, with large among the kinds, the same bytes in a\n"
   "                 large-page section (the time to load it, then to map and populate it)\n"
   "  --runs N       recorded rounds, 1-1000 (default 5)\n"
   "  --sweep        also random and dependent read latency against working set, 64K to\n"
   "                 SIZE by powers of two\n"
   "  --csv FILE     also write every figure to FILE as CSV\n"
   "  --json         one JSON object on stdout (keys: docs/json.md)"},

  {"setup", cmd_setup, "bulkmap setup --large-pages SIZE [--group NAME] [--json]",
   "reserve huge pages and mount hugetlbfs (Linux, root)",
   "Linux (root): makes sure the huge page pool holds at least SIZE (it never shrinks it)\n"
   "and mounts hugetlbfs on /dev/hugepages if none is mounted, writable by root and by\n"
   "--group only; prints the pool before and after. Windows: says how to grant\n"
   "\"Lock pages in memory\".\n"
   "  --large-pages SIZE\n"
   "                  bytes of huge pages the pool must hold\n"
   "  --group NAME    group that may make large-page sections on the mount\n"
   "  --json          one JSON object on stdout (keys: docs/json.md)"},
};
#define NCOMMANDS (int)(sizeof(commands) / sizeof(commands[0]))

static const char about[] =
    "Maps bulk data (huge files, large-page shared sections) through granularity-aligned\n"
    "views and sliding windows.";

static const char exit_status[] =
    "  0    done\n"
    "  1    the work failed: a missing, unreadable or unmappable file, an I/O error, the\n"
    "       source shrank, a section missing, existing, incomplete or corrupt, large pages\n"
    "       required but not had, a resource limit (ulimit -n, -u, -v, -f), or the result\n"
    "       could not be written (a full disk, a closed pipe)\n"
    "  2    usage error: unknown or repeated option, bad size, missing argument, bad name\n"
    "  130  interrupted (SIGINT), after cleaning up: no half-made section is left\n"
    "  128+N  another terminating signal N, after cleaning up (SIGTERM 143, SIGHUP 129,\n"
    "       SIGQUIT 131, SIGXCPU 152: ulimit -t)";

static const char examples[] =
    "  bulkmap scan big.csv                    hash and line count of a file\n"
    "  bulkmap scan --lines --json *.csv       line counts of many files, and the total\n"
    "  zcat log.gz | bulkmap scan - --count ERROR\n"
    "                                          count a literal in a pipe\n"
    "  bulkmap load prices.bin --name prices   share a file as a named section\n"
    "  bulkmap cat prices | cmp - prices.bin   read it back, verified";

/* Every option the commands have, for the short-option list. */
static void all_help(char *buf, size_t n) {
  int i;
  size_t used = 0;
  buf[0] = '\0';
  for (i = 0; i < NCOMMANDS && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, "%s\n", commands[i].help);
}

static void usage_all(FILE *f) {
  int i;
  char help[16384], shorts[512];
  const char *docs = cli_docs_dir();
  all_help(help, sizeof(help));
  cli_short_list(help, shorts, sizeof(shorts));
  fprintf(f, "Usage: bulkmap COMMAND [OPTION]... [ARGUMENT]...\n%s\n\nCommands:\n", about);
  for (i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "  %-7s %s\n", "help", "show this help, or a command's (bulkmap help scan)");
  fprintf(f, "\nOptions:\n"
             "  -h, --help      show this help and exit\n"
             "  -V, --version   show the version and exit\n"
             "Short options, in every command that has the long one: %s.\n"
             "Run 'bulkmap help COMMAND' or 'bulkmap COMMAND --help' for a command's options.\n"
             "\nExit status:\n%s\n\nExamples:\n%s\n", shorts, exit_status, examples);
  if (docs != NULL)
    fprintf(f, "\nDocumentation: %s: design.md (the model, the dataset format, this tool's\n"
               "contract, the Python API), json.md (every JSON key), datasets.md, README.md;\n"
               "man bulkmap.\n", docs);
  else
    fprintf(f, "\nDocumentation: docs/design.md, docs/json.md (every JSON key) and README.md in\n"
               "the source; man bulkmap.\n");
}

static void usage_short(FILE *f) {
  int i;
  const char *p;
  fprintf(f, "Usage:\n");
  for (i = 0; i < NCOMMANDS; i++) {
    fputs("  ", f);
    for (p = commands[i].usage; *p; p++) fputs(*p == '\n' ? "\n  " : (char[2]){*p, 0}, f);
    fputc('\n', f);
  }
  fprintf(f, "  bulkmap help [COMMAND]\n");
  fprintf(f, "  bulkmap --help | -h | --version | -V | COMMAND --help\n");
}

/* The man page: roff from the same text. */
static void roff_text(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (s[i] == '\\') fputs("\\e", stdout);
    else if (s[i] == '-') fputs("\\-", stdout);
    else if ((s[i] == '.' || s[i] == '\'') && (i == 0 || s[i - 1] == '\n')) fputs("\\&", stdout), putchar(s[i]);
    else putchar(s[i]);
  }
}

/* Help text: prose lines, "  --option ARG   what" lines and their continuations. */
static void roff_help(const char *h) {
  const char *line = h, *nl;
  int in_opt = 0;
  while (*line) {
    size_t len;
    nl = strchr(line, '\n');
    len = nl ? (size_t)(nl - line) : strlen(line);
    if (len > 2 && line[0] == ' ' && line[1] == ' ' && line[2] != ' ') {
      /* "  term   description": the term ends at two spaces (or the line). */
      const char *gap = line + 2;
      while (gap < line + len && !(gap[0] == ' ' && gap[1] == ' ')) gap++;
      fputs(".TP\n.B ", stdout);
      roff_text(line + 2, (size_t)(gap - line - 2));
      putchar('\n');
      while (gap < line + len && *gap == ' ') gap++;
      if (gap < line + len) roff_text(gap, (size_t)(line + len - gap)), putchar('\n');
      in_opt = 1;
    } else if (len > 0 && line[0] == ' ') {
      const char *t = line;
      while (t < line + len && *t == ' ') t++;
      roff_text(t, (size_t)(line + len - t));
      putchar('\n');
    } else {
      if (in_opt) fputs(".PP\n", stdout), in_opt = 0;
      roff_text(line, len);
      putchar('\n');
    }
    line = nl ? nl + 1 : line + len;
  }
}

static void print_man(void) {
  int i;
  printf(".\\\" Generated by bulkmap --man from the text of bulkmap --help; do not edit.\n"
         ".TH BULKMAP 1 \"\" \"bulkmap %s\" \"User Commands\"\n"
         ".SH NAME\nbulkmap \\- map bulk data through aligned views and sliding windows\n"
         ".SH SYNOPSIS\n.nf\n",
         bm_version());
  for (i = 0; i < NCOMMANDS; i++) roff_text(commands[i].usage, strlen(commands[i].usage)), putchar('\n');
  printf("bulkmap help [COMMAND]\n"
         "bulkmap \\-\\-help | \\-h | \\-\\-version | \\-V | COMMAND \\-\\-help\n.fi\n"
         ".SH DESCRIPTION\n");
  roff_text(about, strlen(about));
  printf("\n.SH COMMANDS\n");
  for (i = 0; i < NCOMMANDS; i++) {
    printf(".SS %s\n.nf\n", commands[i].name);
    roff_text(commands[i].usage, strlen(commands[i].usage));
    printf("\n.fi\n");
    roff_text(commands[i].summary, strlen(commands[i].summary));
    printf(".\n.PP\n");
    roff_help(commands[i].help);
  }
  printf(".SH OPTIONS\n.TP\n.B \\-h, \\-\\-help\nshow this help and exit\n"
         ".TP\n.B \\-V, \\-\\-version\nshow the version and exit\n.PP\n"
         "Short options, in every command that has the long one: ");
  {
    char help[16384], shorts[512];
    all_help(help, sizeof(help));
    cli_short_list(help, shorts, sizeof(shorts));
    roff_text(shorts, strlen(shorts));
  }
  printf(".\n.SH EXIT STATUS\n");
  roff_help(exit_status);
  printf(".SH EXAMPLES\n");
  roff_help(examples);
  printf(".SH FILES\n.TP\n.I /usr/share/doc/bulkmap\n"
         "design.md (the model, the dataset format and states, the tool's contract, the Python\n"
         "API), json.md (every JSON key), datasets.md, README.md (under the install prefix)\n");
  printf(".SH SEE ALSO\n.BR wc (1),\n.BR xxhsum (1),\n.BR mmap (2)\n");
}

/* "unknown command" in one line, with the nearest command when one is near. */
static int unknown_command(const char *word) {
  const char *names[NCOMMANDS + 1], *best; /* (not "near": a macro of the Windows headers) */
  int i;
  for (i = 0; i < NCOMMANDS; i++) names[i] = commands[i].name;
  names[NCOMMANDS] = "help";
  best = cli_suggest(word, names, NCOMMANDS + 1);
  if (best != NULL) cli_error("bulkmap", "unknown command '%s'; did you mean '%s'?", word, best);
  else cli_error("bulkmap", "unknown command '%s'", word);
  fprintf(stderr, "Try 'bulkmap help' for the list of commands.\n");
  return EXIT_USAGE;
}

/* `bulkmap help [COMMAND]`: the overview, or a command's help (as COMMAND --help). */
static int help_command(int argc, char **argv) {
  if (argc < 3) {
    usage_all(stdout);
    return EXIT_DONE;
  }
  if (argc > 3) {
    cli_error("help", "one COMMAND at most ('%s' is one too many)", argv[3]);
    return EXIT_USAGE;
  }
  if (strcmp(argv[2], "help") == 0) {
    printf("Usage: bulkmap help [COMMAND]\nShows the overview of the commands, or the help of "
           "COMMAND (as bulkmap COMMAND --help).\n");
    return EXIT_DONE;
  }
  if (cli_help(argv[2]) != 0) return unknown_command(argv[2]);
  return EXIT_DONE;
}

/* --json asked for (--json or -j before a "--"), for a command that has it: the guess that
 * serves a usage error met before cli_parse reached it; cli_parse then says for sure. */
static void json_guess(const cli_cmd_t *c, int argc, char **argv) {
  int i;
  if (strstr(c->help, "--json") == NULL) return;
  for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0) cli_json_mode(1);
}

/* Hidden, for the tests: `bulkmap --progress-line WIDTH ELAPSED DONE TOTAL`. */
static int progress_line(int argc, char **argv) {
  char line[256];
  if (argc != 6) return EXIT_USAGE;
  progress_format(line, sizeof(line), atoi(argv[2]), atof(argv[3]),
                  strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10));
  printf("%s\n", line);
  return EXIT_DONE;
}

int main(int argc, char **argv) {
  int i;
  plat_keep_std_fds();
  cli_commands_set(commands, NCOMMANDS);
  cli_signals_init();
  if (argc < 2) {
    cli_error("bulkmap", "missing COMMAND");
    usage_short(stderr);
    fprintf(stderr, "Try 'bulkmap --help' for more information.\n");
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage_all(stdout);
    return cli_finish("bulkmap", EXIT_DONE);
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
    printf("bulkmap %s\n", bm_version());
    return cli_finish("bulkmap", EXIT_DONE);
  }
  if (strcmp(argv[1], "--man") == 0) {
    print_man();
    return cli_finish("bulkmap", EXIT_DONE);
  }
  if (strcmp(argv[1], "--progress-line") == 0) return cli_finish("bulkmap", progress_line(argc, argv));
  for (i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, argv[1]) == 0) {
      cli_command = commands[i].name;
      json_guess(&commands[i], argc - 1, argv + 1);
      if (cli_limits_init() != 0) return cli_finish(commands[i].name, EXIT_FAILED);
      return cli_finish(commands[i].name, commands[i].fn(argc - 1, argv + 1));
    }
  if (strcmp(argv[1], "help") == 0) return cli_finish("bulkmap", help_command(argc, argv));
  return unknown_command(argv[1]);
}
