/* Internal interface of the nn layer shared between act.c and net.c. */
#ifndef NDE_NN_INTERNAL_H
#define NDE_NN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "nde/nn.h"

/* y = act(z) on n values.  z and y must not overlap. */
void nde__act_forward(nde_act a, size_t n, const double *z, double *y);

/* out = act'(z) * v elementwise (v == NULL means v = 1), given y = act(z) from the forward pass
 * so that tanh, rbf and relu need no transcendental call.  z is read only when
 * nde__act_needs_z(a) (it may be NULL otherwise).  No two of the arrays may overlap. */
void nde__act_dmul(nde_act a, size_t n, const double *z, const double *y, const double *v,
                   double *out);

/* d1 = act'(z) and d2 = act''(z) on n values, given y = act(z).  z is read for every activation
 * but identity, tanh and relu.  No two of the arrays may overlap. */
void nde__act_d12(nde_act a, size_t n, const double *z, const double *y, double *d1, double *d2);

/* Whether act' needs z besides y = act(z): false for identity, tanh and relu, whose derivative
 * is a function of y, so a network keeps only y for its reverse pass. */
bool nde__act_needs_z(nde_act a);

#endif
