/* Parameters from a file (nde fit --init, the Python package's init=): the flat theta of a result
 * file or another tool's, checked against the model before anything is read, and parameters by
 * name in natural units.  Also the uniform output grids of forecasts. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* One layout entry as text: "'U' (87 values at theta[4])" (len < 0: the name alone). */
static void entry_text(nde_str *s, const char *name, int64_t off, int64_t len) {
  nde_str_addf(s, "'%s'", name);
  if (len >= 0)
    nde_str_addf(s, " (%lld value%s at theta[%lld])", (long long)len, len == 1 ? "" : "s",
                 (long long)off);
}

/* The layout a file records (/params/layout/names, and /offsets, /lengths when present) against
 * the model's: the same entries in the same places, else a message naming the first entry that
 * differs.  A file without /params/layout/names (another tool's) is not checked. */
static nde_status check_layout(nde_reader *r, const char *path, const nde_model *m,
                               nde_error *err) {
  if (nde_reader_kind(r, "/params/layout/names") == NDE_H5_NONE) return NDE_OK;
  const size_t n_model = (size_t)nde_model_n_layout(m);
  int rank = 0;
  size_t dims[NDE_DATA_MAX_RANK], nl = 0;
  if (nde_reader_shape(r, "/params/layout/names", &rank, dims) != NDE_OK || rank != 1)
    return nde__fail(err, NDE_ERR_DATA, "%s:/params/layout/names: expected a list of names, got "
                     "a dataset of rank %d", path, rank);
  /* A model has far fewer entries than this; a larger list is not read. */
  if (dims[0] > n_model + 1000)
    return nde__fail(err, NDE_ERR_DATA, "%s:/params/layout: the parameters were made for another "
                     "model (expected %zu entries for %s, got %zu)", path, n_model,
                     nde_model_filename(m), dims[0]);
  char **names = NULL;
  int64_t *offs = NULL, *lens = NULL;
  nde_status st = NDE_OK;
  if (nde_reader_get_strings(r, "/params/layout/names", &nl, &names) != NDE_OK)
    return nde__fail(err, NDE_ERR_DATA, "%s", nde_reader_errmsg(r));
  /* Offsets and lengths are compared when the file has both, one per name. */
  const int placed = nde_reader_kind(r, "/params/layout/offsets") == NDE_H5_DATASET &&
                     nde_reader_kind(r, "/params/layout/lengths") == NDE_H5_DATASET;
  if (placed) {
    offs = calloc(nl + 1, sizeof *offs);
    lens = calloc(nl + 1, sizeof *lens);
    if (!offs || !lens) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
      goto done;
    }
    if (nde_reader_get_int64s(r, "/params/layout/offsets", nl, offs) != NDE_OK ||
        nde_reader_get_int64s(r, "/params/layout/lengths", nl, lens) != NDE_OK) {
      st = nde__fail(err, NDE_ERR_DATA, "%s (expected one offset and one length per name)",
                     nde_reader_errmsg(r));
      goto done;
    }
  }
  for (size_t i = 0; i < nl || i < n_model; i++) {
    nde_model_layout_entry e;
    const int in_model = i < n_model && nde_model_get_layout(m, (int)i, &e) == NDE_OK;
    const int64_t fo = placed && i < nl ? offs[i] : -1, fl = placed && i < nl ? lens[i] : -1;
    if (in_model && i < nl && !strcmp(e.name, names[i]) &&
        (!placed || (fo == (int64_t)e.offset && fl == (int64_t)e.length)))
      continue;
    nde_str s = NDE_STR_INIT;
    nde_str_addf(&s, "%s:/params/layout: the parameters were made for another model: entry %zu "
                 "is ", path, i + 1);
    if (i < nl) entry_text(&s, names[i], fo, fl);
    else nde_str_addf(&s, "missing (the file has %zu)", nl);
    nde_str_adds(&s, " in the file, ");
    if (in_model) entry_text(&s, e.name, (int64_t)e.offset, placed ? (int64_t)e.length : -1);
    else nde_str_addf(&s, "absent (the model has %zu)", n_model);
    nde_str_addf(&s, " in %s (expected the layout of the same model)", nde_model_filename(m));
    st = s.failed ? nde__fail(err, NDE_ERR_NOMEM, "out of memory")
                  : nde__fail(err, NDE_ERR_DATA, "%s", s.data);
    nde_str_release(&s);
    break;
  }
done:
  free(names);
  free(offs);
  free(lens);
  return st;
}

/* /params/theta: rank <= 1, exactly n values, finite; the recorded layout (when there is one)
 * must be the model's, entry for entry, checked first: parameters of another model are named as
 * such whatever their count. */
static nde_status read_flat(nde_reader *r, const char *path, const nde_model *m, size_t n,
                            double *theta, nde_error *err) {
  int rank = 0;
  size_t dims[NDE_DATA_MAX_RANK], count = 1;
  nde_status st = check_layout(r, path, m, err);
  if (st != NDE_OK) return st;
  if (nde_reader_shape(r, "/params/theta", &rank, dims) != NDE_OK || rank > 1)
    return nde__fail(err, NDE_ERR_DATA, "%s:/params/theta: expected a vector of %zu values", path,
                     n);
  if (rank == 1) count = dims[0];
  /* The length first: a huge declared size is refused before anything is read. */
  if (count != n)
    return nde__fail(err, NDE_ERR_DATA, "%s:/params/theta: expected %zu values for the model %s, "
                     "got %zu", path, n, nde_model_filename(m), count);
  if (nde_reader_get_doubles(r, "/params/theta", n, theta) != NDE_OK)
    return nde__fail(err, NDE_ERR_DATA, "%s", nde_reader_errmsg(r));
  for (size_t i = 0; i < n; i++)
    if (!isfinite(theta[i]))
      return nde__fail(err, NDE_ERR_DATA, "%s:/params/theta: value %zu is not finite (expected "
                       "finite parameters)", path, i);
  return NDE_OK;
}

nde_status nde_read_params(const char *path, const nde_model *model, int n_series, double *theta,
                           nde_error *err) {
  if (!path || !model || !theta || n_series < 1)
    return nde__fail(err, NDE_ERR_ARG, "nde_read_params: invalid arguments");
  nde_reader *r = NULL;
  nde_status st = nde_reader_open(path, &r, err);
  if (st != NDE_OK) return st;
  const size_t n = nde_model_n_theta_full(model, n_series);
  int any = 0, flat = 0;
  if (nde_reader_kind(r, "/params/theta") == NDE_H5_DATASET) {
    any = flat = 1;
    st = read_flat(r, path, model, n, theta, err);
  }
  /* Parameters by name, in natural units, override; a result file holds both, and there the
   * natural value only repeats theta's (to rounding): theta's own bits are kept then. */
  for (int i = 0; st == NDE_OK && i < nde_model_n_params(model); i++) {
    nde_model_param_info p;
    nde_model_get_param(model, i, &p);
    if (!p.learnable || p.per_series) continue;
    nde_str place = NDE_STR_INIT;
    nde_str_addf(&place, "/params/values/%s", p.name);
    if (place.failed) {
      st = nde__fail(err, NDE_ERR_NOMEM, "out of memory");
    } else if (nde_reader_kind(r, place.data) == NDE_H5_DATASET) {
      double v;
      any = 1;
      const double had = flat ? nde_model_param_value(model, i, theta) : NAN;
      if (nde_reader_get_doubles(r, place.data, 1, &v) != NDE_OK ||
          (!(fabs(v - had) <= 1e-12 * fabs(had)) && nde_model_set_param(model, i, v, theta) != NDE_OK))
        st = nde__fail(err, NDE_ERR_DATA, "%s:%s: expected one value in the domain of %s", path,
                       place.data, p.name);
    }
    nde_str_release(&place);
  }
  if (st == NDE_OK && !any)
    st = nde__fail(err, NDE_ERR_DATA, "%s:/params/theta: no such dataset, nor /params/values/NAME "
                   "(expected the parameters of the model)", path);
  nde_reader_destroy(&r);
  return st;
}

nde_status nde_time_grid(double t0, double t1, double dt, size_t max, double **times, size_t *n,
                         nde_error *err) {
  if (!times || !n) return nde__fail(err, NDE_ERR_ARG, "nde_time_grid: invalid arguments");
  *times = NULL;
  *n = 0;
  if (!isfinite(t0) || !isfinite(t1) || !(t1 > t0) || !(dt > 0) || !isfinite(dt))
    return nde__fail(err, NDE_ERR_ARG, "a time grid needs t0 < t1 and a step dt > 0 (got t0 = %g, "
                     "t1 = %g, dt = %g)", t0, t1, dt);
  const double steps = (t1 - t0) / dt;
  if (!(steps + 2 <= (double)max))
    return nde__fail(err, NDE_ERR_ARG, "a step %g gives more than %zu times on [%g, %g]", dt, max,
                     t0, t1);
  size_t N = (size_t)floor(steps + 1e-9) + 1;
  /* A last point within 1e-9 dt of t1 is t1 itself; otherwise t1 is appended. */
  if (fabs(t0 + (double)(N - 1) * dt - t1) > 1e-9 * dt) N++;
  double *T = nde__dalloc(N);
  if (!T) return nde__fail(err, NDE_ERR_NOMEM, "out of memory for %zu times", N);
  for (size_t i = 0; i < N; i++) T[i] = t0 + (double)i * dt;
  T[N - 1] = t1;
  /* Far from 0 a step below the spacing of doubles rounds several times to one value (t0 = 1e17,
   * dt = 1): such a grid cannot be integrated onto, so it is refused here by name. */
  for (size_t i = 1; i < N; i++)
    if (!(T[i] > T[i - 1])) {
      const double at = T[i - 1];
      free(T);
      return nde__fail(err, NDE_ERR_ARG,
                       "a step %g is below the resolution of the times near %g (doubles there "
                       "are %g apart)",
                       dt, at, nextafter(fabs(at), INFINITY) - fabs(at));
    }
  *times = T;
  *n = N;
  return NDE_OK;
}
