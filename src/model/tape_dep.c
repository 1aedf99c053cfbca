/* Structural dependencies of a tape's outputs on its state columns and its measured inputs,
 * propagated forward through the varying code: each stored column carries the set of variables
 * (U columns, then inputs) it may depend on (values, not derivatives: comparisons, steps and
 * ifelse conditions count).  Elementwise ops join
 * their operands column by column (a broadcast scalar joins every column); a net joins all of
 * its inputs into every output, and so do a net's VJP (inputs and cotangent) and a SUM.  Uniform values and data bound per series depend on no state.
 * The sets are bit words over 64 U columns at a time, so memory is one word per column. */
#include <stdlib.h>
#include <string.h>

#include "tape.h"

typedef struct dctx {
  const nde__tape *T;
  uint64_t *w;  /* per stored column: vary values, then U, then the output block */
  size_t nv;    /* vary_values_per_row */
  size_t j0;    /* the first variable of this pass's 64 */
} dctx;

/* The word of column c of slot s (a broadcast scalar reads its only column); NULL when the
 * slot lives in the uniform arena (no state dependence). */
static uint64_t *col_word(const dctx *D, int s, int c) {
  const nde__slot *sl = &D->T->slots[s];
  const size_t cc = (size_t)sl->col + (size_t)(sl->width == 1 ? 0 : c);
  switch ((nde__arena)sl->arena) {
    case NDE__AR_VARY: return sl->off + cc < D->nv ? &D->w[sl->off + cc] : NULL;
    case NDE__AR_U: return &D->w[D->nv + cc];
    case NDE__AR_DU: return &D->w[D->nv + (size_t)D->T->n_state + cc];
    default: return NULL;
  }
}

static uint64_t read_word(const dctx *D, int s, int c) {
  if (s < 0) return 0;
  const uint64_t *p = col_word(D, s, c);
  return p ? *p : 0;
}

static void propagate(const dctx *D, const nde__instr *in) {
  const nde__tape *T = D->T;
  const nde__slot *so = &T->slots[in->out];
  const int w = so->width;
  switch ((nde__op)in->op) {
    case NDE__OP_INPUT: {
      /* Input k is variable n_state + k. */
      const size_t v = (size_t)T->n_state + (size_t)in->iarg;
      uint64_t *o = col_word(D, in->out, 0);
      if (o) *o = v >= D->j0 && v - D->j0 < 64 ? (uint64_t)1 << (v - D->j0) : 0;
      return;
    }
    case NDE__OP_CONCAT: {
      int col = 0;
      for (int k = 0; k < in->n_ops; k++) {
        const int sk = T->concat_ops[in->iarg + k];
        for (int c = 0; c < T->slots[sk].width; c++) {
          uint64_t *o = col_word(D, in->out, col + c);
          if (o) *o = read_word(D, sk, c);
        }
        col += T->slots[sk].width;
      }
      return;
    }
    case NDE__OP_NET:
    case NDE__OP_NET_VJP:
    case NDE__OP_SUM: {
      /* Every output column joins every input column (NET_VJP: of the net's input and of the
       * cotangent). */
      uint64_t all = 0;
      for (int c = 0; c < T->slots[in->a].width; c++) all |= read_word(D, in->a, c);
      if (in->op == NDE__OP_NET_VJP)
        for (int c = 0; c < T->slots[in->b].width; c++) all |= read_word(D, in->b, c);
      for (int c = 0; c < w; c++) {
        uint64_t *o = col_word(D, in->out, c);
        if (o) *o = all;
      }
      return;
    }
    case NDE__OP_MATMUL: {
      /* out[i, j] joins row i of A and column j of X (either stored transposed). */
      const int r = in->iarg, c = in->n_ops, k = w / in->iarg;
      const bool ta = in->flags & NDE__IF_TA, tb = in->flags & NDE__IF_TB;
      for (int i = 0; i < r; i++)
        for (int j = 0; j < k; j++) {
          uint64_t bits = 0;
          for (int l = 0; l < c; l++)
            bits |= read_word(D, in->a, ta ? l * r + i : i * c + l) |
                    read_word(D, in->b, tb ? j * c + l : l * k + j);
          uint64_t *o = col_word(D, in->out, i * k + j);
          if (o) *o = bits;
        }
      return;
    }
    default: {
      /* Elementwise (and the data ops, which have no operands). */
      const int third = nde__third(in);
      for (int c = 0; c < w; c++) {
        uint64_t *o = col_word(D, in->out, c);
        if (o) *o = read_word(D, in->a, c) | read_word(D, in->b, c) | read_word(D, third, c);
      }
      return;
    }
  }
}

nde_status nde__tape_var_dependency(const nde__tape *T, int n_inputs, unsigned char *dep) {
  const size_t n = (size_t)T->n_state, no = (size_t)T->n_out, nv = T->vary_values_per_row;
  const size_t nvar = n + (size_t)(n_inputs > 0 ? n_inputs : 0);
  uint64_t *w = malloc((nv + n + no + 1) * sizeof *w);
  if (!w) return NDE_ERR_NOMEM;
  memset(dep, 0, no * nvar);
  for (size_t j0 = 0; j0 < nvar; j0 += 64) {
    dctx D = {T, w, nv, j0};
    memset(w, 0, (nv + n + no) * sizeof *w);
    for (size_t j = j0; j < n && j < j0 + 64; j++) w[nv + j] = (uint64_t)1 << (j - j0);
    for (int k = T->n_unif_code; k < T->n_code; k++) propagate(&D, &T->code[k]);
    for (size_t i = 0; i < no; i++) {
      const uint64_t bits = w[nv + n + i];
      for (size_t j = j0; j < nvar && j < j0 + 64; j++)
        if (bits >> (j - j0) & 1u) dep[i * nvar + j] = 1;
    }
  }
  free(w);
  return NDE_OK;
}

nde_status nde__tape_dependency(const nde__tape *T, unsigned char *dep) {
  return nde__tape_var_dependency(T, 0, dep);
}
