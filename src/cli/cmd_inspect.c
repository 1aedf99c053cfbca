/* nde inspect FILE.h5: say in words what an HDF5 file holds.  A time-series file (docs/data-format.md)
 * is summarised per series and per state (counts, missing values, mean/std/min/max, recorded noise)
 * with its provenance; a result file (/params/theta) by its attributes, parameters, loss history
 * and contents; any other HDF5 file by a listing of its groups and datasets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_sim.h"
#include "nde/data.h"

#define USAGE "nde inspect [--list] FILE.h5"

/* Scalar attributes shown wherever they are found (the reader reads attributes by name). */
static const char *const known_attrs[] = {
    "created_by", "status", "reason", "message", "command_line", "model_file", "init", "solver",
    "solver_step", "method", "dt", "steps_per_interval", "rtol", "atol", "seed", "noise",
    "parameters", "initial_state", "optim", "lr", "iterations", "final_loss", "loss", "time_s",
    "threads", "nde_version", "hdf5_version", "sundials_version", "openblas_version",
    "description", "units", NULL};

typedef struct object {
  char *path;
  nde_h5_kind kind;
  char type[24];
  int rank;
  size_t dims[NDE_DATA_MAX_RANK];
  int n_attrs;
} object;

typedef struct listing {
  object *o;
  size_t n, cap;
  int nomem;
} listing;

static int collect(void *ctx, const nde_h5_object *obj) {
  listing *L = ctx;
  if (L->n == L->cap) {
    size_t cap = L->cap ? 2 * L->cap : 64;
    object *g = realloc(L->o, cap * sizeof *g);
    if (!g) {
      L->nomem = 1;
      return 1;
    }
    L->o = g;
    L->cap = cap;
  }
  object *o = &L->o[L->n];
  if (!(o->path = strdup(obj->path))) {
    L->nomem = 1;
    return 1;
  }
  o->kind = obj->kind;
  snprintf(o->type, sizeof o->type, "%s", obj->type ? obj->type : "");
  o->rank = obj->rank;
  memcpy(o->dims, obj->dims, sizeof o->dims);
  o->n_attrs = obj->n_attrs;
  L->n++;
  return 0;
}

static void listing_free(listing *L) {
  for (size_t i = 0; i < L->n; i++) free(L->o[i].path);
  free(L->o);
}

static const object *find(const listing *L, const char *path) {
  for (size_t i = 0; i < L->n; i++)
    if (!strcmp(L->o[i].path, path)) return &L->o[i];
  return NULL;
}

static int is_numeric(const object *o) {
  return o->kind == NDE_H5_DATASET &&
         (!strncmp(o->type, "float", 5) || !strncmp(o->type, "int", 3) ||
          !strncmp(o->type, "uint", 4));
}

static size_t n_elems(const object *o) {
  size_t n = 1;
  for (int k = 0; k < o->rank; k++) n *= o->dims[k];
  return n;
}

static void print_shape(const object *o) {
  if (o->rank == 0) {
    printf("%s scalar", o->type);
    return;
  }
  printf("%s [", o->type);
  for (int k = 0; k < o->rank; k++) printf("%s%zu", k ? ", " : "", o->dims[k]);
  printf("]");
}

/* The first line of text (at most width characters) and how many lines there are. */
static void print_first_line(const char *text, int width) {
  size_t len = strcspn(text, "\n");
  int lines = 0;
  for (const char *p = text; *p; p++) lines += *p == '\n';
  if (*text && text[strlen(text) - 1] != '\n') lines++;
  printf("\"%.*s%s\"", (int)(len > (size_t)width ? (size_t)width : len), text,
         len > (size_t)width ? "..." : "");
  if (lines > 1) printf(" (%d lines)", lines);
}

static void print_text_lines(const char *indent, const char *text, int max_lines) {
  int shown = 0;
  const char *p = text;
  while (*p && shown < max_lines) {
    size_t len = strcspn(p, "\n");
    printf("%s%.*s\n", indent, (int)len, p);
    shown++;
    p += len;
    if (*p == '\n') p++;
  }
  if (*p) {
    int rest = 0;
    for (const char *q = p; *q; q++) rest += *q == '\n';
    if (p[strlen(p) - 1] != '\n') rest++;
    printf("%s... (%d more line%s)\n", indent, rest, rest == 1 ? "" : "s");
  }
}

/* Print the known scalar attributes of obj, one per line; returns how many were found. */
static int print_attrs(nde_reader *r, const char *obj, const char *indent) {
  int found = 0;
  char b[NDE_CLI_NUM_MAX];
  for (int i = 0; known_attrs[i]; i++) {
    const char *name = known_attrs[i];
    if (!nde_reader_has_attr(r, obj, name)) continue;
    char *s = NULL;
    double d;
    int64_t k;
    if (nde_reader_get_attr_string(r, obj, name, &s) == NDE_OK) {
      if (strchr(s, '\n')) {
        printf("%s%s: ", indent, name);
        print_first_line(s, 72);
        printf("\n");
      } else {
        printf("%s%s: %s\n", indent, name, s);
      }
      free(s);
    } else if (nde_reader_get_attr_int64(r, obj, name, &k) == NDE_OK) {
      printf("%s%s: %lld\n", indent, name, (long long)k);
    } else if (nde_reader_get_attr_double(r, obj, name, &d) == NDE_OK) {
      printf("%s%s: %s\n", indent, name, nde_cli_num(d, b));
    } else {
      printf("%s%s: (not a scalar)\n", indent, name);
    }
    found++;
  }
  return found;
}

/* One line per group and dataset, with small values shown. */
static void print_contents(nde_reader *r, const listing *L) {
  char b[NDE_CLI_NUM_MAX];
  printf("contents:\n");
  for (size_t i = 0; i < L->n; i++) {
    const object *o = &L->o[i];
    int depth = 0;
    for (const char *p = o->path + 1; *p; p++) depth += *p == '/';
    const char *base = strrchr(o->path, '/') + 1;
    printf("  %*s%s", 2 * depth, "", base);
    if (o->kind == NDE_H5_GROUP) {
      printf("/\n");
    } else if (o->kind == NDE_H5_DATASET) {
      printf("  ");
      print_shape(o);
      size_t n = n_elems(o);
      if (is_numeric(o) && n >= 1 && n <= 6) {
        double v[6];
        if (nde_reader_get_doubles(r, o->path, n, v) == NDE_OK) {
          printf(" = ");
          if (o->rank) printf("[");
          for (size_t k = 0; k < n; k++) printf("%s%s", k ? ", " : "", nde_cli_num(v[k], b));
          if (o->rank) printf("]");
        }
      } else if (!strcmp(o->type, "string") && o->rank == 0) {
        char *s = NULL;
        if (nde_reader_get_string(r, o->path, &s) == NDE_OK) {
          printf(" = ");
          print_first_line(s, 60);
          free(s);
        }
      } else if (!strcmp(o->type, "string") && o->rank == 1 && n <= 12) {
        size_t ns;
        char **strs = NULL;
        if (nde_reader_get_strings(r, o->path, &ns, &strs) == NDE_OK) {
          printf(" =");
          for (size_t k = 0; k < ns; k++) printf(" %s", strs[k]);
          free(strs);
        }
      }
      printf("\n");
    } else {
      printf("  (other object)\n");
    }
    if (o->n_attrs > 0) {
      char indent[64];
      snprintf(indent, sizeof indent, "  %*s  @", 2 * depth, "");
      int found = print_attrs(r, o->path, indent);
      if (found < o->n_attrs)
        printf("%s(%d other attribute%s)\n", indent, o->n_attrs - found,
               o->n_attrs - found == 1 ? "" : "s");
    }
  }
}

/* ---- time-series files ---- */

static void describe_spacing(const nde_traj *tr) {
  char b0[NDE_CLI_NUM_MAX], b1[NDE_CLI_NUM_MAX];
  printf("%zu time%s", tr->n, tr->n == 1 ? "" : "s");
  if (tr->n == 1) {
    printf(" at t = %s", nde_cli_num(tr->t[0], b0));
    return;
  }
  printf(" on [%s, %s], ", nde_cli_num(tr->t[0], b0), nde_cli_num(tr->t[tr->n - 1], b1));
  double h = (tr->t[tr->n - 1] - tr->t[0]) / (double)(tr->n - 1), lo = INFINITY, hi = -INFINITY;
  for (size_t i = 1; i < tr->n; i++) {
    double d = tr->t[i] - tr->t[i - 1];
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
  }
  /* Uniform within round-off of the times themselves. */
  double tol = 1e-9 * fmax(fabs(tr->t[0]), fabs(tr->t[tr->n - 1])) + 1e-12 * h;
  if (hi - lo <= tol + 1e-9 * h)
    printf("uniform spacing %.10g", h);
  else
    printf("non-uniform spacing from %.6g to %.6g", lo, hi);
}

static int describe_data(const char *path, nde_reader *r) {
  nde_data *d = NULL;
  nde_error err;
  nde_data_opts o = nde_data_opts_default();
  nde_status st = nde_data_open(path, 0, NULL, &o, &d, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_input_exit(st);
  }
  const size_t nt = nde_data_n_traj(d), ns = nde_data_n_state(d);
  printf("%s: time-series data, %zu series, %zu state%s (", path, nt, ns, ns == 1 ? "" : "s");
  for (size_t j = 0; j < ns; j++) printf("%s%s", j ? ", " : "", nde_data_state_name(d, j));
  printf(")\n");

  size_t *nan = calloc(ns, sizeof *nan);
  if (!nan) {
    nde_data_destroy(&d);
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  const double *noise = NULL;
  int noise_differs = 0;
  for (size_t k = 0; k < nt; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    printf("series %s: ", tr->name);
    describe_spacing(tr);
    printf("; %zu of %zu state%s observed, %zu value%s observed, %zu missing (NaN)\n",
           tr->n_cols, ns, ns == 1 ? "" : "s", tr->n_obs, tr->n_obs == 1 ? "" : "s", tr->n_nan);
    for (size_t j = 0; j < ns; j++) {
      if (tr->col[j] < 0) continue;
      for (size_t i = 0; i < tr->n; i++) nan[j] += isnan(tr->y[i * ns + j]);
    }
    if (tr->noise_std) {
      if (!noise)
        noise = tr->noise_std;
      else
        for (size_t j = 0; j < ns; j++)
          if (memcmp(&noise[j], &tr->noise_std[j], sizeof(double)) != 0) noise_differs = 1;
    }
  }
  const nde_state_stats *s = nde_data_stats(d);
  printf("\n%-12s %9s %8s %12s %12s %12s %12s", "state", "observed", "missing", "mean", "std",
         "min", "max");
  printf(noise ? " %12s\n" : "\n", "noise std");
  for (size_t j = 0; j < ns; j++) {
    printf("%-12s %9zu %8zu %12.6g %12.6g %12.6g %12.6g", nde_data_state_name(d, j), s[j].n_obs,
           nan[j], s[j].mean, s[j].std, s[j].min, s[j].max);
    if (noise) printf(" %12.6g", noise[j]);
    printf("\n");
  }
  if (noise)
    printf("noise std: the standard deviation of the Gaussian noise added to each state (from "
           "attribute noise_std%s)\n", noise_differs ? "; it differs between series, the first "
                                                       "series' is shown" : "");
  free(nan);

  /* Provenance: scalar attributes of the root (or of each series group of a batch). */
  int shown_header = 0;
  for (size_t k = 0; k < nt; k++) {
    const char *g = nde_data_traj(d, k)->name;
    const int root = g[0] == '/' && g[1] == '\0';
    if (k > 0 && root) continue;
    int any = 0;
    for (int i = 0; known_attrs[i]; i++) any |= nde_reader_has_attr(r, g, known_attrs[i]);
    any |= nde_reader_has_attr(r, g, "model_source");
    if (!any) continue;
    if (!shown_header) printf("\nprovenance:\n");
    shown_header = 1;
    if (!root) printf("  series %s:\n", g);
    print_attrs(r, g, root ? "  " : "    ");
    char *src = NULL;
    if (nde_reader_has_attr(r, g, "model_source") &&
        nde_reader_get_attr_string(r, g, "model_source", &src) == NDE_OK) {
      printf("%smodel source:\n", root ? "  " : "    ");
      print_text_lines(root ? "    | " : "      | ", src, 6);
      free(src);
    }
  }
  if (strcmp(nde_data_traj(d, 0)->name, "/") && nde_reader_has_attr(r, "/", "command_line")) {
    printf("\nfile attributes:\n");
    print_attrs(r, "/", "  ");
  }
  nde_data_destroy(&d);
  return NDE_EXIT_OK;
}

/* ---- result files ---- */

static void describe_result(const char *path, nde_reader *r, const listing *L) {
  char b[NDE_CLI_NUM_MAX];
  const object *th = find(L, "/params/theta");
  printf("%s: result file, /params/theta holds %zu parameter value%s\n", path, n_elems(th),
         n_elems(th) == 1 ? "" : "s");
  print_attrs(r, "/", "  ");

  /* Parameters by name: scalars under /params/values. */
  int header = 0;
  for (size_t i = 0; i < L->n; i++) {
    const object *o = &L->o[i];
    if (strncmp(o->path, "/params/values/", 15) || strchr(o->path + 15, '/') || !is_numeric(o) ||
        n_elems(o) != 1)
      continue;
    double v;
    if (nde_reader_get_doubles(r, o->path, 1, &v) != NDE_OK) continue;
    if (!header) printf("parameters:\n");
    header = 1;
    printf("  %s = %s\n", o->path + 15, nde_cli_num(v, b));
  }

  /* Loss history: the last entry of /train/history (or its loss column/dataset). */
  static const char *const hist[] = {"/train/history/loss", "/train/history", "/train/loss",
                                     "/history/loss", "/history", NULL};
  for (int h = 0; hist[h]; h++) {
    const object *o = find(L, hist[h]);
    if (!o || !is_numeric(o) || o->rank < 1 || o->rank > 2 || o->dims[0] == 0) continue;
    size_t n = n_elems(o), rows = o->dims[0];
    double *v = malloc(n * sizeof *v);
    if (v && nde_reader_get_doubles(r, o->path, n, v) == NDE_OK) {
      size_t last = o->rank == 1 ? rows - 1 : (rows - 1) * o->dims[1];
      printf("loss history (%s): %zu entr%s, first %s", o->path, rows, rows == 1 ? "y" : "ies",
             nde_cli_num(v[0], b));
      printf(", final %s\n", nde_cli_num(v[last], b));
    }
    free(v);
    break;
  }

  /* The model the result belongs to: first lines of its source. */
  static const char *const src_paths[] = {"/model/source", "/model_source", "/model", NULL};
  for (int k = 0; src_paths[k]; k++) {
    const object *o = find(L, src_paths[k]);
    char *s = NULL;
    if (!o || o->kind != NDE_H5_DATASET || strcmp(o->type, "string") || o->rank != 0) continue;
    if (nde_reader_get_string(r, o->path, &s) == NDE_OK) {
      printf("model source (%s):\n", o->path);
      print_text_lines("  | ", s, 6);
      free(s);
    }
    break;
  }
  printf("\n");
  print_contents(r, L);
}

int nde_cmd_inspect(int argc, char **argv) {
  int list = 0;
  nde_arg opts[] = {
      {"--list", NDE_ARG_FLAG, &list, NULL, "also list every group and dataset of a data file", 0},
  };
  const char *pos[1];
  int n_pos;
  int code = nde_cli_parse(USAGE, argc, argv, opts, 1, pos, 1, 1, &n_pos);
  if (code >= 0) return code;
  const char *path = pos[0];

  nde_reader *r = NULL;
  nde_error err;
  nde_status st = nde_reader_open(path, &r, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s", err.msg);
    return nde_cli_input_exit(st);
  }
  listing L = {0};
  st = nde_reader_visit(r, collect, &L);
  if (st != NDE_OK || L.nomem) {
    nde_cli_error("%s", L.nomem ? "out of memory" : nde_reader_errmsg(r));
    code = L.nomem ? NDE_EXIT_IO : nde_cli_input_exit(st);
    goto done;
  }

  const object *th = find(&L, "/params/theta");
  int series_root = find(&L, "/t") || find(&L, "/y");
  /* A batch: every entry of the root is a group holding t or y. */
  int n_top = 0, n_series = 0;
  for (size_t i = 0; i < L.n; i++) {
    const char *p = L.o[i].path;
    if (strchr(p + 1, '/')) continue;
    n_top++;
    char tp[1024], yp[1024];
    snprintf(tp, sizeof tp, "%s/t", p);
    snprintf(yp, sizeof yp, "%s/y", p);
    n_series += L.o[i].kind == NDE_H5_GROUP && (find(&L, tp) || find(&L, yp));
  }
  if (th && th->kind == NDE_H5_DATASET) {
    describe_result(path, r, &L);
    code = NDE_EXIT_OK;
  } else if (series_root || (n_top > 0 && n_series == n_top)) {
    code = describe_data(path, r);
    if (code == NDE_EXIT_OK && list) {
      printf("\n");
      print_contents(r, &L);
    }
  } else {
    printf("%s: HDF5 file, neither nde time-series data (no /t and /y at the root or in its "
           "groups) nor an nde result (no /params/theta)\n",
           path);
    if (L.n == 0)
      printf("contents: empty\n");
    else
      print_contents(r, &L);
    code = NDE_EXIT_OK;
  }
done:
  listing_free(&L);
  nde_reader_destroy(&r);
  return code;
}
