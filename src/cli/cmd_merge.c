/* nde merge -o BATCH.h5 DATA.h5[:/G] ...: several time-series files (one experiment each, e.g.
 * made by nde simulate with different inputs and parameters) into one batch file whose groups are
 * the experiments, so that one fit sees all of them.  Every series keeps its observations and
 * their names, noise_std and sigma, its measured inputs, and the scalar attributes of its group
 * (constants from data and provenance). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define USAGE "nde merge -o BATCH.h5 DATA.h5[:/GROUP] ... [--names NAME,...]"
#define MAX_FILES 4096

/* The group name of a series: the given name, its own group, or the file's name stem. */
static char *group_name(const char *given, const char *path, const nde_traj *tr) {
  nde_str s = NDE_STR_INIT;
  if (given) {
    nde_str_adds(&s, given);
  } else if (strcmp(tr->name, "/") != 0) {
    nde_str_adds(&s, tr->name + 1);
  } else {
    const char *sel = strstr(path, ":/");
    const char *end = sel ? sel : path + strlen(path);
    const char *b = end;
    while (b > path && b[-1] != '/') b--;
    const char *dot = end;
    for (const char *p = b; p < end; p++)
      if (*p == '.') dot = p;
    nde_str_add(&s, b, (size_t)((dot > b ? dot : end) - b));
  }
  return nde_str_take(&s);
}

/* Copy every scalar attribute of group g of the reader to group dst. */
static nde_status copy_attrs(nde_reader *r, const char *g, nde_writer *w, const char *dst) {
  size_t n = 0;
  char **names = NULL;
  if (nde_reader_attr_names(r, g, &n, &names) != NDE_OK) return NDE_OK;
  nde_status st = NDE_OK;
  for (size_t i = 0; i < n && st == NDE_OK; i++) {
    char *s = NULL;
    int64_t k;
    double d;
    if (nde_reader_get_attr_string(r, g, names[i], &s) == NDE_OK) {
      st = nde_writer_set_attr_string(w, dst, names[i], s);
      free(s);
    } else if (nde_reader_get_attr_int64(r, g, names[i], &k) == NDE_OK) {
      st = nde_writer_set_attr_int64(w, dst, names[i], k);
    } else if (nde_reader_get_attr_double(r, g, names[i], &d) == NDE_OK) {
      st = nde_writer_set_attr_double(w, dst, names[i], d);
    }
  }
  nde_free(names);
  return st;
}

/* Write every series of one input file into w, as groups named from names[*used...]. */
static int merge_file(nde_writer *w, const char *path, const char *const *names, int n_names,
                      int *used, char ***groups, int *n_groups) {
  nde_data *d = NULL;
  nde_reader *r = NULL;
  nde_error err;
  const nde_data_opts o = nde_data_opts_default();
  nde_status st = nde_data_open(path, 0, NULL, &o, &d, &err);
  if (st == NDE_OK) st = nde_reader_open(nde_data_file(d), &r, &err);
  if (st != NDE_OK) {
    nde_data_destroy(&d);
    return nde_cli_fail(&err, 1);
  }
  int rc = 0;
  const size_t ns = nde_data_n_state(d);
  const char **cn = calloc(ns + 1, sizeof *cn);
  double *y = NULL, *noise = calloc(ns + 1, sizeof *noise), *sigma = calloc(ns + 1, sizeof *sigma);
  if (!cn || !noise || !sigma) goto nomem;
  for (size_t k = 0; k < nde_data_n_traj(d) && !rc; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    if (names && *used >= n_names) {
      nde_cli_error("--names: %d names for more series (expected one name per series)", n_names);
      rc = NDE_EXIT_INPUT;
      break;
    }
    char *g = group_name(names ? names[(*used)++] : NULL, path, tr);
    if (!g) goto nomem;
    if (!nde_cli_group_name_ok(g)) {
      /* A stem such as t.h5's: as a root group, /t or /y would make the batch one series. */
      nde_cli_error("%s: series %s would be group /%s, which cannot name a series in a batch "
                    "(expected " NDE_CLI_GROUP_NAME_RULE ": give --names)", path, tr->name, g);
      nde_free(g);
      rc = NDE_EXIT_INPUT;
      break;
    }
    for (int i = 0; i < *n_groups && !rc; i++)
      if (!strcmp((*groups)[i], g)) {
        nde_cli_error("%s: series %s would be group /%s, which another series already is "
                      "(expected distinct names: give --names)", path, tr->name, g);
        rc = NDE_EXIT_INPUT;
      }
    char **grown = rc ? NULL : realloc(*groups, (size_t)(*n_groups + 1) * sizeof *grown);
    if (!grown) {
      nde_free(g);
      if (rc) break;
      goto nomem;
    }
    *groups = grown;
    (*groups)[(*n_groups)++] = g;
    /* The columns the series has, in the file's order. */
    size_t nc = 0;
    free(y);
    if (!(y = malloc((tr->n * ns + 1) * sizeof *y))) goto nomem;
    for (size_t j = 0; j < ns; j++) {
      if (tr->col[j] < 0) continue;
      cn[nc] = nde_data_state_name(d, j);
      noise[nc] = tr->noise_std ? tr->noise_std[j] : 0;
      sigma[nc] = tr->sigma ? tr->sigma[j] : 0;
      for (size_t i = 0; i < tr->n; i++) y[i * ns + nc] = tr->y[i * ns + j];
      nc++;
    }
    /* Rows of nc values (compact the rows of ns). */
    for (size_t i = 0; i < tr->n; i++) memmove(y + i * nc, y + i * ns, nc * sizeof *y);
    nde_series s = {tr->n, nc, tr->t, y, cn, tr->noise_std ? noise : NULL};
    nde_series_extra x = {0};
    x.sigma = tr->sigma ? sigma : NULL;
    if (tr->n_inputs) {
      x.m = tr->n_inputs;
      x.n_u = tr->n_u;
      x.u_t = tr->u_t;
      x.u = tr->u;
      x.input_names = tr->input_names;
    }
    nde_str dst = NDE_STR_INIT;
    nde_str_addf(&dst, "/%s", g);
    if (dst.failed) goto nomem;
    st = nde_writer_put_series_ex(w, dst.data, &s, &x);
    if (st == NDE_OK) st = copy_attrs(r, tr->name, w, dst.data);
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, dst.data, "merged_from", path);
    nde_str_release(&dst);
    if (st != NDE_OK) {
      nde_cli_error("%s", nde_writer_errmsg(w));
      rc = nde_cli_exit_code(st);
    }
  }
  goto done;
nomem:
  nde_cli_error("out of memory");
  rc = NDE_EXIT_IO;
done:
  free(cn);
  free(y);
  free(noise);
  free(sigma);
  nde_reader_destroy(&r);
  nde_data_destroy(&d);
  return rc;
}

int nde_cmd_merge(int argc, char **argv) {
  const char *out = NULL, *names_spec = NULL;
  int quiet = 0;
  nde_arg opts[] = {
      NDE_STR("--out", &out, "BATCH.h5", "the batch file (also -o); required"),
      NDE_STR("--names", &names_spec, "NAME,...",
              "group names, one per series in order (default: each file's name, or its groups')"),
      NDE_FLAG("--quiet", &quiet, "print nothing on success"),
  };
  static const char *pos[MAX_FILES];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1,
                         MAX_FILES, &n_pos);
  if (rc >= 0) return rc;
  if (!out) {
    nde_cli_error("an output file is required (-o BATCH.h5)");
    return NDE_EXIT_INPUT;
  }
  const char **inputs = calloc((size_t)n_pos + 1, sizeof *inputs);
  char *buf = NULL;
  const char **names = NULL;
  int n_names = 0, used = 0, n_groups = 0;
  char **groups = NULL;
  nde_writer *w = NULL;
  nde_error err;
  if (!inputs) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  memcpy(inputs, pos, (size_t)n_pos * sizeof *inputs);
  if ((rc = nde_cli_check_output("--out", out, inputs))) goto done;
  if ((rc = nde_cli_split_names("--names", names_spec, &buf, &names, &n_names))) goto done;
  for (int i = 0; names && i < n_names; i++)
    if (!nde_cli_group_name_ok(names[i])) {
      nde_cli_error("--names: '%s' is not a group name (expected " NDE_CLI_GROUP_NAME_RULE ")",
                    names[i]);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
  if (nde_writer_create(out, &w, &err) != NDE_OK) {
    rc = nde_cli_fail(&err, 0);
    goto done;
  }
  for (int i = 0; i < n_pos && !rc; i++)
    rc = merge_file(w, pos[i], names, n_names, &used, &groups, &n_groups);
  if (!rc && names && used != n_names) {
    nde_cli_error("--names: %d names for %d series (expected one name per series)", n_names, used);
    rc = NDE_EXIT_INPUT;
  }
  if (!rc) {
    char *cmd = nde_cli_command_line(argc, argv);
    nde_status st = nde_writer_set_attr_string(w, "/", "created_by", "nde merge");
    if (st == NDE_OK) st = nde_writer_set_attr_string(w, "/", "command_line", cmd ? cmd : "nde merge");
    if (st == NDE_OK) st = nde_writer_commit(w);
    nde_free(cmd);
    if (st != NDE_OK) {
      nde_cli_error("%s", nde_writer_errmsg(w));
      rc = nde_cli_exit_code(st);
    }
  }
  if (!rc && !quiet) {
    printf("%s: %d series (", out, n_groups);
    for (int i = 0; i < n_groups; i++) printf("%s/%s", i ? ", " : "", groups[i]);
    printf(")\n");
  }
done:
  nde_writer_destroy(&w);
  for (int i = 0; i < n_groups; i++) nde_free(groups[i]);
  free(groups);
  free(names);
  free(buf);
  free(inputs);
  return rc;
}
