/* The summary `nde fit` prints and the parsers of its compound options (fit_report.c). */
#ifndef NDE_CLI_FIT_REPORT_H
#define NDE_CLI_FIT_REPORT_H

#include "cli.h"

/* Prints the outcome, the kept iterate, the parameters (with standard errors when computed),
 * learned initial states, warnings, uncertainty and ensemble tables of a finished fit. */
void nde_cli_fit_summary(const nde_result *res, const char *out);

/* The parameters by name with their standard errors, and the nets' sizes (fit and inspect). */
void nde_cli_print_params(const nde_result *res);

/* nde_cli_explain_loss callback: the kept parameters' trajectory of data series tr (ctx: the
 * result).  Returns 0 when Y holds it, 1 with the reason in why otherwise. */
int nde_cli_predict_kept(void *ctx, size_t k, const nde_traj *tr, double *Y, nde_str *why);

/* --validate tail:F | series:K into fo; prints the error and returns NDE_EXIT_INPUT if bad. */
int nde_cli_parse_validate(const char *spec, nde_result_fit_opts *fo);

/* --noise-std S (every state) or x=S,y=S (by state) into sd[state_dim]. */
int nde_cli_parse_noise(const char *spec, const nde_model *m, double *sd);

#endif
