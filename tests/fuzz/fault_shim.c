/* An LD_PRELOAD shim that makes write(2), pwrite(2) or fsync(2) on regular files fail with ENOSPC
 * from the n-th call on (a full disk stays full), for the fault tests of the atomic writer.
 *   NDE_FAULT=write:N | pwrite:N | fsync:N   fail that call from its N-th use (1-based)
 *   NDE_FAULT=count                          fail nothing
 *   NDE_FAULT_SHORT=B                        write at most B bytes per write/pwrite (short writes)
 *   NDE_FAULT_LOG=FILE                       at exit, append "write W pwrite P fsync F" (the calls
 *                                            on regular files) to FILE
 * Standard streams (fd 0-2) and anything but regular files are never counted or failed. */
/* Both pwrite and pwrite64 are defined below: no redirection of one to the other. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* The interposed functions are exported whatever the default visibility. */
#define SHIM __attribute__((visibility("default")))

enum { CALL_WRITE, CALL_PWRITE, CALL_FSYNC, CALL_NONE };
static const char *const call_names[3] = {"write", "pwrite", "fsync"};
static int target = CALL_NONE, ready;
static long fail_from, counts[3];
static size_t short_bytes;

static void setup(void) {
  if (ready) return;
  ready = 1;
  const char *f = getenv("NDE_FAULT");
  if (f) {
    for (int c = 0; c < 3; c++) {
      size_t l = strlen(call_names[c]);
      if (!strncmp(f, call_names[c], l) && f[l] == ':') {
        target = c;
        fail_from = strtol(f + l + 1, NULL, 10);
      }
    }
  }
  const char *s = getenv("NDE_FAULT_SHORT");
  if (s) short_bytes = (size_t)strtoul(s, NULL, 10);
}

static int counted(int fd) {
  struct stat sb;
  return fd > 2 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Count the call; 1 when it must fail. */
static int fault(int call, int fd) {
  setup();
  if (!counted(fd)) return 0;
  counts[call]++;
  return call == target && fail_from > 0 && counts[call] >= fail_from;
}

SHIM ssize_t write(int fd, const void *buf, size_t n) {
  static ssize_t (*real)(int, const void *, size_t);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "write");
  if (fault(CALL_WRITE, fd)) {
    errno = ENOSPC;
    return -1;
  }
  if (short_bytes && n > short_bytes && counted(fd)) n = short_bytes;
  return real(fd, buf, n);
}

SHIM ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "pwrite");
  if (fault(CALL_PWRITE, fd)) {
    errno = ENOSPC;
    return -1;
  }
  if (short_bytes && n > short_bytes && counted(fd)) n = short_bytes;
  return real(fd, buf, n, off);
}

SHIM ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off);
SHIM ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  return pwrite(fd, buf, n, off);
}

SHIM int fsync(int fd) {
  static int (*real)(int);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "fsync");
  if (fault(CALL_FSYNC, fd)) {
    errno = ENOSPC;
    return -1;
  }
  return real(fd);
}

__attribute__((destructor)) static void report(void) {
  const char *log = getenv("NDE_FAULT_LOG");
  if (!log) return;
  FILE *f = fopen(log, "a");
  if (!f) return;
  fprintf(f, "write %ld pwrite %ld fsync %ld\n", counts[0], counts[1], counts[2]);
  fclose(f);
}
