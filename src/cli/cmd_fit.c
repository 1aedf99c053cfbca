/* nde fit MODEL.nde DATA.h5 -o FIT.h5: fit a model to time series (nde_result_fit) and print what
 * happened.  SIGINT/SIGTERM stop the fit at once; the result file then holds a resumable
 * checkpoint and the exit code is 130/143.  With --ensemble K, K fits from consecutive seeds run
 * concurrently into one result (nde_result_fit_ensemble); with --uncertainty or --profile the
 * standard errors and profile intervals are computed after the fit, written into the result and
 * printed beside the values. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_unc.h"
#include "plot.h"

#define USAGE "nde fit MODEL.nde DATA.h5[:/GROUP] -o FIT.h5 [options]"

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

typedef struct run {
  nde_cli_progress prog;
  long every;
  double t_last;
  int validating;
  int members_shown; /* ensembles: members reported so far */
} run;

static int on_progress(void *ctx, const nde_train_progress *p) {
  run *r = ctx;
  if (p->event) {
    nde_cli_progress_note(&r->prog, "nde: phase %d, iteration %ld: %s", p->phase + 1, p->iter,
                          p->event);
  } else {
    const double now = nde_cli_now(), el = now - r->prog.t_start;
    const double rate = el > 0 ? (double)p->total_iter / el : 0.0;
    const double eta = rate > 0 ? (double)(p->total_iters - p->total_iter) / rate : 0.0;
    if (r->prog.tty ? now - r->t_last > 0.1 : p->total_iter % r->every == 0) {
      char val[48] = "";
      if (r->validating) snprintf(val, sizeof val, "  validation %.4e", p->score);
      nde_cli_progress_line(&r->prog,
                            "iter %6ld/%ld  phase %d (%s)  loss %.4e%s  |grad| %.3e  %6.0f it/s  "
                            "ETA %.0f s",
                            p->total_iter, p->total_iters, p->phase + 1,
                            p->shooting ? "shooting objective" : "trajectory loss", p->loss, val,
                            p->grad_norm, rate, eta);
      r->t_last = now;
    }
  }
  return g_signal != 0;
}

static int on_members(void *ctx, int done, int total) {
  run *r = ctx;
  const double now = nde_cli_now();
  if (r->prog.tty ? now - r->t_last > 0.1 || done == total : done != r->members_shown) {
    nde_cli_progress_line(&r->prog, "ensemble: %d of %d members done  %.0f s", done, total,
                          now - r->prog.t_start);
    r->t_last = now;
    r->members_shown = done; /* not on a terminal: a line per finished member */
  }
  return g_signal != 0;
}

static void print_summary(const nde_result *res, const char *out) {
  const nde_model *m = nde_result_model(res);
  const nde_result_fit_opts *s = nde_result_settings(res);
  const nde_result_kept k = nde_result_get_kept(res);
  printf("fit: %ld iterations in %.2f s: %s\n", nde_result_iterations(res),
         nde_result_seconds(res), nde_result_message(res));
  const char *thr = nde_result_provenance(res, "threads");
  const char *rk = nde_result_provenance(res, "mpi_ranks");
  const char *bl = nde_result_provenance(res, "blas_threads");
  if (thr && rk)
    printf("  on %s thread(s) (OpenBLAS %s) x %s MPI rank(s)\n", thr, bl ? bl : "?", rk);
  printf("  trajectory loss %.6e (%s squared error) at the kept parameters: %s (iteration %ld)\n",
         k.loss, s->objective.loss_sum ? "summed" : "mean",
         k.is_best ? "the best scored iterate" : "the last iterate", k.iteration);
  if (isfinite(k.validation))
    printf("  validation loss %.6e on the held-out %s (it chose the kept iterate)\n", k.validation,
           s->validate_series ? "series" : "trailing observations");
  if (isfinite(k.noise_ratio))
    printf("  that is %.3g times the loss the true model would have under the known noise "
           "(%.4e)\n", k.noise_ratio, k.noise_loss);
  if (s->objective.l2 > 0 || s->objective.l1 > 0)
    printf("  network weights regularised: l2 %g, l1 %g (not in the losses above)\n",
           s->objective.l2, s->objective.l1);
  if (k.is_best && isfinite(k.last_loss) && k.last_loss > k.loss)
    printf("  the final iterate is worse (trajectory loss %.6e): the best one is kept "
           "(--keep-last keeps the final one)\n",
           k.last_loss);
  char b[NDE_NUM_MAX];
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info pi;
    if (nde_model_get_param(m, i, &pi) != NDE_OK) continue;
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
    if (nde_model_get_net(m, i, &ni) == NDE_OK)
      printf("  net %-8s %zu weights\n", ni.name, ni.n_params);
  }
  if (s->objective.learn_u0) {
    printf("  learned initial states:\n");
    for (int k2 = 0; k2 < nde_result_n_series(res); k2++) {
      nde_result_series se;
      nde_result_get_series(res, k2, &se);
      printf("    %s:", se.name);
      for (int j = 0; j < nde_model_state_dim(m); j++)
        printf(" %s=%s", nde_model_component_name(m, j), nde_num_str(se.u0[j], b));
      printf("\n");
    }
  }
  if (*nde_result_warning(res)) printf("warning: %s\n", nde_result_warning(res));
  nde_cli_print_uncertainty(res);
  nde_cli_print_ensemble(res);
  printf("result written to %s\n", out);
}

/* The kept parameters' trajectory of the data series tr at its times (for messages). */
static int predict_kept(void *ctx, size_t k, const nde_traj *tr, double *Y, nde_str *why) {
  const nde_result *res = ctx;
  const int s = nde_result_find_series(res, tr->name);
  nde_solve_stats stats;
  nde_error err;
  char msg[600];
  (void)k;
  if (s < 0) return 1;
  const nde_start start = {.kind = NDE_START_FITTED, .series = s};
  if (nde_result_integrate(res, &start, tr->n, tr->t, NULL, Y, &stats, &err) != NDE_OK) return 1;
  if (stats.reason == NDE_REASON_NONE) return 0;
  nde_str_adds(why, nde_stop_message(nde_result_settings(res)->solver.method, &stats, msg,
                                     sizeof msg));
  return 1;
}

/* --validate tail:F | series:K */
static int parse_validate(const char *spec, nde_result_fit_opts *fo) {
  char *end;
  if (!strncmp(spec, "tail:", 5)) {
    fo->validate_tail = strtod(spec + 5, &end);
    if (end != spec + 5 && !*end && fo->validate_tail > 0 && fo->validate_tail < 1) return 0;
  } else if (!strncmp(spec, "series:", 7)) {
    const long k = strtol(spec + 7, &end, 10);
    if (end != spec + 7 && !*end && k >= 1 && k <= NDE_FIT_MAX_SERIES) {
      fo->validate_series = (int)k;
      return 0;
    }
  }
  nde_cli_error("--validate: expected tail:F with F in (0, 1) (the trailing fraction of every "
                "series) or series:K with K >= 1 (the last K series), got '%s'",
                spec);
  return NDE_EXIT_INPUT;
}

/* --noise-std S (every state) or x=S,y=S (by state). */
static int parse_noise(const char *spec, const nde_model *m, double *sd) {
  const int n = nde_model_state_dim(m);
  char *end;
  const double v = strtod(spec, &end);
  if (end != spec && !*end) {
    if (!(v > 0) || !isfinite(v)) {
      nde_cli_error("--noise-std: expected a standard deviation > 0, got '%s'", spec);
      return NDE_EXIT_INPUT;
    }
    for (int j = 0; j < n; j++) sd[j] = v;
    return 0;
  }
  for (int j = 0; j < n; j++) sd[j] = NAN;
  int rc = nde_cli_parse_state("--noise-std", spec, m, sd);
  for (int j = 0; !rc && j < n; j++)
    if (!isnan(sd[j]) && !(sd[j] > 0)) {
      nde_cli_error("--noise-std: %s: expected a standard deviation > 0, got %g",
                    nde_model_component_name(m, j), sd[j]);
      rc = NDE_EXIT_INPUT;
    }
  return rc;
}

int nde_cmd_fit(int argc, char **argv) {
  nde_result_fit_opts fo = nde_result_fit_opts_default();
  const char *out = "fit.h5", *init = NULL, *resume = NULL, *scale = "none", *loss = "mean";
  const char *plot = NULL, *param = NULL, *validate = NULL, *noise = NULL;
  int learn_u0 = 0, log_loss = 0, quiet = 0, keep_last = 0;
  long progress_every = 500;
  nde_cli_unc unc;
  nde_cli_unc_init(&unc);
  nde_ensemble_opts eo = nde_ensemble_opts_default();
  const char *resample = "none";
  int members = 0;
  nde_arg opts[80];
  int n = 0;
  opts[n++] = (nde_arg)NDE_STR("--out", &out, "FIT.h5", "result file; also -o");
  nde_cli_solver_args(opts + n, &fo.solver);
  n += NDE_CLI_N_SOLVER_ARGS;
  nde_cli_grad_arg(opts + n++, &fo.grad);
  const nde_arg more[] = {
      NDE_STR("--optim", &fo.schedule, "SCHEDULE",
              "phases [shoot:]adam|lbfgs:ITERS[@LR], comma-separated (default "
              NDE_DEFAULT_SCHEDULE "; " NDE_DEFAULT_SCHEDULE_PARTIAL " when a state is never "
              "measured or observables are)"),
      NDE_NUM("--lr", NDE_ARG_DOUBLE, &fo.lr, "RATE", "learning rate of Adam phases without @LR",
              0, 1e6, NDE_ARG_GT),
      NDE_NUM("--seed", NDE_ARG_U64, &fo.seed, "N", "seed of initialisation and minibatches", 0,
              9007199254740992.0, 0),
      NDE_STR("--init", &init, "FILE.h5",
              "start from /params/theta (or /params/values/NAME) of a file"),
      NDE_STR("--param", &param, "p=V,...", "start values of parameters in natural units"),
      NDE_STR("--resume", &resume, "FIT.h5", "continue a checkpointed fit bit for bit"),
      NDE_FLAG("--learn-u0", &learn_u0, "fit the initial states too"),
      NDE_STR("--scale", &scale, "none|std", "weight states by 1/variance of their data"),
      NDE_STR("--loss", &loss, "mean|sum", "reduction of the squared error"),
      NDE_FLAG("--log-loss", &log_loss, "compare log(y) and log(data) (positive data)"),
      NDE_NUM("--shoot-interval", NDE_ARG_INT, &fo.objective.shoot_interval, "N",
              "observation intervals per multiple-shooting segment", 1, 1e9, 0),
      NDE_NUM("--shoot-weight", NDE_ARG_DOUBLE, &fo.objective.shoot_weight, "W",
              "continuity penalty weight", 0, 1e300, 0),
      NDE_NUM("--batch-series", NDE_ARG_INT, &fo.objective.batch_series, "N",
              "series per minibatch (0: all)", 0, NDE_FIT_MAX_SERIES, 0),
      NDE_NUM("--batch-time", NDE_ARG_INT, &fo.objective.batch_time, "N",
              "minibatch windows of N intervals (0: whole series)", 0, 1e9, 0),
      NDE_NUM("--batch-windows", NDE_ARG_INT, &fo.objective.batch_windows, "N",
              "windows per series", 1, 1e6, 0),
      NDE_NUM("--max-failures", NDE_ARG_INT, &fo.max_failures, "N",
              "rejected steps in a row before giving up", 0, 1e6, 0),
      NDE_NUM("--checkpoint-every", NDE_ARG_LONG, &fo.checkpoint_every, "N",
              "iterations between resume points (scoring, checkpoints, L-BFGS restarts)", 1, 1e12,
              0),
      NDE_NUM("--checkpoint-seconds", NDE_ARG_DOUBLE, &fo.checkpoint_seconds, "S",
              "write the checkpoint at a resume point only if S seconds passed", 0, 1e12, 0),
      NDE_FLAG("--keep-last", &keep_last, "keep the final iterate, not the best-scored one"),
      NDE_STR("--validate", &validate, "tail:F|series:K",
              "hold out the trailing fraction F of every series, or the last K series: the "
              "validation loss chooses the kept iterate"),
      NDE_NUM("--l2", NDE_ARG_DOUBLE, &fo.objective.l2, "W",
              "weight decay: W x the sum of squared network weights in the objective", 0, 1e12, 0),
      NDE_NUM("--l1", NDE_ARG_DOUBLE, &fo.objective.l1, "W",
              "W x the sum of absolute network weights in the objective", 0, 1e12, 0),
      NDE_STR("--noise-std", &noise, "S|x=S,...",
              "the noise standard deviation (default: noise_std recorded in the data)"),
      NDE_NUM("--patience", NDE_ARG_INT, &fo.patience, "N",
              "stop when the score has not improved for N resume points (0: never)", 0, 1e9, 0),
      NDE_NUM("--phase-patience", NDE_ARG_INT, &fo.phase_patience, "N",
              "end a phase whose loss improved by less than --phase-tol over N resume points "
              "(0: never)", 0, 1e9, 0),
      NDE_NUM("--phase-tol", NDE_ARG_DOUBLE, &fo.phase_tol, "R",
              "relative improvement of a phase's loss that counts as progress", 0, 1, 0),
      NDE_NUM("--progress-every", NDE_ARG_LONG, &progress_every, "N",
              "iterations between progress lines when not on a terminal", 1, 1e12, 0),
      NDE_STR("--plot", &plot, "FILE.svg|png|pdf", "draw the data, the fitted curves and the loss"),
      NDE_FLAG("--quiet", &quiet, "no progress output"),
      NDE_NUM("--ensemble", NDE_ARG_INT, &members, "K",
              "fit K members from seeds SEED .. SEED+K-1 concurrently, all kept in the result "
              "(0: a single fit)", 0, 100000, 0),
      NDE_STR("--resample", &resample, "none|series|time",
              "each ensemble member fits a random part of the series or of every series' rows"),
      NDE_NUM("--resample-fraction", NDE_ARG_DOUBLE, &eo.fraction, "F",
              "the part each resampled member fits", 0, 1, NDE_ARG_GT),
      NDE_NUM("--threads", NDE_ARG_INT, &fo.threads, "N",
              "threads (0: the cores available, shared among the MPI ranks on this machine); "
              "the result does not depend on it",
              0, NDE_POOL_MAX_THREADS, 0),
  };
  memcpy(opts + n, more, sizeof more);
  n += (int)(sizeof more / sizeof *more);
  nde_cli_unc_args(opts + n, &unc);
  n += NDE_CLI_N_UNC_ARGS;
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, opts, n, pos, 2, 2, &n_pos);
  if (rc >= 0) return rc;
  if (strcmp(scale, "none") && strcmp(scale, "std")) {
    nde_cli_error("--scale: expected none or std, got '%s'", scale);
    return NDE_EXIT_INPUT;
  }
  if (strcmp(loss, "mean") && strcmp(loss, "sum")) {
    nde_cli_error("--loss: expected mean or sum, got '%s'", loss);
    return NDE_EXIT_INPUT;
  }
  if (plot && !nde_cli_ends_with(plot, ".svg") && !nde_cli_ends_with(plot, ".png") &&
      !nde_cli_ends_with(plot, ".pdf")) {
    nde_cli_error("--plot: '%s' must end in .svg, .png or .pdf", plot);
    return NDE_EXIT_INPUT;
  }
  if (resume && (init || param)) {
    nde_cli_error("--resume continues a fit from its checkpoint: --init and --param cannot be "
                  "combined with it");
    return NDE_EXIT_INPUT;
  }
  if ((rc = nde_cli_check_solver(opts, n, &fo.solver, &fo.grad))) return rc;
  if ((rc = nde_cli_unc_check(&unc))) return rc;
  if (!strcmp(resample, "none")) eo.resample = NDE_RESAMPLE_NONE;
  else if (!strcmp(resample, "series")) eo.resample = NDE_RESAMPLE_SERIES;
  else if (!strcmp(resample, "time")) eo.resample = NDE_RESAMPLE_TIME;
  else {
    nde_cli_error("--resample: expected none, series or time, got '%s'", resample);
    return NDE_EXIT_INPUT;
  }
  if (members == 1 || (members == 0 && (nde_cli_opt(opts, n, "--resample")->seen ||
                                        nde_cli_opt(opts, n, "--resample-fraction")->seen))) {
    nde_cli_error("--ensemble: expected K >= 2 members%s (got %d)",
                  members ? "" : " with --resample and --resample-fraction", members);
    return NDE_EXIT_INPUT;
  }
  if (members >= 2 && resume) {
    nde_cli_error("--resume continues one fit: it cannot be combined with --ensemble");
    return NDE_EXIT_INPUT;
  }
  const char *inputs[] = {pos[0], pos[1], init, NULL};
  if ((rc = nde_cli_check_output("--out", out, inputs))) return rc;
  if (plot && (rc = nde_cli_check_output("--plot", plot, inputs))) return rc;
  fo.objective.loss_sum = !strcmp(loss, "sum");
  fo.objective.scale_by_std = !strcmp(scale, "std");
  fo.objective.log_space = log_loss;
  fo.objective.learn_u0 = learn_u0;
  fo.keep_last = keep_last;
  if (validate && (rc = parse_validate(validate, &fo))) return rc;

  nde_model *model = NULL;
  nde_data *data = NULL;
  nde_result *res = NULL, *ck = NULL;
  nde_comm *comm = NULL;
  double *theta = NULL, *noise_sd = NULL;
  char *cmdline = NULL;
  nde_error err;
  if ((rc = nde_cli_load_model(pos[0], &model)) || (rc = nde_cli_open_data(pos[1], model, &data)))
    goto done;
  const int n_ser = (int)nde_data_n_traj(data);
  const size_t n_theta = nde_model_n_theta_full(model, n_ser);
  noise_sd = calloc((size_t)nde_model_state_dim(model), sizeof *noise_sd);
  if (!noise_sd) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  if (noise) {
    if ((rc = parse_noise(noise, model, noise_sd))) goto done;
    fo.noise_std = noise_sd;
  }
  if (init || param) {
    theta = calloc(n_theta + 1, sizeof *theta);
    if (!theta) {
      nde_cli_error("out of memory");
      rc = NDE_EXIT_IO;
      goto done;
    }
    nde_model_init_theta_full(model, fo.seed, n_ser, theta);
    if (init && (rc = nde_cli_read_theta("--init", init, model, n_ser, theta))) goto done;
    if (param && (rc = nde_cli_parse_params("--param", param, model, n_ser, theta))) goto done;
    fo.theta0 = theta;
  }
  if (resume) {
    nde_status st = nde_result_open(resume, &ck, &err);
    if (st != NDE_OK) {
      nde_cli_error("--resume: %s", err.msg);
      rc = nde_cli_input_exit(st);
      goto done;
    }
    fo.resume = ck;
  }
  /* Under an MPI launcher every rank runs this; rank 0 alone prints and writes (the library
   * writes the result from rank 0). */
  {
    nde_status cst = nde_comm_create(NDE_COMM_AUTO, &comm, &err);
    if (cst != NDE_OK) {
      nde_cli_error("%s", err.msg);
      rc = cst == NDE_ERR_UNSUPPORTED ? NDE_EXIT_INPUT : NDE_EXIT_IO;
      goto done;
    }
    if (nde_comm_rank(comm) != 0) quiet = 1;
  }
  cmdline = nde_cli_command_line(argc, argv);
  fo.command_line = cmdline;
  fo.data_label = pos[1];
  fo.checkpoint_path = out;
  run r;
  memset(&r, 0, sizeof r);
  nde_cli_progress_init(&r.prog, quiet);
  r.every = progress_every;
  fo.progress = on_progress;
  fo.progress_ctx = &r;
  fo.progress_every = 1;
  r.validating = fo.validate_tail > 0 || fo.validate_series > 0;

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  const size_t n_series = nde_data_n_traj(data);
  const size_t n_learn = n_theta + (learn_u0 ? n_series * (size_t)nde_model_state_dim(model) : 0);
  nde_cli_progress_note(&r.prog, "nde: fitting %s (%zu learnable values) to %s: %zu series, %zu "
                        "observed values; schedule %s",
                        pos[0], n_learn, pos[1], n_series, nde_data_n_obs(data),
                        fo.schedule ? fo.schedule : nde_default_schedule(model, data));
  nde_status st;
  if (members >= 2) {
    /* Members run concurrently: progress counts members, SIGINT stops them all. */
    eo.members = members;
    eo.threads = unc.jobs;
    eo.progress = on_members;
    eo.progress_ctx = &r;
    fo.progress = NULL;
    int stopped = 0;
    nde_cli_progress_note(&r.prog, "nde: ensemble of %d fits (seeds %llu to %llu%s%s) on %s", members,
                          (unsigned long long)fo.seed,
                          (unsigned long long)(fo.seed + (uint64_t)members - 1),
                          eo.resample == NDE_RESAMPLE_NONE ? "" : ", resampling the ",
                          eo.resample == NDE_RESAMPLE_NONE ? "" : nde_resample_str(eo.resample),
                          unc.jobs > 0 ? "the given threads" : "every core");
    st = nde_result_fit_ensemble(model, data, &fo, &eo, &res, &stopped, &err);
    nde_cli_progress_end(&r.prog);
    if (st == NDE_OK && stopped) {
      fprintf(stderr, "nde: interrupted: the ensemble is not written (an ensemble cannot be "
                      "resumed; run it again)\n");
      rc = g_signal == SIGTERM ? 143 : 130;
      goto done;
    }
  } else {
    st = nde_result_fit(model, data, &fo, &res, &err);
  }
  nde_cli_progress_end(&r.prog);
  if (st != NDE_OK) {
    rc = nde_cli_fail(&err, 0);
    goto done;
  }
  if (ck && nde_result_status(ck) != NDE_FIT_RUNNING && nde_result_status(ck) != NDE_FIT_STOPPED) {
    /* The library did nothing and wrote nothing. */
    if (!quiet) printf("nde fit: %s; %s is unchanged\n", nde_result_message(res), resume);
    rc = NDE_EXIT_OK;
    goto done;
  }
  switch (nde_result_status(res)) {
    case NDE_FIT_STOPPED:
      if (nde_comm_rank(comm) == 0)
        fprintf(stderr, "nde: interrupted after %ld iterations; checkpoint written to %s (continue "
                        "with --resume %s)\n",
                nde_result_iterations(res), out, out);
      rc = g_signal == SIGTERM ? 143 : 130;
      goto done;
    case NDE_FIT_DIVERGED:
    case NDE_FIT_FAILED: {
      /* A loss that is not finite at the start (the kept parameters) although every solve
       * finished: name the data value. */
      nde_str why = NDE_STR_INIT;
      const int found = nde_result_status(res) == NDE_FIT_FAILED &&
                        nde_result_iterations(res) == 0 &&
                        nde_cli_explain_loss(model, data, log_loss, predict_kept, res, &why);
      if (nde_comm_rank(comm) == 0)
        nde_cli_error("%s%s%s%s; the %s parameters are in %s", nde_result_message(res),
                      found ? " (" : "", found ? why.data : "", found ? ")" : "",
                      nde_result_get_kept(res).is_best ? "best" : "last good", out);
      nde_str_release(&why);
      rc = NDE_EXIT_NUMERIC;
      goto done;
    }
    default:
      break;
  }
  if (nde_cli_unc_wanted(&unc)) {
    /* The standard errors (and profiles) join the result file. */
    if ((rc = nde_cli_unc_run(res, data, &unc, noise ? noise_sd : NULL, quiet, &g_signal)))
      goto done;
    st = nde_result_save(res, out, &err);
    if (st != NDE_OK) {
      rc = nde_cli_fail(&err, 0);
      goto done;
    }
  }
  if (!quiet) print_summary(res, out);
  if (plot && nde_comm_rank(comm) == 0 && (rc = nde_plot_fit(plot, res, pos[1]))) goto done;
  rc = NDE_EXIT_OK;
done:
  nde_comm_destroy(&comm);
  nde_result_destroy(&res);
  nde_result_destroy(&ck);
  nde_data_destroy(&data);
  nde_model_destroy(&model);
  free(theta);
  free(noise_sd);
  nde_free(cmdline);
  return rc;
}
