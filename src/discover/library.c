/* Candidate-term libraries for sparse regression: monomials of the state components up to a
 * total degree, sin/cos/exp of each component, and user terms, all written as expressions of the
 * .nde language so that the model layer's probe evaluates them and a discovered model can use
 * them verbatim (Brunton, Proctor & Kutz 2016, the library Theta(X)). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/discover.h"

#define MAX_DEGREE 8

nde_library_opts nde_library_opts_default(void) {
  nde_library_opts o = {3, 1, 0, 0, 0, 0, NULL};
  return o;
}

static nde_status fail(nde_error *err, nde_status st, const char *fmt, ...) NDE__PRINTF(3, 4);
static nde_status fail(nde_error *err, nde_status st, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->status = st;
  }
  return st;
}

nde_status nde_library_opts_parse(const char *spec, nde_library_opts *o, nde_error *err) {
  if (!spec || !o) return fail(err, NDE_ERR_ARG, "library spec is NULL");
  const char *s = spec;
  while (*s) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    char item[64];
    if (len == 0 || len >= sizeof item)
      return fail(err, NDE_ERR_ARG,
                  "library '%s': empty or overlong item (expected poly:D, sin, cos, exp, noconst)",
                  spec);
    memcpy(item, s, len);
    item[len] = '\0';
    if (strncmp(item, "poly:", 5) == 0) {
      char *end;
      long d = strtol(item + 5, &end, 10);
      if (end == item + 5 || *end || d < 0 || d > MAX_DEGREE)
        return fail(err, NDE_ERR_ARG, "library '%s': bad degree in '%s' (expected poly:D, D in 0..%d)",
                    spec, item, MAX_DEGREE);
      o->poly_degree = (int)d;
    } else if (strcmp(item, "sin") == 0) {
      o->sin = 1;
    } else if (strcmp(item, "cos") == 0) {
      o->cos = 1;
    } else if (strcmp(item, "exp") == 0) {
      o->exp = 1;
    } else if (strcmp(item, "noconst") == 0) {
      o->constant = 0;
    } else {
      return fail(err, NDE_ERR_ARG,
                  "library '%s': unknown item '%s' (expected poly:D, sin, cos, exp, noconst)", spec,
                  item);
    }
    s += len;
    if (*s == ',') s++;
  }
  return NDE_OK;
}

/* The list of terms grows in one array of owned strings, packed into one block at the end. */
typedef struct tlist {
  char **t;
  int n, cap;
  bool nomem;
} tlist;

static void add(tlist *L, const char *text) {
  if (L->nomem) return;
  if (L->n == L->cap) {
    int cap = L->cap ? 2 * L->cap : 32;
    char **t = realloc(L->t, (size_t)cap * sizeof *t);
    if (!t) {
      L->nomem = true;
      return;
    }
    L->t = t;
    L->cap = cap;
  }
  size_t len = strlen(text);
  L->t[L->n] = malloc(len + 1);
  if (!L->t[L->n]) {
    L->nomem = true;
    return;
  }
  memcpy(L->t[L->n++], text, len + 1);
}

/* Monomials of total degree d as exponent vectors in graded lexicographic order (x^2, x*y, y^2):
 * exponents e[0..n) summing to d, the first component's exponent descending. */
static void monomials(tlist *L, int n, const char *const *names, int d, int *e, int j, int left,
                      long *count) {
  if (L->nomem || *count > NDE_LIBRARY_MAX_TERMS) return;
  if (j == n - 1) {
    e[j] = left;
    char buf[1024];
    size_t k = 0;
    for (int i = 0; i < n && k < sizeof buf; i++) {
      if (!e[i]) continue;
      int w = e[i] == 1 ? snprintf(buf + k, sizeof buf - k, "%s%s", k ? "*" : "", names[i])
                        : snprintf(buf + k, sizeof buf - k, "%s%s^%d", k ? "*" : "", names[i], e[i]);
      if (w < 0) return;
      k += (size_t)w;
    }
    (*count)++;
    if (k < sizeof buf) add(L, buf);
    else L->nomem = true;
    (void)d;
    return;
  }
  for (int a = left; a >= 0; a--) {
    e[j] = a;
    monomials(L, n, names, d, e, j + 1, left - a, count);
  }
}

/* The same term written with other spacing. */
static bool same_text(const char *a, const char *b) {
  for (;;) {
    while (isspace((unsigned char)*a)) a++;
    while (isspace((unsigned char)*b)) b++;
    if (*a != *b) return false;
    if (!*a) return true;
    a++, b++;
  }
}

nde_status nde_library_terms(int n, const char *const *names, const nde_library_opts *o,
                             int *n_terms, char ***terms, nde_error *err) {
  if (!names || !o || !n_terms || !terms || n < 1) return fail(err, NDE_ERR_ARG, "library: no state names");
  *n_terms = 0;
  *terms = NULL;
  if (o->poly_degree < 0 || o->poly_degree > MAX_DEGREE)
    return fail(err, NDE_ERR_ARG, "library: degree %d out of range (expected 0..%d)",
                o->poly_degree, MAX_DEGREE);
  tlist L = {0};
  int *e = calloc((size_t)n, sizeof *e);
  long count = 0;
  if (!e) L.nomem = true;
  if (o->constant) add(&L, "1");
  for (int d = 1; d <= o->poly_degree && !L.nomem && count <= NDE_LIBRARY_MAX_TERMS; d++)
    monomials(&L, n, names, d, e, 0, d, &count);
  free(e);
  static const char *const fn[3] = {"sin", "cos", "exp"};
  const int on[3] = {o->sin, o->cos, o->exp};
  for (int f = 0; f < 3; f++)
    for (int i = 0; on[f] && i < n && !L.nomem; i++) {
      char buf[1024];
      snprintf(buf, sizeof buf, "%s(%s)", fn[f], names[i]);
      add(&L, buf);
    }
  for (int u = 0; u < o->n_user && !L.nomem; u++) {
    if (!o->user || !o->user[u] || !o->user[u][0]) {
      for (int i = 0; i < L.n; i++) free(L.t[i]);
      free(L.t);
      return fail(err, NDE_ERR_ARG, "library: user term %d is empty", u + 1);
    }
    for (int i = 0; i < L.n; i++)
      if (same_text(L.t[i], o->user[u])) {
        char msg[600];
        snprintf(msg, sizeof msg, "library: user term %d '%s' is already a candidate (%s '%s'): "
                 "give each term once", u + 1, o->user[u],
                 i >= L.n - u ? "user term" : "the library's", L.t[i]);
        for (int q = 0; q < L.n; q++) free(L.t[q]);
        free(L.t);
        return fail(err, NDE_ERR_ARG, "%s", msg);
      }
    add(&L, o->user[u]);
  }
  nde_status st = NDE_OK;
  if (L.nomem) st = fail(err, NDE_ERR_NOMEM, "library: out of memory");
  else if (count > NDE_LIBRARY_MAX_TERMS || L.n > NDE_LIBRARY_MAX_TERMS)
    st = fail(err, NDE_ERR_LIMIT, "library: more than %d terms (lower the degree)", NDE_LIBRARY_MAX_TERMS);
  else if (L.n == 0)
    st = fail(err, NDE_ERR_ARG, "library: no terms (expected a degree >= 1, a function or a user term)");
  size_t bytes = (size_t)L.n * sizeof(char *);
  for (int i = 0; st == NDE_OK && i < L.n; i++) bytes += strlen(L.t[i]) + 1;
  char **block = st == NDE_OK ? malloc(bytes) : NULL;
  if (st == NDE_OK && !block) st = fail(err, NDE_ERR_NOMEM, "library: out of memory");
  if (st == NDE_OK) {
    char *p = (char *)(block + L.n);
    for (int i = 0; i < L.n; i++) {
      size_t len = strlen(L.t[i]) + 1;
      memcpy(p, L.t[i], len);
      block[i] = p;
      p += len;
    }
    *n_terms = L.n;
    *terms = block;
  }
  for (int i = 0; i < L.n; i++) free(L.t[i]);
  free(L.t);
  return st;
}
