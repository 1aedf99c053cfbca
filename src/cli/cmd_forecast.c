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

/* The command line, parsed and checked. */
typedef struct args {
  const char *fit, *out, *u0_spec, *held, *plot, *start_kind, *inputs_path, *const_spec;
  double t0, t1, dt_out, band;
  int series, from_last, quiet, no_band;
  int t0_seen, t1_seen, band_seen, series_seen, solver_seen;
  nde_solver_opts so;
  nde_score_opts sco;
  nde_arg opts[32];
  int n, n_head; /* options, and those before the solver's */
} args;

/* What a run holds, freed by run_free. */
typedef struct run {
  nde_result *r;
  nde_data *hd;
  nde_score *score;
  nde_cli_forecast *fc;
  int nf;
  double *u, *consts;
  nde_cli_inputs in;
  char *cmd;
} run;

/* Parses and checks the command line: -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, args *a) {
  *a = (args){.start_kind = "row", .band = 0.95, .series = 1,
              .so = nde_solver_opts_default(), .sco = nde_score_opts_default()};
  const nde_arg head[] = {
      NDE_NUM("--t1", NDE_ARG_DOUBLE, &a->t1, "T", "forecast up to T (with --data: default each "
              "series' last time)", -1e300, 1e300, NDE_ARG_NODEFAULT),
      NDE_NUM("--t0", NDE_ARG_DOUBLE, &a->t0, "T0", "start from the fitted trajectory at T0 "
              "(default: the series' first time)", -1e300, 1e300, NDE_ARG_NODEFAULT),
      NDE_NUM("--dt-out", NDE_ARG_DOUBLE, &a->dt_out, "H", "output spacing (0: the fit's step, a "
              "fine grid)", 0, 1e300, 0),
      NDE_NUM("--series", NDE_ARG_INT, &a->series, "K", "start from fitted series K (1-based)", 1,
              NDE_FIT_MAX_SERIES, 0),
      NDE_STR("--u0", &a->u0_spec, "x=V,...", "start from this state (overrides components)"),
      NDE_FLAG("--from-last", &a->from_last, "start from the fitted trajectory at its last time"),
      NDE_STR("--data", &a->held, "HELD_OUT.h5", "predict and score every held-out series"),
      NDE_STR("--start", &a->start_kind, "row|fitted",
              "with --data: start each series from its first row, or from the fitted trajectory "
              "of the series it continues"),
      NDE_NUM("--horizon-tol", NDE_ARG_DOUBLE, &a->sco.horizon_tol, "E",
              "the horizon is where |error| first exceeds E x the state's std", 0, 1e300,
              NDE_ARG_GT),
      NDE_STR("--plot", &a->plot, "FILE.svg|png|pdf", "plot data, fitted and forecast curves"),
      NDE_STR("--out", &a->out, "OUT.h5|OUT.csv", "output file (also -o); required"),
      NDE_FLAG("--quiet", &a->quiet, "print nothing on success"),
      NDE_STR("--inputs", &a->inputs_path, "FILE.csv|DATA.h5[:/G]",
              "future measured inputs (default: the fitted series' own)"),
      NDE_STR("--const", &a->const_spec, "NAME=V,...",
              "the constants declared (from data) (default: the fitted series' own)"),
      NDE_NUM("--band", NDE_ARG_DOUBLE, &a->band, "L",
              "results with ensemble members or standard errors: the band holding this share "
              "of the members (or the linearised interval) around the forecast", 0, 1,
              NDE_ARG_GT | NDE_ARG_LT),
      NDE_FLAG("--no-band", &a->no_band, "no band, even when the result could give one"),
  };
  memcpy(a->opts, head, sizeof head);
  a->n = a->n_head = (int)(sizeof head / sizeof *head);
  nde_cli_solver_args(a->opts + a->n, &a->so);
  /* Without solver options the forecast integrates with the fit's own settings. */
  a->opts[a->n].help = "integrator (default: the fit's solver and step; any registered method)";
  for (int i = a->n; i < a->n + NDE_CLI_N_SOLVER_ARGS; i++) a->opts[i].flags |= NDE_ARG_NODEFAULT;
  a->n += NDE_CLI_N_SOLVER_ARGS;
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, a->opts, a->n, pos, 1, 1, &n_pos);
  if (rc >= 0) return rc;
  a->fit = pos[0];
  a->t1_seen = nde_cli_opt(a->opts, a->n, "--t1")->seen;
  a->t0_seen = nde_cli_opt(a->opts, a->n, "--t0")->seen;
  a->band_seen = nde_cli_opt(a->opts, a->n, "--band")->seen;
  a->series_seen = nde_cli_opt(a->opts, a->n, "--series")->seen;
  for (int i = a->n_head; i < a->n; i++) a->solver_seen |= a->opts[i].seen;

  if (!a->out) {
    nde_cli_error("an output file is required (-o OUT.h5 or OUT.csv)");
    return NDE_EXIT_INPUT;
  }
  if (!a->held && !a->t1_seen) {
    nde_cli_error("--t1 is required (the end of the forecast)");
    return NDE_EXIT_INPUT;
  }
  if (a->held && (a->t0_seen || a->u0_spec || a->from_last || a->inputs_path || a->const_spec ||
                  a->series_seen)) {
    nde_cli_error("--data predicts every held-out series from its own first row, driven by its "
                  "own inputs: --t0, --u0, --from-last, --series, --inputs and --const cannot be "
                  "combined with it");
    return NDE_EXIT_INPUT;
  }
  if (strcmp(a->start_kind, "row") && strcmp(a->start_kind, "fitted")) {
    nde_cli_error("--start: expected row or fitted, got '%s'", a->start_kind);
    return NDE_EXIT_INPUT;
  }
  a->sco.start_fitted = !strcmp(a->start_kind, "fitted");
  if (a->from_last && a->t0_seen) {
    nde_cli_error("--from-last and --t0 both give the start time (expected at most one)");
    return NDE_EXIT_INPUT;
  }
  if ((rc = nde_cli_check_plot(a->plot))) return rc;
  /* Without --solver the fit's method runs: what it reads is checked once it is known. */
  if (a->solver_seen) {
    nde_solver_opts so = a->so;
    if (!nde_cli_opt(a->opts, a->n, "--solver")->seen) so.method = NULL;
    if ((rc = nde_cli_check_solver(a->opts, a->n, &so, NULL))) return rc;
  }
  const char *inputs[] = {a->fit, a->held ? a->held : "", a->inputs_path, NULL};
  if ((rc = nde_cli_check_output("--out", a->out, inputs))) return rc;
  return -1;
}

/* The fit's solver settings with the solver options the command line gives. */
static nde_solver_opts run_solver(args *a, const nde_result *r) {
  nde_solver_opts so = nde_result_settings(r)->solver;
  if (!a->solver_seen) return so;
#define SEEN(name) nde_cli_opt(a->opts, a->n, name)->seen
  if (SEEN("--solver")) so.method = a->so.method;
  if (SEEN("--dt")) so.dt = a->so.dt;
  if (SEEN("--steps-per-interval")) {
    so.steps_per_interval = a->so.steps_per_interval;
    so.dt = 0;
  }
  if (SEEN("--rtol")) so.rtol = a->so.rtol;
  if (SEEN("--atol")) so.atol = a->so.atol;
  if (SEEN("--h0")) so.h0 = a->so.h0;
  if (SEEN("--max-steps")) so.max_steps = a->so.max_steps;
  if (so.dt == 0 && !SEEN("--steps-per-interval")) so.dt = nde_result_step(r);
#undef SEEN
  return so;
}

static int out_of_memory(void) {
  nde_cli_error("out of memory");
  return NDE_EXIT_IO;
}

/* --data: every held-out series from its first row (or the fitted trajectory), driven by its own
 * inputs and constants, scored. */
static int forecast_held_out(const args *a, run *x, const nde_solver_opts *so, int with_band) {
  const nde_model *m = nde_result_model(x->r);
  const size_t n_consts = (size_t)nde_model_n_data_consts(m);
  nde_error err;
  int rc;
  if ((rc = nde_cli_open_data(a->held, m, &x->hd))) return rc;
  nde_score_opts sco = a->sco;
  sco.solver = so;
  if (nde_result_score(x->r, x->hd, &sco, &x->score, &err) != NDE_OK) return nde_cli_fail(&err, 0);
  x->nf = nde_score_n_series(x->score);
  x->fc = calloc((size_t)x->nf, sizeof *x->fc);
  x->consts = calloc((size_t)x->nf * n_consts + 1, sizeof *x->consts);
  if (!x->fc || !x->consts) return out_of_memory();
  for (int k = 0; k < x->nf; k++) {
    nde_cli_forecast *f = &x->fc[k];
    nde_series_score sc;
    nde_score_get(x->score, k, &sc);
    const double end = a->t1_seen ? a->t1 : sc.t1;
    if (!(end > sc.t0)) {
      nde_cli_error("--t1: %g is not after the first time %g of held-out series %s", end, sc.t0,
                    sc.name);
      return NDE_EXIT_INPUT;
    }
    nde_str name = NDE_STR_INIT;
    nde_str_adds(&name, sc.name);
    if (!(f->name = nde_str_take(&name))) return out_of_memory();
    if ((rc = nde_cli_forecast_grid(sc.t0, end, a->dt_out, f))) return rc;
    /* Driven by its own inputs and constants. */
    f->consts = x->consts + (size_t)k * n_consts;
    if (nde_data_series_inputs(x->hd, (size_t)k, m, &f->inputs, (double *)f->consts, &err) !=
        NDE_OK)
      return nde_cli_fail(&err, 0);
    nde_start start = {.kind = NDE_START_STATE, .series = sc.series, .t = sc.t0, .u = sc.u0,
                       .inputs = &f->inputs, .consts = f->consts};
    if ((rc = nde_cli_forecast_run(x->r, &start, so, f))) return rc;
    /* A stopped forecast is refused by write_forecast: no band for it. */
    if (f->stop.reason == NDE_REASON_NONE && with_band &&
        (rc = nde_cli_forecast_band(x->r, &start, so, a->band, f)))
      return rc;
  }
  return 0;
}

/* One forecast of fitted series se from the start the options name (fitted start, --t0,
 * --from-last, --u0), driven by --inputs and --const or the series' own. */
static int forecast_one(const args *a, run *x, const nde_result_series *se,
                        const nde_solver_opts *so, int with_band) {
  const nde_model *m = nde_result_model(x->r);
  const int k = a->series - 1;
  nde_error err;
  int rc;
  x->nf = 1;
  x->fc = calloc(1, sizeof *x->fc);
  x->u = calloc((size_t)nde_model_state_dim(m), sizeof *x->u);
  if (!x->fc || !x->u) return out_of_memory();
  nde_cli_forecast *f = &x->fc[0];
  nde_str name = NDE_STR_INIT;
  nde_str_adds(&name, se->name);
  if (!(f->name = nde_str_take(&name))) return out_of_memory();
  nde_start start = {.kind = NDE_START_FITTED, .series = k};
  if (a->from_last) start = (nde_start){.kind = NDE_START_AT_TIME, .series = k,
                                        .t = se->t[se->n_obs - 1]};
  if (a->t0_seen) start = (nde_start){.kind = NDE_START_AT_TIME, .series = k, .t = a->t0};
  double ts;
  if (a->u0_spec) {
    /* The state the start stands for, then the given components. */
    if (nde_result_start_state(x->r, &start, &ts, x->u, &err) != NDE_OK)
      return nde_cli_fail(&err, 0);
    if ((rc = nde_cli_parse_state("--u0", a->u0_spec, m, x->u))) return rc;
    start = (nde_start){.kind = NDE_START_STATE, .series = k, .t = ts, .u = x->u};
  }
  if (nde_result_start_state(x->r, &start, &ts, x->u, &err) != NDE_OK)
    return nde_cli_fail(&err, 0);
  if (!(a->t1 > ts)) {
    nde_cli_error("--t1: %g is not after the start time %g", a->t1, ts);
    return NDE_EXIT_INPUT;
  }
  /* Driven by the given inputs and constants, or the fitted series' own. */
  f->inputs = (nde_input_series){se->n_u, se->u_t, se->u};
  f->consts = se->consts;
  if (a->inputs_path) {
    if ((rc = nde_cli_read_inputs("--inputs", a->inputs_path, m, &x->in))) return rc;
    f->inputs = (nde_input_series){x->in.n, x->in.t, x->in.u};
  }
  if (a->const_spec) {
    if (!(x->consts = calloc((size_t)nde_model_n_data_consts(m) + 1, sizeof *x->consts)))
      return out_of_memory();
    if ((rc = nde_cli_parse_consts("--const", a->const_spec, m, x->consts))) return rc;
    f->consts = x->consts;
  }
  start.inputs = &f->inputs;
  start.consts = f->consts;
  if ((rc = nde_cli_forecast_grid(ts, a->t1, a->dt_out, f))) return rc;
  if ((rc = nde_cli_forecast_run(x->r, &start, so, f))) return rc;
  /* A stopped forecast is refused by write_forecast (naming the series): no band for it. */
  if (f->stop.reason == NDE_REASON_NONE && with_band &&
      (rc = nde_cli_forecast_band(x->r, &start, so, a->band, f)))
    return rc;
  return 0;
}

/* Checks the forecasts, writes them (HDF5 or CSV) and the figure, prints what was written. */
static int write_forecast(const args *a, run *x, const char *method, int with_band) {
  const nde_model *m = nde_result_model(x->r);
  int rc;
  if (a->held && !a->quiet)
    nde_cli_forecast_print_scores(x->score, x->r, a->held, a->sco.horizon_tol, a->sco.start_fitted);
  /* Never an output with NaN or inf in it: nothing is written then. */
  if ((rc = nde_cli_forecast_check(x->fc, x->nf, m, a->held != NULL, method, a->out))) return rc;
  if (nde_cli_ends_with(a->out, ".csv"))
    rc = nde_cli_forecast_write_csv(a->out, m, x->fc, x->nf);
  else
    rc = nde_cli_forecast_write_h5(a->out, a->fit, x->r, x->fc, x->nf, x->score, a->held,
                                   a->sco.horizon_tol, x->cmd ? x->cmd : "nde forecast", method,
                                   a->band);
  if (rc) return rc;
  const nde_cli_forecast *f = &x->fc[0];
  if (a->plot) {
    nde_plot_forecast_in pin = {x->r, nde_result_provenance(x->r, "data_file"),
                                a->held ? nde_result_find_series(x->r, f->name) : a->series - 1,
                                f->t0, f->N, f->T, f->Y, x->hd, f->lo, f->hi, a->band};
    if ((rc = nde_plot_forecast(a->plot, &pin))) return rc;
  }
  if (!a->quiet && with_band)
    printf("band: %g%% %s (y_lower, y_upper)\n", 100 * a->band,
           nde_result_n_members(x->r) > 0 ? "of the ensemble's members"
                                          : "linearised interval from the covariance");
  if (!a->quiet)
    printf("forecast of %s (%d series, from t = %g, %zu outputs%s) written to %s\n", a->fit,
           x->nf, f->t0, f->N, x->nf > 1 ? " for the first" : "", a->out);
  return 0;
}

static void run_free(run *x) {
  for (int k = 0; x->fc && k < x->nf; k++) {
    nde_free(x->fc[k].name);
    nde_free(x->fc[k].T);
    free(x->fc[k].Y);
    free(x->fc[k].obs);
    free(x->fc[k].lo);
    free(x->fc[k].hi);
    free(x->fc[k].obs_lo);
    free(x->fc[k].obs_hi);
  }
  free(x->fc);
  free(x->u);
  free(x->consts);
  nde_cli_inputs_free(&x->in);
  nde_free(x->cmd);
  nde_score_destroy(&x->score);
  nde_data_destroy(&x->hd);
  nde_result_destroy(&x->r);
}

/* The run after the command line: the result, its solver settings, the forecasts, the output. */
static int forecast(args *a, run *x) {
  nde_error err;
  if (nde_result_open(a->fit, &x->r, &err) != NDE_OK) return nde_cli_fail(&err, 1);
  const nde_result *r = x->r;
  if (!a->quiet) nde_cli_note_unfinished(a->fit, r);
  const int with_band =
      !a->no_band && (nde_result_n_members(r) > 0 || nde_result_get_uncertainty(r));
  if (a->band_seen && !with_band && !a->no_band) {
    nde_cli_error("--band: %s has neither ensemble members nor standard errors (fit with "
                  "--ensemble K or --uncertainty, or run nde uncertainty on it)", a->fit);
    return NDE_EXIT_INPUT;
  }
  const nde_solver_opts run_so = run_solver(a, r);
  const nde_solver_opts *use_so = a->solver_seen ? &run_so : NULL;
  /* The options are checked against the method that runs: the fit's unless --solver. */
  if (nde_cli_check_solver_reads(a->opts, a->n, run_so.method)) return NDE_EXIT_INPUT;
  if (a->series > nde_result_n_series(r)) {
    nde_cli_error("--series: %s holds %d fitted series, got %d", a->fit, nde_result_n_series(r),
                  a->series);
    return NDE_EXIT_INPUT;
  }
  nde_result_series se;
  nde_result_get_series(r, a->series - 1, &se);
  /* A fine output grid by default: the fit's step, or a tenth of the data spacing. */
  if (a->dt_out == 0) {
    a->dt_out = nde_result_step(r);
    if (!(a->dt_out > 0))
      a->dt_out = (se.t[se.n_obs - 1] - se.t[0]) / (double)(se.n_obs - 1) / 10;
  }
  int rc = a->held ? forecast_held_out(a, x, use_so, with_band)
                   : forecast_one(a, x, &se, use_so, with_band);
  if (rc) return rc;
  return write_forecast(a, x, run_so.method, with_band);
}

int nde_cmd_forecast(int argc, char **argv) {
  args a;
  int rc = parse_args(argc, argv, &a);
  if (rc >= 0) return rc;
  run x = {0};
  x.cmd = nde_cli_command_line(argc, argv);
  rc = forecast(&a, &x);
  run_free(&x);
  return rc;
}
