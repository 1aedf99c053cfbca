/* The conformance suite of the gradient methods: every registered solver with every registered
 * gradient method it supports (both lists read from the registries, so a new solver or method
 * is checked without changing this file), on a small nonlinear separable problem with a batch
 * of two rows and a missing observation:
 *   - an exact method (discrete) on a fixed-step solver matches central finite differences of
 *     the same discretised loss to 1e-8 (in theta and in U0, along random directions);
 *   - every method on a fixed-step solver converges to the gradient of the continuous loss with
 *     the solver's order as the step is halved;
 *   - every method on an adaptive solver matches the continuous gradient (a tight reference, and
 *     finite differences of a tight solve) within a few multiples of the tolerance.
 * The continuous reference is dopri5 + interp at rtol 1e-12; every method is compared with it in
 * full (every theta entry), i.e. the methods are checked against each other too.  The suite runs
 * twice: on the smooth problem, and with a step input switching on at t = 0.9137 and declared
 * as a breakpoint (so every method must stay exact or within tolerance through the jump). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/grad.h"
#include "split_models.h"

#define B_ROWS 2
#define N_STATE 4
#define N_OBS 7
#define P 8
#define NU (B_ROWS * N_STATE)

typedef struct world {
  nde_rhs *rhs;
  nde_test_nlsplit ctx;
  int n_bp;
  double bp[2];
  double t[N_OBS], obs[N_OBS * NU];
  nde_obs_loss loss;
  double dth[P], du[NU];
  double ref[P], ref_u[NU]; /* the continuous gradient */
  double fd_th, fd_u;       /* finite differences of the continuous loss along dth, du */
} world;

typedef struct result {
  double g[P], gu[NU];
  double L;
  nde_grad_stats gs;
} result;

static nde_solver_opts solver_opts(const char *solver, double h, double rtol) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = solver;
  o.dt = h;
  o.rtol = rtol;
  o.atol = 1e-3 * rtol;
  return o;
}

static result run(world *w, nde_solver_opts o, const char *method, const double *theta,
                  const double *U0, int want_grad) {
  nde_solver *s = NULL;
  nde_error e;
  if (nde_solver_create(w->rhs, &o, B_ROWS, &s, &e) != NDE_OK) print_error("%s\n", e.msg);
  assert_non_null(s);
  assert_int_equal(nde_solver_set_breakpoints(s, (size_t)w->n_bp, w->bp), NDE_OK);
  nde_grad_opts go = nde_grad_opts_default();
  go.method = method;
  nde_grad *g = NULL;
  if (nde_grad_create(s, &go, &g, &e) != NDE_OK) print_error("%s\n", e.msg);
  assert_non_null(g);
  result r;
  memset(&r, 0, sizeof r);
  nde_status st = nde_grad_eval(g, theta, B_ROWS, U0, N_OBS, w->t, nde_obs_loss_eval, &w->loss,
                                &r.L, want_grad ? r.g : NULL, want_grad ? r.gu : NULL, NULL,
                                &r.gs);
  if (st != NDE_OK) print_error("%s/%s: %s\n", o.method, method, nde_grad_errmsg(g));
  assert_int_equal(st, NDE_OK);
  assert_int_equal(r.gs.forward.reason, NDE_REASON_NONE);
  assert_int_equal(r.gs.backward.reason, NDE_REASON_NONE);
  nde_grad_destroy(&g);
  nde_solver_destroy(&s);
  return r;
}

/* Five-point central differences of the loss along dth and du: O(eps^4) truncation. */
static void finite_differences(world *w, nde_solver_opts o, double eps, double *fd_th,
                               double *fd_u) {
  const double off[4] = {-2, -1, 1, 2};
  double Lt[4], Lu[4], tp[P], up[NU];
  for (int j = 0; j < 4; j++) {
    for (int i = 0; i < P; i++) tp[i] = nde_test_nlsplit_theta[i] + off[j] * eps * w->dth[i];
    Lt[j] = run(w, o, "auto", tp, nde_test_nlsplit_u0, 0).L;
    for (int q = 0; q < NU; q++) up[q] = nde_test_nlsplit_u0[q] + off[j] * eps * w->du[q];
    Lu[j] = run(w, o, "auto", nde_test_nlsplit_theta, up, 0).L;
  }
  *fd_th = (Lt[0] - 8 * Lt[1] + 8 * Lt[2] - Lt[3]) / (12 * eps);
  *fd_u = (Lu[0] - 8 * Lu[1] + 8 * Lu[2] - Lu[3]) / (12 * eps);
}

static void make_world(world *w, int jump) {
  memset(w, 0, sizeof *w);
  if (jump) {
    /* The step input switches on between observations; the second breakpoint (at an
     * observation time, where nothing jumps) restarts the methods there too. */
    w->ctx.jump = 1;
    w->ctx.t_jump = 0.9137;
    /* f then depends on t only through the step input: yoshida4's kicks outside its step
     * (evaluated at the breakpoint, within the piece) stay exact; see solve.h. */
    w->ctx.no_forcing = 1;
    w->n_bp = 2;
    w->bp[0] = 0.9137;
  }
  assert_int_equal(nde_test_nlsplit_rhs(&w->ctx, B_ROWS, &w->rhs), NDE_OK);
  for (int k = 0; k < N_OBS; k++) w->t[k] = 2.4 * k / (N_OBS - 1.0) + 0.017 * sin(2.3 * k) * (k > 0);
  w->bp[1] = w->t[4];
  /* Observations: the solution under perturbed parameters, one entry missing. */
  double th2[P];
  for (int i = 0; i < P; i++) th2[i] = nde_test_nlsplit_theta[i] * (1.0 + 0.15 * cos(1.7 * i));
  nde_solver *s = NULL;
  nde_solver_opts o = solver_opts("dopri5", 0.0, 1e-11);
  assert_int_equal(nde_solver_create(w->rhs, &o, B_ROWS, &s, NULL), NDE_OK);
  assert_int_equal(nde_solver_set_breakpoints(s, (size_t)w->n_bp, w->bp), NDE_OK);
  assert_int_equal(nde_solver_solve(s, th2, B_ROWS, nde_test_nlsplit_u0, N_OBS, w->t, w->obs, NULL),
                   NDE_OK);
  nde_solver_destroy(&s);
  w->obs[3 * NU + 2] = NAN;
  w->loss.obs = w->obs;
  w->loss.mean = 1;
  nde_rng rng;
  nde_rng_seed(&rng, 31337);
  for (int i = 0; i < P; i++) w->dth[i] = nde_rng_normal(&rng);
  for (int q = 0; q < NU; q++) w->du[q] = nde_rng_normal(&rng);
  result r = run(w, solver_opts("dopri5", 0.0, 1e-12), "interp", nde_test_nlsplit_theta,
                 nde_test_nlsplit_u0, 1);
  memcpy(w->ref, r.g, sizeof r.g);
  memcpy(w->ref_u, r.gu, sizeof r.gu);
  finite_differences(w, solver_opts("dopri5", 0.0, 1e-13), 1e-3, &w->fd_th, &w->fd_u);
  const double eth = fabs(nde_test_dot(P, w->ref, w->dth) - w->fd_th) / fabs(w->fd_th);
  const double eu = fabs(nde_test_dot(NU, w->ref_u, w->du) - w->fd_u) / fabs(w->fd_u);
  print_message("continuous reference against finite differences: theta %.2e, U0 %.2e\n", eth,
                eu);
  assert_true(eth < 1e-9 && eu < 1e-9);
}

/* Relative error of a result against the continuous reference (theta and U0 together). */
static double ref_err(const world *w, const result *r) {
  return fmax(nde_test_rel_err(P, r->g, w->ref, 1e-300),
              nde_test_rel_err(NU, r->gu, w->ref_u, 1e-300));
}

static void check_every_pair(int jump) {
  world w;
  make_world(&w, jump);
  int checked = 0;
  /* A symmetric splitting method's backsolve retraces the forward states (time-reversible) and
   * updates the adjoint with the same kicks and drifts as its discrete adjoint: the two
   * gradients agree to round-off (Sanz-Serna 2016, "Symplectic Runge-Kutta schemes for
   * adjoint equations, automatic differentiation, optimal control, and more"). */
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *si = nde_solver_method_at(i);
    if (!si->needs_split || !nde_grad_method_supported("backsolve", si->name)) continue;
    result rd = run(&w, solver_opts(si->name, 0.05, 0), "discrete", nde_test_nlsplit_theta,
                    nde_test_nlsplit_u0, 1);
    result rb = run(&w, solver_opts(si->name, 0.05, 0), "backsolve", nde_test_nlsplit_theta,
                    nde_test_nlsplit_u0, 1);
    const double d = fmax(nde_test_rel_err(P, rd.g, rb.g, 1e-300),
                          nde_test_rel_err(NU, rd.gu, rb.gu, 1e-300));
    print_message("%-17s backsolve against discrete: %.1e\n", si->name, d);
    assert_true(d < 1e-10);
  }
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *si = nde_solver_method_at(i);
    for (int j = 0; j < nde_grad_method_count(); j++) {
      const nde_grad_method_info *gi = nde_grad_method_at(j);
      if (!nde_grad_method_supported(gi->name, si->name)) continue;
      checked++;
      if (!si->adaptive) {
        /* Fixed steps: coarse enough that the discretisation error stands above round-off. */
        const double h = si->order >= 4 ? 0.1 : si->order >= 2 ? 0.02 : 0.004;
        result r1 = run(&w, solver_opts(si->name, h, 0), gi->name, nde_test_nlsplit_theta,
                        nde_test_nlsplit_u0, 1);
        result r2 = run(&w, solver_opts(si->name, h / 2, 0), gi->name, nde_test_nlsplit_theta,
                        nde_test_nlsplit_u0, 1);
        const double e1 = ref_err(&w, &r1), e2 = ref_err(&w, &r2);
        const double p = log2(e1 / e2);
        print_message("%-17s %-9s h %.3g: error %.2e, h/2: %.2e, observed order %.2f\n",
                      si->name, gi->name, h, e1, e2, p);
        assert_true(e2 < 5e-2);
        assert_true(e2 < 1e-10 || fabs(p - si->order) < 0.5);
        if (gi->exact) {
          double fd_th, fd_u;
          finite_differences(&w, solver_opts(si->name, h, 0), 1e-4, &fd_th, &fd_u);
          const double an = nde_test_dot(P, r1.g, w.dth), anu = nde_test_dot(NU, r1.gu, w.du);
          print_message("%-17s %-9s exact: theta %.12e fd %.12e (%.1e); U0 %.12e fd %.12e (%.1e)\n",
                        si->name, gi->name, an, fd_th, fabs(an - fd_th) / fabs(fd_th), anu, fd_u,
                        fabs(anu - fd_u) / fabs(fd_u));
          check_rel(an, fd_th, 1e-8, 1e-8);
          check_rel(anu, fd_u, 1e-8, 1e-8);
        }
      } else {
        const double rtol = 1e-8;
        result r = run(&w, solver_opts(si->name, 0.0, rtol), gi->name, nde_test_nlsplit_theta,
                       nde_test_nlsplit_u0, 1);
        const double e = ref_err(&w, &r);
        const double efd = fabs(nde_test_dot(P, r.g, w.dth) - w.fd_th) / fabs(w.fd_th);
        const double efu = fabs(nde_test_dot(NU, r.gu, w.du) - w.fd_u) / fabs(w.fd_u);
        /* Built-in methods control the local error tightly; CVODE's variable-order multistep
         * methods reach a global error of 10-100 rtol on their own. */
        const double tol = (si->variable_order ? 1000 : 100) * rtol;
        print_message("%-17s %-9s rtol %.0e: vs reference %.2e, vs fd theta %.2e U0 %.2e; fwd %ld "
                      "bwd %ld steps, %ld vjp\n",
                      si->name, gi->name, rtol, e, efd, efu, r.gs.forward.n_steps,
                      r.gs.backward.n_steps, r.gs.n_vjp);
        assert_true(e < tol && efd < tol && efu < tol);
      }
    }
  }
  assert_true(checked >= 14);
  nde_rhs_destroy(&w.rhs);
}

static void every_solver_and_supported_method_matches_the_reference(void **state) {
  (void)state;
  check_every_pair(0);
}

static void every_solver_and_supported_method_stays_exact_or_within_tolerance_through_a_jump(
    void **state) {
  (void)state;
  check_every_pair(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_solver_and_supported_method_matches_the_reference),
      cmocka_unit_test(
          every_solver_and_supported_method_stays_exact_or_within_tolerance_through_a_jump),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
