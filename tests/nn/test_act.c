/* Activations: names, first and second derivatives against central finite differences and
 * against independent formulas on high-entropy points, the relu kink by definition, which
 * activations second-order passes accept, overflow-safe tails, NaN propagation, and the accuracy
 * of the expm1-based tanh against long double tanhl. */
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

/* Second derivatives, written independently of src/nn/act.c (long double, textbook forms). */
static double ref_act2(nde_act a, double z) {
  long double x = z;
  switch (a) {
    case NDE_ACT_IDENTITY: return 0;
    case NDE_ACT_TANH: {
      long double t = tanhl(x);
      return (double)(-2 * t * (1 - t * t));
    }
    case NDE_ACT_RELU: return 0;
    case NDE_ACT_SOFTPLUS:
    case NDE_ACT_SIGMOID: {
      long double s = 1 / (1 + expl(-x)), d = s * (1 - s);
      return (double)(a == NDE_ACT_SOFTPLUS ? d : d * (1 - 2 * s));
    }
    case NDE_ACT_GELU: {
      /* g = x Phi~(x) with Phi~ = (1 + tanh u) / 2: g'' = 2 Phi~' + x Phi~''. */
      long double c = sqrtl(2 / 3.14159265358979323846264338327950288L), k = 0.044715L;
      long double u = c * (x + k * x * x * x), up = c * (1 + 3 * k * x * x), upp = 6 * c * k * x;
      long double sech2 = 1 / (coshl(u) * coshl(u));
      long double P1 = 0.5L * sech2 * up;
      long double P2 = 0.5L * (-2 * tanhl(u) * sech2 * up * up + sech2 * upp);
      return (double)(2 * P1 + x * P2);
    }
    case NDE_ACT_RBF: return (double)((4 * x * x - 2) * expl(-x * x));
    default: return NAN;
  }
}

/* For every activation in the enum (a new one is tested without touching this test): y and dy of
 * nde_act_eval2 equal nde_act_eval's, d2y matches the central difference of dy and the
 * reference formula (dy to rounding: the loops may round differently).  relu's points stay away from its kink, where d2y = 0 holds on both sides. */
static void every_activation_has_a_second_derivative_matching_finite_differences(void **state) {
  (void)state;
  nde_rng rng;
  nde_rng_seed(&rng, 61803);
  static double z[N_POINTS], y[N_POINTS], dy[N_POINTS], d2[N_POINTS], y1[N_POINTS],
      dy1[N_POINTS], zp[N_POINTS], zm[N_POINTS], dp[N_POINTS], dm[N_POINTS], tmp[N_POINTS];
  nde_test_fill(&rng, N_POINTS, -5.3, 4.9, z);
  const double h = 1e-5;
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    for (int i = 0; i < N_POINTS; i++) {
      if (a == NDE_ACT_RELU && fabs(z[i]) < 10 * h) z[i] += 0.41;
      zp[i] = z[i] + h;
      zm[i] = z[i] - h;
    }
    for (int i = 0; i < N_POINTS; i++) d2[i] = NAN;
    nde_act_eval2((nde_act)a, N_POINTS, z, y, dy, d2);
    nde_act_eval((nde_act)a, N_POINTS, z, y1, dy1);
    assert_memory_equal(y, y1, sizeof y);
    nde_act_eval((nde_act)a, N_POINTS, zp, tmp, dp);
    nde_act_eval((nde_act)a, N_POINTS, zm, tmp, dm);
    double worst_fd = 0, worst_ref = 0;
    for (int i = 0; i < N_POINTS; i++) {
      double fd = (dp[i] - dm[i]) / (2 * h), ref = ref_act2((nde_act)a, z[i]);
      double e1 = fabs(dy[i] - dy1[i]) / fmax(1, fabs(dy1[i]));
      double efd = fabs(fd - d2[i]) / fmax(1, fabs(d2[i]));
      double eref = fabs(ref - d2[i]) / fmax(1, fabs(ref));
      worst_fd = fmax(worst_fd, efd);
      worst_ref = fmax(worst_ref, eref);
      if (!(e1 <= 1e-14) || !(efd <= 1e-8) || !(eref <= 1e-14)) {
        print_error("%s at z = %.17g: dy = %.17g (eval %.17g), d2y = %.17g (fd %.17g, ref %.17g)\n",
                    nde_act_name((nde_act)a), z[i], dy[i], dy1[i], d2[i], fd, ref);
        fail();
      }
    }
    print_message("%-9s d2y: max error %.2g against finite differences, %.2g against the formula\n",
                  nde_act_name((nde_act)a), worst_fd, worst_ref);
  }
}

/* The second derivatives keep their relative accuracy where they are tiny (the tails). */
static void second_derivatives_keep_relative_accuracy_in_the_tails(void **state) {
  (void)state;
  double z[4] = {30.5, -30.5, 700.25, -700.25}, y[4], dy[4], d2[4];
  nde_act_eval2(NDE_ACT_SIGMOID, 4, z, y, dy, d2);
  double e = exp(-30.5), d = e / ((1 + e) * (1 + e)), dd = d * (1 - e) / (1 + e);
  check_rel(d2[0], -dd, 1e-15, 0);
  check_rel(d2[1], dd, 1e-15, 0);
  assert_true(d2[2] <= 0.0 && d2[2] > -1e-300 && d2[3] >= 0.0 && d2[3] < 1e-300);
  nde_act_eval2(NDE_ACT_SOFTPLUS, 4, z, y, dy, d2);
  check_rel(d2[0], d, 1e-15, 0);
  check_rel(d2[1], d, 1e-15, 0);
  for (int i = 0; i < 4; i++) assert_true(isfinite(d2[i]));
  /* Small z: sigmoid'' = -z/8 + O(z^3) without cancellation. */
  double s[2] = {3.25e-9, -3.25e-9};
  nde_act_eval2(NDE_ACT_SIGMOID, 2, s, y, dy, d2);
  check_rel(d2[0], -3.25e-9 / 8, 1e-8, 0);
  check_rel(d2[1], 3.25e-9 / 8, 1e-8, 0);
  /* Far out (an overflowing cubic in gelu, underflowing exponentials) they are 0, not NaN. */
  double t[4] = {1e200, -1e200, 800.5, -800.5};
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    nde_act_eval2((nde_act)a, 4, t, y, dy, d2);
    for (int i = 0; i < 4; i++) {
      if (!(fabs(d2[i]) < 1e-300)) {
        print_error("%s''(%g) = %g\n", nde_act_name((nde_act)a), t[i], d2[i]);
        fail();
      }
    }
  }
}

/* Second-order passes accept every smooth activation and refuse relu, whose second derivative
 * is zero almost everywhere. */
static void second_order_passes_accept_every_activation_but_relu(void **state) {
  (void)state;
  for (int a = 0; a < NDE_ACT_COUNT; a++)
    assert_int_equal(nde_act_allows_second_order((nde_act)a), a != NDE_ACT_RELU);
  assert_int_equal(nde_act_allows_second_order(NDE_ACT_COUNT), 0);
  assert_int_equal(nde_act_allows_second_order((nde_act)-1), 0);
  /* NULL arrays: nothing written, no crash. */
  double z[1] = {0.7}, y[1] = {-3}, d[1] = {-3};
  nde_act_eval2(NDE_ACT_TANH, 1, z, y, d, NULL);
  assert_true(y[0] == -3 && d[0] == -3);
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
      cmocka_unit_test(every_activation_has_a_second_derivative_matching_finite_differences),
      cmocka_unit_test(second_derivatives_keep_relative_accuracy_in_the_tails),
      cmocka_unit_test(second_order_passes_accept_every_activation_but_relu),
      cmocka_unit_test(relu_at_zero_is_zero_with_derivative_zero),
      cmocka_unit_test(softplus_and_sigmoid_tails_do_not_overflow),
      cmocka_unit_test(nan_inputs_propagate_through_every_activation),
      cmocka_unit_test(tanh_is_accurate_to_two_ulp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
