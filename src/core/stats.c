/* Order statistics shared by ensembles (parameter spreads, bands) and stability selection
 * (coefficient intervals over members). */
#include <math.h>
#include <stdlib.h>

#include "core/internal.h"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

void nde__sort_doubles(double *v, size_t n) { qsort(v, n, sizeof *v, cmp_double); }

double nde__quantile_sorted(const double *v, int n, double p) {
  if (n <= 0) return NAN;
  const double h = (n - 1) * p;
  const int i = (int)floor(h);
  return i + 1 < n ? v[i] + (h - i) * (v[i + 1] - v[i]) : v[n - 1];
}
