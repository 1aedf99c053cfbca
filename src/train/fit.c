/* The fit objective: squared error of a model's solution against time series, with learnable
 * initial states, per-state scaling, log-space comparison, minibatches over series and windows,
 * and multiple shooting (segments with their own learnable start states tied by a continuity
 * penalty; Bock & Plitt 1984, as used for neural ODEs by Turan & Jaschke 2021).  This file: the
 * options, the scales of the learned states, the pieces of an evaluation, the start point and
 * single-series predictions.  The pieces are solved in batches by fit_eval.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fit_internal.h"

nde_fit_opts nde_fit_opts_default(void) {
  nde_fit_opts o;
  memset(&o, 0, sizeof o);
  o.shoot_weight = 10.0;
  o.batch_windows = 4;
  o.scale_states = 1;
  o.batch_rows = NDE_FIT_BATCH_ROWS;
  return o;
}

void nde__fit_worker_free(nde__worker *w) {
  nde_grad_destroy(&w->grad);
  nde_solver_destroy(&w->solver);
  if (w->own_rhs) nde_rhs_destroy(&w->rhs);
  w->rhs = NULL;
  free(w->series_of_row);
  free(w->U0);
  free(w->gU);
  free(w->snext);
  free(w->rows);
  free(w->bp);
  if (w->own_obs) nde_observer_destroy(&w->obs);
  free(w->H);
  free(w->LH);
  free(w->gth_obs);
  memset(w, 0, sizeof *w);
}

void nde_fit_destroy(nde_fit **fp) {
  if (!fp || !*fp) return;
  nde_fit *f = *fp;
  for (int i = 0; i < f->n_workers; i++) nde__fit_worker_free(&f->workers[i]);
  free(f->workers);
  free(f->series);
  free(f->w);
  free(f->wser);
  free(f->rms);
  free(f->scale);
  free(f->ustart);
  free(f->seg_first);
  free(f->order);
  free(f->Y);
  free(f->pieces);
  free(f->pdata);
  free(f->ppen);
  free(f->pgu);
  free(f->pdn);
  free(f->groups);
  free(f->prow);
  free(f->class_of);
  free(f->class_rep);
  free(f->hslot);
  free(f->pbp_off);
  free(f->pbp_n);
  free(f->bpool);
  free(f->gth);
  free(f->ex);
  free(f->acc);
  free(f->red);
  free(f);
  *fp = NULL;
}

const char *nde_fit_errmsg(const nde_fit *f) { return nde__err_msg(f ? &f->err : NULL); }
size_t nde_fit_n_theta(const nde_fit *f) { return f->n_theta; }
const double *nde_fit_weights(const nde_fit *f) { return f->w; }
int nde_fit_n_columns(const nde_fit *f) { return f ? f->K : 0; }

size_t nde_fit_n_x(const nde_fit *f, int shooting) {
  size_t nx = f->n_theta;
  if (f->o.learn_u0) nx += (size_t)f->n_series * (size_t)f->n;
  if (shooting) nx += (size_t)f->n_seg_extra * (size_t)f->n;
  return nx;
}

/* Segments of series s under multiple shooting: [a, a + interval] ... */
int nde__fit_n_segments(const nde_fit *f, int n_obs) {
  if (f->o.shoot_interval <= 0) return 1;
  return (n_obs - 2) / f->o.shoot_interval + 1;
}


static long u0_offset(const nde_fit *f, int s) {
  return f->o.learn_u0 ? (long)f->n_theta + (long)s * f->n : -1;
}

static long seg_offset(const nde_fit *f, int s, int j) {
  /* start state of segment j >= 1 of series s */
  long base = (long)f->n_theta + (f->o.learn_u0 ? (long)f->n_series * f->n : 0);
  return base + (f->seg_first[s] + j - 1) * f->n;
}

/* How messages name series s: its name, or "series s" (0-based, as the data layer counts). */
static const char *series_label(const nde_fit_opts *o, int s, char *buf, size_t len) {
  if (o && o->series_names && o->series_names[s] && o->series_names[s][0])
    return o->series_names[s];
  snprintf(buf, len, "series %d", s);
  return buf;
}

nde_status nde_fit_create(nde_rhs *rhs, const nde_solver_opts *sopts, const nde_grad_opts *gopts,
                          int n_series, const nde_fit_series *series, const nde_fit_opts *opts,
                          nde_fit **out, nde_error *err) {
  nde__err e0 = {NDE_ERR_ARG, "fit needs a model, an output pointer and at least one series"};
  if (!out || !rhs || n_series < 1 || !series) {
    nde__err_export(&e0, err);
    if (out) *out = NULL;
    return NDE_ERR_ARG;
  }
  *out = NULL;
  char lab[256];
  nde_fit *f = calloc(1, sizeof *f);
  if (!f) {
    e0 = (nde__err){NDE_ERR_NOMEM, "out of memory"};
    nde__err_export(&e0, err);
    return NDE_ERR_NOMEM;
  }
  nde_status st = NDE_ERR_NOMEM;
  f->rhs = rhs;
  f->o = opts ? *opts : nde_fit_opts_default();
  const nde_rhs_info *info = nde_rhs_get_info(rhs);
  f->n = info->n_state;
  f->n_theta = info->n_theta;
  f->n_series = n_series;
  const int n = f->n;
  f->K = f->o.observer ? nde_observer_n_outputs(f->o.observer) : n;
  const int K = f->K;
  if (f->o.observer && f->o.batch_time > 0) {
    st = nde__errf(&f->err, NDE_ERR_ARG,
                   "minibatch windows start from observed states, which an observation model "
                   "does not give (fit without batch_time, or observe the states)");
    goto fail;
  }
  if (!(f->o.l2 >= 0) || !(f->o.l1 >= 0) || !isfinite(f->o.l2) || !isfinite(f->o.l1)) {
    st = nde__errf(&f->err, NDE_ERR_ARG, "regularisation weights must be >= 0 (got l2 %g, l1 %g)",
                   f->o.l2, f->o.l1);
    goto fail;
  }
  /* Each bad option named with its value. */
  st = NDE_OK;
  if (f->o.shoot_interval < 0)
    st = nde__errf(&f->err, NDE_ERR_ARG, "shoot_interval is %d (expected >= 0)",
                   f->o.shoot_interval);
  else if (!(f->o.shoot_weight >= 0) || !isfinite(f->o.shoot_weight))
    st = nde__errf(&f->err, NDE_ERR_ARG, "shoot_weight is %g (expected a finite value >= 0)",
                   f->o.shoot_weight);
  else if (f->o.batch_series < 0 || f->o.batch_series > n_series)
    st = nde__errf(&f->err, NDE_ERR_ARG,
                   "batch_series is %d (expected 0 for all, or 1 to the %d series)",
                   f->o.batch_series, n_series);
  else if (f->o.batch_time < 0)
    st = nde__errf(&f->err, NDE_ERR_ARG, "batch_time is %d (expected >= 0)", f->o.batch_time);
  else if (f->o.batch_time > 0 && f->o.batch_windows < 1)
    st = nde__errf(&f->err, NDE_ERR_ARG, "batch_windows is %d (expected >= 1)",
                   f->o.batch_windows);
  else if (f->o.batch_rows < 0)
    st = nde__errf(&f->err, NDE_ERR_ARG, "batch_rows is %d (expected >= 0)", f->o.batch_rows);
  if (st != NDE_OK) goto fail;
  st = NDE_ERR_NOMEM; /* what a failed allocation below reports */
  /* The largest batch: batch_rows (0: the default), within what the rhs accepts. */
  f->cap = f->o.batch_rows > 0 ? f->o.batch_rows : NDE_FIT_BATCH_ROWS;
  if (f->cap > info->max_batch) f->cap = info->max_batch;
  if (f->cap < 1) f->cap = 1;
  f->series = calloc((size_t)n_series, sizeof *f->series);
  f->seg_first = calloc((size_t)n_series, sizeof *f->seg_first);
  f->order = calloc((size_t)n_series, sizeof *f->order);
  f->w = nde__dalloc((size_t)K);
  f->wser = nde__dalloc((size_t)n_series * (size_t)K);
  f->rms = nde__dalloc((size_t)n);
  f->ustart = nde__dalloc((size_t)n);
  if (!f->series || !f->seg_first || !f->order || !f->w || !f->wser || !f->rms || !f->ustart)
    goto fail;
  memcpy(f->series, series, (size_t)n_series * sizeof *series);
  long max_pieces = 0;
  for (int s = 0; s < n_series; s++) {
    const nde_fit_series *se = &series[s];
    if (se->loss_from < 0 || se->loss_from >= se->n_obs) {
      st = nde__errf(&f->err, NDE_ERR_ARG, "%s: loss_from %d outside [0, %d)",
                     series_label(opts, s, lab, sizeof lab), se->loss_from, se->n_obs);
      goto fail;
    }
    if (se->n_obs < 2 || !se->t || !se->obs || !se->u0) {
      st = nde__errf(&f->err, NDE_ERR_ARG, "%s needs at least 2 observation times (has %d)",
                     series_label(opts, s, lab, sizeof lab), se->n_obs);
      goto fail;
    }
    if (f->o.batch_time > 0 && f->o.batch_time >= se->n_obs) {
      st = nde__errf(&f->err, NDE_ERR_ARG,
                     "minibatch windows of %d intervals do not fit in %s (%d observation "
                     "times)",
                     f->o.batch_time, series_label(opts, s, lab, sizeof lab), se->n_obs);
      goto fail;
    }
    if (f->o.batch_time > 0 && f->o.batch_windows > se->n_obs - f->o.batch_time) {
      st = nde__errf(&f->err, NDE_ERR_ARG,
                     "batch_windows is %d, above the %d windows of %d intervals that %s has "
                     "(expected at most that many per series)",
                     f->o.batch_windows, se->n_obs - f->o.batch_time, f->o.batch_time,
                     series_label(opts, s, lab, sizeof lab));
      goto fail;
    }
    if (f->o.batch_time > 0) {
      int full = 0;
      for (int k = 0; k + f->o.batch_time < se->n_obs && !full; k++) {
        full = 1;
        for (int i = 0; i < n; i++) full &= !isnan(se->obs[(size_t)k * n + i]);
      }
      if (!full) {
        st = nde__errf(&f->err, NDE_ERR_ARG,
                       "minibatch windows start from an observed state, but %s has no "
                       "row with every state observed",
                       series_label(opts, s, lab, sizeof lab));
        goto fail;
      }
    }
    if (se->n_obs > f->max_obs) f->max_obs = se->n_obs;
    f->seg_first[s] = f->n_seg_extra;
    const int nseg = nde__fit_n_segments(f, se->n_obs);
    f->n_seg_extra += nseg - 1;
    max_pieces += nseg > f->o.batch_windows ? nseg : f->o.batch_windows;
  }
  /* The root mean square of each state's observed values (1 for a state never observed or
   * always 0); with an observer, of the series' initial states. */
  for (int i = 0; i < n; i++) {
    double ss = 0;
    long cs = 0;
    for (int s2 = 0; s2 < n_series; s2++) {
      if (f->o.observer) {
        ss += series[s2].u0[i] * series[s2].u0[i];
        cs++;
        continue;
      }
      for (int k = 0; k < series[s2].n_obs; k++) {
        const double o = series[s2].obs[(size_t)k * n + i];
        if (isnan(o)) continue;
        ss += o * o;
        cs++;
      }
    }
    f->rms[i] = cs && ss > 0 && isfinite(ss) ? sqrt(ss / (double)cs) : 1.0;
  }
  /* Per-column weights: 1 / variance of the observed values, when asked for; a series' known
   * sigma replaces them for its columns. */
  for (int i = 0; i < K; i++) {
    f->w[i] = 1.0;
    if (!f->o.scale_by_std) continue;
    double sum = 0, sum2 = 0;
    long cnt = 0;
    for (int s = 0; s < n_series; s++)
      for (int k = 0; k < series[s].n_obs; k++) {
        const double o = series[s].obs[(size_t)k * K + i];
        if (isnan(o)) continue;
        sum += o;
        sum2 += o * o;
        cnt++;
      }
    if (cnt > 1) {
      const double mean = sum / (double)cnt;
      const double var = (sum2 - (double)cnt * mean * mean) / (double)(cnt - 1);
      if (var > 0) f->w[i] = 1.0 / var;
    }
  }
  for (int s = 0; s < n_series; s++)
    for (int i = 0; i < K; i++) {
      const double sg = f->o.sigma ? f->o.sigma[(size_t)s * (size_t)K + (size_t)i] : NAN;
      if (!isnan(sg) && !(sg > 0 && isfinite(sg))) {
        st = nde__errf(&f->err, NDE_ERR_ARG, "%s: sigma of column %d is %g (expected a "
                       "positive noise standard deviation, or NaN for unknown)",
                       series_label(opts, s, lab, sizeof lab), i, sg);
        goto fail;
      }
      f->wser[(size_t)s * (size_t)K + (size_t)i] = sg > 0 ? 1.0 / (sg * sg) : f->w[i];
    }
  /* The scale of every learned state in x: its own size (the observation at that time, or the
   * series' initial state; the state's RMS where unobserved), at least 1e-3 of the state's RMS, so
   * that one optimiser step moves every start state by a similar relative amount: 1e-5 as much
   * as 1.  Without scaling (scale_states = 0) every scale is 1. */
  const size_t n_learn = nde_fit_n_x(f, 1) - f->n_theta;
  f->scale = nde__dalloc(n_learn);
  if (!f->scale) goto fail;
  for (size_t q = 0; q < n_learn; q++) f->scale[q] = 1.0;
  if (f->o.scale_states)
    for (int s2 = 0; s2 < n_series; s2++) {
      const nde_fit_series *se = &series[s2];
      for (int i = 0; i < n && f->o.learn_u0; i++)
        f->scale[(size_t)s2 * (size_t)n + (size_t)i] = fmax(fabs(se->u0[i]), 1e-3 * f->rms[i]);
      const int nseg = nde__fit_n_segments(f, se->n_obs);
      for (int j = 1; j < nseg; j++) {
        const int a = j * f->o.shoot_interval, b = j + 1 == nseg ? se->n_obs - 1 : a + f->o.shoot_interval;
        for (int i = 0; i < n; i++) {
          double m = 0;
          for (int k = a; k <= b && !f->o.observer; k++) {
            const double o = se->obs[(size_t)k * (size_t)n + (size_t)i];
            if (!isnan(o) && fabs(o) > m) m = fabs(o);
          }
          f->scale[(size_t)(seg_offset(f, s2, j) - (long)f->n_theta) + (size_t)i] =
              fmax(m > 0 ? m : f->rms[i], 1e-3 * f->rms[i]);
        }
      }
    }
  f->cap_pieces = max_pieces;
  const size_t mp = (size_t)max_pieces;
  f->pieces = calloc(mp, sizeof *f->pieces);
  f->pdata = nde__dalloc(mp);
  f->ppen = nde__dalloc(mp);
  f->pgu = nde__dalloc(mp * (size_t)n);
  f->pdn = nde__dalloc(mp * (size_t)n);
  f->groups = calloc(mp, sizeof *f->groups);
  f->prow = calloc(mp, sizeof *f->prow);
  f->class_of = calloc(mp, sizeof *f->class_of);
  f->class_rep = calloc(mp, sizeof *f->class_rep);
  f->pbp_off = calloc(mp, sizeof *f->pbp_off);
  f->pbp_n = calloc(mp, sizeof *f->pbp_n);
  f->Y = nde__dalloc((size_t)f->max_obs * (size_t)n);
  f->n_comp = nde_fit_n_x(f, 1) + 2;
  f->ex = calloc(f->n_comp + 1, sizeof *f->ex);
  f->acc = calloc(2 * f->n_comp, sizeof *f->acc);
  f->red = nde__dalloc(f->n_comp);
  f->workers = calloc(1, sizeof *f->workers);
  if (!f->pieces || !f->pdata || !f->ppen || !f->pgu || !f->pdn || !f->groups || !f->prow ||
      !f->class_of || !f->class_rep || !f->pbp_off || !f->pbp_n || !f->Y || !f->ex || !f->acc ||
      !f->red || !f->workers)
    goto fail;
  /* The gradient options for the workers of other threads, with the method names as static
   * strings (the caller's need not outlive the objective). */
  f->gopts = gopts ? *gopts : nde_grad_opts_default();
  {
    const nde_grad_method_info *gm = nde_grad_method_find(f->gopts.method);
    f->gopts.method = gm ? gm->name : "auto";
    f->gopts.interp = f->gopts.interp && !strcmp(f->gopts.interp, "polynomial") ? "polynomial"
                                                                                 : "hermite";
  }
  nde_error sub;
  st = nde__fit_worker_init(f, &f->workers[0], rhs, 0, sopts, gopts, &sub);
  if (st != NDE_OK) {
    nde__errf(&f->err, st, "%s", sub.msg);
    goto fail;
  }
  f->n_workers = 1;
  f->pool_min_s = NDE_FIT_POOL_MIN_SECONDS;
  f->solver = f->workers[0].solver;
  f->grad = f->workers[0].grad;
  {
    /* Under fixed steps, pieces batch only with pieces of the same breakpoints (groups.c): worth
     * looking at only when some series has any. */
    const nde_solver_method_info *mi = nde_solver_get_method(f->solver);
    int any_bp = 0;
    for (int s2 = 0; s2 < n_series && !any_bp; s2++) {
      const nde_fit_series *se = &series[s2];
      if ((st = nde_rhs_set_rows(rhs, 1, &se->id)) != NDE_OK) {
        nde__errf(&f->err, st, "%s: binding its index %d failed",
                  series_label(opts, s2, lab, sizeof lab), se->id);
        goto fail;
      }
      any_bp = nde_rhs_breakpoints(rhs, se->t[0], se->t[se->n_obs - 1], 0, NULL) > 0;
    }
    f->bp_in_key = any_bp && !f->o.autonomous &&
                   (!mi->adaptive || nde_solver_get_opts(f->solver)->fixed_step);
  }
  *out = f;
  return NDE_OK;
fail:
  if (!f->err.msg[0]) nde__errf(&f->err, st, "%s", st == NDE_ERR_NOMEM ? "out of memory"
                                                                         : nde_status_str(st));
  nde__err_export(&f->err, err);
  nde_fit_destroy(&f);
  return st;
}

/* The pieces of one evaluation (f->pieces, f->np): every series (or a minibatch of them, drawn
 * with rng) whole, cut into shooting segments, or as windows drawn with rng. */
void nde__fit_make_pieces(nde_fit *f, int shooting, nde_rng *rng) {
  int n_sel = f->n_series;
  for (int s = 0; s < f->n_series; s++) f->order[s] = s;
  if (rng && f->o.batch_series > 0) {
    /* Partial Fisher-Yates: the first batch_series entries are a uniform sample. */
    for (int s = 0; s < f->o.batch_series; s++) {
      int r = s + (int)(nde_rng_u64(rng) % (uint64_t)(f->n_series - s));
      int tmp = f->order[s];
      f->order[s] = f->order[r];
      f->order[r] = tmp;
    }
    n_sel = f->o.batch_series;
  }
  long np = 0;
  for (int q = 0; q < n_sel; q++) {
    const int s = f->order[q];
    const nde_fit_series *se = &f->series[s];
    if (rng && f->o.batch_time > 0) {
      for (int wdw = 0; wdw < f->o.batch_windows; wdw++) {
        int a;
        for (;;) { /* a window starts at a fully observed row (one exists: checked at create) */
          a = (int)(nde_rng_u64(rng) % (uint64_t)(se->n_obs - f->o.batch_time));
          int full = 1;
          for (int i = 0; i < f->n; i++) full &= !isnan(se->obs[(size_t)a * f->n + i]);
          if (full) break;
        }
        const int from = se->loss_from - a;
        nde__piece p = {s, a, a + f->o.batch_time, -1, -1, from > 1 ? from : 1,
                        se->obs + (size_t)a * f->n};
        f->pieces[np++] = p;
      }
      continue;
    }
    const int nseg = shooting ? nde__fit_n_segments(f, se->n_obs) : 1;
    for (int j = 0; j < nseg; j++) {
      nde__piece p;
      p.series = s;
      p.a = j == 0 ? 0 : j * f->o.shoot_interval;
      p.b = j + 1 == nseg ? se->n_obs - 1 : (j + 1) * f->o.shoot_interval;
      p.x_start = j == 0 ? u0_offset(f, s) : seg_offset(f, s, j);
      p.x_next = j + 1 < nseg ? seg_offset(f, s, j + 1) : -1;
      const int from = se->loss_from - p.a, lead = j == 0 ? 0 : 1;
      p.skip = from > lead ? from : lead;
      p.u_fixed = se->u0;
      f->pieces[np++] = p;
    }
  }
  f->np = np;
}

nde_status nde_fit_u0(const nde_fit *f, const double *x, int k, double *u0) {
  if (!f || !x || !u0 || k < 0 || k >= f->n_series) return NDE_ERR_ARG;
  for (int i = 0; i < f->n; i++)
    u0[i] = f->o.learn_u0 ? f->scale[u0_offset(f, k) - (long)f->n_theta + i] * x[u0_offset(f, k) + i]
                          : f->series[k].u0[i];
  return NDE_OK;
}

nde_status nde_fit_predict(nde_fit *f, const double *x, int k, double *Y) {
  if (!f || !x || !Y || k < 0 || k >= f->n_series) return NDE_ERR_ARG;
  const nde_fit_series *se = &f->series[k];
  nde_fit_u0(f, x, k, f->ustart);
  nde_solve_stats ss;
  nde__worker *w = &f->workers[0];
  nde_status st = nde__fit_bind(w, 1, &se->id, se->t[0], se->t[se->n_obs - 1]);
  if (st != NDE_OK) return nde__errf(&f->err, st, "%s", nde__err_msg(&w->err));
  st = nde_solver_solve(f->solver, x, 1, f->ustart, se->n_obs, se->t, Y, &ss);
  if (st != NDE_OK) return nde__errf(&f->err, st, "%s", nde_solver_errmsg(f->solver));
  return NDE_OK;
}

nde_status nde_fit_init_x(nde_fit *f, const double *theta, double *x) {
  if (!f || !theta || !x) return NDE_ERR_ARG;
  const int n = f->n;
  memcpy(x, theta, f->n_theta * sizeof *x);
  for (int s = 0; s < f->n_series; s++) {
    const nde_fit_series *se = &f->series[s];
    if (f->o.learn_u0)
      for (int i = 0; i < n; i++)
        x[u0_offset(f, s) + i] = se->u0[i] / f->scale[u0_offset(f, s) - (long)f->n_theta + i];
    const int nseg = nde__fit_n_segments(f, se->n_obs);
    if (nseg < 2) continue;
    nde_status st = nde_fit_predict(f, x, s, f->Y);
    if (st != NDE_OK) return st;
    for (int j = 1; j < nseg; j++) {
      const int a = j * f->o.shoot_interval;
      double *S = x + seg_offset(f, s, j);
      for (int i = 0; i < n; i++) {
        /* The observed state where there is one (never through an observation model). */
        const double o = f->o.observer ? NAN : se->obs[(size_t)a * n + i];
        S[i] = (isnan(o) ? f->Y[(size_t)a * n + i] : o) /
               f->scale[seg_offset(f, s, j) - (long)f->n_theta + i];
        if (!isfinite(S[i])) S[i] = 0.0; /* the model's solution blew up: start from zero */
      }
    }
  }
  return NDE_OK;
}
