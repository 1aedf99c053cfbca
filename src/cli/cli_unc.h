/* How sure a fit is, on the command line: the options nde fit and nde uncertainty share
 * (standard errors, profiles, the noise model), running them with progress, and printing
 * standard errors beside the values, profiles and ensemble spreads (nde fit, nde uncertainty,
 * nde inspect). */
#ifndef NDE_CLI_UNC_H
#define NDE_CLI_UNC_H

#include <signal.h>

#include "cli.h"

typedef struct nde_cli_unc {
  int on;              /* --uncertainty */
  const char *noise;   /* --noise-model per-state|pooled|known */
  const char *profile; /* --profile NAME[,NAME...] */
  int points;          /* --profile-points */
  double level;        /* --level */
  int nets;            /* --uncertainty-nets */
  int fd;              /* --finite-differences */
  int jobs;            /* --jobs: members or profile points at once (0: every core) */
} nde_cli_unc;

#define NDE_CLI_N_UNC_ARGS 8
/* The rows of the options, writing into u (which holds the defaults). */
void nde_cli_unc_init(nde_cli_unc *u);
void nde_cli_unc_args(nde_arg *rows, nde_cli_unc *u);
/* Whether any of them asks for standard errors (--uncertainty or --profile). */
int nde_cli_unc_wanted(const nde_cli_unc *u);
/* Check the option values (the noise model name); prints and returns 2, else 0. */
int nde_cli_unc_check(const nde_cli_unc *u);
/* Compute the standard errors (and the profiles) of r against data with noise_sd (n values or
 * NULL: the result's) for a known noise model; progress on stderr unless quiet.  Returns 0,
 * 130/143 when interrupted by *signal_flag (may be NULL), or prints and returns the exit code. */
int nde_cli_unc_run(nde_result *r, const nde_data *data, const nde_cli_unc *u,
                    const double *noise_sd, int quiet,
                    volatile const sig_atomic_t *signal_flag);

/* " +- SE  95% [LO, HI]" for parameter i (series s for a per-series one) into buf, or "" when r
 * has no standard error for it; an ensemble's spread when it has members instead. */
void nde_cli_param_unc(const nde_result *r, int i, int s, char *buf, size_t len);
/* What the standard errors rest on, the non-identifiable warning, learned initial states,
 * correlations and profiles; the ensemble's members.  Nothing when absent. */
void nde_cli_print_uncertainty(const nde_result *r);
void nde_cli_print_ensemble(const nde_result *r);

#endif
