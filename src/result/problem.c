/* A model bound to data: the series of a data set as the fit objective reads them, each with its
 * initial state (its first observed row, completed by the model's declared initial values), the
 * right-hand side, and the objective.  Also the default options of a fit and the sentence that
 * explains a solver's stop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unc_internal.h"
#include "train/internal.h"

struct nde_problem {
  nde_model *model;
  const nde_data *data;
  nde_rhs *rhs, *vrhs;
  nde_fit *fit;      /* the training objective */
  nde_fit *vfit;     /* the validation objective, or NULL */
  int n_series;      /* series of the data */
  int n_train, n_val;
  nde_fit_series *series; /* training series, then validation series */
  char **labels;          /* n_series: "FILE:/group" of each series, for the messages */
  double *u0s;  /* n_series x n */
  nde_input_series *inputs; /* n_series: each series' measured inputs (views into the data) */
  double *consts;           /* n_series x n_data_consts: the constants from data */
  int K;                    /* columns of the data: the n components, and the observables */
  nde_observer *obs;        /* the observation model when the data have observable columns */
  double *sigma, *vsigma;   /* known noise per column, training and validation series (or NULL) */
  unsigned char *reg_mask;
  const char **names; /* the model's component names, for the solver's messages */
  double noise_loss; /* the expected training loss of the truth under the known noise, or NaN */
  double *x;    /* scratch: theta then learned initial states */
  double *gx;
  /* Parallel work (docs/scaling.md): the threads and MPI ranks of the objectives, and OpenBLAS's
   * thread count before the problem set it to one (-1: unchanged). */
  nde_pool *pool;
  nde_comm *comm;
  int blas_held; /* holds OpenBLAS at one thread (nde__blas_hold_one) */
  nde__err err;
};

nde_result_fit_opts nde_result_fit_opts_default(void) {
  nde_result_fit_opts o;
  memset(&o, 0, sizeof o);
  o.solver = nde_solver_opts_default();
  o.solver.steps_per_interval = 5;
  o.grad = nde_grad_opts_default();
  o.grad.method = "auto";
  o.objective = nde_fit_opts_default();
  o.objective.shoot_interval = 4;
  o.schedule = NULL; /* chosen from the data: nde_default_schedule */
  o.lr = 0.01;
  o.seed = 1;
  o.max_failures = 8;
  o.checkpoint_every = 200;
  o.checkpoint_seconds = 10;
  o.phase_patience = 2;
  o.phase_tol = 1e-6;
  o.validate_tail = 0;
  o.validate_series = 0;
  o.progress_every = 100;
  return o;
}

nde_status nde__check_model_loaded(const nde_model *m, const char *what, nde_error *err) {
  const char *msg = nde_model_errmsg(m);
  if (!msg || !*msg) return NDE_OK;
  const size_t len = strcspn(msg, "\n");
  return nde__fail(err, NDE_ERR_ARG, "%s needs a model that loaded without errors (%.*s)", what,
                   (int)(len < 512 ? len : 512), msg);
}

nde_status nde_data_open_for(const char *path, const nde_model *model, nde_data **out,
                             nde_error *err) {
  if (!model || !out) return nde__fail(err, NDE_ERR_ARG, "nde_data_open_for: no model or output");
  *out = NULL;
  /* A failed load has no states: the data would be opened for no columns. */
  nde_status st0 = nde__check_model_loaded(model, "nde_data_open_for", err);
  if (st0 != NDE_OK) return st0;
  const int n0 = nde_model_state_dim(model), m = nde_model_n_inputs(model);
  const int nc = nde_model_n_consts(model), no = nde_model_n_observables(model);
  const int n = n0 + no;
  const char **names = calloc((size_t)(n + m + nc) + 1, sizeof *names);
  if (!names) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  /* Columns are state components or observables, by name. */
  for (int j = 0; j < n0; j++) names[j] = nde_model_component_name(model, j);
  for (int j = 0; j < no; j++) names[n0 + j] = nde_model_observable_name(model, j);
  nde_data_opts o = nde_data_opts_default();
  /* Every series must carry the model's inputs and its constants from data. */
  const char **in = names + n, **cn = names + n + m;
  for (int i = 0; i < m; i++) {
    nde_model_input_info ii;
    nde_model_get_input(model, i, &ii);
    in[i] = ii.name;
  }
  size_t n_dc = 0;
  for (int i = 0; i < nc; i++) {
    nde_model_const_info ci;
    nde_model_get_const(model, i, &ci);
    if (ci.from_data) cn[n_dc++] = ci.name;
  }
  o.n_inputs = (size_t)m;
  o.input_names = m ? in : NULL;
  o.n_consts = n_dc;
  o.const_names = n_dc ? cn : NULL;
  const nde_status st = nde_data_open(path, (size_t)n, names, &o, out, err);
  free(names);
  return st;
}

/* "FILE:/GROUP" ("FILE:/" for the root, "series K" for data from arrays, which have no
 * groups) for messages about a series' group. */
static const char *group_place(const nde_data *d, const nde_traj *tr, char *buf, size_t len) {
  nde_data_place(d, tr, buf, len);
  const size_t l = strlen(buf);
  const int from_file = nde_data_file(d) && nde_data_file(d)[0];
  if (l > 0 && buf[l - 1] == ':') {
    if (!from_file) buf[l - 1] = '\0';
    else if (l + 1 < len) strcpy(buf + l, "/");
  }
  return buf;
}

nde_status nde__traj_binding(const nde_model *m, const nde_data *d, const nde_traj *tr,
                             nde_input_series *inp, double *consts, nde_error *err) {
  char place[1024];
  const int mi = nde_model_n_inputs(m);
  memset(inp, 0, sizeof *inp);
  if (mi > 0) {
    for (int i = 0; i < mi; i++) {
      nde_model_input_info ii;
      nde_model_get_input(m, i, &ii);
      if ((size_t)i >= tr->n_inputs || strcmp(tr->input_names[i], ii.name) != 0)
        return nde__fail(err, NDE_ERR_DATA,
                         "%s: the series carries no measured input '%s' in the model's order "
                         "(expected /inputs/u with input_names holding the model's inputs; "
                         "open the data for the model)",
                         group_place(d, tr, place, sizeof place), ii.name);
    }
    inp->n = tr->n_u;
    inp->t = tr->u_t;
    inp->u = tr->u;
    /* The grid must cover the observations unless the input holds its end values. */
    const int late = tr->n_u > 0 && tr->u_t[0] > tr->t[0],
              early = tr->n_u > 0 && tr->u_t[tr->n_u - 1] < tr->t[tr->n - 1];
    for (int i = 0; i < mi && (late || early); i++) {
      nde_model_input_info ii;
      nde_model_get_input(m, i, &ii);
      if (ii.hold) continue;
      char a[NDE_NUM_MAX], b[NDE_NUM_MAX], c[NDE_NUM_MAX], e[NDE_NUM_MAX];
      return nde__fail(err, NDE_ERR_DATA,
                       "%s/inputs/t: the samples of the measured input '%s' span [%s, %s], "
                       "which does not cover the observations on [%s, %s] (expected samples "
                       "over them, or the input declared with hold in %s, line %d)",
                       nde_data_place(d, tr, place, sizeof place), ii.name,
                       nde_num_str(tr->u_t[0], a), nde_num_str(tr->u_t[tr->n_u - 1], b),
                       nde_num_str(tr->t[0], c), nde_num_str(tr->t[tr->n - 1], e),
                       nde_model_filename(m), ii.line);
    }
  }
  for (int i = 0; i < nde_model_n_consts(m); i++) {
    nde_model_const_info ci;
    nde_model_get_const(m, i, &ci);
    if (!ci.from_data) continue;
    size_t q = 0;
    while (q < tr->n_consts && strcmp(tr->const_names[q], ci.name) != 0) q++;
    if (q == tr->n_consts)
      return nde__fail(err, NDE_ERR_DATA,
                       "%s: the series has no constant '%s' (expected a float64 attribute %s "
                       "of its group, for 'const %s (from data)')",
                       group_place(d, tr, place, sizeof place), ci.name, ci.name, ci.name);
    consts[ci.column] = tr->consts[q];
  }
  return NDE_OK;
}

/* Whether some series measures data column j (has the column, with a value that is not NaN). */
static int column_measured(const nde_data *data, size_t j) {
  const size_t nd = nde_data_n_state(data);
  for (size_t k = 0; k < nde_data_n_traj(data); k++) {
    const nde_traj *tr = nde_data_traj(data, k);
    for (size_t i = 0; tr->col[j] >= 0 && i < tr->n; i++)
      if (!isnan(tr->y[i * nd + j])) return 1;
  }
  return 0;
}

const char *nde_default_schedule(const nde_model *model, const nde_data *data) {
  if (!model || !data) return NDE_DEFAULT_SCHEDULE;
  const size_t n = (size_t)nde_model_state_dim(model), nd = nde_data_n_state(data);
  for (size_t j = 0; j < nd; j++) {
    /* A component no series measures, or a measured observable. */
    const int measured = column_measured(data, j);
    if (j < n ? !measured : measured) return NDE_DEFAULT_SCHEDULE_PARTIAL;
  }
  return NDE_DEFAULT_SCHEDULE;
}

nde_status nde_data_series_inputs(const nde_data *data, size_t k, const nde_model *model,
                                  nde_input_series *inputs, double *consts, nde_error *err) {
  if (!data || !model || !inputs || (!consts && nde_model_n_data_consts(model) > 0))
    return nde__fail(err, NDE_ERR_ARG, "nde_data_series_inputs: invalid arguments");
  if (k >= nde_data_n_traj(data))
    return nde__fail(err, NDE_ERR_ARG,
                     "series index %zu does not exist (%zu series, indices from 0)", k,
                     nde_data_n_traj(data));
  return nde__traj_binding(model, data, nde_data_traj(data, k), inputs, consts, err);
}

static const char *find_name(const char *name, const char *const *names) {
  for (; name && *names; names++)
    if (!strcmp(*names, name)) return *names;
  return NULL;
}

static void list_names(const char *const *names, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; names[i] && k + 1 < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", names[i]);
}

int nde__method_adaptive(const char *m) {
  const nde_solver_method_info *mi = nde_solver_method_find(m);
  return mi && mi->adaptive;
}

int nde__method_implicit(const char *m) {
  const nde_solver_method_info *mi = nde_solver_method_find(m);
  return mi && mi->implicit;
}

nde_status nde__canon_settings(nde_solver_opts *so, nde_grad_opts *go, nde_error *err) {
  static const char *const linsols[] = {"band", "gmres", NULL};
  static const char *const interps[] = {"hermite", "polynomial", NULL};
  char names[256];
  const char *m = find_name(so->method, nde_solver_method_names());
  if (!m) {
    list_names(nde_solver_method_names(), names, sizeof names);
    return nde__fail(err, NDE_ERR_ARG, "unknown solver '%s' (expected one of %s)",
                     so->method ? so->method : "(none)", names);
  }
  so->method = m;
  const char *ls = find_name(so->cvode_linsol ? so->cvode_linsol : "band", linsols);
  if (!ls)
    return nde__fail(err, NDE_ERR_ARG, "unknown CVODE linear solver '%s' (expected band or gmres)",
                     so->cvode_linsol);
  so->cvode_linsol = ls;
  const char *g = find_name(go->method, nde_grad_method_names());
  if (!g) {
    list_names(nde_grad_method_names(), names, sizeof names);
    return nde__fail(err, NDE_ERR_ARG, "unknown gradient method '%s' (expected one of %s)",
                     go->method ? go->method : "(none)", names);
  }
  go->method = g;
  const char *ip = find_name(go->interp ? go->interp : "hermite", interps);
  if (!ip)
    return nde__fail(err, NDE_ERR_ARG,
                     "unknown CVODES interpolation '%s' (expected hermite or polynomial)",
                     go->interp);
  go->interp = ip;
  return NDE_OK;
}

char *nde_stop_message(const char *solver, const nde_solve_stats *s, char *buf, size_t len) {
  const int implicit = nde__method_implicit(solver), adaptive = nde__method_adaptive(solver);
  const char *hint = "";
  switch (s->reason) {
    case NDE_REASON_STIFF_SUSPECTED:
      hint = ": rerun with an implicit solver (--solver cvode-bdf)";
      break;
    case NDE_REASON_MAX_STEPS:
      hint = !adaptive ? "; raise the step budget (--max-steps) or take fewer steps "
                         "(--steps-per-interval, --dt)"
             : implicit ? "; the solution may blow up here, or raise the step budget "
                          "(--max-steps)"
                        : "; the problem may be stiff (try --solver cvode-bdf), or raise the step "
                          "budget (--max-steps)";
      break;
    case NDE_REASON_STEP_UNDERFLOW:
      hint = implicit ? "; the solution may blow up here"
                      : "; the solution may blow up here, or the problem is stiff (try --solver "
                        "cvode-bdf)";
      break;
    case NDE_REASON_NONFINITE:
    case NDE_REASON_RHS_FAILED:
    case NDE_REASON_RHS_RECOVERABLE:
      /* An explicit method with a fixed step has no stiffness test: on a stiff model (the
       * Robertson kinetics of models/robertson.nde, under the default rk4) it blows up within a
       * few steps, and "an adaptive solver" (dopri5) would only stall there. */
      hint = !adaptive && !implicit
                 ? "; the solution left the model's domain or blew up: check the parameters and "
                   "the initial state, or take smaller steps (--steps-per-interval, --dt); if the "
                   "model is stiff, use --solver cvode-bdf"
                 : "; the solution left the model's domain or blew up: check the parameters and "
                   "the initial state, or try a smaller step or an adaptive solver";
      break;
    case NDE_REASON_NEWTON_FAILED:
    case NDE_REASON_ERR_TEST_FAILED:
      /* A fixed-step method has no tolerance to tighten: only its step. */
      hint = !adaptive  ? "; take smaller steps (--steps-per-interval, --dt), or try an adaptive "
                          "implicit solver (--solver cvode-bdf)"
             : implicit ? "; try a smaller --rtol, or dopri5 if the problem is not stiff"
                        : "; try a smaller --rtol";
      break;
    case NDE_REASON_TOO_MUCH_ACCURACY:
      hint = ": raise --rtol or --atol";
      break;
    default:
      break;
  }
  /* A method that evaluates f outside its steps (yoshida4's negative drift) may fail there, at a
   * time the model was never meant to see: say so before the usual hint. */
  const nde_solver_method_info *mi = nde_solver_method_find(solver);
  char reach[256] = "";
  if (mi && (mi->eval_lo < 0 || mi->eval_hi > 1) &&
      (s->reason == NDE_REASON_NONFINITE || s->reason == NDE_REASON_RHS_FAILED ||
       s->reason == NDE_REASON_RHS_RECOVERABLE))
    snprintf(reach, sizeof reach,
             "; %s evaluates f up to %.2g steps outside each step (here from t = %.6g to %.6g): "
             "a model undefined there (sqrt(t) from t = 0, say) needs a method that stays "
             "inside its steps, such as leapfrog or rk4",
             mi->name, fmax(-mi->eval_lo, mi->eval_hi - 1), s->t_stop + mi->eval_lo * s->h_last,
             s->t_stop + mi->eval_hi * s->h_last);
  snprintf(buf, len, "solver %s stopped at t = %.6g after %ld steps (step size %.3g): %s%s%s",
           solver ? solver : "?", s->t_stop, s->n_steps, s->h_last,
           nde_stop_reason_str(s->reason), reach, hint);
  return buf;
}

void nde_problem_destroy(nde_problem **pp) {
  if (!pp || !*pp) return;
  nde_problem *p = *pp;
  nde_fit_destroy(&p->fit);
  nde_fit_destroy(&p->vfit);
  nde_rhs_destroy(&p->rhs);
  nde_rhs_destroy(&p->vrhs);
  nde_pool_destroy(&p->pool);
  nde_comm_destroy(&p->comm);
  if (p->blas_held) nde__blas_release();
  free(p->reg_mask);
  free(p->names);
  for (int k = 0; p->labels && k < p->n_series; k++) free(p->labels[k]);
  free(p->labels);
  free(p->series);
  free(p->u0s);
  free(p->inputs);
  free(p->consts);
  nde_observer_destroy(&p->obs);
  free(p->sigma);
  free(p->vsigma);
  free(p->x);
  free(p->gx);
  free(p);
  *pp = NULL;
}

const char *nde_problem_errmsg(const nde_problem *p) { return nde__err_msg(p ? &p->err : NULL); }
size_t nde_problem_n_theta(const nde_problem *p) {
  return p ? nde_model_n_theta_full(p->model, p->n_series) : 0;
}
nde_fit *nde_problem_objective(nde_problem *p) { return p ? p->fit : NULL; }
void nde__problem_parallel(const nde_problem *p, int *threads, int *ranks, int *rank) {
  *threads = nde_fit_threads(p->fit);
  *ranks = nde_comm_size(p->comm);
  *rank = nde_comm_rank(p->comm);
}
nde_fit *nde_problem_validation(nde_problem *p) { return p ? p->vfit : NULL; }
double nde_problem_noise_loss(const nde_problem *p) { return p ? p->noise_loss : NAN; }

/* For the uncertainty of a fit (unc_internal.h). */
const nde_fit_series *nde__problem_series(const nde_problem *p, int *n_train) {
  if (n_train) *n_train = p->n_train;
  return p->series;
}
nde_rhs *nde__problem_rhs(nde_problem *p) { return p->rhs; }
nde_observer *nde__problem_observer(nde_problem *p) { return p->obs; }

const double *nde_problem_u0(const nde_problem *p, int k) {
  if (!p || k < 0 || k >= p->n_series) return NULL;
  return p->u0s + (size_t)k * (size_t)nde_model_state_dim(p->model);
}

/* "FILE:/GROUP/y" (or "FILE:/y", "series K:/y" for data from arrays) for messages. */
static void y_place(const nde_data *d, const nde_traj *tr, char *buf, size_t len) {
  nde_data_place(d, tr, buf, len);
  const size_t l = strlen(buf);
  snprintf(buf + l, len - l, "/y");
}

/* The declared initial value of every component, and whether it was declared. */
static nde_status declared_initial(const nde_model *m, double *val, unsigned char *has) {
  for (int i = 0; i < nde_model_n_states(m); i++) {
    nde_model_state_info si;
    if (nde_model_get_state(m, i, &si) != NDE_OK) return NDE_ERR_INTERNAL;
    for (int c = 0; c < si.size; c++) {
      val[si.offset + c] = si.has_initial ? si.initial[c] : 0.0;
      has[si.offset + c] = (unsigned char)(si.has_initial != 0);
    }
  }
  return NDE_OK;
}

/* The rule: first observed row, completed by the declared initial values. */
static nde_status initial_states(nde_problem *p) {
  const nde_model *m = p->model;
  const int n = nde_model_state_dim(m);
  double *decl = nde__dalloc((size_t)n);
  unsigned char *has = calloc((size_t)n + 1, 1);
  nde_status st = NDE_OK;
  if (!decl || !has) {
    st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
    goto done;
  }
  if ((st = declared_initial(m, decl, has)) != NDE_OK) goto done;
  for (int k = 0; k < p->n_series; k++) {
    const nde_traj *tr = nde_data_traj(p->data, (size_t)k);
    for (int j = 0; j < n; j++) {
      const double v = tr->y[j];
      if (isnan(v) && !has[j]) {
        char place[1200];
        y_place(p->data, tr, place, sizeof place);
        st = nde__errf(&p->err, NDE_ERR_DATA,
                       "%s: state '%s' is not observed at the first time t = %g and the model "
                       "gives it no initial value (expected a value in the first row, or "
                       "'state %s = VALUE' in the model)",
                       place, nde_model_component_name(m, j), tr->t[0],
                       nde_model_component_name(m, j));
        goto done;
      }
      p->u0s[(size_t)k * (size_t)n + (size_t)j] = isnan(v) ? decl[j] : v;
    }
  }
done:
  free(decl);
  free(has);
  return st;
}

nde_status nde_problem_create(nde_model *model, const nde_data *data,
                              const nde_result_fit_opts *opts, nde_problem **out,
                              nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_problem_create: no output pointer");
  *out = NULL;
  if (!model || !data)
    return nde__fail(err, NDE_ERR_ARG, "a problem needs a model and data");
  nde_status st_m = nde__check_model_loaded(model, "a problem", err);
  if (st_m != NDE_OK) return st_m;
  nde_result_fit_opts o = opts ? *opts : nde_result_fit_opts_default();
  nde_status st = nde__canon_settings(&o.solver, &o.grad, err);
  if (st != NDE_OK) return st;
  const size_t n_traj = nde_data_n_traj(data);
  const int n = nde_model_state_dim(model);
  if (n_traj < 1 || n_traj > (size_t)NDE_FIT_MAX_SERIES)
    return nde__fail(err, NDE_ERR_DATA, "%s: %zu series (expected 1 to %d)",
                     nde_data_file(data) ? nde_data_file(data) : "data", n_traj,
                     NDE_FIT_MAX_SERIES);
  /* The data's columns: the components, then (nde_data_open_for) every observable. */
  const int n_obs_q = nde_model_n_observables(model);
  const size_t nd = nde_data_n_state(data);
  if (nd != (size_t)n && nd != (size_t)(n + n_obs_q))
    return nde__fail(err, NDE_ERR_ARG,
                     "the data were opened for %zu columns, the model has %d state components "
                     "and %d observables (open the data with nde_data_open_for)",
                     nd, n, n_obs_q);
  for (int j = 0; j < (int)nd; j++)
    if (strcmp(nde_data_state_name(data, (size_t)j),
               j < n ? nde_model_component_name(model, j)
                     : nde_model_observable_name(model, j - n)) != 0)
      return nde__fail(err, NDE_ERR_ARG,
                       "the data's column %d is '%s', not the model's (open the data with "
                       "nde_data_open_for)", j + 1, nde_data_state_name(data, (size_t)j));
  nde_problem *p = calloc(1, sizeof *p);
  if (!p) return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  p->blas_held = 0;
  p->model = model;
  p->data = data;
  p->K = (int)nd;
  p->n_series = (int)n_traj;
  p->series = calloc(n_traj, sizeof *p->series);
  p->u0s = nde__dalloc(n_traj * (size_t)n);
  const int n_dc = nde_model_n_data_consts(model);
  p->inputs = calloc(n_traj, sizeof *p->inputs);
  p->consts = nde__dalloc(n_traj * (size_t)n_dc + 1);
  const size_t nx = nde_model_n_theta_full(model, (int)n_traj) + n_traj * (size_t)n;
  p->x = nde__dalloc(nx);
  p->gx = nde__dalloc(nx);
  if (!p->series || !p->u0s || !p->inputs || !p->consts || !p->x || !p->gx) {
    st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
    goto fail;
  }
  if (o.noise_std) {
    const int nc = n + nde_model_n_observables(model);
    for (int j = 0; j < nc; j++)
      if (!isnan(o.noise_std[j]) && !(o.noise_std[j] > 0 && isfinite(o.noise_std[j]))) {
        st = nde__errf(&p->err, NDE_ERR_ARG,
                       "the noise std of %s '%s' is %g (expected a finite value > 0, or NaN "
                       "for unknown)",
                       j < n ? "state" : "observable",
                       j < n ? nde_model_component_name(model, j)
                             : nde_model_observable_name(model, j - n),
                       o.noise_std[j]);
        goto fail;
      }
  }
  if (o.validate_tail >= 0 && o.validate_tail < 1 && o.validate_series > 0 &&
      o.validate_series >= p->n_series && !(o.validate_tail > 0)) {
    /* The one a user meets (--validate series:K on data of K series or fewer): said plainly. */
    st = nde__errf(&p->err, NDE_ERR_ARG,
                   "validation: %d held-out series leave none of the data's %d series to train "
                   "on (expected at most %d)",
                   o.validate_series, p->n_series, p->n_series - 1);
    goto fail;
  }
  if (!(o.validate_tail >= 0 && o.validate_tail < 1) || o.validate_series < 0 ||
      (o.validate_tail > 0 && o.validate_series > 0) || o.validate_series >= p->n_series) {
    st = nde__errf(&p->err, NDE_ERR_ARG,
                   "validation: expected a trailing fraction in [0, 1) or a number of held-out "
                   "series below the %d series, not both (got tail %g, series %d)",
                   p->n_series, o.validate_tail, o.validate_series);
    goto fail;
  }
  /* Training series first; the last validate_series series are the validation series, or with
   * validate_tail every series is validated on its trailing observations. */
  p->n_train = p->n_series - o.validate_series;
  p->n_val = o.validate_series > 0 ? o.validate_series : o.validate_tail > 0 ? p->n_series : 0;
  free(p->series);
  p->series = calloc((size_t)(p->n_train + p->n_val) + 1, sizeof *p->series);
  for (int k = 0; p->labels && k < p->n_series; k++) free(p->labels[k]);
  free(p->labels);
  p->labels = calloc((size_t)p->n_series, sizeof *p->labels);
  if (!p->series || !p->labels) {
    st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
    goto fail;
  }
  nde_error sub;
  for (int k = 0; k < p->n_series; k++) {
    const nde_traj *tr = nde_data_traj(data, (size_t)k);
    char place[1200];
    y_place(data, tr, place, sizeof place);
    if (tr->n < 2) {
      st = nde__errf(&p->err, NDE_ERR_DATA,
                     "%.*s/t: a series needs at least 2 observation times (got %zu)",
                     (int)(strlen(place) - 2), place, tr->n);
      goto fail;
    }
    if (o.objective.log_space)
      for (size_t q = 0; q < tr->n * (size_t)p->K; q++)
        if (tr->y[q] <= 0) {
          const int j = (int)(q % (size_t)p->K);
          st = nde__errf(&p->err, NDE_ERR_DATA,
                         "%s: value %g of %s '%s' at row %zu (t = %g) is not positive "
                         "(expected positive data for a log-space loss)",
                         place, tr->y[q], j < n ? "state" : "observable",
                         nde_data_state_name(data, (size_t)j),
                         q / (size_t)p->K, tr->t[q / (size_t)p->K]);
          goto fail;
        }
    if ((st = nde__traj_binding(model, data, tr, &p->inputs[k], p->consts + (size_t)k * (size_t)n_dc,
                                &sub)) != NDE_OK) {
      nde__errf(&p->err, st, "%s", sub.msg);
      goto fail;
    }
    double *u0 = p->u0s + (size_t)k * (size_t)n;
    /* The series in the objective's messages: FILE:/GROUP, FILE for a root, series K. */
    char where[1200];
    size_t llen = strlen(nde_data_place(data, tr, where, sizeof where));
    if (llen > 0 && where[llen - 1] == ':') where[--llen] = '\0';
    p->labels[k] = malloc(llen + 1);
    if (!p->labels[k]) {
      st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
      goto fail;
    }
    memcpy(p->labels[k], where, llen + 1);
    const nde_fit_series whole = {(int)tr->n, tr->t, tr->y, u0, 0, k};
    if (o.validate_tail > 0) {
      /* The first m observations train; every later one validates (integrated from t[0]). */
      const int m = (int)tr->n - (int)ceil(o.validate_tail * (double)(tr->n - 1));
      if (m < 2 || m >= (int)tr->n) {
        st = nde__errf(&p->err, NDE_ERR_DATA,
                       "%.*s/t: %zu times cannot be split into a training part (at least 2) and "
                       "a trailing validation part (fraction %g)",
                       (int)(strlen(place) - 2), place, tr->n, o.validate_tail);
        goto fail;
      }
      p->series[k] = whole;
      p->series[k].n_obs = m;
      p->series[p->n_train + k] = whole;
      p->series[p->n_train + k].loss_from = m;
    } else if (k < p->n_train) {
      p->series[k] = whole;
    } else {
      p->series[k] = whole; /* a held-out series: validation only */
    }
  }
  if ((st = initial_states(p)) != NDE_OK) goto fail;
  /* The networks' parameters are what regularisation shrinks. */
  p->reg_mask = calloc(nde_model_n_theta_full(model, p->n_series) + 1, 1);
  if (!p->reg_mask) {
    st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int i = 0; i < nde_model_n_layout(model); i++) {
    nde_model_layout_entry e;
    if (nde_model_get_layout(model, i, &e) == NDE_OK && e.kind == NDE_LAYOUT_NET)
      memset(p->reg_mask + e.offset, 1, e.length);
  }
  o.objective.reg_mask = p->reg_mask;
  p->names = calloc((size_t)n + 1, sizeof *p->names);
  if (!p->names) {
    st = nde__errf(&p->err, NDE_ERR_NOMEM, "out of memory");
    goto fail;
  }
  for (int j = 0; j < n; j++) p->names[j] = nde_model_component_name(model, j);
  o.solver.state_names = p->names;
  if (o.validate_series > 0 && nde_model_n_series_params(model) > 0) {
    st = nde__errf(&p->err, NDE_ERR_ARG,
                   "held-out series have no fitted values of the per-series parameters: validate "
                   "on the trailing part of every series instead (tail:F)");
    goto fail;
  }
  nde_model_rhs_opts ro = nde_model_rhs_opts_default();
  ro.n_series = p->n_series;
  ro.inputs = p->inputs;
  ro.consts = p->consts;
  /* Pieces that share a grid are solved as batches of up to batch_rows rows. */
  ro.max_batch = o.objective.batch_rows > 0 ? o.objective.batch_rows : NDE_FIT_BATCH_ROWS;
  st = nde_model_create_rhs_opts(model, &ro, &p->rhs, &sub);
  /* Observable columns: the loss compares the observation model's quantities (every column's,
   * the components by identity).  Known noise per column: the series' sigma. */
  if (st == NDE_OK && p->K > n) {
    const char **qn = calloc((size_t)p->K, sizeof *qn);
    if (!qn) st = nde__fail(&sub, NDE_ERR_NOMEM, "out of memory");
    for (int j = 0; qn && j < p->K; j++) {
      qn[j] = nde_data_state_name(data, (size_t)j);
      /* An observable no series measures is never compared: its column stands for the first
       * state component instead, so that one undefined along the trajectories (the square root
       * of a value that goes negative) does not make every loss and gradient NaN. */
      if (j >= n && !column_measured(data, (size_t)j)) qn[j] = nde_model_component_name(model, 0);
    }
    if (st == NDE_OK) st = nde_model_create_observer(model, &ro, p->K, qn, &p->obs, &sub);
    free(qn);
    o.objective.observer = p->obs;
  }
  int any_sigma = 0;
  for (int k = 0; k < p->n_series; k++) any_sigma |= nde_data_traj(data, (size_t)k)->sigma != NULL;
  if (st == NDE_OK && any_sigma) {
    const int nv = p->n_val, nt = p->n_train;
    p->sigma = nde__dalloc((size_t)nt * (size_t)p->K);
    p->vsigma = nde__dalloc((size_t)(nv ? nv : 1) * (size_t)p->K);
    if (!p->sigma || !p->vsigma) st = nde__fail(&sub, NDE_ERR_NOMEM, "out of memory");
    for (int q = 0; st == NDE_OK && q < nt + nv; q++) {
      const nde_traj *tr = nde_data_traj(data, (size_t)p->series[q].id);
      double *dst = q < nt ? p->sigma + (size_t)q * (size_t)p->K
                           : p->vsigma + (size_t)(q - nt) * (size_t)p->K;
      for (int j = 0; j < p->K; j++) dst[j] = tr->sigma ? tr->sigma[j] : NAN;
    }
    o.objective.sigma = p->sigma;
  }
  o.objective.series_names = (const char *const *)p->labels;
  /* batch_segments (objective.autonomous): pieces with the same times relative to their start
   * (the shooting segments and windows of a series on a uniform grid) are one batch, which is
   * right only when nothing in the model reads t.  Not the default: it changes the rounding of
   * the fit, and with it which minimum a fit finds (docs/scaling.md). */
  if (st == NDE_OK && o.objective.autonomous && !nde_model_is_autonomous(model)) {
    st = nde__errf(&p->err, NDE_ERR_ARG,
                   "batch_segments (--batch-segments): the segments of a series can be solved "
                   "as one batch only when the model reads neither t nor a measured input, and "
                   "%s",
                   nde_model_n_inputs(model) > 0 ? "this one has a measured input"
                                                 : "this one reads t");
    goto fail;
  }
  if (st == NDE_OK)
    st = nde_fit_create(p->rhs, &o.solver, &o.grad, p->n_train, p->series, &o.objective, &p->fit,
                        &sub);
  if (st == NDE_OK && p->n_val > 0) {
    /* The validation objective: the trajectory loss on the held-out observations, without
     * regularisation; it reads theta and (tail validation) the learned initial states of the
     * same series. */
    nde_fit_opts vo = o.objective;
    vo.reg_mask = NULL;
    vo.shoot_interval = 0;
    vo.batch_series = vo.batch_time = 0;
    if (o.validate_series > 0) vo.learn_u0 = 0;
    vo.sigma = p->vsigma;
    /* Validation series k is data series n_train + k (held-out series) or k (tails). */
    vo.series_names = (const char *const *)p->labels + (o.validate_series > 0 ? p->n_train : 0);
    st = nde_model_create_rhs_opts(model, &ro, &p->vrhs, &sub);
    if (st == NDE_OK)
      st = nde_fit_create(p->vrhs, &o.solver, &o.grad, p->n_val, p->series + p->n_train, &vo,
                          &p->vfit, &sub);
  }
  /* The ranks of an MPI launch (nde built with MPI), and threads: the cores available shared
   * among the ranks on this machine unless o.threads says how many.  OpenBLAS then runs one
   * thread, so that the two do not compete for the cores. */
  if (st == NDE_OK) st = nde_comm_create(NDE_COMM_AUTO, &p->comm, &sub);
  if (st == NDE_OK && o.threads < 0) {
    st = NDE_ERR_ARG;
    nde__fail(&sub, st, "threads must be >= 0 (0: the cores available), got %d", o.threads);
  }
  /* A fit inside a job of an outer run (an ensemble member, a profile point) takes that job's
   * thread: the outer run already uses the cores. */
  if (st == NDE_OK)
    st = nde_pool_create(o.threads > 0       ? o.threads
                         : nde__par_in_job() ? 1
                                             : nde_comm_default_threads(p->comm),
                         &p->pool, &sub);
  if (st == NDE_OK && (st = nde_fit_set_parallel(p->fit, p->pool, p->comm)) != NDE_OK)
    nde__fail(&sub, st, "%s", nde_fit_errmsg(p->fit));
  if (st == NDE_OK && p->vfit && (st = nde_fit_set_parallel(p->vfit, p->pool, p->comm)) != NDE_OK)
    nde__fail(&sub, st, "%s", nde_fit_errmsg(p->vfit));
  /* OpenBLAS runs one thread whatever the fit's own count: its threads would compete with
   * nde's (and with other ranks') for the cores, and split dgemm's sums differently, so that
   * the bits of a fit would depend on OPENBLAS_NUM_THREADS. */
  if (st == NDE_OK) {
    nde__blas_hold_one();
    p->blas_held = 1;
  }
  if (st != NDE_OK) {
    nde__errf(&p->err, st, "%s", sub.msg);
    goto fail;
  }
  /* The loss the truth would have under the known noise (when every observed state's noise is
   * known), for "how far from the noise level". */
  p->noise_loss = NAN;
  if (!o.objective.log_space) {
    double acc = 0;
    long cnt = 0;
    int known = 1;
    const double *w = nde_fit_weights(p->fit);
    for (int k = 0; k < p->n_train && known; k++) {
      const nde_traj *tr = nde_data_traj(data, (size_t)k);
      const nde_fit_series *se = &p->series[k];
      for (int q = 0; q < se->n_obs && known; q++)
        for (int j = 0; j < p->K; j++) {
          if (isnan(se->obs[(size_t)q * (size_t)p->K + (size_t)j])) continue;
          /* The noise of the column: given, recorded, or its known sigma, which also weighs it. */
          const double sg = tr->sigma ? tr->sigma[j] : NAN;
          double sd = o.noise_std ? o.noise_std[j] : tr->noise_std ? tr->noise_std[j] : NAN;
          if (!isfinite(sd)) sd = sg;
          /* A state's value at the first time is the start of the trajectory, not a residual,
           * unless the start is learned: it adds nothing to the loss, so its noise need not be
           * known (a column that gives only a known start, S0 beside a measured I). */
          if (!isfinite(sd) && q == 0 && j < n && !o.objective.learn_u0) {
            cnt++;
            continue;
          }
          if (!isfinite(sd)) {
            known = 0;
            break;
          }
          acc += (sg > 0 ? 1.0 / (sg * sg) : w[j]) * sd * sd;
          cnt++;
        }
    }
    if (known && cnt) p->noise_loss = o.objective.loss_sum ? acc : acc / (double)cnt;
  }
  *out = p;
  return NDE_OK;
fail:
  nde__err_export(&p->err, err);
  nde_problem_destroy(&p);
  return st;
}

nde_status nde_problem_loss(nde_problem *p, const double *theta, double *L, double *g,
                            nde_fit_info *info) {
  if (!p || !theta || !L) return NDE_ERR_ARG;
  /* A non-finite entry is bad input, not a solve that stopped: named, and nothing evaluated. */
  nde_error e;
  nde_status st = nde__check_theta(p->model, p->n_series, theta, &e);
  if (st != NDE_OK) return nde__errf(&p->err, st, "%s", e.msg);
  const size_t nt = nde_problem_n_theta(p), nx = nde_fit_n_x(p->fit, 0);
  memcpy(p->x, theta, nt * sizeof *p->x);
  /* Learned initial states sit after theta: here they are the series' own. */
  if (nx > nt) memcpy(p->x + nt, p->u0s, (nx - nt) * sizeof *p->x);
  st = nde_fit_eval(p->fit, p->x, 0, NULL, L, g ? p->gx : NULL, info);
  if (st != NDE_OK) return nde__errf(&p->err, st, "%s", nde_fit_errmsg(p->fit));
  if (g) memcpy(g, p->gx, nt * sizeof *g);
  return NDE_OK;
}
