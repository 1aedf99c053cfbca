/* Activations: names, derivatives against central finite differences on high-entropy points,
 * the relu kink by definition, overflow-safe tails, NaN propagation, and the accuracy of the
 * expm1-based tanh against long double tanhl. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "nde/nn.h"

#define N_POINTS 400

static void names_round_trip_and_unknown_names_are_rejected(void **state) {
  (void)state;
  const char *expect[] = {"identity", "tanh", "relu", "softplus", "sigmoid", "gelu", "rbf"};
  assert_int_equal(NDE_ACT_COUNT, 7);
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    assert_string_equal(nde_act_name((nde_act)a), expect[a]);
    nde_act back = NDE_ACT_COUNT;
    assert_int_equal(nde_act_from_name(expect[a], &back), NDE_OK);
    assert_int_equal(back, a);
  }
  nde_act out = NDE_ACT_TANH;
  assert_null(nde_act_name(NDE_ACT_COUNT));
  assert_null(nde_act_name((nde_act)-1));
  assert_int_equal(nde_act_from_name("Tanh", &out), NDE_ERR_ARG);
  assert_int_equal(nde_act_from_name("tanh ", &out), NDE_ERR_ARG);
  assert_int_equal(nde_act_from_name("", &out), NDE_ERR_ARG);
  assert_int_equal(nde_act_from_name(NULL, &out), NDE_ERR_ARG);
  assert_int_equal(nde_act_from_name("relu", NULL), NDE_ERR_ARG);
  assert_int_equal(out, NDE_ACT_TANH);
}

/* Scalar references, written independently of src/nn/act.c. */
static double ref_act(nde_act a, double z) {
  switch (a) {
    case NDE_ACT_IDENTITY: return z;
    case NDE_ACT_TANH: return tanh(z);
    case NDE_ACT_RELU: return z > 0 ? z : 0;
    case NDE_ACT_SOFTPLUS: return z > 30 ? z + exp(-z) : log(1 + exp(z));
    case NDE_ACT_SIGMOID: return z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
    case NDE_ACT_GELU:
      return 0.5 * z * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (z + 0.044715 * z * z * z)));
    case NDE_ACT_RBF: return exp(-z * z);
    default: return NAN;
  }
}

static void every_activation_matches_its_formula_and_finite_differences(void **state) {
  (void)state;
  nde_rng rng;
  nde_rng_seed(&rng, 20240917);
  double z[N_POINTS], y[N_POINTS], dy[N_POINTS], yp[N_POINTS], ym[N_POINTS], zp[N_POINTS],
      zm[N_POINTS];
  nde_test_fill(&rng, N_POINTS, -4.7, 4.3, z);
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    /* Keep relu's points away from its kink; the kink itself is tested by definition below. */
    const double h = 1e-5;
    for (int i = 0; i < N_POINTS; i++) {
      if (a == NDE_ACT_RELU && fabs(z[i]) < 10 * h) z[i] += 0.37;
      zp[i] = z[i] + h;
      zm[i] = z[i] - h;
    }
    nde_act_eval((nde_act)a, N_POINTS, z, y, dy);
    nde_act_eval((nde_act)a, N_POINTS, zp, yp, NULL);
    nde_act_eval((nde_act)a, N_POINTS, zm, ym, NULL);
    for (int i = 0; i < N_POINTS; i++) {
      double fd = (yp[i] - ym[i]) / (2 * h);
      if (fabs(ref_act((nde_act)a, z[i]) - y[i]) > 1e-15 * fmax(1, fabs(y[i])) ||
          fabs(fd - dy[i]) > 1e-8 * fmax(1, fabs(dy[i]))) {
        print_error("%s at z = %.17g: y = %.17g (ref %.17g), dy = %.17g (fd %.17g)\n",
                    nde_act_name((nde_act)a), z[i], y[i], ref_act((nde_act)a, z[i]), dy[i], fd);
        fail();
      }
    }
    /* Without dy, y is the same. */
    double y2[N_POINTS];
    nde_act_eval((nde_act)a, N_POINTS, z, y2, NULL);
    assert_memory_equal(y, y2, sizeof y);
  }
}

static void relu_at_zero_is_zero_with_derivative_zero(void **state) {
  (void)state;
  double z[4] = {0.0, -0.0, 1e-300, -1e-300}, y[4], dy[4];
  nde_act_eval(NDE_ACT_RELU, 4, z, y, dy);
  assert_true(y[0] == 0.0 && dy[0] == 0.0);
  assert_true(y[1] == 0.0 && dy[1] == 0.0);
  assert_true(y[2] == 1e-300 && dy[2] == 1.0);
  assert_true(y[3] == 0.0 && dy[3] == 0.0);
}

static void softplus_and_sigmoid_tails_do_not_overflow(void **state) {
  (void)state;
  double z[6] = {800.25, -800.25, 40.5, -40.5, 710.5, -745.5}, y[6], dy[6];
  nde_act_eval(NDE_ACT_SOFTPLUS, 6, z, y, dy);
  check_close(y[0], 800.25, 1e-16);
  assert_true(y[1] >= 0.0 && y[1] < 1e-300);
  check_close(y[2], 40.5 + exp(-40.5), 1e-16);
  assert_true(fabs(y[3] - exp(-40.5)) <= 1e-15 * exp(-40.5));
  check_close(dy[0], 1.0, 1e-16);
  assert_true(dy[1] >= 0.0 && dy[1] < 1e-300);
  for (int i = 0; i < 6; i++) assert_true(isfinite(y[i]) && isfinite(dy[i]));

  nde_act_eval(NDE_ACT_SIGMOID, 6, z, y, dy);
  check_close(y[0], 1.0, 1e-16);
  assert_true(y[1] >= 0.0 && y[1] < 1e-300);
  /* In the tails sigma' = e^-|z| / (1 + e^-|z|)^2 keeps its relative accuracy. */
  double e = exp(-40.5), d = e / ((1 + e) * (1 + e));
  assert_true(fabs(dy[2] - d) <= 1e-15 * d);
  assert_true(fabs(dy[3] - d) <= 1e-15 * d);
  assert_true(fabs(y[3] - e / (1 + e)) <= 1e-15 * e);
  for (int i = 0; i < 6; i++) assert_true(isfinite(y[i]) && isfinite(dy[i]));

  /* tanh and gelu saturate without NaN. */
  double t[4] = {400.5, -400.5, INFINITY, -INFINITY};
  nde_act_eval(NDE_ACT_TANH, 4, t, y, dy);
  assert_true(y[0] == 1.0 && y[1] == -1.0 && y[2] == 1.0 && y[3] == -1.0);
  assert_true(dy[0] == 0.0 && dy[1] == 0.0);
  nde_act_eval(NDE_ACT_GELU, 2, t, y, dy);
  assert_true(y[0] == 400.5 && fabs(y[1]) == 0.0);
  assert_true(dy[0] == 1.0 && dy[1] == 0.0);
}

static void nan_inputs_propagate_through_every_activation(void **state) {
  (void)state;
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    double z[1] = {NAN}, y[1] = {0}, dy[1] = {0};
    nde_act_eval((nde_act)a, 1, z, y, dy);
    if (!isnan(y[0])) {
      print_error("%s(NaN) = %g\n", nde_act_name((nde_act)a), y[0]);
      fail();
    }
  }
}

/* tanh is computed as -f / (2 + f), f = expm1(-2|z|); it must stay within 2 ulp of 1 (4.4e-16
 * relative) of the correctly rounded value, over many magnitudes. */
static void tanh_is_accurate_to_two_ulp(void **state) {
  (void)state;
  enum { N = 4096, ROUNDS = 64 };
  static double z[N], y[N];
  nde_rng rng;
  nde_rng_seed(&rng, 77);
  double worst = 0, worst_z = 0;
  for (int r = 0; r < ROUNDS; r++) {
    double scale = pow(10.0, -8.0 + 9.5 * r / ROUNDS);
    nde_test_fill(&rng, N, -scale, scale, z);
    nde_act_eval(NDE_ACT_TANH, N, z, y, NULL);
    for (int i = 0; i < N; i++) {
      if (z[i] == 0.0) continue;
      long double ref = tanhl((long double)z[i]);
      double rel = (double)fabsl(((long double)y[i] - ref) / ref);
      if (rel > worst) worst = rel, worst_z = z[i];
    }
  }
  if (!(worst <= 4.45e-16)) {
    print_error("tanh relative error %.3g at z = %.17g\n", worst, worst_z);
    fail();
  }
  /* Odd symmetry holds exactly. */
  double zz[2] = {0.3489712, -0.3489712}, yy[2];
  nde_act_eval(NDE_ACT_TANH, 2, zz, yy, NULL);
  assert_true(yy[0] == -yy[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_round_trip_and_unknown_names_are_rejected),
      cmocka_unit_test(every_activation_matches_its_formula_and_finite_differences),
      cmocka_unit_test(relu_at_zero_is_zero_with_derivative_zero),
      cmocka_unit_test(softplus_and_sigmoid_tails_do_not_overflow),
      cmocka_unit_test(nan_inputs_propagate_through_every_activation),
      cmocka_unit_test(tanh_is_accurate_to_two_ulp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
