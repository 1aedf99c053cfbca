/* nde export FIT.h5|MODEL.nde: the learned model outside nde.  --c FILE.c writes a standalone C
 * source of the trained right-hand side (weights and parameter values embedded, a documented
 * int PREFIX_rhs(double t, const double *u, double *du)), so that it runs inside an existing
 * simulator with no nde dependency; --latex and --text print the equations (after discovery, the
 * symbolic model), with the parameter values substituted by --values. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define USAGE "nde export FIT.h5|MODEL.nde [--c FILE.c] [--latex] [--text] [options]"

/* export --c writes f(t, u) alone: a model that reads anything per series (measured inputs,
 * constants from data, per-series parameters) has no value for it there.  Refused before any
 * work, at the first such declaration and naming each kind (path: the file given); 0 when the
 * model has none. */
typedef struct per_series_decl {
  const char *what, *name;
  int line;
} per_series_decl;

static int refuse_series_values(const char *path, const nde_model *m) {
  per_series_decl k[3];
  int n = 0;
  if (nde_model_n_inputs(m) > 0) {
    nde_model_input_info ii;
    nde_model_get_input(m, 0, &ii);
    k[n].what = "the measured input", k[n].name = ii.name, k[n++].line = ii.line;
  }
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    if (!p.per_series) continue;
    k[n].what = "the per-series parameter", k[n].name = p.name, k[n++].line = p.line;
    break;
  }
  for (int i = 0; i < nde_model_n_consts(m); i++) {
    nde_model_const_info c;
    nde_model_get_const(m, i, &c);
    if (!c.from_data) continue;
    k[n].what = "the constant from data", k[n].name = c.name, k[n++].line = c.line;
    break;
  }
  if (n == 0) return 0;
  /* In the order of the file. */
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && k[j].line < k[j - 1].line; j--) {
      per_series_decl tmp = k[j];
      k[j] = k[j - 1];
      k[j - 1] = tmp;
    }
  nde_str s = NDE_STR_INIT;
  nde_str_addf(&s, "%s '%s'", k[0].what, k[0].name);
  for (int i = 1; i < n; i++)
    nde_str_addf(&s, "%s%s '%s' (line %d)", i + 1 < n ? ", " : " and ", k[i].what, k[i].name,
                 k[i].line);
  const int same = !strcmp(path, nde_model_filename(m));
  nde_cli_error("%s%s%s:%d: export --c does not support %s: the exported rhs(t, u, du) has no "
                "series to take %s from (expected a model without measured inputs, per-series "
                "parameters or constants from data; --text and --latex print its equations)",
                same ? "" : path, same ? "" : ": model ", nde_model_filename(m), k[0].line,
                s.data ? s.data : "values per series", n > 1 ? "their values" : "its value");
  nde_str_release(&s);
  return NDE_EXIT_INPUT;
}

/* The equations as the library formats them; for a fit with per-series parameters, followed
 * by their fitted values, one line per series naming it (with --values they replace the
 * library's last line, which only says which parameters are per series). */
static void print_equations(const char *text, const nde_model *m, const nde_result *res,
                            int latex, int values) {
  const int nsp = nde_model_n_series_params(m);
  if (!res || nsp == 0 || nde_result_n_series(res) < 1) {
    fputs(text, stdout);
    return;
  }
  size_t len = strlen(text);
  if (values) {
    size_t start = len > 0 ? len - 1 : 0;
    while (start > 0 && text[start - 1] != '\n') start--;
    if (strstr(text + start, "per series")) len = start;
  }
  fwrite(text, 1, len, stdout);
  const char *c = latex ? "% " : "";
  printf("%s%sper series:\n", c, values ? "where, " : "");
  char b[NDE_NUM_MAX];
  for (int k = 0; k < nde_result_n_series(res); k++) {
    nde_result_series rs;
    if (nde_result_get_series(res, k, &rs) != NDE_OK) continue;
    printf("%s  %s:", c, rs.name);
    for (int i = 0, j = 0; i < nde_model_n_params(m); i++) {
      nde_model_param_info p;
      nde_model_get_param(m, i, &p);
      if (!p.per_series) continue;
      printf("%s %s = %s", j++ ? "," : "", p.name,
             nde_num_str(nde_result_param_series(res, i, k), b));
    }
    printf("\n");
  }
}

int nde_cmd_export(int argc, char **argv) {
  const char *c_path = NULL, *prefix = "nde_model";
  int latex = 0, text = 0, values = 0;
  uint64_t seed = 1;
  nde_arg opts[] = {
      NDE_STR("--c", &c_path, "FILE.c", "write the right-hand side as standalone C"),
      NDE_STR("--prefix", &prefix, "NAME", "prefix of the C names"),
      NDE_FLAG("--latex", &latex, "print the equations as LaTeX (aligned)"),
      NDE_FLAG("--text", &text, "print the equations as plain text (the default)"),
      NDE_FLAG("--values", &values, "write parameter values into the equations"),
      NDE_NUM("--seed", NDE_ARG_U64, &seed, "N", "for a .nde file: seed of the nets' initial weights",
              0, 9007199254740992.0, 0),
  };
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1, 1,
                         &n_pos);
  if (rc >= 0) return rc;
  rc = 0;
  int ok = isalpha((unsigned char)prefix[0]) || prefix[0] == '_';
  for (const char *c = prefix; *c; c++) ok &= isalnum((unsigned char)*c) || *c == '_';
  if (!ok || strlen(prefix) > 64) {
    nde_cli_error("--prefix: '%s' is not a C identifier (expected letters, digits, _)", prefix);
    return NDE_EXIT_INPUT;
  }
  if (!c_path && !latex) text = 1;
  if (c_path) {
    const char *inputs[] = {pos[0], NULL};
    if ((rc = nde_cli_check_output("--c", c_path, inputs))) return rc;
  }
  /* A result file, or a model file with its declared parameters and seeded initial weights. */
  nde_model *model = NULL;
  nde_result *res = NULL;
  double *own_theta = NULL;
  const double *theta;
  const nde_model *m;
  if (nde_cli_ends_with(pos[0], ".nde")) {
    rc = nde_cli_load_model(pos[0], &model);
    if (rc) return rc;
    own_theta = calloc(nde_model_n_theta_full(model, 1) + 1, sizeof *own_theta);
    if (!own_theta) {
      nde_model_destroy(&model);
      nde_cli_error("out of memory");
      return NDE_EXIT_IO;
    }
    nde_model_init_theta_full(model, seed, 1, own_theta);
    theta = own_theta;
    m = model;
  } else {
    nde_error err;
    nde_status rst = nde_result_open(pos[0], &res, &err);
    if (rst != NDE_OK) return nde_cli_fail(&err, 1);
    nde_cli_note_unfinished(pos[0], res);
    theta = nde_result_theta(res);
    m = nde_result_model(res);
  }
  char *s = NULL;
  nde_status st = NDE_OK;
  if (c_path && (rc = refuse_series_values(pos[0], m))) goto done;
  if (text || latex) {
    st = nde_model_format_equations(m, theta, latex ? NDE_FORMAT_LATEX : NDE_FORMAT_TEXT,
                                    values, &s);
    if (st == NDE_OK) print_equations(s, m, res, latex, values);
    free(s);
    s = NULL;
    if (st == NDE_OK && text && latex) {
      st = nde_model_format_equations(m, theta, NDE_FORMAT_TEXT, values, &s);
      if (st == NDE_OK) print_equations(s, m, res, 0, values);
      free(s);
      s = NULL;
    }
  }
  if (st == NDE_OK && c_path) {
    st = nde_model_export_c(m, theta, prefix, &s);
    if (st == NDE_OK) {
      if ((rc = nde_cli_write_text(c_path, s, strlen(s)))) {
        free(s);
        goto done;
      }
      fprintf(stderr, "nde export: wrote %s (int %s_rhs(double t, const double *u, double *du))\n",
              c_path, prefix);
    }
    free(s);
  }
  if (st == NDE_ERR_UNSUPPORTED) {
    /* The one case left after refuse_series_values (include/nde/model.h). */
    nde_cli_error("%s: --c does not support a grad of an expression that itself contains grad "
                  "(expected grad nested at most once; --text and --latex print the equations)",
                  pos[0]);
    rc = NDE_EXIT_INPUT;
  } else if (st != NDE_OK) {
    nde_cli_error("%s: export failed: %s", pos[0], nde_status_str(st));
    rc = nde_cli_exit_code(st);
  }
done:
  nde_result_destroy(&res);
  nde_model_destroy(&model);
  free(own_theta);
  return rc;
}
