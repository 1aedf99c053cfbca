/* Fuzz target of the option strings the library parses: fit schedules
 * ("shoot:adam:3000@0.05,lbfgs:1000"), candidate libraries ("poly:3,sin,noconst"), solver method
 * names, and data paths with group selectors ("FILE.h5:/group", for a file that does not exist).
 * A success must give values in range; a failure a one-line message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nde/nde.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_msg(nde_status st, const nde_error *e) {
  if (st == NDE_OK) return;
  size_t len = strnlen(e->msg, sizeof e->msg);
  if (len == 0 || len == sizeof e->msg) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *s = malloc(size + 1);
  if (!s) return 0;
  memcpy(s, data, size);
  s[size] = '\0';

  nde_fit_phase phases[NDE_MAX_PHASES];
  int n = -1;
  nde_error e;
  nde_status st = nde_fit_schedule_parse(s, 0.01, phases, &n, &e);
  check_msg(st, &e);
  if (st == NDE_OK) {
    if (n < 1 || n > NDE_MAX_PHASES) abort();
    for (int i = 0; i < n; i++)
      if (phases[i].iters < 0 || !(phases[i].lr > 0)) abort();
  }
  nde_library_opts lo = nde_library_opts_default();
  st = nde_library_opts_parse(s, &lo, &e);
  check_msg(st, &e);
  if (st == NDE_OK && lo.poly_degree < 0) abort();
  volatile int known = nde_solver_method_known(s);
  (void)known;

  /* A path that names no file: only the split at ":/" and the messages are exercised. */
  char *p = malloc(size + 32);
  if (p) {
    memcpy(p, "/nonexistent-nde-fuzz/", 22);
    memcpy(p + 22, s, size + 1);
    nde_data *d = NULL;
    st = nde_data_open(p, 0, NULL, NULL, &d, &e);
    if (st == NDE_OK) abort();
    check_msg(st, &e);
    free(p);
  }
  free(s);
  return 0;
}
