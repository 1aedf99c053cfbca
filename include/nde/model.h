/* nde model: the right-hand side f(t, u, theta) of an ODE du/dt = f, behind an ops table.
 *
 * A right-hand side works on a batch of B states at once: U is B x n (row-major, one state per
 * row), all rows at the same time t.  Besides f it provides the vector-Jacobian product (for
 * adjoints) and the Jacobian-vector product (for Newton-Krylov and forward sensitivities).  The
 * compiled .nde tape and hand-written C callbacks implement the same table, so every solver and
 * gradient method works on either.
 *
 * Rows of one batch may belong to different series (trajectories with their own measured
 * inputs, constants and per-series parameters): nde_rhs_set_rows binds each row to its series
 * before the calls.
 *
 * Callback return values: 0 ok; > 0 recoverable (a non-finite value, a state outside the
 * model's domain: an adaptive solver retries with a smaller step); < 0 fatal (the solve stops
 * with NDE_ERR_CALLBACK).
 *
 * Threads: an rhs keeps workspaces, so it is used by one thread at a time; make one per thread
 * (nde_rhs_clone).  Different rhs's, even of one model, may run on different threads at once.
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
  /* Bind rows to series for the following calls: row r < B belongs to series
   * series_of_row[r] (checked to be >= 0 by nde_rhs_set_rows; the callback checks its upper
   * bound).  Read during the call only.  Returns NDE_OK or NDE_ERR_ARG.  May be NULL: the
   * rhs has nothing per series and accepts any map. */
  nde_status (*set_rows)(void *ctx, int B, const int *series_of_row);
  /* Times after t0 up to t1 (t1 included when t1 > t0; strictly between them when t0 > t1)
   * where f jumps for the rows bound now, ordered from t0 towards t1; writes at most max of them
   * to out and returns how many there are.  May be NULL: f has no jumps. */
  size_t (*breakpoints)(void *ctx, double t0, double t1, size_t max, double *out);
  /* A new context that computes exactly what ctx computes (same model, same bound data,
   * same row map) with its own workspaces, for another thread.  ctx is only read.  Returns
   * NDE_OK, NDE_ERR_NOMEM.  May be NULL (nde_rhs_clone then reports NDE_ERR_UNSUPPORTED);
   * a table with clone needs destroy. */
  nde_status (*clone)(void *ctx, void **out);
  /* The times where f is defined for the rows bound now, [*lo, *hi] (for a compiled model:
   * the samples' span of every measured input it reads that is not declared hold).  Solvers
   * move an evaluation outside it (yoshida4's outer kicks) to its end.  May be NULL: every
   * time. */
  void (*domain)(void *ctx, double *lo, double *hi);
} nde_rhs_ops;

typedef struct nde_rhs_info {
  int n_state;          /* n, the width of one state row */
  size_t n_theta;       /* length of the flat parameter vector the callbacks read (for a
                           compiled model: nde_model_n_theta_full for its series) */
  int max_batch;        /* the largest B the callbacks accept */
  size_t cache_per_row; /* doubles f may save per row for vjp (0: no cache) */
  /* Structural dependencies, n x n row-major: dep[i * n + j] != 0 when f_i may depend on u_j.
   * NULL means unknown (every f_i may depend on every u_j).  Borrowed: it must live as long as
   * the rhs (nde_rhs_create copies the pointer, not the matrix).  Structure-preserving
   * integrators read it to find a separable split q' = F(p), p' = G(q). */
  const unsigned char *dep;
} nde_rhs_info;

typedef struct nde_rhs nde_rhs;

/* Wrap an ops table.  ops is copied; ctx is borrowed or taken per own.  f and vjp are required
 * (and destroy when clone is given).  info is copied (the dep matrix it points to is borrowed).
 * *out is NULL on failure (and ctx is destroyed if it was taken); err (may be NULL) receives the
 * message.  Statuses: NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_rhs_create(const nde_rhs_ops *ops, void *ctx, nde_ownership own,
                                  const nde_rhs_info *info, nde_rhs **out, nde_error *err);
NDE_API void nde_rhs_destroy(nde_rhs **rhs);

NDE_API const nde_rhs_info *nde_rhs_get_info(const nde_rhs *rhs);
NDE_API int nde_rhs_has_jvp(const nde_rhs *rhs);

/* Calls through the table, counted (see nde_rhs_counts).  Return the callback's value, or -1
 * (fatal, the callback not called) for B outside [1, max_batch], which the callbacks need not
 * accept (a compiled model's workspaces are sized for max_batch rows). */
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

/* Bind the rows of the following calls to series: row r (r < B) belongs to series
 * series_of_row[r]; series_of_row NULL puts rows 0 .. B-1 in series 0.  The map is copied.
 * Before the first nde_rhs_set_rows every row up to max_batch is in series 0; after it, a
 * compiled model's rhs refuses (fatal, < 0) calls with more than B rows.  Per-series values of a row (measured
 * inputs, constants from data, per-series parameters) are those of its series.
 * Returns NDE_OK; NDE_ERR_ARG when B is not in [1, max_batch], a series is negative, or (for a
 * compiled model) a series is not below the n_series the rhs was created for.  A table without
 * set_rows accepts every valid map. */
NDE_API nde_status nde_rhs_set_rows(nde_rhs *rhs, int B, const int *series_of_row);

/* The times after t0 up to t1 (t1 included when t1 > t0; t0 > t1 is allowed: a backward solve,
 * then strictly between them) where f jumps
 * for the rows bound now: for a compiled model, where a measured input with step
 * interpolation of one of those rows' series changes its value (a solver should stop there).
 * Kinks of linear and cubic inputs are not reported.  Ordered from t0 towards t1, without
 * repeats; at most max are written to out (out may be NULL when max is 0).  Returns the number
 * of such times, which may exceed max.  0 for a table without breakpoints. */
NDE_API size_t nde_rhs_breakpoints(const nde_rhs *rhs, double t0, double t1, size_t max,
                                   double *out);
/* The times where f is defined for the rows bound now (nde_rhs_ops.domain): [-inf, inf] for a
 * table without a domain. */
NDE_API void nde_rhs_domain(const nde_rhs *rhs, double *lo, double *hi);

/* A second rhs computing bit for bit what rhs computes (same table, same bound data and row
 * map, same info), with its own workspaces and counters, so that another thread can use it.
 * Destroy it with nde_rhs_destroy; it does not depend on rhs staying alive.  rhs is only read:
 * several threads may clone the same rhs at once (a compiled model's clone only reads; a C
 * table's clone must too).
 * Returns NDE_OK; NDE_ERR_UNSUPPORTED when the table has no clone; NDE_ERR_NOMEM; NDE_ERR_ARG
 * (rhs or out NULL).  *out is NULL on failure; err (may be NULL) receives the message. */
NDE_API nde_status nde_rhs_clone(const nde_rhs *rhs, nde_rhs **out, nde_error *err);

/* ---- the .nde language ---- */

/* A model compiled from a .nde file (the grammar is docs/language.md): its states, parameters,
 * nets, measured inputs, constants and observables, the layout of the flat parameter vector
 * theta, and a tape that evaluates f, its VJP and its JVP on a batch of states.
 *
 * theta holds only learnable things.  The shared part (nde_model_n_theta entries) comes first,
 * in declaration order (parameters and nets interleaved as declared): a learnable scalar
 * parameter takes one entry, stored in an unconstrained form (see nde_param_transform); a net
 * takes nde_net_n_params entries in the nn layer's layout (per layer W out x in row-major,
 * then b).  Parameters declared "per series" (n_sp = nde_model_n_series_params of them) have
 * one value per series, in a block after the shared part: the full theta for S series has
 * n_theta + S * n_sp entries, series-major, the k-th per-series parameter of series s at
 * n_theta + s * n_sp + k (stored in its unconstrained form too).  Fixed parameters and
 * constants are not in theta.  Vector state components are named "y[1]", "y[2]", ...
 * (indices are 1-based in the language).
 *
 * A model is immutable once loaded: it may be shared by any number of right-hand sides,
 * observers and probes, which may be created, used and destroyed on different threads at the
 * same time (the reference count is atomic); each of those is used by one thread at a time. */
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
/* Learnable values: theta's shared part plus one series' per-series parameters (80 MB as
 * doubles; a fit keeps a few dozen vectors of that length). */
#define NDE_MODEL_MAX_THETA 10000000
/* Workspace of one batch row of an evaluation (values, adjoints and tangents of every
 * intermediate and net cache); a batch of B rows needs B times this. */
#define NDE_MODEL_MAX_ROW_BYTES (64 << 20)

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
  size_t offset; /* shared: index in theta when learnable, else (size_t)-1; per series: the
                    index k in a series' block (theta[n_theta + s * n_sp + k]) */
  int line;      /* declaration line */
  int per_series; /* declared "per series": one value per series (always learnable) */
} nde_model_param_info;
/* Scalar parameters in declaration order, fixed and per-series ones included. */
NDE_API int nde_model_n_params(const nde_model *model);
NDE_API nde_status nde_model_get_param(const nde_model *model, int i, nde_model_param_info *out);
/* Index of a parameter by name, or -1. */
NDE_API int nde_model_find_param(const nde_model *model, const char *name);
/* Natural value of parameter i for the given theta (the declared value when fixed).  NaN for a
 * per-series parameter (use nde_model_param_value_series) or i out of range. */
NDE_API double nde_model_param_value(const nde_model *model, int i, const double *theta);
/* Store a natural value for learnable parameter i into theta (inverse transform).  NDE_ERR_ARG
 * when i is fixed, per series or out of range, or value is outside the parameter's domain. */
NDE_API nde_status nde_model_set_param(const nde_model *model, int i, double value, double *theta);

/* Number of per-series parameters n_sp (the size of one series' block of theta). */
NDE_API int nde_model_n_series_params(const nde_model *model);
/* Length of the full theta for n_series series: n_theta + n_series * n_sp. */
NDE_API size_t nde_model_n_theta_full(const nde_model *model, int n_series);
/* Natural value of parameter i in series s, read from a full theta: a per-series parameter's
 * own entry, or the shared value of any other parameter.  NaN when i or s (< 0) is invalid. */
NDE_API double nde_model_param_value_series(const nde_model *model, int i, const double *theta,
                                            int s);
/* Store a natural value for per-series parameter i of series s into a full theta.
 * NDE_ERR_ARG when i is not a per-series parameter, s < 0, or value is outside its domain. */
NDE_API nde_status nde_model_set_param_series(const nde_model *model, int i, int s, double value,
                                              double *theta);

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
 * declaration order.  Returns NDE_OK; NDE_ERR_ARG (a failed model, theta NULL). */
NDE_API nde_status nde_model_init_theta(const nde_model *model, uint64_t seed, double *theta);
/* Initial full theta for n_series series (nde_model_n_theta_full values): the shared part as
 * nde_model_init_theta, then every series' block at the declared values (transformed).
 * Returns NDE_OK; NDE_ERR_ARG (a failed model, n_series < 1, theta NULL). */
NDE_API nde_status nde_model_init_theta_full(const nde_model *model, uint64_t seed, int n_series,
                                             double *theta);

/* ---- measured inputs, constants and observables ---- */

/* How a measured input is interpolated between its samples (t_k, u_k):
 *   LINEAR  piecewise linear (the default)
 *   CUBIC   monotone C1 piecewise cubic Hermite with Fritsch-Carlson slopes (1980): between
 *           two samples it stays between their values (no overshoot)
 *   STEP    zero-order hold, right-continuous: u_k on [t_k, t_{k+1})
 * A single sample is a constant.  Outside [t_0, t_{n-1}] an input declared "hold" keeps the
 * end value; any other input is undefined there, and evaluating it is a fatal callback error. */
typedef enum { NDE_INTERP_LINEAR = 0, NDE_INTERP_CUBIC, NDE_INTERP_STEP } nde_interp;

typedef struct nde_model_input_info {
  const char *name;
  nde_interp interp;
  int hold;     /* declared "hold": the end values hold outside the data's time span */
  int line;     /* declaration line */
} nde_model_input_info;
/* Measured inputs in declaration order (the order of an input series' columns). */
NDE_API int nde_model_n_inputs(const nde_model *model);
/* 1 when nothing in the model's file reads the time t and it has no measured inputs, so that its
 * solutions depend on the time elapsed from their start only (a fit then solves the pieces that
 * have the same times relative to their start as one batch: nde_fit_opts.autonomous); 0 otherwise
 * and for NULL or a model that failed to load. */
NDE_API int nde_model_is_autonomous(const nde_model *model);
/* Input i in [0, n_inputs); NDE_ERR_ARG when out of range.  Strings owned by the model. */
NDE_API nde_status nde_model_get_input(const nde_model *model, int i, nde_model_input_info *out);
/* Index of an input by name, or -1. */
NDE_API int nde_model_find_input(const nde_model *model, const char *name);

typedef struct nde_model_const_info {
  const char *name;
  int from_data; /* declared "(from data)": one value per series, bound when an rhs is made */
  double value;  /* the written value of a plain constant (NaN when from data) */
  int column;    /* from data: the column in a series' row of constants; else -1 */
  int line;      /* declaration line */
} nde_model_const_info;
/* Constants in declaration order, plain and from data. */
NDE_API int nde_model_n_consts(const nde_model *model);
/* Constants from data: the width of a series' row of constants. */
NDE_API int nde_model_n_data_consts(const nde_model *model);
/* Constant i in [0, n_consts); NDE_ERR_ARG when out of range.  Strings owned by the model. */
NDE_API nde_status nde_model_get_const(const nde_model *model, int i, nde_model_const_info *out);
/* Index of a constant by name, or -1. */
NDE_API int nde_model_find_const(const nde_model *model, const char *name);

/* Observables ("observe NAME = EXPR", scalars) in declaration order. */
NDE_API int nde_model_n_observables(const nde_model *model);
/* Name of observable i, or NULL when out of range (owned by the model). */
NDE_API const char *nde_model_observable_name(const nde_model *model, int i);

/* The structural dependencies of the right-hand side: dep (n x n, row-major, written) gets
 * dep[i * n + j] = 1 when f_i may depend on u_j, else 0, propagated through the tape (a net's
 * outputs depend on all of its inputs; comparisons and steps count as dependencies).  The same
 * matrix is every compiled rhs's nde_rhs_info.dep.  Returns NDE_OK; NDE_ERR_ARG (a failed
 * model, dep NULL). */
NDE_API nde_status nde_model_dependency(const nde_model *model, unsigned char *dep);

/* ---- right-hand sides and observers of a compiled model ---- */

/* The measured inputs of one series: n >= 1 samples at strictly increasing finite times t[n],
 * and the values u[n x m] (row-major: at each time the model's m inputs in declaration
 * order), all finite. */
typedef struct nde_input_series {
  size_t n;
  const double *t;
  const double *u;
} nde_input_series;

/* What a right-hand side or an observer is made for.  Start from nde_model_rhs_opts_default(). */
typedef struct nde_model_rhs_opts {
  int max_batch;  /* largest B of a call (default 1) */
  int n_series;   /* series the rows may belong to (default 1) */
  /* [n_series] measured inputs, one entry per series; required when the model declares
   * inputs, else ignored (may be NULL). */
  const nde_input_series *inputs;
  /* [n_series x n_data_consts] row-major: the constants from data of each series; required
   * when the model declares such constants, else ignored (may be NULL). */
  const double *consts;
} nde_model_rhs_opts;
NDE_API nde_model_rhs_opts nde_model_rhs_opts_default(void);

/* A right-hand side evaluating the compiled tape on batches of up to o->max_batch rows whose
 * series are below o->n_series.  Everything o points to is copied (the caller may free it
 * afterwards); interpolation coefficients are computed here, so that the callbacks allocate
 * nothing.  The rhs holds its own workspaces (it must not be called from two threads at once;
 * clone it for another thread) and a reference to the model.  Its info: n_theta is the full
 * length nde_model_n_theta_full(model, n_series); cache_per_row the doubles f saves per row
 * for vjp; dep the model's dependency matrix.  Rows start in series 0 (nde_rhs_set_rows).
 * Callbacks return 0; 1 (recoverable) when a value is not finite (log or sqrt of a negative
 * number, overflow); < 0 (fatal) when B exceeds max_batch or the bound rows, or a measured
 * input without "hold" is evaluated outside its series' time span (fits check the spans of
 * their data before solving).  Constants from data and measured inputs have no derivative;
 * derivatives through expressions that contain them are exact.
 * Returns NDE_OK; NDE_ERR_ARG (a failed model, max_batch or n_series < 1, inputs or constants
 * missing although the model declares them, a series with no samples, times not strictly
 * increasing, a value not finite: the message names the input, series and sample);
 * NDE_ERR_NOMEM.  err (may be NULL) receives the message. */
NDE_API nde_status nde_model_create_rhs_opts(nde_model *model, const nde_model_rhs_opts *o,
                                             nde_rhs **out, nde_error *err);

/* nde_model_create_rhs_opts for one series, no data and the given max_batch (so NDE_ERR_ARG
 * for a model that declares inputs or constants from data). */
NDE_API nde_status nde_model_create_rhs(nde_model *model, int max_batch, nde_rhs **out,
                                        nde_error *err);

/* An observer evaluates K named quantities of a compiled model on a batch of states: each a
 * state component ("x", "y[2]") or an observable ("observe h = ..."), whose expression may use
 * states, parameters (per-series ones too), intermediates, inputs, constants and t.  Data
 * columns are matched to these names.  Its derivatives are exact, like the rhs's; it holds
 * workspaces (one thread at a time) and a reference to the model. */
typedef struct nde_observer nde_observer;

/* Make an observer of the K names (copied) for batches and series as in o, with the binding
 * rules of nde_model_create_rhs_opts (o NULL: the defaults).  Returns NDE_OK; NDE_ERR_ARG (an
 * unknown name, K < 1, bad options or data; the message names it); NDE_ERR_NOMEM.  err may be
 * NULL. */
NDE_API nde_status nde_model_create_observer(nde_model *model, const nde_model_rhs_opts *o, int K,
                                             const char *const *names, nde_observer **out,
                                             nde_error *err);
/* Release an observer (NULL-safe; nulls *o). */
NDE_API void nde_observer_destroy(nde_observer **o);
/* An observer for another thread: the same quantities, data and row map with its own
 * workspaces (it keeps what it shares with o alive; either may be destroyed first).  Clones may
 * be made from several threads at once.  NDE_ERR_ARG, NDE_ERR_NOMEM. */
NDE_API nde_status nde_observer_clone(const nde_observer *o, nde_observer **out, nde_error *err);
/* 1 when every quantity is a state component: H[:, k] is then U's column
 * nde_model_find_component(names[k]), and callers may read U instead of evaluating. */
NDE_API int nde_observer_is_identity(const nde_observer *o);
/* Number of quantities K. */
NDE_API int nde_observer_n_outputs(const nde_observer *o);
/* As nde_rhs_set_rows. */
NDE_API nde_status nde_observer_set_rows(nde_observer *o, int B, const int *series_of_row);
/* H (B x K, written) = the quantities at time t, states U (B x n) and the full theta.
 * Returns 0; 1 when a value is not finite; < 0 (fatal) as the rhs callbacks.  Allocates
 * nothing. */
NDE_API int nde_observer_eval(nde_observer *o, double t, int B, const double *U,
                              const double *theta, double *H);
/* Given cotangents LH (B x K): gU (B x n) += LH^T dH/dU per row, gtheta (full length) += the
 * sum over rows of LH^T dH/dtheta; either may be NULL to skip.  Returns as
 * nde_observer_eval. */
NDE_API int nde_observer_vjp(nde_observer *o, double t, int B, const double *U,
                             const double *theta, const double *LH, double *gU, double *gtheta);
/* JH (B x K, written) = dH/dU . V + dH/dtheta . Vtheta; V (B x n) or Vtheta (full length) may
 * be NULL, meaning zero.  Returns as nde_observer_eval. */
NDE_API int nde_observer_jvp(nde_observer *o, double t, int B, const double *U,
                             const double *theta, const double *V, const double *Vtheta,
                             double *JH);

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

/* The net calls of a loaded model in source order.  *calls is allocated (release with nde_free); *n may be 0
 * (then *calls is NULL).  Returns NDE_OK, NDE_ERR_ARG (a failed model), NDE_ERR_NOMEM. */
NDE_API nde_status nde_model_net_calls(const nde_model *model, int *n, nde_model_net_call **calls);

/* Byte range [begin, end) of the line that declares net i, its newline included. */
NDE_API nde_status nde_model_net_decl_range(const nde_model *model, int net, size_t *begin, size_t *end);
/* Byte range [begin, end) of the value written in the declaration of parameter i
 * (nde_model_get_param order): "-0.5" in "param k = -0.5 (fixed)".  NDE_ERR_ARG for a failed
 * model or i out of range. */
NDE_API nde_status nde_model_param_value_range(const nde_model *model, int i, size_t *begin,
                                               size_t *end);

/* A probe evaluates extra expressions, written in the model's language over its names (states,
 * parameters, intermediates, nets, constants, t), at given states: e.g. "U(x, y)", "x*y",
 * "sin(x)".  The expressions are compiled against the model's own tables (a tape whose outputs
 * are the expressions, with only the intermediates they need), so theta has the same layout.
 * A probe made by nde_probe_create binds no data: expressions that need measured inputs or
 * constants from data are refused (nde_probe_create_opts binds them); per-series parameters read
 * the series the rows are bound to (series 0 unless nde_probe_set_rows says otherwise).  It holds
 * a reference to the model and workspaces (one thread at a time). */
typedef struct nde_probe nde_probe;

/* Compile a probe for n_expr expressions on batches of up to max_batch rows.  On a bad
 * expression returns NDE_ERR_PARSE or NDE_ERR_MODEL with err->msg "expression 'TEXT', column
 * C: what" (err may be NULL).  Also NDE_ERR_ARG (a failed model, bad arguments, expressions
 * that need bound data), NDE_ERR_NOMEM. */
NDE_API nde_status nde_probe_create(const nde_model *model, int n_expr, const char *const *exprs,
                            int max_batch, nde_probe **out, nde_error *err);
/* The same for data: batches and series as in o (nde_model_rhs_opts; NULL: defaults), with the
 * measured inputs, constants from data and per-series parameters of the series the rows are
 * bound to (nde_probe_set_rows), so that the expressions may use them (a candidate term "V*h",
 * a net called with an input).  Statuses as nde_probe_create, and those of
 * nde_model_create_rhs_opts for bad data. */
NDE_API nde_status nde_probe_create_opts(const nde_model *model, int n_expr,
                                         const char *const *exprs, const nde_model_rhs_opts *o,
                                         nde_probe **out, nde_error *err);
/* Bind rows to series for the following evaluations (as nde_rhs_set_rows); rows start in
 * series 0.  NDE_ERR_ARG for a negative series. */
NDE_API nde_status nde_probe_set_rows(nde_probe *probe, int B, const int *series_of_row);
/* Release a probe (NULL-safe; nulls *probe). */
NDE_API void nde_probe_destroy(nde_probe **probe);
/* A probe for another thread: the same expressions, data and row map, sharing probe's compiled
 * tape, with its own workspaces and its own row map from then on (nde_probe_set_rows on either
 * leaves the other alone).  It keeps what it shares with probe alive; either may be destroyed
 * first.  Nothing is compiled again; clones may be made from several threads at once.
 * Returns NDE_OK; NDE_ERR_ARG (probe or out NULL); NDE_ERR_NOMEM.  err may be NULL. */
NDE_API nde_status nde_probe_clone(const nde_probe *probe, nde_probe **out, nde_error *err);
/* Size of expression i (1 for a scalar) and the total width of one output row. */
NDE_API int nde_probe_width(const nde_probe *probe, int i);
NDE_API int nde_probe_total_width(const nde_probe *probe);
/* Which variables each expression may depend on, structurally (values, not only derivatives:
 * comparisons and steps count; a net's every output on all of its inputs), from one pass over
 * the compiled expressions: with V = n + n_inputs, dep[e * V + j] = 1 when expression e may
 * depend on state component j (j < n) or on measured input j - n, else 0 (n_expr x V entries;
 * parameters, constants and time are not variables).  NDE_ERR_ARG (no probe, dep NULL),
 * NDE_ERR_NOMEM. */
NDE_API nde_status nde_probe_dependency(const nde_probe *probe, unsigned char *dep);
/* OUT (B x total width, row-major; expression i at the columns after those of 0..i-1) = the
 * expressions at time t, states U (B x n) and theta.  Returns the tape's value: 0, or 1 when a
 * value is not finite.  B must be in [1, max_batch] (-1 otherwise).  Allocates nothing. */
NDE_API int nde_probe_eval(nde_probe *probe, double t, int B, const double *U, const double *theta,
                   double *OUT);

/* The right-hand side at theta as a standalone C11 source file (weights and parameter values
 * embedded, only <math.h> needed), defining
 *     #define PREFIX_N_STATE n
 *     extern const char *const PREFIX_state_names[n];
 *     int PREFIX_rhs(double t, const double *u, double *du);   0 ok, 1 a value is not finite
 * prefix must be a C identifier.  *text is allocated (release with nde_free).  NDE_ERR_ARG, NDE_ERR_NOMEM;
 * NDE_ERR_UNSUPPORTED for a model with per-series parameters, measured inputs or constants
 * from data (the exported function has no series to read them from), or with a grad of an
 * expression that contains a grad (grad is exported as reverse-mode code over the expression,
 * with the networks' reverse passes; nesting it is not). */
NDE_API nde_status nde_model_export_c(const nde_model *model, const double *theta, const char *prefix,
                              char **text);

typedef enum { NDE_FORMAT_TEXT = 0, NDE_FORMAT_LATEX } nde_format;
/* The intermediates and equations of the model, one per line (LaTeX: an aligned environment),
 * with parameter names (and plain constants) replaced by their values at theta when substitute
 * is set, else followed by the parameter values.  Net calls, inputs, constants from data and
 * per-series parameters stay names.  *text is allocated (release with nde_free). */
NDE_API nde_status nde_model_format_equations(const nde_model *model, const double *theta,
                                      nde_format format, int substitute, char **text);

#ifdef __cplusplus
}
#endif
#endif
