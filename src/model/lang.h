/* Internal structures of the .nde language: tokens, syntax tree, diagnostics, the compiled tape
 * and the model object.  Shared by lang_*.c and tape_*.c only. */
#ifndef NDE_MODEL_LANG_H
#define NDE_MODEL_LANG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "nde/model.h"
#include "nde/nn.h"
#include "ops.h"

/* ---- diagnostics ---- */

#define NDE__MAX_ERRORS 6 /* errors kept; later ones are counted, not shown */

typedef struct nde__pos {
  int line, col; /* 1-based; col in characters */
  int offset;    /* byte offset in the source */
} nde__pos;

typedef struct nde__diag {
  bool is_note;
  nde__pos pos;
  char *message;
  char *source_line;
} nde__diag;

typedef struct nde__diags {
  const char *file;
  const char *src;
  size_t len;
  nde__diag *items;
  int n, cap;
  int n_errors;      /* all errors reported, shown or not */
  int last_line;     /* line of the last syntax error (one per line: no cascades) */
  nde_status status; /* first error's status */
  bool nomem;
} nde__diags;

/* Record an error (returns false when it was dropped because too many were shown). */
bool nde__diag_error(nde__diags *d, nde_status st, nde__pos pos, const char *fmt, ...)
    NDE__PRINTF(4, 5);
/* A note attached to the last error shown (dropped when that error was). */
void nde__diag_note(nde__diags *d, nde__pos pos, const char *fmt, ...) NDE__PRINTF(3, 4);
void nde__diags_free(nde__diags *d);
/* Whether a syntax error was already reported on this line (one message per line). */
bool nde__diag_line_has_error(const nde__diags *d, int line);
/* Order the kept messages by place (each note stays after its error). */
void nde__diags_sort(nde__diags *d);
/* Format all diagnostics into one malloc'd string (NULL on no memory). */
char *nde__diags_format(const nde__diags *d);

/* ---- tokens ---- */

typedef enum {
  NDE__TK_EOF = 0,
  NDE__TK_NEWLINE,
  NDE__TK_IDENT,
  NDE__TK_NUMBER,
  NDE__TK_LPAREN,
  NDE__TK_RPAREN,
  NDE__TK_LBRACKET,
  NDE__TK_RBRACKET,
  NDE__TK_COMMA,
  NDE__TK_COLON,
  NDE__TK_ASSIGN,
  NDE__TK_PLUS,
  NDE__TK_MINUS,
  NDE__TK_STAR,
  NDE__TK_SLASH,
  NDE__TK_CARET,
  NDE__TK_ARROW,
  NDE__TK_LT, /* < */
  NDE__TK_LE, /* <= */
  NDE__TK_GT, /* > */
  NDE__TK_GE  /* >= */
} nde__tk;

typedef struct nde__token {
  nde__tk kind;
  nde__pos pos;
  const char *text; /* points into the source */
  int len;
  double num;  /* NUMBER */
  bool is_int; /* NUMBER written without '.' or exponent */
} nde__token;

/* Split src into tokens (always ends with NEWLINE, EOF).  Bad characters and bad number
 * literals are reported to d; the tokens stay usable (a bad number reads as 0). */
nde_status nde__lex(const char *src, size_t len, nde__diags *d, nde__token **out, int *n_out);
/* Whether src is not text at all (an HDF5 file, or a NUL byte anywhere): then one error is
 * reported to d, at the first such byte, instead of a message per line of binary garbage. */
bool nde__lex_not_text(const char *src, size_t len, nde__diags *d);
/* Length of the valid UTF-8 sequence at s (n bytes available): 1 for ASCII, 2-4, or 0 when the
 * bytes there are not UTF-8 (a stray continuation byte, an overlong form, a surrogate, beyond
 * U+10FFFF, or cut short). */
int nde__utf8_len(const unsigned char *s, size_t n);

/* ---- syntax tree ---- */

typedef enum {
  NDE__E_NUM,
  NDE__E_NAME,
  NDE__E_CALL,  /* function or net call: args */
  NDE__E_INDEX, /* a[index] */
  NDE__E_LIST,  /* [a, b, ...] concatenation */
  NDE__E_NEG,
  NDE__E_ADD,
  NDE__E_SUB,
  NDE__E_MUL,
  NDE__E_DIV,
  NDE__E_POW,
  NDE__E_LT, /* comparisons: 1 or 0, derivative zero */
  NDE__E_LE,
  NDE__E_GT,
  NDE__E_GE,
  NDE__E_MATMUL /* a b (juxtaposition): a matrix times a vector or a matrix */
} nde__ekind;

typedef struct nde__expr {
  nde__ekind kind;
  nde__pos pos; /* the operator, name or literal */
  int a, b;     /* children (expression indices) or -1 */
  int args, n_args; /* CALL/LIST: range in the argument index array */
  const char *name; /* NAME/CALL: points into the source */
  int name_len;
  double num;   /* NUM */
  bool is_int;  /* NUM */
  long index;   /* INDEX: the 1-based index as written */
  nde__pos index_pos;
  int height; /* tree height (bounded so that recursion over it stays shallow) */
  /* filled by the checker */
  int sym;      /* NAME/CALL: symbol index, -1 for a builtin function or t */
  int func;     /* CALL of a builtin: nde__func, else -1 */
  int size;     /* 0 when unknown (after an error) */
  int mcols;    /* a matrix of size / mcols rows and mcols columns (row-major); 0: a scalar or
                   a vector */
} nde__expr;

typedef struct nde__state_decl {
  const char *name;
  int name_len;
  nde__pos pos;
  int size;
  bool is_vector;
  bool has_init;
  double *init; /* size values */
  int n_init;   /* number of values written */
  nde__pos init_pos;
  int equation; /* index into equations, -1 */
  int offset;
} nde__state_decl;

typedef struct nde__param_decl {
  const char *name;
  int name_len;
  nde__pos pos;
  double value;
  nde__pos value_pos;
  bool fixed, positive, bounded, per_series;
  double lo, hi;
  nde__pos flag_pos;   /* of 'positive' or 'in' */
  nde__pos fixed_pos;  /* of 'fixed' */
  nde__pos series_pos; /* of 'per series' */
} nde__param_decl;

/* input NAME, ... (options): a measured input, interpolated per series. */
typedef struct nde__input_decl {
  const char *name;
  int name_len;
  nde__pos pos;
  nde_interp interp;
  bool hold;
} nde__input_decl;

/* const NAME = VALUE, or const NAME (from data): one value per series. */
typedef struct nde__const_decl {
  const char *name;
  int name_len;
  nde__pos pos;
  bool from_data;
  double value;
} nde__const_decl;

#define NDE__NET_MAX_LAYERS 64
typedef struct nde__net_decl {
  const char *name;
  int name_len;
  nde__pos pos;
  int n_layers;
  int widths[NDE__NET_MAX_LAYERS + 1];
  nde__pos width_pos[NDE__NET_MAX_LAYERS + 1];
  nde_act acts[NDE__NET_MAX_LAYERS];
  nde_init init;
  double sigma;
} nde__net_decl;

typedef struct nde__assign {
  const char *name;
  int name_len;
  nde__pos pos;
  int expr;
  int state;     /* equations: the state index (the first listed one), -1 when unknown */
  bool observed; /* intermediates: declared with 'observe' (an observable) */
  /* equations d[q, p]/dt = EXPR: the listed states, names (NAME expressions) in args
   * [lhs_first, lhs_first + lhs_n); lhs_n = 0 for dx/dt = EXPR */
  int lhs_first, lhs_n;
} nde__assign;

typedef enum {
  NDE__SYM_STATE,
  NDE__SYM_PARAM,
  NDE__SYM_NET,
  NDE__SYM_INTER,
  NDE__SYM_INPUT,
  NDE__SYM_CONST
} nde__symkind;

typedef struct nde__sym {
  nde__symkind kind;
  int index; /* into the matching declaration array */
  const char *name;
  int name_len;
  nde__pos pos;
} nde__sym;

typedef struct nde__ast {
  nde__expr *exprs;
  int n_exprs, cap_exprs;
  int *args;
  int n_args, cap_args;
  nde__state_decl *states;
  int n_states, cap_states;
  nde__param_decl *params;
  int n_params, cap_params;
  nde__net_decl *nets;
  int n_nets, cap_nets;
  nde__input_decl *inputs;
  int n_inputs, cap_inputs;
  nde__const_decl *consts;
  int n_consts, cap_consts;
  nde__assign *inters; /* intermediates "u = ..." and observables "observe h = ..." */
  int n_inters, cap_inters;
  nde__assign *eqs; /* equations "dx/dt = ..." */
  int n_eqs, cap_eqs;
  /* the declaration order of params and nets (the theta order): +p for param p, -(k+1) for net k */
  int *decl_order;
  int n_decl, cap_decl;
  /* filled by the checker */
  nde__sym *syms;
  int n_syms, cap_syms;
  int *sym_hash; /* open addressing over syms, -1 empty */
  int hash_cap;
  int n_state_total;
  int *inter_order; /* intermediates in dependency order (cycles left out) */
  int n_inter_order;
} nde__ast;

nde_status nde__parse(const nde__token *toks, int n_toks, nde__diags *d, nde__ast *ast);
void nde__ast_free(nde__ast *ast);
/* Resolve names, compute sizes, match equations to states, find cycles. */
nde_status nde__check(nde__ast *ast, nde__diags *d);
/* Symbol lookup by name (after nde__check built the table); -1 when absent. */
int nde__sym_find(const nde__ast *ast, const char *name, int len);

/* Built-in functions (ops.h). */
typedef enum {
#define NDE__FUNC_ENUM(id, name, arity) NDE__F_##id,
  NDE__FUNC_LIST(NDE__FUNC_ENUM)
#undef NDE__FUNC_ENUM
  NDE__F_COUNT
} nde__func;
extern const char *const nde__func_names[NDE__F_COUNT];
extern const int nde__func_arity[NDE__F_COUNT];

/* ---- the tape ---- */

/* Instructions (ops.h). */
typedef enum {
#define NDE__OP_ENUM(id, kind) NDE__OP_##id,
  NDE__OP_LIST(NDE__OP_ENUM)
#undef NDE__OP_ENUM
  NDE__OP_COUNT
} nde__op;

typedef enum { NDE__K_UNARY, NDE__K_UNARY0, NDE__K_BINARY, NDE__K_BINARY0, NDE__K_SPECIAL } nde__opkind;
extern const uint8_t nde__op_kind[NDE__OP_COUNT];
extern const char *const nde__op_names[NDE__OP_COUNT];

/* Where a slot's values live: the arenas of one evaluation. */
typedef enum {
  NDE__AR_UNIF = 0, /* uniform over rows: params, t, constants (one row) */
  NDE__AR_VARY,     /* per row: B x width at per-row offset off (base + off * B) */
  NDE__AR_U,        /* the input states U (B x n) */
  NDE__AR_DU,       /* the output dU (B x n) */
  NDE__AR_COUNT
} nde__arena;

/* A value of the tape: a B x width block (or 1 x width when uniform) in an arena, possibly a
 * column view of another slot (rs = row stride of the parent). */
typedef struct nde__slot {
  uint8_t arena;
  bool varying; /* differs between rows */
  bool active;  /* depends on U or theta (has a derivative) */
  bool constant; /* known at compile time (value in the uniform arena) */
  int width;
  size_t off; /* UNIF: absolute; VARY: per-row offset (times B); U/DU: 0 */
  int col;    /* column offset inside the row */
  int rs;     /* row stride (0 for uniform) */
} nde__slot;

/* Instruction flags. */
enum {
  /* A net call whose value nothing reads: it runs only to fill the forward cache that a
   * NET_VJP of the same input reads (f and VJP); the JVP and the reverse sweep skip it. */
  NDE__IF_CACHE_ONLY = 1,
  /* MATMUL: operand a (b) is stored transposed: the product is a^T b (a b^T) */
  NDE__IF_TA = 2,
  NDE__IF_TB = 4,
  /* A varying instruction whose value neither the reverse sweep nor any instruction it needs
   * reads: a VJP without f's cache skips it in its forward sweep (outputs, a NET_VJP whose
   * result only flows into sums). */
  NDE__IF_NOT_FOR_VJP = 8
};

typedef struct nde__instr {
  uint8_t op;
  uint8_t flags;
  int out;
  int a, b;   /* operand slots, -1 */
  int iarg;   /* POWI exponent; PARAM theta index; SPARAM index in the per-series block;
                 INPUT input index; DCONST column; NET, NET_VJP net index; CONCAT first
                 operand; MULADD and IFELSE the third operand slot; MATMUL rows of the result */
  int n_ops;  /* CONCAT operand count; MATMUL the inner dimension */
  double lo, hi; /* PARAM_LOGIT bounds; MULADD signs */
  size_t cache_off; /* NET, NET_VJP: per-row offset of the net call's forward cache in the
                       varying arena (a NET_VJP reads the cache of the NET it differentiates) */
} nde__instr;

/* The third operand slot of an instruction (MULADD, IFELSE), or -1. */
static inline int nde__third(const nde__instr *in) {
  return (in->op == NDE__OP_MULADD || in->op == NDE__OP_IFELSE) ? in->iarg : -1;
}

typedef struct nde__tape {
  nde__slot *slots;
  int n_slots, cap_slots;
  nde__instr *code; /* uniform instructions first, then varying */
  int n_code, cap_code;
  int n_unif_code;  /* code[0 .. n_unif_code) produce uniform values */
  int *concat_ops;  /* operand lists of CONCAT */
  int n_concat_ops, cap_concat_ops;
  double *unif_init; /* uniform arena at rest: constants filled, others 0 */
  size_t unif_size;
  size_t vary_per_row; /* per-row doubles of the varying arena (values, then net caches) */
  size_t vary_values_per_row; /* the values part: the only part with adjoints */
  size_t vary_cache_per_row;  /* net caches (offsets relative to the values part while compiling) */
  int max_net_in;      /* widest net input (scratch for net VJPs) */
  int max_net_out;     /* widest net output (scratch for NET_VJP's second-order passes) */
  int n_state;         /* width of a row of U */
  int n_out;           /* width of a row of the output (dU for a right-hand side) */
  bool uses_inputs;    /* has INPUT instructions */
  bool uses_series;    /* has SPARAM, INPUT or DCONST instructions (reads the row map) */
} nde__tape;

void nde__tape_free(nde__tape *tape);

/* One output of a tape: columns [col, col + size) of the output row receive columns
 * [src, src + size) of expression expr's value, or (expr < 0) the state column ucol.  Outputs
 * with the same expr share one compiled value. */
typedef struct nde__output {
  int expr;
  int ucol;
  int col, size;
  int src;
} nde__output;

/* Compile a tape with the given outputs from a checked syntax tree, against the tables of the
 * model m (parameters, nets, inputs, constants), which must have been built from the same
 * source.  Only the intermediates the outputs need are compiled. */
nde_status nde__compile_tape(const nde__ast *ast, nde__diags *d, const nde_model *m,
                             const nde__output *outs, int n_outs, int n_out_cols,
                             nde__tape *T);

/* The intermediates some expressions need: nde__mark_needed sets need[i] for the
 * intermediates expression expr names; nde__close_needed adds everything those need in turn.
 * need has one entry per intermediate. */
void nde__mark_needed(const nde__ast *ast, int expr, bool *need);
void nde__close_needed(const nde__ast *ast, bool *need);

/* Structural dependencies of a tape's outputs on its U columns: dep[i * n_state + j] != 0
 * when output column i may depend on U column j (values, not only derivatives: comparisons
 * and steps count).  dep has n_out x n_state entries. */
nde_status nde__tape_dependency(const nde__tape *T, unsigned char *dep);
/* The same over variables n_state + n_inputs wide: U columns, then the measured inputs (an
 * INPUT instruction's value depends on its input); dep has n_out x (n_state + n_inputs)
 * entries. */
nde_status nde__tape_var_dependency(const nde__tape *T, int n_inputs, unsigned char *dep);

/* Number of instructions of op in the model's right-hand-side tape (for tests). */
int nde__model_count_op(const nde_model *m, int op);

/* ---- the model ---- */

typedef struct nde__param {
  char *name;
  nde_model_param_info info;
} nde__param;

typedef struct nde__netm {
  char *name;
  nde_net *net;
  size_t offset;
  nde_init init;
  double sigma;
} nde__netm;

typedef struct nde__statem {
  char *name;
  nde_model_state_info info;
  double *initial;
} nde__statem;

typedef struct nde__inputm {
  char *name;
  nde_model_input_info info;
} nde__inputm;

typedef struct nde__constm {
  char *name;
  nde_model_const_info info;
} nde__constm;

struct nde_model {
  atomic_int refs; /* the handle and every rhs, observer and probe made from it */
  nde_status status;
  char *file;
  char *src;
  size_t src_len;
  nde__diags diags;
  char *errmsg;
  nde__statem *states;
  int n_states;
  int n_state_total;
  char **comp_names;
  nde__param *params;
  int n_params;
  int n_sp; /* per-series parameters: the block of each series in the full theta */
  nde__netm *nets;
  int n_nets;
  nde__inputm *inputs;
  int n_inputs;
  nde__constm *consts;
  int n_consts;
  int n_data_consts; /* consts from data: the columns of a series' constants row */
  char **obs_names;  /* observables in declaration order */
  int n_obs;
  nde_model_layout_entry *layout;
  int n_layout;
  size_t n_theta;
  nde__tape tape;     /* the right-hand side */
  unsigned char *dep; /* n x n structural dependencies of the right-hand side */
  bool uses_time;     /* some expression of the file reads t (observables included) */
};

/* Build the model's tables (states, parameters, nets, inputs, constants, observables, the
 * layout of theta) and its right-hand-side tape from a checked syntax tree. */
nde_status nde__compile(const nde__ast *ast, nde__diags *d, nde_model *m);
/* Keep/release a model reference (every rhs, observer and probe holds one).  Atomic: models
 * may be shared across threads. */
void nde__model_retain(nde_model *m);
void nde__model_release(nde_model *m);

/* Lex, parse and check source text (for views of a model that need its syntax tree again).
 * d->file, d->src and d->len are set here; free with nde__ast_free and nde__diags_free. */
nde_status nde__parse_source(const char *src, size_t len, const char *file, nde__diags *d,
                             nde__ast *ast);

#endif
