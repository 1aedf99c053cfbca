/* Gradient evaluator: runs the forward solve with the store its method needs, evaluates the loss
 * and runs the method's backward pass (dispatch); and the discrete adjoint.
 *
 * Discrete adjoint of an explicit Runge-Kutta step (u' = u + h sum_i b_i K_i,
 * K_i = f(t + c_i h, U_i), U_i = u + h sum_{j<i} a_ij K_j): with lambda the cotangent of u',
 *   Kbar_i = h b_i lambda + h sum_{m>i} a_mi Ubar_m + W_i,   Ubar_i = Kbar_i^T df/du(U_i),
 *   thetabar += Kbar_i^T df/dtheta(U_i),                      lambda <- lambda + sum_i Ubar_i,
 * taken for i = s..1 and the steps in reverse; dL/dY_k is added to lambda at each observation at
 * a step's end, and an observation inside a step, Y_k = u + h sum_i bth_i(theta_k) K_i (dopri5's
 * continuous extension), adds W_i = h bth_i dL/dY_k and dL/dY_k to the step's start cotangent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const gm_names[] = {"discrete", "backsolve", "interp", "forward", "auto",
                                       NULL};

const char *const *nde_grad_method_names(void) { return gm_names; }

nde_grad_opts nde_grad_opts_default(void) {
  nde_grad_opts o;
  memset(&o, 0, sizeof o);
  o.method = "discrete";
  o.rtol = 0.0;
  o.atol = 0.0;
  o.seminorm = 1;
  o.checkpoint_steps = 100;
  o.interp = "hermite";
  o.auto_forward_max_params = 8;
  return o;
}

void nde_grad_destroy(nde_grad **gp) {
  if (!gp || !*gp) return;
  nde_grad *g = *gp;
  free(g->Y);
  free(g->dLdY);
  free(g->lam);
  free(g->Ubar);
  free(g->Kbar);
  free(g->W);
  free(g->Ust);
  free(g->cst);
  free(g->utmp);
  nde__adjoint_builtin_free(g);
  nde__gcv_destroy(g);
  free(g);
  *gp = NULL;
}

const char *nde_grad_errmsg(const nde_grad *g) { return nde__err_msg(g ? &g->err : NULL); }

nde__gmethod nde__grad_pick(const nde_grad *g, int want_gU0) {
  if (!g->is_auto) return g->method;
  const nde_solver *s = g->solver;
  if (s->kind != NDE__KIND_CVODE) return NDE__GM_DISCRETE;
  size_t ns = g->P + (want_gU0 ? (size_t)s->max_batch * (size_t)g->n : 0);
  return ns <= (size_t)g->opts.auto_forward_max_params ? NDE__GM_FORWARD : NDE__GM_INTERP;
}

static const char *gm_name(nde__gmethod m) {
  return m == NDE__GM_DISCRETE    ? "discrete"
         : m == NDE__GM_BACKSOLVE ? "backsolve"
         : m == NDE__GM_INTERP    ? "interp"
                                  : "forward";
}

nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out,
                           nde_error *err) {
  nde_status st = NDE_ERR_NOMEM;
  nde__err e0 = {NDE_ERR_ARG, "a gradient evaluator needs a solver and an output pointer"};
  if (out) *out = NULL;
  if (!out || !solver) {
    nde__err_export(&e0, err);
    return NDE_ERR_ARG;
  }
  nde_grad *g = calloc(1, sizeof *g);
  if (!g) {
    e0 = (nde__err){NDE_ERR_NOMEM, "out of memory creating the gradient evaluator"};
    nde__err_export(&e0, err);
    return NDE_ERR_NOMEM;
  }
  g->solver = solver;
  g->opts = opts ? *opts : nde_grad_opts_default();
  const char *m = g->opts.method ? g->opts.method : "(null)";
  const int cvode = solver->kind == NDE__KIND_CVODE;
  if (strcmp(m, "discrete") == 0)
    g->method = NDE__GM_DISCRETE;
  else if (strcmp(m, "backsolve") == 0)
    g->method = NDE__GM_BACKSOLVE;
  else if (strcmp(m, "interp") == 0)
    g->method = NDE__GM_INTERP;
  else if (strcmp(m, "forward") == 0)
    g->method = NDE__GM_FORWARD;
  else if (strcmp(m, "auto") == 0)
    g->is_auto = 1;
  else {
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "unknown gradient method '%s' (expected discrete, backsolve, interp, forward "
                   "or auto)",
                   m);
    goto fail;
  }
  const char *sm = solver->opts.method;
  if (!g->is_auto) {
    if (g->method == NDE__GM_DISCRETE && cvode) {
      st = nde__errf(&g->err, NDE_ERR_ARG,
                     "gradient method 'discrete' needs an explicit solver (euler, rk4, dopri5), "
                     "not '%s': use interp, backsolve or forward",
                     sm);
      goto fail;
    }
    if (g->method == NDE__GM_FORWARD && !cvode) {
      st = nde__errf(&g->err, NDE_ERR_ARG,
                     "gradient method 'forward' needs cvode-adams or cvode-bdf, not '%s'", sm);
      goto fail;
    }
    if (g->method == NDE__GM_INTERP && !cvode &&
        !(solver->kind == NDE__KIND_ADAPTIVE && solver->tab->dense)) {
      st = nde__errf(&g->err, NDE_ERR_ARG,
                     "gradient method 'interp' needs a solver with a continuous extension "
                     "(dopri5) or cvode-*, not '%s'",
                     sm);
      goto fail;
    }
  }
  if (!(g->opts.rtol >= 0) || !(g->opts.atol >= 0) || g->opts.checkpoint_steps < 1 ||
      !g->opts.interp ||
      (strcmp(g->opts.interp, "hermite") != 0 && strcmp(g->opts.interp, "polynomial") != 0)) {
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "invalid gradient options (rtol = %g, atol = %g, checkpoint_steps = %ld, "
                   "interp = '%s'; expected tolerances >= 0, checkpoint_steps >= 1, interp "
                   "hermite or polynomial)",
                   g->opts.rtol, g->opts.atol, g->opts.checkpoint_steps,
                   g->opts.interp ? g->opts.interp : "(null)");
    goto fail;
  }
  if (strcmp(g->opts.interp, "polynomial") == 0 && g->opts.checkpoint_steps < 2) {
    /* CVODES 6.4 reads outside its polynomial history with one step per checkpoint. */
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "polynomial interpolation needs checkpoint_steps >= 2 (got %ld)",
                   g->opts.checkpoint_steps);
    goto fail;
  }
  g->n = solver->n;
  g->P = nde_rhs_get_info(solver->rhs)->n_theta;
  g->cache_per_row = solver->cache_per_row;
  if (cvode) {
    st = nde__gcv_create(g);
    if (st != NDE_OK) goto fail;
    *out = g;
    return NDE_OK;
  }
  st = NDE_ERR_NOMEM;
  g->ns = solver->tab->s;
  size_t bn, sbn, sbc;
  if (!nde__mul_size((size_t)solver->max_batch, (size_t)g->n, &bn) ||
      !nde__mul_size(bn, (size_t)g->ns, &sbn) ||
      !nde__mul_size((size_t)solver->max_batch * (size_t)g->ns, g->cache_per_row, &sbc))
    goto fail;
  g->lam = nde__dalloc(bn);
  g->Kbar = nde__dalloc(bn);
  g->Ubar = nde__dalloc(sbn);
  g->W = nde__dalloc(sbn);
  if (!g->lam || !g->Kbar || !g->Ubar || !g->W) goto fail;
  if (g->opts.recompute) {
    g->Ust = nde__dalloc(sbn);
    g->cst = nde__dalloc(sbc);
    g->utmp = nde__dalloc(bn);
    if (!g->Ust || !g->cst || !g->utmp) goto fail;
  }
  if (g->is_auto || g->method == NDE__GM_BACKSOLVE || g->method == NDE__GM_INTERP) {
    st = nde__adjoint_builtin_init(g);
    if (st != NDE_OK) goto fail;
  }
  *out = g;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__errf(&g->err, st, "out of memory creating the gradient evaluator");
  nde__err_export(&g->err, err);
  {
    nde_status keep = st;
    nde_grad_destroy(&g);
    return keep;
  }
}

/* Backward pass through one recorded step: lam (B x n) enters as the cotangent of the step's end
 * state and leaves as that of its start state; gtheta accumulates.  With dense, W holds the
 * stage cotangents of the observations inside the step. */
static int discrete_step_back(nde_grad *g, const double *theta, int B, double t, double h,
                              const double *U, const double *cache, int dense, double *gtheta) {
  nde_solver *s = g->solver;
  const nde__tableau *tab = s->tab;
  const int ns = s->ns_run, S = tab->s;
  const size_t bn = (size_t)B * (size_t)g->n;
  const size_t bc = (size_t)B * g->cache_per_row;
  for (int i = ns - 1; i >= 0; i--) {
    double *Ki = g->Kbar;
    double *Ui_bar = g->Ubar + (size_t)i * bn;
    int any = tab->b[i] != 0.0 || dense;
    for (int m = i + 1; m < ns && !any; m++) any = tab->A[m * S + i] != 0.0;
    if (!any) {
      /* No path from this stage to anything observed (dopri5's FSAL stage without an output
       * inside the step): its cotangent is zero. */
      memset(Ui_bar, 0, bn * sizeof *Ui_bar);
      continue;
    }
    const double wb = h * tab->b[i];
    for (size_t q = 0; q < bn; q++) Ki[q] = wb * g->lam[q];
    if (dense) {
      const double *Wi = g->W + (size_t)i * bn;
      for (size_t q = 0; q < bn; q++) Ki[q] += Wi[q];
    }
    for (int m = i + 1; m < ns; m++) {
      const double a = h * tab->A[m * S + i];
      if (a == 0.0) continue;
      const double *Um = g->Ubar + (size_t)m * bn;
      for (size_t q = 0; q < bn; q++) Ki[q] += a * Um[q];
    }
    memset(Ui_bar, 0, bn * sizeof *Ui_bar);
    int rc = nde_rhs_vjp(s->rhs, t + tab->c[i] * h, B, U + (size_t)i * bn, theta, Ki,
                         cache ? cache + (size_t)i * bc : NULL, Ui_bar, gtheta);
    if (rc != 0) return rc;
  }
  for (int i = 0; i < ns; i++) {
    const double *Ui_bar = g->Ubar + (size_t)i * bn;
    for (size_t q = 0; q < bn; q++) g->lam[q] += Ui_bar[q];
  }
  return 0;
}

static nde_status discrete_backward(nde_grad *g, const double *theta, int B, int n_obs,
                                    double *gtheta, long *n_vjp) {
  nde_solver *s = g->solver;
  const nde__traj *tr = &s->traj;
  const nde__tableau *tab = s->tab;
  const int ns = s->ns_run;
  const size_t bn = (size_t)B * (size_t)g->n;
  const long v0 = nde_rhs_get_counts(s->rhs).vjp;
  memset(g->lam, 0, bn * sizeof *g->lam);
  int k = n_obs - 1;
  for (long j = tr->n_steps - 1; j >= 0; j--) {
    const double h = tr->h[j];
    int dense = 0;
    for (; k >= 1 && tr->obs_step[k] == j; k--) {
      const double *d = g->dLdY + (size_t)k * bn;
      if (tr->obs_theta[k] == 1.0) {
        for (size_t q = 0; q < bn; q++) g->lam[q] += d[q];
        continue;
      }
      double bth[NDE__MAX_STAGES];
      tab->dense(tr->obs_theta[k], bth);
      if (!dense) memset(g->W, 0, (size_t)ns * bn * sizeof *g->W);
      dense = 1;
      for (int i = 0; i < ns; i++) {
        const double w = h * bth[i];
        double *Wi = g->W + (size_t)i * bn;
        for (size_t q = 0; q < bn; q++) Wi[q] += w * d[q];
      }
    }
    const double *U, *cache = NULL;
    if (tr->mode == NDE__STORE_STAGES) {
      U = tr->U + (size_t)j * tr->u_len;
      if (tr->c_len) cache = tr->cache + (size_t)j * tr->c_len;
    } else {
      /* Recompute the stages of step j from its stored start state. */
      int rc = nde__rk_step(s, theta, tr->t[j], h, B, tr->U + (size_t)j * tr->u_len, g->utmp,
                            g->Ust, g->cache_per_row ? g->cst : NULL);
      if (rc != 0)
        return nde__errf(&g->err, NDE_ERR_CALLBACK,
                         "right-hand side failed (code %d) recomputing step at t = %.17g", rc,
                         tr->t[j]);
      U = g->Ust;
      if (g->cache_per_row) cache = g->cst;
    }
    int rc = discrete_step_back(g, theta, B, tr->t[j], h, U, cache, dense, gtheta);
    if (rc != 0)
      return nde__errf(&g->err, NDE_ERR_CALLBACK,
                       "right-hand side VJP failed (code %d) at t = %.17g", rc, tr->t[j]);
    if (dense) {
      /* Observations of this step read Y_k = u + ...: their cotangents reach u directly. */
      for (int kk = k + 1; kk < n_obs && tr->obs_step[kk] == j; kk++) {
        if (tr->obs_theta[kk] == 1.0) continue;
        const double *d = g->dLdY + (size_t)kk * bn;
        for (size_t q = 0; q < bn; q++) g->lam[q] += d[q];
      }
    }
  }
  for (size_t q = 0; q < bn; q++) g->lam[q] += g->dLdY[q];
  *n_vjp = nde_rhs_get_counts(s->rhs).vjp - v0;
  return NDE_OK;
}

int nde__grad_grow_y(nde_grad *g, size_t need) {
  if (need <= g->y_cap) return 0;
  double *y = realloc(g->Y, need * sizeof *y);
  if (!y) return -1;
  g->Y = y;
  double *d = realloc(g->dLdY, need * sizeof *d);
  if (!d) return -1;
  g->dLdY = d;
  g->y_cap = need;
  return 0;
}

void nde__grad_nan(size_t P, size_t bn, double *gtheta, double *gU0) {
  if (gtheta)
    for (size_t i = 0; i < P; i++) gtheta[i] = NAN;
  if (gU0)
    for (size_t q = 0; q < bn; q++) gU0[q] = NAN;
}

nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats) {
  nde_grad_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  stats->backward.bad_row = stats->backward.bad_state = -1;
  if (!g) return NDE_ERR_ARG;
  if (!loss || !L || n_obs < 1 || B < 1)
    return nde__errf(&g->err, NDE_ERR_ARG, "gradient needs a loss, L, n_obs >= 1 and B >= 1");
  nde_solver *s = g->solver;
  const size_t n_theta = g->P;
  const size_t bn = (size_t)B * (size_t)g->n;
  size_t ylen;
  if (!nde__mul_size((size_t)n_obs, bn, &ylen) || nde__grad_grow_y(g, ylen))
    return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory for %d observations", n_obs);
  const nde__gmethod m = nde__grad_pick(g, gU0 != NULL);
  stats->method = gm_name(m);
  if (s->kind == NDE__KIND_CVODE) {
    nde_status st = nde__gcv_eval(g, m, theta, B, U0, n_obs, t_obs, loss, loss_ctx, L, gtheta,
                                  gU0, stats);
    if (Y && st == NDE_OK) memcpy(Y, g->Y, ylen * sizeof *Y);
    return st;
  }
  const nde__store_mode mode = m == NDE__GM_DISCRETE
                                   ? (g->opts.recompute ? NDE__STORE_STEPS : NDE__STORE_STAGES)
                               : m == NDE__GM_INTERP ? NDE__STORE_DENSE
                                                     : NDE__STORE_GRID;
  nde_status st = nde__solver_run(s, theta, B, U0, n_obs, t_obs, g->Y,
                                  (gtheta || gU0) ? mode : NDE__STORE_NONE, &stats->forward);
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  if (Y) memcpy(Y, g->Y, ylen * sizeof *Y);
  if (stats->forward.reason != NDE_REASON_NONE) {
    *L = NAN;
    nde__grad_nan(n_theta, bn, gtheta, gU0);
    return NDE_OK;
  }
  if (loss(loss_ctx, n_obs, B, g->n, g->Y, L, g->dLdY) != 0)
    return nde__errf(&g->err, NDE_ERR_NUMERIC, "the loss function failed");
  if (!gtheta && !gU0) return NDE_OK;
  if (m != NDE__GM_DISCRETE)
    return nde__adjoint_builtin(g, theta, B, n_obs, t_obs, gtheta, gU0, stats);
  /* gtheta may be NULL when only dL/dU0 is wanted; the VJP then skips the parameter part. */
  if (gtheta) memset(gtheta, 0, n_theta * sizeof *gtheta);
  st = discrete_backward(g, theta, B, n_obs, gtheta, &stats->n_vjp);
  if (st != NDE_OK) return st;
  if (gU0) memcpy(gU0, g->lam, bn * sizeof *gU0);
  return NDE_OK;
}
