/* nde model: the right-hand side f(t, u, theta) of an ODE du/dt = f, behind an ops table.
 *
 * A right-hand side works on a batch of B states at once: U is B x n (row-major, one state per
 * row), all rows at the same time t.  Besides f it provides the vector-Jacobian product (for
 * adjoints) and the Jacobian-vector product (for Newton-Krylov and forward sensitivities).  The
 * compiled .nde tape and hand-written C callbacks implement the same table, so every solver and
 * gradient method works on either.
 *
 * Callback return values: 0 ok; > 0 recoverable (a non-finite value, a state outside the
 * model's domain: an adaptive solver retries with a smaller step); < 0 fatal (the solve stops
 * with NDE_ERR_CALLBACK).
 */
#ifndef NDE_MODEL_H
#define NDE_MODEL_H

#include <stddef.h>

#include "nde/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nde_rhs_ops {
  /* dU = f(t, U, theta).  When cache is non-NULL, save cache_per_row * B doubles there that
   * let vjp at the same (t, U, theta) skip recomputing intermediate values. */
  int (*f)(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
           double *cache);
  /* Given cotangents L (B x n):
   *   gU     += L^T df/dU     per row (B x n; may be NULL to skip)
   *   gtheta += sum over rows of L^T df/dtheta   (n_theta; may be NULL to skip)
   * cache is what f saved at the same (t, U, theta), or NULL (recompute). */
  int (*vjp)(void *ctx, double t, int B, const double *U, const double *theta, const double *L,
             const double *cache, double *gU, double *gtheta);
  /* JV = df/dU . V + df/dtheta . Vtheta (B x n, overwritten).  V (B x n) or Vtheta (n_theta)
   * may be NULL, meaning zero.  May be NULL in the table if the model has no JVP. */
  int (*jvp)(void *ctx, double t, int B, const double *U, const double *theta, const double *V,
             const double *Vtheta, double *JV);
  /* Release ctx; called by nde_rhs_destroy when the rhs took ownership.  May be NULL. */
  void (*destroy)(void *ctx);
} nde_rhs_ops;

typedef struct nde_rhs_info {
  int n_state;          /* n, the width of one state row */
  size_t n_theta;       /* length of the flat parameter vector */
  int max_batch;        /* the largest B the callbacks accept */
  size_t cache_per_row; /* doubles f may save per row for vjp (0: no cache) */
  /* Structural dependencies, n x n row-major: dep[i * n + j] != 0 when f_i may depend on u_j.
   * NULL means unknown (every f_i may depend on every u_j).  Borrowed: it must live as long as
   * the rhs (nde_rhs_create copies the pointer, not the matrix).  Structure-preserving
   * integrators read it to find a separable split q' = F(p), p' = G(q). */
  const unsigned char *dep;
} nde_rhs_info;

typedef struct nde_rhs nde_rhs;

/* Wrap an ops table.  ops is copied; ctx is borrowed or taken per own.  f and vjp are required.
 * *out is NULL on failure (and ctx is destroyed if it was taken); err (may be NULL) receives the
 * message.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_rhs_create(const nde_rhs_ops *ops, void *ctx, nde_ownership own,
                                  const nde_rhs_info *info, nde_rhs **out, nde_error *err);
NDE_API void nde_rhs_destroy(nde_rhs **rhs);

NDE_API const nde_rhs_info *nde_rhs_get_info(const nde_rhs *rhs);
NDE_API int nde_rhs_has_jvp(const nde_rhs *rhs);

/* Calls through the table, counted (see nde_rhs_counts).  Return the callback's value. */
NDE_API int nde_rhs_f(nde_rhs *rhs, double t, int B, const double *U, const double *theta, double *dU,
              double *cache);
NDE_API int nde_rhs_vjp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *L, const double *cache, double *gU, double *gtheta);
NDE_API int nde_rhs_jvp(nde_rhs *rhs, double t, int B, const double *U, const double *theta,
                const double *V, const double *Vtheta, double *JV);

/* Number of f, vjp and jvp calls (each counted once per call, whatever B) since creation or the
 * last reset. */
typedef struct nde_rhs_counts {
  long f, vjp, jvp;
} nde_rhs_counts;
NDE_API nde_rhs_counts nde_rhs_get_counts(const nde_rhs *rhs);
NDE_API void nde_rhs_reset_counts(nde_rhs *rhs);

/* ---- the .nde language ---- */

/* A model compiled from a .nde file (the grammar is docs/language.md): its states, parameters
 * and networks, the layout of the flat parameter vector theta, and a tape that evaluates f, its
 * VJP and its JVP on a batch of states.
 *
 * theta holds only learnable things, in declaration order (parameters and nets interleaved as
 * declared): a learnable scalar parameter takes one entry, stored in an unconstrained form (see
 * nde_param_transform); a net takes nde_net_n_params entries in the nn layer's layout (per layer W
 * out x in row-major, then b).  Fixed parameters are constants of the tape and not in theta.
 * Vector state components are named "y[1]", "y[2]", ... (indices are 1-based in the language).
 *
 * A model is immutable once loaded; it may be shared by any number of right-hand sides and read
 * from several threads. */
#include "nde/nn.h"

typedef struct nde_model nde_model;

/* Limits checked before anything is allocated; exceeding one is an NDE_ERR_LIMIT error with a
 * message at the offending place. */
#define NDE_MODEL_MAX_FILE_BYTES (1u << 20) /* source text size */
#define NDE_MODEL_MAX_DEPTH 64              /* expression nesting */
#define NDE_MODEL_MAX_STATE 4096            /* total state components n */
#define NDE_MODEL_MAX_WIDTH 4096            /* net layer width, vector size */
#define NDE_MODEL_MAX_NETS 64
#define NDE_MODEL_MAX_TAPE 100000 /* tape instructions */

/* Compile a model from source text (len bytes; need not be NUL-terminated).  filename is used
 * in messages only (NULL: "<string>").  On failure err (may be NULL) receives the first message,
 * "FILE:LINE:COL: error: what", and *out still receives a handle whenever memory allows, so that
 * every message (nde_model_errmsg) and the structured diagnostics can be read; destroy it in
 * every case.  A handle from a failed load has no states, parameters or nets.
 * Returns NDE_OK; NDE_ERR_PARSE (syntax, including bad number literals); NDE_ERR_MODEL (names,
 * sizes, equations, cycles); NDE_ERR_LIMIT; NDE_ERR_NOMEM; NDE_ERR_ARG (src or out NULL). */
NDE_API nde_status nde_model_load_string(const char *src, size_t len, const char *filename,
                                         nde_model **out, nde_error *err);
/* Read and compile a file.  As nde_model_load_string; NDE_ERR_IO when it cannot be read. */
NDE_API nde_status nde_model_load_file(const char *path, nde_model **out, nde_error *err);
/* Release a model (NULL-safe; nulls *model).  Right-hand sides made from it keep their own
 * reference and stay valid. */
NDE_API void nde_model_destroy(nde_model **model);

/* The messages of a failed load, one per problem (the first error plus a few more, no
 * cascades), each "FILE:LINE:COL: error: what" followed by the offending line and a caret line;
 * notes ("FILE:LINE:COL: note: ...") point at related places, e.g. a first declaration.  Empty
 * string after a successful load.  Owned by the model. */
NDE_API const char *nde_model_errmsg(const nde_model *model);

/* The same messages one by one, for tools and tests. */
typedef struct nde_model_diag {
  int is_note;             /* 0: error, 1: note attached to the preceding error */
  int line, col;           /* 1-based; col counts characters (UTF-8 aware) */
  const char *message;     /* without the "FILE:LINE:COL: error: " prefix */
  const char *source_line; /* the offending line, without its newline */
} nde_model_diag;
NDE_API int nde_model_n_diags(const nde_model *model);
/* Diagnostic i in [0, n_diags); NDE_ERR_ARG when out of range.  Strings owned by the model. */
NDE_API nde_status nde_model_get_diag(const nde_model *model, int i, nde_model_diag *out);

NDE_API const char *nde_model_filename(const nde_model *model);
/* The source text the model was compiled from (NUL-terminated, owned by the model). */
NDE_API const char *nde_model_source(const nde_model *model);

/* ---- states ---- */
/* Number of declared states (a vector state counts once) and the width n of a state row. */
NDE_API int nde_model_n_states(const nde_model *model);
NDE_API int nde_model_state_dim(const nde_model *model);
typedef struct nde_model_state_info {
  const char *name;     /* as declared: "x", "y" */
  int size;             /* 1 for a scalar, k for "state y[k]" */
  int is_vector;        /* declared with [k] (even k = 1) */
  int offset;           /* first column in a state row */
  int has_initial;      /* initial values given in the file */
  const double *initial; /* size values (zeros when not given) */
} nde_model_state_info;
NDE_API nde_status nde_model_get_state(const nde_model *model, int i, nde_model_state_info *out);
/* Name of state column j in [0, n): "x", or "y[2]" for a component of a vector state; NULL when
 * out of range. */
NDE_API const char *nde_model_component_name(const nde_model *model, int j);
/* Column of a component name ("x", "y[2]"), or -1. */
NDE_API int nde_model_find_component(const nde_model *model, const char *name);
/* Fill u0 (n values) with the declared initial values (0 where none was given).  Returns the
 * number of components that had no declared initial value. */
NDE_API int nde_model_initial_state(const nde_model *model, double *u0);

/* ---- parameters and the layout of theta ---- */
typedef enum {
  NDE_TRANSFORM_NONE = 0, /* theta entry = value */
  NDE_TRANSFORM_LOG,      /* "positive": theta entry s, value = exp(s) */
  NDE_TRANSFORM_LOGIT     /* "in [lo, hi]": theta entry s, value = lo + (hi - lo) / (1 + exp(-s)) */
} nde_param_transform;

typedef struct nde_model_param_info {
  const char *name;
  double value;  /* the value written in the file (natural space) */
  int learnable; /* 0 for "fixed" */
  int positive;  /* declared "positive" */
  int bounded;   /* declared "in [lo, hi]" */
  double lo, hi; /* bounds when bounded */
  nde_param_transform transform; /* how theta stores it (NONE for fixed) */
  size_t offset; /* index in theta when learnable, else (size_t)-1 */
  int line;      /* declaration line */
} nde_model_param_info;
/* Scalar parameters in declaration order, fixed ones included. */
NDE_API int nde_model_n_params(const nde_model *model);
NDE_API nde_status nde_model_get_param(const nde_model *model, int i, nde_model_param_info *out);
/* Index of a parameter by name, or -1. */
NDE_API int nde_model_find_param(const nde_model *model, const char *name);
/* Natural value of parameter i for the given theta (the declared value when fixed). */
NDE_API double nde_model_param_value(const nde_model *model, int i, const double *theta);
/* Store a natural value for learnable parameter i into theta (inverse transform).  NDE_ERR_ARG
 * when i is fixed or out of range, or value is outside the parameter's domain. */
NDE_API nde_status nde_model_set_param(const nde_model *model, int i, double value, double *theta);

typedef struct nde_model_net_info {
  const char *name;
  const nde_net *net; /* owned by the model: widths, activations, passes */
  size_t offset;      /* first theta entry of its block */
  size_t n_params;
  nde_init init;      /* initialisation scheme from the file (default glorot uniform) */
  double init_sigma;  /* for NDE_INIT_NORMAL */
} nde_model_net_info;
NDE_API int nde_model_n_nets(const nde_model *model);
NDE_API nde_status nde_model_get_net(const nde_model *model, int i, nde_model_net_info *out);
NDE_API int nde_model_find_net(const nde_model *model, const char *name);

/* The layout of theta: n_layout entries in theta order, each a learnable parameter (length 1)
 * or a net's block. */
typedef enum { NDE_LAYOUT_PARAM = 0, NDE_LAYOUT_NET } nde_layout_kind;
typedef struct nde_model_layout_entry {
  const char *name;
  nde_layout_kind kind;
  size_t offset, length;
  nde_param_transform transform; /* NONE for nets */
  int index;                     /* index for nde_model_get_param / nde_model_get_net */
} nde_model_layout_entry;
NDE_API size_t nde_model_n_theta(const nde_model *model);
NDE_API int nde_model_n_layout(const nde_model *model);
NDE_API nde_status nde_model_get_layout(const nde_model *model, int i, nde_model_layout_entry *out);

/* Initial theta (nde_model_n_theta values): learnable parameters at their declared values
 * (transformed), nets by their init schemes, drawing from one nde_rng seeded with seed, nets in
 * declaration order. */
NDE_API nde_status nde_model_init_theta(const nde_model *model, uint64_t seed, double *theta);

/* A right-hand side evaluating the compiled tape on batches of up to max_batch rows.  The rhs
 * holds its own workspaces (so it must not be called from two threads at once; make one per
 * thread) and a reference to the model.  cache_per_row is the number of doubles f saves per row
 * for vjp.  Callbacks return 0, or 1 (recoverable) when a value is not finite (log or sqrt of a
 * negative number, overflow), and never fail fatally.
 * Returns NDE_OK, NDE_ERR_ARG (max_batch < 1 or a failed model), NDE_ERR_NOMEM; err (may be
 * NULL) receives the message. */
NDE_API nde_status nde_model_create_rhs(nde_model *model, int max_batch, nde_rhs **out,
                                        nde_error *err);

/* ---- source-level views of a model: net calls, probes, export (src/model/lang_probe.c) ----
 * For nde discover and nde export: where the nets are called in the source, the values of
 * expressions written in the language at given states, and the model as C or as equations. */

/* One call of a net in the source, e.g. "U(x, y)". */
typedef struct nde_model_net_call {
  int net;                     /* index for nde_model_get_net */
  int line, col;               /* place of the net's name in the call (1-based) */
  size_t begin, end;           /* byte range [begin, end) of the call "U(x, y)" in the source */
  size_t args_begin, args_end; /* byte range of the argument text "x, y" */
} nde_model_net_call;

/* The net calls of a loaded model in source order.  *calls is malloc'ed (free()); *n may be 0
 * (then *calls is NULL).  Returns NDE_OK, NDE_ERR_ARG (a failed model), NDE_ERR_NOMEM. */
NDE_API nde_status nde_model_net_calls(const nde_model *model, int *n, nde_model_net_call **calls);

/* Byte range [begin, end) of the line that declares net i, its newline included. */
NDE_API nde_status nde_model_net_decl_range(const nde_model *model, int net, size_t *begin, size_t *end);

/* A probe evaluates extra expressions, written in the model's language over its names (states,
 * parameters, intermediates, nets, t), at given states: e.g. "U(x, y)", "x*y", "sin(x)".  It
 * compiles the model's source with the expressions appended, so theta has the same layout. */
typedef struct nde_probe nde_probe;

/* Compile a probe for n_expr expressions on batches of up to max_batch rows.  On a bad
 * expression returns NDE_ERR_PARSE or NDE_ERR_MODEL with err->msg "expression 'TEXT': what"
 * (err may be NULL).  Also NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_probe_create(const nde_model *model, int n_expr, const char *const *exprs,
                            int max_batch, nde_probe **out, nde_error *err);
NDE_API void nde_probe_destroy(nde_probe **probe);
/* Size of expression i (1 for a scalar) and the total width of one output row. */
NDE_API int nde_probe_width(const nde_probe *probe, int i);
NDE_API int nde_probe_total_width(const nde_probe *probe);
/* OUT (B x total width, row-major; expression i at the columns after those of 0..i-1) = the
 * expressions at time t, states U (B x n) and theta.  Returns the tape's value: 0, or 1 when a
 * value is not finite.  B must not exceed max_batch (-1 otherwise).  Allocates nothing. */
NDE_API int nde_probe_eval(nde_probe *probe, double t, int B, const double *U, const double *theta,
                   double *OUT);

/* The right-hand side at theta as a standalone C11 source file (weights and parameter values
 * embedded, only <math.h> needed), defining
 *     #define PREFIX_N_STATE n
 *     extern const char *const PREFIX_state_names[n];
 *     int PREFIX_rhs(double t, const double *u, double *du);   0 ok, 1 a value is not finite
 * prefix must be a C identifier.  *text is malloc'ed (free()).  NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_model_export_c(const nde_model *model, const double *theta, const char *prefix,
                              char **text);

typedef enum { NDE_FORMAT_TEXT = 0, NDE_FORMAT_LATEX } nde_format;
/* The intermediates and equations of the model, one per line (LaTeX: an aligned environment),
 * with parameter names replaced by their values at theta when substitute is set, else followed by
 * the parameter values.  Net calls stay calls.  *text is malloc'ed (free()). */
NDE_API nde_status nde_model_format_equations(const nde_model *model, const double *theta,
                                      nde_format format, int substitute, char **text);

#ifdef __cplusplus
}
#endif
#endif
