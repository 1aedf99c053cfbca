/* Evaluation of a compiled tape on a batch of B rows: f (forward sweep), VJP (forward values,
 * or the ones f cached, then a reverse sweep accumulating adjoints) and JVP (a forward sweep
 * carrying tangents).  Elementwise kernels read operands through row and column strides, so
 * uniform values (stride 0 over rows) and scalars (stride 0 over columns) broadcast, and their
 * adjoints sum over what they were broadcast to.  Net calls run the nn layer's batched passes;
 * a NET_VJP (J^T b, made by grad) runs the reverse pass from its net call's cache in f, and its
 * VJP and JVP are one forward-over-reverse pass (nde_net_vjp_tangent).
 * Values bound per series (per-series parameters, measured inputs, constants from data) are
 * read per row through the row -> series map.  Nothing here allocates. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tape.h"

const uint8_t nde__op_kind[NDE__OP_COUNT] = {
#define NDE__OP_KIND(id, kind) NDE__K_##kind,
    NDE__OP_LIST(NDE__OP_KIND)
#undef NDE__OP_KIND
};
const char *const nde__op_names[NDE__OP_COUNT] = {
#define NDE__OP_NAME(id, kind) #id,
    NDE__OP_LIST(NDE__OP_NAME)
#undef NDE__OP_NAME
};

/* The row -> series map and what is derived from it. */
typedef struct rowmap {
  int B;         /* rows bound */
  int *series;   /* [max_batch] */
  int n_uniq;    /* distinct series among the rows */
  int *uniq;     /* [max_batch] the distinct series, in order of first row */
  int *row_uniq; /* [max_batch] index in uniq of each row */
  int *mark;     /* [n_series] scratch for set_rows, all -1 at rest */
} rowmap;

struct nde__tctx {
  nde_model *m;
  const nde__tape *T;
  nde__bound *bd;
  int max_batch, n, n_out, n_series;
  size_t n_theta_full;
  nde_net_ws **nws;
  double *unif, *uadj, *utan;
  double *vary, *vadj, *vtan;
  double *du_scratch, *zeros, *gx;
  double *dy, *dydot, *ydot; /* [max_batch x max_net_out] NET_VJP's cotangent rows */
  double *inval; /* [max_batch] input values of the distinct series */
  rowmap rows;
  int *fatal;    /* &fatal_flag: set through the const context by an instruction that cannot
                    be evaluated (an input out of span) */
  int fatal_flag;
  bool *step_used; /* [n_inputs] step inputs the tape reads (for breakpoints) */
  bool *used;      /* [n_inputs] inputs the tape reads (for the domain) */
  /* Runs [lo, lo + len) of per-row offsets of the varying arena whose adjoints the reverse
   * sweep reads or accumulates; only these are zeroed (slots of instructions removed while
   * compiling keep their place in the arena but have no adjoint). */
  size_t *zruns;
  int n_zruns;
  /* Zero cotangents are exact zeros in the reverse sweep (an observer's: nde__tctx_exact_zeros). */
  bool exact_zeros;
};
typedef struct nde__tctx tctx;

/* One operand of an instruction: values (and adjoint or tangent) with strides. */
typedef struct opnd {
  const double *p;
  double *g; /* adjoint or tangent; NULL when not needed */
  size_t rs, cs;
} opnd;

static inline size_t slot_off(const nde__slot *s, int B) {
  return (s->arena == NDE__AR_VARY ? s->off * (size_t)B : s->off) + (size_t)s->col;
}

static inline opnd operand(const nde__tape *T, int slot, int w, double *const V[], double *const G[],
                           int B) {
  const nde__slot *s = &T->slots[slot];
  size_t off = slot_off(s, B);
  opnd o;
  o.p = V[s->arena] + off;
  o.g = (G && G[s->arena] && s->active) ? G[s->arena] + off : NULL;
  o.rs = (size_t)s->rs;
  o.cs = (s->width == 1 && w > 1) ? 0 : 1;
  return o;
}

static inline double sigmoid(double s) { return 1.0 / (1.0 + exp(-s)); }

/* Heaviside with step(0) = 1 (right-continuous, like step inputs); NaN stays NaN. */
static inline double step(double x) { return x >= 0 ? 1.0 : x < 0 ? 0.0 : x; }
/* min and max select an operand: a tie selects a.  NaN in either gives NaN. */
static inline double vmin(double x, double y) { return x <= y ? x : y < x ? y : x + y; }
static inline double vmax(double x, double y) { return x >= y ? x : y > x ? y : x + y; }
/* Comparisons give 1 or 0; NaN in either gives NaN (so a non-finite state is not hidden). */
static inline double vlt(double x, double y) { return x < y ? 1.0 : x >= y ? 0.0 : x + y; }
static inline double vle(double x, double y) { return x <= y ? 1.0 : x > y ? 0.0 : x + y; }
/* ifelse: c != 0 selects a, c == 0 selects b, NaN c gives NaN. */
static inline double vsel(double c, double a, double b) { return c == 0 ? b : c == c ? a : c; }

static inline double ipow(double x, int n) {
  unsigned k = (unsigned)(n < 0 ? -n : n);
  double r = 1.0, b = x;
  while (k) {
    if (k & 1u) r *= b;
    b *= b;
    k >>= 1;
  }
  return n < 0 ? 1.0 / r : r;
}

/* Value and derivative of a unary elementwise op at a. */
static inline double unary(nde__op op, int n, double a, double *d) {
  switch (op) {
    case NDE__OP_COPY: *d = 1; return a;
    case NDE__OP_NEG: *d = -1; return -a;
    case NDE__OP_EXP: { double e = exp(a); *d = e; return e; }
    case NDE__OP_LOG: *d = 1.0 / a; return log(a);
    case NDE__OP_SQRT: { double s = sqrt(a); *d = 0.5 / s; return s; }
    case NDE__OP_SIN: *d = cos(a); return sin(a);
    case NDE__OP_COS: *d = -sin(a); return cos(a);
    case NDE__OP_TANH: { double th = tanh(a); *d = 1.0 - th * th; return th; }
    /* abs: the derivative at the kink 0 is taken as 0 (a subgradient). */
    case NDE__OP_ABS: *d = a > 0 ? 1.0 : a < 0 ? -1.0 : 0.0; return fabs(a);
    case NDE__OP_POWI: *d = n * ipow(a, n - 1); return ipow(a, n);
    /* step: the derivative is 0 everywhere (the jump at 0 has no derivative). */
    case NDE__OP_STEP: *d = 0; return step(a);
    default: *d = 0; return 0;
  }
}

/* Value and partial derivatives of a binary elementwise op. */
static inline double binary(nde__op op, double a, double b, double *da, double *db) {
  switch (op) {
    case NDE__OP_ADD: *da = 1; *db = 1; return a + b;
    case NDE__OP_SUB: *da = 1; *db = -1; return a - b;
    case NDE__OP_MUL: *da = b; *db = a; return a * b;
    case NDE__OP_DIV: { double q = a / b; *da = 1.0 / b; *db = -q / b; return q; }
    case NDE__OP_POW: {
      double p = pow(a, b);
      *da = b * pow(a, b - 1.0);
      /* d/db a^b = a^b log a; at a = 0 the limit for b > 0 is 0. */
      *db = a == 0.0 ? 0.0 : p * log(a);
      return p;
    }
    case NDE__OP_MIN: *da = a <= b; *db = 1.0 - *da; return vmin(a, b);
    case NDE__OP_MAX: *da = a >= b; *db = 1.0 - *da; return vmax(a, b);
    case NDE__OP_LT: *da = *db = 0; return vlt(a, b);
    case NDE__OP_LE: *da = *db = 0; return vle(a, b);
    case NDE__OP_GT: *da = *db = 0; return vlt(b, a);
    case NDE__OP_GE: *da = *db = 0; return vle(b, a);
    default: *da = *db = 0; return 0;
  }
}

static inline bool is_unary(nde__op op) {
  return nde__op_kind[op] == NDE__K_UNARY || nde__op_kind[op] == NDE__K_UNARY0;
}
static inline bool is_binary(nde__op op) {
  return nde__op_kind[op] == NDE__K_BINARY || nde__op_kind[op] == NDE__K_BINARY0;
}

/* Parameter value and d value / d theta_k. */
static inline double param_value(const nde__instr *in, double s, double *d) {
  switch ((nde__op)in->op) {
    case NDE__OP_PARAM_EXP:
    case NDE__OP_SPARAM_EXP: { double v = exp(s); *d = v; return v; }
    case NDE__OP_PARAM_LOGIT:
    case NDE__OP_SPARAM_LOGIT: {
      double g = sigmoid(s);
      *d = (in->hi - in->lo) * g * (1.0 - g);
      return in->lo + (in->hi - in->lo) * g;
    }
    default: *d = 1; return s;
  }
}

/* The R rows of slot s as one contiguous R x width block: its own storage when it is one,
 * else copied (a uniform slot repeated, a column view gathered) into scratch. */
static const double *block_rows(const nde__tape *T, int s, double *const V[], int R,
                                double *scratch) {
  /* R is the batch B: NET_VJP's output always varies per row. */
  const nde__slot *sl = &T->slots[s];
  const double *p = V[sl->arena] + slot_off(sl, R);
  const int w = sl->width;
  if (sl->varying && sl->rs == w) return p;
  for (int r = 0; r < R; r++)
    for (int c = 0; c < w; c++) scratch[(size_t)r * w + c] = p[(size_t)r * sl->rs + c];
  return scratch;
}

/* MATMUL: the product of a (r x c) and b (c x k) per row, either stored transposed; dims and
 * accessors.  A(i, l) and X(l, j) index the logical factors. */
typedef struct mm {
  int r, c, k;
  bool ta, tb;
} mm;

static inline mm mm_of(const nde__tape *T, const nde__instr *in) {
  mm d;
  d.r = in->iarg;
  d.c = in->n_ops;
  d.k = T->slots[in->out].width / in->iarg;
  d.ta = (in->flags & NDE__IF_TA) != 0;
  d.tb = (in->flags & NDE__IF_TB) != 0;
  return d;
}
static inline size_t mm_a(const mm *d, int i, int l) {
  return d->ta ? (size_t)l * d->r + i : (size_t)i * d->c + l;
}
static inline size_t mm_x(const mm *d, int l, int j) {
  return d->tb ? (size_t)j * d->c + l : (size_t)l * d->k + j;
}

/* ---- forward ---- */

static void fwd(const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[], int B,
                double t, const double *theta, bool keep_cache) {
  const nde__slot *so = &T->slots[in->out];
  const int R = so->varying ? B : 1, w = so->width;
  double *O = V[so->arena] + slot_off(so, B);
  const size_t ors = (size_t)so->rs;
  nde__op op = (nde__op)in->op;
  if (is_unary(op)) {
    opnd a = operand(T, in->a, w, V, NULL, B);
    const int n = in->iarg;
    /* The switch is outside the loops; w == 1 (a scalar per row) is one loop over rows. */
#define EW1(EXPR)                                                              \
  do {                                                                         \
    if (w == 1) {                                                              \
      for (int r = 0; r < R; r++) {                                            \
        const double x = a.p[r * a.rs];                                        \
        O[r * ors] = (EXPR);                                                   \
      }                                                                        \
    } else {                                                                   \
      for (int r = 0; r < R; r++)                                              \
        for (int c = 0; c < w; c++) {                                          \
          const double x = a.p[r * a.rs + c * a.cs];                           \
          O[r * ors + c] = (EXPR);                                             \
        }                                                                      \
    }                                                                          \
  } while (0)
    switch (op) {
      case NDE__OP_COPY: EW1(x); break;
      case NDE__OP_NEG: EW1(-x); break;
      case NDE__OP_EXP: EW1(exp(x)); break;
      case NDE__OP_LOG: EW1(log(x)); break;
      case NDE__OP_SQRT: EW1(sqrt(x)); break;
      case NDE__OP_SIN: EW1(sin(x)); break;
      case NDE__OP_COS: EW1(cos(x)); break;
      case NDE__OP_TANH: EW1(tanh(x)); break;
      case NDE__OP_ABS: EW1(fabs(x)); break;
      case NDE__OP_POWI: EW1(n == 2 ? x * x : ipow(x, n)); break;
      case NDE__OP_STEP: EW1(step(x)); break;
      case NDE__OP_SIGN: EW1(x > 0 ? 1.0 : x < 0 ? -1.0 : x); break;
      default: break;
    }
#undef EW1
    return;
  }
  if (is_binary(op)) {
    opnd a = operand(T, in->a, w, V, NULL, B), b = operand(T, in->b, w, V, NULL, B);
#define EW2(EXPR)                                                              \
  do {                                                                         \
    if (w == 1) {                                                              \
      for (int r = 0; r < R; r++) {                                            \
        const double x = a.p[r * a.rs], y = b.p[r * b.rs];                     \
        O[r * ors] = (EXPR);                                                   \
      }                                                                        \
    } else {                                                                   \
      for (int r = 0; r < R; r++)                                              \
        for (int c = 0; c < w; c++) {                                          \
          const double x = a.p[r * a.rs + c * a.cs], y = b.p[r * b.rs + c * b.cs]; \
          O[r * ors + c] = (EXPR);                                             \
        }                                                                      \
    }                                                                          \
  } while (0)
    switch (op) {
      case NDE__OP_ADD: EW2(x + y); break;
      case NDE__OP_SUB: EW2(x - y); break;
      case NDE__OP_MUL: EW2(x * y); break;
      case NDE__OP_DIV: EW2(x / y); break;
      case NDE__OP_POW: EW2(pow(x, y)); break;
      case NDE__OP_MIN: EW2(vmin(x, y)); break;
      case NDE__OP_MAX: EW2(vmax(x, y)); break;
      case NDE__OP_LT: EW2(vlt(x, y)); break;
      case NDE__OP_LE: EW2(vle(x, y)); break;
      case NDE__OP_GT: EW2(vlt(y, x)); break;
      case NDE__OP_GE: EW2(vle(y, x)); break;
      default: break;
    }
#undef EW2
    return;
  }
  switch (op) {
    case NDE__OP_MULADD: {
      opnd a = operand(T, in->a, w, V, NULL, B), b = operand(T, in->b, w, V, NULL, B);
      opnd c = operand(T, in->iarg, w, V, NULL, B);
      const double sp = in->lo, sc = in->hi;
      if (w == 1) {
        for (int r = 0; r < R; r++) O[r * ors] = sp * a.p[r * a.rs] * b.p[r * b.rs] + sc * c.p[r * c.rs];
      } else {
        for (int r = 0; r < R; r++)
          for (int k = 0; k < w; k++)
            O[r * ors + k] = sp * a.p[r * a.rs + k * a.cs] * b.p[r * b.rs + k * b.cs] +
                             sc * c.p[r * c.rs + k * c.cs];
      }
      return;
    }
    case NDE__OP_IFELSE: {
      opnd a = operand(T, in->a, w, V, NULL, B), b = operand(T, in->b, w, V, NULL, B);
      opnd c = operand(T, in->iarg, w, V, NULL, B);
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++)
          O[r * ors + k] = vsel(c.p[r * c.rs + k * c.cs], a.p[r * a.rs + k * a.cs], b.p[r * b.rs + k * b.cs]);
      return;
    }
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      O[0] = param_value(in, theta[in->iarg], &d);
      return;
    }
    case NDE__OP_SPARAM:
    case NDE__OP_SPARAM_EXP:
    case NDE__OP_SPARAM_LOGIT: {
      const double *block = theta + X->m->n_theta + in->iarg;
      const size_t stride = (size_t)X->m->n_sp;
      double d;
      for (int r = 0; r < R; r++)
        O[r * ors] = param_value(in, block[(size_t)X->rows.series[r] * stride], &d);
      return;
    }
    case NDE__OP_INPUT: {
      /* Interpolate once per distinct series, then spread over the rows. */
      const nde__curve *curves = X->bd->curves + in->iarg;
      const size_t stride = (size_t)X->bd->n_inputs;
      for (int q = 0; q < X->rows.n_uniq; q++)
        if (nde__curve_eval(&curves[(size_t)X->rows.uniq[q] * stride], t, &X->inval[q]) != 0)
          *X->fatal = 1;
      for (int r = 0; r < R; r++) O[r * ors] = X->inval[X->rows.row_uniq[r]];
      return;
    }
    case NDE__OP_DCONST: {
      const double *c = X->bd->consts + in->iarg;
      const size_t stride = (size_t)X->bd->n_consts;
      for (int r = 0; r < R; r++) O[r * ors] = c[(size_t)X->rows.series[r] * stride];
      return;
    }
    case NDE__OP_TIME: O[0] = t; return;
    case NDE__OP_CONCAT: {
      int col = 0;
      for (int k = 0; k < in->n_ops; k++) {
        int sk = T->concat_ops[in->iarg + k];
        const nde__slot *s = &T->slots[sk];
        const double *p = V[s->arena] + slot_off(s, B);
        for (int r = 0; r < R; r++)
          for (int c = 0; c < s->width; c++) O[r * ors + col + c] = p[r * (size_t)s->rs + c];
        col += s->width;
      }
      return;
    }
    case NDE__OP_NET: {
      const nde__slot *si = &T->slots[in->a];
      const nde__netm *nm = &X->m->nets[in->iarg];
      double *cache = keep_cache ? V[so->arena] + (so->varying ? in->cache_off * (size_t)B : in->cache_off) : NULL;
      nde_net_forward(nm->net, theta + nm->offset, R, V[si->arena] + slot_off(si, B), O, cache,
                      X->nws[in->iarg]);
      return;
    }
    case NDE__OP_SUM: {
      const nde__slot *sa = &T->slots[in->a];
      opnd a = operand(T, in->a, sa->width, V, NULL, B);
      for (int r = 0; r < R; r++) {
        double acc = 0;
        for (int c = 0; c < sa->width; c++) acc += a.p[r * a.rs + c];
        O[r * ors] = acc;
      }
      return;
    }
    case NDE__OP_MATMUL: {
      const mm d = mm_of(T, in);
      opnd a = operand(T, in->a, w, V, NULL, B), b = operand(T, in->b, w, V, NULL, B);
      for (int r = 0; r < R; r++) {
        const double *pa = a.p + r * a.rs, *pb = b.p + r * b.rs;
        for (int i = 0; i < d.r; i++)
          for (int j = 0; j < d.k; j++) {
            double acc = 0;
            for (int l = 0; l < d.c; l++) acc += pa[mm_a(&d, i, l)] * pb[mm_x(&d, l, j)];
            O[r * ors + (size_t)i * d.k + j] = acc;
          }
      }
      return;
    }
    case NDE__OP_NET_VJP: {
      /* J^T dY from the forward cache of the net call at the same input (written by this
       * sweep when keep_cache is set; recomputed otherwise). */
      const nde__slot *si = &T->slots[in->a];
      const nde__netm *nm = &X->m->nets[in->iarg];
      const double *cache = keep_cache ? V[NDE__AR_VARY] + in->cache_off * (size_t)B : NULL;
      const double *dY = block_rows(T, in->b, V, R, X->dy);
      nde_net_vjp(nm->net, theta + nm->offset, R, V[si->arena] + slot_off(si, B), dY, cache, O,
                  NULL, X->nws[in->iarg]);
      return;
    }
    default: return;
  }
}

void nde__exec_const(const nde__tape *T, const nde__instr *in, double *const bases[NDE__AR_COUNT]) {
  fwd(NULL, T, in, bases, 1, 0.0, NULL, false);
}

/* ---- reverse ---- */

/* g (the adjoint of slot s, with its strides) += the contiguous R x width block x; a uniform
 * slot (row stride 0) receives the sum over rows. */
static void add_rows(int R, const nde__slot *s, const double *x, double *g) {
  const int w = s->width;
  if (s->varying && s->rs == w) {
    const size_t len = (size_t)R * (size_t)w;
    for (size_t q = 0; q < len; q++) g[q] += x[q];
    return;
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < w; c++) g[(size_t)r * s->rs + c] += x[(size_t)r * w + c];
}

/* The adjoint contribution g * d, or an exact 0 for g = 0 when ez (d may then be NaN or inf: an
 * unmeasured observable outside its domain, whose cotangent is 0, passes nothing back). */
#define GM(g, d) (ez && (g) == 0.0 ? 0.0 : (g) * (d))

/* Net call `in` in the reverse sweep with exact zeros, when a row with a zero cotangent has an
 * input that is not finite (its activations are then NaN, and the batched pass would multiply
 * them by the zero): each row with a cotangent alone (its forward recomputed), the zero rows'
 * input adjoints 0.  Returns 0 when there is no such row (the batched pass runs: with finite
 * inputs and weights the zero rows add exact zeros). */
static int net_rows_vjp(const tctx *X, const nde__tape *T, const nde__instr *in,
                        double *const V[], const double *GO, size_t ors, int R, int B,
                        const double *theta, double *gin, double *gtheta) {
  const nde__slot *si = &T->slots[in->a], *so = &T->slots[in->out];
  const int w = so->width, win = si->width;
  const double *xin = V[si->arena] + slot_off(si, B);
  int poisoned = 0;
  for (int r = 0; r < R && !poisoned; r++) {
    int z = 1;
    for (int c = 0; c < w && z; c++) z = GO[r * ors + c] == 0.0;
    for (int c = 0; c < win && z && !poisoned; c++) poisoned = !isfinite(xin[r * si->rs + c]);
  }
  if (!poisoned) return 0;
  const nde__netm *nm = &X->m->nets[in->iarg];
  for (int r = 0; r < R; r++) {
    double *gx = X->gx + (size_t)r * (size_t)win;
    int z = 1;
    for (int c = 0; c < w && z; c++) z = GO[r * ors + c] == 0.0;
    if (z) {
      memset(gx, 0, (size_t)win * sizeof *gx);
      continue;
    }
    nde_net_vjp(nm->net, theta + nm->offset, 1, xin + (size_t)r * si->rs, GO + r * ors, NULL,
                gin ? gx : NULL, gtheta ? gtheta + nm->offset : NULL, X->nws[in->iarg]);
  }
  if (gin) add_rows(R, si, X->gx, gin);
  return 1;
}

static NDE__ALWAYS_INLINE void rev_body(
    const bool ez, const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[],
    double *const G[], int B, const double *theta, double *gtheta) {
  const nde__slot *so = &T->slots[in->out];
  const int R = so->varying ? B : 1, w = so->width;
  const size_t off = slot_off(so, B), ors = (size_t)so->rs;
  const double *GO = G[so->arena] + off;
  nde__op op = (nde__op)in->op;
  if (is_unary(op)) {
    opnd a = operand(T, in->a, w, V, G, B);
    if (!a.g) return;
    for (int r = 0; r < R; r++) {
      const double *pa = a.p + r * a.rs, *go = GO + r * ors;
      double *ga = a.g + r * a.rs;
      if (op == NDE__OP_COPY) {
        for (int c = 0; c < w; c++) ga[c * a.cs] += go[c];
      } else if (op == NDE__OP_NEG) {
        for (int c = 0; c < w; c++) ga[c * a.cs] -= go[c];
      } else {
        for (int c = 0; c < w; c++) {
          double d;
          (void)unary(op, in->iarg, pa[c * a.cs], &d);
          ga[c * a.cs] += GM(go[c], d);
        }
      }
    }
    return;
  }
  if (is_binary(op)) {
    opnd a = operand(T, in->a, w, V, G, B), b = operand(T, in->b, w, V, G, B);
    if (w == 1 && (op == NDE__OP_ADD || op == NDE__OP_SUB || op == NDE__OP_MUL)) {
      /* One loop over rows for the common scalar case. */
      const double sb = op == NDE__OP_SUB ? -1.0 : 1.0;
      const bool mul = op == NDE__OP_MUL;
      if (a.g) {
        if (mul) for (int r = 0; r < R; r++) a.g[r * a.rs] += GM(GO[r * ors], b.p[r * b.rs]);
        else for (int r = 0; r < R; r++) a.g[r * a.rs] += GO[r * ors];
      }
      if (b.g) {
        if (mul) for (int r = 0; r < R; r++) b.g[r * b.rs] += GM(GO[r * ors], a.p[r * a.rs]);
        else for (int r = 0; r < R; r++) b.g[r * b.rs] += sb * GO[r * ors];
      }
      return;
    }
    for (int r = 0; r < R; r++) {
      const double *pa = a.p + r * a.rs, *pb = b.p + r * b.rs, *go = GO + r * ors;
      double *ga = a.g ? a.g + r * a.rs : NULL, *gb = b.g ? b.g + r * b.rs : NULL;
      if (op == NDE__OP_ADD || op == NDE__OP_SUB) {
        double sb = op == NDE__OP_ADD ? 1.0 : -1.0;
        if (ga) for (int c = 0; c < w; c++) ga[c * a.cs] += go[c];
        if (gb) for (int c = 0; c < w; c++) gb[c * b.cs] += sb * go[c];
      } else if (op == NDE__OP_MUL) {
        if (ga) for (int c = 0; c < w; c++) ga[c * a.cs] += GM(go[c], pb[c * b.cs]);
        if (gb) for (int c = 0; c < w; c++) gb[c * b.cs] += GM(go[c], pa[c * a.cs]);
      } else {
        for (int c = 0; c < w; c++) {
          double da, db;
          (void)binary(op, pa[c * a.cs], pb[c * b.cs], &da, &db);
          if (ga) ga[c * a.cs] += GM(go[c], da);
          if (gb) gb[c * b.cs] += GM(go[c], db);
        }
      }
    }
    return;
  }
  switch (op) {
    case NDE__OP_MULADD: {
      opnd a = operand(T, in->a, w, V, G, B), b = operand(T, in->b, w, V, G, B);
      opnd c = operand(T, in->iarg, w, V, G, B);
      const double sp = in->lo, sc = in->hi;
      if (w == 1) {
        /* The common scalar case (alpha*x + u[1]): one tight loop per operand with an adjoint. */
        if (a.g) for (int r = 0; r < R; r++) a.g[r * a.rs] += GM(sp * GO[r * ors], b.p[r * b.rs]);
        if (b.g) for (int r = 0; r < R; r++) b.g[r * b.rs] += GM(sp * GO[r * ors], a.p[r * a.rs]);
        if (c.g) for (int r = 0; r < R; r++) c.g[r * c.rs] += sc * GO[r * ors];
        return;
      }
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++) {
          const double g = GO[r * ors + k];
          const size_t ia = r * a.rs + k * a.cs, ib = r * b.rs + k * b.cs;
          if (a.g) a.g[ia] += GM(sp * g, b.p[ib]);
          if (b.g) b.g[ib] += GM(sp * g, a.p[ia]);
          if (c.g) c.g[r * c.rs + k * c.cs] += sc * g;
        }
      return;
    }
    case NDE__OP_IFELSE: {
      opnd a = operand(T, in->a, w, V, G, B), b = operand(T, in->b, w, V, G, B);
      opnd c = operand(T, in->iarg, w, V, NULL, B);
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++) {
          const double cv = c.p[r * c.rs + k * c.cs], g = GO[r * ors + k];
          /* The condition has no derivative; NaN conditions pass none either way. */
          if (cv != 0 && cv == cv) {
            if (a.g) a.g[r * a.rs + k * a.cs] += g;
          } else if (cv == 0) {
            if (b.g) b.g[r * b.rs + k * b.cs] += g;
          }
        }
      return;
    }
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      if (!gtheta) return;
      (void)param_value(in, theta[in->iarg], &d);
      gtheta[in->iarg] += GM(GO[0], d);
      return;
    }
    case NDE__OP_SPARAM:
    case NDE__OP_SPARAM_EXP:
    case NDE__OP_SPARAM_LOGIT: {
      /* Each row's adjoint goes to its own series' entry. */
      if (!gtheta) return;
      const size_t base = X->m->n_theta + (size_t)in->iarg, stride = (size_t)X->m->n_sp;
      for (int r = 0; r < R; r++) {
        const size_t q = base + (size_t)X->rows.series[r] * stride;
        double d;
        (void)param_value(in, theta[q], &d);
        gtheta[q] += GM(GO[r * ors], d);
      }
      return;
    }
    case NDE__OP_CONCAT: {
      int col = 0;
      for (int k = 0; k < in->n_ops; k++) {
        const nde__slot *s = &T->slots[T->concat_ops[in->iarg + k]];
        if (s->active && G[s->arena]) {
          double *g = G[s->arena] + slot_off(s, B);
          for (int r = 0; r < R; r++)
            for (int c = 0; c < s->width; c++) g[r * (size_t)s->rs + c] += GO[r * ors + col + c];
        }
        col += s->width;
      }
      return;
    }
    case NDE__OP_SUM: {
      const nde__slot *sa = &T->slots[in->a];
      opnd a = operand(T, in->a, sa->width, V, G, B);
      if (!a.g) return;
      for (int r = 0; r < R; r++)
        for (int c = 0; c < sa->width; c++) a.g[r * a.rs + c] += GO[r * ors];
      return;
    }
    case NDE__OP_MATMUL: {
      /* out = A X: A's adjoint G X^T, X's A^T G (summed over rows when uniform). */
      const mm d = mm_of(T, in);
      opnd a = operand(T, in->a, w, V, G, B), b = operand(T, in->b, w, V, G, B);
      for (int r = 0; r < R; r++) {
        const double *pa = a.p + r * a.rs, *pb = b.p + r * b.rs, *go = GO + r * ors;
        double *ga = a.g ? a.g + r * a.rs : NULL, *gb = b.g ? b.g + r * b.rs : NULL;
        for (int i = 0; i < d.r; i++)
          for (int j = 0; j < d.k; j++) {
            const double g = go[(size_t)i * d.k + j];
            for (int l = 0; l < d.c; l++) {
              if (ga) ga[mm_a(&d, i, l)] += GM(g, pb[mm_x(&d, l, j)]);
              if (gb) gb[mm_x(&d, l, j)] += GM(g, pa[mm_a(&d, i, l)]);
            }
          }
      }
      return;
    }
    case NDE__OP_NET_VJP: {
      /* out = J^T dY.  With the cotangent w = GO of out, one forward-over-reverse pass along
       * Xdot = w gives the input's adjoint Hess_X(dY . N) w, theta's grad_theta(w . J^T dY)
       * and dY's J w. */
      const nde__slot *si = &T->slots[in->a], *sb = &T->slots[in->b];
      const nde__netm *nm = &X->m->nets[in->iarg];
      double *gin = (si->active && G[si->arena]) ? G[si->arena] + slot_off(si, B) : NULL;
      double *gdy = (sb->active && G[sb->arena]) ? G[sb->arena] + slot_off(sb, B) : NULL;
      if (!gin && !gdy && !gtheta) return;
      const double *dY = block_rows(T, in->b, V, B, X->dy);
      if (nde_net_vjp_tangent(nm->net, theta + nm->offset, R, V[si->arena] + slot_off(si, B), GO,
                              NULL, dY, NULL, NULL, gdy ? X->ydot : NULL, NULL, NULL,
                              gin ? X->gx : NULL, gtheta ? gtheta + nm->offset : NULL,
                              X->nws[in->iarg]) != NDE_OK) {
        *X->fatal = 1;
        return;
      }
      if (gin) add_rows(R, si, X->gx, gin);
      if (gdy) add_rows(R, sb, X->ydot, gdy);
      return;
    }
    case NDE__OP_NET: {
      const nde__slot *si = &T->slots[in->a];
      const nde__netm *nm = &X->m->nets[in->iarg];
      double *gin = (si->active && G[si->arena]) ? G[si->arena] + slot_off(si, B) : NULL;
      if ((in->flags & NDE__IF_CACHE_ONLY) || (!gin && !gtheta)) return;
      if (ez && net_rows_vjp(X, T, in, V, GO, ors, R, B, theta, gin, gtheta)) return;
      const double *cache = V[so->arena] + (so->varying ? in->cache_off * (size_t)B : in->cache_off);
      nde_net_vjp(nm->net, theta + nm->offset, R, V[si->arena] + slot_off(si, B), GO, cache,
                  gin ? X->gx : NULL, gtheta ? gtheta + nm->offset : NULL, X->nws[in->iarg]);
      if (gin) {
        const int win = si->width;
        const double *gx = X->gx;
        if (si->rs == win) {
          /* A whole block (the state U itself): one flat loop. */
          const size_t len = (size_t)R * (size_t)win;
          for (size_t q = 0; q < len; q++) gin[q] += gx[q];
        } else {
          for (int r = 0; r < R; r++)
            for (int c = 0; c < win; c++) gin[r * (size_t)si->rs + c] += gx[r * win + c];
        }
      }
      return;
    }
    default: return;
  }
}

static void rev(const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[],
                double *const G[], int B, const double *theta, double *gtheta) {
  if (X->exact_zeros)
    rev_body(true, X, T, in, V, G, B, theta, gtheta);
  else
    rev_body(false, X, T, in, V, G, B, theta, gtheta);
}
#undef GM

/* ---- tangent (forward mode): values and tangents together ---- */

static void tan_step(const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[],
                     double *const D[], int B, double t, const double *theta, const double *vtheta) {
  const nde__slot *so = &T->slots[in->out];
  const int R = so->varying ? B : 1, w = so->width;
  const size_t off = slot_off(so, B), ors = (size_t)so->rs;
  double *O = V[so->arena] + off, *DO = D[so->arena] + off;
  nde__op op = (nde__op)in->op;
  /* A net call that only fills a cache for the NET_VJP after it is not needed here: the
   * NET_VJP's forward-over-reverse pass makes its own forward sweep. */
  if (in->flags & NDE__IF_CACHE_ONLY) return;
  if (op == NDE__OP_NET_VJP) {
    /* The value J^T dY and its tangent along (X', theta', dY') in one pass. */
    const nde__slot *si = &T->slots[in->a], *sb = &T->slots[in->b];
    const nde__netm *nm = &X->m->nets[in->iarg];
    const size_t ioff = slot_off(si, B);
    const double *dY = block_rows(T, in->b, V, B, X->dy);
    const double *dYdot = sb->active ? block_rows(T, in->b, D, B, X->dydot) : NULL;
    if (nde_net_vjp_tangent(nm->net, theta + nm->offset, R, V[si->arena] + ioff,
                            si->active ? D[si->arena] + ioff : NULL,
                            vtheta ? vtheta + nm->offset : NULL, dY, dYdot, NULL, NULL, O, NULL,
                            DO, NULL, X->nws[in->iarg]) != NDE_OK)
      *X->fatal = 1;
    return;
  }
  fwd(X, T, in, V, B, t, theta, false);
  if (!so->active) return;
  if (is_unary(op)) {
    opnd a = operand(T, in->a, w, V, D, B);
    for (int r = 0; r < R; r++) {
      const double *pa = a.p + r * a.rs, *da_ = a.g ? a.g + r * a.rs : NULL;
      double *dout = DO + r * ors;
      for (int c = 0; c < w; c++) {
        double d;
        (void)unary(op, in->iarg, pa[c * a.cs], &d);
        dout[c] = da_ ? d * da_[c * a.cs] : 0.0;
      }
    }
    return;
  }
  if (is_binary(op)) {
    opnd a = operand(T, in->a, w, V, D, B), b = operand(T, in->b, w, V, D, B);
    for (int r = 0; r < R; r++) {
      const double *pa = a.p + r * a.rs, *pb = b.p + r * b.rs;
      const double *ta = a.g ? a.g + r * a.rs : NULL, *tb = b.g ? b.g + r * b.rs : NULL;
      double *dout = DO + r * ors;
      for (int c = 0; c < w; c++) {
        double da, db;
        (void)binary(op, pa[c * a.cs], pb[c * b.cs], &da, &db);
        dout[c] = (ta ? da * ta[c * a.cs] : 0.0) + (tb ? db * tb[c * b.cs] : 0.0);
      }
    }
    return;
  }
  switch (op) {
    case NDE__OP_MULADD: {
      opnd a = operand(T, in->a, w, V, D, B), b = operand(T, in->b, w, V, D, B);
      opnd c = operand(T, in->iarg, w, V, D, B);
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++) {
          const size_t ia = r * a.rs + k * a.cs, ib = r * b.rs + k * b.cs, ic = r * c.rs + k * c.cs;
          DO[r * ors + k] = in->lo * ((a.g ? a.g[ia] * b.p[ib] : 0.0) + (b.g ? a.p[ia] * b.g[ib] : 0.0)) +
                            in->hi * (c.g ? c.g[ic] : 0.0);
        }
      return;
    }
    case NDE__OP_IFELSE: {
      opnd a = operand(T, in->a, w, V, D, B), b = operand(T, in->b, w, V, D, B);
      opnd c = operand(T, in->iarg, w, V, NULL, B);
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++) {
          const double cv = c.p[r * c.rs + k * c.cs];
          const double ta = a.g ? a.g[r * a.rs + k * a.cs] : 0.0, tb = b.g ? b.g[r * b.rs + k * b.cs] : 0.0;
          DO[r * ors + k] = vsel(cv, ta, tb);
        }
      return;
    }
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      (void)param_value(in, theta[in->iarg], &d);
      DO[0] = vtheta ? vtheta[in->iarg] * d : 0.0;
      return;
    }
    case NDE__OP_SPARAM:
    case NDE__OP_SPARAM_EXP:
    case NDE__OP_SPARAM_LOGIT: {
      const size_t base = X->m->n_theta + (size_t)in->iarg, stride = (size_t)X->m->n_sp;
      for (int r = 0; r < R; r++) {
        const size_t q = base + (size_t)X->rows.series[r] * stride;
        double d;
        (void)param_value(in, theta[q], &d);
        DO[r * ors] = vtheta ? vtheta[q] * d : 0.0;
      }
      return;
    }
    case NDE__OP_CONCAT: {
      int col = 0;
      for (int k = 0; k < in->n_ops; k++) {
        const nde__slot *s = &T->slots[T->concat_ops[in->iarg + k]];
        const double *p = s->active ? D[s->arena] + slot_off(s, B) : NULL;
        for (int r = 0; r < R; r++)
          for (int c = 0; c < s->width; c++) DO[r * ors + col + c] = p ? p[r * (size_t)s->rs + c] : 0.0;
        col += s->width;
      }
      return;
    }
    case NDE__OP_SUM: {
      const nde__slot *sa = &T->slots[in->a];
      opnd a = operand(T, in->a, sa->width, V, D, B);
      for (int r = 0; r < R; r++) {
        double acc = 0;
        if (a.g)
          for (int c = 0; c < sa->width; c++) acc += a.g[r * a.rs + c];
        DO[r * ors] = acc;
      }
      return;
    }
    case NDE__OP_MATMUL: {
      const mm d = mm_of(T, in);
      opnd a = operand(T, in->a, w, V, D, B), b = operand(T, in->b, w, V, D, B);
      for (int r = 0; r < R; r++) {
        const double *pa = a.p + r * a.rs, *pb = b.p + r * b.rs;
        const double *ta = a.g ? a.g + r * a.rs : NULL, *tb = b.g ? b.g + r * b.rs : NULL;
        for (int i = 0; i < d.r; i++)
          for (int j = 0; j < d.k; j++) {
            double acc = 0;
            for (int l = 0; l < d.c; l++) {
              if (ta) acc += ta[mm_a(&d, i, l)] * pb[mm_x(&d, l, j)];
              if (tb) acc += pa[mm_a(&d, i, l)] * tb[mm_x(&d, l, j)];
            }
            DO[r * ors + (size_t)i * d.k + j] = acc;
          }
      }
      return;
    }
    case NDE__OP_NET: {
      const nde__slot *si = &T->slots[in->a];
      const nde__netm *nm = &X->m->nets[in->iarg];
      size_t ioff = slot_off(si, B);
      nde_net_jvp(nm->net, theta + nm->offset, R, V[si->arena] + ioff,
                  si->active ? D[si->arena] + ioff : NULL, vtheta ? vtheta + nm->offset : NULL, DO,
                  X->nws[in->iarg]);
      (void)O;
      return;
    }
    default: return;
  }
}

/* ---- the callbacks ---- */

/* 0 * inf and 0 * nan are nan, so the sum is 0 exactly when every x is finite.  Eight
 * independent sums: one sum is a chain of n dependent additions, which at B = 64 cost as much
 * as the rest of the tape's own work (the compiler may not reassociate it). */
static int all_finite(size_t n, const double *x) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0}, r = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) s[j] += x[i + j] * 0.0;
  for (; i < n; i++) r += x[i] * 0.0;
  for (int j = 0; j < 8; j++) r += s[j];
  return r == 0.0;
}

/* Whether B rows can be evaluated: within the workspaces and the bound row map. */
static inline bool batch_ok(const tctx *X, int B) {
  return B >= 1 && B <= X->max_batch && B <= X->rows.B;
}

int nde__tctx_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                double *cache) {
  tctx *X = ctx;
  const nde__tape *T = X->T;
  if (!batch_ok(X, B)) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, cache ? cache : X->vary, (double *)U, dU};
  X->fatal_flag = 0;
  for (int k = 0; k < T->n_code; k++) fwd(X, T, &T->code[k], V, B, t, theta, true);
  if (X->fatal_flag) return -1;
  return all_finite((size_t)B * X->n_out, dU) ? 0 : 1;
}

int nde__tctx_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *L, const double *cache, double *gU, double *gtheta) {
  tctx *X = ctx;
  const nde__tape *T = X->T;
  if (!batch_ok(X, B)) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, cache ? (double *)cache : X->vary, (double *)U, X->du_scratch};
  int k0 = cache ? T->n_unif_code : T->n_code;
  X->fatal_flag = 0;
  for (int k = 0; k < k0; k++)
    if (!(T->code[k].flags & NDE__IF_NOT_FOR_VJP)) fwd(X, T, &T->code[k], V, B, t, theta, true);
  if (X->fatal_flag) return -1;
  for (int k = 0; k < X->n_zruns; k++)
    memset(X->vadj + X->zruns[2 * k] * (size_t)B, 0, X->zruns[2 * k + 1] * (size_t)B * sizeof(double));
  if (gtheta) memset(X->uadj, 0, T->unif_size * sizeof(double));
  double *G[NDE__AR_COUNT] = {gtheta ? X->uadj : NULL, X->vadj, gU, (double *)L};
  for (int k = T->n_code - 1; k >= T->n_unif_code; k--) {
    const nde__instr *in = &T->code[k];
    if (T->slots[in->out].active) rev(X, T, in, V, G, B, theta, gtheta);
  }
  if (gtheta)
    for (int k = T->n_unif_code - 1; k >= 0; k--) {
      const nde__instr *in = &T->code[k];
      if (T->slots[in->out].active) rev(X, T, in, V, G, B, theta, gtheta);
    }
  if (gU && !all_finite((size_t)B * X->n, gU)) return 1;
  if (gtheta) {
    const nde_model *m = X->m;
    for (int i = 0; i < m->n_params; i++) {
      const nde_model_param_info *p = &m->params[i].info;
      if (!p->learnable) continue;
      if (!p->per_series) {
        if (!isfinite(gtheta[p->offset])) return 1;
        continue;
      }
      for (int q = 0; q < X->rows.n_uniq; q++)
        if (!isfinite(gtheta[m->n_theta + (size_t)X->rows.uniq[q] * (size_t)m->n_sp + p->offset]))
          return 1;
    }
  }
  return 0;
}

int nde__tctx_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                  const double *V_, const double *Vtheta, double *JV) {
  tctx *X = ctx;
  const nde__tape *T = X->T;
  if (!batch_ok(X, B)) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, X->vary, (double *)U, X->du_scratch};
  double *D[NDE__AR_COUNT] = {X->utan, X->vtan, V_ ? (double *)V_ : X->zeros, JV};
  X->fatal_flag = 0;
  for (int k = 0; k < T->n_code; k++) tan_step(X, T, &T->code[k], V, D, B, t, theta, Vtheta);
  if (X->fatal_flag) return -1;
  return all_finite((size_t)B * X->n_out, JV) ? 0 : 1;
}

nde_status nde__tctx_set_rows(void *ctx, int B, const int *series_of_row) {
  tctx *X = ctx;
  rowmap *R = &X->rows;
  if (B < 1 || B > X->max_batch) return NDE_ERR_ARG;
  if (series_of_row)
    for (int r = 0; r < B; r++)
      if (series_of_row[r] < 0 || series_of_row[r] >= X->n_series) return NDE_ERR_ARG;
  R->B = B;
  R->n_uniq = 0;
  for (int r = 0; r < B; r++) {
    const int s = series_of_row ? series_of_row[r] : 0;
    R->series[r] = s;
    if (R->mark[s] < 0) {
      R->mark[s] = R->n_uniq;
      R->uniq[R->n_uniq++] = s;
    }
    R->row_uniq[r] = R->mark[s];
  }
  for (int q = 0; q < R->n_uniq; q++) R->mark[R->uniq[q]] = -1;
  return NDE_OK;
}

/* The first jump of curve c strictly after lo (ascending) or strictly before hi (descending);
 * +inf / -inf when none. */
static double next_jump(const nde__curve *c, double from, bool up) {
  size_t a = 0, b = c->n_jumps;
  /* The first jump whose time is > from (up) or >= from (down). */
  while (a < b) {
    const size_t mid = a + (b - a) / 2;
    const double tm = c->t[c->jumps[mid]];
    if (up ? tm <= from : tm < from) a = mid + 1;
    else b = mid;
  }
  if (up) return a < c->n_jumps ? c->t[c->jumps[a]] : INFINITY;
  return a > 0 ? c->t[c->jumps[a - 1]] : -INFINITY;
}

size_t nde__tctx_breakpoints(void *ctx, double t0, double t1, size_t max, double *out) {
  const tctx *X = ctx;
  if (!X->bd || !X->bd->curves || !X->step_used || !(t0 == t0) || !(t1 == t1)) return 0;
  const bool up = t1 >= t0;
  const int ni = X->bd->n_inputs;
  size_t count = 0;
  double cur = t0;
  /* Merge the jump lists of the step inputs of the bound series, one time per pass. */
  for (;;) {
    double best = up ? INFINITY : -INFINITY;
    for (int q = 0; q < X->rows.n_uniq; q++)
      for (int i = 0; i < ni; i++) {
        if (!X->step_used[i]) continue;
        const double tj = next_jump(&X->bd->curves[(size_t)X->rows.uniq[q] * (size_t)ni + (size_t)i], cur, up);
        if (up ? tj < best : tj > best) best = tj;
      }
    /* A jump at t1 itself counts going forward: the piece that ends there must see the values
     * from before it. */
    if (up ? !(best <= t1) : !(best > t1)) break;
    if (count < max) out[count] = best;
    count++;
    cur = best;
  }
  return count;
}

void nde__tctx_domain(void *ctx, double *lo, double *hi) {
  const tctx *X = ctx;
  if (!X->bd || !X->bd->curves || !X->used) return;
  const int ni = X->bd->n_inputs;
  for (int q = 0; q < X->rows.n_uniq; q++)
    for (int i = 0; i < ni; i++) {
      const nde__curve *c = &X->bd->curves[(size_t)X->rows.uniq[q] * (size_t)ni + (size_t)i];
      if (!X->used[i] || c->hold || c->n < 1) continue;
      if (c->t[0] > *lo) *lo = c->t[0];
      if (c->t[c->n - 1] < *hi) *hi = c->t[c->n - 1];
    }
}

size_t nde__tctx_n_theta(const nde__tctx *X) { return X->n_theta_full; }

void nde__tctx_exact_zeros(nde__tctx *X, bool on) { X->exact_zeros = on; }

void nde__tctx_destroy(void *ctx) {
  tctx *X = ctx;
  if (!X) return;
  if (X->nws)
    for (int i = 0; i < X->m->n_nets; i++) nde_net_ws_destroy(&X->nws[i]);
  free(X->nws);
  free(X->unif);
  free(X->uadj);
  free(X->utan);
  free(X->vary);
  free(X->vadj);
  free(X->vtan);
  free(X->du_scratch);
  free(X->zeros);
  free(X->gx);
  free(X->dy);
  free(X->dydot);
  free(X->ydot);
  free(X->inval);
  free(X->rows.series);
  free(X->rows.uniq);
  free(X->rows.row_uniq);
  free(X->rows.mark);
  free(X->step_used);
  free(X->used);
  free(X->zruns);
  nde__bound_release(X->bd);
  nde__model_release(X->m);
  free(X);
}

size_t nde__net_cache_per_row(const nde_net *net) { return nde_net_cache_size(net, 1); }

/* Mark the per-row offsets of the varying arena that slot s lives in (its whole parent row). */
static void mark_vary(const nde__tape *T, int s, bool *used) {
  if (s < 0) return;
  const nde__slot *sl = &T->slots[s];
  if (sl->arena != NDE__AR_VARY || !sl->active) return;
  const size_t span = (size_t)(sl->rs > sl->width ? sl->rs : sl->width);
  for (size_t q = 0; q < span && sl->off + q < T->vary_values_per_row; q++) used[sl->off + q] = true;
}

/* The runs of varying-arena offsets that carry adjoints: every slot the varying code writes or reads. */
static nde_status zero_runs(tctx *X) {
  const nde__tape *T = X->T;
  const size_t n = T->vary_values_per_row;
  if (n == 0) return NDE_OK;
  bool *used = calloc(n, sizeof *used);
  if (!used) return NDE_ERR_NOMEM;
  for (int k = T->n_unif_code; k < T->n_code; k++) {
    const nde__instr *in = &T->code[k];
    mark_vary(T, in->out, used);
    if (in->op == NDE__OP_NOP) continue;
    mark_vary(T, in->a, used);
    mark_vary(T, in->b, used);
    mark_vary(T, nde__third(in), used);
    if (in->op == NDE__OP_CONCAT)
      for (int j = 0; j < in->n_ops; j++) mark_vary(T, T->concat_ops[in->iarg + j], used);
  }
  X->zruns = malloc(n * 2 * sizeof *X->zruns);
  if (!X->zruns) {
    free(used);
    return NDE_ERR_NOMEM;
  }
  for (size_t q = 0; q < n;) {
    if (!used[q]) {
      q++;
      continue;
    }
    size_t lo = q;
    while (q < n && used[q]) q++;
    X->zruns[2 * X->n_zruns] = lo;
    X->zruns[2 * X->n_zruns + 1] = q - lo;
    X->n_zruns++;
  }
  free(used);
  return NDE_OK;
}

nde_status nde__tctx_create(nde_model *m, const nde__tape *T, nde__bound *bd, int max_batch,
                            nde__tctx **out) {
  *out = NULL;
  size_t nv, nu = T->unif_size ? T->unif_size : 1, ns, no;
  tctx *X = calloc(1, sizeof *X);
  if (!X) return NDE_ERR_NOMEM;
  nde__model_retain(m);
  X->m = m;
  X->T = T;
  if (bd) nde__bound_retain(bd);
  X->bd = bd;
  X->max_batch = max_batch;
  X->n = T->n_state;
  X->n_out = T->n_out;
  X->n_series = bd ? bd->n_series : 1;
  X->n_theta_full = m->n_theta + (size_t)X->n_series * (size_t)m->n_sp;
  X->fatal = &X->fatal_flag;
  nde_status st = NDE_ERR_NOMEM;
  if (!nde__mul_size(T->vary_per_row ? T->vary_per_row : 1, (size_t)max_batch, &nv) ||
      !nde__mul_size((size_t)T->n_state, (size_t)max_batch, &ns) ||
      !nde__mul_size((size_t)(T->n_out ? T->n_out : 1), (size_t)max_batch, &no))
    goto fail;
  X->nws = calloc((size_t)m->n_nets + 1, sizeof *X->nws);
  if (!X->nws) goto fail;
  for (int i = 0; i < m->n_nets; i++) {
    /* The per-row cache reserved at compile time must hold a forward pass on any batch. */
    if (nde_net_cache_size(m->nets[i].net, max_batch) >
        nde__net_cache_per_row(m->nets[i].net) * (size_t)max_batch) {
      st = NDE_ERR_INTERNAL;
      goto fail;
    }
    /* A net that grad differentiates needs the second-order pass's scratch too. */
    bool second = false;
    for (int k = 0; k < T->n_code && !second; k++)
      second = T->code[k].op == NDE__OP_NET_VJP && T->code[k].iarg == i;
    st = second ? nde_net_ws_create_second_order(m->nets[i].net, max_batch, &X->nws[i])
                : nde_net_ws_create(m->nets[i].net, max_batch, &X->nws[i]);
    if (st != NDE_OK) goto fail;
  }
  st = NDE_ERR_NOMEM;
  X->unif = nde__dalloc(nu);
  X->uadj = nde__dalloc(nu);
  X->utan = nde__dalloc(nu);
  X->vary = nde__dalloc(nv);
  X->vadj = nde__dalloc(nv);
  X->vtan = nde__dalloc(nv);
  X->du_scratch = nde__dalloc(no);
  X->zeros = nde__dalloc(ns);
  X->gx = nde__dalloc((size_t)(T->max_net_in ? T->max_net_in : 1) * (size_t)max_batch);
  const size_t ny = (size_t)(T->max_net_out ? T->max_net_out : 1) * (size_t)max_batch;
  X->dy = nde__dalloc(ny);
  X->dydot = nde__dalloc(ny);
  X->ydot = nde__dalloc(ny);
  X->inval = nde__dalloc((size_t)max_batch);
  X->rows.series = calloc((size_t)max_batch, sizeof(int));
  X->rows.uniq = calloc((size_t)max_batch, sizeof(int));
  X->rows.row_uniq = calloc((size_t)max_batch, sizeof(int));
  X->rows.mark = malloc((size_t)X->n_series * sizeof(int));
  X->step_used = calloc((size_t)m->n_inputs + 1, sizeof *X->step_used);
  X->used = calloc((size_t)m->n_inputs + 1, sizeof *X->used);
  if (!X->unif || !X->uadj || !X->utan || !X->vary || !X->vadj || !X->vtan || !X->du_scratch ||
      !X->zeros || !X->gx || !X->dy || !X->dydot || !X->ydot || !X->inval || !X->rows.series || !X->rows.uniq || !X->rows.row_uniq ||
      !X->rows.mark || !X->step_used || !X->used)
    goto fail;
  for (int s = 0; s < X->n_series; s++) X->rows.mark[s] = -1;
  st = zero_runs(X);
  if (st != NDE_OK) goto fail;
  if (T->unif_size) memcpy(X->unif, T->unif_init, T->unif_size * sizeof(double));
  for (int k = 0; k < T->n_code; k++)
    if (T->code[k].op == NDE__OP_INPUT) {
      X->used[T->code[k].iarg] = true;
      if (m->inputs[T->code[k].iarg].info.interp == NDE_INTERP_STEP)
        X->step_used[T->code[k].iarg] = true;
    }
  /* Every row starts in series 0. */
  nde__tctx_set_rows(X, max_batch, NULL);
  *out = X;
  return NDE_OK;
fail:
  nde__tctx_destroy(X);
  return st;
}

nde_status nde__tctx_clone(void *ctx, void **out) {
  const tctx *X = ctx;
  tctx *Y = NULL;
  *out = NULL;
  nde_status st = nde__tctx_create(X->m, X->T, X->bd, X->max_batch, &Y);
  if (st != NDE_OK) return st;
  /* The same row map. */
  Y->rows.B = X->rows.B;
  Y->rows.n_uniq = X->rows.n_uniq;
  memcpy(Y->rows.series, X->rows.series, (size_t)X->max_batch * sizeof(int));
  memcpy(Y->rows.uniq, X->rows.uniq, (size_t)X->max_batch * sizeof(int));
  memcpy(Y->rows.row_uniq, X->rows.row_uniq, (size_t)X->max_batch * sizeof(int));
  Y->exact_zeros = X->exact_zeros;
  *out = Y;
  return NDE_OK;
}

void nde__handle_init(nde__tape_handle *h, nde_model *m) {
  h->model = m;
  nde__model_retain(m);
  h->root = NULL;
  atomic_init(&h->refs, 1);
}

void nde__handle_release(nde__tape_handle *h) {
  if (!h || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1) return;
  nde__tctx_destroy(h->X);
  if (h->root) {
    nde__handle_release(h->root);
  } else {
    nde__tape_free(&h->tape);
    if (h->free_root) h->free_root(h);
  }
  nde__model_release(h->model);
  free(h);
}

nde_status nde__handle_clone(const nde__tape_handle *src, size_t size, nde__tape_handle **out) {
  *out = NULL;
  nde__tape_handle *root = src->root ? src->root : (nde__tape_handle *)src;
  nde__tape_handle *c = calloc(1, size);
  if (!c) return NDE_ERR_NOMEM;
  void *X = NULL;
  const nde_status st = nde__tctx_clone(src->X, &X);
  if (st != NDE_OK) {
    free(c);
    return st;
  }
  c->X = X;
  c->model = src->model;
  nde__model_retain(c->model);
  /* Only the reference counts change in the source. */
  atomic_fetch_add_explicit(&root->refs, 1, memory_order_relaxed);
  c->root = root;
  atomic_init(&c->refs, 1);
  *out = c;
  return NDE_OK;
}

nde_status nde__tape_rhs_create(nde_model *m, const nde_model_rhs_opts *o, nde_rhs **out,
                                nde_error *err) {
  nde__bound *bd = NULL;
  tctx *X = NULL;
  nde_status st = nde__bound_create(m, o, &bd, err);
  if (st != NDE_OK) return st;
  st = nde__tctx_create(m, &m->tape, bd, o->max_batch, &X);
  nde__bound_release(bd);
  if (st != NDE_OK)
    return nde__fail(err, st, "%s creating the right-hand side (batch of %d rows, %d series)",
                     nde_status_str(st), o->max_batch, o->n_series);
  nde_rhs_ops ops = {nde__tctx_f,        nde__tctx_vjp,         nde__tctx_jvp,
                     nde__tctx_destroy,  nde__tctx_set_rows,    nde__tctx_breakpoints,
                     nde__tctx_clone,    nde__tctx_domain};
  nde_rhs_info info = {m->n_state_total, X->n_theta_full, o->max_batch, m->tape.vary_per_row, m->dep};
  return nde_rhs_create(&ops, X, NDE_TAKE, &info, out, err);
}
