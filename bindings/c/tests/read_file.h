/* Reading a whole file into a NUL-terminated string (the test programs' one helper). */
#ifndef DEVADDR_TEST_READ_FILE_H
#define DEVADDR_TEST_READ_FILE_H

#include <stdio.h>
#include <stdlib.h>

/* The contents of `path` (malloc'd, caller frees), or exit 3 when it cannot be read. */
static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(3);
  }
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t n;
  while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len - 1 == 0) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  fclose(f);
  if (!buf) {
    fputs("out of memory\n", stderr);
    exit(3);
  }
  buf[len] = '\0';
  return buf;
}

#endif
