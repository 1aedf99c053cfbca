/* Internal interface of the uncertainty part of the result layer (jacobian.c, uncertainty.c,
 * ensemble.c, parallel.c, schema_unc.c): the coordinates of a fit, the residual Jacobian, the
 * stored standard errors, profiles and ensemble members, and the file groups that hold them. */
#ifndef NDE_RESULT_UNC_INTERNAL_H
#define NDE_RESULT_UNC_INTERNAL_H

#include "internal.h"

/* ---- coordinates and the residual Jacobian (jacobian.c) ---- */

/* One coordinate of the fit, as the optimiser saw it: a theta entry (a parameter in its
 * unconstrained form, a per-series parameter of one series, a network weight) or a learned
 * initial-state component of one series (natural units). */
typedef struct nde__coord {
  nde_unc_kind kind;
  long theta;    /* index in the full theta, or -1 for an initial state */
  int series;    /* per-series parameter or initial state: the series; else -1 */
  int component; /* initial state: the state column; else -1 */
  int param;     /* nde_model_get_param index (net index for a net weight; -1 otherwise) */
  nde_param_transform transform;
  double lo, hi; /* LOGIT bounds */
  char *name;
} nde__coord;

/* The coordinates uncertainty is computed for (physical parameters, per-series parameters of
 * every fitted series, learned initial states with learn_u0, network weights with include_nets),
 * in that order.  *cols is an array of *n entries owned by the caller (nde__coords_free). */
nde_status nde__coords_make(const nde_result *r, int include_nets, int include_u0,
                            nde__coord **cols, int *n, nde_error *err);
void nde__coords_free(nde__coord *cols, int n);

/* The residual machinery of one thread: the training series of a problem (borrowed), a clone of
 * its right-hand side, the fit's solver for the model and, for the Jacobian, a solver for the
 * variational system.  Residual rows: every observed entry the trajectory loss compares (each
 * series from loss_from; the first row only with learned initial states, since otherwise it is
 * the start itself), series by series, time by time, column by column.  An observable column
 * compares the observation model's quantity H(t, u, theta): its derivative is dH/du s +
 * dH/dtheta e_j with s the state's sensitivity (the observer's JVP). */
typedef struct nde__jac nde__jac;

typedef enum { NDE__JAC_SENS = 0, NDE__JAC_FD } nde__jac_method;

nde_status nde__jac_create(const nde_result *r, nde_problem *p, int max_cols,
                           nde__jac_method method, double fd_step, nde__jac **out,
                           nde_error *err);
void nde__jac_destroy(nde__jac **J);
/* Residual rows and, per row, its data column: a state component (< n) or an observable column
 * (n .. K - 1, compared through the fit's observation model). */
size_t nde__jac_n_rows(const nde__jac *J);
const int *nde__jac_row_state(const nde__jac *J);
/* K, the data columns the residuals compare (n without observable columns). */
int nde__jac_n_columns(const nde__jac *J);
/* The per-column weights of the fit's loss (K values). */
const double *nde__jac_weights(const nde__jac *J);
/* 1 when J comes from central differences (asked for, or the model has no JVP). */
int nde__jac_uses_fd(const nde__jac *J);
/* Residuals e = y - o (log y - log o with a log-space loss) at the point (theta: full theta,
 * u0s: S x n initial states of the problem's series), and with Jm (rows x n_cols, row-major)
 * their derivatives with respect to the coordinates cols.  *ok = 0 when a solve stopped (an
 * outcome; e and Jm are then undefined).  Statuses: NDE_ERR_NOMEM, NDE_ERR_CALLBACK, NDE_ERR_ARG
 * with the message in err. */
nde_status nde__jac_eval(nde__jac *J, const double *theta, const double *u0s, int n_cols,
                         const nde__coord *cols, double *e, double *Jm, int *ok, nde_error *err);

/* The state (Y: n_times x n) and its sensitivities to the coordinates (Sm: (n_times x n) x
 * n_cols, row-major) of series `series` of r at r's theta, from u0 at t0 (initial-state
 * coordinates of that series start with the unit vectors), over times (>= t0) with solver so,
 * driven by inputs and consts (required when the model declares them).  With H and Sh
 * (non-NULL), also the model's n_o observables along it (H: n_times x n_o) and their
 * sensitivities (Sh: (n_times x n_o) x n_cols), dH/du s + dH/dtheta e_j by the observation
 * model's JVP (a value that is not finite stays so).  *ok = 0 when the solve stopped.
 * NDE_ERR_UNSUPPORTED for a model without a JVP; NDE_ERR_CALLBACK when the observation model
 * fails. */
nde_status nde__forecast_sens(const nde_result *r, const nde_solver_opts *so, int series,
                              const nde_input_series *inputs, const double *consts,
                              const double *u0, double t0, size_t n_times, const double *times,
                              int n_cols, const nde__coord *cols, double *Y, double *Sm,
                              double *H, double *Sh, int *ok, nde_error *err);

/* The training series, right-hand side and observation model (NULL when the data have no
 * observable columns) of a problem (problem.c). */
const nde_fit_series *nde__problem_series(const nde_problem *p, int *n_train);
nde_rhs *nde__problem_rhs(nde_problem *p);
nde_observer *nde__problem_observer(nde_problem *p);

/* ---- what a result holds (uncertainty.c, ensemble.c) ---- */

typedef struct nde__profile {
  char *name;
  int coord;          /* index into the uncertainty's coordinates */
  int n;              /* grid points */
  double *grid;       /* natural values, increasing */
  double *stat;       /* the likelihood-ratio statistic at each (NaN: the re-fit failed) */
  double value;       /* the estimate (natural) */
  double lower, upper; /* the interval (natural; the coordinate's limit when not reached) */
  int lower_found, upper_found;
  double threshold;
} nde__profile;

struct nde__unc {
  nde_uncertainty pub;  /* the view handed out; its pointers point into the arrays below */
  nde_unc_opts opts;    /* as computed (noise_std not kept: sigma_state holds the levels) */
  nde__coord *cols;     /* pub.n coordinates (their names are the entries' names) */
  nde_unc_entry *entry;
  double *cov, *cov_nat, *corr, *null_dirs, *sigma_state;
  int n_sigma;          /* data columns of sigma_state: the states, then observable columns */
  char **sigma_names;   /* n_sigma owned names */
  double *hdiag;        /* diag of H^+ = (A^T A)^+ of the fit's objective (profiles; not in the
                         * file: NULL after reading one, and profiles recompute) */
  char *warning;
  nde__profile *prof;
  int n_prof;
  nde_profile *prof_pub;
};

/* One ensemble member: its seed, outcome, parameters, initial states and the rows it fitted. */
typedef struct nde__member {
  uint64_t seed;
  nde_fit_status status;
  double loss;
  long iterations;
  /* Its own kept iterate, loss against its own data and noise level (files from before these
   * were recorded: loss alone, the rest NaN and iteration -1). */
  nde_result_kept kept;
  double *theta; /* n_theta */
  double *u0;    /* S x n */
} nde__member;

struct nde__ens {
  int k;
  nde_resample resample;
  double fraction;
  uint64_t seed;
  nde__member *m;
  size_t n_rows;          /* observation rows over all series (the resampling mask's length) */
  unsigned char *keep;    /* k x n_rows: 1 where member k fitted the row */
};

void nde__unc_free(struct nde__unc *u);
void nde__ens_free(struct nde__ens *e);
/* Rebuild the public view after the arrays are filled (reading a file, computing). */
void nde__unc_publish(struct nde__unc *u);

/* ---- the file groups (schema_unc.c; called from schema.c) ---- */

/* The quantile of the standard normal distribution and of Student's t with dof degrees of
 * freedom (dof <= 0 or infinite: the normal one), at probability p in (0, 1). */
double nde__norm_quantile(double p);
double nde__t_quantile(double p, double dof);

#endif
