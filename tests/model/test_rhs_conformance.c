/* One conformance suite for every implementation of the right-hand-side interface: the
 * compiled .nde tape (the shipped models, a driven model over three series) and the
 * hand-written C callbacks (tests/support/cmodels.c).  For each, on B = 1 and B = 5 rows:
 *   - f on a batch equals f row by row;
 *   - VJP with f's cache equals VJP without, bit for bit, and accumulates (+=);
 *   - VJP (state and parameter parts) and JVP (state and parameter tangents) match central
 *     finite differences of f, and agree with each other: <L, J v> = <J^T L, v>;
 *   - a clone computes bit-identical f, VJP and JVP, and outlives its original;
 *   - the call counters count.
 * Then clones on several threads, while other threads create and destroy right-hand sides of
 * the same model and the model's own handle is destroyed, compute what one thread does. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cmodels.h"
#include "linear_ode.h"
#include "nde/model.h"

typedef struct subject {
  const char *name;
  nde_rhs *rhs;
  nde_model *model; /* compiled subjects */
  double *theta;
  size_t P;
  double lo, hi;     /* range of the state values */
  double t;          /* evaluation time */
  int n_series;
} subject;

/* ---- the subjects ---- */

#define N_SERIES 3
static double room_t[N_SERIES][6], room_u[N_SERIES][12], room_P[N_SERIES];
static nde_input_series room_in[N_SERIES];

static void tape_subject(subject *S, const char *file, double lo, double hi) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", NDE_MODELS_DIR, file);
  nde_error err;
  if (nde_model_load_file(path, &S->model, &err) != NDE_OK) {
    print_error("%s\n", err.msg);
    fail();
  }
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = 8;
  o.n_series = nde_model_n_inputs(S->model) > 0 ? N_SERIES : 1;
  if (nde_model_n_inputs(S->model) > 0) {
    /* Heater schedules and outside temperatures on [0, 5], heater powers per room. */
    for (int s = 0; s < N_SERIES; s++) {
      for (int k = 0; k < 6; k++) {
        room_t[s][k] = k - 0.05 * s;
        room_u[s][2 * k] = (k + s) % 2;
        room_u[s][2 * k + 1] = 4.0 + 3.0 * sin(0.8 * k + s);
      }
      room_in[s] = (nde_input_series){6, room_t[s], room_u[s]};
      room_P[s] = 1.5 + 0.5 * s;
    }
    o.inputs = room_in;
    o.consts = room_P;
  }
  assert_int_equal(nde_model_create_rhs_opts(S->model, &o, &S->rhs, &err), NDE_OK);
  S->n_series = o.n_series;
  S->P = nde_rhs_get_info(S->rhs)->n_theta;
  S->theta = calloc(S->P + 1, sizeof *S->theta);
  assert_int_equal(nde_model_init_theta_full(S->model, 99, S->n_series, S->theta), NDE_OK);
  nde_rng rng;
  nde_rng_seed(&rng, 5);
  for (size_t i = 0; i < S->P; i++) S->theta[i] += 0.2 * (nde_rng_uniform(&rng) - 0.5);
  S->name = file;
  S->lo = lo;
  S->hi = hi;
  S->t = 1.3719;
}

static void c_subject(subject *S, const char *name, nde_status (*make)(int, nde_cmodel *)) {
  nde_cmodel cm;
  assert_int_equal(make(8, &cm), NDE_OK);
  S->rhs = cm.rhs;
  S->P = cm.n_theta;
  S->theta = calloc(S->P, sizeof *S->theta);
  nde_rng rng;
  nde_rng_seed(&rng, 6);
  assert_int_equal(nde_net_init(cm.net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, S->theta), NDE_OK);
  for (size_t i = 0; i < S->P; i++) S->theta[i] += 0.2 * (nde_rng_uniform(&rng) - 0.5);
  S->name = name;
  S->lo = -1.37;
  S->hi = 1.91;
  S->t = 0.7183;
  S->n_series = 1;
}

static nde_status make_mlp(int max_batch, nde_cmodel *out) { return nde_cmodel_mlp(3, 6, max_batch, out); }

static void subject_free(subject *S) {
  nde_rhs_destroy(&S->rhs);
  nde_model_destroy(&S->model);
  free(S->theta);
}

/* ---- the suite ---- */

typedef struct bufs {
  double *U, *L, *V, *Vt, *f, *f1, *gU, *gU2, *gt, *gt2, *JV, *JV2, *fp, *fm, *Up, *tp, *cache;
} bufs;

static bufs bufs_alloc(const subject *S, int B) {
  const nde_rhs_info *info = nde_rhs_get_info(S->rhs);
  const size_t N = (size_t)B * info->n_state, P = S->P + 1;
  bufs b;
  b.U = calloc(N, sizeof(double)), b.L = calloc(N, sizeof(double)), b.V = calloc(N, sizeof(double));
  b.Vt = calloc(P, sizeof(double)), b.f = calloc(N, sizeof(double)), b.f1 = calloc(N, sizeof(double));
  b.gU = calloc(N, sizeof(double)), b.gU2 = calloc(N, sizeof(double)), b.gt = calloc(P, sizeof(double));
  b.gt2 = calloc(P, sizeof(double)), b.JV = calloc(N, sizeof(double)), b.JV2 = calloc(N, sizeof(double));
  b.fp = calloc(N, sizeof(double)), b.fm = calloc(N, sizeof(double)), b.Up = calloc(N, sizeof(double));
  b.tp = calloc(P, sizeof(double));
  b.cache = calloc(info->cache_per_row * (size_t)B + 1, sizeof(double));
  return b;
}

static void bufs_free(bufs *b) {
  free(b->U), free(b->L), free(b->V), free(b->Vt), free(b->f), free(b->f1), free(b->gU), free(b->gU2);
  free(b->gt), free(b->gt2), free(b->JV), free(b->JV2), free(b->fp), free(b->fm), free(b->Up);
  free(b->tp), free(b->cache);
}

static void conform(subject *S, int B, uint64_t seed) {
  nde_rhs *rhs = S->rhs;
  const int n = nde_rhs_get_info(rhs)->n_state;
  const size_t N = (size_t)B * n, P = S->P;
  const double t = S->t, eps = 1e-6, *th = S->theta;
  int rows[5];
  for (int r = 0; r < B; r++) rows[r] = (2 * r + 1) % S->n_series;
  assert_int_equal(nde_rhs_set_rows(rhs, B, rows), NDE_OK);
  bufs b = bufs_alloc(S, B);
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  nde_test_fill(&rng, N, S->lo, S->hi, b.U);
  nde_test_fill(&rng, N, -1.0, 1.0, b.L);
  nde_test_fill(&rng, N, -1.0, 1.0, b.V);
  nde_test_fill(&rng, P, -1.0, 1.0, b.Vt);
  nde_rhs_reset_counts(rhs);

  /* f on the batch is f on each row. */
  assert_int_equal(nde_rhs_f(rhs, t, B, b.U, th, b.f, b.cache), 0);
  for (int r = 0; r < B; r++) {
    assert_int_equal(nde_rhs_set_rows(rhs, 1, &rows[r]), NDE_OK);
    assert_int_equal(nde_rhs_f(rhs, t, 1, b.U + (size_t)r * n, th, b.f1 + (size_t)r * n, NULL), 0);
  }
  assert_true(nde_test_rel_err(N, b.f, b.f1, 1e-300) <= 1e-13);
  assert_int_equal(nde_rhs_set_rows(rhs, B, rows), NDE_OK);

  /* VJP with the cache equals VJP without, and accumulates. */
  assert_int_equal(nde_rhs_f(rhs, t, B, b.U, th, b.f, b.cache), 0);
  assert_int_equal(nde_rhs_vjp(rhs, t, B, b.U, th, b.L, b.cache, b.gU, b.gt), 0);
  assert_int_equal(nde_rhs_vjp(rhs, t, B, b.U, th, b.L, NULL, b.gU2, b.gt2), 0);
  assert_memory_equal(b.gU, b.gU2, N * sizeof(double));
  assert_memory_equal(b.gt, b.gt2, P * sizeof(double));
  /* A second VJP adds the same cotangents again: 2x to the rounding of that addition, which
   * BLAS may fuse into its sums (dgemm with beta = 1) so that an entry formed by cancellation
   * carries the rounding of its larger terms; hence a bound at the scale of the whole vector
   * (an overwrite instead of an add misses by the entry itself). */
  assert_int_equal(nde_rhs_vjp(rhs, t, B, b.U, th, b.L, NULL, b.gU2, b.gt2), 0);
  double sU = 1e-300, st = 1e-300;
  for (size_t q = 0; q < N; q++) sU = fmax(sU, fabs(b.gU[q]));
  for (size_t q = 0; q < P; q++) st = fmax(st, fabs(b.gt[q]));
  for (size_t q = 0; q < N; q++) check_rel(b.gU2[q], 2 * b.gU[q], 1e-15, 2 * sU);
  for (size_t q = 0; q < P; q++) check_rel(b.gt2[q], 2 * b.gt[q], 1e-15, 2 * st);

  /* Against central differences along V (state) and Vt (parameters). */
  for (size_t q = 0; q < N; q++) b.Up[q] = b.U[q] + eps * b.V[q];
  assert_int_equal(nde_rhs_f(rhs, t, B, b.Up, th, b.fp, NULL), 0);
  for (size_t q = 0; q < N; q++) b.Up[q] = b.U[q] - eps * b.V[q];
  assert_int_equal(nde_rhs_f(rhs, t, B, b.Up, th, b.fm, NULL), 0);
  double fdU = 0;
  for (size_t q = 0; q < N; q++) fdU += b.L[q] * (b.fp[q] - b.fm[q]) / (2 * eps);
  check_rel(nde_test_dot(N, b.gU, b.V), fdU, 1e-6, 1e-6);
  assert_int_equal(nde_rhs_jvp(rhs, t, B, b.U, th, b.V, NULL, b.JV), 0);
  for (size_t q = 0; q < N; q++) check_rel(b.JV[q], (b.fp[q] - b.fm[q]) / (2 * eps), 1e-6, 1e-5);
  for (size_t i = 0; i < P; i++) b.tp[i] = th[i] + eps * b.Vt[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, b.U, b.tp, b.fp, NULL), 0);
  for (size_t i = 0; i < P; i++) b.tp[i] = th[i] - eps * b.Vt[i];
  assert_int_equal(nde_rhs_f(rhs, t, B, b.U, b.tp, b.fm, NULL), 0);
  double fdT = 0;
  for (size_t q = 0; q < N; q++) fdT += b.L[q] * (b.fp[q] - b.fm[q]) / (2 * eps);
  check_rel(nde_test_dot(P, b.gt, b.Vt), fdT, 1e-6, 1e-6);
  assert_int_equal(nde_rhs_jvp(rhs, t, B, b.U, th, NULL, b.Vt, b.JV), 0);
  for (size_t q = 0; q < N; q++) check_rel(b.JV[q], (b.fp[q] - b.fm[q]) / (2 * eps), 1e-6, 1e-5);
  /* Forward and reverse mode agree to rounding. */
  assert_int_equal(nde_rhs_jvp(rhs, t, B, b.U, th, b.V, b.Vt, b.JV), 0);
  check_rel(nde_test_dot(N, b.L, b.JV), nde_test_dot(N, b.gU, b.V) + nde_test_dot(P, b.gt, b.Vt),
            1e-12, 1e-12);

  /* A clone computes the same bits, and outlives the original. */
  nde_rhs *c = NULL;
  nde_error err;
  assert_int_equal(nde_rhs_clone(rhs, &c, &err), NDE_OK);
  assert_int_equal(nde_rhs_get_info(c)->n_theta, P);
  assert_int_equal(nde_rhs_get_counts(c).f, 0);
  memset(b.gU2, 0, N * sizeof(double));
  memset(b.gt2, 0, P * sizeof(double));
  assert_int_equal(nde_rhs_f(c, t, B, b.U, th, b.f1, NULL), 0);
  assert_int_equal(nde_rhs_vjp(c, t, B, b.U, th, b.L, NULL, b.gU2, b.gt2), 0);
  assert_int_equal(nde_rhs_jvp(c, t, B, b.U, th, b.V, b.Vt, b.JV2), 0);
  assert_memory_equal(b.f, b.f1, N * sizeof(double));
  assert_memory_equal(b.gU, b.gU2, N * sizeof(double));
  assert_memory_equal(b.gt, b.gt2, P * sizeof(double));
  assert_memory_equal(b.JV, b.JV2, N * sizeof(double));
  /* The counters counted every call on the original (f: 2 + B + 2 + 2, vjp 3, jvp 3). */
  nde_rhs_counts k = nde_rhs_get_counts(rhs);
  assert_int_equal(k.f, 6 + B);
  assert_int_equal(k.vjp, 3);
  assert_int_equal(k.jvp, 3);
  /* The clone replaces the original. */
  nde_rhs_destroy(&S->rhs);
  S->rhs = c;
  assert_int_equal(nde_rhs_f(S->rhs, t, B, b.U, th, b.f1, NULL), 0);
  assert_memory_equal(b.f, b.f1, N * sizeof(double));
  bufs_free(&b);
}

static void run(subject *S) {
  conform(S, 1, 11);
  conform(S, 5, 12);
  subject_free(S);
}

static void lotka_volterra_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "lotka_volterra.nde", 0.3, 3.1);
  run(&S);
}
static void lotka_volterra_ude_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "lotka_volterra_ude.nde", 0.3, 3.1);
  run(&S);
}
static void spiral_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "spiral.nde", -1.9, 1.9);
  run(&S);
}
static void pendulum_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "pendulum.nde", -1.9, 1.9);
  run(&S);
}
static void robertson_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "robertson.nde", 0.01, 0.9);
  run(&S);
}
static void heated_room_over_three_series_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "heated_room.nde", 12.0, 26.0);
  run(&S);
}
/* Models that differentiate (grad): a Hamiltonian net, the port-Hamiltonian matrix form, a
 * gradient system. */
static void hnn_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "hnn.nde", -1.9, 1.9);
  run(&S);
}
static void port_hamiltonian_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "port_hamiltonian.nde", -1.9, 1.9);
  run(&S);
}
static void gradient_system_conforms(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "gradient_system.nde", -1.9, 1.9);
  run(&S);
}
static void c_spiral_conforms(void **state) {
  (void)state;
  subject S = {0};
  c_subject(&S, "C spiral", nde_cmodel_spiral);
  run(&S);
}
static void c_lv_ude_conforms(void **state) {
  (void)state;
  subject S = {0};
  c_subject(&S, "C LV UDE", nde_cmodel_lv_ude);
  run(&S);
}
static void c_mlp_conforms(void **state) {
  (void)state;
  subject S = {0};
  c_subject(&S, "C mlp", make_mlp);
  run(&S);
}

/* A table without the optional members: clone is unsupported, any map is accepted, no
 * breakpoints; a clone callback without destroy is refused. */
static void tables_without_optional_members(void **state) {
  (void)state;
  const nde_rhs_info info = {1, 2, 3, 0, NULL};
  nde_rhs *rhs = NULL, *c = NULL;
  nde_error err;
  assert_int_equal(nde_rhs_create(&nde_test_linear_ops, NULL, NDE_BORROW, &info, &rhs, &err), NDE_OK);
  assert_int_equal(nde_rhs_clone(rhs, &c, &err), NDE_ERR_UNSUPPORTED);
  assert_null(c);
  assert_string_equal(err.msg, "this right-hand side cannot be cloned (its ops table has no clone)");
  const int rows[3] = {7, 0, 2}, neg[1] = {-1};
  assert_int_equal(nde_rhs_set_rows(rhs, 3, rows), NDE_OK);
  assert_int_equal(nde_rhs_set_rows(rhs, 1, neg), NDE_ERR_ARG);
  assert_int_equal(nde_rhs_set_rows(rhs, 4, NULL), NDE_ERR_ARG);
  double bp[2];
  assert_int_equal(nde_rhs_breakpoints(rhs, 0, 10, 2, bp), 0);
  /* Calls of more rows than the table takes are refused before the callback runs (it would
   * write past workspaces sized for max_batch rows) and are not counted. */
  double U[4] = {1, 2, 3, 4}, th[2] = {0.5, 0.25}, out[4] = {7, 7, 7, 7}, L[4] = {1, 1, 1, 1};
  assert_int_equal(nde_rhs_f(rhs, 0, 4, U, th, out, NULL), -1);
  assert_int_equal(nde_rhs_f(rhs, 0, 0, U, th, out, NULL), -1);
  assert_int_equal(nde_rhs_vjp(rhs, 0, 4, U, th, L, NULL, out, NULL), -1);
  assert_int_equal(nde_rhs_jvp(rhs, 0, 4, U, th, L, NULL, out), -1);
  assert_true(out[0] == 7 && out[3] == 7);
  assert_int_equal(nde_rhs_get_counts(rhs).f, 0);
  assert_int_equal(nde_rhs_f(rhs, 0, 3, U, th, out, NULL), 0);
  assert_int_equal(nde_rhs_get_counts(rhs).f, 1);
  nde_rhs_destroy(&rhs);
  nde_rhs_ops ops = nde_test_linear_ops;
  ops.clone = (nde_status(*)(void *, void **))1; /* never called */
  assert_int_equal(nde_rhs_create(&ops, NULL, NDE_BORROW, &info, &rhs, &err), NDE_ERR_ARG);
  assert_null(rhs);
}

/* ---- threads ---- */

typedef struct job {
  const nde_rhs *proto;
  nde_model *model; /* shared; valid until the first barrier */
  pthread_barrier_t *phase;
  const double *U, *theta, *L, *want_f, *want_gt;
  int n, B;
  size_t P;
  int ok;
} job;

static void *worker(void *arg) {
  job *J = arg;
  nde_rhs *mine = NULL, *extra = NULL;
  const size_t N = (size_t)J->B * J->n;
  double *f = calloc(N, sizeof *f), *gU = calloc(N, sizeof *gU), *gt = calloc(J->P, sizeof *gt);
  /* Phase 1: every thread clones the prototype and makes and drops right-hand sides of the
   * shared model at once (the reference count races). */
  J->ok = nde_rhs_clone(J->proto, &mine, NULL) == NDE_OK && f && gU && gt;
  for (int it = 0; it < 200 && J->ok; it++) {
    nde_model_rhs_opts o = nde_model_rhs_opts_default();
    J->ok = nde_model_create_rhs_opts(J->model, &o, &extra, NULL) == NDE_OK;
    nde_rhs_destroy(&extra);
  }
  pthread_barrier_wait(J->phase);
  /* Phase 2: the model's handle and the prototype are gone; the clones keep the model. */
  for (int it = 0; it < 200 && J->ok; it++) {
    memset(gt, 0, J->P * sizeof *gt);
    J->ok = nde_rhs_f(mine, 0.5, J->B, J->U, J->theta, f, NULL) == 0 &&
            nde_rhs_vjp(mine, 0.5, J->B, J->U, J->theta, J->L, NULL, gU, gt) == 0 &&
            memcmp(f, J->want_f, N * sizeof *f) == 0 && memcmp(gt, J->want_gt, J->P * sizeof *gt) == 0;
  }
  pthread_barrier_wait(J->phase);
  /* The last of these releases frees the model. */
  nde_rhs_destroy(&mine);
  free(f), free(gU), free(gt);
  return NULL;
}

static void clones_on_threads_compute_what_one_thread_does(void **state) {
  (void)state;
  subject S = {0};
  tape_subject(&S, "lotka_volterra_ude.nde", 0.3, 3.1);
  enum { T = 4, B = 4, n = 2 };
  double U[B * n], L[B * n], f[B * n], gU[B * n] = {0};
  double *gt = calloc(S.P, sizeof *gt);
  nde_rng rng;
  nde_rng_seed(&rng, 77);
  nde_test_fill(&rng, B * n, 0.3, 3.1, U);
  nde_test_fill(&rng, B * n, -1, 1, L);
  assert_int_equal(nde_rhs_f(S.rhs, 0.5, B, U, S.theta, f, NULL), 0);
  assert_int_equal(nde_rhs_vjp(S.rhs, 0.5, B, U, S.theta, L, NULL, gU, gt), 0);
  pthread_barrier_t phase;
  assert_int_equal(pthread_barrier_init(&phase, NULL, T + 1), 0);
  pthread_t th[T];
  job jobs[T];
  for (int i = 0; i < T; i++) {
    jobs[i] = (job){S.rhs, S.model, &phase, U, S.theta, L, f, gt, n, B, S.P, 0};
    assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
  }
  pthread_barrier_wait(&phase);
  nde_model_destroy(&S.model);
  nde_rhs_destroy(&S.rhs);
  pthread_barrier_wait(&phase);
  for (int i = 0; i < T; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(jobs[i].ok, 1);
  }
  pthread_barrier_destroy(&phase);
  free(gt);
  subject_free(&S);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lotka_volterra_conforms),
      cmocka_unit_test(lotka_volterra_ude_conforms),
      cmocka_unit_test(spiral_conforms),
      cmocka_unit_test(pendulum_conforms),
      cmocka_unit_test(robertson_conforms),
      cmocka_unit_test(heated_room_over_three_series_conforms),
      cmocka_unit_test(hnn_conforms),
      cmocka_unit_test(port_hamiltonian_conforms),
      cmocka_unit_test(gradient_system_conforms),
      cmocka_unit_test(c_spiral_conforms),
      cmocka_unit_test(c_lv_ude_conforms),
      cmocka_unit_test(c_mlp_conforms),
      cmocka_unit_test(tables_without_optional_members),
      cmocka_unit_test(clones_on_threads_compute_what_one_thread_does),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
