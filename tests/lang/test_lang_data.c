/* What a model binds per series: measured inputs (linear, monotone cubic, right-continuous
 * step, hold, out-of-span failures), their breakpoints, constants (plain and from data),
 * per-series parameters and the layout of the full theta, the row -> series map, and the
 * message of every kind of bad binding. */
#include <math.h>
#include <stdlib.h>

#include "lang_util.h"

/* f of "dx/dt = EXPR" at time t for one row in series s of an rhs (fails the test unless the
 * callback returns want_rc). */
static double f_at(nde_rhs *rhs, double t, int s, int want_rc) {
  double x = 0.0, f = NAN;
  assert_int_equal(nde_rhs_set_rows(rhs, 1, &s), NDE_OK);
  int rc = nde_rhs_f(rhs, t, 1, &x, NULL, &f, NULL);
  if (want_rc < 0) assert_true(rc < 0);
  else assert_int_equal(rc, want_rc);
  return f;
}

/* An rhs of src bound to n_series series of one input each. */
static nde_rhs *input_rhs(nde_model *m, int n_series, const nde_input_series *in) {
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 4;
  o.n_series = n_series;
  o.inputs = in;
  nde_rhs *rhs = NULL;
  nde_error err;
  if (nde_model_create_rhs_opts(m, &o, &rhs, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  return rhs;
}

static void test_linear_input_interpolates_and_fails_outside_its_span(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput u\ndx/dt = u\n");
  const double t[4] = {0.0, 0.5, 1.25, 2.0}, u[4] = {1.0, -0.5, 2.25, 2.25};
  const nde_input_series in = {4, t, u};
  nde_rhs *rhs = input_rhs(m, 1, &in);
  check_close(f_at(rhs, 0.0, 0, 0), 1.0, 0);
  check_close(f_at(rhs, 0.25, 0, 0), 0.25, 1e-15);
  check_close(f_at(rhs, 0.5, 0, 0), -0.5, 0);
  check_close(f_at(rhs, 0.875, 0, 0), -0.5 + 0.5 * 2.75, 1e-15);
  check_close(f_at(rhs, 1.75, 0, 0), 2.25, 0);
  check_close(f_at(rhs, 2.0, 0, 0), 2.25, 0);
  /* Outside [0, 2] without hold: fatal in f, VJP and JVP alike. */
  f_at(rhs, 2.0 + 1e-12, 0, -1);
  f_at(rhs, -0.125, 0, -1);
  f_at(rhs, NAN, 0, -1);
  double x = 0, L = 1, gU = 0, JV;
  assert_true(nde_rhs_vjp(rhs, 3.0, 1, &x, NULL, &L, NULL, &gU, NULL) < 0);
  assert_true(nde_rhs_jvp(rhs, 3.0, 1, &x, NULL, &L, NULL, &JV) < 0);
  /* And it recovers inside the span. */
  check_close(f_at(rhs, 1.0, 0, 0), -0.5 + 0.5 / 0.75 * 2.75, 1e-15);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_step_input_is_right_continuous(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput u (step)\ndx/dt = u\n");
  const double t[4] = {0.0, 0.5, 1.25, 2.0}, u[4] = {1.0, -0.5, 2.25, 3.5};
  const nde_input_series in = {4, t, u};
  nde_rhs *rhs = input_rhs(m, 1, &in);
  for (int k = 0; k < 4; k++) check_close(f_at(rhs, t[k], 0, 0), u[k], 0);
  for (int k = 1; k < 4; k++) check_close(f_at(rhs, nextafter(t[k], -1.0), 0, 0), u[k - 1], 0);
  check_close(f_at(rhs, 0.875, 0, 0), -0.5, 0);
  f_at(rhs, nextafter(2.0, 3.0), 0, -1);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_hold_keeps_the_end_values_outside_the_span(void **state) {
  (void)state;
  const char *srcs[3] = {"state x\ninput u (hold)\ndx/dt = u\n", "state x\ninput u (cubic, hold)\ndx/dt = u\n",
                         "state x\ninput u (hold, step)\ndx/dt = u\n"};
  const double t[3] = {-1.0, 0.5, 1.75}, u[3] = {0.375, -2.5, 4.125};
  const nde_input_series in = {3, t, u};
  for (int k = 0; k < 3; k++) {
    nde_model *m = load_ok(srcs[k]);
    nde_model_input_info info;
    assert_int_equal(nde_model_get_input(m, 0, &info), NDE_OK);
    assert_int_equal(info.hold, 1);
    assert_int_equal(info.interp, k == 0 ? NDE_INTERP_LINEAR : k == 1 ? NDE_INTERP_CUBIC : NDE_INTERP_STEP);
    nde_rhs *rhs = input_rhs(m, 1, &in);
    check_close(f_at(rhs, -7.5, 0, 0), 0.375, 0);
    check_close(f_at(rhs, -1.0, 0, 0), 0.375, 0);
    check_close(f_at(rhs, 1.75, 0, 0), 4.125, 0);
    check_close(f_at(rhs, 1e6, 0, 0), 4.125, 0);
    f_at(rhs, NAN, 0, -1);
    nde_rhs_destroy(&rhs);
    nde_model_destroy(&m);
  }
  /* One sample is a constant (on its single time, and everywhere with hold). */
  const double t1 = 0.625, u1 = -1.5;
  const nde_input_series one = {1, &t1, &u1};
  nde_model *m = load_ok("state x\ninput u (cubic)\ndx/dt = u\n");
  nde_rhs *rhs = input_rhs(m, 1, &one);
  check_close(f_at(rhs, 0.625, 0, 0), -1.5, 0);
  f_at(rhs, 0.75, 0, -1);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* The cubic goes through the samples, stays between neighbouring values (no overshoot, even
 * at a jump), is monotone on monotone data, is C1 at the samples, and reproduces a line. */
static void test_cubic_input_is_monotone_and_c1(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput u (cubic)\ndx/dt = u\n");
  const double t[9] = {0.0, 0.5, 1.0, 1.75, 2.0, 3.0, 3.25, 4.5, 5.0};
  const double u[3][9] = {
      {0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0},          /* a jump */
      {0.0, 0.1, 0.15, 2.0, 2.05, 5.0, 5.0, 5.5, 9.0},       /* monotone, uneven */
      {0.25, -0.25, 1.5, 0.125, 3.0, -2.0, -1.875, 0.5, 0.0}, /* wild */
  };
  nde_input_series in[3];
  for (int s = 0; s < 3; s++) in[s] = (nde_input_series){9, t, u[s]};
  nde_rhs *rhs = input_rhs(m, 3, in);
  for (int s = 0; s < 3; s++) {
    for (int k = 0; k < 9; k++) check_close(f_at(rhs, t[k], s, 0), u[s][k], 1e-15);
    double prev = u[s][0];
    for (int k = 0; k + 1 < 9; k++) {
      const double lo = fmin(u[s][k], u[s][k + 1]), hi = fmax(u[s][k], u[s][k + 1]);
      for (int j = 1; j < 64; j++) {
        const double tt = t[k] + (t[k + 1] - t[k]) * j / 64.0, v = f_at(rhs, tt, s, 0);
        if (!(v >= lo - 1e-14 && v <= hi + 1e-14))
          print_error("series %d: u(%g) = %.17g outside [%g, %g]\n", s, tt, v, lo, hi);
        assert_true(v >= lo - 1e-14 && v <= hi + 1e-14);
        if (s < 2) assert_true(v >= prev - 1e-14); /* monotone data: monotone interpolant */
        prev = v;
      }
    }
    /* C1: one-sided slopes agree at the interior samples. */
    for (int k = 1; k + 1 < 9; k++) {
      const double e = 1e-7, c = f_at(rhs, t[k], s, 0);
      const double left = (c - f_at(rhs, t[k] - e, s, 0)) / e, right = (f_at(rhs, t[k] + e, s, 0) - c) / e;
      check_rel(left, right, 1e-4, 1.0);
    }
  }
  nde_rhs_destroy(&rhs);
  /* Samples of a line: the cubic is that line. */
  const double line[9] = {1, 2, 3, 4.5, 5, 7, 7.5, 10, 11};
  const nde_input_series lin = {9, t, line};
  rhs = input_rhs(m, 1, &lin);
  for (int j = 0; j <= 50; j++) check_close(f_at(rhs, 0.1 * j, 0, 0), 1.0 + 2.0 * 0.1 * j, 1e-14);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* Rows read their own series' inputs and constants; the map is checked. */
static void test_rows_read_their_own_series(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput u (step)\nconst T (from data)\nconst g = 9.5\n"
                         "dx/dt = u + 100*T + 1000*g\n");
  assert_int_equal(nde_model_n_consts(m), 2);
  assert_int_equal(nde_model_n_data_consts(m), 1);
  nde_model_const_info ci;
  assert_int_equal(nde_model_get_const(m, nde_model_find_const(m, "T"), &ci), NDE_OK);
  assert_int_equal(ci.from_data, 1);
  assert_int_equal(ci.column, 0);
  assert_true(isnan(ci.value));
  assert_int_equal(nde_model_get_const(m, nde_model_find_const(m, "g"), &ci), NDE_OK);
  assert_int_equal(ci.from_data, 0);
  assert_int_equal(ci.column, -1);
  check_close(ci.value, 9.5, 0);
  assert_int_equal(ci.line, 4);
  assert_int_equal(nde_model_find_const(m, "x"), -1);
  const double t[2] = {0, 1}, u0[2] = {1, 2}, u1[2] = {3, 4}, u2[2] = {5, 6};
  const nde_input_series in[3] = {{2, t, u0}, {2, t, u1}, {2, t, u2}};
  const double consts[3] = {0.25, 0.5, 0.75};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 4;
  o.n_series = 3;
  o.inputs = in;
  o.consts = consts;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs_opts(m, &o, &rhs, NULL), NDE_OK);
  const int rows[4] = {2, 0, 2, 1};
  assert_int_equal(nde_rhs_set_rows(rhs, 4, rows), NDE_OK);
  double U[4] = {0}, f[4];
  assert_int_equal(nde_rhs_f(rhs, 1.0, 4, U, NULL, f, NULL), 0);
  const double want[4] = {6 + 75 + 9500, 2 + 25 + 9500, 6 + 75 + 9500, 4 + 50 + 9500};
  for (int r = 0; r < 4; r++) check_close(f[r], want[r], 1e-15);
  /* The map covers 4 rows now; 3 rows then allow only 3. */
  assert_int_equal(nde_rhs_set_rows(rhs, 3, rows), NDE_OK);
  assert_true(nde_rhs_f(rhs, 1.0, 4, U, NULL, f, NULL) < 0);
  assert_int_equal(nde_rhs_f(rhs, 1.0, 3, U, NULL, f, NULL), 0);
  /* Bad maps are refused and leave the old one. */
  const int bad_hi[2] = {0, 3}, bad_neg[2] = {-1, 0};
  assert_int_equal(nde_rhs_set_rows(rhs, 2, bad_hi), NDE_ERR_ARG);
  assert_int_equal(nde_rhs_set_rows(rhs, 2, bad_neg), NDE_ERR_ARG);
  assert_int_equal(nde_rhs_set_rows(rhs, 5, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_rhs_set_rows(rhs, 0, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_rhs_f(rhs, 1.0, 3, U, NULL, f, NULL), 0);
  check_close(f[0], want[0], 1e-15);
  /* NULL: every row in series 0. */
  assert_int_equal(nde_rhs_set_rows(rhs, 4, NULL), NDE_OK);
  assert_int_equal(nde_rhs_f(rhs, 1.0, 4, U, NULL, f, NULL), 0);
  for (int r = 0; r < 4; r++) check_close(f[r], want[1], 1e-15);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_breakpoints_are_the_jumps_of_step_inputs_of_the_bound_rows(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput a (step)\ninput b\ninput c (step)\ndx/dt = a*x + b\n");
  /* Series 0 jumps at 1 and 3 (not at 2: the value repeats); series 1 at 2.5 and 3.  Input c
   * jumps everywhere but f does not read it; b is linear (kinks are not breakpoints). */
  const double t0[5] = {0, 1, 2, 3, 4}, u0[15] = {0, 0, 0, 1, 5, 1, 1, 0, 2, 2, 9, 3, 2, 1, 4};
  const double t1[4] = {0, 1.5, 2.5, 3}, u1[12] = {5, 0, 1, 5, 7, 2, 6, 1, 3, 7, 0, 4};
  const nde_input_series in[2] = {{5, t0, u0}, {4, t1, u1}};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 3;
  o.n_series = 2;
  o.inputs = in;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs_opts(m, &o, &rhs, NULL), NDE_OK);
  double bp[8];
  /* Rows start in series 0. */
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 4, 8, bp), 2);
  assert_true(bp[0] == 1 && bp[1] == 3);
  const int rows[3] = {0, 1, 0};
  assert_int_equal(nde_rhs_set_rows(rhs, 3, rows), NDE_OK);
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 4, 8, bp), 3);
  assert_true(bp[0] == 1 && bp[1] == 2.5 && bp[2] == 3);
  /* The interval is open at t0 and closed at t1 going forward: a jump at the end of a solve is
   * a breakpoint (its last step must see the values from before it). */
  assert_int_equal(nde_rhs_breakpoints(rhs, 1, 3, 8, bp), 2);
  assert_true(bp[0] == 2.5 && bp[1] == 3);
  assert_int_equal(nde_rhs_breakpoints(rhs, 1, 2.9, 8, bp), 1);
  /* Where f is defined: the samples' span of the inputs it reads (a and b, not c), over the
   * bound rows' series: [0, 4] and [0, 3]. */
  double lo, hi;
  nde_rhs_domain(rhs, &lo, &hi);
  assert_true(lo == 0 && hi == 3);
  /* Backward: ordered from t0 towards t1. */
  assert_int_equal(nde_rhs_breakpoints(rhs, 4, 0.5, 8, bp), 3);
  assert_true(bp[0] == 3 && bp[1] == 2.5 && bp[2] == 1);
  /* max bounds what is written, not the count. */
  bp[1] = -1;
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 4, 1, bp), 3);
  assert_true(bp[0] == 1 && bp[1] == -1);
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 4, 0, NULL), 3);
  assert_int_equal(nde_rhs_breakpoints(rhs, 3.5, 10, 8, bp), 0);
  /* f really jumps there: just before and at 2.5 in series 1. */
  const int r1 = 1;
  assert_int_equal(nde_rhs_set_rows(rhs, 1, &r1), NDE_OK);
  double x = 1, f0, f1;
  assert_int_equal(nde_rhs_f(rhs, nextafter(2.5, 0), 1, &x, NULL, &f0, NULL), 0);
  assert_int_equal(nde_rhs_f(rhs, 2.5, 1, &x, NULL, &f1, NULL), 0);
  check_close(f1 - f0, 6.0 - 5.0, 1e-12);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  /* A right-hand side without step inputs has none. */
  m = load_ok("state x\ndx/dt = step(x)\n");
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 4, 8, bp), 0);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* Every bad binding: NDE_ERR_ARG and a message naming what is wrong. */
static void expect_bind_error(nde_model *m, const nde_model_rhs_opts *o, const char *needle) {
  nde_rhs *rhs = NULL;
  nde_error err;
  memset(&err, 0, sizeof err);
  assert_int_equal(nde_model_create_rhs_opts(m, o, &rhs, &err), NDE_ERR_ARG);
  assert_null(rhs);
  if (!strstr(err.msg, needle)) print_error("message '%s' lacks '%s'\n", err.msg, needle);
  assert_non_null(strstr(err.msg, needle));
  /* Observers bind the same way. */
  const char *name = "x";
  nde_observer *obs = NULL;
  assert_int_equal(nde_model_create_observer(m, o, 1, &name, &obs, &err), NDE_ERR_ARG);
  assert_null(obs);
  assert_non_null(strstr(err.msg, needle));
}

static void test_bad_bindings_name_the_input_series_and_sample(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput pump, heat (cubic)\nconst T (from data)\ndx/dt = pump*heat*T\n");
  nde_rhs *rhs = NULL;
  nde_error err;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, &err), NDE_ERR_ARG);
  assert_string_equal(err.msg, "the model declares input 'pump' (line 2) but no input data was given "
                               "(nde_model_rhs_opts.inputs)");
  const double t[3] = {0, 1, 2}, u[6] = {1, 2, 3, 4, 5, 6}, tbad[3] = {0, 1, 1};
  const double unan[6] = {1, 2, 3, NAN, 5, 6}, tinf[3] = {0, INFINITY, 5}, T[2] = {1, 2};
  nde_input_series in[2] = {{3, t, u}, {3, t, u}};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.n_series = 2;
  o.inputs = in;
  expect_bind_error(m, &o, "the model declares constant 'T' (line 3) from data but no constants were given");
  o.consts = T;
  in[1].t = tbad;
  expect_bind_error(m, &o, "input data of series 1: times are not strictly increasing at sample 2 (t = 1 after 1)");
  in[1].t = tinf;
  expect_bind_error(m, &o, "input data of series 1: time 1 is not finite");
  in[1].t = t;
  in[1].u = unan;
  expect_bind_error(m, &o, "input 'heat' of series 1 is not finite at sample 1 (t = 1)");
  in[1].u = u;
  in[0].n = 0;
  expect_bind_error(m, &o, "input data of series 0 has no samples");
  in[0].n = 3;
  const double Tnan[2] = {1, NAN};
  o.consts = Tnan;
  expect_bind_error(m, &o, "constant 'T' of series 1 is not finite");
  o.consts = T;
  o.n_series = 0;
  expect_bind_error(m, &o, "n_series must be >= 1 (got 0)");
  o.n_series = 2;
  o.max_batch = 0;
  expect_bind_error(m, &o, "max_batch must be >= 1 (got 0)");
  o.max_batch = 2;
  assert_int_equal(nde_model_create_rhs_opts(m, &o, &rhs, &err), NDE_OK);
  /* Everything was copied: the caller's arrays may change. */
  double ucopy[6];
  memcpy(ucopy, u, sizeof ucopy);
  in[0].u = ucopy;
  double x = 1.0, f;
  assert_int_equal(nde_rhs_f(rhs, 0.5, 1, &x, NULL, &f, NULL), 0);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* Per-series parameters: one block per series after the shared theta, each in its transform. */
static void test_per_series_parameters_have_one_block_per_series(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\nparam a = 1.5\nparam k = 0.5 (positive, per series)\n"
                         "param w = 0.25 (per series, in [0, 1])\nparam c = 2 (fixed)\n"
                         "dx/dt = -k*x + a + w*c\n");
  assert_int_equal(nde_model_n_theta(m), 1);
  assert_int_equal(nde_model_n_series_params(m), 2);
  assert_int_equal(nde_model_n_theta_full(m, 3), 1 + 3 * 2);
  assert_int_equal(nde_model_n_layout(m), 1);
  nde_model_param_info p;
  const int ik = nde_model_find_param(m, "k"), iw = nde_model_find_param(m, "w");
  const int ia = nde_model_find_param(m, "a");
  assert_int_equal(nde_model_get_param(m, ik, &p), NDE_OK);
  assert_int_equal(p.per_series, 1);
  assert_int_equal(p.learnable, 1);
  assert_int_equal(p.offset, 0);
  assert_int_equal(p.transform, NDE_TRANSFORM_LOG);
  assert_int_equal(nde_model_get_param(m, iw, &p), NDE_OK);
  assert_int_equal(p.offset, 1);
  assert_int_equal(p.transform, NDE_TRANSFORM_LOGIT);
  assert_int_equal(nde_model_get_param(m, ia, &p), NDE_OK);
  assert_int_equal(p.per_series, 0);
  assert_int_equal(p.offset, 0);
  double th[7];
  assert_int_equal(nde_model_init_theta_full(m, 1, 3, th), NDE_OK);
  check_close(th[0], 1.5, 0);
  for (int s = 0; s < 3; s++) {
    check_close(th[1 + 2 * s], log(0.5), 1e-15);
    check_close(th[2 + 2 * s], log(0.25 / 0.75), 1e-15);
  }
  assert_int_equal(nde_model_set_param_series(m, ik, 2, 0.875, th), NDE_OK);
  check_close(th[5], log(0.875), 1e-15);
  check_close(nde_model_param_value_series(m, ik, th, 2), 0.875, 1e-15);
  check_close(nde_model_param_value_series(m, ik, th, 1), 0.5, 1e-15);
  check_close(nde_model_param_value_series(m, ia, th, 2), 1.5, 0);
  assert_true(isnan(nde_model_param_value(m, ik, th)));
  assert_true(isnan(nde_model_param_value_series(m, ik, th, -1)));
  assert_int_equal(nde_model_set_param(m, ik, 1.0, th), NDE_ERR_ARG);
  assert_int_equal(nde_model_set_param_series(m, ia, 0, 1.0, th), NDE_ERR_ARG);
  assert_int_equal(nde_model_set_param_series(m, ik, 0, -1.0, th), NDE_ERR_ARG);
  assert_int_equal(nde_model_set_param_series(m, iw, 0, 1.0, th), NDE_ERR_ARG);
  assert_int_equal(nde_model_init_theta_full(m, 1, 0, th), NDE_ERR_ARG);
  /* The rhs reads the full theta, each row at its series. */
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 3;
  o.n_series = 3;
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs_opts(m, &o, &rhs, NULL), NDE_OK);
  assert_int_equal(nde_rhs_get_info(rhs)->n_theta, 7);
  const int rows[3] = {2, 0, 1};
  assert_int_equal(nde_rhs_set_rows(rhs, 3, rows), NDE_OK);
  const double U[3] = {1.25, -0.5, 2.0};
  double f[3];
  assert_int_equal(nde_rhs_f(rhs, 0, 3, U, th, f, NULL), 0);
  check_close(f[0], -0.875 * 1.25 + 1.5 + 0.5, 1e-15);
  check_close(f[1], -0.5 * -0.5 + 1.5 + 0.5, 1e-15);
  check_close(f[2], -0.5 * 2.0 + 1.5 + 0.5, 1e-15);
  /* gtheta: each row's share lands in its own series' entries. */
  const double L[3] = {1, 1, 1};
  double g[7] = {0};
  assert_int_equal(nde_rhs_vjp(rhs, 0, 3, U, th, L, NULL, NULL, g), 0);
  check_close(g[0], 3.0, 1e-15);
  check_close(g[5], -0.875 * 1.25, 1e-15); /* d/dlog k = -k x */
  check_close(g[1], -0.5 * -0.5, 1e-15);
  check_close(g[3], -0.5 * 2.0, 1e-15);
  nde_rhs_destroy(&rhs);
  /* One series by default. */
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  assert_int_equal(nde_rhs_get_info(rhs)->n_theta, 3);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_input_and_const_queries(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ninput a, b (step, hold)\ninput c (cubic)\ndx/dt = a + b + c\n");
  assert_int_equal(nde_model_n_inputs(m), 3);
  const char *names[3] = {"a", "b", "c"};
  const nde_interp interp[3] = {NDE_INTERP_STEP, NDE_INTERP_STEP, NDE_INTERP_CUBIC};
  for (int i = 0; i < 3; i++) {
    nde_model_input_info in;
    assert_int_equal(nde_model_get_input(m, i, &in), NDE_OK);
    assert_string_equal(in.name, names[i]);
    assert_int_equal(in.interp, interp[i]);
    assert_int_equal(in.hold, i < 2);
    assert_int_equal(in.line, i < 2 ? 2 : 3);
    assert_int_equal(nde_model_find_input(m, names[i]), i);
  }
  nde_model_input_info in;
  assert_int_equal(nde_model_get_input(m, 3, &in), NDE_ERR_ARG);
  assert_int_equal(nde_model_find_input(m, "x"), -1);
  assert_int_equal(nde_model_n_consts(m), 0);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear_input_interpolates_and_fails_outside_its_span),
      cmocka_unit_test(test_step_input_is_right_continuous),
      cmocka_unit_test(test_hold_keeps_the_end_values_outside_the_span),
      cmocka_unit_test(test_cubic_input_is_monotone_and_c1),
      cmocka_unit_test(test_rows_read_their_own_series),
      cmocka_unit_test(test_breakpoints_are_the_jumps_of_step_inputs_of_the_bound_rows),
      cmocka_unit_test(test_bad_bindings_name_the_input_series_and_sample),
      cmocka_unit_test(test_per_series_parameters_have_one_block_per_series),
      cmocka_unit_test(test_input_and_const_queries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
