/* Checker of the .nde language: the symbol table (duplicates reported at both places), names
 * (unknown ones with the closest known name as a hint), one equation per state (d[q, p]/dt
 * lists several), cycles among intermediates, and the size of every expression (elementwise
 * with scalar broadcasting, net inputs and outputs, 1-based indices, the arity of built-in
 * functions, scalar observables, the shapes of matrices and their products, grad of a scalar
 * with respect to states). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

const char *const nde__func_names[NDE__F_COUNT] = {
#define NDE__FUNC_NAME(id, name, arity) name,
    NDE__FUNC_LIST(NDE__FUNC_NAME)
#undef NDE__FUNC_NAME
};
const int nde__func_arity[NDE__F_COUNT] = {
#define NDE__FUNC_ARITY(id, name, arity) arity,
    NDE__FUNC_LIST(NDE__FUNC_ARITY)
#undef NDE__FUNC_ARITY
};

static const char *const reserved[] = {"state", "param", "net", "input", "const", "observe", "t"};

typedef struct checker {
  nde__ast *A;
  nde__diags *d;
  bool nomem;
  int *inter_size;  /* size of each intermediate, 0 unknown */
  int *inter_mcols; /* columns of each intermediate that is a matrix, else 0 */
  bool *inter_bad;
} checker;

/* ---- symbol table ---- */

static uint32_t hash(const char *s, int n) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static bool same(const char *a, int na, const char *b, int nb) {
  return na == nb && memcmp(a, b, (size_t)na) == 0;
}

int nde__sym_find(const nde__ast *A, const char *name, int len) {
  if (!A->hash_cap) return -1;
  uint32_t m = (uint32_t)A->hash_cap - 1;
  for (uint32_t h = hash(name, len) & m;; h = (h + 1) & m) {
    int s = A->sym_hash[h];
    if (s < 0) return -1;
    if (same(A->syms[s].name, A->syms[s].name_len, name, len)) return s;
  }
}

static int builtin_func(const char *name, int len) {
  for (int f = 0; f < NDE__F_COUNT; f++)
    if (same(name, len, nde__func_names[f], (int)strlen(nde__func_names[f]))) return f;
  return -1;
}

static bool is_reserved(const char *name, int len) {
  for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
    if (same(name, len, reserved[i], (int)strlen(reserved[i]))) return true;
  return builtin_func(name, len) >= 0;
}

static const char *kind_word(nde__symkind k) {
  switch (k) {
    case NDE__SYM_STATE: return "a state";
    case NDE__SYM_PARAM: return "a parameter";
    case NDE__SYM_NET: return "a net";
    case NDE__SYM_INTER: return "an intermediate";
    case NDE__SYM_INPUT: return "an input";
    case NDE__SYM_CONST: return "a constant";
  }
  return "a name";
}

/* Characters (not bytes) of a UTF-8 name. */
static int n_chars(const char *s, int n) {
  int k = 0;
  for (int i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
  return k;
}

/* Optimal string alignment distance (edits and adjacent transpositions), capped at 3. */
static int distance(const char *a, int na, const char *b, int nb) {
  if (na > 64 || nb > 64 || abs(na - nb) > 2) return 3;
  int d[65][65];
  for (int i = 0; i <= na; i++) d[i][0] = i;
  for (int j = 0; j <= nb; j++) d[0][j] = j;
  for (int i = 1; i <= na; i++)
    for (int j = 1; j <= nb; j++) {
      int c = a[i - 1] != b[j - 1];
      int v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (d[i - 1][j - 1] + c < v) v = d[i - 1][j - 1] + c;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[na][nb];
}

/* The closest known name of the wanted kind (values or callables), or NULL. */
static const char *closest(const checker *C, const char *name, int len, bool callable, int *out_len) {
  int best = len <= 3 ? 2 : 3; /* accept distance 1 for short names, 2 otherwise */
  const char *hit = NULL;
  int hit_len = 0;
  for (int s = 0; s < C->A->n_syms && s < 100000; s++) {
    const nde__sym *y = &C->A->syms[s];
    if (callable != (y->kind == NDE__SYM_NET)) continue;
    int dd = distance(name, len, y->name, y->name_len);
    if (dd < best && dd < n_chars(name, len)) {
      best = dd;
      hit = y->name;
      hit_len = y->name_len;
    }
  }
  if (callable) {
    for (int f = 0; f < NDE__F_COUNT; f++) {
      int fl = (int)strlen(nde__func_names[f]);
      int dd = distance(name, len, nde__func_names[f], fl);
      if (dd < best && dd < n_chars(name, len)) {
        best = dd;
        hit = nde__func_names[f];
        hit_len = fl;
      }
    }
  } else if (len <= 2 && distance(name, len, "t", 1) < best && len > 1) {
    hit = "t";
    hit_len = 1;
  }
  *out_len = hit_len;
  return hit;
}

static bool add_sym(checker *C, nde__symkind kind, int index, const char *name, int len, nde__pos pos) {
  nde__ast *A = C->A;
  if (is_reserved(name, len)) {
    nde__diag_error(C->d, NDE_ERR_MODEL, pos, "'%.*s' is a reserved name (%s)", len, name,
                    builtin_func(name, len) >= 0 ? "a built-in function" : len == 1 ? "the time" : "a keyword");
    return false;
  }
  int prev = nde__sym_find(A, name, len);
  if (prev >= 0) {
    const nde__sym *p = &A->syms[prev];
    nde__diag_error(C->d, NDE_ERR_MODEL, pos, "'%.*s' is already declared (as %s)", len, name,
                    kind_word(p->kind));
    nde__diag_note(C->d, p->pos, "'%.*s' was first declared here", len, name);
    return false;
  }
  A->syms[A->n_syms] = (nde__sym){kind, index, name, len, pos};
  uint32_t m = (uint32_t)A->hash_cap - 1;
  uint32_t h = hash(name, len) & m;
  while (A->sym_hash[h] >= 0) h = (h + 1) & m;
  A->sym_hash[h] = A->n_syms++;
  return true;
}

typedef struct decl_ref {
  int offset;
  nde__symkind kind;
  int index;
} decl_ref;

static int by_offset(const void *a, const void *b) {
  const decl_ref *x = a, *y = b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

static bool build_symbols(checker *C) {
  nde__ast *A = C->A;
  size_t n = (size_t)A->n_states + A->n_params + A->n_nets + A->n_inters + A->n_inputs + A->n_consts;
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  A->syms = malloc((n ? n : 1) * sizeof *A->syms);
  A->sym_hash = malloc(cap * sizeof *A->sym_hash);
  decl_ref *refs = malloc((n ? n : 1) * sizeof *refs);
  if (!A->syms || !A->sym_hash || !refs) {
    free(refs);
    C->nomem = true;
    return false;
  }
  A->hash_cap = (int)cap;
  for (size_t i = 0; i < cap; i++) A->sym_hash[i] = -1;
  size_t k = 0;
  for (int i = 0; i < A->n_states; i++) refs[k++] = (decl_ref){A->states[i].pos.offset, NDE__SYM_STATE, i};
  for (int i = 0; i < A->n_params; i++) refs[k++] = (decl_ref){A->params[i].pos.offset, NDE__SYM_PARAM, i};
  for (int i = 0; i < A->n_nets; i++) refs[k++] = (decl_ref){A->nets[i].pos.offset, NDE__SYM_NET, i};
  for (int i = 0; i < A->n_inters; i++) refs[k++] = (decl_ref){A->inters[i].pos.offset, NDE__SYM_INTER, i};
  for (int i = 0; i < A->n_inputs; i++) refs[k++] = (decl_ref){A->inputs[i].pos.offset, NDE__SYM_INPUT, i};
  for (int i = 0; i < A->n_consts; i++) refs[k++] = (decl_ref){A->consts[i].pos.offset, NDE__SYM_CONST, i};
  qsort(refs, n, sizeof *refs, by_offset);
  for (size_t i = 0; i < n; i++) {
    const char *name = NULL;
    int len = 0;
    nde__pos pos = {0, 0, 0};
    switch (refs[i].kind) {
      case NDE__SYM_STATE: name = A->states[refs[i].index].name; len = A->states[refs[i].index].name_len; pos = A->states[refs[i].index].pos; break;
      case NDE__SYM_PARAM: name = A->params[refs[i].index].name; len = A->params[refs[i].index].name_len; pos = A->params[refs[i].index].pos; break;
      case NDE__SYM_NET: name = A->nets[refs[i].index].name; len = A->nets[refs[i].index].name_len; pos = A->nets[refs[i].index].pos; break;
      case NDE__SYM_INTER: name = A->inters[refs[i].index].name; len = A->inters[refs[i].index].name_len; pos = A->inters[refs[i].index].pos; break;
      case NDE__SYM_INPUT: name = A->inputs[refs[i].index].name; len = A->inputs[refs[i].index].name_len; pos = A->inputs[refs[i].index].pos; break;
      case NDE__SYM_CONST: name = A->consts[refs[i].index].name; len = A->consts[refs[i].index].name_len; pos = A->consts[refs[i].index].pos; break;
    }
    add_sym(C, refs[i].kind, refs[i].index, name, len, pos);
  }
  free(refs);
  return true;
}

/* ---- declarations ---- */

static void check_states(checker *C) {
  nde__ast *A = C->A;
  long total = 0;
  for (int i = 0; i < A->n_states; i++) {
    nde__state_decl *s = &A->states[i];
    s->offset = (int)total;
    total += s->size;
    if (total > NDE_MODEL_MAX_STATE) {
      nde__diag_error(C->d, NDE_ERR_LIMIT, s->pos,
                      "more than %d state components (the limit of a model)", NDE_MODEL_MAX_STATE);
      total = NDE_MODEL_MAX_STATE + 1;
      break;
    }
  }
  A->n_state_total = (int)total;
  if (A->n_states == 0) {
    nde__pos p = {1, 1, 0};
    nde__diag_error(C->d, NDE_ERR_MODEL, p, "the model declares no state (expected e.g. 'state x, y')");
  }
}

static void check_params(checker *C) {
  for (int i = 0; i < C->A->n_params; i++) {
    const nde__param_decl *p = &C->A->params[i];
    int nl = p->name_len;
    if (p->per_series && p->fixed) {
      nde__diag_error(C->d, NDE_ERR_MODEL, p->series_pos,
                      "parameter '%.*s' is both 'fixed' and 'per series' (for a known value per "
                      "series use 'const %.*s (from data)')", nl, p->name, nl, p->name);
    } else if (p->positive && p->bounded) {
      nde__diag_error(C->d, NDE_ERR_MODEL, p->flag_pos,
                      "parameter '%.*s' is both 'positive' and 'in [lo, hi]' (use one)", nl, p->name);
    } else if (p->positive && !(p->value > 0)) {
      nde__diag_error(C->d, NDE_ERR_MODEL, p->value_pos,
                      "positive parameter '%.*s' has value %g (expected > 0)", nl, p->name, p->value);
    } else if (p->bounded && !(p->lo < p->hi)) {
      nde__diag_error(C->d, NDE_ERR_MODEL, p->flag_pos,
                      "bounds [%g, %g] of parameter '%.*s' are empty (expected lo < hi)", p->lo, p->hi, nl, p->name);
    } else if (p->bounded && !isfinite(p->hi - p->lo)) {
      /* The logit transform scales by hi - lo: an infinite width maps every value to NaN. */
      nde__diag_error(C->d, NDE_ERR_MODEL, p->flag_pos,
                      "bounds [%g, %g] of parameter '%.*s' are too wide (expected hi - lo to be a "
                      "finite number, at most %g)", p->lo, p->hi, nl, p->name, DBL_MAX);
    } else if (p->bounded && !(p->value > p->lo && p->value < p->hi)) {
      nde__diag_error(C->d, NDE_ERR_MODEL, p->value_pos,
                      "parameter '%.*s' has value %g outside its bounds (%g, %g) (expected strictly inside)",
                      nl, p->name, p->value, p->lo, p->hi);
    }
  }
}

/* Whether state declaration i was refused (a reserved or already declared name): it has an
 * error of its own, so neither its missing equation nor an equation naming it is another. */
static bool state_refused(const nde__ast *A, int i) {
  const int s = nde__sym_find(A, A->states[i].name, A->states[i].name_len);
  return s < 0 || A->syms[s].kind != NDE__SYM_STATE || A->syms[s].index != i;
}

/* Whether name is that of a refused state declaration. */
static bool names_refused_state(const nde__ast *A, const char *name, int len) {
  for (int i = 0; i < A->n_states; i++)
    if (same(A->states[i].name, A->states[i].name_len, name, len) && state_refused(A, i))
      return true;
  return false;
}

/* d[q, p]/dt = EXPR: every listed name a state without another equation. */
static void check_list_equation(checker *C, int e) {
  nde__ast *A = C->A;
  nde__assign *q = &A->eqs[e];
  for (int k = 0; k < q->lhs_n; k++) {
    nde__expr *x = &A->exprs[A->args[q->lhs_first + k]];
    int s = nde__sym_find(A, x->name, x->name_len);
    if (s < 0 || A->syms[s].kind != NDE__SYM_STATE) {
      if (names_refused_state(A, x->name, x->name_len)) continue;
      if (s >= 0)
        nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "equation for '%.*s', which is %s, not a state",
                        x->name_len, x->name, kind_word(A->syms[s].kind));
      else
        nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "equation for unknown state '%.*s'",
                        x->name_len, x->name);
      continue;
    }
    x->sym = s;
    nde__state_decl *st = &A->states[A->syms[s].index];
    x->size = st->size;
    if (st->equation >= 0) {
      nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "second equation for state '%.*s'", x->name_len, x->name);
      nde__diag_note(C->d, A->eqs[st->equation].pos, "the first equation for '%.*s' is here",
                     x->name_len, x->name);
      continue;
    }
    st->equation = e;
    if (q->state < 0) q->state = A->syms[s].index;
  }
}

static void check_equations(checker *C) {
  nde__ast *A = C->A;
  for (int e = 0; e < A->n_eqs; e++) {
    nde__assign *q = &A->eqs[e];
    if (q->lhs_n > 0) {
      check_list_equation(C, e);
      continue;
    }
    int s = nde__sym_find(A, q->name, q->name_len);
    if (s < 0 || A->syms[s].kind != NDE__SYM_STATE) {
      if (names_refused_state(A, q->name, q->name_len)) continue;
      int hl = 0;
      const char *hint = NULL;
      if (s < 0) {
        /* hint among states only */
        int best = q->name_len <= 3 ? 2 : 3;
        for (int i = 0; i < A->n_states; i++) {
          int dd = distance(q->name, q->name_len, A->states[i].name, A->states[i].name_len);
          if (dd > 0 && dd < best && dd < n_chars(q->name, q->name_len)) {
            best = dd;
            hint = A->states[i].name;
            hl = A->states[i].name_len;
          }
        }
      }
      if (s >= 0)
        nde__diag_error(C->d, NDE_ERR_MODEL, q->pos, "equation for '%.*s', which is %s, not a state",
                        q->name_len, q->name, kind_word(A->syms[s].kind));
      else if (hint)
        nde__diag_error(C->d, NDE_ERR_MODEL, q->pos,
                        "equation for unknown state '%.*s' (did you mean '%.*s'?)", q->name_len,
                        q->name, hl, hint);
      else
        nde__diag_error(C->d, NDE_ERR_MODEL, q->pos, "equation for unknown state '%.*s'",
                        q->name_len, q->name);
      continue;
    }
    nde__state_decl *st = &A->states[A->syms[s].index];
    if (st->equation >= 0) {
      nde__diag_error(C->d, NDE_ERR_MODEL, q->pos, "second equation for state '%.*s'", q->name_len, q->name);
      nde__diag_note(C->d, A->eqs[st->equation].pos, "the first equation for '%.*s' is here",
                     q->name_len, q->name);
      continue;
    }
    st->equation = e;
    q->state = A->syms[s].index;
  }
  for (int i = 0; i < A->n_states; i++) {
    const nde__state_decl *st = &A->states[i];
    if (st->equation < 0 && !state_refused(A, i))
      nde__diag_error(C->d, NDE_ERR_MODEL, st->pos,
                      "state '%.*s' has no equation (expected a line 'd%.*s/dt = ...')",
                      st->name_len, st->name, st->name_len, st->name);
  }
}

/* ---- intermediates: dependency order and cycles ---- */

/* Intermediates referenced by expression e (appended to deps). */
static bool collect_deps(checker *C, int e, int **deps, int *n, int *cap) {
  const nde__expr *x = &C->A->exprs[e];
  if (x->kind == NDE__E_NAME) {
    int s = nde__sym_find(C->A, x->name, x->name_len);
    if (s >= 0 && C->A->syms[s].kind == NDE__SYM_INTER) {
      if (*n == *cap) {
        int c = *cap ? 2 * *cap : 8;
        int *p = realloc(*deps, (size_t)c * sizeof *p);
        if (!p) return false;
        *deps = p;
        *cap = c;
      }
      (*deps)[(*n)++] = C->A->syms[s].index;
    }
  }
  if (x->a >= 0 && !collect_deps(C, x->a, deps, n, cap)) return false;
  if (x->b >= 0 && !collect_deps(C, x->b, deps, n, cap)) return false;
  for (int i = 0; i < x->n_args; i++)
    if (!collect_deps(C, C->A->args[x->args + i], deps, n, cap)) return false;
  return true;
}

static void order_intermediates(checker *C) {
  nde__ast *A = C->A;
  int n = A->n_inters;
  if (n == 0) return;
  int *start = calloc((size_t)n + 1, sizeof *start);
  int *deps = NULL, nd = 0, capd = 0;
  int *color = calloc((size_t)n, sizeof *color); /* 0 new, 1 on stack, 2 done */
  int *stack = malloc((size_t)n * sizeof *stack);
  int *iter = malloc((size_t)n * sizeof *iter);
  C->A->inter_order = malloc((size_t)n * sizeof *C->A->inter_order);
  if (!start || !color || !stack || !iter || !C->A->inter_order) goto nomem;
  for (int i = 0; i < n; i++) {
    start[i] = nd;
    if (!collect_deps(C, A->inters[i].expr, &deps, &nd, &capd)) goto nomem;
  }
  start[n] = nd;
  for (int root = 0; root < n; root++) {
    if (color[root]) continue;
    int sp = 0;
    stack[sp] = root;
    iter[sp++] = start[root];
    color[root] = 1;
    while (sp > 0) {
      int v = stack[sp - 1];
      if (iter[sp - 1] < start[v + 1]) {
        int w = deps[iter[sp - 1]++];
        if (color[w] == 0) {
          color[w] = 1;
          stack[sp] = w;
          iter[sp++] = start[w];
        } else if (color[w] == 1) {
          /* A cycle: w ... v -> w on the stack.  Report it once, at w. */
          int k = sp - 1;
          while (stack[k] != w) k--;
          char buf[512];
          size_t used = 0;
          buf[0] = '\0';
          for (int j = k; j <= sp; j++) {
            int u = j < sp ? stack[j] : w;
            int wrote = snprintf(buf + used, sizeof buf - used, "%s%.*s", j > k ? " -> " : "",
                                 A->inters[u].name_len, A->inters[u].name);
            if (wrote < 0 || (size_t)wrote >= sizeof buf - used) {
              used = sizeof buf - 1;
              break;
            }
            used += (size_t)wrote;
          }
          bool already = false;
          for (int j = k; j < sp; j++) already = already || C->inter_bad[stack[j]];
          if (!already)
            nde__diag_error(C->d, NDE_ERR_MODEL, A->inters[w].pos, "cycle among intermediates: %s", buf);
          for (int j = k; j < sp; j++) C->inter_bad[stack[j]] = true;
        }
      } else {
        color[v] = 2;
        C->A->inter_order[C->A->n_inter_order++] = v;
        sp--;
      }
    }
  }
  free(start);
  free(deps);
  free(color);
  free(stack);
  free(iter);
  return;
nomem:
  C->nomem = true;
  free(start);
  free(deps);
  free(color);
  free(stack);
  free(iter);
}

/* ---- sizes ---- */

static void describe(const nde__ast *A, const nde__expr *x, char *buf, size_t n) {
  if (x->kind == NDE__E_NAME)
    snprintf(buf, n, "%.*s", x->name_len, x->name);
  else if (x->kind == NDE__E_CALL)
    snprintf(buf, n, "%.*s(...)", x->name_len, x->name);
  else
    snprintf(buf, n, "(...)");
  (void)A;
}

static int size_of(checker *C, int e);

static void unknown_name(checker *C, const nde__expr *x, bool callable) {
  int hl;
  const char *hint = closest(C, x->name, x->name_len, callable, &hl);
  const char *what = callable ? "unknown function or net" : "unknown name";
  if (hint)
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "%s '%.*s' (did you mean '%.*s'?)", what,
                    x->name_len, x->name, hl, hint);
  else
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "%s '%.*s'", what, x->name_len, x->name);
}

static int size_of_name(checker *C, nde__expr *x) {
  nde__ast *A = C->A;
  if (same(x->name, x->name_len, "t", 1)) return 1;
  if (builtin_func(x->name, x->name_len) >= 0) {
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "'%.*s' is a function: call it as %.*s(...)",
                    x->name_len, x->name, x->name_len, x->name);
    return 0;
  }
  int s = nde__sym_find(A, x->name, x->name_len);
  if (s < 0) {
    unknown_name(C, x, false);
    return 0;
  }
  x->sym = s;
  const nde__sym *y = &A->syms[s];
  switch (y->kind) {
    case NDE__SYM_STATE: return A->states[y->index].size;
    case NDE__SYM_PARAM: return 1;
    case NDE__SYM_INPUT: return 1;
    case NDE__SYM_CONST: return 1;
    case NDE__SYM_INTER:
      x->mcols = C->inter_mcols[y->index];
      return C->inter_size[y->index];
    case NDE__SYM_NET:
      nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "'%.*s' is a net: call it with its inputs, e.g. %.*s(x)",
                      x->name_len, x->name, x->name_len, x->name);
      return 0;
  }
  return 0;
}

/* Whether e names states only: a state, a component of a vector state (y[2]) or a list of
 * those; otherwise reports where it does not. */
static bool states_only(checker *C, int e) {
  nde__ast *A = C->A;
  const nde__expr *x = &A->exprs[e];
  if (x->kind == NDE__E_LIST) {
    bool ok = true;
    for (int i = 0; i < x->n_args; i++) ok = states_only(C, A->args[x->args + i]) && ok;
    return ok;
  }
  const nde__expr *y = x->kind == NDE__E_INDEX ? &A->exprs[x->a] : x;
  if (y->kind == NDE__E_NAME && y->sym >= 0 && A->syms[y->sym].kind == NDE__SYM_STATE) return true;
  if (y->kind == NDE__E_NAME && y->sym < 0 && y->name_len == 1 && y->name[0] == 't')
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                    "grad takes derivatives with respect to states, not the time t");
  else if (x->size != 0)
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                    "grad takes derivatives with respect to states (expected a state, a "
                    "component such as y[2], or a list of them such as [q, p])");
  return false;
}

/* grad(EXPR, X): the gradient of a scalar EXPR with respect to the states X, of X's size. */
static int size_of_grad(checker *C, nde__expr *x, int size_expr, int size_wrt) {
  const nde__ast *A = C->A;
  const int e = A->args[x->args], w = A->args[x->args + 1];
  const bool wrt_ok = states_only(C, w);
  if (size_expr > 1) {
    nde__diag_error(C->d, NDE_ERR_MODEL, A->exprs[e].pos,
                    "grad needs a scalar expression, got one of size %d (take a component, "
                    "e.g. grad(E[1], x), or a sum of components)", size_expr);
    return 0;
  }
  if (size_expr == 0 || size_wrt == 0 || !wrt_ok) return 0;
  return size_wrt;
}

static int size_of_call(checker *C, nde__expr *x) {
  nde__ast *A = C->A;
  long total = 0;
  bool unknown = false;
  int sizes[3] = {0, 0, 0};
  for (int i = 0; i < x->n_args; i++) {
    int s = size_of(C, A->args[x->args + i]);
    if (s == 0) unknown = true;
    if (i < 3) sizes[i] = s;
    total += s;
  }
  int f = builtin_func(x->name, x->name_len);
  if (f >= 0) {
    x->func = f;
    const int arity = nde__func_arity[f];
    if (x->n_args != arity) {
      nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "'%.*s' takes %d argument%s, got %d",
                      x->name_len, x->name, arity, arity == 1 ? "" : "s", x->n_args);
      return 0;
    }
    if (f == NDE__F_GRAD) return size_of_grad(C, x, sizes[0], sizes[1]);
    if (unknown) return 0;
    /* Matrices: every argument of the same shape, or a scalar. */
    int mc = 0;
    for (int i = 0; i < arity; i++)
      if (A->exprs[A->args[x->args + i]].mcols > 0) mc = A->exprs[A->args[x->args + i]].mcols;
    if (mc > 0) {
      int msize = 0;
      for (int i = 0; i < arity; i++)
        if (A->exprs[A->args[x->args + i]].mcols > 0) msize = sizes[i];
      for (int i = 0; i < arity; i++) {
        const nde__expr *ai = &A->exprs[A->args[x->args + i]];
        if ((ai->mcols != mc || sizes[i] != msize) && !(ai->mcols == 0 && sizes[i] == 1)) {
          nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                          "arguments of '%.*s' mix a %d x %d matrix with %s of size %d (expected "
                          "the same shape, or scalars)", x->name_len, x->name, msize / mc, mc,
                          ai->mcols > 0 ? "a matrix" : "a vector", sizes[i]);
          return 0;
        }
      }
      x->mcols = mc;
    }
    /* Elementwise over the arguments: equal sizes, or scalars broadcast. */
    int w = 1;
    for (int i = 0; i < arity; i++) w = sizes[i] > w ? sizes[i] : w;
    for (int i = 0; i < arity; i++)
      if (sizes[i] != w && sizes[i] != 1) {
        if (arity == 2)
          nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                          "sizes of the arguments of '%.*s' do not match: %d and %d (expected "
                          "equal sizes, or a scalar)", x->name_len, x->name, sizes[0], sizes[1]);
        else
          nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                          "sizes of the arguments of '%.*s' do not match: %d, %d and %d "
                          "(expected equal sizes, or scalars)", x->name_len, x->name, sizes[0],
                          sizes[1], sizes[2]);
        return 0;
      }
    return w;
  }
  int s = nde__sym_find(A, x->name, x->name_len);
  if (s < 0) {
    unknown_name(C, x, true);
    return 0;
  }
  const nde__sym *y = &A->syms[s];
  if (y->kind != NDE__SYM_NET) {
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                    "'%.*s' is %s, not a function or net (write %.*s*(...) for a product)",
                    x->name_len, x->name, kind_word(y->kind), x->name_len, x->name);
    return 0;
  }
  x->sym = s;
  const nde__net_decl *nd = &A->nets[y->index];
  if (unknown) return 0;
  for (int i = 0; i < x->n_args; i++)
    if (A->exprs[A->args[x->args + i]].mcols > 0) {
      nde__diag_error(C->d, NDE_ERR_MODEL, A->exprs[A->args[x->args + i]].pos,
                      "a matrix cannot be the input of net '%.*s' (expected scalars and vectors)",
                      x->name_len, x->name);
      return 0;
    }
  if (x->n_args == 0 || total != nd->widths[0]) {
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "net '%.*s' takes %d input%s, got %ld",
                    x->name_len, x->name, nd->widths[0], nd->widths[0] == 1 ? "" : "s", total);
    return 0;
  }
  return nd->widths[nd->n_layers];
}

static const char *op_text(nde__ekind k) {
  switch (k) {
    case NDE__E_ADD: return "+";
    case NDE__E_SUB: return "-";
    case NDE__E_MUL: return "*";
    case NDE__E_DIV: return "/";
    case NDE__E_POW: return "^";
    case NDE__E_LT: return "<";
    case NDE__E_LE: return "<=";
    case NDE__E_GT: return ">";
    case NDE__E_GE: return ">=";
    default: return "?";
  }
}

/* M v, M N: a matrix on the left, a vector or a matrix with as many rows as M has columns on
 * the right. */
static int size_of_matmul(checker *C, nde__expr *x) {
  nde__ast *A = C->A;
  const int sa = size_of(C, x->a), sb = size_of(C, x->b);
  if (sa == 0 || sb == 0) return 0;
  const nde__expr *ea = &A->exprs[x->a], *eb = &A->exprs[x->b];
  if (ea->mcols == 0) {
    char what[160];
    describe(A, ea, what, sizeof what);
    nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                    "'%s' is not a matrix: two values side by side are a matrix product (write "
                    "a*b for a product of numbers; indices are integer literals, e.g. y[2])", what);
    return 0;
  }
  const int rows = sa / ea->mcols, inner = ea->mcols;
  const int k = eb->mcols > 0 ? eb->mcols : 1, rb = sb / k;
  if (rb != inner) {
    if (eb->mcols > 0)
      nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                      "sizes do not match in a product: a %d x %d matrix times a %d x %d matrix "
                      "(expected %d rows on the right)", rows, inner, rb, k, inner);
    else
      nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                      "sizes do not match in a product: a %d x %d matrix times a vector of size "
                      "%d (expected %d)", rows, inner, sb, inner);
    return 0;
  }
  x->mcols = eb->mcols > 0 ? k : 0;
  return rows * k;
}

static int size_of(checker *C, int e) {
  nde__ast *A = C->A;
  nde__expr *x = &A->exprs[e];
  int s = 0;
  switch (x->kind) {
    case NDE__E_NUM: s = 1; break;
    case NDE__E_NAME: s = size_of_name(C, x); break;
    case NDE__E_CALL: s = size_of_call(C, x); break;
    case NDE__E_NEG:
      s = size_of(C, x->a);
      x->mcols = A->exprs[x->a].mcols;
      break;
    case NDE__E_MATMUL: s = size_of_matmul(C, x); break;
    case NDE__E_INDEX: {
      int sa = size_of(C, x->a);
      if (sa == 0) break;
      if (A->exprs[x->a].mcols > 0) {
        nde__diag_error(C->d, NDE_ERR_MODEL, x->index_pos,
                        "a matrix has no components [i] (index vectors; a matrix's rows are "
                        "written as lists [[a, b], [c, d]])");
        break;
      }
      if (x->index < 1 || x->index > sa) {
        char what[160];
        describe(A, &A->exprs[x->a], what, sizeof what);
        nde__diag_error(C->d, NDE_ERR_MODEL, x->index_pos,
                        "index %ld out of range for %s[1..%d] (indices are 1-based)", x->index, what, sa);
        break;
      }
      s = 1;
      break;
    }
    case NDE__E_LIST: {
      long total = 0;
      bool unknown = false, rows = true;
      for (int i = 0; i < x->n_args; i++) {
        int si = size_of(C, A->args[x->args + i]);
        if (si == 0) unknown = true;
        total += si;
        rows = rows && A->exprs[A->args[x->args + i]].kind == NDE__E_LIST;
      }
      if (unknown) break;
      /* A list of lists is a matrix, row by row; a matrix is no part of a concatenation. */
      for (int i = 0; i < x->n_args && !unknown; i++) {
        const nde__expr *ai = &A->exprs[A->args[x->args + i]];
        if (ai->mcols > 0) {
          nde__diag_error(C->d, NDE_ERR_MODEL, ai->pos,
                          rows ? "a row of a matrix is a matrix (rows are lists of scalars and vectors)"
                               : "a matrix cannot be concatenated (lists join scalars and vectors)");
          unknown = true;
        } else if (rows && ai->size != A->exprs[A->args[x->args]].size) {
          nde__diag_error(C->d, NDE_ERR_MODEL, ai->pos,
                          "rows of a matrix have different sizes: %d and %d",
                          A->exprs[A->args[x->args]].size, ai->size);
          unknown = true;
        }
      }
      if (unknown) break;
      if (rows) x->mcols = A->exprs[A->args[x->args]].size;
      if (total > NDE_MODEL_MAX_WIDTH) {
        nde__diag_error(C->d, NDE_ERR_LIMIT, x->pos, "list of %ld values is longer than the limit of %d",
                        total, NDE_MODEL_MAX_WIDTH);
        break;
      }
      s = (int)total;
      break;
    }
    case NDE__E_ADD:
    case NDE__E_SUB:
    case NDE__E_MUL:
    case NDE__E_DIV:
    case NDE__E_POW:
    case NDE__E_LT:
    case NDE__E_LE:
    case NDE__E_GT:
    case NDE__E_GE: {
      int sa = size_of(C, x->a), sb = size_of(C, x->b);
      if (sa == 0 || sb == 0) break;
      const int ma = A->exprs[x->a].mcols, mb = A->exprs[x->b].mcols;
      if ((ma > 0 || mb > 0) && !(ma == mb && sa == sb) && !(ma == 0 && sa == 1) &&
          !(mb == 0 && sb == 1)) {
        char left[48], right[48];
        if (ma > 0) snprintf(left, sizeof left, "a %d x %d matrix", sa / ma, ma);
        else snprintf(left, sizeof left, "size %d", sa);
        if (mb > 0) snprintf(right, sizeof right, "a %d x %d matrix", sb / mb, mb);
        else snprintf(right, sizeof right, "size %d", sb);
        nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                        "shapes do not match in '%s': %s on the left, %s on the right (expected "
                        "the same shape, or a scalar; a matrix times a vector is written M v)",
                        op_text(x->kind), left, right);
        break;
      }
      x->mcols = ma > 0 ? ma : mb;
      if (sa != sb && sa != 1 && sb != 1) {
        nde__diag_error(C->d, NDE_ERR_MODEL, x->pos,
                        "sizes do not match in '%s': %d on the left, %d on the right (expected "
                        "equal sizes, or a scalar on one side)", op_text(x->kind), sa, sb);
        break;
      }
      s = sa > sb ? sa : sb;
      break;
    }
  }
  x->size = s;
  return s;
}

static void check_sizes(checker *C) {
  nde__ast *A = C->A;
  for (int k = 0; k < C->A->n_inter_order; k++) {
    int i = C->A->inter_order[k];
    C->inter_size[i] = C->inter_bad[i] ? 0 : size_of(C, A->inters[i].expr);
    C->inter_mcols[i] = C->inter_bad[i] ? 0 : A->exprs[A->inters[i].expr].mcols;
    const nde__assign *q = &A->inters[i];
    if (q->observed && C->inter_size[i] > 1)
      nde__diag_error(C->d, NDE_ERR_MODEL, q->pos,
                      "observable '%.*s' has size %d (expected a scalar: one observe line per "
                      "quantity)", q->name_len, q->name, C->inter_size[i]);
  }
  for (int e = 0; e < A->n_eqs; e++) {
    nde__assign *q = &A->eqs[e];
    int s = size_of(C, q->expr);
    if (s > 0 && A->exprs[q->expr].mcols > 0) {
      nde__diag_error(C->d, NDE_ERR_MODEL, A->exprs[q->expr].pos,
                      "the right-hand side is a %d x %d matrix (expected a vector: multiply it by "
                      "one, e.g. M v)", s / A->exprs[q->expr].mcols, A->exprs[q->expr].mcols);
      continue;
    }
    if (q->lhs_n > 0) {
      long total = 0;
      bool known = true;
      for (int k = 0; k < q->lhs_n; k++) {
        const int sz = A->exprs[A->args[q->lhs_first + k]].size;
        known = known && sz > 0;
        total += sz;
      }
      if (known && s > 0 && s != total)
        nde__diag_error(C->d, NDE_ERR_MODEL, q->pos,
                        "right-hand side has size %d but the states listed have %ld components",
                        s, total);
      continue;
    }
    if (q->state < 0 || s == 0) continue;
    const nde__state_decl *st = &A->states[q->state];
    if (s != st->size) {
      const nde__expr *x = &A->exprs[q->expr];
      if (x->kind == NDE__E_CALL && x->func < 0)
        nde__diag_error(C->d, NDE_ERR_MODEL, x->pos, "net '%.*s' gives %d output%s but state '%.*s' has size %d",
                        x->name_len, x->name, s, s == 1 ? "" : "s", st->name_len, st->name, st->size);
      else
        nde__diag_error(C->d, NDE_ERR_MODEL, q->pos, "right-hand side has size %d but state '%.*s' has size %d",
                        s, st->name_len, st->name, st->size);
    }
  }
}

nde_status nde__check(nde__ast *A, nde__diags *d) {
  checker C = {A, d, false, NULL, NULL, NULL};
  int n = A->n_inters;
  C.inter_size = calloc((size_t)n + 1, sizeof *C.inter_size);
  C.inter_mcols = calloc((size_t)n + 1, sizeof *C.inter_mcols);
  C.inter_bad = calloc((size_t)n + 1, sizeof *C.inter_bad);
  if (!C.inter_size || !C.inter_mcols || !C.inter_bad) C.nomem = true;
  if (!C.nomem) build_symbols(&C);
  if (!C.nomem) {
    check_states(&C);
    check_params(&C);
    check_equations(&C);
    order_intermediates(&C);
  }
  if (!C.nomem) check_sizes(&C);
  free(C.inter_size);
  free(C.inter_mcols);
  free(C.inter_bad);
  if (C.nomem || d->nomem) return NDE_ERR_NOMEM;
  return d->n_errors ? d->status : NDE_OK;
}
