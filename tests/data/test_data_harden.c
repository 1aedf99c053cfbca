/* Hardening of the data layer (issue 16), one reproduction per defect: a walk over groups that
 * form cycles, corrupt bytes in variable-length strings, a file of 200,000 columns, a tiny file
 * declaring a huge parameter vector, dangling links in a batch, statistics near the largest
 * double, and the writer's targets (devices, FIFOs, symbolic links, modes, long names, large
 * attributes, unwritable places). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Remove dir recursively (some tests make nested directories and links). */
static void remove_tree(const char *p) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'", p, p);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", p);
}

static int teardown(void **state) {
  (void)state;
  remove_tree(dir);
  free(dir);
  dir = NULL;
  return 0;
}

static void assert_ok(nde_status st, const nde_error *e) {
  if (st != NDE_OK) print_error("unexpected failure: %s\n", e->msg);
  assert_int_equal(st, NDE_OK);
}

static void assert_has(const char *msg, const char *needle) {
  if (!strstr(msg, needle)) print_error("message \"%s\" lacks \"%s\"\n", msg, needle);
  assert_non_null(strstr(msg, needle));
}

#define N 4
static const double T[N] = {0.0, 0.5, 1.25, 2.0};
static const double Y[N * 2] = {1.3, -0.27, 1.41, -0.19, 1.56, 0.02, 1.72, 0.31};
static const char *const NAMES[2] = {"x", "y"};

/* ---- the walk ---- */

typedef struct walk {
  int n;
  char paths[32][64];
  char same[32][64];
} walk;

static int record(void *ctx, const nde_h5_object *o) {
  walk *w = ctx;
  if (w->n == 32) return 1;
  snprintf(w->paths[w->n], sizeof w->paths[0], "%s", o->path);
  snprintf(w->same[w->n], sizeof w->same[0], "%s", o->same_as ? o->same_as : "");
  w->n++;
  return 0;
}

static void groups_that_form_a_cycle_are_walked_once(void **state) {
  (void)state;
  const char *path = fx_path(dir, "loop.h5");
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, "/g", N, 2, T, Y), 0);
  assert_true(H5Lcreate_hard(h, "/g", h, "/g/loop", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  assert_true(H5Lcreate_hard(h, "/", h, "/g/root", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(h);
  nde_reader *r = NULL;
  nde_error e;
  assert_ok(nde_reader_open(path, &r, &e), &e);
  walk w = {0};
  assert_int_equal(nde_reader_visit(r, record, &w), NDE_OK);
  nde_reader_destroy(&r);
  /* /g, /g/loop (= /g), /g/root (= /), /g/t, /g/y */
  assert_int_equal(w.n, 5);
  assert_string_equal(w.paths[0], "/g");
  assert_string_equal(w.same[0], "");
  assert_string_equal(w.paths[1], "/g/loop");
  assert_string_equal(w.same[1], "/g");
  assert_string_equal(w.paths[2], "/g/root");
  assert_string_equal(w.same[2], "/");
  assert_string_equal(w.paths[4], "/g/y");
}

/* ---- corrupt variable-length strings ---- */

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)len);
  assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

static void spill(const char *path, const unsigned char *b, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(b, 1, n, f), n);
  fclose(f);
}

static size_t find_bytes(const unsigned char *hay, size_t n, const void *needle, size_t k) {
  for (size_t i = 0; i + k <= n; i++)
    if (!memcmp(hay + i, needle, k)) return i;
  return SIZE_MAX;
}

/* Every byte of the strings' global heap and of their descriptors in the attribute, set to
 * other values: each file opens or is refused, never crashes (this test runs under ASan). */
static void one_corrupt_byte_in_a_string_attribute_is_refused_not_a_crash(void **state) {
  (void)state;
  const char *good = fx_path(dir, "names.h5");
  hid_t h = fx_create(good);
  assert_int_equal(fx_series(h, NULL, N, 2, T, Y), 0);
  const char *long_names[2] = {"prey_population_density", "predator_population_density"};
  fx_names(h, "/y", 2, long_names, 0);
  H5Fclose(h);
  size_t n;
  unsigned char *img = slurp(good, &n);
  size_t heap = find_bytes(img, n, "GCOL", 4);
  assert_true(heap != SIZE_MAX);
  /* The descriptor of the first name: its length (4 bytes) then the heap's address (8). */
  unsigned char desc[12];
  uint32_t len = (uint32_t)strlen(long_names[0]);
  uint64_t addr = heap;
  for (int i = 0; i < 4; i++) desc[i] = (unsigned char)(len >> (8 * i));
  for (int i = 0; i < 8; i++) desc[4 + i] = (unsigned char)(addr >> (8 * i));
  size_t d0 = find_bytes(img, n, desc, sizeof desc);
  assert_true(d0 != SIZE_MAX);

  const char *bad = fx_path(dir, "bad.h5");
  size_t ranges[2][2] = {{d0, d0 + 32}, {heap, heap + 16 + 2 * (16 + 32) + 32}};
  const unsigned char vals[3] = {0x00, 0xff, 0x41};
  int refused = 0, opened = 0;
  for (int r = 0; r < 2; r++)
    for (size_t i = ranges[r][0]; i < ranges[r][1] && i < n; i++)
      for (int v = 0; v < 4; v++) {
        unsigned char keep = img[i];
        img[i] = v < 3 ? vals[v] : (unsigned char)(keep + 1);
        if (img[i] == keep) continue;
        spill(bad, img, n);
        img[i] = keep;
        nde_data *d = NULL;
        nde_error e;
        nde_status st = nde_data_open(bad, 0, NULL, NULL, &d, &e);
        if (st == NDE_OK) {
          opened++;
          nde_data_destroy(&d);
        } else {
          refused++;
          assert_true(st == NDE_ERR_DATA || st == NDE_ERR_IO);
          assert_true(e.msg[0] != '\0');
        }
      }
  assert_true(refused > 0);
  assert_true(opened > 0); /* e.g. a changed letter of a name */

  /* The length of the first name made longer than its heap object: the overflow HDF5 would do. */
  img[d0] = 200;
  spill(bad, img, n);
  nde_data *d = NULL;
  nde_error e;
  assert_int_equal(nde_data_open(bad, 0, NULL, NULL, &d, &e), NDE_ERR_DATA);
  assert_has(e.msg, "bad.h5:/y: attribute state_names is unreadable (string 0 is corrupt "
                    "(length 200, heap object");
  free(img);
}

/* ---- a local heap whose free list loops ---- */

static void put_le(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* HDF5 1.10.8 follows a group's local-heap free list without noticing a loop and allocates until
 * memory runs out (found by .ci/fuzz result).  A file whose free list points at itself, or two
 * blocks at each other, is refused at open with the byte of the damaged heap, quickly and by
 * both readers. */
static void a_local_heap_whose_free_list_loops_is_refused_at_open(void **state) {
  (void)state;
  const char *good = fx_path(dir, "heap.h5");
  hid_t h = fx_create(good);
  assert_int_equal(fx_series(h, "/run1", N, 2, T, Y), 0);
  H5Fclose(h);
  size_t n;
  unsigned char *img = slurp(good, &n);
  const size_t at = find_bytes(img, n, "HEAP", 4);
  assert_true(at != SIZE_MAX && img[at + 4] == 0);
  /* Version 0 with 8-byte sizes and addresses: segment size, free-list head, segment address. */
  uint64_t dsize = 0, addr = 0;
  for (int i = 7; i >= 0; i--) dsize = dsize << 8 | img[at + 8 + i];
  for (int i = 7; i >= 0; i--) addr = addr << 8 | img[at + 24 + i];
  assert_true(dsize >= 48 && addr + dsize <= n);
  const char *bad = fx_path(dir, "loop.h5");
  for (int kind = 0; kind < 4; kind++) {
    unsigned char *c = malloc(n);
    memcpy(c, img, n);
    /* Three free blocks of 16 bytes at the end: a -> a; a -> b -> a; a -> b -> c -> b (a loop
     * behind a tail); and kind 3 a head 8 bytes before the end, a block that overruns. */
    const uint64_t a = dsize - 48, b = dsize - 32, cc = dsize - 16;
    put_le(c + at + 16, kind == 3 ? dsize - 8 : a);
    put_le(c + addr + a, kind == 0 ? a : b);
    put_le(c + addr + a + 8, 16);
    put_le(c + addr + b, kind == 1 ? a : cc);
    put_le(c + addr + b + 8, 16);
    put_le(c + addr + cc, b);
    put_le(c + addr + cc + 8, 16);
    spill(bad, c, n);
    free(c);
    char want[160];
    if (kind < 3)
      snprintf(want, sizeof want, "loop.h5: the local heap at byte %zu (a group's list of names) "
               "is damaged: its free list loops", at);
    else
      snprintf(want, sizeof want, "loop.h5: the local heap at byte %zu (a group's list of names) "
               "is damaged: a free block at offset %llu overruns its %llu bytes", at,
               (unsigned long long)(dsize - 8), (unsigned long long)dsize);
    nde_data *d = NULL;
    nde_error e;
    assert_int_equal(nde_data_open(bad, 0, NULL, NULL, &d, &e), NDE_ERR_DATA);
    assert_has(e.msg, want);
    assert_null(d);
    nde_reader *r = NULL;
    assert_int_equal(nde_reader_open(bad, &r, &e), NDE_ERR_DATA);
    assert_has(e.msg, want);
    assert_null(r);
  }
  /* The list as it was, and a free list that ends, open. */
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_open(good, 0, NULL, NULL, &d, &e), &e);
  nde_data_destroy(&d);
  free(img);
}

/* Heap signatures in data that all point at one long free list: walked heap by heap, they
 * would read the list once per signature (quadratic in the file's size; a 16 MB file of such
 * records took minutes).  The walks read at most as many entries as the file's size can hold
 * without overlapping heaps, and such a file is refused as damaged. */
static void heaps_that_share_one_long_free_list_are_refused_as_damaged(void **state) {
  (void)state;
  const char *path = fx_path(dir, "shared.h5");
  enum { R = 1 << 16, H = 64 }; /* a list of R / 16 entries, and H records pointing at it */
  const size_t len = R + (size_t)H * 32;
  unsigned char *buf = calloc(len, 1);
  assert_non_null(buf);
  hid_t f = fx_create(path);
  assert_int_equal(fx_series(f, NULL, N, 2, T, Y), 0);
  hsize_t dim = len;
  hid_t sp = H5Screate_simple(1, &dim, NULL), dc = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_alloc_time(dc, H5D_ALLOC_TIME_EARLY);
  hid_t ds = H5Dcreate2(f, "junk", H5T_NATIVE_UCHAR, sp, H5P_DEFAULT, dc, H5P_DEFAULT);
  const haddr_t seg = H5Dget_offset(ds);
  assert_true(seg != HADDR_UNDEF);
  for (uint64_t o = 0; o < R; o += 16) {
    put_le(buf + o, o + 16 < R ? o + 16 : 1); /* next (1: the end), size 16 */
    put_le(buf + o + 8, 16);
  }
  for (size_t i = 0; i < H; i++) {
    unsigned char *p = buf + R + i * 32;
    memcpy(p, "HEAP", 4);
    put_le(p + 8, R);   /* segment size */
    put_le(p + 16, 0);  /* free-list head */
    put_le(p + 24, seg);
  }
  assert_true(H5Dwrite(ds, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
  H5Dclose(ds);
  H5Pclose(dc);
  H5Sclose(sp);
  H5Fclose(f);
  free(buf);
  nde_data *d = NULL;
  nde_error e;
  assert_int_equal(nde_data_open(path, 0, NULL, NULL, &d, &e), NDE_ERR_DATA);
  assert_has(e.msg, "are longer than a file of");
  assert_null(d);
}

/* ---- wide files ---- */

static void a_file_of_200000_columns_loads_in_linear_time(void **state) {
  (void)state;
  const size_t D = 200000;
  const char *path = fx_path(dir, "wide.h5");
  char **names = malloc(D * sizeof *names);
  double *y = malloc(2 * D * sizeof *y), *sig = malloc(D * sizeof *sig);
  const double t[2] = {0.0, 0.75};
  for (size_t c = 0; c < D; c++) {
    names[c] = malloc(16);
    snprintf(names[c], 16, "u[%zu]", c + 1);
    y[c] = 0.001 * (double)c;
    y[D + c] = -0.5 * (double)c;
    sig[c] = 0.01 + 1e-6 * (double)c;
  }
  /* The names (3 MB) and sigma (1.6 MB) are attributes far beyond 64 KiB. */
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  nde_series s = {2, D, t, y, (const char *const *)names, NULL};
  nde_series_extra x = {0};
  x.sigma = sig;
  assert_int_equal(nde_writer_put_series_ex(w, "/", &s, &x), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);

  /* The model declares the components in reverse order. */
  const char **states = malloc(D * sizeof *states);
  for (size_t j = 0; j < D; j++) states[j] = names[D - 1 - j];
  nde_data *d = NULL;
  assert_ok(nde_data_open(path, D, states, NULL, &d, &e), &e);
  const nde_traj *tr = nde_data_traj(d, 0);
  assert_int_equal(tr->col[0], (int)(D - 1));
  assert_true(tr->y[D + 0] == y[D + D - 1]);
  assert_true(tr->sigma[D - 1] == sig[0]);
  nde_data_destroy(&d);
  assert_ok(nde_data_open(path, 0, NULL, NULL, &d, &e), &e);
  assert_int_equal(nde_data_n_state(d), D);
  assert_string_equal(nde_data_state_name(d, D - 1), names[D - 1]);
  nde_data_destroy(&d);

  /* A repeated name is found (and named) in linear time as well. */
  states[D - 1] = states[3];
  assert_int_equal(nde_data_open(path, D, states, NULL, &d, &e), NDE_ERR_ARG);
  assert_has(e.msg, "state 199999 has no name or repeats state 3");
  for (size_t c = 0; c < D; c++) free(names[c]);
  free(names);
  free(states);
  free(y);
  free(sig);
}

/* ---- parameters ---- */

static void a_small_file_declaring_a_huge_theta_is_refused_before_reading(void **state) {
  (void)state;
  const char *path = fx_path(dir, "huge_theta.h5");
  hid_t h = fx_create(path);
  hsize_t n = 400000000;
  H5Dclose(fx_dataset(h, "/params/theta", H5T_IEEE_F64LE, 1, &n, H5T_NATIVE_DOUBLE, NULL));
  H5Fclose(h);
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(sb.st_size < 16384);
  double theta[5] = {0};
  nde_error e;
  assert_int_equal(nde_read_theta_expect(path, 5, theta, &e), NDE_ERR_DATA);
  assert_has(e.msg, "huge_theta.h5:/params/theta: wrong size (expected 5 values, the model's "
                    "parameters, got 400000000)");

  const char *ok = fx_path(dir, "theta.h5");
  h = fx_create(ok);
  const double th[5] = {1.3, -0.9172, 0.8125, 1.8, 2.385e-3};
  hsize_t five = 5;
  H5Dclose(fx_dataset(h, "/params/theta", H5T_IEEE_F32LE, 1, &five, H5T_NATIVE_DOUBLE, th));
  H5Fclose(h);
  assert_ok(nde_read_theta_expect(ok, 5, theta, &e), &e);
  assert_true(theta[3] == (double)(float)1.8);
}

/* ---- links in a batch ---- */

static void a_dangling_link_among_a_batchs_groups_is_refused(void **state) {
  (void)state;
  const char *path = fx_path(dir, "dangling.h5");
  hid_t h = fx_create(path);
  assert_int_equal(fx_series(h, "/run1", N, 2, T, Y), 0);
  assert_true(H5Lcreate_soft("/run_missing", h, "/run2", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(h);
  nde_data *d = NULL;
  nde_error e;
  assert_int_equal(nde_data_open(path, 2, NAMES, NULL, &d, &e), NDE_ERR_DATA);
  assert_has(e.msg, "dangling.h5:/run2: link cannot be resolved (expected a group holding t and "
                    "y, got a soft link to /run_missing, which is missing)");

  const char *ext = fx_path(dir, "external.h5");
  h = fx_create(ext);
  assert_int_equal(fx_series(h, "/run1", N, 2, T, Y), 0);
  assert_true(H5Lcreate_external("gone.h5", "/run9", h, "/run2", H5P_DEFAULT, H5P_DEFAULT) >= 0);
  H5Fclose(h);
  assert_int_equal(nde_data_open(ext, 2, NAMES, NULL, &d, &e), NDE_ERR_DATA);
  assert_has(e.msg, "external.h5:/run2: link cannot be resolved (expected a group holding t and "
                    "y, got an external link to gone.h5:/run9, which is missing)");
}

/* ---- statistics ---- */

static void statistics_of_values_near_the_largest_double_stay_finite(void **state) {
  (void)state;
  const double t[4] = {0, 1, 2, 3};
  const double y[4] = {1.5e308, -1.25e308, 1.75e308, -1.0e308};
  nde_series s = {4, 1, t, y, NULL, NULL};
  nde_data *d = NULL;
  nde_error e;
  assert_ok(nde_data_from_series(0, NULL, 1, &s, NULL, NULL, &d, &e), &e);
  const nde_state_stats *st = nde_data_stats(d);
  /* In units of 1e308: mean 0.25, deviations 1.25, -1.5, 1.5, -1.25; sum of squares 7.625. */
  check_rel(st->mean, 0.25e308, 1e-14, 0);
  check_rel(st->std, sqrt(7.625 / 3) * 1e308, 1e-14, 0);
  assert_true(isfinite(st->std));
  nde_data_destroy(&d);
}

/* ---- long names ---- */

static void a_1500_character_path_gets_a_whole_message(void **state) {
  (void)state;
  /* Directories of 250 characters, six deep. */
  char p[4096];
  snprintf(p, sizeof p, "%s", dir);
  for (int k = 0; k < 6; k++) {
    size_t l = strlen(p);
    p[l++] = '/';
    memset(p + l, 'a' + k, 249);
    p[l + 249] = '\0';
    assert_int_equal(mkdir(p, 0755), 0);
  }
  strcat(p, "/series.h5");
  assert_true(strlen(p) > 1500);
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(p, &w, &e), &e);
  double y[N * 2];
  memcpy(y, Y, sizeof y);
  y[5] = INFINITY;
  nde_series s = {N, 2, T, Y, NAMES, NULL};
  assert_int_equal(nde_writer_put_series(w, "/", &s), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  nde_data *d = NULL;
  assert_ok(nde_data_open(p, 2, NAMES, NULL, &d, &e), &e);
  nde_data_destroy(&d);
  /* The end of the message (what was expected) survives the length. */
  const char *other[2] = {"x", "z"};
  assert_int_equal(nde_data_open(p, 2, other, NULL, &d, &e), NDE_ERR_DATA);
  assert_has(e.msg, "matches no state of the model (expected one of x, z)");
  assert_true(strncmp(e.msg, dir, strlen(dir)) == 0);
  assert_has(e.msg, " ... ");
  /* A writer into a missing directory below it. */
  strcat(p, ".d/out.h5");
  assert_int_equal(nde_writer_create(p, &w, &e), NDE_ERR_IO);
  assert_has(e.msg, "series.h5.d does not exist)");
}

static void a_254_character_target_name_is_written(void **state) {
  (void)state;
  char name[256];
  memset(name, 'n', 251);
  memcpy(name + 251, ".h5", 4);
  assert_int_equal(strlen(name), 254);
  const char *path = fx_path(dir, name);
  nde_writer *w = NULL;
  nde_error e;
  assert_ok(nde_writer_create(path, &w, &e), &e);
  nde_series s = {N, 2, T, Y, NAMES, NULL};
  assert_int_equal(nde_writer_put_series(w, "/", &s), NDE_OK);
  assert_int_equal(nde_writer_commit(w), NDE_OK);
  nde_writer_destroy(&w);
  assert_int_equal(fx_dir_count(dir), 1);
}

/* ---- targets ---- */

static void write_small(const char *path, nde_status want, const char *needle) {
  nde_writer *w = NULL;
  nde_error e;
  nde_status st = nde_writer_create(path, &w, &e);
  if (st == NDE_OK) {
    nde_series s = {N, 2, T, Y, NAMES, NULL};
    st = nde_writer_put_series(w, "/", &s);
    if (st == NDE_OK) st = nde_writer_commit(w);
    snprintf(e.msg, sizeof e.msg, "%s", nde_writer_errmsg(w));
    nde_writer_destroy(&w);
  }
  if (st != want) print_error("status %s: %s\n", nde_status_str(st), e.msg);
  assert_int_equal(st, want);
  if (needle) assert_has(e.msg, needle);
}

static void devices_fifos_and_directories_are_refused_as_targets(void **state) {
  (void)state;
  nde_error e;
  /* Only checked, never written: a broken check must not replace the machine's /dev/null. */
  assert_int_equal(nde_writer_check_target("/dev/null", &e), NDE_ERR_IO);
  assert_has(e.msg, "/dev/null: cannot write (expected a regular file, got a character device)");
  const char *fifo = fx_path(dir, "pipe.h5");
  assert_int_equal(mkfifo(fifo, 0644), 0);
  write_small(fifo, NDE_ERR_IO, "pipe.h5: cannot write (expected a regular file, got a FIFO)");
  struct stat sb;
  assert_int_equal(lstat(fifo, &sb), 0);
  assert_true(S_ISFIFO(sb.st_mode));
  write_small(dir, NDE_ERR_IO, "cannot write (expected a regular file, got a directory)");
  char slash[4096];
  snprintf(slash, sizeof slash, "%s/", dir);
  write_small(slash, NDE_ERR_IO, "cannot write (expected a file name, got a directory)");
  assert_int_equal(nde_writer_check_target("", &e), NDE_ERR_IO);
  assert_has(e.msg, ": cannot write (expected a file name, got an empty name)");
  assert_int_equal(fx_dir_count(dir), 1);
}

static void a_symbolic_link_is_followed_and_the_mode_kept(void **state) {
  (void)state;
  const char *real = fx_path(dir, "real.h5"), *link = fx_path(dir, "link.h5");
  write_small(real, NDE_OK, NULL);
  assert_int_equal(chmod(real, 0600), 0);
  assert_int_equal(symlink("real.h5", link), 0);
  write_small(link, NDE_OK, NULL);
  struct stat sb;
  assert_int_equal(lstat(link, &sb), 0);
  assert_true(S_ISLNK(sb.st_mode));
  assert_int_equal(stat(real, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0600);
  assert_int_equal(fx_dir_count(dir), 2);
  assert_int_equal(nde_path_same_file(link, real), 1);
  assert_int_equal(nde_path_same_file(real, real), 1);

  /* A mode such as 0640 survives a plain replacement too. */
  assert_int_equal(chmod(real, 0640), 0);
  write_small(real, NDE_OK, NULL);
  assert_int_equal(stat(real, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0640);

  /* A dangling link creates its target. */
  const char *dangling = fx_path(dir, "to_new.h5");
  assert_int_equal(symlink("new.h5", dangling), 0);
  write_small(dangling, NDE_OK, NULL);
  assert_int_equal(stat(fx_path(dir, "new.h5"), &sb), 0);
  assert_true(S_ISREG(sb.st_mode));
  assert_int_equal(nde_path_same_file(dangling, fx_path(dir, "new.h5")), 1);
  assert_int_equal(nde_path_same_file(real, fx_path(dir, "new.h5")), 0);
  assert_int_equal(nde_path_same_file(real, fx_path(dir, "absent.h5")), 0);
}

/* Run check in a child without root's right to write anywhere (as nobody when root). */
static int check_as_user(const char *path, char *msg, size_t n) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(99);
    nde_error e;
    nde_status st = nde_writer_check_target(path, &e);
    ssize_t wr = write(fds[1], e.msg, strlen(e.msg) + 1);
    (void)wr;
    _exit((int)st);
  }
  close(fds[1]);
  ssize_t got = read(fds[0], msg, n - 1);
  msg[got > 0 ? got : 0] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void unwritable_or_missing_directories_are_named_before_any_work(void **state) {
  (void)state;
  nde_error e;
  assert_int_equal(nde_writer_check_target(fx_path(dir, "none/out.h5"), &e), NDE_ERR_IO);
  assert_has(e.msg, "out.h5: cannot write (directory ");
  assert_has(e.msg, "/none does not exist)");
  assert_ok(nde_writer_check_target(fx_path(dir, "fine.h5"), &e), &e);
  assert_int_equal(e.msg[0], '\0');

  const char *ro = fx_path(dir, "ro");
  assert_int_equal(mkdir(ro, 0555), 0);
  assert_int_equal(chmod(dir, 0755), 0);
  char path[4096], msg[1024];
  snprintf(path, sizeof path, "%s/out.h5", ro);
  assert_int_equal(check_as_user(path, msg, sizeof msg), NDE_ERR_IO);
  assert_has(msg, "/ro is not writable)");
  assert_int_equal(fx_dir_count(ro), 0);
  assert_int_equal(fx_dir_count(dir), 1);
}

/* Reading a FIFO would block in HDF5's signature check until someone writes to it. */
static void a_fifo_or_device_given_as_input_is_refused_at_once(void **state) {
  (void)state;
  const char *fifo = fx_path(dir, "data.h5");
  assert_int_equal(mkfifo(fifo, 0644), 0);
  nde_data *d = NULL;
  nde_error e;
  assert_int_equal(nde_data_open(fifo, 2, NAMES, NULL, &d, &e), NDE_ERR_IO);
  assert_has(e.msg, "data.h5: cannot open (expected an HDF5 file, got a FIFO)");
  nde_reader *r = NULL;
  assert_int_equal(nde_reader_open("/dev/zero", &r, &e), NDE_ERR_IO);
  assert_has(e.msg, "/dev/zero: cannot open (expected an HDF5 file, got a character device)");
  double th[2];
  assert_int_equal(nde_read_theta_expect(fifo, 2, th, &e), NDE_ERR_IO);
  assert_int_equal(nde_data_open(dir, 0, NULL, NULL, &d, &e), NDE_ERR_IO);
  assert_has(e.msg, ": cannot open (expected an HDF5 file, got a directory)");
}

/* A root group whose version 2 object header fails its checksum: HDF5 1.10.8 fails to open the
 * file and keeps some of its state, which it complains about at exit when its error printing is
 * on.  nde refuses the file with one line, and after nde_data_hdf5_errors_off nothing else is
 * printed, at exit either. */
static void a_corrupt_root_header_is_refused_and_silent_at_exit(void **state) {
  (void)state;
  const char *path = fx_path(dir, "root.h5");
  write_small(path, NDE_OK, NULL);
  size_t n;
  unsigned char *img = slurp(path, &n);
  size_t oh = find_bytes(img, n, "OHDR", 4);
  assert_true(oh != SIZE_MAX);
  img[oh + 5] ^= 0x01; /* the header's flags: its checksum no longer matches */
  spill(path, img, n);
  free(img);
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    nde_data_hdf5_errors_off();
    nde_data *d = NULL;
    nde_error e;
    nde_status st = nde_data_open(path, 2, NAMES, NULL, &d, &e);
    fprintf(stderr, "%d %s\n", (int)st, e.msg);
    exit(0); /* runs HDF5's atexit handler */
  }
  close(fds[1]);
  char out[4096];
  size_t got = 0;
  ssize_t k;
  while ((k = read(fds[0], out + got, sizeof out - 1 - got)) > 0) got += (size_t)k;
  out[got] = '\0';
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  char want[64];
  snprintf(want, sizeof want, "%d ", (int)NDE_ERR_IO);
  assert_true(strncmp(out, want, strlen(want)) == 0);
  assert_has(out, "root.h5: cannot open (HDF5: ");
  /* Exactly one line. */
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_string_equal(nl + 1, "");
}

/* nde_write_file writes text outputs as the writer writes HDF5: the bytes exactly, the mode of
 * the file it replaces, and the temporary file of a writer that died (a child that created its
 * writer and _exit-ed, as kill -9 would leave it) swept by the next write of that name, while a
 * live writer's temporary file stays.  nde simulate -o x.csv left its own .nde-XXXXXX behind. */
static void text_outputs_are_written_as_the_writer_writes(void **state) {
  (void)state;
  const char *csv = fx_path(dir, "out.csv");
  const char text[] = "t,x\n0,1\n1,0.5\n";
  nde_error e;
  assert_ok(nde_write_file(csv, text, sizeof text - 1, &e), &e);
  assert_int_equal(chmod(csv, 0640), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    nde_writer *w = NULL;
    _exit(nde_writer_create(csv, &w, NULL) == NDE_OK ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(fx_dir_count(dir), 2); /* out.csv and the dead writer's .nde-*.tmp */
  nde_writer *live = NULL;
  assert_ok(nde_writer_create(fx_path(dir, "other.csv"), &live, &e), &e);
  assert_int_equal(fx_dir_count(dir), 3);
  const char text2[] = "t,x\n0,2\n";
  assert_ok(nde_write_file(csv, text2, sizeof text2 - 1, &e), &e);
  assert_int_equal(fx_dir_count(dir), 2); /* swept; the live writer of another name kept */
  nde_writer_destroy(&live);
  assert_int_equal(fx_dir_count(dir), 1);
  struct stat sb;
  assert_int_equal(stat(csv, &sb), 0);
  assert_int_equal(sb.st_mode & 07777, 0640);
  assert_int_equal((size_t)sb.st_size, sizeof text2 - 1);
  FILE *f = fopen(csv, "r");
  char got[64] = {0};
  assert_non_null(f);
  assert_int_equal(fread(got, 1, sizeof got - 1, f), sizeof text2 - 1);
  fclose(f);
  assert_string_equal(got, text2);
  /* A missing directory: named, nothing written. */
  assert_int_equal(nde_write_file(fx_path(dir, "none/x.csv"), text, 3, &e), NDE_ERR_IO);
  assert_has(e.msg, "does not exist");
}

#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T_(groups_that_form_a_cycle_are_walked_once),
      T_(one_corrupt_byte_in_a_string_attribute_is_refused_not_a_crash),
      T_(a_local_heap_whose_free_list_loops_is_refused_at_open),
      T_(heaps_that_share_one_long_free_list_are_refused_as_damaged),
      T_(a_file_of_200000_columns_loads_in_linear_time),
      T_(a_small_file_declaring_a_huge_theta_is_refused_before_reading),
      T_(a_dangling_link_among_a_batchs_groups_is_refused),
      T_(statistics_of_values_near_the_largest_double_stay_finite),
      T_(a_1500_character_path_gets_a_whole_message),
      T_(a_254_character_target_name_is_written),
      T_(devices_fifos_and_directories_are_refused_as_targets),
      T_(a_symbolic_link_is_followed_and_the_mode_kept),
      T_(unwritable_or_missing_directories_are_named_before_any_work),
      T_(a_fifo_or_device_given_as_input_is_refused_at_once),
      T_(a_corrupt_root_header_is_refused_and_silent_at_exit),
      T_(text_outputs_are_written_as_the_writer_writes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
