/* The groups of the result file that say how sure the fit is: /uncertainty (standard errors,
 * covariance, profiles), the named views /params/se|lower|upper/NAME and /series/u0_se, and
 * /ensemble (every member).  Written and read only here, each by one call from schema.c; the
 * layout is in docs/cli.md ("What the result file holds").  Both groups are optional: files
 * without them read as before, and readers of older versions ignore them. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unc_internal.h"

#define TRY(call)                           \
  do {                                      \
    if ((st = (call)) != NDE_OK) goto done; \
  } while (0)

static nde_status put_vec(nde_writer *w, const char *path, size_t n, const double *x) {
  size_t dims[1] = {n};
  return nde_writer_put_doubles(w, path, 1, dims, x);
}

static nde_status put_ivec(nde_writer *w, const char *path, size_t n, const int64_t *x) {
  size_t dims[1] = {n};
  return nde_writer_put_int64s(w, path, 1, dims, x);
}

/* /params/WHAT/NAME for each parameter with an entry: a scalar, or one value per series. */
static nde_status put_named(nde_writer *w, const nde_result *r, const struct nde__unc *u,
                            const char *what, size_t field) {
  const nde_model *m = r->model;
  nde_status st = NDE_OK;
  double *v = nde__dalloc((size_t)r->n_series);
  if (!v) return NDE_ERR_NOMEM;
  for (int i = 0; i < nde_model_n_params(m) && st == NDE_OK; i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK || !pi.learnable) continue;
    int found = 0;
    for (int s = 0; s < r->n_series; s++) v[s] = NAN;
    for (int j = 0; j < u->pub.n; j++) {
      const nde_unc_entry *en = &u->entry[j];
      if (en->param != i || (en->kind != NDE_UNC_PARAM && en->kind != NDE_UNC_SERIES_PARAM))
        continue;
      const double x = *(const double *)((const char *)en + field);
      if (en->kind == NDE_UNC_PARAM) v[0] = x;
      else v[en->series] = x;
      found = 1;
    }
    if (!found) continue;
    nde_str path = NDE_STR_INIT;
    nde_str_addf(&path, "/params/%s/%s", what, pi.name);
    if (path.failed) st = NDE_ERR_NOMEM;
    else if (pi.per_series) st = put_vec(w, path.data, (size_t)r->n_series, v);
    else st = nde_writer_put_doubles(w, path.data, 0, NULL, v);
    nde_str_release(&path);
  }
  free(v);
  return st;
}

static nde_status write_unc(nde_writer *w, const nde_result *r) {
  const struct nde__unc *u = r->unc;
  const int P = u->pub.n, n = nde_model_state_dim(r->model);
  const char *g = "/uncertainty";
  nde_status st = NDE_OK;
  const char **names = calloc((size_t)P + 1, sizeof *names);
  int64_t *iv = calloc((size_t)P + 1, sizeof *iv);
  double *dv = nde__dalloc((size_t)P), *u0se = NULL;
  if (!names || !iv || !dv) {
    st = NDE_ERR_NOMEM;
    goto done;
  }
  TRY(nde_writer_set_attr_double(w, g, "level", u->pub.level));
  TRY(nde_writer_set_attr_double(w, g, "quantile", u->pub.quantile));
  TRY(nde_writer_set_attr_string(w, g, "noise_model", nde_noise_model_str(u->pub.noise)));
  TRY(nde_writer_set_attr_double(w, g, "sigma", u->pub.sigma));
  TRY(nde_writer_set_attr_int64(w, g, "n_residuals", u->pub.n_residuals));
  TRY(nde_writer_set_attr_int64(w, g, "dof", u->pub.dof));
  TRY(nde_writer_set_attr_double(w, g, "rss", u->pub.rss));
  TRY(nde_writer_set_attr_double(w, g, "cond", u->pub.cond));
  TRY(nde_writer_set_attr_int64(w, g, "finite_differences", u->pub.finite_differences));
  TRY(nde_writer_set_attr_int64(w, g, "include_nets", u->opts.include_nets));
  TRY(nde_writer_set_attr_int64(w, g, "include_u0", u->opts.include_u0));
  TRY(nde_writer_set_attr_int64(w, g, "u0_from_data", u->pub.u0_from_data));
  TRY(nde_writer_set_attr_double(w, g, "ident_tol", u->opts.ident_tol));
  TRY(nde_writer_set_attr_double(w, g, "fd_step", u->opts.fd_step));
  TRY(nde_writer_set_attr_string(w, g, "warning", u->pub.warning));
  for (int j = 0; j < P; j++) names[j] = u->entry[j].name;
  TRY(nde_writer_put_strings(w, "/uncertainty/names", (size_t)P, names));
#define IVEC(path, expr)                                     \
  for (int j = 0; j < P; j++) iv[j] = (int64_t)(expr);        \
  TRY(put_ivec(w, path, (size_t)P, iv));
#define DVEC(path, expr)                                     \
  for (int j = 0; j < P; j++) dv[j] = (expr);                 \
  TRY(put_vec(w, path, (size_t)P, dv));
  IVEC("/uncertainty/kind", u->entry[j].kind)
  IVEC("/uncertainty/param", u->entry[j].param)
  IVEC("/uncertainty/series", u->entry[j].series)
  IVEC("/uncertainty/component", u->entry[j].component)
  IVEC("/uncertainty/transform", u->entry[j].transform)
  IVEC("/uncertainty/identifiable", u->entry[j].identifiable)
  DVEC("/uncertainty/estimate", u->entry[j].value)
  DVEC("/uncertainty/se", u->entry[j].se)
  DVEC("/uncertainty/se_opt", u->entry[j].se_opt)
  DVEC("/uncertainty/lower", u->entry[j].lower)
  DVEC("/uncertainty/upper", u->entry[j].upper)
  DVEC("/uncertainty/lower_sym", u->entry[j].lower_sym)
  DVEC("/uncertainty/upper_sym", u->entry[j].upper_sym)
#undef IVEC
#undef DVEC
  size_t dims[2] = {(size_t)P, (size_t)P};
  TRY(nde_writer_put_doubles(w, "/uncertainty/covariance", 2, dims, u->cov));
  TRY(nde_writer_put_doubles(w, "/uncertainty/covariance_natural", 2, dims, u->cov_nat));
  TRY(nde_writer_put_doubles(w, "/uncertainty/correlation", 2, dims, u->corr));
  TRY(put_vec(w, "/uncertainty/sigma_state", (size_t)u->n_sigma, u->sigma_state));
  TRY(nde_writer_put_strings(w, "/uncertainty/sigma_columns", (size_t)u->n_sigma,
                             (const char **)u->sigma_names));
  if (u->pub.n_null > 0) {
    dims[0] = (size_t)u->pub.n_null;
    TRY(nde_writer_put_doubles(w, "/uncertainty/null_directions", 2, dims, u->null_dirs));
  }
  /* The named views. */
  TRY(put_named(w, r, u, "se", offsetof(nde_unc_entry, se)));
  TRY(put_named(w, r, u, "lower", offsetof(nde_unc_entry, lower)));
  TRY(put_named(w, r, u, "upper", offsetof(nde_unc_entry, upper)));
  int any_u0 = 0;
  for (int j = 0; j < P; j++) any_u0 |= u->entry[j].kind == NDE_UNC_INITIAL_STATE;
  if (any_u0) {
    u0se = nde__dalloc((size_t)r->n_series * (size_t)n);
    if (!u0se) {
      st = NDE_ERR_NOMEM;
      goto done;
    }
    for (size_t q = 0; q < (size_t)r->n_series * (size_t)n; q++) u0se[q] = NAN;
    for (int j = 0; j < P; j++)
      if (u->entry[j].kind == NDE_UNC_INITIAL_STATE)
        u0se[(size_t)u->entry[j].series * (size_t)n + (size_t)u->entry[j].component] =
            u->entry[j].se;
    dims[0] = (size_t)r->n_series;
    dims[1] = (size_t)n;
    TRY(nde_writer_put_doubles(w, "/series/u0_se", 2, dims, u0se));
  }
  for (int i = 0; i < u->n_prof; i++) {
    const nde__profile *p = &u->prof[i];
    char path[96], sub[128];
    snprintf(path, sizeof path, "/uncertainty/profiles/p%d", i);
    TRY(nde_writer_set_attr_string(w, path, "name", p->name));
    TRY(nde_writer_set_attr_int64(w, path, "entry", p->coord));
    TRY(nde_writer_set_attr_double(w, path, "value", p->value));
    TRY(nde_writer_set_attr_double(w, path, "lower", p->lower));
    TRY(nde_writer_set_attr_double(w, path, "upper", p->upper));
    TRY(nde_writer_set_attr_int64(w, path, "lower_found", p->lower_found));
    TRY(nde_writer_set_attr_int64(w, path, "upper_found", p->upper_found));
    TRY(nde_writer_set_attr_double(w, path, "threshold", p->threshold));
    snprintf(sub, sizeof sub, "%s/grid", path);
    TRY(put_vec(w, sub, (size_t)p->n, p->grid));
    snprintf(sub, sizeof sub, "%s/stat", path);
    TRY(put_vec(w, sub, (size_t)p->n, p->stat));
  }
done:
  free(names);
  free(iv);
  free(dv);
  free(u0se);
  return st;
}

/* The members' kept values stored as doubles, one dataset each. */
static const char *const kept_fields[] = {"/ensemble/kept_score", "/ensemble/kept_last_loss",
                                          "/ensemble/kept_validation", "/ensemble/kept_noise_loss",
                                          "/ensemble/kept_noise_ratio"};
#define N_KEPT_D 5
static double *kept_d(nde_result_kept *k, int f) {
  double *const p[N_KEPT_D] = {&k->score, &k->last_loss, &k->validation, &k->noise_loss,
                               &k->noise_ratio};
  return p[f];
}

static nde_status write_ens(nde_writer *w, const nde_result *r) {
  const struct nde__ens *e = r->ens;
  const nde_model *m = r->model;
  const int K = e->k, n = nde_model_state_dim(m), S = r->n_series;
  nde_status st = NDE_OK;
  double *buf = nde__dalloc((size_t)K * (size_t)(r->n_theta > (size_t)S * n ? r->n_theta
                                                                              : (size_t)S * n));
  int64_t *iv = calloc((size_t)K * (e->n_rows ? e->n_rows : 1), sizeof *iv);
  uint64_t *uv = calloc((size_t)K, sizeof *uv);
  const char **sv = calloc((size_t)K, sizeof *sv);
  if (!buf || !iv || !uv || !sv) {
    st = NDE_ERR_NOMEM;
    goto done;
  }
  TRY(nde_writer_set_attr_int64(w, "/ensemble", "members", K));
  TRY(nde_writer_set_attr_string(w, "/ensemble", "resample", nde_resample_str(e->resample)));
  TRY(nde_writer_set_attr_double(w, "/ensemble", "fraction", e->fraction));
  TRY(nde_writer_set_attr_int64(w, "/ensemble", "seed", (int64_t)e->seed));
  size_t dims[3] = {(size_t)K, 0, 0};
  for (int k = 0; k < K; k++) uv[k] = e->m[k].seed;
  TRY(nde_writer_put_uint64s(w, "/ensemble/seed", 1, dims, uv));
  for (int k = 0; k < K; k++) sv[k] = nde_fit_status_str(e->m[k].status);
  TRY(nde_writer_put_strings(w, "/ensemble/status", (size_t)K, sv));
  for (int k = 0; k < K; k++) buf[k] = e->m[k].loss;
  TRY(nde_writer_put_doubles(w, "/ensemble/loss", 1, dims, buf));
  for (int k = 0; k < K; k++) iv[k] = e->m[k].iterations;
  TRY(nde_writer_put_int64s(w, "/ensemble/iterations", 1, dims, iv));
  /* Each member's kept iterate and its loss against its own data and noise level. */
  for (int f = 0; f < N_KEPT_D; f++) {
    for (int k = 0; k < K; k++) buf[k] = *kept_d(&e->m[k].kept, f);
    TRY(nde_writer_put_doubles(w, kept_fields[f], 1, dims, buf));
  }
  for (int k = 0; k < K; k++) iv[k] = e->m[k].kept.iteration;
  TRY(nde_writer_put_int64s(w, "/ensemble/kept_iteration", 1, dims, iv));
  for (int k = 0; k < K; k++) iv[k] = e->m[k].kept.is_best;
  TRY(nde_writer_put_int64s(w, "/ensemble/kept_is_best", 1, dims, iv));
  dims[1] = r->n_theta;
  for (int k = 0; k < K; k++)
    memcpy(buf + (size_t)k * r->n_theta, e->m[k].theta, r->n_theta * sizeof *buf);
  TRY(nde_writer_put_doubles(w, "/ensemble/theta", 2, dims, buf));
  dims[1] = (size_t)S;
  dims[2] = (size_t)n;
  for (int k = 0; k < K; k++)
    memcpy(buf + (size_t)k * (size_t)S * (size_t)n, e->m[k].u0, (size_t)S * (size_t)n * sizeof *buf);
  TRY(nde_writer_put_doubles(w, "/ensemble/u0", 3, dims, buf));
  dims[1] = e->n_rows;
  for (size_t q = 0; q < (size_t)K * e->n_rows; q++) iv[q] = e->keep[q];
  TRY(nde_writer_put_int64s(w, "/ensemble/keep", 2, dims, iv));
  /* Every parameter per member in natural units, and the spread of the shared ones. */
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK || !pi.learnable) continue;
    nde_str path = NDE_STR_INIT;
    nde_str_addf(&path, "/ensemble/params/%s", pi.name);
    if (path.failed) {
      st = NDE_ERR_NOMEM;
      goto done;
    }
    const int cols = pi.per_series ? S : 1;
    for (int k = 0; k < K; k++)
      for (int s = 0; s < cols; s++)
        buf[(size_t)k * (size_t)cols + (size_t)s] =
            pi.per_series ? nde_model_param_value_series(m, i, e->m[k].theta, s)
                          : nde_model_param_value(m, i, e->m[k].theta);
    dims[1] = (size_t)S;
    st = nde_writer_put_doubles(w, path.data, pi.per_series ? 2 : 1, dims, buf);
    nde_spread sp;
    if (st == NDE_OK && !pi.per_series && nde_result_param_spread(r, i, 0, 0.95, &sp) == NDE_OK) {
      st = nde_writer_set_attr_double(w, path.data, "mean", sp.mean);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, path.data, "sd", sp.sd);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, path.data, "median", sp.median);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, path.data, "lower_95", sp.lower);
      if (st == NDE_OK) st = nde_writer_set_attr_double(w, path.data, "upper_95", sp.upper);
      if (st == NDE_OK) st = nde_writer_set_attr_int64(w, path.data, "n_good", sp.n);
    }
    nde_str_release(&path);
    if (st != NDE_OK) goto done;
  }
done:
  free(buf);
  free(iv);
  free(uv);
  free(sv);
  return st;
}

nde_status nde__result_write_unc(nde_writer *w, const nde_result *r) {
  nde_status st = NDE_OK;
  if (r->unc) st = write_unc(w, r);
  if (st == NDE_OK && r->ens) st = write_ens(w, r);
  return st;
}

void nde__result_free_unc(nde_result *r) {
  nde__unc_free(r->unc);
  nde__ens_free(r->ens);
  r->unc = NULL;
  r->ens = NULL;
}

/* ---- reading ---- */

typedef struct urd {
  nde_reader *h;
  const char *file;
  nde_error *err;
} urd;

static nde_status bad(urd *R, const char *place, const char *what) {
  return nde__fail(R->err, NDE_ERR_DATA, "%s:%s: %s", R->file, place, what);
}

/* A numeric dataset of exactly n elements. */
static nde_status get_n(urd *R, const char *path, size_t n, double *x) {
  int rank;
  size_t dims[NDE_DATA_MAX_RANK], count = 1;
  if (nde_reader_kind(R->h, path) != NDE_H5_DATASET) return bad(R, path, "missing");
  if (nde_reader_shape(R->h, path, &rank, dims) != NDE_OK) return bad(R, path, "unreadable");
  for (int i = 0; i < rank; i++) count *= dims[i];
  if (count != n) {
    char what[120];
    snprintf(what, sizeof what, "has %zu values, expected %zu", count, n);
    return bad(R, path, what);
  }
  if (nde_reader_get_doubles(R->h, path, n, x) != NDE_OK)
    return bad(R, path, nde_reader_errmsg(R->h));
  return NDE_OK;
}

static nde_status get_in(urd *R, const char *path, size_t n, int64_t *x) {
  if (nde_reader_kind(R->h, path) != NDE_H5_DATASET) return bad(R, path, "missing");
  if (nde_reader_get_int64s(R->h, path, n, x) != NDE_OK)
    return bad(R, path, nde_reader_errmsg(R->h));
  return NDE_OK;
}

static double attr_d(urd *R, const char *obj, const char *name) {
  double v = NAN;
  nde_reader_get_attr_double(R->h, obj, name, &v);
  return v;
}

static int64_t attr_i(urd *R, const char *obj, const char *name) {
  int64_t v = 0;
  nde_reader_get_attr_int64(R->h, obj, name, &v);
  return v;
}

/* The data columns of sigma_state: /uncertainty/sigma_columns names them (the model's states,
 * then observable columns); files written before it had the states alone.  Allocates
 * u->sigma_state and u->sigma_names. */
static nde_status read_sigma_columns(urd *R, const nde_result *r, struct nde__unc *u) {
  const int n = nde_model_state_dim(r->model);
  const char *path = "/uncertainty/sigma_columns";
  char **cols = NULL;
  size_t K = (size_t)n;
  if (nde_reader_kind(R->h, path) != NDE_H5_NONE) {
    if (nde_reader_kind(R->h, path) != NDE_H5_DATASET ||
        nde_reader_get_strings(R->h, path, &K, &cols) != NDE_OK)
      return bad(R, path, "unreadable (expected a list of column names)");
    int same = K >= (size_t)n && K <= (size_t)n + (size_t)nde_model_n_observables(r->model);
    for (size_t j = 0; same && j < K; j++) {
      if (j < (size_t)n) {
        same = !strcmp(cols[j], nde_model_component_name(r->model, (int)j));
        continue;
      }
      same = 0;
      for (int i = 0; !same && i < nde_model_n_observables(r->model); i++)
        same = !strcmp(cols[j], nde_model_observable_name(r->model, i));
    }
    if (!same) {
      free(cols);
      return bad(R, path, "expected the model's state components, then some of its observables");
    }
  }
  u->n_sigma = (int)K;
  u->sigma_state = nde__dalloc(K);
  u->sigma_names = calloc(K, sizeof *u->sigma_names);
  for (size_t j = 0; u->sigma_state && u->sigma_names && j < K; j++) {
    nde_str nm = NDE_STR_INIT;
    nde_str_adds(&nm, cols ? cols[j] : nde_model_component_name(r->model, (int)j));
    u->sigma_names[j] = nde_str_take(&nm);
    if (!u->sigma_names[j]) break;
  }
  const int ok = u->sigma_state && u->sigma_names && (K == 0 || u->sigma_names[K - 1]);
  free(cols);
  return ok ? NDE_OK : nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
}

static nde_status read_unc(urd *R, nde_result *r) {
  const char *g = "/uncertainty";
  nde_status st = NDE_OK;
  struct nde__unc *u = calloc(1, sizeof *u);
  char **names = NULL, *s = NULL;
  int64_t *iv = NULL;
  double *dv = NULL;
  if (!u) return nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
  u->opts = nde_unc_opts_default();
  u->opts.include_nets = attr_i(R, g, "include_nets") != 0;
  u->opts.include_u0 = attr_i(R, g, "include_u0") != 0;
  u->pub.u0_from_data = attr_i(R, g, "u0_from_data") != 0; /* optional (0 when absent) */
  u->opts.ident_tol = attr_d(R, g, "ident_tol");
  u->opts.fd_step = attr_d(R, g, "fd_step");
  u->opts.finite_differences = attr_i(R, g, "finite_differences") != 0;
  if (nde_reader_get_attr_string(R->h, g, "noise_model", &s) != NDE_OK) {
    st = bad(R, "/uncertainty attribute noise_model", "missing");
    goto done;
  }
  u->opts.noise = !strcmp(s, "known") ? NDE_NOISE_KNOWN
                  : !strcmp(s, "pooled") ? NDE_NOISE_POOLED
                                         : NDE_NOISE_PER_STATE;
  u->opts.level = attr_d(R, g, "level");
  size_t P = 0;
  if (nde_reader_kind(R->h, "/uncertainty/names") != NDE_H5_DATASET ||
      nde_reader_get_strings(R->h, "/uncertainty/names", &P, &names) != NDE_OK) {
    st = bad(R, "/uncertainty/names", "missing or unreadable");
    goto done;
  }
  /* The coordinates follow from the model and the flags: they must be the ones named. */
  int nc = 0;
  if ((st = nde__coords_make(r, u->opts.include_nets, u->opts.include_u0, &u->cols, &nc,
                             R->err)) != NDE_OK)
    goto done;
  int same = (size_t)nc == P;
  for (size_t j = 0; same && j < P; j++) same = !strcmp(names[j], u->cols[j].name);
  if (!same) {
    nde__coords_free(u->cols, nc);
    u->cols = NULL;
    st = bad(R, "/uncertainty/names", "does not name the model's fitted coordinates");
    goto done;
  }
  u->pub.n = (int)P;
  u->entry = calloc(P + 1, sizeof *u->entry);
  u->cov = nde__dalloc(P * P);
  u->cov_nat = nde__dalloc(P * P);
  u->corr = nde__dalloc(P * P);
  if ((st = read_sigma_columns(R, r, u)) != NDE_OK) goto done;
  iv = calloc(P + 1, sizeof *iv);
  dv = nde__dalloc(P);
  if (!u->entry || !u->cov || !u->cov_nat || !u->corr || !iv || !dv) {
    st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  for (size_t j = 0; j < P; j++) {
    const nde__coord *c = &u->cols[j];
    u->entry[j] = (nde_unc_entry){c->name, c->kind, c->param, c->series, c->component,
                                  c->transform, 0, 0, 0, 0, 0, 0, 0, 0};
  }
#define RD(path, field)                                                    \
  if ((st = get_n(R, path, P, dv)) != NDE_OK) goto done;                   \
  for (size_t j = 0; j < P; j++) u->entry[j].field = dv[j];
  RD("/uncertainty/estimate", value)
  RD("/uncertainty/se", se)
  RD("/uncertainty/se_opt", se_opt)
  RD("/uncertainty/lower", lower)
  RD("/uncertainty/upper", upper)
  RD("/uncertainty/lower_sym", lower_sym)
  RD("/uncertainty/upper_sym", upper_sym)
#undef RD
  if ((st = get_in(R, "/uncertainty/identifiable", P, iv)) != NDE_OK) goto done;
  for (size_t j = 0; j < P; j++) u->entry[j].identifiable = iv[j] != 0;
  if ((st = get_n(R, "/uncertainty/covariance", P * P, u->cov)) != NDE_OK ||
      (st = get_n(R, "/uncertainty/covariance_natural", P * P, u->cov_nat)) != NDE_OK ||
      (st = get_n(R, "/uncertainty/correlation", P * P, u->corr)) != NDE_OK ||
      (st = get_n(R, "/uncertainty/sigma_state", (size_t)u->n_sigma, u->sigma_state)) != NDE_OK)
    goto done;
  u->pub.level = u->opts.level;
  u->pub.quantile = attr_d(R, g, "quantile");
  u->pub.noise = u->opts.noise;
  u->pub.sigma = attr_d(R, g, "sigma");
  u->pub.n_residuals = (long)attr_i(R, g, "n_residuals");
  u->pub.dof = (long)attr_i(R, g, "dof");
  u->pub.rss = attr_d(R, g, "rss");
  u->pub.cond = attr_d(R, g, "cond");
  u->pub.finite_differences = u->opts.finite_differences;
  free(s);
  s = NULL;
  if (nde_reader_has_attr(R->h, g, "warning") &&
      nde_reader_get_attr_string(R->h, g, "warning", &s) == NDE_OK && *s) {
    nde_str w = NDE_STR_INIT;
    nde_str_adds(&w, s);
    u->warning = nde_str_take(&w);
  }
  if (nde_reader_kind(R->h, "/uncertainty/null_directions") == NDE_H5_DATASET) {
    int rank;
    size_t dims[NDE_DATA_MAX_RANK];
    if (nde_reader_shape(R->h, "/uncertainty/null_directions", &rank, dims) != NDE_OK ||
        rank != 2 || dims[1] != P || dims[0] > P) {
      st = bad(R, "/uncertainty/null_directions", "expected K x P values");
      goto done;
    }
    u->pub.n_null = (int)dims[0];
    if (!(u->null_dirs = nde__dalloc(dims[0] * P))) {
      st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if ((st = get_n(R, "/uncertainty/null_directions", dims[0] * P, u->null_dirs)) != NDE_OK)
      goto done;
  }
  /* Profiles: /uncertainty/profiles/p0, p1, ... */
  int np = 0;
  for (;;) {
    char path[96];
    snprintf(path, sizeof path, "/uncertainty/profiles/p%d", np);
    if (nde_reader_kind(R->h, path) != NDE_H5_GROUP) break;
    np++;
  }
  if (np > 0) {
    u->prof = calloc((size_t)np, sizeof *u->prof);
    if (!u->prof) {
      st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    u->n_prof = np;
    for (int i = 0; i < np; i++) {
      nde__profile *p = &u->prof[i];
      char path[96], sub[128];
      snprintf(path, sizeof path, "/uncertainty/profiles/p%d", i);
      if (nde_reader_get_attr_string(R->h, path, "name", &p->name) != NDE_OK) {
        st = bad(R, path, "no attribute name");
        goto done;
      }
      p->coord = (int)attr_i(R, path, "entry");
      if (p->coord < 0 || (size_t)p->coord >= P) {
        st = bad(R, path, "attribute entry out of range");
        goto done;
      }
      p->value = attr_d(R, path, "value");
      p->lower = attr_d(R, path, "lower");
      p->upper = attr_d(R, path, "upper");
      p->lower_found = attr_i(R, path, "lower_found") != 0;
      p->upper_found = attr_i(R, path, "upper_found") != 0;
      p->threshold = attr_d(R, path, "threshold");
      snprintf(sub, sizeof sub, "%s/grid", path);
      int rank;
      size_t dims[NDE_DATA_MAX_RANK];
      if (nde_reader_kind(R->h, sub) != NDE_H5_DATASET ||
          nde_reader_shape(R->h, sub, &rank, dims) != NDE_OK || rank != 1 || dims[0] < 1 ||
          dims[0] > 100000000) {
        st = bad(R, sub, "missing or not a vector");
        goto done;
      }
      p->n = (int)dims[0];
      p->grid = nde__dalloc(dims[0]);
      p->stat = nde__dalloc(dims[0]);
      if (!p->grid || !p->stat) {
        st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
      if ((st = get_n(R, sub, dims[0], p->grid)) != NDE_OK) goto done;
      snprintf(sub, sizeof sub, "%s/stat", path);
      if ((st = get_n(R, sub, dims[0], p->stat)) != NDE_OK) goto done;
    }
  }
  nde__unc_publish(u);
  r->unc = u;
  u = NULL;
done:
  nde__unc_free(u);
  free(names);
  free(s);
  free(iv);
  free(dv);
  return st;
}

static nde_status read_ens(urd *R, nde_result *r) {
  const int n = nde_model_state_dim(r->model), S = r->n_series;
  const int64_t K64 = attr_i(R, "/ensemble", "members");
  if (K64 < 1 || K64 > 100000) return bad(R, "/ensemble attribute members", "out of range");
  const int K = (int)K64;
  nde_status st = NDE_OK;
  struct nde__ens *e = calloc(1, sizeof *e);
  char *s = NULL, **sv = NULL;
  double *buf = NULL;
  int64_t *iv = NULL;
  uint64_t *uv = NULL;
  if (!e) return nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
  e->k = K;
  e->fraction = attr_d(R, "/ensemble", "fraction");
  e->seed = (uint64_t)attr_i(R, "/ensemble", "seed");
  e->resample = NDE_RESAMPLE_NONE;
  if (nde_reader_get_attr_string(R->h, "/ensemble", "resample", &s) == NDE_OK)
    e->resample = !strcmp(s, "series") ? NDE_RESAMPLE_SERIES
                  : !strcmp(s, "time") ? NDE_RESAMPLE_TIME
                                       : NDE_RESAMPLE_NONE;
  for (int k = 0; k < S; k++) e->n_rows += r->series[k].n_obs;
  const size_t big = r->n_theta > (size_t)S * (size_t)n ? r->n_theta : (size_t)S * (size_t)n;
  e->m = calloc((size_t)K, sizeof *e->m);
  e->keep = malloc((size_t)K * (e->n_rows ? e->n_rows : 1));
  buf = nde__dalloc((size_t)K * big);
  iv = calloc((size_t)K * (e->n_rows ? e->n_rows : 1), sizeof *iv);
  uv = calloc((size_t)K, sizeof *uv);
  if (!e->m || !e->keep || !buf || !iv || !uv) {
    st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (nde_reader_get_uint64s(R->h, "/ensemble/seed", (size_t)K, uv) != NDE_OK) {
    st = bad(R, "/ensemble/seed", "missing or not one per member");
    goto done;
  }
  size_t ns = 0;
  if (nde_reader_get_strings(R->h, "/ensemble/status", &ns, &sv) != NDE_OK || ns != (size_t)K) {
    st = bad(R, "/ensemble/status", "missing or not one per member");
    goto done;
  }
  for (int k = 0; k < K; k++) {
    e->m[k].seed = uv[k];
    e->m[k].status = NDE_FIT_FAILED;
    for (int q = NDE_FIT_RUNNING; q <= NDE_FIT_FAILED; q++)
      if (!strcmp(sv[k], nde_fit_status_str((nde_fit_status)q))) e->m[k].status = (nde_fit_status)q;
    e->m[k].theta = nde__dalloc(r->n_theta);
    e->m[k].u0 = nde__dalloc((size_t)S * (size_t)n);
    if (!e->m[k].theta || !e->m[k].u0) {
      st = nde__fail(R->err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
  }
  if ((st = get_n(R, "/ensemble/loss", (size_t)K, buf)) != NDE_OK) goto done;
  for (int k = 0; k < K; k++) e->m[k].loss = buf[k];
  if ((st = get_in(R, "/ensemble/iterations", (size_t)K, iv)) != NDE_OK) goto done;
  for (int k = 0; k < K; k++) e->m[k].iterations = (long)iv[k];
  /* The members' kept iterates (optional: files from before them hold the loss alone). */
  for (int k = 0; k < K; k++)
    e->m[k].kept = (nde_result_kept){1, -1, NAN, e->m[k].loss, NAN, NAN, NAN, NAN};
  for (int f = 0; f < N_KEPT_D; f++) {
    if (nde_reader_kind(R->h, kept_fields[f]) != NDE_H5_DATASET) continue;
    if ((st = get_n(R, kept_fields[f], (size_t)K, buf)) != NDE_OK) goto done;
    for (int k = 0; k < K; k++) *kept_d(&e->m[k].kept, f) = buf[k];
  }
  if (nde_reader_kind(R->h, "/ensemble/kept_iteration") == NDE_H5_DATASET) {
    if ((st = get_in(R, "/ensemble/kept_iteration", (size_t)K, iv)) != NDE_OK) goto done;
    for (int k = 0; k < K; k++) e->m[k].kept.iteration = (long)iv[k];
  }
  if (nde_reader_kind(R->h, "/ensemble/kept_is_best") == NDE_H5_DATASET) {
    if ((st = get_in(R, "/ensemble/kept_is_best", (size_t)K, iv)) != NDE_OK) goto done;
    for (int k = 0; k < K; k++) e->m[k].kept.is_best = iv[k] != 0;
  }
  if ((st = get_n(R, "/ensemble/theta", (size_t)K * r->n_theta, buf)) != NDE_OK) goto done;
  for (int k = 0; k < K; k++)
    memcpy(e->m[k].theta, buf + (size_t)k * r->n_theta, r->n_theta * sizeof *buf);
  if ((st = get_n(R, "/ensemble/u0", (size_t)K * (size_t)S * (size_t)n, buf)) != NDE_OK)
    goto done;
  for (int k = 0; k < K; k++)
    memcpy(e->m[k].u0, buf + (size_t)k * (size_t)S * (size_t)n, (size_t)S * (size_t)n * sizeof *buf);
  if ((st = get_in(R, "/ensemble/keep", (size_t)K * e->n_rows, iv)) != NDE_OK) goto done;
  for (size_t q = 0; q < (size_t)K * e->n_rows; q++) e->keep[q] = iv[q] != 0;
  r->ens = e;
  e = NULL;
done:
  nde__ens_free(e);
  free(s);
  free(sv);
  free(buf);
  free(iv);
  free(uv);
  return st;
}

nde_status nde__result_read_unc(nde_reader *h, const char *file, nde_result *r, nde_error *err) {
  urd R = {h, file, err};
  nde_status st = NDE_OK;
  if (nde_reader_kind(h, "/uncertainty") == NDE_H5_GROUP) st = read_unc(&R, r);
  if (st == NDE_OK && nde_reader_kind(h, "/ensemble") == NDE_H5_GROUP) st = read_ens(&R, r);
  return st;
}
