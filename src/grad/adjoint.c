/* The built-in continuous adjoint (Chen et al. 2018, "Neural Ordinary Differential Equations"):
 * backward from t_{K-1} to t_0,
 *   u' = f(t, u),   lambda' = -lambda^T df/du,   mu' = -lambda^T df/dtheta,
 * with lambda(t_k) += dL/dY_k at every observation; mu(t_0) = dL/dtheta, lambda(t_0) = dL/dU0.
 * "backsolve" integrates z = (u, lambda, mu); "interp" integrates z = (lambda, mu) with u(t)
 * from the forward dense output.  Fixed-step methods retrace their forward grid: explicit
 * Runge-Kutta methods with the same tableau, splitting methods with the same composition on the
 * augmented system, which splits again for q' = F(p), p' = G(q): (q, lambda_p, mu_F) moves with
 * F and lambda_q (drifts), (p, lambda_q, mu_G) with G and lambda_p (kicks).  dopri5 integrates
 * adaptively and keeps its step size and controller state across the observation jumps and
 * breakpoints, re-evaluating only the first stage after each.  With the seminorm (Kidger et al.
 * 2021) mu is left out of the error norm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

nde_status nde__adjoint_builtin_init(nde_grad *g) {
  nde_solver *s = g->solver;
  size_t bn, N, sN;
  const int slots = s->tab && s->tab->s > 3 ? s->tab->s : 3; /* splitting: f, L, gU */
  if (!nde__mul_size((size_t)s->max_batch, (size_t)g->n, &bn) ||
      !nde__add_size(2 * bn, g->P, &N) || !nde__mul_size(N, (size_t)slots, &sN))
    return NDE_ERR_NOMEM;
  if (s->kind == NDE__KIND_ADAPTIVE) {
    if (nde__adapt_init(&g->adapt, s->tab, N) != NDE_OK) return NDE_ERR_NOMEM;
  } else {
    g->K = nde__dalloc(sN);
    g->Z = nde__dalloc(sN);
    g->znew = nde__dalloc(N);
    if (!g->K || !g->Z || !g->znew) return NDE_ERR_NOMEM;
  }
  g->z = nde__dalloc(N);
  g->ubuf = nde__dalloc(bn);
  g->fc = nde__dalloc((size_t)s->max_batch * (g->cache_per_row ? g->cache_per_row : 1));
  g->fcu = nde__dalloc(bn);
  g->fcf = nde__dalloc(bn);
  if (!g->z || !g->ubuf || !g->fc || !g->fcu || !g->fcf) return NDE_ERR_NOMEM;
  return NDE_OK;
}

void nde__adjoint_builtin_free(nde_grad *g) {
  nde__adapt_free(&g->adapt);
  free(g->K);
  free(g->Z);
  free(g->znew);
  free(g->z);
  free(g->ubuf);
  free(g->fc);
  free(g->fcu);
  free(g->fcf);
}

typedef struct adj_sys {
  nde_grad *g;
  const double *theta;
  int B;
  size_t bn;
  int backsolve;
  int want_theta;
  long cursor; /* dense-store step hint */
  int fail_code;
  const nde__adapt *ad; /* the adaptive driver (NULL under fixed steps) */
  unsigned mu_skip;     /* stages whose mu part no later computation reads */
  int jump_follows;     /* lambda jumps at the end of the current interval */
  int fc_valid;         /* g->fc holds f's cache at (fc_t, g->fcu); backsolve: g->fcf is f */
  double fc_t;
  nde__span span;       /* the current piece (nde__clamp_t) */
} adj_sys;

/* dz = F(t, z) of the augmented backward system.  z holds -mu rather than mu (the sign is put
 * back at the end), which saves negating the parameter cotangent at every stage. */
static int adj_F(void *ctx, int stage, double t, const double *z, double *dz) {
  adj_sys *a = ctx;
  nde_grad *g = a->g;
  nde_solver *s = g->solver;
  const size_t bn = a->bn;
  t = nde__clamp_t(t, a->span);
  const int last_stage = s->tab ? s->tab->s - 1 : -1;
  const double *u, *lam;
  double *dlam, *dmu;
  const double *cache = NULL;
  int want_mu = a->want_theta && !(stage >= 0 && (a->mu_skip >> stage & 1u));
  /* The FSAL stage of a step that ends on an observation is re-evaluated after the jump, and
   * f's cache is kept for that.  Its mu part is read only by the step's error estimate: with the
   * seminorm by nothing, without it by the error of mu (so it must be computed). */
  const int keep = g->cache_per_row && a->ad && s->tab->fsal && stage == last_stage &&
                   a->ad->in_last_step && a->jump_follows;
  if (keep && g->opts.seminorm) want_mu = 0;
  if (a->backsolve) {
    u = z;
    lam = z + bn;
    dlam = dz + bn;
    dmu = dz + 2 * bn;
    if (g->cache_per_row && stage == 0 && a->fc_valid && t == a->fc_t &&
        memcmp(u, g->fcu, bn * sizeof *u) == 0) {
      memcpy(dz, g->fcf, bn * sizeof *dz);
    } else {
      /* f and the VJP at the same point: f's cache saves the VJP its forward pass. */
      int rc = nde_rhs_f(s->rhs, t, a->B, u, a->theta, dz, g->cache_per_row ? g->fc : NULL);
      if (rc != 0) return rc;
      a->fc_valid = 0;
      if (keep) {
        memcpy(g->fcu, u, bn * sizeof *u);
        memcpy(g->fcf, dz, bn * sizeof *dz);
        a->fc_t = t;
        a->fc_valid = 1;
      }
    }
    if (g->cache_per_row) cache = g->fc;
  } else {
    nde__traj_dense_eval(&s->traj, bn, t, &a->cursor, g->ubuf);
    u = g->ubuf;
    lam = z;
    dlam = dz;
    dmu = dz + bn;
    if (keep) {
      int rc = nde_rhs_f(s->rhs, t, a->B, u, a->theta, dlam, g->fc);
      if (rc != 0) return rc;
      memcpy(g->fcu, u, bn * sizeof *u);
      a->fc_t = t;
      a->fc_valid = 1;
      cache = g->fc;
    } else if (stage == 0 && a->fc_valid && t == a->fc_t &&
               memcmp(u, g->fcu, bn * sizeof *u) == 0) {
      cache = g->fc;
    }
  }
  memset(dlam, 0, bn * sizeof *dlam);
  if (want_mu) memset(dmu, 0, g->P * sizeof *dmu);
  int rc = nde_rhs_vjp(s->rhs, t, a->B, u, a->theta, lam, cache, dlam, want_mu ? dmu : NULL);
  if (rc != 0) return rc;
  for (size_t q = 0; q < bn; q++) dlam[q] = -dlam[q];
  return 0;
}

/* One op of a splitting method on the augmented backward system z = (u, lambda, -mu) with the
 * coefficient c (already times the negative step): f and the VJP at the current u, then
 * u_X += c f_X, lambda_Y -= VJP(c lambda_X)_Y and -mu += its theta part, where X is the moved
 * half (p for a kick, q for a drift) and Y the other. */
static int split_adj_op(adj_sys *a, double t, unsigned char moved, double c, double *z) {
  nde_grad *g = a->g;
  nde_solver *s = g->solver;
  const int n = g->n;
  const size_t bn = a->bn;
  double *u = z, *lam = z + bn, *mu = z + 2 * bn;
  double *F = g->K, *L = g->K + bn, *gU = g->K + 2 * bn;
  const double *cache = g->cache_per_row ? g->fc : NULL;
  t = nde__clamp_t(t, a->span);
  int rc = nde_rhs_f(s->rhs, t, a->B, u, a->theta, F, g->cache_per_row ? g->fc : NULL);
  if (rc != 0) return rc;
  for (int b = 0; b < a->B; b++)
    for (int i = 0; i < n; i++) {
      const size_t q = (size_t)b * n + i;
      L[q] = s->is_p[i] == moved ? c * lam[q] : 0.0;
    }
  memset(gU, 0, bn * sizeof *gU);
  rc = nde_rhs_vjp(s->rhs, t, a->B, u, a->theta, L, cache, gU, a->want_theta ? mu : NULL);
  if (rc != 0) return rc;
  for (int b = 0; b < a->B; b++)
    for (int i = 0; i < n; i++) {
      const size_t q = (size_t)b * n + i;
      if (s->is_p[i] == moved)
        u[q] += c * F[q];
      else
        lam[q] -= gU[q];
    }
  return 0;
}

/* A splitting method's step [t, t + h] backward on the augmented system: the same composition
 * with step -h from t + h. */
static int split_adj_step(adj_sys *a, double t, double h, double *z) {
  const nde__split *sp = a->g->solver->method->split;
  const double T = t + h, H = -h;
  double tk[NDE__SPLIT_MAX + 1], td[NDE__SPLIT_MAX + 1];
  nde__split_times(sp, T, H, tk, td);
  int rc = split_adj_op(a, tk[0], 1, sp->kick[0] * H, z);
  for (int i = 1; i <= sp->m && rc == 0; i++) {
    rc = split_adj_op(a, td[i], 0, sp->drift[i] * H, z);
    if (rc == 0) rc = split_adj_op(a, tk[i], 1, sp->kick[i] * H, z);
  }
  return rc;
}

nde_status nde__adjoint_builtin(nde_grad *g, const double *theta, int B, int n_obs,
                                const double *t_obs, double *gtheta, double *gU0,
                                nde_grad_stats *stats) {
  nde_solver *s = g->solver;
  const nde__traj *tr = &s->traj;
  const size_t bn = (size_t)B * (size_t)g->n;
  const int backsolve = tr->mode != NDE__STORE_DENSE;
  const int want_theta = gtheta != NULL;
  const size_t off = backsolve ? bn : 0; /* where lambda starts in z */
  const size_t N = off + bn + (want_theta ? g->P : 0);
  adj_sys sys = {g,  theta, B, bn, backsolve, want_theta, tr->n_steps - 1, 0, NULL, 0u, 0, 0,
                 0.0, NDE__SPAN_ALL};
  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  nde_solve_stats *bs = &stats->backward;
  double *z = g->z;
  double *lam = z + off, *mu = z + off + bn;
  if (backsolve) memcpy(z, g->Y + (size_t)(n_obs - 1) * bn, bn * sizeof *z);
  memcpy(lam, g->dLdY + (size_t)(n_obs - 1) * bn, bn * sizeof *lam);
  if (want_theta) memset(mu, 0, g->P * sizeof *mu);
  int rc = 0;
  bs->t_stop = t_obs[n_obs - 1];
  if (s->kind == NDE__KIND_ADAPTIVE) {
    nde_solver_opts o = s->opts;
    if (g->opts.rtol > 0) o.rtol = g->opts.rtol;
    if (g->opts.atol > 0) o.atol = g->opts.atol;
    o.h0 = 0.0;
    nde__adapt *a = &g->adapt;
    nde__adapt_begin(a, N, g->opts.seminorm ? off + bn : N, &o, 0);
    a->N_dep = off + bn; /* mu is a quadrature */
    sys.ad = a;
    /* With the seminorm a stage without weight in the step or its error is read by nothing but
     * lambda's stage inputs (dopri5's second). */
    if (g->opts.seminorm)
      for (int j = 0; j < s->tab->s - (s->tab->fsal ? 1 : 0); j++)
        if (s->tab->b[j] == 0.0 && s->tab->e[j] == 0.0) sys.mu_skip |= 1u << j;
    /* Backward through the pieces between the nodes: observation times (lambda jumps) and
     * breakpoints (f jumps).  After each node the first stage is evaluated anew and the step
     * size is kept. */
    const double t0 = t_obs[0];
    double tb = t_obs[n_obs - 1];
    long ibp = (long)nde__bp_after(s, tb) - 1; /* the last breakpoint <= tb */
    if (ibp >= 0 && s->bp[ibp] == tb) ibp--;
    int k = n_obs - 1;
    for (;;) {
      const double bp = ibp >= 0 && s->bp[ibp] > t0 ? s->bp[ibp] : -INFINITY;
      const double ta = t_obs[k - 1] > bp ? t_obs[k - 1] : bp;
      sys.span = nde__piece_span(s, ta, tb);
      sys.jump_follows = ta > t0;
      rc = nde__adapt_run(a, adj_F, &sys, NULL, NULL, tb, ta, z);
      bs->t_stop = a->t_stop;
      bs->h_last = a->h_last;
      if (rc != 0 || a->reason != NDE_REASON_NONE || ta == t0) break;
      if (ta == t_obs[k - 1]) {
        k--;
        const double *d = g->dLdY + (size_t)k * bn;
        for (size_t q = 0; q < bn; q++) lam[q] += d[q];
      }
      if (ta == bp) ibp--;
      /* lambda or f jumped: the first stage is re-evaluated, the step size is kept. */
      a->k1_valid = 0;
      tb = ta;
    }
    bs->n_steps = a->n_steps;
    bs->n_rejected = a->n_rejected;
    bs->reason = rc == 0 ? a->reason : NDE_REASON_NONE;
    if (a->bad_index >= 0) {
      bs->bad_row = (int)((a->bad_index % bn) / (size_t)g->n);
      bs->bad_state = (int)(a->bad_index % g->n);
    }
  } else {
    /* Fixed steps: the forward grid in reverse, with the same tableau. */
    const int ns = s->ns_run;
    if (s->tab)
      for (int j = 0; j < ns; j++)
        if (s->tab->b[j] == 0.0) sys.mu_skip |= 1u << j;
    for (long j = tr->n_steps - 1; j >= 0 && rc == 0; j--) {
      const double t1 = tr->t[j] + tr->h[j];
      if (tr->obs_end[j] >= 0 && tr->obs_end[j] != n_obs - 1) {
        const double *d = g->dLdY + (size_t)tr->obs_end[j] * bn;
        for (size_t q = 0; q < bn; q++) lam[q] += d[q];
      }
      sys.span = tr->span[j];
      if (s->method->family == NDE__FAM_SPLIT)
        rc = split_adj_step(&sys, tr->t[j], tr->h[j], z);
      else
        rc = nde__erk_step(s->tab, ns, N, adj_F, &sys, t1, -tr->h[j], z, 0, g->K, g->Z, z);
      bs->n_steps++;
      bs->t_stop = tr->t[j];
      bs->h_last = -tr->h[j];
      if (rc == 0 && nde__first_nonfinite(N, z) >= 0) bs->reason = NDE_REASON_NONFINITE;
      if (bs->reason != NDE_REASON_NONE) break;
    }
    if (rc > 0) bs->reason = NDE_REASON_RHS_RECOVERABLE;
  }
  const nde_rhs_counts c1 = nde_rhs_get_counts(s->rhs);
  bs->n_rhs = c1.f - c0.f;
  stats->n_vjp = c1.vjp - c0.vjp;
  if (rc < 0)
    return nde__errf(&g->err, NDE_ERR_CALLBACK,
                     "right-hand side returned fatal code %d in the backward solve near t = %.17g",
                     rc, bs->t_stop);
  if (bs->reason != NDE_REASON_NONE) {
    nde__grad_nan(g->P, bn, gtheta, gU0);
    return NDE_OK;
  }
  if (gU0) {
    for (size_t q = 0; q < bn; q++) gU0[q] = lam[q] + g->dLdY[q];
  }
  if (gtheta)
    for (size_t i = 0; i < g->P; i++) gtheta[i] = -mu[i];
  return NDE_OK;
}
