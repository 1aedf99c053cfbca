/* The solver handle, the batched explicit Runge-Kutta kernel and the fixed-step solve loop that
 * lands on every observation time and records the trajectory for the gradient layer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

nde_solver_opts nde_solver_opts_default(void) {
  nde_solver_opts o;
  memset(&o, 0, sizeof o);
  o.method = "rk4";
  o.dt = 0.0;
  o.steps_per_interval = 1;
  o.max_steps = 1000000;
  o.dt_snap = 1e-9;
  return o;
}

const char *nde_stop_reason_str(nde_stop_reason r) {
  switch (r) {
    case NDE_REASON_NONE: return "reached the final time";
    case NDE_REASON_NONFINITE: return "the state became NaN or infinite";
    case NDE_REASON_RHS_RECOVERABLE:
      return "the right-hand side reported a recoverable failure that a fixed-step method cannot "
             "retry";
    case NDE_REASON_MAX_STEPS: return "the step budget was used up";
    case NDE_REASON_STEP_UNDERFLOW: return "the step size became too small";
  }
  return "unknown reason";
}

static void traj_free(nde__traj *tr) {
  free(tr->t);
  free(tr->h);
  free(tr->obs_end);
  free(tr->U);
  free(tr->cache);
  memset(tr, 0, sizeof *tr);
}

void nde_solver_destroy(nde_solver **sp) {
  if (!sp || !*sp) return;
  nde_solver *s = *sp;
  free(s->K);
  free(s->Us);
  free(s->u);
  traj_free(&s->traj);
  free(s);
  *sp = NULL;
}

nde_status nde_solver_create(nde_rhs *rhs, const nde_solver_opts *opts, int max_batch,
                             nde_solver **out) {
  nde_status st = NDE_ERR_NOMEM;
  if (!out) return NDE_ERR_ARG;
  *out = NULL;
  if (!rhs) return NDE_ERR_ARG;
  nde_solver *s = calloc(1, sizeof *s);
  if (!s) return NDE_ERR_NOMEM;
  s->opts = opts ? *opts : nde_solver_opts_default();
  const nde_rhs_info *info = nde_rhs_get_info(rhs);
  s->rhs = rhs;
  s->n = info->n_state;
  s->cache_per_row = info->cache_per_row;
  s->max_batch = max_batch;
  if (max_batch < 1 || max_batch > info->max_batch) {
    st = nde__errf(&s->err, NDE_ERR_ARG, "batch size %d outside [1, %d] (the model's maximum)",
                   max_batch, info->max_batch);
    goto fail;
  }
  s->tab = nde__tableau_lookup(s->opts.method);
  if (!s->tab) {
    st = nde__errf(&s->err, NDE_ERR_ARG, "unknown solver method '%s' (expected euler or rk4)",
                   s->opts.method ? s->opts.method : "(null)");
    goto fail;
  }
  if (!(s->opts.dt > 0.0) && s->opts.steps_per_interval < 1) {
    st = nde__errf(&s->err, NDE_ERR_ARG,
                   "fixed-step method needs dt > 0 or steps_per_interval >= 1 (got dt = %g, "
                   "steps_per_interval = %d)",
                   s->opts.dt, s->opts.steps_per_interval);
    goto fail;
  }
  if (!isfinite(s->opts.dt) || s->opts.max_steps < 1 || !(s->opts.dt_snap >= 0.0) ||
      s->opts.dt_snap >= 1.0) {
    st = nde__errf(&s->err, NDE_ERR_ARG,
                   "invalid solver options (dt = %g, max_steps = %ld, dt_snap = %g)", s->opts.dt,
                   s->opts.max_steps, s->opts.dt_snap);
    goto fail;
  }
  size_t bn;
  if (!nde__mul_size((size_t)max_batch, (size_t)s->n, &bn)) goto fail;
  size_t kn;
  if (!nde__mul_size(bn, (size_t)s->tab->s, &kn)) goto fail;
  s->K = nde__dalloc(kn);
  s->Us = nde__dalloc(bn);
  s->u = nde__dalloc(bn);
  if (!s->K || !s->Us || !s->u) goto fail;
  *out = s;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__errf(&s->err, st, "out of memory creating the solver");
  nde_solver_destroy(&s);
  return st;
}

const char *nde_solver_errmsg(const nde_solver *s) { return nde__err_msg(s ? &s->err : NULL); }
const nde_solver_opts *nde_solver_get_opts(const nde_solver *s) { return &s->opts; }
nde_rhs *nde_solver_get_rhs(const nde_solver *s) { return s->rhs; }

int nde__rk_step(nde_solver *s, const double *theta, double t, double h, int B, const double *u,
                 double *u_out, double *Ustore, double *cstore) {
  const nde__tableau *tab = s->tab;
  const size_t bn = (size_t)B * (size_t)s->n;
  const size_t bc = (size_t)B * s->cache_per_row;
  for (int i = 0; i < tab->s; i++) {
    double *Ui = Ustore ? Ustore + (size_t)i * bn : s->Us;
    const double *stage_in = u;
    if (i > 0 || Ustore) {
      memcpy(Ui, u, bn * sizeof *Ui);
      for (int j = 0; j < i; j++) {
        const double a = h * tab->A[i * tab->s + j];
        if (a == 0.0) continue;
        const double *Kj = s->K + (size_t)j * bn;
        for (size_t q = 0; q < bn; q++) Ui[q] += a * Kj[q];
      }
      stage_in = Ui;
    }
    int rc = nde_rhs_f(s->rhs, t + tab->c[i] * h, B, stage_in, theta, s->K + (size_t)i * bn,
                       cstore ? cstore + (size_t)i * bc : NULL);
    if (rc != 0) return rc;
  }
  /* u_out may alias u: accumulate the increment first. */
  double *inc = s->Us;
  memset(inc, 0, bn * sizeof *inc);
  for (int i = 0; i < tab->s; i++) {
    const double bi = h * tab->b[i];
    if (bi == 0.0) continue;
    const double *Ki = s->K + (size_t)i * bn;
    for (size_t q = 0; q < bn; q++) inc[q] += bi * Ki[q];
  }
  for (size_t q = 0; q < bn; q++) u_out[q] = u[q] + inc[q];
  return 0;
}

/* Grow a double array to hold at least need entries (geometric growth). */
static int grow(double **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 64;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / sizeof(double)) return -1;
    nc *= 2;
  }
  double *q = realloc(*p, nc * sizeof *q);
  if (!q) return -1;
  *p = q;
  *cap = nc;
  return 0;
}

/* Make room for step index k (0-based) in the trajectory. */
static int traj_reserve(nde__traj *tr, long k) {
  if (k >= tr->cap_steps) {
    long nc = tr->cap_steps ? tr->cap_steps * 2 : 256;
    while (nc <= k) nc *= 2;
    double *t = realloc(tr->t, (size_t)nc * sizeof *t);
    if (!t) return -1;
    tr->t = t;
    double *h = realloc(tr->h, (size_t)nc * sizeof *h);
    if (!h) return -1;
    tr->h = h;
    int *o = realloc(tr->obs_end, (size_t)nc * sizeof *o);
    if (!o) return -1;
    tr->obs_end = o;
    tr->cap_steps = nc;
  }
  size_t need;
  if (!nde__mul_size((size_t)k + 1, tr->u_len, &need) || grow(&tr->U, &tr->u_cap, need)) return -1;
  if (tr->c_len) {
    if (!nde__mul_size((size_t)k + 1, tr->c_len, &need) || grow(&tr->cache, &tr->c_cap, need))
      return -1;
  }
  return 0;
}

/* First non-finite entry of x (B x n), or -1. */
static long first_nonfinite(size_t len, const double *x) {
  for (size_t q = 0; q < len; q++)
    if (!isfinite(x[q])) return (long)q;
  return -1;
}

nde_status nde__solver_run(nde_solver *s, const double *theta, int B, const double *U0, int n_obs,
                           const double *t_obs, double *Y, nde__store_mode mode,
                           nde_solve_stats *stats) {
  nde_solve_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  stats->bad_row = stats->bad_state = -1;
  if (!theta && nde_rhs_get_info(s->rhs)->n_theta > 0)
    return nde__errf(&s->err, NDE_ERR_ARG, "parameter vector is NULL");
  if (B < 1 || B > s->max_batch)
    return nde__errf(&s->err, NDE_ERR_ARG, "batch size %d outside [1, %d]", B, s->max_batch);
  if (!U0 || !t_obs || !Y || n_obs < 1)
    return nde__errf(&s->err, NDE_ERR_ARG, "solve needs U0, t_obs, Y and n_obs >= 1");
  for (int k = 0; k + 1 < n_obs; k++)
    if (!(t_obs[k + 1] > t_obs[k]) || !isfinite(t_obs[k + 1]))
      return nde__errf(&s->err, NDE_ERR_ARG,
                       "observation times must be finite and strictly increasing (t[%d] = %.17g, "
                       "t[%d] = %.17g)",
                       k, t_obs[k], k + 1, t_obs[k + 1]);
  const int n = s->n;
  const size_t bn = (size_t)B * (size_t)n;
  const int ns = s->tab->s;
  nde__traj *tr = &s->traj;
  tr->mode = mode;
  tr->B = B;
  tr->n_steps = 0;
  tr->u_len = mode == NDE__STORE_STAGES ? (size_t)ns * bn : mode == NDE__STORE_STEPS ? bn : 0;
  tr->c_len = mode == NDE__STORE_STAGES ? (size_t)ns * (size_t)B * s->cache_per_row : 0;

  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  double *u = s->u;
  memcpy(u, U0, bn * sizeof *u);
  memcpy(Y, U0, bn * sizeof *Y);
  nde_status st = NDE_OK;
  int k_done = 0;
  double t = t_obs[0];
  for (int k = 0; k + 1 < n_obs && stats->reason == NDE_REASON_NONE; k++) {
    const double T0 = t_obs[k], T1 = t_obs[k + 1], span = T1 - T0;
    long m;
    double hn;
    if (s->opts.dt > 0.0) {
      double r = span / s->opts.dt;
      m = (long)ceil(r - s->opts.dt_snap);
      if (m < 1) m = 1;
      hn = s->opts.dt;
    } else {
      m = s->opts.steps_per_interval;
      hn = span / (double)m;
    }
    for (long j = 0; j < m; j++) {
      const double ta = T0 + (double)j * hn;
      const double tb = j + 1 == m ? T1 : T0 + (double)(j + 1) * hn;
      const double h = tb - ta;
      stats->h_last = h;
      if (stats->n_steps >= s->opts.max_steps) {
        stats->reason = NDE_REASON_MAX_STEPS;
        break;
      }
      double *Ust = NULL, *cst = NULL;
      if (mode != NDE__STORE_NONE) {
        if (traj_reserve(tr, tr->n_steps)) {
          st = nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory storing step %ld of the trajectory",
                         tr->n_steps);
          goto done;
        }
        tr->t[tr->n_steps] = ta;
        tr->h[tr->n_steps] = h;
        tr->obs_end[tr->n_steps] = j + 1 == m ? k + 1 : -1;
        if (mode == NDE__STORE_STAGES) {
          Ust = tr->U + (size_t)tr->n_steps * tr->u_len;
          if (tr->c_len) cst = tr->cache + (size_t)tr->n_steps * tr->c_len;
        } else {
          memcpy(tr->U + (size_t)tr->n_steps * tr->u_len, u, bn * sizeof *u);
        }
      }
      int rc = nde__rk_step(s, theta, ta, h, B, u, u, Ust, cst);
      if (rc < 0) {
        st = nde__errf(&s->err, NDE_ERR_CALLBACK,
                       "right-hand side returned fatal code %d at t = %.17g (step size %.3g)", rc,
                       ta, h);
        goto done;
      }
      if (rc > 0) {
        stats->reason = NDE_REASON_RHS_RECOVERABLE;
        t = ta;
        break;
      }
      long bad = first_nonfinite(bn, u);
      if (bad >= 0) {
        stats->reason = NDE_REASON_NONFINITE;
        stats->bad_row = (int)(bad / n);
        stats->bad_state = (int)(bad % n);
        t = ta;
        break;
      }
      stats->n_steps++;
      if (mode != NDE__STORE_NONE) tr->n_steps++;
      t = tb;
    }
    if (stats->reason != NDE_REASON_NONE) break;
    memcpy(Y + (size_t)(k + 1) * bn, u, bn * sizeof *u);
    k_done = k + 1;
  }
done:
  for (int k = k_done + 1; k < n_obs; k++)
    for (size_t q = 0; q < bn; q++) Y[(size_t)k * bn + q] = NAN;
  stats->t_stop = t;
  stats->n_rhs = nde_rhs_get_counts(s->rhs).f - c0.f;
  return st;
}

nde_status nde_solver_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats) {
  if (!s) return NDE_ERR_ARG;
  return nde__solver_run(s, theta, B, U0, n_obs, t_obs, Y, NDE__STORE_NONE, stats);
}
