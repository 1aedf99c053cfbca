/* nde model: the right-hand side f(t, u, theta) of an ODE du/dt = f, behind an ops table.
 *
 * A right-hand side works on a batch of B states at once: U is B x n (row-major, one state per
 * row), all rows at the same time t.  Besides f it provides the vector-Jacobian product (for
 * adjoints) and the Jacobian-vector product (for Newton-Krylov and forward sensitivities).  The
 * compiled .nde tape and hand-written C callbacks implement the same table, so every solver and
 * gradient method works on either.
 *
 * Callback return values: 0 ok; > 0 recoverable (a non-finite value, a state outside the
 * model's domain: an adaptive solver retries with a smaller step); < 0 fatal (the solve stops
 * with NDE_ERR_CALLBACK).
 */
#ifndef NDE_MODEL_H
#define NDE_MODEL_H

#include <stddef.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_rhs_ops {
  /* dU = f(t, U, theta).  When cache is non-NULL, save cache_per_row * B doubles there that
   * let vjp at the same (t, U, theta) skip recomputing intermediate values. */
  int (*f)(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
           double *cache);
  /* Given cotangents L (B x n):
   *   gU     += L^T df/dU     per row (B x n; may be NULL to skip)
   *   gtheta += sum over rows of L^T df/dtheta   (n_theta; may be NULL to skip)
   * cache is what f saved at the same (t, U, theta), or NULL (recompute). */
  int (*vjp)(void *ctx, double t, int B, const double *U, const double *theta, const double *L,
             const double *cache, double *gU, double *gtheta);
  /* JV = df/dU . V + df/dtheta . Vtheta (B x n, overwritten).  V (B x n) or Vtheta (n_theta)
   * may be NULL, meaning zero.  May be NULL in the table if the model has no JVP. */
  int (*jvp)(void *ctx, double t, int B, const double *U, const double *theta, const double *V,
             const double *Vtheta, double *JV);
  /* Release ctx; called by nde_rhs_destroy when the rhs took ownership.  May be NULL. */
  void (*destroy)(void *ctx);
} nde_rhs_ops;

typedef struct nde_rhs_info {
  int n_state;          /* n, the width of one state row */
  size_t n_theta;       /* length of the flat parameter vector */
  int max_batch;        /* the largest B the callbacks accept */
  size_t cache_per_row; /* doubles f may save per row for vjp (0: no cache) */
} nde_rhs_info;

typedef struct nde_rhs nde_rhs;

/* Wrap an ops table.  ops is copied; ctx is borrowed or taken per own.  f and vjp are required.
 * *out is NULL on failure (and ctx is destroyed if it was taken). */
nde_status nde_rhs_create(const nde_rhs_ops *ops, void *ctx, nde_ownership own,
                          const nde_rhs_info *info, nde_rhs **out);
void nde_rhs_destroy(nde_rhs **rhs);

const nde_rhs_info *nde_rhs_get_info(const nde_rhs *rhs);
int nde_rhs_has_jvp(const nde_rhs *rhs);

/* Calls through the table, counted (see nde_rhs_counts).  Return the callback's value. */
int nde_rhs_f(nde_rhs *rhs, double t, int B, const double *U, const double *theta, double *dU,
              double *cache);
int nde_rhs_vjp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *L, const double *cache, double *gU, double *gtheta);
int nde_rhs_jvp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *V, const double *Vtheta, double *JV);

/* Number of f, vjp and jvp calls (each counted once per call, whatever B) since creation or the
 * last reset. */
typedef struct nde_rhs_counts {
  long f, vjp, jvp;
} nde_rhs_counts;
nde_rhs_counts nde_rhs_get_counts(const nde_rhs *rhs);
void nde_rhs_reset_counts(nde_rhs *rhs);

#ifdef __cplusplus
}
#endif
#endif
