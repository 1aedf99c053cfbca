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

/* The kept parameters' trajectory of the data series tr at its times (for messages). */
int nde_cli_predict_kept(void *ctx, size_t k, const nde_traj *tr, double *Y, nde_str *why) {
  const nde_result *res = ctx;
  const int s = nde_result_find_series(res, tr->name);
  nde_solve_stats stats;
  nde_error err;
  char msg[600];
  (void)k;
  if (s < 0) return 1;
  const nde_start start = {.kind = NDE_START_FITTED, .series = s};
  if (nde_result_integrate(res, &start, tr->n, tr->t, NULL, Y, &stats, &err) != NDE_OK) return 1;
  if (stats.reason == NDE_REASON_NONE) return 0;
  nde_str_adds(why, nde_stop_message(nde_result_settings(res)->solver.method, &stats, msg,
                                     sizeof msg));
  return 1;
}

/* --validate tail:F | series:K */
int nde_cli_parse_validate(const char *spec, nde_result_fit_opts *fo) {
  char *end;
  if (!strncmp(spec, "tail:", 5)) {
    fo->validate_tail = strtod(spec + 5, &end);
    if (end != spec + 5 && !*end && fo->validate_tail > 0 && fo->validate_tail < 1) return 0;
  } else if (!strncmp(spec, "series:", 7)) {
    const long k = strtol(spec + 7, &end, 10);
    if (end != spec + 7 && !*end && k >= 1 && k <= NDE_FIT_MAX_SERIES) {
      fo->validate_series = (int)k;
      return 0;
    }
  }
  nde_cli_error("--validate: expected tail:F with F in (0, 1) (the trailing fraction of every "
                "series) or series:K with K >= 1 (the last K series), got '%s'",
                spec);
  return NDE_EXIT_INPUT;
}

/* --noise-std S (every state) or x=S,y=S (by state). */
int nde_cli_parse_noise(const char *spec, const nde_model *m, double *sd) {
  const int n = nde_model_state_dim(m);
  char *end;
  const double v = strtod(spec, &end);
  if (end != spec && !*end) {
    if (!(v > 0) || !isfinite(v)) {
      nde_cli_error("--noise-std: expected a standard deviation > 0, got '%s'", spec);
      return NDE_EXIT_INPUT;
    }
    for (int j = 0; j < n; j++) sd[j] = v;
    return 0;
  }
  for (int j = 0; j < n; j++) sd[j] = NAN;
  int rc = nde_cli_parse_state("--noise-std", spec, m, sd);
  for (int j = 0; !rc && j < n; j++)
    if (!isnan(sd[j]) && !(sd[j] > 0)) {
      nde_cli_error("--noise-std: %s: expected a standard deviation > 0, got %g",
                    nde_model_component_name(m, j), sd[j]);
      rc = NDE_EXIT_INPUT;
    }
  return rc;
}
