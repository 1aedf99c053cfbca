/* Tape benchmark (issue 3): the compiled models/lotka_volterra_ude.nde against the hand-written
 * C callback of the same model (tests/support/cmodels.c), in the same run: one f (saving the
 * cache) plus one VJP (reading it) per state, on B = 1 and B = 64 rows.  Targets: tape / C
 * <= 1.5 at B = 1 and <= 1.1 at B = 64.  The two must agree to 1e-13 or the program exits 1.
 * Output: table rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmodels.h"
#include "nde/model.h"

#define REPEATS 15

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct work {
  nde_rhs *rhs;
  int B;
  const double *U, *L, *theta;
  double *dU, *gU, *gth, *cache;
  size_t n_theta;
} work;

/* One f + VJP on the batch; returns a checksum so nothing is optimised away. */
static double step(const work *w) {
  memset(w->gU, 0, (size_t)w->B * 2 * sizeof *w->gU);
  if (nde_rhs_f(w->rhs, 0.25, w->B, w->U, w->theta, w->dU, w->cache) != 0) exit(1);
  if (nde_rhs_vjp(w->rhs, 0.25, w->B, w->U, w->theta, w->L, w->cache, w->gU, w->gth) != 0) exit(1);
  return w->dU[0] + w->gU[0];
}

/* Seconds per state (per row) of f + VJP, median of REPEATS timings of `iters` calls.  The two
 * models alternate inside each repeat so that both see the same machine state. */
static void time_pair(const work *a, const work *b, long iters, double *ta, double *tb) {
  double sa[REPEATS], sb[REPEATS], sink = 0;
  for (long i = 0; i < iters / 10 + 1; i++) sink += step(a) + step(b);
  for (int r = 0; r < REPEATS; r++) {
    double t0 = now();
    for (long i = 0; i < iters; i++) sink += step(a);
    double t1 = now();
    for (long i = 0; i < iters; i++) sink += step(b);
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

static double rel_err(size_t n, const double *a, const double *b) {
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) {
    d = fmax(d, fabs(a[i] - b[i]));
    s = fmax(s, fmax(fabs(a[i]), fabs(b[i])));
  }
  return s > 0 ? d / s : d;
}

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : NDE_MODELS_DIR "/lotka_volterra_ude.nde";
  const int batches[2] = {1, 64};
  const double targets[2] = {1.5, 1.1};
  const long iters[2] = {200000, 4000};
  nde_model *m = NULL;
  if (nde_model_load_file(path, &m, NULL) != NDE_OK) {
    fprintf(stderr, "%s", nde_model_errmsg(m));
    return 1;
  }
  int ok = 1;
  printf("# tape vs hand-written C, Lotka-Volterra UDE (2 -> 5 rbf -> 5 rbf -> 5 rbf -> 2), f + VJP per state\n");
  for (int k = 0; k < 2; k++) {
    const int B = batches[k];
    nde_rhs *tape = NULL;
    nde_cmodel cm;
    if (nde_model_create_rhs(m, B, &tape, NULL) != NDE_OK || nde_cmodel_lv_ude(B, &cm) != NDE_OK) return 1;
    const size_t P = nde_model_n_theta(m), N = (size_t)B * 2;
    double *theta = calloc(P, sizeof *theta), *U = calloc(N, sizeof *U), *L = calloc(N, sizeof *L);
    nde_model_init_theta(m, 17, theta);
    nde_rng rng;
    nde_rng_seed(&rng, 3);
    for (size_t i = 0; i < N; i++) U[i] = 0.5 + 4.0 * nde_rng_uniform(&rng);
    for (size_t i = 0; i < N; i++) L[i] = nde_rng_uniform(&rng) - 0.5;
    work w[2];
    nde_rhs *r[2] = {tape, cm.rhs};
    for (int j = 0; j < 2; j++) {
      w[j] = (work){r[j], B, U, L, theta, calloc(N, sizeof(double)), calloc(N, sizeof(double)),
                    calloc(P, sizeof(double)),
                    calloc(nde_rhs_get_info(r[j])->cache_per_row * (size_t)B + 1, sizeof(double)), P};
    }
    /* Same numbers first. */
    for (int j = 0; j < 2; j++) {
      memset(w[j].gth, 0, P * sizeof(double));
      step(&w[j]);
    }
    double e = fmax(rel_err(N, w[0].dU, w[1].dU), fmax(rel_err(N, w[0].gU, w[1].gU), rel_err(P, w[0].gth, w[1].gth)));
    if (e > 1e-13) {
      fprintf(stderr, "tape and C differ by %.3g at B = %d\n", e, B);
      ok = 0;
    }
    double tt, tc;
    time_pair(&w[0], &w[1], iters[k], &tt, &tc);
    double ratio = tt / tc;
    int pass = ratio <= targets[k];
    printf("row|tape vs C|LV UDE f+VJP B=%d|%.1f ns/state|%.3g states/s|C %.1f ns/state|%.2f|<= %.1f|%s\n", B,
           tt * 1e9, 1.0 / tt, tc * 1e9, ratio, targets[k], pass ? "pass" : "MISS");
    for (int j = 0; j < 2; j++) {
      free(w[j].dU);
      free(w[j].gU);
      free(w[j].gth);
      free(w[j].cache);
    }
    free(theta);
    free(U);
    free(L);
    nde_rhs_destroy(&tape);
    nde_cmodel_destroy(&cm);
  }
  nde_model_destroy(&m);
  return ok ? 0 : 1;
}
