/* grad(EXPR, x): the gradient of a scalar expression with respect to states, compiled by
 * source transformation.  EXPR is compiled as usual; then its instructions are walked from the
 * last to the first and, for each one whose value depends on the states x, the instructions of
 * its reverse-mode derivative are appended to the tape (Griewank & Walther 2008, ch. 3: the
 * adjoint of out = g(a, b) adds ā += ḡ ∂g/∂a, b̄ += ḡ ∂g/∂b).  The derivatives of elementwise
 * ops are themselves elementwise ops (the adjoint of exp is a product with its value, of abs a
 * product with sign, of a broadcast scalar a SUM); a net call's input adjoint is a NET_VJP,
 * J^T ḡ by the nn layer's reverse pass, reading the forward cache of the net call.  The result
 * is ordinary tape code, so the model's own VJP and JVP differentiate through it: second
 * derivatives of elementwise ops come from their derivative rules, and a NET_VJP's VJP and JVP
 * are one forward-over-reverse pass (nde_net_vjp_tangent: the Hessian-vector product, the mixed
 * theta term and J w together).
 *
 * Adjoints are kept as parts: a slot holding the adjoint of some columns of a stored value
 * (views of a value, such as the states q and p inside U, receive parts of its adjoint).  Parts
 * are summed when the instruction that wrote the value is reached.  Calls of grad on the same
 * expression (grad(H(q, p), p) and grad(H(q, p), q)) share one compiled expression and one
 * reverse sweep over the union of their states. */
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "tape.h"

/* ---- finding and grouping the grad calls ---- */

static bool same_expr(const nde__ast *A, int e1, int e2) {
  if (e1 == e2) return true;
  if (e1 < 0 || e2 < 0) return false;
  const nde__expr *x = &A->exprs[e1], *y = &A->exprs[e2];
  if (x->kind != y->kind || x->n_args != y->n_args) return false;
  switch (x->kind) {
    case NDE__E_NUM: return x->num == y->num;
    case NDE__E_NAME:
      return x->sym == y->sym &&
             (x->sym >= 0 || (x->name_len == y->name_len && !memcmp(x->name, y->name, (size_t)x->name_len)));
    case NDE__E_CALL:
      if (x->func != y->func || x->sym != y->sym) return false;
      break;
    case NDE__E_INDEX:
      if (x->index != y->index) return false;
      break;
    default: break;
  }
  for (int i = 0; i < x->n_args; i++)
    if (!same_expr(A, A->args[x->args + i], A->args[y->args + i])) return false;
  return same_expr(A, x->a, y->a) && same_expr(A, x->b, y->b);
}

/* Mark the U columns that the second argument of grad names. */
static void mark_wrt(const nde__ast *A, int e, bool *wrt) {
  const nde__expr *x = &A->exprs[e];
  if (x->kind == NDE__E_LIST) {
    for (int i = 0; i < x->n_args; i++) mark_wrt(A, A->args[x->args + i], wrt);
    return;
  }
  const nde__expr *y = x->kind == NDE__E_INDEX ? &A->exprs[x->a] : x;
  const nde__state_decl *sd = &A->states[A->syms[y->sym].index];
  if (x->kind == NDE__E_INDEX) {
    wrt[sd->offset + x->index - 1] = true;
    return;
  }
  for (int k = 0; k < sd->size; k++) wrt[sd->offset + k] = true;
}

static nde_status find_calls(nde__comp *C, int e) {
  const nde__ast *A = C->A;
  const nde__expr *x = &A->exprs[e];
  if (x->a >= 0 && find_calls(C, x->a) != NDE_OK) return NDE_ERR_NOMEM;
  if (x->b >= 0 && find_calls(C, x->b) != NDE_OK) return NDE_ERR_NOMEM;
  for (int i = 0; i < x->n_args; i++)
    if (find_calls(C, A->args[x->args + i]) != NDE_OK) return NDE_ERR_NOMEM;
  if (x->kind != NDE__E_CALL || x->func != NDE__F_GRAD || C->grad_group[e] >= 0) return NDE_OK;
  const int ex = A->args[x->args];
  int g = 0;
  while (g < C->n_groups && !same_expr(A, C->groups[g].expr, ex)) g++;
  if (g == C->n_groups) {
    nde__ggroup *p = realloc(C->groups, ((size_t)C->n_groups + 1) * sizeof *p);
    if (!p) return NDE_ERR_NOMEM;
    C->groups = p;
    bool *wrt = calloc((size_t)A->n_state_total + 1, sizeof *wrt);
    if (!wrt) return NDE_ERR_NOMEM;
    C->groups[C->n_groups++] = (nde__ggroup){ex, wrt, false, -1};
  }
  mark_wrt(A, A->args[x->args + 1], C->groups[g].wrt);
  C->grad_group[e] = g;
  return NDE_OK;
}

nde_status nde__grad_prepare(nde__comp *C, const nde__output *outs, int n_outs, const bool *need) {
  const nde__ast *A = C->A;
  C->grad_group = malloc(((size_t)A->n_exprs + 1) * sizeof *C->grad_group);
  if (!C->grad_group) return NDE_ERR_NOMEM;
  for (int e = 0; e < A->n_exprs; e++) C->grad_group[e] = -1;
  for (int k = 0; k < A->n_inters; k++)
    if (need[k] && find_calls(C, A->inters[k].expr) != NDE_OK) return NDE_ERR_NOMEM;
  for (int k = 0; k < n_outs; k++)
    if (outs[k].expr >= 0 && find_calls(C, outs[k].expr) != NDE_OK) return NDE_ERR_NOMEM;
  return NDE_OK;
}

void nde__grad_free(nde__comp *C) {
  for (int g = 0; g < C->n_groups; g++) free(C->groups[g].wrt);
  free(C->groups);
  free(C->grad_group);
  free(C->parts);
  C->groups = NULL;
  C->grad_group = NULL;
  C->parts = NULL;
  C->n_groups = C->n_parts = C->cap_parts = 0;
}

/* ---- adjoint parts ---- */

static int add_part(nde__comp *C, int *head, int root, int col, int width, int slot) {
  if (slot < 0 || C->fail) return -1;
  if (C->n_parts == C->cap_parts) {
    int cap = C->cap_parts ? 2 * C->cap_parts : 64;
    nde__apart *p = realloc(C->parts, (size_t)cap * sizeof *p);
    if (!p) {
      nde__c_failed(C, NDE_ERR_NOMEM);
      return -1;
    }
    C->parts = p;
    C->cap_parts = cap;
  }
  /* A part may be read again by later code (another call of the group): never fused into
   * another instruction or moved into the output block. */
  C->named[slot] = true;
  C->parts[C->n_parts] = (nde__apart){root, col, width, slot, head[root]};
  head[root] = C->n_parts;
  return C->n_parts++;
}

typedef struct clip {
  int col, width, slot;
} clip;

static int by_col(const void *a, const void *b) {
  const clip *x = a, *y = b;
  return (x->col > y->col) - (x->col < y->col);
}

/* The sum of the parts (list from first) over columns [lo, lo + w) of their value: parts
 * partly inside are cut to views; parts that do not overlap are laid side by side with zeros
 * between them (one CONCAT), overlapping ones summed. */
static int gather(nde__comp *C, int first, int lo, int w) {
  int n = 0;
  for (int p = first; p >= 0; p = C->parts[p].next) n++;
  clip *cl = malloc(((size_t)n + 1) * sizeof *cl);
  int *layer = malloc(((size_t)n + 1) * sizeof *layer), *ops = malloc((2 * (size_t)n + 2) * sizeof *ops);
  int result = -1, n_cl = 0;
  if (!cl || !layer || !ops) {
    nde__c_failed(C, NDE_ERR_NOMEM);
    goto done;
  }
  for (int p = first; p >= 0 && !C->fail; p = C->parts[p].next) {
    const nde__apart *q = &C->parts[p];
    const int a = q->col > lo ? q->col : lo;
    const int b = q->col + q->width < lo + w ? q->col + q->width : lo + w;
    if (a >= b) continue;
    int s = q->slot;
    if (a != q->col || b != q->col + q->width) s = nde__c_view_slot(C, q->slot, a - q->col, b - a);
    cl[n_cl++] = (clip){a - lo, b - a, s};
  }
  if (C->fail) goto done;
  if (n_cl == 0) {
    result = nde__c_const_slot(C, w, 0.0);
    goto done;
  }
  qsort(cl, (size_t)n_cl, sizeof *cl, by_col);
  /* Layers of parts that do not overlap: each part goes to the first layer it fits after. */
  int n_layers = 0;
  for (int i = 0; i < n_cl; i++) {
    int l = 0;
    while (l < n_layers) {
      int end = 0;
      for (int j = 0; j < i; j++)
        if (layer[j] == l && cl[j].col + cl[j].width > end) end = cl[j].col + cl[j].width;
      if (end <= cl[i].col) break;
      l++;
    }
    layer[i] = l;
    if (l == n_layers) n_layers++;
  }
  for (int l = 0; l < n_layers && !C->fail; l++) {
    int n_ops = 0, col = 0;
    for (int i = 0; i < n_cl; i++) {
      if (layer[i] != l) continue;
      if (cl[i].col > col) ops[n_ops++] = nde__c_const_slot(C, cl[i].col - col, 0.0);
      ops[n_ops++] = cl[i].slot;
      col = cl[i].col + cl[i].width;
    }
    if (col < w) ops[n_ops++] = nde__c_const_slot(C, w - col, 0.0);
    for (int i = 0; i < n_ops; i++)
      if (ops[i] < 0) goto done;
    const int s = nde__c_concat_slots(C, ops, n_ops);
    result = result < 0 ? s : nde__c_op(C, nde__c_instr(NDE__OP_ADD, -1, result, s), w);
  }
done:
  free(cl);
  free(layer);
  free(ops);
  return C->fail ? -1 : result;
}

/* ---- the reverse sweep ---- */

typedef struct sweep {
  nde__comp *C;
  const bool *wrt; /* U columns */
  int n_slots;     /* slots that existed before the sweep */
  bool *dx;        /* [n_slots] per stored value: depends on the wrt columns */
  int *head;       /* [n_slots] per stored value: its adjoint's first part, -1 */
  nde__pos pos;    /* the grad call, for messages */
} sweep;

static int width(const sweep *S, int s) { return S->C->T->slots[s].width; }

/* Whether slot s may depend on the wrt columns (conservative for views of computed values). */
static bool dx_of(const sweep *S, int s) {
  if (s < 0 || s >= S->n_slots) return false;
  const nde__comp *C = S->C;
  const int r = C->root[s];
  if (r == 0) {
    const nde__slot *sl = &C->T->slots[s];
    for (int c = sl->col; c < sl->col + sl->width; c++)
      if (S->wrt[c]) return true;
    return false;
  }
  return S->dx[r];
}

static void forward_deps(sweep *S, int n_v) {
  const nde__comp *C = S->C;
  for (int k = 0; k < n_v; k++) {
    const nde__instr *in = &C->vcode[k];
    if (in->op == NDE__OP_NOP || C->root[in->out] != in->out) continue;
    const uint8_t kind = nde__op_kind[in->op];
    bool d = false;
    if (kind == NDE__K_UNARY0 || kind == NDE__K_BINARY0) {
      d = false;
    } else if (in->op == NDE__OP_CONCAT) {
      for (int j = 0; j < in->n_ops; j++) d = d || dx_of(S, C->T->concat_ops[in->iarg + j]);
    } else if (in->op == NDE__OP_IFELSE) {
      d = dx_of(S, in->a) || dx_of(S, in->b);
    } else {
      d = dx_of(S, in->a) || dx_of(S, in->b) || dx_of(S, nde__third(in));
    }
    S->dx[in->out] = d;
  }
}

static int un(nde__comp *C, nde__op op, int a) {
  if (a < 0) return -1;
  return nde__c_op(C, nde__c_instr(op, -1, a, -1), C->T->slots[a].width);
}

static int bin(nde__comp *C, nde__op op, int a, int b) {
  if (a < 0 || b < 0) return -1;
  const int wa = C->T->slots[a].width, wb = C->T->slots[b].width;
  return nde__c_op(C, nde__c_instr(op, -1, a, b), wa > wb ? wa : wb);
}

static int num(nde__comp *C, double v) { return nde__c_const_slot(C, 1, v); }

/* a^n (a itself for n = 1). */
static int powi(nde__comp *C, int a, int n) {
  if (n == 1) return a;
  nde__instr in = nde__c_instr(NDE__OP_POWI, -1, a, -1);
  in.iarg = n;
  return nde__c_op(C, in, C->T->slots[a].width);
}

/* op(P) op(Q) with op(P) rows x inner (op: transposed when tP, tQ); width of the result. */
static int matmul(nde__comp *C, int P, bool tP, int Q, bool tQ, int rows, int inner, int width) {
  if (P < 0 || Q < 0) return -1;
  nde__instr in = nde__c_instr(NDE__OP_MATMUL, -1, P, Q);
  in.iarg = rows;
  in.n_ops = inner;
  in.flags = (uint8_t)((tP ? NDE__IF_TA : 0) | (tQ ? NDE__IF_TB : 0));
  return nde__c_op(C, in, width);
}

/* Add contribution c (of the width w_out of the instruction's output) to operand x's adjoint;
 * a scalar broadcast over w_out columns receives the sum of the columns. */
static void contribute(sweep *S, int x, int c, int w_out) {
  nde__comp *C = S->C;
  if (x < 0 || !dx_of(S, x)) return;
  if (c < 0) {
    nde__c_failed(C, C->st != NDE_OK ? C->st : NDE_ERR_NOMEM);
    return;
  }
  const int wx = width(S, x);
  if (wx == 1 && w_out > 1) c = un(C, NDE__OP_SUM, c);
  add_part(C, S->head, C->root[x], C->T->slots[x].col, wx, c);
}

/* Append the adjoint of instruction in, whose output's adjoint is G. */
static void adjoint(sweep *S, const nde__instr *in, int G) {
  nde__comp *C = S->C;
  const int a = in->a, b = in->b, o = in->out, w = width(S, o);
  switch ((nde__op)in->op) {
    case NDE__OP_COPY: contribute(S, a, G, w); break;
    case NDE__OP_NEG: contribute(S, a, un(C, NDE__OP_NEG, G), w); break;
    case NDE__OP_EXP: contribute(S, a, bin(C, NDE__OP_MUL, G, o), w); break;
    case NDE__OP_LOG: contribute(S, a, bin(C, NDE__OP_DIV, G, a), w); break;
    case NDE__OP_SQRT:
      contribute(S, a, bin(C, NDE__OP_MUL, bin(C, NDE__OP_DIV, G, o), num(C, 0.5)), w);
      break;
    case NDE__OP_SIN: contribute(S, a, bin(C, NDE__OP_MUL, G, un(C, NDE__OP_COS, a)), w); break;
    case NDE__OP_COS:
      contribute(S, a, un(C, NDE__OP_NEG, bin(C, NDE__OP_MUL, G, un(C, NDE__OP_SIN, a))), w);
      break;
    case NDE__OP_TANH:
      contribute(S, a, bin(C, NDE__OP_MUL, G, bin(C, NDE__OP_SUB, num(C, 1.0), powi(C, o, 2))), w);
      break;
    case NDE__OP_ABS: contribute(S, a, bin(C, NDE__OP_MUL, G, un(C, NDE__OP_SIGN, a)), w); break;
    case NDE__OP_POWI: {
      const int n = in->iarg;
      if (n == 0) break;
      int c = G;
      if (n != 1) c = bin(C, NDE__OP_MUL, bin(C, NDE__OP_MUL, G, powi(C, a, n - 1)), num(C, n));
      contribute(S, a, c, w);
      break;
    }
    case NDE__OP_ADD:
      contribute(S, a, G, w);
      contribute(S, b, G, w);
      break;
    case NDE__OP_SUB:
      contribute(S, a, G, w);
      if (dx_of(S, b)) contribute(S, b, un(C, NDE__OP_NEG, G), w);
      break;
    case NDE__OP_MUL:
      if (dx_of(S, a)) contribute(S, a, bin(C, NDE__OP_MUL, G, b), w);
      if (dx_of(S, b)) contribute(S, b, bin(C, NDE__OP_MUL, G, a), w);
      break;
    case NDE__OP_DIV: {
      const int q = bin(C, NDE__OP_DIV, G, b);
      contribute(S, a, q, w);
      if (dx_of(S, b)) contribute(S, b, un(C, NDE__OP_NEG, bin(C, NDE__OP_MUL, q, o)), w);
      break;
    }
    case NDE__OP_POW:
      /* d/da a^b = b a^(b-1), d/db a^b = a^b log a (NaN at a = 0: real powers need a > 0). */
      if (dx_of(S, a))
        contribute(S, a, bin(C, NDE__OP_MUL, G,
                             bin(C, NDE__OP_MUL, b, bin(C, NDE__OP_POW, a, bin(C, NDE__OP_SUB, b, num(C, 1.0))))),
                   w);
      if (dx_of(S, b))
        contribute(S, b, bin(C, NDE__OP_MUL, G, bin(C, NDE__OP_MUL, o, un(C, NDE__OP_LOG, a))), w);
      break;
    case NDE__OP_MIN:
    case NDE__OP_MAX: {
      /* The selected operand takes the adjoint; a tie selects a (as the tape's own rule). */
      const int m = bin(C, in->op == NDE__OP_MIN ? NDE__OP_LE : NDE__OP_GE, a, b);
      const int ga = bin(C, NDE__OP_MUL, G, m);
      contribute(S, a, ga, w);
      if (dx_of(S, b)) contribute(S, b, bin(C, NDE__OP_SUB, G, ga), w);
      break;
    }
    case NDE__OP_MULADD: {
      /* out = lo a b + hi c, lo and hi are +-1. */
      if (dx_of(S, a)) {
        int c = bin(C, NDE__OP_MUL, G, b);
        contribute(S, a, in->lo < 0 ? un(C, NDE__OP_NEG, c) : c, w);
      }
      if (dx_of(S, b)) {
        int c = bin(C, NDE__OP_MUL, G, a);
        contribute(S, b, in->lo < 0 ? un(C, NDE__OP_NEG, c) : c, w);
      }
      if (dx_of(S, in->iarg)) contribute(S, in->iarg, in->hi < 0 ? un(C, NDE__OP_NEG, G) : G, w);
      break;
    }
    case NDE__OP_IFELSE: {
      const int z = num(C, 0.0);
      nde__instr ia = nde__c_instr(NDE__OP_IFELSE, -1, G, z), ib = nde__c_instr(NDE__OP_IFELSE, -1, z, G);
      ia.iarg = ib.iarg = in->iarg;
      if (dx_of(S, a)) contribute(S, a, nde__c_op(C, ia, w), w);
      if (dx_of(S, b)) contribute(S, b, nde__c_op(C, ib, w), w);
      break;
    }
    case NDE__OP_CONCAT: {
      int col = 0;
      for (int j = 0; j < in->n_ops && !C->fail; j++) {
        const int x = C->T->concat_ops[in->iarg + j], wx = width(S, x);
        if (dx_of(S, x)) contribute(S, x, nde__c_view_slot(C, G, col, wx), wx);
        col += wx;
      }
      break;
    }
    case NDE__OP_MATMUL: {
      /* out = op(A) op(X), r x c times c x k: op(A)'s adjoint is G op(X)^T, op(X)'s op(A)^T G
       * (stored transposed when the operand is). */
      const int r = in->iarg, c = in->n_ops, k = w / r;
      const bool ta = in->flags & NDE__IF_TA, tb = in->flags & NDE__IF_TB;
      if (dx_of(S, a))
        contribute(S, a, ta ? matmul(C, b, tb, G, true, c, k, c * r) : matmul(C, G, false, b, !tb, r, k, r * c), r * c);
      if (dx_of(S, b))
        contribute(S, b, tb ? matmul(C, G, true, a, ta, k, r, k * c) : matmul(C, a, !ta, G, false, c, r, c * k), c * k);
      break;
    }
    case NDE__OP_SUM: contribute(S, a, nde__c_op(C, nde__c_instr(NDE__OP_COPY, -1, G, -1), width(S, a)), width(S, a)); break;
    case NDE__OP_NET: {
      const nde__netm *nm = &C->m->nets[in->iarg];
      if (!nde_net_allows_second_order(nm->net)) {
        nde__diag_error(C->d, NDE_ERR_MODEL, S->pos,
                        "grad differentiates through net '%s', which has a relu layer: its "
                        "gradient would be piecewise constant in the states and its second "
                        "derivatives zero (use softplus, a smooth relu)", nm->name);
        nde__diag_note(C->d, C->A->nets[in->iarg].pos, "net '%s' is declared here", nm->name);
        nde__c_failed(C, NDE_ERR_MODEL);
        return;
      }
      nde__instr v = nde__c_instr(NDE__OP_NET_VJP, -1, a, G);
      v.iarg = in->iarg;
      v.cache_off = in->cache_off;
      v.out = nde__c_owned_slot(C, width(S, a), true, true);
      if (v.out < 0) return;
      contribute(S, a, nde__c_emit(C, v), width(S, a));
      break;
    }
    case NDE__OP_NET_VJP:
      nde__diag_error(C->d, NDE_ERR_MODEL, S->pos,
                      "grad of an expression that contains the gradient of net '%s' (third "
                      "derivatives of nets are not supported)", C->m->nets[in->iarg].name);
      nde__c_failed(C, NDE_ERR_MODEL);
      return;
    default:
      /* Ops without a derivative (comparisons, step, sign) and data have no dependence. */
      break;
  }
}

/* Run the reverse sweep from slot s (a scalar) over the varying code so far; the parts of U's
 * adjoint are linked from *u_first. */
static void reverse(nde__comp *C, int s, const bool *wrt, nde__pos pos, int *u_first) {
  *u_first = -1;
  const int n_slots = C->T->n_slots, n_v = C->n_v;
  sweep S = {C, wrt, n_slots, calloc((size_t)n_slots, sizeof(bool)), malloc((size_t)n_slots * sizeof(int)), pos};
  if (!S.dx || !S.head) {
    nde__c_failed(C, NDE_ERR_NOMEM);
    goto done;
  }
  for (int i = 0; i < n_slots; i++) S.head[i] = -1;
  forward_deps(&S, n_v);
  if (!dx_of(&S, s)) goto done;
  add_part(C, S.head, C->root[s], C->T->slots[s].col, 1, num(C, 1.0));
  for (int k = n_v - 1; k >= 0 && !C->fail; k--) {
    const nde__instr in = C->vcode[k]; /* a copy: emitting may move vcode */
    const int o = in.out;
    if (in.op == NDE__OP_NOP || C->root[o] != o || o >= n_slots || S.head[o] < 0 || !S.dx[o]) continue;
    const int G = gather(C, S.head[o], 0, width(&S, o));
    if (G < 0) break;
    adjoint(&S, &in, G);
  }
  *u_first = S.head[0];
done:
  free(S.dx);
  free(S.head);
}

/* ---- a grad call ---- */

/* The U column ranges that the second argument names, in order, adjacent ones merged. */
static int wrt_ranges(const nde__ast *A, int e, int *lo, int *w, int n) {
  const nde__expr *x = &A->exprs[e];
  if (x->kind == NDE__E_LIST) {
    for (int i = 0; i < x->n_args; i++) n = wrt_ranges(A, A->args[x->args + i], lo, w, n);
    return n;
  }
  const nde__expr *y = x->kind == NDE__E_INDEX ? &A->exprs[x->a] : x;
  const nde__state_decl *sd = &A->states[A->syms[y->sym].index];
  const int c = x->kind == NDE__E_INDEX ? sd->offset + (int)x->index - 1 : sd->offset;
  const int k = x->kind == NDE__E_INDEX ? 1 : sd->size;
  if (n > 0 && lo[n - 1] + w[n - 1] == c) {
    w[n - 1] += k;
    return n;
  }
  lo[n] = c;
  w[n] = k;
  return n + 1;
}

int nde__grad_compile(nde__comp *C, int e) {
  const nde__ast *A = C->A;
  const nde__expr *x = &A->exprs[e];
  const int g = C->grad_group[e];
  if (g < 0) {
    nde__c_failed(C, NDE_ERR_INTERNAL);
    return -1;
  }
  if (!C->groups[g].done) {
    const int s = nde__c_expr(C, C->groups[g].expr);
    if (s < 0) return -1;
    reverse(C, s, C->groups[g].wrt, x->pos, &C->groups[g].first);
    if (C->fail) return -1;
    C->groups[g].done = true;
  }
  const int n_max = x->size;
  int *lo = malloc((size_t)n_max * sizeof *lo), *w = malloc((size_t)n_max * sizeof *w);
  int *slots = malloc((size_t)n_max * sizeof *slots);
  int result = -1;
  if (!lo || !w || !slots) {
    nde__c_failed(C, NDE_ERR_NOMEM);
    goto done;
  }
  const int n = wrt_ranges(A, A->args[x->args + 1], lo, w, 0);
  for (int i = 0; i < n; i++) {
    slots[i] = gather(C, C->groups[g].first, lo[i], w[i]);
    if (slots[i] < 0) goto done;
  }
  result = nde__c_concat_slots(C, slots, n);
done:
  free(lo);
  free(w);
  free(slots);
  return result;
}
