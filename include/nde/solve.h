/* nde solve: integrate du/dt = f(t, u, theta) for a batch of B initial states, with output at
 * observation times t_0 < t_1 < ... < t_{K-1} (t_0 is the initial time, so Y_0 = U0).
 *
 * Methods are looked up by name in a registry ("euler", "rk4"; the adaptive and CVODE methods
 * arrive with their own issue).  Explicit Runge-Kutta methods are Butcher tableaux run by one
 * batched kernel.  Fixed-step methods hit every observation time exactly: the step is given as a
 * size dt (the last step of an interval is shortened to land on t_{k+1}) or as a number of equal
 * steps per observation interval.
 *
 * Errors (bad arguments, no memory, a fatal callback) are statuses.  Numerical outcomes (a
 * non-finite state, a recoverable callback failure a fixed-step method cannot retry, the step
 * budget) are reasons in nde_solve_stats on a successful call; rows of Y after the stop are NaN.
 */
#ifndef NDE_SOLVE_H
#define NDE_SOLVE_H

#include <stddef.h>

#include "nde/core.h"
#include "nde/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_solver_opts {
  const char *method;     /* registry name; default "rk4" */
  double dt;              /* step size for fixed-step methods; <= 0 selects steps_per_interval */
  int steps_per_interval; /* equal steps per observation interval when dt <= 0; default 1 */
  long max_steps;         /* budget for the whole solve (all intervals); default 1000000 */
  /* A last step shorter than dt_snap * dt is folded into the previous one instead of being
   * taken on its own (guards against round-off in (t_{k+1} - t_k) / dt); default 1e-9. */
  double dt_snap;
} nde_solver_opts;

nde_solver_opts nde_solver_opts_default(void);

/* Names of the registered methods, NULL-terminated (static storage). */
const char *const *nde_solver_method_names(void);

typedef enum {
  NDE_REASON_NONE = 0,        /* reached the last observation time */
  NDE_REASON_NONFINITE,       /* a state or derivative became NaN or infinite */
  NDE_REASON_RHS_RECOVERABLE, /* the RHS reported a recoverable failure the method cannot retry */
  NDE_REASON_MAX_STEPS,       /* the step budget of the whole solve was used up */
  NDE_REASON_STEP_UNDERFLOW   /* the step size fell below what the time resolution allows */
} nde_stop_reason;

/* Static English text of a reason. */
const char *nde_stop_reason_str(nde_stop_reason r);

typedef struct nde_solve_stats {
  nde_stop_reason reason;
  double t_stop;  /* time reached (the last observation time on success) */
  double h_last;  /* the last step size attempted */
  int bad_row;    /* batch row and state index of the first non-finite value, else -1 */
  int bad_state;
  long n_steps;   /* accepted steps */
  long n_rhs;     /* f evaluations (calls, each on the whole batch) */
} nde_solve_stats;

typedef struct nde_solver nde_solver;

/* Create a solver for rhs (borrowed: it must outlive the solver) on batches of up to max_batch
 * rows (<= the rhs's max_batch).  opts may be NULL for the defaults.  Statuses: NDE_ERR_ARG
 * (unknown method, bad option; message names it), NDE_ERR_NOMEM. */
nde_status nde_solver_create(nde_rhs *rhs, const nde_solver_opts *opts, int max_batch,
                             nde_solver **out);
void nde_solver_destroy(nde_solver **s);

/* Last detailed error message of this solver. */
const char *nde_solver_errmsg(const nde_solver *s);
const nde_solver_opts *nde_solver_get_opts(const nde_solver *s);
nde_rhs *nde_solver_get_rhs(const nde_solver *s);

/* Solve from U0 (B x n) at t_obs[0] through t_obs[1..n_obs-1] (strictly increasing), writing
 * Y (n_obs x B x n; Y[0] = U0).  stats may be NULL.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM (the
 * trajectory store grows on first use of a longer grid), NDE_ERR_CALLBACK (fatal callback). */
nde_status nde_solver_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
