/* The hand-written Hamiltonian network (tests/support/hnn.c) through the right-hand-side
 * interface: f = (dH/dp, -dH/dq) against differences of H itself; VJP (state and parameter parts,
 * entry by entry) and JVP (state, parameter and both tangents) against central differences of f,
 * at B = 1 and B = 4, d = 1 and d = 2, for every activation second-order passes accept; the two are
 * adjoint to rounding; the flow is divergence-free (trace of df/du = 0); relu is refused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hnn.h"

#define EPS 1e-5
#define TOL 1e-6

static double worst[5];
static const char *const what[5] = {"f against dH", "VJP gU", "VJP gtheta", "JVP",
                                    "JVP-VJP adjoint"};

static void expect_below(int k, double err, double tol, const char *name, int B) {
  worst[k] = fmax(worst[k], err);
  if (!(err <= tol)) {
    print_error("%s: %s at B = %d: relative error %.3g > %.3g\n", name, what[k], B, err, tol);
    fail();
  }
}

static void check_hnn(int d, int hidden, nde_act act, int B, uint64_t seed) {
  char name[80];
  snprintf(name, sizeof name, "HNN d = %d, %d-%d-%d-1 %s", d, 2 * d, hidden, hidden,
           nde_act_name(act));
  nde_cmodel m;
  assert_int_equal(nde_hnn_create(d, hidden, act, 4, &m), NDE_OK);
  const nde_rhs_info *info = nde_rhs_get_info(m.rhs);
  const int n = info->n_state;
  assert_int_equal(n, 2 * d);
  assert_null(info->dep);
  const size_t P = m.n_theta, BN = (size_t)B * n;
  assert_int_equal(P, nde_net_n_params(m.net));
  nde_net_ws *ws = NULL;
  assert_int_equal(nde_net_ws_create(m.net, 4, &ws), NDE_OK);

  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double *th = calloc(P, sizeof(double)), *tp = calloc(P, sizeof(double));
  double *Vt = calloc(P, sizeof(double)), *gth = calloc(P, sizeof(double));
  double *fdt = calloc(P, sizeof(double));
  double *U = calloc(BN, sizeof(double)), *Up = calloc(BN, sizeof(double));
  double *L = calloc(BN, sizeof(double)), *V = calloc(BN, sizeof(double));
  double *gU = calloc(BN, sizeof(double)), *gU0 = calloc(BN, sizeof(double));
  double *f = calloc(BN, sizeof(double)), *fp = calloc(BN, sizeof(double));
  double *fm = calloc(BN, sizeof(double)), *JV = calloc(BN, sizeof(double));
  double *fd = calloc(BN, sizeof(double)), Hp[4], Hm[4];
  assert_int_equal(nde_net_init(m.net, NDE_INIT_GLOROT_NORMAL, 0, &rng, th), NDE_OK);
  for (int l = 0; l < 3; l++)
    nde_test_fill(&rng, (size_t)nde_net_width(m.net, l + 1), -0.4, 0.6,
                  th + nde_net_bias_offset(m.net, l));
  nde_test_fill(&rng, BN, -1.37, 1.91, U);
  nde_test_fill(&rng, BN, -1.0, 1.0, L);
  nde_test_fill(&rng, BN, -1.0, 1.0, V);
  nde_test_fill(&rng, P, -1.0, 1.0, Vt);
  const double t = 0.7183;

  /* f = S grad H, grad H by differences of the network's scalar output. */
  assert_int_equal(nde_rhs_f(m.rhs, t, B, U, th, f, NULL), 0);
  memcpy(Up, U, BN * sizeof(double));
  for (int j = 0; j < n; j++) {
    for (int r = 0; r < B; r++) Up[(size_t)r * n + j] = U[(size_t)r * n + j] + EPS;
    nde_net_forward(m.net, th, B, Up, Hp, NULL, ws);
    for (int r = 0; r < B; r++) Up[(size_t)r * n + j] = U[(size_t)r * n + j] - EPS;
    nde_net_forward(m.net, th, B, Up, Hm, NULL, ws);
    for (int r = 0; r < B; r++) {
      Up[(size_t)r * n + j] = U[(size_t)r * n + j];
      double dH = (Hp[r] - Hm[r]) / (2 * EPS);
      /* dH/dq_i is -f_{p_i}; dH/dp_i is f_{q_i}. */
      fd[(size_t)r * n + (j < d ? j + d : j - d)] = j < d ? -dH : dH;
    }
  }
  expect_below(0, nde_test_rel_err(BN, f, fd, 1e-3), TOL, name, B);

  /* VJP: gU accumulates onto what is there, entry by entry against differences of L . f. */
  nde_test_fill(&rng, BN, -0.5, 0.5, gU0);
  memcpy(gU, gU0, BN * sizeof(double));
  memset(gth, 0, P * sizeof(double));
  assert_int_equal(nde_rhs_vjp(m.rhs, t, B, U, th, L, NULL, gU, gth), 0);
  for (size_t q = 0; q < BN; q++) gU[q] -= gU0[q];
  memcpy(Up, U, BN * sizeof(double));
  for (size_t q = 0; q < BN; q++) {
    Up[q] = U[q] + EPS;
    nde_rhs_f(m.rhs, t, B, Up, th, fp, NULL);
    Up[q] = U[q] - EPS;
    nde_rhs_f(m.rhs, t, B, Up, th, fm, NULL);
    Up[q] = U[q];
    fd[q] = 0;
    for (size_t k = 0; k < BN; k++) fd[q] += L[k] * (fp[k] - fm[k]) / (2 * EPS);
  }
  expect_below(1, nde_test_rel_err(BN, gU, fd, 1e-3), TOL, name, B);
  memcpy(tp, th, P * sizeof(double));
  for (size_t i = 0; i < P; i++) {
    tp[i] = th[i] + EPS;
    nde_rhs_f(m.rhs, t, B, U, tp, fp, NULL);
    tp[i] = th[i] - EPS;
    nde_rhs_f(m.rhs, t, B, U, tp, fm, NULL);
    tp[i] = th[i];
    fdt[i] = 0;
    for (size_t k = 0; k < BN; k++) fdt[i] += L[k] * (fp[k] - fm[k]) / (2 * EPS);
  }
  expect_below(2, nde_test_rel_err(P, gth, fdt, 1e-3), TOL, name, B);
  /* Either part alone is the same (gU to the rounding of the accumulation above). */
  double *g1 = calloc(BN, sizeof(double)), *g2 = calloc(P, sizeof(double));
  assert_int_equal(nde_rhs_vjp(m.rhs, t, B, U, th, L, NULL, g1, NULL), 0);
  assert_int_equal(nde_rhs_vjp(m.rhs, t, B, U, th, L, NULL, NULL, g2), 0);
  assert_true(nde_test_rel_err(BN, g1, gU, 1e-3) < 1e-12);
  assert_true(nde_test_rel_err(P, g2, gth, 1e-3) < 1e-14);
  free(g1), free(g2);

  /* JVP along V, Vtheta and both, against differences of f. */
  for (int mode = 0; mode < 3; mode++) {
    const double *Vm = mode != 1 ? V : NULL, *Vtm = mode != 0 ? Vt : NULL;
    for (size_t q = 0; q < BN; q++) Up[q] = U[q] + (Vm ? EPS * Vm[q] : 0);
    for (size_t i = 0; i < P; i++) tp[i] = th[i] + (Vtm ? EPS * Vtm[i] : 0);
    nde_rhs_f(m.rhs, t, B, Up, tp, fp, NULL);
    for (size_t q = 0; q < BN; q++) Up[q] = U[q] - (Vm ? EPS * Vm[q] : 0);
    for (size_t i = 0; i < P; i++) tp[i] = th[i] - (Vtm ? EPS * Vtm[i] : 0);
    nde_rhs_f(m.rhs, t, B, Up, tp, fm, NULL);
    for (size_t q = 0; q < BN; q++) fd[q] = (fp[q] - fm[q]) / (2 * EPS);
    assert_int_equal(nde_rhs_jvp(m.rhs, t, B, U, th, Vm, Vtm, JV), 0);
    expect_below(3, nde_test_rel_err(BN, JV, fd, 1e-3), TOL, name, B);
  }
  /* <L, J V + J_theta Vt> = <gU, V> + <gtheta, Vt>. */
  double lhs = nde_test_dot(BN, L, JV), rhs = nde_test_dot(BN, gU, V) + nde_test_dot(P, gth, Vt);
  expect_below(4, fabs(lhs - rhs) / fmax(fabs(lhs), 1e-9), 1e-12, name, B);

  /* A Hamiltonian flow preserves volume: trace(df/du) = trace(S Hess H) = 0 in every row. */
  double tr[4] = {0}, scale[4] = {0};
  for (int j = 0; j < n; j++) {
    memset(V, 0, BN * sizeof(double));
    for (int r = 0; r < B; r++) V[(size_t)r * n + j] = 1.0;
    assert_int_equal(nde_rhs_jvp(m.rhs, t, B, U, th, V, NULL, JV), 0);
    for (int r = 0; r < B; r++) {
      tr[r] += JV[(size_t)r * n + j];
      for (int k = 0; k < n; k++) scale[r] = fmax(scale[r], fabs(JV[(size_t)r * n + k]));
    }
  }
  for (int r = 0; r < B; r++) assert_true(fabs(tr[r]) <= 1e-14 * fmax(scale[r], 1e-3));

  free(th), free(tp), free(Vt), free(gth), free(fdt), free(U), free(Up), free(L), free(V);
  free(gU), free(gU0), free(f), free(fp), free(fm), free(JV), free(fd);
  nde_net_ws_destroy(&ws);
  nde_cmodel_destroy(&m);
}

static void hnn_vjp_and_jvp_match_finite_differences_for_every_smooth_activation(void **state) {
  (void)state;
  uint64_t seed = 500;
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    if (!nde_act_allows_second_order((nde_act)a)) continue;
    for (int d = 1; d <= 2; d++) {
      check_hnn(d, 9, (nde_act)a, 1, seed++);
      check_hnn(d, 9, (nde_act)a, 4, seed++);
    }
  }
  /* The benchmark's shape: 2 -> 64 -> 64 -> 1 softplus, whose 64 x 64 layer is a dgemm. */
  check_hnn(1, 64, NDE_ACT_SOFTPLUS, 1, seed++);
  check_hnn(1, 64, NDE_ACT_SOFTPLUS, 4, seed++);
  for (int k = 0; k < 5; k++) print_message("%-16s largest relative error %.2g\n", what[k], worst[k]);
}

static void a_relu_hamiltonian_is_refused(void **state) {
  (void)state;
  nde_cmodel m;
  assert_int_equal(nde_hnn_create(1, 8, NDE_ACT_RELU, 4, &m), NDE_ERR_UNSUPPORTED);
  assert_null(m.rhs);
  assert_int_equal(nde_hnn_create(0, 8, NDE_ACT_TANH, 4, &m), NDE_ERR_ARG);
  /* The plain network takes relu (first order only). */
  assert_int_equal(nde_hnn_plain_create(1, 8, NDE_ACT_RELU, 4, &m), NDE_OK);
  assert_int_equal(nde_rhs_get_info(m.rhs)->n_state, 2);
  nde_cmodel_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(hnn_vjp_and_jvp_match_finite_differences_for_every_smooth_activation),
      cmocka_unit_test(a_relu_hamiltonian_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
