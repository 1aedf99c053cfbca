/* The result file (fit.h5): the only place its layout is written and read.  The layout is
 * docs/result-format.md; the settings are one table of (name, type, place) used both ways, so a
 * setting added to the table is saved and read back by default. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define FORMAT "nde-fit"
#define SCHEMA_VERSION 2

/* ---- the settings table ---- */

typedef enum { F_DOUBLE, F_INT, F_LONG, F_U64, F_STR } ftype;
typedef struct field {
  const char *name;
  ftype type;
  size_t off;
  int optional; /* absent in files written before it existed: the default stays */
} field;

#define OFF(m) offsetof(nde_result_fit_opts, m)
static const field settings_fields[] = {
    {"solver", F_STR, OFF(solver.method), 0},
    {"dt", F_DOUBLE, OFF(solver.dt), 0},
    {"steps_per_interval", F_INT, OFF(solver.steps_per_interval), 0},
    {"max_steps", F_LONG, OFF(solver.max_steps), 0},
    {"dt_snap", F_DOUBLE, OFF(solver.dt_snap), 0},
    {"rtol", F_DOUBLE, OFF(solver.rtol), 0},
    {"atol", F_DOUBLE, OFF(solver.atol), 0},
    {"h0", F_DOUBLE, OFF(solver.h0), 0},
    {"h_min", F_DOUBLE, OFF(solver.h_min), 0},
    {"h_max", F_DOUBLE, OFF(solver.h_max), 0},
    {"fixed_step", F_INT, OFF(solver.fixed_step), 0},
    {"safety", F_DOUBLE, OFF(solver.safety), 0},
    {"fac_min", F_DOUBLE, OFF(solver.fac_min), 0},
    {"fac_max", F_DOUBLE, OFF(solver.fac_max), 0},
    {"pi_beta", F_DOUBLE, OFF(solver.pi_beta), 0},
    {"max_retries", F_INT, OFF(solver.max_retries), 0},
    {"retry_shrink", F_DOUBLE, OFF(solver.retry_shrink), 0},
    {"stiff_test_after", F_LONG, OFF(solver.stiff_test_after), 0},
    {"stiff_test_count", F_INT, OFF(solver.stiff_test_count), 0},
    {"stiff_bound", F_DOUBLE, OFF(solver.stiff_bound), 0},
    {"cvode_linsol", F_STR, OFF(solver.cvode_linsol), 0},
    {"cvode_max_order", F_INT, OFF(solver.cvode_max_order), 0},
    {"grad", F_STR, OFF(grad.method), 0},
    {"grad_recompute", F_INT, OFF(grad.recompute), 0},
    {"grad_rtol", F_DOUBLE, OFF(grad.rtol), 0},
    {"grad_atol", F_DOUBLE, OFF(grad.atol), 0},
    {"grad_seminorm", F_INT, OFF(grad.seminorm), 0},
    {"grad_checkpoint_steps", F_LONG, OFF(grad.checkpoint_steps), 0},
    {"grad_interp", F_STR, OFF(grad.interp), 0},
    {"grad_auto_forward_max_params", F_INT, OFF(grad.auto_forward_max_params), 0},
    {"loss_sum", F_INT, OFF(objective.loss_sum), 0},
    {"scale_by_std", F_INT, OFF(objective.scale_by_std), 0},
    {"log_space", F_INT, OFF(objective.log_space), 0},
    {"learn_u0", F_INT, OFF(objective.learn_u0), 0},
    {"shoot_interval", F_INT, OFF(objective.shoot_interval), 0},
    {"shoot_weight", F_DOUBLE, OFF(objective.shoot_weight), 0},
    {"batch_series", F_INT, OFF(objective.batch_series), 0},
    {"batch_time", F_INT, OFF(objective.batch_time), 0},
    {"batch_windows", F_INT, OFF(objective.batch_windows), 0},
    {"scale_states", F_INT, OFF(objective.scale_states), 0},
    {"batch_rows", F_INT, OFF(objective.batch_rows), 1},
    {"batch_segments", F_INT, OFF(objective.autonomous), 1},
    {"schedule", F_STR, OFF(schedule), 0},
    {"lr", F_DOUBLE, OFF(lr), 0},
    {"seed", F_U64, OFF(seed), 0},
    {"max_failures", F_INT, OFF(max_failures), 0},
    {"checkpoint_every", F_LONG, OFF(checkpoint_every), 0},
    {"keep_last", F_INT, OFF(keep_last), 0},
    {"patience", F_INT, OFF(patience), 0},
    {"phase_patience", F_INT, OFF(phase_patience), 0},
    {"phase_tol", F_DOUBLE, OFF(phase_tol), 0},
    {"validate_tail", F_DOUBLE, OFF(validate_tail), 0},
    {"validate_series", F_INT, OFF(validate_series), 0},
    {"l2", F_DOUBLE, OFF(objective.l2), 0},
    {"l1", F_DOUBLE, OFF(objective.l1), 0},
    {"command_line", F_STR, OFF(command_line), 0},
    {"data_label", F_STR, OFF(data_label), 0},
};
#undef OFF
#define N_FIELDS (sizeof settings_fields / sizeof *settings_fields)

/* The provenance keys a result records (all strings). */
static const char *const prov_keys[] = {"created", "command_line", "model_file", "data_file",
                                        "nde_version", "sundials_version", "hdf5_version",
                                        "blas", "blas_threads", "threads", "mpi_ranks",
                                        NULL};

/* FNV-1a (64 bits) of the values that decide where a resumed fit goes (the kept and last
 * parameters, the histories, the training state and the optimised vector), stored with them
 * (/train attribute checksum) so that a damaged file is refused instead of resumed. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 1099511628211ull;
  }
  return h;
}

static void train_checksum(const nde_result *r, char out[40]) {
  uint64_t h = 1469598103934665603ull;
  h = fnv(h, r->theta, r->n_theta * sizeof *r->theta);
  h = fnv(h, r->theta_last, r->n_theta * sizeof *r->theta_last);
  if (r->hist) h = fnv(h, r->hist, r->n_hist * sizeof *r->hist);
  if (r->scores) h = fnv(h, r->scores, r->n_scores * sizeof *r->scores);
  if (r->train_state) {
    h = fnv(h, r->train_state, r->train_len * sizeof *r->train_state);
    h = fnv(h, r->train_words, sizeof r->train_words);
  }
  if (r->x) h = fnv(h, r->x, r->nx * sizeof *r->x);
  snprintf(out, 40, "fnv1a64:%016llx", (unsigned long long)h);
}

/* ---- writing ---- */

#define TRY(call)                            \
  do {                                       \
    if ((st = (call)) != NDE_OK) goto fail;  \
  } while (0)

static nde_status put_settings(nde_writer *w, const nde_result_fit_opts *s) {
  nde_status st = NDE_OK;
  for (size_t i = 0; i < N_FIELDS && st == NDE_OK; i++) {
    const field *f = &settings_fields[i];
    const char *p = (const char *)s + f->off;
    switch (f->type) {
      case F_DOUBLE: st = nde_writer_set_attr_double(w, "/settings", f->name, *(const double *)p); break;
      case F_INT: st = nde_writer_set_attr_int64(w, "/settings", f->name, *(const int *)p); break;
      case F_LONG: st = nde_writer_set_attr_int64(w, "/settings", f->name, *(const long *)p); break;
      case F_U64:
        st = nde_writer_set_attr_int64(w, "/settings", f->name, (int64_t)*(const uint64_t *)p);
        break;
      case F_STR: {
        const char *v = *(const char *const *)p;
        st = nde_writer_set_attr_string(w, "/settings", f->name, v ? v : "");
        break;
      }
    }
  }
  return st;
}

/* The path of series k's group under a parent: the data group's own name ("/run1" -> "run1"),
 * "series" for a root series. */
static char *series_path(const char *parent, const char *name) {
  nde_str s = NDE_STR_INIT;
  nde_str_addf(&s, "%s/%s", parent, strcmp(name, "/") ? name + (name[0] == '/') : "series");
  return nde_str_take(&s);
}

/* The inputs and constants of a fitted series as the data convention's extra parts. */
static nde_status fitted_extra(const nde_result *r, const nde__rseries *se, nde_series_extra *x) {
  const nde_model *m = r->model;
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  memset(x, 0, sizeof *x);
  if (mi > 0 && se->n_u > 0) {
    const char **in = calloc((size_t)mi, sizeof *in);
    if (!in) return NDE_ERR_NOMEM;
    for (int i = 0; i < mi; i++) {
      nde_model_input_info ii;
      nde_model_get_input(m, i, &ii);
      in[i] = ii.name;
    }
    x->m = (size_t)mi;
    x->n_u = se->n_u;
    x->u_t = se->u_t;
    x->u = se->u;
    x->input_names = in;
  }
  if (ndc > 0 && se->consts) {
    const char **cn = calloc((size_t)ndc, sizeof *cn);
    if (!cn) return NDE_ERR_NOMEM;
    for (int i = 0; i < nde_model_n_consts(m); i++) {
      nde_model_const_info ci;
      nde_model_get_const(m, i, &ci);
      if (ci.from_data) cn[ci.column] = ci.name;
    }
    x->n_consts = (size_t)ndc;
    x->const_names = cn;
    x->consts = se->consts;
  }
  return NDE_OK;
}

static void fitted_extra_free(nde_series_extra *x) {
  free((void *)x->input_names);
  free((void *)x->const_names);
}

/* The measured inputs and constants of every series: /series/inputs/{names,n,t,u} and
 * /series/consts/{names,values}, when the model declares them. */
static nde_status put_series_data(nde_writer *w, const nde_result *r) {
  const nde_model *m = r->model;
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m), S = r->n_series;
  nde_status st = NDE_OK;
  size_t dims[2];
  if (mi > 0) {
    nde_series_extra x;
    if ((st = fitted_extra(r, &r->series[0], &x)) != NDE_OK) return st;
    size_t total = 0;
    for (int k = 0; k < S; k++) total += r->series[k].n_u;
    int64_t *cnt = calloc((size_t)S, sizeof *cnt);
    double *t = nde__dalloc(total + 1), *u = nde__dalloc(total * (size_t)mi + 1);
    if (!cnt || !t || !u || !x.input_names) st = NDE_ERR_NOMEM;
    size_t at = 0;
    for (int k = 0; k < S && st == NDE_OK; k++) {
      const nde__rseries *se = &r->series[k];
      cnt[k] = (int64_t)se->n_u;
      memcpy(t + at, se->u_t, se->n_u * sizeof *t);
      memcpy(u + at * (size_t)mi, se->u, se->n_u * (size_t)mi * sizeof *u);
      at += se->n_u;
    }
    if (st == NDE_OK) st = nde_writer_put_strings(w, "/series/inputs/names", (size_t)mi, x.input_names);
    dims[0] = (size_t)S;
    if (st == NDE_OK) st = nde_writer_put_int64s(w, "/series/inputs/n", 1, dims, cnt);
    dims[0] = total;
    dims[1] = (size_t)mi;
    if (st == NDE_OK) st = nde_writer_put_doubles(w, "/series/inputs/t", 1, dims, t);
    if (st == NDE_OK) st = nde_writer_put_doubles(w, "/series/inputs/u", 2, dims, u);
    fitted_extra_free(&x);
    free(cnt);
    free(t);
    free(u);
  }
  if (st == NDE_OK && ndc > 0) {
    nde_series_extra x;
    if ((st = fitted_extra(r, &r->series[0], &x)) != NDE_OK) return st;
    double *v = nde__dalloc((size_t)S * (size_t)ndc);
    if (!v || !x.const_names) st = NDE_ERR_NOMEM;
    for (int k = 0; k < S && st == NDE_OK; k++)
      memcpy(v + (size_t)k * (size_t)ndc, r->series[k].consts, (size_t)ndc * sizeof *v);
    if (st == NDE_OK) st = nde_writer_put_strings(w, "/series/consts/names", (size_t)ndc, x.const_names);
    dims[0] = (size_t)S;
    dims[1] = (size_t)ndc;
    if (st == NDE_OK) st = nde_writer_put_doubles(w, "/series/consts/values", 2, dims, v);
    fitted_extra_free(&x);
    free(v);
  }
  return st;
}

/* The fitted trajectory of every series at its data times (the kept parameters). */
static nde_status put_fitted(nde_writer *w, const nde_result *r, const char **names) {
  const int n = nde_model_state_dim(r->model);
  nde_status st = NDE_OK;
  for (int k = 0; k < r->n_series && st == NDE_OK; k++) {
    const nde__rseries *se = &r->series[k];
    double *Y = nde__dalloc(se->n_obs * (size_t)n);
    char *path = series_path("/fitted", se->name);
    if (!Y || !path) {
      free(Y);
      nde_free(path);
      return NDE_ERR_NOMEM;
    }
    nde_start start = {.kind = NDE_START_FITTED, .series = k};
    nde_solve_stats ss;
    st = nde_result_integrate(r, &start, se->n_obs, se->t, NULL, Y, &ss, NULL);
    if (st == NDE_OK) {
      /* A fit that stopped can have non-finite curves: they are missing values here. */
      for (size_t q = 0; q < se->n_obs * (size_t)n; q++)
        if (!isfinite(Y[q])) Y[q] = NAN;
      nde_series sn;
      memset(&sn, 0, sizeof sn);
      sn.n = se->n_obs;
      sn.d = (size_t)n;
      sn.t = se->t;
      sn.y = Y;
      sn.names = names;
      nde_series_extra x;
      st = fitted_extra(r, se, &x);
      if (st == NDE_OK) st = nde_writer_put_series_ex(w, path, &sn, &x);
      fitted_extra_free(&x);
      if (st == NDE_ERR_DATA) st = NDE_OK; /* e.g. a column that is all NaN */
      if (st == NDE_OK) st = nde_writer_set_attr_string(w, path, "data_group", se->name);
    } else if (st != NDE_ERR_NOMEM) {
      st = NDE_OK; /* a model that cannot be integrated still has a result file */
    }
    free(Y);
    nde_free(path);
  }
  return st;
}

nde_status nde__result_save_ex(const nde_result *r, const char *path, int abort_midway,
                               nde_error *err) {
  if (!r || !path) return nde__fail(err, NDE_ERR_ARG, "nde_result_save: no result or path");
  nde_writer *w = NULL;
  nde_status st = nde_writer_create(path, &w, err);
  if (st != NDE_OK) return st;
  const nde_model *m = r->model;
  const int n = nde_model_state_dim(m), S = r->n_series;
  const char **names = NULL, **lnames = NULL, **snames = NULL;
  int64_t *offs = NULL, *lens = NULL, *nobs = NULL, *iters = NULL;
  double *u0 = NULL, *tall = NULL;
  size_t dims[2];

  TRY(nde_writer_set_attr_string(w, "/", "format", FORMAT));
  TRY(nde_writer_set_attr_int64(w, "/", "schema_version", SCHEMA_VERSION));
  TRY(nde_writer_set_attr_string(w, "/", "status", nde_fit_status_str(r->status)));
  TRY(nde_writer_set_attr_string(w, "/", "message", nde_result_message(r)));
  TRY(nde_writer_set_attr_string(w, "/", "nde_version", nde_version()));
  TRY(nde_writer_set_attr_int64(w, "/", "iteration", (int64_t)r->n_hist));
  TRY(nde_writer_put_string(w, "/model/source", nde_model_source(m)));
  TRY(nde_writer_set_attr_string(w, "/model/source", "filename", nde_model_filename(m)));

  dims[0] = r->n_theta;
  TRY(nde_writer_put_doubles(w, "/params/theta", 1, dims, r->theta));
  TRY(nde_writer_put_doubles(w, "/params/theta_last", 1, dims, r->theta_last));
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK) continue;
    char *p = series_path("/params/values", pi.name);
    if (!p) {
      st = NDE_ERR_NOMEM;
      goto fail;
    }
    if (pi.per_series) {
      double *v = nde__dalloc((size_t)r->n_series);
      if (!v) {
        nde_free(p);
        st = NDE_ERR_NOMEM;
        goto fail;
      }
      for (int k = 0; k < r->n_series; k++) v[k] = nde_model_param_value_series(m, i, r->theta, k);
      dims[0] = (size_t)r->n_series;
      st = nde_writer_put_doubles(w, p, 1, dims, v);
      free(v);
      if (st == NDE_OK) st = nde_writer_set_attr_int64(w, p, "per_series", 1);
    } else {
      const double v = nde_model_param_value(m, i, r->theta);
      st = nde_writer_put_doubles(w, p, 0, dims, &v);
    }
    if (st == NDE_OK) st = nde_writer_set_attr_int64(w, p, "learnable", pi.learnable);
    if (st == NDE_OK) st = nde_writer_set_attr_int64(w, p, "positive", pi.positive);
    if (st == NDE_OK && pi.bounded) st = nde_writer_set_attr_double(w, p, "lo", pi.lo);
    if (st == NDE_OK && pi.bounded) st = nde_writer_set_attr_double(w, p, "hi", pi.hi);
    nde_free(p);
    if (st != NDE_OK) goto fail;
  }
  const int n_lay = nde_model_n_layout(m);
  if (n_lay > 0) {
    lnames = calloc((size_t)n_lay, sizeof *lnames);
    offs = calloc((size_t)n_lay, sizeof *offs);
    lens = calloc((size_t)n_lay, sizeof *lens);
    if (!lnames || !offs || !lens) {
      st = NDE_ERR_NOMEM;
      goto fail;
    }
    for (int i = 0; i < n_lay; i++) {
      nde_model_layout_entry e;
      if (nde_model_get_layout(m, i, &e) != NDE_OK) continue;
      lnames[i] = e.name;
      offs[i] = (int64_t)e.offset;
      lens[i] = (int64_t)e.length;
    }
    dims[0] = (size_t)n_lay;
    TRY(nde_writer_put_strings(w, "/params/layout/names", (size_t)n_lay, lnames));
    TRY(nde_writer_put_int64s(w, "/params/layout/offsets", 1, dims, offs));
    TRY(nde_writer_put_int64s(w, "/params/layout/lengths", 1, dims, lens));
  }
  TRY(nde_writer_set_attr_int64(w, "/params/kept", "is_best", r->kept.is_best));
  TRY(nde_writer_set_attr_int64(w, "/params/kept", "iteration", r->kept.iteration));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "score", r->kept.score));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "loss", r->kept.loss));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "last_loss", r->kept.last_loss));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "validation", r->kept.validation));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "noise_loss", r->kept.noise_loss));
  TRY(nde_writer_set_attr_double(w, "/params/kept", "noise_ratio", r->kept.noise_ratio));
  if (r->warning) TRY(nde_writer_set_attr_string(w, "/", "warning", r->warning));
#ifdef NDE_TEST_HOOKS
  if (abort_midway) _exit(137); /* as if killed while writing */
#else
  (void)abort_midway;
#endif

  TRY(put_settings(w, &r->settings));
  if (r->noise_std) {
    dims[0] = (size_t)nde__n_columns(m);
    TRY(nde_writer_put_doubles(w, "/settings/noise_std", 1, dims, r->noise_std));
  }

  /* Series: names, times (concatenated) and fitted initial states. */
  size_t total = 0;
  for (int k = 0; k < S; k++) total += r->series[k].n_obs;
  snames = calloc((size_t)S, sizeof *snames);
  nobs = calloc((size_t)S, sizeof *nobs);
  u0 = nde__dalloc((size_t)S * (size_t)n);
  tall = nde__dalloc(total);
  names = calloc((size_t)n + 1, sizeof *names);
  if (!snames || !nobs || !u0 || !tall || !names) {
    st = NDE_ERR_NOMEM;
    goto fail;
  }
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  size_t at = 0;
  for (int k = 0; k < S; k++) {
    const nde__rseries *se = &r->series[k];
    snames[k] = se->name;
    nobs[k] = (int64_t)se->n_obs;
    memcpy(u0 + (size_t)k * (size_t)n, se->u0, (size_t)n * sizeof *u0);
    memcpy(tall + at, se->t, se->n_obs * sizeof *tall);
    at += se->n_obs;
  }
  dims[0] = (size_t)S;
  dims[1] = (size_t)n;
  TRY(nde_writer_put_strings(w, "/series/names", (size_t)S, snames));
  TRY(nde_writer_put_int64s(w, "/series/n_obs", 1, dims, nobs));
  TRY(nde_writer_put_doubles(w, "/series/u0", 2, dims, u0));
  dims[0] = total;
  TRY(nde_writer_put_doubles(w, "/series/t", 1, dims, tall));
  TRY(put_series_data(w, r));
  TRY(put_fitted(w, r, names));

  /* Training: histories and the resumable state. */
  dims[0] = r->n_hist;
  TRY(nde_writer_put_doubles(w, "/train/history", 1, dims, r->hist ? r->hist : tall));
  iters = calloc(r->n_scores + 1, sizeof *iters);
  if (!iters) {
    st = NDE_ERR_NOMEM;
    goto fail;
  }
  for (size_t i = 0; i < r->n_scores; i++) iters[i] = r->score_iter[i];
  dims[0] = r->n_scores;
  TRY(nde_writer_put_doubles(w, "/train/scores", 1, dims, r->scores ? r->scores : tall));
  TRY(nde_writer_put_int64s(w, "/train/score_iter", 1, dims, iters));
  TRY(nde_writer_set_attr_double(w, "/train", "seconds", r->seconds));
  {
    int64_t pe[NDE_MAX_PHASES];
    for (int k = 0; k < r->n_phases; k++) pe[k] = r->phase_end[k];
    dims[0] = (size_t)r->n_phases;
    TRY(nde_writer_put_int64s(w, "/train/phase_end", 1, dims, pe));
  }
  dims[0] = 1;
  TRY(nde_writer_put_uint64s(w, "/train/data_hash", 1, dims, &r->data_hash));
  if (r->train_state) {
    dims[0] = r->train_len;
    TRY(nde_writer_put_doubles(w, "/train/state", 1, dims, r->train_state));
    dims[0] = NDE_TRAIN_STATE_WORDS;
    TRY(nde_writer_put_uint64s(w, "/train/words", 1, dims, r->train_words));
  }
  if (r->x) {
    dims[0] = r->nx;
    TRY(nde_writer_put_doubles(w, "/train/x", 1, dims, r->x));
  }
  {
    char sum[40];
    train_checksum(r, sum);
    TRY(nde_writer_set_attr_string(w, "/train", "checksum", sum));
  }
  for (int i = 0; i < r->n_prov; i++)
    TRY(nde_writer_set_attr_string(w, "/provenance", r->prov[i].key, r->prov[i].value));
  TRY(nde__result_write_unc(w, r));
  TRY(nde_writer_commit(w));
  goto done;
fail:
  nde__fail(err, st, "%s", st == NDE_ERR_NOMEM ? "out of memory writing the result"
                                                : nde_writer_errmsg(w));
done:
  nde_writer_destroy(&w);
  free(names);
  free(lnames);
  free(snames);
  free(offs);
  free(lens);
  free(nobs);
  free(iters);
  free(u0);
  free(tall);
  return st;
}

nde_status nde_result_save(const nde_result *r, const char *path, nde_error *err) {
  return nde__result_save_ex(r, path, 0, err);
}

/* ---- reading ---- */

typedef struct rd {
  nde_reader *h;
  const char *file;
  nde_error *err;
} rd;

static nde_status missing(rd *R, const char *place, const char *what) {
  return nde__fail(R->err, NDE_ERR_DATA, "%s:%s: %s (expected a result file of nde fit %d.%d or "
                   "later)",
                   R->file, place, what, 0, 2);
}

/* A 1-D (or scalar) numeric dataset of exactly n elements. */
static nde_status get_vec(rd *R, const char *path, size_t n, double *x) {
  if (nde_reader_kind(R->h, path) != NDE_H5_DATASET) return missing(R, path, "missing");
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  nde_status st = nde_reader_shape(R->h, path, &rank, dims);
  size_t count = 1;
  for (int i = 0; st == NDE_OK && i < rank; i++) count *= dims[i];
  if (st != NDE_OK || count != n) {
    char what[200];
    snprintf(what, sizeof what, "has %zu values, expected %zu", count, n);
    return nde__fail(R->err, NDE_ERR_DATA, "%s:%s: %s", R->file, path, what);
  }
  if (nde_reader_get_doubles(R->h, path, n, x) != NDE_OK)
    return nde__fail(R->err, NDE_ERR_DATA, "%s", nde_reader_errmsg(R->h));
  return NDE_OK;
}

/* The length of a 1-D dataset (0 when absent and optional). */
static nde_status get_len(rd *R, const char *path, int required, size_t *n) {
  *n = 0;
  if (nde_reader_kind(R->h, path) != NDE_H5_DATASET)
    return required ? missing(R, path, "missing") : NDE_OK;
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  if (nde_reader_shape(R->h, path, &rank, dims) != NDE_OK || rank != 1)
    return missing(R, path, "not a 1-D dataset");
  *n = dims[0];
  return NDE_OK;
}

/* A list of names that must equal the model's (inputs or constants from data, in order). */
static nde_status check_names(rd *R, const char *path, size_t n, const char *const *want) {
  size_t got = 0;
  char **names = NULL;
  nde_status st = NDE_OK;
  if (nde_reader_kind(R->h, path) != NDE_H5_DATASET ||
      nde_reader_get_strings(R->h, path, &got, &names) != NDE_OK)
    return missing(R, path, "missing or not strings (the model declares them)");
  for (size_t i = 0; i < n && st == NDE_OK; i++)
    if (got != n || strcmp(names[i], want[i]) != 0)
      st = nde__fail(R->err, NDE_ERR_DATA, "%s:%s: does not match the model's names (expected "
                     "'%s' at %zu)", R->file, path, want[i], i);
  free(names);
  return st;
}

/* The measured inputs and constants of every series (written by put_series_data). */
static nde_status get_series_data(rd *R, nde_result *r) {
  const nde_model *m = r->model;
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  const size_t S = (size_t)r->n_series;
  nde_status st = NDE_OK;
  const char **want = calloc((size_t)(mi > ndc ? mi : ndc) + 1, sizeof *want);
  int64_t *cnt = calloc(S, sizeof *cnt);
  double *t = NULL, *u = NULL, *v = NULL;
  if (!want || !cnt) {
    st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (mi > 0) {
    for (int i = 0; i < mi; i++) {
      nde_model_input_info ii;
      nde_model_get_input(m, i, &ii);
      want[i] = ii.name;
    }
    if ((st = check_names(R, "/series/inputs/names", (size_t)mi, want)) != NDE_OK) goto done;
    size_t len, total = 0;
    if ((st = get_len(R, "/series/inputs/n", 1, &len)) != NDE_OK) goto done;
    if (len != S || nde_reader_get_int64s(R->h, "/series/inputs/n", S, cnt) != NDE_OK) {
      st = missing(R, "/series/inputs/n", "does not match /series/names");
      goto done;
    }
    for (size_t k = 0; k < S; k++) {
      if (cnt[k] < 1 || (uint64_t)cnt[k] > (uint64_t)1 << 40) {
        st = missing(R, "/series/inputs/n", "holds a count out of range");
        goto done;
      }
      total += (size_t)cnt[k];
    }
    t = nde__dalloc(total);
    u = nde__dalloc(total * (size_t)mi);
    if (!t || !u) {
      st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if ((st = get_vec(R, "/series/inputs/t", total, t)) != NDE_OK ||
        (st = get_vec(R, "/series/inputs/u", total * (size_t)mi, u)) != NDE_OK)
      goto done;
    size_t at = 0;
    for (size_t k = 0; k < S; k++) {
      const nde_input_series inp = {(size_t)cnt[k], t + at, u + at * (size_t)mi};
      for (size_t i = 0; i < inp.n; i++)
        if (!isfinite(inp.t[i]) || (i && !(inp.t[i] > inp.t[i - 1]))) {
          st = nde__fail(R->err, NDE_ERR_DATA, "%s:/series/inputs/t: the input times of series "
                         "%zu are not finite and strictly increasing at index %zu", R->file, k, i);
          goto done;
        }
      if (nde__rseries_set_binding(&r->series[k], mi, 0, &inp, NULL) != NDE_OK) {
        st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
      at += inp.n;
    }
  }
  if (ndc > 0) {
    for (int i = 0; i < nde_model_n_consts(m); i++) {
      nde_model_const_info ci;
      nde_model_get_const(m, i, &ci);
      if (ci.from_data) want[ci.column] = ci.name;
    }
    if ((st = check_names(R, "/series/consts/names", (size_t)ndc, want)) != NDE_OK) goto done;
    v = nde__dalloc(S * (size_t)ndc);
    if (!v) {
      st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if ((st = get_vec(R, "/series/consts/values", S * (size_t)ndc, v)) != NDE_OK) goto done;
    for (size_t k = 0; k < S; k++) {
      nde__rseries *se = &r->series[k];
      const nde_input_series inp = {se->n_u, se->u_t, se->u};
      if (nde__rseries_set_binding(se, mi, ndc, &inp, v + k * (size_t)ndc) != NDE_OK) {
        st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
    }
  }
done:
  free(want);
  free(cnt);
  free(t);
  free(u);
  free(v);
  return st;
}

static nde_status get_settings(rd *R, nde_result_fit_opts *s, char **strs) {
  if (nde_reader_kind(R->h, "/settings") != NDE_H5_GROUP) return missing(R, "/settings", "missing");
  int n_str = 0;
  for (size_t i = 0; i < N_FIELDS; i++) {
    const field *f = &settings_fields[i];
    char *p = (char *)s + f->off;
    if (!nde_reader_has_attr(R->h, "/settings", f->name)) {
      if (f->optional) continue;
      char place[128];
      snprintf(place, sizeof place, "/settings attribute %s", f->name);
      return missing(R, place, "missing");
    }
    nde_status st = NDE_OK;
    int64_t k = 0;
    double d = 0;
    switch (f->type) {
      case F_DOUBLE:
        st = nde_reader_get_attr_double(R->h, "/settings", f->name, &d);
        *(double *)p = d;
        break;
      case F_INT:
        st = nde_reader_get_attr_int64(R->h, "/settings", f->name, &k);
        if (k < -2147483647 || k > 2147483647) st = NDE_ERR_DATA;
        *(int *)p = (int)k;
        break;
      case F_LONG:
        st = nde_reader_get_attr_int64(R->h, "/settings", f->name, &k);
        *(long *)p = (long)k;
        break;
      case F_U64:
        st = nde_reader_get_attr_int64(R->h, "/settings", f->name, &k);
        *(uint64_t *)p = (uint64_t)k;
        break;
      case F_STR:
        st = nde_reader_get_attr_string(R->h, "/settings", f->name, &strs[n_str]);
        *(const char **)p = strs[n_str++];
        break;
    }
    if (st != NDE_OK) {
      char place[128];
      snprintf(place, sizeof place, "/settings attribute %s", f->name);
      return missing(R, place, "unreadable or of the wrong type");
    }
  }
  return NDE_OK;
}

static nde_status read_result(rd *R, nde_result **out) {
  nde_error *err = R->err;
  nde_reader *h = R->h;
  char *source = NULL, *filename = NULL, *fmt = NULL, *status = NULL, *msg = NULL;
  char *strs[N_FIELDS];
  char **snames = NULL;
  int64_t *nobs = NULL, *iters = NULL, k64 = 0;
  double *u0 = NULL, *tall = NULL;
  nde_model *model = NULL;
  nde_result *r = NULL;
  nde_status st;
  memset(strs, 0, sizeof strs);
  if (nde_reader_get_attr_string(h, "/", "format", &fmt) != NDE_OK || strcmp(fmt, FORMAT)) {
    st = missing(R, "/ attribute format", "not 'nde-fit'");
    goto done;
  }
  if (nde_reader_get_attr_int64(h, "/", "schema_version", &k64) != NDE_OK ||
      k64 != SCHEMA_VERSION) {
    st = nde__fail(err, NDE_ERR_DATA, "%s:/ attribute schema_version: %s (expected %d, written "
                   "by nde 0.2 or later)",
                   R->file, k64 ? "another version" : "missing", SCHEMA_VERSION);
    goto done;
  }
  if (nde_reader_get_string(h, "/model/source", &source) != NDE_OK) {
    st = missing(R, "/model/source", "missing or unreadable");
    goto done;
  }
  if (nde_reader_get_attr_string(h, "/model/source", "filename", &filename) != NDE_OK)
    filename = NULL;
  nde_str label = NDE_STR_INIT;
  nde_str_addf(&label, "%s:/model/source", R->file);
  st = nde_model_load_string(source, strlen(source), filename ? filename : label.data, &model, err);
  nde_str_release(&label);
  if (st != NDE_OK) goto done;
  size_t S = 0, total = 0, dummy;
  if (nde_reader_kind(h, "/series/names") != NDE_H5_DATASET ||
      nde_reader_get_strings(h, "/series/names", &S, &snames) != NDE_OK || S < 1 ||
      S > (size_t)NDE_FIT_MAX_SERIES) {
    st = missing(R, "/series/names", "missing or empty");
    goto done;
  }
  r = nde__result_new(model, (int)S, err);
  if (!r) {
    st = err ? err->status : NDE_ERR_NOMEM;
    goto done;
  }
  nde_result_fit_opts s = nde_result_fit_opts_default();
  if ((st = get_settings(R, &s, strs)) != NDE_OK) goto done;
  if ((st = nde__result_set_settings(r, &s, err)) != NDE_OK) {
    if (err) {
      char tmp[NDE_ERROR_MSG_MAX];
      snprintf(tmp, sizeof tmp, "%s", err->msg);
      nde__fail(err, NDE_ERR_DATA, "%s:/settings: %s", R->file, tmp);
    }
    st = NDE_ERR_DATA;
    goto done;
  }
  const int n = nde_model_state_dim(r->model);
  if ((st = get_vec(R, "/params/theta", r->n_theta, r->theta)) != NDE_OK ||
      (st = get_vec(R, "/params/theta_last", r->n_theta, r->theta_last)) != NDE_OK)
    goto done;
  for (size_t i = 0; i < r->n_theta; i++)
    if (!isfinite(r->theta[i])) {
      st = nde__fail(err, NDE_ERR_DATA, "%s:/params/theta: value %zu is not finite (expected "
                     "finite parameters)", R->file, i);
      goto done;
    }
  int64_t v64 = 0;
  if (nde_reader_get_attr_int64(h, "/params/kept", "is_best", &v64) != NDE_OK) {
    st = missing(R, "/params/kept", "missing");
    goto done;
  }
  r->kept.is_best = v64 != 0;
  nde_reader_get_attr_int64(h, "/params/kept", "iteration", &v64);
  r->kept.iteration = (long)v64;
  nde_reader_get_attr_double(h, "/params/kept", "score", &r->kept.score);
  nde_reader_get_attr_double(h, "/params/kept", "loss", &r->kept.loss);
  nde_reader_get_attr_double(h, "/params/kept", "last_loss", &r->kept.last_loss);
  nde_reader_get_attr_double(h, "/params/kept", "validation", &r->kept.validation);
  nde_reader_get_attr_double(h, "/params/kept", "noise_loss", &r->kept.noise_loss);
  nde_reader_get_attr_double(h, "/params/kept", "noise_ratio", &r->kept.noise_ratio);
  if (nde_reader_has_attr(h, "/", "warning")) {
    char *wm = NULL;
    if (nde_reader_get_attr_string(h, "/", "warning", &wm) == NDE_OK) r->warning = wm;
  }
  if (nde_reader_kind(h, "/settings/noise_std") == NDE_H5_DATASET) {
    /* One value per column; files written before observables had noise levels hold the states'
     * only, and their observables' levels are unknown. */
    const int nc = nde__n_columns(r->model);
    size_t len = 0;
    if ((st = get_len(R, "/settings/noise_std", 1, &len)) != NDE_OK) goto done;
    if (len != (size_t)n || nc == n) len = (size_t)nc;
    r->noise_std = nde__dalloc((size_t)nc);
    if (!r->noise_std) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    for (int j = 0; j < nc; j++) r->noise_std[j] = NAN;
    if ((st = get_vec(R, "/settings/noise_std", len, r->noise_std)) != NDE_OK) goto done;
    r->settings.noise_std = r->noise_std;
  }

  /* Series. */
  nobs = calloc(S, sizeof *nobs);
  u0 = nde__dalloc(S * (size_t)n);
  if (!nobs || !u0) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = get_len(R, "/series/n_obs", 1, &dummy)) != NDE_OK) goto done;
  if (dummy != S || nde_reader_get_int64s(h, "/series/n_obs", S, nobs) != NDE_OK) {
    st = missing(R, "/series/n_obs", "does not match /series/names");
    goto done;
  }
  for (size_t k = 0; k < S; k++) {
    if (nobs[k] < 1 || (uint64_t)nobs[k] > (uint64_t)1 << 40) {
      st = missing(R, "/series/n_obs", "holds a count out of range");
      goto done;
    }
    total += (size_t)nobs[k];
  }
  if ((st = get_len(R, "/series/t", 1, &dummy)) != NDE_OK) goto done;
  if (dummy != total) {
    st = missing(R, "/series/t", "does not match /series/n_obs");
    goto done;
  }
  tall = nde__dalloc(total);
  if (!tall) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = get_vec(R, "/series/t", total, tall)) != NDE_OK ||
      (st = get_vec(R, "/series/u0", S * (size_t)n, u0)) != NDE_OK)
    goto done;
  r->series = calloc(S, sizeof *r->series);
  if (!r->series) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  r->n_series = (int)S;
  size_t at = 0;
  for (size_t k = 0; k < S; k++) {
    nde__rseries *se = &r->series[k];
    size_t len = strlen(snames[k]) + 1;
    se->name = malloc(len);
    se->n_obs = (size_t)nobs[k];
    se->t = nde__dalloc(se->n_obs);
    se->u0 = nde__dalloc((size_t)n);
    if (!se->name || !se->t || !se->u0) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    memcpy(se->name, snames[k], len);
    memcpy(se->t, tall + at, se->n_obs * sizeof *se->t);
    memcpy(se->u0, u0 + k * (size_t)n, (size_t)n * sizeof *se->u0);
    for (size_t i = 0; i + 1 < se->n_obs; i++)
      if (!(se->t[i + 1] > se->t[i])) {
        st = nde__fail(err, NDE_ERR_DATA, "%s:/series/t: the times of series %zu are not "
                       "strictly increasing at index %zu", R->file, k, i + 1);
        goto done;
      }
    at += se->n_obs;
  }
  if ((st = get_series_data(R, r)) != NDE_OK) goto done;

  /* Training histories and state. */
  if ((st = get_len(R, "/train/history", 1, &r->n_hist)) != NDE_OK) goto done;
  r->hist = nde__dalloc(r->n_hist);
  if (!r->hist) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = get_vec(R, "/train/history", r->n_hist, r->hist)) != NDE_OK) goto done;
  if ((st = get_len(R, "/train/scores", 1, &r->n_scores)) != NDE_OK) goto done;
  r->scores = nde__dalloc(r->n_scores);
  r->score_iter = calloc(r->n_scores + 1, sizeof *r->score_iter);
  iters = calloc(r->n_scores + 1, sizeof *iters);
  if (!r->scores || !r->score_iter || !iters) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = get_vec(R, "/train/scores", r->n_scores, r->scores)) != NDE_OK) goto done;
  if (nde_reader_get_int64s(h, "/train/score_iter", r->n_scores, iters) != NDE_OK) {
    st = missing(R, "/train/score_iter", "missing or not matching /train/scores");
    goto done;
  }
  for (size_t i = 0; i < r->n_scores; i++) r->score_iter[i] = (long)iters[i];
  nde_reader_get_attr_double(h, "/train", "seconds", &r->seconds);
  {
    size_t np = 0;
    int64_t pe[NDE_MAX_PHASES];
    if ((st = get_len(R, "/train/phase_end", 1, &np)) != NDE_OK) goto done;
    if (np > NDE_MAX_PHASES || nde_reader_get_int64s(h, "/train/phase_end", np, pe) != NDE_OK) {
      st = missing(R, "/train/phase_end", "unreadable or too long");
      goto done;
    }
    r->n_phases = (int)np;
    for (size_t k = 0; k < np; k++) r->phase_end[k] = (long)pe[k];
  }
  if (nde_reader_get_uint64s(h, "/train/data_hash", 1, &r->data_hash) != NDE_OK) {
    st = missing(R, "/train/data_hash", "missing");
    goto done;
  }
  if ((st = get_len(R, "/train/state", 0, &r->train_len)) != NDE_OK) goto done;
  if (r->train_len) {
    r->train_state = nde__dalloc(r->train_len);
    if (!r->train_state) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if ((st = get_vec(R, "/train/state", r->train_len, r->train_state)) != NDE_OK) goto done;
    if (nde_reader_get_uint64s(h, "/train/words", NDE_TRAIN_STATE_WORDS, r->train_words) != NDE_OK) {
      st = missing(R, "/train/words", "missing (expected the 4 RNG words of the training state)");
      goto done;
    }
  }
  if ((st = get_len(R, "/train/x", 0, &r->nx)) != NDE_OK) goto done;
  if (r->nx) {
    r->x = nde__dalloc(r->nx);
    if (!r->x) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if ((st = get_vec(R, "/train/x", r->nx, r->x)) != NDE_OK) goto done;
  }
  /* The values that decide a resumed path against their checksum (files from before it have
   * none). */
  if (nde_reader_has_attr(h, "/train", "checksum")) {
    char *stored = NULL, sum[40];
    train_checksum(r, sum);
    const int read = nde_reader_get_attr_string(h, "/train", "checksum", &stored) == NDE_OK;
    if (!read || strcmp(stored, sum) != 0) {
      st = nde__fail(err, NDE_ERR_DATA,
                     "%s:/train: the parameters, histories or training state do not match their "
                     "checksum (the file records %.40s, its values give %s): the file is damaged; "
                     "fit again or use another copy",
                     R->file, read ? stored : "an unreadable one", sum);
      free(stored);
      goto done;
    }
    free(stored);
  }
  /* Status and provenance. */
  if (nde_reader_get_attr_string(h, "/", "status", &status) != NDE_OK) {
    st = missing(R, "/ attribute status", "missing");
    goto done;
  }
  r->status = NDE_FIT_FAILED;
  for (int k = NDE_FIT_RUNNING; k <= NDE_FIT_FAILED; k++)
    if (!strcmp(status, nde_fit_status_str((nde_fit_status)k))) r->status = (nde_fit_status)k;
  if (nde_reader_get_attr_string(h, "/", "message", &msg) == NDE_OK &&
      nde__result_set_message(r, msg) != NDE_OK) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (int i = 0; prov_keys[i]; i++) {
    char *v = NULL;
    if (nde_reader_get_attr_string(h, "/provenance", prov_keys[i], &v) == NDE_OK) {
      st = nde__result_set_prov(r, prov_keys[i], v);
      free(v);
      if (st != NDE_OK) {
        nde__fail(err, st, "out of memory");
        goto done;
      }
    }
  }
  if ((st = nde__result_read_unc(h, R->file, r, err)) != NDE_OK) goto done;
  st = NDE_OK;
done:
  free(source);
  free(filename);
  free(fmt);
  free(status);
  free(msg);
  for (size_t i = 0; i < N_FIELDS; i++) free(strs[i]);
  free(snames);
  free(nobs);
  free(iters);
  free(u0);
  free(tall);
  nde_model_destroy(&model);
  if (st != NDE_OK) nde_result_destroy(&r);
  *out = r;
  return st;
}

nde_status nde_result_open(const char *path, nde_result **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_result_open: no output pointer");
  *out = NULL;
  if (!path) return nde__fail(err, NDE_ERR_ARG, "nde_result_open: no path");
  rd R = {NULL, path, err};
  nde_status st = nde_reader_open(path, &R.h, err);
  if (st != NDE_OK) return st;
  st = read_result(&R, out);
  nde_reader_destroy(&R.h);
  return st;
}
