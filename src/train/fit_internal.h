/* The fit objective's state, shared by its files: fit.c (options, pieces, scales, the start
 * point), groups.c (pieces with a common grid as batches, and their share per rank) and
 * fit_eval.c (the parallel evaluation and its reproducible reduction). */
#ifndef NDE_TRAIN_FIT_INTERNAL_H
#define NDE_TRAIN_FIT_INTERNAL_H

#include <stdint.h>

#include "comm_internal.h"
#include "core/internal.h"
#include "nde/train.h"

/* A piece of a series integrated as one row of a batch: a whole series, a shooting segment or a
 * window. */
typedef struct nde__piece {
  int series;
  int a, b;        /* observation indices: starts at t[a], ends at t[b] */
  long x_start;    /* offset in x of its learnable start state, or -1 */
  long x_next;     /* offset in x of the next segment's start (penalty), or -1 */
  int skip;        /* leading observations of the piece not in the misfit (t[a] and, with
                    * loss_from, those before it) */
  const double *u_fixed; /* the start state when it is not learnable */
} nde__piece;

/* A batch: pieces prow[first .. first + B) on one output grid. */
typedef struct nde__group {
  long first;
  long p0;          /* its first piece (groups are numbered in the order of their first piece) */
  int owner;        /* the rank that evaluates it */
  int B;
  int n_obs;
  const double *t;  /* the grid: the first piece's observation times */
  /* results of an evaluation */
  int ran;          /* the group was evaluated (not skipped after an earlier failure) */
  int thread;       /* the thread that ran it (its worker holds an error's message) */
  nde_status st;    /* an error */
  nde_solve_stats stop; /* the forward solve stopped (reason != NONE): the loss is NaN */
  nde_solve_stats bstop; /* the backward (adjoint) solve stopped: its gradient is NaN */
} nde__group;

/* What one thread needs to evaluate a group: its right-hand side, solver, gradient workspace
 * and row buffers (sized for the largest batch). */
typedef struct nde__worker {
  nde_rhs *rhs;      /* the objective's rhs (worker 0) or a clone (owned) */
  int own_rhs;
  nde_solver *solver;
  nde_grad *grad;
  int *series_of_row;
  double *U0, *gU, *snext; /* batch x n */
  struct nde__row *rows;   /* the loss's view of each row */
  double *bp;        /* breakpoints of a batch */
  size_t bp_cap;
  /* The observation model (the objective's for worker 0, else a clone, owned), its outputs and
   * their cotangents for one time (batch x K), and its dL/dtheta (n_theta). */
  nde_observer *obs;
  int own_obs;
  double *H, *LH, *gth_obs;
  nde__err err;      /* the message of an error */
} nde__worker;

/* The loss's view of one row: its observations from the piece's start, leading observations
 * left out, the next segment's start (NULL when none) and where dL/d(next) and the row's parts
 * of the loss go. */
typedef struct nde__row {
  const double *obs; /* K columns per time */
  const double *w;   /* K weights: the series' (sigma) or the objective's */
  int skip;
  const double *next;
  double *dnext;
  double *data, *pen;
} nde__row;

struct nde_fit {
  nde_rhs *rhs;
  nde_solver *solver; /* worker 0's */
  nde_grad *grad;
  nde_grad_opts gopts; /* for the workers of other threads (method names as static strings) */
  nde_fit_opts o;
  nde__err err;
  int n;
  int K;             /* columns of the observations: n, or the observer's outputs */
  size_t n_theta;
  int n_series;
  nde_fit_series *series;
  double *w;         /* per-column weights (K) */
  double *wser;      /* per series: its K weights (a known sigma replaces w) */
  double *rms;       /* per-state root mean square of the observed values (1 when none) */
  double *scale;     /* per entry of the learned states in x (after theta): S = scale * x */
  double *ustart;    /* scratch: a start state, unscaled */
  int max_obs;
  long n_seg_extra;  /* shooting segment starts (after the first of each series) */
  long *seg_first;   /* per series: index of its first shooting start state */
  int *order;        /* scratch permutation of series for minibatches */
  double *Y;         /* scratch: one series' solution (max_obs x n) */
  int cap;           /* rows of the largest batch */

  /* the pieces of one evaluation and their results */
  nde__piece *pieces;
  long cap_pieces, np;
  double *pdata, *ppen;  /* per piece: its parts of the loss */
  double *pgu, *pdn;     /* per piece: dL/d(start) and dL/d(next start), n each */
  /* the groups of one evaluation */
  nde__group *groups;
  long n_groups;
  long *prow;            /* pieces in group order */
  long *class_of, *class_rep, *hslot; /* grouping scratch (groups.c) */
  long hcap;
  /* Fixed-step methods: a piece's breakpoints are part of its grid, so that every row of a batch
   * takes the steps it takes alone (adaptive methods stop at the union of their rows'). */
  int bp_in_key;
  long *pbp_off;         /* per piece: its breakpoints bpool[pbp_off .. pbp_off + pbp_n) */
  int *pbp_n;
  double *bpool;
  size_t bpool_n, bpool_cap;
  long g_lo, g_hi;       /* this rank's groups */
  double *gth;           /* per group of this rank: dL/dtheta (n_theta each) */
  long cap_gth;          /* groups gth has room for */
  /* the reduction */
  size_t n_comp;         /* components: the gradient (n_x with shooting) + data + penalty */
  int *ex;               /* n_comp exponents + the first failed group */
  int64_t *acc;          /* 2 n_comp digits */
  double *red;           /* n_comp results */

  /* parallel work */
  nde_pool *pool;        /* borrowed, or NULL */
  nde_comm *comm;        /* borrowed, or NULL */
  nde__worker *workers;
  int n_workers;
  double work_s;         /* the previous evaluation's work: wall time x threads used */
  double pool_min_s;     /* threads when work_s is at least this (NDE_FIT_POOL_MIN_SECONDS) */
};

/* Cut the pieces f->pieces[0 .. f->np) into groups (f->groups, f->prow) and choose this rank's
 * share [g_lo, g_hi).  Returns NDE_OK or NDE_ERR_NOMEM. */
nde_status nde__fit_group(nde_fit *f);

/* The pieces of one evaluation (fit.c). */
void nde__fit_make_pieces(nde_fit *f, int shooting, nde_rng *rng);

/* Make worker w around rhs (taken when own) with a solver for f->cap rows (fit_eval.c).  On
 * failure w holds nothing and sub has the message. */
nde_status nde__fit_worker_init(nde_fit *f, nde__worker *w, nde_rhs *rhs, int own,
                                const nde_solver_opts *sopts, const nde_grad_opts *gopts,
                                nde_error *sub);
void nde__fit_worker_free(nde__worker *w);

/* Bind the B rows of w's next solve to their series and set the solver's breakpoints to the
 * union of the rows' in (t0, t1).  Errors (NDE_ERR_ARG from the binding, NDE_ERR_NOMEM) go to
 * w->err. */
nde_status nde__fit_bind(nde__worker *w, int B, const int *series_of_row, double t0, double t1);

/* Segment count of a series with n_obs observations under the shooting interval. */
int nde__fit_n_segments(const nde_fit *f, int n_obs);

#endif
