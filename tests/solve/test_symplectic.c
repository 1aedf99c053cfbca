/* Structure preservation.  On the exact pendulum H = p^2/2 - cos q over 10^4 periods the
 * symplectic methods' energy error stays bounded (its maximum over the last tenth of the run is
 * no larger than over the first tenth) while RK4's drifts; implicit midpoint conserves the
 * quadratic invariant of the harmonic oscillator to round-off.  Constant steps: the observation
 * times are equally spaced and each interval gets the same number of steps.  implicit-midpoint
 * without a JVP (Jacobian from difference quotients) gives the same solution and an exact
 * gradient; a Newton iteration that cannot converge ends the solve with a reason. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/grad.h"
#include "split_models.h"

typedef struct drift {
  double first, last; /* max |H - H0| over the first and the last tenth */
} drift;

/* Pendulum from (q, p) = (1.3, 0): amplitude 1.3 rad, period ~7.2.  n_obs - 1 intervals of 1.0
 * with steps_per_interval steps each. */
static drift pendulum_energy(const char *method, int n_obs, int steps_per_interval) {
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_pendulum(1, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = method;
  o.steps_per_interval = steps_per_interval;
  o.max_steps = 100000000;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  double *t = malloc((size_t)n_obs * sizeof *t), *Y = malloc((size_t)n_obs * 2 * sizeof *Y);
  for (int k = 0; k < n_obs; k++) t[k] = (double)k;
  const double g = 1.0, u0[2] = {1.3, 0.0};
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, &g, 1, u0, n_obs, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  const double H0 = 0.5 * u0[1] * u0[1] - cos(u0[0]);
  drift d = {0, 0};
  const int tenth = n_obs / 10;
  for (int k = 0; k < n_obs; k++) {
    const double dH = fabs(0.5 * Y[2 * k + 1] * Y[2 * k + 1] - cos(Y[2 * k]) - H0);
    if (k < tenth) d.first = fmax(d.first, dH);
    if (k >= n_obs - tenth) d.last = fmax(d.last, dH);
  }
  free(t);
  free(Y);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return d;
}

static void symplectic_methods_keep_the_pendulum_energy_bounded_and_rk4_does_not(void **state) {
  (void)state;
  /* 10^4 periods of ~7.2 time units; h = 0.2 (leapfrog, rk4), 0.5 (yoshida4). */
  const int n_obs = 72001;
  drift lf = pendulum_energy("leapfrog", n_obs, 5);
  drift y4 = pendulum_energy("yoshida4", n_obs, 2);
  drift rk = pendulum_energy("rk4", n_obs, 5);
  print_message("energy error, first / last tenth of 10^4 periods: leapfrog h = 0.2 %.3e / "
                "%.3e; yoshida4 h = 0.5 %.3e / %.3e; rk4 h = 0.2 %.3e / %.3e\n",
                lf.first, lf.last, y4.first, y4.last, rk.first, rk.last);
  assert_true(lf.last <= 1.05 * lf.first && lf.first < 1e-2);
  assert_true(y4.last <= 1.05 * y4.first && y4.first < 1e-2);
  /* RK4 loses energy at a steady rate: the last tenth ends ~10 times lower than the first. */
  assert_true(rk.last > 5 * rk.first);
}

static void implicit_midpoint_conserves_the_quadratic_invariant(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(2, &rhs), NDE_OK);
  const double th[3] = {1.7, 2.3, 0.0}; /* q' = 1.7 p, p' = -2.3 q: invariant 2.3 q^2 + 1.7 p^2 */
  const double u0[4] = {0.83, -0.41, -1.27, 0.66};
  const int n_obs = 2001;
  double *t = malloc(n_obs * sizeof *t), *Y = malloc((size_t)n_obs * 4 * sizeof *Y);
  for (int k = 0; k < n_obs; k++) t[k] = 0.5 * k;
  const char *methods[2] = {"implicit-midpoint", "rk4"};
  double worst[2] = {0, 0};
  for (int m = 0; m < 2; m++) {
    nde_solver_opts o = nde_solver_opts_default();
    o.method = methods[m];
    o.steps_per_interval = 5; /* h = 0.1, 10^4 steps */
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s, th, 2, u0, n_obs, t, Y, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_NONE);
    for (int b = 0; b < 2; b++) {
      const double I0 = th[1] * u0[2 * b] * u0[2 * b] + th[0] * u0[2 * b + 1] * u0[2 * b + 1];
      for (int k = 0; k < n_obs; k++) {
        const double *y = Y + (size_t)k * 4 + 2 * b;
        worst[m] = fmax(worst[m], fabs(th[1] * y[0] * y[0] + th[0] * y[1] * y[1] - I0) / I0);
      }
    }
    nde_solver_destroy(&s);
  }
  print_message("relative change of 2.3 q^2 + 1.7 p^2 over 10^4 steps of h = 0.1: "
                "implicit-midpoint %.2e, rk4 %.2e\n",
                worst[0], worst[1]);
  assert_true(worst[0] < 1e-12);
  assert_true(worst[1] > 1e-6);
  free(t);
  free(Y);
  nde_rhs_destroy(&rhs);
}


/* The oscillator without its JVP: implicit-midpoint's Newton matrix from difference quotients. */
static int osc_f_only(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                      double *cache) {
  nde_rhs *full = ctx;
  (void)cache;
  return nde_rhs_f(full, t, B, U, th, dU, NULL);
}
static int osc_vjp_only(void *ctx, double t, int B, const double *U, const double *th,
                        const double *L, const double *cache, double *gU, double *gth) {
  (void)cache;
  return nde_rhs_vjp(ctx, t, B, U, th, L, NULL, gU, gth);
}

static void implicit_midpoint_without_a_jvp_uses_difference_quotients_and_stays_exact(
    void **state) {
  (void)state;
  nde_rhs *full = NULL, *nojvp = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(NULL, 2, &full), NDE_OK);
  const nde_rhs_ops ops = {.f = osc_f_only, .vjp = osc_vjp_only, .jvp = NULL};
  const nde_rhs_info info = {4, 8, 2, 0, NULL};
  assert_int_equal(nde_rhs_create(&ops, full, NDE_BORROW, &info, &nojvp, NULL), NDE_OK);
  assert_false(nde_rhs_has_jvp(nojvp));
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "implicit-midpoint";
  o.dt = 0.05;
  const double t[4] = {0.0, 0.7, 1.3, 2.2};
  double Y[2][32];
  nde_solver *s[2] = {NULL, NULL};
  nde_rhs *rhs[2] = {full, nojvp};
  for (int v = 0; v < 2; v++) {
    assert_int_equal(nde_solver_create(rhs[v], &o, 2, &s[v], NULL), NDE_OK);
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s[v], nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 4, t,
                                      Y[v], &st),
                     NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_NONE);
  }
  const double d = nde_test_rel_err(32, Y[0], Y[1], 1e-300);
  print_message("implicit-midpoint with JVP against difference quotients: %.1e\n", d);
  assert_true(d < 1e-12);
  /* The discrete adjoint needs only VJPs and the stored factors: still exact. */
  nde_grad *g = NULL;
  assert_int_equal(nde_grad_create(s[1], NULL, &g, NULL), NDE_OK);
  double obs[32];
  for (int q = 0; q < 32; q++) obs[q] = 0.2 * cos(0.9 * q);
  nde_obs_loss lo = {obs, NULL, 1, 0};
  double L, gth[8], dir[8], tp[8], Lp[4];
  assert_int_equal(nde_grad_eval(g, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 4, t,
                                 nde_obs_loss_eval, &lo, &L, gth, NULL, NULL, NULL),
                   NDE_OK);
  for (int i = 0; i < 8; i++) dir[i] = sin(2.1 * i + 0.3);
  const double eps = 1e-4, off[4] = {-2, -1, 1, 2};
  for (int j = 0; j < 4; j++) {
    for (int i = 0; i < 8; i++) tp[i] = nde_test_nlsplit_theta[i] + off[j] * eps * dir[i];
    assert_int_equal(nde_grad_eval(g, tp, 2, nde_test_nlsplit_u0, 4, t, nde_obs_loss_eval, &lo,
                                   &Lp[j], NULL, NULL, NULL, NULL),
                     NDE_OK);
  }
  const double fd = (Lp[0] - 8 * Lp[1] + 8 * Lp[2] - Lp[3]) / (12 * eps);
  print_message("without JVP: adjoint %.12e, finite differences %.12e\n", nde_test_dot(8, gth, dir),
                fd);
  check_rel(nde_test_dot(8, gth, dir), fd, 1e-8, 1e-8);
  nde_grad_destroy(&g);
  nde_solver_destroy(&s[0]);
  nde_solver_destroy(&s[1]);
  nde_rhs_destroy(&nojvp);
  nde_rhs_destroy(&full);
}

static void a_newton_iteration_that_cannot_converge_ends_the_solve_with_a_reason(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(NULL, 2, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "implicit-midpoint";
  o.dt = 0.1;
  o.newton_max_iter = 1; /* one Newton step cannot also show convergence */
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
  const double t[3] = {0.25, 0.9, 1.7};
  double Y[24];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 3, t, Y,
                                    &st),
                   NDE_OK);
  print_message("newton_max_iter = 1: %s at t = %g\n", nde_stop_reason_str(st.reason), st.t_stop);
  assert_int_equal(st.reason, NDE_REASON_NEWTON_FAILED);
  check_close(st.t_stop, 0.25, 0.0);
  assert_true(isnan(Y[8]) && isnan(Y[16]));
  nde_solver_destroy(&s);
  o.newton_max_iter = 0;
  nde_error e;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, &e), NDE_ERR_ARG);
  assert_non_null(strstr(e.msg, "newton_max_iter"));
  nde_rhs_destroy(&rhs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(symplectic_methods_keep_the_pendulum_energy_bounded_and_rk4_does_not),
      cmocka_unit_test(implicit_midpoint_conserves_the_quadratic_invariant),
      cmocka_unit_test(implicit_midpoint_without_a_jvp_uses_difference_quotients_and_stays_exact),
      cmocka_unit_test(a_newton_iteration_that_cannot_converge_ends_the_solve_with_a_reason),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
