/* The training loop: a schedule of optimiser phases (Adam, then L-BFGS from liblbfgs, with or
 * without multiple shooting) over the fit objective, with a divergence guard and checkpoints.
 *
 * Guard: a step whose next evaluation is non-finite (loss, gradient, or a solve that stopped) is
 * rejected: x and the optimiser state go back to their values before the step, bit for bit, the
 * learning rate is multiplied by lr_backoff, and after max_failures rejections in a row the run
 * stops as diverged, keeping the last accepted x.
 * L-BFGS runs in chunks of checkpoint_every iterations, each restarted from the current x, so a
 * run resumed from a checkpoint takes exactly the same path as one that never stopped; a chunk
 * whose line search fails after making progress is restarted the same way. */
#include <lbfgs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/train.h"

struct nde_train {
  nde_fit *fit;
  nde_train_opts o;
  nde_fit_phase phases[NDE_MAX_PHASES];
  nde__err err;
  size_t nx;        /* length of x with shooting states */
  double *x;        /* the current point */
  double *x_good;   /* the last accepted point */
  double *g;
  double *adam_good;
  nde_adam *adam;   /* the optimiser of the current Adam phase */
  size_t adam_n;
  int phase;
  long iter;        /* iterations done in this phase */
  double lr;
  int fails;
  long evals;
  nde_rng rng;
  double *hist;
  size_t n_hist, cap_hist;
  int stop_requested;
  char event[256];
};

nde_train_opts nde_train_opts_default(void) {
  nde_train_opts o;
  memset(&o, 0, sizeof o);
  o.max_failures = 8;
  o.lr_backoff = 0.5;
  o.checkpoint_every = 200;
  o.progress_every = 100;
  return o;
}

void nde_train_destroy(nde_train **tp) {
  if (!tp || !*tp) return;
  nde_train *t = *tp;
  free(t->x);
  free(t->x_good);
  free(t->g);
  free(t->adam_good);
  free(t->hist);
  nde_adam_destroy(&t->adam);
  free(t);
  *tp = NULL;
}

const char *nde_train_errmsg(const nde_train *t) { return nde__err_msg(t ? &t->err : NULL); }
const double *nde_train_x(const nde_train *t) { return t->x_good; }
long nde_train_n_evals(const nde_train *t) { return t->evals; }

size_t nde_train_history(const nde_train *t, const double **loss) {
  if (loss) *loss = t->hist;
  return t->n_hist;
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
  if (opts->max_failures < 0 || !(opts->lr_backoff > 0 && opts->lr_backoff < 1) ||
      opts->checkpoint_every < 1 || opts->progress_every < 1)
    return nde__fail(err, NDE_ERR_ARG,
                     "invalid training options (expected max_failures >= 0, lr_backoff in (0, 1), "
                     "checkpoint_every >= 1, progress_every >= 1; got %d, %g, %ld, %ld)",
                     opts->max_failures, opts->lr_backoff, opts->checkpoint_every,
                     opts->progress_every);
  if (nde_fit_n_x(fit, 0) == 0)
    return nde__fail(err, NDE_ERR_ARG,
                     "nothing to fit: the model has no learnable values (declare a parameter "
                     "without (fixed), a net, or use --learn-u0)");
  nde_train *t = calloc(1, sizeof *t);
  if (!t) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the training run");
  t->fit = fit;
  t->o = *opts;
  memcpy(t->phases, opts->phases, (size_t)opts->n_phases * sizeof *opts->phases);
  t->o.phases = t->phases;
  for (int p = 0; p < opts->n_phases; p++)
    if (t->phases[p].iters < 0 || (t->phases[p].opt == NDE_OPT_ADAM && !(t->phases[p].lr > 0))) {
      nde_train_destroy(&t);
      return nde__fail(err, NDE_ERR_ARG,
                       "schedule phase %d: expected iterations >= 0 and (Adam) a learning rate > 0",
                       p + 1);
    }
  t->nx = nde_fit_n_x(fit, 1);
  t->x = nde__dalloc(t->nx);
  t->x_good = nde__dalloc(t->nx);
  t->g = nde__dalloc(t->nx);
  t->adam_good = nde__dalloc(2 * t->nx + 1);
  if (!t->x || !t->x_good || !t->g || !t->adam_good) {
    nde_train_destroy(&t);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the training run");
  }
  memcpy(t->x, x0, t->nx * sizeof *t->x);
  memcpy(t->x_good, x0, t->nx * sizeof *t->x);
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

static long planned_iters(const nde_train *t) {
  long s = 0;
  for (int p = 0; p < t->o.n_phases; p++) s += t->phases[p].iters;
  return s;
}

static int report(nde_train *t, double L, const double *g, size_t n, const char *event) {
  if (!t->o.progress) return 0;
  double gn = 0;
  for (size_t i = 0; g && i < n; i++) gn += g[i] * g[i];
  nde_train_progress p = {t->phase, t->iter, (long)t->n_hist, planned_iters(t), L, sqrt(gn),
                          t->lr, event};
  return t->o.progress(t->o.progress_ctx, &p);
}

static int finite_all(size_t n, const double *v) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(v[i])) return 0;
  return 1;
}

/* One evaluation of the objective with the test hook applied; returns the status. */
static nde_status evaluate(nde_train *t, const double *x, int shooting, nde_rng *rng, double *L,
                           double *g, nde_fit_info *info) {
  nde_status st = nde_fit_eval(t->fit, x, shooting, rng, L, g, info);
  t->evals++;
  if (st != NDE_OK) return nde__errf(&t->err, st, "%s", nde_fit_errmsg(t->fit));
  if (t->o.test_nan_eval > 0 && t->evals == t->o.test_nan_eval) *L = NAN;
  return NDE_OK;
}

static nde_status checkpoint(nde_train *t) {
  if (t->o.checkpoint && t->o.checkpoint(t->o.checkpoint_ctx, t) != 0)
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
    nde_fit_info info;
    nde_status st = evaluate(t, t->x, ph->shooting, rng, &L, t->g, &info);
    if (st != NDE_OK) return st;
    if (!isfinite(L) || !finite_all(n, t->g)) {
      /* Reject the last step: back to the point and optimiser state before it. */
      memcpy(t->x, t->x_good, t->nx * sizeof *t->x);
      nde_adam_set_state(t->adam, t->adam_good);
      t->fails++;
      t->lr *= t->o.lr_backoff;
      nde_adam_set_lr(t->adam, t->lr);
      if (info.stop.reason != NDE_REASON_NONE)
        snprintf(t->event, sizeof t->event,
                 "step rejected: the solve stopped at t = %.6g (%s); learning rate now %.3g",
                 info.stop.t_stop, nde_stop_reason_str(info.stop.reason), t->lr);
      else
        snprintf(t->event, sizeof t->event,
                 "step rejected: non-finite loss or gradient; learning rate now %.3g", t->lr);
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
    t->fails = 0;
    if (push_hist(t, L)) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (history)");
    memcpy(t->x_good, t->x, t->nx * sizeof *t->x);
    nde_adam_get_state(t->adam, t->adam_good);
    nde_adam_step(t->adam, t->x, t->g);
    t->iter++;
    if (t->iter % t->o.progress_every == 0 || t->iter == ph->iters) {
      if (report(t, L, t->g, n, NULL)) t->stop_requested = 1;
    }
    if (t->iter % t->o.checkpoint_every == 0 || t->iter == ph->iters) {
      st = checkpoint(t);
      if (st != NDE_OK) return st;
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
} lbfgs_ctx;

static lbfgsfloatval_t lb_evaluate(void *inst, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                                   const int n, const lbfgsfloatval_t step) {
  (void)step;
  lbfgs_ctx *c = inst;
  double L;
  nde_fit_info info;
  c->st = evaluate(c->t, x, c->ph->shooting, NULL, &L, g, &info);
  if (c->st != NDE_OK || !isfinite(L) || !finite_all((size_t)n, g)) {
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
  if (t->iter % t->o.progress_every == 0 && report(t, fx, g, (size_t)n, NULL))
    t->stop_requested = 1;
  return t->stop_requested;
}

static const char *lbfgs_reason(int ret) {
  switch (ret) {
    case LBFGSERR_ROUNDING_ERROR: return "rounding errors prevent further progress";
    case LBFGSERR_MAXIMUMLINESEARCH: return "the line search hit its evaluation limit";
    case LBFGSERR_MINIMUMSTEP: return "the line search step became too small";
    case LBFGSERR_MAXIMUMSTEP: return "the line search step became too large";
    case LBFGSERR_INCREASEGRADIENT: return "the search direction is not a descent direction";
    default: return "the line search failed";
  }
}

static nde_status run_lbfgs(nde_train *t, const nde_fit_phase *ph, nde_train_reason *reason) {
  const int n = (int)nde_fit_n_x(t->fit, ph->shooting);
  lbfgsfloatval_t *xl = lbfgs_malloc(n);
  if (!xl) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (L-BFGS)");
  lbfgs_ctx c = {t, ph, NDE_OK};
  nde_status st = NDE_OK;
  while (t->iter < ph->iters) {
    lbfgs_parameter_t par;
    lbfgs_parameter_init(&par);
    long left = ph->iters - t->iter, chunk = t->o.checkpoint_every - t->iter % t->o.checkpoint_every;
    par.max_iterations = (int)(left < chunk ? left : chunk);
    par.linesearch = LBFGS_LINESEARCH_BACKTRACKING_STRONG_WOLFE;
    par.epsilon = 1e-10;
    memcpy(xl, t->x_good, (size_t)n * sizeof *xl);
    lbfgsfloatval_t fx;
    const long before = t->iter;
    int ret = lbfgs(n, xl, &fx, lb_evaluate, lb_progress, &c, &par);
    if (c.st != NDE_OK) {
      st = c.st;
      break;
    }
    /* x_good holds the last iterate liblbfgs accepted (it reverts failed line searches). */
    memcpy(t->x, t->x_good, t->nx * sizeof *t->x);
    if (t->stop_requested) {
      *reason = NDE_TRAIN_STOPPED;
      break;
    }
    st = checkpoint(t);
    if (st != NDE_OK) break;
    if (ret == LBFGS_SUCCESS || ret == LBFGS_STOP || ret == LBFGS_ALREADY_MINIMIZED) {
      report(t, fx, NULL, 0, "L-BFGS converged");
      t->iter = ph->iters;
      break;
    }
    if (ret != LBFGSERR_MAXIMUMITERATION && ret < 0) {
      /* A failed line search after progress usually means stale curvature pairs: restart from
       * the last accepted point with fresh memory.  Without progress, the phase is over. */
      if (t->iter > before) continue;
      snprintf(t->event, sizeof t->event, "L-BFGS phase ended early: %s", lbfgs_reason(ret));
      report(t, fx, NULL, 0, t->event);
      t->iter = ph->iters;
      break;
    }
    if (t->iter == before) { /* no progress and no error: do not loop forever */
      t->iter = ph->iters;
      break;
    }
  }
  lbfgs_free(xl);
  return st;
}

nde_status nde_train_run(nde_train *t, nde_train_reason *reason) {
  if (!t || !reason) return NDE_ERR_ARG;
  *reason = NDE_TRAIN_DONE;
  t->stop_requested = 0;
  for (; t->phase < t->o.n_phases; t->phase++) {
    const nde_fit_phase *ph = &t->phases[t->phase];
    nde_status st = ph->opt == NDE_OPT_ADAM ? run_adam(t, ph, reason) : run_lbfgs(t, ph, reason);
    if (st != NDE_OK || *reason != NDE_TRAIN_DONE) return st;
    /* Next phase: fresh optimiser state, the phase's own learning rate. */
    nde_adam_destroy(&t->adam);
    t->adam_n = 0;
    t->iter = 0;
    t->fails = 0;
    if (t->phase + 1 < t->o.n_phases) t->lr = t->phases[t->phase + 1].lr;
  }
  return NDE_OK;
}

/* ---- resumable state ---- */

enum { S_VERSION, S_NX, S_PHASE, S_ITER, S_LR, S_FAILS, S_EVALS, S_RNG, S_ADAM_N = S_RNG + 4,
       S_NHIST, S_HEADER };
#define STATE_VERSION 1.0

size_t nde_train_state_size(const nde_train *t) {
  return S_HEADER + 2 * t->nx + (t->adam ? 2 * (2 * t->adam_n + 1) : 0) + t->n_hist;
}

/* Layout: header, x (current point), x_good (before the last step), Adam state now and before
 * the last step, loss history.  Both points are kept so that a rejection right after a resume
 * restores what the uninterrupted run would have restored. */
void nde_train_get_state(const nde_train *t, double *s) {
  s[S_VERSION] = STATE_VERSION;
  s[S_NX] = (double)t->nx;
  s[S_PHASE] = t->phase;
  s[S_ITER] = (double)t->iter;
  s[S_LR] = t->lr;
  s[S_FAILS] = t->fails;
  s[S_EVALS] = (double)t->evals;
  memcpy(s + S_RNG, t->rng.s, sizeof t->rng.s); /* bit patterns, not values */
  s[S_ADAM_N] = t->adam ? (double)t->adam_n : 0.0;
  s[S_NHIST] = (double)t->n_hist;
  double *p = s + S_HEADER;
  memcpy(p, t->x, t->nx * sizeof *p);
  p += t->nx;
  memcpy(p, t->x_good, t->nx * sizeof *p);
  p += t->nx;
  if (t->adam) {
    const size_t as = 2 * t->adam_n + 1;
    nde_adam_get_state(t->adam, p);
    memcpy(p + as, t->adam_good, as * sizeof *p);
    p += 2 * as;
  }
  memcpy(p, t->hist, t->n_hist * sizeof *p);
}

nde_status nde_train_set_state(nde_train *t, const double *s, size_t len) {
  if (!t) return NDE_ERR_ARG;
  if (!s || len < S_HEADER || s[S_VERSION] != STATE_VERSION || s[S_NX] != (double)t->nx)
    return nde__errf(&t->err, NDE_ERR_ARG,
                     "the saved training state does not match this model and data (expected "
                     "%zu optimised values)",
                     t->nx);
  const double phase = s[S_PHASE], iter = s[S_ITER], adam_n = s[S_ADAM_N], nh = s[S_NHIST];
  if (!(phase >= 0 && phase <= t->o.n_phases && iter >= 0 && adam_n >= 0 &&
        adam_n <= (double)t->nx && nh >= 0 && nh < 1e12))
    return nde__errf(&t->err, NDE_ERR_ARG, "the saved training state is corrupt");
  const size_t an = (size_t)adam_n, hn = (size_t)nh, as = an ? 2 * an + 1 : 0;
  if (len != S_HEADER + 2 * t->nx + 2 * as + hn)
    return nde__errf(&t->err, NDE_ERR_ARG, "the saved training state has the wrong length");
  t->phase = (int)phase;
  t->iter = (long)iter;
  t->lr = s[S_LR];
  t->fails = (int)s[S_FAILS];
  t->evals = (long)s[S_EVALS];
  memcpy(t->rng.s, s + S_RNG, sizeof t->rng.s);
  const double *p = s + S_HEADER;
  memcpy(t->x, p, t->nx * sizeof *p);
  p += t->nx;
  memcpy(t->x_good, p, t->nx * sizeof *p);
  p += t->nx;
  nde_adam_destroy(&t->adam);
  t->adam_n = 0;
  if (an) {
    nde_adam_opts ao = nde_adam_opts_default();
    ao.lr = t->lr;
    if (nde_adam_create(an, &ao, &t->adam, NULL) != NDE_OK || nde_adam_set_state(t->adam, p) != NDE_OK)
      return nde__errf(&t->err, NDE_ERR_ARG, "the saved optimiser state is corrupt");
    memcpy(t->adam_good, p + as, as * sizeof *p);
    t->adam_n = an;
    p += 2 * as;
  }
  t->n_hist = 0;
  for (size_t i = 0; i < hn; i++)
    if (push_hist(t, p[i])) return nde__errf(&t->err, NDE_ERR_NOMEM, "out of memory (history)");
  return NDE_OK;
}
