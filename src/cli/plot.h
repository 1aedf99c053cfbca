/* Figures for nde fit --plot and nde forecast --plot, drawn with cairo (SVG or PNG by the file's
 * extension): the states against time (data as points, model curves as lines) and, for a fit,
 * the loss history on a log scale. */
#ifndef NDE_CLI_PLOT_H
#define NDE_CLI_PLOT_H

#include <stddef.h>

#include "nde/model.h"

/* A set of curves over time: n rows of t and y (n x the model's state width, NaN = absent). */
typedef struct nde_plot_series {
  const char *label;
  size_t n;
  const double *t;
  const double *y;
} nde_plot_series;

/* The forecast figure: fitted curves (lines), the forecast (dashed), held-out data (points; may be
 * NULL).  Returns 0, or prints the message and returns the exit code (2 for a bad extension, 4
 * when the file cannot be written). */
int nde_plot_forecast(const char *path, const nde_model *model, const nde_plot_series *fitted,
                      const nde_plot_series *forecast, const nde_plot_series *held);

/* The fit figure from a result file: the data of the fit (points, read from the file named by
 * /provenance data_file when it can be), the fitted curves, and the loss history.  This is the
 * hook of nde fit --plot: call it after the result file is written.  Returns as above. */
int nde_plot_fit_file(const char *plot_path, const char *fit_path);

#endif
