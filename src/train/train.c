/* The training loop: a schedule of optimiser phases (Adam, then L-BFGS from liblbfgs, with or
 * without multiple shooting) over the fit objective, with a divergence guard, scoring of the
 * accepted iterates, and checkpoints.
 *
 * Guard: a step whose next evaluation is non-finite (loss, gradient, or a solve that stopped,
 * forward or backward) is rejected: x and the optimiser state go back to their values before the
 * step, bit for bit, the learning rate is multiplied by lr_backoff, and after max_failures
 * rejections in a row the run stops as diverged.  When the accepted point itself cannot be
 * evaluated there is no step to undo: the run fails at once (the model, the data or the solver is
 * at fault, not the learning rate).
 * Scoring: at every resume point and at the end of every phase the accepted point is scored on
 * the whole data (the trajectory loss, or a validation objective); the best-scored point is kept,
 * and an optional patience stops the run early.
 * L-BFGS runs in chunks of checkpoint_every iterations, each restarted from the current x, so a
 * run resumed from a checkpoint takes exactly the same path as one that never stopped; a chunk
 * whose line search fails after making progress is restarted the same way. */
#include <lbfgs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct nde_train {
  nde_fit *fit;
  nde_train_opts o;
  nde_fit_phase phases[NDE_MAX_PHASES];
  nde__err err;
  size_t nx;        /* length of x with shooting states */
  double *x;        /* the current point */
  double *x_good;   /* the last accepted point */
  double *x_best;   /* the best-scored accepted point */
  double *g;
  double *adam_good;
  nde_adam *adam;   /* the optimiser of the current Adam phase */
  size_t adam_n;
  int phase;
  long iter;        /* iterations done in this phase */
  double lr;
  int fails;
  int at_good;      /* x equals x_good: the next evaluation is of the accepted point itself */
  long evals;
  nde_rng rng;
  double *hist;
  size_t n_hist, cap_hist;
  long phase_end[NDE_MAX_PHASES]; /* history length at the end of each phase, -1 before */
  double *scores;
  long *score_iter;
  size_t n_scores, cap_scores;
  int have_best;
  double best_score;
  long best_iter;
  int since_best;   /* scoring points since the best one */
  double phase_best; /* the lowest loss of this phase at its previous resume points */
  double phase_l0;  /* the phase's first loss (NaN before) */
  size_t chunk_start; /* history length at the previous resume point */
  int stall;        /* resume points in a row without relative progress phase_tol */
  nde_solve_stats stop;
  int stop_backward; /* stop is of a backward (adjoint) solve */
  int stop_requested;
  int in_chunk;     /* inside an L-BFGS chunk: not a resume point */
  long test_nan_eval;
  long test_scale_from, test_scale_count; /* iterates whose loss is multiplied (tests) */
  double test_scale;
  char event[320];
};

nde_train_opts nde_train_opts_default(void) {
  nde_train_opts o;
  memset(&o, 0, sizeof o);
  o.max_failures = 8;
  o.lr_backoff = 0.5;
  o.checkpoint_every = 200;
  o.progress_every = 100;
  o.phase_tol = 1e-6;
  o.phase_patience = 2;
  return o;
}

const char *nde_train_reason_str(nde_train_reason r) {
  switch (r) {
    case NDE_TRAIN_DONE: return "every phase ran to its end";
    case NDE_TRAIN_STOPPED: return "stopped on request";
    case NDE_TRAIN_DIVERGED: return "diverged: too many rejected steps in a row";
    case NDE_TRAIN_FAILED: return "the objective cannot be evaluated at the accepted parameters";
    case NDE_TRAIN_EARLY_STOP: return "stopped early: the score stopped improving";
  }
  return "unknown reason";
}

void nde_train_destroy(nde_train **tp) {
  if (!tp || !*tp) return;
  nde_train *t = *tp;
  free(t->x);
  free(t->x_good);
  free(t->x_best);
  free(t->g);
  free(t->adam_good);
  free(t->hist);
  free(t->scores);
  free(t->score_iter);
  nde_adam_destroy(&t->adam);
  free(t);
  *tp = NULL;
}

const char *nde_train_errmsg(const nde_train *t) { return nde__err_msg(t ? &t->err : NULL); }
const double *nde_train_x(const nde_train *t) { return t->x_good; }
long nde_train_n_evals(const nde_train *t) { return t->evals; }
const nde_solve_stats *nde_train_last_stop(const nde_train *t) { return &t->stop; }
int nde_train_last_stop_backward(const nde_train *t) { return t->stop_backward; }
int nde_train_finished(const nde_train *t) { return t->phase >= t->o.n_phases; }
int nde_train_at_resume_point(const nde_train *t) { return !t->in_chunk; }

void nde_train_best(const nde_train *t, const double **x, double *score, long *iter) {
  if (x) *x = t->have_best ? t->x_best : NULL;
  if (score) *score = t->have_best ? t->best_score : NAN;
  if (iter) *iter = t->have_best ? t->best_iter : -1;
}

size_t nde_train_history(const nde_train *t, const double **loss) {
  if (loss) *loss = t->hist;
  return t->n_hist;
}

int nde_train_phase_ends(const nde_train *t, const long **ends) {
  if (ends) *ends = t->phase_end;
  return t->o.n_phases;
}

size_t nde_train_scores(const nde_train *t, const double **score, const long **iter) {
  if (score) *score = t->scores;
  if (iter) *iter = t->score_iter;
  return t->n_scores;
}

void nde__train_set_test_nan_eval(nde_train *t, long n) {
  if (t) t->test_nan_eval = n;
}

void nde__train_set_test_scale_eval(nde_train *t, long from, long count, double factor) {
  if (!t) return;
  t->test_scale_from = from;
  t->test_scale_count = count;
  t->test_scale = factor;
}

nde_status nde_train_create(nde_fit *fit, const nde_train_opts *opts, const double *x0,
                            nde_train **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_train_create: no output pointer");
  *out = NULL;
  if (!fit || !x0 || !opts)
    return nde__fail(err, NDE_ERR_ARG, "training needs an objective, a start point and options");
  if (opts->n_phases < 1 || opts->n_phases > NDE_MAX_PHASES || !opts->phases)
    return nde__fail(err, NDE_ERR_ARG, "a schedule needs 1 to %d phases (got %d)", NDE_MAX_PHASES,
                     opts->n_phases);
  /* Each bad option named with its value. */
  if (opts->max_failures < 0)
    return nde__fail(err, NDE_ERR_ARG, "max_failures is %d (expected >= 0)", opts->max_failures);
  if (!(opts->lr_backoff > 0 && opts->lr_backoff < 1))
    return nde__fail(err, NDE_ERR_ARG, "lr_backoff is %g (expected a value in (0, 1))",
                     opts->lr_backoff);
  if (opts->checkpoint_every < 1)
    return nde__fail(err, NDE_ERR_ARG, "checkpoint_every is %ld (expected >= 1)",
                     opts->checkpoint_every);
  if (opts->progress_every < 1)
    return nde__fail(err, NDE_ERR_ARG, "progress_every is %ld (expected >= 1)",
                     opts->progress_every);
  if (opts->patience < 0)
    return nde__fail(err, NDE_ERR_ARG, "patience is %d (expected >= 0)", opts->patience);
  if (opts->phase_patience < 0)
    return nde__fail(err, NDE_ERR_ARG, "phase_patience is %d (expected >= 0)",
                     opts->phase_patience);
  if (!(opts->phase_tol >= 0) || !isfinite(opts->phase_tol))
    return nde__fail(err, NDE_ERR_ARG, "phase_tol is %g (expected a finite value >= 0)",
                     opts->phase_tol);
  if (nde_fit_n_x(fit, 0) == 0)
    return nde__fail(err, NDE_ERR_ARG,
                     "nothing to fit: the model has no learnable values (declare a parameter "
                     "without (fixed), a net, or learn the initial states)");
  if (opts->score_fit && (nde_fit_n_x(opts->score_fit, 0) > nde_fit_n_x(fit, 0) ||
                         nde_fit_n_theta(opts->score_fit) != nde_fit_n_theta(fit)))
    return nde__fail(err, NDE_ERR_ARG,
                     "the scoring objective has %zu optimised values, the training objective %zu "
                     "(expected the same theta and at most the training's initial states)",
                     nde_fit_n_x(opts->score_fit, 0), nde_fit_n_x(fit, 0));
  for (int p = 0; p < opts->n_phases; p++)
    if (opts->phases[p].iters < 0 ||
        (opts->phases[p].opt == NDE_OPT_ADAM &&
         !(opts->phases[p].lr > 0 && isfinite(opts->phases[p].lr))))
      return nde__fail(err, NDE_ERR_ARG,
                       "schedule phase %d: expected iterations >= 0 and (Adam) a finite learning "
                       "rate > 0 (got %ld and %g)",
                       p + 1, opts->phases[p].iters, opts->phases[p].lr);
  nde_train *t = calloc(1, sizeof *t);
  if (!t) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the training run");
  t->fit = fit;
  t->o = *opts;
  memcpy(t->phases, opts->phases, (size_t)opts->n_phases * sizeof *opts->phases);
  t->o.phases = t->phases;
  t->nx = nde_fit_n_x(fit, 1);
  t->x = nde__dalloc(t->nx);
  t->x_good = nde__dalloc(t->nx);
  t->x_best = nde__dalloc(t->nx);
  t->g = nde__dalloc(t->nx);
  t->adam_good = nde__dalloc(2 * t->nx + 1);
  /* The histories exist from the start, so that a run that fails before its first iteration
   * still hands out valid (empty) arrays to whoever copies them. */
  t->cap_hist = 1024;
  t->hist = malloc(t->cap_hist * sizeof *t->hist);
  t->cap_scores = 64;
  t->scores = malloc(t->cap_scores * sizeof *t->scores);
  t->score_iter = malloc(t->cap_scores * sizeof *t->score_iter);
  if (!t->x || !t->x_good || !t->x_best || !t->g || !t->adam_good || !t->hist || !t->scores ||
      !t->score_iter) {
    nde_train_destroy(&t);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the training run");
  }
  memcpy(t->x, x0, t->nx * sizeof *t->x);
  memcpy(t->x_good, x0, t->nx * sizeof *t->x);
  t->at_good = 1;
  t->best_score = NAN;
  t->phase_best = INFINITY;
  t->phase_l0 = NAN;
  for (int p = 0; p < NDE_MAX_PHASES; p++) t->phase_end[p] = -1;
  t->stop.bad_row = t->stop.bad_state = -1;
  nde_rng_seed(&t->rng, opts->seed);
  t->lr = t->phases[0].lr;
  *out = t;
  return NDE_OK;
}

static int push_hist(nde_train *t, double L) {
  if (t->n_hist == t->cap_hist) {
    size_t nc = t->cap_hist ? 2 * t->cap_hist : 1024;
    double *h = realloc(t->hist, nc * sizeof *h);
    if (!h) return -1;
    t->hist = h;
    t->cap_hist = nc;
  }
  t->hist[t->n_hist++] = L;
  return 0;
}

static int push_score(nde_train *t, double s, long iter) {
  if (t->n_scores == t->cap_scores) {
    size_t nc = t->cap_scores ? 2 * t->cap_scores : 64;
    double *a = realloc(t->scores, nc * sizeof *a);
    if (!a) return -1;
    t->scores = a;
    long *b = realloc(t->score_iter, nc * sizeof *b);
    if (!b) return -1;
    t->score_iter = b;
    t->cap_scores = nc;
  }
  t->scores[t->n_scores] = s;
  t->score_iter[t->n_scores++] = iter;
  return 0;
}

static long planned_iters(const nde_train *t) {
  long s = 0;
  for (int p = 0; p < t->o.n_phases; p++) s += t->phases[p].iters;
  return s;
}

static int report(nde_train *t, double L, const double *g, size_t n, const char *event) {
  if (!t->o.progress) return 0;
  double gn = 0;
  for (size_t i = 0; g && i < n; i++) gn += g[i] * g[i];
  const int ph = t->phase < t->o.n_phases ? t->phase : t->o.n_phases - 1;
  nde_train_progress p = {ph,
                          t->phases[ph].shooting,
                          t->iter,
                          (long)t->n_hist,
                          planned_iters(t),
                          L,
                          sqrt(gn),
                          t->lr,
                          t->n_scores ? t->scores[t->n_scores - 1] : NAN,
                          event,
                          nde_comm_rank(nde__fit_comm(t->fit))};
  /* Every rank reports at the same points: a stop asked for on any of them (a signal reaches
   * the ranks at different iterations) stops all at this one. */
  return nde__comm_any(nde__fit_comm(t->fit), t->o.progress(t->o.progress_ctx, &p));
}

static int finite_all(size_t n, const double *v) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

/* One evaluation of the objective with the test hook applied; returns the status.  *ok tells
 * whether the loss and gradient are finite; a failed evaluation records what stopped. */
/* The factor of the test hook for history entry idx (1 outside its window). */
static double test_scale(const nde_train *t, long idx) {
  const long a = t->test_scale_from, b = a + t->test_scale_count;
  return t->test_scale_count > 0 && idx >= a && idx < b ? t->test_scale : 1.0;
}

static nde_status evaluate(nde_train *t, const double *x, int shooting, nde_rng *rng, double *L,
                           double *g, size_t n, int *ok) {
  nde_fit_info info;
  nde_status st = nde_fit_eval(t->fit, x, shooting, rng, L, g, &info);
  t->evals++;
  if (st != NDE_OK) return nde__errf(&t->err, st, "%s", nde_fit_errmsg(t->fit));
  if (t->test_nan_eval > 0 && t->evals == t->test_nan_eval) *L = NAN;
  *L *= test_scale(t, (long)t->n_hist); /* the iterate this evaluation adds to the history */
  *ok = isfinite(*L) && (!g || finite_all(n, g));
  if (!*ok) {
    t->stop = info.stop;
    t->stop_backward = info.stop.reason == NDE_REASON_NONE &&
                       info.backward_stop.reason != NDE_REASON_NONE;
    if (t->stop_backward) t->stop = info.backward_stop;
    if (t->stop.reason == NDE_REASON_NONE) t->stop.t_stop = NAN;
  }
  return NDE_OK;
}

/* The stop of a failed evaluation as a clause: "the solve stopped at t = 1.52 (the problem
 * appears to be stiff ...)" or "the loss or its gradient is not finite". */
static void describe_stop(const nde_train *t, char *buf, size_t len) {
  if (t->stop.reason != NDE_REASON_NONE)
    snprintf(buf, len, "the %s stopped at t = %.6g (%s)",
             t->stop_backward ? "backward (adjoint) solve" : "solve", t->stop.t_stop,
             nde_stop_reason_str(t->stop.reason));
  else
    snprintf(buf, len, "the loss or its gradient is not finite");
}

/* Score the accepted point; keep it when it is the best so far.  Returns the status; *stop is
 * set when the patience ran out. */
static nde_status score_point(nde_train *t, int *stop) {
  nde_fit *sf = t->o.score_fit ? t->o.score_fit : t->fit;
  double s;
  nde_fit_info info;
  nde_status st = nde_fit_eval(sf, t->x_good, 0, NULL, &s, NULL, &info);
  if (st != NDE_OK) return nde__errf(&t->err, st, "%s", nde_fit_errmsg(sf));
  s *= test_scale(t, (long)t->n_hist - 1); /* x_good is the last entry of the history */
  if (!isfinite(s)) s = INFINITY;
  if (push_score(t, s, (long)t->n_hist))
    return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (score history)");
  if (isfinite(s) && (!t->have_best || s < t->best_score)) {
    t->have_best = 1;
    t->best_score = s;
    t->best_iter = (long)t->n_hist;
    memcpy(t->x_best, t->x_good, t->nx * sizeof *t->x_best);
    t->since_best = 0;
  } else {
    t->since_best++;
  }
  *stop = t->o.patience > 0 && t->since_best >= t->o.patience;
  return NDE_OK;
}

/* Whether the phase stopped making progress: the lowest loss since the previous resume point is
 * not phase_tol times the phase's first loss below the phase's lowest before, at phase_patience
 * resume points in a row.  Measured against the first loss, so that a loss falling towards 0 on
 * exact data (every relative step still large) counts as converged.  Then the phase ends. */
static void check_stall(nde_train *t) {
  double lo = INFINITY;
  if (t->chunk_start < t->n_hist && isnan(t->phase_l0)) t->phase_l0 = t->hist[t->chunk_start];
  for (size_t i = t->chunk_start; i < t->n_hist; i++)
    if (t->hist[i] < lo) lo = t->hist[i];
  t->chunk_start = t->n_hist;
  if (!isfinite(lo)) return;
  /* An Adam phase that blew up (its loss over a whole chunk stayed NDE_TRAIN_BLOWUP times above
   * the phase's lowest at an earlier resume point, with every step finite, so the guard did not
   * see it): back to the best-scored point with a fresh optimiser and half the learning rate. */
  if (t->adam && t->have_best && isfinite(t->phase_best) && t->phase_best > 0 &&
      lo > NDE_TRAIN_BLOWUP * t->phase_best) {
    /* A fresh optimiser: zero moments and step count. */
    memset(t->adam_good, 0, nde_adam_state_size(t->adam) * sizeof *t->adam_good);
    nde_adam_set_state(t->adam, t->adam_good);
    t->lr *= t->o.lr_backoff;
    nde_adam_set_lr(t->adam, t->lr);
    memcpy(t->x, t->x_best, t->nx * sizeof *t->x);
    memcpy(t->x_good, t->x_best, t->nx * sizeof *t->x);
    t->at_good = 1;
    t->stall = 0;
    snprintf(t->event, sizeof t->event,
             "phase %d blew up (loss %.3g, %.0f times its best %.3g): back to the best point "
             "(iteration %ld), learning rate now %.3g",
             t->phase + 1, lo, lo / t->phase_best, t->phase_best, t->best_iter, t->lr);
    report(t, lo, NULL, 0, t->event);
    return;
  }
  if (isfinite(t->phase_best) && !(lo < t->phase_best - t->o.phase_tol * fabs(t->phase_l0)))
    t->stall++;
  else
    t->stall = 0;
  if (lo < t->phase_best) t->phase_best = lo;
  if (t->o.phase_patience > 0 && t->stall >= t->o.phase_patience &&
      t->phase < t->o.n_phases && t->iter < t->phases[t->phase].iters) {
    snprintf(t->event, sizeof t->event,
             "phase %d ends early: its loss improved by less than %g of its first value over %d "
             "resume points",
             t->phase + 1, t->o.phase_tol, t->o.phase_patience);
    report(t, lo, NULL, 0, t->event);
    t->iter = t->phases[t->phase].iters;
  }
}

/* A resume point: score, then let the caller write a checkpoint. */
static nde_status resume_point(nde_train *t, nde_train_reason *reason) {
  int stop = 0;
  nde_status st = score_point(t, &stop);
  if (st != NDE_OK) return st;
  if (stop) *reason = NDE_TRAIN_EARLY_STOP;
  check_stall(t);
  /* One rank writes; when it fails, every rank stops. */
  if (t->o.checkpoint &&
      nde__comm_any(nde__fit_comm(t->fit), t->o.checkpoint(t->o.checkpoint_ctx, t) != 0))
    return nde__errf(&t->err, NDE_ERR_IO, "writing the checkpoint failed");
  return NDE_OK;
}

static nde_status run_adam(nde_train *t, const nde_fit_phase *ph, nde_train_reason *reason) {
  const size_t n = nde_fit_n_x(t->fit, ph->shooting);
  if (!t->adam) {
    nde_adam_opts ao = nde_adam_opts_default();
    ao.lr = t->lr;
    nde_error sub;
    nde_status st = nde_adam_create(n, &ao, &t->adam, &sub);
    if (st != NDE_OK) return nde__errf(&t->err, st, "%s", sub.msg);
    t->adam_n = n;
    nde_adam_get_state(t->adam, t->adam_good);
  }
  nde_rng *rng = &t->rng;
  while (t->iter < ph->iters) {
    double L;
    int ok;
    nde_status st = evaluate(t, t->x, ph->shooting, rng, &L, t->g, n, &ok);
    if (st != NDE_OK) return st;
    if (!ok) {
      char why[200];
      describe_stop(t, why, sizeof why);
      if (t->at_good) {
        /* Nothing to undo: the accepted point itself fails. */
        snprintf(t->event, sizeof t->event, "cannot evaluate the objective at the %s: %s",
                 t->n_hist ? "accepted parameters" : "starting parameters", why);
        *reason = NDE_TRAIN_FAILED;
        report(t, L, NULL, 0, t->event);
        return NDE_OK;
      }
      /* Reject the last step: back to the point and optimiser state before it. */
      memcpy(t->x, t->x_good, t->nx * sizeof *t->x);
      nde_adam_set_state(t->adam, t->adam_good);
      t->at_good = 1;
      t->fails++;
      t->lr *= t->o.lr_backoff;
      nde_adam_set_lr(t->adam, t->lr);
      snprintf(t->event, sizeof t->event, "step rejected: %s; learning rate now %.3g", why, t->lr);
      if (t->fails > t->o.max_failures) {
        *reason = NDE_TRAIN_DIVERGED;
        report(t, L, NULL, 0, t->event);
        return NDE_OK;
      }
      if (report(t, L, NULL, 0, t->event)) {
        *reason = NDE_TRAIN_STOPPED;
        return NDE_OK;
      }
      continue;
    }
    /* A successful evaluation of a new step ends a run of failures; the re-evaluation of the
     * restored point after a rejection does not (else no limit would ever be reached). */
    if (!t->at_good) t->fails = 0;
    if (push_hist(t, L)) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (history)");
    memcpy(t->x_good, t->x, t->nx * sizeof *t->x);
    nde_adam_get_state(t->adam, t->adam_good);
    nde_adam_step(t->adam, t->x, t->g);
    t->at_good = 0;
    t->iter++;
    if (t->iter % t->o.progress_every == 0 || t->iter == ph->iters) {
      if (report(t, L, t->g, n, NULL)) t->stop_requested = 1;
    }
    if (t->iter % t->o.checkpoint_every == 0 || t->iter == ph->iters) {
      st = resume_point(t, reason);
      if (st != NDE_OK || *reason != NDE_TRAIN_DONE) return st;
    }
    if (t->stop_requested) {
      *reason = NDE_TRAIN_STOPPED;
      return NDE_OK;
    }
  }
  return NDE_OK;
}

typedef struct lbfgs_ctx {
  nde_train *t;
  const nde_fit_phase *ph;
  nde_status st;
  int failed_at_start; /* the first evaluation (at the accepted point) was not finite */
  int n_evals;
} lbfgs_ctx;

static lbfgsfloatval_t lb_evaluate(void *inst, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                                   const int n, const lbfgsfloatval_t step) {
  (void)step;
  lbfgs_ctx *c = inst;
  double L;
  int ok = 0;
  c->st = evaluate(c->t, x, c->ph->shooting, NULL, &L, g, (size_t)n, &ok);
  if (c->n_evals++ == 0 && (c->st != NDE_OK || !ok)) c->failed_at_start = 1;
  if (c->st != NDE_OK || !ok) {
    /* An infinite value makes the backtracking line search shorten the step. */
    for (int i = 0; i < n; i++) g[i] = 0.0;
    return INFINITY;
  }
  return L;
}

static int lb_progress(void *inst, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
                       const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
                       const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k,
                       int ls) {
  (void)xnorm, (void)gnorm, (void)step, (void)k, (void)ls;
  lbfgs_ctx *c = inst;
  nde_train *t = c->t;
  if (push_hist(t, fx)) return 1;
  memcpy(t->x_good, x, (size_t)n * sizeof *x);
  t->iter++;
  /* The end of a chunk is a resume point: a run that restarts L-BFGS here continues exactly as
   * one that did not stop. */
  t->in_chunk = !(t->iter % t->o.checkpoint_every == 0 || t->iter == c->ph->iters);
  if (t->iter % t->o.progress_every == 0 && report(t, fx, g, (size_t)n, NULL))
    t->stop_requested = 1;
  return t->stop_requested;
}

static const char *lbfgs_reason(int ret) {
  switch (ret) {
    case LBFGSERR_ROUNDING_ERROR: return "rounding errors prevent further progress";
    case LBFGSERR_MAXIMUMLINESEARCH: return "the line search found no decrease";
    case LBFGSERR_MINIMUMSTEP: return "the line search step became too small";
    case LBFGSERR_MAXIMUMSTEP: return "the line search step became too large";
    case LBFGSERR_INCREASEGRADIENT: return "the search direction is not a descent direction";
    default: return "the line search failed";
  }
}

/* |g| at the accepted point (one more evaluation, for the message only). */
static double grad_norm_at_good(nde_train *t, int shooting, size_t n) {
  double L;
  int ok;
  if (evaluate(t, t->x_good, shooting, NULL, &L, t->g, n, &ok) != NDE_OK || !ok) return NAN;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += t->g[i] * t->g[i];
  return sqrt(s);
}

static nde_status run_lbfgs(nde_train *t, const nde_fit_phase *ph, nde_train_reason *reason) {
  const int n = (int)nde_fit_n_x(t->fit, ph->shooting);
  lbfgsfloatval_t *xl = lbfgs_malloc(n);
  if (!xl) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (L-BFGS)");
  nde_status st = NDE_OK;
  while (t->iter < ph->iters) {
    lbfgs_ctx c = {t, ph, NDE_OK, 0, 0};
    lbfgs_parameter_t par;
    lbfgs_parameter_init(&par);
    long left = ph->iters - t->iter, chunk = t->o.checkpoint_every - t->iter % t->o.checkpoint_every;
    par.max_iterations = (int)(left < chunk ? left : chunk);
    par.linesearch = LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;
    par.epsilon = 1e-10;
    memcpy(xl, t->x_good, (size_t)n * sizeof *xl);
    lbfgsfloatval_t fx;
    const long before = t->iter;
    t->in_chunk = 1;
    int ret = lbfgs(n, xl, &fx, lb_evaluate, lb_progress, &c, &par);
    if (c.st != NDE_OK) {
      st = c.st;
      break;
    }
    /* x_good holds the last iterate liblbfgs accepted (it reverts failed line searches). */
    memcpy(t->x, t->x_good, t->nx * sizeof *t->x);
    t->at_good = 1;
    if (c.failed_at_start) {
      /* The start point cannot be evaluated: no convergence can be claimed there. */
      char why[200];
      describe_stop(t, why, sizeof why);
      snprintf(t->event, sizeof t->event, "cannot evaluate the objective at the %s: %s",
               t->n_hist ? "accepted parameters" : "starting parameters", why);
      *reason = NDE_TRAIN_FAILED;
      report(t, NAN, NULL, 0, t->event);
      break;
    }
    if (t->stop_requested) {
      /* Stopped at a chunk boundary: take its resume point first, as an uninterrupted run would. */
      if (!t->in_chunk && t->iter < ph->iters) {
        st = resume_point(t, reason);
        if (st != NDE_OK) break;
      }
      if (*reason == NDE_TRAIN_DONE) *reason = NDE_TRAIN_STOPPED;
      break;
    }
    t->in_chunk = 0;
    if (ret == LBFGS_SUCCESS || ret == LBFGS_ALREADY_MINIMIZED) {
      snprintf(t->event, sizeof t->event, "L-BFGS converged (|grad| %.2g)",
               grad_norm_at_good(t, ph->shooting, (size_t)n));
      report(t, fx, NULL, 0, t->event);
      t->iter = ph->iters;
      break;
    }
    if (ret != LBFGSERR_MAXIMUMITERATION && ret != LBFGS_STOP && ret < 0) {
      /* A failed line search after progress usually means stale curvature pairs: restart from
       * the last accepted point with fresh memory.  Without progress, the phase is over: at a
       * minimum the line search finds no decrease, which is convergence, not a failure. */
      if (t->iter > before) {
        st = resume_point(t, reason);
        if (st != NDE_OK || *reason != NDE_TRAIN_DONE) break;
        continue;
      }
      snprintf(t->event, sizeof t->event, "L-BFGS stopped: %s (|grad| %.2g)", lbfgs_reason(ret),
               grad_norm_at_good(t, ph->shooting, (size_t)n));
      report(t, fx, NULL, 0, t->event);
      t->iter = ph->iters;
      break;
    }
    if (t->iter == before) { /* no progress and no error: do not loop forever */
      t->iter = ph->iters;
      break;
    }
    if (t->iter < ph->iters) {
      st = resume_point(t, reason);
      if (st != NDE_OK || *reason != NDE_TRAIN_DONE) break;
    }
  }
  lbfgs_free(xl);
  return st;
}

static nde_status train_run(nde_train *t, nde_train_reason *reason);

nde_status nde_train_run(nde_train *t, nde_train_reason *reason) {
  if (!t || !reason) return NDE_ERR_ARG;
  const nde_status st = train_run(t, reason);
  /* An error ends the run as a failure, whatever the phase loop had set. */
  if (st != NDE_OK) *reason = NDE_TRAIN_FAILED;
  return st;
}

static nde_status train_run(nde_train *t, nde_train_reason *reason) {
  *reason = NDE_TRAIN_DONE;
  t->stop_requested = 0;
  while (t->phase < t->o.n_phases) {
    const nde_fit_phase *ph = &t->phases[t->phase];
    nde_status st = ph->opt == NDE_OPT_ADAM ? run_adam(t, ph, reason) : run_lbfgs(t, ph, reason);
    if (st != NDE_OK || *reason != NDE_TRAIN_DONE) return st;
    t->phase_end[t->phase] = (long)t->n_hist;
    /* Next phase: fresh optimiser state, the phase's own learning rate. */
    nde_adam_destroy(&t->adam);
    t->adam_n = 0;
    t->iter = 0;
    t->fails = 0;
    t->stall = 0;
    t->phase_best = INFINITY;
    t->phase_l0 = NAN;
    t->chunk_start = t->n_hist;
    t->phase++;
    if (t->phase < t->o.n_phases) t->lr = t->phases[t->phase].lr;
    /* The end of an L-BFGS phase is a resume point, taken at the start of the next phase so that
     * a resumed run does not score it twice (Adam phases end at a resume point already). */
    if (ph->opt == NDE_OPT_LBFGS) {
      st = resume_point(t, reason);
      if (st != NDE_OK || *reason != NDE_TRAIN_DONE) return st;
    }
  }
  return NDE_OK;
}

/* ---- resumable state ---- */

enum { S_VERSION, S_NX, S_PHASE, S_ITER, S_LR, S_FAILS, S_AT_GOOD, S_EVALS, S_ADAM_N, S_NHIST,
       S_NSCORES, S_HAVE_BEST, S_BEST_SCORE, S_BEST_ITER, S_SINCE_BEST, S_PHASE_BEST,
       S_CHUNK_START, S_STALL, S_PHASE_L0, S_HEADER };
#define STATE_VERSION 2.0

size_t nde_train_state_size(const nde_train *t) {
  return S_HEADER + (size_t)t->o.n_phases + 3 * t->nx + (t->adam ? 2 * (2 * t->adam_n + 1) : 0) +
         t->n_hist + 2 * t->n_scores;
}

/* Layout: header, phase ends, x (current point), x_good (before the last step), x_best, the Adam
 * state now and before the last step, loss history, scores and their iterations.  Both points are kept so
 * that a rejection right after a resume restores what the uninterrupted run would have
 * restored. */
void nde_train_get_state(const nde_train *t, double *s, uint64_t *words) {
  s[S_VERSION] = STATE_VERSION;
  s[S_NX] = (double)t->nx;
  s[S_PHASE] = t->phase;
  s[S_ITER] = (double)t->iter;
  s[S_LR] = t->lr;
  s[S_FAILS] = t->fails;
  s[S_AT_GOOD] = t->at_good;
  s[S_EVALS] = (double)t->evals;
  s[S_ADAM_N] = t->adam ? (double)t->adam_n : 0.0;
  s[S_NHIST] = (double)t->n_hist;
  s[S_NSCORES] = (double)t->n_scores;
  s[S_HAVE_BEST] = t->have_best;
  s[S_BEST_SCORE] = t->best_score;
  s[S_BEST_ITER] = (double)t->best_iter;
  s[S_SINCE_BEST] = t->since_best;
  s[S_PHASE_BEST] = t->phase_best;
  s[S_CHUNK_START] = (double)t->chunk_start;
  s[S_STALL] = t->stall;
  s[S_PHASE_L0] = t->phase_l0;
  double *p = s + S_HEADER;
  for (int k = 0; k < t->o.n_phases; k++) *p++ = (double)t->phase_end[k];
  memcpy(p, t->x, t->nx * sizeof *p);
  p += t->nx;
  memcpy(p, t->x_good, t->nx * sizeof *p);
  p += t->nx;
  memcpy(p, t->x_best, t->nx * sizeof *p);
  p += t->nx;
  if (t->adam) {
    const size_t as = 2 * t->adam_n + 1;
    nde_adam_get_state(t->adam, p);
    memcpy(p + as, t->adam_good, as * sizeof *p);
    p += 2 * as;
  }
  if (t->n_hist) memcpy(p, t->hist, t->n_hist * sizeof *p);
  p += t->n_hist;
  if (t->n_scores) memcpy(p, t->scores, t->n_scores * sizeof *p);
  p += t->n_scores;
  for (size_t i = 0; i < t->n_scores; i++) p[i] = (double)t->score_iter[i];
  if (words) memcpy(words, t->rng.s, sizeof t->rng.s);
}

nde_status nde_train_set_state(nde_train *t, const double *s, size_t len, const uint64_t *words) {
  if (!t) return NDE_ERR_ARG;
  if (!s || !words || len < S_HEADER || s[S_VERSION] != STATE_VERSION ||
      s[S_NX] != (double)t->nx)
    return nde__errf(&t->err, NDE_ERR_ARG,
                     "the saved training state does not match this model and data (expected "
                     "version %g with %zu optimised values)",
                     STATE_VERSION, t->nx);
  const double phase = s[S_PHASE], iter = s[S_ITER], adam_n = s[S_ADAM_N], nh = s[S_NHIST],
               ns = s[S_NSCORES];
  if (!(phase >= 0 && phase <= t->o.n_phases && iter >= 0 && adam_n >= 0 &&
        adam_n <= (double)t->nx && nh >= 0 && nh < 1e12 && ns >= 0 && ns < 1e12))
    return nde__errf(&t->err, NDE_ERR_ARG, "the saved training state is corrupt");
  const size_t an = (size_t)adam_n, hn = (size_t)nh, sn = (size_t)ns, as = an ? 2 * an + 1 : 0;
  if (len != S_HEADER + (size_t)t->o.n_phases + 3 * t->nx + 2 * as + hn + 2 * sn)
    return nde__errf(&t->err, NDE_ERR_ARG, "the saved training state has the wrong length");
  t->phase = (int)phase;
  t->iter = (long)iter;
  t->lr = s[S_LR];
  t->fails = (int)s[S_FAILS];
  t->at_good = s[S_AT_GOOD] != 0;
  t->in_chunk = 0;
  t->evals = (long)s[S_EVALS];
  t->have_best = s[S_HAVE_BEST] != 0;
  t->best_score = s[S_BEST_SCORE];
  t->best_iter = (long)s[S_BEST_ITER];
  t->since_best = (int)s[S_SINCE_BEST];
  t->phase_best = s[S_PHASE_BEST];
  t->chunk_start = (size_t)s[S_CHUNK_START];
  t->stall = (int)s[S_STALL];
  t->phase_l0 = s[S_PHASE_L0];
  if (t->chunk_start > hn) return nde__errf(&t->err, NDE_ERR_ARG, "the saved training state is corrupt");
  memcpy(t->rng.s, words, sizeof t->rng.s);
  const double *p = s + S_HEADER;
  for (int k = 0; k < t->o.n_phases; k++) t->phase_end[k] = (long)*p++;
  memcpy(t->x, p, t->nx * sizeof *p);
  p += t->nx;
  memcpy(t->x_good, p, t->nx * sizeof *p);
  p += t->nx;
  memcpy(t->x_best, p, t->nx * sizeof *p);
  p += t->nx;
  nde_adam_destroy(&t->adam);
  t->adam_n = 0;
  if (an) {
    nde_adam_opts ao = nde_adam_opts_default();
    ao.lr = t->lr;
    if (nde_adam_create(an, &ao, &t->adam, NULL) != NDE_OK ||
        nde_adam_set_state(t->adam, p) != NDE_OK)
      return nde__errf(&t->err, NDE_ERR_ARG, "the saved optimiser state is corrupt");
    memcpy(t->adam_good, p + as, as * sizeof *p);
    t->adam_n = an;
    p += 2 * as;
  }
  t->n_hist = 0;
  for (size_t i = 0; i < hn; i++)
    if (push_hist(t, p[i])) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (history)");
  p += hn;
  t->n_scores = 0;
  for (size_t i = 0; i < sn; i++)
    if (push_score(t, p[i], (long)p[sn + i]))
      return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (score history)");
  return NDE_OK;
}
