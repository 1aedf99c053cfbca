/* The result layer from C: the data -> series rule (an unobserved state takes the model's declared
 * initial value, and is an error without one), a fit saved and opened again (settings, theta,
 * series, histories, the training state), integration from every kind of start (the fitted curves
 * reproduced bit for bit), held-out scoring from each series' own first row, per-series
 * parameters fitted jointly, and every step of discovery callable on its own, with user terms of
 * any length. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "nde/nde.h"

#define LV_SRC                                                     \
  "state x = 0.44249296, y = 4.6280594\n"                          \
  "param alpha = 1.3 (positive)\nparam beta = 0.9 (positive)\n"    \
  "param gamma = 0.8 (positive)\nparam delta = 1.8 (positive)\n"   \
  "dx/dt = alpha*x - beta*x*y\ndy/dt = gamma*x*y - delta*y\n"

static int setup(void **state) {
  (void)state;
  return fx_scratch_create("result");
}

static int teardown(void **state) {
  (void)state;
  return fx_scratch_remove();
}

/* Data files: series of the model m at theta from u0s, named groups (or the root for one). */
static void write_data(const char *file, nde_model *m, const double *theta, int S,
                       const char *const *groups, const double *u0s, int n_t, double dt,
                       const double *nan_at_first) {
  const int n = nde_model_state_dim(m);
  nde_writer *w = NULL;
  assert_int_equal(nde_writer_create(file, &w, NULL), NDE_OK);
  const char *names[8];
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  double *t = calloc((size_t)n_t, sizeof *t), *Y = calloc((size_t)n_t * n, sizeof *Y);
  for (int i = 0; i < n_t; i++) t[i] = dt * i;
  for (int s = 0; s < S; s++) {
    nde_sim_opts so = nde_sim_opts_default();
    nde_solve_stats ss;
    assert_int_equal(nde_simulate(m, theta, u0s + s * n, (size_t)n_t, t, &so, Y, NULL, &ss, NULL),
                     NDE_OK);
    assert_int_equal(ss.reason, NDE_REASON_NONE);
    if (nan_at_first)
      for (int j = 0; j < n; j++)
        if (isnan(nan_at_first[j])) Y[j] = NAN;
    nde_series se = {(size_t)n_t, (size_t)n, t, Y, names, NULL};
    assert_int_equal(nde_writer_put_series(w, groups ? groups[s] : "/", &se), NDE_OK);
  }
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  free(t);
  free(Y);
}

static void unobserved_state_takes_the_declared_initial_value_or_is_refused(void **state) {
  (void)state;
  /* Issue 9: the test was inverted: data with an unobserved state were refused when the model
   * declares the initial value, and silently started at 0 when it does not. */
  nde_model *m = load(LV_SRC);
  double theta[4];
  nde_model_init_theta(m, 1, theta);
  const double u0[2] = {0.7, 2.9}, hole[2] = {0.0, NAN};
  write_data(path_of("hole.h5"), m, theta, 1, NULL, u0, 9, 0.25, hole);
  nde_data *d = open_data(path_of("hole.h5"), m);
  nde_problem *p = NULL;
  nde_error err;
  assert_int_equal(nde_problem_create(m, d, NULL, &p, &err), NDE_OK);
  /* x from the data's first row, y from the model's declaration. */
  assert_true(nde_problem_u0(p, 0)[0] == 0.7);
  assert_true(nde_problem_u0(p, 0)[1] == 4.6280594);
  nde_problem_destroy(&p);
  /* The same model without an initial value for y: an error naming it. */
  const char *src2 =
      "state x = 0.44249296\nstate y\nparam alpha = 1.3 (positive)\nparam beta = 0.9 (positive)\n"
      "param gamma = 0.8 (positive)\nparam delta = 1.8 (positive)\n"
      "dx/dt = alpha*x - beta*x*y\ndy/dt = gamma*x*y - delta*y\n";
  nde_model *m2 = load(src2);
  assert_int_equal(nde_problem_create(m2, d, NULL, &p, &err), NDE_ERR_DATA);
  assert_null(p);
  assert_non_null(strstr(err.msg, "state 'y' is not observed at the first time"));
  assert_non_null(strstr(err.msg, "hole.h5:/y"));
  nde_model_destroy(&m2);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Issue 13: the shooting segments of a series on a uniform grid have the same times relative to
 * their start; with batch_segments (nde_fit_opts.autonomous, nde fit --batch-segments) they are
 * one batched solve when nothing in the model reads t, and the loss and gradient are those of the
 * segments one by one to rounding.  Without it (the default) each segment is a solve of its own;
 * a model that reads t, in its equations or only in an observable, or has a measured input, is
 * refused with it (the batch would be solved on its first segment's times). */
static void shooting_segments_of_an_autonomous_model_are_one_solve(void **state) {
  (void)state;
  nde_model *m = load(LV_SRC);
  double theta[4];
  nde_model_init_theta(m, 1, theta);
  const double u0[2] = {0.7, 2.9};
  write_data(path_of("seg.h5"), m, theta, 1, NULL, u0, 41, 0.25, NULL);
  nde_data *d = open_data(path_of("seg.h5"), m);
  static const char *const variants[] = {
      LV_SRC,
      LV_SRC "observe s = x + 0*t\n",
      "state x = 0.44249296, y = 4.6280594\n"
      "param alpha = 1.3 (positive)\nparam beta = 0.9 (positive)\n"
      "param gamma = 0.8 (positive)\nparam delta = 1.8 (positive)\n"
      "dx/dt = alpha*x - beta*x*y + 0*t\ndy/dt = gamma*x*y - delta*y\n",
  };
  double L_alone = NAN, *g_alone = NULL;
  for (int v = 0; v < 3; v++) {
    nde_model *mv = load(variants[v]);
    assert_int_equal(nde_model_is_autonomous(mv), v == 0);
    for (int batched = 0; batched <= 1; batched++) {
      nde_result_fit_opts o = nde_result_fit_opts_default();
      o.objective.autonomous = batched;
      nde_problem *p = NULL;
      nde_error err;
      const nde_status st = nde_problem_create(mv, d, &o, &p, &err);
      if (batched && v > 0) {
        assert_int_equal(st, NDE_ERR_ARG);
        assert_non_null(strstr(err.msg, "--batch-segments"));
        assert_non_null(strstr(err.msg, "this one reads t"));
        continue;
      }
      assert_int_equal(st, NDE_OK);
      nde_fit *f = nde_problem_objective(p);
      const size_t nx = nde_fit_n_x(f, 1);
      double *x = calloc(nx, sizeof *x), *g = calloc(nx, sizeof *g), L;
      assert_int_equal(nde_fit_init_x(f, theta, x), NDE_OK);
      nde_fit_info info;
      assert_int_equal(nde_fit_eval(f, x, 1, NULL, &L, g, &info), NDE_OK);
      assert_true(isfinite(L));
      const long want = batched ? 1 : 10;
      if (info.n_solves != want)
        fail_msg("variant %d, batch_segments %d: %ld solves for 10 segments, expected %ld", v,
                 batched, info.n_solves, want);
      if (v == 0 && !batched) {
        L_alone = L;
        g_alone = calloc(nx, sizeof *g_alone);
        memcpy(g_alone, g, nx * sizeof *g);
      } else if (v == 0) {
        check_close(L, L_alone, 1e-12);
        for (size_t i = 0; i < nx; i++) check_close(g[i], g_alone[i], 1e-12);
      }
      free(x);
      free(g);
      nde_problem_destroy(&p);
    }
    nde_model_destroy(&mv);
  }
  free(g_alone);
  nde_model *mi = load("state x = 1\ninput u\ndx/dt = -x + u\n");
  assert_int_equal(nde_model_is_autonomous(mi), 0);
  assert_int_equal(nde_model_is_autonomous(NULL), 0);
  nde_model_destroy(&mi);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static nde_result *short_fit(nde_model *m, nde_data *d, const char *out) {
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "shoot:adam:60@0.01,lbfgs:30";
  o.checkpoint_every = 20;
  o.checkpoint_path = out;
  o.checkpoint_seconds = 0;
  o.command_line = "test";
  nde_result *r = NULL;
  nde_error err;
  if (nde_result_fit(m, d, &o, &r, &err) != NDE_OK) fail_msg("fit: %s", err.msg);
  return r;
}

static void a_saved_result_opens_with_everything_it_holds(void **state) {
  (void)state;
  nde_model *m = load(LV_SRC);
  double theta[4];
  nde_model_init_theta(m, 1, theta);
  const double u0[4] = {0.44, 4.63, 1.7, 2.2};
  const char *groups[2] = {"/run1", "/run2"};
  write_data(path_of("two.h5"), m, theta, 2, groups, u0, 11, 0.3, NULL);
  nde_data *d = open_data(path_of("two.h5"), m);
  /* Start away from the truth. */
  nde_result *r = short_fit(m, d, path_of("fit.h5"));
  assert_int_equal(nde_result_status(r), NDE_FIT_DONE);
  nde_result *q = NULL;
  nde_error err;
  assert_int_equal(nde_result_open(path_of("fit.h5"), &q, &err), NDE_OK);
  assert_int_equal(nde_result_n_theta(q), 4);
  assert_memory_equal(nde_result_theta(q), nde_result_theta(r), 4 * sizeof(double));
  assert_memory_equal(nde_result_theta_last(q), nde_result_theta_last(r), 4 * sizeof(double));
  assert_int_equal(nde_result_n_series(q), 2);
  nde_result_series a, b;
  assert_int_equal(nde_result_get_series(q, 1, &a), NDE_OK);
  assert_int_equal(nde_result_get_series(r, 1, &b), NDE_OK);
  assert_string_equal(a.name, "/run2");
  assert_int_equal(a.n_obs, 11);
  assert_memory_equal(a.t, b.t, 11 * sizeof(double));
  assert_memory_equal(a.u0, b.u0, 2 * sizeof(double));
  assert_int_equal(nde_result_find_series(q, "/run1"), 0);
  const double *h1, *h2;
  assert_int_equal(nde_result_history(q, &h1), nde_result_history(r, &h2));
  assert_memory_equal(h1, h2, nde_result_history(r, NULL) * sizeof(double));
  const nde_result_fit_opts *s = nde_result_settings(q);
  assert_string_equal(s->solver.method, "rk4");
  assert_int_equal(s->solver.steps_per_interval, 5);
  assert_string_equal(s->schedule, "shoot:adam:60@0.01,lbfgs:30");
  assert_string_equal(s->command_line, "test");
  assert_string_equal(nde_result_provenance(q, "nde_version"), nde_version());
  /* How it ran survives save and open too. */
  for (int i = 0; i < 3; i++) {
    const char *key = (const char *[]){"threads", "mpi_ranks", "blas_threads"}[i];
    assert_non_null(nde_result_provenance(q, key));
    assert_string_equal(nde_result_provenance(q, key), nde_result_provenance(r, key));
  }
  /* The largest batch is a setting of the path (groups sum in their own order): recorded, and a
   * resume with another one is refused. */
  assert_int_equal(s->objective.batch_rows, NDE_FIT_BATCH_ROWS);
  nde_result_fit_opts o2 = *s;
  o2.resume = q;
  o2.checkpoint_path = NULL;
  o2.objective.batch_rows = 3;
  nde_result *r2 = NULL;
  assert_int_equal(nde_result_fit(m, d, &o2, &r2, &err), NDE_ERR_DATA);
  assert_non_null(strstr(err.msg, "the largest batch (batch_rows) is 64 in the checkpoint, 3 now"));
  assert_null(r2);
  const nde_result_kept k1 = nde_result_get_kept(q), k2 = nde_result_get_kept(r);
  assert_true(k1.iteration == k2.iteration && k1.loss == k2.loss && k1.is_best == k2.is_best);
  const long *pe;
  assert_int_equal(nde_result_phase_ends(q, &pe), 2);
  assert_int_equal(pe[0], 60);
  /* The fitted curves are what integrating from the fitted start on the data times gives. */
  double Y[22], Z[22];
  nde_start st = {.kind = NDE_START_FITTED, .series = 1};
  nde_solve_stats ss;
  assert_int_equal(nde_result_integrate(q, &st, 11, a.t, NULL, Y, &ss, NULL), NDE_OK);
  nde_reader *rd = NULL;
  assert_int_equal(nde_reader_open(path_of("fit.h5"), &rd, NULL), NDE_OK);
  assert_int_equal(nde_reader_get_doubles(rd, "/fitted/run2/y", 22, Z), NDE_OK);
  nde_reader_destroy(&rd);
  assert_memory_equal(Y, Z, sizeof Y);
  /* The fitted trajectory at a time inside its span is the start it stands for. */
  nde_start at = {.kind = NDE_START_AT_TIME, .series = 1, .t = a.t[4]};
  double t0, u[2];
  assert_int_equal(nde_result_start_state(q, &at, &t0, u, NULL), NDE_OK);
  check_rel(u[0], Y[8], 1e-9, 1e-12);
  check_rel(u[1], Y[9], 1e-9, 1e-12);
  at.t = 99;
  assert_int_equal(nde_result_start_state(q, &at, &t0, u, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "outside the fitted span"));
  nde_result_destroy(&q);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void an_old_or_foreign_file_names_what_is_missing(void **state) {
  (void)state;
  nde_writer *w = NULL;
  assert_int_equal(nde_writer_create(path_of("old.h5"), &w, NULL), NDE_OK);
  size_t dims[1] = {2};
  const double th[2] = {1, 2};
  assert_int_equal(nde_writer_put_doubles(w, "/params/theta", 1, dims, th), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  nde_result *r = NULL;
  nde_error err;
  assert_int_equal(nde_result_open(path_of("old.h5"), &r, &err), NDE_ERR_DATA);
  assert_null(r);
  assert_non_null(strstr(err.msg, "old.h5:/ attribute format: not 'nde-fit'"));
  assert_int_equal(nde_result_open(path_of("none.h5"), &r, &err), NDE_ERR_IO);
}

static void held_out_series_start_from_their_own_first_row(void **state) {
  (void)state;
  nde_model *m = load(LV_SRC);
  double theta[4];
  nde_model_init_theta(m, 1, theta);
  const double u0[2] = {0.44249296, 4.6280594}, u1[2] = {1.7, 2.2};
  write_data(path_of("train.h5"), m, theta, 1, NULL, u0, 21, 0.25, NULL);
  write_data(path_of("held.h5"), m, theta, 1, NULL, u1, 21, 0.25, NULL);
  nde_data *d = open_data(path_of("train.h5"), m), *h = open_data(path_of("held.h5"), m);
  nde_result *r = short_fit(m, d, NULL);
  nde_score *sc = NULL;
  assert_int_equal(nde_result_score(r, h, NULL, &sc, NULL), NDE_OK);
  nde_series_score s0;
  assert_int_equal(nde_score_get(sc, 0, &s0), NDE_OK);
  assert_true(s0.u0[0] == 1.7 && s0.u0[1] == 2.2);
  const double own = nde_score_rmse(sc);
  nde_score_destroy(&sc);
  /* From the training series' fitted start instead (the old behaviour): far worse. */
  nde_score_opts so = nde_score_opts_default();
  so.start_fitted = 1;
  assert_int_equal(nde_result_score(r, h, &so, &sc, NULL), NDE_OK);
  printf("held-out RMSE from its own first row %.3g, from the fitted start %.3g\n", own,
         nde_score_rmse(sc));
  assert_true(own < 0.05);
  assert_true(nde_score_rmse(sc) > 10 * own);
  nde_score_destroy(&sc);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_data_destroy(&h);
  nde_model_destroy(&m);
}

static void per_series_parameters_are_fitted_jointly(void **state) {
  (void)state;
  const char *truth = "state x = 1\nparam k = 1 (positive, per series)\nparam c = 0.3\n"
                      "dx/dt = -k*x + c\n";
  nde_model *m = load(truth);
  /* Two series with k = 0.7 and 1.9, shared c = 0.3. */
  const int S = 2;
  double theta[3];
  assert_int_equal(nde_model_n_theta_full(m, S), 3);
  assert_int_equal(nde_model_init_theta_full(m, 1, S, theta), NDE_OK);
  const int ik = nde_model_find_param(m, "k");
  assert_int_equal(nde_model_set_param_series(m, ik, 0, 0.7, theta), NDE_OK);
  assert_int_equal(nde_model_set_param_series(m, ik, 1, 1.9, theta), NDE_OK);
  const char *groups[2] = {"/a", "/b"};
  nde_writer *w = NULL;
  assert_int_equal(nde_writer_create(path_of("ps.h5"), &w, NULL), NDE_OK);
  const char *names[1] = {"x"};
  for (int s = 0; s < S; s++) {
    double t[15], y[15];
    for (int i = 0; i < 15; i++) {
      const double k = s ? 1.9 : 0.7;
      t[i] = 0.2 * i;
      y[i] = 0.3 / k + (1 - 0.3 / k) * exp(-k * t[i]);
    }
    nde_series se = {15, 1, t, y, names, NULL};
    assert_int_equal(nde_writer_put_series(w, groups[s], &se), NDE_OK);
  }
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  nde_data *d = open_data(path_of("ps.h5"), m);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "lbfgs:200";
  o.solver.steps_per_interval = 20;
  nde_result *r = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
  assert_int_equal(nde_result_n_theta(r), 3);
  check_rel(nde_result_param_series(r, ik, 0), 0.7, 1e-4, 1e-12);
  check_rel(nde_result_param_series(r, ik, 1), 1.9, 1e-4, 1e-12);
  check_rel(nde_result_param(r, nde_model_find_param(m, "c")), 0.3, 1e-4, 1e-12);
  assert_true(isnan(nde_result_param(r, ik)));
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* The LV UDE (both rates fixed, the interactions a net) fitted to data/lotka_volterra.h5 with
 * the defaults: the model, data and result (the caller destroys all three). */
static nde_result *lv_ude_fit(nde_model **m, nde_data **d) {
  const char *ude = "state x = 0.44249296, y = 4.6280594\n"
                    "param alpha = 1.3 (fixed)\nparam delta = 1.8 (fixed)\n"
                    "net U : 2 -> 5 rbf -> 5 rbf -> 5 rbf -> 2\nu = U(x, y)\n"
                    "dx/dt = alpha*x + u[1]\ndy/dt = -delta*y + u[2]\n";
  *m = load(ude);
  const char *names[2] = {"x", "y"};
  assert_int_equal(nde_data_open(NDE_SOURCE_DIR "/data/lotka_volterra.h5", 2, names, NULL, d,
                                 NULL),
                   NDE_OK);
  nde_result *r = NULL;
  nde_error err;
  if (nde_result_fit(*m, *d, NULL, &r, &err) != NDE_OK) fail_msg("LV UDE fit: %s", err.msg);
  return r;
}

static void discovery_steps_are_library_calls(void **state) {
  (void)state;
  nde_model *m = NULL;
  nde_data *d = NULL;
  nde_error err;
  nde_result *r = lv_ude_fit(&m, &d);
  nde_discover_opts o = nde_discover_opts_default();
  nde_discovery *dd = NULL;
  /* Inconsistent options are refused by name, never followed. */
  o.library.n_user = 1;
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "invalid user terms"));
  o.library.n_user = -3;
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_ERR_ARG);
  o = nde_discover_opts_default();
  o.criterion = (nde_criterion)7;
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "invalid criterion 7"));
  o = nde_discover_opts_default();
  o.threshold = NAN;
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_ERR_ARG);
  assert_null(dd);
  /* A candidate term undefined along the trajectories is named with the state there. */
  o = nde_discover_opts_default();
  const char *bad_term[1] = {"log(x - 100)"};
  o.library.n_user = 1;
  o.library.user = bad_term;
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_OK);
  assert_int_equal(nde_discovery_sample(dd, &err), NDE_ERR_NUMERIC);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "the candidate term 'log(x - 100)' is not finite at a sample "
                                  "along the fitted trajectories (sample 0, t = 0, x = "));
  nde_discovery_destroy(&dd);
  o = nde_discover_opts_default();
  assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_OK);
  assert_int_equal(nde_discovery_n_outputs(dd), 2);
  assert_int_equal(nde_discovery_n_terms(dd), 10); /* 1, x, y, x^2, xy, y^2, ... degree 3 */
  assert_int_equal(nde_discovery_sample(dd, &err), NDE_OK);
  assert_int_equal(nde_discovery_n_samples(dd), 200);
  assert_int_equal(nde_discovery_candidates(dd, &err), NDE_OK);
  nde_discovery_output oi;
  assert_int_equal(nde_discovery_get_output(dd, 0, &oi), NDE_OK);
  assert_true(oi.n_candidates > 5);
  assert_int_equal(oi.chosen, -1);
  char *text = NULL;
  assert_int_equal(nde_discovery_model_text(dd, &text, &err), NDE_ERR_ARG);
  assert_int_equal(nde_discovery_select(dd, &err), NDE_OK);
  for (int q = 0; q < 2; q++) {
    assert_int_equal(nde_discovery_get_output(dd, q, &oi), NDE_OK);
    nde_discovery_candidate c;
    assert_int_equal(nde_discovery_get_candidate(dd, q, oi.chosen, &c), NDE_OK);
    char *eq = nde_discovery_equation(dd, q, oi.chosen, 0);
    printf("U[%d] ~ %s\n", q + 1, eq);
    assert_int_equal(c.n_terms, 1);
    assert_true(c.xi[4] != 0); /* the x*y term */
    check_rel(c.xi[4], q == 0 ? -0.9 : 0.8, 0.05, 1e-12);
    nde_free(eq);
  }
  assert_int_equal(nde_discovery_model_text(dd, &text, &err), NDE_OK);
  assert_non_null(strstr(text, "param U1_xy ="));
  nde_free(text);
  nde_discovery_destroy(&dd);
  /* A user term of any length: the texts are grown, never written into guessed buffers
   * (issue 9: --terms "sin(x)*y<12000 spaces>" overflowed the heap). */
  size_t len = 12000 + 16;
  char *long_term = malloc(len);
  strcpy(long_term, "sin(x)*y");
  memset(long_term + 8, ' ', 12000);
  long_term[8 + 12000] = '\0';
  const char *user[1] = {long_term};
  o.library.n_user = 1;
  o.library.user = user;
  o.points = 20;
  assert_int_equal(nde_discover(r, &o, &dd, &err), NDE_OK);
  assert_int_equal(nde_discovery_model_text(dd, &text, &err), NDE_OK);
  nde_free(text);
  nde_discovery_destroy(&dd);
  free(long_term);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Issue 13: discovery's sampling (the series' integrations, then the nets and terms at the
 * samples in blocks of 256) runs on threads; the samples, the net outputs and every candidate are
 * the same bits at 1, 2 and 3 threads, and a term that is not finite at some samples is reported
 * at the first of them whatever the timing. */
static void discovery_sampling_is_the_same_on_any_number_of_threads(void **state) {
  (void)state;
  nde_model *m = NULL;
  nde_data *d = NULL;
  nde_error err;
  nde_result *r = lv_ude_fit(&m, &d);
  nde_discover_opts o = nde_discover_opts_default();
  o.samples = 2000; /* 2200 samples: 9 blocks */
  o.margin = 0.5;
  double *S1 = NULL, xi1 = 0;
  size_t ns = 0;
  for (int threads = 1; threads <= 3; threads++) {
    o.threads = threads;
    nde_discovery *dd = NULL;
    assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_OK);
    assert_int_equal(nde_discovery_select(dd, &err), NDE_OK);
    nde_discovery_output oi;
    assert_int_equal(nde_discovery_get_output(dd, 0, &oi), NDE_OK);
    nde_discovery_candidate c;
    assert_int_equal(nde_discovery_get_candidate(dd, 0, oi.n_candidates - 1, &c), NDE_OK);
    double xi = 0;
    for (int j = 0; j < nde_discovery_n_terms(dd); j++) xi += c.xi[j] * (j + 1);
    if (threads == 1) {
      ns = nde_discovery_n_samples(dd);
      assert_int_equal(ns, 2200);
      S1 = malloc(ns * 2 * sizeof *S1);
      memcpy(S1, nde_discovery_samples(dd), ns * 2 * sizeof *S1);
      xi1 = xi;
    } else {
      assert_int_equal(nde_discovery_n_samples(dd), ns);
      assert_memory_equal(nde_discovery_samples(dd), S1, ns * 2 * sizeof *S1);
      assert_memory_equal(&xi, &xi1, sizeof xi);
    }
    nde_discovery_destroy(&dd);
  }
  /* A term undefined below x = c, c between the third and fourth smallest x of the samples (all
   * in the box, in different blocks of 256): the first of the three is reported at any number
   * of threads, although a later block may fail first in time. */
  double lo[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
  for (size_t i = 0; i < ns; i++) {
    double v = S1[2 * i];
    for (int q = 0; q < 4; q++)
      if (v < lo[q]) {
        const double t = lo[q];
        lo[q] = v;
        v = t;
      }
  }
  const double c = 0.5 * (lo[2] + lo[3]);
  size_t first = SIZE_MAX, last = 0;
  for (size_t i = 0; i < ns; i++)
    if (S1[2 * i] - c <= 0) {
      if (first == SIZE_MAX) first = i;
      last = i;
    }
  print_message("failing samples %zu .. %zu\n", first, last);
  assert_true(first >= 256 && last / 256 > first / 256);
  char term[64], want[64];
  snprintf(term, sizeof term, "log(x - %.17g)", c);
  snprintf(want, sizeof want, "(sample %zu, t = ", first);
  const char *user[1] = {term};
  o.library.n_user = 1;
  o.library.user = user;
  for (int threads = 1; threads <= 3; threads++) {
    o.threads = threads;
    nde_discovery *dd = NULL;
    assert_int_equal(nde_discovery_create(r, &o, &dd, &err), NDE_OK);
    assert_int_equal(nde_discovery_sample(dd, &err), NDE_ERR_NUMERIC);
    print_message("%d threads: %s\n", threads, err.msg);
    assert_non_null(strstr(err.msg, want));
    assert_non_null(strstr(err.msg, "a sample of the box around the trajectories"));
    nde_discovery_destroy(&dd);
  }
  free(S1);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Issue 11: a model driven by a step input and a constant from data.  The result keeps what drove
 * each series (saved and opened bit for bit), integrations use it (or given inputs), a horizon
 * beyond the inputs is refused, and held-out series are scored driven by their own inputs. */
static void inputs_and_constants_drive_fits_results_and_scores(void **state) {
  (void)state;
  const char *src = "state x = 1\ninput u (step)\nconst g (from data)\nparam k = 0.5 (positive)\n"
                    "dx/dt = -k*x + g*u\n";
  nde_model *m = load(src);
  const double ut[3] = {0, 1.37, 4}, uu[3] = {0, 1, 1};
  const nde_input_series inp = {3, ut, uu};
  const char *in_names[1] = {"u"}, *c_names[1] = {"g"}, *names[1] = {"x"};
  double theta[1], t[17], Y[2][17];
  const double g[2] = {2, 0.5}, u0 = 1;
  for (int i = 0; i < 17; i++) t[i] = 0.25 * i;
  assert_int_equal(nde_model_set_param(m, 0, 1.3, theta), NDE_OK);
  nde_series se[2];
  nde_series_extra x[2];
  for (int s = 0; s < 2; s++) {
    nde_sim_opts so = nde_sim_opts_default();
    so.inputs = &inp;
    so.consts = &g[s];
    nde_solve_stats ss;
    assert_int_equal(nde_simulate(m, theta, &u0, 17, t, &so, Y[s], NULL, &ss, NULL), NDE_OK);
    se[s] = (nde_series){17, 1, t, Y[s], names, NULL};
    x[s] = (nde_series_extra){0};
    x[s].m = 1;
    x[s].n_u = 3;
    x[s].u_t = ut;
    x[s].u = uu;
    x[s].input_names = in_names;
    x[s].n_consts = 1;
    x[s].const_names = c_names;
    x[s].consts = &g[s];
  }
  /* The inputs jump at 1.37, between observations: the solve must stop there. */
  nde_data_opts dopts = nde_data_opts_default();
  dopts.n_inputs = 1;
  dopts.input_names = in_names;
  dopts.n_consts = 1;
  dopts.const_names = c_names;
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(1, names, 2, se, x, &dopts, &d, &err), NDE_OK);
  nde_result *r = short_fit(m, d, path_of("drive.h5"));
  assert_int_equal(nde_result_status(r), NDE_FIT_DONE);
  const double k = nde_result_param(r, 0);
  print_message("k = %.10g (truth 1.3), loss %g\n", k, nde_result_get_kept(r).loss);
  assert_true(fabs(k - 1.3) < 1e-3);
  nde_result_series rs;
  assert_int_equal(nde_result_get_series(r, 1, &rs), NDE_OK);
  assert_int_equal(rs.n_u, 3);
  assert_true(rs.u_t[1] == 1.37 && rs.u[2] == 1 && rs.consts[0] == 0.5);
  /* Saved and opened: the same inputs, the same curves. */
  nde_result *o = NULL;
  assert_int_equal(nde_result_open(path_of("drive.h5"), &o, &err), NDE_OK);
  nde_result_series os;
  assert_int_equal(nde_result_get_series(o, 1, &os), NDE_OK);
  assert_int_equal(os.n_u, 3);
  assert_memory_equal(os.u_t, ut, sizeof ut);
  assert_memory_equal(os.u, uu, sizeof uu);
  assert_true(os.consts[0] == 0.5);
  double A[17], B[17];
  nde_start st = {.kind = NDE_START_FITTED, .series = 1};
  nde_solve_stats ss;
  assert_int_equal(nde_result_integrate(r, &st, 17, t, NULL, A, &ss, NULL), NDE_OK);
  assert_int_equal(nde_result_integrate(o, &st, 17, t, NULL, B, &ss, NULL), NDE_OK);
  assert_memory_equal(A, B, sizeof A);
  /* The truth of series 2 at the fitted k. */
  for (int i = 0; i < 17; i++) assert_true(fabs(A[i] - Y[1][i]) < 1e-3);
  /* Series are counted from 0 in the library's messages, as in its calls. */
  nde_start none = {.kind = NDE_START_FITTED, .series = 2};
  assert_int_equal(nde_result_integrate(r, &none, 17, t, NULL, A, &ss, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "series index 2 does not exist (the result holds 2, indices "
                                  "from 0)"));
  /* Beyond the inputs: refused, naming the input. */
  const double far[2] = {1, 5};
  assert_int_equal(nde_result_integrate(r, &st, 2, far, NULL, A, &ss, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "measured input 'u' beyond its samples on [0, 4]"));
  /* Given inputs: u = 0 throughout, so x decays freely: x(t) = exp(-k t). */
  const double zt[2] = {0, 5}, zu[2] = {0, 0};
  const nde_input_series zero = {2, zt, zu};
  st.inputs = &zero;
  assert_int_equal(nde_result_integrate(r, &st, 2, far, NULL, A, &ss, NULL), NDE_OK);
  assert_true(fabs(A[1] - exp(-k * 5)) < 1e-5);
  /* The linearised band is driven as the integration is: by the series' own inputs and
   * constant (start.inputs NULL), or by the given ones.  With u = 0, x = exp(-k t), so the band's
   * half-width at t is q t exp(-k t) se(k) under a known noise (q the normal quantile). */
  nde_unc_opts uo = nde_unc_opts_default();
  uo.noise = NDE_NOISE_KNOWN;
  const double sd1 = 0.01;
  uo.noise_std = &sd1;
  assert_int_equal(nde_result_compute_uncertainty(r, d, &uo, &err), NDE_OK);
  const nde_uncertainty *un = nde_result_get_uncertainty(r);
  const double se_k = un->entry[0].se, q = un->quantile;
  /* The sensitivities stop at the input's jump as the residuals do: central differences of the
   * residuals give the same standard error. */
  uo.finite_differences = 1;
  assert_int_equal(nde_result_compute_uncertainty(r, d, &uo, &err), NDE_OK);
  const double se_fd = nde_result_get_uncertainty(r)->entry[0].se;
  print_message("se(k) %.10g (sensitivities), %.10g (differences)\n", se_k, se_fd);
  assert_true(fabs(se_k - se_fd) <= 1e-6 * se_fd);
  uo.finite_differences = 0;
  assert_int_equal(nde_result_compute_uncertainty(r, d, &uo, &err), NDE_OK);
  un = nde_result_get_uncertainty(r);
  double lo[17], mid[17], hi[17];
  nde_start own = {.kind = NDE_START_FITTED, .series = 1};
  assert_int_equal(nde_result_integrate(r, &own, 17, t, NULL, B, &ss, NULL), NDE_OK);
  if (nde_result_integrate_band(r, &own, 17, t, NULL, 0.95, lo, mid, hi, NULL, &err) != NDE_OK)
    fail_msg("band: %s", err.msg);
  for (int i = 0; i < 17; i++) {
    if (!(fabs(mid[i] - B[i]) < 1e-6)) print_message("t %g mid %.12g integrate %.12g\n", t[i], mid[i], B[i]);
    assert_true(fabs(mid[i] - B[i]) < 1e-6);
    assert_true(lo[i] <= mid[i] && mid[i] <= hi[i] && (i == 0 || hi[i] > lo[i]));
  }
  assert_int_equal(nde_result_integrate_band(r, &st, 2, far, NULL, 0.95, lo, mid, hi, NULL, &err),
                   NDE_OK);
  const double half = q * 5 * exp(-k * 5) * se_k;
  print_message("band at t = 5 with u = 0: mid %.10g (exp(-5k) %.10g), half-width %.6g (%.6g)\n",
                mid[1], exp(-k * 5), (hi[1] - lo[1]) / 2, half);
  assert_true(fabs(mid[1] - exp(-k * 5)) < 1e-5);
  assert_true(fabs((hi[1] - lo[1]) / 2 - half) < 1e-4 * half);
  /* An ensemble's band: each member driven by the series' own inputs when none are given. */
  nde_result_fit_opts eo = nde_result_fit_opts_default();
  eo.schedule = "lbfgs:30";
  nde_ensemble_opts en = nde_ensemble_opts_default();
  en.members = 3;
  en.resample = NDE_RESAMPLE_TIME;
  en.fraction = 0.7;
  en.threads = 1;
  nde_result *e = NULL;
  int stopped = 0;
  assert_int_equal(nde_result_fit_ensemble(m, d, &eo, &en, &e, &stopped, &err), NDE_OK);
  int used = 0;
  if (nde_result_integrate_band(e, &own, 17, t, NULL, 0.9, lo, mid, hi, &used, &err) != NDE_OK)
    fail_msg("ensemble band: %s", err.msg);
  assert_int_equal(used, 3);
  for (int i = 0; i < 17; i++) assert_true(fabs(mid[i] - Y[1][i]) < 1e-3 && lo[i] <= hi[i]);
  /* A member as a result has its own numbers, also after the ensemble is saved and opened. */
  assert_int_equal(nde_result_save(e, path_of("ens.h5"), &err), NDE_OK);
  nde_result *ens_o = NULL;
  assert_int_equal(nde_result_open(path_of("ens.h5"), &ens_o, &err), NDE_OK);
  for (int j = 0; j < 3; j++) {
    nde_member_info mi;
    nde_result *mr = NULL, *mo = NULL;
    assert_int_equal(nde_result_get_member(e, j, &mi), NDE_OK);
    assert_int_equal(nde_result_member(e, j, &mr, &err), NDE_OK);
    assert_int_equal(nde_result_member(ens_o, j, &mo, &err), NDE_OK);
    const nde_result_kept a = nde_result_get_kept(mr), b = nde_result_get_kept(mo);
    print_message("member %d: loss %g score %g last %g, %ld iterations\n", j, a.loss, a.score,
                  a.last_loss, nde_result_iterations(mr));
    assert_true(a.loss == mi.loss && a.is_best && a.iteration >= 0 && isfinite(a.score));
    assert_int_equal(nde_result_iterations(mr), mi.iterations);
    assert_true(mi.iterations > 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(nde_result_iterations(mo), mi.iterations);
    nde_result_destroy(&mr);
    nde_result_destroy(&mo);
  }
  nde_member_info m0, m1;
  assert_int_equal(nde_result_get_member(e, 0, &m0), NDE_OK);
  assert_int_equal(nde_result_get_member(e, 1, &m1), NDE_OK);
  nde_result *r1 = NULL;
  assert_int_equal(nde_result_member(e, 1, &r1, &err), NDE_OK);
  /* Not the first member's: each fitted its own resampled rows. */
  assert_true(m0.loss != m1.loss && nde_result_get_kept(r1).score != nde_result_get_kept(e).score);
  nde_result_destroy(&r1);
  nde_result_destroy(&ens_o);
  nde_result_destroy(&e);
  /* Held-out experiments are driven by their own inputs and constants: the data themselves. */
  nde_score *sc = NULL;
  assert_int_equal(nde_result_score(r, d, NULL, &sc, &err), NDE_OK);
  assert_true(nde_score_rmse(sc) < 1e-3);
  nde_score_destroy(&sc);
  nde_result_destroy(&o);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Inputs whose samples end before the last observation (or start after the first) are read
 * by the data layer, refused by a model whose input must be sampled there, naming the series'
 * inputs and the declaration, and accepted by a model that declares the input hold. */
static void inputs_must_cover_the_observations_unless_they_hold(void **state) {
  (void)state;
  const double t[5] = {0, 1, 2, 3, 4}, y[5] = {1, 0.8, 0.7, 0.6, 0.55};
  const double ut[2] = {0, 2}, uu[2] = {1, 0};
  const char *in_names[1] = {"u"}, *names[1] = {"x"};
  nde_series se = {5, 1, t, y, names, NULL};
  nde_series_extra x = {0};
  x.m = 1;
  x.n_u = 2;
  x.u_t = ut;
  x.u = uu;
  x.input_names = in_names;
  x.name = "/run1";
  nde_data_opts dopts = nde_data_opts_default();
  dopts.n_inputs = 1;
  dopts.input_names = in_names;
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(1, names, 1, &se, &x, &dopts, &d, &err), NDE_OK);
  for (int hold = 0; hold < 2; hold++) {
    nde_model *m = load(hold ? "state x = 1\ninput u (hold)\nparam k = 0.5\ndx/dt = -k*x + u\n"
                             : "state x = 1\ninput u\nparam k = 0.5\ndx/dt = -k*x + u\n");
    nde_result_fit_opts o = nde_result_fit_opts_default();
    nde_problem *p = NULL;
    const nde_status st = nde_problem_create(m, d, &o, &p, &err);
    if (hold) {
      if (st != NDE_OK) fail_msg("hold: %s", err.msg);
    } else {
      assert_int_equal(st, NDE_ERR_DATA);
      print_message("%s\n", err.msg);
      /* Data from arrays: the series is named by its index, as nde_data_from_series names it,
       * not by its group name after an empty file name (":/run1/inputs/t"). */
      const char *want = "series 0:/inputs/t: the samples of the measured input 'u' span [0, 2], "
                         "which does not cover the observations on [0, 4]";
      assert_int_equal(strncmp(err.msg, want, strlen(want)), 0);
      assert_non_null(strstr(err.msg, "line 2)"));
    }
    nde_problem_destroy(&p);
    nde_model_destroy(&m);
  }
  nde_data_destroy(&d);
}

/* A step input of a compiled model that jumps inside the span and again at its last time, with
 * samples from exactly the first time (no hold): every fixed-step method keeps its order at the
 * last time (the last step sees the values from before the final jump) and evaluates nothing
 * before the first (yoshida4's outer kicks).  Before, rk4, leapfrog and yoshida4 were first-order
 * here and yoshida4 failed at t = 0. */
static void step_inputs_that_jump_at_the_ends_keep_every_order(void **state) {
  (void)state;
  nde_model *m = load("state q = 1, p = 0\ninput u (step)\nparam w = 1.3\n"
                      "dq/dt = p\ndp/dt = -w*q + u\n");
  const double ut[3] = {0, 0.6, 2}, uu[3] = {0.5, 1.5, -3};
  const nde_input_series inp = {3, ut, uu};
  const double t[3] = {0, 1, 2}, u0[2] = {1, 0};
  double theta[1], ref[6], Y[6];
  assert_int_equal(nde_model_init_theta(m, 1, theta), NDE_OK);
  nde_sim_opts so = nde_sim_opts_default();
  so.inputs = &inp;
  so.solver.method = "dopri5";
  so.solver.rtol = 1e-13;
  so.solver.atol = 1e-15;
  nde_error err;
  if (nde_simulate(m, theta, u0, 3, t, &so, ref, NULL, NULL, &err) != NDE_OK)
    fail_msg("reference: %s", err.msg);
  int checked = 0;
  for (int i = 0; i < nde_solver_method_count(); i++) {
    const nde_solver_method_info *mi = nde_solver_method_at(i);
    if (!mi->fixed_steps || mi->adaptive) continue;
    double e[2];
    for (int h = 0; h < 2; h++) {
      so.solver = nde_solver_opts_default();
      so.solver.method = mi->name;
      so.solver.steps_per_interval = 20 << h;
      nde_solve_stats ss;
      if (nde_simulate(m, theta, u0, 3, t, &so, Y, NULL, &ss, &err) != NDE_OK)
        fail_msg("%s: %s", mi->name, err.msg);
      assert_int_equal(ss.reason, NDE_REASON_NONE);
      e[h] = fmax(fabs(Y[4] - ref[4]), fabs(Y[5] - ref[5]));
    }
    const double order = log2(e[0] / e[1]);
    print_message("%-17s error at the last time %.2e -> %.2e: order %.2f\n", mi->name, e[0],
                  e[1], order);
    assert_true(fabs(order - mi->order) < 0.5);
    checked++;
  }
  assert_true(checked >= 5);
  nde_model_destroy(&m);
}

void openblas_set_num_threads(int); /* OpenBLAS's own (not in the C interface of BLAS) */
int openblas_get_num_threads(void);

/* A fit with wide networks (dgemm) gives the same bits on 1 and 2 threads of nde whatever
 * OpenBLAS was set to: the fit runs OpenBLAS on one thread and records it. */
static void the_bits_of_a_fit_do_not_depend_on_openblas_threads(void **state) {
  (void)state;
  nde_model *m = load("state x = 1, y = 0.5\nnet U : 2 -> 256 tanh -> 256 tanh -> 2\n"
                      "u = U(x, y)\ndx/dt = -0.5*x + u[1]\ndy/dt = 0.3*x - y + u[2]\n");
  enum { S = 12, NT = 11 };
  double t[NT], Y[S][NT * 2];
  const char *names[2] = {"x", "y"}, *groups[S];
  char gname[S][16];
  nde_series se[S];
  nde_series_extra x[S];
  for (int i = 0; i < NT; i++) t[i] = 0.2 * i;
  for (int k = 0; k < S; k++) {
    for (int i = 0; i < NT; i++) {
      Y[k][2 * i] = (1 + 0.1 * k) * exp(-0.5 * t[i]);
      Y[k][2 * i + 1] = 0.5 * cos(t[i] + 0.2 * k);
    }
    snprintf(gname[k], sizeof gname[k], "/s%02d", k);
    groups[k] = gname[k];
    se[k] = (nde_series){NT, 2, t, Y[k], names, NULL};
    x[k] = (nde_series_extra){0};
    x[k].name = groups[k];
  }
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(2, names, S, se, x, NULL, &d, &err), NDE_OK);
  nde_result *r[2] = {NULL, NULL};
  for (int v = 0; v < 2; v++) {
    openblas_set_num_threads(v ? 1 : 2);
    nde_result_fit_opts o = nde_result_fit_opts_default();
    o.schedule = "adam:4@0.001";
    o.threads = v ? 2 : 1;
    if (nde_result_fit(m, d, &o, &r[v], &err) != NDE_OK) fail_msg("fit: %s", err.msg);
    assert_string_equal(nde_result_provenance(r[v], "blas_threads"), "1");
    /* Restored when the fit's problem is gone. */
    assert_int_equal(openblas_get_num_threads(), v ? 1 : 2);
  }
  assert_int_equal(nde_result_n_theta(r[0]), nde_result_n_theta(r[1]));
  assert_memory_equal(nde_result_theta(r[0]), nde_result_theta(r[1]),
                      nde_result_n_theta(r[0]) * sizeof(double));
  nde_result_destroy(&r[0]);
  nde_result_destroy(&r[1]);
  openblas_set_num_threads(1);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* What a failed call leaves (a NULL result or model) answers every accessor with nothing, and
 * values that are not numbers, or options out of their range, are refused naming them. */
static void bad_arguments_are_refused_by_name(void **state) {
  (void)state;
  const double *h;
  const long *e;
  assert_int_equal(nde_result_status(NULL), NDE_FIT_FAILED);
  assert_string_equal(nde_result_message(NULL), "");
  assert_string_equal(nde_result_warning(NULL), "");
  assert_true(nde_result_n_theta(NULL) == 0 && !nde_result_theta(NULL) &&
              !nde_result_theta_last(NULL) && !nde_result_model(NULL) &&
              !nde_result_settings(NULL));
  assert_true(isnan(nde_result_param(NULL, 0)) && isnan(nde_result_param_series(NULL, 0, 0)));
  assert_true(isnan(nde_result_get_kept(NULL).loss) && nde_result_n_series(NULL) == 0);
  assert_int_equal(nde_result_find_series(NULL, "/"), -1);
  assert_true(isnan(nde_result_step(NULL)) && isnan(nde_result_seconds(NULL)));
  assert_true(nde_result_history(NULL, &h) == 0 && !h);
  assert_true(nde_result_scores(NULL, &h, &e) == 0 && !h && !e);
  assert_true(nde_result_phase_ends(NULL, &e) == 0 && !e);
  assert_true(nde_result_iterations(NULL) == 0 && !nde_result_provenance(NULL, "blas"));
  assert_true(nde_model_n_states(NULL) == 0 && nde_model_n_params(NULL) == 0 &&
              nde_model_n_theta(NULL) == 0 && nde_model_n_theta_full(NULL, 3) == 0);
  assert_true(nde_model_find_param(NULL, "k") == -1 && nde_model_find_component(NULL, "x") == -1 &&
              !nde_model_component_name(NULL, 0) && !nde_model_observable_name(NULL, 0) &&
              isnan(nde_model_param_value(NULL, 0, NULL)));
  assert_true(nde_problem_n_theta(NULL) == 0);

  nde_model *m = load("state x = 1\nparam k = 0.5 (positive)\ndx/dt = -k*x\n");
  double t[9], y[9], theta[1];
  for (int i = 0; i < 9; i++) t[i] = 0.25 * i, y[i] = exp(-0.5 * t[i]);
  assert_int_equal(nde_model_init_theta(m, 1, theta), NDE_OK);
  nde_error err;
  const double bad_u0 = NAN, u0 = 1, nan_theta = NAN;
  assert_int_equal(nde_simulate(m, theta, &bad_u0, 9, t, NULL, y, NULL, NULL, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "the initial state of x is nan"));
  assert_int_equal(nde_simulate(m, &nan_theta, &u0, 9, t, NULL, y, NULL, NULL, &err),
                   NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "the parameter 'k' is nan (theta[0]"));
  const char *names[1] = {"x"};
  nde_series se = {9, 1, t, y, names, NULL};
  nde_data *d = NULL;
  assert_int_equal(nde_data_from_series(1, names, 1, &se, NULL, NULL, &d, &err), NDE_OK);
  nde_result *r = NULL;
  nde_result_fit_opts o = nde_result_fit_opts_default();
  const double neg = -0.01;
  o.noise_std = &neg;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "the noise std of state 'x' is -0.01"));
  o = nde_result_fit_opts_default();
  o.theta0 = &nan_theta;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "the parameter 'k' is nan"));
  o = nde_result_fit_opts_default();
  o.schedule = "adam:10@inf";
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "bad learning rate 'inf'"));
  o = nde_result_fit_opts_default();
  o.phase_tol = NAN;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "phase_tol is nan"));
  o = nde_result_fit_opts_default();
  o.phase_patience = -1;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "phase_patience is -1"));
  o = nde_result_fit_opts_default();
  o.validate_tail = NAN;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  o = nde_result_fit_opts_default();
  o.objective.shoot_interval = -1;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "the shooting interval is -1"));
  assert_null(r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* An embedding program that ignores a failed load passes on a handle without states: every call
 * it reaches says the model did not load, with the load's message, instead of a message about
 * column counts ("the data were opened for 2 columns, the model has 0 state components") or
 * "nde_data_open: invalid arguments". */
static void a_model_that_failed_to_load_is_named_wherever_it_is_passed(void **state) {
  (void)state;
  const char *src = "state x, y\ndx/dt = q\ndy/dt = x\n";
  nde_model *bad = NULL, *good = load(LV_SRC);
  nde_error err;
  assert_int_equal(nde_model_load_string(src, strlen(src), "bad.nde", &bad, &err), NDE_ERR_MODEL);
  assert_non_null(bad);
  const double t[3] = {0, 0.5, 1}, y[6] = {1.25, 2.5, 1.5, 2.25, 1.75, 2.125};
  const char *names[2] = {"x", "y"};
  nde_series se = {3, 2, t, y, names, NULL};
  nde_data *d = NULL;
  assert_int_equal(nde_data_from_series(2, names, 1, &se, NULL, NULL, &d, &err), NDE_OK);
  const char *want = "needs a model that loaded without errors (bad.nde:2:9: error: unknown name 'q')";
  nde_data *d2 = NULL;
  assert_int_equal(nde_data_open_for(path_of("none.h5"), bad, &d2, &err), NDE_ERR_ARG);
  assert_null(d2);
  assert_non_null(strstr(err.msg, want));
  nde_result *r = NULL;
  assert_int_equal(nde_result_fit(bad, d, NULL, &r, &err), NDE_ERR_ARG);
  assert_null(r);
  assert_non_null(strstr(err.msg, "a fit needs a model that loaded"));
  assert_non_null(strstr(err.msg, want));
  nde_problem *p = NULL;
  assert_int_equal(nde_problem_create(bad, d, NULL, &p, &err), NDE_ERR_ARG);
  assert_null(p);
  assert_non_null(strstr(err.msg, "a problem needs a model that loaded"));
  /* A model that loaded is unaffected. */
  assert_int_equal(nde_problem_create(good, d, NULL, &p, &err), NDE_OK);
  nde_problem_destroy(&p);
  nde_data_destroy(&d);
  nde_model_destroy(&bad);
  nde_model_destroy(&good);
}

/* nde_time_grid far from 0 with a step below the spacing of doubles returned a grid that was not
 * increasing (t0 = 1e17, dt = 1: 930 of 993 steps repeated a time), which every integration
 * then refused with "output times must increase strictly". */
static void a_time_grid_finer_than_the_doubles_there_is_refused(void **state) {
  (void)state;
  double *g = NULL;
  size_t n = 7;
  nde_error err;
  assert_int_equal(nde_time_grid(1e17, 1e17 + 1e3, 1, 100000, &g, &n, &err), NDE_ERR_ARG);
  assert_null(g);
  assert_true(n == 0);
  assert_non_null(strstr(err.msg, "a step 1 is below the resolution of the times near 1e+17"));
  /* A step the doubles resolve there is a strictly increasing grid ending at t1. */
  assert_int_equal(nde_time_grid(1e17, 1e17 + 1e3, 37.5, 100000, &g, &n, &err), NDE_OK);
  assert_true(n >= 2 && g[n - 1] == 1e17 + 1e3);
  for (size_t i = 1; i < n; i++) assert_true(g[i] > g[i - 1]);
  nde_free(g);
}

/* nde_data_from_series said "expected at least one series" whatever the bad argument was. */
static void data_from_arrays_names_the_argument_that_is_wrong(void **state) {
  (void)state;
  const double t[2] = {0, 0.25}, y[2] = {1.5, 1.25};
  const char *names[1] = {"x"};
  nde_series se = {2, 1, t, y, names, NULL};
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(1, NULL, 1, &se, NULL, NULL, &d, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "n_state > 0 but no state_names"));
  assert_null(strstr(err.msg, "at least one series"));
  assert_int_equal(nde_data_from_series(0, names, 1, &se, NULL, NULL, &d, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "state_names given with n_state 0"));
  assert_int_equal(nde_data_from_series(1, names, 0, &se, NULL, NULL, &d, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "expected at least one series"));
  assert_int_equal(nde_data_from_series(1, names, 1, &se, NULL, NULL, NULL, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "no output pointer"));
  assert_null(d);
}

/* nde_result_fit with both theta0 and resume resumed and ignored theta0 without a word (the
 * command line and Python refuse --init with --resume). */
static void a_start_theta_is_refused_with_a_resume(void **state) {
  (void)state;
  nde_model *m = load("state x = 1.5\nparam k = 0.5 (positive)\ndx/dt = -k*x\n");
  double t[9], y[9];
  for (int i = 0; i < 9; i++) t[i] = 0.25 * i, y[i] = 1.5 * exp(-0.8125 * t[i]);
  const char *names[1] = {"x"};
  nde_series se = {9, 1, t, y, names, NULL};
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(1, names, 1, &se, NULL, NULL, &d, &err), NDE_OK);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "adam:40@0.05";
  o.threads = 1;
  nde_result *first = NULL, *again = NULL;
  assert_int_equal(nde_result_fit(m, d, &o, &first, &err), NDE_OK);
  const double theta0 = log(0.3125);
  o.resume = first;
  o.theta0 = &theta0;
  assert_int_equal(nde_result_fit(m, d, &o, &again, &err), NDE_ERR_ARG);
  assert_null(again);
  assert_non_null(strstr(err.msg, "theta0 and resume cannot be combined"));
  /* Each alone is accepted. */
  o.theta0 = NULL;
  assert_int_equal(nde_result_fit(m, d, &o, &again, &err), NDE_OK);
  nde_result_destroy(&again);
  o.resume = NULL;
  o.theta0 = &theta0;
  assert_int_equal(nde_result_fit(m, d, &o, &again, &err), NDE_OK);
  nde_result_destroy(&again);
  nde_result_destroy(&first);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* nde_data_from_series took "run1" and "/run1" as two series; the fit ran and then could not be
 * saved ("fit.h5:/fitted/run1/t: already exists"), both being the group /run1 of the file.
 * Names are group paths, as a file's. */
static void series_names_from_arrays_are_group_paths(void **state) {
  (void)state;
  const double t[3] = {0, 0.5, 1}, y[3] = {1.5, 1.25, 1.0625};
  const char *names[1] = {"x"};
  const nde_series s[2] = {{3, 1, t, y, names, NULL}, {3, 1, t, y, names, NULL}};
  const char *bad[][2] = {{"run1", "/run1"}, {"", "/b"}, {"/a//b", "/c"}, {"/a", "/b/"}};
  nde_data *d = NULL;
  nde_error err;
  for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
    nde_series_extra x[2] = {{0}, {0}};
    x[0].name = bad[c][0];
    x[1].name = bad[c][1];
    assert_int_equal(nde_data_from_series(1, names, 2, s, x, NULL, &d, &err), NDE_ERR_DATA);
    assert_null(d);
    assert_non_null(strstr(err.msg, "is not a group path"));
  }
  /* Group paths, nested ones too, fit and save with their names. */
  nde_series_extra x[2] = {{0}, {0}};
  x[0].name = "/batch/run1";
  x[1].name = "/run1";
  assert_int_equal(nde_data_from_series(1, names, 2, s, x, NULL, &d, &err), NDE_OK);
  nde_model *m = load("state x = 1.5\nparam k = 0.5 (positive)\ndx/dt = -k*x\n");
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "adam:5";
  o.threads = 1;
  nde_result *r = NULL, *back = NULL;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
  assert_int_equal(nde_result_save(r, path_of("names.h5"), &err), NDE_OK);
  assert_int_equal(nde_result_open(path_of("names.h5"), &back, &err), NDE_OK);
  assert_int_equal(nde_result_find_series(back, "/batch/run1"), 0);
  assert_int_equal(nde_result_find_series(back, "/run1"), 1);
  nde_result_destroy(&back);
  nde_result_destroy(&r);
  nde_model_destroy(&m);
  nde_data_destroy(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unobserved_state_takes_the_declared_initial_value_or_is_refused),
      cmocka_unit_test(shooting_segments_of_an_autonomous_model_are_one_solve),
      cmocka_unit_test(a_saved_result_opens_with_everything_it_holds),
      cmocka_unit_test(an_old_or_foreign_file_names_what_is_missing),
      cmocka_unit_test(held_out_series_start_from_their_own_first_row),
      cmocka_unit_test(per_series_parameters_are_fitted_jointly),
      cmocka_unit_test(discovery_steps_are_library_calls),
      cmocka_unit_test(discovery_sampling_is_the_same_on_any_number_of_threads),
      cmocka_unit_test(inputs_and_constants_drive_fits_results_and_scores),
      cmocka_unit_test(inputs_must_cover_the_observations_unless_they_hold),
      cmocka_unit_test(bad_arguments_are_refused_by_name),
      cmocka_unit_test(step_inputs_that_jump_at_the_ends_keep_every_order),
      cmocka_unit_test(the_bits_of_a_fit_do_not_depend_on_openblas_threads),
      cmocka_unit_test(a_model_that_failed_to_load_is_named_wherever_it_is_passed),
      cmocka_unit_test(a_time_grid_finer_than_the_doubles_there_is_refused),
      cmocka_unit_test(data_from_arrays_names_the_argument_that_is_wrong),
      cmocka_unit_test(a_start_theta_is_refused_with_a_resume),
      cmocka_unit_test(series_names_from_arrays_are_group_paths),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
