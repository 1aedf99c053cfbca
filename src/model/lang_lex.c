/* Lexer of the .nde language: names (ASCII letters, digits, '_' and any UTF-8 letters such as
 * α), numbers (123, 1.5, 2e-3, .5), punctuation, "->", comparisons (< <= > >=), newlines
 * (statement ends) and '#' comments.  Columns count characters, not bytes, so carets line up under UTF-8 text. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

typedef struct lexer {
  const char *s;
  size_t len, i;
  int line, col;
  nde__diags *d;
  nde__token *toks;
  int n, cap;
} lexer;

static nde__pos here(const lexer *L) { return (nde__pos){L->line, L->col, (int)L->i}; }

/* Advance one byte; UTF-8 continuation bytes do not count as columns. */
static void adv(lexer *L) {
  unsigned char c = (unsigned char)L->s[L->i];
  L->i++;
  if (c == '\n') {
    L->line++;
    L->col = 1;
  } else if ((c & 0xC0) != 0x80) {
    L->col++;
  }
}

static bool is_name_start(unsigned char c) { return isalpha(c) || c == '_' || c >= 0x80; }
static bool is_name_char(unsigned char c) { return isalnum(c) || c == '_' || c >= 0x80; }

static bool push(lexer *L, nde__tk kind, nde__pos pos, size_t start) {
  if (L->n == L->cap) {
    int cap = L->cap ? 2 * L->cap : 256;
    nde__token *t = realloc(L->toks, (size_t)cap * sizeof *t);
    if (!t) return false;
    L->toks = t;
    L->cap = cap;
  }
  nde__token *t = &L->toks[L->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->pos = pos;
  t->text = L->s + start;
  t->len = (int)(L->i - start);
  return true;
}

/* A number: digits [. digits] [e [+-] digits].  Anything glued to it that could continue a
 * number or a name makes the whole run a bad literal ("1.2.3", "3x", "1e+"). */
static bool lex_number(lexer *L) {
  nde__pos pos = here(L);
  size_t start = L->i;
  const char *why = NULL;
  bool is_int = true;
  while (L->i < L->len && isdigit((unsigned char)L->s[L->i])) adv(L);
  if (L->i < L->len && L->s[L->i] == '.') {
    is_int = false;
    adv(L);
    while (L->i < L->len && isdigit((unsigned char)L->s[L->i])) adv(L);
  }
  if (L->i < L->len && (L->s[L->i] == 'e' || L->s[L->i] == 'E')) {
    is_int = false;
    adv(L);
    if (L->i < L->len && (L->s[L->i] == '+' || L->s[L->i] == '-')) adv(L);
    if (L->i >= L->len || !isdigit((unsigned char)L->s[L->i])) why = "expected digits after the exponent";
    while (L->i < L->len && isdigit((unsigned char)L->s[L->i])) adv(L);
  }
  /* Swallow the rest of a malformed run so that it is reported once. */
  while (L->i < L->len && (is_name_char((unsigned char)L->s[L->i]) || L->s[L->i] == '.')) {
    if (!why) why = L->s[L->i] == '.' ? "a second decimal point" : "a name cannot start with a digit";
    adv(L);
  }
  if (!push(L, NDE__TK_NUMBER, pos, start)) return false;
  nde__token *t = &L->toks[L->n - 1];
  t->is_int = is_int;
  if (why) {
    nde__diag_error(L->d, NDE_ERR_PARSE, pos, "bad number literal '%.*s' (%s)", t->len, t->text,
                    why);
    L->d->last_line = pos.line;
    return true;
  }
  char buf[64];
  if (t->len >= (int)sizeof buf) {
    /* Longer than any double needs: only leading zeros or digits beyond precision. */
    char *tmp = malloc((size_t)t->len + 1);
    if (!tmp) return false;
    memcpy(tmp, t->text, (size_t)t->len);
    tmp[t->len] = '\0';
    errno = 0;
    t->num = strtod(tmp, NULL);
    free(tmp);
  } else {
    memcpy(buf, t->text, (size_t)t->len);
    buf[t->len] = '\0';
    errno = 0;
    t->num = strtod(buf, NULL);
  }
  if (!isfinite(t->num)) {
    nde__diag_error(L->d, NDE_ERR_PARSE, pos, "bad number literal '%.*s' (too large for a double)",
                    t->len, t->text);
    L->d->last_line = pos.line;
    t->num = 0;
  }
  return true;
}

nde_status nde__lex(const char *src, size_t len, nde__diags *d, nde__token **out, int *n_out) {
  lexer L = {src, len, 0, 1, 1, d, NULL, 0, 0};
  *out = NULL;
  *n_out = 0;
  /* A UTF-8 byte order mark is not part of the text. */
  if (len >= 3 && memcmp(src, "\xEF\xBB\xBF", 3) == 0) L.i = 3;
  while (L.i < L.len) {
    unsigned char c = (unsigned char)L.s[L.i];
    nde__pos pos = here(&L);
    size_t start = L.i;
    nde__tk kind;
    if (c == '\n') {
      adv(&L);
      if (!push(&L, NDE__TK_NEWLINE, pos, start)) goto nomem;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r') {
      adv(&L);
      continue;
    }
    if (c == '#') {
      while (L.i < L.len && L.s[L.i] != '\n') adv(&L);
      continue;
    }
    if (isdigit(c) || (c == '.' && L.i + 1 < L.len && isdigit((unsigned char)L.s[L.i + 1]))) {
      if (!lex_number(&L)) goto nomem;
      continue;
    }
    if (is_name_start(c)) {
      while (L.i < L.len && is_name_char((unsigned char)L.s[L.i])) adv(&L);
      if (!push(&L, NDE__TK_IDENT, pos, start)) goto nomem;
      continue;
    }
    switch (c) {
      case '(': kind = NDE__TK_LPAREN; break;
      case ')': kind = NDE__TK_RPAREN; break;
      case '[': kind = NDE__TK_LBRACKET; break;
      case ']': kind = NDE__TK_RBRACKET; break;
      case ',': kind = NDE__TK_COMMA; break;
      case ':': kind = NDE__TK_COLON; break;
      case '=': kind = NDE__TK_ASSIGN; break;
      case '+': kind = NDE__TK_PLUS; break;
      case '*': kind = NDE__TK_STAR; break;
      case '/': kind = NDE__TK_SLASH; break;
      case '^': kind = NDE__TK_CARET; break;
      case '<':
      case '>':
        kind = c == '<' ? NDE__TK_LT : NDE__TK_GT;
        if (L.i + 1 < L.len && L.s[L.i + 1] == '=') {
          adv(&L);
          kind = c == '<' ? NDE__TK_LE : NDE__TK_GE;
        }
        break;
      case '-':
        kind = NDE__TK_MINUS;
        if (L.i + 1 < L.len && L.s[L.i + 1] == '>') {
          adv(&L);
          kind = NDE__TK_ARROW;
        }
        break;
      default:
        if (!nde__diag_line_has_error(d, pos.line)) {
          if (c >= 0x20 && c < 0x7f)
            nde__diag_error(d, NDE_ERR_PARSE, pos, "unexpected character '%c'", c);
          else
            nde__diag_error(d, NDE_ERR_PARSE, pos, "unexpected character (byte 0x%02x)", c);
          d->last_line = pos.line;
        }
        adv(&L);
        continue;
    }
    adv(&L);
    if (!push(&L, kind, pos, start)) goto nomem;
  }
  {
    nde__pos pos = here(&L);
    if (!push(&L, NDE__TK_NEWLINE, pos, L.i) || !push(&L, NDE__TK_EOF, pos, L.i)) goto nomem;
  }
  *out = L.toks;
  *n_out = L.n;
  return NDE_OK;
nomem:
  free(L.toks);
  return NDE_ERR_NOMEM;
}
