/* Test fixtures for the data layer: temporary directories and HDF5 files written directly with
 * the HDF5 C API, so that the reader is tested against files it did not write. */
#ifndef NDE_TEST_DATA_FIXTURE_H
#define NDE_TEST_DATA_FIXTURE_H

#include <hdf5.h>
#include <stddef.h>

/* A fresh directory under $TMPDIR (or /tmp); free with fx_dir_remove. */
char *fx_dir_create(void);
/* Remove the directory and the files in it (one level), then free dir. */
void fx_dir_remove(char *dir);
/* Number of entries in dir other than . and .. */
int fx_dir_count(const char *dir);
/* dir/name in a static buffer of one of 8 slots (enough for one test's paths). */
const char *fx_path(const char *dir, const char *name);

/* Create a new HDF5 file (truncating). */
hid_t fx_create(const char *path);
/* Dataset name under loc with file type ftype, rank and dims, written from buf in mtype
 * (buf may be NULL: nothing written, e.g. chunked huge datasets). */
hid_t fx_dataset(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                 hid_t mtype, const void *buf);
/* Write t [n] and y [n x d] (float64) under group (NULL: the root), close them; returns 0. */
int fx_series(hid_t file, const char *group, size_t n, size_t d, const double *t,
              const double *y);
/* Attribute state_names on group/y: variable-length (fixed == 0) or space-padded fixed-length
 * strings (fixed > 0 gives the width). */
void fx_names(hid_t file, const char *ypath, size_t d, const char *const *names, size_t fixed);
/* Variable-length string attribute name on the object at path (1-D, n strings). */
void fx_strings_attr(hid_t file, const char *path, const char *name, size_t n,
                     const char *const *strs);
/* Scalar double attribute. */
void fx_attr_double(hid_t obj, const char *name, size_t n, const double *x);

/* Capture everything written to stderr between begin and end into buf. */
void fx_stderr_begin(void);
void fx_stderr_end(char *buf, size_t n);

#endif
