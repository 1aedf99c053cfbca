/* nde data: time-series files and result files in HDF5 (read, validate, write).
 *
 * Three objects:
 *   nde_data    a validated set of observed trajectories, mapped onto a model's states (read only);
 *   nde_writer  an atomic HDF5 writer: the file is built in memory, written to a temporary file in
 *               the target's directory, fsync'ed and renamed over the target on
 *               nde_writer_commit, so a crash, a full disk or a failed call never leaves a
 *               half-written file under the target's name;
 *   nde_reader  generic reads of named datasets and attributes (result files such as fit.h5).
 * The file convention is documented in docs/data-format.md.
 *
 * Errors.  Every call returns an nde_status.  Calls on a handle keep the one-line message on the
 * handle (nde_writer_errmsg, nde_reader_errmsg); calls that create a handle write it into an
 * nde_error the caller passes (may be NULL; status NDE_OK and msg empty after success).  Messages read
 *     FILE:/DATASET: what (expected ..., got ...)
 * with 0-based indices (as h5dump and h5py count).  Statuses: NDE_ERR_ARG (a caller bug: NULL
 * pointer, bad rank), NDE_ERR_IO (the file cannot be opened, created, synced or renamed),
 * NDE_ERR_DATA (the file's content breaks the convention, including sizes beyond opts.max_bytes),
 * NDE_ERR_NOMEM.  The HDF5 library's own error printing is switched off for the duration of every
 * call and restored afterwards, so users see only nde's message.
 *
 * HDF5 is not thread-safe in its serial build: use these functions from one thread at a time.
 */
#ifndef NDE_DATA_H
#define NDE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Highest dataset rank the generic reader and writer handle. */
#define NDE_DATA_MAX_RANK 8

/* ------------------------------------------------------------------------------------------ */
/* Reading time series                                                                          */
/* ------------------------------------------------------------------------------------------ */

typedef struct nde_data_opts {
  /* Refuse (NDE_ERR_DATA, before allocating anything) a file whose series need more than this many
   * bytes in memory.  Default 4 GiB. */
  size_t max_bytes;
  /* The measured inputs the model declares (names of columns of /inputs/u, matched through its
   * attribute input_names), n_inputs of them; every series must carry all of them.  Default none:
   * then /inputs is not read, except in inspection mode (n_state == 0), where each series' own
   * inputs are loaded when it has them. */
  size_t n_inputs;
  const char *const *input_names;
  /* The per-series constants the model declares (numeric attributes of each series' group, or of
   * the group holding a batch when the series' group lacks one), n_consts of them.  Default none. */
  size_t n_consts;
  const char *const *const_names;
} nde_data_opts;

NDE_API nde_data_opts nde_data_opts_default(void);

/* Version of the HDF5 library in use, e.g. "1.10.8" (static storage; for provenance). */
NDE_API const char *nde_data_hdf5_version(void);

/* Switch HDF5's automatic error printing off for the rest of the process.  Every nde call
 * silences it for its own duration and restores it afterwards, so this matters only outside nde's
 * calls, above all at exit: after failing to open some corrupt files (for example an object header
 * with a bad checksum) HDF5 1.10.8 leaks internal state and, with printing on, writes
 * "HDF5: infinite loop closing library" and a list of packages to stderr when the process exits.
 * A program that reports every error through nde's one-line messages (the nde command) calls this
 * once at start.  Not for libraries that share the process with other HDF5 users. */
NDE_API void nde_data_hdf5_errors_off(void);

/* One observed trajectory.  All pointers are views owned by the nde_data they came from. */
typedef struct nde_traj {
  const char *name;         /* HDF5 path of the series' group: "/" or e.g. "/run1" */
  size_t n;                 /* N, number of observation times */
  const double *t;          /* [N] strictly increasing, finite */
  const double *y;          /* [N x n_state] row-major in the model's state order; NaN where the
                               value is missing in the file or the state is not observed */
  const int *col;           /* [n_state] column of /y holding each state, or -1 if unobserved */
  size_t n_cols;            /* D, number of columns of /y in the file */
  size_t n_obs;             /* number of finite values in y */
  size_t n_nan;             /* number of NaN (missing) values in the file's /y */
  const double *noise_std;  /* [n_state] noise standard deviation recorded in the file (NaN for a
                               state without one), or NULL when the file records none */
  /* Known measurement noise per state (attribute sigma of /y: > 0, NaN where unknown or the state
   * is unobserved), or NULL when the series declares none.  Distinct from noise_std, which
   * records how synthetic data was made (and may be 0). */
  const double *sigma;
  /* Measured inputs on their own time grid: n_inputs columns in the order of
   * nde_data_opts.input_names (in inspection mode the file's own columns and names; 0 when the
   * series has none). */
  size_t n_inputs;
  const char *const *input_names; /* [n_inputs] */
  size_t n_u;                     /* M, number of input times */
  const double *u_t;              /* [M] strictly increasing, covering t[0] .. t[N-1] */
  const double *u;                /* [M x n_inputs] row-major, finite */
  /* Per-series constants in the order of nde_data_opts.const_names. */
  size_t n_consts;
  const char *const *const_names; /* [n_consts] */
  const double *consts;           /* [n_consts] finite */
} nde_traj;

/* Statistics of one state over the observed values of all trajectories. */
typedef struct nde_state_stats {
  size_t n_obs;  /* number of observed (finite) values */
  double mean;   /* mean of those values; NaN when n_obs == 0 */
  double std;    /* sample standard deviation (divisor n_obs - 1; 0 when n_obs == 1; NaN when 0) */
  double min, max;
} nde_state_stats;

typedef struct nde_data nde_data;

/* Open, validate and load a time-series file.
 *   path         "FILE.h5" (every series in it) or "FILE.h5:/group" (the series in that group).
 *                A path that names an existing file is never split at ':'.
 *   n_state      number of model states; state_names their names, one per scalar component, a
 *                vector state y[2] as "y[1]", "y[2]".  With n_state == 0 and state_names == NULL
 *                the states are the file's own columns (for inspection): their state_names, or
 *                "column 1", "column 2", ... when a series has none, merged over series by name.
 *   opts         NULL for nde_data_opts_default().
 *   out          receives the data set; NULL on failure.
 *   err          receives the message on failure; may be NULL.
 * Returns NDE_OK, NDE_ERR_IO (missing or unreadable file), NDE_ERR_DATA (every violation of the
 * convention: see docs/data-format.md), NDE_ERR_NOMEM, NDE_ERR_ARG. */
NDE_API nde_status nde_data_open(const char *path, size_t n_state, const char *const *state_names,
                         const nde_data_opts *opts, nde_data **out, nde_error *err);

typedef struct nde_series nde_series;
typedef struct nde_series_extra nde_series_extra;

/* The same data set made from arrays (for the library and Python): series[k] is validated exactly
 * as the k-th series of a file, with the same messages in which "series K" stands for the file
 * name and "/" for its group ("series 2:/y: infinite value at row 4, ...").  The arrays are
 * copied; the caller keeps them.  extra is NULL or [n_series]: requested inputs are matched in
 * extra[k].input_names and constants in extra[k].const_names.  Trajectory k is named
 * extra[k].name when given (the name a fit records, as a file's group name), else "series K";
 * given names must be distinct (NDE_ERR_DATA naming both series).  Statuses as for
 * nde_data_open (NDE_ERR_DATA for every violation, NDE_ERR_ARG for a NULL array). */
NDE_API nde_status nde_data_from_series(size_t n_state, const char *const *state_names,
                                        size_t n_series, const nde_series *series,
                                        const nde_series_extra *extra,
                                        const nde_data_opts *opts, nde_data **out,
                                        nde_error *err);
NDE_API void nde_data_destroy(nde_data **data);

/* Where trajectory tr (one of d's, from nde_data_traj) is, as messages name it before a
 * dataset path such as "/t" or "/y": "FILE:/GROUP" for a group of a file, "FILE:" for its root,
 * and "series K:" (K its index in d) for data made from arrays (nde_data_from_series), whatever
 * names they were given, as the messages of nde_data_from_series name them.  "data:" for a
 * trajectory that is not d's.  Writes at most len bytes to buf (truncated as snprintf does);
 * returns buf. */
NDE_API const char *nde_data_place(const nde_data *d, const nde_traj *tr, char *buf, size_t len);

/* The file path as given (without the ":/group" selector). */
NDE_API const char *nde_data_file(const nde_data *data);
NDE_API size_t nde_data_n_traj(const nde_data *data);
/* Trajectory k (0 <= k < n_traj); series of a file of groups come in group-name order. */
NDE_API const nde_traj *nde_data_traj(const nde_data *data, size_t k);
NDE_API size_t nde_data_n_state(const nde_data *data);
/* Name of state j: the caller's name, or the file's column name in inspection mode. */
NDE_API const char *nde_data_state_name(const nde_data *data, size_t j);
/* [n_state] statistics per state over all trajectories. */
NDE_API const nde_state_stats *nde_data_stats(const nde_data *data);
/* Totals over all trajectories: observation times, observed values, missing (NaN) values. */
NDE_API size_t nde_data_n_times(const nde_data *data);
NDE_API size_t nde_data_n_obs(const nde_data *data);
NDE_API size_t nde_data_n_nan(const nde_data *data);

/* ------------------------------------------------------------------------------------------ */
/* Atomic writer                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct nde_writer nde_writer;

/* Check that path can be written (call it before long work), leaving nothing behind: it makes
 * and removes a temporary file in the directory, as the writer will.  NDE_ERR_IO with one line
 * when the name is empty or ends in '/', its directory does not exist, is not a directory, is not
 * writable, is on a read-only file system or takes no new file, or when path exists and is not a
 * regular file (a directory, device such as /dev/null, FIFO or socket).  A symbolic
 * link is followed: its final target is what gets written.  NDE_OK otherwise. */
NDE_API nde_status nde_writer_check_target(const char *path, nde_error *err);

/* 1 when a and b both name the same existing file (after following symbolic links, comparing
 * device and inode), 0 otherwise (including when either does not exist).  For refusing to write
 * an output over an input. */
NDE_API int nde_path_same_file(const char *a, const char *b);

/* Start writing path.  Checks the target as nde_writer_check_target does, removes the temporary
 * files of the same target name that no writer holds (left by a process killed while writing;
 * not on NFS or SMB, where flock cannot tell),
 * then creates a short temporary file ".nde-HHHHHHHH-RRRRRRRR.tmp" (H a hash of the target's
 * name, R random), locked with flock until the rename, in the directory of the final target (a
 * symbolic link is followed and stays a link).  The HDF5 file is built in memory; nde_writer_commit writes it to the
 * temporary file, syncs it, gives it the mode (and, as root, the owner) of an existing target
 * and renames it over the target.  An existing file at path is untouched until then.
 * NDE_ERR_IO when the target cannot be written (see nde_writer_check_target) or the temporary
 * file cannot be created. */
NDE_API nde_status nde_writer_create(const char *path, nde_writer **out, nde_error *err);
/* Without a successful commit, closes and removes the temporary file (the target is untouched).
 * Accepts NULL and *w == NULL; sets *w to NULL. */
NDE_API void nde_writer_destroy(nde_writer **w);
/* Message of the last failure (or "success"). */
NDE_API const char *nde_writer_errmsg(const nde_writer *w);

/* The first failing call makes the writer failed: later calls return the same status without
 * doing anything, and commit removes the temporary file and returns it.  Paths inside the file
 * are absolute ("/params/theta"); missing groups on the way are created.  Writing to a path that
 * already exists is NDE_ERR_ARG. */

/* A float64 dataset of rank 0..NDE_DATA_MAX_RANK with dims[rank] (row-major x). */
NDE_API nde_status nde_writer_put_doubles(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const double *x);
NDE_API nde_status nde_writer_put_int64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                 const int64_t *x);
/* uint64 datasets hold bit patterns such as RNG states exactly. */
NDE_API nde_status nde_writer_put_uint64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const uint64_t *x);
/* A scalar UTF-8 string dataset (model source text, command line). */
NDE_API nde_status nde_writer_put_string(nde_writer *w, const char *path, const char *text);
/* A 1-D dataset of n UTF-8 strings (parameter names). */
NDE_API nde_status nde_writer_put_strings(nde_writer *w, const char *path, size_t n,
                                  const char *const *strs);
/* Scalar attributes on the object at obj ("/" is the root); a missing obj is created as a group,
 * an existing attribute of that name is replaced. */
NDE_API nde_status nde_writer_set_attr_string(nde_writer *w, const char *obj, const char *name,
                                      const char *value);
NDE_API nde_status nde_writer_set_attr_double(nde_writer *w, const char *obj, const char *name,
                                      double value);
NDE_API nde_status nde_writer_set_attr_int64(nde_writer *w, const char *obj, const char *name,
                                     int64_t value);

/* A time series in the convention of docs/data-format.md: times and observations. */
struct nde_series {
  size_t n;                       /* N >= 1 observation times */
  size_t d;                       /* D >= 1 columns */
  const double *t;                /* [N] finite, strictly increasing */
  const double *y;                /* [N x D] row-major; NaN = missing, Inf refused */
  const char *const *names;       /* D distinct state names (attribute state_names), or NULL */
  const double *noise_std;        /* D noise standard deviations (attribute noise_std), or NULL */
};

/* The rest of a series: known noise, measured inputs and per-series constants.  Start from a
 * zeroed struct ({0}) and fill what the series has; every part is optional.  (Kept apart from
 * nde_series so that existing positional initialisers of nde_series stay complete.) */
struct nde_series_extra {
  const double *sigma;            /* D known noise std per column (attribute sigma), or NULL */
  /* Measured inputs (/inputs/t, /inputs/u with attribute input_names); m == 0 for none. */
  size_t m;                       /* number of input columns */
  size_t n_u;                     /* M >= 1 input times */
  const double *u_t;              /* [M] finite, strictly increasing, covering t[0] .. t[N-1] */
  const double *u;                /* [M x m] row-major, finite */
  const char *const *input_names; /* [m] distinct, non-empty */
  /* Per-series constants (float64 attributes of the series' group). */
  size_t n_consts;
  const char *const *const_names; /* [n_consts] distinct, non-empty */
  const double *consts;           /* [n_consts] finite */
  /* nde_data_from_series: the trajectory's name ("/" or "/run1", as a file's group), or NULL
   * for "series K".  A group path: "/", "/NAME" or "/GROUP/NAME", without empty parts
   * (NDE_ERR_DATA otherwise).  Not read by the writer, whose group argument names the series. */
  const char *name;
};

/* Write /GROUP/t and /GROUP/y (group NULL or "/" for the root) with their attributes, after
 * checking the series as nde_data_open would (NDE_ERR_DATA with the same messages). */
NDE_API nde_status nde_writer_put_series(nde_writer *w, const char *group, const nde_series *s);
/* The same with the extra parts x (NULL for none): /GROUP/y gets attribute sigma,
 * /GROUP/inputs/t and /GROUP/inputs/u (attribute input_names) the inputs, and /GROUP float64
 * attributes the constants. */
NDE_API nde_status nde_writer_put_series_ex(nde_writer *w, const char *group, const nde_series *s,
                                            const nde_series_extra *x);


/* Close the temporary file, fsync it, rename it over the target and fsync the directory.  On
 * failure the temporary file is removed and the target is untouched. */
NDE_API nde_status nde_writer_commit(nde_writer *w);

/* Write len bytes (a text output: CSV, a model, C source) to path the way nde_writer_commit
 * writes an HDF5 file: the target checked as nde_writer_check_target does, stale temporary files
 * of its name swept, a locked temporary file in its directory written, synced, given the mode
 * (and, as root, the owner) of the file it replaces and renamed over it, the directory synced.
 * On failure path is untouched and nothing is left behind.  NDE_ERR_IO with the message in err
 * ("out.csv: cannot write (no space left on device)"), NDE_ERR_NOMEM, NDE_ERR_ARG. */
NDE_API nde_status nde_write_file(const char *path, const void *bytes, size_t len, nde_error *err);

/* ------------------------------------------------------------------------------------------ */
/* Generic reader (result files)                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct nde_reader nde_reader;

typedef enum { NDE_H5_NONE = 0, NDE_H5_GROUP, NDE_H5_DATASET, NDE_H5_OTHER } nde_h5_kind;

NDE_API nde_status nde_reader_open(const char *path, nde_reader **out, nde_error *err);
NDE_API void nde_reader_destroy(nde_reader **r);
NDE_API const char *nde_reader_errmsg(const nde_reader *r);
NDE_API const char *nde_reader_file(const nde_reader *r);

/* What path names in the file (NDE_H5_NONE when nothing, including a missing parent group). */
NDE_API nde_h5_kind nde_reader_kind(nde_reader *r, const char *path);
/* Rank and dims (dims has room for NDE_DATA_MAX_RANK) of the dataset at path. */
NDE_API nde_status nde_reader_shape(nde_reader *r, const char *path, int *rank, size_t *dims);
/* Read all n elements of a numeric dataset (integer or float; converted to double) into x.  n must
 * equal the dataset's element count (NDE_ERR_DATA otherwise, with both counts). */
NDE_API nde_status nde_reader_get_doubles(nde_reader *r, const char *path, size_t n, double *x);
/* Same for integer datasets (NDE_ERR_DATA for any other type class). */
NDE_API nde_status nde_reader_get_int64s(nde_reader *r, const char *path, size_t n, int64_t *x);
NDE_API nde_status nde_reader_get_uint64s(nde_reader *r, const char *path, size_t n, uint64_t *x);
/* A scalar string dataset (fixed or variable length); *text is allocated: release with nde_free. */
NDE_API nde_status nde_reader_get_string(nde_reader *r, const char *path, char **text);
/* A 1-D string dataset: *strs is one malloc'ed block holding *n pointers and the texts; release
 * it with a single nde_free. */
NDE_API nde_status nde_reader_get_strings(nde_reader *r, const char *path, size_t *n, char ***strs);
/* Whether obj has attribute name (0 or 1; 0 when obj does not exist). */
NDE_API int nde_reader_has_attr(nde_reader *r, const char *obj, const char *name);
/* Scalar attributes; *value of get_attr_string is allocated: release with nde_free. */
NDE_API nde_status nde_reader_get_attr_string(nde_reader *r, const char *obj, const char *name,
                                      char **value);
NDE_API nde_status nde_reader_get_attr_double(nde_reader *r, const char *obj, const char *name,
                                      double *value);
NDE_API nde_status nde_reader_get_attr_int64(nde_reader *r, const char *obj, const char *name,
                                     int64_t *value);

/* The names of every attribute of obj, in name order: *names is one block of *n pointers (then a
 * NULL) and the texts; release it with a single nde_free.  NDE_ERR_DATA when obj does not
 * exist. */
NDE_API nde_status nde_reader_attr_names(nde_reader *r, const char *obj, size_t *n,
                                         char ***names);

/* One object met by nde_reader_visit.  Views valid during the callback only. */
typedef struct nde_h5_object {
  const char *path;   /* "/params/theta" */
  nde_h5_kind kind;
  const char *type;   /* datasets: "float64", "float32", "int64", "string", ...; "" otherwise */
  int rank;           /* datasets: rank and dims; 0 otherwise */
  size_t dims[NDE_DATA_MAX_RANK];
  int n_attrs;        /* number of attributes on the object */
  /* For a group met before under another path (a second hard link, a link that makes a cycle or
   * leads back to the root), that first path; its members are not walked again.  NULL otherwise
   * (datasets reached through several hard links are reported under each). */
  const char *same_as;
} nde_h5_object;

/* Call visit for every group and dataset below the root, in name order (for `nde inspect`).
 * Each object is walked once: a group reached again (hard links forming a cycle, a link back to
 * the root) is reported with same_as and not descended into.  A link that cannot be resolved
 * (dangling soft or external link) is reported with kind NDE_H5_OTHER.  A non-zero return from
 * visit stops the walk early; the call still returns NDE_OK. */
NDE_API nde_status nde_reader_visit(nde_reader *r, int (*visit)(void *ctx, const nde_h5_object *obj),
                            void *ctx);

/* Read /params/theta (rank 0 or 1, numeric, all finite) from a result file, or from any HDF5 file
 * that holds it.  *theta is allocated ([*n]); release with nde_free.  NDE_ERR_IO / NDE_ERR_DATA as
 * for the reader, with the first non-finite index. */
NDE_API nde_status nde_read_theta(const char *path, size_t *n, double **theta, nde_error *err);

/* Read /params/theta into the caller's theta[n], checking the element count against n before
 * reading anything (a small file declaring 4e8 elements costs nothing): NDE_ERR_DATA "wrong size
 * (expected n values, got ...)" when it differs.  Prefer this to nde_read_theta whenever the
 * model's parameter count is known. */
NDE_API nde_status nde_read_theta_expect(const char *path, size_t n, double *theta,
                                         nde_error *err);

/* ------------------------------------------------------------------------------------------ */
/* A masked copy (the resampled fits of an ensemble)                                            */
/* ------------------------------------------------------------------------------------------ */

/* A copy of d in which the observation rows with keep[row] == 0 are missing (NaN): keep holds
 * one byte per observation time of every series in order (nde_data_n_times bytes).  The copy
 * has d's file name, series, times and noise_std; its statistics and counts are its own (the
 * masked values count as missing).  Its measured inputs, constants and sigma are views of d's:
 * d must outlive the copy.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_data_masked(const nde_data *d, const unsigned char *keep, nde_data **out,
                                   nde_error *err);

#ifdef __cplusplus
}
#endif
#endif
