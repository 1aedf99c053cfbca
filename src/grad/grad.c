/* Gradient evaluator: runs the forward solve with the store its method needs, evaluates the loss
 * and runs the method's backward pass.
 *
 * Discrete adjoint of an explicit Runge-Kutta step (u' = u + h sum_i b_i K_i,
 * K_i = f(t + c_i h, U_i), U_i = u + h sum_{j<i} a_ij K_j): with lambda the cotangent of u',
 *   Kbar_i = h b_i lambda + h sum_{m>i} a_mi Ubar_m,   Ubar_i = Kbar_i^T df/du(U_i),
 *   thetabar += Kbar_i^T df/dtheta(U_i),               lambda <- lambda + sum_i Ubar_i,
 * taken for i = s..1 and the steps in reverse; dL/dY_k is added to lambda at each observation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nde/grad.h"
#include "solve/internal.h"

struct nde_grad {
  nde_solver *solver;
  nde_grad_opts opts;
  nde__err err;
  int n, ns;
  size_t cache_per_row;
  double *Y, *dLdY;
  size_t y_cap;
  double *lam;  /* max_batch x n */
  double *Ubar; /* s x max_batch x n */
  double *Kbar; /* max_batch x n */
  double *Ust;  /* recompute: s x max_batch x n stage inputs */
  double *cst;  /* recompute: s x max_batch x cache_per_row */
  double *utmp; /* recompute: max_batch x n */
};

nde_grad_opts nde_grad_opts_default(void) {
  nde_grad_opts o;
  memset(&o, 0, sizeof o);
  o.method = "discrete";
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
  free(g->Ust);
  free(g->cst);
  free(g->utmp);
  free(g);
  *gp = NULL;
}

const char *nde_grad_errmsg(const nde_grad *g) { return nde__err_msg(g ? &g->err : NULL); }

nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out) {
  nde_status st = NDE_ERR_NOMEM;
  if (!out) return NDE_ERR_ARG;
  *out = NULL;
  if (!solver) return NDE_ERR_ARG;
  nde_grad *g = calloc(1, sizeof *g);
  if (!g) return NDE_ERR_NOMEM;
  g->solver = solver;
  g->opts = opts ? *opts : nde_grad_opts_default();
  if (!g->opts.method || strcmp(g->opts.method, "discrete") != 0) {
    st = nde__errf(&g->err, NDE_ERR_ARG, "unknown gradient method '%s' (expected discrete)",
                   g->opts.method ? g->opts.method : "(null)");
    goto fail;
  }
  g->n = solver->n;
  g->ns = solver->tab->s;
  g->cache_per_row = solver->cache_per_row;
  size_t bn, sbn, sbc;
  if (!nde__mul_size((size_t)solver->max_batch, (size_t)g->n, &bn) ||
      !nde__mul_size(bn, (size_t)g->ns, &sbn) ||
      !nde__mul_size((size_t)solver->max_batch * (size_t)g->ns, g->cache_per_row, &sbc))
    goto fail;
  g->lam = nde__dalloc(bn);
  g->Kbar = nde__dalloc(bn);
  g->Ubar = nde__dalloc(sbn);
  if (!g->lam || !g->Kbar || !g->Ubar) goto fail;
  if (g->opts.recompute) {
    g->Ust = nde__dalloc(sbn);
    g->cst = nde__dalloc(sbc);
    g->utmp = nde__dalloc(bn);
    if (!g->Ust || !g->cst || !g->utmp) goto fail;
  }
  *out = g;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__errf(&g->err, st, "out of memory creating the gradient evaluator");
  {
    nde_status keep = st;
    nde_grad_destroy(&g);
    return keep;
  }
}

/* Backward pass through one recorded step: lam (B x n) enters as the cotangent of the step's end
 * state and leaves as that of its start state; gtheta accumulates. */
static int discrete_step_back(nde_grad *g, const double *theta, int B, double t, double h,
                              const double *U, const double *cache, double *gtheta) {
  nde_solver *s = g->solver;
  const nde__tableau *tab = s->tab;
  const int ns = tab->s;
  const size_t bn = (size_t)B * (size_t)g->n;
  const size_t bc = (size_t)B * g->cache_per_row;
  for (int i = ns - 1; i >= 0; i--) {
    double *Ki = g->Kbar;
    const double wb = h * tab->b[i];
    for (size_t q = 0; q < bn; q++) Ki[q] = wb * g->lam[q];
    for (int m = i + 1; m < ns; m++) {
      const double a = h * tab->A[m * ns + i];
      if (a == 0.0) continue;
      const double *Um = g->Ubar + (size_t)m * bn;
      for (size_t q = 0; q < bn; q++) Ki[q] += a * Um[q];
    }
    double *Ui_bar = g->Ubar + (size_t)i * bn;
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
  const size_t bn = (size_t)B * (size_t)g->n;
  const long v0 = nde_rhs_get_counts(s->rhs).vjp;
  memset(g->lam, 0, bn * sizeof *g->lam);
  for (long j = tr->n_steps - 1; j >= 0; j--) {
    if (tr->obs_end[j] >= 0) {
      const double *d = g->dLdY + (size_t)tr->obs_end[j] * bn;
      for (size_t q = 0; q < bn; q++) g->lam[q] += d[q];
    }
    const double *U, *cache = NULL;
    if (tr->mode == NDE__STORE_STAGES) {
      U = tr->U + (size_t)j * tr->u_len;
      if (tr->c_len) cache = tr->cache + (size_t)j * tr->c_len;
    } else {
      /* Recompute the stages of step j from its stored start state. */
      int rc = nde__rk_step(s, theta, tr->t[j], tr->h[j], B, tr->U + (size_t)j * tr->u_len,
                            g->utmp, g->Ust, g->cache_per_row ? g->cst : NULL);
      if (rc != 0)
        return nde__errf(&g->err, NDE_ERR_CALLBACK,
                         "right-hand side failed (code %d) recomputing step at t = %.17g", rc,
                         tr->t[j]);
      U = g->Ust;
      if (g->cache_per_row) cache = g->cst;
    }
    int rc = discrete_step_back(g, theta, B, tr->t[j], tr->h[j], U, cache, gtheta);
    if (rc != 0)
      return nde__errf(&g->err, NDE_ERR_CALLBACK,
                       "right-hand side VJP failed (code %d) at t = %.17g", rc, tr->t[j]);
  }
  (void)n_obs;
  for (size_t q = 0; q < bn; q++) g->lam[q] += g->dLdY[q];
  *n_vjp = nde_rhs_get_counts(s->rhs).vjp - v0;
  return NDE_OK;
}

static int grow_y(nde_grad *g, size_t need) {
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

nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats) {
  nde_grad_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  if (!g) return NDE_ERR_ARG;
  if (!loss || !L || n_obs < 1 || B < 1)
    return nde__errf(&g->err, NDE_ERR_ARG, "gradient needs a loss, L, n_obs >= 1 and B >= 1");
  nde_solver *s = g->solver;
  const size_t n_theta = nde_rhs_get_info(s->rhs)->n_theta;
  const size_t bn = (size_t)B * (size_t)g->n;
  size_t ylen;
  if (!nde__mul_size((size_t)n_obs, bn, &ylen) || grow_y(g, ylen))
    return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory for %d observations", n_obs);
  nde_status st = nde__solver_run(s, theta, B, U0, n_obs, t_obs, g->Y,
                                  g->opts.recompute ? NDE__STORE_STEPS : NDE__STORE_STAGES,
                                  &stats->forward);
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  if (Y) memcpy(Y, g->Y, ylen * sizeof *Y);
  if (stats->forward.reason != NDE_REASON_NONE) {
    *L = NAN;
    if (gtheta)
      for (size_t i = 0; i < n_theta; i++) gtheta[i] = NAN;
    if (gU0)
      for (size_t q = 0; q < bn; q++) gU0[q] = NAN;
    return NDE_OK;
  }
  if (loss(loss_ctx, n_obs, B, g->n, g->Y, L, g->dLdY) != 0)
    return nde__errf(&g->err, NDE_ERR_NUMERIC, "the loss function failed");
  if (!gtheta && !gU0) return NDE_OK;
  /* gtheta may be NULL when only dL/dU0 is wanted; the VJP then skips the parameter part. */
  if (gtheta) memset(gtheta, 0, n_theta * sizeof *gtheta);
  st = discrete_backward(g, theta, B, n_obs, gtheta, &stats->n_vjp);
  if (st != NDE_OK) return st;
  if (gU0) memcpy(gU0, g->lam, bn * sizeof *gU0);
  return NDE_OK;
}
