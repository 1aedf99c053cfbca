/* Test helpers on top of cmocka: numeric comparisons that print both values, finite-difference
 * checks, and deterministic high-entropy inputs. */
#ifndef NDE_TEST_CHECK_H
#define NDE_TEST_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nde/core.h"

/* |a - b| <= tol * max(1, |a|, |b|) (relative, with an absolute floor of tol at scale 1). */
#define check_close(a, b, tol) nde_test_check_close((a), (b), (tol), #a, #b, __FILE__, __LINE__)
void nde_test_check_close(double a, double b, double tol, const char *sa, const char *sb,
                          const char *file, int line);

/* |a - b| <= tol * max(|a|, |b|, floor): a relative comparison for values of any scale. */
#define check_rel(a, b, tol, floor) \
  nde_test_check_rel((a), (b), (tol), (floor), #a, #b, __FILE__, __LINE__)
void nde_test_check_rel(double a, double b, double tol, double floor, const char *sa,
                        const char *sb, const char *file, int line);

/* Relative error of two vectors in the 2-norm: |a - b| / max(|a|, |b|, floor). */
double nde_test_rel_err(size_t n, const double *a, const double *b, double floor);

/* Fill x with uniform values in [lo, hi) from rng. */
void nde_test_fill(nde_rng *rng, size_t n, double lo, double hi, double *x);

/* Dot product. */
double nde_test_dot(size_t n, const double *a, const double *b);

#endif
