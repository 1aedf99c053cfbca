/* Atomic HDF5 writer: all output goes to a temporary file in the target's directory, which is
 * closed, fsync'ed and renamed over the target on commit (rename(2) is atomic within a file
 * system), then the directory is fsync'ed so the rename itself is durable.  A failed call makes
 * the writer failed, and a failed writer never touches the target. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5util.h"

struct nde_writer {
  char *path; /* target */
  char *dir;  /* its directory ("." when path has none) */
  char *tmp;  /* temporary file */
  hid_t file;
  nde__err err; /* sticky: the first failure */
  int done;     /* committed or aborted */
};

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static nde_status fail_h5(nde_writer *w, const char *obj, const char *what) {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  return nde__errf(&w->err, NDE_ERR_IO, "%s:%s: %s (HDF5: %s)", w->path, obj, what, h5);
}

/* Close and remove the temporary file. */
static void abort_tmp(nde_writer *w) {
  if (w->file >= 0) {
    H5Fclose(w->file);
    w->file = -1;
  }
  if (w->tmp && !w->done) unlink(w->tmp);
  w->done = 1;
}

nde_status nde_writer_create(const char *path, nde_writer **out, nde_error *err) {
  nde__err e;
  nde__err_clear(&e);
  nde__h5quiet q;
  nde_status st = NDE_OK;
  hid_t fapl = -1;
  if (out) *out = NULL;
  if (!path || !path[0] || !out) {
    st = nde__errf(&e, NDE_ERR_ARG, "nde_writer_create: invalid arguments");
    nde__data_err_out(&e, err);
    return st;
  }
  nde__h5_quiet_begin(&q);
  nde_writer *w = calloc(1, sizeof *w);
  if (!w) goto nomem;
  w->file = -1;
  w->path = dup_str(path);
  if (!w->path) goto nomem;
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  if (!base[0]) {
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot create (expected a file name, got a directory)",
                   path);
    goto fail;
  }
  if (slash == path)
    w->dir = dup_str("/");
  else if (slash) {
    w->dir = malloc((size_t)(slash - path) + 1);
    if (w->dir) {
      memcpy(w->dir, path, (size_t)(slash - path));
      w->dir[slash - path] = '\0';
    }
  } else
    w->dir = dup_str(".");
  if (!w->dir) goto nomem;

  struct stat sb;
  if (stat(w->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot create (directory %s %s)", path, w->dir,
                   errno == ENOENT || !S_ISDIR(sb.st_mode) ? "does not exist" : strerror(errno));
    goto fail;
  }
  if (access(w->dir, W_OK | X_OK) != 0) {
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot create (directory %s is not writable: %s)", path,
                   w->dir, strerror(errno));
    goto fail;
  }
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot create (expected a file, got a directory)", path);
    goto fail;
  }

  size_t tlen = strlen(w->dir) + strlen(base) + 32;
  w->tmp = malloc(tlen);
  if (!w->tmp) goto nomem;
  /* A strong close degree makes H5Fclose really close the file, so commit can sync it. */
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
    st = fail_h5(w, "/", "cannot create");
    e = w->err;
    goto fail;
  }
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  nde_rng rng;
  nde_rng_seed(&rng, (uint64_t)getpid() ^ ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
                         (uint64_t)(uintptr_t)w);
  for (int attempt = 0; attempt < 100 && w->file < 0; attempt++) {
    snprintf(w->tmp, tlen, "%s/.%s.tmp-%06llx", w->dir, base,
             (unsigned long long)(nde_rng_u64(&rng) & 0xffffff));
    w->file = H5Fcreate(w->tmp, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    if (w->file < 0 && stat(w->tmp, &sb) != 0) break; /* not a name clash */
  }
  if (w->file < 0) {
    char h5[256];
    nde__h5_last_error(h5, sizeof h5);
    st = nde__errf(&e, NDE_ERR_IO, "%s: cannot create temporary file %s (HDF5: %s)", path,
                   w->tmp, h5);
    free(w->tmp);
    w->tmp = NULL;
    goto fail;
  }
  H5Pclose(fapl);
  nde__err_clear(&w->err);
  *out = w;
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return NDE_OK;

nomem:
  st = nde__errf(&e, NDE_ERR_NOMEM, "%s: out of memory", path);
fail:
  if (fapl >= 0) H5Pclose(fapl);
  nde_writer_destroy(&w);
  nde__h5_quiet_end(&q);
  nde__data_err_out(&e, err);
  return st;
}

void nde_writer_destroy(nde_writer **wp) {
  if (!wp || !*wp) return;
  nde_writer *w = *wp;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  abort_tmp(w);
  nde__h5_quiet_end(&q);
  free(w->path);
  free(w->dir);
  free(w->tmp);
  free(w);
  *wp = NULL;
}

const char *nde_writer_errmsg(const nde_writer *w) {
  return w ? nde__err_msg(&w->err) : nde_status_str(NDE_ERR_ARG);
}

/* Common entry of every put: the sticky failure, a finished writer, the path's form. */
static nde_status put_begin(nde_writer *w, const char *path, const char *fn) {
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  if (w->done) return nde__errf(&w->err, NDE_ERR_ARG, "%s: %s after commit", w->path, fn);
  if (!path || path[0] != '/' || !path[1])
    return nde__errf(&w->err, NDE_ERR_ARG, "%s: %s: path \"%s\" is not absolute (expected "
                     "\"/group/name\")", w->path, fn, path ? path : "(null)");
  if (nde__h5_kind(w->file, path) != NDE_H5_NONE)
    return nde__errf(&w->err, NDE_ERR_ARG, "%s:%s: already exists (expected a new dataset)",
                     w->path, path);
  return NDE_OK;
}

/* Create a dataset of type ftype and shape dims at path, write buf in mtype. */
static nde_status put_dataset(nde_writer *w, const char *path, hid_t ftype, hid_t mtype,
                              int rank, const size_t *dims, const void *buf) {
  hsize_t hd[NDE_DATA_MAX_RANK];
  if (rank < 0 || rank > NDE_DATA_MAX_RANK || (rank > 0 && !dims) || !buf)
    return nde__errf(&w->err, NDE_ERR_ARG,
                     "%s:%s: invalid shape (expected rank 0..%d with dims and data, got rank %d)",
                     w->path, path, NDE_DATA_MAX_RANK, rank);
  for (int i = 0; i < rank; i++) hd[i] = (hsize_t)dims[i];
  nde_status st = NDE_OK;
  hid_t space = rank ? H5Screate_simple(rank, hd, NULL) : H5Screate(H5S_SCALAR);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  hid_t ds = -1;
  if (space < 0 || lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
    st = fail_h5(w, path, "cannot create");
    goto out;
  }
  ds = H5Dcreate2(w->file, path, ftype, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  if (ds < 0) {
    st = fail_h5(w, path, "cannot create");
    goto out;
  }
  if (H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
    st = fail_h5(w, path, "cannot write");
out:
  if (ds >= 0) H5Dclose(ds);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (space >= 0) H5Sclose(space);
  return st;
}

static nde_status put_numeric(nde_writer *w, const char *path, int rank, const size_t *dims,
                              const void *x, hid_t ftype, hid_t mtype, const char *fn) {
  nde__h5quiet q;
  nde_status st = put_begin(w, path, fn);
  if (st) return st;
  nde__h5_quiet_begin(&q);
  st = put_dataset(w, path, ftype, mtype, rank, dims, x);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_put_doubles(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const double *x) {
  return put_numeric(w, path, rank, dims, x, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     "nde_writer_put_doubles");
}

nde_status nde_writer_put_int64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                 const int64_t *x) {
  return put_numeric(w, path, rank, dims, x, H5T_STD_I64LE, H5T_NATIVE_INT64,
                     "nde_writer_put_int64s");
}

nde_status nde_writer_put_uint64s(nde_writer *w, const char *path, int rank, const size_t *dims,
                                  const uint64_t *x) {
  return put_numeric(w, path, rank, dims, x, H5T_STD_U64LE, H5T_NATIVE_UINT64,
                     "nde_writer_put_uint64s");
}

/* A variable-length UTF-8 string type (what h5py writes for str). */
static hid_t vlen_utf8(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t < 0) return t;
  if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
    H5Tclose(t);
    return -1;
  }
  return t;
}

static nde_status put_strs(nde_writer *w, const char *path, int rank, size_t n,
                           const char *const *strs, const char *fn) {
  nde__h5quiet q;
  nde_status st = put_begin(w, path, fn);
  if (st) return st;
  for (size_t i = 0; i < n; i++)
    if (!strs || !strs[i])
      return nde__errf(&w->err, NDE_ERR_ARG, "%s:%s: string %zu is NULL", w->path, path, i);
  nde__h5_quiet_begin(&q);
  hid_t t = vlen_utf8();
  if (t < 0)
    st = fail_h5(w, path, "cannot create");
  else
    st = put_dataset(w, path, t, t, rank, &n, strs);
  if (t >= 0) H5Tclose(t);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_put_string(nde_writer *w, const char *path, const char *text) {
  return put_strs(w, path, 0, 1, &text, "nde_writer_put_string");
}

nde_status nde_writer_put_strings(nde_writer *w, const char *path, size_t n,
                                  const char *const *strs) {
  static const char *const none[1] = {""};
  return put_strs(w, path, 1, n, n ? strs : none, "nde_writer_put_strings");
}

/* Open obj for attributes, creating a group (and its parents) when missing. */
static hid_t open_or_create(nde_writer *w, const char *obj) {
  if (nde__h5_kind(w->file, obj) != NDE_H5_NONE) return H5Oopen(w->file, obj, H5P_DEFAULT);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  if (lcpl < 0) return -1;
  hid_t g = -1;
  if (H5Pset_create_intermediate_group(lcpl, 1) >= 0)
    g = H5Gcreate2(w->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Pclose(lcpl);
  return g;
}

static nde_status set_attr(nde_writer *w, const char *obj, const char *name, hid_t type,
                           int rank, size_t n, const void *buf) {
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  if (w->done) return nde__errf(&w->err, NDE_ERR_ARG, "%s: attribute set after commit", w->path);
  if (!obj || obj[0] != '/' || !name || !name[0])
    return nde__errf(&w->err, NDE_ERR_ARG,
                     "%s: attribute needs an absolute object path and a name (got \"%s\", \"%s\")",
                     w->path, obj ? obj : "(null)", name ? name : "(null)");
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  nde_status st = NDE_OK;
  hsize_t hn = n;
  hid_t space = rank ? H5Screate_simple(1, &hn, NULL) : H5Screate(H5S_SCALAR);
  hid_t o = open_or_create(w, obj), a = -1;
  if (space < 0 || o < 0) {
    st = fail_h5(w, obj, "cannot open for attributes");
    goto out;
  }
  htri_t ex = H5Aexists(o, name);
  if (ex > 0 && H5Adelete(o, name) < 0) ex = -1;
  if (ex < 0) {
    st = fail_h5(w, obj, "cannot replace attribute");
    goto out;
  }
  a = H5Acreate2(o, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0 || H5Awrite(a, type, buf) < 0) st = fail_h5(w, obj, "cannot write attribute");
out:
  if (a >= 0) H5Aclose(a);
  if (o >= 0) H5Oclose(o);
  if (space >= 0) H5Sclose(space);
  nde__h5_quiet_end(&q);
  return st;
}

nde_status nde_writer_set_attr_string(nde_writer *w, const char *obj, const char *name,
                                      const char *value) {
  if (w && !value && w->err.status == NDE_OK)
    return nde__errf(&w->err, NDE_ERR_ARG, "%s:%s: attribute %s is NULL", w->path,
                     obj ? obj : "", name ? name : "");
  hid_t t = vlen_utf8();
  nde_status st = set_attr(w, obj, name, t, 0, 1, &value);
  if (t >= 0) H5Tclose(t);
  return st;
}

nde_status nde_writer_set_attr_double(nde_writer *w, const char *obj, const char *name,
                                      double value) {
  return set_attr(w, obj, name, H5T_NATIVE_DOUBLE, 0, 1, &value);
}

nde_status nde_writer_set_attr_int64(nde_writer *w, const char *obj, const char *name,
                                     int64_t value) {
  return set_attr(w, obj, name, H5T_NATIVE_INT64, 0, 1, &value);
}

nde_status nde_writer_put_series(nde_writer *w, const char *group, const nde_series *s) {
  char tpath[1024], ypath[1024];
  if (!w) return NDE_ERR_ARG;
  if (w->err.status != NDE_OK) return w->err.status;
  const char *g = group && group[0] ? group : "/";
  if (g[0] != '/')
    return nde__errf(&w->err, NDE_ERR_ARG, "%s: group \"%s\" is not absolute", w->path, g);
  nde__h5_join(tpath, sizeof tpath, g, "t");
  nde__h5_join(ypath, sizeof ypath, g, "y");
  if (!s || !s->t || !s->y)
    return nde__errf(&w->err, NDE_ERR_ARG, "%s:%s: series without t or y", w->path, g);
  if (s->n == 0 || s->d == 0)
    return nde__errf(&w->err, NDE_ERR_DATA,
                     "%s:%s: empty series (expected N >= 1 times and D >= 1 columns, got [%zu, "
                     "%zu])",
                     w->path, ypath, s->n, s->d);
  nde_status st;
  if ((st = nde__check_times(&w->err, w->path, tpath, s->n, s->t))) return st;
  if (s->names && (st = nde__check_names(&w->err, w->path, ypath, s->d, s->names))) return st;
  if ((st = nde__check_obs(&w->err, w->path, ypath, s->n, s->d, s->y, s->names, NULL)))
    return st;
  size_t dims[2] = {s->n, s->d};
  if ((st = nde_writer_put_doubles(w, tpath, 1, dims, s->t))) return st;
  if ((st = nde_writer_put_doubles(w, ypath, 2, dims, s->y))) return st;
  if (s->names) {
    hid_t t = vlen_utf8();
    st = set_attr(w, ypath, "state_names", t, 1, s->d, s->names);
    if (t >= 0) H5Tclose(t);
    if (st) return st;
  }
  if (s->noise_std && (st = set_attr(w, ypath, "noise_std", H5T_NATIVE_DOUBLE, 1, s->d,
                                     s->noise_std)))
    return st;
  return NDE_OK;
}

static nde_status sync_path(const char *p, int flags) {
  int fd = open(p, flags);
  if (fd < 0) return NDE_ERR_IO;
  int rc = fsync(fd);
  close(fd);
  return rc == 0 ? NDE_OK : NDE_ERR_IO;
}

nde_status nde_writer_commit(nde_writer *w) {
  if (!w) return NDE_ERR_ARG;
  nde__h5quiet q;
  nde__h5_quiet_begin(&q);
  nde_status st = w->err.status;
  if (st == NDE_OK && w->done)
    st = nde__errf(&w->err, NDE_ERR_ARG, "%s: commit of a finished writer", w->path);
  if (st != NDE_OK) goto fail;
  herr_t rc = H5Fclose(w->file);
  w->file = -1;
  if (rc < 0) {
    st = fail_h5(w, "/", "cannot close the temporary file");
    goto fail;
  }
  if (sync_path(w->tmp, O_RDWR) != NDE_OK) {
    st = nde__errf(&w->err, NDE_ERR_IO, "%s: cannot sync the temporary file %s (%s)", w->path,
                   w->tmp, strerror(errno));
    goto fail;
  }
  if (rename(w->tmp, w->path) != 0) {
    st = nde__errf(&w->err, NDE_ERR_IO, "%s: cannot replace with the written file (%s)",
                   w->path, strerror(errno));
    goto fail;
  }
  w->done = 1;
  /* The rename is done; a directory that cannot be synced (some file systems refuse) only
   * weakens durability, never consistency. */
  (void)sync_path(w->dir, O_RDONLY);
  nde__h5_quiet_end(&q);
  return NDE_OK;
fail:
  abort_tmp(w);
  nde__h5_quiet_end(&q);
  return st;
}
