/* Compiler of the .nde language: a checked syntax tree becomes the model's tables (states,
 * parameters, nets, inputs, constants, observables, the layout of theta) and flat tapes over
 * batched slots: the right-hand side, whose outputs are the equations, and on request tapes
 * with other outputs (observers, probes).  Values that are the same in every row (shared
 * parameters, t, constants) are "uniform" and computed once per call; values bound per series
 * (per-series parameters, measured inputs, constants from data) vary per row; constants are
 * folded at compile time; indexing is a column view (no instruction); an output's last
 * arithmetic instruction writes straight into the output block; only the intermediates an
 * output needs are compiled; grad calls are compiled by lang_grad.c into more tape code, and
 * code whose value nothing reads is removed at the end. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "tape.h"

typedef nde__comp comp;

static char *dupn(const char *s, int n) {
  char *r = malloc((size_t)n + 1);
  if (r) {
    memcpy(r, s, (size_t)n);
    r[n] = '\0';
  }
  return r;
}

/* ---- slots ---- */

static int new_slot(comp *C, nde__slot s) {
  nde__tape *T = C->T;
  if (T->n_slots == T->cap_slots) {
    int cap = T->cap_slots ? 2 * T->cap_slots : 64;
    nde__slot *p = realloc(T->slots, (size_t)cap * sizeof *p);
    int *pr = realloc(C->vproducer, (size_t)cap * sizeof *pr);
    if (pr) C->vproducer = pr;
    int *us = realloc(C->uses, (size_t)cap * sizeof *us);
    if (us) C->uses = us;
    bool *nm = realloc(C->named, (size_t)cap * sizeof *nm);
    if (nm) C->named = nm;
    int *ru = realloc(C->ruses, (size_t)cap * sizeof *ru);
    if (ru) C->ruses = ru;
    int *rt = realloc(C->root, (size_t)cap * sizeof *rt);
    if (rt) C->root = rt;
    if (!p || !pr || !us || !nm || !ru || !rt) {
      if (p) T->slots = p;
      C->fail = true;
      C->st = NDE_ERR_NOMEM;
      return -1;
    }
    T->slots = p;
    T->cap_slots = cap;
  }
  C->vproducer[T->n_slots] = -1;
  C->uses[T->n_slots] = 0;
  C->ruses[T->n_slots] = 0;
  C->root[T->n_slots] = T->n_slots;
  C->named[T->n_slots] = false;
  T->slots[T->n_slots] = s;
  return T->n_slots++;
}

/* An owned slot of the given width: in the varying arena (per row) or the uniform one. */
int nde__c_owned_slot(comp *C, int width, bool varying, bool active) {
  nde__slot s = {0};
  s.width = width;
  s.varying = varying;
  s.active = active;
  if (varying) {
    s.arena = NDE__AR_VARY;
    s.off = C->T->vary_per_row;
    s.rs = width;
    C->T->vary_per_row += (size_t)width;
  } else {
    s.arena = NDE__AR_UNIF;
    s.off = C->T->unif_size;
    s.rs = 0;
    C->T->unif_size += (size_t)width;
  }
  return new_slot(C, s);
}

static bool grow_unif_init(comp *C) {
  nde__tape *T = C->T;
  double *p = realloc(T->unif_init, (T->unif_size ? T->unif_size : 1) * sizeof *p);
  if (!p) {
    C->fail = true;
    C->st = NDE_ERR_NOMEM;
    return false;
  }
  T->unif_init = p;
  return true;
}

int nde__c_const_slot(comp *C, int width, double v) {
  size_t old = C->T->unif_size;
  int s = nde__c_owned_slot(C, width, false, false);
  if (s < 0 || !grow_unif_init(C)) return -1;
  for (size_t i = old; i < C->T->unif_size; i++) C->T->unif_init[i] = v;
  C->T->slots[s].constant = true;
  return s;
}

int nde__c_view_slot(comp *C, int parent, int col, int width) {
  nde__slot s = C->T->slots[parent];
  s.col += col;
  s.width = width;
  int v = new_slot(C, s);
  if (v >= 0) C->root[v] = C->root[parent];
  return v;
}

void nde__c_failed(comp *C, nde_status st) {
  if (!C->fail) C->st = st;
  C->fail = true;
}

/* Count a read of slot s (and of its storage), or take one back. */
static void use(comp *C, int s) {
  if (s < 0) return;
  C->uses[s]++;
  C->ruses[C->root[s]]++;
}
static void unuse(comp *C, int s) {
  if (s < 0) return;
  C->uses[s]--;
  C->ruses[C->root[s]]--;
}

/* The workspace one batch row needs once compiled: the values, adjoints and tangents of the
 * varying arena (values and net caches) and of the uniform one.  Past NDE_MODEL_MAX_ROW_BYTES
 * the compile fails at expression e (-1: the first line), the place where the limit was crossed. */
static void check_workspace(comp *C, int e) {
  const nde__tape *T = C->T;
  const double values =
      (double)T->vary_per_row + (double)T->vary_cache_per_row + (double)T->unif_size;
  const double bytes = 3.0 * (double)sizeof(double) * values;
  if (C->fail || bytes <= (double)NDE_MODEL_MAX_ROW_BYTES) return;
  const nde__pos pos = e >= 0 ? C->A->exprs[e].pos : (nde__pos){1, 1, 0};
  nde__diag_error(C->d, NDE_ERR_LIMIT, pos,
                  "evaluating the model up to here needs %.1f MiB of workspace per batch row, "
                  "more than the limit of %d MiB (expected fewer or narrower intermediate values)",
                  ceil(bytes / 104857.6) / 10, NDE_MODEL_MAX_ROW_BYTES >> 20);
  C->fail = true;
  C->st = NDE_ERR_LIMIT;
}

/* ---- instructions ---- */

int nde__c_emit(comp *C, nde__instr in) {
  nde__tape *T = C->T;
  const nde__slot *o = &T->slots[in.out];
  if (C->n_u + C->n_v + 1 > NDE_MODEL_MAX_TAPE) {
    if (!C->fail)
      nde__diag_error(C->d, NDE_ERR_LIMIT, (nde__pos){1, 1, 0},
                      "the model needs more than %d tape instructions", NDE_MODEL_MAX_TAPE);
    C->fail = true;
    C->st = NDE_ERR_LIMIT;
    return -1;
  }
  nde__instr **code = o->varying ? &C->vcode : &C->ucode;
  int *n = o->varying ? &C->n_v : &C->n_u;
  int *cap = o->varying ? &C->cap_v : &C->cap_u;
  if (*n == *cap) {
    int c = *cap ? 2 * *cap : 64;
    nde__instr *p = realloc(*code, (size_t)c * sizeof *p);
    if (!p) {
      C->fail = true;
      C->st = NDE_ERR_NOMEM;
      return -1;
    }
    *code = p;
    *cap = c;
  }
  use(C, in.a);
  use(C, in.b);
  use(C, nde__third(&in));
  if (o->varying) C->vproducer[in.out] = *n;
  (*code)[(*n)++] = in;
  return in.out;
}

nde__instr nde__c_instr(nde__op op, int out, int a, int b) {
  nde__instr in;
  memset(&in, 0, sizeof in);
  in.op = (uint8_t)op;
  in.out = out;
  in.a = a;
  in.b = b;
  return in;
}

/* Make the output slot of an op on the operands and emit it; folded when all are constant.
 * The output has a derivative when an operand it depends on differentiably has one (not for
 * ops of zero derivative, nor through the condition of ifelse). */
int nde__c_op(comp *C, nde__instr in, int width) {
  if (C->fail) return -1;
  const nde__slot *sa = in.a >= 0 ? &C->T->slots[in.a] : NULL;
  const nde__slot *sb = in.b >= 0 ? &C->T->slots[in.b] : NULL;
  const nde__slot *sc = nde__third(&in) >= 0 ? &C->T->slots[nde__third(&in)] : NULL;
  const uint8_t kind = nde__op_kind[in.op];
  bool varying = (sa && sa->varying) || (sb && sb->varying) || (sc && sc->varying);
  bool active = (sa && sa->active) || (sb && sb->active) ||
                (sc && sc->active && in.op != NDE__OP_IFELSE);
  if (kind == NDE__K_UNARY0 || kind == NDE__K_BINARY0) active = false;
  bool constant = (!sa || sa->constant) && (!sb || sb->constant) && (!sc || sc->constant) &&
                  (sa || sb);
  if (constant) {
    int s = nde__c_const_slot(C, width, 0.0);
    if (s < 0) return -1;
    in.out = s;
    double *bases[NDE__AR_COUNT] = {C->T->unif_init, NULL, NULL, NULL};
    nde__exec_const(C->T, &in, bases);
    return s;
  }
  in.out = nde__c_owned_slot(C, width, varying, active);
  if (in.out < 0) return -1;
  return nde__c_emit(C, in);
}


static int param_slot(comp *C, int p) {
  if (C->param_slot[p] >= 0) return C->param_slot[p];
  const nde_model_param_info *pi = &C->m->params[p].info;
  int s;
  if (!pi->learnable) {
    s = nde__c_const_slot(C, 1, pi->value);
  } else if (pi->per_series) {
    /* One value per row, read at the row's series. */
    s = nde__c_owned_slot(C, 1, true, true);
    if (s < 0) return -1;
    nde__instr in = nde__c_instr(pi->transform == NDE_TRANSFORM_LOG ? NDE__OP_SPARAM_EXP
                          : pi->transform == NDE_TRANSFORM_LOGIT ? NDE__OP_SPARAM_LOGIT
                                                                 : NDE__OP_SPARAM,
                          s, -1, -1);
    in.iarg = (int)pi->offset;
    in.lo = pi->lo;
    in.hi = pi->hi;
    if (nde__c_emit(C, in) < 0) return -1;
    C->T->uses_series = true;
  } else {
    s = nde__c_owned_slot(C, 1, false, true);
    if (s < 0) return -1;
    nde__instr in = nde__c_instr(pi->transform == NDE_TRANSFORM_LOG ? NDE__OP_PARAM_EXP
                          : pi->transform == NDE_TRANSFORM_LOGIT ? NDE__OP_PARAM_LOGIT
                                                                 : NDE__OP_PARAM,
                          s, -1, -1);
    in.iarg = (int)pi->offset;
    in.lo = pi->lo;
    in.hi = pi->hi;
    if (nde__c_emit(C, in) < 0) return -1;
  }
  C->param_slot[p] = s;
  return s;
}

/* A measured input: per row, no derivative. */
static int input_slot(comp *C, int i) {
  if (C->input_slot[i] >= 0) return C->input_slot[i];
  int s = nde__c_owned_slot(C, 1, true, false);
  if (s < 0) return -1;
  nde__instr in = nde__c_instr(NDE__OP_INPUT, s, -1, -1);
  in.iarg = i;
  if (nde__c_emit(C, in) < 0) return -1;
  C->T->uses_inputs = C->T->uses_series = true;
  return C->input_slot[i] = s;
}

/* A constant: folded when written in the file, per row when from data. */
static int const_value_slot(comp *C, int c) {
  if (C->const_slot[c] >= 0) return C->const_slot[c];
  const nde_model_const_info *ci = &C->m->consts[c].info;
  int s;
  if (!ci->from_data) {
    s = nde__c_const_slot(C, 1, ci->value);
  } else {
    s = nde__c_owned_slot(C, 1, true, false);
    if (s < 0) return -1;
    nde__instr in = nde__c_instr(NDE__OP_DCONST, s, -1, -1);
    in.iarg = ci->column;
    if (nde__c_emit(C, in) < 0) return -1;
    C->T->uses_series = true;
  }
  return C->const_slot[c] = s;
}

/* Whether a slot is a block of whole rows that a net can read (B x width, contiguous). */
static bool contiguous(const nde__slot *s) {
  return s->col == 0 && (s->rs == s->width || s->rs == 0);
}

int nde__c_concat_slots(comp *C, const int *slots, int n) {
  nde__tape *T = C->T;
  if (n < 1 || C->fail) return -1;
  int width = 0;
  bool varying = false, active = false, constant = true;
  for (int i = 0; i < n; i++) {
    const nde__slot *s = &T->slots[slots[i]];
    width += s->width;
    varying = varying || s->varying;
    active = active || s->active;
    constant = constant && s->constant;
  }
  if (n == 1) return slots[0];
  /* Views of consecutive columns that cover a whole slot are that slot (U(x, y) reads U). */
  {
    const nde__slot *s0 = &T->slots[slots[0]];
    bool whole = s0->col == 0;
    int col = 0;
    for (int i = 0; i < n && whole; i++) {
      const nde__slot *s = &T->slots[slots[i]];
      whole = s->arena == s0->arena && s->off == s0->off && s->rs == s0->rs && s->col == col &&
              s->varying;
      col += s->width;
    }
    if (whole && col == s0->rs) {
      nde__slot full = *s0;
      full.width = col;
      const int r = new_slot(C, full);
      if (r >= 0) C->root[r] = C->root[slots[0]];
      return r;
    }
  }
  if (T->n_concat_ops + n > T->cap_concat_ops) {
    int cap = 2 * (T->n_concat_ops + n) + 16;
    int *p = realloc(T->concat_ops, (size_t)cap * sizeof *p);
    if (!p) {
      nde__c_failed(C, NDE_ERR_NOMEM);
      return -1;
    }
    T->concat_ops = p;
    T->cap_concat_ops = cap;
  }
  nde__instr in = nde__c_instr(NDE__OP_CONCAT, -1, -1, -1);
  in.iarg = T->n_concat_ops;
  in.n_ops = n;
  for (int i = 0; i < n; i++) {
    T->concat_ops[T->n_concat_ops++] = slots[i];
    use(C, slots[i]);
  }
  if (constant) {
    const int r = nde__c_const_slot(C, width, 0.0);
    if (r < 0) return -1;
    in.out = r;
    double *bases[NDE__AR_COUNT] = {T->unif_init, NULL, NULL, NULL};
    nde__exec_const(T, &in, bases);
    return r;
  }
  in.out = nde__c_owned_slot(C, width, varying, active);
  if (in.out < 0) return -1;
  return nde__c_emit(C, in);
}

/* The input of a net call or a list: one slot of the concatenated arguments. */
static int concat(comp *C, const int *args, int n) {
  if (n < 1) return -1;
  int *slots = malloc((size_t)n * sizeof *slots);
  if (!slots) {
    nde__c_failed(C, NDE_ERR_NOMEM);
    return -1;
  }
  int result = -1;
  for (int i = 0; i < n; i++) {
    slots[i] = nde__c_expr(C, args[i]);
    if (slots[i] < 0) goto done;
  }
  result = nde__c_concat_slots(C, slots, n);
done:
  free(slots);
  return result;
}

static int compile_net_call(comp *C, const nde__expr *x, int net) {
  nde__tape *T = C->T;
  int in_slot = concat(C, C->A->args + x->args, x->n_args);
  if (in_slot < 0) return -1;
  if (!contiguous(&T->slots[in_slot]) ) {
    /* A single view that is not whole rows (e.g. net(y[2]) on a vector): copy it. */
    nde__instr cp = nde__c_instr(NDE__OP_COPY, -1, in_slot, -1);
    in_slot = nde__c_op(C, cp, T->slots[in_slot].width);
    if (in_slot < 0) return -1;
  }
  const nde_net *nn = C->m->nets[net].net;
  const nde__slot *si = &T->slots[in_slot];
  bool varying = si->varying;
  nde__instr in = nde__c_instr(NDE__OP_NET, -1, in_slot, -1);
  in.iarg = net;
  int n_in = nde_net_n_in(nn), n_out = nde_net_n_out(nn);
  if (n_in > T->max_net_in) T->max_net_in = n_in;
  if (n_out > T->max_net_out) T->max_net_out = n_out;
  size_t per_row = nde__net_cache_per_row(nn);
  if (varying) {
    in.cache_off = T->vary_cache_per_row; /* moved behind the values at the end */
    T->vary_cache_per_row += per_row;
  } else {
    in.cache_off = T->unif_size;
    T->unif_size += nde_net_cache_size(nn, 1);
  }
  in.out = nde__c_owned_slot(C, nde_net_n_out(nn), varying, true);
  if (in.out < 0) return -1;
  return nde__c_emit(C, in);
}

/* a*b + c, a*b - c, c + a*b and c - a*b where the product is an unnamed varying temporary of
 * the same width: one MULADD instead of a MUL and an ADD (half the passes over the batch, one
 * temporary less).  Returns the result slot, -1 on failure, -2 when it does not apply. */
static int fuse_muladd(comp *C, int a, int b, bool sub, int width) {
  nde__tape *T = C->T;
  int prod = -1, other = -1;
  double sp = 1, sc = 1;
  for (int side = 0; side < 2 && prod < 0; side++) {
    int s = side == 0 ? a : b;
    int p = C->vproducer[s];
    if (p < 0 || C->named[s] || C->ruses[s] != 0 || C->vcode[p].out != s ||
        C->vcode[p].op != NDE__OP_MUL || T->slots[s].width != width)
      continue;
    prod = s;
    other = side == 0 ? b : a;
    sp = (side == 1 && sub) ? -1.0 : 1.0;
    sc = (side == 0 && sub) ? -1.0 : 1.0;
  }
  if (prod < 0) return -2;
  nde__instr *mul = &C->vcode[C->vproducer[prod]];
  nde__instr in = nde__c_instr(NDE__OP_MULADD, -1, mul->a, mul->b);
  in.iarg = other;
  in.lo = sp;
  in.hi = sc;
  /* The product's MUL is dropped; its operands are now read by the MULADD. */
  unuse(C, mul->a);
  unuse(C, mul->b);
  mul->op = NDE__OP_NOP;
  C->vproducer[prod] = -1;
  use(C, other);
  in.out = nde__c_owned_slot(C, width, true, true);
  if (in.out < 0) return -1;
  return nde__c_emit(C, in);
}

static bool int_literal(const nde__ast *A, int e, long *n) {
  const nde__expr *x = &A->exprs[e];
  double sign = 1;
  if (x->kind == NDE__E_NEG) {
    sign = -1;
    x = &A->exprs[x->a];
  }
  if (x->kind != NDE__E_NUM) return false;
  double v = sign * x->num;
  if (v != floor(v) || fabs(v) > 1024) return false;
  *n = (long)v;
  return true;
}

int nde__c_expr(comp *C, int e) {
  if (C->fail) return -1;
  const nde__ast *A = C->A;
  const nde__expr *x = &A->exprs[e];
  switch (x->kind) {
    case NDE__E_NUM: return nde__c_const_slot(C, 1, x->num);
    case NDE__E_NAME: {
      if (x->sym < 0) { /* t */
        if (C->time_slot < 0) {
          int s = nde__c_owned_slot(C, 1, false, false);
          if (s < 0) return -1;
          C->time_slot = nde__c_emit(C, nde__c_instr(NDE__OP_TIME, s, -1, -1));
        }
        return C->time_slot;
      }
      const nde__sym *y = &A->syms[x->sym];
      switch (y->kind) {
        case NDE__SYM_STATE: {
          const nde__state_decl *st = &A->states[y->index];
          return nde__c_view_slot(C, 0, st->offset, st->size);
        }
        case NDE__SYM_PARAM: return param_slot(C, y->index);
        case NDE__SYM_INTER:
          /* Every intermediate an output reaches was compiled before it (nde__close_needed). */
          if (C->inter_slot[y->index] < 0 && !C->fail) {
            C->fail = true;
            C->st = NDE_ERR_INTERNAL;
          }
          return C->inter_slot[y->index];
        case NDE__SYM_INPUT: return input_slot(C, y->index);
        case NDE__SYM_CONST: return const_value_slot(C, y->index);
        case NDE__SYM_NET: break;
      }
      return -1;
    }
    case NDE__E_CALL: {
      if (x->func < 0) return compile_net_call(C, x, A->syms[x->sym].index);
      if (x->func == NDE__F_GRAD) return nde__grad_compile(C, e);
      int arg[3] = {-1, -1, -1};
      for (int i = 0; i < x->n_args && i < 3; i++) {
        arg[i] = nde__c_expr(C, A->args[x->args + i]);
        if (arg[i] < 0) return -1;
      }
      switch ((nde__func)x->func) {
        case NDE__F_MIN: return nde__c_op(C, nde__c_instr(NDE__OP_MIN, -1, arg[0], arg[1]), x->size);
        case NDE__F_MAX: return nde__c_op(C, nde__c_instr(NDE__OP_MAX, -1, arg[0], arg[1]), x->size);
        case NDE__F_CLAMP: {
          /* clamp(x, lo, hi) = min(max(x, lo), hi): the derivative in x is 1 on [lo, hi]. */
          const int w1 = C->T->slots[arg[0]].width > C->T->slots[arg[1]].width
                             ? C->T->slots[arg[0]].width : C->T->slots[arg[1]].width;
          int lo = nde__c_op(C, nde__c_instr(NDE__OP_MAX, -1, arg[0], arg[1]), w1);
          if (lo < 0) return -1;
          return nde__c_op(C, nde__c_instr(NDE__OP_MIN, -1, lo, arg[2]), x->size);
        }
        case NDE__F_IFELSE: {
          nde__instr in = nde__c_instr(NDE__OP_IFELSE, -1, arg[1], arg[2]);
          in.iarg = arg[0];
          return nde__c_op(C, in, x->size);
        }
        default: {
          static const nde__op unary_op[NDE__F_COUNT] = {
              [NDE__F_EXP] = NDE__OP_EXP, [NDE__F_LOG] = NDE__OP_LOG, [NDE__F_SQRT] = NDE__OP_SQRT,
              [NDE__F_SIN] = NDE__OP_SIN, [NDE__F_COS] = NDE__OP_COS, [NDE__F_TANH] = NDE__OP_TANH,
              [NDE__F_ABS] = NDE__OP_ABS, [NDE__F_STEP] = NDE__OP_STEP};
          return nde__c_op(C, nde__c_instr(unary_op[x->func], -1, arg[0], -1), x->size);
        }
      }
    }
    case NDE__E_MATMUL: {
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      int b = nde__c_expr(C, x->b);
      if (b < 0) return -1;
      const nde__expr *ea = &A->exprs[x->a];
      nde__instr in = nde__c_instr(NDE__OP_MATMUL, -1, a, b);
      in.iarg = ea->size / ea->mcols;
      in.n_ops = ea->mcols;
      return nde__c_op(C, in, x->size);
    }
    case NDE__E_INDEX: {
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      return nde__c_view_slot(C, a, (int)x->index - 1, 1);
    }
    case NDE__E_LIST: return concat(C, A->args + x->args, x->n_args);
    case NDE__E_NEG: {
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      return nde__c_op(C, nde__c_instr(NDE__OP_NEG, -1, a, -1), x->size);
    }
    case NDE__E_POW: {
      long n;
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      if (int_literal(A, x->b, &n)) {
        if (n == 1 && C->T->slots[a].width == x->size) return a;
        if (n == 0) return nde__c_const_slot(C, x->size, 1.0);
        nde__instr in = nde__c_instr(NDE__OP_POWI, -1, a, -1);
        in.iarg = (int)n;
        return nde__c_op(C, in, x->size);
      }
      int b = nde__c_expr(C, x->b);
      if (b < 0) return -1;
      return nde__c_op(C, nde__c_instr(NDE__OP_POW, -1, a, b), x->size);
    }
    case NDE__E_LT:
    case NDE__E_LE:
    case NDE__E_GT:
    case NDE__E_GE: {
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      int b = nde__c_expr(C, x->b);
      if (b < 0) return -1;
      nde__op op = x->kind == NDE__E_LT   ? NDE__OP_LT
                   : x->kind == NDE__E_LE ? NDE__OP_LE
                   : x->kind == NDE__E_GT ? NDE__OP_GT
                                          : NDE__OP_GE;
      return nde__c_op(C, nde__c_instr(op, -1, a, b), x->size);
    }
    case NDE__E_ADD:
    case NDE__E_SUB:
    case NDE__E_MUL:
    case NDE__E_DIV: {
      int a = nde__c_expr(C, x->a);
      if (a < 0) return -1;
      int b = nde__c_expr(C, x->b);
      if (b < 0) return -1;
      nde__op op = x->kind == NDE__E_ADD   ? NDE__OP_ADD
                   : x->kind == NDE__E_SUB ? NDE__OP_SUB
                   : x->kind == NDE__E_MUL ? NDE__OP_MUL
                                           : NDE__OP_DIV;
      if (op == NDE__OP_ADD || op == NDE__OP_SUB) {
        int f = fuse_muladd(C, a, b, op == NDE__OP_SUB, x->size);
        if (f != -2) return f;
      }
      return nde__c_op(C, nde__c_instr(op, -1, a, b), x->size);
    }
  }
  return -1;
}

/* An output: columns [col, col + size) of the output block = an expression or a state column. */
static void compile_output(comp *C, const nde__output *q) {
  int s;
  if (q->expr < 0) {
    s = nde__c_view_slot(C, 0, q->ucol, 1);
  } else if (q->expr == C->out_expr && C->uses[C->out_slot] >= 0) {
    s = C->out_slot; /* the next part of d[x, y]/dt = ... (not moved into the output block) */
  } else {
    s = C->out_slot = nde__c_expr(C, q->expr);
    C->out_expr = q->expr;
  }
  if (s < 0) return;
  if (q->expr >= 0 && (q->src != 0 || C->T->slots[s].width != q->size)) s = nde__c_view_slot(C, s, q->src, q->size);
  if (s < 0) return;
  int target = nde__c_view_slot(C, 1, q->col, q->size);
  if (target < 0) return;
  int p = C->vproducer[s];
  if (q->expr >= 0 && p >= 0 && C->ruses[s] == 0 && !C->named[s] && C->vcode[p].out == s &&
      C->T->slots[s].width == q->size) {
    nde__op op = (nde__op)C->vcode[p].op;
    /* These ops need only their operands in the reverse sweep, so their result may live in
     * the output block, which the VJP does not see. */
    if (op == NDE__OP_ADD || op == NDE__OP_SUB || op == NDE__OP_MUL || op == NDE__OP_DIV ||
        op == NDE__OP_NEG || op == NDE__OP_MULADD || op == NDE__OP_MIN || op == NDE__OP_MAX ||
        op == NDE__OP_IFELSE) {
      C->vcode[p].out = target;
      C->uses[s] = C->ruses[s] = -1; /* orphaned */
      return;
    }
  }
  nde__instr in = nde__c_instr(NDE__OP_COPY, target, s, -1);
  nde__c_emit(C, in);
}

/* Whether instruction in is dead: it writes a slot of its own that nothing reads. */
static bool dead(const comp *C, const nde__instr *in) {
  return in->op != NDE__OP_NOP && C->root[in->out] == in->out && in->out > 1 &&
         C->ruses[in->out] == 0;
}

static void drop(comp *C, nde__instr *in) {
  unuse(C, in->a);
  unuse(C, in->b);
  unuse(C, nde__third(in));
  if (in->op == NDE__OP_CONCAT)
    for (int j = 0; j < in->n_ops; j++) unuse(C, C->T->concat_ops[in->iarg + j]);
  in->op = NDE__OP_NOP;
}

/* Remove the instructions whose values nothing reads, last first so that their operands'
 * counts drop before those are looked at.  grad leaves such code: the value of the expression
 * it differentiates, whose net calls stay (flagged NDE__IF_CACHE_ONLY) when a NET_VJP reads
 * their forward cache. */
static nde_status drop_dead_code(comp *C) {
  size_t *live = malloc(((size_t)C->n_v + 1) * sizeof *live); /* caches that NET_VJPs read */
  if (!live) return NDE_ERR_NOMEM;
  int n_live = 0;
  for (int k = C->n_v - 1; k >= 0; k--) {
    nde__instr *in = &C->vcode[k];
    if (!dead(C, in)) {
      if (in->op == NDE__OP_NET_VJP) live[n_live++] = in->cache_off;
      continue;
    }
    bool cached = false;
    if (in->op == NDE__OP_NET)
      for (int j = 0; j < n_live && !cached; j++) cached = live[j] == in->cache_off;
    if (cached) {
      in->flags |= NDE__IF_CACHE_ONLY;
      continue;
    }
    drop(C, in);
  }
  for (int k = C->n_u - 1; k >= 0; k--)
    if (dead(C, &C->ucode[k])) drop(C, &C->ucode[k]);
  free(live);
  return NDE_OK;
}

/* Whether the reverse sweep of instruction in reads the value of its operand slot x (it always
 * reads theta).  Sums, copies, negations, concatenations and selections by a constant need no
 * values; the rest read their operands (not their own results, which the output block may hold):
 * products their factors, functions their arguments, ifelse its condition, a net call its
 * input (and its forward cache), a NET_VJP its input and cotangent. */
static bool rev_reads(const nde__instr *in, int x) {
  switch ((nde__op)in->op) {
    case NDE__OP_COPY:
    case NDE__OP_NEG:
    case NDE__OP_ADD:
    case NDE__OP_SUB:
    case NDE__OP_CONCAT:
    case NDE__OP_SUM: return false;
    case NDE__OP_MULADD: return x == in->a || x == in->b;
    case NDE__OP_IFELSE: return x == in->iarg;
    default: return x == in->a || x == in->b;
  }
}

/* Flag the varying instructions a VJP without f's cache need not run forward
 * (NDE__IF_NOT_FOR_VJP): from the last one back, an instruction runs when the reverse sweep or
 * a running instruction reads its value, when its own reverse sweep reads its forward cache (a
 * net call with an adjoint), when a running NET_VJP reads its cache, or when it may fail (a
 * measured input outside its span); what a running instruction reads runs too. */
static nde_status mark_vjp_forward(comp *C) {
  nde__tape *T = C->T;
  bool *need = calloc((size_t)T->n_slots + 1, sizeof *need);
  size_t *caches = malloc(((size_t)T->n_code + 1) * sizeof *caches); /* of running NET_VJPs */
  if (!need || !caches) {
    free(need);
    free(caches);
    return NDE_ERR_NOMEM;
  }
  int n_caches = 0;
  for (int k = T->n_code - 1; k >= T->n_unif_code; k--) {
    nde__instr *in = &T->code[k];
    const int ops[3] = {in->a, in->b, nde__third(in)};
    const bool has_rev = T->slots[in->out].active && !(in->flags & NDE__IF_CACHE_ONLY);
    bool run = need[C->root[in->out]] || (has_rev && in->op == NDE__OP_NET) || in->op == NDE__OP_INPUT;
    if (in->op == NDE__OP_NET)
      for (int j = 0; j < n_caches && !run; j++) run = caches[j] == in->cache_off;
    if (run && in->op == NDE__OP_NET_VJP) caches[n_caches++] = in->cache_off;
    if (!run) in->flags |= NDE__IF_NOT_FOR_VJP;
    for (int j = 0; j < 3; j++)
      if (ops[j] >= 0 && (run || (has_rev && rev_reads(in, ops[j])))) need[C->root[ops[j]]] = true;
    if (run && in->op == NDE__OP_CONCAT)
      for (int j = 0; j < in->n_ops; j++) need[C->root[T->concat_ops[in->iarg + j]]] = true;
  }
  free(need);
  free(caches);
  return NDE_OK;
}

/* ---- model tables ---- */

static nde_status build_tables(const nde__ast *A, nde__diags *d, nde_model *m) {
  m->n_states = A->n_states;
  m->n_state_total = A->n_state_total;
  m->states = calloc((size_t)A->n_states + 1, sizeof *m->states);
  m->comp_names = calloc((size_t)A->n_state_total + 1, sizeof *m->comp_names);
  m->params = calloc((size_t)A->n_params + 1, sizeof *m->params);
  m->nets = calloc((size_t)A->n_nets + 1, sizeof *m->nets);
  m->inputs = calloc((size_t)A->n_inputs + 1, sizeof *m->inputs);
  m->consts = calloc((size_t)A->n_consts + 1, sizeof *m->consts);
  m->layout = calloc((size_t)A->n_decl + 1, sizeof *m->layout);
  int n_obs = 0;
  for (int i = 0; i < A->n_inters; i++) n_obs += A->inters[i].observed;
  m->obs_names = calloc((size_t)n_obs + 1, sizeof *m->obs_names);
  if (!m->states || !m->comp_names || !m->params || !m->nets || !m->inputs || !m->consts ||
      !m->layout || !m->obs_names)
    return NDE_ERR_NOMEM;
  for (int i = 0; i < A->n_states; i++) {
    const nde__state_decl *sd = &A->states[i];
    nde__statem *s = &m->states[i];
    s->name = dupn(sd->name, sd->name_len);
    s->initial = calloc((size_t)sd->size, sizeof(double));
    if (!s->name || !s->initial) return NDE_ERR_NOMEM;
    if (sd->has_init) memcpy(s->initial, sd->init, (size_t)sd->size * sizeof(double));
    s->info = (nde_model_state_info){s->name, sd->size, sd->is_vector, sd->offset, sd->has_init, s->initial};
    for (int k = 0; k < sd->size; k++) {
      char buf[32];
      int extra = sd->is_vector ? snprintf(buf, sizeof buf, "[%d]", k + 1) : 0;
      char *nm = malloc((size_t)sd->name_len + (size_t)extra + 1);
      if (!nm) return NDE_ERR_NOMEM;
      memcpy(nm, sd->name, (size_t)sd->name_len);
      if (extra) memcpy(nm + sd->name_len, buf, (size_t)extra);
      nm[sd->name_len + extra] = '\0';
      m->comp_names[sd->offset + k] = nm;
    }
  }
  m->n_params = A->n_params;
  for (int i = 0; i < A->n_params; i++) {
    const nde__param_decl *pd = &A->params[i];
    nde__param *p = &m->params[i];
    p->name = dupn(pd->name, pd->name_len);
    if (!p->name) return NDE_ERR_NOMEM;
    nde_model_param_info *pi = &p->info;
    pi->name = p->name;
    pi->value = pd->value;
    pi->learnable = !pd->fixed;
    pi->positive = pd->positive;
    pi->bounded = pd->bounded;
    pi->lo = pd->bounded ? pd->lo : (pd->positive ? 0 : -INFINITY);
    pi->hi = pd->bounded ? pd->hi : INFINITY;
    pi->transform = pd->fixed ? NDE_TRANSFORM_NONE
                    : pd->positive ? NDE_TRANSFORM_LOG
                    : pd->bounded ? NDE_TRANSFORM_LOGIT
                                  : NDE_TRANSFORM_NONE;
    pi->offset = (size_t)-1;
    pi->line = pd->pos.line;
    pi->per_series = pd->per_series;
    /* Per-series parameters take the next index of a series' block, in declaration order. */
    if (pd->per_series) pi->offset = (size_t)m->n_sp++;
  }
  m->n_nets = A->n_nets;
  for (int i = 0; i < A->n_nets; i++) {
    const nde__net_decl *nd = &A->nets[i];
    nde__netm *n = &m->nets[i];
    n->name = dupn(nd->name, nd->name_len);
    if (!n->name) return NDE_ERR_NOMEM;
    nde_status st = nde_net_create(nd->n_layers, nd->widths, nd->acts, &n->net, NULL);
    if (st != NDE_OK) return st;
    n->init = nd->init;
    n->sigma = nd->sigma;
  }
  m->n_inputs = A->n_inputs;
  for (int i = 0; i < A->n_inputs; i++) {
    const nde__input_decl *id = &A->inputs[i];
    nde__inputm *in = &m->inputs[i];
    in->name = dupn(id->name, id->name_len);
    if (!in->name) return NDE_ERR_NOMEM;
    in->info = (nde_model_input_info){in->name, id->interp, id->hold, id->pos.line};
  }
  m->n_consts = A->n_consts;
  for (int i = 0; i < A->n_consts; i++) {
    const nde__const_decl *cd = &A->consts[i];
    nde__constm *c = &m->consts[i];
    c->name = dupn(cd->name, cd->name_len);
    if (!c->name) return NDE_ERR_NOMEM;
    c->info = (nde_model_const_info){c->name, cd->from_data, cd->from_data ? NAN : cd->value,
                                     cd->from_data ? m->n_data_consts++ : -1, cd->pos.line};
  }
  for (int i = 0; i < A->n_inters; i++) {
    if (!A->inters[i].observed) continue;
    char *nm = dupn(A->inters[i].name, A->inters[i].name_len);
    if (!nm) return NDE_ERR_NOMEM;
    m->obs_names[m->n_obs++] = nm;
  }
  /* theta: learnable shared parameters and nets in declaration order. */
  size_t off = 0;
  for (int k = 0; k < A->n_decl; k++) {
    int code = A->decl_order[k];
    nde_model_layout_entry *L = &m->layout[m->n_layout];
    if (code >= 0) {
      nde__param *p = &m->params[code];
      if (!p->info.learnable || p->info.per_series) continue;
      p->info.offset = off;
      *L = (nde_model_layout_entry){p->name, NDE_LAYOUT_PARAM, off, 1, p->info.transform, code};
      off += 1;
    } else {
      int ni = -code - 1;
      nde__netm *n = &m->nets[ni];
      size_t np = nde_net_n_params(n->net);
      n->offset = off;
      *L = (nde_model_layout_entry){n->name, NDE_LAYOUT_NET, off, np, NDE_TRANSFORM_NONE, ni};
      /* Total learnable values (with one series' per-series parameters) within the limit,
       * before theta or any workspace is allocated. */
      const size_t before = off;
      if (!nde__add_size(off, np, &off) || off + (size_t)m->n_sp > NDE_MODEL_MAX_THETA) {
        nde__diag_error(d, NDE_ERR_LIMIT, A->nets[ni].pos,
                        "net '%s' has %zu weights and brings the model to %.0f learnable values, "
                        "more than the limit of %d (expected a smaller net)",
                        n->name, np, (double)before + (double)np + (double)m->n_sp,
                        NDE_MODEL_MAX_THETA);
        return NDE_ERR_LIMIT;
      }
    }
    m->n_layout++;
  }
  m->n_theta = off;
  return NDE_OK;
}

/* ---- tapes ---- */

/* Mark the intermediates expression e names (not their own dependencies). */
static void mark_needed(const nde__ast *A, int e, bool *need) {
  const nde__expr *x = &A->exprs[e];
  if (x->kind == NDE__E_NAME && x->sym >= 0 && A->syms[x->sym].kind == NDE__SYM_INTER)
    need[A->syms[x->sym].index] = true;
  if (x->a >= 0) mark_needed(A, x->a, need);
  if (x->b >= 0) mark_needed(A, x->b, need);
  for (int i = 0; i < x->n_args; i++) mark_needed(A, A->args[x->args + i], need);
}

void nde__close_needed(const nde__ast *A, bool *need) {
  /* The checker's order has dependencies first, so a sweep from the end reaches every
   * dependency of a needed intermediate. */
  for (int k = A->n_inter_order - 1; k >= 0; k--) {
    int i = A->inter_order[k];
    if (need[i]) mark_needed(A, A->inters[i].expr, need);
  }
}

void nde__mark_needed(const nde__ast *A, int expr, bool *need) { mark_needed(A, expr, need); }

nde_status nde__compile_tape(const nde__ast *A, nde__diags *d, const nde_model *m,
                             const nde__output *outs, int n_outs, int n_out_cols, nde__tape *T) {
  comp C;
  memset(&C, 0, sizeof C);
  memset(T, 0, sizeof *T);
  C.A = A;
  C.d = d;
  C.m = m;
  C.T = T;
  C.time_slot = -1;
  C.out_expr = -1;
  C.st = NDE_OK;
  nde_status st = NDE_OK;
  T->n_state = A->n_state_total;
  T->n_out = n_out_cols;
  C.param_slot = malloc(((size_t)A->n_params + 1) * sizeof *C.param_slot);
  C.input_slot = malloc(((size_t)A->n_inputs + 1) * sizeof *C.input_slot);
  C.const_slot = malloc(((size_t)A->n_consts + 1) * sizeof *C.const_slot);
  C.inter_slot = malloc(((size_t)A->n_inters + 1) * sizeof *C.inter_slot);
  bool *need = calloc((size_t)A->n_inters + 1, sizeof *need);
  if (!C.param_slot || !C.input_slot || !C.const_slot || !C.inter_slot || !need) {
    st = NDE_ERR_NOMEM;
    goto done;
  }
  for (int i = 0; i < A->n_params; i++) C.param_slot[i] = -1;
  for (int i = 0; i < A->n_inputs; i++) C.input_slot[i] = -1;
  for (int i = 0; i < A->n_consts; i++) C.const_slot[i] = -1;
  for (int i = 0; i < A->n_inters; i++) C.inter_slot[i] = -1;
  /* Slot 0 is U (B x n) and slot 1 the output block (B x n_out), outside the arenas. */
  nde__slot u = {NDE__AR_U, true, true, false, A->n_state_total, 0, 0, A->n_state_total};
  nde__slot du = {NDE__AR_DU, true, true, false, n_out_cols, 0, 0, n_out_cols};
  new_slot(&C, u);
  new_slot(&C, du);
  for (int k = 0; k < n_outs; k++)
    if (outs[k].expr >= 0) mark_needed(A, outs[k].expr, need);
  nde__close_needed(A, need);
  st = nde__grad_prepare(&C, outs, n_outs, need);
  if (st != NDE_OK) goto done;
  for (int k = 0; k < A->n_inter_order && !C.fail; k++) {
    int i = A->inter_order[k];
    if (!need[i]) continue;
    C.inter_slot[i] = nde__c_expr(&C, A->inters[i].expr);
    if (C.inter_slot[i] >= 0) C.named[C.inter_slot[i]] = true;
    check_workspace(&C, A->inters[i].expr);
  }
  for (int k = 0; k < n_outs && !C.fail; k++) {
    compile_output(&C, &outs[k]);
    check_workspace(&C, outs[k].expr);
  }
  if (C.fail) {
    st = C.st != NDE_OK ? C.st : NDE_ERR_NOMEM;
    goto done;
  }
  if (!grow_unif_init(&C)) {
    st = NDE_ERR_NOMEM;
    goto done;
  }
  st = drop_dead_code(&C);
  if (st != NDE_OK) goto done;
  /* The varying arena: values first (they have adjoints, zeroed per VJP), then net caches. */
  T->vary_values_per_row = T->vary_per_row;
  T->vary_per_row += T->vary_cache_per_row;
  for (int k = 0; k < C.n_v; k++)
    if (C.vcode[k].op == NDE__OP_NET || C.vcode[k].op == NDE__OP_NET_VJP)
      C.vcode[k].cache_off += T->vary_values_per_row;
  /* Uniform code first, then varying. */
  T->code = malloc(((size_t)C.n_u + C.n_v + 1) * sizeof *T->code);
  if (!T->code) {
    st = NDE_ERR_NOMEM;
    goto done;
  }
  T->n_code = 0;
  for (int k = 0; k < C.n_u; k++)
    if (C.ucode[k].op != NDE__OP_NOP) T->code[T->n_code++] = C.ucode[k];
  T->n_unif_code = T->n_code;
  for (int k = 0; k < C.n_v; k++)
    if (C.vcode[k].op != NDE__OP_NOP) T->code[T->n_code++] = C.vcode[k];
  st = mark_vjp_forward(&C);
done:
  nde__grad_free(&C);
  free(C.ruses);
  free(C.root);
  free(C.ucode);
  free(C.vcode);
  free(C.param_slot);
  free(C.input_slot);
  free(C.const_slot);
  free(C.inter_slot);
  free(C.vproducer);
  free(C.uses);
  free(C.named);
  free(need);
  return st;
}

nde_status nde__compile(const nde__ast *A, nde__diags *d, nde_model *m) {
  nde_status st = build_tables(A, d, m);
  if (st != NDE_OK) return st;
  nde__output *outs = malloc(((size_t)A->n_states + 1) * sizeof *outs);
  if (!outs) return NDE_ERR_NOMEM;
  int n_outs = 0;
  for (int e = 0; e < A->n_eqs; e++) {
    const nde__assign *q = &A->eqs[e];
    if (q->lhs_n == 0) {
      const nde__state_decl *sd = &A->states[q->state];
      outs[n_outs++] = (nde__output){q->expr, -1, sd->offset, sd->size, 0};
      continue;
    }
    /* d[x, y]/dt = EXPR: a part of EXPR per state, states next to each other in U in one. */
    int src = 0;
    for (int k = 0; k < q->lhs_n; k++) {
      const nde__expr *nx = &A->exprs[A->args[q->lhs_first + k]];
      const nde__state_decl *sd = &A->states[A->syms[nx->sym].index];
      nde__output *last = n_outs > 0 ? &outs[n_outs - 1] : NULL;
      if (k > 0 && last->col + last->size == sd->offset)
        last->size += sd->size;
      else
        outs[n_outs++] = (nde__output){q->expr, -1, sd->offset, sd->size, src};
      src += sd->size;
    }
  }
  st = nde__compile_tape(A, d, m, outs, n_outs, A->n_state_total, &m->tape);
  free(outs);
  if (st != NDE_OK) return st;
  /* Any mention of t, whether the equations or an observable read it (an unused intermediate
   * counts too: the flag only ever makes batching more cautious). */
  for (int e = 0; e < A->n_exprs && !m->uses_time; e++)
    m->uses_time = A->exprs[e].kind == NDE__E_NAME && A->exprs[e].sym < 0;
  const size_t n = (size_t)A->n_state_total;
  m->dep = malloc(n * n + 1);
  if (!m->dep) return NDE_ERR_NOMEM;
  return nde__tape_dependency(&m->tape, m->dep);
}

int nde__model_count_op(const nde_model *m, int op) {
  int k = 0;
  for (int i = 0; i < m->tape.n_code; i++) k += m->tape.code[i].op == op;
  return k;
}
