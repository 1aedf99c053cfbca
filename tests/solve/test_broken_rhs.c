/* Failure paths provoked on purpose: a right-hand side that reports a recoverable failure, a
 * fatal one, a non-finite value, and a solve that exceeds its step budget; a VJP that fails in
 * the backward pass of every gradient method; a step size too small for the time resolution;
 * tolerances too small for double precision.  Each gives the documented status or reason,
 * never a crash or a silent partial result. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "nde/grad.h"
#include "split_models.h"

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


/* ---- the backward pass of every gradient method ---- */

typedef struct bw_run {
  nde_status st;
  double L, g[8], gu[8];
  nde_grad_stats gs;
  char msg[512];
} bw_run;

static bw_run failing_gradient(const char *solver, const char *method, nde_test_fail mode) {
  bw_run r;
  memset(&r, 0, sizeof r);
  /* The VJP fails at every t <= 0.9 (forward sensitivities use no VJP: their JVP fails). */
  nde_test_nlsplit ctx = {0, 0.0, 0, mode, 0.9, strcmp(method, "forward") == 0};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(&ctx, 2, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = solver;
  o.dt = 0.05;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
  nde_grad_opts go = nde_grad_opts_default();
  go.method = method;
  nde_grad *g = NULL;
  assert_int_equal(nde_grad_create(s, &go, &g, NULL), NDE_OK);
  double t[7], obs[7 * 8];
  for (int k = 0; k < 7; k++) t[k] = 0.4 * k;
  for (int q = 0; q < 7 * 8; q++) obs[q] = 0.3 * sin(0.7 * q);
  nde_obs_loss lo = {obs, NULL, 1, 0};
  r.st = nde_grad_eval(g, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 7, t, nde_obs_loss_eval,
                       &lo, &r.L, r.g, r.gu, NULL, &r.gs);
  strncpy(r.msg, nde_grad_errmsg(g), sizeof r.msg - 1);
  nde_grad_destroy(&g);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return r;
}

static void a_failing_vjp_is_an_outcome_for_every_gradient_method(void **state) {
  (void)state;
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++)
    for (int j = 0; j < nde_grad_method_count(); j++) {
      const char *sm = nde_solver_method_at(i)->name, *gm = nde_grad_method_at(j)->name;
      if (!nde_grad_method_supported(gm, sm)) continue;
      const int fwd = strcmp(gm, "forward") == 0;
      for (nde_test_fail mode = NDE_TEST_FAIL_RECOVERABLE; mode <= NDE_TEST_FAIL_NAN; mode++) {
        bw_run r = failing_gradient(sm, gm, mode);
        const nde_solve_stats *ps = fwd ? &r.gs.forward : &r.gs.backward;
        print_message("%-17s %-9s %-11s: %s at t = %.4g (%s)\n", sm, gm,
                      mode == NDE_TEST_FAIL_NAN ? "NaN" : "recoverable",
                      fwd ? "forward" : "backward", ps->t_stop, nde_stop_reason_str(ps->reason));
        assert_int_equal(r.st, NDE_OK);
        /* An adaptive backward solve retries with smaller steps and meets a boundary in time:
         * it may also end in a step-size underflow there. */
        assert_true(ps->reason == NDE_REASON_RHS_RECOVERABLE ||
                    ps->reason == NDE_REASON_RHS_FAILED || ps->reason == NDE_REASON_NONFINITE ||
                    ps->reason == NDE_REASON_STEP_UNDERFLOW);
        /* Where it stopped: at a failing time (a NaN in a quadrature shows only at the end). */
        assert_true(ps->t_stop <= 0.9 + 0.06);
        if (!fwd) {
          assert_int_equal(r.gs.forward.reason, NDE_REASON_NONE);
          assert_true(isfinite(r.L));
        }
        for (int q = 0; q < 8; q++) assert_true(isnan(r.g[q]) && isnan(r.gu[q]));
      }
      bw_run r = failing_gradient(sm, gm, NDE_TEST_FAIL_FATAL);
      assert_int_equal(r.st, NDE_ERR_CALLBACK);
      if (!strstr(r.msg, "-3")) print_error("%s/%s fatal: %s\n", sm, gm, r.msg);
      assert_non_null(strstr(r.msg, "-3"));
      checked++;
    }
  assert_true(checked >= 14);
}

/* Issue 16: a loss that overflows after a complete forward solve (observations near 1e200) is
 * the loss's failure, not the backward pass's: every method returns the infinite loss, NaN
 * gradients and no reason, instead of a backward solve failing on its infinite seed. */
static void a_loss_that_overflows_has_no_gradient_and_no_backward_failure(void **state) {
  (void)state;
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++)
    for (int j = 0; j < nde_grad_method_count(); j++) {
      const char *sm = nde_solver_method_at(i)->name, *gm = nde_grad_method_at(j)->name;
      if (!nde_grad_method_supported(gm, sm)) continue;
      nde_test_nlsplit ctx = {0, 0.0, 0, NDE_TEST_FAIL_NONE, 0.0, 0};
      nde_rhs *rhs = NULL;
      assert_int_equal(nde_test_nlsplit_rhs(&ctx, 2, &rhs), NDE_OK);
      nde_solver_opts o = nde_solver_opts_default();
      o.method = sm;
      o.dt = 0.05;
      nde_solver *s = NULL;
      assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
      nde_grad_opts go = nde_grad_opts_default();
      go.method = gm;
      nde_grad *g = NULL;
      assert_int_equal(nde_grad_create(s, &go, &g, NULL), NDE_OK);
      double t[4], obs[4 * 8];
      for (int k = 0; k < 4; k++) t[k] = 0.3 * k;
      for (int q = 0; q < 4 * 8; q++) obs[q] = 2.385e200 * (1 + 0.1 * q);
      nde_obs_loss lo = {obs, NULL, 1, 0};
      double L, gth[8], gu[8];
      nde_grad_stats gs;
      assert_int_equal(nde_grad_eval(g, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 4, t,
                                     nde_obs_loss_eval, &lo, &L, gth, gu, NULL, &gs),
                       NDE_OK);
      assert_true(isinf(L));
      assert_int_equal(gs.forward.reason, NDE_REASON_NONE);
      assert_int_equal(gs.backward.reason, NDE_REASON_NONE);
      for (int q = 0; q < 8; q++) assert_true(isnan(gth[q]) && isnan(gu[q]));
      nde_grad_destroy(&g);
      nde_solver_destroy(&s);
      nde_rhs_destroy(&rhs);
      checked++;
    }
  assert_true(checked >= 14);
}

/* ---- hardening ---- */

static void a_step_too_small_for_the_interval_stops_with_a_reason_and_never_wraps(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  const double th[3] = {1.1, 0.9, 0.3}, u0[2] = {0.5, -0.2};
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (mi->adaptive) continue;
    nde_solver_opts o = nde_solver_opts_default();
    o.method = mi->name;
    o.dt = 1e-20; /* span / dt = 1e20 steps: more than a long holds */
    o.max_steps = 1000;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
    /* From t = 0 the steps advance: the budget ends the solve. */
    const double t0[2] = {0.0, 1.0e3};
    double Y[4];
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s, th, 1, u0, 2, t0, Y, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_MAX_STEPS);
    assert_int_equal(st.n_steps, 1000);
    check_close(st.t_stop, 1000 * 1e-20, 1e-12);
    assert_true(isnan(Y[2]));
    /* From t = 0.5, t + dt == t: a step-size underflow at once. */
    const double t1[2] = {0.5, 1.5};
    assert_int_equal(nde_solver_solve(s, th, 1, u0, 2, t1, Y, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_STEP_UNDERFLOW);
    assert_int_equal(st.n_steps, 0);
    check_close(st.t_stop, 0.5, 0.0);
    nde_solver_destroy(&s);
  }
  nde_rhs_destroy(&rhs);
}

static void cvode_asked_for_too_much_accuracy_says_so(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  const double th[3] = {1.1, 0.9, 0.3}, u0[2] = {0.5, -0.2}, t[2] = {0.0, 1.0};
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->variable_order) continue;
    nde_solver_opts o = nde_solver_opts_default();
    o.method = mi->name;
    o.rtol = 1e-18; /* accepted (atol > 0), but below round-off at this solution's scale */
    o.atol = 1e-300;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
    double Y[4];
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s, th, 1, u0, 2, t, Y, &st), NDE_OK);
    print_message("%s at rtol 1e-18: %s\n", mi->name, nde_stop_reason_str(st.reason));
    assert_int_equal(st.reason, NDE_REASON_TOO_MUCH_ACCURACY);
    assert_non_null(strstr(nde_stop_reason_str(st.reason), "double precision"));
    nde_solver_destroy(&s);
    checked++;
  }
  assert_true(checked >= 2);
  nde_rhs_destroy(&rhs);
}

static void an_unmapped_cvode_failure_names_its_flag(void **state) {
  (void)state;
  /* Two observation times one ulp apart: CVODE cannot start (CV_TOO_CLOSE), an error whose
   * message carries the flag's name (the name SUNDIALS allocates is freed: the sanitizer
   * build checks for the leak). */
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "cvode-bdf";
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  const double th[3] = {1.1, 0.9, 0.3}, u0[2] = {0.5, -0.2}, t[2] = {1.0, nextafter(1.0, 2.0)};
  double Y[4];
  assert_int_equal(nde_solver_solve(s, th, 1, u0, 2, t, Y, NULL), NDE_ERR_NUMERIC);
  print_message("%s\n", nde_solver_errmsg(s));
  assert_non_null(strstr(nde_solver_errmsg(s), "CV_TOO_CLOSE"));
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
      cmocka_unit_test(a_failing_vjp_is_an_outcome_for_every_gradient_method),
      cmocka_unit_test(a_loss_that_overflows_has_no_gradient_and_no_backward_failure),
      cmocka_unit_test(a_step_too_small_for_the_interval_stops_with_a_reason_and_never_wraps),
      cmocka_unit_test(cvode_asked_for_too_much_accuracy_says_so),
      cmocka_unit_test(an_unmapped_cvode_failure_names_its_flag),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
