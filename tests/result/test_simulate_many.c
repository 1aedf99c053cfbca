/* Simulations of many series on the thread pool (nde_simulate_many, issue 13): every series is,
 * bit for bit, what nde_simulate gives it alone, on 1, 2 and 3 threads, for rk4, dopri5 and
 * CVODE; a solve that stops is an
 * outcome of its own series; the lowest failing series is the one reported whatever the timing
 * (also when a higher series fails first in time);
 * bad arguments are refused without naming a series; and the derived noise seeds of series are
 * distinct across series and base seeds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "nde/nde.h"

/* The heated room of models/heated_room.nde: a step input and a cubic one that holds, a
 * constant from data, a per-series parameter, a network and an observable. */
static const char *ROOM =
    "state T = 18.5\n"
    "input heater (step)\n"
    "input T_out (cubic, hold)\n"
    "const P (from data)\n"
    "param k = 0.25 (positive, per series)\n"
    "param c = 0.8 (positive)\n"
    "net Q : 1 -> 8 tanh -> 1 init normal(0.05)\n"
    "observe sensor = min(T, 35)\n"
    "dT/dt = -k*(T - T_out) + c*P*heater + Q(T/20)\n";

static nde_model *load(const char *src) {
  nde_model *m = NULL;
  nde_error err;
  if (nde_model_load_string(src, strlen(src), "many.nde", &m, &err) != NDE_OK)
    fail_msg("model: %s", err.msg);
  return m;
}

enum { S = 7, NT = 23 };

/* Two input schedules: u is 3 x 2 (heater, T_out) per sample. */
static const double UT_A[3] = {0, 2.25, 7.5}, UU_A[6] = {1, 4.5, 0, 6.25, 1, 2.75};
static const double UT_B[3] = {0, 1.125, 7.25}, UU_B[6] = {0, 9.5, 1, 8.75, 0.5, 11.0};

/* The series of the test: parameters, initial states, inputs, constants and seeds that differ,
 * some taken from the options (NULL, own_seed 0). */
typedef struct fixture {
  nde_model *m;
  double t[NT];
  double theta[S][64];
  double u0[S];
  double consts[S];
  nde_input_series in_a, in_b;
  nde_sim_series series[S];
  nde_sim_opts o;
  const char *cols[2];
  double o_consts;
} fixture;

static void make(fixture *F) {
  memset(F, 0, sizeof *F);
  F->m = load(ROOM);
  assert_true(nde_model_n_theta_full(F->m, 1) <= 64);
  for (int i = 0; i < NT; i++) F->t[i] = 0.3125 * i;
  F->in_a = (nde_input_series){3, UT_A, UU_A};
  F->in_b = (nde_input_series){3, UT_B, UU_B};
  F->o = nde_sim_opts_default();
  F->o.noise = 0.0375;
  F->o.seed = 2385;
  F->o.inputs = &F->in_a;
  F->o_consts = 1.75;
  F->o.consts = &F->o_consts;
  F->cols[0] = "T";
  F->cols[1] = "sensor";
  F->o.n_columns = 2;
  F->o.columns = F->cols;
  const int ik = nde_model_find_param(F->m, "k"), ic = nde_model_find_param(F->m, "c");
  for (int k = 0; k < S; k++) {
    /* Every series its own network too (a different init seed), so that no two share θ. */
    assert_int_equal(nde_model_init_theta_full(F->m, 11 + (uint64_t)k, 1, F->theta[k]), NDE_OK);
    assert_int_equal(nde_model_set_param_series(F->m, ik, 0, 0.125 + 0.0625 * k, F->theta[k]),
                     NDE_OK);
    assert_int_equal(nde_model_set_param(F->m, ic, 0.6 + 0.05 * k, F->theta[k]), NDE_OK);
    F->u0[k] = 14.25 + 1.5 * k;
    F->consts[k] = 0.5 + 0.25 * k;
    nde_sim_series *s = &F->series[k];
    s->theta = F->theta[k];
    s->u0 = &F->u0[k];
    s->inputs = k % 3 == 1 ? &F->in_b : NULL;
    s->consts = k % 2 ? &F->consts[k] : NULL;
    s->own_seed = k % 4 == 2;
    s->seed = 9001 + (uint64_t)k;
  }
}

/* Series k alone, as nde_simulate_many documents it. */
static void simulate_alone(const fixture *F, int k, double *Y, double *sd, nde_solve_stats *ss) {
  const nde_sim_series *s = &F->series[k];
  nde_sim_opts o = F->o;
  if (s->inputs) o.inputs = s->inputs;
  if (s->consts) o.consts = s->consts;
  o.seed = s->own_seed ? s->seed : nde_sim_series_seed(F->o.seed, k);
  nde_error err;
  if (nde_simulate(F->m, s->theta, s->u0, NT, F->t, &o, Y, sd, ss, &err) != NDE_OK)
    fail_msg("series %d alone: %s", k, err.msg);
}

static void many_series_are_bit_for_bit_each_series_alone_on_1_2_and_3_threads(void **state) {
  (void)state;
  fixture F;
  make(&F);
  enum { K = 2 };
  /* A fixed-step method, an adaptive one, and CVODE (a SUNDIALS context per solver). */
  static const char *const methods[] = {"rk4", "dopri5", "cvode-bdf"};
  for (int mth = 0; mth < 3; mth++) {
    F.o.solver.method = methods[mth];
    print_message("%s\n", methods[mth]);
    double ref[S][NT * K], ref_sd[S][K];
    nde_solve_stats ref_ss[S];
    for (int k = 0; k < S; k++) simulate_alone(&F, k, ref[k], ref_sd[k], &ref_ss[k]);
    /* The series differ from each other (their values, and their noise). */
    for (int k = 1; k < S; k++) assert_true(memcmp(ref[k], ref[0], sizeof ref[0]) != 0);
    for (int k = 0; k < S; k++) assert_true(ref_sd[k][0] > 0 && ref_sd[k][1] > 0);
    for (int threads = 1; threads <= 3; threads++) {
      double Y[S][NT * K], sd[S][K];
      nde_solve_stats ss[S];
      memset(Y, 0x5a, sizeof Y);
      nde_error err;
      if (nde_simulate_many(F.m, S, F.series, NT, F.t, &F.o, threads, &Y[0][0], &sd[0][0], ss,
                            NULL, &err) != NDE_OK)
        fail_msg("%d threads: %s", threads, err.msg);
      for (int k = 0; k < S; k++) {
        if (memcmp(Y[k], ref[k], sizeof ref[k]) != 0 || memcmp(sd[k], ref_sd[k], sizeof sd[k]))
          fail_msg("%d threads: series %d differs from nde_simulate alone", threads, k);
        assert_int_equal(ss[k].reason, NDE_REASON_NONE);
        assert_int_equal(ss[k].n_steps, ref_ss[k].n_steps);
        assert_int_equal(ss[k].n_rhs, ref_ss[k].n_rhs);
      }
    }
  }
  nde_model_destroy(&F.m);
}

/* Two series with the same values and no seeds of their own get different noise; with the same
 * own seed they get the same. */
static void series_without_seeds_of_their_own_draw_different_noise(void **state) {
  (void)state;
  nde_model *m = load("state x = 2.385\nparam r = -0.3\ndx/dt = r*x\n");
  double theta[1], t[5] = {0, 0.5, 1, 1.5, 2}, u0 = 2.385, Y[3][5];
  nde_model_init_theta(m, 1, theta);
  nde_sim_series s[3] = {{theta, &u0, NULL, NULL, 0, 0}, {theta, &u0, NULL, NULL, 0, 0},
                         {theta, &u0, NULL, NULL, 1, nde_sim_series_seed(1, 1)}};
  nde_sim_opts o = nde_sim_opts_default();
  o.noise = 0.1;
  assert_int_equal(nde_simulate_many(m, 3, s, 5, t, &o, 2, &Y[0][0], NULL, NULL, NULL, NULL),
                   NDE_OK);
  assert_true(memcmp(Y[0], Y[1], sizeof Y[0]) != 0);
  assert_memory_equal(Y[1], Y[2], sizeof Y[1]);
  nde_model_destroy(&m);
}

/* A blow-up in one series stops that series only (its reason and NaN after the stop, no
 * noise), as nde_simulate reports it; the call succeeds and the others are complete. */
static void a_stopped_series_is_an_outcome_of_its_own(void **state) {
  (void)state;
  nde_model *m = load("state x = 1\nparam r = 0.5\ndx/dt = r*x^2\n");
  enum { N = 9 };
  double t[N], th[3], u0[3] = {1, 1, 1.25}, Y[3][N], sd[3], ref[N], ref_sd;
  for (int i = 0; i < N; i++) t[i] = 0.25 * i;
  th[0] = 0.125;
  th[1] = 4.5; /* blows up at t = 1 / (r x0) = 0.22 */
  th[2] = 0.0625;
  nde_sim_series s[3];
  for (int k = 0; k < 3; k++) s[k] = (nde_sim_series){&th[k], &u0[k], NULL, NULL, 0, 0};
  nde_sim_opts o = nde_sim_opts_default();
  o.noise = 0.01;
  o.solver.method = "dopri5";
  o.solver.max_steps = 2000;
  nde_solve_stats ss[3], ref_ss;
  for (int threads = 1; threads <= 3; threads++) {
    nde_error err;
    if (nde_simulate_many(m, 3, s, N, t, &o, threads, &Y[0][0], sd, ss, NULL, &err) != NDE_OK)
      fail_msg("%s", err.msg);
    assert_int_equal(ss[0].reason, NDE_REASON_NONE);
    assert_int_equal(ss[2].reason, NDE_REASON_NONE);
    assert_int_not_equal(ss[1].reason, NDE_REASON_NONE);
    assert_true(sd[0] > 0 && sd[2] > 0);
    assert_true(sd[1] == 0);
    assert_true(isnan(Y[1][N - 1]) && isfinite(Y[0][N - 1]) && isfinite(Y[2][N - 1]));
    nde_sim_opts o1 = o;
    o1.seed = nde_sim_series_seed(o.seed, 1);
    assert_int_equal(nde_simulate(m, &th[1], &u0[1], N, t, &o1, ref, &ref_sd, &ref_ss, NULL),
                     NDE_OK);
    assert_int_equal(ss[1].reason, ref_ss.reason);
    assert_true(ss[1].t_stop == ref_ss.t_stop);
    for (int i = 0; i < N; i++)
      assert_true(isnan(ref[i]) ? isnan(Y[1][i]) : ref[i] == Y[1][i]);
  }
  nde_model_destroy(&m);
}

/* Series 2 and 5 of 8 are bad: the message is always series 2's, whatever the thread count and
 * whichever job failed first. */
static void the_lowest_failing_series_is_reported_whatever_the_thread_count(void **state) {
  (void)state;
  nde_model *m = load("state x = 1, y = 0.5\nparam a = 0.75\ndx/dt = -a*x + y\ndy/dt = -y\n");
  enum { N = 8, NTT = 6 };
  double theta[1], t[NTT], u0[N][2], Y[N * NTT * 2];
  nde_model_init_theta(m, 1, theta);
  for (int i = 0; i < NTT; i++) t[i] = 0.5 * i;
  nde_sim_series s[N];
  for (int k = 0; k < N; k++) {
    u0[k][0] = 1.5 + k;
    u0[k][1] = 0.25;
    s[k] = (nde_sim_series){theta, u0[k], NULL, NULL, 0, 0};
  }
  u0[5][1] = INFINITY;
  u0[2][0] = NAN;
  for (int threads = 1; threads <= 8; threads++) {
    nde_error err;
    int failed = -7;
    assert_int_equal(nde_simulate_many(m, N, s, NTT, t, NULL, threads, Y, NULL, NULL, &failed,
                                       &err),
                     NDE_ERR_ARG);
    assert_int_equal(failed, 2);
    assert_int_equal(err.status, NDE_ERR_ARG);
    assert_string_equal(err.msg, "series 2: the initial state of x is nan (expected a finite "
                                 "value)");
  }
  /* Series 2 fixed: series 5 is the lowest now. */
  u0[2][0] = 2.5;
  s[3].theta = NULL;
  nde_error err;
  int failed = -7;
  assert_int_equal(nde_simulate_many(m, N, s, NTT, t, NULL, 3, Y, NULL, NULL, &failed, &err),
                   NDE_ERR_ARG);
  assert_int_equal(failed, 3);
  assert_string_equal(err.msg, "series 3: simulation needs the parameters theta");
  s[3].theta = theta;
  assert_int_equal(nde_simulate_many(m, N, s, NTT, t, NULL, 3, Y, NULL, NULL, &failed, &err),
                   NDE_ERR_ARG);
  assert_int_equal(failed, 5);
  assert_string_equal(err.msg, "series 5: the initial state of y is inf (expected a finite "
                               "value)");
  nde_model_destroy(&m);
}

/* A lower series that fails only after real work, a higher one that fails at once: series 1
 * passes over 2^21 samples of its input twice (the span check, then the binding of the data)
 * before its last value is found not finite, while series 3's initial state is refused before
 * anything; on 2 and 3 threads series 3 fails first in time, and series 1 must still be the one
 * reported.  (nde_simulate has no failure later than its data checks: a solve that stops is an
 * outcome, and the inputs' span is checked before the solve.) */
static void a_lower_series_failing_later_is_still_the_one_reported(void **state) {
  (void)state;
  nde_model *m = load("state x = 1.25\ninput u\nparam a = 0.75\ndx/dt = -a*x + u\n");
  enum { N = 5, NTT = 7, BIG = 1 << 21 };
  double theta[1], t[NTT], u0[N], Y[N * NTT];
  nde_model_init_theta(m, 1, theta);
  for (int i = 0; i < NTT; i++) t[i] = 0.375 * i;
  const double ts[2] = {0, 3.5}, us[2] = {0.5, 1.75};
  double *tb = malloc(BIG * sizeof *tb), *ub = malloc(BIG * sizeof *ub);
  assert_non_null(tb);
  assert_non_null(ub);
  for (size_t k = 0; k < BIG; k++) {
    tb[k] = 3.5 * (double)k / (BIG - 1);
    ub[k] = 0.5 + 0.25 * sin(tb[k]);
  }
  ub[BIG - 1] = NAN;
  const nde_input_series small = {2, ts, us}, big = {BIG, tb, ub};
  nde_sim_series s[N];
  for (int k = 0; k < N; k++) {
    u0[k] = 1.5 + 0.25 * k;
    s[k] = (nde_sim_series){theta, &u0[k], &small, NULL, 0, 0};
  }
  s[1].inputs = &big;
  u0[3] = NAN;
  for (int rep = 0; rep < 4; rep++)
    for (int threads = 1; threads <= 3; threads++) {
      nde_error err;
      int failed = -7;
      assert_int_equal(nde_simulate_many(m, N, s, NTT, t, NULL, threads, Y, NULL, NULL, &failed,
                                         &err),
                       NDE_ERR_ARG);
      assert_int_equal(failed, 1);
      assert_string_equal(err.msg, "series 1: input 'u' of series 0 is not finite at sample "
                                   "2097151 (t = 3.5)");
    }
  free(tb);
  free(ub);
  nde_model_destroy(&m);
}

/* Bad data of a series (a measured input that is not finite) fail that series with
 * nde_simulate's own message, behind a lower series that fails; bad data that no series uses
 * (the options' inputs when every series has its own) fail none. */
static void bad_data_of_a_series_fail_it_as_nde_simulate_alone_does(void **state) {
  (void)state;
  fixture F;
  make(&F);
  enum { K = 2 };
  static const double UU_BAD[6] = {1, 4.5, 0, NAN, 1, 2.75};
  const nde_input_series bad = {3, UT_A, UU_BAD};
  F.series[4].inputs = &bad;
  char want[sizeof ((nde_error *)0)->msg + 16];
  nde_error err;
  double Y[S][NT * K], sd[S][K];
  nde_solve_stats ss[S];
  {
    nde_sim_opts o = F.o;
    o.inputs = &bad;
    if (F.series[4].consts) o.consts = F.series[4].consts;
    assert_int_equal(nde_simulate(F.m, F.series[4].theta, F.series[4].u0, NT, F.t, &o, Y[0], NULL,
                                  NULL, &err),
                     NDE_ERR_ARG);
    snprintf(want, sizeof want, "series 4: %s", err.msg);
  }
  for (int threads = 1; threads <= 3; threads++) {
    int failed = -7;
    assert_int_equal(nde_simulate_many(F.m, S, F.series, NT, F.t, &F.o, threads, &Y[0][0],
                                       &sd[0][0], ss, &failed, &err),
                     NDE_ERR_ARG);
    assert_int_equal(failed, 4);
    assert_string_equal(err.msg, want);
  }
  /* A lower series that fails (its initial state) is the one reported. */
  const double nan_u0 = NAN;
  F.series[1].u0 = &nan_u0;
  int failed = -7;
  assert_int_equal(nde_simulate_many(F.m, S, F.series, NT, F.t, &F.o, 2, &Y[0][0], &sd[0][0], ss,
                                     &failed, &err),
                   NDE_ERR_ARG);
  assert_int_equal(failed, 1);
  assert_string_equal(err.msg, "series 1: the initial state of T is nan (expected a finite "
                               "value)");
  /* Every series its own inputs: the bad ones of the options are nobody's. */
  nde_model_destroy(&F.m);
  make(&F);
  F.o.inputs = &bad;
  double ref[S][NT * K], ref_sd[S][K];
  for (int k = 0; k < S; k++) {
    F.series[k].inputs = k % 2 ? &F.in_b : &F.in_a;
    simulate_alone(&F, k, ref[k], ref_sd[k], &ss[k]);
  }
  assert_int_equal(nde_simulate_many(F.m, S, F.series, NT, F.t, &F.o, 2, &Y[0][0], &sd[0][0], ss,
                                     &failed, &err),
                   NDE_OK);
  assert_int_equal(failed, -1);
  assert_memory_equal(Y, ref, sizeof Y);
  assert_memory_equal(sd, ref_sd, sizeof sd);
  nde_model_destroy(&F.m);
}

/* Arguments every series shares are refused once, without a series in the message; no series
 * does nothing. */
static void bad_arguments_are_refused_without_naming_a_series(void **state) {
  (void)state;
  nde_model *m = load("state x = 1\nparam a = 0.75\ndx/dt = -a*x\n");
  double theta[1] = {0.75}, u0 = 1.5, t[3] = {0, 0.5, 1}, Y[6];
  nde_sim_series s[2] = {{theta, &u0, NULL, NULL, 0, 0}, {theta, &u0, NULL, NULL, 0, 0}};
  nde_error err;
  assert_int_equal(nde_simulate_many(NULL, 2, s, 3, t, NULL, 1, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_int_equal(nde_simulate_many(m, -1, s, 3, t, NULL, 1, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_int_equal(nde_simulate_many(m, 2, NULL, 3, t, NULL, 1, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_int_equal(nde_simulate_many(m, 2, s, 3, t, NULL, 1, NULL, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_int_equal(nde_simulate_many(m, 2, s, 3, NULL, NULL, 1, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  const double back[3] = {0, 0.5, 0.25};
  assert_int_equal(nde_simulate_many(m, 2, s, 3, back, NULL, 2, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_string_equal(err.msg, "output times must increase strictly (time 2 = 0.25 after 0.5)");
  nde_sim_opts o = nde_sim_opts_default();
  o.noise = -0.5;
  assert_int_equal(nde_simulate_many(m, 2, s, 3, t, &o, 2, Y, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_string_equal(err.msg, "the noise level must be >= 0 (got -0.5)");
  /* Solver options every series shares: refused once, as a solver refuses them, and failed says
   * no series. */
  o = nde_sim_opts_default();
  o.solver.method = "no-such-solver";
  int failed = -7;
  assert_int_equal(nde_simulate_many(m, 2, s, 3, t, &o, 2, Y, NULL, NULL, &failed, &err),
                   NDE_ERR_ARG);
  assert_int_equal(failed, -1);
  assert_non_null(strstr(err.msg, "unknown solver method 'no-such-solver' (expected "));
  assert_true(strncmp(err.msg, "series", 6) != 0);
  o = nde_sim_opts_default();
  o.solver.method = "dopri5";
  o.solver.rtol = NAN;
  assert_int_equal(nde_simulate_many(m, 2, s, 3, t, &o, 2, Y, NULL, NULL, &failed, &err),
                   NDE_ERR_ARG);
  assert_string_equal(err.msg, "tolerances must be >= 0, finite and not both 0 (got rtol = nan, "
                               "atol = 1e-09)");
  /* No series: nothing to do, nothing written. */
  Y[0] = 7.25;
  assert_int_equal(nde_simulate_many(m, 0, NULL, 3, t, NULL, 0, Y, NULL, NULL, NULL, &err), NDE_OK);
  assert_true(Y[0] == 7.25);
  /* ... and no output array either: an empty Y may be NULL, as the empty series array may (the
   * call refused Y NULL: "needs ... an output"). */
  int failed0 = 3;
  assert_int_equal(nde_simulate_many(m, 0, NULL, 3, t, NULL, 0, NULL, NULL, NULL, &failed0, &err),
                   NDE_OK);
  assert_int_equal(failed0, -1);
  assert_int_equal(nde_simulate_many(m, 2, s, 3, t, NULL, 0, NULL, NULL, NULL, NULL, &err),
                   NDE_ERR_ARG);
  nde_model_destroy(&m);
}

/* Derived seeds: below 2^53, distinct over 2000 series of two base seeds, and over 2000 base
 * seeds for one series; the base seeds themselves are not series' seeds. */
static void derived_seeds_are_distinct_across_series_and_base_seeds(void **state) {
  (void)state;
  enum { N = 2000 };
  uint64_t *a = malloc(2 * N * sizeof *a);
  assert_non_null(a);
  for (int k = 0; k < N; k++) {
    a[k] = nde_sim_series_seed(1, k);
    a[N + k] = nde_sim_series_seed(2, k);
  }
  for (int i = 0; i < 2 * N; i++) {
    assert_true(a[i] != 1 && a[i] != 2);
    assert_true(a[i] < (UINT64_C(1) << 53)); /* a value --seed takes */
    for (int j = 0; j < i; j++)
      if (a[i] == a[j]) fail_msg("seeds %d and %d are equal", i, j);
  }
  for (int b = 0; b < N; b++)
    a[b] = nde_sim_series_seed(((uint64_t)b * 0x9e3779b97f4a7c15ULL) >> 11, 3);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < i; j++)
      if (a[i] == a[j]) fail_msg("base seeds %d and %d give series 3 one seed", i, j);
  free(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(many_series_are_bit_for_bit_each_series_alone_on_1_2_and_3_threads),
      cmocka_unit_test(series_without_seeds_of_their_own_draw_different_noise),
      cmocka_unit_test(a_stopped_series_is_an_outcome_of_its_own),
      cmocka_unit_test(the_lowest_failing_series_is_reported_whatever_the_thread_count),
      cmocka_unit_test(a_lower_series_failing_later_is_still_the_one_reported),
      cmocka_unit_test(bad_data_of_a_series_fail_it_as_nde_simulate_alone_does),
      cmocka_unit_test(bad_arguments_are_refused_without_naming_a_series),
      cmocka_unit_test(derived_seeds_are_distinct_across_series_and_base_seeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
