/* Adjoint benchmark (issue 5): time per gradient, forward/backward step counts and VJP counts for
 * every solver x gradient-method pair on
 *   spiral1000: the spiral neural ODE, 1000 observations on [0, 25], rtol 1e-6, atol 1e-8
 *   spiral30:   the spiral neural ODE, 30 observations on [0, 1.5], rtol 1e-3, atol 1e-6
 *   lv21:       the Lotka-Volterra UDE, 21 observations on [0, 5], rtol 1e-6, atol 1e-8
 * rk4 (and implicit-midpoint, a fixed-step method with a Newton solve per step: the cost of an
 * implicit step next to an explicit one) takes one step per observation interval on spiral1000
 * and h = 0.01 elsewhere.  Accuracy:
 * the relative 2-norm error of dL/dtheta against dopri5 + interp at rtol 1e-11 (its own
 * discretisation's gradient is the reference for none of the pairs).  Target: dopri5 + interp
 * within 3x of rk4 + discrete on spiral1000.  Extra rows: the seminorm's effect, and cvode-bdf's
 * band Jacobian against matrix-free GMRES.
 *
 * Output: rows "row|adjoint|case|time|steps fwd/bwd, vjp|rel err|ratio to rk4+discrete|target|
 * result" and notes, read by benchmarks/run.sh.  One BLAS thread (set by run.sh / meson). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/grad.h"

#define TARGET_RATIO 3.0

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct problem {
  const char *name;
  int spiral;
  int K;
  double T, rtol, atol, rk4_dt; /* rk4_dt 0: one step per interval */
  nde_cmodel m;
  double *theta, *U0, *t, *obs, *gref;
  nde_obs_loss loss;
  double t_rk4; /* time of rk4 + discrete */
} problem;

typedef struct pair {
  const char *solver, *method;
  int seminorm;
  const char *linsol;
} pair;

static int eval(problem *p, const pair *pr, double rtol, double atol, int reps_min,
                double min_time, double *g, double *t_per, nde_grad_stats *gs) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = pr->solver;
  o.rtol = rtol;
  o.atol = atol;
  if (pr->linsol) o.cvode_linsol = pr->linsol;
  if (!nde_solver_method_find(pr->solver)->adaptive) {
    if (p->rk4_dt > 0)
      o.dt = p->rk4_dt;
    else
      o.steps_per_interval = 1;
  }
  nde_solver *s = NULL;
  if (nde_solver_create(p->m.rhs, &o, 1, &s, NULL) != NDE_OK) return -1;
  nde_grad_opts go = nde_grad_opts_default();
  go.method = pr->method;
  go.seminorm = pr->seminorm;
  nde_grad *gr = NULL;
  if (nde_grad_create(s, &go, &gr, NULL) != NDE_OK) {
    fprintf(stderr, "%s\n", nde_grad_errmsg(gr));
    nde_solver_destroy(&s);
    return -1;
  }
  double L;
  int n = 0;
  const double t0 = now();
  nde_rhs_reset_counts(p->m.rhs);
  do {
    if (nde_grad_eval(gr, p->theta, 1, p->U0, p->K, p->t, nde_obs_loss_eval, &p->loss, &L, g,
                      NULL, NULL, gs) != NDE_OK) {
      fprintf(stderr, "%s %s/%s: %s\n", p->name, pr->solver, pr->method, nde_grad_errmsg(gr));
      n = -1;
      break;
    }
    n++;
  } while (n < reps_min || now() - t0 < min_time);
  *t_per = (now() - t0) / (n > 0 ? n : 1);
  nde_grad_destroy(&gr);
  nde_solver_destroy(&s);
  return n > 0 && gs->forward.reason == NDE_REASON_NONE && gs->backward.reason == NDE_REASON_NONE
             ? 0
             : -1;
}

static double rel_err(size_t n, const double *a, const double *b) {
  double d = 0, nb = 0;
  for (size_t i = 0; i < n; i++) {
    d += (a[i] - b[i]) * (a[i] - b[i]);
    nb += b[i] * b[i];
  }
  return sqrt(d / nb);
}

static int setup(problem *p) {
  if ((p->spiral ? nde_cmodel_spiral(1, &p->m) : nde_cmodel_lv_ude(1, &p->m)) != NDE_OK) return -1;
  const size_t P = p->m.n_theta;
  p->theta = calloc(P, sizeof(double));
  p->gref = calloc(P, sizeof(double));
  p->U0 = calloc(2, sizeof(double));
  p->t = calloc((size_t)p->K, sizeof(double));
  p->obs = calloc((size_t)p->K * 2, sizeof(double));
  nde_rng rng;
  nde_rng_seed(&rng, 2018);
  nde_net_init(p->m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, p->theta);
  for (size_t i = 0; i < P; i++) p->theta[i] *= p->spiral ? 0.5 : 0.3;
  for (int k = 0; k < p->K; k++) p->t[k] = p->T * k / (p->K - 1.0);
  if (p->spiral) {
    p->U0[0] = 2.0;
    p->U0[1] = 0.0;
  } else {
    p->U0[0] = 0.44249296;
    p->U0[1] = 4.6280594;
  }
  /* Observations: the model under perturbed parameters. */
  double *th2 = calloc(P, sizeof(double));
  for (size_t i = 0; i < P; i++) th2[i] = p->theta[i] * (1 + 0.2 * nde_rng_normal(&rng));
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "dopri5";
  o.rtol = 1e-10;
  o.atol = 1e-12;
  nde_solver *s = NULL;
  nde_solver_create(p->m.rhs, &o, 1, &s, NULL);
  nde_solve_stats st;
  nde_solver_solve(s, th2, 1, p->U0, p->K, p->t, p->obs, &st);
  nde_solver_destroy(&s);
  free(th2);
  if (st.reason != NDE_REASON_NONE) return -1;
  p->loss.obs = p->obs;
  p->loss.mean = 1;
  const pair ref = {"dopri5", "interp", 1, NULL};
  double tt;
  nde_grad_stats gs;
  return eval(p, &ref, 1e-11, 1e-13, 1, 0.0, p->gref, &tt, &gs);
}

static const pair pairs[] = {
    {"rk4", "discrete", 1, NULL},          {"rk4", "backsolve", 1, NULL},
    {"dopri5", "discrete", 1, NULL},       {"dopri5", "backsolve", 1, NULL},
    {"dopri5", "interp", 1, NULL},         {"cvode-adams", "backsolve", 1, NULL},
    {"cvode-adams", "interp", 1, NULL},    {"cvode-adams", "forward", 1, NULL},
    {"cvode-bdf", "backsolve", 1, NULL},   {"cvode-bdf", "interp", 1, NULL},
    {"cvode-bdf", "forward", 1, NULL},     {"implicit-midpoint", "discrete", 1, NULL},
    /* the seminorm's effect and the BDF linear solver */
    {"dopri5", "backsolve", 0, NULL},      {"dopri5", "interp", 0, NULL},
    {"cvode-adams", "interp", 0, NULL},    {"cvode-bdf", "interp", 0, NULL},
    {"cvode-bdf", "interp", 1, "gmres"},
};
#define N_PAIRS (sizeof pairs / sizeof pairs[0])

int main(void) {
  problem probs[3] = {
      {"spiral1000", 1, 1000, 25.0, 1e-6, 1e-8, 0.0, {0}, 0, 0, 0, 0, 0, {0}, 0},
      {"spiral30", 1, 30, 1.5, 1e-3, 1e-6, 0.01, {0}, 0, 0, 0, 0, 0, {0}, 0},
      {"lv21", 0, 21, 5.0, 1e-6, 1e-8, 0.01, {0}, 0, 0, 0, 0, 0, {0}, 0},
  };
  int status = 0;
  for (int pi = 0; pi < 3; pi++) {
    problem *p = &probs[pi];
    if (setup(p) != 0) {
      fprintf(stderr, "bench_adjoint: setting up %s failed\n", p->name);
      return 1;
    }
    double *g = calloc(p->m.n_theta, sizeof(double));
    for (size_t c = 0; c < N_PAIRS; c++) {
      const pair *pr = &pairs[c];
      double tp;
      nde_grad_stats gs;
      char cs[96], steps[96], err[32], ratio[32];
      snprintf(cs, sizeof cs, "%s %s+%s%s%s", p->name, pr->solver, pr->method,
               pr->seminorm ? "" : " (full norm)", pr->linsol ? " (gmres)" : "");
      if (eval(p, pr, p->rtol, p->atol, 3, 0.3, g, &tp, &gs) != 0) {
        printf("row|adjoint|%s|-|solve stopped: %s / %s|-|-|-|FAILED\n", cs,
               nde_stop_reason_str(gs.forward.reason), nde_stop_reason_str(gs.backward.reason));
        status = 1;
        continue;
      }
      const int is_ref = strcmp(pr->solver, "rk4") == 0 && strcmp(pr->method, "discrete") == 0;
      if (is_ref) p->t_rk4 = tp;
      const int target = pi == 0 && strcmp(pr->solver, "dopri5") == 0 &&
                         strcmp(pr->method, "interp") == 0 && pr->seminorm;
      snprintf(steps, sizeof steps, "%ld/%ld steps, %ld f, %ld vjp, %ld jvp", gs.forward.n_steps,
               gs.backward.n_steps, gs.forward.n_rhs + gs.backward.n_rhs, gs.n_vjp,
               gs.forward.n_jvp + gs.backward.n_jvp);
      snprintf(err, sizeof err, "err %.1e", rel_err(p->m.n_theta, g, p->gref));
      snprintf(ratio, sizeof ratio, "%.2f", p->t_rk4 > 0 ? tp / p->t_rk4 : NAN);
      printf("row|adjoint|%s|%.3f ms|%s|%s|%s|%s|%s\n", cs, 1e3 * tp, steps, err, ratio,
             target ? "<= 3.0" : "-",
             target ? (tp <= TARGET_RATIO * p->t_rk4 ? "met" : "MISSED") : "-");
      fflush(stdout);
    }
    free(g);
    nde_cmodel_destroy(&p->m);
    free(p->theta);
    free(p->gref);
    free(p->U0);
    free(p->t);
    free(p->obs);
  }
  printf("adjoint: err = 2-norm of (g - g_ref) / g_ref with g_ref from dopri5+interp at rtol 1e-11; ratio = "
         "time / rk4+discrete on the same problem; steps = forward/backward\n");
  return status;
}
