/* Network derivatives against central finite differences: VJP (input and parameter
 * cotangents) and JVP (input and parameter tangents) on several activation stacks, for B = 1
 * (direct loops for small layers, one loop for the bottom two layers around a hidden layer
 * between <= 4 inputs and <= 4 outputs, dgemm for the 70 x 40 one) and batches (dgemm); cache and
 * no-cache VJP agree,
 * gtheta accumulates, and <dY, J v> = <J^T dY, v> ties the two passes together. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nde/nn.h"

#define TOL 1e-6
#define H 1e-5

typedef struct {
  const char *name;
  int n_layers;
  int widths[6];
  nde_act acts[5];
} stack;

static const stack stacks[] = {
    {"2-50-2 tanh", 2, {2, 50, 2}, {NDE_ACT_TANH, NDE_ACT_IDENTITY}},
    {"2-5-5-5-2 rbf", 4, {2, 5, 5, 5, 2}, {NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_IDENTITY}},
    {"3-6-5-4-7-2 gelu sigmoid relu softplus tanh",
     5,
     {3, 6, 5, 4, 7, 2},
     {NDE_ACT_GELU, NDE_ACT_SIGMOID, NDE_ACT_RELU, NDE_ACT_SOFTPLUS, NDE_ACT_TANH}},
    {"9-12-1 softplus gelu", 2, {9, 12, 1}, {NDE_ACT_SOFTPLUS, NDE_ACT_GELU}},
    {"1-9-4-6-3 tanh relu sigmoid identity (1- and 4-input row kernels)",
     4,
     {1, 9, 4, 6, 3},
     {NDE_ACT_TANH, NDE_ACT_RELU, NDE_ACT_SIGMOID, NDE_ACT_IDENTITY}},
    /* One hidden layer between <= 4 inputs and <= 4 outputs: at B = 1 the reverse pass takes
     * the bottom two layers in one loop (every input and output count, every activation). */
    {"1-6-1 sigmoid", 2, {1, 6, 1}, {NDE_ACT_SIGMOID, NDE_ACT_IDENTITY}},
    {"3-8-4 softplus", 2, {3, 8, 4}, {NDE_ACT_SOFTPLUS, NDE_ACT_IDENTITY}},
    {"4-9-3 gelu tanh", 2, {4, 9, 3}, {NDE_ACT_GELU, NDE_ACT_TANH}},
    {"2-7-1 rbf", 2, {2, 7, 1}, {NDE_ACT_RBF, NDE_ACT_IDENTITY}},
    {"4-5-2 relu sigmoid", 2, {4, 5, 2}, {NDE_ACT_RELU, NDE_ACT_SIGMOID}},
    {"1-10-3 identity tanh", 2, {1, 10, 3}, {NDE_ACT_IDENTITY, NDE_ACT_TANH}},
    {"3-70-40-2 tanh relu identity",
     3,
     {3, 70, 40, 2},
     {NDE_ACT_TANH, NDE_ACT_RELU, NDE_ACT_IDENTITY}},
};
#define N_STACKS (int)(sizeof stacks / sizeof stacks[0])

static const int batches[] = {1, 3, 5, 17};
#define N_BATCHES (int)(sizeof batches / sizeof batches[0])
#define BMAX 17

typedef struct {
  nde_net *net;
  nde_net_ws *ws;
  int n_in, n_out;
  size_t n_p;
  double *theta, *X, *dY, *V, *Vth;
  double *Y, *Yp, *Ym, *tp, *tm, *Xp, *Xm, *gX, *gth, *gth2, *fd, *JV, *cache;
} fixture;

static double *alloc(size_t n) { return test_calloc(n ? n : 1, sizeof(double)); }

static void setup(fixture *f, const stack *s, uint64_t seed) {
  memset(f, 0, sizeof *f);
  assert_int_equal(nde_net_create(s->n_layers, s->widths, s->acts, &f->net, NULL), NDE_OK);
  assert_int_equal(nde_net_ws_create(f->net, BMAX, &f->ws), NDE_OK);
  f->n_in = nde_net_n_in(f->net);
  f->n_out = nde_net_n_out(f->net);
  f->n_p = nde_net_n_params(f->net);
  size_t nx = (size_t)BMAX * f->n_in, ny = (size_t)BMAX * f->n_out;
  f->theta = alloc(f->n_p), f->tp = alloc(f->n_p), f->tm = alloc(f->n_p);
  f->Vth = alloc(f->n_p), f->gth = alloc(f->n_p), f->gth2 = alloc(f->n_p);
  f->fd = alloc(f->n_p > nx ? f->n_p : nx);
  f->X = alloc(nx), f->Xp = alloc(nx), f->Xm = alloc(nx), f->V = alloc(nx), f->gX = alloc(nx);
  f->dY = alloc(ny), f->Y = alloc(ny), f->Yp = alloc(ny), f->Ym = alloc(ny), f->JV = alloc(ny);
  f->cache = alloc(nde_net_cache_size(f->net, BMAX));
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  assert_int_equal(nde_net_init(f->net, NDE_INIT_GLOROT_NORMAL, 0, &rng, f->theta), NDE_OK);
  /* Non-zero biases, so that their gradients and the bias path are exercised. */
  for (int l = 0; l < s->n_layers; l++)
    nde_test_fill(&rng, (size_t)s->widths[l + 1], -0.4, 0.6,
                  f->theta + nde_net_bias_offset(f->net, l));
  nde_test_fill(&rng, nx, -1.7, 1.9, f->X);
  nde_test_fill(&rng, ny, -1.3, 1.1, f->dY);
  nde_test_fill(&rng, nx, -0.9, 1.2, f->V);
  nde_test_fill(&rng, f->n_p, -0.8, 0.7, f->Vth);
}

static void teardown(fixture *f) {
  double **p[] = {&f->theta, &f->tp, &f->tm, &f->Vth, &f->gth, &f->gth2, &f->fd, &f->X, &f->Xp,
                  &f->Xm,    &f->V,  &f->gX, &f->dY,  &f->Y,   &f->Yp,   &f->Ym, &f->JV, &f->cache};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) test_free(*p[i]);
  nde_net_ws_destroy(&f->ws);
  nde_net_destroy(&f->net);
}

/* <dY, net(X; theta)> over B rows. */
static double objective(fixture *f, int B, const double *X, const double *theta) {
  nde_net_forward(f->net, theta, B, X, f->Y, NULL, f->ws);
  return nde_test_dot((size_t)B * f->n_out, f->dY, f->Y);
}

static void expect_below(double err, double tol, const char *what, const stack *s, int B) {
  if (!(err <= tol)) {
    print_error("%s: %s at B = %d: relative error %.3g\n", s->name, what, B, err);
    fail();
  }
}

static void vjp_matches_finite_differences_in_input_and_parameters(void **state) {
  (void)state;
  for (int si = 0; si < N_STACKS; si++) {
    fixture f;
    setup(&f, &stacks[si], 1000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      int B = batches[bi];
      size_t nx = (size_t)B * f.n_in;
      for (size_t i = 0; i < nx; i++) f.gX[i] = NAN; /* must be overwritten */
      memset(f.gth, 0, f.n_p * sizeof(double));
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, f.gX, f.gth, f.ws);

      memcpy(f.Xp, f.X, nx * sizeof(double));
      for (size_t i = 0; i < nx; i++) {
        double x = f.X[i];
        f.Xp[i] = x + H;
        double sp = objective(&f, B, f.Xp, f.theta);
        f.Xp[i] = x - H;
        double sm = objective(&f, B, f.Xp, f.theta);
        f.Xp[i] = x;
        f.fd[i] = (sp - sm) / (2 * H);
      }
      expect_below(nde_test_rel_err(nx, f.gX, f.fd, 1e-3), TOL, "VJP gX", &stacks[si], B);

      memcpy(f.tp, f.theta, f.n_p * sizeof(double));
      for (size_t i = 0; i < f.n_p; i++) {
        double t = f.theta[i];
        f.tp[i] = t + H;
        double sp = objective(&f, B, f.X, f.tp);
        f.tp[i] = t - H;
        double sm = objective(&f, B, f.X, f.tp);
        f.tp[i] = t;
        f.fd[i] = (sp - sm) / (2 * H);
      }
      expect_below(nde_test_rel_err(f.n_p, f.gth, f.fd, 1e-3), TOL, "VJP gtheta", &stacks[si], B);
    }
    teardown(&f);
  }
}

static void jvp_matches_finite_differences_in_input_and_parameters(void **state) {
  (void)state;
  for (int si = 0; si < N_STACKS; si++) {
    fixture f;
    setup(&f, &stacks[si], 2000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      int B = batches[bi];
      size_t nx = (size_t)B * f.n_in, ny = (size_t)B * f.n_out;
      /* Input tangent only, parameter tangent only, and both at once. */
      for (int mode = 0; mode < 3; mode++) {
        const double *V = mode != 1 ? f.V : NULL, *Vth = mode != 0 ? f.Vth : NULL;
        for (size_t i = 0; i < nx; i++) {
          f.Xp[i] = f.X[i] + (V ? H * V[i] : 0);
          f.Xm[i] = f.X[i] - (V ? H * V[i] : 0);
        }
        for (size_t i = 0; i < f.n_p; i++) {
          f.tp[i] = f.theta[i] + (Vth ? H * Vth[i] : 0);
          f.tm[i] = f.theta[i] - (Vth ? H * Vth[i] : 0);
        }
        nde_net_forward(f.net, f.tp, B, f.Xp, f.Yp, NULL, f.ws);
        nde_net_forward(f.net, f.tm, B, f.Xm, f.Ym, NULL, f.ws);
        for (size_t i = 0; i < ny; i++) f.fd[i] = (f.Yp[i] - f.Ym[i]) / (2 * H);
        for (size_t i = 0; i < ny; i++) f.JV[i] = NAN;
        nde_net_jvp(f.net, f.theta, B, f.X, V, Vth, f.JV, f.ws);
        static const char *what[3] = {"JVP in X", "JVP in theta", "JVP in X and theta"};
        expect_below(nde_test_rel_err(ny, f.JV, f.fd, 1e-3), TOL, what[mode], &stacks[si], B);
      }
      /* No tangent at all: exactly zero. */
      for (size_t i = 0; i < ny; i++) f.JV[i] = NAN;
      nde_net_jvp(f.net, f.theta, B, f.X, NULL, NULL, f.JV, f.ws);
      for (size_t i = 0; i < ny; i++) assert_true(f.JV[i] == 0.0);
    }
    teardown(&f);
  }
}

/* <dY, J V + J_theta Vth> = <J^T dY, V> + <J_theta^T dY, Vth> to rounding: the two passes are
 * transposes of each other. */
static void jvp_and_vjp_are_adjoint_to_rounding(void **state) {
  (void)state;
  for (int si = 0; si < N_STACKS; si++) {
    fixture f;
    setup(&f, &stacks[si], 3000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      int B = batches[bi];
      size_t nx = (size_t)B * f.n_in, ny = (size_t)B * f.n_out;
      nde_net_jvp(f.net, f.theta, B, f.X, f.V, f.Vth, f.JV, f.ws);
      memset(f.gth, 0, f.n_p * sizeof(double));
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, f.gX, f.gth, f.ws);
      double lhs = nde_test_dot(ny, f.dY, f.JV);
      double rhs = nde_test_dot(nx, f.gX, f.V) + nde_test_dot(f.n_p, f.gth, f.Vth);
      check_close(lhs, rhs, 1e-12);
    }
    teardown(&f);
  }
}

static void vjp_with_the_forward_cache_equals_vjp_without_it(void **state) {
  (void)state;
  for (int si = 0; si < N_STACKS; si++) {
    fixture f;
    setup(&f, &stacks[si], 4000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      int B = batches[bi];
      size_t nx = (size_t)B * f.n_in;
      double *gX2 = alloc(nx);
      memset(f.gth, 0, f.n_p * sizeof(double));
      memset(f.gth2, 0, f.n_p * sizeof(double));
      nde_net_forward(f.net, f.theta, B, f.X, f.Y, f.cache, f.ws);
      /* Clobber the workspace with another input, so only the cache can carry the state. */
      nde_net_forward(f.net, f.theta, B, f.V, f.Yp, NULL, f.ws);
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, f.cache, f.gX, f.gth, f.ws);
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, gX2, f.gth2, f.ws);
      expect_below(nde_test_rel_err(nx, f.gX, gX2, 0), 1e-15, "cached gX", &stacks[si], B);
      expect_below(nde_test_rel_err(f.n_p, f.gth, f.gth2, 0), 1e-15, "cached gtheta",
                   &stacks[si], B);
      /* A cache from a different input gives a different answer: the cache is really used. */
      nde_net_forward(f.net, f.theta, B, f.V, f.Yp, f.cache, f.ws);
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, f.cache, gX2, NULL, f.ws);
      assert_true(nde_test_rel_err(nx, f.gX, gX2, 0) > 1e-6);
      test_free(gX2);
    }
    teardown(&f);
  }
}

static void vjp_accumulates_gtheta_and_skips_null_outputs(void **state) {
  (void)state;
  for (int si = 0; si < N_STACKS; si++) {
    fixture f;
    setup(&f, &stacks[si], 5000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      int B = batches[bi];
      size_t nx = (size_t)B * f.n_in;
      memset(f.gth, 0, f.n_p * sizeof(double));
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, f.gX, f.gth, f.ws);
      memcpy(f.gth2, f.gth, f.n_p * sizeof(double));
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, f.gX, f.gth, f.ws);
      for (size_t i = 0; i < f.n_p; i++) check_close(f.gth[i], 2 * f.gth2[i], 1e-15);

      /* gtheta NULL: gX alone is the same; gX NULL: gtheta alone is the same. */
      double *gX2 = alloc(nx);
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, gX2, NULL, f.ws);
      assert_memory_equal(gX2, f.gX, nx * sizeof(double));
      memset(f.gth, 0, f.n_p * sizeof(double));
      nde_net_vjp(f.net, f.theta, B, f.X, f.dY, NULL, NULL, f.gth, f.ws);
      assert_memory_equal(f.gth, f.gth2, f.n_p * sizeof(double));
      test_free(gX2);
    }
    teardown(&f);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(vjp_matches_finite_differences_in_input_and_parameters),
      cmocka_unit_test(jvp_matches_finite_differences_in_input_and_parameters),
      cmocka_unit_test(jvp_and_vjp_are_adjoint_to_rounding),
      cmocka_unit_test(vjp_with_the_forward_cache_equals_vjp_without_it),
      cmocka_unit_test(vjp_accumulates_gtheta_and_skips_null_outputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
