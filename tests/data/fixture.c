/* Fixtures for the data tests: see fixture.h. */
#include "fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *fx_dir_create(void) {
  const char *base = getenv("TMPDIR");
  if (!base || !base[0]) base = "/tmp";
  char *dir = malloc(strlen(base) + 32);
  if (!dir) return NULL;
  sprintf(dir, "%s/nde-data-XXXXXX", base);
  if (!mkdtemp(dir)) {
    free(dir);
    return NULL;
  }
  return dir;
}

void fx_dir_remove(char *dir) {
  if (!dir) return;
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
  }
  rmdir(dir);
  free(dir);
}

int fx_dir_count(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

const char *fx_path(const char *dir, const char *name) {
  static char slots[8][4096];
  static int next;
  char *p = slots[next++ % 8];
  snprintf(p, sizeof slots[0], "%s/%s", dir, name);
  return p;
}

hid_t fx_create(const char *path) {
  return H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
}

hid_t fx_dataset(hid_t loc, const char *name, hid_t ftype, int rank, const hsize_t *dims,
                 hid_t mtype, const void *buf) {
  hid_t space = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  if (!buf && rank) {
    /* Chunked storage is allocated lazily: huge shapes cost nothing on disk. */
    hsize_t chunk[H5S_MAX_RANK];
    for (int i = 0; i < rank; i++) chunk[i] = 1;
    H5Pset_chunk(dcpl, rank, chunk);
  }
  hid_t ds = H5Dcreate2(loc, name, ftype, space, lcpl, dcpl, H5P_DEFAULT);
  if (ds >= 0 && buf) H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  H5Pclose(lcpl);
  H5Pclose(dcpl);
  H5Sclose(space);
  return ds;
}

int fx_series(hid_t file, const char *group, size_t n, size_t d, const double *t,
              const double *y) {
  char tp[256], yp[256];
  snprintf(tp, sizeof tp, "%s/t", group ? group : "");
  snprintf(yp, sizeof yp, "%s/y", group ? group : "");
  hsize_t dims[2] = {n, d};
  hid_t a = fx_dataset(file, tp, H5T_IEEE_F64LE, 1, dims, H5T_NATIVE_DOUBLE, t);
  hid_t b = fx_dataset(file, yp, H5T_IEEE_F64LE, 2, dims, H5T_NATIVE_DOUBLE, y);
  int bad = a < 0 || b < 0;
  H5Dclose(a);
  H5Dclose(b);
  return bad ? -1 : 0;
}

void fx_names(hid_t file, const char *ypath, size_t d, const char *const *names, size_t fixed) {
  hid_t obj = H5Oopen(file, ypath, H5P_DEFAULT);
  hid_t type = H5Tcopy(H5T_C_S1);
  hsize_t hd = d;
  hid_t space = H5Screate_simple(1, &hd, NULL);
  if (fixed) {
    H5Tset_size(type, fixed);
    H5Tset_strpad(type, H5T_STR_SPACEPAD);
    char *buf = malloc(d * fixed);
    memset(buf, ' ', d * fixed);
    for (size_t i = 0; i < d; i++) memcpy(buf + i * fixed, names[i], strlen(names[i]));
    hid_t a = H5Acreate2(obj, "state_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, buf);
    H5Aclose(a);
    free(buf);
  } else {
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(obj, "state_names", type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, type, names);
    H5Aclose(a);
  }
  H5Sclose(space);
  H5Tclose(type);
  H5Oclose(obj);
}

void fx_strings_attr(hid_t file, const char *path, const char *name, size_t n,
                     const char *const *strs) {
  hid_t obj = H5Oopen(file, path, H5P_DEFAULT);
  hid_t type = H5Tcopy(H5T_C_S1);
  hsize_t hn = n;
  hid_t space = H5Screate_simple(1, &hn, NULL);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, type, strs);
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(type);
  H5Oclose(obj);
}

void fx_attr_double(hid_t obj, const char *name, size_t n, const double *x) {
  hsize_t hn = n;
  hid_t space = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &hn, NULL);
  hid_t a = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, x);
  H5Aclose(a);
  H5Sclose(space);
}

static int saved_fd = -1;
static FILE *capture;

void fx_stderr_begin(void) {
  fflush(stderr);
  capture = tmpfile();
  saved_fd = dup(2);
  dup2(fileno(capture), 2);
}

void fx_stderr_end(char *buf, size_t n) {
  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  saved_fd = -1;
  rewind(capture);
  size_t got = fread(buf, 1, n - 1, capture);
  buf[got] = '\0';
  fclose(capture);
  capture = NULL;
}
