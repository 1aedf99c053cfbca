/* Sequentially thresholded least squares (STLSQ; Brunton, Proctor & Kutz 2016, PNAS 113:3932):
 * solve y ~ Theta xi, drop the terms whose normalised coefficient is below the threshold, refit on
 * the rest, until the set of terms stops changing.  Each fit is ridge regression on columns scaled
 * to unit root-mean-square, min |A xi - b|^2 + alpha m |xi|^2, solved as the least-squares problem
 * [A; sqrt(alpha m) I] xi = [b; 0] by LAPACK's dgelsd (SVD, robust to the near-collinear columns a
 * library has on a trajectory).  A threshold sweep scores each model by AIC or BIC (Mangan et al.
 * 2017, "Model selection for dynamical systems via sparse regression and information criteria"). */
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/discover.h"

nde_stlsq_opts nde_stlsq_opts_default(void) {
  nde_stlsq_opts o = {1e-6, 25};
  return o;
}

static nde_status fail(nde_error *err, nde_status st, const char *fmt, ...) NDE__PRINTF(3, 4);
static nde_status fail(nde_error *err, nde_status st, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = st;
  }
  return st;
}

/* The normalised problem and the buffers of the least-squares steps, allocated once. */
typedef struct ws {
  int m, p;
  double *A;     /* m x p normalised columns */
  double *b;     /* m normalised target */
  double *scale; /* p column rms (0: a zero column) */
  double yscale;
  double *M;     /* (m + p) x p augmented matrix of the active columns */
  double *rhs;   /* m + p */
  double *sv;    /* p singular values */
  int *active, *idx;
} ws;

static void ws_free(ws *w) {
  free(w->A);
  free(w->b);
  free(w->scale);
  free(w->M);
  free(w->rhs);
  free(w->sv);
  free(w->active);
  free(w->idx);
}

static nde_status ws_init(ws *w, int m, int p, const double *Theta, const double *y,
                          nde_error *err) {
  memset(w, 0, sizeof *w);
  if (m < 1 || p < 1 || !Theta || !y)
    return fail(err, NDE_ERR_ARG, "sparse regression: needs at least one sample and one term");
  w->m = m;
  w->p = p;
  size_t mp, mpp;
  if (!nde__mul_size((size_t)m, (size_t)p, &mp) ||
      !nde__mul_size((size_t)m + (size_t)p, (size_t)p, &mpp))
    return fail(err, NDE_ERR_NOMEM, "sparse regression: %d x %d is too large", m, p);
  w->A = nde__dalloc(mp);
  w->b = nde__dalloc((size_t)m);
  w->scale = nde__dalloc((size_t)p);
  w->M = nde__dalloc(mpp);
  w->rhs = nde__dalloc((size_t)m + (size_t)p);
  w->sv = nde__dalloc((size_t)p);
  w->active = calloc((size_t)p, sizeof *w->active);
  w->idx = calloc((size_t)p, sizeof *w->idx);
  if (!w->A || !w->b || !w->scale || !w->M || !w->rhs || !w->sv || !w->active || !w->idx) {
    ws_free(w);
    return fail(err, NDE_ERR_NOMEM, "sparse regression: out of memory");
  }
  double ys = 0;
  for (int i = 0; i < m; i++) {
    if (!isfinite(y[i])) {
      ws_free(w);
      return fail(err, NDE_ERR_ARG, "sparse regression: target value %d is not finite", i);
    }
    ys += y[i] * y[i];
  }
  w->yscale = ys > 0 ? sqrt(ys / m) : 1.0;
  for (int i = 0; i < m; i++) w->b[i] = y[i] / w->yscale;
  for (int j = 0; j < p; j++) {
    double s = 0;
    for (int i = 0; i < m; i++) {
      double v = Theta[(size_t)i * p + j];
      if (!isfinite(v)) {
        ws_free(w);
        return fail(err, NDE_ERR_ARG, "sparse regression: term %d is not finite at sample %d",
                    j + 1, i);
      }
      s += v * v;
    }
    w->scale[j] = sqrt(s / m);
    double inv = w->scale[j] > 0 ? 1.0 / w->scale[j] : 0.0;
    for (int i = 0; i < m; i++) w->A[(size_t)i * p + j] = Theta[(size_t)i * p + j] * inv;
  }
  return NDE_OK;
}

/* Ridge least squares on the active columns; z (p, normalised) receives the solution, zero on
 * inactive columns. */
static nde_status ridge_fit(ws *w, double alpha, double *z, nde_error *err) {
  const int m = w->m, p = w->p;
  int k = 0;
  for (int j = 0; j < p; j++)
    if (w->active[j]) w->idx[k++] = j;
  for (int j = 0; j < p; j++) z[j] = 0.0;
  if (k == 0) return NDE_OK;
  const double r = sqrt(alpha * m);
  const int rows = r > 0 ? m + k : m;
  for (int i = 0; i < m; i++) {
    for (int c = 0; c < k; c++) w->M[(size_t)i * k + c] = w->A[(size_t)i * p + w->idx[c]];
    w->rhs[i] = w->b[i];
  }
  for (int i = m; i < rows; i++) {
    for (int c = 0; c < k; c++) w->M[(size_t)i * k + c] = (i - m == c) ? r : 0.0;
    w->rhs[i] = 0.0;
  }
  lapack_int rank = 0;
  lapack_int info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, rows, k, 1, w->M, k, w->rhs, 1, w->sv,
                                   -1.0, &rank);
  if (info != 0)
    return fail(err, NDE_ERR_NUMERIC, "sparse regression: LAPACK dgelsd failed (info %d)",
                (int)info);
  for (int c = 0; c < k; c++) z[w->idx[c]] = w->rhs[c];
  return NDE_OK;
}

/* STLSQ on the normalised problem: z (p) normalised coefficients. */
static nde_status stlsq_norm(ws *w, double lambda, const nde_stlsq_opts *o, double *z,
                             nde_error *err) {
  const int p = w->p;
  for (int j = 0; j < p; j++) w->active[j] = w->scale[j] > 0;
  nde_status st = ridge_fit(w, o->ridge, z, err);
  for (int it = 0; st == NDE_OK && it < o->max_iter; it++) {
    int changed = 0;
    for (int j = 0; j < p; j++)
      if (w->active[j] && fabs(z[j]) < lambda) {
        w->active[j] = 0;
        changed = 1;
      }
    if (!changed) break;
    st = ridge_fit(w, o->ridge, z, err);
  }
  return st;
}

static void to_units(const ws *w, const double *z, double *xi) {
  for (int j = 0; j < w->p; j++) xi[j] = w->scale[j] > 0 ? z[j] * w->yscale / w->scale[j] : 0.0;
}

nde_status nde_stlsq(int m, int p, const double *Theta, const double *y, double lambda,
                     const nde_stlsq_opts *opts, double *xi, nde_error *err) {
  nde_stlsq_opts o = opts ? *opts : nde_stlsq_opts_default();
  if (!xi || !(lambda >= 0) || !(o.ridge >= 0) || o.max_iter < 0)
    return fail(err, NDE_ERR_ARG, "sparse regression: bad threshold or options");
  ws w;
  nde_status st = ws_init(&w, m, p, Theta, y, err);
  if (st != NDE_OK) return st;
  double *z = nde__dalloc((size_t)p);
  if (!z) st = fail(err, NDE_ERR_NOMEM, "sparse regression: out of memory");
  if (st == NDE_OK) st = stlsq_norm(&w, lambda, &o, z, err);
  if (st == NDE_OK) to_units(&w, z, xi);
  free(z);
  ws_free(&w);
  return st;
}

nde_status nde_lstsq_support(int m, int p, const double *Theta, const double *y,
                             const int *support, double ridge, double *xi, nde_error *err) {
  if (!support || !xi || !(ridge >= 0))
    return fail(err, NDE_ERR_ARG, "sparse regression: bad support or ridge");
  ws w;
  nde_status st = ws_init(&w, m, p, Theta, y, err);
  if (st != NDE_OK) return st;
  double *z = nde__dalloc((size_t)p);
  if (!z) st = fail(err, NDE_ERR_NOMEM, "sparse regression: out of memory");
  for (int j = 0; j < p; j++) w.active[j] = support[j] && w.scale[j] > 0;
  if (st == NDE_OK) st = ridge_fit(&w, ridge, z, err);
  if (st == NDE_OK) to_units(&w, z, xi);
  free(z);
  ws_free(&w);
  return st;
}

nde_status nde_stlsq_sweep(int m, int p, const double *Theta, const double *y, int n_thr,
                           const double *thr, const nde_stlsq_opts *opts, nde_criterion crit,
                           nde_sweep_point *pts, double *XI, int *chosen, nde_error *err) {
  nde_stlsq_opts o = opts ? *opts : nde_stlsq_opts_default();
  if (n_thr < 1 || !thr || !pts || !XI || !chosen)
    return fail(err, NDE_ERR_ARG, "sparse regression: no thresholds to sweep");
  ws w;
  nde_status st = ws_init(&w, m, p, Theta, y, err);
  if (st != NDE_OK) return st;
  double *z = nde__dalloc((size_t)p);
  if (!z) st = fail(err, NDE_ERR_NOMEM, "sparse regression: out of memory");
  double best = INFINITY;
  *chosen = 0;
  for (int s = 0; st == NDE_OK && s < n_thr; s++) {
    if (!(thr[s] >= 0)) {
      st = fail(err, NDE_ERR_ARG, "sparse regression: threshold %d of the sweep is %g (expected "
                "a value >= 0)", s, thr[s]);
      break;
    }
    st = stlsq_norm(&w, thr[s], &o, z, err);
    if (st != NDE_OK) break;
    double *xi = XI + (size_t)s * p;
    to_units(&w, z, xi);
    double rss = 0, yy = 0;
    int k = 0;
    for (int j = 0; j < p; j++) k += xi[j] != 0.0;
    for (int i = 0; i < m; i++) {
      double r = y[i];
      for (int j = 0; j < p; j++) r -= Theta[(size_t)i * p + j] * xi[j];
      rss += r * r;
      yy += y[i] * y[i];
    }
    /* A floor keeps ln finite for an exact fit. */
    double ll = m * log(fmax(rss, 1e-300 * (yy > 0 ? yy : 1.0)) / m);
    pts[s] = (nde_sweep_point){thr[s], k, rss, yy > 0 ? sqrt(rss / yy) : sqrt(rss),
                               ll + 2.0 * k, ll + k * log((double)m)};
    double c = crit == NDE_CRIT_AIC ? pts[s].aic : pts[s].bic;
    if (c < best) {
      best = c;
      *chosen = s;
    }
  }
  free(z);
  ws_free(&w);
  return st;
}
