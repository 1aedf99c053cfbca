/* Embedding nde from C: fit the Lotka-Volterra universal differential equation
 *   dx/dt = alpha x + U1(x, y),  dy/dt = -delta y + U2(x, y),  U = 2 -> 5 -> 5 -> 5 -> 2 (rbf)
 * to synthetic data from the full model (alpha, beta, gamma, delta) = (1.3, 0.9, 0.8, 1.8),
 * u0 = (0.44249296, 4.6280594), t in [0, 5] every 0.25, 5e-3 relative noise (Rackauckas et al.
 * 2020), with the exact discrete-adjoint gradient of RK4 and the training loop of nde/train.h:
 * multiple shooting with Adam, then Adam and L-BFGS on the whole trajectory.  Prints the loss
 * as it falls.
 *
 * The right-hand side is hand-written C over the library's network passes (nde/nn.h), the
 * callback interface of nde/model.h, so that an existing simulator can put its own model code
 * in; only <nde/nde.h> is used.  Exits 0 when the fit reaches the noise level (MSE below 10 x
 * the noise variance).
 *
 * usage: fit_lv_ude [SCHEDULE] [SEED] [SHOOT_INTERVAL] [SHOOT_WEIGHT] */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nde/nde.h>

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

/* The UDE dx/dt = alpha x + U1(x, y), dy/dt = -delta y + U2(x, y), U = 2 -> 5 -> 5 -> 5 -> 2 rbf,
 * theta = the network's weights (alpha = 1.3 and delta = 1.8 fixed), one state at a time. */
typedef struct ude {
  nde_net *net;
  nde_net_ws *ws;
  double Y[2], cache[64];
} ude;

static int ude_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                 double *cache) {
  ude *m = ctx;
  (void)t, (void)cache;
  for (int b = 0; b < B; b++) {
    nde_net_forward(m->net, th, 1, U + 2 * b, m->Y, NULL, m->ws);
    dU[2 * b] = 1.3 * U[2 * b] + m->Y[0];
    dU[2 * b + 1] = -1.8 * U[2 * b + 1] + m->Y[1];
  }
  return isfinite(dU[0]) && isfinite(dU[1]) ? 0 : 1;
}

static int ude_vjp(void *ctx, double t, int B, const double *U, const double *th,
                   const double *L, const double *cache, double *gU, double *gth) {
  ude *m = ctx;
  (void)t, (void)cache;
  double gx[2];
  for (int b = 0; b < B; b++) {
    nde_net_vjp(m->net, th, 1, U + 2 * b, L + 2 * b, NULL, gU ? gx : NULL, gth, m->ws);
    if (gU) {
      gU[2 * b] += 1.3 * L[2 * b] + gx[0];
      gU[2 * b + 1] += -1.8 * L[2 * b + 1] + gx[1];
    }
  }
  return 0;
}

static int fail(const char *what, nde_status st, const char *msg) {
  fprintf(stderr, "fit_lv_ude: error: %s: %s (%s)\n", what, msg, nde_status_str(st));
  return 1;
}

static int progress(void *ctx, const nde_train_progress *p) {
  (void)ctx;
  if (p->event)
    printf("  phase %d iter %6ld: %s\n", p->phase + 1, p->iter, p->event);
  else
    printf("  phase %d iter %6ld  loss %.4e  |grad| %.3e\n", p->phase + 1, p->iter, p->loss,
           p->grad_norm);
  return 0;
}

int main(int argc, char **argv) {
  const char *schedule = argc > 1 ? argv[1] : "shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000";
  const unsigned long long seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
  const int shoot = argc > 3 ? atoi(argv[3]) : 4;
  const double shoot_weight = argc > 4 ? atof(argv[4]) : 10.0;
  double t[N_OBS], obs[N_OBS * 2];
  const double u0[2] = {0.44249296, 4.6280594};
  for (int k = 0; k < N_OBS; k++) t[k] = 0.25 * k;

  /* Synthetic data: the full model with RK4 at h = 0.01, plus noise of 5e-3 x each state's mean. */
  const nde_rhs_ops lv_ops = {.f = lv_f, .vjp = lv_vjp, .jvp = NULL, .destroy = NULL};
  const nde_rhs_info lv_info = {2, 4, 1, 0, NULL};
  nde_rhs *truth = NULL;
  nde_status st = nde_rhs_create(&lv_ops, NULL, NDE_BORROW, &lv_info, &truth, NULL);
  if (st != NDE_OK) return fail("truth model", st, "");
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.01;
  nde_solver *ts = NULL;
  st = nde_solver_create(truth, &so, 1, &ts, NULL);
  if (st != NDE_OK) return fail("truth solver", st, nde_solver_errmsg(ts));
  const double p_true[4] = {1.3, 0.9, 0.8, 1.8};
  st = nde_solver_solve(ts, p_true, 1, u0, N_OBS, t, obs, NULL);
  if (st != NDE_OK) return fail("truth solve", st, nde_solver_errmsg(ts));
  nde_solver_destroy(&ts);
  nde_rhs_destroy(&truth);
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double mean[2] = {0, 0};
  for (int k = 0; k < N_OBS; k++)
    for (int i = 0; i < 2; i++) mean[i] += obs[2 * k + i] / N_OBS;
  for (int k = 0; k < N_OBS; k++)
    for (int i = 0; i < 2; i++) obs[2 * k + i] += 5e-3 * mean[i] * nde_rng_normal(&rng);

  /* The UDE, RK4 at h = 0.05. */
  const int widths[5] = {2, 5, 5, 5, 2};
  const nde_act acts[4] = {NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_IDENTITY};
  ude m;
  nde_error nerr;
  if ((st = nde_net_create(4, widths, acts, &m.net, &nerr)) != NDE_OK)
    return fail("network", st, nerr.msg);
  if ((st = nde_net_ws_create(m.net, 1, &m.ws)) != NDE_OK) return fail("workspace", st, "");
  const size_t n_theta = nde_net_n_params(m.net);
  const nde_rhs_ops ude_ops = {.f = ude_f, .vjp = ude_vjp};
  const nde_rhs_info ude_info = {2, n_theta, 1, 0, NULL};
  nde_rhs *rhs = NULL;
  if ((st = nde_rhs_create(&ude_ops, &m, NDE_BORROW, &ude_info, &rhs, &nerr)) != NDE_OK)
    return fail("UDE model", st, nerr.msg);
  double *theta = calloc(n_theta, sizeof *theta);
  if (!theta) return fail("allocation", NDE_ERR_NOMEM, "");
  st = nde_net_init(m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, theta);
  if (st != NDE_OK) return fail("init", st, "");
  so.dt = 0.05;
  const nde_fit_series series = {N_OBS, t, obs, u0, 0, 0};
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = shoot;
  fo.shoot_weight = shoot_weight;
  nde_fit *fit = NULL;
  nde_error ferr;
  st = nde_fit_create(rhs, &so, NULL, 1, &series, &fo, &fit, &ferr);
  if (st != NDE_OK) return fail("fit", st, ferr.msg);
  nde_fit_phase ph[NDE_MAX_PHASES];
  int nph;
  nde_error err;
  st = nde_fit_schedule_parse(schedule, 0.01, ph, &nph, &err);
  if (st != NDE_OK) return fail("schedule", st, err.msg);
  double *x = calloc(nde_fit_n_x(fit, 1), sizeof *x);
  if (!x) return fail("allocation", NDE_ERR_NOMEM, "");
  st = nde_fit_init_x(fit, theta, x);
  if (st != NDE_OK) return fail("init", st, nde_fit_errmsg(fit));
  nde_train_opts to = nde_train_opts_default();
  to.phases = ph;
  to.n_phases = nph;
  to.seed = seed;
  to.progress = progress;
  to.progress_every = 500;
  nde_train *tr = NULL;
  st = nde_train_create(fit, &to, x, &tr, &err);
  if (st != NDE_OK) return fail("train", st, err.msg);
  printf("Fitting the Lotka-Volterra UDE (%zu network parameters) to %d noisy observations\n",
         n_theta, N_OBS);
  printf("schedule %s; multiple shooting segments of %d intervals\n", schedule, shoot);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  nde_train_reason why;
  st = nde_train_run(tr, &why);
  if (st != NDE_OK) return fail("training", st, nde_train_errmsg(tr));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  const double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  double L;
  st = nde_fit_eval(fit, nde_train_x(tr), 0, NULL, &L, NULL, NULL);
  if (st != NDE_OK) return fail("final loss", st, nde_fit_errmsg(fit));
  const double noise_var = 0.5 * (pow(5e-3 * mean[0], 2) + pow(5e-3 * mean[1], 2));
  printf("final MSE %.4e = %.2f x the noise variance %.2e, %zu iterations in %.2f s%s\n", L,
         L / noise_var, noise_var, nde_train_history(tr, NULL), secs,
         why == NDE_TRAIN_DIVERGED ? " (stopped: diverged)" : "");
  nde_train_destroy(&tr);
  nde_fit_destroy(&fit);
  nde_rhs_destroy(&rhs);
  nde_net_ws_destroy(&m.ws);
  nde_net_destroy(&m.net);
  free(x);
  free(theta);
  if (why != NDE_TRAIN_DONE) return 3;
  return L < 10 * noise_var ? 0 : 1;
}
