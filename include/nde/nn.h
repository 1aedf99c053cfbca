/* nde nn: dense feed-forward networks whose parameters are a view into the flat vector theta.
 *
 * A network is a chain of dense layers z = W x + b, a = act(z).  Layer l stores W (out x in,
 * row-major) followed by b (out) in theta, the order of PyTorch's nn.Linear, so weights move
 * between the two unchanged.  Every pass works on a batch of B rows at once: inputs X are B x in
 * and outputs Y are B x out, row-major.  Passes allocate nothing: scratch space lives in an
 * nde_net_ws sized for a maximum batch when it is created.
 */
#ifndef NDE_NN_H
#define NDE_NN_H

#include <stddef.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  NDE_ACT_IDENTITY = 0,
  NDE_ACT_TANH,
  NDE_ACT_RELU,     /* derivative at 0 taken as 0 */
  NDE_ACT_SOFTPLUS, /* log(1 + e^z), evaluated without overflow */
  NDE_ACT_SIGMOID,
  NDE_ACT_GELU, /* tanh form: 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) */
  NDE_ACT_RBF,  /* exp(-z^2) */
  NDE_ACT_COUNT
} nde_act;

/* The BLAS in use and its build configuration, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH ...", and the
 * number of threads it runs (for provenance and benchmarks). */
NDE_API const char *nde_nn_blas_config(void);
NDE_API int nde_nn_blas_threads(void);

/* Name of an activation ("tanh", ...), or NULL for an invalid value. */
NDE_API const char *nde_act_name(nde_act a);
/* Look up an activation by name; NDE_ERR_ARG when unknown. */
NDE_API nde_status nde_act_from_name(const char *name, nde_act *out);

/* Elementwise activation and its derivative on n values (y = act(z), dy = act'(z)); dy may be
 * NULL.  Exposed for tests and for the model tape. */
NDE_API void nde_act_eval(nde_act a, size_t n, const double *z, double *y, double *dy);

/* Value, first and second derivative on n values: y = act(z), dy = act'(z), d2y = act''(z) (all
 * three required; nothing is written for a NULL array or an invalid activation).  relu's second
 * derivative is reported as 0 (true everywhere but the kink). */
NDE_API void nde_act_eval2(nde_act a, size_t n, const double *z, double *y, double *dy,
                           double *d2y);

/* Whether second-order passes (nde_net_vjp_tangent) accept the activation: 1 for identity, tanh,
 * softplus, sigmoid, gelu and rbf, which are smooth; 0 for relu and invalid values.  relu is
 * refused because its second derivative is zero almost everywhere: the gradient of a relu
 * network is piecewise constant in its input, so a Hamiltonian or gradient-system model built on
 * it has a vector field that is flat between kinks and jumps at them, and its Hessian-vector
 * products are zero rather than an approximation of anything.  identity is allowed (zero second
 * derivative, but it is linear everywhere, so that is exact). */
NDE_API int nde_act_allows_second_order(nde_act a);

typedef enum {
  NDE_INIT_GLOROT_UNIFORM = 0, /* U(-a, a), a = sqrt(6 / (in + out)) */
  NDE_INIT_GLOROT_NORMAL,      /* N(0, 2 / (in + out)) */
  NDE_INIT_HE,                 /* N(0, 2 / in) */
  NDE_INIT_NORMAL              /* N(0, sigma^2) */
} nde_init;

typedef struct nde_net nde_net;

/* Create a network of n_layers dense layers.  widths has n_layers + 1 entries (input width,
 * then each layer's output width), acts has n_layers entries.  Widths must be in
 * [1, NDE_NET_MAX_WIDTH].  *out is set to NULL on failure and err (may be NULL) receives the
 * message.  Statuses: NDE_ERR_ARG, NDE_ERR_LIMIT, NDE_ERR_NOMEM. */
#define NDE_NET_MAX_WIDTH 65536
#define NDE_NET_MAX_LAYERS 64
NDE_API nde_status nde_net_create(int n_layers, const int *widths, const nde_act *acts,
                                  nde_net **out, nde_error *err);
NDE_API void nde_net_destroy(nde_net **net);

NDE_API int nde_net_n_layers(const nde_net *net);
NDE_API int nde_net_n_in(const nde_net *net);
NDE_API int nde_net_n_out(const nde_net *net);
/* Width of layer boundary l in [0, n_layers] (0 = input). */
NDE_API int nde_net_width(const nde_net *net, int l);
NDE_API nde_act nde_net_act(const nde_net *net, int layer);
/* 1 when every layer's activation passes nde_act_allows_second_order, else 0 (and for NULL). */
NDE_API int nde_net_allows_second_order(const nde_net *net);
/* Number of parameters (sum over layers of out * in + out). */
NDE_API size_t nde_net_n_params(const nde_net *net);
/* Offset of layer l's W and of its b inside the network's parameter block. */
NDE_API size_t nde_net_weight_offset(const nde_net *net, int layer);
NDE_API size_t nde_net_bias_offset(const nde_net *net, int layer);

/* Fill the network's parameter block theta (nde_net_n_params doubles): weights by the scheme,
 * biases zero.  sigma is used by NDE_INIT_NORMAL only.  Draws from rng in a fixed order. */
NDE_API nde_status nde_net_init(const nde_net *net, nde_init scheme, double sigma, nde_rng *rng,
                        double *theta);

/* Scratch for passes on at most max_batch rows. */
typedef struct nde_net_ws nde_net_ws;
NDE_API nde_status nde_net_ws_create(const nde_net *net, int max_batch, nde_net_ws **out);
NDE_API void nde_net_ws_destroy(nde_net_ws **ws);
/* Scratch for every pass above and for the second-order pass nde_net_vjp_tangent on at most
 * max_batch rows.  On top of what nde_net_ws_create allocates it keeps, per row, the stacked
 * values and tangents of every boundary (2 x the sum of all widths), act' and act'' . Zdot of
 * every non-identity layer (2 x its width) and three stacked buffers (6 x the largest width)
 * doubles: 902 per row for 2 -> 64 -> 64 -> 1 with two hidden activations.  Statuses:
 * NDE_ERR_ARG, NDE_ERR_LIMIT, NDE_ERR_NOMEM, NDE_ERR_UNSUPPORTED when the net has an activation
 * that nde_act_allows_second_order refuses. */
NDE_API nde_status nde_net_ws_create_second_order(const nde_net *net, int max_batch,
                                                  nde_net_ws **out);

/* Number of doubles a forward pass on B rows can save for a later VJP at the same input: what
 * the reverse pass reads (each layer's activations, and its pre-activations where the
 * activation's derivative needs them).  It is B times the size for one row; the layout is
 * internal, so size caches only through this function.  0 for B < 1 or a NULL net. */
NDE_API size_t nde_net_cache_size(const nde_net *net, int B);

/* Forward: Y = net(X) on B rows (1 <= B <= the workspace's max_batch).  When cache is non-NULL
 * it receives nde_net_cache_size(net, B) doubles for nde_net_vjp. */
NDE_API void nde_net_forward(const nde_net *net, const double *theta, int B, const double *X, double *Y,
                     double *cache, nde_net_ws *ws);

/* Vector-Jacobian product at input X with output cotangent dY (B x out):
 *   gX      = dY^T dY/dX            (B x in, OVERWRITTEN; may be NULL to skip)
 *   gtheta += sum over rows of dY^T dY/dtheta   (ACCUMULATED; may be NULL to skip)
 * cache is what nde_net_forward saved at the same X and theta, or NULL to recompute it. */
NDE_API void nde_net_vjp(const nde_net *net, const double *theta, int B, const double *X,
                 const double *dY, const double *cache, double *gX, double *gtheta,
                 nde_net_ws *ws);

/* Jacobian-vector product: JV = dY/dX . V + dY/dtheta . Vtheta (B x out, overwritten).  V is
 * B x in (NULL means zero), Vtheta a tangent of the parameter block (NULL means zero). */
NDE_API void nde_net_jvp(const nde_net *net, const double *theta, int B, const double *X, const double *V,
                 const double *Vtheta, double *JV, nde_net_ws *ws);

/* Forward-over-reverse: the forward pass, the reverse pass, and the tangents of both along
 * (Xdot, thetadot, dYdot), on B rows in one sweep.  With N the network and J = dN/dX per row:
 *   Y          = N(X; theta)                                          (B x out, overwritten)
 *   Ydot       = J Xdot + dN/dtheta thetadot                          (B x out, overwritten)
 *   gX         = J^T dY                                               (B x in, overwritten)
 *   gtheta    += sum over rows of (dN/dtheta)^T dY                    (n_params, accumulated)
 *   gXdot      = d/de gX(X + e Xdot, theta + e thetadot, dY + e dYdot)       (overwritten)
 *   gthetadot += d/de gtheta(X + e Xdot, theta + e thetadot, dY + e dYdot)   (accumulated)
 * so gX, gtheta are what nde_net_vjp gives, Y and Ydot what nde_net_forward and nde_net_jvp give.
 * With Xdot = w and the other tangents zero, gXdot = Hess_X(dY . N) w (the Hessian-vector
 * product, per row) and gthetadot = grad_theta (w . J^T dY) (the mixed term): the VJP of the map
 * (X, theta) -> gX for the cotangent w, as a Hamiltonian network's right-hand side needs; Ydot =
 * J w is then the cotangent of dY.  With (Xdot, thetadot) = (V, Vtheta), gXdot is the JVP of the
 * same map.
 *
 * Inputs: theta (n_params), X (B x in) and, when any of gX, gtheta, gXdot, gthetadot is asked
 * for, dY (B x out) are required.  Xdot (B x in), thetadot (n_params) and dYdot (B x out) may
 * each be NULL, meaning zero.  Every output may be NULL to skip it: with none of the four
 * cotangent outputs the reverse sweep is skipped, and a NULL gtheta, gthetadot, gX or gXdot
 * saves its products (the tangent forward sweep always runs).  ws must come from
 * nde_net_ws_create_second_order for this net (or one of the same shape) with max_batch >= B.
 * Allocates nothing; rows run as dgemm on the stacked values and tangents (2B rows) where the
 * first-order passes use dgemm, and as loops for a single row through a small layer.
 *
 * Returns NDE_OK; NDE_ERR_UNSUPPORTED when an activation is refused (relu, see
 * nde_act_allows_second_order); NDE_ERR_ARG for a NULL net, theta, X, needed dY, a B outside
 * [1, max_batch] or a workspace not made by nde_net_ws_create_second_order for this shape.  On
 * an error the overwritten outputs are filled with NaN and the accumulated ones are untouched. */
NDE_API nde_status nde_net_vjp_tangent(const nde_net *net, const double *theta, int B,
                                       const double *X, const double *Xdot,
                                       const double *thetadot, const double *dY,
                                       const double *dYdot, double *Y, double *Ydot, double *gX,
                                       double *gtheta, double *gXdot, double *gthetadot,
                                       nde_net_ws *ws);

#ifdef __cplusplus
}
#endif
#endif
