/* Butcher tableaux of the explicit Runge-Kutta methods and the registry that names them.
 * Euler (order 1); classic RK4 (Kutta 1901, order 4). */
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

static const nde__tableau tableaux[] = {
    {"euler", 1, 1, euler_A, euler_b, euler_c},
    {"rk4", 4, 4, rk4_A, rk4_b, rk4_c},
};

static const char *const method_names[] = {"euler", "rk4", NULL};

const nde__tableau *nde__tableau_lookup(const char *name) {
  if (!name) return NULL;
  for (size_t i = 0; i < sizeof tableaux / sizeof tableaux[0]; i++)
    if (strcmp(tableaux[i].name, name) == 0) return &tableaux[i];
  return NULL;
}

const char *const *nde_solver_method_names(void) { return method_names; }
