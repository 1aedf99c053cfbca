/* The table of series of `nde simulate --series TABLE.csv` (sim_table.c). */
#ifndef NDE_CLI_SIM_TABLE_H
#define NDE_CLI_SIM_TABLE_H

#include "cli.h"

/* One row per series, every value completed from the defaults. */
typedef struct nde_cli_sim_table {
  int n;             /* series */
  char **names;      /* n group names (given, or s01, s02, ...) */
  long *line;        /* n: the table line of each series, for messages */
  double *u0;        /* n x state_dim */
  double *theta;     /* n x nde_model_n_theta_full(m, 1) */
  double *consts;    /* n x nde_model_n_data_consts(m), NULL for a model without */
  uint64_t *seed;    /* n: the noise seed of each series */
  char **inputs;     /* n: the inputs path of each series (resolved against the table's
                      * directory), or NULL for the default (--inputs) */
  int inputs_col;    /* the column (1-based) of 'inputs', 0 when there is none */
} nde_cli_sim_table;

/* The defaults every row starts from: the initial state, θ (after --init and --param), the
 * base seed (--seed: series k without a seed column draws with nde_sim_series_seed(seed, k)),
 * and --const (NULL: none given; it may leave out constants the table has a column for). */
typedef struct nde_cli_sim_defaults {
  const double *u0, *theta;
  uint64_t seed;
  const char *const_spec;
} nde_cli_sim_defaults;

/* Read the table at path for model m: a header of column names and one row per series, fields
 * separated by commas (blanks around them ignored; blank lines and lines starting with '#'
 * skipped).  Columns: name, seed, inputs, state components (x, y[1]), learnable parameters
 * (natural values, checked as --param checks them) and constants declared '(from data)', each
 * at most once.  Returns 0, or prints one message naming the file, line and column, and
 * returns the exit code (2 for a bad table); *t is then empty. */
int nde_cli_sim_table_read(const char *path, const nde_model *m, const nde_cli_sim_defaults *d,
                           nde_cli_sim_table *t);
void nde_cli_sim_table_free(nde_cli_sim_table *t);

#endif
