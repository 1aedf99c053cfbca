/* Writing and reading the result file of `nde fit` (layout in fit_file.h and docs/cli.md). */
#include "fit_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sundials/sundials_config.h>

#include "cli.h"
#include "cli_common.h"
#include "nde/nn.h"

#define TRY(call)              \
  do {                         \
    if ((st = (call)) != NDE_OK) goto fail; \
  } while (0)

int nde_fit_file_write(const nde_fit_file *ff, int test_abort_midway) {
  nde_error err;
  nde_writer *w = NULL;
  nde_status st = nde_writer_create(ff->path, &w, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_exit_code(st);
  }
  const nde_model *m = ff->model;
  const size_t n_theta = nde_model_n_theta(m);
  const int n = nde_model_state_dim(m);
  const double *x = nde_train_x(ff->train);
  double *state = NULL, *Y = NULL, *u0 = NULL;
  const char **names = NULL;
  int64_t *offs = NULL, *lens = NULL;

  TRY(nde_writer_set_attr_string(w, "/", "format", "nde-fit"));
  TRY(nde_writer_set_attr_string(w, "/", "status", ff->status));
  TRY(nde_writer_set_attr_string(w, "/", "nde_version", nde_version()));
  const double *hist;
  const size_t n_hist = nde_train_history(ff->train, &hist);
  TRY(nde_writer_set_attr_int64(w, "/", "iteration", (int64_t)n_hist));
  TRY(nde_writer_put_string(w, "/model/source", nde_model_source(m)));
  TRY(nde_writer_set_attr_string(w, "/model/source", "filename", nde_model_filename(m)));

  size_t dims[2] = {n_theta, 0};
  TRY(nde_writer_put_doubles(w, "/params/theta", 1, dims, x));
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK) continue;
    char path[512];
    snprintf(path, sizeof path, "/params/values/%s", pi.name);
    const double v = nde_model_param_value(m, i, x);
    TRY(nde_writer_put_doubles(w, path, 0, dims, &v));
    TRY(nde_writer_set_attr_int64(w, path, "learnable", pi.learnable));
    TRY(nde_writer_set_attr_int64(w, path, "positive", pi.positive));
  }
  const int n_lay = nde_model_n_layout(m);
  if (n_lay > 0) {
    names = calloc((size_t)n_lay, sizeof *names);
    offs = calloc((size_t)n_lay, sizeof *offs);
    lens = calloc((size_t)n_lay, sizeof *lens);
    if (!names || !offs || !lens) {
      st = NDE_ERR_NOMEM;
      goto fail;
    }
    for (int i = 0; i < n_lay; i++) {
      nde_model_layout_entry e;
      if (nde_model_get_layout(m, i, &e) != NDE_OK) continue;
      names[i] = e.name;
      offs[i] = (int64_t)e.offset;
      lens[i] = (int64_t)e.length;
    }
    dims[0] = (size_t)n_lay;
    TRY(nde_writer_put_strings(w, "/params/layout/names", (size_t)n_lay, names));
    TRY(nde_writer_put_int64s(w, "/params/layout/offsets", 1, dims, offs));
    TRY(nde_writer_put_int64s(w, "/params/layout/lengths", 1, dims, lens));
  }
  if (test_abort_midway) _exit(137); /* as if killed while writing */

  dims[0] = nde_fit_n_x(ff->fit, 1);
  TRY(nde_writer_put_doubles(w, "/fit/x", 1, dims, x));
  const size_t n_traj = nde_data_n_traj(ff->data);
  u0 = calloc(n_traj * (size_t)n + 1, sizeof *u0);
  if (!u0) {
    st = NDE_ERR_NOMEM;
    goto fail;
  }
  for (size_t k = 0; k < n_traj; k++) {
    const nde_traj *tr = nde_data_traj(ff->data, k);
    free(Y);
    Y = calloc(tr->n * (size_t)n + 1, sizeof *Y);
    if (!Y) {
      st = NDE_ERR_NOMEM;
      goto fail;
    }
    if (nde_fit_predict(ff->fit, x, (int)k, Y) != NDE_OK)
      for (size_t q = 0; q < tr->n * (size_t)n; q++) Y[q] = NAN;
    memcpy(u0 + k * (size_t)n, Y, (size_t)n * sizeof *Y);
    char path[512];
    snprintf(path, sizeof path, "/fitted/%s", strcmp(tr->name, "/") ? tr->name + 1 : "series");
    const char **cn = nde_cli_component_names(m);
    nde_series sn;
    memset(&sn, 0, sizeof sn);
    sn.n = tr->n;
    sn.d = (size_t)n;
    sn.t = tr->t;
    sn.y = Y;
    sn.names = cn;
    st = nde_writer_put_series(w, path, &sn);
    free(cn);
    if (st != NDE_OK) {
      /* A fit that stopped early can have non-finite curves: keep the rest of the file. */
      if (st != NDE_ERR_DATA) goto fail;
      st = NDE_OK;
    }
    TRY(nde_writer_set_attr_string(w, path, "data_group", tr->name));
  }
  size_t d2[2] = {n_traj, (size_t)n};
  TRY(nde_writer_put_doubles(w, "/fit/u0", 2, d2, u0));

  const size_t len = nde_train_state_size(ff->train);
  state = malloc(len * sizeof *state);
  if (!state) {
    st = NDE_ERR_NOMEM;
    goto fail;
  }
  nde_train_get_state(ff->train, state);
  dims[0] = len;
  TRY(nde_writer_put_doubles(w, "/train/state", 1, dims, state));
  dims[0] = n_hist;
  TRY(nde_writer_put_doubles(w, "/train/history", 1, dims, n_hist ? hist : state));
  TRY(nde_writer_set_attr_string(w, "/train", "schedule", ff->schedule));
  TRY(nde_writer_set_attr_double(w, "/train", "final_loss", ff->final_loss));
  TRY(nde_writer_set_attr_double(w, "/train", "seconds", ff->seconds));

  TRY(nde_writer_set_attr_string(w, "/provenance", "command_line", ff->command_line));
  TRY(nde_writer_set_attr_string(w, "/provenance", "model_file", nde_model_filename(m)));
  TRY(nde_writer_set_attr_string(w, "/provenance", "data_file", nde_data_file(ff->data)));
  TRY(nde_writer_set_attr_string(w, "/provenance", "solver", ff->solver));
  TRY(nde_writer_set_attr_string(w, "/provenance", "grad", ff->grad));
  TRY(nde_writer_set_attr_double(w, "/provenance", "dt", ff->dt));
  TRY(nde_writer_set_attr_int64(w, "/provenance", "steps_per_interval", ff->steps_per_interval));
  TRY(nde_writer_set_attr_int64(w, "/provenance", "seed", (int64_t)ff->seed));
  TRY(nde_writer_set_attr_string(w, "/provenance", "nde_version", nde_version()));
  TRY(nde_writer_set_attr_string(w, "/provenance", "sundials_version", SUNDIALS_VERSION));
  TRY(nde_writer_set_attr_string(w, "/provenance", "hdf5_version", nde_data_hdf5_version()));
  TRY(nde_writer_set_attr_string(w, "/provenance", "blas", nde_nn_blas_config()));
  TRY(nde_writer_set_attr_int64(w, "/provenance", "blas_threads", nde_nn_blas_threads()));
  TRY(nde_writer_commit(w));
  free(state);
  free(Y);
  free(u0);
  free(names);
  free(offs);
  free(lens);
  nde_writer_destroy(&w);
  return 0;
fail:
  nde_cli_error("%s", nde_writer_errmsg(w));
  free(state);
  free(Y);
  free(u0);
  free(names);
  free(offs);
  free(lens);
  nde_writer_destroy(&w);
  return nde_cli_exit_code(st);
}

int nde_fit_file_read_state(const char *path, double **state, size_t *len, char **source) {
  nde_error err;
  nde_reader *r = NULL;
  *state = NULL;
  *source = NULL;
  nde_status st = nde_reader_open(path, &r, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_input_exit(st);
  }
  int rank;
  size_t dims[8];
  st = nde_reader_shape(r, "/train/state", &rank, dims);
  if (st == NDE_OK && rank != 1) st = NDE_ERR_DATA;
  if (st == NDE_OK) {
    *len = dims[0];
    *state = malloc((*len ? *len : 1) * sizeof **state);
    st = *state ? nde_reader_get_doubles(r, "/train/state", *len, *state) : NDE_ERR_NOMEM;
  }
  if (st == NDE_OK) st = nde_reader_get_string(r, "/model/source", source);
  if (st != NDE_OK) {
    nde_cli_error("%s:/train/state: cannot resume from this file (expected a result file of nde "
                  "fit): %s",
                  path, nde_reader_errmsg(r));
    free(*state);
    free(*source);
    *state = NULL;
    *source = NULL;
    nde_reader_destroy(&r);
    return NDE_EXIT_INPUT;
  }
  nde_reader_destroy(&r);
  return 0;
}
