/* The squared error at observation times with missing values masked (NaN observations). */
#include <math.h>
#include <string.h>

#include "nde/grad.h"

int nde_obs_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                      double *dLdY) {
  const nde_obs_loss *lo = ctx;
  if (!lo || !lo->obs || !Y || !L) return -1;
  const size_t len = (size_t)n_obs * (size_t)B * (size_t)n;
  double sum = 0.0;
  size_t count = 0;
  if (dLdY && !lo->weight && !lo->log_space) {
    /* One pass: the count first (the scale of dLdY), then the sum and dLdY together, the same
     * operations in the same order as below. */
    for (size_t q = 0; q < len; q++) count += !isnan(lo->obs[q]);
    const double scale = lo->mean ? (count ? 1.0 / (double)count : 0.0) : 1.0;
    const double c2 = scale * 2.0;
    for (size_t q = 0; q < len; q++) {
      const double o = lo->obs[q];
      if (isnan(o)) {
        dLdY[q] = 0.0;
        continue;
      }
      const double r = Y[q] - o;
      sum += 1.0 * r * r;
      dLdY[q] = c2 * 1.0 * r;
    }
    *L = scale * sum;
    return 0;
  }
  for (size_t q = 0; q < len; q++) {
    const double o = lo->obs[q];
    if (isnan(o)) continue;
    const double w = lo->weight ? lo->weight[q % (size_t)n] : 1.0;
    const double r = lo->log_space ? log(Y[q]) - log(o) : Y[q] - o;
    sum += w * r * r;
    count++;
  }
  const double scale = lo->mean ? (count ? 1.0 / (double)count : 0.0) : 1.0;
  *L = scale * sum;
  if (dLdY) {
    for (size_t q = 0; q < len; q++) {
      const double o = lo->obs[q];
      if (isnan(o)) {
        dLdY[q] = 0.0;
        continue;
      }
      const double w = lo->weight ? lo->weight[q % (size_t)n] : 1.0;
      if (lo->log_space)
        dLdY[q] = scale * 2.0 * w * (log(Y[q]) - log(o)) / Y[q];
      else
        dLdY[q] = scale * 2.0 * w * (Y[q] - o);
    }
  }
  return 0;
}
