/* The compiled model: loading (lex -> parse -> check -> compile), accessors for states,
 * parameters, nets and the layout of theta, initial theta, and the rhs made from the tape. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lang.h"
#include "tape.h"

static char *dupstr(const char *s) {
  size_t n = strlen(s);
  char *r = malloc(n + 1);
  if (r) memcpy(r, s, n + 1);
  return r;
}

void nde__tape_free(nde__tape *T) {
  free(T->slots);
  free(T->code);
  free(T->concat_ops);
  free(T->unif_init);
  memset(T, 0, sizeof *T);
}

static void clear_tables(nde_model *m);

static void model_free(nde_model *m) {
  clear_tables(m);
  nde__diags_free(&m->diags);
  free(m->errmsg);
  free(m->file);
  free(m->src);
  free(m);
}

void nde__model_retain(nde_model *m) { m->refs++; }
void nde__model_release(nde_model *m) {
  if (m && --m->refs == 0) model_free(m);
}

void nde_model_destroy(nde_model **model) {
  if (!model || !*model) return;
  nde__model_release(*model);
  *model = NULL;
}

/* Drop everything a failed load may have half-built, keeping the messages. */
static void clear_tables(nde_model *m) {
  if (m->states)
    for (int i = 0; i < m->n_states; i++) {
      free(m->states[i].name);
      free(m->states[i].initial);
    }
  if (m->comp_names)
    for (int j = 0; j < m->n_state_total; j++) free(m->comp_names[j]);
  if (m->params)
    for (int i = 0; i < m->n_params; i++) free(m->params[i].name);
  if (m->nets)
    for (int i = 0; i < m->n_nets; i++) {
      free(m->nets[i].name);
      nde_net_destroy(&m->nets[i].net);
    }
  free(m->states);
  free(m->comp_names);
  free(m->params);
  free(m->nets);
  free(m->layout);
  m->states = NULL;
  m->comp_names = NULL;
  m->params = NULL;
  m->nets = NULL;
  m->layout = NULL;
  m->n_states = m->n_state_total = m->n_params = m->n_nets = m->n_layout = 0;
  m->n_theta = 0;
  nde__tape_free(&m->tape);
}

static nde_status compile_source(nde_model *m) {
  nde__token *toks = NULL;
  int n_toks = 0;
  nde__ast ast;
  memset(&ast, 0, sizeof ast);
  nde_status st = nde__lex(m->src, m->src_len, &m->diags, &toks, &n_toks);
  if (st == NDE_OK) st = nde__parse(toks, n_toks, &m->diags, &ast);
  /* Names and sizes are checked only on a syntactically clean file (no cascades). */
  if (st == NDE_OK && m->diags.n_errors == 0) st = nde__check(&ast, &m->diags);
  if (st == NDE_OK && m->diags.n_errors == 0) {
    m->n_params = ast.n_params;
    m->n_nets = ast.n_nets;
    st = nde__compile(&ast, &m->diags, m);
  }
  if (st == NDE_OK && m->diags.n_errors) st = m->diags.status;
  if (m->diags.nomem) st = NDE_ERR_NOMEM;
  free(toks);
  nde__ast_free(&ast);
  return st;
}

/* The first line of a failed load's messages into err. */
static nde_status export_first(const nde_model *m, nde_status st, nde_error *err) {
  if (!err || st == NDE_OK) return st;
  const char *msg = m && m->errmsg ? m->errmsg : nde_status_str(st);
  size_t len = strcspn(msg, "\n");
  return nde__fail(err, st, "%.*s", (int)(len < 1000 ? len : 1000), msg);
}

nde_status nde_model_load_string(const char *src, size_t len, const char *filename,
                                 nde_model **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_model_load_string: no output pointer");
  *out = NULL;
  if (!src) return nde__fail(err, NDE_ERR_ARG, "nde_model_load_string: no source text");
  nde_model *m = calloc(1, sizeof *m);
  if (!m) return nde__fail(err, NDE_ERR_NOMEM, "out of memory loading a model");
  m->refs = 1;
  m->file = dupstr(filename ? filename : "<string>");
  size_t keep = len > NDE_MODEL_MAX_FILE_BYTES ? 0 : len;
  m->src = malloc(keep + 1);
  if (!m->file || !m->src) {
    model_free(m);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory loading a model");
  }
  memcpy(m->src, src, keep);
  m->src[keep] = '\0';
  m->src_len = keep;
  m->diags.file = m->file;
  m->diags.src = m->src;
  m->diags.len = keep;
  nde_status st;
  if (len > NDE_MODEL_MAX_FILE_BYTES) {
    nde__diag_error(&m->diags, NDE_ERR_LIMIT, (nde__pos){1, 1, 0},
                    "file is %zu bytes, more than the limit of %u", len,
                    (unsigned)NDE_MODEL_MAX_FILE_BYTES);
    st = NDE_ERR_LIMIT;
  } else {
    st = compile_source(m);
  }
  if (st != NDE_OK) clear_tables(m);
  m->status = st;
  nde__diags_sort(&m->diags);
  m->errmsg = nde__diags_format(&m->diags);
  if (!m->errmsg) {
    model_free(m);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory loading a model");
  }
  *out = m;
  return export_first(m, st, err);
}

nde_status nde_model_load_file(const char *path, nde_model **out, nde_error *errp) {
  if (!out) return nde__fail(errp, NDE_ERR_ARG, "nde_model_load_file: no output pointer");
  *out = NULL;
  if (!path) return nde__fail(errp, NDE_ERR_ARG, "nde_model_load_file: no path");
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t n = 0;
  int err = 0;
  if (!f) {
    err = errno;
    goto io_fail;
  }
  /* Read at most one byte past the limit, so an oversized file is reported, not loaded. */
  buf = malloc(NDE_MODEL_MAX_FILE_BYTES + 2);
  if (!buf) {
    fclose(f);
    return nde__fail(errp, NDE_ERR_NOMEM, "out of memory loading a model");
  }
  n = fread(buf, 1, NDE_MODEL_MAX_FILE_BYTES + 1, f);
  if (ferror(f)) {
    err = errno ? errno : EIO;
    fclose(f);
    goto io_fail;
  }
  if (n > NDE_MODEL_MAX_FILE_BYTES) {
    /* Report the real size when the stream can tell it. */
    if (fseek(f, 0, SEEK_END) == 0) {
      long sz = ftell(f);
      if (sz > 0) n = (size_t)sz;
    }
  }
  fclose(f);
  nde_status st = nde_model_load_string(buf, n, path, out, errp);
  free(buf);
  return st;
io_fail:
  free(buf);
  {
    /* A handle that carries the message, like any failed load. */
    nde__fail(errp, NDE_ERR_IO, "%s: cannot read: %s", path, strerror(err));
    nde_model *m = calloc(1, sizeof *m);
    if (!m) return NDE_ERR_NOMEM;
    m->refs = 1;
    m->status = NDE_ERR_IO;
    m->file = dupstr(path);
    m->src = dupstr("");
    const char *why = strerror(err);
    size_t k = strlen(path) + strlen(why) + 32;
    m->errmsg = malloc(k);
    if (!m->file || !m->src || !m->errmsg) {
      model_free(m);
      return NDE_ERR_NOMEM;
    }
    snprintf(m->errmsg, k, "%s: cannot read: %s\n", path, why);
    *out = m;
  }
  return NDE_ERR_IO;
}

const char *nde_model_errmsg(const nde_model *m) { return m && m->errmsg ? m->errmsg : ""; }
int nde_model_n_diags(const nde_model *m) { return m ? m->diags.n : 0; }
nde_status nde_model_get_diag(const nde_model *m, int i, nde_model_diag *out) {
  if (!m || !out || i < 0 || i >= m->diags.n) return NDE_ERR_ARG;
  const nde__diag *g = &m->diags.items[i];
  *out = (nde_model_diag){g->is_note, g->pos.line, g->pos.col, g->message, g->source_line};
  return NDE_OK;
}
const char *nde_model_filename(const nde_model *m) { return m->file; }
const char *nde_model_source(const nde_model *m) { return m->src; }

int nde_model_n_states(const nde_model *m) { return m->n_states; }
int nde_model_state_dim(const nde_model *m) { return m->n_state_total; }
nde_status nde_model_get_state(const nde_model *m, int i, nde_model_state_info *out) {
  if (!out || i < 0 || i >= m->n_states) return NDE_ERR_ARG;
  *out = m->states[i].info;
  return NDE_OK;
}
const char *nde_model_component_name(const nde_model *m, int j) {
  return (j >= 0 && j < m->n_state_total) ? m->comp_names[j] : NULL;
}
int nde_model_find_component(const nde_model *m, const char *name) {
  for (int j = 0; j < m->n_state_total; j++)
    if (!strcmp(m->comp_names[j], name)) return j;
  return -1;
}
int nde_model_initial_state(const nde_model *m, double *u0) {
  int missing = 0;
  for (int i = 0; i < m->n_states; i++) {
    const nde_model_state_info *s = &m->states[i].info;
    for (int k = 0; k < s->size; k++) u0[s->offset + k] = s->initial[k];
    if (!s->has_initial) missing += s->size;
  }
  return missing;
}

int nde_model_n_params(const nde_model *m) { return m->n_params; }
nde_status nde_model_get_param(const nde_model *m, int i, nde_model_param_info *out) {
  if (!out || i < 0 || i >= m->n_params) return NDE_ERR_ARG;
  *out = m->params[i].info;
  return NDE_OK;
}
int nde_model_find_param(const nde_model *m, const char *name) {
  for (int i = 0; i < m->n_params; i++)
    if (!strcmp(m->params[i].name, name)) return i;
  return -1;
}

double nde_model_param_value(const nde_model *m, int i, const double *theta) {
  if (i < 0 || i >= m->n_params) return NAN;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->learnable) return p->value;
  double s = theta[p->offset];
  switch (p->transform) {
    case NDE_TRANSFORM_LOG: return exp(s);
    case NDE_TRANSFORM_LOGIT: return p->lo + (p->hi - p->lo) / (1.0 + exp(-s));
    default: return s;
  }
}

nde_status nde_model_set_param(const nde_model *m, int i, double value, double *theta) {
  if (i < 0 || i >= m->n_params || !theta) return NDE_ERR_ARG;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->learnable || !isfinite(value)) return NDE_ERR_ARG;
  switch (p->transform) {
    case NDE_TRANSFORM_LOG:
      if (!(value > 0)) return NDE_ERR_ARG;
      theta[p->offset] = log(value);
      break;
    case NDE_TRANSFORM_LOGIT: {
      if (!(value > p->lo && value < p->hi)) return NDE_ERR_ARG;
      double q = (value - p->lo) / (p->hi - p->lo);
      theta[p->offset] = log(q / (1.0 - q));
      break;
    }
    default: theta[p->offset] = value;
  }
  return NDE_OK;
}

int nde_model_n_nets(const nde_model *m) { return m->n_nets; }
nde_status nde_model_get_net(const nde_model *m, int i, nde_model_net_info *out) {
  if (!out || i < 0 || i >= m->n_nets) return NDE_ERR_ARG;
  const nde__netm *n = &m->nets[i];
  *out = (nde_model_net_info){n->name, n->net, n->offset, nde_net_n_params(n->net), n->init, n->sigma};
  return NDE_OK;
}
int nde_model_find_net(const nde_model *m, const char *name) {
  for (int i = 0; i < m->n_nets; i++)
    if (!strcmp(m->nets[i].name, name)) return i;
  return -1;
}

size_t nde_model_n_theta(const nde_model *m) { return m->n_theta; }
int nde_model_n_layout(const nde_model *m) { return m->n_layout; }
nde_status nde_model_get_layout(const nde_model *m, int i, nde_model_layout_entry *out) {
  if (!out || i < 0 || i >= m->n_layout) return NDE_ERR_ARG;
  *out = m->layout[i];
  return NDE_OK;
}

nde_status nde_model_init_theta(const nde_model *m, uint64_t seed, double *theta) {
  if (!m || m->status != NDE_OK || (!theta && m->n_theta)) return NDE_ERR_ARG;
  nde_rng rng;
  nde_rng_seed(&rng, seed);
  for (int k = 0; k < m->n_layout; k++) {
    const nde_model_layout_entry *L = &m->layout[k];
    if (L->kind == NDE_LAYOUT_PARAM) {
      nde_status st = nde_model_set_param(m, L->index, m->params[L->index].info.value, theta);
      if (st != NDE_OK) return st;
    } else {
      const nde__netm *n = &m->nets[L->index];
      nde_status st = nde_net_init(n->net, n->init, n->sigma, &rng, theta + n->offset);
      if (st != NDE_OK) return st;
    }
  }
  return NDE_OK;
}

nde_status nde_model_create_rhs(nde_model *m, int max_batch, nde_rhs **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_model_create_rhs: no output pointer");
  *out = NULL;
  if (!m || m->status != NDE_OK)
    return nde__fail(err, NDE_ERR_ARG, "a right-hand side needs a model that loaded without errors");
  if (max_batch < 1)
    return nde__fail(err, NDE_ERR_ARG, "max_batch must be >= 1 (got %d)", max_batch);
  return nde__tape_rhs_create(m, max_batch, out, err);
}
