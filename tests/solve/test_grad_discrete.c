/* The discrete adjoint's whole-loss gradient (theta and U0) against central finite differences in
 * random directions, for the spiral and Lotka-Volterra UDE models with Euler and RK4, batched and
 * not; the recompute store gives the same gradient as the full store. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/grad.h"

typedef struct problem {
  const char *model;
  const char *method;
  int B;
  int recompute;
} problem;

typedef struct setup {
  nde_cmodel m;
  nde_solver *s;
  nde_grad *g;
  int B, n, K;
  double *theta, *U0, *t, *obs, *gth, *gu;
  nde_obs_loss loss;
} setup;

static double loss_at(setup *S, const double *theta, const double *U0) {
  double L;
  assert_int_equal(nde_grad_eval(S->g, theta, S->B, U0, S->K, S->t, nde_obs_loss_eval, &S->loss,
                                 &L, NULL, NULL, NULL, NULL),
                   NDE_OK);
  return L;
}

static void build(setup *S, const problem *p) {
  memset(S, 0, sizeof *S);
  S->B = p->B;
  if (strcmp(p->model, "spiral") == 0) {
    assert_int_equal(nde_cmodel_spiral(4, &S->m), NDE_OK);
    S->K = 9;
  } else {
    assert_int_equal(nde_cmodel_lv_ude(4, &S->m), NDE_OK);
    S->K = 7;
  }
  S->n = nde_rhs_get_info(S->m.rhs)->n_state;
  nde_rng rng;
  nde_rng_seed(&rng, 20260422);
  S->theta = calloc(S->m.n_theta, sizeof(double));
  S->gth = calloc(S->m.n_theta, sizeof(double));
  S->U0 = calloc((size_t)S->B * S->n, sizeof(double));
  S->gu = calloc((size_t)S->B * S->n, sizeof(double));
  S->t = calloc((size_t)S->K, sizeof(double));
  S->obs = calloc((size_t)S->K * S->B * S->n, sizeof(double));
  assert_int_equal(nde_net_init(S->m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, S->theta), NDE_OK);
  for (int k = 0; k < S->K; k++) S->t[k] = 0.137 + 0.1873 * k + 0.011 * sin(3.1 * k);
  nde_test_fill(&rng, (size_t)S->B * S->n, 0.4, 1.9, S->U0);
  /* Observations: the model's own solution under perturbed parameters, with a few missing. */
  double *th2 = calloc(S->m.n_theta, sizeof(double));
  for (size_t i = 0; i < S->m.n_theta; i++) th2[i] = S->theta[i] * (1.0 + 0.3 * nde_rng_normal(&rng));
  nde_solver_opts o = nde_solver_opts_default();
  o.method = p->method;
  o.dt = strcmp(p->method, "euler") == 0 ? 0.02 : 0.05;
  assert_int_equal(nde_solver_create(S->m.rhs, &o, 4, &S->s, NULL), NDE_OK);
  assert_int_equal(nde_solver_solve(S->s, th2, S->B, S->U0, S->K, S->t, S->obs, NULL), NDE_OK);
  free(th2);
  S->obs[(size_t)3 * S->B * S->n + 1] = NAN;
  S->obs[(size_t)(S->K - 1) * S->B * S->n] = NAN;
  S->loss.obs = S->obs;
  S->loss.mean = 1;
  nde_grad_opts go = nde_grad_opts_default();
  go.recompute = p->recompute;
  assert_int_equal(nde_grad_create(S->s, &go, &S->g, NULL), NDE_OK);
}

static void teardown_setup(setup *S) {
  nde_grad_destroy(&S->g);
  nde_solver_destroy(&S->s);
  nde_cmodel_destroy(&S->m);
  free(S->theta);
  free(S->gth);
  free(S->U0);
  free(S->gu);
  free(S->t);
  free(S->obs);
}

static void check_problem(const problem *p) {
  setup S;
  build(&S, p);
  double L;
  nde_grad_stats gs;
  assert_int_equal(nde_grad_eval(S.g, S.theta, S.B, S.U0, S.K, S.t, nde_obs_loss_eval, &S.loss,
                                 &L, S.gth, S.gu, NULL, &gs),
                   NDE_OK);
  assert_int_equal(gs.forward.reason, NDE_REASON_NONE);
  assert_true(gs.n_vjp > 0);
  assert_true(L > 0 && isfinite(L));
  nde_rng rng;
  nde_rng_seed(&rng, 977);
  const size_t P = S.m.n_theta, NU = (size_t)S.B * S.n;
  double *d = calloc(P, sizeof(double)), *tp = calloc(P, sizeof(double));
  double *du = calloc(NU, sizeof(double)), *up = calloc(NU, sizeof(double));
  for (int trial = 0; trial < 3; trial++) {
    for (size_t i = 0; i < P; i++) d[i] = nde_rng_normal(&rng);
    for (size_t q = 0; q < NU; q++) du[q] = nde_rng_normal(&rng);
    /* Five-point central differences (error O(eps^4)) along d in theta and du in U0. */
    const double eps = 1e-4 / sqrt(nde_test_dot(P, d, d) / (double)P);
    double Lt[4], Lu[4];
    const double off[4] = {-2, -1, 1, 2};
    for (int j = 0; j < 4; j++) {
      for (size_t i = 0; i < P; i++) tp[i] = S.theta[i] + off[j] * eps * d[i];
      Lt[j] = loss_at(&S, tp, S.U0);
      for (size_t q = 0; q < NU; q++) up[q] = S.U0[q] + off[j] * eps * du[q];
      Lu[j] = loss_at(&S, S.theta, up);
    }
    const double fd = (Lt[0] - 8 * Lt[1] + 8 * Lt[2] - Lt[3]) / (12 * eps);
    const double fdu = (Lu[0] - 8 * Lu[1] + 8 * Lu[2] - Lu[3]) / (12 * eps);
    const double an = nde_test_dot(P, S.gth, d), anu = nde_test_dot(NU, S.gu, du);
    print_message("%s/%s B=%d%s dir %d: theta adjoint %.12e fd %.12e; U0 adjoint %.12e fd %.12e\n",
                  p->model, p->method, p->B, p->recompute ? " recompute" : "", trial, an, fd, anu,
                  fdu);
    check_rel(an, fd, 1e-8, 1e-8);
    check_rel(anu, fdu, 1e-8, 1e-8);
  }
  free(d);
  free(tp);
  free(du);
  free(up);
  teardown_setup(&S);
}

#define PROBLEM_TEST(name, model, method, B, rec)       \
  static void name(void **state) {                      \
    (void)state;                                        \
    const problem p = {model, method, B, rec};          \
    check_problem(&p);                                  \
  }

PROBLEM_TEST(spiral_euler_gradient_matches_finite_differences, "spiral", "euler", 1, 0)
PROBLEM_TEST(spiral_rk4_gradient_matches_finite_differences, "spiral", "rk4", 1, 0)
PROBLEM_TEST(spiral_rk4_batched_gradient_matches_finite_differences, "spiral", "rk4", 3, 0)
PROBLEM_TEST(lv_ude_euler_batched_gradient_matches_finite_differences, "lv", "euler", 3, 0)
PROBLEM_TEST(lv_ude_rk4_gradient_matches_finite_differences, "lv", "rk4", 1, 0)
PROBLEM_TEST(lv_ude_rk4_batched_recompute_gradient_matches_finite_differences, "lv", "rk4", 4, 1)

static void recompute_store_gives_the_same_gradient_as_full_store(void **state) {
  (void)state;
  const char *models[] = {"spiral", "lv"};
  for (int mi = 0; mi < 2; mi++) {
    setup A, R;
    const problem pa = {models[mi], "rk4", 3, 0}, pr = {models[mi], "rk4", 3, 1};
    build(&A, &pa);
    build(&R, &pr);
    double La, Lr;
    assert_int_equal(nde_grad_eval(A.g, A.theta, 3, A.U0, A.K, A.t, nde_obs_loss_eval, &A.loss,
                                   &La, A.gth, A.gu, NULL, NULL),
                     NDE_OK);
    assert_int_equal(nde_grad_eval(R.g, R.theta, 3, R.U0, R.K, R.t, nde_obs_loss_eval, &R.loss,
                                   &Lr, R.gth, R.gu, NULL, NULL),
                     NDE_OK);
    assert_true(La == Lr);
    assert_true(nde_test_rel_err(A.m.n_theta, A.gth, R.gth, 1e-300) < 1e-13);
    assert_true(nde_test_rel_err((size_t)3 * A.n, A.gu, R.gu, 1e-300) < 1e-13);
    teardown_setup(&A);
    teardown_setup(&R);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spiral_euler_gradient_matches_finite_differences),
      cmocka_unit_test(spiral_rk4_gradient_matches_finite_differences),
      cmocka_unit_test(spiral_rk4_batched_gradient_matches_finite_differences),
      cmocka_unit_test(lv_ude_euler_batched_gradient_matches_finite_differences),
      cmocka_unit_test(lv_ude_rk4_gradient_matches_finite_differences),
      cmocka_unit_test(lv_ude_rk4_batched_recompute_gradient_matches_finite_differences),
      cmocka_unit_test(recompute_store_gives_the_same_gradient_as_full_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
