/* Dense networks on a batch of B rows: Z_l = A_{l-1} W_l^T + b_l, A_l = act_l(Z_l), with the
 * reverse pass dZ = dA .* act'(Z), gW += dZ^T A_{l-1}, gb += colsum dZ, dA_{l-1} = dZ W and the
 * forward-tangent pass dZ = dA_{l-1} W^T + A_{l-1} dW^T + db.  One row runs hand-written loops;
 * batches run a blocked kernel for small layers and cblas_dgemm for wider ones.
 * The second-order pass (forward over reverse) differentiates the reverse pass once more along a
 * tangent; its equations are next to nde_net_vjp_tangent below. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nn_internal.h"

/* A single row through a layer of at most this many weights runs the hand-written loops below;
 * everything else goes to cblas_dgemm.  Measured (forward + VJP, one thread, 2-core Zen 4,
 * OpenBLAS 0.3.21, best of 8): at B = 1 the loops take 2-50-2 tanh from 670 to 520 ns and
 * 2-5-5-5-2 rbf from 680 to 230 ns, break even on 32 x 32 layers and lose on 8 x 128 and
 * 64 x 64 layers (all-dgemm 8-128-128-8: 18 us, loops for the 8 x 128 ones: 25 us); from B = 2
 * on dgemm wins on every shape tried (2-32-32-2: 1.8 vs 2.5 us). */
#define LOOP_MAX_WEIGHTS 512

static int use_gemm(int B, int in, int out) {
  return B > 1 || (size_t)in * (size_t)out > LOOP_MAX_WEIGHTS;
}

/* One row through a whole network (see pick_row_kernels). */
typedef void (*nde__row_f_fn)(const nde_net *net, const double *theta, const double *x,
                              double *cache, double *zbuf, double *y);
typedef void (*nde__row_vjp_fn)(const nde_net *net, const double *theta, const double *x,
                                const double *cache, const double *dy, double *d,
                                double *gtheta, double *gx);

struct nde_net {
  int n_layers;
  int widths[NDE_NET_MAX_LAYERS + 1];
  nde_act acts[NDE_NET_MAX_LAYERS];
  size_t w_off[NDE_NET_MAX_LAYERS];
  size_t b_off[NDE_NET_MAX_LAYERS];
  size_t n_params;
  int max_width;    /* largest width over all boundaries, input included */
  size_t cache_row; /* doubles of cache per row */
  /* Per-row offsets in the cache of layer l's A_l and Z_l (NO_Z when Z_l is not kept). */
  size_t a_off[NDE_NET_MAX_LAYERS];
  size_t z_off[NDE_NET_MAX_LAYERS];
  /* Second-order scratch, per row (see nde_net_vjp_tangent): boundary l's stacked value and
   * tangent [A; Adot] (2 x width), layer l's act' and act'' * Zdot (NO_Z for the identity), the
   * stacked pre-activations and two stacked cotangent buffers (2 x max_width each). */
  size_t so_f_off[NDE_NET_MAX_LAYERS + 1];
  size_t so_s1_off[NDE_NET_MAX_LAYERS];
  size_t so_q_off[NDE_NET_MAX_LAYERS];
  size_t so_zz_off, so_r_off[2];
  size_t so_row;
  /* The B = 1 kernels of the whole network, NULL for the layer loop. */
  nde__row_f_fn row_f;
  nde__row_vjp_fn row_vjp;
};

/* The cache keeps, per layer, what the reverse pass reads: A_l (B x out), and before it Z_l only
 * for the activations whose derivative needs it (nde__act_needs_z); for the identity Z_l = A_l is
 * stored once.  The 2-50-2 tanh network keeps 52 doubles per row instead of 104. */
#define NO_Z SIZE_MAX

struct nde_net_ws {
  int max_batch;
  int max_width;
  size_t cache_row;
  double *cache;  /* max_batch * cache_row */
  double *zbuf;   /* max_batch * max_width: pre-activations that the cache does not keep */
  double *buf[2]; /* max_batch * max_width each: cotangents and tangents */
  size_t so_row;  /* doubles per row of so, 0 for a first-order workspace */
  double *so;     /* max_batch * so_row: the second-order pass's stacked layers */
};

/* ---- construction and queries ---- */

static void pick_row_kernels(nde_net *net);

nde_status nde_net_create(int n_layers, const int *widths, const nde_act *acts, nde_net **out,
                          nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_net_create: no output pointer");
  *out = NULL;
  if (!widths || !acts || n_layers < 1 || n_layers > NDE_NET_MAX_LAYERS)
    return nde__fail(err, NDE_ERR_ARG, "a network needs 1 to %d layers (got %d)",
                     NDE_NET_MAX_LAYERS, n_layers);
  for (int l = 0; l <= n_layers; l++)
    if (widths[l] < 1 || widths[l] > NDE_NET_MAX_WIDTH)
      return nde__fail(err, NDE_ERR_ARG, "width %d of the network is %d (expected 1 to %d)", l,
                       widths[l], NDE_NET_MAX_WIDTH);
  for (int l = 0; l < n_layers; l++)
    if ((int)acts[l] < 0 || acts[l] >= NDE_ACT_COUNT)
      return nde__fail(err, NDE_ERR_ARG, "layer %d has an unknown activation (%d)", l + 1,
                       (int)acts[l]);

  nde_net *net = calloc(1, sizeof *net);
  if (!net) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating a network");
  net->n_layers = n_layers;
  net->max_width = widths[0];
  size_t off = 0, crow = 0;
  for (int l = 0; l < n_layers; l++) {
    size_t in = (size_t)widths[l], nout = (size_t)widths[l + 1], nw;
    net->widths[l] = widths[l];
    net->acts[l] = acts[l];
    net->w_off[l] = off;
    if (!nde__mul_size(nout, in, &nw) || !nde__add_size(off, nw, &off)) goto limit;
    net->b_off[l] = off;
    if (!nde__add_size(off, nout, &off)) goto limit;
    net->z_off[l] = NO_Z;
    if (nde__act_needs_z(acts[l])) {
      net->z_off[l] = crow;
      if (!nde__add_size(crow, nout, &crow)) goto limit;
    }
    net->a_off[l] = crow;
    if (!nde__add_size(crow, nout, &crow)) goto limit;
    if (widths[l + 1] > net->max_width) net->max_width = widths[l + 1];
  }
  net->widths[n_layers] = widths[n_layers];
  net->n_params = off;
  net->cache_row = crow;

  size_t srow = 0, w2;
  for (int l = 0; l <= n_layers; l++) {
    net->so_f_off[l] = srow;
    if (!nde__add_size(srow, 2 * (size_t)widths[l], &srow)) goto limit;
  }
  for (int l = 0; l < n_layers; l++) {
    net->so_s1_off[l] = net->so_q_off[l] = NO_Z;
    if (acts[l] == NDE_ACT_IDENTITY) continue;
    net->so_s1_off[l] = srow;
    net->so_q_off[l] = srow + (size_t)widths[l + 1];
    if (!nde__add_size(srow, 2 * (size_t)widths[l + 1], &srow)) goto limit;
  }
  w2 = 2 * (size_t)net->max_width;
  net->so_zz_off = srow;
  net->so_r_off[0] = srow + w2;
  net->so_r_off[1] = srow + 2 * w2;
  if (!nde__add_size(srow, 3 * w2, &srow)) goto limit;
  net->so_row = srow;
  pick_row_kernels(net);
  *out = net;
  return NDE_OK;
limit:
  free(net);
  return nde__fail(err, NDE_ERR_LIMIT, "the network has more parameters than memory can address");
}

void nde_net_destroy(nde_net **net) {
  if (!net) return;
  free(*net);
  *net = NULL;
}

int nde_net_n_layers(const nde_net *net) { return net ? net->n_layers : 0; }
int nde_net_n_in(const nde_net *net) { return net ? net->widths[0] : 0; }
int nde_net_n_out(const nde_net *net) { return net ? net->widths[net->n_layers] : 0; }

int nde_net_width(const nde_net *net, int l) {
  if (!net || l < 0 || l > net->n_layers) return 0;
  return net->widths[l];
}

nde_act nde_net_act(const nde_net *net, int layer) {
  if (!net || layer < 0 || layer >= net->n_layers) return NDE_ACT_COUNT;
  return net->acts[layer];
}

size_t nde_net_n_params(const nde_net *net) { return net ? net->n_params : 0; }

int nde_net_allows_second_order(const nde_net *net) {
  if (!net) return 0;
  for (int l = 0; l < net->n_layers; l++)
    if (!nde_act_allows_second_order(net->acts[l])) return 0;
  return 1;
}

size_t nde_net_weight_offset(const nde_net *net, int layer) {
  if (!net || layer < 0 || layer >= net->n_layers) return 0;
  return net->w_off[layer];
}

size_t nde_net_bias_offset(const nde_net *net, int layer) {
  if (!net || layer < 0 || layer >= net->n_layers) return 0;
  return net->b_off[layer];
}

/* ---- initialisation ---- */

nde_status nde_net_init(const nde_net *net, nde_init scheme, double sigma, nde_rng *rng,
                        double *theta) {
  if (!net || !rng || !theta) return NDE_ERR_ARG;
  if (scheme != NDE_INIT_GLOROT_UNIFORM && scheme != NDE_INIT_GLOROT_NORMAL &&
      scheme != NDE_INIT_HE && scheme != NDE_INIT_NORMAL)
    return NDE_ERR_ARG;
  if (scheme == NDE_INIT_NORMAL && !(sigma >= 0.0 && isfinite(sigma))) return NDE_ERR_ARG;

  /* Layer by layer, weights in storage order: the draw order is part of the contract. */
  for (int l = 0; l < net->n_layers; l++) {
    double in = net->widths[l], nout = net->widths[l + 1];
    size_t nw = (size_t)net->widths[l] * (size_t)net->widths[l + 1];
    double *w = theta + net->w_off[l];
    if (scheme == NDE_INIT_GLOROT_UNIFORM) {
      double a = sqrt(6.0 / (in + nout));
      for (size_t i = 0; i < nw; i++) w[i] = a * (2.0 * nde_rng_uniform(rng) - 1.0);
    } else {
      double s = scheme == NDE_INIT_GLOROT_NORMAL ? sqrt(2.0 / (in + nout))
                 : scheme == NDE_INIT_HE          ? sqrt(2.0 / in)
                                                  : sigma;
      for (size_t i = 0; i < nw; i++) w[i] = s * nde_rng_normal(rng);
    }
    memset(theta + net->b_off[l], 0, (size_t)net->widths[l + 1] * sizeof *theta);
  }
  return NDE_OK;
}

/* ---- workspace ---- */

size_t nde_net_cache_size(const nde_net *net, int B) {
  size_t n;
  if (!net || B < 1 || !nde__mul_size(net->cache_row, (size_t)B, &n)) return 0;
  return n;
}

static nde_status ws_create(const nde_net *net, int max_batch, int second_order,
                            nde_net_ws **out) {
  if (!out) return NDE_ERR_ARG;
  *out = NULL;
  if (!net || max_batch < 1) return NDE_ERR_ARG;
  if (second_order && !nde_net_allows_second_order(net)) return NDE_ERR_UNSUPPORTED;
  size_t n_cache = nde_net_cache_size(net, max_batch), n_buf, n_so = 0;
  if (n_cache == 0 || !nde__mul_size((size_t)max_batch, (size_t)net->max_width, &n_buf))
    return NDE_ERR_LIMIT;
  if (second_order && !nde__mul_size((size_t)max_batch, net->so_row, &n_so)) return NDE_ERR_LIMIT;

  nde_net_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return NDE_ERR_NOMEM;
  ws->max_batch = max_batch;
  ws->max_width = net->max_width;
  ws->cache_row = net->cache_row;
  ws->cache = nde__dalloc(n_cache);
  ws->zbuf = nde__dalloc(n_buf);
  ws->buf[0] = nde__dalloc(n_buf);
  ws->buf[1] = nde__dalloc(n_buf);
  if (second_order) {
    ws->so_row = net->so_row;
    ws->so = nde__dalloc(n_so);
  }
  if (!ws->cache || !ws->zbuf || !ws->buf[0] || !ws->buf[1] || (second_order && !ws->so)) {
    nde_net_ws_destroy(&ws);
    return NDE_ERR_NOMEM;
  }
  *out = ws;
  return NDE_OK;
}

nde_status nde_net_ws_create(const nde_net *net, int max_batch, nde_net_ws **out) {
  return ws_create(net, max_batch, 0, out);
}

nde_status nde_net_ws_create_second_order(const nde_net *net, int max_batch, nde_net_ws **out) {
  return ws_create(net, max_batch, 1, out);
}

void nde_net_ws_destroy(nde_net_ws **ws) {
  if (!ws || !*ws) return;
  free((*ws)->cache);
  free((*ws)->zbuf);
  free((*ws)->buf[0]);
  free((*ws)->buf[1]);
  free((*ws)->so);
  free(*ws);
  *ws = NULL;
}

/* Whether ws was sized for net and B rows. */
static int ws_fits(const nde_net *net, int B, const nde_net_ws *ws) {
  return net && ws && B >= 1 && B <= ws->max_batch && net->max_width <= ws->max_width &&
         net->cache_row <= ws->cache_row;
}

/* The passes return void, so invalid arguments (a caller's bug) leave NaN in the output where
 * one can be written: a solver then sees a non-finite right-hand side instead of stale data. */
static NDE__COLD void fill_nan(double *x, int B, int width) {
  if (!x || B < 1 || width < 1) return;
  for (size_t i = 0; i < (size_t)B * (size_t)width; i++) x[i] = NAN;
}

/* ---- dense kernels: one layer on B rows ---- */

/* The single-row kernels below are written once for any narrow input width and specialised for
 * in = 1..4 by inlining with a constant, so that gcc vectorises them along the outputs. */

/* One row, in <= 4: z = b + W x (from_b) or z += W x, the products added in order k = 0, 1, ...
 * (a dot product this short does not vectorise; the outputs do). */
static NDE__ALWAYS_INLINE void row_affine_narrow(const int in, const int from_b, int out,
                                            const double *restrict W, const double *restrict b,
                                            const double *restrict x, double *restrict z) {
  const double x0 = x[0], x1 = in > 1 ? x[1] : 0.0, x2 = in > 2 ? x[2] : 0.0,
               x3 = in > 3 ? x[3] : 0.0;
#pragma omp simd
  for (int j = 0; j < out; j++) {
    const double *w = W + (size_t)j * (size_t)in;
    double s = from_b ? b[j] : z[j];
    s += w[0] * x0;
    if (in > 1) s += w[1] * x1;
    if (in > 2) s += w[2] * x2;
    if (in > 3) s += w[3] * x3;
    z[j] = s;
  }
}

/* One row, out <= 4 and any in: the out dot products in one pass over x. */
static NDE__ALWAYS_INLINE void row_affine_short(const int out, const int from_b, int in,
                                           const double *restrict W, const double *restrict b,
                                           const double *restrict x, double *restrict z) {
  const double *w0 = W, *w1 = W + (out > 1 ? in : 0), *w2 = W + (out > 2 ? 2 * in : 0),
               *w3 = W + (out > 3 ? 3 * in : 0);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int k = 0; k < in; k++) {
    const double xk = x[k];
    s0 += w0[k] * xk;
    if (out > 1) s1 += w1[k] * xk;
    if (out > 2) s2 += w2[k] * xk;
    if (out > 3) s3 += w3[k] * xk;
  }
  const double s[4] = {s0, s1, s2, s3};
  for (int j = 0; j < out; j++) z[j] = (from_b ? b[j] : z[j]) + s[j];
}

/* One row: z = b + W x (from_b) or z += W x. */
static void row_affine(int in, int out, const double *restrict W, const double *restrict b,
                       const double *restrict x, double *restrict z, int from_b) {
  switch (in * 2 + (from_b != 0)) {
    case 2: row_affine_narrow(1, 0, out, W, b, x, z); return;
    case 3: row_affine_narrow(1, 1, out, W, b, x, z); return;
    case 4: row_affine_narrow(2, 0, out, W, b, x, z); return;
    case 5: row_affine_narrow(2, 1, out, W, b, x, z); return;
    case 6: row_affine_narrow(3, 0, out, W, b, x, z); return;
    case 7: row_affine_narrow(3, 1, out, W, b, x, z); return;
    case 8: row_affine_narrow(4, 0, out, W, b, x, z); return;
    case 9: row_affine_narrow(4, 1, out, W, b, x, z); return;
    default: break;
  }
  switch (out * 2 + (from_b != 0)) {
    case 2: row_affine_short(1, 0, in, W, b, x, z); return;
    case 3: row_affine_short(1, 1, in, W, b, x, z); return;
    case 4: row_affine_short(2, 0, in, W, b, x, z); return;
    case 5: row_affine_short(2, 1, in, W, b, x, z); return;
    case 6: row_affine_short(3, 0, in, W, b, x, z); return;
    case 7: row_affine_short(3, 1, in, W, b, x, z); return;
    case 8: row_affine_short(4, 0, in, W, b, x, z); return;
    case 9: row_affine_short(4, 1, in, W, b, x, z); return;
    default: break;
  }
  for (int j = 0; j < out; j++) {
    const double *restrict w = W + (size_t)j * in;
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < in; k++) s += w[k] * x[k];
    z[j] = (from_b ? b[j] : z[j]) + s;
  }
}

/* ---- small products without BLAS ----
 *
 * The products of a batch (B > 1) with a small layer (at most LOOP_MAX_WEIGHTS weights and
 * SMALL_MAX_SIDE inputs and outputs) run here instead of in cblas_dgemm: OpenBLAS 0.3.21 takes a
 * buffer lock in every call (with its Haswell kernels, which it picks on AVX2 machines), and
 * concurrent fits contend for it.  A narrow or short layer (in <= 4 or out <= 4) runs the
 * one-row loops row by row, which are vectorised along its long side; the others run one
 * blocked kernel for their three products:
 *   C (M x N) = [C if beta] + sum_k a(i, k) P[k, :],  a(i, k) = A[i sa + k sk],
 * SMALL_MB rows by SMALL_NB columns of C held in registers, k ascending.  Either way every entry
 * of C is one sum in one order whatever M and the row's place in the batch, so a row's result
 * does not depend on the batch it is solved in.  P's rows are read SMALL_NB values at a time;
 * past the end of a row that reads the start of the next row, whose products land in columns
 * that are not stored, and the last rows are read from a padded copy.
 *
 * One thread, forward + VJP of a whole network, medians of 41, us, dgemm (Haswell kernels) ->
 * these (2026-11-28): 1-16-16-1 tanh at B = 2 0.69 -> 0.49, B = 19 2.38 -> 2.03, B = 256 24.7 ->
 * 23.7; 2-5-5-5-2 rbf 0.64 -> 0.41, 1.78 -> 1.65, 15.8 -> 17.4; 2-50-2 tanh 0.61 -> 0.25, 2.79
 * -> 1.80, 34.7 -> 26.4; 2-64-64-2 tanh (the 64 x 64 layer stays with dgemm) 4.34 -> 3.83, 15.8
 * -> 15.1, 171 -> 161.  The blocked kernel alone on the 64 x 64 layers was 0.9-1.06x dgemm's
 * speed, and on the narrow layers down to 0.7x (2 columns fill a quarter of the lanes), hence
 * the row loops for those and dgemm from 512 weights. */
#define SMALL_MAX_SIDE 64
#define SMALL_MB 4
#define SMALL_NB 8

static int use_small(int B, int in, int out) {
  return B > 1 && in <= SMALL_MAX_SIDE && out <= SMALL_MAX_SIDE &&
         (size_t)in * (size_t)out <= LOOP_MAX_WEIGHTS;
}

static NDE__ALWAYS_INLINE void small_block(const int mb, int K, int kq, const double *restrict A,
                                      size_t sa, size_t sk, const double *restrict P, size_t ldp,
                                      const double *restrict Q, size_t ldq,
                                      double *restrict C, size_t ldc, int jn, int beta) {
  double acc[SMALL_MB][SMALL_NB];
  for (int r = 0; r < mb; r++)
    for (int jj = 0; jj < SMALL_NB; jj++) acc[r][jj] = 0.0;
  for (int k = 0; k < K; k++) {
    const double *restrict p = k < kq ? P + (size_t)k * ldp : Q + (size_t)(k - kq) * ldq;
    for (int r = 0; r < mb; r++) {
      const double a = A[(size_t)r * sa + (size_t)k * sk];
#pragma omp simd
      for (int jj = 0; jj < SMALL_NB; jj++) acc[r][jj] += a * p[jj];
    }
  }
  for (int r = 0; r < mb; r++) {
    double *restrict c = C + (size_t)r * ldc;
    if (beta)
      for (int jj = 0; jj < jn; jj++) c[jj] += acc[r][jj];
    else
      for (int jj = 0; jj < jn; jj++) c[jj] = acc[r][jj];
  }
}

/* C = [C if beta] + sum_k a(i, k) P[k, :] for i < M, j < N (N <= SMALL_MAX_SIDE, K >= 1).
 * Unless P's rows are already SMALL_NB-padded (ldp >= N rounded up, as small_affine's packed
 * weights are), its last SMALL_NB rows (all of them when K is smaller) are read from a
 * zero-padded copy, so that no read of SMALL_NB values passes the end of P. */
static void small_mm(int M, int N, int K, const double *A, size_t sa, size_t sk,
                     const double *P, size_t ldp, double *C, size_t ldc, int beta) {
  const int ldq = (N + SMALL_NB - 1) / SMALL_NB * SMALL_NB;
  const int nq = ldp >= (size_t)ldq ? 0 : K < SMALL_NB ? K : SMALL_NB, kq = K - nq;
  double Q[SMALL_NB * SMALL_MAX_SIDE];
  for (int k = 0; k < nq; k++) {
    memcpy(Q + (size_t)k * ldq, P + (size_t)(kq + k) * ldp, (size_t)N * sizeof *Q);
    for (int j = N; j < ldq; j++) Q[(size_t)k * ldq + j] = 0.0;
  }
  for (int j0 = 0; j0 < N; j0 += SMALL_NB) {
    const int jn = N - j0 < SMALL_NB ? N - j0 : SMALL_NB;
    int i = 0;
    for (; i + SMALL_MB <= M; i += SMALL_MB)
      small_block(SMALL_MB, K, kq, A + (size_t)i * sa, sa, sk, P + j0, ldp, Q + j0,
                  (size_t)ldq, C + (size_t)i * ldc + j0, ldc, jn, beta);
    for (; i < M; i++)
      small_block(1, K, kq, A + (size_t)i * sa, sa, sk, P + j0, ldp, Q + j0, (size_t)ldq,
                  C + (size_t)i * ldc + j0, ldc, jn, beta);
  }
}

/* Z += X W^T for B rows of a small layer: W^T packed with its rows padded to SMALL_NB. */
static void small_affine(int B, int in, int out, const double *restrict W,
                         const double *restrict X, double *restrict Z) {
  const int op = (out + SMALL_NB - 1) / SMALL_NB * SMALL_NB;
  /* in x op <= in x out + 7 in: use_small bounds both. */
  double WT[LOOP_MAX_WEIGHTS + (SMALL_NB - 1) * SMALL_MAX_SIDE];
  for (int k = 0; k < in; k++) {
    double *restrict w = WT + (size_t)k * op;
    for (int j = 0; j < out; j++) w[j] = W[(size_t)j * in + k];
    for (int j = out; j < op; j++) w[j] = 0.0;
  }
  small_mm(B, out, in, X, (size_t)in, 1, WT, (size_t)op, Z, (size_t)out, 1);
}

/* Z = [Z if acc] + [b if b] + X W^T, X is B x in, W is out x in, Z is B x out. */
static void affine(int B, int in, int out, const double *restrict W, const double *restrict b,
                   const double *restrict X, double *restrict Z, int acc) {
  if (!use_gemm(B, in, out) && b && !acc) {
    row_affine(in, out, W, b, X, Z, 1);
    return;
  }
  if (!acc) {
    for (int r = 0; r < B; r++) {
      if (b)
        memcpy(Z + (size_t)r * out, b, (size_t)out * sizeof *Z);
      else
        memset(Z + (size_t)r * out, 0, (size_t)out * sizeof *Z);
    }
  } else if (b) {
    for (int r = 0; r < B; r++) {
      double *restrict z = Z + (size_t)r * out;
#pragma omp simd
      for (int j = 0; j < out; j++) z[j] += b[j];
    }
  }
  if (!use_gemm(B, in, out))
    row_affine(in, out, W, NULL, X, Z, 0);
  else if (use_small(B, in, out) && (in <= 4 || out <= 4))
    for (int r = 0; r < B; r++)
      row_affine(in, out, W, NULL, X + (size_t)r * in, Z + (size_t)r * out, 0);
  else if (use_small(B, in, out))
    small_affine(B, in, out, W, X, Z);
  else
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0, X, in, W, in, 1.0, Z,
                out);
}

/* One row, in <= 4, all in one pass over the outputs: gb += dz, gW += dz x^T (with_p) and
 * gx = W^T dz (with_x), the last as one vectorised sum per input. */
static NDE__ALWAYS_INLINE void row_vjp_narrow(const int in, const int with_p, const int with_x,
                                         int out, const double *restrict dz,
                                         const double *restrict x, const double *restrict W,
                                         double *restrict gW, double *restrict gb,
                                         double *restrict gx) {
  const double x0 = x[0], x1 = in > 1 ? x[1] : 0.0, x2 = in > 2 ? x[2] : 0.0,
               x3 = in > 3 ? x[3] : 0.0;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int j = 0; j < out; j++) {
    const double d = dz[j];
    if (with_p) {
      double *g = gW + (size_t)j * (size_t)in;
      gb[j] += d;
      g[0] += d * x0;
      if (in > 1) g[1] += d * x1;
      if (in > 2) g[2] += d * x2;
      if (in > 3) g[3] += d * x3;
    }
    if (with_x) {
      const double *w = W + (size_t)j * (size_t)in;
      s0 += d * w[0];
      if (in > 1) s1 += d * w[1];
      if (in > 2) s2 += d * w[2];
      if (in > 3) s3 += d * w[3];
    }
  }
  if (with_x) {
    gx[0] = s0;
    if (in > 1) gx[1] = s1;
    if (in > 2) gx[2] = s2;
    if (in > 3) gx[3] = s3;
  }
}

#define ROW_VJP_NARROW(in)                                                \
  do {                                                                    \
    if (gW && gx)                                                         \
      row_vjp_narrow(in, 1, 1, out, dz, x, W, gW, gb, gx);                \
    else if (gW)                                                          \
      row_vjp_narrow(in, 1, 0, out, dz, x, W, gW, gb, gx);                \
    else                                                                  \
      row_vjp_narrow(in, 0, 1, out, dz, x, W, gW, gb, gx);                \
    return;                                                               \
  } while (0)

/* One row, out <= 4 and any in, in one pass over the inputs: gW += dz x^T (with_p) and
 * gx = W^T dz (with_x), each gx[k] summed over j in order as in the general loop below. */
static NDE__ALWAYS_INLINE void row_vjp_short(const int out, const int with_p, const int with_x,
                                        int in, const double *restrict dz,
                                        const double *restrict x, const double *restrict W,
                                        double *restrict gW, double *restrict gx) {
  const double d0 = dz[0], d1 = out > 1 ? dz[1] : 0.0, d2 = out > 2 ? dz[2] : 0.0,
               d3 = out > 3 ? dz[3] : 0.0;
#pragma omp simd
  for (int k = 0; k < in; k++) {
    if (with_p) {
      const double xk = x[k];
      gW[k] += d0 * xk;
      if (out > 1) gW[(size_t)in + k] += d1 * xk;
      if (out > 2) gW[2 * (size_t)in + k] += d2 * xk;
      if (out > 3) gW[3 * (size_t)in + k] += d3 * xk;
    }
    if (with_x) {
      double g = 0.0;
      g += d0 * W[k];
      if (out > 1) g += d1 * W[(size_t)in + k];
      if (out > 2) g += d2 * W[2 * (size_t)in + k];
      if (out > 3) g += d3 * W[3 * (size_t)in + k];
      gx[k] = g;
    }
  }
}

#define ROW_VJP_SHORT(out)                                   \
  do {                                                       \
    if (gW && gx)                                            \
      row_vjp_short(out, 1, 1, in, dz, x, W, gW, gx);        \
    else if (gW)                                             \
      row_vjp_short(out, 1, 0, in, dz, x, W, gW, gx);        \
    else                                                     \
      row_vjp_short(out, 0, 1, in, dz, x, W, gW, gx);        \
    return;                                                  \
  } while (0)

/* One row: gW += dz x^T and gb += dz (when gW, gb are non-NULL), gx = W^T dz (when gx is
 * non-NULL).  gx does not depend on whether the parameter cotangents are asked for. */
static void row_vjp(int in, int out, const double *restrict dz, const double *restrict x,
                    const double *restrict W, double *restrict gW, double *restrict gb,
                    double *restrict gx) {
  if (!gW && !gx) return;
  switch (in) {
    case 1: ROW_VJP_NARROW(1);
    case 2: ROW_VJP_NARROW(2);
    case 3: ROW_VJP_NARROW(3);
    case 4: ROW_VJP_NARROW(4);
    default: break;
  }
  if (gW) {
#pragma omp simd
    for (int j = 0; j < out; j++) gb[j] += dz[j];
  }
  switch (out) {
    case 1: ROW_VJP_SHORT(1);
    case 2: ROW_VJP_SHORT(2);
    case 3: ROW_VJP_SHORT(3);
    case 4: ROW_VJP_SHORT(4);
    default: break;
  }
  if (gx) memset(gx, 0, (size_t)in * sizeof *gx);
  for (int j = 0; j < out; j++) {
    const double d = dz[j];
    const double *restrict w = W + (size_t)j * in;
    double *restrict g = gW ? gW + (size_t)j * in : NULL;
    if (gW && gx) {
#pragma omp simd
      for (int k = 0; k < in; k++) {
        g[k] += d * x[k];
        gx[k] += d * w[k];
      }
    } else if (gW) {
#pragma omp simd
      for (int k = 0; k < in; k++) g[k] += d * x[k];
    } else {
#pragma omp simd
      for (int k = 0; k < in; k++) gx[k] += d * w[k];
    }
  }
}

/* Reverse pass through one layer's affine map: gW += dZ^T X and gb += column sums of dZ (when
 * gW and gb are non-NULL), gX = dZ W (overwritten, when gX is non-NULL). */
static void affine_vjp(int B, int in, int out, const double *restrict dZ,
                       const double *restrict X, const double *restrict W, double *restrict gW,
                       double *restrict gb, double *restrict gX) {
  if (!use_gemm(B, in, out)) {
    row_vjp(in, out, dZ, X, W, gW, gb, gX);
    return;
  }
  if (use_small(B, in, out) && (in <= 4 || out <= 4)) {
    /* A narrow or short layer: the one-row loops (vectorised along its long side) row by
     * row, the parameter cotangents added row after row. */
    for (int r = 0; r < B; r++)
      row_vjp(in, out, dZ + (size_t)r * out, X + (size_t)r * in, W, gW, gb,
              gX ? gX + (size_t)r * in : NULL);
    return;
  }
  if (gW) {
    for (int r = 0; r < B; r++) {
      const double *restrict d = dZ + (size_t)r * out;
#pragma omp simd
      for (int j = 0; j < out; j++) gb[j] += d[j];
    }
    if (use_small(B, in, out))
      small_mm(out, in, B, dZ, 1, (size_t)out, X, (size_t)in, gW, (size_t)in, 1);
    else
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0, dZ, out, X, in, 1.0,
                  gW, in);
  }
  if (gX) {
    if (use_small(B, in, out))
      small_mm(B, in, out, dZ, (size_t)out, 1, W, (size_t)in, gX, (size_t)in, 0);
    else
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0, dZ, out, W, in,
                  0.0, gX, in);
  }
}

/* ---- passes ---- */

/* Layer l's A_l inside a cache for B rows. */
static double *cache_a(const nde_net *net, int B, const double *cache, int l) {
  return (double *)cache + net->a_off[l] * (size_t)B;
}

/* Layer l's Z_l inside a cache for B rows, or NULL when the cache does not keep it. */
static double *cache_z(const nde_net *net, int B, const double *cache, int l) {
  if (net->z_off[l] == NO_Z) return NULL;
  return (double *)cache + net->z_off[l] * (size_t)B;
}

/* ---- one row through a two-layer network ----
 *
 * A network in -> H act -> out with in <= 4, out <= 4 and an identity output layer (the
 * usual shape of a small neural ODE: 2 -> 50 tanh -> 2 in torchdiffeq's spiral) runs at B = 1
 * through kernels chosen when the network is created (net->row_f, net->row_vjp), one per
 * (in, out, tanh or not), so that a call pays one indirect jump instead of the layer loop's
 * dispatch.
 *
 * Forward: z_j = b0_j + sum_k W0[j, k] x_k (added in order k = 0, 1, ... as row_affine_narrow
 * adds them), a = act(z), y_i = b1_i + sum_j W1[i, j] a_j.  For tanh, a is one loop over the
 * hidden units and y a second one; other activations take the two affine maps around
 * nde__act_forward.  The tanh loop calls expm1 (libmvec's vector expm1, which may overwrite
 * every vector register), so sums kept in that loop lived on the stack and each unit's products
 * went through memory; in a loop of their own they stay in registers.  Measured on the spiral
 * benchmark (2026-11-28, five interleaved runs each): 1.41-1.43 -> 1.33-1.39 times the hand
 * loop, whose single loop pays the same spills.  For the same reason z is formed in a loop of
 * its own (into zbuf) before the loop of expm1 calls, which then holds nothing else across
 * them: 1.21-1.23 -> 1.18-1.19 (library 473-480 -> 456-462 us, hand loop 387-394 us); in an
 * AVX2 build (-march=haswell, same machine) 1.22-1.24 -> 1.12, in the portable build
 * 1.13-1.14 -> 1.01-1.03 (three interleaved runs each).
 *
 * Reverse, with dz the cotangent of y and d = act'(Z_0) (for tanh (1 - a)(1 + a), formed in the
 * loop as nde__act_dmul forms it; otherwise computed in a pass first):
 *   g_j = sum_i dz_i W1[i, j],  gW1 += dz a^T,  e_j = g_j d_j,
 *   gb0 += e,  gW0 += e x^T,  gx = W0^T e,  gb1 += dz,
 * in one pass over the hidden units instead of three (row_vjp_short, nde__act_dmul,
 * row_vjp_narrow).  Measured per call on the bottom pair alone (one thread, Zen 4,
 * -march=native, best of 7 x 200000, three runs): 1-8-1 tanh 22 -> 17 ns, 2-16-2 tanh 32 -> 28,
 * 3-16-3 softplus 47-57 -> 40-42, 2-40-2 gelu 84-88 -> 73, 2-50-2 tanh 55-59 -> 49; from H = 63
 * on no gain (2-63-2 and 2-64-2 tanh 65-68 either way, 2-128-2 90 -> 93-104, 4-100-4 122-124 ->
 * 140-143), so wider hidden layers keep the layer loop.  Choosing the kernels at creation and
 * fusing the forward pass took the spiral benchmark (benchmarks/bench_overhead, 2-50-2 tanh, RK4,
 * 1000 steps, one gradient) from 1.47-1.52 to 1.46-1.48 times the hand-written loop (four
 * interleaved runs of each build, 2026-11-28); in isolation, 4000 one-row VJPs took 188-197 ->
 * 165 us and 4000 forward passes 308-324 -> 292-312 us (medians of 300). */
#define PAIR_MAX_HIDDEN 62

/* ---- eight-lane vectors for the one-row kernels ----
 *
 * A loop under `omp simd reduction` keeps its sums in lanes that GCC adds one after another at
 * the end, through the stack; at B = 1 those sums are on the solver's critical path (the next
 * stage waits for y, the adjoint's next stage for gx).  With GCC's vector extensions the sums
 * stay in registers and are added as a tree.  The types are 8 doubles whatever the target
 * and the order of every sum is fixed by the source.  Only for AVX-512 targets, where a type
 * is one register: on the spiral benchmark (2-50-2 tanh, RK4, 1000 steps, one gradient;
 * 2026-11-28, interleaved runs) the first version took the library from 1.31-1.37 to 1.25-1.28
 * times the hand loop in the native build (1.21-1.26 with the VJP below), while an AVX2 build
 * (-march=haswell, same machine) went from 1.22-1.26 to 3.5 and the portable build from 1.13 to
 * 2.0 (GCC splits the 8-lane shuffles badly).  Other targets and compilers take the omp simd
 * loops. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#define NDE__VEC8 1
/* The helpers below pass v8d by value; they are always inlined, so the note that this ABI
 * differs with and without AVX-512 concerns no call that exists. */
#pragma GCC diagnostic ignored "-Wpsabi"
typedef double v8d __attribute__((vector_size(64), aligned(8), may_alias));
typedef long long v8i __attribute__((vector_size(64)));

static NDE__ALWAYS_INLINE v8d ld8(const double *p) { return *(const v8d *)p; }

/* v, which the compiler must now keep in a register instead of loading it again where it is
 * used.  GCC otherwise folded the loads of the cache and of W0 into the instructions that use
 * them, after the block's stores into gtheta, and a load behind stores can wait on them (the
 * addresses can match modulo 4096); loaded once, before the stores, it does not.  Spiral
 * benchmark, VJP kernel alone changed (2026-11-28, five interleaved runs each): library
 * 487-494 -> 465-477 us against a hand loop of 383-395 us, 1.26-1.27 -> 1.21-1.24. */
static NDE__ALWAYS_INLINE v8d in_reg8(v8d v) {
  __asm__("" : "+v"(v));
  return v;
}
static NDE__ALWAYS_INLINE void add8(double *p, v8d v) { *(v8d *)p += v; }

/* The sum of the 8 lanes: ((0+4) + (2+6)) + ((1+5) + (3+7)). */
static NDE__ALWAYS_INLINE double hsum8(v8d v) {
  v8d t = v + __builtin_shuffle(v, (v8i){4, 5, 6, 7, 0, 1, 2, 3});
  t += __builtin_shuffle(t, (v8i){2, 3, 0, 1, 6, 7, 4, 5});
  t += __builtin_shuffle(t, (v8i){1, 0, 3, 2, 5, 4, 7, 6});
  return t[0];
}

/* Block v (of `in`) of the 8 hidden units' e repeated per input, matching the flat H x in
 * layout of W0 (in = 1 or 4). */
static NDE__ALWAYS_INLINE v8d rep8(v8d e, const int in, const int v) {
  if (in == 1) return e;
  switch (v) {
    case 0: return __builtin_shuffle(e, (v8i){0, 0, 0, 0, 1, 1, 1, 1});
    case 1: return __builtin_shuffle(e, (v8i){2, 2, 2, 2, 3, 3, 3, 3});
    case 2: return __builtin_shuffle(e, (v8i){4, 4, 4, 4, 5, 5, 5, 5});
    default: return __builtin_shuffle(e, (v8i){6, 6, 6, 6, 7, 7, 7, 7});
  }
}

/* y_i = sum_j W1[i, j] a_j for the out <= 4 rows (w[i] = row i), 8 units at a time. */
static NDE__ALWAYS_INLINE void sums8(const int out, int H, const double *const w[4],
                                     const double *restrict a, double s[4]) {
  v8d p0 = {0}, p1 = {0}, p2 = {0}, p3 = {0};
  int j = 0;
  for (; j + 8 <= H; j += 8) {
    const v8d aj = ld8(a + j);
    p0 += ld8(w[0] + j) * aj;
    if (out > 1) p1 += ld8(w[1] + j) * aj;
    if (out > 2) p2 += ld8(w[2] + j) * aj;
    if (out > 3) p3 += ld8(w[3] + j) * aj;
  }
  s[0] = hsum8(p0);
  if (out > 1) s[1] = hsum8(p1);
  if (out > 2) s[2] = hsum8(p2);
  if (out > 3) s[3] = hsum8(p3);
  for (; j < H; j++)
    for (int i = 0; i < out; i++) s[i] += w[i][j] * a[j];
}
#endif

static NDE__ALWAYS_INLINE void pair_forward(const int tanh0, const int in, const int out,
                                       const nde_net *net, const double *restrict theta,
                                       const double *restrict x, double *restrict cache,
                                       double *restrict zbuf, double *restrict y) {
  const int H = net->widths[1];
  const double *restrict W0 = theta + net->w_off[0], *restrict b0 = theta + net->b_off[0];
  const double *restrict W1 = theta + net->w_off[1], *restrict b1 = theta + net->b_off[1];
  double *restrict a = cache_a(net, 1, cache, 0);
  double *restrict a1 = cache_a(net, 1, cache, 1);
  const double x0 = x[0], x1 = in > 1 ? x[1] : 0.0, x2 = in > 2 ? x[2] : 0.0,
               x3 = in > 3 ? x[3] : 0.0;
  const double *w1 = W1 + (out > 1 ? H : 0), *w2 = W1 + (out > 2 ? 2 * H : 0),
               *w3 = W1 + (out > 3 ? 3 * H : 0);
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  if (tanh0) {
#pragma omp simd
    for (int j = 0; j < H; j++) {
      double z = b0[j];
      z += W0[in * j] * x0;
      if (in > 1) z += W0[in * j + 1] * x1;
      if (in > 2) z += W0[in * j + 2] * x2;
      if (in > 3) z += W0[in * j + 3] * x3;
      zbuf[j] = z;
    }
#pragma omp simd
    for (int j = 0; j < H; j++) a[j] = nde__tanh(zbuf[j]);
#if NDE__VEC8
    const double *const w[4] = {W1, w1, w2, w3};
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    sums8(out, H, w, a, s);
    s0 = s[0], s1 = s[1], s2 = s[2], s3 = s[3];
#else
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int j = 0; j < H; j++) {
      const double aj = a[j];
      s0 += W1[j] * aj;
      if (out > 1) s1 += w1[j] * aj;
      if (out > 2) s2 += w2[j] * aj;
      if (out > 3) s3 += w3[j] * aj;
    }
#endif
  } else {
    double *restrict z = cache_z(net, 1, cache, 0);
    if (!z) z = zbuf;
    row_affine_narrow(in, 1, H, W0, b0, x, z);
    nde__act_forward(net->acts[0], (size_t)H, z, a);
    row_affine_short(out, 1, H, W1, b1, a, a1);
    for (int i = 0; i < out; i++) y[i] = a1[i];
    return;
  }
  const double s[4] = {s0, s1, s2, s3};
  for (int i = 0; i < out; i++) y[i] = a1[i] = b1[i] + s[i];
}

static NDE__ALWAYS_INLINE void pair_vjp(const int tanh0, const int with_g, const int in,
                                        const int out,
                                   const nde_net *net, const double *restrict theta,
                                   const double *restrict x, const double *restrict cache,
                                   const double *restrict dz, double *restrict d,
                                   double *restrict gtheta, double *restrict gx) {
  const int H = net->widths[1];
  const double *restrict a = cache_a(net, 1, cache, 0);
  if (!tanh0) nde__act_dmul(net->acts[0], (size_t)H, cache_z(net, 1, cache, 0), a, NULL, d);
  const double *restrict W0 = theta + net->w_off[0], *restrict W1 = theta + net->w_off[1];
  double *restrict gW0 = with_g ? gtheta + net->w_off[0] : NULL;
  double *restrict gb0 = with_g ? gtheta + net->b_off[0] : NULL;
  double *restrict gW1 = with_g ? gtheta + net->w_off[1] : NULL;
  double *restrict gb1 = with_g ? gtheta + net->b_off[1] : NULL;
  const double x0 = x[0], x1 = in > 1 ? x[1] : 0.0, x2 = in > 2 ? x[2] : 0.0,
               x3 = in > 3 ? x[3] : 0.0;
  const double c0 = dz[0], c1 = out > 1 ? dz[1] : 0.0, c2 = out > 2 ? dz[2] : 0.0,
               c3 = out > 3 ? dz[3] : 0.0;
  const double *w1 = W1 + (out > 1 ? H : 0), *w2 = W1 + (out > 2 ? 2 * H : 0),
               *w3 = W1 + (out > 3 ? 3 * H : 0);
  double *g1 = with_g && out > 1 ? gW1 + H : NULL, *g2 = with_g && out > 2 ? gW1 + 2 * H : NULL,
         *g3 = with_g && out > 3 ? gW1 + 3 * H : NULL;
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int j = 0; j < H; j++) {
    const double aj = a[j];
    double g = 0.0; /* summed as row_vjp_short sums it */
    g += c0 * W1[j];
    if (with_g) gW1[j] += c0 * aj;
    if (out > 1) {
      g += c1 * w1[j];
      if (with_g) g1[j] += c1 * aj;
    }
    if (out > 2) {
      g += c2 * w2[j];
      if (with_g) g2[j] += c2 * aj;
    }
    if (out > 3) {
      g += c3 * w3[j];
      if (with_g) g3[j] += c3 * aj;
    }
    const double e = g * (tanh0 ? (1.0 - aj) * (1.0 + aj) : d[j]);
    if (with_g) gb0[j] += e;
    if (with_g) gW0[in * j] += e * x0;
    s0 += e * W0[in * j];
    if (in > 1) {
      if (with_g) gW0[in * j + 1] += e * x1;
      s1 += e * W0[in * j + 1];
    }
    if (in > 2) {
      if (with_g) gW0[in * j + 2] += e * x2;
      s2 += e * W0[in * j + 2];
    }
    if (in > 3) {
      if (with_g) gW0[in * j + 3] += e * x3;
      s3 += e * W0[in * j + 3];
    }
  }
  gx[0] = s0;
  if (in > 1) gx[1] = s1;
  if (in > 2) gx[2] = s2;
  if (in > 3) gx[3] = s3;
  if (with_g)
    for (int i = 0; i < out; i++) gb1[i] += dz[i];
}


#if NDE__VEC8
/* pair_vjp for in = 1, 2 or 4 on eight-lane vectors, 8 hidden units per block; the last H mod 8
 * units as in pair_vjp.  Each unit's terms are the same products as in pair_vjp; the sums over
 * units run in 8 lanes and a tree.  W0 and gW0 are H x in, row after row:
 *  - in = 2: W0's block is split into its two columns, and gW0's block is formed from the two
 *    columns of e x^T, so that the shuffles work on what is loaded and what is stored, off the
 *    path from e to gx.  (Shuffling e instead, as for in = 4, cost the spiral benchmark 0.05.)
 *  - in = 1, 4: gW0 += rep(e) * (x repeated) and t += rep(e) * W0 block by block, and gx_k is
 *    the sum of t's lanes l with l mod in = k.
 * The cache and W0 are loaded once per block (in_reg8). */
static NDE__ALWAYS_INLINE void pair_vjp8(const int tanh0, const int with_g, const int in,
                                         const int out, const nde_net *net,
                                         const double *restrict theta, const double *restrict x,
                                         const double *restrict cache, const double *restrict dz,
                                         double *restrict d, double *restrict gtheta,
                                         double *restrict gx) {
  const int H = net->widths[1];
  const double *restrict a = cache_a(net, 1, cache, 0);
  if (!tanh0) nde__act_dmul(net->acts[0], (size_t)H, cache_z(net, 1, cache, 0), a, NULL, d);
  const double *restrict W0 = theta + net->w_off[0], *restrict W1 = theta + net->w_off[1];
  double *restrict gW0 = with_g ? gtheta + net->w_off[0] : NULL;
  double *restrict gb0 = with_g ? gtheta + net->b_off[0] : NULL;
  double *restrict gW1 = with_g ? gtheta + net->w_off[1] : NULL;
  double *restrict gb1 = with_g ? gtheta + net->b_off[1] : NULL;
  const double c0 = dz[0], c1 = out > 1 ? dz[1] : 0.0, c2 = out > 2 ? dz[2] : 0.0,
               c3 = out > 3 ? dz[3] : 0.0;
  const double *restrict w1 = W1 + (out > 1 ? H : 0), *restrict w2 = W1 + (out > 2 ? 2 * H : 0),
                         *restrict w3 = W1 + (out > 3 ? 3 * H : 0);
  double *restrict g1 = with_g && out > 1 ? gW1 + H : NULL;
  double *restrict g2 = with_g && out > 2 ? gW1 + 2 * H : NULL;
  double *restrict g3 = with_g && out > 3 ? gW1 + 3 * H : NULL;
  v8d xr = {0}; /* x repeated along W0's rows (in = 1, 4) */
  if (in != 2)
    for (int l = 0; l < 8; l++) xr[l] = x[l % in];
  v8d t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};
  int j = 0;
  for (; j + 8 <= H; j += 8) {
    const v8d aj = in_reg8(ld8(a + j));
    v8d g = c0 * ld8(W1 + j);
    if (with_g) add8(gW1 + j, c0 * aj);
    if (out > 1) {
      g += c1 * ld8(w1 + j);
      if (with_g) add8(g1 + j, c1 * aj);
    }
    if (out > 2) {
      g += c2 * ld8(w2 + j);
      if (with_g) add8(g2 + j, c2 * aj);
    }
    if (out > 3) {
      g += c3 * ld8(w3 + j);
      if (with_g) add8(g3 + j, c3 * aj);
    }
    const v8d e = tanh0 ? g * ((1.0 - aj) * (1.0 + aj)) : g * ld8(d + j);
    if (with_g) add8(gb0 + j, e);
    const double *w = W0 + (size_t)in * j;
    double *gw = with_g ? gW0 + (size_t)in * j : NULL;
    if (in == 2) {
      const v8d lo = in_reg8(ld8(w)), hi = in_reg8(ld8(w + 8));
      if (with_g) {
        const v8d e0 = e * x[0], e1 = e * x[1];
        add8(gw, __builtin_shuffle(e0, e1, (v8i){0, 8, 1, 9, 2, 10, 3, 11}));
        add8(gw + 8, __builtin_shuffle(e0, e1, (v8i){4, 12, 5, 13, 6, 14, 7, 15}));
      }
      t0 += e * __builtin_shuffle(lo, hi, (v8i){0, 2, 4, 6, 8, 10, 12, 14});
      t1 += e * __builtin_shuffle(lo, hi, (v8i){1, 3, 5, 7, 9, 11, 13, 15});
    } else {
      const v8d r0 = rep8(e, in, 0);
      if (with_g) add8(gw, r0 * xr);
      t0 += r0 * in_reg8(ld8(w));
      if (in == 4) {
        const v8d r1 = rep8(e, in, 1), r2 = rep8(e, in, 2), r3 = rep8(e, in, 3);
        if (with_g) {
          add8(gw + 8, r1 * xr);
          add8(gw + 16, r2 * xr);
          add8(gw + 24, r3 * xr);
        }
        t1 += r1 * in_reg8(ld8(w + 8));
        t2 += r2 * in_reg8(ld8(w + 16));
        t3 += r3 * in_reg8(ld8(w + 24));
      }
    }
  }
  double r0, r1 = 0.0, r2 = 0.0, r3 = 0.0;
  if (in == 1) {
    r0 = hsum8(t0);
  } else if (in == 2) {
    r0 = hsum8(t0);
    r1 = hsum8(t1);
  } else {
    v8d tt = (t0 + t1) + (t2 + t3);
    tt += __builtin_shuffle(tt, (v8i){4, 5, 6, 7, 0, 1, 2, 3});
    r0 = tt[0], r1 = tt[1], r2 = tt[2], r3 = tt[3];
  }
  for (; j < H; j++) {
    const double aj = a[j];
    double g = c0 * W1[j];
    if (with_g) gW1[j] += c0 * aj;
    if (out > 1) {
      g += c1 * w1[j];
      if (with_g) g1[j] += c1 * aj;
    }
    if (out > 2) {
      g += c2 * w2[j];
      if (with_g) g2[j] += c2 * aj;
    }
    if (out > 3) {
      g += c3 * w3[j];
      if (with_g) g3[j] += c3 * aj;
    }
    const double e = g * (tanh0 ? (1.0 - aj) * (1.0 + aj) : d[j]);
    if (with_g) {
      gb0[j] += e;
      for (int k = 0; k < in; k++) gW0[in * j + k] += e * x[k];
    }
    r0 += e * W0[in * j];
    if (in > 1) r1 += e * W0[in * j + 1];
    if (in > 2) r2 += e * W0[in * j + 2];
    if (in > 3) r3 += e * W0[in * j + 3];
  }
  gx[0] = r0;
  if (in > 1) gx[1] = r1;
  if (in > 2) gx[2] = r2;
  if (in > 3) gx[3] = r3;
  if (with_g)
    for (int i = 0; i < out; i++) gb1[i] += dz[i];
}
#define PAIR_VJP1(tanh0, with_g, i, o, ...)                                                    \
  ((i) == 3 ? pair_vjp(tanh0, with_g, i, o, __VA_ARGS__)                                       \
            : pair_vjp8(tanh0, with_g, i, o, __VA_ARGS__))
#else
#define PAIR_VJP1(tanh0, with_g, i, o, ...) pair_vjp(tanh0, with_g, i, o, __VA_ARGS__)
#endif
/* The kernels, one function per (in, out, tanh or not).  gtheta may be NULL (the input
 * cotangent alone): the kernel without the parameter sums, so that gx is the same bits whether
 * gtheta is asked for or not. */
#define PAIR_FNS(i, o)                                                                          \
  static void pair_f_##i##o##_t(const nde_net *net, const double *theta, const double *x,      \
                                double *cache, double *zbuf, double *y) {                      \
    pair_forward(1, i, o, net, theta, x, cache, zbuf, y);                                      \
  }                                                                                            \
  static void pair_f_##i##o##_g(const nde_net *net, const double *theta, const double *x,      \
                                double *cache, double *zbuf, double *y) {                      \
    pair_forward(0, i, o, net, theta, x, cache, zbuf, y);                                      \
  }                                                                                            \
  static void pair_v_##i##o##_t(const nde_net *net, const double *restrict theta,             \
                                const double *restrict x, const double *restrict cache,        \
                                const double *restrict dz, double *restrict d,                 \
                                double *restrict gtheta, double *restrict gx) {                \
    if (!gtheta) {                                                                             \
      PAIR_VJP1(1, 0, i, o, net, theta, x, cache, dz, d, NULL, gx);                            \
      return;                                                                                  \
    }                                                                                          \
    PAIR_VJP1(1, 1, i, o, net, theta, x, cache, dz, d, gtheta, gx);                            \
  }                                                                                            \
  static void pair_v_##i##o##_g(const nde_net *net, const double *restrict theta,             \
                                const double *restrict x, const double *restrict cache,        \
                                const double *restrict dz, double *restrict d,                 \
                                double *restrict gtheta, double *restrict gx) {                \
    if (!gtheta) {                                                                             \
      PAIR_VJP1(0, 0, i, o, net, theta, x, cache, dz, d, NULL, gx);                            \
      return;                                                                                  \
    }                                                                                          \
    PAIR_VJP1(0, 1, i, o, net, theta, x, cache, dz, d, gtheta, gx);                            \
  }
PAIR_FNS(1, 1) PAIR_FNS(1, 2) PAIR_FNS(1, 3) PAIR_FNS(1, 4)
PAIR_FNS(2, 1) PAIR_FNS(2, 2) PAIR_FNS(2, 3) PAIR_FNS(2, 4)
PAIR_FNS(3, 1) PAIR_FNS(3, 2) PAIR_FNS(3, 3) PAIR_FNS(3, 4)
PAIR_FNS(4, 1) PAIR_FNS(4, 2) PAIR_FNS(4, 3) PAIR_FNS(4, 4)

/* Row i of a table of kernels of kind k (f or v): out = 1..4 by {general, tanh}. */
#define PAIR_ROW(k, i)                                                                         \
  {{pair_##k##_##i##1_g, pair_##k##_##i##1_t}, {pair_##k##_##i##2_g, pair_##k##_##i##2_t},     \
   {pair_##k##_##i##3_g, pair_##k##_##i##3_t}, {pair_##k##_##i##4_g, pair_##k##_##i##4_t}}
static const nde__row_f_fn pair_f_table[4][4][2] = {PAIR_ROW(f, 1), PAIR_ROW(f, 2),
                                                    PAIR_ROW(f, 3), PAIR_ROW(f, 4)};
static const nde__row_vjp_fn pair_v_table[4][4][2] = {PAIR_ROW(v, 1), PAIR_ROW(v, 2),
                                                      PAIR_ROW(v, 3), PAIR_ROW(v, 4)};
#undef PAIR_ROW

/* Pick the one-row kernels of a network in -> H act -> out (identity) with in, out <= 4 and
 * H <= PAIR_MAX_HIDDEN; others keep NULL and run the layer loop. */
static void pick_row_kernels(nde_net *net) {
  if (net->n_layers != 2 || net->acts[1] != NDE_ACT_IDENTITY) return;
  const int in = net->widths[0], H = net->widths[1], out = net->widths[2];
  if (in > 4 || out > 4 || H > PAIR_MAX_HIDDEN) return;
  const int t = net->acts[0] == NDE_ACT_TANH;
  net->row_f = pair_f_table[in - 1][out - 1][t];
  net->row_vjp = pair_v_table[in - 1][out - 1][t];
}

/* Layer l on B rows of A_in: A_l into the cache, Z_l into the cache when kept, else into zbuf
 * (valid until the next layer).  Returns Z_l. */
static const double *layer_forward(const nde_net *net, int l, const double *theta, int B,
                                   const double *A_in, double *cache, double *zbuf) {
  int in = net->widths[l], out = net->widths[l + 1];
  double *A = cache_a(net, B, cache, l), *Z = cache_z(net, B, cache, l);
  const double *W = theta + net->w_off[l], *b = theta + net->b_off[l];
  if (net->acts[l] == NDE_ACT_IDENTITY) {
    affine(B, in, out, W, b, A_in, A, 0);
    return A;
  }
  if (!Z) Z = zbuf;
  affine(B, in, out, W, b, A_in, Z, 0);
  nde__act_forward(net->acts[l], (size_t)B * (size_t)out, Z, A);
  return Z;
}

/* Run the network on X, filling cache. */
static void forward_into(const nde_net *net, const double *theta, int B, const double *X,
                         double *cache, double *zbuf) {
  const double *A_in = X;
  for (int l = 0; l < net->n_layers; l++) {
    layer_forward(net, l, theta, B, A_in, cache, zbuf);
    A_in = cache_a(net, B, cache, l);
  }
}

static NDE__COLD void bad_forward(const nde_net *net, int B, double *Y) {
  if (net) fill_nan(Y, B, nde_net_n_out(net));
}

static NDE__COLD void bad_vjp(const nde_net *net, int B, double *gX) {
  if (net) fill_nan(gX, B, nde_net_n_in(net));
}

/* The layer loop's forward pass, out of line so that the entry point stays a few checks and a
 * jump to the one-row kernel at B = 1 (with the layer loop inlined, the entry saved six
 * registers and built a frame on every call).  Measured on the spiral benchmark with the same
 * for nde_net_vjp (2026-11-28, five interleaved runs each): 1.33-1.39 -> 1.31-1.35 times the
 * hand loop.  Argument errors (bad_forward, bad_vjp) are out of line for the same reason. */
static NDE__NOINLINE void forward_rows(const nde_net *net, const double *theta, int B,
                                       const double *X, double *Y, double *c, nde_net_ws *ws) {
  forward_into(net, theta, B, X, c, ws->zbuf);
  int L = net->n_layers;
  memcpy(Y, cache_a(net, B, c, L - 1), (size_t)B * (size_t)net->widths[L] * sizeof *Y);
}

void nde_net_forward(const nde_net *net, const double *theta, int B, const double *X, double *Y,
                     double *cache, nde_net_ws *ws) {
  if (!ws_fits(net, B, ws) || !theta || !X || !Y) {
    bad_forward(net, B, Y);
    return;
  }
  double *c = cache ? cache : ws->cache;
  if (B == 1 && net->row_f)
    net->row_f(net, theta, X, c, ws->zbuf, Y);
  else
    forward_rows(net, theta, B, X, Y, c, ws);
}

static void vjp_rows(const nde_net *net, const double *theta, int B, const double *X,
                     const double *dY, const double *cache, double *gX, double *gtheta,
                     nde_net_ws *ws);

void nde_net_vjp(const nde_net *net, const double *theta, int B, const double *X,
                 const double *dY, const double *cache, double *gX, double *gtheta,
                 nde_net_ws *ws) {
  if (!ws_fits(net, B, ws) || !theta || !X || !dY) {
    bad_vjp(net, B, gX);
    return;
  }
  if (B == 1 && cache && net->row_vjp && gX && gtheta)
    net->row_vjp(net, theta, X, cache, dY, ws->zbuf, gtheta, gX);
  else if (gX || gtheta)
    vjp_rows(net, theta, B, X, dY, cache, gX, gtheta, ws);
}

/* The layer loop's reverse pass (and the one-row kernel after recomputing the cache), out of
 * line for the same reason as forward_rows. */
static NDE__NOINLINE void vjp_rows(const nde_net *net, const double *theta, int B,
                                   const double *X, const double *dY, const double *cache,
                                   double *gX, double *gtheta, nde_net_ws *ws) {
  if (!cache) {
    forward_into(net, theta, B, X, ws->cache, ws->zbuf);
    cache = ws->cache;
  }
  double gx_unused[4]; /* the one-row kernels' gx when gX is not asked for (in <= 4) */
  if (B == 1 && net->row_vjp) {
    net->row_vjp(net, theta, X, cache, dY, ws->zbuf, gtheta, gX ? gX : gx_unused);
    return;
  }

  /* dA is the cotangent of the current layer's output; dZ is in whichever buffer dA is not. */
  const double *dA = dY;
  for (int l = net->n_layers - 1; l >= 0; l--) {
    int in = net->widths[l], out = net->widths[l + 1];
    size_t n = (size_t)B * (size_t)out;
    const double *Z = cache_z(net, B, cache, l), *A = cache_a(net, B, cache, l);
    const double *A_in = l > 0 ? cache_a(net, B, cache, l - 1) : X;
    const double *W = theta + net->w_off[l];

    const double *dZ = dA;
    if (net->acts[l] != NDE_ACT_IDENTITY) {
      double *d = dA == ws->buf[0] ? ws->buf[1] : ws->buf[0];
      nde__act_dmul(net->acts[l], n, Z, A, dA, d);
      dZ = d;
    }
    double *gW = gtheta ? gtheta + net->w_off[l] : NULL;
    double *gb = gtheta ? gtheta + net->b_off[l] : NULL;
    if (l == 1 && B == 1 && net->widths[0] <= 4 && out <= 4 && in <= PAIR_MAX_HIDDEN) {
      /* The bottom two layers of a deeper network, or of one whose output is not the
       * identity: their pair kernel on layer 1's pre-activation cotangent. */
      pair_v_table[net->widths[0] - 1][out - 1][net->acts[0] == NDE_ACT_TANH](
          net, theta, X, cache, dZ, ws->zbuf, gtheta, gX ? gX : gx_unused);
      return;
    }
    double *gin = l > 0 ? (dZ == ws->buf[0] ? ws->buf[1] : ws->buf[0]) : gX;
    affine_vjp(B, in, out, dZ, A_in, W, gW, gb, gin);
    dA = gin;
  }
}

void nde_net_jvp(const nde_net *net, const double *theta, int B, const double *X, const double *V,
                 const double *Vtheta, double *JV, nde_net_ws *ws) {
  if (!ws_fits(net, B, ws) || !theta || !X || !JV) {
    if (net) fill_nan(JV, B, nde_net_n_out(net));
    return;
  }
  int L = net->n_layers;
  if (!V && !Vtheta) {
    memset(JV, 0, (size_t)B * (size_t)net->widths[L] * sizeof *JV);
    return;
  }

  /* T is the tangent of the current layer's input (NULL: zero), TZ that of its pre-activation. */
  const double *A_in = X, *T = V;
  for (int l = 0; l < L; l++) {
    int in = net->widths[l], out = net->widths[l + 1];
    size_t n = (size_t)B * (size_t)out;
    const double *Z = layer_forward(net, l, theta, B, A_in, ws->cache, ws->zbuf);
    const double *A = cache_a(net, B, ws->cache, l);
    const double *W = theta + net->w_off[l];

    double *TZ = T == ws->buf[0] ? ws->buf[1] : ws->buf[0];
    const double *db = Vtheta ? Vtheta + net->b_off[l] : NULL;
    int have = 0;
    if (T) {
      affine(B, in, out, W, db, T, TZ, 0);
      have = 1;
    }
    if (Vtheta) {
      affine(B, in, out, Vtheta + net->w_off[l], have ? NULL : db, A_in, TZ, have);
      have = 1;
    }
    if (!have) {
      T = NULL;
    } else if (net->acts[l] == NDE_ACT_IDENTITY) {
      T = TZ;
    } else {
      double *TA = TZ == ws->buf[0] ? ws->buf[1] : ws->buf[0];
      nde__act_dmul(net->acts[l], n, Z, A, TZ, TA);
      T = TA;
    }
    A_in = A;
  }
  size_t n_out = (size_t)B * (size_t)net->widths[L];
  if (T)
    memcpy(JV, T, n_out * sizeof *JV);
  else
    memset(JV, 0, n_out * sizeof *JV);
}

/* ---- second order: forward over reverse ----
 *
 * The tangent of the forward and reverse passes along (Xdot, thetadot, dYdot), with
 * s1 = act'(Z_l), s2 = act''(Z_l) and G_l the cotangent of A_l (G_L = dY, Gdot_L = dYdot):
 *   Zdot_l = Adot_{l-1} W^T + A_{l-1} Wdot^T + bdot,      Adot_l = s1 .* Zdot_l
 *   D_l    = G_l .* s1,                                   Ddot_l = Gdot_l .* s1 + G_l .* s2 .* Zdot_l
 *   gW    += D^T A_{l-1},   gb += colsum D,               G_{l-1} = D W
 *   gWdot += Ddot^T A_{l-1} + D^T Adot_{l-1},  gbdot += colsum Ddot,
 *                                                         Gdot_{l-1} = Ddot W + D Wdot
 * Values and tangents are kept stacked as 2B rows, [A; Adot] forward and [Ddot; D] backward, so
 * that the products with W are one dgemm on 2B rows each way and gWdot is one dgemm of inner
 * dimension 2B: [Ddot; D]^T [A; Adot] = Ddot^T A + D^T Adot. */

/* Stacked layer input F = [A; Adot] (2B x in) to stacked pre-activations T = [Z; Zdot]. */
static void affine_pair(int B, int in, int out, const double *W, const double *b,
                        const double *Wd, const double *bd, const double *F, double *T) {
  const size_t nin = (size_t)B * in, nout = (size_t)B * out;
  if (!use_gemm(B, in, out) || use_small(B, in, out)) {
    affine(B, in, out, W, b, F, T, 0);
    affine(B, in, out, W, NULL, F + nin, T + nout, 0);
    if (Wd) affine(B, in, out, Wd, bd, F, T + nout, 1);
    return;
  }
  for (int r = 0; r < B; r++) {
    memcpy(T + (size_t)r * out, b, (size_t)out * sizeof *T);
    if (bd)
      memcpy(T + nout + (size_t)r * out, bd, (size_t)out * sizeof *T);
    else
      memset(T + nout + (size_t)r * out, 0, (size_t)out * sizeof *T);
  }
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, 2 * B, out, in, 1.0, F, in, W, in, 1.0, T,
              out);
  if (Wd)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0, F, in, Wd, in, 1.0,
                T + nout, out);
}

/* Stacked cotangents R = [Ddot; D] (2B x out) back through W: gtan = Ddot W + D Wd and
 * gval = D W (B x in each, overwritten; either may be NULL).  x is the layer's input row, which
 * the single-row kernels read but do not use here. */
static void input_vjp_pair(int B, int in, int out, const double *R, const double *W,
                           const double *Wd, const double *x, double *gtan, double *gval) {
  const size_t nout = (size_t)B * out;
  const double *D = R + nout;
  if (!use_gemm(B, in, out) || use_small(B, in, out)) {
    /* One row at a time (B = 1, or a batch through a small layer: no BLAS call). */
    for (int r = 0; r < B; r++) {
      const double *Rr = R + (size_t)r * out, *Dr = D + (size_t)r * out;
      const double *xr = x + (size_t)r * in;
      double *gt = gtan ? gtan + (size_t)r * in : NULL, *gv = gval ? gval + (size_t)r * in : NULL;
      if (gt) {
        row_vjp(in, out, Rr, xr, W, NULL, NULL, gt);
        if (Wd) {
          for (int j = 0; j < out; j++) {
            const double d = Dr[j];
            const double *restrict w = Wd + (size_t)j * in;
#pragma omp simd
            for (int k = 0; k < in; k++) gt[k] += d * w[k];
          }
        }
      }
      if (gv) row_vjp(in, out, Dr, xr, W, NULL, NULL, gv);
    }
    return;
  }
  if (gtan && gval && gval == gtan + (size_t)B * in) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 2 * B, in, out, 1.0, R, out, W, in,
                0.0, gtan, in);
  } else {
    if (gtan)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0, R, out, W, in, 0.0,
                  gtan, in);
    if (gval)
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0, D, out, W, in, 0.0,
                  gval, in);
  }
  if (gtan && Wd)
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0, D, out, Wd, in, 1.0,
                gtan, in);
}

/* Tangent parameter cotangents: gWd += Ddot^T A + D^T Adot, gbd += colsum Ddot, with
 * R = [Ddot; D] (2B x out) and F = [A; Adot] (2B x in). */
static void param_vjp_pair(int B, int in, int out, const double *R, const double *F,
                           const double *W, double *gWd, double *gbd) {
  const size_t nout = (size_t)B * out;
  if (!use_gemm(B, in, out) || use_small(B, in, out)) {
    /* One row at a time (B = 1, or a batch through a small layer: no BLAS call). */
    const double *D = R + nout, *Ad = F + (size_t)B * in;
    for (int r = 0; r < B; r++) {
      const double *Dr = D + (size_t)r * out, *Adr = Ad + (size_t)r * in;
      row_vjp(in, out, R + (size_t)r * out, F + (size_t)r * in, W, gWd, gbd, NULL);
      for (int j = 0; j < out; j++) {
        const double d = Dr[j];
        double *restrict g = gWd + (size_t)j * in;
#pragma omp simd
        for (int k = 0; k < in; k++) g[k] += d * Adr[k];
      }
    }
    return;
  }
  for (int r = 0; r < B; r++) {
    const double *restrict d = R + (size_t)r * out;
#pragma omp simd
    for (int j = 0; j < out; j++) gbd[j] += d[j];
  }
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, 2 * B, 1.0, R, out, F, in, 1.0,
              gWd, in);
}

static double *so_at(const nde_net_ws *ws, size_t off, int B) { return ws->so + off * (size_t)B; }

nde_status nde_net_vjp_tangent(const nde_net *net, const double *theta, int B, const double *X,
                               const double *Xdot, const double *thetadot, const double *dY,
                               const double *dYdot, double *Y, double *Ydot, double *gX,
                               double *gtheta, double *gXdot, double *gthetadot, nde_net_ws *ws) {
  const int reverse = gX || gtheta || gXdot || gthetadot;
  nde_status st = NDE_OK;
  if (!ws_fits(net, B, ws) || !ws->so || net->so_row > ws->so_row || !theta || !X ||
      (reverse && !dY))
    st = NDE_ERR_ARG;
  else if (!nde_net_allows_second_order(net))
    st = NDE_ERR_UNSUPPORTED;
  if (st != NDE_OK) {
    if (net) {
      fill_nan(Y, B, nde_net_n_out(net));
      fill_nan(Ydot, B, nde_net_n_out(net));
      fill_nan(gX, B, nde_net_n_in(net));
      fill_nan(gXdot, B, nde_net_n_in(net));
    }
    return st;
  }

  const int L = net->n_layers;
  /* Forward: stacked [A_l; Adot_l] for every boundary, act' and act'' * Zdot per layer. */
  {
    const size_t nin = (size_t)B * net->widths[0];
    double *F0 = so_at(ws, net->so_f_off[0], B);
    memcpy(F0, X, nin * sizeof *F0);
    if (Xdot)
      memcpy(F0 + nin, Xdot, nin * sizeof *F0);
    else
      memset(F0 + nin, 0, nin * sizeof *F0);
  }
  for (int l = 0; l < L; l++) {
    const int in = net->widths[l], out = net->widths[l + 1];
    const size_t n = (size_t)B * out;
    const double *Fin = so_at(ws, net->so_f_off[l], B);
    double *F = so_at(ws, net->so_f_off[l + 1], B);
    const nde_act act = net->acts[l];
    double *T = act == NDE_ACT_IDENTITY ? F : so_at(ws, net->so_zz_off, B);
    affine_pair(B, in, out, theta + net->w_off[l], theta + net->b_off[l],
                thetadot ? thetadot + net->w_off[l] : NULL,
                thetadot ? thetadot + net->b_off[l] : NULL, Fin, T);
    if (act == NDE_ACT_IDENTITY) continue;
    double *restrict S1 = so_at(ws, net->so_s1_off[l], B), *restrict Q = so_at(ws, net->so_q_off[l], B);
    nde__act_forward(act, n, T, F);
    nde__act_d12(act, n, T, F, S1, Q);
    const double *restrict Td = T + n;
    double *restrict Fd = F + n;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
      Fd[i] = S1[i] * Td[i];
      Q[i] *= Td[i];
    }
  }
  {
    const size_t nout = (size_t)B * net->widths[L];
    const double *FL = so_at(ws, net->so_f_off[L], B);
    if (Y) memcpy(Y, FL, nout * sizeof *Y);
    if (Ydot) memcpy(Ydot, FL + nout, nout * sizeof *Ydot);
  }
  if (!reverse) return NDE_OK;

  /* Reverse: R is the stacked cotangent [Gdot_l; G_l] of A_l, in one of two buffers. */
  double *buf[2] = {so_at(ws, net->so_r_off[0], B), so_at(ws, net->so_r_off[1], B)};
  double *R = buf[0];
  {
    const size_t nout = (size_t)B * net->widths[L];
    if (dYdot)
      memcpy(R, dYdot, nout * sizeof *R);
    else
      memset(R, 0, nout * sizeof *R);
    memcpy(R + nout, dY, nout * sizeof *R);
  }
  for (int l = L - 1; l >= 0; l--) {
    const int in = net->widths[l], out = net->widths[l + 1];
    const size_t n = (size_t)B * out;
    const double *W = theta + net->w_off[l];
    const double *Fin = so_at(ws, net->so_f_off[l], B);

    /* [Ddot; D] from [Gdot; G]. */
    double *Rd = R;
    if (net->acts[l] != NDE_ACT_IDENTITY) {
      Rd = R == buf[0] ? buf[1] : buf[0];
      const double *restrict S1 = so_at(ws, net->so_s1_off[l], B);
      const double *restrict Q = so_at(ws, net->so_q_off[l], B);
      const double *restrict Gd = R, *restrict G = R + n;
      double *restrict Dd = Rd, *restrict D = Rd + n;
#pragma omp simd
      for (size_t i = 0; i < n; i++) {
        Dd[i] = Gd[i] * S1[i] + G[i] * Q[i];
        D[i] = G[i] * S1[i];
      }
    }
    if (gtheta)
      affine_vjp(B, in, out, Rd + n, Fin, W, gtheta + net->w_off[l], gtheta + net->b_off[l],
                 NULL);
    if (gthetadot)
      param_vjp_pair(B, in, out, Rd, Fin, W, gthetadot + net->w_off[l],
                     gthetadot + net->b_off[l]);
    const double *Wd = thetadot ? thetadot + net->w_off[l] : NULL;
    if (l > 0) {
      double *next = Rd == buf[0] ? buf[1] : buf[0];
      input_vjp_pair(B, in, out, Rd, W, Wd, Fin, next, next + (size_t)B * in);
      R = next;
    } else {
      input_vjp_pair(B, in, out, Rd, W, Wd, Fin, gXdot, gX);
    }
  }
  return NDE_OK;
}

/* openblas_get_config() formats into one static buffer at every call, so two threads asking at
 * once (the provenance of ensemble members fitted concurrently) can read it half-written: it is
 * asked once, and the copy kept. */
static char blas_config[256];
static pthread_once_t blas_config_once = PTHREAD_ONCE_INIT;

static void blas_config_init(void) {
  snprintf(blas_config, sizeof blas_config, "%s", openblas_get_config());
}

const char *nde_nn_blas_config(void) {
  pthread_once(&blas_config_once, blas_config_init);
  return blas_config;
}
int nde_nn_blas_threads(void) { return openblas_get_num_threads(); }
