/* Jobs over threads for the uncertainty of a fit (ensemble members, profile grid points): plain
 * POSIX threads pulling job indices from a shared counter.  Each job writes only its own slot, and
 * every reduction over jobs is done afterwards by the caller in job order, so the results do not
 * depend on the thread count or on which thread ran which job.  When the core layer's thread pool
 * lands, nde__par_run becomes a call into it with the same contract. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "unc_internal.h"

typedef struct par {
  int n_jobs;
  int (*job)(void *ctx, int worker, int job);
  void *ctx;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int next, done, failed;
  int first_error;
} par;

typedef struct worker_arg {
  par *P;
  int id;
} worker_arg;

static void *worker(void *arg) {
  worker_arg *wa = arg;
  par *P = wa->P;
  for (;;) {
    pthread_mutex_lock(&P->mu);
    const int j = P->failed ? P->n_jobs : P->next++;
    pthread_mutex_unlock(&P->mu);
    if (j >= P->n_jobs) break;
    const int rc = P->job(P->ctx, wa->id, j);
    pthread_mutex_lock(&P->mu);
    P->done++;
    if (rc && !P->failed) {
      P->failed = 1;
      P->first_error = rc;
    }
    pthread_cond_broadcast(&P->cv);
    pthread_mutex_unlock(&P->mu);
  }
  return NULL;
}

int nde__cpu_count(void) {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (n > 4096 ? 4096 : (int)n) : 1;
}

int nde__par_threads(int requested, int n_jobs) {
  int t = requested > 0 ? requested : nde__cpu_count();
  if (t > n_jobs) t = n_jobs;
  return t < 1 ? 1 : t;
}

int nde__par_run(int n_jobs, int threads, int (*job)(void *ctx, int worker, int job), void *ctx,
                 int (*progress)(void *pctx, int done, int total), void *pctx) {
  if (n_jobs <= 0) return 0;
  threads = nde__par_threads(threads, n_jobs);
  par P;
  P.n_jobs = n_jobs;
  P.job = job;
  P.ctx = ctx;
  P.next = P.done = P.failed = P.first_error = 0;
  if (threads == 1) {
    /* The same jobs in the same order on the calling thread. */
    for (int j = 0; j < n_jobs; j++) {
      const int rc = job(ctx, 0, j);
      if (rc) return rc;
      if (progress && progress(pctx, j + 1, n_jobs)) return NDE__PAR_STOPPED;
    }
    return 0;
  }
  pthread_mutex_init(&P.mu, NULL);
  pthread_cond_init(&P.cv, NULL);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  worker_arg *wa = calloc((size_t)threads, sizeof *wa);
  int started = 0, stopped = 0;
  if (tid && wa)
    for (int i = 0; i < threads; i++) {
      wa[i].P = &P;
      wa[i].id = i;
      if (pthread_create(&tid[i], NULL, worker, &wa[i]) != 0) break;
      started++;
    }
  if (started == 0) {
    /* No thread could be started: run on this one. */
    free(tid);
    free(wa);
    pthread_cond_destroy(&P.cv);
    pthread_mutex_destroy(&P.mu);
    return nde__par_run(n_jobs, 1, job, ctx, progress, pctx);
  }
  /* Progress is reported from the calling thread only, each time a job ends (and at least every
   * 0.2 s, so that a stop request is seen while long jobs run). */
  pthread_mutex_lock(&P.mu);
  int reported = 0;
  while (P.done < n_jobs && !(P.failed && P.done >= P.next)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&P.cv, &P.mu, &ts);
    const int d = P.done;
    if (progress && (d != reported || !stopped)) {
      pthread_mutex_unlock(&P.mu);
      const int stop = progress(pctx, d, n_jobs);
      pthread_mutex_lock(&P.mu);
      reported = d;
      if (stop && !stopped) {
        stopped = 1;
        P.failed = 1; /* no new jobs; running ones end by themselves */
        if (!P.first_error) P.first_error = NDE__PAR_STOPPED;
      }
    }
    if (P.failed && P.done >= P.next) break;
  }
  pthread_mutex_unlock(&P.mu);
  for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
  free(tid);
  free(wa);
  pthread_cond_destroy(&P.cv);
  pthread_mutex_destroy(&P.mu);
  if (progress && !stopped && !P.failed) progress(pctx, n_jobs, n_jobs);
  return P.failed ? P.first_error : 0;
}
