/* The result object: construction, settings, accessors and destruction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static char *dupstr(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

const char *nde_fit_status_str(nde_fit_status s) {
  switch (s) {
    case NDE_FIT_RUNNING: return "running";
    case NDE_FIT_DONE: return "done";
    case NDE_FIT_STOPPED: return "interrupted";
    case NDE_FIT_EARLY_STOP: return "early-stop";
    case NDE_FIT_DIVERGED: return "diverged";
    case NDE_FIT_FAILED: return "failed";
  }
  return "unknown";
}

nde_result *nde__result_new(const nde_model *model, int n_series, nde_error *err) {
  nde_result *r = calloc(1, sizeof *r);
  if (!r) {
    nde__fail(err, NDE_ERR_NOMEM, "out of memory creating a result");
    return NULL;
  }
  r->settings = nde_result_fit_opts_default();
  r->kept.score = r->kept.last_loss = r->kept.loss = NAN;
  r->kept.noise_loss = r->kept.noise_ratio = r->kept.validation = NAN;
  r->kept.iteration = -1;
  for (int p = 0; p < NDE_MAX_PHASES; p++) r->phase_end[p] = -1;
  const char *src = nde_model_source(model);
  nde_status st = nde_model_load_string(src, strlen(src), nde_model_filename(model), &r->model,
                                        err);
  if (st != NDE_OK) {
    nde_result_destroy(&r);
    return NULL;
  }
  r->n_theta = nde_model_n_theta_full(r->model, n_series);
  r->theta = nde__dalloc(r->n_theta);
  r->theta_last = nde__dalloc(r->n_theta);
  if (!r->theta || !r->theta_last) {
    nde__fail(err, NDE_ERR_NOMEM, "out of memory creating a result");
    nde_result_destroy(&r);
  }
  return r;
}

nde_status nde__result_set_settings(nde_result *r, const nde_result_fit_opts *o, nde_error *err) {
  nde_result_fit_opts s = *o;
  nde_status st = nde__canon_settings(&s.solver, &s.grad, err);
  if (st != NDE_OK) return st;
  char *sched = dupstr(s.schedule && *s.schedule ? s.schedule : NDE_DEFAULT_SCHEDULE);
  char *cmd = dupstr(s.command_line), *lab = dupstr(s.data_label);
  if (!sched || (s.command_line && !cmd) || (s.data_label && !lab)) {
    free(sched);
    free(cmd);
    free(lab);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory");
  }
  free(r->schedule_buf);
  free(r->command_line_buf);
  free(r->data_label_buf);
  r->schedule_buf = sched;
  r->command_line_buf = cmd;
  r->data_label_buf = lab;
  s.schedule = sched;
  s.command_line = cmd;
  s.data_label = lab;
  /* What belongs to one call only is not part of a result. */
  s.theta0 = NULL;
  s.resume = NULL;
  s.checkpoint_path = NULL;
  s.progress = NULL;
  s.progress_ctx = NULL;
  s.objective.reg_mask = NULL;
  s.objective.observer = NULL;
  s.objective.sigma = NULL;
  /* The noise std is the result's own copy (r->noise_std), set by whoever knows it. */
  s.noise_std = r->noise_std;
  r->settings = s;
  return NDE_OK;
}

nde_status nde__result_set_prov(nde_result *r, const char *key, const char *value) {
  for (int i = 0; i < r->n_prov; i++)
    if (!strcmp(r->prov[i].key, key)) {
      char *v = dupstr(value ? value : "");
      if (!v) return NDE_ERR_NOMEM;
      free(r->prov[i].value);
      r->prov[i].value = v;
      return NDE_OK;
    }
  nde__kv *p = realloc(r->prov, (size_t)(r->n_prov + 1) * sizeof *p);
  if (!p) return NDE_ERR_NOMEM;
  r->prov = p;
  char *k = dupstr(key), *v = dupstr(value ? value : "");
  if (!k || !v) {
    free(k);
    free(v);
    return NDE_ERR_NOMEM;
  }
  r->prov[r->n_prov++] = (nde__kv){k, v};
  return NDE_OK;
}

nde_status nde__rseries_set_binding(nde__rseries *se, int m_inputs, int n_consts,
                                    const nde_input_series *inp, const double *consts) {
  double *ut = NULL, *u = NULL, *c = NULL;
  const size_t n_u = m_inputs > 0 && inp ? inp->n : 0;
  if (n_u) {
    ut = nde__dalloc(n_u);
    u = nde__dalloc(n_u * (size_t)m_inputs);
    if (!ut || !u) goto nomem;
    memcpy(ut, inp->t, n_u * sizeof *ut);
    memcpy(u, inp->u, n_u * (size_t)m_inputs * sizeof *u);
  }
  if (n_consts > 0) {
    if (!(c = nde__dalloc((size_t)n_consts))) goto nomem;
    memcpy(c, consts, (size_t)n_consts * sizeof *c);
  }
  free(se->u_t);
  free(se->u);
  free(se->consts);
  se->n_u = n_u;
  se->u_t = ut;
  se->u = u;
  se->consts = c;
  return NDE_OK;
nomem:
  free(ut);
  free(u);
  free(c);
  return NDE_ERR_NOMEM;
}

nde_status nde__result_set_message(nde_result *r, const char *msg) {
  char *m = dupstr(msg ? msg : "");
  if (!m) return NDE_ERR_NOMEM;
  free(r->message);
  r->message = m;
  return NDE_OK;
}

void nde_result_destroy(nde_result **rp) {
  if (!rp || !*rp) return;
  nde_result *r = *rp;
  nde_model_destroy(&r->model);
  free(r->schedule_buf);
  free(r->command_line_buf);
  free(r->data_label_buf);
  free(r->theta);
  free(r->theta_last);
  for (int k = 0; k < r->n_series; k++) {
    free(r->series[k].name);
    free(r->series[k].t);
    free(r->series[k].u0);
    free(r->series[k].u_t);
    free(r->series[k].u);
    free(r->series[k].consts);
  }
  free(r->series);
  free(r->message);
  free(r->warning);
  free(r->noise_std);
  free(r->hist);
  free(r->scores);
  free(r->score_iter);
  free(r->train_state);
  free(r->x);
  for (int i = 0; i < r->n_prov; i++) {
    free(r->prov[i].key);
    free(r->prov[i].value);
  }
  free(r->prov);
  nde__result_free_unc(r);
  free(r);
  *rp = NULL;
}

/* The accessors answer a NULL result (a failed nde_result_fit leaves none) with nothing: 0, NULL,
 * "" or NaN, and the status NDE_FIT_FAILED. */
const nde_model *nde_result_model(const nde_result *r) { return r ? r->model : NULL; }
nde_fit_status nde_result_status(const nde_result *r) { return r ? r->status : NDE_FIT_FAILED; }
const char *nde_result_message(const nde_result *r) {
  return r && r->message ? r->message : "";
}
const char *nde_result_warning(const nde_result *r) {
  return r && r->warning ? r->warning : "";
}
size_t nde_result_n_theta(const nde_result *r) { return r ? r->n_theta : 0; }
const double *nde_result_theta(const nde_result *r) { return r ? r->theta : NULL; }
const double *nde_result_theta_last(const nde_result *r) { return r ? r->theta_last : NULL; }
nde_result_kept nde_result_get_kept(const nde_result *r) {
  if (r) return r->kept;
  return (nde_result_kept){0, 0, NAN, NAN, NAN, NAN, NAN, NAN};
}
int nde_result_n_series(const nde_result *r) { return r ? r->n_series : 0; }
const nde_result_fit_opts *nde_result_settings(const nde_result *r) {
  return r ? &r->settings : NULL;
}
long nde_result_iterations(const nde_result *r) {
  return !r ? 0 : r->n_hist ? (long)r->n_hist : r->member_iterations;
}
double nde_result_seconds(const nde_result *r) { return r ? r->seconds : NAN; }

double nde_result_param(const nde_result *r, int i) {
  return r ? nde_model_param_value(r->model, i, r->theta) : NAN;
}

double nde_result_param_series(const nde_result *r, int i, int s) {
  nde_model_param_info pi;
  if (!r || nde_model_get_param(r->model, i, &pi) != NDE_OK) return NAN;
  if (!pi.per_series) return nde_model_param_value(r->model, i, r->theta);
  if (s < 0 || s >= r->n_series) return NAN;
  return nde_model_param_value_series(r->model, i, r->theta, s);
}

nde_status nde_result_get_series(const nde_result *r, int k, nde_result_series *out) {
  if (!r || !out || k < 0 || k >= r->n_series) return NDE_ERR_ARG;
  const nde__rseries *s = &r->series[k];
  *out = (nde_result_series){s->name, s->n_obs, s->t, s->u0, s->n_u, s->u_t, s->u, s->consts};
  return NDE_OK;
}

int nde_result_find_series(const nde_result *r, const char *name) {
  for (int k = 0; r && name && k < r->n_series; k++)
    if (!strcmp(r->series[k].name, name)) return k;
  return -1;
}

double nde_result_step(const nde_result *r) {
  if (!r) return NAN;
  const nde_solver_opts *so = &r->settings.solver;
  if (nde__method_adaptive(so->method)) return 0.0;
  if (so->dt > 0) return so->dt;
  double h = INFINITY;
  const double m = so->steps_per_interval > 0 ? (double)so->steps_per_interval : 1.0;
  for (int k = 0; k < r->n_series; k++)
    for (size_t i = 0; i + 1 < r->series[k].n_obs; i++) {
      const double s = (r->series[k].t[i + 1] - r->series[k].t[i]) / m;
      if (s < h) h = s;
    }
  return isfinite(h) ? h : 0.0;
}

size_t nde_result_history(const nde_result *r, const double **loss) {
  if (loss) *loss = r ? r->hist : NULL;
  return r ? r->n_hist : 0;
}

int nde_result_phase_ends(const nde_result *r, const long **ends) {
  if (ends) *ends = r ? r->phase_end : NULL;
  return r ? r->n_phases : 0;
}

size_t nde_result_scores(const nde_result *r, const double **score, const long **iter) {
  if (score) *score = r ? r->scores : NULL;
  if (iter) *iter = r ? r->score_iter : NULL;
  return r ? r->n_scores : 0;
}

const char *nde_result_provenance(const nde_result *r, const char *key) {
  for (int i = 0; r && key && i < r->n_prov; i++)
    if (!strcmp(r->prov[i].key, key)) return r->prov[i].value;
  return NULL;
}
