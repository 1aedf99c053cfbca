/* The shipped models compile to what their files say: states, parameters, the layout of theta,
 * and for the two neural models the same f, VJP and JVP as the hand-written C models
 * (tests/support/cmodels.c) to 1e-13 relative for the same theta. */
#include <math.h>
#include <stdlib.h>

#include "cmodels.h"
#include "lang_util.h"

/* f, VJP (with and without the cache) and JVP of two right-hand sides on the same inputs. */
static void compare_rhs(nde_rhs *a, nde_rhs *b, const double *theta, int B, uint64_t seed) {
  const int n = nde_rhs_get_info(a)->n_state;
  const size_t P = nde_rhs_get_info(a)->n_theta, N = (size_t)B * n;
  assert_int_equal(n, nde_rhs_get_info(b)->n_state);
  assert_int_equal(P, nde_rhs_get_info(b)->n_theta);
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L), *V = calloc(N, sizeof *V);
  double *fa = calloc(N, sizeof *fa), *fb = calloc(N, sizeof *fb);
  double *gUa = calloc(N, sizeof *gUa), *gUb = calloc(N, sizeof *gUb);
  double *gta = calloc(P, sizeof *gta), *gtb = calloc(P, sizeof *gtb), *Vt = calloc(P, sizeof *Vt);
  double *ca = calloc(nde_rhs_get_info(a)->cache_per_row * (size_t)B + 1, sizeof *ca);
  double *cb = calloc(nde_rhs_get_info(b)->cache_per_row * (size_t)B + 1, sizeof *cb);
  nde_test_fill(&rng, N, -2.1, 3.7, U);
  nde_test_fill(&rng, N, -1.3, 1.9, L);
  nde_test_fill(&rng, N, -1.1, 1.7, V);
  nde_test_fill(&rng, P, -0.9, 0.8, Vt);
  const double t = 1.618;
  assert_int_equal(nde_rhs_f(a, t, B, U, theta, fa, ca), 0);
  assert_int_equal(nde_rhs_f(b, t, B, U, theta, fb, cb), 0);
  assert_true(nde_test_rel_err(N, fa, fb, 1e-300) <= 1e-13);
  for (int pass = 0; pass < 2; pass++) {
    memset(gUa, 0, N * sizeof *gUa);
    memset(gUb, 0, N * sizeof *gUb);
    memset(gta, 0, P * sizeof *gta);
    memset(gtb, 0, P * sizeof *gtb);
    assert_int_equal(nde_rhs_vjp(a, t, B, U, theta, L, pass ? NULL : ca, gUa, gta), 0);
    assert_int_equal(nde_rhs_vjp(b, t, B, U, theta, L, pass ? NULL : cb, gUb, gtb), 0);
    assert_true(nde_test_rel_err(N, gUa, gUb, 1e-300) <= 1e-13);
    assert_true(nde_test_rel_err(P, gta, gtb, 1e-300) <= 1e-13);
  }
  assert_int_equal(nde_rhs_jvp(a, t, B, U, theta, V, Vt, fa), 0);
  assert_int_equal(nde_rhs_jvp(b, t, B, U, theta, V, Vt, fb), 0);
  assert_true(nde_test_rel_err(N, fa, fb, 1e-300) <= 1e-13);
  assert_int_equal(nde_rhs_jvp(a, t, B, U, theta, V, NULL, fa), 0);
  assert_int_equal(nde_rhs_jvp(b, t, B, U, theta, V, NULL, fb), 0);
  assert_true(nde_test_rel_err(N, fa, fb, 1e-300) <= 1e-13);
  free(U); free(L); free(V); free(fa); free(fb); free(gUa); free(gUb);
  free(gta); free(gtb); free(Vt); free(ca); free(cb);
}

static void test_lv_ude_matches_the_hand_written_c_model(void **state) {
  (void)state;
  nde_model *m = load_model_file("lotka_volterra_ude.nde");
  assert_int_equal(nde_model_n_theta(m), 87);
  nde_cmodel cm;
  assert_int_equal(nde_cmodel_lv_ude(16, &cm), NDE_OK);
  assert_int_equal(cm.n_theta, 87);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 16, &rhs, NULL), NDE_OK);
  double theta[87];
  assert_int_equal(nde_model_init_theta(m, 2024, theta), NDE_OK);
  /* Non-zero biases, so that every parameter matters. */
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  for (int i = 0; i < 87; i++) theta[i] += 0.2 * (nde_rng_uniform(&rng) - 0.5);
  compare_rhs(rhs, cm.rhs, theta, 1, 11);
  compare_rhs(rhs, cm.rhs, theta, 16, 12);
  compare_rhs(rhs, cm.rhs, theta, 7, 13);
  nde_rhs_destroy(&rhs);
  nde_cmodel_destroy(&cm);
  nde_model_destroy(&m);
}

static void test_spiral_matches_the_hand_written_c_model(void **state) {
  (void)state;
  nde_model *m = load_model_file("spiral.nde");
  nde_cmodel cm;
  assert_int_equal(nde_cmodel_spiral(9, &cm), NDE_OK);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 9, &rhs, NULL), NDE_OK);
  size_t P = nde_model_n_theta(m);
  assert_int_equal(P, cm.n_theta);
  double *theta = calloc(P, sizeof *theta);
  assert_int_equal(nde_model_init_theta(m, 5, theta), NDE_OK);
  compare_rhs(rhs, cm.rhs, theta, 1, 21);
  compare_rhs(rhs, cm.rhs, theta, 9, 22);
  free(theta);
  nde_rhs_destroy(&rhs);
  nde_cmodel_destroy(&cm);
  nde_model_destroy(&m);
}

static void test_lv_ude_layout_is_the_net_block(void **state) {
  (void)state;
  nde_model *m = load_model_file("lotka_volterra_ude.nde");
  assert_int_equal(nde_model_n_states(m), 2);
  assert_int_equal(nde_model_state_dim(m), 2);
  assert_string_equal(nde_model_component_name(m, 0), "x");
  assert_string_equal(nde_model_component_name(m, 1), "y");
  double u0[2];
  assert_int_equal(nde_model_initial_state(m, u0), 0);
  check_close(u0[0], 0.44249296, 0);
  check_close(u0[1], 4.6280594, 0);
  assert_int_equal(nde_model_n_params(m), 2);
  nde_model_param_info p;
  assert_int_equal(nde_model_get_param(m, 0, &p), NDE_OK);
  assert_string_equal(p.name, "alpha");
  assert_int_equal(p.learnable, 0);
  check_close(p.value, 1.3, 0);
  assert_true(p.offset == (size_t)-1);
  assert_int_equal(nde_model_n_layout(m), 1);
  nde_model_layout_entry e;
  assert_int_equal(nde_model_get_layout(m, 0, &e), NDE_OK);
  assert_string_equal(e.name, "U");
  assert_int_equal(e.kind, NDE_LAYOUT_NET);
  assert_int_equal(e.offset, 0);
  assert_int_equal(e.length, 87);
  nde_model_net_info ni;
  assert_int_equal(nde_model_get_net(m, 0, &ni), NDE_OK);
  assert_int_equal(nde_net_n_layers(ni.net), 4);
  assert_int_equal(nde_net_act(ni.net, 0), NDE_ACT_RBF);
  assert_int_equal(nde_net_act(ni.net, 3), NDE_ACT_IDENTITY);
  assert_int_equal(ni.init, NDE_INIT_GLOROT_UNIFORM);
  /* The net's initial weights are nde_net_init's with an rng seeded by the same seed. */
  double a[87], b[87];
  nde_rng rng;
  nde_rng_seed(&rng, 31);
  assert_int_equal(nde_net_init(ni.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, b), NDE_OK);
  assert_int_equal(nde_model_init_theta(m, 31, a), NDE_OK);
  assert_memory_equal(a, b, sizeof a);
  nde_model_destroy(&m);
}

static void test_lotka_volterra_has_four_log_parameters(void **state) {
  (void)state;
  nde_model *m = load_model_file("lotka_volterra.nde");
  assert_int_equal(nde_model_n_theta(m), 4);
  const char *names[4] = {"alpha", "beta", "gamma", "delta"};
  const double truth[4] = {1.3, 0.9, 0.8, 1.8};
  double theta[4];
  assert_int_equal(nde_model_init_theta(m, 1, theta), NDE_OK);
  for (int i = 0; i < 4; i++) {
    nde_model_layout_entry e;
    assert_int_equal(nde_model_get_layout(m, i, &e), NDE_OK);
    assert_string_equal(e.name, names[i]);
    assert_int_equal(e.offset, i);
    assert_int_equal(e.transform, NDE_TRANSFORM_LOG);
    check_close(theta[i], log(truth[i]), 1e-15);
    check_close(nde_model_param_value(m, i, theta), truth[i], 1e-15);
  }
  /* f is the Lotka-Volterra field at the truth. */
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  const double U[2] = {0.734, 2.218};
  double f[2];
  assert_int_equal(nde_rhs_f(rhs, 0.0, 1, U, theta, f, NULL), 0);
  check_close(f[0], 1.3 * 0.734 - 0.9 * 0.734 * 2.218, 1e-14);
  check_close(f[1], 0.8 * 0.734 * 2.218 - 1.8 * 2.218, 1e-14);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_every_shipped_model_compiles(void **state) {
  (void)state;
  const char *files[] = {"lotka_volterra.nde", "lotka_volterra_ude.nde", "spiral.nde", "pendulum.nde",
                         "robertson.nde", "spiral_truth.nde", "heated_room.nde"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    nde_model *m = load_model_file(files[i]);
    double *u0 = calloc((size_t)nde_model_state_dim(m), sizeof *u0);
    assert_int_equal(nde_model_initial_state(m, u0), 0); /* every state has an initial value */
    free(u0);
    nde_model_destroy(&m);
  }
}

static void test_vector_components_are_named_with_one_based_indices(void **state) {
  (void)state;
  nde_model *m = load_ok("state a, y[3] = [1.5, -2, 0.25]\ndy/dt = -y\nda/dt = y[3]\n");
  assert_int_equal(nde_model_state_dim(m), 4);
  assert_string_equal(nde_model_component_name(m, 0), "a");
  assert_string_equal(nde_model_component_name(m, 1), "y[1]");
  assert_string_equal(nde_model_component_name(m, 3), "y[3]");
  assert_null(nde_model_component_name(m, 4));
  assert_int_equal(nde_model_find_component(m, "y[2]"), 2);
  assert_int_equal(nde_model_find_component(m, "y[4]"), -1);
  double u0[4];
  assert_int_equal(nde_model_initial_state(m, u0), 1); /* a has none */
  check_close(u0[2], -2.0, 0);
  nde_model_state_info si;
  assert_int_equal(nde_model_get_state(m, 1, &si), NDE_OK);
  assert_int_equal(si.offset, 1);
  assert_int_equal(si.size, 3);
  assert_int_equal(si.is_vector, 1);
  nde_model_destroy(&m);
}

static void test_params_and_nets_interleave_in_declaration_order(void **state) {
  (void)state;
  nde_model *m = load_ok(
      "state x\nparam a = 0.5\nnet F : 1 -> 3 tanh -> 1\nparam b = 2 (fixed)\n"
      "param c = 0.25 (in [0, 1])\nnet G : 2 -> 1\ndx/dt = a*F(x) + b*G(x, c)\n");
  assert_int_equal(nde_model_n_theta(m), 1 + 10 + 1 + 3);
  const char *names[4] = {"a", "F", "c", "G"};
  const size_t offs[4] = {0, 1, 11, 12};
  assert_int_equal(nde_model_n_layout(m), 4);
  for (int i = 0; i < 4; i++) {
    nde_model_layout_entry e;
    assert_int_equal(nde_model_get_layout(m, i, &e), NDE_OK);
    assert_string_equal(e.name, names[i]);
    assert_int_equal(e.offset, offs[i]);
  }
  /* The bounded parameter is stored as a logit and maps back to its value. */
  double th[15];
  assert_int_equal(nde_model_init_theta(m, 3, th), NDE_OK);
  int c = nde_model_find_param(m, "c");
  check_close(th[11], log(0.25 / 0.75), 1e-15);
  check_close(nde_model_param_value(m, c, th), 0.25, 1e-15);
  assert_int_equal(nde_model_set_param(m, c, 0.875, th), NDE_OK);
  check_close(nde_model_param_value(m, c, th), 0.875, 1e-15);
  assert_int_equal(nde_model_set_param(m, c, 1.5, th), NDE_ERR_ARG);
  assert_int_equal(nde_model_set_param(m, nde_model_find_param(m, "b"), 1.0, th), NDE_ERR_ARG);
  nde_model_destroy(&m);
}

/* An intermediate that is a whole equation's right-hand side and is used again by a later
 * equation keeps its own value (its last instruction is not moved into the output block). */
static void test_an_intermediate_used_by_two_equations_keeps_its_value(void **state) {
  (void)state;
  nde_model *m = load_ok("state x, y\nu = x*y\ndx/dt = u\ndy/dt = u + 1.25\n");
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  const double U[2] = {1.5, 2.375};
  double f[2];
  assert_int_equal(nde_rhs_f(rhs, 0, 1, U, NULL, f, NULL), 0);
  check_close(f[0], 1.5 * 2.375, 1e-15);
  check_close(f[1], 1.5 * 2.375 + 1.25, 1e-15);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* Callbacks report a non-finite result as recoverable (1), never as fatal. */
static void test_log_of_a_negative_state_is_recoverable(void **state) {
  (void)state;
  nde_model *m = load_ok("state x\ndx/dt = log(x) + sqrt(x)\n");
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 2, &rhs, NULL), NDE_OK);
  double U[2] = {1.5, -0.5}, f[2], L[2] = {1, 1}, gU[2] = {0}, JV[2], V[2] = {1, 1};
  assert_int_equal(nde_rhs_f(rhs, 0, 2, U, NULL, f, NULL), 1);
  assert_int_equal(nde_rhs_vjp(rhs, 0, 2, U, NULL, L, NULL, gU, NULL), 1);
  assert_int_equal(nde_rhs_jvp(rhs, 0, 2, U, NULL, V, NULL, JV), 1);
  assert_int_equal(nde_rhs_f(rhs, 0, 1, U, NULL, f, NULL), 0);
  /* A batch larger than the rhs was made for is refused (fatal), not overrun. */
  assert_true(nde_rhs_f(rhs, 0, 3, U, NULL, f, NULL) < 0);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

/* The rhs keeps the model alive: destroying the model first is allowed. */
static void test_rhs_outlives_its_model(void **state) {
  (void)state;
  nde_model *m = load_ok("state x = 2\nparam k = 0.5 (positive)\ndx/dt = -k*x\n");
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  nde_model_destroy(&m);
  assert_null(m);
  double x = 2, f, th = log(0.5);
  assert_int_equal(nde_rhs_f(rhs, 0, 1, &x, &th, &f, NULL), 0);
  check_close(f, -1.0, 1e-15);
  nde_rhs_destroy(&rhs);
  assert_int_equal(nde_model_create_rhs(NULL, 1, &rhs, NULL), NDE_ERR_ARG);
}

/* dep of a model (n x n) against the expected pattern, through nde_model_dependency and the
 * rhs's info alike. */
static void check_dep(nde_model *m, const unsigned char *want) {
  const int n = nde_model_state_dim(m);
  unsigned char *dep = malloc((size_t)n * n);
  assert_int_equal(nde_model_dependency(m, dep), NDE_OK);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      if (dep[i * n + j] != want[i * n + j])
        print_error("dep[%s][%s] = %d, expected %d\n", nde_model_component_name(m, i),
                    nde_model_component_name(m, j), dep[i * n + j], want[i * n + j]);
      assert_int_equal(dep[i * n + j], want[i * n + j]);
    }
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  assert_non_null(nde_rhs_get_info(rhs)->dep);
  assert_memory_equal(nde_rhs_get_info(rhs)->dep, dep, (size_t)n * n);
  nde_rhs_destroy(&rhs);
  free(dep);
}

static void test_dependency_matrix_follows_the_tape(void **state) {
  (void)state;
  /* Lotka-Volterra: every equation reads both states. */
  nde_model *m = load_model_file("lotka_volterra.nde");
  const unsigned char lv[4] = {1, 1, 1, 1};
  check_dep(m, lv);
  nde_model_destroy(&m);
  /* A separable pendulum: q' = p, p' = -sin(q). */
  m = load_ok("state q, p\nparam k = 1.5 (positive)\ndq/dt = p\ndp/dt = -k*sin(q)\n");
  const unsigned char sep[4] = {0, 1, 1, 0};
  check_dep(m, sep);
  nde_model_destroy(&m);
  /* A net's outputs depend on all of its inputs, and on nothing else. */
  m = load_ok("state a, b, c\nnet N : 2 -> 4 tanh -> 2\nw = N(a, b)\nda/dt = w[1]\ndb/dt = w[2]*2\n"
              "dc/dt = -c\n");
  const unsigned char net[9] = {1, 1, 0, 1, 1, 0, 0, 0, 1};
  check_dep(m, net);
  nde_model_destroy(&m);
  /* Vectors componentwise; broadcast scalars reach every component; comparisons, steps and
   * ifelse conditions count; inputs, constants and per-series values do not. */
  m = load_ok("state z[3], x, y\nparam s = 1 (per series)\nconst g = 2\n"
              "dz/dt = z*x + [y, 0, 1]*s\ndx/dt = z[2] + g\ndy/dt = step(x) + ifelse(z[3] > 0, 1, 2)\n");
  const unsigned char vec[25] = {1, 0, 0, 1, 1,  0, 1, 0, 1, 0,  0, 0, 1, 1, 0,
                                 0, 1, 0, 0, 0,  0, 0, 1, 1, 0};
  check_dep(m, vec);
  nde_model_destroy(&m);
  /* The UDE: a net of both states in both equations. */
  m = load_model_file("lotka_volterra_ude.nde");
  check_dep(m, lv);
  nde_model_destroy(&m);
}

/* A model wider than 64 states: the propagation runs in words of 64 columns. */
static void test_dependency_of_a_wide_model(void **state) {
  (void)state;
  nde_model *m = load_ok("state y[150], s\ndy/dt = y*s\nds/dt = y[130] + y[3]\n");
  const int n = 151;
  unsigned char *want = calloc((size_t)n * n, 1);
  for (int i = 0; i < 150; i++) want[i * n + i] = want[i * n + 150] = 1;
  want[150 * n + 129] = want[150 * n + 2] = 1;
  check_dep(m, want);
  free(want);
  nde_model_destroy(&m);
}

/* Equations as text and LaTeX show the new constructs; the C export leaves out what the
 * equations do not need and refuses models that read data per series. */
static void test_equations_and_export_of_the_new_constructs(void **state) {
  (void)state;
  nde_model *m = load_ok("state y, z\nparam k = 0.75 (positive)\nconst g = 1.5\n"
                         "observe s = min(z, 1)\n"
                         "dy/dt = clamp(y, -0.5, z) - k*step(z - 1) + ifelse(y > 2.5, -g, 0.25)\n"
                         "dz/dt = max(y, z) * (y <= z) - (z >= 3)\n");
  double th[1] = {log(0.75)};
  char *text = NULL;
  assert_int_equal(nde_model_format_equations(m, th, NDE_FORMAT_TEXT, 0, &text), NDE_OK);
  assert_string_equal(text, "observe s = min(z, 1)\n"
                            "dy/dt = clamp(y, -0.5, z) - k*step(z - 1) + ifelse(y > 2.5, -g, 0.25)\n"
                            "dz/dt = max(y, z)*(y <= z) - (z >= 3)\n"
                            "where k = 0.75\n");
  free(text);
  assert_int_equal(nde_model_format_equations(m, th, NDE_FORMAT_TEXT, 1, &text), NDE_OK);
  assert_non_null(strstr(text, "ifelse(y > 2.5, -1.5, 0.25)"));
  assert_non_null(strstr(text, "- 0.75*step(z - 1)"));
  free(text);
  assert_int_equal(nde_model_format_equations(m, th, NDE_FORMAT_LATEX, 0, &text), NDE_OK);
  assert_non_null(strstr(text, "\\operatorname{clamp}\\left(y, -0.5, z\\right)"));
  assert_non_null(strstr(text, "\\max\\left(y, z\\right) \\, \\left(y \\le z\\right)"));
  free(text);
  assert_int_equal(nde_model_export_c(m, th, "mdl", &text), NDE_OK);
  assert_non_null(strstr(text, "mdl_clamp("));
  assert_null(strstr(text, "/* s */")); /* the observable is not computed */
  free(text);
  nde_model_destroy(&m);
  m = load_model_file("heated_room.nde");
  double *th2 = calloc(nde_model_n_theta_full(m, 1), sizeof *th2);
  assert_int_equal(nde_model_export_c(m, th2, "mdl", &text), NDE_ERR_UNSUPPORTED);
  assert_null(text);
  assert_int_equal(nde_model_format_equations(m, th2, NDE_FORMAT_TEXT, 1, &text), NDE_OK);
  assert_non_null(strstr(text, "-k*(T - T_out)"));
  assert_non_null(strstr(text, "where k is per series\n"));
  free(text);
  assert_int_equal(nde_model_format_equations(m, th2, NDE_FORMAT_TEXT, 0, &text), NDE_OK);
  assert_non_null(strstr(text, "where k = (per series), c = "));
  free(text);
  free(th2);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_equations_and_export_of_the_new_constructs),
      cmocka_unit_test(test_dependency_matrix_follows_the_tape),
      cmocka_unit_test(test_dependency_of_a_wide_model),
      cmocka_unit_test(test_lv_ude_matches_the_hand_written_c_model),
      cmocka_unit_test(test_spiral_matches_the_hand_written_c_model),
      cmocka_unit_test(test_lv_ude_layout_is_the_net_block),
      cmocka_unit_test(test_lotka_volterra_has_four_log_parameters),
      cmocka_unit_test(test_every_shipped_model_compiles),
      cmocka_unit_test(test_vector_components_are_named_with_one_based_indices),
      cmocka_unit_test(test_params_and_nets_interleave_in_declaration_order),
      cmocka_unit_test(test_log_of_a_negative_state_is_recoverable),
      cmocka_unit_test(test_an_intermediate_used_by_two_equations_keeps_its_value),
      cmocka_unit_test(test_rhs_outlives_its_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
