/* nde simulate MODEL.nde -o DATA.h5: integrate a model on a time grid (nde_simulate) and write the
 * solution as a time-series file (docs/data-format.md), optionally with Gaussian noise of
 * standard deviation REL * mean(|y_j|) per state column j, as in Rackauckas et al. (2020), with
 * provenance. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sim_write.h"

#define USAGE                                                                            \
  "nde simulate MODEL.nde -o DATA.h5|DATA.csv (--t1 T1 --dt-out H | --t1 T1 --points N | " \
  "--times FILE) [options]"

/* Every name of --columns a state component or an observable of m; else the message, listing
 * the names there are, and 2. */
static int check_columns(const nde_model *m, const char *const *cols, int n_cols) {
  for (int k = 0; k < n_cols; k++) {
    int ok = nde_model_find_component(m, cols[k]) >= 0;
    for (int i = 0; i < nde_model_n_observables(m) && !ok; i++)
      ok = !strcmp(cols[k], nde_model_observable_name(m, i));
    if (ok) continue;
    nde_str s = NDE_STR_INIT;
    const int n = nde_model_state_dim(m), no = nde_model_n_observables(m);
    for (int j = 0; j < n && j < 24; j++)
      nde_str_addf(&s, "%s%s", j ? ", " : "", nde_model_component_name(m, j));
    if (n > 24) nde_str_addf(&s, ", ... (%d state components)", n);
    for (int i = 0; i < no; i++) nde_str_addf(&s, ", %s", nde_model_observable_name(m, i));
    nde_cli_error("--columns: '%s' is neither a state component nor an observable of %s "
                  "(expected one of %s)", cols[k], nde_model_filename(m),
                  s.data ? s.data : "its state components");
    nde_str_release(&s);
    return NDE_EXIT_INPUT;
  }
  return 0;
}

/* Measured inputs (not declared hold) whose samples do not cover the output times [t0, t1]:
 * the message naming --inputs and the input, and 2. */
static int check_input_span(const nde_model *m, const char *path, const nde_cli_inputs *in,
                            double t0, double t1) {
  for (int i = 0; i < nde_model_n_inputs(m) && in->n > 0; i++) {
    nde_model_input_info ii;
    nde_model_get_input(m, i, &ii);
    if (ii.hold || (in->t[0] <= t0 && in->t[in->n - 1] >= t1)) continue;
    char a[NDE_NUM_MAX], b[NDE_NUM_MAX], c[NDE_NUM_MAX], d[NDE_NUM_MAX];
    nde_cli_error("--inputs %s: the integration on [%s, %s] needs the measured input '%s' beyond "
                  "its samples on [%s, %s] (expected inputs that cover it, or the input declared "
                  "hold)", path, nde_num_str(t0, c), nde_num_str(t1, d), ii.name,
                  nde_num_str(in->t[0], a), nde_num_str(in->t[in->n - 1], b));
    return NDE_EXIT_INPUT;
  }
  return 0;
}

int nde_cmd_simulate(int argc, char **argv) {
  nde_sim_opts so = nde_sim_opts_default();
  nde_cli_sim a = {0};
  a.seed = 1;
  const char *times_path = NULL, *u0_spec = NULL, *param = NULL;
  const char *inputs_path = NULL, *const_spec = NULL, *columns = NULL;
  double t0 = 0, t1 = 0, dt_out = 0;
  long points = 0;
  int quiet = 0;
  nde_arg opts[32];
  const nde_arg head[] = {
      NDE_STR("--out", &a.out, "DATA.h5|DATA.csv",
              "output file (also -o); required; CSV (t and the columns only) for a name ending "
              "in .csv, else HDF5"),
      NDE_NUM("--t0", NDE_ARG_DOUBLE, &t0, "T0", "initial time", -1e300, 1e300, 0),
      NDE_NUM("--t1", NDE_ARG_DOUBLE, &t1, "T1", "final time", -1e300, 1e300, NDE_ARG_NODEFAULT),
      NDE_NUM("--dt-out", NDE_ARG_DOUBLE, &dt_out, "H", "output every H from T0 up to T1", 0,
              1e300, NDE_ARG_GT | NDE_ARG_NODEFAULT),
      NDE_NUM("--points", NDE_ARG_LONG, &points, "N", "or N equally spaced outputs on [T0, T1]",
              2, NDE_CLI_MAX_TIMES, NDE_ARG_NODEFAULT),
      NDE_STR("--times", &times_path, "FILE",
              "or the output times: one per line, or /t of an HDF5 file"),
      NDE_STR("--u0", &u0_spec, "x=V,...", "initial state overrides (vector parts as y[1])"),
      NDE_STR("--param", &param, "p=V,...", "parameter values (natural units)"),
      NDE_STR("--init", &a.init, "FIT.h5", "parameters from /params/theta of a result file"),
      NDE_NUM("--seed", NDE_ARG_U64, &so.seed, "N", "seed of the noise and of net init", 0,
              9007199254740992.0, 0),
      NDE_NUM("--noise", NDE_ARG_DOUBLE, &so.noise, "REL",
              "Gaussian noise, std REL x mean(|y|) per column", 0, 1e6, 0),
      NDE_STR("--inputs", &inputs_path, "FILE.csv|DATA.h5[:/G]",
              "the measured inputs (a CSV t,NAME,... or one series of a data file), written "
              "into the output"),
      NDE_STR("--const", &const_spec, "NAME=V,...", "the constants declared (from data)"),
      NDE_STR("--columns", &columns, "NAME,...",
              "what is measured: state components and observables (default every state)"),
      NDE_FLAG("--quiet", &quiet, "print nothing on success"),
  };
  int n = (int)(sizeof head / sizeof *head);
  memcpy(opts, head, sizeof head);
  nde_cli_solver_args(opts + n, &so.solver);
  n += NDE_CLI_N_SOLVER_ARGS;
  const char *pos[1];
  int n_pos;
  int code = nde_cli_parse(USAGE, argc, argv, opts, n, pos, 1, 1, &n_pos);
  if (code >= 0) return code;
  a.model_path = pos[0];
  const int seen_t0 = nde_cli_opt(opts, n, "--t0")->seen, seen_t1 = nde_cli_opt(opts, n, "--t1")->seen;
  const int seen_dt = nde_cli_opt(opts, n, "--dt-out")->seen;
  const int seen_pts = nde_cli_opt(opts, n, "--points")->seen;
  if (!a.out) {
    nde_cli_error("no output file (expected -o DATA.h5 or DATA.csv)");
    return NDE_EXIT_INPUT;
  }
  if (times_path && (seen_t1 || seen_dt || seen_pts || seen_t0)) {
    nde_cli_error("--times: cannot be combined with --t0/--t1/--dt-out/--points (expected one "
                  "way to give the output times)");
    return NDE_EXIT_INPUT;
  }
  if (!times_path) {
    if (!seen_t1) {
      nde_cli_error("no final time (expected --t1 T1 with --dt-out H or --points N, or --times "
                    "FILE)");
      return NDE_EXIT_INPUT;
    }
    if (seen_dt == seen_pts) {
      nde_cli_error("%s (expected exactly one of --dt-out H or --points N)",
                    seen_dt ? "both --dt-out and --points given" : "no output spacing");
      return NDE_EXIT_INPUT;
    }
    if (!(t1 > t0)) {
      nde_cli_error("--t1: expected a final time after t0 = %g, got %g", t0, t1);
      return NDE_EXIT_INPUT;
    }
  }
  if ((code = nde_cli_check_solver(opts, n, &so.solver, NULL))) return code;
  if (nde_cli_opt(opts, n, "--dt")->seen) so.solver.steps_per_interval = 1;
  const char *inputs[] = {pos[0], a.init ? a.init : "", times_path ? times_path : "",
                          inputs_path, NULL};
  if ((code = nde_cli_check_output("--out", a.out, inputs))) return code;

  nde_model *m = NULL;
  double *t = NULL, *theta = NULL, *u0 = NULL, *Y = NULL, *noise_std = NULL, *consts = NULL;
  char *cmd = NULL, *col_buf = NULL;
  const char **cols = NULL;
  nde_cli_inputs in = {0};
  nde_input_series inp = {0};
  long n_t = 0;
  if ((code = nde_cli_load_model(a.model_path, &m))) goto done;
  /* The columns written: named quantities, or every state component. */
  if ((code = nde_cli_split_names("--columns", columns, &col_buf, &cols, &a.n_cols))) goto done;
  if (!columns) {
    free(cols);
    if (!(cols = nde_cli_component_names(m))) goto nomem;
    a.n_cols = nde_model_state_dim(m);
  }
  if (columns && (code = check_columns(m, cols, a.n_cols))) goto done;
  a.cols = cols;
  so.n_columns = columns ? a.n_cols : 0;
  so.columns = cols;
  /* What drives it. */
  if (nde_model_n_inputs(m) > 0 && !inputs_path) {
    nde_cli_error("%s declares measured inputs: give their samples (expected --inputs "
                  "FILE.csv|DATA.h5)", a.model_path);
    code = NDE_EXIT_INPUT;
    goto done;
  }
  if (inputs_path) {
    if ((code = nde_cli_read_inputs("--inputs", inputs_path, m, &in))) goto done;
    inp = (nde_input_series){in.n, in.t, in.u};
    so.inputs = &inp;
  }
  a.inputs = &in;
  if (nde_model_n_data_consts(m) > 0 || const_spec) {
    if (!(consts = calloc((size_t)nde_model_n_data_consts(m) + 1, sizeof *consts))) goto nomem;
    if ((code = nde_cli_parse_consts("--const", const_spec ? const_spec : "", m, consts)))
      goto done;
    so.consts = consts;
    a.consts = consts;
  }
  const int ns = nde_model_state_dim(m), nc = a.n_cols > ns ? a.n_cols : ns;
  const size_t n_theta = nde_model_n_theta_full(m, 1);
  code = times_path ? nde_cli_times_file(times_path, &t, &n_t)
                    : nde_cli_grid_uniform(t0, t1, seen_dt ? dt_out : 0, points, &t, &n_t);
  if (code) goto done;
  if (inputs_path && (code = check_input_span(m, inputs_path, &in, t[0], t[n_t - 1]))) goto done;
  theta = calloc(n_theta + 1, sizeof *theta);
  u0 = calloc((size_t)ns, sizeof *u0);
  noise_std = calloc((size_t)nc, sizeof *noise_std);
  if (!theta || !u0 || !noise_std || n_t > (long)(SIZE_MAX / sizeof(double) / (size_t)nc) ||
      !(Y = malloc((size_t)n_t * (size_t)nc * sizeof *Y))) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
    goto done;
  }
  nde_model_initial_state(m, u0);
  nde_model_init_theta_full(m, so.seed, 1, theta);
  if (a.init && (code = nde_cli_read_theta("--init", a.init, m, 1, theta))) goto done;
  if (u0_spec && (code = nde_cli_parse_state("--u0", u0_spec, m, u0))) goto done;
  if (param && (code = nde_cli_parse_params("--param", param, m, 1, theta))) goto done;
  a.noise = so.noise;
  a.seed = so.seed;
  a.method = so.solver.method;
  nde_error err;
  nde_solve_stats stats;
  nde_status st = nde_simulate(m, theta, u0, (size_t)n_t, t, &so, Y, noise_std, &stats, &err);
  if (st != NDE_OK) {
    /* The columns, inputs and times are checked above: a bad argument left is a solver
     * option; anything else is the model's (a fatal callback). */
    if (st == NDE_ERR_ARG) nde_cli_error("--solver %s: %s", so.solver.method, err.msg);
    else nde_cli_error("%s: %s", a.model_path, err.msg);
    code = nde_cli_exit_code(st);
    goto done;
  }
  if (stats.reason != NDE_REASON_NONE) {
    char msg[600];
    nde_cli_error("simulation stopped: %s",
                  nde_cli_stop_message(so.solver.method, &stats, m, msg, sizeof msg));
    code = NDE_EXIT_NUMERIC;
    goto done;
  }
  /* Values near the largest double can overflow once noise is added: exit 3, nothing written. */
  for (size_t q = 0; q < (size_t)n_t * (size_t)ns; q++)
    if (!isfinite(Y[q])) {
      const int j = (int)(q % (size_t)ns);
      char bt[NDE_NUM_MAX], bs[NDE_NUM_MAX];
      if (so.noise > 0)
        nde_cli_error("%s: the simulated value of %s at t = %s is not finite after noise of "
                      "standard deviation %s (expected finite values: lower --noise)", a.out,
                      nde_model_component_name(m, j), nde_num_str(t[q / (size_t)ns], bt),
                      nde_num_str(noise_std[j], bs));
      else
        nde_cli_error("%s: the simulated value of %s at t = %s is not finite (expected finite "
                      "values)", a.out, nde_model_component_name(m, j),
                      nde_num_str(t[q / (size_t)ns], bt));
      code = NDE_EXIT_NUMERIC;
      goto done;
    }
  char step[96];
  const nde_solver_method_info *mi = nde_solver_method_find(so.solver.method);
  const int fixed = mi && !mi->adaptive;
  if (fixed && so.solver.dt > 0) snprintf(step, sizeof step, "dt %.17g", so.solver.dt);
  else if (fixed)
    snprintf(step, sizeof step, "%d steps per output interval", so.solver.steps_per_interval);
  else snprintf(step, sizeof step, "adaptive, rtol %g, atol %g", so.solver.rtol, so.solver.atol);
  a.solver_step = step;
  cmd = nde_cli_command_line(argc, argv);
  if ((code = nde_cli_sim_write(&a, cmd ? cmd : "nde simulate", m, theta, u0, t, n_t, Y, noise_std)))
    goto done;
  if (!quiet) {
    char b0[NDE_NUM_MAX], b1[NDE_NUM_MAX];
    printf("%s: %ld times on [%s, %s], %d %s%s", a.out, n_t, nde_num_str(t[0], b0),
           nde_num_str(t[n_t - 1], b1), a.n_cols, columns ? "column" : "state",
           a.n_cols == 1 ? "" : "s");
    if (in.n) printf(", %zu input sample%s", in.n, in.n == 1 ? "" : "s");
    if (so.noise > 0) printf(", noise %s of each column's mean", nde_num_str(so.noise, b0));
    else printf(", no noise");
    printf(" (%s, %ld steps)\n", so.solver.method, stats.n_steps);
  }
  goto done;
nomem:
  nde_cli_error("out of memory");
  code = NDE_EXIT_IO;
done:
  nde_cli_inputs_free(&in);
  free(consts);
  free(cols);
  free(col_buf);
  nde_model_destroy(&m);
  nde_free(cmd);
  free(t);
  free(theta);
  free(u0);
  free(Y);
  free(noise_std);
  return code;
}
