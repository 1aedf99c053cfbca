/* Why a loss is not finite although every solve finished: the first observation whose squared
 * misfit is not finite (a difference that overflows, a model value without a logarithm under
 * --log-loss), so that nde fit and nde grad name the data value instead of a generic failure. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int nde_cli_explain_loss(const nde_model *m, const nde_data *d, int log_space,
                         nde_cli_predict_fn predict, void *ctx, const char *said, nde_str *s) {
  const size_t n = (size_t)nde_model_state_dim(m);
  int found = 0;
  for (size_t k = 0; !found && k < nde_data_n_traj(d); k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    double *Y = tr->n && n ? malloc(tr->n * n * sizeof *Y) : NULL;
    if (!Y) continue;
    nde_str stop = NDE_STR_INIT;
    if (predict(ctx, k, tr, Y, &stop) != 0) {
      /* The model's trajectory itself cannot be computed there: that is the place.  A stop the
       * message already gives word for word is not repeated: the series is what it adds. */
      if (stop.data && said && strstr(said, stop.data)) {
        nde_str_addf(s, "in the trajectory of %s:%s", nde_data_file(d), tr->name);
        found = 1;
      } else if (stop.data) {
        nde_str_addf(s, "the trajectory of %s:%s cannot be computed: %s", nde_data_file(d),
                     tr->name, stop.data);
        found = 1;
      }
      nde_str_release(&stop);
      free(Y);
      continue;
    }
    for (size_t i = 0; !found && i < tr->n; i++)
      for (size_t j = 0; !found && j < n; j++) {
        const double o = tr->y[i * n + j], y = Y[i * n + j];
        if (isnan(o)) continue;
        const char *why = NULL;
        if (!isfinite(y)) why = "the model's value is not finite";
        else if (log_space && !(y > 0)) why = "the model's value has no logarithm (--log-loss)";
        else {
          const double r = log_space ? log(y) - log(o) : y - o;
          if (!isfinite(r * r)) why = "their squared difference overflows";
        }
        if (!why) continue;
        char bo[NDE_NUM_MAX], by[NDE_NUM_MAX], bt[NDE_NUM_MAX];
        nde_str_addf(s, "%s:%s at t = %s, %s: data %s, model %s: %s", nde_data_file(d),
                     tr->name, nde_num_str(tr->t[i], bt), nde_model_component_name(m, (int)j),
                     nde_num_str(o, bo), nde_num_str(y, by), why);
        found = 1;
      }
    free(Y);
  }
  return found && !s->failed;
}
