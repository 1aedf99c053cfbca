/* nde grad: the loss at observation times and its gradient through a solve.
 *
 * A loss is a function of the solution at the observation times, Y (n_obs x B x n), returning
 * L and dL/dY.  The gradient methods inject dL/dY_k into the adjoint at each observation time
 * t_k and return dL/dtheta and, optionally, dL/dU0.
 *
 * Methods (by name):
 *   "discrete"  backpropagation through the steps of an explicit Runge-Kutta solve: the exact
 *               gradient of the discretised loss.  Keeps every stage (fast) or, with
 *               recompute = 1, only each step's start state, redoing the stages backward.
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
int nde_obs_loss_eval(void *ctx, int n_obs, int B, int n, const double *Y, double *L,
                      double *dLdY);

typedef struct nde_grad_opts {
  const char *method; /* "discrete" (default) */
  int recompute;      /* discrete: keep only step states and recompute stages (less memory) */
} nde_grad_opts;

nde_grad_opts nde_grad_opts_default(void);

typedef struct nde_grad nde_grad;

/* A gradient evaluator on a solver (borrowed: it must outlive the evaluator).  Statuses:
 * NDE_ERR_ARG (unknown method, or a method the solver does not support), NDE_ERR_NOMEM. */
nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out);
void nde_grad_destroy(nde_grad **g);
const char *nde_grad_errmsg(const nde_grad *g);

typedef struct nde_grad_stats {
  nde_solve_stats forward; /* the forward solve; reason != NDE_REASON_NONE means no gradient */
  long n_vjp;              /* VJP calls of the backward pass */
} nde_grad_stats;

/* Loss and gradient at theta from U0 (B x n) over t_obs[0..n_obs-1].
 *   L       the loss (NaN when the forward solve stopped early; see stats->forward.reason)
 *   gtheta  dL/dtheta (n_theta, overwritten; may be NULL)
 *   gU0     dL/dU0 (B x n, overwritten; may be NULL)
 *   Y       the solution at the observation times (n_obs x B x n, may be NULL)
 * A forward solve that stops early is an outcome, not an error: the call returns NDE_OK, sets
 * stats->forward.reason, L = NaN and fills gtheta/gU0 with NaN.  Statuses: NDE_ERR_ARG,
 * NDE_ERR_NOMEM, NDE_ERR_CALLBACK (fatal RHS), NDE_ERR_NUMERIC (the loss function failed). */
nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
