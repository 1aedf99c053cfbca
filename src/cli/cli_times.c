/* Output-time grids given on the command line: t0 + i h up to t1, N points like linspace, or the
 * times of a file (one per line, or /t of an HDF5 file).  Sizes are checked before allocating. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int check_times(const char *where, const double *t, long n) {
  if (n < 2) {
    nde_cli_error("%s: expected at least 2 output times, got %ld", where, n);
    return NDE_EXIT_INPUT;
  }
  for (long i = 0; i < n; i++) {
    if (!isfinite(t[i])) {
      nde_cli_error("%s: time %ld is not finite (expected a number, got %g)", where, i, t[i]);
      return NDE_EXIT_INPUT;
    }
    if (i > 0 && !(t[i] > t[i - 1])) {
      nde_cli_error("%s: times not strictly increasing at index %ld (expected t[%ld] > %.17g, "
                    "got %.17g)", where, i, i, t[i - 1], t[i]);
      return NDE_EXIT_INPUT;
    }
  }
  return 0;
}

int nde_cli_grid_uniform(double t0, double t1, double dt_out, long points, double **t, long *n) {
  const double span = t1 - t0;
  double count;
  if (dt_out > 0) {
    count = floor(span / dt_out * (1 + 1e-12) + 1e-9) + 1;
  } else {
    if (points < 2) {
      nde_cli_error("--points: expected at least 2 output times, got %ld", points);
      return NDE_EXIT_INPUT;
    }
    count = (double)points;
  }
  if (count > (double)NDE_CLI_MAX_TIMES) {
    nde_cli_error("%s: too many output times (expected at most %ld, got %.0f)",
                  dt_out > 0 ? "--dt-out" : "--points", (long)NDE_CLI_MAX_TIMES, count);
    return NDE_EXIT_INPUT;
  }
  if (count < 2) {
    nde_cli_error("--dt-out: interval %g is longer than the time span [%g, %g] (expected at "
                  "least 2 output times)", dt_out, t0, t1);
    return NDE_EXIT_INPUT;
  }
  *n = (long)count;
  *t = malloc((size_t)*n * sizeof **t);
  if (!*t) {
    nde_cli_error("out of memory for %ld output times", *n);
    return NDE_EXIT_IO;
  }
  const double h = dt_out > 0 ? dt_out : span / (double)(*n - 1);
  for (long i = 0; i < *n; i++) (*t)[i] = t0 + (double)i * h;
  if (!(dt_out > 0) || fabs((*t)[*n - 1] - t1) <= 1e-9 * h) (*t)[*n - 1] = t1;
  return 0;
}

/* /t of an HDF5 file. */
static int times_from_h5(const char *path, double **t, long *n) {
  nde_error err;
  nde_reader *r = NULL;
  nde_status st = nde_reader_open(path, &r, &err);
  if (st != NDE_OK) {
    nde_cli_error("--times: %s", err.msg);
    return nde_cli_input_exit(st);
  }
  int rank, code = 0;
  size_t dims[NDE_DATA_MAX_RANK] = {0};
  if (nde_reader_kind(r, "/t") != NDE_H5_DATASET) {
    nde_cli_error("--times: %s:/t: no such dataset (expected float64 [N] times)", path);
    code = NDE_EXIT_INPUT;
  } else if ((st = nde_reader_shape(r, "/t", &rank, dims)) != NDE_OK) {
    nde_cli_error("--times: %s", nde_reader_errmsg(r));
    code = nde_cli_input_exit(st);
  } else if (rank != 1 || dims[0] > (size_t)NDE_CLI_MAX_TIMES) {
    nde_cli_error("--times: %s:/t: wrong shape (expected float64 [N] with N <= %ld, got rank %d)",
                  path, (long)NDE_CLI_MAX_TIMES, rank);
    code = NDE_EXIT_INPUT;
  } else if (!(*t = malloc((dims[0] ? dims[0] : 1) * sizeof **t))) {
    nde_cli_error("out of memory for %zu output times", dims[0]);
    code = NDE_EXIT_IO;
  } else if ((st = nde_reader_get_doubles(r, "/t", dims[0], *t)) != NDE_OK) {
    nde_cli_error("--times: %s", nde_reader_errmsg(r));
    code = nde_cli_input_exit(st);
  }
  *n = (long)dims[0];
  nde_reader_destroy(&r);
  if (!code) {
    nde_str where = NDE_STR_INIT;
    nde_str_addf(&where, "--times: %s:/t", path);
    code = check_times(where.data ? where.data : "--times", *t, *n);
    nde_str_release(&where);
  }
  return code;
}

/* One time per line; blank lines and lines starting with '#' are skipped, and a UTF-8 byte
 * order mark before the first (nde_cli_csv_content, the rule of the CSV readers). */
static int times_from_text(const char *path, FILE *f, double **t, long *n) {
  long cap = 0, lineno = 0;
  char *line = NULL;
  size_t line_cap = 0;
  int code = 0;
  *n = 0;
  while (!code && getline(&line, &line_cap, f) >= 0) {
    lineno++;
    const char *content = nde_cli_csv_content(line, lineno);
    if (!content) continue;
    char *s = line + (content - line);
    while (*s == ' ' || *s == '\t') s++;
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    char *rest = end;
    while (*rest == ' ' || *rest == '\t' || *rest == '\r' || *rest == '\n') rest++;
    if (end == s || *rest || !isfinite(v) || (errno && errno != ERANGE)) {
      s[strcspn(s, "\r\n")] = '\0';
      nde_cli_error("--times: %s:%ld: expected one time (a finite number) per line, got '%.80s'",
                    path, lineno, s);
      code = NDE_EXIT_INPUT;
      break;
    }
    if (*n == NDE_CLI_MAX_TIMES) {
      nde_cli_error("--times: %s: too many times (expected at most %ld)", path,
                    (long)NDE_CLI_MAX_TIMES);
      code = NDE_EXIT_INPUT;
      break;
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 256;
      double *g = realloc(*t, (size_t)cap * sizeof *g);
      if (!g) {
        nde_cli_error("out of memory reading %s", path);
        code = NDE_EXIT_IO;
        break;
      }
      *t = g;
    }
    (*t)[(*n)++] = v;
  }
  free(line);
  if (code) return code;
  if (ferror(f)) {
    nde_cli_error("--times: %s: cannot read (%s)", path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  nde_str where = NDE_STR_INIT;
  nde_str_addf(&where, "--times: %s", path);
  code = check_times(where.data ? where.data : "--times", *t, *n);
  nde_str_release(&where);
  return code;
}

int nde_cli_times_file(const char *path, double **t, long *n) {
  *t = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) {
    nde_cli_error("--times: %s: cannot open (%s)", path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  const int is_h5 = fread(head, 1, 8, f) == 8 && !memcmp(head, sig, 8);
  if (is_h5) {
    fclose(f);
    return times_from_h5(path, t, n);
  }
  rewind(f);
  const int code = times_from_text(path, f, t, n);
  fclose(f);
  return code;
}
