/* nde simulate MODEL.nde -o DATA.h5: integrate a model on a time grid and write the solution as a
 * time-series file (docs/data-format.md), optionally with Gaussian noise of standard deviation
 * REL * mean(|y_j|) per state column j, as in Rackauckas et al. (2020), with provenance. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_sim.h"
#include "nde/data.h"
#include "nde/model.h"
#include "nde/solve.h"

#define USAGE                                                                                   \
  "nde simulate MODEL.nde -o DATA.h5 (--t1 T1 --dt-out H | --t1 T1 --points N | --times FILE)" \
  " [options]"

#define MAX_TIMES 100000000L /* observation times (800 MB of /t); checked before allocating */

typedef struct sim_args {
  const char *model_path, *out, *times_path, *u0, *param, *init, *solver;
  double t0, t1, dt_out, dt, noise, rtol, atol;
  long points, spi, seed;
  int quiet;
} sim_args;

/* ---- the time grid ---- */

/* t0 + i h for i = 0, 1, ... while it does not pass t1 (a last point within 1e-9 h of t1 is t1). */
static int grid_uniform(const sim_args *a, int seen_dt_out, double **t, long *n) {
  double span = a->t1 - a->t0;
  double count;
  if (seen_dt_out) {
    if (a->dt_out <= 0) {
      nde_cli_error("--dt-out: expected a positive output interval, got %g", a->dt_out);
      return NDE_EXIT_INPUT;
    }
    count = floor(span / a->dt_out * (1 + 1e-12) + 1e-9) + 1;
  } else {
    if (a->points < 2) {
      nde_cli_error("--points: expected at least 2 output times, got %ld", a->points);
      return NDE_EXIT_INPUT;
    }
    count = (double)a->points;
  }
  if (count > (double)MAX_TIMES) {
    nde_cli_error("%s: too many output times (expected at most %ld, got %.0f)",
                  seen_dt_out ? "--dt-out" : "--points", MAX_TIMES, count);
    return NDE_EXIT_INPUT;
  }
  if (count < 2) {
    nde_cli_error("--dt-out: interval %g is longer than the time span [%g, %g] (expected at "
                  "least 2 output times)", a->dt_out, a->t0, a->t1);
    return NDE_EXIT_INPUT;
  }
  *n = (long)count;
  *t = malloc((size_t)*n * sizeof **t);
  if (!*t) {
    nde_cli_error("out of memory for %ld output times", *n);
    return NDE_EXIT_IO;
  }
  double h = seen_dt_out ? a->dt_out : span / (double)(*n - 1);
  for (long i = 0; i < *n; i++) (*t)[i] = a->t0 + (double)i * h;
  if (!seen_dt_out || fabs((*t)[*n - 1] - a->t1) <= 1e-9 * h) (*t)[*n - 1] = a->t1;
  return 0;
}

static int check_times(const char *path, const double *t, long n) {
  if (n < 2) {
    nde_cli_error("%s: expected at least 2 output times, got %ld", path, n);
    return NDE_EXIT_INPUT;
  }
  for (long i = 0; i < n; i++) {
    if (!isfinite(t[i])) {
      nde_cli_error("%s: time %ld is not finite (expected a number, got %g)", path, i, t[i]);
      return NDE_EXIT_INPUT;
    }
    if (i > 0 && !(t[i] > t[i - 1])) {
      nde_cli_error("%s: times not strictly increasing at index %ld (expected t[%ld] > %.17g, "
                    "got %.17g)", path, i, i, t[i - 1], t[i]);
      return NDE_EXIT_INPUT;
    }
  }
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
  size_t dims[NDE_DATA_MAX_RANK];
  if (nde_reader_kind(r, "/t") != NDE_H5_DATASET) {
    nde_cli_error("--times: %s:/t: no such dataset (expected float64 [N] times)", path);
    code = NDE_EXIT_INPUT;
  } else if ((st = nde_reader_shape(r, "/t", &rank, dims)) != NDE_OK) {
    nde_cli_error("--times: %s", nde_reader_errmsg(r));
    code = nde_cli_input_exit(st);
  } else if (rank != 1 || dims[0] > (size_t)MAX_TIMES) {
    nde_cli_error("--times: %s:/t: wrong shape (expected float64 [N] with N <= %ld, got rank %d)",
                  path, MAX_TIMES, rank);
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
    char where[1024];
    snprintf(where, sizeof where, "--times: %s:/t", path);
    code = check_times(where, *t, *n);
  }
  return code;
}

/* One time per line; blank lines and lines starting with '#' are skipped. */
static int times_from_text(const char *path, FILE *f, double **t, long *n) {
  long cap = 0, lineno = 0;
  char line[512];
  *n = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '#' || *s == '\n' || *s == '\r' || *s == '\0') continue;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end == s || *end || errno || !isfinite(v)) {
      s[strcspn(s, "\r\n")] = '\0';
      nde_cli_error("--times: %s:%ld: expected one time (a finite number) per line, got '%s'",
                    path, lineno, s);
      return NDE_EXIT_INPUT;
    }
    if (*n == MAX_TIMES) {
      nde_cli_error("--times: %s: too many times (expected at most %ld)", path, MAX_TIMES);
      return NDE_EXIT_INPUT;
    }
    if (*n == cap) {
      cap = cap ? 2 * cap : 256;
      double *g = realloc(*t, (size_t)cap * sizeof *g);
      if (!g) {
        nde_cli_error("out of memory reading %s", path);
        return NDE_EXIT_IO;
      }
      *t = g;
    }
    (*t)[(*n)++] = v;
  }
  if (ferror(f)) {
    nde_cli_error("--times: %s: cannot read (%s)", path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  char where[1024];
  snprintf(where, sizeof where, "--times: %s", path);
  return check_times(where, *t, *n);
}

static int times_from_file(const char *path, double **t, long *n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nde_cli_error("--times: %s: cannot open (%s)", path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  int is_h5 = fread(head, 1, 8, f) == 8 && !memcmp(head, sig, 8);
  int code;
  if (is_h5) {
    fclose(f);
    return times_from_h5(path, t, n);
  }
  rewind(f);
  code = times_from_text(path, f, t, n);
  fclose(f);
  return code;
}

/* ---- NAME=VALUE lists ---- */

/* Split "a=1.5,b[2]=3" in place; calls item(ctx, name, value) for each; returns its first
 * non-zero code.  Errors name the option. */
static int parse_assignments(const char *opt, char *list, int (*item)(void *ctx, const char *name,
                                                                       double v),
                             void *ctx) {
  char *save = NULL;
  int count = 0;
  for (char *it = strtok_r(list, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
    count++;
    while (*it == ' ') it++;
    char *eq = strchr(it, '=');
    if (!eq || eq == it) {
      nde_cli_error("%s: expected NAME=VALUE items separated by commas, got '%s'", opt, it);
      return NDE_EXIT_INPUT;
    }
    *eq = '\0';
    char *name_end = eq;
    while (name_end > it && name_end[-1] == ' ') *--name_end = '\0';
    char *end;
    errno = 0;
    double v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || errno || !isfinite(v)) {
      nde_cli_error("%s: %s: expected a finite number, got '%s'", opt, it, eq + 1);
      return NDE_EXIT_INPUT;
    }
    int rc = item(ctx, it, v);
    if (rc) return rc;
  }
  if (!count) {
    nde_cli_error("%s: expected NAME=VALUE items separated by commas, got nothing", opt);
    return NDE_EXIT_INPUT;
  }
  return 0;
}

typedef struct assign_ctx {
  const nde_model *m;
  double *u0;    /* --u0 target */
  double *theta; /* --param target */
} assign_ctx;

static void list_components(const nde_model *m, char *buf, size_t cap) {
  size_t len = 0;
  buf[0] = '\0';
  for (int j = 0; j < nde_model_state_dim(m) && len + 1 < cap; j++)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", j ? ", " : "",
                            nde_model_component_name(m, j));
}

static int set_u0(void *vctx, const char *name, double v) {
  assign_ctx *c = vctx;
  int j = nde_model_find_component(c->m, name);
  if (j < 0) {
    char names[512];
    list_components(c->m, names, sizeof names);
    nde_cli_error("--u0: '%s' is not a state component of %s (expected one of %s)", name,
                  nde_model_filename(c->m), names);
    return NDE_EXIT_INPUT;
  }
  c->u0[j] = v;
  return 0;
}

static int set_param(void *vctx, const char *name, double v) {
  assign_ctx *c = vctx;
  char b[NDE_CLI_NUM_MAX];
  int i = nde_model_find_param(c->m, name);
  if (i < 0) {
    char names[512];
    size_t len = 0;
    names[0] = '\0';
    for (int k = 0; k < nde_model_n_params(c->m) && len + 1 < sizeof names; k++) {
      nde_model_param_info p;
      nde_model_get_param(c->m, k, &p);
      len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", p.name);
    }
    if (nde_model_n_params(c->m) == 0)
      nde_cli_error("--param: '%s' is not a parameter of %s (it declares no parameters)", name,
                    nde_model_filename(c->m));
    else
      nde_cli_error("--param: '%s' is not a parameter of %s (expected one of %s)", name,
                    nde_model_filename(c->m), names);
    return NDE_EXIT_INPUT;
  }
  nde_model_param_info p;
  nde_model_get_param(c->m, i, &p);
  if (!p.learnable) {
    nde_cli_error("--param: %s is fixed in %s (line %d) and cannot be overridden (expected a "
                  "learnable parameter; remove '(fixed)' there to vary it)",
                  name, nde_model_filename(c->m), p.line);
    return NDE_EXIT_INPUT;
  }
  if (nde_model_set_param(c->m, i, v, c->theta) != NDE_OK) {
    char lo[NDE_CLI_NUM_MAX], hi[NDE_CLI_NUM_MAX];
    if (p.bounded)
      nde_cli_error("--param: %s = %s is outside its bounds (expected a value in (%s, %s))", name,
                    nde_cli_num(v, b), nde_cli_num(p.lo, lo), nde_cli_num(p.hi, hi));
    else
      nde_cli_error("--param: %s = %s is outside its domain (expected a %s value)", name,
                    nde_cli_num(v, b), p.positive ? "positive" : "valid");
    return NDE_EXIT_INPUT;
  }
  return 0;
}

/* ---- provenance ---- */

/* "alpha=1.3, beta=0.9" for the natural values of all parameters. */
static char *describe_params(const nde_model *m, const double *theta) {
  size_t cap = 64, len = 0;
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    cap += strlen(p.name) + NDE_CLI_NUM_MAX + 12;
  }
  char *s = malloc(cap), b[NDE_CLI_NUM_MAX];
  if (!s) return NULL;
  snprintf(s, cap, "%s", nde_model_n_params(m) ? "" : "(none)");
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    len += (size_t)snprintf(s + len, cap - len, "%s%s=%s%s", i ? ", " : "", p.name,
                            nde_cli_num(nde_model_param_value(m, i, theta), b),
                            p.learnable ? "" : " (fixed)");
  }
  return s;
}

static char *describe_state(const nde_model *m, const double *u0) {
  int n = nde_model_state_dim(m);
  size_t cap = 16, len = 0;
  for (int j = 0; j < n; j++) cap += strlen(nde_model_component_name(m, j)) + NDE_CLI_NUM_MAX + 4;
  char *s = malloc(cap), b[NDE_CLI_NUM_MAX];
  if (!s) return NULL;
  s[0] = '\0';
  for (int j = 0; j < n; j++)
    len += (size_t)snprintf(s + len, cap - len, "%s%s=%s", j ? ", " : "",
                            nde_model_component_name(m, j), nde_cli_num(u0[j], b));
  return s;
}

/* ---- the command ---- */

static int write_file(const sim_args *a, int argc, char **argv, const nde_model *m,
                      const double *theta, const double *u0, const double *t, long n_t,
                      const double *Y, const double *noise_std, const char *step) {
  const int n = nde_model_state_dim(m);
  const char **names = nde_cli_component_names(m);
  char *cmd = nde_cli_command_line(argc, argv);
  char *params = describe_params(m, theta), *state = describe_state(m, u0);
  nde_writer *w = NULL;
  nde_error err;
  int code = 0;
  if (!names || !cmd || !params || !state) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
    goto done;
  }
  nde_status st = nde_writer_create(a->out, &w, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    code = nde_cli_exit_code(st);
    goto done;
  }
  nde_series s = {(size_t)n_t, (size_t)n, t, Y, names, a->noise > 0 ? noise_std : NULL};
  st = nde_writer_put_series(w, "/", &s);
  if (!st) st = nde_writer_set_attr_string(w, "/", "created_by", "nde simulate");
  if (!st) st = nde_writer_set_attr_string(w, "/", "command_line", cmd);
  if (!st) st = nde_writer_set_attr_string(w, "/", "nde_version", nde_version());
  if (!st) st = nde_writer_set_attr_string(w, "/", "model_file", a->model_path);
  if (!st) st = nde_writer_set_attr_string(w, "/", "model_source", nde_model_source(m));
  if (!st) st = nde_writer_set_attr_string(w, "/", "parameters", params);
  if (!st) st = nde_writer_set_attr_string(w, "/", "initial_state", state);
  if (!st && a->init) st = nde_writer_set_attr_string(w, "/", "init", a->init);
  if (!st) st = nde_writer_set_attr_string(w, "/", "solver", a->solver);
  if (!st) st = nde_writer_set_attr_string(w, "/", "solver_step", step);
  if (!st) st = nde_writer_set_attr_int64(w, "/", "seed", (int64_t)a->seed);
  if (!st) st = nde_writer_set_attr_double(w, "/", "noise", a->noise);
  if (!st) st = nde_writer_commit(w);
  if (st != NDE_OK) {
    nde_cli_error("%s", nde_writer_errmsg(w));
    code = nde_cli_exit_code(st);
  }
done:
  nde_writer_destroy(&w);
  free(names);
  free(cmd);
  free(params);
  free(state);
  return code;
}

int nde_cmd_simulate(int argc, char **argv) {
  sim_args a = {0};
  a.solver = "rk4";
  a.seed = 1;
  a.spi = 10;
  nde_arg opts[] = {
      {"--out", NDE_ARG_STR, &a.out, "DATA.h5", "output file (also -o); required", 0},
      {"--t0", NDE_ARG_DOUBLE, &a.t0, "T0", "initial time (default 0)", 0},
      {"--t1", NDE_ARG_DOUBLE, &a.t1, "T1", "final time", 0},
      {"--dt-out", NDE_ARG_DOUBLE, &a.dt_out, "H", "output every H from T0 up to T1", 0},
      {"--points", NDE_ARG_LONG, &a.points, "N", "or N equally spaced outputs on [T0, T1]", 0},
      {"--times", NDE_ARG_STR, &a.times_path, "FILE",
       "or the output times: one per line, or /t of an HDF5 file", 0},
      {"--u0", NDE_ARG_STR, &a.u0, "x=V,...", "initial state overrides (vector parts as y[1])", 0},
      {"--param", NDE_ARG_STR, &a.param, "p=V,...", "parameter values (natural units)", 0},
      {"--init", NDE_ARG_STR, &a.init, "FIT.h5", "theta from /params/theta of a result file", 0},
      {"--seed", NDE_ARG_LONG, &a.seed, "N", "seed of the noise and of net init (default 1)", 0},
      {"--noise", NDE_ARG_DOUBLE, &a.noise, "REL",
       "Gaussian noise, std REL x mean(|y|) per state (default 0)", 0},
      {"--solver", NDE_ARG_STR, &a.solver, "NAME", "integrator (default rk4)", 0},
      {"--dt", NDE_ARG_DOUBLE, &a.dt, "H", "fixed-step size (default: 10 steps per output)", 0},
      {"--steps-per-interval", NDE_ARG_LONG, &a.spi, "K", "or K equal steps per output interval", 0},
      {"--rtol", NDE_ARG_DOUBLE, &a.rtol, "R", "relative tolerance of adaptive solvers", 0},
      {"--atol", NDE_ARG_DOUBLE, &a.atol, "A", "absolute tolerance of adaptive solvers", 0},
      {"--quiet", NDE_ARG_FLAG, &a.quiet, NULL, "print nothing on success", 0},
  };
  enum { O_OUT, O_T0, O_T1, O_DTOUT, O_POINTS, O_TIMES, O_U0, O_PARAM, O_INIT, O_SEED, O_NOISE,
         O_SOLVER, O_DT, O_SPI, O_RTOL, O_ATOL, O_QUIET, O_COUNT };
  _Static_assert(O_COUNT == sizeof opts / sizeof *opts, "option table and enum agree");
  const char *pos[1];
  int n_pos;
  int code = nde_cli_parse(USAGE, argc, argv, opts, O_COUNT, pos, 1, 1, &n_pos);
  if (code >= 0) return code;
  a.model_path = pos[0];

  /* Options on their own, before anything is read. */
  if (!opts[O_OUT].seen) {
    nde_cli_error("no output file (expected -o DATA.h5)");
    return NDE_EXIT_INPUT;
  }
  int uniform = opts[O_T1].seen || opts[O_DTOUT].seen || opts[O_POINTS].seen;
  if (opts[O_TIMES].seen && (uniform || opts[O_T0].seen)) {
    nde_cli_error("--times: cannot be combined with --t0/--t1/--dt-out/--points (expected one "
                  "way to give the output times)");
    return NDE_EXIT_INPUT;
  }
  if (!opts[O_TIMES].seen) {
    if (!opts[O_T1].seen) {
      nde_cli_error("no final time (expected --t1 T1 with --dt-out H or --points N, or --times "
                    "FILE)");
      return NDE_EXIT_INPUT;
    }
    if (opts[O_DTOUT].seen == opts[O_POINTS].seen) {
      nde_cli_error("%s (expected exactly one of --dt-out H or --points N)",
                    opts[O_DTOUT].seen ? "both --dt-out and --points given"
                                       : "no output spacing");
      return NDE_EXIT_INPUT;
    }
    if (!(a.t1 > a.t0)) {
      nde_cli_error("--t1: expected a final time after t0 = %g, got %g", a.t0, a.t1);
      return NDE_EXIT_INPUT;
    }
  }
  if (a.seed < 0) {
    nde_cli_error("--seed: expected a whole number >= 0, got %ld", a.seed);
    return NDE_EXIT_INPUT;
  }
  if (a.noise < 0) {
    nde_cli_error("--noise: expected a relative noise level >= 0, got %g", a.noise);
    return NDE_EXIT_INPUT;
  }
  if (!nde_solver_method_known(a.solver)) {
    char names[256];
    size_t len = 0;
    const char *const *m = nde_solver_method_names();
    names[0] = '\0';
    for (int i = 0; m[i] && len + 1 < sizeof names; i++)
      len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", m[i]);
    nde_cli_error("--solver: unknown method '%s' (expected one of %s)", a.solver, names);
    return NDE_EXIT_INPUT;
  }
  if (opts[O_DT].seen && opts[O_SPI].seen) {
    nde_cli_error("--dt and --steps-per-interval both given (expected at most one)");
    return NDE_EXIT_INPUT;
  }
  if (opts[O_DT].seen && !(a.dt > 0)) {
    nde_cli_error("--dt: expected a positive step size, got %g", a.dt);
    return NDE_EXIT_INPUT;
  }
  if (a.spi < 1 || a.spi > 1000000000L) {
    nde_cli_error("--steps-per-interval: expected a whole number from 1 to 1e9, got %ld", a.spi);
    return NDE_EXIT_INPUT;
  }
  if ((opts[O_RTOL].seen && !(a.rtol > 0)) || (opts[O_ATOL].seen && !(a.atol > 0))) {
    nde_cli_error("%s: expected a positive tolerance, got %g", opts[O_RTOL].seen && !(a.rtol > 0)
                  ? "--rtol" : "--atol", opts[O_RTOL].seen && !(a.rtol > 0) ? a.rtol : a.atol);
    return NDE_EXIT_INPUT;
  }

  nde_model *m = NULL;
  nde_rhs *rhs = NULL;
  nde_solver *solver = NULL;
  double *t = NULL, *theta = NULL, *u0 = NULL, *Y = NULL, *noise_std = NULL, *init = NULL;
  char *u0_list = NULL, *param_list = NULL;
  long n_t = 0;
  nde_status st = nde_model_load_file(a.model_path, &m, NULL);
  if (st != NDE_OK) {
    nde_cli_report_model(m, st);
    code = nde_cli_input_exit(st);
    goto done;
  }
  const int n = nde_model_state_dim(m);
  const size_t n_theta = nde_model_n_theta(m);

  code = opts[O_TIMES].seen ? times_from_file(a.times_path, &t, &n_t)
                            : grid_uniform(&a, opts[O_DTOUT].seen, &t, &n_t);
  if (code) goto done;

  theta = malloc((n_theta ? n_theta : 1) * sizeof *theta);
  u0 = malloc((size_t)n * sizeof *u0);
  noise_std = calloc((size_t)n, sizeof *noise_std);
  if (!theta || !u0 || !noise_std) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
    goto done;
  }
  nde_model_initial_state(m, u0);
  if (a.init) {
    size_t n_init = 0;
    nde_error err;
    st = nde_read_theta(a.init, &n_init, &init, &err);
    if (st != NDE_OK) {
      nde_cli_error("--init: %s", err.msg);
      code = nde_cli_input_exit(st);
      goto done;
    }
    if (n_init != n_theta) {
      nde_cli_error("--init: %s:/params/theta: length disagrees with %s (expected %zu values, got "
                    "%zu)", a.init, a.model_path, n_theta, n_init);
      code = NDE_EXIT_INPUT;
      goto done;
    }
    if (n_theta) memcpy(theta, init, n_theta * sizeof *theta);
  } else if ((st = nde_model_init_theta(m, (uint64_t)a.seed, theta)) != NDE_OK) {
    nde_cli_error("%s: cannot initialise the parameters (%s)", a.model_path, nde_status_str(st));
    code = nde_cli_exit_code(st);
    goto done;
  }
  assign_ctx ctx = {m, u0, theta};
  if (a.u0) {
    if (!(u0_list = strdup(a.u0))) goto nomem;
    if ((code = parse_assignments("--u0", u0_list, set_u0, &ctx))) goto done;
  }
  if (a.param) {
    if (!(param_list = strdup(a.param))) goto nomem;
    if ((code = parse_assignments("--param", param_list, set_param, &ctx))) goto done;
  }
  if (n_t > (long)(SIZE_MAX / sizeof(double) / (size_t)n) ||
      !(Y = malloc((size_t)n_t * (size_t)n * sizeof *Y)))
    goto nomem;

  /* Integrate. */
  nde_solver_opts so = nde_solver_opts_default();
  so.method = a.solver;
  if (opts[O_DT].seen) {
    so.dt = a.dt;
  } else {
    so.dt = 0;
    so.steps_per_interval = (int)a.spi;
  }
  if (opts[O_RTOL].seen) so.rtol = a.rtol;
  if (opts[O_ATOL].seen) so.atol = a.atol;
  if ((st = nde_model_create_rhs(m, 1, &rhs, NULL)) != NDE_OK) {
    nde_cli_error("%s: cannot build the right-hand side (%s)", a.model_path, nde_status_str(st));
    code = nde_cli_exit_code(st);
    goto done;
  }
  if ((st = nde_solver_create(rhs, &so, 1, &solver, NULL)) != NDE_OK) {
    nde_cli_error("--solver %s: %s", a.solver,
                  solver ? nde_solver_errmsg(solver) : nde_status_str(st));
    code = nde_cli_exit_code(st);
    goto done;
  }
  nde_solve_stats stats;
  st = nde_solver_solve(solver, theta, 1, u0, (int)n_t, t, Y, &stats);
  if (st != NDE_OK) {
    nde_cli_error("simulation failed: %s", nde_solver_errmsg(solver));
    code = nde_cli_exit_code(st);
    goto done;
  }
  if (stats.reason != NDE_REASON_NONE) {
    char b[NDE_CLI_NUM_MAX];
    char msg[512];
    (void)b;
    nde_cli_stop_message(msg, sizeof msg, so.method, &stats);
    nde_cli_error("simulation stopped: %s", msg);
    code = NDE_EXIT_NUMERIC;
    goto done;
  }

  /* Noise: std_j = REL * mean_i |y_ij|, one normal draw per value in row-major order. */
  if (a.noise > 0) {
    nde_rng rng;
    nde_rng_seed(&rng, (uint64_t)a.seed);
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (long i = 0; i < n_t; i++) s += fabs(Y[(size_t)i * (size_t)n + (size_t)j]);
      noise_std[j] = a.noise * s / (double)n_t;
    }
    for (long i = 0; i < n_t; i++)
      for (int j = 0; j < n; j++) Y[(size_t)i * (size_t)n + (size_t)j] += noise_std[j] * nde_rng_normal(&rng);
  }

  char step[64];
  if (!strcmp(a.solver, "euler") || !strcmp(a.solver, "rk4")) {
    if (opts[O_DT].seen)
      snprintf(step, sizeof step, "dt %.17g", a.dt);
    else
      snprintf(step, sizeof step, "%ld steps per output interval", a.spi);
  } else {
    snprintf(step, sizeof step, "adaptive, rtol %g, atol %g", so.rtol, so.atol);
  }
  if ((code = write_file(&a, argc, argv, m, theta, u0, t, n_t, Y, noise_std, step))) goto done;
  if (!a.quiet) {
    char b0[NDE_CLI_NUM_MAX], b1[NDE_CLI_NUM_MAX];
    printf("%s: %ld times on [%s, %s], %d state%s", a.out, n_t, nde_cli_num(t[0], b0),
           nde_cli_num(t[n_t - 1], b1), n, n == 1 ? "" : "s");
    if (a.noise > 0)
      printf(", noise %s of each state's mean", nde_cli_num(a.noise, b0));
    else
      printf(", no noise");
    printf(" (%s, %ld steps)\n", a.solver, stats.n_steps);
  }
  goto done;
nomem:
  nde_cli_error("out of memory");
  code = NDE_EXIT_IO;
done:
  nde_solver_destroy(&solver);
  nde_rhs_destroy(&rhs);
  nde_model_destroy(&m);
  free(t);
  free(theta);
  free(u0);
  free(Y);
  free(noise_std);
  free(init);
  free(u0_list);
  free(param_list);
  return code;
}
