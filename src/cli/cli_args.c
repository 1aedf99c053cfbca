/* Option parsing for every subcommand: a table of options whose destinations hold the library's
 * defaults, strict numbers with ranges checked against their type, and a help that prints each
 * option's default and range from the table itself. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The default of an option as text ("" when there is none to show). */
static void default_text(const nde_arg *a, char *buf, size_t len) {
  char num[NDE_NUM_MAX];
  buf[0] = '\0';
  if (a->flags & NDE_ARG_NODEFAULT) return;
  switch (a->kind) {
    case NDE_ARG_STR: {
      const char *s = *(const char *const *)a->dest;
      if (s) snprintf(buf, len, "%s", s);
      break;
    }
    case NDE_ARG_DOUBLE: snprintf(buf, len, "%s", nde_num_str(*(const double *)a->dest, num)); break;
    case NDE_ARG_INT: snprintf(buf, len, "%d", *(const int *)a->dest); break;
    case NDE_ARG_LONG: snprintf(buf, len, "%ld", *(const long *)a->dest); break;
    case NDE_ARG_U64: snprintf(buf, len, "%llu", (unsigned long long)*(const uint64_t *)a->dest); break;
    case NDE_ARG_FLAG: break;
  }
}

static void range_text(const nde_arg *a, char *buf, size_t len) {
  char lo[NDE_NUM_MAX], hi[NDE_NUM_MAX];
  buf[0] = '\0';
  if (a->kind == NDE_ARG_FLAG || a->kind == NDE_ARG_STR) return;
  nde_num_str(a->lo, lo);
  nde_num_str(a->hi, hi);
  snprintf(buf, len, "%s%s, %s%s", a->flags & NDE_ARG_GT ? "(" : "[", lo, hi,
           a->flags & NDE_ARG_LT ? ")" : "]");
}

static void print_help(const char *usage, const nde_arg *opts, int n_opts) {
  printf("usage: %s\n\noptions:\n", usage);
  for (int i = 0; i < n_opts; i++) {
    char left[96], def[256], rng[96];
    const nde_arg *a = &opts[i];
    if (a->kind == NDE_ARG_FLAG) snprintf(left, sizeof left, "%s", a->name);
    else snprintf(left, sizeof left, "%s %s", a->name, a->meta ? a->meta : "X");
    default_text(a, def, sizeof def);
    range_text(a, rng, sizeof rng);
    printf("  %-28s %s", left, a->help);
    if (def[0] || rng[0]) {
      printf(" (");
      if (def[0]) printf("default %s", def);
      if (rng[0]) printf("%s%s", def[0] ? ", in " : "in ", rng);
      printf(")");
    }
    printf("\n");
  }
}

static int out_of_range(const nde_arg *a, const char *v) {
  char rng[96];
  range_text(a, rng, sizeof rng);
  const char *what = a->kind == NDE_ARG_DOUBLE ? "a number" : "a whole number";
  nde_cli_error("%s: expected %s in %s, got '%s'", a->name, what, rng, v);
  return NDE_EXIT_INPUT;
}

/* Whether d lies in a's range (the bounds as the help prints them). */
static int in_range(const nde_arg *a, double d) {
  return (a->flags & NDE_ARG_GT ? d > a->lo : d >= a->lo) &&
         (a->flags & NDE_ARG_LT ? d < a->hi : d <= a->hi);
}

/* A whole number: decimal digits, or any number with an integral value (1e3, 2.0) up to 2^53,
 * where doubles are still exact. */
int nde_cli_whole_number(const char *v, long long *out) {
  char *end;
  errno = 0;
  long long l = strtoll(v, &end, 10);
  if (end != v && !*end && errno != ERANGE) {
    *out = l;
    return 1;
  }
  errno = 0;
  double d = strtod(v, &end);
  if (end == v || *end || !isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
    return 0;
  *out = (long long)d;
  return 1;
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
      /* ERANGE with a finite result is an underflow (a subnormal number): accepted. */
      if (end == v || *end || !isfinite(d) || (errno && errno != ERANGE)) {
        nde_cli_error("%s: expected a number, got '%s'", a->name, v);
        return NDE_EXIT_INPUT;
      }
      if (!in_range(a, d)) return out_of_range(a, v);
      *(double *)a->dest = d;
      return 0;
    }
    case NDE_ARG_INT:
    case NDE_ARG_LONG:
    case NDE_ARG_U64: {
      long long l;
      if (!nde_cli_whole_number(v, &l)) {
        /* A number out of range is said so, whatever its form. */
        double d = strtod(v, &end);
        if (end != v && !*end && (!isfinite(d) || !in_range(a, d))) return out_of_range(a, v);
        nde_cli_error("%s: expected a whole number, got '%s'", a->name, v);
        return NDE_EXIT_INPUT;
      }
      if (!in_range(a, (double)l)) return out_of_range(a, v);
      if (a->kind == NDE_ARG_INT) *(int *)a->dest = (int)l;
      else if (a->kind == NDE_ARG_LONG) *(long *)a->dest = (long)l;
      else *(uint64_t *)a->dest = (uint64_t)l;
      return 0;
    }
    case NDE_ARG_FLAG:
      break;
  }
  return NDE_EXIT_INTERNAL;
}

nde_arg *nde_cli_opt(nde_arg *opts, int n_opts, const char *name) {
  for (int k = 0; k < n_opts; k++)
    if (!strcmp(opts[k].name, name)) return &opts[k];
  return NULL;
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
    nde_arg *a = NULL;
    const char *eq = NULL;
    if (!strcmp(s, "-o")) {
      a = nde_cli_opt(opts, n_opts, "--out");
      if (!a) {
        nde_cli_error("option -o is not used by %s (see %s --help)", argv[0], argv[0]);
        return NDE_EXIT_INPUT;
      }
    } else if (s[0] == '-' && s[1] == '-' && s[2]) {
      eq = strchr(s, '=');
      const size_t len = eq ? (size_t)(eq - s) : strlen(s);
      for (int k = 0; k < n_opts && !a; k++)
        if (strlen(opts[k].name) == len && !strncmp(opts[k].name, s, len)) a = &opts[k];
      if (!a) {
        nde_cli_error("unknown option '%.*s' (see %s --help)", (int)len, s, argv[0]);
        return NDE_EXIT_INPUT;
      }
    } else if (s[0] == '-' && s[1] && !(s[1] >= '0' && s[1] <= '9') && s[1] != '.') {
      nde_cli_error("unknown option '%s' (see %s --help)", s, argv[0]);
      return NDE_EXIT_INPUT;
    }
    if (a) {
      if (a->seen) {
        nde_cli_error("option %s given twice (expected it once)", a->name);
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

/* ---- the solver and gradient block ---- */

static char solver_help[512], grad_help[256];

static void join_names(const char *const *names, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; names[i] && k + 1 < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%s", i ? ", " : "", names[i]);
}

void nde_cli_solver_args(nde_arg *rows, nde_solver_opts *so) {
  char names[400];
  join_names(nde_solver_method_names(), names, sizeof names);
  snprintf(solver_help, sizeof solver_help, "integrator: %s", names);
  const nde_arg r[NDE_CLI_N_SOLVER_ARGS] = {
      NDE_STR("--solver", &so->method, "NAME", solver_help),
      NDE_NUM("--dt", NDE_ARG_DOUBLE, &so->dt, "H",
              "fixed step size, the last step of an interval shortened (default: "
              "--steps-per-interval)", 0, 1e300, NDE_ARG_GT | NDE_ARG_NODEFAULT),
      NDE_NUM("--steps-per-interval", NDE_ARG_INT, &so->steps_per_interval, "N",
              "equal fixed steps between output times", 1, 1e9, 0),
      NDE_NUM("--rtol", NDE_ARG_DOUBLE, &so->rtol, "R", "relative tolerance of adaptive solvers",
              1e-15, 0.5, 0),
      NDE_NUM("--atol", NDE_ARG_DOUBLE, &so->atol, "A", "absolute tolerance of adaptive solvers",
              0, 1e300, 0),
      NDE_NUM("--h0", NDE_ARG_DOUBLE, &so->h0, "H", "first step of adaptive solvers (0: automatic)",
              0, 1e300, 0),
      NDE_NUM("--max-steps", NDE_ARG_LONG, &so->max_steps, "N", "step budget of one solve", 1,
              1e15, 0),
  };
  memcpy(rows, r, sizeof r);
}

void nde_cli_grad_arg(nde_arg *row, nde_grad_opts *go) {
  char names[200];
  join_names(nde_grad_method_names(), names, sizeof names);
  snprintf(grad_help, sizeof grad_help, "gradient method: %s", names);
  const nde_arg r = NDE_STR("--grad", &go->method, "METHOD", grad_help);
  *row = r;
}

/* An option the method does not read is refused, not ignored: a tolerance given to a
 * fixed-step method (or a step to an adaptive one) would change nothing the user expects. */
int nde_cli_check_solver_reads(nde_arg *opts, int n_opts, const char *method) {
  const nde_solver_method_info *mi = nde_solver_method_find(method);
  static const char *const fixed_only[] = {"--dt", "--steps-per-interval"},
                           *adaptive_only[] = {"--rtol", "--atol", "--h0"};
  for (int i = 0; mi && i < (mi->adaptive ? 2 : 3); i++) {
    const char *name = mi->adaptive ? fixed_only[i] : adaptive_only[i];
    const nde_arg *a = nde_cli_opt(opts, n_opts, name);
    if (!a || !a->seen) continue;
    if (mi->adaptive)
      nde_cli_error("%s: the solver %s chooses its own steps (expected --rtol and --atol for its "
                    "accuracy, or a fixed-step solver such as rk4 for given steps)",
                    name, method);
    else
      nde_cli_error("%s: the solver %s takes fixed steps and reads no tolerance (expected --dt or "
                    "--steps-per-interval for its accuracy, or an adaptive solver: dopri5, "
                    "cvode-adams, cvode-bdf)",
                    name, method);
    return NDE_EXIT_INPUT;
  }
  return 0;
}

int nde_cli_check_solver(nde_arg *opts, int n_opts, nde_solver_opts *so, nde_grad_opts *go) {
  nde_arg *dt = nde_cli_opt(opts, n_opts, "--dt"), *spi = nde_cli_opt(opts, n_opts, "--steps-per-interval");
  if (dt && spi && dt->seen && spi->seen) {
    nde_cli_error("--dt and --steps-per-interval both given (expected at most one)");
    return NDE_EXIT_INPUT;
  }
  /* The registries name the valid methods (no method: the caller checks it later). */
  if (so->method && !nde_solver_method_known(so->method)) {
    char names[400];
    join_names(nde_solver_method_names(), names, sizeof names);
    nde_cli_error("--solver: unknown method '%s' (expected one of %s)", so->method, names);
    return NDE_EXIT_INPUT;
  }
  if (so->method && nde_cli_check_solver_reads(opts, n_opts, so->method)) return NDE_EXIT_INPUT;
  if (go) {
    int known = 0;
    for (const char *const *m = nde_grad_method_names(); *m; m++) known |= !strcmp(*m, go->method);
    if (!known) {
      char names[200];
      join_names(nde_grad_method_names(), names, sizeof names);
      nde_cli_error("--grad: unknown method '%s' (expected one of %s)", go->method, names);
      return NDE_EXIT_INPUT;
    }
  }
  return 0;
}

void nde_cli_note_inexact_grad(const nde_solver_opts *so, const nde_grad_opts *go) {
  /* A gradient method that approximates the continuous adjoint, chosen for a fixed-step solve,
   * has an error of the order of the steps' own: say so, and what is exact. */
  const nde_grad_method_info *gm = nde_grad_method_find(go->method);
  const nde_solver_method_info *sm = nde_solver_method_find(so->method);
  if (gm && sm && !gm->exact && !sm->adaptive)
    fprintf(stderr,
            "nde: note: --grad %s with the fixed-step --solver %s approximates the gradient with "
            "an error of the order of the steps' (order %d); --grad discrete is exact for it\n",
            gm->name, sm->name, sm->order);
}

void nde_cli_note_unfinished(const char *path, const nde_result *r) {
  /* A forecast, discovery or error bars of a fit that failed at its start are those of the
   * starting values: never silently (they were, with exit 0). */
  const nde_fit_status s = nde_result_status(r);
  if (s == NDE_FIT_DONE || s == NDE_FIT_EARLY_STOP) return;
  if (s == NDE_FIT_FAILED || s == NDE_FIT_DIVERGED)
    fprintf(stderr,
            "nde: note: %s holds a fit that ended '%s' after %ld iterations: its parameters are "
            "%s, not a finished fit's (nde inspect %s says what stopped it)\n",
            path, nde_fit_status_str(s), nde_result_iterations(r),
            nde_result_iterations(r) == 0 ? "the starting values" : "the last good ones", path);
  else
    fprintf(stderr,
            "nde: note: %s holds an unfinished fit (status '%s', %ld iterations): its parameters "
            "are those so far (nde fit ... --resume %s continues it)\n",
            path, nde_fit_status_str(s), nde_result_iterations(r), path);
}

int nde_cli_group_name_ok(const char *s) {
  return s && *s && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
         strcmp(s, "t") != 0 && strcmp(s, "y") != 0;
}
