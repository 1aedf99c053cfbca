/* nde forecast FIT.h5 --t1 T -o OUT.h5|OUT.csv: integrate the fitted model of a result file on an
 * output grid (fine by default) from a chosen start: the fitted initial state of a series, the
 * fitted trajectory at --t0 or at its last time, or a given --u0.  With --data HELD_OUT.h5 every
 * held-out series is predicted from its own first observed row and scored (per-state RMSE,
 * horizon).  Writes HDF5 in the data convention (nde inspect and nde fit read it back) or CSV.
 * A result with ensemble members or standard errors also gives a band around the forecast
 * (nde_result_integrate_band: quantiles over the members, or the linearised band), written as
 * y_lower and y_upper beside y (CSV: NAME_lower, NAME_upper columns) and drawn in the figure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "forecast.h"
#include "plot.h"

#define USAGE "nde forecast FIT.h5 [--t1 T] -o OUT.h5|OUT.csv [options]"

int nde_cmd_forecast(int argc, char **argv) {
  const char *out = NULL, *u0_spec = NULL, *held = NULL, *plot = NULL, *start_kind = "row";
  const char *inputs_path = NULL, *const_spec = NULL;
  double t0 = 0, t1 = 0, dt_out = 0, band = 0.95;
  int series = 1, from_last = 0, quiet = 0, no_band = 0;
  nde_solver_opts so = nde_solver_opts_default();
  nde_score_opts sco = nde_score_opts_default();
  nde_arg opts[32];
  int n = 0;
  const nde_arg head[] = {
      NDE_NUM("--t1", NDE_ARG_DOUBLE, &t1, "T", "forecast up to T (with --data: default each "
              "series' last time)", -1e300, 1e300, NDE_ARG_NODEFAULT),
      NDE_NUM("--t0", NDE_ARG_DOUBLE, &t0, "T0", "start from the fitted trajectory at T0 (default: "
              "the series' first time)", -1e300, 1e300, NDE_ARG_NODEFAULT),
      NDE_NUM("--dt-out", NDE_ARG_DOUBLE, &dt_out, "H", "output spacing (0: the fit's step, a fine "
              "grid)", 0, 1e300, 0),
      NDE_NUM("--series", NDE_ARG_INT, &series, "K", "start from fitted series K (1-based)", 1,
              NDE_FIT_MAX_SERIES, 0),
      NDE_STR("--u0", &u0_spec, "x=V,...", "start from this state (overrides components)"),
      NDE_FLAG("--from-last", &from_last, "start from the fitted trajectory at its last time"),
      NDE_STR("--data", &held, "HELD_OUT.h5", "predict and score every held-out series"),
      NDE_STR("--start", &start_kind, "row|fitted",
              "with --data: start each series from its first row, or from the fitted trajectory "
              "of the series it continues"),
      NDE_NUM("--horizon-tol", NDE_ARG_DOUBLE, &sco.horizon_tol, "E",
              "the horizon is where |error| first exceeds E x the state's std", 0, 1e300,
              NDE_ARG_GT),
      NDE_STR("--plot", &plot, "FILE.svg|png|pdf", "plot data, fitted and forecast curves"),
      NDE_STR("--out", &out, "OUT.h5|OUT.csv", "output file (also -o); required"),
      NDE_FLAG("--quiet", &quiet, "print nothing on success"),
      NDE_STR("--inputs", &inputs_path, "FILE.csv|DATA.h5[:/G]",
              "future measured inputs (default: the fitted series' own)"),
      NDE_STR("--const", &const_spec, "NAME=V,...",
              "the constants declared (from data) (default: the fitted series' own)"),
      NDE_NUM("--band", NDE_ARG_DOUBLE, &band, "L",
              "results with ensemble members or standard errors: the band holding this share "
              "of the members (or the linearised interval) around the forecast", 0, 1,
              NDE_ARG_GT),
      NDE_FLAG("--no-band", &no_band, "no band, even when the result could give one"),
  };
  memcpy(opts, head, sizeof head);
  n = (int)(sizeof head / sizeof *head);
  nde_cli_solver_args(opts + n, &so);
  /* Without solver options the forecast integrates with the fit's own settings. */
  opts[n].help = "integrator (default: the fit's solver and step; any registered method)";
  for (int i = n; i < n + NDE_CLI_N_SOLVER_ARGS; i++) opts[i].flags |= NDE_ARG_NODEFAULT;
  n += NDE_CLI_N_SOLVER_ARGS;
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, n, pos, 1, 1, &n_pos);
  if (rc >= 0) return rc;
  const int t1_seen = nde_cli_opt(opts, n, "--t1")->seen, t0_seen = nde_cli_opt(opts, n, "--t0")->seen;
  int solver_seen = 0;
  for (int i = (int)(sizeof head / sizeof *head); i < n; i++) solver_seen |= opts[i].seen;
  if (!out) {
    nde_cli_error("an output file is required (-o OUT.h5 or OUT.csv)");
    return NDE_EXIT_INPUT;
  }
  if (!held && !t1_seen) {
    nde_cli_error("--t1 is required (the end of the forecast)");
    return NDE_EXIT_INPUT;
  }
  if (held && (t0_seen || u0_spec || from_last || inputs_path || const_spec ||
               nde_cli_opt(opts, n, "--series")->seen)) {
    nde_cli_error("--data predicts every held-out series from its own first row, driven by its "
                  "own inputs: --t0, --u0, --from-last, --series, --inputs and --const cannot be "
                  "combined with it");
    return NDE_EXIT_INPUT;
  }
  if (!(band < 1)) {
    nde_cli_error("--band: expected a level in (0, 1), got %g", band);
    return NDE_EXIT_INPUT;
  }
  if (strcmp(start_kind, "row") && strcmp(start_kind, "fitted")) {
    nde_cli_error("--start: expected row or fitted, got '%s'", start_kind);
    return NDE_EXIT_INPUT;
  }
  sco.start_fitted = !strcmp(start_kind, "fitted");
  if (from_last && t0_seen) {
    nde_cli_error("--from-last and --t0 both give the start time (expected at most one)");
    return NDE_EXIT_INPUT;
  }
  if (plot && !nde_cli_ends_with(plot, ".svg") && !nde_cli_ends_with(plot, ".png") &&
      !nde_cli_ends_with(plot, ".pdf")) {
    nde_cli_error("--plot: '%s' must end in .svg, .png or .pdf", plot);
    return NDE_EXIT_INPUT;
  }
  if (solver_seen && (rc = nde_cli_check_solver(opts, n, &so, NULL))) return rc;
  const char *inputs[] = {pos[0], held ? held : "", inputs_path, NULL};
  if ((rc = nde_cli_check_output("--out", out, inputs))) return rc;

  nde_result *r = NULL;
  nde_data *hd = NULL;
  nde_score *score = NULL;
  nde_cli_forecast *fc = NULL;
  int nf = 0;
  double *u = NULL, *consts = NULL;
  nde_cli_inputs in = {0};
  char *cmd = nde_cli_command_line(argc, argv);
  nde_error err;
  nde_status st = nde_result_open(pos[0], &r, &err);
  if (st != NDE_OK) {
    rc = nde_cli_fail(&err, 1);
    goto done;
  }
  const nde_model *m = nde_result_model(r);
  const int ns = nde_model_state_dim(m);
  const int with_band = !no_band && (nde_result_n_members(r) > 0 || nde_result_get_uncertainty(r));
  if (nde_cli_opt(opts, n, "--band")->seen && !with_band && !no_band) {
    nde_cli_error("--band: %s has neither ensemble members nor standard errors (fit with "
                  "--ensemble K or --uncertainty, or run nde uncertainty on it)", pos[0]);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  /* The fit's settings unless the command line gives a solver option. */
  nde_solver_opts run_so = nde_result_settings(r)->solver;
  if (solver_seen) {
    if (nde_cli_opt(opts, n, "--solver")->seen) run_so.method = so.method;
    if (nde_cli_opt(opts, n, "--dt")->seen) run_so.dt = so.dt;
    if (nde_cli_opt(opts, n, "--steps-per-interval")->seen) {
      run_so.steps_per_interval = so.steps_per_interval;
      run_so.dt = 0;
    }
    if (nde_cli_opt(opts, n, "--rtol")->seen) run_so.rtol = so.rtol;
    if (nde_cli_opt(opts, n, "--atol")->seen) run_so.atol = so.atol;
    if (nde_cli_opt(opts, n, "--h0")->seen) run_so.h0 = so.h0;
    if (nde_cli_opt(opts, n, "--max-steps")->seen) run_so.max_steps = so.max_steps;
    if (run_so.dt == 0 && !nde_cli_opt(opts, n, "--steps-per-interval")->seen)
      run_so.dt = nde_result_step(r);
  }
  const nde_solver_opts *use_so = solver_seen ? &run_so : NULL;
  if (series > nde_result_n_series(r)) {
    nde_cli_error("--series: %s holds %d fitted series, got %d", pos[0], nde_result_n_series(r),
                  series);
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  nde_result_series se;
  nde_result_get_series(r, series - 1, &se);
  /* A fine output grid by default: the fit's step, or a tenth of the data spacing. */
  if (dt_out == 0) {
    dt_out = nde_result_step(r);
    if (!(dt_out > 0)) dt_out = (se.t[se.n_obs - 1] - se.t[0]) / (double)(se.n_obs - 1) / 10;
  }
  if (held) {
    if ((rc = nde_cli_open_data(held, m, &hd))) goto done;
    sco.solver = use_so;
    st = nde_result_score(r, hd, &sco, &score, &err);
    if (st != NDE_OK) {
      rc = nde_cli_fail(&err, 0);
      goto done;
    }
    nf = nde_score_n_series(score);
    fc = calloc((size_t)nf, sizeof *fc);
    consts = calloc((size_t)nf * (size_t)nde_model_n_data_consts(m) + 1, sizeof *consts);
    if (!fc || !consts) goto nomem;
    for (int k = 0; k < nf; k++) {
      nde_series_score sc;
      nde_score_get(score, k, &sc);
      const double end = t1_seen ? t1 : sc.t1;
      if (!(end > sc.t0)) {
        nde_cli_error("--t1: %g is not after the first time %g of held-out series %s", end, sc.t0,
                      sc.name);
        rc = NDE_EXIT_INPUT;
        goto done;
      }
      nde_str name = NDE_STR_INIT;
      nde_str_adds(&name, sc.name);
      if (!(fc[k].name = nde_str_take(&name))) goto nomem;
      if ((rc = nde_cli_forecast_grid(sc.t0, end, dt_out, &fc[k]))) goto done;
      /* Driven by its own inputs and constants. */
      fc[k].consts = consts + (size_t)k * (size_t)nde_model_n_data_consts(m);
      st = nde_data_series_inputs(hd, (size_t)k, m, &fc[k].inputs, (double *)fc[k].consts, &err);
      if (st != NDE_OK) {
        rc = nde_cli_fail(&err, 0);
        goto done;
      }
      nde_start start = {.kind = NDE_START_STATE, .series = sc.series, .t = sc.t0, .u = sc.u0,
                         .inputs = &fc[k].inputs, .consts = fc[k].consts};
      if ((rc = nde_cli_forecast_run(r, &start, use_so, &fc[k]))) goto done;
      if (with_band && (rc = nde_cli_forecast_band(r, &start, use_so, band, &fc[k]))) goto done;
    }
  } else {
    nf = 1;
    fc = calloc(1, sizeof *fc);
    u = calloc((size_t)ns, sizeof *u);
    if (!fc || !u) goto nomem;
    nde_start start = {.kind = NDE_START_FITTED, .series = series - 1};
    if (from_last) start = (nde_start){.kind = NDE_START_AT_TIME, .series = series - 1, .t = se.t[se.n_obs - 1]};
    if (t0_seen) start = (nde_start){.kind = NDE_START_AT_TIME, .series = series - 1, .t = t0};
    if (u0_spec) {
      /* The state the start stands for, then the given components. */
      double ts;
      st = nde_result_start_state(r, &start, &ts, u, &err);
      if (st != NDE_OK) {
        rc = nde_cli_fail(&err, 0);
        goto done;
      }
      if ((rc = nde_cli_parse_state("--u0", u0_spec, m, u))) goto done;
      start = (nde_start){.kind = NDE_START_STATE, .series = series - 1, .t = ts, .u = u};
    }
    double ts;
    st = nde_result_start_state(r, &start, &ts, u, &err);
    if (st != NDE_OK) {
      rc = nde_cli_fail(&err, 0);
      goto done;
    }
    if (!(t1 > ts)) {
      nde_cli_error("--t1: %g is not after the start time %g", t1, ts);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
    /* Driven by the given inputs and constants, or the fitted series' own. */
    fc[0].inputs = (nde_input_series){se.n_u, se.u_t, se.u};
    fc[0].consts = se.consts;
    if (inputs_path) {
      if ((rc = nde_cli_read_inputs("--inputs", inputs_path, m, &in))) goto done;
      fc[0].inputs = (nde_input_series){in.n, in.t, in.u};
    }
    if (const_spec) {
      if (!(consts = calloc((size_t)nde_model_n_data_consts(m) + 1, sizeof *consts))) goto nomem;
      if ((rc = nde_cli_parse_consts("--const", const_spec, m, consts))) goto done;
      fc[0].consts = consts;
    }
    start.inputs = &fc[0].inputs;
    start.consts = fc[0].consts;
    if ((rc = nde_cli_forecast_grid(ts, t1, dt_out, &fc[0]))) goto done;
    if ((rc = nde_cli_forecast_run(r, &start, use_so, &fc[0]))) goto done;
    if (with_band && (rc = nde_cli_forecast_band(r, &start, use_so, band, &fc[0]))) goto done;
    if (fc[0].stop.reason != NDE_REASON_NONE) {
      char msg[600];
      nde_cli_error("the forecast stopped: %s",
                    nde_stop_message(run_so.method, &fc[0].stop, msg, sizeof msg));
      rc = NDE_EXIT_NUMERIC;
      goto done;
    }
  }
  if (held && !quiet) nde_cli_forecast_print_scores(score, m, held, sco.horizon_tol, sco.start_fitted);
  /* Never an output with NaN or inf in it: nothing is written then. */
  if ((rc = nde_cli_forecast_check(fc, nf, m, held != NULL, run_so.method, out))) goto done;
  if (nde_cli_ends_with(out, ".csv")) rc = nde_cli_forecast_write_csv(out, m, fc, nf);
  else
    rc = nde_cli_forecast_write_h5(out, pos[0], r, fc, nf, score, held, sco.horizon_tol,
                                   cmd ? cmd : "nde forecast", run_so.method, band);
  if (rc) goto done;
  if (plot) {
    nde_plot_forecast_in pin = {r, nde_result_provenance(r, "data_file"),
                                held ? nde_result_find_series(r, fc[0].name) : series - 1,
                                fc[0].t0, fc[0].N, fc[0].T, fc[0].Y, hd, fc[0].lo, fc[0].hi,
                                band};
    if ((rc = nde_plot_forecast(plot, &pin))) goto done;
  }
  if (!quiet && with_band)
    printf("band: %g%% %s (y_lower, y_upper)\n", 100 * band,
           nde_result_n_members(r) > 0 ? "of the ensemble's members" : "linearised interval "
                                                                        "from the covariance");
  if (!quiet)
    printf("forecast of %s (%d series, from t = %g, %zu outputs%s) written to %s\n", pos[0], nf,
           fc[0].t0, fc[0].N, nf > 1 ? " for the first" : "", out);
  rc = 0;
  goto done;
nomem:
  nde_cli_error("out of memory");
  rc = NDE_EXIT_IO;
done:
  for (int k = 0; fc && k < nf; k++) {
    nde_free(fc[k].name);
    nde_free(fc[k].T);
    free(fc[k].Y);
    free(fc[k].lo);
    free(fc[k].hi);
  }
  free(fc);
  free(u);
  free(consts);
  nde_cli_inputs_free(&in);
  nde_free(cmd);
  nde_score_destroy(&score);
  nde_data_destroy(&hd);
  nde_result_destroy(&r);
  return rc;
}
