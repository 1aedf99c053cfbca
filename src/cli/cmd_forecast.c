/* nde forecast FIT.h5 --t1 T: integrate the learned model of a result file beyond the data, from
 * the fitted initial state (or --u0, or the last observed state), on an output grid, with any
 * solver; write the forecast as a time series in the data convention (HDF5, so nde fit and nde
 * inspect read it back) or as CSV.  With --data HELD_OUT.h5: per-state RMSE against held-out
 * observations and the horizon where the error first exceeds a threshold. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_sim.h"
#include "fit_result.h"
#include "plot.h"

#define USAGE "nde forecast FIT.h5 --t1 T -o OUT.h5|OUT.csv [options]"

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* "x=0.4,y=4.6" into u0 (components by name). */
static int parse_u0(const char *spec, const nde_model *m, double *u0) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", spec);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    char *eq = strchr(tok, '=');
    if (!eq) {
      nde_cli_error("--u0: '%s' is not NAME=VALUE", tok);
      return NDE_EXIT_INPUT;
    }
    *eq = '\0';
    int j = nde_model_find_component(m, tok);
    char *end;
    double v = strtod(eq + 1, &end);
    if (j < 0) {
      nde_cli_error("--u0: '%s' is not a state of the model (expected names as nde check lists them)", tok);
      return NDE_EXIT_INPUT;
    }
    if (end == eq + 1 || *end || !isfinite(v)) {
      nde_cli_error("--u0: '%s' is not a finite number (for %s)", eq + 1, tok);
      return NDE_EXIT_INPUT;
    }
    u0[j] = v;
  }
  return 0;
}

int nde_cmd_forecast(int argc, char **argv) {
  const char *out = NULL, *u0_spec = NULL, *solver = NULL, *held = NULL, *plot = NULL;
  double t0 = NAN, t1 = NAN, dt_out = 0, dt = 0, rtol = 0, atol = 0, tol = 0.1;
  long series = 1;
  int from_last = 0, quiet = 0;
  nde_arg opts[] = {
      {"--t1", NDE_ARG_DOUBLE, &t1, "T", "forecast up to T (required)", 0},
      {"--t0", NDE_ARG_DOUBLE, &t0, "T0", "start time (default: the series' first time)", 0},
      {"--dt-out", NDE_ARG_DOUBLE, &dt_out, "H", "output every H (default: the data's spacing)", 0},
      {"--series", NDE_ARG_LONG, &series, "K", "start from fitted series K (1-based, default 1)", 0},
      {"--u0", NDE_ARG_STR, &u0_spec, "x=V,...", "start from this state (overrides components)", 0},
      {"--from-last", NDE_ARG_FLAG, &from_last, NULL,
       "start from the last fitted state of the series, at its time", 0},
      {"--solver", NDE_ARG_STR, &solver, "NAME", "integrator (default: the fit's)", 0},
      {"--dt", NDE_ARG_DOUBLE, &dt, "H", "fixed step (default: the fit's step)", 0},
      {"--rtol", NDE_ARG_DOUBLE, &rtol, "R", "relative tolerance of adaptive solvers", 0},
      {"--atol", NDE_ARG_DOUBLE, &atol, "A", "absolute tolerance of adaptive solvers", 0},
      {"--data", NDE_ARG_STR, &held, "HELD_OUT.h5", "score the forecast against these data", 0},
      {"--horizon-tol", NDE_ARG_DOUBLE, &tol, "E",
       "the horizon is where |error| first exceeds E x the state's std in the data (0.1)", 0},
      {"--plot", NDE_ARG_STR, &plot, "FILE.svg|png", "plot data, fitted and forecast curves", 0},
      {"--out", NDE_ARG_STR, &out, "OUT.h5|OUT.csv", "output file (also -o); required", 0},
      {"--quiet", NDE_ARG_FLAG, &quiet, NULL, "print nothing on success", 0},
  };
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1, 1,
                         &n_pos);
  if (rc >= 0) return rc;
  if (!out) {
    nde_cli_error("an output file is required (-o OUT.h5 or OUT.csv)");
    return NDE_EXIT_INPUT;
  }
  if (!opts[0].seen) {
    nde_cli_error("--t1 is required (the end of the forecast)");
    return NDE_EXIT_INPUT;
  }
  if (dt_out < 0 || dt < 0 || rtol < 0 || atol < 0 || !(tol > 0) || series < 1) {
    nde_cli_error("bad option value: --dt-out, --dt, --rtol, --atol must be >= 0, --horizon-tol > 0, --series >= 1");
    return NDE_EXIT_INPUT;
  }
  if (plot && !ends_with(plot, ".svg") && !ends_with(plot, ".png")) {
    nde_cli_error("--plot: '%s' must end in .svg or .png", plot);
    return NDE_EXIT_INPUT;
  }
  nde_fit_result r;
  rc = nde_fit_result_read(pos[0], 1, &r);
  if (rc) return rc;
  const int n = r.n;
  nde_data *hd = NULL;
  double *T = NULL, *Y = NULL, *u0 = calloc((size_t)n, sizeof *u0), *HY = NULL, *rmse = NULL;
  size_t *cnt = NULL;
  const char **names = nde_cli_component_names(r.model);
  nde_writer *w = NULL;
  FILE *f = NULL;
  char *cmd = nde_cli_command_line(argc, argv);
  if (!u0 || !names || !cmd) goto nomem;
  if ((size_t)series > r.n_series) {
    nde_cli_error("--series: %s holds %zu fitted series, got %ld", pos[0], r.n_series, series);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  const nde_traj *tr = nde_data_traj(r.fitted, (size_t)series - 1);
  double start = tr->t[0];
  memcpy(u0, r.u0 + (size_t)(series - 1) * n, (size_t)n * sizeof *u0);
  if (from_last) {
    start = tr->t[tr->n - 1];
    memcpy(u0, tr->y + (tr->n - 1) * (size_t)n, (size_t)n * sizeof *u0);
  }
  if (!isnan(t0)) start = t0;
  if (u0_spec && (rc = parse_u0(u0_spec, r.model, u0))) goto done;
  if (!(t1 > start)) {
    nde_cli_error("--t1: %g is not after the start time %g", t1, start);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  if (dt_out == 0) dt_out = tr->n > 1 ? tr->t[1] - tr->t[0] : (t1 - start) / 100;
  const double steps = (t1 - start) / dt_out;
  if (steps > 1e7) {
    nde_cli_error("--dt-out: %g gives more than 10^7 outputs on [%g, %g]", dt_out, start, t1);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  size_t N = (size_t)floor(steps + 1e-9) + 1;
  int last_extra = fabs(start + (double)(N - 1) * dt_out - t1) > 1e-9 * dt_out;
  if (last_extra) N++;
  T = calloc(N, sizeof *T);
  Y = calloc(N * (size_t)n, sizeof *Y);
  if (!T || !Y) goto nomem;
  for (size_t i = 0; i < N; i++) T[i] = start + (double)i * dt_out;
  T[N - 1] = t1;
  /* The fit's step by default: the learned model is the one integrated the way it was fitted. */
  if (dt == 0) dt = r.dt > 0 ? r.dt : (tr->n > 1 ? (tr->t[1] - tr->t[0]) / (r.steps_per_interval > 0 ? (double)r.steps_per_interval : 5.0) : dt_out);
  rc = nde_fit_result_integrate(&r, NULL, solver, dt, 1, rtol, atol, u0, N, T, Y, NULL);
  if (rc) goto done;

  /* Scores against held-out data. */
  double horizon = NAN;
  if (held) {
    rc = nde_cli_open_data(held, r.model, &hd);
    if (rc) goto done;
    const nde_traj *ht = nde_data_traj(hd, 0);
    const nde_state_stats *hs = nde_data_stats(hd);
    size_t a = 0;
    while (a < ht->n && ht->t[a] < start) a++;
    size_t nh = 0;
    while (a + nh < ht->n && ht->t[a + nh] <= t1 * (1 + 1e-12)) nh++;
    if (nh < 2) {
      nde_cli_error("%s:/t: fewer than 2 held-out times in [%g, %g] (expected data over the forecast)",
                    held, start, t1);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
    double *HT = calloc(nh + 1, sizeof *HT);
    HY = calloc((nh + 1) * (size_t)n, sizeof *HY);
    rmse = calloc((size_t)n, sizeof *rmse);
    cnt = calloc((size_t)n, sizeof *cnt);
    if (!HT || !HY || !rmse || !cnt) {
      free(HT);
      goto nomem;
    }
    /* The forecast at the held-out times: from the start state, the first time being start. */
    HT[0] = start;
    size_t off = ht->t[a] > start ? 1 : 0;
    for (size_t i = 0; i < nh; i++) HT[off + i] = ht->t[a + i];
    rc = nde_fit_result_integrate(&r, NULL, solver, dt, 1, rtol, atol, u0, nh + off, HT, HY, NULL);
    free(HT);
    if (rc) goto done;
    for (size_t i = 0; i < nh; i++) {
      double worst = 0;
      for (int j = 0; j < n; j++) {
        double d = ht->y[(a + i) * (size_t)n + (size_t)j];
        if (!isfinite(d)) continue;
        double e = HY[(off + i) * (size_t)n + (size_t)j] - d;
        rmse[j] += e * e;
        cnt[j]++;
        double sd = hs[j].std > 0 ? hs[j].std : 1.0;
        if (fabs(e) / sd > worst) worst = fabs(e) / sd;
      }
      if (isnan(horizon) && worst > tol) horizon = ht->t[a + i];
    }
    for (int j = 0; j < n; j++) rmse[j] = cnt[j] ? sqrt(rmse[j] / (double)cnt[j]) : NAN;
    if (!quiet) {
      printf("forecast error against %s (t in [%g, %g]):\n", held, start, t1);
      double all = 0;
      size_t call = 0;
      for (int j = 0; j < n; j++) {
        if (!cnt[j]) continue;
        printf("  rmse %-10s %.6e  (%zu values)\n", names[j], rmse[j], cnt[j]);
        all += rmse[j] * rmse[j] * (double)cnt[j];
        call += cnt[j];
      }
      printf("  rmse %-10s %.6e\n", "all", call ? sqrt(all / (double)call) : NAN);
      if (isnan(horizon))
        printf("  horizon    the error stays within %g x each state's std up to t = %g\n", tol, t1);
      else
        printf("  horizon    %g (the first time the error exceeds %g x a state's std)\n", horizon, tol);
    }
  }

  /* Output: CSV by extension, else HDF5 in the data convention. */
  if (ends_with(out, ".csv")) {
    f = fopen(out, "w");
    if (!f) {
      nde_cli_error("%s: cannot be created", out);
      rc = NDE_EXIT_IO;
      goto done;
    }
    fprintf(f, "t");
    for (int j = 0; j < n; j++) fprintf(f, ",%s", names[j]);
    fprintf(f, "\n");
    char b[NDE_CLI_NUM_MAX];
    for (size_t i = 0; i < N; i++) {
      fprintf(f, "%s", nde_cli_num(T[i], b));
      for (int j = 0; j < n; j++) fprintf(f, ",%s", nde_cli_num(Y[i * (size_t)n + (size_t)j], b));
      fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
      f = NULL;
      nde_cli_error("%s: write failed", out);
      rc = NDE_EXIT_IO;
      goto done;
    }
    f = NULL;
  } else {
    nde_error derr;
    nde_status st = nde_writer_create(out, &w, &derr);
    if (st != NDE_OK) {
      nde_cli_error("%s", derr.msg);
      rc = nde_cli_exit_code(st);
      goto done;
    }
    nde_series s = {N, (size_t)n, T, Y, names, NULL};
    st = nde_writer_put_series(w, "/", &s);
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "command_line", cmd);
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "forecast_of", pos[0]);
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "solver", solver ? solver : r.solver);
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "nde_version", nde_version());
    if (st == NDE_OK) st = nde_writer_put_string(w, "/model/source", nde_model_source(r.model));
    if (held) {
      if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "held_out_data", held);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, "/", "horizon", horizon);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, "/", "horizon_tol", tol);
      for (int j = 0; j < n && st == NDE_OK; j++) {
        char an[256];
        snprintf(an, sizeof an, "rmse_%s", names[j]);
        st = nde_writer_set_attr_double(w, "/", an, rmse[j]);
      }
    }
    if (st == NDE_OK) st = nde_writer_commit(w);
    if (st != NDE_OK) {
      nde_cli_error("%s", nde_writer_errmsg(w));
      rc = nde_cli_exit_code(st);
      goto done;
    }
  }
  if (plot) {
    nde_plot_series fc = {"forecast", N, T, Y};
    nde_plot_series ho = {"held-out data", 0, NULL, NULL};
    if (hd) {
      const nde_traj *ht = nde_data_traj(hd, 0);
      ho = (nde_plot_series){"held-out data", ht->n, ht->t, ht->y};
    }
    nde_plot_series fit_curve = {"fitted", tr->n, tr->t, tr->y};
    rc = nde_plot_forecast(plot, r.model, &fit_curve, &fc, hd ? &ho : NULL);
    if (rc) goto done;
  }
  if (!quiet)
    printf("forecast of %s from t = %g to %g (%zu outputs) written to %s\n", pos[0], start, t1, N,
           out);
  rc = 0;
  goto done;
nomem:
  nde_cli_error("out of memory");
  rc = NDE_EXIT_IO;
done:
  if (f) fclose(f);
  nde_writer_destroy(&w);
  nde_data_destroy(&hd);
  free(cmd);
  free(names);
  free(T);
  free(Y);
  free(HY);
  free(u0);
  free(rmse);
  free(cnt);
  nde_fit_result_free(&r);
  return rc;
}
