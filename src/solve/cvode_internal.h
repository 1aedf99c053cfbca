/* The CVODE(S) adapter shared by the solve and grad layers: one CVODES memory on the model's
 * batched right-hand side with an N_Vector serial of B x n, its linear and nonlinear solvers,
 * and the translation of callback codes and CVODE return flags into nde statuses and reasons.
 * SUNDIALS types never leave src/. */
#ifndef NDE_SOLVE_CVODE_INTERNAL_H
#define NDE_SOLVE_CVODE_INTERNAL_H

#include <cvodes/cvodes.h>
#include <nvector/nvector_serial.h>
#include <sundials/sundials_linearsolver.h>
#include <sundials/sundials_matrix.h>
#include <sundials/sundials_nonlinearsolver.h>

#include "internal.h"

typedef struct nde__cv {
  nde_solver *s;
  SUNContext ctx; /* one context per adapter: no global state */
  void *mem;
  int B;          /* batch the memory is built for; 0: not built */
  long generation; /* incremented at every rebuild (users of the memory re-attach) */
  int lmm;        /* CV_ADAMS or CV_BDF */
  int gmres;      /* BDF linear solver: 1 matrix-free GMRES, 0 band (block-diagonal) */
  N_Vector y;
  SUNMatrix A;
  SUNLinearSolver LS;
  SUNNonlinearSolver NLS;
  const double *theta;
  double *V, *JV;  /* max_batch x n: Jacobian column scratch */
  int cb_code;     /* the first fatal (< 0) code a model callback returned in this call */
  double cb_t;     /* and the time it happened */
  long n_recov;    /* recoverable failures (codes > 0, non-finite f) since the last step */
  long bad_index;  /* the first non-finite entry of f seen in this call, or -1 */
  char msg[512];   /* the last message SUNDIALS reported */
  /* Called after the output at each observation t_k, k >= 1 (e.g. to read sensitivities);
   * non-zero stops the march with NDE_ERR_INTERNAL.  NULL: none. */
  int (*obs_hook)(struct nde__cv *cv, int k, double tk, void *hctx);
  /* Called at a breakpoint tb before (after = 0) and after (after = 1) the memory is
   * re-initialised there (e.g. to read and re-initialise sensitivities); non-zero stops the
   * march with NDE_ERR_INTERNAL.  NULL: none. */
  int (*restart_hook)(struct nde__cv *cv, double tb, int after, void *hctx);
  void *hctx;
  /* The model's f, JVPs and Jacobians are evaluated at t clamped to [tmin, tmax]: the current
   * piece between breakpoints (see nde__clamp_t). */
  double tmin, tmax;
  /* Counters of the memory before its last re-initialisation at a breakpoint (this solve). */
  long nst_base, netf_base, ncf_base;
} nde__cv;

/* t clamped to the adapter's current piece. */
static inline double nde__cv_t(const nde__cv *cv, double t) {
  return t < cv->tmin ? cv->tmin : t > cv->tmax ? cv->tmax : t;
}

/* Translate a model callback's code for SUNDIALS: 0 -> 0, > 0 -> 1 (recoverable: CVODE
 * retries with a smaller step), < 0 -> -1 (fatal).  Records the first fatal code and counts
 * the recoverable ones. */
int nde__cv_code(nde__cv *cv, int rc, double t);

nde_status nde__cv_init(nde__cv *cv, nde_solver *s);
void nde__cv_free(nde__cv *cv);
/* Make the memory ready for a solve of B rows from U0 at t0 with parameters theta: built on
 * first use or when B changes (generation++), re-initialised otherwise. */
nde_status nde__cv_prepare(nde__cv *cv, int B, const double *theta, double t0, const double *U0);
/* Attach a linear solver for the model's Newton systems to a CVODES memory mem (forward or a
 * backward problem's own memory), per the solver's cvode_linsol option. */
nde_status nde__cv_attach_linsol(nde__cv *cv, void *mem, int B, N_Vector y, SUNMatrix *A,
                                 SUNLinearSolver *LS, int transpose);
/* March through the observation times writing Y (n_obs x B x n; Y[0] must hold U0), with the
 * step budget counting the whole solve.  adj: use CVodeF (checkpoints for the adjoint).
 * Breakpoints: without adj, CVODE stops at each (a stop time), is re-initialised there and
 * restart_hook runs; under CVodeF it integrates through them (CVODES re-runs the forward
 * problem between checkpoints with only the final stop time, so a re-initialisation or an
 * extra stop time would not be reproduced and the recomputed steps could overrun its
 * per-checkpoint storage; the gradient layer records piece by piece instead).  Numerical
 * failures become stats->reason; *k_done is the last observation reached. */
nde_status nde__cv_march(nde__cv *cv, int adj, int n_obs, const double *t_obs, double *Y,
                         nde_solve_stats *stats, int *k_done);
/* Fill the band matrix J with the block-diagonal Jacobian df/du at (t, u) from n batched JVPs
 * (transpose: the blocks of -df/du^T, the adjoint's Jacobian), t clamped by nde__cv_t.
 * Returns a translated code. */
int nde__cv_fill_band(nde__cv *cv, double t, const double *u, SUNMatrix J, int transpose);
/* The reason for a CVODE failure flag, or NDE_REASON_NONE with *st set for a hard error. */
nde_stop_reason nde__cv_reason(nde__cv *cv, int flag, nde_status *st);
/* Install the message-recording error handler on a CVODES memory (forward or backward). */
void nde__cv_quiet(nde__cv *cv, void *mem);

/* Consecutive steps that barely advance t (0.1 |h| <= eps |t|) before a solve stops with a
 * step-size underflow. */
#define NDE__CV_MAX_TINY_STEPS 10

#endif
