/* Adam (Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015), with the bias
 * corrections folded into the step size as in the paper's Algorithm 1 footnote. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "nde/train.h"

struct nde_adam {
  size_t n;
  nde_adam_opts o;
  long step;
  double *m, *v;
};

nde_adam_opts nde_adam_opts_default(void) {
  nde_adam_opts o = {1e-3, 0.9, 0.999, 1e-8};
  return o;
}

void nde_adam_destroy(nde_adam **ap) {
  if (!ap || !*ap) return;
  free((*ap)->m);
  free((*ap)->v);
  free(*ap);
  *ap = NULL;
}

nde_status nde_adam_create(size_t n, const nde_adam_opts *opts, nde_adam **out, nde_error *err) {
  if (!out) return nde__fail(err, NDE_ERR_ARG, "nde_adam_create: no output pointer");
  *out = NULL;
  nde_adam_opts o = opts ? *opts : nde_adam_opts_default();
  if (n == 0)
    return nde__fail(err, NDE_ERR_ARG, "nothing to optimise: the model has no learnable values");
  if (!(o.lr > 0) || !(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1) ||
      !(o.eps > 0))
    return nde__fail(err, NDE_ERR_ARG,
                     "invalid Adam options (expected lr > 0, betas in [0, 1), eps > 0; got lr %g, "
                     "beta1 %g, beta2 %g, eps %g)",
                     o.lr, o.beta1, o.beta2, o.eps);
  nde_adam *a = calloc(1, sizeof *a);
  if (!a) return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the Adam optimiser");
  a->n = n;
  a->o = o;
  a->m = nde__dalloc(n);
  a->v = nde__dalloc(n);
  if (!a->m || !a->v) {
    nde_adam_destroy(&a);
    return nde__fail(err, NDE_ERR_NOMEM, "out of memory creating the Adam optimiser");
  }
  *out = a;
  return NDE_OK;
}

void nde_adam_step(nde_adam *a, double *restrict theta, const double *restrict g) {
  const double b1 = a->o.beta1, b2 = a->o.beta2;
  a->step++;
  const double c1 = 1.0 - pow(b1, (double)a->step);
  const double c2 = 1.0 - pow(b2, (double)a->step);
  const double lr_t = a->o.lr * sqrt(c2) / c1;
  const double eps_t = a->o.eps * sqrt(c2);
  double *restrict m = a->m, *restrict v = a->v;
  for (size_t i = 0; i < a->n; i++) {
    m[i] = b1 * m[i] + (1.0 - b1) * g[i];
    v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
    theta[i] -= lr_t * m[i] / (sqrt(v[i]) + eps_t);
  }
}

double nde_adam_get_lr(const nde_adam *a) { return a->o.lr; }
void nde_adam_set_lr(nde_adam *a, double lr) { a->o.lr = lr; }
long nde_adam_get_step(const nde_adam *a) { return a->step; }
size_t nde_adam_state_size(const nde_adam *a) { return 2 * a->n + 1; }

void nde_adam_get_state(const nde_adam *a, double *state) {
  memcpy(state, a->m, a->n * sizeof *state);
  memcpy(state + a->n, a->v, a->n * sizeof *state);
  state[2 * a->n] = (double)a->step;
}

nde_status nde_adam_set_state(nde_adam *a, const double *state) {
  const double st = state[2 * a->n];
  if (!(st >= 0) || st != floor(st)) return NDE_ERR_ARG;
  memcpy(a->m, state, a->n * sizeof *state);
  memcpy(a->v, state + a->n, a->n * sizeof *state);
  a->step = (long)st;
  return NDE_OK;
}
