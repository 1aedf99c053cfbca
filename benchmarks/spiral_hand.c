/* The spiral problem's gradient by hand (see spiral_hand.h): RK4 forward storing each stage's
 * input u_i and hidden activations a_i = tanh(W1 u_i^3 + b1), then the discrete adjoint
 *   Kbar_4 = h/6 lam, Kbar_3 = h/3 lam + h Ubar_4, Kbar_2 = h/3 lam + h/2 Ubar_3,
 *   Kbar_1 = h/6 lam + h/2 Ubar_2,  Ubar_i = Kbar_i^T df/du(U_i),  lam += sum_i Ubar_i,
 * with thetabar += Kbar_i^T df/dtheta(U_i), in the same order of operations as the library so
 * that the two gradients agree to rounding. */
#include "spiral_hand.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(NDE_HAVE_LIBMVEC) && defined(__GNUC__) && defined(__x86_64__)
extern double expm1(double) __attribute__((__simd__("notinbranch")));
#endif

#define W SPIRAL_HAND_WIDTH

/* The network re-laid for the loops: columns of W1, rows of W2. */
typedef struct net {
  double c0[W], c1[W], b1[W], v0[W], v1[W], b2[2];
} net;

struct spiral_hand {
  int max_obs;
  double *U; /* (max_obs - 1) x 4 x 2 stage inputs */
  double *A; /* (max_obs - 1) x 4 x W hidden activations */
  double *Y; /* max_obs x 2 */
};

spiral_hand *spiral_hand_create(int max_obs) {
  if (max_obs < 2) return NULL;
  spiral_hand *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->max_obs = max_obs;
  const size_t steps = (size_t)max_obs - 1;
  s->U = malloc(steps * 4 * 2 * sizeof *s->U);
  s->A = malloc(steps * 4 * W * sizeof *s->A);
  s->Y = malloc((size_t)max_obs * 2 * sizeof *s->Y);
  if (!s->U || !s->A || !s->Y) spiral_hand_destroy(&s);
  return s;
}

void spiral_hand_destroy(spiral_hand **s) {
  if (!s || !*s) return;
  free((*s)->U);
  free((*s)->A);
  free((*s)->Y);
  free(*s);
  *s = NULL;
}

/* The library's tanh (src/nn/act.c). */
static inline double tanh_fast(double z) {
  double f = expm1(-2.0 * fabs(z));
  return copysign(-f / (2.0 + f), z);
}

/* k = NN(u^3); a receives the hidden activations. */
static inline void stage_f(const net *restrict p, const double *restrict u, double *restrict a,
                           double *restrict k) {
  const double x0 = u[0] * u[0] * u[0], x1 = u[1] * u[1] * u[1];
  double s0 = 0.0, s1 = 0.0;
#pragma omp simd reduction(+ : s0, s1)
  for (int j = 0; j < W; j++) {
    double aj = tanh_fast(p->b1[j] + p->c0[j] * x0 + p->c1[j] * x1);
    a[j] = aj;
    s0 += p->v0[j] * aj;
    s1 += p->v1[j] * aj;
  }
  k[0] = p->b2[0] + s0;
  k[1] = p->b2[1] + s1;
}

/* gu = kb^T df/du at u (a = the stored activations); g += kb^T df/dtheta. */
static inline void stage_vjp(const net *restrict p, const double *restrict u,
                             const double *restrict a, const double *restrict kb,
                             net *restrict g, double *restrict gu) {
  const double x0 = u[0] * u[0] * u[0], x1 = u[1] * u[1] * u[1];
  const double k0 = kb[0], k1 = kb[1];
  g->b2[0] += k0;
  g->b2[1] += k1;
  double s0 = 0.0, s1 = 0.0;
#pragma omp simd reduction(+ : s0, s1)
  for (int j = 0; j < W; j++) {
    const double aj = a[j];
    g->v0[j] += k0 * aj;
    g->v1[j] += k1 * aj;
    const double dz = (k0 * p->v0[j] + k1 * p->v1[j]) * ((1.0 - aj) * (1.0 + aj));
    g->b1[j] += dz;
    g->c0[j] += dz * x0;
    g->c1[j] += dz * x1;
    s0 += dz * p->c0[j];
    s1 += dz * p->c1[j];
  }
  gu[0] = s0 * 3.0 * u[0] * u[0];
  gu[1] = s1 * 3.0 * u[1] * u[1];
}

double spiral_hand_grad(spiral_hand *s, const double *theta, const double y0[2], int n_obs,
                        const double *t_obs, const double *obs, double *gtheta) {
  if (!s || n_obs < 2 || n_obs > s->max_obs) return NAN;
  net p, g;
  for (int j = 0; j < W; j++) {
    p.c0[j] = theta[2 * j];
    p.c1[j] = theta[2 * j + 1];
    p.b1[j] = theta[100 + j];
    p.v0[j] = theta[150 + j];
    p.v1[j] = theta[200 + j];
  }
  p.b2[0] = theta[250];
  p.b2[1] = theta[251];
  memset(&g, 0, sizeof g);

  const double b16 = 1.0 / 6.0, b13 = 1.0 / 3.0;
  double u[2] = {y0[0], y0[1]};
  double *restrict Y = s->Y;
  Y[0] = u[0];
  Y[1] = u[1];
  for (int st = 0; st + 1 < n_obs; st++) {
    const double h = t_obs[st + 1] - t_obs[st];
    double *restrict U = s->U + (size_t)st * 8;
    double *restrict A = s->A + (size_t)st * 4 * W;
    double K[4][2];
    U[0] = u[0];
    U[1] = u[1];
    stage_f(&p, U, A, K[0]);
    U[2] = u[0] + (h * 0.5) * K[0][0];
    U[3] = u[1] + (h * 0.5) * K[0][1];
    stage_f(&p, U + 2, A + W, K[1]);
    U[4] = u[0] + (h * 0.5) * K[1][0];
    U[5] = u[1] + (h * 0.5) * K[1][1];
    stage_f(&p, U + 4, A + 2 * W, K[2]);
    U[6] = u[0] + h * K[2][0];
    U[7] = u[1] + h * K[2][1];
    stage_f(&p, U + 6, A + 3 * W, K[3]);
    for (int i = 0; i < 2; i++) {
      double inc = (h * b16) * K[0][i];
      inc += (h * b13) * K[1][i];
      inc += (h * b13) * K[2][i];
      inc += (h * b16) * K[3][i];
      u[i] += inc;
    }
    Y[2 * st + 2] = u[0];
    Y[2 * st + 3] = u[1];
  }

  /* Mean squared error over every entry (t_0 included). */
  const double scale = 1.0 / (2.0 * n_obs);
  double sum = 0.0;
  for (int q = 0; q < 2 * n_obs; q++) {
    const double r = Y[q] - obs[q];
    sum += r * r;
  }

  double lam[2] = {0.0, 0.0};
  for (int st = n_obs - 2; st >= 0; st--) {
    const double h = t_obs[st + 1] - t_obs[st];
    const double *restrict U = s->U + (size_t)st * 8;
    const double *restrict A = s->A + (size_t)st * 4 * W;
    lam[0] += scale * 2.0 * (Y[2 * st + 2] - obs[2 * st + 2]);
    lam[1] += scale * 2.0 * (Y[2 * st + 3] - obs[2 * st + 3]);
    double Ub[4][2], Kb[2];
    Kb[0] = (h * b16) * lam[0];
    Kb[1] = (h * b16) * lam[1];
    stage_vjp(&p, U + 6, A + 3 * W, Kb, &g, Ub[3]);
    Kb[0] = (h * b13) * lam[0] + h * Ub[3][0];
    Kb[1] = (h * b13) * lam[1] + h * Ub[3][1];
    stage_vjp(&p, U + 4, A + 2 * W, Kb, &g, Ub[2]);
    Kb[0] = (h * b13) * lam[0] + (h * 0.5) * Ub[2][0];
    Kb[1] = (h * b13) * lam[1] + (h * 0.5) * Ub[2][1];
    stage_vjp(&p, U + 2, A + W, Kb, &g, Ub[1]);
    Kb[0] = (h * b16) * lam[0] + (h * 0.5) * Ub[1][0];
    Kb[1] = (h * b16) * lam[1] + (h * 0.5) * Ub[1][1];
    stage_vjp(&p, U, A, Kb, &g, Ub[0]);
    for (int m = 0; m < 4; m++) {
      lam[0] += Ub[m][0];
      lam[1] += Ub[m][1];
    }
  }

  for (int j = 0; j < W; j++) {
    gtheta[2 * j] = g.c0[j];
    gtheta[2 * j + 1] = g.c1[j];
    gtheta[100 + j] = g.b1[j];
    gtheta[150 + j] = g.v0[j];
    gtheta[200 + j] = g.v1[j];
  }
  gtheta[250] = g.b2[0];
  gtheta[251] = g.b2[1];
  return scale * sum;
}
