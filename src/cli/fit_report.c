/* What `nde fit` prints after a fit (the summary: outcome, kept iterate, parameters by name
 * with their standard errors, learned initial states) and the parsers of its compound options
 * (--validate, --noise-std). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_unc.h"
#include "fit_report.h"

/* The parameters by name (per-series ones per series), with their standard errors when the
 * result holds them, and the nets' sizes. */
void nde_cli_print_params(const nde_result *res) {
  const nde_model *m = nde_result_model(res);
  char b[NDE_NUM_MAX];
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK) continue;
    if (pi.per_series) {
      printf("  %-12s (per series):", pi.name);
      for (int k2 = 0; k2 < nde_result_n_series(res); k2++) {
        nde_result_series se;
        nde_result_get_series(res, k2, &se);
        char unc[300];
        nde_cli_param_unc(res, i, k2, unc, sizeof unc);
        printf("%s%s %s%s", *unc ? "\n    " : " ", se.name,
               nde_num_str(nde_result_param_series(res, i, k2), b), unc);
      }
      printf("\n");
      continue;
    }
    char unc[300] = "";
    if (pi.learnable) nde_cli_param_unc(res, i, -1, unc, sizeof unc);
    printf("  %-12s = %s%s%s\n", pi.name, nde_num_str(nde_result_param(res, i), b),
           pi.learnable ? "" : "  (fixed)", unc);
  }
  for (int i = 0; i < nde_model_n_nets(m); i++) {
    nde_model_net_info ni;
    if (nde_model_get_net(m, i, &ni) == NDE_OK)
      printf("  net %-8s %zu weights\n", ni.name, ni.n_params);
  }
}

void nde_cli_fit_summary(const nde_result *res, const char *out) {
  const nde_model *m = nde_result_model(res);
  const nde_result_fit_opts *s = nde_result_settings(res);
  const nde_result_kept k = nde_result_get_kept(res);
  printf("fit: %ld iterations in %.2f s: %s\n", nde_result_iterations(res),
         nde_result_seconds(res), nde_result_message(res));
  const char *thr = nde_result_provenance(res, "threads");
  const char *rk = nde_result_provenance(res, "mpi_ranks");
  const char *bl = nde_result_provenance(res, "blas_threads");
  if (thr && rk)
    printf("  on %s thread(s) (OpenBLAS %s) x %s MPI rank(s)\n", thr, bl ? bl : "?", rk);
  printf("  trajectory loss %.6e (%s squared error) at the kept parameters: %s (iteration %ld)\n",
         k.loss, s->objective.loss_sum ? "summed" : "mean",
         k.is_best ? "the best scored iterate" : "the last iterate", k.iteration);
  if (isfinite(k.validation))
    printf("  validation loss %.6e on the held-out %s (it chose the kept iterate)\n", k.validation,
           s->validate_series ? "series" : "trailing observations");
  if (isfinite(k.noise_ratio))
    printf("  that is %.3g times the loss the true model would have under the known noise "
           "(%.4e)\n", k.noise_ratio, k.noise_loss);
  if (s->objective.l2 > 0 || s->objective.l1 > 0)
    printf("  network weights regularised: l2 %g, l1 %g (not in the losses above)\n",
           s->objective.l2, s->objective.l1);
  if (k.is_best && isfinite(k.last_loss) && k.last_loss > k.loss)
    printf("  the final iterate is worse (trajectory loss %.6e): the best one is kept "
           "(--keep-last keeps the final one)\n",
           k.last_loss);
  nde_cli_print_params(res);
  if (s->objective.learn_u0) {
    char b[NDE_NUM_MAX];
    printf("  learned initial states:\n");
    for (int k2 = 0; k2 < nde_result_n_series(res); k2++) {
      nde_result_series se;
      nde_result_get_series(res, k2, &se);
      printf("    %s:", se.name);
      for (int j = 0; j < nde_model_state_dim(m); j++)
        printf(" %s=%s", nde_model_component_name(m, j), nde_num_str(se.u0[j], b));
      printf("\n");
    }
  }
  if (*nde_result_warning(res)) printf("warning: %s\n", nde_result_warning(res));
  nde_cli_print_uncertainty(res);
  nde_cli_print_ensemble(res);
  printf("result written to %s\n", out);
}
