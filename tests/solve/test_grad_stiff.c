/* A stiff universal differential equation: Robertson's kinetics (Robertson 1966) with the first
 * reaction's rate replaced by a small network,
 *   r = y1 (0.04 + 0.01 NN(y)),  NN = 3 -> 4 tanh -> 1,
 *   y1' = -r + 1e4 y2 y3,  y2' = r - 1e4 y2 y3 - 3e7 y2^2,  y3' = 3e7 y2^2,
 * written as a C callback.  Gradients through cvode-bdf with the CVODES adjoint (interp) and with
 * forward sensitivities are finite and match central finite differences of the loss computed
 * with cvode-bdf at rtol = 1e-11. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nde/grad.h"
#include "nde/nn.h"

typedef struct srob {
  nde_net *net;
  nde_net_ws *ws;
  double X[3], N[1], G[3];
} srob;

static int sr_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                double *cache) {
  (void)t;
  (void)cache;
  srob *c = ctx;
  for (int b = 0; b < B; b++) {
    const double *y = U + 3 * b;
    nde_net_forward(c->net, th, 1, y, c->N, NULL, c->ws);
    const double r = y[0] * (0.04 + 0.01 * c->N[0]);
    double *d = dU + 3 * b;
    d[0] = -r + 1e4 * y[1] * y[2];
    d[2] = 3e7 * y[1] * y[1];
    d[1] = -d[0] - d[2];
  }
  return 0;
}

static int sr_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                  const double *cache, double *gU, double *gth) {
  (void)t;
  (void)cache;
  srob *c = ctx;
  for (int b = 0; b < B; b++) {
    const double *y = U + 3 * b, *l = L + 3 * b;
    const double a = l[0] - l[1], cc = l[2] - l[1];
    nde_net_forward(c->net, th, 1, y, c->N, NULL, c->ws);
    /* d0 = -r + ..., d1 = -d0 - d2: the cotangent of r is -a. */
    const double rbar = -a;
    const double nbar = rbar * y[0] * 0.01;
    nde_net_vjp(c->net, th, 1, y, &nbar, NULL, gU ? c->G : NULL, gth, c->ws);
    if (gU) {
      gU[3 * b] += rbar * (0.04 + 0.01 * c->N[0]) + c->G[0];
      gU[3 * b + 1] += 1e4 * y[2] * a + 6e7 * y[1] * cc + c->G[1];
      gU[3 * b + 2] += 1e4 * y[1] * a + c->G[2];
    }
  }
  return 0;
}

static int sr_jvp(void *ctx, double t, int B, const double *U, const double *th, const double *V,
                  const double *Vth, double *JV) {
  (void)t;
  srob *c = ctx;
  for (int b = 0; b < B; b++) {
    const double *y = U + 3 * b;
    const double *v = V ? V + 3 * b : NULL;
    nde_net_forward(c->net, th, 1, y, c->N, NULL, c->ws);
    double dn = 0.0;
    if (v || Vth) nde_net_jvp(c->net, th, 1, y, v, Vth, &dn, c->ws);
    double dr = y[0] * 0.01 * dn, d0 = 0, d2 = 0;
    if (v) {
      dr += v[0] * (0.04 + 0.01 * c->N[0]);
      d0 = 1e4 * (v[1] * y[2] + y[1] * v[2]);
      d2 = 6e7 * y[1] * v[1];
    }
    d0 -= dr;
    JV[3 * b] = d0;
    JV[3 * b + 2] = d2;
    JV[3 * b + 1] = -d0 - d2;
  }
  return 0;
}

static void sr_destroy(void *ctx) {
  srob *c = ctx;
  nde_net_ws_destroy(&c->ws);
  nde_net_destroy(&c->net);
  free(c);
}

#define K_OBS 6

typedef struct setup {
  nde_rhs *rhs;
  size_t P;
  double *theta;
  double t[K_OBS], obs[K_OBS * 3], U0[3], w[3];
  nde_obs_loss loss;
} setup;

static void build(setup *S) {
  memset(S, 0, sizeof *S);
  srob *c = calloc(1, sizeof *c);
  const int widths[3] = {3, 4, 1};
  const nde_act acts[2] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  assert_int_equal(nde_net_create(2, widths, acts, &c->net, NULL), NDE_OK);
  assert_int_equal(nde_net_ws_create(c->net, 1, &c->ws), NDE_OK);
  S->P = nde_net_n_params(c->net);
  nde_rhs_ops ops = {.f = sr_f, .vjp = sr_vjp, .jvp = sr_jvp, .destroy = sr_destroy};
  nde_rhs_info info = {3, S->P, 1, 0, NULL};
  S->theta = calloc(S->P, sizeof(double));
  nde_rng rng;
  nde_rng_seed(&rng, 1966);
  assert_int_equal(nde_net_init(c->net, NDE_INIT_GLOROT_NORMAL, 0, &rng, S->theta), NDE_OK);
  for (size_t i = 0; i < S->P; i++) S->theta[i] += 0.05 * nde_rng_normal(&rng); /* biases too */
  assert_int_equal(nde_rhs_create(&ops, c, NDE_TAKE, &info, &S->rhs, NULL), NDE_OK);
  const double t[K_OBS] = {0, 0.04, 0.4, 4, 40, 400};
  memcpy(S->t, t, sizeof t);
  S->U0[0] = 1.0;
  /* Observations: the reference Robertson solution (cvRoberts_dns.out) at 0.4, 4, 40, 400, and
   * the early transient; y2 is weighted up to its scale. */
  const double obs[K_OBS * 3] = {1, 0, 0, 0.99840, 3.0e-5, 1.57e-3, 9.851641e-01, 3.386242e-05,
                                 1.480205e-02, 9.055097e-01, 2.240338e-05, 9.446793e-02,
                                 7.158017e-01, 9.185037e-06, 2.841892e-01, 4.505360e-01,
                                 3.223271e-06, 5.494608e-01};
  memcpy(S->obs, obs, sizeof obs);
  S->w[0] = 1;
  S->w[1] = 1e8;
  S->w[2] = 1;
  S->loss.obs = S->obs;
  S->loss.weight = S->w;
}

static double loss_with(setup *S, const char *gm, double rtol, const double *theta, double *g,
                        nde_grad_stats *gs) {
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "cvode-bdf";
  o.rtol = rtol;
  o.atol = 1e-6 * rtol;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(S->rhs, &o, 1, &s, NULL), NDE_OK);
  nde_grad_opts go = nde_grad_opts_default();
  go.method = gm;
  nde_grad *gr = NULL;
  assert_int_equal(nde_grad_create(s, &go, &gr, NULL), NDE_OK);
  double L;
  nde_status st = nde_grad_eval(gr, theta, 1, S->U0, K_OBS, S->t, nde_obs_loss_eval, &S->loss,
                                &L, g, NULL, NULL, gs);
  if (st != NDE_OK) print_error("%s\n", nde_grad_errmsg(gr));
  assert_int_equal(st, NDE_OK);
  nde_grad_destroy(&gr);
  nde_solver_destroy(&s);
  return L;
}

static void stiff_network_model_gets_checked_gradients_through_cvode_bdf(void **state) {
  (void)state;
  setup S;
  build(&S);
  double *gi = calloc(S.P, sizeof(double)), *gf = calloc(S.P, sizeof(double));
  double *d = calloc(S.P, sizeof(double)), *tp = calloc(S.P, sizeof(double));
  nde_grad_stats gs;
  const double L = loss_with(&S, "interp", 1e-8, S.theta, gi, &gs);
  print_message("loss %.6e; interp: fwd %ld steps, bwd %ld steps, %ld vjp\n", L,
                gs.forward.n_steps, gs.backward.n_steps, gs.n_vjp);
  assert_int_equal(gs.backward.reason, NDE_REASON_NONE);
  loss_with(&S, "forward", 1e-8, S.theta, gf, &gs);
  for (size_t i = 0; i < S.P; i++) assert_true(isfinite(gi[i]) && isfinite(gf[i]));
  nde_rng rng;
  nde_rng_seed(&rng, 31);
  for (int trial = 0; trial < 2; trial++) {
    for (size_t i = 0; i < S.P; i++) d[i] = nde_rng_normal(&rng);
    const double eps = 1e-4;
    double Lp[4];
    const double off[4] = {-2, -1, 1, 2};
    for (int j = 0; j < 4; j++) {
      for (size_t i = 0; i < S.P; i++) tp[i] = S.theta[i] + off[j] * eps * d[i];
      Lp[j] = loss_with(&S, "interp", 1e-11, tp, NULL, NULL);
    }
    const double fd = (Lp[0] - 8 * Lp[1] + 8 * Lp[2] - Lp[3]) / (12 * eps);
    const double ai = nde_test_dot(S.P, gi, d), af = nde_test_dot(S.P, gf, d);
    print_message("direction %d: interp %.10e forward %.10e fd %.10e\n", trial, ai, af, fd);
    check_rel(ai, fd, 1e-4, 1e-8);
    check_rel(af, fd, 1e-4, 1e-8);
  }
  free(gi);
  free(gf);
  free(d);
  free(tp);
  free(S.theta);
  nde_rhs_destroy(&S.rhs);
}

/* CVODES's backward pass replays the forward solve from its first checkpoint and leaves that
 * solve's first step set on the forward memory: the next gradient on the same evaluator started
 * from it instead of its own estimate, so a fit's loss depended on which thread's evaluator ran
 * a piece (3e-7 relative on a Michaelis-Menten UDE), and a resumed fit left the path of the
 * uninterrupted one. */
static void an_interp_gradient_does_not_depend_on_the_gradient_before_it(void **state) {
  (void)state;
  setup S;
  build(&S);
  nde_solver_opts o = nde_solver_opts_default();
  o.method = "cvode-bdf";
  o.rtol = 1e-7;
  o.atol = 1e-13;
  nde_solver *s1 = NULL, *s2 = NULL;
  assert_int_equal(nde_solver_create(S.rhs, &o, 1, &s1, NULL), NDE_OK);
  assert_int_equal(nde_solver_create(S.rhs, &o, 1, &s2, NULL), NDE_OK);
  nde_grad_opts go = nde_grad_opts_default();
  go.method = "interp";
  nde_grad *used = NULL, *fresh = NULL;
  assert_int_equal(nde_grad_create(s1, &go, &used, NULL), NDE_OK);
  assert_int_equal(nde_grad_create(s2, &go, &fresh, NULL), NDE_OK);
  double *g1 = calloc(S.P, sizeof(double)), *g2 = calloc(S.P, sizeof(double));
  double *th = calloc(S.P, sizeof(double));
  for (size_t i = 0; i < S.P; i++) th[i] = 0.7 * S.theta[i];
  /* Another start and other parameters first: a first step of its own. */
  const double U0b[3] = {0.6, 2.5e-5, 0.4};
  double L1, L2;
  nde_grad_stats gs;
  assert_int_equal(nde_grad_eval(used, th, 1, U0b, K_OBS - 1, S.t + 1, nde_obs_loss_eval,
                                 &S.loss, &L1, g1, NULL, NULL, &gs), NDE_OK);
  assert_int_equal(gs.backward.reason, NDE_REASON_NONE);
  assert_int_equal(nde_grad_eval(used, S.theta, 1, S.U0, K_OBS, S.t, nde_obs_loss_eval,
                                 &S.loss, &L1, g1, NULL, NULL, &gs), NDE_OK);
  assert_int_equal(nde_grad_eval(fresh, S.theta, 1, S.U0, K_OBS, S.t, nde_obs_loss_eval,
                                 &S.loss, &L2, g2, NULL, NULL, &gs), NDE_OK);
  print_message("loss after another gradient %.17g, on a fresh evaluator %.17g\n", L1, L2);
  assert_true(L1 == L2);
  assert_memory_equal(g1, g2, S.P * sizeof(double));
  free(g1);
  free(g2);
  free(th);
  nde_grad_destroy(&used);
  nde_grad_destroy(&fresh);
  nde_solver_destroy(&s1);
  nde_solver_destroy(&s2);
  free(S.theta);
  nde_rhs_destroy(&S.rhs);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(stiff_network_model_gets_checked_gradients_through_cvode_bdf),
      cmocka_unit_test(an_interp_gradient_does_not_depend_on_the_gradient_before_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
