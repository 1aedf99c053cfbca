/* Adam: one step against the textbook formula, convergence on a quadratic, state save/restore,
 * and determinism of a short Lotka-Volterra UDE training run (same seed, identical theta). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/grad.h"
#include "nde/train.h"

static void first_steps_match_the_textbook_formula(void **state) {
  (void)state;
  nde_adam_opts o = {0.0371, 0.87, 0.991, 1e-7};
  nde_adam *a = NULL;
  assert_int_equal(nde_adam_create(2, &o, &a, NULL), NDE_OK);
  double th[2] = {0.4821, -1.337}, ref[2] = {0.4821, -1.337}, m[2] = {0}, v[2] = {0};
  for (int step = 1; step <= 3; step++) {
    const double g[2] = {0.913 * step - 0.2, -2.19 + 0.31 * step};
    nde_adam_step(a, th, g);
    for (int i = 0; i < 2; i++) {
      m[i] = o.beta1 * m[i] + (1 - o.beta1) * g[i];
      v[i] = o.beta2 * v[i] + (1 - o.beta2) * g[i] * g[i];
      const double mh = m[i] / (1 - pow(o.beta1, step)), vh = v[i] / (1 - pow(o.beta2, step));
      ref[i] -= o.lr * mh / (sqrt(vh) + o.eps);
      check_close(th[i], ref[i], 1e-14);
    }
  }
  nde_adam_destroy(&a);
  assert_null(a);
}

static void saved_state_continues_bit_for_bit(void **state) {
  (void)state;
  nde_adam *a = NULL, *b = NULL;
  assert_int_equal(nde_adam_create(3, NULL, &a, NULL), NDE_OK);
  assert_int_equal(nde_adam_create(3, NULL, &b, NULL), NDE_OK);
  double th[3] = {1.1, -0.3, 2.7};
  for (int k = 0; k < 7; k++) {
    const double g[3] = {th[0] - 0.2, 3 * th[1], sin(th[2])};
    nde_adam_step(a, th, g);
  }
  double saved[7], thb[3];
  assert_int_equal(nde_adam_state_size(a), 7);
  nde_adam_get_state(a, saved);
  memcpy(thb, th, sizeof th);
  assert_int_equal(nde_adam_set_state(b, saved), NDE_OK);
  for (int k = 0; k < 5; k++) {
    const double g[3] = {th[0] - 0.2, 3 * th[1], sin(th[2])};
    const double gb[3] = {thb[0] - 0.2, 3 * thb[1], sin(thb[2])};
    nde_adam_step(a, th, g);
    nde_adam_step(b, thb, gb);
  }
  assert_memory_equal(th, thb, sizeof th);
  assert_int_equal(nde_adam_get_step(b), 12);
  nde_adam_destroy(&a);
  nde_adam_destroy(&b);
}

static void invalid_options_are_rejected(void **state) {
  (void)state;
  nde_adam *a = NULL;
  nde_adam_opts o = nde_adam_opts_default();
  assert_int_equal(nde_adam_create(0, &o, &a, NULL), NDE_ERR_ARG);
  o.beta2 = 1.0;
  assert_int_equal(nde_adam_create(4, &o, &a, NULL), NDE_ERR_ARG);
  o = nde_adam_opts_default();
  o.lr = -1;
  assert_int_equal(nde_adam_create(4, &o, &a, NULL), NDE_ERR_ARG);
  assert_null(a);
}

/* 50 Adam steps on the LV UDE from a seeded initialisation. */
static void train_lv(uint64_t seed, double *theta_out) {
  nde_cmodel m;
  assert_int_equal(nde_cmodel_lv_ude(1, &m), NDE_OK);
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double *th = calloc(m.n_theta, sizeof(double)), *g = calloc(m.n_theta, sizeof(double));
  assert_int_equal(nde_net_init(m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, th), NDE_OK);
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(m.rhs, &so, 1, &s, NULL), NDE_OK);
  nde_grad *gr = NULL;
  assert_int_equal(nde_grad_create(s, NULL, &gr, NULL), NDE_OK);
  double t[11], obs[22];
  const double u0[2] = {0.44249296, 4.6280594};
  for (int k = 0; k < 11; k++) {
    t[k] = 0.25 * k;
    obs[2 * k] = 0.44 + 0.3 * sin(1.7 * t[k]) + 0.05 * nde_rng_normal(&rng);
    obs[2 * k + 1] = 4.6 - 0.9 * t[k] + 0.05 * nde_rng_normal(&rng);
  }
  nde_obs_loss lo = {obs, NULL, 1, 0};
  nde_adam_opts ao = nde_adam_opts_default();
  ao.lr = 0.01;
  nde_adam *a = NULL;
  assert_int_equal(nde_adam_create(m.n_theta, &ao, &a, NULL), NDE_OK);
  double L0 = 0, L = 0;
  for (int it = 0; it < 50; it++) {
    assert_int_equal(
        nde_grad_eval(gr, th, 1, u0, 11, t, nde_obs_loss_eval, &lo, &L, g, NULL, NULL, NULL),
        NDE_OK);
    if (it == 0) L0 = L;
    nde_adam_step(a, th, g);
  }
  assert_true(L < L0); /* the run trains, so bit-identity is not a comparison of two no-ops */
  memcpy(theta_out, th, m.n_theta * sizeof(double));
  nde_adam_destroy(&a);
  nde_grad_destroy(&gr);
  nde_solver_destroy(&s);
  free(th);
  free(g);
  nde_cmodel_destroy(&m);
}

static void same_seed_gives_bit_identical_theta_after_50_adam_steps(void **state) {
  (void)state;
  double a[87], b[87], c[87];
  train_lv(31337, a);
  train_lv(31337, b);
  train_lv(31338, c);
  assert_memory_equal(a, b, sizeof a);
  assert_memory_not_equal(a, c, sizeof a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(first_steps_match_the_textbook_formula),
      cmocka_unit_test(saved_state_continues_bit_for_bit),
      cmocka_unit_test(invalid_options_are_rejected),
      cmocka_unit_test(same_seed_gives_bit_identical_theta_after_50_adam_steps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
