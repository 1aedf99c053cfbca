/* Internal interface of the tape evaluator (tape_eval.c), the data bound per series
 * (tape_bind.c) and the structural dependencies (tape_dep.c), used by the compiler, the model,
 * observers and probes. */
#ifndef NDE_MODEL_TAPE_H
#define NDE_MODEL_TAPE_H

#include <stdatomic.h>

#include "lang.h"

/* Evaluate one instruction whose operands are all constants (compile-time folding); bases[UNIF]
 * is the uniform arena being built. */
void nde__exec_const(const nde__tape *T, const nde__instr *in, double *const bases[NDE__AR_COUNT]);

/* Doubles per row that a varying net call reserves for its forward cache. */
size_t nde__net_cache_per_row(const nde_net *net);

/* ---- data bound per series (immutable once made; shared by clones) ---- */

/* One measured input of one series: samples (t, u) and precomputed coefficients.  On
 * [t_k, t_{k+1}) the value is u_k + d (c1_k + d (c2_k + d c3_k)), d = t - t_k (linear: c2 =
 * c3 = 0; step: u_k). */
typedef struct nde__curve {
  size_t n;
  const double *t, *u;
  const double *c1, *c2, *c3; /* NULL for step; c2, c3 NULL for linear */
  const size_t *jumps;        /* step: the indices j >= 1 with u_j != u_{j-1}, ascending */
  size_t n_jumps;
  uint8_t interp;             /* nde_interp */
  bool hold;
} nde__curve;

typedef struct nde__bound {
  atomic_int refs;
  int n_series;
  int n_inputs;        /* the model's inputs (columns of an input series) */
  int n_consts;        /* the model's constants from data */
  nde__curve *curves;  /* [n_series x n_inputs], NULL when the model has no inputs */
  double *consts;      /* [n_series x n_consts], NULL when none */
  double **blocks;     /* [n_series] owned storage of the curves' arrays */
  size_t **jump_blocks;
} nde__bound;

/* Check o (max_batch and n_series >= 1, data present when m declares inputs or constants from
 * data), copy and check what it binds, precompute interpolation coefficients.  NDE_ERR_ARG
 * with a message naming the input, series and sample; NDE_ERR_NOMEM.  The result has one
 * reference. */
nde_status nde__bound_create(const nde_model *m, const nde_model_rhs_opts *o, nde__bound **out,
                             nde_error *err);
void nde__bound_retain(nde__bound *b);
void nde__bound_release(nde__bound *b);

/* Value of curve c at t: 0, or -1 when t is outside its span and the input does not hold
 * (or t is NaN). */
static inline int nde__curve_eval(const nde__curve *c, double t, double *out) {
  const double *T = c->t, *u = c->u;
  const size_t n = c->n;
  if (!(t >= T[0] && t <= T[n - 1])) {
    if (!c->hold || t != t) return -1;
    *out = t < T[0] ? u[0] : u[n - 1];
    return 0;
  }
  /* k: the last sample with t_k <= t. */
  size_t lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const size_t mid = lo + (hi - lo) / 2;
    if (T[mid] <= t) lo = mid;
    else hi = mid;
  }
  if (t >= T[hi]) lo = hi;
  if (lo == n - 1 || c->interp == NDE_INTERP_STEP) {
    *out = u[lo];
    return 0;
  }
  const double d = t - T[lo];
  *out = c->interp == NDE_INTERP_CUBIC
             ? u[lo] + d * (c->c1[lo] + d * (c->c2[lo] + d * c->c3[lo]))
             : u[lo] + d * c->c1[lo];
  return 0;
}

/* ---- evaluation contexts: one tape, its workspaces, the bound data and the row map ---- */

typedef struct nde__tctx nde__tctx;

/* A context evaluating tape T (borrowed: it must outlive the context) of model m (a reference
 * is taken) on up to max_batch rows, reading bd (a reference is taken; NULL: nothing bound,
 * one series).  Rows start in series 0. */
nde_status nde__tctx_create(nde_model *m, const nde__tape *T, nde__bound *bd, int max_batch,
                            nde__tctx **out);
/* The ops-table callbacks on a context. */
void nde__tctx_destroy(void *ctx);
int nde__tctx_f(void *ctx, double t, int B, const double *U, const double *theta, double *out,
                double *cache);
int nde__tctx_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *L, const double *cache, double *gU, double *gtheta);
int nde__tctx_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *V, const double *Vtheta, double *JV);
nde_status nde__tctx_set_rows(void *ctx, int B, const int *series_of_row);
size_t nde__tctx_breakpoints(void *ctx, double t0, double t1, size_t max, double *out);
void nde__tctx_domain(void *ctx, double *lo, double *hi);
nde_status nde__tctx_clone(void *ctx, void **out);
/* Whether the reverse sweep takes zero cotangents as exact zeros (off by default): an observer's
 * outputs that are not measured get cotangent 0 and may be NaN (outside their domain), and 0 *
 * NaN would poison the adjoints of the measured ones.  Costs a compare per product. */
void nde__tctx_exact_zeros(nde__tctx *X, bool on);
/* A compiled tape shared by an evaluator and its clones (observers, probes): the first member
 * of the evaluator's struct.  Each handle has its own evaluation context X (workspaces, row
 * map); the root owns the tape (and what free_root frees), and the last handle released frees
 * them.  Clones are for other threads; the reference counts are atomic. */
typedef struct nde__tape_handle {
  nde_model *model;              /* a reference */
  nde__tape tape;                /* the root's (a clone evaluates its root's through X) */
  nde__tctx *X;
  struct nde__tape_handle *root; /* NULL for the root */
  atomic_int refs;               /* the handle and its clones */
  void (*free_root)(struct nde__tape_handle *); /* what else the root owns, or NULL */
} nde__tape_handle;
/* A root handle of model m (a reference is taken), its tape and X still to be made. */
void nde__handle_init(nde__tape_handle *h, nde_model *m);
/* Drop a reference; the last one frees X, the tape (root) or the root reference (clone), the
 * model reference and h itself (the evaluator's struct it begins). */
void nde__handle_release(nde__tape_handle *h);
/* A clone of src in a new zeroed struct of size bytes beginning with the handle: its own X
 * with src's row map, src's model and root.  NDE_ERR_NOMEM or tctx_clone's status. */
nde_status nde__handle_clone(const nde__tape_handle *src, size_t size, nde__tape_handle **out);
/* Length of the full theta the context reads (shared part + n_series per-series blocks). */
size_t nde__tctx_n_theta(const nde__tctx *X);

/* The rhs of a compiled model's own tape for the options o (takes a reference to the model). */
nde_status nde__tape_rhs_create(nde_model *m, const nde_model_rhs_opts *o, nde_rhs **out,
                                nde_error *err);

#endif
