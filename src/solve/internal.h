/* Internal interface of the solve layer, shared with the grad layer: Butcher tableaux, the
 * generic explicit Runge-Kutta kernel and adaptive driver, the trajectory store written by the
 * forward pass, and the CVODE adapter's entry points. */
#ifndef NDE_SOLVE_INTERNAL_H
#define NDE_SOLVE_INTERNAL_H

#include <float.h>
#include <math.h>

#include "core/internal.h"
#include "nde/solve.h"

#define NDE__MAX_STAGES 7

/* The smallest rtol accepted with atol = 0: a relative error of a few units of round-off
 * (2.2e-16) cannot be controlled. */
#define NDE__RTOL_MIN 1e-15

/* An explicit Runge-Kutta method: stages U_i = u + h sum_{j<i} a_ij K_j, K_i = f(t + c_i h, U_i),
 * u' = u + h sum_i b_i K_i.  A is s x s row-major, strictly lower triangular.  Adaptive methods
 * add the error weights e = b - bhat (err = h sum_i e_i K_i, of order emb_order + 1), a FSAL
 * flag (the last stage is f at u', reused as the next step's first stage) and a continuous
 * extension u(t + th h) = u + h sum_i bth_i(th) K_i. */
typedef struct nde__tableau {
  const char *name;
  int s;
  int order;
  const double *A;
  const double *b;
  const double *c;
  const double *e; /* NULL for fixed-step-only methods */
  int emb_order;
  int fsal;
  const double *d;                            /* dense-output coefficients (Hairer's d_i) */
  void (*dense)(double th, double *bth);      /* bth_i(th) for i < s, or NULL */
} nde__tableau;

const nde__tableau *nde__tableau_lookup(const char *name);

/* Where a tableau's coefficients are non-zero, for the per-step loops of a run of ns stages
 * (the fixed-step model kernel in solver.c and the discrete adjoint): they visit only these
 * terms.  A term whose coefficient is zero contributes h * 0 * x, which the kernels skip anyway
 * (they test the product h * a against 0) when h is finite; for a non-finite h they take the
 * generic path, which keeps every such term. */
typedef struct nde__erk_plan {
  int ns;
  unsigned char na[NDE__MAX_STAGES];                  /* stage i: columns j < i, A[i][j] != 0 */
  unsigned char aj[NDE__MAX_STAGES][NDE__MAX_STAGES];
  unsigned char nb;                                   /* j < s with b[j] != 0 */
  unsigned char bj[NDE__MAX_STAGES];
  unsigned char nc[NDE__MAX_STAGES];                  /* stage i: rows i < m < ns, A[m][i] != 0 */
  unsigned char cm[NDE__MAX_STAGES][NDE__MAX_STAGES];
  unsigned char live[NDE__MAX_STAGES]; /* b[i] != 0 or nc[i] > 0: stage i reaches the step's end */
} nde__erk_plan;

void nde__erk_plan_init(nde__erk_plan *p, const nde__tableau *tab, int ns);

/* DEST = PRE (INIT + a[0] P[0][q] + a[1] P[1][q] + ... + a[n-1] P[n-1][q]) for q < len, the
 * terms added left to right (the Runge-Kutta kernels' order); DEST and INIT are expressions in
 * q, PRE is empty or an expression in q followed by +.  The cases n <= 4 are written out with
 * the coefficients in scalars, the switch outside the loop. */
#define NDE__ACC_LOOP(n, len, a, P, DEST, PRE, INIT)                                              \
  do {                                                                                            \
    switch (n) {                                                                                  \
      case 0:                                                                                     \
        for (size_t q = 0; q < (len); q++) {                                                      \
          const double v_ = (INIT);                                                               \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
        break;                                                                                    \
      case 1: {                                                                                   \
        const double a0_ = (a)[0], *P0_ = (P)[0];                                                 \
        for (size_t q = 0; q < (len); q++) {                                                      \
          const double v_ = (INIT) + a0_ * P0_[q];                                                \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
        break;                                                                                    \
      }                                                                                           \
      case 2: {                                                                                   \
        const double a0_ = (a)[0], a1_ = (a)[1], *P0_ = (P)[0], *P1_ = (P)[1];                    \
        for (size_t q = 0; q < (len); q++) {                                                      \
          double v_ = (INIT) + a0_ * P0_[q];                                                      \
          v_ += a1_ * P1_[q];                                                                     \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
        break;                                                                                    \
      }                                                                                           \
      case 3: {                                                                                   \
        const double a0_ = (a)[0], a1_ = (a)[1], a2_ = (a)[2];                                    \
        const double *P0_ = (P)[0], *P1_ = (P)[1], *P2_ = (P)[2];                                 \
        for (size_t q = 0; q < (len); q++) {                                                      \
          double v_ = (INIT) + a0_ * P0_[q];                                                      \
          v_ += a1_ * P1_[q];                                                                     \
          v_ += a2_ * P2_[q];                                                                     \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
        break;                                                                                    \
      }                                                                                           \
      case 4: {                                                                                   \
        const double a0_ = (a)[0], a1_ = (a)[1], a2_ = (a)[2], a3_ = (a)[3];                      \
        const double *P0_ = (P)[0], *P1_ = (P)[1], *P2_ = (P)[2], *P3_ = (P)[3];                  \
        for (size_t q = 0; q < (len); q++) {                                                      \
          double v_ = (INIT) + a0_ * P0_[q];                                                      \
          v_ += a1_ * P1_[q];                                                                     \
          v_ += a2_ * P2_[q];                                                                     \
          v_ += a3_ * P3_[q];                                                                     \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
        break;                                                                                    \
      }                                                                                           \
      default:                                                                                    \
        for (size_t q = 0; q < (len); q++) {                                                      \
          double v_ = (INIT);                                                                     \
          for (int l_ = 0; l_ < (n); l_++) v_ += (a)[l_] * (P)[l_][q];                            \
          DEST = PRE v_;                                                                          \
        }                                                                                         \
    }                                                                                             \
  } while (0)

/* First non-finite entry of x, or -1. */
long nde__first_nonfinite(size_t len, const double *x);
/* The same answer, inline, with a branch-free (vectorisable) test of the whole array first. */
static inline long nde__first_nonfinite_fast(size_t len, const double *x) {
  if (len < 8) {
    for (size_t q = 0; q < len; q++)
      if (!(fabs(x[q]) <= DBL_MAX)) return (long)q;
    return -1;
  }
  int bad = 0;
  for (size_t q = 0; q < len; q++) bad |= !(fabs(x[q]) <= DBL_MAX);
  return bad ? nde__first_nonfinite(len, x) : -1;
}

/* A splitting method for q' = F(t, p), p' = G(t, q): m drifts and m + 1 kicks,
 *   K_0 D_1 K_1 D_2 ... D_m K_m,   K_i: p += kick[i] h G(t_i, q),   D_i: q += drift[i] h F(.., p)
 * with the kick times t_i = t + h (drift[1] + ... + drift[i]) and each drift evaluated at the
 * middle of its time span.  drift[0] is unused.  sum drift = 1, sum kick = 1. */
#define NDE__SPLIT_MAX 4
typedef struct nde__split {
  int m;
  double kick[NDE__SPLIT_MAX + 1];
  double drift[NDE__SPLIT_MAX + 1];
} nde__split;

/* How a method is run (the registry's private half). */
typedef enum {
  NDE__FAM_ERK = 0,  /* explicit Runge-Kutta tableau */
  NDE__FAM_SPLIT,    /* kick-drift composition on a separable split */
  NDE__FAM_IMPLICIT, /* implicit midpoint with Newton */
  NDE__FAM_CVODE     /* SUNDIALS CVODE(S) */
} nde__family;

typedef struct nde__method {
  nde_solver_method_info info;
  nde__family family;
  const char *tableau; /* ERK: name for nde__tableau_lookup */
  const nde__split *split;
  int cvode_bdf;       /* CVODE: 1 BDF + Newton, 0 Adams + fixed point */
} nde__method;

/* The registry entry of a method name, or NULL. */
const nde__method *nde__method_lookup(const char *name);
/* names (NULL-terminated) as a phrase for messages, "a, b, c or d" (last_word "or"), into buf
 * (truncated to len bytes). */
void nde__names_phrase(const char *const *names, const char *last_word, char *buf, size_t len);

/* ---- the generic kernel: any system dz/dt = F(t, z) of N unknowns ---- */

/* F at stage `stage` of the current step (stage -1: an evaluation outside a step).  Returns
 * 0 ok, > 0 recoverable, < 0 fatal, as the model's callbacks. */
typedef int (*nde__sys_fn)(void *ctx, int stage, double t, const double *z, double *dz);

/* Stages 0..ns-1 of one explicit RK step of size h (any sign) from z at t: K (ns x N)
 * receives the stage derivatives and Z (ns x N) the stage inputs; znew = z + h sum b_i K_i.
 * With k1_known, K[0] already holds F(t, z) (FSAL) and is not re-evaluated.  For a FSAL tableau
 * the last stage input is computed with the same arithmetic as znew, so it equals znew bit for
 * bit.  Returns F's first non-zero code. */
int nde__erk_step(const nde__tableau *tab, int ns, size_t N, nde__sys_fn F, void *ctx, double t,
                  double h, const double *z, int k1_known, double *K, double *Z, double *znew);

/* What the adaptive driver reports back after integrating to its end time (or stopping). */
typedef struct nde__adapt {
  /* configuration */
  const nde__tableau *tab;
  size_t N;     /* unknowns */
  size_t N_err; /* the error norm covers z[0 .. N_err) (a seminorm when N_err < N) */
  size_t N_dep; /* F reads only z[0 .. N_dep); the rest are quadratures, which are left out of
                 * the stage inputs Z (N after nde__adapt_begin; set it after begin) */
  nde_solver_opts o;
  int stiff_test; /* run Hairer's stiffness test (forward solves) */
  /* workspace, capacity N each (K, Z: s x N) */
  double *K, *Z, *znew;
  /* state carried across calls (an adjoint keeps its step size across observation jumps) */
  double h;     /* the next step size to try (signed); 0: choose automatically */
  double facold;
  int k1_valid; /* K[0] holds F at the current (t, z) */
  int last_rejected;
  int in_last_step; /* set while the step that lands on t1 is tried and on_accept runs on it */
  int stiff_hits, nonstiff_run;
  /* counters and outcome */
  long n_steps, n_rejected, n_retries;
  nde_stop_reason reason;
  double t_stop, h_last;
  long bad_index; /* first non-finite entry of z or F, or -1 */
} nde__adapt;

/* Allocate the workspace for up to N_cap unknowns. */
nde_status nde__adapt_init(nde__adapt *a, const nde__tableau *tab, size_t N_cap);
void nde__adapt_free(nde__adapt *a);
/* Start a new integration of N unknowns (error on the first N_err); resets counters and h
 * (h = o.h0 * direction, or automatic when o.h0 == 0). */
void nde__adapt_begin(nde__adapt *a, size_t N, size_t N_err, const nde_solver_opts *o,
                      int stiff_test);

/* Called after each accepted step [t, t + h] before z is overwritten by znew: K and Z hold its
 * stages.  A non-zero return stops the integration and is passed back. */
typedef int (*nde__accept_fn)(void *ctx, double t, double h, const double *z, const double *znew,
                              const double *K, const double *Z);

/* Integrate z from t0 to t1 (either direction), landing on t1 exactly, with error control,
 * PI step-size control, FSAL and retries after recoverable failures or non-finite values.
 * Returns 0 (a->reason says whether t1 was reached), F's fatal code (< 0), or on_accept's. */
int nde__adapt_run(nde__adapt *a, nde__sys_fn F, void *ctx, nde__accept_fn on_accept,
                   void *actx, double t0, double t1, double *z);

/* ---- the trajectory store ---- */

/* What the forward pass keeps for a gradient. */
typedef enum {
  NDE__STORE_NONE = 0, /* plain simulation */
  NDE__STORE_STAGES,   /* every stage input and the RHS cache: fastest discrete adjoint */
  NDE__STORE_STEPS,    /* only each step's start state: stages recomputed backward */
  NDE__STORE_DENSE,    /* the continuous extension of each step (5 x B x n, Hairer's r1..r5) */
  NDE__STORE_GRID      /* only the step grid (t, h): a fixed-step backsolve retraces it */
} nde__store_mode;

/* The forward trajectory: one record per accepted step, and where each observation fell.
 * Capacity grows when a longer grid is solved (amortised; repeated solves on the same grid
 * allocate nothing). */
typedef struct nde__traj {
  nde__store_mode mode;
  int B;
  int ns;         /* stages per step */
  long n_steps;
  long cap_steps;
  double *t;      /* step start times */
  double *h;      /* step sizes */
  struct nde__span *span; /* the piece between breakpoints each step lies in (nde__clamp_t) */
  int *obs_end;   /* index of the observation reached at the end of the step, or -1 */
  unsigned char *fresh; /* split methods: the step's first kick evaluated f itself (no FSAL) */
  /* U per step: ERK STAGES the ns stage inputs; SPLIT STAGES the 2m+1 evaluation points (slot
   * 0: the first kick's, used when fresh); IMPLICIT STAGES the Newton solution w (B n), the LU
   * factors of I - h/2 J at the last Newton iterate (B n n) and their pivots (B n, as doubles);
   * STEPS: the start state; DENSE: Hairer's r1..r5. */
  size_t u_len;   /* doubles per step in U: ns*B*n (STAGES), B*n (STEPS), 5*B*n (DENSE) */
  size_t c_len;   /* doubles per step in cache: ns*B*cache_per_row (STAGES) or 0 */
  size_t u_cap, c_cap;
  double *U;
  double *cache;
  /* observation k >= 1 lies in step obs_step[k] at fraction obs_theta[k] of it (1: its end) */
  int *obs_step;
  double *obs_theta;
  int obs_cap;
} nde__traj;

/* u at time t from the DENSE store (B x n into u); *cursor is a step index hint (any value is
 * valid; monotone sweeps cost O(1) per call). */
void nde__traj_dense_eval(const nde__traj *tr, size_t bn, double t, long *cursor, double *u);

/* ---- the solver handle ---- */

typedef enum { NDE__KIND_FIXED = 0, NDE__KIND_ADAPTIVE, NDE__KIND_CVODE } nde__kind;

struct nde__cv; /* the CVODE adapter (cvode.c) */

/* Newton workspace of implicit-midpoint (implicit.c), sized for max_batch rows. */
typedef struct nde__newton {
  double *F;   /* B n: f at the iterate */
  double *R;   /* B n: residual, then the Newton correction */
  double *J;   /* B n n: per-row Jacobian, factored in place (row-major, LU with pivots) */
  int *piv;    /* B n */
  double *V, *JV, *wp; /* B n: JVP direction and product, perturbed point (difference quotients) */
} nde__newton;

struct nde_solver {
  nde_rhs *rhs;
  nde_solver_opts opts;
  const nde__method *method;
  const nde__tableau *tab; /* explicit Runge-Kutta methods; NULL otherwise */
  nde__erk_plan plan;      /* tab's non-zero pattern for ns_run stages (tab != NULL) */
  nde__kind kind;
  int ns_run; /* f evaluations stored per step: ERK stages (a FSAL method under fixed steps
               * skips its last), 2m+1 for a splitting method, 1 for implicit-midpoint */
  int max_batch;
  int n;
  size_t cache_per_row;
  double *K;  /* s x max_batch x n stage derivatives */
  double *Us; /* s x max_batch x n stage inputs */
  double *u;  /* max_batch x n current state */
  double *ccache; /* s x max_batch x cache_per_row: stage caches of the step being tried */
  /* splitting methods: which components are p (kicked: 1) and q (drifted: 0), and the f of the
   * last kick (its p part is the next step's first kick when g_valid: FSAL) */
  unsigned char *is_p;
  int g_valid;
  nde__newton nw;
  /* breakpoints, sorted and distinct */
  double *bp;
  size_t n_bp, bp_cap;
  /* Where the rhs is defined for the current solve's rows (nde_rhs_domain): an evaluation a
   * method makes outside it (yoshida4's outer kicks) is moved to its end, as at a breakpoint
   * (nde__piece_span). */
  double t_lo, t_hi;
  nde__adapt adapt;
  struct nde__cv *cv;
  nde__traj traj;
  nde__err err;
};

/* The times at which f is evaluated inside a piece [a, b] between breakpoints: lo = a when a
 * is a breakpoint (f is right-continuous there), else -inf; hi = the largest double below b
 * when b is a breakpoint, else +inf.  A method that evaluates f outside the step (yoshida4's
 * kicks) or an integrator that steps past the piece's end (CVODES backward) sees the piece's
 * own f continued at its ends. */
typedef struct nde__span {
  double lo, hi;
} nde__span;
static inline double nde__clamp_t(double t, nde__span sp) {
  return t < sp.lo ? sp.lo : t > sp.hi ? sp.hi : t;
}
/* The span of the piece [a, b]. */
nde__span nde__piece_span(const nde_solver *s, double a, double b);
/* No breakpoints: every time as it is. */
#define NDE__SPAN_ALL ((nde__span){-INFINITY, INFINITY})
/* Index of the first breakpoint > t (n_bp when none). */
size_t nde__bp_after(const nde_solver *s, double t);

/* One explicit RK step of the model from u (B x n) at t with step h into u_out (may alias u),
 * stage times clamped to span.  When Ustore is non-NULL it receives the ns_run stage inputs
 * (ns_run x B x n); when cstore is non-NULL, the stage caches (ns_run x B x cache_per_row).
 * Returns the callback's code. */
int nde__rk_step(nde_solver *s, const double *theta, double t, double h, const nde__span *span,
                 int B, const double *u, double *u_out, double *Ustore, double *cstore);

/* ---- splitting methods (split.c) ---- */

/* Find the split of the rhs's dependency matrix into s->is_p; NDE_ERR_ARG with the message set
 * when there is none. */
nde_status nde__split_detect(nde_solver *s, const char *const *state_names);
/* The checks nde_solver_create makes of its options (method known, tolerances, steps), without a
 * solver: NDE_OK, or NDE_ERR_ARG with the message in err. */
nde_status nde__solver_opts_check(const nde_solver_opts *o, nde_error *err);
/* One step of the splitting method from u (B x n, updated in place) at t with step h, kick and
 * drift times clamped to span.  The first kick reuses s->K (the last kick's f) when g_valid
 * (FSAL), else evaluates f; *fresh says which.  With Ustore (ns_run x B x n) and cstore, the
 * evaluation points and caches are stored (slot 0 only when fresh).  Returns the callback's
 * code; on return g_valid says whether s->K holds f at the step's last kick. */
int nde__split_step(nde_solver *s, const double *theta, double t, double h, nde__span span, int B,
                    double *u, double *Ustore, double *cstore, int *fresh);
/* Kick and drift times of step [t, t + h]: tk[i] (i = 0..m) and td[i] (i = 1..m). */
void nde__split_times(const nde__split *sp, double t, double h, double *tk, double *td);

/* ---- implicit midpoint (implicit.c) ---- */

/* One implicit-midpoint step from u (B x n) at t with step h into u_out (may alias u).  With
 * store (u_len doubles: w, LU, pivots) the Newton solution and the last factorisation are kept.
 * Returns the callback's code (a recoverable one or a non-finite f: > 0); *newton_failed is set
 * when the iteration did not converge or met a singular matrix. */
int nde__midpoint_step(nde_solver *s, const double *theta, double t, double h, int B,
                       const double *u, double *u_out, double *store, int *newton_failed);
/* Solve (I - h/2 J)^T y = b per row with the stored LU factors (LU: B n n, pivots: B n). */
void nde__midpoint_solve_t(int B, int n, const double *LU, const double *piv, const double *b,
                           double *y);
nde_status nde__newton_init(nde__newton *nw, int max_batch, int n);
void nde__newton_free(nde__newton *nw);

/* Forward solve that records the trajectory in s->traj with the given mode (explicit methods;
 * CVODE solves go through nde__cvode_* in cvode.c). */
nde_status nde__solver_run(nde_solver *s, const double *theta, int B, const double *U0, int n_obs,
                           const double *t_obs, double *Y, nde__store_mode mode,
                           nde_solve_stats *stats);

/* Shared argument checks of a solve; returns NDE_OK or an NDE_ERR_ARG with the message set. */
nde_status nde__solve_check_args(nde_solver *s, const double *theta, int B, const double *U0,
                                 int n_obs, const double *t_obs, const double *Y);
/* Grow a double array to hold at least need entries (geometric growth); 0 ok, -1 no memory. */
int nde__grow(double **p, size_t *cap, size_t need);
/* CVODE forward solve (cvode.c).  Statuses as nde_solver_solve. */
nde_status nde__cvode_solve(nde_solver *s, const double *theta, int B, const double *U0,
                            int n_obs, const double *t_obs, double *Y, nde_solve_stats *stats);
nde_status nde__cvode_create(nde_solver *s);
void nde__cvode_destroy(struct nde__cv **cv);

#endif
