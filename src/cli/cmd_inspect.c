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
#include "fit_report.h"
#include "cli_unc.h"

#define USAGE "nde inspect [--list] FILE.h5"

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
  const double *noise = NULL, *sigma = NULL;
  int noise_differs = 0, sigma_differs = 0;
  for (size_t k = 0; k < nt; k++) {
    const nde_traj *tr = nde_data_traj(d, k);
    printf("series %s: ", tr->name);
    describe_spacing(tr);
    printf("; %zu of %zu state%s observed, %zu value%s observed, %zu missing (NaN)\n",
           tr->n_cols, ns, ns == 1 ? "" : "s", tr->n_obs, tr->n_obs == 1 ? "" : "s", tr->n_nan);
    if (tr->n_inputs) {
      printf("  measured inputs:");
      for (size_t i = 0; i < tr->n_inputs; i++) printf("%s %s", i ? "," : "", tr->input_names[i]);
      printf(" (%zu sample%s on [%.10g, %.10g])\n", tr->n_u, tr->n_u == 1 ? "" : "s", tr->u_t[0],
             tr->u_t[tr->n_u - 1]);
    }
    if (tr->n_consts) {
      char b[NDE_NUM_MAX];
      printf("  constants:");
      for (size_t i = 0; i < tr->n_consts; i++)
        printf("%s %s = %s", i ? "," : "", tr->const_names[i], nde_num_str(tr->consts[i], b));
      printf("\n");
    }
    if (tr->sigma) {
      if (!sigma) sigma = tr->sigma;
      else
        for (size_t j = 0; j < ns; j++)
          if (memcmp(&sigma[j], &tr->sigma[j], sizeof(double)) != 0) sigma_differs = 1;
    }
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
  if (noise) printf(" %12s", "noise std");
  printf(sigma ? " %12s\n" : "\n", "sigma");
  for (size_t j = 0; j < ns; j++) {
    printf("%-12s %9zu %8zu %12.6g %12.6g %12.6g %12.6g", nde_data_state_name(d, j), s[j].n_obs,
           nan[j], s[j].mean, s[j].std, s[j].min, s[j].max);
    if (noise) printf(" %12.6g", noise[j]);
    if (sigma) printf(" %12.6g", sigma[j]);
    printf("\n");
  }
  if (sigma)
    printf("sigma: the known measurement noise of each column, which weighs the loss (attribute "
           "sigma of /y%s)\n", sigma_differs ? "; it differs between series, the first "
                                               "series' is shown" : "");
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
    nde_cli_print_attrs(r, g, root ? "  " : "    ");
  }
  if (strcmp(nde_data_traj(d, 0)->name, "/")) {
    size_t n_attr = 0;
    char **an = NULL;
    if (nde_reader_attr_names(r, "/", &n_attr, &an) == NDE_OK && n_attr) {
      printf("\nfile attributes:\n");
      nde_cli_print_attrs(r, "/", "  ");
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
  /* A checkpoint of a running fit has no outcome yet (its message is empty): say what it is
   * rather than "status running: " and nothing. */
  const char *msg = nde_result_message(res);
  printf("%s: result of nde fit, status %s: %s\n", path, nde_fit_status_str(nde_result_status(res)),
         msg && *msg ? msg
                     : nde_result_status(res) == NDE_FIT_RUNNING
                         ? "a checkpoint of a fit that was still running (or was killed); nde fit "
                           "... --resume continues it"
                         : "(no message recorded)");
  printf("  model %s: %d state component%s, %zu learnable values\n", nde_model_filename(m),
         nde_model_state_dim(m), nde_model_state_dim(m) == 1 ? "" : "s", nde_result_n_theta(res));
  printf("  %ld iterations in %.3g s; kept %s iterate (iteration %ld), trajectory loss %s",
         nde_result_iterations(res), nde_result_seconds(res), k.is_best ? "the best-scored" : "the last",
         k.iteration, nde_num_str(k.loss, b));
  printf(" (last iterate %s)\n", nde_num_str(k.last_loss, b));
  printf("parameters:\n");
  nde_cli_print_params(res);
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
  nde_cli_print_text_lines("  | ", nde_model_source(m), 6);
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
  nde_cli_listing L = {0};
  st = nde_reader_visit(r, nde_cli_listing_collect, &L);
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
    nde_cli_print_contents(r, &L);
    code = NDE_EXIT_OK;
  } else if (series_root || (n_top > 0 && n_series == n_top)) {
    code = describe_data(path, r);
    if (code == NDE_EXIT_OK && list) {
      printf("\n");
      nde_cli_print_contents(r, &L);
    }
  } else {
    printf("%s: HDF5 file, neither nde time-series data (no /t and /y at the root or in its "
           "groups) nor a result of nde fit (no format attribute 'nde-fit')\n",
           path);
    if (L.n == 0) printf("contents: empty\n");
    else nde_cli_print_contents(r, &L);
    code = NDE_EXIT_OK;
  }
done:
  nde_result_destroy(&res);
  nde_cli_listing_free(&L);
  nde_reader_destroy(&r);
  return code;
}
