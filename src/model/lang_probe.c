/* Source-level views of a compiled model, for discovery and export: the places where nets are
 * called, probes (the values of extra expressions in the model's language at given states, by
 * compiling the source with those expressions appended as an extra state's equation), the model
 * as standalone C with the trained weights embedded (grad written as reverse-mode code over the
 * syntax tree), and its equations as text or LaTeX.
 * Everything here reads the syntax tree of the model's own source text again; nothing changes
 * the model. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"
#include "tape.h"

/* ---- text ---- */

/* The shortest text that reads back as v (so 0.9 prints as 0.9). */
static void add_num(nde_str *b, double v) {
  char buf[NDE_NUM_MAX];
  nde_str_adds(b, nde_num_str(v, buf));
}

/* ---- the checked syntax tree of a model's source ---- */

typedef struct parsed {
  nde__diags d;
  nde__ast ast;
} parsed;

static void parsed_free(parsed *p) {
  nde__ast_free(&p->ast);
  nde__diags_free(&p->d);
}

static nde_status parse_source(const char *src, size_t len, parsed *p) {
  return nde__parse_source(src, len, "<probe>", &p->d, &p->ast);
}

static bool is_net_call(const nde__ast *A, const nde__expr *x) {
  return x->kind == NDE__E_CALL && x->func < 0 && x->sym >= 0 && x->sym < A->n_syms &&
         A->syms[x->sym].kind == NDE__SYM_NET;
}

static int cmp_call(const void *a, const void *b) {
  const nde_model_net_call *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

nde_status nde_model_net_calls(const nde_model *model, int *n, nde_model_net_call **calls) {
  if (!model || !n || !calls || model->status != NDE_OK) return NDE_ERR_ARG;
  *n = 0;
  *calls = NULL;
  parsed p;
  nde_status st = parse_source(model->src, model->src_len, &p);
  if (st != NDE_OK) {
    parsed_free(&p);
    return st == NDE_ERR_NOMEM ? st : NDE_ERR_INTERNAL;
  }
  const nde__ast *A = &p.ast;
  int count = 0;
  for (int e = 0; e < A->n_exprs; e++) count += is_net_call(A, &A->exprs[e]);
  nde_model_net_call *c = count ? calloc((size_t)count, sizeof *c) : NULL;
  if (count && !c) {
    parsed_free(&p);
    return NDE_ERR_NOMEM;
  }
  int k = 0;
  for (int e = 0; e < A->n_exprs; e++) {
    const nde__expr *x = &A->exprs[e];
    if (!is_net_call(A, x)) continue;
    nde_model_net_call *q = &c[k++];
    q->net = A->syms[x->sym].index;
    q->line = x->pos.line;
    q->col = x->pos.col;
    q->begin = (size_t)x->pos.offset;
    /* The call ends at the parenthesis matching the one after the name (a statement is one
     * line and the language has no strings, so counting parentheses is exact). */
    size_t i = q->begin + (size_t)x->name_len;
    while (i < model->src_len && model->src[i] != '(') i++;
    q->args_begin = i + 1;
    int depth = 0;
    for (; i < model->src_len; i++) {
      if (model->src[i] == '(') depth++;
      if (model->src[i] == ')' && --depth == 0) break;
    }
    q->args_end = i;
    q->end = i < model->src_len ? i + 1 : i;
  }
  if (count > 1) qsort(c, (size_t)count, sizeof *c, cmp_call);
  parsed_free(&p);
  *n = count;
  *calls = c;
  return NDE_OK;
}

nde_status nde_model_net_decl_range(const nde_model *model, int net, size_t *begin,
                                    size_t *end) {
  if (!model || !begin || !end || model->status != NDE_OK || net < 0 || net >= model->n_nets)
    return NDE_ERR_ARG;
  parsed p;
  nde_status st = parse_source(model->src, model->src_len, &p);
  if (st == NDE_OK && net >= p.ast.n_nets) st = NDE_ERR_INTERNAL;
  if (st == NDE_OK) {
    size_t b = (size_t)p.ast.nets[net].pos.offset, e = b;
    while (b > 0 && model->src[b - 1] != '\n') b--;
    while (e < model->src_len && model->src[e] != '\n') e++;
    if (e < model->src_len) e++;
    *begin = b;
    *end = e;
  }
  parsed_free(&p);
  return st == NDE_OK || st == NDE_ERR_NOMEM ? st : NDE_ERR_INTERNAL;
}

nde_status nde_model_param_value_range(const nde_model *model, int i, size_t *begin,
                                       size_t *end) {
  nde_model_param_info pi;
  if (!model || !begin || !end || model->status != NDE_OK ||
      nde_model_get_param(model, i, &pi) != NDE_OK)
    return NDE_ERR_ARG;
  parsed p;
  nde_status st = parse_source(model->src, model->src_len, &p);
  int k = -1;
  for (int j = 0; st == NDE_OK && j < p.ast.n_params && k < 0; j++)
    if (strlen(pi.name) == (size_t)p.ast.params[j].name_len &&
        !memcmp(pi.name, p.ast.params[j].name, p.ast.params[j].name_len))
      k = j;
  if (st == NDE_OK && k < 0) st = NDE_ERR_INTERNAL;
  if (st == NDE_OK) {
    /* The value is a sign, blanks, then a number, which ends at a blank, '(', '#' or the line's
     * end. */
    size_t b = (size_t)p.ast.params[k].value_pos.offset, e = b;
    if (e < model->src_len && (model->src[e] == '-' || model->src[e] == '+')) e++;
    while (e < model->src_len && (model->src[e] == ' ' || model->src[e] == '\t')) e++;
    while (e < model->src_len && !strchr(" \t\r\n(#", model->src[e])) e++;
    *begin = b;
    *end = e;
  }
  parsed_free(&p);
  return st == NDE_OK || st == NDE_ERR_NOMEM ? st : NDE_ERR_INTERNAL;
}

/* ---- probes ---- */

#define PROBE_NAME "nde__probe"

struct nde_probe {
  nde__tape_handle h; /* outputs: the expressions, side by side (a clone shares its root's) */
  int n_expr;
  int *width;         /* the root's (a clone reads its root's) */
  int total;
};

static void free_widths(nde__tape_handle *h) { free(((nde_probe *)h)->width); }

void nde_probe_destroy(nde_probe **probe) {
  if (!probe || !*probe) return;
  nde__handle_release(&(*probe)->h);
  *probe = NULL;
}

nde_status nde_probe_clone(const nde_probe *probe, nde_probe **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_probe_clone: no output pointer");
  *out = NULL;
  if (!probe) return nde__fail(err, NDE_ERR_ARG, "nde_probe_clone: no probe");
  nde__tape_handle *c = NULL;
  const nde_status st = nde__handle_clone(&probe->h, sizeof(nde_probe), &c);
  if (st != NDE_OK) return nde__fail(err, st, "%s cloning a probe", nde_status_str(st));
  nde_probe *cp = (nde_probe *)c;
  cp->n_expr = probe->n_expr;
  cp->width = probe->width;
  cp->total = probe->total;
  *out = cp;
  return NDE_OK;
}

int nde_probe_width(const nde_probe *probe, int i) {
  return probe && i >= 0 && i < probe->n_expr ? probe->width[i] : 0;
}
int nde_probe_total_width(const nde_probe *probe) { return probe ? probe->total : 0; }

nde_status nde_probe_dependency(const nde_probe *probe, unsigned char *dep) {
  if (!probe || !dep) return NDE_ERR_ARG;
  const nde__tape_handle *h = probe->h.root ? probe->h.root : &probe->h;
  const nde__tape *T = &h->tape;
  const size_t nvar = (size_t)T->n_state + (size_t)nde_model_n_inputs(h->model);
  unsigned char *cols = malloc((size_t)T->n_out * nvar + 1);
  if (!cols) return NDE_ERR_NOMEM;
  /* One pass over the tape for every output column, then each expression's columns joined. */
  const nde_status st = nde__tape_var_dependency(T, nde_model_n_inputs(h->model), cols);
  if (st == NDE_OK) {
    memset(dep, 0, (size_t)probe->n_expr * nvar);
    for (int e = 0, c = 0; e < probe->n_expr; e++)
      for (int end = c + probe->width[e]; c < end; c++)
        for (size_t j = 0; j < nvar; j++) dep[(size_t)e * nvar + j] |= cols[(size_t)c * nvar + j];
  }
  free(cols);
  return st;
}

static nde_status probe_make(const nde_model *model, int n_expr, const char *const *exprs,
                             const nde_model_rhs_opts *o, int bind, nde_probe **out,
                             nde_error *err);

static int count_lines(const char *s, size_t len) {
  int k = 1;
  for (size_t i = 0; i < len; i++) k += s[i] == '\n';
  return k;
}

nde_status nde_probe_create(const nde_model *model, int n_expr, const char *const *exprs,
                            int max_batch, nde_probe **out, nde_error *err) {
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = max_batch;
  return probe_make(model, n_expr, exprs, &o, 0, out, err);
}

nde_status nde_probe_create_opts(const nde_model *model, int n_expr, const char *const *exprs,
                                 const nde_model_rhs_opts *o, nde_probe **out, nde_error *err) {
  const nde_model_rhs_opts dflt = nde_model_rhs_opts_default();
  return probe_make(model, n_expr, exprs, o ? o : &dflt, 1, out, err);
}

nde_status nde_probe_set_rows(nde_probe *probe, int B, const int *series_of_row) {
  if (!probe) return NDE_ERR_ARG;
  if (series_of_row)
    for (int r = 0; r < B; r++)
      if (series_of_row[r] < 0) return NDE_ERR_ARG;
  return nde__tctx_set_rows(probe->h.X, B, series_of_row);
}

/* A probe on batches and series of o; with bind, the data of o drive the expressions. */
static nde_status probe_make(const nde_model *model, int n_expr, const char *const *exprs,
                             const nde_model_rhs_opts *o, int bind, nde_probe **out,
                             nde_error *err) {
  const int max_batch = o->max_batch;
  if (err) {
    err->status = NDE_OK;
    err->msg[0] = '\0';
  }
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_probe_create: out is NULL");
  *out = NULL;
  if (!model || model->status != NDE_OK || n_expr < 1 || !exprs || max_batch < 1)
    return nde__fail(err, NDE_ERR_ARG, "nde_probe_create: needs a loaded model, expressions and max_batch >= 1");
  for (int i = 0; i < n_expr; i++) {
    if (!exprs[i] || strchr(exprs[i], '\n') || strchr(exprs[i], '#'))
      return nde__fail(err, NDE_ERR_PARSE, "expression '%s': expected one line without comments",
                       exprs[i] ? exprs[i] : "(null)");
  }
  nde_probe *p = calloc(1, sizeof *p);
  /* The model is immutable; only its reference count changes. */
  if (p) {
    nde__handle_init(&p->h, (nde_model *)model);
    p->h.free_root = free_widths;
  }
  nde_str b = NDE_STR_INIT;
  parsed ps;
  memset(&ps, 0, sizeof ps);
  nde__output *outs = NULL;
  nde_status st = NDE_ERR_NOMEM;
  if (!p) goto fail;
  p->n_expr = n_expr;
  p->width = calloc((size_t)n_expr, sizeof *p->width);
  outs = calloc((size_t)n_expr, sizeof *outs);
  if (!p->width || !outs) goto fail;

  /* The model's source with each expression appended as an intermediate: the same states,
   * parameters and nets in the same order, so theta has the model's layout. */
  const int base_line = count_lines(model->src, model->src_len) + 1;
  nde_str_add(&b, model->src, model->src_len);
  nde_str_addf(&b, "\n");
  for (int i = 0; i < n_expr; i++) nde_str_addf(&b, PROBE_NAME "_%d = %s\n", i, exprs[i]);
  if (b.failed) goto fail;
  st = parse_source(b.data, b.len, &ps);
  if (st != NDE_OK) {
    if (st == NDE_ERR_NOMEM) goto fail;
    for (int k = 0; k < ps.d.n; k++) {
      const nde__diag *g = &ps.d.items[k];
      if (g->is_note) continue;
      int i = g->pos.line - base_line;
      if (i >= 0 && i < n_expr) {
        /* The column inside the expression: after "nde__probe_I = ". */
        char head[40];
        int hl = snprintf(head, sizeof head, PROBE_NAME "_%d = ", i);
        int col = g->pos.col - hl;
        nde__fail(err, st, "expression '%s', column %d: %s", exprs[i], col > 0 ? col : 1,
                  g->message);
      } else {
        nde__fail(err, st, "expression appended to the model: %s", g->message);
      }
      break;
    }
    goto fail;
  }
  if (ps.ast.n_params != model->n_params || ps.ast.n_nets != model->n_nets ||
      ps.ast.n_inputs != model->n_inputs || ps.ast.n_consts != model->n_consts) {
    st = nde__fail(err, NDE_ERR_INTERNAL, "probe: the model's declarations changed");
    goto fail;
  }
  for (int i = 0; i < n_expr; i++) {
    char name[40];
    int nl = snprintf(name, sizeof name, PROBE_NAME "_%d", i);
    for (int k = 0; k < ps.ast.n_inters; k++) {
      const nde__assign *q = &ps.ast.inters[k];
      if (q->name_len == nl && memcmp(q->name, name, (size_t)nl) == 0) {
        p->width[i] = ps.ast.exprs[q->expr].size;
        outs[i] = (nde__output){q->expr, -1, p->total, p->width[i], 0};
      }
    }
    if (p->width[i] < 1) {
      st = nde__fail(err, NDE_ERR_INTERNAL, "expression '%s': no size", exprs[i]);
      goto fail;
    }
    p->total += p->width[i];
  }
  st = nde__compile_tape(&ps.ast, &ps.d, model, outs, n_expr, p->total, &p->h.tape);
  if (st != NDE_OK) {
    nde__fail(err, st, "%s compiling the expressions", nde_status_str(st));
    goto fail;
  }
  for (int k = 0; !bind && k < p->h.tape.n_code; k++)
    if (p->h.tape.code[k].op == NDE__OP_INPUT || p->h.tape.code[k].op == NDE__OP_DCONST) {
      st = nde__fail(err, NDE_ERR_ARG,
                     "the expressions use measured inputs or constants from data, which this "
                     "probe does not bind (nde_probe_create_opts binds them)");
      goto fail;
    }
  nde__bound *bd = NULL;
  if (bind && (st = nde__bound_create(p->h.model, o, &bd, err)) != NDE_OK) goto fail_quiet;
  st = nde__tctx_create(p->h.model, &p->h.tape, bd, max_batch, &p->h.X);
  nde__bound_release(bd);
  if (st != NDE_OK) goto fail;
  parsed_free(&ps);
  nde_str_release(&b);
  free(outs);
  *out = p;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__fail(err, st, "out of memory");
fail_quiet:
  parsed_free(&ps);
  nde_str_release(&b);
  free(outs);
  nde_probe_destroy(&p);
  return st;
}

int nde_probe_eval(nde_probe *probe, double t, int B, const double *U, const double *theta,
                   double *OUT) {
  if (!probe || !U || !OUT) return -1;
  return nde__tctx_f(probe->h.X, t, B, U, theta, OUT, NULL);
}

/* ---- C export ---- */

typedef struct cgen {
  const nde_model *m;
  const nde__ast *A;
  const double *theta;
  const char *prefix;
  nde_str *b;
  int next;     /* next temporary number */
  int *inter_v; /* temporary of each intermediate */
  int *node_v;  /* per expression: the temporary of its value, -1 */
  int *node_in; /* per net call: the temporary of its concatenated input */
  bool nested;  /* a grad of an expression with a grad inside: not exported */
} cgen;

static bool int_exponent(const nde__ast *A, int e, long *n) {
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

/* Emit code computing expression e into a new temporary vK (an array or a pointer of e's size);
 * returns K. */
static int cg_expr(cgen *g, int e);
static int cg_grad(cgen *g, int e);

static int cg_temp(cgen *g, int size) {
  int k = g->next++;
  nde_str_addf(g->b, "  double v%d[%d];\n", k, size);
  return k;
}

/* Element i (a loop variable name) of temporary k of the given size (broadcast when 1). */
#define EL(k, size) (size) == 1 ? "0" : "i"

static int cg_expr_value(cgen *g, int e);

static int cg_expr(cgen *g, int e) {
  const int k = cg_expr_value(g, e);
  g->node_v[e] = k;
  return k;
}

static int cg_expr_value(cgen *g, int e) {
  const nde__ast *A = g->A;
  const nde__expr *x = &A->exprs[e];
  nde_str *b = g->b;
  const int n = x->size;
  switch (x->kind) {
    case NDE__E_NUM: {
      int k = g->next++;
      nde_str_addf(b, "  const double v%d[1] = {", k);
      add_num(b, x->num);
      nde_str_addf(b, "};\n");
      return k;
    }
    case NDE__E_NAME: {
      int k;
      if (x->sym < 0) {
        k = g->next++;
        nde_str_addf(b, "  const double v%d[1] = {t};\n", k);
        return k;
      }
      const nde__sym *y = &A->syms[x->sym];
      switch (y->kind) {
        case NDE__SYM_STATE:
          k = g->next++;
          nde_str_addf(b, "  const double *v%d = u + %d; /* %.*s */\n", k, A->states[y->index].offset,
                    y->name_len, y->name);
          return k;
        case NDE__SYM_PARAM:
          k = g->next++;
          nde_str_addf(b, "  const double v%d[1] = {%s_params[%d]}; /* %.*s */\n", k, g->prefix,
                    y->index, y->name_len, y->name);
          return k;
        case NDE__SYM_INTER: return g->inter_v[y->index];
        case NDE__SYM_CONST:
          /* Only plain constants reach here (export refuses constants from data). */
          k = g->next++;
          nde_str_addf(b, "  const double v%d[1] = {", k);
          add_num(b, g->m->consts[y->index].info.value);
          nde_str_addf(b, "}; /* %.*s */\n", y->name_len, y->name);
          return k;
        case NDE__SYM_INPUT:
        case NDE__SYM_NET: return -1;
      }
      return -1;
    }
    case NDE__E_CALL: {
      if (x->func == NDE__F_GRAD) return cg_grad(g, e);
      if (x->func < 0) {
        const int net = A->syms[x->sym].index;
        const int n_in = A->nets[net].widths[0];
        int in = cg_temp(g, n_in), off = 0;
        g->node_in[e] = in;
        for (int a = 0; a < x->n_args; a++) {
          int ea = A->args[x->args + a], sa = A->exprs[ea].size;
          int ka = cg_expr(g, ea);
          nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[%d + i] = v%d[i];\n", sa, in, off, ka);
          off += sa;
        }
        int k = cg_temp(g, n);
        nde_str_addf(b, "  %s_net_%d(v%d, v%d); /* %.*s */\n", g->prefix, net, in, k, x->name_len,
                  x->name);
        return k;
      }
      /* Built-ins, elementwise over arguments that may be broadcast scalars. */
      static const char *const fn[NDE__F_COUNT] = {
          [NDE__F_EXP] = "exp", [NDE__F_LOG] = "log", [NDE__F_SQRT] = "sqrt", [NDE__F_SIN] = "sin",
          [NDE__F_COS] = "cos", [NDE__F_TANH] = "tanh", [NDE__F_ABS] = "fabs", [NDE__F_STEP] = "step",
          [NDE__F_MIN] = "min", [NDE__F_MAX] = "max", [NDE__F_CLAMP] = "clamp",
          [NDE__F_IFELSE] = "ifelse"};
      const bool own = x->func >= NDE__F_STEP; /* defined in the exported file */
      int a[3], sa[3];
      for (int i = 0; i < x->n_args && i < 3; i++) {
        a[i] = cg_expr(g, A->args[x->args + i]);
        sa[i] = A->exprs[A->args[x->args + i]].size;
      }
      int k = cg_temp(g, n);
      nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = %s%s%s(", n, k, own ? g->prefix : "",
                   own ? "_" : "", fn[x->func]);
      for (int i = 0; i < x->n_args && i < 3; i++)
        nde_str_addf(b, "%sv%d[%s]", i ? ", " : "", a[i], EL(a[i], sa[i]));
      nde_str_addf(b, ");\n");
      return k;
    }
    case NDE__E_MATMUL: {
      const nde__expr *ea = &A->exprs[x->a];
      const int rows = ea->size / ea->mcols, inner = ea->mcols, cols = n / rows;
      int a = cg_expr(g, x->a), c = cg_expr(g, x->b);
      int k = cg_temp(g, n);
      nde_str_addf(b,
                   "  for (int i = 0; i < %d; i++)\n    for (int j = 0; j < %d; j++) {\n"
                   "      double s = 0.0;\n      for (int l = 0; l < %d; l++) s += v%d[i * %d + l] * v%d[l * %d + j];\n"
                   "      v%d[i * %d + j] = s;\n    }\n",
                   rows, cols, inner, a, inner, c, cols, k, cols);
      return k;
    }
    case NDE__E_INDEX: {
      int a = cg_expr(g, x->a);
      int k = g->next++;
      nde_str_addf(b, "  const double *v%d = v%d + %ld;\n", k, a, x->index - 1);
      return k;
    }
    case NDE__E_LIST: {
      int k = cg_temp(g, n), off = 0;
      for (int a = 0; a < x->n_args; a++) {
        int ea = A->args[x->args + a], sa = A->exprs[ea].size;
        int ka = cg_expr(g, ea);
        nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[%d + i] = v%d[i];\n", sa, k, off, ka);
        off += sa;
      }
      return k;
    }
    case NDE__E_NEG: {
      int a = cg_expr(g, x->a);
      int k = cg_temp(g, n);
      nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = -v%d[i];\n", n, k, a);
      return k;
    }
    case NDE__E_POW: {
      long p;
      int a = cg_expr(g, x->a);
      int sa = A->exprs[x->a].size;
      if (int_exponent(A, x->b, &p)) {
        int k = cg_temp(g, n);
        nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = %s_ipow(v%d[%s], %ld);\n", n, k,
                  g->prefix, a, EL(a, sa), p);
        return k;
      }
      int c = cg_expr(g, x->b);
      int sc = A->exprs[x->b].size;
      int k = cg_temp(g, n);
      nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = exp(v%d[%s] * log(v%d[%s]));\n", n,
                k, c, EL(c, sc), a, EL(a, sa));
      return k;
    }
    case NDE__E_LT:
    case NDE__E_LE:
    case NDE__E_GT:
    case NDE__E_GE: {
      const char *fnc = x->kind == NDE__E_LT ? "lt" : x->kind == NDE__E_LE ? "le"
                        : x->kind == NDE__E_GT ? "gt" : "ge";
      int a = cg_expr(g, x->a), c = cg_expr(g, x->b);
      int sa = A->exprs[x->a].size, sc = A->exprs[x->b].size;
      int k = cg_temp(g, n);
      nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = %s_%s(v%d[%s], v%d[%s]);\n", n, k,
                   g->prefix, fnc, a, EL(a, sa), c, EL(c, sc));
      return k;
    }
    case NDE__E_ADD:
    case NDE__E_SUB:
    case NDE__E_MUL:
    case NDE__E_DIV: {
      const char *op = x->kind == NDE__E_ADD ? "+" : x->kind == NDE__E_SUB ? "-"
                       : x->kind == NDE__E_MUL ? "*" : "/";
      int a = cg_expr(g, x->a), c = cg_expr(g, x->b);
      int sa = A->exprs[x->a].size, sc = A->exprs[x->b].size;
      int k = cg_temp(g, n);
      nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[i] = v%d[%s] %s v%d[%s];\n", n, k, a,
                EL(a, sa), op, c, EL(c, sc));
      return k;
    }
  }
  return -1;
}

/* ---- grad in exported C: reverse mode over the syntax tree ---- */

typedef struct cone {
  int *order; /* nodes, parents before children */
  int n;
  bool *seen;
} cone;

/* Post-order of the nodes E's value depends on differentiably (intermediates followed into their
 * expressions; comparisons, step, conditions and integer exponents left out). */
static void cone_visit(cgen *g, cone *c, int e) {
  const nde__ast *A = g->A;
  if (e < 0 || c->seen[e]) return;
  c->seen[e] = true;
  const nde__expr *x = &A->exprs[e];
  long p;
  switch (x->kind) {
    case NDE__E_LT: case NDE__E_LE: case NDE__E_GT: case NDE__E_GE: break;
    case NDE__E_NAME:
      if (x->sym >= 0 && A->syms[x->sym].kind == NDE__SYM_INTER)
        cone_visit(g, c, A->inters[A->syms[x->sym].index].expr);
      break;
    case NDE__E_POW:
      cone_visit(g, c, x->a);
      if (!int_exponent(A, x->b, &p)) cone_visit(g, c, x->b);
      break;
    case NDE__E_CALL:
      if (x->func == NDE__F_GRAD) {
        g->nested = true;
        break;
      }
      if (x->func == NDE__F_STEP) break;
      for (int i = x->func == NDE__F_IFELSE ? 1 : 0; i < x->n_args; i++) cone_visit(g, c, A->args[x->args + i]);
      break;
    default:
      cone_visit(g, c, x->a);
      cone_visit(g, c, x->b);
      for (int i = 0; i < x->n_args; i++) cone_visit(g, c, A->args[x->args + i]);
      break;
  }
  c->order[c->n++] = e;
}

/* The grad call e: E's value, then its adjoints from the top down into an array of the states'
 * adjoints, of which the listed states are copied out. */
static int cg_grad(cgen *g, int e) {
  const nde__ast *A = g->A;
  const nde__expr *x = &A->exprs[e];
  nde_str *b = g->b;
  const char *P = g->prefix;
  const int ex = A->args[x->args];
  const int k_ex = cg_expr(g, ex);
  if (k_ex < 0) return -1;
  nde_str_addf(b, "  (void)v%d; /* the value of the expression grad differentiates */\n", k_ex);
  cone c = {malloc(((size_t)A->n_exprs + 1) * sizeof(int)), 0, calloc((size_t)A->n_exprs + 1, sizeof(bool))};
  int *adj = malloc(((size_t)A->n_exprs + 1) * sizeof(int));
  if (!c.order || !c.seen || !adj) {
    b->failed = 1;
    free(c.order), free(c.seen), free(adj);
    return -1;
  }
  cone_visit(g, &c, ex);
  nde_str_addf(b, "  /* grad: adjoints, last operation first */\n");
  for (int i = 0; i < c.n; i++) {
    adj[c.order[i]] = g->next++;
    nde_str_addf(b, "  double v%d[%d] = {0};\n  (void)v%d;\n", adj[c.order[i]], A->exprs[c.order[i]].size,
                 adj[c.order[i]]);
  }
  const int gu = g->next++;
  nde_str_addf(b, "  double v%d[%d] = {0};\n  v%d[0] = 1.0;\n", gu, A->n_state_total, adj[ex]);
  for (int i = c.n - 1; i >= 0 && !g->nested; i--) {
    const int k = c.order[i];
    const nde__expr *y = &A->exprs[k];
    const int n = y->size, a = adj[k], v = g->node_v[k];
    const int ca = y->a >= 0 ? adj[y->a] : -1, cb = y->b >= 0 ? adj[y->b] : -1;
    const int va = y->a >= 0 ? g->node_v[y->a] : -1, vb = y->b >= 0 ? g->node_v[y->b] : -1;
    const int sa = y->a >= 0 ? A->exprs[y->a].size : 0, sb = y->b >= 0 ? A->exprs[y->b].size : 0;
#define LOOP "  for (int i = 0; i < %d; i++) "
    switch (y->kind) {
      case NDE__E_NAME:
        if (y->sym < 0) break;
        if (A->syms[y->sym].kind == NDE__SYM_STATE)
          nde_str_addf(b, LOOP "v%d[%d + i] += v%d[i];\n", n, gu, A->states[A->syms[y->sym].index].offset, a);
        else if (A->syms[y->sym].kind == NDE__SYM_INTER)
          nde_str_addf(b, LOOP "v%d[i] += v%d[i];\n", n, adj[A->inters[A->syms[y->sym].index].expr], a);
        break;
      case NDE__E_NEG: nde_str_addf(b, LOOP "v%d[i] -= v%d[i];\n", n, ca, a); break;
      case NDE__E_ADD:
      case NDE__E_SUB:
        nde_str_addf(b, LOOP "v%d[%s] += v%d[i];\n", n, ca, EL(ca, sa), a);
        nde_str_addf(b, LOOP "v%d[%s] %s= v%d[i];\n", n, cb, EL(cb, sb), y->kind == NDE__E_ADD ? "+" : "-", a);
        break;
      case NDE__E_MUL:
        nde_str_addf(b, LOOP "{ v%d[%s] += v%d[i] * v%d[%s]; v%d[%s] += v%d[i] * v%d[%s]; }\n", n, ca,
                     EL(ca, sa), a, vb, EL(vb, sb), cb, EL(cb, sb), a, va, EL(va, sa));
        break;
      case NDE__E_DIV:
        nde_str_addf(b, LOOP "{ v%d[%s] += v%d[i] / v%d[%s]; v%d[%s] -= v%d[i] * v%d[i] / v%d[%s]; }\n", n,
                     ca, EL(ca, sa), a, vb, EL(vb, sb), cb, EL(cb, sb), a, v, vb, EL(vb, sb));
        break;
      case NDE__E_POW: {
        long p;
        if (int_exponent(A, y->b, &p)) {
          nde_str_addf(b, LOOP "v%d[%s] += v%d[i] * %ld.0 * %s_ipow(v%d[%s], %ld);\n", n, ca, EL(ca, sa), a,
                       p, P, va, EL(va, sa), p - 1);
        } else {
          nde_str_addf(b, LOOP "{ v%d[%s] += v%d[i] * v%d[%s] * exp((v%d[%s] - 1.0) * log(v%d[%s]));"
                       " v%d[%s] += v%d[i] * v%d[i] * log(v%d[%s]); }\n",
                       n, ca, EL(ca, sa), a, vb, EL(vb, sb), vb, EL(vb, sb), va, EL(va, sa), cb,
                       EL(cb, sb), a, v, va, EL(va, sa));
        }
        break;
      }
      case NDE__E_INDEX: nde_str_addf(b, "  v%d[%ld] += v%d[0];\n", ca, y->index - 1, a); break;
      case NDE__E_LIST: {
        int off = 0;
        for (int j = 0; j < y->n_args; j++) {
          const int ej = A->args[y->args + j], sj = A->exprs[ej].size;
          nde_str_addf(b, LOOP "v%d[i] += v%d[%d + i];\n", sj, adj[ej], a, off);
          off += sj;
        }
        break;
      }
      case NDE__E_MATMUL: {
        const nde__expr *ea = &A->exprs[y->a];
        const int r = ea->size / ea->mcols, cc = ea->mcols, kk = n / r;
        nde_str_addf(b,
                     "  for (int i = 0; i < %d; i++)\n    for (int j = 0; j < %d; j++)\n"
                     "      for (int l = 0; l < %d; l++) {\n"
                     "        v%d[i * %d + l] += v%d[i * %d + j] * v%d[l * %d + j];\n"
                     "        v%d[l * %d + j] += v%d[i * %d + l] * v%d[i * %d + j];\n      }\n",
                     r, kk, cc, ca, cc, a, kk, vb, kk, cb, kk, va, cc, a, kk);
        break;
      }
      case NDE__E_CALL: {
        const int a0 = y->n_args > 0 ? A->args[y->args] : -1;
        const int c0 = a0 >= 0 ? adj[a0] : -1, v0 = a0 >= 0 ? g->node_v[a0] : -1;
        const int s0 = a0 >= 0 ? A->exprs[a0].size : 0;
        if (y->func < 0) {
          const int net = A->syms[y->sym].index, gx = g->next++;
          nde_str_addf(b, "  double v%d[%d];\n  %s_net_%d_vjp(v%d, v%d, v%d);\n", gx,
                       A->nets[net].widths[0], P, net, g->node_in[k], a, gx);
          int off = 0;
          for (int j = 0; j < y->n_args; j++) {
            const int ej = A->args[y->args + j], sj = A->exprs[ej].size;
            nde_str_addf(b, LOOP "v%d[i] += v%d[%d + i];\n", sj, adj[ej], gx, off);
            off += sj;
          }
          break;
        }
        const int a1 = y->n_args > 1 ? A->args[y->args + 1] : -1, a2 = y->n_args > 2 ? A->args[y->args + 2] : -1;
        const int c1 = a1 >= 0 ? adj[a1] : -1, v1 = a1 >= 0 ? g->node_v[a1] : -1, s1 = a1 >= 0 ? A->exprs[a1].size : 0;
        const int c2 = a2 >= 0 ? adj[a2] : -1, v2 = a2 >= 0 ? g->node_v[a2] : -1, s2 = a2 >= 0 ? A->exprs[a2].size : 0;
        const char *d = NULL; /* the derivative of a one-argument function, of x = v0, y = the value */
        switch ((nde__func)y->func) {
          case NDE__F_EXP: d = "y"; break;
          case NDE__F_LOG: d = "1.0 / x"; break;
          case NDE__F_SQRT: d = "0.5 / y"; break;
          case NDE__F_SIN: d = "cos(x)"; break;
          case NDE__F_COS: d = "-sin(x)"; break;
          case NDE__F_TANH: d = "1.0 - y * y"; break;
          case NDE__F_ABS: d = "(x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0)"; break;
          case NDE__F_MIN:
          case NDE__F_MAX:
            nde_str_addf(b, LOOP "{ if (v%d[%s] %s v%d[%s]) v%d[%s] += v%d[i]; else v%d[%s] += v%d[i]; }\n", n, v0,
                         EL(v0, s0), y->func == NDE__F_MIN ? "<=" : ">=", v1, EL(v1, s1), c0, EL(c0, s0), a, c1,
                         EL(c1, s1), a);
            break;
          case NDE__F_CLAMP:
            nde_str_addf(b,
                         LOOP "{\n    const double x = v%d[%s], lo = v%d[%s], m = x >= lo ? x : lo;\n"
                         "    if (m <= v%d[%s]) { if (x >= lo) v%d[%s] += v%d[i]; else v%d[%s] += v%d[i]; }\n"
                         "    else v%d[%s] += v%d[i];\n  }\n",
                         n, v0, EL(v0, s0), v1, EL(v1, s1), v2, EL(v2, s2), c0, EL(c0, s0), a, c1, EL(c1, s1), a,
                         c2, EL(c2, s2), a);
            break;
          case NDE__F_IFELSE:
            nde_str_addf(b,
                         LOOP "{ const double c = v%d[%s]; if (c != 0 && c == c) v%d[%s] += v%d[i]; else if (c == 0) v%d[%s] += v%d[i]; }\n",
                         n, v0, EL(v0, s0), c1, EL(c1, s1), a, c2, EL(c2, s2), a);
            break;
          default: break;
        }
        if (d)
          nde_str_addf(b, LOOP "{ const double x = v%d[%s], y = v%d[i]; (void)x; (void)y; v%d[%s] += v%d[i] * (%s); }\n",
                       n, v0, EL(v0, s0), v, c0, EL(c0, s0), a, d);
        break;
      }
      default: break;
    }
#undef LOOP
  }
  /* The listed states, in order. */
  const int out = cg_temp(g, x->size);
  int off = 0;
  const int w = A->args[x->args + 1];
  const nde__expr *wx = &A->exprs[w];
  const int n_items = wx->kind == NDE__E_LIST ? wx->n_args : 1;
  for (int j = 0; j < n_items; j++) {
    const nde__expr *it = wx->kind == NDE__E_LIST ? &A->exprs[A->args[wx->args + j]] : wx;
    const nde__expr *nm = it->kind == NDE__E_INDEX ? &A->exprs[it->a] : it;
    const nde__state_decl *sd = &A->states[A->syms[nm->sym].index];
    const int col = it->kind == NDE__E_INDEX ? sd->offset + (int)it->index - 1 : sd->offset;
    nde_str_addf(b, "  for (int i = 0; i < %d; i++) v%d[%d + i] = v%d[%d + i];\n", it->size, out, off, gu, col);
    off += it->size;
  }
  free(c.order), free(c.seen), free(adj);
  return g->nested ? -1 : out;
}

static const char *const c_support =
    "static inline double %s_ipow(double x, long n) {\n"
    "  unsigned long k = (unsigned long)(n < 0 ? -n : n);\n"
    "  double r = 1.0, b = x;\n"
    "  while (k) {\n"
    "    if (k & 1ul) r *= b;\n"
    "    b *= b;\n"
    "    k >>= 1;\n"
    "  }\n"
    "  return n < 0 ? 1.0 / r : r;\n"
    "}\n\n"
    "/* step, min, max, clamp, ifelse and comparisons as nde computes them (NaN stays NaN). */\n"
    "static inline double %s_step(double x) { return x >= 0 ? 1.0 : x < 0 ? 0.0 : x; }\n"
    "static inline double %s_min(double x, double y) { return x <= y ? x : y < x ? y : x + y; }\n"
    "static inline double %s_max(double x, double y) { return x >= y ? x : y > x ? y : x + y; }\n"
    "static inline double %s_clamp(double x, double lo, double hi) {\n"
    "  double m = x >= lo ? x : lo > x ? lo : x + lo;\n"
    "  return m <= hi ? m : hi < m ? hi : m + hi;\n"
    "}\n"
    "static inline double %s_ifelse(double c, double a, double b) { return c == 0 ? b : c == c ? a : c; }\n"
    "static inline double %s_lt(double x, double y) { return x < y ? 1.0 : x >= y ? 0.0 : x + y; }\n"
    "static inline double %s_le(double x, double y) { return x <= y ? 1.0 : x > y ? 0.0 : x + y; }\n"
    "static inline double %s_gt(double x, double y) { return y < x ? 1.0 : y >= x ? 0.0 : x + y; }\n"
    "static inline double %s_ge(double x, double y) { return y <= x ? 1.0 : y > x ? 0.0 : x + y; }\n\n"
    "/* Activations as nde computes them (src/nn/act.c). */\n"
    "static inline double %s_act(int a, double z) {\n"
    "  double f;\n"
    "  switch (a) {\n"
    "    case 1: f = expm1(-2.0 * fabs(z)); return copysign(-f / (2.0 + f), z); /* tanh */\n"
    "    case 2: return z < 0.0 ? 0.0 : z;                                      /* relu */\n"
    "    case 3: return 0.5 * z + 0.5 * fabs(z) + log1p(exp(-fabs(z)));         /* softplus */\n"
    "    case 4: return 1.0 / (1.0 + exp(-z));                                  /* sigmoid */\n"
    "    case 5: /* gelu, tanh form */\n"
    "      f = expm1(-2.0 * fabs(0.7978845608028654 * (z + 0.044715 * z * z * z)));\n"
    "      return 0.5 * z * (1.0 + copysign(-f / (2.0 + f), z));\n"
    "    case 6: return exp(-z * z);                                            /* rbf */\n"
    "    default: return z;                                                     /* identity */\n"
    "  }\n"
    "}\n\n"
    "/* A dense network: per layer y = act(W x + b), W out x in row-major, then b. */\n"
    "static inline void %s_dense(int n_layers, const int *widths, const int *acts, const double *p,\n"
    "                     const double *x, double *y, double *s0, double *s1) {\n"
    "  const double *in = x;\n"
    "  for (int l = 0; l < n_layers; l++) {\n"
    "    const int ni = widths[l], no = widths[l + 1];\n"
    "    const double *W = p, *bias = p + (long)no * ni;\n"
    "    double *o = l == n_layers - 1 ? y : (l %% 2 ? s1 : s0);\n"
    "    for (int r = 0; r < no; r++) {\n"
    "      double s = 0.0;\n"
    "      for (int c = 0; c < ni; c++) s += W[(long)r * ni + c] * in[c];\n"
    "      o[r] = %s_act(acts[l], s + bias[r]);\n"
    "    }\n"
    "    p = bias + no;\n"
    "    in = o;\n"
    "  }\n"
    "}\n\n";

/* The networks' reverse passes, for grad. */
static const char *const c_support_vjp =
    "/* Derivatives of the activations at z (y = act(z)), as nde computes them. */\n"
    "static inline double %s_dact(int a, double z, double y) {\n"
    "  double e, t;\n"
    "  switch (a) {\n"
    "    case 1: return (1.0 - y) * (1.0 + y);                                     /* tanh */\n"
    "    case 2: return y > 0.0 ? 1.0 : 0.0;                                       /* relu */\n"
    "    case 3: return 1.0 / (1.0 + exp(-z));                                     /* softplus */\n"
    "    case 4: e = exp(-fabs(z)); return e / ((1.0 + e) * (1.0 + e));            /* sigmoid */\n"
    "    case 5: /* gelu */\n"
    "      e = expm1(-2.0 * fabs(0.7978845608028654 * (z + 0.044715 * z * z * z)));\n"
    "      t = copysign(-e / (2.0 + e), z);\n"
    "      return 0.5 * (1.0 + t) + 0.5 * z * ((1.0 - t) * (1.0 + t)) * 0.7978845608028654 *\n"
    "             (1.0 + 3.0 * 0.044715 * z * z);\n"
    "    case 6: return -2.0 * z * y;                                              /* rbf */\n"
    "    default: return 1.0;                                                      /* identity */\n"
    "  }\n"
    "}\n\n"
    "/* gx = J^T gy of the dense network at x: the forward pass kept (zs, ys: the sum of the\n"
    " * widths), then the reverse pass (g0, g1: the widest layer). */\n"
    "static inline void %s_dense_vjp(int n_layers, const int *widths, const int *acts,\n"
    "                                const double *p, const double *x, const double *gy, double *gx,\n"
    "                                double *zs, double *ys, double *g0, double *g1) {\n"
    "  const double *in = x, *ps[64];\n"
    "  int off[65];\n"
    "  off[0] = 0;\n"
    "  for (int l = 0; l < n_layers; l++) {\n"
    "    const int ni = widths[l], no = widths[l + 1];\n"
    "    const double *W = p, *bias = p + (long)no * ni;\n"
    "    ps[l] = p;\n"
    "    off[l + 1] = off[l] + no;\n"
    "    for (int r = 0; r < no; r++) {\n"
    "      double s = 0.0;\n"
    "      for (int c = 0; c < ni; c++) s += W[(long)r * ni + c] * in[c];\n"
    "      zs[off[l] + r] = s + bias[r];\n"
    "      ys[off[l] + r] = %s_act(acts[l], zs[off[l] + r]);\n"
    "    }\n"
    "    p = bias + no;\n"
    "    in = ys + off[l];\n"
    "  }\n"
    "  const double *g = gy;\n"
    "  for (int l = n_layers - 1; l >= 0; l--) {\n"
    "    const int ni = widths[l], no = widths[l + 1];\n"
    "    double *gz = l %% 2 ? g1 : g0, *ga = l == 0 ? gx : (l %% 2 ? g0 : g1);\n"
    "    for (int r = 0; r < no; r++) gz[r] = g[r] * %s_dact(acts[l], zs[off[l] + r], ys[off[l] + r]);\n"
    "    for (int c = 0; c < ni; c++) {\n"
    "      double s = 0.0;\n"
    "      for (int r = 0; r < no; r++) s += ps[l][(long)r * ni + c] * gz[r];\n"
    "      ga[c] = s;\n"
    "    }\n"
    "    g = ga;\n"
    "  }\n"
    "}\n\n";


nde_status nde_model_export_c(const nde_model *model, const double *theta, const char *prefix,
                              char **text) {
  if (!model || !text || !prefix || model->status != NDE_OK || (!theta && model->n_theta))
    return NDE_ERR_ARG;
  *text = NULL;
  if (!prefix[0] || !(prefix[0] == '_' || (prefix[0] >= 'a' && prefix[0] <= 'z') ||
                      (prefix[0] >= 'A' && prefix[0] <= 'Z')))
    return NDE_ERR_ARG;
  for (const char *c = prefix; *c; c++)
    if (!(*c == '_' || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
      return NDE_ERR_ARG;
  /* The exported function has no series, inputs or data to read. */
  if (model->n_sp > 0 || model->n_inputs > 0 || model->n_data_consts > 0) return NDE_ERR_UNSUPPORTED;
  parsed ps;
  nde_status st = parse_source(model->src, model->src_len, &ps);
  if (st != NDE_OK) {
    parsed_free(&ps);
    return st == NDE_ERR_NOMEM ? st : NDE_ERR_INTERNAL;
  }
  const nde__ast *A = &ps.ast;
  nde_str b = NDE_STR_INIT;
  const char *P = prefix;
  const int n = model->n_state_total;
  nde_str_addf(&b,
            "/* The right-hand side du/dt = f(t, u) of the model %s, with its trained parameters,\n"
            " * exported by nde %s (nde export --c).  Standalone C11: needs only <math.h> (link -lm).\n"
            " *\n"
            " *   int %s_rhs(double t, const double *u, double *du);\n"
            " *     u   the state, %s_N_STATE values in the order of %s_state_names (read only)\n"
            " *     du  receives f(t, u), %s_N_STATE values (must not overlap u)\n"
            " *     returns 0, or 1 when a value is not finite (e.g. log of a negative number)\n"
            " *\n"
            " * The model's source:\n",
            model->file, nde_version(), P, P, P, P);
  for (size_t i = 0; i < model->src_len;) {
    size_t e = i;
    while (e < model->src_len && model->src[e] != '\n') e++;
    nde_str_addf(&b, " *   ");
    for (size_t j = i; j < e; j++) {
      /* Keep the comment closed whatever the source holds. */
      if (model->src[j] == '/' && j > i && model->src[j - 1] == '*') nde_str_addf(&b, " ");
      nde_str_add(&b, model->src + j, 1);
    }
    nde_str_addf(&b, "\n");
    i = e + 1;
  }
  nde_str_addf(&b, " */\n#include <math.h>\n\n#define %s_N_STATE %d\n\n", P, n);
  nde_str_addf(&b, "const char *const %s_state_names[%d] = {", P, n);
  for (int j = 0; j < n; j++) nde_str_addf(&b, "%s\"%s\"", j ? ", " : "", model->comp_names[j]);
  nde_str_addf(&b, "};\n\nint %s_rhs(double t, const double *u, double *du);\n\n", P);
  /* Parameters in natural units (fixed ones as written). */
  if (model->n_params) {
    nde_str_addf(&b, "static const double %s_params[%d] = {\n", P, model->n_params);
    for (int i = 0; i < model->n_params; i++) {
      nde_str_addf(&b, "  ");
      add_num(&b, nde_model_param_value(model, i, theta));
      nde_str_addf(&b, ", /* %s */\n", model->params[i].name);
    }
    nde_str_addf(&b, "};\n\n");
  }
  nde_str_addf(&b, c_support, P, P, P, P, P, P, P, P, P, P, P, P, P);
  nde_str_addf(&b, c_support_vjp, P, P, P, P);
  for (int k = 0; k < model->n_nets; k++) {
    const nde__netm *nm = &model->nets[k];
    const int L = nde_net_n_layers(nm->net);
    int maxw = 1;
    nde_str_addf(&b, "/* net %s */\nstatic const int %s_net_%d_widths[%d] = {", nm->name, P, k, L + 1);
    for (int l = 0; l <= L; l++) {
      int w = nde_net_width(nm->net, l);
      if (w > maxw) maxw = w;
      nde_str_addf(&b, "%s%d", l ? ", " : "", w);
    }
    nde_str_addf(&b, "};\nstatic const int %s_net_%d_acts[%d] = {", P, k, L);
    for (int l = 0; l < L; l++) nde_str_addf(&b, "%s%d", l ? ", " : "", (int)nde_net_act(nm->net, l));
    size_t np = nde_net_n_params(nm->net);
    nde_str_addf(&b, "};\nstatic const double %s_net_%d_theta[%zu] = {", P, k, np);
    for (size_t i = 0; i < np; i++) {
      nde_str_addf(&b, "%s", i % 4 ? " " : "\n  ");
      add_num(&b, theta[nm->offset + i]);
      nde_str_addf(&b, ",");
    }
    nde_str_addf(&b,
              "\n};\nstatic void %s_net_%d(const double *x, double *y) {\n"
              "  double s0[%d], s1[%d];\n"
              "  %s_dense(%d, %s_net_%d_widths, %s_net_%d_acts, %s_net_%d_theta, x, y, s0, s1);\n"
              "}\n\n",
              P, k, maxw, maxw, P, L, P, k, P, k, P, k);
    int sumw = 0;
    for (int l = 1; l <= L; l++) sumw += nde_net_width(nm->net, l);
    nde_str_addf(&b,
                 "/* gx = J^T gy of net %s (for grad) */\n"
                 "static inline void %s_net_%d_vjp(const double *x, const double *gy, double *gx) {\n"
                 "  double zs[%d], ys[%d], g0[%d], g1[%d];\n"
                 "  %s_dense_vjp(%d, %s_net_%d_widths, %s_net_%d_acts, %s_net_%d_theta, x, gy, gx, zs, ys, g0, g1);\n"
                 "}\n\n",
                 nm->name, P, k, sumw, sumw, maxw, maxw, P, L, P, k, P, k, P, k);
  }
  nde_str_addf(&b, "int %s_rhs(double t, const double *u, double *du) {\n  (void)t;\n", P);
  cgen g = {model, A, theta, P, &b, 0, NULL, NULL, NULL, false};
  g.inter_v = calloc((size_t)A->n_inters + 1, sizeof *g.inter_v);
  g.node_v = malloc(((size_t)A->n_exprs + 1) * sizeof *g.node_v);
  g.node_in = malloc(((size_t)A->n_exprs + 1) * sizeof *g.node_in);
  if (!g.node_v || !g.node_in) b.failed = 1;
  for (int e = 0; e < A->n_exprs && g.node_v && g.node_in; e++) g.node_v[e] = g.node_in[e] = -1;
  /* Only the intermediates the equations need (observables alone would be unused code). */
  bool *need = calloc((size_t)A->n_inters + 1, sizeof *need);
  if (!g.inter_v || !need) b.failed = 1;
  for (int e = 0; e < A->n_eqs && need; e++) nde__mark_needed(A, A->eqs[e].expr, need);
  if (need) nde__close_needed(A, need);
  for (int k = 0; k < A->n_inter_order && !b.failed; k++) {
    int i = A->inter_order[k];
    if (!need[i]) continue;
    nde_str_addf(&b, "  /* %.*s */\n", A->inters[i].name_len, A->inters[i].name);
    g.inter_v[i] = cg_expr(&g, A->inters[i].expr);
  }
  for (int e = 0; e < A->n_eqs && !b.failed; e++) {
    const nde__assign *q = &A->eqs[e];
    const int sv = A->exprs[q->expr].size;
    if (q->lhs_n == 0) {
      const nde__state_decl *sd = &A->states[q->state];
      nde_str_addf(&b, "  /* d%.*s/dt */\n", sd->name_len, sd->name);
      int v = cg_expr(&g, q->expr);
      nde_str_addf(&b, "  for (int i = 0; i < %d; i++) du[%d + i] = v%d[%s];\n", sd->size,
                   sd->offset, v, EL(v, sv));
      continue;
    }
    nde_str_addf(&b, "  /* d[");
    for (int k = 0; k < q->lhs_n; k++) {
      const nde__expr *nx = &A->exprs[A->args[q->lhs_first + k]];
      nde_str_addf(&b, "%s%.*s", k ? ", " : "", nx->name_len, nx->name);
    }
    nde_str_addf(&b, "]/dt */\n");
    int v = cg_expr(&g, q->expr), src = 0;
    for (int k = 0; k < q->lhs_n; k++) {
      const nde__state_decl *sd = &A->states[A->syms[A->exprs[A->args[q->lhs_first + k]].sym].index];
      nde_str_addf(&b, "  for (int i = 0; i < %d; i++) du[%d + i] = v%d[%d + i];\n", sd->size,
                   sd->offset, v, src);
      src += sd->size;
    }
  }
  nde_str_addf(&b,
            "  for (int i = 0; i < %d; i++)\n    if (!isfinite(du[i])) return 1;\n  return 0;\n}\n",
            n);
  free(g.inter_v);
  free(g.node_v);
  free(g.node_in);
  free(need);
  parsed_free(&ps);
  if (g.nested) {
    free(nde_str_take(&b));
    return NDE_ERR_UNSUPPORTED;
  }
  *text = nde_str_take(&b);
  return *text ? NDE_OK : NDE_ERR_NOMEM;
}

/* ---- equations as text or LaTeX ---- */

typedef struct fmt {
  const nde_model *m;
  const nde__ast *A;
  const double *theta;
  nde_format f;
  int substitute;
  nde_str *b;
} fmt;

enum { PREC_CMP = 1, PREC_ADD, PREC_MUL, PREC_NEG, PREC_POW, PREC_ATOM };

static int prec_of(const nde__expr *x) {
  switch (x->kind) {
    case NDE__E_ADD:
    case NDE__E_SUB: return PREC_ADD;
    case NDE__E_MUL:
    case NDE__E_DIV:
    case NDE__E_MATMUL: return PREC_MUL;
    case NDE__E_NEG: return PREC_NEG;
    case NDE__E_POW: return PREC_POW;
    case NDE__E_NUM: return x->num < 0 ? PREC_NEG : PREC_ATOM;
    case NDE__E_LT:
    case NDE__E_LE:
    case NDE__E_GT:
    case NDE__E_GE: return PREC_CMP;
    default: return PREC_ATOM;
  }
}

static const char *const greek[] = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
    "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Phi", "Psi", "Omega"};

static void fmt_name(fmt *F, const char *s, int len) {
  if (F->f == NDE_FORMAT_TEXT) {
    nde_str_add(F->b, s, (size_t)len);
    return;
  }
  for (size_t g = 0; g < sizeof greek / sizeof *greek; g++)
    if ((int)strlen(greek[g]) == len && memcmp(greek[g], s, (size_t)len) == 0) {
      nde_str_addf(F->b, "\\%s", greek[g]);
      return;
    }
  if (len == 1) {
    nde_str_add(F->b, s, 1);
    return;
  }
  nde_str_addf(F->b, "\\mathrm{");
  for (int i = 0; i < len; i++) {
    if (s[i] == '_') nde_str_addf(F->b, "\\_");
    else nde_str_add(F->b, s + i, 1);
  }
  nde_str_addf(F->b, "}");
}

static void fmt_expr(fmt *F, int e, int parent);

static void fmt_args(fmt *F, const nde__expr *x) {
  for (int a = 0; a < x->n_args; a++) {
    if (a) nde_str_addf(F->b, ", ");
    fmt_expr(F, F->A->args[x->args + a], 0);
  }
}

static void fmt_expr(fmt *F, int e, int parent) {
  const nde__ast *A = F->A;
  const nde__expr *x = &A->exprs[e];
  nde_str *b = F->b;
  const bool tex = F->f == NDE_FORMAT_LATEX;
  const int p = prec_of(x);
  const bool paren = p < parent;
  if (paren) nde_str_addf(b, tex ? "\\left(" : "(");
  switch (x->kind) {
    case NDE__E_NUM: add_num(b, x->num); break;
    case NDE__E_NAME:
      if (x->sym >= 0 && A->syms[x->sym].kind == NDE__SYM_CONST && F->substitute &&
          !F->m->consts[A->syms[x->sym].index].info.from_data) {
        const double v = F->m->consts[A->syms[x->sym].index].info.value;
        if (v < 0 && !paren && parent > PREC_ADD) nde_str_addf(b, tex ? "\\left(" : "(");
        add_num(b, v);
        if (v < 0 && !paren && parent > PREC_ADD) nde_str_addf(b, tex ? "\\right)" : ")");
      } else if (x->sym >= 0 && A->syms[x->sym].kind == NDE__SYM_PARAM && F->substitute &&
                 !F->m->params[A->syms[x->sym].index].info.per_series) {
        double v = nde_model_param_value(F->m, A->syms[x->sym].index, F->theta);
        if (v < 0 && !paren && parent > PREC_ADD) nde_str_addf(b, tex ? "\\left(" : "(");
        add_num(b, v);
        if (v < 0 && !paren && parent > PREC_ADD) nde_str_addf(b, tex ? "\\right)" : ")");
      } else {
        fmt_name(F, x->name, x->name_len);
      }
      break;
    case NDE__E_CALL:
      if (x->func < 0) {
        fmt_name(F, x->name, x->name_len);
        nde_str_addf(b, tex ? "\\left(" : "(");
        fmt_args(F, x);
        nde_str_addf(b, tex ? "\\right)" : ")");
      } else if (x->func == NDE__F_GRAD && tex) {
        /* \nabla_{x} E, the expression in parentheses unless it is a name or a call */
        const nde__expr *ex = &A->exprs[A->args[x->args]];
        nde_str_addf(b, "\\nabla_{");
        fmt_expr(F, A->args[x->args + 1], 0);
        nde_str_addf(b, "} ");
        fmt_expr(F, A->args[x->args], ex->kind == NDE__E_NAME || ex->kind == NDE__E_CALL ? 0 : PREC_ATOM);
      } else if (tex && x->func == NDE__F_SQRT) {
        nde_str_addf(b, "\\sqrt{");
        fmt_args(F, x);
        nde_str_addf(b, "}");
      } else if (tex && x->func == NDE__F_ABS) {
        nde_str_addf(b, "\\left|");
        fmt_args(F, x);
        nde_str_addf(b, "\\right|");
      } else if (tex && (x->func == NDE__F_STEP || x->func == NDE__F_CLAMP || x->func == NDE__F_IFELSE)) {
        nde_str_addf(b, "\\operatorname{%s}\\left(", nde__func_names[x->func]);
        fmt_args(F, x);
        nde_str_addf(b, "\\right)");
      } else {
        nde_str_addf(b, "%s%s%s", tex ? "\\" : "", nde__func_names[x->func], tex ? "\\left(" : "(");
        fmt_args(F, x);
        nde_str_addf(b, tex ? "\\right)" : ")");
      }
      break;
    case NDE__E_INDEX:
      fmt_expr(F, x->a, PREC_ATOM);
      nde_str_addf(b, tex ? "_{%ld}" : "[%ld]", x->index);
      break;
    case NDE__E_LIST:
      if (tex && x->mcols > 0) {
        /* a matrix: its rows in a pmatrix */
        nde_str_addf(b, "\\begin{pmatrix} ");
        for (int r = 0; r < x->n_args; r++) {
          const nde__expr *row = &A->exprs[A->args[x->args + r]];
          for (int c = 0; c < row->n_args; c++) {
            if (c) nde_str_addf(b, " & ");
            fmt_expr(F, A->args[row->args + c], 0);
          }
          nde_str_addf(b, r + 1 < x->n_args ? " \\\\ " : " ");
        }
        nde_str_addf(b, "\\end{pmatrix}");
        break;
      }
      nde_str_addf(b, tex ? "\\left[" : "[");
      fmt_args(F, x);
      nde_str_addf(b, tex ? "\\right]" : "]");
      break;
    case NDE__E_NEG:
      nde_str_addf(b, "-");
      fmt_expr(F, x->a, PREC_NEG);
      break;
    case NDE__E_POW:
      fmt_expr(F, x->a, PREC_ATOM);
      if (tex) {
        nde_str_addf(b, "^{");
        fmt_expr(F, x->b, 0);
        nde_str_addf(b, "}");
      } else {
        nde_str_addf(b, "^");
        fmt_expr(F, x->b, PREC_NEG);
      }
      break;
    case NDE__E_LT:
    case NDE__E_LE:
    case NDE__E_GT:
    case NDE__E_GE: {
      static const char *const text_op[4] = {" < ", " <= ", " > ", " >= "};
      static const char *const tex_op[4] = {" < ", " \\le ", " > ", " \\ge "};
      const int k = x->kind - NDE__E_LT;
      fmt_expr(F, x->a, p + 1);
      nde_str_addf(b, "%s", tex ? tex_op[k] : text_op[k]);
      fmt_expr(F, x->b, p + 1);
      break;
    }
    case NDE__E_MATMUL:
      /* Side by side; a product or quotient on the right is parenthesised (M (a*v)). */
      fmt_expr(F, x->a, p);
      nde_str_addf(b, tex ? " \\, " : " ");
      fmt_expr(F, x->b, p + 1);
      break;
    case NDE__E_DIV:
      if (tex) {
        nde_str_addf(b, "\\frac{");
        fmt_expr(F, x->a, 0);
        nde_str_addf(b, "}{");
        fmt_expr(F, x->b, 0);
        nde_str_addf(b, "}");
        break;
      }
      /* fall through */
    case NDE__E_ADD:
    case NDE__E_SUB:
    case NDE__E_MUL: {
      fmt_expr(F, x->a, p);
      const char *op = x->kind == NDE__E_ADD ? " + " : x->kind == NDE__E_SUB ? " - "
                       : x->kind == NDE__E_DIV ? "/" : tex ? " \\, " : "*";
      nde_str_addf(b, "%s", op);
      /* The right operand of - and / binds tighter: a - (b + c), a/(b*c). */
      fmt_expr(F, x->b, x->kind == NDE__E_SUB || x->kind == NDE__E_DIV ? p + 1 : p);
      break;
    }
  }
  if (paren) nde_str_addf(b, tex ? "\\right)" : ")");
}

nde_status nde_model_format_equations(const nde_model *model, const double *theta,
                                      nde_format format, int substitute, char **text) {
  if (!model || !text || model->status != NDE_OK || (!theta && model->n_theta) ||
      (format != NDE_FORMAT_TEXT && format != NDE_FORMAT_LATEX))
    return NDE_ERR_ARG;
  *text = NULL;
  parsed ps;
  nde_status st = parse_source(model->src, model->src_len, &ps);
  if (st != NDE_OK) {
    parsed_free(&ps);
    return st == NDE_ERR_NOMEM ? st : NDE_ERR_INTERNAL;
  }
  const nde__ast *A = &ps.ast;
  nde_str b = NDE_STR_INIT;
  fmt F = {model, A, theta, format, substitute, &b};
  const bool tex = format == NDE_FORMAT_LATEX;
  if (tex) nde_str_addf(&b, "\\begin{aligned}\n");
  for (int k = 0; k < A->n_inter_order; k++) {
    const nde__assign *q = &A->inters[A->inter_order[k]];
    nde_str_addf(&b, "%s", tex ? "  " : q->observed ? "observe " : "");
    fmt_name(&F, q->name, q->name_len);
    nde_str_addf(&b, tex ? " &= " : " = ");
    fmt_expr(&F, q->expr, 0);
    nde_str_addf(&b, tex ? " \\\\\n" : "\n");
  }
  for (int e = 0; e < A->n_eqs; e++) {
    const nde__assign *q = &A->eqs[e];
    const nde__state_decl *sd = &A->states[q->state];
    if (q->lhs_n > 0) {
      nde_str_addf(&b, tex ? "  \\frac{d}{dt} \\left[" : "d[");
      for (int k = 0; k < q->lhs_n; k++) {
        const nde__expr *nx = &A->exprs[A->args[q->lhs_first + k]];
        if (k) nde_str_addf(&b, ", ");
        fmt_name(&F, nx->name, nx->name_len);
      }
      nde_str_addf(&b, tex ? "\\right] &= " : "]/dt = ");
    } else if (tex) {
      nde_str_addf(&b, "  \\frac{d");
      fmt_name(&F, sd->name, sd->name_len);
      nde_str_addf(&b, "}{dt} &= ");
    } else {
      nde_str_addf(&b, "d%.*s/dt = ", sd->name_len, sd->name);
    }
    fmt_expr(&F, q->expr, 0);
    nde_str_addf(&b, tex && e + 1 < A->n_eqs ? " \\\\\n" : "\n");
  }
  if (tex) nde_str_addf(&b, "\\end{aligned}\n");
  if (!substitute && model->n_params) {
    nde_str_addf(&b, tex ? "%% where " : "where ");
    for (int i = 0; i < model->n_params; i++) {
      nde_str_addf(&b, "%s%s = ", i ? ", " : "", model->params[i].name);
      if (model->params[i].info.per_series) nde_str_addf(&b, "(per series)");
      else add_num(&b, nde_model_param_value(model, i, theta));
    }
    nde_str_addf(&b, "\n");
  } else if (substitute && model->n_sp > 0) {
    /* Per-series parameters stay names: say what they are. */
    nde_str_addf(&b, tex ? "%% where " : "where ");
    for (int i = 0, k = 0; i < model->n_params; i++)
      if (model->params[i].info.per_series)
        nde_str_addf(&b, "%s%s", k++ ? ", " : "", model->params[i].name);
    nde_str_addf(&b, " %s per series\n", model->n_sp > 1 ? "are" : "is");
  }
  parsed_free(&ps);
  *text = nde_str_take(&b);
  return *text ? NDE_OK : NDE_ERR_NOMEM;
}
