/* Batches of the fit objective: the pieces of an evaluation that share an output grid (the same
 * observation times; with an autonomous model the same times relative to the piece's start) are
 * cut into groups of consecutive pieces, each integrated as one solve of B rows, and the groups
 * are shared among the MPI ranks in contiguous ranges of about equal work.  Everything here
 * depends on the pieces only, never on the number of threads or ranks, except the range of this
 * rank. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fit_internal.h"

static const double *piece_t(const nde_fit *f, const nde__piece *p) {
  return f->series[p->series].t + p->a;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

static uint64_t bits(double v) {
  uint64_t u;
  if (v == 0.0) v = 0.0; /* -0 and +0 are the same time */
  memcpy(&u, &v, sizeof u);
  return u;
}

/* A hash of the grid that equal grids share: the times themselves, or (autonomous) the times
 * relative to the start rounded to 2^-30 of the span, so that differences within the tolerance
 * of same_grid usually hash alike (when they do not, the pieces are merely solved apart). */
static uint64_t grid_hash(const nde_fit *f, long pi) {
  const nde__piece *p = &f->pieces[pi];
  const int m = p->b - p->a + 1;
  const double *t = piece_t(f, p);
  uint64_t h = mix(0x243f6a8885a308d3ull, (uint64_t)m);
  if (!f->o.autonomous) {
    for (int k = 0; k < m; k++) h = mix(h, bits(t[k]));
    if (f->bp_in_key) {
      h = mix(h, (uint64_t)f->pbp_n[pi]);
      for (int k = 0; k < f->pbp_n[pi]; k++) h = mix(h, bits(f->bpool[f->pbp_off[pi] + k]));
    }
    return h;
  }
  const double q = ldexp(1.0, ilogb(t[m - 1] - t[0]) - 30);
  for (int k = 1; k < m; k++) h = mix(h, (uint64_t)llround((t[k] - t[0]) / q));
  return h;
}

/* Whether two pieces share a grid: equal times, or (autonomous) equal times relative to their
 * starts up to 16 ulp of the largest time involved. */
static int same_grid(const nde_fit *f, long pi, long qi) {
  const nde__piece *p = &f->pieces[pi], *q = &f->pieces[qi];
  const int m = p->b - p->a + 1;
  if (q->b - q->a + 1 != m) return 0;
  const double *tp = piece_t(f, p), *tq = piece_t(f, q);
  if (!f->o.autonomous) {
    for (int k = 0; k < m; k++)
      if (tp[k] != tq[k]) return 0;
    if (f->bp_in_key) {
      if (f->pbp_n[pi] != f->pbp_n[qi]) return 0;
      for (int k = 0; k < f->pbp_n[pi]; k++)
        if (f->bpool[f->pbp_off[pi] + k] != f->bpool[f->pbp_off[qi] + k]) return 0;
    }
    return 1;
  }
  const double big = fmax(fmax(fabs(tp[0]), fabs(tp[m - 1])), fmax(fabs(tq[0]), fabs(tq[m - 1])));
  const double tol = 16.0 * DBL_EPSILON * big;
  for (int k = 1; k < m; k++)
    if (fabs((tp[k] - tp[0]) - (tq[k] - tq[0])) > tol) return 0;
  return 1;
}

/* Every piece's breakpoints (those of its series inside its span), bound one piece at a time on
 * worker 0's rhs. */
static nde_status piece_breakpoints(nde_fit *f) {
  nde__worker *w = &f->workers[0];
  f->bpool_n = 0;
  for (long p = 0; p < f->np; p++) {
    const nde__piece *pc = &f->pieces[p];
    const nde_fit_series *se = &f->series[pc->series];
    nde_status st = nde_rhs_set_rows(w->rhs, 1, &se->id);
    if (st != NDE_OK) return nde__errf(&f->err, st, "binding series %d failed", se->id);
    const double t0 = se->t[pc->a], t1 = se->t[pc->b];
    size_t nb = nde_rhs_breakpoints(w->rhs, t0, t1, 0, NULL);
    if (f->bpool_n + nb > f->bpool_cap) {
      size_t cap = 2 * (f->bpool_n + nb) + 16;
      double *b = realloc(f->bpool, cap * sizeof *b);
      if (!b) return nde__errf(&f->err, NDE_ERR_NOMEM, "out of memory for breakpoints");
      f->bpool = b;
      f->bpool_cap = cap;
    }
    if (nb) nde_rhs_breakpoints(w->rhs, t0, t1, nb, f->bpool + f->bpool_n);
    f->pbp_off[p] = (long)f->bpool_n;
    f->pbp_n[p] = (int)nb;
    f->bpool_n += nb;
  }
  return NDE_OK;
}

static int cmp_group(const void *a, const void *b) {
  const nde__group *x = a, *y = b;
  return (x->p0 > y->p0) - (x->p0 < y->p0);
}

nde_status nde__fit_group(nde_fit *f) {
  const long np = f->np;
  f->n_groups = 0;
  f->g_lo = f->g_hi = 0;
  if (np == 0) return NDE_OK;
  /* Grid classes in order of their first piece, through an open-addressing table of class
   * numbers (+1; 0 is empty) at least twice the size of the pieces. */
  long hcap = 16;
  while (hcap < 2 * np) hcap *= 2;
  if (hcap > f->hcap) {
    long *h = realloc(f->hslot, (size_t)hcap * sizeof *h);
    if (!h) return nde__errf(&f->err, NDE_ERR_NOMEM, "out of memory grouping %ld pieces", np);
    f->hslot = h;
    f->hcap = hcap;
  }
  memset(f->hslot, 0, (size_t)hcap * sizeof *f->hslot);
  if (f->bp_in_key) {
    nde_status st = piece_breakpoints(f);
    if (st != NDE_OK) return st;
  }
  long n_class = 0;
  for (long p = 0; p < np; p++) {
    long slot = (long)(grid_hash(f, p) & (uint64_t)(hcap - 1));
    for (;;) {
      const long c = f->hslot[slot] - 1;
      if (c < 0) {
        f->hslot[slot] = n_class + 1;
        f->class_rep[n_class] = p;
        f->class_of[p] = n_class++;
        break;
      }
      if (same_grid(f, p, f->class_rep[c])) {
        f->class_of[p] = c;
        break;
      }
      slot = (slot + 1) & (hcap - 1);
    }
  }
  /* The members of each class in piece order (a counting sort into prow): class_rep becomes the
   * count, then the start, of each class. */
  for (long c = 0; c < n_class; c++) f->class_rep[c] = 0;
  for (long p = 0; p < np; p++) f->class_rep[f->class_of[p]]++;
  long pos = 0;
  for (long c = 0; c < n_class; c++) {
    const long cnt = f->class_rep[c];
    f->class_rep[c] = pos;
    pos += cnt;
  }
  for (long p = 0; p < np; p++) f->prow[f->class_rep[f->class_of[p]]++] = p;
  /* Cut each class into equal consecutive groups: at most cap rows, and at least
   * min(NDE_FIT_MIN_GROUPS, P / NDE_FIT_MIN_GROUP_ROWS) groups. */
  long start = 0, ng_all = 0;
  for (long c = 0; c < n_class; c++) {
    const long end = f->class_rep[c], P = end - start;
    long ng = (P + f->cap - 1) / f->cap;
    const long spread = P / NDE_FIT_MIN_GROUP_ROWS < NDE_FIT_MIN_GROUPS
                            ? P / NDE_FIT_MIN_GROUP_ROWS
                            : NDE_FIT_MIN_GROUPS;
    if (spread > ng) ng = spread;
    if (ng < 1) ng = 1;
    const long base = P / ng, extra = P % ng;
    long first = start;
    for (long k = 0; k < ng; k++) {
      const long B = base + (k < extra);
      const nde__piece *p0 = &f->pieces[f->prow[first]];
      nde__group *g = &f->groups[ng_all++];
      memset(g, 0, sizeof *g);
      g->first = first;
      g->p0 = f->prow[first];
      g->B = (int)B;
      g->n_obs = p0->b - p0->a + 1;
      g->t = piece_t(f, p0);
      first += B;
    }
    start = end;
  }
  qsort(f->groups, (size_t)ng_all, sizeof *f->groups, cmp_group);
  f->n_groups = ng_all;
  /* The ranks' shares: group g goes to the rank whose share of the total work (rows x
   * intervals, plus one row's worth for the solve itself) holds the middle of g's work, so every
   * rank has a contiguous range. */
  const int K = nde_comm_size(f->comm), r = nde_comm_rank(f->comm);
  double total = 0, before = 0;
  for (long g = 0; g < ng_all; g++)
    total += (double)(f->groups[g].B + 1) * (double)(f->groups[g].n_obs - 1);
  f->g_lo = f->g_hi = -1;
  for (long g = 0; g < ng_all; g++) {
    nde__group *G = &f->groups[g];
    const double w = (double)(G->B + 1) * (double)(G->n_obs - 1);
    const int owner = (int)floor((before + 0.5 * w) / total * K);
    G->owner = owner < K ? owner : K - 1;
    before += w;
    if (G->owner == r) {
      if (f->g_lo < 0) f->g_lo = g;
      f->g_hi = g + 1;
    }
  }
  if (f->g_lo < 0) f->g_lo = f->g_hi = 0;
  return NDE_OK;
}
