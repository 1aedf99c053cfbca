/* Internal interface of the train layer: testing hooks that are not part of the public API. */
#ifndef NDE_TRAIN_INTERNAL_H
#define NDE_TRAIN_INTERNAL_H

#include "comm_internal.h"
#include "core/internal.h"
#include "nde/train.h"

/* OpenBLAS's thread count, and setting it (n >= 1; returns the previous count).  Process-wide:
 * the fit driver sets one thread while nde's own threads work and restores the count after. */
int nde__blas_threads(void);
int nde__blas_set_threads(int n);
/* Hold OpenBLAS at one thread while a problem lives (counted over concurrent problems: the last
 * release restores the count the first hold found). */
void nde__blas_hold_one(void);
void nde__blas_release(void);

/* Testing hook: evaluations of f use its threads when the previous one's work was at least
 * seconds (default NDE_FIT_POOL_MIN_SECONDS; 0: always), so that tests of small problems run on
 * every thread. */
void nde__fit_set_pool_min(nde_fit *f, double seconds);

/* The communicator f evaluates with (NULL: this process alone). */
nde_comm *nde__fit_comm(const nde_fit *f);

/* Testing hook: evaluation number n (1-based, counting training evaluations) returns a NaN
 * loss, as if the solve had failed; 0 turns it off.  Used by the unit tests and, in builds
 * configured with -Dtest_hooks=true, by the fit driver (environment NDE_TEST_NAN_EVAL). */
void nde__train_set_test_nan_eval(nde_train *t, long n);
/* Testing hook: the loss of the iterates [from, from + count) of the history is multiplied by
 * factor, both where the phase evaluates them and where a resume point scores them (a finite
 * blow-up that the guard does not see). */
void nde__train_set_test_scale_eval(nde_train *t, long from, long count, double factor);

#endif
