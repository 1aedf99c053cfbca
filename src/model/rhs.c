/* The right-hand-side handle: an ops table, its context and evaluation counters. */
#include <stdlib.h>

#include "core/internal.h"
#include "nde/model.h"

struct nde_rhs {
  nde_rhs_ops ops;
  void *ctx;
  nde_ownership own;
  nde_rhs_info info;
  nde_rhs_counts counts;
};

nde_status nde_rhs_create(const nde_rhs_ops *ops, void *ctx, nde_ownership own,
                          const nde_rhs_info *info, nde_rhs **out, nde_error *err) {
  nde_status st = NDE_OK;
  nde_rhs *r = NULL;
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_rhs_create: no output pointer");
  *out = NULL;
  if (!ops || !info || !ops->f || !ops->vjp || info->n_state < 1 || info->max_batch < 1) {
    st = nde__fail(err, NDE_ERR_ARG,
                   "a right-hand side needs f and vjp callbacks, n_state >= 1 and max_batch >= 1");
    goto fail;
  }
  r = calloc(1, sizeof *r);
  if (!r) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the right-hand side");
    goto fail;
  }
  r->ops = *ops;
  r->ctx = ctx;
  r->own = own;
  r->info = *info;
  *out = r;
  return NDE_OK;
fail:
  if (own == NDE_TAKE && ops && ops->destroy && ctx) ops->destroy(ctx);
  return st;
}

void nde_rhs_destroy(nde_rhs **rhs) {
  if (!rhs || !*rhs) return;
  nde_rhs *r = *rhs;
  if (r->own == NDE_TAKE && r->ops.destroy) r->ops.destroy(r->ctx);
  free(r);
  *rhs = NULL;
}

const nde_rhs_info *nde_rhs_get_info(const nde_rhs *rhs) { return &rhs->info; }
int nde_rhs_has_jvp(const nde_rhs *rhs) { return rhs->ops.jvp != NULL; }

int nde_rhs_f(nde_rhs *rhs, double t, int B, const double *U, const double *theta, double *dU,
              double *cache) {
  rhs->counts.f++;
  return rhs->ops.f(rhs->ctx, t, B, U, theta, dU, rhs->info.cache_per_row ? cache : NULL);
}

int nde_rhs_vjp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *L, const double *cache, double *gU, double *gtheta) {
  rhs->counts.vjp++;
  return rhs->ops.vjp(rhs->ctx, t, B, U, theta, L, rhs->info.cache_per_row ? cache : NULL, gU,
                      gtheta);
}

int nde_rhs_jvp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *V, const double *Vtheta, double *JV) {
  if (!rhs->ops.jvp) return -1;
  rhs->counts.jvp++;
  return rhs->ops.jvp(rhs->ctx, t, B, U, theta, V, Vtheta, JV);
}

nde_rhs_counts nde_rhs_get_counts(const nde_rhs *rhs) { return rhs->counts; }
void nde_rhs_reset_counts(nde_rhs *rhs) {
  rhs->counts.f = rhs->counts.vjp = rhs->counts.jvp = 0;
}
