/* nde uncertainty FIT.h5 [DATA.h5]: the standard errors (and profile intervals) of a finished
 * fit, computed against its data (the file the fit recorded, or the one given) and written into
 * the result file (in place, atomically, or to -o OUT.h5), then printed beside the values. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_unc.h"

#define USAGE "nde uncertainty FIT.h5 [DATA.h5[:/GROUP]] [-o OUT.h5] [options]"

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

int nde_cmd_uncertainty(int argc, char **argv) {
  const char *out = NULL, *noise = NULL;
  int quiet = 0;
  nde_cli_unc unc;
  nde_cli_unc_init(&unc);
  unc.on = 1;
  nde_arg opts[16];
  int n = 0;
  opts[n++] = (nde_arg)NDE_STR("--out", &out, "OUT.h5",
                               "write the result with its standard errors here (also -o; "
                               "default: FIT.h5 itself, replaced atomically)");
  opts[n++] = (nde_arg)NDE_STR("--noise-std", &noise, "S|x=S,...",
                               "the noise std for --noise-model known, of every column or by "
                               "state or observable (default: the fit's)");
  opts[n++] = (nde_arg)NDE_FLAG("--quiet", &quiet, "print nothing on success");
  nde_cli_unc_args(opts + n, &unc);
  n += NDE_CLI_N_UNC_ARGS;
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, n, pos, 1, 2, &n_pos);
  if (rc >= 0) return rc;
  if ((rc = nde_cli_unc_check(&unc))) return rc;
  const char *data_path = n_pos > 1 ? pos[1] : NULL;
  if (out) {
    const char *inputs[] = {pos[0], data_path, NULL};
    if ((rc = nde_cli_check_output("--out", out, inputs))) return rc;
  }
  nde_result *r = NULL;
  nde_data *data = NULL;
  double *sd = NULL;
  nde_error err;
  nde_status st = nde_result_open(pos[0], &r, &err);
  if (st != NDE_OK) return nde_cli_fail(&err, 1);
  if (!quiet) nde_cli_note_unfinished(pos[0], r);
  const nde_model *m = nde_result_model(r);
  if (!data_path) {
    /* The data the fit recorded, as it was given (relative to where nde fit ran). */
    data_path = nde_result_provenance(r, "data_file");
    if (!data_path || !*data_path) {
      nde_cli_error("%s records no data file: give the fit's data (nde uncertainty FIT.h5 "
                    "DATA.h5)", pos[0]);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
  }
  if ((rc = nde_cli_open_data(data_path, m, &data))) {
    if (n_pos < 2)
      fprintf(stderr, "nde: the fit recorded its data as %s; give the data file explicitly "
                      "(nde uncertainty FIT.h5 DATA.h5)\n", data_path);
    goto done;
  }
  if (noise) {
    sd = calloc((size_t)(nde_model_state_dim(m) + nde_model_n_observables(m)), sizeof *sd);
    if (!sd) {
      nde_cli_error("out of memory");
      rc = NDE_EXIT_IO;
      goto done;
    }
    if ((rc = nde_cli_parse_noise(noise, m, sd))) goto done;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if ((rc = nde_cli_unc_run(r, data, &unc, sd, quiet, &g_signal))) goto done;
  const char *dest = out ? out : pos[0];
  if ((st = nde_result_save(r, dest, &err)) != NDE_OK) {
    rc = nde_cli_fail(&err, 0);
    goto done;
  }
  if (!quiet) {
    char b[NDE_NUM_MAX];
    printf("%s: standard errors of the fit to %s\n", pos[0], data_path);
    for (int i = 0; i < nde_model_n_params(m); i++) {
      nde_model_param_info pi;
      if (nde_model_get_param(m, i, &pi) != NDE_OK || !pi.learnable) continue;
      if (pi.per_series) {
        for (int s = 0; s < nde_result_n_series(r); s++) {
          nde_result_series se;
          nde_result_get_series(r, s, &se);
          char u[300];
          nde_cli_param_unc(r, i, s, u, sizeof u);
          printf("  %s[%s] = %s%s\n", pi.name, se.name,
                 nde_num_str(nde_result_param_series(r, i, s), b), u);
        }
        continue;
      }
      char u[300];
      nde_cli_param_unc(r, i, -1, u, sizeof u);
      printf("  %-12s = %s%s\n", pi.name, nde_num_str(nde_result_param(r, i), b), u);
    }
    nde_cli_print_uncertainty(r);
    printf("written to %s\n", dest);
  }
  rc = 0;
done:
  free(sd);
  nde_data_destroy(&data);
  nde_result_destroy(&r);
  return rc;
}
