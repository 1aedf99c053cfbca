/* Internal helpers of the data layer: HDF5 error silencing, type names, object lookup, string
 * reads, and the checks shared by the reader of time series and the writer. */
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

/* A short name of an HDF5 datatype: "float64", "int32", "uint64", "string", "compound", ... */
void nde__h5_type_name(hid_t type, char *buf, size_t n);

/* What an absolute path names in file (checks each component, so a missing parent is NONE). */
nde_h5_kind nde__h5_kind(hid_t file, const char *path);

/* "/g" + "t" -> "/g/t", "/" + "t" -> "/t", truncated to n. */
void nde__h5_join(char *buf, size_t n, const char *group, const char *leaf);

/* Read the strings of an attribute (is_attr) or dataset: fixed or variable length, any charset,
 * scalar or 1-D.  *strs is one malloc'ed block (pointers then texts, trailing blanks trimmed).
 * On failure returns NDE_ERR_DATA (wrong type or rank; why says "expected ..., got ..."),
 * NDE_ERR_NOMEM or NDE_ERR_IO (why holds HDF5's reason). */
nde_status nde__h5_read_strings(hid_t id, bool is_attr, size_t *n, char ***strs, char *why,
                                size_t whylen);

/* The shortest of %.15g, %.16g, %.17g that reads back as x. */
const char *nde__fmt_double(char *buf, size_t n, double x);

/* Copy a handle's error into the caller's struct (NULL-safe). */
void nde__data_err_out(const nde__err *e, nde_error *out);

/* Checks shared by nde_data_open and nde_writer_put_series.  file and dset name the place in
 * messages ("DATA.h5", "/run1/t"). */
nde_status nde__check_times(nde__err *e, const char *file, const char *dset, size_t n,
                            const double *t);
/* Inf anywhere, then columns that are all NaN; counts NaN into *n_nan (may be NULL). */
nde_status nde__check_obs(nde__err *e, const char *file, const char *dset, size_t n, size_t d,
                          const double *y, const char *const *names, size_t *n_nan);
/* Empty or repeated names. */
nde_status nde__check_names(nde__err *e, const char *file, const char *dset, size_t d,
                            const char *const *names);

#endif
