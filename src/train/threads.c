/* The thread policy of a fit: how many threads nde runs by default, and OpenBLAS kept to one
 * thread while nde's own threads share the cores (two levels of threads on the same cores were
 * measured 2.6-3.6x slower: /work/shared/PERFORMANCE-NOTES.md, docs/scaling.md). */
#include <cblas.h>

#include "internal.h"

int nde_comm_default_threads(const nde_comm *c) {
  const int per_rank = nde_cpu_count() / nde_comm_local_size(c);
  return per_rank >= 1 ? per_rank : 1;
}

int nde__blas_threads(void) { return openblas_get_num_threads(); }

int nde__blas_set_threads(int n) {
  const int prev = openblas_get_num_threads();
  if (n >= 1 && n != prev) openblas_set_num_threads(n);
  return prev;
}
