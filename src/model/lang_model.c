/* The compiled model: loading (lex -> parse -> check -> compile), accessors for states,
 * parameters (shared and per series), nets, inputs, constants, observables and the layout of
 * theta, initial theta, and the rhs made from the tape. */
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

/* Relaxed increments suffice (a new reference is made from one the caller holds); the last
 * release must see every other thread's use of the model before freeing it. */
void nde__model_retain(nde_model *m) { atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed); }
void nde__model_release(nde_model *m) {
  if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) model_free(m);
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
  if (m->inputs)
    for (int i = 0; i < m->n_inputs; i++) free(m->inputs[i].name);
  if (m->consts)
    for (int i = 0; i < m->n_consts; i++) free(m->consts[i].name);
  if (m->obs_names)
    for (int i = 0; i < m->n_obs; i++) free(m->obs_names[i]);
  free(m->states);
  free(m->comp_names);
  free(m->params);
  free(m->nets);
  free(m->inputs);
  free(m->consts);
  free(m->obs_names);
  free(m->layout);
  free(m->dep);
  m->states = NULL;
  m->comp_names = NULL;
  m->params = NULL;
  m->nets = NULL;
  m->inputs = NULL;
  m->consts = NULL;
  m->obs_names = NULL;
  m->layout = NULL;
  m->dep = NULL;
  m->n_states = m->n_state_total = m->n_params = m->n_nets = m->n_layout = 0;
  m->n_sp = m->n_inputs = m->n_consts = m->n_data_consts = m->n_obs = 0;
  m->n_theta = 0;
  nde__tape_free(&m->tape);
}

/* Lex, parse and (on a syntactically clean text: no cascades) check. */
static nde_status front_end(const char *src, size_t len, nde__diags *d, nde__ast *ast) {
  nde__token *toks = NULL;
  int n_toks = 0;
  /* A binary file (often a data file given in the model's place) is one error, not one per
   * line of garbage. */
  if (nde__lex_not_text(src, len, d)) return d->nomem ? NDE_ERR_NOMEM : d->status;
  nde_status st = nde__lex(src, len, d, &toks, &n_toks);
  if (st == NDE_OK) st = nde__parse(toks, n_toks, d, ast);
  if (st == NDE_OK && d->n_errors == 0) st = nde__check(ast, d);
  if (st == NDE_OK && d->n_errors) st = d->status;
  if (d->nomem) st = NDE_ERR_NOMEM;
  free(toks);
  return st;
}

nde_status nde__parse_source(const char *src, size_t len, const char *file, nde__diags *d,
                             nde__ast *ast) {
  memset(d, 0, sizeof *d);
  memset(ast, 0, sizeof *ast);
  d->file = file;
  d->src = src;
  d->len = len;
  return front_end(src, len, d, ast);
}

static nde_status compile_source(nde_model *m) {
  nde__ast ast;
  memset(&ast, 0, sizeof ast);
  nde_status st = front_end(m->src, m->src_len, &m->diags, &ast);
  if (st == NDE_OK) st = nde__compile(&ast, &m->diags, m);
  if (st == NDE_OK && m->diags.n_errors) st = m->diags.status;
  if (m->diags.nomem) st = NDE_ERR_NOMEM;
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
  atomic_init(&m->refs, 1);
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
    atomic_init(&m->refs, 1);
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
const char *nde_model_filename(const nde_model *m) { return m ? m->file : NULL; }
const char *nde_model_source(const nde_model *m) { return m ? m->src : NULL; }

int nde_model_n_states(const nde_model *m) { return m ? m->n_states : 0; }
int nde_model_state_dim(const nde_model *m) { return m ? m->n_state_total : 0; }
nde_status nde_model_get_state(const nde_model *m, int i, nde_model_state_info *out) {
  if (!m || !out || i < 0 || i >= m->n_states) return NDE_ERR_ARG;
  *out = m->states[i].info;
  return NDE_OK;
}
const char *nde_model_component_name(const nde_model *m, int j) {
  return (m && j >= 0 && j < m->n_state_total) ? m->comp_names[j] : NULL;
}
int nde_model_find_component(const nde_model *m, const char *name) {
  for (int j = 0; m && name && j < m->n_state_total; j++)
    if (!strcmp(m->comp_names[j], name)) return j;
  return -1;
}
int nde_model_initial_state(const nde_model *m, double *u0) {
  int missing = 0;
  for (int i = 0; m && u0 && i < m->n_states; i++) {
    const nde_model_state_info *s = &m->states[i].info;
    for (int k = 0; k < s->size; k++) u0[s->offset + k] = s->initial[k];
    if (!s->has_initial) missing += s->size;
  }
  return missing;
}

int nde_model_n_params(const nde_model *m) { return m ? m->n_params : 0; }
nde_status nde_model_get_param(const nde_model *m, int i, nde_model_param_info *out) {
  if (!m || !out || i < 0 || i >= m->n_params) return NDE_ERR_ARG;
  *out = m->params[i].info;
  return NDE_OK;
}
int nde_model_find_param(const nde_model *m, const char *name) {
  for (int i = 0; m && name && i < m->n_params; i++)
    if (!strcmp(m->params[i].name, name)) return i;
  return -1;
}

/* The natural value of a stored (unconstrained) entry s. */
static double natural(const nde_model_param_info *p, double s) {
  switch (p->transform) {
    case NDE_TRANSFORM_LOG: return exp(s);
    case NDE_TRANSFORM_LOGIT: return p->lo + (p->hi - p->lo) / (1.0 + exp(-s));
    default: return s;
  }
}

/* The stored entry of a natural value (inverse transform); NDE_ERR_ARG outside the domain. */
static nde_status stored(const nde_model_param_info *p, double value, double *out) {
  if (!isfinite(value)) return NDE_ERR_ARG;
  switch (p->transform) {
    case NDE_TRANSFORM_LOG:
      if (!(value > 0)) return NDE_ERR_ARG;
      *out = log(value);
      return NDE_OK;
    case NDE_TRANSFORM_LOGIT: {
      if (!(value > p->lo && value < p->hi)) return NDE_ERR_ARG;
      double q = (value - p->lo) / (p->hi - p->lo);
      *out = log(q / (1.0 - q));
      return NDE_OK;
    }
    default: *out = value; return NDE_OK;
  }
}

double nde_model_param_value(const nde_model *m, int i, const double *theta) {
  if (!m || i < 0 || i >= m->n_params) return NAN;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->learnable) return p->value;
  if (p->per_series) return NAN;
  return natural(p, theta[p->offset]);
}

nde_status nde_model_set_param(const nde_model *m, int i, double value, double *theta) {
  if (!m || i < 0 || i >= m->n_params || !theta) return NDE_ERR_ARG;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->learnable || p->per_series) return NDE_ERR_ARG;
  return stored(p, value, &theta[p->offset]);
}

int nde_model_n_series_params(const nde_model *m) { return m ? m->n_sp : 0; }

size_t nde_model_n_theta_full(const nde_model *m, int n_series) {
  if (!m) return 0;
  return m->n_theta + (size_t)(n_series > 0 ? n_series : 0) * (size_t)m->n_sp;
}

double nde_model_param_value_series(const nde_model *m, int i, const double *theta, int s) {
  if (!m || i < 0 || i >= m->n_params || s < 0) return NAN;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->per_series) return nde_model_param_value(m, i, theta);
  return natural(p, theta[m->n_theta + (size_t)s * (size_t)m->n_sp + p->offset]);
}

nde_status nde_model_set_param_series(const nde_model *m, int i, int s, double value,
                                      double *theta) {
  if (!m || i < 0 || i >= m->n_params || s < 0 || !theta) return NDE_ERR_ARG;
  const nde_model_param_info *p = &m->params[i].info;
  if (!p->per_series) return NDE_ERR_ARG;
  return stored(p, value, &theta[m->n_theta + (size_t)s * (size_t)m->n_sp + p->offset]);
}

int nde_model_n_nets(const nde_model *m) { return m ? m->n_nets : 0; }
nde_status nde_model_get_net(const nde_model *m, int i, nde_model_net_info *out) {
  if (!m || !out || i < 0 || i >= m->n_nets) return NDE_ERR_ARG;
  const nde__netm *n = &m->nets[i];
  *out = (nde_model_net_info){n->name, n->net, n->offset, nde_net_n_params(n->net), n->init, n->sigma};
  return NDE_OK;
}
int nde_model_find_net(const nde_model *m, const char *name) {
  for (int i = 0; m && name && i < m->n_nets; i++)
    if (!strcmp(m->nets[i].name, name)) return i;
  return -1;
}

size_t nde_model_n_theta(const nde_model *m) { return m ? m->n_theta : 0; }
int nde_model_n_layout(const nde_model *m) { return m ? m->n_layout : 0; }
nde_status nde_model_get_layout(const nde_model *m, int i, nde_model_layout_entry *out) {
  if (!m || !out || i < 0 || i >= m->n_layout) return NDE_ERR_ARG;
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

nde_status nde_model_init_theta_full(const nde_model *m, uint64_t seed, int n_series,
                                     double *theta) {
  if (!m || m->status != NDE_OK || n_series < 1 || !theta) return NDE_ERR_ARG;
  nde_status st = nde_model_init_theta(m, seed, theta);
  for (int i = 0; i < m->n_params && st == NDE_OK; i++) {
    if (!m->params[i].info.per_series) continue;
    for (int s = 0; s < n_series && st == NDE_OK; s++)
      st = nde_model_set_param_series(m, i, s, m->params[i].info.value, theta);
  }
  return st;
}

int nde_model_n_inputs(const nde_model *m) { return m ? m->n_inputs : 0; }
int nde_model_is_autonomous(const nde_model *m) {
  return m && m->status == NDE_OK && !m->uses_time && m->n_inputs == 0;
}
nde_status nde_model_get_input(const nde_model *m, int i, nde_model_input_info *out) {
  if (!m || !out || i < 0 || i >= m->n_inputs) return NDE_ERR_ARG;
  *out = m->inputs[i].info;
  return NDE_OK;
}
int nde_model_find_input(const nde_model *m, const char *name) {
  for (int i = 0; m && name && i < m->n_inputs; i++)
    if (!strcmp(m->inputs[i].name, name)) return i;
  return -1;
}

int nde_model_n_consts(const nde_model *m) { return m ? m->n_consts : 0; }
int nde_model_n_data_consts(const nde_model *m) { return m ? m->n_data_consts : 0; }
nde_status nde_model_get_const(const nde_model *m, int i, nde_model_const_info *out) {
  if (!m || !out || i < 0 || i >= m->n_consts) return NDE_ERR_ARG;
  *out = m->consts[i].info;
  return NDE_OK;
}
int nde_model_find_const(const nde_model *m, const char *name) {
  for (int i = 0; m && name && i < m->n_consts; i++)
    if (!strcmp(m->consts[i].name, name)) return i;
  return -1;
}

int nde_model_n_observables(const nde_model *m) { return m ? m->n_obs : 0; }
const char *nde_model_observable_name(const nde_model *m, int i) {
  return m && i >= 0 && i < m->n_obs ? m->obs_names[i] : NULL;
}

nde_status nde_model_dependency(const nde_model *m, unsigned char *dep) {
  if (!m || m->status != NDE_OK || !dep || !m->dep) return NDE_ERR_ARG;
  memcpy(dep, m->dep, (size_t)m->n_state_total * (size_t)m->n_state_total);
  return NDE_OK;
}

nde_model_rhs_opts nde_model_rhs_opts_default(void) {
  nde_model_rhs_opts o = {1, 1, NULL, NULL};
  return o;
}

nde_status nde_model_create_rhs_opts(nde_model *m, const nde_model_rhs_opts *o, nde_rhs **out,
                                     nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_model_create_rhs_opts: no output pointer");
  *out = NULL;
  if (!m || m->status != NDE_OK)
    return nde__fail(err, NDE_ERR_ARG, "a right-hand side needs a model that loaded without errors");
  if (!o) return nde__fail(err, NDE_ERR_ARG, "nde_model_create_rhs_opts: no options");
  return nde__tape_rhs_create(m, o, out, err);
}

nde_status nde_model_create_rhs(nde_model *m, int max_batch, nde_rhs **out, nde_error *err) {
  nde_model_rhs_opts o = nde_model_rhs_opts_default();
  o.max_batch = max_batch;
  return nde_model_create_rhs_opts(m, &o, out, err);
}
