/* The hand-written C models (tests/support/cmodels.c: the spiral neural ODE and the Lotka-Volterra
 * UDE) through the right-hand-side interface: VJP (state and parameter parts) and JVP (state and
 * parameter tangents) against central finite differences of f, at B = 1 and B = 4, on
 * high-entropy states and Glorot-initialised weights; VJP with the forward cache equals VJP without. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"

static void check_model(nde_cmodel *m, int B, uint64_t seed) {
  const nde_rhs_info *info = nde_rhs_get_info(m->rhs);
  const int n = info->n_state;
  const size_t P = m->n_theta, BN = (size_t)B * (size_t)n;
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double *th = calloc(P, sizeof(double)), *U = calloc(BN, sizeof(double));
  double *L = calloc(BN, sizeof(double)), *V = calloc(BN, sizeof(double));
  double *Vt = calloc(P, sizeof(double)), *gU = calloc(BN, sizeof(double));
  double *gU2 = calloc(BN, sizeof(double)), *gth = calloc(P, sizeof(double));
  double *gth2 = calloc(P, sizeof(double)), *JV = calloc(BN, sizeof(double));
  double *fp = calloc(BN, sizeof(double)), *fm = calloc(BN, sizeof(double));
  double *Up = calloc(BN, sizeof(double)), *tp = calloc(P, sizeof(double));
  double *cache = calloc(info->cache_per_row * (size_t)B + 1, sizeof(double));
  assert_int_equal(nde_net_init(m->net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, th), NDE_OK);
  nde_test_fill(&rng, BN, -1.37, 1.91, U);
  nde_test_fill(&rng, BN, -1.0, 1.0, L);
  nde_test_fill(&rng, BN, -1.0, 1.0, V);
  nde_test_fill(&rng, P, -1.0, 1.0, Vt);
  const double t = 0.7183, eps = 1e-6;

  /* VJP without and with the cache saved by f at the same point. */
  assert_int_equal(nde_rhs_vjp(m->rhs, t, B, U, th, L, NULL, gU, gth), 0);
  assert_int_equal(nde_rhs_f(m->rhs, t, B, U, th, fp, cache), 0);
  assert_int_equal(nde_rhs_vjp(m->rhs, t, B, U, th, L, cache, gU2, gth2), 0);
  assert_true(nde_test_rel_err(BN, gU, gU2, 1e-300) < 1e-15);
  assert_true(nde_test_rel_err(P, gth, gth2, 1e-300) < 1e-15);

  /* <L, (f(U + eps V) - f(U - eps V)) / 2 eps> = <gU, V>; likewise in theta. */
  for (size_t q = 0; q < BN; q++) Up[q] = U[q] + eps * V[q];
  nde_rhs_f(m->rhs, t, B, Up, th, fp, NULL);
  for (size_t q = 0; q < BN; q++) Up[q] = U[q] - eps * V[q];
  nde_rhs_f(m->rhs, t, B, Up, th, fm, NULL);
  double fdU = 0;
  for (size_t q = 0; q < BN; q++) fdU += L[q] * (fp[q] - fm[q]) / (2 * eps);
  check_rel(nde_test_dot(BN, gU, V), fdU, 1e-7, 1e-8);
  /* The JVP in the state against the same differences, entry by entry. */
  assert_int_equal(nde_rhs_jvp(m->rhs, t, B, U, th, V, NULL, JV), 0);
  for (size_t q = 0; q < BN; q++) check_rel(JV[q], (fp[q] - fm[q]) / (2 * eps), 1e-6, 1e-6);

  for (size_t i = 0; i < P; i++) tp[i] = th[i] + eps * Vt[i];
  nde_rhs_f(m->rhs, t, B, U, tp, fp, NULL);
  for (size_t i = 0; i < P; i++) tp[i] = th[i] - eps * Vt[i];
  nde_rhs_f(m->rhs, t, B, U, tp, fm, NULL);
  double fdT = 0;
  for (size_t q = 0; q < BN; q++) fdT += L[q] * (fp[q] - fm[q]) / (2 * eps);
  check_rel(nde_test_dot(P, gth, Vt), fdT, 1e-7, 1e-8);
  assert_int_equal(nde_rhs_jvp(m->rhs, t, B, U, th, NULL, Vt, JV), 0);
  for (size_t q = 0; q < BN; q++) check_rel(JV[q], (fp[q] - fm[q]) / (2 * eps), 1e-6, 1e-6);

  free(th), free(U), free(L), free(V), free(Vt), free(gU), free(gU2), free(gth), free(gth2);
  free(JV), free(fp), free(fm), free(Up), free(tp), free(cache);
}

static void spiral_vjp_and_jvp_match_finite_differences(void **state) {
  (void)state;
  nde_cmodel m;
  assert_int_equal(nde_cmodel_spiral(4, &m), NDE_OK);
  check_model(&m, 1, 11);
  check_model(&m, 4, 12);
  nde_cmodel_destroy(&m);
}

static void lv_ude_vjp_and_jvp_match_finite_differences(void **state) {
  (void)state;
  nde_cmodel m;
  assert_int_equal(nde_cmodel_lv_ude(4, &m), NDE_OK);
  assert_int_equal(m.n_theta, 87);
  check_model(&m, 1, 21);
  check_model(&m, 4, 22);
  nde_cmodel_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(spiral_vjp_and_jvp_match_finite_differences),
      cmocka_unit_test(lv_ude_vjp_and_jvp_match_finite_differences),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
