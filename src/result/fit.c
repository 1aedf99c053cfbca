/* The fit driver: a model and data become a result.  Binds the model to the data (a problem),
 * runs the schedule (nde/train.h) from the model's initialisation or a checkpoint, writes the
 * result at resume points and at the end, and keeps the best-scored iterate.  Every outcome
 * (done, interrupted, diverged, failed) is a result; only errors are statuses. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sundials/sundials_config.h>

#include "internal.h"
#include "train/internal.h"

typedef struct driver {
  nde_result *r;
  nde_problem *p;
  nde_train *train;
  const nde_result_fit_opts *o;
  double t_start, t_ckpt;
  long n_written;
  nde_status write_st;
  nde_error write_err;
  long test_abort_after, test_abort_during;
  int rank; /* MPI rank: only rank 0 writes the result file */
} driver;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

uint64_t nde__data_hash(const nde_data *d) {
  uint64_t h = 1469598103934665603ull;
#define MIX(ptr, len)                                              \
  do {                                                             \
    const unsigned char *b_ = (const unsigned char *)(ptr);        \
    for (size_t i_ = 0; i_ < (len); i_++) {                        \
      h ^= b_[i_];                                                 \
      h *= 1099511628211ull;                                       \
    }                                                              \
  } while (0)
  const size_t n = nde_data_n_state(d);
  for (size_t j = 0; j < n; j++) {
    const char *s = nde_data_state_name(d, j);
    MIX(s, strlen(s) + 1);
  }
  for (size_t k = 0; k < nde_data_n_traj(d); k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    MIX(tr->name, strlen(tr->name) + 1);
    MIX(&tr->n, sizeof tr->n);
    MIX(tr->t, tr->n * sizeof *tr->t);
    /* NaN payloads may differ between writers: hash missing values as one pattern. */
    for (size_t q = 0; q < tr->n * n; q++) {
      const double v = isnan(tr->y[q]) ? NAN : tr->y[q];
      MIX(&v, sizeof v);
    }
    /* What drives it: inputs and constants; and the known noise the loss weighs by. */
    for (size_t i = 0; i < tr->n_inputs; i++) MIX(tr->input_names[i], strlen(tr->input_names[i]) + 1);
    if (tr->n_inputs) {
      MIX(&tr->n_u, sizeof tr->n_u);
      MIX(tr->u_t, tr->n_u * sizeof *tr->u_t);
      MIX(tr->u, tr->n_u * tr->n_inputs * sizeof *tr->u);
    }
    for (size_t i = 0; i < tr->n_consts; i++) {
      MIX(tr->const_names[i], strlen(tr->const_names[i]) + 1);
      MIX(&tr->consts[i], sizeof *tr->consts);
    }
    if (tr->sigma)
      for (size_t j = 0; j < n; j++) {
        const double v = isnan(tr->sigma[j]) ? NAN : tr->sigma[j];
        MIX(&v, sizeof v);
      }
  }
#undef MIX
  return h;
}

/* The versions and places a result records. */
static nde_status provenance(nde_result *r, const nde_model *m, const nde_data *d,
                             const nde_result_fit_opts *o, const nde_problem *p) {
  char buf[64];
  nde_status st = NDE_OK;
  time_t now_t = time(NULL);
  struct tm tmv;
  if (gmtime_r(&now_t, &tmv)) strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
  else snprintf(buf, sizeof buf, "unknown");
  if (!st) st = nde__result_set_prov(r, "created", buf);
  if (!st) st = nde__result_set_prov(r, "command_line", o->command_line ? o->command_line : "");
  if (!st) st = nde__result_set_prov(r, "model_file", nde_model_filename(m));
  if (!st)
    st = nde__result_set_prov(r, "data_file", o->data_label ? o->data_label
                                                            : (nde_data_file(d) ? nde_data_file(d)
                                                                                : ""));
  if (!st) st = nde__result_set_prov(r, "nde_version", nde_version());
  if (!st) st = nde__result_set_prov(r, "sundials_version", SUNDIALS_VERSION);
  if (!st) st = nde__result_set_prov(r, "hdf5_version", nde_data_hdf5_version());
  if (!st) st = nde__result_set_prov(r, "blas", nde_nn_blas_config());
  snprintf(buf, sizeof buf, "%d", nde_nn_blas_threads());
  if (!st) st = nde__result_set_prov(r, "blas_threads", buf);
  /* Threads and MPI ranks (they do not change the result: docs/scaling.md). */
  int threads, ranks, rank;
  nde__problem_parallel(p, &threads, &ranks, &rank);
  snprintf(buf, sizeof buf, "%d", threads);
  if (!st) st = nde__result_set_prov(r, "threads", buf);
  snprintf(buf, sizeof buf, "%d", ranks);
  if (!st) st = nde__result_set_prov(r, "mpi_ranks", buf);
  return st;
}

/* The series of the data, with the problem's initial states (fitted ones replace them later). */
static nde_status copy_series(nde_result *r, const nde_data *d, const nde_problem *p) {
  const int n = nde_model_state_dim(r->model);
  r->n_series = (int)nde_data_n_traj(d);
  r->series = calloc((size_t)r->n_series, sizeof *r->series);
  if (!r->series) return NDE_ERR_NOMEM;
  for (int k = 0; k < r->n_series; k++) {
    const nde_traj *tr = nde_data_traj(d, (size_t)k);
    nde__rseries *s = &r->series[k];
    size_t len = strlen(tr->name) + 1;
    s->name = malloc(len);
    s->t = nde__dalloc(tr->n);
    s->u0 = nde__dalloc((size_t)n);
    if (!s->name || !s->t || !s->u0) return NDE_ERR_NOMEM;
    memcpy(s->name, tr->name, len);
    memcpy(s->t, tr->t, tr->n * sizeof *s->t);
    memcpy(s->u0, nde_problem_u0(p, k), (size_t)n * sizeof *s->u0);
    s->n_obs = tr->n;
    /* The inputs and constants that drove it (the problem checked that they exist). */
    const int ndc = nde_model_n_data_consts(r->model);
    double cs[64], *c = ndc <= 64 ? cs : nde__dalloc((size_t)ndc);
    nde_input_series inp;
    nde_status st = c ? nde__traj_binding(r->model, d, tr, &inp, c, NULL) : NDE_ERR_NOMEM;
    if (st == NDE_OK)
      st = nde__rseries_set_binding(s, nde_model_n_inputs(r->model), ndc, &inp, c);
    if (c != cs) free(c);
    if (st != NDE_OK) return st;
  }
  return NDE_OK;
}

/* The first option that changes the path and differs from the checkpoint's, as a sentence;
 * NULL when they agree. */
static const char *resume_mismatch(const nde_result_fit_opts *a, const nde_result_fit_opts *b,
                                   char *buf, size_t len) {
/* Numbers in their shortest round-trip form: 1e-06, not 9.9999999999999995e-07. */
#define DIFF_NUM(field, what)                                                                \
  if (a->field != b->field) {                                                               \
    char nb[NDE_NUM_MAX], na[NDE_NUM_MAX];                                                  \
    snprintf(buf, len, "%s is %s in the checkpoint, %s now", what,                          \
             nde_num_str((double)b->field, nb), nde_num_str((double)a->field, na));         \
    return buf;                                                                             \
  }
/* A yes/no setting, said in words ("mean" and "sum", "off" and "on"). */
#define DIFF_FLAG(field, what, no, yes)                                                          \
  if ((a->field != 0) != (b->field != 0)) {                                                   \
    snprintf(buf, len, "%s is %s in the checkpoint, %s now", what, b->field ? yes : no,        \
             a->field ? yes : no);                                                            \
    return buf;                                                                               \
  }
#define DIFF_STR(field, what)                                                                  \
  if (strcmp(a->field ? a->field : "", b->field ? b->field : "")) {                            \
    snprintf(buf, len, "%s is '%s' in the checkpoint, '%s' now", what, b->field ? b->field : "", \
             a->field ? a->field : "");                                                        \
    return buf;                                                                               \
  }
  DIFF_STR(solver.method, "the solver")
  DIFF_NUM(solver.dt, "the step size (dt)")
  DIFF_NUM(solver.steps_per_interval, "the number of steps per interval")
  DIFF_NUM(solver.max_steps, "the step budget")
  DIFF_NUM(solver.rtol, "rtol")
  DIFF_NUM(solver.atol, "atol")
  DIFF_NUM(solver.h0, "h0")
  DIFF_STR(grad.method, "the gradient method")
  DIFF_FLAG(objective.loss_sum, "the loss reduction", "mean", "sum")
  DIFF_FLAG(objective.scale_by_std, "the state scaling", "none", "std")
  DIFF_FLAG(objective.log_space, "the log-space loss", "off", "on")
  DIFF_FLAG(objective.learn_u0, "learning the initial states", "off", "on")
  DIFF_NUM(objective.shoot_interval, "the shooting interval")
  DIFF_NUM(objective.shoot_weight, "the shooting weight")
  DIFF_NUM(objective.batch_series, "the series per minibatch")
  DIFF_NUM(objective.batch_time, "the minibatch window")
  DIFF_NUM(objective.batch_windows, "the windows per series")
  DIFF_NUM(objective.scale_states, "the scaling of learned states")
  DIFF_NUM(objective.batch_rows, "the largest batch (batch_rows)")
  DIFF_FLAG(objective.autonomous, "the segments of a series as one batch (--batch-segments)",
            "off", "on")
  DIFF_STR(schedule, "the schedule")
  DIFF_NUM(lr, "the learning rate")
  DIFF_NUM(seed, "the seed")
  DIFF_NUM(max_failures, "the failure limit")
  DIFF_NUM(checkpoint_every, "the resume-point interval")
  DIFF_FLAG(keep_last, "keep-last", "off", "on")
  DIFF_NUM(patience, "the patience")
  DIFF_NUM(phase_patience, "the phase patience")
  DIFF_NUM(phase_tol, "the phase tolerance")
  DIFF_NUM(validate_tail, "the validation tail")
  DIFF_NUM(validate_series, "the validation series")
  DIFF_NUM(objective.l2, "the l2 weight")
  DIFF_NUM(objective.l1, "the l1 weight")
#undef DIFF_NUM
#undef DIFF_FLAG
#undef DIFF_STR
  return NULL;
}

/* Copy the train's state into the result: the last iterate, the kept one, histories and the
 * resumable state.  With snapshot_state 0 the resumable state is left as it was (a stop inside
 * an L-BFGS chunk resumes from the previous resume point). */
static nde_status update_result(driver *D, int snapshot_state) {
  nde_result *r = D->r;
  nde_train *t = D->train;
  nde_fit *fit = nde_problem_objective(D->p);
  const size_t nt = r->n_theta, nx = nde_fit_n_x(fit, 1);
  const double *x = nde_train_x(t), *xb;
  double best_score;
  long best_iter;
  nde_train_best(t, &xb, &best_score, &best_iter);
  const int use_best = xb && !r->settings.keep_last;
  const double *xk = use_best ? xb : x;
  memcpy(r->theta_last, x, nt * sizeof *x);
  memcpy(r->theta, xk, nt * sizeof *x);
  if (r->settings.objective.learn_u0)
    for (int k = 0; k < r->n_series; k++) nde_fit_u0(fit, xk, k, r->series[k].u0);
  if (!r->x) {
    r->x = nde__dalloc(nx);
    if (!r->x) return NDE_ERR_NOMEM;
    r->nx = nx;
  }
  memcpy(r->x, x, nx * sizeof *x);
  r->kept.is_best = use_best;
  r->kept.iteration = use_best ? best_iter : (long)nde_train_history(t, NULL);
  r->kept.score = use_best ? best_score : NAN;
  const double *h;
  const size_t nh = nde_train_history(t, &h);
  double *hc = realloc(r->hist, (nh ? nh : 1) * sizeof *hc);
  if (!hc) return NDE_ERR_NOMEM;
  r->hist = hc;
  if (nh) memcpy(r->hist, h, nh * sizeof *h);
  r->n_hist = nh;
  const double *sc;
  const long *si;
  const size_t ns = nde_train_scores(t, &sc, &si);
  double *scc = realloc(r->scores, (ns ? ns : 1) * sizeof *scc);
  if (!scc) return NDE_ERR_NOMEM;
  r->scores = scc;
  long *sic = realloc(r->score_iter, (ns ? ns : 1) * sizeof *sic);
  if (!sic) return NDE_ERR_NOMEM;
  r->score_iter = sic;
  if (ns) {
    memcpy(r->scores, sc, ns * sizeof *sc);
    memcpy(r->score_iter, si, ns * sizeof *si);
  }
  r->n_scores = ns;
  const long *pe;
  r->n_phases = nde_train_phase_ends(t, &pe);
  if (r->n_phases > 0) memcpy(r->phase_end, pe, (size_t)r->n_phases * sizeof *pe);
  r->seconds = now() - D->t_start;
  if (snapshot_state) {
    const size_t len = nde_train_state_size(t);
    double *s = realloc(r->train_state, (len ? len : 1) * sizeof *s);
    if (!s) return NDE_ERR_NOMEM;
    r->train_state = s;
    r->train_len = len;
    nde_train_get_state(t, r->train_state, r->train_words);
  }
  return NDE_OK;
}

static int on_checkpoint(void *ctx, nde_train *t) {
  driver *D = ctx;
  (void)t;
  if (update_result(D, 1) != NDE_OK) {
    D->write_st = nde__fail(&D->write_err, NDE_ERR_NOMEM, "out of memory (checkpoint)");
    return 1;
  }
  if (!D->o->checkpoint_path || D->rank != 0) return 0;
  /* Every resume point is valid; writing (with fsync) is rate-limited in time. */
  const double tn = now();
  if (tn - D->t_ckpt < D->o->checkpoint_seconds) return 0;
  D->t_ckpt = tn;
  D->n_written++;
  D->r->status = NDE_FIT_RUNNING;
  const int abort_now = D->test_abort_during > 0 && D->n_written == D->test_abort_during;
  D->write_st = nde__result_save_ex(D->r, D->o->checkpoint_path, abort_now, &D->write_err);
  if (D->write_st != NDE_OK) return 1;
  if (D->test_abort_after > 0 && D->n_written == D->test_abort_after) _exit(137);
  return 0;
}

/* The outcome as a sentence, with what to try. */
static nde_status outcome_message(driver *D, nde_train_reason why) {
  nde_result *r = D->r;
  const nde_train *t = D->train;
  nde_str s = NDE_STR_INIT;
  char stop[800];
  const nde_solve_stats *ls = nde_train_last_stop(t);
  if (ls->reason != NDE_REASON_NONE && nde_train_last_stop_backward(t)) {
    char m[500];
    snprintf(stop, sizeof stop, "the backward (adjoint) solve stopped (%s)%s",
             nde_stop_message(r->settings.solver.method, ls, m, sizeof m),
             r->settings.grad.method && !strcmp(r->settings.grad.method, "backsolve")
                 ? "; " NDE__BACKSOLVE_HINT
                 : "");
  } else if (ls->reason != NDE_REASON_NONE)
    nde_stop_message(r->settings.solver.method, ls, stop, sizeof stop);
  else
    snprintf(stop, sizeof stop, "the loss or its gradient is not finite");
  switch (why) {
    case NDE_TRAIN_DONE:
      nde_str_adds(&s, "every phase ran to its end");
      break;
    case NDE_TRAIN_STOPPED:
      nde_str_addf(&s, "interrupted after %zu iterations", nde_train_history(t, NULL));
      break;
    case NDE_TRAIN_EARLY_STOP:
      nde_str_addf(&s, "stopped early after %zu iterations: the score did not improve for %d "
                       "scoring points",
                   nde_train_history(t, NULL), r->settings.patience);
      break;
    case NDE_TRAIN_DIVERGED:
      nde_str_addf(&s, "training diverged: %d rejected steps in a row (the last: %s); try a "
                       "smaller learning rate, or more multiple shooting",
                   r->settings.max_failures + 1, stop);
      break;
    case NDE_TRAIN_FAILED:
      nde_str_addf(&s, "cannot evaluate the objective at %s: %s",
                   nde_train_history(t, NULL) ? "the accepted parameters" : "the start", stop);
      break;
  }
  char *m = nde_str_take(&s);
  if (!m) return NDE_ERR_NOMEM;
  nde_status st = nde__result_set_message(r, m);
  free(m);
  return st;
}

/* Above this loss / noise ratio a fit that starts from the data's first rows is told that
 * learning the initial states may close the gap (at the noise level the ratio is about 1; the
 * shipped fits give 0.97 and 1.11). */
#define NDE__NOISY_START_RATIO 1.25

/* The losses of the kept and of the last iterate for the summary: the training data's trajectory
 * loss (without regularisation), the validation loss, and how the loss compares with the noise. */
static nde_status kept_losses(driver *D) {
  nde_result *r = D->r;
  nde_fit *fit = nde_problem_objective(D->p), *vfit = nde_problem_validation(D->p);
  const double *xb, *x = nde_train_x(D->train);
  nde_train_best(D->train, &xb, NULL, NULL);
  const double *xk = xb && !r->settings.keep_last ? xb : x;
  nde_fit_info info;
  double L;
  if (nde_fit_eval(fit, xk, 0, NULL, &L, NULL, &info) == NDE_OK)
    r->kept.loss = isfinite(L) ? info.data_loss : NAN;
  if (nde_fit_eval(fit, x, 0, NULL, &L, NULL, &info) == NDE_OK)
    r->kept.last_loss = isfinite(L) ? info.data_loss : NAN;
  if (vfit && nde_fit_eval(vfit, xk, 0, NULL, &L, NULL, &info) == NDE_OK) r->kept.validation = L;
  r->kept.noise_loss = nde_problem_noise_loss(D->p);
  r->kept.noise_ratio = r->kept.loss / r->kept.noise_loss;
  const double q = r->kept.noise_ratio;
  if (!isfinite(q)) return NDE_OK;
  nde_str w = NDE_STR_INIT;
  if (q < 0.25)
    nde_str_addf(&w, "the loss is %.3g times the noise level: the model interpolates the noise "
                     "(%zu learnable values); expect poor forecasts and discovery, and use more "
                     "data, validation (--validate), regularisation (--l2) or a smaller network",
                 q, nde_fit_n_x(fit, 0));
  else if (q > 4)
    nde_str_addf(&w, "the loss is %.3g times the noise level: the model does not describe the "
                     "data, or the fit stopped early; check the model, the schedule and the "
                     "starting values",
                 q);
  else if (q > NDE__NOISY_START_RATIO && !r->settings.objective.learn_u0)
    /* Even the true model, started from a noisy first row, carries that row's error along the
     * whole series (a damped pendulum with the truth's own law: 1.64 times). */
    nde_str_addf(&w, "the loss is %.3g times the noise level, and the initial states are not "
                     "fitted: each series starts from its first observed row, whose noise the "
                     "whole trajectory carries (states not observed there start from the model's "
                     "values), which may be part of the gap; --learn-u0 fits them",
                 q);
  else
    return NDE_OK;
  char *m = nde_str_take(&w);
  if (!m) return NDE_ERR_NOMEM;
  free(r->warning);
  r->warning = m;
  return NDE_OK;
}

static nde_fit_status status_of(nde_train_reason why) {
  switch (why) {
    case NDE_TRAIN_DONE: return NDE_FIT_DONE;
    case NDE_TRAIN_STOPPED: return NDE_FIT_STOPPED;
    case NDE_TRAIN_EARLY_STOP: return NDE_FIT_EARLY_STOP;
    case NDE_TRAIN_DIVERGED: return NDE_FIT_DIVERGED;
    case NDE_TRAIN_FAILED: return NDE_FIT_FAILED;
  }
  return NDE_FIT_FAILED;
}

#ifdef NDE_TEST_HOOKS
static long env_long(const char *name) {
  const char *v = getenv(name);
  return v ? strtol(v, NULL, 10) : 0;
}
#endif

nde_status nde_result_fit(nde_model *model, const nde_data *data, const nde_result_fit_opts *opts,
                          nde_result **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_result_fit: no output pointer");
  *out = NULL;
  if (!model || !data) return nde__fail(err, NDE_ERR_ARG, "a fit needs a model and data");
  nde_status st_m = nde__check_model_loaded(model, "a fit", err);
  if (st_m != NDE_OK) return st_m;
  nde_result_fit_opts o = opts ? *opts : nde_result_fit_opts_default();
  if (!o.schedule || !*o.schedule) o.schedule = nde_default_schedule(model, data);
  nde_fit_phase phases[NDE_MAX_PHASES];
  int n_phases;
  nde_status st = nde_fit_schedule_parse(o.schedule, o.lr, phases, &n_phases, err);
  if (st != NDE_OK) return st;
  int any_shoot = 0;
  for (int k = 0; k < n_phases; k++) any_shoot |= phases[k].shooting;
  if (o.objective.shoot_interval < 0)
    return nde__fail(err, NDE_ERR_ARG, "the shooting interval is %d (expected >= 1, or 0 without "
                     "shooting)", o.objective.shoot_interval);
  if (any_shoot && o.objective.shoot_interval <= 0)
    return nde__fail(err, NDE_ERR_ARG,
                     "the schedule has multiple-shooting phases but the shooting interval is %d "
                     "(expected >= 1)",
                     o.objective.shoot_interval);
  if (!any_shoot) o.objective.shoot_interval = 0;
  if (!(o.checkpoint_seconds >= 0))
    return nde__fail(err, NDE_ERR_ARG, "checkpoint_seconds must be >= 0 (got %g)",
                     o.checkpoint_seconds);
  /* A resumed fit continues from the checkpoint's own state, where a start θ would be ignored
   * without a word. */
  if (o.resume && o.theta0)
    return nde__fail(err, NDE_ERR_ARG, "theta0 and resume cannot be combined (a resumed fit "
                     "continues from the checkpoint's state: start a new fit from theta0)");

  driver D;
  memset(&D, 0, sizeof D);
  D.o = &o;
  D.t_start = now();
  D.t_ckpt = D.t_start;
#ifdef NDE_TEST_HOOKS
  D.test_abort_after = env_long("NDE_TEST_ABORT_AFTER_CHECKPOINT");
  D.test_abort_during = env_long("NDE_TEST_ABORT_DURING_CHECKPOINT");
#endif
  double *theta = NULL, *x0 = NULL;
  st = nde_problem_create(model, data, &o, &D.p, err);
  if (st != NDE_OK) goto done;
  nde_fit *fit = nde_problem_objective(D.p);
  {
    int threads, ranks;
    nde__problem_parallel(D.p, &threads, &ranks, &D.rank);
  }
  D.r = nde__result_new(model, (int)nde_data_n_traj(data), err);
  if (!D.r) {
    st = err ? err->status : NDE_ERR_NOMEM;
    goto done;
  }
  st = nde__result_set_settings(D.r, &o, err);
  if (st != NDE_OK) goto done;
  /* The canonical settings from here on (registry names). */
  o.solver = D.r->settings.solver;
  o.grad = D.r->settings.grad;
  if ((st = copy_series(D.r, data, D.p)) != NDE_OK ||
      (st = provenance(D.r, model, data, &o, D.p)) != NDE_OK) {
    nde__fail(err, st, "out of memory");
    goto done;
  }
  D.r->data_hash = nde__data_hash(data);
  /* The noise level per column: given, or recorded in the data (the first series that records
   * it; the data's columns are a prefix of the model's, nde_problem_create checked). */
  {
    const int nc = nde__n_columns(model);
    const double *sd = o.noise_std;
    int have = nc;
    for (size_t k = 0; !sd && k < nde_data_n_traj(data); k++) {
      sd = nde_data_traj(data, k)->noise_std;
      have = (int)nde_data_n_state(data);
    }
    if (sd) {
      D.r->noise_std = nde__dalloc((size_t)nc);
      if (!D.r->noise_std) {
        st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
      for (int j = 0; j < nc; j++) D.r->noise_std[j] = j < have ? sd[j] : NAN;
      D.r->settings.noise_std = D.r->noise_std;
    }
  }

  const size_t nt = nde_problem_n_theta(D.p);
  theta = nde__dalloc(nt);
  x0 = nde__dalloc(nde_fit_n_x(fit, 1));
  if (!theta || !x0) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if (o.theta0) {
    if ((st = nde__check_theta(model, (int)nde_data_n_traj(data), o.theta0, err)) != NDE_OK)
      goto done;
    memcpy(theta, o.theta0, nt * sizeof *theta);
  } else if ((st = nde_model_init_theta_full(model, o.seed, (int)nde_data_n_traj(data), theta)) !=
             NDE_OK) {
    nde__fail(err, st, "%s: cannot initialise the parameters", nde_model_filename(model));
    goto done;
  }
  if ((st = nde_fit_init_x(fit, theta, x0)) != NDE_OK) {
    nde__fail(err, st, "cannot set up the start point: %s", nde_fit_errmsg(fit));
    goto done;
  }

  nde_train_opts to = nde_train_opts_default();
  to.phases = phases;
  to.n_phases = n_phases;
  to.seed = o.seed;
  to.max_failures = o.max_failures;
  to.checkpoint_every = o.checkpoint_every;
  to.progress = o.progress;
  to.progress_ctx = o.progress_ctx;
  to.progress_every = o.progress_every > 0 ? o.progress_every : 100; /* <= 0: the default */
  to.patience = o.patience;
  to.score_fit = nde_problem_validation(D.p);
  to.phase_patience = o.phase_patience;
  to.phase_tol = o.phase_tol;
  to.checkpoint = on_checkpoint;
  to.checkpoint_ctx = &D;
  if ((st = nde_train_create(fit, &to, x0, &D.train, err)) != NDE_OK) goto done;
#ifdef NDE_TEST_HOOKS
  nde__train_set_test_nan_eval(D.train, env_long("NDE_TEST_NAN_EVAL"));
#endif

  if (o.resume) {
    const nde_result *c = o.resume;
    const char *where = nde_result_provenance(c, "data_file");
    char why[400];
    if (strcmp(nde_model_source(c->model), nde_model_source(model)) != 0) {
      st = nde__fail(err, NDE_ERR_DATA,
                     "the checkpoint was made with a different model (expected the text of %s)",
                     nde_model_filename(model));
      goto done;
    }
    if (c->data_hash != D.r->data_hash) {
      st = nde__fail(err, NDE_ERR_DATA,
                     "the checkpoint was made with different data (%s; expected the same series, "
                     "times and values)",
                     where ? where : "unknown file");
      goto done;
    }
    if (resume_mismatch(&D.r->settings, &c->settings, why, sizeof why)) {
      st = nde__fail(err, NDE_ERR_DATA,
                     "the checkpoint does not match the options: %s (resume with the options of "
                     "the interrupted fit, or start a new fit)",
                     why);
      goto done;
    }
    if (!c->train_state) {
      st = nde__fail(err, NDE_ERR_DATA, "the checkpoint holds no training state to resume");
      goto done;
    }
    if (nde_train_set_state(D.train, c->train_state, c->train_len, c->train_words) != NDE_OK) {
      st = nde__fail(err, NDE_ERR_DATA, "%s", nde_train_errmsg(D.train));
      goto done;
    }
    /* The provenance of the fit that was started, not of this call. */
    for (int i = 0; i < c->n_prov && st == NDE_OK; i++)
      st = nde__result_set_prov(D.r, c->prov[i].key, c->prov[i].value);
    if (st != NDE_OK) {
      nde__fail(err, st, "out of memory");
      goto done;
    }
    D.t_start -= c->seconds;
    if (c->status != NDE_FIT_RUNNING && c->status != NDE_FIT_STOPPED) {
      /* Nothing left to do: the checkpoint's content, unchanged, and nothing written. */
      if ((st = update_result(&D, 1)) != NDE_OK) {
        nde__fail(err, st, "out of memory");
        goto done;
      }
      D.r->status = c->status;
      D.r->kept = c->kept;
      D.r->seconds = c->seconds;
      char msg[400];
      snprintf(msg, sizeof msg, "nothing left to do: the fit is %s (%s)",
               nde_fit_status_str(c->status), nde_result_message(c));
      st = nde__result_set_message(D.r, msg);
      if (st != NDE_OK) nde__fail(err, st, "out of memory");
      goto done;
    }
  }

  nde_train_reason why = NDE_TRAIN_DONE;
  st = nde_train_run(D.train, &why);
  if (st != NDE_OK) {
    if (D.write_st != NDE_OK) {
      st = D.write_st;
      if (err) *err = D.write_err;
    } else {
      nde__fail(err, st, "%s", nde_train_errmsg(D.train));
    }
    goto done;
  }
  /* A stop inside an L-BFGS chunk keeps the state of the previous resume point. */
  const int exact = nde_train_at_resume_point(D.train) || why != NDE_TRAIN_STOPPED;
  if ((st = update_result(&D, exact)) != NDE_OK) {
    nde__fail(err, st, "out of memory");
    goto done;
  }
  D.r->status = status_of(why);
  if ((st = kept_losses(&D)) != NDE_OK || (st = outcome_message(&D, why)) != NDE_OK) {
    nde__fail(err, st, "out of memory");
    goto done;
  }
  if (o.checkpoint_path && D.rank == 0) {
    st = nde__result_save_ex(D.r, o.checkpoint_path, 0, err);
    if (st != NDE_OK) goto done;
  }
done:
  if (st == NDE_OK || (st == NDE_ERR_IO && D.r && D.train)) {
    *out = D.r;
    D.r = NULL;
  }
  nde_result_destroy(&D.r);
  nde_train_destroy(&D.train);
  nde_problem_destroy(&D.p);
  free(theta);
  free(x0);
  return st;
}
