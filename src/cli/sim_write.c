/* The file `nde simulate` writes: the series (with its inputs and constants) in the data
 * convention, and its provenance as attributes of the root group (the command line, the model
 * and its source, parameter values, initial state, solver, step, seed, noise); a batch of such
 * series, one group each with those attributes (--series); or, for a name ending in .csv, the
 * columns alone as CSV (the writer of nde forecast). */
#include <stdio.h>
#include <stdlib.h>

#include "forecast.h"
#include "sim_write.h"

/* "alpha=1.3, beta=0.9 (fixed)" for the natural values of all parameters, those of the one
 * simulated series for a per-series parameter. */
static char *describe_params(const nde_model *m, const double *theta) {
  nde_str s = NDE_STR_INIT;
  char b[NDE_NUM_MAX];
  if (!nde_model_n_params(m)) nde_str_adds(&s, "(none)");
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    nde_str_addf(&s, "%s%s=%s%s", i ? ", " : "", p.name,
                 nde_num_str(nde_model_param_value_series(m, i, theta, 0), b),
                 p.per_series ? " (per series)" : p.learnable ? "" : " (fixed)");
  }
  return nde_str_take(&s);
}

static char *describe_state(const nde_model *m, const double *u0) {
  nde_str s = NDE_STR_INIT;
  char b[NDE_NUM_MAX];
  for (int j = 0; j < nde_model_state_dim(m); j++)
    nde_str_addf(&s, "%s%s=%s", j ? ", " : "", nde_model_component_name(m, j),
                 nde_num_str(u0[j], b));
  return nde_str_take(&s);
}

/* Series of one simulation into group g of w: the data (with the inputs and constants that
 * drove it) and, as attributes of g, its provenance.  in_names: the model's input names, then
 * its constants'.  0, or the message and the exit code. */
static int put_sim(nde_writer *w, const char *g, const nde_cli_sim *a, const char *cmd,
                   const nde_model *m, const char **in_names, const nde_cli_sim_series *q,
                   const double *t, long n_t) {
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  char *params = describe_params(m, q->theta), *state = describe_state(m, q->u0);
  if (!params || !state) {
    nde_free(params);
    nde_free(state);
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  nde_series s = {(size_t)n_t, (size_t)a->n_cols, t, q->Y, a->cols,
                  a->noise > 0 ? q->noise_std : NULL};
  nde_series_extra x = {0};
  if (mi > 0) {
    x.m = (size_t)mi;
    x.n_u = q->inputs->n;
    x.u_t = q->inputs->t;
    x.u = q->inputs->u;
    x.input_names = in_names;
  }
  if (ndc > 0) {
    x.n_consts = (size_t)ndc;
    x.const_names = in_names + mi;
    x.consts = q->consts;
  }
  nde_status st = nde_writer_put_series_ex(w, g, &s, &x);
  if (!st) st = nde_writer_set_attr_string(w, g, "created_by", "nde simulate");
  if (!st) st = nde_writer_set_attr_string(w, g, "command_line", cmd);
  if (!st) st = nde_writer_set_attr_string(w, g, "nde_version", nde_version());
  if (!st) st = nde_writer_set_attr_string(w, g, "model_file", a->model_path);
  if (!st) st = nde_writer_set_attr_string(w, g, "model_source", nde_model_source(m));
  if (!st) st = nde_writer_set_attr_string(w, g, "parameters", params);
  if (!st) st = nde_writer_set_attr_string(w, g, "initial_state", state);
  if (!st && a->init) st = nde_writer_set_attr_string(w, g, "init", a->init);
  if (!st) st = nde_writer_set_attr_string(w, g, "solver", a->method);
  if (!st) st = nde_writer_set_attr_string(w, g, "solver_step", a->solver_step);
  if (!st) st = nde_writer_set_attr_int64(w, g, "seed", (int64_t)q->seed);
  if (!st) st = nde_writer_set_attr_double(w, g, "noise", a->noise);
  if (!st && q->table_row) st = nde_writer_set_attr_string(w, g, "series_table", q->table_row);
  nde_free(params);
  nde_free(state);
  if (st == NDE_OK) return 0;
  nde_cli_error("%s", nde_writer_errmsg(w));
  return nde_cli_exit_code(st);
}

/* How the series of an HDF5 file are laid out. */
typedef enum sim_layout {
  SIM_ONE_AT_ROOT,  /* the one series series[0] at the root (nde_cli_sim_write) */
  SIM_BATCH_GROUPS, /* n series, one group /NAME each (nde_cli_sim_write_batch) */
} sim_layout;

/* The HDF5 file of the series (laid out as layout says), created, filled and committed at once.
 * 0, or the exit code after the message. */
static int write_h5(const nde_cli_sim *a, const char *cmd, const nde_model *m, const double *t,
                    long n_t, sim_layout layout, int n, const nde_cli_sim_series *series) {
  const char **in_names = nde_cli_driver_names(m);
  nde_writer *w = NULL;
  nde_error err;
  nde_str g = NDE_STR_INIT;
  int code = 0;
  if (!in_names) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  nde_status st = nde_writer_create(a->out, &w, &err);
  if (st != NDE_OK) {
    code = nde_cli_fail(&err, 0);
    goto done;
  }
  if (layout == SIM_ONE_AT_ROOT) {
    code = put_sim(w, "/", a, cmd, m, in_names, series, t, n_t);
  } else {
    /* The root says what made the batch; each group holds what a file of one series holds.
     * Only strings at the root: a number there would stand in for a missing constant. */
    st = nde_writer_set_attr_string(w, "/", "created_by", "nde simulate");
    if (!st) st = nde_writer_set_attr_string(w, "/", "command_line", cmd);
    if (!st) st = nde_writer_set_attr_string(w, "/", "nde_version", nde_version());
    if (!st) st = nde_writer_set_attr_string(w, "/", "model_file", a->model_path);
    if (!st && a->table) st = nde_writer_set_attr_string(w, "/", "series_table", a->table);
    if (st) {
      nde_cli_error("%s", nde_writer_errmsg(w));
      code = nde_cli_exit_code(st);
    }
    for (int k = 0; k < n && !code; k++) {
      nde_str_release(&g);
      nde_str_addf(&g, "/%s", series[k].name);
      if (g.failed) {
        nde_cli_error("out of memory");
        code = NDE_EXIT_IO;
        break;
      }
      code = put_sim(w, g.data, a, cmd, m, in_names, &series[k], t, n_t);
    }
  }
  if (!code && (st = nde_writer_commit(w)) != NDE_OK) {
    nde_cli_error("%s", nde_writer_errmsg(w));
    code = nde_cli_exit_code(st);
  }
done:
  nde_str_release(&g);
  nde_writer_destroy(&w);
  free(in_names);
  return code;
}

int nde_cli_sim_write(const nde_cli_sim *a, const char *cmd, const nde_model *m, const double *theta,
                      const double *u0, const double *t, long n_t, const double *Y,
                      const double *noise_std) {
  if (nde_cli_ends_with(a->out, ".csv")) {
    /* The columns alone, as nde forecast writes CSV (provenance needs HDF5). */
    const nde_cli_forecast f = {.N = (size_t)n_t, .T = (double *)t, .Y = (double *)Y};
    return nde_cli_write_csv(a->out, a->n_cols, a->cols, &f, 1);
  }
  const nde_cli_sim_series q = {NULL, theta, u0, Y, noise_std, a->inputs, a->consts, a->seed,
                                NULL};
  return write_h5(a, cmd, m, t, n_t, SIM_ONE_AT_ROOT, 1, &q);
}

int nde_cli_sim_write_batch(const nde_cli_sim *a, const char *cmd, const nde_model *m,
                            const double *t, long n_t, int n, const nde_cli_sim_series *series) {
  return write_h5(a, cmd, m, t, n_t, SIM_BATCH_GROUPS, n, series);
}
