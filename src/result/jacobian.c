/* The residual Jacobian of a fit: derivatives of the fitted trajectories at the observation
 * times with respect to the fit's coordinates, by forward sensitivities.  Each coordinate j is
 * one batch row of the variational system
 *     u' = f(t, u, theta),   s' = df/du(t, u, theta) s + df/dtheta(t, u, theta) e_j,
 *     u(t0) = u0,            s(t0) = du0/dx_j   (e_i for an initial-state component),
 * integrated with the fit's own solver (Hairer, Norsett & Wanner, Solving ODEs I, sec. I.14 and
 * II.6: Runge-Kutta methods commute with this differentiation, so for fixed steps s is the exact
 * derivative of the discrete solution; so do splitting methods, whose kicks and drifts split the
 * variational system the same way, and the implicit midpoint rule).  Its right-hand side is made
 * of the model's f and JVP, one row at a time.  Data columns that are observables compare the
 * fit's observation model H(t, u, theta), whose derivative is dH/du s + dH/dtheta e_j (the
 * observer's JVP at the solution).  Central differences of the residuals are the fallback (the
 * model has no JVP, or on request). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unc_internal.h"

/* ---- the variational system as a right-hand side ---- */

typedef struct aug {
  nde_rhs *inner; /* borrowed */
  int n;
  size_t n_theta;
  long *dir;      /* per batch row: the theta index of its direction, or -1 */
  double *ej;     /* n_theta zeros; one entry is 1 during a JVP */
  unsigned char *dep; /* 2n x 2n, or NULL */
} aug;

static int aug_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                 double *cache) {
  aug *a = ctx;
  (void)cache;
  const int n = a->n;
  for (int b = 0; b < B; b++) {
    const double *u = U + (size_t)b * 2 * (size_t)n, *s = u + n;
    double *du = dU + (size_t)b * 2 * (size_t)n, *ds = du + n;
    int rc = nde_rhs_f(a->inner, t, 1, u, theta, du, NULL);
    if (rc) return rc;
    const long j = a->dir[b];
    if (j >= 0) a->ej[j] = 1.0;
    rc = nde_rhs_jvp(a->inner, t, 1, u, theta, s, j >= 0 ? a->ej : NULL, ds);
    if (j >= 0) a->ej[j] = 0.0;
    if (rc) return rc;
  }
  return 0;
}

static int aug_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                   const double *L, const double *cache, double *gU, double *gtheta) {
  (void)ctx, (void)t, (void)B, (void)U, (void)theta, (void)L, (void)cache, (void)gU, (void)gtheta;
  return -1; /* never differentiated: the sensitivities are the derivatives */
}

static size_t aug_breakpoints(void *ctx, double t0, double t1, size_t max, double *out) {
  aug *a = ctx;
  return nde_rhs_breakpoints(a->inner, t0, t1, max, out);
}

static void aug_domain(void *ctx, double *lo, double *hi) {
  aug *a = ctx;
  nde_rhs_domain(a->inner, lo, hi);
}

static void aug_free(aug *a) {
  if (!a) return;
  free(a->dir);
  free(a->ej);
  free(a->dep);
  free(a);
}

static void aug_destroy(void *ctx) { aug_free(ctx); }

/* One thread's integrator of the model and of its variational system with max_rows rows. */
typedef struct sens {
  nde_rhs *inner;   /* owned */
  nde_rhs *aug_rhs; /* owns its aug context */
  aug *a;
  nde_solver *plain, *augs;
  int n, max_rows;
  double *U0, *Y;   /* scratch: max_rows x 2n start, n_obs x max_rows x 2n output */
  size_t cap_y;
} sens;

static void sens_free(sens *S) {
  nde_solver_destroy(&S->plain);
  nde_solver_destroy(&S->augs);
  nde_rhs_destroy(&S->aug_rhs);
  nde_rhs_destroy(&S->inner);
  free(S->U0);
  free(S->Y);
  memset(S, 0, sizeof *S);
}

/* inner is taken.  With max_rows 0 only the plain solver is made. */
static nde_status sens_make(sens *S, nde_rhs *inner, const nde_solver_opts *so, int max_rows,
                            nde_error *err) {
  memset(S, 0, sizeof *S);
  S->inner = inner;
  const nde_rhs_info *ii = nde_rhs_get_info(inner);
  const int n = ii->n_state;
  S->n = n;
  S->max_rows = max_rows;
  nde_solver_opts po = *so;
  po.state_names = NULL;
  nde_status st = nde_solver_create(inner, &po, 1, &S->plain, err);
  if (st != NDE_OK || max_rows == 0) goto done;
  aug *a = calloc(1, sizeof *a);
  if (!a) goto nomem;
  a->inner = inner;
  a->n = n;
  a->n_theta = ii->n_theta;
  a->dir = calloc((size_t)max_rows, sizeof *a->dir);
  a->ej = nde__dalloc(ii->n_theta);
  if (!a->dir || !a->ej) {
    aug_free(a);
    goto nomem;
  }
  if (ii->dep) {
    /* s_i' depends on u_k and s_k wherever f_i depends on u_k: the split of a separable model
     * carries over to its variational system. */
    const size_t m = 2 * (size_t)n;
    a->dep = calloc(m * m, 1);
    if (!a->dep) {
      aug_free(a);
      goto nomem;
    }
    for (int i = 0; i < n; i++)
      for (int k = 0; k < n; k++) {
        const unsigned char d = ii->dep[(size_t)i * (size_t)n + (size_t)k] != 0;
        a->dep[(size_t)i * m + (size_t)k] = d;
        a->dep[((size_t)n + (size_t)i) * m + (size_t)k] = d;
        a->dep[((size_t)n + (size_t)i) * m + (size_t)n + (size_t)k] = d;
      }
  }
  nde_rhs_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.f = aug_f;
  ops.vjp = aug_vjp;
  ops.destroy = aug_destroy;
  ops.breakpoints = aug_breakpoints;
  ops.domain = aug_domain;
  nde_rhs_info ai;
  memset(&ai, 0, sizeof ai);
  ai.n_state = 2 * n;
  ai.n_theta = ii->n_theta;
  ai.max_batch = max_rows;
  ai.dep = a->dep;
  S->a = a;
  if ((st = nde_rhs_create(&ops, a, NDE_TAKE, &ai, &S->aug_rhs, err)) != NDE_OK) {
    S->a = NULL;
    goto done;
  }
  if ((st = nde_solver_create(S->aug_rhs, &po, max_rows, &S->augs, err)) != NDE_OK) goto done;
  S->U0 = nde__dalloc((size_t)max_rows * 2 * (size_t)n);
  if (!S->U0) goto nomem;
  goto done;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory for the sensitivities");
done:
  if (st != NDE_OK) sens_free(S);
  return st;
}

static nde_status sens_reserve(sens *S, size_t n_obs, int rows, nde_error *err) {
  const size_t need = n_obs * (size_t)(rows > 0 ? rows : 1) * 2 * (size_t)S->n;
  if (need <= S->cap_y) return NDE_OK;
  double *Y = realloc(S->Y, need * sizeof *Y);
  if (!Y) return nde__fail(err, NDE_ERR_NOMEM, "out of memory for the sensitivities");
  S->Y = Y;
  S->cap_y = need;
  return NDE_OK;
}

/* The plain solution (Y: n_obs x n) from u0 over times, series bound to `series`.  *ok = 0 when
 * the solve stopped. */
static nde_status sens_plain(sens *S, int series, const double *theta, const double *u0,
                             int n_obs, const double *t, double *Y, int *ok, nde_error *err) {
  nde_status st = nde_rhs_set_rows(S->inner, 1, &series);
  if (st != NDE_OK) return nde__fail(err, st, "cannot bind series %d", series);
  if ((st = nde__stop_at_input_jumps(S->plain, S->inner, t[0], t[n_obs - 1], err)) != NDE_OK)
    return st;
  nde_solve_stats ss;
  st = nde_solver_solve(S->plain, theta, 1, u0, n_obs, t, Y, &ss);
  if (st != NDE_OK) return nde__fail(err, st, "%s", nde_solver_errmsg(S->plain));
  *ok = ss.reason == NDE_REASON_NONE;
  return NDE_OK;
}

/* The variational system for `rows` directions: dir[b] the theta index of row b (or -1) and
 * comp[b] the initial-state component it starts from (or -1).  The output (n_obs x rows x 2n)
 * is left in S->Y. */
static nde_status sens_solve(sens *S, int series, const double *theta, const double *u0,
                             int rows, const long *dir, const int *comp, int n_obs,
                             const double *t, int *ok, nde_error *err) {
  const int n = S->n;
  nde_status st = sens_reserve(S, (size_t)n_obs, rows, err);
  if (st != NDE_OK) return st;
  if ((st = nde_rhs_set_rows(S->inner, 1, &series)) != NDE_OK)
    return nde__fail(err, st, "cannot bind series %d", series);
  /* The jumps of step inputs, as the fit and nde_result_integrate stop at them. */
  if ((st = nde__stop_at_input_jumps(S->augs, S->inner, t[0], t[n_obs - 1], err)) != NDE_OK)
    return st;
  for (int b = 0; b < rows; b++) {
    double *z = S->U0 + (size_t)b * 2 * (size_t)n;
    memcpy(z, u0, (size_t)n * sizeof *z);
    for (int i = 0; i < n; i++) z[n + i] = i == comp[b] ? 1.0 : 0.0;
    S->a->dir[b] = dir[b];
  }
  nde_solve_stats ss;
  st = nde_solver_solve(S->augs, theta, rows, S->U0, n_obs, t, S->Y, &ss);
  if (st != NDE_OK) return nde__fail(err, st, "%s", nde_solver_errmsg(S->augs));
  *ok = ss.reason == NDE_REASON_NONE;
  return NDE_OK;
}

/* ---- coordinates ---- */

static char *dupf(const char *fmt, ...) NDE__PRINTF(1, 2);
static char *dupf(const char *fmt, ...) {
  nde_str s = NDE_STR_INIT;
  va_list ap;
  va_start(ap, fmt);
  nde_str_vaddf(&s, fmt, ap);
  va_end(ap);
  return nde_str_take(&s);
}

void nde__coords_free(nde__coord *cols, int n) {
  for (int i = 0; cols && i < n; i++) nde_free(cols[i].name);
  free(cols);
}

nde_status nde__coords_make(const nde_result *r, int include_nets, int include_u0,
                            nde__coord **out, int *n_out, nde_error *err) {
  *out = NULL;
  *n_out = 0;
  const nde_model *m = r->model;
  const int S = r->n_series, n = nde_model_state_dim(m);
  const size_t nt = nde_model_n_theta(m);
  const int n_sp = nde_model_n_series_params(m);
  const int learn_u0 = r->settings.objective.learn_u0 && include_u0;
  size_t cap = (size_t)n_sp * (size_t)S + (learn_u0 ? (size_t)S * (size_t)n : 0) + 1;
  for (int i = 0; i < nde_model_n_layout(m); i++) {
    nde_model_layout_entry e;
    if (nde_model_get_layout(m, i, &e) != NDE_OK) continue;
    cap += e.kind == NDE_LAYOUT_NET ? (include_nets ? e.length : 0) : 1;
  }
  nde__coord *c = calloc(cap, sizeof *c);
  if (!c) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  int k = 0;
  /* Shared parameters, then network weights, in theta order. */
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < nde_model_n_layout(m); i++) {
      nde_model_layout_entry e;
      if (nde_model_get_layout(m, i, &e) != NDE_OK) continue;
      if (pass == 0 && e.kind == NDE_LAYOUT_PARAM) {
        nde_model_param_info pi;
        nde_model_get_param(m, e.index, &pi);
        c[k] = (nde__coord){NDE_UNC_PARAM, (long)e.offset, -1, -1, e.index, e.transform,
                            pi.lo, pi.hi, dupf("%s", e.name)};
        if (!c[k++].name) goto nomem;
      } else if (pass == 1 && e.kind == NDE_LAYOUT_NET && include_nets) {
        for (size_t q = 0; q < e.length; q++) {
          c[k] = (nde__coord){NDE_UNC_NET_WEIGHT, (long)(e.offset + q), -1, -1, e.index,
                              NDE_TRANSFORM_NONE, 0, 0, dupf("%s[%zu]", e.name, q + 1)};
          if (!c[k++].name) goto nomem;
        }
      }
    }
  /* Per-series parameters, series by series. */
  for (int s = 0; s < S && n_sp > 0; s++)
    for (int i = 0; i < nde_model_n_params(m); i++) {
      nde_model_param_info pi;
      if (nde_model_get_param(m, i, &pi) != NDE_OK || !pi.per_series) continue;
      c[k] = (nde__coord){NDE_UNC_SERIES_PARAM,
                          (long)(nt + (size_t)s * (size_t)n_sp + pi.offset), s, -1, i,
                          pi.transform, pi.lo, pi.hi,
                          dupf("%s[%s]", pi.name, r->series[s].name)};
      if (!c[k++].name) goto nomem;
    }
  for (int s = 0; s < S && learn_u0; s++)
    for (int j = 0; j < n; j++) {
      c[k] = (nde__coord){NDE_UNC_INITIAL_STATE, -1, s, j, -1, NDE_TRANSFORM_NONE, 0, 0,
                          S == 1 ? dupf("%s(t0)", nde_model_component_name(m, j))
                                 : dupf("%s(t0)[%s]", nde_model_component_name(m, j),
                                        r->series[s].name)};
      if (!c[k++].name) goto nomem;
    }
  *out = c;
  *n_out = k;
  return NDE_OK;
nomem:
  nde__coords_free(c, k);
  return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
}

/* ---- the residuals of a problem ---- */

typedef struct jseries {
  const nde_fit_series *se;
  int start;   /* first observation index with residuals */
  int first;   /* first one whose state columns are residuals: after the start row when the
                * initial state is not learned (the state there is the start, not a fit to it);
                * observable columns are residuals from start on (the loss compares them) */
  size_t row0; /* its first residual row */
  size_t rows;
} jseries;

struct nde__jac {
  nde_problem *p;
  sens S;
  nde__jac_method method;
  double fd_step;
  int n, n_ser, log_space, max_cols;
  int ld; /* columns per observation row: n, or more with (unobserved) observable columns */
  const double *w;
  jseries *ser;
  size_t n_rows;
  int *row_state;
  double *Yp, *ep, *em, *th, *u0w; /* scratch */
  long *dir;
  int *comp, *colmap;
  int max_obs;
  size_t n_u0; /* S x n */
  /* Observable columns (ld > n): a clone of the fit's observation model, its values and JVP at
   * one time (ld each), and a parameter direction (n_theta, zero but for one entry). */
  nde_observer *obs;
  double *H, *JH, *vth;
};

size_t nde__jac_n_rows(const nde__jac *J) { return J->n_rows; }
const int *nde__jac_row_state(const nde__jac *J) { return J->row_state; }
int nde__jac_n_columns(const nde__jac *J) { return J->ld; }
const double *nde__jac_weights(const nde__jac *J) { return J->w; }
int nde__jac_uses_fd(const nde__jac *J) { return J->method == NDE__JAC_FD; }

void nde__jac_destroy(nde__jac **Jp) {
  if (!Jp || !*Jp) return;
  nde__jac *J = *Jp;
  sens_free(&J->S);
  free(J->ser);
  free(J->row_state);
  free(J->Yp);
  free(J->ep);
  free(J->em);
  free(J->th);
  free(J->u0w);
  free(J->dir);
  free(J->comp);
  free(J->colmap);
  nde_observer_destroy(&J->obs);
  free(J->H);
  free(J->JH);
  free(J->vth);
  free(J);
  *Jp = NULL;
}

/* Whether column i of row k of series js is a residual (see jseries). */
static int compared(const nde__jac *J, const jseries *js, int k, int i) {
  if (k < js->start || isnan(js->se->obs[(size_t)k * (size_t)J->ld + (size_t)i])) return 0;
  return k >= js->first || i >= J->n;
}

nde_status nde__jac_create(const nde_result *r, nde_problem *p, int max_cols,
                           nde__jac_method method, double fd_step, nde__jac **out,
                           nde_error *err) {
  *out = NULL;
  nde__jac *J = calloc(1, sizeof *J);
  if (!J) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  nde_status st = NDE_OK;
  J->p = p;
  J->n = nde_model_state_dim(r->model);
  J->max_cols = max_cols;
  J->fd_step = fd_step;
  nde_fit *fit = nde_problem_objective(p);
  J->w = nde_fit_weights(fit);
  J->ld = nde_fit_n_columns(fit);
  J->log_space = r->settings.objective.log_space;
  const nde_fit_series *ser = nde__problem_series(p, &J->n_ser);
  nde_rhs *inner = NULL;
  if ((st = nde_rhs_clone(nde__problem_rhs(p), &inner, err)) != NDE_OK) goto fail;
  J->method = method;
  if (method == NDE__JAC_SENS && !nde_rhs_has_jvp(inner)) J->method = NDE__JAC_FD;
  const size_t n_theta_full = nde_rhs_get_info(inner)->n_theta;
  if ((st = sens_make(&J->S, inner, &r->settings.solver,
                      J->method == NDE__JAC_SENS ? max_cols : 0, err)) != NDE_OK)
    goto fail;
  if (J->ld > J->n) {
    nde_observer *po = nde__problem_observer(p);
    if (!po) {
      st = nde__fail(err, NDE_ERR_ARG, "the problem has observable columns but no observer");
      goto fail;
    }
    if ((st = nde_observer_clone(po, &J->obs, err)) != NDE_OK) goto fail;
    J->H = nde__dalloc((size_t)J->ld);
    J->JH = nde__dalloc((size_t)J->ld);
    J->vth = nde__dalloc(n_theta_full);
    if (!J->H || !J->JH || !J->vth) goto nomem;
  }
  J->ser = calloc((size_t)J->n_ser + 1, sizeof *J->ser);
  if (!J->ser) goto nomem;
  const int n = J->n, learn_u0 = r->settings.objective.learn_u0;
  for (int s = 0; s < J->n_ser; s++) {
    const nde_fit_series *se = &ser[s];
    jseries *js = &J->ser[s];
    js->se = se;
    js->start = se->loss_from > 0 ? se->loss_from : 0;
    js->first = se->loss_from > 0 ? se->loss_from : learn_u0 ? 0 : 1;
    js->row0 = J->n_rows;
    for (int k = js->start; k < se->n_obs; k++)
      for (int i = 0; i < J->ld; i++) js->rows += compared(J, js, k, i);
    J->n_rows += js->rows;
    if (se->n_obs > J->max_obs) J->max_obs = se->n_obs;
  }
  J->row_state = calloc(J->n_rows + 1, sizeof *J->row_state);
  J->Yp = nde__dalloc((size_t)J->max_obs * (size_t)n);
  J->ep = nde__dalloc(J->n_rows);
  J->em = nde__dalloc(J->n_rows);
  J->th = nde__dalloc(nde_problem_n_theta(p));
  J->n_u0 = (size_t)n * (size_t)nde_result_n_series(r);
  J->u0w = nde__dalloc(J->n_u0);
  J->dir = calloc((size_t)max_cols + 1, sizeof *J->dir);
  J->comp = calloc((size_t)max_cols + 1, sizeof *J->comp);
  J->colmap = calloc((size_t)max_cols + 1, sizeof *J->colmap);
  if (!J->row_state || !J->Yp || !J->ep || !J->em || !J->th || !J->u0w || !J->dir || !J->comp ||
      !J->colmap)
    goto nomem;
  size_t q = 0;
  for (int s = 0; s < J->n_ser; s++) {
    const jseries *js = &J->ser[s];
    for (int k = js->start; k < js->se->n_obs; k++)
      for (int i = 0; i < J->ld; i++)
        if (compared(J, js, k, i)) J->row_state[q++] = i;
  }
  *out = J;
  return NDE_OK;
nomem:
  st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
fail:
  nde__jac_destroy(&J);
  return st;
}

/* Whether row k of series js has a residual in any column. */
static int row_observed(const nde__jac *J, const jseries *js, int k) {
  for (int i = 0; i < J->ld; i++)
    if (compared(J, js, k, i)) return 1;
  return 0;
}

/* The compared quantities of series js at its time k, from the state Yk (n): the state itself,
 * or with observable columns the observation model's ld quantities in J->H (bound to the series
 * by the caller).  Returns the observer's code: < 0 fatal, > 0 a compared quantity is not finite
 * (one that is not compared there may be: an observable outside its domain where it is not
 * measured). */
static int quantities(nde__jac *J, const jseries *js, int k, const double *theta,
                      const double *Yk, const double **out) {
  *out = Yk;
  if (!J->obs) return 0;
  *out = J->H;
  const int rc = nde_observer_eval(J->obs, js->se->t[k], 1, Yk, theta, J->H);
  if (rc <= 0) return rc;
  for (int i = 0; i < J->ld; i++)
    if (compared(J, js, k, i) && !isfinite(J->H[i])) return rc;
  return 0;
}

/* Residuals of one series from its plain solution; the observer's code as quantities. */
static int residuals(nde__jac *J, const jseries *js, const double *theta, const double *Y,
                     double *e) {
  const int n = J->n;
  size_t q = 0;
  if (J->obs && nde_observer_set_rows(J->obs, 1, &js->se->id) != NDE_OK) return -1;
  for (int k = js->start; k < js->se->n_obs; k++) {
    if (!row_observed(J, js, k)) continue;
    const double *h;
    const int rc = quantities(J, js, k, theta, Y + (size_t)k * (size_t)n, &h);
    if (rc) return rc;
    for (int i = 0; i < J->ld; i++) {
      const double o = js->se->obs[(size_t)k * (size_t)J->ld + (size_t)i];
      if (!compared(J, js, k, i)) continue;
      e[q++] = J->log_space ? log(h[i]) - log(o) : h[i] - o;
    }
  }
  return 0;
}

/* Residuals of every series at (theta, u0s); *ok = 0 when a solve stops. */
static nde_status all_residuals(nde__jac *J, const double *theta, const double *u0s, double *e,
                                int *ok, nde_error *err) {
  *ok = 1;
  for (int s = 0; s < J->n_ser && *ok; s++) {
    const jseries *js = &J->ser[s];
    const int id = js->se->id;
    nde_status st = sens_plain(&J->S, id, theta, u0s + (size_t)id * (size_t)J->n,
                               js->se->n_obs, js->se->t, J->Yp, ok, err);
    if (st != NDE_OK) return st;
    if (!*ok) break;
    const int rc = residuals(J, js, theta, J->Yp, e + js->row0);
    if (rc < 0)
      return nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed (code %d)", rc);
    *ok = rc == 0;
  }
  for (size_t q = 0; q < J->n_rows && *ok; q++) *ok = isfinite(e[q]) != 0;
  return NDE_OK;
}

/* Move coordinate c of (theta, u0s) by delta. */
static void shift(const nde__coord *c, double *theta, double *u0s, int n, double delta) {
  if (c->kind == NDE_UNC_INITIAL_STATE) u0s[(size_t)c->series * (size_t)n + (size_t)c->component] += delta;
  else theta[c->theta] += delta;
}

static double coord_value(const nde__coord *c, const double *theta, const double *u0s, int n) {
  return c->kind == NDE_UNC_INITIAL_STATE
             ? u0s[(size_t)c->series * (size_t)n + (size_t)c->component]
             : theta[c->theta];
}

/* The observation model's derivative along one direction at state u: dH/du s + dH/dtheta e_j
 * (e_j the unit vector of theta index j; none for j < 0, an initial-state direction).  vth: a
 * zero vector of the full theta's length, left zero.  Returns as nde_observer_jvp. */
static int obs_dir_jvp(nde_observer *obs, double t, const double *u, const double *theta,
                       const double *s, long j, double *vth, double *out) {
  if (j >= 0) vth[j] = 1.0;
  const int rc = nde_observer_jvp(obs, t, 1, u, theta, s, j >= 0 ? vth : NULL, out);
  if (j >= 0) vth[j] = 0.0;
  return rc;
}

/* Row b of the variational solution at time k: [u (n), s (n)]. */
static const double *S_row(const nde__jac *J, int k, size_t stride, int b) {
  return J->S.Y + (size_t)k * stride + (size_t)b * 2 * (size_t)J->n;
}

nde_status nde__jac_eval(nde__jac *J, const double *theta, const double *u0s, int n_cols,
                         const nde__coord *cols, double *e, double *Jm, int *ok,
                         nde_error *err) {
  const int n = J->n;
  nde_status st = all_residuals(J, theta, u0s, e, ok, err);
  if (st != NDE_OK || !*ok || !Jm) return st;
  if (n_cols > J->max_cols) return nde__fail(err, NDE_ERR_ARG, "too many coordinates");
  memset(Jm, 0, J->n_rows * (size_t)n_cols * sizeof *Jm);
  if (J->method == NDE__JAC_FD) {
    /* Central differences: h = fd_step max(|x_j|, 1) in the optimised coordinate. */
    const size_t nth = nde_problem_n_theta(J->p);
    for (int c = 0; c < n_cols; c++) {
      const double x = coord_value(&cols[c], theta, u0s, n);
      const double h = J->fd_step * fmax(fabs(x), 1.0);
      int ok1 = 1, ok2 = 1;
      memcpy(J->th, theta, nth * sizeof *theta);
      memcpy(J->u0w, u0s, J->n_u0 * sizeof *u0s);
      shift(&cols[c], J->th, J->u0w, n, h);
      if ((st = all_residuals(J, J->th, J->u0w, J->ep, &ok1, err)) != NDE_OK) return st;
      memcpy(J->th, theta, nth * sizeof *theta);
      memcpy(J->u0w, u0s, J->n_u0 * sizeof *u0s);
      shift(&cols[c], J->th, J->u0w, n, -h);
      if ((st = all_residuals(J, J->th, J->u0w, J->em, &ok2, err)) != NDE_OK) return st;
      if (!ok1 || !ok2) {
        *ok = 0;
        return NDE_OK;
      }
      for (size_t q = 0; q < J->n_rows; q++)
        Jm[q * (size_t)n_cols + (size_t)c] = (J->ep[q] - J->em[q]) / (2 * h);
    }
    return NDE_OK;
  }
  for (int s = 0; s < J->n_ser; s++) {
    const jseries *js = &J->ser[s];
    const int id = js->se->id;
    /* The coordinates this series depends on: shared theta, its own per-series parameters and
     * initial state. */
    int rows = 0;
    for (int c = 0; c < n_cols; c++) {
      const nde__coord *cc = &cols[c];
      if ((cc->kind == NDE_UNC_SERIES_PARAM || cc->kind == NDE_UNC_INITIAL_STATE) &&
          cc->series != id)
        continue;
      J->dir[rows] = cc->kind == NDE_UNC_INITIAL_STATE ? -1 : cc->theta;
      J->comp[rows] = cc->kind == NDE_UNC_INITIAL_STATE ? cc->component : -1;
      J->colmap[rows++] = c;
    }
    if (rows == 0 || js->rows == 0) continue;
    const double *u0 = u0s + (size_t)id * (size_t)n;
    st = sens_solve(&J->S, id, theta, u0, rows, J->dir, J->comp, js->se->n_obs, js->se->t, ok,
                    err);
    if (st != NDE_OK || !*ok) return st;
    /* The plain solution again, where the compared quantities are evaluated and linearised:
     * for the log-space factor 1/y and the observation model. */
    if ((J->log_space || J->obs) &&
        (st = sens_plain(&J->S, id, theta, u0, js->se->n_obs, js->se->t, J->Yp, ok, err)) !=
            NDE_OK)
      return st;
    if (!*ok) return NDE_OK;
    size_t q = js->row0;
    const size_t stride = (size_t)rows * 2 * (size_t)n;
    if (J->obs && nde_observer_set_rows(J->obs, 1, &id) != NDE_OK)
      return nde__fail(err, NDE_ERR_CALLBACK, "cannot bind series %d to the observation model", id);
    for (int k = js->start; k < js->se->n_obs; k++) {
      if (!row_observed(J, js, k)) continue;
      const double *Zk = J->Yp + (size_t)k * (size_t)n;
      const double *h = Zk;
      if (J->log_space || J->obs) {
        const int rc = quantities(J, js, k, theta, Zk, &h);
        if (rc < 0)
          return nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed (code %d)", rc);
        if (rc > 0) {
          *ok = 0;
          return NDE_OK;
        }
      }
      for (int b = 0; b < rows; b++) {
        /* This direction's derivative of every compared quantity at time k. */
        const double *sk = S_row(J, k, stride, b) + n, *d = sk;
        if (J->obs) {
          const int rc = obs_dir_jvp(J->obs, js->se->t[k], Zk, theta, sk, J->dir[b], J->vth,
                                     J->JH);
          if (rc < 0)
            return nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed (code %d)", rc);
          d = J->JH;
        }
        size_t qq = q;
        for (int i = 0; i < J->ld; i++) {
          if (!compared(J, js, k, i)) continue;
          const double f = J->log_space ? 1.0 / h[i] : 1.0;
          Jm[qq++ * (size_t)n_cols + (size_t)J->colmap[b]] = f * d[i];
        }
      }
      for (int i = 0; i < J->ld; i++) q += compared(J, js, k, i);
    }
  }
  for (size_t q = 0; q < J->n_rows * (size_t)n_cols && *ok; q++) *ok = isfinite(Jm[q]) != 0;
  return NDE_OK;
}

/* ---- sensitivities of a forecast (for the linearised band) ---- */

nde_status nde__forecast_sens(const nde_result *r, const nde_solver_opts *so, int series,
                              const nde_input_series *inputs, const double *consts,
                              const double *u0, double t0, size_t n_times, const double *times,
                              int n_cols, const nde__coord *cols, double *Y, double *Sm,
                              double *H, double *Sh, int *ok, nde_error *err) {
  const int n = nde_model_state_dim(r->model), ns = r->n_series;
  const int no = H && Sh ? nde_model_n_observables(r->model) : 0;
  const int m_in = nde_model_n_inputs(r->model), ndc = nde_model_n_data_consts(r->model);
  /* The rows are series `series`'s, driven by inputs and consts: every series' entry gets them
   * (only that series' is read). */
  if ((m_in > 0 && !inputs) || (ndc > 0 && !consts))
    return nde__fail(err, NDE_ERR_ARG, "the model declares measured inputs or constants from "
                     "data: the band needs them");
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.n_series = ns;
  nde_input_series *ins = m_in > 0 ? calloc((size_t)ns, sizeof *ins) : NULL;
  double *cs = ndc > 0 ? nde__dalloc((size_t)ns * (size_t)ndc) : NULL;
  if ((m_in > 0 && !ins) || (ndc > 0 && !cs)) {
    free(ins);
    free(cs);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  for (int s = 0; s < ns; s++) {
    if (ins) ins[s] = *inputs;
    if (cs) memcpy(cs + (size_t)s * (size_t)ndc, consts, (size_t)ndc * sizeof *cs);
  }
  ro.inputs = ins;
  ro.consts = cs;
  nde_rhs *inner = NULL;
  nde_observer *obs = NULL;
  nde_status st = nde_model_create_rhs_opts(r->model, &ro, &inner, err);
  if (st == NDE_OK && no > 0) {
    /* The observation model, bound as the right-hand side is (full theta, this series' rows). */
    const char **names = calloc((size_t)no, sizeof *names);
    if (!names) st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    for (int j = 0; j < no && names; j++) names[j] = nde_model_observable_name(r->model, j);
    if (st == NDE_OK) st = nde_model_create_observer(r->model, &ro, no, names, &obs, err);
    if (st == NDE_OK && nde_observer_set_rows(obs, 1, &series) != NDE_OK)
      st = nde__fail(err, NDE_ERR_ARG, "cannot bind series %d to the observation model", series);
    free(names);
    if (st != NDE_OK) nde_rhs_destroy(&inner);
  }
  free(ins);
  free(cs);
  if (st != NDE_OK) {
    nde_observer_destroy(&obs);
    return st;
  }
  sens S;
  const int use_sens = nde_rhs_has_jvp(inner);
  if (!use_sens) {
    nde_observer_destroy(&obs);
    return nde_rhs_destroy(&inner),
           nde__fail(err, NDE_ERR_UNSUPPORTED, "the model has no JVP for the linearised band");
  }
  if ((st = sens_make(&S, inner, so, n_cols > 0 ? n_cols : 1, err)) != NDE_OK) {
    nde_observer_destroy(&obs);
    return st;
  }
  const int prepend = times[0] > t0;
  const size_t N = n_times + (size_t)prepend;
  double *T = nde__dalloc(N);
  long *dir = calloc((size_t)n_cols + 1, sizeof *dir);
  int *comp = calloc((size_t)n_cols + 1, sizeof *comp), *map = calloc((size_t)n_cols + 1, sizeof *map);
  double *vth = no > 0 ? nde__dalloc(nde_model_n_theta_full(r->model, ns) + 1) : NULL;
  double *jh = no > 0 ? nde__dalloc((size_t)no) : NULL;
  if (!T || !dir || !comp || !map || (no > 0 && (!vth || !jh))) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  T[0] = t0;
  memcpy(T + prepend, times, n_times * sizeof *T);
  int rows = 0;
  for (int c = 0; c < n_cols; c++) {
    const nde__coord *cc = &cols[c];
    if ((cc->kind == NDE_UNC_SERIES_PARAM || cc->kind == NDE_UNC_INITIAL_STATE) &&
        cc->series != series)
      continue;
    dir[rows] = cc->kind == NDE_UNC_INITIAL_STATE ? -1 : cc->theta;
    comp[rows] = cc->kind == NDE_UNC_INITIAL_STATE ? cc->component : -1;
    map[rows++] = c;
  }
  memset(Sm, 0, n_times * (size_t)n * (size_t)n_cols * sizeof *Sm);
  if (no > 0) memset(Sh, 0, n_times * (size_t)no * (size_t)n_cols * sizeof *Sh);
  if (rows == 0) {
    dir[0] = -1;
    comp[0] = -1;
  }
  st = sens_solve(&S, series, r->theta, u0, rows ? rows : 1, dir, comp, (int)N, T, ok, err);
  if (st != NDE_OK || !*ok) goto done;
  const size_t stride = (size_t)(rows ? rows : 1) * 2 * (size_t)n;
  for (size_t k = 0; k < n_times; k++) {
    const double *z = S.Y + (k + (size_t)prepend) * stride;
    memcpy(Y + k * (size_t)n, z, (size_t)n * sizeof *Y);
    for (int b = 0; b < rows; b++)
      for (int i = 0; i < n; i++)
        Sm[(k * (size_t)n + (size_t)i) * (size_t)n_cols + (size_t)map[b]] =
            z[(size_t)b * 2 * (size_t)n + (size_t)n + (size_t)i];
  }
  if (no > 0) {
    /* The observables and, per direction, dH/du s + dH/dtheta e_j (e_j = 0 for an initial
     * state); coordinates of other series have no effect.  A value that is not finite (an
     * observable outside its domain at some time) stays so, and only its own band with it. */
    const size_t nth = nde_model_n_theta_full(r->model, ns);
    for (size_t a = 0; a < nth; a++) vth[a] = 0.0;
    for (size_t k = 0; k < n_times && *ok; k++) {
      const double *z = S.Y + (k + (size_t)prepend) * stride;
      int rc = nde_observer_eval(obs, times[k], 1, z, r->theta, H + k * (size_t)no);
      for (int b = 0; b < rows && rc >= 0; b++) {
        rc = obs_dir_jvp(obs, times[k], z, r->theta, z + (size_t)b * 2 * (size_t)n + n, dir[b],
                         vth, jh);
        for (int i = 0; i < no; i++)
          Sh[(k * (size_t)no + (size_t)i) * (size_t)n_cols + (size_t)map[b]] = jh[i];
      }
      if (rc < 0) {
        st = nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed (code %d)", rc);
        goto done;
      }
    }
  }
done:
  free(vth);
  free(jh);
  nde_observer_destroy(&obs);
  free(T);
  free(dir);
  free(comp);
  free(map);
  sens_free(&S);
  return st;
}
