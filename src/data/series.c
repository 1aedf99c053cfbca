/* Loading time series: /t [N] and /y [N, D] per series, with their measured inputs
 * (/inputs/t [M], /inputs/u [M, m]), per-series constants (attributes of the series' group) and
 * known noise (attribute sigma of /y), validated, then mapped by name onto the model's states,
 * inputs and constants (docs/data-format.md).  The same data set can be made from arrays, with
 * the same checks and messages.  Every size read from a file is checked against opts.max_bytes
 * with overflow-checked arithmetic before anything is allocated; names are matched through a
 * hash index, so a file of 200,000 columns loads in linear time. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "h5util.h"

typedef struct traj_store {
  char *name;
  double *t, *y, *noise, *sigma, *u_t, *u, *consts;
  int *col;
  char **input_names; /* the file's own names (inspection mode), one block */
} traj_store;

struct nde_data {
  char *file;
  int from_arrays; /* made by nde_data_from_series: its series are named "series K" in messages */
  size_t n_state;
  char **state_names;  /* one block: pointers then texts */
  char **input_names;  /* the requested inputs, one block (NULL when none) */
  char **const_names;  /* the requested constants, one block (NULL when none) */
  size_t n_inputs, n_consts;
  size_t n_traj;
  nde_traj *traj;
  traj_store *store;
  nde_state_stats *stats;
  size_t n_times, n_obs, n_nan;
};

/* One series as it is in the file (or in the caller's arrays), before mapping onto states. */
typedef struct raw_series {
  char *group;   /* "/" or "/run1" */
  nde_series s;        /* view of the arrays below, for nde__check_series */
  nde_series_extra x;
  double *t, *y, *noise, *sigma, *u_t, *u, *consts;
  char **names;       /* [d] block, or NULL */
  char **input_names; /* [m] block, or NULL */
  char *name;         /* arrays: the caller's name for the trajectory, or NULL */
  size_t n_nan;
} raw_series;

typedef struct loader {
  const char *file; /* the file name, or "series K" */
  hid_t fid;
  nde__err *err;
  size_t max_bytes;
  size_t bytes; /* reserved so far */
  size_t n_state;
  const nde_data_opts *opts;
  int inspect; /* n_state == 0 */
} loader;

const char *nde_data_hdf5_version(void) {
  static const char v[] = H5_VERS_INFO;
  /* H5_VERS_INFO reads "HDF5 library version: 1.10.8": keep the number. */
  const char *p = strstr(v, ": ");
  return p ? p + 2 : v;
}

void nde_data_hdf5_errors_off(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

nde_data_opts nde_data_opts_default(void) {
  nde_data_opts o;
  memset(&o, 0, sizeof o);
#if SIZE_MAX > 0xFFFFFFFFu
  o.max_bytes = (size_t)1 << 32;
#else
  o.max_bytes = SIZE_MAX;
#endif
  return o;
}

static void raw_free(raw_series *r) {
  free(r->group);
  free(r->t);
  free(r->y);
  free(r->noise);
  free(r->sigma);
  free(r->u_t);
  free(r->u);
  free(r->consts);
  free(r->names);
  free(r->input_names);
  free(r->name);
  memset(r, 0, sizeof *r);
}

/* A table (path, dims rows x columns) beside its times (tpath, n_t of them): one row per time
 * and at least one column. */
static nde_status table_shape(loader *L, const char *tpath, hsize_t n_t, const char *path,
                              const hsize_t *dim) {
  if (dim[0] != n_t)
    return nde__derrf(L->err, NDE_ERR_DATA,
                      "%s:%s: row count disagrees with %s (expected %llu rows, one per time in "
                      "%s, got %llu)",
                      L->file, path, tpath, (unsigned long long)n_t, tpath,
                      (unsigned long long)dim[0]);
  if (dim[1] == 0)
    return nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: no columns (expected at least 1, got 0)",
                      L->file, path);
  return NDE_OK;
}

/* Reserve bytes against the limit; the message names what needed them. */
static nde_status reserve(loader *L, const char *dset, size_t rows, size_t cols) {
  size_t b = 0, total = 0;
  if (!nde__mul_size(rows, cols, &b) || !nde__mul_size(b, sizeof(double), &b) ||
      !nde__add_size(L->bytes, b, &total) || total > L->max_bytes)
    return nde__derrf(L->err, NDE_ERR_DATA,
                      "%s:%s: too large to load (expected at most %zu bytes in memory, got [%zu, "
                      "%zu] float64 values%s)",
                      L->file, dset, L->max_bytes, rows, cols,
                      L->bytes ? " on top of the series already loaded" : "");
  L->bytes = total;
  return NDE_OK;
}

static nde_status h5_fail(loader *L, nde_status st, const char *dset, const char *what) {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  return nde__derrf(L->err, st, "%s:%s: %s (HDF5: %s)", L->file, dset, what, h5);
}

static nde_status nomem(loader *L, const char *where) {
  return nde__derrf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory", L->file, where);
}

/* Open a floating-point dataset of the given rank; dims receives its extent. */
static nde_status open_float(loader *L, const char *dset, int want_rank, const char *meaning,
                             hid_t *out, hsize_t *dims) {
  char tname[64];
  *out = -1;
  nde_h5_kind kind = nde__h5_kind(L->fid, dset);
  if (kind == NDE_H5_NONE)
    return nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: no such dataset (expected %s)", L->file,
                      dset, meaning);
  if (kind != NDE_H5_DATASET)
    return nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: not a dataset (expected %s, got a %s)",
                      L->file, dset, meaning, kind == NDE_H5_GROUP ? "group" : "named datatype");
  hid_t ds = H5Dopen2(L->fid, dset, H5P_DEFAULT);
  if (ds < 0) return h5_fail(L, NDE_ERR_IO, dset, "cannot open");
  nde_status st = NDE_OK;
  hid_t type = H5Dget_type(ds), space = H5Dget_space(ds);
  if (type < 0 || space < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read the type");
    goto out;
  }
  size_t tsize = H5Tget_size(type);
  if (H5Tget_class(type) != H5T_FLOAT || (tsize != 4 && tsize != 8)) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: wrong type (expected float64 or float32, got %s)", L->file, dset,
                    tname);
    goto out;
  }
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank != want_rank) {
    hsize_t d[H5S_MAX_RANK];
    char shape[256] = "";
    if (rank > 0 && rank <= H5S_MAX_RANK && H5Sget_simple_extent_dims(space, d, NULL) >= 0) {
      size_t k = 0;
      for (int i = 0; i < rank && k < sizeof shape - 24; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%llu", i ? ", " : " [",
                              (unsigned long long)d[i]);
      snprintf(shape + k, sizeof shape - k, "]");
    }
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: wrong rank (expected rank %d, %s, got rank %d%s)", L->file, dset,
                    want_rank, meaning, rank, shape);
    goto out;
  }
  if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read the shape");
    goto out;
  }
  for (int i = 0; i < rank; i++)
    if (dims[i] > SIZE_MAX || (i == 1 && dims[i] > (hsize_t)INT32_MAX)) {
      st = nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: too large to load (dimension %d is %llu)",
                      L->file, dset, i, (unsigned long long)dims[i]);
      goto out;
    }
out:
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (st != NDE_OK)
    H5Dclose(ds);
  else
    *out = ds;
  return st;
}

/* Read the optional numeric attribute name of /y: D values or one for every column. */
static nde_status read_per_column(loader *L, hid_t yds, const char *dset, const char *name,
                                  size_t d, double **out) {
  htri_t has = H5Aexists(yds, name);
  if (has <= 0) return has < 0 ? h5_fail(L, NDE_ERR_IO, dset, "cannot read attributes") : NDE_OK;
  nde_status st = NDE_OK;
  char tname[64];
  hid_t a = H5Aopen(yds, name, H5P_DEFAULT);
  hid_t type = a >= 0 ? H5Aget_type(a) : -1, space = a >= 0 ? H5Aget_space(a) : -1;
  if (type < 0 || space < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read an attribute");
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: attribute %s has the wrong type (expected float64, got %s)", L->file,
                    dset, name, tname);
    goto out;
  }
  if (np != 1 && (np < 0 || (uint64_t)np != d)) {
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: attribute %s has %lld values (expected 1 or %zu, one per column)",
                    L->file, dset, name, (long long)np, d);
    goto out;
  }
  *out = nde__dalloc(d);
  if (!*out) {
    st = nomem(L, dset);
    goto out;
  }
  if (H5Aread(a, H5T_NATIVE_DOUBLE, *out) < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read an attribute");
    goto out;
  }
  if (np == 1)
    for (size_t c = 1; c < d; c++) (*out)[c] = (*out)[0];
out:
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (a >= 0) H5Aclose(a);
  return st;
}

/* The string attribute name of dataset ds: exactly want strings into *names. */
static nde_status read_name_attr(loader *L, hid_t ds, const char *dset, const char *name,
                                 size_t want, int required, char ***names) {
  htri_t has = H5Aexists(ds, name);
  if (has < 0) return h5_fail(L, NDE_ERR_IO, dset, "cannot read attributes");
  if (!has)
    return required ? nde__derrf(L->err, NDE_ERR_DATA,
                                 "%s:%s: no attribute %s (expected %zu names, one per column)",
                                 L->file, dset, name, want)
                    : NDE_OK;
  hid_t a = H5Aopen(ds, name, H5P_DEFAULT);
  if (a < 0) return h5_fail(L, NDE_ERR_IO, dset, "cannot open an attribute");
  char why[320];
  size_t n = 0;
  nde_status st = nde__h5_read_strings(a, true, &n, names, why, sizeof why);
  H5Aclose(a);
  if (st != NDE_OK)
    return nde__derrf(L->err, st, "%s:%s: attribute %s %s (%s)", L->file, dset, name,
                      st == NDE_ERR_DATA && !strncmp(why, "expected", 8) ? "has the wrong type"
                                                                          : "is unreadable",
                      why);
  if (n != want)
    return nde__derrf(L->err, NDE_ERR_DATA,
                      "%s:%s: attribute %s has %zu name%s (expected %zu, one per column)",
                      L->file, dset, name, n, n == 1 ? "" : "s", want);
  return NDE_OK;
}

/* One requested constant: attribute name of the series' group, else of the batch's group. */
static nde_status read_const(loader *L, const char *group, const char *parent, const char *name,
                             double *value) {
  char tname[64];
  const char *where = group;
  htri_t has = H5Aexists_by_name(L->fid, group, name, H5P_DEFAULT);
  if (has == 0 && parent) {
    where = parent;
    has = H5Aexists_by_name(L->fid, parent, name, H5P_DEFAULT);
  }
  if (has < 0) return h5_fail(L, NDE_ERR_IO, where, "cannot read attributes");
  if (!has)
    return nde__derrf(L->err, NDE_ERR_DATA,
                      "%s:%s: no attribute %s (expected the per-series constant %s, a number "
                      "attribute of the series' group%s%s)",
                      L->file, group, name, name, parent ? " or of " : "", parent ? parent : "");
  hid_t a = H5Aopen_by_name(L->fid, where, name, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return h5_fail(L, NDE_ERR_IO, where, "cannot open an attribute");
  nde_status st = NDE_OK;
  hid_t type = H5Aget_type(a), space = H5Aget_space(a);
  if (type < 0 || space < 0) {
    st = h5_fail(L, NDE_ERR_IO, where, "cannot read an attribute");
    goto out;
  }
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: attribute %s has the wrong type (expected a number, the per-series "
                    "constant %s, got %s)",
                    L->file, where, name, name, tname);
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  if (np != 1) {
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: attribute %s has %lld values (expected one, the per-series constant "
                    "%s)",
                    L->file, where, name, (long long)np, name);
    goto out;
  }
  if (H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0) st = h5_fail(L, NDE_ERR_IO, where, "cannot read");
out:
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  H5Aclose(a);
  return st;
}

/* Read /GROUP/inputs when the model asks for inputs, or in inspection mode when it is there. */
static nde_status load_inputs(loader *L, const char *group, raw_series *r) {
  const nde_data_opts *o = L->opts;
  char *ut = nde__h5_join(group, "inputs/t"), *up = nde__h5_join(group, "inputs/u");
  char *meaning = NULL, list[512];
  hid_t tds = -1, uds = -1;
  hsize_t tdim[1] = {0}, udim[2] = {0, 0};
  nde_status st = NDE_OK;
  if (!ut || !up) {
    st = nomem(L, group);
    goto out;
  }
  if (!o->n_inputs && (!L->inspect || nde__h5_kind(L->fid, up) == NDE_H5_NONE)) goto out;
  nde__name_list(list, sizeof list, o->n_inputs, o->input_names);
  nde_str m = NDE_STR_INIT;
  if (o->n_inputs)
    nde_str_addf(&m, "float64 [M, %zu] measured inputs %s", o->n_inputs, list);
  else
    nde_str_adds(&m, "float64 [M, m] measured inputs");
  meaning = nde_str_take(&m);
  if (!meaning) {
    st = nomem(L, group);
    goto out;
  }
  if ((st = open_float(L, up, 2, meaning, &uds, udim))) goto out;
  if ((st = open_float(L, ut, 1, "float64 [M] input times", &tds, tdim))) goto out;
  if (tdim[0] == 0) {
    st = nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: no input times (expected at least 1, got 0)",
                    L->file, ut);
    goto out;
  }
  if ((st = table_shape(L, ut, tdim[0], up, udim))) goto out;
  r->x.n_u = (size_t)tdim[0];
  r->x.m = (size_t)udim[1];
  /* The file's inputs and their copy in the model's order. */
  if ((st = reserve(L, ut, r->x.n_u, 1)) ||
      (st = reserve(L, up, r->x.n_u, r->x.m + (o->n_inputs ? o->n_inputs : r->x.m))))
    goto out;
  if ((st = read_name_attr(L, uds, up, "input_names", r->x.m, 1, &r->input_names))) goto out;
  r->u_t = nde__dalloc(r->x.n_u);
  r->u = nde__dalloc(r->x.n_u * r->x.m); /* product checked by reserve */
  if (!r->u_t || !r->u) {
    st = nomem(L, up);
    goto out;
  }
  if (H5Dread(tds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->u_t) < 0) {
    st = h5_fail(L, NDE_ERR_IO, ut, "cannot read");
    goto out;
  }
  if (H5Dread(uds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->u) < 0) {
    st = h5_fail(L, NDE_ERR_IO, up, "cannot read");
    goto out;
  }
out:
  if (tds >= 0) H5Dclose(tds);
  if (uds >= 0) H5Dclose(uds);
  free(meaning);
  free(ut);
  free(up);
  return st;
}

/* Point the series view at the loaded arrays. */
static void raw_view(raw_series *r) {
  r->s.t = r->t;
  r->s.y = r->y;
  r->s.names = (const char *const *)r->names;
  r->s.noise_std = r->noise;
  r->x.sigma = r->sigma;
  r->x.u_t = r->u_t;
  r->x.u = r->u;
  r->x.input_names = (const char *const *)r->input_names;
  r->x.consts = r->consts;
}

/* Read the series in group (parent: the batch's group, or NULL) into r, then check it. */
static nde_status load_raw(loader *L, const char *group, const char *parent, raw_series *r) {
  char *tpath = nde__h5_join(group, "t"), *ypath = nde__h5_join(group, "y");
  hid_t tds = -1, yds = -1;
  hsize_t tdim[1] = {0}, ydim[2] = {0, 0};
  nde_status st = NDE_OK;
  r->group = nde__strdup(group);
  if (!tpath || !ypath || !r->group) {
    st = nomem(L, group);
    goto out;
  }
  st = open_float(L, tpath, 1, "float64 [N] observation times", &tds, tdim);
  if (st) goto out;
  st = open_float(L, ypath, 2, "float64 [N, D] observations", &yds, ydim);
  if (st) goto out;
  if (tdim[0] == 0) {
    st = nde__derrf(L->err, NDE_ERR_DATA,
                    "%s:%s: no observation times (expected at least 1, got 0)", L->file, tpath);
    goto out;
  }
  if ((st = table_shape(L, tpath, tdim[0], ypath, ydim))) goto out;
  r->s.n = (size_t)tdim[0];
  r->s.d = (size_t)ydim[1];
  /* t, the file's columns, and the state layout built from them (at least one column). */
  size_t cols = 0;
  if (!nde__add_size(r->s.d, L->n_state ? L->n_state : r->s.d, &cols)) cols = SIZE_MAX;
  if ((st = reserve(L, tpath, r->s.n, 1)) || (st = reserve(L, ypath, r->s.n, cols))) goto out;

  if ((st = read_name_attr(L, yds, ypath, "state_names", r->s.d, 0, &r->names)) ||
      (st = read_per_column(L, yds, ypath, "noise_std", r->s.d, &r->noise)) ||
      (st = read_per_column(L, yds, ypath, "sigma", r->s.d, &r->sigma)))
    goto out;
  if ((st = load_inputs(L, group, r))) goto out;
  const nde_data_opts *o = L->opts;
  if (o->n_consts) {
    r->consts = nde__dalloc(o->n_consts);
    if (!r->consts) {
      st = nomem(L, group);
      goto out;
    }
    for (size_t k = 0; k < o->n_consts; k++)
      if ((st = read_const(L, group, parent, o->const_names[k], &r->consts[k]))) goto out;
    r->x.n_consts = o->n_consts;
    r->x.const_names = o->const_names;
  }

  r->t = nde__dalloc(r->s.n);
  r->y = nde__dalloc(r->s.n * r->s.d); /* product checked by reserve */
  if (!r->t || !r->y) {
    st = nde__derrf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory for [%zu, %zu] values",
                    L->file, ypath, r->s.n, r->s.d);
    goto out;
  }
  if (H5Dread(tds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->t) < 0) {
    st = h5_fail(L, NDE_ERR_IO, tpath, "cannot read");
    goto out;
  }
  if (H5Dread(yds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->y) < 0) {
    st = h5_fail(L, NDE_ERR_IO, ypath, "cannot read");
    goto out;
  }
  raw_view(r);
  st = nde__check_series(L->err, L->file, group, &r->s, &r->x, &r->n_nan);
out:
  if (tds >= 0) H5Dclose(tds);
  if (yds >= 0) H5Dclose(yds);
  free(tpath);
  free(ypath);
  return st;
}

/* Copy n doubles (NULL stays NULL). */
static int copy_doubles(double **dst, const double *src, size_t n) {
  *dst = NULL;
  if (!src) return 0;
  *dst = nde__dalloc(n);
  if (!*dst) return -1;
  if (n) memcpy(*dst, src, n * sizeof **dst);
  return 0;
}

/* Copy n strings into one block (NULL stays NULL; a NULL string becomes ""). */
static int copy_names(char ***dst, const char *const *src, size_t n) {
  *dst = NULL;
  if (!src) return 0;
  size_t total = 0;
  if (!nde__mul_size(n, sizeof(char *), &total)) return -1;
  for (size_t i = 0; i < n; i++)
    if (!nde__add_size(total, (src[i] ? strlen(src[i]) : 0) + 1, &total)) return -1;
  char **b = malloc(total ? total : 1);
  if (!b) return -1;
  char *text = (char *)(b + n);
  for (size_t i = 0; i < n; i++) {
    size_t l = src[i] ? strlen(src[i]) : 0;
    if (l) memcpy(text, src[i], l);
    text[l] = '\0';
    b[i] = text;
    text += l + 1;
  }
  *dst = b;
  return 0;
}

/* A series from the caller's arrays, copied and checked as a file's series would be. */
static nde_status load_array(loader *L, const nde_series *s, const nde_series_extra *x,
                              raw_series *r) {
  static const nde_series_extra none;
  if (!x) x = &none;
  const nde_data_opts *o = L->opts;
  r->group = nde__strdup("/");
  if (!r->group || (x->name && !(r->name = nde__strdup(x->name)))) return nomem(L, "/");
  if (!s->t || !s->y || (x->m && (!x->u_t || !x->u)) ||
      (x->n_consts && (!x->const_names || !x->consts)))
    return nde__derrf(L->err, NDE_ERR_ARG, "%s: t, y, u_t, u, const_names or consts is NULL",
                      L->file);
  r->s.n = s->n;
  r->s.d = s->d;
  size_t cols = 0;
  if (!nde__add_size(s->d, L->n_state ? L->n_state : s->d, &cols)) cols = SIZE_MAX;
  if (s->n == 0 || s->d == 0) {
    raw_view(r);
    return nde__check_series(L->err, L->file, "/", &r->s, &r->x, NULL);
  }
  if (s->d > (size_t)INT32_MAX)
    return nde__derrf(L->err, NDE_ERR_DATA, "%s:/y: too large to load (dimension 1 is %zu)",
                      L->file, s->d);
  nde_status st;
  if ((st = reserve(L, "/t", s->n, 1)) || (st = reserve(L, "/y", s->n, cols))) return st;
  int inputs = o->n_inputs || (L->inspect && x->m);
  if (inputs && x->m &&
      ((st = reserve(L, "/inputs/t", x->n_u, 1)) ||
       (st = reserve(L, "/inputs/u", x->n_u, x->m + (o->n_inputs ? o->n_inputs : x->m)))))
    return st;
  if (copy_doubles(&r->t, s->t, s->n) || copy_doubles(&r->y, s->y, s->n * s->d) ||
      copy_doubles(&r->noise, s->noise_std, s->d) || copy_doubles(&r->sigma, x->sigma, s->d) ||
      copy_names(&r->names, s->names, s->d))
    return nomem(L, "/y");
  if (inputs && x->m) {
    r->x.m = x->m;
    r->x.n_u = x->n_u;
    if (copy_doubles(&r->u_t, x->u_t, x->n_u) || copy_doubles(&r->u, x->u, x->n_u * x->m) ||
        copy_names(&r->input_names, x->input_names, x->m))
      return nomem(L, "/inputs/u");
  }
  if (o->n_consts) {
    r->consts = nde__dalloc(o->n_consts);
    if (!r->consts) return nomem(L, "/");
    for (size_t k = 0; k < o->n_consts; k++) {
      size_t j = 0;
      while (j < x->n_consts && !(x->const_names[j] && !strcmp(x->const_names[j],
                                                               o->const_names[k])))
        j++;
      if (j == x->n_consts)
        return nde__derrf(L->err, NDE_ERR_DATA,
                          "%s:/: no attribute %s (expected the per-series constant %s, a number "
                          "attribute of the series' group)",
                          L->file, o->const_names[k], o->const_names[k]);
      r->consts[k] = x->consts[j];
    }
    r->x.n_consts = o->n_consts;
    r->x.const_names = o->const_names;
  }
  raw_view(r);
  return nde__check_series(L->err, L->file, "/", &r->s, &r->x, &r->n_nan);
}

/* ---- which series a path selects ---- */

typedef struct group_list {
  char **names;
  size_t n, cap;
  int nomem;
  /* The first link that cannot be resolved: its name and what it points to. */
  char *bad, *bad_target;
  int bad_kind; /* H5L_type_t */
} group_list;

/* Where a soft or external link points, malloc'ed ("" when it cannot be told). */
static char *link_target(hid_t g, const char *name, const H5L_info_t *info) {
  size_t n = info->u.val_size;
  char *buf = n && n < ((size_t)1 << 20) ? malloc(n + 1) : NULL;
  char *out = NULL;
  if (buf && H5Lget_val(g, name, buf, n + 1, H5P_DEFAULT) >= 0) {
    buf[n] = '\0';
    if (info->type == H5L_TYPE_SOFT) {
      out = nde__strdup(buf);
    } else if (info->type == H5L_TYPE_EXTERNAL) {
      const char *file = NULL, *obj = NULL;
      unsigned flags = 0;
      if (H5Lunpack_elink_val(buf, n, &flags, &file, &obj) >= 0 && file && obj) {
        out = malloc(strlen(file) + strlen(obj) + 2);
        if (out) sprintf(out, "%s:%s", file, obj);
      }
    }
  }
  free(buf);
  H5Eclear2(H5E_DEFAULT);
  return out ? out : nde__strdup("");
}

static herr_t collect_group(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
  group_list *gl = ctx;
  hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
  if (obj < 0) {
    H5Eclear2(H5E_DEFAULT);
    /* A dangling soft or external link (or a hard link to a corrupt object): refuse it rather
     * than lose a series without a word. */
    gl->bad = nde__strdup(name);
    gl->bad_target = link_target(g, name, info);
    gl->bad_kind = info->type;
    if (!gl->bad || !gl->bad_target) gl->nomem = 1;
    return 1;
  }
  int is_group = H5Iget_type(obj) == H5I_GROUP;
  H5Oclose(obj);
  if (!is_group) return 0;
  if (gl->n == gl->cap) {
    size_t cap = gl->cap ? 2 * gl->cap : 8;
    char **p = realloc(gl->names, cap * sizeof *p);
    if (!p) goto nomem;
    gl->names = p;
    gl->cap = cap;
  }
  gl->names[gl->n] = nde__strdup(name);
  if (!gl->names[gl->n]) goto nomem;
  gl->n++;
  return 0;
nomem:
  gl->nomem = 1;
  return 1;
}

static void group_list_free(group_list *gl) {
  for (size_t i = 0; i < gl->n; i++) free(gl->names[i]);
  free(gl->names);
  free(gl->bad);
  free(gl->bad_target);
  memset(gl, 0, sizeof *gl);
}

static nde_status list_groups(loader *L, const char *at, group_list *gl) {
  hid_t g = H5Gopen2(L->fid, at, H5P_DEFAULT);
  if (g < 0) return h5_fail(L, NDE_ERR_IO, at, "cannot open group");
  herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_group, gl);
  H5Gclose(g);
  if (gl->nomem) return nomem(L, at);
  if (gl->bad) {
    char *p = nde__h5_join(at, gl->bad);
    nde_status st = nde__derrf(
        L->err, NDE_ERR_DATA, "%s:%s: link cannot be resolved (expected a group holding t and y, "
        "got %s%s%s)", L->file, p ? p : gl->bad,
        gl->bad_kind == H5L_TYPE_SOFT       ? "a soft link to "
        : gl->bad_kind == H5L_TYPE_EXTERNAL ? "an external link to "
                                            : "a link to an unreadable object",
        gl->bad_kind == H5L_TYPE_SOFT || gl->bad_kind == H5L_TYPE_EXTERNAL ? gl->bad_target : "",
        gl->bad_kind == H5L_TYPE_SOFT || gl->bad_kind == H5L_TYPE_EXTERNAL ? ", which is missing"
                                                                            : "");
    free(p);
    return st;
  }
  if (rc < 0) return h5_fail(L, NDE_ERR_IO, at, "cannot list group");
  return NDE_OK;
}

/* The parent of a missing selector's groups, listed in the message. */
static nde_status missing_group(loader *L, const char *sel) {
  group_list gl = {0};
  char list[512] = "";
  nde__err scratch;
  nde__err *keep = L->err;
  L->err = &scratch;
  if (list_groups(L, "/", &gl) == NDE_OK) {
    char **with_slash = calloc(gl.n ? gl.n : 1, sizeof *with_slash);
    size_t k = 0;
    for (; with_slash && k < gl.n; k++)
      if (!(with_slash[k] = nde__h5_join("/", gl.names[k]))) break;
    if (with_slash && k == gl.n)
      nde__name_list(list, sizeof list, gl.n, (const char *const *)with_slash);
    for (size_t i = 0; with_slash && i < k; i++) free(with_slash[i]);
    free(with_slash);
  }
  L->err = keep;
  group_list_free(&gl);
  return nde__derrf(L->err, NDE_ERR_DATA, "%s:%s: no such group (expected %s%s)", L->file, sel,
                    list[0] ? "one of " : "an existing group; the file has none", list);
}

/* ---- mapping onto states, inputs and constants ---- */

/* n strings into one block d (pointers then texts). */
static int pack_names(char ***d, size_t n, const char *const *names) {
  return copy_names(d, names, n);
}

static nde_status build_states(nde_data *d, loader *L, size_t n_state,
                               const char *const *names, raw_series *raw, size_t n_raw) {
  /* Inspection: the union of column names, "column k" for unnamed columns. */
  const char **list = NULL;
  char **owned = NULL; /* "column k" labels made here */
  size_t count = 0, cap = 0, n_owned = 0, cap_owned = 0;
  nde__index ix = {0};
  nde_status st = NDE_OK;
  if (n_state) {
    if (pack_names(&d->state_names, n_state, names)) goto nomem;
    d->n_state = n_state;
    return NDE_OK;
  }
  for (size_t s = 0; s < n_raw; s++)
    for (size_t c = 0; c < raw[s].s.d; c++) {
      const char *nm = raw[s].names ? raw[s].names[c] : NULL;
      char buf[64];
      if (!nm) {
        snprintf(buf, sizeof buf, "column %zu", c + 1);
        nm = buf;
      }
      if (nde__index_find(&ix, nm) != SIZE_MAX) continue;
      if (nm == buf) {
        if (n_owned == cap_owned) {
          cap_owned = cap_owned ? 2 * cap_owned : 8;
          char **p = realloc(owned, cap_owned * sizeof *p);
          if (!p) goto nomem;
          owned = p;
        }
        if (!(owned[n_owned] = nde__strdup(buf))) goto nomem;
        nm = owned[n_owned++];
      }
      if (count == cap) {
        cap = cap ? 2 * cap : 8;
        const char **p = realloc(list, cap * sizeof *p);
        if (!p) goto nomem;
        list = p;
      }
      if (nde__index_add(&ix, nm, count, NULL) < 0) goto nomem;
      list[count++] = nm;
    }
  if (pack_names(&d->state_names, count, list)) goto nomem;
  d->n_state = count;
  goto out;
nomem:
  st = nde__derrf(L->err, NDE_ERR_NOMEM, "%s: out of memory", L->file);
out:
  for (size_t i = 0; i < n_owned; i++) free(owned[i]);
  free(owned);
  free(list);
  nde__index_free(&ix);
  return st;
}

static nde_status map_inputs(nde_data *d, loader *L, raw_series *r, nde_traj *tr,
                             traj_store *ts) {
  const nde_data_opts *o = L->opts;
  if (!o->n_inputs) {
    /* Inspection mode: the series' own inputs, as they are. */
    if (!r->x.m) return NDE_OK;
    ts->u_t = r->u_t;
    ts->u = r->u;
    ts->input_names = r->input_names;
    r->u_t = r->u = NULL;
    r->input_names = NULL;
    tr->n_inputs = r->x.m;
    tr->input_names = (const char *const *)ts->input_names;
    tr->n_u = r->x.n_u;
    tr->u_t = ts->u_t;
    tr->u = ts->u;
    return NDE_OK;
  }
  char *up = nde__h5_join(r->group, "inputs/u");
  nde__index ix = {0};
  nde_status st = NDE_OK;
  if (!up) return nomem(L, r->group);
  size_t m = r->x.m, M = r->x.n_u, k;
  for (k = 0; k < m; k++)
    if (nde__index_add(&ix, r->input_names[k], k, NULL) < 0) {
      st = nomem(L, up);
      goto out;
    }
  ts->u = nde__dalloc(M * o->n_inputs); /* reserved by the loader */
  if (!ts->u) {
    st = nomem(L, up);
    goto out;
  }
  for (size_t j = 0; j < o->n_inputs; j++) {
    size_t c = nde__index_find(&ix, o->input_names[j]);
    if (c == SIZE_MAX) {
      char want[512], got[512];
      nde__name_list(want, sizeof want, o->n_inputs, o->input_names);
      nde__name_list(got, sizeof got, m, (const char *const *)r->input_names);
      st = nde__derrf(L->err, NDE_ERR_DATA,
                      "%s:%s: no input %s (expected columns named %s in attribute "
                      "input_names, got %s)",
                      L->file, up, o->input_names[j], want, got);
      goto out;
    }
    for (size_t i = 0; i < M; i++) ts->u[i * o->n_inputs + j] = r->u[i * m + c];
  }
  ts->u_t = r->u_t;
  r->u_t = NULL;
  tr->n_inputs = o->n_inputs;
  tr->input_names = (const char *const *)d->input_names;
  tr->n_u = M;
  tr->u_t = ts->u_t;
  tr->u = ts->u;
out:
  nde__index_free(&ix);
  free(up);
  return st;
}

static nde_status map_series(nde_data *d, loader *L, const nde__index *states, raw_series *r,
                             const char *name, nde_traj *tr, traj_store *ts) {
  size_t ns = d->n_state, n = r->s.n, D = r->s.d;
  char *ypath = nde__h5_join(r->group, "y");
  nde_status st = NDE_OK;
  ts->col = malloc((ns ? ns : 1) * sizeof *ts->col);
  ts->name = nde__strdup(name);
  size_t cells = 0;
  /* reserve() covered the model's layout; in inspection mode the merged columns can be more. */
  ts->y = nde__mul_size(n, ns, &cells) ? nde__dalloc(cells) : NULL;
  if (!ypath || !ts->col || !ts->name || !ts->y) {
    st = nomem(L, r->group);
    goto out;
  }
  for (size_t j = 0; j < ns; j++) ts->col[j] = -1;
  for (size_t c = 0; c < D; c++) {
    const char *nm = r->names ? r->names[c] : NULL;
    char buf[64];
    if (!nm && L->inspect) {
      snprintf(buf, sizeof buf, "column %zu", c + 1);
      nm = buf;
    }
    size_t j;
    if (nm) {
      j = nde__index_find(states, nm);
      if (j == SIZE_MAX) {
        char list[512];
        nde__name_list(list, sizeof list, ns, (const char *const *)d->state_names);
        st = nde__derrf(L->err, NDE_ERR_DATA,
                        "%s:%s: state_names[%zu] = \"%s\" matches no state of the model "
                        "(expected one of %s)",
                        L->file, ypath, c, nm, list);
        goto out;
      }
    } else {
      if (D != ns) {
        char list[512];
        nde__name_list(list, sizeof list, ns, (const char *const *)d->state_names);
        st = nde__derrf(L->err, NDE_ERR_DATA,
                        "%s:%s: no attribute state_names, so columns map to the model's states "
                        "in order, but the counts differ (expected %zu columns for states %s, "
                        "got %zu)",
                        L->file, ypath, ns, list, D);
        goto out;
      }
      j = c;
    }
    ts->col[j] = (int)c;
  }
  size_t n_obs = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < ns; j++) {
      double v = ts->col[j] < 0 ? NAN : r->y[i * D + (size_t)ts->col[j]];
      ts->y[i * ns + j] = v;
      if (!isnan(v)) n_obs++;
    }
  if (r->noise || r->sigma) {
    ts->noise = r->noise ? nde__dalloc(ns) : NULL;
    ts->sigma = r->sigma ? nde__dalloc(ns) : NULL;
    if ((r->noise && !ts->noise) || (r->sigma && !ts->sigma)) {
      st = nomem(L, ypath);
      goto out;
    }
    for (size_t j = 0; j < ns; j++) {
      if (ts->noise) ts->noise[j] = ts->col[j] < 0 ? NAN : r->noise[(size_t)ts->col[j]];
      if (ts->sigma) ts->sigma[j] = ts->col[j] < 0 ? NAN : r->sigma[(size_t)ts->col[j]];
    }
  }
  if ((st = map_inputs(d, L, r, tr, ts))) goto out;
  if (d->n_consts) {
    ts->consts = r->consts;
    r->consts = NULL;
    tr->n_consts = d->n_consts;
    tr->const_names = (const char *const *)d->const_names;
    tr->consts = ts->consts;
  }
  ts->t = r->t;
  r->t = NULL;
  tr->name = ts->name;
  tr->n = n;
  tr->t = ts->t;
  tr->y = ts->y;
  tr->col = ts->col;
  tr->n_cols = D;
  tr->n_obs = n_obs;
  tr->n_nan = r->n_nan;
  tr->noise_std = ts->noise;
  tr->sigma = ts->sigma;
out:
  free(ypath);
  return st;
}

static void compute_stats(nde_data *d) {
  size_t ns = d->n_state;
  for (size_t j = 0; j < ns; j++) {
    nde_state_stats *s = &d->stats[j];
    double scale = 0;
    size_t n = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
    for (size_t k = 0; k < d->n_traj; k++) {
      const nde_traj *tr = &d->traj[k];
      for (size_t i = 0; i < tr->n; i++) {
        double v = tr->y[i * ns + j];
        if (isnan(v)) continue;
        if (fabs(v) > scale) scale = fabs(v);
        if (v < s->min) s->min = v;
        if (v > s->max) s->max = v;
      }
    }
    if (!(scale > 0)) scale = 1;
    /* Welford's update on values scaled to at most 1 in magnitude: stable for long series with a
     * large mean, and no overflow of the squares for finite values near 1e308. */
    double mean = 0, m2 = 0;
    for (size_t k = 0; k < d->n_traj; k++) {
      const nde_traj *tr = &d->traj[k];
      for (size_t i = 0; i < tr->n; i++) {
        double v = tr->y[i * ns + j];
        if (isnan(v)) continue;
        v /= scale;
        n++;
        double delta = v - mean;
        mean += delta / (double)n;
        m2 += delta * (v - mean);
      }
    }
    s->n_obs = n;
    s->mean = n ? mean * scale : NAN;
    s->std = n > 1 ? sqrt(m2 / (double)(n - 1)) * scale : n == 1 ? 0.0 : NAN;
    if (!n) s->min = s->max = NAN;
  }
  for (size_t k = 0; k < d->n_traj; k++) {
    d->n_times += d->traj[k].n;
    d->n_obs += d->traj[k].n_obs;
    d->n_nan += d->traj[k].n_nan;
  }
}

/* ---- open ---- */

/* Split "FILE.h5:/group" unless path names an existing file. */
static nde_status split_path(const char *path, char **file, char **sel) {
  struct stat sb;
  const char *cut = NULL;
  *sel = NULL;
  if (stat(path, &sb) != 0) {
    for (const char *p = strstr(path, ":/"); p; p = strstr(p + 1, ":/")) cut = p;
  }
  size_t flen = cut ? (size_t)(cut - path) : strlen(path);
  *file = malloc(flen + 1);
  if (!*file) return NDE_ERR_NOMEM;
  memcpy(*file, path, flen);
  (*file)[flen] = '\0';
  if (cut) {
    const char *g = cut + 1;
    size_t glen = strlen(g);
    while (glen > 1 && g[glen - 1] == '/') glen--;
    *sel = malloc(glen + 1);
    if (!*sel) return NDE_ERR_NOMEM;
    memcpy(*sel, g, glen);
    (*sel)[glen] = '\0';
  }
  return NDE_OK;
}

/* The caller's names: present, non-empty and distinct (a caller bug otherwise). */
static nde_status check_request(nde__err *e, const char *fn, const char *what, size_t n,
                                const char *const *names) {
  if (n && !names) return nde__derrf(e, NDE_ERR_ARG, "%s: %s names are NULL", fn, what);
  nde__index ix = {0};
  nde_status st = NDE_OK;
  for (size_t j = 0; j < n && st == NDE_OK; j++) {
    size_t k = 0;
    int r = names[j] && names[j][0] ? nde__index_add(&ix, names[j], j, &k) : 1;
    if (r < 0)
      st = nde__derrf(e, NDE_ERR_NOMEM, "%s: out of memory", fn);
    else if (r > 0)
      st = nde__derrf(e, NDE_ERR_ARG, "%s: %s %zu has no name or repeats %s %zu", fn, what, j,
                      what, k);
  }
  nde__index_free(&ix);
  return st;
}

/* Everything after the raw series are loaded: states, mapping, statistics. */
static nde_status assemble(loader *L, const char *file, size_t n_state,
                           const char *const *state_names, raw_series *raw, size_t n_raw,
                           int array_names, nde_data **out) {
  const nde_data_opts *o = L->opts;
  nde__index states = {0};
  nde_status st;
  nde_data *d = calloc(1, sizeof *d);
  if (!d || !(d->file = nde__strdup(file))) goto nomem;
  d->from_arrays = array_names;
  if ((st = build_states(d, L, n_state, state_names, raw, n_raw))) goto fail;
  if (pack_names(&d->input_names, o->n_inputs, o->n_inputs ? o->input_names : NULL) ||
      pack_names(&d->const_names, o->n_consts, o->n_consts ? o->const_names : NULL))
    goto nomem;
  d->n_inputs = o->n_inputs;
  d->n_consts = o->n_consts;
  for (size_t j = 0; j < d->n_state; j++)
    if (nde__index_add(&states, d->state_names[j], j, NULL) < 0) goto nomem;
  d->traj = calloc(n_raw ? n_raw : 1, sizeof *d->traj);
  d->store = calloc(n_raw ? n_raw : 1, sizeof *d->store);
  d->stats = calloc(d->n_state ? d->n_state : 1, sizeof *d->stats);
  if (!d->traj || !d->store || !d->stats) goto nomem;
  d->n_traj = n_raw;
  for (size_t s = 0; s < n_raw; s++) {
    char label[48];
    snprintf(label, sizeof label, "series %zu", s);
    const char *saved = L->file;
    if (array_names) L->file = label;
    const char *name = array_names ? (raw[s].name ? raw[s].name : label) : raw[s].group;
    st = map_series(d, L, &states, &raw[s], name, &d->traj[s], &d->store[s]);
    L->file = saved;
    if (st) goto fail;
    raw_free(&raw[s]);
  }
  compute_stats(d);
  nde__index_free(&states);
  *out = d;
  return NDE_OK;
nomem:
  st = nde__derrf(L->err, NDE_ERR_NOMEM, "%s: out of memory", file);
fail:
  nde__index_free(&states);
  nde_data_destroy(&d);
  return st;
}

nde_status nde_data_open(const char *path, size_t n_state, const char *const *state_names,
                         const nde_data_opts *opts, nde_data **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde__h5quiet q;
  char *file = NULL, *sel = NULL, *g = NULL;
  raw_series *raw = NULL;
  size_t n_raw = 0;
  group_list gl = {0};
  loader L = {0};
  L.fid = -1;
  nde_status st;
  if (out) *out = NULL;
  nde_data_opts o = opts ? *opts : nde_data_opts_default();
  if (!path || !out || (n_state && !state_names) || (!n_state && state_names)) {
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_data_open: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  if ((st = check_request(&e, "nde_data_open", "state", n_state, state_names)) ||
      (st = check_request(&e, "nde_data_open", "input", o.n_inputs, o.input_names)) ||
      (st = check_request(&e, "nde_data_open", "constant", o.n_consts, o.const_names))) {
    nde__data_err_out(&e, err);
    return st;
  }
  nde__h5_quiet_begin(&q);
  if ((st = split_path(path, &file, &sel))) {
    nde__derrf(&e, st, "%s: out of memory", path);
    goto done;
  }

  L.file = file;
  L.err = &e;
  L.max_bytes = o.max_bytes;
  L.n_state = n_state;
  L.opts = &o;
  L.inspect = n_state == 0;
  if ((st = nde__h5_open_ro(file, &L.fid, &e))) goto done;
  const char *root = sel ? sel : "/";
  nde_h5_kind kind = nde__h5_kind(L.fid, root);
  if (kind == NDE_H5_NONE) {
    st = missing_group(&L, root);
    goto done;
  }
  if (kind != NDE_H5_GROUP) {
    st = nde__derrf(&e, NDE_ERR_DATA, "%s:%s: not a group (expected a group holding t and y)",
                    file, root);
    goto done;
  }
  char *tpath = nde__h5_join(root, "t"), *ypath = nde__h5_join(root, "y");
  int single = tpath && ypath && (nde__h5_kind(L.fid, tpath) != NDE_H5_NONE ||
                                  nde__h5_kind(L.fid, ypath) != NDE_H5_NONE);
  if (!tpath || !ypath) {
    st = nomem(&L, root);
  } else if (!single && !sel && !L.inspect &&
             nde__h5_kind(L.fid, "/params/theta") == NDE_H5_DATASET) {
    /* A result file where data belong (nde fit MODEL FIT.h5): its groups are not series, and
     * "FIT.h5:/fitted/t: no such dataset" would not say what happened. */
    st = nde__derrf(&e, NDE_ERR_DATA,
                    "%s: this is a result file of nde fit, not time-series data (expected /t and "
                    "/y, or groups each holding t and y; a forecast file of nde forecast is data)",
                    file);
  } else if (!single) {
    if ((st = list_groups(&L, root, &gl)) == NDE_OK && gl.n == 0)
      st = nde__derrf(&e, NDE_ERR_DATA,
                      "%s:%s: no such dataset (expected %s and %s, or groups%s%s each holding t "
                      "and y)",
                      file, tpath, tpath, ypath, sel ? " below " : "", sel ? sel : "");
  }
  free(tpath);
  free(ypath);
  if (st) goto done;
  size_t want = single ? 1 : gl.n;
  raw = calloc(want, sizeof *raw);
  if (!raw) {
    st = nomem(&L, root);
    goto done;
  }
  for (size_t s = 0; s < want; s++) {
    free(g);
    g = single ? nde__strdup(root) : nde__h5_join(root, gl.names[s]);
    if (!g) {
      st = nomem(&L, root);
      goto done;
    }
    n_raw = s + 1;
    if ((st = load_raw(&L, g, single ? NULL : root, &raw[s]))) goto done;
  }
  st = assemble(&L, file, n_state, state_names, raw, n_raw, 0, out);
done:
  for (size_t s = 0; s < n_raw; s++) raw_free(&raw[s]);
  free(raw);
  free(g);
  group_list_free(&gl);
  if (L.fid >= 0) H5Fclose(L.fid);
  free(file);
  free(sel);
  nde__h5_quiet_end(&q);
  if (st == NDE_OK) nde__err_clear(&e);
  nde__data_err_out(&e, err);
  return st;
}

nde_status nde_data_from_series(size_t n_state, const char *const *state_names, size_t n_series,
                                const nde_series *series, const nde_series_extra *extra,
                                const nde_data_opts *opts, nde_data **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde_status st;
  raw_series *raw = NULL;
  size_t n_raw = 0;
  if (out) *out = NULL;
  nde_data_opts o = opts ? *opts : nde_data_opts_default();
  /* One message per mistake: a caller who passed state names wrong must not read that a
   * series is missing. */
  const char *bad = !out                      ? "no output pointer"
                    : n_series == 0 || !series ? "expected at least one series"
                    : n_state && !state_names  ? "n_state > 0 but no state_names"
                    : !n_state && state_names
                        ? "state_names given with n_state 0 (expected both, or neither for the "
                          "series' own columns)"
                        : NULL;
  if (bad) {
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_data_from_series: invalid arguments (%s)", bad);
    nde__data_err_out(&e, err);
    return st;
  }
  if ((st = check_request(&e, "nde_data_from_series", "state", n_state, state_names)) ||
      (st = check_request(&e, "nde_data_from_series", "input", o.n_inputs, o.input_names)) ||
      (st = check_request(&e, "nde_data_from_series", "constant", o.n_consts, o.const_names))) {
    nde__data_err_out(&e, err);
    return st;
  }
  loader L = {0};
  L.fid = -1;
  L.err = &e;
  L.max_bytes = o.max_bytes;
  L.n_state = n_state;
  L.opts = &o;
  L.inspect = n_state == 0;
  char label[48];
  raw = calloc(n_series, sizeof *raw);
  if (!raw) {
    st = nde__derrf(&e, NDE_ERR_NOMEM, "nde_data_from_series: out of memory");
    goto done;
  }
  for (size_t k = 0; k < n_series; k++) {
    snprintf(label, sizeof label, "series %zu", k);
    L.file = label;
    n_raw = k + 1;
    if ((st = load_array(&L, &series[k], extra ? &extra[k] : NULL, &raw[k]))) goto done;
    if (o.n_inputs && !raw[k].x.m) {
      char list[512];
      nde__name_list(list, sizeof list, o.n_inputs, o.input_names);
      st = nde__derrf(&e, NDE_ERR_DATA,
                      "%s:/inputs/u: no such dataset (expected float64 [M, %zu] measured inputs "
                      "%s)",
                      label, o.n_inputs, list);
      goto done;
    }
  }
  /* Names given to the trajectories must tell them apart (a fit finds its series by name) and
   * be group paths as a file's are: "/", "/NAME" ("/batch/NAME" under a selected group).  A
   * result file stores series by these paths: "run1" and "/run1" were two series here and one
   * group there, so the fit could not be saved. */
  nde__index names = {0};
  for (size_t k = 0; k < n_series; k++) {
    const char *nm = raw[k].name;
    const size_t len = nm ? strlen(nm) : 0;
    if (nm && (nm[0] != '/' || strstr(nm, "//") || (len > 1 && nm[len - 1] == '/'))) {
      st = nde__derrf(&e, NDE_ERR_DATA,
                      "series %zu: the name \"%s\" is not a group path (expected \"/\" or "
                      "\"/NAME\", as a data file's groups name their series)",
                      k, nm);
      break;
    }
    size_t old;
    const int r = nm ? nde__index_add(&names, nm, k, &old) : 0;
    if (r < 0) {
      st = nde__derrf(&e, NDE_ERR_NOMEM, "nde_data_from_series: out of memory");
    } else if (r > 0) {
      st = nde__derrf(&e, NDE_ERR_DATA,
                      "series %zu: the name \"%s\" is the name of series %zu too (expected "
                      "distinct names)",
                      k, raw[k].name, old);
    }
    if (st) break;
  }
  nde__index_free(&names);
  if (st) goto done;
  L.file = "series";
  st = assemble(&L, "", n_state, state_names, raw, n_raw, 1, out);
done:
  for (size_t s = 0; s < n_raw; s++) raw_free(&raw[s]);
  free(raw);
  if (st == NDE_OK) nde__err_clear(&e);
  nde__data_err_out(&e, err);
  return st;
}

void nde_data_destroy(nde_data **data) {
  if (!data || !*data) return;
  nde_data *d = *data;
  for (size_t k = 0; d->store && k < d->n_traj; k++) {
    traj_store *s = &d->store[k];
    free(s->name);
    free(s->t);
    free(s->y);
    free(s->col);
    free(s->noise);
    free(s->sigma);
    free(s->u_t);
    free(s->u);
    free(s->consts);
    free(s->input_names);
  }
  free(d->store);
  free(d->traj);
  free(d->stats);
  free(d->state_names);
  free(d->input_names);
  free(d->const_names);
  free(d->file);
  free(d);
  *data = NULL;
}

const char *nde_data_file(const nde_data *d) { return d ? d->file : NULL; }
size_t nde_data_n_traj(const nde_data *d) { return d ? d->n_traj : 0; }
const nde_traj *nde_data_traj(const nde_data *d, size_t k) {
  return d && k < d->n_traj ? &d->traj[k] : NULL;
}

const char *nde_data_place(const nde_data *d, const nde_traj *tr, char *buf, size_t len) {
  if (!buf || len == 0) return buf;
  size_t k = 0;
  while (d && k < d->n_traj && &d->traj[k] != tr) k++;
  if (!d || !tr || k == d->n_traj) snprintf(buf, len, "data:");
  else if (d->from_arrays) snprintf(buf, len, "series %zu:", k);
  else snprintf(buf, len, "%s:%s", d->file, strcmp(tr->name, "/") ? tr->name : "");
  return buf;
}
size_t nde_data_n_state(const nde_data *d) { return d ? d->n_state : 0; }
const char *nde_data_state_name(const nde_data *d, size_t j) {
  return d && j < d->n_state ? d->state_names[j] : NULL;
}
const nde_state_stats *nde_data_stats(const nde_data *d) { return d ? d->stats : NULL; }
size_t nde_data_n_times(const nde_data *d) { return d ? d->n_times : 0; }
size_t nde_data_n_obs(const nde_data *d) { return d ? d->n_obs : 0; }
size_t nde_data_n_nan(const nde_data *d) { return d ? d->n_nan : 0; }

/* ---- a masked copy (resampled fits) ---- */

nde_status nde_data_masked(const nde_data *d, const unsigned char *keep, nde_data **out,
                           nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  if (out) *out = NULL;
  if (!d || !keep || !out) {
    nde__errf(&e, NDE_ERR_ARG, "nde_data_masked: invalid arguments");
    nde__data_err_out(&e, err);
    return NDE_ERR_ARG;
  }
  nde_data *c = calloc(1, sizeof *c);
  if (!c) goto nomem;
  const size_t ns = d->n_state;
  c->file = malloc(strlen(d->file) + 1);
  /* The state names: one block of pointers then texts, rebased onto the copy. */
  size_t total = ns * sizeof(char *);
  for (size_t j = 0; j < ns; j++) total += strlen(d->state_names[j]) + 1;
  c->state_names = malloc(total ? total : 1);
  c->traj = calloc(d->n_traj ? d->n_traj : 1, sizeof *c->traj);
  c->store = calloc(d->n_traj ? d->n_traj : 1, sizeof *c->store);
  c->stats = calloc(ns ? ns : 1, sizeof *c->stats);
  if (!c->file || !c->state_names || !c->traj || !c->store || !c->stats) goto nomem;
  strcpy(c->file, d->file);
  c->from_arrays = d->from_arrays;
  char *text = (char *)(c->state_names + ns);
  for (size_t j = 0; j < ns; j++) {
    const size_t len = strlen(d->state_names[j]);
    memcpy(text, d->state_names[j], len + 1);
    c->state_names[j] = text;
    text += len + 1;
  }
  c->n_state = ns;
  c->n_traj = d->n_traj;
  size_t row = 0;
  for (size_t k = 0; k < d->n_traj; k++) {
    const nde_traj *tr = &d->traj[k];
    traj_store *ts = &c->store[k];
    ts->name = malloc(strlen(tr->name) + 1);
    ts->t = nde__dalloc(tr->n);
    ts->y = nde__dalloc(tr->n * (ns ? ns : 1));
    ts->col = malloc((ns ? ns : 1) * sizeof *ts->col);
    if (!ts->name || !ts->t || !ts->y || !ts->col) goto nomem;
    if (tr->noise_std) {
      if (!(ts->noise = nde__dalloc(ns))) goto nomem;
      memcpy(ts->noise, tr->noise_std, ns * sizeof *ts->noise);
    }
    strcpy(ts->name, tr->name);
    memcpy(ts->t, tr->t, tr->n * sizeof *ts->t);
    memcpy(ts->col, tr->col, ns * sizeof *ts->col);
    size_t n_obs = 0, masked = 0;
    for (size_t i = 0; i < tr->n; i++, row++)
      for (size_t j = 0; j < ns; j++) {
        const double v = tr->y[i * ns + j];
        const int drop = !keep[row] && !isnan(v);
        ts->y[i * ns + j] = drop ? NAN : v;
        masked += (size_t)drop;
        n_obs += !drop && !isnan(v);
      }
    c->traj[k] = *tr;
    c->traj[k].name = ts->name;
    c->traj[k].t = ts->t;
    c->traj[k].y = ts->y;
    c->traj[k].col = ts->col;
    c->traj[k].noise_std = ts->noise;
    c->traj[k].n_obs = n_obs;
    c->traj[k].n_nan = tr->n_nan + masked;
  }
  compute_stats(c);
  *out = c;
  return NDE_OK;
nomem:
  nde_data_destroy(&c);
  nde__errf(&e, NDE_ERR_NOMEM, "out of memory copying %s", d->file);
  nde__data_err_out(&e, err);
  return NDE_ERR_NOMEM;
}
