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
#include "cli_common.h"
#include "fit_result.h"

#define USAGE "nde export FIT.h5|MODEL.nde [--c FILE.c] [--latex] [--text] [options]"

int nde_cmd_export(int argc, char **argv) {
  const char *c_path = NULL, *prefix = "nde_model";
  int latex = 0, text = 0, values = 0;
  long seed = 1;
  nde_arg opts[] = {
      {"--c", NDE_ARG_STR, &c_path, "FILE.c", "write the right-hand side as standalone C", 0},
      {"--prefix", NDE_ARG_STR, &prefix, "NAME", "prefix of the C names (default nde_model)", 0},
      {"--latex", NDE_ARG_FLAG, &latex, NULL, "print the equations as LaTeX (aligned)", 0},
      {"--text", NDE_ARG_FLAG, &text, NULL, "print the equations as plain text (the default)", 0},
      {"--values", NDE_ARG_FLAG, &values, NULL, "write parameter values into the equations", 0},
      {"--seed", NDE_ARG_LONG, &seed, "N", "for a .nde file: seed of the nets' initial weights", 0},
  };
  const char *pos[1];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, (int)(sizeof opts / sizeof *opts), pos, 1, 1,
                         &n_pos);
  if (rc >= 0) return rc;
  int ok = isalpha((unsigned char)prefix[0]) || prefix[0] == '_';
  for (const char *c = prefix; *c; c++) ok &= isalnum((unsigned char)*c) || *c == '_';
  if (!ok || strlen(prefix) > 64) {
    nde_cli_error("--prefix: '%s' is not a C identifier (expected letters, digits, _)", prefix);
    return NDE_EXIT_INPUT;
  }
  if (seed < 0) {
    nde_cli_error("--seed: expected a non-negative integer, got %ld", seed);
    return NDE_EXIT_INPUT;
  }
  if (!c_path && !latex) text = 1;
  /* A result file, or a model file with its declared parameters and seeded initial weights. */
  nde_fit_result r;
  memset(&r, 0, sizeof r);
  const size_t len = strlen(pos[0]);
  if (len > 4 && strcmp(pos[0] + len - 4, ".nde") == 0) {
    rc = nde_cli_load_model(pos[0], &r.model);
    if (rc) return rc;
    r.n_theta = nde_model_n_theta(r.model);
    r.theta = calloc(r.n_theta + 1, sizeof *r.theta);
    if (!r.theta) {
      nde_fit_result_free(&r);
      nde_cli_error("out of memory");
      return NDE_EXIT_IO;
    }
    nde_model_init_theta(r.model, (uint64_t)seed, r.theta);
  } else {
    rc = nde_fit_result_read(pos[0], 0, &r);
    if (rc) return rc;
  }
  char *s = NULL;
  nde_status st = NDE_OK;
  if (text || latex) {
    st = nde_model_format_equations(r.model, r.theta, latex ? NDE_FORMAT_LATEX : NDE_FORMAT_TEXT,
                                    values, &s);
    if (st == NDE_OK) fputs(s, stdout);
    free(s);
    s = NULL;
    if (st == NDE_OK && text && latex) {
      st = nde_model_format_equations(r.model, r.theta, NDE_FORMAT_TEXT, values, &s);
      if (st == NDE_OK) fputs(s, stdout);
      free(s);
      s = NULL;
    }
  }
  if (st == NDE_OK && c_path) {
    st = nde_model_export_c(r.model, r.theta, prefix, &s);
    if (st == NDE_OK) {
      FILE *f = fopen(c_path, "w");
      size_t n = strlen(s);
      if (!f || fwrite(s, 1, n, f) != n || fclose(f) != 0) {
        nde_cli_error("%s: cannot be written", c_path);
        free(s);
        nde_fit_result_free(&r);
        return NDE_EXIT_IO;
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
  nde_fit_result_free(&r);
  return rc;
}
