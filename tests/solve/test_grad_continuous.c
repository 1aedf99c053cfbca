/* Every gradient method on every solver that supports it, on the spiral and Lotka-Volterra UDE
 * models: against central finite differences of the loss computed with dopri5 at rtol = 1e-12,
 * and against each other, within a few multiples of the tolerance used; the seminorm and the
 * CVODES checkpoint settings do not change the gradient beyond the tolerance. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/grad.h"

#define B_ROWS 2

typedef struct world {
  nde_cmodel m;
  int n, K;
  size_t P, NU;
  double *theta, *U0, *t, *obs;
  nde_obs_loss loss;
  /* the finite-difference reference: directional derivatives along dth and du */
  double *dth, *du;
  double fd_th, fd_u;
} world;

static double tight_loss(world *w, const double *theta, const double *U0) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "dopri5";
  o.rtol = 1e-12;
  o.atol = 1e-14;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w->m.rhs, &o, B_ROWS, &s, NULL), NDE_OK);
  double *Y = calloc((size_t)w->K * w->NU, sizeof *Y), L;
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, theta, B_ROWS, U0, w->K, w->t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  assert_int_equal(nde_obs_loss_eval(&w->loss, w->K, B_ROWS, w->n, Y, &L, NULL), 0);
  free(Y);
  nde_solver_destroy(&s);
  return L;
}

static void make_world(world *w, const char *model) {
  memset(w, 0, sizeof *w);
  const int spiral = strcmp(model, "spiral") == 0;
  assert_int_equal(spiral ? nde_cmodel_spiral(B_ROWS, &w->m) : nde_cmodel_lv_ude(B_ROWS, &w->m),
                   NDE_OK);
  w->n = 2;
  w->K = spiral ? 9 : 11;
  w->P = w->m.n_theta;
  w->NU = (size_t)B_ROWS * 2;
  nde_rng rng;
  nde_rng_seed(&rng, 5150);
  w->theta = calloc(w->P, sizeof(double));
  w->dth = calloc(w->P, sizeof(double));
  w->U0 = calloc(w->NU, sizeof(double));
  w->du = calloc(w->NU, sizeof(double));
  w->t = calloc((size_t)w->K, sizeof(double));
  w->obs = calloc((size_t)w->K * w->NU, sizeof(double));
  assert_int_equal(nde_net_init(w->m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, w->theta), NDE_OK);
  if (!spiral)
    for (size_t i = 0; i < w->P; i++) w->theta[i] *= 0.3;
  const double T = spiral ? 1.5 : 3.0;
  for (int k = 0; k < w->K; k++) w->t[k] = T * k / (w->K - 1.0) + 0.013 * sin(2.1 * k) * (k > 0);
  if (spiral) {
    const double u0[4] = {2.0, 0.0, 1.55, -0.35};
    memcpy(w->U0, u0, sizeof u0);
  } else {
    const double u0[4] = {0.44249296, 4.6280594, 1.138, 2.517};
    memcpy(w->U0, u0, sizeof u0);
  }
  /* Observations: a perturbed model's solution, with one missing value. */
  double *th2 = calloc(w->P, sizeof(double));
  for (size_t i = 0; i < w->P; i++) th2[i] = w->theta[i] * (1.0 + 0.2 * nde_rng_normal(&rng));
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "dopri5";
  o.rtol = 1e-10;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w->m.rhs, &o, B_ROWS, &s, NULL), NDE_OK);
  assert_int_equal(nde_solver_solve(s, th2, B_ROWS, w->U0, w->K, w->t, w->obs, NULL), NDE_OK);
  nde_solver_destroy(&s);
  free(th2);
  w->obs[3 * w->NU + 1] = NAN;
  w->loss.obs = w->obs;
  w->loss.mean = 1;
  for (size_t i = 0; i < w->P; i++) w->dth[i] = nde_rng_normal(&rng);
  for (size_t q = 0; q < w->NU; q++) w->du[q] = nde_rng_normal(&rng);
  /* Five-point central differences: truncation O(eps^4), round-off ~1e-16 L / eps. */
  const double eps = 1e-3 / sqrt(nde_test_dot(w->P, w->dth, w->dth) / (double)w->P);
  const double epu = 1e-3;
  const double off[4] = {-2, -1, 1, 2};
  double Lt[4], Lu[4];
  double *tp = calloc(w->P, sizeof(double)), *up = calloc(w->NU, sizeof(double));
  for (int j = 0; j < 4; j++) {
    for (size_t i = 0; i < w->P; i++) tp[i] = w->theta[i] + off[j] * eps * w->dth[i];
    Lt[j] = tight_loss(w, tp, w->U0);
    for (size_t q = 0; q < w->NU; q++) up[q] = w->U0[q] + off[j] * epu * w->du[q];
    Lu[j] = tight_loss(w, w->theta, up);
  }
  w->fd_th = (Lt[0] - 8 * Lt[1] + 8 * Lt[2] - Lt[3]) / (12 * eps);
  w->fd_u = (Lu[0] - 8 * Lu[1] + 8 * Lu[2] - Lu[3]) / (12 * epu);
  free(tp);
  free(up);
}

static void free_world(world *w) {
  nde_cmodel_destroy(&w->m);
  free(w->theta);
  free(w->dth);
  free(w->U0);
  free(w->du);
  free(w->t);
  free(w->obs);
}

typedef struct result {
  double dth, du; /* the gradient along the test directions */
  nde_grad_stats gs;
  double *g;      /* the whole gradient (P), owned */
} result;

static result run(world *w, const char *solver, const char *method, double rtol,
                  const nde_grad_opts *gopt) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = solver;
  o.rtol = rtol;
  o.atol = 1e-3 * rtol;
  o.dt = 0.01; /* fixed-step methods (rk4); adaptive ones read rtol */
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w->m.rhs, &o, B_ROWS, &s, NULL), NDE_OK);
  nde_grad_opts go = gopt ? *gopt : nde_grad_opts_default();
  go.method = method;
  nde_grad *g = NULL;
  nde_status st = nde_grad_create(s, &go, &g, NULL);
  if (st != NDE_OK) print_error("%s/%s: %s\n", solver, method, g ? nde_grad_errmsg(g) : "");
  assert_int_equal(st, NDE_OK);
  result r;
  r.g = calloc(w->P, sizeof(double));
  double gu[2 * B_ROWS], L;
  st = nde_grad_eval(g, w->theta, B_ROWS, w->U0, w->K, w->t, nde_obs_loss_eval, &w->loss, &L,
                     r.g, gu, NULL, &r.gs);
  if (st != NDE_OK) print_error("%s/%s: %s\n", solver, method, nde_grad_errmsg(g));
  assert_int_equal(st, NDE_OK);
  assert_int_equal(r.gs.forward.reason, NDE_REASON_NONE);
  assert_int_equal(r.gs.backward.reason, NDE_REASON_NONE);
  r.dth = nde_test_dot(w->P, r.g, w->dth);
  r.du = nde_test_dot(w->NU, gu, w->du);
  nde_grad_destroy(&g);
  nde_solver_destroy(&s);
  return r;
}

typedef struct combo {
  const char *solver, *method;
} combo;

static const combo combos[] = {
    {"rk4", "discrete"},         {"rk4", "backsolve"},         {"dopri5", "discrete"},
    {"dopri5", "backsolve"},     {"dopri5", "interp"},         {"cvode-adams", "backsolve"},
    {"cvode-adams", "interp"},   {"cvode-adams", "forward"},   {"cvode-bdf", "backsolve"},
    {"cvode-bdf", "interp"},     {"cvode-bdf", "forward"},
};
#define N_COMBOS (sizeof combos / sizeof combos[0])

static void every_method_matches_finite_differences(const char *model) {
  world w;
  make_world(&w, model);
  const double rtol = 1e-8;
  double *ref = NULL;
  for (size_t c = 0; c < N_COMBOS; c++) {
    result r = run(&w, combos[c].solver, combos[c].method, rtol, NULL);
    const double eth = fabs(r.dth - w.fd_th) / fabs(w.fd_th);
    const double eu = fabs(r.du - w.fd_u) / fabs(w.fd_u);
    double ecross = 0;
    if (!ref)
      ref = r.g;
    else
      ecross = nde_test_rel_err(w.P, r.g, ref, 1e-300);
    print_message("%s %-11s %-9s: theta rel err %.2e, U0 rel err %.2e, vs rk4/discrete %.2e; "
                  "fwd %ld steps, bwd %ld steps, %ld vjp\n",
                  model, combos[c].solver, combos[c].method, eth, eu, ecross,
                  r.gs.forward.n_steps, r.gs.backward.n_steps, r.gs.n_vjp);
    /* A few multiples of the tolerance.  The built-in methods control the local error tightly
     * (and rk4 with h = 0.01 is more accurate than rtol here): 100 rtol.  CVODE's variable-order
     * multistep methods reach a global error of 10-100 rtol on their own (see the tolerance
     * study in benchmarks/bench_adjoint.c): 1000 rtol.  The finite differences themselves carry
     * ~2e-7 relative error on the spiral (its y^3 input makes high derivatives large). */
    const double tol = (nde_solver_method_find(combos[c].solver)->variable_order ? 1000 : 100) * rtol;
    assert_true(eth < tol);
    assert_true(eu < tol);
    if (r.g != ref) {
      assert_true(ecross < tol);
      free(r.g);
    }
  }
  free(ref);
  free_world(&w);
}

static void every_method_matches_finite_differences_on_the_spiral(void **state) {
  (void)state;
  every_method_matches_finite_differences("spiral");
}

static void every_method_matches_finite_differences_on_the_lv_ude(void **state) {
  (void)state;
  every_method_matches_finite_differences("lv");
}

static void the_seminorm_saves_backward_steps_at_the_same_accuracy(void **state) {
  (void)state;
  world w;
  make_world(&w, "spiral");
  const char *solvers[] = {"dopri5", "dopri5", "cvode-bdf"};
  const char *methods[] = {"backsolve", "interp", "interp"};
  for (int c = 0; c < 3; c++) {
    nde_grad_opts go = nde_grad_opts_default();
    go.seminorm = 0;
    result full = run(&w, solvers[c], methods[c], 1e-6, &go);
    go.seminorm = 1;
    result semi = run(&w, solvers[c], methods[c], 1e-6, &go);
    const double ef = fabs(full.dth - w.fd_th) / fabs(w.fd_th);
    const double es = fabs(semi.dth - w.fd_th) / fabs(w.fd_th);
    print_message("%s/%s rtol 1e-6: full norm %ld backward steps (%ld f) err %.2e; seminorm %ld "
                  "(%ld f) err %.2e\n",
                  solvers[c], methods[c], full.gs.backward.n_steps, full.gs.n_vjp, ef,
                  semi.gs.backward.n_steps, semi.gs.n_vjp, es);
    assert_true(semi.gs.backward.n_steps <= full.gs.backward.n_steps);
    assert_true(es < 3e-4 && ef < 3e-4);
    free(full.g);
    free(semi.g);
  }
  free_world(&w);
}

static void cvodes_checkpoint_settings_do_not_change_the_gradient(void **state) {
  (void)state;
  world w;
  make_world(&w, "lv");
  const long steps[4] = {1, 2, 7, 500};
  result base = run(&w, "cvode-bdf", "interp", 1e-8, NULL);
  for (int i = 0; i < 4; i++) {
    nde_grad_opts go = nde_grad_opts_default();
    go.checkpoint_steps = steps[i];
    result r = run(&w, "cvode-bdf", "interp", 1e-8, &go);
    const double e = nde_test_rel_err(w.P, r.g, base.g, 1e-300);
    print_message("checkpoint every %ld steps, hermite: rel diff %.2e\n", steps[i], e);
    assert_true(e < 100 * 1e-8);
    free(r.g);
  }
  free(base.g);
  /* Polynomial interpolation is refused with the reason (it crashed CVODES with 4 or fewer steps
   * per checkpoint: docs/cli.md). */
  nde_solver_opts so = nde_solver_opts_default();
  so.method = "cvode-bdf";
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w.m.rhs, &so, 1, &s, NULL), NDE_OK);
  nde_grad_opts go = nde_grad_opts_default();
  go.method = "interp";
  go.interp = "polynomial";
  nde_grad *g = NULL;
  nde_error err;
  assert_int_equal(nde_grad_create(s, &go, &g, &err), NDE_ERR_ARG);
  assert_null(g);
  assert_non_null(strstr(err.msg, "interp = 'polynomial' is refused"));
  nde_solver_destroy(&s);
  free_world(&w);
}

static void unsupported_pairs_are_rejected_with_a_message(void **state) {
  (void)state;
  nde_cmodel m;
  assert_int_equal(nde_cmodel_spiral(1, &m), NDE_OK);
  const combo bad[] = {{"rk4", "interp"},     {"rk4", "forward"},
                       {"dopri5", "forward"}, {"cvode-bdf", "discrete"},
                       {"rk4", "adjoint"},    {"implicit-midpoint", "backsolve"}};
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    assert_false(nde_grad_method_supported(bad[c].method, bad[c].solver));
    nde_solver_opts o = nde_solver_opts_default();
    o.method = bad[c].solver;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(m.rhs, &o, 1, &s, NULL), NDE_OK);
    nde_grad_opts go = nde_grad_opts_default();
    go.method = bad[c].method;
    nde_grad *g = NULL;
    assert_int_equal(nde_grad_create(s, &go, &g, NULL), NDE_ERR_ARG);
    assert_null(g);
    nde_solver_destroy(&s);
  }
  nde_cmodel_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_method_matches_finite_differences_on_the_spiral),
      cmocka_unit_test(every_method_matches_finite_differences_on_the_lv_ude),
      cmocka_unit_test(the_seminorm_saves_backward_steps_at_the_same_accuracy),
      cmocka_unit_test(cvodes_checkpoint_settings_do_not_change_the_gradient),
      cmocka_unit_test(unsupported_pairs_are_rejected_with_a_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
