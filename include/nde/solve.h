/* nde solve: integrate du/dt = f(t, u, theta) for a batch of B initial states, with output at
 * observation times t_0 < t_1 < ... < t_{K-1} (t_0 is the initial time, so Y_0 = U0).
 *
 * Methods are looked up by name in a registry (nde_solver_method_names):
 *   "euler", "rk4"  fixed step.  Every observation time is hit exactly: the step is given as a
 *                   size dt (the last step of an interval is shortened to land on t_{k+1}) or
 *                   as a number of equal steps per observation interval.
 *   "dopri5"        Dormand-Prince 5(4) (Dormand & Prince 1980), adaptive: embedded error
 *                   estimate, PI step-size control (Hairer, Norsett & Wanner, sec. II.4), FSAL,
 *                   automatic initial step (Hairer's HINIT) and Hairer's stiffness test.  The
 *                   step sequence is chosen by the error control alone: the solution at the
 *                   observation times is read from the 4th-order continuous extension.  With
 *                   fixed_step = 1 it runs like rk4 (for order studies).
 *   "cvode-adams"   SUNDIALS CVODES 6.4, Adams-Moulton orders 1-12 with fixed-point iteration.
 *   "cvode-bdf"     CVODES BDF orders 1-5 with Newton iteration; the linear solver is chosen by
 *                   cvode_linsol (see below).  Output at observation times by CVODE's own
 *                   interpolation (CV_NORMAL), so the step sequence is not distorted either.
 * Explicit Runge-Kutta methods are Butcher tableaux run by one batched kernel; the adaptive ones
 * control the error of the whole batch (RMS norm of err_i / (atol + rtol max(|u_i|, |u'_i|))).
 *
 * Errors (bad arguments, no memory, a fatal callback) are statuses.  Numerical outcomes (a
 * non-finite state, recoverable callback failures, the step budget, a step-size underflow,
 * suspected stiffness, Newton failures) are reasons in nde_solve_stats on a successful call,
 * with the time reached and the last step size; rows of Y after the stop are NaN.
 */
#ifndef NDE_SOLVE_H
#define NDE_SOLVE_H

#include <stddef.h>

#include "nde/core.h"
#include "nde/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_solver_opts {
  const char *method;     /* registry name; default "rk4" */
  double dt;              /* step size for fixed-step methods; <= 0 selects steps_per_interval */
  int steps_per_interval; /* equal steps per observation interval when dt <= 0; default 1 */
  long max_steps;         /* budget for the whole solve (all intervals); default 1000000 */
  /* A last step shorter than dt_snap * dt is folded into the previous one instead of being
   * taken on its own (guards against round-off in (t_{k+1} - t_k) / dt); default 1e-9. */
  double dt_snap;

  /* ---- adaptive methods (dopri5, cvode-*) ---- */
  double rtol;         /* relative tolerance; default 1e-6 */
  double atol;         /* absolute tolerance; default 1e-9 */
  double h0;           /* initial step size; 0 (default): automatic (Hairer's HINIT; CVODE's) */
  double h_min;        /* a step below this stops with NDE_REASON_STEP_UNDERFLOW; default 0
                        * (only the round-off limit 0.1 |h| <= eps |t| applies) */
  double h_max;        /* largest step; 0 (default): no limit */
  int fixed_step;      /* dopri5: 1 = run with the fixed steps of dt / steps_per_interval */
  /* dopri5 step-size control (Hairer's DOPRI5 defaults): h_new = h * clamp(safety * err^-a *
   * err_old^b, fac_min, fac_max) with a = 0.2 - 0.75 b, b = pi_beta. */
  double safety;       /* default 0.9 */
  double fac_min;      /* default 0.2 */
  double fac_max;      /* default 10 */
  double pi_beta;      /* default 0.04 (0: plain I controller) */
  /* A step whose right-hand side reports a recoverable failure or produces non-finite values is
   * retried with the step multiplied by retry_shrink; after max_retries consecutive retries the
   * solve stops with NDE_REASON_RHS_FAILED. */
  int max_retries;     /* default 10 */
  double retry_shrink; /* default 0.25 */
  /* Hairer's stiffness test for dopri5: from accepted step stiff_test_after on, the estimate
   * |h lambda| of the dominant eigenvalue is compared with stiff_bound after every step; after
   * stiff_test_count positive tests without 6 negative ones in a row the solve stops with
   * NDE_REASON_STIFF_SUSPECTED.  0 disables. */
  long stiff_test_after; /* default 1000 */
  int stiff_test_count;  /* default 15 */
  double stiff_bound;    /* default 3.25 */
  /* cvode-bdf linear solver: "band" (per batch row the dense n x n Jacobian assembled from n
   * JVPs, stored in a band matrix of half-bandwidth n-1 so that the B blocks are never coupled)
   * or "gmres" (matrix-free GMRES with JVPs, no preconditioner).  Default "band": see
   * benchmarks/bench_adjoint.c.  A model without a JVP falls back to difference quotients. */
  const char *cvode_linsol;
  int cvode_max_order; /* 0: CVODE's default (12 Adams, 5 BDF) */
} nde_solver_opts;

NDE_API nde_solver_opts nde_solver_opts_default(void);

/* Names of the registered methods, NULL-terminated (static storage). */
NDE_API const char *const *nde_solver_method_names(void);

typedef enum {
  NDE_REASON_NONE = 0,        /* reached the last observation time */
  NDE_REASON_NONFINITE,       /* a state or derivative became NaN or infinite */
  NDE_REASON_RHS_RECOVERABLE, /* the RHS reported a recoverable failure the method cannot retry */
  NDE_REASON_MAX_STEPS,       /* the step budget of the whole solve was used up */
  NDE_REASON_STEP_UNDERFLOW,  /* the step size fell below what the time resolution allows */
  NDE_REASON_RHS_FAILED,      /* recoverable failures or non-finite values persisted through
                               * max_retries retries with smaller steps */
  NDE_REASON_STIFF_SUSPECTED, /* dopri5's stiffness test fired: use cvode-bdf */
  NDE_REASON_NEWTON_FAILED,   /* CVODE's nonlinear iteration failed repeatedly */
  NDE_REASON_ERR_TEST_FAILED  /* CVODE's error test failed repeatedly or at the minimum step */
} nde_stop_reason;

/* Static English text of a reason (a sentence fragment that follows "the solver stopped: "). */
NDE_API const char *nde_stop_reason_str(nde_stop_reason r);

typedef struct nde_solve_stats {
  nde_stop_reason reason;
  double t_stop;  /* time reached (the last observation time on success) */
  double h_last;  /* the last step size attempted */
  int bad_row;    /* batch row and state index of the first non-finite value, else -1 */
  int bad_state;
  long n_steps;   /* accepted steps */
  long n_rhs;     /* f evaluations (calls, each on the whole batch) */
  long n_rejected; /* adaptive: steps rejected by the error test or retried after a failure */
  long n_jvp;      /* JVP calls (CVODE Newton / Jacobians) */
} nde_solve_stats;

typedef struct nde_solver nde_solver;

/* Create a solver for rhs (borrowed: it must outlive the solver) on batches of up to max_batch
 * rows (<= the rhs's max_batch).  opts may be NULL for the defaults.  Statuses: NDE_ERR_ARG
 * (unknown method, bad option; message names it), NDE_ERR_NOMEM. */
NDE_API nde_status nde_solver_create(nde_rhs *rhs, const nde_solver_opts *opts, int max_batch,
                             nde_solver **out, nde_error *err);
NDE_API void nde_solver_destroy(nde_solver **s);

/* Last detailed error message of this solver. */
NDE_API const char *nde_solver_errmsg(const nde_solver *s);
NDE_API const nde_solver_opts *nde_solver_get_opts(const nde_solver *s);
NDE_API nde_rhs *nde_solver_get_rhs(const nde_solver *s);

/* Whether a method name is known (1) or not (0). */
NDE_API int nde_solver_method_known(const char *name);

/* Solve from U0 (B x n) at t_obs[0] through t_obs[1..n_obs-1] (strictly increasing), writing
 * Y (n_obs x B x n; Y[0] = U0).  stats may be NULL.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM (the
 * trajectory store grows on first use of a longer grid), NDE_ERR_CALLBACK (fatal callback). */
NDE_API nde_status nde_solver_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
