/* Lexer of the .nde language: names (ASCII letters, digits, '_' and any UTF-8 letters such as
 * α; bytes that are not UTF-8 are reported, never echoed), numbers (123, 1.5, 2e-3, .5),
 * punctuation, "->", comparisons (< <= > >=), newlines (statement ends) and '#' comments.
 * Columns count characters, not bytes, so carets line up under UTF-8 text. */
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

int nde__utf8_len(const unsigned char *s, size_t n) {
  const unsigned char c = s[0];
  if (c < 0x80) return 1;
  int k;
  unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) k = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    k = 3;
    if (c == 0xE0) lo = 0xA0;      /* overlong */
    else if (c == 0xED) hi = 0x9F; /* UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    k = 4;
    if (c == 0xF0) lo = 0x90;      /* overlong */
    else if (c == 0xF4) hi = 0x8F; /* beyond U+10FFFF */
  } else {
    return 0;
  }
  if (n < (size_t)k || s[1] < lo || s[1] > hi) return 0;
  for (int j = 2; j < k; j++)
    if ((s[j] & 0xC0) != 0x80) return 0;
  return k;
}

/* The length of the UTF-8 letter-like character at the lexer's place (a name may hold any
 * character beyond ASCII but the C1 controls U+0080..U+009F), or 0. */
static int name_seq(const lexer *L) {
  const unsigned char *s = (const unsigned char *)L->s + L->i;
  const int k = nde__utf8_len(s, L->len - L->i);
  if (k == 2 && s[0] == 0xC2 && s[1] < 0xA0) return 0;
  return k;
}

bool nde__lex_not_text(const char *src, size_t len, nde__diags *d) {
  /* The signature at the start of every HDF5 file without a user block. */
  if (len >= 8 && memcmp(src, "\x89HDF\r\n\x1a\n", 8) == 0) {
    nde__diag_error(d, NDE_ERR_PARSE, (nde__pos){1, 1, 0},
                    "this is an HDF5 file, not a model file (expected the model's text)");
    return true;
  }
  const char *nul = memchr(src, '\0', len);
  if (!nul) return false;
  nde__pos pos = {1, 1, 0};
  for (const char *c = src; c < nul; c++) {
    if (*c == '\n') {
      pos.line++;
      pos.col = 1;
    } else if (((unsigned char)*c & 0xC0) != 0x80) {
      pos.col++;
    }
  }
  pos.offset = (int)(nul - src);
  nde__diag_error(d, NDE_ERR_PARSE, pos,
                  "this is not a text file: it holds a NUL byte (0x00) (expected the model's "
                  "text, UTF-8)");
  return true;
}

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
    const int k = (unsigned char)L->s[L->i] < 0x80 ? 1 : name_seq(L);
    if (k == 0) break; /* not UTF-8: reported on its own, never echoed */
    if (!why) why = L->s[L->i] == '.' ? "a second decimal point" : "a name cannot start with a digit";
    for (int j = 0; j < k; j++) adv(L);
  }
  if (!push(L, NDE__TK_NUMBER, pos, start)) return false;
  nde__token *t = &L->toks[L->n - 1];
  t->is_int = is_int;
  if (why) {
    /* One message per line: after an earlier error there, the rest of the line is silent. */
    if (!nde__diag_line_has_error(L->d, pos.line))
      nde__diag_error(L->d, NDE_ERR_PARSE, pos, "bad number literal '%.*s' (%s)", t->len,
                      t->text, why);
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
    if (is_name_start(c) && (c < 0x80 || name_seq(&L) > 0)) {
      while (L.i < L.len && is_name_char((unsigned char)L.s[L.i])) {
        /* Beyond ASCII, whole UTF-8 characters: invalid bytes end the name (and are reported
         * next), so that no message ever echoes them. */
        const int k = (unsigned char)L.s[L.i] < 0x80 ? 1 : name_seq(&L);
        if (k == 0) break;
        for (int j = 0; j < k; j++) adv(&L);
      }
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
          else if (c >= 0x80 && nde__utf8_len((const unsigned char *)L.s + L.i, L.len - L.i) == 2)
            nde__diag_error(d, NDE_ERR_PARSE, pos, "unexpected control character U+%04X",
                            (unsigned)(((c & 0x1Fu) << 6) | ((unsigned char)L.s[L.i + 1] & 0x3Fu)));
          else if (c >= 0x80)
            nde__diag_error(d, NDE_ERR_PARSE, pos,
                            "invalid UTF-8 (byte 0x%02x; expected UTF-8 text)", c);
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
