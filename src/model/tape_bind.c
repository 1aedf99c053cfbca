/* Data bound per series when a right-hand side or observer is made: measured inputs (copied,
 * checked, with interpolation coefficients computed once) and constants from data.  Cubic
 * inputs use Fritsch & Carlson's monotone slopes (SIAM J. Numer. Anal. 17, 1980): secant
 * averages, zero at local extrema, scaled into the circle alpha^2 + beta^2 <= 9 so that each
 * interval's cubic is monotone between its end values. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tape.h"

void nde__bound_retain(nde__bound *b) { atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed); }

void nde__bound_release(nde__bound *b) {
  if (!b || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
  if (b->blocks)
    for (int s = 0; s < b->n_series; s++) free(b->blocks[s]);
  if (b->jump_blocks)
    for (int s = 0; s < b->n_series; s++) free(b->jump_blocks[s]);
  free(b->blocks);
  free(b->jump_blocks);
  free(b->curves);
  free(b->consts);
  free(b);
}

/* Fritsch-Carlson slopes m[0 .. n) of the samples (t, u), n >= 2; d[0 .. n-1) receives the
 * secants. */
static void fc_slopes(size_t n, const double *t, const double *u, double *m, double *d) {
  for (size_t k = 0; k + 1 < n; k++) d[k] = (u[k + 1] - u[k]) / (t[k + 1] - t[k]);
  m[0] = d[0];
  m[n - 1] = d[n - 2];
  for (size_t k = 1; k + 1 < n; k++) m[k] = d[k - 1] * d[k] <= 0 ? 0.0 : 0.5 * (d[k - 1] + d[k]);
  for (size_t k = 0; k + 1 < n; k++) {
    if (d[k] == 0) {
      m[k] = m[k + 1] = 0;
      continue;
    }
    const double a = m[k] / d[k], b = m[k + 1] / d[k], r = a * a + b * b;
    if (r > 9) {
      const double tau = 3.0 / sqrt(r);
      m[k] = tau * a * d[k];
      m[k + 1] = tau * b * d[k];
    }
  }
}

/* Coefficients of one curve (c1, and c2, c3 for cubic) into the series' block. */
static void make_coefficients(nde__curve *c, double *c1, double *c2, double *c3, double *scratch) {
  const size_t n = c->n;
  const double *t = c->t, *u = c->u;
  if (n < 2) {
    c1[0] = 0;
    if (c2) c2[0] = c3[0] = 0;
    return;
  }
  if (c->interp == NDE_INTERP_LINEAR) {
    for (size_t k = 0; k + 1 < n; k++) c1[k] = (u[k + 1] - u[k]) / (t[k + 1] - t[k]);
    c1[n - 1] = 0;
    return;
  }
  /* Cubic Hermite on [t_k, t_k+1) with slopes m_k, m_k+1 as a polynomial in d = t - t_k. */
  double *m = c1, *sec = scratch;
  fc_slopes(n, t, u, m, sec);
  for (size_t k = 0; k + 1 < n; k++) {
    const double h = t[k + 1] - t[k];
    c2[k] = (3 * sec[k] - 2 * m[k] - m[k + 1]) / h;
    c3[k] = (m[k] + m[k + 1] - 2 * sec[k]) / (h * h);
  }
  c2[n - 1] = c3[n - 1] = 0;
}

nde_status nde__bound_create(const nde_model *m, const nde_model_rhs_opts *o, nde__bound **out,
                             nde_error *err) {
  *out = NULL;
  if (o->max_batch < 1)
    return nde__fail(err, NDE_ERR_ARG, "max_batch must be >= 1 (got %d)", o->max_batch);
  if (o->n_series < 1)
    return nde__fail(err, NDE_ERR_ARG, "n_series must be >= 1 (got %d)", o->n_series);
  if (m->n_inputs > 0 && !o->inputs)
    return nde__fail(err, NDE_ERR_ARG,
                     "the model declares input '%s' (line %d) but no input data was given "
                     "(nde_model_rhs_opts.inputs)",
                     m->inputs[0].name, m->inputs[0].info.line);
  if (m->n_data_consts > 0 && !o->consts) {
    int c = 0;
    while (!m->consts[c].info.from_data) c++;
    return nde__fail(err, NDE_ERR_ARG,
                     "the model declares constant '%s' (line %d) from data but no constants were "
                     "given (nde_model_rhs_opts.consts)",
                     m->consts[c].name, m->consts[c].info.line);
  }
  const int S = o->n_series, ni = m->n_inputs, nc = m->n_data_consts;
  /* Every series' data is checked before anything is allocated. */
  for (int s = 0; s < S && ni > 0; s++) {
    const nde_input_series *is = &o->inputs[s];
    if (is->n < 1 || !is->t || !is->u)
      return nde__fail(err, NDE_ERR_ARG, "input data of series %d has no samples (expected n >= 1, t and u)", s);
    for (size_t k = 0; k < is->n; k++) {
      if (!isfinite(is->t[k]))
        return nde__fail(err, NDE_ERR_ARG, "input data of series %d: time %zu is not finite", s, k);
      if (k > 0 && !(is->t[k] > is->t[k - 1]))
        return nde__fail(err, NDE_ERR_ARG,
                         "input data of series %d: times are not strictly increasing at sample %zu "
                         "(t = %.17g after %.17g)", s, k, is->t[k], is->t[k - 1]);
      for (int i = 0; i < ni; i++)
        if (!isfinite(is->u[k * (size_t)ni + (size_t)i]))
          return nde__fail(err, NDE_ERR_ARG,
                           "input '%s' of series %d is not finite at sample %zu (t = %.17g)",
                           m->inputs[i].name, s, k, is->t[k]);
    }
  }
  for (int s = 0; s < S; s++)
    for (int c = 0, col = 0; c < m->n_consts; c++) {
      if (!m->consts[c].info.from_data) continue;
      if (!isfinite(o->consts[(size_t)s * (size_t)nc + (size_t)col]))
        return nde__fail(err, NDE_ERR_ARG, "constant '%s' of series %d is not finite", m->consts[c].name, s);
      col++;
    }

  nde__bound *b = calloc(1, sizeof *b);
  if (!b) return nde__fail(err, NDE_ERR_NOMEM, "out of memory binding data");
  atomic_init(&b->refs, 1);
  b->n_series = S;
  b->n_inputs = ni;
  b->n_consts = nc;
  if (nc > 0) {
    b->consts = nde__dalloc((size_t)S * (size_t)nc);
    if (!b->consts) goto nomem;
    memcpy(b->consts, o->consts, (size_t)S * (size_t)nc * sizeof *b->consts);
  }
  if (ni > 0) {
    b->curves = calloc((size_t)S * (size_t)ni, sizeof *b->curves);
    b->blocks = calloc((size_t)S, sizeof *b->blocks);
    b->jump_blocks = calloc((size_t)S, sizeof *b->jump_blocks);
    if (!b->curves || !b->blocks || !b->jump_blocks) goto nomem;
    for (int s = 0; s < S; s++) {
      const nde_input_series *is = &o->inputs[s];
      const size_t n = is->n;
      /* t, one scratch row, then per input u, c1 and (cubic) c2, c3; jumps of step inputs. */
      size_t per = 2, cells, jumps = 0;
      for (int i = 0; i < ni; i++) {
        const nde_interp ip = m->inputs[i].info.interp;
        per += ip == NDE_INTERP_CUBIC ? 4 : 2;
        if (ip == NDE_INTERP_STEP) jumps += n;
      }
      if (!nde__mul_size(per, n, &cells)) goto nomem;
      double *blk = b->blocks[s] = nde__dalloc(cells);
      size_t *jb = b->jump_blocks[s] = malloc((jumps ? jumps : 1) * sizeof *jb);
      if (!blk || !jb) goto nomem;
      double *t = blk, *scratch = blk + n, *p = blk + 2 * n;
      memcpy(t, is->t, n * sizeof *t);
      for (int i = 0; i < ni; i++) {
        nde__curve *c = &b->curves[(size_t)s * (size_t)ni + (size_t)i];
        const nde_model_input_info *info = &m->inputs[i].info;
        double *u = p, *c1 = p + n, *c2 = NULL, *c3 = NULL;
        p += 2 * n;
        if (info->interp == NDE_INTERP_CUBIC) {
          c2 = p;
          c3 = p + n;
          p += 2 * n;
        }
        for (size_t k = 0; k < n; k++) u[k] = is->u[k * (size_t)ni + (size_t)i];
        c->n = n;
        c->t = t;
        c->u = u;
        c->interp = (uint8_t)info->interp;
        c->hold = info->hold;
        if (info->interp == NDE_INTERP_STEP) {
          c->jumps = jb;
          for (size_t k = 1; k < n; k++)
            if (u[k] != u[k - 1]) jb[c->n_jumps++] = k;
          jb += c->n_jumps;
        } else {
          make_coefficients(c, c1, c2, c3, scratch);
          c->c1 = c1;
          c->c2 = c2;
          c->c3 = c3;
        }
      }
    }
  }
  *out = b;
  return NDE_OK;
nomem:
  nde__bound_release(b);
  return nde__fail(err, NDE_ERR_NOMEM, "out of memory binding the data of %d series", S);
}
