/* Sample states in a box around given points (the fitted trajectories), for probing a trained
 * network a little beyond where the data put it. */
#include <math.h>

#include "nde/discover.h"

void nde_sample_box(size_t n_pts, int n, const double *P, double margin, size_t N, nde_rng *rng,
                    double *OUT) {
  if (!P || !rng || !OUT || n < 1 || n_pts == 0) return;
  for (int j = 0; j < n; j++) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n_pts; i++) {
      double v = P[i * (size_t)n + (size_t)j];
      if (!isfinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(lo <= hi)) lo = hi = 0.0;
    double w = hi - lo;
    if (w <= 0.0) w = lo != 0.0 ? fabs(lo) : 1.0;
    lo -= margin * w;
    hi += margin * w;
    for (size_t i = 0; i < N; i++) OUT[i * (size_t)n + (size_t)j] = lo + (hi - lo) * nde_rng_uniform(rng);
  }
}
