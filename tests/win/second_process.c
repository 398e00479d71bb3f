/* The "second process" of Microsoft's "Creating Named Shared Memory" sample, kept as
 * plain Win32 (nothing of bulkmap): opens a named file mapping with OpenFileMappingW,
 * maps a view with MapViewOfFile and checks its bytes.
 *   second_process NAME --pattern N     the first N bytes are (i * 31 + 7) & 0xff
 *   second_process NAME --expect FILE   the first bytes equal the whole of FILE
 * Prints the first bytes it read and exits 0 when they match, 1 when not, 2 on error. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int widen(const char *s, WCHAR *out, int cap) {
  return MultiByteToWideChar(CP_UTF8, 0, s, -1, out, cap) > 0;
}

int main(int argc, char **argv) {
  WCHAR name[300];
  HANDLE hMapFile, hFile = INVALID_HANDLE_VALUE;
  const unsigned char *pBuf;
  unsigned long long n = 0, i;
  int bad = 0;

  if (argc != 4 || !widen(argv[1], name, 300) ||
      (strcmp(argv[2], "--pattern") != 0 && strcmp(argv[2], "--expect") != 0)) {
    fprintf(stderr, "usage: second_process NAME --pattern N | --expect FILE\n");
    return 2;
  }
  hMapFile = OpenFileMappingW(FILE_MAP_READ, FALSE, name);
  if (hMapFile == NULL) {
    fprintf(stderr, "second_process: could not open file mapping object %s (%lu).\n", argv[1],
            (unsigned long)GetLastError());
    return 2;
  }
  pBuf = (const unsigned char *)MapViewOfFile(hMapFile, FILE_MAP_READ, 0, 0, 0);
  if (pBuf == NULL) {
    fprintf(stderr, "second_process: could not map view of file (%lu).\n",
            (unsigned long)GetLastError());
    CloseHandle(hMapFile);
    return 2;
  }
  if (strcmp(argv[2], "--pattern") == 0) {
    n = strtoull(argv[3], NULL, 10);
    for (i = 0; i < n; i++)
      if (pBuf[i] != (unsigned char)((i * 31 + 7) & 0xff)) {
        bad = 1;
        fprintf(stderr, "second_process: byte %llu is %u\n", i, pBuf[i]);
        break;
      }
  } else {
    WCHAR path[MAX_PATH];
    unsigned char buf[65536];
    DWORD got;
    if (!widen(argv[3], path, MAX_PATH) ||
        (hFile = CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                             OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL)) == INVALID_HANDLE_VALUE) {
      fprintf(stderr, "second_process: cannot open %s (%lu)\n", argv[3], (unsigned long)GetLastError());
      return 2;
    }
    while (!bad && ReadFile(hFile, buf, sizeof(buf), &got, NULL) && got > 0) {
      if (memcmp(pBuf + n, buf, got) != 0) bad = 1;
      n += got;
    }
    CloseHandle(hFile);
  }
  printf("second_process: %s: %llu bytes %s; first bytes:", argv[1], n, bad ? "DIFFER" : "match");
  for (i = 0; i < n && i < 16; i++) printf(" %02x", pBuf[i]);
  printf("\n");
  UnmapViewOfFile(pBuf);
  CloseHandle(hMapFile);
  return bad;
}
