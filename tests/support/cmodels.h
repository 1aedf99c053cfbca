/* Two right-hand sides written by hand against the C callback interface (include/nde/model.h):
 * the tests' references for the compiled .nde tape, and examples of embedding nde from C.
 *
 *   spiral:   dy/dt = NN(y^3),  NN = 2 -> 50 tanh -> 2  (torchdiffeq's ode_demo), n = 2
 *   LV UDE:   dx/dt = alpha x + U1(x, y), dy/dt = -delta y + U2(x, y),
 *             U = 2 -> 5 rbf -> 5 rbf -> 5 rbf -> 2 (87 parameters), alpha = 1.3, delta = 1.8
 *   mlp:      dy/dt = NN(y), NN = D -> H tanh -> H tanh -> D (the scaling benchmark)
 * theta is the network's parameter block (nn layout: per layer W then b).  Each table has a
 * clone (a fresh network and workspaces) and no per-series values. */
#ifndef NDE_TEST_CMODELS_H
#define NDE_TEST_CMODELS_H

#include "nde/model.h"
#include "nde/nn.h"

typedef struct nde_cmodel {
  nde_rhs *rhs;       /* owns the model context */
  const nde_net *net; /* borrowed view of the model's network, for initialisation */
  size_t n_theta;
} nde_cmodel;

nde_status nde_cmodel_spiral(int max_batch, nde_cmodel *out);
nde_status nde_cmodel_lv_ude(int max_batch, nde_cmodel *out);
nde_status nde_cmodel_mlp(int D, int H, int max_batch, nde_cmodel *out);
void nde_cmodel_destroy(nde_cmodel *m);

#define NDE_CMODEL_LV_ALPHA 1.3
#define NDE_CMODEL_LV_DELTA 1.8

#endif
