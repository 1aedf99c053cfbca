/* nde grad: the loss at observation times and its gradient through a solve.
 *
 * A loss is a function of the solution at the observation times, Y (n_obs x B x n), returning
 * L and dL/dY.  The gradient methods inject dL/dY_k into the adjoint at each observation time
 * t_k and return dL/dtheta and, optionally, dL/dU0.
 *
 * Methods (by name, nde_grad_opts.method):
 *   "discrete"  backpropagation through the accepted steps of an explicit Runge-Kutta solve
 *               (euler, rk4, dopri5; step sizes held fixed, observations read from dopri5's
 *               continuous extension differentiated too): the exact gradient of the discretised
 *               loss.  Keeps every stage (fast) or, with recompute = 1, only each step's start
 *               state, redoing the stages backward.
 *   "backsolve" the continuous adjoint of Chen et al. (2018): from lambda(T) = dL/du(T) integrate
 *               backward  u' = f,  lambda' = -lambda^T df/du,  mu' = -lambda^T df/dtheta,
 *               adding dL/du(t_k) to lambda at each observation; mu(t_0) = dL/dtheta and
 *               lambda(t_0) = dL/dU0.  Every solver: euler/rk4 retrace their step grid backward,
 *               dopri5 integrates the augmented system adaptively (keeping its step size across
 *               observation jumps), CVODE integrates (u, lambda) with mu as a quadrature.  The
 *               backward u is re-integrated, so it is unstable for dissipative problems.
 *   "interp"    the same adjoint ODE with u(t) read from the stored forward solution: dopri5's
 *               continuous extension, or CVODES's adjoint module for cvode-* (checkpoints every
 *               checkpoint_steps steps with Hermite or polynomial interpolation, mu as a backward
 *               quadrature, CVodeReInitB + CVodeQuadReInitB at every observation jump).
 *   "forward"   CVODES forward sensitivities s_j = du/dtheta_j (and du/dU0 when gU0 is wanted):
 *               n_theta (+ B n) extra ODEs; for models with few parameters.  cvode-* only.
 *   "auto"      discrete for euler/rk4/dopri5; for cvode-*: forward when n_theta (+ B n when
 *               gU0 is wanted) <= auto_forward_max_params, else interp.  Measured with
 *               benchmarks/bench_adjoint.c (spiral 1000/30 observations, LV UDE): the discrete
 *               adjoint was the fastest on every problem (dopri5+discrete 5-15x faster than
 *               dopri5+interp; interp more accurate on the long spiral), and with CVODE interp
 *               and backsolve cost the same while forward was 5-30x slower at 87-152
 *               parameters.  The forward threshold (8) is not measured: a small-P case is not
 *               in the benchmark yet.
 * Continuous adjoints control the error of the backward solve with rtol/atol (0: the solver's);
 * with seminorm = 1 the error norm leaves mu out (Kidger et al. 2021, "Hey, that's not an ODE"):
 * mu feeds back into nothing, so its error does not need to restrict the step size.
 */
#ifndef NDE_GRAD_H
#define NDE_GRAD_H

#include <stddef.h>

#include "nde/core.h"
#include "nde/solve.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A loss on the solution at the observation times.  Writes *L, and dLdY (same shape as Y) when
 * dLdY is non-NULL.  Returns 0 on success, non-zero on failure. */
typedef int (*nde_loss_fn)(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                           double *dLdY);

/* The squared error at observation times:
 *   L = s * sum_{k,b,i observed} w_i (Y_kbi - O_kbi)^2,  s = 1 (sum) or 1/(count) (mean),
 * where entries of O that are NaN are missing and skipped.  With log_space, the error is taken
 * between log(Y) and log(O) (positive data; a non-positive Y gives a non-finite loss). */
typedef struct nde_obs_loss {
  const double *obs;    /* n_obs x B x n observations, NaN = missing (borrowed) */
  const double *weight; /* n per-state weights w_i, or NULL for 1 */
  int mean;             /* 1: divide by the number of observed entries; 0: sum */
  int log_space;
} nde_obs_loss;

/* nde_loss_fn for nde_obs_loss (pass a const nde_obs_loss * as ctx). */
NDE_API int nde_obs_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                      double *dLdY);

typedef struct nde_grad_opts {
  const char *method; /* "discrete" (default), "backsolve", "interp", "forward" or "auto" */
  int recompute;      /* discrete: keep only step states and recompute stages (less memory) */
  /* continuous adjoints (backsolve, interp) */
  double rtol, atol;  /* backward tolerances; 0 (default): the solver's rtol / atol */
  int seminorm;       /* 1 (default): mu (the parameter adjoint) is left out of the error norm */
  /* CVODES adjoint (interp with cvode-*) */
  long checkpoint_steps;   /* steps between checkpoints; default 100 (>= 2 for polynomial) */
  const char *interp;      /* "hermite" (default) or "polynomial" */
  int auto_forward_max_params; /* auto: forward sensitivities up to this many; default 8 */
} nde_grad_opts;

/* Names of the gradient methods, NULL-terminated (static storage). */
NDE_API const char *const *nde_grad_method_names(void);

NDE_API nde_grad_opts nde_grad_opts_default(void);

typedef struct nde_grad nde_grad;

/* A gradient evaluator on a solver (borrowed: it must outlive the evaluator).  Statuses:
 * NDE_ERR_ARG (unknown method, or a method the solver does not support: discrete and forward
 * need an explicit method resp. cvode-*, interp needs dopri5 or cvode-*), NDE_ERR_NOMEM. */
NDE_API nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out,
                           nde_error *err);
NDE_API void nde_grad_destroy(nde_grad **g);
NDE_API const char *nde_grad_errmsg(const nde_grad *g);

typedef struct nde_grad_stats {
  nde_solve_stats forward; /* the forward solve; reason != NDE_REASON_NONE means no gradient */
  long n_vjp;              /* VJP calls of the backward pass */
  /* The backward solve of a continuous adjoint (steps, f calls, reason; zero for discrete and
   * forward).  A backward solve that stops early is an outcome like a forward one: NDE_OK, L
   * is set, gradients are NaN and backward.reason says why. */
  nde_solve_stats backward;
  const char *method;      /* the method used (what "auto" chose); static string */
} nde_grad_stats;

/* Loss and gradient at theta from U0 (B x n) over t_obs[0..n_obs-1].
 *   L       the loss (NaN when the forward solve stopped early; see stats->forward.reason)
 *   gtheta  dL/dtheta (n_theta, overwritten; may be NULL)
 *   gU0     dL/dU0 (B x n, overwritten; may be NULL)
 *   Y       the solution at the observation times (n_obs x B x n, may be NULL)
 * A forward solve that stops early is an outcome, not an error: the call returns NDE_OK, sets
 * stats->forward.reason, L = NaN and fills gtheta/gU0 with NaN.  Statuses: NDE_ERR_ARG,
 * NDE_ERR_NOMEM, NDE_ERR_CALLBACK (fatal RHS), NDE_ERR_NUMERIC (the loss function failed). */
NDE_API nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
