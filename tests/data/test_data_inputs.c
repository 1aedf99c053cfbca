/* Measured inputs, per-series constants and known noise (sigma): round trips through the writer,
 * files written with the HDF5 C API, batches whose constants live on the batch's group, the
 * inspection mode, data sets made from arrays, and one test per class of bad input with its
 * message, for files and for arrays (docs/data-format.md). */
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

#define N 5
#define M 7
static const double T[N] = {0.0, 0.3, 0.55, 0.9, 1.4};
static const double Y[N * 2] = {1.3, -0.27, 1.41, NAN, 1.56, 0.02, 1.72, 0.31, 1.95, 0.64};
static const char *const NAMES[2] = {"x", "y"};
static const double SIGMA[2] = {0.021, 0.0375};
/* Inputs on their own grid, wider than the observations: ambient temperature and a current. */
static const double UT[M] = {-0.1, 0.2, 0.4, 0.75, 1.0, 1.25, 1.5};
static const double U[M * 2] = {21.5, 0.12, 21.75, 0.19, 22.125, 0.23, 22.5,
                                0.31, 22.25, 0.28,  21.875, 0.2, 21.625, 0.11};
static const char *const INPUTS[2] = {"Tamb", "I"};
static const char *const CONSTS[2] = {"T", "k"};
static const double CVAL[2] = {295.15, 0.0385};

static void assert_ok(nde_status st, const nde_error *e) {
  if (st != NDE_OK) print_error("unexpected failure: %s\n", e->msg);
  assert_int_equal(st, NDE_OK);
}

static nde_series_extra full_extra(void) {
  nde_series_extra x = {0};
  x.sigma = SIGMA;
  x.m = 2;
  x.n_u = M;
  x.u_t = UT;
  x.u = U;
  x.input_names = INPUTS;
  x.n_consts = 2;
  x.const_names = CONSTS;
  x.consts = CVAL;
  return x;
}

/* The model asks for the inputs and constants in another order than the file has them. */
static const char *const WANT_IN[2] = {"I", "Tamb"};
static const char *const WANT_C[2] = {"k", "T"};

static nde_data_opts model_opts(void) {
  nde_data_opts o = nde_data_opts_default();
  o.n_inputs = 2;
  o.input_names = WANT_IN;
  o.n_consts = 2;
  o.const_names = WANT_C;
  return o;
}

static void check_traj(const nde_traj *tr) {
  assert_int_equal(tr->n, N);
  assert_int_equal(tr->n_inputs, 2);
  assert_string_equal(tr->input_names[0], "I");
  assert_string_equal(tr->input_names[1], "Tamb");
  assert_int_equal(tr->n_u, M);
  for (size_t i = 0; i < M; i++) {
    assert_true(tr->u_t[i] == UT[i]);
    assert_true(tr->u[2 * i + 0] == U[2 * i + 1]);
    assert_true(tr->u[2 * i + 1] == U[2 * i + 0]);
  }
  assert_int_equal(tr->n_consts, 2);
  assert_string_equal(tr->const_names[0], "k");
  assert_true(tr->consts[0] == CVAL[1]);
  assert_true(tr->consts[1] == CVAL[0]);
  /* The model's states are y, z, x: sigma follows the states, NaN where unobserved. */
  assert_non_null(tr->sigma);
  assert_true(tr->sigma[0] == SIGMA[1]);
  assert_true(isnan(tr->sigma[1]));
  assert_true(tr->sigma[2] == SIGMA[0]);
  assert_null(tr->noise_std);
}

static const char *const STATES3[3] = {"y", "z", "x"};

static void inputs_constants_and_sigma_round_trip_in_the_models_order(void **state) {
  (void)state;
  const char *path = fx_path(dir, "heat.h5");
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  nde_series s = {N, 2, T, Y, NAMES, NULL};
  nde_series_extra x = full_extra();
  assert_int_equal(nde_writer_put_series_ex(w, "/", &s, &x), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);

  nde_data_opts o = model_opts();
  nde_data *d = NULL;
  assert_ok(nde_data_open(path, 3, STATES3, &o, &d, &e), &e);
  check_traj(nde_data_traj(d, 0));
  /* A series of a file is placed by the file and its group (none at the root). */
  char place[512], want[512];
  snprintf(want, sizeof want, "%s:", path);
  assert_string_equal(nde_data_place(d, nde_data_traj(d, 0), place, sizeof place), want);
  nde_data_destroy(&d);

  /* Without a request the inputs and constants are not read at all. */
  assert_ok(nde_data_open(path, 3, STATES3, NULL, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_int_equal(tr->n_inputs, 0);
  assert_null(tr->u);
  assert_int_equal(tr->n_consts, 0);
  nde_data_destroy(&d);
}

static void a_data_set_from_arrays_equals_the_file(void **state) {
  (void)state;
  nde_series s[2] = {{N, 2, T, Y, NAMES, NULL}, {N, 2, T, Y, NAMES, NULL}};
  nde_series_extra x[2] = {full_extra(), full_extra()};
  nde_data_opts o = model_opts();
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_from_series(3, STATES3, 2, s, x, &o, &d, &e), &e);
  assert_int_equal(nde_data_n_traj(d), 2);
  for (size_t k = 0; k < 2; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    check_traj(tr);
    for (size_t i = 0; i < N; i++) {
      assert_true(tr->t[i] == T[i]);
      assert_true(tr->y[3 * i + 2] == Y[2 * i]);
      assert_memory_equal(&tr->y[3 * i], &Y[2 * i + 1], sizeof(double));
    }
  }
  assert_string_equal(nde_data_traj(d, 1)->name, "series 1");
  assert_int_equal(nde_data_n_nan(d), 2);
  check_close(nde_data_stats(d)[2].mean, (1.3 + 1.41 + 1.56 + 1.72 + 1.95) / 5, 1e-15);
  nde_data_destroy(&d);

  /* Series from arrays are placed as "series K" in messages, as their checks name them, also
   * when they carry names of groups (not ":/run2", a group of no file); a masked copy too. */
  x[0].name = "/run2";
  x[1].name = "/";
  assert_ok(nde_data_from_series(3, STATES3, 2, s, x, &o, &d, &e), &e);
  char place[64];
  assert_string_equal(nde_data_traj(d, 0)->name, "/run2");
  assert_string_equal(nde_data_place(d, nde_data_traj(d, 0), place, sizeof place), "series 0:");
  assert_string_equal(nde_data_place(d, nde_data_traj(d, 1), place, sizeof place), "series 1:");
  assert_string_equal(nde_data_place(d, NULL, place, sizeof place), "data:");
  unsigned char keep[2 * N];
  memset(keep, 1, sizeof keep);
  nde_data *c = NULL;
  assert_ok(nde_data_masked(d, keep, &c, &e), &e);
  assert_string_equal(nde_data_place(c, nde_data_traj(c, 1), place, sizeof place), "series 1:");
  nde_data_destroy(&c);
  nde_data_destroy(&d);
  x[0].name = x[1].name = NULL;

  /* Inspection mode: the arrays' own columns and inputs. */
  assert_ok(nde_data_from_series(0, NULL, 1, s, x, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_state(d), 2);
  assert_int_equal(nde_data_traj(d, 0)->n_inputs, 2);
  assert_string_equal(nde_data_traj(d, 0)->input_names[0], "Tamb");
  nde_data_destroy(&d);
}

/* A batch: run1 carries T itself, run2 takes it from the batch's group; k is on both. */
static void constants_missing_on_a_series_come_from_the_batch_group(void **state) {
  (void)state;
  const char *path = fx_path(dir, "batch.h5");
  hid_t h = fx_create(path);
  const char *groups[2] = {"/run1", "/run2"};
  for (int g = 0; g < 2; g++) {
    char tp[32], yp[32], ut[40], up[40];
    snprintf(tp, sizeof tp, "%s/t", groups[g]);
    snprintf(yp, sizeof yp, "%s/y", groups[g]);
    snprintf(ut, sizeof ut, "%s/inputs/t", groups[g]);
    snprintf(up, sizeof up, "%s/inputs/u", groups[g]);
    assert_int_equal(fx_series(h, groups[g], N, 2, T, Y), 0);
    fx_names(h, yp, 2, NAMES, 0);
    hsize_t ud[2] = {M, 2};
    H5Dclose(fx_dataset(h, ut, H5T_IEEE_F64LE, 1, ud, H5T_NATIVE_DOUBLE, UT));
    H5Dclose(fx_dataset(h, up, H5T_IEEE_F32LE, 2, ud, H5T_NATIVE_DOUBLE, U));
    fx_strings_attr(h, up, "input_names", 2, INPUTS);
    hid_t grp = H5Gopen2(h, groups[g], H5P_DEFAULT);
    double k = 0.04 + 0.01 * g;
    fx_attr_double(grp, "k", 1, &k);
    if (g == 0) {
      double t1 = 300.5;
      fx_attr_double(grp, "T", 1, &t1);
    }
    H5Gclose(grp);
  }
  double troot = 288.25;
  hid_t root = H5Gopen2(h, "/", H5P_DEFAULT);
  fx_attr_double(root, "T", 1, &troot);
  H5Gclose(root);
  H5Fclose(h);

  nde_data_opts o = model_opts();
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(path, 2, NAMES, &o, &d, &e), &e);
  assert_int_equal(nde_data_n_traj(d), 2);
  assert_true(nde_data_traj(d, 0)->consts[1] == 300.5);
  assert_true(nde_data_traj(d, 1)->consts[1] == 288.25);
  assert_true(nde_data_traj(d, 1)->consts[0] == 0.05);
  /* float32 inputs are converted. */
  assert_true(nde_data_traj(d, 1)->u[1] == (double)(float)21.5);
  assert_null(nde_data_traj(d, 0)->sigma);
  nde_data_destroy(&d);

  /* Inspection mode loads each series' own inputs without being asked. */
  assert_ok(nde_data_open(path, 0, NULL, NULL, &d, &e), &e);
  assert_int_equal(nde_data_traj(d, 1)->n_inputs, 2);
  assert_string_equal(nde_data_traj(d, 1)->input_names[1], "I");
  nde_data_destroy(&d);
}

/* ---- bad input, one class per test ---- */

static void expect(nde_status st, const nde_error *e, nde_status want, const char *const *needles) {
  if (getenv("NDE_TEST_SHOW")) fprintf(stderr, "%s\n", e->msg);
  if (st != want) print_error("status %s, message: %s\n", nde_status_str(st), e->msg);
  assert_int_equal(st, want);
  for (; *needles; needles++) {
    if (!strstr(e->msg, *needles)) print_error("message \"%s\" lacks \"%s\"\n", e->msg, *needles);
    assert_non_null(strstr(e->msg, *needles));
  }
}

#define EXPECT(st, e, want, ...)                  \
  do {                                            \
    const char *needles_[] = {__VA_ARGS__, NULL}; \
    expect((st), (e), (want), needles_);          \
  } while (0)

/* How a bad file is made: a good series with inputs and constants, then one change. */
typedef enum {
  BAD_NO_INPUTS,
  BAD_MISSING_COLUMN,
  BAD_INT_TIMES,
  BAD_RANK,
  BAD_ROWS,
  BAD_TIME_ORDER,
  BAD_NAN_INPUT,
  BAD_NO_NAMES,
  BAD_REPEATED_NAME,
  BAD_COVERAGE,
  BAD_NO_CONST,
  BAD_CONST_STRING,
  BAD_CONST_INF,
  BAD_CONST_VECTOR,
  BAD_SIGMA_ZERO,
  BAD_SIGMA_COUNT,
} bad_kind;

static const char *bad_file(bad_kind kind) {
  static char name[64];
  snprintf(name, sizeof name, "bad%d.h5", (int)kind);
  const char *path = fx_path(dir, name);
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  fx_names(h, "/y", 2, NAMES, 0);
  double ut[M], u[M * 2];
  memcpy(ut, UT, sizeof ut);
  memcpy(u, U, sizeof u);
  if (kind == BAD_TIME_ORDER) ut[4] = ut[3];
  if (kind == BAD_NAN_INPUT) u[2 * 2 + 0] = NAN;
  if (kind == BAD_COVERAGE) ut[M - 1] = 1.375;
  hsize_t ud[2] = {M, 2}, short_rows[2] = {M - 1, 2};
  if (kind != BAD_NO_INPUTS) {
    if (kind == BAD_INT_TIMES) {
      const long long it[M] = {0, 1, 2, 3, 4, 5, 6};
      H5Dclose(fx_dataset(h, "/inputs/t", H5T_STD_I64LE, 1, ud, H5T_NATIVE_LLONG, it));
    } else {
      H5Dclose(fx_dataset(h, "/inputs/t", H5T_IEEE_F64LE, 1, ud, H5T_NATIVE_DOUBLE, ut));
    }
    if (kind == BAD_RANK)
      H5Dclose(fx_dataset(h, "/inputs/u", H5T_IEEE_F64LE, 1, ud, H5T_NATIVE_DOUBLE, u));
    else
      H5Dclose(fx_dataset(h, "/inputs/u", H5T_IEEE_F64LE, 2,
                          kind == BAD_ROWS ? short_rows : ud, H5T_NATIVE_DOUBLE, u));
    const char *names[2] = {"Tamb", kind == BAD_MISSING_COLUMN ? "current"
                                    : kind == BAD_REPEATED_NAME ? "Tamb"
                                                                : "I"};
    if (kind != BAD_NO_NAMES && kind != BAD_RANK)
      fx_strings_attr(h, "/inputs/u", "input_names", 2, names);
  }
  hid_t root = H5Gopen2(h, "/", H5P_DEFAULT);
  if (kind != BAD_NO_CONST) fx_attr_double(root, "T", 1, &CVAL[0]);
  if (kind == BAD_CONST_STRING) {
    const char *txt[1] = {"0.0385"};
    fx_strings_attr(h, "/", "k", 1, txt);
  } else if (kind == BAD_CONST_VECTOR) {
    fx_attr_double(root, "k", 2, CVAL);
  } else {
    double k = kind == BAD_CONST_INF ? INFINITY : CVAL[1];
    fx_attr_double(root, "k", 1, &k);
  }
  H5Gclose(root);
  if (kind == BAD_SIGMA_ZERO || kind == BAD_SIGMA_COUNT) {
    hid_t y = H5Dopen2(h, "/y", H5P_DEFAULT);
    const double sig[3] = {0.02, 0.0, 0.5};
    fx_attr_double(y, "sigma", kind == BAD_SIGMA_COUNT ? 3 : 2, sig);
    H5Dclose(y);
  }
  H5Fclose(h);
  return path;
}

static nde_status open_bad(bad_kind kind, nde_error *e) {
  nde_data_opts o = model_opts();
  nde_data *d = (nde_data *)1;
  nde_status st = nde_data_open(bad_file(kind), 2, NAMES, &o, &d, e);
  assert_null(d);
  return st;
}

static void a_series_without_the_requested_inputs_names_them(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_NO_INPUTS, &e);
  EXPECT(st, &e, NDE_ERR_DATA, "bad0.h5:/inputs/u: no such dataset",
         "(expected float64 [M, 2] measured inputs I, Tamb)");
}

static void a_missing_input_column_lists_what_the_file_has(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_MISSING_COLUMN, &e);
  EXPECT(st, &e, NDE_ERR_DATA, ".h5:/inputs/u: no input I",
         "(expected columns named I, Tamb in attribute input_names, got Tamb, current)");
}

static void integer_input_times_are_the_wrong_type(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_INT_TIMES, &e);
  EXPECT(st, &e, NDE_ERR_DATA, ".h5:/inputs/t: wrong type (expected float64 or float32, got int64)");
}

static void one_dimensional_inputs_are_the_wrong_rank(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_RANK, &e);
  EXPECT(st, &e, NDE_ERR_DATA, ".h5:/inputs/u: wrong rank (expected rank 2", "got rank 1 [7])");
}

static void input_rows_that_disagree_with_their_times_are_counted(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_ROWS, &e);
  EXPECT(st, &e, NDE_ERR_DATA, ".h5:/inputs/u: row count disagrees with /inputs/t",
         "(expected 7 rows, one per time in /inputs/t, got 6)");
}

static void a_repeated_input_time_gives_its_index(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_TIME_ORDER, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/inputs/t: times not strictly increasing at index 4 (expected t[4] > t[3] = 0.75, "
         "got t[4] = 0.75)");
}

static void a_nan_input_gives_row_and_column(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_NAN_INPUT, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/inputs/u: non-finite input at row 2, column 0 (\"Tamb\") (expected a finite "
         "number: inputs have no missing values, got nan)");
}

static void inputs_without_names_are_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_NO_NAMES, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/inputs/u: no attribute input_names (expected 2 names, one per column)");
}

static void a_repeated_input_name_is_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_REPEATED_NAME, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/inputs/u: input_names[1] = \"Tamb\" repeats input_names[0] (expected each input "
         "named at most once)");
}

/* Whether inputs must cover the observations is the model's business (an input declared hold
 * keeps its end values): the data layer reads a grid that ends early, and the model's binding
 * decides (tests/result/test_result.c). */
static void inputs_that_end_before_the_observations_are_read(void **state) {
  (void)state;
  nde_error e;
  nde_data_opts o = model_opts();
  nde_data *d = NULL;
  assert_ok(nde_data_open(bad_file(BAD_COVERAGE), 2, NAMES, &o, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_true(tr->u_t[tr->n_u - 1] == 1.375 && tr->t[tr->n - 1] == 1.4);
  nde_data_destroy(&d);
}

static void a_missing_constant_is_named(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_NO_CONST, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/: no attribute T (expected the per-series constant T, a number attribute of the "
         "series' group)");
}

static void a_string_constant_is_the_wrong_type(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_CONST_STRING, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/: attribute k has the wrong type (expected a number, the per-series constant k, "
         "got string)");
}

static void an_infinite_constant_is_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_CONST_INF, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/: attribute k is not finite (expected a finite number, the per-series constant k, "
         "got inf)");
}

static void a_constant_with_two_values_is_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_CONST_VECTOR, &e);
  EXPECT(st, &e, NDE_ERR_DATA, ".h5:/: attribute k has 2 values (expected one");
}

static void a_zero_sigma_is_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_SIGMA_ZERO, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/y: attribute sigma[1] is invalid (expected a finite value > 0, or NaN for "
         "unknown, got 0)");
}

static void a_sigma_of_another_length_is_refused(void **state) {
  (void)state;
  nde_error e;
  nde_status st = open_bad(BAD_SIGMA_COUNT, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         ".h5:/y: attribute sigma has 3 values (expected 1 or 2, one per column)");
}

/* Arrays named by the caller keep their names (a fit records them as a file's group names); two
 * series of one name are refused, naming both. */
static void arrays_keep_the_names_they_are_given(void **state) {
  (void)state;
  nde_series s[3] = {{N, 2, T, Y, NAMES, NULL}, {N, 2, T, Y, NAMES, NULL},
                     {N, 2, T, Y, NAMES, NULL}};
  nde_series_extra x[3] = {full_extra(), full_extra(), full_extra()};
  x[0].name = "/pump_low";
  x[2].name = "/pump_high";
  nde_data_opts o = model_opts();
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_from_series(3, STATES3, 3, s, x, &o, &d, &e), &e);
  assert_string_equal(nde_data_traj(d, 0)->name, "/pump_low");
  assert_string_equal(nde_data_traj(d, 1)->name, "series 1");
  assert_string_equal(nde_data_traj(d, 2)->name, "/pump_high");
  nde_data_destroy(&d);

  x[2].name = "/pump_low";
  nde_status st = nde_data_from_series(3, STATES3, 3, s, x, &o, &d, &e);
  assert_null(d);
  EXPECT(st, &e, NDE_ERR_DATA,
         "series 2: the name \"/pump_low\" is the name of series 0 too (expected distinct names)");
}

/* Arrays get the file's messages with "series K" for the file. */
static void arrays_are_refused_with_the_files_messages(void **state) {
  (void)state;
  nde_series s[2] = {{N, 2, T, Y, NAMES, NULL}, {N, 2, T, Y, NAMES, NULL}};
  nde_series_extra x[2] = {full_extra(), full_extra()};
  double u[M * 2];
  memcpy(u, U, sizeof u);
  u[2 * 2 + 0] = NAN;
  x[1].u = u;
  nde_data_opts o = model_opts();
  nde_data *d = (nde_data *)1;
  nde_error e;
  nde_status st = nde_data_from_series(2, NAMES, 2, s, x, &o, &d, &e);
  assert_null(d);
  EXPECT(st, &e, NDE_ERR_DATA,
         "series 1:/inputs/u: non-finite input at row 2, column 0 (\"Tamb\") (expected a finite "
         "number: inputs have no missing values, got nan)");

  x[1] = full_extra();
  x[1].n_consts = 1; /* only T: k is missing */
  st = nde_data_from_series(2, NAMES, 2, s, x, &o, &d, &e);
  EXPECT(st, &e, NDE_ERR_DATA, "series 1:/: no attribute k (expected the per-series constant k");

  x[1] = full_extra();
  x[1].m = 0;
  st = nde_data_from_series(2, NAMES, 2, s, x, &o, &d, &e);
  EXPECT(st, &e, NDE_ERR_DATA, "series 1:/inputs/u: no such dataset (expected float64 [M, 2]");

  double y[N * 2];
  memcpy(y, Y, sizeof y);
  y[7] = -INFINITY;
  s[0].y = y;
  st = nde_data_from_series(2, NAMES, 2, s, x, &o, &d, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         "series 0:/y: infinite value at row 3, column 1 (\"y\") (expected a finite number, or "
         "NaN for a missing value, got -inf)");

  const char *states[2] = {"x", "prey"};
  s[0].y = Y;
  x[1] = full_extra();
  st = nde_data_from_series(2, states, 2, s, x, &o, &d, &e);
  EXPECT(st, &e, NDE_ERR_DATA,
         "series 0:/y: state_names[1] = \"y\" matches no state of the model (expected one of x, "
         "prey)");

  /* The limit applies to arrays too. */
  o.max_bytes = 64;
  st = nde_data_from_series(2, NAMES, 2, s, x, &o, &d, &e);
  EXPECT(st, &e, NDE_ERR_DATA, "series 0:/y: too large to load (expected at most 64 bytes");
}

static void the_writer_refuses_bad_extras_with_the_readers_message(void **state) {
  (void)state;
  const char *path = fx_path(dir, "w.h5");
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  nde_series s = {N, 2, T, Y, NAMES, NULL};
  nde_series_extra x = full_extra();
  double ut[M];
  memcpy(ut, UT, sizeof ut);
  ut[3] = ut[2]; /* not strictly increasing */
  x.u_t = ut;
  assert_int_equal(nde_writer_put_series_ex(w, "/run1", &s, &x), NDE_ERR_DATA);
  const char *needles[] = {"w.h5:/run1/inputs/t: times not strictly increasing at index 3 "
                           "(expected t[3] > t[2] = 0.4, got t[3] = 0.4)",
                           NULL};
  nde_error we = {NDE_ERR_DATA, ""};
  snprintf(we.msg, sizeof we.msg, "%s", nde_writer_errmsg(w));
  expect(NDE_ERR_DATA, &we, NDE_ERR_DATA, needles);
  assert_int_equal(nde_writer_commit(w), NDE_ERR_DATA);
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 0);
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T_(inputs_constants_and_sigma_round_trip_in_the_models_order),
      T_(a_data_set_from_arrays_equals_the_file),
      T_(arrays_keep_the_names_they_are_given),
      T_(constants_missing_on_a_series_come_from_the_batch_group),
      T_(a_series_without_the_requested_inputs_names_them),
      T_(a_missing_input_column_lists_what_the_file_has),
      T_(integer_input_times_are_the_wrong_type),
      T_(one_dimensional_inputs_are_the_wrong_rank),
      T_(input_rows_that_disagree_with_their_times_are_counted),
      T_(a_repeated_input_time_gives_its_index),
      T_(a_nan_input_gives_row_and_column),
      T_(inputs_without_names_are_refused),
      T_(a_repeated_input_name_is_refused),
      T_(inputs_that_end_before_the_observations_are_read),
      T_(a_missing_constant_is_named),
      T_(a_string_constant_is_the_wrong_type),
      T_(an_infinite_constant_is_refused),
      T_(a_constant_with_two_values_is_refused),
      T_(a_zero_sigma_is_refused),
      T_(a_sigma_of_another_length_is_refused),
      T_(arrays_are_refused_with_the_files_messages),
      T_(the_writer_refuses_bad_extras_with_the_readers_message),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
