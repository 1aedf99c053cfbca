/* Overflow-checked size arithmetic and allocation helpers. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

bool nde__mul_size(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return false;
  *out = a * b;
  return true;
}

bool nde__add_size(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a) return false;
  *out = a + b;
  return true;
}

double *nde__dalloc(size_t n) {
  if (n == 0) n = 1;
  if (n > SIZE_MAX / sizeof(double)) return NULL;
  return calloc(n, sizeof(double));
}
