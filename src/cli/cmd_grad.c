/* nde grad MODEL.nde DATA.h5: the loss of the model against the data at given parameters and its
 * gradient, printed as "loss V" and "grad_norm V" lines (and with --repeat N the median time of
 * one gradient), for checking gradient methods against each other and against other tools. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "nde/train.h"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int nde_cmd_grad(int argc, char **argv) {
  const char *init = NULL, *out = NULL, *loss = "mean";
  nde_cli_solve_args sa = nde_cli_solve_args_default();
  long seed = 1, repeat = 0;
  nde_arg opts[] = {
      NDE_CLI_SOLVE_ARGS(sa),
      {"--init", NDE_ARG_STR, &init, "FILE.h5", "parameters from /params/theta of a file", 0},
      {"--seed", NDE_ARG_LONG, &seed, "N", "seed of the initial parameters without --init (1)", 0},
      {"--loss", NDE_ARG_STR, &loss, "mean|sum", "reduction of the squared error (mean)", 0},
      {"--repeat", NDE_ARG_LONG, &repeat, "N", "time N gradients and print the median", 0},
      {"--out", NDE_ARG_STR, &out, "FILE.h5", "save /grad, /params/theta and the loss", 0},
  };
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse("nde grad MODEL.nde DATA.h5[:/GROUP] [options]", argc, argv, opts,
                         (int)(sizeof opts / sizeof *opts), pos, 2, 2, &n_pos);
  if (rc >= 0) return rc;
  if (strcmp(loss, "mean") && strcmp(loss, "sum")) {
    nde_cli_error("--loss: expected mean or sum, got '%s'", loss);
    return NDE_EXIT_INPUT;
  }
  nde_solver_opts so;
  nde_grad_opts go;
  rc = nde_cli_solve_opts(&sa, &so, &go);
  if (!rc) rc = nde_cli_check_long("--seed", seed, 0);
  if (!rc) rc = nde_cli_check_long("--repeat", repeat, 0);
  if (rc) return rc;
  nde_model *model = NULL;
  nde_data *data = NULL;
  nde_rhs *rhs = NULL;
  nde_fit *fit = NULL;
  nde_fit_series *series = NULL;
  double *u0s = NULL, *theta = NULL, *g = NULL, *times = NULL;
  rc = nde_cli_load_model(pos[0], &model);
  if (rc) goto done;
  rc = nde_cli_open_data(pos[1], model, &data);
  if (rc) goto done;
  const size_t n_theta = nde_model_n_theta(model), n_traj = nde_data_n_traj(data);
  theta = calloc(n_theta + 1, sizeof *theta);
  if (!theta) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  rc = nde_cli_series(pos[1], model, data, &series, &u0s);
  if (!rc) rc = nde_cli_theta(init, model, pos[0], (uint64_t)seed, theta);
  if (rc) goto done;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.loss_sum = !strcmp(loss, "sum");
  rc = nde_cli_make_fit(model, pos[0], &so, &go, &fo, (int)n_traj, series, &rhs, &fit);
  if (rc) goto done;
  g = calloc(n_theta + 1, sizeof *g);
  times = calloc((size_t)repeat + 1, sizeof *times);
  if (!g || !times) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  double L;
  nde_fit_info info;
  nde_status st = nde_fit_eval(fit, theta, 0, NULL, &L, g, &info);
  if (st != NDE_OK) {
    nde_cli_error("%s", nde_fit_errmsg(fit));
    rc = nde_cli_exit_code(st);
    goto done;
  }
  if (info.stop.reason != NDE_REASON_NONE) {
    char msg[512];
    nde_cli_stop_message(msg, sizeof msg, sa.solver, &info.stop);
    nde_cli_error("%s", msg);
    rc = NDE_EXIT_NUMERIC;
    goto done;
  }
  double gn = 0;
  for (size_t i = 0; i < n_theta; i++) gn += g[i] * g[i];
  printf("loss %.17g\ngrad_norm %.17g\n", L, sqrt(gn));
  if (repeat > 0) {
    for (long i = 0; i < repeat; i++) {
      const double t0 = nde_cli_now();
      nde_fit_eval(fit, theta, 0, NULL, &L, g, NULL);
      times[i] = nde_cli_now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    printf("time_per_grad_s %.6e\n", times[repeat / 2]);
  }
  if (out) {
    nde_error err;
    nde_writer *w = NULL;
    size_t dims[1] = {n_theta};
    st = nde_writer_create(out, &w, &err);
    if (st != NDE_OK) {
      nde_cli_error("%s", err.msg);
      rc = nde_cli_exit_code(st);
      goto done;
    }
    if ((st = nde_writer_put_doubles(w, "/grad", 1, dims, g)) != NDE_OK ||
        (st = nde_writer_put_doubles(w, "/params/theta", 1, dims, theta)) != NDE_OK ||
        (st = nde_writer_set_attr_double(w, "/", "loss", L)) != NDE_OK ||
        (st = nde_writer_set_attr_string(w, "/", "format", "nde-grad")) != NDE_OK ||
        (st = nde_writer_set_attr_string(w, "/", "grad_method", sa.grad)) != NDE_OK ||
        (st = nde_writer_commit(w)) != NDE_OK) {
      nde_cli_error("%s", nde_writer_errmsg(w));
      nde_writer_destroy(&w);
      rc = nde_cli_exit_code(st);
      goto done;
    }
    nde_writer_destroy(&w);
  }
  rc = NDE_EXIT_OK;
done:
  nde_fit_destroy(&fit);
  nde_rhs_destroy(&rhs);
  nde_data_destroy(&data);
  nde_model_destroy(&model);
  free(series);
  free(u0s);
  free(theta);
  free(g);
  free(times);
  return rc;
}
