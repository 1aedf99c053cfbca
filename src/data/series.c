/* Loading time series: /t [N] and /y [N, D] per series, validated, then mapped by state_names onto
 * the model's states (docs/data-format.md).  Every size is checked against opts.max_bytes with
 * overflow-checked arithmetic before anything is allocated. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "h5util.h"

#define PATH_MAX_LEN 1024

typedef struct traj_store {
  char *name;
  double *t;
  double *y;
  int *col;
  double *noise;
} traj_store;

struct nde_data {
  char *file;
  size_t n_state;
  char **state_names; /* one block, see pack in build_states */
  size_t n_traj;
  nde_traj *traj;
  traj_store *store;
  nde_state_stats *stats;
  size_t n_times, n_obs, n_nan;
};

/* One series as it is in the file, before mapping onto states. */
typedef struct raw_series {
  char group[PATH_MAX_LEN];
  size_t n, d;
  double *t;     /* [n] */
  double *y;     /* [n x d] */
  char **names;  /* [d] block, or NULL */
  double *noise; /* [d], or NULL */
  size_t n_nan;
} raw_series;

typedef struct loader {
  const char *file;
  hid_t fid;
  nde__err *err;
  size_t max_bytes;
  size_t bytes; /* reserved so far */
  size_t n_state;
} loader;

const char *nde_data_hdf5_version(void) {
  static const char v[] = H5_VERS_INFO;
  /* H5_VERS_INFO reads "HDF5 library version: 1.10.8": keep the number. */
  const char *p = strstr(v, ": ");
  return p ? p + 2 : v;
}

nde_data_opts nde_data_opts_default(void) {
  nde_data_opts o;
#if SIZE_MAX > 0xFFFFFFFFu
  o.max_bytes = (size_t)1 << 32;
#else
  o.max_bytes = SIZE_MAX;
#endif
  return o;
}

static void raw_free(raw_series *r) {
  free(r->t);
  free(r->y);
  free(r->names);
  free(r->noise);
  memset(r, 0, sizeof *r);
}

/* Reserve bytes against the limit; the message names what needed them. */
static nde_status reserve(loader *L, const char *dset, size_t rows, size_t cols) {
  size_t b = 0, total = 0;
  if (!nde__mul_size(rows, cols, &b) || !nde__mul_size(b, sizeof(double), &b) ||
      !nde__add_size(L->bytes, b, &total) || total > L->max_bytes)
    return nde__errf(L->err, NDE_ERR_DATA,
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
  return nde__errf(L->err, st, "%s:%s: %s (HDF5: %s)", L->file, dset, what, h5);
}

/* Open a floating-point dataset of the given rank; dims receives its extent. */
static nde_status open_float(loader *L, const char *dset, int want_rank, const char *meaning,
                             hid_t *out, hsize_t *dims) {
  char tname[64];
  *out = -1;
  nde_h5_kind kind = nde__h5_kind(L->fid, dset);
  if (kind == NDE_H5_NONE)
    return nde__errf(L->err, NDE_ERR_DATA, "%s:%s: no such dataset (expected %s)", L->file, dset,
                     meaning);
  if (kind != NDE_H5_DATASET)
    return nde__errf(L->err, NDE_ERR_DATA, "%s:%s: not a dataset (expected %s, got a %s)",
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
    st = nde__errf(L->err, NDE_ERR_DATA, "%s:%s: wrong type (expected float64 or float32, got %s)",
                   L->file, dset, tname);
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
    st = nde__errf(L->err, NDE_ERR_DATA, "%s:%s: wrong rank (expected rank %d, %s, got rank %d%s)",
                   L->file, dset, want_rank, meaning, rank, shape);
    goto out;
  }
  if (H5Sget_simple_extent_dims(space, dims, NULL) < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read the shape");
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

/* Read the optional attribute noise_std of /y: D values or one for every column. */
static nde_status read_noise(loader *L, hid_t yds, const char *dset, raw_series *r) {
  htri_t has = H5Aexists(yds, "noise_std");
  if (has <= 0) return has < 0 ? h5_fail(L, NDE_ERR_IO, dset, "cannot read attributes") : NDE_OK;
  nde_status st = NDE_OK;
  char tname[64];
  hid_t a = H5Aopen(yds, "noise_std", H5P_DEFAULT);
  hid_t type = a >= 0 ? H5Aget_type(a) : -1, space = a >= 0 ? H5Aget_space(a) : -1;
  if (type < 0 || space < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read attribute noise_std");
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
    nde__h5_type_name(type, tname, sizeof tname);
    st = nde__errf(L->err, NDE_ERR_DATA,
                   "%s:%s: attribute noise_std has the wrong type (expected float64, got %s)",
                   L->file, dset, tname);
    goto out;
  }
  if (np != 1 && (np < 0 || (size_t)np != r->d)) {
    st = nde__errf(L->err, NDE_ERR_DATA,
                   "%s:%s: attribute noise_std has %lld values (expected 1 or %zu, one per column)",
                   L->file, dset, (long long)np, r->d);
    goto out;
  }
  r->noise = nde__dalloc(r->d);
  if (!r->noise) {
    st = nde__errf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory", L->file, dset);
    goto out;
  }
  if (H5Aread(a, H5T_NATIVE_DOUBLE, r->noise) < 0) {
    st = h5_fail(L, NDE_ERR_IO, dset, "cannot read attribute noise_std");
    goto out;
  }
  if (np == 1)
    for (size_t c = 1; c < r->d; c++) r->noise[c] = r->noise[0];
  for (size_t c = 0; c < r->d; c++)
    if (r->noise[c] < 0 || isinf(r->noise[c])) {
      st = nde__errf(L->err, NDE_ERR_DATA,
                     "%s:%s: attribute noise_std[%zu] is invalid (expected a finite value >= 0, "
                     "or NaN for unknown, got %g)",
                     L->file, dset, c, r->noise[c]);
      goto out;
    }
out:
  if (type >= 0) H5Tclose(type);
  if (space >= 0) H5Sclose(space);
  if (a >= 0) H5Aclose(a);
  return st;
}

static nde_status read_names(loader *L, hid_t yds, const char *dset, raw_series *r) {
  htri_t has = H5Aexists(yds, "state_names");
  if (has <= 0) return has < 0 ? h5_fail(L, NDE_ERR_IO, dset, "cannot read attributes") : NDE_OK;
  hid_t a = H5Aopen(yds, "state_names", H5P_DEFAULT);
  if (a < 0) return h5_fail(L, NDE_ERR_IO, dset, "cannot open attribute state_names");
  char why[320];
  size_t n = 0;
  nde_status st = nde__h5_read_strings(a, true, &n, &r->names, why, sizeof why);
  H5Aclose(a);
  if (st != NDE_OK)
    return nde__errf(L->err, st, "%s:%s: attribute state_names %s (%s)", L->file, dset,
                     st == NDE_ERR_DATA ? "has the wrong type" : "is unreadable", why);
  if (n != r->d)
    return nde__errf(L->err, NDE_ERR_DATA,
                     "%s:%s: attribute state_names has %zu names (expected %zu, one per column)",
                     L->file, dset, n, r->d);
  return nde__check_names(L->err, L->file, dset, r->d, (const char *const *)r->names);
}

/* Read and check the series in group (its t and y) into r. */
static nde_status load_raw(loader *L, const char *group, raw_series *r) {
  char tpath[PATH_MAX_LEN], ypath[PATH_MAX_LEN], tmean[PATH_MAX_LEN + 64];
  hid_t tds = -1, yds = -1;
  hsize_t tdim[1] = {0}, ydim[2] = {0, 0};
  nde_status st;
  snprintf(r->group, sizeof r->group, "%s", group);
  nde__h5_join(tpath, sizeof tpath, group, "t");
  nde__h5_join(ypath, sizeof ypath, group, "y");

  st = open_float(L, tpath, 1, "float64 [N] observation times", &tds, tdim);
  if (st) goto out;
  st = open_float(L, ypath, 2, "float64 [N, D] observations", &yds, ydim);
  if (st) goto out;
  if (tdim[0] == 0) {
    st = nde__errf(L->err, NDE_ERR_DATA,
                   "%s:%s: no observation times (expected at least 1, got 0)", L->file, tpath);
    goto out;
  }
  if (ydim[0] != tdim[0]) {
    snprintf(tmean, sizeof tmean, "one per time in %s", tpath);
    st = nde__errf(L->err, NDE_ERR_DATA,
                   "%s:%s: row count disagrees with %s (expected %llu rows, %s, got %llu)",
                   L->file, ypath, tpath, (unsigned long long)tdim[0], tmean,
                   (unsigned long long)ydim[0]);
    goto out;
  }
  if (ydim[1] == 0) {
    st = nde__errf(L->err, NDE_ERR_DATA, "%s:%s: no columns (expected at least 1, got 0)",
                   L->file, ypath);
    goto out;
  }
  if (tdim[0] > SIZE_MAX || ydim[1] > SIZE_MAX) {
    st = nde__errf(L->err, NDE_ERR_DATA, "%s:%s: too large to load (got [%llu, %llu])", L->file,
                   ypath, (unsigned long long)ydim[0], (unsigned long long)ydim[1]);
    goto out;
  }
  r->n = (size_t)tdim[0];
  r->d = (size_t)ydim[1];
  /* t, the file's columns, and the state layout built from them (at least one column). */
  size_t cols = r->d + (L->n_state ? L->n_state : r->d);
  if ((st = reserve(L, tpath, r->n, 1)) || (st = reserve(L, ypath, r->n, cols))) goto out;

  if ((st = read_names(L, yds, ypath, r)) || (st = read_noise(L, yds, ypath, r))) goto out;

  r->t = nde__dalloc(r->n);
  r->y = nde__dalloc(r->n * r->d); /* product checked by reserve */
  if (!r->t || !r->y) {
    st = nde__errf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory for [%zu, %zu] values", L->file,
                   ypath, r->n, r->d);
    goto out;
  }
  if (H5Dread(tds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->t) < 0) {
    st = h5_fail(L, NDE_ERR_IO, tpath, "cannot read");
    goto out;
  }
  if ((st = nde__check_times(L->err, L->file, tpath, r->n, r->t))) goto out;
  if (H5Dread(yds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, r->y) < 0) {
    st = h5_fail(L, NDE_ERR_IO, ypath, "cannot read");
    goto out;
  }
  st = nde__check_obs(L->err, L->file, ypath, r->n, r->d, r->y, (const char *const *)r->names,
                      &r->n_nan);
out:
  if (tds >= 0) H5Dclose(tds);
  if (yds >= 0) H5Dclose(yds);
  return st;
}

/* ---- which series a path selects ---- */

typedef struct group_list {
  char **names;
  size_t n, cap;
  int nomem;
} group_list;

static herr_t collect_group(hid_t g, const char *name, const H5L_info_t *info, void *ctx) {
  (void)info;
  group_list *gl = ctx;
  hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
  if (obj < 0) {
    H5Eclear2(H5E_DEFAULT);
    return 0; /* dangling links are not series */
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
  size_t len = strlen(name);
  gl->names[gl->n] = malloc(len + 1);
  if (!gl->names[gl->n]) goto nomem;
  memcpy(gl->names[gl->n++], name, len + 1);
  return 0;
nomem:
  gl->nomem = 1;
  return 1;
}

static void group_list_free(group_list *gl) {
  for (size_t i = 0; i < gl->n; i++) free(gl->names[i]);
  free(gl->names);
}

static nde_status list_groups(loader *L, const char *at, group_list *gl) {
  hid_t g = H5Gopen2(L->fid, at, H5P_DEFAULT);
  if (g < 0) return h5_fail(L, NDE_ERR_IO, at, "cannot open group");
  herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, collect_group, gl);
  H5Gclose(g);
  if (gl->nomem) return nde__errf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory", L->file, at);
  if (rc < 0) return h5_fail(L, NDE_ERR_IO, at, "cannot list group");
  return NDE_OK;
}

/* The parent of a missing selector's groups, listed in the message. */
static nde_status missing_group(loader *L, const char *sel) {
  group_list gl = {0};
  char list[512] = "";
  if (list_groups(L, "/", &gl) == NDE_OK) {
    size_t k = 0;
    for (size_t i = 0; i < gl.n && k < sizeof list - 1; i++)
      k += (size_t)snprintf(list + k, sizeof list - k, "%s/%s", i ? ", " : "", gl.names[i]);
  }
  group_list_free(&gl);
  nde__err_clear(L->err);
  return nde__errf(L->err, NDE_ERR_DATA, "%s:%s: no such group (expected %s%s)", L->file, sel,
                   list[0] ? "one of " : "an existing group; the file has none",
                   list);
}

/* ---- mapping onto states ---- */

static nde_status build_states(nde_data *d, loader *L, size_t n_state,
                               const char *const *names, raw_series *raw, size_t n_raw) {
  /* Inspection: the union of column names, "column k" for unnamed columns. */
  char **list = NULL;
  size_t count = 0, cap = 0;
  nde_status st = NDE_OK;
  char buf[64];
  if (n_state) {
    list = (char **)names; /* only read below */
    count = n_state;
  } else {
    for (size_t s = 0; s < n_raw; s++)
      for (size_t c = 0; c < raw[s].d; c++) {
        const char *nm = raw[s].names ? raw[s].names[c] : NULL;
        if (!nm) {
          snprintf(buf, sizeof buf, "column %zu", c + 1);
          nm = buf;
        }
        size_t j = 0;
        while (j < count && strcmp(list[j], nm) != 0) j++;
        if (j < count) continue;
        if (count == cap) {
          cap = cap ? 2 * cap : 8;
          char **p = realloc(list, cap * sizeof *p);
          if (!p) goto nomem;
          list = p;
        }
        list[count] = malloc(strlen(nm) + 1);
        if (!list[count]) goto nomem;
        strcpy(list[count++], nm);
      }
  }
  /* One block: pointers then texts. */
  size_t total = count * sizeof(char *);
  for (size_t j = 0; j < count; j++)
    if (!nde__add_size(total, strlen(list[j]) + 1, &total)) goto nomem;
  d->state_names = malloc(total ? total : 1);
  if (!d->state_names) goto nomem;
  char *text = (char *)(d->state_names + count);
  for (size_t j = 0; j < count; j++) {
    size_t len = strlen(list[j]);
    memcpy(text, list[j], len + 1);
    d->state_names[j] = text;
    text += len + 1;
  }
  d->n_state = count;
  goto out;
nomem:
  st = nde__errf(L->err, NDE_ERR_NOMEM, "%s: out of memory", L->file);
out:
  if (!n_state) {
    for (size_t j = 0; j < count; j++) free(list[j]);
    free(list);
  }
  return st;
}

static void state_list(const nde_data *d, char *buf, size_t n) {
  size_t k = 0;
  buf[0] = '\0';
  for (size_t j = 0; j < d->n_state && k < n - 1; j++)
    k += (size_t)snprintf(buf + k, n - k, "%s%s", j ? ", " : "", d->state_names[j]);
}

static nde_status map_series(nde_data *d, loader *L, raw_series *r, nde_traj *tr,
                             traj_store *ts) {
  char ypath[PATH_MAX_LEN], states[512];
  size_t ns = d->n_state;
  nde__h5_join(ypath, sizeof ypath, r->group, "y");
  ts->col = malloc(ns * sizeof *ts->col);
  ts->name = malloc(strlen(r->group) + 1);
  size_t cells = 0;
  /* reserve() covered the model's layout; in inspection mode the merged columns can be more. */
  ts->y = nde__mul_size(r->n, ns, &cells) ? nde__dalloc(cells) : NULL;
  if (!ts->col || !ts->name || !ts->y)
    return nde__errf(L->err, NDE_ERR_NOMEM, "%s:%s: out of memory", L->file, ypath);
  strcpy(ts->name, r->group);
  for (size_t j = 0; j < ns; j++) ts->col[j] = -1;
  char buf[64];
  for (size_t c = 0; c < r->d; c++) {
    const char *nm = r->names ? r->names[c] : NULL;
    if (!nm && L->n_state == 0) {
      snprintf(buf, sizeof buf, "column %zu", c + 1);
      nm = buf;
    }
    size_t j;
    if (nm) {
      for (j = 0; j < ns && strcmp(d->state_names[j], nm) != 0; j++) {
      }
      if (j == ns) {
        state_list(d, states, sizeof states);
        return nde__errf(L->err, NDE_ERR_DATA,
                         "%s:%s: state_names[%zu] = \"%s\" matches no state of the model "
                         "(expected one of %s)",
                         L->file, ypath, c, nm, states);
      }
    } else {
      if (r->d != ns) {
        state_list(d, states, sizeof states);
        return nde__errf(L->err, NDE_ERR_DATA,
                         "%s:%s: no attribute state_names, so columns map to the model's states "
                         "in order, but the counts differ (expected %zu columns for states %s, "
                         "got %zu)",
                         L->file, ypath, ns, states, r->d);
      }
      j = c;
    }
    ts->col[j] = (int)c;
  }
  if (r->d > (size_t)INT32_MAX)
    return nde__errf(L->err, NDE_ERR_DATA, "%s:%s: too many columns (got %zu)", L->file, ypath,
                     r->d);
  size_t n_obs = 0;
  for (size_t i = 0; i < r->n; i++)
    for (size_t j = 0; j < ns; j++) {
      double v = ts->col[j] < 0 ? NAN : r->y[i * r->d + (size_t)ts->col[j]];
      ts->y[i * ns + j] = v;
      if (!isnan(v)) n_obs++;
    }
  if (r->noise) {
    ts->noise = nde__dalloc(ns);
    if (!ts->noise) return nde__errf(L->err, NDE_ERR_NOMEM, "%s: out of memory", L->file);
    for (size_t j = 0; j < ns; j++)
      ts->noise[j] = ts->col[j] < 0 ? NAN : r->noise[(size_t)ts->col[j]];
  }
  ts->t = r->t;
  r->t = NULL;
  tr->name = ts->name;
  tr->n = r->n;
  tr->t = ts->t;
  tr->y = ts->y;
  tr->col = ts->col;
  tr->n_cols = r->d;
  tr->n_obs = n_obs;
  tr->n_nan = r->n_nan;
  tr->noise_std = ts->noise;
  return NDE_OK;
}

static void compute_stats(nde_data *d) {
  size_t ns = d->n_state;
  for (size_t j = 0; j < ns; j++) {
    nde_state_stats *s = &d->stats[j];
    double mean = 0, m2 = 0;
    size_t n = 0;
    s->min = INFINITY;
    s->max = -INFINITY;
    /* Welford's update: stable for long series with a large mean. */
    for (size_t k = 0; k < d->n_traj; k++) {
      const nde_traj *tr = &d->traj[k];
      for (size_t i = 0; i < tr->n; i++) {
        double v = tr->y[i * ns + j];
        if (isnan(v)) continue;
        n++;
        double delta = v - mean;
        mean += delta / (double)n;
        m2 += delta * (v - mean);
        if (v < s->min) s->min = v;
        if (v > s->max) s->max = v;
      }
    }
    s->n_obs = n;
    s->mean = n ? mean : NAN;
    s->std = n > 1 ? sqrt(m2 / (double)(n - 1)) : n == 1 ? 0.0 : NAN;
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

static nde_status check_file(nde__err *e, const char *file) {
  struct stat sb;
  if (stat(file, &sb) != 0)
    return nde__errf(e, NDE_ERR_IO, "%s: cannot open (%s)", file, strerror(errno));
  if (S_ISDIR(sb.st_mode))
    return nde__errf(e, NDE_ERR_IO, "%s: cannot open (expected an HDF5 file, got a directory)",
                     file);
  htri_t is = H5Fis_hdf5(file);
  if (is < 0) {
    char h5[256];
    nde__h5_last_error(h5, sizeof h5);
    return nde__errf(e, NDE_ERR_IO, "%s: cannot read (HDF5: %s)", file, h5);
  }
  if (is == 0)
    return nde__errf(e, NDE_ERR_DATA,
                     "%s: not an HDF5 file (expected the HDF5 signature, got %lld bytes without "
                     "it)",
                     file, (long long)sb.st_size);
  return NDE_OK;
}

nde_status nde_data_open(const char *path, size_t n_state, const char *const *state_names,
                         const nde_data_opts *opts, nde_data **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde__h5quiet q;
  nde_data *d = NULL;
  char *file = NULL, *sel = NULL;
  raw_series *raw = NULL;
  size_t n_raw = 0;
  group_list gl = {0};
  loader L = {0};
  L.fid = -1;
  nde_status st;
  if (out) *out = NULL;
  if (!path || !out || (n_state && !state_names) || (!n_state && state_names)) {
    st = nde__errf(&e, NDE_ERR_ARG, "nde_data_open: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  for (size_t j = 0; j < n_state; j++)
    for (size_t k = 0; k < j; k++)
      if (!state_names[j] || strcmp(state_names[j], state_names[k]) == 0) {
        st = nde__errf(&e, NDE_ERR_ARG, "nde_data_open: state %zu has no name or repeats one",
                       j);
        nde__data_err_out(&e, err);
        return st;
      }
  nde__h5_quiet_begin(&q);
  nde_data_opts o = opts ? *opts : nde_data_opts_default();
  if ((st = split_path(path, &file, &sel))) {
    nde__errf(&e, st, "%s: out of memory", path);
    goto fail;
  }
  if ((st = check_file(&e, file))) goto fail;
  L.file = file;
  L.err = &e;
  L.max_bytes = o.max_bytes;
  L.n_state = n_state;
  L.fid = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (L.fid < 0) {
    char h5[256];
    nde__h5_last_error(h5, sizeof h5);
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot open (HDF5: %s)", file, h5);
    goto fail;
  }
  const char *root = sel ? sel : "/";
  nde_h5_kind kind = nde__h5_kind(L.fid, root);
  if (kind == NDE_H5_NONE) {
    st = missing_group(&L, root);
    goto fail;
  }
  if (kind != NDE_H5_GROUP) {
    st = nde__errf(&e, NDE_ERR_DATA, "%s:%s: not a group (expected a group holding t and y)",
                   file, root);
    goto fail;
  }
  char tpath[PATH_MAX_LEN], ypath[PATH_MAX_LEN];
  nde__h5_join(tpath, sizeof tpath, root, "t");
  nde__h5_join(ypath, sizeof ypath, root, "y");
  int single = nde__h5_kind(L.fid, tpath) != NDE_H5_NONE || nde__h5_kind(L.fid, ypath) != NDE_H5_NONE;
  if (!single) {
    if ((st = list_groups(&L, root, &gl))) goto fail;
    if (gl.n == 0) {
      st = nde__errf(&e, NDE_ERR_DATA,
                     "%s:%s: no such dataset (expected %s and %s, or groups%s%s each holding t "
                     "and y)",
                     file, tpath, tpath, ypath, sel ? " below " : "", sel ? sel : "");
      goto fail;
    }
  }
  size_t want = single ? 1 : gl.n;
  raw = calloc(want, sizeof *raw);
  if (!raw) goto nomem;
  for (size_t s = 0; s < want; s++) {
    char g[PATH_MAX_LEN];
    if (single)
      snprintf(g, sizeof g, "%s", root);
    else
      nde__h5_join(g, sizeof g, root, gl.names[s]);
    n_raw = s + 1;
    if ((st = load_raw(&L, g, &raw[s]))) goto fail;
  }

  d = calloc(1, sizeof *d);
  if (!d) goto nomem;
  d->file = malloc(strlen(file) + 1);
  if (!d->file) goto nomem;
  strcpy(d->file, file);
  if ((st = build_states(d, &L, n_state, state_names, raw, n_raw))) goto fail;
  d->traj = calloc(n_raw, sizeof *d->traj);
  d->store = calloc(n_raw, sizeof *d->store);
  d->stats = calloc(d->n_state ? d->n_state : 1, sizeof *d->stats);
  if (!d->traj || !d->store || !d->stats) goto nomem;
  d->n_traj = n_raw;
  for (size_t s = 0; s < n_raw; s++) {
    if ((st = map_series(d, &L, &raw[s], &d->traj[s], &d->store[s]))) goto fail;
    raw_free(&raw[s]);
  }
  compute_stats(d);
  *out = d;
  d = NULL;
  st = NDE_OK;
  goto done;

nomem:
  st = nde__errf(&e, NDE_ERR_NOMEM, "%s: out of memory", file ? file : path);
fail:
  nde_data_destroy(&d);
done:
  for (size_t s = 0; s < n_raw; s++) raw_free(&raw[s]);
  free(raw);
  group_list_free(&gl);
  if (L.fid >= 0) H5Fclose(L.fid);
  free(file);
  free(sel);
  nde__h5_quiet_end(&q);
  if (st == NDE_OK) nde__err_clear(&e);
  nde__data_err_out(&e, err);
  return st;
}

void nde_data_destroy(nde_data **data) {
  if (!data || !*data) return;
  nde_data *d = *data;
  for (size_t k = 0; d->store && k < d->n_traj; k++) {
    free(d->store[k].name);
    free(d->store[k].t);
    free(d->store[k].y);
    free(d->store[k].col);
    free(d->store[k].noise);
  }
  free(d->store);
  free(d->traj);
  free(d->stats);
  free(d->state_names);
  free(d->file);
  free(d);
  *data = NULL;
}

const char *nde_data_file(const nde_data *d) { return d ? d->file : NULL; }
size_t nde_data_n_traj(const nde_data *d) { return d ? d->n_traj : 0; }
const nde_traj *nde_data_traj(const nde_data *d, size_t k) {
  return d && k < d->n_traj ? &d->traj[k] : NULL;
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
