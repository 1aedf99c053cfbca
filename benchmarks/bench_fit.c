/* Benchmark of the training loop (issue 4): the UDE recipe on data/lotka_volterra.h5 with
 * models/lotka_volterra_ude.nde, RK4 at h = 0.05, (a) the paper's schedule, Adam lr 0.1 for 5000
 * iterations then L-BFGS for up to 1000, and (b) nde fit's default schedule with multiple
 * shooting; then (c) that schedule's objective and run with the segments as one batch (nde fit
 * --batch-segments, issue 13) against one by one.  Reports wall time, final loss, and the time per objective evaluation against the
 * median time of one gradient of the same objective measured in the same run (the loop's own
 * overhead: target <= 1.2x).  Times are this thread's CPU time, so that other work on a shared
 * machine does not distort the ratio.
 * Output: rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nde/data.h"
#include "nde/model.h"
#include "nde/train.h"

#define TARGET 1.2

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: immune to other load */
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int run(const char *name, const char *schedule, nde_fit *fit, nde_fit *full,
               const double *x0, double grad_s, double noise_var) {
  nde_fit_phase ph[NDE_MAX_PHASES];
  int nph;
  nde_error err;
  if (nde_fit_schedule_parse(schedule, 0.01, ph, &nph, &err) != NDE_OK) {
    fprintf(stderr, "bench_fit: %s\n", err.msg);
    return 1;
  }
  nde_train_opts to = nde_train_opts_default();
  to.phases = ph;
  to.n_phases = nph;
  to.seed = 1;
  nde_train *t = NULL;
  if (nde_train_create(fit, &to, x0, &t, NULL) != NDE_OK) return 1;
  const double t0 = now();
  nde_train_reason why;
  if (nde_train_run(t, &why) != NDE_OK) return 1;
  const double wall = now() - t0;
  double L;
  nde_fit_eval(full, nde_train_x(t), 0, NULL, &L, NULL, NULL);
  const long evals = nde_train_n_evals(t);
  const size_t iters = nde_train_history(t, NULL);
  const double per_eval = wall / (double)evals, ratio = per_eval / grad_s;
  printf("row|training|%s|%.3f s|%zu it, %ld evals|gradient %.1f us|%.2f|<= %.1f|%s\n", name,
         wall, iters, evals, 1e6 * grad_s, ratio, TARGET, ratio <= TARGET ? "met" : "MISSED");
  printf("%s: final MSE %.4e = %.2f x the noise variance%s\n", name, L, L / noise_var,
         why == NDE_TRAIN_DIVERGED ? " (diverged)" : "");
  nde_train_destroy(&t);
  return 0;
}

/* nde fit --batch-segments (nde_fit_opts.autonomous): the shooting objective's segments as one
 * batched solve against one solve each, one gradient (median of interleaved repetitions), and
 * the default schedule run both ways (its time and where it ends, which rounding decides). */
static int batch_segments(nde_model *m, const nde_solver_opts *so, const nde_fit_series *series,
                          const double *x0, nde_fit *f_plain, double noise_var) {
  nde_rhs *rhs = NULL;
  if (nde_model_create_rhs(m, NDE_FIT_BATCH_ROWS, &rhs, NULL) != NDE_OK) return 1;
  nde_fit_opts o[2] = {nde_fit_opts_default(), nde_fit_opts_default()};
  nde_fit *f[2] = {NULL, NULL};
  int rc = 0;
  for (int b = 0; b < 2; b++) {
    o[b].shoot_interval = 4;
    o[b].autonomous = b;
    if (nde_fit_create(rhs, so, NULL, 1, series, &o[b], &f[b], NULL) != NDE_OK) rc = 1;
  }
  const size_t nx = rc ? 0 : nde_fit_n_x(f[0], 1);
  double *g = calloc(nx + 1, sizeof *g);
  enum { REPS = 1001 };
  static double ts[2][REPS];
  long solves[2] = {0, 0};
  for (int i = 0; i < REPS && !rc; i++)
    for (int b = 0; b < 2; b++) {
      double L;
      nde_fit_info info;
      const double t0 = now();
      nde_fit_eval(f[b], x0, 1, NULL, &L, g, &info);
      ts[b][i] = now() - t0;
      solves[b] = info.n_solves;
    }
  if (!rc) {
    qsort(ts[0], REPS, sizeof **ts, cmp);
    qsort(ts[1], REPS, sizeof **ts, cmp);
    const double one = ts[0][REPS / 2], bat = ts[1][REPS / 2];
    printf("row|batch segments|LV UDE shooting objective, one gradient: %ld solves as %ld|%.1f us|"
           "%.2fx faster|one by one %.1f us|%.2f|-|info\n",
           solves[0], solves[1], 1e6 * bat, one / bat, 1e6 * one, bat / one);
    for (int b = 0; b < 2; b++) {
      nde_fit_phase ph[NDE_MAX_PHASES];
      int nph;
      nde_fit_schedule_parse("shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000", 0.01, ph, &nph,
                             NULL);
      nde_train_opts to = nde_train_opts_default();
      to.phases = ph;
      to.n_phases = nph;
      to.seed = 1;
      nde_train *t = NULL;
      nde_train_reason why;
      if (nde_train_create(f[b], &to, x0, &t, NULL) != NDE_OK) {
        rc = 1;
        break;
      }
      const double t0 = now();
      nde_train_run(t, &why);
      const double cpu = now() - t0;
      double L;
      nde_fit_eval(f_plain, nde_train_x(t), 0, NULL, &L, NULL, NULL);
      printf("batch segments: the default schedule %s: %.3f s CPU, final MSE %.2f x the noise "
             "variance\n",
             b ? "batched" : "one by one", cpu, L / noise_var);
      nde_train_destroy(&t);
    }
  }
  free(g);
  nde_fit_destroy(&f[0]);
  nde_fit_destroy(&f[1]);
  nde_rhs_destroy(&rhs);
  return rc;
}

int main(void) {
  nde_model *m = NULL;
  if (nde_model_load_file(NDE_SOURCE_DIR "/models/lotka_volterra_ude.nde", &m, NULL) != NDE_OK) {
    fprintf(stderr, "bench_fit: %s\n", nde_model_errmsg(m));
    return 1;
  }
  const char *names[2] = {"x", "y"};
  nde_data *d = NULL;
  nde_error de;
  nde_data_opts dopts = nde_data_opts_default();
  if (nde_data_open(NDE_SOURCE_DIR "/data/lotka_volterra.h5", 2, names, &dopts, &d, &de) !=
      NDE_OK) {
    fprintf(stderr, "bench_fit: %s\n", de.msg);
    return 1;
  }
  const nde_traj *tr = nde_data_traj(d, 0);
  const nde_fit_series series = {(int)tr->n, tr->t, tr->y, tr->y, 0, 0};
  nde_rhs *rhs = NULL;
  nde_model_create_rhs(m, 1, &rhs, NULL);
  const size_t P = nde_model_n_theta(m);
  double *theta = calloc(P, sizeof *theta), *g = calloc(P + 64, sizeof *g);
  nde_model_init_theta(m, 1, theta);
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_fit_opts plain = nde_fit_opts_default(), shoot = nde_fit_opts_default();
  shoot.shoot_interval = 4;
  nde_fit *f_plain = NULL, *f_shoot = NULL;
  if (nde_fit_create(rhs, &so, NULL, 1, &series, &plain, &f_plain, NULL) != NDE_OK ||
      nde_fit_create(rhs, &so, NULL, 1, &series, &shoot, &f_shoot, NULL) != NDE_OK)
    return 1;
  double *x0 = calloc(nde_fit_n_x(f_shoot, 1), sizeof *x0);
  nde_fit_init_x(f_shoot, theta, x0);
  /* One gradient of the whole-trajectory objective, median of many. */
  enum { REPS = 2001 };
  static double ts[REPS];
  double L;
  for (int i = 0; i < REPS; i++) {
    const double t0 = now();
    nde_fit_eval(f_plain, theta, 0, NULL, &L, g, NULL);
    ts[i] = now() - t0;
  }
  qsort(ts, REPS, sizeof *ts, cmp);
  const double grad_s = ts[REPS / 2];
  double noise_var = 0;
  for (int j = 0; j < 2; j++)
    noise_var += tr->noise_std ? tr->noise_std[j] * tr->noise_std[j] / 2 : NAN;
  /* Adam with a tiny rate stays near the start point: the loop's own cost, nothing else. */
  int rc = run("loop cost: adam:3000@1e-5", "adam:3000@1e-5", f_plain, f_plain, theta, grad_s,
               noise_var);
  rc |= run("UDE: adam:5000@0.1,lbfgs:1000", "adam:5000@0.1,lbfgs:1000", f_plain, f_plain,
               theta, grad_s, noise_var);
  rc |= run("UDE: nde fit default (shooting)", "shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000",
            f_shoot, f_plain, x0, grad_s, noise_var);
  printf("one gradient of the 21-observation objective (RK4, h = 0.05, 100 steps): median %.1f us "
         "of %d\n",
         1e6 * grad_s, REPS);
  rc |= batch_segments(m, &so, &series, x0, f_plain, noise_var);
  nde_fit_destroy(&f_plain);
  nde_fit_destroy(&f_shoot);
  nde_rhs_destroy(&rhs);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
  free(theta);
  free(g);
  free(x0);
  return rc;
}
