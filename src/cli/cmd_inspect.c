/* nde inspect FILE.h5: say in words what an HDF5 file holds.  A time-series file
 * (docs/data-format.md) is summarised per series and per state (counts, missing values,
 * mean/std/min/max, recorded noise) with its provenance; a result file of nde fit is opened
 * through the result layer (status, parameters, settings, series, histories) and listed with
 * every attribute it holds; any other HDF5 file by a listing of its groups and datasets. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_unc.h"

#define USAGE "nde inspect [--list] FILE.h5"

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
  nde_str p = NDE_STR_INIT;
  nde_str_adds(&p, obj->path);
  if (!(o->path = nde_str_take(&p))) {
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
  for (size_t i = 0; i < L->n; i++) nde_free(L->o[i].path);
  free(L->o);
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



/* Every attribute of obj, one per line: strings (first line of long ones), integers, numbers. */
static int print_attrs(nde_reader *r, const char *obj, const char *indent) {
  size_t n = 0;
  char **names = NULL;
  if (nde_reader_attr_names(r, obj, &n, &names) != NDE_OK) return 0;
  char b[NDE_NUM_MAX];
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i];
    char *s = NULL;
    double d;
    int64_t k;
    if (nde_reader_get_attr_string(r, obj, name, &s) == NDE_OK) {
      printf("%s%s: ", indent, name);
      if (strchr(s, '\n')) print_first_line(s, 72);
      else printf("%s", s);
      printf("\n");
      free(s);
    } else if (nde_reader_get_attr_int64(r, obj, name, &k) == NDE_OK) {
      printf("%s%s: %lld\n", indent, name, (long long)k);
    } else if (nde_reader_get_attr_double(r, obj, name, &d) == NDE_OK) {
      printf("%s%s: %s\n", indent, name, nde_num_str(d, b));
    } else {
      printf("%s%s: (not a scalar)\n", indent, name);
    }
  }
  nde_free(names);
  return (int)n;
}

/* One line per group and dataset, with small values and every attribute shown. */
static void print_contents(nde_reader *r, const listing *L) {
  char b[NDE_NUM_MAX];
  printf("contents:\n");
  printf("  /\n");
  print_attrs(r, "/", "    @");
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
      const size_t n = n_elems(o);
      uint64_t w[6];
      if (!strcmp(o->type, "uint64") && n >= 1 && n <= 6 &&
          nde_reader_get_uint64s(r, o->path, n, w) == NDE_OK) {
        printf(" = ");
        if (o->rank) printf("[");
        for (size_t k = 0; k < n; k++) printf("%s%llu", k ? ", " : "", (unsigned long long)w[k]);
        if (o->rank) printf("]");
      } else if (is_numeric(o) && n >= 1 && n <= 6) {
        double v[6];
        if (nde_reader_get_doubles(r, o->path, n, v) == NDE_OK) {
          printf(" = ");
          if (o->rank) printf("[");
          for (size_t k = 0; k < n; k++) printf("%s%s", k ? ", " : "", nde_num_str(v[k], b));
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
      nde_str indent = NDE_STR_INIT;
      nde_str_addf(&indent, "  %*s  @", 2 * depth, "");
      print_attrs(r, o->path, indent.data ? indent.data : "  @");
      nde_str_release(&indent);
    }
  }
}

static void describe_spacing(const nde_traj *tr) {
  char b0[NDE_NUM_MAX], b1[NDE_NUM_MAX];
  printf("%zu time%s", tr->n, tr->n == 1 ? "" : "s");
  if (tr->n == 1) {
    printf(" at t = %s", nde_num_str(tr->t[0], b0));
    return;
  }
  printf(" on [%s, %s], ", nde_num_str(tr->t[0], b0), nde_num_str(tr->t[tr->n - 1], b1));
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
    size_t n_attr = 0;
    char **an = NULL;
    if (nde_reader_attr_names(r, g, &n_attr, &an) != NDE_OK) n_attr = 0;
    nde_free(an);
    if (!n_attr) continue;
    if (!shown_header) printf("\nprovenance:\n");
    shown_header = 1;
    if (!root) printf("  series %s:\n", g);
    print_attrs(r, g, root ? "  " : "    ");
  }
  if (strcmp(nde_data_traj(d, 0)->name, "/")) {
    size_t n_attr = 0;
    char **an = NULL;
    if (nde_reader_attr_names(r, "/", &n_attr, &an) == NDE_OK && n_attr) {
      printf("\nfile attributes:\n");
      print_attrs(r, "/", "  ");
    }
    nde_free(an);
  }
  nde_data_destroy(&d);
  return NDE_EXIT_OK;
}

/* ---- result files ---- */

static void describe_result(const char *path, const nde_result *res) {
  const nde_model *m = nde_result_model(res);
  const nde_result_fit_opts *s = nde_result_settings(res);
  const nde_result_kept k = nde_result_get_kept(res);
  char b[NDE_NUM_MAX];
  printf("%s: result of nde fit, status %s: %s\n", path, nde_fit_status_str(nde_result_status(res)),
         nde_result_message(res));
  printf("  model %s: %d state component%s, %zu learnable values\n", nde_model_filename(m),
         nde_model_state_dim(m), nde_model_state_dim(m) == 1 ? "" : "s", nde_result_n_theta(res));
  printf("  %ld iterations in %.3g s; kept %s iterate (iteration %ld), trajectory loss %s",
         nde_result_iterations(res), nde_result_seconds(res), k.is_best ? "the best-scored" : "the last",
         k.iteration, nde_num_str(k.loss, b));
  printf(" (last iterate %s)\n", nde_num_str(k.last_loss, b));
  printf("parameters:\n");
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    nde_model_get_param(m, i, &pi);
    if (pi.per_series) {
      printf("  %-12s (per series):", pi.name);
      for (int k2 = 0; k2 < nde_result_n_series(res); k2++) {
        nde_result_series se;
        nde_result_get_series(res, k2, &se);
        char unc[300];
        nde_cli_param_unc(res, i, k2, unc, sizeof unc);
        printf("%s%s %s%s", *unc ? "\n    " : " ", se.name,
               nde_num_str(nde_result_param_series(res, i, k2), b), unc);
      }
      printf("\n");
      continue;
    }
    char unc[300] = "";
    if (pi.learnable) nde_cli_param_unc(res, i, -1, unc, sizeof unc);
    printf("  %-12s = %s%s%s\n", pi.name, nde_num_str(nde_result_param(res, i), b),
           pi.learnable ? "" : "  (fixed)", unc);
  }
  for (int i = 0; i < nde_model_n_nets(m); i++) {
    nde_model_net_info ni;
    nde_model_get_net(m, i, &ni);
    printf("  net %-8s %zu weights\n", ni.name, ni.n_params);
  }
  printf("series (%d):\n", nde_result_n_series(res));
  for (int q = 0; q < nde_result_n_series(res) && q < 20; q++) {
    nde_result_series se;
    nde_result_get_series(res, q, &se);
    printf("  %s: %zu times on [%s, ", se.name, se.n_obs, nde_num_str(se.t[0], b));
    printf("%s], fitted initial state", nde_num_str(se.t[se.n_obs - 1], b));
    for (int j = 0; j < nde_model_state_dim(m); j++)
      printf(" %s=%s", nde_model_component_name(m, j), nde_num_str(se.u0[j], b));
    printf("\n");
  }
  if (nde_result_n_series(res) > 20) printf("  ... (%d more)\n", nde_result_n_series(res) - 20);
  nde_cli_print_uncertainty(res);
  nde_cli_print_ensemble(res);
  printf("settings: solver %s, grad %s, schedule %s, seed %llu\n", s->solver.method,
         s->grad.method, s->schedule, (unsigned long long)s->seed);
  const double *h;
  const size_t nh = nde_result_history(res, &h);
  if (nh) printf("loss history: %zu entries, first %s", nh, nde_num_str(h[0], b));
  if (nh) printf(", final %s\n", nde_num_str(h[nh - 1], b));
  printf("model source:\n");
  print_text_lines("  | ", nde_model_source(m), 6);
  printf("\n");
}

int nde_cmd_inspect(int argc, char **argv) {
  int list = 0;
  nde_arg opts[] = {
      NDE_FLAG("--list", &list, "also list every group and dataset of a data file"),
  };
  const char *pos[1];
  int n_pos;
  int code = nde_cli_parse(USAGE, argc, argv, opts, 1, pos, 1, 1, &n_pos);
  if (code >= 0) return code;
  const char *path = pos[0];
  nde_reader *r = NULL;
  nde_result *res = NULL;
  nde_error err;
  nde_status st = nde_reader_open(path, &r, &err);
  if (st != NDE_OK) return nde_cli_fail(&err, 1);
  listing L = {0};
  st = nde_reader_visit(r, collect, &L);
  if (st != NDE_OK || L.nomem) {
    nde_cli_error("%s", L.nomem ? "out of memory" : nde_reader_errmsg(r));
    code = L.nomem ? NDE_EXIT_IO : nde_cli_input_exit(st);
    goto done;
  }
  char *fmt = NULL;
  const int is_result = nde_reader_get_attr_string(r, "/", "format", &fmt) == NDE_OK &&
                        !strcmp(fmt, "nde-fit");
  free(fmt);
  const int series_root = nde_reader_kind(r, "/t") != NDE_H5_NONE ||
                          nde_reader_kind(r, "/y") != NDE_H5_NONE;
  /* A batch: every entry of the root is a group holding t or y. */
  int n_top = 0, n_series = 0;
  for (size_t i = 0; i < L.n; i++) {
    const char *p = L.o[i].path;
    if (strchr(p + 1, '/')) continue;
    n_top++;
    nde_str tp = NDE_STR_INIT, yp = NDE_STR_INIT;
    nde_str_addf(&tp, "%s/t", p);
    nde_str_addf(&yp, "%s/y", p);
    n_series += L.o[i].kind == NDE_H5_GROUP && tp.data && yp.data &&
                (nde_reader_kind(r, tp.data) != NDE_H5_NONE || nde_reader_kind(r, yp.data) != NDE_H5_NONE);
    nde_str_release(&tp);
    nde_str_release(&yp);
  }
  if (is_result) {
    st = nde_result_open(path, &res, &err);
    if (st != NDE_OK) {
      code = nde_cli_fail(&err, 1);
      goto done;
    }
    describe_result(path, res);
    print_contents(r, &L);
    code = NDE_EXIT_OK;
  } else if (series_root || (n_top > 0 && n_series == n_top)) {
    code = describe_data(path, r);
    if (code == NDE_EXIT_OK && list) {
      printf("\n");
      print_contents(r, &L);
    }
  } else {
    printf("%s: HDF5 file, neither nde time-series data (no /t and /y at the root or in its "
           "groups) nor a result of nde fit (no format attribute 'nde-fit')\n",
           path);
    if (L.n == 0) printf("contents: empty\n");
    else print_contents(r, &L);
    code = NDE_EXIT_OK;
  }
done:
  nde_result_destroy(&res);
  listing_free(&L);
  nde_reader_destroy(&r);
  return code;
}
