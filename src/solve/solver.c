/* The solver handle, breakpoints, the model's explicit Runge-Kutta step, and the two built-in
 * solve loops: fixed steps (explicit Runge-Kutta, splitting methods, implicit midpoint) that land
 * on every observation time and breakpoint, and adaptive steps (dopri5) whose output at the
 * observation times comes from the continuous extension and which restart at breakpoints.  Both
 * record the trajectory store the gradient layer reads.  CVODE solves live in cvode.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "model/rhs_internal.h"

nde_solver_opts nde_solver_opts_default(void) {
  nde_solver_opts o;
  memset(&o, 0, sizeof o);
  o.method = "rk4";
  o.dt = 0.0;
  o.steps_per_interval = 1;
  o.max_steps = 1000000;
  o.dt_snap = 1e-9;
  o.rtol = 1e-6;
  o.atol = 1e-9;
  o.h0 = 0.0;
  o.h_min = 0.0;
  o.h_max = 0.0;
  o.fixed_step = 0;
  o.safety = 0.9;
  o.fac_min = 0.2;
  o.fac_max = 10.0;
  o.pi_beta = 0.04;
  o.max_retries = 10;
  o.retry_shrink = 0.25;
  o.stiff_test_after = 1000;
  o.stiff_test_count = 15;
  o.stiff_bound = 3.25;
  o.cvode_linsol = "band";
  o.cvode_max_order = 0;
  o.newton_tol = 1e-10;
  o.newton_max_iter = 10;
  o.state_names = NULL;
  return o;
}

const char *nde_stop_reason_str(nde_stop_reason r) {
  switch (r) {
    case NDE_REASON_NONE: return "reached the final time";
    case NDE_REASON_NONFINITE: return "the state became NaN or infinite";
    case NDE_REASON_RHS_RECOVERABLE:
      return "the right-hand side reported a recoverable failure that could not be retried";
    case NDE_REASON_MAX_STEPS: return "the step budget was used up";
    case NDE_REASON_STEP_UNDERFLOW:
      return "the step size became too small";
    case NDE_REASON_RHS_FAILED:
      return "the right-hand side kept failing or giving non-finite values although the step "
             "was reduced";
    case NDE_REASON_STIFF_SUSPECTED:
      return "the problem appears to be stiff (an implicit method such as cvode-bdf is needed)";
    case NDE_REASON_NEWTON_FAILED: return "the Newton iteration failed to converge";
    case NDE_REASON_ERR_TEST_FAILED:
      return "the error test failed repeatedly (the step size could not be reduced enough)";
    case NDE_REASON_TOO_MUCH_ACCURACY:
      return "the tolerances ask for more accuracy than double precision can give (raise rtol "
             "or atol)";
  }
  return "unknown reason";
}

int nde_solver_method_known(const char *name) {
  for (const char *const *m = nde_solver_method_names(); *m; m++)
    if (name && strcmp(*m, name) == 0) return 1;
  return 0;
}

static void traj_free(nde__traj *tr) {
  free(tr->t);
  free(tr->h);
  free(tr->span);
  free(tr->fresh);
  free(tr->obs_end);
  free(tr->U);
  free(tr->cache);
  free(tr->obs_step);
  free(tr->obs_theta);
  memset(tr, 0, sizeof *tr);
}

void nde_solver_destroy(nde_solver **sp) {
  if (!sp || !*sp) return;
  nde_solver *s = *sp;
  free(s->K);
  free(s->Us);
  free(s->u);
  free(s->ccache);
  free(s->is_p);
  free(s->bp);
  nde__newton_free(&s->nw);
  nde__adapt_free(&s->adapt);
  nde__cvode_destroy(&s->cv);
  traj_free(&s->traj);
  free(s);
  *sp = NULL;
}

/* The options o of method me run as kind (NDE__KIND_*): NDE_OK, or NDE_ERR_ARG with the message
 * in e. */
static nde_status check_opts(const nde__method *me, int kind, const nde_solver_opts *o,
                             nde__err *e) {
  if (kind == NDE__KIND_FIXED) {
    if (!(o->dt > 0.0) && o->steps_per_interval < 1)
      return nde__errf(e, NDE_ERR_ARG,
                       "fixed-step method needs dt > 0 or steps_per_interval >= 1 (got dt = %g, "
                       "steps_per_interval = %d)",
                       o->dt, o->steps_per_interval);
    if (!isfinite(o->dt) || o->max_steps < 1 || !(o->dt_snap >= 0.0) || o->dt_snap >= 1.0)
      return nde__errf(e, NDE_ERR_ARG,
                       "invalid solver options (dt = %g, max_steps = %ld, dt_snap = %g)", o->dt,
                       o->max_steps, o->dt_snap);
    if (me->family == NDE__FAM_IMPLICIT &&
        (!(o->newton_tol > 0.0 && o->newton_tol < 1.0) || o->newton_max_iter < 1))
      return nde__errf(e, NDE_ERR_ARG,
                       "invalid Newton options for %s (newton_tol = %g, newton_max_iter = %d; "
                       "expected 0 < newton_tol < 1 and newton_max_iter >= 1)",
                       me->info.name, o->newton_tol, o->newton_max_iter);
    return NDE_OK;
  }
  if (!(o->rtol >= 0 && o->atol >= 0 && o->rtol + o->atol > 0) || !isfinite(o->rtol) ||
      !isfinite(o->atol))
    return nde__errf(e, NDE_ERR_ARG,
                     "tolerances must be >= 0, finite and not both 0 (got rtol = %g, atol = %g)",
                     o->rtol, o->atol);
  /* A relative error below a few units of round-off cannot be controlled: CVODE stops with
   * CV_TOO_MUCH_ACC, dopri5 shrinks its step until it underflows. */
  if (o->rtol >= 1.0 || (o->atol == 0.0 && o->rtol < NDE__RTOL_MIN))
    return nde__errf(e, NDE_ERR_ARG,
                     "tolerances that double precision cannot meet (rtol = %g, atol = %g): rtol "
                     "must be below 1, and at least %g when atol is 0",
                     o->rtol, o->atol, NDE__RTOL_MIN);
  if (o->max_steps < 1 || !(o->h0 >= 0) || !(o->h_min >= 0) || !(o->h_max >= 0) ||
      !isfinite(o->h0) || !isfinite(o->h_max))
    return nde__errf(e, NDE_ERR_ARG,
                     "invalid solver options (max_steps = %ld, h0 = %g, h_min = %g, h_max = %g)",
                     o->max_steps, o->h0, o->h_min, o->h_max);
  if (kind == NDE__KIND_ADAPTIVE &&
      (!(o->safety > 0 && o->safety <= 1) || !(o->fac_min > 0 && o->fac_min <= 1) ||
       !(o->fac_max >= 1) || !(o->pi_beta >= 0 && o->pi_beta < 0.2) || o->max_retries < 0 ||
       !(o->retry_shrink > 0 && o->retry_shrink < 1) || o->stiff_test_after < 0 ||
       o->stiff_test_count < 1 || !(o->stiff_bound > 0)))
    return nde__errf(e, NDE_ERR_ARG,
                     "invalid step-size control options (safety = %g, fac_min = %g, fac_max = %g, "
                     "pi_beta = %g, max_retries = %d, retry_shrink = %g, stiffness test %ld/%d/%g)",
                     o->safety, o->fac_min, o->fac_max, o->pi_beta, o->max_retries,
                     o->retry_shrink, o->stiff_test_after, o->stiff_test_count, o->stiff_bound);
  return NDE_OK;
}

/* The kind a method runs as under the options: CVODE, adaptive, or fixed steps. */
static int method_kind(const nde__method *me, const nde_solver_opts *o) {
  if (me->family == NDE__FAM_CVODE) return NDE__KIND_CVODE;
  if (me->family == NDE__FAM_ERK && me->info.adaptive && !o->fixed_step)
    return NDE__KIND_ADAPTIVE;
  return NDE__KIND_FIXED;
}

/* The message of an unknown method name. */
static nde_status unknown_method(const char *name, nde__err *e) {
  char list[256];
  nde__names_phrase(nde_solver_method_names(), "or", list, sizeof list);
  return nde__errf(e, NDE_ERR_ARG, "unknown solver method '%s' (expected %s)",
                   name ? name : "(null)", list);
}

nde_status nde__solver_opts_check(const nde_solver_opts *o, nde_error *err) {
  nde__err e = {NDE_OK, ""};
  const nde__method *me = nde__method_lookup(o->method);
  const nde_status st =
      me ? check_opts(me, method_kind(me, o), o, &e) : unknown_method(o->method, &e);
  if (st != NDE_OK) nde__err_export(&e, err);
  return st;
}

nde_status nde_solver_create(nde_rhs *rhs, const nde_solver_opts *opts, int max_batch,
                             nde_solver **out, nde_error *err) {
  nde_status st = NDE_ERR_NOMEM;
  nde__err e0 = {NDE_ERR_ARG, "a solver needs a right-hand side and an output pointer"};
  if (out) *out = NULL;
  if (!out || !rhs) {
    nde__err_export(&e0, err);
    return NDE_ERR_ARG;
  }
  nde_solver *s = calloc(1, sizeof *s);
  if (!s) {
    e0 = (nde__err){NDE_ERR_NOMEM, "out of memory creating the solver"};
    nde__err_export(&e0, err);
    return NDE_ERR_NOMEM;
  }
  s->opts = opts ? *opts : nde_solver_opts_default();
  const nde_rhs_info *info = nde_rhs_get_info(rhs);
  s->rhs = rhs;
  s->t_lo = -INFINITY;
  s->t_hi = INFINITY;
  s->n = info->n_state;
  s->cache_per_row = info->cache_per_row;
  s->max_batch = max_batch;
  if (max_batch < 1 || max_batch > info->max_batch) {
    st = nde__errf(&s->err, NDE_ERR_ARG, "batch size %d outside [1, %d] (the model's maximum)",
                   max_batch, info->max_batch);
    goto fail;
  }
  const nde__method *me = nde__method_lookup(s->opts.method);
  if (!me) {
    st = unknown_method(s->opts.method, &s->err);
    goto fail;
  }
  s->method = me;
  s->opts.method = me->info.name; /* static storage: the caller's string may go away */
  int slots = 1; /* evaluations held in K and Us */
  s->kind = method_kind(me, &s->opts);
  switch (me->family) {
    case NDE__FAM_CVODE: break;
    case NDE__FAM_ERK:
      s->tab = nde__tableau_lookup(me->tableau);
      /* Under fixed steps a FSAL method's last stage (f at the new state) is not needed. */
      s->ns_run = s->kind == NDE__KIND_FIXED && s->tab->fsal ? s->tab->s - 1 : s->tab->s;
      nde__erk_plan_init(&s->plan, s->tab, s->ns_run);
      slots = s->tab->s;
      break;
    case NDE__FAM_SPLIT:
      s->ns_run = 2 * me->split->m + 1;
      slots = 2; /* the last kick's f (FSAL) and the current evaluation */
      break;
    case NDE__FAM_IMPLICIT:
      s->ns_run = 1;
      break;
  }
  st = check_opts(me, s->kind, &s->opts, &s->err);
  if (st != NDE_OK) goto fail;
  if (me->info.needs_split) {
    st = nde__split_detect(s, s->opts.state_names);
    if (st != NDE_OK) goto fail;
  }
  s->opts.state_names = NULL; /* borrowed for the messages above only */
  st = NDE_ERR_NOMEM;
  size_t bn;
  if (!nde__mul_size((size_t)max_batch, (size_t)s->n, &bn)) goto fail;
  s->u = nde__dalloc(bn);
  if (!s->u) goto fail;
  if (s->kind == NDE__KIND_CVODE) {
    st = nde__cvode_create(s);
    if (st != NDE_OK) goto fail;
  } else {
    size_t kn, sc;
    const int nc = s->ns_run > slots ? s->ns_run : slots;
    if (!nde__mul_size(bn, (size_t)slots, &kn) ||
        !nde__mul_size((size_t)max_batch * (size_t)nc, s->cache_per_row, &sc))
      goto fail;
    s->K = nde__dalloc(kn);
    s->Us = nde__dalloc(kn);
    s->ccache = nde__dalloc(sc);
    if (!s->K || !s->Us || !s->ccache) goto fail;
    if (s->kind == NDE__KIND_ADAPTIVE && nde__adapt_init(&s->adapt, s->tab, bn) != NDE_OK)
      goto fail;
    if (me->family == NDE__FAM_IMPLICIT && nde__newton_init(&s->nw, max_batch, s->n) != NDE_OK)
      goto fail;
  }
  *out = s;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__errf(&s->err, st, "out of memory creating the solver");
  nde__err_export(&s->err, err);
  nde_solver_destroy(&s);
  return st;
}

const char *nde_solver_errmsg(const nde_solver *s) { return nde__err_msg(s ? &s->err : NULL); }
const nde_solver_method_info *nde_solver_get_method(const nde_solver *s) {
  return s ? &s->method->info : NULL;
}

/* ---- breakpoints ---- */

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

nde_status nde_solver_set_breakpoints(nde_solver *s, size_t n, const double *t) {
  if (!s) return NDE_ERR_ARG;
  if (n > 0 && !t)
    return nde__errf(&s->err, NDE_ERR_ARG, "breakpoints: %zu times but no array", n);
  for (size_t i = 0; i < n; i++)
    if (!isfinite(t[i]))
      return nde__errf(&s->err, NDE_ERR_ARG, "breakpoint %zu is not finite (%g)", i, t[i]);
  if (n > s->bp_cap) {
    double *b = malloc(n * sizeof *b);
    if (!b) return nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory for %zu breakpoints", n);
    free(s->bp);
    s->bp = b;
    s->bp_cap = n;
  }
  if (n) {
    memcpy(s->bp, t, n * sizeof *t);
    qsort(s->bp, n, sizeof *s->bp, cmp_double);
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (k == 0 || s->bp[i] != s->bp[k - 1]) s->bp[k++] = s->bp[i];
  s->n_bp = k;
  return NDE_OK;
}

size_t nde__bp_after(const nde_solver *s, double t) {
  size_t lo = 0, hi = s->n_bp;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (s->bp[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static int is_bp(const nde_solver *s, double t) {
  const size_t i = nde__bp_after(s, t);
  return i > 0 && s->bp[i - 1] == t;
}

nde__span nde__piece_span(const nde_solver *s, double a, double b) {
  nde__span sp = {s->t_lo, s->t_hi};
  if (!s->n_bp) return sp; /* no breakpoints: no search */
  if (is_bp(s, a)) sp.lo = a;
  if (is_bp(s, b)) sp.hi = nextafter(b, -INFINITY);
  return sp;
}
const nde_solver_opts *nde_solver_get_opts(const nde_solver *s) { return &s->opts; }
nde_rhs *nde_solver_get_rhs(const nde_solver *s) { return s->rhs; }

/* The model as a system for the generic kernel: B rows of n, stage caches into cstore, stage
 * times clamped to the piece's span. */
typedef struct model_sys {
  nde_solver *s;
  const double *theta;
  int B;
  double *cstore; /* ns x B x cache_per_row, or NULL */
  nde__span span;
} model_sys;

static int model_F(void *ctx, int stage, double t, const double *z, double *dz) {
  model_sys *m = ctx;
  double *c = m->cstore && stage >= 0
                  ? m->cstore + (size_t)stage * (size_t)m->B * m->s->cache_per_row
                  : NULL;
  return nde_rhs_f(m->s->rhs, nde__clamp_t(t, m->span), m->B, z, m->theta, dz, c);
}

/* The stages and new state of nde__rk_step over the tableau's non-zero pattern, for bn
 * unknowns (a constant in the small cases, where the loops unroll). */
static NDE__ALWAYS_INLINE int rk_step_plan(nde_solver *s, const double *theta, double t, double h,
                                           double lo, double hi, int B, size_t bn,
                                           const double *u, double *u_out, double *Z,
                                           double *cstore) {
  const nde__tableau *tab = s->tab;
  const nde__erk_plan *p = &s->plan;
  const int ns = s->ns_run, S = tab->s;
  nde_rhs *rhs = s->rhs;
  double *K = s->K;
  const size_t bc = (size_t)B * s->cache_per_row;
  double a[NDE__MAX_STAGES];
  const double *Kp[NDE__MAX_STAGES];
  for (int i = 0; i < ns; i++) {
    double *Zi = Z + (size_t)i * bn;
    int na = 0;
    for (int l = 0; l < p->na[i]; l++) {
      const int j = p->aj[i][l];
      const double aij = h * tab->A[i * S + j];
      if (aij == 0.0) continue;
      a[na] = aij;
      Kp[na++] = K + (size_t)j * bn;
    }
    NDE__ACC_LOOP(na, bn, a, Kp, Zi[q], , u[q]);
    const double ti = t + tab->c[i] * h;
    const int rc = nde__rhs_f(rhs, nde__clamp_t(ti, (nde__span){lo, hi}), B, Zi, theta,
                              K + (size_t)i * bn, cstore ? cstore + (size_t)i * bc : NULL);
    if (rc != 0) return rc;
  }
  int nb = 0;
  for (int l = 0; l < p->nb; l++) {
    const int j = p->bj[l];
    const double hb = h * tab->b[j];
    if (hb == 0.0) continue;
    a[nb] = hb;
    Kp[nb++] = K + (size_t)j * bn;
  }
  /* u + (0 + hb_0 K_0 + ...): the increment first, as the generic kernel. */
  NDE__ACC_LOOP(nb, bn, a, Kp, u_out[q], u[q] +, 0.0);
  return 0;
}

static NDE__ALWAYS_INLINE int rk_step_impl(nde_solver *s, const double *theta, double t, double h,
                                           const nde__span *span, int B, const double *u,
                                           double *u_out, double *Ustore, double *cstore) {
  const nde__tableau *tab = s->tab;
  const int ns = s->ns_run;
  const size_t bn = (size_t)B * (size_t)s->n;
  double *Z = Ustore ? Ustore : s->Us;
  if ((tab->fsal && ns == tab->s) || !isfinite(h) || Z == u) {
    /* The generic kernel: a FSAL method's last stage as the new state (a recomputed adaptive
     * step), a non-finite h (h * 0 is NaN: every term counts), or stages stored over the
     * state. */
    model_sys m = {s, theta, B, cstore, *span};
    return nde__erk_step(tab, ns, bn, model_F, &m, t, h, u, 0, s->K, Z, u_out);
  }
  /* The arithmetic of nde__erk_step, term for term and in the same order (U_i = u + a_i0 K_0 +
   * a_i1 K_1 + ..., the increment 0 + hb_0 K_0 + ... before u + inc), over the tableau's
   * non-zero pattern: a coefficient that is zero gives h a = 0 for a finite h, which that
   * kernel skips too. */
  const double lo = span->lo, hi = span->hi;
  switch (bn) {
    case 1: return rk_step_plan(s, theta, t, h, lo, hi, B, 1, u, u_out, Z, cstore);
    case 2: return rk_step_plan(s, theta, t, h, lo, hi, B, 2, u, u_out, Z, cstore);
    case 3: return rk_step_plan(s, theta, t, h, lo, hi, B, 3, u, u_out, Z, cstore);
    case 4: return rk_step_plan(s, theta, t, h, lo, hi, B, 4, u, u_out, Z, cstore);
    default: return rk_step_plan(s, theta, t, h, lo, hi, B, bn, u, u_out, Z, cstore);
  }
}

int nde__rk_step(nde_solver *s, const double *theta, double t, double h, const nde__span *span,
                 int B, const double *u, double *u_out, double *Ustore, double *cstore) {
  return rk_step_impl(s, theta, t, h, span, B, u, u_out, Ustore, cstore);
}

int nde__grow(double **p, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 64;
  while (nc < need) {
    if (nc > SIZE_MAX / 2 / sizeof(double)) return -1;
    nc *= 2;
  }
  double *q = realloc(*p, nc * sizeof *q);
  if (!q) return -1;
  *p = q;
  *cap = nc;
  return 0;
}

/* Make room for step index k (0-based) in the trajectory; *room receives the number of steps
 * the store then holds (every index below it needs no call). */
static int traj_reserve(nde__traj *tr, long k, long *room) {
  if (k >= tr->cap_steps) {
    long nc = tr->cap_steps ? tr->cap_steps * 2 : 256;
    while (nc <= k) nc *= 2;
    double *t = realloc(tr->t, (size_t)nc * sizeof *t);
    if (!t) return -1;
    tr->t = t;
    double *h = realloc(tr->h, (size_t)nc * sizeof *h);
    if (!h) return -1;
    tr->h = h;
    nde__span *sp = realloc(tr->span, (size_t)nc * sizeof *sp);
    if (!sp) return -1;
    tr->span = sp;
    int *o = realloc(tr->obs_end, (size_t)nc * sizeof *o);
    if (!o) return -1;
    tr->obs_end = o;
    unsigned char *f = realloc(tr->fresh, (size_t)nc * sizeof *f);
    if (!f) return -1;
    tr->fresh = f;
    tr->cap_steps = nc;
  }
  size_t need;
  if (!nde__mul_size((size_t)k + 1, tr->u_len, &need) || nde__grow(&tr->U, &tr->u_cap, need))
    return -1;
  if (tr->c_len) {
    if (!nde__mul_size((size_t)k + 1, tr->c_len, &need) ||
        nde__grow(&tr->cache, &tr->c_cap, need))
      return -1;
  }
  size_t r = (size_t)tr->cap_steps;
  if (tr->u_len && tr->u_cap / tr->u_len < r) r = tr->u_cap / tr->u_len;
  if (tr->c_len && tr->c_cap / tr->c_len < r) r = tr->c_cap / tr->c_len;
  *room = (long)r;
  return 0;
}

static int traj_reserve_obs(nde__traj *tr, int n_obs) {
  if (n_obs <= tr->obs_cap) return 0;
  int *o = realloc(tr->obs_step, (size_t)n_obs * sizeof *o);
  if (!o) return -1;
  tr->obs_step = o;
  double *th = realloc(tr->obs_theta, (size_t)n_obs * sizeof *th);
  if (!th) return -1;
  tr->obs_theta = th;
  tr->obs_cap = n_obs;
  return 0;
}

long nde__first_nonfinite(size_t len, const double *x) {
  for (size_t q = 0; q < len; q++)
    if (!isfinite(x[q])) return (long)q;
  return -1;
}

void nde__traj_dense_eval(const nde__traj *tr, size_t bn, double t, long *cursor, double *u) {
  long j = *cursor;
  if (j < 0) j = 0;
  if (j >= tr->n_steps) j = tr->n_steps - 1;
  while (j > 0 && t < tr->t[j]) j--;
  while (j + 1 < tr->n_steps && t >= tr->t[j + 1]) j++;
  *cursor = j;
  const double th = (t - tr->t[j]) / tr->h[j], th1 = 1.0 - th;
  const double *r = tr->U + (size_t)j * tr->u_len;
  const double *r1 = r, *r2 = r + bn, *r3 = r + 2 * bn, *r4 = r + 3 * bn, *r5 = r + 4 * bn;
  for (size_t q = 0; q < bn; q++)
    u[q] = r1[q] + th * (r2[q] + th1 * (r3[q] + th * (r4[q] + th1 * r5[q])));
}

nde_status nde__solve_check_args(nde_solver *s, const double *theta, int B, const double *U0,
                                 int n_obs, const double *t_obs, const double *Y) {
  if (!theta && nde_rhs_get_info(s->rhs)->n_theta > 0)
    return nde__errf(&s->err, NDE_ERR_ARG, "parameter vector is NULL");
  if (B < 1 || B > s->max_batch)
    return nde__errf(&s->err, NDE_ERR_ARG, "batch size %d outside [1, %d]", B, s->max_batch);
  if (!U0 || !t_obs || !Y || n_obs < 1)
    return nde__errf(&s->err, NDE_ERR_ARG, "solve needs U0, t_obs, Y and n_obs >= 1");
  if (!isfinite(t_obs[0]))
    return nde__errf(&s->err, NDE_ERR_ARG, "the initial time t[0] = %g is not finite", t_obs[0]);
  for (int k = 0; k + 1 < n_obs; k++)
    if (!(t_obs[k + 1] > t_obs[k]) || !isfinite(t_obs[k + 1]))
      return nde__errf(&s->err, NDE_ERR_ARG,
                       "observation times must be finite and strictly increasing (t[%d] = %.17g, "
                       "t[%d] = %.17g)",
                       k, t_obs[k], k + 1, t_obs[k + 1]);
  return NDE_OK;
}

/* ---- fixed steps ---- */

/* One fixed step of the solver's method from u (in place).  Returns the callback's code;
 * *newton_failed for implicit-midpoint, *fresh for splitting methods. */
static int fixed_step(nde_solver *s, const double *theta, double ta, double h, nde__span span, int B,
                      double *u, double *Ust, double *cst, int *fresh, int *newton_failed) {
  switch (s->method->family) {
    case NDE__FAM_SPLIT: return nde__split_step(s, theta, ta, h, span, B, u, Ust, cst, fresh);
    case NDE__FAM_IMPLICIT:
      /* f at the midpoint only: never at a breakpoint that ends the step. */
      return nde__midpoint_step(s, theta, ta, h, B, u, u, Ust, newton_failed);
    default: return rk_step_impl(s, theta, ta, h, &span, B, u, u, Ust, cst);
  }
}

/* The steps of a piece of length len inside an observation interval of length span, as a
 * double (it can exceed any integer type) and their size. */
static double piece_steps(const nde_solver_opts *o, double len, double span, double *hn) {
  double m;
  if (o->dt > 0.0) {
    m = ceil(len / o->dt - o->dt_snap);
    *hn = o->dt;
  } else {
    m = ceil((double)o->steps_per_interval * (len / span) - o->dt_snap);
    if (m < 1) m = 1;
    *hn = len / m;
  }
  return m < 1 ? 1 : m;
}

static nde_status run_fixed(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde__store_mode mode,
                            nde_solve_stats *stats, double *t_reached, int *k_done_out) {
  const int n = s->n;
  const size_t bn = (size_t)B * (size_t)n;
  nde__traj *tr = &s->traj;
  double *u = s->u;
  memcpy(u, U0, bn * sizeof *u);
  nde_status st = NDE_OK;
  int k_done = 0;
  double t = t_obs[0];
  s->g_valid = 0;
  size_t ib = nde__bp_after(s, t_obs[0]);
  long room = 0; /* steps the trajectory store holds (traj_reserve) */
  for (int k = 0; k + 1 < n_obs && stats->reason == NDE_REASON_NONE; k++) {
    const double T0 = t_obs[k], T1 = t_obs[k + 1];
    /* The interval in pieces between the breakpoints inside it. */
    for (double a = T0; stats->reason == NDE_REASON_NONE;) {
      const double b = ib < s->n_bp && s->bp[ib] < T1 ? s->bp[ib] : T1;
      const int at_bp = ib < s->n_bp && s->bp[ib] == b;
      const nde__span span = nde__piece_span(s, a, b);
      double hn;
      const double md = piece_steps(&s->opts, b - a, T1 - T0, &hn);
      /* Never more steps than the budget allows: the budget check below ends the solve. */
      const long left = s->opts.max_steps - stats->n_steps;
      const long m = md > (double)left ? left + 1 : (long)md;
      for (long j = 0; j < m; j++) {
        const double ta = a + (double)j * hn;
        const double tb = j + 1 == m ? b : a + (double)(j + 1) * hn;
        const double h = tb - ta;
        if (stats->n_steps >= s->opts.max_steps) {
          /* The step that would have been taken: hn, or the rest of the piece when that is
           * shorter (not tb - ta, which is the whole rest when m was cut to the budget). */
          stats->reason = NDE_REASON_MAX_STEPS;
          stats->h_last = fmin(hn, b - ta);
          t = ta;
          break;
        }
        stats->h_last = h;
        if (!(h > 0.0)) {
          /* dt below the resolution of t here: t + dt == t. */
          stats->reason = NDE_REASON_STEP_UNDERFLOW;
          stats->h_last = hn;
          t = ta;
          break;
        }
        double *Ust = NULL, *cst = NULL;
        const long js = tr->n_steps;
        if (mode != NDE__STORE_NONE) {
          if (js >= room && traj_reserve(tr, js, &room)) {
            st = nde__errf(&s->err, NDE_ERR_NOMEM,
                           "out of memory storing step %ld of the trajectory", js);
            goto done;
          }
          tr->t[js] = ta;
          tr->h[js] = h;
          tr->span[js] = span;
          tr->obs_end[js] = j + 1 == m && b == T1 ? k + 1 : -1;
          if (mode == NDE__STORE_STAGES) {
            Ust = tr->U + (size_t)js * tr->u_len;
            if (tr->c_len) cst = tr->cache + (size_t)js * tr->c_len;
          } else if (mode == NDE__STORE_STEPS) {
            memcpy(tr->U + (size_t)js * tr->u_len, u, bn * sizeof *u);
          }
        }
        int fresh = 1, newton_failed = 0;
        int rc = fixed_step(s, theta, ta, h, span, B, u, Ust, cst, &fresh, &newton_failed);
        if (mode != NDE__STORE_NONE) tr->fresh[js] = (unsigned char)fresh;
        if (rc < 0) {
          st = nde__errf(&s->err, NDE_ERR_CALLBACK,
                         "right-hand side returned fatal code %d at t = %.17g (step size %.3g)",
                         rc, ta, h);
          goto done;
        }
        if (rc > 0 || newton_failed) {
          stats->reason = rc > 0 ? NDE_REASON_RHS_RECOVERABLE : NDE_REASON_NEWTON_FAILED;
          /* A compiled model reports a derivative that is not finite as recoverable, which a
           * fixed step cannot retry: name its component, as a state that is not finite is
           * named.  The stages after the failed one still hold the last step's finite values,
           * so the first non-finite value is the failed stage's. */
          if (rc > 0 && s->method->family == NDE__FAM_ERK) {
            const long bad = nde__first_nonfinite((size_t)s->ns_run * bn, s->K);
            if (bad >= 0) {
              stats->bad_row = (int)((size_t)bad % bn / (size_t)n);
              stats->bad_state = (int)((size_t)bad % (size_t)n);
            }
          }
          t = ta;
          break;
        }
        long bad = nde__first_nonfinite_fast(bn, u);
        if (bad >= 0) {
          stats->reason = NDE_REASON_NONFINITE;
          stats->bad_row = (int)(bad / n);
          stats->bad_state = (int)(bad % n);
          t = ta;
          break;
        }
        stats->n_steps++;
        if (mode != NDE__STORE_NONE) tr->n_steps++;
        t = tb;
      }
      if (stats->reason != NDE_REASON_NONE) break;
      if (at_bp) {
        /* f jumps here: the next step's first evaluation is its own (no FSAL). */
        s->g_valid = 0;
        ib++;
      }
      if (b == T1) break;
      a = b;
    }
    if (stats->reason != NDE_REASON_NONE) break;
    memcpy(Y + (size_t)(k + 1) * bn, u, bn * sizeof *u);
    tr->obs_step[k + 1] = (int)(tr->n_steps - 1);
    tr->obs_theta[k + 1] = 1.0;
    k_done = k + 1;
  }
done:
  *t_reached = t;
  *k_done_out = k_done;
  return st;
}

/* ---- adaptive steps ---- */

typedef struct fwd_ctx {
  nde_solver *s;
  nde__store_mode mode;
  int B;
  int n_obs, next_obs; /* the next observation to write */
  const double *t_obs;
  double *Y;
  nde_status st;
  double t_end;    /* the current piece's end */
  nde__span span;  /* and its span */
} fwd_ctx;

static int fwd_accept(void *ctx, double t, double h, const double *z, const double *znew,
                      const double *K, const double *Z) {
  fwd_ctx *c = ctx;
  nde_solver *s = c->s;
  nde__traj *tr = &s->traj;
  const nde__tableau *tab = s->tab;
  const int ns = tab->s;
  const size_t bn = (size_t)c->B * (size_t)s->n;
  const size_t bc = (size_t)c->B * s->cache_per_row;
  const long j = tr->n_steps;
  if (c->mode != NDE__STORE_NONE) {
    long room;
    if (traj_reserve(tr, j, &room)) {
      c->st = nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory storing step %ld of the trajectory",
                        j);
      return -1;
    }
    tr->t[j] = t;
    tr->h[j] = h;
    tr->span[j] = c->span;
    tr->fresh[j] = 1;
    tr->obs_end[j] = -1;
    double *U = tr->U + (size_t)j * tr->u_len;
    if (c->mode == NDE__STORE_STAGES) {
      memcpy(U, Z, (size_t)ns * bn * sizeof *U);
      if (tr->c_len) memcpy(tr->cache + (size_t)j * tr->c_len, s->ccache, tr->c_len * sizeof *U);
    } else if (c->mode == NDE__STORE_STEPS) {
      memcpy(U, z, bn * sizeof *U);
    } else if (c->mode == NDE__STORE_DENSE) {
      /* Hairer's r1..r5 of the continuous extension (see tableaux.c). */
      double *r1 = U, *r2 = U + bn, *r3 = U + 2 * bn, *r4 = U + 3 * bn, *r5 = U + 4 * bn;
      const double *K1 = K, *Ks = K + (size_t)(ns - 1) * bn;
      for (size_t q = 0; q < bn; q++) {
        r1[q] = z[q];
        r2[q] = znew[q] - z[q];
        r3[q] = h * K1[q] - r2[q];
        r4[q] = r2[q] - h * Ks[q] - r3[q];
        double d = 0.0;
        for (int i = 0; i < ns; i++) d += tab->d[i] * K[(size_t)i * bn + q];
        r5[q] = h * d;
      }
    }
  }
  /* Observations inside (t, t + h]: the continuous extension, or the new state at the end. */
  while (c->next_obs < c->n_obs) {
    const int k = c->next_obs;
    const double tk = c->t_obs[k];
    const int at_end = (s->adapt.in_last_step && tk == c->t_end) || tk == t + h;
    if (!at_end && tk >= t + h) break;
    double *Yk = c->Y + (size_t)k * bn;
    double th = 1.0;
    if (at_end) {
      memcpy(Yk, znew, bn * sizeof *Yk);
    } else {
      double bth[NDE__MAX_STAGES];
      th = (tk - t) / h;
      tab->dense(th, bth);
      memcpy(Yk, z, bn * sizeof *Yk);
      for (int i = 0; i < ns; i++) {
        const double w = h * bth[i];
        const double *Ki = K + (size_t)i * bn;
        for (size_t q = 0; q < bn; q++) Yk[q] += w * Ki[q];
      }
    }
    if (c->mode != NDE__STORE_NONE) {
      if (at_end) tr->obs_end[j] = k;
      tr->obs_step[k] = (int)j;
      tr->obs_theta[k] = th;
    }
    c->next_obs++;
  }
  if (c->mode != NDE__STORE_NONE) tr->n_steps++;
  /* FSAL: the last stage's cache is the next step's first. */
  if (tab->fsal && s->cache_per_row && c->mode == NDE__STORE_STAGES)
    memcpy(s->ccache, s->ccache + (size_t)(ns - 1) * bc, bc * sizeof *s->ccache);
  return 0;
}

static nde_status run_adaptive(nde_solver *s, const double *theta, int B, const double *U0,
                               int n_obs, const double *t_obs, double *Y, nde__store_mode mode,
                               nde_solve_stats *stats, double *t_reached, int *k_done) {
  const size_t bn = (size_t)B * (size_t)s->n;
  nde__adapt *a = &s->adapt;
  double *u = s->u;
  memcpy(u, U0, bn * sizeof *u);
  nde__adapt_begin(a, bn, bn, &s->opts, 1);
  model_sys m = {s, theta, B, mode == NDE__STORE_STAGES && s->cache_per_row ? s->ccache : NULL,
                 NDE__SPAN_ALL};
  fwd_ctx c = {s, mode, B, n_obs, 1, t_obs, Y, NDE_OK, 0.0, NDE__SPAN_ALL};
  /* Piece by piece between the breakpoints: each piece ends on its breakpoint with f evaluated
   * just before it; after it the first stage is evaluated anew and the step size is kept. */
  const double tend = t_obs[n_obs - 1];
  size_t ib = nde__bp_after(s, t_obs[0]);
  double a0 = t_obs[0];
  int rc = 0;
  for (;;) {
    const double b = ib < s->n_bp && s->bp[ib] < tend ? s->bp[ib] : tend;
    m.span = c.span = nde__piece_span(s, a0, b);
    c.t_end = b;
    rc = nde__adapt_run(a, model_F, &m, fwd_accept, &c, a0, b, u);
    if (rc != 0 || a->reason != NDE_REASON_NONE || b == tend) break;
    a->k1_valid = 0;
    a0 = b;
    ib++;
  }
  stats->n_steps = a->n_steps;
  stats->n_rejected = a->n_rejected;
  stats->h_last = a->h_last;
  *t_reached = a->t_stop;
  *k_done = c.next_obs - 1;
  if (c.st != NDE_OK) return c.st;
  if (rc < 0)
    return nde__errf(&s->err, NDE_ERR_CALLBACK,
                     "right-hand side returned fatal code %d at t = %.17g (step size %.3g)", rc,
                     a->t_stop, a->h_last);
  stats->reason = a->reason;
  if (a->bad_index >= 0) {
    stats->bad_row = (int)(a->bad_index / s->n);
    stats->bad_state = (int)(a->bad_index % s->n);
  }
  return NDE_OK;
}

nde_status nde__solver_run(nde_solver *s, const double *theta, int B, const double *U0, int n_obs,
                           const double *t_obs, double *Y, nde__store_mode mode,
                           nde_solve_stats *stats) {
  nde_solve_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  stats->bad_row = stats->bad_state = -1;
  nde_status st = nde__solve_check_args(s, theta, B, U0, n_obs, t_obs, Y);
  if (st != NDE_OK) return st;
  nde_rhs_domain(s->rhs, &s->t_lo, &s->t_hi);
  if (s->kind == NDE__KIND_CVODE) {
    if (mode != NDE__STORE_NONE)
      return nde__errf(&s->err, NDE_ERR_UNSUPPORTED,
                       "CVODE solves keep no explicit trajectory store");
    return nde__cvode_solve(s, theta, B, U0, n_obs, t_obs, Y, stats);
  }
  const int n = s->n;
  const size_t bn = (size_t)B * (size_t)n;
  const int ns = s->ns_run;
  nde__traj *tr = &s->traj;
  tr->mode = mode;
  tr->B = B;
  tr->ns = ns;
  tr->n_steps = 0;
  const int implicit = s->method->family == NDE__FAM_IMPLICIT;
  tr->u_len = mode == NDE__STORE_STAGES  ? (implicit ? bn * (size_t)(n + 2) : (size_t)ns * bn)
              : mode == NDE__STORE_STEPS ? bn
              : mode == NDE__STORE_DENSE ? 5 * bn
                                         : 0;
  tr->c_len = mode == NDE__STORE_STAGES && !implicit
                  ? (size_t)ns * (size_t)B * s->cache_per_row
                  : 0;
  if (mode == NDE__STORE_DENSE && !(s->tab && s->tab->dense))
    return nde__errf(&s->err, NDE_ERR_UNSUPPORTED, "method '%s' has no continuous extension",
                     s->method->info.name);
  if (traj_reserve_obs(tr, n_obs))
    return nde__errf(&s->err, NDE_ERR_NOMEM, "out of memory for %d observations", n_obs);
  tr->obs_step[0] = -1;
  tr->obs_theta[0] = 0.0;

  const nde_rhs_counts c0 = nde_rhs_get_counts(s->rhs);
  memcpy(Y, U0, bn * sizeof *Y);
  double t = t_obs[0];
  int k_done = 0;
  if (s->kind == NDE__KIND_FIXED)
    st = run_fixed(s, theta, B, U0, n_obs, t_obs, Y, mode, stats, &t, &k_done);
  else
    st = run_adaptive(s, theta, B, U0, n_obs, t_obs, Y, mode, stats, &t, &k_done);
  for (int k = k_done + 1; k < n_obs; k++)
    for (size_t q = 0; q < bn; q++) Y[(size_t)k * bn + q] = NAN;
  stats->t_stop = t;
  stats->n_rhs = nde_rhs_get_counts(s->rhs).f - c0.f;
  return st;
}

nde_status nde_solver_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats) {
  if (!s) return NDE_ERR_ARG;
  return nde__solver_run(s, theta, B, U0, n_obs, t_obs, Y, NDE__STORE_NONE, stats);
}
