/* The forecasts of nde forecast: their grids, solutions and bands, and their outputs: HDF5 in the
 * data convention (with the scores as attributes) or CSV, both written atomically, and the
 * printed scores. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forecast.h"

/* The band of a forecast: over the members, or linearised from the standard errors. */
int nde_cli_forecast_band(const nde_result *r, const nde_start *start, const nde_solver_opts *so,
                    double level, nde_cli_forecast *f) {
  const int n = nde_model_state_dim(nde_result_model(r));
  const int no = nde_model_n_observables(nde_result_model(r));
  f->lo = calloc(f->N * (size_t)n, sizeof *f->lo);
  f->hi = calloc(f->N * (size_t)n, sizeof *f->hi);
  if (no > 0) {
    f->obs_lo = calloc(f->N * (size_t)no, sizeof *f->obs_lo);
    f->obs_hi = calloc(f->N * (size_t)no, sizeof *f->obs_hi);
  }
  if (!f->lo || !f->hi || (no > 0 && (!f->obs_lo || !f->obs_hi))) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  /* The states' band and the observables' in one pass. */
  nde_error err;
  const nde_status st = nde_result_forecast_band(r, start, f->N, f->T, so, level, f->lo, NULL,
                                                 f->hi, f->obs_lo, NULL, f->obs_hi,
                                                 &f->band_used, &err);
  if (st != NDE_OK) {
    nde_cli_error("--band: %s", err.msg);
    return nde_cli_exit_code(st);
  }
  f->band_members = 0;
  for (int k = 0; k < nde_result_n_members(r); k++) {
    nde_member_info mi;
    if (nde_result_get_member(r, k, &mi) == NDE_OK &&
        (mi.status == NDE_FIT_DONE || mi.status == NDE_FIT_EARLY_STOP))
      f->band_members++;
  }
  return 0;
}

/* The first time index at which a bound of the band (N x w, lo and hi) is not finite, or -1. */
static long band_gap(size_t N, int w, const double *lo, const double *hi) {
  for (size_t q = 0; lo && q < N * (size_t)w; q++)
    if (!isfinite(lo[q]) || !isfinite(hi[q])) return (long)(q / (size_t)w);
  return -1;
}

/* The output grid from t0 to t1 every dt_out, t1 included. */
int nde_cli_forecast_grid(double t0, double t1, double dt_out, nde_cli_forecast *f) {
  nde_error err;
  const nde_status st = nde_time_grid(t0, t1, dt_out, 10000001, &f->T, &f->N, &err);
  if (st == NDE_OK) {
    f->t0 = t0;
    return 0;
  }
  nde_cli_error("--dt-out: %s", err.msg);
  return nde_cli_exit_code(st);
}

int nde_cli_forecast_run(const nde_result *r, const nde_start *start, const nde_solver_opts *so,
                        nde_cli_forecast *f) {
  const int n = nde_model_state_dim(nde_result_model(r));
  f->Y = calloc(f->N * (size_t)n, sizeof *f->Y);
  if (!f->Y) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  nde_error err;
  nde_status st = nde_result_integrate(r, start, f->N, f->T, so, f->Y, &f->stop, &err);
  if (st != NDE_OK) return nde_cli_fail(&err, 0);
  /* The observables along it (a stopped forecast is refused before it is written). */
  const int no = nde_model_n_observables(nde_result_model(r));
  if (no > 0 && f->stop.reason == NDE_REASON_NONE) {
    f->obs = calloc(f->N * (size_t)no, sizeof *f->obs);
    if (!f->obs) {
      nde_cli_error("out of memory");
      return NDE_EXIT_IO;
    }
    f->n_obs = no;
    if ((st = nde_result_observe(r, start, f->N, f->T, f->Y, f->obs, &err)) != NDE_OK)
      return nde_cli_fail(&err, 0);
  }
  return 0;
}

int nde_cli_forecast_write_csv(const char *out, const nde_model *m, const nde_cli_forecast *f,
                               int nf) {
  const char **names = nde_cli_column_names(m, 1);
  if (!names) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  const int rc = nde_cli_write_csv(out, nde_model_state_dim(m), names, f, nf);
  free(names);
  return rc;
}

int nde_cli_write_csv(const char *out, int n, const char *const *names, const nde_cli_forecast *f,
                      int nf) {
  char b[NDE_NUM_MAX];
  const int band = f[0].lo != NULL;
  nde_str s = NDE_STR_INIT;
  const int no = f[0].obs ? f[0].n_obs : 0;
  nde_str_adds(&s, nf > 1 ? "series,t" : "t");
  for (int j = 0; j < n + no; j++) nde_str_addf(&s, ",%s", names[j]);
  const int obs_band = band && no > 0 && f[0].obs_lo;
  for (int j = 0; j < n && band; j++) nde_str_addf(&s, ",%s_lower,%s_upper", names[j], names[j]);
  for (int j = n; j < n + no && obs_band; j++)
    nde_str_addf(&s, ",%s_lower,%s_upper", names[j], names[j]);
  nde_str_adds(&s, "\n");
  for (int k = 0; k < nf; k++)
    for (size_t i = 0; i < f[k].N; i++) {
      if (nf > 1) nde_str_addf(&s, "%s,", f[k].name);
      nde_str_adds(&s, nde_num_str(f[k].T[i], b));
      for (int j = 0; j < n; j++)
        nde_str_addf(&s, ",%s", nde_num_str(f[k].Y[i * (size_t)n + (size_t)j], b));
      for (int j = 0; j < no; j++)
        nde_str_addf(&s, ",%s",
                     nde_num_str(f[k].obs ? f[k].obs[i * (size_t)no + (size_t)j] : NAN, b));
      for (int j = 0; j < n && band; j++) {
        nde_str_addf(&s, ",%s", nde_num_str(f[k].lo[i * (size_t)n + (size_t)j], b));
        nde_str_addf(&s, ",%s", nde_num_str(f[k].hi[i * (size_t)n + (size_t)j], b));
      }
      for (int j = 0; j < no && obs_band; j++) {
        const size_t q = i * (size_t)no + (size_t)j;
        nde_str_addf(&s, ",%s", nde_num_str(f[k].obs_lo ? f[k].obs_lo[q] : NAN, b));
        nde_str_addf(&s, ",%s", nde_num_str(f[k].obs_hi ? f[k].obs_hi[q] : NAN, b));
      }
      nde_str_adds(&s, "\n");
    }
  int rc;
  if (s.failed) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
  } else {
    rc = nde_cli_write_text(out, s.data, s.len);
  }
  nde_str_release(&s);
  return rc;
}

int nde_cli_forecast_write_h5(const char *out, const char *fit_path, const nde_result *r,
                              const nde_cli_forecast *f, int nf, const nde_score *score,
                              const char *held, double tol, const char *cmd, const char *solver,
                              double level) {
  const nde_model *m = nde_result_model(r);
  const int n = nde_model_state_dim(m);
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  const char **names = nde_cli_column_names(m, 1);
  const char **xn = nde_cli_driver_names(m);
  nde_error err;
  nde_writer *w = NULL;
  double *Yo = NULL; /* a series' states and observables side by side */
  double *Bl = NULL, *Bu = NULL; /* the same for the band */
  if (!names || !xn) {
    free(xn);
    free(names);
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  nde_status st = nde_writer_create(out, &w, &err);
  if (st != NDE_OK) {
    free(names);
    free(xn);
    return nde_cli_fail(&err, 0);
  }
  for (int k = 0; k < nf && st == NDE_OK; k++) {
    nde_series s = {f[k].N, (size_t)n, f[k].T, f[k].Y, names, NULL};
    const int no = f[k].obs ? f[k].n_obs : 0;
    if (no > 0) {
      free(Yo);
      Yo = malloc(f[k].N * (size_t)(n + no) * sizeof *Yo);
      if (!Yo) {
        st = NDE_ERR_NOMEM;
        break;
      }
      for (size_t i = 0; i < f[k].N; i++) {
        memcpy(Yo + i * (size_t)(n + no), f[k].Y + i * (size_t)n, (size_t)n * sizeof *Yo);
        memcpy(Yo + i * (size_t)(n + no) + n, f[k].obs + i * (size_t)no,
               (size_t)no * sizeof *Yo);
      }
      s.d = (size_t)(n + no);
      s.y = Yo;
    }
    const char *g = nf > 1 ? f[k].name : "/";
    /* The inputs that drove it, when they cover the forecast (a held input may end before). */
    nde_series_extra x = {0};
    const nde_input_series *in = &f[k].inputs;
    if (mi > 0 && in->n && in->t[0] <= f[k].T[0] && in->t[in->n - 1] >= f[k].T[f[k].N - 1]) {
      x.m = (size_t)mi;
      x.n_u = in->n;
      x.u_t = in->t;
      x.u = in->u;
      x.input_names = xn;
    }
    if (ndc > 0 && f[k].consts) {
      x.n_consts = (size_t)ndc;
      x.const_names = xn + mi;
      x.consts = f[k].consts;
    }
    st = nde_writer_put_series_ex(w, g, &s, &x);
    if (st == NDE_OK && f[k].lo) {
      /* The band beside y: same shape, attributes saying what it is. */
      nde_str pl = NDE_STR_INIT, pu = NDE_STR_INIT;
      if (strcmp(g, "/")) {
        nde_str_adds(&pl, g);
        nde_str_adds(&pu, g);
      }
      nde_str_adds(&pl, "/y_lower");
      nde_str_adds(&pu, "/y_upper");
      /* The same columns as y: the states' band, then the observables'. */
      const int nb = n + (f[k].obs_lo ? no : 0);
      size_t dims[2] = {f[k].N, (size_t)nb};
      const double *lo = f[k].lo, *hi = f[k].hi;
      if (pl.failed || pu.failed) st = NDE_ERR_NOMEM;
      if (st == NDE_OK && nb > n) {
        free(Bl);
        free(Bu);
        Bl = malloc(f[k].N * (size_t)nb * sizeof *Bl);
        Bu = malloc(f[k].N * (size_t)nb * sizeof *Bu);
        if (!Bl || !Bu) st = NDE_ERR_NOMEM;
        for (size_t i = 0; i < f[k].N && st == NDE_OK; i++) {
          memcpy(Bl + i * (size_t)nb, f[k].lo + i * (size_t)n, (size_t)n * sizeof *Bl);
          memcpy(Bu + i * (size_t)nb, f[k].hi + i * (size_t)n, (size_t)n * sizeof *Bu);
          memcpy(Bl + i * (size_t)nb + n, f[k].obs_lo + i * (size_t)no, (size_t)no * sizeof *Bl);
          memcpy(Bu + i * (size_t)nb + n, f[k].obs_hi + i * (size_t)no, (size_t)no * sizeof *Bu);
        }
        lo = Bl;
        hi = Bu;
      }
      if (st == NDE_OK) st = nde_writer_put_doubles(w, pl.data, 2, dims, lo);
      if (st == NDE_OK) st = nde_writer_put_doubles(w, pu.data, 2, dims, hi);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, g, "band_level", level);
      if (st == NDE_OK)
        st = nde_writer_set_attr_string(w, g, "band", nde_result_n_members(r) > 0
                                                          ? "quantiles over the ensemble members"
                                                          : "linearised from the covariance");
      if (st == NDE_OK) st = nde_writer_set_attr_int64(w, g, "band_members", f[k].band_used);
      nde_str_release(&pl);
      nde_str_release(&pu);
    }
    if (st == NDE_OK && score) {
      nde_series_score sc;
      nde_score_get(score, k, &sc);
      st = nde_writer_set_attr_double(w, g, "rmse", sc.rmse_all);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, g, "horizon", sc.horizon);
      for (int j = 0; j < nde_score_n_columns(score) && st == NDE_OK; j++) {
        nde_str an = NDE_STR_INIT;
        nde_str_addf(&an, "rmse_%s", names[j]);
        st = an.failed ? NDE_ERR_NOMEM : nde_writer_set_attr_double(w, g, an.data, sc.rmse[j]);
        nde_str_release(&an);
      }
    }
  }
  if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "command_line", cmd);
  if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "forecast_of", fit_path);
  if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "solver", solver);
  if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "nde_version", nde_version());
  /* The model's source: /model/source beside one series; a root attribute in a batch (every
   * group of a batch is a series, so a /model group would make the file unreadable). */
  if (st == NDE_OK && nf > 1)
    st = nde_writer_set_attr_string(w, "/", "model_source", nde_model_source(m));
  else if (st == NDE_OK)
    st = nde_writer_put_string(w, "/model/source", nde_model_source(m));
  if (held && st == NDE_OK) {
    st = nde_writer_set_attr_string(w, "/", "held_out_data", held);
    if (st == NDE_OK) st = nde_writer_set_attr_double(w, "/", "horizon_tol", tol);
    if (st == NDE_OK) st = nde_writer_set_attr_double(w, "/", "rmse", nde_score_rmse(score));
  }
  if (st == NDE_OK) st = nde_writer_commit(w);
  int rc = 0;
  if (st != NDE_OK) {
    /* Out of memory joining a series' states and observables is not the writer's to name. */
    const char *msg = nde_writer_errmsg(w);
    if (*msg)
      nde_cli_error("%s", msg);
    else
      nde_cli_error("%s: %s", out, nde_status_str(st));
    rc = nde_cli_exit_code(st);
  }
  nde_writer_destroy(&w);
  free(Yo);
  free(Bl);
  free(Bu);
  free(names);
  free(xn);
  return rc;
}

/* The components of a held-out series' start that its first row lacked, with their values and
 * where they came from: a start completed by the model's declared initial values (meant for the
 * start of an experiment) at a later time is silently wrong unless the user is told. */
static void print_completed_start(const nde_series_score *sc, const nde_result *r) {
  const nde_model *m = nde_result_model(r);
  const int n = nde_model_state_dim(m);
  for (int src = NDE_U0_FROM_FIT; src <= NDE_U0_FROM_MODEL; src++) {
    int any = 0;
    for (int j = 0; j < n; j++) {
      if (sc->u0_from[j] != src) continue;
      char bv[NDE_NUM_MAX];
      printf("%s%s = %s", any ? ", " : "    start: not observed in the first row: ",
             nde_model_component_name(m, j), nde_num_str(sc->u0[j], bv));
      any = 1;
    }
    if (!any) continue;
    char bt[NDE_NUM_MAX];
    nde_num_str(sc->t0, bt);
    if (src == NDE_U0_FROM_FIT) {
      nde_result_series fs;
      nde_result_get_series(r, sc->series_from, &fs);
      printf(", from the fitted trajectory of series %s at t = %s\n", fs.name, bt);
    } else {
      printf(", the model's declared initial values (no fitted series named %s covers t = %s)\n",
             sc->name, bt);
    }
  }
}

void nde_cli_forecast_print_scores(const nde_score *score, const nde_result *r, const char *held,
                                   double tol, int fitted) {
  const nde_model *m = nde_result_model(r);
  const int n = nde_model_state_dim(m);
  printf("forecast error against %s, each series from %s:\n", held,
         fitted ? "the fitted trajectory of the series it continues" : "its own first observed row");
  for (int k = 0; k < nde_score_n_series(score); k++) {
    nde_series_score sc;
    nde_score_get(score, k, &sc);
    printf("  series %s (t in [%g, %g]): rmse %.6e", sc.name, sc.t0, sc.t1, sc.rmse_all);
    for (int j = 0; j < nde_score_n_columns(score); j++)
      if (sc.count[j])
        printf(", %s %.4e",
               j < n ? nde_model_component_name(m, j) : nde_model_observable_name(m, j - n),
               sc.rmse[j]);
    if (isnan(sc.horizon))
      printf("; the error stays within %g x each column's std\n", tol);
    else
      printf("; horizon %g (the error first exceeds %g x a state's std)\n", sc.horizon, tol);
    if (!fitted) print_completed_start(&sc, r);
    if (sc.stop.reason != NDE_REASON_NONE)
      printf("    the prediction stopped at t = %g: %s\n", sc.stop.t_stop,
             nde_stop_reason_str(sc.stop.reason));
  }
  printf("  rmse all %.6e\n", nde_score_rmse(score));
}

int nde_cli_forecast_check(const nde_cli_forecast *fc, int nf, const nde_model *m, int held,
                           const char *method, const char *out) {
  const int ns = nde_model_state_dim(m);
  const char *what = held ? "held-out series " : "series ";
  for (int k = 0; k < nf; k++) {
    if (fc[k].stop.reason != NDE_REASON_NONE) {
      char msg[600];
      nde_cli_error("the forecast of %s%s stopped: %s; nothing written to %s", what,
                    fc[k].name ? fc[k].name : "1",
                    nde_cli_stop_message(method, &fc[k].stop, m, msg, sizeof msg), out);
      return NDE_EXIT_NUMERIC;
    }
    for (size_t q = 0; q < fc[k].N * (size_t)ns; q++)
      if (!isfinite(fc[k].Y[q])) {
        char bt[NDE_NUM_MAX];
        nde_cli_error("the forecast of %s%s is not finite at t = %s (%s); nothing written to %s",
                      what, fc[k].name ? fc[k].name : "1",
                      nde_num_str(fc[k].T[q / (size_t)ns], bt),
                      nde_model_component_name(m, (int)(q % (size_t)ns)), out);
        return NDE_EXIT_NUMERIC;
      }
    /* The observables too (as nde simulate --columns): one outside its domain along the
     * forecast (sqrt of a negative value) is named, not written as NaN. */
    for (size_t q = 0; fc[k].obs && q < fc[k].N * (size_t)fc[k].n_obs; q++)
      if (!isfinite(fc[k].obs[q])) {
        char bt[NDE_NUM_MAX];
        nde_cli_error("the observable %s of the forecast of %s%s is not finite at t = %s "
                      "(expected an observation model defined along the forecast); nothing "
                      "written to %s",
                      nde_model_observable_name(m, (int)(q % (size_t)fc[k].n_obs)), what,
                      fc[k].name ? fc[k].name : "1",
                      nde_num_str(fc[k].T[q / (size_t)fc[k].n_obs], bt), out);
        return NDE_EXIT_NUMERIC;
      }
    /* The band: quantiles over members are NaN where no member's integration goes on (a
     * blow-up of every member before the forecast's end); never written as NaN either. */
    long gs = band_gap(fc[k].N, ns, fc[k].lo, fc[k].hi);
    const long go = band_gap(fc[k].N, fc[k].n_obs, fc[k].obs_lo, fc[k].obs_hi);
    if (gs < 0 || (go >= 0 && go < gs)) gs = go;
    if (gs >= 0) {
      char bt[NDE_NUM_MAX];
      nde_num_str(fc[k].T[gs], bt);
      if (fc[k].band_members > 0)
        nde_cli_error("the band of the forecast of %s%s is not finite from t = %s: the "
                      "integrations of all %d members stopped by then (expected a forecast "
                      "that ends before, or --no-band); nothing written to %s",
                      what, fc[k].name ? fc[k].name : "1", bt, fc[k].band_members, out);
      else
        nde_cli_error("the band of the forecast of %s%s is not finite from t = %s: the solve "
                      "of its sensitivities stopped (expected a forecast that ends before, or "
                      "--no-band); nothing written to %s",
                      what, fc[k].name ? fc[k].name : "1", bt, out);
      return NDE_EXIT_NUMERIC;
    }
  }
  return 0;
}
