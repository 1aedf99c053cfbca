/* nde solve: integrate du/dt = f(t, u, theta) for a batch of B initial states, with output at
 * observation times t_0 < t_1 < ... < t_{K-1} (t_0 is the initial time, so Y_0 = U0).
 *
 * Methods are looked up by name in a registry that also describes them (nde_solver_method_find,
 * nde_solver_method_at: order, adaptive, implicit, symplectic, ...); callers read these
 * properties instead of comparing names.  Built in:
 *   "euler", "rk4"  fixed step.  Every observation time is hit exactly: the step is given as a
 *                   size dt (the last step of an interval is shortened to land on t_{k+1}) or
 *                   as a number of equal steps per observation interval.
 *   "dopri5"        Dormand-Prince 5(4) (Dormand & Prince 1980), adaptive: embedded error
 *                   estimate, PI step-size control (Hairer, Norsett & Wanner, sec. II.4), FSAL,
 *                   automatic initial step (Hairer's HINIT) and Hairer's stiffness test.  The
 *                   step sequence is chosen by the error control alone: the solution at the
 *                   observation times is read from the 4th-order continuous extension.  With
 *                   fixed_step = 1 it runs like rk4 (for order studies).
 *   "leapfrog"      Stormer-Verlet, kick-drift-kick (order 2, symplectic, time-reversible) and
 *   "yoshida4"      Yoshida's (1990) triple jump of it (order 4; the Forest-Ruth scheme), for
 *                   models whose equations split as q' = F(t, p), p' = G(t, q).  The split is
 *                   found from the right-hand side's dependency matrix (nde_rhs_info.dep): a
 *                   2-colouring of the state components such that every dependency f_i <- u_j
 *                   joins two colours; q is the colour of component 0 (of each connected group
 *                   of components, the colour of its lowest index).  Creating the solver fails
 *                   with NDE_ERR_ARG, naming the offending dependency ("f[1] depends on u[1]",
 *                   with opts.state_names "dp/dt depends on p"), when there is no dependency
 *                   matrix or it does not split.  A kick p += c h G(t, q) and a drift
 *                   q += d h F(t + d h / 2, p) each evaluate the whole f and use half of it
 *                   (so a step costs 2 m evaluations of f for m drifts: 2 for leapfrog, 6 for
 *                   yoshida4; the kick at the end of a step is reused as the next step's first,
 *                   FSAL; a model that could evaluate F and G separately would need half the
 *                   work).  Fixed steps like rk4.  Time moves with the drifts: kicks at
 *                   t + h (d_1 + ... + d_i), drifts at the middle of their span, which keeps
 *                   the order for f depending on t; yoshida4's negative middle drift puts two
 *                   kicks outside the step (t + 1.35 h, t - 0.35 h): next to a breakpoint they
 *                   are evaluated at the breakpoint, inside the piece, which is exact when f
 *                   depends on t within a piece only through step inputs and costs O(h^2) in
 *                   those steps when it also varies smoothly with t.
 *   "implicit-midpoint"  u' = u + h f(t + h/2, (u + u')/2) (order 2, symplectic for every
 *                   Hamiltonian, conserves every quadratic invariant).  Fixed steps like rk4;
 *                   each step solves w = u + (h/2) f(t + h/2, w) by Newton's method from w = u
 *                   with a dense n x n Jacobian per batch row from n batched JVPs (difference
 *                   quotients when the model has no JVP), until max_i |dw_i| <= newton_tol
 *                   max(1, |w_i|), at most newton_max_iter iterations.  A Newton failure
 *                   (no convergence, a singular Jacobian, a non-finite iterate) stops the
 *                   solve with NDE_REASON_NEWTON_FAILED.
 *   "cvode-adams"   SUNDIALS CVODES 6.4, Adams-Moulton orders 1-12 with fixed-point iteration.
 *   "cvode-bdf"     CVODES BDF orders 1-5 with Newton iteration; the linear solver is chosen by
 *                   cvode_linsol (see below).  Output at observation times by CVODE's own
 *                   interpolation (CV_NORMAL), so the step sequence is not distorted either.
 * Explicit Runge-Kutta methods are Butcher tableaux run by one batched kernel.
 *
 * Batches.  Every method integrates the B rows of a batch as one system.  Fixed-step methods
 * give each row what a solve of that row alone gives (to round-off: the batched right-hand side
 * may sum in another order; the Newton iterations of implicit-midpoint run until every row has
 * converged).  Adaptive methods share one step sequence across the batch and control the error
 * of the whole batch: dopri5 the RMS norm over all B n entries of err_i / (atol + rtol
 * max(|u_i|, |u'_i|)), CVODE its WRMS norm over the B n entries.  A row is then integrated with
 * the steps its hardest sibling needs, and its error is controlled only on average with the
 * others (a row alone in a stiff or fast region can carry up to sqrt(B) times the error it would
 * have alone), and a stop (step budget, non-finite value, ...) in one row stops every row.
 * Measured on the LV UDE with 16 rows from initial states spread over [0.3, 4]^2, 21
 * observations on [0, 5], rtol 1e-6 (benchmarks/bench_batch.c, release build, one thread): the
 * batch took the steps of one row (dopri5 36 steps against 571 for the rows one by one,
 * cvode-bdf 112 against 1848), with a per-row error no larger than alone (dopri5 max 3.3e-6
 * against 4.5e-6, cvode-bdf 2.8e-4 against 6.2e-4), in 0.55x the time of the rows one by one
 * for a dopri5 solve, 0.63x for its discrete gradient, 0.25x for a cvode-bdf solve and 0.18x for
 * its interp gradient.  Recommended: batch rows that behave alike (pieces of one series, series
 * of one experiment); solve rows one by one when one of them may need far smaller steps or fail
 * (a blow-up, a stiff region) where the others do not.
 *
 * Breakpoints (nde_solver_set_breakpoints) are times where f may jump (step inputs).  Every
 * method stops at them and restarts on the far side: fixed-step methods end a step there,
 * dopri5 ends a step there and re-evaluates its first stage after it (keeping its step size),
 * CVODE stops there (a stop time) and is re-initialised.  f must be right-continuous at a
 * breakpoint (a step input switches at t >= t_b); the piece that ends at t_b is evaluated at
 * the largest double below t_b instead of t_b, so it sees the values from before the jump, and
 * an evaluation a method makes outside its piece (yoshida4's outer kicks) is moved to the
 * piece's end.  A jump at a solve's last time is a breakpoint too (the last step sees the values
 * from before it), and no evaluation falls outside the times where the rhs is defined
 * (nde_rhs_domain: the span of the samples of measured inputs without hold), so inputs sampled
 * over exactly the solve's span suffice; f of a model without inputs is evaluated where the
 * method asks, inside its span or not.  Measured on x' = -1.73 x + 2.41 H(t - 0.37) over [0, 2]
 * (tests/solve/test_breakpoints.c), without / with the breakpoint: dopri5 at rtol 1e-6 19 / 0
 * rejected steps (error 2.6e-6 / 1.2e-7), at 1e-10 24 / 0; cvode-adams 11 / 5 and 28 / 10;
 * cvode-bdf 24 / 6 and 28 / 7 (CVODE's cold restart costs ~3 rejected steps: cvode-adams
 * rejects 3 on the same problem without a jump).  Fixed-step methods keep their order through
 * the jump with it (rk4 4.0, yoshida4 4.0, leapfrog 2.0) and drop to order 1 without.
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
  /* Fixed steps.  An observation interval [t_k, t_{k+1}] is cut at the breakpoints inside it;
   * each piece of length l gets ceil(l / dt) steps of size dt, the last one shortened to land
   * on the piece's end (dt > 0), or max(1, ceil(steps_per_interval l / (t_{k+1} - t_k))) equal
   * steps (dt <= 0; without breakpoints exactly steps_per_interval).  The step count is
   * computed in double precision: a dt too small for the interval ends the solve with
   * NDE_REASON_MAX_STEPS when the budget is used up, or NDE_REASON_STEP_UNDERFLOW when
   * t + dt == t in floating point. */
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

  /* ---- implicit-midpoint's Newton iteration ---- */
  double newton_tol;   /* converged when max_i |dw_i| <= newton_tol max(1, |w_i|); default 1e-10
                        * (Newton converges quadratically: the error left is ~ newton_tol^2) */
  int newton_max_iter; /* iterations per step before NDE_REASON_NEWTON_FAILED; default 10 */

  /* Names of the n state components (borrowed, read only while the solver is created), for
   * messages such as "dp/dt depends on p"; NULL: components are named by index ("f[1]",
   * "u[1]", 0-based). */
  const char *const *state_names;
} nde_solver_opts;

NDE_API nde_solver_opts nde_solver_opts_default(void);

/* ---- the method registry ---- */

/* What a method is, for callers that must choose or configure one (the CLI, the gradient layer,
 * the tests).  Static storage; the fields are read-only. */
typedef struct nde_solver_method_info {
  const char *name;        /* registry name, e.g. "rk4" */
  const char *description; /* one line, e.g. "classic Runge-Kutta, order 4, fixed steps" */
  int order;        /* order of accuracy (variable-order methods: the highest order used) */
  int adaptive;     /* the step size is chosen by error control (rtol, atol) */
  int fixed_steps;  /* can run on given steps (dt / steps_per_interval): every non-adaptive
                     * method, and dopri5 with opts.fixed_step = 1 */
  int variable_order; /* the order changes during a solve (CVODE) */
  int implicit;     /* solves a nonlinear system per step (Newton or fixed-point iteration) */
  int symplectic;   /* preserves the symplectic form of Hamiltonian systems */
  int needs_split;  /* needs a separable split q' = F(p), p' = G(q) (nde_rhs_info.dep) */
  int dense_output; /* has a continuous extension between steps (output at any time) */
  /* A step from t of size h evaluates f at times t + c h with c in [eval_lo, eval_hi] (a range
   * that contains them): [0, 1] for most methods; yoshida4's negative drift reaches [-0.35, 1.35], so it evaluates f before
   * the start of a solve (measured inputs are read at the nearest sampled time there; explicit
   * functions of t are not). */
  double eval_lo, eval_hi;
} nde_solver_method_info;

/* Number of registered methods, and method i in [0, count) (NULL outside).  The order is the
 * registry's (fixed-step explicit, symplectic, implicit, adaptive, CVODE). */
NDE_API int nde_solver_method_count(void);
NDE_API const nde_solver_method_info *nde_solver_method_at(int i);
/* The method with this name, or NULL (name may be NULL). */
NDE_API const nde_solver_method_info *nde_solver_method_find(const char *name);

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
  NDE_REASON_NEWTON_FAILED,   /* the Newton (or CVODE's nonlinear) iteration failed to
                               * converge: repeatedly (CVODE), or in a step (implicit-midpoint) */
  NDE_REASON_ERR_TEST_FAILED, /* CVODE's error test failed repeatedly or at the minimum step */
  NDE_REASON_TOO_MUCH_ACCURACY /* the tolerances ask for more accuracy than double precision
                                * can give at the solution's scale (CVODE's CV_TOO_MUCH_ACC) */
} nde_stop_reason;

/* Static English text of a reason (a sentence fragment that follows "the solver stopped: "). */
NDE_API const char *nde_stop_reason_str(nde_stop_reason r);

typedef struct nde_solve_stats {
  nde_stop_reason reason;
  double t_stop;  /* time reached (the last observation time on success) */
  double h_last;  /* the last step size attempted */
  int bad_row;    /* batch row and state index of the first non-finite value, else -1; for
                   * NDE_REASON_RHS_RECOVERABLE of a fixed-step Runge-Kutta method, of the
                   * first derivative that was not finite (when one was) */
  int bad_state;
  long n_steps;   /* accepted steps */
  long n_rhs;     /* f evaluations (calls, each on the whole batch) */
  long n_rejected; /* adaptive: steps rejected by the error test or retried after a failure */
  long n_jvp;      /* JVP calls (CVODE Newton / Jacobians) */
} nde_solve_stats;

typedef struct nde_solver nde_solver;

/* Create a solver for rhs (borrowed: it must outlive the solver) on batches of up to max_batch
 * rows (<= the rhs's max_batch).  opts may be NULL for the defaults.  Statuses: NDE_ERR_ARG
 * (unknown method, bad option, tolerances double precision cannot meet (rtol >= 1, or
 * rtol < 1e-15 with atol = 0, for adaptive methods), a method that needs a separable split and
 * a right-hand side without one; the message names the method, option or dependency),
 * NDE_ERR_NOMEM. */
NDE_API nde_status nde_solver_create(nde_rhs *rhs, const nde_solver_opts *opts, int max_batch,
                             nde_solver **out, nde_error *err);
NDE_API void nde_solver_destroy(nde_solver **s);

/* Last detailed error message of this solver. */
NDE_API const char *nde_solver_errmsg(const nde_solver *s);
NDE_API const nde_solver_opts *nde_solver_get_opts(const nde_solver *s);
NDE_API nde_rhs *nde_solver_get_rhs(const nde_solver *s);

/* Whether a method name is known (1) or not (0). */
NDE_API int nde_solver_method_known(const char *name);
/* The registry entry of the solver's method. */
NDE_API const nde_solver_method_info *nde_solver_get_method(const nde_solver *s);

/* Times where the right-hand side may jump (e.g. the switching times of step inputs), for every
 * later solve (and gradient) with this solver until changed; n = 0 clears them.  t (n finite
 * values, any order, duplicates allowed) is copied.  Breakpoints outside a solve's time span
 * are ignored; one at an observation time restarts the method there too.  See "Breakpoints"
 * above.  Statuses: NDE_ERR_ARG (s NULL, t NULL with n > 0, a non-finite time), NDE_ERR_NOMEM
 * (the previous breakpoints stay). */
NDE_API nde_status nde_solver_set_breakpoints(nde_solver *s, size_t n, const double *t);

/* Solve from U0 (B x n) at t_obs[0] through t_obs[1..n_obs-1] (strictly increasing), writing
 * Y (n_obs x B x n; Y[0] = U0).  stats may be NULL.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM (the
 * trajectory store grows on first use of a longer grid), NDE_ERR_CALLBACK (fatal callback). */
NDE_API nde_status nde_solver_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
