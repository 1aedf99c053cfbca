/* Gradients through CVODE(S) 6.4 (Serban & Hindmarsh 2005, "CVODES: the sensitivity-enabled ODE
 * solver in SUNDIALS"):
 *   interp     CVODES's adjoint module: CVodeF stores checkpoints (Hermite interpolation of u
 *              between them; grad.c refuses the polynomial one); the backward problem lambda' = -df/du^T lambda
 *              with the quadrature mu' = -df/dtheta^T lambda (so mu(t_0) = dL/dtheta).  At every
 *              observation lambda jumps: CVodeReInitB AND CVodeQuadReInitB (CVodeReInitB alone
 *              keeps the stale quadrature and the gradient is silently wrong).
 *   backsolve  a second CVODE integrating (u, lambda) backward from t_{K-1}, mu as quadrature.
 *   forward    forward sensitivities s_j' = df/du s_j + df/dtheta_j (staggered corrector), and
 *              for dL/dU0 the B n sensitivities to the initial state; dL/dtheta_j =
 *              sum_k dL/dY_k . s_j(t_k).
 * The seminorm is the quadrature's error control switched off.  The backward right-hand side and
 * the quadrature are called separately at the same (t, u(t)): the network's forward pass (f's
 * cache) is kept keyed by (t, u) and each VJP asks only for the cotangent it needs. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sunlinsol/sunlinsol_band.h>
#include <sunlinsol/sunlinsol_spgmr.h>
#include <sunmatrix/sunmatrix_band.h>
#include <sunnonlinsol/sunnonlinsol_fixedpoint.h>
#include <sunnonlinsol/sunnonlinsol_newton.h>

#include "internal.h"
#include "solve/cvode_internal.h"

typedef struct nde__gcv {
  nde_grad *g;
  /* interp: the forward memory with the adjoint module and its backward problem */
  nde__cv fa;
  long fa_gen;
  int which;
  int adj_inited; /* CVodeAdjInit done on the current memory */
  int adj_ready;  /* the backward problem exists */
  N_Vector yB, qB;
  SUNMatrix AB;
  SUNLinearSolver LSB;
  SUNNonlinearSolver NLSB;
  /* forward: the memory with sensitivities */
  nde__cv fs;
  long fs_gen;
  int Ns;     /* sensitivities the memory was set up for (0: none) */
  N_Vector *yS;
  SUNNonlinearSolver NLSS;
  double *S;  /* n_obs x Ns x B n: sensitivities at the observation times */
  size_t s_cap;
  double *eth; /* P: unit tangent of theta */
  /* backsolve: CVODE on (u, lambda) with mu as quadrature */
  void *bmem;
  int bB;
  N_Vector zb, qb;
  SUNLinearSolver LSb;
  SUNNonlinearSolver NLSb;
  nde__cv *bcv; /* the adapter whose context and messages the backsolve memory shares */
  /* evaluation context */
  const double *theta;
  int B;
  size_t bn;
  /* the backward pass's current piece: the model is evaluated at t clamped to [tlo, thi] */
  double tlo, thi;
  /* interp with breakpoints: u at each breakpoint inside the solve (n_ubp x B n) */
  double *ubp;
  size_t ubp_cap, n_ubp;
  /* f's cache keyed by (t, u) */
  int key_valid;
  double key_t;
  double *key_u, *fcache, *fscratch;
  int vjp_code;
} nde__gcv;

/* ---- shared: the VJP at (t, u) with the network forward pass cached by (t, u) ---- */

static const double *cached_forward(nde__gcv *c, double t, const double *u, int *rc) {
  nde_grad *g = c->g;
  *rc = 0;
  if (!g->cache_per_row) return NULL;
  if (c->key_valid && c->key_t == t && memcmp(c->key_u, u, c->bn * sizeof *u) == 0)
    return c->fcache;
  *rc = nde_rhs_f(g->solver->rhs, t, c->B, u, c->theta, c->fscratch, c->fcache);
  if (*rc != 0) {
    c->key_valid = 0;
    return NULL;
  }
  memcpy(c->key_u, u, c->bn * sizeof *u);
  c->key_t = t;
  c->key_valid = 1;
  return c->fcache;
}

/* t clamped to the backward pass's current piece. */
static double bclamp(const nde__gcv *c, double t) {
  return t < c->tlo ? c->tlo : t > c->thi ? c->thi : t;
}

/* out = -(lam^T df/du) (gu) or -(lam^T df/dtheta) (gtheta); the other is skipped. */
static int neg_vjp(nde__cv *cv, nde__gcv *c, double t, const double *u, const double *lam,
                   double *gu, double *gth) {
  nde_grad *g = c->g;
  int rc;
  t = bclamp(c, t);
  const double *cache = cached_forward(c, t, u, &rc);
  if (rc != 0) return nde__cv_code(cv, rc, t);
  if (gu) memset(gu, 0, c->bn * sizeof *gu);
  if (gth) memset(gth, 0, g->P * sizeof *gth);
  rc = nde_rhs_vjp(g->solver->rhs, t, c->B, u, c->theta, lam, cache, gu, gth);
  if (rc != 0) return nde__cv_code(cv, rc, t);
  if (gu)
    for (size_t q = 0; q < c->bn; q++) gu[q] = -gu[q];
  if (gth)
    for (size_t i = 0; i < g->P; i++) gth[i] = -gth[i];
  if (gu && nde__first_nonfinite(c->bn, gu) >= 0) return nde__cv_code(cv, 1, t);
  return 0;
}

/* ---- interp: CVODES adjoint ---- */

static int fB(sunrealtype t, N_Vector y, N_Vector yB, N_Vector yBdot, void *data) {
  nde__gcv *c = data;
  return neg_vjp(&c->fa, c, t, N_VGetArrayPointer(y), N_VGetArrayPointer(yB),
                 N_VGetArrayPointer(yBdot), NULL);
}

static int fQB(sunrealtype t, N_Vector y, N_Vector yB, N_Vector qBdot, void *data) {
  nde__gcv *c = data;
  return neg_vjp(&c->fa, c, t, N_VGetArrayPointer(y), N_VGetArrayPointer(yB), NULL,
                 N_VGetArrayPointer(qBdot));
}

static int jacB(sunrealtype t, N_Vector y, N_Vector yB, N_Vector fyB, SUNMatrix JB, void *data,
                N_Vector t1, N_Vector t2, N_Vector t3) {
  (void)yB;
  (void)fyB;
  (void)t1;
  (void)t2;
  (void)t3;
  nde__gcv *c = data;
  return nde__cv_fill_band(&c->fa, bclamp(c, t), N_VGetArrayPointer(y), JB, 1);
}

static int jtimesB(N_Vector vB, N_Vector JvB, sunrealtype t, N_Vector y, N_Vector yB,
                   N_Vector fyB, void *data, N_Vector tmp) {
  (void)yB;
  (void)fyB;
  (void)tmp;
  nde__gcv *c = data;
  return neg_vjp(&c->fa, c, t, N_VGetArrayPointer(y), N_VGetArrayPointer(vB),
                 N_VGetArrayPointer(JvB), NULL);
}

static void free_adj(nde__gcv *c) {
  if (c->LSB) SUNLinSolFree(c->LSB);
  if (c->AB) SUNMatDestroy(c->AB);
  if (c->NLSB) SUNNonlinSolFree(c->NLSB);
  if (c->yB) N_VDestroy(c->yB);
  if (c->qB) N_VDestroy(c->qB);
  c->LSB = NULL;
  c->AB = NULL;
  c->NLSB = NULL;
  c->yB = c->qB = NULL;
  c->adj_ready = 0;
}

/* Create the backward problem on the current forward memory (after a rebuild). */
static nde_status setup_adj(nde__gcv *c, double T, double rtol, double atol) {
  nde_grad *g = c->g;
  nde__cv *cv = &c->fa;
  void *mem = cv->mem;
  free_adj(c);
  c->yB = N_VNew_Serial((sunindextype)c->bn, cv->ctx);
  c->qB = N_VNew_Serial((sunindextype)(g->P ? g->P : 1), cv->ctx);
  if (!c->yB || !c->qB) goto fail;
  N_VConst(0.0, c->yB);
  N_VConst(0.0, c->qB);
  if (CVodeCreateB(mem, cv->lmm, &c->which) != CV_SUCCESS) goto fail;
  nde__cv_quiet(cv, CVodeGetAdjCVodeBmem(mem, c->which));
  if (CVodeInitB(mem, c->which, fB, T, c->yB) != CV_SUCCESS) goto fail;
  CVodeSetUserDataB(mem, c->which, c);
  if (CVodeSStolerancesB(mem, c->which, rtol, atol) != CV_SUCCESS) goto fail;
  if (cv->lmm == CV_ADAMS) {
    /* The backward problem needs its own nonlinear solver. */
    c->NLSB = SUNNonlinSol_FixedPoint(c->yB, 0, cv->ctx);
    if (!c->NLSB || CVodeSetNonlinearSolverB(mem, c->which, c->NLSB) != CV_SUCCESS) goto fail;
  } else {
    c->NLSB = SUNNonlinSol_Newton(c->yB, cv->ctx);
    if (!c->NLSB || CVodeSetNonlinearSolverB(mem, c->which, c->NLSB) != CV_SUCCESS) goto fail;
    const int has_jvp = nde_rhs_has_jvp(g->solver->rhs);
    if (cv->gmres) {
      c->LSB = SUNLinSol_SPGMR(c->yB, SUN_PREC_NONE, 0, cv->ctx);
      if (!c->LSB || CVodeSetLinearSolverB(mem, c->which, c->LSB, NULL) != CV_SUCCESS) goto fail;
      CVodeSetJacTimesB(mem, c->which, NULL, jtimesB);
    } else {
      const sunindextype bw = g->n - 1;
      c->AB = SUNBandMatrix((sunindextype)c->bn, bw, bw, cv->ctx);
      if (!c->AB) goto fail;
      c->LSB = SUNLinSol_Band(c->yB, c->AB, cv->ctx);
      if (!c->LSB || CVodeSetLinearSolverB(mem, c->which, c->LSB, c->AB) != CV_SUCCESS) goto fail;
      if (has_jvp) CVodeSetJacFnB(mem, c->which, jacB);
    }
  }
  if (g->P) {
    if (CVodeQuadInitB(mem, c->which, fQB, c->qB) != CV_SUCCESS) goto fail;
    /* Quadrature error control needs quadrature tolerances; the seminorm switches it off. */
    CVodeQuadSStolerancesB(mem, c->which, rtol, atol);
    CVodeSetQuadErrConB(mem, c->which, g->opts.seminorm ? SUNFALSE : SUNTRUE);
  }
  c->adj_ready = 1;
  return NDE_OK;
fail:
  free_adj(c);
  return nde__errf(&g->err, NDE_ERR_INTERNAL, "setting up the CVODES backward problem failed: %s",
                   cv->msg);
}

/* The smallest step of a backward CVODE solve over [t0, T]: the solver's h_min, and at least a
 * few units of round-off in t.  CVODE would otherwise go on shrinking its step where the model
 * keeps failing (a boundary in time) until the step budget is used up; at this floor its error
 * test or nonlinear iteration fails instead, which is reported as a reason. */
static double min_step(const nde_solver *s, double t0, double T) {
  return fmax(s->opts.h_min, 16.0 * DBL_EPSILON * fmax(fabs(t0), fabs(T)));
}

static void backward_stats(void *bmem, nde_solve_stats *bs) {
  long v = 0;
  CVodeGetNumSteps(bmem, &v);
  bs->n_steps += v;
  CVodeGetNumErrTestFails(bmem, &v);
  bs->n_rejected += v;
  /* The step it was at (negative: backward in time), as the forward solve reports it; a stop
   * said "step size 0". */
  double h = 0;
  if (CVodeGetCurrentStep(bmem, &h) == CV_SUCCESS) bs->h_last = h;
}

/* Record the forward problem on the piece [a, b] from u_a under CVodeF (checkpoints for the
 * backward pass), with f evaluated within the piece: the pieces between breakpoints are
 * recorded one at a time because CVODES cannot re-initialise in the middle of a recording.
 * Its steps count towards the backward pass's budget and statistics. */
static nde_status record_piece(nde__gcv *c, double a, double b, const double *u_a,
                               nde_solve_stats *bs) {
  nde_grad *g = c->g;
  nde__cv *cv = &c->fa;
  const nde_solver *s = g->solver;
  nde_status st = NDE_OK;
  memcpy(N_VGetArrayPointer(cv->y), u_a, c->bn * sizeof *u_a);
  if (CVodeReInit(cv->mem, a, cv->y) != CV_SUCCESS || CVodeAdjReInit(cv->mem) != CV_SUCCESS)
    return nde__errf(&g->err, NDE_ERR_INTERNAL, "re-initialising CVODES at t = %.17g failed: %s",
                     a, cv->msg);
  CVodeSetStopTime(cv->mem, b);
  double t = a;
  while (t < b) {
    long nst = 0;
    CVodeGetNumSteps(cv->mem, &nst);
    if (bs->n_steps + nst >= s->opts.max_steps) {
      bs->reason = NDE_REASON_MAX_STEPS;
      break;
    }
    int ncheck = 0;
    const int flag = CVodeF(cv->mem, b, cv->y, &t, CV_ONE_STEP, &ncheck);
    if (flag < 0) {
      bs->reason = nde__cv_reason(cv, flag, &st);
      CVodeGetCurrentTime(cv->mem, &t);
      bs->t_stop = t;
      if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(g->solver));
      break;
    }
  }
  long nst = 0;
  CVodeGetNumSteps(cv->mem, &nst);
  bs->n_steps += nst;
  return NDE_OK;
}

/* The breakpoints strictly inside (t0, t1): indices [*i0, *i1) of s->bp. */
static void inner_breakpoints(const nde_solver *s, double t0, double t1, size_t *i0, size_t *i1) {
  *i0 = nde__bp_after(s, t0);
  *i1 = *i0;
  while (*i1 < s->n_bp && s->bp[*i1] < t1) (*i1)++;
}

/* The backward pass of interp.  Without breakpoints the forward pass recorded the whole solve;
 * with them (pieces = 1) it ran without recording, kept u at each breakpoint in c->ubp, and
 * each piece is recorded anew here, last piece first, before its backward pass. */
static nde_status interp_backward(nde__gcv *c, int n_obs, const double *t_obs, const double *U0,
                                  int pieces, double rtol, double atol, double *gtheta,
                                  double *gU0, nde_grad_stats *stats) {
  nde_grad *g = c->g;
  nde__cv *cv = &c->fa;
  const nde_solver *s = g->solver;
  const size_t bn = c->bn;
  nde_solve_stats *bs = &stats->backward;
  nde_status st = NDE_OK;
  const double t0 = t_obs[0], T = t_obs[n_obs - 1];
  size_t i0 = 0, i1 = 0;
  if (pieces) inner_breakpoints(s, t0, T, &i0, &i1);
  const long n_pieces = (long)(i1 - i0) + 1;
  double *lam = NULL, *mu = NULL;
  double t = T;
  int k = n_obs - 1;
  for (long p = n_pieces - 1; p >= 0 && bs->reason == NDE_REASON_NONE; p--) {
    const double a = p == 0 ? t0 : s->bp[i0 + (size_t)p - 1];
    const double b = p == n_pieces - 1 ? T : s->bp[i0 + (size_t)p];
    const nde__span piece = nde__piece_span(s, a, b);
    if (pieces) {
      /* The recomputations inside CVodeB must evaluate this piece's f too. */
      cv->tmin = piece.lo;
      cv->tmax = piece.hi;
      st = record_piece(c, a, b, p == 0 ? U0 : c->ubp + (size_t)(p - 1) * bn, bs);
      if (st != NDE_OK || bs->reason != NDE_REASON_NONE) break;
    }
    if (!c->adj_ready) {
      /* Created lazily so that CVodeInitB sees the recorded final time. */
      st = setup_adj(c, b, rtol, atol);
      if (st != NDE_OK) break;
    }
    void *mem = cv->mem;
    void *bmem = CVodeGetAdjCVodeBmem(mem, c->which);
    if (!lam) {
      lam = N_VGetArrayPointer(c->yB);
      mu = N_VGetArrayPointer(c->qB);
      memcpy(lam, g->dLdY + (size_t)(n_obs - 1) * bn, bn * sizeof *lam);
      N_VConst(0.0, c->qB);
    }
    /* Both re-initialisations at every restart: CVodeReInitB does not reset the quadrature. */
    if (CVodeReInitB(mem, c->which, b, c->yB) != CV_SUCCESS ||
        (g->P && CVodeQuadReInitB(mem, c->which, c->qB) != CV_SUCCESS)) {
      st = nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeReInitB failed: %s", cv->msg);
      break;
    }
    cv->cb_code = 0;
    cv->n_recov = 0;
    CVodeSetMinStepB(mem, c->which, min_step(s, t0, T));
    /* Backward through the piece, node by node (observation times: lambda jumps), with a cold
     * restart at each.  CVodeB may step past a node and interpolate back: the model is
     * evaluated at times clamped to the piece, so such a step sees the piece's f continued. */
    for (double tb = b;;) {
      const double ta = t_obs[k - 1] > a ? t_obs[k - 1] : a;
      const nde__span span = nde__piece_span(s, ta, tb);
      c->tlo = span.lo;
      c->thi = span.hi;
      c->key_valid = 0;
      const long left = s->opts.max_steps - bs->n_steps;
      if (left <= 0) {
        bs->reason = NDE_REASON_MAX_STEPS;
        break;
      }
      CVodeSetMaxNumStepsB(mem, c->which, left);
      int flag = CVodeB(mem, ta, CV_NORMAL);
      backward_stats(bmem, bs);
      if (flag < 0) {
        /* CVodeGetB after a failed CVodeB returns stale data with success: stop here. */
        bs->reason = nde__cv_reason(cv, flag, &st);
        CVodeGetCurrentTime(bmem, &t);
        if (st != NDE_OK)
          st = nde__errf(&g->err, st, "%s", nde_solver_errmsg(g->solver));
        else if (bs->reason == NDE_REASON_NONE)
          bs->reason = NDE_REASON_NEWTON_FAILED;
        break;
      }
      if (CVodeGetB(mem, c->which, &t, c->yB) != CV_SUCCESS ||
          (g->P && CVodeGetQuadB(mem, c->which, &t, c->qB) != CV_SUCCESS)) {
        st = nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeGetB failed: %s", cv->msg);
        break;
      }
      if (ta == t_obs[k - 1]) {
        k--;
        if (k == 0) break; /* dL/dY_0 = dL/dU0 directly: added below */
        const double *d = g->dLdY + (size_t)k * bn;
        for (size_t q = 0; q < bn; q++) lam[q] += d[q];
      }
      if (ta == a) break;
      if (CVodeReInitB(mem, c->which, ta, c->yB) != CV_SUCCESS ||
          (g->P && CVodeQuadReInitB(mem, c->which, c->qB) != CV_SUCCESS)) {
        st = nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeReInitB failed: %s", cv->msg);
        break;
      }
      tb = ta;
    }
    if (st != NDE_OK) break;
  }
  cv->tmin = c->tlo = -INFINITY;
  cv->tmax = c->thi = INFINITY;
  bs->t_stop = t;
  if (st != NDE_OK) return st;
  if (bs->reason != NDE_REASON_NONE) {
    nde__grad_nan(g->P, bn, gtheta, gU0);
    return NDE_OK;
  }
  if (gtheta) memcpy(gtheta, mu, g->P * sizeof *gtheta);
  if (gU0)
    for (size_t q = 0; q < bn; q++) gU0[q] = lam[q] + g->dLdY[q];
  return NDE_OK;
}

/* ---- backsolve: CVODE on z = (u, lambda), mu as quadrature ---- */

static int bs_rhs(sunrealtype t, N_Vector z, N_Vector zdot, void *data) {
  nde__gcv *c = data;
  nde_grad *g = c->g;
  const double *u = N_VGetArrayPointer(z);
  double *du = N_VGetArrayPointer(zdot);
  int rc;
  t = bclamp(c, t);
  cached_forward(c, t, u, &rc);
  if (rc != 0) return nde__cv_code(c->bcv, rc, t);
  if (g->cache_per_row) {
    memcpy(du, c->fscratch, c->bn * sizeof *du);
  } else {
    rc = nde_rhs_f(g->solver->rhs, t, c->B, u, c->theta, du, NULL);
    if (rc != 0) return nde__cv_code(c->bcv, rc, t);
  }
  if (nde__first_nonfinite(c->bn, du) >= 0) return nde__cv_code(c->bcv, 1, t);
  return neg_vjp(c->bcv, c, t, u, u + c->bn, du + c->bn, NULL);
}

static int bs_quad(sunrealtype t, N_Vector z, N_Vector qdot, void *data) {
  nde__gcv *c = data;
  const double *u = N_VGetArrayPointer(z);
  return neg_vjp(c->bcv, c, t, u, u + c->bn, NULL, N_VGetArrayPointer(qdot));
}

static void free_bs(nde__gcv *c) {
  if (c->bmem) CVodeFree(&c->bmem);
  if (c->LSb) SUNLinSolFree(c->LSb);
  if (c->NLSb) SUNNonlinSolFree(c->NLSb);
  if (c->zb) N_VDestroy(c->zb);
  if (c->qb) N_VDestroy(c->qb);
  c->bmem = NULL;
  c->LSb = NULL;
  c->NLSb = NULL;
  c->zb = c->qb = NULL;
  c->bB = 0;
}

static nde_status setup_bs(nde__gcv *c, double T, double rtol, double atol) {
  nde_grad *g = c->g;
  nde__cv *cv = c->bcv;
  free_bs(c);
  c->zb = N_VNew_Serial((sunindextype)(2 * c->bn), cv->ctx);
  c->qb = N_VNew_Serial((sunindextype)(g->P ? g->P : 1), cv->ctx);
  if (!c->zb || !c->qb) goto fail;
  N_VConst(0.0, c->zb);
  N_VConst(0.0, c->qb);
  c->bmem = CVodeCreate(cv->lmm, cv->ctx);
  if (!c->bmem) goto fail;
  nde__cv_quiet(cv, c->bmem);
  if (CVodeInit(c->bmem, bs_rhs, T, c->zb) != CV_SUCCESS) goto fail;
  CVodeSetUserData(c->bmem, c);
  if (CVodeSStolerances(c->bmem, rtol, atol) != CV_SUCCESS) goto fail;
  if (cv->lmm == CV_ADAMS) {
    c->NLSb = SUNNonlinSol_FixedPoint(c->zb, 0, cv->ctx);
    if (!c->NLSb || CVodeSetNonlinearSolver(c->bmem, c->NLSb) != CV_SUCCESS) goto fail;
  } else {
    /* The augmented Jacobian needs second derivatives of f: matrix-free GMRES with CVODE's
     * difference-quotient products. */
    c->LSb = SUNLinSol_SPGMR(c->zb, SUN_PREC_NONE, 0, cv->ctx);
    if (!c->LSb || CVodeSetLinearSolver(c->bmem, c->LSb, NULL) != CV_SUCCESS) goto fail;
  }
  if (g->P) {
    if (CVodeQuadInit(c->bmem, bs_quad, c->qb) != CV_SUCCESS) goto fail;
    CVodeQuadSStolerances(c->bmem, rtol, atol);
    CVodeSetQuadErrCon(c->bmem, g->opts.seminorm ? SUNFALSE : SUNTRUE);
  }
  c->bB = c->B;
  return NDE_OK;
fail:
  free_bs(c);
  return nde__errf(&g->err, NDE_ERR_INTERNAL, "setting up the CVODE backsolve failed: %s",
                   cv->msg);
}

static nde_status backsolve_backward(nde__gcv *c, int n_obs, const double *t_obs, double rtol,
                                     double atol, double *gtheta, double *gU0,
                                     nde_grad_stats *stats) {
  nde_grad *g = c->g;
  nde__cv *cv = c->bcv;
  const size_t bn = c->bn;
  nde_solve_stats *bs = &stats->backward;
  const double T = t_obs[n_obs - 1];
  nde_status st = NDE_OK;
  if (!c->bmem || c->bB != c->B) {
    st = setup_bs(c, T, rtol, atol);
    if (st != NDE_OK) return st;
  }
  double *z = N_VGetArrayPointer(c->zb), *mu = N_VGetArrayPointer(c->qb);
  memcpy(z, g->Y + (size_t)(n_obs - 1) * bn, bn * sizeof *z);
  memcpy(z + bn, g->dLdY + (size_t)(n_obs - 1) * bn, bn * sizeof *z);
  N_VConst(0.0, c->qb);
  cv->cb_code = 0;
  cv->n_recov = 0;
  c->key_valid = 0;
  double t = T;
  /* Backward through the pieces between observation times and breakpoints, with a stop time
   * and a re-initialisation at each node. */
  const nde_solver *s = g->solver;
  const double t0 = t_obs[0];
  double tb = T;
  long ibp = (long)nde__bp_after(s, tb) - 1;
  if (ibp >= 0 && s->bp[ibp] == tb) ibp--;
  int k = n_obs - 1;
  for (;;) {
    const double bp = ibp >= 0 && s->bp[ibp] > t0 ? s->bp[ibp] : -INFINITY;
    const double ta = t_obs[k - 1] > bp ? t_obs[k - 1] : bp;
    const nde__span span = nde__piece_span(s, ta, tb);
    c->tlo = span.lo;
    c->thi = span.hi;
    c->key_valid = 0;
    if (CVodeReInit(c->bmem, tb, c->zb) != CV_SUCCESS ||
        (g->P && CVodeQuadReInit(c->bmem, c->qb) != CV_SUCCESS))
      return nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeReInit failed: %s", cv->msg);
    CVodeSetStopTime(c->bmem, ta);
    CVodeSetMinStep(c->bmem, min_step(s, t0, T));
    const long left = s->opts.max_steps - bs->n_steps;
    if (left <= 0) {
      bs->reason = NDE_REASON_MAX_STEPS;
      break;
    }
    CVodeSetMaxNumSteps(c->bmem, left);
    int flag = CVode(c->bmem, ta, c->zb, &t, CV_NORMAL);
    backward_stats(c->bmem, bs);
    if (flag < 0) {
      bs->reason = nde__cv_reason(cv, flag, &st);
      if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(g->solver));
      break;
    }
    if (g->P && CVodeGetQuad(c->bmem, &t, c->qb) != CV_SUCCESS)
      return nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeGetQuad failed: %s", cv->msg);
    if (ta == t0) break;
    if (ta == t_obs[k - 1]) {
      k--;
      const double *d = g->dLdY + (size_t)k * bn;
      for (size_t q = 0; q < bn; q++) z[bn + q] += d[q];
    }
    if (ta == bp) ibp--;
    tb = ta;
  }
  c->tlo = -INFINITY;
  c->thi = INFINITY;
  bs->t_stop = t;
  if (bs->reason != NDE_REASON_NONE) {
    nde__grad_nan(g->P, bn, gtheta, gU0);
    return NDE_OK;
  }
  if (gtheta) memcpy(gtheta, mu, g->P * sizeof *gtheta);
  if (gU0)
    for (size_t q = 0; q < bn; q++) gU0[q] = z[bn + q] + g->dLdY[q];
  return NDE_OK;
}

/* ---- forward sensitivities ---- */

static int sens_rhs(int Ns, sunrealtype t, N_Vector y, N_Vector ydot, N_Vector *yS,
                    N_Vector *ySdot, void *data, N_Vector t1, N_Vector t2) {
  (void)ydot;
  (void)t1;
  (void)t2;
  nde__cv *cv = data;
  nde__gcv *c = cv->hctx;
  nde_grad *g = c->g;
  for (int j = 0; j < Ns; j++) {
    const int is_theta = (size_t)j < g->P;
    if (is_theta) c->eth[j] = 1.0;
    int rc = nde_rhs_jvp(g->solver->rhs, t, c->B, N_VGetArrayPointer(y), c->theta,
                         N_VGetArrayPointer(yS[j]), is_theta ? c->eth : NULL,
                         N_VGetArrayPointer(ySdot[j]));
    if (is_theta) c->eth[j] = 0.0;
    if (rc != 0) return nde__cv_code(cv, rc, t);
    /* A non-finite sensitivity derivative is a recoverable failure, as a non-finite f is. */
    if (nde__first_nonfinite(c->bn, N_VGetArrayPointer(ySdot[j])) >= 0)
      return nde__cv_code(cv, 1, t);
  }
  return 0;
}

static int sens_hook(nde__cv *cv, int k, double tk, void *hctx) {
  nde__gcv *c = hctx;
  const size_t bn = c->bn;
  double *Sk = c->S + (size_t)k * (size_t)c->Ns * bn;
  for (int j = 0; j < c->Ns; j++) {
    N_Vector v = N_VMake_Serial((sunindextype)bn, Sk + (size_t)j * bn, cv->ctx);
    if (!v) return -1;
    int flag = CVodeGetSensDky1(cv->mem, tk, 0, j, v);
    N_VDestroy(v);
    if (flag != CV_SUCCESS) return -1;
  }
  return 0;
}

/* At a breakpoint: read the sensitivities before the forward memory is re-initialised, and
 * re-initialise them with it after. */
static int sens_restart(nde__cv *cv, double tb, int after, void *hctx) {
  nde__gcv *c = hctx;
  double t = tb;
  if (!after) return CVodeGetSens(cv->mem, &t, c->yS) == CV_SUCCESS ? 0 : -1;
  return CVodeSensReInit(cv->mem, CV_STAGGERED, c->yS) == CV_SUCCESS ? 0 : -1;
}

/* At a breakpoint of an interp forward pass run piece by piece: keep u there. */
static int keep_state(nde__cv *cv, double tb, int after, void *hctx) {
  (void)tb;
  nde__gcv *c = hctx;
  if (!after) memcpy(c->ubp + c->n_ubp++ * c->bn, N_VGetArrayPointer(cv->y), c->bn * sizeof(double));
  return 0;
}

static void free_sens(nde__gcv *c) {
  if (c->yS) N_VDestroyVectorArray(c->yS, c->Ns);
  if (c->NLSS) SUNNonlinSolFree(c->NLSS);
  c->yS = NULL;
  c->NLSS = NULL;
  c->Ns = 0;
}

static nde_status setup_sens(nde__gcv *c, int Ns) {
  nde_grad *g = c->g;
  nde__cv *cv = &c->fs;
  if (c->Ns) CVodeSensFree(cv->mem);
  free_sens(c);
  c->yS = N_VCloneVectorArray(Ns, cv->y);
  if (!c->yS) goto fail;
  c->Ns = Ns;
  for (int j = 0; j < Ns; j++) N_VConst(0.0, c->yS[j]);
  if (CVodeSensInit(cv->mem, Ns, CV_STAGGERED, sens_rhs, c->yS) != CV_SUCCESS) goto fail;
  CVodeSensEEtolerances(cv->mem);
  CVodeSetSensErrCon(cv->mem, SUNTRUE);
  if (cv->lmm == CV_ADAMS)
    c->NLSS = SUNNonlinSol_FixedPointSens(Ns, cv->y, 0, cv->ctx);
  else
    c->NLSS = SUNNonlinSol_NewtonSens(Ns, cv->y, cv->ctx);
  if (!c->NLSS || CVodeSetNonlinearSolverSensStg(cv->mem, c->NLSS) != CV_SUCCESS) goto fail;
  return NDE_OK;
fail:
  free_sens(c);
  return nde__errf(&g->err, NDE_ERR_INTERNAL, "setting up forward sensitivities failed: %s",
                   cv->msg);
}

/* ---- the evaluator ---- */

nde_status nde__gcv_create(nde_grad *g) {
  nde_solver *s = g->solver;
  nde__gcv *c = calloc(1, sizeof *c);
  if (!c) return NDE_ERR_NOMEM;
  g->cv = c;
  c->g = g;
  nde_status st = nde__cv_init(&c->fa, s);
  if (st == NDE_OK) st = nde__cv_init(&c->fs, s);
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  c->bcv = &c->fa;
  c->tlo = -INFINITY;
  c->thi = INFINITY;
  const size_t bn = (size_t)s->max_batch * (size_t)g->n;
  c->key_u = nde__dalloc(bn);
  c->fscratch = nde__dalloc(bn);
  c->fcache = nde__dalloc((size_t)s->max_batch * (g->cache_per_row ? g->cache_per_row : 1));
  c->eth = nde__dalloc(g->P);
  if (!c->key_u || !c->fscratch || !c->fcache || !c->eth)
    return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory creating the CVODES gradient");
  return NDE_OK;
}

void nde__gcv_destroy(nde_grad *g) {
  nde__gcv *c = g->cv;
  if (!c) return;
  /* The CVODES memories first: they reference the solver objects freed after them. */
  if (c->bmem) CVodeFree(&c->bmem);
  if (c->fa.mem) CVodeFree(&c->fa.mem);
  if (c->fs.mem) CVodeFree(&c->fs.mem);
  free_bs(c);
  free_adj(c);
  free_sens(c);
  nde__cv_free(&c->fa);
  nde__cv_free(&c->fs);
  free(c->S);
  free(c->ubp);
  free(c->key_u);
  free(c->fscratch);
  free(c->fcache);
  free(c->eth);
  free(c);
  g->cv = NULL;
}

nde_status nde__gcv_eval(nde_grad *g, nde__gmethod m, const double *theta, int B,
                         const double *U0, int n_obs, const double *t_obs, nde_loss_fn loss,
                         void *loss_ctx, double *L, double *gtheta, double *gU0,
                         nde_grad_stats *stats) {
  nde_solver *s = g->solver;
  nde__gcv *c = g->cv;
  const size_t bn = (size_t)B * (size_t)g->n;
  nde_status st = nde__solve_check_args(s, theta, B, U0, n_obs, t_obs, g->Y);
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  stats->forward.bad_row = stats->forward.bad_state = -1;
  const int want = gtheta || gU0;
  const double rtol = g->opts.rtol > 0 ? g->opts.rtol : s->opts.rtol;
  const double atol = g->opts.atol > 0 ? g->opts.atol : s->opts.atol;
  c->theta = theta;
  c->B = B;
  c->bn = bn;
  c->key_valid = 0;
  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  /* Forward. */
  nde__cv *cv = m == NDE__GM_FORWARD ? &c->fs : &c->fa;
  st = nde__cv_prepare(cv, B, theta, t_obs[0], U0);
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  int adj = 0, pieces = 0;
  cv->obs_hook = NULL;
  if (want && m == NDE__GM_INTERP) {
    if (c->fa_gen != cv->generation) {
      free_adj(c); /* the memory was rebuilt: its adjoint module went with it */
      c->adj_inited = 0;
      c->fa_gen = cv->generation;
    }
    if (c->adj_inited && CVodeAdjReInit(cv->mem) != CV_SUCCESS)
      return nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeAdjReInit failed: %s", cv->msg);
    if (!c->adj_inited) {
      if (CVodeAdjInit(cv->mem, g->opts.checkpoint_steps, CV_HERMITE) != CV_SUCCESS)
        return nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeAdjInit failed: %s", cv->msg);
      c->adj_inited = 1;
    }
    size_t i0, i1;
    inner_breakpoints(s, t_obs[0], t_obs[n_obs - 1], &i0, &i1);
    pieces = i1 > i0;
    if (pieces) {
      /* Run without recording, keeping u at each breakpoint (see interp_backward). */
      size_t need;
      if (!nde__mul_size(i1 - i0, bn, &need) || nde__grow(&c->ubp, &c->ubp_cap, need))
        return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory for %zu breakpoints", i1 - i0);
      c->n_ubp = 0;
      cv->restart_hook = keep_state;
      cv->hctx = c;
    }
    adj = !pieces;
  } else if (m == NDE__GM_FORWARD) {
    if (c->fs_gen != cv->generation) {
      free_sens(c); /* the memory was rebuilt: its sensitivities went with it */
      c->fs_gen = cv->generation;
    }
    if (want) {
      const int Ns = (int)g->P + (gU0 ? (int)bn : 0);
      size_t need = (size_t)n_obs * (size_t)Ns * bn;
      if (nde__grow(&c->S, &c->s_cap, need ? need : 1))
        return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory for %d sensitivities", Ns);
      if (Ns != c->Ns) {
        st = setup_sens(c, Ns);
        if (st != NDE_OK) return st;
      }
      for (int j = 0; j < Ns; j++) {
        N_VConst(0.0, c->yS[j]);
        if ((size_t)j >= g->P) N_VGetArrayPointer(c->yS[j])[(size_t)j - g->P] = 1.0;
      }
      if (CVodeSensReInit(cv->mem, CV_STAGGERED, c->yS) != CV_SUCCESS)
        return nde__errf(&g->err, NDE_ERR_INTERNAL, "CVodeSensReInit failed: %s", cv->msg);
      cv->obs_hook = sens_hook;
      cv->restart_hook = sens_restart;
      cv->hctx = c;
      CVodeSetUserData(cv->mem, cv);
    } else if (c->Ns) {
      CVodeSensToggleOff(cv->mem);
    }
  }
  memcpy(g->Y, U0, bn * sizeof *g->Y);
  int k_done = 0;
  if (n_obs > 1) st = nde__cv_march(cv, adj, n_obs, t_obs, g->Y, &stats->forward, &k_done);
  cv->obs_hook = NULL;
  cv->restart_hook = NULL;
  for (int k = k_done + 1; k < n_obs; k++)
    for (size_t q = 0; q < bn; q++) g->Y[(size_t)k * bn + q] = NAN;
  const nde_rhs_counts c1 = nde_rhs_get_counts(s->rhs);
  stats->forward.n_rhs = c1.f - c0.f;
  stats->forward.n_jvp = c1.jvp - c0.jvp;
  if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
  if (stats->forward.reason != NDE_REASON_NONE) {
    *L = NAN;
    nde__grad_nan(g->P, bn, gtheta, gU0);
    return NDE_OK;
  }
  if (loss(loss_ctx, n_obs, B, g->n, g->Y, L, g->dLdY) != 0)
    return nde__errf(&g->err, NDE_ERR_NUMERIC, "the loss function failed");
  if (!want) return NDE_OK;
  /* A non-finite loss has no gradient (see nde_grad_eval). */
  if (!isfinite(*L)) {
    nde__grad_nan(g->P, bn, gtheta, gU0);
    return NDE_OK;
  }
  /* Backward. */
  if (m == NDE__GM_INTERP) {
    st = interp_backward(c, n_obs, t_obs, U0, pieces, rtol, atol, gtheta, gU0, stats);
  } else if (m == NDE__GM_BACKSOLVE) {
    st = backsolve_backward(c, n_obs, t_obs, rtol, atol, gtheta, gU0, stats);
  } else {
    const int Ns = c->Ns;
    if (gtheta) memset(gtheta, 0, g->P * sizeof *gtheta);
    if (gU0) memcpy(gU0, g->dLdY, bn * sizeof *gU0);
    for (int k = 1; k < n_obs; k++) {
      const double *d = g->dLdY + (size_t)k * bn, *Sk = c->S + (size_t)k * (size_t)Ns * bn;
      for (int j = 0; j < Ns; j++) {
        double acc = 0.0;
        const double *Skj = Sk + (size_t)j * bn;
        for (size_t q = 0; q < bn; q++) acc += d[q] * Skj[q];
        if ((size_t)j < g->P) {
          if (gtheta) gtheta[j] = gtheta[j] + acc;
        } else {
          gU0[(size_t)j - g->P] += acc;
        }
      }
    }
  }
  const nde_rhs_counts c2 = nde_rhs_get_counts(s->rhs);
  stats->backward.n_rhs = c2.f - c1.f;
  stats->backward.n_jvp = c2.jvp - c1.jvp;
  stats->n_vjp = c2.vjp - c1.vjp;
  return st;
}
