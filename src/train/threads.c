/* The thread policy of a fit: how many threads nde runs by default, and OpenBLAS kept to one
 * thread while nde's own threads share the cores (two levels of threads on the same cores were
 * measured 2.6-3.6x slower: /work/shared/PERFORMANCE-NOTES.md, docs/scaling.md). */
#include <cblas.h>
#include <pthread.h>
#include <unistd.h>

#include "internal.h"

int nde_comm_default_threads(const nde_comm *c) {
  /* A process bound to fewer cores than the machine has (mpirun --bind-to, taskset) was given
   * its share already; otherwise the ranks on this machine share its cores. */
  const int avail = nde_cpu_count();
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0 && avail < online) return avail;
  const int per_rank = avail / nde_comm_local_size(c);
  return per_rank >= 1 ? per_rank : 1;
}

int nde__blas_threads(void) { return openblas_get_num_threads(); }

int nde__blas_set_threads(int n) {
  const int prev = openblas_get_num_threads();
  if (n >= 1 && n != prev) openblas_set_num_threads(n);
  return prev;
}

/* OpenBLAS's thread count is one setting for the whole process, while problems (ensemble
 * members on worker threads) come and go concurrently: the first holder sets one thread and
 * saves the count it found, the last one restores it. */
static pthread_mutex_t blas_mu = PTHREAD_MUTEX_INITIALIZER;
static int blas_holders, blas_saved;

void nde__blas_hold_one(void) {
  pthread_mutex_lock(&blas_mu);
  if (blas_holders++ == 0) blas_saved = nde__blas_set_threads(1);
  pthread_mutex_unlock(&blas_mu);
}

void nde__blas_release(void) {
  pthread_mutex_lock(&blas_mu);
  if (blas_holders > 0 && --blas_holders == 0 && blas_saved > 0)
    nde__blas_set_threads(blas_saved);
  pthread_mutex_unlock(&blas_mu);
}
