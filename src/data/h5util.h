/* Internal helpers of the data layer: HDF5 error silencing, type names, object lookup, defensive
 * string reads, a hashed index of names, messages that survive very long file names, and the
 * checks of a time series shared by the file reader, the array reader and the writer. */
#ifndef NDE_DATA_H5UTIL_H
#define NDE_DATA_H5UTIL_H

#include <hdf5.h>
#include <stdbool.h>

#include "core/internal.h"
#include "nde/data.h"

/* HDF5's automatic error printing, saved and switched off for one call's duration. */
typedef struct nde__h5quiet {
  H5E_auto2_t func;
  void *data;
} nde__h5quiet;
void nde__h5_quiet_begin(nde__h5quiet *q);
void nde__h5_quiet_end(const nde__h5quiet *q);

/* The innermost description on HDF5's default error stack ("" when empty), then clear it. */
void nde__h5_last_error(char *buf, size_t n);

/* Open path read-only for the readers: a regular file with the HDF5 signature that HDF5 opens and
 * whose local heaps (the name lists of old-style groups) are sound; otherwise one message naming the file
 * (NDE_ERR_IO for what cannot be opened, NDE_ERR_DATA for what is not or no longer HDF5). */
nde_status nde__h5_open_ro(const char *path, hid_t *fid, nde__err *e);

/* A short name of an HDF5 datatype: "float64", "int32", "uint64", "string", "compound", ... */
void nde__h5_type_name(hid_t type, char *buf, size_t n);

/* What an absolute path names in file (checks each component, so a missing parent is NONE). */
nde_h5_kind nde__h5_kind(hid_t file, const char *path);

/* "/g" + "t" -> "/g/t", "/" + "t" -> "/t"; malloc'ed (NULL when out of memory). */
char *nde__h5_join(const char *group, const char *leaf);

/* "a directory", "a FIFO", "a character device", ... for a file that is not a regular file. */
const char *nde__file_kind(unsigned mode);

/* A malloc'ed copy of s (NULL when out of memory). */
char *nde__strdup(const char *s);

/* Read the strings of an attribute (is_attr) or dataset: fixed or variable length, any charset,
 * scalar or 1-D.  *strs is one malloc'ed block (pointers then texts, trailing blanks trimmed).
 * Variable-length strings are checked against the file's global heap before HDF5 reads them
 * (HDF5 1.10 trusts the heap index and length of each string and crashes on a corrupt one).
 * On failure returns NDE_ERR_DATA (wrong type or rank, corrupt heap; why says what), NDE_ERR_NOMEM
 * or NDE_ERR_IO (why holds HDF5's reason). */
nde_status nde__h5_read_strings(hid_t id, bool is_attr, size_t *n, char ***strs, char *why,
                                size_t whylen);

/* The shortest of %.15g, %.16g, %.17g that reads back as x. */
const char *nde__fmt_double(char *buf, size_t n, double x);

/* nde__errf for the data layer: a message longer than the error buffer (a file name of 1,500
 * characters) keeps its beginning and its end (what was expected and what was found) with
 * " ... " between them instead of losing its end. */
nde_status nde__derrf(nde__err *e, nde_status status, const char *fmt, ...) NDE__PRINTF(3, 4);

/* Copy a handle's error into the caller's struct (NULL-safe). */
void nde__data_err_out(const nde__err *e, nde_error *out);

/* A hashed index of names (open addressing, FNV-1a): linear in the number of names, so files of
 * 200,000 columns are checked and matched in milliseconds.  The index borrows the strings. */
typedef struct nde__index {
  size_t cap;          /* power of two, or 0 */
  size_t n;            /* names stored */
  const char **key;    /* [cap] NULL for an empty slot */
  size_t *val;         /* [cap] */
} nde__index;
/* Add name with value val.  Returns 1 and sets *old to the stored value when the name is there
 * already (nothing added), 0 when added, -1 when out of memory. */
int nde__index_add(nde__index *ix, const char *name, size_t val, size_t *old);
/* The value of name, or SIZE_MAX. */
size_t nde__index_find(const nde__index *ix, const char *name);
void nde__index_free(nde__index *ix);

/* At most max bytes of "a, b, c" from names (for messages listing what was expected). */
void nde__name_list(char *buf, size_t max, size_t n, const char *const *names);

/* Check one series in memory as the convention requires (docs/data-format.md), with messages
 * "PLACE:/GROUP/DATASET: ...": place is the file name or "series K", group the series' HDF5
 * group ("/" for arrays).  Checks, in order: the times, state_names, noise_std, sigma, the
 * observations (Inf, all-NaN columns), the inputs (names, times, values, coverage of the
 * observation times) and the constants (names, finite values).  *n_nan (may be NULL) receives
 * the number of NaN in y.  x may be NULL. */
nde_status nde__check_series(nde__err *e, const char *place, const char *group,
                             const nde_series *s, const nde_series_extra *x, size_t *n_nan);

#endif
