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
/* The default schedule for partly observed data (a state component that no column of any series
 * measures, or data that measure observables): the same phases without multiple shooting, whose
 * segment starts of unmeasured states are free and let the parameters drift (measured: an LV
 * model seen only through gain*x + y reaches 4.7e4 times the noise level with shooting and 1.13
 * times without; the two-tank example, h1 unmeasured, 1.13 times in 9 s against 1.11 in 4.5 s). */
#define NDE_DEFAULT_SCHEDULE_PARTIAL "adam:3000@0.02,lbfgs:1000,lbfgs:1000"

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
  const char *schedule;  /* NULL or "" (default): nde_default_schedule for the data; copied */
  double lr;             /* learning rate of Adam phases without @LR; default 0.01 */
  uint64_t seed;         /* initialisation and minibatches; default 1 */
  int max_failures;      /* rejected steps retried in a row; the next one gives up; default 8 */
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
  /* The noise standard deviation of each data column, NaN for unknown: n + n_observables values
   * (the state components, then nde_model_observable_name's observables; n for a model without
   * observables), or NULL for the data's recorded noise_std; with it the loss is reported
   * against the noise level.  Borrowed for the call (a result keeps a copy). */
  const double *noise_std;
  /* Start: theta0 (nde_problem_n_theta values) or NULL for the model's initialisation with seed. */
  const double *theta0;
  /* Continue this checkpoint (nde_result_open of an interrupted fit): the model, the data and
   * every option that changes the path must match what it recorded (NDE_ERR_DATA naming the
   * first difference otherwise); theta0 must be NULL (NDE_ERR_ARG).  Borrowed. */
  const nde_result *resume;
  /* Write the result to this path at resume points (at most every checkpoint_seconds) and at the
   * end, atomically; NULL: no file.  Copied. */
  const char *checkpoint_path;
  double checkpoint_seconds; /* default 10 */
  /* Progress: called every progress_every iterations and on events; return non-zero to stop (the
   * result then has status NDE_FIT_STOPPED and is resumable). */
  int (*progress)(void *ctx, const nde_train_progress *p);
  void *progress_ctx;
  long progress_every; /* default 100 (<= 0: the default) */
  /* Provenance (copied): the command line and the name of the data as the user gave it. */
  const char *command_line;
  const char *data_label;
  /* Threads of this process for the objective's batches (docs/scaling.md): 0 (default) the cores
   * available to it, shared among the MPI ranks on its machine; OpenBLAS runs one thread while a
   * problem exists, whatever this count.  Under an MPI launcher (nde built with MPI) the ranks share the series and
   * rank 0 writes the checkpoints.  Neither changes the result, bit for bit. */
  int threads;
} nde_result_fit_opts;

NDE_API nde_result_fit_opts nde_result_fit_opts_default(void);

/* The schedule a fit of model to data runs by default: NDE_DEFAULT_SCHEDULE, or
 * NDE_DEFAULT_SCHEDULE_PARTIAL when the data are partly observed (static strings). */
NDE_API const char *nde_default_schedule(const nde_model *model, const nde_data *data);

/* ---- data for a model ---- */

/* Open the time series of path ("FILE.h5" or "FILE.h5:/group") for model: the columns of /y
 * are matched by name to the model's state components and then its observables
 * (docs/data-format.md).  The same as
 * nde_data_open with the model's names and default options.  Statuses and messages as
 * nde_data_open's; err (may be NULL) receives the message. */
NDE_API nde_status nde_data_open_for(const char *path, const nde_model *model, nde_data **out,
                                     nde_error *err);

/* The measured inputs and constants from data of series k of data (opened for model), in the
 * model's order: inputs gets views into data (n = 0 for a model without inputs); consts gets
 * nde_model_n_data_consts(model) values.  NDE_ERR_DATA naming the series when it lacks one
 * (data opened without the model's inputs); NDE_ERR_ARG for k out of range. */
NDE_API nde_status nde_data_series_inputs(const nde_data *data, size_t k, const nde_model *model,
                                          nde_input_series *inputs, double *consts,
                                          nde_error *err);

/* Parameters for model (n_series series, for per-series blocks) from a file: the flat
 * /params/theta of a result file or another tool's (its length checked before anything is
 * read; all finite; when the file records a layout, /params/layout/names with /offsets and
 * /lengths, it must be the model's entry for entry, checked first, and the message names the
 * first entry that differs), then
 * every learnable shared parameter given by name in natural units at /params/values/NAME (they
 * override theta, and a file may hold only these).  theta (nde_model_n_theta_full values) must
 * hold start values for what the file does not give.  Statuses: NDE_ERR_IO (the file cannot be
 * opened), NDE_ERR_DATA (nothing usable, a wrong length, layout or value; the message names the
 * dataset), NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_read_params(const char *path, const nde_model *model, int n_series,
                                   double *theta, nde_error *err);

/* Output times t0, t0 + dt, ... up to t1, t1 always last (a point within 1e-9 dt of t1 is t1):
 * the grid of a forecast.  *times is malloc'ed (release with nde_free).  NDE_ERR_ARG when t1 <= t0,
 * dt <= 0 or the grid would exceed max times; NDE_ERR_NOMEM. */
NDE_API nde_status nde_time_grid(double t0, double t1, double dt, size_t max, double **times,
                                 size_t *n, nde_error *err);

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
 * *L = NaN, info->stop says why.  Statuses: NDE_ERR_ARG (also a non-finite entry of θ, named by
 * its parameter or net), NDE_ERR_CALLBACK, NDE_ERR_NOMEM. */
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

/* The accessors below answer a NULL result (what a failed nde_result_fit leaves) with nothing:
 * 0, NULL, "" or NaN, and NDE_FIT_FAILED for the status. */

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

/* The fitted series: name (the data group, "/" for a root series), observation times, the
 * fitted initial state (n values at t[0]), and the data it was driven by: its measured inputs
 * (n_u samples at u_t, values n_u x nde_model_n_inputs in the model's declaration order; 0 and
 * NULL for a model without inputs) and its constants from data (nde_model_n_data_consts values
 * in column order, NULL without).  Views owned by the result. */
typedef struct nde_result_series {
  const char *name;
  size_t n_obs;
  const double *t;
  const double *u0;
  size_t n_u;
  const double *u_t;
  const double *u;
  const double *consts;
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
  /* The measured inputs and constants from data that drive the integration (a held-out
   * experiment's own, or future inputs for a forecast); NULL: those of the fitted series
   * `series`.  For a model without inputs (constants from data) they are not read. */
  const nde_input_series *inputs;
  const double *consts; /* nde_model_n_data_consts values in column order */
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
 * A model with measured inputs needs inputs that cover [start, last time] unless the input is
 * declared "hold" (NDE_ERR_ARG naming the input and where its samples end).
 * Statuses: NDE_ERR_ARG (bad times, start, inputs or options; message in err), NDE_ERR_NOMEM,
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

/* Where a component of a held-out series' start state came from. */
typedef enum {
  NDE_U0_FROM_ROW = 0, /* the held-out series' first observed row */
  NDE_U0_FROM_FIT,     /* the fitted trajectory of series_from (nde_series_score) at t0 */
  NDE_U0_FROM_MODEL    /* the model's declared initial value (the value for the start of a
                        * fitted series, whatever t0 is) */
} nde_u0_source;

/* The score of one held-out series (views owned by the score handle). */
typedef struct nde_series_score {
  const char *name;        /* the held-out series' group */
  double t0, t1;           /* the span scored (its first and last time) */
  const double *u0;        /* the start state used: its first row, completed (n values) */
  const double *rmse;      /* per column (nde_score_n_columns: the n state components, then
                            * the model's observables; NaN for a column without data) */
  const size_t *count;     /* observed values per column */
  double rmse_all;         /* over every observed value */
  double horizon;          /* NaN when the error stays within the tolerance */
  nde_solve_stats stop;    /* reason != NONE: the prediction stopped (errors after it count as
                            * missing, and horizon is the stop time) */
  int series;              /* the fitted series whose per-series values it used */
  const unsigned char *u0_from; /* per component, an nde_u0_source: where u0 came from */
  int series_from;         /* the fitted series whose trajectory gave the NDE_U0_FROM_FIT
                            * components (-1 when none did) */
} nde_series_score;

typedef struct nde_score nde_score;

/* Score the fitted model on every series of held (borrowed; opened for the model's states),
 * each integrated from its own first observed row (a component missing there: the fitted
 * trajectory of the fitted series of the same name, or of the only fitted series, at that time
 * when it lies in its span, else the model's declared initial value, else an NDE_ERR_DATA
 * naming it; nde_series_score.u0_from says which).  Statuses: NDE_ERR_ARG,
 * NDE_ERR_DATA, NDE_ERR_NOMEM, NDE_ERR_CALLBACK with the message in err. */
NDE_API nde_status nde_result_score(const nde_result *r, const nde_data *held,
                                    const nde_score_opts *o, nde_score **out, nde_error *err);
NDE_API void nde_score_destroy(nde_score **s);
NDE_API int nde_score_n_series(const nde_score *s);
/* The columns scored: the state components, then (data opened with nde_data_open_for) the
 * model's observables, named as nde_data_state_name of the held-out data names them. */
NDE_API int nde_score_n_columns(const nde_score *s);
NDE_API nde_status nde_score_get(const nde_score *s, int k, nde_series_score *out);
/* The RMSE over every observed value of every held-out series. */
NDE_API double nde_score_rmse(const nde_score *s);

/* The model's observables (nde_model_n_observables per row, in declaration order) along the
 * states Z (n_times x n, e.g. from nde_result_integrate with the same start) of a trajectory of
 * series start->series, driven by start->inputs and start->consts (NULL: the fitted series'
 * own), at the fitted parameters: H (n_times x n_observables); NaN in a row whose state is not
 * finite.  NDE_ERR_ARG (no observables, no such series), NDE_ERR_CALLBACK (the observation model
 * failed), NDE_ERR_NOMEM. */
NDE_API nde_status nde_result_observe(const nde_result *r, const nde_start *start,
                                      size_t n_times, const double *times, const double *Z,
                                      double *H, nde_error *err);

/* ---- simulation ---- */

typedef struct nde_sim_opts {
  nde_solver_opts solver; /* default: rk4 with 10 equal steps per output interval */
  /* Gaussian noise with standard deviation noise * mean(|y_j|) over the grid (its finite
   * values), per column j (Rackauckas et al. 2020), drawn in row-major order from an nde_rng
   * seeded with seed. */
  double noise;
  uint64_t seed;
  /* The measured inputs and constants from data, required when the model declares them
   * (borrowed for the call); NULL otherwise. */
  const nde_input_series *inputs;
  const double *consts;
  /* What is written to Y: n_columns quantities by name, each a state component ("x", "y[2]")
   * or an observable ("observe h = ..."), evaluated on the solution (noise is added to them);
   * 0 (default): every state component in order. */
  int n_columns;
  const char *const *columns;
} nde_sim_opts;
NDE_API nde_sim_opts nde_sim_opts_default(void);

/* Check that inp (borrowed; may be NULL) holds samples of model's measured inputs at finite,
 * strictly increasing times that cover [t0, t1], except for inputs declared hold (whose last
 * value is kept).  Nothing to check for a model without inputs.  nde_simulate makes this check
 * itself; a caller that reads the inputs from a file calls it first to name the file.
 * NDE_ERR_ARG naming the input, with the message in err (may be NULL). */
NDE_API nde_status nde_model_check_input_span(const nde_model *model, const nde_input_series *inp,
                                              double t0, double t1, nde_error *err);

/* Integrate model (borrowed) at theta (nde_model_n_theta_full(model, 1) values: the shared part
 * and one series' block of per-series parameters) from u0 (n values) at times[0]
 * through times[1..n_times-1] into Y (n_times x K: the K = o->n_columns quantities, or the n
 * state components), then add noise.  noise_std (K values, may be NULL) receives the absolute
 * standard deviation added per column (0 without noise).  A stop is
 * an outcome (stats->reason, NaN after it; no noise is added then).  Statuses: NDE_ERR_ARG,
 * NDE_ERR_NOMEM, NDE_ERR_CALLBACK with the message in err. */
NDE_API nde_status nde_simulate(nde_model *model, const double *theta, const double *u0,
                                size_t n_times, const double *times, const nde_sim_opts *o,
                                double *Y, double *noise_std, nde_solve_stats *stats,
                                nde_error *err);

/* Many series of one model on one time grid, each what nde_simulate gives it alone.
 *
 * Threads.  Concurrent calls of nde_simulate on one model are safe: each call makes its own
 * right-hand side (with its own network workspaces), solver and observer, and only reads the
 * model (whose reference count is atomic); nothing in a model is initialised lazily.  So the
 * series run as jobs on a thread pool, each writing only its own rows, and the result does not
 * depend on the thread count: it is, bit for bit, nde_simulate of each series in turn with
 * OpenBLAS on one thread (OpenBLAS is held at one thread during the call, whatever the count,
 * as during a fit: docs/scaling.md).  nde_simulate_many makes the right-hand side, solver and
 * observer once per thread, bound to the distinct inputs and constants of all the series (by
 * address), and binds each series' rows and parameters to them in turn, which gives the same
 * bits without making them again per series; when some series' data cannot be bound, every
 * series runs nde_simulate alone, so that failures are reported as nde_simulate reports them. */
typedef struct nde_sim_series {
  const double *theta;            /* nde_model_n_theta_full(model, 1) values: the shared part and
                                   * this series' per-series block (NULL only for a model
                                   * without any) */
  const double *u0;               /* the initial state at times[0] (n values) */
  const nde_input_series *inputs; /* NULL: the options' inputs */
  const double *consts;           /* NULL: the options' constants from data */
  int own_seed;                   /* 1: the noise is drawn with seed; 0 (a zeroed struct): with
                                   * nde_sim_series_seed(o->seed, k) for series k */
  uint64_t seed;
} nde_sim_series;

/* The noise seed of series k (>= 0; a negative k is taken as 0) of a run with base seed seed:
 * a mix of both, below 2^53 (a value nde simulate --seed takes, so one series can be made again
 * alone), one-to-one in seed (taken modulo 2^53) for each k, so that runs with different base
 * seeds never give a series the same noise, and pseudo-random over k, so that neighbouring
 * series do not share a stream (nde_rng_seed's streams of seeds a multiple of its increment
 * apart overlap). */
NDE_API uint64_t nde_sim_series_seed(uint64_t seed, int k);

/* Simulate n_series series (series[k]; borrowed for the call) of model (borrowed) on times
 * (n_times values, strictly increasing, shared) with the options o (NULL: defaults; its solver,
 * noise level, columns, and the inputs, constants and seed that series without their own use),
 * on up to `threads` threads (<= 0: every core; at most n_series).  Series k writes
 * Y[k n_times K ...] (n_series x n_times x K, K as nde_simulate's), noise_std[k K ...]
 * (n_series x K, may be NULL) and stats[k] (n_series, may be NULL only when the caller does not
 * care about stops).  A solve that stops is an outcome of its series, as in nde_simulate:
 * stats[k].reason set, NaN rows after the stop and no noise in that series; the call returns
 * NDE_OK and the other series are complete.  n_series = 0 does nothing (series and Y may
 * then be NULL).  Statuses: NDE_ERR_ARG
 * (bad arguments, options or times, named without a series; a bad series: "series 3: the
 * initial state of x is nan ..."), NDE_ERR_NOMEM, NDE_ERR_CALLBACK (a fatal model callback:
 * "series 3: ..."); when several series fail the message is the lowest one's, whatever the
 * timing, and the contents of Y are unspecified.  failed (may be NULL) receives that series'
 * index, or -1 (no series failed, or the arguments shared by all did).  err (may be NULL)
 * receives the message. */
NDE_API nde_status nde_simulate_many(nde_model *model, int n_series, const nde_sim_series *series,
                                     size_t n_times, const double *times, const nde_sim_opts *o,
                                     int threads, double *Y, double *noise_std,
                                     nde_solve_stats *stats, int *failed, nde_error *err);

/* ==== how sure is the fit: standard errors, profiles, ensembles ====
 * (src/result/jacobian.c, uncertainty.c, ensemble.c)
 *
 * Standard errors from the curvature.  The Gauss-Newton (Fisher) approximation of the covariance
 * of the fitted coordinates: with the residuals e (y - o over every observed value the trajectory
 * loss compares; log y - log o for a log-space loss) and their Jacobian J with respect to the
 * coordinates (physical parameters in the unconstrained form the optimiser used, per-series
 * parameters of every series, learned initial states in natural units; network weights only on
 * request), the fit minimised sum w_i e^2 (w_i its state weights), and its covariance is
 *     C = H^+ (J^T W S W J) H^+,   H = J^T W J,   S = diag(sigma_i^2),
 * (the sandwich of weighted least squares; Seber & Wild 1989, sec. 2.1.4), which is the textbook
 * s^2 (J^T W J)^-1 when sigma_i^2 = s^2 / w_i.  sigma is the noise level: estimated from the
 * residuals per state (default: sigma_i^2 = sum over state i's residuals e^2 / (N_i (1 - P/N)),
 * each state's share of the N - P degrees of freedom), or pooled over the states with the fit's
 * weights (sigma_i^2 = s^2 / w_i, s^2 = sum w e^2 / (N - P)), or known.  J comes from the
 * variational equations s' = df/du s + df/dtheta_j, s(t0) = du0/dtheta_j, integrated with the
 * fit's own solver (for fixed-step methods this is the exact derivative of the discrete solution,
 * since Runge-Kutta, splitting and implicit-midpoint steps commute with differentiation; adaptive
 * methods control the error of the augmented system), or from central differences of the
 * residuals (documented fallback).  Network weights are excluded by default: the physical
 * parameters are reported conditional on the trained networks (and on fixed initial states).
 *
 * Natural units: a parameter v = g(theta) (log: v = exp(theta); logit) has the delta-method
 * standard error |g'(theta)| se(theta) and two intervals: the symmetric one v -/+ q se(v), and
 * the interval of theta mapped through g (asymmetric for log and logit parameters), with q the
 * quantile of Student's t with N - P degrees of freedom (estimated noise) or of the normal
 * distribution (known noise).
 *
 * Identifiability: the columns of W^(1/2) J are normalised to unit length and it is factorised
 * (SVD); a right singular vector whose singular value is below ident_tol times the largest is a
 * direction in which the data do not determine the coordinates (two parameters that enter only
 * as a product give one).  The coordinates with a component of at least 0.01 along such a
 * direction are not identifiable: their standard error is +inf, and the warning names them with
 * the direction.  H^+ is then the pseudo-inverse on the identifiable directions.
 *
 * Profile likelihood.  For a coordinate, the others are re-optimised (Levenberg-Marquardt on the
 * fit's own objective F = sum w e^2) on a grid of its values walked outward from the estimate,
 * each point from the re-fit of the one before it moved by the linear prediction C_op / C_pp (or
 * along the non-identifiable direction), a point above the threshold also from the estimate's
 * own prediction (the lower is kept), and the interval is where the statistic
 * (F(v) - F(v^)) (H^+)_pp / C_pp stays below q^2: chi^2 with 1 degree of freedom for a known
 * noise, F(1, N - P) = t^2 for an estimated one.  The factor is 1 / s^2 for the pooled noise
 * (the likelihood ratio itself) and otherwise matches the profile to the sandwich variance at
 * the estimate (a curvature-adjusted profile), so that the two intervals share their centre and
 * agree exactly for a model linear in its parameters.  The sides of the profiles run in
 * parallel; the grid is extended (doubling its reach, up to max_extend times) on a side whose
 * statistic has not reached the threshold, and a side that never reaches it is unbounded: not
 * identifiable in that direction.
 *
 * Ensembles.  K fits of the same model from seeds seed, seed + 1, ... (member k from seed + k),
 * optionally each on a random part of the data (half-sampling without replacement of the series
 * or of the observation rows: the spread of half-sample estimates estimates the sampling spread
 * of the full fit, McCarthy 1969; it is also the subsampling of stability selection,
 * Meinshausen & Buhlmann 2010).  Members run concurrently on threads and are bit for bit the
 * fits nde_result_fit makes alone with the same seed and data.  All members are kept in one
 * result: the result's own parameters are the fit to all the data with the first seed (member 0
 * when nothing is resampled), and each member can be made into a result of its own
 * (nde_result_member) for forecasts and discovery.
 *
 * Errors are statuses (bad options, data that are not the fit's, no memory); a member whose fit
 * fails, or a profile point whose re-fit stops, is an outcome recorded with it.
 */

typedef enum {
  NDE_NOISE_PER_STATE = 0, /* one level per state, each estimated from its own residuals
                            * (default: states of different size or kind have their own noise) */
  NDE_NOISE_POOLED,        /* one level for the residuals weighted by the fit's state weights */
  NDE_NOISE_KNOWN          /* the noise std of every measured column is known (opts or the
                            * result's) */
} nde_noise_model;

/* "per-state", "pooled", "known". */
NDE_API const char *nde_noise_model_str(nde_noise_model m);

typedef struct nde_unc_opts {
  double level;            /* coverage of the intervals; default 0.95 */
  nde_noise_model noise;   /* default NDE_NOISE_PER_STATE */
  /* The noise std per column for NDE_NOISE_KNOWN (n + n_observables values as
   * nde_result_fit_opts.noise_std, borrowed for the call), or NULL for the result's (--noise-std
   * of the fit or the data's noise_std); NDE_ERR_ARG when a state or observable
   * with data has none. */
  const double *noise_std;
  int include_nets;        /* network weights among the coordinates; default 0 */
  int include_u0;          /* learned initial states among them (with learn_u0); default 1 */
  double ident_tol;        /* singular-value ratio below which a direction is not identifiable;
                            * default 1e-8 */
  int finite_differences;  /* 1: J by central differences of the residuals instead of the
                            * variational equations (also used when the model has no JVP) */
  double fd_step;          /* relative step of the differences; default 1e-6 */
} nde_unc_opts;

NDE_API nde_unc_opts nde_unc_opts_default(void);

typedef enum {
  NDE_UNC_PARAM = 0,     /* a learnable scalar parameter */
  NDE_UNC_SERIES_PARAM,  /* a per-series parameter of one series */
  NDE_UNC_INITIAL_STATE, /* a learned initial-state component of one series */
  NDE_UNC_NET_WEIGHT     /* one network weight (include_nets) */
} nde_unc_kind;

/* One coordinate with its estimate, standard errors and intervals.  Views owned by the result. */
typedef struct nde_unc_entry {
  const char *name;   /* "alpha"; "k[/run1]" (per series); "x(t0)" or "x(t0)[/run1]" (initial
                       * state); "U[17]" (a weight of net U) */
  nde_unc_kind kind;
  int param;          /* nde_model_get_param index (net index for weights), -1 for states */
  int series;         /* the series of a per-series parameter or initial state, else -1 */
  int component;      /* the state column of an initial state, else -1 */
  nde_param_transform transform; /* how the optimiser stored it (NONE for states, weights) */
  double value;       /* the estimate in natural units */
  double se;          /* standard error in natural units (delta method); +inf: not identifiable */
  double se_opt;      /* standard error of the optimised coordinate (of log v for a positive v) */
  double lower, upper;         /* the optimised coordinate's interval mapped to natural units */
  double lower_sym, upper_sym; /* value -/+ q se */
  int identifiable;
} nde_unc_entry;

/* The uncertainty of a fit: a read-only view owned by the result. */
typedef struct nde_uncertainty {
  int n;                       /* coordinates */
  const nde_unc_entry *entry;  /* n */
  const double *cov;           /* n x n covariance of the optimised coordinates */
  const double *cov_natural;   /* n x n in natural units (delta method) */
  const double *corr;          /* n x n correlations (NaN for non-identifiable coordinates) */
  double level;                /* of the intervals */
  double quantile;             /* q: t(N - P) or normal quantile at (1 + level) / 2 */
  nde_noise_model noise;
  double sigma;                /* pooled: s (the noise std at weight 1); NaN otherwise */
  const double *sigma_state;   /* n_sigma: the noise std used (estimated or known) per data column:
                                * the n_state states, then the data's observable columns */
  long n_residuals;            /* N: observed values in the loss */
  long dof;                    /* N - P */
  double rss;                  /* sum of squared residuals, each divided by its sigma_i^2 */
  double cond;                 /* largest / smallest singular value of the column-normalised
                                * W^(1/2) J (inf when singular) */
  int n_null;                  /* non-identifiable directions */
  const double *null_dirs;     /* n_null x n, unit vectors in the optimised coordinates */
  int finite_differences;      /* how J was computed */
  const char *warning;         /* "" or a sentence naming the non-identifiable coordinates */
  int n_sigma;                 /* columns sigma_state covers (n_state without observable columns) */
  const char *const *sigma_names; /* n_sigma: their names (state components, then observables) */
  /* 1: the fit took measured initial states from the data's first rows as exact (not learned):
   * the errors are conditional on them, and too small when those rows are noisy (learn_u0
   * includes them). */
  int u0_from_data;
} nde_uncertainty;

/* Compute the standard errors of r's fit against data (the data the fit saw: NDE_ERR_DATA when
 * their content differs) and attach them to r (replacing earlier ones; nde_result_save writes
 * them).  Statuses: NDE_ERR_ARG (bad options, a result without learnable coordinates, a known
 * noise level missing), NDE_ERR_DATA, NDE_ERR_NUMERIC (the fitted model cannot be integrated
 * over the data, or J is not finite), NDE_ERR_NOMEM, NDE_ERR_CALLBACK; err (may be NULL) gets
 * the message.  Not identifiable coordinates are an outcome (the warning), not an error. */
NDE_API nde_status nde_result_compute_uncertainty(nde_result *r, const nde_data *data,
                                                  const nde_unc_opts *o, nde_error *err);
/* The attached uncertainty, or NULL. */
NDE_API const nde_uncertainty *nde_result_get_uncertainty(const nde_result *r);
/* The entry of a coordinate by name, or -1. */
NDE_API int nde_uncertainty_find(const nde_uncertainty *u, const char *name);

typedef struct nde_profile_opts {
  int points;        /* grid points on each side in the first round; default 8 */
  double reach;      /* first-round reach in standard errors of the coordinate; default 4 */
  int max_extend;    /* extensions of a side that has not reached the threshold; default 3 */
  int max_iter;      /* Levenberg-Marquardt iterations per point; default 100 */
  int threads;       /* <= 0 (default): every core */
  /* Progress: called from the calling thread as points end; non-zero stops (NDE_ERR_ARG is not
   * returned: the call returns NDE_OK without attaching the profiles, and *stopped = 1). */
  int (*progress)(void *ctx, int done, int total);
  void *progress_ctx;
} nde_profile_opts;

NDE_API nde_profile_opts nde_profile_opts_default(void);

/* One profile: the grid in natural units (increasing) with the statistic at each point (NaN
 * where the re-fit stopped), and the interval.  Views owned by the result. */
typedef struct nde_profile {
  const char *name;
  int entry;           /* index in nde_uncertainty.entry */
  int n;
  const double *grid;
  const double *stat;
  double value;        /* the estimate */
  double lower, upper; /* the interval; where the threshold was not reached on a side, the
                        * coordinate's limit there (-inf/+inf, 0 for a positive parameter, a
                        * bound) and lower_found/upper_found 0: not identifiable that way */
  int lower_found, upper_found;
  double threshold;    /* q^2 */
} nde_profile;

/* Profile the coordinates named in names (comma-separated entry names, e.g. "beta,gamma"),
 * computing the standard errors first when r has none (with uo, NULL for defaults) and
 * attaching the profiles to r.  *stopped (may be NULL) is 1 when the progress callback stopped
 * the run.  Statuses: those of nde_result_compute_uncertainty; NDE_ERR_ARG for an unknown name
 * (the message lists the valid ones). */
NDE_API nde_status nde_result_profile(nde_result *r, const nde_data *data, const char *names,
                                      const nde_unc_opts *uo, const nde_profile_opts *po,
                                      int *stopped, nde_error *err);
NDE_API int nde_result_n_profiles(const nde_result *r);
NDE_API nde_status nde_result_get_profile(const nde_result *r, int i, nde_profile *out);

typedef enum {
  NDE_RESAMPLE_NONE = 0, /* every member fits all the data (members differ by their seeds) */
  NDE_RESAMPLE_SERIES,   /* each member fits a random part of the series (the others keep only
                          * their first row, which gives their initial state) */
  NDE_RESAMPLE_TIME      /* each member fits a random part of every series' observation rows
                          * (the first row always, since it gives the initial state) */
} nde_resample;

/* "none", "series", "time". */
NDE_API const char *nde_resample_str(nde_resample r);

typedef struct nde_ensemble_opts {
  int members;           /* K >= 2; default 10 */
  nde_resample resample; /* default NONE */
  double fraction;       /* share of the series or rows each member fits; default 0.5 */
  int threads;           /* <= 0 (default): every core (at most K) */
  /* Called from the calling thread as members end (done of total) and every 0.2 s; non-zero
   * stops: running members stop at their next iteration, and the call returns NDE_OK with
   * *out NULL and *stopped = 1. */
  int (*progress)(void *ctx, int done, int total);
  void *progress_ctx;
} nde_ensemble_opts;

NDE_API nde_ensemble_opts nde_ensemble_opts_default(void);

/* Fit an ensemble: as nde_result_fit with o (its seed is member 0's; its progress callback and
 * checkpoint path are not used for members; resume is refused), K members as above.  *out is a
 * result whose own fit is the first seed's on all the data, with the members attached (saved by
 * nde_result_save; o->checkpoint_path, when set, receives the final result).  Statuses: those of
 * nde_result_fit, NDE_ERR_ARG for bad ensemble options (K < 2, a fraction outside (0, 1), series
 * resampling of a single series).  Members that diverge or fail are outcomes, recorded with
 * their status. */
NDE_API nde_status nde_result_fit_ensemble(nde_model *model, const nde_data *data,
                                           const nde_result_fit_opts *o,
                                           const nde_ensemble_opts *e, nde_result **out,
                                           int *stopped, nde_error *err);

/* Members of an ensemble result (0 for a single fit). */
NDE_API int nde_result_n_members(const nde_result *r);
/* How an ensemble result was made: its member count, resampling and fraction (threads 0, no
 * progress callback).  NDE_ERR_ARG for a result that is not an ensemble. */
NDE_API nde_status nde_result_ensemble_settings(const nde_result *r, nde_ensemble_opts *out);

typedef struct nde_member_info {
  uint64_t seed;
  nde_fit_status status;
  double loss;          /* the trajectory loss of its own data at its parameters */
  long iterations;
  const double *theta;  /* n_theta (nde_result_n_theta) */
  const double *u0;     /* n_series x n: its fitted initial states */
  const unsigned char *keep; /* per observation row of every series in order (the result's
                              * series' n_obs summed): 1 where the member fitted the row */
} nde_member_info;
NDE_API nde_status nde_result_get_member(const nde_result *r, int k, nde_member_info *out);
/* Member k (from 0) as a result of its own: its parameters, initial states, status, iteration
 * count and kept values (score, loss, last loss, validation, noise level and ratio against its
 * own data; files written before members recorded them give NaN and iteration -1 for all but the
 * loss), with the ensemble's model, settings, series and provenance.  NDE_ERR_ARG for no such
 * member.  *out: destroy with nde_result_destroy. */
NDE_API nde_status nde_result_member(const nde_result *r, int k, nde_result **out,
                                     nde_error *err);

/* The spread of parameter i (nde_model_get_param order; series s for a per-series one, else
 * ignored) over the members whose fit ended well (done or early stop), in natural units; a
 * per-series parameter counts only the members that fitted that series (series resampling). */
typedef struct nde_spread {
  int n;              /* members counted */
  double mean, sd;    /* sd with divisor n - 1 */
  double median;
  double lower, upper; /* the (1 - level)/2 and (1 + level)/2 quantiles (linear interpolation) */
} nde_spread;
NDE_API nde_status nde_result_param_spread(const nde_result *r, int i, int s, double level,
                                           nde_spread *out);

/* The band of the forecast: the model integrated from start at times (as nde_result_integrate)
 * with every well-ended member's parameters (a FITTED or AT_TIME start uses each member's own
 * fitted trajectory), and per time and state the (1 - level)/2 and (1 + level)/2 quantiles over
 * the members (lower, upper: n_times x n) and the median (mid, may be NULL).  Members whose
 * integration stops are left out from the stop on (*n_used, may be NULL, counts the members
 * used at the last time).  Without members, and with standard errors attached, the band is the
 * linearised one, y -/+ q sqrt(diag(S C S^T)) with S the sensitivities of the state to the
 * coordinates (mid is then the fitted trajectory).  NDE_ERR_ARG when r has neither. */
NDE_API nde_status nde_result_integrate_band(const nde_result *r, const nde_start *start,
                                             size_t n_times, const double *times,
                                             const nde_solver_opts *solver, double level,
                                             double *lower, double *mid, double *upper,
                                             int *n_used, nde_error *err);
/* The same band for the model's observables (lower, mid, upper: n_times x n_o, in declaration
 * order), what an experiment measures: over the members, each member's trajectory observed with
 * its own parameters; linearised, h -/+ q sqrt(diag(G C G^T)) with G = dH/du S + dH/dtheta the
 * observables' sensitivities to the coordinates (the observation model's JVP; mid is then the
 * fitted trajectory's observables).  NDE_ERR_ARG also when the model declares no observables. */
NDE_API nde_status nde_result_observe_band(const nde_result *r, const nde_start *start,
                                           size_t n_times, const double *times,
                                           const nde_solver_opts *solver, double level,
                                           double *lower, double *mid, double *upper,
                                           int *n_used, nde_error *err);
/* Both bands in one pass (each member integrated once, or one sensitivity solve): the states'
 * (lower, mid, upper: n_times x n) and the observables' (obs_lower, obs_mid, obs_upper:
 * n_times x n_o), as the two calls above give them; lower or obs_lower NULL skips that band (not
 * both; mids may be NULL).  *n_used as for the states' band (the observables' when skipped). */
NDE_API nde_status nde_result_forecast_band(const nde_result *r, const nde_start *start,
                                            size_t n_times, const double *times,
                                            const nde_solver_opts *solver, double level,
                                            double *lower, double *mid, double *upper,
                                            double *obs_lower, double *obs_mid,
                                            double *obs_upper, int *n_used, nde_error *err);

#ifdef __cplusplus
}
#endif
#endif
