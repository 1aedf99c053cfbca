/* Hand-written C right-hand sides: see cmodels.h.  Each keeps its network, the network's
 * workspace and a scratch row block sized for max_batch. */
#include "cmodels.h"

#include <stdlib.h>
#include <string.h>

typedef enum { KIND_SPIRAL, KIND_LV, KIND_MLP } kind;

typedef struct cm {
  kind k;
  int n;
  int n_layers, max_batch;
  int widths[5];
  nde_act acts[4];
  nde_net *net;
  nde_net_ws *ws;
  double *X;  /* max_batch x n: the network input */
  double *G;  /* max_batch x n: input cotangent / tangent scratch */
  double *Y;  /* max_batch x n: network output */
} cm;

static void cm_destroy(void *ctx) {
  cm *c = ctx;
  if (!c) return;
  nde_net_ws_destroy(&c->ws);
  nde_net_destroy(&c->net);
  free(c->X);
  free(c->G);
  free(c->Y);
  free(c);
}

/* The network input of each model: y^3 for the spiral, the state itself otherwise. */
static const double *net_input(cm *c, int B, const double *U) {
  if (c->k != KIND_SPIRAL) return U;
  const size_t len = (size_t)B * (size_t)c->n;
  for (size_t q = 0; q < len; q++) c->X[q] = U[q] * U[q] * U[q];
  return c->X;
}

static int cm_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                double *cache) {
  (void)t;
  cm *c = ctx;
  const double *X = net_input(c, B, U);
  nde_net_forward(c->net, theta, B, X, dU, cache, c->ws);
  if (c->k == KIND_LV) {
    for (int b = 0; b < B; b++) {
      dU[2 * b] += NDE_CMODEL_LV_ALPHA * U[2 * b];
      dU[2 * b + 1] -= NDE_CMODEL_LV_DELTA * U[2 * b + 1];
    }
  }
  return 0;
}

static int cm_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *L, const double *cache, double *gU, double *gtheta) {
  (void)t;
  cm *c = ctx;
  const double *X = net_input(c, B, U);
  nde_net_vjp(c->net, theta, B, X, L, cache, gU ? c->G : NULL, gtheta, c->ws);
  if (!gU) return 0;
  const size_t len = (size_t)B * (size_t)c->n;
  switch (c->k) {
    case KIND_SPIRAL:
      for (size_t q = 0; q < len; q++) gU[q] += c->G[q] * 3.0 * U[q] * U[q];
      break;
    case KIND_LV:
      for (int b = 0; b < B; b++) {
        gU[2 * b] += c->G[2 * b] + NDE_CMODEL_LV_ALPHA * L[2 * b];
        gU[2 * b + 1] += c->G[2 * b + 1] - NDE_CMODEL_LV_DELTA * L[2 * b + 1];
      }
      break;
    case KIND_MLP:
      for (size_t q = 0; q < len; q++) gU[q] += c->G[q];
      break;
  }
  return 0;
}

static int cm_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *V, const double *Vtheta, double *JV) {
  (void)t;
  cm *c = ctx;
  const size_t len = (size_t)B * (size_t)c->n;
  const double *X = net_input(c, B, U);
  const double *VX = V;
  if (V && c->k == KIND_SPIRAL) {
    for (size_t q = 0; q < len; q++) c->G[q] = 3.0 * U[q] * U[q] * V[q];
    VX = c->G;
  }
  nde_net_jvp(c->net, theta, B, X, VX, Vtheta, JV, c->ws);
  if (V && c->k == KIND_LV) {
    for (int b = 0; b < B; b++) {
      JV[2 * b] += NDE_CMODEL_LV_ALPHA * V[2 * b];
      JV[2 * b + 1] -= NDE_CMODEL_LV_DELTA * V[2 * b + 1];
    }
  }
  return 0;
}

/* A context of the given kind and layers with its own network and workspaces. */
static nde_status cm_new(kind k, int n_layers, const int *widths, const nde_act *acts, int max_batch,
                         cm **out) {
  *out = NULL;
  cm *c = calloc(1, sizeof *c);
  if (!c) return NDE_ERR_NOMEM;
  c->k = k;
  c->n = widths[0];
  c->n_layers = n_layers;
  c->max_batch = max_batch;
  memcpy(c->widths, widths, (size_t)(n_layers + 1) * sizeof *widths);
  memcpy(c->acts, acts, (size_t)n_layers * sizeof *acts);
  nde_status st = nde_net_create(n_layers, widths, acts, &c->net, NULL);
  if (st == NDE_OK) st = nde_net_ws_create(c->net, max_batch, &c->ws);
  if (st != NDE_OK) {
    cm_destroy(c);
    return st;
  }
  const size_t len = (size_t)max_batch * (size_t)c->n;
  c->X = calloc(len, sizeof *c->X);
  c->G = calloc(len, sizeof *c->G);
  c->Y = calloc(len, sizeof *c->Y);
  if (!c->X || !c->G || !c->Y) {
    cm_destroy(c);
    return NDE_ERR_NOMEM;
  }
  *out = c;
  return NDE_OK;
}

/* The same model with fresh workspaces (the network is rebuilt from its widths). */
static nde_status cm_clone(void *ctx, void **out) {
  const cm *c = ctx;
  cm *d = NULL;
  nde_status st = cm_new(c->k, c->n_layers, c->widths, c->acts, c->max_batch, &d);
  *out = d;
  return st;
}

static const nde_rhs_ops cm_ops = {.f = cm_f, .vjp = cm_vjp, .jvp = cm_jvp, .destroy = cm_destroy,
                                   .clone = cm_clone};

static nde_status cm_make(kind k, int n_layers, const int *widths, const nde_act *acts,
                          int max_batch, nde_cmodel *out) {
  memset(out, 0, sizeof *out);
  cm *c = NULL;
  nde_status st = cm_new(k, n_layers, widths, acts, max_batch, &c);
  if (st != NDE_OK) return st;
  nde_rhs_info info = {c->n, nde_net_n_params(c->net), max_batch, 0, NULL};
  info.cache_per_row = nde_net_cache_size(c->net, 1);
  out->net = c->net;
  out->n_theta = info.n_theta;
  return nde_rhs_create(&cm_ops, c, NDE_TAKE, &info, &out->rhs, NULL);
}

nde_status nde_cmodel_spiral(int max_batch, nde_cmodel *out) {
  const int w[] = {2, 50, 2};
  const nde_act a[] = {NDE_ACT_TANH, NDE_ACT_IDENTITY};
  return cm_make(KIND_SPIRAL, 2, w, a, max_batch, out);
}

nde_status nde_cmodel_lv_ude(int max_batch, nde_cmodel *out) {
  const int w[] = {2, 5, 5, 5, 2};
  const nde_act a[] = {NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_RBF, NDE_ACT_IDENTITY};
  return cm_make(KIND_LV, 4, w, a, max_batch, out);
}

nde_status nde_cmodel_mlp(int D, int H, int max_batch, nde_cmodel *out) {
  const int w[] = {D, H, H, D};
  const nde_act a[] = {NDE_ACT_TANH, NDE_ACT_TANH, NDE_ACT_IDENTITY};
  return cm_make(KIND_MLP, 3, w, a, max_batch, out);
}

void nde_cmodel_destroy(nde_cmodel *m) {
  if (!m) return;
  nde_rhs_destroy(&m->rhs);
  memset(m, 0, sizeof *m);
}
