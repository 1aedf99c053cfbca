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
    theta = nde_result_theta(res);
    m = nde_result_model(res);
  }
  char *s = NULL;
  nde_status st = NDE_OK;
  if (text || latex) {
    st = nde_model_format_equations(m, theta, latex ? NDE_FORMAT_LATEX : NDE_FORMAT_TEXT,
                                    values, &s);
    if (st == NDE_OK) fputs(s, stdout);
    free(s);
    s = NULL;
    if (st == NDE_OK && text && latex) {
      st = nde_model_format_equations(m, theta, NDE_FORMAT_TEXT, values, &s);
      if (st == NDE_OK) fputs(s, stdout);
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
  if (st != NDE_OK) {
    nde_cli_error("%s: export failed: %s", pos[0], nde_status_str(st));
    rc = nde_cli_exit_code(st);
  }
done:
  nde_result_destroy(&res);
  nde_model_destroy(&model);
  free(own_theta);
  return rc;
}
