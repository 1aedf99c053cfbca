/* The growable string, the shortest round-trip number printer, and nde_free: small text helpers
 * every layer and the program share, so that no caller sizes a buffer by guesswork. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void nde_free(void *p) { free(p); }

static int reserve(nde_str *s, size_t extra) {
  if (s->failed) return -1;
  size_t need;
  if (!nde__add_size(s->len, extra, &need) || !nde__add_size(need, 1, &need)) {
    s->failed = 1;
    return -1;
  }
  if (need <= s->cap) return 0;
  size_t cap = s->cap ? s->cap : 64;
  while (cap < need) {
    if (cap > SIZE_MAX / 2) {
      cap = need;
      break;
    }
    cap *= 2;
  }
  char *p = realloc(s->data, cap);
  if (!p) {
    s->failed = 1;
    return -1;
  }
  s->data = p;
  s->cap = cap;
  return 0;
}

void nde_str_add(nde_str *s, const char *text, size_t len) {
  if (!s || reserve(s, len)) return;
  if (len) memcpy(s->data + s->len, text, len);
  s->len += len;
  s->data[s->len] = '\0';
}

void nde_str_adds(nde_str *s, const char *text) { nde_str_add(s, text, text ? strlen(text) : 0); }

void nde_str_vaddf(nde_str *s, const char *fmt, va_list ap) {
  if (!s || s->failed) return;
  va_list ap2;
  va_copy(ap2, ap);
  const int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    s->failed = 1;
    return;
  }
  if (reserve(s, (size_t)n)) return;
  vsnprintf(s->data + s->len, (size_t)n + 1, fmt, ap);
  s->len += (size_t)n;
}

void nde_str_addf(nde_str *s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  nde_str_vaddf(s, fmt, ap);
  va_end(ap);
}

char *nde_str_take(nde_str *s) {
  if (!s) return NULL;
  if (s->failed) {
    nde_str_release(s);
    return NULL;
  }
  char *p = s->data;
  if (!p) {
    p = malloc(1);
    if (p) p[0] = '\0';
  }
  s->data = NULL;
  s->len = s->cap = 0;
  return p;
}

void nde_str_release(nde_str *s) {
  if (!s) return;
  free(s->data);
  s->data = NULL;
  s->len = s->cap = 0;
  s->failed = 0;
}

char *nde_num_str(double v, char *buf) {
  if (isnan(v)) return strcpy(buf, "nan");
  if (isinf(v)) return strcpy(buf, v > 0 ? "inf" : "-inf");
  /* Plain notation for ordinary magnitudes: 10, not 1e+01. */
  const int plain = fabs(v) >= 1e-4 && fabs(v) < 1e15;
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, NDE_NUM_MAX, "%.*g", prec, v);
    if (strtod(buf, NULL) == v && !(plain && strchr(buf, 'e'))) break;
  }
  return buf;
}
