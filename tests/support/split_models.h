/* Right-hand sides with a structural dependency matrix (nde_rhs_info.dep), written against the
 * C callback interface, for the structure-preserving integrators and the solver conformance
 * suites:
 *
 *   oscillator  q' = a p,  p' = -b q + c cos(t);  theta = (a, b, c), state (q, p).  A known
 *               solution (nde_test_oscillator_exact); c = 0 is the harmonic oscillator with the
 *               quadratic invariant b q^2 + a p^2.
 *   pendulum    q' = p,  p' = -g sin(q);  theta = (g), state (q, p); H = p^2/2 - g cos q.
 *   nlsplit     a nonlinear separable system, the components interleaved (q1, p1, q2, p2):
 *                 q1' = th0 p1 + th1 tanh(p2)          q2' = p2 (1 + th2 p1)
 *                 p1' = -th3 sin(q1) + th4 q2 + th7 H(t - t_jump)
 *                 p2' = -th5 q2^3 + th4 q1 + th6 cos(1.3 t)
 *               theta = th0..th7.  H is the right-continuous unit step (1 for t >= t_jump),
 *               switched on by ctx->jump: a step input for the breakpoint tests.  Its VJP
 *               (and JVP) can be made to fail at t <= ctx->fail_t, for the failure tests.
 *   damped      q' = p,  p' = -q - th0 p: not separable (f[1] depends on u[1]).
 * Each has f, VJP and JVP; batches of any size up to max_batch. */
#ifndef NDE_TEST_SPLIT_MODELS_H
#define NDE_TEST_SPLIT_MODELS_H

#include "nde/model.h"

/* How nlsplit's VJP (and, with fail_jvp, its JVP) fails: at every t <= fail_t. */
typedef enum {
  NDE_TEST_FAIL_NONE = 0,
  NDE_TEST_FAIL_RECOVERABLE, /* return 1 */
  NDE_TEST_FAIL_NAN,         /* the VJP writes NaN into its cotangents (the JVP into JV) */
  NDE_TEST_FAIL_FATAL        /* return -3 */
} nde_test_fail;

typedef struct nde_test_nlsplit {
  int jump;      /* the step input th7 H(t - t_jump) is on */
  double t_jump;
  int no_forcing; /* drop th6 cos(1.3 t): f depends on t only through the step input */
  nde_test_fail fail;
  double fail_t;
  int fail_jvp; /* the JVP fails as the VJP does (else it never fails) */
} nde_test_nlsplit;

/* Create the rhs (ctx borrowed: it must outlive the rhs; NULL for nlsplit means no jump, no
 * failure).  n_theta: 3, 1, 8, 1. */
nde_status nde_test_oscillator(int max_batch, nde_rhs **out);
nde_status nde_test_pendulum(int max_batch, nde_rhs **out);
nde_status nde_test_nlsplit_rhs(nde_test_nlsplit *ctx, int max_batch, nde_rhs **out);
nde_status nde_test_damped(int max_batch, nde_rhs **out);

/* The oscillator's solution at t from (q0, p0) at t0 for theta (a b != 1). */
void nde_test_oscillator_exact(const double *theta, double t0, double q0, double p0, double t,
                               double *q, double *p);

/* High-entropy parameters of nlsplit (8 values) and 2 initial rows of it (2 x 4). */
extern const double nde_test_nlsplit_theta[8];
extern const double nde_test_nlsplit_u0[8];

#endif
