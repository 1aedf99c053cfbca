/* Observers: K named quantities of a model (state components and observables "observe h =
 * EXPR") evaluated on a batch of states, with exact VJP and JVP.  The model's source is parsed
 * again and compiled into a tape whose outputs are the quantities (only the intermediates they
 * need), evaluated by the same kernels as the right-hand side, against the same bound data. */
#include <stdlib.h>
#include <string.h>

#include "lang.h"
#include "tape.h"

struct nde_observer {
  nde__tape_handle h; /* the tape and this observer's context (a clone shares its root's tape) */
  int K;
  bool identity;
};

void nde_observer_destroy(nde_observer **o) {
  if (!o || !*o) return;
  nde__handle_release(&(*o)->h);
  *o = NULL;
}

nde_status nde_observer_clone(const nde_observer *o, nde_observer **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_observer_clone: no output pointer");
  *out = NULL;
  if (!o) return nde__fail(err, NDE_ERR_ARG, "nde_observer_clone: no observer");
  nde__tape_handle *c = NULL;
  const nde_status st = nde__handle_clone(&o->h, sizeof(nde_observer), &c);
  if (st != NDE_OK) return nde__fail(err, st, "%s cloning an observer", nde_status_str(st));
  nde_observer *co = (nde_observer *)c;
  co->K = o->K;
  co->identity = o->identity;
  *out = co;
  return NDE_OK;
}

/* The observable (an intermediate declared with observe) called name, or -1; *inter receives
 * the intermediate of that name when it is not observed. */
static int find_observable(const nde__ast *A, const char *name, int *inter) {
  const size_t len = strlen(name);
  *inter = -1;
  for (int i = 0; i < A->n_inters; i++) {
    const nde__assign *q = &A->inters[i];
    if ((size_t)q->name_len != len || memcmp(q->name, name, len) != 0) continue;
    if (q->observed) return i;
    *inter = i;
  }
  return -1;
}

nde_status nde_model_create_observer(nde_model *m, const nde_model_rhs_opts *o, int K,
                                     const char *const *names, nde_observer **out,
                                     nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_model_create_observer: no output pointer");
  *out = NULL;
  if (!m || m->status != NDE_OK)
    return nde__fail(err, NDE_ERR_ARG, "an observer needs a model that loaded without errors");
  if (K < 1 || !names)
    return nde__fail(err, NDE_ERR_ARG, "an observer needs at least one name (got %d)", K);
  for (int k = 0; k < K; k++)
    if (!names[k]) return nde__fail(err, NDE_ERR_ARG, "observer name %d is NULL", k);
  const nde_model_rhs_opts dflt = nde_model_rhs_opts_default();
  if (!o) o = &dflt;

  nde_observer *p = calloc(1, sizeof *p);
  if (p) nde__handle_init(&p->h, m);
  nde__output *outs = calloc((size_t)K, sizeof *outs);
  nde__diags d;
  nde__ast A;
  nde__bound *bd = NULL;
  memset(&d, 0, sizeof d);
  memset(&A, 0, sizeof A);
  nde_status st = NDE_ERR_NOMEM;
  if (!p || !outs) goto fail;
  p->K = K;
  st = nde__parse_source(m->src, m->src_len, m->file, &d, &A);
  if (st != NDE_OK) {
    if (st != NDE_ERR_NOMEM) st = NDE_ERR_INTERNAL;
    nde__fail(err, st, "%s parsing the model again", nde_status_str(st));
    goto fail;
  }
  p->identity = true;
  for (int k = 0; k < K; k++) {
    const int j = nde_model_find_component(m, names[k]);
    if (j >= 0) {
      outs[k] = (nde__output){-1, j, k, 1, 0};
      continue;
    }
    int inter;
    const int i = find_observable(&A, names[k], &inter);
    if (i < 0) {
      if (inter >= 0)
        st = nde__fail(err, NDE_ERR_ARG,
                       "'%s' is an intermediate, not an observable (declare it with 'observe %s = "
                       "...')", names[k], names[k]);
      else if (m->n_obs > 0)
        st = nde__fail(err, NDE_ERR_ARG,
                       "unknown quantity '%s' (expected a state component such as '%s' or an "
                       "observable such as '%s')", names[k], m->comp_names[0], m->obs_names[0]);
      else
        st = nde__fail(err, NDE_ERR_ARG,
                       "unknown quantity '%s' (expected a state component such as '%s'; the "
                       "model declares no observables)", names[k], m->comp_names[0]);
      goto fail;
    }
    outs[k] = (nde__output){A.inters[i].expr, -1, k, 1, 0};
    p->identity = false;
  }
  st = nde__compile_tape(&A, &d, m, outs, K, K, &p->h.tape);
  if (st != NDE_OK) {
    nde__fail(err, st, "%s compiling the observer", nde_status_str(st));
    goto fail;
  }
  st = nde__bound_create(m, o, &bd, err);
  if (st != NDE_OK) goto fail;
  st = nde__tctx_create(m, &p->h.tape, bd, o->max_batch, &p->h.X);
  nde__bound_release(bd);
  if (st == NDE_OK) nde__tctx_exact_zeros(p->h.X, true);
  if (st != NDE_OK) {
    nde__fail(err, st, "%s creating the observer", nde_status_str(st));
    goto fail;
  }
  free(outs);
  nde__ast_free(&A);
  nde__diags_free(&d);
  *out = p;
  return NDE_OK;
fail:
  if (st == NDE_ERR_NOMEM) nde__fail(err, st, "out of memory creating an observer");
  free(outs);
  nde__ast_free(&A);
  nde__diags_free(&d);
  nde_observer_destroy(&p);
  return st;
}

int nde_observer_is_identity(const nde_observer *o) { return o && o->identity; }
int nde_observer_n_outputs(const nde_observer *o) { return o ? o->K : 0; }

nde_status nde_observer_set_rows(nde_observer *o, int B, const int *series_of_row) {
  if (!o) return NDE_ERR_ARG;
  if (series_of_row)
    for (int r = 0; r < B; r++)
      if (series_of_row[r] < 0) return NDE_ERR_ARG;
  return nde__tctx_set_rows(o->h.X, B, series_of_row);
}

int nde_observer_eval(nde_observer *o, double t, int B, const double *U, const double *theta,
                      double *H) {
  if (!o || !U || !H) return -1;
  return nde__tctx_f(o->h.X, t, B, U, theta, H, NULL);
}

int nde_observer_vjp(nde_observer *o, double t, int B, const double *U, const double *theta,
                     const double *LH, double *gU, double *gtheta) {
  if (!o || !U || !LH) return -1;
  return nde__tctx_vjp(o->h.X, t, B, U, theta, LH, NULL, gU, gtheta);
}

int nde_observer_jvp(nde_observer *o, double t, int B, const double *U, const double *theta,
                     const double *V, const double *Vtheta, double *JH) {
  if (!o || !U || !JH) return -1;
  return nde__tctx_jvp(o->h.X, t, B, U, theta, V, Vtheta, JH);
}
