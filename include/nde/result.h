/* nde result: the fitted model as a type, and the workflow on it.
 *
 *   nde_problem   a model bound to data: the series (each with its initial state by the rule
 *                 below), the right-hand side and the fit objective; loss and gradient at any θ.
 *   nde_result    a fitted model: the compiled model and θ (parameters by name in natural units),
 *                 the complete integration settings of the fit, the fitted initial state of every
 *                 series, the loss and score histories, the resumable training state and
 *                 provenance.  Made by nde_result_fit, saved to and opened from a result file
 *                 (fit.h5; the schema is docs/result-format.md and this layer is the only place
 *                 that writes or reads it).
 *   integration   the fitted model on any output grid from a chosen start (a fitted initial
 *                 state, the fitted trajectory at a time inside its span, or a given state).
 *   scoring       per-state and overall RMSE and the horizon against held-out series, each
 *                 started from its own first observed row.
 *   simulation    a model at given parameters from a given state, optionally with noise.
 *
 * The initial state of a series (the rule of nde_problem_create and of scoring): its first
 * observed row; a component that is missing there takes the model's declared initial value; a
 * component that has neither is an error naming the state (NDE_ERR_DATA).
 *
 * Errors are statuses with a message in an nde_error; outcomes are not: a fit that diverged or
 * failed returns NDE_OK and a result whose status says so (nde_result_status, nde_result_message),
 * with the best (or last good) parameters kept; an integration that stops early returns NDE_OK
 * with stats->reason set and NaN after the stop.
 */
#ifndef NDE_RESULT_H
#define NDE_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include "nde/core.h"
#include "nde/data.h"
#include "nde/grad.h"
#include "nde/model.h"
#include "nde/solve.h"
#include "nde/train.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_result nde_result;

/* ---- options of a fit ---- */

/* The default schedule: multiple shooting with Adam, then L-BFGS, then L-BFGS on the whole
 * trajectory (measured on the shipped Lotka-Volterra UDE: README). */
#define NDE_DEFAULT_SCHEDULE "shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000"

typedef struct nde_result_fit_opts {
  /* Integration and gradient: everything a forecast needs to integrate as the fit did.  Strings
   * (method names) are looked up in the registries and stored as the registry's own names, so the
   * caller's strings need not outlive the call.  Default: rk4 with 5 equal steps per observation
   * interval, the discrete adjoint. */
  nde_solver_opts solver;
  nde_grad_opts grad;
  /* The objective: loss reduction and weights, learnable initial states, multiple shooting,
   * minibatches (nde/train.h).  Default: mean squared error, segments of 4 intervals, weight 10. */
  nde_fit_opts objective;
  const char *schedule;  /* NULL or "": NDE_DEFAULT_SCHEDULE; copied */
  double lr;             /* learning rate of Adam phases without @LR; default 0.01 */
  uint64_t seed;         /* initialisation and minibatches; default 1 */
  int max_failures;      /* rejected steps in a row before giving up; default 8 */
  long checkpoint_every; /* iterations between resume points (and scoring); default 200 */
  int keep_last;         /* keep the final iterate instead of the best-scored one; default 0 */
  int patience;          /* stop when the score has not improved for this many scoring points
                          * (resume points); 0 (default): never */
  int phase_patience;    /* end a phase whose loss stalls (nde_train_opts); default 2, 0: never */
  double phase_tol;      /* relative progress that counts; default 1e-6 */
  /* Validation (at most one): the trailing fraction validate_tail of every series' observations
   * (integrated from the series' start, not fitted), or the last validate_series series of the
   * data (held out whole).  The validation loss is the score: it decides the kept iterate and
   * the patience.  Default 0 and 0: no validation, the score is the full training loss. */
  double validate_tail;
  int validate_series;
  /* The noise standard deviation of each state (n values, NaN for unknown), or NULL for the
   * data's recorded noise_std; with it the loss is reported against the noise level.  Borrowed
   * for the call (a result keeps a copy). */
  const double *noise_std;
  /* Start: theta0 (nde_problem_n_theta values) or NULL for the model's initialisation with seed. */
  const double *theta0;
  /* Continue this checkpoint (nde_result_open of an interrupted fit): the model, the data and
   * every option that changes the path must match what it recorded (NDE_ERR_DATA naming the
   * first difference otherwise).  Borrowed. */
  const nde_result *resume;
  /* Write the result to this path at resume points (at most every checkpoint_seconds) and at the
   * end, atomically; NULL: no file.  Copied. */
  const char *checkpoint_path;
  double checkpoint_seconds; /* default 10 */
  /* Progress: called every progress_every iterations and on events; return non-zero to stop (the
   * result then has status NDE_FIT_STOPPED and is resumable). */
  int (*progress)(void *ctx, const nde_train_progress *p);
  void *progress_ctx;
  long progress_every; /* default 100 */
  /* Provenance (copied): the command line and the name of the data as the user gave it. */
  const char *command_line;
  const char *data_label;
  /* Threads of this process for the objective's batches (docs/scaling.md): 0 (default) the cores
   * available to it, shared among the MPI ranks on its machine; OpenBLAS runs one thread while
   * there are more.  Under an MPI launcher (nde built with MPI) the ranks share the series and
   * rank 0 writes the checkpoints.  Neither changes the result, bit for bit. */
  int threads;
} nde_result_fit_opts;

NDE_API nde_result_fit_opts nde_result_fit_opts_default(void);

/* ---- a model bound to data ---- */

typedef struct nde_problem nde_problem;

/* Bind model (borrowed; it must outlive the problem) to every series of data (borrowed, likewise)
 * with the integration, gradient and objective options of o (NULL: defaults; its schedule and
 * training fields are not used).  Statuses: NDE_ERR_ARG (bad options, an unknown solver or
 * gradient method, a method the solver does not support), NDE_ERR_DATA (a series with fewer than
 * 2 times, an initial state that cannot be formed, non-positive data with log_space),
 * NDE_ERR_NOMEM; err (may be NULL) receives the message. */
NDE_API nde_status nde_problem_create(nde_model *model, const nde_data *data,
                                      const nde_result_fit_opts *o, nde_problem **out,
                                      nde_error *err);
NDE_API void nde_problem_destroy(nde_problem **p);
NDE_API const char *nde_problem_errmsg(const nde_problem *p);
/* Length of θ (the model's learnable values) and of the optimised vector x (θ, then learned
 * initial states, then multiple-shooting starts; nde/train.h). */
NDE_API size_t nde_problem_n_theta(const nde_problem *p);
/* The objective (owned by the problem), for nde_fit_eval and nde_train_create: over the training
 * series (without held-out series and trailing parts). */
NDE_API nde_fit *nde_problem_objective(nde_problem *p);
/* The validation objective (same theta layout; no regularisation, no shooting), or NULL when the
 * options ask for no validation. */
NDE_API nde_fit *nde_problem_validation(nde_problem *p);
/* The training loss the true model would have under the known noise (mean or sum of w_i sigma_i^2
 * over the observed values), or NaN when a state's noise is unknown or the loss is in log space. */
NDE_API double nde_problem_noise_loss(const nde_problem *p);
/* The initial state of series k (n values) by the rule above; NULL when out of range. */
NDE_API const double *nde_problem_u0(const nde_problem *p, int k);
/* The trajectory loss (no shooting, no minibatch) at θ and its gradient dL/dθ (n_theta values,
 * may be NULL), with the series' initial states fixed.  A solve that stops is an outcome: NDE_OK,
 * *L = NaN, info->stop says why.  Statuses: NDE_ERR_ARG, NDE_ERR_CALLBACK, NDE_ERR_NOMEM. */
NDE_API nde_status nde_problem_loss(nde_problem *p, const double *theta, double *L, double *g,
                                    nde_fit_info *info);
/* One sentence on a solve that stopped, with what to try: e.g. "solver dopri5 stopped at
 * t = 1.52 after 1014 steps (step size 0.0015): the problem appears to be stiff ...: use solver
 * cvode-bdf".  solver is the method name.  Written into buf (len bytes); returns buf. */
NDE_API char *nde_stop_message(const char *solver, const nde_solve_stats *s, char *buf,
                               size_t len);

/* ---- the fitted model ---- */

typedef enum {
  NDE_FIT_RUNNING = 0, /* a checkpoint of a fit in progress (resumable) */
  NDE_FIT_DONE,        /* the schedule ran to its end */
  NDE_FIT_STOPPED,     /* stopped on request (SIGINT, a progress callback): resumable */
  NDE_FIT_EARLY_STOP,  /* the score stopped improving (patience) */
  NDE_FIT_DIVERGED,    /* too many rejected steps in a row */
  NDE_FIT_FAILED       /* the objective could not be evaluated (message says what stopped) */
} nde_fit_status;

/* "running", "done", "interrupted", "early-stop", "diverged", "failed". */
NDE_API const char *nde_fit_status_str(nde_fit_status s);

/* Fit model (borrowed) to data (borrowed) with options o (NULL: defaults).  Returns NDE_OK
 * whenever the fit ran, whatever its outcome (nde_result_status); then *out holds the result
 * with the kept parameters (the best-scored accepted iterate unless keep_last; the last good
 * one when nothing was scored), and, when o->checkpoint_path is set, that file holds it too.
 * Statuses: those of nde_problem_create; NDE_ERR_DATA for a resume that does not match;
 * NDE_ERR_IO when a checkpoint cannot be written (*out still receives the result, so it can be
 * saved elsewhere); NDE_ERR_CALLBACK, NDE_ERR_NOMEM.  err (may be NULL) receives the message. */
NDE_API nde_status nde_result_fit(nde_model *model, const nde_data *data,
                                  const nde_result_fit_opts *o, nde_result **out, nde_error *err);

/* Open a result file.  An old or foreign file is NDE_ERR_DATA with a message naming the first
 * missing or malformed dataset ("fit.h5:/settings: missing (expected a result file of nde fit
 * 0.2 or later)"); NDE_ERR_IO when it cannot be opened; NDE_ERR_PARSE/NDE_ERR_MODEL when the
 * stored model does not compile. */
NDE_API nde_status nde_result_open(const char *path, nde_result **out, nde_error *err);
/* Write the result to path atomically (temporary file, fsync, rename).  NDE_ERR_IO, NDE_ERR_NOMEM
 * with the message in err. */
NDE_API nde_status nde_result_save(const nde_result *r, const char *path, nde_error *err);
NDE_API void nde_result_destroy(nde_result **r);

/* The compiled model (owned by the result). */
NDE_API const nde_model *nde_result_model(const nde_result *r);
NDE_API nde_fit_status nde_result_status(const nde_result *r);
/* A sentence on the outcome: "every phase ran to its end", or for a failure what stopped and
 * what to try.  Owned by the result. */
NDE_API const char *nde_result_message(const nde_result *r);
/* A sentence when the loss is far from the noise level (below 0.25 or above 4 times the loss the
 * true model would have): a model interpolating the noise, or one that cannot describe the data
 * or stopped early; "" otherwise or when the noise is unknown.  Owned by the result. */
NDE_API const char *nde_result_warning(const nde_result *r);
/* The kept θ (n values); the vector of the last accepted iterate too. */
NDE_API size_t nde_result_n_theta(const nde_result *r);
NDE_API const double *nde_result_theta(const nde_result *r);
NDE_API const double *nde_result_theta_last(const nde_result *r);
/* Natural value of the model's parameter i (nde_model_get_param order) at the kept θ; NaN for a
 * per-series parameter, whose value for series s is nde_result_param_series (which also answers
 * shared parameters, for any s). */
NDE_API double nde_result_param(const nde_result *r, int i);
NDE_API double nde_result_param_series(const nde_result *r, int i, int s);

/* Which iterate was kept, and how it compares with the last one. */
typedef struct nde_result_kept {
  int is_best;       /* 1: the best-scored iterate; 0: the last one (keep_last, or nothing scored) */
  long iteration;    /* total iteration count of the kept iterate */
  double score;      /* its score (trajectory loss, or validation loss); NaN for the last */
  double loss;       /* the training data's trajectory loss at the kept θ (no regularisation) */
  double last_loss;  /* the same at the last accepted θ */
  double validation; /* the validation loss at the kept θ (NaN without validation) */
  double noise_loss; /* the loss the true model would have under the known noise (NaN unknown) */
  double noise_ratio; /* loss / noise_loss: about 1 at the noise level */
} nde_result_kept;
NDE_API nde_result_kept nde_result_get_kept(const nde_result *r);

/* The fitted series: name (the data group, "/" for a root series), observation times, and the
 * fitted initial state (n values at t[0]).  Views owned by the result. */
typedef struct nde_result_series {
  const char *name;
  size_t n_obs;
  const double *t;
  const double *u0;
} nde_result_series;
NDE_API int nde_result_n_series(const nde_result *r);
NDE_API nde_status nde_result_get_series(const nde_result *r, int k, nde_result_series *out);
/* Index of the series with this name, or -1. */
NDE_API int nde_result_find_series(const nde_result *r, const char *name);

/* The settings the fit ran with (solver, step, tolerances, gradient method, objective,
 * schedule, seed...).  Owned by the result; its strings are static registry names or owned by
 * the result. */
NDE_API const nde_result_fit_opts *nde_result_settings(const nde_result *r);
/* The fixed step of the fit as one size: dt, or (steps per interval) the smallest step the fit
 * took, interval / steps_per_interval over every series.  0 for adaptive solvers. */
NDE_API double nde_result_step(const nde_result *r);

/* Histories: the phase's objective per iteration; the scores with their iteration counts. */
NDE_API size_t nde_result_history(const nde_result *r, const double **loss);
NDE_API size_t nde_result_scores(const nde_result *r, const double **score, const long **iter);
/* The loss-history length at the end of each phase of the schedule (-1: not reached); returns the
 * number of phases. */
NDE_API int nde_result_phase_ends(const nde_result *r, const long **ends);
/* The total iteration count, and the wall-clock seconds of the fit. */
NDE_API long nde_result_iterations(const nde_result *r);
NDE_API double nde_result_seconds(const nde_result *r);

/* Provenance values by key ("command_line", "data_file", "model_file", "nde_version",
 * "sundials_version", "hdf5_version", "blas", "created"); NULL when absent. */
NDE_API const char *nde_result_provenance(const nde_result *r, const char *key);

/* ---- the fitted model on any grid ---- */

typedef enum {
  NDE_START_FITTED = 0, /* the fitted initial state of series `series`, at its first time */
  NDE_START_AT_TIME,    /* the fitted trajectory of series `series` at time t (inside its span) */
  NDE_START_STATE       /* the state u (n values) at time t */
} nde_start_kind;

typedef struct nde_start {
  nde_start_kind kind;
  int series;      /* FITTED, AT_TIME: the fitted series (0-based); STATE: the series whose
                    * per-series parameter values (and bound data) the integration uses */
  double t;        /* AT_TIME, STATE */
  const double *u; /* STATE */
} nde_start;

/* The start time and state (n values) a start stands for.  NDE_ERR_ARG with a message for a
 * series out of range or a time outside the fitted span. */
NDE_API nde_status nde_result_start_state(const nde_result *r, const nde_start *start, double *t0,
                                          double *u0, nde_error *err);

/* Integrate the fitted model from start to every time of times[0..n_times-1] (strictly
 * increasing, none before the start time), writing Y (n_times x n).  solver: NULL for the fit's
 * own settings (fixed-step methods with the step nde_result_step, so output grids that contain
 * the data times reproduce the fitted curves), or other options.  A stop is an outcome: NDE_OK,
 * stats->reason set, NaN rows after it (stats may be NULL only when the caller does not care).
 * Statuses: NDE_ERR_ARG (bad times, start or options; message in err), NDE_ERR_NOMEM,
 * NDE_ERR_CALLBACK. */
NDE_API nde_status nde_result_integrate(const nde_result *r, const nde_start *start,
                                        size_t n_times, const double *times,
                                        const nde_solver_opts *solver, double *Y,
                                        nde_solve_stats *stats, nde_error *err);

/* ---- scoring against held-out data ---- */

typedef struct nde_score_opts {
  /* The horizon is the first time the error of some state exceeds horizon_tol times that
   * state's standard deviation in the held-out data; default 0.1. */
  double horizon_tol;
  const nde_solver_opts *solver; /* NULL: the fit's settings */
  /* 0 (default): each held-out series starts from its own first observed row.  1: from the
   * fitted trajectory at its first time, of the fitted series of the same name (or of the only
   * fitted series): for held-out data that continue a training series, whose fitted start the
   * parameters were fitted with. */
  int start_fitted;
} nde_score_opts;
NDE_API nde_score_opts nde_score_opts_default(void);

/* The score of one held-out series (views owned by the score handle). */
typedef struct nde_series_score {
  const char *name;        /* the held-out series' group */
  double t0, t1;           /* the span scored (its first and last time) */
  const double *u0;        /* the start state used: its first row, completed (n values) */
  const double *rmse;      /* per state (n; NaN for a state without data) */
  const size_t *count;     /* observed values per state */
  double rmse_all;         /* over every observed value */
  double horizon;          /* NaN when the error stays within the tolerance */
  nde_solve_stats stop;    /* reason != NONE: the prediction stopped (errors after it count as
                            * missing, and horizon is the stop time) */
  int series;              /* the fitted series whose per-series values it used */
} nde_series_score;

typedef struct nde_score nde_score;

/* Score the fitted model on every series of held (borrowed; opened for the model's states),
 * each integrated from its own first observed row (a component missing there: the fitted
 * trajectory of the fitted series of the same name at that time when it lies in its span, else
 * the model's declared initial value, else an NDE_ERR_DATA naming it).  Statuses: NDE_ERR_ARG,
 * NDE_ERR_DATA, NDE_ERR_NOMEM, NDE_ERR_CALLBACK with the message in err. */
NDE_API nde_status nde_result_score(const nde_result *r, const nde_data *held,
                                    const nde_score_opts *o, nde_score **out, nde_error *err);
NDE_API void nde_score_destroy(nde_score **s);
NDE_API int nde_score_n_series(const nde_score *s);
NDE_API nde_status nde_score_get(const nde_score *s, int k, nde_series_score *out);
/* The RMSE over every observed value of every held-out series. */
NDE_API double nde_score_rmse(const nde_score *s);

/* ---- simulation ---- */

typedef struct nde_sim_opts {
  nde_solver_opts solver; /* default: rk4 with 10 equal steps per output interval */
  /* Gaussian noise with standard deviation noise * mean(|y_j|) over the grid, per column j
   * (Rackauckas et al. 2020), drawn in row-major order from an nde_rng seeded with seed. */
  double noise;
  uint64_t seed;
} nde_sim_opts;
NDE_API nde_sim_opts nde_sim_opts_default(void);

/* Integrate model (borrowed) at theta (nde_model_n_theta values) from u0 (n values) at times[0]
 * through times[1..n_times-1] into Y (n_times x n), then add noise.  noise_std (n values, may be
 * NULL) receives the absolute standard deviation added per column (0 without noise).  A stop is
 * an outcome (stats->reason, NaN after it; no noise is added then).  Statuses: NDE_ERR_ARG,
 * NDE_ERR_NOMEM, NDE_ERR_CALLBACK with the message in err. */
NDE_API nde_status nde_simulate(nde_model *model, const double *theta, const double *u0,
                                size_t n_times, const double *times, const nde_sim_opts *o,
                                double *Y, double *noise_std, nde_solve_stats *stats,
                                nde_error *err);

#ifdef __cplusplus
}
#endif
#endif
