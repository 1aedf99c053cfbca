/* Internal interface of the compiler (lang_compile.c) shared with the gradient transformation
 * (lang_grad.c): the state of one tape's compilation and the helpers that make slots and emit
 * instructions. */
#ifndef NDE_MODEL_COMPILE_H
#define NDE_MODEL_COMPILE_H

#include "lang.h"

/* A part of an adjoint: columns [col, col + width) of the adjoint of the value stored in root
 * are (also) slot; the parts of one root are summed when they are read. */
typedef struct nde__apart {
  int root, col, width, slot;
  int next; /* the next part of the same root, -1 */
} nde__apart;

/* grad calls whose expressions are the same (grad(H(q, p), p) and grad(H(q, p), q)) share
 * one compiled expression and one reverse sweep over the union of their states. */
typedef struct nde__ggroup {
  int expr;         /* the expression of the first call */
  bool *wrt;        /* [n_state] the U columns any call of the group asks for */
  bool done;        /* the sweep ran; the U parts are in parts[first ...] */
  int first;        /* first part of U's adjoint, -1 when the expression does not depend on them */
} nde__ggroup;

typedef struct nde__comp {
  const nde__ast *A;
  nde__diags *d;
  const nde_model *m;
  nde__tape *T;
  nde__instr *ucode, *vcode; /* uniform and varying instructions, merged at the end */
  int n_u, cap_u, n_v, cap_v;
  int *param_slot;  /* per parameter decl: slot, -1 not yet made */
  int *input_slot;  /* per input: slot, -1 */
  int *const_slot;  /* per constant: slot, -1 */
  int *inter_slot;  /* per intermediate: slot */
  int *vproducer;   /* per slot: index in vcode that wrote it, -1 */
  int *uses;        /* per slot: number of instructions reading it */
  int *ruses;       /* per slot: reads of it or of a view of it (counted at the root) */
  int *root;        /* per slot: the slot that owns its storage (itself unless a view) */
  int cap_meta;
  int time_slot;
  int out_expr, out_slot; /* the expression of the last output and its value */
  bool *named;      /* per slot: an intermediate's value or a part of an adjoint that later
                       code may read again (not fused, not moved into the output block) */
  bool fail;        /* no memory, or a limit */
  nde_status st;
  /* grad */
  int *grad_group;  /* per expression: the group of a grad call, -1 */
  nde__ggroup *groups;
  int n_groups;
  nde__apart *parts;
  int n_parts, cap_parts;
} nde__comp;

/* Slots: owned (per row when varying, else uniform), a compile-time constant (width values v),
 * and a column view of another slot.  -1 on failure (C->fail is set). */
int nde__c_owned_slot(nde__comp *C, int width, bool varying, bool active);
int nde__c_const_slot(nde__comp *C, int width, double v);
int nde__c_view_slot(nde__comp *C, int parent, int col, int width);
/* An instruction with the given op and operands (out -1). */
nde__instr nde__c_instr(nde__op op, int out, int a, int b);
/* Emit an instruction whose output slot is made; returns the output slot or -1. */
int nde__c_emit(nde__comp *C, nde__instr in);
/* Make the output slot of width `width` for in and emit it (folded when its operands are
 * constants); returns the slot or -1. */
int nde__c_op(nde__comp *C, nde__instr in, int width);
/* Compile expression e; its value's slot or -1. */
int nde__c_expr(nde__comp *C, int e);
/* One slot with the values of slots[0 .. n) side by side (a CONCAT, or the slot itself). */
int nde__c_concat_slots(nde__comp *C, const int *slots, int n);
/* Record that the compilation failed with status st (the first one is kept). */
void nde__c_failed(nde__comp *C, nde_status st);

/* grad: find the grad calls that the outputs need and group them (before compiling). */
nde_status nde__grad_prepare(nde__comp *C, const nde__output *outs, int n_outs, const bool *need);
void nde__grad_free(nde__comp *C);
/* Compile grad call e (a CALL of grad): its value's slot, or -1. */
int nde__grad_compile(nde__comp *C, int e);

#endif
