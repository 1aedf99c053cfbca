/* Separable test right-hand sides with dependency matrices: see split_models.h. */
#include "split_models.h"

#include <math.h>
#include <stddef.h>

/* ---- oscillator ---- */

static const unsigned char osc_dep[4] = {0, 1, 1, 0};

static int osc_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                 double *cache) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) {
    dU[2 * b] = th[0] * U[2 * b + 1];
    dU[2 * b + 1] = -th[1] * U[2 * b] + th[2] * cos(t);
  }
  return 0;
}

static int osc_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                   const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) {
    const double l0 = L[2 * b], l1 = L[2 * b + 1];
    if (gU) {
      gU[2 * b] += -th[1] * l1;
      gU[2 * b + 1] += th[0] * l0;
    }
    if (gth) {
      gth[0] += l0 * U[2 * b + 1];
      gth[1] += -l1 * U[2 * b];
      gth[2] += l1 * cos(t);
    }
  }
  return 0;
}

static int osc_jvp(void *ctx, double t, int B, const double *U, const double *th, const double *V,
                   const double *Vth, double *JV) {
  (void)ctx;
  for (int b = 0; b < B; b++) {
    double j0 = 0, j1 = 0;
    if (V) {
      j0 = th[0] * V[2 * b + 1];
      j1 = -th[1] * V[2 * b];
    }
    if (Vth) {
      j0 += Vth[0] * U[2 * b + 1];
      j1 += -Vth[1] * U[2 * b] + Vth[2] * cos(t);
    }
    JV[2 * b] = j0;
    JV[2 * b + 1] = j1;
  }
  return 0;
}

static const nde_rhs_ops osc_ops = {.f = osc_f, .vjp = osc_vjp, .jvp = osc_jvp};

nde_status nde_test_oscillator(int max_batch, nde_rhs **out) {
  const nde_rhs_info info = {2, 3, max_batch, 0, osc_dep};
  return nde_rhs_create(&osc_ops, NULL, NDE_BORROW, &info, out, NULL);
}

void nde_test_oscillator_exact(const double *th, double t0, double q0, double p0, double t,
                               double *q, double *p) {
  const double a = th[0], b = th[1], c = th[2], w = sqrt(a * b);
  const double A = a * c / (a * b - 1.0); /* particular solution q = A cos t */
  const double Q = q0 - A * cos(t0), P = (a * p0 + A * sin(t0)) / w;
  const double C1 = Q * cos(w * t0) - P * sin(w * t0), C2 = Q * sin(w * t0) + P * cos(w * t0);
  *q = C1 * cos(w * t) + C2 * sin(w * t) + A * cos(t);
  *p = (w * (-C1 * sin(w * t) + C2 * cos(w * t)) - A * sin(t)) / a;
}

/* ---- pendulum ---- */

static int pend_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                  double *cache) {
  (void)ctx;
  (void)t;
  (void)cache;
  for (int b = 0; b < B; b++) {
    dU[2 * b] = U[2 * b + 1];
    dU[2 * b + 1] = -th[0] * sin(U[2 * b]);
  }
  return 0;
}

static int pend_vjp(void *ctx, double t, int B, const double *U, const double *th,
                    const double *L, const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)t;
  (void)cache;
  for (int b = 0; b < B; b++) {
    if (gU) {
      gU[2 * b] += -th[0] * cos(U[2 * b]) * L[2 * b + 1];
      gU[2 * b + 1] += L[2 * b];
    }
    if (gth) gth[0] += -sin(U[2 * b]) * L[2 * b + 1];
  }
  return 0;
}

static int pend_jvp(void *ctx, double t, int B, const double *U, const double *th,
                    const double *V, const double *Vth, double *JV) {
  (void)ctx;
  (void)t;
  for (int b = 0; b < B; b++) {
    JV[2 * b] = V ? V[2 * b + 1] : 0.0;
    JV[2 * b + 1] = (V ? -th[0] * cos(U[2 * b]) * V[2 * b] : 0.0) +
                    (Vth ? -Vth[0] * sin(U[2 * b]) : 0.0);
  }
  return 0;
}

static const nde_rhs_ops pend_ops = {.f = pend_f, .vjp = pend_vjp, .jvp = pend_jvp};

nde_status nde_test_pendulum(int max_batch, nde_rhs **out) {
  const nde_rhs_info info = {2, 1, max_batch, 0, osc_dep};
  return nde_rhs_create(&pend_ops, NULL, NDE_BORROW, &info, out, NULL);
}

/* ---- nlsplit: (q1, p1, q2, p2) ---- */

static const unsigned char nl_dep[16] = {
    0, 1, 0, 1, /* q1' <- p1, p2 */
    1, 0, 1, 0, /* p1' <- q1, q2 */
    0, 1, 0, 1, /* q2' <- p1, p2 */
    1, 0, 1, 0, /* p2' <- q1, q2 */
};

static const nde_test_nlsplit nl_plain = {0, 0.0, 0, NDE_TEST_FAIL_NONE, 0.0, 0};

static double step_input(const nde_test_nlsplit *c, double t) {
  return c->jump && t >= c->t_jump ? 1.0 : 0.0;
}

static double forcing(const nde_test_nlsplit *c, double t) {
  return c->no_forcing ? 0.0 : cos(1.3 * t);
}

static int nl_fails(const nde_test_nlsplit *c, double t) {
  if (c->fail == NDE_TEST_FAIL_NONE || t > c->fail_t) return 0;
  return c->fail == NDE_TEST_FAIL_RECOVERABLE ? 1 : c->fail == NDE_TEST_FAIL_FATAL ? -3 : 2;
}

static int nl_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                double *cache) {
  (void)cache;
  const nde_test_nlsplit *c = ctx ? ctx : &nl_plain;
  const double H = step_input(c, t);
  for (int b = 0; b < B; b++) {
    const double *u = U + 4 * b;
    double *d = dU + 4 * b;
    d[0] = th[0] * u[1] + th[1] * tanh(u[3]);
    d[1] = -th[3] * sin(u[0]) + th[4] * u[2] + th[7] * H;
    d[2] = u[3] * (1.0 + th[2] * u[1]);
    d[3] = -th[5] * u[2] * u[2] * u[2] + th[4] * u[0] + th[6] * forcing(c, t);
  }
  return 0;
}

static int nl_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                  const double *cache, double *gU, double *gth) {
  (void)cache;
  const nde_test_nlsplit *c = ctx ? ctx : &nl_plain;
  const int fail = nl_fails(c, t);
  if (fail == 1 || fail < 0) return fail;
  const double H = step_input(c, t);
  for (int b = 0; b < B; b++) {
    const double *u = U + 4 * b, *l = L + 4 * b;
    const double th3 = tanh(u[3]);
    if (gU) {
      double *g = gU + 4 * b;
      g[0] += -th[3] * cos(u[0]) * l[1] + th[4] * l[3];
      g[1] += th[0] * l[0] + th[2] * u[3] * l[2];
      g[2] += th[4] * l[1] - 3.0 * th[5] * u[2] * u[2] * l[3];
      g[3] += th[1] * (1.0 - th3 * th3) * l[0] + (1.0 + th[2] * u[1]) * l[2];
      if (fail == 2) g[1] = NAN;
    }
    if (gth) {
      gth[0] += u[1] * l[0];
      gth[1] += th3 * l[0];
      gth[2] += u[3] * u[1] * l[2];
      gth[3] += -sin(u[0]) * l[1];
      gth[4] += u[2] * l[1] + u[0] * l[3];
      gth[5] += -u[2] * u[2] * u[2] * l[3];
      gth[6] += forcing(c, t) * l[3];
      gth[7] += H * l[1];
      if (fail == 2) gth[0] = NAN;
    }
  }
  return 0;
}

static int nl_jvp(void *ctx, double t, int B, const double *U, const double *th, const double *V,
                  const double *Vth, double *JV) {
  const nde_test_nlsplit *c = ctx ? ctx : &nl_plain;
  const int fail = c->fail_jvp ? nl_fails(c, t) : 0;
  if (fail == 1 || fail < 0) return fail;
  const double H = step_input(c, t);
  for (int b = 0; b < B; b++) {
    const double *u = U + 4 * b;
    double *j = JV + 4 * b;
    const double th3 = tanh(u[3]);
    j[0] = j[1] = j[2] = j[3] = 0.0;
    if (V) {
      const double *v = V + 4 * b;
      j[0] = th[0] * v[1] + th[1] * (1.0 - th3 * th3) * v[3];
      j[1] = -th[3] * cos(u[0]) * v[0] + th[4] * v[2];
      j[2] = v[3] * (1.0 + th[2] * u[1]) + u[3] * th[2] * v[1];
      j[3] = -3.0 * th[5] * u[2] * u[2] * v[2] + th[4] * v[0];
    }
    if (Vth) {
      j[0] += Vth[0] * u[1] + Vth[1] * th3;
      j[1] += -Vth[3] * sin(u[0]) + Vth[4] * u[2] + Vth[7] * H;
      j[2] += u[3] * Vth[2] * u[1];
      j[3] += -Vth[5] * u[2] * u[2] * u[2] + Vth[4] * u[0] + Vth[6] * forcing(c, t);
    }
    if (fail == 2) j[0] = NAN;
  }
  return 0;
}

static const nde_rhs_ops nl_ops = {.f = nl_f, .vjp = nl_vjp, .jvp = nl_jvp};

nde_status nde_test_nlsplit_rhs(nde_test_nlsplit *ctx, int max_batch, nde_rhs **out) {
  const nde_rhs_info info = {4, 8, max_batch, 0, nl_dep};
  return nde_rhs_create(&nl_ops, ctx, NDE_BORROW, &info, out, NULL);
}

const double nde_test_nlsplit_theta[8] = {0.8137, 0.4421, 0.2719, 1.1863,
                                          0.3307, 0.5923, 0.4178, 0.7391};
const double nde_test_nlsplit_u0[8] = {0.6123, -0.2871, 0.4457, 0.3392,
                                       -0.5218, 0.7164, 0.1937, -0.4481};

/* ---- damped ---- */

static const unsigned char damped_dep[4] = {0, 1, 1, 1};

static int damped_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                    double *cache) {
  (void)ctx;
  (void)t;
  (void)cache;
  for (int b = 0; b < B; b++) {
    dU[2 * b] = U[2 * b + 1];
    dU[2 * b + 1] = -U[2 * b] - th[0] * U[2 * b + 1];
  }
  return 0;
}

static int damped_vjp(void *ctx, double t, int B, const double *U, const double *th,
                      const double *L, const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)t;
  (void)cache;
  for (int b = 0; b < B; b++) {
    if (gU) {
      gU[2 * b] += -L[2 * b + 1];
      gU[2 * b + 1] += L[2 * b] - th[0] * L[2 * b + 1];
    }
    if (gth) gth[0] += -U[2 * b + 1] * L[2 * b + 1];
  }
  return 0;
}

static const nde_rhs_ops damped_ops = {.f = damped_f, .vjp = damped_vjp, .jvp = NULL};

nde_status nde_test_damped(int max_batch, nde_rhs **out) {
  const nde_rhs_info info = {2, 1, max_batch, 0, damped_dep};
  return nde_rhs_create(&damped_ops, NULL, NDE_BORROW, &info, out, NULL);
}
