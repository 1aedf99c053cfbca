/* nde train: optimisers on the flat parameter vector theta.
 *
 * Adam (Kingma & Ba 2015): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
 * theta <- theta - lr * mhat / (sqrt(vhat) + eps) with bias-corrected mhat, vhat.
 */
#ifndef NDE_TRAIN_H
#define NDE_TRAIN_H

#include <stddef.h>

#include "nde/core.h"
#include "nde/grad.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_adam_opts {
  double lr;    /* default 1e-3 */
  double beta1; /* default 0.9 */
  double beta2; /* default 0.999 */
  double eps;   /* default 1e-8 */
} nde_adam_opts;

NDE_API nde_adam_opts nde_adam_opts_default(void);

typedef struct nde_adam nde_adam;

/* Adam on n parameters.  Statuses: NDE_ERR_ARG (n == 0, lr <= 0, betas outside [0, 1), eps
 * <= 0), NDE_ERR_NOMEM; err (may be NULL) receives the message. */
NDE_API nde_status nde_adam_create(size_t n, const nde_adam_opts *opts, nde_adam **out,
                                   nde_error *err);
NDE_API void nde_adam_destroy(nde_adam **a);

/* One update of theta (n) with gradient g (n). */
NDE_API void nde_adam_step(nde_adam *a, double *theta, const double *g);

NDE_API double nde_adam_get_lr(const nde_adam *a);
NDE_API void nde_adam_set_lr(nde_adam *a, double lr);
/* Number of steps taken. */
NDE_API long nde_adam_get_step(const nde_adam *a);

/* The optimiser state as 2 n + 1 doubles (m, v, step count), for checkpoints: restoring it
 * continues bit for bit. */
NDE_API size_t nde_adam_state_size(const nde_adam *a);
NDE_API void nde_adam_get_state(const nde_adam *a, double *state);
NDE_API nde_status nde_adam_set_state(nde_adam *a, const double *state);

/* ---- the fit objective: a model against time series ----
 *
 * The optimised vector x is theta, then (with learn_u0) the initial state of every series, then
 * (in multiple-shooting phases) the start state of every segment after the first, each state
 * divided by its scale (see scale_states):
 *   x = [ theta (n_theta) | u0 of each series (n_series x n) | segment starts (n_seg x n) ].
 * Loss: L = s * sum over observed entries w_i (y - o)^2 (+ the continuity penalty of multiple
 * shooting), s = 1 / (number of observed entries) for the mean (default) or 1 for the sum.
 * Multiple shooting splits each series into segments of shoot_interval observation intervals;
 * segment j > 0 starts from its own learnable state S_j, and the penalty
 * shoot_weight * s * sum_j |Y_{j-1}(end) - S_j|^2 ties the pieces together. */

typedef struct nde_fit_series {
  int n_obs;         /* observation times (>= 2) */
  const double *t;   /* n_obs strictly increasing times (borrowed) */
  const double *obs; /* n_obs x K observations, NaN = missing: the states in the model's order
                      * (K = n), or the quantities of the objective's observer (K its outputs) */
  const double *u0;  /* n: the initial state at t[0] (fixed, or the start value if learnable) */
  int loss_from;     /* observations before this index are integrated through but not in the
                      * loss (validation on the trailing part of a series); 0: all */
  int id;            /* the series' index in the right-hand side's binding (per-series
                      * parameters, inputs, constants): the objective calls nde_rhs_set_rows with
                      * it before each solve of the series */
} nde_fit_series;

typedef struct nde_fit_opts {
  int loss_sum;        /* 0 (default): mean over observed entries; 1: sum */
  int scale_by_std;    /* weight state i by 1 / var_i of its observed values (mixed magnitudes) */
  int log_space;       /* compare log(y) with log(o) (positive data) */
  int learn_u0;        /* the initial states are learnable (appended to x) */
  int shoot_interval;  /* multiple shooting: observation intervals per segment (0: off) */
  double shoot_weight; /* continuity penalty weight; default 10 */
  int batch_series;    /* minibatch over series: series per evaluation (0: all) */
  int batch_time;      /* minibatch over windows: intervals per window (0: whole series) */
  int batch_windows;   /* windows per series per evaluation (default 4 when batch_time > 0) */
  /* Learned states in x (initial states, multiple-shooting starts) are stored divided by their
   * own size (the observation at that time, or the initial state; at least 1e-3 of the state's
   * root mean square), so that one optimiser step moves a concentration of 1e-5 as much,
   * relatively, as one of 1 (default 1; 0: unscaled). */
  int scale_states;
  /* Regularisation of the entries of theta with reg_mask[i] != 0 (borrowed, n_theta bytes; NULL:
   * none), typically the network weights: L += l2 sum theta_i^2 + l1 sum |theta_i|. */
  const unsigned char *reg_mask;
  double l2, l1;
  /* Batches (see "parallel evaluation" below): pieces per solve at most (default
   * NDE_FIT_BATCH_ROWS; capped by the rhs's max_batch; 1: every piece alone), and whether pieces
   * with the same times relative to their start share a solve (1: f does not depend on t; nde
   * fit --batch-segments, batch_segments in a result's settings; 0 by default, since it changes
   * the rounding of a fit and so which minimum it finds, docs/scaling.md). */
  int batch_rows;
  int autonomous;
  /* An observation model (borrowed; one per thread is cloned from it): the series' columns hold
   * its K quantities (states and observables of nde_model_create_observer), which are compared
   * with its outputs H(t, u, theta) at the observation times; gradients flow through it (dL/du =
   * dH/du^T dL/dH at those times, and dH/dtheta).  Its series binding follows the rows'.  NULL
   * (default): the columns are the states.  Minibatch windows (batch_time) need the states
   * observed at their starts, so they are refused with an observer; multiple-shooting starts
   * come from the model's solution. */
  nde_observer *observer;
  /* The known noise standard deviations of the observations (borrowed): n_series x K row-major,
   * > 0, NaN where unknown; or NULL.  The squared error of a column with a known sigma is
   * weighted by 1 / sigma^2 in its series (those terms are then a chi-square; scale_by_std does
   * not apply to them); other columns keep the weights above. */
  const double *sigma;
  /* The series' names in nde_fit_create's messages ("lv.h5:/run1"; n_series strings, borrowed for
   * the call), or NULL (default): "series K", K the 0-based position in the series array. */
  const char *const *series_names;
} nde_fit_opts;

NDE_API nde_fit_opts nde_fit_opts_default(void);

typedef struct nde_fit nde_fit;

/* The largest number of series one objective takes. */
#define NDE_FIT_MAX_SERIES (1 << 24)

/* The fit objective of rhs (borrowed) over n_series series (their arrays are borrowed and must
 * outlive the objective), integrated by a solver with sopts and differentiated by gopts (NULL
 * for defaults).  Statuses: NDE_ERR_ARG (an unknown solver or gradient method, a series with
 * fewer than 2 times, a minibatch larger than the data, windows that need a fully observed start
 * row, ...), NDE_ERR_NOMEM; the message goes to err (may be NULL). */
NDE_API nde_status nde_fit_create(nde_rhs *rhs, const nde_solver_opts *sopts, const nde_grad_opts *gopts,
                          int n_series, const nde_fit_series *series, const nde_fit_opts *opts,
                          nde_fit **out, nde_error *err);
NDE_API void nde_fit_destroy(nde_fit **f);
NDE_API const char *nde_fit_errmsg(const nde_fit *f);

/* The per-column weights of the loss (K values, one per column of the observations: 1, or
 * 1/variance with scale_by_std; a series' known sigma replaces them for its columns). */
NDE_API const double *nde_fit_weights(const nde_fit *f);
/* K, the number of columns of the observations (n without an observer). */
NDE_API int nde_fit_n_columns(const nde_fit *f);

/* Length of x without and with the multiple-shooting segment starts. */
NDE_API size_t nde_fit_n_x(const nde_fit *f, int shooting);
NDE_API size_t nde_fit_n_theta(const nde_fit *f);

/* Fill x (nde_fit_n_x(f, 1) doubles) from theta: the series' u0, and each segment start from
 * the observation at that time where observed, else from the model's solution at theta. */
NDE_API nde_status nde_fit_init_x(nde_fit *f, const double *theta, double *x);

typedef struct nde_fit_info {
  nde_solve_stats stop;  /* the first solve that stopped early (reason != NONE), else zeros */
  nde_solve_stats backward_stop; /* the first backward (adjoint) solve that stopped, else zeros:
                                  * its gradient is NaN */
  double data_loss;      /* the misfit part of L */
  double penalty;        /* the continuity part of L (multiple shooting) */
  double regularization; /* the l2/l1 part of L */
  long n_solves;         /* batched solves of the evaluation (groups of pieces, all ranks) */
} nde_fit_info;

/* L(x) and g = dL/dx (length nde_fit_n_x(f, shooting); may be NULL).  rng draws the minibatch
 * (NULL: the whole data).  A solve that stops early is an outcome: NDE_OK with L = NaN and
 * info->stop set.  Statuses: NDE_ERR_ARG, NDE_ERR_CALLBACK, NDE_ERR_NUMERIC. */
NDE_API nde_status nde_fit_eval(nde_fit *f, const double *x, int shooting, nde_rng *rng, double *L,
                        double *g, nde_fit_info *info);

/* The initial state of series k (n values) that x stands for: the learned one (unscaled) with
 * learn_u0, else the series' own. */
NDE_API nde_status nde_fit_u0(const nde_fit *f, const double *x, int k, double *u0);

/* The model's trajectory for series k at its observation times from x (n_obs x n). */
NDE_API nde_status nde_fit_predict(nde_fit *f, const double *x, int k, double *Y);

/* ---- parallel evaluation: groups of pieces, threads and MPI ranks ----
 *
 * Batches.  The pieces of one evaluation (whole series, multiple-shooting segments, minibatch
 * windows) that share an output grid are integrated as one solve of B rows and differentiated
 * together (nde_grad_eval on B rows, each row bound to its series by nde_rhs_set_rows, the
 * breakpoints of the solve the union of the rows'; nde/solve.h, "Batches"):
 *   - the grid is the piece's observation times, bitwise equal, and under fixed steps its
 *     breakpoints too (so that every row takes the steps it takes alone; adaptive methods stop
 *     at the union of their rows'); with autonomous = 1 (f does not depend on t: no t, no
 *     measured inputs, no breakpoints) the times relative to the piece's start, equal to 16 ulp
 *     of the largest time (the batch runs on its first piece's times);
 *   - the pieces of one grid, in piece order (series order, then segment or window order), are
 *     cut into equal consecutive groups of at most batch_rows rows (and the rhs's max_batch),
 *     and into at least min(NDE_FIT_MIN_GROUPS, pieces / NDE_FIT_MIN_GROUP_ROWS) groups so that
 *     threads and ranks have work to share; pieces with different grids are in different
 *     groups.  Groups are numbered by their first piece.
 * The grouping depends on the data, the options and the minibatch draw only, never on the number
 * of threads or ranks.  Fixed-step methods give every row what its own solve gives (to
 * round-off); adaptive ones share their steps across the rows of a group (nde/solve.h: the batch
 * takes the steps its hardest row needs, its error is controlled in the RMS over the batch);
 * batch_rows = 1 solves every piece alone.
 *
 * Threads and ranks.  Each rank (nde_comm) evaluates a contiguous range of the groups, balanced
 * by rows x observation times, on the threads of its pool (nde_pool: one clone of the rhs per
 * thread, nde_rhs_clone; an rhs that cannot be cloned runs on one thread, nde_fit_threads says
 * how many are used).  Loss and gradient are summed over the groups by a reproducible sum
 * (pre-rounding: every group's contribution cut 64 bits below the largest one, the cut parts
 * added exactly as integers; Demmel & Nguyen 2013): L and g do not depend on the number of
 * threads or ranks, bit for bit.  Across ranks this is one MPI_Allreduce (MAX) of n_x + 4 ints
 * and one (SUM) of 2 (n_x + 2) 64-bit integers per evaluation (docs/scaling.md). */

/* The default largest batch (nde_fit_opts.batch_rows) and the splitting rule above. */
#define NDE_FIT_BATCH_ROWS 64
#define NDE_FIT_MIN_GROUPS 8
#define NDE_FIT_MIN_GROUP_ROWS 16
/* An evaluation runs on the pool's threads when the previous one's work (its wall time x the
 * threads it used; the first runs on one) was at least this long: waking the threads costs ~20 us
 * per evaluation (measured on an idle 2-core machine: the LV UDE's 5 shooting segments, 110 us
 * of work, took 75 us on 2 threads).  Which thread computes what never changes the result. */
#define NDE_FIT_POOL_MIN_SECONDS 5e-5

/* The processes that evaluate an objective together. */
typedef struct nde_comm nde_comm;

typedef enum {
  NDE_COMM_SELF = 0, /* this process alone */
  NDE_COMM_AUTO,     /* MPI_COMM_WORLD when nde was built with MPI and this process was started
                      * by an MPI launcher (its environment says so: OMPI_COMM_WORLD_SIZE,
                      * PMI_SIZE or PMIX_RANK), else this process alone */
  NDE_COMM_WORLD     /* MPI_COMM_WORLD (NDE_ERR_UNSUPPORTED without MPI) */
} nde_comm_kind;

/* 1 when nde was built with MPI (-Dmpi), else 0. */
NDE_API int nde_mpi_available(void);

/* A communicator of kind.  With MPI it works on a duplicate of MPI_COMM_WORLD; MPI is
 * initialised (MPI_THREAD_FUNNELED: only the thread that calls nde functions talks to MPI) unless
 * the program did, and then finalised when the process exits.  Statuses: NDE_ERR_UNSUPPORTED
 * (WORLD without MPI; AUTO in a process that an MPI launcher started as one of several when nde
 * was built without MPI: each would fit on its own), NDE_ERR_IO (MPI failed), NDE_ERR_NOMEM,
 * NDE_ERR_ARG; err (may be NULL) receives the message. */
NDE_API nde_status nde_comm_create(nde_comm_kind kind, nde_comm **out, nde_error *err);
NDE_API void nde_comm_destroy(nde_comm **c);
/* Rank and number of processes (0 and 1 for NULL or a SELF communicator); the processes of the
 * communicator on this machine (1 for NULL), to share the machine's cores among them. */
NDE_API int nde_comm_rank(const nde_comm *c);
NDE_API int nde_comm_size(const nde_comm *c);
NDE_API int nde_comm_local_size(const nde_comm *c);
/* The default number of threads of a process: the cores available to it (nde_cpu_count) when
 * it is bound to fewer than the machine has (the launcher gave each rank its cores), else the
 * machine's cores shared among the ranks of c on it; at least 1. */
NDE_API int nde_comm_default_threads(const nde_comm *c);
/* Wall time spent in collectives and their number since creation (0 for NULL). */
NDE_API void nde_comm_stats(const nde_comm *c, double *seconds, long *calls);

/* Evaluate f on the threads of pool and with the processes of comm from now on (both borrowed,
 * may be NULL: the caller's thread, this process alone).  Every rank of comm must then call
 * nde_fit_eval, nde_fit_init_x and the training functions on it in the same sequence with the
 * same arguments.  One rhs clone, solver and gradient workspace is made per extra thread here.
 * Statuses: NDE_ERR_NOMEM, NDE_ERR_ARG; a failed call leaves f serial. */
NDE_API nde_status nde_fit_set_parallel(nde_fit *f, nde_pool *pool, nde_comm *comm);
/* Threads f evaluates on (1 when serial, or when its rhs cannot be cloned). */
NDE_API int nde_fit_threads(const nde_fit *f);

/* ---- the training loop: a schedule of optimiser phases with a divergence guard ---- */

typedef enum { NDE_OPT_ADAM = 0, NDE_OPT_LBFGS } nde_optimizer;

typedef struct nde_fit_phase {
  nde_optimizer opt;
  long iters;   /* iterations of this phase */
  double lr;    /* Adam learning rate (ignored by L-BFGS) */
  int shooting; /* use multiple shooting in this phase */
} nde_fit_phase;

#define NDE_MAX_PHASES 16

/* Parse a schedule such as "shoot:adam:3000@0.05,adam:2000@0.01,lbfgs:1000": comma-separated
 * phases [shoot:]OPTIMIZER:ITERS[@LR], lr defaulting to default_lr.  On failure (NDE_ERR_ARG)
 * err (may be NULL) receives a message naming the offending phase and what was expected. */
NDE_API nde_status nde_fit_schedule_parse(const char *spec, double default_lr, nde_fit_phase *phases,
                                          int *n_phases, nde_error *err);

typedef struct nde_train_progress {
  int phase;
  int shooting;     /* the phase optimises the multiple-shooting objective (not the trajectory loss) */
  long iter;        /* iterations done in this phase */
  long total_iter;  /* iterations done in all phases */
  long total_iters; /* iterations planned in all phases */
  double loss;      /* the phase's objective at the accepted point */
  double grad_norm;
  double lr;
  double score;     /* the latest score (validation loss, or the full trajectory loss), NaN before
                     * the first */
  const char *event; /* NULL, or a sentence such as "step rejected: non-finite loss; lr 0.05" */
  int rank;          /* this process's MPI rank (0 when alone): every rank is called at the same
                      * points, so print on rank 0 only; a stop asked for by any rank stops all */
} nde_train_progress;

typedef enum {
  NDE_TRAIN_DONE = 0,   /* every phase ran to its end (or L-BFGS converged) */
  NDE_TRAIN_STOPPED,    /* the progress callback asked to stop (e.g. on SIGINT) */
  NDE_TRAIN_DIVERGED,   /* max_failures + 1 consecutive rejected steps */
  NDE_TRAIN_FAILED,     /* the accepted point itself cannot be evaluated (a non-finite loss or
                         * gradient, or a solve that stops, without any step to undo): a problem
                         * of the model, the data or the solver, not of the learning rate;
                         * nde_train_last_stop says what stopped */
  NDE_TRAIN_EARLY_STOP  /* the score did not improve for `patience` scoring points */
} nde_train_reason;

/* Static English text of a reason. */
NDE_API const char *nde_train_reason_str(nde_train_reason r);

typedef struct nde_train nde_train;

/* An Adam phase whose loss stays this many times above its lowest at an earlier resume point for
 * a whole chunk between resume points has blown up: it goes back to the best-scored point with a
 * fresh optimiser and the learning rate times lr_backoff (a finite blow-up the guard cannot see). */
#define NDE_TRAIN_BLOWUP 100.0

typedef struct nde_train_opts {
  const nde_fit_phase *phases; /* copied */
  int n_phases;
  uint64_t seed;               /* minibatch draws */
  int max_failures;            /* consecutive rejected steps retried; the next one gives up
                                * (NDE_TRAIN_DIVERGED); default 8 */
  double lr_backoff;           /* lr multiplier after a rejected step; default 0.5 */
  long checkpoint_every;       /* iterations between resume points (checkpoints, L-BFGS restarts
                                * and scoring); default 200 */
  /* The score that decides which iterate is kept: evaluated at every resume point and at the
   * end of every phase, on the whole data without shooting or minibatches.  score_fit is the
   * objective to score with (a validation objective over held-out series or times: the same
   * theta, and either no learned initial states or the training's own, which lead x), or NULL
   * for fit itself (the full trajectory loss).  Lower is better. */
  nde_fit *score_fit;
  /* Stop when the score has not improved for this many scoring points in a row (0: never). */
  int patience;
  /* A phase ends early (the schedule moves on) when its own loss has not improved by a relative
   * phase_tol between resume points, phase_patience times in a row: an Adam phase that has
   * reached the noise floor gains nothing from its remaining iterations.  0: never; defaults
   * 2 and 1e-6. */
  int phase_patience;
  double phase_tol;
  /* Called every progress_every iterations and on events; return non-zero to stop. */
  int (*progress)(void *ctx, const nde_train_progress *p);
  void *progress_ctx;
  long progress_every; /* default 100 */
  /* Called at every resume point; the state is consistent there (resuming from it is
   * bit-identical to not stopping).  Return non-zero to abort with NDE_ERR_IO. */
  int (*checkpoint)(void *ctx, nde_train *t);
  void *checkpoint_ctx;
} nde_train_opts;

NDE_API nde_train_opts nde_train_opts_default(void);

/* A training run of fit (borrowed) from x0 (nde_fit_n_x(fit, 1) doubles).  Statuses:
 * NDE_ERR_ARG (bad options, an empty schedule, nothing learnable), NDE_ERR_NOMEM; err (may be
 * NULL) receives the message. */
NDE_API nde_status nde_train_create(nde_fit *fit, const nde_train_opts *opts, const double *x0,
                                    nde_train **out, nde_error *err);
NDE_API void nde_train_destroy(nde_train **t);
NDE_API const char *nde_train_errmsg(const nde_train *t);

/* Run from the current state to the end of the schedule (or a stop).  The outcome is *reason;
 * statuses are errors only: errors of the objective (NDE_ERR_CALLBACK, NDE_ERR_NOMEM ...), and
 * NDE_ERR_IO when the checkpoint callback fails; with an error *reason is NDE_TRAIN_FAILED.  Running a finished run again does nothing and
 * returns NDE_TRAIN_DONE (see nde_train_finished). */
NDE_API nde_status nde_train_run(nde_train *t, nde_train_reason *reason);
/* 1 when every phase has run to its end (nothing is left to do). */
NDE_API int nde_train_finished(const nde_train *t);
/* 1 when the current state is a resume point: resuming from it continues bit for bit.  Always
 * true in Adam phases; in L-BFGS phases only between chunks (liblbfgs keeps its curvature pairs
 * to itself), so a run stopped inside a chunk should be resumed from the previous resume point. */
NDE_API int nde_train_at_resume_point(const nde_train *t);

/* The last accepted x (nde_fit_n_x(fit, 1) doubles). */
NDE_API const double *nde_train_x(const nde_train *t);
/* The kept iterate: the accepted point with the lowest score so far (*x NULL before the first
 * scoring point), its score, and the total iteration count at which it was accepted. */
NDE_API void nde_train_best(const nde_train *t, const double **x, double *score, long *iter);
/* The latest evaluation of the current accepted point that failed: which solve stopped, and
 * where (reason NDE_REASON_NONE for a non-finite loss or gradient without a stop, including a
 * failed backward pass). */
NDE_API const nde_solve_stats *nde_train_last_stop(const nde_train *t);
/* 1 when that stop was of a backward (adjoint) solve: the loss was finite, its gradient not. */
NDE_API int nde_train_last_stop_backward(const nde_train *t);
/* Number of objective evaluations so far (Adam: one per iteration plus rejected ones; L-BFGS:
 * one per line-search trial), without scoring evaluations. */
NDE_API long nde_train_n_evals(const nde_train *t);
/* Loss history: one entry per iteration (the phase's objective at the accepted point).  *loss is
 * never NULL, also before the first iteration. */
NDE_API size_t nde_train_history(const nde_train *t, const double **loss);
/* The loss-history length at the end of each phase (-1 for phases not ended yet); returns the
 * number of phases. */
NDE_API int nde_train_phase_ends(const nde_train *t, const long **ends);
/* Score history: one entry per scoring point, with the total iteration count of each (arrays
 * never NULL, also before the first scoring point). */
NDE_API size_t nde_train_scores(const nde_train *t, const double **score, const long **iter);

/* The complete resumable state: a flat vector of doubles (x, the kept iterate, optimiser
 * moments, phase, iteration, learning rate, failure count, histories) and NDE_TRAIN_STATE_WORDS
 * 64-bit words (the RNG state, kept as integers).  Restoring both into a train made with the
 * same fit and options continues bit for bit.  Statuses of set_state: NDE_ERR_ARG with a message
 * when the state does not match (length, layout, corrupt values). */
#define NDE_TRAIN_STATE_WORDS 4
NDE_API size_t nde_train_state_size(const nde_train *t);
NDE_API void nde_train_get_state(const nde_train *t, double *state, uint64_t *words);
NDE_API nde_status nde_train_set_state(nde_train *t, const double *state, size_t len,
                                       const uint64_t *words);

#ifdef __cplusplus
}
#endif
#endif
