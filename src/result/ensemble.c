/* Ensembles of fits: K fits of one model from seeds seed + k, optionally on half-samples of the
 * series or of the observation rows (McCarthy 1969, "Pseudo-replication: half samples"; the
 * subsampling of stability selection, Meinshausen & Buhlmann 2010), run concurrently on threads
 * (each member an independent nde_result_fit, so a member is bit for bit the fit made alone),
 * kept in one result; the spread of the parameters and bands of the forecast over the members,
 * and the linearised band of a single fit from its covariance. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unc_internal.h"

const char *nde_resample_str(nde_resample r) {
  switch (r) {
    case NDE_RESAMPLE_NONE: return "none";
    case NDE_RESAMPLE_SERIES: return "series";
    case NDE_RESAMPLE_TIME: return "time";
  }
  return "unknown";
}

nde_ensemble_opts nde_ensemble_opts_default(void) {
  nde_ensemble_opts o;
  memset(&o, 0, sizeof o);
  o.members = 10;
  o.resample = NDE_RESAMPLE_NONE;
  o.fraction = 0.5;
  return o;
}

void nde__ens_free(struct nde__ens *e) {
  if (!e) return;
  for (int k = 0; e->m && k < e->k; k++) {
    free(e->m[k].theta);
    free(e->m[k].u0);
  }
  free(e->m);
  free(e->keep);
  free(e);
}

int nde_result_n_members(const nde_result *r) { return r && r->ens ? r->ens->k : 0; }

nde_status nde_result_ensemble_settings(const nde_result *r, nde_ensemble_opts *out) {
  if (!r || !r->ens || !out) return NDE_ERR_ARG;
  *out = nde_ensemble_opts_default();
  out->members = r->ens->k;
  out->resample = r->ens->resample;
  out->fraction = r->ens->fraction;
  out->threads = 0;
  return NDE_OK;
}

nde_status nde_result_get_member(const nde_result *r, int k, nde_member_info *out) {
  if (!r || !r->ens || !out || k < 0 || k >= r->ens->k) return NDE_ERR_ARG;
  const nde__member *m = &r->ens->m[k];
  *out = (nde_member_info){m->seed, m->status, m->loss, m->iterations, m->theta, m->u0,
                           r->ens->keep + (size_t)k * r->ens->n_rows};
  return NDE_OK;
}

/* A copy of r's fitted model, settings, series and provenance, without histories, training
 * state, uncertainty or members. */
static nde_status copy_core(const nde_result *r, nde_result **out, nde_error *err) {
  *out = NULL;
  const int n = nde_model_state_dim(r->model);
  nde_result *c = nde__result_new(r->model, r->n_series, err);
  if (!c) return err ? err->status : NDE_ERR_NOMEM;
  nde_status st = NDE_OK;
  if (r->noise_std) {
    const size_t nc = (size_t)nde__n_columns(r->model);
    if (!(c->noise_std = nde__dalloc(nc))) goto nomem;
    memcpy(c->noise_std, r->noise_std, nc * sizeof *c->noise_std);
  }
  if ((st = nde__result_set_settings(c, &r->settings, err)) != NDE_OK) goto fail;
  memcpy(c->theta, r->theta, r->n_theta * sizeof *c->theta);
  memcpy(c->theta_last, r->theta, r->n_theta * sizeof *c->theta);
  c->series = calloc((size_t)r->n_series, sizeof *c->series);
  if (!c->series) goto nomem;
  c->n_series = r->n_series;
  for (int k = 0; k < r->n_series; k++) {
    const nde__rseries *s = &r->series[k];
    nde__rseries *d = &c->series[k];
    d->name = malloc(strlen(s->name) + 1);
    d->t = nde__dalloc(s->n_obs);
    d->u0 = nde__dalloc((size_t)n);
    if (!d->name || !d->t || !d->u0) goto nomem;
    strcpy(d->name, s->name);
    memcpy(d->t, s->t, s->n_obs * sizeof *d->t);
    memcpy(d->u0, s->u0, (size_t)n * sizeof *d->u0);
    d->n_obs = s->n_obs;
    /* The data that drove it, so that a member integrates as the fit did. */
    const nde_input_series own = {s->n_u, s->u_t, s->u};
    if (nde__rseries_set_binding(d, nde_model_n_inputs(r->model),
                                 nde_model_n_data_consts(r->model), &own, s->consts) != NDE_OK)
      goto nomem;
  }
  for (int i = 0; i < r->n_prov; i++)
    if ((st = nde__result_set_prov(c, r->prov[i].key, r->prov[i].value)) != NDE_OK) goto nomem;
  c->status = r->status;
  c->kept = r->kept;
  c->data_hash = r->data_hash;
  c->seconds = r->seconds;
  c->n_phases = r->n_phases;
  memcpy(c->phase_end, r->phase_end, sizeof c->phase_end);
  if ((st = nde__result_set_message(c, nde_result_message(r))) != NDE_OK) goto nomem;
  *out = c;
  return NDE_OK;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory copying a result");
fail:
  nde_result_destroy(&c);
  return st;
}

/* Put member k's parameters and initial states into c (a copy_core of its ensemble). */
static void set_member(nde_result *c, const struct nde__ens *e, int k) {
  const int n = nde_model_state_dim(c->model);
  const nde__member *m = &e->m[k];
  memcpy(c->theta, m->theta, c->n_theta * sizeof *c->theta);
  memcpy(c->theta_last, m->theta, c->n_theta * sizeof *c->theta);
  for (int s = 0; s < c->n_series; s++)
    memcpy(c->series[s].u0, m->u0 + (size_t)s * (size_t)n, (size_t)n * sizeof *m->u0);
  c->status = m->status;
  c->kept = m->kept;
  c->kept.loss = m->loss;
  c->member_iterations = m->iterations;
}

nde_status nde_result_member(const nde_result *r, int k, nde_result **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_result_member: no output pointer");
  *out = NULL;
  if (!r || !r->ens || k < 0 || k >= r->ens->k)
    return nde__fail(err, NDE_ERR_ARG,
                     "member %d does not exist (the result holds %d, indices from 0)", k,
                     r ? nde_result_n_members(r) : 0);
  nde_status st = copy_core(r, out, err);
  if (st != NDE_OK) return st;
  set_member(*out, r->ens, k);
  char msg[160];
  snprintf(msg, sizeof msg, "member %d (from 0) of an ensemble of %d (seed %llu): %s", k,
           r->ens->k,
           (unsigned long long)r->ens->m[k].seed, nde_fit_status_str(r->ens->m[k].status));
  if ((st = nde__result_set_message(*out, msg)) != NDE_OK) {
    nde_result_destroy(out);
    return nde__fail(err, st, "out of memory");
  }
  return NDE_OK;
}

/* ---- the fit ---- */

typedef struct ens_ctx {
  nde_model *model;
  const nde_data *data;
  const nde_result_fit_opts *o;
  nde_data **mdata;     /* per job: its (masked) data, or NULL for all of it */
  uint64_t *seed;       /* per job */
  nde_result **res;     /* per job */
  nde_status *st;       /* per job */
  nde_error *err;       /* per job */
  atomic_int stop;
} ens_ctx;

static int member_progress(void *ctx, const nde_train_progress *p) {
  ens_ctx *E = ctx;
  (void)p;
  return atomic_load(&E->stop);
}

static int ens_job(void *vctx, int worker, int j) {
  ens_ctx *E = vctx;
  (void)worker;
  nde_result_fit_opts o = *E->o;
  o.seed = E->seed[j];
  o.checkpoint_path = NULL;
  o.resume = NULL;
  o.progress = member_progress;
  o.progress_ctx = E;
  o.progress_every = 100; /* a stop request is seen within 100 iterations */
  E->st[j] = nde_result_fit(E->model, E->mdata[j] ? E->mdata[j] : E->data, &o, &E->res[j],
                            &E->err[j]);
  return E->st[j] != NDE_OK;
}

typedef struct ens_prog {
  ens_ctx *E;
  int (*progress)(void *ctx, int done, int total);
  void *ctx;
} ens_prog;

static int ens_progress(void *vctx, int done, int total) {
  ens_prog *P = vctx;
  const int stop = P->progress ? P->progress(P->ctx, done, total) : 0;
  if (stop) atomic_store(&P->E->stop, 1);
  return stop;
}

/* Row masks: member k keeps a random part (fraction) of the series or of each series' rows. */
static void make_mask(const nde_data *d, nde_resample how, double fraction, uint64_t seed,
                      unsigned char *keep, int *order) {
  nde_rng rng;
  /* A stream of its own, apart from the initialisation's draws with the same seed. */
  nde_rng_seed(&rng, seed ^ 0x9e3779b97f4a7c15ull);
  const size_t S = nde_data_n_traj(d);
  size_t row = 0;
  if (how == NDE_RESAMPLE_SERIES) {
    int m = (int)lround(fraction * (double)S);
    if (m < 1) m = 1;
    if (m > (int)S) m = (int)S;
    for (size_t k = 0; k < S; k++) order[k] = (int)k;
    for (int i = 0; i < m; i++) {
      const int r = i + (int)(nde_rng_u64(&rng) % (uint64_t)((int)S - i));
      const int t = order[i];
      order[i] = order[r];
      order[r] = t;
    }
    unsigned char *chosen = (unsigned char *)(order + S); /* S bytes after the order */
    memset(chosen, 0, S);
    for (int i = 0; i < m; i++) chosen[order[i]] = 1;
    for (size_t k = 0; k < S; k++) {
      const nde_traj *tr = nde_data_traj(d, k);
      for (size_t i = 0; i < tr->n; i++) keep[row++] = (unsigned char)(chosen[k] || i == 0);
    }
    return;
  }
  for (size_t k = 0; k < S; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    const int rows = (int)tr->n - 1;
    int m = (int)lround(fraction * (double)rows);
    if (m < 1) m = 1;
    if (m > rows) m = rows;
    for (int i = 0; i < rows; i++) order[i] = i + 1;
    for (int i = 0; i < m; i++) {
      const int r = i + (int)(nde_rng_u64(&rng) % (uint64_t)(rows - i));
      const int t = order[i];
      order[i] = order[r];
      order[r] = t;
    }
    memset(keep + row, 0, tr->n);
    keep[row] = 1;
    for (int i = 0; i < m; i++) keep[row + (size_t)order[i]] = 1;
    row += tr->n;
  }
}

nde_status nde_result_fit_ensemble(nde_model *model, const nde_data *data,
                                   const nde_result_fit_opts *opts, const nde_ensemble_opts *eo,
                                   nde_result **out, int *stopped, nde_error *err) {
  if (stopped) *stopped = 0;
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_result_fit_ensemble: no output pointer");
  *out = NULL;
  if (!model || !data) return nde__fail(err, NDE_ERR_ARG, "an ensemble needs a model and data");
  const nde_result_fit_opts o = opts ? *opts : nde_result_fit_opts_default();
  const nde_ensemble_opts e = eo ? *eo : nde_ensemble_opts_default();
  const size_t S = nde_data_n_traj(data);
  if (e.members < 2 || e.members > 100000)
    return nde__fail(err, NDE_ERR_ARG, "an ensemble needs 2 to 100000 members (got %d)",
                     e.members);
  if (e.resample < NDE_RESAMPLE_NONE || e.resample > NDE_RESAMPLE_TIME)
    return nde__fail(err, NDE_ERR_ARG, "unknown resampling %d", (int)e.resample);
  if (e.resample != NDE_RESAMPLE_NONE && !(e.fraction > 0 && e.fraction < 1))
    return nde__fail(err, NDE_ERR_ARG,
                     "the resampled fraction must be in (0, 1) (got %g)", e.fraction);
  if (e.resample == NDE_RESAMPLE_SERIES && S < 2)
    return nde__fail(err, NDE_ERR_ARG,
                     "resampling the series needs at least 2 series (the data have %zu): "
                     "resample the time points instead",
                     S);
  if (o.resume)
    return nde__fail(err, NDE_ERR_ARG, "an ensemble cannot resume a checkpoint (fit it anew)");
  /* Members run on the threads of one process; their fits would each take every rank of an
   * MPI launch from worker threads, which MPI (FUNNELED) does not allow: refused up front. */
  {
    nde_comm *comm = NULL;
    nde_error sub;
    if (nde_comm_create(NDE_COMM_AUTO, &comm, &sub) != NDE_OK)
      return nde__fail(err, sub.status, "%s", sub.msg);
    const int ranks = nde_comm_size(comm);
    nde_comm_destroy(&comm);
    if (ranks > 1)
      return nde__fail(err, NDE_ERR_UNSUPPORTED,
                       "an ensemble is not distributed over MPI ranks (this launch has %d): fit it "
                       "in one process, whose members run on every core (--jobs)",
                       ranks);
  }
  const int K = e.members, resampled = e.resample != NDE_RESAMPLE_NONE;
  /* Jobs: the members, and with resampling the fit to all the data (the result's own). */
  const int n_jobs = K + resampled;
  const size_t n_rows = nde_data_n_times(data);
  ens_ctx E;
  memset(&E, 0, sizeof E);
  atomic_init(&E.stop, 0);
  E.model = model;
  E.data = data;
  E.o = &o;
  E.mdata = calloc((size_t)n_jobs, sizeof *E.mdata);
  E.seed = calloc((size_t)n_jobs, sizeof *E.seed);
  E.res = calloc((size_t)n_jobs, sizeof *E.res);
  E.st = calloc((size_t)n_jobs, sizeof *E.st);
  E.err = calloc((size_t)n_jobs, sizeof *E.err);
  struct nde__ens *ens = calloc(1, sizeof *ens);
  int *order = calloc(n_rows + 2 * S + 8, sizeof *order);
  nde_result *main_r = NULL;
  nde_status st = NDE_OK;
  if (!E.mdata || !E.seed || !E.res || !E.st || !E.err || !ens || !order) goto nomem;
  ens->k = K;
  ens->resample = e.resample;
  ens->fraction = resampled ? e.fraction : 1.0;
  ens->seed = o.seed;
  ens->n_rows = n_rows;
  ens->m = calloc((size_t)K, sizeof *ens->m);
  ens->keep = malloc((size_t)K * (n_rows ? n_rows : 1));
  if (!ens->m || !ens->keep) goto nomem;
  memset(ens->keep, 1, (size_t)K * n_rows);
  for (int k = 0; k < K; k++) {
    E.seed[k] = o.seed + (uint64_t)k;
    if (!resampled) continue;
    unsigned char *keep = ens->keep + (size_t)k * n_rows;
    make_mask(data, e.resample, e.fraction, E.seed[k], keep, order);
    if ((st = nde_data_masked(data, keep, &E.mdata[k], err)) != NDE_OK) goto done;
  }
  if (resampled) E.seed[K] = o.seed;
  ens_prog EP = {&E, e.progress, e.progress_ctx};
  const int threads = nde__par_threads(e.threads, n_jobs);
  const int rc = nde__par_run(n_jobs, threads, ens_job, &E, ens_progress, &EP);
  if (rc == NDE__PAR_STOPPED || atomic_load(&E.stop)) {
    if (stopped) *stopped = 1;
    goto done;
  }
  /* The first error (by job order, not by which thread saw it first). */
  for (int j = 0; j < n_jobs; j++)
    if (E.st[j] != NDE_OK && E.res[j] == NULL) {
      st = E.st[j];
      if (err) {
        *err = E.err[j];
        char tmp[NDE_ERROR_MSG_MAX];
        snprintf(tmp, sizeof tmp, "%s", E.err[j].msg);
        nde__fail(err, st, "ensemble member %d (seed %llu): %s", j,
                  (unsigned long long)E.seed[j], tmp);
      }
      goto done;
    }
  for (int j = 0; j < n_jobs; j++)
    if (!E.res[j]) {
      /* A job that never ran (the run stopped early on another's error). */
      st = nde__fail(err, NDE_ERR_INTERNAL, "ensemble member %d did not run", j);
      goto done;
    }
  const int n = nde_model_state_dim(model);
  for (int k = 0; k < K; k++) {
    const nde_result *mr = E.res[k];
    nde__member *m = &ens->m[k];
    m->seed = E.seed[k];
    m->status = mr->status;
    m->loss = mr->kept.loss;
    m->kept = mr->kept;
    m->iterations = (long)mr->n_hist;
    m->theta = nde__dalloc(mr->n_theta);
    m->u0 = nde__dalloc((size_t)mr->n_series * (size_t)n);
    if (!m->theta || !m->u0) goto nomem;
    memcpy(m->theta, mr->theta, mr->n_theta * sizeof *m->theta);
    for (int s = 0; s < mr->n_series; s++)
      memcpy(m->u0 + (size_t)s * (size_t)n, mr->series[s].u0, (size_t)n * sizeof *m->u0);
  }
  const int mj = resampled ? K : 0;
  main_r = E.res[mj];
  E.res[mj] = NULL;
  main_r->ens = ens;
  ens = NULL;
  if (o.checkpoint_path && (st = nde_result_save(main_r, o.checkpoint_path, err)) != NDE_OK) {
    /* As nde_result_fit: the result is handed over so that it can be saved elsewhere. */
    *out = main_r;
    main_r = NULL;
    goto done;
  }
  *out = main_r;
  main_r = NULL;
  goto done;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
done:
  for (int j = 0; j < n_jobs; j++) {
    if (E.mdata) nde_data_destroy(&E.mdata[j]);
    if (E.res) nde_result_destroy(&E.res[j]);
  }
  free(E.mdata);
  free(E.seed);
  free(E.res);
  free(E.st);
  free(E.err);
  free(order);
  nde__ens_free(ens);
  nde_result_destroy(&main_r);
  return st;
}

/* ---- spreads and bands ---- */

static int member_good(const nde__member *m) {
  return m->status == NDE_FIT_DONE || m->status == NDE_FIT_EARLY_STOP;
}

/* Whether member k fitted any row of series s beyond its first (a series left out by series
 * resampling keeps only its first row: its per-series values were not fitted). */
static int member_saw_series(const nde_result *r, int k, int s) {
  size_t row = 0;
  for (int q = 0; q < s; q++) row += r->series[q].n_obs;
  const unsigned char *keep = r->ens->keep + (size_t)k * r->ens->n_rows + row;
  for (size_t i = 1; i < r->series[s].n_obs; i++)
    if (keep[i]) return 1;
  return 0;
}

nde_status nde_result_param_spread(const nde_result *r, int i, int s, double level,
                                   nde_spread *out) {
  if (!r || !out || !r->ens || !(level > 0 && level < 1)) return NDE_ERR_ARG;
  nde_model_param_info pi;
  if (nde_model_get_param(r->model, i, &pi) != NDE_OK) return NDE_ERR_ARG;
  if (pi.per_series && (s < 0 || s >= r->n_series)) return NDE_ERR_ARG;
  double *v = nde__dalloc((size_t)r->ens->k);
  if (!v) return NDE_ERR_NOMEM;
  int cnt = 0;
  for (int k = 0; k < r->ens->k; k++) {
    const nde__member *m = &r->ens->m[k];
    if (!member_good(m) || (pi.per_series && !member_saw_series(r, k, s))) continue;
    const double x = pi.per_series ? nde_model_param_value_series(r->model, i, m->theta, s)
                                   : nde_model_param_value(r->model, i, m->theta);
    if (isfinite(x)) v[cnt++] = x;
  }
  memset(out, 0, sizeof *out);
  out->n = cnt;
  double sum = 0, ss = 0;
  for (int k = 0; k < cnt; k++) sum += v[k];
  out->mean = cnt ? sum / cnt : NAN;
  for (int k = 0; k < cnt; k++) ss += (v[k] - out->mean) * (v[k] - out->mean);
  out->sd = cnt > 1 ? sqrt(ss / (cnt - 1)) : NAN;
  nde__sort_doubles(v, (size_t)cnt);
  out->median = nde__quantile_sorted(v, cnt, 0.5);
  out->lower = nde__quantile_sorted(v, cnt, (1 - level) / 2);
  out->upper = nde__quantile_sorted(v, cnt, (1 + level) / 2);
  free(v);
  return NDE_OK;
}

/* Where a band goes: lower, upper (and mid, may be NULL), n_times x the band's columns; lo NULL
 * when that band is not asked for. */
typedef struct band_out {
  double *lo, *mid, *hi;
} band_out;

/* The linearised band of w columns from values V and their sensitivities G (P coordinates each):
 * V -/+ q sqrt(g C g^T).  ok = 0 (the solve stopped): NaN. */
static void linear_fill(const struct nde__unc *u, double q, size_t n_times, int w,
                        const double *V, const double *G, int ok, const band_out *b) {
  const int P = u->pub.n;
  for (size_t a = 0; a < n_times * (size_t)w; a++) {
    const double *g = G + a * (size_t)P;
    double var = 0;
    for (int x = 0; x < P; x++)
      for (int y = 0; y < P; y++) var += g[x] * u->cov[(size_t)x * P + (size_t)y] * g[y];
    /* A sensitivity that is not finite gives no band there (fmax would hide a NaN). */
    const double y0 = ok ? V[a] : NAN, h = isnan(var) ? NAN : q * sqrt(fmax(var, 0));
    if (b->mid) b->mid[a] = y0;
    b->lo[a] = y0 - h;
    b->hi[a] = y0 + h;
  }
}

/* The linearised band of a single fit from its covariance: the states' (bs) and the
 * observables' (bo), from one sensitivity solve. */
static nde_status linear_band(const nde_result *r, const nde_start *start, size_t n_times,
                              const double *times, const nde_solver_opts *solver, double level,
                              const band_out *bs, const band_out *bo, int *n_used,
                              nde_error *err) {
  const struct nde__unc *u = r->unc;
  if (!u->cols)
    return nde__fail(err, NDE_ERR_ARG, "the standard errors of this result name coordinates "
                     "the model does not have");
  const int n = nde_model_state_dim(r->model), P = u->pub.n;
  nde_solver_opts so = solver ? *solver : r->settings.solver;
  if (!solver) {
    const nde_solver_method_info *mi = nde_solver_method_find(so.method);
    if (mi && !mi->adaptive && so.dt <= 0) so.dt = nde_result_step(r);
  }
  /* Where the trajectory starts and which initial states it carries. */
  double t0;
  const int observe = bo->lo != NULL, no = observe ? nde_model_n_observables(r->model) : 0;
  double *u0 = nde__dalloc((size_t)n), *Y = nde__dalloc(n_times * (size_t)n);
  double *Sm = nde__dalloc(n_times * (size_t)n * (size_t)P);
  double *H = observe ? nde__dalloc(n_times * (size_t)no) : NULL;
  double *Sh = observe ? nde__dalloc(n_times * (size_t)no * (size_t)P) : NULL;
  nde__coord *cols = calloc((size_t)P + 1, sizeof *cols);
  nde_status st = NDE_OK;
  if (!u0 || !Y || !Sm || !cols || (observe && (!H || !Sh))) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  memcpy(cols, u->cols, (size_t)P * sizeof *cols);
  int series = start->series;
  if (start->kind == NDE_START_STATE) {
    if ((st = nde_result_start_state(r, start, &t0, u0, err)) != NDE_OK) goto done;
    /* A given state has no uncertainty of its own: no initial-state directions. */
    for (int j = 0; j < P; j++)
      if (cols[j].kind == NDE_UNC_INITIAL_STATE) cols[j].series = -2;
  } else {
    nde_start fitted = {.kind = NDE_START_FITTED, .series = series};
    if ((st = nde_result_start_state(r, &fitted, &t0, u0, err)) != NDE_OK) goto done;
    if (start->kind == NDE_START_AT_TIME) {
      double ta;
      double *tmp = nde__dalloc((size_t)n);
      if (!tmp) {
        st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
      st = nde_result_start_state(r, start, &ta, tmp, err); /* checks the time */
      free(tmp);
      if (st != NDE_OK) goto done;
      if (times[0] < ta) {
        st = nde__fail(err, NDE_ERR_ARG, "the first output time is before the start");
        goto done;
      }
    }
  }
  /* The data that drive it, as nde_result_integrate takes them. */
  nde_input_series own;
  const nde_input_series *inp = NULL;
  const double *cs = NULL;
  if ((st = nde__start_binding(r, start, &own, &inp, &cs, err)) != NDE_OK) goto done;
  if ((st = nde_model_check_input_span(r->model, inp, t0, times[n_times - 1], err)) != NDE_OK)
    goto done;
  int ok;
  if ((st = nde__forecast_sens(r, &so, series, inp, cs, u0, t0, n_times, times, P, cols, Y, Sm,
                               H, Sh, &ok, err)) != NDE_OK)
    goto done;
  const double q = u->pub.noise == NDE_NOISE_KNOWN
                       ? nde__norm_quantile(0.5 + level / 2)
                       : nde__t_quantile(0.5 + level / 2, (double)u->pub.dof);
  if (bs->lo) linear_fill(u, q, n_times, n, Y, Sm, ok, bs);
  if (observe) linear_fill(u, q, n_times, no, H, Sh, ok, bo);
  if (n_used) *n_used = ok ? 1 : 0;
done:
  free(u0);
  free(Y);
  free(Sm);
  free(H);
  free(Sh);
  free(cols);
  return st;
}

/* The quantiles at level over the members used of cells values each (member k's at
 * Ys + k cells), w to a time; *last: the members counted at the last time. */
static void quantile_fill(size_t cells, int w, int K, const double *Ys, const int *used,
                          double level, double *v, const band_out *b, int *last) {
  *last = 0;
  for (size_t a = 0; a < cells; a++) {
    int cnt = 0;
    for (int k = 0; k < K; k++) {
      const double y = Ys[(size_t)k * cells + a];
      if (used[k] && isfinite(y)) v[cnt++] = y;
    }
    nde__sort_doubles(v, (size_t)cnt);
    b->lo[a] = nde__quantile_sorted(v, cnt, (1 - level) / 2);
    b->hi[a] = nde__quantile_sorted(v, cnt, (1 + level) / 2);
    if (b->mid) b->mid[a] = nde__quantile_sorted(v, cnt, 0.5);
    if (a + (size_t)w >= cells && cnt > *last) *last = cnt;
  }
}

/* The bands of the states (bs) and of the observables (bo), either not asked for when its lo is
 * NULL: over the members (each integrated once, its observables along its own trajectory), or
 * linearised (one sensitivity solve). */
static nde_status bands(const nde_result *r, const nde_start *start, size_t n_times,
                        const double *times, const nde_solver_opts *solver, double level,
                        const band_out *bs, const band_out *bo, int *n_used, nde_error *err) {
  if (!r || !start || !times || n_times < 1 || (!bs->lo && !bo->lo) || (bs->lo && !bs->hi) ||
      (bo->lo && !bo->hi))
    return nde__fail(err, NDE_ERR_ARG, "a band needs a result, a start, times and outputs");
  if (bo->lo && nde_model_n_observables(r->model) == 0)
    return nde__fail(err, NDE_ERR_ARG, "the model declares no observables");
  if (!(level > 0 && level < 1))
    return nde__fail(err, NDE_ERR_ARG, "the band's level must be in (0, 1) (got %g)", level);
  if (!r->ens) {
    if (!r->unc)
      return nde__fail(err, NDE_ERR_ARG,
                       "the result has neither ensemble members nor standard errors (fit with "
                       "--ensemble K or --uncertainty)");
    return linear_band(r, start, n_times, times, solver, level, bs, bo, n_used, err);
  }
  const int n = nde_model_state_dim(r->model), K = r->ens->k;
  const int no = bo->lo ? nde_model_n_observables(r->model) : 0;
  nde_result *c = NULL;
  nde_status st = copy_core(r, &c, err);
  if (st != NDE_OK) return st;
  /* Every member's states (all of them: the observables need them) and observables. */
  const size_t cs = n_times * (size_t)n, co = n_times * (size_t)no;
  double *Ys = nde__dalloc(cs * (size_t)K), *Hs = no ? nde__dalloc(co * (size_t)K) : NULL;
  double *v = nde__dalloc((size_t)K);
  int *used = calloc((size_t)K, sizeof *used);
  if (!Ys || !v || !used || (no && !Hs)) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  int n_good = 0, first_out = -1;
  nde_error why = {0};
  for (int k = 0; k < K; k++) {
    double *Y = Ys + (size_t)k * cs, *H = no ? Hs + (size_t)k * co : NULL;
    if (!member_good(&r->ens->m[k])) continue;
    set_member(c, r->ens, k);
    nde_solve_stats ss;
    nde_error sub;
    st = nde_result_integrate(c, start, n_times, times, solver, Y, &ss, &sub);
    /* The observables along the member's trajectory, with its own parameters (NaN after a
     * stop, as the states). */
    if (st == NDE_OK && no) st = nde_result_observe(c, start, n_times, times, Y, H, &sub);
    if (st == NDE_ERR_ARG || st == NDE_ERR_NUMERIC) {
      /* A start the member's own trajectory cannot give (it stops before the time): left out. */
      if (first_out < 0) first_out = k, why = sub;
      st = NDE_OK;
      continue;
    }
    if (st != NDE_OK) {
      if (err) *err = sub;
      goto done;
    }
    used[k] = 1;
    n_good++;
  }
  if (n_good == 0) {
    if (first_out >= 0)
      st = nde__fail(err, why.status, "no member of the ensemble could be integrated (member %d: "
                     "%s)", first_out, why.msg);
    else
      st = nde__fail(err, NDE_ERR_NUMERIC, "no member of the ensemble could be integrated (no "
                     "member finished its fit)");
    goto done;
  }
  int last_s = 0, last_o = 0;
  if (bs->lo) quantile_fill(cs, n, K, Ys, used, level, v, bs, &last_s);
  if (no) quantile_fill(co, no, K, Hs, used, level, v, bo, &last_o);
  if (n_used) *n_used = bs->lo ? last_s : last_o;
done:
  free(Ys);
  free(Hs);
  free(v);
  free(used);
  nde_result_destroy(&c);
  return st;
}

nde_status nde_result_integrate_band(const nde_result *r, const nde_start *start, size_t n_times,
                                     const double *times, const nde_solver_opts *solver,
                                     double level, double *lower, double *mid, double *upper,
                                     int *n_used, nde_error *err) {
  const band_out bs = {lower, mid, upper}, bo = {NULL, NULL, NULL};
  return bands(r, start, n_times, times, solver, level, &bs, &bo, n_used, err);
}

nde_status nde_result_observe_band(const nde_result *r, const nde_start *start, size_t n_times,
                                   const double *times, const nde_solver_opts *solver,
                                   double level, double *lower, double *mid, double *upper,
                                   int *n_used, nde_error *err) {
  const band_out bs = {NULL, NULL, NULL}, bo = {lower, mid, upper};
  return bands(r, start, n_times, times, solver, level, &bs, &bo, n_used, err);
}

nde_status nde_result_forecast_band(const nde_result *r, const nde_start *start, size_t n_times,
                                    const double *times, const nde_solver_opts *solver,
                                    double level, double *lower, double *mid, double *upper,
                                    double *obs_lower, double *obs_mid, double *obs_upper,
                                    int *n_used, nde_error *err) {
  const band_out bs = {lower, mid, upper}, bo = {obs_lower, obs_mid, obs_upper};
  return bands(r, start, n_times, times, solver, level, &bs, &bo, n_used, err);
}
