/* Writes one HDF5 file per class of bad data into a directory, for the command-line test that
 * every class makes `nde fit` exit with code 2 and one message naming file and dataset:
 *   badfiles DIR    prints "FILE|message fragment" lines, one per file written. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

#define N 6
static const double T[N] = {0.0, 0.2, 0.45, 0.7, 1.1, 1.6};
static const double Y[N * 2] = {1.3, -0.27, 1.41, -0.19, 1.56, 0.02,
                                1.62, 0.21, 1.7, 0.33, 1.66, 0.5};
static const char *const NAMES[2] = {"x", "y"};
static const char *dir;

static const char *path(const char *name) {
  static char buf[8][4096];
  static int slot;
  slot = (slot + 1) % 8;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", dir, name);
  return buf[slot];
}

/* A good series with names, whose t and y can be replaced. */
static void series(const char *name, const double *t, const double *y, const char *frag) {
  hid_t h = fx_create(path(name));
  fx_series(h, NULL, N, 2, t, y);
  fx_names(h, "/y", 2, NAMES, 0);
  H5Fclose(h);
  printf("%s|%s\n", path(name), frag);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: badfiles DIR\n");
    return 2;
  }
  dir = argv[1];
  hsize_t dims[2] = {N, 2}, n = N;
  double t[N], y[N * 2];

  FILE *f = fopen(path("text.h5"), "w");
  fputs("time,x,y\n0,1,2\n", f);
  fclose(f);
  printf("%s|%s\n", path("text.h5"), "not an HDF5 file");

  hid_t h = fx_create(path("no_y.h5"));
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Fclose(h);
  printf("%s|%s\n", path("no_y.h5"), ":/y");

  h = fx_create(path("int_t.h5"));
  const long long ti[N] = {0, 1, 2, 3, 4, 5};
  H5Dclose(fx_dataset(h, "t", H5T_STD_I64LE, 1, dims, H5T_NATIVE_LLONG, ti));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dims, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  printf("%s|%s\n", path("int_t.h5"), ":/t: wrong type");

  h = fx_create(path("rank.h5"));
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  printf("%s|%s\n", path("rank.h5"), ":/y: wrong rank");

  h = fx_create(path("rows.h5"));
  hsize_t short_dims[2] = {N - 1, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, short_dims, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  printf("%s|%s\n", path("rows.h5"), ":/y");

  memcpy(t, T, sizeof t);
  t[3] = NAN;
  series("nan_t.h5", t, Y, ":/t");
  memcpy(t, T, sizeof t);
  t[4] = t[3];
  series("repeated_t.h5", t, Y, ":/t");
  memcpy(y, Y, sizeof y);
  y[7] = INFINITY;
  series("inf_y.h5", T, y, ":/y");
  memcpy(y, Y, sizeof y);
  for (int k = 0; k < N; k++) y[2 * k + 1] = NAN;
  series("nan_column.h5", T, y, ":/y");

  h = fx_create(path("names.h5"));
  fx_series(h, NULL, N, 2, T, Y);
  const char *wrong[2] = {"x", "prey"};
  fx_names(h, "/y", 2, wrong, 0);
  H5Fclose(h);
  printf("%s|%s\n", path("names.h5"), "prey");

  /* Said in words: "is empty (expected the name of state)" and "has 1 names" before. */
  h = fx_create(path("empty_name.h5"));
  fx_series(h, NULL, N, 2, T, Y);
  const char *blank[2] = {"x", ""};
  fx_names(h, "/y", 2, blank, 0);
  H5Fclose(h);
  printf("%s|%s\n", path("empty_name.h5"),
         ":/y: state_names[1] is empty (expected the name of a state)");

  h = fx_create(path("one_name.h5"));
  fx_series(h, NULL, N, 2, T, Y);
  fx_names(h, "/y", 1, NAMES, 0);
  H5Fclose(h);
  printf("%s|%s\n", path("one_name.h5"),
         ":/y: attribute state_names has 1 name (expected 2, one per column)");

  h = fx_create(path("huge.h5"));
  hsize_t huge[2] = {(hsize_t)1 << 40, 2}, chunk[2] = {1024, 2};
  hid_t sp = H5Screate_simple(2, huge, NULL), pl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(pl, 2, chunk);
  H5Dclose(H5Dcreate2(h, "y", H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT));
  H5Sclose(sp);
  H5Pclose(pl);
  pl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(pl, 1, chunk);
  sp = H5Screate_simple(1, huge, NULL);
  H5Dclose(H5Dcreate2(h, "t", H5T_IEEE_F64LE, sp, H5P_DEFAULT, pl, H5P_DEFAULT));
  H5Sclose(sp);
  H5Pclose(pl);
  H5Fclose(h);
  printf("%s|%s\n", path("huge.h5"), "too large");
  return 0;
}
