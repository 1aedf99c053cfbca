/* The gradient evaluator: the registry of gradient methods and which solver methods each
 * supports, the choice of "auto", and the evaluation (forward solve with the store the method
 * needs, the loss, the method's backward pass).  The discrete adjoint is in discrete.c, the
 * built-in continuous adjoints in adjoint.c, the CVODES methods in cvodes.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define FAM(f) (1u << (f))

/* The registry, in order of preference (nde_grad_default_method takes the first a solver
 * supports): X(name, description, exact, continuous, id, families, needs_dense). */
#define NDE__GMETHODS(X)                                                                        \
  X("discrete",                                                                                 \
    "backpropagation through the solver's steps: the exact gradient of the discretised loss",   \
    1, 0, NDE__GM_DISCRETE, FAM(NDE__FAM_ERK) | FAM(NDE__FAM_SPLIT) | FAM(NDE__FAM_IMPLICIT), 0) \
  X("interp",                                                                                   \
    "continuous adjoint with u(t) from the stored forward solution (dense output, CVODES "      \
    "checkpoints)",                                                                             \
    0, 1, NDE__GM_INTERP, FAM(NDE__FAM_ERK) | FAM(NDE__FAM_CVODE), 1)                           \
  X("backsolve",                                                                                \
    "continuous adjoint integrating u backward with the adjoint (Chen et al. 2018)", 0, 1,      \
    NDE__GM_BACKSOLVE, FAM(NDE__FAM_ERK) | FAM(NDE__FAM_SPLIT) | FAM(NDE__FAM_CVODE), 0)        \
  X("forward", "CVODES forward sensitivities du/dtheta (and du/dU0), for few parameters", 0, 1, \
    NDE__GM_FORWARD, FAM(NDE__FAM_CVODE), 0)

#define NDE__GM_ENTRY(name, desc, exact, cont, id, fams, dense) \
  {{name, desc, exact, cont}, id, fams, dense},
static const nde__gmdef gmethods[] = {NDE__GMETHODS(NDE__GM_ENTRY)};
#undef NDE__GM_ENTRY
#define N_GMETHODS ((int)(sizeof gmethods / sizeof gmethods[0]))

#define NDE__GM_NAME(name, ...) name,
static const char *const gm_names[] = {NDE__GMETHODS(NDE__GM_NAME) "auto", NULL};
#undef NDE__GM_NAME

const char *const *nde_grad_method_names(void) { return gm_names; }
int nde_grad_method_count(void) { return N_GMETHODS; }

const nde_grad_method_info *nde_grad_method_at(int i) {
  return i >= 0 && i < N_GMETHODS ? &gmethods[i].info : NULL;
}

static const nde__gmdef *gm_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < N_GMETHODS; i++)
    if (strcmp(gmethods[i].info.name, name) == 0) return &gmethods[i];
  return NULL;
}

static const nde__gmdef *gm_by_id(nde__gmethod id) {
  for (int i = 0; i < N_GMETHODS; i++)
    if (gmethods[i].id == id) return &gmethods[i];
  return NULL;
}

const nde_grad_method_info *nde_grad_method_find(const char *name) {
  const nde__gmdef *d = gm_lookup(name);
  return d ? &d->info : NULL;
}

static int gm_supports(const nde__gmdef *d, const nde__method *sm) {
  return (d->families & FAM(sm->family)) && (!d->needs_dense || sm->info.dense_output);
}

int nde_grad_method_supported(const char *grad_method, const char *solver_method) {
  const nde__method *sm = nde__method_lookup(solver_method);
  if (!sm || !grad_method) return 0;
  if (strcmp(grad_method, "auto") == 0) return 1;
  const nde__gmdef *d = gm_lookup(grad_method);
  return d && gm_supports(d, sm);
}

static const nde__gmdef *gm_default(const nde__method *sm) {
  for (int i = 0; i < N_GMETHODS; i++)
    if (gm_supports(&gmethods[i], sm)) return &gmethods[i];
  return NULL;
}

const char *nde_grad_default_method(const char *solver_method) {
  const nde__method *sm = nde__method_lookup(solver_method);
  const nde__gmdef *d = sm ? gm_default(sm) : NULL;
  return d ? d->info.name : NULL;
}

/* "a, b or c": the gradient methods solver method sm supports (or, sm NULL, every one). */
static void supported_phrase(const nde__method *sm, char *buf, size_t len) {
  const char *names[N_GMETHODS + 1];
  int k = 0;
  for (int i = 0; i < N_GMETHODS; i++)
    if (!sm || gm_supports(&gmethods[i], sm)) names[k++] = gmethods[i].info.name;
  names[k] = NULL;
  nde__names_phrase(names, "or", buf, len);
}

/* "a, b or c": the solver methods gradient method d supports. */
static void solvers_phrase(const nde__gmdef *d, char *buf, size_t len) {
  const int n = nde_solver_method_count();
  const char *names[64];
  int k = 0;
  for (int i = 0; i < n && k < 63; i++) {
    const nde__method *sm = nde__method_lookup(nde_solver_method_at(i)->name);
    if (gm_supports(d, sm)) names[k++] = sm->info.name;
  }
  names[k] = NULL;
  nde__names_phrase(names, "or", buf, len);
}

nde_grad_opts nde_grad_opts_default(void) {
  nde_grad_opts o;
  memset(&o, 0, sizeof o);
  o.method = "auto";
  o.rtol = 0.0;
  o.atol = 0.0;
  o.seminorm = 1;
  o.checkpoint_steps = 100;
  o.interp = "hermite";
  o.auto_forward_max_params = 8;
  return o;
}

void nde_grad_destroy(nde_grad **gp) {
  if (!gp || !*gp) return;
  nde_grad *g = *gp;
  free(g->Y);
  free(g->dLdY);
  free(g->lam);
  free(g->Ubar);
  free(g->Kbar);
  free(g->W);
  free(g->Ust);
  free(g->cst);
  free(g->utmp);
  free(g->pend);
  free(g->gtmp);
  nde__adjoint_builtin_free(g);
  nde__gcv_destroy(g);
  free(g);
  *gp = NULL;
}

const char *nde_grad_errmsg(const nde_grad *g) { return nde__err_msg(g ? &g->err : NULL); }

nde__gmethod nde__grad_pick(const nde_grad *g, int B, int want_gU0) {
  if (!g->is_auto) return g->method;
  const nde_solver *s = g->solver;
  if (s->kind == NDE__KIND_CVODE) {
    /* The rows of this call, not the solver's max_batch: a fit makes its solvers for its
     * largest batch, and a smaller one may still be cheapest with forward sensitivities. */
    size_t ns = g->P + (want_gU0 ? (size_t)B * (size_t)g->n : 0);
    if (ns <= (size_t)g->opts.auto_forward_max_params) return NDE__GM_FORWARD;
  }
  return gm_default(s->method)->id;
}

nde_status nde_grad_create(nde_solver *solver, const nde_grad_opts *opts, nde_grad **out,
                           nde_error *err) {
  nde_status st = NDE_ERR_NOMEM;
  nde__err e0 = {NDE_ERR_ARG, "a gradient evaluator needs a solver and an output pointer"};
  if (out) *out = NULL;
  if (!out || !solver) {
    nde__err_export(&e0, err);
    return NDE_ERR_ARG;
  }
  nde_grad *g = calloc(1, sizeof *g);
  if (!g) {
    e0 = (nde__err){NDE_ERR_NOMEM, "out of memory creating the gradient evaluator"};
    nde__err_export(&e0, err);
    return NDE_ERR_NOMEM;
  }
  g->solver = solver;
  g->opts = opts ? *opts : nde_grad_opts_default();
  const char *m = g->opts.method ? g->opts.method : "(null)";
  const int cvode = solver->kind == NDE__KIND_CVODE;
  const nde__method *sm = solver->method;
  const nde__gmdef *d = gm_lookup(m);
  char list[256];
  if (strcmp(m, "auto") == 0) {
    g->is_auto = 1;
    g->opts.method = "auto";
  } else if (!d) {
    supported_phrase(NULL, list, sizeof list);
    st = nde__errf(&g->err, NDE_ERR_ARG, "unknown gradient method '%s' (expected %s or auto)", m,
                   list);
    goto fail;
  } else if (!gm_supports(d, sm)) {
    char solvers[256];
    solvers_phrase(d, solvers, sizeof solvers);
    supported_phrase(sm, list, sizeof list);
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "gradient method '%s' does not work with solver '%s' (it needs %s); with %s "
                   "use %s (or auto)",
                   m, sm->info.name, solvers, sm->info.name, list);
    goto fail;
  } else if (d->needs_dense && solver->kind == NDE__KIND_FIXED) {
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "gradient method '%s' needs solver '%s' to run adaptively (fixed_step = 0)",
                   m, sm->info.name);
    goto fail;
  } else {
    g->method = d->id;
    g->opts.method = d->info.name;
  }
  if (!(g->opts.rtol >= 0) || !(g->opts.atol >= 0) || g->opts.checkpoint_steps < 1 ||
      !g->opts.interp ||
      (strcmp(g->opts.interp, "hermite") != 0 && strcmp(g->opts.interp, "polynomial") != 0)) {
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "invalid gradient options (rtol = %g, atol = %g, checkpoint_steps = %ld, "
                   "interp = '%s'; expected tolerances >= 0, checkpoint_steps >= 1, interp "
                   "hermite or polynomial)",
                   g->opts.rtol, g->opts.atol, g->opts.checkpoint_steps,
                   g->opts.interp ? g->opts.interp : "(null)");
    goto fail;
  }
  if (strcmp(g->opts.interp, "polynomial") == 0) {
    /* CVODES 6.4's polynomial interpolation, measured here with cvode-bdf: a segmentation fault
     * in CVodeB with checkpoint_steps <= 4 (van der Pol, mu = 1, 10, 100, 900), and gradients
     * of 1e36 to 1e42 reported as success on stiff van der Pol (mu = 900) at every rtol and
     * checkpoint_steps tried.  Hermite interpolation gives the right gradient there. */
    st = nde__errf(&g->err, NDE_ERR_ARG,
                   "interp = 'polynomial' is refused: CVODES's polynomial interpolation crashed "
                   "with checkpoint_steps <= 4 and returned gradients of 1e36 and more on a stiff "
                   "problem (docs/cli.md); use interp = 'hermite' (the default)");
    goto fail;
  }
  g->n = solver->n;
  g->P = nde_rhs_get_info(solver->rhs)->n_theta;
  g->cache_per_row = solver->cache_per_row;
  if (cvode) {
    st = nde__gcv_create(g);
    if (st != NDE_OK) goto fail;
    *out = g;
    return NDE_OK;
  }
  st = NDE_ERR_NOMEM;
  /* Evaluations per step (and at least the three B n buffers of implicit-midpoint's
   * transposed solve). */
  g->ns = solver->ns_run;
  if (solver->tab && solver->tab->s > g->ns) g->ns = solver->tab->s;
  if (g->ns < 3) g->ns = 3;
  size_t bn, sbn, sbc, ust;
  if (!nde__mul_size((size_t)solver->max_batch, (size_t)g->n, &bn) ||
      !nde__mul_size(bn, (size_t)g->ns, &sbn) ||
      !nde__mul_size((size_t)solver->max_batch * (size_t)g->ns, g->cache_per_row, &sbc) ||
      !nde__mul_size(bn, (size_t)g->n + 2, &ust))
    goto fail;
  if (ust < sbn) ust = sbn;
  g->lam = nde__dalloc(bn);
  g->Kbar = nde__dalloc(bn);
  g->Ubar = nde__dalloc(sbn);
  g->W = nde__dalloc(sbn);
  g->pend = nde__dalloc(bn);
  g->gtmp = nde__dalloc(g->P);
  if (!g->lam || !g->Kbar || !g->Ubar || !g->W || !g->pend || !g->gtmp) goto fail;
  if (g->opts.recompute) {
    g->Ust = nde__dalloc(ust);
    g->cst = nde__dalloc(sbc);
    g->utmp = nde__dalloc(bn);
    if (!g->Ust || !g->cst || !g->utmp) goto fail;
  }
  if (g->method == NDE__GM_BACKSOLVE || g->method == NDE__GM_INTERP) {
    st = nde__adjoint_builtin_init(g);
    if (st != NDE_OK) goto fail;
  }
  *out = g;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__errf(&g->err, st, "out of memory creating the gradient evaluator");
  nde__err_export(&g->err, err);
  {
    nde_status keep = st;
    nde_grad_destroy(&g);
    return keep;
  }
}

int nde__grad_grow_y(nde_grad *g, size_t need) {
  if (need <= g->y_cap) return 0;
  double *y = realloc(g->Y, need * sizeof *y);
  if (!y) return -1;
  g->Y = y;
  double *d = realloc(g->dLdY, need * sizeof *d);
  if (!d) return -1;
  g->dLdY = d;
  g->y_cap = need;
  return 0;
}

void nde__grad_nan(size_t P, size_t bn, double *gtheta, double *gU0) {
  if (gtheta)
    for (size_t i = 0; i < P; i++) gtheta[i] = NAN;
  if (gU0)
    for (size_t q = 0; q < bn; q++) gU0[q] = NAN;
}

nde_status nde_grad_eval(nde_grad *g, const double *theta, int B, const double *U0, int n_obs,
                         const double *t_obs, nde_loss_fn loss, void *loss_ctx, double *L,
                         double *gtheta, double *gU0, double *Y, nde_grad_stats *stats) {
  nde_grad_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  stats->backward.bad_row = stats->backward.bad_state = -1;
  if (!g) return NDE_ERR_ARG;
  if (!loss || !L || n_obs < 1 || B < 1)
    return nde__errf(&g->err, NDE_ERR_ARG, "gradient needs a loss, L, n_obs >= 1 and B >= 1");
  nde_solver *s = g->solver;
  const size_t n_theta = g->P;
  const size_t bn = (size_t)B * (size_t)g->n;
  size_t ylen;
  if (!nde__mul_size((size_t)n_obs, bn, &ylen) || nde__grad_grow_y(g, ylen))
    return nde__errf(&g->err, NDE_ERR_NOMEM, "out of memory for %d observations", n_obs);
  const nde__gmethod m = nde__grad_pick(g, B, gU0 != NULL);
  stats->method = gm_by_id(m)->info.name;
  nde_status st;
  if (s->kind == NDE__KIND_CVODE) {
    st = nde__gcv_eval(g, m, theta, B, U0, n_obs, t_obs, loss, loss_ctx, L, gtheta, gU0, stats);
    if (Y && st == NDE_OK) memcpy(Y, g->Y, ylen * sizeof *Y);
  } else {
    const nde__store_mode mode = m == NDE__GM_DISCRETE
                                     ? (g->opts.recompute ? NDE__STORE_STEPS : NDE__STORE_STAGES)
                                 : m == NDE__GM_INTERP ? NDE__STORE_DENSE
                                                       : NDE__STORE_GRID;
    st = nde__solver_run(s, theta, B, U0, n_obs, t_obs, g->Y,
                         (gtheta || gU0) ? mode : NDE__STORE_NONE, &stats->forward);
    if (st != NDE_OK) return nde__errf(&g->err, st, "%s", nde_solver_errmsg(s));
    if (Y) memcpy(Y, g->Y, ylen * sizeof *Y);
    if (stats->forward.reason != NDE_REASON_NONE) {
      *L = NAN;
      nde__grad_nan(n_theta, bn, gtheta, gU0);
      return NDE_OK;
    }
    if (loss(loss_ctx, n_obs, B, g->n, g->Y, L, g->dLdY) != 0)
      return nde__errf(&g->err, NDE_ERR_NUMERIC, "the loss function failed");
    if (!gtheta && !gU0) return NDE_OK;
    /* A non-finite loss (a misfit that overflows, a logarithm of a negative value) has no
     * gradient: the backward pass would only fail on its non-finite seed. */
    if (!isfinite(*L)) {
      nde__grad_nan(n_theta, bn, gtheta, gU0);
      return NDE_OK;
    }
    if (m != NDE__GM_DISCRETE) {
      st = nde__adjoint_builtin(g, theta, B, n_obs, t_obs, gtheta, gU0, stats);
    } else {
      /* gtheta may be NULL when only dL/dU0 is wanted; the VJP then skips the parameter part. */
      if (gtheta) memset(gtheta, 0, n_theta * sizeof *gtheta);
      st = nde__discrete_backward(g, theta, B, n_obs, gtheta, stats);
      if (st == NDE_OK && gU0) memcpy(gU0, g->lam, bn * sizeof *gU0);
    }
  }
  if (st != NDE_OK || stats->forward.reason != NDE_REASON_NONE || (!gtheta && !gU0) ||
      !isfinite(*L))
    return st;
  /* Every method: a backward pass that stopped, or that ended in non-finite values, leaves NaN
   * gradients and the reason (a NaN in a quadrature such as mu is seen only here). */
  nde_solve_stats *bs = &stats->backward;
  if (bs->reason == NDE_REASON_NONE) {
    long bad = gU0 ? nde__first_nonfinite(bn, gU0) : -1;
    if (bad >= 0) {
      bs->bad_row = (int)(bad / g->n);
      bs->bad_state = (int)(bad % g->n);
    }
    if (bad >= 0 || (gtheta && nde__first_nonfinite(n_theta, gtheta) >= 0)) {
      bs->reason = NDE_REASON_NONFINITE;
      bs->t_stop = t_obs[0];
    }
  }
  if (bs->reason != NDE_REASON_NONE) nde__grad_nan(n_theta, bn, gtheta, gU0);
  return NDE_OK;
}
