/* The figures when nde is built without cairo (-Dplots=disabled): every --plot says so. */
#include "cli.h"
#include "plot.h"

static int no_plots(const char *path) {
  nde_cli_error("%s: this nde was built without plots (configure with -Dplots=enabled and the "
                "Debian package libcairo2-dev)", path);
  return NDE_EXIT_INPUT;
}

int nde_plot_forecast(const char *path, const nde_model *model, const nde_plot_series *fitted,
                      const nde_plot_series *forecast, const nde_plot_series *held) {
  (void)model, (void)fitted, (void)forecast, (void)held;
  return no_plots(path);
}

int nde_plot_fit_file(const char *plot_path, const char *fit_path) {
  (void)fit_path;
  return no_plots(plot_path);
}
