/* The thread pool and the reproducible sums of core: every item runs exactly once on a thread
 * in range, a failure returns the lowest failed item's value whatever the timing; sums of the
 * same contributions in any order and any grouping (threads, ranks) are the same bits, within
 * 2^-60 of the largest contribution of the exact sum, with zeros, tiny and huge values, and NaN
 * propagated. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"
#include "nde/nde.h"
#include "result/internal.h"

typedef struct items {
  atomic_int *count;
  int *thread;
  int n_threads;
  long fail_from;  /* items >= this fail with value item + 1 (-1: none) */
} items;

static int task(void *ctx, int thread, long item) {
  items *it = ctx;
  atomic_fetch_add(&it->count[item], 1);
  it->thread[item] = thread;
  /* A little work, so that threads interleave. */
  volatile double s = 0;
  for (int i = 0; i < 2000 + (int)(item % 7) * 300; i++) s += sin((double)i);
  return it->fail_from >= 0 && item >= it->fail_from ? (int)item + 1 : 0;
}

static void the_pool_runs_every_item_once(void **state) {
  (void)state;
  assert_true(nde_cpu_count() >= 1);
  for (int nt = 1; nt <= 4; nt++) {
    nde_pool *p = NULL;
    assert_int_equal(nde_pool_create(nt, &p, NULL), NDE_OK);
    assert_int_equal(nde_pool_size(p), nt);
    enum { N = 517 };
    atomic_int count[N];
    int thread[N];
    for (int run = 0; run < 3; run++) {
      for (int i = 0; i < N; i++) atomic_init(&count[i], 0);
      items it = {count, thread, nt, -1};
      assert_int_equal(nde_pool_run(p, N, task, &it), 0);
      for (int i = 0; i < N; i++) {
        assert_int_equal(atomic_load(&count[i]), 1);
        assert_true(thread[i] >= 0 && thread[i] < nt);
      }
    }
    nde_pool_destroy(&p);
    assert_null(p);
  }
  nde_pool *p = NULL;
  assert_int_equal(nde_pool_create(-1, &p, NULL), NDE_ERR_ARG);
  assert_int_equal(nde_pool_create(0, &p, NULL), NDE_OK);
  assert_int_equal(nde_pool_size(p), nde_cpu_count());
  nde_pool_destroy(&p);
  assert_int_equal(nde_pool_size(NULL), 1);
}

static void a_failure_returns_the_lowest_failed_item(void **state) {
  (void)state;
  nde_pool *p = NULL;
  assert_int_equal(nde_pool_create(3, &p, NULL), NDE_OK);
  enum { N = 300 };
  atomic_int count[N];
  int thread[N];
  for (int run = 0; run < 20; run++) {
    for (int i = 0; i < N; i++) atomic_init(&count[i], 0);
    const long from = 37 + 11 * run;
    items it = {count, thread, 3, from};
    assert_int_equal(nde_pool_run(p, N, task, &it), (int)from + 1);
    for (long i = 0; i <= from; i++) assert_int_equal(atomic_load(&count[i]), 1);
  }
  nde_pool_destroy(&p);
  /* Without a pool: in order on the caller, stopping at the first failure. */
  for (int i = 0; i < N; i++) atomic_init(&count[i], 0);
  items it = {count, thread, 1, 5};
  assert_int_equal(nde_pool_run(NULL, N, task, &it), 6);
  assert_int_equal(atomic_load(&count[6]), 0);
}

/* The reproducible sum of m contributions per component cut into `parts` groups in the order
 * perm: exponents of all, then digits of each group separately, then the digits summed. */
static void rsum(size_t n, int m, const double *v, const int *perm, int parts, double *out) {
  int *e = malloc(n * sizeof *e);
  int64_t *acc = calloc(2 * n, sizeof *acc), *part = calloc(2 * n, sizeof *part);
  for (size_t i = 0; i < n; i++) e[i] = NDE__RSUM_NONE;
  for (int j = 0; j < m; j++) nde__rsum_exp(n, v + (size_t)perm[j] * n, e);
  for (int q = 0; q < parts; q++) {
    memset(part, 0, 2 * n * sizeof *part);
    for (int j = q * m / parts; j < (q + 1) * m / parts; j++)
      nde__rsum_add(n, v + (size_t)perm[j] * n, e, part);
    for (size_t i = 0; i < 2 * n; i++) acc[i] += part[i];
  }
  nde__rsum_get(n, e, acc, out);
  free(e);
  free(acc);
  free(part);
}

static void sums_are_the_same_bits_in_any_order_and_grouping(void **state) {
  (void)state;
  enum { NC = 9, M = 200 };
  double v[M * NC];
  nde_rng rng;
  nde_rng_seed(&rng, 2718);
  for (int j = 0; j < M; j++) {
    const double r = nde_rng_normal(&rng);
    v[j * NC + 0] = r;                                       /* ordinary */
    v[j * NC + 1] = ldexp(nde_rng_normal(&rng), -(j % 60));  /* many magnitudes */
    v[j * NC + 2] = j % 2 ? 1e16 : -1e16 + 1.5 * (j % 5);    /* cancellation */
    v[j * NC + 3] = 0.0;                                     /* nothing */
    v[j * NC + 4] = 1e-310 * (j + 1);                        /* subnormal */
    v[j * NC + 5] = 1e300 * nde_rng_normal(&rng);            /* huge */
    v[j * NC + 6] = j == 17 ? NAN : 1.0;                     /* a NaN */
    v[j * NC + 7] = j == 40 ? INFINITY : 2.0;                /* an overflow: +inf */
    v[j * NC + 8] = j == 3 ? INFINITY : j == 90 ? -INFINITY : 0.5; /* +inf and -inf: NaN */
  }
  int perm[M];
  for (int j = 0; j < M; j++) perm[j] = j;
  double ref[NC], got[NC];
  rsum(NC, M, v, perm, 1, ref);
  for (int trial = 0; trial < 25; trial++) {
    for (int j = M - 1; j > 0; j--) {
      const int r = (int)(nde_rng_u64(&rng) % (uint64_t)(j + 1));
      const int tmp = perm[j];
      perm[j] = perm[r];
      perm[r] = tmp;
    }
    rsum(NC, M, v, perm, 1 + trial % 6, got);
    assert_true(memcmp(ref, got, sizeof ref) == 0);
  }
  /* Accuracy: against the sum in long double (exact here to far below 2^-60 of the largest). */
  for (int i = 0; i < 6; i++) {
    long double s = 0, big = 0;
    for (int j = 0; j < M; j++) {
      s += v[j * NC + i];
      big = fmaxl(big, fabsl((long double)v[j * NC + i]));
    }
    print_message("component %d: sum %.17g, long double %.17Lg\n", i, ref[i], s);
    assert_true(fabsl((long double)ref[i] - s) <= ldexpl(big, -60) + fabsl(s) * DBL_EPSILON);
  }
  assert_true(ref[3] == 0.0 && !signbit(ref[3]));
  assert_true(isnan(ref[6]));
  assert_true(ref[7] == INFINITY);
  assert_true(isnan(ref[8]));
}

/* Work started inside a job of nde__par_run takes that job's thread: a nested run, and a fit's
 * problem made in a job (an ensemble member, a profile point), use one thread (a member's problem
 * started a pool on every core, oversubscribing the outer run's threads). */
typedef struct nested {
  nde_model *m;
  nde_data *d;
  int in_job[4], par_threads[4], problem_threads[4];
} nested;

static int nested_job(void *ctx, int worker, int j) {
  (void)worker;
  nested *N = ctx;
  N->in_job[j] = nde__par_in_job();
  N->par_threads[j] = nde__par_threads(0, 64);
  nde_problem *p = NULL;
  if (nde_problem_create(N->m, N->d, NULL, &p, NULL) != NDE_OK) return 1;
  int ranks, rank;
  nde__problem_parallel(p, &N->problem_threads[j], &ranks, &rank);
  nde_problem_destroy(&p);
  return 0;
}

static void work_inside_a_job_takes_the_jobs_thread(void **state) {
  (void)state;
  const char *src = "state x = 1\nparam k = 0.5\ndx/dt = -k*x\n";
  nested N;
  memset(&N, 0, sizeof N);
  assert_int_equal(nde_model_load_string(src, strlen(src), "k.nde", &N.m, NULL), NDE_OK);
  const double t[3] = {0, 0.5, 1}, y[3] = {1, 0.78, 0.6};
  const char *names[1] = {"x"};
  nde_series se = {3, 1, t, y, names, NULL};
  assert_int_equal(nde_data_from_series(1, names, 1, &se, NULL, NULL, &N.d, NULL), NDE_OK);
  assert_int_equal(nde__par_in_job(), 0);
  assert_int_equal(nde__par_run(4, 2, nested_job, &N, NULL, NULL), 0);
  for (int j = 0; j < 4; j++) {
    assert_int_equal(N.in_job[j], 1);
    assert_int_equal(N.par_threads[j], 1);
    assert_int_equal(N.problem_threads[j], 1);
  }
  assert_int_equal(nde__par_in_job(), 0);
  /* Outside a job the problem takes the cores (at least 1; 2 here when 2 are available). */
  nde_problem *p = NULL;
  assert_int_equal(nde_problem_create(N.m, N.d, NULL, &p, NULL), NDE_OK);
  int threads, ranks, rank;
  nde__problem_parallel(p, &threads, &ranks, &rank);
  assert_true(threads == (nde_cpu_count() < NDE_POOL_MAX_THREADS ? nde_cpu_count()
                                                                  : NDE_POOL_MAX_THREADS) ||
              ranks > 1);
  nde_problem_destroy(&p);
  nde_data_destroy(&N.d);
  nde_model_destroy(&N.m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_pool_runs_every_item_once),
      cmocka_unit_test(a_failure_returns_the_lowest_failed_item),
      cmocka_unit_test(sums_are_the_same_bits_in_any_order_and_grouping),
      cmocka_unit_test(work_inside_a_job_takes_the_jobs_thread),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
