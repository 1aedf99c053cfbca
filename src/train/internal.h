/* Internal interface of the train layer: testing hooks that are not part of the public API. */
#ifndef NDE_TRAIN_INTERNAL_H
#define NDE_TRAIN_INTERNAL_H

#include "core/internal.h"
#include "nde/train.h"

/* Testing hook: evaluation number n (1-based, counting training evaluations) returns a NaN
 * loss, as if the solve had failed; 0 turns it off.  Used by the unit tests and, in builds
 * configured with -Dtest_hooks=true, by the fit driver (environment NDE_TEST_NAN_EVAL). */
void nde__train_set_test_nan_eval(nde_train *t, long n);

#endif
