/* Batches, threads and reproducible sums in the fit objective.  Pieces that share a grid and are
 * solved together give what they give alone (fixed steps: L and g within 1e-12 relative) for
 * whole series, multiple-shooting segments, minibatch windows and autonomous segments, with
 * per-series parameters, constants from data and step inputs that switch at different times in
 * different series (their breakpoints); the batched gradient matches finite differences; loss
 * and gradient are bit for bit the same on 1, 2 and 3 threads, and so is theta after 200 Adam
 * iterations; an rhs that cannot be cloned runs on one thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/train.h"
#include "train/internal.h"

#define S 13    /* series: 11 on one grid, 2 on another */
#define K 21    /* observations per series */
#define NBIG 40 /* series of the threads test */

static const char *model_src =
    "state T = 18.5\n"
    "input heater (step, hold)\n"
    "const P (from data)\n"
    "param k = 0.25 (positive, per series)\n"
    "param c = 0.8 (positive)\n"
    "net Q : 1 -> 8 tanh -> 1\n"
    "dT/dt = -k*(T - 10) + c*P*heater + Q(T/20)\n";

typedef struct world {
  nde_model *m;
  nde_rhs *rhs;
  int ns;
  double t[2][K];
  double *obs, *u0, *hin_t, *hin_u, *P;
  nde_input_series *in;
  nde_fit_series *series;
  double *theta;
  size_t n_theta;
} world;

/* ns series: the last two on a grid of its own; heater switching on at one of three times (so
 * that several series share their breakpoints), per-series P and k. */
static void make_world(world *w, int ns, int max_batch) {
  memset(w, 0, sizeof *w);
  w->ns = ns;
  nde_error err;
  assert_int_equal(nde_model_load_string(model_src, strlen(model_src), "heat.nde", &w->m, &err),
                   NDE_OK);
  w->obs = calloc((size_t)ns * K, sizeof(double));
  w->u0 = calloc((size_t)ns, sizeof(double));
  w->hin_t = calloc((size_t)ns * 3, sizeof(double));
  w->hin_u = calloc((size_t)ns * 3, sizeof(double));
  w->P = calloc((size_t)ns, sizeof(double));
  w->in = calloc((size_t)ns, sizeof *w->in);
  w->series = calloc((size_t)ns, sizeof *w->series);
  for (int k = 0; k < K; k++) {
    w->t[0][k] = 0.25 * k;
    w->t[1][k] = 0.3 * k + 0.1;
  }
  static const double switch_at[3] = {1.13, 2.37, 3.61};
  for (int s = 0; s < ns; s++) {
    const int grid = s >= ns - 2;
    w->hin_t[3 * s] = -1.0;
    w->hin_t[3 * s + 1] = switch_at[s % 3] + 0.1 * grid;
    w->hin_t[3 * s + 2] = 20.0;
    w->hin_u[3 * s] = 0.0;
    w->hin_u[3 * s + 1] = 1.0;
    w->hin_u[3 * s + 2] = 0.4;
    w->in[s] = (nde_input_series){3, w->hin_t + 3 * s, w->hin_u + 3 * s};
    w->P[s] = 2.0 + 0.37 * s;
    w->u0[s] = 14.0 + 0.6 * s;
    for (int k = 0; k < K; k++) {
      const double tk = w->t[grid][k];
      w->obs[(size_t)s * K + k] = w->u0[s] + 3.1 * sin(0.7 * tk + 0.3 * s) + 0.2 * tk;
    }
    if (s % 4 == 1) w->obs[(size_t)s * K + 7] = NAN; /* missing values */
    w->series[s] = (nde_fit_series){K, w->t[grid], w->obs + (size_t)s * K, w->u0 + s, 0, s};
  }
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.max_batch = max_batch;
  ro.n_series = ns;
  ro.inputs = w->in;
  ro.consts = w->P;
  assert_int_equal(nde_model_create_rhs_opts(w->m, &ro, &w->rhs, &err), NDE_OK);
  w->n_theta = nde_model_n_theta_full(w->m, ns);
  w->theta = calloc(w->n_theta, sizeof(double));
  assert_int_equal(nde_model_init_theta_full(w->m, 7, ns, w->theta), NDE_OK);
  const int ik = nde_model_find_param(w->m, "k");
  for (int s = 0; s < ns; s++)
    assert_int_equal(nde_model_set_param_series(w->m, ik, s, 0.2 + 0.05 * s, w->theta), NDE_OK);
}

static void free_world(world *w) {
  nde_rhs_destroy(&w->rhs);
  nde_model_destroy(&w->m);
  free(w->obs);
  free(w->u0);
  free(w->hin_t);
  free(w->hin_u);
  free(w->P);
  free(w->in);
  free(w->series);
  free(w->theta);
}

static nde_fit *make_fit(world *w, nde_fit_opts fo, int batch_rows, const char *method) {
  nde_solver_opts so = nde_solver_opts_default();
  so.method = method;
  so.dt = 0.05;
  fo.batch_rows = batch_rows;
  nde_fit *f = NULL;
  nde_error err;
  nde_status st = nde_fit_create(w->rhs, &so, NULL, w->ns, w->series, &fo, &f, &err);
  if (st != NDE_OK) print_error("%s\n", err.msg);
  assert_int_equal(st, NDE_OK);
  return f;
}

/* The start point: theta, then the learned states (moved off the data so the penalty acts). */
static double *start_x(world *w, nde_fit *f) {
  double *x = calloc(nde_fit_n_x(f, 1), sizeof(double));
  assert_int_equal(nde_fit_init_x(f, w->theta, x), NDE_OK);
  for (size_t i = w->n_theta; i < nde_fit_n_x(f, 1); i++) x[i] *= 1.03;
  return x;
}

static double max_rel(size_t n, const double *a, const double *b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    num = fmax(num, fabs(a[i] - b[i]));
    den = fmax(den, fmax(fabs(a[i]), fabs(b[i])));
  }
  return den > 0 ? num / den : num;
}

/* L and g of the batched objective against every piece alone. */
static void check_batched_equals_alone(nde_fit_opts fo, int shooting, int minibatch) {
  world w;
  make_world(&w, S, 64);
  nde_fit *fb = make_fit(&w, fo, 64, "rk4"), *f1 = make_fit(&w, fo, 1, "rk4");
  double *x = start_x(&w, fb);
  const size_t nx = nde_fit_n_x(fb, shooting);
  double *gb = calloc(nx, sizeof(double)), *g1 = calloc(nx, sizeof(double));
  nde_rng rb, r1;
  nde_rng_seed(&rb, 31);
  nde_rng_seed(&r1, 31);
  double Lb, L1;
  nde_fit_info ib, i1;
  assert_int_equal(nde_fit_eval(fb, x, shooting, minibatch ? &rb : NULL, &Lb, gb, &ib), NDE_OK);
  assert_int_equal(nde_fit_eval(f1, x, shooting, minibatch ? &r1 : NULL, &L1, g1, &i1), NDE_OK);
  assert_true(isfinite(Lb) && Lb > 0);
  const double eL = fabs(Lb - L1) / L1, eg = max_rel(nx, gb, g1);
  print_message("shooting %d minibatch %d autonomous %d: %ld batched solves for %ld pieces; "
                "L rel diff %.2e, g max rel diff %.2e\n",
                shooting, minibatch, fo.autonomous, ib.n_solves, i1.n_solves, eL, eg);
  assert_true(ib.n_solves < i1.n_solves); /* pieces were batched */
  assert_true(eL <= 1e-12);
  assert_true(eg <= 1e-12);
  check_rel(ib.data_loss, i1.data_loss, 1e-12, 1e-300);
  check_rel(ib.penalty, i1.penalty, 1e-12, 1e-300);
  free(x);
  free(gb);
  free(g1);
  nde_fit_destroy(&fb);
  nde_fit_destroy(&f1);
  free_world(&w);
}

static void batched_series_give_what_each_gives_alone(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.learn_u0 = 1;
  check_batched_equals_alone(fo, 0, 0);
}

static void batched_shooting_segments_give_what_each_gives_alone(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 4;
  fo.shoot_weight = 3.7;
  fo.learn_u0 = 1;
  check_batched_equals_alone(fo, 1, 0);
}

static void batched_minibatch_windows_give_what_each_gives_alone(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.batch_series = 9;
  fo.batch_time = 5;
  fo.batch_windows = 3;
  check_batched_equals_alone(fo, 0, 1);
}

/* An autonomous model (the LV UDE as a C callback): the segments of one series share their
 * times relative to their starts and are solved as one batch. */
static void autonomous_segments_of_one_series_are_one_batch(void **state) {
  (void)state;
  nde_cmodel cm;
  assert_int_equal(nde_cmodel_lv_ude(64, &cm), NDE_OK);
  double *theta = calloc(cm.n_theta, sizeof(double));
  nde_rng rng;
  nde_rng_seed(&rng, 4242);
  assert_int_equal(nde_net_init(cm.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, theta), NDE_OK);
  enum { KL = 41 };
  double t[KL], obs[2 * KL], u0[2] = {0.44, 4.63};
  for (int k = 0; k < KL; k++) {
    t[k] = 0.125 * k;
    obs[2 * k] = u0[0] * (1 + 0.4 * sin(1.3 * t[k]));
    obs[2 * k + 1] = u0[1] * exp(-0.3 * t[k]);
  }
  const nde_fit_series se = {KL, t, obs, u0, 0, 0};
  nde_solver_opts so = nde_solver_opts_default();
  so.steps_per_interval = 3;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 4;
  fo.learn_u0 = 1;
  fo.autonomous = 1;
  nde_fit *fb = NULL, *f1 = NULL;
  assert_int_equal(nde_fit_create(cm.rhs, &so, NULL, 1, &se, &fo, &fb, NULL), NDE_OK);
  fo.batch_rows = 1;
  assert_int_equal(nde_fit_create(cm.rhs, &so, NULL, 1, &se, &fo, &f1, NULL), NDE_OK);
  double *x = calloc(nde_fit_n_x(fb, 1), sizeof(double));
  assert_int_equal(nde_fit_init_x(fb, theta, x), NDE_OK);
  for (size_t i = cm.n_theta; i < nde_fit_n_x(fb, 1); i++) x[i] *= 0.97;
  const size_t nx = nde_fit_n_x(fb, 1);
  double *gb = calloc(nx, sizeof(double)), *g1 = calloc(nx, sizeof(double)), Lb, L1;
  nde_fit_info ib, i1;
  assert_int_equal(nde_fit_eval(fb, x, 1, NULL, &Lb, gb, &ib), NDE_OK);
  assert_int_equal(nde_fit_eval(f1, x, 1, NULL, &L1, g1, &i1), NDE_OK);
  print_message("autonomous LV UDE, 10 segments: %ld solve(s) against %ld; L rel diff %.2e, g "
                "%.2e\n",
                ib.n_solves, i1.n_solves, fabs(Lb - L1) / L1, max_rel(nx, gb, g1));
  assert_int_equal(ib.n_solves, 1);
  assert_int_equal(i1.n_solves, 10);
  assert_true(fabs(Lb - L1) <= 1e-12 * L1);
  assert_true(max_rel(nx, gb, g1) <= 1e-12);
  free(x);
  free(gb);
  free(g1);
  free(theta);
  nde_fit_destroy(&fb);
  nde_fit_destroy(&f1);
  nde_cmodel_destroy(&cm);
}

/* The gradient of the batched objective (per-series parameters, learned starts, shooting,
 * step inputs) against five-point central differences. */
static void batched_gradient_matches_finite_differences(void **state) {
  (void)state;
  world w;
  make_world(&w, S, 64);
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 5;
  fo.learn_u0 = 1;
  nde_fit *f = make_fit(&w, fo, 64, "rk4");
  double *x = start_x(&w, f);
  const size_t nx = nde_fit_n_x(f, 1);
  double *g = calloc(nx, sizeof(double)), *xp = calloc(nx, sizeof(double));
  double *d = calloc(nx, sizeof(double)), L;
  nde_fit_info info;
  assert_int_equal(nde_fit_eval(f, x, 1, NULL, &L, g, &info), NDE_OK);
  assert_true(info.n_solves < S * 4);
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  for (int trial = 0; trial < 3; trial++) {
    for (size_t i = 0; i < nx; i++) d[i] = nde_rng_normal(&rng);
    const double eps = 1e-5, off[4] = {-2, -1, 1, 2};
    double Lv[4];
    for (int j = 0; j < 4; j++) {
      for (size_t i = 0; i < nx; i++) xp[i] = x[i] + off[j] * eps * d[i];
      assert_int_equal(nde_fit_eval(f, xp, 1, NULL, &Lv[j], NULL, NULL), NDE_OK);
    }
    const double fd = (Lv[0] - 8 * Lv[1] + 8 * Lv[2] - Lv[3]) / (12 * eps);
    print_message("direction %d: gradient %.12e, differences %.12e\n", trial,
                  nde_test_dot(nx, g, d), fd);
    check_rel(nde_test_dot(nx, g, d), fd, 1e-7, 1e-8);
  }
  free(x);
  free(g);
  free(xp);
  free(d);
  nde_fit_destroy(&f);
  free_world(&w);
}

/* Loss and gradient on 1, 2 and 3 threads, and theta after 200 Adam iterations: the same bits. */
static void threads_give_the_same_bits(void **state) {
  (void)state;
  world w;
  make_world(&w, NBIG, 64);
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 5;
  fo.learn_u0 = 1;
  fo.batch_series = 30; /* minibatches: the draw is the same on every thread count */
  double *theta_end[3] = {NULL, NULL, NULL}, *g_at[3] = {NULL, NULL, NULL}, L_at[3];
  size_t nx = 0;
  for (int nt = 1; nt <= 3; nt++) {
    nde_pool *pool = NULL;
    assert_int_equal(nde_pool_create(nt, &pool, NULL), NDE_OK);
    nde_fit *f = make_fit(&w, fo, 64, "rk4");
    assert_int_equal(nde_fit_set_parallel(f, pool, NULL), NDE_OK);
    nde__fit_set_pool_min(f, 0.0); /* every evaluation on every thread, however small */
    assert_int_equal(nde_fit_threads(f), nt);
    double *x = start_x(&w, f);
    nx = nde_fit_n_x(f, 1);
    g_at[nt - 1] = calloc(nx, sizeof(double));
    nde_fit_info info;
    assert_int_equal(nde_fit_eval(f, x, 1, NULL, &L_at[nt - 1], g_at[nt - 1], &info), NDE_OK);
    assert_true(info.n_solves >= 3); /* work for every thread */
    nde_fit_phase ph[2] = {{NDE_OPT_ADAM, 150, 0.01, 1}, {NDE_OPT_ADAM, 50, 0.005, 0}};
    nde_train_opts to = nde_train_opts_default();
    to.phases = ph;
    to.n_phases = 2;
    to.seed = 5;
    to.checkpoint_every = 50;
    nde_train *t = NULL;
    assert_int_equal(nde_train_create(f, &to, x, &t, NULL), NDE_OK);
    nde_train_reason why;
    assert_int_equal(nde_train_run(t, &why), NDE_OK);
    assert_int_equal(why, NDE_TRAIN_DONE);
    assert_int_equal(nde_train_history(t, NULL), 200);
    theta_end[nt - 1] = calloc(nx, sizeof(double));
    memcpy(theta_end[nt - 1], nde_train_x(t), nx * sizeof(double));
    nde_train_destroy(&t);
    nde_fit_destroy(&f);
    nde_pool_destroy(&pool);
    free(x);
  }
  for (int k = 1; k < 3; k++) {
    assert_true(memcmp(&L_at[0], &L_at[k], sizeof(double)) == 0);
    assert_true(memcmp(g_at[0], g_at[k], nx * sizeof(double)) == 0);
    assert_true(memcmp(theta_end[0], theta_end[k], nx * sizeof(double)) == 0);
  }
  print_message("1, 2 and 3 threads: L %.17g, theta after 200 iterations identical\n", L_at[0]);
  for (int k = 0; k < 3; k++) {
    free(theta_end[k]);
    free(g_at[k]);
  }
  free_world(&w);
}

/* A series that blows up (a huge decay rate: RK4 unstable) stops its batch: the loss is NaN and
 * the stop is the same, wherever the batch ran. */
static void a_batch_that_stops_gives_the_same_outcome_on_every_thread_count(void **state) {
  (void)state;
  world w;
  make_world(&w, NBIG, 64);
  const int ik = nde_model_find_param(w.m, "k");
  assert_int_equal(nde_model_set_param_series(w.m, ik, 23, 900.0, w.theta), NDE_OK);
  nde_fit_opts fo = nde_fit_opts_default();
  nde_solve_stats stop[3];
  for (int nt = 1; nt <= 3; nt++) {
    nde_pool *pool = NULL;
    assert_int_equal(nde_pool_create(nt, &pool, NULL), NDE_OK);
    nde_fit *f = make_fit(&w, fo, 64, "rk4");
    assert_int_equal(nde_fit_set_parallel(f, pool, NULL), NDE_OK);
    nde__fit_set_pool_min(f, 0.0);
    double *x = start_x(&w, f), L, *g = calloc(nde_fit_n_x(f, 0), sizeof(double));
    nde_fit_info info;
    assert_int_equal(nde_fit_eval(f, x, 0, NULL, &L, g, &info), NDE_OK);
    assert_true(isnan(L) && isnan(g[0]));
    assert_int_not_equal(info.stop.reason, NDE_REASON_NONE);
    stop[nt - 1] = info.stop;
    free(x);
    free(g);
    nde_fit_destroy(&f);
    nde_pool_destroy(&pool);
  }
  print_message("the batch with series 24 stops at t = %g: %s\n", stop[0].t_stop,
                nde_stop_reason_str(stop[0].reason));
  for (int k = 1; k < 3; k++) {
    assert_int_equal(stop[k].reason, stop[0].reason);
    assert_true(stop[k].t_stop == stop[0].t_stop);
    assert_int_equal(stop[k].n_steps, stop[0].n_steps);
  }
  free_world(&w);
}

/* A C table without clone: the objective runs on one thread, with the same result. */
static int nc_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                double *cache) {
  return nde_rhs_f(ctx, t, B, U, th, dU, cache);
}
static int nc_vjp(void *ctx, double t, int B, const double *U, const double *th, const double *L,
                  const double *cache, double *gU, double *gth) {
  return nde_rhs_vjp(ctx, t, B, U, th, L, cache, gU, gth);
}

static void an_rhs_without_clone_runs_on_one_thread(void **state) {
  (void)state;
  nde_cmodel cm;
  assert_int_equal(nde_cmodel_lv_ude(8, &cm), NDE_OK);
  const nde_rhs_ops ops = {.f = nc_f, .vjp = nc_vjp};
  nde_rhs_info info = *nde_rhs_get_info(cm.rhs);
  nde_rhs *plain = NULL;
  assert_int_equal(nde_rhs_create(&ops, cm.rhs, NDE_BORROW, &info, &plain, NULL), NDE_OK);
  double t[9], obs[18], u0[2] = {1.0, 2.0};
  for (int k = 0; k < 9; k++) {
    t[k] = 0.5 * k;
    obs[2 * k] = 1 + 0.1 * k;
    obs[2 * k + 1] = 2 - 0.1 * k;
  }
  nde_fit_series se[3] = {{9, t, obs, u0, 0, 0}, {9, t, obs, u0, 0, 0}, {9, t, obs, u0, 0, 0}};
  nde_fit *f = NULL;
  assert_int_equal(nde_fit_create(plain, NULL, NULL, 3, se, NULL, &f, NULL), NDE_OK);
  nde_pool *pool = NULL;
  assert_int_equal(nde_pool_create(2, &pool, NULL), NDE_OK);
  assert_int_equal(nde_fit_set_parallel(f, pool, NULL), NDE_OK);
  assert_int_equal(nde_fit_threads(f), 1);
  double *th = calloc(cm.n_theta, sizeof(double)), L;
  assert_int_equal(nde_fit_eval(f, th, 0, NULL, &L, NULL, NULL), NDE_OK);
  assert_true(isfinite(L));
  free(th);
  nde_fit_destroy(&f);
  nde_pool_destroy(&pool);
  nde_rhs_destroy(&plain);
  nde_cmodel_destroy(&cm);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batched_series_give_what_each_gives_alone),
      cmocka_unit_test(batched_shooting_segments_give_what_each_gives_alone),
      cmocka_unit_test(batched_minibatch_windows_give_what_each_gives_alone),
      cmocka_unit_test(autonomous_segments_of_one_series_are_one_batch),
      cmocka_unit_test(batched_gradient_matches_finite_differences),
      cmocka_unit_test(threads_give_the_same_bits),
      cmocka_unit_test(a_batch_that_stops_gives_the_same_outcome_on_every_thread_count),
      cmocka_unit_test(an_rhs_without_clone_runs_on_one_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
