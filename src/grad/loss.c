/* The squared error at observation times with missing values masked (NaN observations). */
#include <math.h>
#include <string.h>

#include "nde/grad.h"

int nde_obs_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                      double *dLdY) {
  const nde_obs_loss *lo = ctx;
  if (!lo || !lo->obs || !Y || !L) return -1;
  const size_t len = (size_t)n_obs * (size_t)B * (size_t)n;
  /* The observed entries are counted first (the mean's scale, which dLdY needs), so that the
   * sum and dLdY take one pass over the data. */
  size_t count = 0;
  for (size_t q = 0; q < len; q++) count += !isnan(lo->obs[q]);
  const double scale = lo->mean ? (count ? 1.0 / (double)count : 0.0) : 1.0;
  double sum = 0.0;
  for (size_t q = 0; q < len; q++) {
    const double o = lo->obs[q];
    if (isnan(o)) {
      if (dLdY) dLdY[q] = 0.0;
      continue;
    }
    const double w = lo->weight ? lo->weight[q % (size_t)n] : 1.0;
    const double r = lo->log_space ? log(Y[q]) - log(o) : Y[q] - o;
    sum += w * r * r;
    if (dLdY) dLdY[q] = lo->log_space ? scale * 2.0 * w * r / Y[q] : scale * 2.0 * w * r;
  }
  *L = scale * sum;
  return 0;
}
