/* Diagnostics of the .nde language: "FILE:LINE:COL: error: what", the offending line and a
 * caret under the column.  The first few errors are kept; a syntax error silences the rest of
 * its line so that one mistake gives one message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *s = malloc((size_t)n + 1);
  if (s) vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

static char *line_at(const nde__diags *d, nde__pos pos) {
  size_t start = (size_t)pos.offset, end;
  if (start > d->len) start = d->len;
  while (start > 0 && d->src[start - 1] != '\n') start--;
  end = start;
  while (end < d->len && d->src[end] != '\n' && d->src[end] != '\r') end++;
  char *s = malloc(end - start + 1);
  if (!s) return NULL;
  /* Never echo raw bytes a terminal would act on, and keep one character per column so that
   * the caret stays under its column: control characters (tabs, NULs from a fuzzer) become
   * spaces, a C1 control or a byte that starts no valid UTF-8 character '?', and a stray
   * continuation byte (which takes no column) is left out. */
  const unsigned char *src = (const unsigned char *)d->src;
  size_t k = 0;
  for (size_t i = start; i < end;) {
    const unsigned char c = src[i];
    if (c < 0x20 || c == 0x7f) {
      s[k++] = ' ';
      i++;
      continue;
    }
    if (c < 0x80) {
      s[k++] = (char)c;
      i++;
      continue;
    }
    int n = nde__utf8_len(src + i, end - i);
    if (n == 0) {
      if ((c & 0xC0) != 0x80) s[k++] = '?';
      i++;
    } else if (n == 2 && c == 0xC2 && src[i + 1] < 0xA0) {
      s[k++] = '?';
      i += 2;
    } else {
      memcpy(s + k, src + i, (size_t)n);
      k += (size_t)n;
      i += (size_t)n;
    }
  }
  s[k] = '\0';
  return s;
}

static bool push(nde__diags *d, bool is_note, nde__pos pos, const char *fmt, va_list ap) {
  if (d->n == d->cap) {
    int cap = d->cap ? 2 * d->cap : 8;
    nde__diag *it = realloc(d->items, (size_t)cap * sizeof *it);
    if (!it) {
      d->nomem = true;
      return false;
    }
    d->items = it;
    d->cap = cap;
  }
  nde__diag *g = &d->items[d->n];
  g->is_note = is_note;
  g->pos = pos;
  g->message = vformat(fmt, ap);
  g->source_line = line_at(d, pos);
  if (!g->message || !g->source_line) {
    free(g->message);
    free(g->source_line);
    d->nomem = true;
    return false;
  }
  d->n++;
  return true;
}

bool nde__diag_error(nde__diags *d, nde_status st, nde__pos pos, const char *fmt, ...) {
  if (d->status == NDE_OK) d->status = st;
  d->n_errors++;
  if (d->n_errors > NDE__MAX_ERRORS) return false;
  va_list ap;
  va_start(ap, fmt);
  bool ok = push(d, false, pos, fmt, ap);
  va_end(ap);
  return ok;
}

void nde__diag_note(nde__diags *d, nde__pos pos, const char *fmt, ...) {
  if (d->n_errors > NDE__MAX_ERRORS || d->n == 0) return;
  va_list ap;
  va_start(ap, fmt);
  push(d, true, pos, fmt, ap);
  va_end(ap);
}

bool nde__diag_line_has_error(const nde__diags *d, int line) {
  if (d->last_line == line) return true;
  for (int i = 0; i < d->n; i++)
    if (!d->items[i].is_note && d->items[i].pos.line == line) return true;
  return false;
}

static bool before(nde__pos a, nde__pos b) {
  return a.line < b.line || (a.line == b.line && a.col < b.col);
}

void nde__diags_sort(nde__diags *d) {
  /* Insertion sort of groups (an error and its notes); there are at most a few. */
  for (int i = 1; i < d->n; i++) {
    if (d->items[i].is_note) continue;
    int end = i + 1;
    while (end < d->n && d->items[end].is_note) end++;
    int j = i;
    while (j > 0) {
      int g = j - 1;
      while (g > 0 && d->items[g].is_note) g--;
      if (!before(d->items[i].pos, d->items[g].pos)) break;
      j = g;
    }
    if (j < i) {
      int len = end - i;
      nde__diag tmp[NDE__MAX_ERRORS * 4];
      if (len > (int)(sizeof tmp / sizeof *tmp)) continue;
      memcpy(tmp, d->items + i, (size_t)len * sizeof *tmp);
      memmove(d->items + j + len, d->items + j, (size_t)(i - j) * sizeof *tmp);
      memcpy(d->items + j, tmp, (size_t)len * sizeof *tmp);
    }
    i = end - 1;
  }
}

void nde__diags_free(nde__diags *d) {
  for (int i = 0; i < d->n; i++) {
    free(d->items[i].message);
    free(d->items[i].source_line);
  }
  free(d->items);
  d->items = NULL;
  d->n = d->cap = 0;
}

typedef struct sbuf {
  char *s;
  size_t n, cap;
  bool fail;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) NDE__PRINTF(2, 3);
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->fail) return;
  va_list ap;
  va_start(ap, fmt);
  char *s = vformat(fmt, ap);
  va_end(ap);
  if (!s) {
    b->fail = true;
    return;
  }
  size_t k = strlen(s);
  if (b->n + k + 1 > b->cap) {
    size_t cap = 2 * (b->n + k + 1);
    char *ns = realloc(b->s, cap);
    if (!ns) {
      free(s);
      b->fail = true;
      return;
    }
    b->s = ns;
    b->cap = cap;
  }
  memcpy(b->s + b->n, s, k + 1);
  b->n += k;
  free(s);
}

char *nde__diags_format(const nde__diags *d) {
  sbuf b = {0};
  sb_printf(&b, "%s", "");
  for (int i = 0; i < d->n; i++) {
    const nde__diag *g = &d->items[i];
    sb_printf(&b, "%s:%d:%d: %s: %s\n", d->file, g->pos.line, g->pos.col,
              g->is_note ? "note" : "error", g->message);
    sb_printf(&b, "%5d | %s\n      | %*s^\n", g->pos.line, g->source_line, g->pos.col - 1, "");
  }
  if (d->n_errors > NDE__MAX_ERRORS)
    sb_printf(&b, "%s: %d more error%s not shown\n", d->file, d->n_errors - NDE__MAX_ERRORS,
              d->n_errors - NDE__MAX_ERRORS == 1 ? "" : "s");
  if (b.fail) {
    free(b.s);
    return NULL;
  }
  return b.s;
}
