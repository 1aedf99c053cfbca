/* Every class of bad data file, each with its status and the message that names the file, the
 * dataset and the first bad index (docs/data-format.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#define N 6
static const double T[N] = {0.0, 0.2, 0.45, 0.7, 1.1, 1.6};
static const double Y[N * 2] = {1.3, -0.27, 1.41, -0.19, 1.56, 0.02,
                                1.72, 0.31, 1.95, 0.64, 2.21, 1.07};
static const char *const STATES[2] = {"x", "y"};
static const char *const NAMES[2] = {"x", "y"};

/* Open path with the states x, y, expect status, and require every needle in the message. */
static void expect_fail(const char *path, nde_status want, const char *const *needles) {
  nde_data *d = NULL;
  nde_error e;
  nde_status st = nde_data_open(path, 2, STATES, NULL, &d, &e);
  if (getenv("NDE_TEST_SHOW")) fprintf(stderr, "%s\n", e.msg);
  if (st != want) print_error("status %s, message: %s\n", nde_status_str(st), e.msg);
  assert_int_equal(st, want);
  assert_int_equal(e.status, want);
  assert_null(d);
  for (; *needles; needles++) {
    if (!strstr(e.msg, *needles)) print_error("message \"%s\" lacks \"%s\"\n", e.msg, *needles);
    assert_non_null(strstr(e.msg, *needles));
  }
}

#define EXPECT(path, status, ...)                      \
  do {                                                 \
    const char *needles_[] = {__VA_ARGS__, NULL};      \
    expect_fail((path), (status), needles_);           \
  } while (0)

/* A good file, then a change made by the caller before close. */
static hid_t good(const char *name, const double *t, const double *y) {
  hid_t h = fx_create(fx_path(dir, name));
  assert_int_equal(fx_series(h, NULL, N, 2, t ? t : T, y ? y : Y), 0);
  fx_names(h, "/y", 2, NAMES, 0);
  return h;
}

static void a_missing_file_is_an_io_error_naming_it(void **state) {
  (void)state;
  const char *p = fx_path(dir, "absent.h5");
  EXPECT(p, NDE_ERR_IO, p, "cannot open", "No such file");
}

static void a_text_file_is_not_hdf5(void **state) {
  (void)state;
  const char *p = fx_path(dir, "notes.h5");
  FILE *f = fopen(p, "w");
  fputs("t,x,y\n0,1.3,-0.27\n", f);
  fclose(f);
  EXPECT(p, NDE_ERR_DATA, p, "not an HDF5 file", "18 bytes");
}

static void a_missing_y_dataset_is_named(void **state) {
  (void)state;
  const char *p = fx_path(dir, "noy.h5");
  hid_t h = fx_create(p);
  hsize_t n = N;
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: no such dataset", "expected float64 [N, D] observations");
}

static void a_file_with_neither_series_nor_groups_says_what_is_expected(void **state) {
  (void)state;
  const char *p = fx_path(dir, "empty.h5");
  H5Fclose(fx_create(p));
  EXPECT(p, NDE_ERR_DATA, ":/t: no such dataset", "or groups");
}

static void integer_times_are_the_wrong_type_class(void **state) {
  (void)state;
  const char *p = fx_path(dir, "int_t.h5");
  hid_t h = fx_create(p);
  const long long ti[N] = {0, 1, 2, 3, 4, 5};
  hsize_t dims[2] = {N, 2};
  H5Dclose(fx_dataset(h, "t", H5T_STD_I64LE, 1, dims, H5T_NATIVE_LLONG, ti));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dims, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/t: wrong type", "expected float64 or float32", "got int64");
}

static void string_observations_are_the_wrong_type_class(void **state) {
  (void)state;
  const char *p = fx_path(dir, "str_y.h5");
  hid_t h = fx_create(p);
  hsize_t dims[2] = {N, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, dims, H5T_NATIVE_DOUBLE, T));
  hid_t st = H5Tcopy(H5T_C_S1);
  H5Tset_size(st, 4);
  char buf[N * 2 * 4];
  memset(buf, 'a', sizeof buf);
  H5Dclose(fx_dataset(h, "y", st, 2, dims, st, buf));
  H5Tclose(st);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: wrong type", "got string");
}

static void a_one_dimensional_y_is_the_wrong_rank(void **state) {
  (void)state;
  const char *p = fx_path(dir, "rank.h5");
  hid_t h = fx_create(p);
  hsize_t n = N;
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: wrong rank", "expected rank 2", "got rank 1 [6]");
}

static void times_of_rank_two_are_the_wrong_rank(void **state) {
  (void)state;
  const char *p = fx_path(dir, "rank_t.h5");
  hid_t h = fx_create(p);
  hsize_t dims[2] = {N, 1}, dy[2] = {N, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 2, dims, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/t: wrong rank", "got rank 2 [6, 1]");
}

static void rows_of_y_that_disagree_with_t_are_counted(void **state) {
  (void)state;
  const char *p = fx_path(dir, "rows.h5");
  hid_t h = fx_create(p);
  hsize_t nt = N, dy[2] = {N - 1, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &nt, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: row count disagrees with /t", "expected 6 rows", "got 5");
}

static void a_nan_time_gives_its_index(void **state) {
  (void)state;
  double t[N];
  memcpy(t, T, sizeof t);
  t[3] = NAN;
  H5Fclose(good("nan_t.h5", t, NULL));
  EXPECT(fx_path(dir, "nan_t.h5"), NDE_ERR_DATA, ":/t: non-finite time at index 3", "got nan");
}

static void a_repeated_time_gives_its_index_and_both_values(void **state) {
  (void)state;
  double t[N];
  memcpy(t, T, sizeof t);
  t[4] = 0.7;
  H5Fclose(good("dup_t.h5", t, NULL));
  EXPECT(fx_path(dir, "dup_t.h5"), NDE_ERR_DATA, ":/t: times not strictly increasing at index 4",
         "expected t[4] > t[3] = 0.7", "got t[4] = 0.7)");
}

static void an_infinite_observation_gives_row_and_column(void **state) {
  (void)state;
  double y[N * 2];
  memcpy(y, Y, sizeof y);
  y[2 * 4 + 1] = -INFINITY;
  H5Fclose(good("inf_y.h5", NULL, y));
  EXPECT(fx_path(dir, "inf_y.h5"), NDE_ERR_DATA, ":/y: infinite value at row 4, column 1 (\"y\")",
         "got -inf");
}

static void a_column_of_nan_is_refused(void **state) {
  (void)state;
  double y[N * 2];
  memcpy(y, Y, sizeof y);
  for (size_t i = 0; i < N; i++) y[i * 2] = NAN;
  H5Fclose(good("nan_col.h5", NULL, y));
  EXPECT(fx_path(dir, "nan_col.h5"), NDE_ERR_DATA, ":/y: column 0 (\"x\") is all NaN",
         "got 6 NaN of 6");
}

static void a_name_that_matches_no_state_lists_the_states(void **state) {
  (void)state;
  const char *p = fx_path(dir, "names.h5");
  hid_t h = fx_create(p);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  const char *nm[2] = {"x", "prey"};
  fx_names(h, "/y", 2, nm, 0);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: state_names[1] = \"prey\" matches no state",
         "expected one of x, y");
}

static void a_repeated_name_is_refused(void **state) {
  (void)state;
  const char *p = fx_path(dir, "dupnames.h5");
  hid_t h = fx_create(p);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  const char *nm[2] = {"y", "y"};
  fx_names(h, "/y", 2, nm, 6);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: state_names[1] = \"y\" repeats state_names[0]");
}

static void a_name_count_that_disagrees_with_the_columns_is_refused(void **state) {
  (void)state;
  const char *p = fx_path(dir, "count.h5");
  hid_t h = fx_create(p);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  const char *nm[3] = {"x", "y", "z"};
  fx_names(h, "/y", 3, nm, 0);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: attribute state_names has 3 names", "expected 2");
}

static void numeric_state_names_are_the_wrong_type(void **state) {
  (void)state;
  hid_t h = fx_create(fx_path(dir, "numnames.h5"));
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  hid_t y = H5Dopen2(h, "/y", H5P_DEFAULT);
  const double v[2] = {1, 2};
  fx_attr_double(y, "state_names", 2, v);
  H5Dclose(y);
  H5Fclose(h);
  EXPECT(fx_path(dir, "numnames.h5"), NDE_ERR_DATA, ":/y: attribute state_names",
         "expected strings, got float64");
}

static void unnamed_columns_of_another_count_say_so(void **state) {
  (void)state;
  const char *p = fx_path(dir, "unnamed.h5");
  hid_t h = fx_create(p);
  hsize_t nt = N, dy[2] = {N, 1};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &nt, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/y: no attribute state_names", "expected 2 columns for states x, y",
         "got 1");
}

static void a_huge_dataset_is_refused_before_allocating(void **state) {
  (void)state;
  const char *p = fx_path(dir, "huge.h5");
  hid_t h = fx_create(p);
  hsize_t nt = (hsize_t)1 << 40, dy[2] = {(hsize_t)1 << 40, 2};
  hid_t t = fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &nt, 0, NULL);
  hid_t y = fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, 0, NULL);
  assert_true(t >= 0 && y >= 0);
  H5Dclose(t);
  H5Dclose(y);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/t: too large to load", "got [1099511627776, 1]");
}

static void sizes_whose_product_overflows_are_refused(void **state) {
  (void)state;
  const char *p = fx_path(dir, "overflow.h5");
  hid_t h = fx_create(p);
  hsize_t nt = (hsize_t)1 << 40, dy[2] = {(hsize_t)1 << 40, (hsize_t)1 << 30};
  hid_t t = fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &nt, 0, NULL);
  hid_t y = fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, 0, NULL);
  H5Dclose(t);
  H5Dclose(y);
  H5Fclose(h);
  if (t < 0 || y < 0) skip(); /* this HDF5 refuses such a shape itself */
  nde_data_opts o = nde_data_opts_default();
  o.max_bytes = SIZE_MAX; /* only the overflow check can stop it */
  nde_data *d = NULL;
  nde_error e;
  assert_int_equal(nde_data_open(p, 2, STATES, &o, &d, &e), NDE_ERR_DATA);
  assert_non_null(strstr(e.msg, ":/y: too large to load"));
}

static void a_missing_group_selector_lists_the_groups(void **state) {
  (void)state;
  const char *p = fx_path(dir, "groups.h5");
  hid_t h = fx_create(p);
  assert_int_equal(fx_series(h, "/alpha", N, 2, T, Y), 0);
  assert_int_equal(fx_series(h, "/beta", N, 2, T, Y), 0);
  H5Fclose(h);
  char sel[4200];
  snprintf(sel, sizeof sel, "%s:/gamma", p);
  EXPECT(sel, NDE_ERR_DATA, ":/gamma: no such group", "expected one of /alpha, /beta");
}

static void a_bad_series_inside_a_batch_names_its_group(void **state) {
  (void)state;
  const char *p = fx_path(dir, "batchbad.h5");
  double t[N];
  memcpy(t, T, sizeof t);
  t[2] = 0.1;
  hid_t h = fx_create(p);
  assert_int_equal(fx_series(h, "/r1", N, 2, T, Y), 0);
  assert_int_equal(fx_series(h, "/r2", N, 2, t, Y), 0);
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/r2/t: times not strictly increasing at index 2");
}

static void an_empty_time_grid_is_refused(void **state) {
  (void)state;
  const char *p = fx_path(dir, "zero.h5");
  hid_t h = fx_create(p);
  hsize_t nt = 0, dy[2] = {0, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &nt, H5T_NATIVE_DOUBLE, T));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F64LE, 2, dy, H5T_NATIVE_DOUBLE, Y));
  H5Fclose(h);
  EXPECT(p, NDE_ERR_DATA, ":/t: no observation times", "got 0");
}

static void the_writer_refuses_a_bad_series_with_the_same_message(void **state) {
  (void)state;
  const char *p = fx_path(dir, "out.h5");
  nde_writer *w = NULL;
  nde_error e;
  assert_int_equal(nde_writer_create(p, &w, &e), NDE_OK);
  double y[N * 2];
  memcpy(y, Y, sizeof y);
  y[7] = INFINITY;
  nde_series s = {N, 2, T, y, NAMES, NULL};
  assert_int_equal(nde_writer_put_series(w, "/run", &s), NDE_ERR_DATA);
  assert_non_null(strstr(nde_writer_errmsg(w), "out.h5:/run/y: infinite value at row 3, column 1"));
  assert_int_equal(nde_writer_commit(w), NDE_ERR_DATA);
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 0);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T_(a_missing_file_is_an_io_error_naming_it),
      T_(a_text_file_is_not_hdf5),
      T_(a_missing_y_dataset_is_named),
      T_(a_file_with_neither_series_nor_groups_says_what_is_expected),
      T_(integer_times_are_the_wrong_type_class),
      T_(string_observations_are_the_wrong_type_class),
      T_(a_one_dimensional_y_is_the_wrong_rank),
      T_(times_of_rank_two_are_the_wrong_rank),
      T_(rows_of_y_that_disagree_with_t_are_counted),
      T_(a_nan_time_gives_its_index),
      T_(a_repeated_time_gives_its_index_and_both_values),
      T_(an_infinite_observation_gives_row_and_column),
      T_(a_column_of_nan_is_refused),
      T_(a_name_that_matches_no_state_lists_the_states),
      T_(a_repeated_name_is_refused),
      T_(a_name_count_that_disagrees_with_the_columns_is_refused),
      T_(numeric_state_names_are_the_wrong_type),
      T_(unnamed_columns_of_another_count_say_so),
      T_(a_huge_dataset_is_refused_before_allocating),
      T_(sizes_whose_product_overflows_are_refused),
      T_(a_missing_group_selector_lists_the_groups),
      T_(a_bad_series_inside_a_batch_names_its_group),
      T_(an_empty_time_grid_is_refused),
      T_(the_writer_refuses_a_bad_series_with_the_same_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
