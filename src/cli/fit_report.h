/* The summary `nde fit` prints and the parameter table it shares with inspect (fit_report.c). */
#ifndef NDE_CLI_FIT_REPORT_H
#define NDE_CLI_FIT_REPORT_H

#include "cli.h"

/* Prints the outcome, the kept iterate, the parameters (with standard errors when computed),
 * learned initial states, warnings, uncertainty and ensemble tables of a finished fit. */
void nde_cli_fit_summary(const nde_result *res, const char *out);

/* The parameters by name with their standard errors, and the nets' sizes (fit and inspect). */
void nde_cli_print_params(const nde_result *res);

#endif
