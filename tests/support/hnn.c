/* Hand-written Hamiltonian neural network right-hand side and its plain-network counterpart: see
 * hnn.h.  f is the network's gradient (nde_net_vjp with dY = 1); VJP and JVP are the tangent
 * outputs of one forward-over-reverse pass (nde_net_vjp_tangent). */
#include "hnn.h"

#include <stdlib.h>
#include <string.h>

typedef struct hnn {
  int d, n, plain;
  nde_net *net;
  nde_net_ws *ws;
  double *ones; /* max_batch: the output cotangent dY = 1 of the scalar H */
  double *G;    /* max_batch x n: grad H, or its tangent */
  double *W;    /* max_batch x n: w = S^T L */
} hnn;

static void hnn_destroy(void *ctx) {
  hnn *c = ctx;
  if (!c) return;
  nde_net_ws_destroy(&c->ws);
  nde_net_destroy(&c->net);
  free(c->ones);
  free(c->G);
  free(c->W);
  free(c);
}

/* out = S g per row: (g_p, -g_q). */
static void apply_s(int B, int d, const double *restrict g, double *restrict out) {
  const int n = 2 * d;
  for (int r = 0; r < B; r++) {
    const double *gr = g + (size_t)r * n;
    double *o = out + (size_t)r * n;
    for (int i = 0; i < d; i++) {
      o[i] = gr[d + i];
      o[d + i] = -gr[i];
    }
  }
}

static int hnn_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                 double *cache) {
  (void)t, (void)cache;
  hnn *c = ctx;
  nde_net_vjp(c->net, theta, B, U, c->ones, NULL, c->G, NULL, c->ws);
  apply_s(B, c->d, c->G, dU);
  return 0;
}

static int hnn_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                   const double *L, const double *cache, double *gU, double *gtheta) {
  (void)t, (void)cache;
  hnn *c = ctx;
  if (!gU && !gtheta) return 0;
  const int d = c->d, n = c->n;
  /* L . S g = w . g with w = S^T L = (-L_p, L_q). */
  for (int r = 0; r < B; r++) {
    const double *l = L + (size_t)r * n;
    double *w = c->W + (size_t)r * n;
    for (int i = 0; i < d; i++) {
      w[i] = -l[d + i];
      w[d + i] = l[i];
    }
  }
  if (nde_net_vjp_tangent(c->net, theta, B, U, c->W, NULL, c->ones, NULL, NULL, NULL, NULL, NULL,
                          gU ? c->G : NULL, gtheta, c->ws) != NDE_OK)
    return -1;
  if (gU) {
    const size_t len = (size_t)B * (size_t)n;
    for (size_t q = 0; q < len; q++) gU[q] += c->G[q];
  }
  return 0;
}

static int hnn_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                   const double *V, const double *Vtheta, double *JV) {
  (void)t;
  hnn *c = ctx;
  if (nde_net_vjp_tangent(c->net, theta, B, U, V, Vtheta, c->ones, NULL, NULL, NULL, NULL, NULL,
                          c->G, NULL, c->ws) != NDE_OK)
    return -1;
  apply_s(B, c->d, c->G, JV);
  return 0;
}

static int plain_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                   double *cache) {
  (void)t;
  hnn *c = ctx;
  nde_net_forward(c->net, theta, B, U, dU, cache, c->ws);
  return 0;
}

static int plain_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                     const double *L, const double *cache, double *gU, double *gtheta) {
  (void)t;
  hnn *c = ctx;
  nde_net_vjp(c->net, theta, B, U, L, cache, gU ? c->G : NULL, gtheta, c->ws);
  if (gU) {
    const size_t len = (size_t)B * (size_t)c->n;
    for (size_t q = 0; q < len; q++) gU[q] += c->G[q];
  }
  return 0;
}

static int plain_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                     const double *V, const double *Vtheta, double *JV) {
  (void)t;
  hnn *c = ctx;
  nde_net_jvp(c->net, theta, B, U, V, Vtheta, JV, c->ws);
  return 0;
}

static const nde_rhs_ops hnn_ops = {.f = hnn_f, .vjp = hnn_vjp, .jvp = hnn_jvp, .destroy = hnn_destroy};
static const nde_rhs_ops plain_ops = {.f = plain_f, .vjp = plain_vjp, .jvp = plain_jvp, .destroy = hnn_destroy};

static nde_status make(int plain, int d, int hidden, nde_act act, int max_batch,
                       nde_cmodel *out) {
  if (!out) return NDE_ERR_ARG;
  memset(out, 0, sizeof *out);
  if (d < 1 || hidden < 1 || max_batch < 1) return NDE_ERR_ARG;
  hnn *c = calloc(1, sizeof *c);
  if (!c) return NDE_ERR_NOMEM;
  c->d = d;
  c->n = 2 * d;
  c->plain = plain;
  const int widths[] = {c->n, hidden, hidden, plain ? c->n : 1};
  const nde_act acts[] = {act, act, NDE_ACT_IDENTITY};
  nde_status st = nde_net_create(3, widths, acts, &c->net, NULL);
  if (st == NDE_OK)
    st = plain ? nde_net_ws_create(c->net, max_batch, &c->ws)
               : nde_net_ws_create_second_order(c->net, max_batch, &c->ws);
  if (st != NDE_OK) {
    hnn_destroy(c);
    return st;
  }
  const size_t len = (size_t)max_batch * (size_t)c->n;
  c->ones = malloc((size_t)max_batch * sizeof *c->ones);
  c->G = calloc(len, sizeof *c->G);
  c->W = calloc(len, sizeof *c->W);
  if (!c->ones || !c->G || !c->W) {
    hnn_destroy(c);
    return NDE_ERR_NOMEM;
  }
  for (int r = 0; r < max_batch; r++) c->ones[r] = 1.0;
  nde_rhs_info info = {c->n, nde_net_n_params(c->net), max_batch, 0, NULL};
  if (plain) info.cache_per_row = nde_net_cache_size(c->net, 1);
  const nde_net *net = c->net;
  /* On failure nde_rhs_create destroys c, which it took. */
  st = nde_rhs_create(plain ? &plain_ops : &hnn_ops, c, NDE_TAKE, &info, &out->rhs, NULL);
  if (st != NDE_OK) return st;
  out->net = net;
  out->n_theta = info.n_theta;
  return NDE_OK;
}

nde_status nde_hnn_create(int d, int hidden, nde_act act, int max_batch, nde_cmodel *out) {
  return make(0, d, hidden, act, max_batch, out);
}

nde_status nde_hnn_plain_create(int d, int hidden, nde_act act, int max_batch, nde_cmodel *out) {
  return make(1, d, hidden, act, max_batch, out);
}
