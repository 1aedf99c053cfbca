/* Internal interface of the result layer: the result object shared by the files that build,
 * save, open and use it. */
#ifndef NDE_RESULT_INTERNAL_H
#define NDE_RESULT_INTERNAL_H

#include "core/internal.h"
#include "nde/result.h"

/* One fitted series: its data group, observation times and fitted initial state. */
typedef struct nde__rseries {
  char *name;
  size_t n_obs;
  double *t;
  double *u0;
} nde__rseries;

/* A provenance entry (key and value strings, owned). */
typedef struct nde__kv {
  char *key, *value;
} nde__kv;

struct nde_result {
  nde_model *model;
  /* Settings; the strings are registry names (static) or the *_buf copies below. */
  nde_result_fit_opts settings;
  char *schedule_buf, *command_line_buf, *data_label_buf;
  size_t n_theta;
  double *noise_std;  /* n: the noise std per state (NaN unknown), or NULL when none is known */
  char *warning;      /* a sentence on the loss against the noise level, or NULL */
  double *theta;      /* kept */
  double *theta_last; /* last accepted */
  int n_series;
  nde__rseries *series;
  nde_fit_status status;
  char *message;
  nde_result_kept kept;
  double *hist;
  size_t n_hist;
  long phase_end[NDE_MAX_PHASES]; /* history length at each phase end (-1: not reached) */
  int n_phases;
  double *scores;
  long *score_iter;
  size_t n_scores;
  double seconds;
  /* The resumable training state (nde_train_get_state), when the fit can be continued. */
  double *train_state;
  size_t train_len;
  uint64_t train_words[NDE_TRAIN_STATE_WORDS];
  double *x;          /* the last accepted optimised vector (with shooting starts) */
  size_t nx;
  uint64_t data_hash; /* of the data the fit saw (resume checks it) */
  nde__kv *prov;
  int n_prov;
};

/* A new empty result owning a copy of model (recompiled from its source), with theta sized for
 * n_series series (per-series parameters).  NULL on no memory (err set). */
nde_result *nde__result_new(const nde_model *model, int n_series, nde_error *err);
/* Replace the settings by a copy of o (strings copied or canonicalised). */
nde_status nde__result_set_settings(nde_result *r, const nde_result_fit_opts *o, nde_error *err);
/* Set (replace) a provenance value; copies both strings. */
nde_status nde__result_set_prov(nde_result *r, const char *key, const char *value);
/* Replace the message. */
nde_status nde__result_set_message(nde_result *r, const char *msg);

/* nde_result_save with a testing hook: abort_midway abandons the write halfway and _exit(137)s,
 * as a kill -9 would. */
nde_status nde__result_save_ex(const nde_result *r, const char *path, int abort_midway,
                               nde_error *err);

/* Canonical (static registry) names: solver and gradient methods, cvode linear solver and CVODES
 * interpolation.  Returns NDE_ERR_ARG with a message listing the known names. */
nde_status nde__canon_settings(nde_solver_opts *so, nde_grad_opts *go, nde_error *err);

/* Properties of a solver method by name, from the solve layer's registry (0 for unknown names). */
int nde__method_adaptive(const char *method);
int nde__method_implicit(const char *method);

/* The problem's parallel work: threads of its objective, MPI ranks, and this process's rank. */
void nde__problem_parallel(const nde_problem *p, int *threads, int *ranks, int *rank);

/* FNV-1a hash of a data set's content (names, times, observations) for resume checks. */
uint64_t nde__data_hash(const nde_data *d);

/* The options the fit objective and the resume check compare, as one line of text for messages
 * ("schedule ..., solver rk4, steps 5, seed 1, loss mean"). */

#endif
