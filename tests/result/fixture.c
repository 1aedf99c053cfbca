/* The shared pieces of the result-layer tests (fixture.h). */
#include "fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char scratch[256];

int fx_scratch_create(const char *tag) {
  snprintf(scratch, sizeof scratch, "/tmp/nde_test_%s_XXXXXX", tag);
  return mkdtemp(scratch) ? 0 : -1;
}

int fx_scratch_remove(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
  return system(cmd) == 0 ? 0 : -1;
}

char *path_of(const char *name) {
  static char buf[4][400];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", scratch, name);
  return buf[k];
}

nde_model *load(const char *src) {
  nde_model *m = NULL;
  nde_error err;
  if (nde_model_load_string(src, strlen(src), "test.nde", &m, &err) != NDE_OK)
    fail_msg("model: %s", err.msg);
  return m;
}

nde_data *open_data(const char *file, const nde_model *m) {
  const char *names[8];
  const int n = nde_model_state_dim(m);
  if (n > 8) fail_msg("open_data: %d states (at most 8 here)", n);
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  nde_data *d = NULL;
  nde_error err;
  if (nde_data_open(file, (size_t)n, names, NULL, &d, &err) != NDE_OK)
    fail_msg("data: %s", err.msg);
  return d;
}
