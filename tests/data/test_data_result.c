/* Result files: the generic writer and reader (datasets of any rank, exact uint64, strings,
 * attributes in groups), /params/theta from a file made by another tool, the walk used by
 * `nde inspect`, and atomic replacement: a failed or abandoned write leaves the previous file
 * intact and no temporary file behind. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "nde/data.h"

static char *dir;

static int setup(void **state) {
  (void)state;
  dir = fx_dir_create();
  return dir ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  fx_dir_remove(dir);
  dir = NULL;
  return 0;
}

static const double THETA[5] = {1.3, -0.9172, 0.8125, 1.8, 2.385e-3};
static const char *SOURCE = "state x, y\nparam alpha = 1.3\ndx/dt = alpha * x\ndy/dt = -y\n";

static void write_result(const char *path, double first) {
  nde_writer *w = NULL;
  nde_error e;
  assert_int_equal(nde_writer_create(path, &w, &e), NDE_OK);
  double theta[5];
  memcpy(theta, THETA, sizeof theta);
  theta[0] = first;
  size_t n = 5, dims3[3] = {2, 3, 4};
  double cube[24];
  for (int i = 0; i < 24; i++) cube[i] = 0.125 * i - 1.0 / 3.0;
  const uint64_t rng[4] = {0xdeadbeefcafebabeULL, 0xffffffffffffffffULL, 1, 0x8000000000000000ULL};
  const int64_t iters[2] = {-7, 5000};
  const char *names[3] = {"alpha", "U.W1", "U.b1"};
  double loss = 2.5e-4;
  size_t four = 4, two = 2;
  assert_int_equal(nde_writer_put_doubles(w, "/params/theta", 1, &n, theta), NDE_OK);
  assert_int_equal(nde_writer_put_doubles(w, "/fit/cube", 3, dims3, cube), NDE_OK);
  assert_int_equal(nde_writer_put_doubles(w, "/fit/final_loss", 0, NULL, &loss), NDE_OK);
  assert_int_equal(nde_writer_put_uint64s(w, "/resume/rng", 1, &four, rng), NDE_OK);
  assert_int_equal(nde_writer_put_int64s(w, "/resume/iters", 1, &two, iters), NDE_OK);
  assert_int_equal(nde_writer_put_string(w, "/model/source", SOURCE), NDE_OK);
  assert_int_equal(nde_writer_put_strings(w, "/params/names", 3, names), NDE_OK);
  assert_int_equal(nde_writer_set_attr_string(w, "/provenance", "command_line",
                                              "nde fit lv.nde lv.h5 -o fit.h5"),
                   NDE_OK);
  assert_int_equal(nde_writer_set_attr_double(w, "/fit/cube", "tolerance", 1e-7), NDE_OK);
  assert_int_equal(nde_writer_set_attr_int64(w, "/", "seed", -42), NDE_OK);
  assert_int_equal(nde_writer_set_attr_int64(w, "/", "seed", 20240611), NDE_OK); /* replaced */
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
}

static void a_result_file_round_trips_every_kind_of_value(void **state) {
  (void)state;
  const char *path = fx_path(dir, "fit.h5");
  write_result(path, THETA[0]);
  assert_int_equal(fx_dir_count(dir), 1);
  nde_reader *r = NULL;
  nde_error e;
  assert_int_equal(nde_reader_open(path, &r, &e), NDE_OK);
  assert_string_equal(nde_reader_file(r), path);
  assert_int_equal(nde_reader_kind(r, "/params"), NDE_H5_GROUP);
  assert_int_equal(nde_reader_kind(r, "/params/theta"), NDE_H5_DATASET);
  assert_int_equal(nde_reader_kind(r, "/nope/theta"), NDE_H5_NONE);
  int rank = -1;
  size_t dims[NDE_DATA_MAX_RANK];
  assert_int_equal(nde_reader_shape(r, "/fit/cube", &rank, dims), NDE_OK);
  assert_int_equal(rank, 3);
  assert_int_equal(dims[0], 2);
  assert_int_equal(dims[2], 4);
  double cube[24], loss = 0;
  assert_int_equal(nde_reader_get_doubles(r, "/fit/cube", 24, cube), NDE_OK);
  assert_true(cube[23] == 0.125 * 23 - 1.0 / 3.0);
  assert_int_equal(nde_reader_shape(r, "/fit/final_loss", &rank, dims), NDE_OK);
  assert_int_equal(rank, 0);
  assert_int_equal(nde_reader_get_doubles(r, "/fit/final_loss", 1, &loss), NDE_OK);
  assert_true(loss == 2.5e-4);
  uint64_t rng[4];
  assert_int_equal(nde_reader_get_uint64s(r, "/resume/rng", 4, rng), NDE_OK);
  assert_true(rng[0] == 0xdeadbeefcafebabeULL && rng[1] == UINT64_MAX && rng[3] == 1ULL << 63);
  int64_t iters[2];
  assert_int_equal(nde_reader_get_int64s(r, "/resume/iters", 2, iters), NDE_OK);
  assert_true(iters[0] == -7 && iters[1] == 5000);
  char *text = NULL;
  assert_int_equal(nde_reader_get_string(r, "/model/source", &text), NDE_OK);
  assert_string_equal(text, SOURCE);
  free(text);
  size_t n = 0;
  char **names = NULL;
  assert_int_equal(nde_reader_get_strings(r, "/params/names", &n, &names), NDE_OK);
  assert_int_equal(n, 3);
  assert_string_equal(names[1], "U.W1");
  free(names);
  assert_int_equal(nde_reader_has_attr(r, "/provenance", "command_line"), 1);
  assert_int_equal(nde_reader_has_attr(r, "/provenance", "seed"), 0);
  assert_int_equal(nde_reader_has_attr(r, "/missing", "seed"), 0);
  assert_int_equal(nde_reader_get_attr_string(r, "/provenance", "command_line", &text), NDE_OK);
  assert_string_equal(text, "nde fit lv.nde lv.h5 -o fit.h5");
  free(text);
  double tol = 0;
  int64_t seed = 0;
  assert_int_equal(nde_reader_get_attr_double(r, "/fit/cube", "tolerance", &tol), NDE_OK);
  assert_true(tol == 1e-7);
  assert_int_equal(nde_reader_get_attr_int64(r, "/", "seed", &seed), NDE_OK);
  assert_true(seed == 20240611);
  nde_reader_destroy(&r);
  assert_null(r);
}

static void reader_errors_name_the_dataset_and_the_mismatch(void **state) {
  (void)state;
  const char *path = fx_path(dir, "fit.h5");
  write_result(path, THETA[0]);
  nde_reader *r = NULL;
  assert_int_equal(nde_reader_open(path, &r, NULL), NDE_OK);
  double x[6];
  assert_int_equal(nde_reader_get_doubles(r, "/params/theta", 6, x), NDE_ERR_DATA);
  assert_non_null(strstr(nde_reader_errmsg(r), "fit.h5:/params/theta: wrong size (expected 6 "
                                               "values, got 5)"));
  assert_int_equal(nde_reader_get_doubles(r, "/model/source", 1, x), NDE_ERR_DATA);
  assert_non_null(strstr(nde_reader_errmsg(r), ":/model/source: wrong type"));
  assert_non_null(strstr(nde_reader_errmsg(r), "got string"));
  int64_t i64[5];
  assert_int_equal(nde_reader_get_int64s(r, "/params/theta", 5, i64), NDE_ERR_DATA);
  assert_non_null(strstr(nde_reader_errmsg(r), "expected integers, got float64"));
  assert_int_equal(nde_reader_get_doubles(r, "/params", 1, x), NDE_ERR_DATA);
  assert_non_null(strstr(nde_reader_errmsg(r), ":/params: not a dataset"));
  char *s = NULL;
  assert_int_equal(nde_reader_get_attr_string(r, "/", "nothing", &s), NDE_ERR_DATA);
  assert_non_null(strstr(nde_reader_errmsg(r), ":/: no attribute nothing"));
  assert_null(s);
  nde_reader_destroy(&r);
}

static void theta_is_read_from_a_file_made_by_another_tool(void **state) {
  (void)state;
  /* float32, no other content, as numpy/h5py might write it. */
  const char *path = fx_path(dir, "init.h5");
  hid_t h = fx_create(path);
  float th[5];
  for (int i = 0; i < 5; i++) th[i] = (float)THETA[i];
  hsize_t n = 5;
  H5Dclose(fx_dataset(h, "/params/theta", H5T_IEEE_F32LE, 1, &n, H5T_NATIVE_FLOAT, th));
  H5Fclose(h);
  size_t len = 0;
  double *theta = NULL;
  nde_error e;
  assert_int_equal(nde_read_theta(path, &len, &theta, &e), NDE_OK);
  assert_int_equal(len, 5);
  for (int i = 0; i < 5; i++) assert_true(theta[i] == (double)th[i]);
  free(theta);

  /* And from nde's own result file. */
  write_result(fx_path(dir, "fit.h5"), -2.75);
  assert_int_equal(nde_read_theta(fx_path(dir, "fit.h5"), &len, &theta, &e), NDE_OK);
  assert_true(theta[0] == -2.75 && theta[4] == THETA[4]);
  free(theta);
}

static void theta_errors_name_the_file_and_index(void **state) {
  (void)state;
  size_t len = 99;
  double *theta = (double *)1;
  nde_error e;
  const char *none = fx_path(dir, "none.h5");
  H5Fclose(fx_create(none));
  assert_int_equal(nde_read_theta(none, &len, &theta, &e), NDE_ERR_DATA);
  assert_non_null(strstr(e.msg, "none.h5:/params/theta: no such dataset"));
  assert_null(theta);
  assert_int_equal(len, 0);

  const char *bad = fx_path(dir, "bad.h5");
  hid_t h = fx_create(bad);
  double th[4] = {0.5, 1.5, NAN, 2.5};
  hsize_t n = 4;
  H5Dclose(fx_dataset(h, "/params/theta", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, th));
  H5Fclose(h);
  assert_int_equal(nde_read_theta(bad, &len, &theta, &e), NDE_ERR_DATA);
  assert_non_null(strstr(e.msg, "bad.h5:/params/theta: non-finite parameter at index 2"));

  assert_int_equal(nde_read_theta(fx_path(dir, "absent.h5"), &len, &theta, &e), NDE_ERR_IO);
  assert_non_null(strstr(e.msg, "absent.h5: cannot open"));
}

typedef struct seen {
  char lines[16][128];
  int n;
} seen;

static int record(void *ctx, const nde_h5_object *o) {
  seen *s = ctx;
  if (s->n < 16)
    snprintf(s->lines[s->n++], sizeof s->lines[0], "%s %d %s %d %zu %d", o->path, (int)o->kind,
             o->type, o->rank, o->rank ? o->dims[0] : 0, o->n_attrs);
  return 0;
}

static void the_walk_lists_every_object_in_name_order(void **state) {
  (void)state;
  const char *path = fx_path(dir, "fit.h5");
  write_result(path, THETA[0]);
  nde_reader *r = NULL;
  assert_int_equal(nde_reader_open(path, &r, NULL), NDE_OK);
  seen s = {.n = 0};
  assert_int_equal(nde_reader_visit(r, record, &s), NDE_OK);
  nde_reader_destroy(&r);
  const char *want[] = {"/fit 1  0 0 0",
                        "/fit/cube 2 float64 3 2 1",
                        "/fit/final_loss 2 float64 0 0 0",
                        "/model 1  0 0 0",
                        "/model/source 2 string 0 0 0",
                        "/params 1  0 0 0",
                        "/params/names 2 string 1 3 0",
                        "/params/theta 2 float64 1 5 0",
                        "/provenance 1  0 0 1",
                        "/resume 1  0 0 0",
                        "/resume/iters 2 int64 1 2 0",
                        "/resume/rng 2 uint64 1 4 0"};
  assert_int_equal(s.n, 12);
  for (int i = 0; i < 12; i++) assert_string_equal(s.lines[i], want[i]);
}

static void read_theta0(const char *path, double *first) {
  size_t n;
  double *theta = NULL;
  nde_error e;
  assert_int_equal(nde_read_theta(path, &n, &theta, &e), NDE_OK);
  *first = theta[0];
  free(theta);
}

static void a_failed_write_leaves_the_previous_file_and_no_temporary(void **state) {
  (void)state;
  const char *path = fx_path(dir, "ckpt.h5");
  write_result(path, 0.615);
  struct stat before;
  assert_int_equal(stat(path, &before), 0);

  /* Half written, then a call fails: the writer is failed from then on. */
  nde_writer *w = NULL;
  nde_error e;
  assert_int_equal(nde_writer_create(path, &w, &e), NDE_OK);
  assert_int_equal(fx_dir_count(dir), 2); /* the target and the temporary file */
  size_t n = 5;
  double theta[5] = {9, 9, 9, 9, 9};
  assert_int_equal(nde_writer_put_doubles(w, "/params/theta", 1, &n, theta), NDE_OK);
  assert_int_equal(nde_writer_put_doubles(w, "/params/theta", 1, &n, theta), NDE_ERR_ARG);
  assert_non_null(strstr(nde_writer_errmsg(w), "ckpt.h5:/params/theta: already exists"));
  assert_int_equal(nde_writer_put_string(w, "/model/source", SOURCE), NDE_ERR_ARG);
  assert_int_equal(nde_writer_commit(w), NDE_ERR_ARG);
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 1);
  double first = 0;
  read_theta0(path, &first);
  assert_true(first == 0.615);

  /* Abandoned without commit (as when the process is stopped between calls). */
  assert_int_equal(nde_writer_create(path, &w, &e), NDE_OK);
  assert_int_equal(nde_writer_put_doubles(w, "/params/theta", 1, &n, theta), NDE_OK);
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 1);
  read_theta0(path, &first);
  assert_true(first == 0.615);

  /* A successful commit replaces it. */
  write_result(path, -1.125);
  read_theta0(path, &first);
  assert_true(first == -1.125);
  assert_int_equal(fx_dir_count(dir), 1);
}

static void a_commit_that_cannot_rename_removes_its_temporary(void **state) {
  (void)state;
  const char *path = fx_path(dir, "target");
  nde_writer *w = NULL;
  nde_error e;
  assert_int_equal(nde_writer_create(path, &w, &e), NDE_OK);
  /* Someone makes the target a non-empty directory before the commit. */
  assert_int_equal(mkdir(path, 0700), 0);
  FILE *f = fopen(fx_path(path, "keep"), "w");
  fclose(f);
  double x = 3.25;
  assert_int_equal(nde_writer_put_doubles(w, "/x", 0, NULL, &x), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_ERR_IO);
  assert_non_null(strstr(nde_writer_errmsg(w), "target: cannot replace with the written file"));
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 1);
  assert_int_equal(fx_dir_count(path), 1);
  remove(fx_path(path, "keep"));
  rmdir(path);
}

static void a_writer_into_a_missing_directory_is_an_io_error(void **state) {
  (void)state;
  const char *path = fx_path(dir, "no/such/dir/out.h5");
  nde_writer *w = (nde_writer *)1;
  nde_error e;
  assert_int_equal(nde_writer_create(path, &w, &e), NDE_ERR_IO);
  assert_null(w);
  assert_non_null(strstr(e.msg, "out.h5: cannot write (directory"));
  assert_non_null(strstr(e.msg, "does not exist"));
  assert_int_equal(fx_dir_count(dir), 0);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T_(a_result_file_round_trips_every_kind_of_value),
      T_(reader_errors_name_the_dataset_and_the_mismatch),
      T_(theta_is_read_from_a_file_made_by_another_tool),
      T_(theta_errors_name_the_file_and_index),
      T_(the_walk_lists_every_object_in_name_order),
      T_(a_failed_write_leaves_the_previous_file_and_no_temporary),
      T_(a_commit_that_cannot_rename_removes_its_temporary),
      T_(a_writer_into_a_missing_directory_is_an_io_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
