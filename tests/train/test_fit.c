/* The fit objective and the training loop: the objective's gradient (parameters, learnable
 * initial states, multiple-shooting start states, per-state scaling, log space) against
 * finite differences; the divergence guard restores x and the optimiser state bit for bit;
 * a run stopped and resumed from its state ends bit-identical to an uninterrupted one; the
 * schedule parser names what is wrong. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "nde/train.h"
#include "train/internal.h"

#define K 13

typedef struct world {
  nde_cmodel m;
  double t[2][K], obs[2][K * 2], u0[2][2];
  nde_fit_series series[2];
  double *theta;
} world;

static void make_world(world *w) {
  memset(w, 0, sizeof *w);
  assert_int_equal(nde_cmodel_lv_ude(1, &w->m), NDE_OK);
  nde_rng rng;
  nde_rng_seed(&rng, 4242);
  w->theta = calloc(w->m.n_theta, sizeof(double));
  assert_int_equal(nde_net_init(w->m.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, w->theta), NDE_OK);
  for (int s = 0; s < 2; s++) {
    w->u0[s][0] = 0.44 + 0.31 * s;
    w->u0[s][1] = 4.63 - 1.7 * s;
    for (int k = 0; k < K; k++) {
      w->t[s][k] = 0.25 * k + 0.013 * s * k;
      w->obs[s][2 * k] = w->u0[s][0] * (1 + 0.4 * sin(1.3 * w->t[s][k]));
      w->obs[s][2 * k + 1] = w->u0[s][1] * exp(-0.3 * w->t[s][k]) + 0.02 * nde_rng_normal(&rng);
    }
    w->obs[s][2 * 5 + 1] = NAN; /* a missing value */
    w->series[s] = (nde_fit_series){K, w->t[s], w->obs[s], w->u0[s], 0, s};
  }
}

static void free_world(world *w) {
  free(w->theta);
  nde_cmodel_destroy(&w->m);
}

static void check_gradient(const nde_fit_opts *fo, int shooting) {
  world w;
  make_world(&w);
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_fit *f = NULL;
  assert_int_equal(nde_fit_create(w.m.rhs, &so, NULL, 2, w.series, fo, &f, NULL), NDE_OK);
  const size_t nx = nde_fit_n_x(f, shooting);
  double *x = calloc(nde_fit_n_x(f, 1), sizeof(double)), *g = calloc(nx, sizeof(double));
  double *xp = calloc(nde_fit_n_x(f, 1), sizeof(double)), *d = calloc(nx, sizeof(double));
  assert_int_equal(nde_fit_init_x(f, w.theta, x), NDE_OK);
  /* Move the start states off the data so that the continuity penalty is active. */
  for (size_t i = w.m.n_theta; i < nde_fit_n_x(f, 1); i++) x[i] *= 1.07;
  double L;
  nde_fit_info info;
  assert_int_equal(nde_fit_eval(f, x, shooting, NULL, &L, g, &info), NDE_OK);
  assert_true(isfinite(L));
  if (shooting) assert_true(info.penalty > 0);
  nde_rng rng;
  nde_rng_seed(&rng, 99);
  for (int trial = 0; trial < 3; trial++) {
    for (size_t i = 0; i < nx; i++) d[i] = nde_rng_normal(&rng);
    const double eps = 1e-4, off[4] = {-2, -1, 1, 2};
    double Lv[4];
    for (int j = 0; j < 4; j++) {
      memcpy(xp, x, nde_fit_n_x(f, 1) * sizeof(double));
      for (size_t i = 0; i < nx; i++) xp[i] += off[j] * eps * d[i];
      assert_int_equal(nde_fit_eval(f, xp, shooting, NULL, &Lv[j], NULL, NULL), NDE_OK);
    }
    const double fd = (Lv[0] - 8 * Lv[1] + 8 * Lv[2] - Lv[3]) / (12 * eps);
    check_rel(nde_test_dot(nx, g, d), fd, 1e-7, 1e-8);
  }
  free(x);
  free(g);
  free(xp);
  free(d);
  nde_fit_destroy(&f);
  free_world(&w);
}

static void objective_gradient_matches_finite_differences(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  check_gradient(&fo, 0);
}

static void learnable_initial_states_and_std_scaling_have_exact_gradients(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.learn_u0 = 1;
  fo.scale_by_std = 1;
  fo.loss_sum = 1;
  check_gradient(&fo, 0);
}

static void multiple_shooting_gradient_includes_start_states_and_penalty(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 3;
  fo.shoot_weight = 7.3;
  fo.learn_u0 = 1;
  check_gradient(&fo, 1);
}

static void log_space_loss_gradient_matches_finite_differences(void **state) {
  (void)state;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.log_space = 1;
  fo.shoot_interval = 4;
  check_gradient(&fo, 1);
}

/* ---- the training loop ---- */

/* The default objective over the world's two series (RK4, h = 0.05) and its start x0 (malloc'ed)
 * from the world's theta, segment starts included. */
static nde_fit *fit_of_world(const world *w, double **x0) {
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_fit *f = NULL;
  assert_int_equal(nde_fit_create(w->m.rhs, &so, NULL, 2, w->series, NULL, &f, NULL), NDE_OK);
  *x0 = calloc(nde_fit_n_x(f, 1), sizeof(double));
  assert_int_equal(nde_fit_init_x(f, w->theta, *x0), NDE_OK);
  return f;
}


typedef struct recorder {
  double states[64][1024];
  uint64_t words[64][NDE_TRAIN_STATE_WORDS];
  size_t len[64];
  int n;
  long stop_at;
  int events;
  char event[320]; /* the last event, and the iteration it came at */
  long event_iter;
  int fail_checkpoint; /* the checkpoint callback reports a failure */
} recorder;

static int rec_checkpoint(void *ctx, nde_train *t) {
  recorder *r = ctx;
  if (r->fail_checkpoint) return 1;
  if (r->n < 64) {
    r->len[r->n] = nde_train_state_size(t);
    assert_true(r->len[r->n] <= 1024);
    nde_train_get_state(t, r->states[r->n], r->words[r->n]);
    r->n++;
  }
  return 0;
}

static int rec_progress(void *ctx, const nde_train_progress *p) {
  recorder *r = ctx;
  if (p->event) {
    r->events++;
    snprintf(r->event, sizeof r->event, "%s", p->event);
    r->event_iter = p->total_iter;
  }
  return r->stop_at > 0 && p->total_iter >= r->stop_at;
}

static nde_train *make_train(nde_fit *f, const double *x0, const char *schedule, recorder *r,
                             long nan_eval) {
  static nde_fit_phase ph[NDE_MAX_PHASES];
  int nph;
  nde_error err;
  assert_int_equal(nde_fit_schedule_parse(schedule, 0.01, ph, &nph, &err), NDE_OK);
  nde_train_opts to = nde_train_opts_default();
  to.phases = ph;
  to.n_phases = nph;
  to.seed = 7;
  to.checkpoint_every = 1;
  to.progress_every = 1;
  to.checkpoint = rec_checkpoint;
  to.checkpoint_ctx = r;
  to.progress = rec_progress;
  to.progress_ctx = r;
  nde_train *t = NULL;
  assert_int_equal(nde_train_create(f, &to, x0, &t, NULL), NDE_OK);
  nde__train_set_test_nan_eval(t, nan_eval);
  return t;
}

/* A run that returns an error does not say that every phase ran to its end: its reason was left
 * at NDE_TRAIN_DONE (a C caller reading only the reason took a failed run for a finished one). */
static void a_run_that_returns_an_error_is_not_done(void **state) {
  (void)state;
  world w;
  make_world(&w);
  double *x0 = NULL;
  nde_fit *f = fit_of_world(&w, &x0);
  recorder *r = calloc(1, sizeof *r);
  r->fail_checkpoint = 1;
  nde_train *t = make_train(f, x0, "adam:6@0.03", r, 0);
  nde_train_reason why = NDE_TRAIN_DONE;
  assert_int_equal(nde_train_run(t, &why), NDE_ERR_IO);
  assert_int_equal(why, NDE_TRAIN_FAILED);
  assert_false(nde_train_finished(t));
  nde_train_destroy(&t);
  free(r);
  free(x0);
  nde_fit_destroy(&f);
  free_world(&w);
}

static void injected_nan_restores_theta_and_adam_state_bit_for_bit(void **state) {
  (void)state;
  world w;
  make_world(&w);
  double *x0 = NULL;
  nde_fit *f = fit_of_world(&w, &x0);
  const size_t nx = nde_fit_n_x(f, 1);
  recorder *ref = calloc(1, sizeof *ref), *hit = calloc(1, sizeof *hit);
  nde_train_reason why;
  nde_train *a = make_train(f, x0, "adam:6@0.03", ref, 0);
  assert_int_equal(nde_train_run(a, &why), NDE_OK);
  /* Evaluation 5 is the one after the 4th step: it is rejected. */
  nde_train *b = make_train(f, x0, "adam:6@0.03", hit, 5);
  assert_int_equal(nde_train_run(b, &why), NDE_OK);
  assert_int_equal(why, NDE_TRAIN_DONE);
  assert_int_equal(hit->events, 1);
  const double *hr, *rr;
  assert_int_equal(nde_train_history(b, &hr), 6);
  nde_train_history(a, &rr);
  /* Before the rejection: the same path. */
  assert_memory_equal(hr, rr, 4 * sizeof(double));
  assert_memory_equal(hit->states[2], ref->states[2], hit->len[2] * sizeof(double));
  /* After it: the loss at the restored point is exactly the loss of evaluation 4. */
  assert_true(hr[4] == rr[3]);
  /* And the step taken from there is Adam from the restored (m, v, step) with half the rate. */
  /* State layout: header and phase ends, x, x_good, x_best, Adam now, Adam before the step,
   * history (3 entries), scores and their iterations (3 each). */
  const size_t as = 2 * nx + 1, hdr = ref->len[2] - 3 * nx - 2 * as - 3 - 6;
  double *x3 = ref->states[2] + hdr; /* x after 3 steps (checkpoint after iteration 3) */
  nde_adam_opts ao = nde_adam_opts_default();
  ao.lr = 0.015;
  nde_adam *ad = NULL;
  assert_int_equal(nde_adam_create(nx, &ao, &ad, NULL), NDE_OK);
  assert_int_equal(nde_adam_set_state(ad, ref->states[2] + hdr + 3 * nx), NDE_OK);
  double *xe = calloc(nx, sizeof(double)), *g = calloc(nx, sizeof(double)), L;
  memcpy(xe, x3, nx * sizeof(double));
  assert_int_equal(nde_fit_eval(f, xe, 0, NULL, &L, g, NULL), NDE_OK);
  nde_adam_step(ad, xe, g);
  /* Checkpoint 3 follows the 4th (rejected) step; checkpoint 4 follows the step redone. */
  assert_memory_equal(hit->states[4] + hdr, xe, nx * sizeof(double));
  free(xe);
  free(g);
  nde_adam_destroy(&ad);
  nde_train_destroy(&a);
  nde_train_destroy(&b);
  free(ref);
  free(hit);
  free(x0);
  nde_fit_destroy(&f);
  free_world(&w);
}

static void a_start_that_cannot_be_evaluated_fails_at_once(void **state) {
  (void)state;
  world w;
  make_world(&w);
  nde_fit *f = NULL;
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  assert_int_equal(nde_fit_create(w.m.rhs, &so, NULL, 2, w.series, NULL, &f, NULL), NDE_OK);
  /* No step to undo: halving the learning rate cannot help, for Adam or L-BFGS. */
  const size_t nx = nde_fit_n_x(f, 1);
  double *x0 = calloc(nx, sizeof(double));
  for (size_t i = 0; i < nx; i++) x0[i] = NAN;
  const char *const scheds[2] = {"adam:10@0.01", "lbfgs:10"};
  for (int k = 0; k < 2; k++) {
    recorder *r = calloc(1, sizeof *r);
    nde_train *t = make_train(f, x0, scheds[k], r, 0);
    nde_train_reason why;
    assert_int_equal(nde_train_run(t, &why), NDE_OK);
    assert_int_equal(why, NDE_TRAIN_FAILED);
    assert_int_equal(r->events, 1);
    assert_int_equal(nde_train_history(t, NULL), 0);
    const double *xb;
    nde_train_best(t, &xb, NULL, NULL);
    assert_null(xb);
    /* Issue 16: the empty histories are arrays, not NULL (copied with memcpy by the result
     * layer, which UBSan refuses for NULL), and the state of a run that never took a step
     * saves and restores. */
    const double *h, *sc;
    const long *si;
    assert_int_equal(nde_train_history(t, &h), 0);
    assert_int_equal(nde_train_scores(t, &sc, &si), 0);
    assert_non_null(h);
    assert_non_null(sc);
    assert_non_null(si);
    const size_t len = nde_train_state_size(t);
    double *saved = calloc(len, sizeof *saved);
    uint64_t words[NDE_TRAIN_STATE_WORDS];
    nde_train_get_state(t, saved, words);
    nde_train *u = make_train(f, x0, scheds[k], r, 0);
    assert_int_equal(nde_train_set_state(u, saved, len, words), NDE_OK);
    assert_int_equal(nde_train_history(u, NULL), 0);
    nde_train_destroy(&u);
    free(saved);
    nde_train_destroy(&t);
    free(r);
  }
  free(x0);
  nde_fit_destroy(&f);
  free_world(&w);
}

/* du/dt = -k u with k = theta[0]; the right-hand side fails (recoverably) for k > 2, so every step
 * that leaves k <= 2 is rejected while the accepted point stays valid. */
static int clamp_f(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                   double *cache) {
  (void)ctx, (void)t, (void)cache;
  if (th[0] > 2) return 1;
  for (int b = 0; b < B; b++) dU[b] = -th[0] * U[b];
  return 0;
}

static int clamp_vjp(void *ctx, double t, int B, const double *U, const double *th,
                     const double *L, const double *cache, double *gU, double *gth) {
  (void)ctx, (void)t, (void)cache;
  for (int b = 0; b < B; b++) {
    if (gU) gU[b] += -th[0] * L[b];
    if (gth) gth[0] += -U[b] * L[b];
  }
  return 0;
}

/* x' = -k x from x = 1 observed at 6 times 0.2 apart with the true k, fitted by RK4 at 4 steps
 * per interval through the rhs ops (d holds what the fit borrows). */
typedef struct decay {
  double t[6], obs[6], u0;
  nde_fit_series se;
  nde_rhs *rhs;
} decay;

static nde_fit *decay_fit(decay *d, nde_rhs_ops ops, double k) {
  const nde_rhs_info info = {1, 1, 1, 0, NULL};
  d->rhs = NULL;
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &d->rhs, NULL), NDE_OK);
  d->u0 = 1.0;
  for (int i = 0; i < 6; i++) {
    d->t[i] = 0.2 * i;
    d->obs[i] = exp(-k * d->t[i]);
  }
  d->se = (nde_fit_series){6, d->t, d->obs, &d->u0, 0, 0};
  nde_solver_opts so = nde_solver_opts_default();
  so.steps_per_interval = 4;
  nde_fit *f = NULL;
  assert_int_equal(nde_fit_create(d->rhs, &so, NULL, 1, &d->se, NULL, &f, NULL), NDE_OK);
  return f;
}

static void steps_that_keep_failing_diverge_keeping_the_last_good_point(void **state) {
  (void)state;
  /* Data from k = 3 pull k upwards, past the domain. */
  decay d;
  nde_fit *f = decay_fit(&d, (nde_rhs_ops){.f = clamp_f, .vjp = clamp_vjp}, 3.0);
  double x0[1] = {1.999};
  recorder *r = calloc(1, sizeof *r);
  nde_fit_phase ph = {NDE_OPT_ADAM, 50, 1.0, 0};
  nde_train_opts to = nde_train_opts_default();
  to.phases = &ph;
  to.n_phases = 1;
  to.max_failures = 3;
  to.progress = rec_progress;
  to.progress_ctx = r;
  nde_train *tr = NULL;
  assert_int_equal(nde_train_create(f, &to, x0, &tr, NULL), NDE_OK);
  nde_train_reason why;
  assert_int_equal(nde_train_run(tr, &why), NDE_OK);
  assert_int_equal(why, NDE_TRAIN_DIVERGED);
  assert_int_equal(r->events, 4); /* max_failures = 3: the fourth rejection stops */
  assert_true(nde_train_x(tr)[0] <= 2.0);
  assert_true(nde_train_last_stop(tr)->reason == NDE_REASON_RHS_RECOVERABLE);
  nde_train_destroy(&tr);
  free(r);
  nde_fit_destroy(&f);
  nde_rhs_destroy(&d.rhs);
}

/* The same decay with a VJP that fails (recoverably) for k > 2 while f stays fine: a failing
 * backward pass is a rejected step like a failing forward solve. */
static int clamp_f_ok(void *ctx, double t, int B, const double *U, const double *th, double *dU,
                      double *cache) {
  (void)ctx, (void)t, (void)cache;
  for (int b = 0; b < B; b++) dU[b] = -th[0] * U[b];
  return 0;
}

static int clamp_vjp_fails(void *ctx, double t, int B, const double *U, const double *th,
                           const double *L, const double *cache, double *gU, double *gth) {
  if (th[0] > 2) return 1;
  return clamp_vjp(ctx, t, B, U, th, L, cache, gU, gth);
}

typedef struct events {
  int n, backward;
} events;

static int count_events(void *ctx, const nde_train_progress *p) {
  events *e = ctx;
  if (p->event) {
    e->n++;
    e->backward += strstr(p->event, "backward (adjoint) solve stopped") != NULL;
  }
  return 0;
}

static void a_failing_backward_pass_is_a_rejected_step(void **state) {
  (void)state;
  decay d;
  nde_fit *f = decay_fit(&d, (nde_rhs_ops){.f = clamp_f_ok, .vjp = clamp_vjp_fails}, 1.9);
  /* From k = 1.5, Adam's first step of 0.8 lands at 2.3: the forward solve is fine, its VJP fails. */
  double x0[1] = {1.5};
  nde_fit_phase ph = {NDE_OPT_ADAM, 300, 0.8, 0};
  nde_train_opts to = nde_train_opts_default();
  to.phases = &ph;
  to.n_phases = 1;
  events ev = {0, 0};
  to.progress = count_events;
  to.progress_ctx = &ev;
  to.phase_patience = 0;
  nde_train *tr = NULL;
  assert_int_equal(nde_train_create(f, &to, x0, &tr, NULL), NDE_OK);
  nde_train_reason why;
  assert_int_equal(nde_train_run(tr, &why), NDE_OK);
  assert_int_equal(why, NDE_TRAIN_DONE);
  assert_true(ev.backward >= 1);
  check_rel(nde_train_x(tr)[0], 1.9, 1e-3, 1e-12);
  nde_train_destroy(&tr);
  nde_fit_destroy(&f);
  nde_rhs_destroy(&d.rhs);
}

/* An Adam phase whose loss jumps a thousandfold for a whole chunk (finite, so the guard does not
 * reject it) goes back to the best-scored point with a fresh optimiser and half the rate, says
 * so, and goes on from there. */
static void an_adam_blow_up_goes_back_to_the_best_point(void **state) {
  (void)state;
  world w;
  make_world(&w);
  double *x0 = NULL;
  nde_fit *f = fit_of_world(&w, &x0);
  recorder *r = calloc(1, sizeof *r);
  static nde_fit_phase ph[1] = {{NDE_OPT_ADAM, 30, 0.01, 0}};
  nde_train_opts to = nde_train_opts_default();
  to.phases = ph;
  to.n_phases = 1;
  to.checkpoint_every = 5;
  to.phase_patience = 0;
  to.progress = rec_progress;
  to.progress_ctx = r;
  to.checkpoint = rec_checkpoint;
  to.checkpoint_ctx = r;
  nde_train *t = NULL;
  assert_int_equal(nde_train_create(f, &to, x0, &t, NULL), NDE_OK);
  /* The iterates 10..14 a thousandfold, where evaluated and where scored: the score of iterate
   * 9 (the resume point after 10) stays the best, and the chunk 10..14 is far above it. */
  nde__train_set_test_scale_eval(t, 10, 5, 1e3);
  nde_train_reason why;
  assert_int_equal(nde_train_run(t, &why), NDE_OK);
  assert_int_equal(why, NDE_TRAIN_DONE);
  print_message("%d event(s), the last: %s at %ld\n", r->events, r->event, r->event_iter);
  assert_int_equal(r->events, 1);
  const double *h;
  const size_t nh = nde_train_history(t, &h);
  assert_int_equal(nh, 30);
  const double *xb;
  double best;
  long it;
  nde_train_best(t, &xb, &best, &it);
  print_message("best %.6g at %ld, last %.6g; h[9] %.17g, h[15] %.17g\n", best, it, h[nh - 1],
                h[9], h[15]);
  /* At the resume point after iteration 15, with half the rate, back to iterate 9: the next
   * loss is that iterate's, bit for bit, not the loss where the run had got to. */
  assert_int_equal(r->event_iter, 15);
  assert_non_null(strstr(r->event, "back to the best point (iteration 10), learning rate now "
                                   "0.005"));
  assert_memory_equal(&h[15], &h[9], sizeof h[9]);
  /* The loss after the rollback is back at the level before the jump, not a thousandfold. */
  assert_true(h[nh - 1] < 2 * h[9]);
  /* Resumed from a checkpoint before the blow-up and from one after the rollback, the run ends
   * where the uninterrupted one did, bit for bit (the scaled window counts evaluations, which the
   * state carries). */
  assert_int_equal(r->n, 6); /* resume points at iterations 5, 10, ..., 30 */
  for (int k = 1; k <= 4; k += 3) {
    recorder *q = calloc(1, sizeof *q);
    to.progress_ctx = q;
    to.checkpoint = NULL;
    nde_train *c = NULL;
    assert_int_equal(nde_train_create(f, &to, x0, &c, NULL), NDE_OK);
    nde__train_set_test_scale_eval(c, 10, 5, 1e3);
    assert_int_equal(nde_train_set_state(c, r->states[k], r->len[k], r->words[k]), NDE_OK);
    assert_int_equal(nde_train_run(c, &why), NDE_OK);
    assert_int_equal(q->events, k == 1 ? 1 : 0); /* the rollback again, or already behind */
    assert_memory_equal(nde_train_x(c), nde_train_x(t), nde_fit_n_x(f, 1) * sizeof(double));
    nde_train_destroy(&c);
    free(q);
  }
  nde_train_destroy(&t);
  nde_fit_destroy(&f);
  free(x0);
  free(r);
  free_world(&w);
}

static void the_best_scored_iterate_is_kept_and_scores_follow_resume_points(void **state) {
  (void)state;
  world w;
  make_world(&w);
  double *x0 = NULL;
  nde_fit *f = fit_of_world(&w, &x0);
  recorder *r = calloc(1, sizeof *r);
  /* A learning rate far too large: the loss goes up after a few steps (and the phase would end
   * early for lack of progress: that is another test). */
  static nde_fit_phase ph1[1] = {{NDE_OPT_ADAM, 12, 0.5, 0}};
  nde_train_opts to = nde_train_opts_default();
  to.phases = ph1;
  to.n_phases = 1;
  to.checkpoint_every = 1;
  to.phase_patience = 0;
  nde_train *t = NULL;
  assert_int_equal(nde_train_create(f, &to, x0, &t, NULL), NDE_OK);
  nde_train_reason why;
  assert_int_equal(nde_train_run(t, &why), NDE_OK);
  const double *sc, *xb;
  const long *si;
  const size_t ns = nde_train_scores(t, &sc, &si);
  assert_int_equal(ns, 12); /* checkpoint_every = 1: every iteration is scored */
  size_t ib = 0;
  for (size_t i = 1; i < ns; i++)
    if (sc[i] < sc[ib]) ib = i;
  double best;
  long it;
  nde_train_best(t, &xb, &best, &it);
  assert_non_null(xb);
  assert_true(best == sc[ib]);
  assert_int_equal(it, si[ib]);
  /* The kept point's score is the full objective there. */
  double L;
  assert_int_equal(nde_fit_eval(f, xb, 0, NULL, &L, NULL, NULL), NDE_OK);
  assert_true(L == best);
  assert_true(best <= sc[ns - 1]);
  nde_train_destroy(&t);
  free(r);
  free(x0);
  nde_fit_destroy(&f);
  free_world(&w);
}

static void resumed_run_is_bit_identical_to_an_uninterrupted_one(void **state) {
  (void)state;
  world w;
  make_world(&w);
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.shoot_interval = 4;
  fo.batch_series = 1; /* minibatches: the RNG state must be resumed too */
  nde_fit *f = NULL;
  assert_int_equal(nde_fit_create(w.m.rhs, &so, NULL, 2, w.series, &fo, &f, NULL), NDE_OK);
  const size_t nx = nde_fit_n_x(f, 1);
  double *x0 = calloc(nx, sizeof(double));
  assert_int_equal(nde_fit_init_x(f, w.theta, x0), NDE_OK);
  const char *sched = "shoot:adam:12@0.02,adam:6@0.01,lbfgs:8";
  const long stops[3] = {5, 15, 22}; /* inside the shooting phase, the Adam phase, L-BFGS */
  recorder *full = calloc(1, sizeof *full);
  nde_train *a = make_train(f, x0, sched, full, 0);
  nde_train_reason why;
  assert_int_equal(nde_train_run(a, &why), NDE_OK);
  const size_t done = nde_train_history(a, NULL);
  assert_true(done > 22);
  for (int sidx = 0; sidx < 3; sidx++) {
    recorder *part = calloc(1, sizeof *part), *rest = calloc(1, sizeof *rest);
    part->stop_at = stops[sidx];
    nde_train *b = make_train(f, x0, sched, part, 0);
    assert_int_equal(nde_train_run(b, &why), NDE_OK);
    assert_int_equal(why, NDE_TRAIN_STOPPED);
    const size_t len = nde_train_state_size(b);
    double *saved = calloc(len, sizeof(double));
    uint64_t words[NDE_TRAIN_STATE_WORDS];
    nde_train_get_state(b, saved, words);
    /* With one-iteration L-BFGS chunks every stop is at a resume point. */
    assert_true(nde_train_at_resume_point(b));
    nde_train_destroy(&b);
    nde_train *c = make_train(f, x0, sched, rest, 0);
    assert_int_equal(nde_train_set_state(c, saved, len, words), NDE_OK);
    assert_int_equal(nde_train_run(c, &why), NDE_OK);
    assert_int_equal(why, NDE_TRAIN_DONE);
    assert_int_equal(nde_train_history(c, NULL), done);
    assert_memory_equal(nde_train_x(c), nde_train_x(a), nx * sizeof(double));
    /* A state of the wrong length is refused with a message. */
    assert_int_equal(nde_train_set_state(c, saved, len - 1, words), NDE_ERR_ARG);
    assert_non_null(strstr(nde_train_errmsg(c), "wrong length"));
    nde_train_destroy(&c);
    free(saved);
    free(part);
    free(rest);
  }
  nde_train_destroy(&a);
  free(full);
  free(x0);
  nde_fit_destroy(&f);
  free_world(&w);
}

static void schedule_parser_names_the_bad_phase(void **state) {
  (void)state;
  nde_fit_phase ph[NDE_MAX_PHASES];
  int n;
  nde_error err;
  assert_int_equal(
      nde_fit_schedule_parse("shoot:adam:3000@0.02,shoot:lbfgs:1000,lbfgs:1000", 0.1, ph, &n, &err),
      NDE_OK);
  assert_int_equal(n, 3);
  assert_true(ph[0].shooting && ph[0].opt == NDE_OPT_ADAM && ph[0].iters == 3000);
  check_close(ph[0].lr, 0.02, 0);
  assert_true(ph[1].shooting && ph[1].opt == NDE_OPT_LBFGS && !ph[2].shooting);
  check_close(ph[2].lr, 0.1, 0);
  assert_int_equal(nde_fit_schedule_parse("adam:10,sgd:5", 0.1, ph, &n, &err),
                   NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "phase 2"));
  assert_non_null(strstr(err.msg, "unknown optimiser 'sgd'"));
  assert_int_equal(nde_fit_schedule_parse("adam:ten", 0.1, ph, &n, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "bad iteration count 'ten'"));
  assert_int_equal(nde_fit_schedule_parse("adam:10@-1", 0.1, ph, &n, &err),
                   NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "bad learning rate"));
  assert_int_equal(nde_fit_schedule_parse("", 0.1, ph, &n, &err), NDE_ERR_ARG);
  /* An empty phase is refused inside and at the end alike (a trailing ',' was dropped). */
  assert_int_equal(nde_fit_schedule_parse("adam:10,,lbfgs:5", 0.1, ph, &n, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "schedule phase 2 (''): empty"));
  assert_int_equal(nde_fit_schedule_parse("shoot:lbfgs:5,", 0.1, ph, &n, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "schedule phase 2 (''): empty"));
}

/* Messages about one series name it: by the caller's series_names, or as "series K" counted from
 * 0 as the data layer counts (they said "series 2" for the array's second series, index 1). */
static void messages_name_the_series(void **state) {
  (void)state;
  world w;
  make_world(&w);
  nde_solver_opts so = nde_solver_opts_default();
  so.dt = 0.05;
  nde_fit_opts fo = nde_fit_opts_default();
  fo.batch_time = 4;
  fo.batch_windows = 1000;
  nde_fit *f = NULL;
  nde_error err;
  assert_int_equal(nde_fit_create(w.m.rhs, &so, NULL, 2, w.series, &fo, &f, &err), NDE_ERR_ARG);
  assert_non_null(strstr(err.msg, "intervals that series 0 has"));
  const char *names[2] = {"a.h5:/run1", "a.h5:/run2"};
  fo.series_names = names;
  fo.batch_windows = 4;
  w.series[1].loss_from = K;
  assert_int_equal(nde_fit_create(w.m.rhs, &so, NULL, 2, w.series, &fo, &f, &err), NDE_ERR_ARG);
  assert_string_equal(err.msg, "a.h5:/run2: loss_from 13 outside [0, 13)");
  assert_null(f);
  free_world(&w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(objective_gradient_matches_finite_differences),
      cmocka_unit_test(messages_name_the_series),
      cmocka_unit_test(learnable_initial_states_and_std_scaling_have_exact_gradients),
      cmocka_unit_test(multiple_shooting_gradient_includes_start_states_and_penalty),
      cmocka_unit_test(log_space_loss_gradient_matches_finite_differences),
      cmocka_unit_test(injected_nan_restores_theta_and_adam_state_bit_for_bit),
      cmocka_unit_test(a_run_that_returns_an_error_is_not_done),
      cmocka_unit_test(a_start_that_cannot_be_evaluated_fails_at_once),
      cmocka_unit_test(steps_that_keep_failing_diverge_keeping_the_last_good_point),
      cmocka_unit_test(a_failing_backward_pass_is_a_rejected_step),
      cmocka_unit_test(the_best_scored_iterate_is_kept_and_scores_follow_resume_points),
      cmocka_unit_test(an_adam_blow_up_goes_back_to_the_best_point),
      cmocka_unit_test(resumed_run_is_bit_identical_to_an_uninterrupted_one),
      cmocka_unit_test(schedule_parser_names_the_bad_phase),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
