/* Reading a result file of `nde fit` (the layout of fit_file.h) for the commands that work from it
 * alone: nde discover, nde forecast, nde export and the fit --plot hook.  Also integrating the
 * learned model on a time grid, as those commands all do. */
#ifndef NDE_CLI_FIT_RESULT_H
#define NDE_CLI_FIT_RESULT_H

#include <stddef.h>

#include "nde/data.h"
#include "nde/model.h"

typedef struct nde_fit_result {
  const char *path;
  nde_model *model;    /* compiled from /model/source */
  double *theta;       /* /params/theta */
  size_t n_theta;
  int n;               /* state width */
  size_t n_series;
  double *u0;          /* /fit/u0, n_series x n (NULL when absent) */
  nde_data *fitted;    /* /fitted/... series (NULL when absent) */
  char *solver;        /* /provenance solver ("rk4" when absent) */
  double dt;           /* /provenance dt (0 when absent) */
  long steps_per_interval; /* /provenance steps_per_interval (0 when absent) */
  char *data_file;     /* /provenance data_file (NULL when absent) */
  double *history;     /* /train/history (NULL when absent) */
  size_t n_history;
} nde_fit_result;

/* Read path.  need_fitted: /fit/u0 and /fitted are required.  Prints the message and returns the
 * exit code on failure (2 for anything wrong with the file), else 0. */
int nde_fit_result_read(const char *path, int need_fitted, nde_fit_result *r);
void nde_fit_result_free(nde_fit_result *r);

/* Integrate the result's model (or model, when not NULL: one with the same theta layout) from U0 (n values) at times[0] to times[1..n_times-1], with the
 * named solver (NULL: the fit's) and the fit's step (at most dt_max when > 0) or
 * steps_per_interval equal steps per interval (when > 0).  Y receives n_times x n values.  Returns
 * 0, or prints the message and returns the exit code (3 when the solver stopped early: the rows
 * after the stop are NaN; with t_stop non-NULL *t_stop tells where and that case prints nothing). */
int nde_fit_result_integrate(const nde_fit_result *r, nde_model *model, const char *solver, double dt,
                             long steps_per_interval, double rtol, double atol, const double *U0,
                             size_t n_times, const double *times, double *Y, double *t_stop);

#endif
