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
  const char *table;     /* --series TABLE.csv (NULL: one series) */
} nde_cli_sim;

/* One series of a batch: its group name, parameters (nde_model_n_theta_full(m, 1)), initial
 * state, columns Y (n_t x n_cols) with the noise std per column, the inputs and constants that
 * drove it, its noise seed, and its place in the table ("T.csv:3", NULL: none). */
typedef struct nde_cli_sim_series {
  const char *name;
  const double *theta, *u0, *Y, *noise_std;
  const nde_cli_inputs *inputs;
  const double *consts;
  uint64_t seed;
  const char *table_row;
} nde_cli_sim_series;

/* Write the simulated columns Y (n_t x a->n_cols at times t) to a->out with the inputs,
 * constants and provenance; cmd is the command line.  noise_std: per column (used when
 * a->noise > 0).  A name ending in .csv gets CSV, "t,NAME,..." and the values only.  0, or the
 * exit code after the message. */
int nde_cli_sim_write(const nde_cli_sim *a, const char *cmd, const nde_model *m, const double *theta,
                      const double *u0, const double *t, long n_t, const double *Y,
                      const double *noise_std);
/* Write n series to a->out (HDF5) as a batch, one group /NAME per series holding what the file
 * of one series holds (its data, inputs, constants and provenance), with what made the batch as
 * string attributes of the root (one series at the root is nde_cli_sim_write's).  Atomic.  0, or the exit code after the message. */
int nde_cli_sim_write_batch(const nde_cli_sim *a, const char *cmd, const nde_model *m,
                            const double *t, long n_t, int n, const nde_cli_sim_series *series);

#endif
