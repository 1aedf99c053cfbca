/* nde core: status codes, error detail, seeded random numbers, ownership flags.
 *
 * Every nde function that can fail returns an nde_status.  The status says which class of
 * failure happened; the detailed one-line message (file, place, what was expected) goes to the
 * nde_error the call takes, or, for calls that take none, stays on the handle they were called
 * on and is read with its *_errmsg accessor (nde_problem_errmsg, nde_writer_errmsg, ...).  There
 * is no global error state.  The one process-wide setting nde changes is OpenBLAS's thread
 * count: held at one while a fit problem exists or nde_simulate_many runs, and restored after
 * (see "Threads of nde and of OpenBLAS" below).
 */
#ifndef NDE_CORE_H
#define NDE_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "nde/version.h"

/* Every public function is declared with NDE_API: the library is built with hidden visibility,
 * so only these symbols are exported from libnde.so. */
#if defined(__GNUC__) || defined(__clang__)
#define NDE_API __attribute__((visibility("default")))
#else
#define NDE_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* One list generates the enum and nde_status_str().  Errors only: numerical outcomes such as a
 * solver's step budget are reported as reasons on a successful call, never as statuses. */
#define NDE_STATUS_LIST(X)                                                        \
  X(NDE_OK, "success")                                                            \
  X(NDE_ERR_ARG, "invalid argument")                                              \
  X(NDE_ERR_NOMEM, "out of memory")                                               \
  X(NDE_ERR_LIMIT, "size limit exceeded")                                         \
  X(NDE_ERR_PARSE, "model file has errors")                                       \
  X(NDE_ERR_MODEL, "model is inconsistent")                                       \
  X(NDE_ERR_DATA, "data file is invalid")                                         \
  X(NDE_ERR_IO, "input/output failure")                                           \
  X(NDE_ERR_CALLBACK, "right-hand side callback reported a fatal error")          \
  X(NDE_ERR_NUMERIC, "numerical failure")                                         \
  X(NDE_ERR_UNSUPPORTED, "operation not supported by this object")                \
  X(NDE_ERR_INTERNAL, "internal error")

typedef enum {
#define NDE__STATUS_ENUM(name, msg) name,
  NDE_STATUS_LIST(NDE__STATUS_ENUM)
#undef NDE__STATUS_ENUM
  NDE_STATUS_COUNT
} nde_status;

/* Static English description of a status; never NULL (unknown codes give "unknown status"). */
NDE_API const char *nde_status_str(nde_status s);

/* The detailed message of a failed constructor, which has no handle to keep it on: constructors
 * that can fail for a reason the caller should read take an nde_error * (may be NULL).  A
 * failing call sets status and msg; a successful one may leave them as they were (some calls
 * clear them, others such as nde_model_load_file and nde_result_fit do not), so read them after
 * a call that returned an error, never to find out whether a call failed. */
#define NDE_ERROR_MSG_MAX 1024
typedef struct nde_error {
  nde_status status;
  char msg[NDE_ERROR_MSG_MAX];
} nde_error;

/* Whether an object passed to a constructor is borrowed (caller keeps and destroys it) or taken
 * (nde destroys it with the new object). */
typedef enum { NDE_BORROW = 0, NDE_TAKE = 1 } nde_ownership;

/* Random numbers: xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64.  The state is a
 * plain value so that it can be saved in a checkpoint and restored bit for bit; treat the words
 * as opaque. */
typedef struct nde_rng {
  uint64_t s[4];
} nde_rng;

NDE_API void nde_rng_seed(nde_rng *r, uint64_t seed);
NDE_API uint64_t nde_rng_u64(nde_rng *r);
/* Uniform on [0, 1) with 53 random bits. */
NDE_API double nde_rng_uniform(nde_rng *r);
/* Standard normal by the Marsaglia polar method (consumes a variable number of draws). */
NDE_API double nde_rng_normal(nde_rng *r);

/* Library version string of the library actually linked, e.g. "0.2.0" (compare with the
 * NDE_VERSION_* macros of the headers compiled against). */
NDE_API const char *nde_version(void);

/* Release memory that an nde function returned to the caller (strings, arrays, lists: every
 * "release with nde_free" in the headers).  NULL is allowed. */
NDE_API void nde_free(void *p);

/* A growable string (for messages, generated source text, command lines).  Start from
 * NDE_STR_INIT; data is NUL-terminated whenever len > 0 or after any append.  When an append
 * runs out of memory, failed is set and later appends do nothing.  Release with
 * nde_str_release (which leaves an empty string). */
typedef struct nde_str {
  char *data;  /* the text (read only; NULL while empty) */
  size_t len;  /* bytes, without the terminating NUL */
  size_t cap;  /* internal */
  int failed;  /* an append ran out of memory */
} nde_str;
#define NDE_STR_INIT {NULL, 0, 0, 0}

NDE_API void nde_str_add(nde_str *s, const char *text, size_t len);
NDE_API void nde_str_adds(nde_str *s, const char *text);
NDE_API void nde_str_addf(nde_str *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
NDE_API void nde_str_vaddf(nde_str *s, const char *fmt, va_list ap);
/* Hand the text over to the caller (release with nde_free; "" for an empty string, NULL when an
 * append failed) and leave s empty. */
NDE_API char *nde_str_take(nde_str *s);
NDE_API void nde_str_release(nde_str *s);

/* The shortest decimal text that reads back as exactly x ("0.1", "1e-300", "nan", "inf"); buf
 * needs NDE_NUM_MAX bytes.  Returns buf. */
#define NDE_NUM_MAX 32
NDE_API char *nde_num_str(double x, char *buf);

/* ---- a pool of threads ----
 *
 * Parallel work in nde (the groups of pieces of a fit, and any loop over independent items) runs
 * on a pool: n threads, the caller's among them, that take the items 0 .. n_items-1 of a run in
 * increasing order, each the next one not yet taken.  Which thread runs which item depends on
 * timing, so a task writes its result into a place of its own item and uses per-thread scratch
 * by thread index; the caller combines the results afterwards in item order.  Results then do
 * not depend on the number of threads: the fit objective sums its groups that way (see
 * nde/train.h), bit for bit the same for every thread count.
 *
 * Threads of nde and of OpenBLAS: a pool does not touch the BLAS.  Two levels of threads on the
 * same cores slow each other down (2.6-3.6x measured); nde's fit problems hold OpenBLAS at one
 * thread while they exist, whatever the pool's size (docs/scaling.md). */
typedef struct nde_pool nde_pool;

/* The largest pool. */
#define NDE_POOL_MAX_THREADS 1024

/* The number of cores this process may run on (its CPU affinity mask; the online processors
 * where there is none), at least 1. */
NDE_API int nde_cpu_count(void);

/* A pool of n_threads threads (0: nde_cpu_count()); the calling thread of nde_pool_run is thread
 * 0, so n_threads - 1 threads are started here and wait until destroyed.  Statuses: NDE_ERR_ARG
 * (n_threads < 0 or > NDE_POOL_MAX_THREADS), NDE_ERR_NOMEM (no memory, or the system refused a
 * thread); err (may be NULL) receives the message. */
NDE_API nde_status nde_pool_create(int n_threads, nde_pool **out, nde_error *err);
/* Stop and join the threads (NULL-safe; nulls *p).  Not during a run. */
NDE_API void nde_pool_destroy(nde_pool **p);
/* Number of threads, the caller's included (1 for a NULL pool). */
NDE_API int nde_pool_size(const nde_pool *p);

/* A task: do item `item` on thread `thread` (in [0, nde_pool_size)).  Return 0, or non-zero to
 * fail: items not yet taken are then skipped. */
typedef int (*nde_pool_fn)(void *ctx, int thread, long item);

/* Run fn on every item 0 .. n_items-1 and return when all are done; p NULL runs them in order on
 * the caller (thread 0).  One run at a time per pool: a task must not run the same pool.
 * Returns 0, or the non-zero value of the failed item with the lowest index (every item before
 * it ran, so this does not depend on timing). */
NDE_API int nde_pool_run(nde_pool *p, long n_items, nde_pool_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
