/* The fit objective: squared error of a model's solution against time series, with learnable
 * initial states, per-state scaling, log-space comparison, minibatches over series and windows,
 * and multiple shooting (segments with their own learnable start states tied by a continuity
 * penalty; Bock & Plitt 1984, as used for neural ODEs by Turan & Jaschke 2021).  Every piece is a
 * separate solve whose gradient comes from the grad layer with a loss that also returns the
 * penalty's derivative with respect to the next segment's start. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/train.h"

/* A piece of a series integrated on its own: a whole series, a shooting segment or a window. */
typedef struct piece {
  int series;
  int a, b;        /* observation indices: starts at t[a], ends at t[b] */
  long x_start;    /* offset in x of its learnable start state, or -1 */
  long x_next;     /* offset in x of the next segment's start (penalty), or -1 */
  int skip;        /* leading observations of the piece not in the misfit (t[a] and, with
                    * loss_from, those before it) */
  const double *u_fixed; /* the start state when it is not learnable */
} piece;

struct nde_fit {
  nde_rhs *rhs;
  nde_solver *solver;
  nde_grad *grad;
  nde_fit_opts o;
  nde__err err;
  int n;
  size_t n_theta;
  int n_series;
  nde_fit_series *series;
  double *w;         /* per-state weights */
  double *rms;       /* per-state root mean square of the observed values (1 when none) */
  double *scale;     /* per entry of the learned states in x (after theta): S = scale * x */
  double *ustart, *snext; /* scratch: a piece's start state and the next start, unscaled */
  int max_obs;
  long n_seg_extra;  /* shooting segment starts (after the first of each series) */
  long *seg_first;   /* per series: index of its first shooting start state */
  piece *pieces;     /* scratch list of the pieces of one evaluation */
  long cap_pieces;
  int *order;        /* scratch permutation of series for minibatches */
  double *gth, *gu, *Y, *dnext;
};

/* Context of the loss of one piece. */
typedef struct piece_loss {
  const nde_fit *f;
  const double *obs; /* the observations from index a */
  int skip;
  double scale;
  const double *next; /* the next segment's start state, or NULL */
  double pen_scale;
  double *dnext;      /* out: dL/d(next) */
  double data, pen;   /* out: the two parts */
} piece_loss;

static int piece_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                           double *dLdY) {
  piece_loss *pl = ctx;
  const nde_fit *f = pl->f;
  (void)B;
  double data = 0.0;
  for (int k = 0; k < n_obs; k++)
    for (int i = 0; i < n; i++) {
      const size_t q = (size_t)k * (size_t)n + (size_t)i;
      const double o = pl->obs[q];
      if (dLdY) dLdY[q] = 0.0;
      if (k < pl->skip || isnan(o)) continue;
      const double y = Y[q];
      const double r = f->o.log_space ? log(y) - log(o) : y - o;
      data += f->w[i] * r * r;
      if (dLdY) dLdY[q] = pl->scale * 2.0 * f->w[i] * r * (f->o.log_space ? 1.0 / y : 1.0);
    }
  pl->data = pl->scale * data;
  pl->pen = 0.0;
  if (pl->next) {
    const double *ye = Y + (size_t)(n_obs - 1) * (size_t)n;
    for (int i = 0; i < n; i++) {
      const double d = ye[i] - pl->next[i];
      pl->pen += pl->pen_scale * d * d;
      if (dLdY) dLdY[(size_t)(n_obs - 1) * (size_t)n + (size_t)i] += 2.0 * pl->pen_scale * d;
      pl->dnext[i] = -2.0 * pl->pen_scale * d;
    }
  }
  *L = pl->data + pl->pen;
  return 0;
}

nde_fit_opts nde_fit_opts_default(void) {
  nde_fit_opts o;
  memset(&o, 0, sizeof o);
  o.shoot_weight = 10.0;
  o.batch_windows = 4;
  o.scale_states = 1;
  return o;
}

void nde_fit_destroy(nde_fit **fp) {
  if (!fp || !*fp) return;
  nde_fit *f = *fp;
  nde_grad_destroy(&f->grad);
  nde_solver_destroy(&f->solver);
  free(f->series);
  free(f->w);
  free(f->rms);
  free(f->scale);
  free(f->ustart);
  free(f->snext);
  free(f->seg_first);
  free(f->pieces);
  free(f->order);
  free(f->gth);
  free(f->gu);
  free(f->Y);
  free(f->dnext);
  free(f);
  *fp = NULL;
}

const char *nde_fit_errmsg(const nde_fit *f) { return nde__err_msg(f ? &f->err : NULL); }
size_t nde_fit_n_theta(const nde_fit *f) { return f->n_theta; }
const double *nde_fit_weights(const nde_fit *f) { return f->w; }

size_t nde_fit_n_x(const nde_fit *f, int shooting) {
  size_t nx = f->n_theta;
  if (f->o.learn_u0) nx += (size_t)f->n_series * (size_t)f->n;
  if (shooting) nx += (size_t)f->n_seg_extra * (size_t)f->n;
  return nx;
}

/* Segments of series s under multiple shooting: [a, a + interval] ... */
static int n_segments(const nde_fit *f, int n_obs) {
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
  if (!(f->o.l2 >= 0) || !(f->o.l1 >= 0) || !isfinite(f->o.l2) || !isfinite(f->o.l1)) {
    st = nde__errf(&f->err, NDE_ERR_ARG, "regularisation weights must be >= 0 (got l2 %g, l1 %g)",
                   f->o.l2, f->o.l1);
    goto fail;
  }
  if (f->o.shoot_interval < 0 || f->o.batch_series < 0 || f->o.batch_time < 0 ||
      f->o.batch_series > n_series || !(f->o.shoot_weight >= 0) ||
      (f->o.batch_time > 0 && f->o.batch_windows < 1)) {
    st = nde__errf(&f->err, NDE_ERR_ARG,
                   "invalid fit options (shoot_interval %d, shoot_weight %g, batch_series %d of "
                   "%d series, batch_time %d, batch_windows %d)",
                   f->o.shoot_interval, f->o.shoot_weight, f->o.batch_series, n_series,
                   f->o.batch_time, f->o.batch_windows);
    goto fail;
  }
  f->series = calloc((size_t)n_series, sizeof *f->series);
  f->seg_first = calloc((size_t)n_series, sizeof *f->seg_first);
  f->order = calloc((size_t)n_series, sizeof *f->order);
  f->w = nde__dalloc((size_t)n);
  f->rms = nde__dalloc((size_t)n);
  f->ustart = nde__dalloc((size_t)n);
  f->snext = nde__dalloc((size_t)n);
  if (!f->series || !f->seg_first || !f->order || !f->w || !f->rms || !f->ustart || !f->snext)
    goto fail;
  memcpy(f->series, series, (size_t)n_series * sizeof *series);
  long max_pieces = 0;
  for (int s = 0; s < n_series; s++) {
    const nde_fit_series *se = &series[s];
    if (se->loss_from < 0 || se->loss_from >= se->n_obs) {
      st = nde__errf(&f->err, NDE_ERR_ARG, "series %d: loss_from %d outside [0, %d)", s + 1,
                     se->loss_from, se->n_obs);
      goto fail;
    }
    if (se->n_obs < 2 || !se->t || !se->obs || !se->u0) {
      st = nde__errf(&f->err, NDE_ERR_ARG, "series %d needs at least 2 observation times (has %d)",
                     s + 1, se->n_obs);
      goto fail;
    }
    if (f->o.batch_time > 0 && f->o.batch_time >= se->n_obs) {
      st = nde__errf(&f->err, NDE_ERR_ARG,
                     "minibatch windows of %d intervals do not fit in series %d (%d observation "
                     "times)",
                     f->o.batch_time, s + 1, se->n_obs);
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
                       "minibatch windows start from an observed state, but series %d has no "
                       "row with every state observed",
                       s + 1);
        goto fail;
      }
    }
    if (se->n_obs > f->max_obs) f->max_obs = se->n_obs;
    f->seg_first[s] = f->n_seg_extra;
    const int nseg = n_segments(f, se->n_obs);
    f->n_seg_extra += nseg - 1;
    max_pieces += nseg > f->o.batch_windows ? nseg : f->o.batch_windows;
  }
  /* Per-state weights: 1 / variance of the observed values, when asked for; and the root mean
   * square of each state's observed values (1 for a state never observed or always 0). */
  for (int i = 0; i < n; i++) {
    double ss = 0;
    long cs = 0;
    for (int s2 = 0; s2 < n_series; s2++)
      for (int k = 0; k < series[s2].n_obs; k++) {
        const double o = series[s2].obs[(size_t)k * n + i];
        if (isnan(o)) continue;
        ss += o * o;
        cs++;
      }
    f->rms[i] = cs && ss > 0 && isfinite(ss) ? sqrt(ss / (double)cs) : 1.0;
  }
  for (int i = 0; i < n; i++) {
    f->w[i] = 1.0;
    if (!f->o.scale_by_std) continue;
    double sum = 0, sum2 = 0;
    long cnt = 0;
    for (int s = 0; s < n_series; s++)
      for (int k = 0; k < series[s].n_obs; k++) {
        const double o = series[s].obs[(size_t)k * n + i];
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
      const int nseg = n_segments(f, se->n_obs);
      for (int j = 1; j < nseg; j++) {
        const int a = j * f->o.shoot_interval, b = j + 1 == nseg ? se->n_obs - 1 : a + f->o.shoot_interval;
        for (int i = 0; i < n; i++) {
          double m = 0;
          for (int k = a; k <= b; k++) {
            const double o = se->obs[(size_t)k * (size_t)n + (size_t)i];
            if (!isnan(o) && fabs(o) > m) m = fabs(o);
          }
          f->scale[(size_t)(seg_offset(f, s2, j) - (long)f->n_theta) + (size_t)i] =
              fmax(m > 0 ? m : f->rms[i], 1e-3 * f->rms[i]);
        }
      }
    }
  f->cap_pieces = max_pieces;
  f->pieces = calloc((size_t)max_pieces, sizeof *f->pieces);
  f->gth = nde__dalloc(f->n_theta);
  f->gu = nde__dalloc((size_t)n);
  f->dnext = nde__dalloc((size_t)n);
  f->Y = nde__dalloc((size_t)f->max_obs * (size_t)n);
  if (!f->pieces || !f->gth || !f->gu || !f->dnext || !f->Y) goto fail;
  nde_error sub;
  st = nde_solver_create(rhs, sopts, 1, &f->solver, &sub);
  if (st == NDE_OK) st = nde_grad_create(f->solver, gopts, &f->grad, &sub);
  if (st != NDE_OK) {
    nde__errf(&f->err, st, "%s", sub.msg);
    goto fail;
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

/* The pieces of one evaluation; returns how many. */
static long make_pieces(nde_fit *f, int shooting, nde_rng *rng) {
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
        piece p = {s, a, a + f->o.batch_time, -1, -1, from > 1 ? from : 1, se->obs + (size_t)a * f->n};
        f->pieces[np++] = p;
      }
      continue;
    }
    const int nseg = shooting ? n_segments(f, se->n_obs) : 1;
    for (int j = 0; j < nseg; j++) {
      piece p;
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
  return np;
}

nde_status nde_fit_eval(nde_fit *f, const double *x, int shooting, nde_rng *rng, double *L,
                        double *g, nde_fit_info *info) {
  nde_fit_info local;
  if (!info) info = &local;
  memset(info, 0, sizeof *info);
  if (!f || !x || !L) return NDE_ERR_ARG;
  if (shooting && f->o.shoot_interval <= 0)
    return nde__errf(&f->err, NDE_ERR_ARG, "multiple shooting needs shoot_interval > 0");
  const int n = f->n;
  const long np = make_pieces(f, shooting, rng);
  /* The mean's denominator: the observed entries that the pieces compare. */
  long count = 0;
  for (long p = 0; p < np; p++) {
    const piece *pc = &f->pieces[p];
    const double *obs = f->series[pc->series].obs;
    for (int k = pc->a + pc->skip; k <= pc->b; k++)
      for (int i = 0; i < n; i++) count += !isnan(obs[(size_t)k * n + i]);
  }
  const double scale = f->o.loss_sum || count == 0 ? 1.0 : 1.0 / (double)count;
  if (g) memset(g, 0, nde_fit_n_x(f, shooting) * sizeof *g);
  *L = 0.0;
  for (long p = 0; p < np; p++) {
    const piece *pc = &f->pieces[p];
    const nde_fit_series *se = &f->series[pc->series];
    const double *u0 = pc->u_fixed;
    if (pc->x_start >= 0) {
      const double *sc = f->scale + (pc->x_start - (long)f->n_theta);
      for (int i = 0; i < n; i++) f->ustart[i] = sc[i] * x[pc->x_start + i];
      u0 = f->ustart;
    }
    if (pc->x_next >= 0)
      for (int i = 0; i < n; i++)
        f->snext[i] = f->scale[pc->x_next - (long)f->n_theta + i] * x[pc->x_next + i];
    piece_loss pl = {f, se->obs + (size_t)pc->a * n, pc->skip, scale,
                     pc->x_next >= 0 ? f->snext : NULL, f->o.shoot_weight * scale,
                     f->dnext, 0, 0};
    double Lp;
    nde_grad_stats gs;
    nde_status st = nde_rhs_set_rows(f->rhs, 1, &se->id);
    if (st != NDE_OK) return nde__errf(&f->err, st, "binding series %d failed", se->id);
    st = nde_grad_eval(f->grad, x, 1, u0, pc->b - pc->a + 1, se->t + pc->a,
                                  piece_loss_eval, &pl, &Lp, g ? f->gth : NULL,
                                  g && pc->x_start >= 0 ? f->gu : NULL, NULL, &gs);
    info->n_solves++;
    if (st != NDE_OK) return nde__errf(&f->err, st, "%s", nde_grad_errmsg(f->grad));
    if (gs.forward.reason != NDE_REASON_NONE) {
      info->stop = gs.forward;
      *L = NAN;
      return NDE_OK;
    }
    if (gs.backward.reason != NDE_REASON_NONE && info->backward_stop.reason == NDE_REASON_NONE)
      info->backward_stop = gs.backward;
    *L += Lp;
    info->data_loss += pl.data;
    info->penalty += pl.pen;
    if (!g) continue;
    for (size_t i = 0; i < f->n_theta; i++) g[i] += f->gth[i];
    if (pc->x_start >= 0)
      for (int i = 0; i < n; i++)
        g[pc->x_start + i] += f->scale[pc->x_start - (long)f->n_theta + i] * f->gu[i];
    if (pc->x_next >= 0)
      for (int i = 0; i < n; i++)
        g[pc->x_next + i] += f->scale[pc->x_next - (long)f->n_theta + i] * f->dnext[i];
  }
  /* Regularisation of the masked entries of theta (network weights): l2 sum th^2 + l1 sum |th|,
   * with the subgradient 0 at 0 for l1. */
  if (f->o.reg_mask && (f->o.l2 > 0 || f->o.l1 > 0)) {
    double r = 0;
    for (size_t i = 0; i < f->n_theta; i++) {
      if (!f->o.reg_mask[i]) continue;
      const double th = x[i];
      r += f->o.l2 * th * th + f->o.l1 * fabs(th);
      if (g) g[i] += 2.0 * f->o.l2 * th + f->o.l1 * (th > 0 ? 1.0 : th < 0 ? -1.0 : 0.0);
    }
    info->regularization = r;
    *L += r;
  }
  return NDE_OK;
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
  nde_status st = nde_rhs_set_rows(f->rhs, 1, &se->id);
  if (st != NDE_OK) return nde__errf(&f->err, st, "binding series %d failed", se->id);
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
    const int nseg = n_segments(f, se->n_obs);
    if (nseg < 2) continue;
    nde_status st = nde_fit_predict(f, x, s, f->Y);
    if (st != NDE_OK) return st;
    for (int j = 1; j < nseg; j++) {
      const int a = j * f->o.shoot_interval;
      double *S = x + seg_offset(f, s, j);
      for (int i = 0; i < n; i++) {
        const double o = se->obs[(size_t)a * n + i];
        S[i] = (isnan(o) ? f->Y[(size_t)a * n + i] : o) /
               f->scale[seg_offset(f, s, j) - (long)f->n_theta + i];
        if (!isfinite(S[i])) S[i] = 0.0; /* the model's solution blew up: start from zero */
      }
    }
  }
  return NDE_OK;
}
