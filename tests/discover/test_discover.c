/* The discover layer and the model probes it reads networks through: library terms in a fixed
 * order, STLSQ recovering a sparse law from near-collinear trajectory samples, the sweep's
 * criterion picking the true support, box sampling, probes matching the network (and their clones
 * binding rows of their own), and the C export and equation formats of a small model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/discover.h"
#include "nde/model.h"

static const char *const XY[2] = {"x", "y"};

static void library_terms_come_in_graded_order(void **state) {
  (void)state;
  nde_library_opts o = nde_library_opts_default();
  o.poly_degree = 2;
  o.sin = 1;
  const char *user[1] = {"x/(1 + y)"};
  o.n_user = 1;
  o.user = user;
  int n = 0;
  char **t = NULL;
  assert_int_equal(nde_library_terms(2, XY, &o, &n, &t, NULL), NDE_OK);
  const char *want[] = {"1", "x", "y", "x^2", "x*y", "y^2", "sin(x)", "sin(y)", "x/(1 + y)"};
  assert_int_equal(n, 9);
  for (int i = 0; i < n; i++) assert_string_equal(t[i], want[i]);
  free(t);
  /* Degree 3 in 3 components: 1 + 3 + 6 + 10 terms. */
  const char *xyz[3] = {"x", "y[1]", "y[2]"};
  o = nde_library_opts_default();
  assert_int_equal(nde_library_terms(3, xyz, &o, &n, &t, NULL), NDE_OK);
  assert_int_equal(n, 20);
  assert_string_equal(t[19], "y[2]^3");
  free(t);
}

static void library_spec_errors_name_the_item(void **state) {
  (void)state;
  nde_library_opts o = nde_library_opts_default();
  nde_error err;
  assert_int_equal(nde_library_opts_parse("poly:2,cos,exp,noconst", &o, &err), NDE_OK);
  assert_int_equal(o.poly_degree, 2);
  assert_true(o.cos && o.exp && !o.sin && !o.constant);
  assert_int_equal(nde_library_opts_parse("poly:x", &o, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "bad degree in 'poly:x'"));
  assert_int_equal(nde_library_opts_parse("poly:2,tan", &o, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "unknown item 'tan'"));
}

/* Samples on a closed Lotka-Volterra-like orbit, where x, y and their products are strongly
 * correlated: the regime where plain least squares smears a law over many terms. */
enum { M = 400 };
static void orbit(double *X) {
  for (int i = 0; i < M; i++) {
    double s = 6.283185307179586 * i / M;
    X[2 * i] = 1.7 + 1.2 * cos(s) + 0.3 * sin(2 * s);
    X[2 * i + 1] = 2.3 + 1.9 * sin(s);
  }
}

static void stlsq_keeps_exactly_the_true_term_on_a_trajectory(void **state) {
  (void)state;
  double X[2 * M], y[M];
  orbit(X);
  nde_library_opts o = nde_library_opts_default();
  int p = 0;
  char **t = NULL;
  assert_int_equal(nde_library_terms(2, XY, &o, &p, &t, NULL), NDE_OK);
  assert_int_equal(p, 10);
  double *Theta = malloc(sizeof(double) * M * (size_t)p);
  nde_rng rng;
  nde_rng_seed(&rng, 2385);
  for (int i = 0; i < M; i++) {
    double x = X[2 * i], v = X[2 * i + 1];
    const double row[10] = {1, x, v, x * x, x * v, v * v, x * x * x, x * x * v, x * v * v, v * v * v};
    memcpy(Theta + (size_t)i * p, row, sizeof row);
    y[i] = -0.899 * x * v + 1e-3 * nde_rng_normal(&rng);
  }
  double xi[10];
  nde_error err;
  assert_int_equal(nde_stlsq(M, p, Theta, y, 0.05, NULL, xi, &err), NDE_OK);
  for (int j = 0; j < p; j++) {
    if (j == 4) check_close(xi[j], -0.899, 1e-3);
    else assert_true(xi[j] == 0.0);
  }
  /* The sweep: small thresholds keep spurious terms, large ones drop the law; BIC picks it. */
  double thr[12];
  for (int s = 0; s < 12; s++) thr[s] = 1e-4 * pow(10, s * 4.0 / 11);
  nde_sweep_point pts[12];
  double XI[12 * 10];
  int chosen = -1;
  assert_int_equal(nde_stlsq_sweep(M, p, Theta, y, 12, thr, NULL, NDE_CRIT_BIC, pts, XI, &chosen,
                                   &err), NDE_OK);
  assert_int_equal(pts[chosen].n_terms, 1);
  check_close(XI[chosen * 10 + 4], -0.899, 1e-3);
  assert_true(pts[0].n_terms > 1);
  assert_int_equal(pts[11].n_terms, 0);
  free(Theta);
  free(t);
}

static void stlsq_rejects_non_finite_samples_with_their_index(void **state) {
  (void)state;
  double Theta[6] = {1, 2, 3, 4, 5, NAN}, y[3] = {1, 2, 3}, xi[2];
  nde_error err;
  assert_int_equal(nde_stlsq(3, 2, Theta, y, 0.1, NULL, xi, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "term 2 is not finite at sample 2"));
}

static void box_samples_cover_the_widened_box_and_repeat_with_the_seed(void **state) {
  (void)state;
  double P[4] = {1.0, -2.0, 3.0, -2.0}; /* the second component has zero width */
  double A[2 * 500], B[2 * 500];
  nde_rng r1, r2;
  nde_rng_seed(&r1, 7);
  nde_rng_seed(&r2, 7);
  nde_sample_box(2, 2, P, 0.25, 500, &r1, A);
  nde_sample_box(2, 2, P, 0.25, 500, &r2, B);
  assert_memory_equal(A, B, sizeof A);
  double lo0 = 1e9, hi0 = -1e9;
  for (int i = 0; i < 500; i++) {
    lo0 = fmin(lo0, A[2 * i]);
    hi0 = fmax(hi0, A[2 * i]);
    assert_true(A[2 * i + 1] >= -2.5 && A[2 * i + 1] <= -1.5);
  }
  assert_true(lo0 >= 0.5 && lo0 < 0.6 && hi0 <= 3.5 && hi0 > 3.4);
}

static const char LV[] =
    "state x = 0.44, y = 4.6\n"
    "param alpha = 1.3 (fixed)\n"
    "param beta = 0.9 (positive)\n"
    "net U : 2 -> 5 tanh -> 5 gelu -> 2\n"
    "u = U(x, y/2)   # scaled input\n"
    "dx/dt = alpha*x - beta*x*y + u[1]\n"
    "dy/dt = -1.8*y + u[2]^2\n";

static void probe_matches_the_network_and_the_terms(void **state) {
  (void)state;
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(LV, sizeof LV - 1, "lv.nde", &m, NULL), NDE_OK);
  size_t nt = nde_model_n_theta(m);
  double *theta = malloc(nt * sizeof *theta);
  assert_int_equal(nde_model_init_theta(m, 11, theta), NDE_OK);
  int nc = 0;
  nde_model_net_call *calls = NULL;
  assert_int_equal(nde_model_net_calls(m, &nc, &calls), NDE_OK);
  assert_int_equal(nc, 1);
  assert_int_equal(calls[0].line, 5);
  const char *src = nde_model_source(m);
  assert_int_equal((int)(calls[0].end - calls[0].begin), 9);
  assert_memory_equal(src + calls[0].begin, "U(x, y/2)", 9);
  assert_memory_equal(src + calls[0].args_begin, "x, y/2", 6);
  size_t b0, b1;
  assert_int_equal(nde_model_net_decl_range(m, 0, &b0, &b1), NDE_OK);
  assert_memory_equal(src + b0, "net U : 2", 9);
  assert_int_equal(src[b1 - 1], '\n');
  free(calls);

  const char *ex[3] = {"U(x, y/2)", "x*y", "beta"};
  nde_probe *p = NULL;
  nde_error err;
  assert_int_equal(nde_probe_create(m, 3, ex, 4, &p, &err), NDE_OK);
  assert_int_equal(nde_probe_width(p, 0), 2);
  assert_int_equal(nde_probe_total_width(p), 4);
  double U[8] = {0.5, 4.1, 1.3, 2.2, 2.9, 0.7, 0.1, 1.0}, OUT[16];
  assert_int_equal(nde_probe_eval(p, 0.0, 4, U, theta, OUT), 0);
  nde_model_net_info ni;
  assert_int_equal(nde_model_get_net(m, 0, &ni), NDE_OK);
  nde_net_ws *ws = NULL;
  assert_int_equal(nde_net_ws_create(ni.net, 4, &ws), NDE_OK);
  double X[8], Y[8];
  for (int r = 0; r < 4; r++) {
    X[2 * r] = U[2 * r];
    X[2 * r + 1] = U[2 * r + 1] / 2;
  }
  nde_net_forward(ni.net, theta + ni.offset, 4, X, Y, NULL, ws);
  for (int r = 0; r < 4; r++) {
    check_close(OUT[4 * r], Y[2 * r], 1e-14);
    check_close(OUT[4 * r + 1], Y[2 * r + 1], 1e-14);
    check_close(OUT[4 * r + 2], U[2 * r] * U[2 * r + 1], 1e-15);
    check_close(OUT[4 * r + 3], 0.9, 1e-15);
  }
  nde_net_ws_destroy(&ws);
  nde_probe_destroy(&p);
  assert_null(p);

  /* A bad term names itself, its column and the problem. */
  const char *bad[2] = {"x*y", "x*z"};
  assert_int_equal(nde_probe_create(m, 2, bad, 4, &p, &err), NDE_ERR_MODEL);
  assert_null(p);
  assert_non_null(strstr(err.msg, "expression 'x*z', column 3: unknown name 'z'"));
  free(theta);
  nde_model_destroy(&m);
}

/* What an expression reads: the states through intermediates and net calls, the measured inputs
 * (variables after the states), and neither parameters, constants nor time. */
static void probe_dependency_names_the_states_and_inputs_an_expression_reads(void **state) {
  (void)state;
  static const char SRC[] =
      "state x = 1, y = 2, z = 3\n"
      "input V, W\n"
      "param k = 0.5\n"
      "const g = 2\n"
      "net U : 2 -> 4 tanh -> 2\n"
      "net F : 1 -> 3 tanh -> 1\n"
      "w = y*V\n"
      "dx/dt = -k*x + U(x, w)[1]\n"
      "dy/dt = F(z/10)[1]\n"
      "dz/dt = g*t\n";
  nde_model *m = NULL;
  nde_error err;
  assert_int_equal(nde_model_load_string(SRC, sizeof SRC - 1, "dep.nde", &m, &err), NDE_OK);
  const double ut[2] = {0, 1}, uv[4] = {1, 2, 3, 4};
  const nde_input_series in[1] = {{2, ut, uv}};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.inputs = in;
  enum { NE = 9, NV = 5 };
  const char *ex[NE] = {"U(x, w)", "F(z/10)", "w", "k*t + g", "step(x - 1)*z",
                        "[x, W]", "ifelse(y > 0, 1, 2)", "1", "x*y*z*V*W"};
  const unsigned char want[NE][NV] = {
      {1, 1, 0, 1, 0}, {0, 0, 1, 0, 0}, {0, 1, 0, 1, 0}, {0, 0, 0, 0, 0}, {1, 0, 1, 0, 0},
      {1, 0, 0, 0, 1}, {0, 1, 0, 0, 0}, {0, 0, 0, 0, 0}, {1, 1, 1, 1, 1}};
  nde_probe *p = NULL, *c = NULL;
  assert_int_equal(nde_probe_create_opts(m, NE, ex, &o, &p, &err), NDE_OK);
  assert_int_equal(nde_probe_clone(p, &c, &err), NDE_OK);
  unsigned char dep[NE * NV], dc[NE * NV];
  assert_int_equal(nde_probe_dependency(p, dep), NDE_OK);
  assert_int_equal(nde_probe_dependency(c, dc), NDE_OK);
  for (int i = 0; i < NE; i++)
    for (int v = 0; v < NV; v++) {
      if (dep[i * NV + v] != want[i][v])
        fail_msg("expression '%s', variable %d: %d, expected %d", ex[i], v, dep[i * NV + v],
                 want[i][v]);
      assert_int_equal(dc[i * NV + v], dep[i * NV + v]);
    }
  assert_int_equal(nde_probe_dependency(p, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_probe_dependency(NULL, dep), NDE_ERR_ARG);
  nde_probe_destroy(&p);
  nde_probe_destroy(&c);
  nde_model_destroy(&m);
}

/* Per-series values the rows of a probe are bound to: a constant from data and a per-series
 * parameter, beside a network. */
static const char SERIES[] =
    "state x = 0.44, y = 4.6\n"
    "const P (from data)\n"
    "param k = 0.25 (positive, per series)\n"
    "param beta = 0.9 (positive)\n"
    "net U : 2 -> 5 tanh -> 5 gelu -> 2\n"
    "u = U(x, y/2)\n"
    "dx/dt = -k*x + P*u[1]\n"
    "dy/dt = -beta*y + u[2]\n";

static void probe_clone_gives_the_same_bits_binds_its_own_rows_and_outlives_the_original(
    void **state) {
  (void)state;
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(SERIES, sizeof SERIES - 1, "series.nde", &m, NULL),
                   NDE_OK);
  enum { NS = 3, B = 4, W = 4 };
  const size_t nt = nde_model_n_theta(m), nf = nde_model_n_theta_full(m, NS);
  double *theta = malloc(nf * sizeof *theta);
  assert_int_equal(nde_model_init_theta_full(m, 23, NS, theta), NDE_OK);
  assert_int_equal(nde_model_n_series_params(m), 1);
  for (int s = 0; s < NS; s++) theta[nt + (size_t)s] = -1.1 + 0.675 * s;
  double P[NS] = {1.75, -0.625, 3.5};
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = B;
  o.n_series = NS;
  o.consts = P;
  const char *ex[3] = {"U(x, y/2)", "k*x + P", "P*y^2"};
  nde_probe *p = NULL, *c = NULL, *cc = NULL;
  nde_error err;
  assert_int_equal(nde_probe_create_opts(m, 3, ex, &o, &p, &err), NDE_OK);
  assert_int_equal(nde_probe_total_width(p), W);
  const int rows_p[B] = {2, 0, 1, 2}, rows_c[B] = {1, 1, 0, 0};
  assert_int_equal(nde_probe_set_rows(p, B, rows_p), NDE_OK);
  const double U[2 * B] = {0.5, 4.1, 1.3, 2.2, 2.9, 0.7, 0.1, 1.0};
  double OP[B * W], OC[B * W], OQ[B * W];
  assert_int_equal(nde_probe_eval(p, 0.375, B, U, theta, OP), 0);

  /* The clone starts with the original's rows and gives its bits. */
  assert_int_equal(nde_probe_clone(p, &c, &err), NDE_OK);
  assert_int_equal(nde_probe_total_width(c), W);
  assert_int_equal(nde_probe_width(c, 0), 2);
  assert_int_equal(nde_probe_width(c, 2), 1);
  assert_int_equal(nde_probe_eval(c, 0.375, B, U, theta, OC), 0);
  assert_memory_equal(OC, OP, sizeof OP);

  /* Rows bound on the clone are its own: the original still reads its series. */
  assert_int_equal(nde_probe_set_rows(c, B, rows_c), NDE_OK);
  assert_int_equal(nde_probe_eval(c, 0.375, B, U, theta, OC), 0);
  assert_int_equal(nde_probe_eval(p, 0.375, B, U, theta, OQ), 0);
  assert_memory_equal(OQ, OP, sizeof OP);
  for (int r = 0; r < B; r++) {
    const int sp = rows_p[r], sc = rows_c[r];
    check_close(OP[r * W + 2], exp(theta[nt + (size_t)sp]) * U[2 * r] + P[sp], 1e-15);
    check_close(OC[r * W + 2], exp(theta[nt + (size_t)sc]) * U[2 * r] + P[sc], 1e-15);
    check_close(OC[r * W + 3], P[sc] * U[2 * r + 1] * U[2 * r + 1], 1e-15);
  }
  assert_true(OC[2] != OP[2]);
  /* The original bound to the clone's rows gives the clone's bits. */
  assert_int_equal(nde_probe_set_rows(p, B, rows_c), NDE_OK);
  assert_int_equal(nde_probe_eval(p, 0.375, B, U, theta, OQ), 0);
  assert_memory_equal(OQ, OC, sizeof OC);

  /* A clone of the clone outlives both (the compiled tape is counted, not copied). */
  assert_int_equal(nde_probe_clone(c, &cc, &err), NDE_OK);
  nde_probe_destroy(&p);
  assert_null(p);
  nde_probe_destroy(&c);
  assert_int_equal(nde_probe_eval(cc, 0.375, B, U, theta, OQ), 0);
  assert_memory_equal(OQ, OC, sizeof OC);
  assert_int_equal(nde_probe_set_rows(cc, B, rows_p), NDE_OK);
  assert_int_equal(nde_probe_eval(cc, 0.375, B, U, theta, OQ), 0);
  assert_memory_equal(OQ, OP, sizeof OP);
  nde_probe_destroy(&cc);

  assert_int_equal(nde_probe_clone(NULL, &c, &err), NDE_ERR_ARG);
  assert_null(c);
  assert_int_equal(nde_probe_clone(cc, NULL, NULL), NDE_ERR_ARG);
  free(theta);
  nde_model_destroy(&m);
}

static void equations_print_as_text_and_latex(void **state) {
  (void)state;
  nde_model *m = NULL;
  assert_int_equal(nde_model_load_string(LV, sizeof LV - 1, "lv.nde", &m, NULL), NDE_OK);
  double *theta = calloc(nde_model_n_theta(m), sizeof *theta);
  assert_int_equal(nde_model_set_param(m, 1, 0.875, theta), NDE_OK);
  char *txt = NULL;
  assert_int_equal(nde_model_format_equations(m, theta, NDE_FORMAT_TEXT, 1, &txt), NDE_OK);
  assert_string_equal(txt, "u = U(x, y/2)\n"
                           "dx/dt = 1.3*x - 0.875*x*y + u[1]\n"
                           "dy/dt = -1.8*y + u[2]^2\n");
  free(txt);
  assert_int_equal(nde_model_format_equations(m, theta, NDE_FORMAT_LATEX, 0, &txt), NDE_OK);
  assert_non_null(strstr(txt, "\\frac{dx}{dt} &= \\alpha \\, x - \\beta \\, x \\, y + u_{1}"));
  assert_non_null(strstr(txt, "u &= U\\left(x, \\frac{y}{2}\\right)"));
  assert_non_null(strstr(txt, "where alpha = 1.3, beta = 0.875"));
  free(txt);
  free(theta);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(library_terms_come_in_graded_order),
      cmocka_unit_test(library_spec_errors_name_the_item),
      cmocka_unit_test(stlsq_keeps_exactly_the_true_term_on_a_trajectory),
      cmocka_unit_test(stlsq_rejects_non_finite_samples_with_their_index),
      cmocka_unit_test(box_samples_cover_the_widened_box_and_repeat_with_the_seed),
      cmocka_unit_test(probe_matches_the_network_and_the_terms),
      cmocka_unit_test(probe_clone_gives_the_same_bits_binds_its_own_rows_and_outlives_the_original),
      cmocka_unit_test(probe_dependency_names_the_states_and_inputs_an_expression_reads),
      cmocka_unit_test(equations_print_as_text_and_latex),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
