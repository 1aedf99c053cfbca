/* Helper of the command-line tests: overwrites the values of a float64 dataset in place, to make
 * a result that no fit gives (ensemble members unlike the kept fit, say).
 *   h5set FILE.h5 DATASET V1 V2 ...   as many values as the dataset holds, row-major */
#include <stdio.h>
#include <stdlib.h>

#include <hdf5.h>

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: h5set FILE.h5 DATASET V1 V2 ...\n");
    return 2;
  }
  const hid_t f = H5Fopen(argv[1], H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = f < 0 ? -1 : H5Dopen2(f, argv[2], H5P_DEFAULT);
  const hid_t sp = d < 0 ? -1 : H5Dget_space(d);
  const hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
  int rc = 2;
  if (n != argc - 3) {
    fprintf(stderr, "h5set: %s:%s holds %lld values, %d given\n", argv[1], argv[2],
            (long long)n, argc - 3);
  } else {
    double *x = malloc((size_t)n * sizeof *x);
    for (hssize_t i = 0; x && i < n; i++) x[i] = strtod(argv[3 + i], NULL);
    if (x && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0) rc = 0;
    else fprintf(stderr, "h5set: cannot write %s:%s\n", argv[1], argv[2]);
    free(x);
  }
  if (sp >= 0) H5Sclose(sp);
  if (d >= 0) H5Dclose(d);
  if (f >= 0 && H5Fclose(f) < 0) rc = 2;
  return rc;
}
