/* What the result-layer tests share: a scratch directory per test program, models from source
 * text, and data files opened for a model's states (fixture.c). */
#ifndef NDE_TESTS_RESULT_FIXTURE_H
#define NDE_TESTS_RESULT_FIXTURE_H

#include "nde/nde.h"

/* cmocka group setup and teardown: a fresh directory /tmp/nde_test_TAG_XXXXXX, removed after. */
int fx_scratch_create(const char *tag);
int fx_scratch_remove(void);
/* name inside the scratch directory (one of four rotating buffers: use at once or copy). */
char *path_of(const char *name);
/* A model from source text; fails the test with the model's message otherwise. */
nde_model *load(const char *src);
/* file opened for m's state components; fails the test with the message otherwise. */
nde_data *open_data(const char *file, const nde_model *m);

#endif
