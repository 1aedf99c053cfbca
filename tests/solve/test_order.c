/* Observed order of accuracy of every registered method under step refinement, on the forced
 * oscillator q' = a p, p' = -b q + c cos(t) (tests/support/split_models.h), whose exact solution
 * is known and which every method can integrate (it splits for leapfrog and yoshida4), for a
 * batch of three initial states: the order observed must be the registry's.  Methods that cannot
 * run on given steps (CVODE) must instead get more accurate as the tolerance falls.  The methods
 * come from the registry, so a new one is checked without changing this file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linear_ode.h"
#include "nde/solve.h"
#include "split_models.h"

static const double osc_th[3] = {1.3712, 0.8347, 0.6129};
static const double osc_u0[6] = {0.5873, -0.2291, -1.1084, 0.4127, 0.2235, 0.9631};

/* Max error over the observations and rows of a solve with the given options. */
static double osc_error(nde_solver_opts o, long *n_steps) {
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(3, &rhs), NDE_OK);
  nde_solver *s = NULL;
  nde_error e;
  if (nde_solver_create(rhs, &o, 3, &s, &e) != NDE_OK) print_error("%s: %s\n", o.method, e.msg);
  assert_non_null(s);
  const double t[3] = {0.1234, 0.9021, 2.3187};
  double Y[18];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, osc_th, 3, osc_u0, 3, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  double err = 0;
  for (int k = 1; k < 3; k++)
    for (int b = 0; b < 3; b++) {
      double q, p;
      nde_test_oscillator_exact(osc_th, t[0], osc_u0[2 * b], osc_u0[2 * b + 1], t[k], &q, &p);
      err = fmax(err, fmax(fabs(Y[k * 6 + 2 * b] - q), fabs(Y[k * 6 + 2 * b + 1] - p)));
    }
  if (n_steps) *n_steps = st.n_steps;
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return err;
}

static double fixed_error(const nde_solver_method_info *mi, int steps) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = mi->name;
  o.steps_per_interval = steps;
  o.fixed_step = 1; /* adaptive methods with a fixed-step mode (dopri5) */
  long n_steps;
  const double err = osc_error(o, &n_steps);
  assert_int_equal(n_steps, 2L * steps);
  return err;
}

static void every_fixed_step_method_converges_with_its_registered_order(void **state) {
  (void)state;
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->fixed_steps) continue;
    /* Coarse enough that the error is far above round-off at the finest grid. */
    const int base = 1 << (7 - (mi->order < 5 ? mi->order : 5));
    double prev = fixed_error(mi, base);
    for (int r = 1; r <= 3; r++) {
      const double e = fixed_error(mi, base << r);
      const double p = log2(prev / e);
      print_message("%-18s steps %4d, error %.3e, observed order %.3f (registry: %d)\n", mi->name,
                    base << r, e, p, mi->order);
      assert_true(fabs(p - mi->order) <= 0.25);
      prev = e;
    }
    checked++;
  }
  assert_true(checked >= 6);
}

static void every_method_without_fixed_steps_gets_more_accurate_as_the_tolerance_falls(
    void **state) {
  (void)state;
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (mi->fixed_steps) continue;
    assert_true(mi->adaptive);
    nde_solver_opts o = nde_solver_opts_default();
    o.method = mi->name;
    double prev = INFINITY;
    for (int e = 4; e <= 10; e += 3) {
      o.rtol = pow(10.0, -e);
      o.atol = 1e-3 * o.rtol;
      const double err = osc_error(o, NULL);
      print_message("%-12s rtol %.0e: error %.3e\n", mi->name, o.rtol, err);
      assert_true(err < prev / 30);
      assert_true(err < 1000 * o.rtol);
      prev = err;
    }
    checked++;
  }
  assert_true(checked >= 2);
}

static void step_size_mode_lands_on_every_observation_time(void **state) {
  (void)state;
  nde_rhs *rhs = nde_test_linear_rhs(1);
  assert_non_null(rhs);
  nde_solver_opts o = nde_solver_opts_default();
  o.dt = 0.05;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  /* 0.25 / 0.05 is 5 in exact arithmetic but not in floating point: exactly 5 steps expected;
   * 0.33 needs 7 steps, the last shortened to 0.03. */
  const double t[3] = {0.0, 0.25, 0.58};
  const double th[2] = {-0.5, 0.0};
  const double u0 = 1.0;
  double Y[3];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, th, 1, &u0, 3, t, Y, &st), NDE_OK);
  assert_int_equal(st.n_steps, 5 + 7);
  check_close(st.h_last, 0.03, 1e-12);
  check_close(st.t_stop, 0.58, 0.0);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
}

/* A solve stopped by its step budget reported the nominal dt as its last step even where the
 * observation grid cuts the steps shorter: "stopped at t = 0.075 after 3 steps (step size
 * 0.05)" for three steps of 0.025. */
static void a_step_budget_stop_reports_the_step_it_would_have_taken(void **state) {
  (void)state;
  nde_rhs *rhs = nde_test_linear_rhs(1);
  assert_non_null(rhs);
  const double th[2] = {-0.5, 0.0}, u0 = 1.0;
  double Y[5];
  nde_solve_stats st;
  struct {
    double dt;
    long max_steps;
    int n_t;
    double t[5];
    double t_stop, h_last;
  } cases[] = {
      {0.05, 3, 5, {0.0, 0.025, 0.05, 0.075, 0.1}, 0.075, 0.025}, /* grid finer than dt */
      {0.05, 6, 2, {0.0, 0.33}, 0.3, 0.03},                       /* the shortened last step */
      {0.1, 3, 2, {0.0, 1.0}, 0.3, 0.1},                          /* inside a long interval */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    nde_solver_opts o = nde_solver_opts_default();
    o.dt = cases[c].dt;
    o.max_steps = cases[c].max_steps;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
    assert_int_equal(nde_solver_solve(s, th, 1, &u0, cases[c].n_t, cases[c].t, Y, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_MAX_STEPS);
    assert_int_equal(st.n_steps, cases[c].max_steps);
    check_close(st.t_stop, cases[c].t_stop, 1e-12);
    check_close(st.h_last, cases[c].h_last, 1e-12);
    nde_solver_destroy(&s);
  }
  nde_rhs_destroy(&rhs);
}

static void unknown_method_and_bad_times_are_rejected_with_a_message(void **state) {
  (void)state;
  nde_rhs *rhs = nde_test_linear_rhs(1);
  assert_non_null(rhs);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "rk5";
  nde_solver *s = NULL;
  nde_error e;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, &e), NDE_ERR_ARG);
  assert_null(s);
  assert_int_equal(e.status, NDE_ERR_ARG);
  assert_non_null(strstr(e.msg, "unknown solver method 'rk5'"));
  o.method = "rk4";
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_ERR_ARG); /* batch above the model's */
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  const double t[3] = {0.0, 0.5, 0.5};
  const double th[2] = {-0.5, 0.0};
  const double u0 = 1.0;
  double Y[3];
  assert_int_equal(nde_solver_solve(s, th, 1, &u0, 3, t, Y, NULL), NDE_ERR_ARG);
  assert_non_null(strstr(nde_solver_errmsg(s), "strictly increasing"));
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_fixed_step_method_converges_with_its_registered_order),
      cmocka_unit_test(every_method_without_fixed_steps_gets_more_accurate_as_the_tolerance_falls),
      cmocka_unit_test(step_size_mode_lands_on_every_observation_time),
      cmocka_unit_test(a_step_budget_stop_reports_the_step_it_would_have_taken),
      cmocka_unit_test(unknown_method_and_bad_times_are_rejected_with_a_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
