/* A tiny HDF5 reader for the shell tests (so that they need no hdf5-tools):
 *   h5tool get FILE DATASET        the values, one per line, as %.17g
 *   h5tool attr FILE OBJECT NAME   a scalar attribute (string or number)
 *   h5tool has FILE PATH           exit 0 if the object exists, 1 if not
 *   h5tool noise FILE              the noise_std recorded in a data file, one per state */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/data.h"

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "noise")) {
    nde_data_error e;
    nde_data *d = NULL;
    nde_data_opts o = nde_data_opts_default();
    if (nde_data_open(argv[2], 0, NULL, &o, &d, &e) != NDE_OK) {
      fprintf(stderr, "h5tool: %s\n", e.msg);
      return 2;
    }
    const nde_traj *tr = nde_data_traj(d, 0);
    for (size_t j = 0; j < nde_data_n_state(d); j++)
      printf("%.17g\n", tr->noise_std ? tr->noise_std[j] : 0.0);
    nde_data_destroy(&d);
    return 0;
  }
  if (argc < 4) {
    fprintf(stderr, "usage: h5tool get|attr|has FILE PATH [NAME]\n");
    return 2;
  }
  nde_data_error err;
  nde_reader *r = NULL;
  if (nde_reader_open(argv[2], &r, &err) != NDE_OK) {
    fprintf(stderr, "h5tool: %s\n", err.msg);
    return 2;
  }
  int rc = 0;
  if (!strcmp(argv[1], "has")) {
    rc = nde_reader_kind(r, argv[3]) == NDE_H5_NONE;
  } else if (!strcmp(argv[1], "get")) {
    int rank;
    size_t dims[NDE_DATA_MAX_RANK], n = 1;
    if (nde_reader_shape(r, argv[3], &rank, dims) != NDE_OK) {
      fprintf(stderr, "h5tool: %s\n", nde_reader_errmsg(r));
      rc = 2;
    } else {
      for (int i = 0; i < rank; i++) n *= dims[i];
      double *x = calloc(n + 1, sizeof *x);
      if (!x || nde_reader_get_doubles(r, argv[3], n, x) != NDE_OK) {
        fprintf(stderr, "h5tool: %s\n", nde_reader_errmsg(r));
        rc = 2;
      } else {
        for (size_t i = 0; i < n; i++) printf("%.17g\n", x[i]);
      }
      free(x);
    }
  } else if (!strcmp(argv[1], "attr") && argc >= 5) {
    char *s = NULL;
    double d;
    if (nde_reader_get_attr_string(r, argv[3], argv[4], &s) == NDE_OK) {
      printf("%s\n", s);
      free(s);
    } else if (nde_reader_get_attr_double(r, argv[3], argv[4], &d) == NDE_OK) {
      printf("%.17g\n", d);
    } else {
      fprintf(stderr, "h5tool: no attribute %s on %s\n", argv[4], argv[3]);
      rc = 2;
    }
  } else {
    fprintf(stderr, "h5tool: unknown command %s\n", argv[1]);
    rc = 2;
  }
  nde_reader_destroy(&r);
  return rc;
}
