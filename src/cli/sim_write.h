/* The file `nde simulate` writes (sim_write.c). */
#ifndef NDE_CLI_SIM_WRITE_H
#define NDE_CLI_SIM_WRITE_H

#include "cli.h"

/* What a simulation was asked for, as written into its file. */
typedef struct nde_cli_sim {
  const char *model_path, *out, *init, *solver_step;
  double noise;
  uint64_t seed;
  const char *method;
  int n_cols;            /* columns written: the named quantities, or every state component */
  const char **cols;
  const nde_cli_inputs *inputs; /* the measured inputs (n = 0: none) */
  const double *consts;  /* the constants from data (NULL: none) */
} nde_cli_sim;

/* Write the simulated columns Y (n_t x a->n_cols at times t) to a->out with the inputs,
 * constants and provenance; cmd is the command line.  noise_std: per column (used when
 * a->noise > 0).  A name ending in .csv gets CSV, "t,NAME,..." and the values only.  0, or the
 * exit code after the message. */
int nde_cli_sim_write(const nde_cli_sim *a, const char *cmd, const nde_model *m, const double *theta,
                      const double *u0, const double *t, long n_t, const double *Y,
                      const double *noise_std);

#endif
