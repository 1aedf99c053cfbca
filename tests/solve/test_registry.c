/* The solver and gradient-method registries: names, lookups and properties agree with each other
 * and with what the methods do (a method needing a split is refused without one, with a message
 * naming the dependency; a gradient method is accepted by exactly the solvers the registry says);
 * messages list the valid names from the registries; tolerances that double precision cannot
 * meet are refused by every adaptive method. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linear_ode.h"
#include "nde/grad.h"
#include "split_models.h"

static void solver_names_lookups_and_entries_agree(void **state) {
  (void)state;
  const char *const *names = nde_solver_method_names();
  const int n = nde_solver_method_count();
  int fixed = 0, adaptive = 0, split = 0;
  for (int i = 0; i < n; i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    assert_non_null(mi);
    assert_string_equal(names[i], mi->name);
    assert_ptr_equal(nde_solver_method_find(mi->name), mi);
    assert_true(nde_solver_method_known(mi->name));
    assert_true(strlen(mi->description) > 10);
    assert_true(mi->order >= 1);
    assert_true(mi->adaptive || mi->fixed_steps);
    if (mi->needs_split || mi->symplectic) assert_false(mi->adaptive);
    for (int j = 0; j < i; j++) assert_string_not_equal(mi->name, nde_solver_method_at(j)->name);
    fixed += mi->fixed_steps;
    adaptive += mi->adaptive;
    split += mi->needs_split;
  }
  assert_null(names[n]);
  assert_null(nde_solver_method_at(-1));
  assert_null(nde_solver_method_at(n));
  assert_null(nde_solver_method_find("rk45"));
  assert_null(nde_solver_method_find(NULL));
  assert_true(fixed >= 6 && adaptive >= 3 && split >= 2);
  const nde_solver_method_info *lf = nde_solver_method_find("leapfrog");
  assert_true(lf && lf->order == 2 && lf->symplectic && lf->needs_split && !lf->implicit);
  const nde_solver_method_info *im = nde_solver_method_find("implicit-midpoint");
  assert_true(im && im->order == 2 && im->symplectic && im->implicit && !im->needs_split);
  const nde_solver_method_info *y4 = nde_solver_method_find("yoshida4");
  assert_true(y4 && y4->order == 4 && y4->symplectic && y4->needs_split);
}

static void every_method_runs_on_a_separable_model_and_split_methods_need_one(void **state) {
  (void)state;
  nde_rhs *sep = NULL, *dense = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(NULL, 2, &sep), NDE_OK);
  const nde_rhs_ops lin = nde_test_linear_ops;
  const nde_rhs_info info = {1, 2, 2, 0, NULL};
  assert_int_equal(nde_rhs_create(&lin, NULL, NDE_BORROW, &info, &dense, NULL), NDE_OK);
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    nde_solver_opts o = nde_solver_opts_default();
    o.method = mi->name;
    nde_solver *s = NULL;
    nde_error e;
    assert_int_equal(nde_solver_create(sep, &o, 2, &s, &e), NDE_OK);
    assert_ptr_equal(nde_solver_get_method(s), mi);
    const double t[3] = {0.0, 0.4, 0.9};
    double Y[24];
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s, nde_test_nlsplit_theta, 2, nde_test_nlsplit_u0, 3, t, Y,
                                      &st),
                     NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_NONE);
    nde_solver_destroy(&s);
    const nde_status want = mi->needs_split ? NDE_ERR_ARG : NDE_OK;
    assert_int_equal(nde_solver_create(dense, &o, 2, &s, &e), want);
    if (mi->needs_split) {
      print_message("%s without dep: %s\n", mi->name, e.msg);
      assert_non_null(strstr(e.msg, "dependency matrix"));
      assert_non_null(strstr(e.msg, mi->name));
      assert_null(s);
    }
    nde_solver_destroy(&s);
  }
  nde_rhs_destroy(&sep);
  nde_rhs_destroy(&dense);
}

/* f_i depends on u_{i+1 mod 3}: an odd cycle, no 2-colouring. */
static const unsigned char cycle_dep[9] = {0, 1, 0, 0, 0, 1, 1, 0, 0};

static int cyc_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                 double *cache) {
  (void)ctx;
  (void)t;
  (void)th;
  (void)cache;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < 3; i++) dU[3 * b + i] = U[3 * b + (i + 1) % 3];
  return 0;
}
static int cyc_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                   const double *cache, double *gU, double *gth) {
  (void)ctx;
  (void)t;
  (void)U;
  (void)th;
  (void)cache;
  (void)gth;
  if (gU)
    for (int b = 0; b < B; b++)
      for (int i = 0; i < 3; i++) gU[3 * b + (i + 1) % 3] += L[3 * b + i];
  return 0;
}

static void a_model_that_does_not_split_is_refused_naming_the_dependency(void **state) {
  (void)state;
  nde_rhs *damped = NULL;
  assert_int_equal(nde_test_damped(1, &damped), NDE_OK);
  const char *const names[2] = {"q", "p"};
  for (int named = 0; named < 2; named++)
    for (int i = 0; i < nde_solver_method_count(); i++) {
      const nde_solver_method_info *mi = nde_solver_method_at(i);
      if (!mi->needs_split) continue;
      nde_solver_opts o = nde_solver_opts_default();
      o.method = mi->name;
      o.state_names = named ? names : NULL;
      nde_solver *s = NULL;
      nde_error e;
      assert_int_equal(nde_solver_create(damped, &o, 1, &s, &e), NDE_ERR_ARG);
      print_message("%s\n", e.msg);
      assert_non_null(strstr(e.msg, "f[1] depends on u[1]"));
      if (named) assert_non_null(strstr(e.msg, "dp/dt depends on p"));
    }
  nde_rhs_destroy(&damped);
  const nde_rhs_ops ops = {.f = cyc_f, .vjp = cyc_vjp, .jvp = NULL};
  const nde_rhs_info info = {3, 0, 1, 0, cycle_dep};
  nde_rhs *cyc = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &cyc, NULL), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "leapfrog";
  nde_solver *s = NULL;
  nde_error e;
  assert_int_equal(nde_solver_create(cyc, &o, 1, &s, &e), NDE_ERR_ARG);
  print_message("odd cycle: %s\n", e.msg);
  /* Breadth first from component 0: 1 and 2 are coloured p, and 1 depends on 2. */
  assert_non_null(strstr(e.msg, "f[1] depends on u[2]"));
  nde_rhs_destroy(&cyc);
}

static void an_unknown_solver_is_answered_with_every_registered_name(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "rk45";
  nde_solver *s = NULL;
  nde_error e;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, &e), NDE_ERR_ARG);
  print_message("%s\n", e.msg);
  assert_non_null(strstr(e.msg, "'rk45'"));
  for (int i = 0; i < nde_solver_method_count(); i++)
    assert_non_null(strstr(e.msg, nde_solver_method_at(i)->name));
  nde_rhs_destroy(&rhs);
}

static void grad_names_lookups_and_defaults_agree(void **state) {
  (void)state;
  const char *const *names = nde_grad_method_names();
  const int n = nde_grad_method_count();
  int exact = 0;
  for (int i = 0; i < n; i++) {
    const nde_grad_method_info *gi = nde_grad_method_at(i);
    assert_string_equal(names[i], gi->name);
    assert_ptr_equal(nde_grad_method_find(gi->name), gi);
    assert_true(strlen(gi->description) > 10);
    assert_true(gi->exact != gi->continuous);
    exact += gi->exact;
  }
  assert_string_equal(names[n], "auto");
  assert_null(names[n + 1]);
  assert_null(nde_grad_method_find("auto"));
  assert_null(nde_grad_method_at(n));
  assert_int_equal(exact, 1);
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const char *sm = nde_solver_method_at(i)->name;
    const char *def = nde_grad_default_method(sm);
    assert_non_null(def);
    assert_true(nde_grad_method_supported(def, sm));
    assert_true(nde_grad_method_supported("auto", sm));
    assert_false(nde_grad_method_supported("adjoint", sm));
    assert_false(nde_grad_method_supported(NULL, sm));
  }
  assert_null(nde_grad_default_method("rk45"));
  assert_false(nde_grad_method_supported("discrete", "rk45"));
}

/* Creating an evaluator succeeds exactly for the pairs the registry supports, and a refusal
 * names the solver and the methods it supports. */
static void grad_create_accepts_exactly_the_supported_pairs(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(NULL, 1, &rhs), NDE_OK);
  int pairs = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const char *sm = nde_solver_method_at(i)->name;
    nde_solver_opts o = nde_solver_opts_default();
    o.method = sm;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
    for (int j = 0; j <= nde_grad_method_count(); j++) {
      const char *gm = nde_grad_method_names()[j]; /* the last is "auto" */
      nde_grad_opts go = nde_grad_opts_default();
      go.method = gm;
      nde_grad *g = NULL;
      nde_error e;
      const int ok = nde_grad_method_supported(gm, sm);
      assert_int_equal(nde_grad_create(s, &go, &g, &e), ok ? NDE_OK : NDE_ERR_ARG);
      pairs += ok && j < nde_grad_method_count();
      if (!ok) {
        print_message("%s/%s: %s\n", sm, gm, e.msg);
        assert_non_null(strstr(e.msg, sm));
        for (int k = 0; k < nde_grad_method_count(); k++)
          if (nde_grad_method_supported(nde_grad_method_at(k)->name, sm))
            assert_non_null(strstr(e.msg, nde_grad_method_at(k)->name));
      } else {
        /* What auto picks for a built-in solver is its default method. */
        const double t[2] = {0.0, 0.3};
        double L, gth[8];
        const double obs[8] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8};
        nde_obs_loss lo = {obs, NULL, 0, 0};
        nde_grad_stats gs;
        assert_int_equal(nde_grad_eval(g, nde_test_nlsplit_theta, 1, nde_test_nlsplit_u0, 2, t,
                                       nde_obs_loss_eval, &lo, &L, gth, NULL, NULL, &gs),
                         NDE_OK);
        if (j < nde_grad_method_count()) assert_string_equal(gs.method, gm);
        else if (!nde_solver_method_at(i)->variable_order)
          assert_string_equal(gs.method, nde_grad_default_method(sm));
      }
      nde_grad_destroy(&g);
    }
    nde_solver_destroy(&s);
  }
  assert_true(pairs >= 12);
  nde_rhs_destroy(&rhs);
}

static void tolerances_double_precision_cannot_meet_are_refused(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    const struct {
      double rtol, atol;
      int ok;
    } cases[] = {{1e-16, 0.0, 0}, {2.0, 1e-9, 0}, {1.0, 0.0, 0}, {1e-16, 1e-12, 1},
                 {1e-15, 0.0, 1}, {0.5, 0.0, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
      nde_solver_opts o = nde_solver_opts_default();
      o.method = mi->name;
      o.rtol = cases[c].rtol;
      o.atol = cases[c].atol;
      nde_solver *s = NULL;
      nde_error e;
      /* Fixed-step methods do not read the tolerances. */
      const int ok = cases[c].ok || !mi->adaptive;
      assert_int_equal(nde_solver_create(rhs, &o, 1, &s, &e), ok ? NDE_OK : NDE_ERR_ARG);
      if (!ok) assert_non_null(strstr(e.msg, "double precision cannot meet"));
      nde_solver_destroy(&s);
    }
  }
  nde_rhs_destroy(&rhs);
}

static void bad_breakpoints_are_rejected(void **state) {
  (void)state;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_test_oscillator(1, &rhs), NDE_OK);
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, NULL, 1, &s, NULL), NDE_OK);
  const double bad[2] = {0.3, NAN};
  assert_int_equal(nde_solver_set_breakpoints(s, 2, bad), NDE_ERR_ARG);
  assert_non_null(strstr(nde_solver_errmsg(s), "not finite"));
  assert_int_equal(nde_solver_set_breakpoints(s, 2, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_solver_set_breakpoints(NULL, 0, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_solver_set_breakpoints(s, 1, bad), NDE_OK);
  assert_int_equal(nde_solver_set_breakpoints(s, 0, NULL), NDE_OK);
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
}

/* The registry's eval_lo and eval_hi are where the methods evaluate f: on a separable oscillator
 * q' = p, p' = -q from t = 1 to 2 in 8 steps of 0.125, every time f is called at lies in
 * [1 + eval_lo h, 2 + (eval_hi - 1) h] for every method that runs on given steps (dopri5 with
 * fixed_step; CVODE chooses its own steps and is only checked to claim [0, 1] or wider), and a
 * method whose range leaves [0, 1] reaches that far: yoshida4's kick at t - 0.35 h is where a
 * model with sqrt(t) fails at t = 0. */
typedef struct { double lo, hi; } t_range;

static int osc_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                 double *cache) {
  (void)theta, (void)cache;
  t_range *r = ctx;
  r->lo = fmin(r->lo, t);
  r->hi = fmax(r->hi, t);
  for (int b = 0; b < B; b++) {
    dU[2 * b] = U[2 * b + 1];
    dU[2 * b + 1] = -U[2 * b];
  }
  return 0;
}

static int osc_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                   const double *L, const double *cache, double *gU, double *gtheta) {
  (void)ctx, (void)t, (void)U, (void)theta, (void)cache, (void)gtheta;
  for (int b = 0; gU && b < B; b++) {
    gU[2 * b] -= L[2 * b + 1];
    gU[2 * b + 1] += L[2 * b];
  }
  return 0;
}

static void methods_on_given_steps_evaluate_f_where_the_registry_says(void **state) {
  (void)state;
  static const unsigned char dep[4] = {0, 1, 1, 0};
  const nde_rhs_info info = {2, 0, 1, 0, dep};
  const nde_rhs_ops ops = {.f = osc_f, .vjp = osc_vjp};
  const double h = 0.125, t[2] = {1.0, 2.0}, u0[2] = {1.0, 0.0};
  int reaching = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    assert_true(mi->eval_lo <= 0 && mi->eval_hi >= 1);
    if (!mi->fixed_steps) continue;
    t_range r = {INFINITY, -INFINITY};
    nde_rhs *rhs = NULL;
    assert_int_equal(nde_rhs_create(&ops, &r, NDE_BORROW, &info, &rhs, NULL), NDE_OK);
    nde_solver_opts o = nde_solver_opts_default();
    o.method = mi->name;
    o.dt = h;
    o.fixed_step = mi->adaptive;
    nde_solver *s = NULL;
    assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
    double Y[4];
    nde_solve_stats st;
    assert_int_equal(nde_solver_solve(s, NULL, 1, u0, 2, t, Y, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_NONE);
    const double lo = t[0] + mi->eval_lo * h, hi = t[1] + (mi->eval_hi - 1) * h;
    print_message("%-18s f at t in [%.6f, %.6f], registry [%.6f, %.6f]\n", mi->name, r.lo, r.hi,
                  lo, hi);
    assert_true(r.lo >= lo - 1e-12 && r.hi <= hi + 1e-12);
    /* A range beyond the steps is reached (to rounding), not merely respected. */
    if (mi->eval_lo < 0) assert_true(r.lo <= lo + 1e-12);
    if (mi->eval_hi > 1) assert_true(r.hi >= hi - 1e-12);
    reaching += mi->eval_lo < 0;
    nde_solver_destroy(&s);
    nde_rhs_destroy(&rhs);
  }
  assert_true(reaching >= 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(solver_names_lookups_and_entries_agree),
      cmocka_unit_test(methods_on_given_steps_evaluate_f_where_the_registry_says),
      cmocka_unit_test(every_method_runs_on_a_separable_model_and_split_methods_need_one),
      cmocka_unit_test(a_model_that_does_not_split_is_refused_naming_the_dependency),
      cmocka_unit_test(an_unknown_solver_is_answered_with_every_registered_name),
      cmocka_unit_test(grad_names_lookups_and_defaults_agree),
      cmocka_unit_test(grad_create_accepts_exactly_the_supported_pairs),
      cmocka_unit_test(tolerances_double_precision_cannot_meet_are_refused),
      cmocka_unit_test(bad_breakpoints_are_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
