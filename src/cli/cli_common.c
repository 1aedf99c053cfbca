/* What the subcommands share besides option parsing: messages and exit codes, loading models,
 * data and parameters with one clear message on failure, output checks before any work, and the
 * progress display (an updating line on a terminal, plain lines otherwise). */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

void nde_cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("nde: error: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int nde_cli_exit_code(nde_status st) {
  switch (st) {
    case NDE_OK: return NDE_EXIT_OK;
    case NDE_ERR_ARG:
    case NDE_ERR_LIMIT:
    case NDE_ERR_PARSE:
    case NDE_ERR_MODEL:
    case NDE_ERR_DATA: return NDE_EXIT_INPUT;
    case NDE_ERR_IO:
    case NDE_ERR_NOMEM: return NDE_EXIT_IO;
    case NDE_ERR_NUMERIC:
    case NDE_ERR_CALLBACK: return NDE_EXIT_NUMERIC;
    default: return NDE_EXIT_INTERNAL;
  }
}

int nde_cli_input_exit(nde_status st) {
  return st == NDE_ERR_IO ? NDE_EXIT_INPUT : nde_cli_exit_code(st);
}

int nde_cli_fail(const nde_error *err, int input) {
  nde_cli_error("%s", err->msg[0] ? err->msg : nde_status_str(err->status));
  return input ? nde_cli_input_exit(err->status) : nde_cli_exit_code(err->status);
}

char *nde_cli_stop_message(const char *method, const nde_solve_stats *s, const nde_model *m,
                           char *buf, size_t len) {
  nde_stop_message(method, s, buf, len);
  const char *name = m && s->bad_state >= 0 && s->bad_state < nde_model_state_dim(m)
                         ? nde_model_component_name(m, s->bad_state)
                         : NULL;
  if (!name || len < 2) return buf;
  /* A recoverable failure names the component whose derivative was not finite. */
  const int deriv = s->reason == NDE_REASON_RHS_RECOVERABLE;
  char ins[160];
  snprintf(ins, sizeof ins, ", %s%s%s not finite,", deriv ? "d" : "", name, deriv ? "/dt" : "");
  /* After "stopped at t = T" when the sentence has it, else at its end. */
  char *at = strstr(buf, " after ");
  const size_t k = strlen(ins), n = strlen(buf);
  if (!at) {
    snprintf(buf + n, len - n, " (%s%s%s not finite)", deriv ? "d" : "", name,
             deriv ? "/dt" : "");
    return buf;
  }
  if (n + k + 1 > len) return buf;
  memmove(at + k, at, n - (size_t)(at - buf) + 1);
  memcpy(at, ins, k);
  return buf;
}

/* The command being run, for messages that say how it is called. */
static const char *command_name = "";

void nde_cli_set_command(const char *name) { command_name = name ? name : ""; }

/* How the current command takes its model: the synopsis for a message about a model file that
 * is something else. */
static const char *model_synopsis(void) {
  static const char *const syn[][2] = {
      {"fit", "the model text first: nde fit MODEL.nde DATA.h5"},
      {"grad", "the model text first: nde grad MODEL.nde DATA.h5"},
      {"simulate", "the model's text: nde simulate MODEL.nde -o DATA.h5"},
      {"check", "the model's text: nde check MODEL.nde"},
      {"export", "a result file or the model's text: nde export FIT.h5|MODEL.nde"},
  };
  for (size_t i = 0; i < sizeof syn / sizeof *syn; i++)
    if (!strcmp(command_name, syn[i][0])) return syn[i][1];
  return "the model's text (a .nde file)";
}

int nde_cli_report_model(const nde_model *m, nde_status st) {
  const int n = m ? nde_model_n_diags(m) : 0;
  /* A data file in the model's place (swapped arguments): one line that says so, not its
   * bytes. */
  const char *src = m ? nde_model_source(m) : NULL;
  if (n > 0 && src && strlen(src) >= 8 && !memcmp(src, "\x89HDF\r\n\x1a\n", 8)) {
    nde_cli_error("%s: this is an HDF5 file, not a model file (expected %s)",
                  nde_model_filename(m), model_synopsis());
    return nde_cli_input_exit(st);
  }
  if (n == 0) {
    /* No place in the file (unreadable, no memory): the message names the file. */
    const char *msg = m ? nde_model_errmsg(m) : nde_status_str(st);
    size_t len = strlen(msg);
    while (len > 0 && msg[len - 1] == '\n') len--;
    nde_cli_error("%.*s", (int)len, len ? msg : nde_status_str(st));
    return nde_cli_input_exit(st);
  }
  for (int i = 0; i < n; i++) {
    nde_model_diag d;
    if (nde_model_get_diag(m, i, &d) != NDE_OK) continue;
    fprintf(stderr, "nde: %s: %s:%d:%d: %s\n", d.is_note ? "note" : "error", nde_model_filename(m),
            d.line, d.col, d.message);
    fprintf(stderr, "%5d | %s\n      | %*s^\n", d.line, d.source_line, d.col - 1, "");
  }
  /* The summary line of errors not shown, if any, is the last line of the full message. */
  const char *all = nde_model_errmsg(m);
  const char *more = strstr(all, " more error");
  if (more) {
    while (more > all && more[-1] != '\n') more--;
    fprintf(stderr, "nde: %s", more);
  }
  return nde_cli_input_exit(st);
}

int nde_cli_load_model(const char *path, nde_model **out) {
  nde_status st = nde_model_load_file(path, out, NULL);
  if (st == NDE_OK) return 0;
  int rc = nde_cli_report_model(*out, st);
  nde_model_destroy(out);
  return rc;
}

const char **nde_cli_column_names(const nde_model *m, int observables) {
  const int n = nde_model_state_dim(m), no = observables ? nde_model_n_observables(m) : 0;
  const char **names = calloc((size_t)(n + no) + 1, sizeof *names);
  if (!names) return NULL;
  for (int j = 0; j < n; j++) names[j] = nde_model_component_name(m, j);
  for (int j = 0; j < no; j++) names[n + j] = nde_model_observable_name(m, j);
  return names;
}

const char **nde_cli_driver_names(const nde_model *m) {
  const int mi = nde_model_n_inputs(m), ndc = nde_model_n_data_consts(m);
  const char **names = calloc((size_t)(mi + ndc) + 1, sizeof *names);
  if (!names) return NULL;
  for (int i = 0; i < mi; i++) {
    nde_model_input_info ii;
    nde_model_get_input(m, i, &ii);
    names[i] = ii.name;
  }
  for (int i = 0; i < nde_model_n_consts(m); i++) {
    nde_model_const_info ci;
    nde_model_get_const(m, i, &ci);
    if (ci.from_data) names[mi + ci.column] = ci.name;
  }
  return names;
}

int nde_cli_open_data(const char *path, const nde_model *m, nde_data **out) {
  nde_error err;
  return nde_data_open_for(path, m, out, &err) == NDE_OK ? 0 : nde_cli_fail(&err, 1);
}

int nde_cli_write_text(const char *path, const char *text, size_t len) {
  nde_error err;
  const nde_status st = nde_write_file(path, text, len, &err);
  if (st == NDE_OK) return 0;
  nde_cli_error("%s", err.msg);
  return NDE_EXIT_IO;
}

/* The file part of "FILE.h5:/group". */
static char *file_part(const char *path) {
  nde_str s = NDE_STR_INIT;
  struct stat sb;
  const char *sel = stat(path, &sb) == 0 ? NULL : strstr(path, ":/");
  nde_str_add(&s, path, sel ? (size_t)(sel - path) : strlen(path));
  return nde_str_take(&s);
}

int nde_cli_check_output(const char *option, const char *out, const char *const *inputs) {
  if (!out || !*out) {
    nde_cli_error("%s: the output file name is empty (expected a path)", option);
    return NDE_EXIT_INPUT;
  }
  for (int i = 0; inputs && inputs[i]; i++) {
    char *f = file_part(inputs[i]);
    const int same = f && nde_path_same_file(f, out);
    nde_free(f);
    if (same) {
      nde_cli_error("%s: is also an input (%s); writing it would destroy the input (expected "
                    "another file for %s)",
                    out, inputs[i], option);
      return NDE_EXIT_INPUT;
    }
  }
  /* The target must be writable now, not after the work is done (the writer's own checks:
   * directory exists and is writable, the file system is not read-only, an existing target is a
   * regular file). */
  nde_error err;
  if (nde_writer_check_target(out, &err) != NDE_OK) {
    nde_cli_error("%s (for %s)", err.msg, option);
    return NDE_EXIT_IO;
  }
  return 0;
}

/* Calls item(ctx, name, value) for each NAME=VALUE of a comma-separated list; a name may appear
 * once.  Errors name the option. */
static int parse_list(const char *opt, const char *spec,
                      int (*item)(void *ctx, const char *name, double v), void *ctx) {
  nde_str names = NDE_STR_INIT; /* the names seen, each followed by a NUL */
  int rc = 0, count = 0;
  const char *p = spec;
  while (!rc && *p) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    count++;
    if (!eq || eq == p) {
      nde_cli_error("%s: expected NAME=VALUE items separated by commas, got '%.*s'", opt,
                    (int)len, p);
      rc = NDE_EXIT_INPUT;
      break;
    }
    nde_str name = NDE_STR_INIT, val = NDE_STR_INIT;
    size_t nl = (size_t)(eq - p);
    while (nl > 0 && p[nl - 1] == ' ') nl--;
    const char *nb = p;
    while (*nb == ' ' && nb < eq) nb++, nl--;
    nde_str_add(&name, nb, nl);
    nde_str_add(&val, eq + 1, len - (size_t)(eq - p) - 1);
    if (name.failed || val.failed) {
      nde_cli_error("out of memory");
      rc = NDE_EXIT_IO;
    } else {
      for (size_t at = 0; at < names.len && !rc; at += strlen(names.data + at) + 1)
        if (!strcmp(names.data + at, name.data)) {
          nde_cli_error("%s: %s is given twice (expected each name once)", opt, name.data);
          rc = NDE_EXIT_INPUT;
        }
      char *end;
      errno = 0;
      const double v = strtod(val.data ? val.data : "", &end);
      if (!rc && (!val.data || end == val.data || *end || !isfinite(v) ||
                  (errno && errno != ERANGE))) {
        nde_cli_error("%s: %s: expected a finite number, got '%s'", opt, name.data,
                      val.data ? val.data : "");
        rc = NDE_EXIT_INPUT;
      }
      if (!rc) rc = item(ctx, name.data, v);
      nde_str_add(&names, name.data, name.len + 1);
    }
    nde_str_release(&name);
    nde_str_release(&val);
    p += len;
    if (*p == ',') p++;
  }
  if (!rc && !count) {
    nde_cli_error("%s: expected NAME=VALUE items separated by commas, got nothing", opt);
    rc = NDE_EXIT_INPUT;
  }
  nde_str_release(&names);
  return rc;
}

typedef struct assign {
  const char *opt;
  const nde_model *m;
  double *dest;
  int n_series; /* per-series parameters: the value goes to every series */
} assign;

static void list_names(const nde_model *m, int params, nde_str *s) {
  const int n = params ? nde_model_n_params(m) : nde_model_state_dim(m);
  for (int i = 0; i < n; i++) {
    nde_model_param_info p;
    if (params) nde_model_get_param(m, i, &p);
    nde_str_addf(s, "%s%s", i ? ", " : "", params ? p.name : nde_model_component_name(m, i));
  }
}

static int set_state(void *vctx, const char *name, double v) {
  assign *c = vctx;
  const int j = nde_model_find_component(c->m, name);
  if (j < 0) {
    nde_str s = NDE_STR_INIT;
    list_names(c->m, 0, &s);
    nde_cli_error("%s: '%s' is not a state component of %s (expected one of %s)", c->opt, name,
                  nde_model_filename(c->m), s.data ? s.data : "");
    nde_str_release(&s);
    return NDE_EXIT_INPUT;
  }
  c->dest[j] = v;
  return 0;
}

static int set_param(void *vctx, const char *name, double v) {
  assign *c = vctx;
  const int i = nde_model_find_param(c->m, name);
  if (i < 0) {
    nde_str s = NDE_STR_INIT;
    list_names(c->m, 1, &s);
    if (nde_model_n_params(c->m) == 0)
      nde_cli_error("%s: '%s' is not a parameter of %s (it declares no parameters)", c->opt, name,
                    nde_model_filename(c->m));
    else
      nde_cli_error("%s: '%s' is not a parameter of %s (expected one of %s)", c->opt, name,
                    nde_model_filename(c->m), s.data ? s.data : "");
    nde_str_release(&s);
    return NDE_EXIT_INPUT;
  }
  nde_model_param_info p;
  nde_model_get_param(c->m, i, &p);
  if (!p.learnable) {
    nde_cli_error("%s: %s is fixed in %s (line %d) and cannot be overridden (expected a learnable "
                  "parameter; remove '(fixed)' there to vary it)",
                  c->opt, name, nde_model_filename(c->m), p.line);
    return NDE_EXIT_INPUT;
  }
  nde_status st = NDE_OK;
  if (p.per_series)
    for (int s = 0; s < c->n_series && st == NDE_OK; s++)
      st = nde_model_set_param_series(c->m, i, s, v, c->dest);
  else
    st = nde_model_set_param(c->m, i, v, c->dest);
  if (st != NDE_OK) {
    char b[NDE_NUM_MAX], lo[NDE_NUM_MAX], hi[NDE_NUM_MAX];
    if (p.bounded)
      nde_cli_error("%s: %s = %s is outside its bounds (expected a value in (%s, %s))", c->opt,
                    name, nde_num_str(v, b), nde_num_str(p.lo, lo), nde_num_str(p.hi, hi));
    else
      nde_cli_error("%s: %s = %s is outside its domain (expected a %s value)", c->opt, name,
                    nde_num_str(v, b), p.positive ? "positive" : "valid");
    return NDE_EXIT_INPUT;
  }
  return 0;
}

/* A state component or an observable: the column j of n + n_observables. */
static int set_column(void *vctx, const char *name, double v) {
  assign *c = vctx;
  const int n = nde_model_state_dim(c->m), no = nde_model_n_observables(c->m);
  int j = nde_model_find_component(c->m, name);
  for (int i = 0; j < 0 && i < no; i++)
    if (strcmp(nde_model_observable_name(c->m, i), name) == 0) j = n + i;
  if (j < 0) {
    nde_str s = NDE_STR_INIT;
    list_names(c->m, 0, &s);
    for (int i = 0; i < no; i++) nde_str_addf(&s, ", %s", nde_model_observable_name(c->m, i));
    nde_cli_error("%s: '%s' is not a state component%s of %s (expected one of %s)", c->opt, name,
                  no ? " or observable" : "", nde_model_filename(c->m), s.data ? s.data : "");
    nde_str_release(&s);
    return NDE_EXIT_INPUT;
  }
  c->dest[j] = v;
  return 0;
}

int nde_cli_parse_state(const char *opt, const char *spec, const nde_model *m, double *u) {
  assign c = {opt, m, u, 1};
  return parse_list(opt, spec, set_state, &c);
}

int nde_cli_parse_params(const char *opt, const char *spec, const nde_model *m, int n_series,
                         double *theta) {
  assign c = {opt, m, theta, n_series};
  return parse_list(opt, spec, set_param, &c);
}

int nde_cli_read_theta(const char *opt, const char *path, const nde_model *m, int n_series,
                       double *theta) {
  nde_error err;
  const nde_status st = nde_read_params(path, m, n_series, theta, &err);
  if (st == NDE_OK) return 0;
  nde_cli_error("%s: %s", opt, err.msg);
  return nde_cli_input_exit(st);
}

int nde_cli_start_theta(const nde_model *m, uint64_t seed, int n_series, const char *init,
                        const char *param, double *theta) {
  int rc = 0;
  nde_model_init_theta_full(m, seed, n_series, theta);
  if (init && (rc = nde_cli_read_theta("--init", init, m, n_series, theta))) return rc;
  if (param && (rc = nde_cli_parse_params("--param", param, m, n_series, theta))) return rc;
  return 0;
}

char *nde_cli_command_line(int argc, char **argv) {
  nde_str s = NDE_STR_INIT;
  nde_str_adds(&s, "nde");
  for (int i = 0; i < argc; i++) nde_str_addf(&s, " %s", argv[i]);
  return nde_str_take(&s);
}

int nde_cli_ends_with(const char *s, const char *suffix) {
  /* File suffixes: ".CSV" is ".csv" (as Python's Trajectory.save reads them). */
  const size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

int nde_cli_check_plot(const char *path) {
  if (!path || nde_cli_ends_with(path, ".svg") || nde_cli_ends_with(path, ".png") ||
      nde_cli_ends_with(path, ".pdf"))
    return 0;
  nde_cli_error("--plot: '%s' must end in .svg, .png or .pdf", path);
  return NDE_EXIT_INPUT;
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

int nde_cli_parse_noise(const char *spec, const nde_model *m, double *sd) {
  const int n = nde_model_state_dim(m) + nde_model_n_observables(m);
  char *end;
  const double v = strtod(spec, &end);
  if (end != spec && !*end) {
    if (!(v > 0) || !isfinite(v)) {
      nde_cli_error("--noise-std: expected a standard deviation > 0, got '%s'", spec);
      return NDE_EXIT_INPUT;
    }
    for (int j = 0; j < n; j++) sd[j] = v;
    return 0;
  }
  for (int j = 0; j < n; j++) sd[j] = NAN;
  assign c = {"--noise-std", m, sd, 1};
  int rc = parse_list("--noise-std", spec, set_column, &c);
  const int ns = nde_model_state_dim(m);
  for (int j = 0; !rc && j < n; j++)
    if (!isnan(sd[j]) && !(sd[j] > 0)) {
      nde_cli_error("--noise-std: %s: expected a standard deviation > 0, got %g",
                    j < ns ? nde_model_component_name(m, j) : nde_model_observable_name(m, j - ns),
                    sd[j]);
      rc = NDE_EXIT_INPUT;
    }
  return rc;
}
