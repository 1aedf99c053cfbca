/* Evaluation of the compiled tape on a batch of B states: f (forward sweep), VJP (forward
 * values, or the ones f cached, then a reverse sweep accumulating adjoints) and JVP (a forward
 * sweep carrying tangents).  Elementwise kernels read operands through row and column strides,
 * so uniform values (stride 0 over rows) and scalars (stride 0 over columns) broadcast, and
 * their adjoints sum over what they were broadcast to.  Net calls run the nn layer's batched
 * passes.  Nothing here allocates. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tape.h"

typedef struct tctx {
  nde_model *m;
  const nde__tape *T;
  int max_batch, n;
  nde_net_ws **nws;
  double *unif, *uadj, *utan;
  double *vary, *vadj, *vtan;
  double *du_scratch, *zeros, *gx;
  /* Runs [lo, lo + len) of per-row offsets of the varying arena whose adjoints the reverse
   * sweep reads or accumulates; only these are zeroed (slots of instructions removed while
   * compiling keep their place in the arena but have no adjoint). */
  size_t *zruns;
  int n_zruns;
} tctx;

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
    default: *da = *db = 0; return 0;
  }
}

static bool is_unary(nde__op op) {
  return op == NDE__OP_COPY || op == NDE__OP_NEG || (op >= NDE__OP_EXP && op <= NDE__OP_POWI);
}
static bool is_binary(nde__op op) { return op >= NDE__OP_ADD && op <= NDE__OP_POW; }

/* Parameter value and d value / d theta_k. */
static inline double param_value(const nde__instr *in, double s, double *d) {
  switch ((nde__op)in->op) {
    case NDE__OP_PARAM_EXP: { double v = exp(s); *d = v; return v; }
    case NDE__OP_PARAM_LOGIT: {
      double g = sigmoid(s);
      *d = (in->hi - in->lo) * g * (1.0 - g);
      return in->lo + (in->hi - in->lo) * g;
    }
    default: *d = 1; return s;
  }
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
      default: EW2(pow(x, y)); break;
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
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      O[0] = param_value(in, theta[in->iarg], &d);
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
    default: return;
  }
}

void nde__exec_const(const nde__tape *T, const nde__instr *in, double *const bases[NDE__AR_COUNT]) {
  fwd(NULL, T, in, bases, 1, 0.0, NULL, false);
}

/* ---- reverse ---- */

static void rev(const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[],
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
          ga[c * a.cs] += go[c] * d;
        }
      }
    }
    return;
  }
  if (is_binary(op)) {
    opnd a = operand(T, in->a, w, V, G, B), b = operand(T, in->b, w, V, G, B);
    if (w == 1 && op != NDE__OP_POW && op != NDE__OP_DIV) {
      /* One loop over rows for the common scalar case. */
      const double sb = op == NDE__OP_SUB ? -1.0 : 1.0;
      const bool mul = op == NDE__OP_MUL;
      if (a.g) {
        if (mul) for (int r = 0; r < R; r++) a.g[r * a.rs] += GO[r * ors] * b.p[r * b.rs];
        else for (int r = 0; r < R; r++) a.g[r * a.rs] += GO[r * ors];
      }
      if (b.g) {
        if (mul) for (int r = 0; r < R; r++) b.g[r * b.rs] += GO[r * ors] * a.p[r * a.rs];
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
        if (ga) for (int c = 0; c < w; c++) ga[c * a.cs] += go[c] * pb[c * b.cs];
        if (gb) for (int c = 0; c < w; c++) gb[c * b.cs] += go[c] * pa[c * a.cs];
      } else {
        for (int c = 0; c < w; c++) {
          double da, db;
          (void)binary(op, pa[c * a.cs], pb[c * b.cs], &da, &db);
          if (ga) ga[c * a.cs] += go[c] * da;
          if (gb) gb[c * b.cs] += go[c] * db;
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
        if (a.g) for (int r = 0; r < R; r++) a.g[r * a.rs] += sp * GO[r * ors] * b.p[r * b.rs];
        if (b.g) for (int r = 0; r < R; r++) b.g[r * b.rs] += sp * GO[r * ors] * a.p[r * a.rs];
        if (c.g) for (int r = 0; r < R; r++) c.g[r * c.rs] += sc * GO[r * ors];
        return;
      }
      for (int r = 0; r < R; r++)
        for (int k = 0; k < w; k++) {
          const double g = GO[r * ors + k];
          const size_t ia = r * a.rs + k * a.cs, ib = r * b.rs + k * b.cs;
          if (a.g) a.g[ia] += sp * g * b.p[ib];
          if (b.g) b.g[ib] += sp * g * a.p[ia];
          if (c.g) c.g[r * c.rs + k * c.cs] += sc * g;
        }
      return;
    }
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      if (!gtheta) return;
      (void)param_value(in, theta[in->iarg], &d);
      gtheta[in->iarg] += GO[0] * d;
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
    case NDE__OP_NET: {
      const nde__slot *si = &T->slots[in->a];
      const nde__netm *nm = &X->m->nets[in->iarg];
      double *gin = (si->active && G[si->arena]) ? G[si->arena] + slot_off(si, B) : NULL;
      if (!gin && !gtheta) return;
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

/* ---- tangent (forward mode): values and tangents together ---- */

static void tan_step(const tctx *X, const nde__tape *T, const nde__instr *in, double *const V[],
                     double *const D[], int B, double t, const double *theta, const double *vtheta) {
  const nde__slot *so = &T->slots[in->out];
  const int R = so->varying ? B : 1, w = so->width;
  const size_t off = slot_off(so, B), ors = (size_t)so->rs;
  double *O = V[so->arena] + off, *DO = D[so->arena] + off;
  nde__op op = (nde__op)in->op;
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
    case NDE__OP_PARAM:
    case NDE__OP_PARAM_EXP:
    case NDE__OP_PARAM_LOGIT: {
      double d;
      (void)param_value(in, theta[in->iarg], &d);
      DO[0] = vtheta ? vtheta[in->iarg] * d : 0.0;
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

/* ---- the rhs callbacks ---- */

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

static int tape_f(void *ctx, double t, int B, const double *U, const double *theta, double *dU,
                  double *cache) {
  const tctx *X = ctx;
  const nde__tape *T = X->T;
  if (B < 1 || B > X->max_batch) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, cache ? cache : X->vary, (double *)U, dU};
  for (int k = 0; k < T->n_code; k++) fwd(X, T, &T->code[k], V, B, t, theta, true);
  return all_finite((size_t)B * X->n, dU) ? 0 : 1;
}

static int tape_vjp(void *ctx, double t, int B, const double *U, const double *theta,
                    const double *L, const double *cache, double *gU, double *gtheta) {
  const tctx *X = ctx;
  const nde__tape *T = X->T;
  if (B < 1 || B > X->max_batch) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, cache ? (double *)cache : X->vary, (double *)U, X->du_scratch};
  int k0 = cache ? T->n_unif_code : T->n_code;
  for (int k = 0; k < k0; k++) fwd(X, T, &T->code[k], V, B, t, theta, true);
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
  if (gtheta)
    for (int i = 0; i < X->m->n_params; i++) {
      size_t o = X->m->params[i].info.offset;
      if (X->m->params[i].info.learnable && !isfinite(gtheta[o])) return 1;
    }
  return 0;
}

static int tape_jvp(void *ctx, double t, int B, const double *U, const double *theta,
                    const double *V_, const double *Vtheta, double *JV) {
  const tctx *X = ctx;
  const nde__tape *T = X->T;
  if (B < 1 || B > X->max_batch) return -1;
  double *V[NDE__AR_COUNT] = {X->unif, X->vary, (double *)U, X->du_scratch};
  double *D[NDE__AR_COUNT] = {X->utan, X->vtan, V_ ? (double *)V_ : X->zeros, JV};
  for (int k = 0; k < T->n_code; k++) tan_step(X, T, &T->code[k], V, D, B, t, theta, Vtheta);
  return all_finite((size_t)B * X->n, JV) ? 0 : 1;
}

static void tape_destroy(void *ctx) {
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
  free(X->zruns);
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
    if (in->op == NDE__OP_MULADD) mark_vary(T, in->iarg, used);
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

nde_status nde__tape_rhs_create(nde_model *m, int max_batch, nde_rhs **out, nde_error *err) {
  const nde__tape *T = &m->tape;
  size_t nv, nu = T->unif_size ? T->unif_size : 1, ns;
  tctx *X = calloc(1, sizeof *X);
  if (!X) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the right-hand side");
  nde__model_retain(m);
  X->m = m;
  X->T = T;
  X->max_batch = max_batch;
  X->n = T->n_state;
  nde_status st = NDE_ERR_NOMEM;
  if (!nde__mul_size(T->vary_per_row ? T->vary_per_row : 1, (size_t)max_batch, &nv) ||
      !nde__mul_size((size_t)T->n_state, (size_t)max_batch, &ns))
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
    st = nde_net_ws_create(m->nets[i].net, max_batch, &X->nws[i]);
    if (st != NDE_OK) goto fail;
  }
  st = NDE_ERR_NOMEM;
  X->unif = nde__dalloc(nu);
  X->uadj = nde__dalloc(nu);
  X->utan = nde__dalloc(nu);
  X->vary = nde__dalloc(nv);
  X->vadj = nde__dalloc(nv);
  X->vtan = nde__dalloc(nv);
  X->du_scratch = nde__dalloc(ns);
  X->zeros = nde__dalloc(ns);
  X->gx = nde__dalloc((size_t)(T->max_net_in ? T->max_net_in : 1) * (size_t)max_batch);
  if (!X->unif || !X->uadj || !X->utan || !X->vary || !X->vadj || !X->vtan || !X->du_scratch ||
      !X->zeros || !X->gx)
    goto fail;
  st = zero_runs(X);
  if (st != NDE_OK) goto fail;
  if (T->unif_size) memcpy(X->unif, T->unif_init, T->unif_size * sizeof(double));
  nde_rhs_ops ops = {tape_f, tape_vjp, tape_jvp, tape_destroy};
  nde_rhs_info info = {T->n_state, m->n_theta, max_batch, T->vary_per_row, NULL};
  return nde_rhs_create(&ops, X, NDE_TAKE, &info, out, err);
fail:
  tape_destroy(X);
  return nde__fail(err, st, "%s creating the right-hand side (batch of %d rows)",
                   nde_status_str(st), max_batch);
}
