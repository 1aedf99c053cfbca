/* Parser of the .nde language (recursive descent, one statement per line; grammar in
 * docs/language.md).  A syntax error skips the rest of its line, so the next statements are
 * still checked and one mistake gives one message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

#define MAX_HEIGHT 1000 /* operations in one expression chain (keeps later recursion shallow) */

typedef struct parser {
  const nde__token *t;
  int n, i;
  nde__diags *d;
  nde__ast *ast;
  int depth;
  bool nomem;
  bool failed; /* the current statement has an error */
} parser;

static const nde__token *peek(const parser *P) { return &P->t[P->i]; }
static const nde__token *peek2(const parser *P) {
  return &P->t[P->i + 1 < P->n ? P->i + 1 : P->n - 1];
}
static const nde__token *next(parser *P) {
  const nde__token *t = &P->t[P->i];
  if (P->i < P->n - 1) P->i++;
  return t;
}

static bool is_word(const nde__token *t, const char *w) {
  return t->kind == NDE__TK_IDENT && (size_t)t->len == strlen(w) && !memcmp(t->text, w, (size_t)t->len);
}

static const char *tk_name(nde__tk k) {
  switch (k) {
    case NDE__TK_EOF: return "end of file";
    case NDE__TK_NEWLINE: return "end of line";
    case NDE__TK_IDENT: return "name";
    case NDE__TK_NUMBER: return "number";
    case NDE__TK_LPAREN: return "'('";
    case NDE__TK_RPAREN: return "')'";
    case NDE__TK_LBRACKET: return "'['";
    case NDE__TK_RBRACKET: return "']'";
    case NDE__TK_COMMA: return "','";
    case NDE__TK_COLON: return "':'";
    case NDE__TK_ASSIGN: return "'='";
    case NDE__TK_PLUS: return "'+'";
    case NDE__TK_MINUS: return "'-'";
    case NDE__TK_STAR: return "'*'";
    case NDE__TK_SLASH: return "'/'";
    case NDE__TK_CARET: return "'^'";
    case NDE__TK_ARROW: return "'->'";
    case NDE__TK_LT: return "'<'";
    case NDE__TK_LE: return "'<='";
    case NDE__TK_GT: return "'>'";
    case NDE__TK_GE: return "'>='";
  }
  return "token";
}

/* "unexpected X (expected WHAT)", once per line. */
static void unexpected(parser *P, const nde__token *t, const char *what) {
  P->failed = true;
  if (nde__diag_line_has_error(P->d, t->pos.line)) return;
  P->d->last_line = t->pos.line;
  if (t->kind == NDE__TK_IDENT || t->kind == NDE__TK_NUMBER)
    nde__diag_error(P->d, NDE_ERR_PARSE, t->pos, "unexpected %s '%.*s' (expected %s)",
                    tk_name(t->kind), t->len, t->text, what);
  else
    nde__diag_error(P->d, NDE_ERR_PARSE, t->pos, "unexpected %s (expected %s)", tk_name(t->kind),
                    what);
}

static void limit_error(parser *P, nde__pos pos, const char *fmt, int lim) NDE__PRINTF(3, 0);
static void limit_error(parser *P, nde__pos pos, const char *fmt, int lim) {
  P->failed = true;
  if (nde__diag_line_has_error(P->d, pos.line)) return;
  P->d->last_line = pos.line;
  nde__diag_error(P->d, NDE_ERR_LIMIT, pos, fmt, lim);
}

static bool expect(parser *P, nde__tk k, const char *what) {
  if (peek(P)->kind == k) {
    next(P);
    return true;
  }
  unexpected(P, peek(P), what);
  return false;
}

#define GROW(arr, n, cap)                                               \
  do {                                                                  \
    if ((n) == (cap)) {                                                 \
      int c_ = (cap) ? 2 * (cap) : 16;                                  \
      void *p_ = realloc((arr), (size_t)c_ * sizeof *(arr));            \
      if (!p_) {                                                        \
        P->nomem = true;                                                \
        return -1;                                                      \
      }                                                                 \
      (arr) = p_;                                                       \
      (cap) = c_;                                                       \
    }                                                                   \
  } while (0)

static int height_of(const parser *P, int e) {
  return e < 0 ? 0 : P->ast->exprs[e].height;
}

static int new_expr(parser *P, nde__ekind kind, nde__pos pos, int a, int b) {
  nde__ast *A = P->ast;
  GROW(A->exprs, A->n_exprs, A->cap_exprs);
  nde__expr *e = &A->exprs[A->n_exprs];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->pos = pos;
  e->a = a;
  e->b = b;
  e->sym = -1;
  e->func = -1;
  int h = height_of(P, a);
  int hb = height_of(P, b);
  if (hb > h) h = hb;
  e->height = h + 1;
  if (h + 1 > MAX_HEIGHT) {
    limit_error(P, pos, "expression is too long (more than %d operations in a chain)", MAX_HEIGHT);
    return -1;
  }
  return A->n_exprs++;
}

static int parse_expr(parser *P);

/* Comma-separated expressions up to the closing token; the list goes into ast->args. */
static int parse_list(parser *P, nde__tk close, const char *close_what, int *first, int *count) {
  int tmp[64];
  int n = 0, cap = 64;
  int *items = tmp;
  int ret = 0;
  *first = 0;
  *count = 0;
  if (peek(P)->kind != close) {
    for (;;) {
      int e = parse_expr(P);
      if (e < 0) {
        ret = -1;
        goto done;
      }
      if (n == cap) {
        int *ni = malloc((size_t)cap * 2 * sizeof *ni);
        if (!ni) {
          P->nomem = true;
          ret = -1;
          goto done;
        }
        memcpy(ni, items, (size_t)n * sizeof *ni);
        if (items != tmp) free(items);
        items = ni;
        cap *= 2;
      }
      items[n++] = e;
      if (peek(P)->kind == NDE__TK_COMMA) {
        next(P);
        continue;
      }
      break;
    }
  }
  if (!expect(P, close, close_what)) {
    ret = -1;
    goto done;
  }
  {
    nde__ast *A = P->ast;
    *first = A->n_args;
    for (int i = 0; i < n; i++) {
      if (A->n_args == A->cap_args) {
        int c = A->cap_args ? 2 * A->cap_args : 64;
        int *p = realloc(A->args, (size_t)c * sizeof *p);
        if (!p) {
          P->nomem = true;
          ret = -1;
          goto done;
        }
        A->args = p;
        A->cap_args = c;
      }
      A->args[A->n_args++] = items[i];
    }
    *count = n;
  }
done:
  if (items != tmp) free(items);
  return ret;
}

static int list_height(const parser *P, int first, int count) {
  int h = 0;
  for (int i = 0; i < count; i++) {
    int hi = height_of(P, P->ast->args[first + i]);
    if (hi > h) h = hi;
  }
  return h;
}

static int parse_primary(parser *P) {
  const nde__token *t = peek(P);
  switch (t->kind) {
    case NDE__TK_NUMBER: {
      next(P);
      int e = new_expr(P, NDE__E_NUM, t->pos, -1, -1);
      if (e >= 0) {
        P->ast->exprs[e].num = t->num;
        P->ast->exprs[e].is_int = t->is_int;
      }
      return e;
    }
    case NDE__TK_IDENT: {
      next(P);
      bool call = peek(P)->kind == NDE__TK_LPAREN;
      int e = new_expr(P, call ? NDE__E_CALL : NDE__E_NAME, t->pos, -1, -1);
      if (e < 0) return -1;
      P->ast->exprs[e].name = t->text;
      P->ast->exprs[e].name_len = t->len;
      if (call) {
        int first, count;
        next(P);
        if (parse_list(P, NDE__TK_RPAREN, "',' or ')'", &first, &count) < 0) return -1;
        nde__expr *x = &P->ast->exprs[e];
        x->args = first;
        x->n_args = count;
        x->height = list_height(P, first, count) + 1;
        if (x->height > MAX_HEIGHT) {
          limit_error(P, t->pos, "expression is too long (more than %d operations in a chain)", MAX_HEIGHT);
          return -1;
        }
      }
      return e;
    }
    case NDE__TK_LPAREN: {
      next(P);
      int e = parse_expr(P);
      if (e < 0) return -1;
      if (!expect(P, NDE__TK_RPAREN, "')'")) return -1;
      return e;
    }
    case NDE__TK_LBRACKET: {
      next(P);
      int first, count;
      if (parse_list(P, NDE__TK_RBRACKET, "',' or ']'", &first, &count) < 0) return -1;
      if (count == 0) {
        P->failed = true;
        if (!nde__diag_line_has_error(P->d, t->pos.line)) {
          P->d->last_line = t->pos.line;
          nde__diag_error(P->d, NDE_ERR_PARSE, t->pos, "empty list '[]' (expected at least one value)");
        }
        return -1;
      }
      int e = new_expr(P, NDE__E_LIST, t->pos, -1, -1);
      if (e < 0) return -1;
      nde__expr *x = &P->ast->exprs[e];
      x->args = first;
      x->n_args = count;
      x->height = list_height(P, first, count) + 1;
      return e;
    }
    default:
      unexpected(P, t, "an expression");
      return -1;
  }
}

static bool starts_index(const parser *P) {
  const nde__tk k = peek2(P)->kind;
  return peek(P)->kind == NDE__TK_LBRACKET &&
         (k == NDE__TK_NUMBER || k == NDE__TK_MINUS || k == NDE__TK_PLUS);
}

/* postfix := primary { '[' INTEGER ']' }   ('[' followed by anything else starts a list: the
 * right operand of a product by juxtaposition, M [a, b]) */
static int parse_postfix(parser *P) {
  int e = parse_primary(P);
  while (e >= 0 && starts_index(P)) {
    const nde__token *lb = next(P);
    const nde__token *num = peek(P);
    if (num->kind != NDE__TK_NUMBER || !num->is_int) {
      unexpected(P, num, "an integer index");
      return -1;
    }
    next(P);
    if (!expect(P, NDE__TK_RBRACKET, "']'")) return -1;
    int ix = new_expr(P, NDE__E_INDEX, lb->pos, e, -1);
    if (ix < 0) return -1;
    nde__expr *x = &P->ast->exprs[ix];
    x->index = num->num > 1e9 ? 1000000000L : (long)num->num;
    x->index_pos = num->pos;
    e = ix;
  }
  return e;
}

static int parse_unary(parser *P);

/* power := postfix [ '^' unary ]   (right-associative: 2^-x and a^b^c = a^(b^c)) */
static int parse_power(parser *P) {
  int e = parse_postfix(P);
  if (e >= 0 && peek(P)->kind == NDE__TK_CARET) {
    const nde__token *op = next(P);
    if (++P->depth > NDE_MODEL_MAX_DEPTH) {
      limit_error(P, peek(P)->pos, "expression nested deeper than %d levels", NDE_MODEL_MAX_DEPTH);
      P->depth--;
      return -1;
    }
    int r = parse_unary(P);
    P->depth--;
    if (r < 0) return -1;
    e = new_expr(P, NDE__E_POW, op->pos, e, r);
  }
  return e;
}

/* unary := '-' unary | '+' unary | power   (so -x^2 = -(x^2)) */
static int parse_unary(parser *P) {
  const nde__token *t = peek(P);
  if (t->kind != NDE__TK_MINUS && t->kind != NDE__TK_PLUS) return parse_power(P);
  next(P);
  if (++P->depth > NDE_MODEL_MAX_DEPTH) {
    limit_error(P, peek(P)->pos, "expression nested deeper than %d levels", NDE_MODEL_MAX_DEPTH);
    P->depth--;
    return -1;
  }
  int a = parse_unary(P);
  P->depth--;
  if (a < 0 || t->kind == NDE__TK_PLUS) return a;
  return new_expr(P, NDE__E_NEG, t->pos, a, -1);
}

/* Whether the next token starts an operand: a product by juxtaposition (M v). */
static bool starts_operand(const parser *P) {
  const nde__tk k = peek(P)->kind;
  return k == NDE__TK_IDENT || k == NDE__TK_NUMBER || k == NDE__TK_LPAREN || k == NDE__TK_LBRACKET;
}

/* term := unary { ('*' | '/') unary | power }   (a power right after an operand is a matrix
 * product by juxtaposition, (J - R) grad(H(q, p), [q, p]); the checker needs a matrix on its
 * left) */
static int parse_term(parser *P) {
  int e = parse_unary(P);
  while (e >= 0) {
    if (peek(P)->kind == NDE__TK_STAR || peek(P)->kind == NDE__TK_SLASH) {
      const nde__token *op = next(P);
      int r = parse_unary(P);
      if (r < 0) return -1;
      e = new_expr(P, op->kind == NDE__TK_STAR ? NDE__E_MUL : NDE__E_DIV, op->pos, e, r);
    } else if (starts_operand(P)) {
      const nde__pos pos = peek(P)->pos;
      int r = parse_power(P);
      if (r < 0) return -1;
      e = new_expr(P, NDE__E_MATMUL, pos, e, r);
    } else {
      break;
    }
  }
  return e;
}

static int parse_sum(parser *P) {
  if (++P->depth > NDE_MODEL_MAX_DEPTH) {
    limit_error(P, peek(P)->pos, "expression nested deeper than %d levels", NDE_MODEL_MAX_DEPTH);
    P->depth--;
    return -1;
  }
  int e = parse_term(P);
  while (e >= 0 && (peek(P)->kind == NDE__TK_PLUS || peek(P)->kind == NDE__TK_MINUS)) {
    const nde__token *op = next(P);
    int r = parse_term(P);
    if (r < 0) {
      e = -1;
      break;
    }
    e = new_expr(P, op->kind == NDE__TK_PLUS ? NDE__E_ADD : NDE__E_SUB, op->pos, e, r);
  }
  P->depth--;
  return e;
}

static bool is_comparison(nde__tk k) {
  return k == NDE__TK_LT || k == NDE__TK_LE || k == NDE__TK_GT || k == NDE__TK_GE;
}

/* expr := sum [ ('<' | '<=' | '>' | '>=') sum ]   (comparisons bind loosest and do not chain) */
static int parse_expr(parser *P) {
  int e = parse_sum(P);
  if (e < 0 || !is_comparison(peek(P)->kind)) return e;
  const nde__token *op = next(P);
  int r = parse_sum(P);
  if (r < 0) return -1;
  nde__ekind k = op->kind == NDE__TK_LT   ? NDE__E_LT
                 : op->kind == NDE__TK_LE ? NDE__E_LE
                 : op->kind == NDE__TK_GT ? NDE__E_GT
                                          : NDE__E_GE;
  e = new_expr(P, k, op->pos, e, r);
  if (e >= 0 && is_comparison(peek(P)->kind)) {
    const nde__token *t = peek(P);
    P->failed = true;
    if (!nde__diag_line_has_error(P->d, t->pos.line)) {
      P->d->last_line = t->pos.line;
      nde__diag_error(P->d, NDE_ERR_PARSE, t->pos,
                      "comparisons do not chain (write (a < b) * (b < c) for both)");
    }
    return -1;
  }
  return e;
}

/* signed := ['-' | '+'] NUMBER */
static bool parse_signed(parser *P, double *v, nde__pos *pos) {
  double sign = 1;
  *pos = peek(P)->pos;
  if (peek(P)->kind == NDE__TK_MINUS || peek(P)->kind == NDE__TK_PLUS) {
    if (next(P)->kind == NDE__TK_MINUS) sign = -1;
  }
  if (peek(P)->kind != NDE__TK_NUMBER) {
    unexpected(P, peek(P), "a number");
    return false;
  }
  *v = sign * next(P)->num;
  return true;
}

static bool end_of_statement(parser *P) {
  if (peek(P)->kind == NDE__TK_NEWLINE) return true;
  unexpected(P, peek(P), "end of line");
  return false;
}

/* Record a declaration's place in the theta order (+p param, -(k+1) net). */
static int add_decl(parser *P, int code) {
  nde__ast *A = P->ast;
  GROW(A->decl_order, A->n_decl, A->cap_decl);
  A->decl_order[A->n_decl++] = code;
  return 0;
}

/* state_item := NAME ['[' INTEGER ']'] ['=' (signed | '[' signed {',' signed} ']')] */
static int parse_state(parser *P) {
  nde__ast *A = P->ast;
  for (;;) {
    const nde__token *nm = peek(P);
    if (nm->kind != NDE__TK_IDENT) {
      unexpected(P, nm, "a state name");
      return -1;
    }
    next(P);
    GROW(A->states, A->n_states, A->cap_states);
    nde__state_decl *s = &A->states[A->n_states];
    memset(s, 0, sizeof *s);
    s->name = nm->text;
    s->name_len = nm->len;
    s->pos = nm->pos;
    s->size = 1;
    s->equation = -1;
    A->n_states++;
    if (peek(P)->kind == NDE__TK_LBRACKET) {
      next(P);
      const nde__token *k = peek(P);
      if (k->kind != NDE__TK_NUMBER || !k->is_int) {
        unexpected(P, k, "the size of the vector state, e.g. y[2]");
        return -1;
      }
      next(P);
      if (k->num < 1) {
        P->failed = true;
        nde__diag_error(P->d, NDE_ERR_MODEL, k->pos, "state '%.*s' has size %.0f (expected at least 1)",
                        nm->len, nm->text, k->num);
        return -1;
      }
      if (k->num > NDE_MODEL_MAX_STATE) {
        limit_error(P, k->pos, "state size is larger than the limit of %d", NDE_MODEL_MAX_STATE);
        return -1;
      }
      s->size = (int)k->num;
      s->is_vector = true;
      if (!expect(P, NDE__TK_RBRACKET, "']'")) return -1;
    }
    if (peek(P)->kind == NDE__TK_ASSIGN) {
      next(P);
      s->has_init = true;
      s->init_pos = peek(P)->pos;
      s->init = calloc((size_t)s->size, sizeof(double));
      if (!s->init) {
        P->nomem = true;
        return -1;
      }
      nde__pos vp;
      if (peek(P)->kind == NDE__TK_LBRACKET) {
        next(P);
        int n = 0;
        for (;;) {
          double v;
          if (!parse_signed(P, &v, &vp)) return -1;
          if (n < s->size) s->init[n] = v;
          n++;
          if (peek(P)->kind == NDE__TK_COMMA) {
            next(P);
            continue;
          }
          break;
        }
        if (!expect(P, NDE__TK_RBRACKET, "',' or ']'")) return -1;
        s->n_init = n;
        if (n != s->size) {
          P->failed = true;
          nde__diag_error(P->d, NDE_ERR_MODEL, s->init_pos,
                          "state '%.*s' has size %d but %d initial value%s given", nm->len,
                          nm->text, s->size, n, n == 1 ? " is" : "s are");
          return -1;
        }
      } else {
        double v;
        if (!parse_signed(P, &v, &vp)) return -1;
        for (int i = 0; i < s->size; i++) s->init[i] = v; /* one value fills a vector */
        s->n_init = 1;
      }
    }
    if (peek(P)->kind == NDE__TK_COMMA) {
      next(P);
      continue;
    }
    return end_of_statement(P) ? 0 : -1;
  }
}

/* param := NAME '=' signed ['(' flag {',' flag} ')'];
 * flag := fixed | positive | in [lo, hi] | per series */
static int parse_param(parser *P) {
  nde__ast *A = P->ast;
  const nde__token *nm = peek(P);
  if (nm->kind != NDE__TK_IDENT) {
    unexpected(P, nm, "a parameter name");
    return -1;
  }
  next(P);
  if (!expect(P, NDE__TK_ASSIGN, "'=' and the parameter's value")) return -1;
  nde__param_decl pd;
  memset(&pd, 0, sizeof pd);
  pd.name = nm->text;
  pd.name_len = nm->len;
  pd.pos = nm->pos;
  if (!parse_signed(P, &pd.value, &pd.value_pos)) return -1;
  if (peek(P)->kind == NDE__TK_LPAREN) {
    next(P);
    for (;;) {
      const nde__token *f = peek(P);
      if (is_word(f, "fixed")) {
        next(P);
        pd.fixed = true;
        pd.fixed_pos = f->pos;
      } else if (is_word(f, "per")) {
        next(P);
        if (!is_word(peek(P), "series")) {
          unexpected(P, peek(P), "'series' after 'per'");
          return -1;
        }
        next(P);
        pd.per_series = true;
        pd.series_pos = f->pos;
      } else if (is_word(f, "positive")) {
        next(P);
        pd.positive = true;
        pd.flag_pos = f->pos;
      } else if (is_word(f, "in")) {
        next(P);
        nde__pos p;
        pd.bounded = true;
        pd.flag_pos = f->pos;
        if (!expect(P, NDE__TK_LBRACKET, "'[' after 'in'")) return -1;
        if (!parse_signed(P, &pd.lo, &p)) return -1;
        if (!expect(P, NDE__TK_COMMA, "','")) return -1;
        if (!parse_signed(P, &pd.hi, &p)) return -1;
        if (!expect(P, NDE__TK_RBRACKET, "']'")) return -1;
      } else {
        unexpected(P, f, "'fixed', 'positive', 'in [lo, hi]' or 'per series'");
        return -1;
      }
      if (peek(P)->kind == NDE__TK_COMMA) {
        next(P);
        continue;
      }
      break;
    }
    if (!expect(P, NDE__TK_RPAREN, "',' or ')'")) return -1;
  }
  if (!end_of_statement(P)) return -1;
  GROW(A->params, A->n_params, A->cap_params);
  A->params[A->n_params] = pd;
  if (add_decl(P, A->n_params) < 0) return -1;
  A->n_params++;
  return 0;
}

/* net := NAME ':' INTEGER {'->' INTEGER [ACTIVATION]} ['init' (glorot | he | normal '(' sigma ')')] */
static int parse_net(parser *P) {
  nde__ast *A = P->ast;
  const nde__token *nm = peek(P);
  if (nm->kind != NDE__TK_IDENT) {
    unexpected(P, nm, "a net name");
    return -1;
  }
  next(P);
  if (!expect(P, NDE__TK_COLON, "':' and the layer widths, e.g. U : 2 -> 16 tanh -> 1")) return -1;
  nde__net_decl nd;
  memset(&nd, 0, sizeof nd);
  nd.name = nm->text;
  nd.name_len = nm->len;
  nd.pos = nm->pos;
  nd.init = NDE_INIT_GLOROT_UNIFORM;
  for (int l = 0;; l++) {
    const nde__token *w = peek(P);
    if (w->kind != NDE__TK_NUMBER || !w->is_int) {
      unexpected(P, w, "a layer width (a whole number)");
      return -1;
    }
    next(P);
    if (w->num < 1 || w->num > NDE_MODEL_MAX_WIDTH) {
      P->failed = true;
      if (w->num < 1)
        nde__diag_error(P->d, NDE_ERR_MODEL, w->pos, "layer width %.0f of net '%.*s' is not positive", w->num, nm->len, nm->text);
      else
        nde__diag_error(P->d, NDE_ERR_LIMIT, w->pos, "layer width %.0f of net '%.*s' is larger than the limit of %d",
                        w->num, nm->len, nm->text, NDE_MODEL_MAX_WIDTH);
      return -1;
    }
    nd.widths[l] = (int)w->num;
    nd.width_pos[l] = w->pos;
    if (l > 0) {
      nd.acts[l - 1] = NDE_ACT_IDENTITY;
      const nde__token *a = peek(P);
      if (a->kind == NDE__TK_IDENT && !is_word(a, "init")) {
        char buf[32];
        nde_act act;
        int k = a->len < 31 ? a->len : 31;
        memcpy(buf, a->text, (size_t)k);
        buf[k] = '\0';
        if (a->len > 31 || nde_act_from_name(buf, &act) != NDE_OK) {
          P->failed = true;
          nde__diag_error(P->d, NDE_ERR_MODEL, a->pos,
                          "unknown activation '%.*s' (expected identity, tanh, relu, softplus, "
                          "sigmoid, gelu or rbf)", a->len, a->text);
          return -1;
        }
        next(P);
        nd.acts[l - 1] = act;
      }
    }
    if (peek(P)->kind != NDE__TK_ARROW) {
      nd.n_layers = l;
      break;
    }
    if (l + 1 > NDE__NET_MAX_LAYERS || l + 1 > NDE_NET_MAX_LAYERS) {
      limit_error(P, peek(P)->pos, "net has more than %d layers", NDE__NET_MAX_LAYERS);
      return -1;
    }
    next(P);
  }
  if (nd.n_layers == 0) {
    P->failed = true;
    nde__diag_error(P->d, NDE_ERR_MODEL, nd.width_pos[0],
                    "net '%.*s' has no layers (expected e.g. %d -> 16 tanh -> 1)", nm->len,
                    nm->text, nd.widths[0]);
    return -1;
  }
  if (is_word(peek(P), "init")) {
    next(P);
    const nde__token *s = peek(P);
    if (is_word(s, "glorot")) {
      next(P);
      nd.init = NDE_INIT_GLOROT_UNIFORM;
    } else if (is_word(s, "he")) {
      next(P);
      nd.init = NDE_INIT_HE;
    } else if (is_word(s, "normal")) {
      next(P);
      nde__pos p;
      nd.init = NDE_INIT_NORMAL;
      if (!expect(P, NDE__TK_LPAREN, "'(' and the standard deviation, e.g. normal(0.1)")) return -1;
      if (!parse_signed(P, &nd.sigma, &p)) return -1;
      if (!expect(P, NDE__TK_RPAREN, "')'")) return -1;
      if (!(nd.sigma > 0)) {
        P->failed = true;
        nde__diag_error(P->d, NDE_ERR_MODEL, p, "standard deviation %g of normal() is not positive", nd.sigma);
        return -1;
      }
    } else {
      unexpected(P, s, "glorot, he or normal(sigma)");
      return -1;
    }
  }
  if (!end_of_statement(P)) return -1;
  if (A->n_nets >= NDE_MODEL_MAX_NETS) {
    limit_error(P, nm->pos, "more than %d nets", NDE_MODEL_MAX_NETS);
    return -1;
  }
  GROW(A->nets, A->n_nets, A->cap_nets);
  A->nets[A->n_nets] = nd;
  if (add_decl(P, -(A->n_nets + 1)) < 0) return -1;
  A->n_nets++;
  return 0;
}

/* assignment := NAME '=' expr   |   equation := 'd'NAME '/' 'dt' '=' expr
 * observable := 'observe' NAME '=' expr   (observed; the keyword is already read) */
static int parse_assign(parser *P, bool observed) {
  nde__ast *A = P->ast;
  const nde__token *nm = next(P);
  bool is_eq = false;
  nde__assign as;
  memset(&as, 0, sizeof as);
  as.state = -1;
  as.observed = observed;
  if (nm->kind != NDE__TK_IDENT) {
    unexpected(P, nm, "an observable's name");
    return -1;
  }
  if (peek(P)->kind == NDE__TK_SLASH && observed) {
    unexpected(P, peek(P), "'=' in observe NAME = expression");
    return -1;
  }
  if (peek(P)->kind == NDE__TK_SLASH) {
    next(P);
    if (!(nm->len >= 2 && nm->text[0] == 'd') || !is_word(peek(P), "dt")) {
      unexpected(P, peek(P), nm->len >= 2 && nm->text[0] == 'd' ? "'dt' in an equation dx/dt = ..." : "'=' (equations read dx/dt = ...)");
      return -1;
    }
    next(P);
    is_eq = true;
    as.name = nm->text + 1;
    as.name_len = nm->len - 1;
    as.pos = nm->pos;
    as.pos.col += 1;
    as.pos.offset += 1;
  } else {
    as.name = nm->text;
    as.name_len = nm->len;
    as.pos = nm->pos;
  }
  if (!expect(P, NDE__TK_ASSIGN, "'='")) return -1;
  P->depth = 0;
  as.expr = parse_expr(P);
  if (as.expr < 0) return -1;
  if (!end_of_statement(P)) return -1;
  if (is_eq) {
    GROW(A->eqs, A->n_eqs, A->cap_eqs);
    A->eqs[A->n_eqs++] = as;
  } else {
    GROW(A->inters, A->n_inters, A->cap_inters);
    A->inters[A->n_inters++] = as;
  }
  return 0;
}

/* equation := 'd' '[' NAME {',' NAME} ']' '/' 'dt' '=' expr   (the 'd' is already read): the
 * listed states' equations, side by side in one expression of their total size */
static int parse_list_equation(parser *P) {
  nde__ast *A = P->ast;
  nde__assign as;
  memset(&as, 0, sizeof as);
  as.state = -1;
  as.pos = peek(P)->pos;
  next(P); /* '[' */
  int names[NDE_MODEL_MAX_STATE];
  int n = 0;
  for (;;) {
    const nde__token *nm = peek(P);
    if (nm->kind != NDE__TK_IDENT) {
      unexpected(P, nm, "a state's name");
      return -1;
    }
    if (n == NDE_MODEL_MAX_STATE) {
      limit_error(P, nm->pos, "more than %d states in one equation", NDE_MODEL_MAX_STATE);
      return -1;
    }
    next(P);
    int e = new_expr(P, NDE__E_NAME, nm->pos, -1, -1);
    if (e < 0) return -1;
    A->exprs[e].name = nm->text;
    A->exprs[e].name_len = nm->len;
    names[n++] = e;
    if (peek(P)->kind != NDE__TK_COMMA) break;
    next(P);
  }
  if (!expect(P, NDE__TK_RBRACKET, "',' or ']'")) return -1;
  if (!expect(P, NDE__TK_SLASH, "'/dt' in an equation d[x, y]/dt = ...")) return -1;
  if (!is_word(peek(P), "dt")) {
    unexpected(P, peek(P), "'dt' in an equation d[x, y]/dt = ...");
    return -1;
  }
  next(P);
  if (!expect(P, NDE__TK_ASSIGN, "'='")) return -1;
  P->depth = 0;
  as.expr = parse_expr(P);
  if (as.expr < 0) return -1;
  if (!end_of_statement(P)) return -1;
  as.lhs_first = A->n_args;
  as.lhs_n = n;
  for (int i = 0; i < n; i++) {
    GROW(A->args, A->n_args, A->cap_args);
    A->args[A->n_args++] = names[i];
  }
  as.name = A->exprs[names[0]].name;
  as.name_len = A->exprs[names[0]].name_len;
  GROW(A->eqs, A->n_eqs, A->cap_eqs);
  A->eqs[A->n_eqs++] = as;
  return 0;
}

/* input := NAME {',' NAME} ['(' option {',' option} ')'];  option := linear | cubic | step | hold */
static int parse_input(parser *P) {
  nde__ast *A = P->ast;
  const int first = A->n_inputs;
  for (;;) {
    const nde__token *nm = peek(P);
    if (nm->kind != NDE__TK_IDENT) {
      unexpected(P, nm, "an input name");
      return -1;
    }
    next(P);
    GROW(A->inputs, A->n_inputs, A->cap_inputs);
    nde__input_decl *in = &A->inputs[A->n_inputs++];
    memset(in, 0, sizeof *in);
    in->name = nm->text;
    in->name_len = nm->len;
    in->pos = nm->pos;
    in->interp = NDE_INTERP_LINEAR;
    if (peek(P)->kind != NDE__TK_COMMA) break;
    next(P);
  }
  nde_interp interp = NDE_INTERP_LINEAR;
  bool hold = false;
  const nde__token *chosen = NULL;
  if (peek(P)->kind == NDE__TK_LPAREN) {
    next(P);
    for (;;) {
      const nde__token *o = peek(P);
      const int k = is_word(o, "linear") ? (int)NDE_INTERP_LINEAR
                    : is_word(o, "cubic") ? (int)NDE_INTERP_CUBIC
                    : is_word(o, "step")  ? (int)NDE_INTERP_STEP
                                          : -1;
      if (is_word(o, "hold")) {
        next(P);
        hold = true;
      } else if (k >= 0) {
        next(P);
        if (chosen) {
          P->failed = true;
          nde__diag_error(P->d, NDE_ERR_MODEL, o->pos,
                          "'%.*s' after '%.*s' (an input has one interpolation: linear, cubic or step)",
                          o->len, o->text, chosen->len, chosen->text);
          return -1;
        }
        chosen = o;
        interp = (nde_interp)k;
      } else {
        unexpected(P, o, "'linear', 'cubic', 'step' or 'hold'");
        return -1;
      }
      if (peek(P)->kind == NDE__TK_COMMA) {
        next(P);
        continue;
      }
      break;
    }
    if (!expect(P, NDE__TK_RPAREN, "',' or ')'")) return -1;
  }
  if (!end_of_statement(P)) return -1;
  for (int i = first; i < A->n_inputs; i++) {
    A->inputs[i].interp = interp;
    A->inputs[i].hold = hold;
  }
  return 0;
}

/* const := item {',' item} ['(' 'from' 'data' ')'];  item := NAME ['=' signed]
 * Every item has a value, or none has and the line ends with (from data). */
static int parse_const(parser *P) {
  nde__ast *A = P->ast;
  const int first = A->n_consts;
  nde__pos value_pos[64];
  bool has_value[64];
  for (;;) {
    const nde__token *nm = peek(P);
    if (nm->kind != NDE__TK_IDENT) {
      unexpected(P, nm, "a constant's name");
      return -1;
    }
    next(P);
    if (A->n_consts - first >= 64) {
      limit_error(P, nm->pos, "more than %d constants on one line", 64);
      return -1;
    }
    GROW(A->consts, A->n_consts, A->cap_consts);
    nde__const_decl *c = &A->consts[A->n_consts++];
    memset(c, 0, sizeof *c);
    c->name = nm->text;
    c->name_len = nm->len;
    c->pos = nm->pos;
    const int k = A->n_consts - 1 - first;
    has_value[k] = false;
    if (peek(P)->kind == NDE__TK_ASSIGN) {
      next(P);
      if (!parse_signed(P, &c->value, &value_pos[k])) return -1;
      has_value[k] = true;
    }
    if (peek(P)->kind != NDE__TK_COMMA) break;
    next(P);
  }
  bool from_data = false;
  if (peek(P)->kind == NDE__TK_LPAREN) {
    next(P);
    if (!is_word(peek(P), "from")) {
      unexpected(P, peek(P), "'from data'");
      return -1;
    }
    next(P);
    if (!is_word(peek(P), "data")) {
      unexpected(P, peek(P), "'data' after 'from'");
      return -1;
    }
    next(P);
    if (!expect(P, NDE__TK_RPAREN, "')'")) return -1;
    from_data = true;
  }
  if (!end_of_statement(P)) return -1;
  for (int i = first; i < A->n_consts; i++) {
    nde__const_decl *c = &A->consts[i];
    const int k = i - first;
    c->from_data = from_data;
    if (from_data && has_value[k]) {
      P->failed = true;
      nde__diag_error(P->d, NDE_ERR_MODEL, value_pos[k],
                      "constant '%.*s' is from data and cannot have a value in the file",
                      c->name_len, c->name);
      return -1;
    }
    if (!from_data && !has_value[k]) {
      P->failed = true;
      nde__diag_error(P->d, NDE_ERR_MODEL, c->pos,
                      "constant '%.*s' has no value (expected 'const %.*s = 1.5' or "
                      "'const %.*s (from data)')",
                      c->name_len, c->name, c->name_len, c->name, c->name_len, c->name);
      return -1;
    }
  }
  return 0;
}

static void statement(parser *P) {
  const nde__token *t = peek(P);
  P->failed = false;
  if (t->kind == NDE__TK_NEWLINE) return;
  if (is_word(t, "state") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_state(P);
  } else if (is_word(t, "param") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_param(P);
  } else if (is_word(t, "net") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_net(P);
  } else if (is_word(t, "input") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_input(P);
  } else if (is_word(t, "const") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_const(P);
  } else if (is_word(t, "observe") && peek2(P)->kind == NDE__TK_IDENT) {
    next(P);
    parse_assign(P, true);
  } else if (is_word(t, "d") && peek2(P)->kind == NDE__TK_LBRACKET) {
    next(P);
    parse_list_equation(P);
  } else if (t->kind == NDE__TK_IDENT &&
             (peek2(P)->kind == NDE__TK_ASSIGN || peek2(P)->kind == NDE__TK_SLASH)) {
    parse_assign(P, false);
  } else {
    unexpected(P, t,
               "a declaration (state, param, net, input, const, observe), an equation dx/dt = ... "
               "or name = ...");
  }
}

nde_status nde__parse(const nde__token *toks, int n_toks, nde__diags *d, nde__ast *ast) {
  parser P = {toks, n_toks, 0, d, ast, 0, false, false};
  while (peek(&P)->kind != NDE__TK_EOF) {
    statement(&P);
    if (P.nomem) return NDE_ERR_NOMEM;
    /* Skip what is left of the line (all of it after an error). */
    while (peek(&P)->kind != NDE__TK_NEWLINE && peek(&P)->kind != NDE__TK_EOF) next(&P);
    if (peek(&P)->kind == NDE__TK_NEWLINE) next(&P);
  }
  return d->n_errors ? d->status : NDE_OK;
}

void nde__ast_free(nde__ast *ast) {
  for (int i = 0; i < ast->n_states; i++) free(ast->states[i].init);
  free(ast->exprs);
  free(ast->args);
  free(ast->states);
  free(ast->params);
  free(ast->nets);
  free(ast->inputs);
  free(ast->consts);
  free(ast->inters);
  free(ast->eqs);
  free(ast->decl_order);
  free(ast->syms);
  free(ast->sym_hash);
  free(ast->inter_order);
  memset(ast, 0, sizeof *ast);
}
