"""Generate the C source of nde's Python extension (cffi, API mode).

Run by the build (python/nde/meson.build) as

    python3 build_ffi.py OUT.c

The declarations below are the part of libnde's public API that the package calls.  In API mode
the C compiler checks them against the real headers (<nde/nde.h>): a signature, a struct field or
an enum value that drifts from include/nde/ breaks the build instead of corrupting memory at run
time.  Structs end in "...;" so that fields added to the headers later need no change here, and
enums end in "..." so that their values come from the headers.  The C at the end (set_source) is
glue only: destructors for ffi.gc and the progress trampoline that the fit calls every iteration
and that calls Python a few times per second.
"""
import sys

import cffi

CDEF = r"""
/* ---- core ---- */
typedef enum {
  NDE_OK, NDE_ERR_ARG, NDE_ERR_NOMEM, NDE_ERR_LIMIT, NDE_ERR_PARSE, NDE_ERR_MODEL, NDE_ERR_DATA,
  NDE_ERR_IO, NDE_ERR_CALLBACK, NDE_ERR_NUMERIC, NDE_ERR_UNSUPPORTED, NDE_ERR_INTERNAL, ...
} nde_status;
#define NDE_ERROR_MSG_MAX ...
typedef struct nde_error { nde_status status; char msg[...]; ...; } nde_error;
const char *nde_status_str(nde_status s);
const char *nde_version(void);
void nde_free(void *p);
#define NDE_NUM_MAX ...
#define NDE_POOL_MAX_THREADS ...
char *nde_num_str(double x, char *buf);
#define NDE_VERSION_MAJOR ...
#define NDE_VERSION_MINOR ...
#define NDE_VERSION_PATCH ...

/* ---- model ---- */
typedef struct nde_model nde_model;
typedef struct nde_net nde_net;
typedef enum { NDE_INIT_GLOROT_UNIFORM, NDE_INIT_GLOROT_NORMAL, NDE_INIT_HE, NDE_INIT_NORMAL, ... }
  nde_init;
typedef enum { NDE_TRANSFORM_NONE, NDE_TRANSFORM_LOG, NDE_TRANSFORM_LOGIT, ... }
  nde_param_transform;
typedef enum { NDE_LAYOUT_PARAM, NDE_LAYOUT_NET, ... } nde_layout_kind;
typedef enum { NDE_FORMAT_TEXT, NDE_FORMAT_LATEX, ... } nde_format;

nde_status nde_model_load_string(const char *src, size_t len, const char *filename,
                                 nde_model **out, nde_error *err);
nde_status nde_model_load_file(const char *path, nde_model **out, nde_error *err);
const char *nde_model_errmsg(const nde_model *model);
typedef struct nde_model_diag {
  int is_note; int line, col; const char *message; const char *source_line; ...;
} nde_model_diag;
int nde_model_n_diags(const nde_model *model);
nde_status nde_model_get_diag(const nde_model *model, int i, nde_model_diag *out);
const char *nde_model_filename(const nde_model *model);
const char *nde_model_source(const nde_model *model);
int nde_model_n_states(const nde_model *model);
int nde_model_state_dim(const nde_model *model);
typedef struct nde_model_state_info {
  const char *name; int size; int is_vector; int offset; int has_initial; const double *initial;
  ...;
} nde_model_state_info;
nde_status nde_model_get_state(const nde_model *model, int i, nde_model_state_info *out);
const char *nde_model_component_name(const nde_model *model, int j);
int nde_model_find_component(const nde_model *model, const char *name);
int nde_model_initial_state(const nde_model *model, double *u0);
typedef struct nde_model_param_info {
  const char *name; double value; int learnable; int positive; int bounded; double lo, hi;
  nde_param_transform transform; size_t offset; int line; int per_series; ...;
} nde_model_param_info;
int nde_model_n_params(const nde_model *model);
nde_status nde_model_get_param(const nde_model *model, int i, nde_model_param_info *out);
int nde_model_find_param(const nde_model *model, const char *name);
double nde_model_param_value(const nde_model *model, int i, const double *theta);
nde_status nde_model_set_param(const nde_model *model, int i, double value, double *theta);
int nde_model_n_series_params(const nde_model *model);
size_t nde_model_n_theta_full(const nde_model *model, int n_series);
double nde_model_param_value_series(const nde_model *model, int i, const double *theta, int s);
nde_status nde_model_set_param_series(const nde_model *model, int i, int s, double value,
                                      double *theta);
typedef struct nde_model_net_info {
  const char *name; const nde_net *net; size_t offset; size_t n_params; nde_init init;
  double init_sigma; ...;
} nde_model_net_info;
int nde_model_n_nets(const nde_model *model);
nde_status nde_model_get_net(const nde_model *model, int i, nde_model_net_info *out);
size_t nde_model_n_theta(const nde_model *model);
typedef struct nde_model_layout_entry {
  const char *name; nde_layout_kind kind; size_t offset, length; nde_param_transform transform;
  int index; ...;
} nde_model_layout_entry;
int nde_model_n_layout(const nde_model *model);
nde_status nde_model_get_layout(const nde_model *model, int i, nde_model_layout_entry *out);
nde_status nde_model_init_theta(const nde_model *model, uint64_t seed, double *theta);
nde_status nde_model_init_theta_full(const nde_model *model, uint64_t seed, int n_series,
                                     double *theta);
typedef enum { NDE_INTERP_LINEAR, NDE_INTERP_CUBIC, NDE_INTERP_STEP, ... } nde_interp;
typedef struct nde_model_input_info {
  const char *name; nde_interp interp; int hold; int line; ...;
} nde_model_input_info;
int nde_model_n_inputs(const nde_model *model);
nde_status nde_model_get_input(const nde_model *model, int i, nde_model_input_info *out);
int nde_model_find_input(const nde_model *model, const char *name);
typedef struct nde_model_const_info {
  const char *name; int from_data; double value; int column; int line; ...;
} nde_model_const_info;
int nde_model_n_consts(const nde_model *model);
int nde_model_n_data_consts(const nde_model *model);
nde_status nde_model_get_const(const nde_model *model, int i, nde_model_const_info *out);
int nde_model_find_const(const nde_model *model, const char *name);
int nde_model_n_observables(const nde_model *model);
const char *nde_model_observable_name(const nde_model *model, int i);
typedef struct nde_input_series { size_t n; const double *t; const double *u; ...; }
  nde_input_series;
nde_status nde_model_export_c(const nde_model *model, const double *theta, const char *prefix,
                              char **text);
nde_status nde_model_format_equations(const nde_model *model, const double *theta,
                                      nde_format format, int substitute, char **text);

/* ---- solve, grad ---- */
typedef struct nde_solver_opts {
  const char *method; double dt; int steps_per_interval; long max_steps; double dt_snap;
  double rtol; double atol; double h0; double h_min; double h_max; int fixed_step;
  const char *cvode_linsol; int cvode_max_order; ...;
} nde_solver_opts;
nde_solver_opts nde_solver_opts_default(void);
const char *const *nde_solver_method_names(void);
typedef struct nde_solver_method_info { const char *name; int adaptive; ...; } nde_solver_method_info;
const nde_solver_method_info *nde_solver_method_find(const char *name);
typedef enum {
  NDE_REASON_NONE, NDE_REASON_NONFINITE, NDE_REASON_RHS_RECOVERABLE, NDE_REASON_MAX_STEPS,
  NDE_REASON_STEP_UNDERFLOW, NDE_REASON_RHS_FAILED, NDE_REASON_STIFF_SUSPECTED,
  NDE_REASON_NEWTON_FAILED, NDE_REASON_ERR_TEST_FAILED, ...
} nde_stop_reason;
const char *nde_stop_reason_str(nde_stop_reason r);
typedef struct nde_solve_stats {
  nde_stop_reason reason; double t_stop; double h_last; int bad_row; int bad_state;
  long n_steps; long n_rhs; long n_rejected; long n_jvp; ...;
} nde_solve_stats;
typedef struct nde_grad_opts {
  const char *method; int recompute; double rtol, atol; int seminorm; long checkpoint_steps;
  const char *interp; int auto_forward_max_params; ...;
} nde_grad_opts;
nde_grad_opts nde_grad_opts_default(void);
const char *const *nde_grad_method_names(void);

/* ---- train ---- */
typedef struct nde_fit nde_fit;
typedef struct nde_fit_opts {
  int loss_sum; int scale_by_std; int log_space; int learn_u0; int shoot_interval;
  double shoot_weight; int batch_series; int batch_time; int batch_windows; int scale_states;
  double l2; double l1; int autonomous; ...;
} nde_fit_opts;
typedef struct nde_fit_info {
  nde_solve_stats stop; double data_loss; double penalty; long n_solves; ...;
} nde_fit_info;
typedef struct nde_train_progress {
  int phase; int shooting; long iter; long total_iter; long total_iters; double loss;
  double grad_norm; double lr; double score; const char *event; ...;
} nde_train_progress;

/* ---- data ---- */
typedef struct nde_data nde_data;
typedef struct nde_data_opts {
  size_t max_bytes; size_t n_inputs; const char *const *input_names; size_t n_consts;
  const char *const *const_names; ...;
} nde_data_opts;
nde_data_opts nde_data_opts_default(void);
typedef struct nde_traj {
  const char *name; size_t n; const double *t; const double *y; const int *col; size_t n_cols;
  size_t n_obs; size_t n_nan; const double *noise_std; const double *sigma; size_t n_inputs;
  const char *const *input_names; size_t n_u; const double *u_t; const double *u;
  size_t n_consts; const char *const *const_names; const double *consts; ...;
} nde_traj;
nde_status nde_data_open(const char *path, size_t n_state, const char *const *state_names,
                         const nde_data_opts *opts, nde_data **out, nde_error *err);
const char *nde_data_file(const nde_data *data);
size_t nde_data_n_traj(const nde_data *data);
const nde_traj *nde_data_traj(const nde_data *data, size_t k);
size_t nde_data_n_state(const nde_data *data);
const char *nde_data_state_name(const nde_data *data, size_t j);
size_t nde_data_n_obs(const nde_data *data);
size_t nde_data_n_nan(const nde_data *data);
typedef struct nde_writer nde_writer;
nde_status nde_writer_create(const char *path, nde_writer **out, nde_error *err);
void nde_writer_destroy(nde_writer **w);
const char *nde_writer_errmsg(const nde_writer *w);
typedef struct nde_series {
  size_t n; size_t d; const double *t; const double *y; const char *const *names;
  const double *noise_std; ...;
} nde_series;
typedef struct nde_series_extra {
  const double *sigma; size_t m; size_t n_u; const double *u_t; const double *u;
  const char *const *input_names; size_t n_consts; const char *const *const_names;
  const double *consts; const char *name; ...;
} nde_series_extra;
nde_status nde_data_from_series(size_t n_state, const char *const *state_names,
                                size_t n_series, const nde_series *series,
                                const nde_series_extra *extra, const nde_data_opts *opts,
                                nde_data **out, nde_error *err);
nde_status nde_writer_put_series_ex(nde_writer *w, const char *group, const nde_series *s,
                                    const nde_series_extra *x);
nde_status nde_writer_put_series(nde_writer *w, const char *group, const nde_series *s);
nde_status nde_writer_put_string(nde_writer *w, const char *path, const char *text);
nde_status nde_writer_set_attr_string(nde_writer *w, const char *obj, const char *name,
                                      const char *value);
nde_status nde_writer_set_attr_double(nde_writer *w, const char *obj, const char *name,
                                      double value);
nde_status nde_writer_put_doubles(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const double *x);
nde_status nde_writer_set_attr_int64(nde_writer *w, const char *obj, const char *name,
                                     int64_t value);
nde_status nde_writer_commit(nde_writer *w);
nde_status nde_write_file(const char *path, const void *bytes, size_t len, nde_error *err);
nde_status nde_read_theta(const char *path, size_t *n, double **theta, nde_error *err);

/* ---- result ---- */
static const char *const NDE_DEFAULT_SCHEDULE;
typedef struct nde_result nde_result;
typedef struct nde_result_fit_opts {
  nde_solver_opts solver; nde_grad_opts grad; nde_fit_opts objective; const char *schedule;
  double lr; uint64_t seed; int max_failures; long checkpoint_every; int keep_last; int patience;
  int phase_patience; double phase_tol; double validate_tail; int validate_series;
  const double *noise_std; const double *theta0; const nde_result *resume; const char *checkpoint_path;
  int threads;
  double checkpoint_seconds; int (*progress)(void *ctx, const nde_train_progress *p);
  void *progress_ctx; long progress_every; const char *command_line; const char *data_label;
  ...;
} nde_result_fit_opts;
nde_result_fit_opts nde_result_fit_opts_default(void);
nde_status nde_data_open_for(const char *path, const nde_model *model, nde_data **out,
                             nde_error *err);
nde_status nde_read_params(const char *path, const nde_model *model, int n_series,
                           double *theta, nde_error *err);
nde_status nde_time_grid(double t0, double t1, double dt, size_t max, double **times, size_t *n,
                         nde_error *err);
typedef struct nde_problem nde_problem;
nde_status nde_problem_create(nde_model *model, const nde_data *data,
                              const nde_result_fit_opts *o, nde_problem **out, nde_error *err);
const char *nde_problem_errmsg(const nde_problem *p);
size_t nde_problem_n_theta(const nde_problem *p);
const double *nde_problem_u0(const nde_problem *p, int k);
nde_status nde_problem_loss(nde_problem *p, const double *theta, double *L, double *g,
                            nde_fit_info *info);
char *nde_stop_message(const char *solver, const nde_solve_stats *s, char *buf, size_t len);
typedef enum {
  NDE_FIT_RUNNING, NDE_FIT_DONE, NDE_FIT_STOPPED, NDE_FIT_EARLY_STOP, NDE_FIT_DIVERGED,
  NDE_FIT_FAILED, ...
} nde_fit_status;
const char *nde_fit_status_str(nde_fit_status s);
nde_status nde_result_fit(nde_model *model, const nde_data *data, const nde_result_fit_opts *o,
                          nde_result **out, nde_error *err);
nde_status nde_result_open(const char *path, nde_result **out, nde_error *err);
nde_status nde_result_save(const nde_result *r, const char *path, nde_error *err);
const nde_model *nde_result_model(const nde_result *r);
nde_fit_status nde_result_status(const nde_result *r);
const char *nde_result_message(const nde_result *r);
size_t nde_result_n_theta(const nde_result *r);
const double *nde_result_theta(const nde_result *r);
const double *nde_result_theta_last(const nde_result *r);
double nde_result_param(const nde_result *r, int i);
double nde_result_param_series(const nde_result *r, int i, int s);
const char *nde_result_warning(const nde_result *r);
typedef struct nde_result_kept {
  int is_best; long iteration; double score; double loss; double last_loss; double validation;
  double noise_loss; double noise_ratio; ...;
} nde_result_kept;
nde_result_kept nde_result_get_kept(const nde_result *r);
typedef struct nde_result_series {
  const char *name; size_t n_obs; const double *t; const double *u0; size_t n_u;
  const double *u_t; const double *u; const double *consts; ...;
} nde_result_series;
int nde_result_n_series(const nde_result *r);
nde_status nde_result_get_series(const nde_result *r, int k, nde_result_series *out);
int nde_result_find_series(const nde_result *r, const char *name);
const nde_result_fit_opts *nde_result_settings(const nde_result *r);
double nde_result_step(const nde_result *r);
size_t nde_result_history(const nde_result *r, const double **loss);
size_t nde_result_scores(const nde_result *r, const double **score, const long **iter);
int nde_result_phase_ends(const nde_result *r, const long **ends);
long nde_result_iterations(const nde_result *r);
double nde_result_seconds(const nde_result *r);
const char *nde_result_provenance(const nde_result *r, const char *key);
typedef enum { NDE_START_FITTED, NDE_START_AT_TIME, NDE_START_STATE, ... } nde_start_kind;
typedef struct nde_start {
  nde_start_kind kind; int series; double t; const double *u;
  const nde_input_series *inputs; const double *consts; ...;
} nde_start;
nde_status nde_result_start_state(const nde_result *r, const nde_start *start, double *t0,
                                  double *u0, nde_error *err);
nde_status nde_result_integrate(const nde_result *r, const nde_start *start, size_t n_times,
                                const double *times, const nde_solver_opts *solver, double *Y,
                                nde_solve_stats *stats, nde_error *err);
nde_status nde_result_observe(const nde_result *r, const nde_start *start, size_t n_times,
                              const double *times, const double *Z, double *H, nde_error *err);
typedef struct nde_score_opts {
  double horizon_tol; const nde_solver_opts *solver; int start_fitted; ...;
} nde_score_opts;
nde_score_opts nde_score_opts_default(void);
typedef struct nde_series_score {
  const char *name; double t0, t1; const double *u0; const double *rmse; const size_t *count;
  double rmse_all; double horizon; nde_solve_stats stop; int series; ...;
} nde_series_score;
typedef struct nde_score nde_score;
nde_status nde_result_score(const nde_result *r, const nde_data *held, const nde_score_opts *o,
                            nde_score **out, nde_error *err);
int nde_score_n_series(const nde_score *s);
int nde_score_n_columns(const nde_score *s);
nde_status nde_score_get(const nde_score *s, int k, nde_series_score *out);
double nde_score_rmse(const nde_score *s);
typedef struct nde_sim_opts {
  nde_solver_opts solver; double noise; uint64_t seed; const nde_input_series *inputs;
  const double *consts; int n_columns; const char *const *columns; ...;
} nde_sim_opts;
nde_sim_opts nde_sim_opts_default(void);
nde_status nde_simulate(nde_model *model, const double *theta, const double *u0, size_t n_times,
                        const double *times, const nde_sim_opts *o, double *Y, double *noise_std,
                        nde_solve_stats *stats, nde_error *err);
typedef struct nde_sim_series {
  const double *theta; const double *u0; const nde_input_series *inputs; const double *consts;
  int own_seed; uint64_t seed; ...;
} nde_sim_series;
uint64_t nde_sim_series_seed(uint64_t seed, int k);
nde_status nde_simulate_many(nde_model *model, int n_series, const nde_sim_series *series,
                             size_t n_times, const double *times, const nde_sim_opts *o,
                             int threads, double *Y, double *noise_std, nde_solve_stats *stats,
                             int *failed, nde_error *err);

/* ---- how sure is the fit: standard errors, profiles, ensembles, bands ---- */
typedef enum { NDE_NOISE_PER_STATE, NDE_NOISE_POOLED, NDE_NOISE_KNOWN, ... } nde_noise_model;
const char *nde_noise_model_str(nde_noise_model m);
typedef struct nde_unc_opts {
  double level; nde_noise_model noise; const double *noise_std; int include_nets; int include_u0;
  double ident_tol; int finite_differences; double fd_step; ...;
} nde_unc_opts;
nde_unc_opts nde_unc_opts_default(void);
typedef enum {
  NDE_UNC_PARAM, NDE_UNC_SERIES_PARAM, NDE_UNC_INITIAL_STATE, NDE_UNC_NET_WEIGHT, ...
} nde_unc_kind;
typedef struct nde_unc_entry {
  const char *name; nde_unc_kind kind; int param; int series; int component;
  nde_param_transform transform; double value; double se; double se_opt; double lower, upper;
  double lower_sym, upper_sym; int identifiable; ...;
} nde_unc_entry;
typedef struct nde_uncertainty {
  int n; const nde_unc_entry *entry; const double *cov; const double *cov_natural;
  const double *corr; double level; double quantile; nde_noise_model noise; double sigma;
  const double *sigma_state; long n_residuals; long dof; double rss; double cond; int n_null;
  const double *null_dirs; int finite_differences; const char *warning; int n_sigma;
  const char *const *sigma_names; int u0_from_data; ...;
} nde_uncertainty;
nde_status nde_result_compute_uncertainty(nde_result *r, const nde_data *data,
                                          const nde_unc_opts *o, nde_error *err);
const nde_uncertainty *nde_result_get_uncertainty(const nde_result *r);
int nde_uncertainty_find(const nde_uncertainty *u, const char *name);
typedef struct nde_profile_opts {
  int points; double reach; int max_extend; int max_iter; int threads;
  int (*progress)(void *ctx, int done, int total); void *progress_ctx; ...;
} nde_profile_opts;
nde_profile_opts nde_profile_opts_default(void);
typedef struct nde_profile {
  const char *name; int entry; int n; const double *grid; const double *stat; double value;
  double lower, upper; int lower_found, upper_found; double threshold; ...;
} nde_profile;
nde_status nde_result_profile(nde_result *r, const nde_data *data, const char *names,
                              const nde_unc_opts *uo, const nde_profile_opts *po, int *stopped,
                              nde_error *err);
int nde_result_n_profiles(const nde_result *r);
nde_status nde_result_get_profile(const nde_result *r, int i, nde_profile *out);
typedef enum { NDE_RESAMPLE_NONE, NDE_RESAMPLE_SERIES, NDE_RESAMPLE_TIME, ... } nde_resample;
const char *nde_resample_str(nde_resample r);
typedef struct nde_ensemble_opts {
  int members; nde_resample resample; double fraction; int threads;
  int (*progress)(void *ctx, int done, int total); void *progress_ctx; ...;
} nde_ensemble_opts;
nde_ensemble_opts nde_ensemble_opts_default(void);
nde_status nde_result_fit_ensemble(nde_model *model, const nde_data *data,
                                   const nde_result_fit_opts *o, const nde_ensemble_opts *e,
                                   nde_result **out, int *stopped, nde_error *err);
int nde_result_n_members(const nde_result *r);
nde_status nde_result_ensemble_settings(const nde_result *r, nde_ensemble_opts *out);
typedef struct nde_member_info {
  uint64_t seed; nde_fit_status status; double loss; long iterations; const double *theta;
  const double *u0; const unsigned char *keep; ...;
} nde_member_info;
nde_status nde_result_get_member(const nde_result *r, int k, nde_member_info *out);
nde_status nde_result_member(const nde_result *r, int k, nde_result **out, nde_error *err);
typedef struct nde_spread {
  int n; double mean, sd; double median; double lower, upper; ...;
} nde_spread;
nde_status nde_result_param_spread(const nde_result *r, int i, int s, double level,
                                   nde_spread *out);
nde_status nde_result_integrate_band(const nde_result *r, const nde_start *start,
                                     size_t n_times, const double *times,
                                     const nde_solver_opts *solver, double level,
                                     double *lower, double *mid, double *upper,
                                     int *n_used, nde_error *err);
nde_status nde_result_observe_band(const nde_result *r, const nde_start *start,
                                   size_t n_times, const double *times,
                                   const nde_solver_opts *solver, double level,
                                   double *lower, double *mid, double *upper,
                                   int *n_used, nde_error *err);
nde_status nde_result_forecast_band(const nde_result *r, const nde_start *start,
                                    size_t n_times, const double *times,
                                    const nde_solver_opts *solver, double level,
                                    double *lower, double *mid, double *upper,
                                    double *obs_lower, double *obs_mid, double *obs_upper,
                                    int *n_used, nde_error *err);

/* ---- discover ---- */
typedef struct nde_library_opts {
  int poly_degree; int constant; int sin, cos, exp; int n_user; const char *const *user; ...;
} nde_library_opts;
nde_library_opts nde_library_opts_default(void);
nde_status nde_library_opts_parse(const char *spec, nde_library_opts *o, nde_error *err);
typedef enum { NDE_CRIT_BIC, NDE_CRIT_AIC, ... } nde_criterion;
typedef struct nde_discover_opts {
  const char *nets; nde_library_opts library; long points; long samples; double margin;
  uint64_t seed; double threshold; int n_thresholds; nde_criterion criterion; double ridge;
  int threads; ...;
} nde_discover_opts;
nde_discover_opts nde_discover_opts_default(void);
typedef struct nde_discovery nde_discovery;
nde_status nde_discovery_create(const nde_result *r, const nde_discover_opts *o,
                                nde_discovery **out, nde_error *err);
nde_status nde_discovery_sample(nde_discovery *d, nde_error *err);
size_t nde_discovery_n_samples(const nde_discovery *d);
const double *nde_discovery_samples(const nde_discovery *d);
nde_status nde_discovery_candidates(nde_discovery *d, nde_error *err);
nde_status nde_discovery_select(nde_discovery *d, nde_error *err);
int nde_discovery_n_terms(const nde_discovery *d);
const char *nde_discovery_term(const nde_discovery *d, int j);
typedef struct nde_discovery_output {
  const char *net; int component; const char *args; int args_len; int line; int n_candidates;
  int chosen; ...;
} nde_discovery_output;
int nde_discovery_n_outputs(const nde_discovery *d);
nde_status nde_discovery_get_output(const nde_discovery *d, int i, nde_discovery_output *out);
int nde_discovery_term_allowed(const nde_discovery *d, int i, int j);
typedef struct nde_discovery_candidate {
  int n_terms; double threshold; double ridge; double rel_error; double traj_rms; double crit;
  const double *xi; ...;
} nde_discovery_candidate;
nde_status nde_discovery_get_candidate(const nde_discovery *d, int output, int k,
                                       nde_discovery_candidate *out);
char *nde_discovery_equation(const nde_discovery *d, int output, int k, int pretty);
nde_status nde_discovery_model_text(const nde_discovery *d, char **text, nde_error *err);

static const double NDE_DEFAULT_INCLUSION;
typedef struct nde_stability_opts {
  nde_discover_opts discover; double inclusion; double level; int threads;
  int (*progress)(void *ctx, int done, int total); void *progress_ctx; ...;
} nde_stability_opts;
nde_stability_opts nde_stability_opts_default(void);
typedef struct nde_stability nde_stability;
nde_status nde_discover_stable(const nde_result *r, const nde_stability_opts *o,
                               nde_stability **out, int *stopped, nde_error *err);
int nde_stability_n_members(const nde_stability *s);
const nde_discovery *nde_stability_discovery(const nde_stability *s);
typedef struct nde_stable_term {
  double frequency; int selected; double coef; double median, lower, upper; int n; ...;
} nde_stable_term;
nde_status nde_stability_get(const nde_stability *s, int q, int j, nde_stable_term *out);
char *nde_stability_equation(const nde_stability *s, int q, int pretty);
nde_status nde_stability_model_text(const nde_stability *s, char **text, nde_error *err);

/* ---- glue of the extension (set_source below) ---- */
void free(void *p);
void ndepy_model_destroy(nde_model *m);
void ndepy_data_destroy(nde_data *d);
void ndepy_problem_destroy(nde_problem *p);
void ndepy_result_destroy(nde_result *r);
void ndepy_score_destroy(nde_score *s);
void ndepy_discovery_destroy(nde_discovery *d);
void ndepy_stability_destroy(nde_stability *s);
typedef struct ndepy_progress {
  void *handle; long every; double interval; double t_last; long iter_last; ...;
} ndepy_progress;
int ndepy_progress_cb(void *ctx, const nde_train_progress *p);
extern "Python" int ndepy_on_progress(void *handle, const nde_train_progress *p, int why);
extern "Python" int ndepy_on_jobs(void *handle, int done, int total);
"""

SOURCE = r"""
#include <stdlib.h>
#include <time.h>
#include <nde/nde.h>

static void ndepy_model_destroy(nde_model *m) { nde_model_destroy(&m); }
static void ndepy_data_destroy(nde_data *d) { nde_data_destroy(&d); }
static void ndepy_problem_destroy(nde_problem *p) { nde_problem_destroy(&p); }
static void ndepy_result_destroy(nde_result *r) { nde_result_destroy(&r); }
static void ndepy_score_destroy(nde_score *s) { nde_score_destroy(&s); }
static void ndepy_discovery_destroy(nde_discovery *d) { nde_discovery_destroy(&d); }
static void ndepy_stability_destroy(nde_stability *s) { nde_stability_destroy(&s); }

/* The fit calls ndepy_progress_cb every iteration (progress_every = 1, as nde fit does); it calls
 * Python (ndepy_on_progress) only on events (why 1), every `every` iterations (why 2) and at
 * least every `interval` seconds (why 3: the heartbeat that refreshes the progress bar and lets
 * Python's SIGINT handler run), so a fast fit pays a clock read per iteration, not a Python
 * call. */
typedef struct ndepy_progress {
  void *handle;    /* the Python run (ffi.new_handle) */
  long every;      /* iterations between calls (<= 0: none) */
  double interval; /* seconds between heartbeats (<= 0: none) */
  double t_last;   /* time of the last call */
  long iter_last;  /* total iteration count at the last call */
} ndepy_progress;

static int ndepy_on_progress(void *handle, const nde_train_progress *p, int why);

static double ndepy_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int ndepy_progress_cb(void *ctx, const nde_train_progress *p) {
  ndepy_progress *c = ctx;
  int why = 0;
  double now = 0;
  if (p->event) why = 1;
  else if (c->every > 0 && p->total_iter - c->iter_last >= c->every) why = 2;
  else if (c->interval > 0 && (now = ndepy_now()) - c->t_last >= c->interval) why = 3;
  if (!why) return 0;
  c->t_last = now > 0 ? now : ndepy_now();
  if (why == 2) c->iter_last = p->total_iter - p->total_iter % c->every;
  return ndepy_on_progress(c->handle, p, why);
}
"""


def make_ffi():
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("nde._nde_cffi", SOURCE)
    return ffi


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: build_ffi.py OUT.c\n")
        return 2
    make_ffi().emit_c_code(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
