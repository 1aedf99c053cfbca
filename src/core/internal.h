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

#endif
