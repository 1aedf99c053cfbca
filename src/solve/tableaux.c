/* Butcher tableaux of the explicit Runge-Kutta methods (the method registry, methods.c, names
 * them).  Euler (order 1); classic RK4 (Kutta 1901, order 4); Dormand-Prince 5(4) with its
 * embedded 4th-order estimate, first-same-as-last stage and 4th-order continuous extension
 * (Dormand & Prince 1980; Hairer, Norsett & Wanner, Solving ODEs I, 2nd ed., sec. II.5-II.6). */
#include <string.h>

#include "internal.h"

static const double euler_A[] = {0.0};
static const double euler_b[] = {1.0};
static const double euler_c[] = {0.0};

static const double rk4_A[] = {
    0.0, 0.0, 0.0, 0.0,  //
    0.5, 0.0, 0.0, 0.0,  //
    0.0, 0.5, 0.0, 0.0,  //
    0.0, 0.0, 1.0, 0.0,
};
static const double rk4_b[] = {1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0};
static const double rk4_c[] = {0.0, 0.5, 0.5, 1.0};

/* Dormand-Prince 5(4).  Row 7 of A equals b (FSAL): stage 7 is f at the new state. */
static const double dp_A[] = {
    0, 0, 0, 0, 0, 0, 0,                                                                  //
    1.0 / 5, 0, 0, 0, 0, 0, 0,                                                            //
    3.0 / 40, 9.0 / 40, 0, 0, 0, 0, 0,                                                    //
    44.0 / 45, -56.0 / 15, 32.0 / 9, 0, 0, 0, 0,                                          //
    19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729, 0, 0, 0,               //
    9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656, 0, 0,        //
    35.0 / 384, 0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84, 0,
};
static const double dp_b[] = {35.0 / 384,     0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784,
                              11.0 / 84,      0};
static const double dp_c[] = {0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
/* e = b - bhat (5th minus embedded 4th order weights). */
static const double dp_e[] = {71.0 / 57600,      0, -71.0 / 16695, 71.0 / 1920, -17253.0 / 339200,
                              22.0 / 525,        -1.0 / 40};
/* Hairer's dense-output coefficients d_i (CONTD5). */
static const double dp_d[] = {-12715105075.0 / 11282082432.0, 0, 87487479700.0 / 32700410799.0,
                              -10690763975.0 / 1880347072.0, 701980252875.0 / 199316789632.0,
                              -1453857185.0 / 822651844.0, 69997945.0 / 29380423.0};

/* Hairer's continuous extension, y(t_n + th h) = y_n + th r2 + th(1-th) r3 + th^2(1-th) r4
 * + th^2(1-th)^2 r5 with r2 = h sum b_i K_i, r3 = h K_1 - r2, r4 = 2 r2 - h K_1 - h K_7,
 * r5 = h sum d_i K_i, written as y_n + h sum_i bth_i K_i. */
static void dp_dense(double th, double *bth) {
  const double p2 = th, p3 = th * (1 - th), p4 = th * th * (1 - th), p5 = p3 * p3;
  for (int i = 0; i < 7; i++) bth[i] = (p2 - p3 + 2 * p4) * dp_b[i] + p5 * dp_d[i];
  bth[0] += p3 - p4;
  bth[6] -= p4;
}

static const nde__tableau tableaux[] = {
    {"euler", 1, 1, euler_A, euler_b, euler_c, NULL, 0, 0, NULL, NULL},
    {"rk4", 4, 4, rk4_A, rk4_b, rk4_c, NULL, 0, 0, NULL, NULL},
    {"dopri5", 7, 5, dp_A, dp_b, dp_c, dp_e, 4, 1, dp_d, dp_dense},
};

const nde__tableau *nde__tableau_lookup(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < sizeof tableaux / sizeof tableaux[0]; i++)
    if (strcmp(tableaux[i].name, name) == 0) return &tableaux[i];
  return NULL;
}


void nde__erk_plan_init(nde__erk_plan *p, const nde__tableau *tab, int ns) {
  const int s = tab->s;
  memset(p, 0, sizeof *p);
  p->ns = ns;
  for (int i = 0; i < s; i++)
    for (int j = 0; j < i; j++)
      if (tab->A[i * s + j] != 0.0) p->aj[i][p->na[i]++] = (unsigned char)j;
  for (int j = 0; j < s; j++)
    if (tab->b[j] != 0.0) p->bj[p->nb++] = (unsigned char)j;
  for (int i = 0; i < ns; i++) {
    for (int m = i + 1; m < ns; m++)
      if (tab->A[m * s + i] != 0.0) p->cm[i][p->nc[i]++] = (unsigned char)m;
    p->live[i] = tab->b[i] != 0.0 || p->nc[i] > 0;
  }
}
