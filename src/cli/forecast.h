/* nde forecast's forecasts and their outputs (cmd_forecast.c, forecast.c). */
#ifndef NDE_CLI_FORECAST_H
#define NDE_CLI_FORECAST_H

#include "cli.h"

/* One forecast: a name, the start, the grid and the solution. */
typedef struct nde_cli_forecast {
  char *name;
  double t0;
  size_t N;
  double *T, *Y;
  nde_solve_stats stop;
  nde_input_series inputs; /* the measured inputs that drove it (n = 0: none), views */
  const double *consts;    /* its constants from data, or NULL */
  double *lo, *hi;         /* the band (N x n), or NULL */
  double *obs;             /* the model's observables along Y (N x n_obs), or NULL */
  int n_obs;
  double *obs_lo, *obs_hi; /* the observables' band (N x n_obs), or NULL */
  int band_used;           /* members in the band at the last time (1 for a linearised band) */
  int band_members;        /* members whose fit ended well, those the band is made of (0 for a
                            * linearised band) */
} nde_cli_forecast;

/* A forecast that stopped or holds a value (state or observable) that is not finite is a
 * numerical failure: the message (naming the series, and out as not written) and
 * NDE_EXIT_NUMERIC; 0 otherwise.  So is a band with a bound that is not finite: over members,
 * at the times where every member's integration has stopped (the message names the first such
 * time and the members); linearised, where the sensitivities' solve stopped.  held: the series are held-out ones; method: the solver, for
 * the stop message. */
int nde_cli_forecast_check(const nde_cli_forecast *fc, int nf, const nde_model *m, int held,
                           const char *method, const char *out);

/* The output grid of f from t0 to t1 every dt_out, t1 included (f->T, f->N, f->t0). */
int nde_cli_forecast_grid(double t0, double t1, double dt_out, nde_cli_forecast *f);
/* Integrate r from start on f's grid into f->Y (stops are in f->stop), and the model's
 * observables along it into f->obs when it declares any and the solve did not stop. */
int nde_cli_forecast_run(const nde_result *r, const nde_start *start, const nde_solver_opts *so,
                         nde_cli_forecast *f);
/* The band of f at level: quantiles over the members, or linearised from the standard errors;
 * of the states, and of the observables when the model declares any. */
int nde_cli_forecast_band(const nde_result *r, const nde_start *start, const nde_solver_opts *so,
                          double level, nde_cli_forecast *f);
/* Write the forecasts as CSV (columns series (when several), t, the states, the observables,
 * and NAME_lower, NAME_upper of the band of each when there is one). */
int nde_cli_forecast_write_csv(const char *out, const nde_model *m, const nde_cli_forecast *f,
                               int nf);
/* The same for any n columns (f's Y and band N x n) with these names, then f's n_obs observables
 * (names[n..n + n_obs)) and their band: a header line "[series,]t,NAME,...", then one line per
 * time; written atomically (nde_cli_write_text). */
int nde_cli_write_csv(const char *out, int n, const char *const *names, const nde_cli_forecast *f,
                      int nf);
/* Write the forecasts as HDF5 in the data convention, one group per series when several (the
 * columns of /y: the states, then the observables), with the scores (score may be NULL), the
 * band at level (y_lower, y_upper: the same columns as /y) and provenance. */
int nde_cli_forecast_write_h5(const char *out, const char *fit_path, const nde_result *r,
                              const nde_cli_forecast *f, int nf, const nde_score *score,
                              const char *held, double tol, const char *cmd, const char *solver,
                              double level);
/* The per-series and overall scores against held-out data, and, for a start from the first
 * row, which components that row lacked and where they were taken from. */
void nde_cli_forecast_print_scores(const nde_score *score, const nde_result *r, const char *held,
                                   double tol, int fitted);

#endif
