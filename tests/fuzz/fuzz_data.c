/* Fuzz target of the data reader: the input bytes are an HDF5 file (seeds in
 * tests/fuzz/corpus/data, mutated by libFuzzer), written to a temporary file (in /dev/shm when
 * there is one: HDF5 1.10 cannot open a memfd through /proc/self/fd, it resolves the name) and read
 * through the reader entry points: nde_data_open in inspection mode and the generic reader's
 * walk, strings and attributes for every input; then, chosen by the input's size (HDF5 opening a
 * file costs most of the time), nde_data_open mapped onto states x, y, or mapped with an input and
 * a constant, or with a group selector followed by nde_read_theta_expect.  Every call must return a status (never crash,
 * never leak, never leave an HDF5 object open), and a failure must come with a one-line message.
 * Each input gets a new file (a new inode): HDF5 1.10.8 leaks its state of a file it failed to
 * open, and a later open of the same inode could meet that state instead of the new bytes. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "nde/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096], selected[4200];

static void remove_file(void) {
  if (path[0]) unlink(path);
}

static void check_msg(nde_status st, const nde_error *e) {
  if (st == NDE_OK) return;
  /* One line, non-empty, terminated. */
  size_t len = strnlen(e->msg, sizeof e->msg);
  if (len == 0 || len == sizeof e->msg || strchr(e->msg, '\n')) abort();
}

static int count_obj(void *ctx, const nde_h5_object *o) {
  ++*(size_t *)ctx;
  volatile size_t l = strlen(o->path) + strlen(o->type);
  (void)l;
  return *(size_t *)ctx > 100000;
}

static void use_data(nde_data *d) {
  for (size_t k = 0; k < nde_data_n_traj(d); k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    volatile double s = 0;
    for (size_t i = 0; i < tr->n * nde_data_n_state(d); i++) s += tr->y[i];
    for (size_t i = 0; i < tr->n_u * tr->n_inputs; i++) s += tr->u[i];
    for (size_t i = 0; i < tr->n_consts; i++) s += tr->consts[i];
    (void)s;
  }
  nde_data_destroy(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(remove_file);
    nde_data_hdf5_errors_off(); /* as the nde command does: no HDF5 noise at exit */
  }
  remove_file();
  struct stat sb;
  const char *base = getenv("TMPDIR");
  if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
    base = "/dev/shm";
  if (!base || !base[0]) base = "/tmp";
  snprintf(path, sizeof path, "%s/nde-fuzz-data-XXXXXX", base);
  int fd = mkstemp(path);
  if (fd < 0) abort();
  if (size && write(fd, data, size) != (ssize_t)size) abort();
  close(fd);
  snprintf(selected, sizeof selected, "%s:/run1", path);

  nde_data_opts o = nde_data_opts_default();
  o.max_bytes = (size_t)64 << 20;
  nde_data *d = NULL;
  nde_error e;
  nde_status st = nde_data_open(path, 0, NULL, &o, &d, &e);
  check_msg(st, &e);
  if (st == NDE_OK) use_data(d);

  static const char *const states[2] = {"x", "y"}, *inputs[1] = {"u"}, *consts[1] = {"k"};
  double theta[4];
  switch (size % 3) {
    case 0:
      st = nde_data_open(path, 2, states, &o, &d, &e);
      break;
    case 1:
      o.n_inputs = 1;
      o.input_names = inputs;
      o.n_consts = 1;
      o.const_names = consts;
      st = nde_data_open(path, 2, states, &o, &d, &e);
      break;
    default:
      st = nde_data_open(selected, 0, NULL, &o, &d, &e);
      check_msg(st, &e);
      if (st == NDE_OK) use_data(d);
      st = nde_read_theta_expect(path, 4, theta, &e);
      d = NULL;
      break;
  }
  check_msg(st, &e);
  if (st == NDE_OK && d) use_data(d);

  nde_reader *r = NULL;
  st = nde_reader_open(path, &r, &e);
  check_msg(st, &e);
  if (st == NDE_OK) {
    size_t n = 0;
    nde_reader_visit(r, count_obj, &n);
    char *text = NULL, **strs = NULL;
    if (nde_reader_get_string(r, "/model/source", &text) == NDE_OK) free(text);
    if (nde_reader_get_strings(r, "/params/names", &n, &strs) == NDE_OK) free(strs);
    if (nde_reader_get_attr_string(r, "/", "command_line", &text) == NDE_OK) free(text);
    double x;
    int64_t i64;
    nde_reader_get_attr_double(r, "/y", "noise_std", &x);
    nde_reader_get_attr_int64(r, "/", "seed", &i64);
    int rank;
    size_t dims[NDE_DATA_MAX_RANK];
    nde_reader_shape(r, "/y", &rank, dims);
    if (strlen(nde_reader_errmsg(r)) == 0) abort();
    nde_reader_destroy(&r);
  }
  /* Every file, group, dataset and attribute nde opened is closed again. */
  if (H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort();
  return 0;
}
