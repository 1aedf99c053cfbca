/* A Hamiltonian neural network (Greydanus et al. 2019) written by hand against the C callback
 * interface (include/nde/model.h), using the nn layer's forward-over-reverse pass: the reference
 * that the language's grad() is checked against.
 *
 *   state u = (q, p), q and p of d components each (n = 2d)
 *   H = net: 2d -> h act -> h act -> 1 (identity output), theta = the net's parameter block
 *   f(u)   = (dH/dp, -dH/dq) = S grad H,  S = [[0, I], [-I, 0]]
 *   VJP    L^T df/du = Hess H w and L^T df/dtheta = grad_theta (w . grad_u H), w = S^T L
 *          = (-L_p, L_q): the tangent outputs of nde_net_vjp_tangent along Xdot = w, dY = 1
 *   JVP    df/du V + df/dtheta Vtheta = S (tangent of grad H along (V, Vtheta))
 *
 * For comparisons, a plain network right-hand side of the same size, du/dt = N(u) with
 * N = 2d -> h act -> h act -> 2d (identity output), VJP from the forward cache. */
#ifndef NDE_TEST_HNN_H
#define NDE_TEST_HNN_H

#include "cmodels.h"

/* The HNN above on batches of up to max_batch rows; d >= 1, hidden >= 1, act one that
 * nde_act_allows_second_order accepts (NDE_ERR_UNSUPPORTED otherwise).  Destroy with
 * nde_cmodel_destroy.  Callbacks return 0, or -1 when the pass refuses its arguments. */
nde_status nde_hnn_create(int d, int hidden, nde_act act, int max_batch, nde_cmodel *out);

/* The plain network right-hand side of the same size (any activation). */
nde_status nde_hnn_plain_create(int d, int hidden, nde_act act, int max_batch, nde_cmodel *out);

#endif
