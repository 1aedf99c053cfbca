/* The method registry: every solver method with its public properties (order, adaptive,
 * implicit, symplectic, needs a separable split, dense output) and how it is run (a Butcher
 * tableau, a kick-drift composition, implicit midpoint, or CVODE).  Callers look methods up
 * here and read properties instead of comparing names.  Yoshida's triple jump: H. Yoshida,
 * "Construction of higher order symplectic integrators", Phys. Lett. A 150 (1990) 262-268
 * (the same scheme as E. Forest & R. D. Ruth, Physica D 43 (1990) 105-117). */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Stormer-Verlet, kick-drift-kick. */
static const nde__split leapfrog = {1, {0.5, 0.5}, {0.0, 1.0}};

/* Yoshida's triple jump of leapfrog, x1 = 1 / (2 - 2^(1/3)), x0 = 1 - 2 x1: drifts x1, x0, x1;
 * kicks x1/2, (x0 + x1)/2, (x0 + x1)/2, x1/2 (adjacent kicks of the three leapfrogs merged). */
#define YOSHIDA_X1 1.351207191959657634047687808971460827
#define YOSHIDA_X0 -1.702414383919315268095375617942921654
static const nde__split yoshida4 = {
    3,
    {0.675603595979828817023843904485730413, -0.175603595979828817023843904485730413,
     -0.175603595979828817023843904485730413, 0.675603595979828817023843904485730413},
    {0.0, YOSHIDA_X1, YOSHIDA_X0, YOSHIDA_X1}};
/* Its kicks read f at the drifts' running sums: t, t + x1 h, t + (x1 + x0) h = t - 0.35 h, t + h
 * (eval_lo and eval_hi below). */

/* One list generates the registry and its NULL-terminated name list:
 * X(name, description, order, adaptive, fixed_steps, variable_order, implicit, symplectic,
 *   needs_split, dense_output, family, tableau, split, cvode_bdf, eval_lo, eval_hi) */
#define NDE__METHODS(X)                                                                         \
  X("euler", "explicit Euler, order 1, fixed steps", 1, 0, 1, 0, 0, 0, 0, 0, NDE__FAM_ERK,     \
    "euler", NULL, 0, 0.0, 1.0)                                                                           \
  X("rk4", "classic Runge-Kutta, order 4, fixed steps", 4, 0, 1, 0, 0, 0, 0, 0, NDE__FAM_ERK,  \
    "rk4", NULL, 0, 0.0, 1.0)                                                                             \
  X("leapfrog",                                                                                 \
    "Stormer-Verlet kick-drift-kick, order 2, symplectic, fixed steps; needs q' = F(p), "       \
    "p' = G(q)",                                                                                \
    2, 0, 1, 0, 0, 1, 1, 0, NDE__FAM_SPLIT, NULL, &leapfrog, 0, 0.0, 1.0)                                 \
  X("yoshida4",                                                                                 \
    "Yoshida's triple jump of leapfrog, order 4, symplectic, fixed steps; needs q' = F(p), "    \
    "p' = G(q)",                                                                                \
    4, 0, 1, 0, 0, 1, 1, 0, NDE__FAM_SPLIT, NULL, &yoshida4, 0, YOSHIDA_X1 + YOSHIDA_X0, YOSHIDA_X1)                                 \
  X("implicit-midpoint",                                                                        \
    "implicit midpoint rule, order 2, symplectic, fixed steps, Newton iteration per step", 2,   \
    0, 1, 0, 1, 1, 0, 0, NDE__FAM_IMPLICIT, NULL, NULL, 0, 0.0, 1.0)                                      \
  X("dopri5", "Dormand-Prince 5(4), adaptive, dense output (fixed steps with fixed_step = 1)",  \
    5, 1, 1, 0, 0, 0, 0, 1, NDE__FAM_ERK, "dopri5", NULL, 0, 0.0, 1.0)                                    \
  X("cvode-adams",                                                                              \
    "SUNDIALS CVODE Adams-Moulton, orders 1-12, adaptive, for non-stiff problems", 12, 1, 0, 1, \
    1, 0, 0, 1, NDE__FAM_CVODE, NULL, NULL, 0, 0.0, 1.0)                                                  \
  X("cvode-bdf", "SUNDIALS CVODE BDF, orders 1-5, adaptive, for stiff problems (Newton)", 5, 1, \
    0, 1, 1, 0, 0, 1, NDE__FAM_CVODE, NULL, NULL, 1, 0.0, 1.0)

#define NDE__METHOD_ENTRY(name, desc, order, adaptive, fixed, varord, impl, sympl, split_,   \
                          dense, fam, tab, sp, bdf, lo, hi)                                   \
  {{name, desc, order, adaptive, fixed, varord, impl, sympl, split_, dense, lo, hi}, fam, tab,  \
   sp, bdf},
static const nde__method methods[] = {NDE__METHODS(NDE__METHOD_ENTRY)};
#undef NDE__METHOD_ENTRY
#define N_METHODS ((int)(sizeof methods / sizeof methods[0]))

#define NDE__METHOD_NAME(name, ...) name,
static const char *const method_names[] = {NDE__METHODS(NDE__METHOD_NAME) NULL};
#undef NDE__METHOD_NAME

int nde_solver_method_count(void) { return N_METHODS; }

const nde_solver_method_info *nde_solver_method_at(int i) {
  return i >= 0 && i < N_METHODS ? &methods[i].info : NULL;
}

const nde__method *nde__method_lookup(const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < N_METHODS; i++)
    if (strcmp(methods[i].info.name, name) == 0) return &methods[i];
  return NULL;
}

const nde_solver_method_info *nde_solver_method_find(const char *name) {
  const nde__method *m = nde__method_lookup(name);
  return m ? &m->info : NULL;
}

const char *const *nde_solver_method_names(void) { return method_names; }

void nde__names_phrase(const char *const *names, const char *last_word, char *buf, size_t len) {
  size_t k = 0, count = 0;
  while (names[count]) count++;
  if (len) buf[0] = 0;
  for (size_t i = 0; i < count && k + 1 < len; i++) {
    const char *sep = i == 0 ? "" : i + 1 == count ? " " : ", ";
    int w = snprintf(buf + k, len - k, "%s%s%s%s", sep, i + 1 == count && i ? last_word : "",
                     i + 1 == count && i ? " " : "", names[i]);
    if (w < 0) break;
    k += (size_t)w;
  }
}
