/* Batches: every fixed-step method of the registry gives each row of a B-row solve what a solve
 * of that row alone gives, to 1e-12 relative (the batched right-hand side may sum in another
 * order: the LV UDE's network runs as one matrix product for the batch), on a separable model
 * that every method runs on, and on the LV UDE for the methods that need no split.  (Adaptive
 * methods share their steps across the batch by design: see solve.h and
 * benchmarks/bench_batch.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/solve.h"
#include "split_models.h"

#define B_ROWS 4
#define N_OBS 6

/* Max relative difference between the batched solve and the rows solved alone. */
static double batch_vs_rows(nde_rhs *rhs, const nde_solver_method_info *mi, const double *theta,
                            const double *U0, double dt) {
  const int n = nde_rhs_get_info(rhs)->n_state;
  const size_t bn = (size_t)B_ROWS * (size_t)n;
  nde_solver_opts o = nde_solver_opts_default();
  o.method = mi->name;
  o.dt = dt;
  o.fixed_step = 1;
  nde_solver *s = NULL;
  assert_int_equal(nde_solver_create(rhs, &o, B_ROWS, &s, NULL), NDE_OK);
  double t[N_OBS];
  for (int k = 0; k < N_OBS; k++) t[k] = 0.37 * k + 0.05 * sin(1.9 * k);
  double *Y = calloc(N_OBS * bn, sizeof *Y), *Y1 = calloc(N_OBS * (size_t)n, sizeof *Y1);
  nde_solve_stats st;
  assert_int_equal(nde_solver_solve(s, theta, B_ROWS, U0, N_OBS, t, Y, &st), NDE_OK);
  assert_int_equal(st.reason, NDE_REASON_NONE);
  double worst = 0;
  for (int b = 0; b < B_ROWS; b++) {
    assert_int_equal(nde_solver_solve(s, theta, 1, U0 + (size_t)b * n, N_OBS, t, Y1, &st), NDE_OK);
    assert_int_equal(st.reason, NDE_REASON_NONE);
    for (int k = 0; k < N_OBS; k++)
      for (int i = 0; i < n; i++) {
        const double a = Y[(size_t)k * bn + (size_t)b * n + i], r = Y1[(size_t)k * n + i];
        worst = fmax(worst, fabs(a - r) / fmax(1e-300, fmax(fabs(a), fabs(r))));
      }
  }
  free(Y);
  free(Y1);
  nde_solver_destroy(&s);
  return worst;
}

static void every_fixed_step_method_solves_each_batch_row_as_if_alone(void **state) {
  (void)state;
  nde_rhs *sep = NULL;
  assert_int_equal(nde_test_nlsplit_rhs(NULL, B_ROWS, &sep), NDE_OK);
  double U0s[B_ROWS * 4];
  for (int q = 0; q < B_ROWS * 4; q++) U0s[q] = 0.9 * sin(1.3 * q + 0.4);
  nde_cmodel lv;
  assert_int_equal(nde_cmodel_lv_ude(B_ROWS, &lv), NDE_OK);
  double *th = calloc(lv.n_theta, sizeof *th);
  nde_rng rng;
  nde_rng_seed(&rng, 4242);
  assert_int_equal(nde_net_init(lv.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, th), NDE_OK);
  for (size_t i = 0; i < lv.n_theta; i++) th[i] *= 0.3;
  const double U0lv[B_ROWS * 2] = {0.44, 4.63, 1.14, 2.52, 2.31, 0.87, 3.05, 1.96};
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->fixed_steps) continue;
    const double es = batch_vs_rows(sep, mi, nde_test_nlsplit_theta, U0s, 0.05);
    double elv = 0;
    if (!mi->needs_split) elv = batch_vs_rows(lv.rhs, mi, th, U0lv, 0.05);
    print_message("%-17s B = %d against B = 1: separable model %.1e, LV UDE %s%.1e\n", mi->name,
                  B_ROWS, es, mi->needs_split ? "(needs a split) " : "", elv);
    assert_true(es <= 1e-12 && elv <= 1e-12);
    checked++;
  }
  assert_true(checked >= 6);
  free(th);
  nde_cmodel_destroy(&lv);
  nde_rhs_destroy(&sep);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_fixed_step_method_solves_each_batch_row_as_if_alone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
