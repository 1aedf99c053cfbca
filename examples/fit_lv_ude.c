/* Embedding nde from C: fit the Lotka-Volterra universal differential equation
 *   dx/dt = alpha x + U1(x, y),  dy/dt = -delta y + U2(x, y),  U = 2 -> 5 -> 5 -> 5 -> 2 (rbf)
 * to synthetic data from the full model (alpha, beta, gamma, delta) = (1.3, 0.9, 0.8, 1.8),
 * u0 = (0.44249296, 4.6280594), t in [0, 5] every 0.25, 5e-3 relative noise (Rackauckas et al.
 * 2020), with Adam and the exact discrete-adjoint gradient of RK4.  Prints the loss as it falls.
 *
 * usage: fit_lv_ude [iterations] [seed] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"
#include "nde/train.h"

#define N_OBS 21

/* The full Lotka-Volterra model, theta = (alpha, beta, gamma, delta): makes the data. */
static int lv_f(void *ctx, double t, int B, const double *U, const double *p, double *dU,
                double *cache) {
  (void)ctx, (void)t, (void)cache;
  for (int b = 0; b < B; b++) {
    const double x = U[2 * b], y = U[2 * b + 1];
    dU[2 * b] = p[0] * x - p[1] * x * y;
    dU[2 * b + 1] = p[2] * x * y - p[3] * y;
  }
  return 0;
}

static int lv_vjp(void *ctx, double t, int B, const double *U, const double *p, const double *L,
                  const double *cache, double *gU, double *gp) {
  (void)ctx, (void)t, (void)cache;
  for (int b = 0; b < B; b++) {
    const double x = U[2 * b], y = U[2 * b + 1], lx = L[2 * b], ly = L[2 * b + 1];
    if (gU) {
      gU[2 * b] += lx * (p[0] - p[1] * y) + ly * p[2] * y;
      gU[2 * b + 1] += -lx * p[1] * x + ly * (p[2] * x - p[3]);
    }
    if (gp) {
      gp[0] += lx * x;
      gp[1] -= lx * x * y;
      gp[2] += ly * x * y;
      gp[3] -= ly * y;
    }
  }
  return 0;
}

static int fail(const char *what, nde_status st, const char *msg) {
  fprintf(stderr, "fit_lv_ude: error: %s: %s (%s)\n", what, msg, nde_status_str(st));
  return 1;
}

int main(int argc, char **argv) {
  const int iters = argc > 1 ? atoi(argv[1]) : 3000;
  const unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  if (iters < 1) {
    fprintf(stderr, "usage: fit_lv_ude [iterations >= 1] [seed]\n");
    return 2;
  }
  double t[N_OBS], obs[N_OBS * 2];
  const double u0[2] = {0.44249296, 4.6280594};
  for (int k = 0; k < N_OBS; k++) t[k] = 0.25 * k;

  /* Synthetic data: the full model with RK4 at h = 0.01, plus noise of 5e-3 x each state's mean. */
  const nde_rhs_ops lv_ops = {lv_f, lv_vjp, NULL, NULL};
  const nde_rhs_info lv_info = {2, 4, 1, 0};
  nde_rhs *truth = NULL;
  nde_status st = nde_rhs_create(&lv_ops, NULL, NDE_BORROW, &lv_info, &truth);
  if (st != NDE_OK) return fail("truth model", st, "");
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.01;
  nde_solver *ts = NULL;
  st = nde_solver_create(truth, &so, 1, &ts);
  if (st != NDE_OK) return fail("truth solver", st, nde_solver_errmsg(ts));
  const double p_true[4] = {1.3, 0.9, 0.8, 1.8};
  st = nde_solver_solve(ts, p_true, 1, u0, N_OBS, t, obs, NULL);
  if (st != NDE_OK) return fail("truth solve", st, nde_solver_errmsg(ts));
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double mean[2] = {0, 0};
  for (int k = 0; k < N_OBS; k++)
    for (int i = 0; i < 2; i++) mean[i] += obs[2 * k + i] / N_OBS;
  for (int k = 0; k < N_OBS; k++)
    for (int i = 0; i < 2; i++) obs[2 * k + i] += 5e-3 * mean[i] * nde_rng_normal(&rng);

  /* The UDE: the hand-written C model of tests/support/cmodels.c, RK4 at h = 0.05. */
  nde_cmodel m;
  st = nde_cmodel_lv_ude(1, &m);
  if (st != NDE_OK) return fail("UDE model", st, "");
  double *theta = calloc(m.n_theta, sizeof *theta), *g = calloc(m.n_theta, sizeof *g);
  if (!theta || !g) return fail("allocation", NDE_ERR_NOMEM, "");
  st = nde_net_init(m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, theta);
  so.dt = 0.05;
  nde_solver *s = NULL;
  if (st == NDE_OK) st = nde_solver_create(m.rhs, &so, 1, &s);
  nde_grad *gr = NULL;
  if (st == NDE_OK) st = nde_grad_create(s, NULL, &gr);
  nde_adam_opts ao = nde_adam_opts_default();
  ao.lr = 0.01;
  nde_adam *adam = NULL;
  if (st == NDE_OK) st = nde_adam_create(m.n_theta, &ao, &adam);
  if (st != NDE_OK) return fail("setup", st, "");
  nde_obs_loss loss = {obs, NULL, 1, 0};

  printf("Fitting the Lotka-Volterra UDE (%zu network parameters) to %d noisy observations\n",
         m.n_theta, N_OBS);
  printf("%8s  %12s  %10s\n", "iter", "MSE", "|grad|");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  double L = NAN;
  for (int it = 0; it <= iters; it++) {
    nde_grad_stats gs;
    st = nde_grad_eval(gr, theta, 1, u0, N_OBS, t, nde_obs_loss_eval, &loss, &L, g, NULL, NULL,
                       &gs);
    if (st != NDE_OK) return fail("gradient", st, nde_grad_errmsg(gr));
    if (gs.forward.reason != NDE_REASON_NONE) {
      fprintf(stderr, "fit_lv_ude: solve stopped at t = %g: %s\n", gs.forward.t_stop,
              nde_stop_reason_str(gs.forward.reason));
      return 3;
    }
    if (it % (iters / 10 > 0 ? iters / 10 : 1) == 0 || it == iters) {
      double gn = 0;
      for (size_t i = 0; i < m.n_theta; i++) gn += g[i] * g[i];
      printf("%8d  %12.4e  %10.3e\n", it, L, sqrt(gn));
    }
    if (it < iters) nde_adam_step(adam, theta, g);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  const double noise_var = 0.5 * (pow(5e-3 * mean[0], 2) + pow(5e-3 * mean[1], 2));
  printf("final MSE %.4e (noise variance %.2e) after %d iterations in %.2f s (%.0f it/s)\n", L,
         noise_var, iters, secs, iters / secs);
  nde_adam_destroy(&adam);
  nde_grad_destroy(&gr);
  nde_solver_destroy(&s);
  nde_solver_destroy(&ts);
  nde_rhs_destroy(&truth);
  nde_cmodel_destroy(&m);
  free(theta);
  free(g);
  return 0;
}
