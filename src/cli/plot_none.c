/* The figures when nde is built without cairo (-Dplots=disabled): every --plot says so. */
#include "cli.h"
#include "plot.h"

static int no_plots(const char *path) {
  nde_cli_error("%s: this nde was built without plots (configure with -Dplots=enabled and the "
                "Debian package libcairo2-dev)", path);
  return NDE_EXIT_INPUT;
}

int nde_plot_fit(const char *path, const nde_result *r, const char *data_path) {
  (void)r, (void)data_path;
  return no_plots(path);
}

int nde_plot_forecast(const char *path, const nde_plot_forecast_in *in) {
  (void)in;
  return no_plots(path);
}
