/* Option parsing, model and data loading, and progress display shared by the subcommands. */
#include "cli_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "nde/train.h"

static void print_help(const char *usage, const nde_arg *opts, int n_opts) {
  printf("usage: %s\n\noptions:\n", usage);
  for (int i = 0; i < n_opts; i++) {
    char left[64];
    if (opts[i].kind == NDE_ARG_FLAG)
      snprintf(left, sizeof left, "%s", opts[i].name);
    else
      snprintf(left, sizeof left, "%s %s", opts[i].name, opts[i].meta ? opts[i].meta : "X");
    printf("  %-26s %s\n", left, opts[i].help);
  }
}

static int set_value(nde_arg *a, const char *v) {
  char *end;
  errno = 0;
  switch (a->kind) {
    case NDE_ARG_STR:
      *(const char **)a->dest = v;
      return 0;
    case NDE_ARG_DOUBLE: {
      double d = strtod(v, &end);
      if (end == v || *end || errno || !isfinite(d)) {
        nde_cli_error("%s: expected a number, got '%s'", a->name, v);
        return NDE_EXIT_INPUT;
      }
      *(double *)a->dest = d;
      return 0;
    }
    case NDE_ARG_LONG: {
      long l = strtol(v, &end, 10);
      if (end == v || *end || errno) {
        nde_cli_error("%s: expected a whole number, got '%s'", a->name, v);
        return NDE_EXIT_INPUT;
      }
      *(long *)a->dest = l;
      return 0;
    }
    case NDE_ARG_FLAG:
      break;
  }
  return NDE_EXIT_INTERNAL;
}

int nde_cli_parse(const char *usage, int argc, char **argv, nde_arg *opts, int n_opts,
                  const char **pos, int min_pos, int max_pos, int *n_pos) {
  *n_pos = 0;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
      print_help(usage, opts, n_opts);
      return NDE_EXIT_OK;
    }
    if (s[0] == '-' && s[1] == '-' && s[2]) {
      const char *eq = strchr(s, '=');
      size_t len = eq ? (size_t)(eq - s) : strlen(s);
      nde_arg *a = NULL;
      for (int k = 0; k < n_opts; k++)
        if (strlen(opts[k].name) == len && !strncmp(opts[k].name, s, len)) a = &opts[k];
      if (!a) {
        nde_cli_error("unknown option '%.*s' (see %s --help)", (int)len, s, argv[0]);
        return NDE_EXIT_INPUT;
      }
      if (a->seen) {
        nde_cli_error("option %s given twice", a->name);
        return NDE_EXIT_INPUT;
      }
      a->seen = 1;
      if (a->kind == NDE_ARG_FLAG) {
        if (eq) {
          nde_cli_error("option %s takes no value (got '%s')", a->name, eq + 1);
          return NDE_EXIT_INPUT;
        }
        *(int *)a->dest = 1;
        continue;
      }
      const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v) {
        nde_cli_error("option %s needs a value (%s)", a->name, a->meta ? a->meta : "X");
        return NDE_EXIT_INPUT;
      }
      int rc = set_value(a, v);
      if (rc) return rc;
      continue;
    }
    if (s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9') && strcmp(s, "-o") != 0) {
      nde_cli_error("unknown option '%s' (see %s --help)", s, argv[0]);
      return NDE_EXIT_INPUT;
    }
    if (!strcmp(s, "-o")) { /* short form of --out */
      nde_arg *a = NULL;
      for (int k = 0; k < n_opts; k++)
        if (!strcmp(opts[k].name, "--out")) a = &opts[k];
      if (!a || i + 1 >= argc) {
        nde_cli_error(a ? "option -o needs a file name" : "option -o is not used by %s", argv[0]);
        return NDE_EXIT_INPUT;
      }
      a->seen = 1;
      *(const char **)a->dest = argv[++i];
      continue;
    }
    if (*n_pos == max_pos) {
      nde_cli_error("unexpected argument '%s' (usage: %s)", s, usage);
      return NDE_EXIT_INPUT;
    }
    pos[(*n_pos)++] = s;
  }
  if (*n_pos < min_pos) {
    nde_cli_error("missing arguments (usage: %s)", usage);
    return NDE_EXIT_INPUT;
  }
  return -1;
}

int nde_cli_load_model(const char *path, nde_model **out) {
  nde_status st = nde_model_load_file(path, out, NULL);
  if (st == NDE_OK) return 0;
  int rc = nde_cli_report_model(*out, st);
  nde_model_destroy(out);
  return rc;
}

const char **nde_cli_component_names(const nde_model *m) {
  const int n = nde_model_state_dim(m);
  const char **names = calloc((size_t)n, sizeof *names);
  if (!names) return NULL;
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  return names;
}

int nde_cli_open_data(const char *path, const nde_model *m, nde_data **out) {
  const char **names = nde_cli_component_names(m);
  if (!names) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  nde_error err;
  nde_data_opts o = nde_data_opts_default();
  nde_status st = nde_data_open(path, (size_t)nde_model_state_dim(m), names, &o, out, &err);
  free(names);
  if (st == NDE_OK) return 0;
  nde_cli_error("%s", err.msg);
  return nde_cli_input_exit(st);
}

double nde_cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void nde_cli_progress_init(nde_cli_progress *p, int quiet) {
  p->tty = isatty(fileno(stderr));
  p->quiet = quiet;
  p->t_start = nde_cli_now();
  p->line_open = 0;
}

void nde_cli_progress_line(nde_cli_progress *p, const char *fmt, ...) {
  if (p->quiet) return;
  va_list ap;
  va_start(ap, fmt);
  if (p->tty) {
    fputs("\r\033[K", stderr);
    vfprintf(stderr, fmt, ap);
    p->line_open = 1;
  } else {
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
  }
  va_end(ap);
  fflush(stderr);
}

void nde_cli_progress_note(nde_cli_progress *p, const char *fmt, ...) {
  if (p->quiet) return;
  nde_cli_progress_end(p);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void nde_cli_progress_end(nde_cli_progress *p) {
  if (p->line_open) {
    fputc('\n', stderr);
    p->line_open = 0;
  }
}

void nde_cli_stop_message(char *buf, size_t len, const char *solver, const nde_solve_stats *s) {
  const int implicit = solver && !strcmp(solver, "cvode-bdf");
  const char *hint = "";
  switch (s->reason) {
    case NDE_REASON_STIFF_SUSPECTED:
      hint = ": rerun with --solver cvode-bdf";
      break;
    case NDE_REASON_MAX_STEPS:
    case NDE_REASON_STEP_UNDERFLOW:
      hint = implicit ? "; the solution may blow up here, or need a larger --max-steps"
                      : "; the problem may be stiff: try --solver cvode-bdf";
      break;
    case NDE_REASON_NONFINITE:
    case NDE_REASON_RHS_FAILED:
    case NDE_REASON_RHS_RECOVERABLE:
      hint = "; the solution left the model's domain or blew up: check the parameters, or try a "
             "smaller step or an adaptive --solver dopri5";
      break;
    case NDE_REASON_NEWTON_FAILED:
    case NDE_REASON_ERR_TEST_FAILED:
      hint = "; try a smaller --rtol, or --solver dopri5 if the problem is not stiff";
      break;
    case NDE_REASON_TOO_MUCH_ACCURACY:
      hint = ": raise --rtol or --atol";
      break;
    case NDE_REASON_NONE:
      break;
  }
  snprintf(buf, len, "solver %s stopped at t = %.6g after %ld steps (step size %.3g): %s%s",
           solver ? solver : "", s->t_stop, s->n_steps, s->h_last, nde_stop_reason_str(s->reason),
           hint);
}

int nde_cli_series(const char *data_path, const nde_model *m, const nde_data *d,
                   nde_fit_series **series_out, double **u0s_out) {
  const int n = nde_model_state_dim(m);
  const size_t n_traj = nde_data_n_traj(d);
  nde_fit_series *series = calloc(n_traj, sizeof *series);
  double *u0s = calloc(n_traj * (size_t)n + 1, sizeof *u0s);
  double *model_u0 = calloc((size_t)n + 1, sizeof *model_u0);
  int rc = 0;
  if (!series || !u0s || !model_u0) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  const int has_init = nde_model_initial_state(m, model_u0);
  for (size_t k = 0; k < n_traj && !rc; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    if (tr->n < 2) {
      nde_cli_error("%s:%s/t: a series needs at least 2 observation times (got %zu)", data_path,
                    strcmp(tr->name, "/") ? tr->name : "", tr->n);
      rc = NDE_EXIT_INPUT;
      break;
    }
    for (int j = 0; j < n; j++) {
      double v = tr->y[j];
      if (isnan(v) && !has_init) {
        nde_cli_error("%s: state '%s' is not observed at t = %g and the model gives no initial "
                      "value (expected 'state %s = VALUE' in the model, or data at t0)",
                      data_path, nde_model_component_name(m, j), tr->t[0],
                      nde_model_component_name(m, j));
        rc = NDE_EXIT_INPUT;
        break;
      }
      u0s[k * (size_t)n + (size_t)j] = isnan(v) ? model_u0[j] : v;
    }
    series[k] = (nde_fit_series){(int)tr->n, tr->t, tr->y, u0s + k * (size_t)n};
  }
done:
  free(model_u0);
  if (rc) {
    free(series);
    free(u0s);
    series = NULL;
    u0s = NULL;
  }
  *series_out = series;
  *u0s_out = u0s;
  return rc;
}

int nde_cli_theta(const char *init, const nde_model *m, const char *model_path, uint64_t seed,
                  double *theta) {
  const size_t n_theta = nde_model_n_theta(m);
  if (!init) {
    if (nde_model_init_theta(m, seed, theta) == NDE_OK) return 0;
    nde_cli_error("%s: cannot initialise the parameters", model_path);
    return NDE_EXIT_INTERNAL;
  }
  nde_error err;
  size_t nt;
  double *th = NULL;
  nde_status st = nde_read_theta(init, &nt, &th, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_input_exit(st);
  }
  if (nt != n_theta) {
    nde_cli_error("%s:/params/theta: expected %zu values for model %s, got %zu", init, n_theta,
                  model_path, nt);
    free(th);
    return NDE_EXIT_INPUT;
  }
  memcpy(theta, th, n_theta * sizeof *theta);
  free(th);
  return 0;
}

int nde_cli_check_long(const char *option, long v, long min) {
  if (v >= min) return 0;
  nde_cli_error("%s: expected a whole number >= %ld, got %ld", option, min, v);
  return NDE_EXIT_INPUT;
}

int nde_cli_check_double(const char *option, double v, double min, int strict) {
  if (strict ? v > min : v >= min) return 0;
  nde_cli_error("%s: expected a number %s %g, got %g", option, strict ? ">" : ">=", min, v);
  return NDE_EXIT_INPUT;
}

nde_cli_solve_args nde_cli_solve_args_default(void) {
  nde_cli_solve_args a = {"rk4", "discrete", 0.0, 1e-6, 1e-9, 0.0, 0, 1000000};
  return a;
}

int nde_cli_solve_opts(const nde_cli_solve_args *a, nde_solver_opts *so, nde_grad_opts *go) {
  int rc = nde_cli_check_double("--dt", a->dt, 0, 0);
  if (!rc) rc = nde_cli_check_long("--steps-per-interval", a->steps, 0);
  if (!rc) rc = nde_cli_check_double("--rtol", a->rtol, 0, 1);
  if (!rc) rc = nde_cli_check_double("--atol", a->atol, 0, 1);
  if (!rc) rc = nde_cli_check_double("--h0", a->h0, 0, 0);
  if (!rc) rc = nde_cli_check_long("--max-steps", a->max_steps, 1);
  if (rc) return rc;
  *so = nde_solver_opts_default();
  so->method = a->solver;
  so->dt = a->dt;
  so->steps_per_interval = a->dt == 0 && a->steps == 0 ? 5 : (int)a->steps;
  so->max_steps = a->max_steps;
  so->rtol = a->rtol;
  so->atol = a->atol;
  so->h0 = a->h0;
  *go = nde_grad_opts_default();
  go->method = a->grad;
  return 0;
}

int nde_cli_make_fit(nde_model *m, const char *model_path, const nde_solver_opts *so,
                     const nde_grad_opts *go, const nde_fit_opts *fo, int n_series,
                     const nde_fit_series *series, nde_rhs **rhs, nde_fit **fit) {
  nde_status st = nde_model_create_rhs(m, 1, rhs, NULL);
  if (st != NDE_OK) {
    nde_cli_error("%s: %s", model_path, nde_model_errmsg(m));
    return nde_cli_exit_code(st);
  }
  nde_error err;
  st = nde_fit_create(*rhs, so, go, n_series, series, fo, fit, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_exit_code(st);
  }
  return 0;
}
