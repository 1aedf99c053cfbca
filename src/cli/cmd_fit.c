/* nde fit MODEL.nde DATA.h5 -o FIT.h5: fit a model to time series with a schedule of optimiser
 * phases (multiple shooting, Adam, L-BFGS), a divergence guard, periodic atomic checkpoints into
 * the result file, and bit-identical --resume.  SIGINT/SIGTERM write a consistent checkpoint and
 * exit with 130/143. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "fit_file.h"
#include "plot.h"
#include "nde/train.h"

#define DEFAULT_SCHEDULE "shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000"

static volatile sig_atomic_t g_signal = 0;

static void on_signal(int sig) { g_signal = sig; }

typedef struct run {
  nde_cli_progress prog;
  nde_fit_file ff;
  long progress_every;
  double t_last;
  long checkpoints;
  double ckpt_seconds;
  double t_ckpt;
  long test_abort_after; /* testing hooks (environment), see docs/cli.md */
  long test_abort_during;
  int write_rc;
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
    if (r->prog.tty ? now - r->t_last > 0.1 : p->total_iter % r->progress_every == 0) {
      nde_cli_progress_line(&r->prog,
                            "iter %6ld/%ld  phase %d  loss %.4e  |grad| %.3e  %6.0f it/s  ETA %.0f s",
                            p->total_iter, p->total_iters, p->phase + 1, p->loss, p->grad_norm,
                            rate, eta);
      r->t_last = now;
    }
  }
  return g_signal != 0;
}

static int on_checkpoint(void *ctx, nde_train *t) {
  run *r = ctx;
  (void)t;
  /* Every boundary is a valid resume point; writing (with fsync) is rate-limited in time. */
  const double now = nde_cli_now();
  if (now - r->t_ckpt < r->ckpt_seconds) return 0;
  r->t_ckpt = now;
  r->checkpoints++;
  const int abort_now = r->test_abort_during > 0 && r->checkpoints == r->test_abort_during;
  r->write_rc = nde_fit_file_write(&r->ff, abort_now);
  if (r->write_rc) return 1;
  if (r->test_abort_after > 0 && r->checkpoints == r->test_abort_after) _exit(137);
  return 0;
}

static long env_long(const char *name) {
  const char *v = getenv(name);
  return v ? strtol(v, NULL, 10) : 0;
}

/* The command line as one string, for provenance. */
static char *join_args(int argc, char **argv) {
  size_t len = 4;
  for (int i = 0; i < argc; i++) len += strlen(argv[i]) + 1;
  char *s = malloc(len);
  if (!s) return NULL;
  strcpy(s, "nde");
  for (int i = 0; i < argc; i++) {
    strcat(s, " ");
    strcat(s, argv[i]);
  }
  return s;
}

int nde_cmd_fit(int argc, char **argv) {
  const char *out = "fit.h5", *schedule = DEFAULT_SCHEDULE;
  const char *init = NULL, *resume = NULL, *scale = "none", *loss = "mean", *plot = NULL;
  nde_cli_solve_args solve = nde_cli_solve_args_default();
  double lr = 0.01, shoot_weight = 10, ckpt_seconds = 10;
  long seed = 1, shoot = 4, batch_series = 0, batch_time = 0, batch_windows = 4;
  long max_failures = 8, ckpt_every = 200, progress_every = 500;
  int learn_u0 = 0, log_loss = 0, quiet = 0;
  nde_arg opts[] = {
      {"--out", NDE_ARG_STR, &out, "FIT.h5", "result file (default fit.h5); also -o", 0},
      NDE_CLI_SOLVE_ARGS(solve),
      {"--optim", NDE_ARG_STR, &schedule, "SCHEDULE",
       "phases [shoot:]adam|lbfgs:ITERS[@LR], comma-separated (default " DEFAULT_SCHEDULE ")", 0},
      {"--lr", NDE_ARG_DOUBLE, &lr, "RATE", "learning rate of phases without @LR (0.01)", 0},
      {"--seed", NDE_ARG_LONG, &seed, "N", "seed of initialisation and minibatches (1)", 0},
      {"--init", NDE_ARG_STR, &init, "FILE.h5", "start from /params/theta of a file", 0},
      {"--resume", NDE_ARG_STR, &resume, "FIT.h5", "continue a checkpointed fit bit for bit", 0},
      {"--learn-u0", NDE_ARG_FLAG, &learn_u0, NULL, "fit the initial states too", 0},
      {"--scale", NDE_ARG_STR, &scale, "none|std", "weight states by 1/variance of their data", 0},
      {"--loss", NDE_ARG_STR, &loss, "mean|sum", "reduction of the squared error (mean)", 0},
      {"--log-loss", NDE_ARG_FLAG, &log_loss, NULL, "compare log(y) and log(data) (positive data)", 0},
      {"--shoot-interval", NDE_ARG_LONG, &shoot, "N",
       "observation intervals per multiple-shooting segment (4)", 0},
      {"--shoot-weight", NDE_ARG_DOUBLE, &shoot_weight, "W", "continuity penalty weight (10)", 0},
      {"--batch-series", NDE_ARG_LONG, &batch_series, "N", "series per minibatch (0: all)", 0},
      {"--batch-time", NDE_ARG_LONG, &batch_time, "N",
       "minibatch windows of N intervals (0: whole series)", 0},
      {"--batch-windows", NDE_ARG_LONG, &batch_windows, "N", "windows per series (4)", 0},
      {"--max-failures", NDE_ARG_LONG, &max_failures, "N",
       "rejected steps in a row before giving up (8)", 0},
      {"--checkpoint-every", NDE_ARG_LONG, &ckpt_every, "N",
       "iterations between resume points (and L-BFGS restarts) (200)", 0},
      {"--checkpoint-seconds", NDE_ARG_DOUBLE, &ckpt_seconds, "S",
       "write the checkpoint at a resume point only if S seconds passed since the last (10)", 0},
      {"--progress-every", NDE_ARG_LONG, &progress_every, "N",
       "iterations between progress lines when not on a terminal (500)", 0},
      {"--plot", NDE_ARG_STR, &plot, "FILE.svg|png",
       "draw the data, the fitted curves and the loss history", 0},
      {"--quiet", NDE_ARG_FLAG, &quiet, NULL, "no progress output", 0},
  };
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse("nde fit MODEL.nde DATA.h5[:/GROUP] -o FIT.h5 [options]", argc, argv, opts,
                         (int)(sizeof opts / sizeof *opts), pos, 2, 2, &n_pos);
  if (rc >= 0) return rc;
  if (strcmp(scale, "none") && strcmp(scale, "std")) {
    nde_cli_error("--scale: expected none or std, got '%s'", scale);
    return NDE_EXIT_INPUT;
  }
  if (strcmp(loss, "mean") && strcmp(loss, "sum")) {
    nde_cli_error("--loss: expected mean or sum, got '%s'", loss);
    return NDE_EXIT_INPUT;
  }
  nde_solver_opts so;
  nde_grad_opts go;
  rc = nde_cli_solve_opts(&solve, &so, &go);
  if (!rc) rc = nde_cli_check_double("--lr", lr, 0, 1);
  if (!rc) rc = nde_cli_check_long("--seed", seed, 0);
  if (!rc) rc = nde_cli_check_long("--shoot-interval", shoot, 0);
  if (!rc) rc = nde_cli_check_double("--shoot-weight", shoot_weight, 0, 0);
  if (!rc) rc = nde_cli_check_long("--batch-series", batch_series, 0);
  if (!rc) rc = nde_cli_check_long("--batch-time", batch_time, 0);
  if (!rc) rc = nde_cli_check_long("--batch-windows", batch_windows, 1);
  if (!rc) rc = nde_cli_check_long("--max-failures", max_failures, 0);
  if (!rc) rc = nde_cli_check_long("--checkpoint-every", ckpt_every, 1);
  if (!rc) rc = nde_cli_check_double("--checkpoint-seconds", ckpt_seconds, 0, 0);
  if (!rc) rc = nde_cli_check_long("--progress-every", progress_every, 1);
  if (rc) return rc;

  nde_fit_phase phases[NDE_MAX_PHASES];
  int n_phases;
  nde_error perr;
  if (nde_fit_schedule_parse(schedule, lr, phases, &n_phases, &perr) != NDE_OK) {
    nde_cli_error("--optim: %s", perr.msg);
    return NDE_EXIT_INPUT;
  }
  int any_shoot = 0;
  for (int p = 0; p < n_phases; p++) any_shoot |= phases[p].shooting;

  nde_model *model = NULL;
  nde_data *data = NULL;
  nde_rhs *rhs = NULL;
  nde_fit *fit = NULL;
  nde_train *train = NULL;
  nde_fit_series *series = NULL;
  double *u0s = NULL, *theta = NULL, *x0 = NULL, *state = NULL;
  char *source = NULL, *cmdline = NULL;
  rc = nde_cli_load_model(pos[0], &model);
  if (rc) goto done;
  rc = nde_cli_open_data(pos[1], model, &data);
  if (rc) goto done;
  const size_t n_theta = nde_model_n_theta(model);
  const size_t n_traj = nde_data_n_traj(data);

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
  fo.scale_by_std = !strcmp(scale, "std");
  fo.log_space = log_loss;
  fo.learn_u0 = learn_u0;
  fo.shoot_interval = any_shoot ? (int)shoot : 0;
  fo.shoot_weight = shoot_weight;
  fo.batch_series = (int)batch_series;
  fo.batch_time = (int)batch_time;
  fo.batch_windows = (int)batch_windows;
  rc = nde_cli_make_fit(model, pos[0], &so, &go, &fo, (int)n_traj, series, &rhs, &fit);
  if (rc) goto done;
  if (any_shoot && shoot == 0) {
    nde_cli_error("--optim uses shoot: phases but --shoot-interval is 0");
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  x0 = calloc(nde_fit_n_x(fit, 1), sizeof *x0);
  if (!x0 || nde_fit_init_x(fit, theta, x0) != NDE_OK) {
    nde_cli_error("cannot set up the start point: %s", nde_fit_errmsg(fit));
    rc = NDE_EXIT_NUMERIC;
    goto done;
  }

  run r;
  memset(&r, 0, sizeof r);
  nde_cli_progress_init(&r.prog, quiet);
  r.progress_every = progress_every;
  r.ckpt_seconds = ckpt_seconds;
  r.t_ckpt = nde_cli_now();
  r.test_abort_after = env_long("NDE_TEST_ABORT_AFTER_CHECKPOINT");
  r.test_abort_during = env_long("NDE_TEST_ABORT_DURING_CHECKPOINT");
  nde_train_opts to = nde_train_opts_default();
  to.phases = phases;
  to.n_phases = n_phases;
  to.seed = (uint64_t)seed;
  to.max_failures = (int)max_failures;
  to.checkpoint_every = ckpt_every;
  to.progress = on_progress;
  to.progress_ctx = &r;
  to.progress_every = 1;
  to.checkpoint = on_checkpoint;
  to.checkpoint_ctx = &r;
  to.test_nan_eval = env_long("NDE_TEST_NAN_EVAL");
  nde_status st = nde_train_create(fit, &to, x0, &train, NULL);
  if (st != NDE_OK) {
    nde_cli_error("invalid training options");
    rc = nde_cli_exit_code(st);
    goto done;
  }
  if (resume) {
    size_t len;
    rc = nde_fit_file_read_state(resume, &state, &len, &source);
    if (rc) goto done;
    if (strcmp(source, nde_model_source(model)) != 0) {
      nde_cli_error("%s:/model/source: the checkpoint was made with a different model (expected "
                    "the text of %s)",
                    resume, pos[0]);
      rc = NDE_EXIT_INPUT;
      goto done;
    }
    if (nde_train_set_state(train, state, len) != NDE_OK) {
      nde_cli_error("%s:/train/state: %s (same data and options as the interrupted fit?)", resume,
                    nde_train_errmsg(train));
      rc = NDE_EXIT_INPUT;
      goto done;
    }
  }
  cmdline = join_args(argc, argv);
  r.ff = (nde_fit_file){out, "running", model, data, fit, train, cmdline ? cmdline : "nde fit",
                        schedule, solve.solver, solve.grad, so.dt, so.steps_per_interval,
                        (uint64_t)seed, NAN, 0};

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  nde_cli_progress_note(&r.prog, "nde: fitting %s (%zu learnable values) to %s: %zu series, %zu "
                        "observed values; schedule %s",
                        pos[0], n_theta, pos[1], n_traj, nde_data_n_obs(data), schedule);
  nde_train_reason why;
  st = nde_train_run(train, &why);
  nde_cli_progress_end(&r.prog);
  if (st != NDE_OK) {
    if (r.write_rc) {
      rc = r.write_rc;
    } else {
      nde_cli_error("%s", nde_train_errmsg(train));
      rc = nde_cli_exit_code(st);
    }
    goto done;
  }
  double L = NAN;
  nde_fit_info info;
  nde_fit_eval(fit, nde_train_x(train), 0, NULL, &L, NULL, &info);
  r.ff.final_loss = L;
  r.ff.seconds = nde_cli_now() - r.prog.t_start;
  r.ff.status = why == NDE_TRAIN_DONE ? "done" : why == NDE_TRAIN_DIVERGED ? "diverged"
                                                                          : "interrupted";
  rc = nde_fit_file_write(&r.ff, 0);
  if (rc) goto done;
  if (why == NDE_TRAIN_STOPPED) {
    fprintf(stderr, "nde: interrupted after %zu iterations; checkpoint written to %s (continue "
                    "with --resume %s)\n",
            nde_train_history(train, NULL), out, out);
    rc = g_signal == SIGTERM ? 143 : 130;
    goto done;
  }
  if (why == NDE_TRAIN_DIVERGED) {
    nde_cli_error("training diverged: %ld rejected steps in a row; the last good parameters are in "
                  "%s (try a smaller --lr or --optim with more multiple shooting)",
                  max_failures + 1, out);
    rc = NDE_EXIT_NUMERIC;
    goto done;
  }
  if (!quiet) {
    printf("fit: %zu iterations in %.2f s; final loss %.6e (%s squared error)\n",
           nde_train_history(train, NULL), r.ff.seconds, L, fo.loss_sum ? "summed" : "mean");
    for (int i = 0; i < nde_model_n_params(model); i++) {
      nde_model_param_info pi;
      if (nde_model_get_param(model, i, &pi) != NDE_OK) continue;
      printf("  %-12s = %.8g%s\n", pi.name, nde_model_param_value(model, i, nde_train_x(train)),
             pi.learnable ? "" : "  (fixed)");
    }
    for (int i = 0; i < nde_model_n_nets(model); i++) {
      nde_model_net_info ni;
      if (nde_model_get_net(model, i, &ni) == NDE_OK)
        printf("  net %-8s %zu weights\n", ni.name, ni.n_params);
    }
    printf("result written to %s\n", out);
  }
  if (plot && (rc = nde_plot_fit_file(plot, out)) != 0) goto done;
  rc = NDE_EXIT_OK;
done:
  nde_train_destroy(&train);
  nde_fit_destroy(&fit);
  nde_rhs_destroy(&rhs);
  nde_data_destroy(&data);
  nde_model_destroy(&model);
  free(series);
  free(u0s);
  free(theta);
  free(x0);
  free(state);
  free(source);
  free(cmdline);
  return rc;
}
