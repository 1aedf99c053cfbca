/* Internal helpers shared across layers: error buffers, checked size arithmetic, allocation. */
#ifndef NDE_CORE_INTERNAL_H
#define NDE_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "nde/core.h"

#define NDE__ERRMSG_MAX 1024

/* The detailed message of a handle's last error. */
typedef struct nde__err {
  nde_status status;
  char msg[NDE__ERRMSG_MAX];
} nde__err;

/* A function inlined wherever it is called, for kernels specialised by constant arguments. */
#if defined(__GNUC__)
#define NDE__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define NDE__ALWAYS_INLINE inline
#endif

/* A function off the hot path (argument errors), kept out of line so that its caller stays small
 * and can jump straight to what it calls. */
#if defined(__GNUC__)
#define NDE__COLD __attribute__((cold, noinline))
#define NDE__NOINLINE __attribute__((noinline))
#else
#define NDE__COLD
#define NDE__NOINLINE
#endif

#if defined(__GNUC__)
#define NDE__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NDE__PRINTF(a, b)
#endif

/* Record status and a printf-formatted message in e (may be NULL); returns status. */
nde_status nde__errf(nde__err *e, nde_status status, const char *fmt, ...) NDE__PRINTF(3, 4);
nde_status nde__verrf(nde__err *e, nde_status status, const char *fmt, va_list ap);
void nde__err_clear(nde__err *e);
/* The message of e, or the static status text when no detail was recorded. */
const char *nde__err_msg(const nde__err *e);

/* Write status and a printf-formatted message into a constructor's nde_error (may be NULL);
 * returns status.  For constructors that fail before they have a handle. */
nde_status nde__fail(nde_error *out, nde_status status, const char *fmt, ...) NDE__PRINTF(3, 4);

/* Copy e's status and message into out (may be NULL). */
void nde__err_export(const nde__err *e, nde_error *out);

/* Overflow-checked size arithmetic: return false when the result does not fit. */
bool nde__mul_size(size_t a, size_t b, size_t *out);
bool nde__add_size(size_t a, size_t b, size_t *out);

/* calloc of n doubles with overflow check; NULL on failure or n == 0 gives a 1-element block. */
double *nde__dalloc(size_t n);

/* Sort n doubles ascending (no NaN among them). */
void nde__sort_doubles(double *v, size_t n);
/* The p-quantile of sorted v[0..n-1] by linear interpolation (Hyndman & Fan type 7); NaN for
 * n <= 0. */
double nde__quantile_sorted(const double *v, int n, double p);

/* ---- reproducible sums (src/core/rsum.c) ----
 * Sums of many contributions that are bit for bit the same in any order and any grouping of the
 * contributions (threads, MPI ranks): every contribution v to component i is cut at the same
 * place, 64 bits below 2^e_i where e_i bounds every contribution to component i (|v| < 2^e_i),
 * into two 32-bit digits, and the digits are added as integers, which is exact and associative
 * (pre-rounding; Demmel & Nguyen, "Fast reproducible floating-point summation", ARITH 2013).
 * The result is the exact sum of the cut contributions, rounded once: each contribution loses at
 * most 2^(e_i - 64), so for up to 2^21 contributions the error is below what summing them in
 * double precision in any order may lose (up to n 2^(e_i - 53)).  Two passes: first every
 * contribution's exponent (nde__rsum_exp; across ranks the maximum), then the digits
 * (nde__rsum_add; across ranks the integer sum), then the doubles (nde__rsum_get). */
#include <limits.h>
#include <stdint.h>
#define NDE__RSUM_NONE INT_MIN     /* e_i: no non-zero contribution yet (start value) */
#define NDE__RSUM_NONFINITE INT_MAX /* e_i: a contribution was NaN or -inf (result NaN) */
#define NDE__RSUM_POSINF (INT_MAX - 1) /* e_i: a contribution was +inf, none NaN or -inf (result
                                        * +inf: an overflowing sum of squares stays infinite) */
/* e[i] = max(e[i], exponent of v[i]) for i < n (v[i] = 0 leaves e[i]). */
void nde__rsum_exp(size_t n, const double *v, int *e);
/* acc[2i], acc[2i+1] += the two digits of v[i] relative to e[i], for i < n. */
void nde__rsum_add(size_t n, const double *v, const int *e, int64_t *acc);
/* out[i] = the sum that acc[2i], acc[2i+1] hold relative to e[i] (0 for NONE, +inf for POSINF,
 * NaN for NONFINITE). */
void nde__rsum_get(size_t n, const int *e, const int64_t *acc, double *out);

/* ---- jobs over threads, with progress (jobs.c) ---- */

/* Returned by nde__par_run when the progress callback asked to stop. */
#define NDE__PAR_STOPPED (-1000)
/* Whether this thread runs a job of nde__par_run: work started inside one takes its thread
 * alone (no pools of its own on cores the outer run uses). */
int nde__par_in_job(void);
/* The threads a run of n_jobs jobs uses: requested (<= 0: every online core), at most n_jobs. */
int nde__par_threads(int requested, int n_jobs);
/* Run job(ctx, worker, j) for j = 0 .. n_jobs-1 on a pool (nde_pool) of up to `threads`
 * threads (worker in [0, threads) names the thread's own workspace).  A job returns 0, or
 * non-zero to stop the run (jobs not yet taken are skipped; the value of the failed job with
 * the lowest index is returned, whatever the timing).  progress (may be NULL) is called from the
 * calling thread only, as jobs end and every 0.2 s; non-zero stops the run (NDE__PAR_STOPPED).
 * Jobs must write only their own outputs. */
int nde__par_run(int n_jobs, int threads, int (*job)(void *ctx, int worker, int job), void *ctx,
                 int (*progress)(void *pctx, int done, int total), void *pctx);

#endif
