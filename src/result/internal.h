/* Internal interface of the result layer: the result object shared by the files that build,
 * save, open and use it. */
#ifndef NDE_RESULT_INTERNAL_H
#define NDE_RESULT_INTERNAL_H

#include "core/internal.h"
#include "nde/result.h"

/* The columns a result's data can have, in the model's order: its state components, then its
 * observables (nde_data_open_for). */
static inline int nde__n_columns(const nde_model *m) {
  return nde_model_state_dim(m) + nde_model_n_observables(m);
}

/* One fitted series: its data group, observation times, fitted initial state, and the measured
 * inputs (n_u samples, u n_u x n_inputs) and constants from data that drove it. */
typedef struct nde__rseries {
  char *name;
  size_t n_obs;
  double *t;
  double *u0;
  size_t n_u;
  double *u_t, *u;
  double *consts;
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
  long member_iterations; /* a member made into a result (no history of its own): its iterations */
  double *noise_std;  /* nde__n_columns: the noise std per state, then per observable (NaN
                       * unknown), or NULL when none is known */
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
  /* How sure the fit is (src/result/uncertainty.c, ensemble.c; unc_internal.h): standard errors
   * and profiles, and the members of an ensemble; NULL when absent. */
  struct nde__unc *unc;
  struct nde__ens *ens;
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

/* NDE_OK for a model that loaded without errors; for the handle of a failed load (which has no
 * states, so that everything after would fail with a message about sizes) NDE_ERR_ARG saying
 * that `what` needs a model that loaded, with the load's first message. */
nde_status nde__check_model_loaded(const nde_model *m, const char *what, nde_error *err);

/* What a backward solve of --grad backsolve that stops is most often about (nde fit's outcome;
 * nde grad, src/cli/cmd_grad.c, says the same words). */
#define NDE__BACKSOLVE_HINT                                                                      \
  "--grad backsolve recomputes the state by integrating it backward in time, which is unstable " \
  "for a stiff or strongly damped model: use --grad auto"

/* Properties of a solver method by name, from the solve layer's registry (0 for unknown names). */
int nde__method_adaptive(const char *method);
int nde__method_implicit(const char *method);

/* The measured inputs and constants from data of series tr of d, in the model's order: inp
 * views the series' arrays (n = 0 for a model without inputs); consts gets
 * nde_model_n_data_consts values.  NDE_ERR_DATA naming the series when it lacks an input or a
 * constant the model declares (data not opened for the model: nde_data_open_for). */
nde_status nde__traj_binding(const nde_model *m, const nde_data *d, const nde_traj *tr,
                             nde_input_series *inp, double *consts, nde_error *err);
/* Copy a binding into a fitted series (replacing what it held).  NDE_ERR_NOMEM. */
/* NDE_ERR_ARG naming series index k when r has no such series. */
nde_status nde__check_series_index(const nde_result *r, int k, nde_error *err);
/* What drives a trajectory of r started at start: its inputs and constants, or those of the
 * fitted series start->series (*own holds them; checked as nde__check_series_index). */
nde_status nde__start_binding(const nde_result *r, const nde_start *start, nde_input_series *own,
                              const nde_input_series **inputs, const double **consts,
                              nde_error *err);
/* NDE_ERR_ARG naming the first entry of theta (nde_model_n_theta_full(m, n_series) values) that
 * is not finite: a parameter, a net's weight or a series' own parameter. */
nde_status nde__check_theta(const nde_model *m, int n_series, const double *theta,
                            nde_error *err);
/* Make solver s stop at the jumps of rhs's step inputs inside [t0, t1] (for the rows rhs is
 * bound to; none clears them). */
nde_status nde__stop_at_input_jumps(nde_solver *s, const nde_rhs *rhs, double t0, double t1,
                                    nde_error *err);
nde_status nde__rseries_set_binding(nde__rseries *se, int m_inputs, int n_consts,
                                    const nde_input_series *inp, const double *consts);
/* The problem's parallel work: threads of its objective, MPI ranks, and this process's rank. */
void nde__problem_parallel(const nde_problem *p, int *threads, int *ranks, int *rank);

/* FNV-1a hash of a data set's content (names, times, observations) for resume checks. */
uint64_t nde__data_hash(const nde_data *d);

/* The uncertainty and ensemble groups of the result file, and their release (schema_unc.c):
 * called once each by the writer and the reader of schema.c and by nde_result_destroy. */
nde_status nde__result_write_unc(nde_writer *w, const nde_result *r);
nde_status nde__result_read_unc(nde_reader *h, const char *file, nde_result *r, nde_error *err);
void nde__result_free_unc(nde_result *r);

/* The options the fit objective and the resume check compare, as one line of text for messages
 * ("schedule ..., solver rk4, steps 5, seed 1, loss mean"). */

#endif
