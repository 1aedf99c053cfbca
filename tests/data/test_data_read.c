/* Reading time series: round trips through the writer and through files written with the HDF5 C
 * API (float64, float32, fixed- and variable-length state_names, none), state mapping, groups and
 * ":/group" selection, NaN counting, statistics, and a quiet HDF5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "nde/data.h"

typedef struct fx {
  char *dir;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  f->dir = fx_dir_create();
  *state = f;
  return f->dir ? 0 : -1;
}

static int teardown(void **state) {
  fx *f = *state;
  fx_dir_remove(f->dir);
  free(f);
  return 0;
}

#define N 7
static const double T[N] = {0.0, 0.25, 0.5, 0.8125, 1.0, 1.375, 2.0};
/* Columns: prey, predator (file order). */
static const double Y[N * 2] = {0.4425, 4.628, 0.5031, 3.941,  0.6172, 3.3375, 0.8219,
                                2.7093, 1.0347, 2.3341, 1.6023, 1.7359, 2.9386, 1.2127};

static void assert_ok(nde_status st, const nde_error *e) {
  if (st != NDE_OK) print_error("unexpected failure: %s\n", e->msg);
  assert_int_equal(st, NDE_OK);
}

static void a_series_written_by_nde_reads_back_in_the_models_state_order(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "lv.h5");
  const char *cols[2] = {"prey", "predator"};
  const double noise[2] = {0.0053, 0.0131};
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  nde_series s = {N, 2, T, Y, cols, noise};
  assert_int_equal(nde_writer_put_series(w, NULL, &s), NDE_OK);
  assert_int_equal(nde_writer_set_attr_int64(w, "/", "seed", 20240611), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  assert_null(w);

  /* The model declares the states in the other order, with a third unobserved one. */
  const char *states[3] = {"predator", "hidden", "prey"};
  nde_data *d = NULL;
  assert_ok(nde_data_open(path, 3, states, NULL, &d, &e), &e);
  assert_int_equal(e.status, NDE_OK);
  assert_string_equal(e.msg, "");
  assert_int_equal(nde_data_n_traj(d), 1);
  assert_int_equal(nde_data_n_state(d), 3);
  assert_string_equal(nde_data_state_name(d, 1), "hidden");
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_non_null(tr);
  assert_null(nde_data_traj(d, 1));
  assert_string_equal(tr->name, "/");
  assert_int_equal(tr->n, N);
  assert_int_equal(tr->n_cols, 2);
  assert_int_equal(tr->col[0], 1);
  assert_int_equal(tr->col[1], -1);
  assert_int_equal(tr->col[2], 0);
  for (size_t i = 0; i < N; i++) {
    assert_true(tr->t[i] == T[i]);
    assert_true(tr->y[i * 3 + 0] == Y[i * 2 + 1]);
    assert_true(isnan(tr->y[i * 3 + 1]));
    assert_true(tr->y[i * 3 + 2] == Y[i * 2 + 0]);
  }
  assert_int_equal(tr->n_obs, 2 * N);
  assert_int_equal(tr->n_nan, 0);
  assert_non_null(tr->noise_std);
  assert_true(tr->noise_std[0] == 0.0131);
  assert_true(isnan(tr->noise_std[1]));
  assert_true(tr->noise_std[2] == 0.0053);
  assert_int_equal(nde_data_n_times(d), N);
  assert_int_equal(nde_data_n_obs(d), 2 * N);
  assert_int_equal(nde_data_n_nan(d), 0);

  /* Statistics of prey against a direct two-pass computation. */
  const nde_state_stats *st = nde_data_stats(d);
  double mean = 0, ss = 0;
  for (size_t i = 0; i < N; i++) mean += Y[i * 2] / N;
  for (size_t i = 0; i < N; i++) ss += (Y[i * 2] - mean) * (Y[i * 2] - mean);
  assert_int_equal(st[2].n_obs, N);
  check_close(st[2].mean, mean, 1e-14);
  check_close(st[2].std, sqrt(ss / (N - 1)), 1e-14);
  check_close(st[2].min, 0.4425, 0);
  check_close(st[2].max, 2.9386, 0);
  assert_int_equal(st[1].n_obs, 0);
  assert_true(isnan(st[1].mean) && isnan(st[1].std));
  assert_string_equal(nde_data_file(d), path);
  nde_data_destroy(&d);
  assert_null(d);
  nde_data_destroy(&d); /* NULL-safe */
}

static void float32_data_is_accepted_and_converted(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "f32.h5");
  float t32[N], y32[N * 2];
  for (size_t i = 0; i < N; i++) t32[i] = (float)T[i];
  for (size_t i = 0; i < 2 * N; i++) y32[i] = (float)Y[i];
  y32[5] = NAN;
  hid_t h = fx_create(path);
  hsize_t dims[2] = {N, 2};
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F32LE, 1, dims, H5T_NATIVE_FLOAT, t32));
  H5Dclose(fx_dataset(h, "y", H5T_IEEE_F32BE, 2, dims, H5T_NATIVE_FLOAT, y32));
  H5Fclose(h);

  const char *states[2] = {"x", "y"};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 2, states, NULL, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  for (size_t i = 0; i < 2 * N; i++) {
    if (i == 5)
      assert_true(isnan(tr->y[i]));
    else
      assert_true(tr->y[i] == (double)(float)Y[i]);
  }
  assert_true(tr->t[3] == (double)(float)0.8125);
  assert_null(tr->noise_std);
  assert_int_equal(tr->n_nan, 1);
  assert_int_equal(nde_data_n_obs(d), 2 * N - 1);
  nde_data_destroy(&d);
}

static void without_state_names_columns_map_in_declaration_order(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "plain.h5");
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  H5Fclose(h);
  const char *states[2] = {"u", "v"};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 2, states, NULL, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_int_equal(tr->col[0], 0);
  assert_int_equal(tr->col[1], 1);
  assert_memory_equal(tr->y, Y, sizeof Y);
  nde_data_destroy(&d);
}

static void fixed_length_space_padded_names_match_vector_components(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "fixed.h5");
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  const char *names[2] = {"y[2]", "y[1]"};
  fx_names(h, "/y", 2, names, 8);
  H5Fclose(h);
  const char *states[2] = {"y[1]", "y[2]"};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 2, states, NULL, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_int_equal(tr->col[0], 1);
  assert_int_equal(tr->col[1], 0);
  assert_true(tr->y[2 * 4 + 0] == Y[2 * 4 + 1]);
  nde_data_destroy(&d);
}

/* Two trajectories on different grids, created out of name order. */
static void make_groups(const char *path) {
  static const double tb[3] = {0.1, 0.35, 0.9};
  static const double yb[3] = {1.75, NAN, 2.125};
  static const double ya[N] = {3.5, 3.25, NAN, NAN, 2.875, 2.5, 2.0625};
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, "/run_b", 3, 1, tb, yb), 0);
  assert_int_equal(fx_series(h, "/run_a", N, 1, T, ya), 0);
  const char *nm[1] = {"x"};
  fx_names(h, "/run_b/y", 1, nm, 0);
  fx_names(h, "/run_a/y", 1, nm, 0);
  H5Fclose(h);
}

static void a_file_of_groups_is_a_batch_in_group_name_order(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "batch.h5");
  make_groups(path);
  const char *states[2] = {"x", "z"};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 2, states, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_traj(d), 2);
  const nde_traj *a = nde_data_traj(d, 0), *b = nde_data_traj(d, 1);
  assert_string_equal(a->name, "/run_a");
  assert_string_equal(b->name, "/run_b");
  assert_int_equal(a->n, N);
  assert_int_equal(b->n, 3);
  assert_true(b->t[1] == 0.35);
  assert_int_equal(a->n_nan, 2);
  assert_int_equal(b->n_nan, 1);
  assert_int_equal(nde_data_n_nan(d), 3);
  assert_int_equal(nde_data_n_obs(d), 5 + 2);
  assert_int_equal(nde_data_n_times(d), N + 3);
  const nde_state_stats *st = nde_data_stats(d);
  assert_int_equal(st[0].n_obs, 7);
  check_close(st[0].mean, (3.5 + 3.25 + 2.875 + 2.5 + 2.0625 + 1.75 + 2.125) / 7, 1e-15);
  assert_int_equal(st[1].n_obs, 0);
  nde_data_destroy(&d);
}

static void a_group_selector_loads_that_series_alone(void **state) {
  fx *f = *state;
  const char *file = fx_path(f->dir, "batch.h5");
  make_groups(file);
  char sel[4200];
  snprintf(sel, sizeof sel, "%s:/run_b", file);
  const char *states[1] = {"x"};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(sel, 1, states, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_traj(d), 1);
  assert_string_equal(nde_data_traj(d, 0)->name, "/run_b");
  assert_string_equal(nde_data_file(d), file);
  assert_true(nde_data_traj(d, 0)->y[2] == 2.125);
  nde_data_destroy(&d);
  /* A trailing slash selects the same group. */
  snprintf(sel, sizeof sel, "%s:/run_a/", file);
  assert_ok(nde_data_open(sel, 1, states, NULL, &d, &e), &e);
  assert_string_equal(nde_data_traj(d, 0)->name, "/run_a");
  nde_data_destroy(&d);
}

static void writer_groups_round_trip_with_selection(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "w.h5");
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  const char *names[2] = {"a", "b"};
  nde_series s1 = {N, 2, T, Y, names, NULL};
  nde_series s2 = {3, 2, T + 2, Y + 4, names, NULL};
  assert_int_equal(nde_writer_put_series(w, "/traj1", &s1), NDE_OK);
  assert_int_equal(nde_writer_put_series(w, "/traj2", &s2), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  nde_data *d = NULL;
  assert_ok(nde_data_open(path, 2, names, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_traj(d), 2);
  assert_int_equal(nde_data_traj(d, 1)->n, 3);
  assert_memory_equal(nde_data_traj(d, 1)->y, Y + 4, 6 * sizeof(double));
  assert_memory_equal(nde_data_traj(d, 1)->t, T + 2, 3 * sizeof(double));
  nde_data_destroy(&d);
}

static void inspection_mode_takes_the_files_own_columns(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "inspect.h5");
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  H5Fclose(h);
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 0, NULL, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_state(d), 2);
  assert_string_equal(nde_data_state_name(d, 0), "column 1");
  assert_string_equal(nde_data_state_name(d, 1), "column 2");
  nde_data_destroy(&d);

  const char *file = fx_path(f->dir, "batch.h5");
  make_groups(file);
  assert_ok(nde_data_open(file, 0, NULL, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_state(d), 1);
  assert_string_equal(nde_data_state_name(d, 0), "x");
  assert_int_equal(nde_data_n_traj(d), 2);
  nde_data_destroy(&d);
}

static void hdf5_prints_nothing_on_a_bad_file(void **state) {
  fx *f = *state;
  const char *path = fx_path(f->dir, "half.h5");
  hid_t h = fx_create(path);
  hsize_t n = N;
  H5Dclose(fx_dataset(h, "t", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, T));
  H5Fclose(h);
  /* A file cut short after its superblock: HDF5 itself fails deep inside. */
  const char *cut = fx_path(f->dir, "cut.h5");
  h = fx_create(cut);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  H5Fclose(h);
  assert_int_equal(truncate(cut, 600), 0);
  char missing[4200], err_text[4096];
  snprintf(missing, sizeof missing, "%s:/nowhere", path);
  const char *states[1] = {"x"};
  nde_data *d = NULL;
  nde_error e;
  H5E_auto2_t before_fn = NULL, after_fn = NULL;
  void *before_data = NULL, *after_data = NULL;
  H5Eget_auto2(H5E_DEFAULT, &before_fn, &before_data);
  fx_stderr_begin();
  nde_status s1 = nde_data_open(path, 1, states, NULL, &d, &e);
  nde_status s2 = nde_data_open(missing, 1, states, NULL, &d, &e);
  nde_reader *r = NULL;
  nde_status s3 = nde_reader_open(path, &r, &e);
  double x;
  nde_status s4 = nde_reader_get_doubles(r, "/no/such/thing", 1, &x);
  nde_reader_destroy(&r);
  nde_status s5 = nde_data_open(cut, 1, states, NULL, &d, &e);
  fx_stderr_end(err_text, sizeof err_text);
  assert_int_equal(s5, NDE_ERR_IO);
  assert_non_null(strstr(e.msg, "cut.h5"));
  assert_non_null(strstr(e.msg, "(HDF5: "));
  H5Eget_auto2(H5E_DEFAULT, &after_fn, &after_data);
  assert_int_equal(s1, NDE_ERR_DATA);
  assert_int_equal(s2, NDE_ERR_DATA);
  assert_int_equal(s3, NDE_OK);
  assert_int_equal(s4, NDE_ERR_DATA);
  assert_string_equal(err_text, "");
  /* The caller's HDF5 error handler is restored. */
  assert_true(before_fn == after_fn && before_data == after_data);
  assert_non_null(before_fn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_series_written_by_nde_reads_back_in_the_models_state_order,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(float32_data_is_accepted_and_converted, setup, teardown),
      cmocka_unit_test_setup_teardown(without_state_names_columns_map_in_declaration_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(fixed_length_space_padded_names_match_vector_components,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_file_of_groups_is_a_batch_in_group_name_order, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(a_group_selector_loads_that_series_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(writer_groups_round_trip_with_selection, setup, teardown),
      cmocka_unit_test_setup_teardown(inspection_mode_takes_the_files_own_columns, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(hdf5_prints_nothing_on_a_bad_file, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
