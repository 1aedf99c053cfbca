/* The options of `nde fit` (fit_args.c): their table, defaults and the checks across them. */
#ifndef NDE_CLI_FIT_ARGS_H
#define NDE_CLI_FIT_ARGS_H

#include "cli.h"
#include "cli_unc.h"

/* What the options set: the fit's options, and the command's own. */
typedef struct fit_cli {
  nde_result_fit_opts fo;
  const char *out, *init, *resume, *scale, *loss, *plot, *param, *validate, *noise, *resample;
  int learn_u0, log_loss, quiet, keep_last, members, batch_segments;
  long progress_every;
  nde_cli_unc unc;
  nde_ensemble_opts eo;
  nde_arg opts[80];
  int n;
} fit_cli;

/* The defaults and the option table c->opts[0 .. c->n). */
void nde_cli_fit_init(fit_cli *c);

/* After parsing: the checks across options (one message, NDE_EXIT_INPUT) and what they set in
 * c->fo.  pos: the model and data arguments.  0 when all is well. */
int nde_cli_fit_check(fit_cli *c, const char *const pos[2]);

#endif
