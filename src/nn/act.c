/* Elementwise activations and their first and second derivatives: identity, tanh, relu,
 * softplus = log(1 + e^z), sigmoid = 1 / (1 + e^-z), gelu = z/2 (1 + tanh(sqrt(2/pi) (z + 0.044715
 * z^3))) (Hendrycks & Gimpel 2016, tanh form), rbf = exp(-z^2).  Loops are written branch-free so
 * gcc vectorises them. */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "nn_internal.h"

#define GELU_C 0.7978845608028654 /* sqrt(2 / pi) */
#define GELU_K 0.044715

static const char *const act_names[NDE_ACT_COUNT] = {
    [NDE_ACT_IDENTITY] = "identity", [NDE_ACT_TANH] = "tanh",       [NDE_ACT_RELU] = "relu",
    [NDE_ACT_SOFTPLUS] = "softplus", [NDE_ACT_SIGMOID] = "sigmoid", [NDE_ACT_GELU] = "gelu",
    [NDE_ACT_RBF] = "rbf"};

const char *nde_act_name(nde_act a) {
  if ((int)a < 0 || a >= NDE_ACT_COUNT) return NULL;
  return act_names[a];
}

nde_status nde_act_from_name(const char *name, nde_act *out) {
  if (!name || !out) return NDE_ERR_ARG;
  for (int a = 0; a < NDE_ACT_COUNT; a++) {
    if (strcmp(name, act_names[a]) == 0) {
      *out = (nde_act)a;
      return NDE_OK;
    }
  }
  return NDE_ERR_ARG;
}

void nde__act_forward(nde_act a, size_t n, const double *restrict z, double *restrict y) {
  switch (a) {
    case NDE_ACT_IDENTITY:
      memcpy(y, z, n * sizeof *y);
      break;
    case NDE_ACT_TANH:
#pragma omp simd
      for (size_t i = 0; i < n; i++) y[i] = nde__tanh(z[i]);
      break;
    case NDE_ACT_RELU:
      /* z < 0 rather than fmax so that NaN propagates. */
#pragma omp simd
      for (size_t i = 0; i < n; i++) y[i] = z[i] < 0.0 ? 0.0 : z[i];
      break;
    case NDE_ACT_SOFTPLUS:
      /* max(z, 0) + log1p(e^-|z|): the exponent is never positive. */
#pragma omp simd
      for (size_t i = 0; i < n; i++)
        y[i] = 0.5 * z[i] + 0.5 * fabs(z[i]) + log1p(exp(-fabs(z[i])));
      break;
    case NDE_ACT_SIGMOID:
      /* e^-z may overflow to inf for z < -709, giving the correct limit 0. */
#pragma omp simd
      for (size_t i = 0; i < n; i++) y[i] = 1.0 / (1.0 + exp(-z[i]));
      break;
    case NDE_ACT_GELU:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        double x = z[i];
        y[i] = 0.5 * x * (1.0 + nde__tanh(GELU_C * (x + GELU_K * x * x * x)));
      }
      break;
    case NDE_ACT_RBF:
#pragma omp simd
      for (size_t i = 0; i < n; i++) y[i] = exp(-z[i] * z[i]);
      break;
    default:
      break;
  }
}

/* sigma' = e / (1 + e)^2 with e = e^-|z| (sigma' is even): accurate in both tails, where
 * y (1 - y) would lose all relative accuracy. */
static inline double sigmoid_deriv(double z) {
  double e = exp(-fabs(z));
  return e / ((1.0 + e) * (1.0 + e));
}

/* gelu' = (1 + t) / 2 + z/2 (1 - t^2) sqrt(2/pi) (1 + 3 k z^2), t = tanh(sqrt(2/pi)(z + k z^3)). */
static inline double gelu_deriv(double z) {
  double t = nde__tanh(GELU_C * (z + GELU_K * z * z * z));
  return 0.5 * (1.0 + t) + 0.5 * z * ((1.0 - t) * (1.0 + t)) * GELU_C * (1.0 + 3.0 * GELU_K * z * z);
}

/* One loop per activation, with and without the multiplier v. */
#define DMUL_LOOP(expr)                                                 \
  do {                                                                  \
    if (v) {                                                            \
      _Pragma("omp simd") for (size_t i = 0; i < n; i++) {              \
        out[i] = v[i] * (expr);                                         \
      }                                                                 \
    } else {                                                            \
      _Pragma("omp simd") for (size_t i = 0; i < n; i++) out[i] = expr; \
    }                                                                   \
  } while (0)

void nde__act_dmul(nde_act a, size_t n, const double *restrict z, const double *restrict y,
                   const double *restrict v, double *restrict out) {
  switch (a) {
    case NDE_ACT_IDENTITY:
      if (v)
        memcpy(out, v, n * sizeof *out);
      else
        for (size_t i = 0; i < n; i++) out[i] = 1.0;
      break;
    case NDE_ACT_TANH:
      /* 1 - y^2 as (1 - y)(1 + y): 1 - y is exact for |y| >= 1/2. */
      DMUL_LOOP((1.0 - y[i]) * (1.0 + y[i]));
      break;
    case NDE_ACT_RELU:
      /* y > 0 exactly when z > 0 (NaN and -0 included). */
      DMUL_LOOP(y[i] > 0.0 ? 1.0 : 0.0);
      break;
    case NDE_ACT_SOFTPLUS:
      DMUL_LOOP(1.0 / (1.0 + exp(-z[i])));
      break;
    case NDE_ACT_SIGMOID:
      DMUL_LOOP(sigmoid_deriv(z[i]));
      break;
    case NDE_ACT_GELU:
      DMUL_LOOP(gelu_deriv(z[i]));
      break;
    case NDE_ACT_RBF:
      DMUL_LOOP(-2.0 * z[i] * y[i]);
      break;
    default:
      break;
  }
}

/* Second derivatives, each written so that it keeps its relative accuracy in the tails:
 *   tanh''     = -2 y (1 - y^2)
 *   softplus'' = sigmoid' = e / (1 + e)^2,             e = e^-|z|
 *   sigmoid''  = sigmoid' (1 - 2 sigmoid) = sigmoid' * (-sign(z)) (1 - e) / (1 + e),
 *                with 1 - e = -expm1(-|z|) exact near z = 0
 *   gelu''     = (1 - t^2) (u' - z t u'^2 + z u'' / 2),  u = sqrt(2/pi) (z + k z^3), t = tanh(u)
 *   rbf''      = (4 z^2 - 2) y
 *   relu''     = 0 (everywhere but the kink, where it does not exist). */
static inline void gelu_deriv12(double z, double *d1, double *d2) {
  /* 1 - t^2 = 4 e / (2 + f)^2 with f = expm1(-2|u|), e = exp(-2|u|): (1 - t)(1 + t) would
   * lose the relative accuracy of gelu'' where t is near +-1.  Where it underflows to 0 the
   * bracket may be inf - inf; gelu'' is then 0 (NaN still propagates). */
  double u = GELU_C * (z + GELU_K * z * z * z);
  double f = expm1(-2.0 * fabs(u)), e = exp(-2.0 * fabs(u)), t = copysign(-f / (2.0 + f), u);
  double u1 = GELU_C * (1.0 + 3.0 * GELU_K * z * z), u2 = 6.0 * GELU_C * GELU_K * z;
  double s = 4.0 * e / ((2.0 + f) * (2.0 + f));
  *d1 = gelu_deriv(z);
  *d2 = s == 0.0 ? 0.0 : s * (u1 - z * t * u1 * u1 + 0.5 * z * u2);
}

void nde__act_d12(nde_act a, size_t n, const double *restrict z, const double *restrict y,
                  double *restrict d1, double *restrict d2) {
  switch (a) {
    case NDE_ACT_IDENTITY:
      for (size_t i = 0; i < n; i++) d1[i] = 1.0, d2[i] = 0.0;
      break;
    case NDE_ACT_TANH:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        double s = (1.0 - y[i]) * (1.0 + y[i]);
        d1[i] = s;
        d2[i] = -2.0 * y[i] * s;
      }
      break;
    case NDE_ACT_RELU:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        d1[i] = y[i] > 0.0 ? 1.0 : 0.0;
        d2[i] = 0.0;
      }
      break;
    case NDE_ACT_SOFTPLUS:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        d1[i] = 1.0 / (1.0 + exp(-z[i]));
        d2[i] = sigmoid_deriv(z[i]);
      }
      break;
    case NDE_ACT_SIGMOID:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        double e = exp(-fabs(z[i])), m = expm1(-fabs(z[i]));
        double s = e / ((1.0 + e) * (1.0 + e));
        d1[i] = s;
        d2[i] = s * copysign(-m / (1.0 + e), -z[i]);
      }
      break;
    case NDE_ACT_GELU:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        double a1, a2;
        gelu_deriv12(z[i], &a1, &a2);
        d1[i] = a1;
        d2[i] = a2;
      }
      break;
    case NDE_ACT_RBF:
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        d1[i] = -2.0 * z[i] * y[i];
        /* 4 z (z y) - 2 y rather than (4 z^2 - 2) y: z^2 may overflow where y is already 0. */
        d2[i] = 4.0 * z[i] * (z[i] * y[i]) - 2.0 * y[i];
      }
      break;
    default:
      break;
  }
}

/* relu'' is zero wherever it exists: a gradient field built from relu is piecewise constant and its
 * derivatives say nothing about the function, so second-order passes refuse it. */
int nde_act_allows_second_order(nde_act a) {
  return (int)a >= 0 && a < NDE_ACT_COUNT && a != NDE_ACT_RELU;
}

bool nde__act_needs_z(nde_act a) {
  return a == NDE_ACT_SOFTPLUS || a == NDE_ACT_SIGMOID || a == NDE_ACT_GELU || a == NDE_ACT_RBF;
}

void nde_act_eval(nde_act a, size_t n, const double *z, double *y, double *dy) {
  if (!z || !y || (int)a < 0 || a >= NDE_ACT_COUNT) return;
  nde__act_forward(a, n, z, y);
  if (dy) nde__act_dmul(a, n, z, y, NULL, dy);
}

void nde_act_eval2(nde_act a, size_t n, const double *z, double *y, double *dy, double *d2y) {
  if (!z || !y || !dy || !d2y || (int)a < 0 || a >= NDE_ACT_COUNT) return;
  nde__act_forward(a, n, z, y);
  nde__act_d12(a, n, z, y, dy, d2y);
}
