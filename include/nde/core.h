/* nde core: status codes, error detail, seeded random numbers, ownership flags.
 *
 * Every nde function that can fail returns an nde_status.  The status says which class of
 * failure happened; the handle the function was called on keeps the detailed one-line message
 * (file, place, what was expected), read with that handle's *_errmsg accessor.  There is no
 * global mutable state anywhere in the library.
 */
#ifndef NDE_CORE_H
#define NDE_CORE_H

#include <stddef.h>
#include <stdint.h>

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
const char *nde_status_str(nde_status s);

/* The detailed message of a failed constructor, which has no handle to keep it on: constructors
 * that can fail for a reason the caller should read take an nde_error * (may be NULL). */
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

void nde_rng_seed(nde_rng *r, uint64_t seed);
uint64_t nde_rng_u64(nde_rng *r);
/* Uniform on [0, 1) with 53 random bits. */
double nde_rng_uniform(nde_rng *r);
/* Standard normal by the Marsaglia polar method (consumes a variable number of draws). */
double nde_rng_normal(nde_rng *r);

/* Library version string, e.g. "0.1.0". */
const char *nde_version(void);

#ifdef __cplusplus
}
#endif
#endif
