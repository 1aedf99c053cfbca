/* Reproducible sums by pre-rounding (Demmel & Nguyen 2013): every contribution to component i is
 * cut 64 bits below the bound 2^e_i into two signed 32-bit digits, and digits are summed as
 * 64-bit integers, so the sum does not depend on the order or the grouping of the contributions.
 * See core/internal.h for the error bound. */
#include <math.h>

#include "internal.h"

void nde__rsum_exp(size_t n, const double *v, int *e) {
  for (size_t i = 0; i < n; i++) {
    const double x = v[i];
    if (x == 0.0) continue;
    if (!isfinite(x)) {
      e[i] = NDE__RSUM_NONFINITE;
      continue;
    }
    int ex;
    frexp(x, &ex); /* |x| < 2^ex */
    if (ex > e[i]) e[i] = ex;
  }
}

void nde__rsum_add(size_t n, const double *v, const int *e, int64_t *acc) {
  for (size_t i = 0; i < n; i++) {
    const double x = v[i];
    if (x == 0.0 || e[i] == NDE__RSUM_NONFINITE || e[i] == NDE__RSUM_NONE) continue;
    /* |y| < 2^32; y - trunc(y) is exact, and so is the scaling of the remainder. */
    const double y = ldexp(x, 32 - e[i]);
    const double d0 = trunc(y);
    const double d1 = trunc(ldexp(y - d0, 32));
    acc[2 * i] += (int64_t)d0;
    acc[2 * i + 1] += (int64_t)d1;
  }
}

void nde__rsum_get(size_t n, const int *e, const int64_t *acc, double *out) {
  for (size_t i = 0; i < n; i++) {
    if (e[i] == NDE__RSUM_NONE) {
      out[i] = 0.0;
    } else if (e[i] == NDE__RSUM_NONFINITE) {
      out[i] = NAN;
    } else {
      /* Carry the low digit's whole multiples of 2^32 into the high one, so that both convert
       * exactly (for fewer than 2^21 contributions) and the sum below rounds once. */
      int64_t hi = acc[2 * i], lo = acc[2 * i + 1];
      const int64_t carry = lo / ((int64_t)1 << 32);
      hi += carry;
      lo -= carry * ((int64_t)1 << 32);
      out[i] = ldexp((double)hi, e[i] - 32) + ldexp((double)lo, e[i] - 64);
    }
  }
}
