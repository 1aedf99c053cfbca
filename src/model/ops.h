/* The registries of the .nde language, each listed once: the tape's instruction set and the
 * built-in functions.  Everything that must know every op or every function (the evaluator's
 * kinds, the checker's arities, the gradient test's table in tests/lang/test_tape_grad.c)
 * expands these lists, so a new entry is seen everywhere, and a test fails until it has a case.
 * No dependencies: tests include it directly. */
#ifndef NDE_MODEL_OPS_H
#define NDE_MODEL_OPS_H

/* Kinds of tape instructions:
 *   UNARY    elementwise out = g(a), derivative g'(a)
 *   UNARY0   elementwise, derivative zero everywhere (the output has no adjoint)
 *   BINARY   elementwise out = g(a, b) with broadcasting, partial derivatives
 *   BINARY0  elementwise, derivative zero everywhere (comparisons)
 *   SPECIAL  handled one by one (parameters, data, fused and structural ops) */
#define NDE__OP_LIST(X)                                                                    \
  X(PARAM, SPECIAL)        /* out = theta[k] (uniform) */                                 \
  X(PARAM_EXP, SPECIAL)    /* out = exp(theta[k]) */                                      \
  X(PARAM_LOGIT, SPECIAL)  /* out = lo + (hi - lo) sigmoid(theta[k]) */                   \
  X(SPARAM, SPECIAL)       /* per row: theta[n_theta + s * n_sp + k], s the row's series */ \
  X(SPARAM_EXP, SPECIAL)   /* per row: exp of that */                                     \
  X(SPARAM_LOGIT, SPECIAL) /* per row: lo + (hi - lo) sigmoid of that */                  \
  X(INPUT, SPECIAL)        /* per row: measured input k of the row's series at t */       \
  X(DCONST, SPECIAL)       /* per row: constant k (from data) of the row's series */      \
  X(TIME, SPECIAL)         /* out = t */                                                  \
  X(COPY, UNARY)                                                                          \
  X(NEG, UNARY)                                                                           \
  X(EXP, UNARY)                                                                           \
  X(LOG, UNARY)                                                                           \
  X(SQRT, UNARY)                                                                          \
  X(SIN, UNARY)                                                                           \
  X(COS, UNARY)                                                                           \
  X(TANH, UNARY)                                                                          \
  X(ABS, UNARY)            /* derivative 0 at 0 */                                        \
  X(POWI, UNARY)           /* out = a^n, n = iarg */                                      \
  X(STEP, UNARY0)          /* Heaviside: 1 for a >= 0, 0 below */                         \
  X(SIGN, UNARY0)          /* -1, 0 or 1 (the derivative of abs, made by grad) */         \
  X(ADD, BINARY)                                                                          \
  X(SUB, BINARY)                                                                          \
  X(MUL, BINARY)                                                                          \
  X(DIV, BINARY)                                                                          \
  X(POW, BINARY)           /* out = a^b = exp(b log a) */                                 \
  X(MIN, BINARY)           /* a tie takes the derivative of a */                          \
  X(MAX, BINARY)           /* a tie takes the derivative of a */                          \
  X(LT, BINARY0)           /* 1 when a < b, else 0 */                                     \
  X(LE, BINARY0)                                                                          \
  X(GT, BINARY0)                                                                          \
  X(GE, BINARY0)                                                                          \
  X(MULADD, SPECIAL)       /* out = lo * a * b + hi * c, c = iarg */                      \
  X(IFELSE, SPECIAL)       /* out = c != 0 ? a : b, c = iarg */                           \
  X(NOP, SPECIAL)          /* removed while compiling */                                  \
  X(CONCAT, SPECIAL)                                                                      \
  X(SUM, SPECIAL)          /* out (width 1) = the sum of a's columns (made by grad) */    \
  X(NET, SPECIAL)                                                                         \
  X(NET_VJP, SPECIAL)      /* out = J^T b, J = dN/dx of net iarg at input a (made by grad) */ \
  X(MATMUL, SPECIAL)       /* out = a b: iarg rows, n_ops inner, flags TA/TB transpose */

/* Built-in functions: enum suffix, name in the language, number of arguments.  All are
 * elementwise with scalar broadcasting, except grad(EXPR, x): the gradient of a scalar
 * expression with respect to states, compiled by source transformation (lang_grad.c). */
#define NDE__FUNC_LIST(X) \
  X(EXP, "exp", 1)        \
  X(LOG, "log", 1)        \
  X(SQRT, "sqrt", 1)      \
  X(SIN, "sin", 1)        \
  X(COS, "cos", 1)        \
  X(TANH, "tanh", 1)      \
  X(ABS, "abs", 1)        \
  X(STEP, "step", 1)      \
  X(MIN, "min", 2)        \
  X(MAX, "max", 2)        \
  X(CLAMP, "clamp", 3)    \
  X(IFELSE, "ifelse", 3)  \
  X(GRAD, "grad", 2)

#endif
