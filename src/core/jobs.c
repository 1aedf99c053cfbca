/* Jobs over threads with progress (ensemble members, profile grid points, the member discoveries
 * of stability selection), on the thread pool (nde_pool, as the fit's evaluations): each job writes only its own
 * slot, and every reduction over jobs is done afterwards by the caller in job order, so the
 * results do not depend on the thread count or on which thread ran which job.  The pool runs on a
 * driver thread of its own while the calling thread reports progress and passes stop requests. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

typedef struct par {
  int n_jobs;
  int (*job)(void *ctx, int worker, int job);
  void *ctx;
  nde_pool *pool;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, stop, finished; /* jobs ended; stop requested (progress); the pool's run returned */
  int result;               /* nde_pool_run's: the failed job with the lowest index */
} par;

/* Set while this thread runs a job: a run started inside a job (a member's discovery sampling
 * its series) takes this thread alone instead of starting threads of its own on cores the
 * outer run already uses. */
static _Thread_local int in_job;

static int run_job(par *P, int thread, int j) {
  const int outer = in_job;
  in_job = 1;
  const int rc = P->job(P->ctx, thread, j);
  in_job = outer;
  return rc;
}

/* One job on the pool.  A failed job makes the pool skip the jobs not yet taken; a stop request
 * makes every job taken after it return at once. */
static int pool_job(void *vctx, int thread, long item) {
  par *P = vctx;
  pthread_mutex_lock(&P->mu);
  const int stop = P->stop;
  pthread_mutex_unlock(&P->mu);
  const int rc = stop ? NDE__PAR_STOPPED : run_job(P, thread, (int)item);
  pthread_mutex_lock(&P->mu);
  if (!stop) P->done++;
  pthread_cond_broadcast(&P->cv);
  pthread_mutex_unlock(&P->mu);
  return rc;
}

/* The run itself, on a thread of its own, so that the caller stays free to report progress. */
static void *driver(void *arg) {
  par *P = arg;
  const int rc = nde_pool_run(P->pool, P->n_jobs, pool_job, P);
  pthread_mutex_lock(&P->mu);
  P->result = rc;
  P->finished = 1;
  pthread_cond_broadcast(&P->cv);
  pthread_mutex_unlock(&P->mu);
  return NULL;
}

int nde__par_in_job(void) { return in_job; }

int nde__par_threads(int requested, int n_jobs) {
  if (in_job) return 1;
  int t = requested > 0 ? requested : nde_cpu_count(); /* the cores this process may use */
  if (t > NDE_POOL_MAX_THREADS) t = NDE_POOL_MAX_THREADS;
  if (t > n_jobs) t = n_jobs;
  return t < 1 ? 1 : t;
}

int nde__par_run(int n_jobs, int threads, int (*job)(void *ctx, int worker, int job), void *ctx,
                 int (*progress)(void *pctx, int done, int total), void *pctx) {
  if (n_jobs <= 0) return 0;
  threads = nde__par_threads(threads, n_jobs);
  par P;
  memset(&P, 0, sizeof P);
  P.n_jobs = n_jobs;
  P.job = job;
  P.ctx = ctx;
  pthread_t drv;
  if (threads == 1 || nde_pool_create(threads, &P.pool, NULL) != NDE_OK) {
    /* The same jobs in the same order on the calling thread. */
    for (int j = 0; j < n_jobs; j++) {
      const int rc = run_job(&P, 0, j);
      if (rc) return rc;
      if (progress && progress(pctx, j + 1, n_jobs)) return NDE__PAR_STOPPED;
    }
    return 0;
  }
  pthread_mutex_init(&P.mu, NULL);
  pthread_cond_init(&P.cv, NULL);
  if (!progress) {
    /* Nothing to report: the pool runs from this thread, without a driver. */
    const int rc = nde_pool_run(P.pool, n_jobs, pool_job, &P);
    pthread_cond_destroy(&P.cv);
    pthread_mutex_destroy(&P.mu);
    nde_pool_destroy(&P.pool);
    return rc;
  }
  if (pthread_create(&drv, NULL, driver, &P) != 0) {
    pthread_cond_destroy(&P.cv);
    pthread_mutex_destroy(&P.mu);
    nde_pool_destroy(&P.pool);
    return nde__par_run(n_jobs, 1, job, ctx, progress, pctx);
  }
  /* Progress is reported from the calling thread only, each time a job ends (and at least every
   * 0.2 s, so that a stop request is seen while long jobs run). */
  pthread_mutex_lock(&P.mu);
  int reported = 0, stopped = 0;
  while (!P.finished) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&P.cv, &P.mu, &ts);
    const int d = P.done;
    if (progress && !P.finished && (d != reported || !stopped)) {
      pthread_mutex_unlock(&P.mu);
      const int stop = progress(pctx, d, n_jobs);
      pthread_mutex_lock(&P.mu);
      reported = d;
      if (stop && !stopped) {
        stopped = 1;
        P.stop = 1; /* no new jobs; running ones end by themselves */
      }
    }
  }
  pthread_mutex_unlock(&P.mu);
  pthread_join(drv, NULL);
  pthread_cond_destroy(&P.cv);
  pthread_mutex_destroy(&P.mu);
  nde_pool_destroy(&P.pool);
  if (stopped) return NDE__PAR_STOPPED;
  if (progress && !P.result) progress(pctx, n_jobs, n_jobs);
  return P.result;
}
