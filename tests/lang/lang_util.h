/* Helpers shared by the language tests: load a model from a string or from models/, fail the
 * test with the model's messages when it does not compile. */
#ifndef NDE_TEST_LANG_UTIL_H
#define NDE_TEST_LANG_UTIL_H

#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nde/model.h"

static inline nde_model *load_ok(const char *src) {
  nde_model *m = NULL;
  nde_status st = nde_model_load_string(src, strlen(src), "test.nde", &m, NULL);
  if (st != NDE_OK) {
    print_error("model did not compile (%s):\n%s", nde_status_str(st), nde_model_errmsg(m));
    nde_model_destroy(&m);
    fail();
  }
  return m;
}

static inline nde_model *load_model_file(const char *name) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", NDE_MODELS_DIR, name);
  nde_model *m = NULL;
  nde_status st = nde_model_load_file(path, &m, NULL);
  if (st != NDE_OK) {
    print_error("%s did not compile (%s):\n%s", path, nde_status_str(st), nde_model_errmsg(m));
    nde_model_destroy(&m);
    fail();
  }
  return m;
}

#endif
