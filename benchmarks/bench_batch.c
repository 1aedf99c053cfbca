/* Batches and adaptive error control (issue 13): the Lotka-Volterra UDE (2 -> 5 -> 5 -> 5 -> 2
 * rbf, 87 parameters) from 16 initial states spread over [0.3, 4]^2, 21 observations on [0, 5].
 * An adaptive method shares one step sequence across the rows of a batch and controls the RMS
 * error of the whole batch; here that is compared with solving the rows one by one (B = 1 each):
 * time, accepted steps, f calls (each call is one batched evaluation), and the error of every row
 * against a dopri5 solve of that row alone at rtol 1e-12 (max and median over the rows).  Rows:
 * solves and gradients (dopri5 + discrete, cvode-bdf + interp) at rtol 1e-6, atol 1e-8.
 *
 * Output: rows "row|batch|case|time B=16|steps, f calls|time 16 x B=1|ratio|-|info", and the
 * per-row error notes, read by benchmarks/run.sh.  One BLAS thread. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"

#define B_ROWS 16
#define K_OBS 21

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct world {
  nde_cmodel m;
  double *theta, U0[2 * B_ROWS], t[K_OBS], ref[K_OBS * 2 * B_ROWS], obs[K_OBS * 2 * B_ROWS];
  nde_obs_loss loss;
} world;

typedef struct outcome {
  double time;
  long steps, f;
  double err_max, err_med;
  int failed;
} outcome;

/* Solve (grad = 0) or evaluate the gradient (grad = method) of all rows, batched (B = 16) or one
 * by one, reps times; the per-row error of the solution against the reference. */
static outcome run(world *w, const char *solver, const char *grad, int batched, int reps) {
  outcome o = {0, 0, 0, 0, 0, 0};
  nde_solver_opts so = nde_solver_opts_default();
  so.method = solver;
  so.rtol = 1e-6;
  so.atol = 1e-8;
  nde_solver *s = NULL;
  nde_grad *g = NULL;
  if (nde_solver_create(w->m.rhs, &so, B_ROWS, &s, NULL) != NDE_OK) return (outcome){0, 0, 0, 0, 0, 1};
  nde_grad_opts go = nde_grad_opts_default();
  go.method = grad ? grad : "auto";
  if (nde_grad_create(s, &go, &g, NULL) != NDE_OK) return (outcome){0, 0, 0, 0, 0, 1};
  const size_t P = w->m.n_theta;
  double *Y = calloc((size_t)K_OBS * 2 * B_ROWS, sizeof *Y), *gt = calloc(P, sizeof *gt);
  double *Yr = calloc((size_t)K_OBS * 2, sizeof *Yr), *obs_r = calloc((size_t)K_OBS * 2, sizeof *obs_r);
  double err[B_ROWS];
  const double t0 = now();
  for (int r = 0; r < reps; r++) {
    o.steps = o.f = 0;
    const int nb = batched ? 1 : B_ROWS, B = batched ? B_ROWS : 1;
    for (int b = 0; b < nb; b++) {
      const double *u0 = w->U0 + 2 * b;
      double *Yb = batched ? Y : Yr;
      nde_grad_stats gs;
      double L;
      nde_status st;
      if (grad) {
        nde_obs_loss lo = w->loss;
        if (!batched) {
          for (int k = 0; k < K_OBS; k++)
            for (int i = 0; i < 2; i++) obs_r[2 * k + i] = w->obs[(size_t)k * 2 * B_ROWS + 2 * b + i];
          lo.obs = obs_r;
        }
        st = nde_grad_eval(g, w->theta, B, u0, K_OBS, w->t, nde_obs_loss_eval, &lo, &L, gt, NULL,
                           Yb, &gs);
      } else {
        st = nde_solver_solve(s, w->theta, B, u0, K_OBS, w->t, Yb, &gs.forward);
      }
      if (st != NDE_OK || gs.forward.reason != NDE_REASON_NONE) o.failed = 1;
      o.steps += gs.forward.n_steps;
      o.f += gs.forward.n_rhs + (grad ? gs.backward.n_rhs : 0);
      if (r == 0) {
        const int rows = batched ? B_ROWS : 1;
        for (int bb = 0; bb < rows; bb++) {
          const int row = batched ? bb : b;
          double e = 0;
          for (int k = 1; k < K_OBS; k++)
            for (int i = 0; i < 2; i++) {
              const double y = Yb[(size_t)k * 2 * rows + 2 * bb + i];
              const double yr = w->ref[(size_t)k * 2 * B_ROWS + 2 * row + i];
              e = fmax(e, fabs(y - yr) / (1e-8 / 1e-6 + fabs(yr)));
            }
          err[row] = e;
        }
      }
    }
  }
  o.time = (now() - t0) / reps;
  qsort(err, B_ROWS, sizeof *err, cmp_double);
  o.err_max = err[B_ROWS - 1];
  o.err_med = 0.5 * (err[B_ROWS / 2 - 1] + err[B_ROWS / 2]);
  free(Y);
  free(gt);
  free(Yr);
  free(obs_r);
  nde_grad_destroy(&g);
  nde_solver_destroy(&s);
  return o;
}

int main(void) {
  world w;
  memset(&w, 0, sizeof w);
  if (nde_cmodel_lv_ude(B_ROWS, &w.m) != NDE_OK) return 1;
  const size_t P = w.m.n_theta;
  w.theta = calloc(P, sizeof *w.theta);
  nde_rng rng;
  nde_rng_seed(&rng, 2018);
  nde_net_init(w.m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, w.theta);
  for (size_t i = 0; i < P; i++) w.theta[i] *= 0.3;
  for (int b = 0; b < B_ROWS; b++) {
    w.U0[2 * b] = 0.3 + 3.7 * nde_rng_uniform(&rng);
    w.U0[2 * b + 1] = 0.3 + 3.7 * nde_rng_uniform(&rng);
  }
  for (int k = 0; k < K_OBS; k++) w.t[k] = 5.0 * k / (K_OBS - 1.0);
  /* The reference: every row alone with dopri5 at rtol 1e-12; observations: it with noise. */
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "dopri5";
  o.rtol = 1e-12;
  o.atol = 1e-14;
  nde_solver *s = NULL;
  if (nde_solver_create(w.m.rhs, &o, 1, &s, NULL) != NDE_OK) return 1;
  double Yr[K_OBS * 2];
  for (int b = 0; b < B_ROWS; b++) {
    nde_solve_stats st;
    if (nde_solver_solve(s, w.theta, 1, w.U0 + 2 * b, K_OBS, w.t, Yr, &st) != NDE_OK ||
        st.reason != NDE_REASON_NONE)
      return 1;
    for (int k = 0; k < K_OBS; k++)
      for (int i = 0; i < 2; i++) {
        w.ref[(size_t)k * 2 * B_ROWS + 2 * b + i] = Yr[2 * k + i];
        w.obs[(size_t)k * 2 * B_ROWS + 2 * b + i] = Yr[2 * k + i] * (1 + 0.05 * nde_rng_normal(&rng));
      }
  }
  nde_solver_destroy(&s);
  w.loss.mean = 1;
  w.loss.obs = w.obs;
  printf("LV UDE, %d rows from initial states in [0.3, 4]^2, %d observations on [0, 5], rtol 1e-6, "
         "atol 1e-8; error: max over observations of |y - y_ref| / (0.01 + |y_ref|) per row\n",
         B_ROWS, K_OBS);
  const struct {
    const char *solver, *grad, *name;
  } cases[] = {{"dopri5", NULL, "dopri5 solve"},
               {"dopri5", "discrete", "dopri5 + discrete"},
               {"cvode-bdf", NULL, "cvode-bdf solve"},
               {"cvode-bdf", "interp", "cvode-bdf + interp"}};
  int bad = 0;
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int reps = cases[c].grad ? 20 : 50;
    outcome ob = run(&w, cases[c].solver, cases[c].grad, 1, reps);
    outcome os = run(&w, cases[c].solver, cases[c].grad, 0, reps);
    if (ob.failed || os.failed) {
      printf("row|batch|%s|-|failed|-|-|-|FAILED\n", cases[c].name);
      bad = 1;
      continue;
    }
    printf("row|batch|%s|%.3f ms|%ld steps, %ld f (B=16) vs %ld, %ld|%.3f ms|%.2f|-|info\n",
           cases[c].name, 1e3 * ob.time, ob.steps, ob.f, os.steps, os.f, 1e3 * os.time,
           ob.time / os.time);
    printf("%s: per-row error batched max %.2e median %.2e; one by one max %.2e median %.2e\n",
           cases[c].name, ob.err_max, ob.err_med, os.err_max, os.err_med);
  }
  free(w.theta);
  nde_cmodel_destroy(&w.m);
  return bad;
}
