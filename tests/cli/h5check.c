/* Helper of the nde simulate/inspect tests: compares HDF5 datasets bit for bit, checks a
 * noise-free file against an independent fine-step integration, and makes small files of the
 * kinds nde inspect describes.
 *   h5check same A.h5 B.h5 PATH...        every PATH holds identical bits in both (exit 0, else 1)
 *   h5check close A.h5 B.h5 RTOL PATH... every PATH agrees within RTOL x max |value| of A's dataset
 *                                         (prints whether the bits are identical too)
 *   h5check get FILE.h5 PATH              print the values of a numeric dataset, %.17g per line
 *   h5check ref FILE.h5 lv|spiral TOL [p1 p2 p3 p4]
 *                                         /y agrees with RK4 at h = 1e-4 started from /y[0] (max
 *                                         |error| / max |y| <= TOL); LV params alpha beta gamma
 *                                         delta (default 1.3 0.9 0.8 1.8)
 *   h5check mkresult FILE.h5               a small result file (/params/theta, values, history)
 *   h5check mkbatch FILE.h5                two series in groups, one NaN, one unobserved column
 *   h5check attr FILE.h5 OBJECT NAME       a scalar attribute (string or number)
 *   h5check has FILE.h5 PATH               exit 0 if the object exists, 1 if not
 *   h5check noise FILE.h5                  the noise_std a data file records, one per state
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nde/data.h"

static double *read_all(nde_reader *r, const char *path, size_t *n) {
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  if (nde_reader_shape(r, path, &rank, dims) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", nde_reader_errmsg(r));
    return NULL;
  }
  *n = 1;
  for (int k = 0; k < rank; k++) *n *= dims[k];
  double *x = malloc((*n ? *n : 1) * sizeof *x);
  if (!x || nde_reader_get_doubles(r, path, *n, x) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", x ? nde_reader_errmsg(r) : "out of memory");
    free(x);
    return NULL;
  }
  return x;
}

static nde_reader *open_or_die(const char *path) {
  nde_reader *r = NULL;
  nde_error err;
  if (nde_reader_open(path, &r, &err) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", err.msg);
    exit(2);
  }
  return r;
}

static int cmd_same(int argc, char **argv) {
  nde_reader *a = open_or_die(argv[0]), *b = open_or_die(argv[1]);
  int rc = 0;
  for (int i = 2; i < argc && !rc; i++) {
    size_t na, nb;
    double *x = read_all(a, argv[i], &na), *y = read_all(b, argv[i], &nb);
    if (!x || !y) {
      rc = 2;
    } else if (na != nb) {
      fprintf(stderr, "h5check: %s: %zu values in %s, %zu in %s\n", argv[i], na, argv[0], nb,
              argv[1]);
      rc = 1;
    } else {
      for (size_t k = 0; k < na; k++)
        if (memcmp(&x[k], &y[k], sizeof(double)) != 0) {
          fprintf(stderr, "h5check: %s[%zu] differs: %.17g vs %.17g\n", argv[i], k, x[k], y[k]);
          rc = 1;
          break;
        }
    }
    free(x);
    free(y);
  }
  nde_reader_destroy(&a);
  nde_reader_destroy(&b);
  return rc;
}

static int cmd_close(int argc, char **argv) {
  nde_reader *a = open_or_die(argv[0]), *b = open_or_die(argv[1]);
  const double rtol = atof(argv[2]);
  int rc = 0;
  for (int i = 3; i < argc && !rc; i++) {
    size_t na, nb, n_diff = 0;
    double *x = read_all(a, argv[i], &na), *y = read_all(b, argv[i], &nb), scale = 0, err = 0;
    if (!x || !y) {
      rc = 2;
    } else if (na != nb) {
      fprintf(stderr, "h5check: %s: %zu values in %s, %zu in %s\n", argv[i], na, argv[0], nb,
              argv[1]);
      rc = 1;
    } else {
      for (size_t k = 0; k < na; k++) {
        scale = fmax(scale, fabs(x[k]));
        err = fmax(err, fabs(x[k] - y[k]));
        n_diff += memcmp(&x[k], &y[k], sizeof(double)) != 0;
      }
      printf("%s: %zu of %zu values differ in their bits, max difference %.3g (%.3g relative)\n",
             argv[i], n_diff, na, err, scale > 0 ? err / scale : err);
      if (!(err <= rtol * scale)) rc = 1;
    }
    free(x);
    free(y);
  }
  nde_reader_destroy(&a);
  nde_reader_destroy(&b);
  return rc;
}

static int cmd_get(int argc, char **argv) {
  (void)argc;
  nde_reader *r = open_or_die(argv[0]);
  size_t n;
  double *x = read_all(r, argv[1], &n);
  for (size_t k = 0; x && k < n; k++) printf("%.17g\n", x[k]);
  free(x);
  nde_reader_destroy(&r);
  return x ? 0 : 2;
}

typedef struct sys {
  int spiral;
  double p[4];
} sys;

static void f(const sys *s, const double *u, double *du) {
  if (s->spiral) {
    double c1 = u[0] * u[0] * u[0], c2 = u[1] * u[1] * u[1];
    du[0] = -0.1 * c1 - 2.0 * c2;
    du[1] = 2.0 * c1 - 0.1 * c2;
  } else {
    du[0] = s->p[0] * u[0] - s->p[1] * u[0] * u[1];
    du[1] = s->p[2] * u[0] * u[1] - s->p[3] * u[1];
  }
}

static void rk4(const sys *s, double *u, double h) {
  double k1[2], k2[2], k3[2], k4[2], v[2];
  f(s, u, k1);
  for (int i = 0; i < 2; i++) v[i] = u[i] + 0.5 * h * k1[i];
  f(s, v, k2);
  for (int i = 0; i < 2; i++) v[i] = u[i] + 0.5 * h * k2[i];
  f(s, v, k3);
  for (int i = 0; i < 2; i++) v[i] = u[i] + h * k3[i];
  f(s, v, k4);
  for (int i = 0; i < 2; i++) u[i] += h / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
}

static int cmd_ref(int argc, char **argv) {
  sys s = {!strcmp(argv[1], "spiral"), {1.3, 0.9, 0.8, 1.8}};
  double tol = atof(argv[2]);
  for (int i = 0; i < 4 && 3 + i < argc; i++) s.p[i] = atof(argv[3 + i]);
  nde_reader *r = open_or_die(argv[0]);
  size_t nt, ny;
  double *t = read_all(r, "/t", &nt), *y = read_all(r, "/y", &ny);
  nde_reader_destroy(&r);
  if (!t || !y || ny != 2 * nt) {
    fprintf(stderr, "h5check: expected /t [N] and /y [N, 2]\n");
    return 2;
  }
  double u[2] = {y[0], y[1]}, err = 0, scale = 0;
  for (size_t k = 1; k < nt; k++) {
    double span = t[k] - t[k - 1];
    long steps = (long)ceil(span / 1e-4);
    for (long j = 0; j < steps; j++) rk4(&s, u, span / (double)steps);
    for (int i = 0; i < 2; i++) {
      err = fmax(err, fabs(u[i] - y[2 * k + (size_t)i]));
      scale = fmax(scale, fabs(u[i]));
    }
  }
  printf("max error %.3g, relative %.3g (tolerance %.3g); reference at t = %.17g: %.17g %.17g\n",
         err, err / scale, tol, t[nt - 1], u[0], u[1]);
  free(t);
  free(y);
  return err / scale <= tol ? 0 : 1;
}

static int put_all(nde_writer *w, nde_status st, const char *what) {
  if (st == NDE_OK) return 0;
  fprintf(stderr, "h5check: %s: %s\n", what, nde_writer_errmsg(w));
  return 1;
}

/* An init file in natural units only: /params/values/NAME = V for every NAME=V argument. */
static int cmd_mkvalues(int argc, char **argv) {
  nde_writer *w = NULL;
  nde_error err;
  if (nde_writer_create(argv[0], &w, &err) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", err.msg);
    return 2;
  }
  int bad = 0;
  for (int i = 1; i < argc && !bad; i++) {
    char path[256];
    const char *eq = strchr(argv[i], '=');
    if (!eq) return 2;
    snprintf(path, sizeof path, "/params/values/%.*s", (int)(eq - argv[i]), argv[i]);
    const double v = strtod(eq + 1, NULL);
    bad |= put_all(w, nde_writer_put_doubles(w, path, 0, NULL, &v), argv[i]);
  }
  bad |= put_all(w, nde_writer_commit(w), "commit");
  nde_writer_destroy(&w);
  return bad;
}

static int cmd_mkresult(const char *path) {
  nde_writer *w = NULL;
  nde_error err;
  if (nde_writer_create(path, &w, &err) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", err.msg);
    return 2;
  }
  const double theta[4] = {0.262364264467491, -0.105360515657826, -0.22314355131421,
                           0.587786664902119};
  const double hist[5] = {3.75, 1.5, 0.625, 0.03125, 0.0123456};
  const double alpha = 1.3, beta = 0.9;
  size_t n4 = 4, n5 = 5;
  int bad = 0;
  bad |= put_all(w, nde_writer_put_doubles(w, "/params/theta", 1, &n4, theta), "theta");
  bad |= put_all(w, nde_writer_put_doubles(w, "/params/values/alpha", 0, NULL, &alpha), "alpha");
  bad |= put_all(w, nde_writer_put_doubles(w, "/params/values/beta", 0, NULL, &beta), "beta");
  bad |= put_all(w, nde_writer_put_doubles(w, "/train/history", 1, &n5, hist), "history");
  bad |= put_all(w, nde_writer_put_string(w, "/model/source",
                                          "# a test model\nstate x = 1\ndx/dt = -x\n"),
                 "source");
  bad |= put_all(w, nde_writer_set_attr_string(w, "/", "status", "converged"), "status");
  bad |= put_all(w, nde_writer_set_attr_string(w, "/", "nde_version", "0.1.0"), "version");
  bad |= put_all(w, nde_writer_set_attr_int64(w, "/", "seed", 4242), "seed");
  bad |= put_all(w, nde_writer_commit(w), "commit");
  nde_writer_destroy(&w);
  return bad;
}

static int cmd_mkbatch(const char *path) {
  nde_writer *w = NULL;
  nde_error err;
  if (nde_writer_create(path, &w, &err) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", err.msg);
    return 2;
  }
  const double t1[3] = {0, 0.5, 1.25}, y1[6] = {1.5, 2.5, NAN, 3.5, 2.0, 4.5};
  const double t2[2] = {0, 1}, y2[2] = {0.75, 1.75};
  const char *n1[2] = {"x", "y"}, *n2[1] = {"x"};
  nde_series a = {3, 2, t1, y1, n1, NULL}, b = {2, 1, t2, y2, n2, NULL};
  int bad = put_all(w, nde_writer_put_series(w, "/run1", &a), "run1");
  bad |= put_all(w, nde_writer_put_series(w, "/run2", &b), "run2");
  bad |= put_all(w, nde_writer_commit(w), "commit");
  nde_writer_destroy(&w);
  return bad;
}

static int cmd_attr(const char *file, const char *obj, const char *name) {
  nde_reader *r = open_or_die(file);
  char *str = NULL;
  double d;
  int rc = 0;
  if (nde_reader_get_attr_string(r, obj, name, &str) == NDE_OK) {
    printf("%s\n", str);
    free(str);
  } else if (nde_reader_get_attr_double(r, obj, name, &d) == NDE_OK) {
    printf("%.17g\n", d);
  } else {
    fprintf(stderr, "h5check: no attribute %s on %s\n", name, obj);
    rc = 2;
  }
  nde_reader_destroy(&r);
  return rc;
}

static int cmd_has(const char *file, const char *path) {
  nde_reader *r = open_or_die(file);
  const int rc = nde_reader_kind(r, path) == NDE_H5_NONE;
  nde_reader_destroy(&r);
  return rc;
}

static int cmd_noise(const char *file) {
  nde_error e;
  nde_data *d = NULL;
  nde_data_opts o = nde_data_opts_default();
  if (nde_data_open(file, 0, NULL, &o, &d, &e) != NDE_OK) {
    fprintf(stderr, "h5check: %s\n", e.msg);
    return 2;
  }
  const nde_traj *tr = nde_data_traj(d, 0);
  for (size_t j = 0; j < nde_data_n_state(d); j++)
    printf("%.17g\n", tr->noise_std ? tr->noise_std[j] : 0.0);
  nde_data_destroy(&d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 5 && !strcmp(argv[1], "attr")) return cmd_attr(argv[2], argv[3], argv[4]);
  if (argc == 4 && !strcmp(argv[1], "has")) return cmd_has(argv[2], argv[3]);
  if (argc == 3 && !strcmp(argv[1], "noise")) return cmd_noise(argv[2]);
  if (argc >= 5 && !strcmp(argv[1], "same")) return cmd_same(argc - 2, argv + 2);
  if (argc >= 6 && !strcmp(argv[1], "close")) return cmd_close(argc - 2, argv + 2);
  if (argc == 4 && !strcmp(argv[1], "get")) return cmd_get(argc - 2, argv + 2);
  if (argc >= 5 && !strcmp(argv[1], "ref")) return cmd_ref(argc - 2, argv + 2);
  if (argc == 3 && !strcmp(argv[1], "mkresult")) return cmd_mkresult(argv[2]);
  if (argc >= 4 && !strcmp(argv[1], "mkvalues")) return cmd_mkvalues(argc - 2, argv + 2);
  if (argc == 3 && !strcmp(argv[1], "mkbatch")) return cmd_mkbatch(argv[2]);
  fprintf(stderr, "usage: h5check same|close|get|ref|mkresult|mkbatch|attr|has|noise ... (see the source)\n");
  return 2;
}
