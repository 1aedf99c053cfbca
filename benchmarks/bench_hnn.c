/* HNN benchmark (issue 14): f + VJP per state of the hand-written Hamiltonian network
 * (tests/support/hnn.c; H = 2 -> 64 softplus -> 64 softplus -> 1, f = (dH/dp, -dH/dq), VJP by the
 * forward-over-reverse pass) against f + VJP of a plain network right-hand side of the same size
 * (2 -> 64 softplus -> 64 softplus -> 2, VJP from the forward cache), in the same run, on B = 1
 * and B = 64 rows; then the same pair compiled from the language (dq/dt = grad(H(q, p), p),
 * dp/dt = -grad(H(q, p), q) against du/dt = N(u)), and the compiled HNN against the
 * hand-written one.  Target: HNN / plain <= 3.5.  Notes give f, VJP and JVP separately.  Before
 * timing, the HNN's VJP and JVP must be adjoint (<L, J V> = <J^T L, V> to 1e-12) or the program
 * exits 1.
 * Output: table rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hnn.h"
#include "nde/model.h"

#define REPEATS 15
#define TARGET 3.5
#define HIDDEN 64

static const char *const names[3] = {"f", "VJP (no cache)", "JVP"};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef enum { OP_F_VJP, OP_F, OP_VJP, OP_JVP } op;

typedef struct work {
  nde_rhs *rhs;
  int B, n;
  const double *U, *L, *V, *theta;
  double *dU, *gU, *gth, *cache;
} work;

/* One call (or f + VJP) on the batch; returns a checksum so nothing is optimised away. */
static double step(const work *w, op o) {
  switch (o) {
    case OP_F_VJP:
      memset(w->gU, 0, (size_t)w->B * (size_t)w->n * sizeof *w->gU);
      if (nde_rhs_f(w->rhs, 0.25, w->B, w->U, w->theta, w->dU, w->cache) != 0) exit(1);
      if (nde_rhs_vjp(w->rhs, 0.25, w->B, w->U, w->theta, w->L, w->cache, w->gU, w->gth) != 0)
        exit(1);
      return w->dU[0] + w->gU[0];
    case OP_F:
      if (nde_rhs_f(w->rhs, 0.25, w->B, w->U, w->theta, w->dU, NULL) != 0) exit(1);
      return w->dU[0];
    case OP_VJP:
      memset(w->gU, 0, (size_t)w->B * (size_t)w->n * sizeof *w->gU);
      if (nde_rhs_vjp(w->rhs, 0.25, w->B, w->U, w->theta, w->L, NULL, w->gU, w->gth) != 0) exit(1);
      return w->gU[0];
    case OP_JVP:
      if (nde_rhs_jvp(w->rhs, 0.25, w->B, w->U, w->theta, w->V, NULL, w->dU) != 0) exit(1);
      return w->dU[0];
  }
  return 0;
}

/* Seconds per state (per row), median of REPEATS timings of `iters` calls.  The two models
 * alternate inside each repeat so that both see the same machine state. */
static void time_pair(const work *a, const work *b, op o, long iters, double *ta, double *tb) {
  double sa[REPEATS], sb[REPEATS], sink = 0;
  for (long i = 0; i < iters / 10 + 1; i++) sink += step(a, o) + step(b, o);
  for (int r = 0; r < REPEATS; r++) {
    double t0 = now();
    for (long i = 0; i < iters; i++) sink += step(a, o);
    double t1 = now();
    for (long i = 0; i < iters; i++) sink += step(b, o);
    double t2 = now();
    sa[r] = (t1 - t0) / (double)iters / a->B;
    sb[r] = (t2 - t1) / (double)iters / b->B;
  }
  qsort(sa, REPEATS, sizeof *sa, cmp_double);
  qsort(sb, REPEATS, sizeof *sb, cmp_double);
  *ta = sa[REPEATS / 2];
  *tb = sb[REPEATS / 2];
  if (sink == 12345.678) printf("# %g\n", sink);
}

/* The two right-hand sides in the language (the same networks and theta layouts). */
static const char *const tape_src[2] = {
    "state q, p\nnet H : 2 -> 64 softplus -> 64 softplus -> 1\n"
    "dq/dt = grad(H(q, p), p)\ndp/dt = -grad(H(q, p), q)\n",
    "state u[2]\nnet N : 2 -> 64 softplus -> 64 softplus -> 2\ndu/dt = N(u)\n"};

int main(void) {
  const int batches[2] = {1, 64};
  const long iters[2] = {40000, 1000};
  int ok = 1;
  printf("# HNN (H = 2 -> %d softplus -> %d softplus -> 1, f = S grad H) against a plain network rhs "
         "(2 -> %d softplus -> %d softplus -> 2), per state; %s, %d BLAS thread(s)\n",
         HIDDEN, HIDDEN, HIDDEN, HIDDEN, nde_nn_blas_config(), nde_nn_blas_threads());
  for (int k = 0; k < 2; k++) {
    const int B = batches[k];
    nde_cmodel m[2];
    if (nde_hnn_create(1, HIDDEN, NDE_ACT_SOFTPLUS, B, &m[0]) != NDE_OK ||
        nde_hnn_plain_create(1, HIDDEN, NDE_ACT_SOFTPLUS, B, &m[1]) != NDE_OK)
      return 1;
    const size_t N = (size_t)B * 2;
    nde_rng rng;
    nde_rng_seed(&rng, 3);
    double *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L), *V = calloc(N, sizeof *V);
    for (size_t i = 0; i < N; i++) U[i] = 4.0 * nde_rng_uniform(&rng) - 2.0;
    for (size_t i = 0; i < N; i++) L[i] = nde_rng_uniform(&rng) - 0.5;
    for (size_t i = 0; i < N; i++) V[i] = nde_rng_uniform(&rng) - 0.5;
    work w[2];
    double *theta[2];
    for (int j = 0; j < 2; j++) {
      theta[j] = calloc(m[j].n_theta, sizeof(double));
      nde_net_init(m[j].net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, theta[j]);
      size_t cache = nde_rhs_get_info(m[j].rhs)->cache_per_row * (size_t)B;
      w[j] = (work){m[j].rhs, B, 2, U, L, V, theta[j], calloc(N, sizeof(double)),
                    calloc(N, sizeof(double)), calloc(m[j].n_theta, sizeof(double)),
                    cache ? calloc(cache, sizeof(double)) : NULL};
      if (!w[j].dU || !w[j].gU || !w[j].gth || (cache && !w[j].cache)) return 1;
    }
    /* The HNN's VJP and JVP are transposes of each other. */
    memset(w[0].gU, 0, N * sizeof(double));
    if (nde_rhs_vjp(m[0].rhs, 0.25, B, U, theta[0], L, NULL, w[0].gU, NULL) != 0 ||
        nde_rhs_jvp(m[0].rhs, 0.25, B, U, theta[0], V, NULL, w[0].dU) != 0)
      return 1;
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < N; i++) lhs += L[i] * w[0].dU[i], rhs += w[0].gU[i] * V[i];
    if (!(fabs(lhs - rhs) <= 1e-12 * fmax(fabs(lhs), 1e-9))) {
      fprintf(stderr, "bench_hnn: VJP and JVP disagree at B = %d: %.17g vs %.17g\n", B, lhs, rhs);
      ok = 0;
    }
    double th, tp;
    time_pair(&w[0], &w[1], OP_F_VJP, iters[k], &th, &tp);
    const double ratio = th / tp;
    const int pass = ratio <= TARGET;
    printf("row|hnn|HNN f+VJP B=%d|%.1f ns/state|%.3g states/s|plain net %.1f ns/state|%.2f|<= %.1f|%s\n",
           B, th * 1e9, 1.0 / th, tp * 1e9, ratio, TARGET, pass ? "pass" : "MISS");
    for (int o = OP_F; o <= OP_JVP; o++) {
      time_pair(&w[0], &w[1], (op)o, iters[k], &th, &tp);
      printf("# B=%d %-15s HNN %8.1f ns/state, plain %8.1f ns/state, ratio %.2f\n", B,
             names[o - OP_F], th * 1e9, tp * 1e9, th / tp);
    }
    /* The same two right-hand sides compiled from the language: grad(H(q, p), ...) against a
     * plain net call, with the same weights as the hand-written pair. */
    nde_model *tm[2] = {NULL, NULL};
    nde_rhs *trhs[2] = {NULL, NULL};
    work tw[2];
    for (int j = 0; j < 2; j++) {
      const char *src = tape_src[j];
      if (nde_model_load_string(src, strlen(src), "bench.nde", &tm[j], NULL) != NDE_OK ||
          nde_model_create_rhs(tm[j], B, &trhs[j], NULL) != NDE_OK ||
          nde_model_n_theta(tm[j]) != m[j].n_theta)
        return 1;
      size_t cache = nde_rhs_get_info(trhs[j])->cache_per_row * (size_t)B;
      tw[j] = w[j];
      tw[j].rhs = trhs[j];
      tw[j].cache = cache ? calloc(cache, sizeof(double)) : NULL;
      if (cache && !tw[j].cache) return 1;
    }
    time_pair(&tw[0], &tw[1], OP_F_VJP, iters[k], &th, &tp);
    printf("row|hnn|tape HNN f+VJP B=%d|%.1f ns/state|%.3g states/s|tape plain net %.1f ns/state|%.2f|<= %.1f|%s\n",
           B, th * 1e9, 1.0 / th, tp * 1e9, th / tp, TARGET, th / tp <= TARGET ? "pass" : "MISS");
    for (int o = OP_F; o <= OP_JVP; o++) {
      time_pair(&tw[0], &tw[1], (op)o, iters[k], &th, &tp);
      printf("# B=%d %-15s tape HNN %8.1f ns/state, tape plain %8.1f ns/state, ratio %.2f\n", B,
             names[o - OP_F], th * 1e9, tp * 1e9, th / tp);
    }
    /* The compiled HNN against the hand-written one (the tape's own overhead). */
    time_pair(&tw[0], &w[0], OP_F_VJP, iters[k], &th, &tp);
    printf("# B=%d f+VJP          tape HNN %8.1f ns/state, hand-written HNN %8.1f ns/state, ratio %.2f\n",
           B, th * 1e9, tp * 1e9, th / tp);
    for (int j = 0; j < 2; j++) {
      free(tw[j].cache);
      nde_rhs_destroy(&trhs[j]);
      nde_model_destroy(&tm[j]);
    }
    for (int j = 0; j < 2; j++) {
      free(w[j].dU), free(w[j].gU), free(w[j].gth), free(w[j].cache), free(theta[j]);
      nde_cmodel_destroy(&m[j]);
    }
    free(U), free(L), free(V);
  }
  /* A missed target is reported in the table; only wrong numbers fail the program. */
  return ok ? 0 : 1;
}
