/* Reproducible sums by pre-rounding (Demmel & Nguyen 2013): every contribution to component i is
 * cut 64 bits below the bound 2^e_i into two signed 32-bit digits, and digits are summed as
 * 64-bit integers, so the sum does not depend on the order or the grouping of the contributions.
 * See core/internal.h for the error bound.  The exponent is read from the bits and the scaling is
 * a multiplication by a power of two (exact), with frexp/ldexp only at the ends of the range. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* 2^k for k in [-1022, 1023], built from its bits. */
static inline double pow2(int k) {
  const uint64_t b = (uint64_t)(k + 1023) << 52;
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

void nde__rsum_exp(size_t n, const double *v, int *e) {
  for (size_t i = 0; i < n; i++) {
    const double x = v[i];
    if (x == 0.0) continue;
    uint64_t b;
    memcpy(&b, &x, sizeof b);
    const int biased = (int)((b >> 52) & 0x7ff);
    int ex;
    if (biased == 0x7ff) {
      /* The largest code wins (across ranks too): NaN or -inf over +inf over any exponent. */
      const int code = x == INFINITY ? NDE__RSUM_POSINF : NDE__RSUM_NONFINITE;
      if (code > e[i]) e[i] = code;
      continue;
    }
    if (biased == 0)
      frexp(x, &ex); /* subnormal */
    else
      ex = biased - 1022; /* |x| < 2^ex, as frexp */
    if (ex > e[i]) e[i] = ex;
  }
}

void nde__rsum_add(size_t n, const double *v, const int *e, int64_t *acc) {
  for (size_t i = 0; i < n; i++) {
    const double x = v[i];
    const int ei = e[i];
    if (x == 0.0 || ei == NDE__RSUM_NONFINITE || ei == NDE__RSUM_POSINF || ei == NDE__RSUM_NONE)
      continue;
    /* y = x 2^(32 - e_i), |y| < 2^32: exact (a power of two, or ldexp at the ends of the
     * range); the casts truncate toward zero and y - d0 is exact. */
    const int k = 32 - ei;
    const double y = k >= -1022 && k <= 1023 ? x * pow2(k) : ldexp(x, k);
    const int64_t d0 = (int64_t)y;
    const int64_t d1 = (int64_t)((y - (double)d0) * 4294967296.0);
    acc[2 * i] += d0;
    acc[2 * i + 1] += d1;
  }
}

void nde__rsum_get(size_t n, const int *e, const int64_t *acc, double *out) {
  for (size_t i = 0; i < n; i++) {
    if (e[i] == NDE__RSUM_NONE) {
      out[i] = 0.0;
    } else if (e[i] == NDE__RSUM_NONFINITE) {
      out[i] = NAN;
    } else if (e[i] == NDE__RSUM_POSINF) {
      out[i] = INFINITY;
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
