/* Observed order of accuracy of the fixed-step methods under step refinement, on
 * du/dt = a u + c cos(t), whose exact solution is known, for a batch of three initial states. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linear_ode.h"
#include "nde/solve.h"

static double max_error(const char *method, int steps) {
  const nde_rhs_ops ops = nde_test_linear_ops;
  const nde_rhs_info info = {1, 2, 3, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = method;
  o.steps_per_interval = steps;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 3, &s, NULL), NDE_OK);
  const double *th = nde_test_linear_theta, *u0 = nde_test_linear_u0;
  const double t[3] = {0.1234, 0.9021, 2.3187};
  double Y[9];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, th, 3, u0, 3, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  assert_int_equal(st.n_steps, 2L * steps);
  double err = 0;
  for (int k = 1; k < 3; k++)
    for (int b = 0; b < 3; b++)
      err = fmax(err, fabs(Y[k * 3 + b] - nde_test_linear_exact(th, t[0], u0[b], t[k])));
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return err;
}

static void observed_order(const char *method, int expect, int base) {
  double prev = max_error(method, base);
  for (int r = 1; r <= 3; r++) {
    const double e = max_error(method, base << r);
    const double p = log2(prev / e);
    print_message("%s: steps %d, error %.3e, observed order %.3f\n", method, base << r, e, p);
    assert_true(fabs(p - expect) <= 0.2);
    prev = e;
  }
}

static void euler_converges_with_order_one(void **state) {
  (void)state;
  observed_order("euler", 1, 64);
}

static void rk4_converges_with_order_four(void **state) {
  (void)state;
  observed_order("rk4", 4, 8);
}

static void step_size_mode_lands_on_every_observation_time(void **state) {
  (void)state;
  const nde_rhs_ops ops = nde_test_linear_ops;
  const nde_rhs_info info = {1, 2, 1, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
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

static void unknown_method_and_bad_times_are_rejected_with_a_message(void **state) {
  (void)state;
  const nde_rhs_ops ops = nde_test_linear_ops;
  const nde_rhs_info info = {1, 2, 1, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
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
      cmocka_unit_test(euler_converges_with_order_one),
      cmocka_unit_test(rk4_converges_with_order_four),
      cmocka_unit_test(step_size_mode_lands_on_every_observation_time),
      cmocka_unit_test(unknown_method_and_bad_times_are_rejected_with_a_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
