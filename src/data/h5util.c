/* HDF5 helpers of the data layer: silence and read HDF5's error stack, name datatypes, look up
 * objects without tripping errors on missing parents, read strings of every HDF5 flavour, and
 * the validation of a time series shared by the reader and the writer. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5util.h"

void nde__h5_quiet_begin(nde__h5quiet *q) {
  q->func = NULL;
  q->data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void nde__h5_quiet_end(const nde__h5quiet *q) {
  H5Eclear2(H5E_DEFAULT);
  H5Eset_auto2(H5E_DEFAULT, q->func, q->data);
}

typedef struct last_error {
  char *buf;
  size_t n;
} last_error;

static herr_t walk_first(unsigned k, const H5E_error2_t *e, void *ctx) {
  last_error *le = ctx;
  if (k == 0 && e->desc) snprintf(le->buf, le->n, "%s", e->desc);
  return 0;
}

void nde__h5_last_error(char *buf, size_t n) {
  if (n == 0) return;
  buf[0] = '\0';
  last_error le = {buf, n};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, &le);
  H5Eclear2(H5E_DEFAULT);
  if (!buf[0]) snprintf(buf, n, "unknown HDF5 failure");
}

void nde__h5_type_name(hid_t type, char *buf, size_t n) {
  size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
      snprintf(buf, n, "%s%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "uint" : "int", bits);
      return;
    case H5T_FLOAT: snprintf(buf, n, "float%zu", bits); return;
    case H5T_STRING: snprintf(buf, n, "string"); return;
    case H5T_COMPOUND: snprintf(buf, n, "compound"); return;
    case H5T_ENUM: snprintf(buf, n, "enum"); return;
    case H5T_ARRAY: snprintf(buf, n, "array"); return;
    case H5T_VLEN: snprintf(buf, n, "variable-length sequence"); return;
    case H5T_BITFIELD: snprintf(buf, n, "bitfield"); return;
    case H5T_OPAQUE: snprintf(buf, n, "opaque"); return;
    case H5T_REFERENCE: snprintf(buf, n, "reference"); return;
    case H5T_TIME: snprintf(buf, n, "time"); return;
    default: snprintf(buf, n, "unknown type"); return;
  }
}

nde_h5_kind nde__h5_kind(hid_t file, const char *path) {
  if (!path || path[0] != '/') return NDE_H5_NONE;
  if (path[1] == '\0') return NDE_H5_GROUP;
  /* H5Lexists fails rather than answering "no" when a parent is missing: check every prefix. */
  size_t len = strlen(path);
  char *p = malloc(len + 1);
  if (!p) return NDE_H5_NONE;
  memcpy(p, path, len + 1);
  nde_h5_kind kind = NDE_H5_NONE;
  for (size_t i = 1; i <= len; i++) {
    if (p[i] != '/' && p[i] != '\0') continue;
    char c = p[i];
    p[i] = '\0';
    htri_t ex = H5Lexists(file, p, H5P_DEFAULT);
    if (ex > 0) ex = H5Oexists_by_name(file, p, H5P_DEFAULT);
    p[i] = c;
    if (ex <= 0) goto done;
  }
  hid_t obj = H5Oopen(file, path, H5P_DEFAULT);
  if (obj < 0) goto done;
  H5I_type_t t = H5Iget_type(obj);
  kind = t == H5I_GROUP ? NDE_H5_GROUP : t == H5I_DATASET ? NDE_H5_DATASET : NDE_H5_OTHER;
  H5Oclose(obj);
done:
  free(p);
  H5Eclear2(H5E_DEFAULT);
  return kind;
}

void nde__h5_join(char *buf, size_t n, const char *group, const char *leaf) {
  if (!group || !group[0] || strcmp(group, "/") == 0)
    snprintf(buf, n, "/%s", leaf);
  else
    snprintf(buf, n, "%s/%s", group, leaf);
}

/* Pack n strings into one block: n pointers followed by the texts. */
static char **pack_strings(size_t n, char *const *src, const size_t *len) {
  size_t total = n * sizeof(char *);
  for (size_t i = 0; i < n; i++) {
    if (!nde__add_size(total, len[i] + 1, &total)) return NULL;
  }
  char **out = malloc(total ? total : 1);
  if (!out) return NULL;
  char *text = (char *)(out + n);
  for (size_t i = 0; i < n; i++) {
    out[i] = text;
    if (len[i]) memcpy(text, src[i], len[i]);
    text[len[i]] = '\0';
    text += len[i] + 1;
  }
  return out;
}

static size_t trimmed_len(const char *s, size_t max) {
  size_t l = 0;
  while (l < max && s[l]) l++;
  while (l > 0 && (s[l - 1] == ' ' || s[l - 1] == '\t')) l--;
  return l;
}

nde_status nde__h5_read_strings(hid_t id, bool is_attr, size_t *n, char ***strs, char *why,
                                size_t whylen) {
  nde_status st = NDE_ERR_IO;
  hid_t ftype = -1, space = -1, mtype = -1;
  char **vbuf = NULL, *fbuf = NULL, **ptrs = NULL;
  size_t *lens = NULL, count = 0;
  char tname[64];
  *strs = NULL;
  *n = 0;

  ftype = is_attr ? H5Aget_type(id) : H5Dget_type(id);
  space = is_attr ? H5Aget_space(id) : H5Dget_space(id);
  if (ftype < 0 || space < 0) goto hdf5_fail;
  if (H5Tget_class(ftype) != H5T_STRING) {
    nde__h5_type_name(ftype, tname, sizeof tname);
    snprintf(why, whylen, "expected strings, got %s", tname);
    st = NDE_ERR_DATA;
    goto out;
  }
  int rank = H5Sget_simple_extent_ndims(space);
  if (rank > 1) {
    snprintf(why, whylen, "expected a list of strings (rank 1), got rank %d", rank);
    st = NDE_ERR_DATA;
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(space);
  if (np < 0) goto hdf5_fail;
  count = (size_t)np;
  size_t nalloc = count ? count : 1;
  lens = calloc(nalloc, sizeof *lens);
  ptrs = calloc(nalloc, sizeof *ptrs);
  if (!lens || !ptrs) goto nomem;

  mtype = H5Tcopy(H5T_C_S1);
  if (mtype < 0 || H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) goto hdf5_fail;
  htri_t is_var = H5Tis_variable_str(ftype);
  if (is_var < 0) goto hdf5_fail;
  if (is_var) {
    if (H5Tset_size(mtype, H5T_VARIABLE) < 0) goto hdf5_fail;
    vbuf = calloc(nalloc, sizeof *vbuf);
    if (!vbuf) goto nomem;
    herr_t rc = is_attr ? H5Aread(id, mtype, vbuf)
                        : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, vbuf);
    if (rc < 0) goto hdf5_fail;
    for (size_t i = 0; i < count; i++) {
      ptrs[i] = vbuf[i] ? vbuf[i] : (char *)"";
      lens[i] = trimmed_len(ptrs[i], SIZE_MAX);
    }
  } else {
    size_t sz = H5Tget_size(ftype), stride;
    if (H5Tset_size(mtype, sz + 1) < 0 || H5Tset_strpad(mtype, H5T_STR_NULLTERM) < 0)
      goto hdf5_fail;
    size_t bytes;
    stride = sz + 1;
    if (!nde__mul_size(nalloc, stride, &bytes)) goto nomem;
    fbuf = calloc(bytes, 1);
    if (!fbuf) goto nomem;
    herr_t rc = is_attr ? H5Aread(id, mtype, fbuf)
                        : H5Dread(id, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, fbuf);
    if (rc < 0) goto hdf5_fail;
    for (size_t i = 0; i < count; i++) {
      ptrs[i] = fbuf + i * stride;
      lens[i] = trimmed_len(ptrs[i], sz);
    }
  }
  *strs = pack_strings(count, ptrs, lens);
  if (!*strs) goto nomem;
  *n = count;
  st = NDE_OK;
  goto out;

nomem:
  snprintf(why, whylen, "out of memory reading %zu strings", count);
  st = NDE_ERR_NOMEM;
  goto out;
hdf5_fail: {
  char h5[256];
  nde__h5_last_error(h5, sizeof h5);
  snprintf(why, whylen, "cannot read strings (HDF5: %s)", h5);
  st = NDE_ERR_IO;
}
out:
  if (vbuf) {
    if (space >= 0 && mtype >= 0) H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, vbuf);
    free(vbuf);
  }
  free(fbuf);
  free(ptrs);
  free(lens);
  if (mtype >= 0) H5Tclose(mtype);
  if (space >= 0) H5Sclose(space);
  if (ftype >= 0) H5Tclose(ftype);
  return st;
}

void nde__data_err_out(const nde__err *e, nde_error *out) {
  if (!out) return;
  out->status = e ? e->status : NDE_OK;
  snprintf(out->msg, sizeof out->msg, "%s", e && e->status != NDE_OK ? nde__err_msg(e) : "");
}

const char *nde__fmt_double(char *buf, size_t n, double x) {
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, n, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  return buf;
}

nde_status nde__check_times(nde__err *e, const char *file, const char *dset, size_t n,
                            const double *t) {
  char a[40], b[40];
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(t[i]))
      return nde__errf(e, NDE_ERR_DATA,
                       "%s:%s: non-finite time at index %zu (expected a finite number, got %g)",
                       file, dset, i, t[i]);
    if (i > 0 && !(t[i] > t[i - 1]))
      return nde__errf(e, NDE_ERR_DATA,
                       "%s:%s: times not strictly increasing at index %zu (expected t[%zu] > "
                       "t[%zu] = %s, got t[%zu] = %s)",
                       file, dset, i, i, i - 1, nde__fmt_double(a, sizeof a, t[i - 1]), i,
                       nde__fmt_double(b, sizeof b, t[i]));
  }
  return NDE_OK;
}

static void column_label(char *buf, size_t n, size_t c, const char *const *names) {
  if (names)
    snprintf(buf, n, "column %zu (\"%s\")", c, names[c]);
  else
    snprintf(buf, n, "column %zu", c);
}

nde_status nde__check_obs(nde__err *e, const char *file, const char *dset, size_t n, size_t d,
                          const double *y, const char *const *names, size_t *n_nan) {
  char label[160];
  size_t nan = 0;
  for (size_t i = 0; i < n; i++) {
    for (size_t c = 0; c < d; c++) {
      double v = y[i * d + c];
      if (isinf(v)) {
        column_label(label, sizeof label, c, names);
        return nde__errf(e, NDE_ERR_DATA,
                         "%s:%s: infinite value at row %zu, %s (expected a finite number, or NaN "
                         "for a missing value, got %g)",
                         file, dset, i, label, v);
      }
      if (isnan(v)) nan++;
    }
  }
  for (size_t c = 0; c < d; c++) {
    size_t i = 0;
    while (i < n && isnan(y[i * d + c])) i++;
    if (i == n) {
      column_label(label, sizeof label, c, names);
      return nde__errf(e, NDE_ERR_DATA,
                       "%s:%s: %s is all NaN (expected at least one observed value, got %zu NaN "
                       "of %zu)",
                       file, dset, label, n, n);
    }
  }
  if (n_nan) *n_nan = nan;
  return NDE_OK;
}

nde_status nde__check_names(nde__err *e, const char *file, const char *dset, size_t d,
                            const char *const *names) {
  for (size_t c = 0; c < d; c++) {
    if (!names[c] || !names[c][0])
      return nde__errf(e, NDE_ERR_DATA,
                       "%s:%s: state_names[%zu] is empty (expected the name of a state)", file,
                       dset, c);
    for (size_t k = 0; k < c; k++)
      if (strcmp(names[c], names[k]) == 0)
        return nde__errf(e, NDE_ERR_DATA,
                         "%s:%s: state_names[%zu] = \"%s\" repeats state_names[%zu] (expected "
                         "each state named at most once)",
                         file, dset, c, names[c], k);
  }
  return NDE_OK;
}
