/* du/dt = a u + c cos(t): see linear_ode.h.  Its solution is the particular part
 * p cos t + q sin t (p = -a c / (1 + a^2), q = c / (1 + a^2)) plus a multiple of exp(a t). */
#include "linear_ode.h"

#include <math.h>

static int lin_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                 double *cache) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) dU[b] = th[0] * U[b] + th[1] * cos(t);
  return 0;
}

static int lin_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                   const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) {
    if (gU) gU[b] += th[0] * L[b];
    if (gth) {
      gth[0] += L[b] * U[b];
      gth[1] += L[b] * cos(t);
    }
  }
  return 0;
}

const nde_rhs_ops nde_test_linear_ops = {.f = lin_f, .vjp = lin_vjp, .jvp = NULL, .destroy = NULL};
const double nde_test_linear_theta[2] = {-0.7132, 1.4418};
const double nde_test_linear_u0[3] = {0.3871, -1.2093, 2.0411};

double nde_test_linear_exact(const double *theta, double t0, double u0, double t) {
  const double a = theta[0], c = theta[1];
  const double p = -a * c / (1 + a * a), q = c / (1 + a * a);
  const double k = (u0 - p * cos(t0) - q * sin(t0)) * exp(-a * t0);
  return p * cos(t) + q * sin(t) + k * exp(a * t);
}

nde_rhs *nde_test_linear_rhs(int max_batch) {
  const nde_rhs_info info = {1, 2, max_batch, 0, NULL};
  nde_rhs *rhs = NULL;
  if (nde_rhs_create(&nde_test_linear_ops, NULL, NDE_BORROW, &info, &rhs, NULL) != NDE_OK)
    return NULL;
  return rhs;
}
