/* The second-order pass of grad (issue 14): forward-over-reverse against reverse-over-reverse.
 *
 * The VJP of a model with grad(H(x), x) needs, per net call, the VJP of x -> J^T dY (J = dH/dx)
 * for a cotangent w: the Hessian-vector product Hess(dY . H) w, the parameter term
 * grad_theta(w . J^T dY) and J w.  Two ways:
 *   forward-over-reverse (FoR, what nde uses): nde_net_vjp_tangent, one forward and one reverse
 *     sweep carrying values and tangents together (2B stacked rows per dgemm);
 *   reverse-over-reverse (RoR): reverse mode through the network's own reverse pass: a sweep
 *     from the input up through the reverse pass's adjoints, then one down through the forward
 *     pass, B rows each.  It needs the forward values and the reverse pass's cotangents of
 *     every layer, which f could keep (RoR cached) or which are recomputed first (RoR).
 * Written here with cblas for H = 2 -> 64 softplus -> 64 softplus -> 1 (the HNN benchmark's
 * network), checked against FoR to 1e-12, timed per state at B = 1 and B = 64, median of 15.
 * Output: table rows "row|benchmark|case|time|rate|reference|ratio|target|result" and notes. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nde/nn.h"

#define H 64
#define N0 2
#define REPEATS 15

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Forward values and reverse cotangents of the 3-layer net, B rows, row-major. */
typedef struct tape {
  int B;
  double *Z1, *A1, *S1, *Q1, *Z2, *A2, *S2, *Q2; /* B x H: pre-activations, act, act', act'' */
  double *Ga1, *Gz1, *Ga2, *Gz2;                 /* B x H: reverse cotangents */
  double *Ya, *Yb, *Yc, *Yd;                     /* B x H scratch */
  double *gz3;                                   /* B */
} tape;

static double *dalloc(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static void tape_init(tape *t, int B) {
  t->B = B;
  double **all[] = {&t->Z1, &t->A1, &t->S1, &t->Q1, &t->Z2, &t->A2, &t->S2, &t->Q2, &t->Ga1,
                    &t->Gz1, &t->Ga2, &t->Gz2, &t->Ya, &t->Yb, &t->Yc, &t->Yd};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) *all[i] = dalloc((size_t)B * H);
  t->gz3 = dalloc((size_t)B);
}

static void tape_free(tape *t) {
  double *all[] = {t->Z1, t->A1, t->S1, t->Q1, t->Z2, t->A2, t->S2, t->Q2, t->Ga1, t->Gz1,
                   t->Ga2, t->Gz2, t->Ya, t->Yb, t->Yc, t->Yd, t->gz3};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

/* C (m x n) = alpha op(A) op(B) + beta C, row-major. */
static void gemm(int ta, int tb, int m, int n, int k, double alpha, const double *A, int lda,
                 const double *Bm, int ldb, double beta, double *C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, A, lda, Bm, ldb, beta, C, ldc);
}

/* What f computes: the forward pass, then J^T dY with every cotangent kept. */
static void forward_reverse(tape *t, const nde_net *net, const double *th, const double *X,
                            const double *dY) {
  const int B = t->B;
  const double *W1 = th + nde_net_weight_offset(net, 0), *b1 = th + nde_net_bias_offset(net, 0);
  const double *W2 = th + nde_net_weight_offset(net, 1), *b2 = th + nde_net_bias_offset(net, 1);
  const double *W3 = th + nde_net_weight_offset(net, 2);
  for (int r = 0; r < B; r++) memcpy(t->Z1 + (size_t)r * H, b1, H * sizeof(double));
  gemm(0, 1, B, H, N0, 1, X, N0, W1, N0, 1, t->Z1, H);
  nde_act_eval2(NDE_ACT_SOFTPLUS, (size_t)B * H, t->Z1, t->A1, t->S1, t->Q1);
  for (int r = 0; r < B; r++) memcpy(t->Z2 + (size_t)r * H, b2, H * sizeof(double));
  gemm(0, 1, B, H, H, 1, t->A1, H, W2, H, 1, t->Z2, H);
  nde_act_eval2(NDE_ACT_SOFTPLUS, (size_t)B * H, t->Z2, t->A2, t->S2, t->Q2);
  /* reverse: gz3 = dY, Ga2 = gz3 W3, Gz2 = Ga2 s2, Ga1 = Gz2 W2, Gz1 = Ga1 s1 */
  memcpy(t->gz3, dY, (size_t)B * sizeof(double));
  gemm(0, 0, B, H, 1, 1, t->gz3, 1, W3, H, 0, t->Ga2, H);
  for (size_t i = 0; i < (size_t)B * H; i++) t->Gz2[i] = t->Ga2[i] * t->S2[i];
  gemm(0, 0, B, H, H, 1, t->Gz2, H, W2, H, 0, t->Ga1, H);
  for (size_t i = 0; i < (size_t)B * H; i++) t->Gz1[i] = t->Ga1[i] * t->S1[i];
}

/* Reverse-over-reverse from the kept values: hw = Hess w (B x N0), gth += the parameter term,
 * jw = J w (B). */
static void ror(tape *t, const nde_net *net, const double *th, const double *X, const double *w,
                double *hw, double *gth, double *jw) {
  const int B = t->B;
  const size_t n = (size_t)B * H;
  const double *W1 = th + nde_net_weight_offset(net, 0), *W2 = th + nde_net_weight_offset(net, 1);
  const double *W3 = th + nde_net_weight_offset(net, 2);
  double *gW1 = gth + nde_net_weight_offset(net, 0), *gb1 = gth + nde_net_bias_offset(net, 0);
  double *gW2 = gth + nde_net_weight_offset(net, 1), *gb2 = gth + nde_net_bias_offset(net, 1);
  double *gW3 = gth + nde_net_weight_offset(net, 2);
  double *bGz1 = t->Ya, *bGa1 = t->Yb, *Zb1 = t->Yc, *Zb2 = t->Yd;
  /* up: the reverse pass's adjoints, layer 1 to 3 */
  gemm(0, 1, B, H, N0, 1, w, N0, W1, N0, 0, bGz1, H);     /* Ga0 = Gz1 W1 */
  gemm(1, 0, H, N0, B, 1, t->Gz1, H, w, N0, 1, gW1, N0);  /* W1 += Gz1^T w */
  for (size_t i = 0; i < n; i++) {
    bGa1[i] = bGz1[i] * t->S1[i];
    Zb1[i] = bGz1[i] * t->Ga1[i] * t->Q1[i];
  }
  double *bGz2 = bGz1; /* reuse */
  gemm(0, 1, B, H, H, 1, bGa1, H, W2, H, 0, bGz2, H);     /* Ga1 = Gz2 W2 */
  gemm(1, 0, H, H, B, 1, t->Gz2, H, bGa1, H, 1, gW2, H);  /* W2 += Gz2^T bGa1 */
  double *bGa2 = bGa1;
  for (size_t i = 0; i < n; i++) {
    bGa2[i] = bGz2[i] * t->S2[i];
    Zb2[i] = bGz2[i] * t->Ga2[i] * t->Q2[i];
  }
  gemm(0, 1, B, 1, H, 1, bGa2, H, W3, H, 0, jw, 1);       /* Ga2 = gz3 W3 */
  gemm(1, 0, 1, H, B, 1, t->gz3, 1, bGa2, H, 1, gW3, H);  /* W3 += gz3^T bGa2 */
  /* down: the forward pass's adjoints, layer 2 to 1 (Y itself is not used) */
  gemm(1, 0, H, H, B, 1, Zb2, H, t->A1, H, 1, gW2, H);
  for (int r = 0; r < B; r++)
    for (int j = 0; j < H; j++) gb2[j] += Zb2[(size_t)r * H + j];
  double *bA1 = bGa1;
  gemm(0, 0, B, H, H, 1, Zb2, H, W2, H, 0, bA1, H);
  for (size_t i = 0; i < n; i++) Zb1[i] += bA1[i] * t->S1[i];
  gemm(1, 0, H, N0, B, 1, Zb1, H, X, N0, 1, gW1, N0);
  for (int r = 0; r < B; r++)
    for (int j = 0; j < H; j++) gb1[j] += Zb1[(size_t)r * H + j];
  gemm(0, 0, B, N0, H, 1, Zb1, H, W1, N0, 0, hw, N0);
}

typedef enum { FOR, ROR_CACHED, ROR } method;

static double run(method m, const nde_net *net, const double *th, int B, const double *X,
                  const double *w, const double *dY, tape *t, nde_net_ws *ws, double *hw,
                  double *gth, double *jw) {
  if (m == FOR) {
    nde_net_vjp_tangent(net, th, B, X, w, NULL, dY, NULL, NULL, jw, NULL, NULL, hw, gth, ws);
  } else {
    if (m == ROR) forward_reverse(t, net, th, X, dY);
    ror(t, net, th, X, w, hw, gth, jw);
  }
  return hw[0];
}

int main(void) {
  const int widths[4] = {N0, H, H, 1};
  const nde_act acts[3] = {NDE_ACT_SOFTPLUS, NDE_ACT_SOFTPLUS, NDE_ACT_IDENTITY};
  nde_net *net = NULL;
  if (nde_net_create(3, widths, acts, &net, NULL) != NDE_OK) return 1;
  const size_t P = nde_net_n_params(net);
  double *th = dalloc(P);
  nde_rng rng;
  nde_rng_seed(&rng, 14);
  nde_net_init(net, NDE_INIT_GLOROT_UNIFORM, 0, &rng, th);
  for (size_t i = 0; i < P; i++) th[i] += 0.1 * nde_rng_normal(&rng);
  int ok = 1;
  printf("# second-order pass of H = 2 -> %d softplus -> %d softplus -> 1, per state; %s\n", H, H,
         nde_nn_blas_config());
  const int batches[2] = {1, 64};
  const long iters[2] = {20000, 500};
  for (int k = 0; k < 2; k++) {
    const int B = batches[k];
    double *X = dalloc((size_t)B * N0), *w = dalloc((size_t)B * N0), *dY = dalloc((size_t)B);
    for (int i = 0; i < B * N0; i++) X[i] = 2 * nde_rng_uniform(&rng) - 1, w[i] = nde_rng_normal(&rng);
    for (int i = 0; i < B; i++) dY[i] = 1.0;
    nde_net_ws *ws = NULL;
    if (nde_net_ws_create_second_order(net, B, &ws) != NDE_OK) return 1;
    tape t;
    tape_init(&t, B);
    double *hw[2], *gth[2], *jw[2];
    for (int j = 0; j < 2; j++) hw[j] = dalloc((size_t)B * N0), gth[j] = dalloc(P), jw[j] = dalloc((size_t)B);
    run(FOR, net, th, B, X, w, dY, &t, ws, hw[0], gth[0], jw[0]);
    run(ROR, net, th, B, X, w, dY, &t, ws, hw[1], gth[1], jw[1]);
    double e = 0, s = 0;
    for (int i = 0; i < B * N0; i++) e = fmax(e, fabs(hw[0][i] - hw[1][i])), s = fmax(s, fabs(hw[0][i]));
    for (size_t i = 0; i < P; i++) e = fmax(e, fabs(gth[0][i] - gth[1][i])), s = fmax(s, fabs(gth[0][i]));
    for (int i = 0; i < B; i++) e = fmax(e, fabs(jw[0][i] - jw[1][i])), s = fmax(s, fabs(jw[0][i]));
    if (!(e <= 1e-12 * s)) {
      fprintf(stderr, "bench_second_order: RoR and FoR differ at B = %d: %.3g (scale %.3g)\n", B, e, s);
      ok = 0;
    }
    double tm[3];
    for (int m = 0; m < 3; m++) {
      double samples[REPEATS], sink = 0;
      if (m == ROR_CACHED) forward_reverse(&t, net, th, X, dY);
      for (int r = 0; r < REPEATS; r++) {
        const double t0 = now();
        for (long i = 0; i < iters[k]; i++)
          sink += run((method)m, net, th, B, X, w, dY, &t, ws, hw[0], gth[0], jw[0]);
        samples[r] = (now() - t0) / (double)iters[k] / B;
      }
      qsort(samples, REPEATS, sizeof *samples, cmp);
      tm[m] = samples[REPEATS / 2];
      if (sink == 1.2345) printf("# %g\n", sink);
    }
    printf("row|second order|RoR from f's cache B=%d|%.1f ns/state|%.3g states/s|FoR %.1f ns/state|%.2f|-|-\n",
           B, tm[ROR_CACHED] * 1e9, 1.0 / tm[ROR_CACHED], tm[FOR] * 1e9, tm[ROR_CACHED] / tm[FOR]);
    printf("row|second order|RoR recomputing B=%d|%.1f ns/state|%.3g states/s|FoR %.1f ns/state|%.2f|-|-\n",
           B, tm[ROR] * 1e9, 1.0 / tm[ROR], tm[FOR] * 1e9, tm[ROR] / tm[FOR]);
    for (int j = 0; j < 2; j++) free(hw[j]), free(gth[j]), free(jw[j]);
    tape_free(&t);
    nde_net_ws_destroy(&ws);
    free(X), free(w), free(dY);
  }
  free(th);
  nde_net_destroy(&net);
  return ok ? 0 : 1;
}
