/* Internal interface of the solve layer, shared with the grad layer: Butcher tableaux, the
 * trajectory store written by the forward pass, and the single-step kernel. */
#ifndef NDE_SOLVE_INTERNAL_H
#define NDE_SOLVE_INTERNAL_H

#include "core/internal.h"
#include "nde/solve.h"

#define NDE__MAX_STAGES 7

/* An explicit Runge-Kutta method: stages U_i = u + h sum_{j<i} a_ij K_j, K_i = f(t + c_i h, U_i),
 * u' = u + h sum_i b_i K_i.  A is s x s row-major, strictly lower triangular. */
typedef struct nde__tableau {
  const char *name;
  int s;
  int order;
  const double *A;
  const double *b;
  const double *c;
} nde__tableau;

const nde__tableau *nde__tableau_lookup(const char *name);

/* What the forward pass keeps for a gradient. */
typedef enum {
  NDE__STORE_NONE = 0, /* plain simulation */
  NDE__STORE_STAGES,   /* every stage input and the RHS cache: fastest backward pass */
  NDE__STORE_STEPS     /* only each step's start state: stages recomputed backward */
} nde__store_mode;

/* The forward trajectory: one record per accepted step.  Capacity grows when a longer grid is
 * solved (amortised; repeated solves on the same grid allocate nothing). */
typedef struct nde__traj {
  nde__store_mode mode;
  int B;
  long n_steps;
  long cap_steps;
  double *t;      /* step start times */
  double *h;      /* step sizes */
  int *obs_end;   /* index of the observation reached at the end of the step, or -1 */
  size_t u_len;   /* doubles per step in U: s*B*n (STAGES) or B*n (STEPS) */
  size_t c_len;   /* doubles per step in cache: s*B*cache_per_row (STAGES) or 0 */
  size_t u_cap, c_cap;
  double *U;
  double *cache;
} nde__traj;

struct nde_solver {
  nde_rhs *rhs;
  nde_solver_opts opts;
  const nde__tableau *tab;
  int max_batch;
  int n;
  size_t cache_per_row;
  double *K;  /* s x max_batch x n stage derivatives */
  double *Us; /* max_batch x n stage input scratch */
  double *u;  /* max_batch x n current state */
  nde__traj traj;
  nde__err err;
};

/* One explicit RK step from u (B x n) at t with step h into u_out (may alias u).  When Ustore is
 * non-NULL it receives the s stage inputs (s x B x n); when cstore is non-NULL, the s stage
 * caches (s x B x cache_per_row).  Returns the callback's code (0 ok). */
int nde__rk_step(nde_solver *s, const double *theta, double t, double h, int B, const double *u,
                 double *u_out, double *Ustore, double *cstore);

/* Forward solve that records the trajectory in s->traj with the given mode. */
nde_status nde__solver_run(nde_solver *s, const double *theta, int B, const double *U0, int n_obs,
                           const double *t_obs, double *Y, nde__store_mode mode,
                           nde_solve_stats *stats);

#endif
