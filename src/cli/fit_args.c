/* The options of `nde fit`: the table (with their defaults, ranges and help lines) and the checks
 * across options once they are parsed. */
#include <stdlib.h>
#include <string.h>

#include "fit_args.h"

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


/* The defaults and the option table. */
void nde_cli_fit_init(fit_cli *c) {
  memset(c, 0, sizeof *c);
  c->fo = nde_result_fit_opts_default();
  c->out = "fit.h5";
  c->scale = "none";
  c->loss = "mean";
  c->resample = "none";
  c->progress_every = 500;
  nde_cli_unc_init(&c->unc);
  c->eo = nde_ensemble_opts_default();
  c->opts[c->n++] = (nde_arg)NDE_STR("--out", &c->out, "FIT.h5", "result file; also -o");
  nde_cli_solver_args(c->opts + c->n, &c->fo.solver);
  c->n += NDE_CLI_N_SOLVER_ARGS;
  nde_cli_grad_arg(c->opts + c->n++, &c->fo.grad);
  const nde_arg more[] = {
      NDE_STR("--optim", &c->fo.schedule, "SCHEDULE",
              "phases [shoot:]adam|lbfgs:ITERS[@LR], comma-separated (default "
              NDE_DEFAULT_SCHEDULE "; " NDE_DEFAULT_SCHEDULE_PARTIAL " when a state is never "
              "measured or observables are)"),
      NDE_NUM("--lr", NDE_ARG_DOUBLE, &c->fo.lr, "RATE", "learning rate of Adam phases without @LR",
              0, 1e6, NDE_ARG_GT),
      NDE_NUM("--seed", NDE_ARG_U64, &c->fo.seed, "N", "seed of initialisation and minibatches", 0,
              9007199254740992.0, 0),
      NDE_STR("--init", &c->init, "FILE.h5",
              "start from /params/theta (or /params/values/NAME) of a file"),
      NDE_STR("--param", &c->param, "p=V,...", "start values of parameters in natural units"),
      NDE_STR("--resume", &c->resume, "FIT.h5", "continue a checkpointed fit bit for bit"),
      NDE_FLAG("--learn-u0", &c->learn_u0, "fit the initial states too"),
      NDE_STR("--scale", &c->scale, "none|std", "weight states by 1/variance of their data"),
      NDE_STR("--loss", &c->loss, "mean|sum", "reduction of the squared error"),
      NDE_FLAG("--log-loss", &c->log_loss, "compare log(y) and log(data) (positive data)"),
      NDE_NUM("--shoot-interval", NDE_ARG_INT, &c->fo.objective.shoot_interval, "N",
              "observation intervals per multiple-shooting segment", 1, 1e9, 0),
      NDE_NUM("--shoot-weight", NDE_ARG_DOUBLE, &c->fo.objective.shoot_weight, "W",
              "continuity penalty weight", 0, 1e300, 0),
      NDE_NUM("--batch-series", NDE_ARG_INT, &c->fo.objective.batch_series, "N",
              "series per minibatch (0: all)", 0, NDE_FIT_MAX_SERIES, 0),
      NDE_NUM("--batch-time", NDE_ARG_INT, &c->fo.objective.batch_time, "N",
              "minibatch windows of N intervals (0: whole series)", 0, 1e9, 0),
      NDE_NUM("--batch-windows", NDE_ARG_INT, &c->fo.objective.batch_windows, "N",
              "windows per series", 1, 1e6, 0),
      NDE_FLAG("--batch-segments", &c->batch_segments,
               "solve the shooting segments (and windows) of a series as one batch: faster; "
               "the model must read neither t nor an input, and the rounding, so the minimum "
               "found, differs from the default"),
      NDE_NUM("--max-failures", NDE_ARG_INT, &c->fo.max_failures, "N",
              "rejected steps in a row before giving up", 0, 1e6, 0),
      NDE_NUM("--checkpoint-every", NDE_ARG_LONG, &c->fo.checkpoint_every, "N",
              "iterations between resume points (scoring, checkpoints, L-BFGS restarts)", 1, 1e12,
              0),
      NDE_NUM("--checkpoint-seconds", NDE_ARG_DOUBLE, &c->fo.checkpoint_seconds, "S",
              "write the checkpoint at a resume point only if S seconds passed", 0, 1e12, 0),
      NDE_FLAG("--keep-last", &c->keep_last, "keep the final iterate, not the best-scored one"),
      NDE_STR("--validate", &c->validate, "tail:F|series:K",
              "hold out the trailing fraction F of every series, or the last K series: the "
              "validation loss chooses the kept iterate"),
      NDE_NUM("--l2", NDE_ARG_DOUBLE, &c->fo.objective.l2, "W",
              "weight decay: W x the sum of squared network weights in the objective", 0, 1e12, 0),
      NDE_NUM("--l1", NDE_ARG_DOUBLE, &c->fo.objective.l1, "W",
              "W x the sum of absolute network weights in the objective", 0, 1e12, 0),
      NDE_STR("--noise-std", &c->noise, "S|x=S,...",
              "the noise standard deviation, of every column or by state or observable "
              "(default: noise_std recorded in the data)"),
      NDE_NUM("--patience", NDE_ARG_INT, &c->fo.patience, "N",
              "stop when the score has not improved for N resume points (0: never)", 0, 1e9, 0),
      NDE_NUM("--phase-patience", NDE_ARG_INT, &c->fo.phase_patience, "N",
              "end a phase whose loss improved by less than --phase-tol over N resume points "
              "(0: never)", 0, 1e9, 0),
      NDE_NUM("--phase-tol", NDE_ARG_DOUBLE, &c->fo.phase_tol, "R",
              "relative improvement of a phase's loss that counts as progress", 0, 1, 0),
      NDE_NUM("--progress-every", NDE_ARG_LONG, &c->progress_every, "N",
              "iterations between progress lines when not on a terminal", 1, 1e12, 0),
      NDE_STR("--plot", &c->plot, "FILE.svg|png|pdf", "draw the data, the fitted curves and the loss"),
      NDE_FLAG("--quiet", &c->quiet, "no progress output"),
      NDE_NUM("--ensemble", NDE_ARG_INT, &c->members, "K",
              "fit K >= 2 members from seeds SEED .. SEED+K-1 concurrently, all kept in the "
              "result (0: a single fit)", 0, 100000, 0),
      NDE_STR("--resample", &c->resample, "none|series|time",
              "each ensemble member fits a random part of the series or of every series' rows"),
      NDE_NUM("--resample-fraction", NDE_ARG_DOUBLE, &c->eo.fraction, "F",
              "the part each resampled member fits", 0, 1, NDE_ARG_GT | NDE_ARG_LT),
      NDE_NUM("--threads", NDE_ARG_INT, &c->fo.threads, "N",
              "threads (0: the cores available, shared among the MPI ranks on this machine); "
              "the result does not depend on it",
              0, NDE_POOL_MAX_THREADS, 0),
  };
  memcpy(c->opts + c->n, more, sizeof more);
  c->n += (int)(sizeof more / sizeof *more);
  nde_cli_unc_args(c->opts + c->n, &c->unc);
  c->n += NDE_CLI_N_UNC_ARGS;
}

/* The checks across options once they are parsed, and what they set in c->fo. */
int nde_cli_fit_check(fit_cli *c, const char *const pos[2]) {
  int rc;
  if (strcmp(c->scale, "none") && strcmp(c->scale, "std")) {
    nde_cli_error("--scale: expected none or std, got '%s'", c->scale);
    return NDE_EXIT_INPUT;
  }
  if (strcmp(c->loss, "mean") && strcmp(c->loss, "sum")) {
    nde_cli_error("--loss: expected mean or sum, got '%s'", c->loss);
    return NDE_EXIT_INPUT;
  }
  if (nde_cli_check_plot(c->plot)) return NDE_EXIT_INPUT;
  if (c->resume && (c->init || c->param)) {
    nde_cli_error("--resume continues a fit from its checkpoint: --init and --param cannot be "
                  "combined with it");
    return NDE_EXIT_INPUT;
  }
  if ((rc = nde_cli_check_solver(c->opts, c->n, &c->fo.solver, &c->fo.grad))) return rc;
  if ((rc = nde_cli_unc_check(&c->unc))) return rc;
  if (!strcmp(c->resample, "none")) c->eo.resample = NDE_RESAMPLE_NONE;
  else if (!strcmp(c->resample, "series")) c->eo.resample = NDE_RESAMPLE_SERIES;
  else if (!strcmp(c->resample, "time")) c->eo.resample = NDE_RESAMPLE_TIME;
  else {
    nde_cli_error("--resample: expected none, series or time, got '%s'", c->resample);
    return NDE_EXIT_INPUT;
  }
  if (c->members == 1 || (c->members == 0 && (nde_cli_opt(c->opts, c->n, "--resample")->seen ||
                                        nde_cli_opt(c->opts, c->n, "--resample-fraction")->seen))) {
    nde_cli_error("--ensemble: expected K >= 2 members%s (got %d)",
                  c->members ? "" : " with --resample and --resample-fraction", c->members);
    return NDE_EXIT_INPUT;
  }
  if (c->members >= 2 && c->resume) {
    nde_cli_error("--resume continues one fit: it cannot be combined with --ensemble");
    return NDE_EXIT_INPUT;
  }
  const char *inputs[] = {pos[0], pos[1], c->init, NULL};
  if ((rc = nde_cli_check_output("--out", c->out, inputs))) return rc;
  if (c->out && nde_cli_ends_with(c->out, ".csv")) {
    /* nde simulate and nde forecast write CSV for such a name; a result file cannot be one. */
    nde_cli_error("--out: '%s': a fit's result is an HDF5 file, not CSV (expected a name not "
                  "ending in .csv, e.g. fit.h5; nde forecast -o OUT.csv writes curves as CSV)",
                  c->out);
    return NDE_EXIT_INPUT;
  }
  if (c->plot && (rc = nde_cli_check_output("--plot", c->plot, inputs))) return rc;
  c->fo.objective.loss_sum = !strcmp(c->loss, "sum");
  c->fo.objective.scale_by_std = !strcmp(c->scale, "std");
  c->fo.objective.log_space = c->log_loss;
  c->fo.objective.learn_u0 = c->learn_u0;
  c->fo.objective.autonomous = c->batch_segments;
  c->fo.keep_last = c->keep_last;
  if (c->validate && (rc = parse_validate(c->validate, &c->fo))) return rc;
  return 0;
}
