/* grad(EXPR, x) in the model language: the compiled Hamiltonian network equals the hand-written
 * one (tests/support/hnn.c) in f, VJP and JVP for every activation that grad accepts; f is the
 * gradient of EXPR (central differences of a probe of EXPR), and the model's VJP and JVP match
 * central differences of f for HNNs of every smooth activation, nested and composite
 * expressions, lists and components of states, grad of grad, the port-Hamiltonian and
 * gradient-system forms, with per-series parameters, inputs and batches of several series;
 * the tape shares one net call and one NET_VJP between the two grads of an HNN; the matrix
 * form of a port-Hamiltonian model equals its components; every solver and gradient method runs
 * an HNN (against differences of the same solver's loss), fixed-step methods keep their orders on
 * HNNs, and implicit-midpoint conserves a learned energy (exactly when quadratic, with a bounded
 * O(h^2) error otherwise); a relu net inside grad is refused (the other refusals are in
 * tests/lang/test_lang_errors.c); the equations show grad, matrices and lists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hnn.h"
#include "nde/grad.h"
#include "nde/model.h"
#include "../../src/model/ops.h"

/* Internal: how many instructions of op the model's rhs tape has (src/model/lang.h). */
int nde__model_count_op(const nde_model *m, int op);

enum {
#define OP_ENUM(id, kind) OP_##id,
  NDE__OP_LIST(OP_ENUM)
#undef OP_ENUM
};

static nde_model *load(const char *src) {
  nde_model *m = NULL;
  nde_status st = nde_model_load_string(src, strlen(src), "grad.nde", &m, NULL);
  if (st != NDE_OK) {
    print_error("model did not compile (%s):\n%s", nde_status_str(st), nde_model_errmsg(m));
    nde_model_destroy(&m);
    fail();
  }
  return m;
}

/* The error message of a model that must not compile. */
static void expect_error(const char *src, nde_status want, const char *text) {
  nde_model *m = NULL;
  nde_status st = nde_model_load_string(src, strlen(src), "grad.nde", &m, NULL);
  const char *msg = nde_model_errmsg(m);
  if (st != want || !strstr(msg, text)) {
    print_error("expected %s with '%s', got %s:\n%s\n", nde_status_str(want), text,
                nde_status_str(st), msg);
    nde_model_destroy(&m);
    fail();
  }
  nde_model_destroy(&m);
}

/* ---- the compiled HNN against the hand-written one ---- */

static const nde_act smooth[] = {NDE_ACT_IDENTITY, NDE_ACT_TANH, NDE_ACT_SOFTPLUS,
                                 NDE_ACT_SIGMOID, NDE_ACT_GELU, NDE_ACT_RBF};
#define N_SMOOTH (sizeof smooth / sizeof *smooth)

static void hnn_source(char *buf, size_t n, int d, int hidden, nde_act act) {
  if (d == 1)
    snprintf(buf, n,
             "state q, p\nnet H : 2 -> %d %s -> %d %s -> 1\n"
             "dq/dt = grad(H(q, p), p)\ndp/dt = -grad(H(q, p), q)\n",
             hidden, nde_act_name(act), hidden, nde_act_name(act));
  else
    snprintf(buf, n,
             "state q[%d], p[%d]\nnet H : %d -> %d %s -> %d %s -> 1\n"
             "dq/dt = grad(H(q, p), p)\ndp/dt = -grad(H(q, p), q)\n",
             d, d, 2 * d, hidden, nde_act_name(act), hidden, nde_act_name(act));
}

static void compare_with_hand_written(int d, nde_act act, int B) {
  char src[512];
  hnn_source(src, sizeof src, d, 7, act);
  nde_model *m = load(src);
  nde_rhs *rhs = NULL;
  nde_cmodel ref;
  assert_int_equal(nde_model_create_rhs(m, B, &rhs, NULL), NDE_OK);
  assert_int_equal(nde_hnn_create(d, 7, act, B, &ref), NDE_OK);
  const int n = 2 * d;
  const size_t P = nde_model_n_theta(m), N = (size_t)B * n;
  assert_int_equal(P, ref.n_theta);
  nde_rng rng;
  nde_rng_seed(&rng, 1000 + (uint64_t)act * 10 + (uint64_t)B);
  double *th = calloc(P, sizeof *th), *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L);
  double *V = calloc(N, sizeof *V), *Vth = calloc(P, sizeof *Vth);
  double *f1 = calloc(N, sizeof *f1), *f2 = calloc(N, sizeof *f2);
  double *g1 = calloc(N, sizeof *g1), *g2 = calloc(N, sizeof *g2);
  double *gt1 = calloc(P, sizeof *gt1), *gt2 = calloc(P, sizeof *gt2);
  double *cache = calloc(nde_rhs_get_info(rhs)->cache_per_row * (size_t)B + 1, sizeof *cache);
  assert_int_equal(nde_model_init_theta(m, 77, th), NDE_OK);
  for (size_t i = 0; i < P; i++) th[i] += 0.2 * nde_rng_normal(&rng); /* biases not zero */
  nde_test_fill(&rng, N, -1.7, 1.7, U);
  nde_test_fill(&rng, N, -1.0, 1.0, L);
  nde_test_fill(&rng, N, -1.0, 1.0, V);
  nde_test_fill(&rng, P, -1.0, 1.0, Vth);
  assert_int_equal(nde_rhs_f(rhs, 0.3, B, U, th, f1, cache), 0);
  assert_int_equal(nde_rhs_f(ref.rhs, 0.3, B, U, th, f2, NULL), 0);
  const double e_f = nde_test_rel_err(N, f1, f2, 1e-300);
  assert_int_equal(nde_rhs_vjp(rhs, 0.3, B, U, th, L, cache, g1, gt1), 0);
  assert_int_equal(nde_rhs_vjp(ref.rhs, 0.3, B, U, th, L, NULL, g2, gt2), 0);
  const double e_gu = nde_test_rel_err(N, g1, g2, 1e-300), e_gt = nde_test_rel_err(P, gt1, gt2, 1e-300);
  assert_int_equal(nde_rhs_jvp(rhs, 0.3, B, U, th, V, Vth, f1), 0);
  assert_int_equal(nde_rhs_jvp(ref.rhs, 0.3, B, U, th, V, Vth, f2), 0);
  const double e_jv = nde_test_rel_err(N, f1, f2, 1e-300);
  if (getenv("SHOWERR") || !(e_f <= 1e-12 && e_gu <= 1e-12 && e_gt <= 1e-12 && e_jv <= 1e-12))
    print_error("d = %d, %s, B = %d: relative errors f %.2e, VJP u %.2e, theta %.2e, JVP %.2e\n",
                d, nde_act_name(act), B, e_f, e_gu, e_gt, e_jv);
  assert_true(e_f <= 1e-12 && e_gu <= 1e-12 && e_gt <= 1e-12 && e_jv <= 1e-12);
  free(th), free(U), free(L), free(V), free(Vth), free(f1), free(f2), free(g1), free(g2);
  free(gt1), free(gt2), free(cache);
  nde_cmodel_destroy(&ref);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_the_compiled_hnn_equals_the_hand_written_one(void **state) {
  (void)state;
  for (size_t a = 0; a < N_SMOOTH; a++)
    for (int d = 1; d <= 2; d++) {
      compare_with_hand_written(d, smooth[a], 1);
      compare_with_hand_written(d, smooth[a], 6);
    }
}

/* ---- finite differences ---- */

#define N_SERIES 3
#define N_SAMPLES 7

/* One measured input u1 on [0, 3] per series (different per series). */
typedef struct fixture {
  double t[N_SERIES][N_SAMPLES], u[N_SERIES][N_SAMPLES];
  nde_input_series in[N_SERIES];
} fixture;

static nde_model_rhs_opts fixture_opts(fixture *F, const nde_model *m, int max_batch) {
  for (int s = 0; s < N_SERIES; s++) {
    for (int k = 0; k < N_SAMPLES; k++) {
      F->t[s][k] = 0.5 * k;
      F->u[s][k] = sin(0.9 * k + s) + 0.3 * s;
    }
    F->in[s] = (nde_input_series){N_SAMPLES, F->t[s], F->u[s]};
  }
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = max_batch;
  o.n_series = N_SERIES;
  if (nde_model_n_inputs(m) > 0) o.inputs = F->in;
  return o;
}

/* The model's VJP (u and the full theta) and JVP against central differences of f on B rows
 * spread over the series, states uniform in [lo, hi]; the VJP and JVP are transposes. */
static void check_fd(const char *src, double lo, double hi, int B) {
  nde_model *m = load(src);
  fixture F;
  nde_model_rhs_opts o = fixture_opts(&F, m, B);
  nde_rhs *rhs = NULL;
  nde_error err;
  if (nde_model_create_rhs_opts(m, &o, &rhs, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  const int rows[5] = {2, 0, 1, 2, 1};
  assert_int_equal(nde_rhs_set_rows(rhs, B, rows), NDE_OK);
  const int n = nde_model_state_dim(m);
  const size_t P = nde_rhs_get_info(rhs)->n_theta, N = (size_t)B * n;
  nde_rng rng;
  nde_rng_seed(&rng, 31 + (uint64_t)B + strlen(src));
  double *th = calloc(P + 1, sizeof *th), *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L);
  double *V = calloc(N, sizeof *V), *Vth = calloc(P + 1, sizeof *Vth), *Up = calloc(N, sizeof *Up);
  double *fp = calloc(N, sizeof *fp), *fm = calloc(N, sizeof *fm), *JV = calloc(N, sizeof *JV);
  double *gU = calloc(N, sizeof *gU), *gth = calloc(P + 1, sizeof *gth), *tp = calloc(P + 1, sizeof *tp);
  double *cache = calloc(nde_rhs_get_info(rhs)->cache_per_row * (size_t)B + 1, sizeof *cache);
  assert_int_equal(nde_model_init_theta_full(m, 4242, N_SERIES, th), NDE_OK);
  for (size_t i = 0; i < P; i++) th[i] += 0.3 * (nde_rng_uniform(&rng) - 0.5);
  nde_test_fill(&rng, N, lo, hi, U);
  nde_test_fill(&rng, N, -1.5, 1.5, L);
  nde_test_fill(&rng, N, -1.5, 1.5, V);
  nde_test_fill(&rng, P, -1.5, 1.5, Vth);
  const double t = 1.1173, h = 1e-5;
  assert_int_equal(nde_rhs_f(rhs, t, B, U, th, fp, cache), 0);
  assert_int_equal(nde_rhs_vjp(rhs, t, B, U, th, L, cache, gU, gth), 0);
  double worst = 0;
  for (size_t q = 0; q < N; q++) {
    memcpy(Up, U, N * sizeof *U);
    Up[q] = U[q] + h;
    assert_int_equal(nde_rhs_f(rhs, t, B, Up, th, fp, NULL), 0);
    Up[q] = U[q] - h;
    assert_int_equal(nde_rhs_f(rhs, t, B, Up, th, fm, NULL), 0);
    double fd = 0;
    for (size_t i = 0; i < N; i++) fd += L[i] * (fp[i] - fm[i]) / (2 * h);
    const double e = fabs(fd - gU[q]) / fmax(1.0, fabs(fd));
    if (e > worst) worst = e;
  }
  /* theta along Vth */
  for (size_t i = 0; i < P; i++) tp[i] = th[i] + h * Vth[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, U, tp, fp, NULL), 0);
  for (size_t i = 0; i < P; i++) tp[i] = th[i] - h * Vth[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, U, tp, fm, NULL), 0);
  double fd_th = 0;
  for (size_t i = 0; i < N; i++) fd_th += L[i] * (fp[i] - fm[i]) / (2 * h);
  const double e_th = fabs(fd_th - nde_test_dot(P, gth, Vth)) / fmax(1.0, fabs(fd_th));
  /* JVP along (V, Vth) */
  assert_int_equal(nde_rhs_jvp(rhs, t, B, U, th, V, Vth, JV), 0);
  for (size_t q = 0; q < N; q++) Up[q] = U[q] + h * V[q];
  for (size_t i = 0; i < P; i++) tp[i] = th[i] + h * Vth[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, Up, tp, fp, NULL), 0);
  for (size_t q = 0; q < N; q++) Up[q] = U[q] - h * V[q];
  for (size_t i = 0; i < P; i++) tp[i] = th[i] - h * Vth[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, Up, tp, fm, NULL), 0);
  double e_jv = 0;
  for (size_t i = 0; i < N; i++) {
    const double fd = (fp[i] - fm[i]) / (2 * h), e = fabs(fd - JV[i]) / fmax(1.0, fabs(fd));
    if (e > e_jv) e_jv = e;
  }
  /* <L, J V> = <J^T L, V> (theta included) */
  const double lhs = nde_test_dot(N, L, JV), rhs_ = nde_test_dot(N, gU, V) + nde_test_dot(P, gth, Vth);
  const double e_dot = fabs(lhs - rhs_) / fmax(1e-3, fabs(lhs));
  if (getenv("SHOWERR") || !(worst <= 1e-6 && e_th <= 1e-6 && e_jv <= 1e-6 && e_dot <= 1e-12))
    print_error("B = %d: VJP u %.2e, theta %.2e, JVP %.2e, transpose %.2e\n%s", B, worst, e_th,
                e_jv, e_dot, src);
  assert_true(worst <= 1e-6 && e_th <= 1e-6 && e_jv <= 1e-6 && e_dot <= 1e-12);
  free(th), free(U), free(L), free(V), free(Vth), free(Up), free(fp), free(fm), free(JV);
  free(gU), free(gth), free(tp), free(cache);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_hnns_of_every_smooth_activation_match_finite_differences(void **state) {
  (void)state;
  for (size_t a = 0; a < N_SMOOTH; a++)
    for (int d = 1; d <= 2; d++) {
      char src[512];
      hnn_source(src, sizeof src, d, 6, smooth[a]);
      check_fd(src, -1.5, 1.5, 1);
      check_fd(src, -1.5, 1.5, 5);
    }
}

/* Models whose right-hand sides use grad in every way the language allows. */
static const struct {
  const char *src;
  double lo, hi;
} composite[] = {
    /* nested elementwise expressions around a net, shared by two grads */
    {"state q, p\nparam k = 0.7\nnet H : 2 -> 5 tanh -> 1\n"
     "E = sin(H(q, p)) * q^2 + exp(k*p) / (1 + p^2) + sqrt(q^2 + 1) + log(2 + cos(q*p)) + tanh(q - p)\n"
     "dq/dt = grad(E, p)\ndp/dt = -grad(E, q)\n", -1.5, 1.5},
    /* the port-Hamiltonian form with learnable damping, a gradient system, a list */
    {"state q, p\nparam r = 0.3 (positive)\nnet H : 2 -> 8 softplus -> 8 softplus -> 1\n"
     "g = grad(H(q, p), [q, p])\ndq/dt = g[2]\ndp/dt = -g[1] - r*g[2]\n", -1.5, 1.5},
    {"state x[2]\nnet V : 2 -> 8 gelu -> 1\ndx/dt = -grad(V(x), x)\n", -1.5, 1.5},
    /* the same in the matrix form d[q, p]/dt = (J - R) grad H, and a learnable metric */
    {"state q, p\nparam r = 0.3 (positive)\nnet H : 2 -> 8 softplus -> 8 softplus -> 1\n"
     "J = [[0, 1], [-1, 0]]\nR = [[0, 0], [0, r]]\nd[q, p]/dt = (J - R) grad(H(q, p), [q, p])\n", -1.5, 1.5},
    {"state x[2]\nparam a = 1.2 (positive)\nparam b = 0.3\nnet V : 2 -> 8 tanh -> 1\n"
     "M = [[a, b], [b, 2*a]]\ndx/dt = -M grad(V(x), x)\n", -1.5, 1.5},
    /* products of state-dependent matrices inside grad (their adjoints are transposed products) */
    {"state q, p\nparam k = 0.6\nA = [[q, p], [k, q*p]]\nE = ((A A) [q, 1])[1] + (A [p, q])[2]*p\n"
     "d[p, q]/dt = grad(E, [q, p]) + A [q, k]\n", -1.5, 1.5},
    /* vector states, components and lists in any order, several nets, nonlinear net inputs */
    {"state y[3], z\nnet V : 4 -> 6 softplus -> 1\nnet W : 2 -> 3 sigmoid -> 1\n"
     "dy/dt = -grad(V(y, z) + W(sin(y[1]), y[3]*z), y)\n"
     "dz/dt = grad(V(y, z), y[2]) * z + grad(V(y, z)*W(z, z), [z, y[1]])[1]\n", -1.5, 1.5},
    /* grad of grad (second derivatives of elementwise expressions) */
    {"state q, p\nparam k = 1.3\nV = q^4/4 + k*q^2*p + p^3 - q*exp(p)\ng = grad(V, [q, p])\n"
     "dq/dt = grad(g[1]*g[2] + g[1]^2, q)\ndp/dt = grad(grad(V, p), [q])\n", -1.5, 1.5},
    /* broadcasts (a scalar against a vector inside grad), concatenation and indexing */
    {"state q, p\nnet N : 3 -> 4 rbf -> 2\nw = [q, p, 1] * q\nu = N(w)\n"
     "dq/dt = grad(u[1] * u[2] + w[1]*w[2]*p, q)\ndp/dt = grad(N(q * [1, 2, p])[2], [p])\n", -1.5, 1.5},
    /* real powers, division and abs, min, max, clamp, ifelse, step (sampled away from kinks) */
    {"state q, p\nparam k = 1.7 (positive)\n"
     "dq/dt = grad(q^p + p^1.5 + k^q + q/p, [q])\ndp/dt = grad(abs(q - 2.5) * min(q, 3*p) + max(p^2, 0.1*q) + "
     "clamp(q*p, -9, 9) + ifelse(q > 10, q, p^2) + step(q - 10)*q, p)\n", 0.6, 1.9},
    /* per-series parameters, a measured input and t inside grad, rows in several series */
    {"state q, p\ninput u1\nparam a = 0.8 (per series)\nparam b = 1.2 (positive, per series)\n"
     "net H : 3 -> 5 tanh -> 1\nE = a*H(q, p, t) + u1*p^2 + b*q^2*sin(t)\n"
     "dq/dt = grad(E, p)\ndp/dt = -grad(E, q)\n", -1.5, 1.5},
};
#define N_COMPOSITE (sizeof composite / sizeof *composite)

static void test_composite_uses_of_grad_match_finite_differences(void **state) {
  (void)state;
  for (size_t i = 0; i < N_COMPOSITE; i++) {
    check_fd(composite[i].src, composite[i].lo, composite[i].hi, 1);
    check_fd(composite[i].src, composite[i].lo, composite[i].hi, 5);
  }
}

/* f is the gradient: central differences of a probe of the expression. */
static void check_gradient_of(const char *head, const char *expr, double lo, double hi) {
  char src[2048];
  snprintf(src, sizeof src,
           "%sg = grad(%s, [q, p, y])\ndq/dt = g[1]\ndp/dt = g[2]\ndy/dt = [g[3], g[4]]\n", head,
           expr);
  nde_model *m = load(src);
  nde_rhs *rhs = NULL;
  nde_probe *pr = NULL;
  nde_error err;
  assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
  if (nde_probe_create(m, 1, &expr, 1, &pr, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  const size_t P = nde_model_n_theta(m);
  double *th = calloc(P + 1, sizeof *th), U[4], f[4], Up[4], ep, em;
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  assert_int_equal(nde_model_init_theta(m, 5, th), NDE_OK);
  for (size_t i = 0; i < P; i++) th[i] += 0.2 * nde_rng_normal(&rng);
  nde_test_fill(&rng, 4, lo, hi, U);
  assert_int_equal(nde_rhs_f(rhs, 0.7, 1, U, th, f, NULL), 0);
  const double h = 1e-5;
  for (int j = 0; j < 4; j++) {
    memcpy(Up, U, sizeof U);
    Up[j] = U[j] + h;
    assert_int_equal(nde_probe_eval(pr, 0.7, 1, Up, th, &ep), 0);
    Up[j] = U[j] - h;
    assert_int_equal(nde_probe_eval(pr, 0.7, 1, Up, th, &em), 0);
    check_close(f[j], (ep - em) / (2 * h), 1e-7);
  }
  free(th);
  nde_probe_destroy(&pr);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
}

static void test_grad_is_the_gradient_of_its_expression(void **state) {
  (void)state;
  const char *head = "state q, p, y[2]\nparam k = 0.37\nnet H : 4 -> 6 softplus -> 5 tanh -> 1\n"
                     "net G : 2 -> 3 gelu -> 2\n";
  const char *exprs[] = {
      "H(q, p, y)",
      "H(y, p, q) * exp(-q^2) + G(p, q)[1]^2",
      "sin(k*q*p) + y[1]^3*y[2] - log(2 + p^2) + sqrt(1 + y[2]^2)*tanh(q)",
      "(q - y[1])^2 / (1 + p^2) + k*H(sin(q), cos(p), y*q)",
  };
  for (size_t i = 0; i < sizeof exprs / sizeof *exprs; i++) check_gradient_of(head, exprs[i], -1.4, 1.4);
  /* Every activation grad accepts, in both hidden layers. */
  for (size_t a = 0; a < N_SMOOTH; a++) {
    char h[256];
    snprintf(h, sizeof h, "state q, p, y[2]\nparam k = 0.37\nnet H : 4 -> 6 %s -> 5 %s -> 1\n",
             nde_act_name(smooth[a]), nde_act_name(smooth[a]));
    check_gradient_of(h, "H(q, p, y) + k*H(y, p*q, q)^2", -1.4, 1.4);
  }
}

/* One net call and one NET_VJP serve both grads of an HNN; the net call's value is not
 * computed for its own sake (only its cache is read). */
static void test_two_grads_of_one_hamiltonian_share_one_pass(void **state) {
  (void)state;
  char src[512];
  hnn_source(src, sizeof src, 1, 16, NDE_ACT_SOFTPLUS);
  nde_model *m = load(src);
  assert_int_equal(nde__model_count_op(m, OP_NET), 1);
  assert_int_equal(nde__model_count_op(m, OP_NET_VJP), 1);
  nde_model_destroy(&m);
  /* Separable energies stay separable: leapfrog finds the split. */
  m = load("state q, p\nnet T : 1 -> 8 softplus -> 1\nnet V : 1 -> 8 tanh -> 1\n"
           "dq/dt = grad(T(p), p)\ndp/dt = -grad(V(q), q)\n");
  unsigned char dep[4];
  assert_int_equal(nde_model_dependency(m, dep), NDE_OK);
  assert_int_equal(dep[0], 0);
  assert_int_equal(dep[1], 1);
  assert_int_equal(dep[2], 1);
  assert_int_equal(dep[3], 0);
  nde_model_destroy(&m);
}

/* ---- every solver and gradient method on an HNN ---- */

#define SB 2 /* batch rows */
#define SK 7 /* observation times */

typedef struct sworld {
  nde_model *m;
  nde_rhs *rhs;
  size_t P;
  double *theta, *dth, U0[2 * SB], du[2 * SB], t[SK], obs[SK * SB * 2];
  nde_obs_loss loss;
} sworld;

static nde_solver_opts solver_opts(const char *name) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = name;
  o.dt = 0.01;
  o.rtol = 1e-9;
  o.atol = 1e-11;
  return o;
}

static double solve_loss(sworld *w, const char *solver, const double *theta, const double *U0) {
  nde_solver_opts o = solver_opts(solver);
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w->rhs, &o, SB, &s, NULL), NDE_OK);
  double Y[SK * SB * 2], L;
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, theta, SB, U0, SK, w->t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  assert_int_equal(nde_obs_loss_eval(&w->loss, SK, SB, 2, Y, &L, NULL), 0);
  nde_solver_destroy(&s);
  return L;
}

static void make_sworld(sworld *w, const char *src) {
  memset(w, 0, sizeof *w);
  w->m = load(src);
  assert_int_equal(nde_model_create_rhs(w->m, SB, &w->rhs, NULL), NDE_OK);
  w->P = nde_model_n_theta(w->m);
  w->theta = calloc(w->P, sizeof *w->theta);
  w->dth = calloc(w->P, sizeof *w->dth);
  nde_rng rng;
  nde_rng_seed(&rng, 808);
  assert_int_equal(nde_model_init_theta(w->m, 3, w->theta), NDE_OK);
  for (size_t i = 0; i < w->P; i++) w->theta[i] += 0.1 * nde_rng_normal(&rng);
  const double u0[2 * SB] = {0.8125, -0.3, -0.45, 0.6375};
  memcpy(w->U0, u0, sizeof u0);
  for (int k = 0; k < SK; k++) w->t[k] = 1.5 * k / (SK - 1.0);
  /* Observations: the model at a perturbed theta (dopri5, tight). */
  double *th2 = calloc(w->P, sizeof *th2);
  for (size_t i = 0; i < w->P; i++) th2[i] = w->theta[i] * (1.0 + 0.2 * nde_rng_normal(&rng));
  nde_solver_opts o = solver_opts("dopri5");
  o.rtol = 1e-11;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(w->rhs, &o, SB, &s, NULL), NDE_OK);
  assert_int_equal(nde_solver_solve(s, th2, SB, w->U0, SK, w->t, w->obs, NULL), NDE_OK);
  nde_solver_destroy(&s);
  free(th2);
  w->loss.obs = w->obs;
  w->loss.mean = 1;
  for (size_t i = 0; i < w->P; i++) w->dth[i] = nde_rng_normal(&rng);
  for (int q = 0; q < 2 * SB; q++) w->du[q] = nde_rng_normal(&rng);
}

static void free_sworld(sworld *w) {
  free(w->theta);
  free(w->dth);
  nde_rhs_destroy(&w->rhs);
  nde_model_destroy(&w->m);
}

/* Every gradient method of every solver that can run the model, against central differences
 * of the same solver's loss: methods that are exact for the discretised loss to 1e-6, the
 * others (continuous adjoints, forward sensitivities) to what their solver's accuracy allows. */
static void every_solver_and_method(const char *src, int separable) {
  sworld w;
  make_sworld(&w, src);
  int n_runs = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *si = nde_solver_method_at(i);
    if (si->needs_split && !separable) {
      /* Refused with a message that names the dependency. */
      nde_solver_opts o = solver_opts(si->name);
      nde_solver *s = NULL;
      nde_error err;
      assert_int_equal(nde_solver_create(w.rhs, &o, SB, &s, &err), NDE_ERR_ARG);
      continue;
    }
    /* The solver's own loss, differentiated along (dth, du) by five-point differences. */
    const double e = 1e-3, off[4] = {-2, -1, 1, 2};
    double *tp = calloc(w.P, sizeof *tp), up[2 * SB], Lp[4], Lu[4];
    for (int j = 0; j < 4; j++) {
      const double h = off[j] * e;
      for (size_t k = 0; k < w.P; k++) tp[k] = w.theta[k] + h * w.dth[k];
      for (int q = 0; q < 2 * SB; q++) up[q] = w.U0[q] + h * w.du[q];
      Lp[j] = solve_loss(&w, si->name, tp, w.U0);
      Lu[j] = solve_loss(&w, si->name, w.theta, up);
    }
    const double fd_th = (Lp[0] - 8 * Lp[1] + 8 * Lp[2] - Lp[3]) / (12 * e);
    const double fd_u = (Lu[0] - 8 * Lu[1] + 8 * Lu[2] - Lu[3]) / (12 * e);
    free(tp);
    for (int j = 0; j < nde_grad_method_count(); j++) {
      const nde_grad_method_info *gi = nde_grad_method_at(j);
      if (!nde_grad_method_supported(gi->name, si->name)) continue;
      nde_solver_opts o = solver_opts(si->name);
      nde_solver *s = NULL;
      assert_int_equal(nde_solver_create(w.rhs, &o, SB, &s, NULL), NDE_OK);
      nde_grad_opts go = nde_grad_opts_default();
      go.method = gi->name;
      nde_grad *g = NULL;
      assert_int_equal(nde_grad_create(s, &go, &g, NULL), NDE_OK);
      double *gth = calloc(w.P, sizeof *gth), gu[2 * SB], L;
      nde_grad_stats gs;
      assert_int_equal(nde_grad_eval(g, w.theta, SB, w.U0, SK, w.t, nde_obs_loss_eval, &w.loss, &L,
                                     gth, gu, NULL, &gs),
                       NDE_OK);
      assert_int_equal(gs.forward.reason, NDE_REASON_NONE);
      assert_int_equal(gs.backward.reason, NDE_REASON_NONE);
      const double eth = fabs(nde_test_dot(w.P, gth, w.dth) - fd_th) / fabs(fd_th);
      const double eu = fabs(nde_test_dot(2 * SB, gu, w.du) - fd_u) / fabs(fd_u);
      /* Fixed steps: exact methods to the differences' own error (measured <= 5e-9), continuous
       * adjoints to the method's error on h = 0.01 (euler's first-order backsolve, measured:
       * 3e-3 on the HNN, 6e-2 on the separable model).  Adaptive steps: the differences of the
       * loss see the step sizes change with theta (at rtol 1e-9 every method of a solver agrees
       * with the others and is off the differences by the same amount, up to 9e-6 for
       * cvode-bdf). */
      const double tol = si->adaptive ? 1e-4 : gi->exact ? 1e-6 : si->order == 1 ? 0.1 : 1e-6;
      if (getenv("SHOWERR") || !(eth < tol && eu < tol))
        print_message("%s %-17s %-9s: theta %.2e, U0 %.2e (tol %.0e), %ld vjp\n",
                      separable ? "separable" : "HNN", si->name, gi->name, eth, eu, tol, gs.n_vjp);
      assert_true(eth < tol && eu < tol);
      n_runs++;
      free(gth);
      nde_grad_destroy(&g);
      nde_solver_destroy(&s);
    }
  }
  assert_true(n_runs >= 8);
  free_sworld(&w);
}

static void test_every_solver_and_gradient_method_runs_an_hnn(void **state) {
  (void)state;
  every_solver_and_method("state q, p\nnet H : 2 -> 8 tanh -> 8 tanh -> 1\n"
                          "dq/dt = grad(H(q, p), p)\ndp/dt = -grad(H(q, p), q)\n", 0);
  /* A separable energy T(p) + V(q): the splitting methods too. */
  every_solver_and_method("state q, p\nnet T : 1 -> 8 softplus -> 1\nnet V : 1 -> 8 tanh -> 1\n"
                          "dq/dt = grad(T(p), p)\ndp/dt = -grad(V(q), q)\n", 1);
}

/* The matrix form of a port-Hamiltonian model computes what its components do. */
static void test_the_matrix_form_equals_the_componentwise_one(void **state) {
  (void)state;
  const char *head = "state q, p\nparam r = 0.3 (positive)\nnet H : 2 -> 8 softplus -> 8 softplus -> 1\n";
  char a[512], b[512];
  snprintf(a, sizeof a, "%sJ = [[0, 1], [-1, 0]]\nR = [[0, 0], [0, r]]\n"
           "d[q, p]/dt = (J - R) grad(H(q, p), [q, p])\n", head);
  snprintf(b, sizeof b, "%sg = grad(H(q, p), [q, p])\ndq/dt = g[2]\ndp/dt = -g[1] - r*g[2]\n", head);
  nde_model *ma = load(a), *mb = load(b);
  nde_rhs *ra = NULL, *rb = NULL;
  assert_int_equal(nde_model_create_rhs(ma, 4, &ra, NULL), NDE_OK);
  assert_int_equal(nde_model_create_rhs(mb, 4, &rb, NULL), NDE_OK);
  const size_t P = nde_model_n_theta(ma);
  double *th = calloc(P, sizeof *th), U[8], L[8], fa[8], fb[8], ga[8] = {0}, gb[8] = {0};
  double *gta = calloc(P, sizeof *gta), *gtb = calloc(P, sizeof *gtb);
  nde_rng rng;
  nde_rng_seed(&rng, 12);
  assert_int_equal(nde_model_init_theta(ma, 9, th), NDE_OK);
  nde_test_fill(&rng, 8, -1.3, 1.3, U);
  nde_test_fill(&rng, 8, -1.0, 1.0, L);
  assert_int_equal(nde_rhs_f(ra, 0, 4, U, th, fa, NULL), 0);
  assert_int_equal(nde_rhs_f(rb, 0, 4, U, th, fb, NULL), 0);
  assert_true(nde_test_rel_err(8, fa, fb, 1e-300) <= 1e-15);
  assert_int_equal(nde_rhs_vjp(ra, 0, 4, U, th, L, NULL, ga, gta), 0);
  assert_int_equal(nde_rhs_vjp(rb, 0, 4, U, th, L, NULL, gb, gtb), 0);
  assert_true(nde_test_rel_err(8, ga, gb, 1e-300) <= 1e-14);
  assert_true(nde_test_rel_err(P, gta, gtb, 1e-300) <= 1e-14);
  free(th), free(gta), free(gtb);
  nde_rhs_destroy(&ra);
  nde_rhs_destroy(&rb);
  nde_model_destroy(&ma);
  nde_model_destroy(&mb);
}

/* ---- structure-preserving integrators on HNNs ---- */

/* The solution at t = T from u0 with n_steps steps of method (dopri5: tolerance 1e-13). */
static void solve_to(nde_rhs *rhs, const double *th, const char *method, int n_steps, double T,
                     const double *u0, double *uT) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = method;
  o.steps_per_interval = n_steps;
  o.rtol = 1e-13;
  o.atol = 1e-15;
  o.newton_tol = 1e-13;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  const double t[2] = {0, T};
  double Y[4];
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, th, 1, u0, 2, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  uT[0] = Y[2];
  uT[1] = Y[3];
  nde_solver_destroy(&s);
}

/* Every fixed-step method keeps its registered order on HNNs: a separable energy (every
 * method, the splitting ones too) and a non-separable one. */
static void test_integrators_keep_their_order_on_hnns(void **state) {
  (void)state;
  const char *src[2] = {"state q, p\nnet T : 1 -> 6 softplus -> 1\nnet V : 1 -> 6 tanh -> 1\n"
                        "dq/dt = grad(T(p), p)\ndp/dt = -grad(V(q), q)\n",
                        "state q, p\nnet H : 2 -> 6 tanh -> 6 softplus -> 1\n"
                        "dq/dt = grad(H(q, p), p)\ndp/dt = -grad(H(q, p), q)\n"};
  for (int k = 0; k < 2; k++) {
    nde_model *m = load(src[k]);
    nde_rhs *rhs = NULL;
    assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
    double *th = calloc(nde_model_n_theta(m), sizeof *th);
    assert_int_equal(nde_model_init_theta(m, 21, th), NDE_OK);
    const double u0[2] = {0.8125, -0.3125}, T = 2.0;
    double ref[2];
    solve_to(rhs, th, "dopri5", 1, T, u0, ref);
    for (int i = 0; i < nde_solver_method_count(); i++) {
      const nde_solver_method_info *mi = nde_solver_method_at(i);
      if (mi->adaptive || (mi->needs_split && k == 1)) continue;
      double e[2];
      for (int r = 0; r < 2; r++) {
        double u[2];
        const int n_steps = (mi->order >= 4 ? 16 : 64) << r;
        solve_to(rhs, th, mi->name, n_steps, T, u0, u);
        e[r] = hypot(u[0] - ref[0], u[1] - ref[1]);
      }
      const double order = log2(e[0] / e[1]);
      print_message("%s %-17s observed order %.2f (registry %d)\n", k ? "HNN" : "separable", mi->name,
                    order, mi->order);
      assert_true(fabs(order - mi->order) < 0.3);
    }
    free(th);
    nde_rhs_destroy(&rhs);
    nde_model_destroy(&m);
  }
}

/* The largest |E(u(t)) - E(u(0))| over n_out outputs up to T with steps of size h. */
static double energy_error(nde_rhs *rhs, nde_probe *E, const double *th, const char *method, double h,
                           double T, int n_out) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = method;
  o.dt = h;
  o.newton_tol = 1e-13;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, 1, &s, NULL), NDE_OK);
  double *t = calloc((size_t)n_out, sizeof *t), *Y = calloc((size_t)n_out * 2, sizeof *Y);
  for (int k = 0; k < n_out; k++) t[k] = T * k / (n_out - 1.0);
  Y[0] = 0.7;
  Y[1] = -0.45;
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, th, 1, Y, n_out, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  double e0, worst = 0;
  assert_int_equal(nde_probe_eval(E, 0, 1, Y, th, &e0), 0);
  for (int k = 1; k < n_out; k++) {
    double e;
    assert_int_equal(nde_probe_eval(E, t[k], 1, Y + 2 * k, th, &e), 0);
    worst = fmax(worst, fabs(e - e0));
  }
  free(t);
  free(Y);
  nde_solver_destroy(&s);
  return worst;
}

/* implicit-midpoint conserves a learned energy that is a quadratic form to round-off (it
 * conserves every quadratic invariant), where rk4 drifts; on a non-quadratic learned energy its
 * error is O(h^2) and bounded in time (symplectic), where rk4's grows. */
static void test_implicit_midpoint_conserves_the_learned_energy(void **state) {
  (void)state;
  const char *quad = "state q, p\nparam k = 0.35\nnet N : 2 -> 2\n"
                     "E = N(q, p)[1]^2 + N(q, p)[2]^2 + k*q*p\n"
                     "dq/dt = grad(E, p)\ndp/dt = -grad(E, q)\n";
  /* An oscillator whose energy a tanh net deforms: closed orbits of period about 2 pi. */
  const char *tanh_hnn = "state q, p\nnet H : 2 -> 8 tanh -> 8 tanh -> 1\n"
                         "E = (q^2 + p^2)/2 + 0.3*H(q, p)\n"
                         "dq/dt = grad(E, p)\ndp/dt = -grad(E, q)\n";
  const char *srcs[2] = {quad, tanh_hnn}, *energy[2] = {"E", "E"};
  for (int k = 0; k < 2; k++) {
    nde_model *m = load(srcs[k]);
    nde_rhs *rhs = NULL;
    nde_probe *E = NULL;
    assert_int_equal(nde_model_create_rhs(m, 1, &rhs, NULL), NDE_OK);
    assert_int_equal(nde_probe_create(m, 1, &energy[k], 1, &E, NULL), NDE_OK);
    double *th = calloc(nde_model_n_theta(m) + 1, sizeof *th);
    assert_int_equal(nde_model_init_theta(m, 5, th), NDE_OK);
    const double im = energy_error(rhs, E, th, "implicit-midpoint", 0.05, 200, 2001);
    const double im_short = energy_error(rhs, E, th, "implicit-midpoint", 0.05, 20, 201);
    const double im_half = energy_error(rhs, E, th, "implicit-midpoint", 0.025, 200, 2001);
    const double rk = energy_error(rhs, E, th, "rk4", 0.2, 200, 2001);
    const double rk_short = energy_error(rhs, E, th, "rk4", 0.2, 20, 201);
    print_message("%s energy: implicit-midpoint h = 0.05 max |dE| %.2e on [0, 200] (%.2e on [0, 20]), "
                  "h = 0.025 %.2e; rk4 h = 0.2 %.2e (%.2e on [0, 20])\n",
                  k ? "tanh HNN" : "quadratic", im, im_short, im_half, rk, rk_short);
    if (k == 0) {
      assert_true(im < 1e-12);
      assert_true(rk > 100 * im);
    } else {
      assert_true(im < 1.5 * im_short);            /* bounded in time */
      assert_true(fabs(log2(im / im_half) - 2) < 0.3); /* O(h^2) */
      assert_true(rk > 5 * rk_short);               /* rk4 drifts */
    }
    free(th);
    nde_probe_destroy(&E);
    nde_rhs_destroy(&rhs);
    nde_model_destroy(&m);
  }
}

/* The equations show grad, matrices and equations of several states as written (text) and as
 * nabla, pmatrix and d/dt [q, p] (LaTeX). */
static void test_equations_show_grad_matrices_and_lists(void **state) {
  (void)state;
  nde_model *m = load("state q, p\nparam r = 0.3 (positive)\nnet H : 2 -> 4 tanh -> 1\n"
                      "J = [[0, 1], [-1, 0]]\nR = [[0, 0], [0, r]]\n"
                      "d[q, p]/dt = (J - R) grad(H(q, p), [q, p])\n");
  double *th = calloc(nde_model_n_theta(m), sizeof *th);
  assert_int_equal(nde_model_init_theta(m, 1, th), NDE_OK);
  char *text = NULL, *tex = NULL;
  assert_int_equal(nde_model_format_equations(m, th, NDE_FORMAT_TEXT, 0, &text), NDE_OK);
  assert_int_equal(nde_model_format_equations(m, th, NDE_FORMAT_LATEX, 0, &tex), NDE_OK);
  assert_non_null(strstr(text, "J = [[0, 1], [-1, 0]]\n"));
  assert_non_null(strstr(text, "d[q, p]/dt = (J - R) grad(H(q, p), [q, p])\n"));
  assert_non_null(strstr(tex, "J &= \\begin{pmatrix} 0 & 1 \\\\ -1 & 0 \\end{pmatrix}"));
  assert_non_null(strstr(tex, "\\frac{d}{dt} \\left[q, p\\right] &= \\left(J - R\\right) \\, "
                              "\\nabla_{\\left[q, p\\right]} H\\left(q, p\\right)"));
  free(text);
  free(tex);
  free(th);
  nde_model_destroy(&m);
}

static void test_bad_uses_of_grad_are_refused(void **state) {
  (void)state;
  expect_error("state q, p\nnet H : 2 -> 4 relu -> 1\ndq/dt = grad(H(q, p), p)\ndp/dt = -q\n",
               NDE_ERR_MODEL, "relu");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_the_compiled_hnn_equals_the_hand_written_one),
      cmocka_unit_test(test_hnns_of_every_smooth_activation_match_finite_differences),
      cmocka_unit_test(test_composite_uses_of_grad_match_finite_differences),
      cmocka_unit_test(test_grad_is_the_gradient_of_its_expression),
      cmocka_unit_test(test_two_grads_of_one_hamiltonian_share_one_pass),
      cmocka_unit_test(test_the_matrix_form_equals_the_componentwise_one),
      cmocka_unit_test(test_every_solver_and_gradient_method_runs_an_hnn),
      cmocka_unit_test(test_integrators_keep_their_order_on_hnns),
      cmocka_unit_test(test_implicit_midpoint_conserves_the_learned_energy),
      cmocka_unit_test(test_equations_show_grad_matrices_and_lists),
      cmocka_unit_test(test_bad_uses_of_grad_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
