/* Replay driver of a fuzz target: runs LLVMFuzzerTestOneInput over every file named on the command
 * line, or every file in a directory named there, so that the committed corpus (seeds and every
 * input a fuzzer ever crashed on) runs in the normal test suite without libFuzzer.  A crash or a
 * sanitizer report fails the test; so does an empty corpus. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    return 0;
  }
  size_t cap = 1 << 16, len = 0, k;
  uint8_t *buf = malloc(cap);
  while (buf && (k = fread(buf + len, 1, cap - len, f)) > 0) {
    len += k;
    if (len == cap) {
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) return 0;
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 1;
}

int main(int argc, char **argv) {
  int n = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    if (!d) {
      if (replay_file(argv[i]))
        n++;
      else
        bad++;
      continue;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.') continue;
      size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
      char *path = malloc(len);
      if (!path) return 1;
      snprintf(path, len, "%s/%s", argv[i], e->d_name);
      if (replay_file(path))
        n++;
      else
        bad++;
      free(path);
    }
    closedir(d);
  }
  printf("replayed %d inputs\n", n);
  return bad == 0 && n > 0 ? 0 : 1;
}
