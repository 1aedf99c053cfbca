/* Test helpers: see check.h. */
#include "check.h"

#include <math.h>
#include <stdio.h>

void nde_test_check_close(double a, double b, double tol, const char *sa, const char *sb,
                          const char *file, int line) {
  double scale = fmax(1.0, fmax(fabs(a), fabs(b)));
  if (!(fabs(a - b) <= tol * scale)) {
    print_error("%s:%d: %s = %.17g and %s = %.17g differ by %.3g (tolerance %.3g)\n", file, line,
                sa, a, sb, b, fabs(a - b) / scale, tol);
    _fail(file, line);
  }
}

void nde_test_check_rel(double a, double b, double tol, double floor, const char *sa,
                        const char *sb, const char *file, int line) {
  double scale = fmax(floor, fmax(fabs(a), fabs(b)));
  if (!(fabs(a - b) <= tol * scale)) {
    print_error("%s:%d: %s = %.17g and %s = %.17g: relative difference %.3g > %.3g\n", file,
                line, sa, a, sb, b, fabs(a - b) / scale, tol);
    _fail(file, line);
  }
}

double nde_test_rel_err(size_t n, const double *a, const double *b, double floor) {
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; i++) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  double den = fmax(floor, fmax(sqrt(na), sqrt(nb)));
  return sqrt(d) / den;
}

void nde_test_fill(nde_rng *rng, size_t n, double lo, double hi, double *x) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * nde_rng_uniform(rng);
}

double nde_test_dot(size_t n, const double *a, const double *b) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
