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
#include "fit_args.h"
#include "fit_report.h"
#include "plot.h"

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
  nde_str_adds(why, nde_cli_stop_message(nde_result_settings(res)->solver.method, &stats,
                                         nde_result_model(res), msg, sizeof msg));
  return 1;
}

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

/* Whether standard errors of a fit of m have any coordinate: a learnable shared or per-series
 * parameter, learned initial states, or (nets) network weights (as nde__coords_make). */
static int unc_coordinates(const nde_model *m, int learn_u0, int nets) {
  if (learn_u0 || nde_model_n_series_params(m) > 0 || (nets && nde_model_n_nets(m) > 0)) return 1;
  for (int i = 0; i < nde_model_n_layout(m); i++) {
    nde_model_layout_entry e;
    if (nde_model_get_layout(m, i, &e) == NDE_OK && e.kind == NDE_LAYOUT_PARAM) return 1;
  }
  return 0;
}

/* --ensemble K: members run concurrently; progress counts members, SIGINT stops them all. */
static nde_status fit_ensemble(nde_model *model, const nde_data *data,
                               nde_result_fit_opts *fo, nde_ensemble_opts *eo, int members,
                               int jobs, run *r, nde_result **res, int *stopped, nde_error *err) {
  eo->members = members;
  eo->threads = jobs;
  eo->progress = on_members;
  eo->progress_ctx = r;
  fo->progress = NULL;
  nde_cli_progress_note(&r->prog, "nde: ensemble of %d fits (seeds %llu to %llu%s%s) on %s",
                        members, (unsigned long long)fo->seed,
                        (unsigned long long)(fo->seed + (uint64_t)members - 1),
                        eo->resample == NDE_RESAMPLE_NONE ? "" : ", resampling the ",
                        eo->resample == NDE_RESAMPLE_NONE ? "" : nde_resample_str(eo->resample),
                        jobs > 0 ? "the given threads" : "every core");
  return nde_result_fit_ensemble(model, data, fo, eo, res, stopped, err);
}

/* A fit that did not end done or early-stop: the message, and the exit code (130/143 after a
 * signal, with the checkpoint named; 3 otherwise, with the data value behind a loss that is not
 * finite at the start when one is found). */
static int report_failure(const nde_result *res, const nde_model *model, const nde_data *data,
                          int log_loss, int rank0, const char *out) {
  if (nde_result_status(res) == NDE_FIT_STOPPED) {
    if (rank0)
      fprintf(stderr, "nde: interrupted after %ld iterations; checkpoint written to %s (continue "
                      "with --resume %s)\n",
              nde_result_iterations(res), out, out);
    return g_signal == SIGTERM ? 143 : 130;
  }
  nde_str why = NDE_STR_INIT;
  const int found = nde_result_status(res) == NDE_FIT_FAILED && nde_result_iterations(res) == 0 &&
                    nde_cli_explain_loss(model, data, log_loss, predict_kept, (void *)res,
                                         nde_result_message(res), &why);
  if (rank0)
    nde_cli_error("%s%s%s%s; the %s parameters are in %s", nde_result_message(res),
                  found ? " (" : "", found ? why.data : "", found ? ")" : "",
                  nde_result_iterations(res) == 0       ? "starting"
                  : nde_result_get_kept(res).is_best ? "best"
                                                     : "last good",
                  out);
  nde_str_release(&why);
  return NDE_EXIT_NUMERIC;
}

int nde_cmd_fit(int argc, char **argv) {
  fit_cli c;
  nde_cli_fit_init(&c);
  const char *pos[2];
  int n_pos;
  int rc = nde_cli_parse(USAGE, argc, argv, c.opts, c.n, pos, 2, 2, &n_pos);
  if (rc >= 0) return rc;
  if ((rc = nde_cli_fit_check(&c, pos))) return rc;
  nde_result_fit_opts fo = c.fo;
  nde_ensemble_opts eo = c.eo;
  nde_cli_unc unc = c.unc;
  const char *const out = c.out, *const init = c.init, *const resume = c.resume;
  const char *const plot = c.plot, *const param = c.param, *const noise = c.noise;
  const int learn_u0 = c.learn_u0, log_loss = c.log_loss, members = c.members;
  int quiet = c.quiet;

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
  /* Standard errors need coordinates: refused before the fit rather than after it. */
  if (nde_cli_unc_wanted(&unc) && !unc_coordinates(model, learn_u0, unc.nets)) {
    nde_cli_error("%s: --uncertainty: nothing to estimate (no learnable parameters%s)", pos[0],
                  nde_model_n_nets(model) ? " besides network weights, which are left out unless "
                                            "asked for with --uncertainty-nets"
                                          : "");
    rc = NDE_EXIT_INPUT;
    goto done;
  }
  noise_sd = calloc((size_t)(nde_model_state_dim(model) + nde_model_n_observables(model)),
                    sizeof *noise_sd);
  if (!noise_sd) {
    nde_cli_error("out of memory");
    rc = NDE_EXIT_IO;
    goto done;
  }
  if (noise) {
    if ((rc = nde_cli_parse_noise(noise, model, noise_sd))) goto done;
    fo.noise_std = noise_sd;
  }
  if (init || param) {
    theta = calloc(n_theta + 1, sizeof *theta);
    if (!theta) {
      nde_cli_error("out of memory");
      rc = NDE_EXIT_IO;
      goto done;
    }
    if ((rc = nde_cli_start_theta(model, fo.seed, n_ser, init, param, theta))) goto done;
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
    /* An ensemble runs in one process (its members on every core): refused before any work,
     * by rank 0 alone, rather than run K times over. */
    if (members >= 2 && nde_comm_size(comm) > 1) {
      if (nde_comm_rank(comm) == 0)
        nde_cli_error("--ensemble: an ensemble is not distributed over MPI ranks (this launch has "
                      "%d): run it without mpirun; its members use every core (--jobs)",
                      nde_comm_size(comm));
      rc = NDE_EXIT_INPUT;
      goto done;
    }
  }
  if (!quiet) nde_cli_note_inexact_grad(&fo.solver, &fo.grad);
  cmdline = nde_cli_command_line(argc, argv);
  fo.command_line = cmdline;
  fo.data_label = pos[1];
  fo.checkpoint_path = out;
  run r;
  memset(&r, 0, sizeof r);
  nde_cli_progress_init(&r.prog, quiet);
  r.every = c.progress_every;
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
                        fo.schedule && *fo.schedule ? fo.schedule
                                                    : nde_default_schedule(model, data));
  int stopped = 0;
  nde_status st =
      members >= 2 ? fit_ensemble(model, data, &fo, &eo, members, unc.jobs, &r, &res, &stopped, &err)
                   : nde_result_fit(model, data, &fo, &res, &err);
  if (st == NDE_OK && stopped) {
    nde_cli_progress_end(&r.prog);
    fprintf(stderr, "nde: interrupted: the ensemble is not written (an ensemble cannot be "
                    "resumed; run it again)\n");
    rc = g_signal == SIGTERM ? 143 : 130;
    goto done;
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
  const nde_fit_status fs = nde_result_status(res);
  if (fs == NDE_FIT_STOPPED || fs == NDE_FIT_DIVERGED || fs == NDE_FIT_FAILED) {
    rc = report_failure(res, model, data, log_loss, nde_comm_rank(comm) == 0, out);
    goto done;
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
  if (!quiet) nde_cli_fit_summary(res, out);
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
