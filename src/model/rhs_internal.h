/* The right-hand-side handle's layout, for the solve and grad layers' per-step calls: the
 * inline nde__rhs_f / nde__rhs_vjp do exactly what nde_rhs_f / nde_rhs_vjp do (batch check,
 * counter, cache only when the model keeps one) without a call into the model layer per stage. */
#ifndef NDE_MODEL_RHS_INTERNAL_H
#define NDE_MODEL_RHS_INTERNAL_H

#include "nde/model.h"

struct nde_rhs {
  nde_rhs_ops ops;
  void *ctx;
  nde_ownership own;
  nde_rhs_info info;
  nde_rhs_counts counts;
};

static inline int nde__rhs_f(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                             double *dU, double *cache) {
  if (B < 1 || B > rhs->info.max_batch) return -1;
  rhs->counts.f++;
  return rhs->ops.f(rhs->ctx, t, B, U, theta, dU, rhs->info.cache_per_row ? cache : NULL);
}

static inline int nde__rhs_vjp(nde_rhs *rhs, double t, int B, const double *U,
                               const double *theta, const double *L, const double *cache,
                               double *gU, double *gtheta) {
  if (B < 1 || B > rhs->info.max_batch) return -1;
  rhs->counts.vjp++;
  return rhs->ops.vjp(rhs->ctx, t, B, U, theta, L, rhs->info.cache_per_row ? cache : NULL, gU,
                      gtheta);
}

#endif
