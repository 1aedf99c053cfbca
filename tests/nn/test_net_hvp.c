/* The forward-over-reverse pass nde_net_vjp_tangent against the first-order passes: Y, Ydot,
 * gX and gtheta equal nde_net_forward, nde_net_jvp and nde_net_vjp to rounding; gXdot and
 * gthetadot match central differences of nde_net_vjp along the tangent (Xdot, thetadot, dYdot),
 * for every activation that second-order passes accept (iterating the enum), scalar and
 * multi-output nets, B = 1 (loops, and dgemm for wide layers) and batches (dgemm).  Hessian-vector
 * products are symmetric, the mixed and dY terms are adjoint to their partners, a linear network
 * has no input Hessian, NULL outputs and inputs behave as documented, and relu is refused. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nde/nn.h"

#define TOL 1e-6 /* central differences with H = 1e-5 */
#define H 1e-5
#define ROUND 1e-13 /* the same quantity computed by two passes */

typedef struct {
  char name[96];
  int n_layers;
  int widths[6];
  nde_act acts[5];
} stack;

#define MAX_STACKS 64
static stack stacks[MAX_STACKS];
static int n_stacks;

static void add_stack(const char *name, int n_layers, const int *w, const nde_act *a) {
  assert_true(n_stacks < MAX_STACKS);
  stack *s = &stacks[n_stacks++];
  snprintf(s->name, sizeof s->name, "%s", name);
  s->n_layers = n_layers;
  for (int l = 0; l <= n_layers; l++) s->widths[l] = w[l];
  for (int l = 0; l < n_layers; l++) s->acts[l] = a[l];
}

/* Per accepted activation: a scalar-output net (a Hamiltonian), a multi-output net with the
 * activation on its last layer, a 1-input net; then fixed mixed stacks, including the HNN shape
 * 2-64-64-1 and a 3-70-40-2 net whose wide layers run as dgemm even at B = 1. */
static void make_stacks(void) {
  n_stacks = 0;
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    if (!nde_act_allows_second_order((nde_act)a)) continue;
    const nde_act act = (nde_act)a;
    char name[96];
    snprintf(name, sizeof name, "2-7-5-1 %s (scalar output)", nde_act_name(act));
    add_stack(name, 3, (const int[]){2, 7, 5, 1}, (const nde_act[]){act, act, NDE_ACT_IDENTITY});
    snprintf(name, sizeof name, "3-6-4 %s %s", nde_act_name(act), nde_act_name(act));
    add_stack(name, 2, (const int[]){3, 6, 4}, (const nde_act[]){act, act});
    snprintf(name, sizeof name, "1-9-3 %s", nde_act_name(act));
    add_stack(name, 2, (const int[]){1, 9, 3}, (const nde_act[]){act, NDE_ACT_IDENTITY});
  }
  add_stack("2-64-64-1 softplus (HNN)", 3, (const int[]){2, 64, 64, 1},
            (const nde_act[]){NDE_ACT_SOFTPLUS, NDE_ACT_SOFTPLUS, NDE_ACT_IDENTITY});
  add_stack("3-70-40-2 tanh gelu identity", 3, (const int[]){3, 70, 40, 2},
            (const nde_act[]){NDE_ACT_TANH, NDE_ACT_GELU, NDE_ACT_IDENTITY});
  add_stack("5-8-6-7-1 sigmoid rbf softplus tanh", 4, (const int[]){5, 8, 6, 7, 1},
            (const nde_act[]){NDE_ACT_SIGMOID, NDE_ACT_RBF, NDE_ACT_SOFTPLUS, NDE_ACT_TANH});
  add_stack("4-3 identity (linear)", 1, (const int[]){4, 3}, (const nde_act[]){NDE_ACT_IDENTITY});
}

static const int batches[] = {1, 3, 17};
#define N_BATCHES (int)(sizeof batches / sizeof batches[0])
#define BMAX 17

typedef struct {
  nde_net *net;
  nde_net_ws *ws;
  int n_in, n_out;
  size_t n_p;
  double *theta, *thd, *X, *Xd, *dY, *dYd;
  double *Y, *Yd, *gX, *gth, *gXd, *gthd; /* the pass's outputs */
  double *Y1, *J1, *gX1, *gth1;           /* first-order references */
  double *tp, *tm, *Xp, *Xm, *dp, *dm, *gXp, *gXm, *gthp, *gthm, *Yp, *Ym, *fdx, *fdt, *fdy;
} fixture;

static double *alloc(size_t n) { return test_calloc(n ? n : 1, sizeof(double)); }

static void setup(fixture *f, const stack *s, uint64_t seed) {
  memset(f, 0, sizeof *f);
  assert_int_equal(nde_net_create(s->n_layers, s->widths, s->acts, &f->net, NULL), NDE_OK);
  assert_int_equal(nde_net_ws_create_second_order(f->net, BMAX, &f->ws), NDE_OK);
  f->n_in = nde_net_n_in(f->net);
  f->n_out = nde_net_n_out(f->net);
  f->n_p = nde_net_n_params(f->net);
  const size_t nx = (size_t)BMAX * f->n_in, ny = (size_t)BMAX * f->n_out, np = f->n_p;
  double **px[] = {&f->X, &f->Xd, &f->gX, &f->gXd, &f->gX1, &f->Xp, &f->Xm, &f->gXp, &f->gXm, &f->fdx};
  double **py[] = {&f->dY, &f->dYd, &f->Y, &f->Yd, &f->Y1, &f->J1, &f->dp, &f->dm, &f->Yp, &f->Ym, &f->fdy};
  double **pp[] = {&f->theta, &f->thd, &f->gth, &f->gthd, &f->gth1, &f->tp, &f->tm, &f->gthp, &f->gthm, &f->fdt};
  for (size_t i = 0; i < sizeof px / sizeof px[0]; i++) *px[i] = alloc(nx);
  for (size_t i = 0; i < sizeof py / sizeof py[0]; i++) *py[i] = alloc(ny);
  for (size_t i = 0; i < sizeof pp / sizeof pp[0]; i++) *pp[i] = alloc(np);
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  assert_int_equal(nde_net_init(f->net, NDE_INIT_GLOROT_NORMAL, 0, &rng, f->theta), NDE_OK);
  for (int l = 0; l < s->n_layers; l++)
    nde_test_fill(&rng, (size_t)s->widths[l + 1], -0.4, 0.6,
                  f->theta + nde_net_bias_offset(f->net, l));
  nde_test_fill(&rng, nx, -1.7, 1.9, f->X);
  nde_test_fill(&rng, nx, -0.9, 1.2, f->Xd);
  nde_test_fill(&rng, ny, -1.3, 1.1, f->dY);
  nde_test_fill(&rng, ny, -0.7, 0.8, f->dYd);
  nde_test_fill(&rng, np, -0.8, 0.7, f->thd);
}

static void teardown(fixture *f) {
  double **p[] = {&f->theta, &f->thd, &f->X,   &f->Xd,   &f->dY,   &f->dYd,  &f->Y,   &f->Yd,
                  &f->gX,    &f->gth, &f->gXd, &f->gthd, &f->Y1,   &f->J1,   &f->gX1, &f->gth1,
                  &f->tp,    &f->tm,  &f->Xp,  &f->Xm,   &f->dp,   &f->dm,   &f->gXp, &f->gXm,
                  &f->gthp,  &f->gthm, &f->Yp, &f->Ym,   &f->fdx,  &f->fdt,  &f->fdy};
  for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) test_free(*p[i]);
  nde_net_ws_destroy(&f->ws);
  nde_net_destroy(&f->net);
}

/* Largest errors seen, per output, for the summary printed at the end. */
static double worst_fd[4], worst_round[4];
static const char *const out_names[4] = {"Ydot", "gXdot", "gthetadot", "Y, gX, gtheta"};

static void expect_below(double err, double tol, const char *what, const stack *s, int B,
                         const char *mode) {
  if (!(err <= tol)) {
    print_error("%s: %s (%s) at B = %d: relative error %.3g > %.3g\n", s->name, what, mode, B,
                err, tol);
    fail();
  }
}

static void fill(double *x, size_t n, double v) {
  for (size_t i = 0; i < n; i++) x[i] = v;
}

/* One check of every output for tangents (Xd, thd, dYd), any of which may be NULL. */
static void check_pass(fixture *f, const stack *s, int B, const double *Xd, const double *thd,
                       const double *dYd, const char *mode) {
  const size_t nx = (size_t)B * f->n_in, ny = (size_t)B * f->n_out, np = f->n_p;
  fill(f->Y, ny, NAN), fill(f->Yd, ny, NAN), fill(f->gX, nx, NAN), fill(f->gXd, nx, NAN);
  memset(f->gth, 0, np * sizeof(double));
  memset(f->gthd, 0, np * sizeof(double));
  assert_int_equal(nde_net_vjp_tangent(f->net, f->theta, B, f->X, Xd, thd, f->dY, dYd, f->Y,
                                       f->Yd, f->gX, f->gth, f->gXd, f->gthd, f->ws),
                   NDE_OK);

  /* First-order outputs against the first-order passes. */
  nde_net_forward(f->net, f->theta, B, f->X, f->Y1, NULL, f->ws);
  nde_net_jvp(f->net, f->theta, B, f->X, Xd, thd, f->J1, f->ws);
  memset(f->gth1, 0, np * sizeof(double));
  nde_net_vjp(f->net, f->theta, B, f->X, f->dY, NULL, f->gX1, f->gth1, f->ws);
  double e = fmax(nde_test_rel_err(ny, f->Y, f->Y1, 1e-3),
                  fmax(nde_test_rel_err(nx, f->gX, f->gX1, 1e-3),
                       nde_test_rel_err(np, f->gth, f->gth1, 1e-3)));
  worst_round[3] = fmax(worst_round[3], e);
  expect_below(e, ROUND, "Y, gX, gtheta against forward and VJP", s, B, mode);
  e = nde_test_rel_err(ny, f->Yd, f->J1, 1e-3);
  worst_round[0] = fmax(worst_round[0], e);
  expect_below(e, ROUND, "Ydot against the JVP", s, B, mode);

  /* Tangent outputs against central differences of the first-order passes. */
  for (size_t i = 0; i < nx; i++) {
    f->Xp[i] = f->X[i] + (Xd ? H * Xd[i] : 0);
    f->Xm[i] = f->X[i] - (Xd ? H * Xd[i] : 0);
  }
  for (size_t i = 0; i < np; i++) {
    f->tp[i] = f->theta[i] + (thd ? H * thd[i] : 0);
    f->tm[i] = f->theta[i] - (thd ? H * thd[i] : 0);
  }
  for (size_t i = 0; i < ny; i++) {
    f->dp[i] = f->dY[i] + (dYd ? H * dYd[i] : 0);
    f->dm[i] = f->dY[i] - (dYd ? H * dYd[i] : 0);
  }
  memset(f->gthp, 0, np * sizeof(double));
  memset(f->gthm, 0, np * sizeof(double));
  nde_net_vjp(f->net, f->tp, B, f->Xp, f->dp, NULL, f->gXp, f->gthp, f->ws);
  nde_net_vjp(f->net, f->tm, B, f->Xm, f->dm, NULL, f->gXm, f->gthm, f->ws);
  nde_net_forward(f->net, f->tp, B, f->Xp, f->Yp, NULL, f->ws);
  nde_net_forward(f->net, f->tm, B, f->Xm, f->Ym, NULL, f->ws);
  for (size_t i = 0; i < nx; i++) f->fdx[i] = (f->gXp[i] - f->gXm[i]) / (2 * H);
  for (size_t i = 0; i < np; i++) f->fdt[i] = (f->gthp[i] - f->gthm[i]) / (2 * H);
  for (size_t i = 0; i < ny; i++) f->fdy[i] = (f->Yp[i] - f->Ym[i]) / (2 * H);
  const double ey = nde_test_rel_err(ny, f->Yd, f->fdy, 1e-3);
  const double ex = nde_test_rel_err(nx, f->gXd, f->fdx, 1e-3);
  const double et = nde_test_rel_err(np, f->gthd, f->fdt, 1e-3);
  worst_fd[0] = fmax(worst_fd[0], ey);
  worst_fd[1] = fmax(worst_fd[1], ex);
  worst_fd[2] = fmax(worst_fd[2], et);
  expect_below(ey, TOL, "Ydot against differences of the forward pass", s, B, mode);
  expect_below(ex, TOL, "gXdot against differences of the VJP's gX", s, B, mode);
  expect_below(et, TOL, "gthetadot against differences of the VJP's gtheta", s, B, mode);
}

static void every_output_matches_the_first_order_passes_and_their_differences(void **state) {
  (void)state;
  make_stacks();
  for (int si = 0; si < n_stacks; si++) {
    fixture f;
    setup(&f, &stacks[si], 7000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      const int B = batches[bi];
      check_pass(&f, &stacks[si], B, f.Xd, NULL, NULL, "Xdot only: Hessian-vector product");
      check_pass(&f, &stacks[si], B, NULL, f.thd, NULL, "thetadot only");
      check_pass(&f, &stacks[si], B, NULL, NULL, f.dYd, "dYdot only");
      check_pass(&f, &stacks[si], B, f.Xd, f.thd, f.dYd, "all three tangents");
      check_pass(&f, &stacks[si], B, NULL, NULL, NULL, "no tangent");
      /* No tangent at all: every tangent output is exactly zero. */
      const size_t nx = (size_t)B * f.n_in, ny = (size_t)B * f.n_out;
      for (size_t i = 0; i < nx; i++) assert_true(f.gXd[i] == 0.0);
      for (size_t i = 0; i < ny; i++) assert_true(f.Yd[i] == 0.0);
      for (size_t i = 0; i < f.n_p; i++) assert_true(f.gthd[i] == 0.0);
    }
    teardown(&f);
  }
  for (int k = 0; k < 4; k++)
    print_message("%-14s largest error: %.2g against differences, %.2g against the first-order passes\n",
                  out_names[k], k < 3 ? worst_fd[k] : 0.0, worst_round[k]);
}

/* Per row, u^T Hess v = v^T Hess u (Hessian of dY . N in X), the mixed term is the transpose of
 * the parameter tangent of gX, and Ydot = J Xdot is the transpose of gXdot along dYdot. */
static void second_derivatives_are_symmetric_and_adjoint_to_rounding(void **state) {
  (void)state;
  make_stacks();
  for (int si = 0; si < n_stacks; si++) {
    fixture f;
    setup(&f, &stacks[si], 8000 + (uint64_t)si);
    const int in = f.n_in;
    for (int bi = 0; bi < N_BATCHES; bi++) {
      const int B = batches[bi];
      const size_t nx = (size_t)B * in, ny = (size_t)B * f.n_out, np = f.n_p;
      double *u = f.Xp, *Hu = f.gXp, *Hv = f.gXm;
      nde_rng rng;
      nde_rng_seed(&rng, 99 + (uint64_t)B);
      nde_test_fill(&rng, nx, -1.1, 0.9, u);
      /* Hessian-vector products along v = Xd and along u. */
      memset(f.gthd, 0, np * sizeof(double));
      assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, NULL, f.dY, NULL, NULL,
                                           f.Yd, NULL, NULL, Hv, f.gthd, f.ws),
                       NDE_OK);
      assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, u, NULL, f.dY, NULL, NULL,
                                           NULL, NULL, NULL, Hu, NULL, f.ws),
                       NDE_OK);
      for (int r = 0; r < B; r++) {
        const double *ur = u + (size_t)r * in, *vr = f.Xd + (size_t)r * in;
        double uHv = nde_test_dot((size_t)in, ur, Hv + (size_t)r * in);
        double vHu = nde_test_dot((size_t)in, vr, Hu + (size_t)r * in);
        double scale = sqrt(nde_test_dot((size_t)in, Hv + (size_t)r * in, Hv + (size_t)r * in) *
                            nde_test_dot((size_t)in, ur, ur));
        check_rel(uHv, vHu, 1e-12, fmax(scale, 1e-12));
      }
      /* The mixed term: thetadot . grad_theta(v . gX) = v . (d gX / d theta) thetadot. */
      double *gXt = f.gXd;
      assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, NULL, f.thd, f.dY, NULL, NULL,
                                           NULL, NULL, NULL, gXt, NULL, f.ws),
                       NDE_OK);
      check_rel(nde_test_dot(np, f.thd, f.gthd), nde_test_dot(nx, f.Xd, gXt), 1e-12, 1e-9);
      /* The dY term: dYdot . (J v) = v . (J^T dYdot). */
      assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, NULL, NULL, f.dY, f.dYd, NULL,
                                           NULL, NULL, NULL, gXt, NULL, f.ws),
                       NDE_OK);
      check_rel(nde_test_dot(ny, f.dYd, f.Yd), nde_test_dot(nx, f.Xd, gXt), 1e-12, 1e-9);
    }
    teardown(&f);
  }
}

static void a_linear_network_has_no_input_hessian(void **state) {
  (void)state;
  const int w[] = {4, 5, 3};
  const nde_act a[] = {NDE_ACT_IDENTITY, NDE_ACT_IDENTITY};
  stack s;
  memset(&s, 0, sizeof s);
  add_stack("4-5-3 identity identity", 2, w, a);
  s = stacks[n_stacks - 1];
  fixture f;
  setup(&f, &s, 31);
  for (int bi = 0; bi < N_BATCHES; bi++) {
    const int B = batches[bi];
    memset(f.gthd, 0, f.n_p * sizeof(double));
    assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, NULL, f.dY, NULL, NULL,
                                         NULL, NULL, NULL, f.gXd, f.gthd, f.ws),
                     NDE_OK);
    for (size_t i = 0; i < (size_t)B * f.n_in; i++) assert_true(f.gXd[i] == 0.0);
    /* The mixed term of a linear map is not zero: d/dW (w . W^T dY) = dY w^T. */
    double s2 = nde_test_dot(f.n_p, f.gthd, f.gthd);
    assert_true(s2 > 1e-3);
  }
  teardown(&f);
}

/* Skipped outputs change nothing in the others; gtheta and gthetadot accumulate. */
static void null_outputs_are_skipped_and_parameter_outputs_accumulate(void **state) {
  (void)state;
  make_stacks();
  for (int si = 0; si < n_stacks; si++) {
    fixture f;
    setup(&f, &stacks[si], 9000 + (uint64_t)si);
    for (int bi = 0; bi < N_BATCHES; bi++) {
      const int B = batches[bi];
      const size_t nx = (size_t)B * f.n_in, ny = (size_t)B * f.n_out, np = f.n_p;
      memset(f.gth, 0, np * sizeof(double));
      memset(f.gthd, 0, np * sizeof(double));
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, f.Y, f.Yd, f.gX,
                          f.gth, f.gXd, f.gthd, f.ws);
      /* Each output alone. */
      double *o = f.fdx, *op = f.fdt, *oy = f.fdy;
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, NULL, NULL, NULL,
                          NULL, o, NULL, f.ws);
      expect_below(nde_test_rel_err(nx, o, f.gXd, 1e-3), 1e-14, "gXdot alone", &stacks[si], B, "");
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, NULL, NULL, o, NULL,
                          NULL, NULL, f.ws);
      expect_below(nde_test_rel_err(nx, o, f.gX, 1e-3), 1e-14, "gX alone", &stacks[si], B, "");
      memset(op, 0, np * sizeof(double));
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, NULL, NULL, NULL,
                          NULL, NULL, op, f.ws);
      expect_below(nde_test_rel_err(np, op, f.gthd, 1e-3), 1e-14, "gthetadot alone", &stacks[si],
                   B, "");
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, NULL, NULL, NULL, op,
                          NULL, op, f.ws);
      for (size_t i = 0; i < np; i++) check_close(op[i], 2 * f.gthd[i] + f.gth[i], 1e-14);
      /* Forward outputs alone need no dY. */
      assert_int_equal(nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, NULL, NULL, NULL,
                                           oy, NULL, NULL, NULL, NULL, f.ws),
                       NDE_OK);
      expect_below(nde_test_rel_err(ny, oy, f.Yd, 1e-3), 1e-14, "Ydot alone", &stacks[si], B, "");
      /* gX given right after gXdot in one array (the stacked dgemm) gives the same numbers. */
      double *both = test_calloc(2 * nx, sizeof(double));
      nde_net_vjp_tangent(f.net, f.theta, B, f.X, f.Xd, f.thd, f.dY, f.dYd, NULL, NULL,
                          both + nx, NULL, both, NULL, f.ws);
      expect_below(nde_test_rel_err(nx, both, f.gXd, 1e-3), 1e-14, "stacked gXdot", &stacks[si], B, "");
      expect_below(nde_test_rel_err(nx, both + nx, f.gX, 1e-3), 1e-14, "stacked gX", &stacks[si], B, "");
      test_free(both);
    }
    teardown(&f);
  }
}

static void relu_and_bad_arguments_are_refused_with_nan_outputs(void **state) {
  (void)state;
  const int w[] = {2, 6, 1};
  const nde_act relu[] = {NDE_ACT_RELU, NDE_ACT_IDENTITY};
  const nde_act smooth[] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  nde_net *r = NULL, *net = NULL;
  nde_net_ws *ws = NULL, *ws1 = NULL, *wsr = NULL;
  assert_int_equal(nde_net_create(2, w, relu, &r, NULL), NDE_OK);
  assert_int_equal(nde_net_create(2, w, smooth, &net, NULL), NDE_OK);
  assert_int_equal(nde_net_allows_second_order(r), 0);
  assert_int_equal(nde_net_allows_second_order(net), 1);
  assert_int_equal(nde_net_allows_second_order(NULL), 0);
  assert_int_equal(nde_net_ws_create_second_order(r, 4, &ws), NDE_ERR_UNSUPPORTED);
  assert_null(ws);
  assert_int_equal(nde_net_ws_create_second_order(net, 0, &ws), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create_second_order(NULL, 4, &ws), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create_second_order(net, 4, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_net_ws_create_second_order(net, 4, &ws), NDE_OK);
  assert_int_equal(nde_net_ws_create(net, 4, &ws1), NDE_OK);
  assert_int_equal(nde_net_ws_create(r, 4, &wsr), NDE_OK);

  /* Room for 5 rows: the call with B = 5 fills its outputs with NaN. */
  double theta[32] = {0}, X[10] = {0.3, -0.2, 0.7, 0.1, 0.5, 0.4, -0.6, 0.9, 0.2, 0.8};
  double dY[5] = {1, 1, 1, 1, 1}, Y[5], gX[10], gXd[10], gth[32] = {0};
  assert_true(nde_net_n_params(net) <= 32);
#define RESET() (fill(Y, 4, 0), fill(gX, 8, 0), fill(gXd, 8, 0))
#define ALL_NAN() (isnan(Y[0]) && isnan(Y[3]) && isnan(gX[0]) && isnan(gX[7]) && isnan(gXd[7]))
  /* relu, even with a workspace the right size (one made for the tanh net of the same shape). */
  RESET();
  assert_int_equal(nde_net_vjp_tangent(r, theta, 4, X, X, NULL, dY, NULL, Y, NULL, gX, gth, gXd,
                                       NULL, ws),
                   NDE_ERR_UNSUPPORTED);
  assert_true(ALL_NAN());
  for (int i = 0; i < 32; i++) assert_true(gth[i] == 0.0);
  /* A first-order workspace, a batch too large, missing inputs. */
  RESET();
  assert_int_equal(nde_net_vjp_tangent(net, theta, 4, X, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws1),
                   NDE_ERR_ARG);
  assert_true(ALL_NAN());
  RESET();
  assert_int_equal(nde_net_vjp_tangent(net, theta, 5, X, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  assert_true(ALL_NAN() && isnan(Y[4]) && isnan(gX[9]));
  RESET();
  assert_int_equal(nde_net_vjp_tangent(net, theta, 4, X, X, NULL, NULL, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  assert_true(ALL_NAN());
  assert_int_equal(nde_net_vjp_tangent(net, NULL, 4, X, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  assert_int_equal(nde_net_vjp_tangent(net, theta, 4, NULL, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  assert_int_equal(nde_net_vjp_tangent(net, theta, 0, X, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  assert_int_equal(nde_net_vjp_tangent(NULL, theta, 4, X, X, NULL, dY, NULL, Y, NULL, gX, NULL,
                                       gXd, NULL, ws),
                   NDE_ERR_ARG);
  /* The first-order passes still run the relu net. */
  nde_net_vjp(r, theta, 4, X, dY, NULL, gX, NULL, wsr);
  assert_false(isnan(gX[0]));
#undef RESET
#undef ALL_NAN
  nde_net_ws_destroy(&ws);
  nde_net_ws_destroy(&ws1);
  nde_net_ws_destroy(&wsr);
  nde_net_destroy(&r);
  nde_net_destroy(&net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_output_matches_the_first_order_passes_and_their_differences),
      cmocka_unit_test(second_derivatives_are_symmetric_and_adjoint_to_rounding),
      cmocka_unit_test(a_linear_network_has_no_input_hessian),
      cmocka_unit_test(null_outputs_are_skipped_and_parameter_outputs_accumulate),
      cmocka_unit_test(relu_and_bad_arguments_are_refused_with_nan_outputs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
