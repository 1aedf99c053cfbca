/* The file `nde simulate` writes: the series (with its inputs and constants) in the data
 * convention, and its provenance as attributes of the root group (the command line, the model
 * and its source, parameter values, initial state, solver, step, seed, noise); or, for a name
 * ending in .csv, the columns alone as CSV (the writer of nde forecast). */
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



int nde_cli_sim_write(const nde_cli_sim *a, const char *cmd, const nde_model *m, const double *theta,
                      const double *u0, const double *t, long n_t, const double *Y,
                      const double *noise_std) {
  if (nde_cli_ends_with(a->out, ".csv")) {
    /* The columns alone, as nde forecast writes CSV (provenance needs HDF5). */
    const nde_cli_forecast f = {.N = (size_t)n_t, .T = (double *)t, .Y = (double *)Y};
    return nde_cli_write_csv(a->out, a->n_cols, a->cols, &f, 1);
  }
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  const char **in_names = nde_cli_driver_names(m);
  const char **c_names = in_names ? in_names + mi : NULL;
  char *params = describe_params(m, theta), *state = describe_state(m, u0);
  nde_writer *w = NULL;
  nde_error err;
  int code = 0;
  if (!in_names || !params || !state) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
    goto done;
  }
  nde_status st = nde_writer_create(a->out, &w, &err);
  if (st != NDE_OK) {
    code = nde_cli_fail(&err, 0);
    goto done;
  }
  nde_series s = {(size_t)n_t, (size_t)a->n_cols, t, Y, a->cols, a->noise > 0 ? noise_std : NULL};
  nde_series_extra x = {0};
  if (mi > 0) {
    x.m = (size_t)mi;
    x.n_u = a->inputs->n;
    x.u_t = a->inputs->t;
    x.u = a->inputs->u;
    x.input_names = in_names;
  }
  if (ndc > 0) {
    x.n_consts = (size_t)ndc;
    x.const_names = c_names;
    x.consts = a->consts;
  }
  st = nde_writer_put_series_ex(w, "/", &s, &x);
  if (!st) st = nde_writer_set_attr_string(w, "/", "created_by", "nde simulate");
  if (!st) st = nde_writer_set_attr_string(w, "/", "command_line", cmd);
  if (!st) st = nde_writer_set_attr_string(w, "/", "nde_version", nde_version());
  if (!st) st = nde_writer_set_attr_string(w, "/", "model_file", a->model_path);
  if (!st) st = nde_writer_set_attr_string(w, "/", "model_source", nde_model_source(m));
  if (!st) st = nde_writer_set_attr_string(w, "/", "parameters", params);
  if (!st) st = nde_writer_set_attr_string(w, "/", "initial_state", state);
  if (!st && a->init) st = nde_writer_set_attr_string(w, "/", "init", a->init);
  if (!st) st = nde_writer_set_attr_string(w, "/", "solver", a->method);
  if (!st) st = nde_writer_set_attr_string(w, "/", "solver_step", a->solver_step);
  if (!st) st = nde_writer_set_attr_int64(w, "/", "seed", (int64_t)a->seed);
  if (!st) st = nde_writer_set_attr_double(w, "/", "noise", a->noise);
  if (!st) st = nde_writer_commit(w);
  if (st != NDE_OK) {
    nde_cli_error("%s", nde_writer_errmsg(w));
    code = nde_cli_exit_code(st);
  }
done:
  nde_writer_destroy(&w);
  free(in_names);
  nde_free(params);
  nde_free(state);
  return code;
}
