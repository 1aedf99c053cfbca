/* The listing of an HDF5 file for nde inspect: every group and dataset with its type and shape,
 * small values, and every attribute. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int nde_cli_listing_collect(void *ctx, const nde_h5_object *obj) {
  nde_cli_listing *L = ctx;
  if (L->n == L->cap) {
    size_t cap = L->cap ? 2 * L->cap : 64;
    nde_cli_object *g = realloc(L->o, cap * sizeof *g);
    if (!g) {
      L->nomem = 1;
      return 1;
    }
    L->o = g;
    L->cap = cap;
  }
  nde_cli_object *o = &L->o[L->n];
  nde_str p = NDE_STR_INIT;
  nde_str_adds(&p, obj->path);
  if (!(o->path = nde_str_take(&p))) {
    L->nomem = 1;
    return 1;
  }
  o->kind = obj->kind;
  snprintf(o->type, sizeof o->type, "%s", obj->type ? obj->type : "");
  o->rank = obj->rank;
  memcpy(o->dims, obj->dims, sizeof o->dims);
  o->n_attrs = obj->n_attrs;
  o->same_as = NULL;
  if (obj->same_as) {
    nde_str q = NDE_STR_INIT;
    nde_str_adds(&q, obj->same_as);
    if (!(o->same_as = nde_str_take(&q))) {
      L->nomem = 1;
      return 1;
    }
  }
  L->n++;
  return 0;
}

void nde_cli_listing_free(nde_cli_listing *L) {
  for (size_t i = 0; i < L->n; i++) {
    nde_free(L->o[i].path);
    nde_free(L->o[i].same_as);
  }
  free(L->o);
}

static int is_numeric(const nde_cli_object *o) {
  return o->kind == NDE_H5_DATASET &&
         (!strncmp(o->type, "float", 5) || !strncmp(o->type, "int", 3) ||
          !strncmp(o->type, "uint", 4));
}

static size_t n_elems(const nde_cli_object *o) {
  size_t n = 1;
  for (int k = 0; k < o->rank; k++) n *= o->dims[k];
  return n;
}

static void print_shape(const nde_cli_object *o) {
  if (o->rank == 0) {
    printf("%s scalar", o->type);
    return;
  }
  printf("%s [", o->type);
  for (int k = 0; k < o->rank; k++) printf("%s%zu", k ? ", " : "", o->dims[k]);
  printf("]");
}

/* The first line of text (at most width characters) and how many lines there are. */
static void print_first_line(const char *text, int width) {
  size_t len = strcspn(text, "\n");
  int lines = 0;
  for (const char *p = text; *p; p++) lines += *p == '\n';
  if (*text && text[strlen(text) - 1] != '\n') lines++;
  printf("\"%.*s%s\"", (int)(len > (size_t)width ? (size_t)width : len), text,
         len > (size_t)width ? "..." : "");
  if (lines > 1) printf(" (%d lines)", lines);
}

void nde_cli_print_text_lines(const char *indent, const char *text, int max_lines) {
  int shown = 0;
  const char *p = text;
  while (*p && shown < max_lines) {
    size_t len = strcspn(p, "\n");
    printf("%s%.*s\n", indent, (int)len, p);
    shown++;
    p += len;
    if (*p == '\n') p++;
  }
  if (*p) {
    int rest = 0;
    for (const char *q = p; *q; q++) rest += *q == '\n';
    if (p[strlen(p) - 1] != '\n') rest++;
    printf("%s... (%d more line%s)\n", indent, rest, rest == 1 ? "" : "s");
  }
}



/* Every attribute of obj, one per line: strings (first line of long ones), integers, numbers. */
int nde_cli_print_attrs(nde_reader *r, const char *obj, const char *indent) {
  size_t n = 0;
  char **names = NULL;
  if (nde_reader_attr_names(r, obj, &n, &names) != NDE_OK) return 0;
  char b[NDE_NUM_MAX];
  for (size_t i = 0; i < n; i++) {
    const char *name = names[i];
    char *s = NULL;
    double d;
    int64_t k;
    if (nde_reader_get_attr_string(r, obj, name, &s) == NDE_OK) {
      printf("%s%s: ", indent, name);
      if (strchr(s, '\n')) print_first_line(s, 72);
      else printf("%s", s);
      printf("\n");
      free(s);
    } else if (nde_reader_get_attr_int64(r, obj, name, &k) == NDE_OK) {
      printf("%s%s: %lld\n", indent, name, (long long)k);
    } else if (nde_reader_get_attr_double(r, obj, name, &d) == NDE_OK) {
      printf("%s%s: %s\n", indent, name, nde_num_str(d, b));
    } else {
      printf("%s%s: (not a scalar)\n", indent, name);
    }
  }
  nde_free(names);
  return (int)n;
}

/* One line per group and dataset, with small values and every attribute shown. */
void nde_cli_print_contents(nde_reader *r, const nde_cli_listing *L) {
  char b[NDE_NUM_MAX];
  printf("contents:\n");
  printf("  /\n");
  nde_cli_print_attrs(r, "/", "    @");
  for (size_t i = 0; i < L->n; i++) {
    const nde_cli_object *o = &L->o[i];
    int depth = 0;
    for (const char *p = o->path + 1; *p; p++) depth += *p == '/';
    const char *base = strrchr(o->path, '/') + 1;
    printf("  %*s%s", 2 * depth, "", base);
    if (o->kind == NDE_H5_GROUP && o->same_as) {
      printf("/  (the group %s again: another link to it, not listed twice)\n", o->same_as);
    } else if (o->kind == NDE_H5_GROUP) {
      printf("/\n");
    } else if (o->kind == NDE_H5_DATASET) {
      printf("  ");
      print_shape(o);
      const size_t n = n_elems(o);
      uint64_t w[6];
      if (!strcmp(o->type, "uint64") && n >= 1 && n <= 6 &&
          nde_reader_get_uint64s(r, o->path, n, w) == NDE_OK) {
        printf(" = ");
        if (o->rank) printf("[");
        for (size_t k = 0; k < n; k++) printf("%s%llu", k ? ", " : "", (unsigned long long)w[k]);
        if (o->rank) printf("]");
      } else if (is_numeric(o) && n >= 1 && n <= 6) {
        double v[6];
        if (nde_reader_get_doubles(r, o->path, n, v) == NDE_OK) {
          printf(" = ");
          if (o->rank) printf("[");
          for (size_t k = 0; k < n; k++) printf("%s%s", k ? ", " : "", nde_num_str(v[k], b));
          if (o->rank) printf("]");
        }
      } else if (!strcmp(o->type, "string") && o->rank == 0) {
        char *s = NULL;
        if (nde_reader_get_string(r, o->path, &s) == NDE_OK) {
          printf(" = ");
          print_first_line(s, 60);
          free(s);
        }
      } else if (!strcmp(o->type, "string") && o->rank == 1 && n <= 12) {
        size_t ns;
        char **strs = NULL;
        if (nde_reader_get_strings(r, o->path, &ns, &strs) == NDE_OK) {
          printf(" =");
          for (size_t k = 0; k < ns; k++) printf(" %s", strs[k]);
          free(strs);
        }
      }
      printf("\n");
    } else {
      printf("  (other object)\n");
    }
    if (o->n_attrs > 0) {
      nde_str indent = NDE_STR_INIT;
      nde_str_addf(&indent, "  %*s  @", 2 * depth, "");
      nde_cli_print_attrs(r, o->path, indent.data ? indent.data : "  @");
      nde_str_release(&indent);
    }
  }
}
