/* A pool of threads that run the items of a loop, each thread taking the next item not yet taken
 * (dynamic scheduling), the caller's thread included.  Results are combined by the caller in item
 * order, so they do not depend on the number of threads or on timing.  POSIX threads; one mutex
 * and two condition variables (a run starts, a run ends). */
#define _GNU_SOURCE /* sched_getaffinity */
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct nde_pool {
  int n;               /* threads, the caller's included */
  pthread_t *threads;  /* n - 1 started threads */
  int n_started;
  pthread_mutex_t mu;
  pthread_cond_t start_cv, done_cv;
  unsigned long gen;   /* number of runs started (workers wait for it to change) */
  int quit;
  int open;            /* the current run takes helpers (until the caller is done with its share) */
  int active;          /* helpers in the current run */
  /* the current run */
  nde_pool_fn fn;
  void *ctx;
  long n_items;
  atomic_long next;    /* the next item to take */
  atomic_int failed;   /* an item failed: take no more */
  long fail_item;      /* the lowest failed item (under mu) and its value */
  int fail_rc;
};

typedef struct worker_arg {
  nde_pool *p;
  int id;
} worker_arg;

int nde_cpu_count(void) {
#ifdef CPU_COUNT
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int c = CPU_COUNT(&set);
    if (c >= 1) return c;
  }
#endif
  const long c = sysconf(_SC_NPROCESSORS_ONLN);
  return c >= 1 && c <= INT_MAX ? (int)c : 1;
}

int nde_pool_size(const nde_pool *p) { return p ? p->n : 1; }

/* Take items until none is left or one failed. */
static void work(nde_pool *p, int id) {
  for (;;) {
    if (atomic_load_explicit(&p->failed, memory_order_relaxed)) return;
    const long i = atomic_fetch_add(&p->next, 1);
    if (i >= p->n_items) return;
    const int rc = p->fn(p->ctx, id, i);
    if (rc) {
      pthread_mutex_lock(&p->mu);
      if (i < p->fail_item) {
        p->fail_item = i;
        p->fail_rc = rc;
      }
      pthread_mutex_unlock(&p->mu);
      atomic_store(&p->failed, 1);
    }
  }
}

/* A helper joins a run only while it is open: one that wakes after the caller finished its
 * share (small runs) leaves the run alone, so the caller never waits for a thread to wake up. */
static void *worker_main(void *arg) {
  worker_arg *wa = arg;
  nde_pool *p = wa->p;
  const int id = wa->id;
  free(wa);
  unsigned long seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (p->gen == seen && !p->quit) pthread_cond_wait(&p->start_cv, &p->mu);
    if (p->quit) break;
    seen = p->gen;
    if (!p->open) continue;
    p->active++;
    pthread_mutex_unlock(&p->mu);
    work(p, id);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_signal(&p->done_cv);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

void nde_pool_destroy(nde_pool **pp) {
  if (!pp || !*pp) return;
  nde_pool *p = *pp;
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->start_cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->start_cv);
  pthread_cond_destroy(&p->done_cv);
  pthread_mutex_destroy(&p->mu);
  free(p->threads);
  free(p);
  *pp = NULL;
}

nde_status nde_pool_create(int n_threads, nde_pool **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_pool_create: no output pointer");
  *out = NULL;
  if (n_threads < 0 || n_threads > NDE_POOL_MAX_THREADS)
    return nde__fail(err, NDE_ERR_ARG, "a pool has 0 (the cores available) to %d threads (got %d)",
                     NDE_POOL_MAX_THREADS, n_threads);
  if (n_threads == 0) n_threads = nde_cpu_count();
  if (n_threads > NDE_POOL_MAX_THREADS) n_threads = NDE_POOL_MAX_THREADS;
  nde_pool *p = calloc(1, sizeof *p);
  if (!p) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating a pool of %d threads",
                           n_threads);
  p->n = n_threads;
  if (pthread_mutex_init(&p->mu, NULL) || pthread_cond_init(&p->start_cv, NULL) ||
      pthread_cond_init(&p->done_cv, NULL)) {
    free(p);
    return nde__fail(err, NDE_ERR_NOMEM, "cannot create the pool's locks");
  }
  atomic_init(&p->next, 0);
  atomic_init(&p->failed, 0);
  p->threads = calloc((size_t)n_threads, sizeof *p->threads);
  if (!p->threads) {
    nde_pool_destroy(&p);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating a pool of %d threads", n_threads);
  }
  for (int i = 1; i < n_threads; i++) {
    worker_arg *wa = malloc(sizeof *wa);
    if (wa) *wa = (worker_arg){p, i};
    if (!wa || pthread_create(&p->threads[p->n_started], NULL, worker_main, wa) != 0) {
      free(wa);
      nde_pool_destroy(&p);
      return nde__fail(err, NDE_ERR_NOMEM, "the system refused to start thread %d of %d", i + 1,
                       n_threads);
    }
    p->n_started++;
  }
  *out = p;
  return NDE_OK;
}

int nde_pool_run(nde_pool *p, long n_items, nde_pool_fn fn, void *ctx) {
  if (n_items <= 0 || !fn) return 0;
  if (!p || p->n == 1 || n_items == 1) {
    for (long i = 0; i < n_items; i++) {
      const int rc = fn(ctx, 0, i);
      if (rc) return rc;
    }
    return 0;
  }
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->ctx = ctx;
  p->n_items = n_items;
  atomic_store(&p->next, 0);
  atomic_store(&p->failed, 0);
  p->fail_item = LONG_MAX;
  p->fail_rc = 0;
  p->active = 0;
  p->open = 1;
  p->gen++;
  pthread_cond_broadcast(&p->start_cv);
  pthread_mutex_unlock(&p->mu);
  work(p, 0);
  pthread_mutex_lock(&p->mu);
  p->open = 0;
  while (p->active > 0) pthread_cond_wait(&p->done_cv, &p->mu);
  const int rc = p->fail_rc;
  pthread_mutex_unlock(&p->mu);
  return rc;
}
