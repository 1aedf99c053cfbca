/* A gradient written by hand for exactly one problem, the overhead benchmark's reference: the
 * spiral neural ODE dy/dt = NN(y^3), NN = 2 -> 50 tanh -> 2, one trajectory, classic RK4 with
 * one step per observation interval, MSE over all observations (t_0 included), and the discrete
 * adjoint of the RK4 steps.  No ops tables, no batches, no generality: fixed sizes.
 *
 * theta uses the nn layer's layout: W1 (50 x 2, row-major), b1 (50), W2 (2 x 50), b2 (2).
 * tanh is the library's formula, sign(z) * (-f / (2 + f)) with f = expm1(-2|z|), vectorised
 * through libmvec when available, so that both sides pay the same for it. */
#ifndef NDE_BENCH_SPIRAL_HAND_H
#define NDE_BENCH_SPIRAL_HAND_H

#define SPIRAL_HAND_WIDTH 50
#define SPIRAL_HAND_N_THETA (50 * 2 + 50 + 2 * 50 + 2)

typedef struct spiral_hand spiral_hand;

/* Storage for a trajectory of up to max_obs observation times; NULL when out of memory. */
spiral_hand *spiral_hand_create(int max_obs);
void spiral_hand_destroy(spiral_hand **s);

/* Loss L = mean over k, i of (Y_ki - obs_ki)^2 and gtheta = dL/dtheta (overwritten), starting
 * from y0 at t_obs[0] through n_obs times (2 <= n_obs <= max_obs).  obs is n_obs x 2.  Returns L. */
double spiral_hand_grad(spiral_hand *s, const double *theta, const double y0[2], int n_obs,
                        const double *t_obs, const double *obs, double *gtheta);

#endif
