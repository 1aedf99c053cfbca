/* The CVODE adapter: SUNDIALS CVODES 6.4 (Hindmarsh et al. 2005; Serban & Hindmarsh 2005) on the
 * model's batched right-hand side.  Adams-Moulton with fixed-point iteration; BDF with Newton
 * iteration, whose linear systems I - gamma J are block-diagonal (one n x n block per batch
 * row): either a band matrix of half-bandwidth n-1 filled column by column from n batched JVPs
 * (J e_j for every row at once), or matrix-free GMRES with one JVP per Krylov iteration.
 * Callback codes are translated explicitly (0 ok, > 0 recoverable, < 0 fatal). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sunlinsol/sunlinsol_band.h>
#include <sunlinsol/sunlinsol_spgmr.h>
#include <sunmatrix/sunmatrix_band.h>
#include <sunnonlinsol/sunnonlinsol_fixedpoint.h>

#include "cvode_internal.h"

int nde__cv_code(nde__cv *cv, int rc, double t) {
  if (rc == 0) return 0;
  if (rc > 0) {
    cv->n_recov++;
    return 1;
  }
  if (cv->cb_code == 0) {
    cv->cb_code = rc;
    cv->cb_t = t;
  }
  return -1;
}

static void err_handler(int code, const char *module, const char *function, char *msg,
                        void *data) {
  nde__cv *cv = data;
  if (code == CV_WARNING) return;
  snprintf(cv->msg, sizeof cv->msg, "%s: %s: %s", module ? module : "CVODES",
           function ? function : "", msg ? msg : "");
}

void nde__cv_quiet(nde__cv *cv, void *mem) { CVodeSetErrHandlerFn(mem, err_handler, cv); }

/* du/dt = f(t, u): non-finite values are reported to CVODE as recoverable. */
static int cv_rhs(sunrealtype t, N_Vector y, N_Vector ydot, void *data) {
  nde__cv *cv = data;
  nde_solver *s = cv->s;
  double *dy = N_VGetArrayPointer(ydot);
  int rc = nde_rhs_f(s->rhs, nde__cv_t(cv, t), cv->B, N_VGetArrayPointer(y), cv->theta, dy, NULL);
  if (rc == 0) {
    long bad = nde__first_nonfinite((size_t)cv->B * (size_t)s->n, dy);
    if (bad >= 0) {
      if (cv->bad_index < 0) cv->bad_index = bad;
      cv->n_recov++;
      return 1;
    }
  }
  return nde__cv_code(cv, rc, t);
}

/* The block-diagonal Jacobian: column j of every block from one batched JVP with V = e_j in
 * every row.  With transpose, the blocks of -J^T (the adjoint's Jacobian) are written instead. */
int nde__cv_fill_band(nde__cv *cv, double t, const double *u, SUNMatrix J, int transpose) {
  nde_solver *s = cv->s;
  const int n = s->n, B = cv->B;
  const size_t bn = (size_t)B * (size_t)n;
  SUNMatZero(J);
  t = nde__cv_t(cv, t);
  for (int j = 0; j < n; j++) {
    memset(cv->V, 0, bn * sizeof *cv->V);
    for (int b = 0; b < B; b++) cv->V[(size_t)b * n + j] = 1.0;
    int rc = nde_rhs_jvp(s->rhs, t, B, u, cv->theta, cv->V, NULL, cv->JV);
    if (rc != 0) return nde__cv_code(cv, rc, t);
    if (nde__first_nonfinite(bn, cv->JV) >= 0) return nde__cv_code(cv, 1, t);
    for (int b = 0; b < B; b++)
      for (int i = 0; i < n; i++) {
        const sunindextype r = (sunindextype)b * n + i, c = (sunindextype)b * n + j;
        if (transpose)
          SM_ELEMENT_B(J, c, r) = -cv->JV[(size_t)b * n + i];
        else
          SM_ELEMENT_B(J, r, c) = cv->JV[(size_t)b * n + i];
      }
  }
  return 0;
}

static int cv_jac(sunrealtype t, N_Vector y, N_Vector fy, SUNMatrix J, void *data, N_Vector t1,
                  N_Vector t2, N_Vector t3) {
  (void)fy;
  (void)t1;
  (void)t2;
  (void)t3;
  return nde__cv_fill_band(data, t, N_VGetArrayPointer(y), J, 0);
}

static int cv_jtimes(N_Vector v, N_Vector Jv, sunrealtype t, N_Vector y, N_Vector fy, void *data,
                     N_Vector tmp) {
  (void)fy;
  (void)tmp;
  nde__cv *cv = data;
  int rc = nde_rhs_jvp(cv->s->rhs, nde__cv_t(cv, t), cv->B, N_VGetArrayPointer(y), cv->theta,
                       N_VGetArrayPointer(v), NULL, N_VGetArrayPointer(Jv));
  return nde__cv_code(cv, rc, t);
}

nde_status nde__cv_attach_linsol(nde__cv *cv, void *mem, int B, N_Vector y, SUNMatrix *A,
                                 SUNLinearSolver *LS, int transpose) {
  nde_solver *s = cv->s;
  const int has_jvp = nde_rhs_has_jvp(s->rhs);
  if (cv->gmres) {
    *LS = SUNLinSol_SPGMR(y, SUN_PREC_NONE, 0, cv->ctx);
    if (!*LS || CVodeSetLinearSolver(mem, *LS, NULL) != CV_SUCCESS) return NDE_ERR_NOMEM;
    if (has_jvp && !transpose) CVodeSetJacTimes(mem, NULL, cv_jtimes);
    return NDE_OK;
  }
  const sunindextype N = (sunindextype)B * s->n, bw = s->n - 1;
  *A = SUNBandMatrix(N, bw, bw, cv->ctx);
  if (!*A) return NDE_ERR_NOMEM;
  *LS = SUNLinSol_Band(y, *A, cv->ctx);
  if (!*LS || CVodeSetLinearSolver(mem, *LS, *A) != CV_SUCCESS) return NDE_ERR_NOMEM;
  if (has_jvp && !transpose) CVodeSetJacFn(mem, cv_jac);
  return NDE_OK;
}

nde_status nde__cv_init(nde__cv *cv, nde_solver *s) {
  memset(cv, 0, sizeof *cv);
  cv->s = s;
  cv->bad_index = -1;
  cv->tmin = -INFINITY;
  cv->tmax = INFINITY;
  cv->lmm = s->method->cvode_bdf ? CV_BDF : CV_ADAMS;
  const char *ls = s->opts.cvode_linsol ? s->opts.cvode_linsol : "band";
  if (strcmp(ls, "gmres") == 0)
    cv->gmres = 1;
  else if (strcmp(ls, "band") != 0)
    return nde__errf(&s->err, NDE_ERR_ARG,
                     "unknown cvode_linsol '%s' (expected band or gmres)", ls);
  if (SUNContext_Create(NULL, &cv->ctx) != 0) return NDE_ERR_NOMEM;
  const size_t bn = (size_t)s->max_batch * (size_t)s->n;
  cv->V = nde__dalloc(bn);
  cv->JV = nde__dalloc(bn);
  if (!cv->V || !cv->JV) return NDE_ERR_NOMEM;
  return NDE_OK;
}

static void cv_release(nde__cv *cv) {
  if (cv->mem) CVodeFree(&cv->mem);
  if (cv->LS) SUNLinSolFree(cv->LS);
  if (cv->A) SUNMatDestroy(cv->A);
  if (cv->NLS) SUNNonlinSolFree(cv->NLS);
  if (cv->y) N_VDestroy(cv->y);
  cv->mem = NULL;
  cv->LS = NULL;
  cv->A = NULL;
  cv->NLS = NULL;
  cv->y = NULL;
  cv->B = 0;
}

void nde__cv_free(nde__cv *cv) {
  cv_release(cv);
  free(cv->V);
  free(cv->JV);
  if (cv->ctx) SUNContext_Free(&cv->ctx);
  memset(cv, 0, sizeof *cv);
}

nde_status nde__cv_prepare(nde__cv *cv, int B, const double *theta, double t0, const double *U0) {
  nde_solver *s = cv->s;
  const nde_solver_opts *o = &s->opts;
  cv->theta = theta;
  cv->cb_code = 0;
  cv->n_recov = 0;
  cv->bad_index = -1;
  cv->msg[0] = 0;
  cv->tmin = -INFINITY;
  cv->tmax = INFINITY;
  cv->nst_base = cv->netf_base = cv->ncf_base = 0;
  const sunindextype N = (sunindextype)B * s->n;
  if (cv->B == B && cv->mem) {
    memcpy(N_VGetArrayPointer(cv->y), U0, (size_t)N * sizeof(double));
    /* The first step as on a new memory: CVODES's backward pass (CVodeB, replaying from the
     * first checkpoint) sets the forward memory's initial step to the h0 of the solve it
     * replays, which would make this solve depend on the one before it (and a fit on which
     * thread's memory ran a piece, and a resumed fit differ from an uninterrupted one). */
    CVodeSetInitStep(cv->mem, o->h0 > 0 ? o->h0 : 0.0);
    if (CVodeReInit(cv->mem, t0, cv->y) != CV_SUCCESS)
      return nde__errf(&s->err, NDE_ERR_INTERNAL, "CVodeReInit failed: %s", cv->msg);
    return NDE_OK;
  }
  cv_release(cv);
  cv->generation++;
  cv->y = N_VNew_Serial(N, cv->ctx);
  if (!cv->y) goto nomem;
  memcpy(N_VGetArrayPointer(cv->y), U0, (size_t)N * sizeof(double));
  cv->mem = CVodeCreate(cv->lmm, cv->ctx);
  if (!cv->mem) goto nomem;
  nde__cv_quiet(cv, cv->mem);
  if (CVodeInit(cv->mem, cv_rhs, t0, cv->y) != CV_SUCCESS) goto nomem;
  cv->B = B;
  CVodeSetUserData(cv->mem, cv);
  if (CVodeSStolerances(cv->mem, o->rtol, o->atol) != CV_SUCCESS)
    return nde__errf(&s->err, NDE_ERR_ARG, "CVODE rejected the tolerances: %s", cv->msg);
  if (o->h0 > 0) CVodeSetInitStep(cv->mem, o->h0);
  if (o->h_min > 0) CVodeSetMinStep(cv->mem, o->h_min);
  if (o->h_max > 0) CVodeSetMaxStep(cv->mem, o->h_max);
  if (o->cvode_max_order > 0) CVodeSetMaxOrd(cv->mem, o->cvode_max_order);
  if (cv->lmm == CV_ADAMS) {
    cv->NLS = SUNNonlinSol_FixedPoint(cv->y, 0, cv->ctx);
    if (!cv->NLS || CVodeSetNonlinearSolver(cv->mem, cv->NLS) != CV_SUCCESS) goto nomem;
  } else if (nde__cv_attach_linsol(cv, cv->mem, B, cv->y, &cv->A, &cv->LS, 0) != NDE_OK) {
    goto nomem;
  }
  return NDE_OK;
nomem:
  cv_release(cv);
  return nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory setting up CVODE for %d rows", B);
}

nde_stop_reason nde__cv_reason(nde__cv *cv, int flag, nde_status *st) {
  nde_solver *s = cv->s;
  *st = NDE_OK;
  if (cv->cb_code < 0) {
    *st = nde__errf(&s->err, NDE_ERR_CALLBACK,
                    "right-hand side returned fatal code %d at t = %.17g", cv->cb_code, cv->cb_t);
    return NDE_REASON_NONE;
  }
  /* Failures of the nonlinear iteration or of the error test while the right-hand side was
   * reporting recoverable failures are the right-hand side's. */
  if (cv->n_recov > 0 && (flag == CV_CONV_FAILURE || flag == CV_ERR_FAILURE ||
                          flag == CV_NLS_FAIL || flag == CV_REPTD_RHSFUNC_ERR ||
                          flag == CV_UNREC_RHSFUNC_ERR || flag == CV_FWD_FAIL))
    return NDE_REASON_RHS_FAILED;
  switch (flag) {
    case CV_TOO_MUCH_WORK: return NDE_REASON_MAX_STEPS;
    case CV_ERR_FAILURE: return NDE_REASON_ERR_TEST_FAILED;
    case CV_CONV_FAILURE:
    case CV_LSETUP_FAIL:
    case CV_LSOLVE_FAIL:
    case CV_NLS_FAIL:
    case CV_NLS_SETUP_FAIL: return NDE_REASON_NEWTON_FAILED;
    /* The model's f, or the sensitivity and quadrature right-hand sides built from its JVP and
     * VJP (forward sensitivities, the adjoint's mu), failed recoverably. */
    case CV_FIRST_RHSFUNC_ERR:
    case CV_FIRST_QRHSFUNC_ERR:
    case CV_FIRST_SRHSFUNC_ERR:
    case CV_FIRST_QSRHSFUNC_ERR:
      return cv->bad_index >= 0 ? NDE_REASON_NONFINITE : NDE_REASON_RHS_RECOVERABLE;
    case CV_REPTD_RHSFUNC_ERR:
    case CV_UNREC_RHSFUNC_ERR:
    case CV_REPTD_QRHSFUNC_ERR:
    case CV_UNREC_QRHSFUNC_ERR:
    case CV_REPTD_SRHSFUNC_ERR:
    case CV_UNREC_SRHSFUNC_ERR:
    case CV_REPTD_QSRHSFUNC_ERR:
    case CV_UNREC_QSRHSFUNC_ERR: return NDE_REASON_RHS_FAILED;
    case CV_TOO_MUCH_ACC: return NDE_REASON_TOO_MUCH_ACCURACY;
    case CV_MEM_FAIL:
      *st = nde__errf(&s->err, NDE_ERR_NOMEM, "CVODE ran out of memory");
      return NDE_REASON_NONE;
    default: {
      /* The name is malloc'ed by SUNDIALS (NULL when it ran out of memory). */
      char *name = CVodeGetReturnFlagName(flag);
      *st = nde__errf(&s->err, NDE_ERR_NUMERIC, "CVODE failed (%s): %s",
                      name ? name : "unknown flag", cv->msg);
      free(name);
      return NDE_REASON_NONE;
    }
  }
}

/* Add the memory's counters to the bases before a re-initialisation resets them. */
static void cv_bank_counters(nde__cv *cv) {
  long v = 0;
  CVodeGetNumSteps(cv->mem, &v);
  cv->nst_base += v;
  v = 0;
  CVodeGetNumErrTestFails(cv->mem, &v);
  cv->netf_base += v;
  v = 0;
  CVodeGetNumNonlinSolvConvFails(cv->mem, &v);
  cv->ncf_base += v;
}

nde_status nde__cv_march(nde__cv *cv, int adj, int n_obs, const double *t_obs, double *Y,
                         nde_solve_stats *stats, int *k_done) {
  nde_solver *s = cv->s;
  const size_t bn = (size_t)cv->B * (size_t)s->n;
  nde_status st = NDE_OK;
  *k_done = 0;
  const double tend = t_obs[n_obs - 1];
  /* The current piece ends at tstop: the next breakpoint, or the last observation time. */
  size_t ib = adj ? s->n_bp : nde__bp_after(s, t_obs[0]);
  double tstop = ib < s->n_bp && s->bp[ib] < tend ? s->bp[ib] : tend;
  if (!adj) {
    const nde__span sp = nde__piece_span(s, t_obs[0], tstop);
    cv->tmin = sp.lo;
    cv->tmax = sp.hi;
  }
  CVodeSetStopTime(cv->mem, tstop);
  /* One step at a time: the budget counts every step of the solve, and steps that no longer
   * advance t in floating point (0.1 |h| <= eps |t|, ten in a row; CVODE itself would go on
   * shrinking h) are a step-size underflow.  Outputs come from CVODE's interpolant (CVodeGetDky). */
  CVodeSetMaxNumSteps(cv->mem, -1 /* no per-call limit: counted here */);
  double t = t_obs[0];
  int n_tiny = 0; /* consecutive steps with 0.1 |h| <= eps |t| */
  for (int k = 1; k < n_obs;) {
    if (t >= t_obs[k]) {
      N_Vector yk = N_VMake_Serial((sunindextype)bn, Y + (size_t)k * bn, cv->ctx);
      int flag = yk ? CVodeGetDky(cv->mem, t_obs[k], 0, yk) : CV_MEM_FAIL;
      if (yk) N_VDestroy(yk);
      if (flag != CV_SUCCESS) {
        st = nde__errf(&s->err, NDE_ERR_INTERNAL, "CVodeGetDky failed at t = %.17g: %s",
                       t_obs[k], cv->msg);
        goto out;
      }
      *k_done = k;
      if (cv->obs_hook && cv->obs_hook(cv, k, t_obs[k], cv->hctx) != 0) {
        st = nde__errf(&s->err, NDE_ERR_INTERNAL, "reading the solution at t = %.17g failed: %s",
                       t_obs[k], cv->msg);
        goto out;
      }
      k++;
      continue;
    }
    if (t == tstop && tstop < tend) {
      /* A breakpoint: f jumps here, so CVODE starts afresh (order 1, a new initial step) from
       * the solution at t, which cv->y holds. */
      cv_bank_counters(cv);
      if ((cv->restart_hook && cv->restart_hook(cv, t, 0, cv->hctx) != 0) ||
          CVodeReInit(cv->mem, t, cv->y) != CV_SUCCESS ||
          (cv->restart_hook && cv->restart_hook(cv, t, 1, cv->hctx) != 0)) {
        st = nde__errf(&s->err, NDE_ERR_INTERNAL, "restarting CVODE at the breakpoint %.17g "
                       "failed: %s", t, cv->msg);
        goto out;
      }
      ib++;
      tstop = ib < s->n_bp && s->bp[ib] < tend ? s->bp[ib] : tend;
      const nde__span sp = nde__piece_span(s, t, tstop);
      cv->tmin = sp.lo;
      cv->tmax = sp.hi;
      CVodeSetStopTime(cv->mem, tstop);
      continue;
    }
    long nst = 0;
    CVodeGetNumSteps(cv->mem, &nst);
    if (cv->nst_base + nst >= s->opts.max_steps) {
      stats->reason = NDE_REASON_MAX_STEPS;
      break;
    }
    int ncheck = 0, flag;
    if (adj)
      flag = CVodeF(cv->mem, t_obs[k], cv->y, &t, CV_ONE_STEP, &ncheck);
    else
      flag = CVode(cv->mem, t_obs[k], cv->y, &t, CV_ONE_STEP);
    if (flag < 0) {
      stats->reason = nde__cv_reason(cv, flag, &st);
      CVodeGetCurrentTime(cv->mem, &t);
      if (st != NDE_OK) goto out;
      break;
    }
    cv->n_recov = 0;
    double hl = 0;
    CVodeGetLastStep(cv->mem, &hl);
    /* A step that barely advances t is an underflow only when it persists: CVODE's first step
     * estimate at a large t0 can be that small (the sensitivities' fast transients) and grows by
     * orders of magnitude in the next steps (CVODE warns only after mxhnil = 10 such steps). */
    n_tiny = 0.1 * fabs(hl) <= fabs(t) * DBL_EPSILON ? n_tiny + 1 : 0;
    if (fabs(hl) <= s->opts.h_min || n_tiny >= NDE__CV_MAX_TINY_STEPS) {
      stats->reason = NDE_REASON_STEP_UNDERFLOW;
      break;
    }
  }
out:;
  long v = 0;
  double h = 0;
  CVodeGetNumSteps(cv->mem, &v);
  stats->n_steps = cv->nst_base + v;
  v = 0;
  CVodeGetNumErrTestFails(cv->mem, &v);
  stats->n_rejected = cv->netf_base + v;
  v = 0;
  CVodeGetNumNonlinSolvConvFails(cv->mem, &v);
  stats->n_rejected += cv->ncf_base + v;
  if (CVodeGetCurrentStep(cv->mem, &h) == CV_SUCCESS) stats->h_last = h;
  stats->t_stop = t;
  if (cv->bad_index >= 0 && stats->reason != NDE_REASON_NONE) {
    stats->bad_row = (int)(cv->bad_index / s->n);
    stats->bad_state = (int)(cv->bad_index % s->n);
  }
  cv->tmin = -INFINITY;
  cv->tmax = INFINITY;
  return st;
}

nde_status nde__cvode_create(nde_solver *s) {
  s->cv = calloc(1, sizeof *s->cv);
  if (!s->cv) return NDE_ERR_NOMEM;
  nde_status st = nde__cv_init(s->cv, s);
  if (st != NDE_OK && st != NDE_ERR_ARG) nde__errf(&s->err, st, "out of memory creating CVODE");
  return st;
}

void nde__cvode_destroy(struct nde__cv **cv) {
  if (!cv || !*cv) return;
  nde__cv_free(*cv);
  free(*cv);
  *cv = NULL;
}

nde_status nde__cvode_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats) {
  const size_t bn = (size_t)B * (size_t)s->n;
  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  memcpy(Y, U0, bn * sizeof *Y);
  nde_status st = nde__cv_prepare(s->cv, B, theta, t_obs[0], U0);
  int k_done = 0;
  if (st == NDE_OK && n_obs > 1) st = nde__cv_march(s->cv, 0, n_obs, t_obs, Y, stats, &k_done);
  if (n_obs == 1) stats->t_stop = t_obs[0];
  for (int k = k_done + 1; k < n_obs; k++)
    for (size_t q = 0; q < bn; q++) Y[(size_t)k * bn + q] = NAN;
  const nde_rhs_counts c1 = nde_rhs_get_counts(s->rhs);
  stats->n_rhs = c1.f - c0.f;
  stats->n_jvp = c1.jvp - c0.jvp;
  return st;
}
