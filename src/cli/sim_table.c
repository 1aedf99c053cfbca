/* The table of `nde simulate --series TABLE.csv`: one row per series, whose columns override the
 * defaults of the options that apply to one series (--u0, --param, --const, --inputs, --seed)
 * and name the series' group.  Every bad table is one message naming the file, line and
 * column and what was expected. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_table.h"

enum { COL_NAME, COL_SEED, COL_INPUTS, COL_STATE, COL_PARAM, COL_CONST };

typedef struct column {
  int kind;
  int index;  /* COL_CONST: the constant's column in a series' constants */
  char *name;
  int at;     /* its column (1-based) in the header line */
} column;

/* The names a column may have, for the message about an unknown one. */
static char *column_names(const nde_model *m) {
  nde_str s = NDE_STR_INIT;
  nde_str_adds(&s, "name, seed");
  if (nde_model_n_inputs(m) > 0) nde_str_adds(&s, ", inputs");
  const int n = nde_model_state_dim(m);
  for (int j = 0; j < n && j < 24; j++) nde_str_addf(&s, ", %s", nde_model_component_name(m, j));
  if (n > 24) nde_str_addf(&s, ", ... (%d state components)", n);
  for (int i = 0; i < nde_model_n_params(m); i++) {
    nde_model_param_info p;
    nde_model_get_param(m, i, &p);
    if (p.learnable) nde_str_addf(&s, ", %s", p.name);
  }
  for (int i = 0; i < nde_model_n_consts(m); i++) {
    nde_model_const_info c;
    nde_model_get_const(m, i, &c);
    if (c.from_data) nde_str_addf(&s, ", %s", c.name);
  }
  return nde_str_take(&s);
}

/* What a header name is: *col filled, or the message and 2. */
static int classify(const char *path, long line, const nde_cli_field *f, const nde_model *m,
                    column *col) {
  const int len = (int)(f->e - f->b);
  if (!(col->name = malloc((size_t)len + 1))) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  memcpy(col->name, f->b, (size_t)len);
  col->name[len] = '\0';
  col->at = f->at;
  const char *name = col->name;
  if (!len) {
    nde_cli_error("--series %s:%ld:%d: an empty column name (expected a name for every column of "
                  "the header)", path, line, f->at);
    return NDE_EXIT_INPUT;
  }
  const int comp = nde_model_find_component(m, name), par = nde_model_find_param(m, name);
  const int cst = nde_model_find_const(m, name);
  const char *reserved = !strcmp(name, "name")     ? "the group name"
                         : !strcmp(name, "seed")   ? "the noise seed"
                         : !strcmp(name, "inputs") ? "the inputs file"
                                                   : NULL;
  if (reserved && (comp >= 0 || par >= 0 || cst >= 0)) {
    nde_cli_error("--series %s:%ld:%d: column '%s' is both %s of a series and a %s of %s "
                  "(expected names that say one thing: rename it in the model)", path, line,
                  f->at, name, reserved,
                  comp >= 0 ? "state" : par >= 0 ? "parameter" : "constant", nde_model_filename(m));
    return NDE_EXIT_INPUT;
  }
  if (reserved) {
    col->kind = !strcmp(name, "name") ? COL_NAME : !strcmp(name, "seed") ? COL_SEED : COL_INPUTS;
    if (col->kind == COL_INPUTS && nde_model_n_inputs(m) == 0) {
      nde_cli_error("--series %s:%ld:%d: column 'inputs', but %s declares no measured inputs "
                    "(expected 'input NAME' in the model, or no such column)", path, line, f->at,
                    nde_model_filename(m));
      return NDE_EXIT_INPUT;
    }
    return 0;
  }
  if (comp >= 0) {
    col->kind = COL_STATE;
    return 0;
  }
  if (par >= 0) {
    nde_model_param_info p;
    nde_model_get_param(m, par, &p);
    col->kind = COL_PARAM;
    if (p.learnable) return 0;
    nde_cli_error("--series %s:%ld:%d: %s is fixed in %s (line %d) and cannot be varied (expected "
                  "a learnable parameter; remove '(fixed)' there to vary it)", path, line, f->at,
                  name, nde_model_filename(m), p.line);
    return NDE_EXIT_INPUT;
  }
  if (cst >= 0) {
    nde_model_const_info c;
    nde_model_get_const(m, cst, &c);
    col->kind = COL_CONST;
    col->index = c.column;
    if (c.from_data) return 0;
    nde_cli_error("--series %s:%ld:%d: %s is a constant written in %s (expected constants "
                  "declared '(from data)')", path, line, f->at, name, nde_model_filename(m));
    return NDE_EXIT_INPUT;
  }
  char *names = column_names(m);
  nde_cli_error("--series %s:%ld:%d: unknown column '%s' (expected one of %s)", path, line, f->at,
                name, names ? names : "name, seed and the model's states and parameters");
  nde_free(names);
  return NDE_EXIT_INPUT;
}

/* A series' name and its row, sorted by name and then by row: a total order, so that qsort
 * (not stable) puts the rows of one name in table order. */
typedef struct named_row {
  const char *name;
  int row;
} named_row;

static int cmp_named_row(const void *pa, const void *pb) {
  const named_row *a = pa, *b = pb;
  const int c = strcmp(a->name, b->name);
  return c ? c : (a->row > b->row) - (a->row < b->row);
}

/* Two series with one name: the message naming the later row of the first such pair in table
 * order, and 2. */
static int check_distinct(const char *path, const nde_cli_sim_table *t, int name_at) {
  named_row *idx = malloc(((size_t)t->n + 1) * sizeof *idx);
  if (!idx) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  for (int k = 0; k < t->n; k++) idx[k] = (named_row){t->names[k], k};
  qsort(idx, (size_t)t->n, sizeof *idx, cmp_named_row);
  int later = -1, first = 0;
  for (int q = 1; q < t->n; q++)
    if (!strcmp(idx[q].name, idx[q - 1].name) && (later < 0 || idx[q].row < later))
      later = idx[q].row;
  if (later >= 0) {
    /* The first row of that name. */
    for (int k = 0; k < later; k++)
      if (!strcmp(t->names[k], t->names[later])) {
        first = k;
        break;
      }
    nde_cli_error("--series %s:%ld:%d: the name '%s' is already the series of line %ld "
                  "(expected a distinct group name per series)", path, t->line[later], name_at,
                  t->names[later], t->line[first]);
  }
  free(idx);
  return later >= 0 ? NDE_EXIT_INPUT : 0;
}

/* p relative to the directory of the table (unchanged when absolute or the table has none). */
static char *resolve(const char *table, const char *p, size_t len) {
  nde_str s = NDE_STR_INIT;
  const char *slash = strrchr(table, '/');
  if (*p != '/' && slash) nde_str_add(&s, table, (size_t)(slash - table) + 1);
  nde_str_add(&s, p, len);
  return nde_str_take(&s);
}

/* Grow the per-row arrays of t to hold cap rows. */
static int grow(nde_cli_sim_table *t, int cap, size_t ns, size_t nth, size_t ndc) {
  char **names = realloc(t->names, (size_t)cap * sizeof *names);
  if (names) t->names = names;
  long *line = realloc(t->line, (size_t)cap * sizeof *line);
  if (line) t->line = line;
  double *u0 = realloc(t->u0, (size_t)cap * (ns ? ns : 1) * sizeof *u0);
  if (u0) t->u0 = u0;
  double *th = realloc(t->theta, (size_t)cap * (nth ? nth : 1) * sizeof *th);
  if (th) t->theta = th;
  double *cs = realloc(t->consts, (size_t)cap * (ndc ? ndc : 1) * sizeof *cs);
  if (cs) t->consts = cs;
  uint64_t *seed = realloc(t->seed, (size_t)cap * sizeof *seed);
  if (seed) t->seed = seed;
  char **inputs = realloc(t->inputs, (size_t)cap * sizeof *inputs);
  if (inputs) t->inputs = inputs;
  return names && line && u0 && th && cs && seed && inputs ? 0 : -1;
}

void nde_cli_sim_table_free(nde_cli_sim_table *t) {
  for (int k = 0; k < t->n; k++) {
    nde_free(t->names[k]);
    nde_free(t->inputs[k]);
  }
  free(t->names);
  free(t->line);
  free(t->u0);
  free(t->theta);
  free(t->consts);
  free(t->seed);
  free(t->inputs);
  memset(t, 0, sizeof *t);
}

/* One row's value of column c (field f at line) into row k of t.  0, or the message and the
 * exit code. */
static int put_value(const char *path, long line, const nde_cli_field *f, const column *c,
                     const nde_model *m, nde_cli_sim_table *t, int k) {
  const int len = (int)(f->e - f->b);
  const size_t ns = (size_t)nde_model_state_dim(m), nth = nde_model_n_theta_full(m, 1);
  const size_t ndc = (size_t)nde_model_n_data_consts(m);
  if (c->kind == COL_NAME || c->kind == COL_INPUTS) {
    char *s = c->kind == COL_NAME ? malloc((size_t)len + 1) : resolve(path, f->b, (size_t)len);
    if (!s) {
      nde_cli_error("out of memory");
      return NDE_EXIT_IO;
    }
    if (c->kind == COL_NAME) {
      memcpy(s, f->b, (size_t)len);
      s[len] = '\0';
    }
    if (c->kind == COL_NAME) {
      nde_free(t->names[k]);
      t->names[k] = s;
    } else {
      nde_free(t->inputs[k]);
      t->inputs[k] = s;
    }
    if (c->kind == COL_NAME && !nde_cli_group_name_ok(s)) {
      nde_cli_error("--series %s:%ld:%d: '%.*s' is not a group name (expected "
                    NDE_CLI_GROUP_NAME_RULE ")", path, line, f->at, len, f->b);
      return NDE_EXIT_INPUT;
    }
    if (c->kind == COL_INPUTS && !len) {
      nde_cli_error("--series %s:%ld:%d: an empty inputs file (expected FILE.csv or "
                    "DATA.h5[:/GROUP], relative to the table's directory)", path, line, f->at);
      return NDE_EXIT_INPUT;
    }
    return 0;
  }
  if (c->kind == COL_SEED) {
    /* The digits themselves, so that a seed just above 2^53 is refused, not rounded. */
    char num[64];
    long long v = -1;
    if (len > 0 && len < (int)sizeof num) {
      memcpy(num, f->b, (size_t)len);
      num[len] = '\0';
      if (!nde_cli_whole_number(num, &v)) v = -1;
    }
    if (!(v >= 0 && v <= 9007199254740992LL)) {
      nde_cli_error("--series %s:%ld:%d: seed: expected a whole number in [0, 9007199254740992], "
                    "got '%.*s'", path, line, f->at, len, f->b);
      return NDE_EXIT_INPUT;
    }
    t->seed[k] = (uint64_t)v;
    return 0;
  }
  if (c->kind == COL_CONST) {
    char *end = NULL;
    const double v = len ? strtod(f->b, &end) : NAN;
    if (!len || end != f->e || !isfinite(v)) {
      nde_cli_error("--series %s:%ld:%d: %s: expected a finite number, got '%.*s'", path, line,
                    f->at, c->name, len, f->b);
      return NDE_EXIT_INPUT;
    }
    t->consts[(size_t)k * ndc + (size_t)c->index] = v;
    return 0;
  }
  /* A state or a parameter: checked by the parsers of --u0 and --param, the option being the
   * table's place. */
  nde_str label = NDE_STR_INIT, spec = NDE_STR_INIT;
  nde_str_addf(&label, "--series %s:%ld:%d", path, line, f->at);
  nde_str_addf(&spec, "%s=%.*s", c->name, len, f->b);
  int code;
  if (label.failed || spec.failed) {
    nde_cli_error("out of memory");
    code = NDE_EXIT_IO;
  } else if (c->kind == COL_STATE) {
    code = nde_cli_parse_state(label.data, spec.data, m, t->u0 + (size_t)k * ns);
  } else {
    code = nde_cli_parse_params(label.data, spec.data, m, 1, t->theta + (size_t)k * nth);
  }
  nde_str_release(&label);
  nde_str_release(&spec);
  return code;
}

int nde_cli_sim_table_read(const char *path, const nde_model *m, const nde_cli_sim_defaults *d,
                           nde_cli_sim_table *t) {
  memset(t, 0, sizeof *t);
  FILE *f = fopen(path, "rb");
  if (!f) {
    nde_cli_error("--series %s: cannot open (%s)", path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  const size_t ns = (size_t)nde_model_state_dim(m), nth = nde_model_n_theta_full(m, 1);
  const size_t ndc = (size_t)nde_model_n_data_consts(m);
  column *cols = NULL;
  nde_cli_field *fs = NULL;
  int n_cols = 0, fcap = 0, nf = 0, code = 0, cap = 0, name_at = 0;
  long lineno = 0, header_line = 0;
  size_t line_cap = 0;
  char *line = NULL, *header_text = NULL;
  double *cdef = calloc(ndc + 1, sizeof *cdef);
  unsigned char *cgiven = calloc(ndc + 1, 1);
  if (!cdef || !cgiven) goto nomem;
  while (!code && getline(&line, &line_cap, f) >= 0) {
    lineno++;
    const char *s = nde_cli_csv_content(line, lineno);
    if (!s) continue;
    if (nde_cli_csv_split(s, &fs, &fcap, &nf)) goto nomem;
    if (!header_line) {
      header_line = lineno;
      const size_t hl = strcspn(s, "\r\n");
      if (!(cols = calloc((size_t)nf, sizeof *cols)) || !(header_text = malloc(hl + 1))) goto nomem;
      memcpy(header_text, s, hl);
      header_text[hl] = '\0';
      for (int c = 0; c < nf && !code; c++) {
        n_cols = c + 1;
        if ((code = classify(path, lineno, &fs[c], m, &cols[c]))) break;
        for (int q = 0; q < c && !code; q++)
          if (!strcmp(cols[q].name, cols[c].name)) {
            nde_cli_error("--series %s:%ld:%d: column '%s' is repeated (first at column %d; "
                          "expected each column once)", path, lineno, fs[c].at, cols[c].name,
                          cols[q].at);
            code = NDE_EXIT_INPUT;
          }
        if (cols[c].kind == COL_NAME) name_at = c + 1;
        if (cols[c].kind == COL_INPUTS) t->inputs_col = c + 1;
        if (cols[c].kind == COL_CONST) cgiven[cols[c].index] = 1;
      }
      if (code) break;
      /* --const gives what the table does not (and may give defaults for what it does). */
      unsigned char *from_opt = calloc(ndc + 1, 1);
      if (!from_opt) goto nomem;
      code = nde_cli_parse_consts_given("--const", d->const_spec, m, cdef, from_opt);
      for (int i = 0; i < nde_model_n_consts(m) && !code; i++) {
        nde_model_const_info c;
        nde_model_get_const(m, i, &c);
        if (c.from_data && !cgiven[c.column] && !from_opt[c.column]) {
          nde_cli_error("--const: no value for the constant '%s' (expected %s=VALUE, or a column "
                        "%s in %s: it is declared '(from data)')", c.name, c.name, c.name, path);
          code = NDE_EXIT_INPUT;
        }
      }
      free(from_opt);
      continue;
    }
    /* A series. */
    if (nf != n_cols) {
      const int at = nf > n_cols ? fs[n_cols].at : (int)strcspn(s, "\r\n") + 1;
      nde_cli_error("--series %s:%ld:%d: %d field%s (expected %d, one per column of the header "
                    "%s)", path, lineno, at, nf, nf == 1 ? "" : "s", n_cols, header_text);
      code = NDE_EXIT_INPUT;
      break;
    }
    if (t->n == cap) {
      if (cap >= 1 << 24) {
        nde_cli_error("--series %s:%ld: more than %d series (expected fewer rows)", path, lineno,
                      1 << 24);
        code = NDE_EXIT_INPUT;
        break;
      }
      cap = cap ? 2 * cap : 64;
      if (grow(t, cap, ns, nth, ndc)) goto nomem;
    }
    const int k = t->n++;
    t->names[k] = NULL;
    t->inputs[k] = NULL;
    t->line[k] = lineno;
    if (ns) memcpy(t->u0 + (size_t)k * ns, d->u0, ns * sizeof *t->u0);
    if (nth) memcpy(t->theta + (size_t)k * nth, d->theta, nth * sizeof *t->theta);
    if (ndc) memcpy(t->consts + (size_t)k * ndc, cdef, ndc * sizeof *t->consts);
    t->seed[k] = nde_sim_series_seed(d->seed, k);
    for (int c = 0; c < n_cols && !code; c++)
      code = put_value(path, lineno, &fs[c], &cols[c], m, t, k);
  }
  if (!code && !header_line) {
    nde_cli_error("--series %s: empty (expected a header of columns, e.g. name,%s,seed, and one "
                  "row per series)", path, nde_model_state_dim(m) ? nde_model_component_name(m, 0)
                                                                  : "x");
    code = NDE_EXIT_INPUT;
  } else if (!code && t->n == 0) {
    nde_cli_error("--series %s: no series (expected at least one row after the header %s)", path,
                  header_text);
    code = NDE_EXIT_INPUT;
  }
  if (!code && ferror(f)) {
    nde_cli_error("--series %s: cannot read (%s)", path, strerror(errno));
    code = NDE_EXIT_INPUT;
  }
  /* Names: given, or s01, s02, ... wide enough that name order is row order. */
  if (!code && !name_at) {
    int width = 2;
    for (int q = t->n; q >= 100; q /= 10) width++;
    for (int k = 0; k < t->n && !code; k++) {
      nde_str s = NDE_STR_INIT;
      nde_str_addf(&s, "s%0*d", width, k + 1);
      if (!(t->names[k] = nde_str_take(&s))) goto nomem;
    }
  }
  if (!code && name_at) code = check_distinct(path, t, cols[name_at - 1].at);
  goto done;
nomem:
  nde_cli_error("out of memory reading %s", path);
  code = NDE_EXIT_IO;
done:
  for (int c = 0; c < n_cols; c++) free(cols[c].name);
  free(cols);
  free(fs);
  free(line);
  free(header_text);
  free(cdef);
  free(cgiven);
  fclose(f);
  if (code) nde_cli_sim_table_free(t);
  return code;
}
