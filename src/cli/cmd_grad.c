/* nde grad MODEL.nde DATA.h5: the trajectory loss of the model against the data at given
 * parameters and its gradient (nde_problem_loss), printed as "loss V" and "grad_norm V" lines
 * (and with --repeat N the median time of one gradient), for checking gradient methods against
 * each other and against other tools.  A non-finite loss or gradient is a numerical failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define USAGE "nde grad MODEL.nde DATA.h5[:/GROUP] [options]"

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int save(const char *out, size_t n, const double *g, const double *theta, double L,
                const char *method) {
  nde_error err;
  nde_writer *w = NULL;
  size_t dims[1] = {n};
  nde_status st = nde_writer_create(out, &w, &err);
  if (st != NDE_OK) return nde_cli_fail(&err, 0);
  if ((st = nde_writer_put_doubles(w, "/grad", 1, dims, g)) != NDE_OK ||
      (st = nde_writer_put_doubles(w, "/params/theta", 1, dims, theta)) != NDE_OK ||
      (st = nde_writer_set_attr_double(w, "/", "loss", L)) != NDE_OK ||
      (st = nde_writer_set_attr_string(w, "/", "format", "nde-grad")) != NDE_OK ||
      (st = nde_writer_set_attr_string(w, "/", "grad_method", method)) != NDE_OK ||
      (st = nde_writer_commit(w)) != NDE_OK) {
    nde_cli_error("%s", nde_writer_errmsg(w));
    nde_writer_destroy(&w);
    return nde_cli_exit_code(st);
  }
  nde_writer_destroy(&w);
  return 0;
}

static int predict_series(void *ctx, size_t k, const nde_traj *tr, double *Y, nde_str *why) {
  void **c = ctx;
  (void)tr, (void)why;
  return nde_fit_predict(nde_problem_objective(c[0]), c[1], (int)k, Y) != NDE_OK;
}

/* The message of a loss or gradient that is not finite: which, where and why. */
static int not_finite(nde_problem *p, const nde_model *m, const nde_data *d, double *theta,
                      double L, size_t bad, size_t n_theta, const nde_fit_info *info,
                      const nde_result_fit_opts *fo) {
  nde_str s = NDE_STR_INIT;
  char b[NDE_NUM_MAX], msg[600];
  if (!isfinite(L)) {
    nde_str_addf(&s, "the loss is not finite (%s) at these parameters", nde_num_str(L, b));
    void *ctx[2] = {p, theta};
    nde_str why = NDE_STR_INIT;
    if (nde_cli_explain_loss(m, d, fo->objective.log_space, predict_series, ctx, NULL, &why))
      nde_str_addf(&s, ": %s", why.data);
    else
      nde_str_adds(&s, ": the sum of squared differences overflows");
    nde_str_release(&why);
  } else {
    nde_str_addf(&s, "the gradient is not finite at these parameters");
    for (int i = 0; bad < n_theta && i < nde_model_n_layout(m); i++) {
      nde_model_layout_entry e;
      if (nde_model_get_layout(m, i, &e) == NDE_OK && bad >= e.offset &&
          bad < e.offset + e.length)
        nde_str_addf(&s, " (component %zu of theta, in %s%s)", bad, e.kind == NDE_LAYOUT_NET ?
                     "net " : "parameter ", e.name);
    }
    if (info->backward_stop.reason != NDE_REASON_NONE)
      /* The backward stop's state index is the adjoint's, not a state's: no name. */
      nde_str_addf(&s, ": the backward (adjoint) solve stopped (%s)%s",
                   nde_cli_stop_message(fo->solver.method, &info->backward_stop, NULL, msg,
                                        sizeof msg),
                   fo->grad.method && !strcmp(fo->grad.method, "backsolve")
                       ? "; --grad backsolve recomputes the state by integrating it backward in "
                         "time, which is unstable for a stiff or strongly damped model: use "
                         "--grad auto"
                       : "");
    else
      nde_str_adds(&s, ": the adjoint blew up (check the parameters, the step and the solver)");
  }
  nde_cli_error("%s", s.data ? s.data : "the loss or its gradient is not finite");
  nde_str_release(&s);
  return NDE_EXIT_NUMERIC;
}

int nde_cmd_grad(int argc, char **argv) {
  nde_result_fit_opts fo = nde_result_fit_opts_default();
  const char *init = NULL, *out = NULL, *loss = "mean", *param = NULL;
  long repeat = 0;
  nde_arg opts[32];
  int n = 0;
  nde_cli_solver_args(opts, &fo.solver);
  n += NDE_CLI_N_SOLVER_ARGS;
  nde_cli_grad_arg(opts + n++, &fo.grad);
  const nde_arg more[] = {
      NDE_STR("--init", &init, "FILE.h5", "parameters from /params/theta of a file"),
      NDE_STR("--param", &param, "p=V,...", "parameter values in natural units"),
      NDE_NUM("--seed", NDE_ARG_U64, &fo.seed, "N", "seed of the initial parameters", 0,
              9007199254740992.0, 0),
      NDE_STR("--loss", &loss, "mean|sum", "reduction of the squared error"),
      NDE_NUM("--repeat", NDE_ARG_LONG, &repeat, "N", "time N gradients and print the median", 0,
              1e9, 0),
      NDE_STR("--out", &out, "FILE.h5", "save /grad, /params/theta and the loss"),
  };
  memcpy(opts + n, more, sizeof more);
  n += (int)(sizeof more / sizeof *more);
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, n, pos, 2, 2, &n_pos);
  if (rc >= 0) return rc;
  if (strcmp(loss, "mean") && strcmp(loss, "sum")) {
    nde_cli_error("--loss: expected mean or sum, got '%s'", loss);
    return NDE_EXIT_INPUT;
  }
  if ((rc = nde_cli_check_solver(opts, n, &fo.solver, &fo.grad))) return rc;
  nde_cli_note_inexact_grad(&fo.solver, &fo.grad);
  const char *inputs[] = {pos[0], pos[1], init, NULL};
  if (out && (rc = nde_cli_check_output("--out", out, inputs))) return rc;
  fo.objective.loss_sum = !strcmp(loss, "sum");
  fo.objective.shoot_interval = 0;
  nde_model *model = NULL;
  nde_data *data = NULL;
  nde_problem *p = NULL;
  double *theta = NULL, *g = NULL, *times = NULL;
  nde_error err;
  if ((rc = nde_cli_load_model(pos[0], &model)) || (rc = nde_cli_open_data(pos[1], model, &data)))
    goto done;
  const int n_ser = (int)nde_data_n_traj(data);
  const size_t n_theta = nde_model_n_theta_full(model, n_ser);
  theta = calloc(n_theta + 1, sizeof *theta);
  g = calloc(n_theta + 1, sizeof *g);
  times = calloc((size_t)repeat + 1, sizeof *times);
  if (!theta || !g || !times) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  if ((rc = nde_cli_start_theta(model, fo.seed, n_ser, init, param, theta))) goto done;
  nde_status st = nde_problem_create(model, data, &fo, &p, &err);
  if (st != NDE_OK) {
    rc = nde_cli_fail(&err, 0);
    goto done;
  }
  double L;
  nde_fit_info info;
  st = nde_problem_loss(p, theta, &L, g, &info);
  if (st != NDE_OK) {
    nde_cli_error("%s", nde_problem_errmsg(p));
    rc = nde_cli_exit_code(st);
    goto done;
  }
  if (info.stop.reason != NDE_REASON_NONE) {
    char msg[600];
    nde_cli_error("%s", nde_cli_stop_message(fo.solver.method, &info.stop, model, msg, sizeof msg));
    rc = NDE_EXIT_NUMERIC;
    goto done;
  }
  double gn = 0;
  size_t bad = n_theta;
  for (size_t i = 0; i < n_theta; i++) {
    gn += g[i] * g[i];
    if (!isfinite(g[i]) && bad == n_theta) bad = i;
  }
  /* Nothing is printed or saved unless loss and gradient are finite (exit 3 otherwise). */
  if (!isfinite(L) || bad < n_theta || !isfinite(gn)) {
    rc = not_finite(p, model, data, theta, L, bad, n_theta, &info, &fo);
    goto done;
  }
  printf("loss %.17g\ngrad_norm %.17g\n", L, sqrt(gn));
  if (repeat > 0) {
    for (long i = 0; i < repeat; i++) {
      const double t0 = nde_cli_now();
      nde_problem_loss(p, theta, &L, g, NULL);
      times[i] = nde_cli_now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    printf("time_per_grad_s %.6e\n", times[repeat / 2]);
  }
  if (out && (rc = save(out, n_theta, g, theta, L, fo.grad.method))) goto done;
  rc = NDE_EXIT_OK;
done:
  nde_problem_destroy(&p);
  nde_data_destroy(&data);
  nde_model_destroy(&model);
  free(theta);
  free(g);
  free(times);
  return rc;
}
