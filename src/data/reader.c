/* Generic reads from HDF5 result files: numeric datasets of any rank, strings, scalar attributes,
 * a walk over the file for `nde inspect`, and /params/theta on its own for --init. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "h5util.h"

struct nde_reader {
  char *path;
  hid_t file;
  nde__err err;
};

static nde_status fail_h5(nde_reader *r, nde_status st, const char *obj, const char *what) {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  return nde__derrf(&r->err, st, "%s:%s: %s (HDF5: %s)", r->path, obj, what, h5);
}

nde_status nde_reader_open(const char *path, nde_reader **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde_status st;
  if (out) *out = NULL;
  if (!path || !out) {
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_reader_open: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  nde_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->path = malloc(strlen(path) + 1))) {
    st = nde__derrf(&e, NDE_ERR_NOMEM, "%s: out of memory", path);
    goto fail;
  }
  strcpy(r->path, path);
  r->file = -1;
  if ((st = nde__h5_open_ro(path, &r->file, &e))) goto fail;
  nde__err_clear(&r->err);
  *out = r;
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return NDE_OK;
fail:
  nde_reader_destroy(&r);
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return st;
}

void nde_reader_destroy(nde_reader **rp) {
  if (!rp || !*rp) return;
  nde_reader *r = *rp;
  if (r->file >= 0) {
    nde__h5quiet q;
    nde__h5_quiet_begin(&q);
    H5Fclose(r->file);
    nde__h5_quiet_end(&q);
  }
  free(r->path);
  free(r);
  *rp = NULL;
}

const char *nde_reader_errmsg(const nde_reader *r) {
  return r ? nde__err_msg(&r->err) : nde_status_str(NDE_ERR_ARG);
}

const char *nde_reader_file(const nde_reader *r) { return r ? r->path : NULL; }

nde_h5_kind nde_reader_kind(nde_reader *r, const char *path) {
  if (!r) return NDE_H5_NONE;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  nde_h5_kind k = nde__h5_kind(r->file, path);
  nde__h5_quiet_end(&q);
  return k;
}

/* Open the dataset at path, with a message naming what it should have been when it is not. */
static nde_status open_dataset(nde_reader *r, const char *path, hid_t *ds) {
  *ds = -1;
  nde_h5_kind k = nde__h5_kind(r->file, path);
  if (k == NDE_H5_NONE)
    return nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: no such dataset", r->path,
                     path ? path : "(null)");
  if (k != NDE_H5_DATASET)
    return nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: not a dataset (expected a dataset, got a %s)",
                     r->path, path, k == NDE_H5_GROUP ? "group" : "named datatype");
  *ds = H5Dopen2(r->file, path, H5P_DEFAULT);
  if (*ds < 0) return fail_h5(r, NDE_ERR_IO, path, "cannot open");
  return NDE_OK;
}

static nde_status shape_of(nde_reader *r, hid_t ds, const char *path, int *rank, size_t *dims,
                           size_t *count) {
  hid_t space = H5Dget_space(ds);
  if (space < 0) return fail_h5(r, NDE_ERR_IO, path, "cannot read the shape");
  hsize_t hd[H5S_MAX_RANK];
  int rk = H5Sget_simple_extent_ndims(space);
  nde_status st = NDE_OK;
  if (rk < 0 || H5Sget_simple_extent_dims(space, hd, NULL) < 0) {
    st = fail_h5(r, NDE_ERR_IO, path, "cannot read the shape");
  } else if (rk > NDE_DATA_MAX_RANK) {
    st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: rank too high (expected at most %d, got %d)",
                   r->path, path, NDE_DATA_MAX_RANK, rk);
  } else {
    size_t c = 1;
    for (int i = 0; i < rk; i++) {
      if (hd[i] > SIZE_MAX || !nde__mul_size(c, (size_t)hd[i], &c)) {
        st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: too large (dimension %d is %llu)",
                       r->path, path, i, (unsigned long long)hd[i]);
        break;
      }
      if (dims) dims[i] = (size_t)hd[i];
    }
    if (rank) *rank = rk;
    if (count) *count = c;
  }
  H5Sclose(space);
  return st;
}

nde_status nde_reader_shape(nde_reader *r, const char *path, int *rank, size_t *dims) {
  if (!r || !rank || !dims) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  hid_t ds;
  nde_status st = open_dataset(r, path, &ds);
  if (!st) st = shape_of(r, ds, path, rank, dims, NULL);
  if (ds >= 0) H5Dclose(ds);
  nde__h5_quiet_end(&q);
  return st;
}

/* Read n elements converted to mtype, requiring a type class accepted by want_float/want_int. */
static nde_status get_numeric(nde_reader *r, const char *path, size_t n, void *x, hid_t mtype,
                              int accept_float) {
  if (!r || (!x && n)) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  hid_t ds, type = -1;
  size_t count = 0;
  char tname[64];
  nde_status st = open_dataset(r, path, &ds);
  if (st) goto out;
  type = H5Dget_type(ds);
  if (type < 0) {
    st = fail_h5(r, NDE_ERR_IO, path, "cannot read the type");
    goto out;
  }
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_INTEGER && !(accept_float && cls == H5T_FLOAT)) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: wrong type (expected %s, got %s)", r->path,
                   path, accept_float ? "numbers (float or integer)" : "integers", tname);
    goto out;
  }
  if ((st = shape_of(r, ds, path, NULL, NULL, &count))) goto out;
  if (count != n) {
    st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: wrong size (expected %zu values, got %zu)",
                   r->path, path, n, count);
    goto out;
  }
  if (n && H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0)
    st = fail_h5(r, NDE_ERR_IO, path, "cannot read");
out:
  if (type >= 0) H5Tclose(type);
  if (ds >= 0) H5Dclose(ds);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_reader_get_doubles(nde_reader *r, const char *path, size_t n, double *x) {
  return get_numeric(r, path, n, x, H5T_NATIVE_DOUBLE, 1);
}

nde_status nde_reader_get_int64s(nde_reader *r, const char *path, size_t n, int64_t *x) {
  return get_numeric(r, path, n, x, H5T_NATIVE_INT64, 0);
}

nde_status nde_reader_get_uint64s(nde_reader *r, const char *path, size_t n, uint64_t *x) {
  return get_numeric(r, path, n, x, H5T_NATIVE_UINT64, 0);
}

nde_status nde_reader_get_strings(nde_reader *r, const char *path, size_t *n, char ***strs) {
  if (!r || !n || !strs) return NDE_ERR_ARG;
  *strs = NULL;
  *n = 0;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  hid_t ds;
  char why[320];
  nde_status st = open_dataset(r, path, &ds);
  if (!st) {
    st = nde__h5_read_strings(ds, false, n, strs, why, sizeof why);
    if (st) nde__derrf(&r->err, st, "%s:%s: %s", r->path, path, why);
  }
  if (ds >= 0) H5Dclose(ds);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_reader_get_string(nde_reader *r, const char *path, char **text) {
  if (!text) return NDE_ERR_ARG;
  *text = NULL;
  size_t n = 0;
  char **strs = NULL;
  nde_status st = nde_reader_get_strings(r, path, &n, &strs);
  if (st) return st;
  if (n != 1) {
    free(strs);
    return nde__derrf(&r->err, NDE_ERR_DATA,
                     "%s:%s: wrong size (expected one string, got %zu)", r->path, path, n);
  }
  size_t len = strlen(strs[0]);
  *text = malloc(len + 1);
  if (*text) memcpy(*text, strs[0], len + 1);
  free(strs);
  return *text ? NDE_OK : nde__derrf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
}

int nde_reader_has_attr(nde_reader *r, const char *obj, const char *name) {
  if (!r || !name) return 0;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  int has = 0;
  if (nde__h5_kind(r->file, obj) != NDE_H5_NONE)
    has = H5Aexists_by_name(r->file, obj, name, H5P_DEFAULT) > 0;
  nde__h5_quiet_end(&q);
  return has;
}

/* Open attribute name of obj; messages name the object and the attribute. */
static nde_status open_attr(nde_reader *r, const char *obj, const char *name, hid_t *a) {
  *a = -1;
  if (!name) return NDE_ERR_ARG;
  if (nde__h5_kind(r->file, obj) == NDE_H5_NONE)
    return nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: no such object (expected one with attribute "
                     "%s)", r->path, obj ? obj : "(null)", name);
  if (H5Aexists_by_name(r->file, obj, name, H5P_DEFAULT) <= 0)
    return nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: no attribute %s", r->path, obj, name);
  *a = H5Aopen_by_name(r->file, obj, name, H5P_DEFAULT, H5P_DEFAULT);
  if (*a < 0) return fail_h5(r, NDE_ERR_IO, obj, "cannot open attribute");
  return NDE_OK;
}

nde_status nde_reader_get_attr_string(nde_reader *r, const char *obj, const char *name,
                                      char **value) {
  if (!r || !value) return NDE_ERR_ARG;
  *value = NULL;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  hid_t a;
  char why[320], **strs = NULL;
  size_t n = 0;
  nde_status st = open_attr(r, obj, name, &a);
  if (st) goto out;
  st = nde__h5_read_strings(a, true, &n, &strs, why, sizeof why);
  if (st) {
    nde__derrf(&r->err, st, "%s:%s: attribute %s: %s", r->path, obj, name, why);
    goto out;
  }
  if (n != 1) {
    st = nde__derrf(&r->err, NDE_ERR_DATA,
                   "%s:%s: attribute %s has %zu strings (expected one)", r->path, obj, name, n);
    goto out;
  }
  *value = malloc(strlen(strs[0]) + 1);
  if (!*value) {
    st = nde__derrf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
    goto out;
  }
  strcpy(*value, strs[0]);
out:
  free(strs);
  if (a >= 0) H5Aclose(a);
  nde__h5_quiet_end(&q);
  return st;
}

static nde_status get_attr_num(nde_reader *r, const char *obj, const char *name, hid_t mtype,
                               int accept_float, void *value) {
  if (!r || !value) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  hid_t a, type = -1, space = -1;
  char tname[64];
  nde_status st = open_attr(r, obj, name, &a);
  if (st) goto out;
  type = H5Aget_type(a);
  space = H5Aget_space(a);
  if (type < 0 || space < 0) {
    st = fail_h5(r, NDE_ERR_IO, obj, "cannot read attribute");
    goto out;
  }
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_INTEGER && !(accept_float && cls == H5T_FLOAT)) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: attribute %s has the wrong type (expected %s, "
                   "got %s)", r->path, obj, name, accept_float ? "a number" : "an integer", tname);
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  if (np != 1) {
    st = nde__derrf(&r->err, NDE_ERR_DATA, "%s:%s: attribute %s has %lld values (expected one)",
                   r->path, obj, name, (long long)np);
    goto out;
  }
  if (H5Aread(a, mtype, value) < 0) st = fail_h5(r, NDE_ERR_IO, obj, "cannot read attribute");
out:
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (a >= 0) H5Aclose(a);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_reader_get_attr_double(nde_reader *r, const char *obj, const char *name,
                                      double *value) {
  return get_attr_num(r, obj, name, H5T_NATIVE_DOUBLE, 1, value);
}

nde_status nde_reader_get_attr_int64(nde_reader *r, const char *obj, const char *name,
                                     int64_t *value) {
  return get_attr_num(r, obj, name, H5T_NATIVE_INT64, 0, value);
}

/* ---- walk ---- */

/* An object already met: its address in the file and the first path it was met under. */
typedef struct seen_obj {
  unsigned long fileno;
  haddr_t addr;
  char *path;
} seen_obj;

typedef struct visit_ctx {
  nde_reader *r;
  int (*visit)(void *ctx, const nde_h5_object *obj);
  void *ctx;
  nde_str path;      /* the current path, grown and cut back as the walk goes */
  seen_obj *seen;    /* groups met so far (only groups can lead back into the walk) */
  size_t n_seen, cap_seen;
  int nomem;
} visit_ctx;

/* The first path of the group at (fileno, addr), or NULL after recording it under path. */
static const char *seen_before(visit_ctx *v, unsigned long fileno, haddr_t addr,
                               const char *path) {
  for (size_t i = 0; i < v->n_seen; i++)
    if (v->seen[i].fileno == fileno && v->seen[i].addr == addr) return v->seen[i].path;
  if (v->n_seen == v->cap_seen) {
    size_t cap = v->cap_seen ? 2 * v->cap_seen : 16;
    seen_obj *p = realloc(v->seen, cap * sizeof *p);
    if (!p) {
      v->nomem = 1;
      return NULL;
    }
    v->seen = p;
    v->cap_seen = cap;
  }
  char *copy = nde__strdup(path);
  if (!copy) {
    v->nomem = 1;
    return NULL;
  }
  v->seen[v->n_seen++] = (seen_obj){fileno, addr, copy};
  return NULL;
}

static herr_t visit_link(hid_t g, const char *name, const H5L_info_t *info, void *vctx) {
  (void)info;
  visit_ctx *v = vctx;
  size_t base = v->path.len;
  if (base > 1) nde_str_adds(&v->path, "/");
  nde_str_adds(&v->path, name);
  if (v->path.failed) {
    v->nomem = 1;
    return -1;
  }
  nde_h5_object o;
  memset(&o, 0, sizeof o);
  o.path = v->path.data;
  o.type = "";
  char tname[64] = "";
  herr_t ret = 0;
  hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
  if (obj < 0) {
    H5Eclear2(H5E_DEFAULT);
    o.kind = NDE_H5_OTHER;
    ret = v->visit(v->ctx, &o) ? 1 : 0;
    goto out;
  }
  H5I_type_t it = H5Iget_type(obj);
  o.kind = it == H5I_GROUP ? NDE_H5_GROUP : it == H5I_DATASET ? NDE_H5_DATASET : NDE_H5_OTHER;
  /* The attribute count from the object header's own count: iterating the attributes would
   * decode every attribute message, and HDF5 1.10.8 reads past a corrupt one. */
  H5O_info_t oi;
  if (H5Oget_info2(obj, &oi, H5O_INFO_BASIC | H5O_INFO_NUM_ATTRS) < 0) {
    H5Oclose(obj);
    v->path.len = base;
    v->path.data[base] = '\0';
    return -1;
  }
  o.n_attrs = oi.num_attrs > (hsize_t)INT32_MAX ? INT32_MAX : (int)oi.num_attrs;
  if (o.kind == NDE_H5_GROUP) {
    o.same_as = seen_before(v, oi.fileno, oi.addr, v->path.data);
    if (v->nomem) {
      H5Oclose(obj);
      return -1;
    }
  }
  if (o.kind == NDE_H5_DATASET) {
    hid_t type = H5Dget_type(obj), space = H5Dget_space(obj);
    if (type >= 0) nde__h5_type_name(type, tname, sizeof tname);
    o.type = tname;
    hsize_t hd[H5S_MAX_RANK];
    int rk = space >= 0 ? H5Sget_simple_extent_ndims(space) : 0;
    if (rk > 0 && rk <= NDE_DATA_MAX_RANK && H5Sget_simple_extent_dims(space, hd, NULL) >= 0) {
      o.rank = rk;
      for (int i = 0; i < rk; i++) o.dims[i] = (size_t)hd[i];
    }
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
  }
  if (v->visit(v->ctx, &o)) {
    ret = 1;
  } else if (o.kind == NDE_H5_GROUP && !o.same_as) {
    ret = H5Literate(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, visit_link, v);
  }
  H5Oclose(obj);
out:
  v->path.len = base;
  v->path.data[base] = '\0';
  return ret;
}

nde_status nde_reader_visit(nde_reader *r, int (*visit)(void *ctx, const nde_h5_object *obj),
                            void *ctx) {
  if (!r || !visit) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  visit_ctx v;
  memset(&v, 0, sizeof v);
  v.r = r;
  v.visit = visit;
  v.ctx = ctx;
  v.path = (nde_str)NDE_STR_INIT;
  nde_str_adds(&v.path, "/");
  nde_status st = NDE_OK;
  H5O_info_t oi;
  if (v.path.failed) {
    st = nde__derrf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
  } else if (H5Oget_info2(r->file, &oi, H5O_INFO_BASIC) < 0) {
    st = fail_h5(r, NDE_ERR_IO, "/", "cannot list");
  } else {
    seen_before(&v, oi.fileno, oi.addr, "/");
    herr_t rc = v.nomem ? -1 : H5Literate(r->file, H5_INDEX_NAME, H5_ITER_INC, NULL, visit_link, &v);
    if (v.nomem)
      st = nde__derrf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
    else if (rc < 0)
      st = fail_h5(r, NDE_ERR_IO, "/", "cannot list");
  }
  for (size_t i = 0; i < v.n_seen; i++) free(v.seen[i].path);
  free(v.seen);
  nde_str_release(&v.path);
  nde__h5_quiet_end(&q);
  return st;
}

/* The length of the flat parameter vector dset (rank 0 or 1). */
static nde_status theta_count(nde_reader *r, const char *dset, size_t *count) {
  int rank = 0;
  size_t dims[NDE_DATA_MAX_RANK];
  nde_status st = nde_reader_shape(r, dset, &rank, dims);
  if (st) return st;
  if (rank > 1)
    return nde__derrf(&r->err, NDE_ERR_DATA,
                      "%s:%s: wrong rank (expected rank 1, the flat parameter vector, got rank "
                      "%d)",
                      r->path, dset, rank);
  *count = rank == 1 ? dims[0] : 1;
  return NDE_OK;
}

/* Read the n parameters of dset into x, every one finite. */
static nde_status read_params(nde_reader *r, const char *dset, size_t n, double *x) {
  nde_status st = nde_reader_get_doubles(r, dset, n, x);
  for (size_t i = 0; st == NDE_OK && i < n; i++)
    if (!isfinite(x[i]))
      st = nde__derrf(&r->err, NDE_ERR_DATA,
                      "%s:%s: non-finite parameter at index %zu (expected a finite number, got "
                      "%g)",
                      r->path, dset, i, x[i]);
  return st;
}

nde_status nde_read_theta(const char *path, size_t *n, double **theta, nde_error *err) {
  nde_reader *r = NULL;
  nde_status st;
  if (!n || !theta) {
    nde__err e;
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_read_theta: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  *n = 0;
  *theta = NULL;
  if ((st = nde_reader_open(path, &r, err))) return st;
  const char *dset = "/params/theta";
  size_t count = 0;
  double *x = NULL;
  if ((st = theta_count(r, dset, &count))) goto out;
  x = nde__dalloc(count);
  if (!x) {
    st = nde__derrf(&r->err, NDE_ERR_NOMEM, "%s:%s: out of memory for %zu values", r->path, dset,
                    count);
    goto out;
  }
  if ((st = read_params(r, dset, count, x))) goto out;
  *n = count;
  *theta = x;
  x = NULL;
out:
  free(x);
  if (st) nde__data_err_out(&r->err, err);
  nde_reader_destroy(&r);
  return st;
}

/* ---- attribute names (for nde inspect: every attribute a file holds) ---- */

typedef struct name_list {
  nde_str text; /* the names, each followed by its NUL */
  size_t n;
} name_list;

static herr_t collect_attr(hid_t loc, const char *name, const H5A_info_t *info, void *ctx) {
  (void)loc, (void)info;
  name_list *L = ctx;
  nde_str_add(&L->text, name, strlen(name) + 1);
  L->n++;
  return L->text.failed ? -1 : 0;
}

nde_status nde_reader_attr_names(nde_reader *r, const char *obj, size_t *n, char ***names) {
  if (!r || !obj || !n || !names) return NDE_ERR_ARG;
  *n = 0;
  *names = NULL;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  name_list L = {NDE_STR_INIT, 0};
  nde_status st = NDE_OK;
  if (nde__h5_kind(r->file, obj) == NDE_H5_NONE) {
    st = nde__errf(&r->err, NDE_ERR_DATA, "%s:%s: no such object", r->path, obj);
    goto out;
  }
  hid_t o = H5Oopen(r->file, obj, H5P_DEFAULT);
  if (o < 0) {
    st = fail_h5(r, NDE_ERR_IO, obj, "cannot open");
    goto out;
  }
  hsize_t idx = 0;
  herr_t rc = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_attr, &L);
  H5Oclose(o);
  if (rc < 0 || L.text.failed) {
    st = L.text.failed ? nde__errf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path)
                       : fail_h5(r, NDE_ERR_IO, obj, "cannot list the attributes");
    goto out;
  }
  /* One block: the pointers, then the texts. */
  size_t bytes;
  if (!nde__mul_size(L.n + 1, sizeof(char *), &bytes) || !nde__add_size(bytes, L.text.len, &bytes)) {
    st = nde__errf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
    goto out;
  }
  char **block = malloc(bytes);
  if (!block) {
    st = nde__errf(&r->err, NDE_ERR_NOMEM, "%s: out of memory", r->path);
    goto out;
  }
  char *p = (char *)(block + L.n + 1);
  if (L.text.len) memcpy(p, L.text.data, L.text.len);
  for (size_t i = 0; i < L.n; i++) {
    block[i] = p;
    p += strlen(p) + 1;
  }
  block[L.n] = NULL;
  *names = block;
  *n = L.n;
out:
  nde_str_release(&L.text);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_read_theta_expect(const char *path, size_t n, double *theta, nde_error *err) {
  nde_reader *r = NULL;
  nde_status st;
  if (!theta && n) {
    nde__err e;
    st = nde__derrf(&e, NDE_ERR_ARG, "nde_read_theta_expect: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  if ((st = nde_reader_open(path, &r, err))) return st;
  const char *dset = "/params/theta";
  size_t count = 0;
  if ((st = theta_count(r, dset, &count))) goto out;
  if (count != n) {
    st = nde__derrf(&r->err, NDE_ERR_DATA,
                    "%s:%s: wrong size (expected %zu values, the model's parameters, got %zu)",
                    r->path, dset, n, count);
    goto out;
  }
  if ((st = read_params(r, dset, count, theta))) goto out;
out:
  if (st) nde__data_err_out(&r->err, err);
  nde_reader_destroy(&r);
  return st;
}
