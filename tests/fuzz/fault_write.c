/* The writer's fault-test driver: writes a result file of about 300 KB (datasets, strings,
 * attributes, a series with inputs and constants) to OUT through nde_writer, as nde fit would.
 *   fault_write OUT     exit 0 when written; otherwise one line "fault_write: error: MESSAGE" on
 *                       stderr and exit 4 (NDE_ERR_IO), 2 (NDE_ERR_DATA) or 1 (anything else). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#include "nde/data.h"

static int finish(nde_status st, const char *msg) {
  if (st == NDE_OK) return 0;
  fprintf(stderr, "fault_write: error: %s\n", msg);
  return st == NDE_ERR_IO ? 4 : st == NDE_ERR_DATA ? 2 : 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fault_write OUT.h5\n");
    return 1;
  }
  nde_error e;
  nde_writer *w = NULL;
  nde_status st = nde_writer_create(argv[1], &w, &e);
  if (st) return finish(st, e.msg);
  if (H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) != 1)
    return finish(NDE_ERR_INTERNAL, "expected the writer's one open file");
  enum { NT = 4096, NS = 5 };
  static double theta[NT], t[NS], y[NS * 2], ut[NS + 1], u[NS + 1];
  for (size_t i = 0; i < NT; i++) theta[i] = 0.001 * (double)i - 1.0 / 3.0;
  for (size_t i = 0; i < NS; i++) {
    t[i] = 0.25 * (double)i;
    y[2 * i] = 1.0 + t[i];
    y[2 * i + 1] = 2.0 - t[i];
  }
  for (size_t i = 0; i <= NS; i++) {
    ut[i] = 0.25 * (double)i - 0.125;
    u[i] = 20.0 + (double)i;
  }
  size_t n = NT, dims[2] = {64, NT};
  double *big = calloc(64 * NT, sizeof *big);
  if (!big) return 1;
  for (size_t i = 0; i < 64 * NT; i++) big[i] = (double)(i % 977) * 0.5;
  const char *names[2] = {"x", "y"}, *in[1] = {"Tamb"}, *cn[1] = {"k"};
  const double cv[1] = {0.0385};
  nde_series s = {NS, 2, t, y, names, NULL};
  nde_series_extra x = {0};
  x.m = 1;
  x.n_u = NS + 1;
  x.u_t = ut;
  x.u = u;
  x.input_names = in;
  x.n_consts = 1;
  x.const_names = cn;
  x.consts = cv;
  if (!st) st = nde_writer_put_doubles(w, "/params/theta", 1, &n, theta);
  if (!st) st = nde_writer_put_doubles(w, "/fit/curves", 2, dims, big);
  if (!st) st = nde_writer_put_string(w, "/model/source", "state x, y\ndx/dt = -x\ndy/dt = x\n");
  if (!st) st = nde_writer_set_attr_string(w, "/", "command_line", "nde fit m.nde d.h5");
  if (!st) st = nde_writer_put_series_ex(w, "/data", &s, &x);
  if (!st) st = nde_writer_commit(w);
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", nde_writer_errmsg(w));
  nde_writer_destroy(&w);
  free(big);
  /* Whatever failed, no HDF5 object may stay open (HDF5 would flush it at exit). */
  ssize_t open_ids = H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL);
  if (open_ids != 0) {
    fprintf(stderr, "fault_write: error: %zd HDF5 objects left open\n", open_ids);
    return 1;
  }
  return finish(st, msg);
}
