/* The result file of `nde fit` (FIT.h5): everything needed to forecast, discover or resume from
 * the file alone.  Layout (docs/cli.md):
 *   /                 attrs format = "nde-fit", status, nde_version, iteration
 *   /model/source     the model's source text (attr filename)
 *   /params/theta     the flat learnable vector (the only dataset --init needs)
 *   /params/values/P  each scalar parameter in natural units (attrs learnable, positive)
 *   /params/layout    names, offsets and lengths of the blocks of theta
 *   /fit/x            the optimised vector (theta, learned initial states, shooting states)
 *   /fit/u0           initial state of every series [n_series, n]
 *   /fitted/NAME      t, y: the model's trajectory at the data times, per series
 *   /train/state      the resumable training state; /train/history the loss per iteration
 *   /provenance       attrs: command line, solver and tolerances, seed, versions, threads
 */
#ifndef NDE_CLI_FIT_FILE_H
#define NDE_CLI_FIT_FILE_H

#include "nde/data.h"
#include "nde/model.h"
#include "nde/train.h"

typedef struct nde_fit_file {
  const char *path;
  const char *status; /* "running", "done", "interrupted", "diverged" */
  const nde_model *model;
  const nde_data *data;
  nde_fit *fit;
  nde_train *train;
  const char *command_line;
  const char *schedule;
  const char *solver;
  const char *grad;
  double dt;
  long steps_per_interval;
  uint64_t seed;
  double final_loss; /* NaN while running */
  double seconds;
} nde_fit_file;

/* Write the file atomically.  Returns 0 or prints the message and returns the exit code.
 * test_abort_midway (testing hook): abandon the write halfway and _exit(137), as kill -9 would. */
int nde_fit_file_write(const nde_fit_file *ff, int test_abort_midway);

/* Read /train/state and /model/source of a result file for --resume; the caller frees both.
 * Returns 0 or prints the message and returns the exit code. */
int nde_fit_file_read_state(const char *path, double **state, size_t *len, char **source);

#endif
