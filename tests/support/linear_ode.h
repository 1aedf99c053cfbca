/* The solver tests' problem with a known solution: du/dt = a u + c cos(t), theta = (a, c), one
 * state per batch row, through the right-hand-side interface (f and VJP; no JVP). */
#ifndef NDE_TEST_LINEAR_ODE_H
#define NDE_TEST_LINEAR_ODE_H

#include "nde/model.h"

extern const nde_rhs_ops nde_test_linear_ops;
/* High-entropy parameters and three initial states used by the tests. */
extern const double nde_test_linear_theta[2];
extern const double nde_test_linear_u0[3];

/* The problem as a right-hand side for batches of up to max_batch rows, or NULL when it cannot
 * be created; release with nde_rhs_destroy. */
nde_rhs *nde_test_linear_rhs(int max_batch);

/* The exact solution at t from u(t0) = u0 for theta. */
double nde_test_linear_exact(const double *theta, double t0, double u0, double t);

#endif
