/* Breakpoints of step inputs.  On x' = -k x + a H(t - 0.37) (a unit step the observations do not
 * see coming), adaptive solvers without the breakpoint reject a run of steps at the jump and
 * with it stop there, restart and reject (almost) none, and are more accurate; fixed-step
 * methods that end a step on the breakpoint keep their order, which a step across the jump
 * destroys.  (The gradients through a jump are checked in test_conformance.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/solve.h"
#include "split_models.h"

#define T_JUMP 0.37

static int jump_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                  double *cache) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) dU[b] = -th[0] * U[b] + (t >= T_JUMP ? th[1] : 0.0);
  return 0;
}
static int jump_vjp(void *ctx, double t, int B, const double *U, const double *th,
                    const double *L, const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)cache;
  for (int b = 0; b < B; b++) {
    if (gU) gU[b] += -th[0] * L[b];
    if (gth) {
      gth[0] += -U[b] * L[b];
      gth[1] += (t >= T_JUMP ? 1.0 : 0.0) * L[b];
    }
  }
  return 0;
}
static int jump_jvp(void *ctx, double t, int B, const double *U, const double *th,
                    const double *V, const double *Vth, double *JV) {
  (void)ctx;
  for (int b = 0; b < B; b++)
    JV[b] = (V ? -th[0] * V[b] : 0.0) +
            (Vth ? -Vth[0] * U[b] + (t >= T_JUMP ? Vth[1] : 0.0) : 0.0);
  return 0;
}

static const double jump_th[2] = {1.73, 2.41};

static double jump_exact(double x0, double t) {
  const double k = jump_th[0], a = jump_th[1];
  if (t < T_JUMP) return x0 * exp(-k * t);
  const double xj = x0 * exp(-k * T_JUMP);
  return a / k + (xj - a / k) * exp(-k * (t - T_JUMP));
}

typedef struct jrun {
  nde_solve_stats st;
  double err;
} jrun;

static jrun jump_solve(const char *method, double rtol, int with_bp) {
  const nde_rhs_ops ops = {.f = jump_f, .vjp = jump_vjp, .jvp = jump_jvp};
  const nde_rhs_info info = {1, 2, 1, 0, NULL};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = method;
  o.rtol = rtol;
  o.atol = 1e-3 * rtol;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  const double bp = T_JUMP;
  assert_int_equal(nde_solver_set_breakpoints(s, with_bp ? 1 : 0, &bp), NDE_OK);
  const double t[3] = {0.0, 1.0, 2.0}, x0 = 0.8123;
  double Y[3];
  jrun r;
  assert_int_equal(nde_solver_solve(s, jump_th, 1, &x0, 3, t, Y, &r.st), NDE_OK);
  assert_int_equal(r.st.reason, NDE_REASON_NONE);
  r.err = fmax(fabs(Y[1] - jump_exact(x0, 1.0)), fabs(Y[2] - jump_exact(x0, 2.0)));
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return r;
}

static void adaptive_solvers_stop_at_a_breakpoint_instead_of_rejecting_steps(void **state) {
  (void)state;
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->adaptive) continue;
    for (int e = 6; e <= 10; e += 4) {
      const double rtol = pow(10.0, -e);
      jrun off = jump_solve(mi->name, rtol, 0), on = jump_solve(mi->name, rtol, 1);
      print_message("%-12s rtol %.0e: without breakpoint %3ld steps, %2ld rejected, error %.2e; "
                    "with %3ld steps, %2ld rejected, error %.2e\n",
                    mi->name, rtol, off.st.n_steps, off.st.n_rejected, off.err, on.st.n_steps,
                    on.st.n_rejected, on.err);
      assert_true(2 * on.st.n_rejected <= off.st.n_rejected);
      assert_true(on.err < 100 * rtol);
      assert_true(on.err <= off.err);
    }
    checked++;
  }
  assert_true(checked >= 3);
}

/* nlsplit with its step input at t = 0.9 and no other time dependence (every method runs on
 * it): the max error against ref at the observations t = 1.2, 2.1, on given steps.  The jump
 * splits [0, 1.2] 3:1, so the pieces get 3/4 and 1/4 of the steps and halving the steps halves
 * every step. */
#define NL_JUMP 0.9

static double nl_error(const nde_solver_method_info *mi, int steps, int with_bp,
                       const double *ref) {
  nde_test_nlsplit ctx = {1, NL_JUMP, 1, NDE_TEST_FAIL_NONE, 0.0, 0};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(&ctx, 2, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = mi->name;
  o.steps_per_interval = steps;
  o.fixed_step = 1;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
  const double bp = ctx.t_jump;
  assert_int_equal(nde_solver_set_breakpoints(s, with_bp ? 1 : 0, &bp), NDE_OK);
  const double t[3] = {0.0, 1.2, 2.1};
  double Y[24];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 3, t, Y,
                                    &st),
                   NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  double err = 0;
  for (int q = 8; q < 24; q++) err = fmax(err, fabs(Y[q] - ref[q]));
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return err;
}

static void fixed_step_methods_keep_their_order_through_a_breakpoint(void **state) {
  (void)state;
  /* Reference: dopri5 at rtol 1e-13 with the breakpoint. */
  nde_test_nlsplit ctx = {1, NL_JUMP, 1, NDE_TEST_FAIL_NONE, 0.0, 0};
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(&ctx, 2, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "dopri5";
  o.rtol = 1e-13;
  o.atol = 1e-15;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 2, &s, NULL), NDE_OK);
  const double bp = ctx.t_jump, t[3] = {0.0, 1.2, 2.1};
  assert_int_equal(nde_solver_set_breakpoints(s, 1, &bp), NDE_OK);
  double ref[24];
  assert_int_equal(nde_solver_solve(s, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 3, t, ref,
                                    NULL),
                   NDE_OK);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->fixed_steps) continue;
    /* The short piece needs two steps at the coarse grid for the asymptotic regime. */
    const int base = 1 << (8 - (mi->order < 5 ? mi->order : 5));
    const double on1 = nl_error(mi, base, 1, ref), on2 = nl_error(mi, 2 * base, 1, ref);
    /* Without the breakpoint: one more step per interval, so that the jump falls between
     * steps (with base + 1 odd, 0.9 is not on the grid of (base + 1) / 1.2 steps). */
    const double off1 = nl_error(mi, base + 1, 0, ref), off2 = nl_error(mi, 2 * base + 2, 0, ref);
    const double p_on = log2(on1 / on2), p_off = log2(off1 / off2);
    print_message("%-17s %3d/%3d steps: with breakpoint error %.2e -> %.2e (order %.2f); "
                  "%3d/%3d steps without: %.2e -> %.2e (order %.2f)\n",
                  mi->name, base, 2 * base, on1, on2, p_on, base + 1, 2 * base + 2, off1, off2,
                  p_off);
    assert_true(fabs(p_on - mi->order) < 0.5);
    /* Across the jump the error is O(h), with a constant that depends on where the jump falls
     * between the steps (leapfrog is exact for a jump in the middle of a step): no clean order,
     * and at worst far above the error with the breakpoint. */
    if (mi->order > 1) assert_true(on2 < 0.1 * fmax(off1, off2));
    checked++;
  }
  assert_true(checked >= 6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(adaptive_solvers_stop_at_a_breakpoint_instead_of_rejecting_steps),
      cmocka_unit_test(fixed_step_methods_keep_their_order_through_a_breakpoint),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
