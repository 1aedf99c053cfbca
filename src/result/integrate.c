/* The fitted model on any grid: the start a forecast means (a fitted initial state, the fitted
 * trajectory at a time, a given state), integration with the fit's own settings, scoring against
 * held-out series each started from its own first row, and simulation of a model with noise,
 * of one series or of many as jobs on the thread pool (nde__par_run), each worker with one
 * right-hand side, solver and observer that it binds to the series it runs in turn. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "solve/internal.h"
#include "train/internal.h"

/* A right-hand side and a solver for one integration of one series. */
typedef struct integ {
  nde_rhs *rhs;
  nde_solver *s;
  const char **names; /* the model's component names, for the solver's messages */
  double *theta;      /* the parameters of the series: the shared part and its own block */
} integ;

static void integ_free(integ *I) {
  nde_solver_destroy(&I->s);
  nde_rhs_destroy(&I->rhs);
  free(I->names);
  free(I->theta);
  I->names = NULL;
  I->theta = NULL;
}

nde_status nde__stop_at_input_jumps(nde_solver *s, const nde_rhs *rhs, double t0, double t1,
                                    nde_error *err) {
  nde_status st = NDE_OK;
  const size_t nb = nde_rhs_breakpoints(rhs, t0, t1, 0, NULL);
  double *bp = nb ? nde__dalloc(nb) : NULL;
  if (nb && !bp) return nde__fail(err, NDE_ERR_NOMEM, "out of memory for %zu breakpoints", nb);
  if (nb) nde_rhs_breakpoints(rhs, t0, t1, nb, bp);
  st = nde_solver_set_breakpoints(s, nb, bp);
  if (st != NDE_OK) nde__fail(err, st, "%s", nde_solver_errmsg(s));
  free(bp);
  return st;
}

nde_status nde__check_theta(const nde_model *m, int n_series, const double *theta,
                            nde_error *err) {
  const size_t nt = nde_model_n_theta(m), nsp = (size_t)nde_model_n_series_params(m);
  const size_t total = nde_model_n_theta_full(m, n_series);
  for (size_t i = 0; i < total; i++) {
    if (isfinite(theta[i])) continue;
    if (i < nt) {
      for (int k = 0; k < nde_model_n_layout(m); k++) {
        nde_model_layout_entry L;
        nde_model_get_layout(m, k, &L);
        if (i < L.offset || i >= L.offset + L.length) continue;
        if (L.kind == NDE_LAYOUT_PARAM)
          return nde__fail(err, NDE_ERR_ARG, "the parameter '%s' is %g (theta[%zu]; expected a "
                           "finite value)", L.name, theta[i], i);
        return nde__fail(err, NDE_ERR_ARG, "weight %zu of net '%s' is %g (theta[%zu]; expected "
                         "a finite value)", i - L.offset, L.name, theta[i], i);
      }
    } else if (nsp > 0) {
      const size_t s = (i - nt) / nsp, off = (i - nt) % nsp;
      for (int k = 0; k < nde_model_n_params(m); k++) {
        nde_model_param_info pi;
        nde_model_get_param(m, k, &pi);
        if (pi.per_series && pi.offset == off)
          return nde__fail(err, NDE_ERR_ARG, "the parameter '%s' of series %zu is %g (theta[%zu]; "
                           "expected a finite value)", pi.name, s, theta[i], i);
      }
    }
    return nde__fail(err, NDE_ERR_ARG, "theta[%zu] is %g (expected a finite value)", i, theta[i]);
  }
  return NDE_OK;
}

nde_status nde_model_check_input_span(const nde_model *m, const nde_input_series *inp, double t0,
                                      double t1, nde_error *err) {
  for (int i = 0; i < nde_model_n_inputs(m); i++) {
    nde_model_input_info ii;
    nde_model_get_input(m, i, &ii);
    if (!inp || inp->n < 1 || !inp->t)
      return nde__fail(err, NDE_ERR_ARG, "no samples of the measured input '%s'", ii.name);
    for (size_t k = 0; k < inp->n; k++)
      if (!isfinite(inp->t[k]) || (k && !(inp->t[k] > inp->t[k - 1])))
        return nde__fail(err, NDE_ERR_ARG, "the sample times of the measured input '%s' are not "
                         "finite and strictly increasing at sample %zu (t = %g)", ii.name, k,
                         inp->t[k]);
    if (ii.hold) continue;
    const double a = inp->t[0], b = inp->t[inp->n - 1];
    if (t0 < a || t1 > b) {
      char ta[NDE_NUM_MAX], tb[NDE_NUM_MAX], sa[NDE_NUM_MAX], sb[NDE_NUM_MAX];
      return nde__fail(err, NDE_ERR_ARG,
                       "the integration on [%s, %s] needs the measured input '%s' beyond its "
                       "samples on [%s, %s] (expected inputs that cover it, or the input "
                       "declared with hold)",
                       nde_num_str(t0, ta), nde_num_str(t1, tb), ii.name, nde_num_str(a, sa),
                       nde_num_str(b, sb));
    }
  }
  return NDE_OK;
}

/* Series k's parameters from a full theta: the shared ones, then k's per-series values
 * (out: n_theta + n_series_params). */
static void series_theta(const nde_model *m, const double *theta, int k, double *out) {
  const size_t nt = nde_model_n_theta(m), nsp = (size_t)nde_model_n_series_params(m);
  if (nt) memcpy(out, theta, nt * sizeof *out);
  if (nsp) memcpy(out + nt, theta + nt + (size_t)k * nsp, nsp * sizeof *out);
}

/* H (n_times x K) = the observer's quantities on the states Z (n_times x n); NaN for a row whose
 * state is not finite (after a solve stopped).  Returns 0, or the observer's fatal code (< 0). */
static int observe_rows(nde_observer *obs, size_t n_times, const double *times, const double *Z,
                        int n, const double *theta, int K, double *H) {
  for (size_t i = 0; i < n_times; i++) {
    double *h = H + i * (size_t)K;
    const double *z = Z + i * (size_t)n;
    int finite = 1;
    for (int j = 0; j < n; j++) finite &= isfinite(z[j]) != 0;
    const int rc = finite ? nde_observer_eval(obs, times[i], 1, z, theta, h) : 1;
    if (rc < 0) return rc;
    if (!finite)
      for (int j = 0; j < K; j++) h[j] = NAN;
  }
  return 0;
}

/* For series k of a full theta (n_series series): its parameters, driven by inputs and consts
 * (required when the model declares them). */
static nde_status integ_make(integ *I, nde_model *m, const double *theta, int n_series, int k,
                             const nde_input_series *inputs, const double *consts,
                             const nde_solver_opts *o, nde_error *err) {
  memset(I, 0, sizeof *I);
  const size_t nt = nde_model_n_theta(m), nsp = (size_t)nde_model_n_series_params(m);
  if (k < 0 || k >= n_series)
    return nde__fail(err, NDE_ERR_ARG,
                     "series index %d does not exist (%d series, indices from 0)", k, n_series);
  if (nde_model_n_inputs(m) > 0 && !inputs)
    return nde__fail(err, NDE_ERR_ARG, "the model declares measured inputs: give their samples");
  if (nde_model_n_data_consts(m) > 0 && !consts)
    return nde__fail(err, NDE_ERR_ARG,
                     "the model declares constants from data: give their values");
  I->theta = nde__dalloc(nt + nsp + 1);
  const int n = nde_model_state_dim(m);
  I->names = calloc((size_t)n + 1, sizeof *I->names);
  if (!I->theta || !I->names) {
    integ_free(I);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  series_theta(m, theta, k, I->theta);
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.inputs = inputs;
  ro.consts = consts;
  nde_status st = nde_model_create_rhs_opts(m, &ro, &I->rhs, err);
  nde_solver_opts so = *o;
  for (int j = 0; j < n; j++) I->names[j] = nde_model_component_name(m, j);
  so.state_names = I->names;
  if (st == NDE_OK) st = nde_solver_create(I->rhs, &so, 1, &I->s, err);
  if (st != NDE_OK) integ_free(I);
  return st;
}

/* Check the output grid: finite, strictly increasing, none before t0. */
static nde_status check_grid(double t0, size_t n_times, const double *times, nde_error *err) {
  if (n_times < 1 || !times) return nde__fail(err, NDE_ERR_ARG, "no output times");
  for (size_t i = 0; i < n_times; i++) {
    if (!isfinite(times[i]))
      return nde__fail(err, NDE_ERR_ARG, "output time %zu is not finite", i);
    if (i && !(times[i] > times[i - 1]))
      return nde__fail(err, NDE_ERR_ARG,
                       "output times must increase strictly (time %zu = %.17g after %.17g)", i,
                       times[i], times[i - 1]);
  }
  if (times[0] < t0)
    return nde__fail(err, NDE_ERR_ARG, "the first output time %.17g is before the start %.17g",
                     times[0], t0);
  return NDE_OK;
}

/* Integrate from u0 at t0 to every time of times (t0 <= times[0]); Y is n_times x n. */
static nde_status integ_run(integ *I, double t0, const double *u0, size_t n_times,
                            const double *times, double *Y, nde_solve_stats *stats,
                            nde_error *err) {
  const int n = nde_rhs_get_info(I->rhs)->n_state;
  const int prepend = times[0] > t0;
  const size_t N = n_times + (size_t)prepend;
  if (N > (size_t)2147483647) return nde__fail(err, NDE_ERR_ARG, "too many output times");
  double *T = (double *)times, *Z = Y;
  if (prepend) {
    T = nde__dalloc(N);
    Z = nde__dalloc(N * (size_t)n);
    if (!T || !Z) {
      free(T);
      free(Z);
      return nde__fail(err, NDE_ERR_NOMEM, "out of memory for %zu output times", N);
    }
    T[0] = t0;
    memcpy(T + 1, times, n_times * sizeof *T);
  }
  nde_status st = nde__stop_at_input_jumps(I->s, I->rhs, t0, T[N - 1], err);
  if (st == NDE_OK) {
    st = nde_solver_solve(I->s, I->theta, 1, u0, (int)N, T, Z, stats);
    if (st != NDE_OK) nde__fail(err, st, "%s", nde_solver_errmsg(I->s));
  }
  if (prepend) {
    if (st == NDE_OK) memcpy(Y, Z + n, n_times * (size_t)n * sizeof *Y);
    free(T);
    free(Z);
  }
  return st;
}

/* The fit's settings for an output grid: fixed-step methods use the fit's steps per interval on
 * the fitted series' own times (reproducing the fitted curves exactly), else the fit's step. */
static nde_solver_opts settings_for(const nde_result *r, const nde_solver_opts *user, int series,
                                    size_t n_times, const double *times) {
  if (user) return *user;
  nde_solver_opts o = r->settings.solver;
  if (nde__method_adaptive(o.method) || o.dt > 0) return o;
  const int same = series >= 0 && series < r->n_series && r->series[series].n_obs == n_times &&
                   !memcmp(r->series[series].t, times, n_times * sizeof *times);
  if (!same) o.dt = nde_result_step(r);
  return o;
}

nde_status nde__check_series_index(const nde_result *r, int k, nde_error *err) {
  if (k >= 0 && k < r->n_series) return NDE_OK;
  return nde__fail(err, NDE_ERR_ARG,
                   "series index %d does not exist (the result holds %d, indices from 0)", k,
                   r->n_series);
}

nde_status nde__start_binding(const nde_result *r, const nde_start *start, nde_input_series *own,
                              const nde_input_series **inputs, const double **consts,
                              nde_error *err) {
  const nde_status st = nde__check_series_index(r, start->series, err);
  if (st != NDE_OK) return st;
  const nde__rseries *se = &r->series[start->series];
  *own = (nde_input_series){se->n_u, se->u_t, se->u};
  *inputs = start->inputs ? start->inputs : own;
  *consts = start->consts ? start->consts : se->consts;
  return NDE_OK;
}

nde_status nde_result_start_state(const nde_result *r, const nde_start *start, double *t0,
                                  double *u0, nde_error *err) {
  if (!r || !start || !t0 || !u0) return nde__fail(err, NDE_ERR_ARG, "no result or start");
  const int n = nde_model_state_dim(r->model);
  if (start->kind == NDE_START_STATE) {
    if (!start->u || !isfinite(start->t))
      return nde__fail(err, NDE_ERR_ARG, "a start state needs a finite time and a state");
    for (int j = 0; j < n; j++)
      if (!isfinite(start->u[j]))
        return nde__fail(err, NDE_ERR_ARG, "start state component %s is not finite",
                         nde_model_component_name(r->model, j));
    *t0 = start->t;
    memcpy(u0, start->u, (size_t)n * sizeof *u0);
    return NDE_OK;
  }
  const int k = start->series;
  const nde_status sst = nde__check_series_index(r, k, err);
  if (sst != NDE_OK) return sst;
  const nde__rseries *se = &r->series[k];
  if (start->kind == NDE_START_FITTED) {
    *t0 = se->t[0];
    memcpy(u0, se->u0, (size_t)n * sizeof *u0);
    return NDE_OK;
  }
  if (start->kind != NDE_START_AT_TIME) return nde__fail(err, NDE_ERR_ARG, "unknown start kind");
  const double a = se->t[0], b = se->t[se->n_obs - 1], t = start->t;
  if (!(t >= a && t <= b))
    return nde__fail(err, NDE_ERR_ARG,
                     "start time %.17g is outside the fitted span [%.17g, %.17g] of series %s "
                     "(expected a time the fit covers, or a given start state)",
                     t, a, b, se->name);
  *t0 = t;
  if (t == a) {
    memcpy(u0, se->u0, (size_t)n * sizeof *u0);
    return NDE_OK;
  }
  nde_start fitted = {.kind = NDE_START_FITTED, .series = k};
  nde_solve_stats ss;
  double *Y = nde__dalloc((size_t)n);
  if (!Y) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  nde_status st = nde_result_integrate(r, &fitted, 1, &t, NULL, Y, &ss, err);
  if (st == NDE_OK && ss.reason != NDE_REASON_NONE) {
    char msg[600];
    st = nde__fail(err, NDE_ERR_NUMERIC, "the fitted trajectory of series %s does not reach "
                   "t = %g: %s", se->name, t,
                   nde_stop_message(r->settings.solver.method, &ss, msg, sizeof msg));
  }
  if (st == NDE_OK) memcpy(u0, Y, (size_t)n * sizeof *u0);
  free(Y);
  return st;
}

nde_status nde_result_integrate(const nde_result *r, const nde_start *start, size_t n_times,
                                const double *times, const nde_solver_opts *solver, double *Y,
                                nde_solve_stats *stats, nde_error *err) {
  if (!r || !start || !Y) return nde__fail(err, NDE_ERR_ARG, "no result, start or output");
  const int n = nde_model_state_dim(r->model);
  double t0;
  double *u0 = nde__dalloc((size_t)n);
  if (!u0) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  nde_solve_stats local;
  if (!stats) stats = &local;
  memset(stats, 0, sizeof *stats);
  nde_status st = nde_result_start_state(r, start, &t0, u0, err);
  if (st == NDE_OK) st = check_grid(t0, n_times, times, err);
  /* The data that drive it: given, or those of the fitted series. */
  nde_input_series own;
  const nde_input_series *inp = NULL;
  const double *cs = NULL;
  if (st == NDE_OK) st = nde__start_binding(r, start, &own, &inp, &cs, err);
  if (st == NDE_OK) {
    const int series = start->kind == NDE_START_FITTED ? start->series : -1;
    nde_solver_opts o = settings_for(r, solver, series, n_times, times);
    st = nde_model_check_input_span(r->model, inp, t0, times[n_times - 1], err);
    integ I;
    if (st == NDE_OK)
      st = integ_make(&I, r->model, r->theta, r->n_series, start->series, inp, cs, &o, err);
    if (st == NDE_OK) {
      st = integ_run(&I, t0, u0, n_times, times, Y, stats, err);
      integ_free(&I);
    }
  }
  free(u0);
  return st;
}

nde_status nde_result_observe(const nde_result *r, const nde_start *start, size_t n_times,
                              const double *times, const double *Z, double *H, nde_error *err) {
  if (!r || !start || !times || !Z || !H)
    return nde__fail(err, NDE_ERR_ARG, "no result, start, times, states or output");
  const int n = nde_model_state_dim(r->model), no = nde_model_n_observables(r->model);
  if (no == 0) return nde__fail(err, NDE_ERR_ARG, "the model declares no observables");
  const int k = start->series;
  /* Driven as the trajectory was: given inputs, or those of the fitted series. */
  nde_input_series own;
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  const nde_status bst = nde__start_binding(r, start, &own, &ro.inputs, &ro.consts, err);
  if (bst != NDE_OK) return bst;
  const size_t nt = nde_model_n_theta(r->model), nsp = (size_t)nde_model_n_series_params(r->model);
  double *th = nde__dalloc(nt + nsp + 1);
  const char **names = calloc((size_t)no, sizeof *names);
  nde_observer *obs = NULL;
  nde_status st = NDE_OK;
  if (!th || !names) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  series_theta(r->model, r->theta, k, th);
  for (int j = 0; j < no; j++) names[j] = nde_model_observable_name(r->model, j);
  if ((st = nde_model_create_observer(r->model, &ro, no, names, &obs, err)) != NDE_OK) goto done;
  if (observe_rows(obs, n_times, times, Z, n, th, no, H) < 0)
    st = nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed");
done:
  nde_observer_destroy(&obs);
  free(names);
  free(th);
  return st;
}

/* ---- scoring ---- */

struct nde_score {
  int n_series, n, K; /* series; state components; columns (components, then observables) */
  nde_series_score *s;
  char **names;
  double *u0, *rmse;
  size_t *count;
  unsigned char *u0_from; /* S x n nde_u0_source */
  double rmse_all;
};

nde_score_opts nde_score_opts_default(void) {
  nde_score_opts o = {0.1, NULL, 0};
  return o;
}

void nde_score_destroy(nde_score **sp) {
  if (!sp || !*sp) return;
  nde_score *s = *sp;
  for (int k = 0; k < s->n_series; k++) free(s->names ? s->names[k] : NULL);
  free(s->names);
  free(s->s);
  free(s->u0);
  free(s->rmse);
  free(s->count);
  free(s->u0_from);
  free(s);
  *sp = NULL;
}

int nde_score_n_series(const nde_score *s) { return s ? s->n_series : 0; }
double nde_score_rmse(const nde_score *s) { return s ? s->rmse_all : NAN; }

nde_status nde_score_get(const nde_score *s, int k, nde_series_score *out) {
  if (!s || !out || k < 0 || k >= s->n_series) return NDE_ERR_ARG;
  *out = s->s[k];
  return NDE_OK;
}

int nde_score_n_columns(const nde_score *s) { return s ? s->K : 0; }

/* The fitted trajectory of the fitted series that a held-out series continues, at its first time. */
static nde_status held_start_fitted(const nde_result *r, const nde_traj *tr, double *u0,
                                    unsigned char *from, int *series_from, nde_error *err) {
  for (int j = 0; j < nde_model_state_dim(r->model); j++) from[j] = NDE_U0_FROM_FIT;
  int k = nde_result_find_series(r, tr->name);
  if (k < 0 && r->n_series == 1) k = 0;
  if (k < 0)
    return nde__fail(err, NDE_ERR_DATA,
                     "held-out series %s has no fitted series of the same name to start from "
                     "(expected one of the fit's series, or the start from its first row)",
                     tr->name);
  *series_from = k;
  nde_start at = {.kind = NDE_START_AT_TIME, .series = k, .t = tr->t[0]};
  double t0;
  return nde_result_start_state(r, &at, &t0, u0, err);
}

/* The start of a held-out series: its first row, completed. */
static nde_status held_start(const nde_result *r, const nde_data *held, const nde_traj *tr,
                             double *u0, unsigned char *from, int *series_from,
                             nde_error *err) {
  const nde_model *m = r->model;
  const int n = nde_model_state_dim(m);
  int missing = 0;
  for (int j = 0; j < n; j++) missing |= isnan(tr->y[j]);
  memcpy(u0, tr->y, (size_t)n * sizeof *u0);
  for (int j = 0; j < n; j++) from[j] = NDE_U0_FROM_ROW;
  if (!missing) return NDE_OK;
  /* The fitted trajectory of the series of the same name (or of the only one) at that time.
   * Another series' trajectory is no start for this one: with several fitted series, one of
   * another name completes nothing. */
  double *fit = nde__dalloc((size_t)n);
  nde_status st = NDE_OK;
  int have_fit = 0;
  char place[1024];
  if (!fit) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  int k = nde_result_find_series(r, tr->name);
  if (k < 0 && r->n_series == 1) k = 0;
  const nde__rseries *se = k >= 0 ? &r->series[k] : NULL;
  if (se && tr->t[0] >= se->t[0] && tr->t[0] <= se->t[se->n_obs - 1]) {
    nde_start at = {.kind = NDE_START_AT_TIME, .series = k, .t = tr->t[0]};
    double t0;
    have_fit = nde_result_start_state(r, &at, &t0, fit, NULL) == NDE_OK;
  }
  for (int i = 0; i < nde_model_n_states(m); i++) {
    nde_model_state_info si;
    nde_model_get_state(m, i, &si);
    for (int c = 0; c < si.size; c++) {
      const int j = si.offset + c;
      if (!isnan(u0[j])) continue;
      if (have_fit) {
        u0[j] = fit[j];
        from[j] = NDE_U0_FROM_FIT;
        *series_from = k;
      } else if (si.has_initial) {
        u0[j] = si.initial[c];
        from[j] = NDE_U0_FROM_MODEL;
      } else {
        st = nde__fail(err, NDE_ERR_DATA,
                       "%s/y: state '%s' is not observed at the first time t = %g, the fitted "
                       "trajectories do not cover that time and the model gives no initial "
                       "value (expected a value in the first row)",
                       nde_data_place(held, tr, place, sizeof place),
                       nde_model_component_name(m, j), tr->t[0]);
        goto done;
      }
    }
  }
done:
  free(fit);
  return st;
}

nde_status nde_result_score(const nde_result *r, const nde_data *held, const nde_score_opts *opts,
                            nde_score **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_result_score: no output pointer");
  *out = NULL;
  if (!r || !held) return nde__fail(err, NDE_ERR_ARG, "scoring needs a result and data");
  const nde_score_opts o = opts ? *opts : nde_score_opts_default();
  if (!(o.horizon_tol > 0))
    return nde__fail(err, NDE_ERR_ARG, "horizon_tol must be > 0 (got %g)", o.horizon_tol);
  const int n = nde_model_state_dim(r->model);
  /* Columns: the components, then (nde_data_open_for) the observables. */
  const int K = (int)nde_data_n_state(held);
  int names_ok = K == n || K == n + nde_model_n_observables(r->model);
  for (int j = 0; names_ok && j < K; j++)
    names_ok = !strcmp(nde_data_state_name(held, (size_t)j),
                       j < n ? nde_model_component_name(r->model, j)
                             : nde_model_observable_name(r->model, j - n));
  if (!names_ok)
    return nde__fail(err, NDE_ERR_ARG, "the held-out data were not opened for the model's states "
                     "and observables (open them with nde_data_open_for)");
  const int S = (int)nde_data_n_traj(held);
  nde_score *s = calloc(1, sizeof *s);
  if (!s) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  s->n_series = S;
  s->n = n;
  s->K = K;
  s->s = calloc((size_t)S, sizeof *s->s);
  s->names = calloc((size_t)S, sizeof *s->names);
  s->u0 = nde__dalloc((size_t)S * (size_t)n);
  s->rmse = nde__dalloc((size_t)S * (size_t)K);
  s->count = calloc((size_t)S * (size_t)K + 1, sizeof *s->count);
  s->u0_from = calloc((size_t)S * (size_t)n + 1, 1);
  nde_status st = NDE_OK;
  double *Y = NULL, *H = NULL, *th1 = NULL,
         *cs = nde__dalloc((size_t)nde_model_n_data_consts(r->model) + 1);
  const char **qn = calloc((size_t)K + 1, sizeof *qn);
  nde_observer *obs = NULL;
  if (!s->s || !s->names || !s->u0 || !s->rmse || !s->count || !s->u0_from || !cs || !qn) {
    st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  const nde_state_stats *hs = nde_data_stats(held);
  double all = 0;
  size_t n_all = 0;
  for (int k = 0; k < S; k++) {
    const nde_traj *tr = nde_data_traj(held, (size_t)k);
    nde_series_score *sc = &s->s[k];
    double *u0 = s->u0 + (size_t)k * (size_t)n, *rm = s->rmse + (size_t)k * (size_t)K;
    size_t *cnt = s->count + (size_t)k * (size_t)K;
    size_t len = strlen(tr->name) + 1;
    if (!(s->names[k] = malloc(len))) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    memcpy(s->names[k], tr->name, len);
    unsigned char *from = s->u0_from + (size_t)k * (size_t)n;
    *sc = (nde_series_score){s->names[k], tr->t[0], tr->t[tr->n - 1], u0, rm, cnt, NAN, NAN,
                             {0}, 0, from, -1};
    st = o.start_fitted ? held_start_fitted(r, tr, u0, from, &sc->series_from, err)
                        : held_start(r, held, tr, u0, from, &sc->series_from, err);
    if (st != NDE_OK) goto done;
    free(Y);
    Y = nde__dalloc(tr->n * (size_t)n);
    if (!Y) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    /* Per-series values: those of the fitted series of the same name (or of the only one). */
    int ks = nde_result_find_series(r, tr->name);
    if (ks < 0 && (r->n_series == 1 || nde_model_n_series_params(r->model) == 0)) ks = 0;
    if (ks < 0) {
      st = nde__fail(err, NDE_ERR_DATA,
                     "held-out series %s: no fitted series of that name, so no values of the "
                     "per-series parameters (expected the name of a fitted series)",
                     tr->name);
      goto done;
    }
    sc->series = ks;
    /* Driven by its own measured inputs and constants. */
    nde_input_series inp;
    if ((st = nde__traj_binding(r->model, held, tr, &inp, cs, err)) != NDE_OK) goto done;
    nde_start start = {.kind = NDE_START_STATE, .series = ks, .t = tr->t[0], .u = u0,
                       .inputs = &inp, .consts = cs};
    if ((st = nde_result_integrate(r, &start, tr->n, tr->t, o.solver, Y, &sc->stop, err)) != NDE_OK)
      goto done;
    /* The observables at every row, driven as the states were (this series' data, the fitted
     * series' parameters). */
    const double *P = Y;
    if (K > n) {
      nde_observer_destroy(&obs);
      free(H);
      free(th1);
      const size_t nt = nde_model_n_theta(r->model);
      const size_t nsp = (size_t)nde_model_n_series_params(r->model);
      H = nde__dalloc(tr->n * (size_t)K);
      th1 = nde__dalloc(nt + nsp + 1);
      if (!H || !th1) {
        st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
        goto done;
      }
      series_theta(r->model, r->theta, ks, th1);
      for (int j = 0; j < K; j++) qn[j] = nde_data_state_name(held, (size_t)j);
      nde_model_rhs_opts ro = nde_model_rhs_opts_default();
      ro.inputs = &inp;
      ro.consts = cs;
      if ((st = nde_model_create_observer(r->model, &ro, K, qn, &obs, err)) != NDE_OK) goto done;
      if (observe_rows(obs, tr->n, tr->t, Y, n, th1, K, H) < 0) {
        st = nde__fail(err, NDE_ERR_CALLBACK, "held-out series %s: the observation model failed",
                       tr->name);
        goto done;
      }
      P = H;
    }
    double se_all = 0;
    size_t c_all = 0;
    for (size_t i = 0; i < tr->n; i++) {
      double worst = 0;
      int any = 0;
      for (int j = 0; j < K; j++) {
        const double d = tr->y[i * (size_t)K + (size_t)j], y = P[i * (size_t)K + (size_t)j];
        if (isnan(d) || !isfinite(y)) continue;
        const double e = y - d;
        rm[j] += e * e;
        cnt[j]++;
        const double sd = hs[j].std > 0 ? hs[j].std : 1.0;
        if (fabs(e) / sd > worst) worst = fabs(e) / sd;
        any = 1;
      }
      if (isnan(sc->horizon) && any && worst > o.horizon_tol) sc->horizon = tr->t[i];
    }
    if (sc->stop.reason != NDE_REASON_NONE && isnan(sc->horizon)) sc->horizon = sc->stop.t_stop;
    for (int j = 0; j < K; j++) {
      se_all += rm[j];
      c_all += cnt[j];
      rm[j] = cnt[j] ? sqrt(rm[j] / (double)cnt[j]) : NAN;
    }
    sc->rmse_all = c_all ? sqrt(se_all / (double)c_all) : NAN;
    all += se_all;
    n_all += c_all;
  }
  s->rmse_all = n_all ? sqrt(all / (double)n_all) : NAN;
done:
  free(Y);
  free(H);
  free(th1);
  free(cs);
  free(qn);
  nde_observer_destroy(&obs);
  if (st != NDE_OK) nde_score_destroy(&s);
  *out = s;
  return st;
}

/* ---- simulation ---- */

nde_sim_opts nde_sim_opts_default(void) {
  nde_sim_opts o;
  memset(&o, 0, sizeof o);
  o.solver = nde_solver_opts_default();
  o.solver.steps_per_interval = 10;
  o.seed = 1;
  return o;
}

/* The checks of nde_simulate that only one series' values decide (after those of the options
 * and the grid, in nde_simulate's order): its initial state, parameters and input samples. */
static nde_status sim_check_series(const nde_model *model, const double *theta, const double *u0,
                                   size_t n_times, const double *times,
                                   const nde_input_series *inputs, nde_error *err) {
  const int n = nde_model_state_dim(model);
  for (int j = 0; j < n; j++)
    if (!isfinite(u0[j]))
      return nde__fail(err, NDE_ERR_ARG, "the initial state of %s is %g (expected a finite "
                       "value)", nde_model_component_name(model, j), u0[j]);
  nde_status st = NDE_OK;
  if (theta && (st = nde__check_theta(model, 1, theta, err)) != NDE_OK) return st;
  if (nde_model_n_inputs(model) > 0)
    st = nde_model_check_input_span(model, inputs, times[0], times[n_times - 1], err);
  return st;
}

/* Noise on Y (n_times x K) as nde_simulate documents it; noise_std (may be NULL) receives the
 * levels. */
static nde_status sim_noise(size_t n_times, int K, double noise, uint64_t seed, double *Y,
                            double *noise_std, nde_error *err) {
  /* std_j = noise * mean_i |y_ij|; one normal draw per value in row-major order. */
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  double *sd = nde__dalloc((size_t)K);
  if (!sd) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  for (int j = 0; j < K; j++) {
    /* Over the finite values: an observable undefined at some times (NaN there) keeps its
     * noise level elsewhere instead of making the whole column NaN. */
    double s = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n_times; i++) {
      const double y = Y[i * (size_t)K + (size_t)j];
      if (isfinite(y)) s += fabs(y), cnt++;
    }
    sd[j] = cnt ? noise * s / (double)cnt : 0.0;
    if (!isfinite(s)) {
      /* The sum of values near the largest double overflows: the mean of scaled values. */
      double mean = 0;
      for (size_t i = 0; i < n_times; i++) {
        const double y = Y[i * (size_t)K + (size_t)j];
        if (isfinite(y)) mean += fabs(y) / (double)cnt;
      }
      sd[j] = noise * mean;
    }
  }
  for (size_t i = 0; i < n_times; i++)
    for (int j = 0; j < K; j++) Y[i * (size_t)K + (size_t)j] += sd[j] * nde_rng_normal(&rng);
  if (noise_std) memcpy(noise_std, sd, (size_t)K * sizeof *sd);
  free(sd);
  return NDE_OK;
}

/* The part of a simulation after its setup, the same for nde_simulate and a worker of
 * nde_simulate_many: integrate u0 over times into Z (Y itself without an observer), observe the
 * K columns into Y, and add the noise of level noise from seed (noise_std, may be NULL, gets the
 * levels: zeros without noise or when the solve stopped). */
static nde_status sim_finish(integ *I, nde_observer *obs, double *Z, const double *u0,
                             size_t n_times, const double *times, int n, int K, double noise,
                             uint64_t seed, double *Y, double *noise_std, nde_solve_stats *stats,
                             nde_error *err) {
  nde_status st = integ_run(I, times[0], u0, n_times, times, Z, stats, err);
  if (obs && st == NDE_OK && observe_rows(obs, n_times, times, Z, n, I->theta, K, Y) < 0)
    st = nde__fail(err, NDE_ERR_CALLBACK, "the observation model failed");
  if (noise_std)
    for (int j = 0; j < K; j++) noise_std[j] = 0.0;
  if (st != NDE_OK || stats->reason != NDE_REASON_NONE || !(noise > 0)) return st;
  return sim_noise(n_times, K, noise, seed, Y, noise_std, err);
}

nde_status nde_simulate(nde_model *model, const double *theta, const double *u0, size_t n_times,
                        const double *times, const nde_sim_opts *opts, double *Y,
                        double *noise_std, nde_solve_stats *stats, nde_error *err) {
  if (!model || !u0 || !times || !Y)
    return nde__fail(err, NDE_ERR_ARG, "simulation needs a model, u0, times and an output");
  if (!theta && nde_model_n_theta_full(model, 1) > 0)
    return nde__fail(err, NDE_ERR_ARG, "simulation needs the parameters theta");
  const nde_sim_opts o = opts ? *opts : nde_sim_opts_default();
  if (!(o.noise >= 0) || !isfinite(o.noise))
    return nde__fail(err, NDE_ERR_ARG, "the noise level must be >= 0 (got %g)", o.noise);
  if (o.n_columns < 0 || (o.n_columns > 0 && !o.columns))
    return nde__fail(err, NDE_ERR_ARG, "columns: expected n_columns names");
  const int n = nde_model_state_dim(model), K = o.n_columns > 0 ? o.n_columns : n;
  nde_status st = check_grid(n_times ? times[0] : 0.0, n_times, times, err);
  if (st != NDE_OK) return st;
  if ((st = sim_check_series(model, theta, u0, n_times, times, o.inputs, err)) != NDE_OK)
    return st;
  nde_solve_stats local;
  if (!stats) stats = &local;
  /* The quantities measured: an observer of the named columns, evaluated on the states. */
  nde_observer *obs = NULL;
  double *Z = Y;
  if (o.n_columns > 0) {
    nde_model_rhs_opts ro = nde_model_rhs_opts_default();
    ro.inputs = o.inputs;
    ro.consts = o.consts;
    if ((st = nde_model_create_observer(model, &ro, K, o.columns, &obs, err)) != NDE_OK) return st;
    if (!(Z = nde__dalloc(n_times * (size_t)n))) {
      nde_observer_destroy(&obs);
      return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    }
  }
  integ I;
  st = integ_make(&I, model, theta, 1, 0, o.inputs, o.consts, &o.solver, err);
  if (st == NDE_OK) {
    st = sim_finish(&I, obs, Z, u0, n_times, times, n, K, o.noise, o.seed, Y, noise_std, stats,
                    err);
    integ_free(&I);
  } else if (noise_std) {
    for (int j = 0; j < K; j++) noise_std[j] = 0.0;
  }
  nde_observer_destroy(&obs);
  if (Z != Y) free(Z);
  return st;
}

/* ---- simulation of many series ---- */

/* A bijection of 53-bit words (the shape of splitmix64's finaliser: xor-shifts and odd
 * multipliers, each invertible modulo 2^53). */
static uint64_t mix53(uint64_t z) {
  const uint64_t mask = (UINT64_C(1) << 53) - 1;
  z &= mask;
  z = ((z ^ (z >> 27)) * (UINT64_C(0xbf58476d1ce4e5b9) | 1)) & mask;
  z = ((z ^ (z >> 25)) * (UINT64_C(0x94d049bb133111eb) | 1)) & mask;
  return z ^ (z >> 28);
}

uint64_t nde_sim_series_seed(uint64_t seed, int k) {
  /* Two bijections of seed for a fixed k, so two base seeds below 2^53 never give series k the
   * same seed; the mixing puts the seeds of neighbouring (seed, k) pairs far apart, since
   * nde_rng_seed's streams from seeds a multiple of its increment apart overlap.  53 bits, so
   * that every derived seed is a value --seed takes. */
  const uint64_t kk = (uint64_t)(k < 0 ? 0 : k);
  return mix53(mix53(seed + UINT64_C(0x9e3779b97f4a7c15)) ^
               (kk * UINT64_C(0xd1b54a32d192ed03) + 1));
}

/* What a worker of nde_simulate_many keeps from one series to the next: a right-hand side and
 * an observer bound to the data of every binding (the distinct inputs and constants of the
 * series), a solver, a parameter vector with a block per binding (the series run writes its
 * shared part and its binding's block), and the states before observation. */
typedef struct sim_worker {
  integ I;
  nde_observer *obs;
  double *Z; /* n_times x n when columns are observed, else NULL */
} sim_worker;

/* The jobs of nde_simulate_many: series k writes its own rows of Y, noise_std and stats; a
 * failure is kept in the slot of the worker that saw it (a worker fails at most once, since the
 * pool hands it nothing after).  With workers (w), a series runs on its worker's right-hand
 * side, solver and observer with its rows bound to its binding (slot_of); without, it is
 * nde_simulate alone. */
typedef struct sim_many {
  nde_model *model;
  const nde_sim_series *series;
  size_t n_times, K;
  const double *times;
  const nde_sim_opts *o;
  double *Y, *noise_std;
  nde_solve_stats *stats;
  nde_error *werr; /* per worker */
  int *wfail;      /* per worker: the series that failed on it, or -1 */
  sim_worker *w;   /* per worker, or NULL */
  int *slot_of;    /* per series: its binding */
} sim_many;

/* Series k on worker W: the checks, solve, observation and noise of nde_simulate, in its
 * order, with nothing made for the series but its rows and parameters bound. */
static nde_status sim_series_on(const sim_many *M, sim_worker *W, int k, nde_error *err) {
  const nde_sim_series *s = &M->series[k];
  const nde_model *m = M->model;
  const size_t n_times = M->n_times, nt = nde_model_n_theta(m);
  const size_t nsp = (size_t)nde_model_n_series_params(m);
  const int n = nde_model_state_dim(m), K = (int)M->K;
  if (!s->u0)
    return nde__fail(err, NDE_ERR_ARG, "simulation needs a model, u0, times and an output");
  if (!s->theta && nt + nsp > 0)
    return nde__fail(err, NDE_ERR_ARG, "simulation needs the parameters theta");
  const nde_input_series *inputs = s->inputs ? s->inputs : M->o->inputs;
  nde_status st = sim_check_series(m, s->theta, s->u0, n_times, M->times, inputs, err);
  if (st != NDE_OK) return st;
  const int b = M->slot_of[k];
  if (nt) memcpy(W->I.theta, s->theta, nt * sizeof *W->I.theta);
  if (nsp) memcpy(W->I.theta + nt + (size_t)b * nsp, s->theta + nt, nsp * sizeof *W->I.theta);
  if (nde_rhs_set_rows(W->I.rhs, 1, &b) != NDE_OK ||
      (W->obs && nde_observer_set_rows(W->obs, 1, &b) != NDE_OK))
    return nde__fail(err, NDE_ERR_INTERNAL, "cannot bind the series' data");
  nde_solve_stats local, *stats = M->stats ? &M->stats[k] : &local;
  double *Y = M->Y + (size_t)k * n_times * M->K;
  double *noise_std = M->noise_std ? M->noise_std + (size_t)k * M->K : NULL;
  const uint64_t seed = s->own_seed ? s->seed : nde_sim_series_seed(M->o->seed, k);
  return sim_finish(&W->I, W->obs, W->obs ? W->Z : Y, s->u0, n_times, M->times, n, K,
                    M->o->noise, seed, Y, noise_std, stats, err);
}

static int sim_job(void *ctx, int worker, int k) {
  sim_many *M = ctx;
  const nde_sim_series *s = &M->series[k];
  nde_status st;
  if (M->w) {
    st = sim_series_on(M, &M->w[worker], k, &M->werr[worker]);
  } else {
    nde_sim_opts o = *M->o;
    if (s->inputs) o.inputs = s->inputs;
    if (s->consts) o.consts = s->consts;
    o.seed = s->own_seed ? s->seed : nde_sim_series_seed(M->o->seed, k);
    nde_solve_stats local;
    const size_t kk = (size_t)k;
    st = nde_simulate(M->model, s->theta, s->u0, M->n_times, M->times, &o,
                      M->Y + kk * M->n_times * M->K, M->noise_std ? M->noise_std + kk * M->K : NULL,
                      M->stats ? &M->stats[k] : &local, &M->werr[worker]);
  }
  if (st == NDE_OK) return 0;
  M->wfail[worker] = k;
  return k + 1;
}

static void sim_workers_free(sim_worker *w, int T) {
  for (int t = 0; w && t < T; t++) {
    integ_free(&w[t].I);
    nde_observer_destroy(&w[t].obs);
    free(w[t].Z);
  }
  free(w);
}

/* A series' data, for finding the series that share them. */
typedef struct sim_key {
  uintptr_t in, c;
  int k;
} sim_key;

static int cmp_key(const void *pa, const void *pb) {
  const sim_key *a = pa, *b = pb;
  if (a->in != b->in) return a->in < b->in ? -1 : 1;
  if (a->c != b->c) return a->c < b->c ? -1 : 1;
  return (a->k > b->k) - (a->k < b->k);
}

/* T workers for the series of M (M->slot_of filled): a right-hand side and an observer bound to
 * every distinct (inputs, constants) pair of the series, cloned for each worker, and a solver
 * each.  NDE_OK, or a status when something cannot be made (bad data of some series, a solver
 * the options or model refuse, no memory): the caller then runs each series alone, which
 * finds and reports the lowest series that fails as nde_simulate reports it. */
static nde_status sim_workers_make(sim_many *M, int n_series, int T) {
  nde_model *m = M->model;
  const nde_sim_opts *o = M->o;
  const int ni = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  const int n = nde_model_state_dim(m);
  sim_key *key = malloc((size_t)n_series * sizeof *key);
  nde_input_series *bin = NULL;
  double *bc = NULL;
  nde_status st = NDE_ERR_NOMEM;
  M->slot_of = malloc((size_t)n_series * sizeof *M->slot_of);
  M->w = calloc((size_t)T, sizeof *M->w);
  if (!key || !M->slot_of || !M->w) goto done;
  for (int k = 0; k < n_series; k++) {
    const nde_sim_series *s = &M->series[k];
    const nde_input_series *in = s->inputs ? s->inputs : o->inputs;
    const double *c = s->consts ? s->consts : o->consts;
    if ((ni > 0 && !in) || (ndc > 0 && !c)) {
      st = NDE_ERR_ARG;
      goto done;
    }
    key[k] = (sim_key){ni > 0 ? (uintptr_t)in : 0, ndc > 0 ? (uintptr_t)c : 0, k};
  }
  qsort(key, (size_t)n_series, sizeof *key, cmp_key);
  int B = 0;
  for (int i = 0; i < n_series; i++) {
    if (i == 0 || key[i].in != key[i - 1].in || key[i].c != key[i - 1].c) B++;
    M->slot_of[key[i].k] = B - 1;
  }
  bin = calloc((size_t)B, sizeof *bin);
  bc = nde__dalloc((size_t)B * (size_t)ndc + 1);
  if (!bin || !bc) goto done;
  for (int i = 0; i < n_series; i++) {
    const int b = M->slot_of[key[i].k];
    if (ni > 0) bin[b] = *(const nde_input_series *)key[i].in;
    if (ndc > 0)
      memcpy(bc + (size_t)b * (size_t)ndc, (const double *)key[i].c, (size_t)ndc * sizeof *bc);
  }
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.n_series = B;
  ro.inputs = ni > 0 ? bin : NULL;
  ro.consts = ndc > 0 ? bc : NULL;
  const size_t nt = nde_model_n_theta(m), nsp = (size_t)nde_model_n_series_params(m);
  for (int t = 0; t < T; t++) {
    sim_worker *W = &M->w[t];
    if (t == 0) {
      if (o->n_columns > 0 &&
          (st = nde_model_create_observer(m, &ro, (int)M->K, o->columns, &W->obs, NULL)) != NDE_OK)
        goto done;
      if ((st = nde_model_create_rhs_opts(m, &ro, &W->I.rhs, NULL)) != NDE_OK) goto done;
    } else {
      if (M->w[0].obs && (st = nde_observer_clone(M->w[0].obs, &W->obs, NULL)) != NDE_OK)
        goto done;
      if ((st = nde_rhs_clone(M->w[0].I.rhs, &W->I.rhs, NULL)) != NDE_OK) goto done;
    }
    st = NDE_ERR_NOMEM;
    W->I.theta = nde__dalloc(nt + (size_t)B * nsp + 1);
    W->I.names = calloc((size_t)n + 1, sizeof *W->I.names);
    if (W->obs) W->Z = nde__dalloc(M->n_times * (size_t)n);
    if (!W->I.theta || !W->I.names || (W->obs && !W->Z)) goto done;
    for (int j = 0; j < n; j++) W->I.names[j] = nde_model_component_name(m, j);
    nde_solver_opts so = o->solver;
    so.state_names = W->I.names;
    if ((st = nde_solver_create(W->I.rhs, &so, 1, &W->I.s, NULL)) != NDE_OK) goto done;
  }
  st = NDE_OK;
done:
  free(key);
  free(bin);
  free(bc);
  if (st != NDE_OK) {
    sim_workers_free(M->w, T);
    M->w = NULL;
  }
  return st;
}

nde_status nde_simulate_many(nde_model *model, int n_series, const nde_sim_series *series,
                             size_t n_times, const double *times, const nde_sim_opts *opts,
                             int threads, double *Y, double *noise_std, nde_solve_stats *stats,
                             int *failed, nde_error *err) {
  if (failed) *failed = -1;
  /* No series: no series array and no output either (both may be NULL, as for any empty
   * array). */
  if (!model || n_series < 0 || (n_series > 0 && (!series || !Y)) || !times)
    return nde__fail(err, NDE_ERR_ARG, "simulation of many series needs a model, n_series >= 0 "
                     "series, times and an output");
  const nde_sim_opts o = opts ? *opts : nde_sim_opts_default();
  /* What every series shares is checked once, so that its message names no series. */
  if (!(o.noise >= 0) || !isfinite(o.noise))
    return nde__fail(err, NDE_ERR_ARG, "the noise level must be >= 0 (got %g)", o.noise);
  if (o.n_columns < 0 || (o.n_columns > 0 && !o.columns))
    return nde__fail(err, NDE_ERR_ARG, "columns: expected n_columns names");
  nde_status st = check_grid(n_times ? times[0] : 0.0, n_times, times, err);
  if (st == NDE_OK) st = nde__solver_opts_check(&o.solver, err);
  if (st != NDE_OK || n_series == 0) return st;
  const int K = o.n_columns > 0 ? o.n_columns : nde_model_state_dim(model);
  const int T = nde__par_threads(threads, n_series);
  sim_many M = {model, series, n_times, (size_t)K, times, &o, Y, noise_std, stats,
                NULL, NULL, NULL, NULL};
  M.werr = calloc((size_t)T, sizeof *M.werr);
  M.wfail = malloc((size_t)T * sizeof *M.wfail);
  if (!M.werr || !M.wfail) {
    free(M.werr);
    free(M.wfail);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  for (int w = 0; w < T; w++) M.wfail[w] = -1;
  /* What a series would make alone is made once per worker and rebound per series; when it
   * cannot be (some series' data are bad), every series runs alone and reports as it does. */
  (void)sim_workers_make(&M, n_series, T);
  /* OpenBLAS on one thread whatever T (as in a fit): its threads would compete with the jobs',
   * and its sums depend on its thread count, which must not change the bits. */
  nde__blas_hold_one();
  const int rc = nde__par_run(n_series, T, sim_job, &M, NULL, NULL);
  nde__blas_release();
  if (rc > 0) {
    /* The lowest failed series (every series before it ran), whichever worker saw it. */
    if (failed) *failed = rc - 1;
    st = nde__fail(err, NDE_ERR_INTERNAL, "series %d failed", rc - 1);
    for (int w = 0; w < T; w++)
      if (M.wfail[w] == rc - 1) {
        st = M.werr[w].status != NDE_OK ? M.werr[w].status : NDE_ERR_INTERNAL;
        nde__fail(err, st, "series %d: %s", rc - 1, M.werr[w].msg);
      }
  } else if (rc != 0) {
    st = nde__fail(err, NDE_ERR_INTERNAL, "the runner of the series returned %d", rc);
  }
  sim_workers_free(M.w, T);
  free(M.slot_of);
  free(M.werr);
  free(M.wfail);
  return st;
}
