/* Figures for nde fit --plot and nde forecast --plot, drawn with cairo (SVG, PNG or PDF by the
 * file's extension): every series in its own panel (data as points, the model on a fine grid as
 * lines, forecasts dashed from a marked start, held-out data as crosses), a log axis for
 * log-space fits, and for a fit the loss history with the phase boundaries. */
#ifndef NDE_CLI_PLOT_H
#define NDE_CLI_PLOT_H

#include "nde/nde.h"

/* The fit figure: the data of data_path (when it can still be read; else the curves alone) and
 * the fitted model of every series integrated on a fine grid (with its 95% band when the result
 * has ensemble members or standard errors), and the loss history.  Returns 0,
 * or prints the message and returns the exit code (2 bad extension, 4 cannot write). */
int nde_plot_fit(const char *path, const nde_result *r, const char *data_path);

/* The forecast figure of one series. */
typedef struct nde_plot_forecast_in {
  const nde_result *r;
  const char *data_path;  /* the training data (points), or NULL */
  int series;             /* the fitted series whose fitted curve is drawn, or -1 */
  double t_start;         /* where the forecast starts (marked) */
  size_t n;               /* the forecast: n times and n x n_state values */
  const double *t, *y;
  const nde_data *held;   /* held-out data (crosses), or NULL */
  const double *lo, *hi;  /* a band around the forecast (n x n_state each), or NULL */
  double level;           /* its level */
} nde_plot_forecast_in;
int nde_plot_forecast(const char *path, const nde_plot_forecast_in *in);

#endif
