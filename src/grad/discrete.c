/* The discrete adjoint: backpropagation through the steps a built-in solve took, the exact
 * gradient of the discretised loss.
 *
 * Explicit Runge-Kutta (u' = u + h sum_i b_i K_i, K_i = f(t + c_i h, U_i), U_i = u + h sum_{j<i}
 * a_ij K_j): with lambda the cotangent of u',
 *   Kbar_i = h b_i lambda + h sum_{m>i} a_mi Ubar_m + W_i,   Ubar_i = Kbar_i^T df/du(U_i),
 *   thetabar += Kbar_i^T df/dtheta(U_i),                      lambda <- lambda + sum_i Ubar_i,
 * taken for i = s..1 and the steps in reverse; dL/dY_k is added to lambda at each observation at
 * a step's end, and an observation inside a step, Y_k = u + h sum_i bth_i(theta_k) K_i (dopri5's
 * continuous extension), adds W_i = h bth_i dL/dY_k and dL/dY_k to the step's start cotangent.
 *
 * Splitting methods (K_0 D_1 K_1 ... D_m K_m): a kick p += c h f(t_k, U)_p has the adjoint
 * lambda += VJP(U; c h lambda_p) and a drift q += d h f(t_d, U)_q has lambda += VJP(U; d h
 * lambda_q), taken in reverse.  A first kick that reused the previous step's last f (FSAL) is
 * linear in the same f: its cotangent is added to that step's last kick, one VJP for both.
 *
 * Implicit midpoint (u' = 2 w - u, w = u + (h/2) f(t + h/2, w)): with M = I - (h/2) J(w),
 * dw/du = M^-1, so ubar = 2 M^-T lambda - lambda and thetabar += (h/2) (M^-T 2 lambda)^T
 * df/dtheta.  M^T y = 2 lambda is solved with the forward pass's LU factors of M at the last
 * Newton iterate, refined by y += M_LU^-T (2 lambda - M(w)^T y) with M(w)^T y from VJPs at the
 * converged w until the residual is at round-off (Golub & Van Loan, iterative refinement). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model/rhs_internal.h"

/* Refinement iterations of the transposed Newton system before the backward pass stops. */
#define NDE__REFINE_MAX 8

/* ---- explicit Runge-Kutta ---- */

/* Backward pass through one recorded step: lam (B x n) enters as the cotangent of the step's end
 * state and leaves as that of its start state; gtheta accumulates.  With dense, W holds the
 * stage cotangents of the observations inside the step. */
static NDE__ALWAYS_INLINE int erk_step_back_n(nde_grad *g, const double *theta, int B,
                                               size_t bn, double t, double h,
                                               const nde__span *span, const double *U,
                                               const double *cache, int dense, double *gtheta) {
  nde_solver *s = g->solver;
  const nde__tableau *tab = s->tab;
  const nde__erk_plan *p = &s->plan;
  nde_rhs *rhs = s->rhs;
  const int ns = s->ns_run, S = tab->s;
  const size_t bc = (size_t)B * g->cache_per_row;
  const double lo = span->lo, hi = span->hi;
  /* With a finite h, the terms h a_mi Ubar_m whose a_mi is zero are skipped by the test of the
   * product below whether or not they are visited: only the tableau's non-zero pattern is.
   * (A non-finite h visits every m, as h * 0 is then NaN.) */
  const int finite_h = isfinite(h);
  double *Ki = g->Kbar, *lam = g->lam;
  for (int i = ns - 1; i >= 0; i--) {
    double *Ui_bar = g->Ubar + (size_t)i * bn;
    if (!p->live[i] && !dense) {
      /* No path from this stage to anything observed (dopri5's FSAL stage without an output
       * inside the step): its cotangent is zero. */
      memset(Ui_bar, 0, bn * sizeof *Ui_bar);
      continue;
    }
    /* Kbar_i = wb lam (+ W_i) + a_{i+1} Ubar_{i+1} + ... in that order, element by element. */
    double a[NDE__MAX_STAGES];
    const double *Um[NDE__MAX_STAGES];
    int na = 0;
    if (finite_h) {
      for (int l = 0; l < p->nc[i]; l++) {
        const int m = p->cm[i][l];
        const double ami = h * tab->A[m * S + i];
        if (ami == 0.0) continue;
        a[na] = ami;
        Um[na++] = g->Ubar + (size_t)m * bn;
      }
    } else {
      for (int m = i + 1; m < ns; m++) {
        const double ami = h * tab->A[m * S + i];
        if (ami == 0.0) continue;
        a[na] = ami;
        Um[na++] = g->Ubar + (size_t)m * bn;
      }
    }
    const double wb = h * tab->b[i];
    const double *Wi = dense ? g->W + (size_t)i * bn : NULL;
    if (Wi)
      NDE__ACC_LOOP(na, bn, a, Um, Ki[q], , wb * lam[q] + Wi[q]);
    else
      NDE__ACC_LOOP(na, bn, a, Um, Ki[q], , wb * lam[q]);
    for (size_t q = 0; q < bn; q++) Ui_bar[q] = 0.0;
    const double ti = t + tab->c[i] * h;
    int rc = nde__rhs_vjp(rhs, nde__clamp_t(ti, (nde__span){lo, hi}), B, U + (size_t)i * bn,
                          theta, Ki, cache ? cache + (size_t)i * bc : NULL, Ui_bar, gtheta);
    if (rc != 0) return rc;
  }
  /* lam += Ubar_0 + ... in that order, element by element. */
  const double *Ub = g->Ubar;
  for (size_t q = 0; q < bn; q++) {
    double v = lam[q];
    for (int i = 0; i < ns; i++) v += Ub[(size_t)i * bn + q];
    lam[q] = v;
  }
  return 0;
}

/* Backward pass through one recorded step (erk_step_back_n), with the loops over the bn
 * unknowns unrolled for small bn. */
static int erk_step_back(nde_grad *g, const double *theta, int B, double t, double h,
                         const nde__span *span, const double *U, const double *cache, int dense,
                         double *gtheta) {
  const size_t bn = (size_t)B * (size_t)g->n;
  switch (bn) {
    case 1: return erk_step_back_n(g, theta, B, 1, t, h, span, U, cache, dense, gtheta);
    case 2: return erk_step_back_n(g, theta, B, 2, t, h, span, U, cache, dense, gtheta);
    case 3: return erk_step_back_n(g, theta, B, 3, t, h, span, U, cache, dense, gtheta);
    case 4: return erk_step_back_n(g, theta, B, 4, t, h, span, U, cache, dense, gtheta);
    default: return erk_step_back_n(g, theta, B, bn, t, h, span, U, cache, dense, gtheta);
  }
}

/* ---- splitting methods ---- */

/* lam += VJP at evaluation slot `slot` of the step with cotangent c * lam on the components of
 * kind which (1: p, kicks; 0: q, drifts), plus extra (p only, may be NULL). */
static int split_vjp(nde_grad *g, const double *theta, int B, double t, const double *U,
                     const double *cache, int slot, unsigned char which, double c,
                     const double *extra, double *gtheta) {
  nde_solver *s = g->solver;
  const int n = g->n;
  const size_t bn = (size_t)B * (size_t)n, bc = (size_t)B * g->cache_per_row;
  double *L = g->Kbar, *gU = g->Ubar;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < n; i++) {
      const size_t q = (size_t)b * n + i;
      L[q] = s->is_p[i] == which ? c * g->lam[q] : 0.0;
      if (extra) L[q] += extra[q];
    }
  memset(gU, 0, bn * sizeof *gU);
  int rc = nde_rhs_vjp(s->rhs, t, B, U + (size_t)slot * bn, theta, L,
                       cache ? cache + (size_t)slot * bc : NULL, gU, gtheta);
  if (rc != 0) return rc;
  for (size_t q = 0; q < bn; q++) g->lam[q] += gU[q];
  return 0;
}

/* Backward through one step of a splitting method; g->pend carries a deferred first kick. */
static int split_step_back(nde_grad *g, const double *theta, int B, double t, double h,
                           nde__span span, const double *U, const double *cache, int fresh,
                           double *gtheta) {
  const nde__split *sp = g->solver->method->split;
  const size_t bn = (size_t)B * (size_t)g->n;
  double tk[NDE__SPLIT_MAX + 1], td[NDE__SPLIT_MAX + 1];
  nde__split_times(sp, t, h, tk, td);
  for (int i = sp->m; i >= 1; i--) {
    int rc = split_vjp(g, theta, B, nde__clamp_t(tk[i], span), U, cache, 2 * i, 1,
                       sp->kick[i] * h, i == sp->m ? g->pend : NULL, gtheta);
    if (rc != 0) return rc;
    rc = split_vjp(g, theta, B, nde__clamp_t(td[i], span), U, cache, 2 * i - 1, 0,
                   sp->drift[i] * h, NULL, gtheta);
    if (rc != 0) return rc;
  }
  if (fresh) {
    memset(g->pend, 0, bn * sizeof *g->pend);
    return split_vjp(g, theta, B, nde__clamp_t(tk[0], span), U, cache, 0, 1, sp->kick[0] * h,
                     NULL, gtheta);
  }
  /* The first kick used the previous step's last f: its VJP joins that one. */
  const int n = g->n;
  const double c = sp->kick[0] * h;
  for (int b = 0; b < B; b++)
    for (int i = 0; i < n; i++) {
      const size_t q = (size_t)b * n + i;
      g->pend[q] = g->solver->is_p[i] ? c * g->lam[q] : 0.0;
    }
  return 0;
}

/* ---- implicit midpoint ---- */

/* Backward through one implicit-midpoint step whose store holds w, the LU factors and pivots.
 * Returns the VJP's code; *failed = 1 when the refinement did not converge, 2 when the VJP gave
 * non-finite values. */
static int midpoint_step_back(nde_grad *g, const double *theta, int B, double t, double h,
                              const double *store, double *gtheta, int *failed) {
  nde_solver *s = g->solver;
  const int n = g->n;
  const size_t bn = (size_t)B * (size_t)n;
  const double c = 0.5 * h, tm = t + 0.5 * h;
  const double *w = store, *LU = store + bn, *piv = store + bn + bn * (size_t)n;
  double *rhs = g->Ubar, *y = g->Ubar + bn, *r = g->Ubar + 2 * bn, *JTy = g->Kbar;
  *failed = 0;
  double bmax = 0.0;
  for (size_t q = 0; q < bn; q++) {
    rhs[q] = 2.0 * g->lam[q];
    bmax = fmax(bmax, fabs(rhs[q]));
  }
  nde__midpoint_solve_t(B, n, LU, piv, rhs, y);
  for (int it = 0;; it++) {
    if (it >= NDE__REFINE_MAX) {
      *failed = 1;
      return 0;
    }
    memset(JTy, 0, bn * sizeof *JTy);
    if (gtheta) memset(g->gtmp, 0, g->P * sizeof *g->gtmp);
    int rc = nde_rhs_vjp(s->rhs, tm, B, w, theta, y, NULL, JTy, gtheta ? g->gtmp : NULL);
    if (rc != 0) return rc;
    if (nde__first_nonfinite(bn, JTy) >= 0 ||
        (gtheta && nde__first_nonfinite(g->P, g->gtmp) >= 0)) {
      *failed = 2;
      return 0;
    }
    double rmax = 0.0, scale = bmax;
    for (size_t q = 0; q < bn; q++) {
      r[q] = rhs[q] - y[q] + c * JTy[q];
      rmax = fmax(rmax, fabs(r[q]));
      scale = fmax(scale, fmax(fabs(y[q]), fabs(c * JTy[q])));
    }
    if (rmax <= 16.0 * DBL_EPSILON * scale) break;
    /* y += M_LU^-T r (r's storage is free again once the correction is formed). */
    nde__midpoint_solve_t(B, n, LU, piv, r, JTy);
    for (size_t q = 0; q < bn; q++) y[q] += JTy[q];
  }
  for (size_t q = 0; q < bn; q++) g->lam[q] = y[q] - g->lam[q];
  if (gtheta)
    for (size_t i = 0; i < g->P; i++) gtheta[i] += c * g->gtmp[i];
  return 0;
}

/* ---- the backward sweep ---- */

nde_status nde__discrete_backward(nde_grad *g, const double *theta, int B, int n_obs,
                                  double *gtheta, nde_grad_stats *stats) {
  nde_solver *s = g->solver;
  const nde__traj *tr = &s->traj;
  const nde__tableau *tab = s->tab;
  const nde__family fam = s->method->family;
  const int ns = s->ns_run;
  const size_t bn = (size_t)B * (size_t)g->n;
  nde_solve_stats *bs = &stats->backward;
  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  memset(g->lam, 0, bn * sizeof *g->lam);
  if (g->pend) memset(g->pend, 0, bn * sizeof *g->pend);
  nde_status st = NDE_OK;
  int k = n_obs - 1;
  bs->t_stop = tr->n_steps > 0 ? tr->t[tr->n_steps - 1] + tr->h[tr->n_steps - 1] : 0.0;
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
    int fresh = tr->fresh[j];
    if (tr->mode == NDE__STORE_STAGES) {
      U = tr->U + (size_t)j * tr->u_len;
      if (tr->c_len) cache = tr->cache + (size_t)j * tr->c_len;
    } else {
      /* Recompute step j from its stored start state (a splitting method's first kick then
       * evaluates f itself). */
      const double *u0 = tr->U + (size_t)j * tr->u_len;
      int rc, newton_failed = 0;
      double *cst = g->cache_per_row ? g->cst : NULL;
      if (fam == NDE__FAM_SPLIT) {
        memcpy(g->utmp, u0, bn * sizeof *u0);
        s->g_valid = 0;
        rc = nde__split_step(s, theta, tr->t[j], h, tr->span[j], B, g->utmp, g->Ust, cst, &fresh);
      } else if (fam == NDE__FAM_IMPLICIT) {
        rc = nde__midpoint_step(s, theta, tr->t[j], h, B, u0, g->utmp, g->Ust, &newton_failed);
        cst = NULL;
      } else {
        rc = nde__rk_step(s, theta, tr->t[j], h, &tr->span[j], B, u0, g->utmp, g->Ust, cst);
      }
      if (rc < 0) {
        st = nde__errf(&g->err, NDE_ERR_CALLBACK,
                       "right-hand side returned fatal code %d recomputing the step at "
                       "t = %.17g",
                       rc, tr->t[j]);
        break;
      }
      if (rc > 0 || newton_failed) {
        bs->reason = rc > 0 ? NDE_REASON_RHS_RECOVERABLE : NDE_REASON_NEWTON_FAILED;
        bs->t_stop = tr->t[j] + h;
        break;
      }
      U = g->Ust;
      cache = cst;
    }
    int rc, failed = 0;
    if (fam == NDE__FAM_SPLIT)
      rc = split_step_back(g, theta, B, tr->t[j], h, tr->span[j], U, cache, fresh, gtheta);
    else if (fam == NDE__FAM_IMPLICIT)
      rc = midpoint_step_back(g, theta, B, tr->t[j], h, U, gtheta, &failed);
    else
      rc = erk_step_back(g, theta, B, tr->t[j], h, &tr->span[j], U, cache, dense, gtheta);
    bs->h_last = -h;
    if (rc < 0) {
      st = nde__errf(&g->err, NDE_ERR_CALLBACK,
                     "right-hand side VJP returned fatal code %d at t = %.17g", rc, tr->t[j]);
      break;
    }
    if (rc > 0 || failed) {
      bs->reason = rc > 0        ? NDE_REASON_RHS_RECOVERABLE
                   : failed == 2 ? NDE_REASON_NONFINITE
                                 : NDE_REASON_NEWTON_FAILED;
      bs->t_stop = tr->t[j] + h;
      break;
    }
    if (dense) {
      /* Observations of this step read Y_k = u + ...: their cotangents reach u directly. */
      for (int kk = k + 1; kk < n_obs && tr->obs_step[kk] == j; kk++) {
        if (tr->obs_theta[kk] == 1.0) continue;
        const double *d = g->dLdY + (size_t)kk * bn;
        for (size_t q = 0; q < bn; q++) g->lam[q] += d[q];
      }
    }
    bs->n_steps++;
    bs->t_stop = tr->t[j];
    const long bad = nde__first_nonfinite_fast(bn, g->lam);
    if (bad >= 0) {
      bs->reason = NDE_REASON_NONFINITE;
      bs->bad_row = (int)(bad / g->n);
      bs->bad_state = (int)(bad % g->n);
      break;
    }
  }
  const nde_rhs_counts c1 = nde_rhs_get_counts(s->rhs);
  bs->n_rhs = c1.f - c0.f;
  stats->n_vjp = c1.vjp - c0.vjp;
  if (st != NDE_OK || bs->reason != NDE_REASON_NONE) return st;
  for (size_t q = 0; q < bn; q++) g->lam[q] += g->dLdY[q];
  return NDE_OK;
}
