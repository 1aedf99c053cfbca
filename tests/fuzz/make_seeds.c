/* Writes the seed corpus of the data fuzz target (tests/fuzz/corpus/data): small valid files of
 * every shape the reader knows, made by nde's writer and by the HDF5 C API (other format versions,
 * fixed-length strings, float32, links).  Run by hand when the format grows:
 *   build/tests/fuzz/make_seeds tests/fuzz/corpus/data */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nde/data.h"

static const double T[4] = {0.0, 0.5, 1.25, 2.0};
static const double Y[8] = {1.3, -0.27, 1.41, NAN, 1.56, 0.02, 1.72, 0.31};
static const char *const NAMES[2] = {"x", "y"};
static const double UT[3] = {-0.5, 1.0, 2.5};
static const double U[3] = {21.5, 22.25, 21.75};
static const char *const IN[1] = {"u"};
static const char *const CN[1] = {"k"};
static const double CV[1] = {0.0385};
static const double SIG[2] = {0.02, 0.05};

static char path_buf[4096];
static const char *at(const char *dir, const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
  return path_buf;
}

static int with_writer(const char *path, int kind) {
  nde_writer *w = NULL;
  nde_error e;
  if (nde_writer_create(path, &w, &e)) {
    fprintf(stderr, "%s\n", e.msg);
    return 1;
  }
  nde_series s = {4, 2, T, Y, NAMES, SIG};
  nde_series_extra x = {0};
  x.sigma = SIG;
  x.m = 1;
  x.n_u = 3;
  x.u_t = UT;
  x.u = U;
  x.input_names = IN;
  x.n_consts = 1;
  x.const_names = CN;
  x.consts = CV;
  nde_status st = NDE_OK;
  if (kind == 0) st = nde_writer_put_series(w, "/", &s);
  if (kind == 1) st = nde_writer_put_series_ex(w, "/", &s, &x);
  if (kind == 2) {
    st = nde_writer_put_series_ex(w, "/run1", &s, &x);
    nde_series s2 = {3, 1, T, Y, NULL, NULL};
    if (!st) st = nde_writer_put_series(w, "/run2", &s2);
  }
  if (kind == 3) {
    const double th[4] = {1.3, -0.9172, 0.8125, 1.8};
    const char *pn[4] = {"alpha", "beta", "gamma", "delta"};
    size_t n = 4;
    st = nde_writer_put_doubles(w, "/params/theta", 1, &n, th);
    if (!st) st = nde_writer_put_strings(w, "/params/names", 4, pn);
    if (!st) st = nde_writer_put_string(w, "/model/source", "state x, y\ndx/dt = -x\ndy/dt = x\n");
    if (!st) st = nde_writer_set_attr_string(w, "/", "command_line", "nde fit m.nde d.h5");
    if (!st) st = nde_writer_set_attr_int64(w, "/", "seed", 7);
  }
  if (!st) st = nde_writer_commit(w);
  if (st) fprintf(stderr, "%s\n", nde_writer_errmsg(w));
  nde_writer_destroy(&w);
  return st != NDE_OK;
}

/* The HDF5 C API's defaults: superblock 0, version 1 object headers, fixed-length names, float32
 * observations, a hard link that makes a cycle and a soft link. */
static int with_hdf5(const char *path) {
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t n = 4, dims[2] = {4, 2}, two = 2;
  hid_t s1 = H5Screate_simple(1, &n, NULL), s2 = H5Screate_simple(2, dims, NULL);
  hid_t g = H5Gcreate2(f, "/run1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t t = H5Dcreate2(g, "t", H5T_IEEE_F64LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t y = H5Dcreate2(g, "y", H5T_IEEE_F32LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(t, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, T);
  H5Dwrite(y, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, Y);
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 4);
  H5Tset_strpad(st, H5T_STR_SPACEPAD);
  hid_t ns = H5Screate_simple(1, &two, NULL);
  hid_t a = H5Acreate2(y, "state_names", st, ns, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, st, "x   y   ");
  H5Aclose(a);
  hid_t sc = H5Screate(H5S_SCALAR);
  a = H5Acreate2(g, "k", H5T_IEEE_F64LE, sc, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, CV);
  H5Aclose(a);
  H5Lcreate_hard(f, "/run1", f, "/run1/again", H5P_DEFAULT, H5P_DEFAULT);
  H5Lcreate_soft("/run1", f, "/run2", H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(sc);
  H5Sclose(ns);
  H5Tclose(st);
  H5Dclose(t);
  H5Dclose(y);
  H5Gclose(g);
  H5Sclose(s1);
  H5Sclose(s2);
  return H5Fclose(f) < 0;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: make_seeds DIR\n");
    return 2;
  }
  int bad = 0;
  bad |= with_writer(at(argv[1], "series.h5"), 0);
  bad |= with_writer(at(argv[1], "inputs.h5"), 1);
  bad |= with_writer(at(argv[1], "batch.h5"), 2);
  bad |= with_writer(at(argv[1], "result.h5"), 3);
  bad |= with_hdf5(at(argv[1], "hdf5_api.h5"));
  return bad;
}
