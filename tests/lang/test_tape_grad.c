/* Every tape operator and built-in function, from the registries in src/model/ops.h: each has
 * a case here (a test fails when one has none, or when its case does not compile to the op it
 * names), and every case has its VJP (gU and the full theta, per-series blocks included) and JVP
 * (U and theta tangents) checked against central finite differences of f, on B = 1 and B = 5
 * rows of high-entropy states spread over three series with measured inputs and constants
 * bound, plus the dot-product identity <L, J v> = <J^T L, v> and the cached VJP.  Cases with
 * kinks name them as expressions; rows are resampled until every kink is at least 1e-3 away.
 * The derivative conventions at the kinks are checked exactly by separate tests. */
#include <math.h>
#include <stdlib.h>

#include "lang_util.h"
#include "model/ops.h"

/* The registries, as names. */
static const char *const op_names[] = {
#define OP_NAME(id, kind) #id,
    NDE__OP_LIST(OP_NAME)
#undef OP_NAME
};
static const char *const func_names[] = {
#define FUNC_NAME(id, name, arity) name,
    NDE__FUNC_LIST(FUNC_NAME)
#undef FUNC_NAME
};
#define N_OPS (sizeof op_names / sizeof *op_names)
#define N_FUNCS (sizeof func_names / sizeof *func_names)

/* Internal: how many instructions of op the model's rhs tape has (src/model/lang.h). */
int nde__model_count_op(const nde_model *m, int op);

typedef struct gcase {
  const char *covers; /* the ops (upper case) and functions it exercises, space-separated */
  const char *src;
  double lo, hi;      /* range of the state values (positive for log, sqrt and real powers) */
  const char *kinks;  /* expressions, separated by ';', that must stay away from zero */
} gcase;

/* A header with every kind of parameter, input, constant and a net, shared by the cases. */
#define HEAD                                                                                  \
  "state x, y, z[3]\n"                                                                        \
  "param p = 0.7319\n"                                                                        \
  "param q = 1.3127 (positive)\n"                                                             \
  "param r = 0.4219 (in [-1, 2])\n"                                                           \
  "param k = 2.25 (fixed)\n"                                                                  \
  "param a = 0.8317 (per series)\n"                                                           \
  "param b = 1.1723 (positive, per series)\n"                                                 \
  "param c = 0.3541 (in [0, 1], per series)\n"                                                \
  "input u1\ninput u2 (cubic, hold)\ninput u3 (step)\n"                                       \
  "const g = 9.81\nconst T (from data)\n"                                                     \
  "net N : 4 -> 3 tanh -> 2\n"

#define REST "dy/dt = y*q\ndz/dt = z*r\n"

static const gcase cases[] = {
    {"ADD PARAM", HEAD "dx/dt = x + y + p\n" REST, -2, 2, NULL},
    {"SUB PARAM_EXP", HEAD "dx/dt = x - y - q\n" REST, -2, 2, NULL},
    {"MUL PARAM_LOGIT", HEAD "dx/dt = x*y*r*k\n" REST, -2, 2, NULL},
    {"DIV", HEAD "dx/dt = x/y + p/x - k/q\n" REST, 0.6, 1.9, NULL},
    {"NEG", HEAD "dx/dt = -x + -(y*p)\n" REST, -2, 2, NULL},
    {"COPY", HEAD "dx/dt = y\ndy/dt = exp(x)\ndz/dt = z*r\n", -2, 2, NULL},
    {"POWI", HEAD "dx/dt = x^3 + y^2*p - x^-2\n" REST, 0.6, 1.9, NULL},
    {"POW", HEAD "dx/dt = x^1.7 + y^p + q^x\n" REST, 0.6, 1.9, NULL},
    {"EXP exp", HEAD "dx/dt = exp(x*p) + exp(r)\n" REST, -2, 2, NULL},
    {"LOG log", HEAD "dx/dt = log(x*q) + log(y)\n" REST, 0.6, 1.9, NULL},
    {"SQRT sqrt", HEAD "dx/dt = sqrt(x*y) + sqrt(q)\n" REST, 0.6, 1.9, NULL},
    {"SIN sin", HEAD "dx/dt = sin(x*p) + sin(r)\n" REST, -2, 2, NULL},
    {"COS cos", HEAD "dx/dt = cos(x*y) + cos(q)\n" REST, -2, 2, NULL},
    {"TANH tanh", HEAD "dx/dt = tanh(x*p + y)\n" REST, -2, 2, NULL},
    {"ABS abs", HEAD "dx/dt = abs(x - y) + abs(p)\n" REST, -2, 2, "x - y"},
    {"TIME", HEAD "dx/dt = x*sin(t) + t*p\n" REST, -2, 2, NULL},
    /* fused products and sums (a*b + c, c - a*b, on scalars and vectors); the products'
     * MULs become NOPs and are removed */
    {"MULADD NOP", HEAD "dx/dt = y - x*p + z[1]*x\n" "dy/dt = x*y - q\ndz/dt = z*x - z*r + [y, x, p]*z\n", -2, 2, NULL},
    /* indexing, concatenation and nets */
    {"NET CONCAT", HEAD "w = N(x, z*y)\ndx/dt = w[1]*w[2] + z[3]\n" REST, -2, 2, NULL},
    {"NET", HEAD "w = N([z, x])\ndx/dt = w[2] - w[1]\n" REST, -2, 2, NULL},
    {"NET CONCAT", HEAD "w = N(p, t, q, r)\ndx/dt = x*w[1] + w[2]\n" REST, -2, 2, NULL},
    /* per-series parameters in each transform, per row through the row map */
    {"SPARAM", HEAD "dx/dt = a*x + y\n" REST, -2, 2, NULL},
    {"SPARAM_EXP", HEAD "dx/dt = b*x*y + a\n" REST, -2, 2, NULL},
    {"SPARAM_LOGIT", HEAD "dx/dt = c*y + x\ndy/dt = y*q*c\ndz/dt = z*r*b\n", -2, 2, NULL},
    /* measured inputs (linear, cubic, step) and constants (plain, from data) */
    {"INPUT", HEAD "dx/dt = x*u1 + u2*y - u3\ndy/dt = y*q + u1*p\ndz/dt = z*r*u3\n", -2, 2, NULL},
    {"DCONST", HEAD "dx/dt = T*x + g*y\ndy/dt = y*q*T\ndz/dt = z*r\n", -2, 2, NULL},
    /* kinks and jumps, sampled away from them */
    {"STEP step", HEAD "dx/dt = step(x - 0.3)*y + x\ndy/dt = y*step(a - x)\ndz/dt = z*r\n", -2, 2,
     "x - 0.3; a - x"},
    {"MIN min", HEAD "dx/dt = min(x, y*p)\ndy/dt = min(y, 0.25) + x\ndz/dt = min(z, x) + z*r\n", -2, 2,
     "x - y*p; y - 0.25; z[1] - x; z[2] - x; z[3] - x"},
    {"MAX max", HEAD "dx/dt = max(x*q, y)\ndy/dt = max(-0.5, y*a)\ndz/dt = max(z*r, y)\n", -2, 2,
     "x*q - y; y*a + 0.5; z[1]*r - y; z[2]*r - y; z[3]*r - y"},
    {"clamp MIN MAX", HEAD "dx/dt = clamp(x, -0.5, y*r)\ndy/dt = clamp(y*q, x, 1.5) + x\ndz/dt = clamp(z, -1, x*p)\n",
     -2, 2,
     "x + 0.5; max(x, -0.5) - y*r; y*q - x; max(y*q, x) - 1.5; z[1] + 1; z[2] + 1; z[3] + 1; "
     "max(z[1], -1) - x*p; max(z[2], -1) - x*p; max(z[3], -1) - x*p"},
    {"IFELSE ifelse LT", HEAD "dx/dt = ifelse(x < y, x*p, y*q)\ndy/dt = ifelse(u3, y, -y*x)\n"
                              "dz/dt = ifelse(z < 0, z*x, -z*b)\n",
     -2, 2, "x - y; z[1]; z[2]; z[3]"},
    {"LE GT GE", HEAD "dx/dt = x*(x <= 0.2) + y*(y > -0.1) + p*(x >= y)\n" REST, -2, 2,
     "x - 0.2; y + 0.1; x - y"},
    /* grad: its adjoint code (NET_VJP for nets, SUM for a broadcast scalar, SIGN for abs)
     * differentiated again by the VJP and JVP, with per-series parameters and inputs */
    {"grad NET_VJP SUM", HEAD "dx/dt = grad(N(x, z*y)[1]*p + sin(x*y)*(z*x)[2] + a*u1*x^2, [x, y])[1]*y"
                         " + grad(N(z, x)[2]*b, z)[3]\n" REST, -2, 2, NULL},
    {"SIGN abs grad", HEAD "dx/dt = grad(abs(x - y)*x + abs(p*x)*c, x) + y\n" REST, -2, 2, "x - y; x"},
    /* matrices: literals with state, parameter and input entries, products with vectors and
     * matrices, elementwise arithmetic on matrices, d[...]/dt equations */
    {"MATMUL", HEAD "M = [[x, p], [y*u1, a]]\nK = 2*M - [[1, z[1]], [q, 0]]\n"
               "d[y, x]/dt = (M K) [x, u2] + M [y, 1]\ndz/dt = z*r\n", -2, 2, NULL},
    /* vectors: elementwise with scalar broadcasting, functions on vectors */
    {"ADD MUL", "state x, z[3]\nparam p = 0.37\nparam q = 1.61 (positive)\n"
                "dx/dt = x*p\ndz/dt = z*x + p - q*z^2 + exp(-z) + [x, p, q]\n", -2, 2, NULL},
    {"NET", "state y[2]\nnet f : 2 -> 7 tanh -> 2 init normal(0.5)\ndy/dt = f(y^3)\n", -2, 2, NULL},
    {"NET", "state a[2], b\nparam c = 0.5 (in [0, 1])\nnet g : 3 -> 4 softplus -> 4 sigmoid -> 2\n"
            "h = g(a, b)\nda/dt = h*b - a/c\ndb/dt = h[1] + h[2]*[a, c][3]\n", -2, 2, NULL},
    {"NET", "state a\nnet g : 1 -> 3 gelu -> 3 relu -> 3 rbf -> 1 init he\n"
            "da/dt = g(a)*g(2*a)\n", 0.6, 1.9, NULL},
};
#define N_CASES (sizeof cases / sizeof *cases)

/* Whether the space-separated list names word. */
static int lists(const char *list, const char *word) {
  const size_t n = strlen(word);
  for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0')) return 1;
  return 0;
}

static int op_index(const char *name) {
  for (size_t i = 0; i < N_OPS; i++)
    if (!strcmp(op_names[i], name)) return (int)i;
  return -1;
}

/* ---- the data every case is bound to: 3 series with inputs on [0, 4] and constants ---- */

#define N_SERIES 3
#define N_SAMPLES 9

typedef struct fixture {
  double t[N_SERIES][N_SAMPLES];
  double u[N_SERIES][N_SAMPLES * 3];
  nde_input_series in[N_SERIES];
  double consts[N_SERIES * 2];
} fixture;

static void make_fixture(fixture *F, int n_inputs, int n_consts) {
  for (int s = 0; s < N_SERIES; s++) {
    for (int k = 0; k < N_SAMPLES; k++) {
      F->t[s][k] = 0.5 * k - 0.01 * s;
      for (int i = 0; i < n_inputs && i < 3; i++)
        F->u[s][k * n_inputs + i] = i == 2 ? (double)((k + s) % 3) - 0.75  /* steps */
                                           : sin(1.3 * k + 0.7 * s + i) + 0.1 * k;
    }
    F->in[s] = (nde_input_series){N_SAMPLES, F->t[s], F->u[s]};
    for (int c = 0; c < n_consts && c < 2; c++) F->consts[s * n_consts + c] = 1.5 + 0.25 * s + 0.1 * c;
  }
}

static nde_model_rhs_opts fixture_opts(const fixture *F, int max_batch) {
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = max_batch;
  o.n_series = N_SERIES;
  o.inputs = F->in;
  o.consts = F->consts;
  return o;
}

/* The rows of a batch of B rows: spread over the series. */
static const int rows5[5] = {0, 2, 1, 2, 0}, rows1[1] = {2};

/* Fill the states of B rows so that every kink expression of c is at least 1e-3 from zero. */
static void sample_states(const gcase *c, const fixture *F, const double *th, nde_rng *rng, int B,
                          const int *rows, double t, double *U, int n) {
  nde_test_fill(rng, (size_t)B * n, c->lo, c->hi, U);
  if (!c->kinks) return;
  /* The model again with each kink as an observable, evaluated by an observer. */
  char src[4096], names[16][16];
  const char *name_ptr[16];
  int K = 0;
  snprintf(src, sizeof src, "%s", c->src);
  const char *p = c->kinks;
  while (*p && K < 16) {
    const char *e = strchr(p, ';');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    snprintf(names[K], sizeof names[K], "kink%d", K);
    size_t used = strlen(src);
    snprintf(src + used, sizeof src - used, "observe kink%d = %.*s\n", K, (int)len, p);
    name_ptr[K] = names[K];
    K++;
    p += len;
    while (*p == ';' || *p == ' ') p++;
  }
  nde_model *km = load_ok(src);
  nde_model_rhs_opts o = fixture_opts(F, 1);
  nde_observer *obs = NULL;
  nde_error err;
  if (nde_model_create_observer(km, &o, K, name_ptr, &obs, &err) != NDE_OK) {
    print_error("kink observer: %s\n", err.msg);
    fail();
  }
  for (int r = 0; r < B; r++) {
    assert_int_equal(nde_observer_set_rows(obs, 1, &rows[r]), NDE_OK);
    int tries = 0;
    for (;; tries++) {
      double v[16];
      assert_true(tries < 1000);
      assert_int_equal(nde_observer_eval(obs, t, 1, U + (size_t)r * n, th, v), 0);
      int ok = 1;
      for (int k = 0; k < K; k++) ok = ok && fabs(v[k]) > 1e-3;
      if (ok) break;
      nde_test_fill(rng, (size_t)n, c->lo, c->hi, U + (size_t)r * n);
    }
  }
  nde_observer_destroy(&obs);
  nde_model_destroy(&km);
}

static void run_case(const gcase *c, int B) {
  nde_model *m = load_ok(c->src);
  fixture F;
  make_fixture(&F, nde_model_n_inputs(m), nde_model_n_data_consts(m));
  nde_model_rhs_opts o = fixture_opts(&F, 8);
  nde_rhs *rhs = NULL;
  nde_error err;
  if (nde_model_create_rhs_opts(m, &o, &rhs, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  const int *rows = B == 1 ? rows1 : rows5;
  assert_int_equal(nde_rhs_set_rows(rhs, B, rows), NDE_OK);
  const int n = nde_model_state_dim(m);
  const size_t P = nde_rhs_get_info(rhs)->n_theta, N = (size_t)B * n;
  assert_int_equal(P, nde_model_n_theta_full(m, N_SERIES));
  const double t = 0.8173, h = 1e-6;
  nde_rng rng;
  nde_rng_seed(&rng, 7 + (uint64_t)B);
  double *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L), *V = calloc(N, sizeof *V);
  double *gU = calloc(N, sizeof *gU), *JV = calloc(N, sizeof *JV), *fp = calloc(N, sizeof *fp);
  double *fm = calloc(N, sizeof *fm), *Up = calloc(N, sizeof *Up);
  double *th = calloc(P + 1, sizeof *th), *gth = calloc(P + 1, sizeof *gth);
  double *Vth = calloc(P + 1, sizeof *Vth), *thp = calloc(P + 1, sizeof *thp);
  double *cache = calloc(nde_rhs_get_info(rhs)->cache_per_row * (size_t)B + 1, sizeof *cache);
  assert_int_equal(nde_model_init_theta_full(m, 4242, N_SERIES, th), NDE_OK);
  /* Away from the declared values, from exactly-zero biases, and different per series. */
  for (size_t i = 0; i < P; i++) th[i] += 0.3 * (nde_rng_uniform(&rng) - 0.5);
  sample_states(c, &F, th, &rng, B, rows, t, U, n);
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
  /* gtheta the same way, over the full theta (series not in the batch get exactly 0). */
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

/* The case compiles to every op it claims (NOP: removed, so never in a tape). */
static void check_covers(const gcase *c) {
  nde_model *m = load_ok(c->src);
  for (size_t i = 0; i < N_OPS; i++) {
    if (!lists(c->covers, op_names[i])) continue;
    const int count = nde__model_count_op(m, (int)i);
    if (!strcmp(op_names[i], "NOP") ? count != 0 : count == 0) {
      print_error("case '%s': the tape has %d %s instructions\n", c->covers, count, op_names[i]);
      fail();
    }
  }
  for (size_t f = 0; f < N_FUNCS; f++) {
    char call[32];
    snprintf(call, sizeof call, "%s(", func_names[f]);
    if (lists(c->covers, func_names[f])) assert_non_null(strstr(c->src, call));
  }
  nde_model_destroy(&m);
}

static void test_case(void **state) {
  const gcase *c = *state;
  check_covers(c);
  run_case(c, 1);
  run_case(c, 5);
}

/* Every op and every built-in function of the registries has a case. */
static void test_every_op_and_function_has_a_case(void **state) {
  (void)state;
  int missing = 0;
  for (size_t i = 0; i < N_OPS; i++) {
    int found = 0;
    for (size_t k = 0; k < N_CASES; k++) found += lists(cases[k].covers, op_names[i]);
    if (!found) {
      print_error("tape op %s has no gradient case\n", op_names[i]);
      missing++;
    }
  }
  for (size_t f = 0; f < N_FUNCS; f++) {
    int found = 0;
    for (size_t k = 0; k < N_CASES; k++) found += lists(cases[k].covers, func_names[f]);
    if (!found) {
      print_error("function %s has no gradient case\n", func_names[f]);
      missing++;
    }
  }
  assert_int_equal(missing, 0);
  /* And every name a case claims exists (no stale entries). */
  for (size_t k = 0; k < N_CASES; k++) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", cases[k].covers);
    for (char *w = strtok(buf, " "); w; w = strtok(NULL, " ")) {
      int known = op_index(w) >= 0;
      for (size_t f = 0; f < N_FUNCS; f++) known = known || !strcmp(w, func_names[f]);
      if (!known) print_error("case %zu names '%s', which is neither an op nor a function\n", k, w);
      assert_true(known);
    }
  }
}

/* ---- the conventions at kinks, exactly ---- */

/* f, gU = L^T df/dU and JV = df/dU V of a one-row model whose states are all given. */
typedef struct kink_eval {
  double f[4], gU[4], JV[4];
} kink_eval;

static kink_eval eval_at(const char *src, const double *U, const double *L, const double *V) {
  nde_model *m = load_ok(src);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  kink_eval e;
  memset(&e, 0, sizeof e);
  assert_int_equal(nde_rhs_f(rhs, 0.0, 1, U, NULL, e.f, NULL), 0);
  assert_int_equal(nde_rhs_vjp(rhs, 0.0, 1, U, NULL, L, NULL, e.gU, NULL), 0);
  assert_int_equal(nde_rhs_jvp(rhs, 0.0, 1, U, NULL, V, NULL, e.JV), 0);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  return e;
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

/* step(0) = 1 (right-continuous) and step has derivative 0 everywhere, at 0 too. */
static void test_step_is_one_at_zero_with_zero_derivative(void **state) {
  (void)state;
  const char *src = "state x, y\ndx/dt = step(x)\ndy/dt = step(y - 0.625)*y\n";
  const double L[2] = {1.75, -0.5}, V[2] = {0.375, 1.25};
  const double at[2] = {0.0, 0.625}, below[2] = {-1e-300, 0.625 - 1e-15};
  kink_eval e = eval_at(src, at, L, V);
  assert_true(e.f[0] == 1.0 && e.f[1] == 0.625);
  /* y's equation is step*y: the only derivative is through y (1 * L). */
  assert_true(e.gU[0] == 0.0 && e.gU[1] == -0.5);
  assert_true(e.JV[0] == 0.0 && e.JV[1] == 1.25);
  e = eval_at(src, below, L, V);
  assert_true(e.f[0] == 0.0 && e.f[1] == 0.0);
  assert_true(e.gU[0] == 0.0 && e.gU[1] == 0.0);
}

/* min and max select an operand; a tie selects the first, with its whole derivative. */
static void test_min_and_max_ties_take_the_first_argument(void **state) {
  (void)state;
  const char *src = "state x, y\ndx/dt = min(x, 2*y)\ndy/dt = max(3*y, x)\n";
  const double L[2] = {1.25, -0.75}, V[2] = {0.5, -2.0};
  const double tie[2] = {1.5, 0.75}; /* x = 2y = 1.5 and 3y = 2.25 > x */
  kink_eval e = eval_at(src, tie, L, V);
  assert_true(e.f[0] == 1.5 && e.f[1] == 2.25);
  /* dx/dt: d/dx = 1 (first argument), d/dy = 0; dy/dt = 3y: d/dy = 3. */
  assert_true(e.gU[0] == 1.25 && e.gU[1] == -0.75 * 3.0);
  assert_true(e.JV[0] == 0.5 && e.JV[1] == 3.0 * -2.0);
  const double tie2[2] = {2.25, 0.75}; /* 3y = x: max's tie takes 3y; min takes 2y */
  e = eval_at(src, tie2, L, V);
  assert_true(e.f[0] == 1.5 && e.f[1] == 2.25);
  assert_true(e.gU[0] == 0.0 && e.gU[1] == 1.25 * 2.0 - 0.75 * 3.0);
}

/* clamp(x, lo, hi) = min(max(x, lo), hi): the derivative in x is 1 on the closed interval
 * [lo, hi], and outside it the active bound takes it. */
static void test_clamp_passes_the_derivative_on_its_closed_interval(void **state) {
  (void)state;
  const char *src = "state x, lo, hi\ndx/dt = clamp(x, lo, hi)\ndlo/dt = 0\ndhi/dt = 0\n";
  const double L[3] = {2.5, 0, 0}, V[3] = {1.0, 0.25, -0.5};
  const double pts[4][3] = {{-0.5, -0.5, 1.5}, {1.5, -0.5, 1.5}, {-0.875, -0.5, 1.5}, {2.0, -0.5, 1.5}};
  const double want_f[4] = {-0.5, 1.5, -0.5, 1.5};
  const double want_g[4][3] = {{2.5, 0, 0}, {2.5, 0, 0}, {0, 2.5, 0}, {0, 0, 2.5}};
  for (int k = 0; k < 4; k++) {
    kink_eval e = eval_at(src, pts[k], L, V);
    assert_true(e.f[0] == want_f[k]);
    for (int j = 0; j < 3; j++) assert_true(e.gU[j] == want_g[k][j]);
    assert_true(e.JV[0] == want_g[k][0] / 2.5 * 1.0 + want_g[k][1] / 2.5 * 0.25 + want_g[k][2] / 2.5 * -0.5);
  }
}

/* Comparisons give 1 or 0 (equality: <= and >= hold, < and > do not) with derivative 0;
 * ifelse selects by condition != 0 (0 picks the second branch) and passes no derivative to
 * the condition; a NaN condition gives NaN (a recoverable failure). */
static void test_comparisons_and_ifelse_at_equality(void **state) {
  (void)state;
  const char *src = "state x, y, c\ndx/dt = (x < y) + 2*(x <= y) + 4*(x > y) + 8*(x >= y)\n"
                    "dy/dt = ifelse(c, x*y, 3*x)\ndc/dt = 0\n";
  const double L[3] = {1.5, 0.5, 0}, V[3] = {1.0, -1.0, 7.0};
  const double eq[3] = {0.75, 0.75, 0.0};
  kink_eval e = eval_at(src, eq, L, V);
  assert_true(e.f[0] == 10.0 && e.f[1] == 2.25);
  /* dx/dt has no derivative; dy/dt = 3x (c == 0): d/dx = 3. */
  assert_true(e.gU[0] == 1.5 && e.gU[1] == 0.0 && e.gU[2] == 0.0);
  assert_true(e.JV[0] == 0.0 && e.JV[1] == 3.0);
  const double on[3] = {0.75, 1.25, -2.0};
  e = eval_at(src, on, L, V);
  assert_true(e.f[0] == 3.0 && e.f[1] == 0.75 * 1.25);
  assert_true(e.gU[0] == 0.5 * 1.25 && e.gU[1] == 0.5 * 0.75 && e.gU[2] == 0.0);
  /* NaN in a comparison or a condition is not hidden. */
  nde_model *m = load_ok(src);
  nde_rhs *rhs = NULL;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  double f[3];
  const double nan_c[3] = {0.75, 1.25, NAN};
  assert_int_equal(nde_rhs_f(rhs, 0.0, 1, nan_c, NULL, f, NULL), 1);
  assert_true(isnan(f[1]) && !isnan(f[0]));
  const double nan_x[3] = {NAN, 1.25, 1.0};
  assert_int_equal(nde_rhs_f(rhs, 0.0, 1, nan_x, NULL, f, NULL), 1);
  assert_true(isnan(f[0]));
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

int main(void) {
  struct CMUnitTest tests[N_CASES + 6];
  static char names[N_CASES][96];
  for (size_t i = 0; i < N_CASES; i++) {
    snprintf(names[i], sizeof names[i], "case %zu: %s", i + 1, cases[i].covers);
    tests[i] = (struct CMUnitTest){names[i], test_case, NULL, NULL, (void *)&cases[i]};
  }
  tests[N_CASES] = (struct CMUnitTest)cmocka_unit_test(test_every_op_and_function_has_a_case);
  tests[N_CASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_abs_kink_has_zero_derivative);
  tests[N_CASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_step_is_one_at_zero_with_zero_derivative);
  tests[N_CASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_min_and_max_ties_take_the_first_argument);
  tests[N_CASES + 4] = (struct CMUnitTest)cmocka_unit_test(test_clamp_passes_the_derivative_on_its_closed_interval);
  tests[N_CASES + 5] = (struct CMUnitTest)cmocka_unit_test(test_comparisons_and_ifelse_at_equality);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
