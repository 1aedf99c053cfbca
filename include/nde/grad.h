/* nde grad: the loss at observation times and its gradient through a solve.
 *
 * A loss is a function of the solution at the observation times, Y (n_obs x B x n), returning
 * L and dL/dY.  The gradient methods inject dL/dY_k into the adjoint at each observation time
 * t_k and return dL/dtheta and, optionally, dL/dU0.
 *
 * Methods (by name, nde_grad_opts.method; a registry like the solvers', nde_grad_method_find):
 *   "discrete"  backpropagation through the accepted steps of a built-in solve (every method
 *               but cvode-*): the exact gradient of the discretised loss (step sizes held
 *               fixed).  Explicit Runge-Kutta: through the stages, observations read from
 *               dopri5's continuous extension differentiated too.  Splitting methods (leapfrog,
 *               yoshida4): through the kicks and drifts in reverse, one VJP per evaluation of f
 *               (the VJP of a first kick that reused the previous step's f is merged into that
 *               step's last).  implicit-midpoint: per step the transposed Newton system
 *               (I - h/2 J(w))^T y = 2 ubar, solved with the forward pass's LU factors and
 *               refined with VJPs at the converged w until the residual is at round-off
 *               (typically two VJPs per step); ubar <- y - ubar, thetabar += h/2 y^T df/dtheta.
 *               Keeps every stage (fast) or, with recompute = 1, only each step's start
 *               state, redoing the step backward.
 *   "interp"    the continuous adjoint of Chen et al. (2018) (below) with u(t) read from the
 *               stored forward solution: dopri5's continuous extension, or CVODES's adjoint
 *               module for cvode-* (checkpoints every checkpoint_steps steps with Hermite
 *               interpolation, mu as a backward quadrature, CVodeReInitB +
 *               CVodeQuadReInitB at every observation jump).  Needs a method with dense output
 *               running adaptively.
 *   "backsolve" the continuous adjoint of Chen et al. (2018): from lambda(T) = dL/du(T) integrate
 *               backward  u' = f,  lambda' = -lambda^T df/du,  mu' = -lambda^T df/dtheta,
 *               adding dL/du(t_k) to lambda at each observation; mu(t_0) = dL/dtheta and
 *               lambda(t_0) = dL/dU0.  euler/rk4 retrace their step grid backward with their
 *               tableau; leapfrog/yoshida4 retrace it with the same composition on the
 *               augmented system, which splits again, into (q, lambda_p, mu_F) and (p,
 *               lambda_q, mu_G); these methods are symmetric and symplectic, so the backward u
 *               retraces the forward one and the adjoint takes the discrete adjoint's kicks and
 *               drifts: backsolve gives the exact discrete gradient (measured: to 1e-15
 *               relative) without storing the trajectory (Sanz-Serna 2016); dopri5 integrates the augmented system adaptively (keeping its step
 *               size across observation jumps), CVODE integrates (u, lambda) with mu as a
 *               quadrature.  The backward u is re-integrated, so it is unstable for dissipative
 *               problems.  Not for implicit-midpoint (its augmented system would need second
 *               derivatives of f in Newton's method).
 *   "forward"   CVODES forward sensitivities s_j = du/dtheta_j (and du/dU0 when gU0 is wanted):
 *               n_theta (+ B n) extra ODEs; for models with few parameters.  cvode-* only.
 *   "auto"      not a method: the solver's default method (nde_grad_default_method: the first
 *               registered method the solver supports, discrete for the built-in solvers,
 *               interp for cvode-*), except that cvode-* use forward when n_theta (+ B n when
 *               gU0 is wanted) <= auto_forward_max_params.  Measured with
 *               benchmarks/bench_adjoint.c (spiral 1000/30 observations, LV UDE): the discrete
 *               adjoint was the fastest on every problem (dopri5+discrete 5-15x faster than
 *               dopri5+interp; interp more accurate on the long spiral), and with CVODE interp
 *               and backsolve cost the same while forward was 5-30x slower at 87-152
 *               parameters.  The forward threshold (8) is not measured: a small-P case is not
 *               in the benchmark yet.
 * Which solver supports which method is the registry's (nde_grad_method_supported); nothing
 * else compares solver names.
 *
 * Continuous adjoints control the error of the backward solve with rtol/atol (0: the solver's);
 * with seminorm = 1 the error norm leaves mu out (Kidger et al. 2021, "Hey, that's not an ODE"):
 * mu feeds back into nothing, so its error does not need to restrict the step size.
 *
 * Breakpoints of the solver (nde_solver_set_breakpoints) hold for the gradient too: the
 * discrete adjoint differentiates the steps the forward pass took (which end on them), the
 * built-in continuous adjoints stop and restart at them backward (dopri5: a new first stage,
 * the step size kept), CVODE's backsolve stops at them and re-initialises, CVODES's adjoint
 * (interp) re-initialises its backward problem at them, and forward sensitivities are
 * re-initialised with the forward problem.  interp with cvode-* and breakpoints inside the
 * solve runs the forward pass without recording (restarting at the breakpoints and keeping u
 * there) and records each piece between breakpoints anew during the backward pass, last piece
 * first, because CVODES can neither restart inside a recording nor reproduce a restart when it
 * recomputes between checkpoints: the forward work is done twice, and the recording's steps
 * count in backward.n_steps.
 *
 * Outcomes, not errors: a forward or backward solve that stops early (step budget, step-size
 * underflow, a recoverable callback failure that persists, a non-finite adjoint, a Newton
 * failure), for every method, leaves the call successful (NDE_OK) with the reason and time in
 * stats->forward or stats->backward and NaN gradients; only a fatal (< 0) callback code is an
 * error (NDE_ERR_CALLBACK).
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
  const char *method; /* a registered method or "auto" (default) */
  int recompute;      /* discrete: keep only step states and recompute stages (less memory) */
  /* continuous adjoints (backsolve, interp) */
  double rtol, atol;  /* backward tolerances; 0 (default): the solver's rtol / atol */
  int seminorm;       /* 1 (default): mu (the parameter adjoint) is left out of the error norm */
  /* CVODES adjoint (interp with cvode-*) */
  long checkpoint_steps;   /* steps between checkpoints; default 100 */
  const char *interp;      /* "hermite" (the default and the only one accepted); "polynomial" is
                            * refused (NDE_ERR_ARG): measured, it crashed CVODES 6.4 with
                            * checkpoint_steps <= 4 and gave |g| > 1e36 on stiff van der Pol
                            * (docs/cli.md) */
  int auto_forward_max_params; /* auto: forward sensitivities up to this many; default 8 */
} nde_grad_opts;

/* Names of the gradient methods followed by "auto", NULL-terminated (static storage). */
NDE_API const char *const *nde_grad_method_names(void);

/* ---- the gradient-method registry ---- */

typedef struct nde_grad_method_info {
  const char *name;        /* "discrete", "interp", "backsolve", "forward" */
  const char *description; /* one line */
  int exact;      /* the exact gradient of the loss of the discretised solve (to round-off) */
  int continuous; /* solves an adjoint or sensitivity ODE to a tolerance (rtol, atol) */
} nde_grad_method_info;

/* Number of registered methods ("auto" is not one), method i in [0, count) (NULL outside),
 * and the method with a name (NULL when unknown, or for "auto").  Registry order is the order
 * of preference used by nde_grad_default_method. */
NDE_API int nde_grad_method_count(void);
NDE_API const nde_grad_method_info *nde_grad_method_at(int i);
NDE_API const nde_grad_method_info *nde_grad_method_find(const char *name);

/* Whether gradient method grad_method (or "auto") works with solver method solver_method: 1
 * yes, 0 no or an unknown name.  interp also needs the solver to run adaptively (not dopri5
 * with fixed_step = 1), which nde_grad_create checks. */
NDE_API int nde_grad_method_supported(const char *grad_method, const char *solver_method);
/* The default gradient method of a solver method (what "auto" picks, up to its
 * forward-sensitivity rule): a registered method it supports; NULL for an unknown solver. */
NDE_API const char *nde_grad_default_method(const char *solver_method);

NDE_API nde_grad_opts nde_grad_opts_default(void);

typedef struct nde_grad nde_grad;

/* A gradient evaluator on a solver (borrowed: it must outlive the evaluator).  Statuses:
 * NDE_ERR_ARG (unknown method, or a method the solver does not support, see
 * nde_grad_method_supported; the message lists the valid choices), NDE_ERR_NOMEM. */
NDE_API nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out,
                           nde_error *err);
NDE_API void nde_grad_destroy(nde_grad **g);
NDE_API const char *nde_grad_errmsg(const nde_grad *g);

typedef struct nde_grad_stats {
  nde_solve_stats forward; /* the forward solve; reason != NDE_REASON_NONE means no gradient */
  long n_vjp;              /* VJP calls of the backward pass */
  /* The backward pass: reason, t_stop and bad_row/bad_state for every method (for discrete:
   * the step where it stopped; for forward: a non-finite gradient), steps and f calls for the
   * continuous adjoints.  A backward pass that stops early is an outcome like a forward one:
   * NDE_OK, L is set, gradients are NaN and backward.reason says why (a recoverable callback
   * failure that could not be retried: NDE_REASON_RHS_RECOVERABLE, or NDE_REASON_RHS_FAILED
   * after retries; a non-finite adjoint: NDE_REASON_NONFINITE; implicit-midpoint's
   * transposed system not converging: NDE_REASON_NEWTON_FAILED). */
  nde_solve_stats backward;
  const char *method;      /* the method used (what "auto" chose); static string */
} nde_grad_stats;

/* Loss and gradient at theta from U0 (B x n) over t_obs[0..n_obs-1].
 *   L       the loss (NaN when the forward solve stopped early; see stats->forward.reason)
 *   gtheta  dL/dtheta (n_theta, overwritten; may be NULL)
 *   gU0     dL/dU0 (B x n, overwritten; may be NULL)
 *   Y       the solution at the observation times (n_obs x B x n, may be NULL)
 * A forward solve that stops early is an outcome, not an error: the call returns NDE_OK, sets
 * stats->forward.reason, L = NaN and fills gtheta/gU0 with NaN.  A backward pass that stops
 * early likewise returns NDE_OK with L set, gtheta/gU0 NaN and stats->backward.reason.  A
 * non-finite L after a complete forward solve (the loss overflowed, or was evaluated outside its
 * domain) gives NDE_OK with that L, gtheta/gU0 NaN and no backward pass (both reasons NONE).
 * Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM, NDE_ERR_CALLBACK (a fatal (< 0) code from f, the VJP
 * or the JVP), NDE_ERR_NUMERIC (the loss function failed). */
NDE_API nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
