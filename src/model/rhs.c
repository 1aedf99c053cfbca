/* The right-hand-side handle: an ops table, its context and evaluation counters; the optional
 * members (row map, breakpoints, clone) answer for tables that do not have them. */
#include <math.h>
#include <stdlib.h>

#include "core/internal.h"
#include "model/rhs_internal.h"

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
  if (ops->clone && !ops->destroy) {
    st = nde__fail(err, NDE_ERR_ARG, "a right-hand side with a clone callback needs destroy");
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
  return nde__rhs_f(rhs, t, B, U, theta, dU, cache);
}

int nde_rhs_vjp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *L, const double *cache, double *gU, double *gtheta) {
  return nde__rhs_vjp(rhs, t, B, U, theta, L, cache, gU, gtheta);
}

int nde_rhs_jvp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *V, const double *Vtheta, double *JV) {
  if (!rhs->ops.jvp || B < 1 || B > rhs->info.max_batch) return -1;
  rhs->counts.jvp++;
  return rhs->ops.jvp(rhs->ctx, t, B, U, theta, V, Vtheta, JV);
}

nde_rhs_counts nde_rhs_get_counts(const nde_rhs *rhs) { return rhs->counts; }
void nde_rhs_reset_counts(nde_rhs *rhs) {
  rhs->counts.f = rhs->counts.vjp = rhs->counts.jvp = 0;
}

nde_status nde_rhs_set_rows(nde_rhs *rhs, int B, const int *series_of_row) {
  if (!rhs || B < 1 || B > rhs->info.max_batch) return NDE_ERR_ARG;
  if (series_of_row)
    for (int r = 0; r < B; r++)
      if (series_of_row[r] < 0) return NDE_ERR_ARG;
  return rhs->ops.set_rows ? rhs->ops.set_rows(rhs->ctx, B, series_of_row) : NDE_OK;
}

size_t nde_rhs_breakpoints(const nde_rhs *rhs, double t0, double t1, size_t max, double *out) {
  if (!rhs || !rhs->ops.breakpoints) return 0;
  return rhs->ops.breakpoints(rhs->ctx, t0, t1, out ? max : 0, out);
}

void nde_rhs_domain(const nde_rhs *rhs, double *lo, double *hi) {
  double a = -INFINITY, b = INFINITY;
  if (rhs && rhs->ops.domain) rhs->ops.domain(rhs->ctx, &a, &b);
  if (lo) *lo = a;
  if (hi) *hi = b;
}

nde_status nde_rhs_clone(const nde_rhs *rhs, nde_rhs **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_rhs_clone: no output pointer");
  *out = NULL;
  if (!rhs) return nde__fail(err, NDE_ERR_ARG, "nde_rhs_clone: no right-hand side");
  if (!rhs->ops.clone)
    return nde__fail(err, NDE_ERR_UNSUPPORTED, "this right-hand side cannot be cloned (its ops table has no clone)");
  void *ctx = NULL;
  nde_status st = rhs->ops.clone(rhs->ctx, &ctx);
  if (st != NDE_OK) return nde__fail(err, st, "%s cloning the right-hand side", nde_status_str(st));
  return nde_rhs_create(&rhs->ops, ctx, NDE_TAKE, &rhs->info, out, err);
}
