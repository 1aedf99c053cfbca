/* Every operator and function of the tape: VJP (gU and gtheta) and JVP (U and theta tangents)
 * against central finite differences of f, on B = 1 and B = 5 rows of high-entropy states, plus
 * the dot-product identity <L, J v> = <J^T L, v>.  The kink of abs at 0 is checked exactly. */
#include <math.h>
#include <stdlib.h>

#include "lang_util.h"

typedef struct gcase {
  const char *src;
  double lo, hi; /* range of the state values (positive for log, sqrt and real powers) */
} gcase;

/* A header with every kind of parameter and a net, shared by the cases. */
#define HEAD                                                                                  \
  "state x, y, z[3]\n"                                                                        \
  "param p = 0.7319\n"                                                                        \
  "param q = 1.3127 (positive)\n"                                                             \
  "param r = 0.4219 (in [-1, 2])\n"                                                           \
  "param k = 2.25 (fixed)\n"                                                                  \
  "net N : 4 -> 3 tanh -> 2\n"

#define REST "dy/dt = y*q\ndz/dt = z*r\n"

static const gcase cases[] = {
    {HEAD "dx/dt = x + y + p\n" REST, -2, 2},
    {HEAD "dx/dt = x - y - q\n" REST, -2, 2},
    {HEAD "dx/dt = x*y*r*k\n" REST, -2, 2},
    {HEAD "dx/dt = x/y + p/x - k/q\n" REST, 0.6, 1.9},
    {HEAD "dx/dt = -x + -(y*p)\n" REST, -2, 2},
    {HEAD "dx/dt = x^3 + y^2*p - x^-2\n" REST, 0.6, 1.9},
    {HEAD "dx/dt = x^1.7 + y^p + q^x\n" REST, 0.6, 1.9},
    {HEAD "dx/dt = exp(x*p) + exp(r)\n" REST, -2, 2},
    {HEAD "dx/dt = log(x*q) + log(y)\n" REST, 0.6, 1.9},
    {HEAD "dx/dt = sqrt(x*y) + sqrt(q)\n" REST, 0.6, 1.9},
    {HEAD "dx/dt = sin(x*p) + sin(r)\n" REST, -2, 2},
    {HEAD "dx/dt = cos(x*y) + cos(q)\n" REST, -2, 2},
    {HEAD "dx/dt = tanh(x*p + y)\n" REST, -2, 2},
    {HEAD "dx/dt = abs(x - y) + abs(p)\n" REST, -2, 2},
    {HEAD "dx/dt = x*sin(t) + t*p\n" REST, -2, 2},
    /* fused products and sums (a*b + c, c - a*b, on scalars and vectors) */
    {HEAD "dx/dt = y - x*p + z[1]*x\n" "dy/dt = x*y - q\ndz/dt = z*x - z*r + [y, x, p]*z\n", -2, 2},
    /* indexing, concatenation and nets */
    {HEAD "w = N(x, z*y)\ndx/dt = w[1]*w[2] + z[3]\n" REST, -2, 2},
    {HEAD "w = N([z, x])\ndx/dt = w[2] - w[1]\n" REST, -2, 2},
    {HEAD "w = N(p, t, q, r)\ndx/dt = x*w[1] + w[2]\n" REST, -2, 2},
    /* vectors: elementwise with scalar broadcasting, functions on vectors */
    {"state x, z[3]\nparam p = 0.37\nparam q = 1.61 (positive)\n"
     "dx/dt = x*p\ndz/dt = z*x + p - q*z^2 + exp(-z) + [x, p, q]\n", -2, 2},
    {"state y[2]\nnet f : 2 -> 7 tanh -> 2 init normal(0.5)\ndy/dt = f(y^3)\n", -2, 2},
    {"state a[2], b\nparam c = 0.5 (in [0, 1])\nnet g : 3 -> 4 softplus -> 4 sigmoid -> 2\n"
     "h = g(a, b)\nda/dt = h*b - a/c\ndb/dt = h[1] + h[2]*[a, c][3]\n", -2, 2},
    {"state a\nnet g : 1 -> 3 gelu -> 3 relu -> 3 rbf -> 1 init he\n"
     "da/dt = g(a)*g(2*a)\n", 0.6, 1.9},
};
#define N_CASES (sizeof cases / sizeof *cases)

static void fill_theta(const nde_model *m, nde_rng *rng, double *theta) {
  assert_int_equal(nde_model_init_theta(m, 4242, theta), NDE_OK);
  /* Move away from the declared values and from exactly-zero biases. */
  for (size_t i = 0; i < nde_model_n_theta(m); i++) theta[i] += 0.3 * (nde_rng_uniform(rng) - 0.5);
}

static void run_case(const gcase *c, int B) {
  nde_model *m = load_ok(c->src);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 8, &rhs, NULL), NDE_OK);
  const int n = nde_model_state_dim(m);
  const size_t P = nde_model_n_theta(m), N = (size_t)B * n;
  const double t = 0.8173, h = 1e-6;
  nde_rng rng;
  nde_rng_seed(&rng, 7 + (uint64_t)B);
  double *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L), *V = calloc(N, sizeof *V);
  double *gU = calloc(N, sizeof *gU), *JV = calloc(N, sizeof *JV), *fp = calloc(N, sizeof *fp);
  double *fm = calloc(N, sizeof *fm), *Up = calloc(N, sizeof *Up);
  double *th = calloc(P + 1, sizeof *th), *gth = calloc(P + 1, sizeof *gth);
  double *Vth = calloc(P + 1, sizeof *Vth), *thp = calloc(P + 1, sizeof *thp);
  double *cache = calloc(nde_rhs_get_info(rhs)->cache_per_row * (size_t)B + 1, sizeof *cache);
  fill_theta(m, &rng, th);
  nde_test_fill(&rng, N, c->lo, c->hi, U);
  nde_test_fill(&rng, N, -1.5, 1.5, L);
  nde_test_fill(&rng, N, -1.5, 1.5, V);
  nde_test_fill(&rng, P, -1.5, 1.5, Vth);

  assert_int_equal(nde_rhs_f(rhs, t, B, U, th, fp, cache), 0);
  assert_int_equal(nde_rhs_vjp(rhs, t, B, U, th, L, cache, gU, gth), 0);
  /* The VJP without the cache is the same. */
  double *gU2 = calloc(N, sizeof *gU2), *gth2 = calloc(P + 1, sizeof *gth2);
  assert_int_equal(nde_rhs_vjp(rhs, t, B, U, th, L, NULL, gU2, gth2), 0);
  assert_true(nde_test_rel_err(N, gU, gU2, 1e-300) == 0.0);
  assert_true(nde_test_rel_err(P, gth, gth2, 1e-300) == 0.0);

  /* gU against finite differences of L^T f, one state component at a time. */
  for (size_t q = 0; q < N; q++) {
    memcpy(Up, U, N * sizeof *U);
    Up[q] = U[q] + h;
    assert_int_equal(nde_rhs_f(rhs, t, B, Up, th, fp, NULL), 0);
    Up[q] = U[q] - h;
    assert_int_equal(nde_rhs_f(rhs, t, B, Up, th, fm, NULL), 0);
    double fd = 0;
    for (size_t i = 0; i < N; i++) fd += L[i] * (fp[i] - fm[i]) / (2 * h);
    check_close(gU[q], fd, 1e-6);
  }
  /* gtheta the same way. */
  for (size_t k = 0; k < P; k++) {
    memcpy(thp, th, P * sizeof *th);
    thp[k] = th[k] + h;
    assert_int_equal(nde_rhs_f(rhs, t, B, U, thp, fp, NULL), 0);
    thp[k] = th[k] - h;
    assert_int_equal(nde_rhs_f(rhs, t, B, U, thp, fm, NULL), 0);
    double fd = 0;
    for (size_t i = 0; i < N; i++) fd += L[i] * (fp[i] - fm[i]) / (2 * h);
    check_close(gth[k], fd, 1e-6);
  }
  /* JVP along (V, Vtheta) against a central difference in that direction. */
  assert_int_equal(nde_rhs_jvp(rhs, t, B, U, th, V, Vth, JV), 0);
  for (size_t i = 0; i < N; i++) Up[i] = U[i] + h * V[i];
  for (size_t k = 0; k < P; k++) thp[k] = th[k] + h * Vth[k];
  assert_int_equal(nde_rhs_f(rhs, t, B, Up, thp, fp, NULL), 0);
  for (size_t i = 0; i < N; i++) Up[i] = U[i] - h * V[i];
  for (size_t k = 0; k < P; k++) thp[k] = th[k] - h * Vth[k];
  assert_int_equal(nde_rhs_f(rhs, t, B, Up, thp, fm, NULL), 0);
  for (size_t i = 0; i < N; i++) check_close(JV[i], (fp[i] - fm[i]) / (2 * h), 1e-6);
  /* Reverse and forward mode agree to rounding: <L, J v> = <J^T L, v>. */
  double lhs = nde_test_dot(N, L, JV), rhs_ = nde_test_dot(N, gU, V) + nde_test_dot(P, gth, Vth);
  check_close(lhs, rhs_, 1e-12);
  /* JVP with NULL tangents is the part of the other. */
  assert_int_equal(nde_rhs_jvp(rhs, t, B, U, th, NULL, NULL, JV), 0);
  for (size_t i = 0; i < N; i++) assert_true(JV[i] == 0.0);

  free(U); free(L); free(V); free(gU); free(JV); free(fp); free(fm); free(Up);
  free(th); free(gth); free(Vth); free(thp); free(cache); free(gU2); free(gth2);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_case(void **state) {
  const gcase *c = *state;
  run_case(c, 1);
  run_case(c, 5);
}

/* abs at its kink: the derivative is taken as 0 (a subgradient) in both modes. */
static void test_abs_kink_has_zero_derivative(void **state) {
  (void)state;
  nde_model *m = load_ok("state x, y\ndx/dt = abs(x)\ndy/dt = abs(y - 1.5)\n");
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 2, &rhs, NULL), NDE_OK);
  const double U[4] = {0.0, 1.5, -0.0, 1.5}, L[4] = {1.25, -0.75, 2.5, 3.0};
  double f[4], gU[4] = {0}, JV[4];
  const double V[4] = {1.0, 1.0, -1.0, 2.0};
  assert_int_equal(nde_rhs_f(rhs, 0.0, 2, U, NULL, f, NULL), 0);
  for (int i = 0; i < 4; i++) assert_true(f[i] == 0.0);
  assert_int_equal(nde_rhs_vjp(rhs, 0.0, 2, U, NULL, L, NULL, gU, NULL), 0);
  for (int i = 0; i < 4; i++) assert_true(gU[i] == 0.0);
  assert_int_equal(nde_rhs_jvp(rhs, 0.0, 2, U, NULL, V, NULL, JV), 0);
  for (int i = 0; i < 4; i++) assert_true(JV[i] == 0.0);
  /* Either side of the kink: the slopes -1 and +1. */
  const double U2[4] = {-0.3125, 1.75, 0.4375, 1.0};
  memset(gU, 0, sizeof gU);
  assert_int_equal(nde_rhs_vjp(rhs, 0.0, 2, U2, NULL, L, NULL, gU, NULL), 0);
  check_close(gU[0], -1.25, 0);
  check_close(gU[1], -0.75, 0);
  check_close(gU[2], 2.5, 0);
  check_close(gU[3], -3.0, 0);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

int main(void) {
  struct CMUnitTest tests[N_CASES + 1];
  static char names[N_CASES][48];
  for (size_t i = 0; i < N_CASES; i++) {
    snprintf(names[i], sizeof names[i], "operator case %zu", i + 1);
    tests[i] = (struct CMUnitTest){names[i], test_case, NULL, NULL, (void *)&cases[i]};
  }
  tests[N_CASES] = (struct CMUnitTest)cmocka_unit_test(test_abs_kink_has_zero_derivative);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
