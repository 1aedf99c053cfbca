/* Observers: named state components and observables of a model evaluated on a batch, their VJP
 * (gU and the full theta) and JVP against central finite differences on rows of three series
 * (observables over states, shared and per-series parameters, a net, an input, a constant from
 * data, t and intermediates), identity observers, names that are not quantities, and the
 * probe, which now compiles only what its expressions need. */
#include <math.h>
#include <stdlib.h>

#include "lang_util.h"

static const char *const src =
    "state x, y[2]\n"
    "param p = 0.7149\n"
    "param s = 1.3183 (positive, per series)\n"
    "input u (cubic)\n"
    "const T (from data)\n"
    "net N : 2 -> 3 tanh -> 1\n"
    "w = N(x, y[1])\n"
    "v = 2*x*y[2]\n"
    "observe h = s*x*y[2] + u*T + sin(t)*p\n"
    "observe g = w[1] + y[1]^2 - v\n"
    "dx/dt = -p*x + w[1]\n"
    "dy/dt = [y[2], -s*y[1]]\n";

#define N_SERIES 3

typedef struct binding {
  double t[5], u[N_SERIES][5], consts[N_SERIES];
  nde_input_series in[N_SERIES];
} binding;

static nde_model_rhs_opts bind(binding *b, int max_batch) {
  for (int s = 0; s < N_SERIES; s++) {
    for (int k = 0; k < 5; k++) {
      b->t[k] = 0.5 * k;
      b->u[s][k] = cos(0.9 * k + s) + 0.2 * s;
    }
    b->in[s] = (nde_input_series){5, b->t, b->u[s]};
    b->consts[s] = 1.25 + 0.5 * s;
  }
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = max_batch;
  o.n_series = N_SERIES;
  o.inputs = b->in;
  o.consts = b->consts;
  return o;
}

static void check_observer(int B, const int *rows) {
  nde_model *m = load_ok(src);
  binding bd;
  nde_model_rhs_opts o = bind(&bd, 4);
  const char *names[4] = {"y[2]", "h", "x", "g"};
  nde_observer *obs = NULL;
  nde_error err;
  if (nde_model_create_observer(m, &o, 4, names, &obs, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  assert_int_equal(nde_observer_is_identity(obs), 0);
  assert_int_equal(nde_observer_n_outputs(obs), 4);
  assert_int_equal(nde_observer_set_rows(obs, B, rows), NDE_OK);
  const int n = 3, K = 4;
  const size_t P = nde_model_n_theta_full(m, N_SERIES), N = (size_t)B * n, NK = (size_t)B * K;
  nde_rng rng;
  nde_rng_seed(&rng, 300 + (uint64_t)B);
  double *th = calloc(P, sizeof *th), *U = calloc(N, sizeof *U), *H = calloc(NK, sizeof *H);
  double *LH = calloc(NK, sizeof *LH), *gU = calloc(N, sizeof *gU), *gth = calloc(P, sizeof *gth);
  double *V = calloc(N, sizeof *V), *Vth = calloc(P, sizeof *Vth), *JH = calloc(NK, sizeof *JH);
  double *Hp = calloc(NK, sizeof *Hp), *Hm = calloc(NK, sizeof *Hm);
  double *Up = calloc(N, sizeof *Up), *thp = calloc(P, sizeof *thp);
  assert_int_equal(nde_model_init_theta_full(m, 17, N_SERIES, th), NDE_OK);
  for (size_t i = 0; i < P; i++) th[i] += 0.4 * (nde_rng_uniform(&rng) - 0.5);
  nde_test_fill(&rng, N, -1.7, 1.9, U);
  nde_test_fill(&rng, NK, -1.1, 1.3, LH);
  nde_test_fill(&rng, N, -1.0, 1.0, V);
  nde_test_fill(&rng, P, -1.0, 1.0, Vth);
  const double t = 1.3719, h = 1e-6;

  /* Values: states are their columns; h as written, row by row, at the row's series. */
  assert_int_equal(nde_observer_eval(obs, t, B, U, th, H), 0);
  const int is = nde_model_find_param(m, "s");
  for (int r = 0; r < B; r++) {
    const double *u = U + r * n;
    assert_true(H[r * K + 0] == u[2]);
    assert_true(H[r * K + 2] == u[0]);
    const int s = rows[r];
    /* u(t) of the series: t = 1.3719 lies in [1, 1.5); read it through an observer of u*T/T. */
    const double sv = nde_model_param_value_series(m, is, th, s);
    double ut = NAN;
    {
      nde_model *um = NULL;
      char usrc[1024];
      snprintf(usrc, sizeof usrc, "%sobserve uu = u\n", src);
      um = load_ok(usrc);
      nde_observer *uo = NULL;
      const char *un = "uu";
      assert_int_equal(nde_model_create_observer(um, &o, 1, &un, &uo, NULL), NDE_OK);
      assert_int_equal(nde_observer_set_rows(uo, 1, &s), NDE_OK);
      assert_int_equal(nde_observer_eval(uo, t, 1, u, th, &ut), 0);
      nde_observer_destroy(&uo);
      nde_model_destroy(&um);
    }
    check_close(H[r * K + 1], sv * u[0] * u[2] + ut * bd.consts[s] + sin(t) * th[0], 1e-14);
  }
  /* VJP in U and theta, entry by entry, against central differences of LH^T H. */
  assert_int_equal(nde_observer_vjp(obs, t, B, U, th, LH, gU, gth), 0);
  for (size_t q = 0; q < N; q++) {
    memcpy(Up, U, N * sizeof *U);
    Up[q] = U[q] + h;
    assert_int_equal(nde_observer_eval(obs, t, B, Up, th, Hp), 0);
    Up[q] = U[q] - h;
    assert_int_equal(nde_observer_eval(obs, t, B, Up, th, Hm), 0);
    double fd = 0;
    for (size_t i = 0; i < NK; i++) fd += LH[i] * (Hp[i] - Hm[i]) / (2 * h);
    check_close(gU[q], fd, 1e-7);
  }
  for (size_t k = 0; k < P; k++) {
    memcpy(thp, th, P * sizeof *th);
    thp[k] = th[k] + h;
    assert_int_equal(nde_observer_eval(obs, t, B, U, thp, Hp), 0);
    thp[k] = th[k] - h;
    assert_int_equal(nde_observer_eval(obs, t, B, U, thp, Hm), 0);
    double fd = 0;
    for (size_t i = 0; i < NK; i++) fd += LH[i] * (Hp[i] - Hm[i]) / (2 * h);
    check_close(gth[k], fd, 1e-7);
  }
  /* The VJP accumulates: a second call doubles. */
  double g0 = gU[0];
  assert_int_equal(nde_observer_vjp(obs, t, B, U, th, LH, gU, NULL), 0);
  check_close(gU[0], 2 * g0, 1e-15);
  /* JVP against the directional difference, and <LH, J v> = <J^T LH, v>. */
  assert_int_equal(nde_observer_jvp(obs, t, B, U, th, V, Vth, JH), 0);
  for (size_t i = 0; i < N; i++) Up[i] = U[i] + h * V[i];
  for (size_t k = 0; k < P; k++) thp[k] = th[k] + h * Vth[k];
  assert_int_equal(nde_observer_eval(obs, t, B, Up, thp, Hp), 0);
  for (size_t i = 0; i < N; i++) Up[i] = U[i] - h * V[i];
  for (size_t k = 0; k < P; k++) thp[k] = th[k] - h * Vth[k];
  assert_int_equal(nde_observer_eval(obs, t, B, Up, thp, Hm), 0);
  for (size_t i = 0; i < NK; i++) check_close(JH[i], (Hp[i] - Hm[i]) / (2 * h), 1e-7);
  for (size_t q = 0; q < N; q++) gU[q] = 0;
  memset(gth, 0, P * sizeof *gth);
  assert_int_equal(nde_observer_vjp(obs, t, B, U, th, LH, gU, gth), 0);
  check_close(nde_test_dot(NK, LH, JH), nde_test_dot(N, gU, V) + nde_test_dot(P, gth, Vth), 1e-12);
  /* Out of the inputs' span: fatal, like the rhs. */
  assert_true(nde_observer_eval(obs, 2.5, B, U, th, H) < 0);
  assert_true(nde_observer_eval(obs, t, 5, U, th, H) < 0);
  free(th); free(U); free(H); free(LH); free(gU); free(gth); free(V); free(Vth); free(JH);
  free(Hp); free(Hm); free(Up); free(thp);
  nde_observer_destroy(&obs);
  assert_null(obs);
  nde_model_destroy(&m);
}

static void test_observer_vjp_and_jvp_match_finite_differences(void **state) {
  (void)state;
  const int one[1] = {1}, four[4] = {2, 0, 2, 1};
  check_observer(1, one);
  check_observer(4, four);
}

static void test_state_names_make_an_identity_observer(void **state) {
  (void)state;
  nde_model *m = load_ok(src);
  assert_int_equal(nde_model_n_observables(m), 2);
  assert_string_equal(nde_model_observable_name(m, 0), "h");
  assert_string_equal(nde_model_observable_name(m, 1), "g");
  assert_null(nde_model_observable_name(m, 2));
  binding bd;
  nde_model_rhs_opts o = bind(&bd, 2);
  const char *names[2] = {"y[1]", "x"};
  nde_observer *obs = NULL;
  assert_int_equal(nde_model_create_observer(m, &o, 2, names, &obs, NULL), NDE_OK);
  assert_int_equal(nde_observer_is_identity(obs), 1);
  const double U[6] = {0.25, -1.5, 2.75, 3.125, 0.5, -0.0625};
  double H[4], LH[4] = {1, 2, 3, 4}, gU[6] = {0};
  assert_int_equal(nde_observer_eval(obs, 0.5, 2, U, NULL, H), 0);
  assert_true(H[0] == -1.5 && H[1] == 0.25 && H[2] == 0.5 && H[3] == 3.125);
  assert_int_equal(nde_observer_vjp(obs, 0.5, 2, U, NULL, LH, gU, NULL), 0);
  const double want[6] = {2, 1, 0, 4, 3, 0};
  for (int i = 0; i < 6; i++) assert_true(gU[i] == want[i]);
  nde_observer_destroy(&obs);
  nde_model_destroy(&m);
}

static void test_names_that_are_not_quantities_are_refused(void **state) {
  (void)state;
  nde_model *m = load_ok(src);
  binding bd;
  nde_model_rhs_opts o = bind(&bd, 1);
  nde_observer *obs = NULL;
  nde_error err;
  const char *bad1[1] = {"hh"}, *bad2[2] = {"x", "w"}, *bad3[1] = {"y"};
  assert_int_equal(nde_model_create_observer(m, &o, 1, bad1, &obs, &err), NDE_ERR_ARG);
  assert_string_equal(err.msg, "unknown quantity 'hh' (expected a state component such as 'x' or an observable such as 'h')");
  assert_int_equal(nde_model_create_observer(m, &o, 2, bad2, &obs, &err), NDE_ERR_ARG);
  assert_string_equal(err.msg, "'w' is an intermediate, not an observable (declare it with 'observe w = ...')");
  assert_int_equal(nde_model_create_observer(m, &o, 1, bad3, &obs, &err), NDE_ERR_ARG);
  assert_int_equal(nde_model_create_observer(m, &o, 0, bad1, &obs, &err), NDE_ERR_ARG);
  assert_null(obs);
  nde_model_destroy(&m);
  /* A model without observables says so. */
  m = load_ok("state q, p\ndq/dt = p\ndp/dt = -q\n");
  assert_int_equal(nde_model_create_observer(m, NULL, 1, bad1, &obs, &err), NDE_ERR_ARG);
  assert_string_equal(err.msg, "unknown quantity 'hh' (expected a state component such as 'q'; the model declares no observables)");
  nde_model_destroy(&m);
}

/* Zero cotangents are exact zeros: where an observable is outside its domain (NaN) and its
 * cotangent is 0 (not measured there), the VJP is that of the other quantities alone, finite and
 * equal to the central differences of the finite part of LH^T H.  Row 1's net input is NaN, so
 * its net call has an all-zero cotangent row (the net's rows are then taken one by one); row 2's
 * a is NaN through a product.  0 * NaN in the reverse sweep made every adjoint NaN. */
static double part(int len, const double *LH, const double *H) {
  double s = 0; /* LH^T H over the entries with a cotangent */
  for (int i = 0; i < len; i++)
    if (LH[i] != 0) s += LH[i] * H[i];
  return s;
}

static void test_unmeasured_undefined_quantities_pass_nothing_back(void **state) {
  (void)state;
  nde_model *m = load_ok("state x, y\nparam p = 0.8\nnet N : 2 -> 4 tanh -> 1\n"
                         "w = N(sqrt(x), y)\nobserve a = w[1]*sqrt(y)\nobserve b = p*x*y + w[1]\n"
                         "dx/dt = -p*x\ndy/dt = -y\n");
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 3;
  const char *names[3] = {"a", "b", "y"};
  nde_observer *obs = NULL;
  assert_int_equal(nde_model_create_observer(m, &o, 3, names, &obs, NULL), NDE_OK);
  enum { B = 3, K = 3, n = 2 };
  /* Row 0 defined everywhere; row 1 x < 0 (a and b NaN through the net); row 2 y < 0 (a NaN). */
  const double U[B * n] = {0.7, 1.3, -0.4, 0.9, 1.1, -0.6};
  const double LH[B * K] = {0.3, -1.2, 0.7, 0, 0, 1.5, 0, 0.8, -0.4};
  const size_t P = nde_model_n_theta(m);
  double *th = calloc(P, sizeof *th), *gth = calloc(P, sizeof *gth), *thp = calloc(P, sizeof *thp);
  assert_int_equal(nde_model_init_theta(m, 5, th), NDE_OK);
  double H[B * K], gU[B * n] = {0}, Hp[B * K], Hm[B * K], Up[B * n];
  assert_int_equal(nde_observer_eval(obs, 0, B, U, th, H), 1);
  assert_true(isnan(H[3]) && isnan(H[4]) && isfinite(H[5]) && isnan(H[6]) && isfinite(H[7]));
  assert_int_equal(nde_observer_vjp(obs, 0, B, U, th, LH, gU, gth), 0);
  const double h = 1e-6;
  for (int q = 0; q < B * n; q++) {
    memcpy(Up, U, sizeof Up);
    Up[q] = U[q] + h;
    nde_observer_eval(obs, 0, B, Up, th, Hp);
    Up[q] = U[q] - h;
    nde_observer_eval(obs, 0, B, Up, th, Hm);
    const double fd = (part(B * K, LH, Hp) - part(B * K, LH, Hm)) / (2 * h);
    assert_true(isfinite(gU[q]));
    check_close(gU[q], fd, 1e-7);
  }
  for (size_t k = 0; k < P; k++) {
    memcpy(thp, th, P * sizeof *th);
    thp[k] = th[k] + h;
    nde_observer_eval(obs, 0, B, U, thp, Hp);
    thp[k] = th[k] - h;
    nde_observer_eval(obs, 0, B, U, thp, Hm);
    const double fd = (part(B * K, LH, Hp) - part(B * K, LH, Hm)) / (2 * h);
    assert_true(isfinite(gth[k]));
    check_close(gth[k], fd, 1e-7);
  }
  /* A cotangent on an undefined quantity still gives NaN: nothing is hidden. */
  double LH2[B * K];
  memcpy(LH2, LH, sizeof LH2);
  LH2[6] = 1.0;
  memset(gth, 0, P * sizeof *gth);
  assert_int_equal(nde_observer_vjp(obs, 0, B, U, th, LH2, gU, gth), 1);
  free(th), free(gth), free(thp);
  nde_observer_destroy(&obs);
  nde_model_destroy(&m);
}

/* A probe compiles only its expressions: a model whose own equations fail (log of a negative
 * state) still gives finite probe values, and probes of data-bound values are refused. */
static void test_probes_compile_only_what_they_need(void **state) {
  (void)state;
  nde_model *m = load_ok("state x, y\nparam a = 1.5\nbad = log(x)\nok = a*y\ndx/dt = bad\ndy/dt = ok\n");
  const char *ex[2] = {"ok + 1", "[x, y]*2"};
  nde_probe *pr = NULL;
  assert_int_equal(nde_probe_create(m, 2, ex, 3, &pr, NULL), NDE_OK);
  assert_int_equal(nde_probe_total_width(pr), 3);
  const double U[2] = {-1.0, 0.5}, th[1] = {1.5};
  double out[3];
  assert_int_equal(nde_probe_eval(pr, 0, 1, U, th, out), 0);
  assert_true(out[0] == 1.75 && out[1] == -2.0 && out[2] == 1.0);
  assert_true(nde_probe_eval(pr, 0, 4, U, th, out) < 0);
  nde_probe_destroy(&pr);
  nde_model_destroy(&m);
  m = load_ok("state x\ninput u\nconst T (from data)\nconst g = 2\ndx/dt = u*T\n");
  nde_error err;
  const char *e1[1] = {"x*g"}, *e2[1] = {"x*u"};
  assert_int_equal(nde_probe_create(m, 1, e1, 1, &pr, &err), NDE_OK);
  double x = 1.25, v;
  assert_int_equal(nde_probe_eval(pr, 0, 1, &x, NULL, &v), 0);
  assert_true(v == 2.5);
  nde_probe_destroy(&pr);
  assert_int_equal(nde_probe_create(m, 1, e2, 1, &pr, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "this probe does not bind"));
  /* Bound to data: each row reads its own series' input and constant. */
  const double ut[2] = {0, 1}, ua[2] = {3, 3}, ub[2] = {-1, 1};
  const nde_input_series in[2] = {{2, ut, ua}, {2, ut, ub}};
  const double T[2] = {10, 20};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 2;
  o.n_series = 2;
  o.inputs = in;
  o.consts = T;
  const char *e3[2] = {"x*u", "T + u"};
  assert_int_equal(nde_probe_create_opts(m, 2, e3, &o, &pr, &err), NDE_OK);
  const int rows[2] = {1, 0};
  assert_int_equal(nde_probe_set_rows(pr, 2, rows), NDE_OK);
  const double X[2] = {2, 5};
  double Y[4];
  assert_int_equal(nde_probe_eval(pr, 0.5, 2, X, NULL, Y), 0);
  /* Row 0 in series 1 (u = 0 at t = 0.5, T = 20); row 1 in series 0 (u = 3, T = 10). */
  assert_true(Y[0] == 0.0 && Y[1] == 20.0 && Y[2] == 15.0 && Y[3] == 13.0);
  assert_int_equal(nde_probe_set_rows(pr, 1, (const int[]){-1}), NDE_ERR_ARG);
  nde_probe_destroy(&pr);
  /* Without the data the model declares, the bound probe is refused as an rhs would be. */
  assert_int_not_equal(nde_probe_create_opts(m, 1, e2, NULL, &pr, &err), NDE_OK);
  assert_null(pr);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_observer_vjp_and_jvp_match_finite_differences),
      cmocka_unit_test(test_state_names_make_an_identity_observer),
      cmocka_unit_test(test_names_that_are_not_quantities_are_refused),
      cmocka_unit_test(test_unmeasured_undefined_quantities_pass_nothing_back),
      cmocka_unit_test(test_probes_compile_only_what_they_need),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
