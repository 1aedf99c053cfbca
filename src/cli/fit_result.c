/* Reading a result file of `nde fit` for the commands that continue from it (discover, forecast,
 * export, plots), and integrating its learned model on a grid. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "fit_result.h"
#include "nde/solve.h"

void nde_fit_result_free(nde_fit_result *r) {
  nde_model_destroy(&r->model);
  nde_data_destroy(&r->fitted);
  free(r->theta);
  free(r->u0);
  free(r->solver);
  free(r->data_file);
  free(r->history);
  memset(r, 0, sizeof *r);
}

static int bad(nde_fit_result *r, nde_reader **rd, const char *what) {
  nde_cli_error("%s: %s (expected a result file of nde fit)", r->path, what);
  nde_reader_destroy(rd);
  nde_fit_result_free(r);
  return NDE_EXIT_INPUT;
}

int nde_fit_result_read(const char *path, int need_fitted, nde_fit_result *r) {
  memset(r, 0, sizeof *r);
  r->path = path;
  nde_error err;
  nde_reader *rd = NULL;
  nde_status st = nde_reader_open(path, &rd, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_input_exit(st);
  }
  char msg[1200];
  char *source = NULL, *filename = NULL;
  if (nde_reader_get_string(rd, "/model/source", &source) != NDE_OK) {
    snprintf(msg, sizeof msg, "/model/source: %s", nde_reader_errmsg(rd));
    return bad(r, &rd, msg);
  }
  if (nde_reader_get_attr_string(rd, "/model/source", "filename", &filename) != NDE_OK)
    filename = NULL;
  char label[1100];
  snprintf(label, sizeof label, "%s:/model/source", path);
  st = nde_model_load_string(source, strlen(source), filename ? filename : label, &r->model, NULL);
  free(source);
  free(filename);
  if (st != NDE_OK) {
    int rc = nde_cli_report_model(r->model, st);
    nde_reader_destroy(&rd);
    nde_fit_result_free(r);
    return rc;
  }
  r->n = nde_model_state_dim(r->model);
  r->n_theta = nde_model_n_theta(r->model);
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  if (nde_reader_shape(rd, "/params/theta", &rank, dims) != NDE_OK || rank > 1 ||
      (rank == 1 ? dims[0] : 1) != r->n_theta) {
    snprintf(msg, sizeof msg, "/params/theta: expected %zu values for the model in /model/source",
             r->n_theta);
    return bad(r, &rd, msg);
  }
  r->theta = calloc(r->n_theta + 1, sizeof *r->theta);
  if (!r->theta || nde_reader_get_doubles(rd, "/params/theta", r->n_theta, r->theta) != NDE_OK)
    return bad(r, &rd, "/params/theta: cannot be read");
  for (size_t i = 0; i < r->n_theta; i++)
    if (!isfinite(r->theta[i])) {
      snprintf(msg, sizeof msg, "/params/theta: value %zu is not finite", i);
      return bad(r, &rd, msg);
    }
  if (nde_reader_kind(rd, "/fit/u0") == NDE_H5_DATASET) {
    if (nde_reader_shape(rd, "/fit/u0", &rank, dims) != NDE_OK || rank != 2 ||
        dims[1] != (size_t)r->n || dims[0] < 1) {
      snprintf(msg, sizeof msg, "/fit/u0: expected [n_series, %d]", r->n);
      return bad(r, &rd, msg);
    }
    r->n_series = dims[0];
    r->u0 = calloc(dims[0] * dims[1], sizeof *r->u0);
    if (!r->u0 || nde_reader_get_doubles(rd, "/fit/u0", dims[0] * dims[1], r->u0) != NDE_OK)
      return bad(r, &rd, "/fit/u0: cannot be read");
  } else if (need_fitted) {
    return bad(r, &rd, "/fit/u0: missing");
  }
  if (nde_reader_get_attr_string(rd, "/provenance", "solver", &r->solver) != NDE_OK) {
    r->solver = malloc(4);
    if (r->solver) memcpy(r->solver, "rk4", 4);
  }
  if (nde_reader_get_attr_double(rd, "/provenance", "dt", &r->dt) != NDE_OK) r->dt = 0;
  int64_t spi = 0;
  if (nde_reader_get_attr_int64(rd, "/provenance", "steps_per_interval", &spi) != NDE_OK) spi = 0;
  r->steps_per_interval = (long)spi;
  if (nde_reader_get_attr_string(rd, "/provenance", "data_file", &r->data_file) != NDE_OK)
    r->data_file = NULL;
  if (nde_reader_kind(rd, "/train/history") == NDE_H5_DATASET &&
      nde_reader_shape(rd, "/train/history", &rank, dims) == NDE_OK && rank == 1 && dims[0] > 0) {
    r->history = calloc(dims[0], sizeof *r->history);
    if (r->history && nde_reader_get_doubles(rd, "/train/history", dims[0], r->history) == NDE_OK)
      r->n_history = dims[0];
  }
  const int has_fitted = nde_reader_kind(rd, "/fitted") == NDE_H5_GROUP;
  nde_reader_destroy(&rd);
  if (!r->solver) {
    nde_cli_error("out of memory");
    nde_fit_result_free(r);
    return NDE_EXIT_IO;
  }
  if (has_fitted || need_fitted) {
    char sel[1100];
    snprintf(sel, sizeof sel, "%s:/fitted", path);
    const char **names = nde_cli_component_names(r->model);
    nde_data_opts o = nde_data_opts_default();
    st = names ? nde_data_open(sel, (size_t)r->n, names, &o, &r->fitted, &err) : NDE_ERR_NOMEM;
    free(names);
    if (st != NDE_OK) {
      nde_cli_error("%s", st == NDE_ERR_NOMEM ? "out of memory" : err.msg);
      nde_fit_result_free(r);
      return nde_cli_input_exit(st);
    }
    if (r->u0 && nde_data_n_traj(r->fitted) != r->n_series) {
      nde_cli_error("%s:/fit/u0: %zu initial states for %zu fitted series (expected one each)",
                    path, r->n_series, nde_data_n_traj(r->fitted));
      nde_fit_result_free(r);
      return NDE_EXIT_INPUT;
    }
  }
  return 0;
}

int nde_fit_result_integrate(const nde_fit_result *r, nde_model *model, const char *solver, double dt,
                             long steps_per_interval, double rtol, double atol, const double *U0,
                             size_t n_times, const double *times, double *Y, double *t_stop) {
  nde_rhs *rhs = NULL;
  nde_solver *s = NULL;
  nde_solver_opts o = nde_solver_opts_default();
  o.method = solver ? solver : r->solver;
  if (!nde_solver_method_known(o.method)) {
    nde_cli_error("--solver: unknown method '%s'", o.method);
    return NDE_EXIT_INPUT;
  }
  o.dt = dt;
  o.steps_per_interval = steps_per_interval > 0 ? (int)steps_per_interval : 1;
  if (rtol > 0) o.rtol = rtol;
  if (atol > 0) o.atol = atol;
  o.max_steps = 100000000;
  int rc = 0;
  nde_status st = nde_model_create_rhs(model ? model : r->model, 1, &rhs, NULL);
  if (st == NDE_OK) st = nde_solver_create(rhs, &o, 1, &s, NULL);
  if (st != NDE_OK) {
    nde_cli_error("%s", s ? nde_solver_errmsg(s) : nde_status_str(st));
    rc = nde_cli_exit_code(st);
    goto done;
  }
  nde_solve_stats stats;
  st = nde_solver_solve(s, r->theta, 1, U0, (int)n_times, times, Y, &stats);
  if (t_stop) *t_stop = stats.t_stop;
  if (st != NDE_OK) {
    nde_cli_error("%s", nde_solver_errmsg(s));
    rc = nde_cli_exit_code(st);
  } else if (stats.reason != NDE_REASON_NONE) {
    if (!t_stop)
      nde_cli_error("the solver stopped at t = %g: %s", stats.t_stop,
                    nde_stop_reason_str(stats.reason));
    rc = NDE_EXIT_NUMERIC;
  }
done:
  nde_solver_destroy(&s);
  nde_rhs_destroy(&rhs);
  return rc;
}
