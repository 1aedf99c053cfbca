/* Fuzz target of the result reader (fit.h5, docs/result-format.md): the input bytes are an HDF5
 * file (seeds in tests/fuzz/corpus/result: small results of nde fit, mutated by libFuzzer), written
 * to a new temporary file (as the data target does) and opened with nde_result_open.  A file that
 * opens must be usable: its accessors, a short integration from every fitted series' start, and
 * parameters read by nde_read_params for its own model.  Every call returns a status (no crash, no
 * leak, no HDF5 object left open) and a failure comes with one line. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "nde/nde.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];

static void remove_file(void) {
  if (path[0]) unlink(path);
}

static void check_msg(nde_status st, const nde_error *e) {
  if (st == NDE_OK) return;
  size_t len = strnlen(e->msg, sizeof e->msg);
  if (len == 0 || len == sizeof e->msg || strchr(e->msg, '\n')) abort();
}

/* Everything a command reads from an opened result. */
static void use_result(const nde_result *r) {
  const nde_model *m = nde_result_model(r);
  const int n = nde_model_state_dim(m);
  volatile double s = 0;
  const size_t nt = nde_result_n_theta(r);
  for (size_t i = 0; i < nt; i++) s += nde_result_theta(r)[i] + nde_result_theta_last(r)[i];
  for (int i = 0; i < nde_model_n_params(m); i++) s += nde_result_param(r, i);
  const double *h;
  const size_t nh = nde_result_history(r, &h);
  for (size_t i = 0; i < nh; i++) s += h[i];
  volatile size_t l = strlen(nde_result_message(r)) + strlen(nde_result_warning(r));
  (void)l;
  nde_result_kept k = nde_result_get_kept(r);
  s += k.loss;
  double *Y = calloc((size_t)n * 3 + 1, sizeof *Y);
  for (int q = 0; Y && q < nde_result_n_series(r) && q < 4; q++) {
    nde_result_series se;
    if (nde_result_get_series(r, q, &se) != NDE_OK) abort();
    const double t0 = se.t[0], t1 = se.t[se.n_obs - 1];
    const double times[3] = {t0, t0 + 0.5 * (t1 - t0), t1};
    nde_start st = {.kind = NDE_START_FITTED, .series = q};
    nde_solver_opts so = nde_solver_opts_default();
    so.max_steps = 10000; /* a mutated step must not make a replay take minutes */
    nde_solve_stats ss;
    nde_error e;
    const nde_status rc = nde_result_integrate(r, &st, t1 > t0 ? 3 : 1, times, &so, Y, &ss, &e);
    check_msg(rc, &e);
  }
  free(Y);
  (void)s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int registered;
  if (!registered) {
    registered = 1;
    atexit(remove_file);
    nde_data_hdf5_errors_off();
  }
  remove_file();
  struct stat sb;
  const char *base = getenv("TMPDIR");
  if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
    base = "/dev/shm";
  if (!base || !base[0]) base = "/tmp";
  snprintf(path, sizeof path, "%s/nde-fuzz-result-XXXXXX", base);
  int fd = mkstemp(path);
  if (fd < 0) abort();
  if (size && write(fd, data, size) != (ssize_t)size) abort();
  close(fd);

  nde_result *r = NULL;
  nde_error e;
  nde_status st = nde_result_open(path, &r, &e);
  check_msg(st, &e);
  if (st == NDE_OK) {
    use_result(r);
    const nde_model *m = nde_result_model(r);
    const size_t n = nde_model_n_theta_full(m, nde_result_n_series(r));
    double *theta = calloc(n + 1, sizeof *theta);
    if (theta) {
      st = nde_read_params(path, m, nde_result_n_series(r), theta, &e);
      check_msg(st, &e);
    }
    free(theta);
    nde_result_destroy(&r);
  }
  if (H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) abort();
  return 0;
}
