/* nde simulate MODEL.nde -o DATA.h5: integrate a model on a time grid (nde_simulate) and write the
 * solution as a time-series file (docs/data-format.md), optionally with Gaussian noise of
 * standard deviation REL * mean(|y_j|) per state column j, as in Rackauckas et al. (2020), with
 * provenance; with --series TABLE.csv, one series per row of the table on the thread pool
 * (nde_simulate_many), written as one batch file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sim_table.h"
#include "sim_write.h"

#define USAGE                                                                            \
  "nde simulate MODEL.nde -o DATA.h5|DATA.csv (--t1 T1 --dt-out H | --t1 T1 --points N | " \
  "--times FILE) [--series TABLE.csv [--threads N]] [options]"

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

/* The inputs in cover the output times [t0, t1] (nde_model_check_input_span); else its message
 * after where (the option and file: "--inputs a.csv"), and 2. */
static int check_input_span(const nde_model *m, const char *where, const nde_cli_inputs *in,
                            double t0, double t1) {
  const nde_input_series s = {in->n, in->t, in->u};
  nde_error err;
  if (nde_model_check_input_span(m, &s, t0, t1, &err) == NDE_OK) return 0;
  nde_cli_error("%s: %s", where, err.msg);
  return NDE_EXIT_INPUT;
}

/* A model that declares measured inputs needs their samples: given (--inputs, or with a table
 * a column inputs of it); else the message, naming the table when there is one, and 2. */
static int check_inputs_given(const nde_model *m, const char *model_path, int given,
                              const char *table) {
  if (nde_model_n_inputs(m) == 0 || given) return 0;
  nde_cli_error("%s declares measured inputs: give their samples (expected --inputs "
                "FILE.csv|DATA.h5%s%s)", model_path, table ? ", or a column inputs in " : "",
                table ? table : "");
  return NDE_EXIT_INPUT;
}

/* Values near the largest double can overflow once noise is added: every value of Y (n_t x K,
 * the columns cols at the times t) finite; else the message after where naming the first that
 * is not, with the standard deviation of its column's noise (noise_std) when noise > 0, and 3. */
static int check_finite(const char *where, const double *Y, size_t n_t, int K,
                        const char *const *cols, const double *t, double noise,
                        const double *noise_std) {
  for (size_t q = 0; q < n_t * (size_t)K; q++) {
    if (isfinite(Y[q])) continue;
    const int j = (int)(q % (size_t)K);
    char bt[NDE_NUM_MAX], bs[NDE_NUM_MAX];
    nde_cli_error("%s: the simulated value of %s at t = %s is not finite%s%s%s", where, cols[j],
                  nde_num_str(t[q / (size_t)K], bt),
                  noise > 0 ? " after noise of standard deviation " : "",
                  noise > 0 ? nde_num_str(noise_std[j], bs) : "",
                  noise > 0 ? " (expected finite values: lower --noise)"
                            : " (expected finite values)");
    return NDE_EXIT_NUMERIC;
  }
  return 0;
}

/* What a simulation of a table of series shares: the options and defaults of the command. */
typedef struct sim_run {
  nde_cli_sim *a;
  nde_model *m;
  nde_sim_opts *so;
  const double *u0, *theta; /* the defaults (--u0, --init, --param) */
  const char *const_spec;   /* --const, defaults for what the table has no column for */
  const char *inputs_path;  /* --inputs (NULL: none); its samples are so->inputs */
  const nde_cli_inputs *in;
  const double *t;
  long n_t;
  int threads, quiet;
  const char *const *outputs_of; /* the inputs the output must not be (NULL-terminated) */
  int n_outputs_of;
  const char *cmd;
} sim_run;

/* The series of the table: read, each driven by its own inputs, simulated on the pool, checked
 * and written as one batch.  0, or the exit code after the message. */
static int run_table(const char *table, const sim_run *R) {
  nde_model *m = R->m;
  const nde_cli_sim *a = R->a;
  const nde_cli_sim_defaults def = {R->u0, R->theta, R->so->seed, R->const_spec};
  nde_cli_sim_table tab;
  int code = nde_cli_sim_table_read(table, m, &def, &tab);
  if (code) return code;
  const int S = tab.n, K = a->n_cols, mi = nde_model_n_inputs(m);
  const size_t ns = (size_t)nde_model_state_dim(m), nth = nde_model_n_theta_full(m, 1);
  const size_t ndc = (size_t)nde_model_n_data_consts(m), NT = (size_t)R->n_t;
  nde_cli_inputs *ins = NULL;  /* the inputs of each distinct file of the table */
  int *which = NULL;           /* per series: its entry of ins, or -1 for --inputs */
  const char **outs_of = NULL;
  nde_sim_series *ser = NULL;
  nde_cli_sim_series *wser = NULL;
  nde_input_series *inp = NULL;
  nde_solve_stats *stats = NULL;
  double *Y = NULL, *noise_std = NULL;
  char **rows = NULL;
  nde_str where = NDE_STR_INIT;
  int n_ins = 0;
  if ((code = check_inputs_given(m, a->model_path, R->inputs_path || tab.inputs_col, table)))
    goto done;
  /* The one check of the output of a table (the command's skips it): writable, and none of the
   * inputs, the files the table names included. */
  outs_of = calloc((size_t)(R->n_outputs_of + S + 1), sizeof *outs_of);
  which = malloc(((size_t)S + 1) * sizeof *which);
  ins = calloc((size_t)S + 1, sizeof *ins);
  inp = calloc((size_t)S + 1, sizeof *inp);
  ser = calloc((size_t)S, sizeof *ser);
  wser = calloc((size_t)S, sizeof *wser);
  stats = calloc((size_t)S, sizeof *stats);
  rows = calloc((size_t)S, sizeof *rows);
  if (!outs_of || !which || !ins || !inp || !ser || !wser || !stats || !rows) goto nomem;
  int n_outs = 0;
  for (int i = 0; i < R->n_outputs_of; i++)
    if (R->outputs_of[i]) outs_of[n_outs++] = R->outputs_of[i];
  for (int k = 0; k < S; k++)
    if (tab.inputs[k]) outs_of[n_outs++] = tab.inputs[k];
  if ((code = nde_cli_check_output("--out", a->out, outs_of))) goto done;
  /* Each inputs file read once, and checked against the output times. */
  for (int k = 0; k < S; k++) {
    which[k] = -1;
    if (!tab.inputs[k]) continue;
    for (int q = 0; q < k && which[k] < 0; q++)
      if (tab.inputs[q] && !strcmp(tab.inputs[q], tab.inputs[k])) which[k] = which[q];
    if (which[k] >= 0) continue;
    nde_str_release(&where);
    nde_str_addf(&where, "--series %s:%ld:%d", table, tab.line[k], tab.inputs_col);
    if (where.failed) goto nomem;
    if ((code = nde_cli_read_inputs(where.data, tab.inputs[k], m, &ins[n_ins]))) goto done;
    nde_str_addf(&where, ": %s", tab.inputs[k]);
    if (where.failed) goto nomem;
    if ((code = check_input_span(m, where.data, &ins[n_ins], R->t[0], R->t[NT - 1]))) goto done;
    inp[n_ins] = (nde_input_series){ins[n_ins].n, ins[n_ins].t, ins[n_ins].u};
    which[k] = n_ins++;
  }
  int default_used = 0;
  for (int k = 0; k < S && R->inputs_path; k++) default_used |= which[k] < 0;
  if (default_used) {
    nde_str_release(&where);
    nde_str_addf(&where, "--inputs %s", R->inputs_path);
    if (where.failed) goto nomem;
    if ((code = check_input_span(m, where.data, R->in, R->t[0], R->t[NT - 1]))) goto done;
  }
  /* Y: S x n_t x K. */
  if (NT > SIZE_MAX / sizeof(double) / (size_t)K / (size_t)S ||
      !(Y = malloc((size_t)S * NT * (size_t)K * sizeof *Y)) ||
      !(noise_std = calloc((size_t)S * (size_t)K, sizeof *noise_std)))
    goto nomem;
  for (int k = 0; k < S; k++) {
    ser[k] = (nde_sim_series){tab.theta + (size_t)k * nth, tab.u0 + (size_t)k * ns,
                              which[k] >= 0 ? &inp[which[k]] : NULL,
                              ndc ? tab.consts + (size_t)k * ndc : NULL, 1, tab.seed[k]};
  }
  nde_error err;
  int bad = -1;
  nde_status st = nde_simulate_many(m, S, ser, NT, R->t, R->so, R->threads, Y, noise_std, stats,
                                    &bad, &err);
  if (st != NDE_OK) {
    /* A series' failure names its row (the library's message after its "series K: "); anything
     * else is the options' (a solver option). */
    char lib_prefix[32];
    const int at = bad >= 0 ? snprintf(lib_prefix, sizeof lib_prefix, "series %d: ", bad) : 0;
    if (bad >= 0 && bad < S && !strncmp(err.msg, lib_prefix, (size_t)at))
      nde_cli_error("--series %s:%ld: series %s: %s", table, tab.line[bad], tab.names[bad],
                    err.msg + at);
    else if (st == NDE_ERR_ARG)
      nde_cli_error("--solver %s: %s", R->so->solver.method, err.msg);
    else
      nde_cli_error("%s: %s", a->model_path, err.msg);
    code = nde_cli_exit_code(st);
    goto done;
  }
  long steps = 0;
  for (int k = 0; k < S; k++) {
    const double *y = Y + (size_t)k * NT * (size_t)K;
    if (stats[k].reason != NDE_REASON_NONE) {
      char msg[600];
      nde_cli_error("--series %s:%ld: series %s: simulation stopped: %s", table, tab.line[k],
                    tab.names[k],
                    nde_cli_stop_message(R->so->solver.method, &stats[k], m, msg, sizeof msg));
      code = NDE_EXIT_NUMERIC;
      goto done;
    }
    nde_str_release(&where);
    nde_str_addf(&where, "--series %s:%ld: series %s", table, tab.line[k], tab.names[k]);
    if (where.failed) goto nomem;
    if ((code = check_finite(where.data, y, NT, K, a->cols, R->t, a->noise,
                             noise_std + (size_t)k * (size_t)K)))
      goto done;
    steps += stats[k].n_steps;
  }
  /* One group per series, as the file of one series. */
  for (int k = 0; k < S; k++) {
    nde_str r = NDE_STR_INIT;
    nde_str_addf(&r, "%s:%ld", table, tab.line[k]);
    if (!(rows[k] = nde_str_take(&r))) goto nomem;
    wser[k] = (nde_cli_sim_series){tab.names[k], ser[k].theta, ser[k].u0,
                                   Y + (size_t)k * NT * (size_t)K,
                                   noise_std + (size_t)k * (size_t)K,
                                   which[k] >= 0 ? &ins[which[k]] : R->in,
                                   ser[k].consts, tab.seed[k], rows[k]};
  }
  if ((code = nde_cli_sim_write_batch(a, R->cmd, m, R->t, R->n_t, S, wser))) goto done;
  if (!R->quiet) {
    char b0[NDE_NUM_MAX], b1[NDE_NUM_MAX];
    printf("%s: %d series, %ld times each on [%s, %s], %d %s%s", a->out, S, R->n_t,
           nde_num_str(R->t[0], b0), nde_num_str(R->t[NT - 1], b1), K,
           R->so->n_columns ? "column" : "state", K == 1 ? "" : "s");
    if (mi > 0)
      printf(", inputs from %d file%s", n_ins + default_used,
             n_ins + default_used == 1 ? "" : "s");
    if (a->noise > 0) printf(", noise %s of each column's mean", nde_num_str(a->noise, b0));
    else printf(", no noise");
    printf(" (%s, %ld steps in all)\n", R->so->solver.method, steps);
  }
  goto done;
nomem:
  nde_cli_error("out of memory");
  code = NDE_EXIT_IO;
done:
  for (int q = 0; q < n_ins; q++) nde_cli_inputs_free(&ins[q]);
  for (int k = 0; rows && k < S; k++) nde_free(rows[k]);
  nde_str_release(&where);
  free(rows);
  free(ins);
  free(inp);
  free(which);
  free(outs_of);
  free(ser);
  free(wser);
  free(stats);
  free(Y);
  free(noise_std);
  nde_cli_sim_table_free(&tab);
  return code;
}

int nde_cmd_simulate(int argc, char **argv) {
  nde_sim_opts so = nde_sim_opts_default();
  nde_cli_sim a = {0};
  a.seed = 1;
  const char *times_path = NULL, *u0_spec = NULL, *param = NULL;
  const char *inputs_path = NULL, *const_spec = NULL, *columns = NULL, *table = NULL;
  double t0 = 0, t1 = 0, dt_out = 0;
  long points = 0;
  int quiet = 0, threads = 0;
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
      NDE_STR("--series", &table, "TABLE.csv",
              "many series, one per row: columns name, seed, inputs, states, parameters and "
              "constants override the options above; written as one batch file"),
      NDE_NUM("--threads", NDE_ARG_INT, &threads, "N",
              "with --series: series integrated at once (0: every core); the result does not "
              "depend on it", 0, NDE_POOL_MAX_THREADS, 0),
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
  const int seen_t0 = nde_cli_opt(opts, n, "--t0")->seen;
  const int seen_t1 = nde_cli_opt(opts, n, "--t1")->seen;
  const int seen_dt = nde_cli_opt(opts, n, "--dt-out")->seen;
  const int seen_pts = nde_cli_opt(opts, n, "--points")->seen;
  if (!a.out) {
    nde_cli_error("no output file (expected -o DATA.h5 or DATA.csv)");
    return NDE_EXIT_INPUT;
  }
  if (!table && nde_cli_opt(opts, n, "--threads")->seen) {
    nde_cli_error("--threads: one series is one integration (expected --series TABLE.csv, whose "
                  "series run on the threads)");
    return NDE_EXIT_INPUT;
  }
  if (table && nde_cli_ends_with(a.out, ".csv")) {
    nde_cli_error("--series: %s: a batch of series is written as HDF5, one group per series "
                  "(expected -o BATCH.h5; CSV holds one series)", a.out);
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
                          table ? table : "", inputs_path, NULL};
  /* With a table, run_table checks the output once it knows the table's inputs files. */
  if (!table && (code = nde_cli_check_output("--out", a.out, inputs))) return code;

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
    if (!(cols = nde_cli_column_names(m, 0))) goto nomem;
    a.n_cols = nde_model_state_dim(m);
  }
  if (columns && (code = check_columns(m, cols, a.n_cols))) goto done;
  a.cols = cols;
  so.n_columns = columns ? a.n_cols : 0;
  so.columns = cols;
  /* What drives it. */
  if (!table && (code = check_inputs_given(m, a.model_path, inputs_path != NULL, NULL)))
    goto done;
  if (inputs_path) {
    if ((code = nde_cli_read_inputs("--inputs", inputs_path, m, &in))) goto done;
    inp = (nde_input_series){in.n, in.t, in.u};
    so.inputs = &inp;
  }
  a.inputs = &in;
  if (!table && (nde_model_n_data_consts(m) > 0 || const_spec)) {
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
  if (inputs_path && !table) {
    nde_str w = NDE_STR_INIT;
    nde_str_addf(&w, "--inputs %s", inputs_path);
    code = w.failed ? NDE_EXIT_IO : check_input_span(m, w.data, &in, t[0], t[n_t - 1]);
    if (w.failed) nde_cli_error("out of memory");
    nde_str_release(&w);
    if (code) goto done;
  }
  theta = calloc(n_theta + 1, sizeof *theta);
  u0 = calloc((size_t)ns, sizeof *u0);
  /* The one series' solution (a table's are run_table's). */
  if (!table) noise_std = calloc((size_t)nc, sizeof *noise_std);
  if (!theta || !u0 || (!table && (!noise_std ||
                                   n_t > (long)(SIZE_MAX / sizeof(double) / (size_t)nc) ||
                                   !(Y = malloc((size_t)n_t * (size_t)nc * sizeof *Y))))) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
    goto done;
  }
  nde_model_initial_state(m, u0);
  if ((code = nde_cli_start_theta(m, so.seed, 1, a.init, param, theta))) goto done;
  if (u0_spec && (code = nde_cli_parse_state("--u0", u0_spec, m, u0))) goto done;
  a.noise = so.noise;
  a.seed = so.seed;
  a.method = so.solver.method;
  char step[96];
  const nde_solver_method_info *mi = nde_solver_method_find(so.solver.method);
  const int fixed = mi && !mi->adaptive;
  if (fixed && so.solver.dt > 0) snprintf(step, sizeof step, "dt %.17g", so.solver.dt);
  else if (fixed)
    snprintf(step, sizeof step, "%d steps per output interval", so.solver.steps_per_interval);
  else snprintf(step, sizeof step, "adaptive, rtol %g, atol %g", so.solver.rtol, so.solver.atol);
  a.solver_step = step;
  cmd = nde_cli_command_line(argc, argv);
  if (table) {
    a.table = table;
    const sim_run R = {&a, m, &so, u0, theta, const_spec, inputs_path, &in, t, n_t, threads,
                       quiet, inputs, (int)(sizeof inputs / sizeof *inputs) - 1,
                       cmd ? cmd : "nde simulate"};
    code = run_table(table, &R);
    goto done;
  }
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
  /* Nothing is written when a value is not finite. */
  if ((code = check_finite(a.out, Y, (size_t)n_t, a.n_cols, cols, t, so.noise, noise_std)))
    goto done;
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
