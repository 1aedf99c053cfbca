/* Dense networks on a batch of B rows: Z_l = A_{l-1} W_l^T + b_l, A_l = act_l(Z_l), with the
 * reverse pass dZ = dA .* act'(Z), gW += dZ^T A_{l-1}, gb += colsum dZ, dA_{l-1} = dZ W and the
 * forward-tangent pass dZ = dA_{l-1} W^T + A_{l-1} dW^T + db.  cblas_dgemm for larger batches. */
#include <cblas.h>
#include <math.h>
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

struct nde_net {
  int n_layers;
  int widths[NDE_NET_MAX_LAYERS + 1];
  nde_act acts[NDE_NET_MAX_LAYERS];
  size_t w_off[NDE_NET_MAX_LAYERS];
  size_t b_off[NDE_NET_MAX_LAYERS];
  size_t n_params;
  int max_width;  /* largest width over all boundaries, input included */
  size_t sum_out; /* sum of the layers' output widths */
};

/* The cache (or the workspace's own copy of it) holds, per layer, Z_l then A_l, each B x out. */
struct nde_net_ws {
  int max_batch;
  int max_width;
  size_t sum_out;
  double *cache; /* 2 * max_batch * sum_out */
  double *buf[2]; /* max_batch * max_width each: cotangents and tangents */
};

/* ---- construction and queries ---- */

nde_status nde_net_create(int n_layers, const int *widths, const nde_act *acts, nde_net **out) {
  if (!out) return NDE_ERR_ARG;
  *out = NULL;
  if (!widths || !acts || n_layers < 1 || n_layers > NDE_NET_MAX_LAYERS) return NDE_ERR_ARG;
  for (int l = 0; l <= n_layers; l++)
    if (widths[l] < 1 || widths[l] > NDE_NET_MAX_WIDTH) return NDE_ERR_ARG;
  for (int l = 0; l < n_layers; l++)
    if ((int)acts[l] < 0 || acts[l] >= NDE_ACT_COUNT) return NDE_ERR_ARG;

  nde_net *net = calloc(1, sizeof *net);
  if (!net) return NDE_ERR_NOMEM;
  net->n_layers = n_layers;
  net->max_width = widths[0];
  size_t off = 0, sum_out = 0;
  for (int l = 0; l < n_layers; l++) {
    size_t in = (size_t)widths[l], nout = (size_t)widths[l + 1], nw;
    net->widths[l] = widths[l];
    net->acts[l] = acts[l];
    net->w_off[l] = off;
    if (!nde__mul_size(nout, in, &nw) || !nde__add_size(off, nw, &off)) goto limit;
    net->b_off[l] = off;
    if (!nde__add_size(off, nout, &off) || !nde__add_size(sum_out, nout, &sum_out)) goto limit;
    if (widths[l + 1] > net->max_width) net->max_width = widths[l + 1];
  }
  net->widths[n_layers] = widths[n_layers];
  net->n_params = off;
  net->sum_out = sum_out;
  *out = net;
  return NDE_OK;
limit:
  free(net);
  return NDE_ERR_LIMIT;
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
  if (!net || B < 1 || !nde__mul_size(2 * net->sum_out, (size_t)B, &n)) return 0;
  return n;
}

nde_status nde_net_ws_create(const nde_net *net, int max_batch, nde_net_ws **out) {
  if (!out) return NDE_ERR_ARG;
  *out = NULL;
  if (!net || max_batch < 1) return NDE_ERR_ARG;
  size_t n_cache = nde_net_cache_size(net, max_batch), n_buf;
  if (n_cache == 0 || !nde__mul_size((size_t)max_batch, (size_t)net->max_width, &n_buf))
    return NDE_ERR_LIMIT;

  nde_net_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return NDE_ERR_NOMEM;
  ws->max_batch = max_batch;
  ws->max_width = net->max_width;
  ws->sum_out = net->sum_out;
  ws->cache = nde__dalloc(n_cache);
  ws->buf[0] = nde__dalloc(n_buf);
  ws->buf[1] = nde__dalloc(n_buf);
  if (!ws->cache || !ws->buf[0] || !ws->buf[1]) {
    nde_net_ws_destroy(&ws);
    return NDE_ERR_NOMEM;
  }
  *out = ws;
  return NDE_OK;
}

void nde_net_ws_destroy(nde_net_ws **ws) {
  if (!ws || !*ws) return;
  free((*ws)->cache);
  free((*ws)->buf[0]);
  free((*ws)->buf[1]);
  free(*ws);
  *ws = NULL;
}

/* Whether ws was sized for net and B rows. */
static int ws_fits(const nde_net *net, int B, const nde_net_ws *ws) {
  return net && ws && B >= 1 && B <= ws->max_batch && net->max_width <= ws->max_width &&
         net->sum_out <= ws->sum_out;
}

/* The passes return void, so invalid arguments (a caller's bug) leave NaN in the output where
 * one can be written: a solver then sees a non-finite right-hand side instead of stale data. */
static void fill_nan(double *x, int B, int width) {
  if (!x || B < 1 || width < 1) return;
  for (size_t i = 0; i < (size_t)B * (size_t)width; i++) x[i] = NAN;
}

/* ---- dense kernels: one layer on B rows ---- */

/* Z = [Z if acc] + [b if b] + X W^T, X is B x in, W is out x in, Z is B x out. */
static void affine(int B, int in, int out, const double *restrict W, const double *restrict b,
                   const double *restrict X, double *restrict Z, int acc) {
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
  if (use_gemm(B, in, out)) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0, X, in, W, in, 1.0, Z,
                out);
    return;
  }
  for (int r = 0; r < B; r++) {
    const double *restrict x = X + (size_t)r * in;
    double *restrict z = Z + (size_t)r * out;
    if (in <= 4) {
      /* Narrow inputs: a dot product is too short to vectorise; go along the outputs. */
      for (int k = 0; k < in; k++) {
        double xk = x[k];
#pragma omp simd
        for (int j = 0; j < out; j++) z[j] += W[(size_t)j * in + k] * xk;
      }
    } else {
      for (int j = 0; j < out; j++) {
        const double *restrict w = W + (size_t)j * in;
        double s = 0.0;
#pragma omp simd reduction(+ : s)
        for (int k = 0; k < in; k++) s += w[k] * x[k];
        z[j] += s;
      }
    }
  }
}

/* gW += dZ^T X and gb += column sums of dZ. */
static void grad_params(int B, int in, int out, const double *restrict dZ,
                        const double *restrict X, double *restrict gW, double *restrict gb) {
  for (int r = 0; r < B; r++) {
    const double *restrict d = dZ + (size_t)r * out;
#pragma omp simd
    for (int j = 0; j < out; j++) gb[j] += d[j];
  }
  if (use_gemm(B, in, out)) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0, dZ, out, X, in, 1.0, gW,
                in);
    return;
  }
  for (int r = 0; r < B; r++) {
    const double *restrict d = dZ + (size_t)r * out;
    const double *restrict x = X + (size_t)r * in;
    for (int j = 0; j < out; j++) {
      double *restrict g = gW + (size_t)j * in;
      double dj = d[j];
#pragma omp simd
      for (int k = 0; k < in; k++) g[k] += dj * x[k];
    }
  }
}

/* gX = dZ W (overwritten): B x in. */
static void grad_input(int B, int in, int out, const double *restrict dZ,
                       const double *restrict W, double *restrict gX) {
  if (use_gemm(B, in, out)) {
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0, dZ, out, W, in, 0.0,
                gX, in);
    return;
  }
  for (int r = 0; r < B; r++) {
    const double *restrict d = dZ + (size_t)r * out;
    double *restrict g = gX + (size_t)r * in;
    memset(g, 0, (size_t)in * sizeof *g);
    for (int j = 0; j < out; j++) {
      const double *restrict w = W + (size_t)j * in;
      double dj = d[j];
#pragma omp simd
      for (int k = 0; k < in; k++) g[k] += dj * w[k];
    }
  }
}

/* ---- passes ---- */

/* Start of layer l's Z inside a cache for B rows. */
static const double *cache_z(const nde_net *net, int B, const double *cache, int l) {
  size_t off = 0;
  for (int i = 0; i < l; i++) off += 2 * (size_t)net->widths[i + 1];
  return cache + off * (size_t)B;
}

/* Run the network on X, storing Z_l and A_l of every layer in cache. */
static void forward_into(const nde_net *net, const double *theta, int B, const double *X,
                         double *cache) {
  const double *A_in = X;
  double *Z = cache;
  for (int l = 0; l < net->n_layers; l++) {
    int in = net->widths[l], out = net->widths[l + 1];
    size_t n = (size_t)B * (size_t)out;
    double *A = Z + n;
    affine(B, in, out, theta + net->w_off[l], theta + net->b_off[l], A_in, Z, 0);
    nde__act_forward(net->acts[l], n, Z, A);
    A_in = A;
    Z = A + n;
  }
}

void nde_net_forward(const nde_net *net, const double *theta, int B, const double *X, double *Y,
                     double *cache, nde_net_ws *ws) {
  if (!ws_fits(net, B, ws) || !theta || !X || !Y) {
    if (net) fill_nan(Y, B, nde_net_n_out(net));
    return;
  }
  double *c = cache ? cache : ws->cache;
  forward_into(net, theta, B, X, c);
  int L = net->n_layers, out = net->widths[L];
  const double *A = cache_z(net, B, c, L - 1) + (size_t)B * (size_t)out;
  memcpy(Y, A, (size_t)B * (size_t)out * sizeof *Y);
}

void nde_net_vjp(const nde_net *net, const double *theta, int B, const double *X,
                 const double *dY, const double *cache, double *gX, double *gtheta,
                 nde_net_ws *ws) {
  if (!ws_fits(net, B, ws) || !theta || !X || !dY) {
    if (net) fill_nan(gX, B, nde_net_n_in(net));
    return;
  }
  if (!gX && !gtheta) return;
  if (!cache) {
    forward_into(net, theta, B, X, ws->cache);
    cache = ws->cache;
  }

  /* dA is the cotangent of the current layer's output; dZ is in whichever buffer dA is not. */
  const double *dA = dY;
  for (int l = net->n_layers - 1; l >= 0; l--) {
    int in = net->widths[l], out = net->widths[l + 1];
    size_t n = (size_t)B * (size_t)out;
    const double *Z = cache_z(net, B, cache, l), *A = Z + n;
    const double *A_in = l > 0 ? Z - (size_t)B * (size_t)in : X;
    const double *W = theta + net->w_off[l];

    const double *dZ = dA;
    if (net->acts[l] != NDE_ACT_IDENTITY) {
      double *d = dA == ws->buf[0] ? ws->buf[1] : ws->buf[0];
      nde__act_dmul(net->acts[l], n, Z, A, dA, d);
      dZ = d;
    }
    if (gtheta) grad_params(B, in, out, dZ, A_in, gtheta + net->w_off[l], gtheta + net->b_off[l]);
    if (l > 0) {
      double *d = dZ == ws->buf[0] ? ws->buf[1] : ws->buf[0];
      grad_input(B, in, out, dZ, W, d);
      dA = d;
    } else if (gX) {
      grad_input(B, in, out, dZ, W, gX);
    }
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
  double *Z = ws->cache;
  for (int l = 0; l < L; l++) {
    int in = net->widths[l], out = net->widths[l + 1];
    size_t n = (size_t)B * (size_t)out;
    double *A = Z + n;
    const double *W = theta + net->w_off[l], *b = theta + net->b_off[l];
    affine(B, in, out, W, b, A_in, Z, 0);
    nde__act_forward(net->acts[l], n, Z, A);

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
    Z = A + n;
  }
  size_t n_out = (size_t)B * (size_t)net->widths[L];
  if (T)
    memcpy(JV, T, n_out * sizeof *JV);
  else
    memset(JV, 0, n_out * sizeof *JV);
}

const char *nde_nn_blas_config(void) { return openblas_get_config(); }
int nde_nn_blas_threads(void) { return openblas_get_num_threads(); }
