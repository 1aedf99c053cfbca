/* Failure paths provoked on purpose: a right-hand side that reports a recoverable failure, a
 * fatal one, a non-finite value, and a solve that exceeds its step budget.  Each gives the
 * documented status or reason, never a crash or a silent partial result. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nde/grad.h"

typedef struct broken {
  double t_fail; /* fail at or after this time */
  int code;      /* what to return: > 0 recoverable, < 0 fatal, 0 means write NaN */
} broken;

static int br_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                double *cache) {
  (void)cache;
  const broken *b = ctx;
  for (int r = 0; r < B; r++) dU[r] = -th[0] * U[r];
  if (t >= b->t_fail) {
    if (b->code != 0) return b->code;
    dU[B - 1] = NAN;
  }
  return 0;
}

static int br_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                  const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)t;
  (void)cache;
  for (int r = 0; r < B; r++) {
    if (gU) gU[r] += -th[0] * L[r];
    if (gth) gth[0] += -L[r] * U[r];
  }
  return 0;
}

static const nde_rhs_ops br_ops = {.f = br_f, .vjp = br_vjp, .jvp = NULL, .destroy = NULL};

typedef struct run {
  nde_status st;
  nde_solve_stats stats;
  double Y[2 * 5];
  char msg[512];
} run;

static run solve_broken(double t_fail, int code, long max_steps) {
  run r;
  memset(&r, 0, sizeof r);
  broken b = {t_fail, code};
  const nde_rhs_info info = {1, 1, 2, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&br_ops, &b, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.dt = 0.1;
  o.max_steps = max_steps;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
  const double th = 0.73, u0[2] = {1.25, -0.5}, t[5] = {0, 0.5, 1.0, 1.5, 2.0};
  r.st = nde_solver_solve(s, &th, 2, u0, 5, t, r.Y, &r.stats);
  strncpy(r.msg, nde_solver_errmsg(s), sizeof r.msg - 1);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return r;
}

static void recoverable_failure_stops_a_fixed_step_solve_with_a_reason(void **state) {
  (void)state;
  run r = solve_broken(0.93, 1, 1000000);
  assert_int_equal(r.st, NDE_OK);
  assert_int_equal(r.stats.reason, NDE_REASON_RHS_RECOVERABLE);
  check_close(r.stats.t_stop, 0.9, 1e-12); /* the step that starts at 0.9 reaches t >= 0.93 */
  assert_true(isfinite(r.Y[2]) && isfinite(r.Y[3]));   /* t = 0.5 was reached */
  for (int q = 4; q < 10; q++) assert_true(isnan(r.Y[q])); /* nothing after is made up */
}

static void fatal_failure_is_an_error_status_with_time_in_the_message(void **state) {
  (void)state;
  run r = solve_broken(1.21, -7, 1000000);
  assert_int_equal(r.st, NDE_ERR_CALLBACK);
  assert_non_null(strstr(r.msg, "fatal code -7"));
  assert_non_null(strstr(r.msg, "t = 1.2"));
}

static void non_finite_derivative_names_the_row_and_state(void **state) {
  (void)state;
  run r = solve_broken(1.55, 0, 1000000);
  assert_int_equal(r.st, NDE_OK);
  assert_int_equal(r.stats.reason, NDE_REASON_NONFINITE);
  assert_int_equal(r.stats.bad_row, 1);
  assert_int_equal(r.stats.bad_state, 0);
  check_close(r.stats.t_stop, 1.5, 1e-12);
  assert_true(isnan(r.Y[8]));
}

static void step_budget_counts_the_whole_solve(void **state) {
  (void)state;
  /* 5 steps per interval: a budget of 12 is used up inside the third interval. */
  run r = solve_broken(1e9, 0, 12);
  assert_int_equal(r.st, NDE_OK);
  assert_int_equal(r.stats.reason, NDE_REASON_MAX_STEPS);
  assert_int_equal(r.stats.n_steps, 12);
  check_close(r.stats.t_stop, 1.2, 1e-12);
}

static void gradient_of_a_failed_solve_is_nan_with_the_reason(void **state) {
  (void)state;
  broken b = {0.42, 3};
  const nde_rhs_info info = {1, 1, 1, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&br_ops, &b, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, NULL, 1, &s, NULL), NDE_OK);
  nde_grad *g = NULL;
  assert_int_equal(nde_grad_create(s, NULL, &g, NULL), NDE_OK);
  const double th = 0.73, u0 = 1.25, t[3] = {0, 0.4, 0.8}, obs[3] = {1, 1, 1};
  nde_obs_loss lo = {obs, NULL, 1, 0};
  double L, gth, gu;
  nde_grad_stats gs;
  assert_int_equal(
      nde_grad_eval(g, &th, 1, &u0, 3, t, nde_obs_loss_eval, &lo, &L, &gth, &gu, NULL, &gs),
      NDE_OK);
  assert_int_equal(gs.forward.reason, NDE_REASON_RHS_RECOVERABLE);
  assert_true(isnan(L) && isnan(gth) && isnan(gu));
  nde_grad_destroy(&g);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recoverable_failure_stops_a_fixed_step_solve_with_a_reason),
      cmocka_unit_test(fatal_failure_is_an_error_status_with_time_in_the_message),
      cmocka_unit_test(non_finite_derivative_names_the_row_and_state),
      cmocka_unit_test(step_budget_counts_the_whole_solve),
      cmocka_unit_test(gradient_of_a_failed_solve_is_nan_with_the_reason),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
