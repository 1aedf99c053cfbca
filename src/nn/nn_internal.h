/* Internal interface of the nn layer shared between act.c and net.c. */
#ifndef NDE_NN_INTERNAL_H
#define NDE_NN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <math.h>

#include "nde/nn.h"

/* With glibc on x86-64 the activation loops call the vector variants of exp, expm1 and log1p
 * from libmvec (glibc declares them itself only under -ffast-math).  Their accuracy is a few
 * ulp, the same class as the scalar libm functions. */
#if defined(NDE_HAVE_LIBMVEC) && defined(__GNUC__) && defined(__x86_64__)
extern double exp(double) __attribute__((__simd__("notinbranch")));
extern double expm1(double) __attribute__((__simd__("notinbranch")));
extern double log1p(double) __attribute__((__simd__("notinbranch")));
#endif

/* tanh(z) = sign(z) * (-f / (2 + f)) with f = expm1(-2|z|) in (-1, 0]: never overflows, keeps
 * full relative accuracy near 0, and vectorises through libmvec's expm1 (about 1.3x faster than
 * libmvec's tanh and 3x faster than scalar tanh here).  Measured maximum relative error against
 * long double tanhl: 4.4e-16 (tests/nn/test_act.c checks it). */
static inline double nde__tanh(double z) {
  double f = expm1(-2.0 * fabs(z));
  return copysign(-f / (2.0 + f), z);
}

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
