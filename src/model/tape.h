/* Internal interface of the tape evaluator (tape_eval.c) used by the compiler and the model. */
#ifndef NDE_MODEL_TAPE_H
#define NDE_MODEL_TAPE_H

#include "lang.h"

/* Evaluate one instruction whose operands are all constants (compile-time folding); bases[UNIF]
 * is the uniform arena being built. */
void nde__exec_const(const nde__tape *T, const nde__instr *in, double *const bases[NDE__AR_COUNT]);

/* Doubles per row that a varying net call reserves for its forward cache. */
size_t nde__net_cache_per_row(const nde_net *net);

/* The rhs of a compiled model (takes a reference to the model). */
nde_status nde__tape_rhs_create(nde_model *m, int max_batch, nde_rhs **out, nde_error *err);

#endif
