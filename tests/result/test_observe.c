/* Observation models and known noise in the fit objective (issue 11): data columns that are
 * observables ("observe s = g*x + y^2") are compared with the model's quantities, the gradient
 * flows through the observation model (dL/du = dH/du^T dL/dH and dH/dtheta) for every solver and
 * every gradient method it supports (from the registries), a column's known sigma weighs it by
 * 1/sigma^2, held-out data are scored on their observable columns, and the standard errors'
 * residual Jacobian runs through the observation model.  Gradients and Jacobians are checked
 * against central differences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hdf5.h>
#include <unistd.h>

#include "nde/nde.h"

/* Two states and two observables with parameters in them; x is also measured directly. */
static const char *SRC =
    "state x = 1.2, y = 0.4\n"
    "param a = 0.7 (positive)\n"
    "param b = 1.1\n"
    "param g = 1.5\n"
    "observe s = g*x + y^2\n"
    "observe q = x*y\n"
    "dx/dt = -a*x + 0.3*y\n"
    "dy/dt = b*x - y\n";

static nde_model *load_text(const char *src, const char *name) {
  nde_model *m = NULL;
  nde_error err;
  if (nde_model_load_string(src, strlen(src), name, &m, &err) != NDE_OK)
    fail_msg("model: %s", err.msg);
  return m;
}

static nde_model *load(void) { return load_text(SRC, "obs.nde"); }

enum { N_T = 13, K = 4 }; /* the problem's columns: x, y, s, q */

/* Data of the model at theta (with a small perturbation): columns x, s, q (y unmeasured), x
 * missing once, and sigma when asked.  D (N_T x 3) receives them. */
static nde_data *make_data(nde_model *m, const double *theta, int with_sigma, double *t,
                           double *D) {
  const char *cols[3] = {"x", "s", "q"};
  for (int i = 0; i < N_T; i++) t[i] = 0.25 * i;
  nde_sim_opts so = nde_sim_opts_default();
  so.n_columns = 3;
  so.columns = cols;
  double u0[2];
  nde_model_initial_state(m, u0);
  nde_solve_stats ss;
  assert_int_equal(nde_simulate(m, theta, u0, N_T, t, &so, D, NULL, &ss, NULL), NDE_OK);
  for (int i = 0; i < N_T; i++)
    for (int j = 0; j < 3; j++) D[i * 3 + j] *= 1.0 + 0.01 * sin(3.0 * i + j);
  D[1 * 3 + 0] = NAN; /* x missing once; the first row stays complete */
  const double sigma[3] = {0.05, 0.2, NAN};
  nde_series se = {N_T, 3, t, D, cols, NULL};
  nde_series_extra x = {0};
  x.sigma = with_sigma ? sigma : NULL;
  const char *names[4] = {"x", "y", "s", "q"};
  nde_data *d = NULL;
  nde_error err;
  if (nde_data_from_series(4, names, 1, &se, &x, NULL, &d, &err) != NDE_OK)
    fail_msg("data: %s", err.msg);
  return d;
}

/* The loss's gradient against central differences, for every solver and every gradient method
 * it supports. */
static void gradients_through_the_observation_model_match_differences(void **state) {
  (void)state;
  nde_model *m = load();
  const size_t P = nde_model_n_theta(m);
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 1, t, D);
  theta[0] += 0.05; /* away from the data */
  theta[2] -= 0.1;
  int checked = 0;
  for (int si = 0; si < nde_solver_method_count(); si++) {
    const nde_solver_method_info *sm = nde_solver_method_at(si);
    if (sm->needs_split) continue; /* this model is not separable */
    for (int gi = 0; gi < nde_grad_method_count(); gi++) {
      const nde_grad_method_info *gm = nde_grad_method_at(gi);
      if (!nde_grad_method_supported(gm->name, sm->name)) continue;
      nde_result_fit_opts o = nde_result_fit_opts_default();
      o.solver.method = sm->name;
      /* Methods exact for the discretisation are checked at 8 steps per interval; the others
       * approximate the continuous gradient, so their fixed-step solves take 64. */
      o.solver.steps_per_interval = gm->exact ? 8 : 64;
      o.solver.rtol = 1e-10;
      o.solver.atol = 1e-12;
      o.grad.method = gm->name;
      o.grad.rtol = 1e-10;
      o.grad.atol = 1e-12;
      nde_problem *p = NULL;
      nde_error err;
      if (nde_problem_create(m, d, &o, &p, &err) != NDE_OK) fail_msg("%s: %s", sm->name, err.msg);
      double L, g[8], gd[8];
      assert_int_equal(nde_problem_loss(p, theta, &L, g, NULL), NDE_OK);
      assert_true(isfinite(L) && L > 0);
      double worst = 0, scale = 0;
      for (size_t i = 0; i < P; i++) {
        const double h = 1e-6 * fmax(1.0, fabs(theta[i]));
        double th[8], Lp, Lm;
        memcpy(th, theta, sizeof th);
        th[i] = theta[i] + h;
        assert_int_equal(nde_problem_loss(p, th, &Lp, NULL, NULL), NDE_OK);
        th[i] = theta[i] - h;
        assert_int_equal(nde_problem_loss(p, th, &Lm, NULL, NULL), NDE_OK);
        gd[i] = (Lp - Lm) / (2 * h);
        worst = fmax(worst, fabs(g[i] - gd[i]));
        scale = fmax(scale, fabs(gd[i]));
      }
      /* A continuous-adjoint gradient on fixed steps differs from the discrete one by the
       * method's error, 3 h^order at h = 0.25 / 64 (euler 1.2e-2, rk4 below the 1e-6 floor). */
      const double tol = gm->exact      ? 1e-6
                         : sm->adaptive ? 1e-4
                                        : fmax(1e-6, 3 * pow(0.25 / 64, sm->order));
      print_message("%-18s %-10s relative gradient error %.2e\n", sm->name, gm->name,
                    worst / scale);
      if (!(worst <= tol * scale))
        fail_msg("%s + %s: gradient error %.3g of %.3g (tolerance %g)", sm->name, gm->name, worst,
                 scale, tol);
      checked++;
      nde_problem_destroy(&p);
    }
  }
  assert_true(checked >= 8);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Multiple shooting through an observation model (an explicit shoot: phase on data of
 * observables): every segment starts from the model's solution at the starting parameters (no
 * column is a state to start from), and the shooting objective, segment starts included, has
 * exact gradients (rk4, discrete adjoint). */
static void shooting_on_observables_starts_from_the_model_and_has_exact_gradients(void **state) {
  (void)state;
  nde_model *m = load();
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 1, t, D);
  theta[0] += 0.05;
  theta[2] -= 0.1;
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.solver.steps_per_interval = 4;
  o.grad.method = "discrete";
  o.objective.shoot_interval = 4; /* 12 intervals: 3 segments */
  o.objective.shoot_weight = 3.0;
  nde_problem *p = NULL;
  nde_error err;
  if (nde_problem_create(m, d, &o, &p, &err) != NDE_OK) fail_msg("problem: %s", err.msg);
  nde_fit *f = nde_problem_objective(p);
  const size_t nx = nde_fit_n_x(f, 1), nt = nde_fit_n_theta(f);
  assert_int_equal(nx, nt + 2 * 2); /* two segment starts of two states */
  double x[16];
  assert_true(nx <= 16);
  assert_int_equal(nde_fit_init_x(f, theta, x), NDE_OK);
  /* Started on the model's solution, the segments reproduce the whole trajectory (fixed steps
   * restarted from the state they reached): the shooting objective is the trajectory loss with
   * no continuity penalty. */
  double L0, Lt, g[16], xs[16];
  assert_int_equal(nde_fit_eval(f, x, 1, NULL, &L0, g, NULL), NDE_OK);
  assert_int_equal(nde_fit_eval(f, x, 0, NULL, &Lt, NULL, NULL), NDE_OK);
  print_message("shooting objective %.17g, trajectory loss %.17g\n", L0, Lt);
  assert_true(fabs(L0 - Lt) <= 1e-12 * Lt);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < nx; i++) {
    const double h = 1e-6 * fmax(1.0, fabs(x[i]));
    double Lp, Lm;
    memcpy(xs, x, sizeof xs);
    xs[i] = x[i] + h;
    assert_int_equal(nde_fit_eval(f, xs, 1, NULL, &Lp, NULL, NULL), NDE_OK);
    xs[i] = x[i] - h;
    assert_int_equal(nde_fit_eval(f, xs, 1, NULL, &Lm, NULL, NULL), NDE_OK);
    const double gd = (Lp - Lm) / (2 * h);
    worst = fmax(worst, fabs(g[i] - gd));
    scale = fmax(scale, fabs(gd));
  }
  print_message("shooting through the observation model: relative gradient error %.2e\n",
                worst / scale);
  assert_true(worst <= 1e-6 * scale);
  nde_problem_destroy(&p);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Known sigma weighs each column by 1/sigma^2: the mean over observed values of the weighted
 * squared errors, computed here by hand from the model's quantities. */
static void a_known_sigma_weighs_its_column(void **state) {
  (void)state;
  nde_model *m = load();
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 1, t, D);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.solver.steps_per_interval = 8;
  nde_problem *p = NULL;
  nde_error err;
  assert_int_equal(nde_problem_create(m, d, &o, &p, &err), NDE_OK);
  double L;
  assert_int_equal(nde_problem_loss(p, theta, &L, NULL, NULL), NDE_OK);
  /* By hand: the quantities at the data times (rk4, 8 steps per interval, as the problem), from
   * x of the first row and y as declared. */
  const char *cols[3] = {"x", "s", "q"};
  nde_sim_opts so = nde_sim_opts_default();
  so.solver.steps_per_interval = 8;
  so.n_columns = 3;
  so.columns = cols;
  double H[N_T * 3], u0[2] = {D[0], 0.4};
  nde_solve_stats ss;
  assert_int_equal(nde_simulate(m, theta, u0, N_T, t, &so, H, NULL, &ss, NULL), NDE_OK);
  const double w[3] = {1 / (0.05 * 0.05), 1 / (0.2 * 0.2), 1};
  double sum = 0;
  long cnt = 0;
  for (int i = 0; i < N_T; i++) /* the first row too: its observables are compared */
    for (int j = 0; j < 3; j++) {
      if (isnan(D[i * 3 + j])) continue;
      const double e = H[i * 3 + j] - D[i * 3 + j];
      sum += w[j] * e * e;
      cnt++;
    }
  print_message("loss %.17g, by hand %.17g\n", L, sum / (double)cnt);
  assert_true(fabs(L - sum / (double)cnt) <= 1e-12 * fabs(L));
  nde_problem_destroy(&p);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Standard errors of a fit to observables: the residual Jacobian through the observation model
 * (the observer's JVP on the forward sensitivities) equals central differences of the residuals,
 * with a linear and a log-space loss and a learned initial state; the noise is estimated per data
 * column, the observable columns named, the unmeasured state without a level.  A known noise
 * level is given per column (the states, then the observables): one missing for a measured
 * observable is refused, naming it; the estimated levels given as known give the estimated
 * standard errors, and twice them twice the standard errors. */
static void standard_errors_through_the_observation_model_match_differences(void **state) {
  (void)state;
  nde_model *m = load();
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 0, t, D);
  /* Linear and log-space losses with learned initial states, and a linear loss from the
   * declared initial state: then the state columns' first row is the start, not a residual,
   * while the observables' first row depends on the parameters and is one (the loss compares
   * it). */
  for (int variant = 0; variant < 3; variant++) {
    const int log_space = variant == 1, learn_u0 = variant < 2, P = learn_u0 ? 5 : 3;
    nde_result_fit_opts o = nde_result_fit_opts_default();
    o.solver.steps_per_interval = 4;
    o.objective.learn_u0 = learn_u0;
    o.objective.log_space = log_space;
    o.schedule = "lbfgs:200";
    nde_result *r = NULL;
    nde_error err;
    assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
    double se[2][8], sig[K];
    for (int fd = 0; fd < 2; fd++) {
      nde_unc_opts uo = nde_unc_opts_default();
      uo.finite_differences = fd;
      if (nde_result_compute_uncertainty(r, d, &uo, &err) != NDE_OK) fail_msg("%s", err.msg);
      const nde_uncertainty *u = nde_result_get_uncertainty(r);
      assert_int_equal(u->finite_differences, fd);
      assert_int_equal(u->n, P); /* a, b, g (, x(t0), y(t0)) */
      /* x is measured at the first time: from the data unless learned. */
      assert_int_equal(u->u0_from_data, !learn_u0);
      /* x: every row but the missing one (and the first without learn_u0); s, q: every row. */
      assert_int_equal(u->n_residuals, (N_T - 1 - !learn_u0) + 2 * N_T);
      assert_int_equal(u->n_sigma, K);
      const char *names[K] = {"x", "y", "s", "q"};
      for (int j = 0; j < K; j++) assert_string_equal(u->sigma_names[j], names[j]);
      assert_true(isnan(u->sigma_state[1])); /* y has no column */
      assert_true(u->sigma_state[0] > 0 && u->sigma_state[2] > 0 && u->sigma_state[3] > 0);
      memcpy(sig, u->sigma_state, sizeof sig);
      for (int j = 0; j < u->n; j++) {
        se[fd][j] = u->entry[j].se;
        assert_true(isfinite(se[fd][j]) && se[fd][j] > 0);
      }
    }
    for (int j = 0; j < P; j++) {
      print_message("log_space %d learn_u0 %d, %s: se %.10g (sensitivities), %.10g "
                    "(differences)\n", log_space, learn_u0,
                    nde_result_get_uncertainty(r)->entry[j].name, se[0][j], se[1][j]);
      assert_true(fabs(se[0][j] - se[1][j]) <= 1e-5 * se[1][j]);
    }
    nde_unc_opts known = nde_unc_opts_default();
    known.noise = NDE_NOISE_KNOWN;
    double sd[K] = {0.01, 0.01, NAN, sig[3]};
    known.noise_std = sd;
    assert_int_equal(nde_result_compute_uncertainty(r, d, &known, &err), NDE_ERR_ARG);
    assert_non_null(strstr(err.msg, "observable 's'"));
    for (int scale = 1; scale <= 2; scale++) {
      for (int j = 0; j < K; j++) sd[j] = j == 1 ? NAN : scale * sig[j];
      if (nde_result_compute_uncertainty(r, d, &known, &err) != NDE_OK) fail_msg("%s", err.msg);
      const nde_uncertainty *u = nde_result_get_uncertainty(r);
      assert_true(isnan(u->sigma_state[1]));
      for (int j = 0; j < K; j++)
        if (j != 1) assert_true(u->sigma_state[j] == sd[j]);
      for (int j = 0; j < P; j++)
        assert_true(fabs(u->entry[j].se - scale * se[0][j]) <= 1e-12 * scale * se[0][j]);
    }
    nde_result_destroy(&r);
  }
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Replaces the string dataset path of file with n names. */
static void put_names(const char *file, const char *path, int n, const char *const *names) {
  hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (H5Lexists(f, path, H5P_DEFAULT) > 0) assert_true(H5Ldelete(f, path, H5P_DEFAULT) >= 0);
  if (n > 0) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hsize_t dim = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    hid_t d = H5Dcreate2(f, path, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, names) >= 0);
    H5Dclose(d);
    H5Sclose(space);
    H5Tclose(type);
  }
  H5Fclose(f);
}

/* Replaces the dataset path of file with n doubles. */
static void put_doubles(const char *file, const char *path, int n, const double *x) {
  hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(f >= 0);
  if (H5Lexists(f, path, H5P_DEFAULT) > 0) assert_true(H5Ldelete(f, path, H5P_DEFAULT) >= 0);
  hsize_t dim = (hsize_t)n;
  hid_t space = H5Screate_simple(1, &dim, NULL);
  hid_t d = H5Dcreate2(f, path, H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(d >= 0);
  assert_true(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
  H5Dclose(d);
  H5Sclose(space);
  H5Fclose(f);
}

/* The noise levels of the observable columns are saved with their names and read back; a file
 * whose column names do not fit the model, or do not match the levels, is refused with the
 * place named.  The fit's known noise std covers the observables too (n + n_observables values);
 * a file that holds the states' only (written before) reads with the observables' unknown, any
 * other length is refused. */
static void observable_noise_levels_survive_save_and_open(void **state) {
  (void)state;
  nde_model *m = load();
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 0, t, D);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "lbfgs:100";
  const double noise[K] = {0.01, NAN, 0.02, 0.03};
  o.noise_std = noise;
  nde_result *r = NULL, *q = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
  assert_memory_equal(nde_result_settings(r)->noise_std, noise, sizeof noise);
  assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, &err), NDE_OK);
  char file[512];
  const char *tmp = getenv("TMPDIR");
  snprintf(file, sizeof file, "%s/nde-observe-unc-%ld.h5", tmp && *tmp ? tmp : "/tmp",
           (long)getpid());
  assert_int_equal(nde_result_save(r, file, &err), NDE_OK);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r), *v = nde_result_get_uncertainty(q);
  assert_int_equal(v->n_sigma, K);
  assert_int_equal(v->u0_from_data, 1);
  assert_int_equal(u->u0_from_data, 1);
  for (int j = 0; j < K; j++) {
    assert_string_equal(v->sigma_names[j], u->sigma_names[j]);
    assert_memory_equal(&v->sigma_state[j], &u->sigma_state[j], sizeof(double));
  }
  assert_memory_equal(nde_result_settings(q)->noise_std, noise, sizeof noise);
  nde_result_destroy(&q);
  /* One changed value among those that decide a resumed path: the file is refused as damaged. */
  {
    const size_t nt = nde_result_n_theta(r);
    double *tl = malloc(nt * sizeof *tl);
    assert_non_null(tl);
    memcpy(tl, nde_result_theta_last(r), nt * sizeof *tl);
    tl[0] = nextafter(tl[0], INFINITY);
    put_doubles(file, "/params/theta_last", (int)nt, tl);
    assert_int_equal(nde_result_open(file, &q, &err), NDE_ERR_DATA);
    print_message("%s\n", err.msg);
    assert_non_null(strstr(err.msg, ":/train: the parameters, histories or training state do "
                                    "not match their checksum"));
    memcpy(tl, nde_result_theta_last(r), nt * sizeof *tl);
    put_doubles(file, "/params/theta_last", (int)nt, tl);
    assert_int_equal(nde_result_open(file, &q, &err), NDE_OK);
    nde_result_destroy(&q);
    free(tl);
  }
  put_doubles(file, "/settings/noise_std", 2, noise);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_OK);
  const double *sd = nde_result_settings(q)->noise_std;
  assert_true(sd[0] == 0.01 && isnan(sd[1]) && isnan(sd[2]) && isnan(sd[3]));
  nde_result_destroy(&q);
  put_doubles(file, "/settings/noise_std", 3, noise);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_ERR_DATA);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "/settings/noise_std: has 3 values, expected 4"));
  put_doubles(file, "/settings/noise_std", K, noise);
  /* Names that are not the model's columns. */
  const char *wrong[K] = {"x", "y", "s", "z"};
  put_names(file, "/uncertainty/sigma_columns", K, wrong);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_ERR_DATA);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "/uncertainty/sigma_columns"));
  /* Fewer names than levels. */
  const char *three[3] = {"x", "y", "s"};
  put_names(file, "/uncertainty/sigma_columns", 3, three);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_ERR_DATA);
  print_message("%s\n", err.msg);
  assert_non_null(strstr(err.msg, "/uncertainty/sigma_state: has 4 values, expected 3"));
  /* No names (a file from before them): the levels are then the states'. */
  put_names(file, "/uncertainty/sigma_columns", 0, NULL);
  assert_int_equal(nde_result_open(file, &q, &err), NDE_ERR_DATA);
  assert_non_null(strstr(err.msg, "has 4 values, expected 2"));
  assert_null(q);
  unlink(file);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* A fit to the observables recovers the parameters, and held-out data are scored on them. */
static void a_fit_to_observables_recovers_the_parameters_and_is_scored_on_them(void **state) {
  (void)state;
  nde_model *m = load();
  double truth[8], t[N_T];
  nde_model_init_theta(m, 1, truth);
  /* Noise-free data of s and q only (x and y unmeasured). */
  const char *cols[2] = {"s", "q"};
  nde_sim_opts so = nde_sim_opts_default();
  so.n_columns = 2;
  so.columns = cols;
  double u0[2] = {1.2, 0.4}, H[N_T * 2];
  for (int i = 0; i < N_T; i++) t[i] = 0.25 * i;
  nde_solve_stats ss;
  assert_int_equal(nde_simulate(m, truth, u0, N_T, t, &so, H, NULL, &ss, NULL), NDE_OK);
  const char *names[4] = {"x", "y", "s", "q"};
  nde_series se = {N_T, 2, t, H, cols, NULL};
  nde_data *d = NULL;
  nde_error err;
  assert_int_equal(nde_data_from_series(4, names, 1, &se, NULL, NULL, &d, &err), NDE_OK);
  assert_string_equal(nde_default_schedule(m, d), NDE_DEFAULT_SCHEDULE_PARTIAL);
  double start[8];
  memcpy(start, truth, sizeof start);
  start[0] = log(0.4); /* a: positive, stored as its log */
  start[1] = 0.6;
  start[2] = 2.2;
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.theta0 = start;
  nde_result *r = NULL;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
  const double a = nde_result_param(r, 0), b = nde_result_param(r, 1), g = nde_result_param(r, 2);
  print_message("a %.6f (0.7), b %.6f (1.1), g %.6f (1.5), loss %.3g\n", a, b, g,
                nde_result_get_kept(r).loss);
  assert_true(fabs(a - 0.7) < 1e-3 && fabs(b - 1.1) < 1e-3 && fabs(g - 1.5) < 1e-3);
  /* The observables along an integration, at the fitted parameters: s = g x + y^2, q = x y. */
  double Z[N_T * 2], Hq[N_T * 2];
  nde_start st0 = {.kind = NDE_START_FITTED, .series = 0};
  nde_solve_stats ss0;
  assert_int_equal(nde_result_integrate(r, &st0, N_T, t, NULL, Z, &ss0, &err), NDE_OK);
  Z[3 * 2] = NAN; /* a row whose state is not finite */
  assert_int_equal(nde_result_observe(r, &st0, N_T, t, Z, Hq, &err), NDE_OK);
  for (int i = 0; i < N_T; i++) {
    const double x = Z[2 * i], y = Z[2 * i + 1];
    if (i == 3) {
      assert_true(isnan(Hq[2 * i]) && isnan(Hq[2 * i + 1]));
      continue;
    }
    assert_true(fabs(Hq[2 * i] - (g * x + y * y)) <= 1e-14 * fabs(Hq[2 * i]));
    assert_true(fabs(Hq[2 * i + 1] - x * y) <= 1e-14 * fabs(Hq[2 * i + 1]));
  }
  nde_start bad_series = {.kind = NDE_START_FITTED, .series = 1};
  assert_int_equal(nde_result_observe(r, &bad_series, N_T, t, Z, Hq, &err), NDE_ERR_ARG);
  nde_score *sc = NULL;
  assert_int_equal(nde_result_score(r, d, NULL, &sc, &err), NDE_OK);
  assert_int_equal(nde_score_n_columns(sc), 4);
  nde_series_score s0;
  nde_score_get(sc, 0, &s0);
  assert_int_equal(s0.count[0], 0); /* x: no data */
  assert_int_equal(s0.count[2], N_T);
  assert_true(s0.rmse[2] < 1e-3 && s0.rmse[3] < 1e-3);
  nde_score_destroy(&sc);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* The band of the observables (what an experiment measures): linearised, its half-width is
 * q sqrt(g C g^T) with g the observables' derivatives with respect to the coordinates, checked
 * against central differences of simulations (parameters and learned initial states), and its
 * middle is the fitted trajectory's observables; over an ensemble, the quantiles of each member's
 * observables along its own trajectory with its own parameters. */
static int cmp_d(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* nde_result_forecast_band (both bands in one pass) gives the bits of the two separate calls. */
static void both_bands_in_one_pass_are_the_separate_ones(nde_result *r, const nde_start *st0,
                                                         const double *t,
                                                         const nde_solver_opts *so,
                                                         double level) {
  double lo[N_T * 2], hi[N_T * 2], olo[N_T * 2], ohi[N_T * 2];
  double lo2[N_T * 2], hi2[N_T * 2], olo2[N_T * 2], ohi2[N_T * 2];
  int u1 = -1, u2 = -1;
  nde_error err;
  assert_int_equal(nde_result_integrate_band(r, st0, N_T, t, so, level, lo, NULL, hi, &u1, &err),
                   NDE_OK);
  assert_int_equal(nde_result_observe_band(r, st0, N_T, t, so, level, olo, NULL, ohi, NULL, &err),
                   NDE_OK);
  assert_int_equal(nde_result_forecast_band(r, st0, N_T, t, so, level, lo2, NULL, hi2, olo2, NULL,
                                            ohi2, &u2, &err),
                   NDE_OK);
  assert_int_equal(u1, u2);
  assert_memory_equal(lo, lo2, sizeof lo);
  assert_memory_equal(hi, hi2, sizeof hi);
  assert_memory_equal(olo, olo2, sizeof olo);
  assert_memory_equal(ohi, ohi2, sizeof ohi);
}

static void observable_bands_are_linearised_and_over_members(void **state) {
  (void)state;
  nde_model *m = load();
  double theta[8], t[N_T], D[N_T * 3];
  nde_model_init_theta(m, 1, theta);
  nde_data *d = make_data(m, theta, 0, t, D);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.solver.steps_per_interval = 4;
  o.objective.learn_u0 = 1;
  o.schedule = "lbfgs:200";
  nde_result *r = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit(m, d, &o, &r, &err), NDE_OK);
  nde_start st0 = {.kind = NDE_START_FITTED, .series = 0};
  double lo[N_T * 2], mid[N_T * 2], hi[N_T * 2];
  /* Neither members nor standard errors: refused. */
  assert_int_equal(nde_result_observe_band(r, &st0, N_T, t, NULL, 0.95, lo, mid, hi, NULL, &err),
                   NDE_ERR_ARG);
  nde_unc_opts uo = nde_unc_opts_default();
  if (nde_result_compute_uncertainty(r, d, &uo, &err) != NDE_OK) fail_msg("%s", err.msg);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  assert_int_equal(u->n, 5); /* a (as log a), b, g, x(t0), y(t0) */
  nde_solver_opts so = nde_solver_opts_default();
  so.method = "rk4";
  so.steps_per_interval = 4;
  int used = -1;
  if (nde_result_observe_band(r, &st0, N_T, t, &so, u->level, lo, mid, hi, &used, &err) != NDE_OK)
    fail_msg("observe band: %s", err.msg);
  assert_int_equal(used, 1);
  both_bands_in_one_pass_are_the_separate_ones(r, &st0, t, &so, u->level);
  /* The middle: the fitted trajectory's observables. */
  double Z[N_T * 2], H[N_T * 2], t0, u0[2];
  nde_solve_stats ss;
  assert_int_equal(nde_result_integrate(r, &st0, N_T, t, &so, Z, &ss, &err), NDE_OK);
  assert_int_equal(nde_result_observe(r, &st0, N_T, t, Z, H, &err), NDE_OK);
  for (int q = 0; q < N_T * 2; q++) assert_true(fabs(mid[q] - H[q]) <= 1e-12 * fabs(H[q]));
  /* The half-width against differences: g_x = dH/dx by central differences of simulations. */
  assert_int_equal(nde_result_start_state(r, &st0, &t0, u0, &err), NDE_OK);
  const double *th = nde_result_theta(r);
  const char *cols[2] = {"s", "q"};
  nde_sim_opts sim = nde_sim_opts_default();
  sim.solver = so;
  sim.n_columns = 2;
  sim.columns = cols;
  double G[N_T * 2][5];
  for (int x = 0; x < 5; x++) {
    double Hp[N_T * 2], Hm[N_T * 2];
    for (int sgn = -1; sgn <= 1; sgn += 2) {
      double tp[8], up[2];
      memcpy(tp, th, nde_model_n_theta(m) * sizeof *tp); /* 3 values: a, b, g */
      memcpy(up, u0, sizeof up);
      const double h = 1e-6 * fmax(1.0, fabs(x < 3 ? tp[x] : up[x - 3]));
      if (x < 3) tp[x] += sgn * h;
      else up[x - 3] += sgn * h;
      assert_int_equal(nde_simulate(m, tp, up, N_T, t, &sim, sgn > 0 ? Hp : Hm, NULL, &ss, NULL),
                       NDE_OK);
      if (sgn > 0)
        for (int q = 0; q < N_T * 2; q++) G[q][x] = (Hp[q] - Hm[q]) / (2 * h);
    }
  }
  double worst = 0;
  for (int q = 0; q < N_T * 2; q++) {
    double var = 0;
    for (int a = 0; a < 5; a++)
      for (int b = 0; b < 5; b++) var += G[q][a] * u->cov[a * 5 + b] * G[q][b];
    const double half = u->quantile * sqrt(var);
    const double rel = fabs(0.5 * (hi[q] - lo[q]) - half) / half;
    worst = fmax(worst, rel);
    assert_true(rel < 1e-6);
  }
  print_message("linearised observable band: half-widths within %.2e of differences\n", worst);
  /* The states' band is unchanged by the observables' (its own numbers). */
  double slo[N_T * 2], shi[N_T * 2];
  assert_int_equal(nde_result_integrate_band(r, &st0, N_T, t, &so, u->level, slo, NULL, shi, NULL,
                                             &err), NDE_OK);
  for (int q = 0; q < N_T * 2; q++) assert_true(slo[q] < Z[q] && Z[q] < shi[q]);
  nde_result_destroy(&r);

  /* An ensemble: the quantiles over members of each member's observables. */
  nde_result_fit_opts eo = nde_result_fit_opts_default();
  eo.solver.steps_per_interval = 4;
  eo.schedule = "lbfgs:30";
  nde_ensemble_opts en = nde_ensemble_opts_default();
  en.members = 5;
  en.resample = NDE_RESAMPLE_TIME;
  en.fraction = 0.7;
  en.threads = 1;
  nde_result *e = NULL;
  int stopped = 0;
  assert_int_equal(nde_result_fit_ensemble(m, d, &eo, &en, &e, &stopped, &err), NDE_OK);
  if (nde_result_observe_band(e, &st0, N_T, t, &so, 0.8, lo, mid, hi, &used, &err) != NDE_OK)
    fail_msg("ensemble observe band: %s", err.msg);
  assert_int_equal(used, 5);
  both_bands_in_one_pass_are_the_separate_ones(e, &st0, t, &so, 0.8);
  double Hk[5][N_T * 2];
  for (int k = 0; k < 5; k++) {
    nde_result *mk = NULL;
    assert_int_equal(nde_result_member(e, k, &mk, &err), NDE_OK);
    assert_int_equal(nde_result_integrate(mk, &st0, N_T, t, &so, Z, &ss, &err), NDE_OK);
    assert_int_equal(nde_result_observe(mk, &st0, N_T, t, Z, Hk[k], &err), NDE_OK);
    nde_result_destroy(&mk);
  }
  for (int q = 0; q < N_T * 2; q++) {
    double v[5];
    for (int k = 0; k < 5; k++) v[k] = Hk[k][q];
    qsort(v, 5, sizeof *v, cmp_d);
    /* Quantiles at 0.1, 0.5, 0.9 of 5 values (linear interpolation at (n - 1) p). */
    const double want_lo = v[0] + 0.4 * (v[1] - v[0]), want_hi = v[3] + 0.6 * (v[4] - v[3]);
    assert_true(fabs(mid[q] - v[2]) <= 1e-14 * fabs(v[2]));
    assert_true(fabs(lo[q] - want_lo) <= 1e-12 * fabs(want_lo));
    assert_true(fabs(hi[q] - want_hi) <= 1e-12 * fabs(want_hi));
    if (q >= 2) assert_true(v[0] != v[4]); /* the members differ (after the data's u0) */
  }
  nde_result_destroy(&e);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* An observable outside its domain at some times (sqrt of a negative value) has no band there,
 * and only there: the other observables' bands and its own elsewhere are unchanged.  Unmeasured,
 * it does not stop the fit. */
static void an_observable_undefined_somewhere_has_no_band_only_there(void **state) {
  (void)state;
  nde_model *m = load_text("state x = 1\nparam k = 0.6 (positive)\n"
                           "observe r = sqrt(x - 0.5)\nobserve h = 2*x\ndx/dt = -k*x\n",
                           "dom.nde");
  nde_error err;
  enum { NT = 11 };
  double t[NT], X[NT], th[1] = {log(0.6)}, u0[1] = {1};
  for (int i = 0; i < NT; i++) t[i] = 0.25 * i;
  nde_solve_stats ss;
  assert_int_equal(nde_simulate(m, th, u0, NT, t, NULL, X, NULL, &ss, NULL), NDE_OK);
  for (int i = 0; i < NT; i++) X[i] *= 1.0 + 0.01 * sin(2.0 * i);
  const char *cols[1] = {"x"};
  /* The data may hold the observables (they are among its column names) but measure x only:
   * r, undefined along the later part of the trajectory, is never compared, so the fit and its
   * standard errors run (they failed at the start, the loss NaN from the unmeasured r). */
  const char *names[3] = {"x", "r", "h"};
  nde_series se = {NT, 1, t, X, cols, NULL};
  nde_data *d = NULL;
  assert_int_equal(nde_data_from_series(3, names, 1, &se, NULL, NULL, &d, &err), NDE_OK);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "lbfgs:100";
  nde_result *r = NULL;
  if (nde_result_fit(m, d, &o, &r, &err) != NDE_OK) fail_msg("fit: %s", err.msg);
  assert_true(fabs(nde_result_param(r, 0) - 0.6) < 0.05);
  nde_unc_opts uo = nde_unc_opts_default();
  if (nde_result_compute_uncertainty(r, d, &uo, &err) != NDE_OK) fail_msg("%s", err.msg);
  /* x = exp(-k t) < 0.5 from t = ln 2 / k, about 1.16: r is NaN at the later times. */
  enum { NF = 9 };
  double tf[NF], lo[NF * 2], mid[NF * 2], hi[NF * 2], Z[NF], H[NF * 2];
  for (int i = 0; i < NF; i++) tf[i] = 0.25 * i;
  nde_start st0 = {.kind = NDE_START_FITTED, .series = 0};
  if (nde_result_observe_band(r, &st0, NF, tf, NULL, 0.95, lo, mid, hi, NULL, &err) != NDE_OK)
    fail_msg("observe band: %s", err.msg);
  assert_int_equal(nde_result_integrate(r, &st0, NF, tf, NULL, Z, &ss, &err), NDE_OK);
  assert_int_equal(nde_result_observe(r, &st0, NF, tf, Z, H, &err), NDE_OK);
  int n_nan = 0;
  for (int i = 0; i < NF; i++) {
    const int defined = Z[i] > 0.5;
    n_nan += !defined;
    /* h everywhere; r where x > 0.5 (a band of positive width after t0), NaN elsewhere. */
    assert_true(isfinite(lo[2 * i + 1]) && isfinite(hi[2 * i + 1]));
    assert_true(lo[2 * i + 1] <= H[2 * i + 1] && H[2 * i + 1] <= hi[2 * i + 1]);
    if (defined) {
      assert_true(isfinite(lo[2 * i]) && lo[2 * i] <= H[2 * i] && H[2 * i] <= hi[2 * i]);
      if (i > 0) assert_true(hi[2 * i] > lo[2 * i]);
    } else {
      assert_true(isnan(lo[2 * i]) && isnan(mid[2 * i]) && isnan(hi[2 * i]));
    }
  }
  assert_true(n_nan >= 2 && n_nan <= NF - 3);
  /* Simulated with noise, r keeps its values where it is defined: the noise level is that of
   * its finite values (a NaN in the mean made the whole column NaN). */
  const char *rh[2] = {"r", "h"};
  nde_sim_opts so = nde_sim_opts_default();
  so.n_columns = 2;
  so.columns = rh;
  so.noise = 0.1;
  double Hn[NF * 2], sd[2];
  assert_int_equal(nde_simulate(m, th, u0, NF, tf, &so, Hn, sd, &ss, &err), NDE_OK);
  assert_true(isfinite(sd[0]) && sd[0] > 0 && isfinite(sd[1]) && sd[1] > 0);
  for (int i = 0; i < NF; i++) {
    const double x = exp(-0.6 * tf[i]);
    assert_true(isfinite(Hn[2 * i + 1]));
    if (x > 0.5 + 1e-9) assert_true(isfinite(Hn[2 * i]));
    if (x < 0.5 - 1e-9) assert_true(isnan(Hn[2 * i]));
  }
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* An observable measured where it is defined and missing where it is not (sqrt of a negative
 * value at the later times) does not poison the loss or its gradient: the fit compares it only
 * where it is measured, and the unmeasured entries' zero cotangents pass nothing back through
 * its undefined derivative (0 * NaN would).  Two series on one grid are batched together, so at
 * some times one row measures r and the other does not. */
static void an_observable_measured_only_where_defined_fits(void **state) {
  (void)state;
  nde_model *m = load_text("state x = 1\nparam k = 0.5 (positive)\n"
                           "observe r = sqrt(x - 0.5)\ndx/dt = -k*x\n",
                           "dom2.nde");
  nde_error err;
  enum { NT = 11, NS = 2 };
  double t[NT], D[NS][NT * 2], th[1] = {log(0.6)};
  const double x0[NS] = {1.0, 2.0};
  for (int i = 0; i < NT; i++) t[i] = 0.25 * i;
  const char *cols[2] = {"x", "r"};
  nde_series se[NS];
  int measured[NS] = {0, 0}, missing[NS] = {0, 0};
  for (int s = 0; s < NS; s++) {
    nde_sim_opts so = nde_sim_opts_default();
    so.n_columns = 2;
    so.columns = cols;
    nde_solve_stats ss;
    assert_int_equal(nde_simulate(m, th, &x0[s], NT, t, &so, D[s], NULL, &ss, NULL), NDE_OK);
    for (int i = 0; i < NT; i++) {
      D[s][2 * i] *= 1.0 + 0.01 * sin(2.0 * i + s);
      if (isnan(D[s][2 * i + 1])) missing[s]++;
      else measured[s]++, D[s][2 * i + 1] *= 1.0 + 0.01 * cos(3.0 * i + s);
    }
    se[s] = (nde_series){NT, 2, t, D[s], cols, NULL};
  }
  /* r is NaN in the data exactly where the model's r is undefined, in both series. */
  assert_true(missing[0] >= 3 && measured[0] >= 3 && missing[1] >= 1 && measured[1] > measured[0]);
  const char *names[2] = {"x", "r"};
  nde_data *d = NULL;
  assert_int_equal(nde_data_from_series(2, names, NS, se, NULL, NULL, &d, &err), NDE_OK);
  /* The loss and its gradient at k = 0.5 (the model's r defined wherever the data measure it, and
   * NaN at some of the times they do not): finite, and the gradient is the loss's central
   * difference, for every gradient method of rk4 and of cvode-bdf. */
  const char *solvers[2] = {"rk4", "cvode-bdf"};
  int checked = 0;
  for (int si = 0; si < 2; si++)
    for (int gi = 0; gi < nde_grad_method_count(); gi++) {
      const nde_grad_method_info *gm = nde_grad_method_at(gi);
      if (!nde_grad_method_supported(gm->name, solvers[si])) continue;
      nde_result_fit_opts o = nde_result_fit_opts_default();
      o.solver.method = solvers[si];
      o.solver.steps_per_interval = 16;
      o.solver.rtol = 1e-10;
      o.solver.atol = 1e-12;
      o.grad.method = gm->name;
      o.grad.rtol = 1e-10;
      o.grad.atol = 1e-12;
      nde_problem *p = NULL;
      if (nde_problem_create(m, d, &o, &p, &err) != NDE_OK) fail_msg("%s", err.msg);
      double th0[1] = {log(0.5)}, L, g[1], Lp, Lm;
      if (checked == 0) {
        /* At k = 0.9, x falls faster and r is undefined at times where it is measured: the
         * loss is NaN (it was the finite sum up to the first time with an undefined r). */
        const double fast[1] = {log(0.9)};
        assert_int_equal(nde_problem_loss(p, fast, &L, NULL, NULL), NDE_OK);
        if (!isnan(L)) fail_msg("k = 0.9: loss %g, expected NaN", L);
        /* A NaN theta is refused as bad input (it was a solve that stopped). */
        const double bad[1] = {NAN};
        assert_int_equal(nde_problem_loss(p, bad, &L, g, NULL), NDE_ERR_ARG);
        assert_string_equal(nde_problem_errmsg(p),
                            "the parameter 'k' is nan (theta[0]; expected a finite value)");
      }
      const double h = 1e-6;
      assert_int_equal(nde_problem_loss(p, th0, &L, g, NULL), NDE_OK);
      if (!isfinite(L) || !isfinite(g[0]))
        fail_msg("%s + %s: loss %g, gradient %g", solvers[si], gm->name, L, g[0]);
      double tp[1] = {th0[0] + h}, tm[1] = {th0[0] - h};
      assert_int_equal(nde_problem_loss(p, tp, &Lp, NULL, NULL), NDE_OK);
      assert_int_equal(nde_problem_loss(p, tm, &Lm, NULL, NULL), NDE_OK);
      const double gd = (Lp - Lm) / (2 * h);
      const double tol = gm->exact ? 1e-6 : 1e-4;
      if (!(fabs(g[0] - gd) <= tol * fabs(gd)))
        fail_msg("%s + %s: gradient %.10g, differences %.10g", solvers[si], gm->name, g[0], gd);
      checked++;
      nde_problem_destroy(&p);
    }
  assert_true(checked >= 3);
  /* The fit finds k from both columns, and its standard errors run through r where measured. */
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "lbfgs:100";
  double start[1] = {log(0.5)};
  o.theta0 = start;
  nde_result *r = NULL;
  if (nde_result_fit(m, d, &o, &r, &err) != NDE_OK) fail_msg("fit: %s", err.msg);
  assert_true(fabs(nde_result_param(r, 0) - 0.6) < 0.03);
  nde_unc_opts uo = nde_unc_opts_default();
  if (nde_result_compute_uncertainty(r, d, &uo, &err) != NDE_OK) fail_msg("%s", err.msg);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(gradients_through_the_observation_model_match_differences),
      cmocka_unit_test(shooting_on_observables_starts_from_the_model_and_has_exact_gradients),
      cmocka_unit_test(a_known_sigma_weighs_its_column),
      cmocka_unit_test(a_fit_to_observables_recovers_the_parameters_and_is_scored_on_them),
      cmocka_unit_test(standard_errors_through_the_observation_model_match_differences),
      cmocka_unit_test(observable_noise_levels_survive_save_and_open),
      cmocka_unit_test(observable_bands_are_linearised_and_over_members),
      cmocka_unit_test(an_observable_undefined_somewhere_has_no_band_only_there),
      cmocka_unit_test(an_observable_measured_only_where_defined_fits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
