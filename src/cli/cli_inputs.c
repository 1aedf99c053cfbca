/* Measured inputs and constants from data given on the command line: --inputs FILE.csv (a
 * header "t,NAME,..." and one row per sample) or DATA.h5[:/group] (the inputs of one series of a
 * data file), and --const NAME=V,... for the model's constants from data. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void nde_cli_inputs_free(nde_cli_inputs *in) {
  free(in->t);
  free(in->u);
  memset(in, 0, sizeof *in);
}

static int is_hdf5(const char *path) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  const int yes = fread(head, 1, 8, f) == 8 && !memcmp(head, sig, 8);
  fclose(f);
  return yes;
}

const char *nde_cli_csv_content(const char *line, long lineno) {
  if (lineno == 1 && !strncmp(line, "\xef\xbb\xbf", 3)) line += 3;
  const char *p = line;
  while (*p == ' ' || *p == '\t') p++;
  return *p == '#' || *p == '\n' || *p == '\r' || *p == '\0' ? NULL : line;
}

int nde_cli_csv_split(const char *line, nde_cli_field **f, int *cap, int *n) {
  *n = 0;
  for (const char *p = line;;) {
    const char *b = p, *e = p + strcspn(p, ",\n");
    const char *next = *e == ',' ? e + 1 : NULL;
    while (b < e && (*b == ' ' || *b == '\t')) b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    if (*n == *cap) {
      const int c = *cap ? 2 * *cap : 16;
      nde_cli_field *g = realloc(*f, (size_t)c * sizeof *g);
      if (!g) return -1;
      *f = g;
      *cap = c;
    }
    (*f)[(*n)++] = (nde_cli_field){b, e, (int)(b - line) + 1};
    if (!next) return 0;
    p = next;
  }
}

/* The inputs of a CSV file: header t,NAME,...; every model input must be a column. */
static int from_csv(const char *opt, const char *path, const nde_model *m, nde_cli_inputs *in) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    nde_cli_error("%s: %s: cannot open (%s)", opt, path, strerror(errno));
    return NDE_EXIT_INPUT;
  }
  const int mi = nde_model_n_inputs(m);
  int *col = NULL; /* input i is in CSV field col[i] */
  int n_fields = 0, code = 0, header = 0, fcap = 0, nf = 0;
  long lineno = 0;
  size_t cap = 0, line_cap = 0;
  char *line = NULL;
  double *row = NULL;
  nde_cli_field *fs = NULL;
  col = malloc((size_t)mi * sizeof *col);
  if (!col) goto nomem;
  for (int i = 0; i < mi; i++) col[i] = -1;
  while (!code && getline(&line, &line_cap, f) >= 0) {
    lineno++;
    const char *s = nde_cli_csv_content(line, lineno);
    if (!s) continue;
    if (nde_cli_csv_split(s, &fs, &fcap, &nf)) goto nomem;
    if (!header) {
      /* t, then names matched to the model's inputs. */
      header = 1;
      for (int field = 0; field < nf; field++) {
        const char *b = fs[field].b;
        const int len = (int)(fs[field].e - b);
        if (field == 0 && !(len == 1 && *b == 't')) {
          nde_cli_error("%s: %s:%ld:1: the first column must be 't' (expected a header "
                        "t,NAME,..., got '%.*s')", opt, path, lineno, len, b);
          code = NDE_EXIT_INPUT;
          break;
        }
        if (field > 0) {
          int found = -1;
          for (int i = 0; i < mi; i++) {
            nde_model_input_info ii;
            nde_model_get_input(m, i, &ii);
            if ((int)strlen(ii.name) == len && !strncmp(ii.name, b, (size_t)len)) found = i;
          }
          if (found < 0 || col[found] >= 0) {
            nde_cli_error("%s: %s:%ld:%d: column '%.*s' %s (expected each of the model's inputs "
                          "once)", opt, path, lineno, fs[field].at, len, b,
                          found < 0 ? "is not an input of the model" : "is repeated");
            code = NDE_EXIT_INPUT;
            break;
          }
          col[found] = field;
        }
      }
      n_fields = nf;
      for (int i = 0; !code && i < mi; i++)
        if (col[i] < 0) {
          nde_model_input_info ii;
          nde_model_get_input(m, i, &ii);
          nde_cli_error("%s: %s:%ld: no column '%s' (expected every input of the model)", opt,
                        path, lineno, ii.name);
          code = NDE_EXIT_INPUT;
        }
      if (!code && !(row = malloc((size_t)n_fields * sizeof *row))) goto nomem;
      continue;
    }
    /* A sample: n_fields numbers. */
    for (int field = 0; field < nf; field++) {
      const char *b = fs[field].b, *e = fs[field].e;
      char *end;
      errno = 0;
      const double v = field < n_fields ? strtod(b, &end) : NAN;
      if (field >= n_fields || end != e || b == e || !isfinite(v)) {
        nde_cli_error("%s: %s:%ld:%d: expected %d finite numbers per row (t and the inputs), got "
                      "'%.*s'", opt, path, lineno, fs[field].at, n_fields,
                      (int)(e - b), b);
        code = NDE_EXIT_INPUT;
        break;
      }
      row[field] = v;
    }
    if (code) break;
    if (nf != n_fields) {
      nde_cli_error("%s: %s:%ld: %d values (expected %d: t and the inputs)", opt, path, lineno,
                    nf, n_fields);
      code = NDE_EXIT_INPUT;
      break;
    }
    if (in->n && !(row[0] > in->t[in->n - 1])) {
      nde_cli_error("%s: %s:%ld: time %g is not after %g (expected strictly increasing times)",
                    opt, path, lineno, row[0], in->t[in->n - 1]);
      code = NDE_EXIT_INPUT;
      break;
    }
    if (in->n == cap) {
      cap = cap ? 2 * cap : 256;
      double *t = realloc(in->t, cap * sizeof *t);
      if (t) in->t = t;
      double *u = t ? realloc(in->u, cap * (size_t)(mi ? mi : 1) * sizeof *u) : NULL;
      if (!u) goto nomem;
      in->u = u;
    }
    in->t[in->n] = row[0];
    for (int i = 0; i < mi; i++) in->u[in->n * (size_t)mi + (size_t)i] = row[col[i]];
    in->n++;
  }
  if (!code && !header) {
    nde_cli_error("%s: %s: empty (expected a header t,NAME,... and one row per sample)", opt, path);
    code = NDE_EXIT_INPUT;
  } else if (!code && in->n == 0) {
    nde_cli_error("%s: %s: no samples (expected at least one row after the header)", opt, path);
    code = NDE_EXIT_INPUT;
  }
  goto done;
nomem:
  nde_cli_error("out of memory reading %s", path);
  code = NDE_EXIT_IO;
done:
  free(line);
  free(fs);
  free(col);
  free(row);
  fclose(f);
  if (code) nde_cli_inputs_free(in);
  return code;
}

/* The inputs of one series of a data file (FILE.h5 with one series, or FILE.h5:/group). */
static int from_h5(const char *opt, const char *path, const nde_model *m, nde_cli_inputs *in) {
  nde_data *d = NULL;
  nde_error err;
  const nde_data_opts o = nde_data_opts_default();
  nde_status st = nde_data_open(path, 0, NULL, &o, &d, &err);
  if (st != NDE_OK) {
    nde_cli_error("%s: %s", opt, err.msg);
    return nde_cli_input_exit(st);
  }
  int code = 0;
  const int mi = nde_model_n_inputs(m);
  if (nde_data_n_traj(d) != 1) {
    nde_cli_error("%s: %s: %zu series (expected one: choose it with %s:/GROUP)", opt, path,
                  nde_data_n_traj(d), path);
    code = NDE_EXIT_INPUT;
    goto done;
  }
  const nde_traj *tr = nde_data_traj(d, 0);
  in->n = tr->n_u;
  in->t = malloc((tr->n_u + 1) * sizeof *in->t);
  in->u = malloc((tr->n_u * (size_t)mi + 1) * sizeof *in->u);
  if (!in->t || !in->u) {
    nde_cli_error("out of memory reading %s", path);
    code = NDE_EXIT_IO;
    goto done;
  }
  if (tr->n_u) memcpy(in->t, tr->u_t, tr->n_u * sizeof *in->t);
  for (int i = 0; i < mi && !code; i++) {
    nde_model_input_info ii;
    nde_model_get_input(m, i, &ii);
    size_t q = 0;
    while (q < tr->n_inputs && strcmp(tr->input_names[q], ii.name)) q++;
    if (q == tr->n_inputs) {
      nde_cli_error("%s: %s:%s/inputs/u: no input '%s' (expected every input of the model in "
                    "attribute input_names)", opt, path, strcmp(tr->name, "/") ? tr->name : "",
                    ii.name);
      code = NDE_EXIT_INPUT;
      break;
    }
    for (size_t k = 0; k < tr->n_u; k++)
      in->u[k * (size_t)mi + (size_t)i] = tr->u[k * tr->n_inputs + q];
  }
done:
  nde_data_destroy(&d);
  if (code) nde_cli_inputs_free(in);
  return code;
}

int nde_cli_read_inputs(const char *opt, const char *path, const nde_model *m,
                        nde_cli_inputs *in) {
  memset(in, 0, sizeof *in);
  if (nde_model_n_inputs(m) == 0) {
    nde_cli_error("%s: the model declares no measured inputs (expected 'input NAME' in %s)", opt,
                  nde_model_filename(m));
    return NDE_EXIT_INPUT;
  }
  /* FILE.h5:/group selects a series; the file part decides the format. */
  const char *sel = strstr(path, ":/");
  char *file = NULL;
  if (sel && !is_hdf5(path)) {
    file = malloc((size_t)(sel - path) + 1);
    if (!file) {
      nde_cli_error("out of memory");
      return NDE_EXIT_IO;
    }
    memcpy(file, path, (size_t)(sel - path));
    file[sel - path] = '\0';
  }
  const int h5 = is_hdf5(file ? file : path);
  free(file);
  return h5 ? from_h5(opt, path, m, in) : from_csv(opt, path, m, in);
}

int nde_cli_parse_consts_given(const char *opt, const char *spec, const nde_model *m,
                               double *consts, unsigned char *given) {
  for (const char *p = spec; p && *p;) {
    const char *e = p + strcspn(p, ",");
    const char *eq = memchr(p, '=', (size_t)(e - p));
    nde_model_const_info info = {0};
    int idx = -1;
    if (eq)
      for (int i = 0; i < nde_model_n_consts(m); i++) {
        nde_model_const_info c;
        nde_model_get_const(m, i, &c);
        if ((size_t)(eq - p) == strlen(c.name) && !strncmp(c.name, p, (size_t)(eq - p))) {
          idx = i;
          info = c;
        }
      }
    char *end = NULL;
    const double v = eq ? strtod(eq + 1, &end) : NAN;
    if (!eq || idx < 0 || !info.from_data) {
      nde_cli_error("%s: '%.*s' %s (expected NAME=VALUE for constants declared '(from data)')",
                    opt, (int)(e - p), p,
                    !eq ? "has no '='" : idx < 0 ? "names no constant of the model"
                                                 : "is a constant written in the model");
      return NDE_EXIT_INPUT;
    }
    if (end != e || !isfinite(v)) {
      nde_cli_error("%s: %s: expected a finite number, got '%.*s'", opt, info.name,
                    (int)(e - eq - 1), eq + 1);
      return NDE_EXIT_INPUT;
    }
    if (given[info.column]) {
      nde_cli_error("%s: %s is given twice (expected each name once)", opt, info.name);
      return NDE_EXIT_INPUT;
    }
    given[info.column] = 1;
    consts[info.column] = v;
    p = *e ? e + 1 : e;
  }
  return 0;
}

int nde_cli_parse_consts(const char *opt, const char *spec, const nde_model *m, double *consts) {
  unsigned char *seen = calloc((size_t)nde_model_n_data_consts(m) + 1, 1);
  if (!seen) {
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  int code = nde_cli_parse_consts_given(opt, spec, m, consts, seen);
  for (int i = 0; i < nde_model_n_consts(m) && !code; i++) {
    nde_model_const_info c;
    nde_model_get_const(m, i, &c);
    if (c.from_data && !seen[c.column]) {
      nde_cli_error("%s: no value for the constant '%s' (expected %s=VALUE: it is declared "
                    "'(from data)')", opt, c.name, c.name);
      code = NDE_EXIT_INPUT;
    }
  }
  free(seen);
  return code;
}

int nde_cli_split_names(const char *opt, const char *spec, char **buf, const char ***names,
                        int *n) {
  *buf = NULL;
  *names = NULL;
  *n = 0;
  if (!spec) return 0;
  const size_t len = strlen(spec);
  int count = 1;
  for (const char *p = spec; *p; p++) count += *p == ',';
  *buf = malloc(len + 1);
  *names = calloc((size_t)count + 1, sizeof **names);
  if (!*buf || !*names) {
    free(*buf);
    free(*names);
    *buf = NULL;
    *names = NULL;
    nde_cli_error("out of memory");
    return NDE_EXIT_IO;
  }
  memcpy(*buf, spec, len + 1);
  char *p = *buf;
  for (int k = 0; k < count; k++) {
    char *e = p + strcspn(p, ",");
    const int last = *e == '\0';
    *e = '\0';
    while (*p == ' ') p++;
    for (char *q = e; q > p && q[-1] == ' ';) *--q = '\0';
    if (!*p) {
      nde_cli_error("%s: empty name in '%s' (expected NAME,NAME,...)", opt, spec);
      return NDE_EXIT_INPUT;
    }
    for (int j = 0; j < k; j++)
      if (!strcmp((*names)[j], p)) {
        nde_cli_error("%s: %s is given twice (expected each name once)", opt, p);
        return NDE_EXIT_INPUT;
      }
    (*names)[k] = p;
    p = last ? e : e + 1;
  }
  *n = count;
  return 0;
}
