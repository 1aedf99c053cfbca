/* How sure a fit is, from C: the Gauss-Newton covariance equals the textbook one on a model
 * linear in its parameters (to 1e-8), log parameters get the delta-method error and asymmetric
 * intervals, two parameters that enter only as a product are flagged with their direction,
 * finite differences agree with the sensitivities (accuracy measured), every solver gives the
 * same errors, the profile interval equals the curvature interval on the linear model and is
 * unbounded on the product, the standard errors and profiles survive a save and an open,
 * ensembles are bit for bit the serial fits on any number of threads, resampled members fit
 * what their masks say, and members give parameter spreads and forecast bands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "nde/nde.h"

static int setup(void **state) {
  (void)state;
  return fx_scratch_create("unc");
}

static int teardown(void **state) {
  (void)state;
  return fx_scratch_remove();
}

/* One series of y (n_t x n) at times t written to file. */
static void write_series(const char *file, const nde_model *m, int n_t, const double *t,
                         const double *Y) {
  const int n = nde_model_state_dim(m);
  const char *names[8];
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  nde_writer *w = NULL;
  assert_int_equal(nde_writer_create(file, &w, NULL), NDE_OK);
  nde_series se = {(size_t)n_t, (size_t)n, t, Y, names, NULL};
  assert_int_equal(nde_writer_put_series(w, "/", &se), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
}

static nde_result *fit(nde_model *m, nde_data *d, const char *schedule, int learn_u0,
                       const char *solver) {
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = schedule;
  o.objective.learn_u0 = learn_u0;
  if (solver) o.solver.method = solver;
  nde_result *r = NULL;
  nde_error err;
  if (nde_result_fit(m, d, &o, &r, &err) != NDE_OK) fail_msg("fit: %s", err.msg);
  return r;
}

/* ---- the textbook case ---- */

/* x' = a + b t, x(0) = x0: x(t) = x0 + a t + b t^2 / 2, linear in (a, b, x0); rk4 integrates it
 * exactly.  The fit's Gauss-Newton covariance must be s^2 (X^T X)^-1 with s^2 = RSS / (N - P)
 * at the fitted values, X the design matrix. */
#define LIN_SRC "state x = 0.6\nparam a = 0.3\nparam b = -0.2\ndx/dt = a + b*t\n"

static void make_linear_data(const char *file, nde_model *m, double *t, double *Y, int n_t) {
  nde_rng rng;
  nde_rng_seed(&rng, 20240917);
  for (int k = 0; k < n_t; k++) {
    t[k] = 0.37 * k;
    Y[k] = 0.6 + 1.23 * t[k] - 0.41 * t[k] * t[k] / 2 + 0.05 * nde_rng_normal(&rng);
  }
  write_series(file, m, n_t, t, Y);
}

/* (X^T X)^-1 of a P x P system by Gauss-Jordan (P <= 3). */
static void invert(int P, const double *A, double *Ainv) {
  double M[3][6];
  for (int i = 0; i < P; i++)
    for (int j = 0; j < 2 * P; j++) M[i][j] = j < P ? A[i * P + j] : (j - P == i);
  for (int c = 0; c < P; c++) {
    int piv = c;
    for (int i = c + 1; i < P; i++)
      if (fabs(M[i][c]) > fabs(M[piv][c])) piv = i;
    for (int j = 0; j < 2 * P; j++) {
      const double tmp = M[c][j];
      M[c][j] = M[piv][j];
      M[piv][j] = tmp;
    }
    const double d = M[c][c];
    for (int j = 0; j < 2 * P; j++) M[c][j] /= d;
    for (int i = 0; i < P; i++)
      if (i != c) {
        const double f = M[i][c];
        for (int j = 0; j < 2 * P; j++) M[i][j] -= f * M[c][j];
      }
  }
  for (int i = 0; i < P; i++)
    for (int j = 0; j < P; j++) Ainv[i * P + j] = M[i][P + j];
}

/* The textbook covariance for the fitted (a, b[, x0]). */
static void textbook(const double *t, const double *Y, int n_t, double a, double b, double x0,
                     int with_x0, double *C, double *s2_out) {
  const int P = with_x0 ? 3 : 2, first = with_x0 ? 0 : 1;
  double XtX[9] = {0}, rss = 0;
  int N = 0;
  for (int k = first; k < n_t; k++) {
    const double x[3] = {t[k], t[k] * t[k] / 2, 1.0};
    for (int i = 0; i < P; i++)
      for (int j = 0; j < P; j++) XtX[i * P + j] += x[i] * x[j];
    const double e = x0 + a * t[k] + b * t[k] * t[k] / 2 - Y[k];
    rss += e * e;
    N++;
  }
  const double s2 = rss / (N - P);
  invert(P, XtX, C);
  for (int i = 0; i < P * P; i++) C[i] *= s2;
  *s2_out = s2;
}

static void covariance_equals_the_textbook_one_on_a_linear_model(void **state) {
  (void)state;
  nde_model *m = load(LIN_SRC);
  double t[17], Y[17];
  make_linear_data(path_of("lin.h5"), m, t, Y, 17);
  nde_data *d = open_data(path_of("lin.h5"), m);
  for (int with_x0 = 0; with_x0 <= 1; with_x0++) {
    nde_result *r = fit(m, d, "lbfgs:400", with_x0, NULL);
    nde_error err;
    assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, &err), NDE_OK);
    const nde_uncertainty *u = nde_result_get_uncertainty(r);
    assert_non_null(u);
    const int P = with_x0 ? 3 : 2;
    assert_int_equal(u->n, P);
    assert_string_equal(u->entry[0].name, "a");
    assert_string_equal(u->entry[1].name, "b");
    if (with_x0) assert_string_equal(u->entry[2].name, "x(t0)");
    const double a = nde_result_param(r, 0), b = nde_result_param(r, 1);
    nde_result_series se;
    nde_result_get_series(r, 0, &se);
    double C[9], s2;
    textbook(t, Y, 17, a, b, se.u0[0], with_x0, C, &s2);
    for (int i = 0; i < P * P; i++) check_rel(u->cov[i], C[i], 1e-8, 1e-300);
    for (int i = 0; i < P; i++) {
      check_rel(u->entry[i].se, sqrt(C[i * P + i]), 1e-8, 0);
      /* A parameter without transform: both intervals are the t interval. */
      const double q = u->quantile;
      check_rel(u->entry[i].lower, u->entry[i].value - q * u->entry[i].se, 1e-12, 1e-12);
      check_rel(u->entry[i].upper_sym, u->entry[i].value + q * u->entry[i].se, 1e-12, 1e-12);
    }
    check_rel(u->sigma_state[0] * u->sigma_state[0], s2, 1e-8, 0);
    assert_true(isnan(u->sigma)); /* per state (the default): no pooled level */
    assert_int_equal(u->n_residuals, with_x0 ? 17 : 16);
    assert_int_equal(u->dof, (with_x0 ? 17 : 16) - P);
    /* The t quantile with 14 degrees of freedom at 0.975 (scipy.stats.t.ppf). */
    check_rel(u->quantile, 2.1447866879169273, 1e-9, 0);
    assert_int_equal(u->n_null, 0);
    assert_string_equal(u->warning, "");
    check_rel(u->corr[1], C[1] / sqrt(C[0] * C[P + 1]), 1e-8, 0);
    nde_result_destroy(&r);
  }
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* The same data through a positive parameter: the delta method and the asymmetric interval. */
static void log_parameters_get_the_delta_method_and_asymmetric_intervals(void **state) {
  (void)state;
  nde_model *m = load("state x = 0.6\nparam a = 0.3 (positive)\nparam b = -0.2\ndx/dt = a + b*t\n");
  double t[17], Y[17];
  make_linear_data(path_of("lin2.h5"), m, t, Y, 17);
  nde_data *d = open_data(path_of("lin2.h5"), m);
  nde_result *r = fit(m, d, "lbfgs:400", 0, NULL);
  assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, NULL), NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  const nde_unc_entry *a = &u->entry[0];
  assert_int_equal(a->transform, NDE_TRANSFORM_LOG);
  /* d a / d log a = a: the natural error is a times the error of log a, and (the model is
   * linear in a) equal to the textbook error of a. */
  check_rel(a->se, a->value * a->se_opt, 1e-12, 0);
  double C[4], s2;
  nde_result_series se;
  nde_result_get_series(r, 0, &se);
  textbook(t, Y, 17, nde_result_param(r, 0), nde_result_param(r, 1), se.u0[0], 0, C, &s2);
  check_rel(a->se, sqrt(C[0]), 1e-8, 0);
  check_rel(a->lower, a->value * exp(-u->quantile * a->se_opt), 1e-12, 0);
  check_rel(a->upper, a->value * exp(u->quantile * a->se_opt), 1e-12, 0);
  /* Asymmetric: farther above than below. */
  assert_true(a->upper - a->value > a->value - a->lower);
  check_rel(a->lower_sym, a->value - u->quantile * a->se, 1e-12, 0);
  printf("a = %.6g, se %.3g: log interval [%.6g, %.6g], symmetric [%.6g, %.6g]\n", a->value,
         a->se, a->lower, a->upper, a->lower_sym, a->upper_sym);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Two states with their own noise and their own parameters (x' = a + b t, y' = c): with the noise
 * estimated per state, the sandwich covariance of the unweighted fit is each state's textbook
 * covariance with its own noise level; pooled, it is the textbook one with one level. */
static void per_state_noise_gives_each_state_its_own_level(void **state) {
  (void)state;
  nde_model *m = load("state x = 0.6, y = 2.0\nparam a = 0.3\nparam b = -0.2\nparam c = 0.1\n"
                      "dx/dt = a + b*t\ndy/dt = c\n");
  double t[15], Y[30];
  nde_rng rng;
  nde_rng_seed(&rng, 4711);
  for (int k = 0; k < 15; k++) {
    t[k] = 0.4 * k;
    Y[2 * k] = 0.6 + 1.1 * t[k] - 0.3 * t[k] * t[k] / 2 + (k ? 0.02 * nde_rng_normal(&rng) : 0);
    Y[2 * k + 1] = 2.0 + 0.7 * t[k] + (k ? 0.2 * nde_rng_normal(&rng) : 0);
  }
  write_series(path_of("two.h5"), m, 15, t, Y);
  nde_data *d = open_data(path_of("two.h5"), m);
  nde_result *r = fit(m, d, "lbfgs:500", 0, NULL);
  assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, NULL), NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  const double a = nde_result_param(r, 0), b = nde_result_param(r, 1), c = nde_result_param(r, 2);
  /* Residuals and design per state (rows 1..14: the first row is the start). */
  double XtX[4] = {0}, ssx = 0, ssy = 0, tt = 0;
  for (int k = 1; k < 15; k++) {
    const double x[2] = {t[k], t[k] * t[k] / 2};
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 2; j++) XtX[i * 2 + j] += x[i] * x[j];
    const double ex = 0.6 + a * t[k] + b * t[k] * t[k] / 2 - Y[2 * k];
    const double ey = 2.0 + c * t[k] - Y[2 * k + 1];
    ssx += ex * ex;
    ssy += ey * ey;
    tt += t[k] * t[k];
  }
  /* N = 28 residuals, P = 3: each state gets its share 14 (1 - 3/28) of the freedom. */
  const double vx = ssx / (14 * (1 - 3.0 / 28)), vy = ssy / (14 * (1 - 3.0 / 28));
  check_rel(u->sigma_state[0] * u->sigma_state[0], vx, 1e-10, 0);
  check_rel(u->sigma_state[1] * u->sigma_state[1], vy, 1e-10, 0);
  double Cab[4];
  invert(2, XtX, Cab);
  for (int i = 0; i < 4; i++) check_rel(u->cov[(i / 2) * 3 + i % 2], vx * Cab[i], 1e-8, 0);
  check_rel(u->cov[8], vy / tt, 1e-8, 0);
  check_close(u->cov[2], 0, 1e-12); /* a and c are independent */
  printf("per state: se(a) %.4g, se(c) %.4g\n", u->entry[0].se, u->entry[2].se);
  /* Pooled: one level for both, s^2 = (ssx + ssy) / 25. */
  nde_unc_opts o = nde_unc_opts_default();
  o.noise = NDE_NOISE_POOLED;
  assert_int_equal(nde_result_compute_uncertainty(r, d, &o, NULL), NDE_OK);
  u = nde_result_get_uncertainty(r);
  const double s2 = (ssx + ssy) / 25;
  check_rel(u->sigma * u->sigma, s2, 1e-10, 0);
  check_rel(u->cov[0], s2 * Cab[0], 1e-8, 0);
  check_rel(u->cov[8], s2 / tt, 1e-8, 0);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* ---- identifiability ---- */

/* x' = -a b x + c: a and b enter only as their product. */
static void parameters_entering_only_as_a_product_are_flagged(void **state) {
  (void)state;
  const char *srcs[2] = {
      "state x = 2.1\nparam a = 1.2 (positive)\nparam b = 0.7 (positive)\nparam c = 0.4\n"
      "dx/dt = -a*b*x + c\n",
      "state x = 2.1\nparam a = 1.2\nparam b = 0.7\nparam c = 0.4\ndx/dt = -a*b*x + c\n"};
  for (int v = 0; v < 2; v++) {
    nde_model *m = load(srcs[v]);
    double t[15], Y[15];
    nde_rng rng;
    nde_rng_seed(&rng, 77);
    for (int k = 0; k < 15; k++) {
      t[k] = 0.2 * k;
      const double kk = 0.93, c = 0.52, xs = c / kk;
      Y[k] = xs + (2.1 - xs) * exp(-kk * t[k]) + 0.01 * nde_rng_normal(&rng);
    }
    Y[0] = 2.1;
    write_series(path_of("prod.h5"), m, 15, t, Y);
    nde_data *d = open_data(path_of("prod.h5"), m);
    nde_result *r = fit(m, d, "lbfgs:300", 0, NULL);
    nde_error err;
    assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, &err), NDE_OK);
    const nde_uncertainty *u = nde_result_get_uncertainty(r);
    printf("%s\n  warning: %s\n  cond %.3g\n", v ? "plain" : "positive", u->warning, u->cond);
    assert_int_equal(u->n_null, 1);
    assert_false(u->entry[0].identifiable);
    assert_false(u->entry[1].identifiable);
    assert_true(u->entry[2].identifiable);
    assert_true(isinf(u->entry[0].se) && isinf(u->entry[1].se));
    assert_true(isfinite(u->entry[2].se));
    assert_non_null(strstr(u->warning, "not identifiable"));
    assert_non_null(strstr(u->warning, "a, b"));
    /* The direction: log a - log b (positive), or b da - a db (plain), normalised. */
    const double *dir = u->null_dirs;
    const double a = nde_result_param(r, 0), b = nde_result_param(r, 1);
    const double ea = v ? a : 1, eb = v ? -b : -1, nn = sqrt(ea * ea + eb * eb);
    check_close(fabs(dir[0]), fabs(ea / nn), 1e-6);
    check_close(fabs(dir[1]), fabs(eb / nn), 1e-6);
    assert_true(dir[0] * dir[1] < 0);
    check_close(dir[2], 0, 1e-6);
    nde_result_destroy(&r);
    nde_data_destroy(&d);
    nde_model_destroy(&m);
  }
}

/* ---- LV: finite differences, solvers ---- */

#define LV_SRC                                                     \
  "state x = 0.44249296, y = 4.6280594\n"                          \
  "param alpha = 1.3 (positive)\nparam beta = 0.9 (positive)\n"    \
  "param gamma = 0.8 (positive)\nparam delta = 1.8 (positive)\n"   \
  "dx/dt = alpha*x - beta*x*y\ndy/dt = gamma*x*y - delta*y\n"

static nde_data *lv_data(nde_model **mp) {
  *mp = load(LV_SRC);
  return open_data(NDE_SOURCE_DIR "/data/lotka_volterra.h5", *mp);
}

static void finite_differences_agree_with_the_sensitivities(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  nde_result *r = fit(m, d, "shoot:adam:500@0.02,lbfgs:500", 1, NULL);
  nde_unc_opts o = nde_unc_opts_default();
  assert_int_equal(nde_result_compute_uncertainty(r, d, &o, NULL), NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  assert_int_equal(u->n, 6);
  double cov[36], se[6];
  memcpy(cov, u->cov, sizeof cov);
  for (int j = 0; j < 6; j++) se[j] = u->entry[j].se;
  o.finite_differences = 1;
  assert_int_equal(nde_result_compute_uncertainty(r, d, &o, NULL), NDE_OK);
  u = nde_result_get_uncertainty(r);
  const double e = nde_test_rel_err(36, u->cov, cov, 0);
  printf("central differences (step 1e-6) against sensitivities: covariance relative error "
         "%.2e\n", e);
  assert_true(e < 1e-6);
  for (int j = 0; j < 6; j++) {
    printf("  %-10s %.6g +- %.4g\n", u->entry[j].name, u->entry[j].value, se[j]);
    check_rel(u->entry[j].se, se[j], 1e-6, 0);
  }
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void every_solver_gives_the_same_standard_errors(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  const char *solvers[] = {"rk4", "dopri5", "cvode-bdf", "cvode-adams", "implicit-midpoint"};
  double ref[4] = {0}, theta0[4];
  for (int s = 0; s < 5; s++) {
    nde_result_fit_opts o = nde_result_fit_opts_default();
    /* The other solvers start from rk4's estimate. */
    o.schedule = s ? "lbfgs:100" : "shoot:adam:500@0.02,lbfgs:500";
    o.theta0 = s ? theta0 : NULL;
    o.solver.method = solvers[s];
    o.solver.rtol = 1e-9;
    o.solver.atol = 1e-11;
    if (!strcmp(solvers[s], "implicit-midpoint")) o.solver.steps_per_interval = 100;
    nde_result *r = NULL;
    nde_error err;
    if (nde_result_fit(m, d, &o, &r, &err) != NDE_OK) fail_msg("fit: %s", err.msg);
    if (nde_result_compute_uncertainty(r, d, NULL, &err) != NDE_OK)
      fail_msg("%s: %s", solvers[s], err.msg);
    if (s == 0) memcpy(theta0, nde_result_theta(r), sizeof theta0);
    const nde_uncertainty *u = nde_result_get_uncertainty(r);
    printf("%-18s", solvers[s]);
    for (int j = 0; j < 4; j++) {
      printf(" %s %.5f +- %.5f", u->entry[j].name, u->entry[j].value, u->entry[j].se);
      if (s == 0) ref[j] = u->entry[j].se;
      else check_rel(u->entry[j].se, ref[j], 2e-3, 0);
    }
    printf("\n");
    nde_result_destroy(&r);
  }
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}


/* ---- profiles ---- */

static void profile_interval_equals_the_curvature_interval_on_a_linear_model(void **state) {
  (void)state;
  nde_model *m = load(LIN_SRC);
  double t[17], Y[17];
  make_linear_data(path_of("linp.h5"), m, t, Y, 17);
  nde_data *d = open_data(path_of("linp.h5"), m);
  nde_result *r = fit(m, d, "lbfgs:400", 1, NULL);
  nde_profile_opts po = nde_profile_opts_default();
  po.threads = 3;
  nde_error err;
  int stopped;
  assert_int_equal(nde_result_profile(r, d, "a,x(t0)", NULL, &po, &stopped, &err), NDE_OK);
  assert_int_equal(stopped, 0);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  assert_int_equal(nde_result_n_profiles(r), 2);
  nde_profile pa, px;
  assert_int_equal(nde_result_get_profile(r, 0, &pa), NDE_OK);
  assert_int_equal(nde_result_get_profile(r, 1, &px), NDE_OK);
  assert_string_equal(pa.name, "a");
  assert_string_equal(px.name, "x(t0)");
  assert_int_equal(pa.n, 2 * po.points + 1);
  /* For a linear model the profile statistic is exactly ((v - v^)/se)^2 and the interval is the
   * t interval. */
  for (int i = 0; i < pa.n; i++) {
    const double z = (pa.grid[i] - u->entry[0].value) / u->entry[0].se;
    check_close(pa.stat[i], z * z, 1e-7);
  }
  assert_true(pa.lower_found && pa.upper_found);
  check_rel(pa.lower, u->entry[0].lower, 1e-8, 1e-3);
  check_rel(pa.upper, u->entry[0].upper, 1e-8, 1e-3);
  check_rel(px.lower, u->entry[2].lower, 1e-8, 1e-3);
  check_rel(px.upper, u->entry[2].upper, 1e-8, 1e-3);
  check_rel(pa.threshold, u->quantile * u->quantile, 1e-15, 0);
  /* One thread gives the same profile bit for bit. */
  double grid[64], stat[64];
  memcpy(grid, pa.grid, (size_t)pa.n * sizeof *grid);
  memcpy(stat, pa.stat, (size_t)pa.n * sizeof *stat);
  po.threads = 1;
  assert_int_equal(nde_result_profile(r, d, "a", NULL, &po, NULL, &err), NDE_OK);
  assert_int_equal(nde_result_get_profile(r, 0, &pa), NDE_OK);
  assert_memory_equal(pa.grid, grid, (size_t)pa.n * sizeof *grid);
  assert_memory_equal(pa.stat, stat, (size_t)pa.n * sizeof *stat);
  /* Unknown names are refused with the valid ones. */
  assert_int_equal(nde_result_profile(r, d, "a,zeta", NULL, &po, NULL, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "'zeta' is not a fitted coordinate (expected one of a, b, "
                                  "x(t0))"));
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void profile_of_a_non_identifiable_parameter_is_unbounded(void **state) {
  (void)state;
  nde_model *m = load("state x = 2.1\nparam a = 1.2 (positive)\nparam b = 0.7 (positive)\n"
                      "param c = 0.4\ndx/dt = -a*b*x + c\n");
  double t[15], Y[15];
  nde_rng rng;
  nde_rng_seed(&rng, 78);
  for (int k = 0; k < 15; k++) {
    t[k] = 0.2 * k;
    Y[k] = 0.56 + (2.1 - 0.56) * exp(-0.93 * t[k]) + (k ? 0.01 * nde_rng_normal(&rng) : 0);
  }
  write_series(path_of("prodp.h5"), m, 15, t, Y);
  nde_data *d = open_data(path_of("prodp.h5"), m);
  nde_result *r = fit(m, d, "lbfgs:300", 0, NULL);
  nde_profile_opts po = nde_profile_opts_default();
  po.points = 4;
  po.max_extend = 2;
  nde_error err;
  assert_int_equal(nde_result_profile(r, d, "a,c", NULL, &po, NULL, &err), NDE_OK);
  nde_profile pa, pc;
  nde_result_get_profile(r, 0, &pa);
  nde_result_get_profile(r, 1, &pc);
  for (int i = 0; i < pa.n; i++) check_close(pa.stat[i], 0, 1e-6);
  assert_false(pa.lower_found);
  assert_false(pa.upper_found);
  assert_true(pa.lower == 0 && isinf(pa.upper));
  /* The grid reached e^-8 .. e^8 times the estimate (2 * 2^2 in log a). */
  check_rel(pa.grid[0], pa.value * exp(-8), 1e-9, 0);
  assert_true(pc.lower_found && pc.upper_found);
  printf("a: flat profile over [%.3g, %.3g]; c in [%.5f, %.5f] (curvature [%.5f, %.5f])\n",
         pa.grid[0], pa.grid[pa.n - 1], pc.lower, pc.upper,
         nde_result_get_uncertainty(r)->entry[2].lower,
         nde_result_get_uncertainty(r)->entry[2].upper);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void profiles_and_standard_errors_survive_save_and_open(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  nde_result *r = fit(m, d, "shoot:adam:500@0.02,lbfgs:500", 1, NULL);
  nde_profile_opts po = nde_profile_opts_default();
  po.points = 5;
  nde_error err;
  assert_int_equal(nde_result_profile(r, d, "beta,y(t0)", NULL, &po, NULL, &err), NDE_OK);
  assert_int_equal(nde_result_save(r, path_of("lvu.h5"), &err), NDE_OK);
  nde_result *q = NULL;
  assert_int_equal(nde_result_open(path_of("lvu.h5"), &q, &err), NDE_OK);
  const nde_uncertainty *a = nde_result_get_uncertainty(r), *b = nde_result_get_uncertainty(q);
  assert_non_null(b);
  assert_int_equal(a->n, b->n);
  assert_memory_equal(a->cov, b->cov, (size_t)a->n * a->n * sizeof(double));
  assert_memory_equal(a->cov_natural, b->cov_natural, (size_t)a->n * a->n * sizeof(double));
  for (int j = 0; j < a->n; j++) {
    assert_string_equal(a->entry[j].name, b->entry[j].name);
    assert_true(a->entry[j].se == b->entry[j].se && a->entry[j].lower == b->entry[j].lower &&
                a->entry[j].upper_sym == b->entry[j].upper_sym);
  }
  assert_true(a->quantile == b->quantile && a->dof == b->dof && isnan(b->sigma));
  assert_memory_equal(a->sigma_state, b->sigma_state, 2 * sizeof(double));
  assert_int_equal(nde_result_n_profiles(q), 2);
  nde_profile p1, p2;
  nde_result_get_profile(r, 0, &p1);
  nde_result_get_profile(q, 0, &p2);
  assert_string_equal(p2.name, "beta");
  assert_int_equal(p1.n, p2.n);
  assert_memory_equal(p1.stat, p2.stat, (size_t)p1.n * sizeof(double));
  assert_true(p1.lower == p2.lower && p1.upper == p2.upper);
  printf("LV beta: curvature [%.5f, %.5f], profile [%.5f, %.5f]\n", a->entry[1].lower,
         a->entry[1].upper, p1.lower, p1.upper);
  /* The named views. */
  nde_reader *rd = NULL;
  double se, lo, se_u0[2];
  assert_int_equal(nde_reader_open(path_of("lvu.h5"), &rd, NULL), NDE_OK);
  assert_int_equal(nde_reader_get_doubles(rd, "/params/se/beta", 1, &se), NDE_OK);
  assert_int_equal(nde_reader_get_doubles(rd, "/params/lower/beta", 1, &lo), NDE_OK);
  assert_int_equal(nde_reader_get_doubles(rd, "/series/u0_se", 2, se_u0), NDE_OK);
  nde_reader_destroy(&rd);
  assert_true(se == a->entry[1].se && lo == a->entry[1].lower && se_u0[1] == a->entry[5].se);
  /* Other data are refused. */
  nde_model *m2 = load(LIN_SRC);
  double t[17], Y[17];
  make_linear_data(path_of("other.h5"), m2, t, Y, 17);
  nde_data *d2 = open_data(NDE_SOURCE_DIR "/data/lotka_volterra_long.h5", m);
  assert_int_equal(nde_result_compute_uncertainty(q, d2, NULL, &err), NDE_ERR_DATA);
  assert_non_null(strstr(err.msg, "not the data of this fit"));
  nde_data_destroy(&d2);
  nde_model_destroy(&m2);
  nde_result_destroy(&q);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* ---- ensembles ---- */

static void ensemble_members_are_the_serial_fits_bit_for_bit(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "shoot:adam:300@0.02,lbfgs:200";
  o.seed = 11;
  nde_ensemble_opts e = nde_ensemble_opts_default();
  e.members = 4;
  e.threads = 3;
  nde_result *ra = NULL, *rb = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &ra, NULL, &err), NDE_OK);
  e.threads = 1;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &rb, NULL, &err), NDE_OK);
  assert_int_equal(nde_result_n_members(ra), 4);
  const size_t nt = nde_result_n_theta(ra);
  for (int k = 0; k < 4; k++) {
    nde_member_info a, b;
    assert_int_equal(nde_result_get_member(ra, k, &a), NDE_OK);
    assert_int_equal(nde_result_get_member(rb, k, &b), NDE_OK);
    assert_true(a.seed == 11u + (unsigned)k);
    assert_memory_equal(a.theta, b.theta, nt * sizeof(double));
    /* The fit made alone with that seed. */
    nde_result_fit_opts o1 = o;
    o1.seed = a.seed;
    nde_result *one = NULL;
    assert_int_equal(nde_result_fit(m, d, &o1, &one, &err), NDE_OK);
    assert_memory_equal(a.theta, nde_result_theta(one), nt * sizeof(double));
    assert_true(a.loss == nde_result_get_kept(one).loss);
    if (k == 0) assert_memory_equal(nde_result_theta(ra), nde_result_theta(one), nt * sizeof(double));
    nde_result_destroy(&one);
  }
  /* Saved and opened, the members are all there; a member is a result of its own. */
  assert_int_equal(nde_result_save(ra, path_of("ens.h5"), &err), NDE_OK);
  nde_result *q = NULL;
  assert_int_equal(nde_result_open(path_of("ens.h5"), &q, &err), NDE_OK);
  assert_int_equal(nde_result_n_members(q), 4);
  nde_member_info a, b;
  nde_result_get_member(ra, 2, &a);
  nde_result_get_member(q, 2, &b);
  assert_memory_equal(a.theta, b.theta, nt * sizeof(double));
  assert_memory_equal(a.u0, b.u0, 2 * sizeof(double));
  assert_true(a.seed == b.seed && a.status == b.status && a.loss == b.loss);
  nde_result *mem = NULL;
  assert_int_equal(nde_result_member(q, 2, &mem, &err), NDE_OK);
  assert_memory_equal(nde_result_theta(mem), a.theta, nt * sizeof(double));
  assert_int_equal(nde_result_n_members(mem), 0);
  nde_result_destroy(&mem);
  /* The spread of beta over the members (they differ only by their starts). */
  nde_spread sp;
  assert_int_equal(nde_result_param_spread(q, 1, 0, 0.95, &sp), NDE_OK);
  assert_int_equal(sp.n, 4);
  assert_true(sp.lower <= sp.median && sp.median <= sp.upper);
  printf("beta over 4 seeds: mean %.6f sd %.2e\n", sp.mean, sp.sd);
  nde_result_destroy(&q);
  nde_result_destroy(&ra);
  nde_result_destroy(&rb);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void resampled_members_fit_what_their_masks_keep(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "shoot:adam:300@0.02,lbfgs:200";
  nde_ensemble_opts e = nde_ensemble_opts_default();
  e.members = 3;
  e.resample = NDE_RESAMPLE_TIME;
  e.fraction = 0.7; /* not the default, so that reading it back is tested */
  nde_result *r = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &r, NULL, &err), NDE_OK);
  /* How it was made is recorded, and survives save and open. */
  assert_int_equal(nde_result_save(r, path_of("resampled.h5"), &err), NDE_OK);
  nde_result *q = NULL;
  assert_int_equal(nde_result_open(path_of("resampled.h5"), &q, &err), NDE_OK);
  nde_ensemble_opts how;
  assert_int_equal(nde_result_ensemble_settings(q, &how), NDE_OK);
  assert_int_equal(how.members, 3);
  assert_int_equal(how.resample, NDE_RESAMPLE_TIME);
  assert_true(how.fraction == 0.7);
  nde_result *one_member = NULL;
  assert_int_equal(nde_result_member(q, 1, &one_member, &err), NDE_OK);
  assert_int_equal(nde_result_ensemble_settings(one_member, &how), NDE_ERR_ARG);
  nde_result_destroy(&one_member);
  nde_result_destroy(&q);
  /* The result's own fit is the seed's on all the data. */
  nde_result *all = NULL;
  assert_int_equal(nde_result_fit(m, d, &o, &all, &err), NDE_OK);
  assert_memory_equal(nde_result_theta(r), nde_result_theta(all), 4 * sizeof(double));
  for (int k = 0; k < 3; k++) {
    nde_member_info mi;
    nde_result_get_member(r, k, &mi);
    int kept = 0;
    for (int i = 0; i < 21; i++) kept += mi.keep[i];
    assert_int_equal(mi.keep[0], 1);
    assert_int_equal(kept, 15); /* the first row and 70 % of the 20 others */
    nde_data *dk = NULL;
    assert_int_equal(nde_data_masked(d, mi.keep, &dk, &err), NDE_OK);
    assert_int_equal(nde_data_n_obs(dk), 30);
    nde_result_fit_opts o1 = o;
    o1.seed = mi.seed;
    nde_result *one = NULL;
    assert_int_equal(nde_result_fit(m, dk, &o1, &one, &err), NDE_OK);
    assert_memory_equal(mi.theta, nde_result_theta(one), 4 * sizeof(double));
    nde_result_destroy(&one);
    nde_data_destroy(&dk);
  }
  /* Bands of the forecast beyond the data: ordered, and wider later. */
  double t[3] = {5.0, 7.5, 10.0}, lo[6], mid[6], hi[6];
  nde_start st = {.kind = NDE_START_FITTED, .series = 0};
  int used;
  assert_int_equal(nde_result_integrate_band(r, &st, 3, t, NULL, 0.9, lo, mid, hi, &used, &err),
                   NDE_OK);
  assert_int_equal(used, 3);
  for (int i = 0; i < 6; i++) assert_true(lo[i] <= mid[i] && mid[i] <= hi[i]);
  assert_true(hi[4] > lo[4] && hi[5] > lo[5]); /* half-samples differ */
  /* Bad options. */
  e.fraction = 1.5;
  nde_result *bad = NULL;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &bad, NULL, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "fraction must be in (0, 1)"));
  e.fraction = 0.5;
  e.resample = NDE_RESAMPLE_SERIES;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &bad, NULL, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "at least 2 series"));
  e.members = 1;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &bad, NULL, &err), NDE_ERR_ARG);
  assert_null(bad);
  nde_result_destroy(&all);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

static void the_linearised_band_follows_the_covariance(void **state) {
  (void)state;
  nde_model *m;
  nde_data *d = lv_data(&m);
  nde_result *r = fit(m, d, "shoot:adam:500@0.02,lbfgs:500", 1, NULL);
  double t[4] = {0, 2.5, 5, 10}, lo[8], mid[8], hi[8];
  nde_start st = {.kind = NDE_START_FITTED, .series = 0};
  nde_error err;
  assert_int_equal(nde_result_integrate_band(r, &st, 4, t, NULL, 0.95, lo, mid, hi, NULL, &err),
                   NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "neither ensemble members nor standard errors"));
  assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, &err), NDE_OK);
  assert_int_equal(nde_result_integrate_band(r, &st, 4, t, NULL, 0.95, lo, mid, hi, NULL, &err),
                   NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  /* At t0 the band is the initial states' intervals. */
  check_rel(hi[0] - mid[0], u->quantile * u->entry[4].se, 1e-6, 0);
  check_rel(hi[1] - mid[1], u->quantile * u->entry[5].se, 1e-6, 0);
  double Y[8];
  nde_solve_stats ss;
  assert_int_equal(nde_result_integrate(r, &st, 4, t, NULL, Y, &ss, NULL), NDE_OK);
  for (int i = 0; i < 8; i++) {
    check_rel(mid[i], Y[i], 1e-9, 1e-9);
    assert_true(lo[i] < mid[i] && mid[i] < hi[i]);
  }
  printf("x(10) = %.4f, 95%% band [%.4f, %.4f]\n", mid[6], lo[6], hi[6]);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

/* Three series, a per-series rate: standard errors per series, and series resampling. */
static void per_series_parameters_and_series_resampling(void **state) {
  (void)state;
  nde_model *m = load("state x = 1\nparam k = 0.5 (positive, per series)\nparam c = 0.3\n"
                      "dx/dt = -k*x + c\n");
  const double ks[3] = {0.41, 0.77, 1.23}, x0s[3] = {1.9, 0.2, 1.1};
  const char *groups[3] = {"/a", "/b", "/c"}, *names[1] = {"x"};
  nde_writer *w = NULL;
  assert_int_equal(nde_writer_create(path_of("ps.h5"), &w, NULL), NDE_OK);
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  for (int g = 0; g < 3; g++) {
    double t[12], Y[12];
    for (int i = 0; i < 12; i++) {
      t[i] = 0.3 * i;
      const double xs = 0.3 / ks[g];
      Y[i] = xs + (x0s[g] - xs) * exp(-ks[g] * t[i]) + (i ? 0.01 * nde_rng_normal(&rng) : 0);
    }
    nde_series se = {12, 1, t, Y, names, NULL};
    assert_int_equal(nde_writer_put_series(w, groups[g], &se), NDE_OK);
  }
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  nde_data *d = open_data(path_of("ps.h5"), m);
  nde_result_fit_opts o = nde_result_fit_opts_default();
  o.schedule = "lbfgs:300";
  nde_ensemble_opts e = nde_ensemble_opts_default();
  e.members = 3;
  e.resample = NDE_RESAMPLE_SERIES;
  e.fraction = 0.67;
  nde_result *r = NULL;
  nde_error err;
  assert_int_equal(nde_result_fit_ensemble(m, d, &o, &e, &r, NULL, &err), NDE_OK);
  assert_int_equal(nde_result_compute_uncertainty(r, d, NULL, &err), NDE_OK);
  const nde_uncertainty *u = nde_result_get_uncertainty(r);
  assert_int_equal(u->n, 4); /* c, k[/a], k[/b], k[/c] */
  assert_string_equal(u->entry[0].name, "c");
  assert_string_equal(u->entry[2].name, "k[/b]");
  assert_int_equal(u->entry[2].kind, NDE_UNC_SERIES_PARAM);
  assert_int_equal(u->entry[2].series, 1);
  for (int j = 1; j < 4; j++) {
    printf("%s = %.4f +- %.4f (truth %.2f)\n", u->entry[j].name, u->entry[j].value,
           u->entry[j].se, ks[j - 1]);
    assert_true(u->entry[j].se > 0 && u->entry[j].se < 0.1);
  }
  /* Every member kept two whole series and the first row of the third. */
  int spread_n[3] = {0};
  for (int k = 0; k < 3; k++) {
    nde_member_info mi;
    nde_result_get_member(r, k, &mi);
    int whole = 0;
    for (int g = 0; g < 3; g++) {
      int kept = 0;
      for (int i = 0; i < 12; i++) kept += mi.keep[g * 12 + i];
      assert_true(kept == 12 || kept == 1);
      whole += kept == 12;
      spread_n[g] += kept == 12;
    }
    assert_int_equal(whole, 2);
  }
  for (int g = 0; g < 3; g++) {
    nde_spread sp;
    assert_int_equal(nde_result_param_spread(r, 0, g, 0.9, &sp), NDE_OK); /* k */
    assert_int_equal(sp.n, spread_n[g]);
  }
  /* The named view of a per-series parameter has one value per series. */
  assert_int_equal(nde_result_save(r, path_of("ps_fit.h5"), &err), NDE_OK);
  nde_reader *rd = NULL;
  double se[3];
  assert_int_equal(nde_reader_open(path_of("ps_fit.h5"), &rd, NULL), NDE_OK);
  assert_int_equal(nde_reader_get_doubles(rd, "/params/se/k", 3, se), NDE_OK);
  nde_reader_destroy(&rd);
  for (int g = 0; g < 3; g++) assert_true(se[g] == u->entry[1 + g].se);
  nde_result_destroy(&r);
  nde_data_destroy(&d);
  nde_model_destroy(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(covariance_equals_the_textbook_one_on_a_linear_model),
      cmocka_unit_test(log_parameters_get_the_delta_method_and_asymmetric_intervals),
      cmocka_unit_test(per_state_noise_gives_each_state_its_own_level),
      cmocka_unit_test(parameters_entering_only_as_a_product_are_flagged),
      cmocka_unit_test(finite_differences_agree_with_the_sensitivities),
      cmocka_unit_test(every_solver_gives_the_same_standard_errors),
      cmocka_unit_test(profile_interval_equals_the_curvature_interval_on_a_linear_model),
      cmocka_unit_test(profile_of_a_non_identifiable_parameter_is_unbounded),
      cmocka_unit_test(profiles_and_standard_errors_survive_save_and_open),
      cmocka_unit_test(ensemble_members_are_the_serial_fits_bit_for_bit),
      cmocka_unit_test(resampled_members_fit_what_their_masks_keep),
      cmocka_unit_test(the_linearised_band_follows_the_covariance),
      cmocka_unit_test(per_series_parameters_and_series_resampling),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
