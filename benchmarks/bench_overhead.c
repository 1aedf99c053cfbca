/* Overhead benchmark (issue 2; target 1.2x in the README build, issue 13): the library's gradient
 * against a loop written by hand for exactly one problem (spiral_hand.c), both compiled with the
 * build's flags (the default build: -march=native).  The problem: torchdiffeq's spiral, dy/dt = NN(y^3) with
 * NN = 2 -> 50 tanh -> 2 (weights N(0, 0.1^2), biases 0, as in torchdiffeq's ode_demo), one
 * trajectory from y0 = (2, 0), 1000 observation times evenly spaced on [0, 25], classic RK4 with
 * one step per interval, MSE over all 1000 x 2 observations, one gradient (loss + dL/dtheta).
 * The data come from the true spiral dy/dt = (y^3) A, A = [[-0.1, 2], [-2, -0.1]] (y a row
 * vector), integrated by RK4 with 20 substeps per interval.
 *
 * The two gradients must agree to 1e-9 relative (max-norm) or the program exits with 1.
 * Output: table rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"
#include "nde/solve.h"
#include "spiral_hand.h"

#define N_OBS 1000
#define T_END 25.0
#define TARGET_RATIO 1.20
#define MAX_DIFF 1e-9
#define MAX_REPS 20000

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *x, int n) {
  qsort(x, (size_t)n, sizeof *x, cmp_double);
  return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* The true spiral's right-hand side: dy = (y^3) A with y a row vector. */
static void true_spiral(const double y[2], double dy[2]) {
  static const double A[2][2] = {{-0.1, 2.0}, {-2.0, -0.1}};
  const double c0 = y[0] * y[0] * y[0], c1 = y[1] * y[1] * y[1];
  dy[0] = c0 * A[0][0] + c1 * A[1][0];
  dy[1] = c0 * A[0][1] + c1 * A[1][1];
}

/* Observations of the true spiral at t_obs (n x 2). */
static void make_data(int n, const double *t_obs, double *obs) {
  const int sub = 20;
  double y[2] = {2.0, 0.0};
  obs[0] = y[0];
  obs[1] = y[1];
  for (int k = 0; k + 1 < n; k++) {
    const double h = (t_obs[k + 1] - t_obs[k]) / sub;
    for (int s = 0; s < sub; s++) {
      double k1[2], k2[2], k3[2], k4[2], tmp[2];
      true_spiral(y, k1);
      for (int i = 0; i < 2; i++) tmp[i] = y[i] + 0.5 * h * k1[i];
      true_spiral(tmp, k2);
      for (int i = 0; i < 2; i++) tmp[i] = y[i] + 0.5 * h * k2[i];
      true_spiral(tmp, k3);
      for (int i = 0; i < 2; i++) tmp[i] = y[i] + h * k3[i];
      true_spiral(tmp, k4);
      for (int i = 0; i < 2; i++) y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    }
    obs[2 * k + 2] = y[0];
    obs[2 * k + 3] = y[1];
  }
}

static void fmt_time(char *buf, size_t len, double t) {
  if (t >= 1e-3)
    snprintf(buf, len, "%.3f ms", 1e3 * t);
  else
    snprintf(buf, len, "%.2f us", 1e6 * t);
}

int main(void) {
  int rc = 1;
  nde_cmodel m;
  nde_solver *solver = NULL;
  nde_grad *grad = NULL;
  spiral_hand *hand = NULL;
  double *t_obs = malloc(N_OBS * sizeof *t_obs), *obs = malloc(2 * N_OBS * sizeof *obs);
  double *t_lib = malloc(MAX_REPS * sizeof *t_lib), *t_hand = malloc(MAX_REPS * sizeof *t_hand);
  double theta[SPIRAL_HAND_N_THETA], g_lib[SPIRAL_HAND_N_THETA], g_hand[SPIRAL_HAND_N_THETA];
  const double y0[2] = {2.0, 0.0};
  if (nde_cmodel_spiral(1, &m) != NDE_OK) {
    fprintf(stderr, "bench_overhead: cannot create the spiral model\n");
    return 1;
  }
  if (!t_obs || !obs || !t_lib || !t_hand) goto done;
  if (m.n_theta != SPIRAL_HAND_N_THETA) {
    fprintf(stderr, "bench_overhead: the spiral model has %zu parameters, the hand loop %d\n",
            m.n_theta, SPIRAL_HAND_N_THETA);
    goto done;
  }
  for (int k = 0; k < N_OBS; k++) t_obs[k] = T_END * k / (N_OBS - 1);
  make_data(N_OBS, t_obs, obs);
  nde_rng rng;
  nde_rng_seed(&rng, 2018);
  nde_net_init(m.net, NDE_INIT_NORMAL, 0.1, &rng, theta);

  nde_solver_opts so = nde_solver_opts_default();
  so.method = "rk4";
  so.steps_per_interval = 1;
  nde_status st = nde_solver_create(m.rhs, &so, 1, &solver, NULL);
  if (st == NDE_OK) st = nde_grad_create(solver, NULL, &grad, NULL);
  hand = spiral_hand_create(N_OBS);
  if (st != NDE_OK || !hand) {
    fprintf(stderr, "bench_overhead: setup failed: %s\n", nde_status_str(st));
    goto done;
  }
  nde_obs_loss loss = {obs, NULL, 1, 0};

  /* Agreement first (also the warm-up). */
  double L_lib = NAN, L_hand = NAN;
  nde_grad_stats gs;
  for (int w = 0; w < 3; w++) {
    st = nde_grad_eval(grad, theta, 1, y0, N_OBS, t_obs, nde_obs_loss_eval, &loss, &L_lib, g_lib,
                       NULL, NULL, &gs);
    L_hand = spiral_hand_grad(hand, theta, y0, N_OBS, t_obs, obs, g_hand);
  }
  if (st != NDE_OK || gs.forward.reason != NDE_REASON_NONE || !isfinite(L_lib)) {
    fprintf(stderr, "bench_overhead: library gradient failed: %s (%s)\n", nde_status_str(st),
            nde_grad_errmsg(grad));
    goto done;
  }
  double gmax = 0.0, dmax = 0.0;
  for (int i = 0; i < SPIRAL_HAND_N_THETA; i++) {
    gmax = fmax(gmax, fabs(g_lib[i]));
    dmax = fmax(dmax, fabs(g_lib[i] - g_hand[i]));
  }
  const double rel = dmax / gmax, rel_L = fabs(L_lib - L_hand) / fabs(L_lib);
  printf("overhead: loss %.15g (library) vs %.15g (hand), relative difference %.2e\n", L_lib,
         L_hand, rel_L);
  printf("overhead: gradient max |lib - hand| / max |lib| = %.2e (max |dL/dtheta| = %.3g; must "
         "be <= %.0e)\n",
         rel, gmax, MAX_DIFF);
  fflush(stdout);
  if (!(rel <= MAX_DIFF) || !(rel_L <= MAX_DIFF)) {
    fprintf(stderr, "bench_overhead: the library's gradient and the hand loop's disagree "
                    "(%.3e relative)\n",
            rel);
    goto done;
  }

  /* Interleaved repetitions, so that both see the same machine state. */
  int n = 0;
  const double t_start = now();
  while (n < MAX_REPS && (n < 101 || now() - t_start < 3.0)) {
    double t0 = now();
    nde_grad_eval(grad, theta, 1, y0, N_OBS, t_obs, nde_obs_loss_eval, &loss, &L_lib, g_lib, NULL,
                  NULL, NULL);
    double t1 = now();
    spiral_hand_grad(hand, theta, y0, N_OBS, t_obs, obs, g_hand);
    double t2 = now();
    t_lib[n] = t1 - t0;
    t_hand[n] = t2 - t1;
    n++;
  }
  const double ml = median(t_lib, n), mh = median(t_hand, n), ratio = ml / mh;
  char a[32], b[32], r[64], q[16];
  fmt_time(a, sizeof a, ml);
  fmt_time(b, sizeof b, mh);
  snprintf(r, sizeof r, "hand loop %s", b);
  snprintf(q, sizeof q, "%.2f", ratio);
  printf("row|overhead|spiral 2-50-2, %d obs, RK4|%s|-|%s|%s|<= %.2f|%s\n", N_OBS, a, r, q, TARGET_RATIO, ratio <= TARGET_RATIO ? "met" : "MISSED");
  printf("overhead: %d interleaved repetitions; %ld RK4 steps, %ld f and %ld VJP calls per "
         "gradient; tanh: the library's expm1 formula on both sides\n",
         n, gs.forward.n_steps, gs.forward.n_rhs, gs.n_vjp);
  rc = 0;
done:
  free(t_obs), free(obs), free(t_lib), free(t_hand);
  spiral_hand_destroy(&hand);
  nde_grad_destroy(&grad);
  nde_solver_destroy(&solver);
  nde_cmodel_destroy(&m);
  return rc;
}
